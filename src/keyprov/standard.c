/*
 * standard.c - the standard key provider: KEKs are managed objects of a
 * KMIP cluster, reached with the src/kmip client (mutual TLS, servers
 * tried in order).
 *
 *   providers/NAME/ca.pem        the CA that signs the servers' certificates
 *   providers/NAME/cert.pem      our client certificate (and its chain)
 *   providers/NAME/key.sealed    our client key, sealed under the host key
 *                                for ("standard-client-key", NAME): it is
 *                                never on disk in clear, and reaches the
 *                                TLS library from secret memory
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
 * serialized and calls to different providers are not.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"
#include "kmip/kmip_defs.h"

#ifndef VMSEAL_VERSION
#error "VMSEAL_VERSION must be defined by the build (src/keyprov/CMakeLists.txt)"
#endif

#define KEYPROV_CA_FILE "ca.pem"
#define KEYPROV_CERT_FILE "cert.pem"
#define KEYPROV_KEY_FILE "key.sealed"
#define KEYPROV_PURPOSE_CLIENT_KEY "standard-client-key"
#define KEYPROV_KMIP_TIMEOUT_MS 10000

/* Reads a PEM file into b, NUL-terminated. */
static vs_result keyprov_read_pem(const struct keyprov *kp, const struct keyprov_provider *p,
                                  const char *file, struct buf *b)
{
    char path[4096];

    GUARD(keyprov_path(kp, p->name, file, path, sizeof(path)));
    GUARD(file_read_all(path, KEYPROV_PEM_MAX, b));
    return buf_write_u8(b, 0);
}

vs_result keyprov_standard_connect(const struct keyprov_provider *p, const char *ca_pem,
                                   const char *cert_pem, const char *key_pem,
                                   struct kmip_client **out)
{
    struct kmip_client_config cfg = {
        .server_count = p->server_count,
        .ca_pem = ca_pem,
        .cert_pem = cert_pem,
        .key_pem = key_pem,
        .timeout_ms = KEYPROV_KMIP_TIMEOUT_MS,
    };

    for (size_t i = 0; i < p->server_count; i++)
        cfg.servers[i] = p->servers[i];
    return kmip_client_new(&cfg, out);
}

vs_result keyprov_standard_store(struct keyprov *kp, const struct keyprov_provider *p,
                                 const char *ca_pem, const char *cert_pem, const char *key_pem)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf sealed = {0};

    GUARD(keyprov_path(kp, p->name, NULL, path, sizeof(path)));
    GUARD(file_mkdir(path, 0700));
    GUARD(buf_alloc(&sealed, 0, KEYPROV_PEM_MAX + 64));
    GUARD_OUT(keyprov_hostkey_seal(kp->hostkey, KEYPROV_PURPOSE_CLIENT_KEY, p->name, "", key_pem,
                                   strlen(key_pem), &sealed));
    GUARD_OUT(keyprov_path(kp, p->name, KEYPROV_KEY_FILE, path, sizeof(path)));
    GUARD_OUT(file_write_atomic(path, buf_data(&sealed), buf_len(&sealed), 0600));
    /* Certificates are public. */
    GUARD_OUT(keyprov_path(kp, p->name, KEYPROV_CA_FILE, path, sizeof(path)));
    GUARD_OUT(file_write_atomic(path, ca_pem, strlen(ca_pem), 0644));
    GUARD_OUT(keyprov_path(kp, p->name, KEYPROV_CERT_FILE, path, sizeof(path)));
    GUARD_OUT(file_write_atomic(path, cert_pem, strlen(cert_pem), 0644));
out:
    buf_free(&sealed);
    return rc;
}

/* p->client, created from the provider's files on first use. */
static vs_result keyprov_standard_client(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    struct buf ca = {0}, cert = {0}, sealed = {0}, key = {0};
    char path[4096];

    if (p->client != NULL)
        return OK_RESULT;
    GUARD_OUT(buf_alloc(&ca, 0, KEYPROV_PEM_MAX + 1));
    GUARD_OUT(buf_alloc(&cert, 0, KEYPROV_PEM_MAX + 1));
    GUARD_OUT(buf_alloc(&sealed, 0, KEYPROV_PEM_MAX + 64));
    GUARD_OUT(buf_alloc_secret(&key, 0, KEYPROV_PEM_MAX + 64));
    GUARD_OUT(keyprov_read_pem(kp, p, KEYPROV_CA_FILE, &ca));
    GUARD_OUT(keyprov_read_pem(kp, p, KEYPROV_CERT_FILE, &cert));
    GUARD_OUT(keyprov_path(kp, p->name, KEYPROV_KEY_FILE, path, sizeof(path)));
    GUARD_OUT(file_read_all(path, KEYPROV_PEM_MAX + 64, &sealed));
    GUARD_OUT(keyprov_hostkey_open(kp->hostkey, KEYPROV_PURPOSE_CLIENT_KEY, p->name, "",
                                   buf_data(&sealed), buf_len(&sealed), &key));
    GUARD_OUT(buf_write_u8(&key, 0));
    GUARD_OUT(keyprov_standard_connect(p, (const char *)buf_data(&ca),
                                       (const char *)buf_data(&cert), (const char *)buf_data(&key),
                                       &p->client));
out:
    buf_free(&key); /* wiped */
    buf_free(&sealed);
    buf_free(&cert);
    buf_free(&ca);
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
        {"x-Component", "Virtual Machine"},
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
