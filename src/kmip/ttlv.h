/*
 * ttlv.h - KMIP's Tag-Type-Length-Value encoding (KMIP 1.4 §9.1; KMIP 2.1
 * §15), the same in every protocol version.
 *
 * Every item is
 *
 *     tag (3 bytes, big-endian; first byte 0x42 for the spec's tags, 0x54
 *          for extensions) | type (1 byte) | length (4 bytes, big-endian) |
 *     value (length bytes) | zero padding to a multiple of 8
 *
 * and a Structure's value is a sequence of items.
 *
 * Decoding builds a read-only tree of struct ttlv nodes in one arena per
 * message. It is zero-copy: text, byte strings and big integers point into
 * the message, which must outlive the tree. The decoder is strict, with hard
 * limits: every length must suit its type, must fit inside its container,
 * and containers must be filled exactly; nesting depth and the number of
 * items are bounded, so a hostile message costs at most
 * max_items * sizeof(struct ttlv) bytes of memory and max_depth frames of
 * stack, whatever it declares.
 *
 * Encoding is streaming: items are appended to a struct buf (which has its
 * own hard limit), a Structure is opened with ttlv_enc_begin and closed with
 * ttlv_enc_end, which fills in its length.
 */
#ifndef VMSEAL_KMIP_TTLV_H
#define VMSEAL_KMIP_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

/* KMIP 1.4 Table 286, plus Date-Time Extended (KMIP 2.0 §9.1.1.2). */
enum ttlv_type {
    TTLV_STRUCTURE = 0x01,
    TTLV_INTEGER = 0x02,
    TTLV_LONG_INTEGER = 0x03,
    TTLV_BIG_INTEGER = 0x04,
    TTLV_ENUMERATION = 0x05,
    TTLV_BOOLEAN = 0x06,
    TTLV_TEXT_STRING = 0x07,
    TTLV_BYTE_STRING = 0x08,
    TTLV_DATE_TIME = 0x09,
    TTLV_INTERVAL = 0x0A,
    TTLV_DATE_TIME_EXTENDED = 0x0B,
};

/* The size of an item's header: tag, type, length. */
#define TTLV_HEADER_LEN 8

/* One decoded item. Read it through the accessors below; the fields are
 * public only for speed of navigation. */
struct ttlv {
    uint32_t tag; /* 24 bits */
    enum ttlv_type type;
    uint32_t length; /* of the value, without padding */
    union {
        int32_t integer;
        int64_t long_integer; /* also Date-Time (seconds) and Extended (µs) */
        uint32_t enumeration; /* also Interval (seconds) */
        bool boolean;
        const uint8_t *bytes; /* Text String, Byte String, Big Integer */
        struct {
            struct ttlv *first;
            size_t count;
        } children; /* Structure */
    } v;
    struct ttlv *next; /* the next item in the same Structure */
};

struct ttlv_limits {
    size_t max_depth; /* how deep Structures may nest; a flat message is 1 */
    size_t max_items; /* items in the whole message */
};

/* Sensible limits for KMIP requests: real messages nest 6 or 7 deep. */
#define TTLV_DEFAULT_MAX_DEPTH 32
#define TTLV_DEFAULT_MAX_ITEMS 4096

/* A decoded message: the arena and the root item. Opaque. */
struct ttlv_doc;

/* Decodes exactly one item filling msg[0, len): trailing bytes are an error
 * (ERR_TTLV_TRAILING). Errors are ERR_TTLV_* (or ERR_NOMEM) with a detail
 * naming the offset. msg must outlive *out, which the caller frees with
 * ttlv_doc_free. limits may be NULL for the defaults; msg may be NULL if
 * len is 0 (and is then a truncated message). */
RESULT ttlv_decode(const uint8_t *msg, size_t len, const struct ttlv_limits *limits,
                   struct ttlv_doc **out) __attribute__((nonnull(4)));

const struct ttlv *ttlv_doc_root(const struct ttlv_doc *doc) __attribute__((nonnull));

/* Frees the tree (not the message); accepts NULL; sets *doc = NULL. */
void ttlv_doc_free(struct ttlv_doc **doc);

/* From the first TTLV_HEADER_LEN bytes of a message, the total number of
 * bytes it occupies (header + value), so a reader knows how much to read.
 * The outermost item must be a Structure with a valid tag; ERR_TOO_LARGE if
 * the total exceeds max_total. */
RESULT ttlv_frame_length(const uint8_t header[TTLV_HEADER_LEN], size_t max_total, size_t *total)
    __attribute__((nonnull));

/* --- navigating a decoded tree --- */

/* The first child of Structure s with this tag, or NULL (also if s is not a
 * Structure). */
const struct ttlv *ttlv_find(const struct ttlv *s, uint32_t tag);

/* The next sibling after it with the same tag as it, or NULL. */
const struct ttlv *ttlv_find_next(const struct ttlv *it);

/* How many children of s have this tag. */
size_t ttlv_count(const struct ttlv *s, uint32_t tag);

/* Typed reads of an item: ERR_TTLV_WRONG_TYPE if it is another type,
 * ERR_TTLV_MISSING if it is NULL (so that ttlv_get_*(ttlv_find(...))
 * reports an absent field cleanly). */
RESULT ttlv_get_integer(const struct ttlv *it, int32_t *out) __attribute__((nonnull(2)));
RESULT ttlv_get_long(const struct ttlv *it, int64_t *out) __attribute__((nonnull(2)));
RESULT ttlv_get_enum(const struct ttlv *it, uint32_t *out) __attribute__((nonnull(2)));
RESULT ttlv_get_bool(const struct ttlv *it, bool *out) __attribute__((nonnull(2)));
RESULT ttlv_get_date_time(const struct ttlv *it, int64_t *out) __attribute__((nonnull(2)));
RESULT ttlv_get_interval(const struct ttlv *it, uint32_t *out) __attribute__((nonnull(2)));
/* Text: valid UTF-8 without NUL, not NUL-terminated. */
RESULT ttlv_get_text(const struct ttlv *it, const char **out, size_t *len)
    __attribute__((nonnull(2, 3)));
RESULT ttlv_get_bytes(const struct ttlv *it, const uint8_t **out, size_t *len)
    __attribute__((nonnull(2, 3)));
/* Checks that it is a Structure. */
RESULT ttlv_get_struct(const struct ttlv *it);

/* --- encoding --- */

/* Opens a Structure: writes its header with a placeholder length and stores
 * in *mark where it starts, for ttlv_enc_end. */
RESULT ttlv_enc_begin(struct buf *out, uint32_t tag, size_t *mark) __attribute__((nonnull));

/* Closes the Structure opened at mark, filling in its length. */
RESULT ttlv_enc_end(struct buf *out, size_t mark) __attribute__((nonnull));

RESULT ttlv_enc_integer(struct buf *out, uint32_t tag, int32_t v) __attribute__((nonnull));
RESULT ttlv_enc_long(struct buf *out, uint32_t tag, int64_t v) __attribute__((nonnull));
RESULT ttlv_enc_enum(struct buf *out, uint32_t tag, uint32_t v) __attribute__((nonnull));
RESULT ttlv_enc_bool(struct buf *out, uint32_t tag, bool v) __attribute__((nonnull));
RESULT ttlv_enc_date_time(struct buf *out, uint32_t tag, int64_t seconds) __attribute__((nonnull));
RESULT ttlv_enc_interval(struct buf *out, uint32_t tag, uint32_t seconds) __attribute__((nonnull));
/* Text must be valid UTF-8 without NUL (ERR_TTLV_VALUE otherwise). */
RESULT ttlv_enc_text(struct buf *out, uint32_t tag, const char *s, size_t len)
    __attribute__((nonnull(1)));
RESULT ttlv_enc_bytes(struct buf *out, uint32_t tag, const void *p, size_t len)
    __attribute__((nonnull(1)));
/* Big Integer: len a multiple of 8, two's complement big-endian. */
RESULT ttlv_enc_big_integer(struct buf *out, uint32_t tag, const void *p, size_t len)
    __attribute__((nonnull(1)));

/* Re-encodes a decoded item (and everything below it). */
RESULT ttlv_enc_item(struct buf *out, const struct ttlv *it) __attribute__((nonnull));

/* The same, under another tag: how an attribute value travels as Attribute
 * Value in KMIP 1.x and under the attribute's own tag in 2.x. */
RESULT ttlv_enc_item_as(struct buf *out, uint32_t tag, const struct ttlv *it)
    __attribute__((nonnull));

/* Whether s (len bytes) is valid UTF-8 with no NUL and no surrogates or
 * overlong forms (RFC 3629 §3-4). */
bool ttlv_utf8_valid(const uint8_t *s, size_t len);

#endif
