/* tasks.c - see tasks.h. */
#include "server/tasks.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "vm/vmutil.h"

struct task {
    char id[TASK_ID_MAX];
    char operation[48];
    char target[160];
    char state[16]; /* queued, running, success, error */
    atomic_uint progress;
    char started[VM_TIME_LEN];
    char finished[VM_TIME_LEN];
    json_t *result;
    json_t *error;
    task_fn fn;
    void *arg;
    void (*free_arg)(void *);
    struct vm_task_ctl ctl;
};

static pthread_mutex_t tasks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct task *tasks[TASKS_KEEP];
static size_t tasks_next; /* ring position */
static unsigned long long tasks_seq;

static const struct {
    enum err_code code;
    int http;
    const char *name;
} error_table[] = {
    {ERR_INVALID_ARG, 400, "invalid_request"}, {ERR_TOO_LARGE, 400, "invalid_request"},
    {ERR_NOT_FOUND, 404, "not_found"},         {ERR_EXISTS, 409, "exists"},
    {ERR_VM_STATE, 409, "vm_state"},           {ERR_BUSY, 409, "busy"},
    {ERR_VM_LOCKED, 423, "vm_locked"},         {ERR_KEY_STATE, 422, "key_state"},
    {ERR_KEY_UNAVAILABLE, 502, "provider_unavailable"},
    {ERR_PROVIDER, 502, "provider_unavailable"},
    {ERR_KMIP_FAILED, 502, "provider_unavailable"},
    {ERR_AUTH, 400, "authentication_failed"},  {ERR_DISK_FORMAT, 400, "invalid_image"},
    {ERR_CANCELLED, 409, "cancelled"},         {ERR_DESCRIPTOR, 500, "integrity"},
    {ERR_LUKS_KEY, 500, "integrity"},
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

static json_t *task_json_locked(const struct task *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:o, s:O?, s:O?}", "id", t->id,
                     "operation", t->operation, "target", t->target, "state", t->state,
                     "progress", (int)atomic_load(&t->progress), "started", t->started,
                     "finished", t->finished[0] ? json_string(t->finished) : json_null(),
                     "result", t->result, "error", t->error);
}

static void task_progress(void *ctx, unsigned percent)
{
    struct task *t = ctx;
    atomic_store(&t->progress, percent);
}

static void *task_main(void *p)
{
    struct task *t = p;
    json_t *result = NULL;
    pthread_mutex_lock(&tasks_mu);
    snprintf(t->state, sizeof t->state, "running");
    pthread_mutex_unlock(&tasks_mu);
    err_clear();
    vs_result rc = t->fn(t->arg, &t->ctl, &result);
    json_t *error = NULL;
    if (!is_ok(rc)) {
        int status;
        error = api_error_json(&status);
        log_warn("task failed", LOG_S("task", t->id), LOG_S("operation", t->operation),
                 LOG_S("target", t->target), LOG_ERR());
    }
    if (t->free_arg != NULL)
        t->free_arg(t->arg);
    t->arg = NULL;
    pthread_mutex_lock(&tasks_mu);
    t->result = is_ok(rc) ? result : NULL;
    if (!is_ok(rc))
        json_decref(result);
    t->error = error;
    if (is_ok(rc))
        atomic_store(&t->progress, 100);
    snprintf(t->state, sizeof t->state, "%s", is_ok(rc) ? "success" : "error");
    vm_time_now(t->finished);
    pthread_mutex_unlock(&tasks_mu);
    return NULL;
}

static void task_free(struct task *t)
{
    if (t == NULL)
        return;
    json_decref(t->result);
    json_decref(t->error);
    free(t);
}

RESULT tasks_start(const char *operation, const char *target, task_fn fn, void *arg,
                   void (*free_arg)(void *), json_t **json_out)
{
    struct task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        if (free_arg != NULL)
            free_arg(arg);
        BAIL(ERR_NOMEM);
    }
    char uuid[VM_UUID_LEN + 1];
    vs_result rc = vm_uuid_new(uuid);
    if (!is_ok(rc)) {
        if (free_arg != NULL)
            free_arg(arg);
        free(t);
        return rc;
    }
    snprintf(t->operation, sizeof t->operation, "%s", operation);
    snprintf(t->target, sizeof t->target, "%s", target);
    snprintf(t->state, sizeof t->state, "queued");
    vm_time_now(t->started);
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    t->ctl.progress = task_progress;
    t->ctl.ctx = t;
    atomic_init(&t->ctl.cancel, false);
    atomic_init(&t->progress, 0);

    pthread_mutex_lock(&tasks_mu);
    snprintf(t->id, sizeof t->id, "t-%llu-%.8s", ++tasks_seq, uuid);
    /* The oldest finished task leaves the ring; a running one never does. */
    struct task *old = tasks[tasks_next];
    if (old != NULL && old->finished[0] == '\0') {
        pthread_mutex_unlock(&tasks_mu);
        if (free_arg != NULL)
            free_arg(arg);
        free(t);
        RAISE(ERR_BUSY);
        return err_detail("too many tasks are running");
    }
    task_free(old);
    tasks[tasks_next] = t;
    tasks_next = (tasks_next + 1) % TASKS_KEEP;
    *json_out = task_json_locked(t);
    pthread_mutex_unlock(&tasks_mu);

    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&th, &attr, task_main, t);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        pthread_mutex_lock(&tasks_mu);
        snprintf(t->state, sizeof t->state, "error");
        t->error = json_pack("{s:s, s:s}", "code", "internal", "message",
                             "cannot start a thread for the task");
        vm_time_now(t->finished);
        if (t->free_arg != NULL)
            t->free_arg(t->arg);
        t->arg = NULL;
        pthread_mutex_unlock(&tasks_mu);
    }
    return OK_RESULT;
}

size_t tasks_shutdown(unsigned timeout_ms)
{
    size_t running = 0;
    for (unsigned waited = 0;; waited += 50) {
        running = 0;
        pthread_mutex_lock(&tasks_mu);
        for (size_t i = 0; i < TASKS_KEEP; i++) {
            if (tasks[i] != NULL && tasks[i]->finished[0] == '\0') {
                atomic_store(&tasks[i]->ctl.cancel, true);
                running++;
            }
        }
        pthread_mutex_unlock(&tasks_mu);
        if (running == 0 || waited >= timeout_ms)
            return running;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

RESULT tasks_get(const char *id, json_t **out)
{
    vs_result rc = OK_RESULT;
    pthread_mutex_lock(&tasks_mu);
    *out = NULL;
    for (size_t i = 0; i < TASKS_KEEP && *out == NULL; i++)
        if (tasks[i] != NULL && strcmp(tasks[i]->id, id) == 0)
            *out = task_json_locked(tasks[i]);
    pthread_mutex_unlock(&tasks_mu);
    if (*out == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no task '%.60s'", id);
    }
    return rc;
}

RESULT tasks_list(json_t **out)
{
    json_t *a = json_array();
    ENSURE(a != NULL, ERR_NOMEM);
    pthread_mutex_lock(&tasks_mu);
    for (size_t k = 0; k < TASKS_KEEP; k++) {
        size_t i = (tasks_next + TASKS_KEEP - 1 - k) % TASKS_KEEP;
        if (tasks[i] != NULL)
            json_array_append_new(a, task_json_locked(tasks[i]));
    }
    pthread_mutex_unlock(&tasks_mu);
    *out = a;
    return OK_RESULT;
}
