/*
 * tasks.c - see tasks.h.
 *
 * Two places hold a task. The table `tasks` in vmseald.db holds every kept
 * task: its row is inserted (synchronous=FULL: on disk) before the task's
 * thread starts, and updated once, when it ends. While a task runs, a slot
 * of `running` holds what changes often or matters only while it runs: the
 * progress (an atomic the operation's worker threads write), the cancel
 * flag, the work and its argument. A reader takes a running task from its
 * slot and any other from the table.
 *
 * Locks: tasks.mu (the slots) is taken before the store's lock, never
 * after; the ending thread holds both while it updates the row and frees
 * its slot, so that no reader sees a task in neither place or in both with
 * different states. A slot is part of a static array and never freed: a
 * task's thread owns its slot until it marks it unused, the last thing it
 * does.
 */
#include "server/tasks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "vm/vmutil.h"

#define TASK_OPERATION_MAX 48
#define TASK_TARGET_MAX 160
#define TASK_USER_MAX 64
#define TASK_STATE_MAX 16

/* The error codes of tasks ended by a stop (docs/api.md, Tasks). */
#define TASK_INTERRUPTED "interrupted"

struct task {
    bool used;
    char id[TASK_ID_MAX];
    char operation[TASK_OPERATION_MAX];
    char target[TASK_TARGET_MAX];
    char user[TASK_USER_MAX];
    char journal_vm[VM_NAME_MAX]; /* "" : the target's */
    char state[TASK_STATE_MAX]; /* queued or running */
    char started[VM_TIME_LEN];
    bool cancellable;
    bool cancel_requested; /* tasks_cancel */
    bool stopping;         /* tasks_shutdown */
    atomic_uint progress;
    task_fn fn;
    void *arg;
    void (*free_arg)(void *);
    struct vm_task_ctl ctl;
};

static struct {
    pthread_mutex_t mu;
    struct store *st;   /* NULL until tasks_init */
    struct vm_host *h;  /* for recovery outcomes of tasks closed as pending */
    size_t pending;     /* rows with "recovered": "pending" (0: nothing to look at) */
    size_t running_count;
    struct task running[TASKS_RUNNING_MAX];
} tasks = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* --- errors as the API shows them ------------------------------------------ */

static const struct {
    enum err_code code;
    int http;
    const char *name;
} error_table[] = {
    {ERR_INVALID_ARG, 400, "invalid_request"},
    {ERR_TOO_LARGE, 400, "invalid_request"},
    {ERR_UNAUTHENTICATED, 401, "unauthenticated"},
    {ERR_FORBIDDEN, 403, "forbidden"},
    {ERR_NOT_FOUND, 404, "not_found"},
    {ERR_EXISTS, 409, "exists"},
    {ERR_VM_STATE, 409, "vm_state"},
    {ERR_BUSY, 409, "busy"},
    {ERR_CANCELLED, 409, "cancelled"},
    {ERR_PERM, 409, "not_allowed"}, /* refusals such as "the built-in roles cannot change" */
    {ERR_KEY_STATE, 422, "key_state"},
    {ERR_VM_LOCKED, 423, "vm_locked"},
    {ERR_RATE_LIMITED, 429, "rate_limited"},
    {ERR_KEY_UNAVAILABLE, 502, "provider_unavailable"},
    {ERR_PROVIDER, 502, "provider_unavailable"},
    {ERR_KMIP_FAILED, 502, "provider_unavailable"},
    {ERR_AUTH, 400, "authentication_failed"},
    {ERR_DISK_FORMAT, 400, "invalid_image"},
    {ERR_DESCRIPTOR, 500, "integrity"},
    {ERR_LUKS_KEY, 500, "integrity"},
    {ERR_STORE, 500, "internal"},
};

json_t *api_error_json(int *http_status)
{
    const struct err_state *e = err_last();
    char message[512];
    const char *name = "internal";
    *http_status = 500;
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++) {
        if (error_table[i].code == e->code) {
            name = error_table[i].name;
            *http_status = error_table[i].http;
        }
    }
    int n = snprintf(message, sizeof message, "%s", e->detail[0] ? e->detail : err_message(e->code));
    if (e->sys_errno != 0 && n > 0 && (size_t)n < sizeof message)
        snprintf(message + n, sizeof message - (size_t)n, ": %s", strerror(e->sys_errno));
    return json_pack("{s:s, s:s}", "code", name, "message", message);
}

/* --- the table ---------------------------------------------------------------- */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tasks ("
    " seq INTEGER PRIMARY KEY," /* order of creation: newest first is seq DESC */
    " id TEXT NOT NULL UNIQUE,"
    " operation TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " user TEXT NOT NULL,"
    " state TEXT NOT NULL"
    "  CHECK (state IN ('queued', 'running', 'success', 'error', 'cancelled')),"
    " progress INTEGER NOT NULL,"
    " started TEXT NOT NULL,"
    " finished TEXT,"
    " cancellable INTEGER NOT NULL,"
    " result TEXT,"    /* JSON text, or NULL */
    " error TEXT,"     /* JSON text {code, message}, or NULL */
    " recovered TEXT," /* rolled_back, rolled_forward, pending, none; NULL unless interrupted */
    " journal_vm TEXT"  /* task_spec.journal_vm: the VM a restart looks at, NULL: target's */
    ");"
    "CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state);";

#define FINISHED_STATES "('success', 'error', 'cancelled')"
#define COLUMNS                                                                       \
    "id, operation, target, user, state, progress, started, finished, cancellable, " \
    "result, error, recovered"

static RESULT prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return store_error(db, "tasks: preparing a statement");
    }
    return OK_RESULT;
}

/* Binds text (NULL binds SQL NULL). */
static RESULT bind_text(sqlite3 *db, sqlite3_stmt *s, int i, const char *text)
{
    int e = text != NULL ? sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT)
                         : sqlite3_bind_null(s, i);
    return e == SQLITE_OK ? OK_RESULT : store_error(db, "tasks: binding a value");
}

/* JSON text of v (NULL for none); *out NULL when v is NULL. */
static RESULT json_text(json_t *v, char **out)
{
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return OK_RESULT;
    *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    ENSURE(*out != NULL, ERR_NOMEM);
    return OK_RESULT;
}

/* Column i as JSON: null when NULL, or when the text does not parse (only
 * a damaged database; said in the log). */
static json_t *column_json(sqlite3_stmt *s, int i)
{
    const char *text = (const char *)sqlite3_column_text(s, i);
    if (text == NULL)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        log_warn("task row holds invalid JSON", LOG_S("task", (const char *)sqlite3_column_text(s, 0)));
        return json_null();
    }
    return v;
}

static json_t *column_string_or_null(sqlite3_stmt *s, int i)
{
    const char *text = (const char *)sqlite3_column_text(s, i);
    return text != NULL ? json_string(text) : json_null();
}

/* The task of the current row of a SELECT COLUMNS. */
static json_t *row_json(sqlite3_stmt *s)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:o, s:b, s:o, s:o, s:o}", "id",
                     (const char *)sqlite3_column_text(s, 0), "operation",
                     (const char *)sqlite3_column_text(s, 1), "target",
                     (const char *)sqlite3_column_text(s, 2), "user",
                     (const char *)sqlite3_column_text(s, 3), "state",
                     (const char *)sqlite3_column_text(s, 4), "progress",
                     sqlite3_column_int(s, 5), "started",
                     (const char *)sqlite3_column_text(s, 6), "finished",
                     column_string_or_null(s, 7), "cancellable", sqlite3_column_int(s, 8) != 0,
                     "result", column_json(s, 9), "error", column_json(s, 10), "recovered",
                     column_string_or_null(s, 11));
}

/* A running task (tasks.mu held). */
static json_t *slot_json(const struct task *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:n, s:b, s:n, s:n, s:n}", "id",
                     t->id, "operation", t->operation, "target", t->target, "user", t->user,
                     "state", t->state, "progress", (int)atomic_load(&t->progress), "started",
                     t->started, "finished", "cancellable", t->cancellable, "result", "error",
                     "recovered");
}

/* Keeps the newest TASKS_KEEP finished tasks (store lock held). */
static RESULT purge(sqlite3 *db)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM tasks WHERE state IN " FINISHED_STATES " AND seq <= "
             "(SELECT seq FROM tasks WHERE state IN " FINISHED_STATES
             " ORDER BY seq DESC LIMIT 1 OFFSET %d);",
             TASKS_KEEP);
    return store_exec(db, sql);
}

/* Writes the end of a task into its row (store lock held). */
static RESULT row_finish(sqlite3 *db, const char *id, const char *state, unsigned progress,
                         json_t *result, json_t *error, const char *recovered)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *s = NULL;
    char *result_text = NULL, *error_text = NULL, finished[VM_TIME_LEN];
    vm_time_now(finished);
    GUARD_OUT(json_text(result, &result_text));
    GUARD_OUT(json_text(error, &error_text));
    GUARD_OUT(prepare(db,
                      "UPDATE tasks SET state = ?1, progress = ?2, finished = ?3, result = ?4,"
                      " error = ?5, recovered = ?6 WHERE id = ?7",
                      &s));
    GUARD_OUT(bind_text(db, s, 1, state));
    ENSURE_OUT(sqlite3_bind_int(s, 2, (int)progress) == SQLITE_OK, ERR_STORE);
    GUARD_OUT(bind_text(db, s, 3, finished));
    GUARD_OUT(bind_text(db, s, 4, result_text));
    GUARD_OUT(bind_text(db, s, 5, error_text));
    GUARD_OUT(bind_text(db, s, 6, recovered));
    GUARD_OUT(bind_text(db, s, 7, id));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_error(db, "tasks: recording the end of a task");
out:
    sqlite3_finalize(s);
    free(result_text);
    free(error_text);
    return rc;
}

/* --- closing what a stop interrupted ----------------------------------------- */

/* How an interrupted task ends, from what recovery did with its VM. */
struct closing {
    const char *state;
    unsigned progress;
    const char *recovered;
    char message[256];
};

static void closing_for(struct vm_host *h, const char *target, const char *journal_vm,
                        struct closing *c)
{
    enum vm_recovery outcome = VM_RECOVERY_NONE;
    const char *vm = journal_vm != NULL                ? journal_vm
                     : strncmp(target, "vm/", 3) == 0 ? target + 3
                                                       : NULL;
    if (vm != NULL && !is_ok(vm_host_recovery_outcome(h, vm, &outcome))) {
        outcome = VM_RECOVERY_NONE; /* not a VM name: nothing recovery knows */
        err_clear();
    }
    c->state = "error";
    c->progress = 0;
    switch (outcome) {
    case VM_RECOVERY_ROLLED_FORWARD:
        c->state = "success";
        c->progress = 100;
        c->recovered = "rolled_forward";
        c->message[0] = '\0';
        break;
    case VM_RECOVERY_ROLLED_BACK:
        c->recovered = "rolled_back";
        snprintf(c->message, sizeof c->message,
                 "vmseald stopped before the task finished; the operation was rolled back");
        break;
    case VM_RECOVERY_PENDING:
        c->recovered = "pending";
        snprintf(c->message, sizeof c->message,
                 "vmseald stopped before the task finished; VM '%s' is locked (or its "
                 "recovery failed): the operation is rolled back or forward once its key "
                 "can be fetched",
                 vm);
        break;
    case VM_RECOVERY_NONE:
    default:
        c->recovered = "none";
        snprintf(c->message, sizeof c->message,
                 "vmseald stopped before the task finished; nothing was changed");
        break;
    }
}

/* Closes the rows that are queued or running (at init: no task of this
 * process runs), or those marked pending whose VM recovery has since
 * finished (only_pending). Store lock held. */
static RESULT close_interrupted(sqlite3 *db, struct vm_host *h, bool only_pending,
                                size_t *pending_out)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *s = NULL;
    size_t pending = 0;
    GUARD(store_begin(db));
    GUARD_OUT(prepare(db,
                      only_pending
                          ? "SELECT id, target, journal_vm FROM tasks WHERE recovered = 'pending'"
                          : "SELECT id, target, journal_vm FROM tasks WHERE state IN "
                            "('queued', 'running')",
                      &s));
    int e;
    while ((e = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *target = (const char *)sqlite3_column_text(s, 1);
        const char *journal_vm = (const char *)sqlite3_column_text(s, 2);
        struct closing c;
        closing_for(h, target, journal_vm, &c);
        bool decided = strcmp(c.recovered, "rolled_back") == 0 ||
                       strcmp(c.recovered, "rolled_forward") == 0;
        if (!decided && only_pending) {
            pending++;
            continue; /* still waiting: its row says so already */
        }
        if (strcmp(c.recovered, "pending") == 0)
            pending++;
        json_t *error = c.message[0] != '\0'
                            ? json_pack("{s:s, s:s}", "code", TASK_INTERRUPTED, "message",
                                        c.message)
                            : NULL;
        ENSURE_OUT(c.message[0] == '\0' || error != NULL, ERR_NOMEM);
        rc = row_finish(db, id, c.state, c.progress, NULL, error, c.recovered);
        json_decref(error);
        GUARD_OUT(rc);
        log_info("task interrupted by a stop closed", LOG_S("task", id), LOG_S("target", target),
                 LOG_S("state", c.state), LOG_S("recovered", c.recovered));
    }
    if (e != SQLITE_DONE) {
        rc = store_error(db, "tasks: reading interrupted tasks");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    GUARD_OUT(purge(db));
    GUARD_OUT(store_commit(db));
    *pending_out = pending;
out:
    sqlite3_finalize(s);
    if (!is_ok(rc)) {
        struct err_state saved = *err_last();
        store_rollback(db);
        (void)err_restore(&saved);
    }
    return rc;
}

/* Brings rows closed as pending up to date with recovery (tasks.mu held). */
static void refresh_pending(void)
{
    if (tasks.pending == 0 || tasks.h == NULL)
        return;
    sqlite3 *db = store_lock(tasks.st);
    size_t pending = tasks.pending;
    if (is_ok(close_interrupted(db, tasks.h, true, &pending))) {
        tasks.pending = pending;
    } else {
        log_warn("tasks: pending recoveries not brought up to date", LOG_ERR());
        err_clear();
    }
    store_unlock(tasks.st);
}

RESULT tasks_init(struct store *st, struct vm_host *h)
{
    vs_result rc = OK_RESULT;
    size_t pending = 0;
    pthread_mutex_lock(&tasks.mu);
    /* Once per start; again (tests: another store) only while no task runs. */
    if (tasks.running_count > 0) {
        pthread_mutex_unlock(&tasks.mu);
        RAISE(ERR_BUSY);
        return err_detail("tasks are running");
    }
    sqlite3 *db = store_lock(st);
    rc = store_exec(db, schema);
    if (is_ok(rc))
        rc = close_interrupted(db, h, false, &pending);
    store_unlock(st);
    if (is_ok(rc)) {
        tasks.st = st;
        tasks.h = h;
        tasks.pending = pending;
    }
    pthread_mutex_unlock(&tasks.mu);
    return rc;
}

/* --- running ------------------------------------------------------------------- */

static void task_progress(void *ctx, unsigned percent)
{
    struct task *t = ctx;
    atomic_store(&t->progress, percent > 100 ? 100 : percent);
}

/* Records the end of t and frees its slot. Takes result and error. */
static void task_end(struct task *t, const char *state, json_t *result, json_t *error,
                     const char *recovered)
{
    pthread_mutex_lock(&tasks.mu);
    unsigned progress = strcmp(state, "success") == 0 ? 100 : atomic_load(&t->progress);
    sqlite3 *db = store_lock(tasks.st);
    vs_result rc = row_finish(db, t->id, state, progress, result, error, recovered);
    if (is_ok(rc))
        rc = purge(db);
    store_unlock(tasks.st);
    if (!is_ok(rc)) {
        /* Its row stays queued: the next start closes it as interrupted. */
        log_error("task end not recorded", LOG_S("task", t->id), LOG_S("state", state),
                  LOG_ERR());
        err_clear();
    }
    json_decref(result);
    json_decref(error);
    t->used = false;
    tasks.running_count--;
    pthread_mutex_unlock(&tasks.mu);
}

static void *task_main(void *p)
{
    struct task *t = p;
    json_t *result = NULL, *error = NULL;
    const char *state, *recovered = NULL;
    vs_result rc;

    pthread_mutex_lock(&tasks.mu);
    /* Asked to stop while queued: the work does not begin at all. */
    bool cancelled_early = t->cancel_requested, stopped_early = t->stopping;
    snprintf(t->state, sizeof t->state, "running");
    pthread_mutex_unlock(&tasks.mu);

    err_clear();
    if (cancelled_early) {
        rc = RAISE(ERR_CANCELLED);
        err_detail("the task was cancelled before it started");
    } else if (stopped_early) {
        rc = RAISE(ERR_CANCELLED);
    } else {
        rc = t->fn(t->arg, &t->ctl, &result);
    }
    int status;
    if (!is_ok(rc)) {
        json_decref(result);
        result = NULL;
        error = api_error_json(&status);
        log_warn("task failed", LOG_S("task", t->id), LOG_S("operation", t->operation),
                 LOG_S("target", t->target), LOG_ERR());
    }
    if (t->free_arg != NULL)
        t->free_arg(t->arg);
    t->arg = NULL;

    pthread_mutex_lock(&tasks.mu);
    bool cancel_requested = t->cancel_requested, stopping = t->stopping;
    pthread_mutex_unlock(&tasks.mu);
    if (is_ok(rc)) {
        state = "success";
    } else if (rc.code == ERR_CANCELLED && cancel_requested) {
        state = "cancelled";
    } else if (rc.code == ERR_CANCELLED && stopping) {
        /* tasks_shutdown stopped it: as a restart would say. */
        json_decref(error);
        error = json_pack("{s:s, s:s}", "code", TASK_INTERRUPTED, "message",
                          stopped_early
                              ? "vmseald was stopping: the task did not start; nothing was changed"
                              : "vmseald was stopping: the operation was rolled back");
        state = "error";
        recovered = stopped_early ? "none" : "rolled_back";
    } else {
        state = "error";
    }
    task_end(t, state, result, error, recovered);
    return NULL;
}

static RESULT copy_field(char *out, size_t size, const char *value, const char *what)
{
    size_t n = strlen(value);
    if (n == 0 || n >= size) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("task %s must be 1 to %zu characters", what, size - 1);
    }
    memcpy(out, value, n + 1);
    return OK_RESULT;
}

/* Fills a free slot for spec and inserts its row (tasks.mu held). */
static RESULT task_create(const struct task_spec *spec, struct task **out)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *s = NULL;
    char uuid[VM_UUID_LEN + 1];
    struct task *t = NULL;

    if (tasks.st == NULL) {
        RAISE(ERR_INTERNAL);
        return err_detail("tasks_init was not called");
    }
    for (size_t i = 0; i < TASKS_RUNNING_MAX && t == NULL; i++)
        if (!tasks.running[i].used)
            t = &tasks.running[i];
    if (t == NULL) {
        RAISE(ERR_BUSY);
        return err_detail("too many tasks are running (%d): try again when some have ended",
                          TASKS_RUNNING_MAX);
    }
    memset(t, 0, sizeof *t);
    GUARD(copy_field(t->operation, sizeof t->operation, spec->operation, "operation"));
    GUARD(copy_field(t->target, sizeof t->target, spec->target, "target"));
    GUARD(copy_field(t->user, sizeof t->user, spec->user, "user"));
    if (spec->journal_vm != NULL) {
        GUARD(vm_check_name("VM", spec->journal_vm));
        GUARD(copy_field(t->journal_vm, sizeof t->journal_vm, spec->journal_vm, "VM"));
    }
    GUARD(vm_uuid_new(uuid));
    snprintf(t->id, sizeof t->id, "t-%s", uuid);
    snprintf(t->state, sizeof t->state, "queued");
    vm_time_now(t->started);
    t->cancellable = spec->cancellable;
    atomic_init(&t->progress, 0);
    atomic_init(&t->ctl.cancel, false);
    t->ctl.progress = task_progress;
    t->ctl.ctx = t;

    sqlite3 *db = store_lock(tasks.st);
    GUARD_OUT(prepare(db,
                      "INSERT INTO tasks (id, operation, target, user, state, progress, started,"
                      " cancellable, journal_vm) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, ?7)",
                      &s));
    GUARD_OUT(bind_text(db, s, 1, t->id));
    GUARD_OUT(bind_text(db, s, 2, t->operation));
    GUARD_OUT(bind_text(db, s, 3, t->target));
    GUARD_OUT(bind_text(db, s, 4, t->user));
    GUARD_OUT(bind_text(db, s, 5, t->started));
    ENSURE_OUT(sqlite3_bind_int(s, 6, t->cancellable) == SQLITE_OK, ERR_STORE);
    GUARD_OUT(bind_text(db, s, 7, t->journal_vm[0] != '\0' ? t->journal_vm : NULL));
    if (sqlite3_step(s) != SQLITE_DONE) {
        rc = store_error(db, "tasks: recording a new task");
        goto out;
    }
    t->used = true;
    tasks.running_count++;
    *out = t;
out:
    sqlite3_finalize(s);
    store_unlock(tasks.st);
    return rc;
}

RESULT tasks_start(const struct task_spec *spec, task_fn fn, void *arg, void (*free_arg)(void *),
                   json_t **json_out)
{
    struct task *t = NULL;
    *json_out = NULL;
    vs_result rc = OK_RESULT;
    if (spec->operation == NULL || spec->target == NULL || spec->user == NULL) {
        rc = RAISE(ERR_NULL_ARG);
        goto fail;
    }
    pthread_mutex_lock(&tasks.mu);
    rc = task_create(spec, &t);
    if (is_ok(rc) && t != NULL) {
        t->fn = fn;
        t->arg = arg;
        t->free_arg = free_arg;
        *json_out = slot_json(t);
        if (*json_out == NULL)
            rc = RAISE(ERR_NOMEM); /* the task runs all the same: its row says how it ends */
    }
    pthread_mutex_unlock(&tasks.mu);
    if (t == NULL)
        goto fail;

    pthread_t th;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = pthread_create(&th, &attr, task_main, t);
        pthread_attr_destroy(&attr);
    }
    if (e != 0) {
        if (free_arg != NULL)
            free_arg(arg);
        t->arg = NULL;
        task_end(t, "error",
                 NULL,
                 json_pack("{s:s, s:s}", "code", "internal", "message",
                           "cannot start a thread for the task"),
                 NULL);
        json_decref(*json_out);
        *json_out = NULL;
        RAISE(ERR_INTERNAL);
        return err_detail("cannot start a thread for the task");
    }
    if (!is_ok(rc)) {
        json_decref(*json_out);
        *json_out = NULL;
    }
    return rc;
fail:
    if (free_arg != NULL) {
        struct err_state saved = *err_last();
        free_arg(arg);
        (void)err_restore(&saved);
    }
    return rc;
}

/* The running task named id, or NULL (tasks.mu held). */
static struct task *find_running(const char *id)
{
    for (size_t i = 0; i < TASKS_RUNNING_MAX; i++)
        if (tasks.running[i].used && strcmp(tasks.running[i].id, id) == 0)
            return &tasks.running[i];
    return NULL;
}

static RESULT not_found(const char *id)
{
    RAISE(ERR_NOT_FOUND);
    return err_detail("no task '%.60s'", id);
}

/* Looks up a finished (or interrupted) task's row: *out the task, or NULL
 * when there is none (tasks.mu held). */
static RESULT find_row(const char *id, json_t **out)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *s = NULL;
    *out = NULL;
    sqlite3 *db = store_lock(tasks.st);
    GUARD_OUT(prepare(db, "SELECT " COLUMNS " FROM tasks WHERE id = ?1", &s));
    GUARD_OUT(bind_text(db, s, 1, id));
    int e = sqlite3_step(s);
    if (e == SQLITE_ROW) {
        *out = row_json(s);
        ENSURE_OUT(*out != NULL, ERR_NOMEM);
    } else if (e != SQLITE_DONE) {
        rc = store_error(db, "tasks: reading a task");
    }
out:
    sqlite3_finalize(s);
    store_unlock(tasks.st);
    return rc;
}

RESULT tasks_get(const char *id, json_t **out)
{
    vs_result rc = OK_RESULT;
    *out = NULL;
    if (strlen(id) >= TASK_ID_MAX)
        return not_found(id);
    pthread_mutex_lock(&tasks.mu);
    ENSURE_OUT(tasks.st != NULL, ERR_INTERNAL);
    refresh_pending();
    struct task *t = find_running(id);
    if (t != NULL) {
        *out = slot_json(t);
        ENSURE_OUT(*out != NULL, ERR_NOMEM);
    } else {
        GUARD_OUT(find_row(id, out));
        if (*out == NULL)
            rc = not_found(id);
    }
out:
    pthread_mutex_unlock(&tasks.mu);
    return rc;
}

RESULT tasks_list(json_t **out)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *s = NULL;
    json_t *a = json_array();
    *out = NULL;
    ENSURE(a != NULL, ERR_NOMEM);
    pthread_mutex_lock(&tasks.mu);
    ENSURE_OUT(tasks.st != NULL, ERR_INTERNAL);
    refresh_pending();
    sqlite3 *db = store_lock(tasks.st);
    rc = prepare(db, "SELECT " COLUMNS " FROM tasks ORDER BY seq DESC", &s);
    int e = SQLITE_DONE;
    while (is_ok(rc) && (e = sqlite3_step(s)) == SQLITE_ROW) {
        const struct task *t = find_running((const char *)sqlite3_column_text(s, 0));
        json_t *o = t != NULL ? slot_json(t) : row_json(s);
        if (o == NULL || json_array_append_new(a, o) != 0)
            rc = RAISE(ERR_NOMEM);
    }
    if (is_ok(rc) && e != SQLITE_DONE)
        rc = store_error(db, "tasks: listing tasks");
    sqlite3_finalize(s);
    store_unlock(tasks.st);
    GUARD_OUT(rc);
    *out = a;
    a = NULL;
out:
    pthread_mutex_unlock(&tasks.mu);
    json_decref(a);
    return rc;
}

RESULT tasks_cancel(const char *id)
{
    vs_result rc = OK_RESULT;
    json_t *row = NULL;
    if (strlen(id) >= TASK_ID_MAX)
        return not_found(id);
    pthread_mutex_lock(&tasks.mu);
    ENSURE_OUT(tasks.st != NULL, ERR_INTERNAL);
    struct task *t = find_running(id);
    if (t != NULL && !t->cancellable) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("task %s (%s) cannot be cancelled safely", t->id, t->operation);
    } else if (t != NULL) {
        /* The operation sees the flag at its next chunk and rolls back; a
         * queued task ends before it begins. Asking twice is harmless. */
        t->cancel_requested = true;
        atomic_store(&t->ctl.cancel, true);
        log_info("task cancel requested", LOG_S("task", t->id), LOG_S("operation", t->operation));
    } else {
        GUARD_OUT(find_row(id, &row));
        if (row == NULL) {
            rc = not_found(id);
        } else {
            rc = RAISE(ERR_VM_STATE);
            err_detail("task %s (%s) has already ended (%s)", id,
                       json_string_value(json_object_get(row, "operation")),
                       json_string_value(json_object_get(row, "state")));
        }
    }
out:
    pthread_mutex_unlock(&tasks.mu);
    json_decref(row);
    return rc;
}

size_t tasks_shutdown(unsigned timeout_ms)
{
    size_t running = 0;
    for (unsigned waited = 0;; waited += 50) {
        pthread_mutex_lock(&tasks.mu);
        running = tasks.running_count;
        for (size_t i = 0; i < TASKS_RUNNING_MAX; i++) {
            if (tasks.running[i].used && !tasks.running[i].stopping) {
                tasks.running[i].stopping = true;
                atomic_store(&tasks.running[i].ctl.cancel, true);
            }
        }
        pthread_mutex_unlock(&tasks.mu);
        if (running == 0 || waited >= timeout_ms)
            return running;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
