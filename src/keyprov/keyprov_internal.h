/*
 * keyprov_internal.h - what the files of src/keyprov share, and the few
 * hooks the unit test uses to check the key hierarchy from outside (it
 * recomputes KEKs from a provider root and scans files for key bytes).
 * Not part of the contract: nothing outside src/keyprov and
 * tests/unit/test_keyprov.c includes it.
 *
 * Locks, always taken in this order (a thread holding a later one never
 * asks for an earlier one):
 *
 *   1. keyprov_provider.lock  one per provider: serializes its KMS calls,
 *                             its lazy loading and its tombstone list
 *   2. keyprov.lock           the registry: the provider list, the default,
 *                             the backed-up flags and providers.json
 *   3. the KEK cache's rwlock (cache.c), innermost
 *
 * A removed provider leaves the list but is freed only at close (marked
 * removed, its client closed), so a provider pointer found under the
 * registry lock stays valid after it is released; using it then fails.
 *
 * A standard provider's configuration (servers, trust, client identity)
 * changes with both its lock and the registry lock held: a reader holding
 * either sees it whole.
 */
#ifndef VMSEAL_KEYPROV_KEYPROV_INTERNAL_H
#define VMSEAL_KEYPROV_KEYPROV_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "keyprov/keyprov.h"
#include "kmip/client.h"

#define KEYPROV_ROOT_LEN 32     /* a native provider's root: 256 random bits */
#define KEYPROV_HOST_KEY_LEN 32 /* DATA_DIR/host.key */
#define KEYPROV_UUID_LEN 36     /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define KEYPROV_SERVER_MAX 256  /* "host:port", with its NUL */
#define KEYPROV_MAX_PROVIDERS 256
#define KEYPROV_PEM_MAX (64u << 10) /* a CA bundle, a certificate chain, a key */
#define KEYPROV_CA_CERTS_MAX 64       /* certificates in an uploaded CA bundle */
#define KEYPROV_CHAIN_CERTS_MAX 8     /* a client certificate and its intermediates */

/* A standard provider's files under providers/NAME/. */
#define KEYPROV_CA_FILE "ca.pem"           /* trust anchors: a CA bundle, or the pinned cert */
#define KEYPROV_CERT_FILE "cert.pem"       /* our client certificate and its chain */
#define KEYPROV_KEY_FILE "key.sealed"      /* its key, sealed (KEYPROV_PURPOSE_CLIENT_KEY) */
#define KEYPROV_CSR_FILE "csr.pem"         /* a pending request */
#define KEYPROV_CSR_KEY_FILE "csr-key.sealed" /* its key, sealed (KEYPROV_PURPOSE_CSR_KEY) */
#define KEYPROV_PURPOSE_CLIENT_KEY "standard-client-key"
#define KEYPROV_PURPOSE_CSR_KEY "standard-csr-key"
/* A native provider's. */
#define KEYPROV_ROOT_FILE "root.sealed"
#define KEYPROV_TOMBSTONE_FILE "destroyed.json"

/* HKDF-SHA256 info prefix of a native KEK; the key ID follows (RFC 5869
 * §3.2: info binds the output to its use). No salt: the root is uniformly
 * random, so extract with the zero salt is sound (RFC 5869 §3.1). */
#define KEYPROV_NATIVE_KEK_INFO "vmseal native KEK v1"

/* --- the host key (hostkey.c) --- */

struct keyprov_hostkey;

/* Loads DATA_DIR/host.key, creating it (32 random bytes, 0600, atomic
 * write) when `create` is true and it does not exist. Refuses a file that
 * is not 32 bytes or that group or others may access (ERR_PERM). Keeps
 * only a sealing key derived from it, in secret memory. */
RESULT keyprov_hostkey_load(const char *path, bool create, struct keyprov_hostkey **out)
    __attribute__((nonnull));
void keyprov_hostkey_free(struct keyprov_hostkey **hk);

/* Seals pt for (purpose, name, id): AES-256-GCM under the host sealing
 * key, the three strings bound as AAD so that a sealed file moved to
 * another provider or use does not open. Appends a versioned blob to out. */
RESULT keyprov_hostkey_seal(const struct keyprov_hostkey *hk, const char *purpose, const char *name,
                            const char *id, const void *pt, size_t len, struct buf *out)
    __attribute__((nonnull(1, 2, 3, 4, 7)));

/* Opens what keyprov_hostkey_seal wrote, appending the plaintext to out (a
 * secret buf). ERR_AUTH for a wrong host key, a tampered blob or other
 * (purpose, name, id). */
RESULT keyprov_hostkey_open(const struct keyprov_hostkey *hk, const char *purpose, const char *name,
                            const char *id, const void *sealed, size_t sealed_len, struct buf *out)
    __attribute__((nonnull));

/* --- the KEK cache (cache.c): secret memory, thread-safe --- */

struct keyprov_cache;

RESULT keyprov_cache_new(struct keyprov_cache **out) __attribute__((nonnull));
void keyprov_cache_free(struct keyprov_cache **cache);

/* Adds or replaces the entry of (provider, key_id) with kek and its KMIP
 * state (KMIP_STATE_*). */
RESULT keyprov_cache_put(struct keyprov_cache *cache, const char *provider, const char *key_id,
                         const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
    __attribute__((nonnull));

/* Wipes and drops the entry if there is one. */
void keyprov_cache_evict(struct keyprov_cache *cache, const char *provider, const char *key_id)
    __attribute__((nonnull));

/* Wipes and drops every entry of a provider. */
void keyprov_cache_evict_provider(struct keyprov_cache *cache, const char *provider)
    __attribute__((nonnull));

bool keyprov_cache_has(struct keyprov_cache *cache, const char *provider, const char *key_id)
    __attribute__((nonnull));

/* Runs fn(arg, kek, state) on the cached KEK under the cache's read lock
 * (so that an eviction cannot wipe it mid-use) and returns fn's result;
 * ERR_NOT_FOUND, fn not called, when the key is not cached. fn must not
 * call back into the cache. */
typedef vs_result (*keyprov_cache_fn)(void *arg, const uint8_t kek[KEYPROV_KEK_LEN],
                                      uint32_t state);
RESULT keyprov_cache_use(struct keyprov_cache *cache, const char *provider, const char *key_id,
                         keyprov_cache_fn fn, void *arg) __attribute__((nonnull(1, 2, 3, 4)));

/* Writing to a connection the key server has closed raises SIGPIPE, whose
 * default action kills the process; a library must not impose
 * signal(SIGPIPE, SIG_IGN) on its caller. So every call that may reach a
 * KMS (or close a TLS connection) runs with SIGPIPE blocked in the calling
 * thread, and a SIGPIPE it raised is consumed before the mask is restored
 * (the way libpq does it). */
struct keyprov_sigpipe {
    sigset_t old_mask;
    bool was_pending;
};
void keyprov_sigpipe_block(struct keyprov_sigpipe *s) __attribute__((nonnull));
void keyprov_sigpipe_restore(const struct keyprov_sigpipe *s) __attribute__((nonnull));

/* --- providers --- */

struct keyprov_provider {
    char name[KEYPROV_NAME_MAX];
    enum keyprov_type type;
    pthread_mutex_t lock;           /* lock order: see the top of this file */
    struct keyprov_sigpipe sigpipe; /* the holder's, while it holds lock */

    /* A provider whose files did not load at open (a damaged root, an
     * unreadable tombstone list) stays listed and fails every use with the
     * error it had, until a restore replaces it. */
    bool broken;
    struct err_state broken_error;

    /* native */
    char id[KEYPROV_UUID_LEN + 1]; /* random UUID, fixed at creation */
    bool backed_up;                /* under keyprov.lock */
    uint8_t *root;                 /* secret memory, KEYPROV_ROOT_LEN */
    char (*tombstones)[KEYPROV_KEY_ID_MAX];
    size_t tombstone_count;

    /* Removed: no longer listed (keyprov_remove); every use fails. */
    bool removed;

    /* standard (configuration: see the top of this file) */
    size_t server_count;
    char servers[KEYPROV_MAX_SERVERS][KEYPROV_SERVER_MAX];
    enum keyprov_trust trust;                     /* providers.json */
    char pinned_sha256[KEYPROV_FINGERPRINT_SIZE]; /* providers.json, trust PINNED */
    bool has_client_cert;                         /* cert.pem and key.sealed are there */
    struct keyprov_cert_info client_cert;         /* of cert.pem */
    bool csr_pending;                             /* csr-key.sealed is there */
    struct kmip_client *client;                   /* connected lazily, under lock */
};

struct keyprov {
    char *data_dir;
    struct keyprov_hostkey *hostkey;
    struct keyprov_cache *cache;
    pthread_mutex_t lock; /* the registry (lock order: see the top) */
    struct keyprov_provider **providers;
    size_t provider_count;
    char default_name[KEYPROV_NAME_MAX]; /* "" when there is none */
    struct keyprov_provider **removed;   /* freed at close */
    size_t removed_count;
};

/* What each type of provider does; keyprov.c dispatches through a table
 * of these. Each is called with the provider's lock held. */
struct keyprov_type_ops {
    const char *name; /* "native", "standard": providers.json's "type" */
    RESULT(*new_kek)
    (struct keyprov *kp, struct keyprov_provider *p, const struct keyprov_kek_purpose *purpose,
     struct keyprov_ref *out);
    RESULT (*fetch)(struct keyprov *kp, struct keyprov_provider *p, const char *key_id);
    RESULT (*destroy)(struct keyprov *kp, struct keyprov_provider *p, const char *key_id);
};

extern const struct keyprov_type_ops keyprov_native_ops;
extern const struct keyprov_type_ops keyprov_standard_ops;

/* Paths under the data directory, into out (ERR_TOO_LARGE if they do not
 * fit). file may be NULL for the provider's directory itself. */
RESULT keyprov_path(const struct keyprov *kp, const char *provider, const char *file, char *out,
                    size_t size) __attribute__((nonnull(1, 4)));

/* A provider name as the contract allows it: [A-Za-z0-9._-], 1..63 bytes,
 * starting with a letter or a digit (so never "." or ".." as a directory,
 * never an option to the CLI). ERR_INVALID_ARG with a detail otherwise. */
RESULT keyprov_check_name(const char *name) __attribute__((nonnull));

/* "host:port" or "[v6]:port", with a port in 1..65535 and a host of
 * letters, digits, '.', '-' (or hex digits and ':' in brackets).
 * ERR_INVALID_ARG with a detail otherwise. */
RESULT keyprov_check_server(const char *server) __attribute__((nonnull));

/* A list of servers as a standard provider takes it: 1..KEYPROV_MAX_SERVERS,
 * each valid, no two the same (keyprov_server_same). */
RESULT keyprov_check_servers(const char *const *servers, size_t count) __attribute__((nonnull));

/* Whether two servers are the same: host names compared without case,
 * IPv6 with or without brackets ("fd00::5:5696" is [fd00::5]:5696), ports
 * as numbers. */
bool keyprov_server_same(const char *a, const char *b) __attribute__((nonnull));

/* --- the registry's operations, shared by keyprov.c and admin.c --- */

/* The provider called name, under kp->lock; NULL if none. */
struct keyprov_provider *keyprov_lookup(const struct keyprov *kp, const char *name)
    __attribute__((nonnull));

/* The provider called name (NULL: the default). ERR_NOT_FOUND if none. */
RESULT keyprov_find(struct keyprov *kp, const char *name, struct keyprov_provider **out)
    __attribute__((nonnull(1, 3)));

/* ERR_EXISTS if a provider is called name. Under kp->lock. */
RESULT keyprov_name_free(const struct keyprov *kp, const char *name) __attribute__((nonnull));

/* Makes *pp the list's next entry once the registry file says so (the
 * first becomes the default); takes it. Under kp->lock. */
RESULT keyprov_commit_new(struct keyprov *kp, struct keyprov_provider **pp)
    __attribute__((nonnull));

/* Locks p for a use, refusing a removed or broken provider (with the error
 * it had). SIGPIPE stays blocked in this thread until keyprov_unlock: the
 * use may reach a KMS. */
RESULT keyprov_lock_usable(struct keyprov_provider *p) __attribute__((nonnull));
void keyprov_unlock(struct keyprov_provider *p) __attribute__((nonnull));

/* Removes what a provider called name may have left in providers/NAME/,
 * but a native provider's destroyed-keys list (admin.c). Under kp->lock. */
RESULT keyprov_provider_files_clear(struct keyprov *kp, const char *name) __attribute__((nonnull));

/* A provider with its lock initialised and nothing else; and its release
 * (wipes the root, closes the client). */
RESULT keyprov_provider_new(struct keyprov_provider **out) __attribute__((nonnull));
void keyprov_provider_free(struct keyprov_provider **p);

/* A key ID as a descriptor can carry it: 1..127 bytes of printable ASCII,
 * no space (a KMIP Unique Identifier, or a native provider's UUID). */
bool keyprov_is_key_id(const char *key_id) __attribute__((nonnull));

/* A random (version 4) UUID in lower-case text form (RFC 9562 §5.4). */
RESULT keyprov_uuid_v4(char out[KEYPROV_UUID_LEN + 1]) __attribute__((nonnull));
bool keyprov_is_uuid(const char *s) __attribute__((nonnull));

/* Raises ERR_KEY_UNAVAILABLE (or code) with "key provider P: key K: " and
 * the detail of the error that was last raised on this thread (the cause)
 * as the reason. */
vs_result keyprov_raise_key(enum err_code code, const char *file, int line, const char *provider,
                            const char *key_id) __attribute__((nonnull));
#define KEYPROV_RAISE_KEY(code, provider, key_id) \
    keyprov_raise_key((code), __FILE__, __LINE__, (provider), (key_id))

/* --- providers.json (registry.c) --- */

/* Reads DATA_DIR/providers.json into kp (providers without their secrets
 * loaded). A missing file is an empty registry. ERR_PROVIDER with a detail
 * naming the field for anything that is not exactly what
 * keyprov_registry_save writes. Called once, at open. */
RESULT keyprov_registry_load(struct keyprov *kp) __attribute__((nonnull));

/* The same from the file's bytes (text may be NULL when len is 0; path
 * names the file in details): what
 * keyprov_registry_load does once it has read them, and what the fuzz
 * target feeds. Appends to kp->providers (room for KEYPROV_MAX_PROVIDERS). */
RESULT keyprov_registry_parse(struct keyprov *kp, const char *path, const void *text, size_t len)
    __attribute__((nonnull(1, 2)));

/* Writes kp's registry atomically, with default_name ("" for none) as the
 * default. Call with kp->lock held. extra, when not NULL, is written as if
 * it were in the list: a provider being added joins kp's list only once
 * the file says so, and a change (default, backed-up flag) is made to kp
 * only once it is on disk. */
RESULT keyprov_registry_save(const struct keyprov *kp, const struct keyprov_provider *extra,
                             const char *default_name) __attribute__((nonnull(1, 3)));

/* --- native providers (native.c, backup.c) --- */

/* Loads the sealed root and the tombstones of a native provider. */
RESULT keyprov_native_load(struct keyprov *kp, struct keyprov_provider *p) __attribute__((nonnull));

/* Reads a destroyed.json's bytes into p's tombstones (which must be
 * empty); ERR_PROVIDER for anything but what the provider writes. */
RESULT keyprov_native_parse_tombstones(struct keyprov_provider *p, const char *path,
                                       const void *text, size_t len) __attribute__((nonnull(1, 2)));

/* Creates p's root (32 random bytes) and seals it to its file. p->name
 * and p->id are set. */
RESULT keyprov_native_create_root(struct keyprov *kp, struct keyprov_provider *p)
    __attribute__((nonnull));

/* Seals root as p's root file (restore). */
RESULT keyprov_native_store_root(struct keyprov *kp, struct keyprov_provider *p,
                                 const uint8_t root[KEYPROV_ROOT_LEN]) __attribute__((nonnull));

/* KEK = HKDF-SHA256(root, info = KEYPROV_NATIVE_KEK_INFO || key_id). */
RESULT keyprov_native_derive(const uint8_t root[KEYPROV_ROOT_LEN], const char *key_id,
                             uint8_t kek[KEYPROV_KEK_LEN]) __attribute__((nonnull));

/* The backup file (backup.c). See keyprov_backup/keyprov_restore. */
struct keyprov_backup_contents { /* always in secret memory */
    char name[KEYPROV_NAME_MAX];
    char id[KEYPROV_UUID_LEN + 1];
    uint8_t root[KEYPROV_ROOT_LEN];
};
RESULT keyprov_backup_encode(const char *name, const char *id, const uint8_t root[KEYPROV_ROOT_LEN],
                             const void *passphrase, size_t passphrase_len, struct buf *out)
    __attribute__((nonnull));
/* Decodes and authenticates a backup into *out (secret memory, which the
 * caller frees with secret_free). */
RESULT keyprov_backup_decode(const void *file, size_t file_len, const void *passphrase,
                             size_t passphrase_len, struct keyprov_backup_contents **out)
    __attribute__((nonnull));

/* The fields of a backup file, checked and bounded, pointing into it; no
 * key derived, nothing decrypted. ERR_INVALID_ARG (no backup),
 * ERR_UNSUPPORTED (a newer version) or ERR_AUTH (anything else wrong). */
struct keyprov_backup_parsed {
    uint8_t log2_n;
    uint32_t r, p;
    const uint8_t *salt, *iv, *ct, *tag, *header;
    size_t salt_len, ct_len, header_len;
};
RESULT keyprov_backup_parse(const void *file, size_t file_len, struct keyprov_backup_parsed *out)
    __attribute__((nonnull));

/* The decrypted contents of a backup, read strictly into out. */
RESULT keyprov_backup_parse_contents(const void *plain, size_t len,
                                     struct keyprov_backup_contents *out) __attribute__((nonnull));

/* The backup file's scrypt parameters (RFC 7914): what is written, and the
 * bounds a file is held to before any work is done for it. */
#define KEYPROV_BACKUP_LOG2_N 15 /* N = 32768: 32 MiB with r = 8 */
#define KEYPROV_BACKUP_R 8
#define KEYPROV_BACKUP_P 1
#define KEYPROV_BACKUP_LOG2_N_MIN 14
#define KEYPROV_BACKUP_LOG2_N_MAX 20
#define KEYPROV_BACKUP_R_MAX 32
#define KEYPROV_BACKUP_P_MAX 16
#define KEYPROV_BACKUP_MAXMEM ((uint64_t)256 << 20) /* 128 * r * N (+ p) */
#define KEYPROV_BACKUP_WORK_MAX ((uint64_t)1 << 24) /* N * r * p */

/* --- standard providers (standard.c) --- */

/* What a standard provider connects with: PEM texts, NUL-terminated (key
 * in secret memory), and the pin. */
struct keyprov_tls_config {
    struct buf ca;   /* trust anchors */
    struct buf cert; /* client certificate and chain */
    struct buf key;  /* secret */
    char pinned_sha256[KEYPROV_FINGERPRINT_SIZE]; /* "" unless trust is PINNED */
};
void keyprov_tls_config_free(struct keyprov_tls_config *t);

/* Reads p's trust anchors, client certificate and unsealed key into t.
 * ERR_PROVIDER ("not configured ...") unless trust is set both ways.
 * Called with p->lock or kp->lock held (or on a snapshot of p). */
RESULT keyprov_standard_load_tls(struct keyprov *kp, const struct keyprov_provider *p,
                                 struct keyprov_tls_config *t) __attribute__((nonnull));

/* A client for servers[0..count) with t: checks that the PEMs parse and
 * that the key matches the certificate. timeout_ms 0: the default. */
RESULT keyprov_standard_connect(const char *const *servers, size_t count,
                                const struct keyprov_tls_config *t, int timeout_ms,
                                struct kmip_client **out) __attribute__((nonnull));

/* Writes p's files: the PEMs, and the client key sealed under the host key. */
RESULT keyprov_standard_store(struct keyprov *kp, const struct keyprov_provider *p,
                              const char *ca_pem, const char *cert_pem, const char *key_pem)
    __attribute__((nonnull));

/* Reads what p keeps on disk of its client identity into p (has_client_cert,
 * client_cert, csr_pending). At open, and after a change. */
void keyprov_standard_load_identity(struct keyprov *kp, struct keyprov_provider *p)
    __attribute__((nonnull));

/* Seals (purpose, p's name) and writes a key file atomically (0600). */
RESULT keyprov_standard_write_sealed(struct keyprov *kp, const char *name, const char *file,
                                     const char *purpose, const void *key, size_t len)
    __attribute__((nonnull));

/* Removes a file of provider name; a missing one is fine. */
RESULT keyprov_remove_file(struct keyprov *kp, const char *name, const char *file)
    __attribute__((nonnull));

/* Closes p's connection (under p->lock), so that the next use reconnects
 * with what is configured now. */
void keyprov_standard_disconnect(struct keyprov_provider *p) __attribute__((nonnull));

/* Discover Versions on a fresh connection to server i. p->lock held. */
RESULT keyprov_standard_probe(struct keyprov *kp, struct keyprov_provider *p, size_t server)
    __attribute__((nonnull));

/* --- test hooks: the unit test reads secrets to check them from outside --- */

/* Copies a native provider's root into out. */
RESULT keyprov_test_native_root(struct keyprov *kp, const char *name, uint8_t out[KEYPROV_ROOT_LEN])
    __attribute__((nonnull));

/* Copies a cached KEK into out; ERR_NOT_FOUND when it is not cached. */
RESULT keyprov_test_cached_kek(struct keyprov *kp, const struct keyprov_ref *ref,
                               uint8_t out[KEYPROV_KEK_LEN]) __attribute__((nonnull));

#endif
