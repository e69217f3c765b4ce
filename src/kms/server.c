/*
 * server.c - TLS listener, event loops, connections, framing and the worker
 * pool. See server.h.
 */
#include "kms/server.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/crypto.h"
#include "core/log.h"
#include "kmip/kmip_defs.h"
#include "kmip/msg.h"
#include "kmip/tlslib.h"
#include "kmip/tlsverify.h"
#include "kms/dispatch.h"
#include "kms/pki.h"

/* A response holds at most a key and its envelope; Locate is bounded too. */
#define KMS_RESPONSE_MAX (2u << 20)

/* Connections waiting to be accepted (listen(2)'s backlog). */
#define KMS_LISTEN_BACKLOG 1024

/* network_threads = 0 means one per online CPU, at most this many. */
#define KMS_AUTO_LOOPS_MAX 64

/* TLS sessions kept for resumption, and for how long (seconds). A session
 * with its client certificate takes about 6 KiB, so a full cache is about
 * 25 MiB. A KMS has few clients (vCenter and its ESXi hosts), each
 * resuming its own session: 4096 leaves room for thousands of them, and a
 * flood of new clients only pushes the oldest sessions out, so that their
 * owners do one full handshake again. */
#define KMS_TLS_SESSION_CACHE_SIZE 4096
#define KMS_TLS_SESSION_TIMEOUT 3600

/* Verified client chains remembered (kmip/tlsverify.h), and for how long
 * at most (seconds): a slot holds one chain, a few KiB. */
#define KMS_TLS_VCACHE_SIZE 1024
#define KMS_TLS_VCACHE_AGE 3600

struct kms_server;
struct kms_loop;

struct kms_conn {
    struct kms_loop *loop; /* the loop that owns it; only its thread touches it */
    struct bufferevent *bev;
    char peer[64];
    struct kms_principal who;
    bool authenticated;
    bool tls_failed; /* OpenSSL reported an error: no close_notify */
    bool busy;       /* a request is with a worker */
    bool closing;    /* free when the worker gives it back */
    struct kms_conn *prev, *next;
};

struct kms_job {
    struct kms_conn *conn;
    struct buf request;  /* secret: Register carries keys */
    struct buf response; /* secret: Get carries keys */
    struct kms_job *next;
};

/* One event loop: a thread with its own libevent base and the connections
 * it accepted. Every loop polls the one listening socket and accepts one
 * connection per wake-up, so a loop busy with a handshake leaves the next
 * connection to an idle one. A connection stays on its loop for life. */
struct kms_loop {
    struct kms_server *srv;
    struct event_base *base;
    struct event *accept_ev;
    struct event *done_ev;                 /* a worker finished one of this loop's jobs */
    struct kms_job *done_head, *done_tail; /* under srv->mu */
    struct kms_conn *conns;
    /* For quick reads answered on the loop's own thread. */
    struct kms_worker_ctx read_ctx;
    bool read_ctx_ready;
    pthread_t thread;
    bool thread_started; /* loops[0] runs on the caller's thread */
    /* Set by every callback that did work; read by kms_loop_run. */
    bool worked;
};

struct kms_server {
    const struct kms_config *cfg;
    struct kms_store *store;
    struct kms_audit *audit;
    SSL_CTX *ssl;
    int listen_fd;
    struct kms_loop *loops;
    unsigned nloops;
    struct event *sig_term, *sig_int, *sig_hup; /* on loops[0] */
    atomic_uint conn_count;                     /* over all loops, against max_connections */
    /* Spent to shed a connection when descriptors run out. */
    pthread_mutex_t reserve_mu;
    int reserve_fd;
    /* the worker pool */
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct kms_job *queue_head, *queue_tail;
    bool stopping;
};

/* --- jobs --- */

static void kms_job_free(struct kms_job *j)
{
    if (j == NULL)
        return;
    buf_free(&j->request); /* wipes */
    buf_free(&j->response);
    free(j);
}

static void *kms_worker_main(void *arg)
{
    struct kms_server *s = arg;
    struct kms_worker_ctx w;
    bool ready =
        is_ok(kms_worker_ctx_init(&w, s->store, s->audit ? kms_audit_write : NULL, s->audit));

    if (!ready)
        log_error("worker cannot open the store", LOG_ERR());
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->queue_head == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        struct kms_job *j = s->queue_head;
        if (j == NULL)
            break; /* stopping, and nothing left to do */
        s->queue_head = j->next;
        if (s->queue_head == NULL)
            s->queue_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        kms_audit_set_peer(j->conn->peer);
        if (!ready || !is_ok(kms_dispatch(&w, &j->conn->who, buf_data(&j->request),
                                          buf_len(&j->request), now.tv_sec, &j->response))) {
            log_error("no response could be made; closing the connection", LOG_ERR());
            buf_reset(&j->response); /* empty: the loop closes */
        }
        buf_reset(&j->request);

        /* Back to the loop that owns the connection. */
        struct kms_loop *loop = j->conn->loop;
        pthread_mutex_lock(&s->mu);
        j->next = NULL;
        if (loop->done_tail)
            loop->done_tail->next = j;
        else
            loop->done_head = j;
        loop->done_tail = j;
        event_active(loop->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&s->mu);
    if (ready)
        kms_worker_ctx_free(&w);
    return NULL;
}

/* --- connections --- */

static void kms_conn_free(struct kms_conn *c)
{
    struct kms_loop *loop = c->loop;

    if (c->bev != NULL) {
        /* RFC 8446 §6.1 (and RFC 5246 §7.2.1): a party closing the
         * connection sends close_notify, unless it has sent an error alert.
         * It also tells OpenSSL that the session ended cleanly: OpenSSL
         * drops a session from its cache when the connection is freed
         * without it, and the client could not resume it. Not after a
         * failed handshake, nor after an OpenSSL error (the session is
         * gone then anyway). Best effort: the socket may be closed. */
        if (c->authenticated && !c->tls_failed) {
            (void)SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
            ERR_clear_error();
        }
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
        c->bev = NULL;
    }
    if (c->busy) {
        c->closing = true; /* the worker still holds it */
        return;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&loop->srv->conn_count, 1);
    free(c);
}

static void kms_conn_read(struct bufferevent *bev, void *arg);

/* After a fatal answer (a message we cannot frame): close once it is sent. */
static void kms_conn_close_when_flushed(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        kms_conn_free(arg);
}

/* Answers a message that cannot even be framed, then closes: there is no
 * way to find where the next message would start. */
static void kms_conn_reject(struct kms_conn *c, const char *why)
{
    struct kms_server *s = c->loop->srv;
    uint8_t mem[1024];
    struct buf b;
    struct timespec now;

    log_warn("rejecting a message", LOG_S("peer", c->peer), LOG_S("identity", c->who.identity),
             LOG_S("reason", why));
    if (s->audit != NULL) {
        struct kms_audit_item it = {
            &c->who, {1, 0}, 0, "", KMIP_STATUS_OPERATION_FAILED, KMIP_REASON_INVALID_MESSAGE, why};
        kms_audit_set_peer(c->peer);
        kms_audit_write(s->audit, &it);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    buf_wrap(&b, mem, sizeof(mem));
    if (is_ok(kmip_response_message_error(&b, (struct kmip_version){1, 0}, now.tv_sec,
                                          KMIP_REASON_INVALID_MESSAGE, why)))
        bufferevent_write(c->bev, buf_data(&b), buf_len(&b));
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, kms_conn_close_when_flushed, NULL, c);
    kms_conn_close_when_flushed(c->bev, c);
}

/* Takes one complete request off the input, if there is one, and answers it
 * here (a quick read) or hands it to the workers. */
static void kms_conn_read(struct bufferevent *bev, void *arg)
{
    struct kms_conn *c = arg;
    struct kms_loop *loop = c->loop;
    struct kms_server *s = loop->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t hdr[TTLV_HEADER_LEN];
    size_t total;
    struct kms_job *j;
    uint8_t *p;

    loop->worked = true;
    if (c->busy || c->closing || !c->authenticated || s->stopping)
        return;
    if (evbuffer_get_length(in) < TTLV_HEADER_LEN)
        return;
    if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
        return;
    vs_result rc = ttlv_frame_length(hdr, s->cfg->max_message_size, &total);
    if (!is_ok(rc)) {
        kms_conn_reject(c, rc.code == ERR_TOO_LARGE ? "message larger than the server accepts"
                                                    : "not a KMIP message");
        return;
    }
    if (evbuffer_get_length(in) < total)
        return; /* the rest is on its way */

    j = calloc(1, sizeof(*j));
    if (j == NULL || !is_ok(buf_alloc_secret(&j->request, total, total)) ||
        !is_ok(buf_alloc_secret(&j->response, 0, KMS_RESPONSE_MAX)) ||
        !is_ok(buf_reserve(&j->request, total, &p)) ||
        evbuffer_remove(in, p, total) != (int)total) {
        log_error("cannot take a request", LOG_ERR());
        kms_job_free(j);
        kms_conn_free(c);
        return;
    }
    j->conn = c;
    if (loop->read_ctx_ready && kms_request_is_quick(buf_data(&j->request), buf_len(&j->request))) {
        /* A quick read: answer here, without two thread hand-offs. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        kms_audit_set_peer(c->peer);
        if (is_ok(kms_dispatch(&loop->read_ctx, &c->who, buf_data(&j->request),
                               buf_len(&j->request), now.tv_sec, &j->response))) {
            bufferevent_write(c->bev, buf_data(&j->response), buf_len(&j->response));
            kms_job_free(j);
            kms_conn_read(bev, c); /* the next request may be there already */
        } else {
            kms_job_free(j);
            kms_conn_free(c);
        }
        return;
    }
    c->busy = true;
    pthread_mutex_lock(&s->mu);
    if (s->queue_tail)
        s->queue_tail->next = j;
    else
        s->queue_head = j;
    s->queue_tail = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Responses back from the workers, on the loop's thread. */
static void kms_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct kms_loop *loop = arg;
    struct kms_server *s = loop->srv;
    struct kms_job *list;
    (void)fd;
    (void)what;

    loop->worked = true;
    pthread_mutex_lock(&s->mu);
    list = loop->done_head;
    loop->done_head = loop->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);

    for (struct kms_job *j = list, *next; j != NULL; j = next) {
        struct kms_conn *c = j->conn;
        next = j->next;
        c->busy = false;
        if (c->closing) {
            kms_conn_free(c);
        } else if (buf_len(&j->response) == 0) {
            kms_conn_free(c);
        } else {
            bufferevent_write(c->bev, buf_data(&j->response), buf_len(&j->response));
            /* Another request may already be waiting. */
            kms_conn_read(c->bev, c);
        }
        kms_job_free(j);
    }
}

static vs_result kms_conn_identify(struct kms_conn *c)
{
    const struct kms_config *cfg = c->loop->srv->cfg;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    char identity[KMS_OWNER_MAX];
    vs_result rc = OK_RESULT;

    /* SSL_VERIFY_FAIL_IF_NO_PEER_CERT makes this impossible; check anyway. */
    ENSURE(peer != NULL, ERR_PERM);
    GUARD_OUT(pki_cert_identity(peer, identity, sizeof(identity)));
    if (cfg->pinned_count > 0) {
        char fp[PKI_FINGERPRINT_SIZE];
        bool pinned = false;
        GUARD_OUT(pki_cert_fingerprint(peer, fp));
        for (size_t i = 0; i < cfg->pinned_count && !pinned; i++)
            pinned = strcmp(fp, cfg->pinned[i]) == 0;
        if (!pinned) {
            rc = RAISE(ERR_PERM);
            err_detail("certificate %s of %s is not pinned", fp, identity);
            goto out;
        }
    }
    kms_config_principal(cfg, identity, &c->who);
    c->authenticated = true;
out:
    X509_free(peer);
    return rc;
}

static void kms_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct kms_conn *c = arg;
    const struct kms_config *cfg = c->loop->srv->cfg;
    (void)bev;

    if (what & BEV_EVENT_CONNECTED) {
        if (!is_ok(kms_conn_identify(c))) {
            log_warn("client refused", LOG_S("peer", c->peer), LOG_ERR());
            kms_conn_free(c);
            return;
        }
        struct timeval idle = {(time_t)(cfg->idle_timeout_ms / 1000),
                               (suseconds_t)(cfg->idle_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &idle, &idle);
        log_debug("client connected", LOG_S("peer", c->peer), LOG_S("identity", c->who.identity));
        kms_conn_read(c->bev, c);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(c->bev);
        char reason[160] = "connection error";
        if (e != 0)
            ERR_error_string_n(e, reason, sizeof(reason));
        c->tls_failed = true;
        /* A failed handshake (no certificate, untrusted, not TLS) is the
         * client's problem and touches no other connection. */
        if (c->authenticated)
            log_debug("connection error", LOG_S("peer", c->peer), LOG_S("reason", reason));
        else
            log_info("handshake failed", LOG_S("peer", c->peer), LOG_S("reason", reason));
    } else if (what & BEV_EVENT_TIMEOUT) {
        log_debug("connection timed out", LOG_S("peer", c->peer));
    }
    kms_conn_free(c);
}

/* Takes a new TCP connection into this loop: a TLS server connection with
 * the handshake timeout, then the idle timeout once it is established. */
static void kms_conn_new(struct kms_loop *loop, evutil_socket_t fd, const struct sockaddr *sa,
                         socklen_t len)
{
    struct kms_server *s = loop->srv;
    struct kms_conn *c;
    SSL *ssl;

    if (atomic_fetch_add(&s->conn_count, 1) >= s->cfg->max_connections) {
        atomic_fetch_sub(&s->conn_count, 1);
        log_warn("connection refused: max_connections reached");
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    ssl = SSL_new(s->ssl);
    if (c == NULL || ssl == NULL) {
        free(c);
        SSL_free(ssl);
        evutil_closesocket(fd);
        atomic_fetch_sub(&s->conn_count, 1);
        return;
    }
    c->loop = loop;
    /* Small request, small answer: waiting for Nagle (and the client's
     * delayed ACK) would add tens of milliseconds to every exchange. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET && (size_t)len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        evutil_inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        port = ntohs(in4->sin_port);
    } else if (sa->sa_family == AF_INET6 && (size_t)len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    c->bev = bufferevent_openssl_socket_new(loop->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(c);
        atomic_fetch_sub(&s->conn_count, 1);
        return;
    }
    /* Clients that close without close_notify are common; not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    /* Bound what one connection may buffer: one maximal message and a header. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->cfg->max_message_size + TTLV_HEADER_LEN);
    struct timeval hs = {(time_t)(s->cfg->handshake_timeout_ms / 1000),
                         (suseconds_t)(s->cfg->handshake_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &hs, &hs);
    bufferevent_setcb(c->bev, kms_conn_read, NULL, kms_conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = loop->conns;
    if (loop->conns)
        loop->conns->prev = c;
    loop->conns = c;
}

/* The listening socket is readable. Every loop polls it; whichever wakes
 * first takes one connection, and the others find nothing (EAGAIN). One per
 * wake-up, so that a burst of connections spreads over the loops. */
static void kms_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct kms_loop *loop = arg;
    struct kms_server *s = loop->srv;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    (void)what;

    int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        kms_conn_new(loop, fd, (const struct sockaddr *)&ss, len);
        return;
    }
    int e = errno;
    if (e == EAGAIN || e == EINTR || e == ECONNABORTED || e == EPROTO)
        return; /* another loop took it, or the client gave up */
    if (e == EMFILE || e == ENFILE) {
        /* Out of descriptors, the waiting connection would stay readable and
         * the loop would spin on it: spend the reserve descriptor to accept
         * and close it, then take the reserve back. */
        pthread_mutex_lock(&s->reserve_mu);
        if (s->reserve_fd >= 0)
            close(s->reserve_fd);
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pthread_mutex_unlock(&s->reserve_mu);
        if (fd >= 0) /* else another loop shed it already */
            log_warn("out of file descriptors: a connection was refused",
                     LOG_U("connections", atomic_load(&s->conn_count)));
        return;
    }
    log_warn("accept failed", LOG_S("reason", evutil_socket_error_to_string(e)));
}

/* There is nothing to reload without a restart; do not die of a SIGHUP
 * (a closed terminal, a careless reload). */
static void kms_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_warn("SIGHUP ignored: restart vmseal-kms to apply a changed configuration");
}

/* Asks every loop to return from its dispatch. Safe from any thread:
 * libevent's bases are locked (evthread_use_pthreads). */
static void kms_loops_exit(struct kms_server *s)
{
    for (unsigned i = 0; i < s->nloops; i++)
        if (s->loops[i].base != NULL)
            event_base_loopexit(s->loops[i].base, NULL);
}

static void kms_signal(evutil_socket_t sig, short what, void *arg)
{
    struct kms_server *s = arg;
    (void)what;
    log_info("stopping", LOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    kms_loops_exit(s);
}

/* --- TLS --- */

static RESULT kms_tls_context(const struct kms_config *cfg, SSL_CTX **out)
{
    SSL_CTX *ctx;
    STACK_OF(X509_NAME) * cas;
    STACK_OF(X509) *chain = NULL;
    static const unsigned char sid_ctx[] = "vmseal-kms";

    *out = NULL;
    /* In the library context of kmip/tlslib.h: parsing each client's
     * certificate does not enumerate every decoder OpenSSL has. */
    GUARD(tls_ctx_new(TLS_server_method(), &ctx));
    SSL_CTX_set_min_proto_version(ctx, cfg->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* SSL_OP_NO_TICKET: sessions stay in the server's cache, and clients
     * resume them by session ID (TLS 1.2) or by a ticket that only names
     * the cached session (TLS 1.3). Stateless tickets would put the whole
     * session, client certificate included, in the ticket: OpenSSL re-parses
     * that certificate to make every ticket (a tenth of a full handshake's
     * CPU), and one ticket key, kept for the server's lifetime, would
     * protect every session it ever issued. Clients without ticket support
     * (Java's TLS 1.2 client, as in vCenter 7) resume by session ID either
     * way.
     *
     * SSL_OP_IGNORE_UNEXPECTED_EOF: a client that closes without
     * close_notify ends the connection normally (OpenSSL 3 would make it a
     * fatal error and drop the session from the cache). Truncation is not
     * a risk here: every KMIP message carries its length (KMIP 1.4 §9.1.1),
     * and only whole messages are acted on. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certificate) != 1) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading certificate", cfg->certificate);
    }
    vs_result krc = tls_use_key_file(ctx, cfg->key);
    if (!is_ok(krc)) {
        SSL_CTX_free(ctx);
        return krc;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "the key does not match the certificate",
                                    cfg->key);
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1 ||
        (cas = SSL_load_client_CA_file(cfg->client_ca)) == NULL) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading client CA", cfg->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, cas);
    /* A certificate file without intermediates: OpenSSL would build the
     * chain from the trust store (client_ca) on every handshake, verifying
     * our own certificate each time. Build it once, now, and without the
     * self-signed root, which the client must hold already to trust us
     * (RFC 5246 §7.4.2, RFC 8446 §4.4.2). A chain that cannot be completed
     * (an issuer outside client_ca) is sent as far as it goes, as before. */
    if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && sk_X509_num(chain) <= 0 &&
        SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT |
                                          SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                          SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "building the chain of", cfg->certificate);
    }
    /* Mutual TLS: no certificate, no connection. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* The same few clients (vCenter, its hosts) come back for nearly every
     * request: remember their verified chains (kmip/tlsverify.h). The
     * trust store is fixed until the server restarts. */
    vs_result vrc = tls_vcache_attach(ctx, KMS_TLS_VCACHE_SIZE, KMS_TLS_VCACHE_AGE);
    if (!is_ok(vrc)) {
        SSL_CTX_free(ctx);
        return vrc;
    }
    /* vCenter opens a connection for nearly every request: resumption
     * saves the certificate work. With client authentication, OpenSSL
     * resumes only when a session id context is set. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, KMS_TLS_SESSION_CACHE_SIZE);
    SSL_CTX_set_timeout(ctx, KMS_TLS_SESSION_TIMEOUT);
    /* One TLS 1.3 ticket per handshake is enough for a client that
     * reconnects one connection at a time (OpenSSL's default is two). */
    SSL_CTX_set_num_tickets(ctx, 1);
    *out = ctx;
    return OK_RESULT;
}

/* --- listening --- */

/* Parses cfg->listen, an IP address and a port. */
static RESULT kms_listen_address(const struct kms_config *cfg, struct sockaddr_storage *addr,
                                 socklen_t *addr_len)
{
    int len = sizeof(*addr);

    /* libevent accepts a missing port as port 0 (a random one): refuse. */
    const char *colon = strrchr(cfg->listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || end == colon + 1 || *end != '\0' || port < 1 || port > 65535 ||
        evutil_parse_sockaddr_port(cfg->listen, (struct sockaddr *)addr, &len) != 0) {
        vs_result rc = RAISE(ERR_CONFIG_VALUE);
        err_detail("listen address \"%s\" is not IP:PORT (e.g. 127.0.0.1:5696, [::]:5696)",
                   cfg->listen);
        return rc;
    }
    *addr_len = (socklen_t)len;
    return OK_RESULT;
}

/* A non-blocking listening socket, shared by every loop. */
static RESULT kms_listen(const struct kms_config *cfg, const struct sockaddr_storage *addr,
                         socklen_t addr_len, int *out)
{
    int one = 1;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    *out = -1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, addr_len) != 0 ||
        listen(fd, KMS_LISTEN_BACKLOG) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        vs_result rc = RAISE(ERR_IO);
        err_detail("cannot listen on %s", cfg->listen);
        err_errno(e);
        return rc;
    }
    *out = fd;
    return OK_RESULT;
}

/* --- running --- */

static void kms_loop_run(struct kms_loop *loop);

/* Runs one loop (other than the first, which runs on kms_server_run's
 * thread). Whatever ends it ends them all: the server stops as one. */
static void *kms_loop_main(void *arg)
{
    struct kms_loop *loop = arg;
    kms_loop_run(loop);
    kms_loops_exit(loop->srv);
    return NULL;
}

static uint64_t kms_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool kms_loop_stopped(struct event_base *base)
{
    return event_base_got_exit(base) || event_base_got_break(base);
}

/* Runs one loop until it is told to exit. After a round that answered a
 * request, the loop polls without sleeping for busy_poll (a client that
 * sends its next request within that time finds the loop awake: no
 * wake-up of a sleeping thread on either side, which on a virtual machine
 * costs more than answering a Get); each new request restarts the window.
 * A poll that finds nothing yields the CPU, so runnable threads are not
 * starved by the spin. busy_poll = 0: plain event_base_dispatch. */
static void kms_loop_run(struct kms_loop *loop)
{
    struct event_base *base = loop->base;
    uint64_t window = loop->srv->cfg->busy_poll_us * 1000u;

    if (window == 0) {
        event_base_dispatch(base);
        return;
    }
    for (;;) {
        loop->worked = false;
        if (event_base_loop(base, EVLOOP_ONCE) < 0 || kms_loop_stopped(base))
            return;
        if (!loop->worked)
            continue;
        uint64_t until = kms_now_ns() + window;
        while (kms_now_ns() < until) {
            loop->worked = false;
            if (event_base_loop(base, EVLOOP_NONBLOCK) < 0 || kms_loop_stopped(base))
                return;
            if (loop->worked)
                until = kms_now_ns() + window;
            else
                sched_yield();
        }
    }
}

/* The number of loops: network_threads, or one per online CPU. */
static unsigned kms_loop_count(const struct kms_config *cfg)
{
    if (cfg->network_threads > 0)
        return cfg->network_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > KMS_AUTO_LOOPS_MAX ? KMS_AUTO_LOOPS_MAX : (unsigned)n;
}

static RESULT kms_loop_init(struct kms_server *s, struct kms_loop *loop)
{
    loop->srv = s;
    loop->base = event_base_new();
    ENSURE(loop->base != NULL, ERR_NOMEM);
    loop->done_ev = event_new(loop->base, -1, EV_PERSIST | EV_READ, kms_done_cb, loop);
    loop->accept_ev = event_new(loop->base, s->listen_fd, EV_PERSIST | EV_READ, kms_accept, loop);
    ENSURE(loop->done_ev != NULL && loop->accept_ev != NULL, ERR_NOMEM);
    ENSURE(event_add(loop->done_ev, NULL) == 0 && event_add(loop->accept_ev, NULL) == 0, ERR_NOMEM);
    loop->read_ctx_ready = is_ok(kms_worker_ctx_init(&loop->read_ctx, s->store,
                                                     s->audit ? kms_audit_write : NULL, s->audit));
    if (!loop->read_ctx_ready)
        log_warn("reads will all go through the workers", LOG_ERR());
    return OK_RESULT;
}

/* Frees what kms_loop_init made; the loop's thread has ended. */
static void kms_loop_free(struct kms_loop *loop)
{
    while (loop->conns != NULL)
        kms_conn_free(loop->conns);
    if (loop->read_ctx_ready)
        kms_worker_ctx_free(&loop->read_ctx);
    loop->read_ctx_ready = false;
    if (loop->accept_ev)
        event_free(loop->accept_ev);
    if (loop->done_ev)
        event_free(loop->done_ev);
    if (loop->base)
        event_base_free(loop->base);
    loop->accept_ev = loop->done_ev = NULL;
    loop->base = NULL;
}

vs_result kms_server_run(const struct kms_config *cfg, struct kms_store *store,
                         struct kms_audit *audit)
{
    vs_result rc = OK_RESULT;
    struct kms_server s;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;

    memset(&s, 0, sizeof(s));
    s.listen_fd = -1;
    s.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sigset_t saved_mask;
    bool mask_saved = false;
    s.cfg = cfg;
    s.store = store;
    s.audit = audit;
    atomic_init(&s.conn_count, 0);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_mutex_init(&s.reserve_mu, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Before any base exists: bases made after it are locked and can be
     * woken from other threads (workers, the signal handler's loop). */
    ENSURE_OUT(evthread_use_pthreads() == 0, ERR_INTERNAL);
    /* SIGTERM, SIGINT and SIGHUP wait (blocked) until their handlers are in
     * place: a client can connect as soon as listen(2) returns, and a stop
     * signal arriving before evsignal_add would kill the process instead of
     * stopping it. Threads created below inherit the mask and never take
     * these signals; the main thread unblocks them just before dispatch. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &saved_mask);
    mask_saved = true;
    GUARD_OUT(kms_listen_address(cfg, &addr, &addr_len));
    GUARD_OUT(kms_tls_context(cfg, &s.ssl));
    GUARD_OUT(kms_listen(cfg, &addr, addr_len, &s.listen_fd));

    s.nloops = kms_loop_count(cfg);
    s.loops = calloc(s.nloops, sizeof(*s.loops));
    ENSURE_OUT(s.loops != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < s.nloops; i++)
        GUARD_OUT(kms_loop_init(&s, &s.loops[i]));
    /* libevent delivers signals to one base: the first loop's. */
    struct event_base *base0 = s.loops[0].base;
    s.sig_term = evsignal_new(base0, SIGTERM, kms_signal, &s);
    s.sig_int = evsignal_new(base0, SIGINT, kms_signal, &s);
    s.sig_hup = evsignal_new(base0, SIGHUP, kms_sighup, &s);
    ENSURE_OUT(s.sig_term && s.sig_int && s.sig_hup, ERR_NOMEM);
    event_add(s.sig_hup, NULL);
    event_add(s.sig_term, NULL);
    event_add(s.sig_int, NULL);

    s.threads = calloc(cfg->workers, sizeof(*s.threads));
    ENSURE_OUT(s.threads != NULL, ERR_NOMEM);
    for (s.nthreads = 0; s.nthreads < cfg->workers; s.nthreads++) {
        if (pthread_create(&s.threads[s.nthreads], NULL, kms_worker_main, &s) != 0)
            BAIL_OUT(ERR_NOMEM);
        (void)pthread_setname_np(s.threads[s.nthreads], "kms-worker");
    }
    for (unsigned i = 1; i < s.nloops; i++) {
        if (pthread_create(&s.loops[i].thread, NULL, kms_loop_main, &s.loops[i]) != 0)
            BAIL_OUT(ERR_NOMEM);
        (void)pthread_setname_np(s.loops[i].thread, "kms-net");
        s.loops[i].thread_started = true;
    }

    log_info("serving KMIP", LOG_S("listen", cfg->listen), LOG_U("network_threads", s.nloops),
             LOG_U("workers", cfg->workers), LOG_S("data_dir", cfg->data_dir));
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    mask_saved = false;
    kms_loop_run(&s.loops[0]);
out:
    if (mask_saved)
        pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    /* Stop every loop (each finishes the callback it is in), then stop
     * accepting. */
    if (s.loops != NULL) {
        kms_loops_exit(&s);
        for (unsigned i = 0; i < s.nloops; i++)
            if (s.loops[i].thread_started)
                pthread_join(s.loops[i].thread, NULL);
        for (unsigned i = 0; i < s.nloops; i++)
            if (s.loops[i].accept_ev != NULL)
                event_del(s.loops[i].accept_ev);
    }
    if (s.listen_fd >= 0)
        close(s.listen_fd);
    /* Let the workers finish what they hold, then close everything. */
    pthread_mutex_lock(&s.mu);
    s.stopping = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (unsigned i = 0; i < s.nthreads; i++)
        pthread_join(s.threads[i], NULL);
    free(s.threads);
    if (s.sig_term)
        event_free(s.sig_term);
    if (s.sig_int)
        event_free(s.sig_int);
    if (s.sig_hup)
        event_free(s.sig_hup);
    for (unsigned i = 0; s.loops != NULL && i < s.nloops; i++) {
        if (s.loops[i].done_ev != NULL)
            kms_done_cb(-1, 0, &s.loops[i]); /* flush answers; frees jobs */
        kms_loop_free(&s.loops[i]);
    }
    free(s.loops);
    SSL_CTX_free(s.ssl);
    if (s.reserve_fd >= 0)
        close(s.reserve_fd);
    pthread_mutex_destroy(&s.reserve_mu);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return rc;
}
