/*
 * hostmode.h - the host's encryption mode (vSphere's "crypto safe" host).
 * A host enters encryption mode the first time an encrypted VM is created
 * or registered on it (or when asked, POST /v1/host/encryption): a host key
 * is created at the default key provider and recorded in vmseald.db.
 * Doing that needs Cryptographer.RegisterHost (docs/privileges.md).
 */
#ifndef VMSEAL_SERVER_HOSTMODE_H
#define VMSEAL_SERVER_HOSTMODE_H

#include <stdbool.h>

#include <jansson.h>

#include "core/result.h"

struct api_ctx;

/* Whether the host is in encryption mode; *info (may be NULL) gets the
 * host object of GET /v1/host (a new reference). */
RESULT hostmode_get(struct api_ctx *ctx, bool *safe, json_t **info) __attribute__((nonnull(1, 2)));

/* Puts the host in encryption mode (idempotent): a host key from the
 * default provider, recorded with the time and the user. */
RESULT hostmode_enable(struct api_ctx *ctx, const char *user) __attribute__((nonnull));

#endif
