/*
 * fuzz_buf.c - libFuzzer target for the bounded cursor buffer.
 *
 * The input is both a program and its data: each opcode byte picks an
 * operation on a read view of the input itself, or on a small bounded
 * writable buffer. After every operation the invariants are checked:
 *
 *   - rpos <= len <= cap <= limit, always;
 *   - a failed read leaves the cursor where it was and the output untouched;
 *   - a failed write leaves the length where it was;
 *   - what was written reads back the same, big-endian;
 *   - nested length-prefixed structures (read_sub) never reach outside
 *     their parent.
 *
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#include "fuzz_util.h"

static void check_invariants(const struct buf *b)
{
    CHECK(b->rpos <= b->len);
    CHECK(b->len <= b->cap);
    CHECK(b->cap <= b->limit);
}

/* Walks length-prefixed nested structures (u8 tag, u32 length, contents)
 * to a bounded depth, as a TTLV decoder will. */
static void walk_nested(struct buf *b, int depth)
{
    while (buf_remaining(b) > 0) {
        uint8_t tag;
        uint32_t len;
        struct buf sub;
        size_t before = buf_rpos(b);

        if (!is_ok(buf_read_u8(b, &tag)))
            return;
        if (!is_ok(buf_read_u32(b, &len))) {
            CHECK(buf_rpos(b) == before + 1);
            return;
        }
        size_t at = buf_rpos(b);
        if (!is_ok(buf_read_sub(b, len, &sub))) {
            CHECK(buf_rpos(b) == at); /* a lying length moves nothing */
            CHECK(len > buf_remaining(b));
            return;
        }
        CHECK(buf_remaining(&sub) == len);
        CHECK(buf_data(&sub) == buf_data(b) + at);
        if ((tag & 1) && depth < 32)
            walk_nested(&sub, depth + 1);
        check_invariants(&sub);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf in, out, fixed;
    uint8_t fixed_mem[64];
    uint8_t scratch[300];

    buf_view(&in, data, size);
    if (!is_ok(buf_alloc(&out, 0, 4096)))
        abort();
    buf_wrap(&fixed, fixed_mem, sizeof(fixed_mem));

    /* Program mode: run until the input runs out. */
    uint8_t op;
    while (is_ok(buf_read_u8(&in, &op))) {
        size_t rpos = buf_rpos(&in), olen = buf_len(&out);
        switch (op % 16) {
        case 0: {
            uint32_t v = 0x5a5a5a5a;
            if (!is_ok(buf_read_u32(&in, &v))) {
                CHECK(buf_rpos(&in) == rpos && v == 0x5a5a5a5a);
            } else {
                /* Round trip through the writable buffer. */
                if (is_ok(buf_write_u32(&out, v))) {
                    struct buf back;
                    uint32_t w;
                    buf_view(&back, buf_data(&out) + olen, 4);
                    CHECK(is_ok(buf_read_u32(&back, &w)) && w == v);
                } else {
                    CHECK(buf_len(&out) == olen);
                }
            }
            break;
        }
        case 1: {
            uint64_t v;
            if (is_ok(buf_read_u64(&in, &v))) {
                if (!is_ok(buf_write_u64(&fixed, v)))
                    CHECK(buf_len(&fixed) + 8 > sizeof(fixed_mem));
            } else {
                CHECK(buf_rpos(&in) == rpos);
            }
            break;
        }
        case 2: {
            uint16_t v;
            if (!is_ok(buf_read_u16(&in, &v)))
                CHECK(buf_rpos(&in) == rpos);
            break;
        }
        case 3: { /* a length from the data, then that many bytes */
            uint8_t n;
            const uint8_t *p;
            if (!is_ok(buf_read_u8(&in, &n)))
                break;
            size_t at = buf_rpos(&in);
            if (is_ok(buf_read_ptr(&in, n, &p))) {
                CHECK(p == data + at && buf_rpos(&in) == at + n);
                if (!is_ok(buf_write_bytes(&out, p, n)))
                    CHECK(buf_len(&out) == olen);
                else if (n > 0)
                    CHECK(memcmp(buf_data(&out) + olen, p, n) == 0);
            } else {
                CHECK(buf_rpos(&in) == at && n > buf_remaining(&in));
            }
            break;
        }
        case 4: { /* a 32-bit length, as a hostile peer would send */
            uint32_t n;
            struct buf sub;
            if (!is_ok(buf_read_u32(&in, &n)))
                break;
            size_t at = buf_rpos(&in);
            if (is_ok(buf_read_sub(&in, n, &sub)))
                walk_nested(&sub, 0);
            else
                CHECK(buf_rpos(&in) == at);
            break;
        }
        case 5: {
            uint8_t n;
            if (!is_ok(buf_read_u8(&in, &n)))
                break;
            if (is_ok(buf_read_bytes(&in, scratch, n)))
                CHECK(buf_rpos(&in) == rpos + 1 + n &&
                      (n == 0 || memcmp(scratch, data + rpos + 1, n) == 0));
            else
                CHECK(n > buf_remaining(&in) && buf_rpos(&in) == rpos + 1);
            break;
        }
        case 6: {
            uint8_t n;
            if (is_ok(buf_read_u8(&in, &n)) && !is_ok(buf_write_zeros(&fixed, n)))
                CHECK(buf_len(&fixed) + n > sizeof(fixed_mem));
            break;
        }
        case 7: {
            uint8_t at;
            if (!is_ok(buf_read_u8(&in, &at)))
                break;
            if (is_ok(buf_patch_u32(&out, at, 0xdeadbeef)))
                CHECK(buf_len(&out) == olen &&
                      memcmp(buf_data(&out) + at, "\xde\xad\xbe\xef", 4) == 0);
            else
                CHECK((size_t)at + 4 > buf_len(&out));
            break;
        }
        case 8: {
            uint8_t n;
            if (is_ok(buf_read_u8(&in, &n))) {
                if (is_ok(buf_truncate(&out, n)))
                    CHECK(buf_len(&out) == n);
                else
                    CHECK(n > olen && buf_len(&out) == olen);
            }
            break;
        }
        case 9: { /* hex from the input: only exact hex is accepted */
            uint8_t n;
            const uint8_t *p;
            char hex[257];
            if (!is_ok(buf_read_u8(&in, &n)) || !is_ok(buf_read_ptr(&in, n, &p)))
                break;
            if (n > 0)
                memcpy(hex, p, n);
            hex[n] = '\0';
            if (!is_ok(buf_write_hex(&out, hex)))
                CHECK(buf_len(&out) == olen);
            else
                CHECK(buf_len(&out) == olen + strlen(hex) / 2);
            break;
        }
        case 10:
            walk_nested(&in, 0);
            break;
        case 11: {
            uint32_t v;
            if (!is_ok(buf_peek_u32(&in, &v)))
                CHECK(buf_remaining(&in) < 4);
            CHECK(buf_rpos(&in) == rpos);
            break;
        }
        case 12: {
            uint8_t u;
            while (is_ok(buf_read_u8(&out, &u)))
                ;
            CHECK(buf_remaining(&out) == 0);
            break;
        }
        case 13:
            buf_reset(&fixed);
            CHECK(buf_len(&fixed) == 0);
            break;
        case 14: {
            uint8_t n;
            if (!is_ok(buf_read_u8(&in, &n)))
                break;
            if (is_ok(buf_skip(&in, n)))
                CHECK(buf_rpos(&in) == rpos + 1 + n);
            else
                CHECK(buf_rpos(&in) == rpos + 1);
            break;
        }
        default: { /* growth past the limit is refused */
            uint8_t *p;
            if (!is_ok(buf_reserve(&out, 4000, &p)))
                CHECK(buf_len(&out) == olen && olen + 4000 > buf_limit(&out));
            break;
        }
        }
        check_invariants(&in);
        check_invariants(&out);
        check_invariants(&fixed);
    }
    buf_free(&out);
    return 0;
}
