/*
 * log.h - structured logging to stderr, one line per event:
 *
 *   ts=2026-11-23T05:42:59.123Z level=info msg="listening" addr=127.0.0.1 port=5696
 *
 * Fields are typed (string, signed, unsigned, the last error), so that no
 * format string ever comes from data, and every value is escaped: quotes,
 * backslashes, control and non-ASCII bytes cannot forge a line or a field.
 * A line is written with one write(2), so lines from threads never mix.
 *
 * There is deliberately no field type for bytes or buffers: key material
 * has no way into a log. Never pass a secret as a string either.
 *
 *   log_info("listening", LOG_S("addr", host), LOG_I("port", port));
 *   log_error("cannot open store", LOG_S("path", p), LOG_ERR());
 */
#ifndef VMSEAL_CORE_LOG_H
#define VMSEAL_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/result.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

enum log_field_type {
    LOG_FIELD_END,
    LOG_FIELD_STR,
    LOG_FIELD_INT,
    LOG_FIELD_UINT,
    LOG_FIELD_LAST_ERROR,
};

struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        long long i;
        unsigned long long u;
    } v;
};

#define LOG_S(k, val) ((struct log_field){.key = (k), .type = LOG_FIELD_STR, .v.s = (val)})
#define LOG_I(k, val) ((struct log_field){.key = (k), .type = LOG_FIELD_INT, .v.i = (val)})
#define LOG_U(k, val) ((struct log_field){.key = (k), .type = LOG_FIELD_UINT, .v.u = (val)})
/* The thread's last error: fields error="...", error_code=ERR_..., at=file:line. */
#define LOG_ERR() ((struct log_field){.key = "error", .type = LOG_FIELD_LAST_ERROR})
#define LOG_END_ ((struct log_field){.key = NULL, .type = LOG_FIELD_END})

/* Writes one line if level is enabled. fields ends with LOG_FIELD_END. */
void log_write(enum log_level level, const char *msg, const struct log_field *fields);

#define LOG_AT_(level, msg, ...) \
    log_write((level), (msg), (const struct log_field[]){__VA_ARGS__ __VA_OPT__(, ) LOG_END_})

#define log_debug(msg, ...) LOG_AT_(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) LOG_AT_(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) LOG_AT_(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) LOG_AT_(LOG_ERROR, msg, __VA_ARGS__)

/* Lines below level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* "debug", "info", "warn", "error", "off" -> level; ERR_INVALID_ARG otherwise. */
RESULT log_parse_level(const char *name, enum log_level *out) __attribute__((nonnull));

/* Where lines go (default 2, stderr). For tests and daemons' log files. */
void log_set_fd(int fd);

/* Whether to print the ts= field (default true; tests turn it off). */
void log_set_timestamps(bool on);

/* Longest line written; longer ones end in "truncated=true". */
#define LOG_LINE_MAX 4096

#endif
