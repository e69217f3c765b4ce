/* Tests of structured logging: format, escaping, levels, bounds. */
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static int pipe_fds[2];
static char got[LOG_LINE_MAX * 2];

static int setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) != 0)
        return -1;
    log_set_fd(pipe_fds[1]);
    log_set_timestamps(false);
    log_set_level(LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_fd(2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Reads what was logged since the last call (the pipe never blocks here:
 * each test writes less than the pipe holds). */
static const char *drain(void)
{
    ssize_t n;
    close(pipe_fds[1]);
    n = read(pipe_fds[0], got, sizeof(got) - 1);
    got[n < 0 ? 0 : n] = '\0';
    close(pipe_fds[0]);
    assert_int_equal(pipe(pipe_fds), 0);
    log_set_fd(pipe_fds[1]);
    return got;
}

static void test_format(void **state)
{
    (void)state;
    log_info("listening", LOG_S("addr", "127.0.0.1"), LOG_I("port", 5696), LOG_U("n", 7));
    assert_string_equal(drain(), "level=info msg=listening addr=127.0.0.1 port=5696 n=7\n");
    log_warn("no fields");
    assert_string_equal(drain(), "level=warn msg=\"no fields\"\n");
    log_error("neg", LOG_I("v", -42), LOG_S("empty", ""), LOG_S("null", NULL));
    assert_string_equal(drain(), "level=error msg=neg v=-42 empty=\"\" null=(null)\n");
}

static void test_timestamp(void **state)
{
    (void)state;
    log_set_timestamps(true);
    log_info("t");
    const char *l = drain();
    log_set_timestamps(false);
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_int_equal(strncmp(l, "ts=", 3), 0);
    assert_int_equal(l[13], 'T');
    assert_int_equal(l[26], 'Z');
    assert_non_null(strstr(l, " level=info msg=t\n"));
}

static void test_escaping_cannot_forge_lines_or_fields(void **state)
{
    (void)state;
    log_info("x", LOG_S("user", "bob\nlevel=error msg=forged"));
    assert_string_equal(drain(), "level=info msg=x user=\"bob\\nlevel=error msg=forged\"\n");
    log_info("x", LOG_S("q", "a\"b\\c"), LOG_S("ctl", "\x01\x7f\xc3\xa9\t\r"));
    assert_string_equal(drain(),
                        "level=info msg=x q=\"a\\\"b\\\\c\" ctl=\"\\x01\\x7f\\xc3\\xa9\\t\\r\"\n");
    log_info("x", LOG_S("eq", "a=b"));
    assert_string_equal(drain(), "level=info msg=x eq=\"a=b\"\n");
    /* Keys are sanitised too. */
    log_info("x", LOG_S("bad key\n", "v"));
    assert_string_equal(drain(), "level=info msg=x bad_key_=v\n");
}

static void test_levels(void **state)
{
    enum log_level l;
    (void)state;

    log_set_level(LOG_WARN);
    log_info("hidden");
    log_debug("hidden");
    log_warn("shown");
    assert_string_equal(drain(), "level=warn msg=shown\n");
    log_set_level(LOG_OFF);
    log_error("hidden");
    assert_string_equal(drain(), "");
    log_set_level(LOG_DEBUG);
    log_debug("d");
    assert_string_equal(drain(), "level=debug msg=d\n");
    log_set_level(LOG_INFO);

    assert_ok(log_parse_level("warn", &l));
    assert_int_equal(l, LOG_WARN);
    assert_ok(log_parse_level("off", &l));
    assert_int_equal(l, LOG_OFF);
    assert_err(log_parse_level("WARN", &l), ERR_INVALID_ARG);
    assert_err(log_parse_level("verbose", &l), ERR_INVALID_ARG);
    assert_err(log_parse_level("", &l), ERR_INVALID_ARG);
}

static void test_last_error_field(void **state)
{
    (void)state;
    RAISE(ERR_AUTH);
    err_detail("object %s", "42");
    int line = __LINE__ - 2;
    log_error("open failed", LOG_ERR());
    char want[256];
    snprintf(want, sizeof(want),
             "level=error msg=\"open failed\" error=\"authentication failed: wrong key or "
             "tampered data: object 42\" error_code=ERR_AUTH at=tests/unit/test_log.c:%d\n",
             line);
    assert_string_equal(drain(), want);
}

static void test_long_lines_are_truncated_and_terminated(void **state)
{
    static char big[LOG_LINE_MAX * 2];
    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[100] = ' '; /* forces quoting, so truncation must close the quote */
    log_info("big", LOG_S("v", big), LOG_S("after", "x"));
    const char *l = drain();
    size_t n = strlen(l);
    assert_true(n <= LOG_LINE_MAX);
    assert_int_equal(l[n - 1], '\n');
    assert_string_equal(l + n - 17, "\" truncated=true\n");
    assert_ptr_equal(strchr(l, '\n'), l + n - 1); /* one line only */
}

static void test_truncation_closes_the_open_quote(void **state)
{
    static char big[LOG_LINE_MAX * 2];
    (void)state;
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[10] = ' ';
    RAISE(ERR_IO);
    /* Quoted fields after the truncation point must not reopen anything. */
    log_info("big", LOG_S("v", big), LOG_S("q", "has space"), LOG_ERR());
    const char *l = drain();
    size_t n = strlen(l);
    assert_string_equal(l + n - 17, "\" truncated=true\n");
    size_t quotes = 0;
    for (const char *p = l; *p; p++)
        quotes += *p == '"';
    assert_int_equal(quotes % 2, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_cannot_forge_lines_or_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_error_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines_are_truncated_and_terminated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_truncation_closes_the_open_quote, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
