/*
 * main.c - vmseald, the management server of one host.
 *
 *   vmseald --data-dir DIR [--socket PATH] [--runtime-dir DIR] [--accel auto|kvm|tcg]
 *
 * Serves the API of docs/api.md on DIR/vmseald.sock (HTTP/1.1 + JSON over a
 * Unix socket, mode 0600: root only until users and privileges come), logs
 * to stderr, stops cleanly on SIGTERM or SIGINT. Running VMs keep running
 * across a restart; interrupted operations are finished or rolled back at
 * start (src/vm/journal.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "server/api.h"
#include "server/tasks.h"
#include "vm/vmutil.h"

#define MAX_BODY (8u << 20)
#define TICK_SECONDS 2
#define STOP_WAIT_MS 60000 /* for operations to stop before vmseald exits */

struct daemon {
    struct event_base *base;
    struct evhttp *http;
    struct api_ctx api;
    volatile int stopping;
    atomic_int jobs; /* request threads running: they use the host and the loop */
};

struct job {
    struct daemon *dm;
    struct evhttp_request *req;
    char method[8];
    char path[512];
    char *body_text; /* secret memory: it may hold a passphrase or a key */
    size_t body_len;
    int status;
    char *reply;
};

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    secret_free((void **)&j->body_text);
    if (j->reply != NULL) {
        secret_wipe(j->reply, strlen(j->reply));
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
    struct evbuffer *out = evbuffer_new();
    if (out != NULL) {
        evbuffer_add(out, j->reply, strlen(j->reply));
        evbuffer_add(out, "\n", 1);
        evhttp_add_header(evhttp_request_get_output_headers(j->req), "Content-Type",
                          "application/json");
        evhttp_send_reply(j->req, j->status, NULL, out);
        evbuffer_free(out);
    } else {
        evhttp_send_error(j->req, 500, NULL);
    }
    job_free(j);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    json_t *body = NULL, *out = NULL;
    json_error_t jerr;
    if (j->body_len == 0) {
        body = json_object();
    } else {
        body = json_loadb(j->body_text, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
        secret_wipe(j->body_text, j->body_len);
    }
    if (body == NULL || !json_is_object(body)) {
        j->status = 400;
        out = json_pack("{s:{s:s, s:s}}", "error", "code", "invalid_request", "message",
                        "the request body must be a JSON object");
    } else {
        api_handle(&j->dm->api, j->method, j->path, body, &j->status, &out);
    }
    json_decref(body);
    j->reply = out != NULL ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(out);
    if (j->reply == NULL) {
        j->status = 500;
        j->reply = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    }
    struct timeval now = {0, 0};
    struct daemon *dm = j->dm; /* j belongs to the loop from here */
    if (j->reply == NULL || event_base_once(dm->base, -1, EV_TIMEOUT, reply_cb, j, &now) != 0)
        abort(); /* the loop is gone: nothing sane is left to do */
    atomic_fetch_sub(&dm->jobs, 1);
    return NULL;
}

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
    default:
        return "OTHER";
    }
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct daemon *dm = arg;
    struct job *j = calloc(1, sizeof *j);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (j == NULL || path == NULL || strlen(path) >= sizeof j->path || len > MAX_BODY) {
        free(j);
        evhttp_send_error(req, 400, NULL);
        return;
    }
    j->dm = dm;
    j->req = req;
    snprintf(j->method, sizeof j->method, "%s", method_name(evhttp_request_get_command(req)));
    memcpy(j->path, path, strlen(path) + 1);
    if (len > 0) {
        if (!is_ok(secret_alloc(len, (void **)&j->body_text))) {
            free(j);
            evhttp_send_error(req, 500, NULL);
            return;
        }
        /* Copy, then wipe libevent's copy: it may hold a passphrase. */
        unsigned char *flat = evbuffer_pullup(in, (ev_ssize_t)len);
        memcpy(j->body_text, flat, len);
        secret_wipe(flat, len);
        evbuffer_drain(in, len);
        j->body_len = len;
    }
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&dm->jobs, 1);
    if (pthread_create(&th, &attr, job_main, j) != 0) {
        atomic_fetch_sub(&dm->jobs, 1);
        job_free(j);
        evhttp_send_error(req, 503, NULL);
    }
    pthread_attr_destroy(&attr);
}

static void *tick_main(void *arg)
{
    struct daemon *dm = arg;
    while (!dm->stopping) {
        for (int i = 0; i < TICK_SECONDS * 10 && !dm->stopping; i++)
            usleep(100000);
        if (!dm->stopping)
            vm_host_tick(dm->api.host);
    }
    return NULL;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *dm = arg;
    log_info("stopping", LOG_I("signal", (long)sig));
    dm->stopping = 1;
    event_base_loopbreak(dm->base);
}

static int usage(FILE *f)
{
    fprintf(f, "usage: vmseald --data-dir DIR [--socket PATH] [--runtime-dir DIR]\n"
               "               [--accel auto|kvm|tcg]\n"
               "  serves vmseal's API on DIR/vmseald.sock (or PATH) until SIGTERM/SIGINT\n"
               "  --runtime-dir: a tmpfs for running VMs' state (default /dev/shm/vmseald-*)\n"
               "  --accel: QEMU accelerator; auto uses KVM where the CPU offers it\n");
    return f == stderr ? 2 : 0;
}

static int fail(const char *what)
{
    char msg[512];
    fprintf(stderr, "vmseald: %s: %s\n", what, err_format(msg, sizeof msg));
    return 1;
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
    /* A stale socket from a previous run: connectable means someone serves. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        fprintf(stderr, "vmseald: another vmseald serves %s\n", path);
        close(fd);
        return -1;
    }
    (void)unlink(path);
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "vmseald: cannot listen on %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *data_dir = NULL, *socket_path = NULL, *runtime_dir = NULL, *accel = NULL;
    char sock[VM_PATH_MAX];
    struct daemon dm = {0};
    struct keyprov *kp = NULL;
    struct vm_host *host = NULL;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--data-dir") == 0)
            slot = &data_dir;
        else if (strcmp(argv[i], "--socket") == 0)
            slot = &socket_path;
        else if (strcmp(argv[i], "--runtime-dir") == 0)
            slot = &runtime_dir;
        else if (strcmp(argv[i], "--accel") == 0)
            slot = &accel;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        if (slot == NULL || i + 1 >= argc) {
            fprintf(stderr, "vmseald: %s %s\n", argv[i],
                    slot == NULL ? "is not an option" : "needs a value");
            return usage(stderr);
        }
        *slot = argv[++i];
    }
    if (data_dir == NULL)
        return usage(stderr);

    umask(077);
    signal(SIGPIPE, SIG_IGN);
    if (!is_ok(secret_harden_process()))
        return fail("hardening the process");
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "vmseald: libevent without thread support\n");
        return 1;
    }
    if (!is_ok(vm_path(sock, sizeof sock, "%s/vmseald.sock",
                       data_dir)))
        return fail("socket path");
    if (socket_path == NULL)
        socket_path = sock;
    if (!is_ok(file_mkdir(data_dir, 0700)))
        return fail("creating the data directory");
    if (!is_ok(keyprov_open(data_dir, &kp)))
        return fail("opening the key providers");
    struct vm_host_config cfg = {.data_dir = data_dir, .runtime_dir = runtime_dir, .accel = accel};
    if (!is_ok(vm_host_open(&cfg, kp, &host))) {
        status = fail("opening the host");
        goto out;
    }
    dm.api.host = host;
    dm.api.kp = kp;
    dm.base = event_base_new();
    dm.http = dm.base != NULL ? evhttp_new(dm.base) : NULL;
    if (dm.http == NULL) {
        fprintf(stderr, "vmseald: cannot create the event loop\n");
        goto out;
    }
    evhttp_set_max_body_size(dm.http, MAX_BODY);
    evhttp_set_allowed_methods(dm.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(dm.http, request_cb, &dm);
    evhttp_set_timeout(dm.http, 60);
    int fd = listen_unix(socket_path);
    if (fd < 0)
        goto out;
    if (evhttp_accept_socket(dm.http, fd) != 0) {
        fprintf(stderr, "vmseald: cannot serve the socket\n");
        close(fd);
        goto out;
    }
    struct event *sigterm = evsignal_new(dm.base, SIGTERM, signal_cb, &dm);
    struct event *sigint = evsignal_new(dm.base, SIGINT, signal_cb, &dm);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    pthread_t tick;
    bool ticking = pthread_create(&tick, NULL, tick_main, &dm) == 0;
    log_info("vmseald serving", LOG_S("socket", socket_path), LOG_S("data_dir", data_dir));
    printf("vmseald: serving on %s\n", socket_path);
    fflush(stdout);
    event_base_dispatch(dm.base);
    dm.stopping = 1;
    if (ticking)
        pthread_join(tick, NULL);
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
    event_base_loop(dm.base, EVLOOP_NONBLOCK); /* the answers of the last requests */
    event_free(sigterm);
    event_free(sigint);
    (void)unlink(socket_path);
    status = 0;
out:
    if (dm.http != NULL)
        evhttp_free(dm.http);
    if (dm.base != NULL)
        event_base_free(dm.base);
    vm_host_close(&host);
    keyprov_close(&kp);
    return status;
}
