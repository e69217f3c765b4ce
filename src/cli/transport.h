/*
 * transport.h - how the CLI reaches vmseald: HTTP/1.1 over libcurl.
 *
 * Today there is one kind of transport, vmseald's local Unix socket
 * (docs/api.md): requests go to http://localhost/v1/... through
 * CURLOPT_UNIX_SOCKET_PATH, and the socket's file mode is the access
 * control. The next kind, HTTPS to HOST:PORT, adds a CA file and a bearer
 * token to the same struct and changes nothing above this file: every
 * caller speaks method, path and body.
 *
 * A transport holds one libcurl handle, so that the polling of a task
 * reuses one connection.
 */
#ifndef VMSEAL_CLI_TRANSPORT_H
#define VMSEAL_CLI_TRANSPORT_H

#include "core/buf.h"
#include "core/result.h"

enum cli_transport_kind {
    CLI_TRANSPORT_UNIX,  /* HTTP/1.1 over vmseald's Unix socket */
    CLI_TRANSPORT_HTTPS, /* next: https://HOST:PORT, --ca FILE, a bearer token */
};

/* What the next kind adds: `vmseal --server https://HOST:PORT --ca FILE
 * COMMAND`, global options that come before the command (kp add-standard
 * has its own --server and --ca after it), and a bearer token from a login,
 * held in secret memory and sent as "Authorization: Bearer". Here only
 * base_url, CURLOPT_CAINFO and that header change. */
struct cli_transport_config {
    enum cli_transport_kind kind;
    const char *socket_path; /* UNIX: the socket's path */
    const char *server;      /* HTTPS: "https://HOST:PORT" (not yet) */
    const char *ca_file;     /* HTTPS: PEM CA bundle (not yet) */
    const struct buf *token; /* HTTPS: bearer token, secret memory (not yet) */
};

/* The socket used when neither --socket nor VMSEAL_SOCKET says: the one
 * `make run` serves. */
#define CLI_DEFAULT_SOCKET "./run/vmseald/vmseald.sock"

/* The largest answer body accepted (a provider backup, a long task list). */
#define CLI_ANSWER_LIMIT ((size_t)32 << 20)

struct cli_transport; /* opaque */

/* An answer: the HTTP status and the body (owned; cli_answer_free). */
struct cli_answer {
    long status;
    struct buf body;
};

/* Opens a transport as cfg says (the strings are copied). ERR_UNSUPPORTED
 * for HTTPS, which is not there yet. */
RESULT cli_transport_open(const struct cli_transport_config *cfg, struct cli_transport **out)
    __attribute__((nonnull));

/* Closes *t and sets it to NULL; accepts NULL. */
void cli_transport_close(struct cli_transport **t);

/* Where requests go, for messages: "vmseald at ./run/vmseald/vmseald.sock". */
const char *cli_transport_describe(const struct cli_transport *t) __attribute__((nonnull));

/* Sends one request and reads the whole answer into *answer (which the
 * caller frees with cli_answer_free, also on failure). method is "GET",
 * "POST" or "DELETE"; path starts with "/v1/" and is already escaped
 * (cli_api_path); body is NULL for none. A body is sent from the caller's
 * memory, never copied by this layer: a body that holds a secret stays in
 * the caller's secret buffer. An HTTP error status is not a failure here;
 * failing to talk HTTP at all is (ERR_IO, ERR_TOO_LARGE, with a detail). */
RESULT cli_transport_request(struct cli_transport *t, const char *method, const char *path,
                             const struct buf *body, struct cli_answer *answer)
    __attribute__((nonnull(1, 2, 3, 5)));

void cli_answer_free(struct cli_answer *answer);

#endif
