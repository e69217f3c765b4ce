/*
 * api.h - vmseald's API (docs/api.md) as the CLI speaks it: requests with
 * JSON bodies, answers checked with jansson, errors mapped, tasks followed.
 *
 * Nothing from the server is trusted to have the right shape: every field
 * is read through cli_json_field(), which checks its type, so that a
 * malformed answer becomes an error message ("malformed answer from
 * vmseald: field 'state' is an integer, expected a string"), never a crash
 * or a wrong print.
 */
#ifndef VMSEAL_CLI_API_H
#define VMSEAL_CLI_API_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/transport.h"
#include "core/buf.h"
#include "core/result.h"

/* An error the server reported, as docs/api.md's error body carries it. */
struct cli_api_error {
    long status;        /* HTTP status (0 for a task's error) */
    long retry_after;   /* seconds of a 429's Retry-After; 0: none */
    char code[48];      /* "vm_state" */
    char message[1024]; /* "vm 'web1' is running: power it off first" */
};

/* What a command works with. */
struct cli_ctx {
    struct cli_transport *transport;
    /* HTTPS: the server's normalised URL, the token store's directory and
     * the CA file in use (absolute, or NULL for the system's); NULL over the
     * socket. token_source says where the token came from, for the hint
     * after a 401. */
    const char *server;
    const char *tokens_dir;
    const char *ca_file;
    enum { CLI_TOKEN_NONE, CLI_TOKEN_STORE, CLI_TOKEN_FILE } token_source;
    /* The stored token's ID and expiry (CLI_TOKEN_STORE; the ID may be NULL). */
    const char *token_id;
    const char *token_expires;
    bool json;     /* --json: stdout gets the JSON answer only */
    bool progress; /* draw a progress bar on stderr (a terminal, no --json) */
    FILE *out;     /* stdout */
    FILE *err;     /* stderr */
    /* Set when the failure is the server's verdict (printed as such). */
    bool has_api_error;
    struct cli_api_error api_error;
    /* Set when the failure is a usage error found by a command (exit 2). */
    bool usage_error;
    /* Set when SIGINT stopped the following of a task. */
    bool interrupted;
    char task_id[128]; /* the task being followed, for the interruption message */
};

/* --- JSON --- */

/* Makes jansson wipe every block it frees: request bodies carry
 * passphrases and private keys, and a freed heap block must not keep them.
 * Call once, before any other jansson use. */
void cli_json_init(void);

#define CLI_JSON_ANY (-1)  /* any type */
#define CLI_JSON_BOOL (-2) /* true or false */

/* Reads obj[key] and checks its type: a JSON_* type, CLI_JSON_ANY or
 * CLI_JSON_BOOL.
 * Missing or null gives *out = NULL when nullable, ERR_INVALID_ARG
 * otherwise; a wrong type is ERR_INVALID_ARG. A detail names the field. */
RESULT cli_json_field(const json_t *obj, const char *key, int type, bool nullable, json_t **out)
    __attribute__((nonnull(2, 5)));

/* The same for strings: *out points into obj. */
RESULT cli_json_string(const json_t *obj, const char *key, bool nullable, const char **out)
    __attribute__((nonnull(2, 4)));

/* Parses an answer body: a JSON object, UTF-8, no duplicate keys. */
RESULT cli_json_parse_object(const struct buf *body, json_t **out) __attribute__((nonnull));

/* Encodes v compactly into out (which the caller allocated, secret when v
 * holds a secret). */
RESULT cli_json_encode(const json_t *v, struct buf *out) __attribute__((nonnull));

/* --- errors --- */

/* Fills *e from an error answer: the API's {"error": {"code", "message"}}
 * when the body is one, otherwise a sentence built from the status.
 * Returns the vs_result that the code maps to (ERR_NOT_FOUND for
 * not_found, ERR_VM_STATE for vm_state, ...; ERR_IO for what does not map).
 * Never fails to produce a message. */
vs_result cli_api_error_from_answer(long status, const struct buf *body, struct cli_api_error *e)
    __attribute__((nonnull));

/* The same for a task's "error" object; a malformed one still yields a
 * message. */
vs_result cli_api_error_from_json(const json_t *error, long status, struct cli_api_error *e)
    __attribute__((nonnull(3)));

/* The err_code of an API error code ("busy" -> ERR_BUSY); ERR_IO if unknown. */
enum err_code cli_api_error_code(const char *api_code) __attribute__((nonnull));

/* --- requests --- */

/* Builds "/v1/seg1/seg2..." into out, percent-encoding (RFC 3986 §2.1)
 * every byte of a segment outside the unreserved set, and the dots of a
 * "." or ".." segment, so that a name can never change the route.
 * ERR_TOO_LARGE if it does not fit; ERR_INVALID_ARG for an empty segment. */
RESULT cli_api_path(char *out, size_t size, const char *const *segments, size_t n)
    __attribute__((nonnull));

#define CLI_BODY_SECRET 1u /* the body holds a secret: encode it in secret memory */

/* Sends method path with body (NULL: none) and gives the answer object in
 * *answer (the caller json_decref's it). A 2xx answer must be a JSON
 * object; any other status is the server's error: ctx->api_error is filled
 * and the mapped code returned. */
RESULT cli_api_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                    unsigned flags, json_t **answer) __attribute__((nonnull(1, 2, 3, 6)));

/* The state of a task, checked. Pointers into the task's JSON. */
struct cli_task {
    const char *id;
    const char *operation;
    const char *target;
    const char *state; /* queued, running, success, error, cancelled */
    long progress;     /* 0..100 */
    json_t *result;    /* NULL when null */
    json_t *error;     /* NULL when null */
    bool done;         /* success, error or cancelled */
};

/* Checks a task object (docs/api.md, "Tasks") and fills *t. */
RESULT cli_task_parse(const json_t *task, struct cli_task *t) __attribute__((nonnull));

/* Sends a request that starts a task (202 {"task": ...}), follows the task
 * until it ends (GET /v1/tasks/ID every CLI_POLL_MS, a progress bar labelled
 * label on stderr when ctx->progress) and gives its result in *result (a
 * new reference; json null when the task returns nothing). A task that
 * ends in error fills ctx->api_error and returns its mapped code. */
RESULT cli_api_task(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                    const char *label, json_t **result) __attribute__((nonnull(1, 2, 3, 5, 6)));

/* The same for a route that may also answer at once, without a task
 * (200 {"vm": vm} when nothing changes): then *result is that vm. */
RESULT cli_api_task_or_now(struct cli_ctx *ctx, const char *method, const char *path,
                           const json_t *body, const char *label, json_t **result)
    __attribute__((nonnull(1, 2, 3, 5, 6)));

/* Follows the task id until it ends: a progress bar on stderr when
 * ctx->progress, else (lines true) one line on stdout per change of state
 * or progress ("t-1 running 42%"). *task gets the final task object (a
 * new reference; also when the task ended in error, so that --json can
 * print it; the caller json_decref's it). A task that ends in error or is
 * cancelled fills ctx->api_error and returns its mapped code; Ctrl-C
 * returns ERR_CANCELLED with ctx->interrupted set. */
RESULT cli_task_follow(struct cli_ctx *ctx, const char *id, const char *label, long poll_ms,
                       bool lines, json_t **task) __attribute__((nonnull(1, 2, 3, 6)));

#define CLI_POLL_MS 150       /* following an operation this command started */
#define CLI_WATCH_POLL_MS 250 /* vmseal task watch: about 4 times a second */

#endif
