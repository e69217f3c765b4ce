/* Tests of atomic file writes and bounded reads. (The crash test, kill -9 in
 * the middle of writes, is tests/integration/test_atomic_file.py.) */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-file-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static size_t count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_write_then_read(void **state)
{
    char p[128];
    struct buf b;
    struct stat st;
    (void)state;

    path_in(p, sizeof(p), "a.json");
    assert_ok(file_write_atomic(p, "first", 5, 0600));
    assert_ok(stat(p, &st) == 0 ? OK_RESULT : RAISE(ERR_IO));
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_ok(file_write_atomic(p, "second!", 7, 0640));
    assert_ok(buf_alloc(&b, 0, 1024));
    assert_ok(file_read_all(p, 1024, &b));
    assert_int_equal(buf_len(&b), 7);
    assert_memory_equal(buf_data(&b), "second!", 7);
    stat(p, &st);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* No temporary file is left behind. */
    assert_int_equal(count_entries(), 1);

    /* Empty content is fine. */
    assert_ok(file_write_atomic(p, NULL, 0, 0600));
    buf_reset(&b);
    assert_ok(file_read_all(p, 1024, &b));
    assert_int_equal(buf_len(&b), 0);
    buf_free(&b);
}

static void test_mode_ignores_umask(void **state)
{
    char p[128];
    struct stat st;
    mode_t old = umask(0077);
    (void)state;

    path_in(p, sizeof(p), "public");
    assert_ok(file_write_atomic(p, "x", 1, 0644));
    umask(old);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
}

static void test_failed_write_keeps_old_content(void **state)
{
    char p[128], sub[128];
    struct buf b;
    (void)state;

    /* A directory we cannot write into: the write fails, the old file is
     * intact, and no temporary file remains. (As root, permissions do not
     * stop us, so make the target's name a directory instead.) */
    path_in(p, sizeof(p), "keep");
    assert_ok(file_write_atomic(p, "old", 3, 0600));
    path_in(sub, sizeof(sub), "adir");
    assert_int_equal(mkdir(sub, 0700), 0);
    size_t before = count_entries();
    assert_err(file_write_atomic(sub, "new", 3, 0600), ERR_IO); /* rename over a directory */
    assert_int_equal(count_entries(), before);
    assert_ok(buf_alloc(&b, 0, 64));
    assert_ok(file_read_all(p, 64, &b));
    assert_memory_equal(buf_data(&b), "old", 3);
    buf_free(&b);

    /* A directory that does not exist. */
    path_in(p, sizeof(p), "nope/file");
    assert_err(file_write_atomic(p, "x", 1, 0600), ERR_NOT_FOUND);
    assert_int_equal(err_last()->sys_errno, ENOENT);
    rmdir(sub);
}

static void test_read_limits(void **state)
{
    char p[128];
    struct buf b;
    char big[5000];
    (void)state;

    memset(big, 'z', sizeof(big));
    path_in(p, sizeof(p), "big");
    assert_ok(file_write_atomic(p, big, sizeof(big), 0600));
    assert_ok(buf_alloc(&b, 0, 10000));
    assert_ok(buf_write_u8(&b, 0xee)); /* something already there stays */
    assert_err(file_read_all(p, 4999, &b), ERR_TOO_LARGE);
    assert_int_equal(buf_len(&b), 1);
    assert_ok(file_read_all(p, 5000, &b));
    assert_int_equal(buf_len(&b), 5001);
    buf_free(&b);

    /* The output buffer's own limit holds too. */
    assert_ok(buf_alloc(&b, 0, 100));
    assert_err(file_read_all(p, 1 << 20, &b), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 0);

    path_in(p, sizeof(p), "missing");
    assert_err(file_read_all(p, 100, &b), ERR_NOT_FOUND);
    /* A directory is not a file. */
    assert_err(file_read_all(dir, 100, &b), ERR_IO);
    buf_free(&b);
}

static void test_fifo_is_refused_not_waited_on(void **state)
{
    char p[128];
    struct buf b;
    (void)state;

    path_in(p, sizeof(p), "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_ok(buf_alloc(&b, 0, 100));
    assert_err(file_read_all(p, 100, &b), ERR_IO); /* returns at once: no writer needed */
    assert_non_null(strstr(err_last()->detail, "not a regular file"));
    buf_free(&b);
    unlink(p);
}

static void test_mkdir(void **state)
{
    char p[128];
    struct stat st;
    (void)state;

    path_in(p, sizeof(p), "d");
    assert_ok(file_mkdir(p, 0700));
    assert_ok(file_mkdir(p, 0700)); /* exists: fine */
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    path_in(p, sizeof(p), "f");
    assert_ok(file_write_atomic(p, "x", 1, 0600));
    assert_err(file_mkdir(p, 0700), ERR_EXISTS); /* a file is in the way */
    path_in(p, sizeof(p), "no/such/parent");
    assert_err(file_mkdir(p, 0700), ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_ignores_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_old_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_is_refused_not_waited_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
