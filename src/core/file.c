/*
 * file.c - atomic writes and bounded reads. See file.h.
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/secret.h"

static RESULT file_raise_errno(enum err_code code, int e, const char *what, const char *path,
                               const char *file, int line)
{
    err_raise(code, file, line);
    err_detail("%s %s", what, path);
    return err_errno(e);
}

#define FILE_FAIL(what, path)                                            \
    file_raise_errno(errno == ENOENT                     ? ERR_NOT_FOUND \
                     : errno == EACCES || errno == EPERM ? ERR_PERM      \
                                                         : ERR_IO,       \
                     errno, (what), (path), __FILE__, __LINE__)

/* Splits path into its directory ("." if none) in dir (size PATH_MAX). */
static RESULT file_dirname(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        ENSURE(size >= 2, ERR_TOO_LARGE);
        memcpy(dir, ".", 2);
        return OK_RESULT;
    }
    n = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
    ENSURE(n < size, ERR_TOO_LARGE);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return OK_RESULT;
}

vs_result file_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return FILE_FAIL("opening directory", dir);
    if (fsync(fd) != 0) {
        vs_result rc = FILE_FAIL("fsync of directory", dir);
        close(fd);
        return rc;
    }
    close(fd);
    return OK_RESULT;
}

static RESULT file_write_fully(int fd, const uint8_t *p, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return FILE_FAIL("writing", path);
        }
        p += n;
        len -= (size_t)n;
    }
    return OK_RESULT;
}

vs_result file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    vs_result rc = OK_RESULT;
    char dir[PATH_MAX], tmp[PATH_MAX];
    uint8_t rnd[8];
    char rnd_hex[sizeof(rnd) * 2 + 1];
    int fd = -1, n;

    ENSURE(len == 0 || data != NULL, ERR_NULL_ARG);
    GUARD(file_dirname(path, dir, sizeof(dir)));
    /* A random name: O_EXCL refuses to follow anything planted there. */
    GUARD(crypto_random(rnd, sizeof(rnd)));
    GUARD(hex_encode(rnd, sizeof(rnd), rnd_hex, sizeof(rnd_hex)));
    n = snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, rnd_hex);
    ENSURE(n > 0 && (size_t)n < sizeof(tmp), ERR_TOO_LARGE);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return FILE_FAIL("creating", tmp);
    /* The umask may have cleared bits the caller asked for. */
    if (fchmod(fd, mode) != 0)
        GUARD_OUT(FILE_FAIL("setting the mode of", tmp));
    GUARD_OUT(file_write_fully(fd, data, len, tmp));
    if (fsync(fd) != 0)
        GUARD_OUT(FILE_FAIL("fsync of", tmp));
    if (close(fd) != 0) {
        fd = -1;
        GUARD_OUT(FILE_FAIL("closing", tmp));
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        GUARD_OUT(FILE_FAIL("renaming over", path));
    /* From here the new content is in place; only its durability remains.
     * A failure now must not be read as "the old content is still there". */
    rc = file_fsync_dir(dir);
    if (!is_ok(rc))
        err_detail("%s was replaced, but the directory fsync failed: durability unknown", path);
    return rc;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

vs_result file_read_all(const char *path, size_t limit, struct buf *out)
{
    vs_result rc = OK_RESULT;
    size_t start = buf_len(out), total = 0;
    struct stat st;
    int fd;

    uint8_t chunk[8192];

    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return FILE_FAIL("opening", path);
    if (fstat(fd, &st) != 0)
        GUARD_OUT(FILE_FAIL("stat of", path));
    if (!S_ISREG(st.st_mode)) {
        rc = RAISE(ERR_IO);
        err_detail("%s is not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > limit) {
        rc = RAISE(ERR_TOO_LARGE);
        err_detail("%s is %lld bytes, more than the limit of %zu", path, (long long)st.st_size,
                   limit);
        goto out;
    }
    /* Read until EOF, not st_size bytes: the file may change under us, and
     * the limit holds whatever it does. */
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            GUARD_OUT(FILE_FAIL("reading", path));
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > limit) {
            rc = RAISE(ERR_TOO_LARGE);
            err_detail("%s grew past the limit of %zu bytes", path, limit);
            goto out;
        }
        GUARD_OUT(buf_write_bytes(out, chunk, (size_t)n));
    }
out:
    secret_wipe(chunk, sizeof(chunk)); /* the file may hold a key */
    close(fd);
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}

vs_result file_mkdir(const char *dir, mode_t mode)
{
    struct stat st;

    if (mkdir(dir, mode) == 0) {
        char parent[PATH_MAX];
        GUARD(file_dirname(dir, parent, sizeof(parent)));
        return file_fsync_dir(parent);
    }
    if (errno != EEXIST)
        return FILE_FAIL("creating directory", dir);
    if (stat(dir, &st) != 0)
        return FILE_FAIL("stat of", dir);
    if (!S_ISDIR(st.st_mode)) {
        RAISE(ERR_EXISTS);
        return err_detail("%s exists and is not a directory", dir);
    }
    return OK_RESULT;
}
