/*
 * api.h - vmseald's HTTP+JSON API (docs/api.md), independent of the
 * transport: main.c serves it on the Unix socket and over HTTPS, with the
 * same routes on both.
 *
 * Authentication happens here, from what the transport saw:
 *   - a bearer token (Authorization: Bearer vst_...), on either transport;
 *   - else, on the Unix socket, the peer's uid (SO_PEERCRED): uid 0 is
 *     root, the administrator; another uid maps to the vmseal user of the
 *     same login name, which must exist;
 *   - else only POST /v1/session (login) is served; everything else is 401.
 * Every call is then checked against the privileges of its operation
 * (authz.h) and audited (audit.h), allowed or refused.
 */
#ifndef VMSEAL_SERVER_API_H
#define VMSEAL_SERVER_API_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "keyprov/keyprov.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/authz.h"
#include "server/store.h"
#include "vm/vm.h"

struct api_ctx {
    const char *data_dir;
    struct vm_host *host;
    struct keyprov *kp;
    struct store *store;
    struct auth *auth;
    struct authz *authz;
    struct audit *audit;
};

/* What the transport knows of the caller. */
struct api_transport {
    const char *via;    /* "socket" or "https" */
    const char *peer;   /* "uid=1000" or "192.0.2.1:53211": for the audit and rate limits */
    bool has_uid;       /* socket: SO_PEERCRED worked */
    uid_t uid;
    const char *bearer; /* the token of an "Authorization: Bearer" header, or NULL */
};

/* Runs the route for method + path (+ query, may be NULL) with body (a JSON
 * object; {} when empty). Sets *status (HTTP) and *out (the response body,
 * a new reference; errors are {"error": {code, message}}); *retry_after
 * seconds (0: none) for a 429. Blocking: call it from a worker thread. */
void api_handle(struct api_ctx *ctx, const struct api_transport *tr, const char *method,
                const char *path, const char *query, json_t *body, int *status, json_t **out,
                unsigned *retry_after) __attribute__((nonnull(1, 2, 3, 4, 6, 7, 8, 9)));

#endif
