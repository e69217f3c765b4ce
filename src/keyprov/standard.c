/*
 * standard.c - the standard key provider: KEKs are managed objects of a
 * KMIP cluster, reached with the src/kmip client (mutual TLS, servers
 * tried in order).
 *
 *   providers/NAME/ca.pem          what we trust the servers by: a CA bundle,
 *                                  or (trust "pinned") the one certificate the
 *                                  operator confirmed, its SHA-256 in
 *                                  providers.json
 *   providers/NAME/cert.pem        our client certificate (and its chain)
 *   providers/NAME/key.sealed      our client key, sealed under the host key
 *                                  for ("standard-client-key", NAME): it is
 *                                  never on disk in clear, and reaches the
 *                                  TLS library from secret memory
 *   providers/NAME/csr.pem         a pending certificate request (admin.c),
 *   providers/NAME/csr-key.sealed  and its key, sealed ("standard-csr-key")
 *
 * A new KEK is made as vCenter makes one (tests/data/vcenter-7.0.3): Create
 * AES-256 (Encrypt|Decrypt), Activate, then the descriptive attributes
 * x-Vendor, x-Product, x-Product_Version, x-Component, x-Name,
 * x-Identifier. Those attributes only describe the key; a server that
 * refuses them (PyKMIP has no Add Attribute at all) still gives a usable
 * key, and the refusal is logged, not raised.
 *
 * Fetching is Get Attributes (State) then Get: the state is remembered in
 * the cache, so that new wrapping uses only Active keys and a Destroyed key
 * is never used. Destroying is Revoke (Cessation of Operation, when the key
 * is Active) then Destroy: the server's copy is the only one, so this is
 * crypto-shredding for real.
 *
 * One kmip_client per provider, created on first use; every call on it is
 * made with the provider's lock held, so calls to one provider are
 * serialized and calls to different providers are not. A change of
 * configuration (admin.c) closes it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"
#include "kmip/kmip_defs.h"
#include "kms/pki_gen.h"

#ifndef VMSEAL_VERSION
#error "VMSEAL_VERSION must be defined by the build (src/keyprov/CMakeLists.txt)"
#endif

#define KEYPROV_KMIP_TIMEOUT_MS 10000
#define KEYPROV_SEALED_KEY_MAX (KEYPROV_PEM_MAX + 64)

/* Reads a file of p into b (allocated here), NUL-terminated. */
static vs_result keyprov_read_text(const struct keyprov *kp, const char *name, const char *file,
                                   struct buf *b, bool secret)
{
    char path[4096];

    GUARD(keyprov_path(kp, name, file, path, sizeof(path)));
    GUARD(secret ? buf_alloc_secret(b, 0, KEYPROV_PEM_MAX + 1)
                 : buf_alloc(b, 0, KEYPROV_PEM_MAX + 1));
    GUARD(file_read_all(path, KEYPROV_PEM_MAX, b));
    return buf_write_u8(b, 0);
}

/* Opens a sealed key file of provider name into b (a new secret buf),
 * NUL-terminated. */
static vs_result keyprov_read_sealed(const struct keyprov *kp, const char *name, const char *file,
                                     const char *purpose, struct buf *b)
{
    vs_result rc = OK_RESULT;
    struct buf sealed = {0};
    char path[4096];

    GUARD(keyprov_path(kp, name, file, path, sizeof(path)));
    GUARD(buf_alloc(&sealed, 0, KEYPROV_SEALED_KEY_MAX));
    GUARD_OUT(buf_alloc_secret(b, 0, KEYPROV_SEALED_KEY_MAX));
    GUARD_OUT(file_read_all(path, KEYPROV_SEALED_KEY_MAX, &sealed));
    GUARD_OUT(keyprov_hostkey_open(kp->hostkey, purpose, name, "", buf_data(&sealed),
                                   buf_len(&sealed), b));
    GUARD_OUT(buf_write_u8(b, 0));
out:
    buf_free(&sealed);
    return rc;
}

void keyprov_tls_config_free(struct keyprov_tls_config *t)
{
    buf_free(&t->ca);
    buf_free(&t->cert);
    buf_free(&t->key); /* wiped */
    t->pinned_sha256[0] = '\0';
}

vs_result keyprov_standard_load_tls(struct keyprov *kp, const struct keyprov_provider *p,
                                    struct keyprov_tls_config *t)
{
    vs_result rc = OK_RESULT;

    memset(t, 0, sizeof(*t));
    if (p->trust == KEYPROV_TRUST_NONE || !p->has_client_cert) {
        RAISE(ERR_PROVIDER);
        return err_detail("key provider %s is not configured: %s", p->name,
                          p->trust == KEYPROV_TRUST_NONE
                              ? "its servers are not trusted yet (upload their CA, or confirm "
                                "and trust a server's certificate)"
                              : "it has no client certificate yet (make a self-signed one or a "
                                "CSR, or upload a certificate and key)");
    }
    GUARD_OUT(keyprov_read_text(kp, p->name, KEYPROV_CA_FILE, &t->ca, false));
    GUARD_OUT(keyprov_read_text(kp, p->name, KEYPROV_CERT_FILE, &t->cert, false));
    GUARD_OUT(keyprov_read_sealed(kp, p->name, KEYPROV_KEY_FILE, KEYPROV_PURPOSE_CLIENT_KEY,
                                  &t->key));
    if (p->trust == KEYPROV_TRUST_PINNED)
        snprintf(t->pinned_sha256, sizeof(t->pinned_sha256), "%s", p->pinned_sha256);
out:
    if (!is_ok(rc))
        keyprov_tls_config_free(t);
    return rc;
}

vs_result keyprov_standard_connect(const char *const *servers, size_t count,
                                   const struct keyprov_tls_config *t, int timeout_ms,
                                   struct kmip_client **out)
{
    struct kmip_client_config cfg = {
        .server_count = count,
        .ca_pem = (const char *)buf_data(&t->ca),
        .cert_pem = (const char *)buf_data(&t->cert),
        .key_pem = (const char *)buf_data(&t->key),
        .pinned_sha256 = t->pinned_sha256[0] != '\0' ? t->pinned_sha256 : NULL,
        .timeout_ms = timeout_ms > 0 ? timeout_ms : KEYPROV_KMIP_TIMEOUT_MS,
    };

    ENSURE(count >= 1 && count <= KEYPROV_MAX_SERVERS, ERR_INVALID_ARG);
    for (size_t i = 0; i < count; i++)
        cfg.servers[i] = servers[i];
    return kmip_client_new(&cfg, out);
}

vs_result keyprov_standard_write_sealed(struct keyprov *kp, const char *name, const char *file,
                                        const char *purpose, const void *key, size_t len)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf sealed = {0};

    GUARD(buf_alloc(&sealed, 0, KEYPROV_SEALED_KEY_MAX));
    GUARD_OUT(keyprov_hostkey_seal(kp->hostkey, purpose, name, "", key, len, &sealed));
    GUARD_OUT(keyprov_path(kp, name, file, path, sizeof(path)));
    GUARD_OUT(file_write_atomic(path, buf_data(&sealed), buf_len(&sealed), 0600));
out:
    buf_free(&sealed);
    return rc;
}

vs_result keyprov_remove_file(struct keyprov *kp, const char *name, const char *file)
{
    char path[4096];

    GUARD(keyprov_path(kp, name, file, path, sizeof(path)));
    if (unlink(path) != 0 && errno != ENOENT) {
        int e = errno;
        RAISE(ERR_IO);
        err_detail("removing %s", path);
        return err_errno(e);
    }
    return OK_RESULT;
}

vs_result keyprov_standard_store(struct keyprov *kp, const struct keyprov_provider *p,
                                 const char *ca_pem, const char *cert_pem, const char *key_pem)
{
    char path[4096];

    GUARD(keyprov_path(kp, p->name, NULL, path, sizeof(path)));
    GUARD(file_mkdir(path, 0700));
    /* The key first: a crash in between leaves a key without its
     * certificate (refused as a mismatch), never a certificate whose key
     * is missing or someone else's. */
    GUARD(keyprov_standard_write_sealed(kp, p->name, KEYPROV_KEY_FILE, KEYPROV_PURPOSE_CLIENT_KEY,
                                        key_pem, strlen(key_pem)));
    /* Certificates are public. */
    GUARD(keyprov_path(kp, p->name, KEYPROV_CA_FILE, path, sizeof(path)));
    GUARD(file_write_atomic(path, ca_pem, strlen(ca_pem), 0644));
    GUARD(keyprov_path(kp, p->name, KEYPROV_CERT_FILE, path, sizeof(path)));
    return file_write_atomic(path, cert_pem, strlen(cert_pem), 0644);
}

void keyprov_standard_load_identity(struct keyprov *kp, struct keyprov_provider *p)
{
    struct buf cert = {0};
    struct pki_cert_summary s;
    char path[4096];
    struct stat st;

    p->has_client_cert = false;
    p->csr_pending = false;
    memset(&p->client_cert, 0, sizeof(p->client_cert));
    if (is_ok(keyprov_path(kp, p->name, KEYPROV_CSR_KEY_FILE, path, sizeof(path))))
        p->csr_pending = stat(path, &st) == 0;
    if (!is_ok(keyprov_path(kp, p->name, KEYPROV_KEY_FILE, path, sizeof(path))) ||
        stat(path, &st) != 0) {
        err_clear();
        return;
    }
    if (!is_ok(keyprov_read_text(kp, p->name, KEYPROV_CERT_FILE, &cert, false))) {
        err_clear();
        buf_free(&cert);
        return;
    }
    p->has_client_cert = true;
    if (is_ok(pki_pem_summary((const char *)buf_data(&cert), buf_len(&cert) - 1, &s))) {
        snprintf(p->client_cert.subject, sizeof(p->client_cert.subject), "%s", s.subject);
        snprintf(p->client_cert.issuer, sizeof(p->client_cert.issuer), "%s", s.issuer);
        snprintf(p->client_cert.not_before, sizeof(p->client_cert.not_before), "%s",
                 s.not_before);
        snprintf(p->client_cert.not_after, sizeof(p->client_cert.not_after), "%s", s.not_after);
        snprintf(p->client_cert.sha256, sizeof(p->client_cert.sha256), "%s", s.sha256);
    } else {
        log_warn("a key provider's client certificate does not parse; it will fail to connect",
                 LOG_S("provider", p->name), LOG_ERR());
        err_clear();
    }
    buf_free(&cert);
}

void keyprov_standard_disconnect(struct keyprov_provider *p)
{
    struct keyprov_sigpipe sp;

    if (p->client == NULL)
        return;
    keyprov_sigpipe_block(&sp); /* closing a TLS connection writes */
    kmip_client_free(&p->client);
    keyprov_sigpipe_restore(&sp);
}

/* p->client, created from the provider's files on first use. */
static vs_result keyprov_standard_client(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    struct keyprov_tls_config t;
    const char *servers[KEYPROV_MAX_SERVERS];

    if (p->client != NULL)
        return OK_RESULT;
    GUARD(keyprov_standard_load_tls(kp, p, &t));
    for (size_t i = 0; i < p->server_count; i++)
        servers[i] = p->servers[i];
    rc = keyprov_standard_connect(servers, p->server_count, &t, 0, &p->client);
    keyprov_tls_config_free(&t);
    return rc;
}

/* Get Attributes (State) then Get; the key must be AES-256. kek: secret. */
static vs_result keyprov_standard_get(struct keyprov_provider *p, const char *key_id,
                                      uint32_t *state, struct buf *kek)
{
    if (!is_ok(kmip_client_get_state(p->client, key_id, state)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, key_id);
    if (*state == KMIP_STATE_DESTROYED || *state == KMIP_STATE_DESTROYED_COMPROMISED) {
        RAISE(ERR_KEY_STATE);
        return err_detail("key provider %s: key %s: %s at the key server", p->name, key_id,
                          kmip_state_name(*state));
    }
    if (!is_ok(kmip_client_get_key(p->client, key_id, kek)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, key_id);
    if (buf_len(kek) != KEYPROV_KEK_LEN) {
        RAISE(ERR_KEY_UNAVAILABLE);
        return err_detail("key provider %s: key %s: a %zu-byte key, not AES-256", p->name, key_id,
                          buf_len(kek));
    }
    return OK_RESULT;
}

/* The descriptive attributes vCenter adds to a VM's key. A refusal is
 * logged: the key is usable without them. */
static void keyprov_standard_describe(struct keyprov_provider *p, const char *uid,
                                      const struct keyprov_kek_purpose *purpose)
{
    const struct {
        const char *name, *value;
    } attrs[] = {
        {"x-Vendor", "vmseal"},
        {"x-Product", "vmseal"},
        {"x-Product_Version", VMSEAL_VERSION},
        {"x-Component", purpose->component != NULL ? purpose->component : "Virtual Machine"},
        {"x-Name", purpose->vm_name},
        {"x-Identifier", purpose->vm_uuid},
    };
    size_t refused = 0;
    char first[sizeof(err_last()->detail)] = "";

    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        if (attrs[i].value == NULL || attrs[i].value[0] == '\0')
            continue;
        if (!is_ok(kmip_client_add_text(p->client, uid, attrs[i].name, attrs[i].value))) {
            if (refused++ == 0)
                snprintf(first, sizeof(first), "%s: %.200s", attrs[i].name, err_last()->detail);
        }
    }
    err_clear();
    if (refused > 0)
        log_warn("the key server did not take the key's descriptive attributes; the key is "
                 "usable without them",
                 LOG_S("provider", p->name), LOG_S("key", uid), LOG_U("refused", refused),
                 LOG_S("first_refusal", first));
}

static vs_result keyprov_standard_new_kek(struct keyprov *kp, struct keyprov_provider *p,
                                          const struct keyprov_kek_purpose *purpose,
                                          struct keyprov_ref *out)
{
    vs_result rc = OK_RESULT;
    char uid[KMIP_CLIENT_UID_MAX];
    struct buf kek = {0};
    uint32_t state;

    GUARD(keyprov_standard_client(kp, p));
    if (!is_ok(kmip_client_create_aes(p->client, 256, uid)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, "(new)");
    if (!keyprov_is_key_id(uid)) {
        /* Left at the server: nothing could refer to it, nor name it safely
         * in a log. */
        RAISE(ERR_KEY_UNAVAILABLE);
        return err_detail("key provider %s: the server named its new key with an identifier a "
                          "descriptor cannot carry (not printable ASCII)",
                          p->name);
    }
    if (!is_ok(kmip_client_activate(p->client, uid))) {
        rc = KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, uid);
        /* A Pre-Active key that nothing refers to: clean it up if we can. */
        struct err_state why = *err_last();
        if (!is_ok(kmip_client_destroy(p->client, uid)))
            log_warn("a key that could not be activated is left at the key server",
                     LOG_S("provider", p->name), LOG_S("key", uid));
        return err_restore(&why);
    }
    keyprov_standard_describe(p, uid, purpose);
    GUARD(buf_alloc_secret(&kek, 0, KEYPROV_KEK_LEN + 64));
    GUARD_OUT(keyprov_standard_get(p, uid, &state, &kek));
    if (state != KMIP_STATE_ACTIVE) {
        rc = RAISE(ERR_KEY_STATE);
        err_detail("key provider %s: key %s: %s after Activate", p->name, uid,
                   kmip_state_name(state));
        goto out;
    }
    GUARD_OUT(keyprov_cache_put(kp->cache, p->name, uid, buf_data(&kek), state));
    memset(out, 0, sizeof(*out));
    snprintf(out->provider, sizeof(out->provider), "%s", p->name);
    snprintf(out->key_id, sizeof(out->key_id), "%s", uid);
out:
    buf_free(&kek);
    return rc;
}

static vs_result keyprov_standard_fetch(struct keyprov *kp, struct keyprov_provider *p,
                                        const char *key_id)
{
    vs_result rc = OK_RESULT;
    struct buf kek = {0};
    uint32_t state;

    GUARD(keyprov_standard_client(kp, p));
    GUARD(buf_alloc_secret(&kek, 0, KEYPROV_KEK_LEN + 64));
    GUARD_OUT(keyprov_standard_get(p, key_id, &state, &kek));
    GUARD_OUT(keyprov_cache_put(kp->cache, p->name, key_id, buf_data(&kek), state));
out:
    buf_free(&kek);
    return rc;
}

static vs_result keyprov_standard_destroy(struct keyprov *kp, struct keyprov_provider *p,
                                          const char *key_id)
{
    uint32_t state;

    /* Evicted first, whatever the server says: the caller wants it gone.
     * Nothing caches it again meanwhile: fetching needs p->lock. */
    keyprov_cache_evict(kp->cache, p->name, key_id);
    GUARD(keyprov_standard_client(kp, p));
    if (!is_ok(kmip_client_get_state(p->client, key_id, &state)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, key_id);
    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED)
        return OK_RESULT; /* done already */
    /* KMIP 1.4 §4.21: an Active object cannot be destroyed; Revoke with a
     * reason other than compromise moves it to Deactivated. */
    if (state == KMIP_STATE_ACTIVE &&
        !is_ok(kmip_client_revoke(p->client, key_id, KMIP_REVOCATION_CESSATION_OF_OPERATION)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, key_id);
    if (!is_ok(kmip_client_destroy(p->client, key_id)))
        return KEYPROV_RAISE_KEY(ERR_KEY_UNAVAILABLE, p->name, key_id);
    return OK_RESULT;
}

vs_result keyprov_standard_probe(struct keyprov *kp, struct keyprov_provider *p, size_t server)
{
    struct kmip_version newest;

    GUARD(keyprov_standard_client(kp, p));
    return kmip_client_probe(p->client, server, &newest);
}

void keyprov_sigpipe_block(struct keyprov_sigpipe *s)
{
    sigset_t pipe_only, pending;

    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &s->old_mask);
    /* One that was pending before is the caller's, not ours to consume. */
    s->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

void keyprov_sigpipe_restore(const struct keyprov_sigpipe *s)
{
    sigset_t pipe_only, pending;
    const struct timespec no_wait = {0, 0};

    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if (!s->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        while (sigtimedwait(&pipe_only, NULL, &no_wait) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
}

const struct keyprov_type_ops keyprov_standard_ops = {
    .name = "standard",
    .new_kek = keyprov_standard_new_kek,
    .fetch = keyprov_standard_fetch,
    .destroy = keyprov_standard_destroy,
};
