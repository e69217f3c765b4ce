/*
 * keyprov.h - the key providers of one host, and the KEK cache.
 *
 * A key provider is referred to by name and holds KEKs (AES-256):
 *
 *  - native: built in, like vSphere's Native Key Provider. Its secret is a
 *    provider root (256 random bits) kept in the data directory, wrapped
 *    under the host root key. A KEK is derived from the root and the key's
 *    identifier (HKDF-SHA256), so one backup of the root, taken before the
 *    first key is used, restores every key ever issued. Issuing a KEK is
 *    refused until the provider has been backed up.
 *  - standard: a KMIP cluster (servers tried in order), mutual TLS with the
 *    src/kmip client. A new KEK is what vCenter does: Create AES-256,
 *    Activate, Add Attribute x-Vendor, x-Product, x-Product_Version,
 *    x-Component ("Virtual Machine"), x-Name (VM name), x-Identifier (VM
 *    UUID). A KEK is fetched with Get when first needed.
 *
 * KEKs never leave this module: callers wrap and unwrap small secrets (VM
 * file keys, disk secrets) with keyprov_wrap/keyprov_unwrap (AES key wrap
 * with padding, RFC 5649). Fetched KEKs are cached in secret memory for
 * the life of the process, so a KMS outage does not stop operations whose
 * keys are cached. A key that cannot be fetched gives ERR_KEY_UNAVAILABLE
 * with a detail naming the provider and the key.
 *
 * Persistence, under DATA_DIR: host.key (the host root key, 0600, created
 * on first open), providers.json (names, types, servers, default; no
 * secrets) and providers/NAME/ (the native root wrapped under the host key;
 * a standard provider's CA, client certificate, and client key sealed
 * under the host key). Every write is atomic.
 *
 * Thread safety: every function may be called from several threads; calls
 * that reach a KMS for the same provider are serialized.
 */
#ifndef VMSEAL_KEYPROV_KEYPROV_H
#define VMSEAL_KEYPROV_KEYPROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

/* provider names: [A-Za-z0-9._-], 1..63 chars, the first a letter or a
 * digit (a name is also a directory: never "." or "..") */
#define KEYPROV_NAME_MAX 64
#define KEYPROV_KEY_ID_MAX 128
#define KEYPROV_MAX_SERVERS 8
#define KEYPROV_KEK_LEN 32

enum keyprov_type { KEYPROV_NATIVE, KEYPROV_STANDARD };

/* A key: provider name + key ID, as stored in VM descriptors. */
struct keyprov_ref {
    char provider[KEYPROV_NAME_MAX];
    char key_id[KEYPROV_KEY_ID_MAX];
};

/* What a new KEK is for (standard providers write these as attributes). */
struct keyprov_kek_purpose {
    const char *vm_name;
    const char *vm_uuid;
};

/* A provider as listed (no secrets). */
struct keyprov_info {
    char name[KEYPROV_NAME_MAX];
    enum keyprov_type type;
    bool is_default;
    bool backed_up;       /* native: a backup was taken */
    size_t server_count;  /* standard */
    char servers[KEYPROV_MAX_SERVERS][256];
};

struct keyprov;

/* Opens (creating on first use) the providers of data_dir. */
RESULT keyprov_open(const char *data_dir, struct keyprov **out) __attribute__((nonnull));
void keyprov_close(struct keyprov **kp);

/* Adds a native provider. ERR_EXISTS if the name is taken; ERR_INVALID_ARG
 * with a detail for a bad name. The first provider added becomes the
 * default. */
RESULT keyprov_add_native(struct keyprov *kp, const char *name) __attribute__((nonnull));

/* Adds a standard provider: servers "host:port" (1..KEYPROV_MAX_SERVERS),
 * PEM texts of the CA that signs the servers' certificates, of our client
 * certificate and of its private key. Checks the PEMs parse and the key
 * matches the certificate, then does Discover Versions against the first
 * server that answers; refuses (nothing stored) if none does. */
RESULT keyprov_add_standard(struct keyprov *kp, const char *name, const char *const *servers,
                            size_t server_count, const char *ca_pem, const char *cert_pem,
                            const char *key_pem) __attribute__((nonnull));

RESULT keyprov_set_default(struct keyprov *kp, const char *name) __attribute__((nonnull));

/* The default provider's name into out; ERR_NOT_FOUND if there is none. */
RESULT keyprov_get_default(struct keyprov *kp, char out[KEYPROV_NAME_MAX])
    __attribute__((nonnull));

/* Fills up to cap entries; *count gets the number of providers. */
RESULT keyprov_list(struct keyprov *kp, struct keyprov_info *infos, size_t cap, size_t *count)
    __attribute__((nonnull));

RESULT keyprov_get_info(struct keyprov *kp, const char *name, struct keyprov_info *out)
    __attribute__((nonnull));

/* Native providers: writes a backup file's bytes to out (the provider's
 * name, id and root, encrypted under a key derived from the passphrase
 * with a memory-hard KDF, authenticated). Marks the provider backed up.
 * ERR_INVALID_ARG for a standard provider or a passphrase shorter than 8
 * bytes. */
RESULT keyprov_backup(struct keyprov *kp, const char *name, const void *passphrase,
                      size_t passphrase_len, struct buf *out) __attribute__((nonnull));

/* Restores a backup as a native provider (under the name it was backed up
 * with, or `name` when not NULL). ERR_AUTH for a wrong passphrase or a
 * tampered file; ERR_EXISTS if a provider with that name exists and holds
 * a different root, or if the same provider is on this host already under
 * another name. ERR_INVALID_ARG for a file that is no backup at all,
 * ERR_UNSUPPORTED for a newer format. name_out, when not NULL, receives
 * the name used. */
RESULT keyprov_restore(struct keyprov *kp, const void *file, size_t file_len,
                       const void *passphrase, size_t passphrase_len, const char *name,
                       char name_out[KEYPROV_NAME_MAX]) __attribute__((nonnull(1, 2, 4)));

/* Issues a new KEK from provider `provider` (NULL: the default) for
 * `purpose`, caches it, and returns its reference. Only an Active key is
 * returned. */
RESULT keyprov_new_kek(struct keyprov *kp, const char *provider,
                       const struct keyprov_kek_purpose *purpose, struct keyprov_ref *out)
    __attribute__((nonnull(1, 3, 4)));

/* Makes sure the KEK is cached (fetching it if needed). ERR_KEY_UNAVAILABLE
 * ("key provider P: key K: <why>") when it cannot be fetched;
 * ERR_KEY_STATE when it was destroyed; ERR_NOT_FOUND when the provider
 * does not exist. */
RESULT keyprov_fetch(struct keyprov *kp, const struct keyprov_ref *ref) __attribute__((nonnull));

/* True if the KEK is in the cache (no network). */
bool keyprov_is_cached(struct keyprov *kp, const struct keyprov_ref *ref) __attribute__((nonnull));

/* Wraps key (1..512 bytes) under the KEK (RFC 5649) into out (a plain
 * buf: wrapped keys are not secret). Fetches the KEK if needed. Refuses
 * with ERR_KEY_STATE a key that is not Active (new wrapping only uses
 * Active keys). */
RESULT keyprov_wrap(struct keyprov *kp, const struct keyprov_ref *ref, const void *key,
                    size_t key_len, struct buf *out) __attribute__((nonnull));

/* Unwraps into out, which must be secret memory of out_cap bytes; *out_len
 * gets the key's length. ERR_AUTH if the wrapped key does not open under
 * the KEK. Works for keys in any state but Destroyed. */
RESULT keyprov_unwrap(struct keyprov *kp, const struct keyprov_ref *ref, const void *wrapped,
                      size_t wrapped_len, void *out, size_t out_cap, size_t *out_len)
    __attribute__((nonnull));

/* Crypto-shredding: Revoke (Cessation Of Operation) and Destroy the key at
 * a standard provider; for a native provider, records the key as destroyed
 * (it is never derived again by this host; a backup restored elsewhere
 * still derives it: say so to the operator). Evicts it from the cache. */
RESULT keyprov_destroy_key(struct keyprov *kp, const struct keyprov_ref *ref)
    __attribute__((nonnull));

/* Health of a standard provider's server i: Discover Versions on a fresh
 * connection. */
RESULT keyprov_probe(struct keyprov *kp, const char *name, size_t server)
    __attribute__((nonnull));

#endif
