/*
 * result.c - the error table's messages and the thread-local last error.
 */
#include "core/result.h"

#include <stdio.h>
#include <string.h>

static const char *const err_messages[ERR_COUNT_] = {
#define VS_ERR_MSG(name, msg) [ERR_##name] = msg,
    VS_ERRORS(VS_ERR_MSG)
#undef VS_ERR_MSG
};

static const char *const err_names[ERR_COUNT_] = {
#define VS_ERR_NAME(name, msg) [ERR_##name] = "ERR_" #name,
    VS_ERRORS(VS_ERR_NAME)
#undef VS_ERR_NAME
};

static _Thread_local struct err_state err_current;

vs_result err_raise(enum err_code code, const char *file, int line)
{
    err_current.code = code;
    err_current.file = file;
    err_current.line = line;
    err_current.sys_errno = 0;
    err_current.detail[0] = '\0';
    return (vs_result){code};
}

vs_result err_detail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err_current.detail, sizeof(err_current.detail), fmt, ap);
    va_end(ap);
    return (vs_result){err_current.code};
}

vs_result err_errno(int sys_errno)
{
    err_current.sys_errno = sys_errno;
    return (vs_result){err_current.code};
}

const char *err_message(enum err_code code)
{
    if ((unsigned)code >= ERR_COUNT_)
        return "unknown error";
    return err_messages[code];
}

const char *err_name(enum err_code code)
{
    if ((unsigned)code >= ERR_COUNT_)
        return "ERR_UNKNOWN";
    return err_names[code];
}

const struct err_state *err_last(void)
{
    return &err_current;
}

void err_clear(void)
{
    memset(&err_current, 0, sizeof(err_current));
}

vs_result err_restore(const struct err_state *e)
{
    err_current = *e;
    return (vs_result){e->code};
}

char *err_format(char *out, size_t size)
{
    const struct err_state *e = &err_current;
    char sys[96] = "";

    if (size == 0)
        return out;
    if (e->sys_errno != 0) {
        char tmp[80];
        /* GNU strerror_r returns a pointer that may or may not be tmp. */
        const char *s = strerror_r(e->sys_errno, tmp, sizeof(tmp));
        snprintf(sys, sizeof(sys), " (%s)", s);
    }
    snprintf(out, size, "%s%s%s%s (%s:%d)", err_message(e->code), e->detail[0] ? ": " : "",
             e->detail, sys, e->file ? e->file : "?", e->line);
    return out;
}
