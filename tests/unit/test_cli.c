/* Tests of the vmseal CLI's pure parts: sizes, the argument table and its
 * rules, base64, passphrase text, paths, the progress bar, tables, JSON
 * field checks, task parsing and the mapping of errors to messages and exit
 * codes. (The protocol against a server is tests/integration/
 * test_cli_protocol.py.) */
#include "test_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/base64.h"
#include "cli/cli.h"
#include "cli/input.h"
#include "cli/output.h"
#include "cli/run.h"
#include "cli/tokens.h"
#include "cli/transport.h"

/* --- sizes and numbers --- */

static void test_size_valid(void **state)
{
    static const struct {
        const char *text;
        uint64_t want;
    } cases[] = {
        {"1", 1},
        {"512", 512},
        {"1K", 1024},
        {"1k", 1024},
        {"10M", 10ull << 20},
        {"10G", 10ull << 30},
        {"10g", 10ull << 30},
        {"10GiB", 10ull << 30},
        {"2T", 2ull << 40},
        {"8388607T", 8388607ull << 40},                  /* the largest whole T below 2^63 */
        {"9223372036854775807", 9223372036854775807ull}, /* INT64_MAX */
        {"007", 7},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 0;
        assert_ok(cli_parse_size(cases[i].text, &v));
        assert_int_equal(v, cases[i].want);
    }
}

static void test_size_invalid(void **state)
{
    static const char *const bad[] = {"",    "12X",  "-1",  "+1", " 1",  "1 ",   "1 G",
                                      "1GB", "1Gi",  "1iB", "0",  "0G",  "1.5G", "G",
                                      "1KK", "0x10", "1e3", "K1", "1Gib"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 42;
        vs_result rc = cli_parse_size(bad[i], &v);
        if (is_ok(rc))
            fail_msg("size '%s' was accepted", bad[i]);
        assert_int_equal(rc.code, ERR_INVALID_ARG);
        assert_int_equal(v, 42); /* untouched */
    }
    /* The message says what is wrong. */
    uint64_t v;
    assert_err(cli_parse_size("12X", &v), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "unknown size suffix 'X'"));
}

static void test_size_overflow(void **state)
{
    static const char *const big[] = {
        "9223372036854775808",  /* INT64_MAX + 1 */
        "18446744073709551615", /* UINT64_MAX */
        "18446744073709551616", /* UINT64_MAX + 1: overflows the digits */
        "99999999999999999999999999",
        "8388608T", /* 2^63 */
        "8589934592G",
        "17179869184T",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        uint64_t v = 0;
        vs_result rc = cli_parse_size(big[i], &v);
        if (rc.code != ERR_OVERFLOW)
            fail_msg("size '%s': expected ERR_OVERFLOW, got %s", big[i], err_name(rc.code));
        assert_non_null(strstr(err_last()->detail, "too large"));
    }
}

static void test_uint(void **state)
{
    uint64_t v;
    (void)state;
    assert_ok(cli_parse_uint("0", 0, 10, &v));
    assert_int_equal(v, 0);
    assert_ok(cli_parse_uint("10", 0, 10, &v));
    assert_int_equal(v, 10);
    assert_err(cli_parse_uint("11", 0, 10, &v), ERR_INVALID_ARG);
    assert_err(cli_parse_uint("0", 1, 10, &v), ERR_INVALID_ARG);
    assert_err(cli_parse_uint("", 0, 10, &v), ERR_INVALID_ARG);
    assert_err(cli_parse_uint("-1", 0, 10, &v), ERR_INVALID_ARG);
    assert_err(cli_parse_uint("1a", 0, 10, &v), ERR_INVALID_ARG);
    assert_err(cli_parse_uint("99999999999999999999", 0, 10, &v), ERR_OVERFLOW);
}

static void test_host_port(void **state)
{
    static const char *const good[] = {"kms1:5696",  "kms.example.com:5696", "10.0.0.1:1",
                                       "[::1]:5696", "[fe80::1]:65535",      "k_m-s:5696"};
    static const char *const bad[] = {
        "kms1",   ":5696",   "kms1:",    "kms1:0",     "kms1:65536", "kms 1:5696", "[::1]5696",
        "[zz]:1", "[]:5696", "kms1:56a", "kms/1:5696", "kms1:-1",    "[::1:5696"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_ok(cli_check_host_port(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (is_ok(cli_check_host_port(bad[i])))
            fail_msg("'%s' was accepted as HOST:PORT", bad[i]);
}

/* --- the argument table --- */

/* Parses a command line given as one string split on spaces. */
static vs_result parse_line(const char *line, struct cli_args *a)
{
    static char copy[2048];
    static char *argv[160];
    int argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    argv[argc++] = (char *)"vmseal";
    for (char *p = copy; *p != '\0';) {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    argv[argc] = NULL;
    return cli_parse(argc, argv, a);
}

static void expect_usage(const char *line, const char *words)
{
    struct cli_args a;
    vs_result rc = parse_line(line, &a);
    if (is_ok(rc))
        fail_msg("'%s' was accepted", line);
    if (rc.code != ERR_INVALID_ARG)
        fail_msg("'%s': expected a usage error, got %s", line, err_name(rc.code));
    if (strstr(err_last()->detail, words) == NULL)
        fail_msg("'%s': message \"%s\" does not say \"%s\"", line, err_last()->detail, words);
}

static void test_table_integrity(void **state)
{
    (void)state;
    assert_true(cli_command_count > 20);
    for (size_t k = 0; k < cli_command_count; k++) {
        const struct cli_command *c = &cli_commands[k];
        assert_non_null(c->name);
        assert_non_null(c->args);
        assert_non_null(c->synopsis);
        assert_non_null(c->summary);
        assert_non_null(c->run);
        assert_true(c->min_args <= c->max_args);
        assert_true(c->max_args <= CLI_MAX_ARGS);
        /* Every rule names options the command takes. */
        uint64_t all = c->options | CLI_GLOBAL_OPTIONS;
        assert_int_equal(c->required & ~all, 0);
        assert_int_equal(c->exactly_one & ~all, 0);
        assert_int_equal(c->at_most_one & ~all, 0);
        for (size_t n = 0; n < 2; n++) {
            assert_int_equal(c->needs[n].option & ~all, 0);
            assert_int_equal(c->needs[n].any_of & ~all, 0);
        }
        assert_ptr_equal(cli_command_find(c->name), c); /* names are unique */
    }
    for (int id = 0; id < CLI_OPT_COUNT_; id++) {
        assert_non_null(cli_options[id].spelling);
        assert_true(strncmp(cli_options[id].spelling, "--", 2) == 0);
        assert_true((cli_options[id].kind == CLI_KIND_FLAG) == (cli_options[id].metavar == NULL));
    }
}

/* Every command, with the fewest arguments and options it needs, parses;
 * with one argument less it does not. */
static void test_every_command_parses(void **state)
{
    (void)state;
    for (size_t k = 0; k < cli_command_count; k++) {
        const struct cli_command *c = &cli_commands[k];
        char line[512];
        int n = snprintf(line, sizeof(line), "%s", c->name);
        for (unsigned i = 0; i < c->min_args; i++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s",
                          i == 1 && strstr(c->args, "INDEX") ? "0" : "x1");
        for (int id = 0; id < CLI_OPT_COUNT_; id++) {
            uint64_t bit = (uint64_t)1 << id;
            bool first_of_one =
                c->exactly_one != 0 && (c->exactly_one & (bit - 1)) == 0 && (c->exactly_one & bit);
            if (!(c->required & bit) && !first_of_one)
                continue;
            const char *value = cli_options[id].kind == CLI_KIND_FLAG   ? ""
                                : cli_options[id].kind == CLI_KIND_SIZE ? " 1G"
                                : id == CLI_OPT_SERVER                  ? " kms:5696"
                                                                        : " v";
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s%s", cli_options[id].spelling,
                          value);
        }
        struct cli_args a;
        vs_result rc = parse_line(line, &a);
        if (!is_ok(rc))
            fail_msg("'%s': %s", line, err_last()->detail);
        assert_ptr_equal(a.command, c);
        assert_int_equal(a.nargs, c->min_args);
        if (c->min_args > 0) {
            /* Drop the last argument: the command must refuse. */
            char shorter[512];
            snprintf(shorter, sizeof(shorter), "%s", c->name);
            for (unsigned i = 0; i + 1 < c->min_args; i++)
                snprintf(shorter + strlen(shorter), sizeof(shorter) - strlen(shorter), " x1");
            expect_usage(shorter, "needs");
        }
    }
}

static void test_parse_values(void **state)
{
    struct cli_args a;
    (void)state;
    assert_ok(parse_line("--json vm create web1 --disk 10G --disk=512M --encrypt --provider kms "
                         "--memory 1G --cpus 2 --image ./i.raw",
                         &a));
    assert_ptr_equal(a.command, cli_command_find("vm create"));
    assert_string_equal(a.arg[0], "web1");
    assert_true(cli_has(&a, CLI_OPT_JSON));
    assert_int_equal(a.opt[CLI_OPT_DISK].count, 2);
    assert_int_equal(a.opt[CLI_OPT_DISK].number[0], 10ull << 30);
    assert_int_equal(a.opt[CLI_OPT_DISK].number[1], 512ull << 20);
    assert_string_equal(cli_str(&a, CLI_OPT_PROVIDER), "kms");
    assert_int_equal(a.opt[CLI_OPT_MEMORY].number[0], 1ull << 30);
    assert_int_equal(a.opt[CLI_OPT_CPUS].number[0], 2);
    assert_string_equal(cli_str(&a, CLI_OPT_IMAGE), "./i.raw");
    assert_false(cli_has(&a, CLI_OPT_DECRYPT));

    /* Options anywhere after the command, globals before it too. */
    assert_ok(parse_line("--socket /tmp/s vm rekey --deep web1 --json", &a));
    assert_string_equal(cli_str(&a, CLI_OPT_SOCKET), "/tmp/s");
    assert_true(cli_has(&a, CLI_OPT_DEEP));
    assert_string_equal(a.arg[0], "web1");
    assert_ok(parse_line("vm list --socket=/tmp/x", &a));
    assert_string_equal(cli_str(&a, CLI_OPT_SOCKET), "/tmp/x");

    /* The longest name wins: "vm snapshot create", not a "vm" command. */
    assert_ok(parse_line("vm snapshot revert web1 s1", &a));
    assert_ptr_equal(a.command, cli_command_find("vm snapshot revert"));
    assert_string_equal(a.arg[1], "s1");

    /* "--" ends the options. */
    assert_ok(parse_line("vm info -- -odd", &a));
    assert_string_equal(a.arg[0], "-odd");
    /* A value that starts with "--" needs the = form. */
    assert_ok(parse_line("kp backup p --to=--file", &a));
    assert_string_equal(cli_str(&a, CLI_OPT_TO), "--file");

    /* key destroy takes PROVIDER/KEYID as one argument. */
    assert_ok(parse_line("key destroy native1/0192-abc", &a));
    assert_string_equal(a.arg[0], "native1/0192-abc");

    /* --help wins over missing arguments; --version alone. */
    assert_ok(parse_line("vm create --help", &a));
    assert_true(cli_has(&a, CLI_OPT_HELP));
    assert_ok(parse_line("vm rekey -h", &a));
    assert_true(cli_has(&a, CLI_OPT_HELP));
    assert_ok(parse_line("--version", &a));
    assert_true(a.version);
    assert_null(a.command);
    assert_ok(parse_line("--help", &a));
    assert_null(a.command);
    assert_ok(parse_line("help vm create", &a));
    assert_int_equal(a.nargs, 2);
}

static void test_parse_usage_errors(void **state)
{
    (void)state;
    expect_usage("", "no command");
    expect_usage("frob", "unknown command 'frob'");
    expect_usage("vm", "'vm' needs a command");
    expect_usage("vm snapshot", "'vm snapshot' needs a command");
    expect_usage("vm frob web1", "unknown command 'vm frob'");
    expect_usage("vm list --frob", "unknown option --frob");
    expect_usage("vm list -x", "unknown option -x");
    expect_usage("vm list --encrypt", "'vmseal vm list' has no --encrypt option");
    expect_usage("--disk 1G vm create x", "--disk goes after the command");
    expect_usage("vm info", "needs NAME");
    expect_usage("vm info a b", "'b' is one too many");
    expect_usage("vm list extra", "takes no arguments");
    expect_usage("vm create x --disk", "--disk needs a value (SIZE)");
    expect_usage("vm create x --disk --encrypt", "--disk needs a value");
    expect_usage("vm create x --disk=", "not an empty string");
    expect_usage("vm create x --disk 12X", "--disk: '12X': unknown size suffix 'X'");
    expect_usage("vm create x --disk 0", "greater than zero");
    expect_usage("vm create x --memory 99999999999999999999", "--memory: ");
    expect_usage("vm create x --cpus 0", "--cpus: ");
    expect_usage("vm create x --cpus two", "--cpus: ");
    expect_usage("vm create x --image a --image b", "--image is given twice");
    expect_usage("vm create x --encrypt --encrypt", "--encrypt is given twice");
    expect_usage("vm create x --encrypt=yes", "--encrypt takes no value");
    expect_usage("vm create x --provider p", "--provider needs --encrypt");
    expect_usage("vm rekey x", "needs one of --shallow or --deep");
    expect_usage("vm rekey x --shallow --deep", "--shallow and --deep cannot be used together");
    expect_usage("vm clone a b --encrypt --decrypt", "--encrypt and --decrypt cannot be used");
    expect_usage("vm clone a b --decrypt --recrypt", "--decrypt and --recrypt cannot be used");
    expect_usage("vm clone a b --decrypt --provider p", "--provider needs --encrypt or --recrypt");
    expect_usage("vm clone a b --provider p", "--provider needs --encrypt or --recrypt");
    expect_usage("kp backup p", "needs --to FILE");
    expect_usage("kp restore", "needs --from FILE");
    expect_usage("kp add-standard p --server k:1 --ca a --cert b", "needs --key FILE");
    expect_usage("--version vm list", "--version takes no command");
    expect_usage("--json", "no command");
    /* One disk too many. */
    char line[1024] = "vm create x";
    for (int i = 0; i < CLI_MAX_REPEAT + 1; i++)
        strncat(line, " --disk 1G", sizeof(line) - strlen(line) - 1);
    expect_usage(line, "too many --disk options");
}

static void test_help(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;

    f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_ok(cli_print_help(f, NULL, 0));
    fclose(f);
    for (size_t k = 0; k < cli_command_count; k++)
        if (strstr(text, cli_commands[k].name) == NULL)
            fail_msg("vmseal help does not list '%s'", cli_commands[k].name);
    free(text);

    const char *words[] = {"vm", "rekey"};
    f = open_memstream(&text, &len);
    assert_ok(cli_print_help(f, words, 2));
    fclose(f);
    assert_non_null(strstr(text, "usage: vmseal vm rekey NAME --shallow | --deep"));
    assert_non_null(strstr(text, "--provider P"));
    assert_null(strstr(text, "--disk")); /* only its own options */
    free(text);

    const char *group[] = {"vm", "snapshot"};
    f = open_memstream(&text, &len);
    assert_ok(cli_print_help(f, group, 2));
    fclose(f);
    assert_non_null(strstr(text, "vm snapshot revert"));
    assert_null(strstr(text, "vm create"));
    free(text);

    const char *nothing[] = {"frob"};
    f = open_memstream(&text, &len);
    assert_err(cli_print_help(f, nothing, 1), ERR_NOT_FOUND);
    fclose(f);
    free(text);
}

/* --- base64 (RFC 4648 §10 test vectors) --- */

static const struct {
    const char *plain, *encoded;
} b64_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_base64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
        struct buf e, d;
        size_t plen = strlen(b64_vectors[i].plain), elen = strlen(b64_vectors[i].encoded);
        assert_ok(buf_alloc(&e, 0, 64));
        assert_ok(buf_alloc(&d, 0, 64));
        assert_ok(cli_base64_encode(b64_vectors[i].plain, plen, &e));
        assert_int_equal(buf_len(&e), elen);
        assert_memory_equal(buf_data(&e), b64_vectors[i].encoded, elen);
        assert_ok(cli_base64_decode(b64_vectors[i].encoded, elen, &d));
        assert_int_equal(buf_len(&d), plen);
        if (plen > 0)
            assert_memory_equal(buf_data(&d), b64_vectors[i].plain, plen);
        buf_free(&e);
        buf_free(&d);
    }
    /* All 256 byte values round-trip. */
    uint8_t all[256];
    struct buf e, d;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_ok(buf_alloc(&e, 0, 1024));
    assert_ok(buf_alloc(&d, 0, 1024));
    assert_ok(cli_base64_encode(all, sizeof(all), &e));
    assert_ok(cli_base64_decode((const char *)buf_data(&e), buf_len(&e), &d));
    assert_int_equal(buf_len(&d), sizeof(all));
    assert_memory_equal(buf_data(&d), all, sizeof(all));
    buf_free(&e);
    buf_free(&d);
}

static void test_base64_strict(void **state)
{
    static const char *const bad[] = {
        "Zg=",                /* not a multiple of 4 */
        "Zg",                 /* unpadded */
        "Zh==",               /* non-zero bits under the padding (RFC 4648 §3.5) */
        "Zm9=",               /* the same, one '=' */
        "Zg==Zg==",           /* padding in the middle */
        "Z===",               /* too much padding */
        "====",               /* only padding */
        "Zm9v\nYmFy",         /* a line break */
        "Zm9 ",               /* a space */
        "Zm-v",               /* the URL-safe alphabet */
        "Zm_v",       "Zg=a", /* a character after '=' */
        "=Zm9",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf d;
        assert_ok(buf_alloc(&d, 0, 64));
        assert_ok(buf_write_bytes(&d, "keep", 4));
        if (is_ok(cli_base64_decode(bad[i], strlen(bad[i]), &d)))
            fail_msg("'%s' was decoded", bad[i]);
        assert_int_equal(buf_len(&d), 4); /* nothing appended */
        buf_free(&d);
    }
    /* An encoding that does not fit the output limit leaves nothing. */
    struct buf small;
    assert_ok(buf_alloc(&small, 0, 3));
    assert_err(cli_base64_encode("foo", 3, &small), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&small), 0);
    assert_err(cli_base64_decode("Zm9vYmFy", 8, &small), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&small), 0);
    buf_free(&small);
}

/* --- passphrases, paths, files --- */

static void expect_passphrase(const char *text, size_t len, const char *want)
{
    struct buf out;
    assert_ok(buf_alloc_secret(&out, 0, CLI_PASSPHRASE_MAX));
    vs_result rc = cli_passphrase_from_text((const uint8_t *)text, len, &out);
    if (want == NULL) {
        if (is_ok(rc))
            fail_msg("passphrase text of %zu bytes was accepted", len);
        assert_int_equal(buf_len(&out), 0);
    } else {
        assert_ok(rc);
        assert_int_equal(buf_len(&out), strlen(want));
        assert_memory_equal(buf_data(&out), want, strlen(want));
    }
    buf_free(&out);
}

static void test_passphrase_text(void **state)
{
    (void)state;
    expect_passphrase("correct horse", 13, "correct horse");
    expect_passphrase("correct horse\n", 14, "correct horse");
    expect_passphrase("correct horse\r\n", 15, "correct horse");
    expect_passphrase(" spaces kept ", 13, " spaces kept ");
    expect_passphrase("", 0, NULL);
    expect_passphrase("\n", 1, NULL);
    expect_passphrase("\r\n", 2, NULL);
    expect_passphrase("one\ntwo", 7, NULL);
    expect_passphrase("one\n\n", 5, NULL);
    expect_passphrase("a\0b", 3, NULL);
}

static void test_passphrase_limits(void **state)
{
    char big[CLI_PASSPHRASE_MAX + 2];
    struct buf out;
    (void)state;
    memset(big, 'p', sizeof(big));
    assert_ok(buf_alloc_secret(&out, 0, CLI_PASSPHRASE_MAX));
    assert_ok(cli_passphrase_from_text((const uint8_t *)big, CLI_PASSPHRASE_MAX, &out));
    assert_int_equal(buf_len(&out), CLI_PASSPHRASE_MAX);
    buf_reset(&out);
    big[CLI_PASSPHRASE_MAX] = '\n';
    assert_ok(cli_passphrase_from_text((const uint8_t *)big, CLI_PASSPHRASE_MAX + 1, &out));
    buf_reset(&out);
    memset(big, 'p', sizeof(big));
    assert_err(cli_passphrase_from_text((const uint8_t *)big, CLI_PASSPHRASE_MAX + 1, &out),
               ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), 0);
    buf_free(&out);
}

static void test_passphrase_file(void **state)
{
    char dir[] = "/tmp/vmseal-test-cli-XXXXXX", path[128];
    struct buf out = {0};
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pass", dir);
    f = fopen(path, "w");
    fputs("s3cret phrase\n", f);
    fclose(f);
    assert_ok(cli_read_passphrase(path, "unused", false, &out));
    assert_int_equal(buf_len(&out), 13);
    assert_memory_equal(buf_data(&out), "s3cret phrase", 13);
    buf_free(&out);
    f = fopen(path, "w");
    fputs("two\nlines\n", f);
    fclose(f);
    assert_err(cli_read_passphrase(path, "unused", false, &out), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "one line"));
    assert_null(buf_data(&out)); /* freed on failure */
    unlink(path);
    assert_err(cli_read_passphrase(path, "unused", false, &out), ERR_NOT_FOUND);
    rmdir(dir);
}

static void test_path_absolute(void **state)
{
    char out[64];
    (void)state;
    assert_ok(cli_path_absolute("/home/u", "a.img", out, sizeof(out)));
    assert_string_equal(out, "/home/u/a.img");
    assert_ok(cli_path_absolute("/home/u/", "./a.img", out, sizeof(out)));
    assert_string_equal(out, "/home/u/a.img");
    assert_ok(cli_path_absolute("/home/u", ".//./sub/a.img", out, sizeof(out)));
    assert_string_equal(out, "/home/u/sub/a.img");
    assert_ok(cli_path_absolute("/", "a", out, sizeof(out)));
    assert_string_equal(out, "/a");
    assert_ok(cli_path_absolute("/home/u", "/abs/x.raw", out, sizeof(out)));
    assert_string_equal(out, "/abs/x.raw");
    assert_ok(cli_path_absolute("/home/u", "../x.raw", out, sizeof(out)));
    assert_string_equal(out, "/home/u/../x.raw");
    assert_err(cli_path_absolute("/home/u", "", out, sizeof(out)), ERR_INVALID_ARG);
    assert_err(cli_path_absolute("/home/u", "./", out, sizeof(out)), ERR_INVALID_ARG);
    assert_err(
        cli_path_absolute("/a/very/long/directory/name/that/goes/on", "and-on-and-on.raw", out, 40),
        ERR_TOO_LARGE);
    /* NULL: the current directory. */
    char cwd[512], want[600];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    char big[600];
    assert_ok(cli_path_absolute(NULL, "f", big, sizeof(big)));
    snprintf(want, sizeof(want), "%s%sf", cwd, strcmp(cwd, "/") == 0 ? "" : "/");
    assert_string_equal(big, want);
}

static void test_file_create(void **state)
{
    char dir[] = "/tmp/vmseal-test-cli-XXXXXX", path[128], link[128];
    struct stat st;
    int fd;
    (void)state;
    umask(022);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/backup", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    assert_ok(cli_file_create(path, &fd));
    assert_ok(cli_file_finish(path, fd, "data", 4));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 4);
    /* Never replaced, never followed through a link. */
    assert_err(cli_file_create(path, &fd), ERR_EXISTS);
    assert_int_equal(symlink(path, link), 0);
    assert_err(cli_file_create(link, &fd), ERR_EXISTS);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4);
    unlink(link);
    unlink(path);
    rmdir(dir);
}

/* --- output --- */

static void test_progress_format(void **state)
{
    char line[128];
    (void)state;
    assert_string_equal(cli_progress_format("encrypt web1", 42, 10, line, sizeof(line)),
                        "encrypt web1 [####      ] 42%");
    assert_string_equal(cli_progress_format("encrypt web1", 0, 10, line, sizeof(line)),
                        "encrypt web1 [          ] 0%");
    assert_string_equal(cli_progress_format("x", 100, 10, line, sizeof(line)),
                        "x [##########] 100%");
    assert_string_equal(cli_progress_format("x", 99, 10, line, sizeof(line)), "x [######### ] 99%");
    assert_string_equal(cli_progress_format("x", -5, 4, line, sizeof(line)), "x [    ] 0%");
    assert_string_equal(cli_progress_format("x", 250, 4, line, sizeof(line)), "x [####] 100%");
    /* A label with an escape sequence cannot drive the terminal. */
    assert_string_equal(cli_progress_format("a\033[2Jb", 50, 2, line, sizeof(line)),
                        "a?[2Jb [# ] 50%");
    /* Truncated, still terminated. */
    cli_progress_format("encrypt web1", 42, 10, line, 8);
    assert_string_equal(line, "encrypt");
}

static void test_format_size(void **state)
{
    static const struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0 B"},
        {512, "512 B"},
        {1023, "1023 B"},
        {1024, "1 KiB"},
        {1536, "1.5 KiB"},
        {268435456, "256 MiB"},
        {1073741824, "1 GiB"},
        {1073741824 + 1, "1.0 GiB"},
        {10ull << 40, "10 TiB"},
        {UINT64_MAX, "15.9 EiB"},
    };
    char out[32];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(cli_format_size(cases[i].bytes, out, sizeof(out)), cases[i].text);
}

static void test_sanitize(void **state)
{
    char out[64];
    (void)state;
    assert_string_equal(cli_sanitize("web1", out, sizeof(out)), "web1");
    assert_string_equal(cli_sanitize("\033[31mred", out, sizeof(out)), "?[31mred");
    assert_string_equal(cli_sanitize("a\rb\nc\td\x7f", out, sizeof(out)), "a?b?c?d?");
    assert_string_equal(cli_sanitize("csi\xc2\x9b"
                                     "2J",
                                     out, sizeof(out)),
                        "csi?2J");
    assert_string_equal(cli_sanitize("caf\xc3\xa9 \xe2\x82\xac", out, sizeof(out)),
                        "caf\xc3\xa9 \xe2\x82\xac"); /* UTF-8 text is kept */
    assert_string_equal(cli_sanitize(NULL, out, sizeof(out)), "-");
    assert_string_equal(cli_sanitize("abcdef", out, 4), "abc");
}

static void test_table(void **state)
{
    static const char *const headers[] = {"NAME", "STATE", "X"};
    static const char *const r1[] = {"web1", "off", "yes"};
    static const char *const r2[] = {"database-01", NULL, "\033x"};
    struct cli_table *t = NULL;
    char *text = NULL;
    size_t len;
    FILE *f;
    (void)state;
    assert_ok(cli_table_new(3, headers, &t));
    assert_ok(cli_table_add(t, r1));
    assert_ok(cli_table_add(t, r2));
    f = open_memstream(&text, &len);
    cli_table_print(t, f);
    fclose(f);
    assert_string_equal(text, "NAME         STATE  X\n"
                              "web1         off    yes\n"
                              "database-01  -      ?x\n");
    free(text);
    cli_table_free(&t);
    assert_null(t);
    cli_table_free(&t); /* twice is fine */
    assert_err(cli_table_new(0, headers, &t), ERR_INVALID_ARG);
}

/* --- JSON answers --- */

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    assert_non_null(v);
    return v;
}

static void test_json_fields(void **state)
{
    json_t *o = load("{\"s\": \"x\", \"n\": null, \"i\": 3, \"b\": true, \"a\": [], \"o\": {}}");
    json_t *v;
    const char *s;
    (void)state;
    assert_ok(cli_json_string(o, "s", false, &s));
    assert_string_equal(s, "x");
    assert_ok(cli_json_string(o, "n", true, &s));
    assert_null(s);
    assert_ok(cli_json_string(o, "missing", true, &s));
    assert_null(s);
    assert_err(cli_json_string(o, "n", false, &s), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "field 'n' is null"));
    assert_err(cli_json_string(o, "missing", false, &s), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "field 'missing' is missing"));
    assert_err(cli_json_string(o, "i", false, &s), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "field 'i' is an integer, expected a string"));
    assert_ok(cli_json_field(o, "b", CLI_JSON_BOOL, false, &v));
    assert_err(cli_json_field(o, "i", CLI_JSON_BOOL, false, &v), ERR_INVALID_ARG);
    assert_ok(cli_json_field(o, "a", JSON_ARRAY, false, &v));
    assert_err(cli_json_field(o, "o", JSON_ARRAY, false, &v), ERR_INVALID_ARG);
    assert_ok(cli_json_field(o, "o", CLI_JSON_ANY, false, &v));
    /* Looking into something that is not an object. */
    assert_err(cli_json_field(json_object_get(o, "a"), "x", CLI_JSON_ANY, true, &v),
               ERR_INVALID_ARG);
    assert_err(cli_json_field(NULL, "x", CLI_JSON_ANY, true, &v), ERR_INVALID_ARG);
    json_decref(o);
}

static void test_json_parse(void **state)
{
    static const char *const bad[] = {"",
                                      "not json",
                                      "[1, 2]",
                                      "\"text\"",
                                      "{\"a\": 1",
                                      "{\"a\": 1, \"a\": 2}",
                                      "{\"a\": \"\xff\"}",
                                      "null"};
    json_t *v;
    struct buf b;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_view(&b, bad[i], strlen(bad[i]));
        if (is_ok(cli_json_parse_object(&b, &v)))
            fail_msg("'%s' was taken for an answer", bad[i]);
        assert_null(v);
        assert_non_null(strstr(err_last()->detail, "malformed answer from vmseald"));
    }
    buf_view(&b, "{\"vms\": []}", 11);
    assert_ok(cli_json_parse_object(&b, &v));
    assert_true(json_is_array(json_object_get(v, "vms")));
    json_decref(v);
}

static void test_task_parse(void **state)
{
    struct cli_task t;
    json_t *v;
    (void)state;
    v = load("{\"id\": \"t-1\", \"operation\": \"vm.encrypt\", \"target\": \"vm/web1\", "
             "\"state\": \"running\", \"progress\": 42, \"result\": null, \"error\": null}");
    assert_ok(cli_task_parse(v, &t));
    assert_string_equal(t.id, "t-1");
    assert_string_equal(t.state, "running");
    assert_int_equal(t.progress, 42);
    assert_false(t.done);
    assert_null(t.result);
    json_decref(v);

    v = load("{\"id\": \"t-1\", \"state\": \"success\", \"progress\": 100, \"result\": "
             "{\"name\": \"web1\", \"encrypted\": true}, \"error\": null}");
    assert_ok(cli_task_parse(v, &t));
    assert_true(t.done);
    assert_non_null(t.result);
    json_decref(v);

    static const char *const bad[] = {
        "{\"state\": \"running\", \"progress\": 1}",                  /* no id */
        "{\"id\": 7, \"state\": \"running\", \"progress\": 1}",       /* id not a string */
        "{\"id\": \"t\", \"state\": \"sleeping\", \"progress\": 1}",  /* unknown state */
        "{\"id\": \"t\", \"progress\": 1}",                           /* no state */
        "{\"id\": \"t\", \"state\": \"running\", \"progress\": 101}", /* out of range */
        "{\"id\": \"t\", \"state\": \"running\", \"progress\": -1}",
        "{\"id\": \"t\", \"state\": \"running\", \"progress\": \"42\"}",
        "{\"id\": \"t\", \"state\": \"error\", \"progress\": 1, \"error\": \"boom\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = load(bad[i]);
        if (is_ok(cli_task_parse(v, &t)))
            fail_msg("task %s was accepted", bad[i]);
        json_decref(v);
    }
}

static void test_api_path(void **state)
{
    char out[64];
    (void)state;
    const char *a[] = {"vms", "web1", "snapshots", "s-1_b.c~"};
    assert_ok(cli_api_path(out, sizeof(out), a, 4));
    assert_string_equal(out, "/v1/vms/web1/snapshots/s-1_b.c~");
    const char *b[] = {"vms", "a/b?c#d e%"};
    assert_ok(cli_api_path(out, sizeof(out), b, 2));
    assert_string_equal(out, "/v1/vms/a%2Fb%3Fc%23d%20e%25");
    const char *c[] = {"vms", ".."};
    assert_ok(cli_api_path(out, sizeof(out), c, 2));
    assert_string_equal(out, "/v1/vms/%2E%2E");
    const char *d[] = {"vms", "."};
    assert_ok(cli_api_path(out, sizeof(out), d, 2));
    assert_string_equal(out, "/v1/vms/%2E");
    const char *e[] = {"vms", ""};
    assert_err(cli_api_path(out, sizeof(out), e, 2), ERR_INVALID_ARG);
    const char *f[] = {"vms", "a-name-much-too-long-for-the-small-buffer-given-here-by-far"};
    assert_err(cli_api_path(out, 32, f, 2), ERR_TOO_LARGE);
    assert_string_equal(out, "");
}

/* --- errors --- */

static void test_error_codes(void **state)
{
    static const struct {
        const char *api;
        enum err_code code;
    } map[] = {
        {"invalid_request", ERR_INVALID_ARG},
        {"not_found", ERR_NOT_FOUND},
        {"exists", ERR_EXISTS},
        {"vm_state", ERR_VM_STATE},
        {"busy", ERR_BUSY},
        {"vm_locked", ERR_VM_LOCKED},
        {"key_state", ERR_KEY_STATE},
        {"provider_unavailable", ERR_PROVIDER},
        {"forbidden", ERR_FORBIDDEN},
        {"unauthenticated", ERR_UNAUTHENTICATED},
        {"rate_limited", ERR_RATE_LIMITED},
        {"not_allowed", ERR_PERM},
        {"internal", ERR_INTERNAL},
        {"something_new", ERR_IO},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        assert_int_equal(cli_api_error_code(map[i].api), map[i].code);
}

static void test_error_from_answer(void **state)
{
    struct cli_api_error e;
    struct buf b;
    const char *good = "{\"error\": {\"code\": \"vm_state\", \"message\": \"vm 'web1' is "
                       "running: power it off first\"}}";
    (void)state;
    buf_view(&b, good, strlen(good));
    assert_err(cli_api_error_from_answer(409, &b, &e), ERR_VM_STATE);
    assert_string_equal(e.code, "vm_state");
    assert_string_equal(e.message, "vm 'web1' is running: power it off first");
    assert_int_equal(e.status, 409);

    static const char *const malformed[] = {
        "",
        "<html>502 Bad Gateway</html>",
        "{}",
        "{\"error\": \"boom\"}",
        "{\"error\": {\"code\": 1, \"message\": \"m\"}}",
        "{\"error\": {\"code\": \"busy\"}}",
        "{\"error\": {\"code\": \"\", \"message\": \"\"}}",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        buf_view(&b, malformed[i], strlen(malformed[i]));
        assert_err(cli_api_error_from_answer(502, &b, &e), ERR_IO);
        assert_string_equal(e.code, "malformed");
        assert_non_null(strstr(e.message, "HTTP 502"));
    }
    /* A task's error object. */
    json_t *v = load("{\"code\": \"provider_unavailable\", \"message\": \"kms1:5696 refused\"}");
    assert_err(cli_api_error_from_json(v, 0, &e), ERR_PROVIDER);
    assert_string_equal(e.message, "kms1:5696 refused");
    json_decref(v);
    assert_err(cli_api_error_from_json(NULL, 0, &e), ERR_IO);
    assert_non_null(strstr(e.message, "task failed"));
}

/* cli_report_failure: message, stream and exit code per kind of failure. */
static int report(struct cli_ctx *ctx, vs_result rc, char **text)
{
    size_t len;
    FILE *f = open_memstream(text, &len);
    assert_non_null(f);
    ctx->err = f;
    int code = cli_report_failure(ctx, NULL, rc);
    fclose(f);
    return code;
}

static void test_exit_codes(void **state)
{
    struct cli_ctx ctx;
    char *text = NULL;
    (void)state;

    ctx = (struct cli_ctx){0};
    assert_int_equal(report(&ctx, OK_RESULT, &text), CLI_EXIT_OK);
    assert_string_equal(text, "");
    free(text);

    /* A usage error found by a command: 2, with the message. */
    ctx = (struct cli_ctx){.usage_error = true};
    vs_result rc = RAISE(ERR_INVALID_ARG);
    err_detail("INDEX: 'x' is not a number");
    assert_int_equal(report(&ctx, rc, &text), CLI_EXIT_USAGE);
    assert_non_null(strstr(text, "vmseal: INDEX: 'x' is not a number\n"));
    free(text);

    /* The server's refusal: 1, its message (sanitized), no file:line. */
    ctx = (struct cli_ctx){.has_api_error = true};
    snprintf(ctx.api_error.code, sizeof(ctx.api_error.code), "vm_state");
    snprintf(ctx.api_error.message, sizeof(ctx.api_error.message), "vm 'web1' is running\033[2J");
    assert_int_equal(report(&ctx, RAISE(ERR_VM_STATE), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: vm 'web1' is running?[2J\n");
    free(text);

    /* The same with --json: the error object, one line. */
    ctx.json = true;
    assert_int_equal(report(&ctx, RAISE(ERR_VM_STATE), &text), CLI_EXIT_FAILED);
    json_t *v = load(text);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
                        "vm_state");
    json_decref(v);
    free(text);

    /* A local failure: the detail and the system's reason. */
    ctx = (struct cli_ctx){0};
    rc = RAISE(ERR_IO);
    err_errno(2);
    err_detail("opening x.pem");
    assert_int_equal(report(&ctx, rc, &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: opening x.pem: No such file or directory\n");
    free(text);

    /* No detail: the code's message. */
    assert_int_equal(report(&ctx, RAISE(ERR_NOMEM), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: out of memory\n");
    free(text);

    /* Interrupted while following a task. */
    ctx = (struct cli_ctx){.interrupted = true};
    rc = RAISE(ERR_CANCELLED);
    err_detail("interrupted; the task goes on in vmseald: vmseal task show t-1");
    assert_int_equal(report(&ctx, rc, &text), CLI_EXIT_INTERRUPTED);
    free(text);
}

/* --- management commands: parsing --- */

static void test_parse_admin_commands(void **state)
{
    struct cli_args a;
    (void)state;

    /* The transport's --server and --ca before the command... */
    assert_ok(parse_line("--server https://h:8443 --ca api.crt login --user alice "
                         "--password-file pw --ttl 3600",
                         &a));
    assert_ptr_equal(a.command, cli_command_find("login"));
    assert_string_equal(cli_str(&a, CLI_OPT_API_SERVER), "https://h:8443");
    assert_string_equal(cli_str(&a, CLI_OPT_API_CA), "api.crt");
    assert_string_equal(cli_str(&a, CLI_OPT_USER), "alice");
    assert_string_equal(cli_str(&a, CLI_OPT_PASSWORD_FILE), "pw");
    assert_int_equal(a.opt[CLI_OPT_TTL].number[0], 3600);
    assert_int_equal(a.command->token_use, CLI_TOKEN_UNUSED);
    /* ...or after one that has none of its own... */
    assert_ok(parse_line("whoami --server https://h:8443 --ca api.crt", &a));
    assert_string_equal(cli_str(&a, CLI_OPT_API_SERVER), "https://h:8443");
    assert_int_equal(a.command->token_use, CLI_TOKEN_REQUIRED);
    /* ...while after kp add-standard they are its key servers' options. */
    assert_ok(parse_line("--server https://h:8443 kp add-standard k --server kms:5696 --server "
                         "kms2:5696 --ca ca.pem --cert c.pem --key k.pem",
                         &a));
    assert_string_equal(cli_str(&a, CLI_OPT_API_SERVER), "https://h:8443");
    assert_int_equal(a.opt[CLI_OPT_SERVER].count, 2);
    assert_string_equal(a.opt[CLI_OPT_SERVER].text[1], "kms2:5696");
    assert_string_equal(cli_str(&a, CLI_OPT_CA), "ca.pem");
    assert_false(cli_has(&a, CLI_OPT_API_CA));
    assert_ok(parse_line("--token-file t logout", &a));
    assert_string_equal(cli_str(&a, CLI_OPT_TOKEN_FILE), "t");
    assert_int_equal(a.command->token_use, CLI_TOKEN_OPTIONAL);

    /* --disk: a size for vm create, an index for vm policy. */
    assert_ok(parse_line("vm policy web1 --none --disk 0", &a));
    assert_ptr_equal(a.command, cli_command_find("vm policy"));
    assert_true(cli_has(&a, CLI_OPT_DISK_INDEX) && !cli_has(&a, CLI_OPT_DISK));
    assert_int_equal(a.opt[CLI_OPT_DISK_INDEX].number[0], 0);
    assert_ok(parse_line("vm create web1 --disk 1G --policy p --folder f", &a));
    assert_int_equal(a.opt[CLI_OPT_DISK].number[0], 1ull << 30);
    assert_string_equal(cli_str(&a, CLI_OPT_POLICY), "p");
    assert_string_equal(cli_str(&a, CLI_OPT_FOLDER), "f");

    assert_ok(parse_line("permission set --group ops --role Read-only --object folder/prod "
                         "--no-propagate",
                         &a));
    assert_string_equal(cli_str(&a, CLI_OPT_GROUP), "ops");
    assert_string_equal(cli_str(&a, CLI_OPT_ROLE), "Read-only");
    assert_string_equal(cli_str(&a, CLI_OPT_OBJECT), "folder/prod");
    assert_true(cli_has(&a, CLI_OPT_NO_PROPAGATE));
    assert_ok(parse_line("permission remove --user bob", &a));
    assert_ok(parse_line("user group remove bob ops", &a));
    assert_ptr_equal(a.command, cli_command_find("user group remove"));
    assert_string_equal(a.arg[1], "ops");
    assert_ok(parse_line("vm move web1 --root", &a));
    assert_ok(parse_line("task list --running", &a));
    assert_ok(parse_line("task watch t-1", &a));
    assert_ok(parse_line("token list --all", &a));
    assert_ok(parse_line("kp default kms", &a));
    assert_ptr_equal(a.command->run, cli_command_find("kp set-default")->run);

    /* Role names with spaces, and many privileges. */
    char *argv[80] = {(char *)"vmseal", (char *)"role", (char *)"create",
                      (char *)"No cryptography administrator"};
    int argc = 4;
    for (int i = 0; i < 30; i++) {
        argv[argc++] = (char *)"--privilege";
        argv[argc++] = (char *)"System.Read";
    }
    assert_ok(cli_parse(argc, argv, &a));
    assert_string_equal(a.arg[0], "No cryptography administrator");
    assert_int_equal(a.opt[CLI_OPT_PRIVILEGE].count, 30);
}

static void test_parse_admin_refusals(void **state)
{
    (void)state;
    expect_usage("permission set --user bob", "needs --role ROLE");
    expect_usage("permission set --user bob --group ops --role r",
                 "--user and --group cannot be used together");
    expect_usage("permission set --role r", "needs one of --user or --group");
    expect_usage("permission remove --user a --group b", "cannot be used together");
    expect_usage("permission set --user bob --role r --role s", "--role is given twice");
    expect_usage("role create r", "needs --privilege P");
    expect_usage("user create bob", "needs --password-file FILE");
    expect_usage("user password bob", "needs --password-file FILE");
    expect_usage("user create", "needs NAME");
    expect_usage("login --user a", "needs --password-file FILE");
    expect_usage("login --password-file f", "needs --user NAME");
    expect_usage("login --user a --password-file f --ttl 0", "--ttl: ");
    expect_usage("login --user a --password-file f --ttl 2592001", "--ttl: ");
    expect_usage("login --user a --password-file f --ttl 1h", "--ttl: ");
    expect_usage("--socket s --server https://h:1 vm list", "--socket and --server cannot");
    expect_usage("vm list --socket s --server https://h:1", "--socket and --server cannot");
    expect_usage("--user a whoami", "--user goes after the command");
    expect_usage("whoami --user a", "'vmseal whoami' has no --user option");
    expect_usage("vm move web1", "needs one of --folder or --root");
    expect_usage("vm policy web1", "needs one of --policy or --none");
    expect_usage("vm policy web1 --policy p --none", "--policy and --none cannot");
    expect_usage("vm policy web1 --none --disk 4096", "--disk: ");
    expect_usage("vm policy web1 --none --disk 1G", "--disk: ");
    expect_usage("vm create x --encrypt --policy p", "--encrypt and --policy cannot");
    expect_usage("task list --all-states --running", "cannot be used together");
    expect_usage("task watch", "needs ID");
    expect_usage("policy create p", "needs --provider P");
    expect_usage("token list --all=yes", "--all takes no value");
}

static void test_object_path(void **state)
{
    static const char *const good[] = {"/", "vm/web1", "folder/prod", "vm/a.b-c_d"};
    static const char *const bad[] = {"",    "web1",  "vm/",    "/vm/web1", "vm/a/b",
                                      "VM/x", "vm1/x", "folder", "//"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_ok(cli_check_object_path(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (is_ok(cli_check_object_path(bad[i])))
            fail_msg("'%s' was accepted as an object", bad[i]);
}

/* --- the HTTPS transport: server URLs and tokens --- */

static void test_server_url(void **state)
{
    static const struct {
        const char *text, *want;
    } good[] = {
        {"https://h:8443", "https://h:8443"},
        {"https://vmseal.example.com:8443/", "https://vmseal.example.com:8443"},
        {"HTTPS://VmSeal.Example.COM:8443", "https://vmseal.example.com:8443"},
        {"https://h", "https://h:443"},
        {"https://10.0.0.1:1", "https://10.0.0.1:1"},
        {"https://[::1]:8443", "https://[::1]:8443"},
        {"https://[FE80::1]:65535/", "https://[fe80::1]:65535"},
    };
    static const char *const bad[] = {
        "http://h:8443",     "h:8443",         "https://",           "https://:8443",
        "https://h:0",       "https://h:65536", "https://h:",         "https://h:84x3",
        "https://u@h:8443",  "https://h:8443/v1", "https://h:8443?x=1", "https://h:8443#f",
        "https://[::1:8443", "https://[]:1",    "https://h_1:8443",   "https://h:0008443",
        "ftp://h:1",         "https://h:8443//",
    };
    char out[CLI_SERVER_URL_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_ok(cli_server_url_parse(good[i].text, out, sizeof(out)));
        assert_string_equal(out, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vs_result rc = cli_server_url_parse(bad[i], out, sizeof(out));
        if (is_ok(rc))
            fail_msg("'%s' was accepted as a server URL (%s)", bad[i], out);
        assert_int_equal(rc.code, ERR_INVALID_ARG);
        assert_string_equal(out, "");
    }
    assert_err(cli_server_url_parse("http://h:1", out, sizeof(out)), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "HTTPS only"));
    /* Too small an output buffer. */
    assert_err(cli_server_url_parse("https://vmseal.example.com:8443", out, 10), ERR_INVALID_ARG);
}

static void test_token_chars(void **state)
{
    static const char *const good[] = {"vst_abcDEF0123-._~+/", "vst_x=", "a", "vst_x=="};
    static const char *const bad[] = {"",       "vst x",      "vst_x\r\nX-Evil: 1", "vst_\"x\"",
                                      "vst_=x", "=",          "vst_x\t",             "vst_\xc3\xa9",
                                      "vst_x;", "vst_x=y"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(cli_token_is_valid((const uint8_t *)good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cli_token_is_valid((const uint8_t *)bad[i], strlen(bad[i])))
            fail_msg("token '%s' was accepted", bad[i]);
    char big[CLI_TOKEN_MAX + 2];
    memset(big, 'a', sizeof(big));
    assert_true(cli_token_is_valid((const uint8_t *)big, CLI_TOKEN_MAX));
    assert_false(cli_token_is_valid((const uint8_t *)big, CLI_TOKEN_MAX + 1));
    assert_false(cli_token_is_valid(NULL, 3));
    /* A NUL inside is not part of the set. */
    assert_false(cli_token_is_valid((const uint8_t *)"vst\0x", 5));
}

/* --- secrets from files --- */

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_secret_file(void **state)
{
    static const struct {
        const char *content;
        size_t len;
        const char *want; /* NULL: refused */
        const char *why;
    } cases[] = {
        {"hunter2 hunter2\n", 16, "hunter2 hunter2", NULL},
        {"  spaces\t \n", 11, "  spaces\t ", NULL},
        {"no newline", 10, "no newline", NULL},
        {"crlf\r\n", 6, "crlf", NULL},
        {"one\n\n", 5, NULL, "one line"},
        {"two\nlines\n", 10, NULL, "one line"},
        {"\n", 1, NULL, "empty password"},
        {"", 0, NULL, "empty password"},
        {"nul\0byte\n", 9, NULL, "NUL byte"},
        {"a\rb\n", 4, NULL, "one line"},
    };
    char dir[] = "/tmp/vmseal-test-cli-XXXXXX", path[128];
    struct buf out = {0};
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pw", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].content, cases[i].len, 0600);
        vs_result rc = cli_read_secret_file(path, "password", 64, &out);
        if (cases[i].want != NULL) {
            assert_ok(rc);
            assert_int_equal(buf_len(&out), strlen(cases[i].want));
            assert_memory_equal(buf_data(&out), cases[i].want, buf_len(&out));
            assert_true(out.flags & BUF_SECRET);
            buf_free(&out);
        } else {
            assert_int_equal(rc.code, ERR_INVALID_ARG);
            if (strstr(err_last()->detail, cases[i].why) == NULL)
                fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err_last()->detail,
                         cases[i].why);
            assert_null(buf_data(&out));
        }
    }
    /* Too long, a directory, nothing there. */
    char long_one[80];
    memset(long_one, 'x', sizeof(long_one));
    write_file(path, long_one, sizeof(long_one), 0600);
    assert_err(cli_read_secret_file(path, "password", 64, &out), ERR_INVALID_ARG);
    write_file(path, long_one, 65, 0600);
    assert_err(cli_read_secret_file(path, "password", 64, &out), ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "longer than 64"));
    write_file(path, long_one, 64, 0600);
    assert_ok(cli_read_secret_file(path, "password", 64, &out));
    buf_free(&out);
    assert_false(is_ok(cli_read_secret_file(dir, "password", 64, &out)));
    unlink(path);
    assert_err(cli_read_secret_file(path, "password", 64, &out), ERR_NOT_FOUND);
    rmdir(dir);
}

/* --- the token store --- */

#define URL1 "https://vmseal.example.com:8443"
#define URL2 "https://[::1]:8443"
#define TOKEN1 "vst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

struct store_dirs {
    char root[64];    /* the test's $HOME */
    char dir[128];    /* $HOME/.config/vmseal */
    char file[160];   /* .../tokens.json */
    char config[96];  /* $HOME/.config */
};

static void store_dirs_make(struct store_dirs *d)
{
    snprintf(d->root, sizeof(d->root), "/tmp/vmseal-test-tokens-XXXXXX");
    assert_non_null(mkdtemp(d->root));
    snprintf(d->config, sizeof(d->config), "%s/.config", d->root);
    snprintf(d->dir, sizeof(d->dir), "%s/vmseal", d->config);
    snprintf(d->file, sizeof(d->file), "%s/tokens.json", d->dir);
}

static void store_dirs_remove(struct store_dirs *d)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->root);
    assert_int_equal(system(cmd), 0);
}

static size_t dir_entries(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
    return system(cmd) == 0 ? 1 : 0;
}

static void test_tokens_default_dir(void **state)
{
    char out[256];
    const char *saved = getenv("HOME");
    char keep[256] = "";
    (void)state;
    if (saved != NULL)
        snprintf(keep, sizeof(keep), "%s", saved);
    setenv("HOME", "/home/alice", 1);
    assert_ok(cli_tokens_default_dir(out, sizeof(out)));
    assert_string_equal(out, "/home/alice/.config/vmseal");
    setenv("HOME", "/", 1);
    assert_ok(cli_tokens_default_dir(out, sizeof(out)));
    assert_string_equal(out, "/.config/vmseal");
    assert_err(cli_tokens_default_dir(out, 8), ERR_TOO_LARGE);
    if (keep[0])
        setenv("HOME", keep, 1);
    else
        unsetenv("HOME");
}

static void test_tokens_write_and_read(void **state)
{
    struct store_dirs d;
    struct stat st;
    json_t *store = NULL, *e1, *e2;
    struct cli_token_entry got;
    bool removed;
    (void)state;

    umask(022);
    store_dirs_make(&d);
    /* No file yet: an empty store. */
    assert_ok(cli_tokens_load(d.dir, &store));
    assert_int_equal(json_object_size(store), 0);
    json_decref(store);

    e1 = cli_tokens_entry_new(TOKEN1, "0f3a", "alice", "2099-01-01T00:00:00Z", "/etc/ca.pem");
    e2 = cli_tokens_entry_new("vst_two", NULL, "bob", "2099-01-02T00:00:00Z", NULL);
    assert_non_null(e1);
    assert_non_null(e2);
    assert_ok(cli_tokens_update(d.dir, URL1, e1, &removed));
    assert_false(removed);
    /* The directories 0700 (~/.config too, made here), the file 0600. */
    assert_int_equal(stat(d.config, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(d.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(d.file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ino_t first = st.st_ino;

    /* A second server: the first stays; the file is replaced, not rewritten
     * in place (a new inode), and no temporary file is left. */
    assert_ok(cli_tokens_update(d.dir, URL2, e2, NULL));
    assert_int_equal(stat(d.file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(st.st_ino != first);
    assert_int_equal(dir_entries(d.dir), 1);

    assert_ok(cli_tokens_load(d.dir, &store));
    assert_int_equal(json_object_size(store), 2);
    assert_ok(cli_tokens_get(store, URL1, &got));
    assert_string_equal(got.token, TOKEN1);
    assert_string_equal(got.id, "0f3a");
    assert_string_equal(got.user, "alice");
    assert_string_equal(got.expires, "2099-01-01T00:00:00Z");
    assert_string_equal(got.ca, "/etc/ca.pem");
    assert_ok(cli_tokens_get(store, URL2, &got));
    assert_null(got.id);
    assert_null(got.ca);
    assert_err(cli_tokens_get(store, "https://other:1", &got), ERR_NOT_FOUND);
    json_decref(store);

    /* Replacing one server's entry, then removing it. */
    assert_ok(cli_tokens_update(d.dir, URL1, e2, &removed));
    assert_true(removed);
    assert_ok(cli_tokens_update(d.dir, URL1, NULL, &removed));
    assert_true(removed);
    assert_ok(cli_tokens_update(d.dir, URL1, NULL, &removed));
    assert_false(removed);
    assert_ok(cli_tokens_load(d.dir, &store));
    assert_int_equal(json_object_size(store), 1);
    assert_non_null(json_object_get(store, URL2));
    json_decref(store);

    /* An entry that is not one is never written. */
    json_t *bad = cli_tokens_entry_new("vst bad", NULL, "u", "x", NULL);
    assert_err(cli_tokens_update(d.dir, URL1, bad, NULL), ERR_CONFIG_VALUE);
    json_decref(bad);
    bad = cli_tokens_entry_new(TOKEN1, NULL, "u", "x", "relative/ca.pem");
    assert_err(cli_tokens_update(d.dir, URL1, bad, NULL), ERR_CONFIG_VALUE);
    json_decref(bad);
    assert_err(cli_tokens_update(d.dir, "https://Upper.case:1", e1, NULL), ERR_CONFIG_VALUE);

    /* A directory of ours that others could write to is tightened. */
    assert_int_equal(chmod(d.dir, 0755), 0);
    assert_ok(cli_tokens_update(d.dir, URL1, e1, NULL));
    assert_int_equal(stat(d.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    json_decref(e1);
    json_decref(e2);
    store_dirs_remove(&d);
}

static void test_tokens_refused(void **state)
{
    static const struct {
        const char *content;
        const char *why;
    } malformed[] = {
        {"", "is malformed"},
        {"not json", "is malformed"},
        {"[]", "is malformed"},
        {"{\"" URL1 "\": \"vst_a\"}", "is not an object"},
        {"{\"" URL1 "\": {\"token\": 7, \"user\": \"u\", \"expires\": \"x\"}}",
         "missing or malformed"},
        {"{\"" URL1 "\": {\"token\": \"vst_a\\r\\nX: y\", \"user\": \"u\", "
         "\"expires\": \"x\"}}",
         "missing or malformed"},
        {"{\"" URL1 "\": {\"token\": \"vst_a\", \"expires\": \"x\"}}", "\"user\" and"},
        {"{\"" URL1 "\": {\"token\": \"vst_a\", \"user\": \"u\", \"expires\": \"x\", "
         "\"ca\": 1}}",
         "absolute path"},
        {"{\"" URL1 "\": {\"token\": \"vst_a\", \"user\": \"u\", \"expires\": \"x\", "
         "\"id\": 1}}",
         "token id"},
        {"{\"" URL1 "\": {\"token\": \"vst_a\", \"user\": \"u\", \"expires\": \"x\", "
         "\"more\": 1}}",
         "unknown field 'more'"},
        {"{\"http://h:1\": {\"token\": \"vst_a\", \"user\": \"u\", \"expires\": \"x\"}}",
         "not a server URL"},
        {"{\"" URL1 "\": {}, \"" URL1 "\": {}}", "is malformed"},
    };
    struct store_dirs d;
    json_t *store = NULL;
    char link[200];
    (void)state;

    store_dirs_make(&d);
    assert_int_equal(mkdir(d.config, 0700), 0);
    assert_int_equal(mkdir(d.dir, 0700), 0);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        write_file(d.file, malformed[i].content, strlen(malformed[i].content), 0600);
        vs_result rc = cli_tokens_load(d.dir, &store);
        if (rc.code != ERR_CONFIG_VALUE)
            fail_msg("case %zu: expected ERR_CONFIG_VALUE, got %s", i, err_name(rc.code));
        assert_null(store);
        if (strstr(err_last()->detail, malformed[i].why) == NULL ||
            strstr(err_last()->detail, "tokens.json") == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err_last()->detail,
                     malformed[i].why);
        /* Nor is a malformed store rewritten: other servers' tokens are not
         * thrown away behind the user's back. */
        json_t *e = cli_tokens_entry_new(TOKEN1, NULL, "u", "x", NULL);
        assert_err(cli_tokens_update(d.dir, URL1, e, NULL), ERR_CONFIG_VALUE);
        json_decref(e);
    }

    /* Open to others: refused, as ssh refuses its keys. */
    const char *ok_store = "{\"" URL1 "\": {\"token\": \"vst_a\", \"user\": \"u\", "
                           "\"expires\": \"x\"}}";
    static const mode_t loose[] = {0640, 0604, 0644, 0660, 0606};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        write_file(d.file, ok_store, strlen(ok_store), loose[i]);
        assert_err(cli_tokens_load(d.dir, &store), ERR_PERM);
        assert_non_null(strstr(err_last()->detail, "chmod 600"));
    }
    write_file(d.file, ok_store, strlen(ok_store), 0600);
    assert_ok(cli_tokens_load(d.dir, &store));
    json_decref(store);
    assert_int_equal(chmod(d.dir, 0770), 0);
    assert_err(cli_tokens_load(d.dir, &store), ERR_PERM);
    assert_non_null(strstr(err_last()->detail, "chmod 700"));
    assert_int_equal(chmod(d.dir, 0700), 0);

    /* A symbolic link in the file's place is not followed. */
    snprintf(link, sizeof(link), "%s/real.json", d.dir);
    assert_int_equal(rename(d.file, link), 0);
    assert_int_equal(symlink(link, d.file), 0);
    assert_err(cli_tokens_load(d.dir, &store), ERR_PERM);
    assert_non_null(strstr(err_last()->detail, "symbolic link"));
    unlink(d.file);
    /* Nor is a directory, or a FIFO, read. */
    assert_int_equal(mkdir(d.file, 0700), 0);
    assert_false(is_ok(cli_tokens_load(d.dir, &store)));
    rmdir(d.file);
    assert_int_equal(mkfifo(d.file, 0600), 0);
    assert_false(is_ok(cli_tokens_load(d.dir, &store)));
    unlink(d.file);
    /* Too large. */
    char *huge = calloc(1, CLI_TOKENS_LIMIT + 2);
    assert_non_null(huge);
    memset(huge, ' ', CLI_TOKENS_LIMIT + 1);
    write_file(d.file, huge, CLI_TOKENS_LIMIT + 1, 0600);
    free(huge);
    assert_err(cli_tokens_load(d.dir, &store), ERR_TOO_LARGE);
    store_dirs_remove(&d);
}

static void test_tokens_expiry(void **state)
{
    time_t now = 1800000000; /* 2027-01-15T08:00:00Z */
    (void)state;
    assert_true(cli_tokens_expired("2020-01-01T00:00:00Z", now));
    assert_true(cli_tokens_expired("2027-01-15T08:00:00Z", now)); /* at the instant */
    assert_true(cli_tokens_expired("2027-01-15T07:59:59.999Z", now));
    assert_true(cli_tokens_expired("2027-01-15T07:00:00+00:00", now));
    assert_false(cli_tokens_expired("2027-01-15T08:00:01Z", now));
    assert_false(cli_tokens_expired("2099-01-01T00:00:00Z", now));
    /* What does not parse is left to the server. */
    assert_false(cli_tokens_expired("yesterday", now));
    assert_false(cli_tokens_expired("2020-01-01T00:00:00+02:00", now));
    assert_false(cli_tokens_expired("2020-01-01T00:00:00Zjunk", now));
    assert_false(cli_tokens_expired("", now));
}

/* A refusal with a Retry-After, and a 401 over HTTPS: what is printed. */
static void test_report_hints(void **state)
{
    struct cli_ctx ctx;
    char *text = NULL;
    (void)state;

    ctx = (struct cli_ctx){.has_api_error = true};
    ctx.api_error.status = 429;
    ctx.api_error.retry_after = 42;
    snprintf(ctx.api_error.message, sizeof(ctx.api_error.message), "too many failed logins");
    assert_int_equal(report(&ctx, RAISE(ERR_RATE_LIMITED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: too many failed logins (retry after 42 seconds)\n");
    free(text);
    /* Not twice when the message says it already. */
    snprintf(ctx.api_error.message, sizeof(ctx.api_error.message),
             "too many failed logins: try again in 42 seconds");
    assert_int_equal(report(&ctx, RAISE(ERR_RATE_LIMITED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: too many failed logins: try again in 42 seconds\n");
    free(text);

    ctx = (struct cli_ctx){.has_api_error = true, .server = "https://h:8443",
                           .token_source = CLI_TOKEN_STORE};
    ctx.api_error.status = 401;
    snprintf(ctx.api_error.message, sizeof(ctx.api_error.message), "the token has expired");
    assert_int_equal(report(&ctx, RAISE(ERR_UNAUTHENTICATED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: the token has expired\n"
                              "vmseal: run vmseal --server https://h:8443 login --user NAME "
                              "--password-file FILE\n");
    free(text);

    /* A login that failed, or a --token-file token: no advice to log in. */
    ctx.token_source = CLI_TOKEN_NONE;
    assert_int_equal(report(&ctx, RAISE(ERR_UNAUTHENTICATED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: the token has expired\n");
    free(text);
    ctx.token_source = CLI_TOKEN_FILE;
    assert_int_equal(report(&ctx, RAISE(ERR_UNAUTHENTICATED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: the token has expired\n"
                              "vmseal: the token of --token-file is not accepted: get a new one\n");
    free(text);
    ctx.token_source = CLI_TOKEN_STORE;

    /* On the socket a 401 has no login to suggest. */
    ctx.server = NULL;
    assert_int_equal(report(&ctx, RAISE(ERR_UNAUTHENTICATED), &text), CLI_EXIT_FAILED);
    assert_string_equal(text, "vmseal: the token has expired\n");
    free(text);

    /* 403: the server's message, which names the privilege and the object. */
    ctx = (struct cli_ctx){.has_api_error = true};
    ctx.api_error.status = 403;
    snprintf(ctx.api_error.message, sizeof(ctx.api_error.message),
             "user 'bob' lacks privilege Cryptographer.Decrypt on vm/web1");
    assert_int_equal(report(&ctx, RAISE(ERR_FORBIDDEN), &text), CLI_EXIT_FAILED);
    assert_string_equal(text,
                        "vmseal: user 'bob' lacks privilege Cryptographer.Decrypt on vm/web1\n");
    free(text);
}

/* jansson's memory is wiped on release (a body held a passphrase): the
 * allocator still hands out and takes back blocks correctly. */
static void test_json_allocator(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        json_t *v = json_pack("{s:s, s:[i, i], s:{s:b}}", "passphrase", "correct horse", "n", i,
                              i * 2, "o", "b", i % 2);
        assert_non_null(v);
        char *s = json_dumps(v, JSON_COMPACT);
        json_free_t jfree;
        assert_non_null(s);
        assert_non_null(strstr(s, "correct horse"));
        /* json_dumps's text comes from jansson's allocator: its free. */
        json_get_alloc_funcs(NULL, &jfree);
        jfree(s);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_valid),
        cmocka_unit_test(test_size_invalid),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_host_port),
        cmocka_unit_test(test_table_integrity),
        cmocka_unit_test(test_every_command_parses),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_usage_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_strict),
        cmocka_unit_test(test_passphrase_text),
        cmocka_unit_test(test_passphrase_limits),
        cmocka_unit_test(test_passphrase_file),
        cmocka_unit_test(test_path_absolute),
        cmocka_unit_test(test_file_create),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_parse),
        cmocka_unit_test(test_task_parse),
        cmocka_unit_test(test_api_path),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_error_from_answer),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_json_allocator),
        cmocka_unit_test(test_parse_admin_commands),
        cmocka_unit_test(test_parse_admin_refusals),
        cmocka_unit_test(test_object_path),
        cmocka_unit_test(test_server_url),
        cmocka_unit_test(test_token_chars),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_tokens_default_dir),
        cmocka_unit_test(test_tokens_write_and_read),
        cmocka_unit_test(test_tokens_refused),
        cmocka_unit_test(test_tokens_expiry),
        cmocka_unit_test(test_report_hints),
    };
    cli_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
