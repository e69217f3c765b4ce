/* Tests of the INI loader: typed getters, and errors that name file, line
 * and key. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/file.h"

static const char sample[] = "; vmseal-kms configuration\n"
                             "top = level\n"
                             "\n"
                             "[server]\n"
                             "listen = 127.0.0.1:5696   ; inline comment\n"
                             "max_message_size = 1M\n"
                             "workers = 4\n"
                             "offset = -17\n"
                             "tls13_only = yes\n"
                             "idle_timeout = 30s\n"
                             "handshake_timeout = 250ms\n"
                             "\n"
                             "[store]\n"
                             "path = /var/lib/vmseal/kms.db\n";

static void test_typed_getters(void **state)
{
    struct config *c = NULL;
    const char *s;
    int64_t i;
    uint64_t u;
    bool b;
    (void)state;

    assert_ok(config_parse("kms.conf", sample, &c));
    assert_ok(config_get_str(c, "", "top", NULL, &s));
    assert_string_equal(s, "level");
    assert_ok(config_get_str(c, "server", "listen", NULL, &s));
    assert_string_equal(s, "127.0.0.1:5696");
    assert_ok(config_get_size(c, "server", "max_message_size", 0, 1024, 64 << 20, &u));
    assert_int_equal(u, 1 << 20);
    assert_ok(config_get_int(c, "server", "workers", 2, 1, 64, &i));
    assert_int_equal(i, 4);
    assert_ok(config_get_int(c, "server", "offset", 0, -100, 100, &i));
    assert_int_equal(i, -17);
    assert_ok(config_get_bool(c, "server", "tls13_only", false, &b));
    assert_true(b);
    assert_ok(config_get_duration_ms(c, "server", "idle_timeout", 0, 0, 3600000, &u));
    assert_int_equal(u, 30000);
    assert_ok(config_get_duration_ms(c, "server", "handshake_timeout", 0, 0, 3600000, &u));
    assert_int_equal(u, 250);
    assert_ok(config_get_str(c, "store", "path", NULL, &s));
    assert_string_equal(s, "/var/lib/vmseal/kms.db");
    assert_true(config_has(c, "store", "path"));
    assert_false(config_has(c, "server", "path"));

    /* Absent keys give the default. */
    assert_ok(config_get_str(c, "server", "missing", "dflt", &s));
    assert_string_equal(s, "dflt");
    assert_ok(config_get_int(c, "nosection", "workers", 9, 1, 64, &i));
    assert_int_equal(i, 9);
    assert_ok(config_get_bool(c, "server", "missing", true, &b));
    assert_true(b);
    config_free(&c);
    assert_null(c);
    config_free(&c);
    config_free(NULL);
}

/* Parses one [s] k = value and expects the getter to refuse it with a
 * message that names file, line, section and key. */
static void expect_bad_int(const char *value, int64_t min, int64_t max)
{
    char text[256];
    struct config *c = NULL;
    int64_t i = 12345;

    snprintf(text, sizeof(text), "[s]\n\nk = %s\n", value);
    assert_ok(config_parse("t.conf", text, &c));
    assert_err(config_get_int(c, "s", "k", 0, min, max, &i), ERR_CONFIG_VALUE);
    assert_int_equal(i, 12345);
    assert_non_null(strstr(err_last()->detail, "t.conf:3: [s] k: expected an integer from"));
    config_free(&c);
}

static void test_bad_values(void **state)
{
    struct config *c = NULL;
    uint64_t u;
    bool b;
    (void)state;

    expect_bad_int("abc", 0, 10);
    expect_bad_int("", 0, 10);
    expect_bad_int("11", 0, 10);
    expect_bad_int("-1", 0, 10);
    expect_bad_int("5x", 0, 10);
    expect_bad_int("+5", 0, 10);
    expect_bad_int("0x10", 0, 100);
    expect_bad_int("99999999999999999999", INT64_MIN, INT64_MAX);
    expect_bad_int("-9223372036854775809", INT64_MIN, INT64_MAX);

    int64_t i;
    assert_ok(config_parse("t.conf", "[s]\nk = -9223372036854775808\n", &c));
    assert_ok(config_get_int(c, "s", "k", 0, INT64_MIN, INT64_MAX, &i));
    assert_true(i == INT64_MIN);
    config_free(&c);

    assert_ok(
        config_parse("t.conf", "[s]\nsize = 64T\nb = maybe\nd = 5 days\nbig = 99999999999G\n", &c));
    assert_err(config_get_size(c, "s", "size", 0, 0, UINT64_MAX, &u), ERR_CONFIG_VALUE);
    assert_string_equal(
        err_last()->detail,
        "t.conf:2: [s] size: expected a size from 0 to 18446744073709551615 (a number with an "
        "optional K, M or G suffix), got \"64T\"");
    assert_err(config_get_bool(c, "s", "b", false, &b), ERR_CONFIG_VALUE);
    assert_non_null(strstr(err_last()->detail, "t.conf:3: [s] b: expected true or false"));
    assert_err(config_get_duration_ms(c, "s", "d", 0, 0, UINT64_MAX, &u), ERR_CONFIG_VALUE);
    assert_non_null(strstr(err_last()->detail, "t.conf:4: [s] d:"));
    assert_err(config_get_size(c, "s", "big", 0, 0, UINT64_MAX, &u), ERR_CONFIG_VALUE);
    config_free(&c);

    /* Sizes out of range name the range in units. */
    assert_ok(config_parse("t.conf", "[s]\nmax = 2K\n", &c));
    assert_err(config_get_size(c, "s", "max", 0, 4096, 64 << 20, &u), ERR_CONFIG_VALUE);
    assert_non_null(strstr(err_last()->detail, "expected a size from 4K to 64M"));
    config_free(&c);
}

static void test_syntax_errors(void **state)
{
    struct config *c = (struct config *)1;
    char longline[CONFIG_LINE_MAX + 40];
    (void)state;

    assert_err(config_parse("a.conf", "[s]\nok = 1\nthis line has no equals sign\n", &c),
               ERR_CONFIG_SYNTAX);
    assert_null(c);
    assert_non_null(strstr(err_last()->detail, "a.conf:3: expected"));

    assert_err(config_parse("a.conf", "[unterminated\nk = v\n", &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "a.conf:1:"));

    assert_err(config_parse("a.conf", "[s]\nk = 1\n\nk = 2\n", &c), ERR_CONFIG_DUPLICATE);
    assert_string_equal(err_last()->detail, "a.conf:4: [s] k: set again (first set at line 2)");

    /* The same key in two sections is not a duplicate. */
    assert_ok(config_parse("a.conf", "[a]\nk = 1\n[b]\nk = 2\n", &c));
    config_free(&c);

    memset(longline, 'x', sizeof(longline) - 1);
    longline[0] = 'k';
    longline[1] = '=';
    longline[sizeof(longline) - 1] = '\0';
    assert_err(config_parse("a.conf", longline, &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "a.conf:1: line longer than"));
}

static void test_line_rules(void **state)
{
    struct config *c = NULL;
    char text[CONFIG_LINE_MAX + 64];
    const char *v;
    (void)state;

    /* Exactly CONFIG_LINE_MAX characters is accepted, one more is not. */
    memcpy(text, "[s]\nk = ", 8);
    memset(text + 8, 'v', CONFIG_LINE_MAX - 4);
    memcpy(text + 8 + CONFIG_LINE_MAX - 4, "\n", 2);
    assert_ok(config_parse("l.conf", text, &c));
    assert_ok(config_get_str(c, "s", "k", NULL, &v));
    assert_int_equal(strlen(v), CONFIG_LINE_MAX - 4);
    config_free(&c);
    memcpy(text + 8 + CONFIG_LINE_MAX - 4, "v\n", 3);
    assert_err(config_parse("l.conf", text, &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "l.conf:2: line longer than 1024 characters"));

    /* CRLF line endings are fine. */
    assert_ok(config_parse("l.conf", "[s]\r\nk = v\r\n", &c));
    assert_ok(config_get_str(c, "s", "k", NULL, &v));
    assert_string_equal(v, "v");
    config_free(&c);
    /* CR-only line endings would read as one line: refused. */
    assert_err(config_parse("l.conf", "[s]\rk = v\r", &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "l.conf:1: carriage return"));
    /* An indented line would become a continuation of the previous value. */
    assert_err(config_parse("l.conf", "[s]\nk = v\n  other = w\n", &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "l.conf:3: indented line"));
    /* A setting on the section line would be dropped. */
    assert_err(config_parse("l.conf", "[s] k = v\n", &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "l.conf:1: text after"));
    assert_ok(config_parse("l.conf", "[s]   ; comment\nk = v\n", &c));
    config_free(&c);
    /* Long section names would be cut and could merge. */
    assert_err(config_parse("l.conf", "[sssssssssssssssssssssssssssssssssssssssssssssssss]\n", &c),
               ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "section name longer than 48"));
    /* The earliest error is the one reported: a syntax error on line 2
     * before a duplicate on line 4. */
    assert_err(config_parse("l.conf", "[s]\nnonsense\nk = 1\nk = 2\n", &c), ERR_CONFIG_SYNTAX);
    assert_non_null(strstr(err_last()->detail, "l.conf:2:"));
    /* Indented comments and blank lines with spaces are fine. */
    assert_ok(config_parse("l.conf", "  ; note\n   \n[s]\nk = v\n", &c));
    config_free(&c);
}

static void test_unknown_keys(void **state)
{
    static const struct config_key known[] = {
        {"server", "listen"}, {"server", "workers"}, {"store", "path"}, {NULL, NULL}};
    struct config *c = NULL;
    (void)state;

    assert_ok(config_parse("k.conf", "[server]\nlisten = x\n[store]\npath = y\n", &c));
    assert_ok(config_check_keys(c, known));
    config_free(&c);
    assert_ok(config_parse("k.conf", "[server]\nlisten = x\nworkres = 4\n", &c));
    assert_err(config_check_keys(c, known), ERR_CONFIG_UNKNOWN);
    assert_string_equal(err_last()->detail, "k.conf:3: [server] workres: unknown option");
    config_free(&c);
    /* A known key in the wrong section is unknown there. */
    assert_ok(config_parse("k.conf", "[store]\nlisten = x\n", &c));
    assert_err(config_check_keys(c, known), ERR_CONFIG_UNKNOWN);
    config_free(&c);
}

static void test_load_file(void **state)
{
    char dir[] = "/tmp/vmseal-test-config-XXXXXX", path[128];
    struct config *c = NULL;
    const char *s;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/kms.conf", dir);
    assert_err(config_load(path, &c), ERR_NOT_FOUND);
    assert_ok(file_write_atomic(path, sample, strlen(sample), 0600));
    assert_ok(config_load(path, &c));
    assert_ok(config_get_str(c, "server", "listen", NULL, &s));
    assert_string_equal(s, "127.0.0.1:5696");
    config_free(&c);

    /* Errors name the path as given. */
    assert_ok(file_write_atomic(path, "[s]\nk = v\nk = w\n", 16, 0600));
    assert_err(config_load(path, &c), ERR_CONFIG_DUPLICATE);
    assert_non_null(strstr(err_last()->detail, "kms.conf:3:"));
    assert_int_equal(strncmp(err_last()->detail, dir, strlen(dir)), 0);

    /* A NUL byte inside is refused, not silently cut. */
    assert_ok(file_write_atomic(path, "[s]\nk = v\0x = y\n", 16, 0600));
    assert_err(config_load(path, &c), ERR_CONFIG_SYNTAX);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_getters), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_line_rules),
        cmocka_unit_test(test_unknown_keys),  cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
