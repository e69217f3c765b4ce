/* Tests of the result type, the error table and the guard macros. */
#include "test_util.h"

#include <errno.h>
#include <string.h>

static vs_result fails_with(enum err_code code)
{
    ENSURE(false, code);
    return OK_RESULT;
}

static int guard_reached_end;

static vs_result guarded(enum err_code inner)
{
    GUARD(inner == ERR_OK ? OK_RESULT : fails_with(inner));
    guard_reached_end = 1;
    return OK_RESULT;
}

static int cleanup_ran;

static vs_result single_exit(bool fail_first)
{
    vs_result rc = OK_RESULT;
    GUARD_OUT(fail_first ? RAISE(ERR_IO) : OK_RESULT);
    ENSURE_OUT(false, ERR_NOT_FOUND);
out:
    cleanup_ran++;
    return rc;
}

static void test_every_code_has_a_message_and_name(void **state)
{
    (void)state;
    for (int c = 0; c < ERR_COUNT_; c++) {
        assert_non_null(err_message((enum err_code)c));
        assert_true(strlen(err_message((enum err_code)c)) > 3);
        assert_true(strncmp(err_name((enum err_code)c), "ERR_", 4) == 0);
        /* Names are unique. */
        for (int d = 0; d < c; d++)
            assert_string_not_equal(err_name((enum err_code)c), err_name((enum err_code)d));
    }
    assert_string_equal(err_name(ERR_BUF_SHORT), "ERR_BUF_SHORT");
    assert_string_equal(err_message(ERR_OK), "success");
    /* Out of range is answered, not a crash. */
    assert_string_equal(err_name((enum err_code) - 1), "ERR_UNKNOWN");
    assert_string_equal(err_message(ERR_COUNT_), "unknown error");
}

static void test_ensure_records_file_and_line(void **state)
{
    (void)state;
    err_clear();
    int line = __LINE__ + 1;
    vs_result r = RAISE(ERR_AUTH);
    assert_int_equal(r.code, ERR_AUTH);
    assert_int_equal(err_last()->code, ERR_AUTH);
    assert_int_equal(err_last()->line, line);
    assert_string_equal(err_last()->file, "tests/unit/test_result.c");

    r = fails_with(ERR_TOO_LARGE);
    assert_int_equal(r.code, ERR_TOO_LARGE);
    assert_string_equal(err_last()->file, "tests/unit/test_result.c");
    assert_true(err_last()->line < line); /* raised inside fails_with */
}

static void test_guard_propagates_and_stops(void **state)
{
    (void)state;
    guard_reached_end = 0;
    assert_int_equal(guarded(ERR_IO).code, ERR_IO);
    assert_int_equal(guard_reached_end, 0);
    assert_true(is_ok(guarded(ERR_OK)));
    assert_int_equal(guard_reached_end, 1);
}

static void test_single_exit_runs_cleanup(void **state)
{
    (void)state;
    cleanup_ran = 0;
    assert_int_equal(single_exit(true).code, ERR_IO);
    assert_int_equal(single_exit(false).code, ERR_NOT_FOUND);
    assert_int_equal(cleanup_ran, 2);
}

static void test_detail_and_format(void **state)
{
    char out[256];
    (void)state;

    RAISE(ERR_CONFIG_VALUE);
    err_detail("kms.conf:%d: bad", 12);
    err_format(out, sizeof(out));
    assert_non_null(strstr(out, "invalid value in configuration file: kms.conf:12: bad"));
    assert_non_null(strstr(out, "(tests/unit/test_result.c:"));

    RAISE(ERR_IO);
    err_errno(ENOENT);
    err_format(out, sizeof(out));
    assert_non_null(strstr(out, "No such file or directory"));
    assert_int_equal(err_last()->detail[0], '\0'); /* a new error clears the old detail */

    /* A tiny output buffer is truncated, still terminated. */
    char tiny[8];
    err_format(tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 7);
}

static void test_detail_is_bounded(void **state)
{
    char big[1000];
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    RAISE(ERR_IO);
    err_detail("%s", big);
    assert_int_equal(strlen(err_last()->detail), sizeof(err_last()->detail) - 1);
}

static vs_result checked_add(size_t a, size_t b, size_t *out)
{
    ENSURE_ADD(a, b, out);
    return OK_RESULT;
}

static vs_result checked_mul(size_t a, size_t b, size_t *out)
{
    ENSURE_MUL(a, b, out);
    return OK_RESULT;
}

static void test_overflow_checks(void **state)
{
    size_t out = 7;
    (void)state;
    assert_ok(checked_add(SIZE_MAX - 1, 1, &out));
    assert_true(out == SIZE_MAX);
    assert_err(checked_add(SIZE_MAX, 1, &out), ERR_OVERFLOW);
    assert_ok(checked_mul(SIZE_MAX / 2, 2, &out));
    assert_err(checked_mul(SIZE_MAX / 2 + 1, 2, &out), ERR_OVERFLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_message_and_name),
        cmocka_unit_test(test_ensure_records_file_and_line),
        cmocka_unit_test(test_guard_propagates_and_stops),
        cmocka_unit_test(test_single_exit_runs_cleanup),
        cmocka_unit_test(test_detail_and_format),
        cmocka_unit_test(test_detail_is_bounded),
        cmocka_unit_test(test_overflow_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
