/*
 * proc.h - running external programs (qemu-img, QEMU, swtpm, cryptsetup)
 * without a shell, with a clean environment, chosen inherited descriptors
 * (how secrets are handed over: a pipe holding the secret) and bounded
 * output capture.
 */
#ifndef VMSEAL_CORE_PROC_H
#define VMSEAL_CORE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/result.h"

#define PROC_MAX_ARGS 512
#define PROC_MAX_FDS 64

/* An argument vector under construction, plus descriptors the child will
 * inherit. Strings are copied. Descriptors added with proc_args_add_fd are
 * owned by the args (closed by proc_args_free); in the child each keeps its
 * number (CLOEXEC cleared after fork), every other descriptor but 0-2 is
 * closed. */
struct proc_args {
    char *argv[PROC_MAX_ARGS + 1];
    size_t argc;
    int fds[PROC_MAX_FDS];
    size_t fd_count;
};

void proc_args_init(struct proc_args *a) __attribute__((nonnull));
void proc_args_free(struct proc_args *a); /* accepts NULL; closes owned fds */
RESULT proc_args_add(struct proc_args *a, const char *arg) __attribute__((nonnull));
RESULT proc_args_addf(struct proc_args *a, const char *fmt, ...)
    __attribute__((nonnull, format(printf, 2, 3)));

/* Hands fd (>= 3, not already added) to a: the child inherits it under the
 * same number, and proc_args_free closes it. On error the caller still owns
 * fd. */
RESULT proc_args_add_fd(struct proc_args *a, int fd) __attribute__((nonnull));

/* Makes a pipe holding `len` bytes of secret (len <= 4096), closes its
 * write end, and adds the read end to a; *fd_out gets its number, for
 * "/dev/fd/N". The data sits in the kernel's pipe buffer only. */
RESULT proc_args_add_secret(struct proc_args *a, const void *secret, size_t len, int *fd_out)
    __attribute__((nonnull));

/* Runs a->argv[0] (a path, or searched in PATH), stdin from /dev/null,
 * waits up to timeout_ms (0: no limit; on timeout the child gets SIGKILL and
 * ERR_CHILD). Captures up to 1 MiB of stdout and of stderr into out/err
 * (either may be NULL: discarded). *status gets the exit code (or 128+sig).
 * Returns OK whenever the child ran; the caller judges the status. */
RESULT proc_run(struct proc_args *a, int timeout_ms, struct buf *out, struct buf *err, int *status)
    __attribute__((nonnull(1, 5)));

/* Like proc_run, but an exit status other than 0 becomes ERR_CHILD with a
 * detail naming the program and the last line of its stderr. */
RESULT proc_run_ok(struct proc_args *a, int timeout_ms, struct buf *out)
    __attribute__((nonnull(1)));

/* Starts a long-running child (QEMU, swtpm) in its own process group,
 * stdin from /dev/null, stdout and stderr appended to log_path (created
 * 0600). Does not wait. */
RESULT proc_spawn(struct proc_args *a, const char *log_path, pid_t *pid) __attribute__((nonnull));

#endif
