/*
 * api_internal.h - what the route files (api_vm.c, api_kp.c, api_admin.c,
 * api_tasks.c) share with the dispatcher (api.c).
 *
 * Every handler checks privileges with api_require before it acts (or
 * api_require_none for the few routes any authenticated caller may use, such
 * as logout): the dispatcher refuses with 500 a handler that returned
 * success without either, so a route can never skip its check by
 * omission. The operation and object a handler checked are what the audit
 * line records.
 */
#ifndef VMSEAL_SERVER_API_INTERNAL_H
#define VMSEAL_SERVER_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "server/api.h"
#include "server/authz.h"
#include "server/tasks.h"

#define API_MAX_PARAMS 4
#define API_OBJECT_MAX 160

struct api_call {
    struct api_ctx *ctx;
    const struct api_transport *tr;
    const char *params[API_MAX_PARAMS]; /* the {} segments of the route, in order */
    size_t nparams;
    json_t *body;      /* an object; {} when the request had none */
    const char *query; /* the URI's query string, or NULL */

    /* Who: set by the dispatcher before the handler runs. */
    struct authz_subject subject;
    char user[AUTH_NAME_MAX];
    char groups[16][AUTH_NAME_MAX];
    char token_id[AUTH_TOKEN_ID_LEN]; /* "" unless a token authenticated the call */

    /* For the audit line: set by api_require / api_start_task. */
    bool checked;
    const char *operation;
    char object[API_OBJECT_MAX];
    char missing[64]; /* the privilege that was missing, "" if none */
    char task_id[TASK_ID_MAX];
    unsigned retry_after; /* seconds, for a 429 */
};

typedef vs_result (*api_route_fn)(struct api_call *c, int *status, json_t **out);

struct api_route {
    const char *method;
    const char *pattern; /* "/v1/vms/{}/clone": "{}" matches one path segment */
    api_route_fn fn;
};

/* Each route file's table. */
extern const struct api_route api_routes_vm[], api_routes_kp[], api_routes_admin[],
    api_routes_tasks[];
extern const size_t api_routes_vm_count, api_routes_kp_count, api_routes_admin_count,
    api_routes_tasks_count;

/* Request bodies: only known fields (keys ends with NULL), each of the right type. */
RESULT api_body_only(json_t *body, const char *const *keys) __attribute__((nonnull));
/* A string field; *out NULL (OK) when absent or null and !required. */
RESULT api_body_str(json_t *body, const char *key, bool required, const char **out)
    __attribute__((nonnull));
/* false when absent. */
RESULT api_body_bool(json_t *body, const char *key, bool *out) __attribute__((nonnull));
RESULT api_body_u64(json_t *body, const char *key, bool required, uint64_t *out)
    __attribute__((nonnull));
/* An array of strings (absent: *n = 0 unless required), at most max. */
RESULT api_body_strings(json_t *body, const char *key, bool required, const char **out,
                        size_t max, size_t *n) __attribute__((nonnull));
/* Wipes the text of a string field that held a secret. */
void api_body_wipe(json_t *body, const char *key) __attribute__((nonnull));

/* Checks the privileges of operation (authz_require_op) for the caller and
 * records operation + object for the audit. vm and parent as in
 * authz_require_op; object for the audit is "vm/<vm>", else parent, else "/". */
RESULT api_require(struct api_call *c, const char *operation, const char *vm,
                   const char *parent, const struct op_facts *f)
    __attribute__((nonnull(1, 2, 5)));
/* Records, for the audit, the privilege named by the last ERR_FORBIDDEN
 * (authz_require's "... lacks privilege X on Y"). */
void api_note_missing(struct api_call *c) __attribute__((nonnull));

/* For routes open to any authenticated caller (login, logout, own tokens,
 * own tasks): records operation for the audit. */
void api_require_none(struct api_call *c, const char *operation) __attribute__((nonnull));

/* Starts a task for the caller: 202 {"task": ...}. Takes arg (freed with
 * free_arg also on failure). journal_vm: the VM whose journal a restart
 * looks at when it is not the target's (a clone's destination), or NULL. */
RESULT api_start_task(struct api_call *c, const char *operation, const char *target,
                      const char *journal_vm, bool cancellable, task_fn fn, void *arg,
                      void (*free_arg)(void *), int *status, json_t **out)
    __attribute__((nonnull(1, 2, 3, 6, 9, 10)));

/* {"<key>": value} into *out (takes value; NULL value: ERR_NOMEM, as from
 * a failed json_pack). */
RESULT api_wrap(const char *key, json_t *value, json_t **out) __attribute__((nonnull(1, 3)));

#endif
