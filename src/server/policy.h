/*
 * policy.h - storage policies (docs/api.md, "Storage policies"): the
 * bundled "VM Encryption Policy" (the default key provider) and custom
 * encryption policies that name a provider; no policy means unencrypted.
 * Which policy a VM or disk was given is remembered (table vm_policy) so
 * that the VM shows the name it was given; a VM encrypted without naming a
 * policy shows the bundled one.
 */
#ifndef VMSEAL_SERVER_POLICY_H
#define VMSEAL_SERVER_POLICY_H

#include <stdbool.h>

#include <jansson.h>

#include "core/result.h"
#include "keyprov/keyprov.h"
#include "server/store.h"

#define POLICY_BUILTIN "VM Encryption Policy"
#define POLICY_NAME_MAX 64

/* {"policies": [{"name", "encryption", "provider", "builtin"}]}, the bundled one first. */
RESULT policy_list(struct store *st, json_t **out) __attribute__((nonnull));
/* A custom encryption policy (ERR_EXISTS, ERR_INVALID_ARG for a bad name). */
RESULT policy_create(struct store *st, const char *name, const char *provider)
    __attribute__((nonnull));
/* ERR_NOT_FOUND; ERR_PERM for the bundled one. */
RESULT policy_delete(struct store *st, const char *name) __attribute__((nonnull));
/* The provider of a policy ("" for the default provider); ERR_NOT_FOUND. */
RESULT policy_provider(struct store *st, const char *name, char provider[KEYPROV_NAME_MAX])
    __attribute__((nonnull));
/* The JSON object of one policy (ERR_NOT_FOUND). */
RESULT policy_get(struct store *st, const char *name, json_t **out) __attribute__((nonnull));

/* Remembers the policy given to a VM (disk -1) or a disk; name NULL forgets. */
RESULT policy_vm_set(struct store *st, const char *vm, int disk, const char *name)
    __attribute__((nonnull(1, 2)));
/* The remembered name ("" if none). */
RESULT policy_vm_get(struct store *st, const char *vm, int disk, char name[POLICY_NAME_MAX])
    __attribute__((nonnull));
RESULT policy_vm_forget(struct store *st, const char *vm) __attribute__((nonnull));

#endif
