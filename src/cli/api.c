/*
 * api.c - requests, answers, errors and tasks of vmseald's API. See api.h
 * and docs/api.md.
 */
#include "cli/api.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"
#include "core/secret.h"

/* The largest request body: two certificates and a key, or a backup. */
#define CLI_REQUEST_LIMIT ((size_t)32 << 20)

/* --- JSON --- */

/* jansson's blocks carry their size in front, so that free can wipe them. */
#define CLI_JSON_HEADER 16 /* keeps the block aligned as malloc's is */

static void *cli_json_malloc(size_t n)
{
    unsigned char *p;

    if (n > SIZE_MAX - CLI_JSON_HEADER)
        return NULL;
    p = malloc(n + CLI_JSON_HEADER);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + CLI_JSON_HEADER;
}

static void cli_json_free(void *block)
{
    unsigned char *p;
    size_t n;

    if (block == NULL)
        return;
    p = (unsigned char *)block - CLI_JSON_HEADER;
    memcpy(&n, p, sizeof(n));
    secret_wipe(p, n + CLI_JSON_HEADER);
    free(p);
}

void cli_json_init(void)
{
    json_set_alloc_funcs(cli_json_malloc, cli_json_free);
}

static const char *cli_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static const char *cli_json_type_wanted(int type)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "an object",   [JSON_ARRAY] = "an array",     [JSON_STRING] = "a string",
        [JSON_INTEGER] = "an integer", [JSON_REAL] = "a real number", [JSON_TRUE] = "true",
        [JSON_FALSE] = "false",        [JSON_NULL] = "null",
    };
    if (type == CLI_JSON_BOOL)
        return "a boolean";
    if (type >= 0 && (size_t)type < sizeof(names) / sizeof(names[0]) && names[type] != NULL)
        return names[type];
    return "something else";
}

vs_result cli_json_field(const json_t *obj, const char *key, int type, bool nullable, json_t **out)
{
    vs_result rc;
    json_t *v;

    *out = NULL;
    if (obj == NULL || !json_is_object(obj)) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: '%s' is looked for in %s, not an object", key,
                   obj != NULL ? cli_json_type_name(obj) : "nothing");
        return rc;
    }
    v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (nullable)
            return OK_RESULT;
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: field '%s' is %s", key,
                   v == NULL ? "missing" : "null");
        return rc;
    }
    bool fits = type == CLI_JSON_ANY || (type == CLI_JSON_BOOL && json_is_boolean(v)) ||
                (type >= 0 && (int)json_typeof(v) == type);
    if (!fits) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: field '%s' is %s, expected %s", key,
                   cli_json_type_name(v), cli_json_type_wanted(type));
        return rc;
    }
    *out = v;
    return OK_RESULT;
}

vs_result cli_json_string(const json_t *obj, const char *key, bool nullable, const char **out)
{
    json_t *v;

    *out = NULL;
    GUARD(cli_json_field(obj, key, JSON_STRING, nullable, &v));
    if (v != NULL)
        *out = json_string_value(v);
    return OK_RESULT;
}

vs_result cli_json_parse_object(const struct buf *body, json_t **out)
{
    json_error_t error;
    json_t *v;
    vs_result rc;

    *out = NULL;
    v = json_loadb((const char *)buf_data(body), buf_len(body), JSON_REJECT_DUPLICATES, &error);
    if (v == NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: not JSON (%s at byte %d)", error.text,
                   error.position);
        return rc;
    }
    if (!json_is_object(v)) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: %s, expected an object", cli_json_type_name(v));
        json_decref(v);
        return rc;
    }
    *out = v;
    return OK_RESULT;
}

vs_result cli_json_encode(const json_t *v, struct buf *out)
{
    /* Measure, then encode straight into out: jansson keeps no copy. */
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    uint8_t *p;

    ENSURE(n > 0, ERR_INVALID_ARG);
    GUARD(buf_reserve(out, n, &p));
    ENSURE(json_dumpb(v, (char *)p, n, JSON_COMPACT) == n, ERR_INTERNAL);
    return OK_RESULT;
}

/* --- errors --- */

/* docs/api.md, "Errors": the stable codes and what they mean here. */
static const struct {
    const char *api;
    enum err_code code;
} cli_api_codes[] = {
    {"invalid_request", ERR_INVALID_ARG},
    {"not_found", ERR_NOT_FOUND},
    {"exists", ERR_EXISTS},
    {"vm_state", ERR_VM_STATE},
    {"busy", ERR_BUSY},
    {"vm_locked", ERR_VM_LOCKED},
    {"key_state", ERR_KEY_STATE},
    {"provider_unavailable", ERR_PROVIDER},
    {"forbidden", ERR_FORBIDDEN},
    {"unauthenticated", ERR_UNAUTHENTICATED},
    {"rate_limited", ERR_RATE_LIMITED},
    {"not_allowed", ERR_PERM},
    {"internal", ERR_INTERNAL},
    {"cancelled", ERR_CANCELLED},
};

enum err_code cli_api_error_code(const char *api_code)
{
    for (size_t i = 0; i < sizeof(cli_api_codes) / sizeof(cli_api_codes[0]); i++)
        if (strcmp(cli_api_codes[i].api, api_code) == 0)
            return cli_api_codes[i].code;
    return ERR_IO;
}

vs_result cli_api_error_from_json(const json_t *error, long status, struct cli_api_error *e)
{
    const char *code = NULL, *message = NULL;

    *e = (struct cli_api_error){.status = status};
    if (error != NULL && json_is_object(error)) {
        json_t *v = json_object_get(error, "code");
        code = json_is_string(v) ? json_string_value(v) : NULL;
        v = json_object_get(error, "message");
        message = json_is_string(v) ? json_string_value(v) : NULL;
    }
    if (code == NULL || message == NULL || code[0] == '\0' || message[0] == '\0') {
        snprintf(e->code, sizeof(e->code), "malformed");
        if (status != 0)
            snprintf(e->message, sizeof(e->message),
                     "vmseald answered HTTP %ld without a well-formed error", status);
        else
            snprintf(e->message, sizeof(e->message), "the task failed without a well-formed error");
        return RAISE(ERR_IO);
    }
    snprintf(e->code, sizeof(e->code), "%s", code);
    snprintf(e->message, sizeof(e->message), "%s", message);
    return RAISE(cli_api_error_code(code));
}

vs_result cli_api_error_from_answer(long status, const struct buf *body, struct cli_api_error *e)
{
    json_t *answer = NULL;
    json_error_t error;
    vs_result rc;

    answer =
        json_loadb((const char *)buf_data(body), buf_len(body), JSON_REJECT_DUPLICATES, &error);
    rc = cli_api_error_from_json(json_is_object(answer) ? json_object_get(answer, "error") : NULL,
                                 status, e);
    json_decref(answer);
    return rc;
}

/* --- requests --- */

static bool cli_is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Appends one escaped segment ("/" + seg) to b. */
static vs_result cli_api_path_segment(struct buf *b, const char *seg)
{
    static const char hex[] = "0123456789ABCDEF";
    /* "." and ".." are unreserved but mean "this" and "parent" in a path
     * (RFC 3986 §5.2.4): escape their dots. */
    bool dots = strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0;

    if (seg[0] == '\0') {
        vs_result rc = RAISE(ERR_INVALID_ARG);
        err_detail("an empty name");
        return rc;
    }
    GUARD(buf_write_u8(b, '/'));
    for (const unsigned char *p = (const unsigned char *)seg; *p != '\0'; p++) {
        if (cli_is_unreserved(*p) && !dots) {
            GUARD(buf_write_u8(b, *p));
        } else {
            uint8_t esc[3] = {'%', (uint8_t)hex[*p >> 4], (uint8_t)hex[*p & 15]};
            GUARD(buf_write_bytes(b, esc, sizeof(esc)));
        }
    }
    return OK_RESULT;
}

vs_result cli_api_path(char *out, size_t size, const char *const *segments, size_t n)
{
    struct buf b;
    vs_result rc;

    ENSURE(size > 0, ERR_TOO_LARGE);
    out[0] = '\0';
    buf_wrap(&b, out, size - 1); /* room for the NUL */
    rc = buf_write_bytes(&b, "/v1", 3);
    for (size_t i = 0; i < n && is_ok(rc); i++)
        rc = cli_api_path_segment(&b, segments[i]);
    if (rc.code == ERR_BUF_LIMIT) {
        rc = RAISE(ERR_TOO_LARGE);
        err_detail("a name is too long");
    }
    out[is_ok(rc) ? buf_len(&b) : 0] = '\0';
    return rc;
}

vs_result cli_api_call(struct cli_ctx *ctx, const char *method, const char *path,
                       const json_t *body, unsigned flags, json_t **answer)
{
    vs_result rc = OK_RESULT;
    struct buf request = {0};
    struct cli_answer got = {0};
    json_t *obj = NULL;

    *answer = NULL;
    ctx->has_api_error = false;
    if (body != NULL) {
        GUARD_OUT((flags & CLI_BODY_SECRET) ? buf_alloc_secret(&request, 0, CLI_REQUEST_LIMIT)
                                            : buf_alloc(&request, 0, CLI_REQUEST_LIMIT));
        GUARD_OUT(cli_json_encode(body, &request));
    }
    GUARD_OUT(
        cli_transport_request(ctx->transport, method, path, body != NULL ? &request : NULL, &got));
    if (got.status < 200 || got.status > 299) {
        ctx->has_api_error = true;
        rc = cli_api_error_from_answer(got.status, &got.body, &ctx->api_error);
        ctx->api_error.retry_after = got.retry_after;
        goto out;
    }
    GUARD_OUT(cli_json_parse_object(&got.body, &obj));
    *answer = obj;
    obj = NULL;
out:
    buf_free(&request); /* wipes */
    cli_answer_free(&got);
    json_decref(obj);
    return rc;
}

/* --- tasks --- */

static const char *const cli_task_states[] = {"queued", "running", "success", "error", "cancelled"};

vs_result cli_task_parse(const json_t *task, struct cli_task *t)
{
    json_t *progress;
    size_t s;

    *t = (struct cli_task){0};
    GUARD(cli_json_string(task, "id", false, &t->id));
    GUARD(cli_json_string(task, "operation", true, &t->operation));
    GUARD(cli_json_string(task, "target", true, &t->target));
    GUARD(cli_json_string(task, "state", false, &t->state));
    GUARD(cli_json_field(task, "progress", JSON_INTEGER, true, &progress));
    GUARD(cli_json_field(task, "result", CLI_JSON_ANY, true, &t->result));
    GUARD(cli_json_field(task, "error", JSON_OBJECT, true, &t->error));
    for (s = 0; s < sizeof(cli_task_states) / sizeof(cli_task_states[0]); s++)
        if (strcmp(t->state, cli_task_states[s]) == 0)
            break;
    if (s == sizeof(cli_task_states) / sizeof(cli_task_states[0])) {
        vs_result rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: unknown task state");
        return rc;
    }
    t->done = s >= 2;
    if (progress != NULL) {
        json_int_t p = json_integer_value(progress);
        if (p < 0 || p > 100) {
            vs_result rc = RAISE(ERR_INVALID_ARG);
            err_detail("malformed answer from vmseald: task progress %lld is not 0-100",
                       (long long)p);
            return rc;
        }
        t->progress = (long)p;
    }
    return OK_RESULT;
}

static volatile sig_atomic_t cli_sigint_seen;

static void cli_on_sigint(int sig)
{
    (void)sig;
    cli_sigint_seen = 1;
}

static void cli_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    /* EINTR (SIGINT) ends the nap early; the caller looks at the flag. */
    (void)nanosleep(&ts, NULL);
}

static void cli_progress_draw(struct cli_ctx *ctx, const char *label, long percent)
{
    char line[256];
    if (!ctx->progress)
        return;
    fprintf(ctx->err, "\r%s\033[K", cli_progress_format(label, percent, 30, line, sizeof(line)));
    fflush(ctx->err);
}

static void cli_progress_clear(struct cli_ctx *ctx)
{
    if (!ctx->progress)
        return;
    fputs("\r\033[K", ctx->err);
    fflush(ctx->err);
}

/* Fetches the task's next state into *answer and *t. */
static vs_result cli_task_fetch(struct cli_ctx *ctx, json_t **answer, struct cli_task *t)
{
    const char *seg[] = {"tasks", ctx->task_id};
    char path[256];
    json_t *task;

    GUARD(cli_api_path(path, sizeof(path), seg, 2));
    json_decref(*answer);
    *answer = NULL;
    GUARD(cli_api_call(ctx, "GET", path, NULL, 0, answer));
    GUARD(cli_json_field(*answer, "task", JSON_OBJECT, false, &task));
    GUARD(cli_task_parse(task, t));
    if (strcmp(t->id, ctx->task_id) != 0) {
        vs_result rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: asked for task %s, got another", ctx->task_id);
        return rc;
    }
    return OK_RESULT;
}

/* Says on stdout what changed since the last line ("t-1 running 42%"). */
static void cli_task_line(struct cli_ctx *ctx, const struct cli_task *t, char *last, size_t size)
{
    char line[256], safe[256];
    snprintf(line, sizeof(line), "%s %s %ld%%", t->id, t->state, t->progress);
    if (strcmp(line, last) == 0)
        return;
    snprintf(last, size, "%s", line);
    fprintf(ctx->out, "%s\n", cli_sanitize(line, safe, sizeof(safe)));
    fflush(ctx->out);
}

/* Polls the task ctx->task_id, whose state is in *answer and *t, until it
 * ends; *answer and *t then hold its last state. */
static vs_result cli_task_loop(struct cli_ctx *ctx, const char *label, long poll_ms, bool lines,
                               json_t **answer, struct cli_task *t)
{
    vs_result rc = OK_RESULT;
    struct sigaction on_int = {.sa_handler = cli_on_sigint}, old_int;
    bool handler, drawn = false;
    char last[256] = "";

    /* Ctrl-C stops the following, not the task: say how to find it again.
     * No SA_RESTART, so that the nap between polls ends at once. */
    cli_sigint_seen = 0;
    sigemptyset(&on_int.sa_mask);
    handler = sigaction(SIGINT, &on_int, &old_int) == 0;
    for (;;) {
        if (lines) {
            cli_task_line(ctx, t, last, sizeof(last));
        } else if (!t->done) {
            cli_progress_draw(ctx, label, t->progress);
            drawn = true;
        }
        if (t->done)
            break;
        cli_sleep_ms(poll_ms);
        if (cli_sigint_seen) {
            ctx->interrupted = true;
            rc = RAISE(ERR_CANCELLED);
            err_detail("interrupted; the task goes on in vmseald: vmseal task show %s",
                       ctx->task_id);
            goto out;
        }
        GUARD_OUT(cli_task_fetch(ctx, answer, t));
    }
    if (drawn && strcmp(t->state, "success") == 0)
        cli_progress_draw(ctx, label, 100);
out:
    if (drawn)
        cli_progress_clear(ctx);
    if (handler)
        (void)sigaction(SIGINT, &old_int, NULL);
    return rc;
}

/* The verdict of a finished task: OK on success, else its error in
 * ctx->api_error. */
static vs_result cli_task_outcome(struct cli_ctx *ctx, const struct cli_task *t)
{
    if (strcmp(t->state, "success") == 0)
        return OK_RESULT;
    ctx->has_api_error = true;
    if (strcmp(t->state, "cancelled") == 0 && t->error == NULL) {
        ctx->api_error = (struct cli_api_error){0};
        snprintf(ctx->api_error.code, sizeof(ctx->api_error.code), "cancelled");
        snprintf(ctx->api_error.message, sizeof(ctx->api_error.message), "task %s was cancelled",
                 ctx->task_id);
        return RAISE(ERR_CANCELLED);
    }
    return cli_api_error_from_json(t->error, 0, &ctx->api_error);
}

/* Remembers the task's ID for the polls and the messages. */
static vs_result cli_task_remember(struct cli_ctx *ctx, const char *id)
{
    if (strlen(id) >= sizeof(ctx->task_id) || id[0] == '\0') {
        vs_result rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: a task ID of %zu bytes", strlen(id));
        return rc;
    }
    snprintf(ctx->task_id, sizeof(ctx->task_id), "%s", id);
    return OK_RESULT;
}

static vs_result cli_api_task_run(struct cli_ctx *ctx, const char *method, const char *path,
                                  const json_t *body, const char *label, bool may_be_now,
                                  json_t **result)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *task;
    struct cli_task t;

    *result = NULL;
    GUARD_OUT(cli_api_call(ctx, method, path, body, 0, &answer));
    if (may_be_now && json_object_get(answer, "task") == NULL &&
        json_is_object(json_object_get(answer, "vm"))) {
        /* Nothing to do: the answer is the VM as it is, given as a task
         * would give it. */
        *result = json_incref(json_object_get(answer, "vm"));
        goto out;
    }
    GUARD_OUT(cli_json_field(answer, "task", JSON_OBJECT, false, &task));
    GUARD_OUT(cli_task_parse(task, &t));
    GUARD_OUT(cli_task_remember(ctx, t.id));
    GUARD_OUT(cli_task_loop(ctx, label, CLI_POLL_MS, false, &answer, &t));
    GUARD_OUT(cli_task_outcome(ctx, &t));
    *result = t.result != NULL ? json_incref(t.result) : json_null();
out:
    json_decref(answer);
    return rc;
}

vs_result cli_api_task(struct cli_ctx *ctx, const char *method, const char *path,
                       const json_t *body, const char *label, json_t **result)
{
    return cli_api_task_run(ctx, method, path, body, label, false, result);
}

vs_result cli_api_task_or_now(struct cli_ctx *ctx, const char *method, const char *path,
                              const json_t *body, const char *label, json_t **result)
{
    return cli_api_task_run(ctx, method, path, body, label, true, result);
}

vs_result cli_task_follow(struct cli_ctx *ctx, const char *id, const char *label, long poll_ms,
                          bool lines, json_t **task)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *obj;
    struct cli_task t;

    *task = NULL;
    GUARD(cli_task_remember(ctx, id));
    GUARD_OUT(cli_task_fetch(ctx, &answer, &t));
    GUARD_OUT(cli_task_loop(ctx, label, poll_ms, lines, &answer, &t));
    obj = json_object_get(answer, "task");
    *task = json_incref(obj);
    GUARD_OUT(cli_task_outcome(ctx, &t));
out:
    json_decref(answer);
    return rc;
}
