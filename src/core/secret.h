/*
 * secret.h - memory for keys and other secrets.
 *
 * secret_alloc() gives page-aligned memory that is
 *   - locked in RAM (mlock), so it is never written to swap;
 *   - excluded from core dumps (MADV_DONTDUMP) and not inherited by a fork
 *     child (MADV_DONTFORK);
 *   - followed by an inaccessible guard page, so a linear overflow past the
 *     last page of the allocation faults instead of reaching a neighbour
 *     (the slack between len and the end of that page is not guarded: the
 *     data is page-aligned, which matters more for locking and for I/O);
 *   - wiped with explicit_bzero before it is released.
 *
 * Layout of one allocation (P = page size):
 *
 *     [ header page ][ data: len rounded up to P ][ guard page, PROT_NONE ]
 *                    ^ pointer returned
 *
 * The header (sizes and canaries) ends exactly where the data begins;
 * secret_free() aborts if a canary was overwritten (an underflow), since
 * memory is then corrupt.
 *
 * If the memory cannot be locked (RLIMIT_MEMLOCK too small for an unprivileged
 * user), secret_alloc fails with ERR_SECRET_MLOCK rather than hand out memory
 * that could be swapped: fail closed. Each allocation costs at least three
 * pages and a few system calls; code that holds many keys pools them.
 */
#ifndef VMSEAL_CORE_SECRET_H
#define VMSEAL_CORE_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/result.h"

/* Allocates len (> 0) bytes of zeroed secret memory into *out. */
RESULT secret_alloc(size_t len, void **out) __attribute__((nonnull));

/* Wipes, unlocks and releases *p, then sets *p = NULL. Accepts p or *p NULL. */
void secret_free(void **p);

/* The len given to secret_alloc for p (0 for NULL). */
size_t secret_size(const void *p);

/* Zeroes n bytes in a way the compiler may not remove. Accepts NULL with 0. */
void secret_wipe(void *p, size_t n);

/* Compares n bytes in time that depends only on n. True if equal. For MACs,
 * tags, tokens, password hashes: never memcmp. */
bool secret_equal(const void *a, const void *b, size_t n) __attribute__((nonnull));

/* Hardens the whole process for holding keys: not dumpable (no core file,
 * no same-user ptrace) and RLIMIT_CORE = 0. OpenSSL keeps key schedules in
 * its own heap, so every program that holds keys calls this at start. */
RESULT secret_harden_process(void);

/* Counters for tests and diagnostics: live allocations and bytes. */
struct secret_stats {
    size_t live_allocations;
    size_t live_bytes;
};
void secret_get_stats(struct secret_stats *out) __attribute__((nonnull));

#endif
