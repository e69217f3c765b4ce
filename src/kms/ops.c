/*
 * ops.c - the KMIP operations of vmseal-kms. See ops.h.
 *
 * Sections cited are KMIP 1.4 (§4 operations, §3 attributes) and 2.1
 * (§6 operations, §4 attributes); behaviour that differs by version says so.
 */
#include "kms/ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/log.h"
#include "kmip/attr.h"
#include "kmip/kmip_defs.h"

/* --- refusals --- */

static vs_result kms_refuse(struct kms_op_error *err, uint32_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static vs_result kms_refuse(struct kms_op_error *err, uint32_t reason, const char *fmt, ...)
{
    va_list ap;

    err->reason = reason;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    RAISE(ERR_KMIP_FAILED);
    return err_detail("%s", err->message);
}

/* The reason for "wrong state" in each version: 2.x has its own. */
static uint32_t kms_reason_wrong_state(const struct kms_ctx *c)
{
    return kmip_version_is_2(c->version) ? KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE
                                         : KMIP_REASON_PERMISSION_DENIED;
}

/* The end of every handler: a failure that is not already a KMIP verdict
 * (or a concurrent change, which kms_op_run retries) is our own fault. */
static vs_result kms_finish(struct kms_op_error *err, vs_result rc, struct kms_object **o);

/* A failure of our own (store, memory): General Failure, details logged. */
static vs_result kms_internal(struct kms_op_error *err, vs_result rc)
{
    char msg[256];
    err->reason = KMIP_REASON_GENERAL_FAILURE;
    snprintf(err->message, sizeof(err->message), "internal error");
    log_error("operation failed", LOG_S("error", err_format(msg, sizeof(msg))));
    return rc;
}

static vs_result kms_finish(struct kms_op_error *err, vs_result rc, struct kms_object **o)
{
    if (!is_ok(rc) && rc.code != ERR_CONFLICT && err->reason == 0)
        kms_internal(err, rc);
    if (o != NULL)
        kms_object_free(o);
    return rc;
}

/* --- objects and identifiers --- */

/* The Unique Identifier an operation is about: the one given, or the ID
 * Placeholder of this batch when it is absent. */
static vs_result kms_request_uid(struct kms_ctx *c, const struct ttlv *payload, char *uid,
                                 struct kms_op_error *err)
{
    const struct ttlv *f = ttlv_find(payload, KMIP_TAG_UNIQUE_IDENTIFIER);
    const char *s;
    size_t n;

    if (f == NULL) {
        if (c->id_placeholder[0] == '\0')
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                              "no Unique Identifier and no ID Placeholder");
        snprintf(uid, KMS_UID_MAX, "%s", c->id_placeholder);
        return OK_RESULT;
    }
    if (!is_ok(ttlv_get_text(f, &s, &n)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Unique Identifier is not a Text String");
    if (n == 0 || n >= KMS_UID_MAX)
        return kms_refuse(err, KMIP_REASON_ITEM_NOT_FOUND, "no such object");
    memcpy(uid, s, n);
    uid[n] = '\0';
    return OK_RESULT;
}

static bool kms_may_use(const struct kms_ctx *c, const struct kms_object *o)
{
    if (c->who->admin)
        return true;
    for (size_t i = 0; i < c->who->owner_count; i++)
        if (strcmp(c->who->owners[i], o->owner) == 0)
            return true;
    return false;
}

/* Loads the object the request names, if this client may use it. */
static vs_result kms_load(struct kms_ctx *c, const struct ttlv *payload, struct kms_object **out,
                          struct kms_op_error *err)
{
    char uid[KMS_UID_MAX];
    vs_result rc;

    *out = NULL;
    GUARD(kms_request_uid(c, payload, uid, err));
    snprintf(c->touched, sizeof(c->touched), "%s", uid);
    rc = kms_store_load(c->reader, uid, out);
    if (rc.code == ERR_NOT_FOUND)
        return kms_refuse(err, KMIP_REASON_ITEM_NOT_FOUND, "no object %s", uid);
    if (rc.code == ERR_AUTH) {
        /* Never serve a record that fails authentication; say so loudly. */
        log_error("stored object fails authentication", LOG_S("uid", uid), LOG_ERR());
        return kms_refuse(err, KMIP_REASON_GENERAL_FAILURE,
                          "object %s failed its integrity check in the store", uid);
    }
    if (!is_ok(rc))
        return kms_internal(err, rc);
    if (!kms_may_use(c, *out)) {
        kms_object_free(out);
        return kms_refuse(err, KMIP_REASON_ITEM_NOT_FOUND, "no object %s", uid);
    }
    snprintf(c->id_placeholder, sizeof(c->id_placeholder), "%s", uid);
    return OK_RESULT;
}

/* Stores a changed object; a concurrent change is reported to the caller,
 * which retries the whole operation (kms_retry). */
static vs_result kms_save(struct kms_ctx *c, struct kms_object *o, struct kms_op_error *err)
{
    vs_result rc;

    GUARD(kms_object_set_date(o, KMIP_TAG_LAST_CHANGE_DATE, c->now));
    rc = kms_store_update(c->store, o);
    if (rc.code == ERR_CONFLICT)
        return rc;
    if (!is_ok(rc))
        return kms_internal(err, rc);
    return OK_RESULT;
}

/* Runs a read-modify-write operation again when the object changed
 * underneath it (optimistic concurrency). */
static vs_result kms_retry(kms_op_fn fn, struct kms_ctx *c, const struct ttlv *payload,
                           struct buf *out, struct kms_op_error *err)
{
    size_t start = buf_len(out);
    vs_result rc;

    for (int attempt = 0; attempt < 8; attempt++) {
        rc = fn(c, payload, out, err);
        if (rc.code != ERR_CONFLICT)
            return rc;
        GUARD(buf_truncate(out, start));
    }
    return kms_refuse(err, KMIP_REASON_GENERAL_FAILURE, "object busy: too many concurrent changes");
}

static vs_result kms_new_uid(char uid[KMS_UID_MAX])
{
    uint8_t r[16];
    struct timespec now;

    /* A time-ordered UUID (RFC 9562 version 7): 48 bits of milliseconds,
     * then 74 random bits. Unguessable, unique across KMS nodes, and new
     * objects sort after old ones, so the store's indexes grow at their
     * ends instead of touching a random page per insert. */
    GUARD(crypto_random(r, sizeof(r)));
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        r[i] = (uint8_t)(ms >> (40 - 8 * i));
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x70);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(uid, KMS_UID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    return OK_RESULT;
}

/* --- attributes sent by clients --- */

/* What a client may set. Everything else is the server's (KMIP 1.4 §3,
 * "Modifiable by client"). */
static bool kms_client_settable(const struct kmip_attr *a)
{
    if (a->tag == 0)
        return a->name[0] != 'y'; /* y- is the server's custom namespace */
    switch (a->tag) {
    case KMIP_TAG_NAME:
    case KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM:
    case KMIP_TAG_CRYPTOGRAPHIC_LENGTH:
    case KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS:
    case KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK:
    case KMIP_TAG_ACTIVATION_DATE:
    case KMIP_TAG_PROCESS_START_DATE:
    case KMIP_TAG_PROTECT_STOP_DATE:
    case KMIP_TAG_DEACTIVATION_DATE:
    case KMIP_TAG_OBJECT_GROUP:
    case KMIP_TAG_LINK:
    case KMIP_TAG_APPLICATION_SPECIFIC_INFORMATION:
    case KMIP_TAG_CONTACT_INFORMATION:
    case KMIP_TAG_DESCRIPTION:
    case KMIP_TAG_COMMENT:
    case KMIP_TAG_SENSITIVE:
    case KMIP_TAG_EXTRACTABLE:
        return true;
    default:
        return false;
    }
}

/* Attributes that describe the key material and are fixed once it exists. */
static bool kms_fixed_after_create(uint32_t tag)
{
    return tag == KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM || tag == KMIP_TAG_CRYPTOGRAPHIC_LENGTH;
}

static uint32_t kms_reason_read_only(const struct kms_ctx *c)
{
    return kmip_version_is_2(c->version) ? KMIP_REASON_ATTRIBUTE_READ_ONLY
                                         : KMIP_REASON_PERMISSION_DENIED;
}

/* Parses one client attribute in the request's version. */
static vs_result kms_parse_attr(struct kms_ctx *c, const struct ttlv *item, struct kmip_attr *a,
                                struct kms_op_error *err)
{
    vs_result rc =
        kmip_version_is_2(c->version) ? kmip_attr_from_2x(item, a) : kmip_attr_from_1x(item, a);
    if (!is_ok(rc))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "%s", err_last()->detail);
    return OK_RESULT;
}

/* Calls fn for each attribute of the request's Template-Attribute (1.x) or
 * Attributes (2.x) structure, if any. */
typedef vs_result (*kms_attr_cb)(struct kms_ctx *c, const struct kmip_attr *a, void *arg,
                                 struct kms_op_error *err);

static vs_result kms_each_request_attr(struct kms_ctx *c, const struct ttlv *payload,
                                       kms_attr_cb fn, void *arg, struct kms_op_error *err)
{
    struct kmip_attr a;

    /* 1.x Locate carries its criteria as Attribute items in the payload
     * itself (1.4 §4.9), not in a Template-Attribute. */
    if (!kmip_version_is_2(c->version)) {
        for (const struct ttlv *it = ttlv_find(payload, KMIP_TAG_ATTRIBUTE); it != NULL;
             it = ttlv_find_next(it)) {
            GUARD(kms_parse_attr(c, it, &a, err));
            GUARD(fn(c, &a, arg, err));
        }
    }

    if (kmip_version_is_2(c->version)) {
        const struct ttlv *attrs = ttlv_find(payload, KMIP_TAG_ATTRIBUTES);
        if (attrs == NULL)
            return OK_RESULT;
        for (const struct ttlv *it = attrs->v.children.first; it != NULL; it = it->next) {
            GUARD(kms_parse_attr(c, it, &a, err));
            GUARD(fn(c, &a, arg, err));
        }
        return OK_RESULT;
    }
    for (const struct ttlv *ta = ttlv_find(payload, KMIP_TAG_TEMPLATE_ATTRIBUTE); ta != NULL;
         ta = ttlv_find_next(ta)) {
        if (ttlv_find(ta, KMIP_TAG_NAME) != NULL)
            return kms_refuse(err, KMIP_REASON_FEATURE_NOT_SUPPORTED,
                              "templates are not supported");
        for (const struct ttlv *it = ttlv_find(ta, KMIP_TAG_ATTRIBUTE); it != NULL;
             it = ttlv_find_next(it)) {
            GUARD(kms_parse_attr(c, it, &a, err));
            GUARD(fn(c, &a, arg, err));
        }
    }
    return OK_RESULT;
}

/* Adds a client attribute to a new object. */
static vs_result kms_take_attr(struct kms_ctx *c, const struct kmip_attr *a, void *arg,
                               struct kms_op_error *err)
{
    struct kms_object *o = arg;
    vs_result rc;

    if (!kms_client_settable(a))
        return kms_refuse(err, kms_reason_read_only(c), "\"%s\" is set by the server", a->name);
    rc = kms_object_add(o, a, NULL);
    if (rc.code == ERR_EXISTS)
        return kms_refuse(err,
                          kmip_version_is_2(c->version) ? KMIP_REASON_ATTRIBUTE_SINGLE_VALUED
                                                        : KMIP_REASON_INVALID_FIELD,
                          "\"%s\" given twice", a->name);
    if (rc.code == ERR_TOO_LARGE)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "too many or too large attributes");
    if (!is_ok(rc))
        return kms_internal(err, rc);
    return OK_RESULT;
}

/* The server's attributes of a new object (§3: set by the server). */
static vs_result kms_init_object(struct kms_ctx *c, struct kms_object *o)
{
    int64_t activation;

    GUARD(kms_object_set_text(o, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid));
    GUARD(kms_object_set_enum(o, KMIP_TAG_OBJECT_TYPE, o->object_type));
    GUARD(kms_object_set_date(o, KMIP_TAG_INITIAL_DATE, c->now));
    GUARD(kms_object_set_date(o, KMIP_TAG_ORIGINAL_CREATION_DATE, c->now));
    GUARD(kms_object_set_date(o, KMIP_TAG_LAST_CHANGE_DATE, c->now));
    GUARD(kms_object_set_bool(o, KMIP_TAG_FRESH, true));
    /* An Activation Date in the past or now activates at once (§3.24). */
    bool active = is_ok(kms_object_get_date(o, KMIP_TAG_ACTIVATION_DATE, &activation)) &&
                  activation <= c->now;
    return kms_object_set_enum(o, KMIP_TAG_STATE,
                               active ? KMIP_STATE_ACTIVE : KMIP_STATE_PRE_ACTIVE);
}

/* AES keys: 128, 192 or 256 bits. */
static vs_result kms_check_aes(struct kms_ctx *c, struct kms_object *o, size_t material_len,
                               struct kms_op_error *err)
{
    uint32_t alg;
    int32_t bits;
    (void)c;

    if (!is_ok(kms_object_get_enum(o, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &alg)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Cryptographic Algorithm is required");
    if (alg != KMIP_ALG_AES)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                          "only AES symmetric keys are supported, not %s",
                          kmip_crypto_alg_name(alg) ? kmip_crypto_alg_name(alg) : "that algorithm");
    if (!is_ok(kms_object_get_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &bits))) {
        if (material_len == 0)
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Cryptographic Length is required");
        bits = (int32_t)(material_len * 8);
        GUARD(kms_object_set_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits));
    }
    if (bits != 128 && bits != 192 && bits != 256)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                          "AES keys are 128, 192 or 256 bits, not %d", (int)bits);
    if (material_len != 0 && material_len * 8 != (size_t)bits)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                          "key material is %zu bits but Cryptographic Length says %d",
                          material_len * 8, (int)bits);
    return OK_RESULT;
}

/* Secret Data Type (1.4 §2.2.7) is not an attribute, but Get must give it
 * back: it is kept in the server's own custom namespace. */
#define KMS_ATTR_SECRET_DATA_TYPE "y-vmseal-secret-data-type"

static vs_result kms_set_secret_data_type(struct kms_object *o, uint32_t sdt)
{
    uint8_t mem[32];
    struct buf b;
    struct ttlv_doc *doc = NULL;
    struct kmip_attr a;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(ttlv_enc_enum(&b, KMIP_TAG_ATTRIBUTE_VALUE, sdt));
    GUARD(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc));
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "%s", KMS_ATTR_SECRET_DATA_TYPE);
    a.value = ttlv_doc_root(doc);
    vs_result rc = kms_object_set(o, &a);
    ttlv_doc_free(&doc);
    return rc;
}

/* --- Discover Versions (1.4 §4.26, 2.1 §6.1.22) --- */

static vs_result op_discover_versions(struct kms_ctx *c, const struct ttlv *payload,
                                      struct buf *out, struct kms_op_error *err)
{
    (void)c;
    (void)err;
    for (size_t i = 0; i < kmip_version_count; i++) {
        const struct kmip_version *v = &kmip_versions[i];
        bool wanted = ttlv_find(payload, KMIP_TAG_PROTOCOL_VERSION) == NULL;
        /* With a client list: the intersection, in our order of preference. */
        for (const struct ttlv *p = ttlv_find(payload, KMIP_TAG_PROTOCOL_VERSION);
             p != NULL && !wanted; p = ttlv_find_next(p)) {
            int32_t major, minor;
            if (is_ok(ttlv_get_integer(ttlv_find(p, KMIP_TAG_PROTOCOL_VERSION_MAJOR), &major)) &&
                is_ok(ttlv_get_integer(ttlv_find(p, KMIP_TAG_PROTOCOL_VERSION_MINOR), &minor)))
                wanted = major == v->major && minor == v->minor;
        }
        if (!wanted)
            continue;
        size_t m;
        GUARD(ttlv_enc_begin(out, KMIP_TAG_PROTOCOL_VERSION, &m));
        GUARD(ttlv_enc_integer(out, KMIP_TAG_PROTOCOL_VERSION_MAJOR, v->major));
        GUARD(ttlv_enc_integer(out, KMIP_TAG_PROTOCOL_VERSION_MINOR, v->minor));
        GUARD(ttlv_enc_end(out, m));
    }
    return OK_RESULT;
}

/* --- Query (1.4 §4.25, 2.1 §6.1.37) --- */

static vs_result op_query(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                          struct kms_op_error *err)
{
    bool ops = false, objs = false, info = false;

    for (const struct ttlv *f = ttlv_find(payload, KMIP_TAG_QUERY_FUNCTION); f != NULL;
         f = ttlv_find_next(f)) {
        uint32_t fn;
        if (!is_ok(ttlv_get_enum(f, &fn)))
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad Query Function");
        ops |= fn == KMIP_QUERY_OPERATIONS;
        objs |= fn == KMIP_QUERY_OBJECTS;
        info |= fn == KMIP_QUERY_SERVER_INFORMATION;
    }
    if (ops)
        for (size_t i = 0; i < kms_op_count(); i++)
            GUARD(ttlv_enc_enum(out, KMIP_TAG_OPERATION, kms_op_at(i)));
    if (objs) {
        /* 2.x wraps the list in an Objects structure... no: both versions
         * list Object Type items directly (1.4 §4.25, 2.1 §6.1.37). */
        GUARD(ttlv_enc_enum(out, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
        GUARD(ttlv_enc_enum(out, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SECRET_DATA));
    }
    if (info) {
        size_t m;
        GUARD(ttlv_enc_text(out, KMIP_TAG_VENDOR_IDENTIFICATION, KMS_VENDOR_IDENTIFICATION,
                            strlen(KMS_VENDOR_IDENTIFICATION)));
        GUARD(ttlv_enc_begin(out, KMIP_TAG_SERVER_INFORMATION, &m));
        GUARD(ttlv_enc_end(out, m));
    }
    (void)c;
    return OK_RESULT;
}

/* --- Create (1.4 §4.1, 2.1 §6.1.7) and Register (1.4 §4.3, 2.1 §6.1.39) --- */

/* Stores a new object and answers with its identifier, preceded by its
 * type for Create (1.4 §4.1; Register's response has no Object Type, §4.3). */
static vs_result kms_finish_new(struct kms_ctx *c, struct kms_object *o, bool with_type,
                                struct buf *out, struct kms_op_error *err)
{
    vs_result rc = kms_store_insert(c->store, o);
    if (!is_ok(rc))
        return kms_internal(err, rc);
    snprintf(c->id_placeholder, sizeof(c->id_placeholder), "%s", o->uid);
    snprintf(c->touched, sizeof(c->touched), "%s", o->uid);
    if (with_type)
        GUARD(ttlv_enc_enum(out, KMIP_TAG_OBJECT_TYPE, o->object_type));
    return ttlv_enc_text(out, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid, strlen(o->uid));
}

static vs_result op_create(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                           struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    char uid[KMS_UID_MAX];
    uint32_t type;
    int32_t bits;
    uint8_t *key;

    if (!is_ok(ttlv_get_enum(ttlv_find(payload, KMIP_TAG_OBJECT_TYPE), &type)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Object Type is required");
    if (type != KMIP_OBJ_SYMMETRIC_KEY)
        return kms_refuse(err,
                          kmip_version_is_2(c->version) ? KMIP_REASON_INVALID_OBJECT_TYPE
                                                        : KMIP_REASON_INVALID_FIELD,
                          "Create makes symmetric keys only");
    GUARD(kms_new_uid(uid));
    GUARD(kms_object_new(uid, c->who->owner, type, &o));
    GUARD_OUT(kms_each_request_attr(c, payload, kms_take_attr, o, err));
    GUARD_OUT(kms_check_aes(c, o, 0, err));
    GUARD_OUT(kms_object_get_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &bits));
    GUARD_OUT(buf_reserve(&o->material, (size_t)bits / 8, &key));
    GUARD_OUT(crypto_random_key(key, (size_t)bits / 8));
    GUARD_OUT(kms_init_object(c, o));
    GUARD_OUT(kms_finish_new(c, o, true, out, err));
out:
    return kms_finish(err, rc, &o);
}

/* Reads the key material of a Key Block (1.4 §2.1.3): Raw or Transparent
 * Symmetric Key for symmetric keys, Opaque or Raw for secret data. */
static vs_result kms_key_block_material(struct kms_ctx *c, const struct ttlv *block,
                                        uint32_t object_type, const uint8_t **p, size_t *n,
                                        struct kms_op_error *err)
{
    const struct ttlv *value = ttlv_find(block, KMIP_TAG_KEY_VALUE), *material;
    uint32_t format;
    (void)c;

    if (!is_ok(ttlv_get_enum(ttlv_find(block, KMIP_TAG_KEY_FORMAT_TYPE), &format)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Key Format Type is required");
    if (ttlv_find(block, KMIP_TAG_KEY_WRAPPING_DATA) != NULL)
        return kms_refuse(err, KMIP_REASON_FEATURE_NOT_SUPPORTED, "wrapped keys are not supported");
    if (ttlv_find(block, KMIP_TAG_KEY_COMPRESSION_TYPE) != NULL)
        return kms_refuse(err, KMIP_REASON_FEATURE_NOT_SUPPORTED,
                          "key compression is not supported");
    material = ttlv_find(value, KMIP_TAG_KEY_MATERIAL);
    if (object_type == KMIP_OBJ_SYMMETRIC_KEY &&
        format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY)
        material = ttlv_find(material, KMIP_TAG_KEY);
    else if (!(format == KMIP_KEY_FORMAT_RAW ||
               (object_type == KMIP_OBJ_SECRET_DATA && format == KMIP_KEY_FORMAT_OPAQUE)))
        return kms_refuse(err, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
                          "unsupported Key Format Type");
    if (!is_ok(ttlv_get_bytes(material, p, n)) || *n == 0 || *n > KMS_MAX_MATERIAL)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "missing or malformed Key Material");
    return OK_RESULT;
}

static vs_result op_register(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                             struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    const struct ttlv *obj, *block;
    char uid[KMS_UID_MAX];
    const uint8_t *key;
    size_t key_len;
    uint32_t type;

    if (!is_ok(ttlv_get_enum(ttlv_find(payload, KMIP_TAG_OBJECT_TYPE), &type)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Object Type is required");
    if (type == KMIP_OBJ_SYMMETRIC_KEY)
        obj = ttlv_find(payload, KMIP_TAG_SYMMETRIC_KEY);
    else if (type == KMIP_OBJ_SECRET_DATA)
        obj = ttlv_find(payload, KMIP_TAG_SECRET_DATA);
    else
        return kms_refuse(err,
                          kmip_version_is_2(c->version) ? KMIP_REASON_INVALID_OBJECT_TYPE
                                                        : KMIP_REASON_INVALID_FIELD,
                          "Register takes symmetric keys and secret data only");
    block = ttlv_find(obj, KMIP_TAG_KEY_BLOCK);
    if (block == NULL)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "the object's Key Block is missing");
    GUARD(kms_key_block_material(c, block, type, &key, &key_len, err));

    GUARD(kms_new_uid(uid));
    GUARD(kms_object_new(uid, c->who->owner, type, &o));
    GUARD_OUT(kms_each_request_attr(c, payload, kms_take_attr, o, err));
    GUARD_OUT(buf_write_bytes(&o->material, key, key_len));
    if (type == KMIP_OBJ_SYMMETRIC_KEY) {
        /* The Key Block's algorithm and length count as attributes. */
        uint32_t alg;
        int32_t bits;
        if (is_ok(ttlv_get_enum(ttlv_find(block, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM), &alg)) &&
            !is_ok(kms_object_get_enum(o, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &alg)))
            GUARD_OUT(kms_object_set_enum(o, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg));
        if (is_ok(ttlv_get_integer(ttlv_find(block, KMIP_TAG_CRYPTOGRAPHIC_LENGTH), &bits)) &&
            !is_ok(kms_object_get_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &bits)))
            GUARD_OUT(kms_object_set_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits));
        GUARD_OUT(kms_check_aes(c, o, key_len, err));
    } else {
        uint32_t sdt;
        if (!is_ok(ttlv_get_enum(ttlv_find(obj, KMIP_TAG_SECRET_DATA_TYPE), &sdt))) {
            rc = kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Secret Data Type is required");
            goto out;
        }
        GUARD_OUT(kms_object_set_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, (int32_t)key_len * 8));
        GUARD_OUT(kms_set_secret_data_type(o, sdt));
    }
    GUARD_OUT(kms_init_object(c, o));
    GUARD_OUT(kms_finish_new(c, o, false, out, err));
out:
    return kms_finish(err, rc, &o);
}

/* --- Get (1.4 §4.11, 2.1 §6.1.24) --- */

static vs_result op_get(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                        struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    uint32_t format, state, alg = 0;
    int32_t bits = 0;
    size_t obj_m, block_m, value_m, mat_m;

    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(kms_object_get_enum(o, KMIP_TAG_STATE, &state));
    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED ||
        buf_len(&o->material) == 0) {
        rc = kms_refuse(err,
                        kmip_version_is_2(c->version) ? KMIP_REASON_OBJECT_DESTROYED
                                                      : KMIP_REASON_ITEM_NOT_FOUND,
                        "object %s is destroyed: its key material is gone", o->uid);
        goto out;
    }
    if (ttlv_find(payload, KMIP_TAG_KEY_WRAPPING_SPECIFICATION) != NULL) {
        rc = kms_refuse(err, KMIP_REASON_FEATURE_NOT_SUPPORTED, "key wrapping is not supported");
        goto out;
    }
    format = o->object_type == KMIP_OBJ_SECRET_DATA ? KMIP_KEY_FORMAT_OPAQUE : KMIP_KEY_FORMAT_RAW;
    const struct ttlv *f = ttlv_find(payload, KMIP_TAG_KEY_FORMAT_TYPE);
    if (f != NULL && !is_ok(ttlv_get_enum(f, &format))) {
        rc = kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad Key Format Type");
        goto out;
    }
    bool transparent = format == KMIP_KEY_FORMAT_TRANSPARENT_SYMMETRIC_KEY &&
                       o->object_type == KMIP_OBJ_SYMMETRIC_KEY;
    if (!(format == KMIP_KEY_FORMAT_RAW || transparent ||
          (format == KMIP_KEY_FORMAT_OPAQUE && o->object_type == KMIP_OBJ_SECRET_DATA))) {
        rc = kms_refuse(err, KMIP_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED,
                        "key format not supported for this object");
        goto out;
    }

    GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_OBJECT_TYPE, o->object_type));
    GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid, strlen(o->uid)));
    GUARD_OUT(ttlv_enc_begin(
        out, o->object_type == KMIP_OBJ_SECRET_DATA ? KMIP_TAG_SECRET_DATA : KMIP_TAG_SYMMETRIC_KEY,
        &obj_m));
    if (o->object_type == KMIP_OBJ_SECRET_DATA) {
        const struct kms_attr_value *sv = kms_object_find(o, KMS_ATTR_SECRET_DATA_TYPE, 0);
        uint32_t sdt = 1; /* Password, if it was never recorded */
        if (sv != NULL && !is_ok(ttlv_get_enum(ttlv_doc_root(sv->doc), &sdt)))
            sdt = 1;
        GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_SECRET_DATA_TYPE, sdt));
    }
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_KEY_BLOCK, &block_m));
    GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_KEY_FORMAT_TYPE, format));
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_KEY_VALUE, &value_m));
    if (transparent) {
        GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_KEY_MATERIAL, &mat_m));
        GUARD_OUT(ttlv_enc_bytes(out, KMIP_TAG_KEY, buf_data(&o->material), buf_len(&o->material)));
        GUARD_OUT(ttlv_enc_end(out, mat_m));
    } else {
        GUARD_OUT(ttlv_enc_bytes(out, KMIP_TAG_KEY_MATERIAL, buf_data(&o->material),
                                 buf_len(&o->material)));
    }
    GUARD_OUT(ttlv_enc_end(out, value_m));
    if (is_ok(kms_object_get_enum(o, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &alg)))
        GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, alg));
    if (is_ok(kms_object_get_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &bits)))
        GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, bits));
    GUARD_OUT(ttlv_enc_end(out, block_m));
    GUARD_OUT(ttlv_enc_end(out, obj_m));
out:
    return kms_finish(err, rc, &o);
}

/* --- Get Attributes (1.4 §4.12, 2.1 §6.1.25), Get Attribute List --- */

/* Encodes one instance for the response; 2.x vendor attributes that 1.x
 * cannot name are left out of 1.x responses. */
static vs_result kms_put_attr(struct kms_ctx *c, struct buf *out, const struct kms_attr_value *v)
{
    struct kmip_attr a;
    kms_attr_view(v, &a);
    vs_result rc = kmip_attr_encode(out, c->version, &a);
    return rc.code == ERR_UNSUPPORTED ? OK_RESULT : rc;
}

/* The end of every operation that changes an object: store it, answer
 * with its Unique Identifier and, in 1.x, echo the attribute named (with
 * the index it has now) when there is one. */
static vs_result kms_commit(struct kms_ctx *c, struct kms_object *o, const char *echo,
                            int32_t index, struct buf *out, struct kms_op_error *err)
{
    GUARD(kms_save(c, o, err));
    GUARD(ttlv_enc_text(out, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid, strlen(o->uid)));
    if (echo != NULL && !kmip_version_is_2(c->version)) {
        const struct kms_attr_value *v = kms_object_find(o, echo, index);
        if (v != NULL)
            GUARD(kms_put_attr(c, out, v));
    }
    return OK_RESULT;
}

static vs_result op_get_attributes(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                                   struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    bool v2 = kmip_version_is_2(c->version);
    uint32_t want_tag = v2 ? KMIP_TAG_ATTRIBUTE_REFERENCE : KMIP_TAG_ATTRIBUTE_NAME;
    size_t m = 0;

    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid, strlen(o->uid)));
    if (v2)
        GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_ATTRIBUTES, &m));
    if (ttlv_find(payload, want_tag) == NULL) {
        for (size_t i = 0; i < o->attr_count; i++)
            GUARD_OUT(kms_put_attr(c, out, &o->attrs[i]));
    } else {
        for (const struct ttlv *ref = ttlv_find(payload, want_tag); ref != NULL;
             ref = ttlv_find_next(ref)) {
            struct kmip_attr a;
            const char *name;
            size_t n;
            memset(&a, 0, sizeof(a));
            if (v2)
                rc = kmip_attr_from_reference(ref, &a);
            else if (is_ok(rc = ttlv_get_text(ref, &name, &n)))
                rc = kmip_attr_set_name(&a, name, n);
            /* Names the server does not know, and attributes the object
             * lacks, are simply not returned (1.4 §4.12): vCenter relies on
             * this to ask whether its x- attributes exist yet. */
            if (!is_ok(rc)) {
                rc = OK_RESULT;
                continue;
            }
            for (size_t i = 0; i < o->attr_count; i++)
                if (strcmp(o->attrs[i].name, a.name) == 0)
                    GUARD_OUT(kms_put_attr(c, out, &o->attrs[i]));
        }
    }
    if (v2)
        GUARD_OUT(ttlv_enc_end(out, m));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_get_attribute_list(struct kms_ctx *c, const struct ttlv *payload,
                                       struct buf *out, struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;

    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_UNIQUE_IDENTIFIER, o->uid, strlen(o->uid)));
    for (size_t i = 0; i < o->attr_count; i++) {
        /* One entry per attribute, not per instance. */
        if (i > 0 && strcmp(o->attrs[i].name, o->attrs[i - 1].name) == 0)
            continue;
        rc = kmip_attr_encode_reference(out, c->version, o->attrs[i].name, o->attrs[i].tag);
        if (rc.code == ERR_UNSUPPORTED)
            rc = OK_RESULT;
        GUARD_OUT(rc);
    }
out:
    return kms_finish(err, rc, &o);
}

/* --- Add, Modify, Delete, Set Attribute (1.4 §4.13-4.15, 2.1 §6.1.3...) --- */

/* The single attribute a request carries: 1.x Attribute, 2.x New Attribute. */
static vs_result kms_request_attr(struct kms_ctx *c, const struct ttlv *payload,
                                  struct kmip_attr *a, struct kms_op_error *err)
{
    const struct ttlv *it;

    if (kmip_version_is_2(c->version)) {
        const struct ttlv *na = ttlv_find(payload, KMIP_TAG_NEW_ATTRIBUTE);
        it = na != NULL ? na->v.children.first : NULL;
        if (na == NULL || na->type != TTLV_STRUCTURE || it == NULL)
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "New Attribute is required");
    } else {
        it = ttlv_find(payload, KMIP_TAG_ATTRIBUTE);
        if (it == NULL)
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Attribute is required");
    }
    return kms_parse_attr(c, it, a, err);
}

static vs_result kms_check_changeable(struct kms_ctx *c, const struct kmip_attr *a,
                                      struct kms_op_error *err)
{
    if (!kms_client_settable(a) || kms_fixed_after_create(a->tag))
        return kms_refuse(err, kms_reason_read_only(c), "\"%s\" cannot be changed by a client",
                          a->name);
    return OK_RESULT;
}

static vs_result op_add_attribute(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                                  struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    struct kmip_attr a;
    int32_t index = 0;

    GUARD(kms_request_attr(c, payload, &a, err));
    GUARD(kms_check_changeable(c, &a, err));
    GUARD(kms_load(c, payload, &o, err));
    rc = kms_object_add(o, &a, &index);
    if (rc.code == ERR_EXISTS) {
        rc = kms_refuse(err,
                        kmip_version_is_2(c->version) ? KMIP_REASON_ATTRIBUTE_SINGLE_VALUED
                                                      : KMIP_REASON_INVALID_FIELD,
                        "\"%s\" already has its single value", a.name);
        goto out;
    }
    if (rc.code == ERR_TOO_LARGE) {
        rc = kms_refuse(err, KMIP_REASON_INVALID_FIELD, "too many or too large attributes");
        goto out;
    }
    GUARD_OUT(rc);
    /* 1.x echoes the attribute with the index it got. */
    GUARD_OUT(kms_commit(c, o, a.name, index, out, err));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_modify_attribute(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                                     struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    struct kmip_attr a;
    int32_t index;

    GUARD(kms_request_attr(c, payload, &a, err));
    GUARD(kms_check_changeable(c, &a, err));
    index = a.index;
    GUARD(kms_load(c, payload, &o, err));
    if (kmip_version_is_2(c->version)) {
        /* 2.x: Current Attribute names the instance by its value. */
        const struct ttlv *ca = ttlv_find(payload, KMIP_TAG_CURRENT_ATTRIBUTE);
        index = 0;
        if (ca != NULL && ca->type == TTLV_STRUCTURE && ca->v.children.first != NULL) {
            struct kmip_attr cur;
            struct buf want;
            GUARD_OUT(kms_parse_attr(c, ca->v.children.first, &cur, err));
            GUARD_OUT(buf_alloc(&want, 0, KMS_MAX_ATTRIBUTE_VALUE));
            rc = ttlv_enc_item_as(&want, KMIP_TAG_ATTRIBUTE_VALUE, cur.value);
            index = -1;
            for (size_t i = 0; is_ok(rc) && i < o->attr_count; i++)
                if (strcmp(o->attrs[i].name, a.name) == 0 &&
                    o->attrs[i].item_len == buf_len(&want) &&
                    memcmp(o->attrs[i].item, buf_data(&want), buf_len(&want)) == 0)
                    index = o->attrs[i].index;
            buf_free(&want);
            GUARD_OUT(rc);
        }
    }
    rc = kms_object_modify(o, a.name, index, a.value);
    if (rc.code == ERR_NOT_FOUND) {
        rc = kms_refuse(err,
                        kmip_version_is_2(c->version) ? KMIP_REASON_ATTRIBUTE_NOT_FOUND
                                                      : KMIP_REASON_INVALID_FIELD,
                        "the object has no such \"%s\"", a.name);
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(kms_commit(c, o, a.name, index, out, err));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_set_attribute(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                                  struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    struct kmip_attr a;
    const struct kmip_attr_spec *spec;

    GUARD(kms_request_attr(c, payload, &a, err));
    GUARD(kms_check_changeable(c, &a, err));
    spec = a.tag ? kmip_attr_spec(a.tag) : NULL;
    if (spec != NULL && spec->multi)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                          "Set Attribute is for single-valued attributes; \"%s\" is multi-valued",
                          a.name);
    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(kms_object_set(o, &a));
    GUARD_OUT(kms_commit(c, o, NULL, 0, out, err));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_delete_attribute(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                                     struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    struct kmip_attr a;
    int32_t index = 0;

    memset(&a, 0, sizeof(a));
    if (kmip_version_is_2(c->version)) {
        const struct ttlv *ref = ttlv_find(payload, KMIP_TAG_ATTRIBUTE_REFERENCE);
        const struct ttlv *ca = ttlv_find(payload, KMIP_TAG_CURRENT_ATTRIBUTE);
        if (ref != NULL)
            rc = kmip_attr_from_reference(ref, &a);
        else if (ca != NULL && ca->type == TTLV_STRUCTURE && ca->v.children.first != NULL)
            rc = kmip_attr_from_2x(ca->v.children.first, &a);
        else
            return kms_refuse(err, KMIP_REASON_INVALID_FIELD,
                              "Attribute Reference or Current Attribute is required");
    } else {
        const char *name;
        size_t n;
        rc = ttlv_get_text(ttlv_find(payload, KMIP_TAG_ATTRIBUTE_NAME), &name, &n);
        if (is_ok(rc))
            rc = kmip_attr_set_name(&a, name, n);
        const struct ttlv *idx = ttlv_find(payload, KMIP_TAG_ATTRIBUTE_INDEX);
        if (is_ok(rc) && idx != NULL)
            rc = ttlv_get_integer(idx, &index);
    }
    if (!is_ok(rc))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad attribute to delete");
    GUARD(kms_check_changeable(c, &a, err));
    GUARD(kms_load(c, payload, &o, err));
    rc = kms_object_delete(o, a.name, index);
    if (rc.code == ERR_NOT_FOUND) {
        rc = kms_refuse(err,
                        kmip_version_is_2(c->version) ? KMIP_REASON_ATTRIBUTE_NOT_FOUND
                                                      : KMIP_REASON_INVALID_FIELD,
                        "the object has no such \"%s\"", a.name);
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(kms_commit(c, o, NULL, 0, out, err));
out:
    return kms_finish(err, rc, &o);
}

/* --- the key life cycle: Activate, Revoke, Destroy (1.4 §4.19-4.21) --- */

static vs_result op_activate(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                             struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    uint32_t state;

    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(kms_object_get_enum(o, KMIP_TAG_STATE, &state));
    if (state != KMIP_STATE_PRE_ACTIVE) {
        rc = kms_refuse(err, kms_reason_wrong_state(c),
                        "only a Pre-Active object can be activated; %s is %s", o->uid,
                        kmip_state_name(state));
        goto out;
    }
    GUARD_OUT(kms_object_set_enum(o, KMIP_TAG_STATE, KMIP_STATE_ACTIVE));
    GUARD_OUT(kms_object_set_date(o, KMIP_TAG_ACTIVATION_DATE, c->now));
    GUARD_OUT(kms_commit(c, o, NULL, 0, out, err));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_revoke(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                           struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    const struct ttlv *reason = ttlv_find(payload, KMIP_TAG_REVOCATION_REASON);
    uint32_t code, state;
    struct kmip_attr a;

    if (!is_ok(ttlv_get_struct(reason)) ||
        !is_ok(ttlv_get_enum(ttlv_find(reason, KMIP_TAG_REVOCATION_REASON_CODE), &code)))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Revocation Reason is required");
    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(kms_object_get_enum(o, KMIP_TAG_STATE, &state));
    bool compromise =
        code == KMIP_REVOCATION_KEY_COMPROMISE || code == KMIP_REVOCATION_CA_COMPROMISE;
    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED ||
        (state == KMIP_STATE_COMPROMISED) || (!compromise && state == KMIP_STATE_DEACTIVATED)) {
        rc = kms_refuse(err, kms_reason_wrong_state(c), "%s is %s: nothing to revoke", o->uid,
                        kmip_state_name(state));
        goto out;
    }
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "Revocation Reason");
    a.tag = KMIP_TAG_REVOCATION_REASON;
    a.value = reason;
    GUARD_OUT(kms_object_set(o, &a));
    if (compromise) {
        /* §3.20: Compromise Occurrence Date is the client's word; the
         * Compromise Date is when the server was told. */
        int64_t occurred = c->now;
        const struct ttlv *f = ttlv_find(payload, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE);
        if (f != NULL && !is_ok(ttlv_get_date_time(f, &occurred))) {
            rc = kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad Compromise Occurrence Date");
            goto out;
        }
        GUARD_OUT(kms_object_set_date(o, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, occurred));
        GUARD_OUT(kms_object_set_date(o, KMIP_TAG_COMPROMISE_DATE, c->now));
        GUARD_OUT(kms_object_set_enum(o, KMIP_TAG_STATE, KMIP_STATE_COMPROMISED));
    } else {
        GUARD_OUT(kms_object_set_date(o, KMIP_TAG_DEACTIVATION_DATE, c->now));
        GUARD_OUT(kms_object_set_enum(o, KMIP_TAG_STATE, KMIP_STATE_DEACTIVATED));
    }
    GUARD_OUT(kms_commit(c, o, NULL, 0, out, err));
out:
    return kms_finish(err, rc, &o);
}

static vs_result op_destroy(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                            struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *o = NULL;
    uint32_t state;

    GUARD(kms_load(c, payload, &o, err));
    GUARD_OUT(kms_object_get_enum(o, KMIP_TAG_STATE, &state));
    /* 1.4 §4.21: an Active object must be revoked before it is destroyed. */
    if (state == KMIP_STATE_ACTIVE) {
        rc = kms_refuse(err, kms_reason_wrong_state(c),
                        "%s is Active: revoke it before destroying it", o->uid);
        goto out;
    }
    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED) {
        rc = kms_refuse(err,
                        kmip_version_is_2(c->version) ? KMIP_REASON_OBJECT_DESTROYED
                                                      : KMIP_REASON_ITEM_NOT_FOUND,
                        "%s is already destroyed", o->uid);
        goto out;
    }
    /* The key material goes; the metadata stays (§3.22 Destroy Date). */
    buf_reset(&o->material);
    GUARD_OUT(kms_object_set_enum(o, KMIP_TAG_STATE,
                                  state == KMIP_STATE_COMPROMISED ? KMIP_STATE_DESTROYED_COMPROMISED
                                                                  : KMIP_STATE_DESTROYED));
    GUARD_OUT(kms_object_set_date(o, KMIP_TAG_DESTROY_DATE, c->now));
    GUARD_OUT(kms_commit(c, o, NULL, 0, out, err));
out:
    return kms_finish(err, rc, &o);
}

/* --- Locate (1.4 §4.9, 2.1 §6.1.27) --- */

struct kms_locate_acc {
    struct buf items; /* encoded Unique Identifier items */
    uint32_t count;
};

static vs_result kms_locate_collect(void *ctx, const char *uid)
{
    struct kms_locate_acc *acc = ctx;
    acc->count++;
    return ttlv_enc_text(&acc->items, KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid));
}

struct kms_locate_filters {
    struct kms_store_filter f[KMS_STORE_MAX_FILTERS];
    struct buf items[KMS_STORE_MAX_FILTERS];
    size_t n;
};

static vs_result kms_locate_take(struct kms_ctx *c, const struct kmip_attr *a, void *arg,
                                 struct kms_op_error *err)
{
    struct kms_locate_filters *lf = arg;
    (void)c;

    if (lf->n == KMS_STORE_MAX_FILTERS)
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "too many Locate criteria");
    struct buf *b = &lf->items[lf->n];
    GUARD(buf_alloc(b, 0, KMS_MAX_ATTRIBUTE_VALUE));
    vs_result rc = ttlv_enc_item_as(b, KMIP_TAG_ATTRIBUTE_VALUE, a->value);
    if (!is_ok(rc)) {
        buf_free(b);
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Locate value too large");
    }
    /* The filter's name must outlive this call: keep a copy beside it. */
    char *name = strdup(a->name);
    if (name == NULL) {
        buf_free(b);
        BAIL(ERR_NOMEM);
    }
    lf->f[lf->n] = (struct kms_store_filter){name, buf_data(b), buf_len(b)};
    lf->n++;
    return OK_RESULT;
}

static vs_result op_locate(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                           struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_locate_filters lf;
    struct kms_locate_acc acc = {.count = 0};
    int32_t max = 0, offset = 0;
    const struct ttlv *f;

    memset(&lf, 0, sizeof(lf));
    f = ttlv_find(payload, KMIP_TAG_MAXIMUM_ITEMS);
    if (f != NULL && (!is_ok(ttlv_get_integer(f, &max)) || max < 0))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad Maximum Items");
    f = ttlv_find(payload, KMIP_TAG_OFFSET_ITEMS);
    if (f != NULL && (!is_ok(ttlv_get_integer(f, &offset)) || offset < 0))
        return kms_refuse(err, KMIP_REASON_INVALID_FIELD, "bad Offset Items");
    GUARD(buf_alloc(&acc.items, 0, 1 << 20));
    GUARD_OUT(kms_each_request_attr(c, payload, kms_locate_take, &lf, err));
    rc = kms_store_locate(c->reader, c->who->admin ? NULL : c->who->owners,
                          c->who->admin ? 0 : c->who->owner_count, lf.f, lf.n, (uint32_t)offset,
                          (uint32_t)max, kms_locate_collect, &acc);
    if (rc.code == ERR_BUF_LIMIT) {
        rc = kms_refuse(err, KMIP_REASON_RESPONSE_TOO_LARGE,
                        "too many objects match: use Maximum Items and Offset Items");
        goto out;
    }
    GUARD_OUT(rc);
    /* Located Items exists from KMIP 1.3 on. */
    if (c->version.major > 1 || c->version.minor >= 3)
        GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_LOCATED_ITEMS, (int32_t)acc.count));
    GUARD_OUT(buf_write_bytes(out, buf_data(&acc.items), buf_len(&acc.items)));
out:
    rc = kms_finish(err, rc, NULL);
    for (size_t i = 0; i < lf.n; i++) {
        free((char *)(uintptr_t)lf.f[i].name);
        buf_free(&lf.items[i]);
    }
    buf_free(&acc.items);
    return rc;
}

/* --- Re-key (1.4 §4.4, 2.1 §6.1.40) --- */

static vs_result op_rekey(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                          struct kms_op_error *err)
{
    vs_result rc = OK_RESULT;
    struct kms_object *old = NULL, *nu = NULL;
    char uid[KMS_UID_MAX];
    struct kmip_attr link;
    uint8_t *key;
    uint32_t alg, state;
    int32_t bits;

    GUARD(kms_load(c, payload, &old, err));
    if (old->object_type != KMIP_OBJ_SYMMETRIC_KEY) {
        rc = kms_refuse(err, KMIP_REASON_INVALID_FIELD, "Re-key is for symmetric keys");
        goto out;
    }
    GUARD_OUT(kms_object_get_enum(old, KMIP_TAG_STATE, &state));
    if (state == KMIP_STATE_DESTROYED || state == KMIP_STATE_DESTROYED_COMPROMISED) {
        rc = kms_refuse(err, kms_reason_wrong_state(c), "%s is destroyed", old->uid);
        goto out;
    }
    GUARD_OUT(kms_object_get_enum(old, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, &alg));
    GUARD_OUT(kms_object_get_int(old, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, &bits));
    GUARD_OUT(kms_new_uid(uid));
    GUARD_OUT(kms_object_new(uid, old->owner, KMIP_OBJ_SYMMETRIC_KEY, &nu));
    /* The replacement keeps the client's attributes, not the server's. */
    for (size_t i = 0; i < old->attr_count; i++) {
        struct kmip_attr a;
        kms_attr_view(&old->attrs[i], &a);
        if (kms_client_settable(&a) && a.tag != KMIP_TAG_LINK &&
            a.tag != KMIP_TAG_ACTIVATION_DATE && a.tag != KMIP_TAG_DEACTIVATION_DATE)
            GUARD_OUT(kms_object_add(nu, &a, NULL));
    }
    GUARD_OUT(buf_reserve(&nu->material, (size_t)bits / 8, &key));
    GUARD_OUT(crypto_random_key(key, (size_t)bits / 8));
    GUARD_OUT(kms_init_object(c, nu));

    /* Links both ways (§3.35): Replaced Object on the new key, Replacement
     * Object on the old one. */
    uint8_t mem[256];
    struct buf lb;
    struct ttlv_doc *doc = NULL;
    size_t m;
    memset(&link, 0, sizeof(link));
    snprintf(link.name, sizeof(link.name), "Link");
    link.tag = KMIP_TAG_LINK;
    buf_wrap(&lb, mem, sizeof(mem));
    GUARD_OUT(ttlv_enc_begin(&lb, KMIP_TAG_LINK, &m));
    GUARD_OUT(ttlv_enc_enum(&lb, KMIP_TAG_LINK_TYPE, KMIP_LINK_REPLACED_OBJECT));
    GUARD_OUT(ttlv_enc_text(&lb, KMIP_TAG_LINKED_OBJECT_IDENTIFIER, old->uid, strlen(old->uid)));
    GUARD_OUT(ttlv_enc_end(&lb, m));
    GUARD_OUT(ttlv_decode(buf_data(&lb), buf_len(&lb), NULL, &doc));
    link.value = ttlv_doc_root(doc);
    rc = kms_object_add(nu, &link, NULL);
    ttlv_doc_free(&doc);
    GUARD_OUT(rc);
    GUARD_OUT(kms_finish_new(c, nu, false, out, err));

    buf_wrap(&lb, mem, sizeof(mem));
    GUARD_OUT(ttlv_enc_begin(&lb, KMIP_TAG_LINK, &m));
    GUARD_OUT(ttlv_enc_enum(&lb, KMIP_TAG_LINK_TYPE, KMIP_LINK_REPLACEMENT_OBJECT));
    GUARD_OUT(ttlv_enc_text(&lb, KMIP_TAG_LINKED_OBJECT_IDENTIFIER, nu->uid, strlen(nu->uid)));
    GUARD_OUT(ttlv_enc_end(&lb, m));
    GUARD_OUT(ttlv_decode(buf_data(&lb), buf_len(&lb), NULL, &doc));
    link.value = ttlv_doc_root(doc);
    rc = kms_object_add(old, &link, NULL);
    ttlv_doc_free(&doc);
    GUARD_OUT(rc);
    /* The old key's link is best effort against a concurrent change: the
     * new key already exists and points back. */
    rc = kms_save(c, old, err);
    if (rc.code == ERR_CONFLICT)
        rc = OK_RESULT;
    GUARD_OUT(rc);
out:
    kms_object_free(&old);
    return kms_finish(err, rc, &nu);
}

/* --- the table --- */

/* retry: a read-modify-write of one object, run again if the object
 * changed underneath it (optimistic concurrency, kms_store_update). */
static const struct kms_op kms_ops[] = {
    {KMIP_OP_DISCOVER_VERSIONS, op_discover_versions, false},
    {KMIP_OP_QUERY, op_query, false},
    {KMIP_OP_CREATE, op_create, false},
    {KMIP_OP_REGISTER, op_register, false},
    {KMIP_OP_GET, op_get, false},
    {KMIP_OP_GET_ATTRIBUTES, op_get_attributes, false},
    {KMIP_OP_GET_ATTRIBUTE_LIST, op_get_attribute_list, false},
    {KMIP_OP_ADD_ATTRIBUTE, op_add_attribute, true},
    {KMIP_OP_MODIFY_ATTRIBUTE, op_modify_attribute, true},
    {KMIP_OP_SET_ATTRIBUTE, op_set_attribute, true},
    {KMIP_OP_DELETE_ATTRIBUTE, op_delete_attribute, true},
    {KMIP_OP_LOCATE, op_locate, false},
    {KMIP_OP_ACTIVATE, op_activate, true},
    {KMIP_OP_REVOKE, op_revoke, true},
    {KMIP_OP_DESTROY, op_destroy, true},
    {KMIP_OP_RE_KEY, op_rekey, false},
};

vs_result kms_op_run(const struct kms_op *op, struct kms_ctx *c, const struct ttlv *payload,
                     struct buf *out, struct kms_op_error *err)
{
    return op->retry ? kms_retry(op->fn, c, payload, out, err) : op->fn(c, payload, out, err);
}

const struct kms_op *kms_op_find(uint32_t operation)
{
    for (size_t i = 0; i < sizeof(kms_ops) / sizeof(kms_ops[0]); i++)
        if (kms_ops[i].operation == operation)
            return &kms_ops[i];
    return NULL;
}

size_t kms_op_count(void)
{
    return sizeof(kms_ops) / sizeof(kms_ops[0]);
}

uint32_t kms_op_at(size_t i)
{
    return kms_ops[i].operation;
}
