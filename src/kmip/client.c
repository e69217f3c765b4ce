/*
 * client.c - blocking KMIP client with server failover. See client.h.
 */
#include "kmip/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "kmip/attr.h"
#include "kmip/kmip_defs.h"
#include "kmip/tlsverify.h"

#define KMIP_CLIENT_RESPONSE_MAX (4u << 20)

struct kmip_client {
    char *servers[KMIP_CLIENT_MAX_SERVERS];
    size_t server_count;
    char *server_name;
    char pinned_sha256[2 * CRYPTO_SHA256_LEN + 1]; /* "" when not pinning */
    struct kmip_version version;
    int timeout_ms;
    SSL_CTX *ctx;
    int fd;
    SSL *ssl;
    size_t current;   /* the server we are connected to */
    char errors[512]; /* what went wrong with each server, for the detail */
};

static void kmip_client_disconnect(struct kmip_client *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void kmip_client_free(struct kmip_client **cp)
{
    struct kmip_client *c;

    if (cp == NULL || *cp == NULL)
        return;
    c = *cp;
    kmip_client_disconnect(c);
    for (size_t i = 0; i < c->server_count; i++)
        free(c->servers[i]);
    free(c->server_name);
    SSL_CTX_free(c->ctx);
    free(c);
    *cp = NULL;
}

/* --- PEM texts in memory (kmip_client_config.*_pem) --- */

/* After a loop of PEM_read_bio_X509: whether it stopped at the end of the
 * text (OpenSSL reports that as "no start line") rather than at a block
 * that does not parse. Empties OpenSSL's error queue either way. */
static bool kmip_client_pem_ended(void)
{
    unsigned long e = ERR_peek_last_error();
    bool ended = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return ended;
}

/* Every certificate in pem becomes a trust anchor; at least one is needed. */
static vs_result kmip_client_load_ca_pem(SSL_CTX *ctx, const char *pem)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509 *x;
    int n = 0;

    ENSURE(bio != NULL, ERR_NOMEM);
    while ((x = PEM_read_bio_X509(bio, NULL, crypto_pem_no_password, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (ok != 1) {
            rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "adding a CA certificate");
            goto out;
        }
        n++;
    }
    if (!kmip_client_pem_ended() || n == 0) {
        rc = RAISE(ERR_CRYPTO);
        err_detail("the CA PEM text holds %s", n == 0 ? "no certificate" : "a damaged certificate");
    }
out:
    BIO_free(bio);
    return rc;
}

/* The first certificate is ours; any that follow are its chain. */
static vs_result kmip_client_load_cert_pem(SSL_CTX *ctx, const char *pem)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x;

    ENSURE(bio != NULL, ERR_NOMEM);
    x = PEM_read_bio_X509(bio, NULL, crypto_pem_no_password, NULL);
    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "loading the client certificate PEM");
        goto out;
    }
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, crypto_pem_no_password, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x on success */
            rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "adding a chain certificate");
            goto out;
        }
    }
    if (!kmip_client_pem_ended()) {
        rc = RAISE(ERR_CRYPTO);
        err_detail("a chain certificate after the client certificate does not parse");
    }
out:
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static vs_result kmip_client_load_key_pem(SSL_CTX *ctx, const char *pem)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key;

    ENSURE(bio != NULL, ERR_NOMEM);
    key = PEM_read_bio_PrivateKey(bio, NULL, crypto_pem_no_password, NULL);
    if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "loading the client key PEM");
    EVP_PKEY_free(key); /* the context keeps its own reference */
    BIO_free(bio);
    return rc;
}

vs_result kmip_client_new(const struct kmip_client_config *cfg, struct kmip_client **out)
{
    vs_result rc = OK_RESULT;
    struct kmip_client *c;

    *out = NULL;
    ENSURE(cfg->server_count >= 1 && cfg->server_count <= KMIP_CLIENT_MAX_SERVERS, ERR_INVALID_ARG);
    ENSURE((cfg->ca_file || cfg->ca_pem) && (cfg->cert_file || cfg->cert_pem) &&
               (cfg->key_file || cfg->key_pem),
           ERR_NULL_ARG);
    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, ERR_NOMEM);
    c->fd = -1;
    c->version = cfg->version.major ? cfg->version : (struct kmip_version){1, 4};
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    for (size_t i = 0; i < cfg->server_count; i++) {
        c->servers[i] = strdup(cfg->servers[i]);
        ENSURE_OUT(c->servers[i] != NULL, ERR_NOMEM);
        c->server_count++;
    }
    if (cfg->server_name != NULL) {
        c->server_name = strdup(cfg->server_name);
        ENSURE_OUT(c->server_name != NULL, ERR_NOMEM);
    }
    c->ctx = SSL_CTX_new(TLS_client_method());
    ENSURE_OUT(c->ctx != NULL, ERR_NOMEM);
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->pinned_sha256 != NULL) {
        ENSURE_OUT(strlen(cfg->pinned_sha256) == sizeof(c->pinned_sha256) - 1, ERR_INVALID_ARG);
        memcpy(c->pinned_sha256, cfg->pinned_sha256, sizeof(c->pinned_sha256));
        /* A certificate of the trust store ends the chain even when it is
         * not self-signed: the pinned leaf is its own anchor. */
        ENSURE_OUT(X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx),
                                               X509_V_FLAG_PARTIAL_CHAIN) == 1,
                   ERR_CRYPTO);
    }
    if (cfg->ca_pem != NULL)
        GUARD_OUT(kmip_client_load_ca_pem(c->ctx, cfg->ca_pem));
    else if (SSL_CTX_load_verify_locations(c->ctx, cfg->ca_file, NULL) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading CA", cfg->ca_file);
        goto out;
    }
    if (cfg->cert_pem != NULL)
        GUARD_OUT(kmip_client_load_cert_pem(c->ctx, cfg->cert_pem));
    else if (SSL_CTX_use_certificate_chain_file(c->ctx, cfg->cert_file) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading certificate", cfg->cert_file);
        goto out;
    }
    if (cfg->key_pem != NULL)
        GUARD_OUT(kmip_client_load_key_pem(c->ctx, cfg->key_pem));
    else if (SSL_CTX_use_PrivateKey_file(c->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading key", cfg->key_file);
        goto out;
    }
    if (SSL_CTX_check_private_key(c->ctx) != 1) {
        rc =
            CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "the client key does not match the certificate");
        goto out;
    }
    /* A new connection after every idle timeout, to the same few servers:
     * their verified chains are remembered (kmip/tlsverify.h). */
    GUARD_OUT(tls_vcache_attach(c->ctx, 2 * KMIP_CLIENT_MAX_SERVERS, 3600));
    *out = c;
    c = NULL;
out:
    kmip_client_free(&c);
    return rc;
}

/* Splits "host:port" or "[v6]:port". */
static bool kmip_split_host_port(const char *s, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return false;
        if ((size_t)(end - s - 1) >= hn || strlen(end + 2) >= pn)
            return false;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        snprintf(port, pn, "%s", end + 2);
        return port[0] != '\0';
    }
    colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= hn || strlen(colon + 1) >= pn || colon[1] == '\0')
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    snprintf(port, pn, "%s", colon + 1);
    return true;
}

static void kmip_client_note(struct kmip_client *c, size_t i, const char *what)
{
    size_t n = strlen(c->errors);
    snprintf(c->errors + n, sizeof(c->errors) - n, "%s%s: %s", n ? "; " : "", c->servers[i], what);
}

/* A TCP connection with a deadline on connect, then blocking with I/O
 * timeouts. */
static int kmip_client_tcp(struct kmip_client *c, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int fd = -1;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t len = sizeof(err);
            if (errno != EINPROGRESS || poll(&p, 1, c->timeout_ms) != 1 ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                close(fd);
                fd = -1;
                continue;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Pinning: whether the server presented exactly the pinned certificate.
 * Verification already required a chain to the trust store, which holds
 * the pinned certificate; this also refuses one that chains to another
 * anchor someone added to the same store. */
static bool kmip_client_pin_ok(const struct kmip_client *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    unsigned char *der = NULL;
    uint8_t digest[CRYPTO_SHA256_LEN];
    char hex[sizeof(c->pinned_sha256)];
    int len;
    bool ok;

    if (peer == NULL || (len = i2d_X509(peer, &der)) <= 0)
        return false;
    ok = is_ok(crypto_sha256(der, (size_t)len, digest)) &&
         is_ok(hex_encode(digest, sizeof(digest), hex, sizeof(hex))) &&
         strcmp(hex, c->pinned_sha256) == 0;
    OPENSSL_free(der);
    err_clear();
    return ok;
}

static bool kmip_client_connect(struct kmip_client *c, size_t i)
{
    char host[256], port[16];

    kmip_client_disconnect(c);
    if (!kmip_split_host_port(c->servers[i], host, sizeof(host), port, sizeof(port))) {
        kmip_client_note(c, i, "not HOST:PORT");
        return false;
    }
    c->fd = kmip_client_tcp(c, host, port);
    if (c->fd < 0) {
        kmip_client_note(c, i, "cannot connect");
        return false;
    }
    c->ssl = SSL_new(c->ctx);
    const char *name = c->server_name ? c->server_name : host;
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        (c->pinned_sha256[0] == '\0' && SSL_set1_host(c->ssl, name) != 1) ||
        SSL_set_tlsext_host_name(c->ssl, name) != 1) {
        kmip_client_note(c, i, "TLS setup failed");
        kmip_client_disconnect(c);
        return false;
    }
    if (SSL_connect(c->ssl) != 1) {
        unsigned long e = ERR_peek_last_error();
        char reason[160] = "TLS handshake failed";
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK)
            snprintf(reason, sizeof(reason), "server certificate: %s",
                     X509_verify_cert_error_string(v));
        else if (e != 0)
            ERR_error_string_n(e, reason, sizeof(reason));
        ERR_clear_error();
        kmip_client_note(c, i, reason);
        kmip_client_disconnect(c);
        return false;
    }
    if (c->pinned_sha256[0] != '\0' && !kmip_client_pin_ok(c)) {
        kmip_client_note(c, i, "server certificate: not the pinned certificate");
        kmip_client_disconnect(c);
        return false;
    }
    c->current = i;
    return true;
}

/* Whether the server closed the connection we kept (idle timeout). */
static bool kmip_client_stale(const struct kmip_client *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    /* 0: closed. Data before a request: unexpected (or TLS 1.3 tickets,
     * which OpenSSL reads itself); only a close makes it stale. */
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static bool kmip_client_write(struct kmip_client *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool kmip_client_read(struct kmip_client *c, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool kmip_client_safe_to_repeat(uint32_t op)
{
    switch (op) {
    case KMIP_OP_DISCOVER_VERSIONS:
    case KMIP_OP_QUERY:
    case KMIP_OP_GET:
    case KMIP_OP_GET_ATTRIBUTES:
    case KMIP_OP_GET_ATTRIBUTE_LIST:
    case KMIP_OP_LOCATE:
        return true;
    default:
        return false;
    }
}

void kmip_client_result_free(struct kmip_client_result *r)
{
    if (r == NULL)
        return;
    ttlv_doc_free(&r->doc);
    buf_free(&r->response);
    r->payload = NULL;
}

static RESULT kmip_client_request(const struct kmip_client *c, uint32_t op, const uint8_t *payload,
                                  size_t len, struct buf *req)
{
    size_t msg, hdr, pv, item, pl;

    GUARD(ttlv_enc_begin(req, KMIP_TAG_REQUEST_MESSAGE, &msg));
    GUARD(ttlv_enc_begin(req, KMIP_TAG_REQUEST_HEADER, &hdr));
    GUARD(ttlv_enc_begin(req, KMIP_TAG_PROTOCOL_VERSION, &pv));
    GUARD(ttlv_enc_integer(req, KMIP_TAG_PROTOCOL_VERSION_MAJOR, c->version.major));
    GUARD(ttlv_enc_integer(req, KMIP_TAG_PROTOCOL_VERSION_MINOR, c->version.minor));
    GUARD(ttlv_enc_end(req, pv));
    GUARD(ttlv_enc_integer(req, KMIP_TAG_BATCH_COUNT, 1));
    GUARD(ttlv_enc_end(req, hdr));
    GUARD(ttlv_enc_begin(req, KMIP_TAG_BATCH_ITEM, &item));
    GUARD(ttlv_enc_enum(req, KMIP_TAG_OPERATION, op));
    GUARD(ttlv_enc_begin(req, KMIP_TAG_REQUEST_PAYLOAD, &pl));
    if (len > 0)
        GUARD(buf_write_bytes(req, payload, len));
    GUARD(ttlv_enc_end(req, pl));
    GUARD(ttlv_enc_end(req, item));
    return ttlv_enc_end(req, msg);
}

/* Reads the answer's batch item into r. */
static RESULT kmip_client_parse(struct kmip_client_result *r)
{
    const struct ttlv *root, *item, *f;

    GUARD(ttlv_decode(buf_data(&r->response), buf_len(&r->response), NULL, &r->doc));
    root = ttlv_doc_root(r->doc);
    ENSURE(root->tag == KMIP_TAG_RESPONSE_MESSAGE, ERR_KMIP_INVALID_MESSAGE);
    item = ttlv_find(root, KMIP_TAG_BATCH_ITEM);
    GUARD(ttlv_get_enum(ttlv_find(item, KMIP_TAG_RESULT_STATUS), &r->status));
    f = ttlv_find(item, KMIP_TAG_RESULT_REASON);
    if (f != NULL)
        GUARD(ttlv_get_enum(f, &r->reason));
    f = ttlv_find(item, KMIP_TAG_RESULT_MESSAGE);
    if (f != NULL) {
        const char *m;
        size_t n;
        GUARD(ttlv_get_text(f, &m, &n));
        snprintf(r->message, sizeof(r->message), "%.*s", (int)n, m);
    }
    r->payload = ttlv_find(item, KMIP_TAG_RESPONSE_PAYLOAD);
    return OK_RESULT;
}

vs_result kmip_client_call(struct kmip_client *c, uint32_t op, const uint8_t *payload,
                           size_t payload_len, struct kmip_client_result *r)
{
    struct buf req;
    vs_result rc = OK_RESULT;
    bool sent_somewhere = false;

    memset(r, 0, sizeof(*r));
    c->errors[0] = '\0';
    GUARD(buf_alloc_secret(&req, 0, KMIP_CLIENT_RESPONSE_MAX));
    GUARD_OUT(kmip_client_request(c, op, payload, payload_len, &req));
    GUARD_OUT(buf_alloc_secret(&r->response, 0, KMIP_CLIENT_RESPONSE_MAX));

    /* Start with the server we are connected to, then the others in order. */
    size_t first = c->ssl != NULL ? c->current : 0;
    for (size_t k = 0; k < c->server_count; k++) {
        size_t i = (first + k) % c->server_count;
        if (c->ssl != NULL && (c->current != i || kmip_client_stale(c)))
            kmip_client_disconnect(c);
        if (c->ssl == NULL && !kmip_client_connect(c, i))
            continue; /* nothing was sent: always safe to go on */
        uint8_t hdr[TTLV_HEADER_LEN];
        size_t total;
        uint8_t *p;
        if (!kmip_client_write(c, buf_data(&req), buf_len(&req))) {
            kmip_client_note(c, i, "write failed");
            kmip_client_disconnect(c);
            sent_somewhere = true;
        } else if (!kmip_client_read(c, hdr, sizeof(hdr)) ||
                   !is_ok(ttlv_frame_length(hdr, KMIP_CLIENT_RESPONSE_MAX, &total)) ||
                   !is_ok(buf_write_bytes(&r->response, hdr, sizeof(hdr))) ||
                   !is_ok(buf_reserve(&r->response, total - sizeof(hdr), &p)) ||
                   !kmip_client_read(c, p, total - sizeof(hdr))) {
            kmip_client_note(c, i, "no answer");
            kmip_client_disconnect(c);
            buf_reset(&r->response);
            sent_somewhere = true;
        } else {
            r->server = i;
            rc = kmip_client_parse(r);
            if (!is_ok(rc)) {
                kmip_client_disconnect(c);
                err_detail("server %s sent a response that does not parse", c->servers[i]);
            }
            goto out;
        }
        /* The request may have been processed: repeat it elsewhere only if
         * repeating is harmless. */
        if (sent_somewhere && !kmip_client_safe_to_repeat(op)) {
            rc = RAISE(ERR_IO);
            err_detail("%s: the request may or may not have been processed; not repeated (%s)",
                       kmip_operation_name(op), c->errors);
            goto out;
        }
    }
    rc = RAISE(ERR_IO);
    err_detail("no KMIP server answered (%s)", c->errors);
out:
    buf_free(&req);
    if (!is_ok(rc))
        kmip_client_result_free(r);
    return rc;
}

/* --- operations --- */

static vs_result kmip_client_expect(struct kmip_client *c, uint32_t op, const struct buf *payload,
                                    struct kmip_client_result *r)
{
    GUARD(kmip_client_call(c, op, buf_data(payload), buf_len(payload), r));
    if (r->status != KMIP_STATUS_SUCCESS) {
        const char *reason = kmip_result_reason_name(r->reason);
        RAISE(ERR_KMIP_FAILED);
        err_detail("%s refused by %s: %s%s%s", kmip_operation_name(op), c->servers[r->server],
                   reason ? reason : "unknown reason", r->message[0] ? ": " : "", r->message);
        kmip_client_result_free(r);
        return (vs_result){ERR_KMIP_FAILED};
    }
    return OK_RESULT;
}

static vs_result kmip_client_uid_payload(struct buf *b, const char *uid)
{
    return ttlv_enc_text(b, KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid));
}

/* A 1.x Attribute or the 2.x form, by the client's version. */
static vs_result kmip_client_enc_attr_int(const struct kmip_client *c, struct buf *b,
                                          const char *name, uint32_t tag, enum ttlv_type type,
                                          uint32_t v)
{
    size_t m;
    if (kmip_version_is_2(c->version))
        return type == TTLV_ENUMERATION ? ttlv_enc_enum(b, tag, v)
                                        : ttlv_enc_integer(b, tag, (int32_t)v);
    GUARD(ttlv_enc_begin(b, KMIP_TAG_ATTRIBUTE, &m));
    GUARD(ttlv_enc_text(b, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name)));
    GUARD(type == TTLV_ENUMERATION ? ttlv_enc_enum(b, KMIP_TAG_ATTRIBUTE_VALUE, v)
                                   : ttlv_enc_integer(b, KMIP_TAG_ATTRIBUTE_VALUE, (int32_t)v));
    return ttlv_enc_end(b, m);
}

static vs_result kmip_client_copy_uid(const struct kmip_client_result *r,
                                      char uid[KMIP_CLIENT_UID_MAX])
{
    const char *s;
    size_t n;
    GUARD(ttlv_get_text(ttlv_find(r->payload, KMIP_TAG_UNIQUE_IDENTIFIER), &s, &n));
    ENSURE(n > 0 && n < KMIP_CLIENT_UID_MAX, ERR_TOO_LARGE);
    memcpy(uid, s, n);
    uid[n] = '\0';
    return OK_RESULT;
}

vs_result kmip_client_create_aes(struct kmip_client *c, int32_t bits, char uid[KMIP_CLIENT_UID_MAX])
{
    uint8_t mem[512];
    struct buf b;
    struct kmip_client_result r;
    size_t m;
    vs_result rc;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(ttlv_enc_enum(&b, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    GUARD(ttlv_enc_begin(
        &b, kmip_version_is_2(c->version) ? KMIP_TAG_ATTRIBUTES : KMIP_TAG_TEMPLATE_ATTRIBUTE, &m));
    GUARD(kmip_client_enc_attr_int(c, &b, "Cryptographic Algorithm",
                                   KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, TTLV_ENUMERATION,
                                   KMIP_ALG_AES));
    GUARD(kmip_client_enc_attr_int(c, &b, "Cryptographic Length", KMIP_TAG_CRYPTOGRAPHIC_LENGTH,
                                   TTLV_INTEGER, (uint32_t)bits));
    GUARD(kmip_client_enc_attr_int(c, &b, "Cryptographic Usage Mask",
                                   KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, TTLV_INTEGER,
                                   KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT));
    GUARD(ttlv_enc_end(&b, m));
    GUARD(kmip_client_expect(c, KMIP_OP_CREATE, &b, &r));
    rc = kmip_client_copy_uid(&r, uid);
    kmip_client_result_free(&r);
    return rc;
}

static vs_result kmip_client_uid_op(struct kmip_client *c, uint32_t op, const char *uid)
{
    uint8_t mem[256];
    struct buf b;
    struct kmip_client_result r;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(kmip_client_uid_payload(&b, uid));
    GUARD(kmip_client_expect(c, op, &b, &r));
    kmip_client_result_free(&r);
    return OK_RESULT;
}

vs_result kmip_client_activate(struct kmip_client *c, const char *uid)
{
    return kmip_client_uid_op(c, KMIP_OP_ACTIVATE, uid);
}

vs_result kmip_client_destroy(struct kmip_client *c, const char *uid)
{
    return kmip_client_uid_op(c, KMIP_OP_DESTROY, uid);
}

vs_result kmip_client_add_text(struct kmip_client *c, const char *uid, const char *name,
                               const char *value)
{
    uint8_t mem[1024];
    struct buf b;
    struct kmip_client_result r;
    size_t m, na;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(kmip_client_uid_payload(&b, uid));
    if (kmip_version_is_2(c->version)) {
        /* A 1.x custom "x-NAME" is the 2.x vendor attribute x / NAME. */
        ENSURE(kmip_attr_is_xy(name), ERR_INVALID_ARG);
        GUARD(ttlv_enc_begin(&b, KMIP_TAG_NEW_ATTRIBUTE, &na));
        GUARD(ttlv_enc_begin(&b, KMIP_TAG_ATTRIBUTE, &m));
        GUARD(ttlv_enc_text(&b, KMIP_TAG_VENDOR_IDENTIFICATION, name, 1));
        GUARD(ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_NAME, name + 2, strlen(name + 2)));
        GUARD(ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value)));
        GUARD(ttlv_enc_end(&b, m));
        GUARD(ttlv_enc_end(&b, na));
    } else {
        GUARD(ttlv_enc_begin(&b, KMIP_TAG_ATTRIBUTE, &m));
        GUARD(ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name)));
        GUARD(ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value)));
        GUARD(ttlv_enc_end(&b, m));
    }
    GUARD(kmip_client_expect(c, KMIP_OP_ADD_ATTRIBUTE, &b, &r));
    kmip_client_result_free(&r);
    return OK_RESULT;
}

vs_result kmip_client_get_key(struct kmip_client *c, const char *uid, struct buf *out)
{
    uint8_t mem[256];
    struct buf b;
    struct kmip_client_result r;
    const uint8_t *key;
    size_t n;
    vs_result rc;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(kmip_client_uid_payload(&b, uid));
    GUARD(ttlv_enc_enum(&b, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW));
    GUARD(kmip_client_expect(c, KMIP_OP_GET, &b, &r));
    const struct ttlv *block =
        ttlv_find(ttlv_find(r.payload, KMIP_TAG_SYMMETRIC_KEY), KMIP_TAG_KEY_BLOCK);
    rc = ttlv_get_bytes(ttlv_find(ttlv_find(block, KMIP_TAG_KEY_VALUE), KMIP_TAG_KEY_MATERIAL),
                        &key, &n);
    if (is_ok(rc))
        rc = buf_write_bytes(out, key, n);
    kmip_client_result_free(&r); /* wipes the response */
    return rc;
}

vs_result kmip_client_get_state(struct kmip_client *c, const char *uid, uint32_t *state)
{
    uint8_t mem[256];
    struct buf b;
    struct kmip_client_result r;
    vs_result rc;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(kmip_client_uid_payload(&b, uid));
    if (kmip_version_is_2(c->version))
        GUARD(ttlv_enc_enum(&b, KMIP_TAG_ATTRIBUTE_REFERENCE, KMIP_TAG_STATE));
    else
        GUARD(ttlv_enc_text(&b, KMIP_TAG_ATTRIBUTE_NAME, "State", 5));
    GUARD(kmip_client_expect(c, KMIP_OP_GET_ATTRIBUTES, &b, &r));
    if (kmip_version_is_2(c->version))
        rc = ttlv_get_enum(ttlv_find(ttlv_find(r.payload, KMIP_TAG_ATTRIBUTES), KMIP_TAG_STATE),
                           state);
    else
        rc = ttlv_get_enum(
            ttlv_find(ttlv_find(r.payload, KMIP_TAG_ATTRIBUTE), KMIP_TAG_ATTRIBUTE_VALUE), state);
    kmip_client_result_free(&r);
    return rc;
}

vs_result kmip_client_revoke(struct kmip_client *c, const char *uid, uint32_t reason_code)
{
    uint8_t mem[256];
    struct buf b;
    struct kmip_client_result r;
    size_t m;
    struct timespec now;

    buf_wrap(&b, mem, sizeof(mem));
    GUARD(kmip_client_uid_payload(&b, uid));
    GUARD(ttlv_enc_begin(&b, KMIP_TAG_REVOCATION_REASON, &m));
    GUARD(ttlv_enc_enum(&b, KMIP_TAG_REVOCATION_REASON_CODE, reason_code));
    GUARD(ttlv_enc_end(&b, m));
    if (reason_code == KMIP_REVOCATION_KEY_COMPROMISE) {
        clock_gettime(CLOCK_REALTIME, &now);
        GUARD(ttlv_enc_date_time(&b, KMIP_TAG_COMPROMISE_OCCURRENCE_DATE, now.tv_sec));
    }
    GUARD(kmip_client_expect(c, KMIP_OP_REVOKE, &b, &r));
    kmip_client_result_free(&r);
    return OK_RESULT;
}

vs_result kmip_client_probe(struct kmip_client *c, size_t server, struct kmip_version *newest)
{
    struct kmip_client_result r;
    vs_result rc;

    ENSURE(server < c->server_count, ERR_INVALID_ARG);
    c->errors[0] = '\0';
    /* A fresh connection: the health check must see what a new client sees. */
    if (!kmip_client_connect(c, server)) {
        RAISE(ERR_IO);
        return err_detail("%s", c->errors);
    }
    GUARD(kmip_client_call(c, KMIP_OP_DISCOVER_VERSIONS, NULL, 0, &r));
    rc = r.status == KMIP_STATUS_SUCCESS ? OK_RESULT : RAISE(ERR_KMIP_FAILED);
    if (is_ok(rc)) {
        const struct ttlv *pv = ttlv_find(r.payload, KMIP_TAG_PROTOCOL_VERSION);
        rc = ttlv_get_integer(ttlv_find(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR), &newest->major);
        if (is_ok(rc))
            rc = ttlv_get_integer(ttlv_find(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR), &newest->minor);
    }
    kmip_client_result_free(&r);
    return rc;
}
