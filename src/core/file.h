/*
 * file.h - durable, atomic file writes and bounded reads.
 *
 * file_write_atomic() replaces a file so that after a crash at any instant
 * the path holds either the complete old content or the complete new one,
 * never a mix, and once it returns OK the new content survives power loss:
 *
 *   1. write to a fresh temporary file in the same directory (same file
 *      system, so the rename below is atomic), created with the final mode;
 *   2. fsync the temporary file (data and size are on disk);
 *   3. rename it over the path (the atomic switch, POSIX rename(2));
 *   4. fsync the directory (the rename itself is on disk).
 *
 * A failure at any step before the rename removes the temporary file and
 * leaves the old content in place. A failure of step 4 is reported too, with
 * a detail saying that the file was replaced but may not survive a power
 * loss: the caller must not assume the old content is still there.
 */
#ifndef VMSEAL_CORE_FILE_H
#define VMSEAL_CORE_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/result.h"

/* Atomically replaces (or creates) path with len bytes of data, mode e.g.
 * 0600. ERR_IO with errno recorded on failure. */
RESULT file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
    __attribute__((nonnull(1)));

/* Appends the whole content of path to out. ERR_NOT_FOUND if it does not
 * exist, ERR_TOO_LARGE if it is larger than limit (nothing is appended),
 * ERR_IO otherwise (including when path is not a regular file: a FIFO or
 * device is refused, never waited on). Symbolic links are followed, as
 * operators expect for configuration files. */
RESULT file_read_all(const char *path, size_t limit, struct buf *out) __attribute__((nonnull));

/* fsyncs the directory dir (after creating, renaming or removing in it). */
RESULT file_fsync_dir(const char *dir) __attribute__((nonnull));

/* Creates dir with mode if it does not exist (parents must exist); if it
 * exists it must be a directory. */
RESULT file_mkdir(const char *dir, mode_t mode) __attribute__((nonnull));

#endif
