/*
 * Tests of vmseald's tasks (src/server/tasks.c) and of what VM recovery
 * tells them at a restart (src/vm/recover.c, vm_host_recovery_outcome):
 *  - a task's life: queued, running with progress, success with its
 *    result, error with {code, message}; its argument freed once, also
 *    when it cannot start;
 *  - cancel: a cancellable task ends "cancelled" once its work stops; a
 *    finished task, a task that cannot be cancelled safely and an unknown
 *    id are refused (ERR_VM_STATE, ERR_VM_STATE, ERR_NOT_FOUND);
 *  - at most TASKS_RUNNING_MAX run (ERR_BUSY); shutdown stops what can be
 *    stopped and counts what cannot;
 *  - persistence: finished tasks read the same after the store is reopened;
 *    only the newest TASKS_KEEP finished tasks are kept;
 *  - restart: rows left queued or running by a stop are closed from what
 *    recovery did with each VM, with a real host whose VMs carry the
 *    journals an interrupted operation leaves: rolled back, rolled forward,
 *    a create or clone that never committed, a delete half done, a locked
 *    VM (pending until its key comes back), nothing to recover.
 * tests/integration/test_api_tasks.py drives the same through vmseald.
 */
#include "test_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "keyprov/keyprov.h"
#include "server/store.h"
#include "server/tasks.h"
#include "vm/descriptor.h"
#include "vm/journal.h"
#include "vm/vm.h"

static char dir[64];     /* data directories */
static char runtime[64]; /* on /dev/shm */

struct host {
    char data_dir[128];
    struct keyprov *kp;
    struct vm_host *h;
    struct store *st;
};

static struct host main_host;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void open_keyprov(struct host *x, const char *data_dir, bool add_n1)
{
    assert_ok(file_mkdir(data_dir, 0700));
    assert_ok(keyprov_open(data_dir, &x->kp));
    if (add_n1) {
        vs_result r = keyprov_add_native(x->kp, "n1");
        if (r.code != ERR_EXISTS)
            assert_ok(r);
        err_clear();
    }
}

static void open_vm_host(struct host *x)
{
    struct vm_host_config cfg = {.data_dir = x->data_dir,
                                 .runtime_dir = runtime,
                                 .qemu = "/nonexistent/qemu-system-x86_64",
                                 .ovmf_code = "/nonexistent/OVMF_CODE.fd",
                                 .ovmf_vars = "/nonexistent/OVMF_VARS.fd",
                                 .accel = "tcg"};
    assert_ok(vm_host_open(&cfg, x->kp, &x->h));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vmseal-test-tasks-XXXXXX");
    snprintf(runtime, sizeof runtime, "/dev/shm/vmseal-test-tasks-XXXXXX");
    if (mkdtemp(dir) == NULL || mkdtemp(runtime) == NULL)
        return -1;
    snprintf(main_host.data_dir, sizeof main_host.data_dir, "%s/main", dir);
    open_keyprov(&main_host, main_host.data_dir, true);
    open_vm_host(&main_host);
    assert_ok(store_open(main_host.data_dir, &main_host.st));
    assert_ok(tasks_init(main_host.st, main_host.h));
    return 0;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    if (tasks_shutdown(5000) != 0)
        return -1;
    store_close(&main_host.st);
    vm_host_close(&main_host.h);
    keyprov_close(&main_host.kp);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, runtime);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- work for tasks ----------------------------------------------------------- */

static atomic_int args_freed;
static atomic_bool release; /* lets fn_blocking return */
static atomic_int started_count;
static atomic_bool hold; /* keeps fn_until_cancel from ending after a cancel */

static void *new_arg(void)
{
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = 7;
    return p;
}

static void free_arg(void *p)
{
    assert_int_equal(*(int *)p, 7); /* freed once, never twice */
    *(int *)p = 0;
    free(p);
    atomic_fetch_add(&args_freed, 1);
}

static vs_result fn_ok(void *arg, struct vm_task_ctl *ctl, json_t **result)
{
    assert_int_equal(*(int *)arg, 7);
    ctl->progress(ctl->ctx, 50);
    *result = json_pack("{s:b}", "done", 1);
    return OK_RESULT;
}

static vs_result fn_fail(void *arg, struct vm_task_ctl *ctl, json_t **result)
{
    (void)arg;
    (void)ctl;
    (void)result;
    RAISE(ERR_VM_STATE);
    return err_detail("VM 'w1' is running: power it off first");
}

/* Like the bulk engine: reports progress and stops at a cancel request. */
static vs_result fn_until_cancel(void *arg, struct vm_task_ctl *ctl, json_t **result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&started_count, 1);
    ctl->progress(ctl->ctx, 30);
    while (!atomic_load(&ctl->cancel) || atomic_load(&hold))
        sleep_ms(5);
    RAISE(ERR_CANCELLED);
    return err_detail("the operation was cancelled: rolled back");
}

/* Like a power-on: ignores the cancel flag and waits for the test. */
static vs_result fn_blocking(void *arg, struct vm_task_ctl *ctl, json_t **result)
{
    (void)arg;
    (void)ctl;
    atomic_fetch_add(&started_count, 1);
    while (!atomic_load(&release))
        sleep_ms(5);
    *result = json_string("released");
    return OK_RESULT;
}

static const struct task_spec encrypt_spec = {
    .operation = "vm.encrypt", .target = "vm/web1", .user = "alice", .cancellable = true};
static const struct task_spec power_spec = {
    .operation = "vm.power_on", .target = "vm/web1", .user = "bob", .cancellable = false};

static char *start(const struct task_spec *spec, task_fn fn)
{
    json_t *t = NULL;
    assert_ok(tasks_start(spec, fn, new_arg(), free_arg, &t));
    assert_non_null(t);
    const char *state = json_string_value(json_object_get(t, "state"));
    assert_true(strcmp(state, "queued") == 0 || strcmp(state, "running") == 0);
    char *id = strdup(json_string_value(json_object_get(t, "id")));
    assert_non_null(id);
    json_decref(t);
    return id;
}

static const char *str(json_t *t, const char *key)
{
    return json_string_value(json_object_get(t, key));
}

/* The task once it has ended (fails after 10 s). */
static json_t *wait_end(const char *id)
{
    for (int i = 0; i < 2000; i++) {
        json_t *t = NULL;
        assert_ok(tasks_get(id, &t));
        const char *state = str(t, "state");
        if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)
            return t;
        json_decref(t);
        sleep_ms(5);
    }
    fail_msg("task %s did not end", id);
    return NULL;
}

/* Waits until the task is running with progress p. */
static void wait_progress(const char *id, int p)
{
    for (int i = 0; i < 2000; i++) {
        json_t *t = NULL;
        assert_ok(tasks_get(id, &t));
        bool there = strcmp(str(t, "state"), "running") == 0 &&
                     json_integer_value(json_object_get(t, "progress")) == p;
        json_decref(t);
        if (there)
            return;
        sleep_ms(5);
    }
    fail_msg("task %s never reached %d%%", id, p);
}

static const char *const task_keys[] = {"id",       "operation",   "target", "user",
                                        "state",    "progress",    "started", "finished",
                                        "cancellable", "result", "error",  "recovered", NULL};

static void assert_shape(json_t *t)
{
    size_t n = 0;
    for (; task_keys[n] != NULL; n++)
        if (json_object_get(t, task_keys[n]) == NULL)
            fail_msg("task without '%s'", task_keys[n]);
    assert_int_equal(json_object_size(t), n);
    assert_true(vm_is_time(str(t, "started")));
}

/* --- a task's life ---------------------------------------------------------------- */

static void test_success(void **state)
{
    (void)state;
    int freed = atomic_load(&args_freed);
    char *id = start(&encrypt_spec, fn_ok);
    assert_int_equal(strncmp(id, "t-", 2), 0);
    assert_true(strlen(id) < TASK_ID_MAX);
    json_t *t = wait_end(id);
    assert_shape(t);
    assert_string_equal(str(t, "id"), id);
    assert_string_equal(str(t, "state"), "success");
    assert_string_equal(str(t, "operation"), "vm.encrypt");
    assert_string_equal(str(t, "target"), "vm/web1");
    assert_string_equal(str(t, "user"), "alice");
    assert_true(json_is_true(json_object_get(t, "cancellable")));
    assert_int_equal(json_integer_value(json_object_get(t, "progress")), 100);
    assert_true(vm_is_time(str(t, "finished")));
    assert_true(json_is_true(json_object_get(json_object_get(t, "result"), "done")));
    assert_true(json_is_null(json_object_get(t, "error")));
    assert_true(json_is_null(json_object_get(t, "recovered")));
    json_decref(t);
    assert_int_equal(atomic_load(&args_freed), freed + 1);
    free(id);
}

static void test_failure(void **state)
{
    (void)state;
    char *id = start(&power_spec, fn_fail);
    json_t *t = wait_end(id);
    assert_shape(t);
    assert_string_equal(str(t, "state"), "error");
    assert_string_equal(str(t, "user"), "bob");
    assert_true(json_is_false(json_object_get(t, "cancellable")));
    json_t *e = json_object_get(t, "error");
    assert_string_equal(str(e, "code"), "vm_state");
    assert_string_equal(str(e, "message"), "VM 'w1' is running: power it off first");
    assert_true(json_is_null(json_object_get(t, "result")));
    assert_true(json_is_null(json_object_get(t, "recovered")));
    assert_true(vm_is_time(str(t, "finished")));
    json_decref(t);
    /* A finished task cannot be cancelled. */
    assert_err(tasks_cancel(id), ERR_VM_STATE);
    assert_non_null(strstr(err_last()->detail, "has already ended (error)"));
    free(id);
}

static void test_bad_specs_free_the_arg(void **state)
{
    (void)state;
    json_t *t = NULL;
    static const struct task_spec no_user = {.operation = "vm.encrypt", .target = "vm/w"};
    static const struct task_spec empty_op = {.operation = "", .target = "vm/w", .user = "a"};
    static const struct task_spec bad_vm = {
        .operation = "vm.clone", .target = "vm/w", .user = "a", .journal_vm = "../x"};
    char long_target[300];
    memset(long_target, 'a', sizeof long_target - 1);
    long_target[sizeof long_target - 1] = '\0';
    struct task_spec too_long = {.operation = "vm.encrypt", .target = long_target, .user = "a"};
    int freed = atomic_load(&args_freed);
    assert_err(tasks_start(&no_user, fn_ok, new_arg(), free_arg, &t), ERR_NULL_ARG);
    assert_err(tasks_start(&empty_op, fn_ok, new_arg(), free_arg, &t), ERR_INVALID_ARG);
    assert_err(tasks_start(&bad_vm, fn_ok, new_arg(), free_arg, &t), ERR_INVALID_ARG);
    assert_err(tasks_start(&too_long, fn_ok, new_arg(), free_arg, &t), ERR_INVALID_ARG);
    assert_null(t);
    assert_int_equal(atomic_load(&args_freed), freed + 4);
    /* Nothing was recorded for them. */
    json_t *all = NULL;
    size_t i;
    json_t *x;
    assert_ok(tasks_list(&all));
    json_array_foreach(all, i, x) assert_string_not_equal(str(x, "target"), long_target);
    json_decref(all);
}

static void test_unknown_ids(void **state)
{
    (void)state;
    json_t *t = NULL;
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_err(tasks_get("t-00000000-0000-4000-8000-000000000000", &t), ERR_NOT_FOUND);
    assert_non_null(strstr(err_last()->detail, "no task"));
    assert_err(tasks_cancel("t-00000000-0000-4000-8000-000000000000"), ERR_NOT_FOUND);
    assert_err(tasks_get(long_id, &t), ERR_NOT_FOUND);
    assert_err(tasks_cancel(long_id), ERR_NOT_FOUND);
    assert_err(tasks_get("' OR 1=1 --", &t), ERR_NOT_FOUND);
    assert_null(t);
}

/* --- cancel -------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
    (void)state;
    char *id = start(&encrypt_spec, fn_until_cancel);
    wait_progress(id, 30); /* progress comes from memory while it runs */
    json_t *t = NULL;
    assert_ok(tasks_get(id, &t));
    assert_shape(t);
    assert_true(json_is_null(json_object_get(t, "finished")));
    json_decref(t);
    atomic_store(&hold, true);
    assert_ok(tasks_cancel(id));
    assert_ok(tasks_cancel(id)); /* asking twice is harmless */
    atomic_store(&hold, false);
    t = wait_end(id);
    assert_string_equal(str(t, "state"), "cancelled");
    assert_string_equal(str(json_object_get(t, "error"), "code"), "cancelled");
    assert_int_equal(json_integer_value(json_object_get(t, "progress")), 30);
    assert_true(json_is_null(json_object_get(t, "recovered")));
    json_decref(t);
    assert_err(tasks_cancel(id), ERR_VM_STATE);
    assert_non_null(strstr(err_last()->detail, "has already ended (cancelled)"));
    free(id);
}

static void test_cancel_refused_when_not_safe(void **state)
{
    (void)state;
    atomic_store(&release, false);
    int before = atomic_load(&started_count);
    char *id = start(&power_spec, fn_blocking);
    while (atomic_load(&started_count) == before)
        sleep_ms(5);
    assert_err(tasks_cancel(id), ERR_VM_STATE);
    char want[128];
    snprintf(want, sizeof want, "task %s (vm.power_on) cannot be cancelled safely", id);
    assert_string_equal(err_last()->detail, want);
    /* tasks_init again (tests only) is refused while a task runs. */
    assert_err(tasks_init(main_host.st, main_host.h), ERR_BUSY);
    atomic_store(&release, true);
    json_t *t = wait_end(id);
    assert_string_equal(str(t, "state"), "success");
    assert_string_equal(json_string_value(json_object_get(t, "result")), "released");
    json_decref(t);
    free(id);
}

static void test_list_newest_first(void **state)
{
    (void)state;
    char *a = start(&encrypt_spec, fn_ok);
    json_decref(wait_end(a));
    char *b = start(&power_spec, fn_fail);
    json_decref(wait_end(b));
    char *c = start(&encrypt_spec, fn_until_cancel);
    wait_progress(c, 30);
    json_t *all = NULL;
    assert_ok(tasks_list(&all));
    assert_true(json_array_size(all) >= 3);
    assert_string_equal(str(json_array_get(all, 0), "id"), c);
    assert_string_equal(str(json_array_get(all, 0), "state"), "running");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "progress")), 30);
    assert_string_equal(str(json_array_get(all, 1), "id"), b);
    assert_string_equal(str(json_array_get(all, 1), "state"), "error");
    assert_string_equal(str(json_array_get(all, 2), "id"), a);
    assert_string_equal(str(json_array_get(all, 2), "state"), "success");
    size_t i;
    json_t *x;
    json_array_foreach(all, i, x) assert_shape(x);
    json_decref(all);
    assert_ok(tasks_cancel(c));
    json_decref(wait_end(c));
    free(a);
    free(b);
    free(c);
}

static void test_busy_past_the_limit(void **state)
{
    (void)state;
    char *ids[TASKS_RUNNING_MAX];
    json_t *t = NULL;
    atomic_store(&release, false);
    /* Tasks still ending from earlier tests would take slots. */
    assert_int_equal(tasks_shutdown(0), 0);
    int before = atomic_load(&started_count);
    for (size_t i = 0; i < TASKS_RUNNING_MAX; i++)
        ids[i] = start(&power_spec, fn_blocking);
    while (atomic_load(&started_count) < before + TASKS_RUNNING_MAX)
        sleep_ms(5);
    int freed = atomic_load(&args_freed);
    assert_err(tasks_start(&power_spec, fn_blocking, new_arg(), free_arg, &t), ERR_BUSY);
    assert_non_null(strstr(err_last()->detail, "too many tasks"));
    assert_null(t);
    assert_int_equal(atomic_load(&args_freed), freed + 1);
    /* Shutdown asks; these cannot stop and are counted. */
    assert_int_equal(tasks_shutdown(100), TASKS_RUNNING_MAX);
    atomic_store(&release, true);
    assert_int_equal(tasks_shutdown(10000), 0);
    for (size_t i = 0; i < TASKS_RUNNING_MAX; i++) {
        t = wait_end(ids[i]);
        assert_string_equal(str(t, "state"), "success");
        json_decref(t);
        free(ids[i]);
    }
}

static void test_shutdown_stops_cancellable(void **state)
{
    (void)state;
    char *id = start(&encrypt_spec, fn_until_cancel);
    wait_progress(id, 30);
    assert_int_equal(tasks_shutdown(5000), 0);
    json_t *t = wait_end(id);
    /* As a restart after the operation rolled back says it. */
    assert_string_equal(str(t, "state"), "error");
    assert_string_equal(str(json_object_get(t, "error"), "code"), "interrupted");
    assert_string_equal(str(t, "recovered"), "rolled_back");
    json_decref(t);
    free(id);
}

/* --- persistence --------------------------------------------------------------------- */

static void reopen_store(struct host *x)
{
    assert_int_equal(tasks_shutdown(5000), 0);
    store_close(&x->st);
    assert_ok(store_open(x->data_dir, &x->st));
    assert_ok(tasks_init(x->st, x->h));
}

static void test_finished_tasks_persist(void **state)
{
    (void)state;
    char *id = start(&encrypt_spec, fn_ok);
    json_t *before = wait_end(id);
    json_t *list_before = NULL;
    assert_ok(tasks_list(&list_before));
    reopen_store(&main_host);
    json_t *after = NULL, *list_after = NULL;
    assert_ok(tasks_get(id, &after));
    assert_true(json_equal(before, after));
    assert_ok(tasks_list(&list_after));
    assert_true(json_equal(list_before, list_after));
    json_decref(before);
    json_decref(after);
    json_decref(list_before);
    json_decref(list_after);
    free(id);
}

static size_t count_rows(struct store *st, const char *where)
{
    char sql[256];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks %s", where);
    sqlite3 *db = store_lock(st);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    store_unlock(st);
    return n;
}

static void exec_sql(struct store *st, const char *sql)
{
    sqlite3 *db = store_lock(st);
    vs_result r = store_exec(db, sql);
    store_unlock(st);
    assert_ok(r);
}

/* A row as a stopped vmseald leaves it, or a finished one. */
static void insert_row(struct store *st, const char *id, const char *operation,
                       const char *target, const char *state, const char *journal_vm)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO tasks (id, operation, target, user, state, progress, started,"
             " cancellable, journal_vm) VALUES ('%s', '%s', '%s', 'root', '%s', 0,"
             " '2026-11-23T10:00:00Z', 1, %s%s%s)",
             id, operation, target, state, journal_vm != NULL ? "'" : "",
             journal_vm != NULL ? journal_vm : "NULL", journal_vm != NULL ? "'" : "");
    exec_sql(st, sql);
}

static void test_purge_keeps_the_newest(void **state)
{
    (void)state;
    char id[32];
    exec_sql(main_host.st, "BEGIN");
    for (int i = 0; i < TASKS_KEEP + 20; i++) {
        snprintf(id, sizeof id, "t-purge-%04d", i);
        insert_row(main_host.st, id, "vm.encrypt", "vm/p", i % 2 ? "success" : "error", NULL);
    }
    exec_sql(main_host.st, "COMMIT");
    assert_true(count_rows(main_host.st, "WHERE state IN ('success','error','cancelled')") >
                TASKS_KEEP);
    reopen_store(&main_host);
    assert_int_equal(count_rows(main_host.st, ""), TASKS_KEEP);
    json_t *t = NULL;
    assert_err(tasks_get("t-purge-0019", &t), ERR_NOT_FOUND);
    assert_ok(tasks_get("t-purge-0020", &t));
    json_decref(t);
    /* A task that ends purges too. */
    char *nid = start(&encrypt_spec, fn_ok);
    json_decref(wait_end(nid));
    assert_int_equal(count_rows(main_host.st, ""), TASKS_KEEP);
    assert_err(tasks_get("t-purge-0020", &t), ERR_NOT_FOUND);
    json_t *all = NULL;
    assert_ok(tasks_list(&all));
    assert_int_equal(json_array_size(all), TASKS_KEEP);
    assert_string_equal(str(json_array_get(all, 0), "id"), nid);
    json_decref(all);
    free(nid);
}

/* --- restart ---------------------------------------------------------------------------- */

static void create_vm(struct vm_host *h, const char *name, bool encrypt)
{
    struct vm_create_spec spec = {.name = name, .disk_count = 1, .encrypt = encrypt};
    json_t *out = NULL;
    spec.disks[0] = 1 << 20;
    assert_ok(vm_create(h, &spec, NULL, &out));
    json_decref(out);
}

static uint64_t generation(const char *datastore, const char *name)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_ok(vm_desc_load(datastore, name, d, NULL));
    uint64_t g = d->generation;
    free(d);
    return g;
}

/* The journal an operation leaves when it began at vm.json generation g. */
static void leave_journal(const char *datastore, const char *name, const char *op, uint64_t g)
{
    struct vm_journal j = {.generation = g, .has_generation = true};
    snprintf(j.op, sizeof j.op, "%s", op);
    vm_time_now(j.started);
    assert_ok(vm_journal_write(datastore, name, &j));
}

static void touch(const char *datastore, const char *name, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", datastore, name, file);
    assert_ok(file_write_atomic(path, "x", 1, 0600));
}

static bool exists(const char *datastore, const char *name, const char *file)
{
    char path[512];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s%s%s", datastore, name, file[0] ? "/" : "", file);
    assert_true(n > 0 && (size_t)n < sizeof path);
    return stat(path, &st) == 0;
}

static enum vm_recovery outcome(struct vm_host *h, const char *vm)
{
    enum vm_recovery o;
    assert_ok(vm_host_recovery_outcome(h, vm, &o));
    return o;
}

static json_t *get(const char *id)
{
    json_t *t = NULL;
    assert_ok(tasks_get(id, &t));
    assert_shape(t);
    return t;
}

static void assert_closed(const char *id, const char *state, const char *recovered,
                          const char *message_part)
{
    json_t *t = get(id);
    assert_string_equal(str(t, "state"), state);
    assert_string_equal(str(t, "recovered"), recovered);
    assert_true(vm_is_time(str(t, "finished")));
    json_t *e = json_object_get(t, "error");
    if (message_part == NULL) {
        assert_true(json_is_null(e));
        assert_int_equal(json_integer_value(json_object_get(t, "progress")), 100);
    } else {
        assert_string_equal(str(e, "code"), "interrupted");
        if (strstr(str(e, "message"), message_part) == NULL)
            fail_msg("task %s: message '%s' lacks '%s'", id, str(e, "message"), message_part);
    }
    json_decref(t);
}

static void test_restart_closes_interrupted_tasks(void **state)
{
    (void)state;
    struct host x = {0};
    struct buf backup;
    char datastore[256], other_dir[256];
    snprintf(x.data_dir, sizeof x.data_dir, "%s/restart", dir);
    snprintf(datastore, sizeof datastore, "%s/vms", x.data_dir);
    snprintf(other_dir, sizeof other_dir, "%s/no-providers", dir);

    /* Before: a host with its VMs, its store with the tasks table. */
    open_keyprov(&x, x.data_dir, true);
    assert_ok(buf_alloc(&backup, 0, 1 << 16));
    assert_ok(keyprov_backup(x.kp, "n1", "a passphrase", 12, &backup));
    open_vm_host(&x);
    assert_int_equal(tasks_shutdown(5000), 0);
    assert_ok(store_open(x.data_dir, &x.st));
    assert_ok(tasks_init(x.st, x.h));
    const char *plain_vms[] = {"back", "fwd", "plain", "gone", "cfwd"};
    for (size_t i = 0; i < sizeof plain_vms / sizeof plain_vms[0]; i++)
        create_vm(x.h, plain_vms[i], false);
    create_vm(x.h, "locked", true);
    /* A finished task, which a restart leaves alone. */
    char *done = start(&encrypt_spec, fn_ok);
    json_t *done_before = wait_end(done);
    vm_host_close(&x.h);
    keyprov_close(&x.kp);

    /* The stop, as each interrupted operation leaves its VM: */
    /* an operation that had not committed (a new file, no new vm.json), */
    leave_journal(datastore, "back", "rekey-deep", generation(datastore, "back"));
    touch(datastore, "back", "disk0-99.img");
    /* one that had (vm.json saved since, the old file not removed yet), */
    leave_journal(datastore, "fwd", "encrypt", generation(datastore, "fwd") - 1);
    touch(datastore, "fwd", "disk0-98.img");
    /* a clone and a create that never committed (no vm.json), */
    char path[512];
    snprintf(path, sizeof path, "%s/cdst", datastore);
    assert_int_equal(mkdir(path, 0700), 0);
    leave_journal(datastore, "cdst", "clone", 0);
    touch(datastore, "cdst", "disk0-1.img");
    snprintf(path, sizeof path, "%s/cnew", datastore);
    assert_int_equal(mkdir(path, 0700), 0); /* killed before its journal */
    /* a create that committed, */
    leave_journal(datastore, "cfwd", "create", 0);
    /* a delete that renamed the VM away, */
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/gone", datastore);
    snprintf(to, sizeof to, "%s/.trash-0192f3a0-7c1e-4b8a-9d2f-6e5a4b3c2d1e", datastore);
    assert_int_equal(rename(from, to), 0);
    /* and an operation on a VM whose key will not come at first. */
    leave_journal(datastore, "locked", "rekey-deep", generation(datastore, "locked"));
    touch(datastore, "locked", "disk0-97.img");
    /* The rows those tasks left. */
    insert_row(x.st, "t-back", "vm.rekey", "vm/back", "running", NULL);
    insert_row(x.st, "t-fwd", "vm.encrypt", "vm/fwd", "running", NULL);
    insert_row(x.st, "t-clone", "vm.clone", "vm/plain", "running", "cdst");
    insert_row(x.st, "t-create", "vm.create", "vm/cnew", "running", NULL);
    insert_row(x.st, "t-cfwd", "vm.create", "vm/cfwd", "queued", NULL);
    insert_row(x.st, "t-gone", "vm.delete", "vm/gone", "running", NULL);
    insert_row(x.st, "t-locked", "vm.rekey", "vm/locked", "running", NULL);
    insert_row(x.st, "t-power", "vm.power_on", "vm/plain", "running", NULL);
    insert_row(x.st, "t-queued", "vm.encrypt", "vm/never", "queued", NULL);
    insert_row(x.st, "t-root", "provider.backup", "/", "running", NULL);
    store_close(&x.st);

    /* The restart: the host (recovery) first, with no provider for the
     * locked VM's key, then the tasks. */
    open_keyprov(&x, other_dir, false);
    open_vm_host(&x);
    assert_int_equal(outcome(x.h, "back"), VM_RECOVERY_ROLLED_BACK);
    assert_false(exists(datastore, "back", "disk0-99.img"));
    assert_false(exists(datastore, "back", "journal"));
    assert_int_equal(outcome(x.h, "fwd"), VM_RECOVERY_ROLLED_FORWARD);
    assert_false(exists(datastore, "fwd", "disk0-98.img"));
    assert_int_equal(outcome(x.h, "cdst"), VM_RECOVERY_ROLLED_BACK);
    assert_false(exists(datastore, "cdst", ""));
    assert_int_equal(outcome(x.h, "cnew"), VM_RECOVERY_ROLLED_BACK);
    assert_false(exists(datastore, "cnew", ""));
    assert_int_equal(outcome(x.h, "cfwd"), VM_RECOVERY_ROLLED_FORWARD);
    assert_int_equal(outcome(x.h, "gone"), VM_RECOVERY_ROLLED_FORWARD);
    assert_false(exists(to, "", ""));
    assert_int_equal(outcome(x.h, "locked"), VM_RECOVERY_PENDING);
    assert_true(exists(datastore, "locked", "journal"));
    assert_int_equal(outcome(x.h, "plain"), VM_RECOVERY_NONE);
    assert_int_equal(outcome(x.h, "never"), VM_RECOVERY_NONE);
    enum vm_recovery o;
    assert_err(vm_host_recovery_outcome(x.h, "../x", &o), ERR_INVALID_ARG);

    assert_ok(store_open(x.data_dir, &x.st));
    assert_ok(tasks_init(x.st, x.h));
    assert_closed("t-back", "error", "rolled_back", "rolled back");
    assert_closed("t-fwd", "success", "rolled_forward", NULL);
    assert_closed("t-clone", "error", "rolled_back", "rolled back");
    assert_closed("t-create", "error", "rolled_back", "rolled back");
    assert_closed("t-cfwd", "success", "rolled_forward", NULL);
    assert_closed("t-gone", "success", "rolled_forward", NULL);
    assert_closed("t-locked", "error", "pending", "is locked");
    assert_closed("t-power", "error", "none", "nothing was changed");
    assert_closed("t-queued", "error", "none", "nothing was changed");
    assert_closed("t-root", "error", "none", "nothing was changed");
    /* The finished task is as it was; nothing is left queued or running. */
    json_t *done_after = get(done);
    assert_true(json_equal(done_before, done_after));
    assert_int_equal(count_rows(x.st, "WHERE state IN ('queued', 'running')"), 0);
    /* A closed task cannot be cancelled. */
    assert_err(tasks_cancel("t-back"), ERR_VM_STATE);

    /* The key comes back: recovery finishes and the task says so. */
    assert_ok(keyprov_restore(x.kp, buf_data(&backup), buf_len(&backup), "a passphrase", 12,
                              NULL, NULL));
    vm_host_tick(x.h);
    assert_int_equal(outcome(x.h, "locked"), VM_RECOVERY_ROLLED_BACK);
    assert_false(exists(datastore, "locked", "journal"));
    assert_false(exists(datastore, "locked", "disk0-97.img"));
    assert_closed("t-locked", "error", "rolled_back", "rolled back");
    json_t *all = NULL;
    assert_ok(tasks_list(&all));
    assert_int_equal(json_array_size(all), 11);
    json_decref(all);

    /* Another restart changes nothing. */
    json_t *list_before = NULL, *list_after = NULL;
    assert_ok(tasks_list(&list_before));
    store_close(&x.st);
    assert_ok(store_open(x.data_dir, &x.st));
    assert_ok(tasks_init(x.st, x.h));
    assert_ok(tasks_list(&list_after));
    assert_true(json_equal(list_before, list_after));

    json_decref(list_before);
    json_decref(list_after);
    json_decref(done_before);
    json_decref(done_after);
    free(done);
    buf_free(&backup);
    store_close(&x.st);
    vm_host_close(&x.h);
    keyprov_close(&x.kp);
    /* Back to the main host for the tests after this one. */
    assert_ok(tasks_init(main_host.st, main_host.h));
}

/* --- errors as the API shows them ----------------------------------------------------- */

static void test_api_error_json(void **state)
{
    (void)state;
    static const struct {
        enum err_code code;
        int status;
        const char *name;
    } cases[] = {
        {ERR_UNAUTHENTICATED, 401, "unauthenticated"},
        {ERR_FORBIDDEN, 403, "forbidden"},
        {ERR_RATE_LIMITED, 429, "rate_limited"},
        {ERR_PERM, 409, "not_allowed"},
        {ERR_STORE, 500, "internal"},
        {ERR_CANCELLED, 409, "cancelled"},
        {ERR_NOT_FOUND, 404, "not_found"},
        {ERR_VM_STATE, 409, "vm_state"},
        {ERR_INTERNAL, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status = 0;
        RAISE(cases[i].code);
        err_detail("detail %zu", i);
        json_t *e = api_error_json(&status);
        assert_int_equal(status, cases[i].status);
        assert_string_equal(str(e, "code"), cases[i].name);
        char want[32];
        snprintf(want, sizeof want, "detail %zu", i);
        assert_string_equal(str(e, "message"), want);
        json_decref(e);
    }
    /* Without a detail: the code's message. */
    int status;
    RAISE(ERR_FORBIDDEN);
    json_t *e = api_error_json(&status);
    assert_string_equal(str(e, "message"), err_message(ERR_FORBIDDEN));
    json_decref(e);
    err_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_failure),
        cmocka_unit_test(test_bad_specs_free_the_arg),
        cmocka_unit_test(test_unknown_ids),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_refused_when_not_safe),
        cmocka_unit_test(test_list_newest_first),
        cmocka_unit_test(test_busy_past_the_limit),
        cmocka_unit_test(test_shutdown_stops_cancellable),
        cmocka_unit_test(test_finished_tasks_persist),
        cmocka_unit_test(test_purge_keeps_the_newest),
        cmocka_unit_test(test_restart_closes_interrupted_tasks),
        cmocka_unit_test(test_api_error_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
