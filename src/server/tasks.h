/*
 * tasks.h - every operation that is not instant runs as a task: a thread
 * of its own, with a state, a progress percentage, start and end times,
 * the user who started it, a result or an error.
 *
 * Tasks are persistent (table `tasks` in vmseald.db): a row is written
 * before the task starts and updated when it ends (progress is kept in
 * memory only). At the next start, a task that was queued or running when
 * vmseald stopped is closed according to what VM recovery did with its
 * operation (vm_host_recovery_outcome): rolled forward means
 * state "success" with "recovered": "rolled_forward"; rolled back means
 * state "error" with error {code "interrupted", message saying it was
 * rolled back} and "recovered": "rolled_back". The last TASKS_KEEP finished
 * tasks are kept; older ones are purged.
 *
 * Cancel: a task started cancellable (the operations whose work honours
 * vm_task_ctl.cancel and roll back: encrypt, decrypt, deep rekey, clone,
 * export, disk policy changes) can be cancelled while queued or running;
 * it ends in state "cancelled" once its operation has rolled back. Others
 * are refused (ERR_VM_STATE, "task X (vm.power_on) cannot be cancelled
 * safely"), as is a finished task.
 */
#ifndef VMSEAL_SERVER_TASKS_H
#define VMSEAL_SERVER_TASKS_H

#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>

#include "core/result.h"
#include "server/store.h"
#include "vm/vm.h"

#define TASKS_KEEP 1000
#define TASKS_RUNNING_MAX 256
#define TASK_ID_MAX 48

/* The work of a task: runs on the task's thread; returns its result (a
 * new JSON reference) or an error (the thread's last error). */
typedef vs_result (*task_fn)(void *arg, struct vm_task_ctl *ctl, json_t **result);

struct task_spec {
    const char *operation; /* "vm.encrypt" */
    const char *target;    /* "vm/web1" */
    const char *user;      /* who started it */
    bool cancellable;
    /* The VM whose journal the operation writes when it is not the
     * target's (a clone writes its destination's): what a restart looks
     * at to close the task. NULL: the target's. */
    const char *journal_vm;
};

/* Loads the table, closes tasks interrupted by a stop (above). Call once,
 * after vm_host_open (recovery has run) and before serving. */
RESULT tasks_init(struct store *st, struct vm_host *h) __attribute__((nonnull));

/* Starts a task; arg is owned by the task and released with free_arg
 * after fn returns (also on failure to start). *json_out gets the task's
 * JSON (a new reference). ERR_BUSY past TASKS_RUNNING_MAX running. */
RESULT tasks_start(const struct task_spec *spec, task_fn fn, void *arg,
                   void (*free_arg)(void *), json_t **json_out)
    __attribute__((nonnull(1, 2, 5)));

/* A task's JSON by id (ERR_NOT_FOUND):
 * {"id", "operation", "target", "user", "state", "progress", "started",
 *  "finished", "cancellable", "result", "error", "recovered"} */
RESULT tasks_get(const char *id, json_t **out) __attribute__((nonnull));
/* Every kept task, newest first. */
RESULT tasks_list(json_t **out) __attribute__((nonnull));
/* Asks a task to stop (above). */
RESULT tasks_cancel(const char *id) __attribute__((nonnull));

/* At shutdown: asks every unfinished task to stop (the bulk engine honours
 * it and the operation rolls back; others run to their end), then waits up
 * to timeout_ms for them. Returns how many are still running: their
 * threads use the host, so it must not be freed while any is. Tasks still
 * running stay "running" in the table: the next start closes them. */
size_t tasks_shutdown(unsigned timeout_ms);

/* Error object {code, message} and HTTP status for the thread's last error. */
json_t *api_error_json(int *http_status);

#endif
