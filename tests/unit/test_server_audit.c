/* Tests of vmseald's audit log writer (src/server/audit.c): one JSON object
 * per line with the time added, whole lines from concurrent writers, mode
 * 0600, no link followed, and nothing written that the caller did not pass. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/file.h"
#include "server/audit.h"

#define THREADS 8
#define LINES_PER_THREAD 500

static char dir[64];
static char log_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vmseal-test-audit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(log_path, sizeof log_path, "%s/audit.log", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The whole log, NUL-terminated (free it). */
static char *read_log(size_t *len)
{
    struct buf b;
    assert_ok(buf_alloc(&b, 0, 64u << 20));
    assert_ok(file_read_all(log_path, 64u << 20, &b));
    *len = buf_len(&b);
    char *s = malloc(*len + 1);
    assert_non_null(s);
    if (*len > 0) /* an empty buf may have no memory at all */
        memcpy(s, buf_data(&b), *len);
    s[*len] = '\0';
    buf_free(&b);
    return s;
}

/* Splits the log into lines, each parsed as a JSON object; every line must
 * end with '\n' and parse. Returns the count; lines[i] are new references. */
static size_t parse_lines(json_t **lines, size_t max)
{
    size_t len, n = 0;
    char *text = read_log(&len);
    char *p = text;
    assert_true(len == 0 || text[len - 1] == '\n');
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_error_t e;
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &e);
        if (o == NULL || !json_is_object(o)) {
            print_error("line %zu does not parse: %s: %.*s\n", n + 1, e.text, (int)(nl - p), p);
            fail();
        }
        assert_true(n < max);
        lines[n++] = o;
        p = nl + 1;
    }
    free(text);
    return n;
}

static bool is_rfc3339_ms(const char *s)
{
    /* 2026-11-23T10:00:00.123Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

static void test_line_is_json_with_time_first(void **state)
{
    struct audit *a = NULL;
    json_t *lines[4];
    (void)state;

    assert_ok(audit_open(dir, &a));
    json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:n}", "user",
                           "bob", "via", "https", "peer", "192.0.2.1:53211", "method", "POST",
                           "route", "/v1/vms/web1/decrypt", "operation", "vm.decrypt", "object",
                           "vm/web1", "result", "denied", "status", 403, "missing",
                           "Cryptographer.Decrypt", "task");
    assert_non_null(in);
    audit_write(a, in);
    /* The caller's object is not changed. */
    assert_null(json_object_get(in, "time"));
    audit_close(&a);
    assert_null(a);

    assert_int_equal(parse_lines(lines, 4), 1);
    json_t *o = lines[0];
    const char *first_key = json_object_iter_key(json_object_iter(o));
    assert_string_equal(first_key, "time");
    assert_true(is_rfc3339_ms(json_string_value(json_object_get(o, "time"))));
    /* Exactly the caller's fields, and the time. */
    assert_int_equal(json_object_size(o), json_object_size(in) + 1);
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v) assert_true(json_equal(v, json_object_get(o, k)));
    json_decref(o);
    json_decref(in);
}

static void test_callers_time_is_replaced(void **state)
{
    struct audit *a = NULL;
    json_t *lines[2];
    (void)state;

    assert_ok(audit_open(dir, &a));
    json_t *in = json_pack("{s:s, s:s}", "time", "1999-01-01 forged", "user", "eve");
    audit_write(a, in);
    audit_close(&a);
    assert_int_equal(parse_lines(lines, 2), 1);
    assert_true(is_rfc3339_ms(json_string_value(json_object_get(lines[0], "time"))));
    assert_int_equal(json_object_size(lines[0]), 2);
    json_decref(lines[0]);
    json_decref(in);
}

/* A value with newlines, quotes and control characters (a user name or a
 * route from a client) stays inside its line: no forged lines. */
static void test_hostile_values_stay_in_one_line(void **state)
{
    struct audit *a = NULL;
    json_t *lines[4];
    (void)state;

    assert_ok(audit_open(dir, &a));
    const char *route = "/v1/vms/x\n{\"time\":\"forged\",\"user\":\"root\"}\r\n\"\\\x01\x7f";
    json_t *in = json_pack("{s:s, s:s}", "route", route, "user", "caf\xc3\xa9");
    audit_write(a, in);
    audit_close(&a);

    size_t len;
    char *text = read_log(&len);
    size_t newlines = 0;
    for (size_t i = 0; i < len; i++) {
        newlines += text[i] == '\n';
        assert_true((unsigned char)text[i] >= 0x20 || text[i] == '\n');
        assert_true((unsigned char)text[i] < 0x80); /* ASCII: \u escapes */
    }
    assert_int_equal(newlines, 1);
    free(text);
    assert_int_equal(parse_lines(lines, 4), 1);
    assert_string_equal(json_string_value(json_object_get(lines[0], "route")), route);
    assert_string_equal(json_string_value(json_object_get(lines[0], "user")), "caf\xc3\xa9");
    json_decref(lines[0]);
    json_decref(in);
}

/* The writer writes what it is given and nothing more: a caller that keeps
 * the password and the token out of the line keeps them out of the file,
 * whatever else it holds (the request body is never passed). */
static void test_only_what_is_passed(void **state)
{
    struct audit *a = NULL;
    (void)state;
    const char *password = "correct horse battery staple";
    const char *token = "vst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    json_t *body = json_pack("{s:s, s:s}", "name", "bob", "password", password);
    assert_non_null(body);

    assert_ok(audit_open(dir, &a));
    /* What the API builds: operation, subject and object, no body. */
    json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:i}", "user", "bob", "method", "POST",
                           "route", "/v1/session", "result", "allowed", "status", 201);
    audit_write(a, in);
    audit_close(&a);

    size_t len;
    char *text = read_log(&len);
    assert_null(strstr(text, password));
    assert_null(strstr(text, token));
    assert_null(strstr(text, "password"));
    free(text);
    json_decref(in);
    json_decref(body);
}

static void test_not_an_object_writes_nothing(void **state)
{
    struct audit *a = NULL;
    (void)state;
    assert_ok(audit_open(dir, &a));
    json_t *arr = json_array();
    audit_write(a, arr);
    json_decref(arr);
    audit_close(&a);
    size_t len;
    free(read_log(&len));
    assert_int_equal(len, 0);
}

struct writer_arg {
    struct audit *a;
    int id;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    /* A long field makes each line several KiB: a torn write would show. */
    char filler[4000];
    memset(filler, 'a' + w->id, sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        json_t *o = json_pack("{s:i, s:i, s:s}", "thread", w->id, "seq", i, "filler", filler);
        audit_write(w->a, o);
        json_decref(o);
    }
    return NULL;
}

static void test_concurrent_writers_leave_whole_lines(void **state)
{
    struct audit *a = NULL;
    pthread_t th[THREADS];
    struct writer_arg args[THREADS];
    static json_t *lines[THREADS * LINES_PER_THREAD + 1];
    int next[THREADS] = {0};
    (void)state;

    assert_ok(audit_open(dir, &a));
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct writer_arg){a, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    audit_close(&a);

    size_t n = parse_lines(lines, THREADS * LINES_PER_THREAD + 1);
    assert_int_equal(n, THREADS * LINES_PER_THREAD);
    for (size_t i = 0; i < n; i++) {
        int t = (int)json_integer_value(json_object_get(lines[i], "thread"));
        int seq = (int)json_integer_value(json_object_get(lines[i], "seq"));
        assert_true(t >= 0 && t < THREADS);
        /* Each thread's lines appear in its own order. */
        assert_int_equal(seq, next[t]);
        next[t]++;
        const char *f = json_string_value(json_object_get(lines[i], "filler"));
        assert_int_equal(strlen(f), 3999);
        assert_int_equal(strspn(f, (char[]){(char)('a' + t), 0}), 3999);
        json_decref(lines[i]);
    }
}

static void test_mode_0600_and_append(void **state)
{
    struct audit *a = NULL;
    struct stat st;
    json_t *lines[4];
    (void)state;

    /* A file made before with a wide mode is narrowed. */
    int fd = open(log_path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    close(fd);
    assert_ok(audit_open(dir, &a));
    json_t *o = json_pack("{s:i}", "n", 1);
    audit_write(a, o);
    audit_close(&a);
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Reopened: lines are appended, never truncated. */
    assert_ok(audit_open(dir, &a));
    audit_write(a, o);
    audit_close(&a);
    json_decref(o);
    assert_int_equal(parse_lines(lines, 4), 2);
    json_decref(lines[0]);
    json_decref(lines[1]);

    /* A new file is 0600 whatever the umask. */
    assert_int_equal(unlink(log_path), 0);
    mode_t old = umask(0);
    assert_ok(audit_open(dir, &a));
    umask(old);
    audit_close(&a);
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_link_is_refused(void **state)
{
    struct audit *a = NULL;
    char target[128];
    struct stat st;
    (void)state;

    snprintf(target, sizeof target, "%s/elsewhere", dir);
    assert_int_equal(symlink(target, log_path), 0);
    assert_err(audit_open(dir, &a), ERR_IO);
    assert_null(a);
    assert_int_equal(lstat(target, &st), -1); /* not created through the link */
    assert_int_equal(unlink(log_path), 0);

    /* A directory in its place. */
    assert_int_equal(mkdir(log_path, 0700), 0);
    assert_err(audit_open(dir, &a), ERR_IO);
    assert_int_equal(rmdir(log_path), 0);
}

static void test_missing_dir(void **state)
{
    struct audit *a = NULL;
    char missing[128];
    (void)state;
    snprintf(missing, sizeof missing, "%s/no/such", dir);
    assert_err(audit_open(missing, &a), ERR_IO);
    assert_null(a);
    audit_close(&a); /* NULL is fine */
    audit_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_is_json_with_time_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callers_time_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values_stay_in_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_what_is_passed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_object_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_leave_whole_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mode_0600_and_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
