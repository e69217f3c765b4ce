/*
 * kmsload - a KMIP load generator for bench/kms/run.sh: it drives any KMIP
 * server over mutual TLS and measures requests per second and latency.
 *
 *   kmsload --host H --port P --ca CA --cert CRT --key KEY
 *           --mode get|create|newconn-get|create-one
 *           [--connections N] [--seconds S] [--uid UID] [--kmip 1.2]
 *           [--tls 1.2|1.3|auto] [--servername localhost] [--resume] [--spin]
 *
 *   get          Get of one key, back to back, on N persistent connections.
 *   create       Create (AES-256, Encrypt|Decrypt) on N persistent connections.
 *   newconn-get  Get, each request on a fresh TCP + TLS connection (what
 *                vCenter does); --resume offers the session of the thread's
 *                previous connection, as a client's TLS session cache would.
 *   create-one   Create one key and print "uid=UID" (for the get modes).
 *
 * --spin (get and create): after the handshake, each persistent connection
 * waits for its response by polling a non-blocking socket instead of
 * sleeping in read(2). The server's answer then does not have to wake a
 * sleeping thread here, which on a virtual machine costs as much as a Get:
 * with it, a ping-pong on one connection measures the server, not the load
 * generator's wake-up latency. It burns one core per connection, so it is
 * for one or two connections only.
 *
 * Without --uid, the get modes create the key they read first. Requests are
 * encoded here, by hand (KMIP 1.4 §9.1 TTLV; KMIP 2.x Attributes for
 * --kmip 2.x), independently of the server's code. Each request waits for
 * exactly one response, whose Result Status must be Success (0); anything
 * else counts as a failure, and any failure makes the run invalid (exit 1).
 *
 * One thread per connection, blocking sockets. Persistent connections are
 * made before the clock starts; every thread stops at the deadline. Output,
 * one line:
 *
 *   mode=get connections=1 seconds=10.00 ops=... ops_per_sec=... p50_ms=...
 *   p99_ms=... failures=0 resumed=0 chains_cached=... client_cpu_pct=...
 *
 * resumed counts TLS sessions resumed (newconn-get); chains_cached, the
 * full handshakes whose server chain came from the verified-chain cache
 * (kmip/tlsverify.h) instead of a new verification; client_cpu_pct is this
 * program's CPU time over the run (100 = one core), to show whether the
 * load generator itself was the bottleneck.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kmip/tlslib.h"
#include "kmip/tlsverify.h"

/* KMIP 1.4 §9.1.3.1 tags and §9.1.3.2 values used here. */
enum {
    TAG_ATTRIBUTE = 0x420008,
    TAG_ATTRIBUTE_NAME = 0x42000A,
    TAG_ATTRIBUTE_VALUE = 0x42000B,
    TAG_BATCH_COUNT = 0x42000D,
    TAG_BATCH_ITEM = 0x42000F,
    TAG_CRYPTOGRAPHIC_ALGORITHM = 0x420028,
    TAG_CRYPTOGRAPHIC_LENGTH = 0x42002A,
    TAG_CRYPTOGRAPHIC_USAGE_MASK = 0x42002C,
    TAG_OBJECT_TYPE = 0x420057,
    TAG_OPERATION = 0x42005C,
    TAG_PROTOCOL_VERSION = 0x420069,
    TAG_PROTOCOL_VERSION_MAJOR = 0x42006A,
    TAG_PROTOCOL_VERSION_MINOR = 0x42006B,
    TAG_REQUEST_HEADER = 0x420077,
    TAG_REQUEST_MESSAGE = 0x420078,
    TAG_REQUEST_PAYLOAD = 0x420079,
    TAG_RESPONSE_MESSAGE = 0x42007B,
    TAG_RESPONSE_PAYLOAD = 0x42007C,
    TAG_RESULT_MESSAGE = 0x42007D,
    TAG_RESULT_REASON = 0x42007E,
    TAG_RESULT_STATUS = 0x42007F,
    TAG_TEMPLATE_ATTRIBUTE = 0x420091,
    TAG_UNIQUE_IDENTIFIER = 0x420094,
    TAG_ATTRIBUTES = 0x420125, /* KMIP 2.0 §7: replaces Template-Attribute */
};

enum {
    TYPE_STRUCTURE = 0x01,
    TYPE_INTEGER = 0x02,
    TYPE_ENUMERATION = 0x05,
    TYPE_TEXT_STRING = 0x07,
};

enum {
    OP_CREATE = 0x01,
    OP_GET = 0x0A,
    OBJECT_SYMMETRIC_KEY = 0x02,
    ALG_AES = 0x03,
    USAGE_ENCRYPT_DECRYPT = 0x04 | 0x08,
    RESULT_SUCCESS = 0,
};

#define TTLV_HEADER 8
#define REQUEST_MAX 1024
#define RESPONSE_MAX (1u << 20) /* a Get of a symmetric key is a few hundred bytes */
#define UID_MAX 128
#define IO_TIMEOUT_SECONDS 10
#define MAX_CONNECTIONS 1024
#define MAX_SECONDS 3600

enum mode { MODE_GET, MODE_CREATE, MODE_NEWCONN_GET, MODE_CREATE_ONE };

static const struct {
    const char *name;
    enum mode mode;
} mode_names[] = {
    {"get", MODE_GET},
    {"create", MODE_CREATE},
    {"newconn-get", MODE_NEWCONN_GET},
    {"create-one", MODE_CREATE_ONE},
};

struct options {
    const char *host, *port, *ca, *cert, *key, *servername, *uid;
    enum mode mode;
    long connections;
    double seconds;
    long kmip_major, kmip_minor;
    int tls_max; /* 0: whatever both sides support */
    bool resume;
    bool spin;
};

/* --- TTLV encoding (KMIP 1.4 §9.1.1) ----------------------------------- */

/* A bounded writer: an item that does not fit sets overflow and writes
 * nothing more. */
struct enc {
    uint8_t *p;
    size_t cap, len;
    bool overflow;
};

static void enc_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends a header and reserves padded room for the value; returns the
 * value's offset, or SIZE_MAX on overflow. */
static size_t enc_item(struct enc *e, uint32_t tag, uint8_t type, uint32_t len)
{
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    if (e->overflow || e->cap - e->len < TTLV_HEADER + padded) {
        e->overflow = true;
        return SIZE_MAX;
    }
    uint8_t *h = e->p + e->len;
    h[0] = (uint8_t)(tag >> 16);
    h[1] = (uint8_t)(tag >> 8);
    h[2] = (uint8_t)tag;
    h[3] = type;
    enc_put_u32(h + 4, len);
    memset(h + TTLV_HEADER, 0, padded); /* §9.1.1.3: padding is zeros */
    e->len += TTLV_HEADER + padded;
    return (size_t)(h - e->p) + TTLV_HEADER;
}

static void enc_u32_value(struct enc *e, uint32_t tag, uint8_t type, uint32_t v)
{
    size_t at = enc_item(e, tag, type, 4);
    if (at != SIZE_MAX)
        enc_put_u32(e->p + at, v);
}

static void enc_int(struct enc *e, uint32_t tag, int32_t v)
{
    enc_u32_value(e, tag, TYPE_INTEGER, (uint32_t)v); /* two's complement */
}

static void enc_enum(struct enc *e, uint32_t tag, uint32_t v)
{
    enc_u32_value(e, tag, TYPE_ENUMERATION, v);
}

static void enc_text(struct enc *e, uint32_t tag, const char *s)
{
    size_t n = strlen(s);
    if (n > REQUEST_MAX) {
        e->overflow = true;
        return;
    }
    size_t at = enc_item(e, tag, TYPE_TEXT_STRING, (uint32_t)n);
    if (at != SIZE_MAX)
        memcpy(e->p + at, s, n);
}

/* Opens a structure; enc_end patches its length once its items are in. */
static size_t enc_begin(struct enc *e, uint32_t tag)
{
    return enc_item(e, tag, TYPE_STRUCTURE, 0);
}

static void enc_end(struct enc *e, size_t at)
{
    if (e->overflow || at == SIZE_MAX)
        return;
    enc_put_u32(e->p + at - 4, (uint32_t)(e->len - at));
}

/* KMIP 1.x Template-Attribute item: {Attribute Name, Attribute Value}. */
static void enc_attribute_int(struct enc *e, const char *name, uint8_t type, uint32_t v)
{
    size_t a = enc_begin(e, TAG_ATTRIBUTE);
    enc_text(e, TAG_ATTRIBUTE_NAME, name);
    enc_u32_value(e, TAG_ATTRIBUTE_VALUE, type, v);
    enc_end(e, a);
}

/* Request Message {Request Header {Protocol Version, Batch Count 1},
 * Batch Item {Operation, Request Payload}} (KMIP 1.4 §7.1, §7.2). */
static size_t request_encode(uint8_t *out, size_t cap, const struct options *o, uint32_t op,
                             const char *uid)
{
    struct enc e = {out, cap, 0, false};
    size_t msg = enc_begin(&e, TAG_REQUEST_MESSAGE);
    size_t hdr = enc_begin(&e, TAG_REQUEST_HEADER);
    size_t ver = enc_begin(&e, TAG_PROTOCOL_VERSION);
    enc_int(&e, TAG_PROTOCOL_VERSION_MAJOR, (int32_t)o->kmip_major);
    enc_int(&e, TAG_PROTOCOL_VERSION_MINOR, (int32_t)o->kmip_minor);
    enc_end(&e, ver);
    enc_int(&e, TAG_BATCH_COUNT, 1);
    enc_end(&e, hdr);
    size_t item = enc_begin(&e, TAG_BATCH_ITEM);
    enc_enum(&e, TAG_OPERATION, op);
    size_t payload = enc_begin(&e, TAG_REQUEST_PAYLOAD);
    if (op == OP_GET) {
        enc_text(&e, TAG_UNIQUE_IDENTIFIER, uid);
    } else if (o->kmip_major >= 2) {
        /* KMIP 2.0 §6.1.8: Attributes carries the attributes as tagged items. */
        enc_enum(&e, TAG_OBJECT_TYPE, OBJECT_SYMMETRIC_KEY);
        size_t attrs = enc_begin(&e, TAG_ATTRIBUTES);
        enc_enum(&e, TAG_CRYPTOGRAPHIC_ALGORITHM, ALG_AES);
        enc_int(&e, TAG_CRYPTOGRAPHIC_LENGTH, 256);
        enc_int(&e, TAG_CRYPTOGRAPHIC_USAGE_MASK, USAGE_ENCRYPT_DECRYPT);
        enc_end(&e, attrs);
    } else {
        /* KMIP 1.4 §4.1: Object Type and a Template-Attribute. */
        enc_enum(&e, TAG_OBJECT_TYPE, OBJECT_SYMMETRIC_KEY);
        size_t ta = enc_begin(&e, TAG_TEMPLATE_ATTRIBUTE);
        enc_attribute_int(&e, "Cryptographic Algorithm", TYPE_ENUMERATION, ALG_AES);
        enc_attribute_int(&e, "Cryptographic Length", TYPE_INTEGER, 256);
        enc_attribute_int(&e, "Cryptographic Usage Mask", TYPE_INTEGER, USAGE_ENCRYPT_DECRYPT);
        enc_end(&e, ta);
    }
    enc_end(&e, payload);
    enc_end(&e, item);
    enc_end(&e, msg);
    return e.overflow ? 0 : e.len;
}

/* --- TTLV decoding: just what a response check needs -------------------- */

/* A bounded cursor over a response; a read that does not fit fails and
 * leaves the cursor where it was. */
struct cur {
    const uint8_t *p;
    size_t len, pos;
};

struct ttlv_item {
    uint32_t tag;
    uint8_t type;
    uint32_t len;
    const uint8_t *value; /* len bytes, inside the cursor's buffer */
};

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool cur_next(struct cur *c, struct ttlv_item *it)
{
    if (c->len - c->pos < TTLV_HEADER)
        return false;
    const uint8_t *h = c->p + c->pos;
    uint32_t len = get_u32(h + 4);
    /* §9.1.1.3: the value is padded to 8 bytes, except Structures (whose
     * length is already a multiple of 8) and Big Integers (likewise). */
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    if (c->len - c->pos - TTLV_HEADER < padded)
        return false;
    it->tag = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    it->type = h[3];
    it->len = len;
    it->value = h + TTLV_HEADER;
    c->pos += TTLV_HEADER + padded;
    return true;
}

struct result {
    bool have_status;
    uint32_t status, reason;
    char message[160];
    char uid[UID_MAX];
};

/* Walks a response: the first Batch Item's Result Status, Reason, Message,
 * and its payload's Unique Identifier. Returns false if the TTLV does not
 * parse. */
static bool response_scan(const uint8_t *p, size_t len, int depth, bool in_item, bool in_payload,
                          struct result *r)
{
    struct cur c = {p, len, 0};
    struct ttlv_item it;

    if (depth > 8)
        return false;
    while (c.pos < c.len) {
        if (!cur_next(&c, &it))
            return false;
        if (it.type == TYPE_STRUCTURE) {
            bool item = in_item || it.tag == TAG_BATCH_ITEM;
            bool payload = in_payload || (item && it.tag == TAG_RESPONSE_PAYLOAD);
            if ((depth == 0 && it.tag != TAG_RESPONSE_MESSAGE) ||
                !response_scan(it.value, it.len, depth + 1, item, payload, r))
                return false;
            continue;
        }
        if (depth == 0)
            return false; /* the top item must be a Response Message */
        if (!in_item)
            continue;
        if (it.tag == TAG_RESULT_STATUS && it.type == TYPE_ENUMERATION && it.len == 4 &&
            !r->have_status) {
            r->have_status = true;
            r->status = get_u32(it.value);
        } else if (it.tag == TAG_RESULT_REASON && it.type == TYPE_ENUMERATION && it.len == 4) {
            r->reason = get_u32(it.value);
        } else if (it.tag == TAG_RESULT_MESSAGE && it.type == TYPE_TEXT_STRING) {
            int n = it.len < sizeof(r->message) ? (int)it.len : (int)sizeof(r->message) - 1;
            snprintf(r->message, sizeof(r->message), "%.*s", n, (const char *)it.value);
        } else if (in_payload && it.tag == TAG_UNIQUE_IDENTIFIER && it.type == TYPE_TEXT_STRING &&
                   it.len < UID_MAX && r->uid[0] == '\0') {
            memcpy(r->uid, it.value, it.len);
            r->uid[it.len] = '\0';
        }
    }
    return true;
}

/* --- TLS connections ---------------------------------------------------- */

struct target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int family;
};

struct conn {
    int fd;
    SSL *ssl;
};

static double now_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        abort(); /* cannot fail with CLOCK_MONOTONIC on Linux */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tls_print_errors(const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    fprintf(stderr, "kmsload: %s: %s\n", what, e != 0 ? reason : strerror(errno));
    ERR_clear_error();
}

static void conn_close(struct conn *c, bool graceful)
{
    if (c->ssl != NULL) {
        /* A close_notify, as a well-behaved client sends; no wait for the
         * server's (it may not send one). */
        if (graceful)
            (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        (void)close(c->fd);
    c->fd = -1;
}

/* A TCP connection and a TLS handshake, offering `session` if not NULL. */
static bool conn_open(struct conn *c, SSL_CTX *ctx, const struct target *t, const struct options *o,
                      SSL_SESSION *session)
{
    static const int one = 1;
    const struct timeval tmo = {IO_TIMEOUT_SECONDS, 0};

    c->ssl = NULL;
    c->fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "kmsload: socket: %s\n", strerror(errno));
        return false;
    }
    /* Bounded waits: a stuck server fails the run instead of hanging it. */
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo)) != 0) {
        fprintf(stderr, "kmsload: setsockopt: %s\n", strerror(errno));
        goto fail;
    }
    if (connect(c->fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0) {
        fprintf(stderr, "kmsload: connect %s:%s: %s\n", o->host, o->port, strerror(errno));
        goto fail;
    }
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, o->servername) != 1 ||
        SSL_set1_host(c->ssl, o->servername) != 1 ||
        (session != NULL && SSL_set_session(c->ssl, session) != 1)) {
        tls_print_errors("setting up TLS");
        goto fail;
    }
    if (SSL_connect(c->ssl) != 1) {
        tls_print_errors("TLS handshake");
        goto fail;
    }
    if (o->spin && o->mode != MODE_NEWCONN_GET) {
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            fprintf(stderr, "kmsload: fcntl: %s\n", strerror(errno));
            goto fail;
        }
    }
    return true;
fail:
    conn_close(c, false);
    return false;
}

/* After a failed SSL_read_ex/SSL_write_ex: whether to try again. Only on a
 * non-blocking (--spin) socket that has nothing yet, and not past the I/O
 * timeout that blocking sockets get from SO_RCVTIMEO. */
static bool ssl_again(SSL *ssl, int ret, double *give_up)
{
    int e = SSL_get_error(ssl, ret);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return false;
    double now = now_seconds();
    if (*give_up == 0)
        *give_up = now + IO_TIMEOUT_SECONDS;
    return now < *give_up;
}

static bool ssl_write_all(SSL *ssl, const uint8_t *p, size_t n)
{
    size_t written = 0;
    double give_up = 0;
    while (written < n) {
        size_t w = 0;
        int ret = SSL_write_ex(ssl, p + written, n - written, &w);
        if (ret != 1) {
            if (ssl_again(ssl, ret, &give_up))
                continue;
            return false;
        }
        written += w;
    }
    return true;
}

static bool ssl_read_all(SSL *ssl, uint8_t *p, size_t n)
{
    size_t got = 0;
    double give_up = 0;
    while (got < n) {
        size_t r = 0;
        int ret = SSL_read_ex(ssl, p + got, n - got, &r);
        if (ret != 1) {
            if (ssl_again(ssl, ret, &give_up))
                continue;
            return false;
        }
        got += r;
    }
    return true;
}

/* One request, exactly one response. Returns false on an I/O or framing
 * error (the connection is then unusable); otherwise fills r. */
static bool conn_roundtrip(struct conn *c, const uint8_t *req, size_t req_len, uint8_t *resp,
                           struct result *r)
{
    uint8_t hdr[TTLV_HEADER];

    memset(r, 0, sizeof(*r));
    if (!ssl_write_all(c->ssl, req, req_len)) {
        tls_print_errors("sending a request");
        return false;
    }
    if (!ssl_read_all(c->ssl, hdr, sizeof(hdr))) {
        tls_print_errors("reading a response header");
        return false;
    }
    /* §9.1.1: 3-byte tag, 1-byte type, 4-byte big-endian length. */
    uint32_t tag = (uint32_t)hdr[0] << 16 | (uint32_t)hdr[1] << 8 | hdr[2];
    uint32_t len = get_u32(hdr + 4);
    if (tag != TAG_RESPONSE_MESSAGE || hdr[3] != TYPE_STRUCTURE || len % 8 != 0 ||
        len > RESPONSE_MAX - TTLV_HEADER) {
        fprintf(stderr, "kmsload: not a KMIP Response Message (tag %06x type %02x length %u)\n",
                (unsigned)tag, (unsigned)hdr[3], (unsigned)len);
        return false;
    }
    memcpy(resp, hdr, sizeof(hdr));
    if (!ssl_read_all(c->ssl, resp + TTLV_HEADER, len)) {
        tls_print_errors("reading a response body");
        return false;
    }
    if (!response_scan(resp, TTLV_HEADER + (size_t)len, 0, false, false, r)) {
        fprintf(stderr, "kmsload: the response is not well-formed TTLV\n");
        return false;
    }
    return true;
}

/* --- the run ------------------------------------------------------------ */

struct shared {
    const struct options *o;
    const struct target *t;
    SSL_CTX *ctx;
    const char *uid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long ready;
    bool go;
    double deadline;
    bool reported_failure; /* print the first KMIP failure only */
    bool reported_cipher;
};

struct worker {
    struct shared *sh;
    pthread_t thread;
    uint64_t ops, failures, resumed;
    double last_end;
    uint32_t *lat_us; /* one per successful request */
    size_t lat_len, lat_cap;
    bool alloc_failed;
};

static void worker_record(struct worker *w, double seconds)
{
    if (w->lat_len == w->lat_cap) {
        size_t cap = w->lat_cap ? w->lat_cap * 2 : 65536;
        uint32_t *p = realloc(w->lat_us, cap * sizeof(*p));
        if (p == NULL) {
            w->alloc_failed = true; /* keep counting; percentiles become partial */
            return;
        }
        w->lat_us = p;
        w->lat_cap = cap;
    }
    double us = seconds * 1e6;
    w->lat_us[w->lat_len++] = us >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void report_failure(struct shared *sh, const struct result *r)
{
    pthread_mutex_lock(&sh->mu);
    if (!sh->reported_failure) {
        sh->reported_failure = true;
        fprintf(stderr, "kmsload: first failure: result status %u reason %u: %s\n",
                (unsigned)r->status, (unsigned)r->reason, r->message);
    }
    pthread_mutex_unlock(&sh->mu);
}

static void report_cipher(struct shared *sh, SSL *ssl)
{
    pthread_mutex_lock(&sh->mu);
    if (!sh->reported_cipher) {
        sh->reported_cipher = true;
        fprintf(stderr, "kmsload: %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    }
    pthread_mutex_unlock(&sh->mu);
}

/* Waits until every thread has connected, then for the start signal. */
static double worker_wait_start(struct shared *sh)
{
    pthread_mutex_lock(&sh->mu);
    sh->ready++;
    pthread_cond_broadcast(&sh->cv);
    while (!sh->go)
        pthread_cond_wait(&sh->cv, &sh->mu);
    double deadline = sh->deadline;
    pthread_mutex_unlock(&sh->mu);
    return deadline;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct options *o = sh->o;
    bool persistent = o->mode != MODE_NEWCONN_GET;
    uint32_t op = o->mode == MODE_CREATE ? OP_CREATE : OP_GET;
    uint8_t req[REQUEST_MAX];
    size_t req_len = request_encode(req, sizeof(req), o, op, sh->uid);
    uint8_t *resp = malloc(RESPONSE_MAX);
    struct conn c = {-1, NULL};
    SSL_SESSION *session = NULL;
    struct result r;

    if (persistent && resp != NULL && req_len > 0 && conn_open(&c, sh->ctx, sh->t, o, NULL))
        report_cipher(sh, c.ssl);
    double deadline = worker_wait_start(sh);
    if (resp == NULL || req_len == 0) {
        fprintf(stderr, "kmsload: cannot prepare a request\n");
        w->failures++;
        goto out;
    }
    for (double t0 = now_seconds(); t0 < deadline; t0 = now_seconds()) {
        if (c.ssl == NULL) {
            if (!conn_open(&c, sh->ctx, sh->t, o, o->resume ? session : NULL)) {
                w->failures++;
                w->last_end = now_seconds();
                (void)usleep(10000); /* a refusing server must not spin us */
                continue;
            }
            if (SSL_session_reused(c.ssl))
                w->resumed++;
            report_cipher(sh, c.ssl);
        }
        bool io_ok = conn_roundtrip(&c, req, req_len, resp, &r);
        double t1 = now_seconds();
        w->last_end = t1;
        if (!io_ok) {
            w->failures++;
            conn_close(&c, false);
            continue;
        }
        if (!r.have_status || r.status != RESULT_SUCCESS) {
            w->failures++;
            report_failure(sh, &r);
        } else {
            w->ops++;
            worker_record(w, t1 - t0);
        }
        if (!persistent) {
            if (o->resume) {
                /* After the response: TLS 1.3 tickets arrive after the
                 * handshake, so this is when the session is complete. */
                SSL_SESSION_free(session);
                session = SSL_get1_session(c.ssl);
            }
            conn_close(&c, true);
        }
    }
out:
    conn_close(&c, true);
    SSL_SESSION_free(session);
    free(resp);
    return NULL;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const uint32_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)sorted[i < n ? i : n - 1] / 1000.0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Creates one key on its own connection; uid receives its identifier. */
static bool create_one(SSL_CTX *ctx, const struct target *t, const struct options *o,
                       char uid[UID_MAX])
{
    uint8_t req[REQUEST_MAX];
    size_t req_len = request_encode(req, sizeof(req), o, OP_CREATE, NULL);
    uint8_t *resp = malloc(RESPONSE_MAX);
    struct conn c = {-1, NULL};
    struct result r;
    bool ok = false;

    if (resp == NULL || req_len == 0 || !conn_open(&c, ctx, t, o, NULL))
        goto out;
    if (!conn_roundtrip(&c, req, req_len, resp, &r))
        goto out;
    if (!r.have_status || r.status != RESULT_SUCCESS || r.uid[0] == '\0') {
        fprintf(stderr, "kmsload: Create failed: result status %u reason %u: %s\n",
                (unsigned)r.status, (unsigned)r.reason, r.message);
        goto out;
    }
    snprintf(uid, UID_MAX, "%s", r.uid);
    ok = true;
out:
    conn_close(&c, true);
    free(resp);
    return ok;
}

static int run(const struct options *o, SSL_CTX *ctx, const struct target *t)
{
    char uid[UID_MAX] = "";
    struct shared sh;
    struct worker *ws;
    long started = 0;
    int status = 1;

    if (o->mode == MODE_CREATE_ONE || (o->mode != MODE_CREATE && o->uid == NULL)) {
        if (!create_one(ctx, t, o, uid))
            return 1;
        if (o->mode == MODE_CREATE_ONE) {
            printf("uid=%s\n", uid);
            return 0;
        }
    } else if (o->uid != NULL) {
        snprintf(uid, sizeof(uid), "%s", o->uid);
    }

    memset(&sh, 0, sizeof(sh));
    sh.o = o;
    sh.t = t;
    sh.ctx = ctx;
    sh.uid = uid;
    if (pthread_mutex_init(&sh.mu, NULL) != 0 || pthread_cond_init(&sh.cv, NULL) != 0) {
        fprintf(stderr, "kmsload: cannot create a lock\n");
        return 1;
    }
    ws = calloc((size_t)o->connections, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "kmsload: out of memory\n");
        goto out;
    }
    for (; started < o->connections; started++) {
        ws[started].sh = &sh;
        int e = pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]);
        if (e != 0) {
            fprintf(stderr, "kmsload: pthread_create: %s\n", strerror(e));
            break;
        }
    }
    /* Start the clock once every persistent connection is up. */
    pthread_mutex_lock(&sh.mu);
    while (sh.ready < started)
        pthread_cond_wait(&sh.cv, &sh.mu);
    double cpu0 = cpu_seconds();
    double t0 = now_seconds();
    sh.deadline = started == o->connections ? t0 + o->seconds : t0; /* failed: stop at once */
    sh.go = true;
    pthread_cond_broadcast(&sh.cv);
    pthread_mutex_unlock(&sh.mu);

    uint64_t ops = 0, failures = started == o->connections ? 0 : 1, resumed = 0;
    size_t lat_total = 0;
    double end = t0;
    bool partial = false;
    for (long i = 0; i < started; i++) {
        int e = pthread_join(ws[i].thread, NULL);
        if (e != 0) {
            fprintf(stderr, "kmsload: pthread_join: %s\n", strerror(e));
            failures++;
        }
        ops += ws[i].ops;
        failures += ws[i].failures;
        resumed += ws[i].resumed;
        lat_total += ws[i].lat_len;
        partial = partial || ws[i].alloc_failed;
        if (ws[i].last_end > end)
            end = ws[i].last_end;
    }
    double cpu = cpu_seconds() - cpu0;
    double elapsed = end - t0;

    uint32_t *all = malloc((lat_total ? lat_total : 1) * sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "kmsload: out of memory\n");
        goto out;
    }
    size_t k = 0;
    for (long i = 0; i < started; i++) {
        if (ws[i].lat_len > 0)
            memcpy(all + k, ws[i].lat_us, ws[i].lat_len * sizeof(*all));
        k += ws[i].lat_len;
    }
    qsort(all, lat_total, sizeof(*all), compare_u32);
    if (partial)
        fprintf(stderr, "kmsload: out of memory for latencies; percentiles are partial\n");
    uint64_t chain_hits, chain_misses;
    tls_vcache_stats(ctx, &chain_hits, &chain_misses);
    printf("mode=%s connections=%ld seconds=%.2f ops=%llu ops_per_sec=%.1f p50_ms=%.3f "
           "p99_ms=%.3f failures=%llu resumed=%llu chains_cached=%llu client_cpu_pct=%.0f\n",
           mode_names[o->mode].name, o->connections, elapsed, (unsigned long long)ops,
           elapsed > 0 ? (double)ops / elapsed : 0.0, percentile_ms(all, lat_total, 0.50),
           percentile_ms(all, lat_total, 0.99), (unsigned long long)failures,
           (unsigned long long)resumed, (unsigned long long)chain_hits,
           elapsed > 0 ? 100.0 * cpu / elapsed : 0.0);
    free(all);
    status = failures == 0 && ops > 0 ? 0 : 1;
out:
    if (ws != NULL)
        for (long i = 0; i < started; i++)
            free(ws[i].lat_us);
    free(ws);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
    return status;
}

/* --- arguments ---------------------------------------------------------- */

static int usage(FILE *f)
{
    fprintf(f, "usage: kmsload --host H --port P --ca CA.crt --cert CLIENT.crt --key CLIENT.key\n"
               "               --mode get|create|newconn-get|create-one [--connections N]\n"
               "               [--seconds S] [--uid UID] [--kmip 1.2] [--tls 1.2|1.3|auto]\n"
               "               [--servername localhost] [--resume] [--spin]\n");
    return f == stderr ? 2 : 0;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "1.2" -> 1, 2 */
static bool parse_version(const char *s, long *major, long *minor)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '.' || a < 1 || a > 9)
        return false;
    const char *m = end + 1;
    errno = 0;
    long b = strtol(m, &end, 10);
    if (errno != 0 || end == m || *end != '\0' || b < 0 || b > 9)
        return false;
    *major = a;
    *minor = b;
    return true;
}

static bool parse_args(int argc, char **argv, struct options *o)
{
    bool have_mode = false;

    memset(o, 0, sizeof(*o));
    o->connections = 1;
    o->seconds = 10.0;
    o->kmip_major = 1;
    o->kmip_minor = 2;
    o->servername = "localhost";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--spin") == 0) {
            o->spin = true;
            continue;
        }
        if (strcmp(a, "--resume") == 0) {
            o->resume = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            exit(usage(stdout));
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "kmsload: %s needs a value\n", a);
            return false;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--port") == 0) {
            long port;
            if (!parse_long(v, 1, 65535, &port)) {
                fprintf(stderr, "kmsload: --port %s: not a port\n", v);
                return false;
            }
            o->port = v;
        } else if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--uid") == 0) {
            if (strlen(v) == 0 || strlen(v) >= UID_MAX) {
                fprintf(stderr, "kmsload: --uid: 1 to %d characters\n", UID_MAX - 1);
                return false;
            }
            o->uid = v;
        } else if (strcmp(a, "--servername") == 0) {
            o->servername = v;
        } else if (strcmp(a, "--connections") == 0) {
            if (!parse_long(v, 1, MAX_CONNECTIONS, &o->connections)) {
                fprintf(stderr, "kmsload: --connections: 1 to %d\n", MAX_CONNECTIONS);
                return false;
            }
        } else if (strcmp(a, "--seconds") == 0) {
            long s;
            if (!parse_long(v, 1, MAX_SECONDS, &s)) {
                fprintf(stderr, "kmsload: --seconds: 1 to %d\n", MAX_SECONDS);
                return false;
            }
            o->seconds = (double)s;
        } else if (strcmp(a, "--kmip") == 0) {
            if (!parse_version(v, &o->kmip_major, &o->kmip_minor)) {
                fprintf(stderr, "kmsload: --kmip %s: expected MAJOR.MINOR, e.g. 1.2\n", v);
                return false;
            }
        } else if (strcmp(a, "--tls") == 0) {
            if (strcmp(v, "1.2") == 0)
                o->tls_max = TLS1_2_VERSION;
            else if (strcmp(v, "1.3") == 0)
                o->tls_max = TLS1_3_VERSION;
            else if (strcmp(v, "auto") == 0)
                o->tls_max = 0;
            else {
                fprintf(stderr, "kmsload: --tls %s: 1.2, 1.3 or auto\n", v);
                return false;
            }
        } else if (strcmp(a, "--mode") == 0) {
            size_t m;
            for (m = 0; m < sizeof(mode_names) / sizeof(mode_names[0]); m++)
                if (strcmp(v, mode_names[m].name) == 0)
                    break;
            if (m == sizeof(mode_names) / sizeof(mode_names[0])) {
                fprintf(stderr, "kmsload: --mode %s: unknown\n", v);
                return false;
            }
            o->mode = mode_names[m].mode;
            have_mode = true;
        } else {
            fprintf(stderr, "kmsload: unknown option %s\n", a);
            return false;
        }
    }
    if (o->host == NULL || o->port == NULL || o->ca == NULL || o->cert == NULL || o->key == NULL ||
        !have_mode) {
        fprintf(stderr, "kmsload: --host, --port, --ca, --cert, --key and --mode are required\n");
        return false;
    }
    return true;
}

static SSL_CTX *tls_client_context(const struct options *o)
{
    /* The same library context as vmseal-kms (kmip/tlslib.h): parsing the
     * server's certificate on each handshake costs this program less, and
     * leaves that CPU to the server under test, whichever it is. */
    SSL_CTX *ctx;
    char why[256];
    if (!is_ok(tls_ctx_new(TLS_client_method(), &ctx))) {
        fprintf(stderr, "kmsload: %s\n", err_format(why, sizeof(why)));
        return NULL;
    }
    /* The server is authenticated by the CA and the name checked in
     * conn_open (SSL_set1_host); we are, by our certificate. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, o->tls_max) != 1) {
        tls_print_errors("setting the TLS versions");
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
        tls_print_errors(o->ca);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
        tls_print_errors(o->cert);
        goto fail;
    }
    if (!is_ok(tls_use_key_file(ctx, o->key))) {
        fprintf(stderr, "kmsload: %s\n", err_format(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_print_errors(o->key);
        goto fail;
    }
    /* The chain we send, built once, now: left to itself, OpenSSL builds it
     * on every handshake from the trust store, verifying our own
     * certificate each time, and sends the self-signed root too, which the
     * server must hold anyway (RFC 5246 §7.4.2, RFC 8446 §4.4.2). This
     * program shares the CPU with the server under test: what it spends on
     * its own certificate is taken from the server. A chain in --cert's
     * file is sent as it is; an issuer outside --ca is not an error. */
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && sk_X509_num(chain) <= 0 &&
        SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT |
                                          SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                          SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0) {
        tls_print_errors("building the client certificate chain");
        goto fail;
    }
    /* Read each flight of records in one read(2), not a header and a body
     * per record: the sockets are blocking, or polled by SSL_read itself
     * (--spin), so nothing waits on a socket while OpenSSL holds data. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions are kept by hand (SSL_get1_session), per thread. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* The server's chain, once verified, is remembered (the same cache as
     * vmseal's KMIP client, kmip/tlsverify.h): each full handshake still
     * checks the server's signature, but not its certificate chain again.
     * Against either server: its share of the CPU is left to the server. */
    if (!is_ok(tls_vcache_attach(ctx, 16, 3600))) {
        fprintf(stderr, "kmsload: certificate cache: %s\n", err_format(why, sizeof(why)));
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static bool resolve(const struct options *o, struct target *t)
{
    struct addrinfo hints, *res = NULL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int e = getaddrinfo(o->host, o->port, &hints, &res);
    if (e != 0 || res == NULL) {
        fprintf(stderr, "kmsload: %s:%s: %s\n", o->host, o->port, gai_strerror(e));
        return false;
    }
    bool ok = res->ai_addrlen <= sizeof(t->addr);
    if (ok) {
        memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
        t->addr_len = res->ai_addrlen;
        t->family = res->ai_family;
    }
    freeaddrinfo(res);
    return ok;
}

int main(int argc, char **argv)
{
    struct options o;
    struct target t;
    struct sigaction sa;

    if (!parse_args(argc, argv, &o))
        return usage(stderr);
    /* A server closing under us is an error to count, not a death. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        fprintf(stderr, "kmsload: sigaction: %s\n", strerror(errno));
        return 1;
    }
    if (!resolve(&o, &t))
        return 1;
    SSL_CTX *ctx = tls_client_context(&o);
    if (ctx == NULL)
        return 1;
    int status = run(&o, ctx, &t);
    SSL_CTX_free(ctx);
    return status;
}
