/*
 * store.h - where vmseal-kms keeps managed objects: SQLite, one file.
 *
 * Durability: a write returns only once it is on disk (WAL, synchronous =
 * FULL). Writes from all threads go through one writer thread that commits
 * everything queued in one transaction with one fsync: group commit, so
 * that sixteen concurrent Creates cost one fsync, not sixteen.
 *
 * Integrity: each object row holds a blob sealed under the root key
 * (AES-256-GCM) whose plaintext is the key material and whose associated
 * data binds the identifier, owner, object type, record version and a
 * SHA-256 digest of every attribute. A row or attribute changed behind the
 * server's back fails to open: ERR_AUTH, reported, never served.
 *
 * Reads use a per-thread kms_store_reader (its own connection).
 */
#ifndef VMSEAL_KMS_STORE_H
#define VMSEAL_KMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/result.h"
#include "kms/object.h"
#include "kms/rootkey.h"

struct kms_store;
struct kms_store_reader;

/* Opens (creating if new) the store at path; rk must outlive it. */
RESULT kms_store_open(const char *path, const struct kms_rootkey *rk, struct kms_store **out)
    __attribute__((nonnull));

/* Stops the writer (after finishing what is queued) and closes. */
void kms_store_close(struct kms_store **s);

/* A read connection for the calling thread. */
RESULT kms_store_reader_open(struct kms_store *s, struct kms_store_reader **out)
    __attribute__((nonnull));
void kms_store_reader_close(struct kms_store_reader **r);

/* Loads an object. ERR_NOT_FOUND if there is none; ERR_AUTH if its record
 * fails authentication (tampered, or sealed under another root key). */
RESULT kms_store_load(struct kms_store_reader *r, const char *uid, struct kms_object **out)
    __attribute__((nonnull));

/* Inserts a new object (version becomes 1). Durable when it returns.
 * ERR_EXISTS if the identifier is taken. */
RESULT kms_store_insert(struct kms_store *s, struct kms_object *obj) __attribute__((nonnull));

/* Writes a changed object if nobody changed it since it was loaded:
 * ERR_CONFLICT otherwise (reload and retry). Version is bumped. Durable. */
RESULT kms_store_update(struct kms_store *s, struct kms_object *obj) __attribute__((nonnull));

/* A Locate filter: objects having an instance of `name` whose encoded
 * Attribute Value item equals `item` exactly. */
struct kms_store_filter {
    const char *name;
    const uint8_t *item;
    size_t item_len;
};

#define KMS_STORE_MAX_FILTERS 32

/* Identifiers of objects matching every filter, owned by one of owners
 * (NULL = any owner: the admin), oldest first, skipping `offset`, at most
 * `max` (0 = no limit), each passed to cb. */
RESULT kms_store_locate(struct kms_store_reader *r, const char *const *owners, size_t owner_count,
                        const struct kms_store_filter *filters, size_t filter_count,
                        uint32_t offset, uint32_t max, vs_result (*cb)(void *ctx, const char *uid),
                        void *ctx) __attribute__((nonnull(1, 8)));

/* Counters for diagnostics and tests. */
struct kms_store_stats {
    uint64_t commits; /* transactions committed by the writer */
    uint64_t writes;  /* writes committed */
};
void kms_store_get_stats(struct kms_store *s, struct kms_store_stats *out) __attribute__((nonnull));

#endif
