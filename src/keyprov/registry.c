/*
 * registry.c - DATA_DIR/providers.json: the providers of this host, their
 * types, servers and the default. It holds no secret (those are sealed in
 * providers/NAME/), and is written whole, atomically, after every change.
 *
 *   {
 *     "version": 1,
 *     "default": "nkp",
 *     "providers": [
 *       {"name": "nkp", "type": "native", "id": "<uuid>", "backed_up": true},
 *       {"name": "kms", "type": "standard", "servers": ["kms1:5696", "kms2:5696"],
 *        "trust": "pinned", "pinned_sha256": "<64 hex digits>"}
 *     ]
 *   }
 *
 * A standard provider's "trust" is "none" (created with servers only),
 * "ca" or "pinned" (then with "pinned_sha256"). Files written before trust
 * could be set from the API have no "trust": their providers were created
 * with a CA, which is what its absence means.
 *
 * Read strictly, through jansson, every field checked against a table:
 * an unknown field, a missing or mistyped one, a duplicate key or name, a
 * bad name, server or id, or a default that names no provider is refused
 * with ERR_PROVIDER and a detail naming the field. The file is ours; what
 * we did not write, we do not guess at.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "keyprov/keyprov_internal.h"

#define KEYPROV_REGISTRY_FILE "providers.json"
#define KEYPROV_REGISTRY_VERSION 1
#define KEYPROV_REGISTRY_MAX (1u << 20)

enum keyprov_field_type { FIELD_STRING, FIELD_INTEGER, FIELD_BOOLEAN, FIELD_ARRAY };

struct keyprov_field {
    const char *key;
    enum keyprov_field_type type;
    bool optional;
};

/* Every field of each object: what keyprov_registry_save writes (the
 * default is left out when there is none; see above for trust). */
static const struct keyprov_field keyprov_top_fields[] = {{"version", FIELD_INTEGER, false},
                                                          {"default", FIELD_STRING, true},
                                                          {"providers", FIELD_ARRAY, false}};
static const struct keyprov_field keyprov_native_fields[] = {{"name", FIELD_STRING, false},
                                                             {"type", FIELD_STRING, false},
                                                             {"id", FIELD_STRING, false},
                                                             {"backed_up", FIELD_BOOLEAN, false}};
static const struct keyprov_field keyprov_standard_fields[] = {
    {"name", FIELD_STRING, false},
    {"type", FIELD_STRING, false},
    {"servers", FIELD_ARRAY, false},
    {"trust", FIELD_STRING, true},
    {"pinned_sha256", FIELD_STRING, true}};

/* providers.json's names of the trust modes. */
static const char *const keyprov_trust_names[] = {
    [KEYPROV_TRUST_NONE] = "none",
    [KEYPROV_TRUST_CA] = "ca",
    [KEYPROV_TRUST_PINNED] = "pinned",
};

static const char *const keyprov_field_type_names[] = {
    [FIELD_STRING] = "a string",
    [FIELD_INTEGER] = "an integer",
    [FIELD_BOOLEAN] = "true or false",
    [FIELD_ARRAY] = "an array",
};

static bool keyprov_field_type_ok(const json_t *v, enum keyprov_field_type type)
{
    switch (type) {
    case FIELD_STRING:
        return json_is_string(v);
    case FIELD_INTEGER:
        return json_is_integer(v);
    case FIELD_BOOLEAN:
        return json_is_boolean(v);
    case FIELD_ARRAY:
        return json_is_array(v);
    }
    return false;
}

/* path: for the detail ("providers.json: providers[2]"). */
static vs_result keyprov_registry_refuse(const char *path, const char *where, const char *what)
{
    RAISE(ERR_PROVIDER);
    return err_detail("%s: %s%s%s", path, where, where[0] ? ": " : "", what);
}

/* obj has exactly the fields of the table (the optional ones may be
 * absent), each of its type. */
static vs_result keyprov_check_fields(const char *path, const char *where, const json_t *obj,
                                      const struct keyprov_field *fields, size_t n)
{
    const char *key;
    json_t *v;
    char what[160];

    if (!json_is_object(obj))
        return keyprov_registry_refuse(path, where, "not a JSON object");
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(fields[i].key, key) != 0)
            i++;
        if (i == n) {
            snprintf(what, sizeof(what), "unknown field \"%.64s\"", key);
            return keyprov_registry_refuse(path, where, what);
        }
        if (!keyprov_field_type_ok(v, fields[i].type)) {
            snprintf(what, sizeof(what), "\"%s\" must be %s", key,
                     keyprov_field_type_names[fields[i].type]);
            return keyprov_registry_refuse(path, where, what);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(obj, fields[i].key) == NULL && !fields[i].optional) {
            snprintf(what, sizeof(what), "\"%s\" is missing", fields[i].key);
            return keyprov_registry_refuse(path, where, what);
        }
    }
    return OK_RESULT;
}

/* A string field whose value has no NUL inside and fits size. */
static vs_result keyprov_get_string(const char *path, const char *where, const json_t *obj,
                                    const char *key, char *out, size_t size)
{
    const json_t *v = json_object_get(obj, key);
    char what[96];

    if (strlen(json_string_value(v)) != json_string_length(v) || json_string_length(v) >= size) {
        snprintf(what, sizeof(what), "\"%s\" is too long or holds a NUL", key);
        return keyprov_registry_refuse(path, where, what);
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return OK_RESULT;
}

/* A standard provider's "trust" and "pinned_sha256". */
static vs_result keyprov_registry_read_trust(const char *path, const char *where,
                                             const json_t *obj, struct keyprov_provider *p)
{
    const json_t *trust = json_object_get(obj, "trust");
    const json_t *pin = json_object_get(obj, "pinned_sha256");
    size_t t = KEYPROV_TRUST_CA; /* written before the field existed */

    if (trust != NULL) {
        for (t = 0; t < sizeof(keyprov_trust_names) / sizeof(keyprov_trust_names[0]); t++)
            if (strcmp(json_string_value(trust), keyprov_trust_names[t]) == 0)
                break;
        if (t == sizeof(keyprov_trust_names) / sizeof(keyprov_trust_names[0]))
            return keyprov_registry_refuse(path, where,
                                           "\"trust\" must be \"none\", \"ca\" or \"pinned\"");
    }
    p->trust = (enum keyprov_trust)t;
    if ((pin != NULL) != (p->trust == KEYPROV_TRUST_PINNED))
        return keyprov_registry_refuse(path, where,
                                       "\"pinned_sha256\" goes with \"trust\": \"pinned\", and only there");
    if (pin != NULL) {
        const char *hex = json_string_value(pin);
        bool ok = json_string_length(pin) == KEYPROV_FINGERPRINT_SIZE - 1;
        for (size_t i = 0; ok && i < KEYPROV_FINGERPRINT_SIZE - 1; i++)
            ok = (hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f');
        if (!ok)
            return keyprov_registry_refuse(path, where,
                                           "\"pinned_sha256\" is not 64 lower-case hex digits");
        memcpy(p->pinned_sha256, hex, KEYPROV_FINGERPRINT_SIZE);
    }
    return OK_RESULT;
}

static vs_result keyprov_registry_read_provider(const char *path, const char *where,
                                                const json_t *obj, struct keyprov_provider *p)
{
    const json_t *type = json_object_get(obj, "type");
    const char *type_name = json_is_string(type) ? json_string_value(type) : "";

    if (strcmp(type_name, keyprov_native_ops.name) == 0) {
        GUARD(keyprov_check_fields(path, where, obj, keyprov_native_fields,
                                   sizeof(keyprov_native_fields) / sizeof(keyprov_native_fields[0])));
        p->type = KEYPROV_NATIVE;
        GUARD(keyprov_get_string(path, where, obj, "id", p->id, sizeof(p->id)));
        if (!keyprov_is_uuid(p->id))
            return keyprov_registry_refuse(path, where, "\"id\" is not a UUID");
        p->backed_up = json_is_true(json_object_get(obj, "backed_up"));
    } else if (strcmp(type_name, keyprov_standard_ops.name) == 0) {
        GUARD(keyprov_check_fields(
            path, where, obj, keyprov_standard_fields,
            sizeof(keyprov_standard_fields) / sizeof(keyprov_standard_fields[0])));
        p->type = KEYPROV_STANDARD;
        GUARD(keyprov_registry_read_trust(path, where, obj, p));
        const json_t *servers = json_object_get(obj, "servers");
        size_t n = json_array_size(servers);
        if (n < 1 || n > KEYPROV_MAX_SERVERS)
            return keyprov_registry_refuse(path, where, "\"servers\" must list 1 to 8 servers");
        for (size_t i = 0; i < n; i++) {
            const json_t *s = json_array_get(servers, i);
            if (!json_is_string(s) || json_string_length(s) >= KEYPROV_SERVER_MAX ||
                strlen(json_string_value(s)) != json_string_length(s) ||
                !is_ok(keyprov_check_server(json_string_value(s))))
                return keyprov_registry_refuse(path, where,
                                               "\"servers\" holds something not HOST:PORT");
            memcpy(p->servers[i], json_string_value(s), json_string_length(s) + 1);
        }
        p->server_count = n;
    } else {
        return keyprov_registry_refuse(path, where, "\"type\" must be \"native\" or \"standard\"");
    }
    GUARD(keyprov_get_string(path, where, obj, "name", p->name, sizeof(p->name)));
    if (!is_ok(keyprov_check_name(p->name)))
        return keyprov_registry_refuse(path, where, "\"name\" is not a valid provider name");
    return OK_RESULT;
}

vs_result keyprov_registry_load(struct keyprov *kp)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf b = {0};

    GUARD(keyprov_path(kp, NULL, KEYPROV_REGISTRY_FILE, path, sizeof(path)));
    GUARD(buf_alloc(&b, 0, KEYPROV_REGISTRY_MAX));
    rc = file_read_all(path, KEYPROV_REGISTRY_MAX, &b);
    if (rc.code == ERR_NOT_FOUND) {
        err_clear();
        rc = OK_RESULT; /* no provider yet */
    } else if (is_ok(rc)) {
        rc = keyprov_registry_parse(kp, path, buf_data(&b), buf_len(&b));
    }
    buf_free(&b);
    return rc;
}

vs_result keyprov_registry_parse(struct keyprov *kp, const char *path, const void *text, size_t len)
{
    vs_result rc = OK_RESULT;
    char where[48];
    json_t *root = NULL;
    json_error_t jerr;
    struct keyprov_provider *p = NULL;

    root = json_loadb(len > 0 ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = RAISE(ERR_PROVIDER);
        err_detail("%s: line %d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    GUARD_OUT(keyprov_check_fields(path, "", root, keyprov_top_fields,
                                   sizeof(keyprov_top_fields) / sizeof(keyprov_top_fields[0])));
    if (json_integer_value(json_object_get(root, "version")) != KEYPROV_REGISTRY_VERSION) {
        rc = keyprov_registry_refuse(path, "", "unsupported \"version\" (this vmseal reads 1)");
        goto out;
    }
    const json_t *list = json_object_get(root, "providers");
    if (json_array_size(list) > KEYPROV_MAX_PROVIDERS) {
        rc = keyprov_registry_refuse(path, "", "too many providers");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        snprintf(where, sizeof(where), "providers[%zu]", i);
        GUARD_OUT(keyprov_provider_new(&p));
        GUARD_OUT(keyprov_registry_read_provider(path, where, json_array_get(list, i), p));
        for (size_t k = 0; k < kp->provider_count; k++) {
            if (strcmp(kp->providers[k]->name, p->name) == 0) {
                rc = keyprov_registry_refuse(path, where, "a second provider of that name");
                goto out;
            }
            if (p->type == KEYPROV_NATIVE && kp->providers[k]->type == KEYPROV_NATIVE &&
                strcmp(kp->providers[k]->id, p->id) == 0) {
                rc = keyprov_registry_refuse(path, where, "a second provider with that id");
                goto out;
            }
        }
        kp->providers[kp->provider_count++] = p;
        p = NULL;
    }
    const json_t *def = json_object_get(root, "default");
    if (def != NULL) {
        bool found = false;
        GUARD_OUT(keyprov_get_string(path, "", root, "default", kp->default_name,
                                     sizeof(kp->default_name)));
        for (size_t k = 0; k < kp->provider_count && !found; k++)
            found = strcmp(kp->providers[k]->name, kp->default_name) == 0;
        if (!found) {
            rc = keyprov_registry_refuse(path, "", "\"default\" names no provider");
            goto out;
        }
    }
out:
    keyprov_provider_free(&p);
    json_decref(root);
    return rc;
}

static json_t *keyprov_registry_encode_provider(const struct keyprov_provider *p)
{
    json_t *o, *servers;

    if (p->type == KEYPROV_NATIVE)
        return json_pack("{s:s, s:s, s:s, s:b}", "name", p->name, "type", keyprov_native_ops.name,
                         "id", p->id, "backed_up", p->backed_up);
    servers = json_array();
    for (size_t i = 0; servers != NULL && i < p->server_count; i++) {
        if (json_array_append_new(servers, json_string(p->servers[i])) != 0) {
            json_decref(servers);
            servers = NULL;
        }
    }
    if (servers == NULL)
        return NULL;
    o = json_pack("{s:s, s:s, s:o, s:s}", "name", p->name, "type", keyprov_standard_ops.name,
                  "servers", servers, "trust",
                  keyprov_trust_names[p->trust]); /* "o" steals servers, even on failure */
    if (o != NULL && p->trust == KEYPROV_TRUST_PINNED &&
        json_object_set_new(o, "pinned_sha256", json_string(p->pinned_sha256)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

vs_result keyprov_registry_save(const struct keyprov *kp, const struct keyprov_provider *extra,
                                const char *default_name)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    json_t *root = NULL, *list = NULL;
    char *text = NULL;

    GUARD(keyprov_path(kp, NULL, KEYPROV_REGISTRY_FILE, path, sizeof(path)));
    list = json_array();
    ENSURE_OUT(list != NULL, ERR_NOMEM);
    for (size_t i = 0; i <= kp->provider_count; i++) {
        const struct keyprov_provider *p = i < kp->provider_count ? kp->providers[i] : extra;
        if (p == NULL)
            continue;
        ENSURE_OUT(json_array_append_new(list, keyprov_registry_encode_provider(p)) == 0,
                   ERR_NOMEM);
    }
    root = json_pack("{s:i}", "version", KEYPROV_REGISTRY_VERSION);
    ENSURE_OUT(root != NULL, ERR_NOMEM);
    if (default_name[0] != '\0')
        ENSURE_OUT(json_object_set_new(root, "default", json_string(default_name)) == 0, ERR_NOMEM);
    ENSURE_OUT(json_object_set_new(root, "providers", list) == 0, ERR_NOMEM);
    list = NULL;
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    ENSURE_OUT(text != NULL, ERR_NOMEM);
    /* No secret in it; 0644 like the public PEMs next to it. */
    GUARD_OUT(file_write_atomic(path, text, strlen(text), 0644));
out:
    free(text);
    json_decref(list);
    json_decref(root);
    return rc;
}
