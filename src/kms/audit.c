/*
 * audit.c - JSON-lines audit log. See audit.h.
 */
#include "kms/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "kmip/kmip_defs.h"

struct kms_audit {
    int fd;
};

static _Thread_local char kms_audit_peer[64];

vs_result kms_audit_open(const char *path, struct kms_audit **out)
{
    struct kms_audit *a;
    int fd;

    *out = NULL;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        RAISE(ERR_IO);
        err_detail("opening audit log %s", path);
        return err_errno(e);
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        BAIL(ERR_NOMEM);
    }
    a->fd = fd;
    *out = a;
    return OK_RESULT;
}

void kms_audit_close(struct kms_audit **a)
{
    if (a == NULL || *a == NULL)
        return;
    fsync((*a)->fd);
    close((*a)->fd);
    free(*a);
    *a = NULL;
}

void kms_audit_set_peer(const char *peer)
{
    snprintf(kms_audit_peer, sizeof(kms_audit_peer), "%s", peer);
}

void kms_audit_write(void *ctx, const struct kms_audit_item *it)
{
    struct kms_audit *a = ctx;
    struct timespec ts;
    struct tm tm;
    char stamp[40], version[16];
    json_t *o;
    char *line;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ", ts.tv_nsec / 1000000);
    snprintf(version, sizeof(version), "%d.%d", (int)it->version.major, (int)it->version.minor);

    const char *op = it->operation ? kmip_operation_name(it->operation) : NULL;
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "time", stamp, "identity",
                  it->who ? it->who->identity : "", "peer", kms_audit_peer, "kmip", version,
                  "operation", op ? op : (it->operation ? "unknown" : "(message)"), "result",
                  it->status == KMIP_STATUS_SUCCESS ? "success" : "failure");
    if (o == NULL)
        return;
    if (it->uid != NULL && it->uid[0] != '\0')
        json_object_set_new(o, "object", json_string(it->uid));
    if (it->status != KMIP_STATUS_SUCCESS) {
        const char *reason = kmip_result_reason_name(it->reason);
        json_object_set_new(o, "reason", json_string(reason ? reason : "unknown"));
        if (it->message != NULL)
            json_object_set_new(o, "message", json_string(it->message));
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    /* One write per line; the newline travels with it. */
    char *buf = realloc(line, n + 2);
    if (buf != NULL) {
        buf[n] = '\n';
        ssize_t w = write(a->fd, buf, n + 1);
        if (w != (ssize_t)(n + 1))
            log_warn("audit write failed", LOG_I("errno", errno));
        free(buf);
    } else {
        free(line);
    }
}
