/*
 * buf.c - the bounded cursor buffer. See buf.h for the contract.
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

#include "core/secret.h"

/* data + off, where an empty buffer may have no memory at all: NULL + 0 is
 * undefined behaviour in C, so it is spelled out. */
static uint8_t *buf_at(const struct buf *b, size_t off)
{
    return b->data != NULL ? b->data + off : NULL;
}

void buf_view(struct buf *b, const void *data, size_t len)
{
    /* The const is restored by BUF_READONLY: no write path touches data. */
    *b = (struct buf){
        .data = (uint8_t *)(uintptr_t)data,
        .cap = len,
        .limit = len,
        .len = len,
        .flags = BUF_READONLY,
    };
    if (data == NULL)
        b->cap = b->limit = b->len = 0;
}

void buf_wrap(struct buf *b, void *mem, size_t cap)
{
    *b = (struct buf){.data = mem, .cap = cap, .limit = cap};
    if (mem == NULL)
        b->cap = b->limit = 0;
}

static RESULT buf_alloc_flags(struct buf *b, size_t initial, size_t limit, unsigned flags)
{
    ENSURE(limit <= BUF_MAX_LIMIT, ERR_TOO_LARGE);
    ENSURE(initial <= limit, ERR_INVALID_ARG);
    *b = (struct buf){.limit = limit, .flags = BUF_OWNED | BUF_GROWABLE | flags};
    if (initial == 0)
        return OK_RESULT;
    if (flags & BUF_SECRET) {
        void *p = NULL;
        GUARD(secret_alloc(initial, &p));
        b->data = p;
    } else {
        b->data = malloc(initial);
        ENSURE(b->data != NULL, ERR_NOMEM);
    }
    b->cap = initial;
    return OK_RESULT;
}

vs_result buf_alloc(struct buf *b, size_t initial, size_t limit)
{
    return buf_alloc_flags(b, initial, limit, 0);
}

vs_result buf_alloc_secret(struct buf *b, size_t initial, size_t limit)
{
    return buf_alloc_flags(b, initial, limit, BUF_SECRET);
}

static void buf_release(uint8_t *data, size_t cap, unsigned flags)
{
    if (data == NULL || !(flags & BUF_OWNED))
        return;
    if (flags & BUF_SECRET) {
        void *p = data;
        secret_free(&p); /* wipes */
    } else {
        secret_wipe(data, cap);
        free(data);
    }
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    buf_release(b->data, b->cap, b->flags);
    *b = (struct buf){0};
}

void buf_reset(struct buf *b)
{
    if ((b->flags & BUF_OWNED) && b->data != NULL)
        secret_wipe(b->data, b->len);
    if (!(b->flags & BUF_READONLY))
        b->len = 0;
    b->rpos = 0;
}

/* Makes room for n more bytes, growing an owned buffer up to its limit. */
static RESULT buf_make_room(struct buf *b, size_t n)
{
    size_t need, cap;

    ENSURE(!(b->flags & BUF_READONLY), ERR_BUF_READONLY);
    ENSURE(!__builtin_add_overflow(b->len, n, &need), ERR_BUF_LIMIT);
    if (need <= b->cap)
        return OK_RESULT;
    ENSURE(need <= b->limit && (b->flags & BUF_GROWABLE), ERR_BUF_LIMIT);

    /* Doubling keeps appends amortised O(1); clamp to the limit. */
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > b->limit / 2 ? b->limit : cap * 2;
    if (cap > b->limit)
        cap = b->limit;

    uint8_t *p;
    if (b->flags & BUF_SECRET) {
        void *s = NULL;
        GUARD(secret_alloc(cap, &s));
        p = s;
    } else {
        p = malloc(cap);
        ENSURE(p != NULL, ERR_NOMEM);
    }
    /* Copy, then wipe the old bytes: realloc() would leave them in the heap. */
    if (b->len > 0)
        memcpy(p, b->data, b->len);
    buf_release(b->data, b->cap, b->flags);
    b->data = p;
    b->cap = cap;
    return OK_RESULT;
}

/* --- reading --- */

vs_result buf_peek_ptr(const struct buf *b, size_t n, const uint8_t **out)
{
    ENSURE(n <= b->len - b->rpos, ERR_BUF_SHORT);
    *out = buf_at(b, b->rpos);
    return OK_RESULT;
}

vs_result buf_read_ptr(struct buf *b, size_t n, const uint8_t **out)
{
    GUARD(buf_peek_ptr(b, n, out));
    b->rpos += n;
    return OK_RESULT;
}

vs_result buf_read_bytes(struct buf *b, void *out, size_t n)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, n, &p));
    if (n > 0)
        memcpy(out, p, n);
    return OK_RESULT;
}

vs_result buf_skip(struct buf *b, size_t n)
{
    const uint8_t *p;

    return buf_read_ptr(b, n, &p);
}

vs_result buf_read_sub(struct buf *b, size_t n, struct buf *sub)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, n, &p));
    buf_view(sub, p, n);
    return OK_RESULT;
}

void buf_rewind(struct buf *b)
{
    b->rpos = 0;
}

static uint64_t be_load(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void be_store(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (uint8_t)v;
        v >>= 8;
    }
}

vs_result buf_read_u8(struct buf *b, uint8_t *out)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, 1, &p));
    *out = p[0];
    return OK_RESULT;
}

vs_result buf_read_u16(struct buf *b, uint16_t *out)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, 2, &p));
    *out = (uint16_t)be_load(p, 2);
    return OK_RESULT;
}

vs_result buf_read_u32(struct buf *b, uint32_t *out)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, 4, &p));
    *out = (uint32_t)be_load(p, 4);
    return OK_RESULT;
}

vs_result buf_read_u64(struct buf *b, uint64_t *out)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, 8, &p));
    *out = be_load(p, 8);
    return OK_RESULT;
}

vs_result buf_peek_u32(const struct buf *b, uint32_t *out)
{
    const uint8_t *p;

    GUARD(buf_peek_ptr(b, 4, &p));
    *out = (uint32_t)be_load(p, 4);
    return OK_RESULT;
}

/* --- writing --- */

vs_result buf_reserve(struct buf *b, size_t n, uint8_t **out)
{
    GUARD(buf_make_room(b, n));
    *out = buf_at(b, b->len);
    b->len += n;
    return OK_RESULT;
}

vs_result buf_write_bytes(struct buf *b, const void *data, size_t n)
{
    uint8_t *p;

    ENSURE(n == 0 || data != NULL, ERR_NULL_ARG);
    GUARD(buf_reserve(b, n, &p));
    if (n > 0)
        memcpy(p, data, n);
    return OK_RESULT;
}

vs_result buf_write_zeros(struct buf *b, size_t n)
{
    uint8_t *p;

    GUARD(buf_reserve(b, n, &p));
    if (n > 0)
        memset(p, 0, n);
    return OK_RESULT;
}

static RESULT buf_write_be(struct buf *b, uint64_t v, size_t n)
{
    uint8_t *p;

    GUARD(buf_reserve(b, n, &p));
    be_store(p, v, n);
    return OK_RESULT;
}

vs_result buf_write_u8(struct buf *b, uint8_t v)
{
    return buf_write_be(b, v, 1);
}

vs_result buf_write_u16(struct buf *b, uint16_t v)
{
    return buf_write_be(b, v, 2);
}

vs_result buf_write_u32(struct buf *b, uint32_t v)
{
    return buf_write_be(b, v, 4);
}

vs_result buf_write_u64(struct buf *b, uint64_t v)
{
    return buf_write_be(b, v, 8);
}

vs_result buf_patch_u32(struct buf *b, size_t at, uint32_t v)
{
    ENSURE(!(b->flags & BUF_READONLY), ERR_BUF_READONLY);
    ENSURE(at <= b->len && b->len - at >= 4, ERR_BUF_SHORT);
    be_store(b->data + at, v, 4);
    return OK_RESULT;
}

vs_result buf_truncate(struct buf *b, size_t len)
{
    ENSURE(!(b->flags & BUF_READONLY), ERR_BUF_READONLY);
    ENSURE(len <= b->len, ERR_INVALID_ARG);
    secret_wipe(buf_at(b, len), b->len - len);
    b->len = len;
    if (b->rpos > len)
        b->rpos = len;
    return OK_RESULT;
}

bool buf_overlaps(const struct buf *b, const void *p, size_t n)
{
    uintptr_t lo = (uintptr_t)p, hi, blo = (uintptr_t)b->data, bhi;

    if (p == NULL || n == 0 || b->data == NULL || b->cap == 0)
        return false;
    if (__builtin_add_overflow(lo, n, &hi) || __builtin_add_overflow(blo, b->cap, &bhi))
        return true; /* cannot happen with real objects; be safe */
    return lo < bhi && blo < hi;
}

void buf_rollback(struct buf *b, size_t len)
{
    if (!(b->flags & BUF_READONLY) && len <= b->len) {
        vs_result rc = buf_truncate(b, len);
        (void)rc; /* cannot fail: writable, and len <= b->len */
    }
}

/* --- hexadecimal --- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

vs_result buf_write_hex(struct buf *b, const char *hex)
{
    size_t n = strlen(hex);
    uint8_t *p;

    ENSURE(n % 2 == 0, ERR_HEX);
    for (size_t i = 0; i < n; i++)
        ENSURE(hex_value(hex[i]) >= 0, ERR_HEX);
    GUARD(buf_reserve(b, n / 2, &p));
    for (size_t i = 0; i < n / 2; i++)
        p[i] = (uint8_t)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return OK_RESULT;
}

vs_result hex_encode(const void *data, size_t n, char *out, size_t out_size)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    size_t need;

    ENSURE(n == 0 || data != NULL, ERR_NULL_ARG);
    ENSURE_MUL(n, 2, &need);
    ENSURE_ADD(need, 1, &need);
    ENSURE(need <= out_size, ERR_BUF_LIMIT);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
    return OK_RESULT;
}
