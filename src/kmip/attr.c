/*
 * attr.c - KMIP attributes in 1.x and 2.x form. See attr.h.
 */
#include "kmip/attr.h"

#include <stdio.h>
#include <string.h>

#include "kmip/kmip_defs.h"

/* The standard attributes vmseal knows, with their types (KMIP 1.4 §3,
 * 2.1 §4) and whether they may have several instances. */
static const struct kmip_attr_spec kmip_attr_specs[] = {
    {KMIP_TAG_UNIQUE_IDENTIFIER, TTLV_TEXT_STRING, false},
    {KMIP_TAG_NAME, TTLV_STRUCTURE, true},
    {KMIP_TAG_OBJECT_TYPE, TTLV_ENUMERATION, false},
    {KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, TTLV_ENUMERATION, false},
    {KMIP_TAG_CRYPTOGRAPHIC_LENGTH, TTLV_INTEGER, false},
    {KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS, TTLV_STRUCTURE, true},
    {KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, TTLV_INTEGER, false},
    {KMIP_TAG_STATE, TTLV_ENUMERATION, false},
    {KMIP_TAG_INITIAL_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_ACTIVATION_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_PROCESS_START_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_PROTECT_STOP_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_DEACTIVATION_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_DESTROY_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_COMPROMISE_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_REVOCATION_REASON, TTLV_STRUCTURE, false},
    {KMIP_TAG_ARCHIVE_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_OBJECT_GROUP, TTLV_TEXT_STRING, true},
    {KMIP_TAG_FRESH, TTLV_BOOLEAN, false},
    {KMIP_TAG_LINK, TTLV_STRUCTURE, true},
    {KMIP_TAG_APPLICATION_SPECIFIC_INFORMATION, TTLV_STRUCTURE, true},
    {KMIP_TAG_CONTACT_INFORMATION, TTLV_TEXT_STRING, false},
    {KMIP_TAG_LAST_CHANGE_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_ORIGINAL_CREATION_DATE, TTLV_DATE_TIME, false},
    {KMIP_TAG_DESCRIPTION, TTLV_TEXT_STRING, false},
    {KMIP_TAG_COMMENT, TTLV_TEXT_STRING, false},
    {KMIP_TAG_SENSITIVE, TTLV_BOOLEAN, false},
    {KMIP_TAG_ALWAYS_SENSITIVE, TTLV_BOOLEAN, false},
    {KMIP_TAG_EXTRACTABLE, TTLV_BOOLEAN, false},
    {KMIP_TAG_NEVER_EXTRACTABLE, TTLV_BOOLEAN, false},
    {KMIP_TAG_LEASE_TIME, TTLV_INTERVAL, false},
    {KMIP_TAG_KEY_VALUE_PRESENT, TTLV_BOOLEAN, false},
};

const struct kmip_attr_spec *kmip_attr_spec(uint32_t tag)
{
    for (size_t i = 0; i < sizeof(kmip_attr_specs) / sizeof(kmip_attr_specs[0]); i++)
        if (kmip_attr_specs[i].tag == tag)
            return &kmip_attr_specs[i];
    return NULL;
}

/* 2.1 §4.60: Vendor Identification is [A-Za-z0-9_.]+ */
static bool kmip_vendor_id_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

bool kmip_attr_is_xy(const char *name)
{
    return (name[0] == 'x' || name[0] == 'y') && name[1] == '-';
}

bool kmip_attr_is_other_vendor(const char *name)
{
    return !kmip_attr_is_xy(name) && strchr(name, ':') != NULL;
}

bool kmip_attr_is_custom(const char *name)
{
    const char *colon = strchr(name, ':');

    if (kmip_attr_is_xy(name) && name[2] != '\0')
        return true;
    return colon != NULL && colon[1] != '\0' && kmip_vendor_id_valid(name, (size_t)(colon - name));
}

static vs_result kmip_attr_fail(const char *what, const char *name, size_t len)
{
    RAISE(ERR_KMIP_ATTRIBUTE);
    return err_detail("%s: \"%.*s\"", what, (int)(len > 80 ? 80 : len), name);
}

vs_result kmip_attr_set_name(struct kmip_attr *a, const char *name, size_t len)
{
    uint32_t tag;

    if (len == 0 || len > KMIP_ATTR_NAME_MAX || memchr(name, '\0', len) != NULL)
        return kmip_attr_fail("bad attribute name", name, len);
    memcpy(a->name, name, len);
    a->name[len] = '\0';
    a->tag = 0;
    if (kmip_attr_is_custom(a->name))
        return OK_RESULT;
    if (kmip_tag_by_name_n(name, len, &tag) && kmip_attr_spec(tag) != NULL) {
        a->tag = tag;
        return OK_RESULT;
    }
    return kmip_attr_fail("unknown attribute", name, len);
}

/* The name of a standard attribute by tag. */
static vs_result kmip_attr_set_tag(struct kmip_attr *a, uint32_t tag)
{
    const char *name = kmip_tag_name(tag);

    if (name == NULL || kmip_attr_spec(tag) == NULL) {
        RAISE(ERR_KMIP_ATTRIBUTE);
        return err_detail("tag 0x%06x is not an attribute this server knows", (unsigned)tag);
    }
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->tag = tag;
    return OK_RESULT;
}

/* Standard attributes must carry the type the spec gives them. */
static vs_result kmip_attr_check_value(const struct kmip_attr *a)
{
    const struct kmip_attr_spec *spec;

    if (a->value == NULL) {
        RAISE(ERR_KMIP_ATTRIBUTE);
        return err_detail("attribute \"%s\" has no value", a->name);
    }
    if (a->tag == 0)
        return OK_RESULT; /* custom attributes may be of any type */
    spec = kmip_attr_spec(a->tag);
    if (spec->type != a->value->type) {
        RAISE(ERR_KMIP_ATTRIBUTE);
        return err_detail("attribute \"%s\" has the wrong type", a->name);
    }
    return OK_RESULT;
}

vs_result kmip_attr_from_1x(const struct ttlv *attribute, struct kmip_attr *a)
{
    const char *name;
    size_t len;
    const struct ttlv *idx;

    memset(a, 0, sizeof(*a));
    GUARD(ttlv_get_struct(attribute));
    GUARD(ttlv_get_text(ttlv_find(attribute, KMIP_TAG_ATTRIBUTE_NAME), &name, &len));
    GUARD(kmip_attr_set_name(a, name, len));
    idx = ttlv_find(attribute, KMIP_TAG_ATTRIBUTE_INDEX);
    if (idx != NULL) {
        GUARD(ttlv_get_integer(idx, &a->index));
        ENSURE(a->index >= 0, ERR_KMIP_ATTRIBUTE);
    }
    a->value = ttlv_find(attribute, KMIP_TAG_ATTRIBUTE_VALUE);
    return kmip_attr_check_value(a);
}

/* Reads Vendor Identification and Attribute Name into a canonical name. */
static vs_result kmip_attr_vendor_name(const struct ttlv *s, struct kmip_attr *a)
{
    const char *vendor, *name;
    size_t vlen, nlen;

    GUARD(ttlv_get_text(ttlv_find(s, KMIP_TAG_VENDOR_IDENTIFICATION), &vendor, &vlen));
    GUARD(ttlv_get_text(ttlv_find(s, KMIP_TAG_ATTRIBUTE_NAME), &name, &nlen));
    if (!kmip_vendor_id_valid(vendor, vlen))
        return kmip_attr_fail("bad Vendor Identification", vendor, vlen);
    if (nlen == 0 || vlen + nlen + 1 > KMIP_ATTR_NAME_MAX)
        return kmip_attr_fail("bad vendor attribute name", name, nlen);
    /* x and y are 1.x's custom attributes (2.1 §4.60). */
    if (vlen == 1 && (vendor[0] == 'x' || vendor[0] == 'y'))
        snprintf(a->name, sizeof(a->name), "%c-%.*s", vendor[0], (int)nlen, name);
    else
        snprintf(a->name, sizeof(a->name), "%.*s:%.*s", (int)vlen, vendor, (int)nlen, name);
    a->tag = 0;
    return OK_RESULT;
}

vs_result kmip_attr_from_2x(const struct ttlv *item, struct kmip_attr *a)
{
    memset(a, 0, sizeof(*a));
    ENSURE(item != NULL, ERR_TTLV_MISSING);
    if (item->tag == KMIP_TAG_ATTRIBUTE) {
        GUARD(ttlv_get_struct(item));
        GUARD(kmip_attr_vendor_name(item, a));
        a->value = ttlv_find(item, KMIP_TAG_ATTRIBUTE_VALUE);
    } else {
        GUARD(kmip_attr_set_tag(a, item->tag));
        a->value = item;
    }
    return kmip_attr_check_value(a);
}

vs_result kmip_attr_from_reference(const struct ttlv *ref, struct kmip_attr *a)
{
    uint32_t tag;

    memset(a, 0, sizeof(*a));
    ENSURE(ref != NULL, ERR_TTLV_MISSING);
    if (ref->type == TTLV_ENUMERATION) {
        GUARD(ttlv_get_enum(ref, &tag));
        return kmip_attr_set_tag(a, tag);
    }
    GUARD(ttlv_get_struct(ref));
    return kmip_attr_vendor_name(ref, a);
}

/* Splits a custom canonical name into vendor and name for 2.x. */
static void kmip_attr_split(const char *name, const char **vendor, size_t *vlen, const char **rest)
{
    const char *colon = strchr(name, ':');

    if (colon != NULL && !kmip_attr_is_xy(name)) {
        *vendor = name;
        *vlen = (size_t)(colon - name);
        *rest = colon + 1;
    } else {
        *vendor = name; /* "x" or "y" */
        *vlen = 1;
        *rest = name + 2;
    }
}

vs_result kmip_attr_encode(struct buf *out, struct kmip_version v, const struct kmip_attr *a)
{
    size_t start = buf_len(out), mark;
    vs_result rc = OK_RESULT;

    ENSURE(a->value != NULL, ERR_NULL_ARG);
    if (kmip_version_is_2(v)) {
        if (a->tag != 0)
            return ttlv_enc_item_as(out, a->tag, a->value);
        const char *vendor, *rest;
        size_t vlen;
        kmip_attr_split(a->name, &vendor, &vlen, &rest);
        GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_ATTRIBUTE, &mark));
        GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_VENDOR_IDENTIFICATION, vendor, vlen));
        GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_ATTRIBUTE_NAME, rest, strlen(rest)));
        GUARD_OUT(ttlv_enc_item_as(out, KMIP_TAG_ATTRIBUTE_VALUE, a->value));
        GUARD_OUT(ttlv_enc_end(out, mark));
    } else {
        if (a->tag == 0 && kmip_attr_is_other_vendor(a->name))
            BAIL(ERR_UNSUPPORTED); /* a 2.x vendor attribute has no 1.x name */
        GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_ATTRIBUTE, &mark));
        GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_ATTRIBUTE_NAME, a->name, strlen(a->name)));
        if (a->index > 0)
            GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_ATTRIBUTE_INDEX, a->index));
        GUARD_OUT(ttlv_enc_item_as(out, KMIP_TAG_ATTRIBUTE_VALUE, a->value));
        GUARD_OUT(ttlv_enc_end(out, mark));
    }
out:
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}

vs_result kmip_attr_encode_reference(struct buf *out, struct kmip_version v, const char *name,
                                     uint32_t tag)
{
    size_t start = buf_len(out), mark;
    vs_result rc = OK_RESULT;

    if (!kmip_version_is_2(v)) {
        if (tag == 0 && !kmip_attr_is_custom(name))
            BAIL(ERR_INVALID_ARG);
        if (tag == 0 && kmip_attr_is_other_vendor(name))
            BAIL(ERR_UNSUPPORTED);
        return ttlv_enc_text(out, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
    }
    if (tag != 0)
        return ttlv_enc_enum(out, KMIP_TAG_ATTRIBUTE_REFERENCE, tag);
    const char *vendor, *rest;
    size_t vlen;
    kmip_attr_split(name, &vendor, &vlen, &rest);
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_ATTRIBUTE_REFERENCE, &mark));
    GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_VENDOR_IDENTIFICATION, vendor, vlen));
    GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_ATTRIBUTE_NAME, rest, strlen(rest)));
    GUARD_OUT(ttlv_enc_end(out, mark));
out:
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}
