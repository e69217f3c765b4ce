/*
 * ttlv.c - KMIP TTLV decoder and encoder. See ttlv.h; the rules cited are
 * KMIP 1.4 §9.1.1 (identical in KMIP 2.1 §15).
 */
#include "kmip/ttlv.h"

#include <stdlib.h>
#include <string.h>

/* --- the arena --- */

#define TTLV_CHUNK_ITEMS 64

struct ttlv_chunk {
    struct ttlv_chunk *next;
    size_t used, cap;
    struct ttlv items[];
};

struct ttlv_doc {
    struct ttlv_chunk *chunks;
    size_t items;
    size_t first_chunk; /* size of the first chunk: what the message can hold */
    struct ttlv *root;
    struct ttlv_limits limits;
};

static vs_result ttlv_doc_alloc(struct ttlv_doc *d, struct ttlv **out)
{
    ENSURE(d->items < d->limits.max_items, ERR_TTLV_TOO_MANY);
    if (d->chunks == NULL || d->chunks->used == d->chunks->cap) {
        /* A message of n bytes holds at most n/8 items: small messages (an
         * attribute value) get a small first chunk. */
        size_t cap = d->chunks == NULL ? d->first_chunk : TTLV_CHUNK_ITEMS;
        struct ttlv_chunk *c = calloc(1, sizeof(*c) + cap * sizeof(c->items[0]));
        ENSURE(c != NULL, ERR_NOMEM);
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    *out = &d->chunks->items[d->chunks->used++];
    d->items++;
    return OK_RESULT;
}

void ttlv_doc_free(struct ttlv_doc **doc)
{
    if (doc == NULL || *doc == NULL)
        return;
    for (struct ttlv_chunk *c = (*doc)->chunks, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(*doc);
    *doc = NULL;
}

const struct ttlv *ttlv_doc_root(const struct ttlv_doc *doc)
{
    return doc->root;
}

/* --- validation helpers --- */

/* §9.1.1.1: the first byte of every tag is 0x42 (spec) or 0x54 (extension). */
static bool ttlv_tag_valid(uint32_t tag)
{
    uint32_t hi = tag >> 16;
    return tag <= 0xffffff && (hi == 0x42 || hi == 0x54);
}

static size_t ttlv_padded(size_t len)
{
    return (len + 7) & ~(size_t)7;
}

bool ttlv_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;

        if (c == 0)
            return false; /* NUL would cut C strings short downstream */
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong lead, or > U+10FFFF */
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* RFC 3629 §3: no overlong forms, no surrogates, nothing past U+10FFFF. */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* --- decoding --- */

/* Raises code with the offset of the offending item in the message, which
 * is what someone debugging a client needs. */
static vs_result ttlv_fail(size_t offset, enum err_code code, const char *file, int line)
{
    err_raise(code, file, line);
    return err_detail("item at byte offset %zu", offset);
}

#define TTLV_FAIL(ecode) ttlv_fail(start, (ecode), __FILE__, __LINE__)

static vs_result ttlv_decode_items(struct ttlv_doc *doc, struct buf *b, size_t base, size_t depth,
                                   struct ttlv *parent);

/* Decodes one item at b's cursor into it; base is the offset of b's first
 * byte in the whole message. */
static vs_result ttlv_decode_one(struct ttlv_doc *doc, struct buf *b, size_t base, size_t depth,
                                 struct ttlv *it)
{
    size_t start = base + buf_rpos(b);
    uint32_t tag_type, len;
    const uint8_t *v;

    if (buf_remaining(b) < TTLV_HEADER_LEN)
        return TTLV_FAIL(ERR_TTLV_TRUNCATED);
    GUARD(buf_read_u32(b, &tag_type));
    GUARD(buf_read_u32(b, &len));
    it->tag = tag_type >> 8;
    it->type = (enum ttlv_type)(tag_type & 0xff);
    it->length = len;
    it->next = NULL;
    if (!ttlv_tag_valid(it->tag))
        return TTLV_FAIL(ERR_TTLV_TAG);

    /* §9.1.1.3: the value and its padding must lie inside the container. */
    size_t padded = ttlv_padded(len);
    if (padded > buf_remaining(b))
        return TTLV_FAIL(ERR_TTLV_TRUNCATED);

    switch (it->type) {
    case TTLV_STRUCTURE: {
        struct buf sub;
        if (len % 8 != 0)
            return TTLV_FAIL(ERR_TTLV_LENGTH);
        if (depth + 1 > doc->limits.max_depth)
            return TTLV_FAIL(ERR_TTLV_DEPTH);
        GUARD(buf_read_sub(b, len, &sub));
        it->v.children.first = NULL;
        it->v.children.count = 0;
        return ttlv_decode_items(doc, &sub, start + TTLV_HEADER_LEN, depth + 1, it);
    }
    case TTLV_INTEGER:
    case TTLV_ENUMERATION:
    case TTLV_INTERVAL: {
        uint32_t u;
        if (len != 4)
            return TTLV_FAIL(ERR_TTLV_LENGTH);
        GUARD(buf_read_u32(b, &u));
        GUARD(buf_skip(b, 4)); /* padding */
        if (it->type == TTLV_INTEGER)
            it->v.integer = (int32_t)u; /* two's complement, §9.1.1.4 */
        else
            it->v.enumeration = u;
        return OK_RESULT;
    }
    case TTLV_LONG_INTEGER:
    case TTLV_DATE_TIME:
    case TTLV_DATE_TIME_EXTENDED: {
        uint64_t u;
        if (len != 8)
            return TTLV_FAIL(ERR_TTLV_LENGTH);
        GUARD(buf_read_u64(b, &u));
        it->v.long_integer = (int64_t)u;
        return OK_RESULT;
    }
    case TTLV_BOOLEAN: {
        uint64_t u;
        if (len != 8)
            return TTLV_FAIL(ERR_TTLV_LENGTH);
        GUARD(buf_read_u64(b, &u));
        /* §9.1.1.4: 0 is False and 1 is True; nothing else is a Boolean. */
        if (u > 1)
            return TTLV_FAIL(ERR_TTLV_VALUE);
        it->v.boolean = u == 1;
        return OK_RESULT;
    }
    case TTLV_BIG_INTEGER:
        /* §9.1.1.3: a multiple of 8, sign-extended; no further padding. */
        if (len == 0 || len % 8 != 0)
            return TTLV_FAIL(ERR_TTLV_LENGTH);
        GUARD(buf_read_ptr(b, len, &v));
        it->v.bytes = v;
        return OK_RESULT;
    case TTLV_TEXT_STRING:
    case TTLV_BYTE_STRING:
        GUARD(buf_read_ptr(b, len, &v));
        GUARD(buf_skip(b, padded - len));
        if (it->type == TTLV_TEXT_STRING && !ttlv_utf8_valid(v, len))
            return TTLV_FAIL(ERR_TTLV_VALUE);
        it->v.bytes = v;
        return OK_RESULT;
    }
    return TTLV_FAIL(ERR_TTLV_TYPE);
}

/* Decodes items until b is exhausted, appending them to parent (or, at the
 * top, into the single root). */
static vs_result ttlv_decode_items(struct ttlv_doc *doc, struct buf *b, size_t base, size_t depth,
                                   struct ttlv *parent)
{
    struct ttlv *last = NULL;

    while (buf_remaining(b) > 0) {
        struct ttlv *it = NULL;
        GUARD(ttlv_doc_alloc(doc, &it));
        GUARD(ttlv_decode_one(doc, b, base, depth, it));
        if (last == NULL)
            parent->v.children.first = it;
        else
            last->next = it;
        last = it;
        parent->v.children.count++;
    }
    return OK_RESULT;
}

vs_result ttlv_decode(const uint8_t *msg, size_t len, const struct ttlv_limits *limits,
                      struct ttlv_doc **out)
{
    static const struct ttlv_limits defaults = {TTLV_DEFAULT_MAX_DEPTH, TTLV_DEFAULT_MAX_ITEMS};
    struct ttlv_doc *d;
    struct buf b;
    vs_result rc = OK_RESULT;

    *out = NULL;
    ENSURE(len == 0 || msg != NULL, ERR_NULL_ARG);
    d = calloc(1, sizeof(*d));
    ENSURE(d != NULL, ERR_NOMEM);
    d->limits = limits != NULL ? *limits : defaults;
    d->first_chunk =
        len / TTLV_HEADER_LEN + 1 < TTLV_CHUNK_ITEMS ? len / TTLV_HEADER_LEN + 1 : TTLV_CHUNK_ITEMS;
    buf_view(&b, msg, len);

    GUARD_OUT(ttlv_doc_alloc(d, &d->root));
    GUARD_OUT(ttlv_decode_one(d, &b, 0, 0, d->root));
    if (buf_remaining(&b) != 0) {
        rc = RAISE(ERR_TTLV_TRAILING);
        err_detail("%zu bytes after the message", buf_remaining(&b));
        goto out;
    }
    *out = d;
    d = NULL;
out:
    ttlv_doc_free(&d);
    return rc;
}

vs_result ttlv_frame_length(const uint8_t header[TTLV_HEADER_LEN], size_t max_total, size_t *total)
{
    struct buf b;
    uint32_t tag_type, len;

    buf_view(&b, header, TTLV_HEADER_LEN);
    GUARD(buf_read_u32(&b, &tag_type));
    GUARD(buf_read_u32(&b, &len));
    ENSURE(ttlv_tag_valid(tag_type >> 8), ERR_TTLV_TAG);
    ENSURE((tag_type & 0xff) == TTLV_STRUCTURE, ERR_TTLV_TYPE);
    ENSURE(len % 8 == 0, ERR_TTLV_LENGTH);
    if ((size_t)len > max_total - TTLV_HEADER_LEN || max_total < TTLV_HEADER_LEN) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("message of %zu bytes, more than the limit of %zu",
                          (size_t)len + TTLV_HEADER_LEN, max_total);
    }
    *total = (size_t)len + TTLV_HEADER_LEN;
    return OK_RESULT;
}

/* --- navigation and typed reads --- */

const struct ttlv *ttlv_find(const struct ttlv *s, uint32_t tag)
{
    if (s == NULL || s->type != TTLV_STRUCTURE)
        return NULL;
    for (const struct ttlv *c = s->v.children.first; c != NULL; c = c->next)
        if (c->tag == tag)
            return c;
    return NULL;
}

const struct ttlv *ttlv_find_next(const struct ttlv *it)
{
    if (it == NULL)
        return NULL;
    for (const struct ttlv *c = it->next; c != NULL; c = c->next)
        if (c->tag == it->tag)
            return c;
    return NULL;
}

size_t ttlv_count(const struct ttlv *s, uint32_t tag)
{
    size_t n = 0;
    for (const struct ttlv *c = ttlv_find(s, tag); c != NULL; c = ttlv_find_next(c))
        n++;
    return n;
}

static vs_result ttlv_expect(const struct ttlv *it, enum ttlv_type type)
{
    ENSURE(it != NULL, ERR_TTLV_MISSING);
    if (it->type != type) {
        RAISE(ERR_TTLV_WRONG_TYPE);
        return err_detail("tag 0x%06x has type 0x%02x, expected 0x%02x", (unsigned)it->tag,
                          (unsigned)it->type, (unsigned)type);
    }
    return OK_RESULT;
}

vs_result ttlv_get_integer(const struct ttlv *it, int32_t *out)
{
    GUARD(ttlv_expect(it, TTLV_INTEGER));
    *out = it->v.integer;
    return OK_RESULT;
}

vs_result ttlv_get_long(const struct ttlv *it, int64_t *out)
{
    GUARD(ttlv_expect(it, TTLV_LONG_INTEGER));
    *out = it->v.long_integer;
    return OK_RESULT;
}

vs_result ttlv_get_enum(const struct ttlv *it, uint32_t *out)
{
    GUARD(ttlv_expect(it, TTLV_ENUMERATION));
    *out = it->v.enumeration;
    return OK_RESULT;
}

vs_result ttlv_get_bool(const struct ttlv *it, bool *out)
{
    GUARD(ttlv_expect(it, TTLV_BOOLEAN));
    *out = it->v.boolean;
    return OK_RESULT;
}

vs_result ttlv_get_date_time(const struct ttlv *it, int64_t *out)
{
    GUARD(ttlv_expect(it, TTLV_DATE_TIME));
    *out = it->v.long_integer;
    return OK_RESULT;
}

vs_result ttlv_get_interval(const struct ttlv *it, uint32_t *out)
{
    GUARD(ttlv_expect(it, TTLV_INTERVAL));
    *out = it->v.enumeration;
    return OK_RESULT;
}

vs_result ttlv_get_text(const struct ttlv *it, const char **out, size_t *len)
{
    GUARD(ttlv_expect(it, TTLV_TEXT_STRING));
    *out = (const char *)it->v.bytes;
    *len = it->length;
    return OK_RESULT;
}

vs_result ttlv_get_bytes(const struct ttlv *it, const uint8_t **out, size_t *len)
{
    GUARD(ttlv_expect(it, TTLV_BYTE_STRING));
    *out = it->v.bytes;
    *len = it->length;
    return OK_RESULT;
}

vs_result ttlv_get_struct(const struct ttlv *it)
{
    return ttlv_expect(it, TTLV_STRUCTURE);
}

/* --- encoding --- */

static vs_result ttlv_enc_header(struct buf *out, uint32_t tag, enum ttlv_type type, uint32_t len)
{
    ENSURE(ttlv_tag_valid(tag), ERR_TTLV_TAG);
    GUARD(buf_write_u32(out, tag << 8 | (uint32_t)type));
    return buf_write_u32(out, len);
}

/* Writes a whole item or nothing: a failure rolls back to where it began. */
static vs_result ttlv_enc_raw(struct buf *out, uint32_t tag, enum ttlv_type type, const void *p,
                              size_t len)
{
    size_t start = buf_len(out);
    vs_result rc;

    ENSURE(len <= UINT32_MAX - 7, ERR_TOO_LARGE);
    ENSURE(len == 0 || p != NULL, ERR_NULL_ARG);
    rc = ttlv_enc_header(out, tag, type, (uint32_t)len);
    if (is_ok(rc))
        rc = buf_write_bytes(out, p, len);
    if (is_ok(rc))
        rc = buf_write_zeros(out, ttlv_padded(len) - len);
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}

static vs_result ttlv_enc_u32(struct buf *out, uint32_t tag, enum ttlv_type type, uint32_t v)
{
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return ttlv_enc_raw(out, tag, type, be, 4);
}

static vs_result ttlv_enc_u64(struct buf *out, uint32_t tag, enum ttlv_type type, uint64_t v)
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    return ttlv_enc_raw(out, tag, type, be, 8);
}

vs_result ttlv_enc_begin(struct buf *out, uint32_t tag, size_t *mark)
{
    size_t start = buf_len(out);
    vs_result rc = ttlv_enc_header(out, tag, TTLV_STRUCTURE, 0);

    if (!is_ok(rc)) {
        buf_rollback(out, start);
        return rc;
    }
    *mark = start;
    return OK_RESULT;
}

vs_result ttlv_enc_end(struct buf *out, size_t mark)
{
    size_t len;

    ENSURE(mark <= buf_len(out) && buf_len(out) - mark >= TTLV_HEADER_LEN, ERR_INVALID_ARG);
    len = buf_len(out) - mark - TTLV_HEADER_LEN;
    ENSURE(len <= UINT32_MAX, ERR_TOO_LARGE);
    return buf_patch_u32(out, mark + 4, (uint32_t)len);
}

vs_result ttlv_enc_integer(struct buf *out, uint32_t tag, int32_t v)
{
    return ttlv_enc_u32(out, tag, TTLV_INTEGER, (uint32_t)v);
}

vs_result ttlv_enc_long(struct buf *out, uint32_t tag, int64_t v)
{
    return ttlv_enc_u64(out, tag, TTLV_LONG_INTEGER, (uint64_t)v);
}

vs_result ttlv_enc_enum(struct buf *out, uint32_t tag, uint32_t v)
{
    return ttlv_enc_u32(out, tag, TTLV_ENUMERATION, v);
}

vs_result ttlv_enc_bool(struct buf *out, uint32_t tag, bool v)
{
    return ttlv_enc_u64(out, tag, TTLV_BOOLEAN, v ? 1 : 0);
}

vs_result ttlv_enc_date_time(struct buf *out, uint32_t tag, int64_t seconds)
{
    return ttlv_enc_u64(out, tag, TTLV_DATE_TIME, (uint64_t)seconds);
}

vs_result ttlv_enc_interval(struct buf *out, uint32_t tag, uint32_t seconds)
{
    return ttlv_enc_u32(out, tag, TTLV_INTERVAL, seconds);
}

vs_result ttlv_enc_text(struct buf *out, uint32_t tag, const char *s, size_t len)
{
    ENSURE(len == 0 || s != NULL, ERR_NULL_ARG);
    ENSURE(len == 0 || ttlv_utf8_valid((const uint8_t *)s, len), ERR_TTLV_VALUE);
    return ttlv_enc_raw(out, tag, TTLV_TEXT_STRING, s, len);
}

vs_result ttlv_enc_bytes(struct buf *out, uint32_t tag, const void *p, size_t len)
{
    return ttlv_enc_raw(out, tag, TTLV_BYTE_STRING, p, len);
}

vs_result ttlv_enc_big_integer(struct buf *out, uint32_t tag, const void *p, size_t len)
{
    ENSURE(len > 0 && len % 8 == 0, ERR_TTLV_LENGTH);
    return ttlv_enc_raw(out, tag, TTLV_BIG_INTEGER, p, len);
}

vs_result ttlv_enc_item(struct buf *out, const struct ttlv *it)
{
    return ttlv_enc_item_as(out, it->tag, it);
}

vs_result ttlv_enc_item_as(struct buf *out, uint32_t tag, const struct ttlv *it)
{
    size_t mark;

    switch (it->type) {
    case TTLV_STRUCTURE:
        GUARD(ttlv_enc_begin(out, tag, &mark));
        for (const struct ttlv *c = it->v.children.first; c != NULL; c = c->next) {
            vs_result rc = ttlv_enc_item(out, c);
            if (!is_ok(rc)) {
                buf_rollback(out, mark);
                return rc;
            }
        }
        return ttlv_enc_end(out, mark);
    case TTLV_INTEGER:
        return ttlv_enc_integer(out, tag, it->v.integer);
    case TTLV_ENUMERATION:
    case TTLV_INTERVAL:
        return ttlv_enc_u32(out, tag, it->type, it->v.enumeration);
    case TTLV_LONG_INTEGER:
    case TTLV_DATE_TIME:
    case TTLV_DATE_TIME_EXTENDED:
        return ttlv_enc_u64(out, tag, it->type, (uint64_t)it->v.long_integer);
    case TTLV_BOOLEAN:
        return ttlv_enc_bool(out, tag, it->v.boolean);
    case TTLV_TEXT_STRING:
    case TTLV_BYTE_STRING:
    case TTLV_BIG_INTEGER:
        return ttlv_enc_raw(out, tag, it->type, it->v.bytes, it->length);
    }
    BAIL(ERR_TTLV_TYPE);
}
