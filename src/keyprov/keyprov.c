/*
 * keyprov.c - the key providers of one host: opening the data directory,
 * the registry operations, and the KEK operations dispatched to each type
 * of provider through a table (native.c, standard.c). See keyprov.h for
 * the contract and keyprov_internal.h for the lock order.
 */
#include "keyprov/keyprov.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"
#include "kmip/kmip_defs.h"
#include "kms/pki_gen.h"

#define KEYPROV_WRAP_KEY_MAX 512
#define KEYPROV_PASSPHRASE_MIN 8

static const struct keyprov_type_ops *const keyprov_ops[] = {
    [KEYPROV_NATIVE] = &keyprov_native_ops,
    [KEYPROV_STANDARD] = &keyprov_standard_ops,
};

/* --- small pieces shared by the room --- */

vs_result keyprov_path(const struct keyprov *kp, const char *provider, const char *file, char *out,
                       size_t size)
{
    int n;

    if (provider == NULL)
        n = snprintf(out, size, "%s/%s", kp->data_dir, file);
    else if (file == NULL)
        n = snprintf(out, size, "%s/providers/%s", kp->data_dir, provider);
    else
        n = snprintf(out, size, "%s/providers/%s/%s", kp->data_dir, provider, file);
    ENSURE(n > 0 && (size_t)n < size, ERR_TOO_LARGE);
    return OK_RESULT;
}

vs_result keyprov_check_name(const char *name)
{
    size_t n = strnlen(name, KEYPROV_NAME_MAX);

    if (n == 0 || n >= KEYPROV_NAME_MAX || !isalnum((unsigned char)name[0])) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a key provider name is 1 to %d characters and starts with a letter "
                          "or a digit",
                          KEYPROV_NAME_MAX - 1);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            RAISE(ERR_INVALID_ARG);
            return err_detail("a key provider name holds only letters, digits, '.', '_' and '-'");
        }
    }
    return OK_RESULT;
}

vs_result keyprov_check_server(const char *s)
{
    const char *colon, *host_end;
    size_t n = strnlen(s, KEYPROV_SERVER_MAX);
    unsigned long port;
    char *end;

    if (n == 0 || n >= KEYPROV_SERVER_MAX)
        goto bad;
    if (s[0] == '[') {
        host_end = strchr(s, ']');
        if (host_end == NULL || host_end == s + 1 || host_end[1] != ':')
            goto bad;
        for (const char *c = s + 1; c < host_end; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                goto bad;
        colon = host_end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s)
            goto bad;
        for (const char *c = s; c < colon; c++)
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
                goto bad;
    }
    if (!isdigit((unsigned char)colon[1]))
        goto bad;
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
        goto bad;
    return OK_RESULT;
bad:
    RAISE(ERR_INVALID_ARG);
    return err_detail("a key server is HOST:PORT or [IPv6]:PORT (port 1..65535)");
}

/* Splits a server into its host (without brackets) and port number. */
static bool keyprov_server_split(const char *s, char host[KEYPROV_SERVER_MAX], unsigned long *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t n;
    char *end;

    if (colon == NULL || colon[1] == '\0')
        return false;
    n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        h = s + 1;
        n -= 2;
    }
    if (n == 0 || n >= KEYPROV_SERVER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)h[i]);
    host[n] = '\0';
    errno = 0;
    *port = strtoul(colon + 1, &end, 10);
    return errno == 0 && *end == '\0';
}

bool keyprov_server_same(const char *a, const char *b)
{
    char ha[KEYPROV_SERVER_MAX], hb[KEYPROV_SERVER_MAX];
    unsigned long pa, pb;

    return keyprov_server_split(a, ha, &pa) && keyprov_server_split(b, hb, &pb) && pa == pb &&
           strcmp(ha, hb) == 0;
}

vs_result keyprov_check_servers(const char *const *servers, size_t count)
{
    if (count < 1 || count > KEYPROV_MAX_SERVERS) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a standard key provider has 1 to %d servers", KEYPROV_MAX_SERVERS);
    }
    for (size_t i = 0; i < count; i++) {
        GUARD(keyprov_check_server(servers[i]));
        for (size_t k = 0; k < i; k++) {
            if (keyprov_server_same(servers[i], servers[k])) {
                RAISE(ERR_INVALID_ARG);
                return err_detail("server %s is listed twice", servers[i]);
            }
        }
    }
    return OK_RESULT;
}

vs_result keyprov_uuid_v4(char out[KEYPROV_UUID_LEN + 1])
{
    uint8_t b[16];
    char hex[33];

    GUARD(crypto_random(b, sizeof(b)));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 (RFC 9562 §5.4) */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 9562 §4.1) */
    GUARD(hex_encode(b, sizeof(b), hex, sizeof(hex)));
    snprintf(out, KEYPROV_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
    return OK_RESULT;
}

bool keyprov_is_uuid(const char *s)
{
    for (size_t i = 0; i < KEYPROV_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return s[KEYPROV_UUID_LEN] == '\0';
}

vs_result keyprov_raise_key(enum err_code code, const char *file, int line, const char *provider,
                            const char *key_id)
{
    const struct err_state *cause = err_last();
    char reason[sizeof(cause->detail)];

    snprintf(reason, sizeof(reason), "%s",
             cause->detail[0] ? cause->detail : err_message(cause->code));
    err_raise(code, file, line);
    return err_detail("key provider %s: key %s: %s", provider, key_id, reason);
}

vs_result keyprov_provider_new(struct keyprov_provider **out)
{
    struct keyprov_provider *p = calloc(1, sizeof(*p));

    *out = NULL;
    ENSURE(p != NULL, ERR_NOMEM);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        BAIL(ERR_NOMEM);
    }
    *out = p;
    return OK_RESULT;
}

void keyprov_provider_free(struct keyprov_provider **pp)
{
    struct keyprov_provider *p;

    if (pp == NULL || *pp == NULL)
        return;
    p = *pp;
    void *root = p->root;
    secret_free(&root);
    kmip_client_free(&p->client);
    free(p->tombstones);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *pp = NULL;
}

/* --- opening and closing --- */

void keyprov_close(struct keyprov **kpp)
{
    struct keyprov *kp;

    if (kpp == NULL || *kpp == NULL)
        return;
    kp = *kpp;
    struct keyprov_sigpipe sp;
    keyprov_sigpipe_block(&sp); /* closing TLS connections writes */
    for (size_t i = 0; i < kp->provider_count; i++)
        keyprov_provider_free(&kp->providers[i]);
    for (size_t i = 0; i < kp->removed_count; i++)
        keyprov_provider_free(&kp->removed[i]);
    keyprov_sigpipe_restore(&sp);
    free(kp->removed);
    free(kp->providers);
    keyprov_cache_free(&kp->cache);
    keyprov_hostkey_free(&kp->hostkey);
    pthread_mutex_destroy(&kp->lock);
    free(kp->data_dir);
    free(kp);
    *kpp = NULL;
}

/* Loads what a provider keeps on disk; a provider that does not load is
 * marked broken (every use fails with its error) rather than failing the
 * open, so that the others stay usable and a restore can repair it. */
static void keyprov_load_provider(struct keyprov *kp, struct keyprov_provider *p)
{
    if (p->type != KEYPROV_NATIVE) {
        /* What the listing shows of its client identity; the rest is read
         * when it connects. */
        keyprov_standard_load_identity(kp, p);
        return;
    }
    if (is_ok(keyprov_native_load(kp, p)))
        return;
    p->broken = true;
    p->broken_error = *err_last();
    log_error("key provider does not load; restore it from its backup", LOG_S("provider", p->name),
              LOG_ERR());
    err_clear();
}

vs_result keyprov_open(const char *data_dir, struct keyprov **out)
{
    vs_result rc = OK_RESULT;
    struct keyprov *kp = NULL;
    char path[4096];
    struct stat st;
    bool have_registry;

    *out = NULL;
    ENSURE(data_dir[0] != '\0', ERR_INVALID_ARG);
    kp = calloc(1, sizeof(*kp));
    ENSURE(kp != NULL, ERR_NOMEM);
    if (pthread_mutex_init(&kp->lock, NULL) != 0) {
        free(kp);
        BAIL(ERR_NOMEM);
    }
    kp->data_dir = strdup(data_dir);
    ENSURE_OUT(kp->data_dir != NULL, ERR_NOMEM);
    kp->providers = calloc(KEYPROV_MAX_PROVIDERS, sizeof(*kp->providers));
    ENSURE_OUT(kp->providers != NULL, ERR_NOMEM);
    GUARD_OUT(file_mkdir(data_dir, 0700));
    GUARD_OUT(keyprov_path(kp, NULL, "providers", path, sizeof(path)));
    GUARD_OUT(file_mkdir(path, 0700));

    /* A missing host key is created only on a fresh data directory: with
     * providers registered, a new host key would silently orphan every
     * sealed root and client key. */
    GUARD_OUT(keyprov_path(kp, NULL, "providers.json", path, sizeof(path)));
    have_registry = stat(path, &st) == 0;
    GUARD_OUT(keyprov_path(kp, NULL, "host.key", path, sizeof(path)));
    rc = keyprov_hostkey_load(path, !have_registry, &kp->hostkey);
    if (rc.code == ERR_NOT_FOUND && have_registry) {
        err_detail("%s is missing but providers.json lists providers sealed under it: put the "
                   "host key back, or restore native providers from their backups into a new "
                   "data directory",
                   path);
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(keyprov_cache_new(&kp->cache));
    GUARD_OUT(keyprov_registry_load(kp));
    for (size_t i = 0; i < kp->provider_count; i++)
        keyprov_load_provider(kp, kp->providers[i]);
    *out = kp;
    kp = NULL;
out:
    keyprov_close(&kp);
    return rc;
}

/* --- the registry --- */

struct keyprov_provider *keyprov_lookup(const struct keyprov *kp, const char *name)
{
    for (size_t i = 0; i < kp->provider_count; i++)
        if (strcmp(kp->providers[i]->name, name) == 0)
            return kp->providers[i];
    return NULL;
}

vs_result keyprov_find(struct keyprov *kp, const char *name, struct keyprov_provider **out)
{
    bool no_default;

    pthread_mutex_lock(&kp->lock);
    no_default = name == NULL && kp->default_name[0] == '\0';
    *out = keyprov_lookup(kp, name != NULL ? name : kp->default_name);
    pthread_mutex_unlock(&kp->lock);
    if (*out != NULL)
        return OK_RESULT;
    RAISE(ERR_NOT_FOUND);
    if (no_default || name == NULL)
        return err_detail("there is no default key provider");
    return err_detail("no key provider named %.*s", KEYPROV_NAME_MAX, name);
}

vs_result keyprov_commit_new(struct keyprov *kp, struct keyprov_provider **pp)
{
    struct keyprov_provider *p = *pp;
    const char *def = kp->default_name[0] ? kp->default_name : p->name;

    ENSURE(kp->provider_count < KEYPROV_MAX_PROVIDERS, ERR_TOO_LARGE);
    GUARD(keyprov_registry_save(kp, p, def));
    if (kp->default_name[0] == '\0')
        snprintf(kp->default_name, sizeof(kp->default_name), "%s", p->name);
    kp->providers[kp->provider_count++] = p;
    *pp = NULL;
    return OK_RESULT;
}

vs_result keyprov_name_free(const struct keyprov *kp, const char *name)
{
    if (keyprov_lookup(kp, name) == NULL)
        return OK_RESULT;
    RAISE(ERR_EXISTS);
    return err_detail("a key provider named %s exists", name);
}

vs_result keyprov_add_native(struct keyprov *kp, const char *name)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p = NULL;

    GUARD(keyprov_check_name(name));
    GUARD(keyprov_provider_new(&p));
    p->type = KEYPROV_NATIVE;
    snprintf(p->name, sizeof(p->name), "%s", name);
    GUARD_OUT(keyprov_uuid_v4(p->id));
    pthread_mutex_lock(&kp->lock);
    rc = keyprov_name_free(kp, name);
    if (is_ok(rc))
        rc = keyprov_native_create_root(kp, p); /* writes providers/NAME/root.sealed */
    if (is_ok(rc))
        rc = keyprov_commit_new(kp, &p);
    pthread_mutex_unlock(&kp->lock);
out:
    keyprov_provider_free(&p);
    return rc;
}

/* keyprov_add_standard without its SIGPIPE guard. */
static vs_result keyprov_add_standard_unguarded(struct keyprov *kp, const char *name,
                                                const char *const *servers, size_t server_count,
                                                const char *ca_pem, const char *cert_pem,
                                                const char *key_pem)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p = NULL;
    struct keyprov_tls_config t = {0};
    struct err_state why = {0};
    bool answered = false;

    GUARD(keyprov_check_name(name));
    GUARD(keyprov_check_servers(servers, server_count));
    pthread_mutex_lock(&kp->lock);
    rc = keyprov_name_free(kp, name); /* fail early; checked again below */
    pthread_mutex_unlock(&kp->lock);
    GUARD(rc);

    /* What is stored is the certificates and the key re-encoded, nothing
     * else that was pasted around them; the key is parsed and kept in
     * secret memory only (the caller's text may be anywhere). */
    GUARD_OUT(buf_alloc(&t.ca, 0, KEYPROV_PEM_MAX + 1));
    GUARD_OUT(buf_alloc(&t.cert, 0, KEYPROV_PEM_MAX + 1));
    GUARD_OUT(buf_alloc_secret(&t.key, 0, KEYPROV_PEM_MAX + 1));
    rc = pki_pem_certs_canonical(ca_pem, strnlen(ca_pem, KEYPROV_PEM_MAX + 1),
                                 KEYPROV_CA_CERTS_MAX, &t.ca, NULL);
    if (is_ok(rc))
        rc = pki_pem_certs_canonical(cert_pem, strnlen(cert_pem, KEYPROV_PEM_MAX + 1),
                                     KEYPROV_CHAIN_CERTS_MAX, &t.cert, NULL);
    if (is_ok(rc))
        rc = pki_pem_key_canonical(key_pem, strnlen(key_pem, KEYPROV_PEM_MAX + 1), &t.key);
    if (is_ok(rc))
        rc = pki_pem_key_matches((const char *)buf_data(&t.cert), buf_len(&t.cert),
                                 (const char *)buf_data(&t.key), buf_len(&t.key));
    if (rc.code == ERR_INVALID_ARG) {
        /* This function's contract (keyprov.h): a PEM that does not parse,
         * or a key that is not the certificate's, is ERR_CRYPTO. */
        struct err_state pem_error = *err_last();
        pem_error.code = ERR_CRYPTO;
        rc = err_restore(&pem_error);
    }
    GUARD_OUT(rc);
    GUARD_OUT(buf_write_u8(&t.ca, 0));
    GUARD_OUT(buf_write_u8(&t.cert, 0));
    GUARD_OUT(buf_write_u8(&t.key, 0));

    GUARD_OUT(keyprov_provider_new(&p));
    p->type = KEYPROV_STANDARD;
    p->trust = KEYPROV_TRUST_CA;
    snprintf(p->name, sizeof(p->name), "%s", name);
    for (size_t i = 0; i < server_count; i++)
        snprintf(p->servers[i], sizeof(p->servers[i]), "%s", servers[i]);
    p->server_count = server_count;

    GUARD_OUT(keyprov_standard_connect(servers, server_count, &t, 0, &p->client));
    /* Network I/O outside the registry lock. */
    for (size_t i = 0; i < server_count && !answered; i++) {
        struct kmip_version newest;
        answered = is_ok(kmip_client_probe(p->client, i, &newest));
        if (!answered && i == 0)
            why = *err_last();
    }
    if (!answered) {
        rc = RAISE(ERR_PROVIDER);
        err_detail("key provider %s: no server answered Discover Versions; nothing was stored "
                   "(first server: %.150s)",
                   name, why.detail);
        goto out;
    }
    pthread_mutex_lock(&kp->lock);
    rc = keyprov_name_free(kp, name);
    if (is_ok(rc))
        rc = keyprov_provider_files_clear(kp, name); /* a removed namesake's leftovers */
    if (is_ok(rc))
        rc = keyprov_standard_store(kp, p, (const char *)buf_data(&t.ca),
                                    (const char *)buf_data(&t.cert), (const char *)buf_data(&t.key));
    if (is_ok(rc)) {
        keyprov_standard_load_identity(kp, p);
        rc = keyprov_commit_new(kp, &p);
    }
    pthread_mutex_unlock(&kp->lock);
out:
    keyprov_tls_config_free(&t);
    keyprov_provider_free(&p);
    return rc;
}

vs_result keyprov_add_standard(struct keyprov *kp, const char *name, const char *const *servers,
                               size_t server_count, const char *ca_pem, const char *cert_pem,
                               const char *key_pem)
{
    struct keyprov_sigpipe sp;
    vs_result rc;

    keyprov_sigpipe_block(&sp);
    rc = keyprov_add_standard_unguarded(kp, name, servers, server_count, ca_pem, cert_pem, key_pem);
    keyprov_sigpipe_restore(&sp);
    return rc;
}

vs_result keyprov_set_default(struct keyprov *kp, const char *name)
{
    vs_result rc = OK_RESULT;

    pthread_mutex_lock(&kp->lock);
    if (keyprov_lookup(kp, name) == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no key provider named %.*s", KEYPROV_NAME_MAX, name);
    } else {
        rc = keyprov_registry_save(kp, NULL, name);
        if (is_ok(rc))
            snprintf(kp->default_name, sizeof(kp->default_name), "%s", name);
    }
    pthread_mutex_unlock(&kp->lock);
    return rc;
}

vs_result keyprov_get_default(struct keyprov *kp, char out[KEYPROV_NAME_MAX])
{
    vs_result rc = OK_RESULT;

    pthread_mutex_lock(&kp->lock);
    if (kp->default_name[0] == '\0') {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("there is no default key provider");
    } else {
        snprintf(out, KEYPROV_NAME_MAX, "%s", kp->default_name);
    }
    pthread_mutex_unlock(&kp->lock);
    return rc;
}

/* Under kp->lock. */
static void keyprov_fill_info(const struct keyprov *kp, const struct keyprov_provider *p,
                              struct keyprov_info *info)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", p->name);
    info->type = p->type;
    info->is_default = strcmp(kp->default_name, p->name) == 0;
    info->backed_up = p->type == KEYPROV_NATIVE && p->backed_up;
    info->server_count = p->server_count;
    for (size_t i = 0; i < p->server_count; i++)
        snprintf(info->servers[i], sizeof(info->servers[i]), "%s", p->servers[i]);
    if (p->type == KEYPROV_NATIVE) {
        info->configured = true;
        return;
    }
    info->trust = p->trust;
    snprintf(info->pinned_sha256, sizeof(info->pinned_sha256), "%s", p->pinned_sha256);
    info->has_client_cert = p->has_client_cert;
    info->client_cert = p->client_cert;
    info->csr_pending = p->csr_pending;
    info->configured = p->trust != KEYPROV_TRUST_NONE && p->has_client_cert;
}

vs_result keyprov_list(struct keyprov *kp, struct keyprov_info *infos, size_t cap, size_t *count)
{
    pthread_mutex_lock(&kp->lock);
    for (size_t i = 0; i < kp->provider_count && i < cap; i++)
        keyprov_fill_info(kp, kp->providers[i], &infos[i]);
    *count = kp->provider_count;
    pthread_mutex_unlock(&kp->lock);
    return OK_RESULT;
}

vs_result keyprov_get_info(struct keyprov *kp, const char *name, struct keyprov_info *out)
{
    struct keyprov_provider *p;

    GUARD(keyprov_find(kp, name, &p));
    pthread_mutex_lock(&kp->lock);
    keyprov_fill_info(kp, p, out);
    pthread_mutex_unlock(&kp->lock);
    if (p->removed) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("key provider %s was removed", name);
    }
    return OK_RESULT;
}

/* --- backup and restore --- */

/* The saved SIGPIPE mask lives in p, which only this thread touches while
 * it holds the lock. */
vs_result keyprov_lock_usable(struct keyprov_provider *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->removed) {
        pthread_mutex_unlock(&p->lock);
        RAISE(ERR_NOT_FOUND);
        return err_detail("key provider %s was removed", p->name);
    }
    if (p->broken) {
        struct err_state why = p->broken_error;
        pthread_mutex_unlock(&p->lock);
        return err_restore(&why);
    }
    keyprov_sigpipe_block(&p->sigpipe);
    return OK_RESULT;
}

void keyprov_unlock(struct keyprov_provider *p)
{
    keyprov_sigpipe_restore(&p->sigpipe);
    pthread_mutex_unlock(&p->lock);
}

/* Sets p's backed-up flag, on disk first. */
static vs_result keyprov_mark_backed_up(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;

    pthread_mutex_lock(&kp->lock);
    if (!p->backed_up) {
        p->backed_up = true;
        rc = keyprov_registry_save(kp, NULL, kp->default_name);
        if (!is_ok(rc))
            p->backed_up = false;
    }
    pthread_mutex_unlock(&kp->lock);
    return rc;
}

vs_result keyprov_backup(struct keyprov *kp, const char *name, const void *passphrase,
                         size_t passphrase_len, struct buf *out)
{
    struct keyprov_provider *p;
    vs_result rc;

    if (passphrase_len < KEYPROV_PASSPHRASE_MIN) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a backup passphrase has at least %d bytes", KEYPROV_PASSPHRASE_MIN);
    }
    GUARD(keyprov_find(kp, name, &p));
    if (p->type != KEYPROV_NATIVE) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s is a standard key provider: its keys live in its KMIP servers, "
                          "which are backed up there",
                          name);
    }
    GUARD(keyprov_lock_usable(p));
    rc = keyprov_backup_encode(p->name, p->id, p->root, passphrase, passphrase_len, out);
    keyprov_unlock(p);
    GUARD(rc);
    return keyprov_mark_backed_up(kp, p);
}

/* Restoring onto an existing provider: the same root (nothing to do but
 * note the backup), or the same provider whose files were damaged (they
 * are rewritten). Anything else is another provider: ERR_EXISTS. */
static vs_result keyprov_restore_existing(struct keyprov *kp, struct keyprov_provider *p,
                                          const struct keyprov_backup_contents *c)
{
    vs_result rc = OK_RESULT;

    if (p->type != KEYPROV_NATIVE || strcmp(p->id, c->id) != 0) {
        RAISE(ERR_EXISTS);
        return err_detail("a different key provider named %s exists", p->name);
    }
    pthread_mutex_lock(&p->lock);
    if (p->broken) {
        rc = keyprov_native_store_root(kp, p, c->root);
        if (is_ok(rc))
            rc = keyprov_native_load(kp, p); /* the root again, and the tombstones */
        if (is_ok(rc))
            p->broken = false;
    } else if (!secret_equal(p->root, c->root, KEYPROV_ROOT_LEN)) {
        rc = RAISE(ERR_EXISTS);
        err_detail("key provider %s exists with the same id and another root", p->name);
    }
    pthread_mutex_unlock(&p->lock);
    GUARD(rc);
    return keyprov_mark_backed_up(kp, p);
}

static vs_result keyprov_restore_new(struct keyprov *kp, const char *name,
                                     const struct keyprov_backup_contents *c)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p = NULL;

    GUARD(keyprov_provider_new(&p));
    p->type = KEYPROV_NATIVE;
    p->backed_up = true; /* the operator holds the backup it came from */
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->id, sizeof(p->id), "%s", c->id);
    pthread_mutex_lock(&kp->lock);
    rc = keyprov_name_free(kp, name);
    /* One provider per root on a host: a second copy under another name
     * would escape the first one's tombstones. */
    for (size_t i = 0; is_ok(rc) && i < kp->provider_count; i++) {
        const struct keyprov_provider *q = kp->providers[i];
        if (q->type == KEYPROV_NATIVE && strcmp(q->id, c->id) == 0) {
            rc = RAISE(ERR_EXISTS);
            err_detail("this backup's provider is on this host already, as %s", q->name);
        }
    }
    if (is_ok(rc))
        rc = keyprov_native_store_root(kp, p, c->root);
    if (is_ok(rc))
        rc = keyprov_native_load(kp, p); /* tombstones, if this host had the provider */
    if (is_ok(rc))
        rc = keyprov_commit_new(kp, &p);
    pthread_mutex_unlock(&kp->lock);
    keyprov_provider_free(&p);
    return rc;
}

vs_result keyprov_restore(struct keyprov *kp, const void *file, size_t file_len,
                          const void *passphrase, size_t passphrase_len, const char *name,
                          char name_out[KEYPROV_NAME_MAX])
{
    vs_result rc = OK_RESULT;
    struct keyprov_backup_contents *c = NULL;
    struct keyprov_provider *p;
    const char *target;

    if (name != NULL)
        GUARD(keyprov_check_name(name));
    GUARD(keyprov_backup_decode(file, file_len, passphrase, passphrase_len, &c));
    target = name != NULL ? name : c->name;
    pthread_mutex_lock(&kp->lock);
    p = keyprov_lookup(kp, target);
    pthread_mutex_unlock(&kp->lock);
    if (p != NULL)
        GUARD_OUT(keyprov_restore_existing(kp, p, c));
    else
        GUARD_OUT(keyprov_restore_new(kp, target, c));
    if (name_out != NULL)
        snprintf(name_out, KEYPROV_NAME_MAX, "%s", target);
    log_info("key provider restored from a backup", LOG_S("provider", target));
out : {
    void *mem = c;
    secret_free(&mem);
}
    return rc;
}

/* --- KEKs --- */

bool keyprov_is_key_id(const char *key_id)
{
    size_t n = strnlen(key_id, KEYPROV_KEY_ID_MAX);

    if (n == 0 || n == KEYPROV_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key_id[i] < 0x21 || key_id[i] > 0x7e)
            return false;
    return true;
}

/* A reference from a caller: both strings terminated inside their arrays,
 * a key ID as keyprov_is_key_id wants it. */
static vs_result keyprov_check_ref(const struct keyprov_ref *ref)
{
    if (strnlen(ref->provider, sizeof(ref->provider)) < sizeof(ref->provider) &&
        keyprov_is_key_id(ref->key_id))
        return OK_RESULT;
    RAISE(ERR_INVALID_ARG);
    return err_detail("malformed key reference");
}

vs_result keyprov_new_kek(struct keyprov *kp, const char *provider,
                          const struct keyprov_kek_purpose *purpose, struct keyprov_ref *out)
{
    struct keyprov_provider *p;
    vs_result rc;

    GUARD(keyprov_find(kp, provider, &p));
    GUARD(keyprov_lock_usable(p));
    rc = keyprov_ops[p->type]->new_kek(kp, p, purpose, out);
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("new KEK", LOG_S("provider", out->provider), LOG_S("key", out->key_id));
    return rc;
}

vs_result keyprov_fetch(struct keyprov *kp, const struct keyprov_ref *ref)
{
    struct keyprov_provider *p;
    vs_result rc = OK_RESULT;

    GUARD(keyprov_check_ref(ref));
    GUARD(keyprov_find(kp, ref->provider, &p));
    if (keyprov_cache_has(kp->cache, p->name, ref->key_id))
        return OK_RESULT;
    GUARD(keyprov_lock_usable(p));
    /* Another thread may have fetched it while we waited for the lock. */
    if (!keyprov_cache_has(kp->cache, p->name, ref->key_id))
        rc = keyprov_ops[p->type]->fetch(kp, p, ref->key_id);
    keyprov_unlock(p);
    return rc;
}

bool keyprov_is_cached(struct keyprov *kp, const struct keyprov_ref *ref)
{
    if (!is_ok(keyprov_check_ref(ref))) {
        err_clear();
        return false;
    }
    return keyprov_cache_has(kp->cache, ref->provider, ref->key_id);
}

struct keyprov_wrap_args {
    const struct keyprov_ref *ref;
    const void *key;
    size_t key_len;
    struct buf *out;
};

static vs_result keyprov_wrap_with(void *arg, const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
{
    const struct keyprov_wrap_args *a = arg;

    if (state != KMIP_STATE_ACTIVE) {
        RAISE(ERR_KEY_STATE);
        return err_detail("key provider %s: key %s: %s; new wrapping uses only Active keys",
                          a->ref->provider, a->ref->key_id, kmip_state_name(state));
    }
    return crypto_kwp_wrap(kek, KEYPROV_KEK_LEN, a->key, a->key_len, a->out);
}

struct keyprov_unwrap_args {
    const struct keyprov_ref *ref;
    const void *wrapped;
    size_t wrapped_len;
    struct buf *out; /* secret */
};

static vs_result keyprov_unwrap_with(void *arg, const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
{
    const struct keyprov_unwrap_args *a = arg;

    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED) {
        RAISE(ERR_KEY_STATE); /* never cached; a second line of defence */
        return err_detail("key provider %s: key %s: destroyed", a->ref->provider, a->ref->key_id);
    }
    return crypto_kwp_unwrap(kek, KEYPROV_KEK_LEN, a->wrapped, a->wrapped_len, a->out);
}

/* Runs fn on the KEK, fetching it first if needed. A key destroyed by
 * another thread between the fetch and the use is fetched again, which
 * then says why it cannot be. */
static vs_result keyprov_use(struct keyprov *kp, const struct keyprov_ref *ref, keyprov_cache_fn fn,
                             void *arg)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        GUARD(keyprov_fetch(kp, ref));
        vs_result rc = keyprov_cache_use(kp->cache, ref->provider, ref->key_id, fn, arg);
        if (rc.code != ERR_NOT_FOUND)
            return rc;
    }
    RAISE(ERR_KEY_UNAVAILABLE);
    return err_detail("key provider %s: key %s: destroyed while in use", ref->provider,
                      ref->key_id);
}

vs_result keyprov_wrap(struct keyprov *kp, const struct keyprov_ref *ref, const void *key,
                       size_t key_len, struct buf *out)
{
    struct keyprov_wrap_args a = {ref, key, key_len, out};

    if (key_len < 1 || key_len > KEYPROV_WRAP_KEY_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a wrapped key is 1 to %d bytes", KEYPROV_WRAP_KEY_MAX);
    }
    GUARD(keyprov_check_ref(ref));
    return keyprov_use(kp, ref, keyprov_wrap_with, &a);
}

vs_result keyprov_unwrap(struct keyprov *kp, const struct keyprov_ref *ref, const void *wrapped,
                         size_t wrapped_len, void *out, size_t out_cap, size_t *out_len)
{
    vs_result rc = OK_RESULT;
    struct buf plain = {0};
    struct keyprov_unwrap_args a = {ref, wrapped, wrapped_len, &plain};

    *out_len = 0;
    /* RFC 5649 §3: a multiple of 8 bytes, at least 16. */
    if (wrapped_len < 16 || wrapped_len % 8 != 0 ||
        wrapped_len > CRYPTO_KWP_WRAPPED_LEN(KEYPROV_WRAP_KEY_MAX)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a wrapped key is 16 to %zu bytes, a multiple of 8",
                          CRYPTO_KWP_WRAPPED_LEN(KEYPROV_WRAP_KEY_MAX));
    }
    GUARD(keyprov_check_ref(ref));
    GUARD(buf_alloc_secret(&plain, 0, wrapped_len));
    GUARD_OUT(keyprov_use(kp, ref, keyprov_unwrap_with, &a));
    if (buf_len(&plain) > out_cap) {
        rc = RAISE(ERR_BUF_LIMIT);
        err_detail("the unwrapped key is %zu bytes; room for %zu", buf_len(&plain), out_cap);
        goto out;
    }
    memcpy(out, buf_data(&plain), buf_len(&plain));
    *out_len = buf_len(&plain);
out:
    buf_free(&plain); /* wiped */
    return rc;
}

vs_result keyprov_destroy_key(struct keyprov *kp, const struct keyprov_ref *ref)
{
    struct keyprov_provider *p;
    vs_result rc;

    GUARD(keyprov_check_ref(ref));
    GUARD(keyprov_find(kp, ref->provider, &p));
    GUARD(keyprov_lock_usable(p));
    rc = keyprov_ops[p->type]->destroy(kp, p, ref->key_id);
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("KEK destroyed", LOG_S("provider", ref->provider), LOG_S("key", ref->key_id));
    return rc;
}

vs_result keyprov_probe(struct keyprov *kp, const char *name, size_t server)
{
    struct keyprov_provider *p;
    vs_result rc;

    GUARD(keyprov_find(kp, name, &p));
    if (p->type != KEYPROV_STANDARD || server >= p->server_count) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("key provider %s has no server %zu to probe", name, server);
    }
    GUARD(keyprov_lock_usable(p));
    rc = keyprov_standard_probe(kp, p, server);
    keyprov_unlock(p);
    return rc;
}

/* --- test hooks (keyprov_internal.h) --- */

vs_result keyprov_test_native_root(struct keyprov *kp, const char *name,
                                   uint8_t out[KEYPROV_ROOT_LEN])
{
    struct keyprov_provider *p;

    GUARD(keyprov_find(kp, name, &p));
    ENSURE(p->type == KEYPROV_NATIVE, ERR_INVALID_ARG);
    GUARD(keyprov_lock_usable(p));
    memcpy(out, p->root, KEYPROV_ROOT_LEN);
    keyprov_unlock(p);
    return OK_RESULT;
}

static vs_result keyprov_copy_kek(void *arg, const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
{
    (void)state;
    memcpy(arg, kek, KEYPROV_KEK_LEN);
    return OK_RESULT;
}

vs_result keyprov_test_cached_kek(struct keyprov *kp, const struct keyprov_ref *ref,
                                  uint8_t out[KEYPROV_KEK_LEN])
{
    return keyprov_cache_use(kp->cache, ref->provider, ref->key_id, keyprov_copy_kek, out);
}
