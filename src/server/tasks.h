/*
 * tasks.h - every operation that is not instant runs as a task: a thread
 * of its own, with a state, a progress percentage, start and end times, a
 * result or an error. Tasks are kept in memory (the last TASKS_KEEP);
 * operations interrupted by a stop of vmseald are finished or rolled back
 * by the VM journal at the next start.
 */
#ifndef VMSEAL_SERVER_TASKS_H
#define VMSEAL_SERVER_TASKS_H

#include <stdatomic.h>

#include <jansson.h>

#include "core/result.h"
#include "vm/vm.h"

#define TASKS_KEEP 256
#define TASK_ID_MAX 48

struct task;

/* The work of a task: runs on the task's thread; returns its result (a
 * new JSON reference) or an error (the thread's last error). */
typedef vs_result (*task_fn)(void *arg, struct vm_task_ctl *ctl, json_t **result);

/* Starts a task; arg is owned by the task and released with free_arg
 * after fn returns. *json_out gets the task's JSON (a new reference). */
RESULT tasks_start(const char *operation, const char *target, task_fn fn, void *arg,
                   void (*free_arg)(void *), json_t **json_out)
    __attribute__((nonnull(1, 2, 3, 6)));

/* A task's JSON by id (ERR_NOT_FOUND), or the list, newest first. */
RESULT tasks_get(const char *id, json_t **out) __attribute__((nonnull));
RESULT tasks_list(json_t **out) __attribute__((nonnull));

/* At shutdown: asks every unfinished task to stop (the bulk engine honours
 * it and the operation rolls back; others run to their end), then waits up
 * to timeout_ms for them. Returns how many are still running: their
 * threads use the host, so it must not be freed while any is. */
size_t tasks_shutdown(unsigned timeout_ms);

/* Error object {code, message} and HTTP status for the thread's last error. */
json_t *api_error_json(int *http_status);

#endif
