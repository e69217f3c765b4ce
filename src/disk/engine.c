/*
 * engine.c - the bulk engine. See engine.h for the contract.
 *
 * Shape of a run:
 *
 *   - The guest range is cut into chunks (4 MiB by default). Workers (the
 *     calling thread and threads-1 others) take chunks in increasing order
 *     from one atomic counter, so the files are walked front to back by a
 *     few streams at once and a slow chunk never holds up the others.
 *   - A worker owns one buffer of one chunk and its own XTS contexts (one
 *     for the source's DEK, one for the destination's). A chunk is read
 *     with pread into the buffer, decrypted and re-encrypted there in place
 *     (slice by slice, so that both passes over a slice hit the cache), and
 *     written with pwrite: no copies between threads, no locks on the data
 *     path.
 *   - Pipelining: a worker claims its next chunk before it processes the
 *     current one and asks the kernel to read it ahead (POSIX_FADV_WILLNEED),
 *     and starts write-back of what it has just written
 *     (sync_file_range(SYNC_FILE_RANGE_WRITE), asynchronous). On a real disk,
 *     reads, cipher and write-back of neighbouring chunks overlap without
 *     another thread; the final fdatasync has little left to do.
 *   - Sparse source: each chunk asks the source for its data extents with
 *     SEEK_DATA / SEEK_HOLE (per chunk, so that a badly fragmented source
 *     never needs a map in memory). Extents are widened to whole 512-byte
 *     sectors. What a hole becomes is engine.h's rule: skipped, except
 *     plaintext into LUKS, where it is encrypted zeros.
 *   - Progress counts guest bytes done (holes included); one mutex
 *     serializes the callback, which a worker only tries to take
 *     (trylock): a worker never waits for another's report. The last call,
 *     with done == total, is made once everything is written and synced.
 *   - The first error (or cancellation) seen by any worker is kept, with
 *     its file, line and detail, and stops the others; the caller gets it
 *     back on its own thread (err_restore).
 *
 * The engine moves the source descriptor's file offset (lseek for
 * SEEK_DATA/SEEK_HOLE); all data I/O is positional.
 */
#include "disk/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/secret.h"

#define ENGINE_SECTOR LUKS1_SECTOR_SIZE
#define ENGINE_DEFAULT_CHUNK ((size_t)4 << 20)
#define ENGINE_MAX_CHUNK ((size_t)256 << 20)
#define ENGINE_MAX_THREADS 256U
/* Decrypt and re-encrypt this much at a time, so that the second pass
 * finds the data in L2 instead of memory. */
#define ENGINE_SLICE ((size_t)128 << 10)
#define ENGINE_PROGRESS_STEP ((uint64_t)64 << 20)

/* One side of the copy, as the workers see it. */
struct engine_end {
    int fd;
    bool luks;
    const uint8_t *master_key;
    uint64_t base; /* file offset of guest byte 0 */
};

struct engine_job {
    struct engine_end src, dst;
    uint64_t guest_size;
    size_t chunk;
    uint64_t chunks;
    bool src_sparse; /* the source answers SEEK_DATA / SEEK_HOLE */
    const struct disk_copy_opts *opts;

    atomic_uint_fast64_t next_chunk;
    atomic_uint_fast64_t done_bytes;
    atomic_uint_fast64_t next_report; /* done_bytes at which to report */
    atomic_bool stop;

    pthread_mutex_t lock; /* guards first_error and the progress callback */
    bool failed;
    struct err_state first_error;
};

struct engine_worker {
    struct engine_job *job;
    uint8_t *buf;
    struct crypto_xts *src_xts, *dst_xts;
    vs_result rc;
    /* The last extent the source reported (engine_next_extent), in guest
     * offsets: [known_from, known_data) is a hole, [known_data, known_hole)
     * data; valid for offsets in [known_from, known_limit). */
    uint64_t known_from, known_data, known_hole, known_limit;
};

/* --- small helpers --- */

static RESULT engine_fail_errno(enum err_code code, int e, const char *file, int line)
{
    err_raise(code, file, line);
    return err_errno(e);
}
#define ENGINE_FAIL_ERRNO(code) engine_fail_errno((code), errno, __FILE__, __LINE__)

static bool engine_cancelled(const struct engine_job *job)
{
    return job->opts->cancel != NULL && atomic_load(job->opts->cancel);
}

/* Keeps the first error of the run (the one that caused the others). */
static void engine_record_error(struct engine_job *job)
{
    pthread_mutex_lock(&job->lock);
    if (!job->failed) {
        job->failed = true;
        job->first_error = *err_last();
    }
    pthread_mutex_unlock(&job->lock);
    atomic_store(&job->stop, true);
}

static RESULT engine_read_fully(const struct engine_end *e, uint8_t *p, size_t len, uint64_t off)
{
    uint64_t pos = e->base + off;

    while (len > 0) {
        ssize_t n = pread(e->fd, p, len, (off_t)pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ENGINE_FAIL_ERRNO(ERR_IO);
        }
        if (n == 0) {
            RAISE(ERR_IO);
            return err_detail("the source ends at byte %llu, inside the guest's data",
                              (unsigned long long)pos);
        }
        p += n;
        pos += (uint64_t)n;
        len -= (size_t)n;
    }
    return OK_RESULT;
}

static RESULT engine_write_fully(const struct engine_end *e, const uint8_t *p, size_t len,
                                 uint64_t off)
{
    uint64_t pos = e->base + off;

    while (len > 0) {
        ssize_t n = pwrite(e->fd, p, len, (off_t)pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ENGINE_FAIL_ERRNO(ERR_IO);
        }
        if (n == 0) {
            RAISE(ERR_IO);
            return err_detail("the destination accepts no more bytes at %llu",
                              (unsigned long long)pos);
        }
        p += n;
        pos += (uint64_t)n;
        len -= (size_t)n;
    }
    return OK_RESULT;
}

/* --- the source's extents --- */

/* The first sector-aligned data extent [*data, *hole) of the source at or
 * after guest offset `from`, clipped to `end`; *data == end when there is
 * none. A sector that holds any data byte counts as data.
 *
 * The answer of the file system is kept in the worker (w->known_*) and
 * reused while the worker's chunks fall inside it: on tmpfs, SEEK_HOLE
 * walks the page cache up to the next hole, so asking again for every chunk
 * of a fully written disk would cost time quadratic in its size. */
static RESULT engine_next_extent(struct engine_worker *w, uint64_t from, uint64_t end,
                                 uint64_t *data, uint64_t *hole)
{
    const struct engine_end *s = &w->job->src;
    uint64_t size = w->job->guest_size;

    if (!w->job->src_sparse) {
        *data = from;
        *hole = end;
        return OK_RESULT;
    }
    if (!(w->known_from <= from && from < w->known_limit)) {
        off_t d = lseek(s->fd, (off_t)(s->base + from), SEEK_DATA), h;
        if (d < 0) {
            if (errno != ENXIO) /* ENXIO: only a hole (or the end of file) follows */
                return ENGINE_FAIL_ERRNO(ERR_IO);
            w->known_data = w->known_hole = size;
            w->known_limit = UINT64_MAX;
        } else {
            /* d >= base + from: SEEK_DATA never goes backwards. */
            w->known_data = ((uint64_t)d - s->base) / ENGINE_SECTOR * ENGINE_SECTOR;
            if (w->known_data < from)
                w->known_data = from;
            if (w->known_data >= size) {
                w->known_data = w->known_hole = size;
                w->known_limit = UINT64_MAX;
            } else {
                h = lseek(s->fd, (off_t)(s->base + w->known_data), SEEK_HOLE);
                if (h < 0)
                    return ENGINE_FAIL_ERRNO(ERR_IO);
                w->known_hole =
                    ((uint64_t)h - s->base + ENGINE_SECTOR - 1) / ENGINE_SECTOR * ENGINE_SECTOR;
                w->known_limit = w->known_hole;
            }
        }
        w->known_from = from;
    }
    *data = from > w->known_data ? from : w->known_data;
    *hole = w->known_hole < end ? w->known_hole : end;
    if (*data >= end) {
        *data = *hole = end;
    }
    return OK_RESULT;
}

/* --- the transform --- */

/* Decrypts (LUKS source) and encrypts (LUKS destination) len bytes of buf,
 * which hold guest bytes from guest offset off, in place. */
static RESULT engine_transform(struct engine_worker *w, uint8_t *buf, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len; done += ENGINE_SLICE) {
        size_t n = len - done < ENGINE_SLICE ? len - done : ENGINE_SLICE;
        uint64_t sector = (off + done) / ENGINE_SECTOR;

        /* plain64: the tweak is the sector's number from the payload start
         * (luks1.h), i.e. the guest sector number, for either end. */
        if (w->src_xts != NULL)
            GUARD(crypto_xts_decrypt(w->src_xts, sector, ENGINE_SECTOR, buf + done, buf + done, n));
        if (w->dst_xts != NULL)
            GUARD(crypto_xts_encrypt(w->dst_xts, sector, ENGINE_SECTOR, buf + done, buf + done, n));
    }
    return OK_RESULT;
}

/* Plaintext into LUKS: every sector of the chunk is written, holes as
 * encrypted zeros, in one write. */
static RESULT engine_chunk_whole(struct engine_worker *w, uint64_t start, size_t len)
{
    const struct engine_job *job = w->job;
    uint64_t end = start + len, pos = start, data, hole;

    while (pos < end) {
        GUARD(engine_next_extent(w, pos, end, &data, &hole));
        memset(w->buf + (pos - start), 0, (size_t)(data - pos));
        if (data < end)
            GUARD(
                engine_read_fully(&job->src, w->buf + (data - start), (size_t)(hole - data), data));
        pos = data < end ? hole : end;
    }
    GUARD(engine_transform(w, w->buf, len, start));
    return engine_write_fully(&job->dst, w->buf, len, start);
}

/* Every other case: the source's data extents only; holes are skipped and
 * stay holes in the new destination. */
static RESULT engine_chunk_extents(struct engine_worker *w, uint64_t start, size_t len)
{
    const struct engine_job *job = w->job;
    uint64_t end = start + len, pos = start, data, hole;

    for (;;) {
        GUARD(engine_next_extent(w, pos, end, &data, &hole));
        if (data >= end)
            return OK_RESULT;
        size_t n = (size_t)(hole - data);
        GUARD(engine_read_fully(&job->src, w->buf, n, data));
        GUARD(engine_transform(w, w->buf, n, data));
        GUARD(engine_write_fully(&job->dst, w->buf, n, data));
        pos = hole;
    }
}

/* Reports progress if a step has passed and nobody else is reporting. */
static void engine_maybe_report(struct engine_job *job)
{
    const struct disk_copy_opts *o = job->opts;
    uint64_t done = atomic_load(&job->done_bytes);

    /* done == total is reported once, by disk_copy, after the sync. */
    if (o->progress == NULL || done < atomic_load(&job->next_report) || done >= job->guest_size)
        return;
    if (pthread_mutex_trylock(&job->lock) != 0)
        return;
    /* Re-read under the lock: the counter only grows, so reports that the
     * lock serializes are monotonic. */
    done = atomic_load(&job->done_bytes);
    if (done >= atomic_load(&job->next_report) && done < job->guest_size) {
        atomic_store(&job->next_report, done + ENGINE_PROGRESS_STEP);
        o->progress(o->progress_ctx, done, job->guest_size);
    }
    pthread_mutex_unlock(&job->lock);
}

static void engine_hint_read(const struct engine_job *job, uint64_t chunk)
{
    uint64_t start = chunk * job->chunk;
    uint64_t len = job->guest_size - start < job->chunk ? job->guest_size - start : job->chunk;

    /* Advice only: failure costs speed, never correctness. */
    (void)posix_fadvise(job->src.fd, (off_t)(job->src.base + start), (off_t)len,
                        POSIX_FADV_WILLNEED);
}

static RESULT engine_worker_run(struct engine_worker *w)
{
    struct engine_job *job = w->job;
    bool whole = job->dst.luks && !job->src.luks;
    uint64_t cur, next;

    if (job->src.luks)
        GUARD(crypto_xts_new(job->src.master_key, &w->src_xts));
    if (job->dst.luks)
        GUARD(crypto_xts_new(job->dst.master_key, &w->dst_xts));

    next = atomic_fetch_add(&job->next_chunk, 1);
    while (next < job->chunks) {
        if (atomic_load(&job->stop))
            return OK_RESULT; /* another worker failed: it reports */
        if (engine_cancelled(job)) {
            RAISE(ERR_CANCELLED);
            return err_detail("after %llu of %llu bytes",
                              (unsigned long long)atomic_load(&job->done_bytes),
                              (unsigned long long)job->guest_size);
        }
        cur = next;
        next = atomic_fetch_add(&job->next_chunk, 1);
        if (next < job->chunks)
            engine_hint_read(job, next);

        uint64_t start = cur * job->chunk;
        size_t len =
            (size_t)(job->guest_size - start < job->chunk ? job->guest_size - start : job->chunk);
        if (whole)
            GUARD(engine_chunk_whole(w, start, len));
        else
            GUARD(engine_chunk_extents(w, start, len));
        /* Start write-back now (asynchronous; a no-op on tmpfs), so that
         * dirty pages do not pile up for the final fdatasync. */
        (void)sync_file_range(job->dst.fd, (off_t)(job->dst.base + start), (off_t)len,
                              SYNC_FILE_RANGE_WRITE);
        atomic_fetch_add(&job->done_bytes, len);
        engine_maybe_report(job);
    }
    return OK_RESULT;
}

static void *engine_worker_main(void *arg)
{
    struct engine_worker *w = arg;

    w->rc = engine_worker_run(w);
    if (!is_ok(w->rc))
        engine_record_error(w->job);
    crypto_xts_free(&w->src_xts);
    crypto_xts_free(&w->dst_xts);
    return NULL;
}

/* --- setup --- */

/* Buffers hold guest plaintext: kept out of core dumps and fork children,
 * wiped before release. Not locked: guest data is not key material, and
 * 4 MiB per thread would exceed a default RLIMIT_MEMLOCK. */
static RESULT engine_buf_alloc(size_t len, uint8_t **out)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return ENGINE_FAIL_ERRNO(ERR_NOMEM);
    (void)madvise(p, len, MADV_DONTDUMP);
    (void)madvise(p, len, MADV_DONTFORK);
    *out = p;
    return OK_RESULT;
}

static void engine_buf_free(uint8_t **p, size_t len)
{
    if (*p == NULL)
        return;
    secret_wipe(*p, len);
    munmap(*p, len);
    *p = NULL;
}

static RESULT engine_end_init(const struct disk_end *in, uint64_t guest_size, bool is_src,
                              struct engine_end *out)
{
    struct stat st;
    uint64_t need;

    ENSURE(in->fd >= 0, ERR_INVALID_ARG);
    if (in->luks) {
        ENSURE(in->master_key != NULL, ERR_NULL_ARG);
        ENSURE(in->payload_offset % ENGINE_SECTOR == 0, ERR_INVALID_ARG);
    } else {
        /* A plaintext image starts at its first byte; anything else is a
         * caller mixing up its ends. */
        ENSURE(in->master_key == NULL && in->payload_offset == 0, ERR_INVALID_ARG);
    }
    ENSURE_ADD(in->payload_offset, guest_size, &need);
    ENSURE(need <= (uint64_t)INT64_MAX, ERR_OVERFLOW);
    if (fstat(in->fd, &st) != 0)
        return ENGINE_FAIL_ERRNO(ERR_IO);
    if (S_ISREG(st.st_mode)) {
        /* A short source would otherwise pass as a trailing hole. */
        if (is_src && (uint64_t)st.st_size < need) {
            RAISE(ERR_IO);
            return err_detail("the source has %llu bytes, the disk needs %llu",
                              (unsigned long long)st.st_size, (unsigned long long)need);
        }
        /* Skipped holes must read as holes: the destination is new and
         * exactly as long as the disk. */
        if (!is_src && (uint64_t)st.st_size != need) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("the destination has %llu bytes, the disk needs exactly %llu",
                              (unsigned long long)st.st_size, (unsigned long long)need);
        }
    }
    out->fd = in->fd;
    out->luks = in->luks;
    out->master_key = in->master_key;
    out->base = in->payload_offset;
    return OK_RESULT;
}

static RESULT engine_not_same_file(int a, int b)
{
    struct stat sa, sb;

    if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
        return ENGINE_FAIL_ERRNO(ERR_IO);
    if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("source and destination are the same file");
    }
    return OK_RESULT;
}

/* Whether the source answers SEEK_DATA (every Linux file system does, some
 * by calling the whole file data; a pipe or an odd device may not). */
static bool engine_probe_sparse(const struct engine_end *src)
{
    off_t r = lseek(src->fd, (off_t)src->base, SEEK_DATA);

    return r >= 0 || errno == ENXIO;
}

static unsigned engine_thread_count(const struct disk_copy_opts *o, uint64_t chunks)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t n = o->threads != 0 ? o->threads : (online > 0 ? (uint64_t)online : 1);

    if (n > ENGINE_MAX_THREADS)
        n = ENGINE_MAX_THREADS;
    if (n > chunks)
        n = chunks;
    return n == 0 ? 1 : (unsigned)n;
}

vs_result disk_copy(const struct disk_end *src, const struct disk_end *dst, uint64_t guest_size,
                    const struct disk_copy_opts *opts)
{
    static const struct disk_copy_opts defaults = {0};
    vs_result rc = OK_RESULT;
    struct engine_job *job = NULL;
    struct engine_worker *workers = NULL;
    pthread_t *tids = NULL;
    unsigned nthreads = 0, started = 0;

    if (opts == NULL)
        opts = &defaults;
    ENSURE(guest_size % ENGINE_SECTOR == 0, ERR_INVALID_ARG);
    ENSURE(opts->chunk_bytes % ENGINE_SECTOR == 0 && opts->chunk_bytes <= ENGINE_MAX_CHUNK,
           ERR_INVALID_ARG);
    ENSURE(src->fd != dst->fd, ERR_INVALID_ARG);

    job = calloc(1, sizeof(*job));
    ENSURE(job != NULL, ERR_NOMEM);
    if (pthread_mutex_init(&job->lock, NULL) != 0) {
        free(job);
        BAIL(ERR_NOMEM);
    }
    GUARD_OUT(engine_end_init(src, guest_size, true, &job->src));
    GUARD_OUT(engine_end_init(dst, guest_size, false, &job->dst));
    GUARD_OUT(engine_not_same_file(src->fd, dst->fd));
    job->guest_size = guest_size;
    job->chunk = opts->chunk_bytes != 0 ? opts->chunk_bytes : ENGINE_DEFAULT_CHUNK;
    job->chunks = (guest_size + job->chunk - 1) / job->chunk;
    job->src_sparse = engine_probe_sparse(&job->src);
    job->opts = opts;
    atomic_init(&job->next_chunk, 0);
    atomic_init(&job->done_bytes, 0);
    atomic_init(&job->next_report, ENGINE_PROGRESS_STEP);
    atomic_init(&job->stop, false);

    nthreads = engine_thread_count(opts, job->chunks);
    workers = calloc(nthreads, sizeof(*workers));
    tids = calloc(nthreads, sizeof(*tids));
    ENSURE_OUT(workers != NULL && tids != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < nthreads; i++) {
        workers[i].job = job;
        GUARD_OUT(engine_buf_alloc(job->chunk, &workers[i].buf));
    }

    /* Workers 1..n-1 on threads, worker 0 on this one. A thread that cannot
     * be started only makes the run slower: the others take its chunks. */
    for (started = 1; started < nthreads; started++)
        if (pthread_create(&tids[started], NULL, engine_worker_main, &workers[started]) != 0)
            break;
    if (job->chunks > 0)
        engine_worker_main(&workers[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(tids[i], NULL);

    if (job->failed) {
        rc = err_restore(&job->first_error);
        goto out;
    }
    if (engine_cancelled(job)) {
        rc = RAISE(ERR_CANCELLED);
        err_detail("after the last chunk");
        goto out;
    }
    if (fdatasync(job->dst.fd) != 0) {
        rc = ENGINE_FAIL_ERRNO(ERR_IO);
        err_detail("fdatasync of the destination");
        goto out;
    }
    if (opts->progress != NULL)
        opts->progress(opts->progress_ctx, guest_size, guest_size);
out:
    if (workers != NULL)
        for (unsigned i = 0; i < nthreads; i++)
            engine_buf_free(&workers[i].buf, job->chunk);
    free(workers);
    free(tids);
    pthread_mutex_destroy(&job->lock);
    free(job);
    return rc;
}
