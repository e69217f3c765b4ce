/*
 * proc.c - running external programs. See proc.h.
 *
 * How a child is started (proc_launch):
 *
 *   - the program is resolved in the parent against a fixed PATH (never the
 *     caller's environment), and run with execve and a fixed environment:
 *     no shell ever parses anything;
 *   - between fork and execve the child calls only async-signal-safe
 *     functions (the parent may have other threads, holding locks);
 *   - descriptors: 0 is /dev/null, 1 and 2 are what the caller chose, the
 *     descriptors handed to the args keep their numbers with FD_CLOEXEC
 *     cleared, and every other descriptor is closed (close_range), so no
 *     socket, key store or other child's secret pipe leaks into the child
 *     even if some code forgot O_CLOEXEC;
 *   - signal dispositions and the mask are reset: an ignored SIGPIPE in a
 *     server must not be inherited by qemu-img;
 *   - a failed execve is reported to the parent through a CLOEXEC pipe (the
 *     child's errno), so "program missing" is an error, not exit code 127.
 *
 * proc_run then reads stdout and stderr together with poll (a child that
 * fills one pipe while we wait on the other would otherwise deadlock), and
 * waits for the child's exit on a pidfd, with the deadline enforced by
 * SIGKILL to the child's process group.
 */
#include "core/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/secret.h"

/* The only environment a child gets. */
#define PROC_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
static char *const proc_env[] = {(char *)"PATH=" PROC_PATH, (char *)"LC_ALL=C", NULL};

#define PROC_CAPTURE_MAX ((size_t)1 << 20)
#define PROC_SECRET_MAX 4096 /* PIPE_BUF: one atomic write, fits any pipe */
#define PROC_ARG_MAX 131072  /* one argument with its NUL: Linux MAX_ARG_STRLEN */

static vs_result proc_sys_fail(enum err_code code, const char *file, int line, const char *what)
{
    int e = errno;

    err_raise(code, file, line);
    err_detail("%s", what);
    return err_errno(e);
}
#define PROC_SYS(what) proc_sys_fail(ERR_IO, __FILE__, __LINE__, (what))

/* --- argument vectors --- */

void proc_args_init(struct proc_args *a)
{
    memset(a, 0, sizeof(*a));
    for (size_t i = 0; i < PROC_MAX_FDS; i++)
        a->fds[i] = -1;
}

void proc_args_free(struct proc_args *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->argc; i++)
        free(a->argv[i]);
    for (size_t i = 0; i < a->fd_count; i++)
        if (a->fds[i] >= 0)
            close(a->fds[i]);
    proc_args_init(a);
}

static RESULT proc_args_take(struct proc_args *a, char *s)
{
    if (a->argc >= PROC_MAX_ARGS) {
        free(s);
        err_raise(ERR_TOO_LARGE, __FILE__, __LINE__);
        return err_detail("more than %d arguments", PROC_MAX_ARGS);
    }
    a->argv[a->argc++] = s;
    a->argv[a->argc] = NULL;
    return OK_RESULT;
}

vs_result proc_args_add(struct proc_args *a, const char *arg)
{
    char *s;

    ENSURE(strnlen(arg, PROC_ARG_MAX) < PROC_ARG_MAX, ERR_TOO_LARGE);
    s = strdup(arg);
    ENSURE(s != NULL, ERR_NOMEM);
    return proc_args_take(a, s);
}

vs_result proc_args_addf(struct proc_args *a, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ENSURE(n >= 0, ERR_INVALID_ARG);
    ENSURE(n < PROC_ARG_MAX, ERR_TOO_LARGE);
    s = malloc((size_t)n + 1);
    ENSURE(s != NULL, ERR_NOMEM);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return proc_args_take(a, s);
}

vs_result proc_args_add_fd(struct proc_args *a, int fd)
{
    ENSURE(fd > STDERR_FILENO, ERR_INVALID_ARG);
    ENSURE(fcntl(fd, F_GETFD) >= 0, ERR_INVALID_ARG);
    for (size_t i = 0; i < a->fd_count; i++)
        ENSURE(a->fds[i] != fd, ERR_INVALID_ARG);
    ENSURE(a->fd_count < PROC_MAX_FDS, ERR_TOO_LARGE);
    a->fds[a->fd_count++] = fd;
    return OK_RESULT;
}

/* pipe2 with both ends CLOEXEC and above 2: a parent started with a closed
 * stdin must not hand out descriptor 0, which the child overwrites. */
static RESULT proc_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return PROC_SYS("creating a pipe");
    for (int i = 0; i < 2; i++) {
        if (p[i] > STDERR_FILENO)
            continue;
        int moved = fcntl(p[i], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (moved < 0) {
            vs_result rc = PROC_SYS("moving a pipe");
            close(p[0]);
            close(p[1]);
            return rc;
        }
        close(p[i]);
        p[i] = moved;
    }
    return OK_RESULT;
}

vs_result proc_args_add_secret(struct proc_args *a, const void *secret, size_t len, int *fd_out)
{
    vs_result rc = OK_RESULT;
    int p[2];
    ssize_t n;

    *fd_out = -1;
    ENSURE(len > 0 && len <= PROC_SECRET_MAX, ERR_INVALID_ARG);
    ENSURE(a->fd_count < PROC_MAX_FDS, ERR_TOO_LARGE);
    GUARD(proc_pipe(p));
    /* len <= PIPE_BUF: written at once, and a pipe holds at least a page
     * even when the user's pipe quota is exhausted, so this cannot block. */
    do
        n = write(p[1], secret, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != len) {
        rc = PROC_SYS("writing a secret into a pipe");
        close(p[0]);
        goto out;
    }
    rc = proc_args_add_fd(a, p[0]);
    if (!is_ok(rc)) {
        close(p[0]);
        goto out;
    }
    *fd_out = p[0];
out:
    close(p[1]);
    return rc;
}

/* --- starting a child --- */

/* name as given if it holds a slash, else the first executable regular
 * file of that name in PROC_PATH. */
static RESULT proc_resolve(const char *name, char *out, size_t size)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin"};
    struct stat st;

    ENSURE(name[0] != '\0', ERR_INVALID_ARG);
    if (strchr(name, '/') != NULL) {
        int n = snprintf(out, size, "%s", name);
        ENSURE(n > 0 && (size_t)n < size, ERR_TOO_LARGE);
        return OK_RESULT;
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        int n = snprintf(out, size, "%s/%s", dirs[i], name);
        ENSURE(n > 0 && (size_t)n < size, ERR_TOO_LARGE);
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return OK_RESULT;
    }
    err_raise(ERR_NOT_FOUND, __FILE__, __LINE__);
    return err_detail("program %s not found in %s", name, PROC_PATH);
}

struct proc_launch {
    const char *path;
    char *const *argv;
    int stdin_fd, stdout_fd, stderr_fd;
    const int *inherit; /* keep, FD_CLOEXEC cleared */
    size_t inherit_count;
    int keep[PROC_MAX_FDS + 1]; /* sorted: inherit plus the exec error pipe */
    size_t keep_count;
    int exec_error_fd; /* write end, CLOEXEC */
    bool die_with_parent;
    pid_t parent;
};

static int proc_int_cmp(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

static void proc_close_from(unsigned first, unsigned last)
{
    if (first > last)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0)
        return;
#endif
    /* No close_range (kernel < 5.9): close one by one up to the limit. */
    struct rlimit rl;
    unsigned max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
        max = (unsigned)rl.rlim_cur;
    for (unsigned fd = first; fd <= last && fd < max; fd++)
        close((int)fd);
}

/* The child, between fork and execve: async-signal-safe calls only. */
__attribute__((noreturn)) static void proc_child(const struct proc_launch *l)
{
    struct sigaction dfl;
    sigset_t none;
    int e;

    /* Its own process group: a timeout kills the whole tree it starts. */
    if (setpgid(0, 0) != 0)
        goto fail;
    if (l->die_with_parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            goto fail;
        if (getppid() != l->parent) /* the parent died before prctl */
            _exit(127);
    }
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL); /* fails harmlessly for KILL, STOP */
    /* glibc keeps signals 32 and 33 for itself and refuses to change them;
     * one ignored by whoever started us (seen under a CI runner) would
     * survive execve. The kernel call resets them (x86-64 and arm64 share
     * this layout of struct sigaction, and SIG_DFL needs no restorer). */
    for (int sig = 32; sig < SIGRTMIN; sig++) {
        struct {
            void (*handler)(int);
            unsigned long flags;
            void (*restorer)(void);
            unsigned long mask;
        } kdfl = {SIG_DFL, 0, NULL, 0};
        (void)syscall(SYS_rt_sigaction, sig, &kdfl, NULL, sizeof kdfl.mask);
    }

    if (dup2(l->stdin_fd, STDIN_FILENO) < 0 || dup2(l->stdout_fd, STDOUT_FILENO) < 0 ||
        dup2(l->stderr_fd, STDERR_FILENO) < 0)
        goto fail;
    for (size_t i = 0; i < l->inherit_count; i++)
        if (fcntl(l->inherit[i], F_SETFD, 0) != 0)
            goto fail;
    unsigned next = STDERR_FILENO + 1;
    for (size_t i = 0; i < l->keep_count; i++) {
        if ((unsigned)l->keep[i] > next)
            proc_close_from(next, (unsigned)l->keep[i] - 1);
        next = (unsigned)l->keep[i] + 1;
    }
    proc_close_from(next, ~0u);

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(l->path, l->argv, proc_env);
fail:
    e = errno;
    if (write(l->exec_error_fd, &e, sizeof(e)) < 0) {
        /* nothing more to do: the parent sees exit status 127 */
    }
    _exit(127);
}

/* Forks and execs a's program with the given stdio. OK with *pid once the
 * program runs; an error (and no child left behind) if it could not. */
static RESULT proc_launch(struct proc_args *a, int out_fd, int err_fd, bool die_with_parent,
                          pid_t *pid)
{
    vs_result rc = OK_RESULT;
    struct proc_launch l;
    char path[PATH_MAX];
    sigset_t all, old;
    int errp[2] = {-1, -1}, devnull = -1, child_errno = 0;
    ssize_t n;
    pid_t p;

    *pid = -1;
    ENSURE(a->argc > 0, ERR_INVALID_ARG);
    GUARD(proc_resolve(a->argv[0], path, sizeof(path)));

    memset(&l, 0, sizeof(l));
    l.path = path;
    l.argv = a->argv;
    l.inherit = a->fds;
    l.inherit_count = a->fd_count;
    l.die_with_parent = die_with_parent;
    l.parent = getpid();

    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0)
        return PROC_SYS("opening /dev/null");
    GUARD_OUT(proc_pipe(errp));
    l.stdin_fd = devnull;
    l.stdout_fd = out_fd;
    l.stderr_fd = err_fd;
    l.exec_error_fd = errp[1];
    memcpy(l.keep, a->fds, a->fd_count * sizeof(int));
    l.keep[a->fd_count] = errp[1];
    l.keep_count = a->fd_count + 1;
    qsort(l.keep, l.keep_count, sizeof(int), proc_int_cmp);

    /* No signal handler of ours may run in the child before it resets
     * them: block everything across fork. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    p = fork();
    if (p == 0)
        proc_child(&l);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p < 0) {
        errno = fork_errno;
        GUARD_OUT(PROC_SYS("fork"));
    }
    /* Also from here, so that a kill of the group cannot race the child's
     * own setpgid. EACCES: it already ran execve, having done it. */
    (void)setpgid(p, p);

    close(errp[1]);
    errp[1] = -1;
    do
        n = read(errp[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        int st;
        while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
        }
        errno = child_errno;
        rc = proc_sys_fail(child_errno == ENOENT                           ? ERR_NOT_FOUND
                           : child_errno == EACCES || child_errno == EPERM ? ERR_PERM
                                                                           : ERR_CHILD,
                           __FILE__, __LINE__, "starting a program");
        err_detail("cannot run %s", path);
        err_errno(child_errno);
        goto out;
    }
    *pid = p;
out:
    if (errp[0] >= 0)
        close(errp[0]);
    if (errp[1] >= 0)
        close(errp[1]);
    close(devnull);
    return rc;
}

/* --- proc_run --- */

static int64_t proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct proc_sink {
    int fd;          /* read end, -1 once at EOF */
    struct buf *buf; /* NULL: discard */
    size_t taken;    /* bytes kept so far, <= PROC_CAPTURE_MAX */
};

/* Reads what is there (the fd is non-blocking): a few chunks, so that a
 * chatty child cannot keep us from looking at the clock, or with `drain`
 * everything up to EOF or an empty pipe (the child has exited). Keeps up to
 * the capture limit and the buf's own limit; reads and drops the rest. */
static RESULT proc_sink_read(struct proc_sink *s, bool drain)
{
    uint8_t chunk[16384];
    size_t rounds = drain ? 4096 : 8; /* 64 MiB at most after an exit */

    while (rounds-- > 0) {
        ssize_t n = read(s->fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) /* == EWOULDBLOCK on Linux */
                return OK_RESULT;
            return PROC_SYS("reading a child's output");
        }
        if (n == 0) {
            close(s->fd);
            s->fd = -1;
            return OK_RESULT;
        }
        if (s->buf != NULL && s->taken < PROC_CAPTURE_MAX) {
            size_t keep = (size_t)n;
            size_t room = buf_limit(s->buf) - buf_len(s->buf);
            if (keep > PROC_CAPTURE_MAX - s->taken)
                keep = PROC_CAPTURE_MAX - s->taken;
            if (keep > room)
                keep = room;
            if (keep > 0)
                GUARD(buf_write_bytes(s->buf, chunk, keep));
            s->taken += keep;
        }
    }
    return OK_RESULT;
}

static int proc_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* Waits for the child (reaping it) with the sinks drained, the deadline
 * enforced. *killed tells whether the deadline struck. */
static RESULT proc_wait(pid_t pid, struct proc_sink sinks[2], int timeout_ms, int *wstatus,
                        bool *killed)
{
    int64_t deadline = timeout_ms > 0 ? proc_now_ms() + timeout_ms : 0;
    int pidfd = proc_pidfd_open(pid);
    bool exited = false;
    vs_result rc = OK_RESULT;

    *killed = false;
    while (!exited) {
        struct pollfd pfd[3];
        nfds_t nfds = 0;
        int wait_ms = -1;
        size_t idx[2] = {SIZE_MAX, SIZE_MAX};

        for (size_t i = 0; i < 2; i++) {
            if (sinks[i].fd < 0)
                continue;
            idx[i] = nfds;
            pfd[nfds++] = (struct pollfd){.fd = sinks[i].fd, .events = POLLIN};
        }
        if (pidfd >= 0)
            pfd[nfds++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        else
            wait_ms = 20; /* no pidfd: look with WNOHANG from time to time */
        if (deadline != 0) {
            int64_t left = deadline - proc_now_ms();
            if (left <= 0) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                *killed = true;
                break;
            }
            if (wait_ms < 0 || left < wait_ms)
                wait_ms = (int)(left > INT_MAX ? INT_MAX : left);
        }
        int r = poll(pfd, nfds, wait_ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = PROC_SYS("poll");
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        for (size_t i = 0; i < 2; i++) {
            if (idx[i] != SIZE_MAX && pfd[idx[i]].revents != 0) {
                rc = proc_sink_read(&sinks[i], false);
                if (!is_ok(rc)) {
                    kill(-pid, SIGKILL);
                    kill(pid, SIGKILL);
                    goto reap;
                }
            }
        }
        if (pidfd >= 0)
            exited = pfd[nfds - 1].revents != 0;
        else {
            int st;
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) {
                *wstatus = st;
                exited = true;
                /* Reaped already: drain what it left in the pipes. */
                for (size_t i = 0; i < 2 && is_ok(rc); i++)
                    if (sinks[i].fd >= 0)
                        rc = proc_sink_read(&sinks[i], true);
                return rc;
            }
        }
    }
    /* The child is gone (or killed): take what it wrote before. A
     * grandchild holding the pipes open does not keep us waiting: the
     * descriptors are non-blocking. */
    for (size_t i = 0; i < 2 && is_ok(rc) && !*killed; i++)
        if (sinks[i].fd >= 0)
            rc = proc_sink_read(&sinks[i], true);
reap:
    while (waitpid(pid, wstatus, 0) < 0) {
        if (errno != EINTR) {
            if (is_ok(rc))
                rc = PROC_SYS("waitpid");
            break;
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return rc;
}

vs_result proc_run(struct proc_args *a, int timeout_ms, struct buf *out, struct buf *err,
                   int *status)
{
    vs_result rc = OK_RESULT;
    struct proc_sink sinks[2] = {{-1, out, 0}, {-1, err, 0}};
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, wstatus = 0;
    bool killed = false;
    pid_t pid = -1;

    *status = -1;
    ENSURE(timeout_ms >= 0, ERR_INVALID_ARG);
    GUARD_OUT(proc_pipe(po));
    GUARD_OUT(proc_pipe(pe));
    GUARD_OUT(proc_launch(a, po[1], pe[1], true, &pid));
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    if (fcntl(po[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(pe[0], F_SETFL, O_NONBLOCK) != 0) {
        rc = PROC_SYS("fcntl");
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        }
        goto out;
    }
    sinks[0].fd = po[0];
    sinks[1].fd = pe[0];
    po[0] = pe[0] = -1;
    GUARD_OUT(proc_wait(pid, sinks, timeout_ms, &wstatus, &killed));
    if (WIFEXITED(wstatus))
        *status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        *status = 128 + WTERMSIG(wstatus);
    if (killed) {
        rc = RAISE(ERR_CHILD);
        err_detail("%s killed after %d ms", a->argv[0], timeout_ms);
    }
out:
    for (size_t i = 0; i < 2; i++)
        if (sinks[i].fd >= 0)
            close(sinks[i].fd);
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    return rc;
}

/* The last non-empty line of err, with anything unprintable replaced, into
 * out. */
static void proc_last_line(const struct buf *err, char *out, size_t size)
{
    const uint8_t *d = buf_data(err);
    size_t end = buf_len(err), start, n, j = 0;

    while (end > 0 && (d[end - 1] == '\n' || d[end - 1] == '\r' || d[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && d[start - 1] != '\n')
        start--;
    n = end - start;
    for (size_t i = 0; i < n && j + 1 < size; i++) {
        uint8_t c = d[start + i];
        out[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (size > 0)
        out[j] = '\0';
}

vs_result proc_run_ok(struct proc_args *a, int timeout_ms, struct buf *out)
{
    vs_result rc = OK_RESULT;
    struct buf err;
    char line[160];
    int status;

    GUARD(buf_alloc(&err, 0, PROC_CAPTURE_MAX));
    GUARD_OUT(proc_run(a, timeout_ms, out, &err, &status));
    if (status != 0) {
        proc_last_line(&err, line, sizeof(line));
        rc = RAISE(ERR_CHILD);
        err_detail("%s exited with status %d: %s", a->argv[0], status,
                   line[0] != '\0' ? line : "(no message)");
    }
out:
    buf_free(&err);
    return rc;
}

/* --- proc_spawn --- */

vs_result proc_spawn(struct proc_args *a, const char *log_path, pid_t *pid)
{
    vs_result rc = OK_RESULT;
    struct stat st;
    int log;

    *pid = -1;
    log = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (log < 0) {
        PROC_SYS("opening the log file");
        return err_detail("opening %s", log_path);
    }
    if (fstat(log, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = RAISE(ERR_IO);
        err_detail("%s is not a regular file", log_path);
        goto out;
    }
    /* Created 0600 whatever the umask; an existing log keeps its mode
     * unless it is readable by others, which it must not be. */
    if ((st.st_mode & 077) != 0 && fchmod(log, 0600) != 0)
        GUARD_OUT(PROC_SYS("fchmod of the log file"));
    GUARD_OUT(proc_launch(a, log, log, false, pid));
out:
    close(log);
    return rc;
}
