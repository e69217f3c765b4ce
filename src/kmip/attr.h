/*
 * attr.h - KMIP attributes in both generations of the protocol.
 *
 *   KMIP 1.x (1.4 §2.1.1): Attribute { Attribute Name (the spec's name, or
 *     "x-..."/"y-..." for custom ones), [Attribute Index], Attribute Value }
 *   KMIP 2.x (2.1 §2.1.1, §4.60): inside an Attributes structure, each
 *     standard attribute is an item under its own tag; a vendor attribute is
 *     Attribute { Vendor Identification, Attribute Name, Attribute Value }.
 *     Vendor "x" and "y" are 1.x's custom "x-" and "y-" attributes.
 *
 * vmseal gives every attribute one canonical name, whatever the version that
 * carried it: the spec's name for standard attributes ("Cryptographic
 * Algorithm"), "x-NAME"/"y-NAME" for custom ones, and "VENDOR:NAME" for a
 * 2.x vendor attribute of another vendor (which 1.x cannot express). The
 * value is a decoded TTLV item; its tag is irrelevant (it is re-tagged when
 * encoded: Attribute Value in 1.x, the attribute's tag in 2.x).
 */
#ifndef VMSEAL_KMIP_ATTR_H
#define VMSEAL_KMIP_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kmip/msg.h"
#include "kmip/ttlv.h"

#define KMIP_ATTR_NAME_MAX 160

struct kmip_attr {
    char name[KMIP_ATTR_NAME_MAX + 1]; /* canonical, see above */
    uint32_t tag;                      /* the standard attribute's tag; 0 if custom */
    int32_t index;                     /* 1.x Attribute Index; 0 when absent */
    const struct ttlv *value;          /* borrowed from a decoded message */
};

/* What the protocol says of a standard attribute. */
struct kmip_attr_spec {
    uint32_t tag;
    enum ttlv_type type;
    bool multi; /* may have several instances */
};

/* The spec of the standard attribute with this tag, or NULL if vmseal does
 * not know it as an attribute. */
const struct kmip_attr_spec *kmip_attr_spec(uint32_t tag);

/* Whether the name is in 1.x's custom form, "x-..." or "y-..." (2.x vendors
 * x and y). */
bool kmip_attr_is_xy(const char *name) __attribute__((nonnull));

/* Whether the name is a 2.x vendor attribute of a vendor other than x and
 * y ("VENDOR:NAME"), which has no 1.x name. */
bool kmip_attr_is_other_vendor(const char *name) __attribute__((nonnull));

/* Whether the name is a custom attribute name ("x-" or "y-" then at least
 * one character, or VENDOR:NAME). */
bool kmip_attr_is_custom(const char *name);

/* Fills a->name and a->tag from a 1.x Attribute Name. ERR_KMIP_ATTRIBUTE if
 * the name is neither a known standard attribute nor a custom one. */
RESULT kmip_attr_set_name(struct kmip_attr *a, const char *name, size_t len)
    __attribute__((nonnull));

/* Parses a 1.x Attribute structure. Checks the value's type for standard
 * attributes (ERR_KMIP_ATTRIBUTE with a detail). a->value points into it. */
RESULT kmip_attr_from_1x(const struct ttlv *attribute, struct kmip_attr *a)
    __attribute__((nonnull(2)));

/* Parses one item of a 2.x Attributes structure (a standard attribute under
 * its tag, or a vendor Attribute structure). */
RESULT kmip_attr_from_2x(const struct ttlv *item, struct kmip_attr *a) __attribute__((nonnull(2)));

/* Parses a 2.x Attribute Reference (an Enumeration holding a tag, or a
 * Structure of Vendor Identification and Attribute Name) into a->name and
 * a->tag; a->value is NULL. */
RESULT kmip_attr_from_reference(const struct ttlv *ref, struct kmip_attr *a)
    __attribute__((nonnull(2)));

/* Encodes a for a response of version v: 1.x Attribute structure, or the 2.x
 * form for use inside an Attributes structure. A vendor attribute of a
 * vendor other than x/y has no 1.x form: ERR_UNSUPPORTED, nothing written. */
RESULT kmip_attr_encode(struct buf *out, struct kmip_version v, const struct kmip_attr *a)
    __attribute__((nonnull));

/* Encodes an attribute's canonical name as a 1.x Attribute Name or a 2.x
 * Attribute Reference (Get Attribute List's answer). */
RESULT kmip_attr_encode_reference(struct buf *out, struct kmip_version v, const char *name,
                                  uint32_t tag) __attribute__((nonnull));

#endif
