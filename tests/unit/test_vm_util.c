/*
 * Tests of the vm room's small helpers (src/vm/vmutil.c): names, UUIDs and
 * times as descriptors hold them, strict base64 (RFC 4648 §4 vectors, and
 * every way a text can be non-canonical), bounded paths.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#include "vm/vmutil.h"

/* --- names ---------------------------------------------------------------- */

static void test_name_valid(void **state)
{
    static const char *const ok[] = {"a",
                                     "Z",
                                     "0",
                                     "web1",
                                     "A-b_c.d",
                                     "a..b",
                                     "a-",
                                     "x.",
                                     "0123456789012345678901234567890123456789012345678901234567"
                                     "89012", /* 63 */
                                     NULL};
    (void)state;
    for (size_t i = 0; ok[i] != NULL; i++)
        assert_ok(vm_check_name("VM", ok[i]));
}

static void test_name_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        ".",
        "..",
        ".a",
        "-a",
        "a/b",
        "/a",
        "a/",
        "../a",
        "a b",
        "a\tb",
        "a\nb",
        "a,b",
        "a:b",
        "a%2fb",
        "a\\b",
        "caf\xc3\xa9",
        "a*",
        "a?",
        "~a",
        "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
        NULL};
    (void)state;
    for (size_t i = 0; bad[i] != NULL; i++) {
        assert_err(vm_check_name("VM", bad[i]), ERR_INVALID_ARG);
        /* The detail names what was checked, for the person reading it. */
        assert_non_null(strstr(err_last()->detail, "VM name"));
    }
}

/* --- UUIDs and times -------------------------------------------------------- */

static void test_uuid_new(void **state)
{
    char a[VM_UUID_LEN + 1], b[VM_UUID_LEN + 1];
    (void)state;
    assert_ok(vm_uuid_new(a));
    assert_ok(vm_uuid_new(b));
    assert_int_equal(strlen(a), VM_UUID_LEN);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < VM_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    /* RFC 9562 §5.4: version 4, variant 10. */
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_true(vm_is_uuid(a));
    assert_true(vm_is_uuid(b));
}

static void test_uuid_shape(void **state)
{
    static const char *const bad[] = {
        "",
        "4c4c4544-0031-3410-8056-b4c04f4e373",   /* short */
        "4c4c4544-0031-3410-8056-b4c04f4e37322", /* long */
        "4C4C4544-0031-3410-8056-B4C04F4E3732",  /* upper case: we write lower case */
        "4c4c4544-0031-3410-8056_b4c04f4e3732",
        "4c4c45440-031-3410-8056-b4c04f4e3732",
        "4c4c4544-0031-3410-8056-b4c04f4e373g",
        "../../../../../../../../../../../etc", /* 36 characters */
        "4c4c4544/0031-3410-8056-b4c04f4e3732",
        NULL};
    (void)state;
    assert_true(vm_is_uuid("4c4c4544-0031-3410-8056-b4c04f4e3732"));
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (vm_is_uuid(bad[i]))
            fail_msg("accepted as a UUID: '%s'", bad[i]);
    }
}

static void test_time(void **state)
{
    char now[VM_TIME_LEN];
    static const char *const bad[] = {"",
                                      "2026-11-23T10:00:00",
                                      "2026-11-23 10:00:00Z",
                                      "2026-11-23T10:00:00z",
                                      "2026-11-23T10:00:00Z ",
                                      "20261-1-23T10:00:00Z",
                                      "2026-11-2aT10:00:00Z",
                                      "2026-13-23T10:00:00Z",
                                      "2026-11-32T10:00:00Z",
                                      "2026-11-23T24:00:00Z",
                                      "2026-11-23T10:60:00Z",
                                      NULL};
    (void)state;
    vm_time_now(now);
    assert_int_equal(strlen(now), VM_TIME_LEN - 1);
    assert_true(vm_is_time(now));
    assert_true(vm_is_time("2026-11-23T10:00:00Z"));
    assert_true(vm_is_time("1999-01-01T00:00:60Z")); /* a leap second */
    for (size_t i = 0; bad[i] != NULL; i++) {
        if (vm_is_time(bad[i]))
            fail_msg("accepted as a time: '%s'", bad[i]);
    }
}

/* --- base64 ----------------------------------------------------------------- */

/* RFC 4648 §10 test vectors. */
static const struct {
    const char *plain, *b64;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_b64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        struct buf e, d;
        assert_ok(buf_alloc(&e, 0, 64));
        assert_ok(vm_b64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain), &e));
        /* The NUL is counted. */
        assert_int_equal(buf_len(&e), strlen(rfc4648[i].b64) + 1);
        assert_string_equal((const char *)buf_data(&e), rfc4648[i].b64);
        assert_ok(buf_alloc(&d, 0, 64));
        assert_ok(vm_b64_decode(rfc4648[i].b64, &d));
        assert_int_equal(buf_len(&d), strlen(rfc4648[i].plain));
        assert_memory_equal(buf_data(&d), rfc4648[i].plain, buf_len(&d));
        buf_free(&e);
        buf_free(&d);
    }
}

static void test_b64_binary_round_trip(void **state)
{
    uint8_t data[256];
    (void)state;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(255 - i);
    for (size_t len = 0; len <= sizeof data; len += 1 + len / 7) {
        struct buf e, d;
        assert_ok(buf_alloc(&e, 0, 1024));
        assert_ok(buf_alloc(&d, 0, 1024));
        assert_ok(vm_b64_encode(data, len, &e));
        assert_ok(vm_b64_decode((const char *)buf_data(&e), &d));
        assert_int_equal(buf_len(&d), len);
        if (len > 0)
            assert_memory_equal(buf_data(&d), data, len);
        buf_free(&e);
        buf_free(&d);
    }
}

static void test_b64_refused(void **state)
{
    static const char *const bad[] = {"Zg",       /* padding missing */
                                      "Zg=",      /* padding short */
                                      "Zm9",      /* not a multiple of 4 */
                                      "Z===",     /* three pads */
                                      "====",     /* only padding */
                                      "Zg==Zg==", /* padding in the middle */
                                      "Zg=a",     /* data after padding */
                                      "Z=g=",     /* pad between data */
                                      " Zg==",    /* whitespace */
                                      "Zg==\n",   /* a newline */
                                      "Zm9v\r\n", /* CRLF */
                                      "Zm 9v",    /* inner space */
                                      "Zm9-",     /* base64url alphabet */
                                      "Zm9_",     /* base64url alphabet */
                                      "Zm9!",     /* not base64 at all */
                                      "Zm9v\x80YmFy",
                                      /* RFC 4648 §3.5: the bits after the last byte must be zero; a
                                       * canonical encoder never writes these, and a strict decoder
                                       * keeps one text per value. */
                                      "Zh==", /* "f" with a stray bit */
                                      "Zm9=", /* "fo" with stray bits ("Zm8=" is canonical) */
                                      "Zm9vYh==", NULL};
    (void)state;
    for (size_t i = 0; bad[i] != NULL; i++) {
        struct buf d;
        assert_ok(buf_alloc(&d, 0, 64));
        assert_ok(buf_write_bytes(&d, "keep", 4));
        vs_result r = vm_b64_decode(bad[i], &d);
        if (r.code != ERR_INVALID_ARG)
            fail_msg("'%s': expected ERR_INVALID_ARG, got %s", bad[i], err_name(r.code));
        /* Nothing is appended on failure. */
        assert_int_equal(buf_len(&d), 4);
        buf_free(&d);
    }
}

static void test_b64_decode_bounded(void **state)
{
    uint8_t mem[3];
    struct buf d;
    (void)state;
    buf_wrap(&d, mem, sizeof mem);
    assert_ok(vm_b64_decode("Zm9v", &d));
    assert_int_equal(buf_len(&d), 3);
    buf_wrap(&d, mem, 2);
    assert_false(is_ok(vm_b64_decode("Zm9v", &d)));
    assert_int_equal(buf_len(&d), 0);
    /* "Zm8=" decodes to 2 bytes but needs room for 3 while decoding:
     * refused in a 2-byte buffer rather than written past it. */
    buf_wrap(&d, mem, 2);
    vs_result r = vm_b64_decode("Zm8=", &d);
    if (is_ok(r))
        assert_int_equal(buf_len(&d), 2);
    else
        assert_int_equal(buf_len(&d), 0);
    err_clear();
}

static void test_b64_encode_limit(void **state)
{
    struct buf e;
    static uint8_t big[(1u << 20) + 1];
    (void)state;
    assert_ok(buf_alloc(&e, 0, 2u << 20));
    assert_err(vm_b64_encode(big, sizeof big, &e), ERR_TOO_LARGE);
    assert_int_equal(buf_len(&e), 0);
    /* An output buffer too small: refused, nothing written. */
    buf_free(&e);
    assert_ok(buf_alloc(&e, 0, 4));
    assert_false(is_ok(vm_b64_encode("foo", 3, &e))); /* needs 4 + NUL */
    assert_int_equal(buf_len(&e), 0);
    buf_free(&e);
    err_clear();
}

/* --- paths ------------------------------------------------------------------ */

static void test_path(void **state)
{
    char out[8];
    (void)state;
    assert_ok(vm_path(out, sizeof out, "%s/%s", "ab", "cdef")); /* 7 + NUL */
    assert_string_equal(out, "ab/cdef");
    assert_err(vm_path(out, sizeof out, "%s/%s", "ab", "cdefg"), ERR_TOO_LARGE);
    assert_err(vm_path(out, 1, "%s", "a"), ERR_TOO_LARGE);
    assert_ok(vm_path(out, 1, "%s", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_uuid_new),
        cmocka_unit_test(test_uuid_shape),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_binary_round_trip),
        cmocka_unit_test(test_b64_refused),
        cmocka_unit_test(test_b64_decode_bounded),
        cmocka_unit_test(test_b64_encode_limit),
        cmocka_unit_test(test_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
