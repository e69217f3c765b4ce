/*
 * input.c - passphrases, PEM files, paths and new files. See input.h.
 */
#include "cli/input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "core/file.h"
#include "core/secret.h"

#define CLI_FAIL(code, ...)                   \
    do {                                      \
        vs_result cli_fail_rc_ = RAISE(code); \
        err_detail(__VA_ARGS__);              \
        return cli_fail_rc_;                  \
    } while (0)

vs_result cli_passphrase_from_text(const uint8_t *data, size_t len, struct buf *out)
{
    size_t n = 0;

    ENSURE(len == 0 || data != NULL, ERR_NULL_ARG);
    while (n < len && data[n] != '\n')
        n++;
    if (n < len && n + 1 != len)
        CLI_FAIL(ERR_INVALID_ARG, "the passphrase must be one line");
    if (n > 0 && data[n - 1] == '\r')
        n--;
    if (n == 0)
        CLI_FAIL(ERR_INVALID_ARG, "empty passphrase");
    if (n > CLI_PASSPHRASE_MAX)
        CLI_FAIL(ERR_INVALID_ARG, "the passphrase is longer than %d bytes", CLI_PASSPHRASE_MAX);
    if (memchr(data, '\0', n) != NULL)
        CLI_FAIL(ERR_INVALID_ARG, "the passphrase holds a NUL byte");
    return buf_write_bytes(out, data, n);
}

/* --- from a terminal, with echo off --- */

static volatile sig_atomic_t cli_prompt_signal;

static void cli_on_prompt_signal(int sig)
{
    cli_prompt_signal = sig;
}

static const int cli_prompt_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define CLI_NSIGNALS (sizeof(cli_prompt_signals) / sizeof(cli_prompt_signals[0]))

/* Reads one line from fd into raw (up to its limit), byte by byte so that
 * nothing after the line is consumed. Stops early on a signal. */
static vs_result cli_read_line(int fd, struct buf *raw)
{
    for (;;) {
        uint8_t c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) {
            if (cli_prompt_signal)
                CLI_FAIL(ERR_CANCELLED, "interrupted");
            continue;
        }
        if (n < 0) {
            vs_result rc = RAISE(ERR_IO);
            err_errno(errno);
            err_detail("reading the passphrase from stdin");
            return rc;
        }
        if (n == 0)
            return OK_RESULT;
        if (!is_ok(buf_write_u8(raw, c)))
            CLI_FAIL(ERR_INVALID_ARG, "the passphrase is longer than %d bytes", CLI_PASSPHRASE_MAX);
        if (c == '\n')
            return OK_RESULT;
    }
}

/* Prompts on stderr and reads one line from the terminal on stdin with
 * echo off. The terminal is restored whatever happens, a signal included
 * (then re-raised, so that Ctrl-C still ends the program). */
static vs_result cli_prompt_line(const char *prompt, struct buf *raw)
{
    struct termios saved, quiet;
    struct sigaction on = {.sa_handler = cli_on_prompt_signal}, old[CLI_NSIGNALS];
    vs_result rc;

    if (tcgetattr(STDIN_FILENO, &saved) != 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        return rc;
    }
    cli_prompt_signal = 0;
    sigemptyset(&on.sa_mask);
    for (size_t i = 0; i < CLI_NSIGNALS; i++)
        (void)sigaction(cli_prompt_signals[i], &on, &old[i]);
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    rc = cli_read_line(STDIN_FILENO, raw);
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);
    for (size_t i = 0; i < CLI_NSIGNALS; i++)
        (void)sigaction(cli_prompt_signals[i], &old[i], NULL);
    if (cli_prompt_signal)
        raise(cli_prompt_signal);
    return rc;
}

static vs_result cli_passphrase_stdin(const char *prompt, bool tty, struct buf *out)
{
    vs_result rc = OK_RESULT;
    struct buf raw = {0};

    GUARD_OUT(buf_alloc_secret(&raw, CLI_PASSPHRASE_MAX + 2, CLI_PASSPHRASE_MAX + 2));
    if (tty)
        GUARD_OUT(cli_prompt_line(prompt, &raw));
    else
        GUARD_OUT(cli_read_line(STDIN_FILENO, &raw));
    if (buf_len(&raw) == 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("no passphrase on stdin (give it on stdin, one line, or with "
                   "--passphrase-file FILE)");
        goto out;
    }
    GUARD_OUT(cli_passphrase_from_text(buf_data(&raw), buf_len(&raw), out));
out:
    buf_free(&raw);
    return rc;
}

vs_result cli_read_passphrase(const char *file, const char *prompt, bool confirm, struct buf *out)
{
    vs_result rc = OK_RESULT;
    struct buf raw = {0}, again = {0};

    GUARD(buf_alloc_secret(out, CLI_PASSPHRASE_MAX, CLI_PASSPHRASE_MAX));
    if (file != NULL) {
        GUARD_OUT(buf_alloc_secret(&raw, CLI_PASSPHRASE_MAX + 2, CLI_PASSPHRASE_MAX + 2));
        rc = file_read_all(file, CLI_PASSPHRASE_MAX + 2, &raw);
        if (rc.code == ERR_TOO_LARGE) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("%s: a passphrase file holds one line of at most %d bytes", file,
                       CLI_PASSPHRASE_MAX);
        }
        GUARD_OUT(rc);
        rc = cli_passphrase_from_text(buf_data(&raw), buf_len(&raw), out);
        if (!is_ok(rc)) {
            char why[sizeof(err_last()->detail)];
            snprintf(why, sizeof(why), "%s", err_last()->detail);
            err_detail("%s: %s", file, why);
        }
        goto out;
    }
    bool tty = isatty(STDIN_FILENO) == 1;
    GUARD_OUT(cli_passphrase_stdin(prompt, tty, out));
    if (confirm && tty) {
        GUARD_OUT(buf_alloc_secret(&again, CLI_PASSPHRASE_MAX, CLI_PASSPHRASE_MAX));
        GUARD_OUT(cli_passphrase_stdin("Again: ", true, &again));
        if (buf_len(&again) != buf_len(out) ||
            !secret_equal(buf_data(&again), buf_data(out), buf_len(out))) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("the passphrases do not match");
            goto out;
        }
    }
out:
    buf_free(&raw);
    buf_free(&again);
    if (!is_ok(rc))
        buf_free(out);
    return rc;
}

vs_result cli_read_secret_file(const char *path, const char *what, size_t max, struct buf *out)
{
    vs_result rc = OK_RESULT;
    struct buf raw = {0};
    size_t n;

    GUARD(buf_alloc_secret(out, max, max));
    GUARD_OUT(buf_alloc_secret(&raw, max + 2, max + 2));
    rc = file_read_all(path, max + 2, &raw);
    if (rc.code == ERR_TOO_LARGE) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s: a %s file holds one line of at most %zu bytes", path, what, max);
    }
    GUARD_OUT(rc);
    n = buf_len(&raw);
    if (n > 0 && buf_data(&raw)[n - 1] == '\n') {
        n--;
        if (n > 0 && buf_data(&raw)[n - 1] == '\r')
            n--;
    }
    if (n == 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s: empty %s", path, what);
        goto out;
    }
    if (n > max) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s: the %s is longer than %zu bytes", path, what, max);
        goto out;
    }
    if (memchr(buf_data(&raw), '\n', n) != NULL || memchr(buf_data(&raw), '\r', n) != NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s: the %s must be one line", path, what);
        goto out;
    }
    if (memchr(buf_data(&raw), '\0', n) != NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s: the %s holds a NUL byte", path, what);
        goto out;
    }
    GUARD_OUT(buf_write_bytes(out, buf_data(&raw), n));
out:
    buf_free(&raw);
    if (!is_ok(rc))
        buf_free(out);
    return rc;
}

vs_result cli_read_pem(const char *path, size_t limit, bool secret, struct buf *out)
{
    vs_result rc = OK_RESULT;

    GUARD(secret ? buf_alloc_secret(out, 0, limit) : buf_alloc(out, 0, limit));
    GUARD_OUT(file_read_all(path, limit, out));
    if (buf_len(out) == 0 || memchr(buf_data(out), '\0', buf_len(out)) != NULL ||
        memmem(buf_data(out), buf_len(out), "-----BEGIN ", 11) == NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s is not a PEM file (no -----BEGIN line)", path);
        goto out;
    }
out:
    if (!is_ok(rc))
        buf_free(out);
    return rc;
}

vs_result cli_path_absolute(const char *cwd, const char *path, char *out, size_t size)
{
    char here[PATH_MAX];
    int n;

    if (path[0] == '\0')
        CLI_FAIL(ERR_INVALID_ARG, "an empty path");
    if (path[0] == '/') {
        n = snprintf(out, size, "%s", path);
    } else {
        if (cwd == NULL) {
            if (getcwd(here, sizeof(here)) == NULL) {
                vs_result rc = RAISE(ERR_IO);
                err_errno(errno);
                err_detail("the current directory");
                return rc;
            }
            cwd = here;
        }
        while (path[0] == '.' && path[1] == '/') {
            path += 2;
            while (path[0] == '/')
                path++;
        }
        if (path[0] == '\0')
            CLI_FAIL(ERR_INVALID_ARG, "a path that names a directory");
        size_t clen = strlen(cwd);
        bool slash = clen > 0 && cwd[clen - 1] == '/';
        n = snprintf(out, size, "%s%s%s", cwd, slash ? "" : "/", path);
    }
    if (n < 0 || (size_t)n >= size)
        CLI_FAIL(ERR_TOO_LARGE, "the path is too long");
    return OK_RESULT;
}

vs_result cli_file_create(const char *path, int *fd)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (*fd < 0) {
        int e = errno;
        if (e == EEXIST)
            CLI_FAIL(ERR_EXISTS, "%s exists: vmseal never overwrites a file", path);
        vs_result rc = RAISE(ERR_IO);
        err_errno(e);
        err_detail("creating %s", path);
        return rc;
    }
    return OK_RESULT;
}

vs_result cli_file_finish(const char *path, int fd, const void *data, size_t len)
{
    vs_result rc = OK_RESULT;
    const uint8_t *p = data;
    char dir[PATH_MAX];
    const char *slash;

    ENSURE_OUT(len == 0 || data != NULL, ERR_NULL_ARG);
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = RAISE(ERR_IO);
            err_errno(n < 0 ? errno : EIO);
            err_detail("writing %s", path);
            goto out;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        err_detail("fsync of %s", path);
        goto out;
    }
out:
    if (close(fd) != 0 && is_ok(rc)) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        err_detail("closing %s", path);
    }
    if (!is_ok(rc))
        return rc;
    /* The new name must survive a crash too. */
    slash = strrchr(path, '/');
    if (slash == NULL)
        return file_fsync_dir(".");
    if (slash == path)
        return file_fsync_dir("/");
    if ((size_t)(slash - path) >= sizeof(dir))
        return OK_RESULT;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return file_fsync_dir(dir);
}
