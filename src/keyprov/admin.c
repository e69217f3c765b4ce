/*
 * admin.c - key provider administration, as vCenter offers it: servers
 * added and removed, trust established both ways (the servers' certificate
 * fetched and pinned or their CA uploaded; our client certificate made
 * self-signed, from a CSR the KMS signs, or uploaded with its key), health
 * per server, and removal of a provider. See keyprov.h ("key provider
 * administration") for the contract and keyprov_internal.h for the locks.
 *
 * Every change is written to disk (atomically) before memory says so, and
 * closes the provider's connection so that the next use sees it. A crash
 * between two writes of one change leaves a provider that refuses to
 * connect (a key that is not its certificate's, a trust anchor the mode
 * does not accept), never one that trusts more than it was told to.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"
#include "kmip/kmip_defs.h"
#include "kms/pki_gen.h"

/* Health checks run at once, this many threads at a time (a host has a few
 * providers of a few servers: one wave), each with a small stack. */
#define KEYPROV_HEALTH_THREADS 128
#define KEYPROV_HEALTH_STACK (256u << 10)
/* The client certificate's CN when none is given: "vmseal-" and the host. */
#define KEYPROV_CN_PREFIX "vmseal-"
#define KEYPROV_CN_MAX 64
/* Certificates a server may send: more is not a chain, it is a flood. */
#define KEYPROV_PEER_CHAIN_MAX 10

static const char *const keyprov_health_names[] = {
    [KEYPROV_HEALTH_OK] = "ok",
    [KEYPROV_HEALTH_UNREACHABLE] = "unreachable",
    [KEYPROV_HEALTH_TLS_ERROR] = "tls_error",
    [KEYPROV_HEALTH_NOT_CONFIGURED] = "not_configured",
    [KEYPROV_HEALTH_ERROR] = "error",
};

const char *keyprov_health_status_name(enum keyprov_health_status status)
{
    if ((size_t)status >= sizeof(keyprov_health_names) / sizeof(keyprov_health_names[0]))
        return "error";
    return keyprov_health_names[status];
}

/* --- small pieces --- */

static void keyprov_copy_summary(const struct pki_cert_summary *s, struct keyprov_cert_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->subject, sizeof(out->subject), "%s", s->subject);
    snprintf(out->issuer, sizeof(out->issuer), "%s", s->issuer);
    snprintf(out->not_before, sizeof(out->not_before), "%s", s->not_before);
    snprintf(out->not_after, sizeof(out->not_after), "%s", s->not_after);
    snprintf(out->sha256, sizeof(out->sha256), "%s", s->sha256);
}

/* The standard provider called name. */
static vs_result keyprov_find_standard(struct keyprov *kp, const char *name,
                                       struct keyprov_provider **out)
{
    GUARD(keyprov_find(kp, name, out));
    if ((*out)->type != KEYPROV_STANDARD) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s is a native key provider: it has no key servers and no "
                          "certificates",
                          name);
    }
    return OK_RESULT;
}

/* A text field from a caller: at most KEYPROV_PEM_MAX bytes. */
static vs_result keyprov_text_len(const char *what, const char *text, size_t *len)
{
    *len = strnlen(text, KEYPROV_PEM_MAX + 1);
    if (*len > KEYPROV_PEM_MAX) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("the %s is larger than %u bytes", what, KEYPROV_PEM_MAX);
    }
    return OK_RESULT;
}

vs_result keyprov_provider_files_clear(struct keyprov *kp, const char *name)
{
    /* destroyed.json stays: restoring the native provider's backup later
     * must still refuse the keys destroyed here (keyprov_restore). */
    static const char *const files[] = {
        KEYPROV_CA_FILE,  KEYPROV_CERT_FILE,    KEYPROV_KEY_FILE,
        KEYPROV_CSR_FILE, KEYPROV_CSR_KEY_FILE, KEYPROV_ROOT_FILE,
    };
    char dir[4096];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        GUARD(keyprov_remove_file(kp, name, files[i]));
    GUARD(keyprov_path(kp, name, NULL, dir, sizeof(dir)));
    if (rmdir(dir) == 0 || errno == ENOENT) {
        char parent[4096];
        GUARD(keyprov_path(kp, NULL, "providers", parent, sizeof(parent)));
        return file_fsync_dir(parent);
    }
    /* Not empty (destroyed.json): make the removals durable. */
    return file_fsync_dir(dir);
}

static vs_result keyprov_provider_dir(struct keyprov *kp, const char *name)
{
    char dir[4096];

    GUARD(keyprov_path(kp, name, NULL, dir, sizeof(dir)));
    return file_mkdir(dir, 0700);
}

/* Writes a public PEM file of provider name (0644). */
static vs_result keyprov_write_public(struct keyprov *kp, const char *name, const char *file,
                                      const struct buf *pem)
{
    char path[4096];

    GUARD(keyprov_path(kp, name, file, path, sizeof(path)));
    return file_write_atomic(path, buf_data(pem), buf_len(pem), 0644);
}

/* --- adding and removing providers and servers --- */

vs_result keyprov_add_standard_servers(struct keyprov *kp, const char *name,
                                       const char *const *servers, size_t server_count)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p = NULL;

    GUARD(keyprov_check_name(name));
    GUARD(keyprov_check_servers(servers, server_count));
    GUARD(keyprov_provider_new(&p));
    p->type = KEYPROV_STANDARD;
    p->trust = KEYPROV_TRUST_NONE;
    snprintf(p->name, sizeof(p->name), "%s", name);
    for (size_t i = 0; i < server_count; i++)
        snprintf(p->servers[i], sizeof(p->servers[i]), "%s", servers[i]);
    p->server_count = server_count;
    pthread_mutex_lock(&kp->lock);
    rc = keyprov_name_free(kp, name);
    if (is_ok(rc))
        rc = keyprov_provider_files_clear(kp, name); /* a removed namesake's leftovers */
    if (is_ok(rc))
        rc = keyprov_provider_dir(kp, name);
    if (is_ok(rc))
        rc = keyprov_commit_new(kp, &p);
    pthread_mutex_unlock(&kp->lock);
    keyprov_provider_free(&p);
    return rc;
}

vs_result keyprov_remove(struct keyprov *kp, const char *name)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p, **grown;
    struct keyprov_sigpipe sp;
    size_t at = 0;
    bool was_default;

    GUARD(keyprov_find(kp, name, &p));
    /* Not keyprov_lock_usable: a broken provider can be removed too. */
    pthread_mutex_lock(&p->lock);
    keyprov_sigpipe_block(&sp);
    pthread_mutex_lock(&kp->lock);
    if (p->removed) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no key provider named %s", name);
        goto unlock;
    }
    was_default = strcmp(kp->default_name, p->name) == 0;
    if (was_default && kp->provider_count > 1) {
        rc = RAISE(ERR_PERM);
        err_detail("key provider %s is the default: make another provider the default first", name);
        goto unlock;
    }
    /* Room on the removed list first: past this point nothing can fail
     * but the registry write, which is undone. */
    grown = realloc(kp->removed, (kp->removed_count + 1) * sizeof(*kp->removed));
    if (grown == NULL) {
        rc = RAISE(ERR_NOMEM);
        goto unlock;
    }
    kp->removed = grown;
    while (kp->providers[at] != p)
        at++;
    memmove(&kp->providers[at], &kp->providers[at + 1],
            (kp->provider_count - at - 1) * sizeof(*kp->providers));
    kp->provider_count--;
    rc = keyprov_registry_save(kp, NULL, was_default ? "" : kp->default_name);
    if (!is_ok(rc)) {
        memmove(&kp->providers[at + 1], &kp->providers[at],
                (kp->provider_count - at) * sizeof(*kp->providers));
        kp->providers[at] = p;
        kp->provider_count++;
        goto unlock;
    }
    if (was_default)
        kp->default_name[0] = '\0';
    kp->removed[kp->removed_count++] = p;
    p->removed = true;
    /* Gone from the registry: what is left are its secrets and files. */
    kmip_client_free(&p->client);
    void *root = p->root;
    secret_free(&root);
    p->root = NULL;
    keyprov_cache_evict_provider(kp->cache, p->name);
    if (!is_ok(keyprov_provider_files_clear(kp, p->name))) {
        log_warn("key provider removed, but some of its files were not", LOG_S("provider", name),
                 LOG_ERR());
        err_clear();
    }
unlock:
    pthread_mutex_unlock(&kp->lock);
    keyprov_sigpipe_restore(&sp);
    pthread_mutex_unlock(&p->lock);
    if (is_ok(rc))
        log_info("key provider removed", LOG_S("provider", name));
    return rc;
}

vs_result keyprov_server_add(struct keyprov *kp, const char *name, const char *server)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;

    GUARD(keyprov_check_server(server));
    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(keyprov_lock_usable(p));
    pthread_mutex_lock(&kp->lock);
    for (size_t i = 0; i < p->server_count && is_ok(rc); i++) {
        if (keyprov_server_same(p->servers[i], server)) {
            rc = RAISE(ERR_EXISTS);
            err_detail("key provider %s has server %s already", name, p->servers[i]);
        }
    }
    if (is_ok(rc) && p->server_count == KEYPROV_MAX_SERVERS) {
        rc = RAISE(ERR_TOO_LARGE);
        err_detail("a standard key provider has at most %d servers", KEYPROV_MAX_SERVERS);
    }
    if (is_ok(rc)) {
        snprintf(p->servers[p->server_count++], KEYPROV_SERVER_MAX, "%s", server);
        rc = keyprov_registry_save(kp, NULL, kp->default_name);
        if (!is_ok(rc))
            p->servers[--p->server_count][0] = '\0';
    }
    pthread_mutex_unlock(&kp->lock);
    if (is_ok(rc))
        kmip_client_free(&p->client); /* SIGPIPE is blocked: see keyprov_lock_usable */
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("key server added", LOG_S("provider", name), LOG_S("server", server));
    return rc;
}

vs_result keyprov_server_remove(struct keyprov *kp, const char *name, const char *server)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    char saved[KEYPROV_MAX_SERVERS][KEYPROV_SERVER_MAX];
    char removed[KEYPROV_SERVER_MAX] = "";
    size_t at;

    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(keyprov_lock_usable(p));
    pthread_mutex_lock(&kp->lock);
    for (at = 0; at < p->server_count && !keyprov_server_same(p->servers[at], server); at++)
        ;
    if (at == p->server_count) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("key provider %s has no server %.255s", name, server);
    } else if (p->server_count == 1) {
        rc = RAISE(ERR_PERM);
        err_detail("%s is the last server of key provider %s: add another first, or remove "
                   "the provider",
                   p->servers[0], name);
    } else {
        memcpy(saved, p->servers, sizeof(saved));
        snprintf(removed, sizeof(removed), "%s", p->servers[at]);
        memmove(&p->servers[at], &p->servers[at + 1],
                (p->server_count - at - 1) * sizeof(p->servers[0]));
        p->servers[--p->server_count][0] = '\0';
        rc = keyprov_registry_save(kp, NULL, kp->default_name);
        if (!is_ok(rc)) {
            memcpy(p->servers, saved, sizeof(saved));
            p->server_count++;
        }
    }
    pthread_mutex_unlock(&kp->lock);
    if (is_ok(rc))
        kmip_client_free(&p->client);
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("key server removed", LOG_S("provider", name), LOG_S("server", removed));
    return rc;
}

/* --- a server's certificate, unverified --- */

/* "host:port" or "[v6]:port" into host (no brackets) and port. */
static vs_result keyprov_host_port(const char *server, char *host, size_t host_size, char *port,
                                   size_t port_size)
{
    const char *colon = strrchr(server, ':');
    const char *h = server;
    size_t n;

    ENSURE(colon != NULL, ERR_INVALID_ARG);
    n = (size_t)(colon - server);
    if (n >= 2 && server[0] == '[' && server[n - 1] == ']') {
        h++;
        n -= 2;
    }
    ENSURE(n > 0 && n < host_size && strlen(colon + 1) < port_size, ERR_INVALID_ARG);
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return OK_RESULT;
}

/* A TCP connection within timeout_ms, then blocking with I/O timeouts of
 * timeout_ms. -1 with errno set when none could be made. */
static int keyprov_tcp_connect(const char *host, const char *port, int timeout_ms)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int fd = -1, err = EHOSTUNREACH;

    if (getaddrinfo(host, port, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            socklen_t len = sizeof(err);
            err = errno;
            if (err == EINPROGRESS) {
                int ready = poll(&pfd, 1, timeout_ms);
                err = ready == 0 ? ETIMEDOUT : ready < 0 ? errno : 0;
                if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                    err = errno;
            }
            if (err != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* The chain the server sent, captured while OpenSSL verifies it: the
 * callback accepts whatever it is (the operator decides, from the
 * fingerprint), and nothing is sent on this connection but the handshake. */
struct keyprov_capture {
    STACK_OF(X509) *chain;
};

static int keyprov_capture_chain(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct keyprov_capture *cap = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(store);

    (void)preverify_ok;
    if (cap != NULL && cap->chain == NULL && sent != NULL)
        cap->chain = X509_chain_up_ref(sent);
    return 1;
}

/* The chain as PEM into out, with the leaf's summary. */
static vs_result keyprov_chain_out(STACK_OF(X509) *chain, struct keyprov_server_cert *out)
{
    struct pki_cert_summary s;
    int n = sk_X509_num(chain);

    if (n <= 0) {
        RAISE(ERR_PROVIDER);
        return err_detail("%s sent no certificate", out->address);
    }
    if (n > KEYPROV_PEER_CHAIN_MAX)
        n = KEYPROV_PEER_CHAIN_MAX;
    GUARD(buf_alloc(&out->chain_pem, 4096, KEYPROV_PEM_MAX * 2));
    for (int i = 0; i < n; i++)
        GUARD(pki_cert_to_pem(sk_X509_value(chain, i), &out->chain_pem));
    GUARD(pki_cert_summary(sk_X509_value(chain, 0), &s));
    keyprov_copy_summary(&s, &out->leaf);
    out->chain_count = (size_t)n;
    return OK_RESULT;
}

static vs_result keyprov_fetch_cert_from(const char *server, struct keyprov_server_cert *out)
{
    vs_result rc = OK_RESULT;
    char host[KEYPROV_SERVER_MAX], port[16];
    unsigned char addr[sizeof(struct in6_addr)];
    struct keyprov_capture cap = {0};
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1;
    char why[200] = "";

    GUARD(keyprov_host_port(server, host, sizeof(host), port, sizeof(port)));
    fd = keyprov_tcp_connect(host, port, KEYPROV_FETCH_TIMEOUT_MS);
    if (fd < 0) {
        rc = RAISE(ERR_PROVIDER);
        err_detail("cannot connect to %s: %s", server, strerror(errno));
        goto out;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    ENSURE_OUT(ctx != NULL, ERR_NOMEM);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keyprov_capture_chain);
    ssl = SSL_new(ctx);
    ENSURE_OUT(ssl != NULL && SSL_set_fd(ssl, fd) == 1, ERR_NOMEM);
    SSL_set_app_data(ssl, &cap);
    /* RFC 6066 §3: no IP literal in server_name. */
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        ENSURE_OUT(SSL_set_tlsext_host_name(ssl, host) == 1, ERR_INVALID_ARG);
    /* The handshake may fail after the certificate came: a server that
     * requires a client certificate ends it when we send none (TLS 1.2). */
    if (SSL_connect(ssl) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (e != 0)
            ERR_error_string_n(e, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "TLS handshake failed");
    }
    ERR_clear_error();
    if (cap.chain == NULL) {
        STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
        if (sent != NULL)
            cap.chain = X509_chain_up_ref(sent);
    }
    if (cap.chain == NULL || sk_X509_num(cap.chain) == 0) {
        rc = RAISE(ERR_PROVIDER);
        err_detail("%s presented no certificate (%s)", server, why[0] ? why : "no TLS");
        goto out;
    }
    GUARD_OUT(keyprov_chain_out(cap.chain, out));
out:
    if (ssl != NULL) {
        SSL_set_quiet_shutdown(ssl, 1); /* nothing to say: no close_notify */
        SSL_free(ssl);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    sk_X509_pop_free(cap.chain, X509_free);
    if (fd >= 0)
        close(fd);
    return rc;
}

vs_result keyprov_fetch_server_cert(struct keyprov *kp, const char *name, const char *server,
                                    struct keyprov_server_cert *out)
{
    struct keyprov_provider *p;
    struct keyprov_sigpipe sp;
    vs_result rc = OK_RESULT;

    memset(out, 0, sizeof(*out));
    GUARD(keyprov_find_standard(kp, name, &p));
    /* One of the provider's servers only: this is no way to make vmseald
     * connect anywhere else. */
    pthread_mutex_lock(&kp->lock);
    if (server == NULL) {
        snprintf(out->address, sizeof(out->address), "%s", p->servers[0]);
    } else {
        for (size_t i = 0; i < p->server_count && out->address[0] == '\0'; i++)
            if (keyprov_server_same(p->servers[i], server))
                snprintf(out->address, sizeof(out->address), "%s", p->servers[i]);
        if (out->address[0] == '\0') {
            rc = RAISE(ERR_NOT_FOUND);
            err_detail("key provider %s has no server %.255s", name, server);
        }
    }
    pthread_mutex_unlock(&kp->lock);
    GUARD(rc);
    keyprov_sigpipe_block(&sp);
    rc = keyprov_fetch_cert_from(out->address, out);
    keyprov_sigpipe_restore(&sp);
    if (!is_ok(rc))
        buf_free(&out->chain_pem);
    return rc;
}

/* --- trust: we trust the servers --- */

/* Makes anchors p's trust anchors with trust mode `trust` (pin: its
 * fingerprint, or NULL). p->lock held. */
static vs_result keyprov_set_trust(struct keyprov *kp, struct keyprov_provider *p,
                                   const struct buf *anchors, enum keyprov_trust trust,
                                   const char *pin)
{
    vs_result rc;
    enum keyprov_trust old_trust = p->trust;
    char old_pin[KEYPROV_FINGERPRINT_SIZE];

    GUARD(keyprov_provider_dir(kp, p->name));
    /* The anchors first, then the mode: in between, the old mode with the
     * new anchors accepts at most what both allow. */
    GUARD(keyprov_write_public(kp, p->name, KEYPROV_CA_FILE, anchors));
    pthread_mutex_lock(&kp->lock);
    memcpy(old_pin, p->pinned_sha256, sizeof(old_pin));
    p->trust = trust;
    snprintf(p->pinned_sha256, sizeof(p->pinned_sha256), "%s", pin != NULL ? pin : "");
    rc = keyprov_registry_save(kp, NULL, kp->default_name);
    if (!is_ok(rc)) {
        p->trust = old_trust;
        memcpy(p->pinned_sha256, old_pin, sizeof(old_pin));
    }
    pthread_mutex_unlock(&kp->lock);
    GUARD(rc);
    kmip_client_free(&p->client);
    return OK_RESULT;
}

vs_result keyprov_trust_ca(struct keyprov *kp, const char *name, const char *ca_pem)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    struct buf anchors = {0};
    size_t len, count = 0;

    GUARD(keyprov_text_len("CA PEM text", ca_pem, &len));
    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(buf_alloc(&anchors, 4096, KEYPROV_PEM_MAX * 2));
    GUARD_OUT(pki_pem_certs_canonical(ca_pem, len, KEYPROV_CA_CERTS_MAX, &anchors, &count));
    GUARD_OUT(keyprov_lock_usable(p));
    rc = keyprov_set_trust(kp, p, &anchors, KEYPROV_TRUST_CA, NULL);
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("key provider trusts its servers by a CA", LOG_S("provider", name),
                 LOG_U("certificates", count));
out:
    buf_free(&anchors);
    return rc;
}

vs_result keyprov_trust_pinned(struct keyprov *kp, const char *name, const char *cert_pem,
                               const char *fingerprint)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    struct buf leaf = {0};
    char confirmed[KEYPROV_FINGERPRINT_SIZE], actual[KEYPROV_FINGERPRINT_SIZE];
    size_t len;

    GUARD(keyprov_text_len("certificate PEM text", cert_pem, &len));
    GUARD(pki_fingerprint_parse(fingerprint, confirmed));
    GUARD(keyprov_find_standard(kp, name, &p));
    /* The first certificate is the server's own (a chain may follow, as
     * keyprov_fetch_server_cert gives it): only it is kept. */
    GUARD(buf_alloc(&leaf, 2048, KEYPROV_PEM_MAX));
    GUARD_OUT(pki_pem_certs_canonical(cert_pem, len, KEYPROV_PEER_CHAIN_MAX, &leaf, NULL));
    GUARD_OUT(pki_pem_fingerprint((const char *)buf_data(&leaf), buf_len(&leaf), actual));
    if (strcmp(confirmed, actual) != 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the fingerprint confirmed (%s) is not the certificate's (%s): fetch the "
                   "server's certificate again and compare",
                   confirmed, actual);
        goto out;
    }
    {
        /* Keep the first certificate's PEM only (re-encoded: it ends with
         * this line). */
        static const char end_line[] = "-----END CERTIFICATE-----\n";
        const uint8_t *end = memmem(buf_data(&leaf), buf_len(&leaf), end_line,
                                    sizeof(end_line) - 1);
        ENSURE_OUT(end != NULL, ERR_INTERNAL);
        GUARD_OUT(buf_truncate(&leaf, (size_t)(end - buf_data(&leaf)) + sizeof(end_line) - 1));
    }
    GUARD_OUT(keyprov_lock_usable(p));
    rc = keyprov_set_trust(kp, p, &leaf, KEYPROV_TRUST_PINNED, actual);
    keyprov_unlock(p);
    if (is_ok(rc))
        log_info("key provider trusts its servers by a pinned certificate",
                 LOG_S("provider", name), LOG_S("sha256", actual));
out:
    buf_free(&leaf);
    return rc;
}

/* --- client identity: the servers trust us --- */

/* CN of our certificates: the caller's, or "vmseal-" and this host's name
 * (letters, digits, '.', '-' and '_' kept). */
static vs_result keyprov_common_name(const char *given, char out[KEYPROV_CN_MAX + 1])
{
    char host[256] = "";
    size_t n = strlen(KEYPROV_CN_PREFIX);

    if (given != NULL) {
        if (strnlen(given, KEYPROV_CN_MAX + 1) > KEYPROV_CN_MAX || given[0] == '\0') {
            RAISE(ERR_INVALID_ARG);
            return err_detail("a common name is 1 to %d bytes", KEYPROV_CN_MAX);
        }
        snprintf(out, KEYPROV_CN_MAX + 1, "%s", given);
        return OK_RESULT;
    }
    memcpy(out, KEYPROV_CN_PREFIX, n);
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "host");
    for (size_t i = 0; host[i] != '\0' && n < KEYPROV_CN_MAX; i++) {
        char c = host[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_')
            out[n++] = c;
    }
    out[n] = '\0';
    return OK_RESULT;
}

/* Makes cert_pem (canonical) and key_pem (canonical, secret) p's client
 * identity, and drops a pending request. p->lock held. */
static vs_result keyprov_set_identity(struct keyprov *kp, struct keyprov_provider *p,
                                      const struct buf *cert_pem, const struct buf *key_pem)
{
    vs_result rc = OK_RESULT;

    GUARD(keyprov_provider_dir(kp, p->name));
    /* The key first: in between, a key without its certificate is refused
     * as a mismatch; never a certificate with another's key. */
    GUARD(keyprov_standard_write_sealed(kp, p->name, KEYPROV_KEY_FILE, KEYPROV_PURPOSE_CLIENT_KEY,
                                        buf_data(key_pem), buf_len(key_pem)));
    GUARD(keyprov_write_public(kp, p->name, KEYPROV_CERT_FILE, cert_pem));
    rc = keyprov_remove_file(kp, p->name, KEYPROV_CSR_KEY_FILE);
    if (is_ok(rc))
        rc = keyprov_remove_file(kp, p->name, KEYPROV_CSR_FILE);
    pthread_mutex_lock(&kp->lock);
    keyprov_standard_load_identity(kp, p);
    pthread_mutex_unlock(&kp->lock);
    kmip_client_free(&p->client);
    return rc;
}

vs_result keyprov_client_self_signed(struct keyprov *kp, const char *name, const char *common_name,
                                     struct buf *cert_out)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    struct buf cert = {0}, key = {0};
    char cn[KEYPROV_CN_MAX + 1], sha256[KEYPROV_FINGERPRINT_SIZE];

    GUARD(keyprov_common_name(common_name, cn));
    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(buf_alloc(&cert, 2048, KEYPROV_PEM_MAX));
    GUARD_OUT(buf_alloc_secret(&key, 512, KEYPROV_PEM_MAX));
    /* The leaf lifetime of pki.h: one that every TLS stack accepts. */
    GUARD_OUT(pki_self_signed(cn, NULL, 0, PKI_LEAF_DAYS, &cert, &key));
    GUARD_OUT(pki_pem_fingerprint((const char *)buf_data(&cert), buf_len(&cert), sha256));
    GUARD_OUT(keyprov_lock_usable(p));
    rc = keyprov_set_identity(kp, p, &cert, &key);
    keyprov_unlock(p);
    GUARD_OUT(rc);
    GUARD_OUT(buf_write_bytes(cert_out, buf_data(&cert), buf_len(&cert)));
    log_info("key provider has a new self-signed client certificate", LOG_S("provider", name),
             LOG_S("subject_cn", cn), LOG_S("sha256", sha256));
out:
    buf_free(&key); /* wiped */
    buf_free(&cert);
    return rc;
}

vs_result keyprov_client_csr(struct keyprov *kp, const char *name, const char *common_name,
                             struct buf *csr_out)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    struct buf csr = {0}, key = {0};
    char cn[KEYPROV_CN_MAX + 1];

    GUARD(keyprov_common_name(common_name, cn));
    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(buf_alloc(&csr, 1024, KEYPROV_PEM_MAX));
    GUARD_OUT(buf_alloc_secret(&key, 512, KEYPROV_PEM_MAX));
    GUARD_OUT(pki_make_csr(cn, &csr, &key));
    GUARD_OUT(keyprov_lock_usable(p));
    rc = keyprov_provider_dir(kp, p->name);
    /* The request's key first: in between, a pending key without its
     * request only waits for a certificate that matches it. */
    if (is_ok(rc))
        rc = keyprov_standard_write_sealed(kp, p->name, KEYPROV_CSR_KEY_FILE,
                                           KEYPROV_PURPOSE_CSR_KEY, buf_data(&key), buf_len(&key));
    if (is_ok(rc))
        rc = keyprov_write_public(kp, p->name, KEYPROV_CSR_FILE, &csr);
    pthread_mutex_lock(&kp->lock);
    keyprov_standard_load_identity(kp, p);
    pthread_mutex_unlock(&kp->lock);
    keyprov_unlock(p);
    GUARD_OUT(rc);
    GUARD_OUT(buf_write_bytes(csr_out, buf_data(&csr), buf_len(&csr)));
    log_info("key provider made a certificate request", LOG_S("provider", name),
             LOG_S("subject_cn", cn));
out:
    buf_free(&key); /* wiped */
    buf_free(&csr);
    return rc;
}

/* Opens the pending request's key into key (a secret buf). */
static vs_result keyprov_pending_key(struct keyprov *kp, const struct keyprov_provider *p,
                                     struct buf *key)
{
    vs_result rc = OK_RESULT;
    struct buf sealed = {0};
    char path[4096];

    GUARD(keyprov_path(kp, p->name, KEYPROV_CSR_KEY_FILE, path, sizeof(path)));
    GUARD(buf_alloc(&sealed, 0, KEYPROV_PEM_MAX + 64));
    rc = file_read_all(path, KEYPROV_PEM_MAX + 64, &sealed);
    if (rc.code == ERR_NOT_FOUND) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("key provider %s has no pending certificate request: make one first, or "
                   "upload the private key with the certificate",
                   p->name);
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(keyprov_hostkey_open(kp->hostkey, KEYPROV_PURPOSE_CSR_KEY, p->name, "",
                                   buf_data(&sealed), buf_len(&sealed), key));
out:
    buf_free(&sealed);
    return rc;
}

vs_result keyprov_client_certificate(struct keyprov *kp, const char *name, const char *cert_pem,
                                     const char *key_pem)
{
    vs_result rc = OK_RESULT;
    struct keyprov_provider *p;
    struct buf cert = {0}, key = {0};
    struct pki_cert_summary s;
    size_t cert_len, key_len = 0;
    bool locked = false;

    GUARD(keyprov_text_len("certificate PEM text", cert_pem, &cert_len));
    if (key_pem != NULL)
        GUARD(keyprov_text_len("private key PEM text", key_pem, &key_len));
    GUARD(keyprov_find_standard(kp, name, &p));
    GUARD(buf_alloc(&cert, 2048, KEYPROV_PEM_MAX));
    GUARD_OUT(buf_alloc_secret(&key, 512, KEYPROV_PEM_MAX + 64));
    GUARD_OUT(pki_pem_certs_canonical(cert_pem, cert_len, KEYPROV_CHAIN_CERTS_MAX, &cert, NULL));
    GUARD_OUT(pki_pem_summary((const char *)buf_data(&cert), buf_len(&cert), &s));
    if (s.not_after_unix < (int64_t)time(NULL)) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the certificate expired on %s", s.not_after);
        goto out;
    }
    GUARD_OUT(keyprov_lock_usable(p));
    locked = true;
    if (key_pem != NULL) {
        GUARD_OUT(pki_pem_key_canonical(key_pem, key_len, &key));
    } else {
        GUARD_OUT(keyprov_pending_key(kp, p, &key));
    }
    rc = pki_pem_key_matches((const char *)buf_data(&cert), buf_len(&cert),
                             (const char *)buf_data(&key), buf_len(&key));
    if (!is_ok(rc)) {
        if (key_pem == NULL)
            err_detail("the certificate was not issued for the pending request's key (it was "
                       "signed from another request): upload the certificate the KMS signed "
                       "from our latest CSR, or make a new CSR");
        goto out;
    }
    GUARD_OUT(keyprov_set_identity(kp, p, &cert, &key));
    log_info("key provider has a new client certificate", LOG_S("provider", name),
             LOG_S("subject", s.subject), LOG_S("sha256", s.sha256),
             LOG_S("key", key_pem != NULL ? "uploaded" : "from its CSR"));
out:
    if (locked)
        keyprov_unlock(p);
    buf_free(&key); /* wiped */
    buf_free(&cert);
    return rc;
}

/* --- health --- */

/* One server's check; runs on a thread of its own. */
struct keyprov_health_job {
    const struct keyprov_tls_config *tls; /* NULL: not configured */
    struct keyprov_server_health *out;
    pthread_t thread;
    bool started;
};

static uint64_t keyprov_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The versions a Discover Versions answer lists (KMIP 1.4 §4.26), as
 * "major.minor", in the server's order (its preferred first). */
static void keyprov_health_versions(const struct ttlv *payload, struct keyprov_server_health *h)
{
    for (const struct ttlv *v = ttlv_find(payload, KMIP_TAG_PROTOCOL_VERSION);
         v != NULL && h->version_count < KEYPROV_HEALTH_VERSIONS_MAX; v = ttlv_find_next(v)) {
        int32_t major, minor;
        if (is_ok(ttlv_get_integer(ttlv_find(v, KMIP_TAG_PROTOCOL_VERSION_MAJOR), &major)) &&
            is_ok(ttlv_get_integer(ttlv_find(v, KMIP_TAG_PROTOCOL_VERSION_MINOR), &minor)))
            snprintf(h->versions[h->version_count++], sizeof(h->versions[0]), "%d.%d",
                     (int)major, (int)minor);
    }
    err_clear();
}

/* Sorts a failure of kmip_client_call: it notes "cannot connect" for a
 * server with which no TCP connection was made (kmip/client.c), anything
 * else happened once connected: in the TLS handshake, or (TLS 1.3, where
 * the server checks our certificate after the client's side of the
 * handshake is done) as the connection closing before an answer. */
static void keyprov_health_failed(struct keyprov_server_health *h)
{
    const char *detail = err_last()->detail;

    if (strstr(detail, ": cannot connect") != NULL || strstr(detail, ": not HOST:PORT") != NULL)
        h->status = KEYPROV_HEALTH_UNREACHABLE;
    else
        h->status = KEYPROV_HEALTH_TLS_ERROR;
    if (h->status == KEYPROV_HEALTH_TLS_ERROR && strstr(detail, ": no answer") != NULL)
        snprintf(h->error, sizeof(h->error),
                 "the server closed the connection without answering: it may not trust our "
                 "client certificate (%.150s)",
                 detail);
    else
        snprintf(h->error, sizeof(h->error), "%s", detail[0] ? detail : "failed");
}

static void *keyprov_health_run(void *arg)
{
    struct keyprov_health_job *job = arg;
    struct keyprov_server_health *h = job->out;
    struct kmip_client *client = NULL;
    struct kmip_client_result r;
    const char *servers[1] = {h->address};
    uint64_t start = keyprov_now_ms();

    err_clear();
    if (!is_ok(keyprov_standard_connect(servers, 1, job->tls, KEYPROV_HEALTH_TIMEOUT_MS,
                                        &client))) {
        h->status = KEYPROV_HEALTH_TLS_ERROR; /* our own certificate or key does not load */
        snprintf(h->error, sizeof(h->error), "%s", err_last()->detail);
    } else if (!is_ok(kmip_client_call(client, KMIP_OP_DISCOVER_VERSIONS, NULL, 0, &r))) {
        keyprov_health_failed(h);
    } else {
        if (r.status == KMIP_STATUS_SUCCESS) {
            h->status = KEYPROV_HEALTH_OK;
            keyprov_health_versions(r.payload, h);
        } else {
            const char *reason = kmip_result_reason_name(r.reason);
            h->status = KEYPROV_HEALTH_ERROR;
            snprintf(h->error, sizeof(h->error), "Discover Versions refused: %s%s%.150s",
                     reason != NULL ? reason : "unknown reason", r.message[0] ? ": " : "",
                     r.message);
        }
        kmip_client_result_free(&r);
    }
    kmip_client_free(&client);
    h->latency_ms = (unsigned)(keyprov_now_ms() - start);
    err_clear();
    return NULL;
}

/* Runs jobs[0..n), KEYPROV_HEALTH_THREADS at a time. The threads start
 * with every signal blocked (they inherit this thread's mask while it is
 * so): a SIGPIPE from a closed connection must not kill the process, and
 * the process's signals are for its own threads to take. */
static vs_result keyprov_health_jobs(struct keyprov_health_job *jobs, size_t n)
{
    sigset_t all, old;
    pthread_attr_t attr;
    vs_result rc = OK_RESULT;

    if (pthread_attr_init(&attr) != 0)
        BAIL(ERR_NOMEM);
    (void)pthread_attr_setstacksize(&attr, KEYPROV_HEALTH_STACK); /* else the default */
    sigfillset(&all);
    for (size_t first = 0; first < n; first += KEYPROV_HEALTH_THREADS) {
        size_t last = first + KEYPROV_HEALTH_THREADS < n ? first + KEYPROV_HEALTH_THREADS : n;
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (size_t i = first; i < last; i++)
            jobs[i].started =
                pthread_create(&jobs[i].thread, &attr, keyprov_health_run, &jobs[i]) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        for (size_t i = first; i < last; i++) {
            if (jobs[i].started)
                pthread_join(jobs[i].thread, NULL);
            else if (is_ok(rc))
                rc = RAISE(ERR_NOMEM);
        }
    }
    pthread_attr_destroy(&attr);
    return rc;
}

vs_result keyprov_health(struct keyprov *kp, const char *const *names, size_t n,
                         struct keyprov_health *out)
{
    vs_result rc = OK_RESULT;
    struct keyprov_tls_config *tls = NULL;
    struct keyprov_health_job *jobs = NULL;
    size_t job_count = 0;

    memset(out, 0, n * sizeof(*out));
    tls = calloc(n > 0 ? n : 1, sizeof(*tls));
    jobs = calloc(n > 0 ? n * KEYPROV_MAX_SERVERS : 1, sizeof(*jobs));
    ENSURE_OUT(tls != NULL && jobs != NULL, ERR_NOMEM);

    /* What each provider connects with, read under the registry lock (the
     * configuration is whole there: see keyprov_internal.h); no network. */
    pthread_mutex_lock(&kp->lock);
    for (size_t i = 0; i < n; i++) {
        const struct keyprov_provider *p = keyprov_lookup(kp, names[i]);
        enum keyprov_health_status unusable = KEYPROV_HEALTH_NOT_CONFIGURED;
        bool loaded;
        char why[256] = "";
        if (p == NULL || p->type != KEYPROV_STANDARD)
            continue;
        loaded = is_ok(keyprov_standard_load_tls(kp, p, &tls[i]));
        if (!loaded) {
            /* Configured, but its files do not load: say so per server. */
            if (p->trust != KEYPROV_TRUST_NONE && p->has_client_cert)
                unusable = KEYPROV_HEALTH_TLS_ERROR;
            snprintf(why, sizeof(why), "%s", err_last()->detail);
        }
        err_clear();
        out[i].server_count = p->server_count;
        for (size_t k = 0; k < p->server_count; k++) {
            struct keyprov_server_health *h = &out[i].servers[k];
            snprintf(h->address, sizeof(h->address), "%s", p->servers[k]);
            if (!loaded) {
                h->status = unusable;
                snprintf(h->error, sizeof(h->error), "%s", why);
                continue;
            }
            jobs[job_count].tls = &tls[i];
            jobs[job_count++].out = h;
        }
    }
    pthread_mutex_unlock(&kp->lock);
    rc = keyprov_health_jobs(jobs, job_count);
out:
    for (size_t i = 0; tls != NULL && i < n; i++)
        keyprov_tls_config_free(&tls[i]); /* the keys wiped */
    free(tls);
    free(jobs);
    return rc;
}
