/* Tests of the bounded cursor buffer: every read and write, and every way
 * they must refuse. */
#include "test_util.h"

#include <string.h>

#include "core/secret.h"

static void test_big_endian_round_trip(void **state)
{
    struct buf b;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    (void)state;

    assert_ok(buf_alloc(&b, 0, 64));
    assert_ok(buf_write_u8(&b, 0x42));
    assert_ok(buf_write_u16(&b, 0x0102));
    assert_ok(buf_write_u32(&b, 0x03040506));
    assert_ok(buf_write_u64(&b, 0x0708090a0b0c0d0eull));
    assert_int_equal(buf_len(&b), 15);
    static const uint8_t want[] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    assert_memory_equal(buf_data(&b), want, sizeof(want));

    assert_ok(buf_read_u8(&b, &u8));
    assert_ok(buf_read_u16(&b, &u16));
    assert_ok(buf_read_u32(&b, &u32));
    assert_ok(buf_read_u64(&b, &u64));
    assert_int_equal(u8, 0x42);
    assert_int_equal(u16, 0x0102);
    assert_int_equal(u32, 0x03040506);
    assert_true(u64 == 0x0708090a0b0c0d0eull);
    assert_int_equal(buf_remaining(&b), 0);
    buf_free(&b);
}

static void test_short_read_does_not_advance(void **state)
{
    static const uint8_t data[] = {1, 2, 3};
    struct buf b;
    uint32_t u32 = 0xdeadbeef;
    uint64_t u64;
    uint8_t out[4] = {9, 9, 9, 9};
    const uint8_t *p = NULL;
    (void)state;

    buf_view(&b, data, sizeof(data));
    assert_err(buf_read_u32(&b, &u32), ERR_BUF_SHORT);
    assert_int_equal(u32, 0xdeadbeef); /* untouched */
    assert_int_equal(buf_rpos(&b), 0);
    assert_err(buf_read_u64(&b, &u64), ERR_BUF_SHORT);
    assert_err(buf_read_bytes(&b, out, 4), ERR_BUF_SHORT);
    assert_int_equal(out[0], 9);
    assert_err(buf_read_ptr(&b, 4, &p), ERR_BUF_SHORT);
    assert_null(p);
    assert_err(buf_skip(&b, 4), ERR_BUF_SHORT);
    assert_int_equal(buf_rpos(&b), 0);

    /* Exactly what is there works, then nothing more. */
    assert_ok(buf_read_bytes(&b, out, 3));
    assert_memory_equal(out, data, 3);
    uint8_t u8;
    assert_err(buf_read_u8(&b, &u8), ERR_BUF_SHORT);
    assert_int_equal(buf_rpos(&b), 3);
}

static void test_huge_lengths_are_refused(void **state)
{
    static const uint8_t data[16];
    struct buf b, sub;
    const uint8_t *p;
    (void)state;

    /* A length read off the wire, e.g. 0xffffffff or SIZE_MAX, cannot move
     * the cursor or wrap the arithmetic. */
    buf_view(&b, data, sizeof(data));
    assert_ok(buf_skip(&b, 8));
    assert_err(buf_read_ptr(&b, SIZE_MAX, &p), ERR_BUF_SHORT);
    assert_err(buf_read_ptr(&b, SIZE_MAX - 7, &p), ERR_BUF_SHORT);
    assert_err(buf_read_sub(&b, 0xffffffffu, &sub), ERR_BUF_SHORT);
    assert_int_equal(buf_rpos(&b), 8);
}

static void test_sub_view_is_bounded_and_read_only(void **state)
{
    static const uint8_t data[] = {0, 0, 0, 2, 0xaa, 0xbb, 0xcc};
    struct buf b, sub;
    uint32_t len;
    uint8_t v;
    (void)state;

    buf_view(&b, data, sizeof(data));
    assert_ok(buf_read_u32(&b, &len));
    assert_ok(buf_read_sub(&b, len, &sub));
    assert_int_equal(buf_remaining(&sub), 2);
    assert_ok(buf_read_u8(&sub, &v));
    assert_int_equal(v, 0xaa);
    assert_ok(buf_read_u8(&sub, &v));
    assert_int_equal(v, 0xbb);
    /* The sub view ends at its length even though more bytes follow. */
    assert_err(buf_read_u8(&sub, &v), ERR_BUF_SHORT);
    assert_err(buf_write_u8(&sub, 1), ERR_BUF_READONLY);
    /* The parent has moved past the sub range. */
    assert_ok(buf_read_u8(&b, &v));
    assert_int_equal(v, 0xcc);
}

static void test_view_is_read_only(void **state)
{
    uint8_t data[4] = {1, 2, 3, 4};
    struct buf b;
    (void)state;

    buf_view(&b, data, sizeof(data));
    assert_err(buf_write_u8(&b, 9), ERR_BUF_READONLY);
    assert_err(buf_patch_u32(&b, 0, 9), ERR_BUF_READONLY);
    assert_err(buf_truncate(&b, 0), ERR_BUF_READONLY);
    assert_int_equal(data[0], 1);
    buf_free(&b); /* owns nothing: must not free */
    assert_int_equal(data[3], 4);
}

static void test_fixed_buffer_limit(void **state)
{
    uint8_t mem[6];
    struct buf b;
    (void)state;

    buf_wrap(&b, mem, sizeof(mem));
    assert_ok(buf_write_u32(&b, 0x01020304));
    /* 4 + 4 > 6: refused, nothing written, length unchanged. */
    assert_err(buf_write_u32(&b, 0x05060708), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 4);
    assert_ok(buf_write_u16(&b, 0x0506));
    assert_err(buf_write_u8(&b, 7), ERR_BUF_LIMIT);
    assert_err(buf_write_zeros(&b, 1), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 6);
}

static void test_growable_buffer_limit(void **state)
{
    struct buf b;
    uint8_t chunk[100];
    (void)state;

    memset(chunk, 0x5a, sizeof(chunk));
    assert_ok(buf_alloc(&b, 0, 1000));
    for (int i = 0; i < 10; i++)
        assert_ok(buf_write_bytes(&b, chunk, sizeof(chunk)));
    assert_int_equal(buf_len(&b), 1000);
    assert_err(buf_write_u8(&b, 1), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(buf_data(&b)[i], 0x5a);
    /* A write whose size would overflow size_t is a limit error. */
    uint8_t *p;
    assert_err(buf_reserve(&b, SIZE_MAX, &p), ERR_BUF_LIMIT);
    buf_free(&b);
    assert_null(b.data);
    buf_free(&b); /* twice is fine */
    buf_free(NULL);
}

static void test_alloc_refuses_bad_limits(void **state)
{
    struct buf b;
    (void)state;
    assert_err(buf_alloc(&b, 10, 5), ERR_INVALID_ARG);
    assert_err(buf_alloc(&b, 0, BUF_MAX_LIMIT + 1), ERR_TOO_LARGE);
}

static void test_patch_and_truncate(void **state)
{
    struct buf b;
    uint32_t v;
    (void)state;

    assert_ok(buf_alloc(&b, 0, 64));
    assert_ok(buf_write_u32(&b, 0)); /* a length to fill in later */
    assert_ok(buf_write_u32(&b, 0x11111111));
    assert_ok(buf_patch_u32(&b, 0, 4));
    assert_ok(buf_read_u32(&b, &v));
    assert_int_equal(v, 4);
    /* A patch must lie wholly inside what was written. */
    assert_err(buf_patch_u32(&b, 5, 1), ERR_BUF_SHORT);
    assert_err(buf_patch_u32(&b, SIZE_MAX - 1, 1), ERR_BUF_SHORT);

    assert_ok(buf_truncate(&b, 2));
    assert_int_equal(buf_len(&b), 2);
    assert_int_equal(buf_rpos(&b), 2); /* clamped */
    assert_err(buf_truncate(&b, 3), ERR_INVALID_ARG);
    buf_free(&b);
}

static void test_rollback(void **state)
{
    struct buf b, v;
    (void)state;

    assert_ok(buf_alloc(&b, 0, 64));
    assert_ok(buf_write_u32(&b, 0x01020304));
    assert_ok(buf_write_u32(&b, 0xffffffff));
    buf_rollback(&b, 4);
    assert_int_equal(buf_len(&b), 4);
    assert_int_equal(buf_data(&b)[4], 0); /* what was dropped is wiped */
    buf_rollback(&b, 10);                 /* beyond what was written: nothing */
    assert_int_equal(buf_len(&b), 4);
    buf_view(&v, buf_data(&b), 4);
    buf_rollback(&v, 0); /* a read-only view is never changed */
    assert_int_equal(buf_len(&v), 4);
    buf_free(&b);
}

static void test_peek_does_not_move(void **state)
{
    static const uint8_t data[] = {0, 0, 1, 0, 5};
    struct buf b;
    uint32_t v;
    const uint8_t *p;
    (void)state;

    buf_view(&b, data, sizeof(data));
    assert_ok(buf_peek_u32(&b, &v));
    assert_int_equal(v, 256);
    assert_int_equal(buf_rpos(&b), 0);
    assert_ok(buf_skip(&b, 2));
    assert_err(buf_peek_u32(&b, &v), ERR_BUF_SHORT);
    assert_ok(buf_peek_ptr(&b, 3, &p));
    assert_int_equal(p[2], 5);
    buf_rewind(&b);
    assert_int_equal(buf_rpos(&b), 0);
}

static void test_hex_codec(void **state)
{
    struct buf b;
    char out[16];
    (void)state;

    assert_ok(buf_alloc(&b, 0, 16));
    assert_ok(buf_write_hex(&b, "00fFa5"));
    assert_int_equal(buf_len(&b), 3);
    assert_ok(hex_encode(buf_data(&b), 3, out, sizeof(out)));
    assert_string_equal(out, "00ffa5");
    /* Odd length, bad digits, spaces: refused, nothing appended. */
    assert_err(buf_write_hex(&b, "abc"), ERR_HEX);
    assert_err(buf_write_hex(&b, "zz"), ERR_HEX);
    assert_err(buf_write_hex(&b, "a "), ERR_HEX);
    assert_err(buf_write_hex(&b, "0x"), ERR_HEX);
    assert_int_equal(buf_len(&b), 3);
    /* Output too small for 2n+1. */
    assert_err(hex_encode(buf_data(&b), 3, out, 6), ERR_BUF_LIMIT);
    assert_ok(hex_encode(buf_data(&b), 0, out, 1));
    assert_string_equal(out, "");
    buf_free(&b);
}

static void test_secret_buffer_grows_in_secret_memory(void **state)
{
    struct buf b;
    struct secret_stats before, during, after;
    uint8_t key[32];
    (void)state;

    memset(key, 0x77, sizeof(key));
    secret_get_stats(&before);
    assert_ok(buf_alloc_secret(&b, 16, 8192));
    /* Growth copies into new secret memory and releases the old. */
    for (int i = 0; i < 100; i++)
        assert_ok(buf_write_bytes(&b, key, sizeof(key)));
    secret_get_stats(&during);
    assert_int_equal(during.live_allocations, before.live_allocations + 1);
    assert_true(secret_size(buf_data(&b)) >= 3200);
    for (size_t i = 0; i < buf_len(&b); i++)
        assert_int_equal(buf_data(&b)[i], 0x77);
    buf_free(&b);
    secret_get_stats(&after);
    assert_int_equal(after.live_allocations, before.live_allocations);
}

static void test_reset_wipes_owned_memory(void **state)
{
    struct buf b;
    (void)state;
    assert_ok(buf_alloc(&b, 32, 32));
    assert_ok(buf_write_u32(&b, 0xffffffff));
    const uint8_t *p = buf_data(&b);
    buf_reset(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(p[0], 0); /* same memory, now zero */
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_endian_round_trip),
        cmocka_unit_test(test_short_read_does_not_advance),
        cmocka_unit_test(test_huge_lengths_are_refused),
        cmocka_unit_test(test_sub_view_is_bounded_and_read_only),
        cmocka_unit_test(test_view_is_read_only),
        cmocka_unit_test(test_fixed_buffer_limit),
        cmocka_unit_test(test_growable_buffer_limit),
        cmocka_unit_test(test_alloc_refuses_bad_limits),
        cmocka_unit_test(test_patch_and_truncate),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_peek_does_not_move),
        cmocka_unit_test(test_hex_codec),
        cmocka_unit_test(test_secret_buffer_grows_in_secret_memory),
        cmocka_unit_test(test_reset_wipes_owned_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
