/* api.c - the dispatcher of vmseald's API (docs/api.md): finds the route,
 * authenticates the caller, runs the handler (which checks privileges
 * through api_require), audits the call, and shapes errors. Handlers run on
 * a worker thread per request, never on the event loop: an operation may
 * wait on a key provider, on qemu-img or on Argon2id. */
#include "server/api.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/secret.h"
#include "server/api_internal.h"
#include "vm/vmutil.h"

#define API_MAX_SEGMENTS 8
#define API_PATH_MAX 512

/* --- request bodies ------------------------------------------------------ */

RESULT api_body_only(json_t *body, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("unknown field '%.60s' in the request", k);
        }
    }
    return OK_RESULT;
}

RESULT api_body_str(json_t *body, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return OK_RESULT;
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' is required", key);
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be a string", key);
    }
    *out = json_string_value(v);
    return OK_RESULT;
}

RESULT api_body_bool(json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v)) {
        *out = false;
        return OK_RESULT;
    }
    if (!json_is_boolean(v)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be true or false", key);
    }
    *out = json_is_true(v);
    return OK_RESULT;
}

RESULT api_body_u64(json_t *body, const char *key, bool required, uint64_t *out)
{
    json_t *v = json_object_get(body, key);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return OK_RESULT;
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' is required", key);
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be a non-negative integer", key);
    }
    *out = (uint64_t)json_integer_value(v);
    return OK_RESULT;
}

RESULT api_body_strings(json_t *body, const char *key, bool required, const char **out,
                        size_t max, size_t *n)
{
    json_t *v = json_object_get(body, key), *x;
    size_t i;
    *n = 0;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return OK_RESULT;
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' is required", key);
    }
    if (!json_is_array(v) || json_array_size(v) > max) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be a list of at most %zu strings", key, max);
    }
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x)) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("field '%s' must hold strings", key);
        }
        out[i] = json_string_value(x);
    }
    *n = json_array_size(v);
    return OK_RESULT;
}

void api_body_wipe(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    if (json_is_string(v))
        secret_wipe((char *)json_string_value(v), json_string_length(v));
}

RESULT api_wrap(const char *key, json_t *value, json_t **out)
{
    ENSURE(value != NULL, ERR_NOMEM);
    *out = json_object();
    if (*out == NULL || json_object_set_new(*out, key, value) != 0) {
        json_decref(*out);
        *out = NULL;
        BAIL(ERR_NOMEM);
    }
    return OK_RESULT;
}

/* --- privileges and tasks ------------------------------------------------ */

/* The privilege name in authz_require's detail ("... lacks privilege X on Y"). */
void api_note_missing(struct api_call *c)
{
    const char *d = err_last()->detail, *p = strstr(d, "lacks privilege ");
    if (p == NULL)
        return;
    p += strlen("lacks privilege ");
    size_t n = strcspn(p, " ");
    snprintf(c->missing, sizeof c->missing, "%.*s", (int)n, p);
}

RESULT api_require(struct api_call *c, const char *operation, const char *vm,
                   const char *parent, const struct op_facts *f)
{
    c->checked = true;
    c->operation = operation;
    if (vm != NULL)
        snprintf(c->object, sizeof c->object, "vm/%s", vm);
    else
        snprintf(c->object, sizeof c->object, "%s", parent != NULL ? parent : "/");
    vs_result rc = authz_require_op(c->ctx->authz, &c->subject, operation, vm, parent, f);
    if (!is_ok(rc) && rc.code == ERR_FORBIDDEN)
        api_note_missing(c);
    return rc;
}

void api_require_none(struct api_call *c, const char *operation)
{
    c->checked = true;
    c->operation = operation;
    if (c->object[0] == '\0')
        snprintf(c->object, sizeof c->object, "/");
}

RESULT api_start_task(struct api_call *c, const char *operation, const char *target,
                      const char *journal_vm, bool cancellable, task_fn fn, void *arg,
                      void (*free_arg)(void *), int *status, json_t **out)
{
    struct task_spec spec = {.operation = operation,
                             .target = target,
                             .user = c->user,
                             .cancellable = cancellable,
                             .journal_vm = journal_vm};
    json_t *t = NULL;
    GUARD(tasks_start(&spec, fn, arg, free_arg, &t));
    snprintf(c->task_id, sizeof c->task_id, "%s",
             json_string_value(json_object_get(t, "id")) != NULL
                 ? json_string_value(json_object_get(t, "id"))
                 : "");
    GUARD(api_wrap("task", t, out));
    *status = 202;
    return OK_RESULT;
}

/* --- who is calling ---------------------------------------------------------- */

static RESULT set_user(struct api_call *c, const char *user)
{
    size_t n = 0;
    snprintf(c->user, sizeof c->user, "%s", user);
    c->subject.user = c->user;
    c->subject.root = strcmp(user, AUTH_ROOT_USER) == 0;
    if (!c->subject.root)
        GUARD(auth_user_groups(c->ctx->auth, user, c->groups,
                               sizeof c->groups / sizeof c->groups[0], &n));
    c->subject.groups = c->groups;
    c->subject.group_count = n;
    return OK_RESULT;
}

static RESULT authenticate(struct api_call *c)
{
    const struct api_transport *tr = c->tr;
    if (tr->bearer != NULL) {
        struct auth_token_info info;
        GUARD(auth_token_check(c->ctx->auth, tr->bearer, &info));
        snprintf(c->token_id, sizeof c->token_id, "%s", info.id);
        return set_user(c, info.user);
    }
    if (strcmp(tr->via, "socket") == 0 && tr->has_uid) {
        if (tr->uid == 0)
            return set_user(c, AUTH_ROOT_USER);
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwuid_r(tr->uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL) {
            RAISE(ERR_UNAUTHENTICATED);
            return err_detail("uid %u has no login name: log in with a token", (unsigned)tr->uid);
        }
        vs_result rc = auth_user_exists(c->ctx->auth, pw.pw_name);
        if (!is_ok(rc)) {
            RAISE(ERR_UNAUTHENTICATED);
            return err_detail("Unix user '%.60s' is not a vmseal user (an administrator creates "
                              "it with: vmseal user create %.60s)",
                              pw.pw_name, pw.pw_name);
        }
        return set_user(c, pw.pw_name);
    }
    RAISE(ERR_UNAUTHENTICATED);
    return err_detail("authentication required: log in (POST /v1/session) and send the token");
}

/* --- routing ------------------------------------------------------------------ */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX in place; refuses an encoded NUL or '/' and bad escapes. */
static bool percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hexval(r[1]), lo = hi >= 0 ? hexval(r[2]) : -1;
        if (hi < 0 || lo < 0)
            return false;
        char ch = (char)(hi * 16 + lo);
        if (ch == '\0' || ch == '/')
            return false;
        *w++ = ch;
        r += 2;
    }
    *w = '\0';
    return true;
}

/* Splits "/a/b/c" into segments (in place); API_MAX_SEGMENTS + 1 when too many. */
static size_t split(char *path, char *seg[API_MAX_SEGMENTS + 1])
{
    size_t n = 0;
    char *p = path;
    while (*p == '/' && n <= API_MAX_SEGMENTS) {
        *p++ = '\0';
        seg[n++] = p;
        while (*p != '\0' && *p != '/')
            p++;
    }
    return *p == '\0' ? n : API_MAX_SEGMENTS + 1;
}

struct table {
    const struct api_route *routes;
    const size_t *count;
};

static const struct table tables[] = {
    {api_routes_admin, &api_routes_admin_count},
    {api_routes_vm, &api_routes_vm_count},
    {api_routes_kp, &api_routes_kp_count},
    {api_routes_tasks, &api_routes_tasks_count},
};

/* Finds the route: *found the match for method (NULL if none), *path_known
 * when some method matches the path. Fills c->params. */
static const struct api_route *find_route(struct api_call *c, char *seg[], size_t n,
                                          const char *method, bool *path_known)
{
    char pat[128];
    char *pseg[API_MAX_SEGMENTS + 1];
    *path_known = false;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t r = 0; r < *tables[t].count; r++) {
            const struct api_route *rt = &tables[t].routes[r];
            snprintf(pat, sizeof pat, "%s", rt->pattern);
            size_t pn = split(pat, pseg);
            if (pn != n)
                continue;
            bool match = true;
            c->nparams = 0;
            for (size_t i = 0; i < n && match; i++) {
                if (strcmp(pseg[i], "{}") == 0) {
                    match = seg[i][0] != '\0' && c->nparams < API_MAX_PARAMS;
                    if (match)
                        c->params[c->nparams++] = seg[i];
                } else {
                    match = strcmp(pseg[i], seg[i]) == 0;
                }
            }
            if (!match)
                continue;
            *path_known = true;
            if (strcmp(rt->method, method) == 0)
                return rt;
        }
    }
    return NULL;
}

static void audit_call(struct api_call *c, const char *method, const char *path, int status)
{
    if (c->ctx->audit == NULL)
        return;
    const char *result = status < 400                        ? "allowed"
                         : status == 403 && c->missing[0]    ? "denied"
                         : status == 401 || status == 429    ? "unauthenticated"
                                                             : "error";
    json_t *line = json_pack(
        "{s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:i, s:s?, s:s?, s:s?}", "user",
        c->user[0] ? c->user : NULL, "via", c->tr->via, "peer",
        c->tr->peer != NULL ? c->tr->peer : "", "method", method, "route", path, "operation",
        c->operation, "object", c->object[0] ? c->object : NULL, "result", result, "status",
        status, "missing", c->missing[0] ? c->missing : NULL, "task",
        c->task_id[0] ? c->task_id : NULL, "token", c->token_id[0] ? c->token_id : NULL);
    if (line != NULL) {
        audit_write(c->ctx->audit, line);
        json_decref(line);
    }
}

void api_handle(struct api_ctx *ctx, const struct api_transport *tr, const char *method,
                const char *path, const char *query, json_t *body, int *status, json_t **out,
                unsigned *retry_after)
{
    char mine[API_PATH_MAX];
    char *seg[API_MAX_SEGMENTS + 1];
    struct api_call *c = calloc(1, sizeof *c);
    vs_result rc = OK_RESULT;
    bool path_known = false;
    const struct api_route *rt = NULL;

    *status = 200;
    *out = NULL;
    *retry_after = 0;
    err_clear();
    if (c == NULL) {
        *status = 500;
        *out = json_pack("{s:{s:s, s:s}}", "error", "code", "internal", "message",
                         "out of memory");
        return;
    }
    c->ctx = ctx;
    c->tr = tr;
    c->body = body;
    c->query = query;
    if (strlen(path) >= sizeof mine) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no such route");
        goto fail;
    }
    snprintf(mine, sizeof mine, "%s", path);
    size_t n = split(mine, seg);
    for (size_t i = 0; i < n && i <= API_MAX_SEGMENTS; i++) {
        if (!percent_decode(seg[i])) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("invalid percent-encoding in the path");
            goto fail;
        }
    }
    rt = n <= API_MAX_SEGMENTS ? find_route(c, seg, n, method, &path_known) : NULL;
    if (rt == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail(path_known ? "method %s is not allowed on %s" : "no route %s %s", method, path);
        if (path_known) {
            *out = json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed",
                             "message", err_last()->detail);
            *status = 405;
            goto done;
        }
        goto fail;
    }
    /* Login is the one route served without a caller. */
    bool login = strcmp(rt->pattern, "/v1/session") == 0 && strcmp(method, "POST") == 0;
    if (!login) {
        rc = authenticate(c);
        if (!is_ok(rc))
            goto fail;
    }
    rc = rt->fn(c, status, out);
    if (!is_ok(rc))
        goto fail;
    if (!c->checked) {
        /* A handler that forgot its check: refuse rather than trust it. */
        log_error("a route answered without checking privileges", LOG_S("route", rt->pattern));
        json_decref(*out);
        *out = NULL;
        rc = RAISE(ERR_INTERNAL);
        err_detail("route %s checks no privilege: refused", rt->pattern);
        goto fail;
    }
    goto done;
fail:
    (void)rc;
    json_decref(*out);
    {
        json_t *e = api_error_json(status);
        *out = json_pack("{s:o}", "error", e);
    }
    if (*status == 429)
        *retry_after = c->retry_after > 0 ? c->retry_after : 1;
done:
    audit_call(c, method, path, *status);
    secret_wipe(c, sizeof *c);
    free(c);
}
