/*
 * buf.h - the bounded cursor buffer through which all parsing and encoding
 * goes.
 *
 * A buf holds bytes [0, len) with a read cursor in [0, len]. Reads take from
 * the read cursor and writes append at len. Every operation is checked:
 *
 *   - a read that does not fit fails with ERR_BUF_SHORT and does not move
 *     the cursor, so a decoder can never run past the data it was given;
 *   - a write that would take the buffer past its hard limit fails with
 *     ERR_BUF_LIMIT and writes nothing, so an encoder (or a peer that
 *     declares a huge length) can never make it allocate more than the
 *     limit;
 *   - a view over someone else's memory is read-only (ERR_BUF_READONLY).
 *
 * Integers are big-endian (network order), as KMIP TTLV, LUKS headers and
 * every other format we speak use.
 *
 * Nothing else in vmseal does pointer arithmetic on input: it takes a
 * pointer from buf_read_ptr() for exactly the length it checked.
 *
 * The fields are public only so that a buf can live on the stack; use the
 * functions.
 */
#ifndef VMSEAL_CORE_BUF_H
#define VMSEAL_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/result.h"

enum buf_flags {
    BUF_OWNED = 1u << 0,    /* data was allocated by buf and is freed by buf_free */
    BUF_GROWABLE = 1u << 1, /* may reallocate up to limit */
    BUF_READONLY = 1u << 2, /* a view over memory we must not write */
    BUF_SECRET = 1u << 3,   /* data lives in secret memory (secret.h) */
};

struct buf {
    uint8_t *data;
    size_t cap;   /* bytes available at data */
    size_t limit; /* hard maximum of cap */
    size_t len;   /* bytes written; the end of readable data */
    size_t rpos;  /* read cursor, <= len */
    unsigned flags;
};

/* The largest limit any buf may have: a sanity bound, far above any message. */
#define BUF_MAX_LIMIT ((size_t)1 << 40)

/* --- setting up and tearing down --- */

/* A read-only view of len bytes at data; nothing is copied or owned. */
void buf_view(struct buf *b, const void *data, size_t len) __attribute__((nonnull(1)));

/* An empty writable buffer over cap bytes of the caller's memory. */
void buf_wrap(struct buf *b, void *mem, size_t cap) __attribute__((nonnull(1)));

/* An empty owned buffer that starts at initial bytes and grows up to limit. */
RESULT buf_alloc(struct buf *b, size_t initial, size_t limit) __attribute__((nonnull));

/* As buf_alloc, but the bytes live in secret memory (locked, not dumped,
 * wiped on growth and on free). For keys and plaintext of keys. */
RESULT buf_alloc_secret(struct buf *b, size_t initial, size_t limit) __attribute__((nonnull));

/* Wipes and frees owned memory, and leaves b empty. Accepts NULL and a buf
 * that owns nothing. Safe to call twice. */
void buf_free(struct buf *b);

/* Empties b (len = rpos = 0), wiping what it held if it owns it. */
void buf_reset(struct buf *b) __attribute__((nonnull));

/* --- state --- */

static inline const uint8_t *buf_data(const struct buf *b)
{
    return b->data;
}
static inline size_t buf_len(const struct buf *b)
{
    return b->len;
}
static inline size_t buf_rpos(const struct buf *b)
{
    return b->rpos;
}
static inline size_t buf_remaining(const struct buf *b)
{
    return b->len - b->rpos;
}
static inline size_t buf_limit(const struct buf *b)
{
    return b->limit;
}

/* --- reading: all fail with ERR_BUF_SHORT and move nothing if short --- */

RESULT buf_read_u8(struct buf *b, uint8_t *out) __attribute__((nonnull));
RESULT buf_read_u16(struct buf *b, uint16_t *out) __attribute__((nonnull));
RESULT buf_read_u32(struct buf *b, uint32_t *out) __attribute__((nonnull));
RESULT buf_read_u64(struct buf *b, uint64_t *out) __attribute__((nonnull));

/* Copies n bytes out. */
RESULT buf_read_bytes(struct buf *b, void *out, size_t n) __attribute__((nonnull(1)));

/* Points *out at the next n bytes inside b and advances; no copy. The pointer
 * lives as long as b's memory does. */
RESULT buf_read_ptr(struct buf *b, size_t n, const uint8_t **out) __attribute__((nonnull));

/* Makes sub a read-only view of the next n bytes and advances b past them:
 * how a decoder enters a length-delimited structure. */
RESULT buf_read_sub(struct buf *b, size_t n, struct buf *sub) __attribute__((nonnull));

RESULT buf_skip(struct buf *b, size_t n) __attribute__((nonnull));

/* Like the reads above, but the cursor never moves. */
RESULT buf_peek_ptr(const struct buf *b, size_t n, const uint8_t **out) __attribute__((nonnull));
RESULT buf_peek_u32(const struct buf *b, uint32_t *out) __attribute__((nonnull));

/* Moves the read cursor back to the start. */
void buf_rewind(struct buf *b) __attribute__((nonnull));

/* --- writing: all fail with ERR_BUF_LIMIT (or ERR_BUF_READONLY) and write
 * nothing if the bytes do not fit --- */

RESULT buf_write_u8(struct buf *b, uint8_t v) __attribute__((nonnull));
RESULT buf_write_u16(struct buf *b, uint16_t v) __attribute__((nonnull));
RESULT buf_write_u32(struct buf *b, uint32_t v) __attribute__((nonnull));
RESULT buf_write_u64(struct buf *b, uint64_t v) __attribute__((nonnull));
RESULT buf_write_bytes(struct buf *b, const void *data, size_t n) __attribute__((nonnull(1)));
RESULT buf_write_zeros(struct buf *b, size_t n) __attribute__((nonnull));

/* Appends n bytes for the caller to fill and points *out at them. The pointer
 * is valid until the next write (which may move the memory). */
RESULT buf_reserve(struct buf *b, size_t n, uint8_t **out) __attribute__((nonnull));

/* Overwrites 4 already-written bytes at offset `at` (a length known only after
 * its contents were encoded). Fails with ERR_BUF_SHORT if [at, at+4) is not
 * inside [0, len). */
RESULT buf_patch_u32(struct buf *b, size_t at, uint32_t v) __attribute__((nonnull));

/* Drops everything written after len bytes (wiping it): how an encoder
 * rolls back a half-written item. Fails if len > buf_len(b). */
RESULT buf_truncate(struct buf *b, size_t len) __attribute__((nonnull));

/* Whether [p, p + n) overlaps memory that b owns or views (its whole
 * capacity). Functions that read an input and append to b refuse such
 * input: growing b would free the memory the input points into. */
bool buf_overlaps(const struct buf *b, const void *p, size_t n) __attribute__((nonnull(1)));

/* Undoes everything written after the first len bytes (wiping it): how a
 * function that fails half-way through appending leaves b as it found it.
 * A len beyond what was written changes nothing. */
void buf_rollback(struct buf *b, size_t len) __attribute__((nonnull));

/* --- hexadecimal --- */

/* Decodes a hex string (upper or lower case, even length, nothing else) and
 * appends the bytes to b. ERR_HEX on anything else; nothing is appended. */
RESULT buf_write_hex(struct buf *b, const char *hex) __attribute__((nonnull));

/* Writes n bytes as lower-case hex plus NUL into out (2n+1 bytes). */
RESULT hex_encode(const void *data, size_t n, char *out, size_t out_size)
    __attribute__((nonnull(3)));

#endif
