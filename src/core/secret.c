/*
 * secret.c - locked, guarded, wiped memory for secrets. See secret.h.
 */
#include "core/secret.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define SECRET_CANARY UINT64_C(0x5ec7e7a110c8ed01)

struct secret_header {
    uint64_t canary;
    size_t len;     /* what the caller asked for */
    size_t map_len; /* the whole mapping: header + data pages + guard */
    uint64_t canary2;
};

static atomic_size_t secret_live_allocations;
static atomic_size_t secret_live_bytes;

/* Freed regions of up to SECRET_CACHE_PAGES data pages are kept, wiped and
 * still locked, guarded and excluded from dumps, for the next allocation of
 * that size: a server allocates secret buffers for every request, and
 * mmap + mlock + mprotect + madvise + munlock + munmap per buffer (with the
 * TLB shootdowns of munmap) cost more than the request itself. Bounded:
 * at most SECRET_CACHE_DEPTH regions per size. */
#define SECRET_CACHE_PAGES 4
#define SECRET_CACHE_DEPTH 64

static struct {
    pthread_mutex_t mu;
    void *regions[SECRET_CACHE_PAGES][SECRET_CACHE_DEPTH]; /* data pointers */
    size_t count[SECRET_CACHE_PAGES];
} secret_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* MADV_DONTFORK: a fork child does not have the parent's secret pages, so
 * it must forget the cached ones. (It still holds the mutex state of the
 * fork's moment, which the prepare/parent handlers keep consistent.) */
static void secret_cache_prepare(void)
{
    pthread_mutex_lock(&secret_cache.mu);
}

static void secret_cache_parent(void)
{
    pthread_mutex_unlock(&secret_cache.mu);
}

static void secret_cache_child(void)
{
    for (size_t i = 0; i < SECRET_CACHE_PAGES; i++)
        secret_cache.count[i] = 0;
    pthread_mutex_unlock(&secret_cache.mu);
}

static pthread_once_t secret_cache_once = PTHREAD_ONCE_INIT;

static void secret_cache_init(void)
{
    (void)pthread_atfork(secret_cache_prepare, secret_cache_parent, secret_cache_child);
}

/* mlock and munlock as system calls: sanitizer runtimes intercept the libc
 * functions and make them no-ops, which would silently leave secrets
 * swappable in exactly the builds the tests run. */
static int secret_mlock(const void *p, size_t n)
{
    return (int)syscall(SYS_mlock, p, n);
}

static int secret_munlock(const void *p, size_t n)
{
    return (int)syscall(SYS_munlock, p, n);
}

static size_t secret_page_size(void)
{
    /* sysconf is a cheap lookup; no lazily set static, no race. */
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

void secret_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

bool secret_equal(const void *a, const void *b, size_t n)
{
    /* OpenSSL's CRYPTO_memcmp is written not to branch on the data. */
    return n == 0 || CRYPTO_memcmp(a, b, n) == 0;
}

/* The header sits at the very end of the header page, directly below the
 * data, so that any write below the data hits the canary first. */
static struct secret_header *secret_header_of(const void *p)
{
    return (struct secret_header *)((uintptr_t)p - sizeof(struct secret_header));
}

/* Marks a region as holding a live allocation of len bytes. */
static void secret_header_set(struct secret_header *h, size_t len, size_t map_len)
{
    h->canary = SECRET_CANARY;
    h->len = len;
    h->map_len = map_len;
    h->canary2 = SECRET_CANARY ^ (uint64_t)len;
    atomic_fetch_add(&secret_live_allocations, 1);
    atomic_fetch_add(&secret_live_bytes, len);
}

vs_result secret_alloc(size_t len, void **out)
{
    size_t page = secret_page_size();
    size_t data_len, map_len;
    uint8_t *base;

    *out = NULL;
    ENSURE(len > 0, ERR_INVALID_ARG);
    ENSURE(len <= SIZE_MAX - 3 * page, ERR_OVERFLOW);
    data_len = (len + page - 1) / page * page;
    map_len = data_len + 2 * page;

    size_t pages = data_len / page;
    if (pages <= SECRET_CACHE_PAGES) {
        void *p = NULL;
        pthread_once(&secret_cache_once, secret_cache_init);
        pthread_mutex_lock(&secret_cache.mu);
        if (secret_cache.count[pages - 1] > 0)
            p = secret_cache.regions[pages - 1][--secret_cache.count[pages - 1]];
        pthread_mutex_unlock(&secret_cache.mu);
        if (p != NULL) {
            /* Wiped when it was freed; only the header changes. */
            secret_header_set(secret_header_of(p), len, map_len);
            *out = p;
            return OK_RESULT;
        }
    }

    base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        RAISE(ERR_NOMEM);
        return err_errno(e);
    }

    /* Exclude from core dumps and from fork children before any secret is
     * written. Like mlock, fail closed: memory that could be dumped is not
     * secret memory. */
    if (madvise(base, map_len, MADV_DONTDUMP) != 0 || madvise(base, map_len, MADV_DONTFORK) != 0) {
        int e = errno;
        munmap(base, map_len);
        RAISE(ERR_NOMEM);
        err_detail("madvise(MADV_DONTDUMP/MADV_DONTFORK) failed");
        return err_errno(e);
    }

    if (secret_mlock(base, page + data_len) != 0) {
        int e = errno;
        munmap(base, map_len);
        RAISE(ERR_SECRET_MLOCK);
        err_detail("mlock of %zu bytes failed", page + data_len);
        return err_errno(e);
    }
    if (mprotect(base + page + data_len, page, PROT_NONE) != 0) {
        int e = errno;
        secret_munlock(base, page + data_len);
        munmap(base, map_len);
        RAISE(ERR_NOMEM);
        return err_errno(e);
    }

    secret_header_set(secret_header_of(base + page), len, map_len);
    *out = base + page; /* fresh anonymous pages are zero */
    return OK_RESULT;
}

size_t secret_size(const void *p)
{
    if (p == NULL)
        return 0;
    return secret_header_of(p)->len;
}

void secret_free(void **pp)
{
    size_t page = secret_page_size();

    if (pp == NULL || *pp == NULL)
        return;
    struct secret_header *h = secret_header_of(*pp);
    /* A broken canary means something wrote below the secret: the heap is
     * not to be trusted any more, so stop here rather than carry on. */
    if (h->canary != SECRET_CANARY || h->canary2 != (SECRET_CANARY ^ (uint64_t)h->len))
        abort();
    /* Length 0 is a region already freed (cached): a double free. */
    if (h->len == 0)
        abort();
    size_t len = h->len, map_len = h->map_len;
    size_t locked = map_len - page;
    uint8_t *base = (uint8_t *)*pp - page;

    explicit_bzero(*pp, locked - page);
    atomic_fetch_sub(&secret_live_allocations, 1);
    atomic_fetch_sub(&secret_live_bytes, len);

    size_t pages = (locked - page) / page;
    if (pages <= SECRET_CACHE_PAGES) {
        bool kept = false;
        /* Done with the header before the region is published: from the
         * moment it is in the cache another thread may take it. */
        h->len = 0;
        h->canary2 = SECRET_CANARY;
        pthread_once(&secret_cache_once, secret_cache_init);
        pthread_mutex_lock(&secret_cache.mu);
        if (secret_cache.count[pages - 1] < SECRET_CACHE_DEPTH) {
            secret_cache.regions[pages - 1][secret_cache.count[pages - 1]++] = *pp;
            kept = true;
        }
        pthread_mutex_unlock(&secret_cache.mu);
        if (kept) {
            *pp = NULL;
            return;
        }
    }
    explicit_bzero(h, sizeof(*h));
    secret_munlock(base, locked);
    munmap(base, map_len);
    *pp = NULL;
}

vs_result secret_harden_process(void)
{
    struct rlimit none = {0, 0};

    /* Not dumpable: no core file, no ptrace attach by same-uid processes,
     * /proc/PID/mem closed to them. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        int e = errno;
        RAISE(ERR_PERM);
        err_detail("prctl(PR_SET_DUMPABLE, 0)");
        return err_errno(e);
    }
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        int e = errno;
        RAISE(ERR_PERM);
        err_detail("setrlimit(RLIMIT_CORE, 0)");
        return err_errno(e);
    }
    return OK_RESULT;
}

void secret_get_stats(struct secret_stats *out)
{
    out->live_allocations = atomic_load(&secret_live_allocations);
    out->live_bytes = atomic_load(&secret_live_bytes);
}
