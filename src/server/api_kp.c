/* api_kp.c - the key provider, key and host routes (docs/api.md, "Key
 * providers", "Keys", "Host"). Each handler checks the privileges of its
 * operation first (with no facts: these operations are on the root), then
 * validates its request, then acts; a refused or invalid call changes
 * nothing. Secrets in request bodies (private keys, passphrases) are wiped
 * from the body once used, on every path. Changes are logged by keyprov
 * (with what changed: fingerprints, subjects); who made them is in the
 * audit log, as for every call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/api_internal.h"
#include "server/hostmode.h"
#include "server/policy.h"
#include "vm/vmutil.h"

#define KP_BACKUP_MAX (1u << 20)

static const struct op_facts no_facts = {0};
static const char *const no_fields[] = {NULL};

static const char *const trust_names[] = {
    [KEYPROV_TRUST_NONE] = NULL,
    [KEYPROV_TRUST_CA] = "ca",
    [KEYPROV_TRUST_PINNED] = "pinned",
};

/* --- the provider object -------------------------------------------------------- */

static json_t *cert_json(const struct keyprov_cert_info *ci)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", ci->subject, "issuer", ci->issuer,
                     "not_before", ci->not_before, "not_after", ci->not_after, "sha256",
                     ci->sha256);
}

static json_t *server_json(const char *address, const struct keyprov_server_health *h)
{
    json_t *versions;

    if (h == NULL)
        return json_pack("{s:s, s:n}", "address", address, "status");
    versions = json_array();
    for (size_t i = 0; versions != NULL && i < h->version_count; i++)
        if (json_array_append_new(versions, json_string(h->versions[i])) != 0) {
            json_decref(versions);
            versions = NULL;
        }
    if (versions == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:o, s:I}", "address", address, "status",
                     keyprov_health_status_name(h->status), "versions", versions, "error",
                     h->error[0] ? json_string(h->error) : json_null(), "latency_ms",
                     (json_int_t)h->latency_ms);
}

/* health: the provider's health, or NULL when it was not checked. */
static json_t *provider_json(const struct keyprov_info *p, const struct keyprov_health *health)
{
    bool standard = p->type == KEYPROV_STANDARD;
    json_t *servers = json_array(), *o;

    for (size_t i = 0; servers != NULL && i < p->server_count; i++) {
        const struct keyprov_server_health *h = NULL;
        /* The check ran on a snapshot: match by address, not by index. */
        for (size_t k = 0; health != NULL && k < health->server_count && h == NULL; k++)
            if (strcmp(health->servers[k].address, p->servers[i]) == 0)
                h = &health->servers[k];
        if (json_array_append_new(servers, server_json(p->servers[i], h)) != 0) {
            json_decref(servers);
            servers = NULL;
        }
    }
    if (servers == NULL)
        return NULL;
    o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:b}", "name", p->name, "type",
                  standard ? "standard" : "native", "default", p->is_default, "backed_up",
                  p->backed_up, "configured", p->configured, "servers", servers, "trust",
                  standard && trust_names[p->trust] != NULL ? json_string(trust_names[p->trust])
                                                            : json_null(),
                  "pinned_sha256",
                  standard && p->trust == KEYPROV_TRUST_PINNED ? json_string(p->pinned_sha256)
                                                               : json_null(),
                  "client_certificate",
                  standard && p->has_client_cert ? cert_json(&p->client_cert) : json_null(),
                  "csr_pending", standard && p->csr_pending);
    return o;
}

/* {"provider": ...} for one provider, with its health when asked. */
static RESULT provider_answer(struct api_call *c, const char *name, bool with_health,
                              json_t **out)
{
    struct keyprov_info info;
    struct keyprov_health *health = NULL;
    vs_result rc;

    GUARD(keyprov_get_info(c->ctx->kp, name, &info));
    if (with_health && info.type == KEYPROV_STANDARD) {
        const char *names[1] = {info.name};
        health = calloc(1, sizeof(*health));
        ENSURE(health != NULL, ERR_NOMEM);
        rc = keyprov_health(c->ctx->kp, names, 1, health);
        if (!is_ok(rc)) {
            free(health);
            return rc;
        }
    }
    rc = api_wrap("provider", provider_json(&info, health), out);
    free(health);
    return rc;
}

/* "?health=0" (or false) skips the health checks; nothing else is taken. */
static RESULT query_health(const struct api_call *c, bool *health)
{
    const char *q = c->query;

    *health = true;
    while (q != NULL && *q != '\0') {
        size_t n = strcspn(q, "&");
        if (n == 8 && strncmp(q, "health=0", n) == 0)
            *health = false;
        else if (n == 12 && strncmp(q, "health=false", n) == 0)
            *health = false;
        else if (!(n == 8 && strncmp(q, "health=1", n) == 0) &&
                 !(n == 11 && strncmp(q, "health=true", n) == 0)) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("unknown query parameter '%.*s' (only health=0 or health=1)",
                              (int)(n < 40 ? n : 40), q);
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return OK_RESULT;
}

/* --- providers ------------------------------------------------------------------- */

static vs_result r_providers_list(struct api_call *c, int *status, json_t **out)
{
    struct keyprov_info *infos = NULL;
    struct keyprov_health *health = NULL;
    const char **names = NULL;
    json_t *list = NULL;
    size_t cap = 16, n = 0;
    bool with_health;
    vs_result rc = OK_RESULT;

    (void)status;
    GUARD(api_require(c, "provider.list", NULL, NULL, &no_facts));
    GUARD(query_health(c, &with_health));
    /* A provider may be added between the two calls: ask until it fits. */
    for (;;) {
        free(infos);
        infos = calloc(cap, sizeof(*infos));
        ENSURE_OUT(infos != NULL, ERR_NOMEM);
        GUARD_OUT(keyprov_list(c->ctx->kp, infos, cap, &n));
        if (n <= cap)
            break;
        cap = n + 8;
    }
    if (with_health && n > 0) {
        names = calloc(n, sizeof(*names));
        health = calloc(n, sizeof(*health));
        ENSURE_OUT(names != NULL && health != NULL, ERR_NOMEM);
        for (size_t i = 0; i < n; i++)
            names[i] = infos[i].name;
        GUARD_OUT(keyprov_health(c->ctx->kp, names, n, health));
    }
    list = json_array();
    ENSURE_OUT(list != NULL, ERR_NOMEM);
    for (size_t i = 0; i < n; i++)
        ENSURE_OUT(json_array_append_new(
                       list, provider_json(&infos[i], health != NULL ? &health[i] : NULL)) == 0,
                   ERR_NOMEM);
    rc = api_wrap("providers", list, out);
    list = NULL;
out:
    json_decref(list);
    free(names);
    free(health);
    free(infos);
    return rc;
}

static vs_result r_provider_get(struct api_call *c, int *status, json_t **out)
{
    bool with_health;

    (void)status;
    GUARD(api_require(c, "provider.list", NULL, NULL, &no_facts));
    GUARD(query_health(c, &with_health));
    return provider_answer(c, c->params[0], with_health, out);
}

static vs_result r_providers_add(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "type", "servers", "ca_pem", "cert_pem",
                                       "key_pem", NULL};
    const char *name, *type, *ca = NULL, *cert = NULL, *key = NULL;
    const char *servers[KEYPROV_MAX_SERVERS];
    size_t server_count = 0;
    vs_result rc = OK_RESULT;

    GUARD_OUT(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "name", true, &name));
    GUARD_OUT(api_body_str(c->body, "type", true, &type));
    if (strcmp(type, "native") == 0) {
        if (json_object_size(c->body) != 2) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("a native provider takes only a name");
            goto out;
        }
        GUARD_OUT(keyprov_add_native(c->ctx->kp, name));
    } else if (strcmp(type, "standard") == 0) {
        GUARD_OUT(api_body_strings(c->body, "servers", true, servers, KEYPROV_MAX_SERVERS,
                                   &server_count));
        GUARD_OUT(api_body_str(c->body, "ca_pem", false, &ca));
        GUARD_OUT(api_body_str(c->body, "cert_pem", false, &cert));
        GUARD_OUT(api_body_str(c->body, "key_pem", false, &key));
        if (ca == NULL && cert == NULL && key == NULL) {
            /* vCenter's way: the servers now, trust afterwards. */
            GUARD_OUT(keyprov_add_standard_servers(c->ctx->kp, name, servers, server_count));
        } else if (ca != NULL && cert != NULL && key != NULL) {
            /* All at once, checked against the servers before it is stored.
             * A PEM that does not parse (ERR_CRYPTO, keyprov.h) is the
             * request's fault. */
            rc = keyprov_add_standard(c->ctx->kp, name, servers, server_count, ca, cert, key);
            if (rc.code == ERR_CRYPTO) {
                struct err_state why = *err_last();
                why.code = ERR_INVALID_ARG;
                rc = err_restore(&why);
            }
            GUARD_OUT(rc);
        } else {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("give 'ca_pem', 'cert_pem' and 'key_pem' together, or none of them (then "
                       "establish trust with the provider's trust and client routes)");
            goto out;
        }
    } else {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("field 'type' must be \"native\" or \"standard\"");
        goto out;
    }
    log_info("key provider added", LOG_S("provider", name), LOG_S("type", type),
             LOG_S("by", c->user));
    *status = 201;
    GUARD_OUT(provider_answer(c, name, false, out));
out:
    api_body_wipe(c->body, "key_pem");
    return rc;
}

static vs_result r_provider_backup(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"passphrase", NULL};
    const char *pass;
    struct buf file = {0}, text = {0};
    vs_result rc = OK_RESULT;

    (void)status;
    GUARD_OUT(api_require(c, "provider.backup", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "passphrase", true, &pass));
    GUARD_OUT(buf_alloc(&file, 4096, KP_BACKUP_MAX));
    GUARD_OUT(buf_alloc(&text, 8192, 2 * KP_BACKUP_MAX));
    GUARD_OUT(keyprov_backup(c->ctx->kp, c->params[0], pass, strlen(pass), &file));
    GUARD_OUT(vm_b64_encode(buf_data(&file), buf_len(&file), &text));
    GUARD_OUT(api_wrap("backup", json_string((const char *)buf_data(&text)), out));
    log_info("key provider backed up", LOG_S("provider", c->params[0]), LOG_S("by", c->user));
out:
    api_body_wipe(c->body, "passphrase");
    buf_free(&file);
    buf_free(&text);
    return rc;
}

static vs_result r_providers_restore(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"backup", "passphrase", "name", NULL};
    const char *b64, *pass, *name;
    char used[KEYPROV_NAME_MAX];
    struct buf file = {0};
    vs_result rc = OK_RESULT;

    GUARD_OUT(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "backup", true, &b64));
    GUARD_OUT(api_body_str(c->body, "passphrase", true, &pass));
    GUARD_OUT(api_body_str(c->body, "name", false, &name));
    GUARD_OUT(buf_alloc(&file, 4096, KP_BACKUP_MAX));
    GUARD_OUT(vm_b64_decode(b64, &file));
    GUARD_OUT(keyprov_restore(c->ctx->kp, buf_data(&file), buf_len(&file), pass, strlen(pass),
                              name, used));
    *status = 201;
    GUARD_OUT(provider_answer(c, used, false, out));
out:
    api_body_wipe(c->body, "passphrase");
    buf_free(&file);
    return rc;
}

static vs_result r_provider_default(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, no_fields));
    GUARD(keyprov_set_default(c->ctx->kp, c->params[0]));
    log_info("default key provider set", LOG_S("provider", c->params[0]), LOG_S("by", c->user));
    return provider_answer(c, c->params[0], false, out);
}

/* ERR_VM_STATE if anything on this host depends on provider `name`: a VM
 * (its descriptor names it, or a key of it that a VM uses), a storage
 * policy, or the host key. */
static RESULT provider_in_use(struct api_call *c, const char *name)
{
    json_t *vms = NULL, *keys = NULL, *policies = NULL, *x;
    const char *user = NULL, *what = "VM";
    bool safe = false;
    json_t *host = NULL;
    size_t i;
    vs_result rc = OK_RESULT;

    GUARD_OUT(vm_list(c->ctx->host, &vms));
    json_array_foreach(vms, i, x)
    {
        const char *p = json_string_value(json_object_get(x, "provider"));
        if (user == NULL && p != NULL && strcmp(p, name) == 0)
            user = json_string_value(json_object_get(x, "name"));
    }
    /* keys.json: the keys issued at it that an existing VM still uses. */
    if (user == NULL) {
        GUARD_OUT(vm_keys(c->ctx->host, &keys));
        json_array_foreach(keys, i, x)
        {
            const char *p = json_string_value(json_object_get(x, "provider"));
            json_t *users = json_object_get(x, "vms");
            if (user == NULL && p != NULL && strcmp(p, name) == 0 && json_array_size(users) > 0)
                user = json_string_value(json_array_get(users, 0));
        }
    }
    if (user == NULL) {
        json_t *a;
        GUARD_OUT(policy_list(c->ctx->store, &policies));
        a = json_is_array(policies) ? policies : json_object_get(policies, "policies");
        json_array_foreach(a, i, x)
        {
            const char *p = json_string_value(json_object_get(x, "provider"));
            if (user == NULL && p != NULL && strcmp(p, name) == 0) {
                user = json_string_value(json_object_get(x, "name"));
                what = "storage policy";
            }
        }
    }
    if (user == NULL) {
        GUARD_OUT(hostmode_get(c->ctx, &safe, &host));
        const char *p =
            json_string_value(json_object_get(json_object_get(host, "host_key"), "provider"));
        if (safe && p != NULL && strcmp(p, name) == 0) {
            rc = RAISE(ERR_VM_STATE);
            err_detail("provider '%s' holds this host's key (host encryption mode)", name);
            goto out;
        }
    }
    if (user != NULL) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("provider '%s' is in use by %s '%s'", name, what, user);
    }
out:
    json_decref(vms);
    json_decref(keys);
    json_decref(policies);
    json_decref(host);
    return rc;
}

static vs_result r_provider_delete(struct api_call *c, int *status, json_t **out)
{
    struct keyprov_info info;

    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, no_fields));
    GUARD(keyprov_get_info(c->ctx->kp, c->params[0], &info));
    GUARD(provider_in_use(c, c->params[0]));
    GUARD(keyprov_remove(c->ctx->kp, c->params[0]));
    return api_wrap("removed", json_string(c->params[0]), out);
}

static vs_result r_provider_server_add(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"address", NULL};
    const char *address;

    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "address", true, &address));
    GUARD(keyprov_server_add(c->ctx->kp, c->params[0], address));
    *status = 201;
    return provider_answer(c, c->params[0], false, out);
}

static vs_result r_provider_server_remove(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, no_fields));
    GUARD(keyprov_server_remove(c->ctx->kp, c->params[0], c->params[1]));
    return provider_answer(c, c->params[0], false, out);
}

/* "ab:cd:..." in upper case, as `openssl x509 -fingerprint -sha256` prints it. */
static void fingerprint_colons(const char *hex, char *out, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; hex[i] != '\0' && n + 3 < size; i++) {
        if (i > 0 && i % 2 == 0)
            out[n++] = ':';
        out[n++] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 'a' + 'A') : hex[i];
    }
    out[n] = '\0';
}

static vs_result r_provider_server_cert(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"address", NULL};
    const char *address;
    struct keyprov_server_cert sc;
    char colons[3 * KEYPROV_FINGERPRINT_SIZE];
    vs_result rc;

    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "address", false, &address));
    GUARD(keyprov_fetch_server_cert(c->ctx->kp, c->params[0], address, &sc));
    fingerprint_colons(sc.leaf.sha256, colons, sizeof(colons));
    rc = api_wrap("server_certificate",
                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s%}", "address",
                            sc.address, "subject", sc.leaf.subject, "issuer", sc.leaf.issuer,
                            "not_before", sc.leaf.not_before, "not_after", sc.leaf.not_after,
                            "sha256", sc.leaf.sha256, "sha256_colons", colons, "chain_length",
                            (json_int_t)sc.chain_count, "pem",
                            (const char *)buf_data(&sc.chain_pem), buf_len(&sc.chain_pem)),
                  out);
    buf_free(&sc.chain_pem);
    return rc;
}

static vs_result r_provider_trust(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"ca_pem", "server_certificate_pem", "fingerprint", NULL};
    const char *ca, *cert, *fingerprint;

    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "ca_pem", false, &ca));
    GUARD(api_body_str(c->body, "server_certificate_pem", false, &cert));
    GUARD(api_body_str(c->body, "fingerprint", false, &fingerprint));
    if (ca != NULL && cert == NULL && fingerprint == NULL) {
        GUARD(keyprov_trust_ca(c->ctx->kp, c->params[0], ca));
    } else if (ca == NULL && cert != NULL && fingerprint != NULL) {
        GUARD(keyprov_trust_pinned(c->ctx->kp, c->params[0], cert, fingerprint));
    } else {
        RAISE(ERR_INVALID_ARG);
        return err_detail("give either 'ca_pem', or 'server_certificate_pem' with the "
                          "'fingerprint' you confirmed");
    }
    return provider_answer(c, c->params[0], false, out);
}

/* {"<key>": pem, "provider": provider}. */
static RESULT pem_and_provider(struct api_call *c, const char *key, const struct buf *pem,
                               json_t **out)
{
    json_t *provider = NULL;

    GUARD(provider_answer(c, c->params[0], false, &provider));
    if (json_object_set_new(provider, key,
                            json_stringn((const char *)buf_data(pem), buf_len(pem))) != 0) {
        json_decref(provider);
        BAIL(ERR_NOMEM);
    }
    *out = provider;
    return OK_RESULT;
}

static vs_result r_provider_client_self_signed(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"common_name", NULL};
    const char *cn;
    struct buf cert = {0};
    vs_result rc = OK_RESULT;

    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "common_name", false, &cn));
    GUARD(buf_alloc(&cert, 2048, 64 * 1024));
    GUARD_OUT(keyprov_client_self_signed(c->ctx->kp, c->params[0], cn, &cert));
    GUARD_OUT(pem_and_provider(c, "certificate_pem", &cert, out));
out:
    buf_free(&cert);
    return rc;
}

static vs_result r_provider_client_csr(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"common_name", NULL};
    const char *cn;
    struct buf csr = {0};
    vs_result rc = OK_RESULT;

    (void)status;
    GUARD(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "common_name", false, &cn));
    GUARD(buf_alloc(&csr, 1024, 64 * 1024));
    GUARD_OUT(keyprov_client_csr(c->ctx->kp, c->params[0], cn, &csr));
    GUARD_OUT(pem_and_provider(c, "csr_pem", &csr, out));
out:
    buf_free(&csr);
    return rc;
}

static vs_result r_provider_client_cert(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"certificate_pem", "key_pem", NULL};
    const char *cert, *key;
    vs_result rc = OK_RESULT;

    (void)status;
    GUARD_OUT(api_require(c, "provider.manage", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "certificate_pem", true, &cert));
    GUARD_OUT(api_body_str(c->body, "key_pem", false, &key));
    GUARD_OUT(keyprov_client_certificate(c->ctx->kp, c->params[0], cert, key));
    GUARD_OUT(provider_answer(c, c->params[0], false, out));
out:
    api_body_wipe(c->body, "key_pem");
    return rc;
}

/* --- keys ------------------------------------------------------------------------ */

static vs_result r_keys_list(struct api_call *c, int *status, json_t **out)
{
    json_t *a = NULL;

    (void)status;
    GUARD(api_require(c, "key.list", NULL, NULL, &no_facts));
    GUARD(vm_keys(c->ctx->host, &a));
    return api_wrap("keys", a, out);
}

static vs_result r_keys_destroy(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"vm", "provider", "key_id", NULL};
    const char *vm, *provider, *key_id;
    struct keyprov_ref ref = {0};

    (void)status;
    GUARD(api_require(c, "key.destroy", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "vm", false, &vm));
    GUARD(api_body_str(c->body, "provider", false, &provider));
    GUARD(api_body_str(c->body, "key_id", false, &key_id));
    if (vm != NULL ? (provider != NULL || key_id != NULL) : (provider == NULL || key_id == NULL)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("give either 'vm', or both 'provider' and 'key_id'");
    }
    if (vm == NULL) {
        if (strlen(provider) >= sizeof ref.provider || strlen(key_id) >= sizeof ref.key_id) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("provider or key ID too long");
        }
        memcpy(ref.provider, provider, strlen(provider) + 1);
        memcpy(ref.key_id, key_id, strlen(key_id) + 1);
    }
    return vm_key_destroy(c->ctx->host, vm, &ref, out);
}

/* --- the host -------------------------------------------------------------------- */

static vs_result r_host_get(struct api_call *c, int *status, json_t **out)
{
    json_t *info = NULL;
    bool safe;

    (void)status;
    GUARD(api_require(c, "host.read", NULL, NULL, &no_facts));
    GUARD(hostmode_get(c->ctx, &safe, &info));
    return api_wrap("host", info, out);
}

static vs_result r_host_encryption(struct api_call *c, int *status, json_t **out)
{
    json_t *info = NULL;
    bool safe;

    (void)status;
    GUARD(api_require(c, "host.encryption", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, no_fields));
    GUARD(hostmode_enable(c->ctx, c->user));
    GUARD(hostmode_get(c->ctx, &safe, &info));
    return api_wrap("host", info, out);
}

/* --- the table ------------------------------------------------------------------- */

const struct api_route api_routes_kp[] = {
    {"GET", "/v1/providers", r_providers_list},
    {"POST", "/v1/providers", r_providers_add},
    {"POST", "/v1/providers/restore", r_providers_restore},
    {"GET", "/v1/providers/{}", r_provider_get},
    {"DELETE", "/v1/providers/{}", r_provider_delete},
    {"POST", "/v1/providers/{}/backup", r_provider_backup},
    {"POST", "/v1/providers/{}/default", r_provider_default},
    {"POST", "/v1/providers/{}/servers", r_provider_server_add},
    {"DELETE", "/v1/providers/{}/servers/{}", r_provider_server_remove},
    {"POST", "/v1/providers/{}/server-certificate", r_provider_server_cert},
    {"POST", "/v1/providers/{}/trust", r_provider_trust},
    {"POST", "/v1/providers/{}/client/self-signed", r_provider_client_self_signed},
    {"POST", "/v1/providers/{}/client/csr", r_provider_client_csr},
    {"POST", "/v1/providers/{}/client/certificate", r_provider_client_cert},
    {"GET", "/v1/keys", r_keys_list},
    {"POST", "/v1/keys/destroy", r_keys_destroy},
    {"GET", "/v1/host", r_host_get},
    {"POST", "/v1/host/encryption", r_host_encryption},
};
const size_t api_routes_kp_count = sizeof api_routes_kp / sizeof api_routes_kp[0];
