/*
 * api_tasks.c - the Tasks routes (docs/api.md, Tasks).
 *
 * One's own tasks need no privilege; another user's task is seen with
 * System.Read on its target (task.read_other) and cancelled with
 * Global.CancelTask there (task.cancel_other). A task's target is an
 * inventory path ("vm/web1"); a VM deleted since is checked where
 * permissions on it now resolve (authz.h: its parent is the root).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_internal.h"

#define TASKS_QUERY_MAX 256

static const struct op_facts no_facts;

static const char *const task_states[] = {"queued", "running", "success", "error", "cancelled",
                                          NULL};

/* The query of GET /v1/tasks: "state=S" and "limit=N", each at most once. */
struct list_query {
    char state[16]; /* "" for any */
    size_t limit;   /* SIZE_MAX for no limit */
};

static RESULT query_invalid(const char *why)
{
    RAISE(ERR_INVALID_ARG);
    return err_detail("query: %s", why);
}

static RESULT parse_limit(const char *value, size_t *out)
{
    size_t n = 0;
    if (value[0] == '\0' || strlen(value) > 9)
        return query_invalid("limit must be a number from 1 to 999999999");
    for (size_t i = 0; value[i] != '\0'; i++) {
        if (value[i] < '0' || value[i] > '9')
            return query_invalid("limit must be a number from 1 to 999999999");
        n = n * 10 + (size_t)(value[i] - '0');
    }
    if (n == 0)
        return query_invalid("limit must be a number from 1 to 999999999");
    *out = n;
    return OK_RESULT;
}

static RESULT parse_query(const char *query, struct list_query *q)
{
    char text[TASKS_QUERY_MAX];
    bool have_state = false, have_limit = false;
    q->state[0] = '\0';
    q->limit = SIZE_MAX;
    if (query == NULL || query[0] == '\0')
        return OK_RESULT;
    if (strlen(query) >= sizeof text)
        return query_invalid("too long");
    memcpy(text, query, strlen(query) + 1);
    /* "k=v&k=v": each item cut out in place. */
    size_t at = 0, len = strlen(text);
    while (at <= len) {
        size_t n = strcspn(text + at, "&");
        char *item = text + at;
        item[n] = '\0';
        at += n + 1;
        if (n == 0)
            continue; /* "a=1&&b=2", a trailing "&" */
        char *eq = strchr(item, '=');
        if (eq == NULL)
            return query_invalid("expected name=value");
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(item, "state") == 0 && !have_state) {
            size_t i = 0;
            while (task_states[i] != NULL && strcmp(task_states[i], value) != 0)
                i++;
            if (task_states[i] == NULL)
                return query_invalid("state must be queued, running, success, error or cancelled");
            memcpy(q->state, value, strlen(value) + 1); /* one of the names above */
            have_state = true;
        } else if (strcmp(item, "limit") == 0 && !have_limit) {
            GUARD(parse_limit(value, &q->limit));
            have_limit = true;
        } else {
            RAISE(ERR_INVALID_ARG);
            return err_detail("query: unknown or repeated parameter '%.32s' (state, limit)", item);
        }
    }
    return OK_RESULT;
}

static bool own_task(const struct api_call *c, json_t *task)
{
    const char *user = json_string_value(json_object_get(task, "user"));
    return user != NULL && strcmp(user, c->user) == 0;
}

static const char *task_target(json_t *task)
{
    const char *target = json_string_value(json_object_get(task, "target"));
    return target != NULL ? target : "/";
}

/* Whether the caller may see another user's task on target: System.Read
 * there. Answers are remembered per target for one listing (tasks cluster
 * on a few VMs). A failed check is a no. */
struct read_cache {
    char target[API_OBJECT_MAX];
    bool ok;
};

static bool may_read(struct api_call *c, const char *target, struct read_cache *cache,
                     size_t *n, size_t cap)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(cache[i].target, target) == 0)
            return cache[i].ok;
    bool ok = false;
    if (!is_ok(authz_has(c->ctx->authz, &c->subject, target, PRIV_SYSTEM_READ, &ok))) {
        ok = false;
        err_clear();
    }
    if (*n < cap && strlen(target) < sizeof cache[0].target) {
        memcpy(cache[*n].target, target, strlen(target) + 1);
        cache[*n].ok = ok;
        (*n)++;
    }
    return ok;
}

static vs_result r_tasks_list(struct api_call *c, int *status, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct list_query q;
    struct read_cache cache[64];
    size_t cached = 0, i;
    json_t *all = NULL, *shown = NULL, *t;
    (void)status;

    api_require_none(c, "task.list");
    GUARD(parse_query(c->query, &q));
    GUARD(tasks_list(&all));
    shown = json_array();
    ENSURE_OUT(shown != NULL, ERR_NOMEM);
    json_array_foreach(all, i, t)
    {
        if (json_array_size(shown) >= q.limit)
            break;
        const char *state = json_string_value(json_object_get(t, "state"));
        if (q.state[0] != '\0' && (state == NULL || strcmp(state, q.state) != 0))
            continue;
        if (!own_task(c, t) && !may_read(c, task_target(t), cache, &cached, 64))
            continue;
        ENSURE_OUT(json_array_append(shown, t) == 0, ERR_NOMEM);
    }
    rc = api_wrap("tasks", shown, out);
    shown = NULL;
out:
    json_decref(shown);
    json_decref(all);
    return rc;
}

/* The task of the route, checked for operation (own) or other_operation. */
static RESULT task_checked(struct api_call *c, const char *own_operation,
                           const char *other_operation, json_t **out)
{
    vs_result rc = tasks_get(c->params[0], out);
    if (!is_ok(rc)) {
        /* Nothing to check against: an unknown id is 404 to anyone (ids
         * are random, so this tells nothing). */
        struct err_state saved = *err_last();
        api_require_none(c, own_operation);
        return err_restore(&saved);
    }
    if (own_task(c, *out)) {
        api_require_none(c, own_operation);
        return OK_RESULT;
    }
    /* task.read_other and task.cancel_other check the task's VM (the
     * operation table, privileges.c); a target that is not a VM is checked
     * as the object it names. */
    const char *target = task_target(*out);
    if (strncmp(target, "vm/", 3) == 0 && is_ok(vm_check_name("VM", target + 3)))
        rc = api_require(c, other_operation, target + 3, NULL, &no_facts);
    else
        rc = api_require(c, other_operation, NULL, target, &no_facts);
    if (!is_ok(rc)) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static vs_result r_task_get(struct api_call *c, int *status, json_t **out)
{
    json_t *t = NULL;
    (void)status;
    GUARD(task_checked(c, "task.read", "task.read_other", &t));
    return api_wrap("task", t, out);
}

static vs_result r_task_cancel(struct api_call *c, int *status, json_t **out)
{
    static const char *const no_fields[] = {NULL};
    json_t *t = NULL;
    GUARD(task_checked(c, "task.cancel", "task.cancel_other", &t));
    json_decref(t);
    t = NULL;
    GUARD(api_body_only(c->body, no_fields));
    GUARD(tasks_cancel(c->params[0]));
    /* The task ends (cancelled, once its operation has rolled back) later:
     * 202, with the task as it is now. */
    GUARD(tasks_get(c->params[0], &t));
    *status = 202;
    return api_wrap("task", t, out);
}

const struct api_route api_routes_tasks[] = {
    {"GET", "/v1/tasks", r_tasks_list},
    {"GET", "/v1/tasks/{}", r_task_get},
    {"POST", "/v1/tasks/{}/cancel", r_task_cancel},
};

const size_t api_routes_tasks_count = sizeof api_routes_tasks / sizeof api_routes_tasks[0];
