/*
 * audit.c - vmseald's audit log. See audit.h.
 *
 * The writer adds the time and nothing else: what a line says is what the
 * API chose to put in it (never a body, a password, a token or a key), so
 * that nothing secret can reach the file by way of this module.
 */
#include "server/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "vm/vmutil.h"

#define AUDIT_FILE "audit.log"

/* An audit line holds names, paths and a status: a few hundred bytes. One
 * far larger is a bug upstream; it is replaced by a short line saying so,
 * so that a single write(2) always carries one whole line. */
#define AUDIT_LINE_MAX ((size_t)16 * 1024)

struct audit {
    int fd;
    /* O_APPEND makes each write(2) land at the end on its own on Linux;
     * the mutex also orders lines on file systems where it does not
     * (NFS), and costs nothing next to the JSON encoding. */
    pthread_mutex_t mu;
};

RESULT audit_open(const char *data_dir, struct audit **out)
{
    char path[VM_PATH_MAX];
    struct stat st;
    struct audit *a;
    int fd;

    *out = NULL;
    GUARD(vm_path(path, sizeof path, "%s/%s", data_dir, AUDIT_FILE));
    /* O_NOFOLLOW: a link planted in the data directory cannot send the
     * lines into another file. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        RAISE(e == EACCES ? ERR_PERM : ERR_IO);
        err_detail("opening the audit log %s", path);
        return err_errno(e);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        RAISE(ERR_IO);
        return err_detail("the audit log %s is not a regular file", path);
    }
    /* A file made by hand, or by an older version, with a wider mode: the
     * log names users and objects; only vmseald's user reads it. */
    if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        RAISE(ERR_PERM);
        err_detail("setting the audit log %s to mode 0600", path);
        return err_errno(e);
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        close(fd);
        BAIL(ERR_NOMEM);
    }
    a->fd = fd;
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return OK_RESULT;
}

void audit_close(struct audit **a)
{
    if (a == NULL || *a == NULL)
        return;
    if (fsync((*a)->fd) != 0)
        log_warn("audit log: fsync at close failed", LOG_I("errno", errno));
    close((*a)->fd);
    pthread_mutex_destroy(&(*a)->mu);
    free(*a);
    *a = NULL;
}

/* RFC 3339 UTC with milliseconds: "2026-11-23T10:00:00.123Z". */
static void audit_time(char out[32])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* The line as text with its newline: "time" first, then the caller's
 * fields in their order (a "time" of the caller's is replaced). NULL when
 * out of memory. JSON escapes control characters (RFC 8259 §7), so a value
 * holding a newline cannot start a line of its own. */
static char *audit_encode(json_t *line, size_t *len)
{
    char stamp[32];
    const char *key;
    json_t *value;
    json_t *o = json_object();
    char *text = NULL;

    if (o == NULL)
        return NULL;
    audit_time(stamp);
    if (json_object_set_new(o, "time", json_string(stamp)) != 0)
        goto out;
    json_object_foreach(line, key, value)
    {
        if (strcmp(key, "time") != 0 && json_object_set(o, key, value) != 0)
            goto out;
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (text != NULL && strlen(text) > AUDIT_LINE_MAX) {
        free(text);
        json_decref(o);
        o = json_pack("{s:s, s:s, s:I}", "time", stamp, "error", "audit line too long",
                      "bytes", (json_int_t)AUDIT_LINE_MAX);
        text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    }
    if (text != NULL) {
        size_t n = strlen(text);
        char *grown = realloc(text, n + 2);
        if (grown == NULL) {
            free(text);
            text = NULL;
            goto out;
        }
        text = grown;
        text[n] = '\n';
        text[n + 1] = '\0';
        *len = n + 1;
    }
out:
    json_decref(o);
    return text;
}

void audit_write(struct audit *a, json_t *line)
{
    size_t len = 0;
    char *text;

    if (json_typeof(line) != JSON_OBJECT) {
        log_error("audit line is not an object: not written");
        return;
    }
    text = audit_encode(line, &len);
    if (text == NULL) {
        log_error("audit line lost: out of memory");
        return;
    }
    pthread_mutex_lock(&a->mu);
    ssize_t w = write(a->fd, text, len);
    int e = errno;
    pthread_mutex_unlock(&a->mu);
    /* A short write (a full disk) leaves a partial line: the next line
     * still starts at the file's end, and a reader skips what does not
     * parse. Either way the stderr log keeps the call. */
    if (w != (ssize_t)len)
        log_error("audit write failed", LOG_I("errno", w < 0 ? e : 0), LOG_U("bytes", len));
    free(text);
}
