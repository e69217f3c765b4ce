/* Tests of secret memory: locked, not dumped, not forked, guarded, wiped,
 * and a constant-time compare that answers correctly. The kernel's own view
 * (/proc/self/smaps) is the witness, not our bookkeeping. */
#include "test_util.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/secret.h"

/* Returns the VmFlags line of the mapping that contains p, or "" if none. */
static void smaps_flags_of(const void *p, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool inside = false;

    out[0] = '\0';
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, n, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static bool has_flag(const char *flags, const char *flag)
{
    char want[8];
    snprintf(want, sizeof(want), " %s", flag);
    return strstr(flags, want) != NULL;
}

static void test_alloc_is_aligned_zeroed_locked_and_not_dumped(void **state)
{
    void *p = NULL;
    char flags[600];
    long page = sysconf(_SC_PAGESIZE);
    (void)state;

    assert_ok(secret_alloc(100, &p));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % (uintptr_t)page, 0);
    assert_int_equal(secret_size(p), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(((uint8_t *)p)[i], 0);

    smaps_flags_of(p, flags, sizeof(flags));
    assert_true(has_flag(flags, "lo")); /* mlock'ed */
    assert_true(has_flag(flags, "dd")); /* MADV_DONTDUMP */
    assert_true(has_flag(flags, "dc")); /* MADV_DONTFORK */

    memset(p, 0xa5, 100);
    secret_free(&p);
    assert_null(p);
    secret_free(&p); /* NULL is fine */
    secret_free(NULL);
    assert_int_equal(secret_size(NULL), 0);
}

static void test_refuses_zero_and_huge(void **state)
{
    void *p = (void *)1;
    (void)state;
    assert_err(secret_alloc(0, &p), ERR_INVALID_ARG);
    assert_null(p);
    assert_err(secret_alloc(SIZE_MAX, &p), ERR_OVERFLOW);
    assert_null(p);
}

static void test_stats_count_live_allocations(void **state)
{
    struct secret_stats s0, s1;
    void *a = NULL, *b = NULL;
    (void)state;

    secret_get_stats(&s0);
    assert_ok(secret_alloc(32, &a));
    assert_ok(secret_alloc(5000, &b));
    secret_get_stats(&s1);
    assert_int_equal(s1.live_allocations, s0.live_allocations + 2);
    assert_int_equal(s1.live_bytes, s0.live_bytes + 5032);
    secret_free(&a);
    secret_free(&b);
    secret_get_stats(&s1);
    assert_int_equal(s1.live_allocations, s0.live_allocations);
}

static sigjmp_buf fault_jump;

static void on_fault(int sig)
{
    siglongjmp(fault_jump, sig);
}

static void test_overflow_hits_the_guard_page(void **state)
{
    void *p = NULL;
    long page = sysconf(_SC_PAGESIZE);
    struct sigaction sa = {.sa_handler = on_fault}, old_segv, old_bus;
    volatile int faulted = 0;
    (void)state;

    assert_ok(secret_alloc((size_t)page, &p));
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    if (sigsetjmp(fault_jump, 1) == 0) {
        /* One byte past the last data page. */
        ((volatile uint8_t *)p)[page] = 1;
    } else {
        faulted = 1;
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    assert_int_equal(faulted, 1);
    secret_free(&p);
}

static void test_fork_child_does_not_inherit(void **state)
{
    void *p = NULL;
    int status;
    pid_t pid;
    (void)state;

    assert_ok(secret_alloc(64, &p));
    memset(p, 0x42, 64);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* MADV_DONTFORK: the page is not mapped here; reading it faults. */
        signal(SIGSEGV, SIG_DFL);
        volatile uint8_t v = ((volatile uint8_t *)p)[0];
        _exit(v == 0x42 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    secret_free(&p);
}

static void test_underflow_corruption_aborts_on_free(void **state)
{
    int status;
    pid_t pid = fork();
    (void)state;

    assert_true(pid >= 0);
    if (pid == 0) {
        void *p = NULL;
        if (!is_ok(secret_alloc(16, &p)))
            _exit(3);
        /* Scribble over the header just below the data. */
        memset((uint8_t *)p - 16, 0, 16);
        signal(SIGABRT, SIG_DFL);
        secret_free(&p);
        _exit(0); /* not reached if the canary works */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_wipe_and_equal(void **state)
{
    uint8_t a[33], b[33];
    (void)state;

    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(secret_equal(a, b, sizeof(a)));
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 1; /* a difference anywhere is seen */
        assert_false(secret_equal(a, b, sizeof(a)));
        b[i] ^= 1;
    }
    assert_true(secret_equal(a, b, 0));
    secret_wipe(a, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        assert_int_equal(a[i], 0);
    secret_wipe(NULL, 0);
}

static void test_freed_regions_are_wiped_before_reuse(void **state)
{
    void *p = NULL, *q = NULL;
    char flags[600];
    (void)state;

    /* Small regions are kept for reuse: the next one of that size may be
     * the same memory, which must come back zeroed and still locked. */
    assert_ok(secret_alloc(64, &p));
    memset(p, 0xee, 64);
    void *was = p;
    secret_free(&p);
    assert_ok(secret_alloc(100, &q));
    for (int i = 0; i < 100; i++)
        assert_int_equal(((uint8_t *)q)[i], 0);
    assert_int_equal(secret_size(q), 100);
    smaps_flags_of(q, flags, sizeof(flags));
    assert_true(has_flag(flags, "lo"));
    assert_true(has_flag(flags, "dd"));
    (void)was;
    secret_free(&q);
}

static void test_double_free_aborts(void **state)
{
    int status;
    pid_t pid = fork();
    (void)state;

    assert_true(pid >= 0);
    if (pid == 0) {
        void *p = NULL, *copy;
        if (!is_ok(secret_alloc(16, &p)))
            _exit(3);
        copy = p;
        secret_free(&p);
        signal(SIGABRT, SIG_DFL);
        secret_free(&copy); /* must abort, not put the region in the cache twice */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_harden_process(void **state)
{
    int status;
    pid_t pid = fork();
    (void)state;

    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        if (!is_ok(secret_harden_process()))
            _exit(2);
        if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
            _exit(3);
        if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
            _exit(4);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_is_aligned_zeroed_locked_and_not_dumped),
        cmocka_unit_test(test_refuses_zero_and_huge),
        cmocka_unit_test(test_stats_count_live_allocations),
        cmocka_unit_test(test_overflow_hits_the_guard_page),
        cmocka_unit_test(test_fork_child_does_not_inherit),
        cmocka_unit_test(test_underflow_corruption_aborts_on_free),
        cmocka_unit_test(test_wipe_and_equal),
        cmocka_unit_test(test_freed_regions_are_wiped_before_reuse),
        cmocka_unit_test(test_double_free_aborts),
        cmocka_unit_test(test_harden_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
