/*
 * engine.c - the bulk engine. See engine.h for the contract.
 *
 * A pipeline of three stages over a fixed set of chunk buffers ("slots",
 * 4 MiB each by default), handed from stage to stage through three queues:
 *
 *   free --> readers (2) --> filled --> cipher threads (opts.threads) --> ready
 *     ^                                                                    |
 *     +------------------------ writer (the calling thread) <--------------+
 *
 *   - Readers take the guest's chunks in increasing order from one counter,
 *     find the source's data extents in the chunk (SEEK_DATA / SEEK_HOLE),
 *     and pread them into the slot. Two readers keep two reads in flight,
 *     which hides read latency (a page cache miss on a disk, a host's page
 *     fault under a VM); buffered reads of one file run in parallel.
 *   - Cipher threads own their XTS contexts (one per key) and decrypt and
 *     re-encrypt each extent in place in the slot, slice by slice, so that
 *     the second pass finds the data in cache. They never wait for I/O: with
 *     threads = CPUs, the CPUs do cipher work while I/O is in flight.
 *   - One writer: buffered writes to one file are serialized by the file
 *     system (the inode lock of ext4, XFS, tmpfs), so a second writer would
 *     add nothing but spinning on that lock. It pwrites the extents, starts
 *     write-back of them (sync_file_range, asynchronous: the final fdatasync
 *     has little left), counts progress and calls the progress callback: one
 *     thread, so reports are serialized and monotonic by construction.
 *
 *   Plaintext to plaintext has no cipher stage: readers feed the writer.
 *
 * Sparse source: what a hole becomes is engine.h's rule. Extents are
 * widened to whole 512-byte sectors. Each reader remembers the last extent
 * the file system reported and reuses it while its chunks fall inside: on
 * tmpfs, SEEK_HOLE walks the page cache up to the next hole, so asking anew
 * for every chunk of a fully written disk would cost time quadratic in its
 * size. A chunk with no data still travels the pipeline, empty, so that the
 * writer counts it.
 *
 * Errors and cancellation: the first error of any thread is kept, with its
 * file, line and detail, sets `stop`, and wakes every waiting thread; the
 * caller gets it back on its own thread (err_restore). Readers and the
 * writer check the cancel flag once per chunk.
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
#define ENGINE_READERS 2U
#define ENGINE_MAX_SLOTS 64U
#define ENGINE_MAX_BUFFER_BYTES ((size_t)256 << 20) /* all slots together */
/* Decrypt and re-encrypt this much at a time, so that the second pass
 * finds the data in L2 instead of memory. */
#define ENGINE_SLICE ((size_t)128 << 10)
#define ENGINE_PROGRESS_STEP ((uint64_t)64 << 20)

/* One side of the copy, as the threads see it. */
struct engine_end {
    int fd;
    bool luks;
    const uint8_t *master_key;
    uint64_t base; /* file offset of guest byte 0 */
};

/* Data to transform and write, relative to the slot's chunk. */
struct engine_extent {
    size_t off, len;
};

struct engine_slot {
    uint8_t *buf;   /* one chunk, mmap'ed */
    uint64_t start; /* guest offset of the chunk */
    size_t len;     /* its length (the last chunk may be short) */
    struct engine_extent *extents;
    size_t n_extents;
};

/* A ring of slot numbers. */
struct engine_queue {
    unsigned *items;
    unsigned head, count;
    pthread_cond_t nonempty;
};

struct engine_job {
    struct engine_end src, dst;
    uint64_t guest_size;
    size_t chunk;
    uint64_t chunks;
    size_t max_extents; /* per slot: a chunk of alternating sectors */
    bool src_sparse;    /* the source answers SEEK_DATA / SEEK_HOLE */
    bool whole;         /* plaintext into LUKS: holes become encrypted zeros */
    bool has_cipher;    /* a LUKS end: readers feed cipher threads, else the writer */
    const struct disk_copy_opts *opts;

    struct engine_slot *slots;
    unsigned n_slots;
    atomic_uint_fast64_t next_chunk;

    pthread_mutex_t lock; /* guards the queues, the counters below, the error */
    struct engine_queue free, filled, ready;
    unsigned readers_left, ciphers_left;
    bool stop;
    bool failed;
    struct err_state first_error;
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

/* Raises ERR_CANCELLED (a raiser: its result may be dropped). */
static vs_result engine_cancel_error(void)
{
    RAISE(ERR_CANCELLED);
    return err_detail("the copy was cancelled: the destination is incomplete");
}

/* Keeps the first error of the run (the one that caused the others) and
 * stops every stage. */
static void engine_fail(struct engine_job *job)
{
    pthread_mutex_lock(&job->lock);
    if (!job->failed) {
        job->failed = true;
        job->first_error = *err_last();
    }
    job->stop = true;
    pthread_cond_broadcast(&job->free.nonempty);
    pthread_cond_broadcast(&job->filled.nonempty);
    pthread_cond_broadcast(&job->ready.nonempty);
    pthread_mutex_unlock(&job->lock);
}

/* --- queues --- */

static void engine_put(struct engine_job *job, struct engine_queue *q, unsigned slot)
{
    pthread_mutex_lock(&job->lock);
    q->items[(q->head + q->count) % job->n_slots] = slot;
    q->count++;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&job->lock);
}

/* Takes a slot from q, waiting while it is empty and *producers (NULL:
 * never done) is not zero. False when the run stops or the producers are
 * done and q is empty. */
static bool engine_take(struct engine_job *job, struct engine_queue *q, const unsigned *producers,
                        unsigned *slot)
{
    bool got = false;

    pthread_mutex_lock(&job->lock);
    while (q->count == 0 && !job->stop && (producers == NULL || *producers > 0))
        pthread_cond_wait(&q->nonempty, &job->lock);
    if (!job->stop && q->count > 0) {
        *slot = q->items[q->head];
        q->head = (q->head + 1) % job->n_slots;
        q->count--;
        got = true;
    }
    pthread_mutex_unlock(&job->lock);
    return got;
}

/* A stage's thread is done: when it was the last of its stage, the next
 * stage must stop waiting for more. */
static void engine_producer_done(struct engine_job *job, unsigned *left, struct engine_queue *next)
{
    pthread_mutex_lock(&job->lock);
    if (--*left == 0)
        pthread_cond_broadcast(&next->nonempty);
    pthread_mutex_unlock(&job->lock);
}

/* --- I/O --- */

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

/* --- readers --- */

/* What one reader last learnt of the source, in guest offsets:
 * [from, data) is a hole, [data, hole) data; valid for offsets in
 * [from, limit). */
struct engine_known {
    uint64_t from, data, hole, limit;
};

/* The first sector-aligned data extent [*data, *hole) of the source at or
 * after guest offset `from`, clipped to `end`; *data == end when there is
 * none. A sector that holds any data byte counts as data. */
static RESULT engine_next_extent(const struct engine_job *job, struct engine_known *k,
                                 uint64_t from, uint64_t end, uint64_t *data, uint64_t *hole)
{
    const struct engine_end *s = &job->src;

    if (!job->src_sparse) {
        *data = from;
        *hole = end;
        return OK_RESULT;
    }
    if (!(k->from <= from && from < k->limit)) {
        off_t d = lseek(s->fd, (off_t)(s->base + from), SEEK_DATA), h;
        k->from = from;
        if (d < 0) {
            if (errno != ENXIO) /* ENXIO: only a hole (or the end of file) follows */
                return ENGINE_FAIL_ERRNO(ERR_IO);
            k->data = k->hole = job->guest_size;
            k->limit = UINT64_MAX;
        } else {
            /* d >= base + from: SEEK_DATA never goes backwards. */
            k->data = ((uint64_t)d - s->base) / ENGINE_SECTOR * ENGINE_SECTOR;
            if (k->data < from)
                k->data = from;
            if (k->data >= job->guest_size) {
                k->data = k->hole = job->guest_size;
                k->limit = UINT64_MAX;
            } else {
                h = lseek(s->fd, (off_t)(s->base + k->data), SEEK_HOLE);
                if (h < 0)
                    return ENGINE_FAIL_ERRNO(ERR_IO);
                k->hole =
                    ((uint64_t)h - s->base + ENGINE_SECTOR - 1) / ENGINE_SECTOR * ENGINE_SECTOR;
                k->limit = k->hole;
            }
        }
    }
    *data = from > k->data ? from : k->data;
    *hole = k->hole < end ? k->hole : end;
    if (*data >= end)
        *data = *hole = end;
    return OK_RESULT;
}

/* Reads chunk `chunk` into slot s: its data extents, or (plaintext into
 * LUKS) the whole chunk with zeros in the holes. */
static RESULT engine_fill(struct engine_job *job, struct engine_known *k, struct engine_slot *s,
                          uint64_t chunk)
{
    uint64_t start = chunk * job->chunk, pos = start, data = 0, hole = 0, end;

    s->start = start;
    s->len = (size_t)(job->guest_size - start < job->chunk ? job->guest_size - start : job->chunk);
    s->n_extents = 0;
    end = start + s->len;
    while (pos < end) {
        GUARD(engine_next_extent(job, k, pos, end, &data, &hole));
        if (job->whole)
            memset(s->buf + (pos - start), 0, (size_t)(data - pos));
        if (data >= end)
            break;
        GUARD(engine_read_fully(&job->src, s->buf + (data - start), (size_t)(hole - data), data));
        if (!job->whole) {
            struct engine_extent *last = s->n_extents > 0 ? &s->extents[s->n_extents - 1] : NULL;
            if (last != NULL && last->off + last->len == data - start) {
                last->len += (size_t)(hole - data); /* sectors shared by two extents */
            } else {
                ENSURE(s->n_extents < job->max_extents, ERR_INTERNAL);
                s->extents[s->n_extents++] =
                    (struct engine_extent){(size_t)(data - start), (size_t)(hole - data)};
            }
        }
        pos = hole;
    }
    if (job->whole)
        s->extents[s->n_extents++] = (struct engine_extent){0, s->len};
    return OK_RESULT;
}

static void engine_hint_read(const struct engine_job *job, uint64_t chunk)
{
    uint64_t start = chunk * job->chunk;
    uint64_t len = job->guest_size - start < job->chunk ? job->guest_size - start : job->chunk;

    /* Advice only: failure costs speed, never correctness. */
    (void)posix_fadvise(job->src.fd, (off_t)(job->src.base + start), (off_t)len,
                        POSIX_FADV_WILLNEED);
}

static void *engine_reader_main(void *arg)
{
    struct engine_job *job = arg;
    struct engine_queue *next = job->has_cipher ? &job->filled : &job->ready;
    struct engine_known known = {0};
    unsigned slot;

    while (engine_take(job, &job->free, NULL, &slot)) {
        uint64_t chunk = atomic_fetch_add(&job->next_chunk, 1);
        if (chunk >= job->chunks) {
            engine_put(job, &job->free, slot);
            break;
        }
        if (engine_cancelled(job)) {
            (void)engine_cancel_error();
            engine_fail(job);
            break;
        }
        /* The kernel reads the chunk after this one while we read this
         * one (on a disk; a no-op on tmpfs). */
        if (chunk + ENGINE_READERS < job->chunks)
            engine_hint_read(job, chunk + ENGINE_READERS);
        if (!is_ok(engine_fill(job, &known, &job->slots[slot], chunk))) {
            engine_fail(job);
            break;
        }
        engine_put(job, next, slot);
    }
    engine_producer_done(job, &job->readers_left, next);
    return NULL;
}

/* --- cipher threads --- */

/* Decrypts (LUKS source) and encrypts (LUKS destination) len bytes of buf,
 * which hold guest bytes from guest offset off, in place. */
static RESULT engine_transform(struct crypto_xts *src_xts, struct crypto_xts *dst_xts, uint8_t *buf,
                               size_t len, uint64_t off)
{
    for (size_t done = 0; done < len; done += ENGINE_SLICE) {
        size_t n = len - done < ENGINE_SLICE ? len - done : ENGINE_SLICE;
        uint64_t sector = (off + done) / ENGINE_SECTOR;

        /* plain64: the tweak is the sector's number from the payload start
         * (luks1.h), i.e. the guest sector number, for either end. */
        if (src_xts != NULL)
            GUARD(crypto_xts_decrypt(src_xts, sector, ENGINE_SECTOR, buf + done, buf + done, n));
        if (dst_xts != NULL)
            GUARD(crypto_xts_encrypt(dst_xts, sector, ENGINE_SECTOR, buf + done, buf + done, n));
    }
    return OK_RESULT;
}

static RESULT engine_cipher_run(struct engine_job *job)
{
    vs_result rc = OK_RESULT;
    struct crypto_xts *src_xts = NULL, *dst_xts = NULL;
    unsigned slot;

    if (job->src.luks)
        GUARD_OUT(crypto_xts_new(job->src.master_key, &src_xts));
    if (job->dst.luks)
        GUARD_OUT(crypto_xts_new(job->dst.master_key, &dst_xts));
    while (engine_take(job, &job->filled, &job->readers_left, &slot)) {
        struct engine_slot *s = &job->slots[slot];
        for (size_t i = 0; i < s->n_extents; i++)
            GUARD_OUT(engine_transform(src_xts, dst_xts, s->buf + s->extents[i].off,
                                       s->extents[i].len, s->start + s->extents[i].off));
        engine_put(job, &job->ready, slot);
    }
out:
    crypto_xts_free(&src_xts);
    crypto_xts_free(&dst_xts);
    return rc;
}

static void *engine_cipher_main(void *arg)
{
    struct engine_job *job = arg;

    if (!is_ok(engine_cipher_run(job)))
        engine_fail(job);
    engine_producer_done(job, &job->ciphers_left, &job->ready);
    return NULL;
}

/* --- the writer (the calling thread) --- */

static RESULT engine_writer_run(struct engine_job *job)
{
    const struct disk_copy_opts *o = job->opts;
    const unsigned *producers = job->has_cipher ? &job->ciphers_left : &job->readers_left;
    uint64_t done = 0, next_report = ENGINE_PROGRESS_STEP;
    unsigned slot;

    while (engine_take(job, &job->ready, producers, &slot)) {
        struct engine_slot *s = &job->slots[slot];
        if (engine_cancelled(job))
            return engine_cancel_error();
        for (size_t i = 0; i < s->n_extents; i++)
            GUARD(engine_write_fully(&job->dst, s->buf + s->extents[i].off, s->extents[i].len,
                                     s->start + s->extents[i].off));
        /* Start write-back now (asynchronous; a no-op on tmpfs), so that
         * dirty pages do not pile up for the final fdatasync. */
        if (s->n_extents > 0)
            (void)sync_file_range(job->dst.fd, (off_t)(job->dst.base + s->start), (off_t)s->len,
                                  SYNC_FILE_RANGE_WRITE);
        done += s->len;
        engine_put(job, &job->free, slot);
        /* done == total is reported once, by disk_copy, after the sync. */
        if (o->progress != NULL && done >= next_report && done < job->guest_size) {
            o->progress(o->progress_ctx, done, job->guest_size);
            next_report = done + ENGINE_PROGRESS_STEP;
        }
    }
    return OK_RESULT;
}

/* --- setup --- */

/* Buffers hold guest plaintext: kept out of core dumps and fork children,
 * wiped before release. Not locked: guest data is not key material, and
 * several chunks would exceed a default RLIMIT_MEMLOCK. */
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

/* Cipher threads: opts->threads, or one per online CPU; none without a
 * LUKS end; never more than there are chunks. */
static unsigned engine_cipher_threads(const struct engine_job *job)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t n = job->opts->threads != 0 ? job->opts->threads : (online > 0 ? (uint64_t)online : 1);

    if (!job->src.luks && !job->dst.luks)
        return 0;
    if (n > ENGINE_MAX_THREADS)
        n = ENGINE_MAX_THREADS;
    if (n > job->chunks)
        n = job->chunks;
    return n == 0 ? 1 : (unsigned)n;
}

static RESULT engine_queue_init(struct engine_queue *q, unsigned n)
{
    q->items = calloc(n, sizeof(*q->items));
    ENSURE(q->items != NULL, ERR_NOMEM);
    if (pthread_cond_init(&q->nonempty, NULL) != 0) {
        free(q->items);
        q->items = NULL;
        BAIL(ERR_NOMEM);
    }
    return OK_RESULT;
}

static void engine_queue_free(struct engine_queue *q)
{
    if (q->items == NULL)
        return;
    pthread_cond_destroy(&q->nonempty);
    free(q->items);
    q->items = NULL;
}

/* The slots and queues for n_slots chunks in flight; all slots free. */
static RESULT engine_job_alloc(struct engine_job *job, unsigned n_slots)
{
    job->n_slots = n_slots;
    job->slots = calloc(n_slots, sizeof(*job->slots));
    ENSURE(job->slots != NULL, ERR_NOMEM);
    GUARD(engine_queue_init(&job->free, n_slots));
    GUARD(engine_queue_init(&job->filled, n_slots));
    GUARD(engine_queue_init(&job->ready, n_slots));
    for (unsigned i = 0; i < n_slots; i++) {
        struct engine_slot *s = &job->slots[i];
        GUARD(engine_buf_alloc(job->chunk, &s->buf));
        s->extents = calloc(job->max_extents, sizeof(*s->extents));
        ENSURE(s->extents != NULL, ERR_NOMEM);
        job->free.items[i] = i;
    }
    job->free.count = n_slots;
    return OK_RESULT;
}

static void engine_job_free(struct engine_job *job)
{
    if (job->slots != NULL) {
        for (unsigned i = 0; i < job->n_slots; i++) {
            engine_buf_free(&job->slots[i].buf, job->chunk);
            free(job->slots[i].extents);
        }
        free(job->slots);
    }
    engine_queue_free(&job->free);
    engine_queue_free(&job->filled);
    engine_queue_free(&job->ready);
    pthread_mutex_destroy(&job->lock);
    free(job);
}

vs_result disk_copy(const struct disk_end *src, const struct disk_end *dst, uint64_t guest_size,
                    const struct disk_copy_opts *opts)
{
    static const struct disk_copy_opts defaults = {0};
    vs_result rc = OK_RESULT;
    struct engine_job *job = NULL;
    pthread_t *tids = NULL;
    unsigned readers, ciphers, started = 0;

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
    job->opts = opts;
    job->guest_size = guest_size;
    job->chunk = opts->chunk_bytes != 0 ? opts->chunk_bytes : ENGINE_DEFAULT_CHUNK;
    job->chunks = (guest_size + job->chunk - 1) / job->chunk;
    /* An extent and the hole after it take two sectors or more. */
    job->max_extents = job->chunk / (2 * ENGINE_SECTOR) + 1;
    job->src_sparse = engine_probe_sparse(&job->src);
    job->whole = job->dst.luks && !job->src.luks;
    atomic_init(&job->next_chunk, 0);

    ciphers = engine_cipher_threads(job);
    job->has_cipher = ciphers > 0;
    readers = job->chunks < ENGINE_READERS ? (unsigned)job->chunks : ENGINE_READERS;
    if (readers == 0)
        readers = 1;
    /* Enough slots that every thread has one and each queue can hold a
     * few more, so that no stage waits on another's bookkeeping. */
    unsigned n_slots = 2 * ciphers + readers + 2;
    if (n_slots > ENGINE_MAX_SLOTS)
        n_slots = ENGINE_MAX_SLOTS;
    /* Large chunks: fewer slots (threads then wait for one; two suffice to
     * make progress). */
    if (n_slots > ENGINE_MAX_BUFFER_BYTES / job->chunk)
        n_slots = (unsigned)(ENGINE_MAX_BUFFER_BYTES / job->chunk);
    if (n_slots < 2)
        n_slots = 2;
    GUARD_OUT(engine_job_alloc(job, n_slots));
    job->readers_left = readers;
    job->ciphers_left = ciphers;

    tids = calloc(readers + ciphers, sizeof(*tids));
    ENSURE_OUT(tids != NULL, ERR_NOMEM);
    for (; started < readers + ciphers; started++) {
        void *(*fn)(void *) = started < readers ? engine_reader_main : engine_cipher_main;
        int e = pthread_create(&tids[started], NULL, fn, job);
        if (e != 0) {
            rc = engine_fail_errno(ERR_NOMEM, e, __FILE__, __LINE__);
            err_detail("starting the engine's threads");
            engine_fail(job);
            break;
        }
    }
    if (started == readers + ciphers && !is_ok(engine_writer_run(job)))
        engine_fail(job);
    /* Threads that could not start never report done: stop the others. */
    if (started < readers + ciphers)
        engine_fail(job);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);

    if (job->failed) {
        rc = err_restore(&job->first_error);
        goto out;
    }
    if (engine_cancelled(job)) {
        rc = engine_cancel_error();
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
    free(tids);
    engine_job_free(job);
    return rc;
}
