/*
 * transport.c - HTTP/1.1 to vmseald over libcurl. See transport.h.
 */
#include "cli/transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    const char *protocols; /* what curl may speak: "http" (socket) or "https" */
    char *base_url;        /* "http://localhost" over the socket; HTTPS: the server */
    char *socket_path;     /* UNIX only */
    char *ca_file;         /* HTTPS: NULL for the system's CAs */
    char *description;
    /* "Authorization: Bearer <token>", NUL-terminated, in secret memory; and
     * the list node that hands it to curl without a copy of ours (curl only
     * reads the list; its send buffer holds the request for the moment it
     * is written). */
    struct buf auth_header;
    struct curl_slist auth_node;
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

/* --- server URLs and tokens --- */

#define CLI_URL_FAIL(...)                                 \
    do {                                                  \
        vs_result cli_url_rc_ = RAISE(ERR_INVALID_ARG); \
        err_detail(__VA_ARGS__);                          \
        return cli_url_rc_;                               \
    } while (0)

static bool cli_is_dns_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
}

static bool cli_is_ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.';
}

static char cli_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

vs_result cli_server_url_parse(const char *text, char *out, size_t size)
{
    static const char scheme[] = "https://";
    char host[256];
    size_t hlen = 0, slen = sizeof(scheme) - 1;
    const char *p, *host_end;
    unsigned long port = 443;
    bool v6;

    ENSURE(size > 0, ERR_TOO_LARGE);
    out[0] = '\0';
    if (strncasecmp(text, "http://", 7) == 0)
        CLI_URL_FAIL("'%s': vmseald's API is served over HTTPS only (https://HOST:PORT)",
                     text);
    if (strncasecmp(text, scheme, slen) != 0)
        CLI_URL_FAIL("'%s' is not https://HOST:PORT", text);
    p = text + slen;
    v6 = *p == '[';
    if (v6) {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            CLI_URL_FAIL("'%s': no ']' after the IPv6 address", text);
        for (const char *q = p + 1; q < host_end; q++)
            if (!cli_is_ipv6_char(*q))
                CLI_URL_FAIL("'%s': invalid IPv6 address", text);
        host_end++; /* keep the brackets */
    } else {
        host_end = p;
        while (cli_is_dns_char(*host_end))
            host_end++;
    }
    if (host_end == p || (v6 && host_end == p + 2))
        CLI_URL_FAIL("'%s' has no host", text);
    if ((size_t)(host_end - p) >= sizeof(host))
        CLI_URL_FAIL("'%s': the host name is too long", text);
    for (const char *q = p; q < host_end; q++)
        host[hlen++] = cli_lower(*q);
    host[hlen] = '\0';
    p = host_end;
    if (*p == ':') {
        char *end;
        p++;
        if (*p < '0' || *p > '9')
            CLI_URL_FAIL("'%s': the port must be a number from 1 to 65535", text);
        errno = 0;
        port = strtoul(p, &end, 10);
        if (errno != 0 || port < 1 || port > 65535 || end - p > 5)
            CLI_URL_FAIL("'%s': the port must be a number from 1 to 65535", text);
        p = end;
    }
    if (*p == '/')
        p++;
    if (*p != '\0')
        CLI_URL_FAIL("'%s': only https://HOST:PORT (no user, path or query)", text);
    int n = snprintf(out, size, "https://%s:%lu", host, port);
    if (n < 0 || (size_t)n >= size) {
        out[0] = '\0';
        CLI_URL_FAIL("'%s' is too long", text);
    }
    return OK_RESULT;
}

bool cli_token_is_valid(const uint8_t *token, size_t len)
{
    size_t i = 0;

    if (token == NULL || len == 0 || len > CLI_TOKEN_MAX)
        return false;
    /* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
    for (; i < len; i++) {
        uint8_t c = token[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
        if (!ok)
            break;
    }
    if (i == 0)
        return false;
    while (i < len && token[i] == '=')
        i++;
    return i == len;
}

/* --- the transport --- */

vs_result cli_transport_open(const struct cli_transport_config *cfg, struct cli_transport **out)
{
    static const char bearer[] = "Authorization: Bearer ";
    vs_result rc = OK_RESULT;
    struct cli_transport *t = NULL;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    ENSURE(t != NULL, ERR_NOMEM);
    t->kind = cfg->kind;
    if (cfg->kind == CLI_TRANSPORT_UNIX) {
        ENSURE_OUT(cfg->socket_path != NULL && cfg->socket_path[0] != '\0', ERR_NULL_ARG);
        /* Over a Unix socket the host is a formality (HTTP/1.1 wants one). */
        t->base_url = strdup("http://localhost");
        t->protocols = "http";
        t->socket_path = strdup(cfg->socket_path);
        ENSURE_OUT(t->base_url != NULL && t->socket_path != NULL, ERR_NOMEM);
        ENSURE_OUT(asprintf(&t->description, "vmseald at %s", t->socket_path) >= 0, ERR_NOMEM);
    } else {
        char url[CLI_SERVER_URL_MAX];
        ENSURE_OUT(cfg->server != NULL, ERR_NULL_ARG);
        /* Normalised again: what reaches curl is exactly https://HOST:PORT. */
        GUARD_OUT(cli_server_url_parse(cfg->server, url, sizeof(url)));
        t->base_url = strdup(url);
        t->protocols = "https";
        ENSURE_OUT(t->base_url != NULL, ERR_NOMEM);
        if (cfg->ca_file != NULL) {
            t->ca_file = strdup(cfg->ca_file);
            ENSURE_OUT(t->ca_file != NULL, ERR_NOMEM);
        }
        ENSURE_OUT(asprintf(&t->description, "vmseald at %s", url) >= 0, ERR_NOMEM);
    }
    if (cfg->token != NULL) {
        if (!cli_token_is_valid(buf_data(cfg->token), buf_len(cfg->token))) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("the API token is malformed (letters, digits and -._~+/ only)");
            goto out;
        }
        size_t n = sizeof(bearer) - 1 + buf_len(cfg->token) + 1;
        GUARD_OUT(buf_alloc_secret(&t->auth_header, n, n));
        GUARD_OUT(buf_write_bytes(&t->auth_header, bearer, sizeof(bearer) - 1));
        GUARD_OUT(buf_write_bytes(&t->auth_header, buf_data(cfg->token), buf_len(cfg->token)));
        GUARD_OUT(buf_write_u8(&t->auth_header, '\0'));
        t->auth_node.data = (char *)buf_data(&t->auth_header);
        t->auth_node.next = NULL;
    }
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
    buf_free(&(*t)->auth_header); /* wipes the token */
    free((*t)->base_url);
    free((*t)->socket_path);
    free((*t)->ca_file);
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
    answer->retry_after = 0;
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
    if (t->kind == CLI_TRANSPORT_HTTPS) {
        const char *why = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
        switch (code) {
        case CURLE_PEER_FAILED_VERIFICATION:
            err_detail("the certificate of %s is not trusted: %s (--ca FILE names the CA, or "
                       "vmseald's tls/api.crt)",
                       t->base_url, why);
            return rc;
        case CURLE_SSL_CACERT_BADFILE:
            err_detail("cannot use the CA file %s: %s", t->ca_file ? t->ca_file : "(system)", why);
            return rc;
        case CURLE_SSL_CONNECT_ERROR:
            err_detail("TLS with %s failed: %s", t->base_url, why);
            return rc;
        case CURLE_COULDNT_RESOLVE_HOST:
            err_detail("cannot resolve the host of %s: %s", t->base_url, why);
            return rc;
        case CURLE_COULDNT_CONNECT:
            err_detail("cannot connect to %s: %s", t->base_url, why);
            return rc;
        default:
            break;
        }
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
    if (t->kind == CLI_TRANSPORT_HTTPS) {
        /* Full verification: the chain up to the CA, and the host name
         * against the certificate (VERIFYHOST 2). With --ca, that CA only:
         * no CA directory of the system besides it. */
        CLI_CURL(curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L));
        CLI_CURL(curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L));
        CLI_CURL(curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2));
        if (t->ca_file != NULL) {
            CLI_CURL(curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file));
            CLI_CURL(curl_easy_setopt(c, CURLOPT_CAPATH, NULL));
        }
    }
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
    /* The token's header last, our own node over secret memory (never
     * copied into curl's list): unlinked again before the list is freed. */
    if (t->auth_node.data != NULL) {
        for (h = headers; h->next != NULL; h = h->next)
            ;
        h->next = &t->auth_node;
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
    if (answer->status == 429 || answer->status == 503) {
        curl_off_t after = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
            answer->retry_after = after > 86400 ? 86400 : (long)after;
    }
out:
    /* Nothing of this request may outlive it inside the handle. */
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    (void)curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    for (h = headers; h != NULL; h = h->next)
        if (h->next == &t->auth_node)
            h->next = NULL;
    curl_slist_free_all(headers);
    free(url);
    return rc;
}
