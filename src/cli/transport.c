/*
 * transport.c - HTTP/1.1 to vmseald over libcurl. See transport.h.
 */
#include "cli/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/secret.h"

#ifndef VMSEAL_VERSION
#define VMSEAL_VERSION "0"
#endif

/* How long to wait for vmseald. Long operations are tasks (answered at once
 * with 202), so only synchronous calls that reach a key provider (backup,
 * key destroy, standard provider creation) take more than a moment. */
#define CLI_CONNECT_TIMEOUT_S 10L
#define CLI_REQUEST_TIMEOUT_S 300L

struct cli_transport {
    enum cli_transport_kind kind;
    const char *base_url;  /* "http://localhost" over the socket; HTTPS: the server */
    const char *protocols; /* what curl may speak: "http"; HTTPS: "https" */
    char *socket_path;
    char *description;
    CURL *curl;
    bool too_large; /* set by the write callback when the answer hit the limit */
    char errbuf[CURL_ERROR_SIZE];
};

struct cli_write_ctx {
    struct cli_transport *t;
    struct buf *body;
};

static size_t cli_transport_write(char *data, size_t size, size_t n, void *user)
{
    struct cli_write_ctx *w = user;
    size_t len = size * n; /* curl guarantees size == 1 */
    if (!is_ok(buf_write_bytes(w->body, data, len))) {
        w->t->too_large = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return len;
}

vs_result cli_transport_open(const struct cli_transport_config *cfg, struct cli_transport **out)
{
    vs_result rc = OK_RESULT;
    struct cli_transport *t = NULL;

    *out = NULL;
    if (cfg->kind != CLI_TRANSPORT_UNIX) {
        rc = RAISE(ERR_UNSUPPORTED);
        err_detail("only vmseald's Unix socket is supported yet (--socket PATH)");
        return rc;
    }
    ENSURE(cfg->socket_path != NULL && cfg->socket_path[0] != '\0', ERR_NULL_ARG);
    t = calloc(1, sizeof(*t));
    ENSURE(t != NULL, ERR_NOMEM);
    t->kind = cfg->kind;
    /* Over a Unix socket the host is a formality (HTTP/1.1 wants one). */
    t->base_url = "http://localhost";
    t->protocols = "http";
    t->socket_path = strdup(cfg->socket_path);
    ENSURE_OUT(t->socket_path != NULL, ERR_NOMEM);
    ENSURE_OUT(asprintf(&t->description, "vmseald at %s", t->socket_path) >= 0, ERR_NOMEM);
    t->curl = curl_easy_init();
    ENSURE_OUT(t->curl != NULL, ERR_NOMEM);
    *out = t;
    t = NULL;
out:
    cli_transport_close(&t);
    return rc;
}

void cli_transport_close(struct cli_transport **t)
{
    if (t == NULL || *t == NULL)
        return;
    if ((*t)->curl != NULL)
        curl_easy_cleanup((*t)->curl);
    free((*t)->socket_path);
    free((*t)->description);
    free(*t);
    *t = NULL;
}

const char *cli_transport_describe(const struct cli_transport *t)
{
    return t->description != NULL ? t->description : "vmseald";
}

void cli_answer_free(struct cli_answer *answer)
{
    if (answer == NULL)
        return;
    buf_free(&answer->body);
    answer->status = 0;
}

/* Turns a libcurl failure into an error a person can act on. */
static vs_result cli_transport_fail(struct cli_transport *t, CURLcode code)
{
    long os_errno = 0;
    vs_result rc = RAISE(ERR_IO);

    (void)curl_easy_getinfo(t->curl, CURLINFO_OS_ERRNO, &os_errno);
    if (code == CURLE_WRITE_ERROR && t->too_large) {
        rc = RAISE(ERR_TOO_LARGE);
        err_detail("the answer of %s is larger than %zu bytes", t->description, CLI_ANSWER_LIMIT);
        return rc;
    }
    switch (code) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ENOENT)
            err_detail("no socket at %s: is vmseald running? (`make run` starts it; --socket "
                       "PATH or VMSEAL_SOCKET name another)",
                       t->socket_path);
        else if (os_errno == EACCES || os_errno == EPERM)
            err_detail("permission denied on %s: vmseald's socket is open to its owner and "
                       "group only",
                       t->socket_path);
        else if (os_errno == ECONNREFUSED)
            err_detail("nothing listens on %s: is vmseald running?", t->socket_path);
        else
            err_detail("cannot connect to %s: %s", t->description,
                       t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
        break;
    case CURLE_OPERATION_TIMEDOUT:
        err_detail("%s did not answer in time", t->description);
        break;
    case CURLE_GOT_NOTHING:
        err_detail("%s closed the connection without answering", t->description);
        break;
    default:
        err_detail("talking to %s: %s", t->description,
                   t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
        break;
    }
    return rc;
}

#define CLI_CURL(call)                                                                \
    do {                                                                              \
        CURLcode cli_curl_code_ = (call);                                             \
        if (cli_curl_code_ != CURLE_OK) {                                             \
            rc = RAISE(ERR_INTERNAL);                                                 \
            err_detail("libcurl: %s: %s", #call, curl_easy_strerror(cli_curl_code_)); \
            goto out;                                                                 \
        }                                                                             \
    } while (0)

vs_result cli_transport_request(struct cli_transport *t, const char *method, const char *path,
                                const struct buf *body, struct cli_answer *answer)
{
    vs_result rc = OK_RESULT;
    struct curl_slist *headers = NULL, *h;
    struct cli_write_ctx w = {.t = t, .body = &answer->body};
    char *url = NULL;
    CURL *c = t->curl;
    CURLcode code;

    *answer = (struct cli_answer){0};
    ENSURE(strncmp(path, "/v1/", 4) == 0, ERR_INVALID_ARG);
    GUARD(buf_alloc(&answer->body, 0, CLI_ANSWER_LIMIT));
    ENSURE_OUT(asprintf(&url, "%s%s", t->base_url, path) >= 0, ERR_NOMEM);

    /* The handle is reused (one connection for a whole command): set every
     * option that a previous request may have changed. */
    t->too_large = false;
    t->errbuf[0] = '\0';
    CLI_CURL(curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t->socket_path));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_URL, url));
    /* Plain HTTP to the socket, no redirects, no proxy (an http_proxy in the
     * environment must not divert requests that carry secrets), and the
     * path as we escaped it: curl must not fold "/../" segments. */
    CLI_CURL(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, t->protocols));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_PROXY, ""));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CLI_CONNECT_TIMEOUT_S));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_TIMEOUT, CLI_REQUEST_TIMEOUT_S));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_USERAGENT, "vmseal/" VMSEAL_VERSION));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_transport_write));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_WRITEDATA, &w));
    CLI_CURL(curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1));

    h = curl_slist_append(headers, "Accept: application/json");
    ENSURE_OUT(h != NULL, ERR_NOMEM);
    headers = h;
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    h = curl_slist_append(headers, "Expect:");
    ENSURE_OUT(h != NULL, ERR_NOMEM);
    headers = h;
    if (body != NULL) {
        h = curl_slist_append(headers, "Content-Type: application/json");
        ENSURE_OUT(h != NULL, ERR_NOMEM);
        headers = h;
    }
    CLI_CURL(curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers));

    CLI_CURL(curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL));
    if (body != NULL) {
        /* POSTFIELDS (not COPYPOSTFIELDS): curl reads the caller's buffer,
         * which for a passphrase or a key is secret memory. */
        CLI_CURL(curl_easy_setopt(c, CURLOPT_POST, 1L));
        CLI_CURL(curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)buf_len(body)));
        CLI_CURL(curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)buf_data(body)));
    } else {
        CLI_CURL(curl_easy_setopt(c, CURLOPT_HTTPGET, 1L));
    }
    if (strcmp(method, "GET") != 0 && !(strcmp(method, "POST") == 0 && body != NULL))
        CLI_CURL(curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method));

    code = curl_easy_perform(c);
    if (code != CURLE_OK) {
        rc = cli_transport_fail(t, code);
        goto out;
    }
    CLI_CURL(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer->status));
out:
    /* Nothing of this request may outlive it inside the handle. */
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_slist_free_all(headers);
    free(url);
    return rc;
}
