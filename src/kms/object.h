/*
 * object.h - a managed object as vmseal-kms holds it in memory: identity,
 * owner, key material (in secret memory) and its attributes.
 *
 * Attributes are kept uniformly as a list of instances (canonical name,
 * index, value), sorted by name then index, each value an encoded TTLV item.
 * Server-managed attributes (State, dates, ...) are read and written through
 * typed accessors over the same list, so Get Attributes, Locate and the
 * attribute operations treat every attribute alike.
 */
#ifndef VMSEAL_KMS_OBJECT_H
#define VMSEAL_KMS_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kmip/attr.h"
#include "kmip/ttlv.h"

#define KMS_UID_MAX 64
#define KMS_OWNER_MAX 256
#define KMS_MAX_ATTRIBUTES 256       /* instances per object */
#define KMS_MAX_ATTRIBUTE_VALUE 4096 /* encoded bytes per instance */
#define KMS_MAX_MATERIAL 8192        /* key material bytes */

struct kms_attr_value {
    char name[KMIP_ATTR_NAME_MAX + 1];
    uint32_t tag; /* standard attribute's tag, 0 for custom */
    int32_t index;
    uint8_t *item; /* TTLV item, tag Attribute Value */
    size_t item_len;
    struct ttlv_doc *doc; /* item decoded, for views */
};

struct kms_object {
    char uid[KMS_UID_MAX];
    char owner[KMS_OWNER_MAX];
    uint32_t object_type;
    int64_t version;     /* bumped by every stored change */
    struct buf material; /* secret; empty once destroyed */
    size_t attr_count;
    struct kms_attr_value *attrs;
};

RESULT kms_object_new(const char *uid, const char *owner, uint32_t object_type,
                      struct kms_object **out) __attribute__((nonnull));
void kms_object_free(struct kms_object **obj);

/* A kmip_attr view of an instance (value borrowed from the object). */
void kms_attr_view(const struct kms_attr_value *v, struct kmip_attr *out) __attribute__((nonnull));

/* The instance of name with this index, or NULL. */
const struct kms_attr_value *kms_object_find(const struct kms_object *obj, const char *name,
                                             int32_t index) __attribute__((nonnull));

/* How many instances of name the object has. */
size_t kms_object_count(const struct kms_object *obj, const char *name) __attribute__((nonnull));

/* Adds an instance with the next free index (0 for the first). For a
 * single-valued standard attribute that is present: ERR_EXISTS. */
RESULT kms_object_add(struct kms_object *obj, const struct kmip_attr *a, int32_t *index)
    __attribute__((nonnull(1, 2)));

/* Replaces the value of instance `index` (ERR_NOT_FOUND if absent). */
RESULT kms_object_modify(struct kms_object *obj, const char *name, int32_t index,
                         const struct ttlv *value) __attribute__((nonnull));

/* Sets a single-valued attribute (index 0), adding or replacing. */
RESULT kms_object_set(struct kms_object *obj, const struct kmip_attr *a) __attribute__((nonnull));

/* Deletes one instance (ERR_NOT_FOUND if absent). */
RESULT kms_object_delete(struct kms_object *obj, const char *name, int32_t index)
    __attribute__((nonnull));

/* Typed accessors for standard single-valued attributes by tag. Getters:
 * ERR_NOT_FOUND if absent. */
RESULT kms_object_set_enum(struct kms_object *obj, uint32_t tag, uint32_t v)
    __attribute__((nonnull));
RESULT kms_object_set_int(struct kms_object *obj, uint32_t tag, int32_t v) __attribute__((nonnull));
RESULT kms_object_set_date(struct kms_object *obj, uint32_t tag, int64_t v)
    __attribute__((nonnull));
RESULT kms_object_set_bool(struct kms_object *obj, uint32_t tag, bool v) __attribute__((nonnull));
RESULT kms_object_set_text(struct kms_object *obj, uint32_t tag, const char *s)
    __attribute__((nonnull));
RESULT kms_object_get_enum(const struct kms_object *obj, uint32_t tag, uint32_t *v)
    __attribute__((nonnull));
RESULT kms_object_get_int(const struct kms_object *obj, uint32_t tag, int32_t *v)
    __attribute__((nonnull));
RESULT kms_object_get_date(const struct kms_object *obj, uint32_t tag, int64_t *v)
    __attribute__((nonnull));

/* Adds an instance straight from stored bytes (the store's load path). */
RESULT kms_object_add_stored(struct kms_object *obj, const char *name, int32_t index,
                             const uint8_t *item, size_t item_len) __attribute__((nonnull));

/* SHA-256 over every attribute instance in order: what the sealing of the
 * record authenticates, so that no attribute can be changed in the store
 * behind the server's back. */
RESULT kms_object_digest(const struct kms_object *obj, uint8_t out[32]) __attribute__((nonnull));

#endif
