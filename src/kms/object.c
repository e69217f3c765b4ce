/*
 * object.c - managed objects in memory. See object.h.
 */
#include "kms/object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "kmip/kmip_defs.h"

vs_result kms_object_new(const char *uid, const char *owner, uint32_t object_type,
                         struct kms_object **out)
{
    struct kms_object *o;

    *out = NULL;
    ENSURE(strlen(uid) > 0 && strlen(uid) < KMS_UID_MAX, ERR_INVALID_ARG);
    ENSURE(strlen(owner) < KMS_OWNER_MAX, ERR_INVALID_ARG);
    o = calloc(1, sizeof(*o));
    ENSURE(o != NULL, ERR_NOMEM);
    snprintf(o->uid, sizeof(o->uid), "%s", uid);
    snprintf(o->owner, sizeof(o->owner), "%s", owner);
    o->object_type = object_type;
    vs_result rc = buf_alloc_secret(&o->material, 0, KMS_MAX_MATERIAL);
    if (!is_ok(rc)) {
        free(o);
        return rc;
    }
    *out = o;
    return OK_RESULT;
}

static void kms_attr_value_clear(struct kms_attr_value *v)
{
    ttlv_doc_free(&v->doc);
    free(v->item);
    v->item = NULL;
}

void kms_object_free(struct kms_object **obj)
{
    if (obj == NULL || *obj == NULL)
        return;
    for (size_t i = 0; i < (*obj)->attr_count; i++)
        kms_attr_value_clear(&(*obj)->attrs[i]);
    free((*obj)->attrs);
    buf_free(&(*obj)->material);
    free(*obj);
    *obj = NULL;
}

void kms_attr_view(const struct kms_attr_value *v, struct kmip_attr *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", v->name);
    out->tag = v->tag;
    out->index = v->index;
    out->value = ttlv_doc_root(v->doc);
}

static int kms_attr_cmp(const char *name_a, int32_t idx_a, const char *name_b, int32_t idx_b)
{
    int c = strcmp(name_a, name_b);
    if (c != 0)
        return c;
    return idx_a < idx_b ? -1 : idx_a > idx_b;
}

const struct kms_attr_value *kms_object_find(const struct kms_object *obj, const char *name,
                                             int32_t index)
{
    for (size_t i = 0; i < obj->attr_count; i++)
        if (kms_attr_cmp(obj->attrs[i].name, obj->attrs[i].index, name, index) == 0)
            return &obj->attrs[i];
    return NULL;
}

size_t kms_object_count(const struct kms_object *obj, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < obj->attr_count; i++)
        n += strcmp(obj->attrs[i].name, name) == 0;
    return n;
}

/* Builds an instance from an encoded item, decoding it for views. */
static vs_result kms_attr_value_make(struct kms_attr_value *v, const char *name, uint32_t tag,
                                     int32_t index, const uint8_t *item, size_t len)
{
    memset(v, 0, sizeof(*v));
    ENSURE(len <= KMS_MAX_ATTRIBUTE_VALUE, ERR_TOO_LARGE);
    ENSURE(strlen(name) <= KMIP_ATTR_NAME_MAX, ERR_TOO_LARGE);
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->tag = tag;
    v->index = index;
    v->item = malloc(len > 0 ? len : 1);
    ENSURE(v->item != NULL, ERR_NOMEM);
    memcpy(v->item, item, len);
    v->item_len = len;
    vs_result rc = ttlv_decode(v->item, len, NULL, &v->doc);
    if (!is_ok(rc))
        kms_attr_value_clear(v);
    return rc;
}

/* Inserts v keeping the list sorted; takes ownership of v's memory. */
static vs_result kms_object_insert(struct kms_object *obj, struct kms_attr_value *v)
{
    size_t pos = 0;

    ENSURE(obj->attr_count < KMS_MAX_ATTRIBUTES, ERR_TOO_LARGE);
    if (obj->attr_count % 16 == 0) {
        struct kms_attr_value *n =
            realloc(obj->attrs, (obj->attr_count + 16) * sizeof(*obj->attrs));
        ENSURE(n != NULL, ERR_NOMEM);
        obj->attrs = n;
    }
    while (pos < obj->attr_count &&
           kms_attr_cmp(obj->attrs[pos].name, obj->attrs[pos].index, v->name, v->index) < 0)
        pos++;
    memmove(&obj->attrs[pos + 1], &obj->attrs[pos], (obj->attr_count - pos) * sizeof(*v));
    obj->attrs[pos] = *v;
    obj->attr_count++;
    return OK_RESULT;
}

/* Encodes a value as an Attribute Value item into a bounded buffer. */
static vs_result kms_encode_value(const struct ttlv *value, struct buf *b)
{
    GUARD(buf_alloc(b, 0, KMS_MAX_ATTRIBUTE_VALUE));
    vs_result rc = ttlv_enc_item_as(b, KMIP_TAG_ATTRIBUTE_VALUE, value);
    if (!is_ok(rc))
        buf_free(b);
    return rc;
}

static vs_result kms_object_add_encoded(struct kms_object *obj, const char *name, uint32_t tag,
                                        int32_t index, const struct buf *item)
{
    struct kms_attr_value v;

    GUARD(kms_attr_value_make(&v, name, tag, index, buf_data(item), buf_len(item)));
    vs_result rc = kms_object_insert(obj, &v);
    if (!is_ok(rc))
        kms_attr_value_clear(&v);
    return rc;
}

vs_result kms_object_add(struct kms_object *obj, const struct kmip_attr *a, int32_t *index)
{
    const struct kmip_attr_spec *spec = a->tag ? kmip_attr_spec(a->tag) : NULL;
    int32_t next = 0;
    struct buf item;
    vs_result rc;

    ENSURE(a->value != NULL, ERR_NULL_ARG);
    if (spec != NULL && !spec->multi && kms_object_count(obj, a->name) > 0) {
        RAISE(ERR_EXISTS);
        return err_detail("\"%s\" has a single value", a->name);
    }
    for (size_t i = 0; i < obj->attr_count; i++)
        if (strcmp(obj->attrs[i].name, a->name) == 0 && obj->attrs[i].index >= next)
            next = obj->attrs[i].index + 1;
    GUARD(kms_encode_value(a->value, &item));
    rc = kms_object_add_encoded(obj, a->name, a->tag, next, &item);
    buf_free(&item);
    if (is_ok(rc) && index != NULL)
        *index = next;
    return rc;
}

vs_result kms_object_modify(struct kms_object *obj, const char *name, int32_t index,
                            const struct ttlv *value)
{
    struct kms_attr_value *v =
        (struct kms_attr_value *)(uintptr_t)kms_object_find(obj, name, index);
    struct kms_attr_value fresh;
    struct buf item;
    vs_result rc;

    ENSURE(v != NULL, ERR_NOT_FOUND);
    GUARD(kms_encode_value(value, &item));
    rc = kms_attr_value_make(&fresh, v->name, v->tag, v->index, buf_data(&item), buf_len(&item));
    buf_free(&item);
    GUARD(rc);
    kms_attr_value_clear(v);
    *v = fresh;
    return OK_RESULT;
}

vs_result kms_object_set(struct kms_object *obj, const struct kmip_attr *a)
{
    if (kms_object_find(obj, a->name, 0) != NULL)
        return kms_object_modify(obj, a->name, 0, a->value);
    return kms_object_add(obj, a, NULL);
}

vs_result kms_object_delete(struct kms_object *obj, const char *name, int32_t index)
{
    for (size_t i = 0; i < obj->attr_count; i++) {
        if (kms_attr_cmp(obj->attrs[i].name, obj->attrs[i].index, name, index) == 0) {
            kms_attr_value_clear(&obj->attrs[i]);
            memmove(&obj->attrs[i], &obj->attrs[i + 1],
                    (obj->attr_count - i - 1) * sizeof(obj->attrs[0]));
            obj->attr_count--;
            return OK_RESULT;
        }
    }
    BAIL(ERR_NOT_FOUND);
}

vs_result kms_object_add_stored(struct kms_object *obj, const char *name, int32_t index,
                                const uint8_t *item, size_t item_len)
{
    struct kmip_attr a;
    struct kms_attr_value v;

    GUARD(kmip_attr_set_name(&a, name, strlen(name)));
    GUARD(kms_attr_value_make(&v, a.name, a.tag, index, item, item_len));
    vs_result rc = kms_object_insert(obj, &v);
    if (!is_ok(rc))
        kms_attr_value_clear(&v);
    return rc;
}

/* --- typed accessors --- */

/* Sets a standard single-valued attribute from an encoder of its value. */
static vs_result kms_object_set_item(struct kms_object *obj, uint32_t tag, const struct buf *item)
{
    struct kmip_attr a;
    struct ttlv_doc *doc = NULL;
    vs_result rc;

    memset(&a, 0, sizeof(a));
    const char *name = kmip_tag_name(tag);
    ENSURE(name != NULL && kmip_attr_spec(tag) != NULL, ERR_INVALID_ARG);
    snprintf(a.name, sizeof(a.name), "%s", name);
    a.tag = tag;
    GUARD(ttlv_decode(buf_data(item), buf_len(item), NULL, &doc));
    a.value = ttlv_doc_root(doc);
    rc = kms_object_set(obj, &a);
    ttlv_doc_free(&doc);
    return rc;
}

#define KMS_SET_TYPED(fn, ctype, encoder)                       \
    vs_result fn(struct kms_object *obj, uint32_t tag, ctype v) \
    {                                                           \
        uint8_t mem[32];                                        \
        struct buf b;                                           \
        buf_wrap(&b, mem, sizeof(mem));                         \
        GUARD(encoder(&b, KMIP_TAG_ATTRIBUTE_VALUE, v));        \
        return kms_object_set_item(obj, tag, &b);               \
    }

KMS_SET_TYPED(kms_object_set_enum, uint32_t, ttlv_enc_enum)
KMS_SET_TYPED(kms_object_set_int, int32_t, ttlv_enc_integer)
KMS_SET_TYPED(kms_object_set_date, int64_t, ttlv_enc_date_time)
KMS_SET_TYPED(kms_object_set_bool, bool, ttlv_enc_bool)

vs_result kms_object_set_text(struct kms_object *obj, uint32_t tag, const char *s)
{
    struct buf b;
    vs_result rc;

    GUARD(buf_alloc(&b, 0, KMS_MAX_ATTRIBUTE_VALUE));
    rc = ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_VALUE, s, strlen(s));
    if (is_ok(rc))
        rc = kms_object_set_item(obj, tag, &b);
    buf_free(&b);
    return rc;
}

static const struct ttlv *kms_object_value(const struct kms_object *obj, uint32_t tag)
{
    const char *name = kmip_tag_name(tag);
    const struct kms_attr_value *v = name ? kms_object_find(obj, name, 0) : NULL;
    return v != NULL ? ttlv_doc_root(v->doc) : NULL;
}

vs_result kms_object_get_enum(const struct kms_object *obj, uint32_t tag, uint32_t *v)
{
    const struct ttlv *it = kms_object_value(obj, tag);
    ENSURE(it != NULL, ERR_NOT_FOUND);
    return ttlv_get_enum(it, v);
}

vs_result kms_object_get_int(const struct kms_object *obj, uint32_t tag, int32_t *v)
{
    const struct ttlv *it = kms_object_value(obj, tag);
    ENSURE(it != NULL, ERR_NOT_FOUND);
    return ttlv_get_integer(it, v);
}

vs_result kms_object_get_date(const struct kms_object *obj, uint32_t tag, int64_t *v)
{
    const struct ttlv *it = kms_object_value(obj, tag);
    ENSURE(it != NULL, ERR_NOT_FOUND);
    return ttlv_get_date_time(it, v);
}

vs_result kms_object_digest(const struct kms_object *obj, uint8_t out[32])
{
    struct buf b;
    vs_result rc = OK_RESULT;

    GUARD(buf_alloc(&b, 0, (size_t)KMS_MAX_ATTRIBUTES * (KMS_MAX_ATTRIBUTE_VALUE + 200)));
    for (size_t i = 0; i < obj->attr_count && is_ok(rc); i++) {
        const struct kms_attr_value *v = &obj->attrs[i];
        /* Length-prefixed fields: no two attribute lists hash alike. */
        rc = buf_write_u32(&b, (uint32_t)strlen(v->name));
        if (is_ok(rc))
            rc = buf_write_bytes(&b, v->name, strlen(v->name));
        if (is_ok(rc))
            rc = buf_write_u32(&b, (uint32_t)v->index);
        if (is_ok(rc))
            rc = buf_write_u32(&b, (uint32_t)v->item_len);
        if (is_ok(rc))
            rc = buf_write_bytes(&b, v->item, v->item_len);
    }
    if (is_ok(rc))
        rc = crypto_sha256(buf_data(&b), buf_len(&b), out);
    buf_free(&b);
    return rc;
}
