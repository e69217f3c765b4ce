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
 * a standard provider's trust anchors, client certificate, and client key
 * sealed under the host key, and a pending request's key, also sealed).
 * Every write is atomic.
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

/* What a new KEK is for (standard providers write these as attributes:
 * x-Component, x-Name, x-Identifier). */
struct keyprov_kek_purpose {
    const char *vm_name; /* x-Name: the VM's name, or the host's for a host key */
    const char *vm_uuid; /* x-Identifier; NULL or "": none */
    const char *component; /* x-Component; NULL: "Virtual Machine" */
};

/* How a standard provider trusts its servers' certificates. */
enum keyprov_trust {
    KEYPROV_TRUST_NONE,   /* not yet: created with servers only */
    KEYPROV_TRUST_CA,     /* they chain to an uploaded CA (ca.pem) */
    KEYPROV_TRUST_PINNED, /* the server presents exactly the pinned certificate */
};

#define KEYPROV_FINGERPRINT_SIZE 65 /* SHA-256 in lower-case hex, and the NUL */
#define KEYPROV_CERT_TEXT_MAX 256
#define KEYPROV_TIME_LEN 21 /* "2026-11-23T10:00:00Z" (RFC 3339, UTC), and the NUL */

/* What an operator is shown of a certificate (no secret). */
struct keyprov_cert_info {
    char subject[KEYPROV_CERT_TEXT_MAX]; /* RFC 4514, one line, cut to fit */
    char issuer[KEYPROV_CERT_TEXT_MAX];
    char not_before[KEYPROV_TIME_LEN];
    char not_after[KEYPROV_TIME_LEN];
    char sha256[KEYPROV_FINGERPRINT_SIZE]; /* of the DER, as openssl x509 -fingerprint */
};

/* A provider as listed (no secrets). */
struct keyprov_info {
    char name[KEYPROV_NAME_MAX];
    enum keyprov_type type;
    bool is_default;
    bool backed_up;       /* native: a backup was taken */
    size_t server_count;  /* standard */
    char servers[KEYPROV_MAX_SERVERS][256];
    /* standard: trust both ways (native providers are always configured) */
    bool configured;      /* trust != NONE and a client certificate */
    enum keyprov_trust trust;
    char pinned_sha256[KEYPROV_FINGERPRINT_SIZE]; /* trust PINNED */
    bool has_client_cert;
    struct keyprov_cert_info client_cert; /* has_client_cert; "" fields if unreadable */
    bool csr_pending;     /* a request was made and its certificate not uploaded yet */
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
 * certificate and of its private key. Checks the PEMs parse (ERR_CRYPTO
 * otherwise, or when the key is not the certificate's; only the
 * certificates and the key are kept of the texts), then does Discover
 * Versions against the first server that answers; refuses (nothing
 * stored) if none does. */
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

/* --- key provider administration (vCenter's "establish trust") ---
 *
 * A standard provider may be created with its servers only: it is then
 * "not configured" (no KEK can be issued or fetched) until trust goes both
 * ways: we trust the servers (an uploaded CA, or the server's own
 * certificate pinned after the operator confirmed its fingerprint), and
 * the servers trust us (a client certificate: self-signed, signed by the
 * KMS from our CSR, or uploaded with its key). Private keys are made here
 * or given once, kept sealed under the host key (never in clear on disk),
 * and only ever unsealed into secret memory. Every change is written
 * atomically before it takes effect; the provider's next connection uses
 * it. Changes need no network; the health check says whether they work.
 *
 * Errors: ERR_NOT_FOUND (no such provider or server), ERR_INVALID_ARG
 * with a detail (a native provider, a bad address, a PEM that is not what
 * it should be, a fingerprint that does not match, a certificate not
 * issued for the pending request's key), ERR_EXISTS (a server listed
 * twice), ERR_PERM (a refusal the state explains: the last server, the
 * default provider while others exist), ERR_PROVIDER (a server that could
 * not be reached or gave no certificate). */

/* Adds a standard provider with servers only (1..KEYPROV_MAX_SERVERS,
 * distinct): not configured, nothing contacted. */
RESULT keyprov_add_standard_servers(struct keyprov *kp, const char *name,
                                    const char *const *servers, size_t server_count)
    __attribute__((nonnull));

/* Removes a provider: it leaves providers.json, its cached KEKs are wiped,
 * its connection closed and its files removed (a native provider's
 * destroyed-keys list is kept, so that a restore of its backup still
 * refuses those keys). Refused (ERR_PERM) for the default provider while
 * others exist. Checking that no VM uses it is the caller's business. */
RESULT keyprov_remove(struct keyprov *kp, const char *name) __attribute__((nonnull));

/* Adds a server ("host:port" or "[v6]:port") at the end of the list, or
 * removes one. A server matches whatever its spelling: host names without
 * case, IPv6 with or without brackets ("fd00::5:5696" is [fd00::5]:5696:
 * the last ':' separates the port). */
RESULT keyprov_server_add(struct keyprov *kp, const char *name, const char *server)
    __attribute__((nonnull));
RESULT keyprov_server_remove(struct keyprov *kp, const char *name, const char *server)
    __attribute__((nonnull));

/* A server's certificate chain, fetched without verifying it and without
 * a client certificate, for the operator to confirm. */
struct keyprov_server_cert {
    char address[256];            /* the server, as the provider lists it */
    struct keyprov_cert_info leaf;
    size_t chain_count;           /* certificates the server sent, leaf first */
    struct buf chain_pem;         /* their PEM texts, leaf first; buf_free it */
};

/* Connects to server (NULL: the first of the provider's; else one of its
 * servers) over TLS within KEYPROV_FETCH_TIMEOUT_MS, and fills out. Changes
 * nothing. ERR_PROVIDER when no certificate came. */
#define KEYPROV_FETCH_TIMEOUT_MS 5000
RESULT keyprov_fetch_server_cert(struct keyprov *kp, const char *name, const char *server,
                                 struct keyprov_server_cert *out) __attribute__((nonnull(1, 2, 4)));

/* Trust: every certificate of ca_pem becomes a trust anchor (the servers'
 * certificates must chain to one and name the server's host). */
RESULT keyprov_trust_ca(struct keyprov *kp, const char *name, const char *ca_pem)
    __attribute__((nonnull));

/* Trust: pins the first certificate of cert_pem, if its SHA-256 is
 * `fingerprint` (the one the operator confirmed; 64 hex digits, ':'
 * between pairs allowed). Only that exact certificate is then accepted,
 * whatever its issuer or names. */
RESULT keyprov_trust_pinned(struct keyprov *kp, const char *name, const char *cert_pem,
                            const char *fingerprint) __attribute__((nonnull));

/* Client identity: a new key and a self-signed certificate (CN common_name;
 * NULL: "vmseal-" and this host's name), which becomes the provider's
 * client certificate. Its PEM is appended to cert_out, to register with
 * the KMS. Any pending request is dropped. */
RESULT keyprov_client_self_signed(struct keyprov *kp, const char *name, const char *common_name,
                                  struct buf *cert_out) __attribute__((nonnull(1, 2, 4)));

/* Client identity: a new key (kept sealed, pending) and a request for it
 * (CN as above), whose PEM is appended to csr_out for the KMS to sign. The
 * current client certificate, if any, stays in use until the signed one
 * is uploaded. A new request replaces a pending one. */
RESULT keyprov_client_csr(struct keyprov *kp, const char *name, const char *common_name,
                          struct buf *csr_out) __attribute__((nonnull(1, 2, 4)));

/* Client identity: cert_pem (the certificate, then any intermediates) with
 * key_pem (unencrypted PEM), or, key_pem NULL, the certificate the KMS
 * signed for the pending request (it must be for that request's key).
 * Refuses an expired certificate. */
RESULT keyprov_client_certificate(struct keyprov *kp, const char *name, const char *cert_pem,
                                  const char *key_pem) __attribute__((nonnull(1, 2, 3)));

/* Health. */
enum keyprov_health_status {
    KEYPROV_HEALTH_OK,             /* answered Discover Versions */
    KEYPROV_HEALTH_UNREACHABLE,    /* no TCP connection */
    KEYPROV_HEALTH_TLS_ERROR,      /* connected, but TLS failed either way */
    KEYPROV_HEALTH_NOT_CONFIGURED, /* trust is not set up both ways: not tried */
    KEYPROV_HEALTH_ERROR,          /* TLS worked, the KMIP answer did not */
};
#define KEYPROV_HEALTH_VERSIONS_MAX 16
#define KEYPROV_HEALTH_TIMEOUT_MS 2500 /* connect, and each read or write */

struct keyprov_server_health {
    char address[256];
    enum keyprov_health_status status;
    size_t version_count;
    char versions[KEYPROV_HEALTH_VERSIONS_MAX][12]; /* "2.1", newest first as sent */
    char error[256];                                /* "" when OK */
    unsigned latency_ms;                            /* of the whole check */
};

struct keyprov_health {
    size_t server_count; /* 0 for a native provider, or one that is gone */
    struct keyprov_server_health servers[KEYPROV_MAX_SERVERS];
};

/* Checks every server of the n providers named, all at once (Discover
 * Versions, each over a fresh connection and with its own timeout), into
 * out[0..n). Fails only when out of resources. */
RESULT keyprov_health(struct keyprov *kp, const char *const *names, size_t n,
                      struct keyprov_health *out) __attribute__((nonnull));

/* "ok", "unreachable", "tls_error", "not_configured", "error". */
const char *keyprov_health_status_name(enum keyprov_health_status status);

#endif
