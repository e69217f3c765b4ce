/*
 * engine.h - vmseal's bulk engine: encrypt, decrypt, recrypt (deep rekey,
 * clone with a new DEK) and plain copy of base disk images.
 *
 * Source and destination are raw images: plaintext, or LUKS1 (payload at
 * an offset, XTS-AES-256 plain64 sectors of 512 bytes). The engine reads
 * the source, transforms each range (decrypt with the source DEK, encrypt
 * with the destination DEK) and writes the destination, with several
 * threads (each its own XTS contexts) on large chunks.
 *
 * Sparse-aware: ranges the guest never wrote stay unallocated.
 *  - In a LUKS1 source, a hole in the payload was never written (vmseal
 *    creates LUKS disks sparse; QEMU writes only what the guest writes): it
 *    is skipped and stays a hole in the destination.
 *  - In a plaintext source, a hole reads as zeros to the guest, and zeros
 *    can be data (an imported image's zeroed blocks). Into a plaintext
 *    destination it stays a hole; into a LUKS1 destination it is written as
 *    encrypted zeros, so the guest reads zeros there as before.
 * The destination must be a new file of the right size (payload sparse).
 * At the end the destination is fdatasync'ed; the source is never written.
 */
#ifndef VMSEAL_DISK_ENGINE_H
#define VMSEAL_DISK_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/result.h"
#include "disk/luks1.h"

struct disk_end {
    int fd;
    bool luks; /* false: plaintext raw */
    /* LUKS1 only: the DEK (secret memory, LUKS1_MASTER_KEY_LEN bytes) and
     * where the payload starts (luks1_info.payload_offset_bytes). */
    const uint8_t *master_key;
    uint64_t payload_offset;
};

/* Called from worker threads, serialized by the engine, at most every
 * 64 MiB or so and once at the end: done and total are guest bytes. */
typedef void (*disk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct disk_copy_opts {
    unsigned threads;      /* 0: the number of online CPUs */
    size_t chunk_bytes;    /* 0: 4 MiB; a multiple of 512 */
    disk_progress_fn progress;
    void *progress_ctx;
    const atomic_bool *cancel; /* when it becomes true: stop, ERR_CANCELLED */
};

/* Copies guest_size bytes (a multiple of 512) from src to dst, transforming
 * as their kinds say. opts may be NULL (defaults). On error (I/O, a short
 * source, cancellation) the destination's contents are unspecified: the
 * caller deletes it. */
RESULT disk_copy(const struct disk_end *src, const struct disk_end *dst, uint64_t guest_size,
                 const struct disk_copy_opts *opts) __attribute__((nonnull(1, 2)));

#endif
