/*
 * main.c - vmseald, the management server of one host.
 *
 *   vmseald --data-dir DIR [--socket PATH] [--runtime-dir DIR]
 *           [--accel auto|kvm|tcg] [--listen-https HOST:PORT]
 *   vmseald init --data-dir DIR
 *   vmseald --privileges-markdown
 *
 * Serves the API of docs/api.md (src/server/api.c) on a Unix socket and,
 * with --listen-https, over HTTPS: the same routes on both, every call
 * authenticated (a bearer token, or on the socket the caller's uid from
 * SO_PEERCRED), checked against privileges and audited. Logs to stderr,
 * stops cleanly on SIGTERM or SIGINT. Running VMs keep running across a
 * restart; interrupted operations are finished or rolled back at start
 * (src/vm/journal.h), and so are their tasks (tasks.h).
 *
 * Threads: one event loop (both listeners, TLS handshakes, HTTP parsing)
 * and a pool of API_WORKERS request threads that run the handlers, which
 * may block on a key provider or qemu-img. A request arriving while every
 * worker is busy is answered 503 at once: nothing queues without bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "server/api.h"
#include "server/tasks.h"
#include "server/tls.h"
#include "vm/vmutil.h"

#define API_WORKERS 64          /* requests in flight at most; more get 503 */
#define MAX_BODY (8u << 20)     /* a request body */
#define MAX_HEADERS (16u << 10) /* all of a request's headers */
#define REQ_PATH_MAX 1024
#define REQ_QUERY_MAX 2048
#define HTTP_TIMEOUT_SECONDS 60 /* idle keep-alive, a slow request, a TLS handshake */
#define TICK_SECONDS 2
#define STOP_WAIT_MS 60000 /* for operations to stop before vmseald exits */
#define LOCK_FILE "vmseald.lock"

/* Each request in flight holds one slot of secret memory for what may be
 * a credential: its bearer token and a body that fits (a login's
 * password). A larger body gets secret memory of its own. One allocation
 * at start instead of a few system calls per request. */
#define SLOT_SIZE 4096
#define SLOT_BEARER_MAX 256 /* a token is 47 characters; longer is not one */

struct daemon;

/* One listener: which transport its requests came by. */
struct listener {
    struct daemon *dm;
    const char *via; /* "socket" or "https" */
    bool tls;
};

struct job {
    struct daemon *dm;
    struct evhttp_request *req;
    const char *via;
    char method[8];
    char path[REQ_PATH_MAX];
    char *query; /* NULL when the URI has none */
    char peer[INET6_ADDRSTRLEN + 16];
    bool has_uid;
    uid_t uid;
    int slot;
    char *bearer;    /* in the slot, or NULL */
    char *body_text; /* in the slot, or own secret memory when body_owned */
    bool body_owned;
    size_t body_len;
    int status;
    unsigned retry_after;
    char *reply;
    struct job *next;
};

struct daemon {
    struct event_base *base;
    struct evhttp *http_unix, *http_tls;
    struct listener on_unix, on_tls;
    SSL_CTX *tls;
    struct api_ctx api;
    atomic_int stopping;
    atomic_int jobs; /* requests with a worker: they use the host and the loop */

    /* Secret slots, taken and given back on the loop's thread only. */
    uint8_t *slot_mem;
    int slot_free[API_WORKERS];
    int slot_nfree;

    /* The worker pool. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    bool quit;
    pthread_t workers[API_WORKERS];
    unsigned nworkers;
    bool pool_ready; /* mu and cv initialised */
};

/* --- options ------------------------------------------------------------- */

enum option_id { OPT_DATA_DIR, OPT_SOCKET, OPT_RUNTIME_DIR, OPT_ACCEL, OPT_LISTEN_HTTPS, OPT_COUNT };

/* The values given, by option_id; NULL when absent. */
struct options {
    const char *value[OPT_COUNT];
};

static const struct option_def {
    const char *name;
    const char *metavar;
    enum option_id id;
    bool for_init; /* accepted by `vmseald init` */
    const char *help;
} option_defs[] = {
    {"--data-dir", "DIR", OPT_DATA_DIR, true,
     "everything vmseald keeps (required); created 0700 if missing"},
    {"--socket", "PATH", OPT_SOCKET, false,
     "the Unix socket (default DIR/vmseald.sock), mode 0666: every call on it\n"
     "is authenticated (SO_PEERCRED: root is the administrator, another uid is\n"
     "the vmseal user of its login name, or a bearer token)"},
    {"--runtime-dir", "DIR", OPT_RUNTIME_DIR, false,
     "a tmpfs for running VMs' decrypted state (default /dev/shm/vmseald-*)"},
    {"--accel", "auto|kvm|tcg", OPT_ACCEL, false,
     "QEMU accelerator; auto uses KVM where the CPU offers it"},
    {"--listen-https", "HOST:PORT", OPT_LISTEN_HTTPS, false,
     "also serve the API over HTTPS (TLS 1.2+) on this address, e.g.\n"
     "0.0.0.0:8443 or [::]:8443, with the certificate DIR/tls/api.crt"},
};
#define OPTION_COUNT (sizeof option_defs / sizeof option_defs[0])

static int usage(FILE *f)
{
    fprintf(f,
            "usage: vmseald --data-dir DIR [--socket PATH] [--runtime-dir DIR]\n"
            "               [--accel auto|kvm|tcg] [--listen-https HOST:PORT]\n"
            "       vmseald init --data-dir DIR\n"
            "       vmseald --privileges-markdown\n"
            "       vmseald --help\n"
            "\n"
            "Serves vmseal's management API (docs/api.md) until SIGTERM or SIGINT.\n"
            "\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        fprintf(f, "  %s %s\n      ", option_defs[i].name, option_defs[i].metavar);
        for (const char *p = option_defs[i].help; *p != '\0'; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fputs("      ", f); /* continuation lines stay indented */
        }
        fputc('\n', f);
    }
    fprintf(f,
            "\n"
            "  init                     create DIR (0700), its database and the API's\n"
            "                           certificate DIR/tls/api.crt and key api.key\n"
            "                           (self-signed ECDSA P-256, 825 days); print the\n"
            "                           certificate's SHA-256 fingerprint. Never replaces\n"
            "                           an existing certificate or key; the first start\n"
            "                           does the same.\n"
            "  --privileges-markdown    print the table of the privileges each operation\n"
            "                           needs (docs/privileges.md) and exit\n"
            "\n"
            "Files in DIR: vmseald.db (users, tokens, roles, permissions, tasks),\n"
            "audit.log (one JSON line per API call, 0600), tls/ (0700), vmseald.lock\n"
            "(one vmseald per DIR), vms/, keys and providers (docs/encryption.md).\n"
            "DIR is made 0711 when the socket is in it, so that other users reach the\n"
            "socket without listing anything; else 0700.\n"
            "Logs go to stderr. Running VMs keep running across a restart.\n"
            "See docs/vmseald.md.\n");
    return f == stderr ? 2 : 0;
}

/* Parses argv into o. *init: the first argument was "init". Returns -1 to
 * go on, else the exit status. */
static int parse_args(int argc, char **argv, struct options *o, bool *init)
{
    int i = 1;
    *init = argc > 1 && strcmp(argv[1], "init") == 0;
    if (*init)
        i = 2;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        if (!*init && strcmp(argv[i], "--privileges-markdown") == 0) {
            char *md = authz_table_markdown();
            if (md == NULL) {
                fprintf(stderr, "vmseald: out of memory\n");
                return 1;
            }
            fputs(md, stdout);
            free(md);
            return 0;
        }
        const struct option_def *d = NULL;
        for (size_t k = 0; k < OPTION_COUNT && d == NULL; k++)
            if (strcmp(argv[i], option_defs[k].name) == 0)
                d = &option_defs[k];
        if (d == NULL || (*init && !d->for_init)) {
            fprintf(stderr, "vmseald: %s is not an option%s\n", argv[i],
                    d != NULL ? " of init" : "");
            return usage(stderr);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vmseald: %s needs a value\n", argv[i]);
            return usage(stderr);
        }
        o->value[d->id] = argv[++i];
    }
    if (o->value[OPT_DATA_DIR] == NULL) {
        fprintf(stderr, "vmseald: --data-dir is required\n");
        return usage(stderr);
    }
    return -1;
}

static int fail(const char *what)
{
    char msg[512];
    fprintf(stderr, "vmseald: %s: %s\n", what, err_format(msg, sizeof msg));
    return 1;
}

/* --- the data directory ---------------------------------------------------- */

/* One vmseald per data directory: two would run the same VMs' operations
 * and recoveries against each other. flock(2) goes with the process, so
 * a crash never leaves a stale lock; O_CLOEXEC keeps it out of the QEMUs
 * vmseald starts (they outlive it). The file keeps the holder's pid, for
 * the operator. Returns the descriptor (held for life) or -1. */
static int lock_data_dir(const char *data_dir)
{
    char path[VM_PATH_MAX], pid[32];
    if (!is_ok(vm_path(path, sizeof path, "%s/%s", data_dir, LOCK_FILE))) {
        fail("lock file path");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "vmseald: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            fprintf(stderr, "vmseald: another vmseald uses %s\n", data_dir);
        else
            fprintf(stderr, "vmseald: cannot lock %s: %s\n", path, strerror(e));
        close(fd);
        return -1;
    }
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        log_warn("cannot write the pid into the lock file", LOG_S("path", path));
    return fd;
}

/* Whether the socket's directory is the data directory itself. */
static bool socket_in_data_dir(const char *socket_path, const char *data_dir)
{
    char dir[PATH_MAX], real_dir[PATH_MAX], real_data[PATH_MAX];
    const char *slash = strrchr(socket_path, '/');
    size_t n = slash == NULL ? 1 : (size_t)(slash - socket_path);
    if (slash == socket_path)
        n = 1; /* "/x.sock": the root */
    if (n >= sizeof dir)
        return false;
    memcpy(dir, slash == NULL ? "." : socket_path, n);
    dir[n] = '\0';
    return realpath(dir, real_dir) != NULL && realpath(data_dir, real_data) != NULL &&
           strcmp(real_dir, real_data) == 0;
}

/* The certificate for the API, made if missing; prints its fingerprint
 * as `openssl x509 -fingerprint -sha256` does, for comparison. */
static int ensure_certificate(const char *data_dir, bool print)
{
    char fp[API_TLS_FINGERPRINT_SIZE], colons[3 * 32];
    if (!is_ok(api_tls_ensure(data_dir, fp)))
        return fail("the API's certificate");
    for (size_t i = 0; i < 32; i++)
        snprintf(colons + 3 * i, sizeof colons - 3 * i, "%c%c%s",
                 fp[2 * i] >= 'a' ? fp[2 * i] - 'a' + 'A' : fp[2 * i],
                 fp[2 * i + 1] >= 'a' ? fp[2 * i + 1] - 'a' + 'A' : fp[2 * i + 1],
                 i < 31 ? ":" : "");
    char path[VM_PATH_MAX];
    if (!is_ok(vm_path(path, sizeof path, "%s/%s/%s", data_dir, API_TLS_DIR, API_TLS_CERT)))
        return fail("certificate path");
    log_info("API certificate", LOG_S("path", path), LOG_S("sha256", fp));
    if (print)
        printf("certificate: %s\nsha256 Fingerprint=%s\n", path, colons);
    return 0;
}

/* `vmseald init`: the data directory, its database and tables, and the
 * API's certificate. Idempotent. */
static int run_init(const char *data_dir)
{
    struct store *st = NULL;
    struct auth *au = NULL;
    struct authz *az = NULL;
    int status = 1;

    if (!is_ok(file_mkdir(data_dir, 0700)))
        return fail("creating the data directory");
    int lock = lock_data_dir(data_dir);
    if (lock < 0)
        return 1;
    if (!is_ok(store_open(data_dir, &st)))
        status = fail("opening the database");
    else if (!is_ok(auth_open(st, &au)))
        status = fail("creating the users' tables");
    else if (!is_ok(authz_open(st, &az)))
        status = fail("creating the roles' tables");
    else
        status = ensure_certificate(data_dir, true);
    authz_close(&az);
    auth_close(&au);
    store_close(&st);
    close(lock);
    if (status == 0)
        printf("data directory: %s\n", data_dir);
    return status;
}

/* --- secret slots ------------------------------------------------------------ */

static int slot_take(struct daemon *dm)
{
    return dm->slot_nfree > 0 ? dm->slot_free[--dm->slot_nfree] : -1;
}

static uint8_t *slot_mem(struct daemon *dm, int slot)
{
    return dm->slot_mem + (size_t)slot * SLOT_SIZE;
}

static void slot_give(struct daemon *dm, int slot)
{
    if (slot < 0)
        return;
    secret_wipe(slot_mem(dm, slot), SLOT_SIZE);
    dm->slot_free[dm->slot_nfree++] = slot;
}

/* --- answers ------------------------------------------------------------------ */

/* The headers of every answer. */
static void add_headers(struct evhttp_request *req, int status, unsigned retry_after)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    /* Answers carry tokens, key ids, users: no cache keeps them. */
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (status == 401) /* RFC 6750 §3 */
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"vmseald\"");
    if (status == 429 && retry_after > 0) { /* RFC 6585 §4 */
        char n[16];
        snprintf(n, sizeof n, "%u", retry_after);
        evhttp_add_header(h, "Retry-After", n);
    }
}

static void send_text(struct evhttp_request *req, int status, const char *text,
                      unsigned retry_after)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    add_headers(req, status, retry_after);
    evhttp_send_reply(req, status, NULL, out);
    evbuffer_free(out);
}

/* An error answered on the loop, before any handler ran. */
static void send_error(struct evhttp_request *req, int status, const char *code,
                       const char *message, unsigned retry_after)
{
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    send_text(req, status, text != NULL ? text : "{}", retry_after);
    free(text);
}

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    if (j->body_owned)
        secret_free((void **)&j->body_text);
    slot_give(j->dm, j->slot);
    free(j->query);
    if (j->reply != NULL) {
        secret_wipe(j->reply, strlen(j->reply)); /* a login's answer holds a token */
        free(j->reply);
    }
    free(j);
}

/* Back on the event loop: send the answer. */
static void reply_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct job *j = arg;
    send_text(j->req, j->status, j->reply, j->retry_after);
    job_free(j);
}

/* --- the workers ------------------------------------------------------------------ */

/* Wipes every string of a request body before it is freed: a handler
 * wipes the fields it knows hold secrets; this catches the rest. */
static void wipe_strings(json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_string(v)) {
        secret_wipe((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item) wipe_strings(item);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) wipe_strings(item);
    }
}

static void job_run(struct job *j)
{
    json_t *body = NULL, *out = NULL;
    json_error_t jerr;
    if (j->body_len == 0) {
        body = json_object();
    } else {
        body = json_loadb(j->body_text, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
        secret_wipe(j->body_text, j->body_len);
        secret_wipe(&jerr, sizeof jerr); /* its text quotes the input */
    }
    if (body == NULL || !json_is_object(body)) {
        j->status = 400;
        out = json_pack("{s:{s:s, s:s}}", "error", "code", "invalid_request", "message",
                        "the request body must be a JSON object");
    } else {
        const struct api_transport tr = {
            .via = j->via,
            .peer = j->peer,
            .has_uid = j->has_uid,
            .uid = j->uid,
            .bearer = j->bearer,
        };
        api_handle(&j->dm->api, &tr, j->method, j->path, j->query, body, &j->status, &out,
                   &j->retry_after);
    }
    if (j->bearer != NULL)
        secret_wipe(j->bearer, strlen(j->bearer));
    if (body != NULL)
        wipe_strings(body);
    json_decref(body);
    j->reply = out != NULL ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (out != NULL)
        wipe_strings(out);
    json_decref(out);
    if (j->reply == NULL) {
        j->status = 500;
        j->reply = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    }
}

static void *worker_main(void *arg)
{
    struct daemon *dm = arg;
    for (;;) {
        pthread_mutex_lock(&dm->mu);
        while (dm->head == NULL && !dm->quit)
            pthread_cond_wait(&dm->cv, &dm->mu);
        struct job *j = dm->head;
        if (j != NULL) {
            dm->head = j->next;
            if (dm->head == NULL)
                dm->tail = NULL;
        }
        pthread_mutex_unlock(&dm->mu);
        if (j == NULL)
            return NULL; /* quitting, nothing left */
        job_run(j);
        struct timeval now = {0, 0};
        if (j->reply == NULL || event_base_once(dm->base, -1, EV_TIMEOUT, reply_cb, j, &now) != 0)
            abort(); /* the loop is gone: nothing sane is left to do */
        /* j belongs to the loop from here. */
        atomic_fetch_sub(&dm->jobs, 1);
    }
}

static void job_queue(struct daemon *dm, struct job *j)
{
    atomic_fetch_add(&dm->jobs, 1);
    pthread_mutex_lock(&dm->mu);
    j->next = NULL;
    if (dm->tail != NULL)
        dm->tail->next = j;
    else
        dm->head = j;
    dm->tail = j;
    pthread_cond_signal(&dm->cv);
    pthread_mutex_unlock(&dm->mu);
}

/* --- requests, on the loop --------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

/* Who is calling, as the transport sees it. */
static void job_peer(struct job *j, const struct listener *l, struct evhttp_connection *conn)
{
    if (!l->tls) {
        /* SO_PEERCRED (unix(7)): the credentials of the process that
         * connected, taken by the kernel; the API maps the uid to a user. */
        struct ucred cred;
        socklen_t len = sizeof cred;
        struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
        evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
        j->has_uid = fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                     len == sizeof cred;
        j->uid = j->has_uid ? cred.uid : (uid_t)-1;
        if (j->has_uid)
            snprintf(j->peer, sizeof j->peer, "uid=%u", (unsigned)cred.uid);
        else
            snprintf(j->peer, sizeof j->peer, "uid=?");
        return;
    }
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(conn, &addr, &port);
    if (addr == NULL)
        snprintf(j->peer, sizeof j->peer, "?");
    else if (strchr(addr, ':') != NULL)
        snprintf(j->peer, sizeof j->peer, "[%.*s]:%u", INET6_ADDRSTRLEN, addr, (unsigned)port);
    else
        snprintf(j->peer, sizeof j->peer, "%.*s:%u", INET6_ADDRSTRLEN, addr, (unsigned)port);
}

/* The token of "Authorization: Bearer TOKEN" (RFC 6750 §2.1; the scheme
 * is case-insensitive, RFC 7235 §2.1) into the job's slot; NULL for no
 * header or another scheme. libevent's copy of the header is wiped. A
 * value too long to be a token is passed as "", which the API refuses. */
static void job_bearer(struct job *j, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    char *value = (char *)evhttp_find_header(in, "Authorization");
    j->bearer = NULL;
    if (value == NULL)
        return;
    size_t len = strlen(value);
    /* A Bearer header without a token is still a claim to use one: passed
     * as "", it is refused, never taken for no header at all (which on the
     * socket would mean "authenticate me by my uid"). */
    if (len >= 6 && strncasecmp(value, "Bearer", 6) == 0 &&
        (value[6] == '\0' || value[6] == ' ' || value[6] == '\t')) {
        const char *t = value + 6;
        while (*t == ' ' || *t == '\t')
            t++;
        size_t n = strlen(t);
        while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        j->bearer = (char *)slot_mem(j->dm, j->slot);
        if (n < SLOT_BEARER_MAX) {
            memcpy(j->bearer, t, n);
            j->bearer[n] = '\0';
        } else {
            j->bearer[0] = '\0';
        }
    }
    secret_wipe(value, len);
}

/* The body, copied into secret memory; libevent's copy is wiped. */
static bool job_body(struct job *j, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return true;
    if (len <= SLOT_SIZE - SLOT_BEARER_MAX) {
        j->body_text = (char *)slot_mem(j->dm, j->slot) + SLOT_BEARER_MAX;
    } else if (is_ok(secret_alloc(len, (void **)&j->body_text))) {
        j->body_owned = true;
    } else {
        return false;
    }
    unsigned char *flat = evbuffer_pullup(in, (ev_ssize_t)len);
    if (flat == NULL)
        return false;
    memcpy(j->body_text, flat, len);
    secret_wipe(flat, len);
    evbuffer_drain(in, len);
    j->body_len = len;
    return true;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct listener *l = arg;
    struct daemon *dm = l->dm;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;

    if (l->tls && (bev == NULL || bufferevent_openssl_get_ssl(bev) == NULL)) {
        /* tls_bevcb could not make a TLS connection (out of memory) and
         * libevent fell back to a plain one: answer nothing in clear. The
         * socket is shut first, so the error below goes nowhere and the
         * connection is freed. */
        if (bev != NULL && bufferevent_getfd(bev) >= 0)
            (void)shutdown(bufferevent_getfd(bev), SHUT_RDWR);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (atomic_load(&dm->stopping)) {
        send_error(req, 503, "stopping", "vmseald is stopping", 0);
        return;
    }
    int slot = slot_take(dm);
    if (slot < 0) {
        send_error(req, 503, "busy",
                   "vmseald is answering as many requests as it can: try again shortly", 0);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        slot_give(dm, slot);
        send_error(req, 500, "internal", "out of memory", 0);
        return;
    }
    j->dm = dm;
    j->req = req;
    j->via = l->via;
    j->slot = slot;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    if (path == NULL || strlen(path) >= sizeof j->path ||
        (query != NULL && strlen(query) > REQ_QUERY_MAX)) {
        job_free(j);
        send_error(req, 414, "invalid_request", "the URI is too long", 0);
        return;
    }
    memcpy(j->path, path, strlen(path) + 1);
    if (query != NULL && (j->query = strdup(query)) == NULL) {
        job_free(j);
        send_error(req, 500, "internal", "out of memory", 0);
        return;
    }
    snprintf(j->method, sizeof j->method, "%s", method_name(evhttp_request_get_command(req)));
    job_peer(j, l, conn);
    job_bearer(j, req);
    if (!job_body(j, req)) {
        job_free(j);
        send_error(req, 500, "internal", "out of memory", 0);
        return;
    }
    job_queue(dm, j);
}

/* --- listeners ------------------------------------------------------------------------- */

/* Each HTTPS connection: a TLS server bufferevent; evhttp sets its socket.
 * libevent makes a plain bufferevent when this returns NULL (request_cb
 * refuses to serve on it). */
static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct daemon *dm = arg;
    SSL *ssl = SSL_new(dm->tls);
    if (ssl == NULL) {
        ERR_clear_error();
        log_error("cannot make a TLS connection: out of memory");
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        log_error("cannot make a TLS connection: out of memory");
        return NULL;
    }
    /* Clients that close without close_notify are common (and HTTP frames
     * its messages): not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static struct evhttp *http_new(struct daemon *dm, struct listener *l)
{
    struct evhttp *http = evhttp_new(dm->base);
    if (http == NULL)
        return NULL;
    evhttp_set_max_body_size(http, MAX_BODY);
    evhttp_set_max_headers_size(http, MAX_HEADERS);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(http, request_cb, l);
    evhttp_set_timeout(http, HTTP_TIMEOUT_SECONDS);
    return http;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "vmseald: socket path too long: %s\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* A stale socket from a previous run: connectable means someone serves
     * (another vmseald with another data directory and this --socket). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        fprintf(stderr, "vmseald: another vmseald serves %s\n", path);
        close(fd);
        return -1;
    }
    (void)unlink(path);
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    /* Every call is authenticated (api.h): anyone may connect, and the
     * kernel tells us who did (SO_PEERCRED). */
    if (rc != 0 || chmod(path, 0666) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "vmseald: cannot listen on %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* "HOST:PORT", "[V6]:PORT" -> host (brackets off) and port 1-65535. */
static bool parse_listen(const char *spec, char *host, size_t host_size, ev_uint16_t *port)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec)
        return false;
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || errno != 0 || p < 1 || p > 65535)
        return false;
    const char *h = spec;
    size_t n = (size_t)(colon - spec);
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return false;
        h++;
        n -= 2;
    } else if (memchr(h, ':', n) != NULL) {
        return false; /* an IPv6 address needs its brackets */
    }
    if (n == 0 || n >= host_size)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (ev_uint16_t)p;
    return true;
}

static bool check_listen(const char *spec)
{
    char host[256];
    ev_uint16_t port;
    if (parse_listen(spec, host, sizeof host, &port))
        return true;
    fprintf(stderr, "vmseald: --listen-https %s is not HOST:PORT (e.g. 127.0.0.1:8443, [::]:8443)\n",
            spec);
    return false;
}

static int listen_https(struct daemon *dm, const char *spec)
{
    char host[256];
    ev_uint16_t port;
    if (!parse_listen(spec, host, sizeof host, &port))
        return -1; /* check_listen said why, at start */
    dm->on_tls = (struct listener){dm, "https", true};
    dm->http_tls = http_new(dm, &dm->on_tls);
    if (dm->http_tls == NULL)
        return -1;
    evhttp_set_bevcb(dm->http_tls, tls_bevcb, dm);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(dm->http_tls, host, port);
    if (bound == NULL) {
        fprintf(stderr, "vmseald: cannot listen on %s: %s\n", spec, strerror(errno));
        return -1;
    }
    /* Small answers on long-lived connections: without TCP_NODELAY, a TLS
     * record split over two segments waits for the client's delayed ACK
     * (40 ms on Linux). Accepted sockets inherit it from the listener. */
    int one = 1;
    (void)setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one,
                     sizeof one);
    return 0;
}

/* --- running ------------------------------------------------------------------------------ */

static void *tick_main(void *arg)
{
    struct daemon *dm = arg;
    while (!atomic_load(&dm->stopping)) {
        for (int i = 0; i < TICK_SECONDS * 10 && !atomic_load(&dm->stopping); i++)
            usleep(100000);
        if (!atomic_load(&dm->stopping))
            vm_host_tick(dm->api.host);
    }
    return NULL;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *dm = arg;
    log_info("stopping", LOG_I("signal", (long)sig));
    atomic_store(&dm->stopping, 1);
    event_base_loopbreak(dm->base);
}

/* As many descriptors as the hard limit allows: each HTTPS client holds
 * one, and so does each running VM's QEMU monitor. */
static void raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &r);
    }
}

static int workers_start(struct daemon *dm)
{
    pthread_mutex_init(&dm->mu, NULL);
    pthread_cond_init(&dm->cv, NULL);
    dm->pool_ready = true;
    if (!is_ok(secret_alloc((size_t)API_WORKERS * SLOT_SIZE, (void **)&dm->slot_mem)))
        return fail("secret memory for requests");
    for (int i = 0; i < API_WORKERS; i++)
        dm->slot_free[i] = API_WORKERS - 1 - i;
    dm->slot_nfree = API_WORKERS;
    for (; dm->nworkers < API_WORKERS; dm->nworkers++) {
        if (pthread_create(&dm->workers[dm->nworkers], NULL, worker_main, dm) != 0) {
            fprintf(stderr, "vmseald: cannot start request threads\n");
            return 1;
        }
    }
    return 0;
}

static void workers_stop(struct daemon *dm)
{
    if (!dm->pool_ready)
        return;
    pthread_mutex_lock(&dm->mu);
    dm->quit = true;
    pthread_cond_broadcast(&dm->cv);
    pthread_mutex_unlock(&dm->mu);
    for (unsigned i = 0; i < dm->nworkers; i++)
        pthread_join(dm->workers[i], NULL);
    dm->nworkers = 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    bool init = false;
    char sock[VM_PATH_MAX];
    struct daemon dm = {0};
    struct keyprov *kp = NULL;
    struct vm_host *host = NULL;
    struct store *st = NULL;
    struct auth *au = NULL;
    struct authz *az = NULL;
    struct audit *audit = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    pthread_t tick;
    bool ticking = false, tasks_ready = false;
    int status = 1, lock = -1, fd = -1;
    sigset_t stop_signals, saved_mask;

    int rc = parse_args(argc, argv, &o, &init);
    if (rc >= 0)
        return rc;
    const char *data_dir = o.value[OPT_DATA_DIR], *https = o.value[OPT_LISTEN_HTTPS];
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    if (!is_ok(secret_harden_process()))
        return fail("hardening the process");
    if (init)
        return run_init(data_dir);
    if (https != NULL && !check_listen(https))
        return 2;

    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "vmseald: libevent without thread support\n");
        return 1;
    }
    raise_fd_limit();
    if (!is_ok(vm_path(sock, sizeof sock, "%s/vmseald.sock", data_dir)))
        return fail("socket path");
    const char *socket_path = o.value[OPT_SOCKET] != NULL ? o.value[OPT_SOCKET] : sock;
    if (!is_ok(file_mkdir(data_dir, 0700)))
        return fail("creating the data directory");
    lock = lock_data_dir(data_dir);
    if (lock < 0)
        return 1;
    /* The socket is for everyone (every call is authenticated): its
     * directory must let them reach it, and list nothing. */
    if (chmod(data_dir, socket_in_data_dir(socket_path, data_dir) ? 0711 : 0700) != 0) {
        fprintf(stderr, "vmseald: cannot set the mode of %s: %s\n", data_dir, strerror(errno));
        goto out;
    }
    if (ensure_certificate(data_dir, false) != 0)
        goto out;
    if (https != NULL && !is_ok(api_tls_context(data_dir, &dm.tls))) {
        status = fail("the HTTPS listener's TLS settings");
        goto out;
    }

    /* SIGTERM and SIGINT wait (blocked) until their handlers are in place:
     * a client can connect as soon as listen(2) returns, and recovery at
     * start may take a while. Threads made from here on inherit the mask
     * and never take them; QEMUs get a clean mask (proc.c). */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &saved_mask);

    if (!is_ok(keyprov_open(data_dir, &kp))) {
        status = fail("opening the key providers");
        goto out;
    }
    struct vm_host_config cfg = {
        .data_dir = data_dir, .runtime_dir = o.value[OPT_RUNTIME_DIR], .accel = o.value[OPT_ACCEL]};
    if (!is_ok(vm_host_open(&cfg, kp, &host))) {
        status = fail("opening the host");
        goto out;
    }
    if (!is_ok(store_open(data_dir, &st))) {
        status = fail("opening the database");
        goto out;
    }
    if (!is_ok(auth_open(st, &au))) {
        status = fail("opening the users");
        goto out;
    }
    if (!is_ok(authz_open(st, &az))) {
        status = fail("opening the roles and permissions");
        goto out;
    }
    if (!is_ok(audit_open(data_dir, &audit))) {
        status = fail("opening the audit log");
        goto out;
    }
    if (!is_ok(tasks_init(st, host))) {
        status = fail("loading the tasks");
        goto out;
    }
    tasks_ready = true;
    dm.api = (struct api_ctx){.data_dir = data_dir,
                              .host = host,
                              .kp = kp,
                              .store = st,
                              .auth = au,
                              .authz = az,
                              .audit = audit};

    dm.base = event_base_new();
    if (dm.base == NULL) {
        fprintf(stderr, "vmseald: cannot create the event loop\n");
        goto out;
    }
    dm.on_unix = (struct listener){&dm, "socket", false};
    dm.http_unix = http_new(&dm, &dm.on_unix);
    if (dm.http_unix == NULL) {
        fprintf(stderr, "vmseald: cannot create the HTTP server\n");
        goto out;
    }
    if (workers_start(&dm) != 0)
        goto out;
    fd = listen_unix(socket_path);
    if (fd < 0)
        goto out;
    if (evhttp_accept_socket(dm.http_unix, fd) != 0) {
        fprintf(stderr, "vmseald: cannot serve the socket\n");
        close(fd);
        goto out;
    }
    if (https != NULL && listen_https(&dm, https) != 0)
        goto out;
    sigterm = evsignal_new(dm.base, SIGTERM, signal_cb, &dm);
    sigint = evsignal_new(dm.base, SIGINT, signal_cb, &dm);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 ||
        event_add(sigint, NULL) != 0) {
        fprintf(stderr, "vmseald: cannot handle signals\n");
        goto out;
    }
    ticking = pthread_create(&tick, NULL, tick_main, &dm) == 0;
    log_info("vmseald serving", LOG_S("socket", socket_path), LOG_S("data_dir", data_dir),
             LOG_S("https", https != NULL ? https : "off"));
    printf("vmseald: serving on %s\n", socket_path);
    if (https != NULL)
        printf("vmseald: serving https on %s\n", https);
    fflush(stdout);
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    event_base_dispatch(dm.base);

    atomic_store(&dm.stopping, 1);
    if (ticking)
        pthread_join(tick, NULL);
    ticking = false;
    /* Operations run on threads of their own that use the host, the key
     * providers and the loop: stop them (the bulk engine rolls back) and
     * wait, before any of it is freed. */
    for (int waited = 0; atomic_load(&dm.jobs) > 0 && waited < 5000; waited += 50)
        usleep(50000); /* requests first: one may still start a task */
    size_t left = tasks_shutdown(STOP_WAIT_MS);
    if (left > 0 || atomic_load(&dm.jobs) > 0) {
        log_warn("stopping with operations still running: the next start finishes or rolls "
                 "them back",
                 LOG_I("tasks", (long)left), LOG_I("requests", (long)atomic_load(&dm.jobs)));
        (void)unlink(socket_path);
        _exit(0); /* not exit(): no atexit handler may free what they use */
    }
    tasks_ready = false;
    event_base_loop(dm.base, EVLOOP_NONBLOCK); /* the answers of the last requests */
    (void)unlink(socket_path);
    status = 0;
out:
    /* Reverse order of opening. Nothing runs on the workers any more. */
    atomic_store(&dm.stopping, 1);
    if (ticking)
        pthread_join(tick, NULL);
    if (tasks_ready && tasks_shutdown(STOP_WAIT_MS) > 0)
        _exit(status); /* a task still uses the host */
    workers_stop(&dm);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    if (dm.http_tls != NULL)
        evhttp_free(dm.http_tls);
    if (dm.http_unix != NULL)
        evhttp_free(dm.http_unix);
    SSL_CTX_free(dm.tls);
    if (dm.base != NULL)
        event_base_free(dm.base);
    secret_free((void **)&dm.slot_mem);
    if (dm.pool_ready) {
        pthread_mutex_destroy(&dm.mu);
        pthread_cond_destroy(&dm.cv);
    }
    audit_close(&audit);
    authz_close(&az);
    auth_close(&au);
    store_close(&st);
    vm_host_close(&host);
    keyprov_close(&kp);
    if (fd >= 0 && status != 0)
        (void)unlink(socket_path); /* ours: bound by this run */
    if (lock >= 0)
        close(lock);
    return status;
}
