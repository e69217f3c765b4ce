/*
 * native.c - the native key provider, like vSphere's Native Key Provider:
 * no key server, a provider root from which every KEK is derived.
 *
 *   providers/NAME/root.sealed    the root (32 random bytes), sealed under
 *                                 the host key for ("native-root", NAME, id)
 *   providers/NAME/destroyed.json key IDs destroyed on this host (tombstones)
 *
 * KEK = HKDF-SHA256(ikm = root, salt = none,
 *                   info = "vmseal native KEK v1" || key ID)       (RFC 5869)
 * with a key ID that is a fresh random UUID. Nothing per key is stored: a
 * backup of the root (backup.c) taken once restores every KEK ever issued,
 * which is why issuing is refused until a backup was taken.
 *
 * Destroying a native key can only be a promise of this host: the
 * tombstone list makes this host refuse to derive the key again, but a
 * backup of the root restored elsewhere still derives it. Crypto-shredding
 * a native key for good means destroying every copy of the root (the
 * provider and its backups), which shreds all its keys. docs/keyprov.md
 * says so to the operator.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"
#include "kmip/kmip_defs.h"

#define KEYPROV_SEALED_MAX 1024
#define KEYPROV_TOMBSTONE_FILE_MAX (16u << 20)
#define KEYPROV_TOMBSTONES_MAX 100000
#define KEYPROV_PURPOSE_ROOT "native-root"

vs_result keyprov_native_derive(const uint8_t root[KEYPROV_ROOT_LEN], const char *key_id,
                                uint8_t kek[KEYPROV_KEK_LEN])
{
    uint8_t info[sizeof(KEYPROV_NATIVE_KEK_INFO) - 1 + KEYPROV_KEY_ID_MAX];
    size_t prefix = sizeof(KEYPROV_NATIVE_KEK_INFO) - 1, n = strlen(key_id);

    ENSURE(n < KEYPROV_KEY_ID_MAX, ERR_INVALID_ARG);
    memcpy(info, KEYPROV_NATIVE_KEK_INFO, prefix);
    memcpy(info + prefix, key_id, n);
    return crypto_hkdf_sha256(NULL, 0, root, KEYPROV_ROOT_LEN, info, prefix + n, kek,
                              KEYPROV_KEK_LEN);
}

/* --- the root --- */

vs_result keyprov_native_store_root(struct keyprov *kp, struct keyprov_provider *p,
                                    const uint8_t root[KEYPROV_ROOT_LEN])
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf sealed = {0};
    void *copy = NULL;

    GUARD(keyprov_path(kp, p->name, NULL, path, sizeof(path)));
    GUARD(file_mkdir(path, 0700));
    GUARD(keyprov_path(kp, p->name, KEYPROV_ROOT_FILE, path, sizeof(path)));
    GUARD(buf_alloc(&sealed, 0, KEYPROV_SEALED_MAX));
    GUARD_OUT(keyprov_hostkey_seal(kp->hostkey, KEYPROV_PURPOSE_ROOT, p->name, p->id, root,
                                   KEYPROV_ROOT_LEN, &sealed));
    GUARD_OUT(secret_alloc(KEYPROV_ROOT_LEN, &copy));
    memcpy(copy, root, KEYPROV_ROOT_LEN);
    GUARD_OUT(file_write_atomic(path, buf_data(&sealed), buf_len(&sealed), 0600));
    void *old = p->root;
    secret_free(&old);
    p->root = copy;
    copy = NULL;
out:
    secret_free(&copy);
    buf_free(&sealed);
    return rc;
}

vs_result keyprov_native_create_root(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    void *root = NULL;

    GUARD(secret_alloc(KEYPROV_ROOT_LEN, &root));
    GUARD_OUT(crypto_random_key(root, KEYPROV_ROOT_LEN));
    GUARD_OUT(keyprov_native_store_root(kp, p, root));
out:
    secret_free(&root);
    return rc;
}

static vs_result keyprov_native_load_root(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf sealed = {0}, plain = {0};
    void *root = NULL;

    GUARD(keyprov_path(kp, p->name, KEYPROV_ROOT_FILE, path, sizeof(path)));
    GUARD(buf_alloc(&sealed, 0, KEYPROV_SEALED_MAX));
    GUARD_OUT(file_read_all(path, KEYPROV_SEALED_MAX, &sealed));
    GUARD_OUT(buf_alloc_secret(&plain, 0, KEYPROV_SEALED_MAX));
    GUARD_OUT(keyprov_hostkey_open(kp->hostkey, KEYPROV_PURPOSE_ROOT, p->name, p->id,
                                   buf_data(&sealed), buf_len(&sealed), &plain));
    if (buf_len(&plain) != KEYPROV_ROOT_LEN) {
        rc = RAISE(ERR_AUTH);
        err_detail("%s holds a root of %zu bytes", path, buf_len(&plain));
        goto out;
    }
    GUARD_OUT(secret_alloc(KEYPROV_ROOT_LEN, &root));
    memcpy(root, buf_data(&plain), KEYPROV_ROOT_LEN);
    p->root = root;
    root = NULL;
out:
    secret_free(&root);
    buf_free(&plain);
    buf_free(&sealed);
    return rc;
}

/* --- tombstones: {"version": 1, "destroyed": ["<key ID>", ...]} --- */

static bool keyprov_native_is_tombstoned(const struct keyprov_provider *p, const char *key_id)
{
    for (size_t i = 0; i < p->tombstone_count; i++)
        if (strcmp(p->tombstones[i], key_id) == 0)
            return true;
    return false;
}

static vs_result keyprov_tombstones_refuse(const char *path, const char *what)
{
    RAISE(ERR_PROVIDER);
    return err_detail("%s: %s", path, what);
}

static vs_result keyprov_native_load_tombstones(struct keyprov *kp, struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    struct buf b = {0};

    GUARD(keyprov_path(kp, p->name, KEYPROV_TOMBSTONE_FILE, path, sizeof(path)));
    GUARD(buf_alloc(&b, 0, KEYPROV_TOMBSTONE_FILE_MAX));
    rc = file_read_all(path, KEYPROV_TOMBSTONE_FILE_MAX, &b);
    if (rc.code == ERR_NOT_FOUND) {
        err_clear();
        rc = OK_RESULT; /* nothing destroyed yet */
    } else if (is_ok(rc)) {
        rc = keyprov_native_parse_tombstones(p, path, buf_data(&b), buf_len(&b));
    }
    buf_free(&b);
    return rc;
}

vs_result keyprov_native_parse_tombstones(struct keyprov_provider *p, const char *path,
                                          const void *text, size_t len)
{
    vs_result rc = OK_RESULT;
    json_t *root = NULL;
    json_error_t jerr;
    const char *key;
    json_t *v;

    root = json_loadb(len > 0 ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = RAISE(ERR_PROVIDER);
        err_detail("%s: line %d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = keyprov_tombstones_refuse(path, "not a JSON object");
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "version") != 0 && strcmp(key, "destroyed") != 0) {
            rc = keyprov_tombstones_refuse(path, "unknown field");
            goto out;
        }
    }
    const json_t *version = json_object_get(root, "version");
    const json_t *list = json_object_get(root, "destroyed");
    if (!json_is_integer(version) || json_integer_value(version) != 1 || !json_is_array(list) ||
        json_array_size(list) > KEYPROV_TOMBSTONES_MAX) {
        rc = keyprov_tombstones_refuse(path, "needs \"version\": 1 and a \"destroyed\" array");
        goto out;
    }
    if (json_array_size(list) > 0) {
        p->tombstones = calloc(json_array_size(list), sizeof(*p->tombstones));
        ENSURE_OUT(p->tombstones != NULL, ERR_NOMEM);
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *id = json_array_get(list, i);
        if (!json_is_string(id) || json_string_length(id) != KEYPROV_UUID_LEN ||
            !keyprov_is_uuid(json_string_value(id))) {
            rc = keyprov_tombstones_refuse(path, "\"destroyed\" holds something not a key ID");
            goto out;
        }
        memcpy(p->tombstones[p->tombstone_count++], json_string_value(id), KEYPROV_UUID_LEN + 1);
    }
out:
    json_decref(root);
    return rc;
}

static vs_result keyprov_native_save_tombstones(struct keyprov *kp,
                                                const struct keyprov_provider *p)
{
    vs_result rc = OK_RESULT;
    char path[4096];
    json_t *root = NULL, *list = json_array();
    char *text = NULL;

    ENSURE(list != NULL, ERR_NOMEM);
    for (size_t i = 0; i < p->tombstone_count; i++)
        ENSURE_OUT(json_array_append_new(list, json_string(p->tombstones[i])) == 0, ERR_NOMEM);
    root = json_pack("{s:i, s:o}", "version", 1, "destroyed", list);
    list = NULL; /* "o" took it */
    ENSURE_OUT(root != NULL, ERR_NOMEM);
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    ENSURE_OUT(text != NULL, ERR_NOMEM);
    GUARD_OUT(keyprov_path(kp, p->name, KEYPROV_TOMBSTONE_FILE, path, sizeof(path)));
    GUARD_OUT(file_write_atomic(path, text, strlen(text), 0644));
out:
    free(text);
    json_decref(list);
    json_decref(root);
    return rc;
}

vs_result keyprov_native_load(struct keyprov *kp, struct keyprov_provider *p)
{
    void *root = p->root;

    /* From scratch (a restore reloads a provider that was broken). */
    secret_free(&root);
    p->root = NULL;
    free(p->tombstones);
    p->tombstones = NULL;
    p->tombstone_count = 0;
    GUARD(keyprov_native_load_root(kp, p));
    return keyprov_native_load_tombstones(kp, p);
}

/* --- the operations (called with p->lock held) --- */

static vs_result keyprov_native_check_id(const struct keyprov_provider *p, const char *key_id)
{
    if (keyprov_is_uuid(key_id))
        return OK_RESULT;
    RAISE(ERR_INVALID_ARG);
    return err_detail("key provider %s: key %.*s: not a native key ID (a UUID)", p->name, 40,
                      key_id);
}

/* Derives and caches. */
static vs_result keyprov_native_derive_cached(struct keyprov *kp, struct keyprov_provider *p,
                                              const char *key_id)
{
    uint8_t kek[KEYPROV_KEK_LEN];
    vs_result rc;

    rc = keyprov_native_derive(p->root, key_id, kek);
    if (is_ok(rc))
        rc = keyprov_cache_put(kp->cache, p->name, key_id, kek, KMIP_STATE_ACTIVE);
    secret_wipe(kek, sizeof(kek));
    return rc;
}

static vs_result keyprov_native_new_kek(struct keyprov *kp, struct keyprov_provider *p,
                                        const struct keyprov_kek_purpose *purpose,
                                        struct keyprov_ref *out)
{
    char key_id[KEYPROV_UUID_LEN + 1];
    bool backed_up;

    (void)purpose; /* nothing per key is stored */
    pthread_mutex_lock(&kp->lock);
    backed_up = p->backed_up;
    pthread_mutex_unlock(&kp->lock);
    if (!backed_up) {
        RAISE(ERR_KEY_STATE);
        return err_detail("native provider %s must be backed up before its first key is used: "
                          "vmseal kp backup %s --to FILE",
                          p->name, p->name);
    }
    GUARD(keyprov_uuid_v4(key_id));
    GUARD(keyprov_native_derive_cached(kp, p, key_id));
    memset(out, 0, sizeof(*out));
    snprintf(out->provider, sizeof(out->provider), "%s", p->name);
    snprintf(out->key_id, sizeof(out->key_id), "%s", key_id);
    return OK_RESULT;
}

static vs_result keyprov_native_fetch(struct keyprov *kp, struct keyprov_provider *p,
                                      const char *key_id)
{
    GUARD(keyprov_native_check_id(p, key_id));
    if (keyprov_native_is_tombstoned(p, key_id)) {
        RAISE(ERR_KEY_STATE);
        return err_detail("key provider %s: key %s: destroyed on this host", p->name, key_id);
    }
    return keyprov_native_derive_cached(kp, p, key_id);
}

static vs_result keyprov_native_destroy(struct keyprov *kp, struct keyprov_provider *p,
                                        const char *key_id)
{
    char(*grown)[KEYPROV_KEY_ID_MAX];

    GUARD(keyprov_native_check_id(p, key_id));
    keyprov_cache_evict(kp->cache, p->name, key_id);
    if (keyprov_native_is_tombstoned(p, key_id))
        return OK_RESULT;
    ENSURE(p->tombstone_count < KEYPROV_TOMBSTONES_MAX, ERR_TOO_LARGE);
    grown = reallocarray(p->tombstones, p->tombstone_count + 1, sizeof(*p->tombstones));
    ENSURE(grown != NULL, ERR_NOMEM);
    p->tombstones = grown;
    snprintf(p->tombstones[p->tombstone_count], KEYPROV_KEY_ID_MAX, "%s", key_id);
    p->tombstone_count++;
    vs_result rc = keyprov_native_save_tombstones(kp, p);
    if (!is_ok(rc))
        p->tombstone_count--; /* not on disk: not destroyed */
    return rc;
}

const struct keyprov_type_ops keyprov_native_ops = {
    .name = "native",
    .new_kek = keyprov_native_new_kek,
    .fetch = keyprov_native_fetch,
    .destroy = keyprov_native_destroy,
};
