/*
 * log.c - structured, escaped, single-write log lines. See log.h.
 */
#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_current = LOG_INFO;
static atomic_int log_fd = 2;
static atomic_bool log_timestamps = true;

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_WARN] = "warn",
    [LOG_ERROR] = "error", [LOG_OFF] = "off",
};

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_current, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level_current);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void log_set_timestamps(bool on)
{
    atomic_store(&log_timestamps, on);
}

vs_result log_parse_level(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return OK_RESULT;
        }
    }
    RAISE(ERR_INVALID_ARG);
    return err_detail("log level must be debug, info, warn, error or off");
}

/* A bounded line under construction; appends that do not fit set full. */
struct log_line {
    char text[LOG_LINE_MAX];
    size_t len;
    bool full;
    bool quoted; /* inside a quoted value: truncation must close the quote */
};

/* Room kept at the end for '"', " truncated=true" and '\n'. */
#define LOG_TAIL_RESERVE 20

static void line_put(struct log_line *l, const char *s, size_t n)
{
    if (l->full)
        return;
    if (n > sizeof(l->text) - LOG_TAIL_RESERVE - l->len) {
        l->full = true;
        return;
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
}

static void line_puts(struct log_line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* A value goes bare if it is non-empty printable ASCII without space, quote,
 * backslash or '='; otherwise quoted, with \" \\ \n \r \t and \xNN escapes. */
static void line_value(struct log_line *l, const char *s)
{
    bool bare = s[0] != '\0';

    for (const unsigned char *p = (const unsigned char *)s; *p && bare; p++)
        bare = *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '=';
    if (bare) {
        line_puts(l, s);
        return;
    }
    line_put(l, "\"", 1);
    if (!l->full)
        l->quoted = true; /* once full, a value that did not start stays unopened */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        switch (*p) {
        case '"':
            line_put(l, "\\\"", 2);
            break;
        case '\\':
            line_put(l, "\\\\", 2);
            break;
        case '\n':
            line_put(l, "\\n", 2);
            break;
        case '\r':
            line_put(l, "\\r", 2);
            break;
        case '\t':
            line_put(l, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p >= 0x7f) {
                snprintf(esc, sizeof(esc), "\\x%02x", *p);
                line_put(l, esc, 4);
            } else {
                line_put(l, (const char *)p, 1);
            }
        }
    }
    line_put(l, "\"", 1);
    if (!l->full)
        l->quoted = false;
}

/* Keys are ours, not data, but keep them safe all the same. */
static void line_key(struct log_line *l, const char *key)
{
    line_put(l, " ", 1);
    for (const char *p = key; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        line_put(l, ok ? p : "_", 1);
    }
    line_put(l, "=", 1);
}

static void line_field(struct log_line *l, const struct log_field *f)
{
    char num[32];

    switch (f->type) {
    case LOG_FIELD_STR:
        line_key(l, f->key);
        line_value(l, f->v.s != NULL ? f->v.s : "(null)");
        break;
    case LOG_FIELD_INT:
        line_key(l, f->key);
        snprintf(num, sizeof(num), "%lld", f->v.i);
        line_puts(l, num);
        break;
    case LOG_FIELD_UINT:
        line_key(l, f->key);
        snprintf(num, sizeof(num), "%llu", f->v.u);
        line_puts(l, num);
        break;
    case LOG_FIELD_LAST_ERROR: {
        char msg[512], at[160];
        const struct err_state *e = err_last();
        const char *detail_sep = e->detail[0] ? ": " : "";
        char sys[96] = "";
        if (e->sys_errno != 0) {
            char tmp[80];
            snprintf(sys, sizeof(sys), " (%s)", strerror_r(e->sys_errno, tmp, sizeof(tmp)));
        }
        snprintf(msg, sizeof(msg), "%s%s%s%s", err_message(e->code), detail_sep, e->detail, sys);
        line_key(l, "error");
        line_value(l, msg);
        line_key(l, "error_code");
        line_puts(l, err_name(e->code));
        snprintf(at, sizeof(at), "%s:%d", e->file ? e->file : "?", e->line);
        line_key(l, "at");
        line_value(l, at);
        break;
    }
    case LOG_FIELD_END:
        break;
    }
}

void log_write(enum log_level level, const char *msg, const struct log_field *fields)
{
    struct log_line l;
    int saved_errno = errno;

    if ((unsigned)level >= LOG_OFF || (int)level < atomic_load(&log_level_current))
        return;
    l.len = 0;
    l.full = false;
    l.quoted = false;

    if (atomic_load(&log_timestamps)) {
        struct timespec ts;
        struct tm tm;
        char stamp[96];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(stamp, sizeof(stamp), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
        line_puts(&l, stamp);
    }
    line_puts(&l, "level=");
    line_puts(&l, log_level_names[level]);
    line_key(&l, "msg");
    line_value(&l, msg != NULL ? msg : "");
    for (const struct log_field *f = fields; f != NULL && f->type != LOG_FIELD_END; f++)
        line_field(&l, f);
    if (l.full) {
        if (l.quoted)
            l.text[l.len++] = '"';
        static const char tail[] = " truncated=true";
        memcpy(l.text + l.len, tail, sizeof(tail) - 1);
        l.len += sizeof(tail) - 1;
    }
    l.text[l.len++] = '\n';

    /* One write per line: concurrent lines do not interleave (pipes and
     * O_APPEND files guarantee it up to PIPE_BUF/whole writes). A log that
     * cannot be written is not worth failing the caller for. */
    ssize_t n = write(atomic_load(&log_fd), l.text, l.len);
    (void)n;
    errno = saved_errno;
}
