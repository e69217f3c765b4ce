/*
 * rootkey.h - the KMS root key: the key under which every stored object is
 * sealed (the customer root key of a cloud KMS). Destroying it
 * crypto-shreds every key in the store.
 *
 * Behind an interface so that an HSM (PKCS#11) can hold it instead of a
 * file. The file backend keeps the key in secret memory and never uses it
 * directly: record sealing uses a key derived from it with HKDF-SHA256
 * (domain separation), so the root key itself never touches data.
 */
#ifndef VMSEAL_KMS_ROOTKEY_H
#define VMSEAL_KMS_ROOTKEY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

struct kms_rootkey;

/* Creates a new root key file (32 random bytes, mode 0600). ERR_EXISTS if
 * the file exists: a root key is never overwritten. */
RESULT kms_rootkey_create_file(const char *path) __attribute__((nonnull));

/* Loads a root key file. Refuses a file that is not 32 bytes, or that group
 * or others may read (ERR_PERM: the root key must be 0600 or stricter). */
RESULT kms_rootkey_open_file(const char *path, struct kms_rootkey **out) __attribute__((nonnull));

/* Wipes and frees; accepts NULL; sets *rk = NULL. */
void kms_rootkey_free(struct kms_rootkey **rk);

/* Seals pt (may be empty) with aad, appending iv || ct || tag to out. */
RESULT kms_rootkey_seal(const struct kms_rootkey *rk, const void *aad, size_t aad_len,
                        const void *pt, size_t len, struct buf *out) __attribute__((nonnull(1, 6)));

/* Opens a sealed blob, appending the plaintext to out (a secret buf).
 * ERR_AUTH if the blob or its aad was tampered with. */
RESULT kms_rootkey_open(const struct kms_rootkey *rk, const void *aad, size_t aad_len,
                        const uint8_t *sealed, size_t sealed_len, struct buf *out)
    __attribute__((nonnull(1, 4, 6)));

#endif
