/*
 * server.c - TLS listener, connections, framing and the worker pool. See
 * server.h.
 */
#include "kms/server.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/crypto.h"
#include "core/log.h"
#include "kmip/kmip_defs.h"
#include "kmip/msg.h"
#include "kms/dispatch.h"
#include "kms/pki.h"

/* A response holds at most a key and its envelope; Locate is bounded too. */
#define KMS_RESPONSE_MAX (2u << 20)

struct kms_server;

struct kms_conn {
    struct kms_server *srv;
    struct bufferevent *bev;
    char peer[64];
    struct kms_principal who;
    bool authenticated;
    bool busy;    /* a request is with a worker */
    bool closing; /* free when the worker gives it back */
    struct kms_conn *prev, *next;
};

struct kms_job {
    struct kms_conn *conn;
    struct buf request;  /* secret: Register carries keys */
    struct buf response; /* secret: Get carries keys */
    struct kms_job *next;
};

struct kms_server {
    const struct kms_config *cfg;
    struct kms_store *store;
    struct kms_audit *audit;
    struct event_base *base;
    SSL_CTX *ssl;
    struct evconnlistener *listener;
    struct event *done_ev, *sig_term, *sig_int, *sig_hup;
    struct kms_conn *conns;
    unsigned conn_count;
    /* For quick reads answered on the loop's own thread. */
    struct kms_worker_ctx loop_ctx;
    bool loop_ctx_ready;
    int reserve_fd; /* spent to shed a connection when descriptors run out */
    /* the worker pool */
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct kms_job *queue_head, *queue_tail;
    struct kms_job *done_head, *done_tail;
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

        pthread_mutex_lock(&s->mu);
        j->next = NULL;
        if (s->done_tail)
            s->done_tail->next = j;
        else
            s->done_head = j;
        s->done_tail = j;
        event_active(s->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&s->mu);
    if (ready)
        kms_worker_ctx_free(&w);
    return NULL;
}

/* --- connections --- */

static void kms_conn_free(struct kms_conn *c)
{
    struct kms_server *s = c->srv;

    if (c->bev != NULL)
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
    c->bev = NULL;
    if (c->busy) {
        c->closing = true; /* the worker still holds it */
        return;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conn_count--;
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
    uint8_t mem[1024];
    struct buf b;
    struct timespec now;

    log_warn("rejecting a message", LOG_S("peer", c->peer), LOG_S("identity", c->who.identity),
             LOG_S("reason", why));
    if (c->srv->audit != NULL) {
        struct kms_audit_item it = {
            &c->who, {1, 0}, 0, "", KMIP_STATUS_OPERATION_FAILED, KMIP_REASON_INVALID_MESSAGE, why};
        kms_audit_set_peer(c->peer);
        kms_audit_write(c->srv->audit, &it);
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

/* Takes one complete request off the input, if there is one, and hands it
 * to the workers. */
static void kms_conn_read(struct bufferevent *bev, void *arg)
{
    struct kms_conn *c = arg;
    struct kms_server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t hdr[TTLV_HEADER_LEN];
    size_t total;
    struct kms_job *j;
    uint8_t *p;

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
    if (s->loop_ctx_ready && kms_request_is_quick(buf_data(&j->request), buf_len(&j->request))) {
        /* A quick read: answer here, without two thread hand-offs. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        kms_audit_set_peer(c->peer);
        if (is_ok(kms_dispatch(&s->loop_ctx, &c->who, buf_data(&j->request), buf_len(&j->request),
                               now.tv_sec, &j->response))) {
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
    struct kms_server *s = arg;
    struct kms_job *list;
    (void)fd;
    (void)what;

    pthread_mutex_lock(&s->mu);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
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
    struct kms_server *s = c->srv;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    char identity[KMS_OWNER_MAX];
    vs_result rc = OK_RESULT;

    /* SSL_VERIFY_FAIL_IF_NO_PEER_CERT makes this impossible; check anyway. */
    ENSURE(peer != NULL, ERR_PERM);
    GUARD_OUT(pki_cert_identity(peer, identity, sizeof(identity)));
    if (s->cfg->pinned_count > 0) {
        char fp[PKI_FINGERPRINT_SIZE];
        bool pinned = false;
        GUARD_OUT(pki_cert_fingerprint(peer, fp));
        for (size_t i = 0; i < s->cfg->pinned_count && !pinned; i++)
            pinned = strcmp(fp, s->cfg->pinned[i]) == 0;
        if (!pinned) {
            rc = RAISE(ERR_PERM);
            err_detail("certificate %s of %s is not pinned", fp, identity);
            goto out;
        }
    }
    kms_config_principal(s->cfg, identity, &c->who);
    c->authenticated = true;
out:
    X509_free(peer);
    return rc;
}

static void kms_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct kms_conn *c = arg;
    struct kms_server *s = c->srv;
    (void)bev;

    if (what & BEV_EVENT_CONNECTED) {
        if (!is_ok(kms_conn_identify(c))) {
            log_warn("client refused", LOG_S("peer", c->peer), LOG_ERR());
            kms_conn_free(c);
            return;
        }
        struct timeval idle = {(time_t)(s->cfg->idle_timeout_ms / 1000),
                               (suseconds_t)(s->cfg->idle_timeout_ms % 1000) * 1000};
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

static void kms_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    struct kms_server *s = arg;
    struct kms_conn *c;
    SSL *ssl;
    (void)l;

    if (s->conn_count >= s->cfg->max_connections) {
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
        return;
    }
    c->srv = s;
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
    c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(c);
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
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
}

/* accept() failed. Out of descriptors (EMFILE/ENFILE), the waiting
 * connection would stay readable and the loop would spin on it: spend the
 * reserve descriptor to accept and close it, then take the reserve back. */
static void kms_listener_error(struct evconnlistener *l, void *arg)
{
    struct kms_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();

    if (e == EMFILE || e == ENFILE) {
        if (s->reserve_fd >= 0)
            close(s->reserve_fd);
        int fd = accept(evconnlistener_get_fd(l), NULL, NULL);
        if (fd >= 0)
            close(fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_warn("out of file descriptors: a connection was refused",
                 LOG_U("connections", s->conn_count));
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

static void kms_signal(evutil_socket_t sig, short what, void *arg)
{
    struct kms_server *s = arg;
    (void)what;
    log_info("stopping", LOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    event_base_loopexit(s->base, NULL);
}

/* --- TLS --- */

static RESULT kms_tls_context(const struct kms_config *cfg, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(X509_NAME) * cas;
    static const unsigned char sid_ctx[] = "vmseal-kms";

    *out = NULL;
    ENSURE(ctx != NULL, ERR_NOMEM);
    SSL_CTX_set_min_proto_version(ctx, cfg->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certificate) != 1) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading certificate", cfg->certificate);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading key", cfg->key);
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1 ||
        (cas = SSL_load_client_CA_file(cfg->client_ca)) == NULL) {
        SSL_CTX_free(ctx);
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading client CA", cfg->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, cas);
    /* Mutual TLS: no certificate, no connection. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* vCenter opens a connection for nearly every request: resumption
     * (tickets for TLS 1.3 and 1.2, and a session cache) saves the
     * certificate work. With client authentication, OpenSSL resumes only
     * when a session id context is set. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    SSL_CTX_set_timeout(ctx, 3600);
    /* One TLS 1.3 ticket per handshake is enough for a client that
     * reconnects one connection at a time (OpenSSL's default is two). */
    SSL_CTX_set_num_tickets(ctx, 1);
    *out = ctx;
    return OK_RESULT;
}

/* --- running --- */

vs_result kms_server_run(const struct kms_config *cfg, struct kms_store *store,
                         struct kms_audit *audit)
{
    vs_result rc = OK_RESULT;
    struct kms_server s;
    struct sockaddr_storage addr;
    int addr_len = sizeof(addr);

    memset(&s, 0, sizeof(s));
    s.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s.cfg = cfg;
    s.store = store;
    s.audit = audit;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    signal(SIGPIPE, SIG_IGN);

    ENSURE_OUT(evthread_use_pthreads() == 0, ERR_INTERNAL);
    /* libevent accepts a missing port as port 0 (a random one): refuse. */
    const char *colon = strrchr(cfg->listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || end == colon + 1 || *end != '\0' || port < 1 || port > 65535 ||
        evutil_parse_sockaddr_port(cfg->listen, (struct sockaddr *)&addr, &addr_len) != 0) {
        rc = RAISE(ERR_CONFIG_VALUE);
        err_detail("listen address \"%s\" is not IP:PORT (e.g. 127.0.0.1:5696, [::]:5696)",
                   cfg->listen);
        goto out;
    }
    GUARD_OUT(kms_tls_context(cfg, &s.ssl));
    s.base = event_base_new();
    ENSURE_OUT(s.base != NULL, ERR_NOMEM);
    s.done_ev = event_new(s.base, -1, EV_PERSIST | EV_READ, kms_done_cb, &s);
    s.sig_term = evsignal_new(s.base, SIGTERM, kms_signal, &s);
    s.sig_int = evsignal_new(s.base, SIGINT, kms_signal, &s);
    s.sig_hup = evsignal_new(s.base, SIGHUP, kms_sighup, &s);
    ENSURE_OUT(s.done_ev && s.sig_term && s.sig_int && s.sig_hup, ERR_NOMEM);
    event_add(s.sig_hup, NULL);
    event_add(s.done_ev, NULL);
    event_add(s.sig_term, NULL);
    event_add(s.sig_int, NULL);

    s.listener = evconnlistener_new_bind(
        s.base, kms_accept, &s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&addr, addr_len);
    if (s.listener == NULL) {
        int e = errno;
        rc = RAISE(ERR_IO);
        err_detail("cannot listen on %s", cfg->listen);
        err_errno(e);
        goto out;
    }
    evconnlistener_set_error_cb(s.listener, kms_listener_error);
    s.loop_ctx_ready =
        is_ok(kms_worker_ctx_init(&s.loop_ctx, store, audit ? kms_audit_write : NULL, audit));
    if (!s.loop_ctx_ready)
        log_warn("reads will all go through the workers", LOG_ERR());

    s.threads = calloc(cfg->workers, sizeof(*s.threads));
    ENSURE_OUT(s.threads != NULL, ERR_NOMEM);
    for (s.nthreads = 0; s.nthreads < cfg->workers; s.nthreads++)
        if (pthread_create(&s.threads[s.nthreads], NULL, kms_worker_main, &s) != 0)
            BAIL_OUT(ERR_NOMEM);

    log_info("serving KMIP", LOG_S("listen", cfg->listen), LOG_U("workers", cfg->workers),
             LOG_S("data_dir", cfg->data_dir));
    event_base_dispatch(s.base);
out:
    if (s.listener)
        evconnlistener_free(s.listener);
    /* Let the workers finish what they hold, then close everything. */
    pthread_mutex_lock(&s.mu);
    s.stopping = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (unsigned i = 0; i < s.nthreads; i++)
        pthread_join(s.threads[i], NULL);
    free(s.threads);
    if (s.done_ev != NULL)
        kms_done_cb(-1, 0, &s); /* flush answers; frees jobs */
    while (s.conns != NULL)
        kms_conn_free(s.conns);
    if (s.loop_ctx_ready)
        kms_worker_ctx_free(&s.loop_ctx);
    if (s.done_ev)
        event_free(s.done_ev);
    if (s.sig_term)
        event_free(s.sig_term);
    if (s.sig_int)
        event_free(s.sig_int);
    if (s.sig_hup)
        event_free(s.sig_hup);
    if (s.base)
        event_base_free(s.base);
    SSL_CTX_free(s.ssl);
    if (s.reserve_fd >= 0)
        close(s.reserve_fd);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return rc;
}
