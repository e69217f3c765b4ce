/*
 * transport.h - how the CLI reaches vmseald: HTTP/1.1 over libcurl, on one
 * of two transports with the same routes (docs/api.md):
 *
 *   - vmseald's local Unix socket: requests go to http://localhost/v1/...
 *     through CURLOPT_UNIX_SOCKET_PATH, and vmseald knows the caller by its
 *     uid (SO_PEERCRED); no token is sent unless one is given explicitly;
 *   - HTTPS to https://HOST:PORT, the server's certificate verified in full
 *     (chain and host name) against --ca FILE, or the system's CAs when no
 *     CA is given, TLS 1.2 at least, and the caller named by a bearer token
 *     (Authorization: Bearer, RFC 6750 §2.1).
 *
 * There is no option to skip the verification of the server: a CLI that
 * sends a token (or, at login, a password) to whoever answers would hand it
 * to anyone on the path.
 *
 * A transport holds one libcurl handle, so that the requests of a command
 * (the polling of a task) reuse one connection (keep-alive).
 */
#ifndef VMSEAL_CLI_TRANSPORT_H
#define VMSEAL_CLI_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

enum cli_transport_kind {
    CLI_TRANSPORT_UNIX,  /* HTTP/1.1 over vmseald's Unix socket */
    CLI_TRANSPORT_HTTPS, /* HTTP/1.1 over TLS to https://HOST:PORT */
};

/* What a transport is opened with. The strings are copied; the token is
 * copied into secret memory. */
struct cli_transport_config {
    enum cli_transport_kind kind;
    const char *socket_path; /* UNIX: the socket's path */
    const char *server;      /* HTTPS: "https://HOST:PORT", as cli_server_url_parse gives it */
    const char *ca_file;     /* HTTPS: PEM CA bundle; NULL: the system's CAs */
    const struct buf *token; /* a bearer token (either transport), or NULL for none */
};

/* The longest server URL: "https://" + a DNS name + ":65535". */
#define CLI_SERVER_URL_MAX 300

/* The longest token accepted (vmseald's are "vst_" + 43 characters). */
#define CLI_TOKEN_MAX 256

/* Checks and normalises a server URL: "https://HOST[:PORT][/]" with HOST a
 * DNS name, an IPv4 address or [IPV6]; the scheme and host in lower case,
 * the port made explicit (443 by default), no trailing slash:
 * "HTTPS://Vmseal.Example.com/" -> "https://vmseal.example.com:443". This
 * is also the key of the token store. Refuses (ERR_INVALID_ARG, with a
 * detail) http://, a user, a path, a query and a bad port. */
RESULT cli_server_url_parse(const char *text, char *out, size_t size) __attribute__((nonnull));

/* Checks a bearer token: 1..CLI_TOKEN_MAX characters of RFC 6750's b64token
 * set (letters, digits, "-._~+/" and trailing "="), so that it can never
 * break out of its header. */
bool cli_token_is_valid(const uint8_t *token, size_t len);

/* The socket used when neither --socket nor VMSEAL_SOCKET says: the one
 * `make run` serves. */
#define CLI_DEFAULT_SOCKET "./run/vmseald/vmseald.sock"

/* The largest answer body accepted (a provider backup, a long task list). */
#define CLI_ANSWER_LIMIT ((size_t)32 << 20)

struct cli_transport; /* opaque */

/* An answer: the HTTP status, the body (owned; cli_answer_free) and, for a
 * 429 or 503, the seconds of its Retry-After header (0: none). */
struct cli_answer {
    long status;
    long retry_after;
    struct buf body;
};

/* Opens a transport as cfg says (the strings are copied). ERR_INVALID_ARG
 * for a token that cli_token_is_valid refuses. */
RESULT cli_transport_open(const struct cli_transport_config *cfg, struct cli_transport **out)
    __attribute__((nonnull));

/* Closes *t and sets it to NULL; accepts NULL. */
void cli_transport_close(struct cli_transport **t);

/* Where requests go, for messages: "vmseald at ./run/vmseald/vmseald.sock",
 * "vmseald at https://h:8443". */
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
