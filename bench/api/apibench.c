/*
 * apibench.c - load generator for vmseald's API (bench/api/run.sh).
 *
 *   apibench --url URL [--unix-socket PATH] [--cacert FILE] [--token-file FILE]
 *            [--threads N] [--seconds S] [--warmup S] [--label TEXT]
 *
 * N threads (default 16), each with one libcurl easy handle that it reuses,
 * so that each keeps one connection alive (HTTP/1.1 keep-alive; over HTTPS,
 * one TLS handshake per thread for the whole run). Each thread sends GET URL
 * back to back for the warm-up, then for S seconds timed; every answer must
 * be 200 (others are counted as errors and make the exit status 1).
 *
 * Prints one line:
 *
 *   LABEL requests=R seconds=S rps=X p50_ms=A p95_ms=B p99_ms=C max_ms=D
 *         bytes=SIZE connections=K errors=E
 *
 * where the latencies are of single requests (curl_easy_perform, wall
 * time), over all threads, and connections counts the connections opened
 * in all, warm-up included (N when keep-alive holds).
 *
 * The token (a bearer token from POST /v1/session) is read from a file so
 * that it never appears in a process listing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define THREADS_MAX 256
#define TOKEN_MAX 256

struct config {
    const char *url, *unix_socket, *cacert, *token_file, *label;
    unsigned threads;
    double seconds, warmup;
    char auth_header[TOKEN_MAX + 32];
};

struct worker {
    const struct config *cfg;
    pthread_t thread;
    double *lat_ms; /* timed requests' latencies */
    size_t n, cap;
    uint64_t errors;
    uint64_t connections;
    size_t last_bytes;
    size_t bytes; /* of the current answer */
    long first_bad_status;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct worker *w = arg;
    (void)data;
    w->bytes += size * n;
    return size * n;
}

static bool record(struct worker *w, double ms)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 65536;
        double *grown = realloc(w->lat_ms, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        w->lat_ms = grown;
        w->cap = cap;
    }
    w->lat_ms[w->n++] = ms;
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    struct curl_slist *headers = NULL;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        w->errors++;
        return NULL;
    }
    if (cfg->auth_header[0] != '\0')
        headers = curl_slist_append(headers, cfg->auth_header);
    curl_easy_setopt(h, CURLOPT_URL, cfg->url);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    if (headers != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (cfg->unix_socket != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, cfg->unix_socket);
    if (cfg->cacert != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->cacert);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);

    double start = now_s(), timed_from = start + cfg->warmup, end = timed_from + cfg->seconds;
    for (;;) {
        double t0 = now_s();
        if (t0 >= end)
            break;
        w->bytes = 0;
        CURLcode rc = curl_easy_perform(h);
        double t1 = now_s();
        long status = 0, connects = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
        w->connections += (uint64_t)connects;
        if (t0 < timed_from)
            continue;
        if (rc != CURLE_OK || status != 200) {
            if (w->first_bad_status == 0)
                w->first_bad_status = rc != CURLE_OK ? -(long)rc : status;
            w->errors++;
            continue;
        }
        w->last_bytes = w->bytes;
        if (!record(w, (t1 - t0) * 1e3)) {
            w->errors++;
            break;
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static int usage(void)
{
    fprintf(stderr, "usage: apibench --url URL [--unix-socket PATH] [--cacert FILE]\n"
                    "                [--token-file FILE] [--threads N] [--seconds S]\n"
                    "                [--warmup S] [--label TEXT]\n");
    return 2;
}

static bool read_token(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "apibench: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    if (n == 0 || n >= size - 1) {
        fprintf(stderr, "apibench: %s does not hold a token\n", path);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct config cfg = {.threads = 16, .seconds = 10, .warmup = 1, .label = "api"};
    char token[TOKEN_MAX];

    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return usage();
        if (strcmp(argv[i], "--url") == 0)
            cfg.url = v;
        else if (strcmp(argv[i], "--unix-socket") == 0)
            cfg.unix_socket = v;
        else if (strcmp(argv[i], "--cacert") == 0)
            cfg.cacert = v;
        else if (strcmp(argv[i], "--token-file") == 0)
            cfg.token_file = v;
        else if (strcmp(argv[i], "--label") == 0)
            cfg.label = v;
        else if (strcmp(argv[i], "--threads") == 0)
            cfg.threads = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            cfg.seconds = strtod(v, NULL);
        else if (strcmp(argv[i], "--warmup") == 0)
            cfg.warmup = strtod(v, NULL);
        else
            return usage();
    }
    if (cfg.url == NULL || cfg.threads < 1 || cfg.threads > THREADS_MAX || cfg.seconds <= 0 ||
        cfg.warmup < 0)
        return usage();
    if (cfg.token_file != NULL) {
        if (!read_token(cfg.token_file, token, sizeof token))
            return 2;
        snprintf(cfg.auth_header, sizeof cfg.auth_header, "Authorization: Bearer %s", token);
        memset(token, 0, sizeof token);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "apibench: curl_global_init failed\n");
        return 2;
    }

    struct worker *w = calloc(cfg.threads, sizeof *w);
    if (w == NULL)
        return 2;
    double t0 = now_s();
    for (unsigned i = 0; i < cfg.threads; i++) {
        w[i].cfg = &cfg;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "apibench: cannot start threads\n");
            return 2;
        }
    }
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(w[i].thread, NULL);
    double elapsed = now_s() - t0 - cfg.warmup;

    size_t total = 0;
    uint64_t errors = 0, connections = 0;
    size_t bytes = 0;
    long bad = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        total += w[i].n;
        errors += w[i].errors;
        connections += w[i].connections;
        if (w[i].last_bytes != 0)
            bytes = w[i].last_bytes;
        if (bad == 0)
            bad = w[i].first_bad_status;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        return 2;
    size_t k = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        memcpy(all + k, w[i].lat_ms, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat_ms);
    }
    qsort(all, total, sizeof *all, cmp_double);
    printf("%s requests=%zu seconds=%.1f rps=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f "
           "max_ms=%.2f bytes=%zu connections=%llu errors=%llu\n",
           cfg.label, total, elapsed, elapsed > 0 ? (double)total / elapsed : 0.0,
           percentile(all, total, 50), percentile(all, total, 95), percentile(all, total, 99),
           total ? all[total - 1] : 0.0, bytes, (unsigned long long)connections,
           (unsigned long long)errors);
    if (errors > 0)
        fprintf(stderr, "apibench: %llu errors; the first: %s %ld\n",
                (unsigned long long)errors, bad < 0 ? "curl error" : "HTTP status",
                bad < 0 ? -bad : bad);
    free(all);
    free(w);
    memset(cfg.auth_header, 0, sizeof cfg.auth_header);
    curl_global_cleanup();
    return errors > 0 ? 1 : 0;
}
