/*
 * config.c - INI files through inih, with line numbers and typed getters.
 *
 * inih as Debian builds it does not pass line numbers to the handler, so we
 * feed it through our own line reader, which counts lines (and refuses lines
 * longer than CONFIG_LINE_MAX instead of letting them be split in two).
 */
#include "core/config.h"

#include <pthread.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "core/buf.h"
#include "core/file.h"

struct config_entry {
    char *section;
    char *key;
    char *value;
    int line;
};

struct config {
    char *name;
    struct config_entry *entries;
    size_t count, cap;
};

/* The state of one parse: the input text, our place in it, the first error. */
struct config_parse_state {
    struct config *cfg;
    const char *text;
    size_t len, pos;
    int line;
    vs_result error;
    bool failed;
    int fail_line;
};

/* inih's section buffer is 50 bytes (MAX_SECTION): longer names would be
 * cut silently, and two long names could merge. */
#define CONFIG_SECTION_MAX 48

/* Debian's libinih sizes its line buffer from the runtime ini_max_line
 * (which must allow for '\r', '\n' and '\0'): set it once, and use the
 * heap rather than a stack buffer of that size. */
static pthread_once_t config_inih_once = PTHREAD_ONCE_INIT;

static void config_inih_setup(void)
{
    ini_max_line = CONFIG_LINE_MAX + 3;
    ini_initial_alloc = CONFIG_LINE_MAX + 3; /* the heap buffer's size */
    ini_use_stack = false;
    ini_allow_multiline = false; /* indented lines are refused instead */
}

static void config_entry_clear(struct config_entry *e)
{
    free(e->section);
    free(e->key);
    free(e->value);
}

void config_free(struct config **c)
{
    if (c == NULL || *c == NULL)
        return;
    for (size_t i = 0; i < (*c)->count; i++)
        config_entry_clear(&(*c)->entries[i]);
    free((*c)->entries);
    free((*c)->name);
    free(*c);
    *c = NULL;
}

static const struct config_entry *config_find(const struct config *c, const char *section,
                                              const char *key)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->entries[i].section, section) == 0 && strcmp(c->entries[i].key, key) == 0)
            return &c->entries[i];
    return NULL;
}

static void config_fail(struct config_parse_state *st, enum err_code code, const char *file,
                        int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void config_fail(struct config_parse_state *st, enum err_code code, const char *file,
                        int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (st->failed)
        return; /* the first error is the one worth reporting */
    st->failed = true;
    st->fail_line = st->line;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->error = err_raise(code, file, line);
    err_detail("%s:%d: %s", st->cfg->name, st->line, msg);
}

/* inih calls this for every name = value it parses. */
static int config_on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct config_parse_state *st = user;
    struct config *c = st->cfg;
    const struct config_entry *prev;

    if (st->failed)
        return 0;
    prev = config_find(c, section, name);
    if (prev != NULL) {
        config_fail(st, ERR_CONFIG_DUPLICATE, __FILE__, __LINE__,
                    "[%s] %s: set again (first set at line %d)", section, name, prev->line);
        return 0;
    }
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct config_entry *e = realloc(c->entries, cap * sizeof(*e));
        if (e == NULL) {
            config_fail(st, ERR_NOMEM, __FILE__, __LINE__, "cannot store the entry");
            return 0;
        }
        c->entries = e;
        c->cap = cap;
    }
    struct config_entry *e = &c->entries[c->count];
    e->section = strdup(section);
    e->key = strdup(name);
    e->value = strdup(value);
    e->line = st->line;
    if (e->section == NULL || e->key == NULL || e->value == NULL) {
        config_entry_clear(e);
        config_fail(st, ERR_NOMEM, __FILE__, __LINE__, "cannot store the entry");
        return 0;
    }
    c->count++;
    return 1;
}

/* Checks one raw line for what inih would accept silently or misread. */
static void config_check_line(struct config_parse_state *st, const char *l, size_t n)
{
    size_t i = 0;

    if (n > 0 && l[n - 1] == '\r')
        n--; /* CRLF is fine */
    if (memchr(l, '\r', n) != NULL) {
        config_fail(st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__,
                    "carriage return inside a line (old Mac line endings?)");
        return;
    }
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (i == n || l[i] == ';' || l[i] == '#')
        return; /* blank or comment */
    if (i > 0) {
        /* inih would glue it to the previous value as a continuation. */
        config_fail(st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__,
                    "indented line (continuation lines are not supported)");
        return;
    }
    if (l[0] == '[') {
        const char *end = memchr(l, ']', n);
        if (end == NULL)
            return; /* inih reports the missing ']' */
        if ((size_t)(end - l - 1) > CONFIG_SECTION_MAX) {
            config_fail(st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__,
                        "section name longer than %d characters", CONFIG_SECTION_MAX);
            return;
        }
        for (const char *p = end + 1; p < l + n; p++) {
            if (*p == ';' || *p == '#')
                break;
            if (*p != ' ' && *p != '\t') {
                config_fail(st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__,
                            "text after \"]\" (one setting per line, below its section)");
                return;
            }
        }
    }
}

/* inih's fgets-like reader: one line per call, counted. */
static char *config_read_line(char *str, int num, void *stream)
{
    struct config_parse_state *st = stream;
    size_t n = 0, max;

    if (st->pos >= st->len || num < 3)
        return NULL;
    /* Room for the line, its '\n' and '\0'. */
    max = (size_t)num - 2 < CONFIG_LINE_MAX ? (size_t)num - 2 : CONFIG_LINE_MAX;
    st->line++;
    while (st->pos < st->len && st->text[st->pos] != '\n' && n < max)
        str[n++] = st->text[st->pos++];
    if (st->pos < st->len && st->text[st->pos] != '\n') {
        config_fail(st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__, "line longer than %zu characters",
                    max);
        /* Skip the rest of the line so that inih sees a single line. */
        while (st->pos < st->len && st->text[st->pos] != '\n')
            st->pos++;
    }
    config_check_line(st, str, n);
    if (st->pos < st->len)
        str[n++] = st->text[st->pos++]; /* the newline */
    str[n] = '\0';
    return str;
}

vs_result config_parse(const char *name, const char *text, struct config **out)
{
    struct config_parse_state st = {.text = text, .len = strlen(text)};
    struct config *c;
    int rc;

    *out = NULL;
    ENSURE(st.len <= CONFIG_FILE_MAX, ERR_TOO_LARGE);
    ENSURE(pthread_once(&config_inih_once, config_inih_setup) == 0, ERR_INTERNAL);
    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, ERR_NOMEM);
    c->name = strdup(name);
    if (c->name == NULL) {
        config_free(&c);
        BAIL(ERR_NOMEM);
    }
    st.cfg = c;

    rc = ini_parse_stream(config_read_line, &st, config_on_entry, &st);
    if (st.failed && rc > 0 && rc < st.fail_line) {
        /* inih reports its syntax errors only at the end: the earliest error
         * in the file is the one to show. */
        st.failed = false;
    }
    if (!st.failed && rc > 0) {
        /* inih returns the first bad line: neither [section] nor key = value. */
        st.line = rc;
        config_fail(&st, ERR_CONFIG_SYNTAX, __FILE__, __LINE__,
                    "expected \"[section]\" or \"key = value\"");
    } else if (!st.failed && rc != 0) {
        config_fail(&st, ERR_NOMEM, __FILE__, __LINE__, "parser failed (%d)", rc);
    }
    if (st.failed) {
        config_free(&c);
        return st.error;
    }
    *out = c;
    return OK_RESULT;
}

vs_result config_load(const char *path, struct config **out)
{
    struct buf b;
    vs_result rc;

    *out = NULL;
    GUARD(buf_alloc(&b, 0, CONFIG_FILE_MAX + 1));
    rc = file_read_all(path, CONFIG_FILE_MAX, &b);
    if (is_ok(rc))
        rc = buf_write_u8(&b, 0); /* text for the parser */
    if (is_ok(rc)) {
        /* An embedded NUL would end the text early: refuse it. */
        if (memchr(buf_data(&b), '\0', buf_len(&b) - 1) != NULL) {
            rc = RAISE(ERR_CONFIG_SYNTAX);
            err_detail("%s: contains a NUL byte", path);
        } else {
            rc = config_parse(path, (const char *)buf_data(&b), out);
        }
    }
    buf_free(&b);
    return rc;
}

/* --- getters --- */

static RESULT config_bad_value(const struct config *c, const char *section,
                               const struct config_entry *e, const char *expected)
{
    RAISE(ERR_CONFIG_VALUE);
    return err_detail("%s:%d: [%s] %s: expected %s, got \"%s\"", c->name, e->line, section, e->key,
                      expected, e->value);
}

vs_result config_get_str(const struct config *c, const char *section, const char *key,
                         const char *def, const char **out)
{
    const struct config_entry *e = config_find(c, section, key);

    *out = e != NULL ? e->value : def;
    return OK_RESULT;
}

bool config_has(const struct config *c, const char *section, const char *key)
{
    return config_find(c, section, key) != NULL;
}

/* Parses a whole decimal integer, with no sign, spaces or other text. */
static bool config_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            return false;
    }
    *out = v;
    return true;
}

vs_result config_get_int(const struct config *c, const char *section, const char *key, int64_t def,
                         int64_t min, int64_t max, int64_t *out)
{
    const struct config_entry *e = config_find(c, section, key);
    char expected[96];
    uint64_t mag;
    bool neg;
    int64_t v;

    if (e == NULL) {
        *out = def;
        return OK_RESULT;
    }
    snprintf(expected, sizeof(expected), "an integer from %" PRId64 " to %" PRId64, min, max);
    neg = e->value[0] == '-';
    if (!config_parse_u64(e->value + neg, strlen(e->value + neg), &mag))
        return config_bad_value(c, section, e, expected);
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return config_bad_value(c, section, e, expected);
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return config_bad_value(c, section, e, expected);
        v = (int64_t)mag;
    }
    if (v < min || v > max)
        return config_bad_value(c, section, e, expected);
    *out = v;
    return OK_RESULT;
}

vs_result config_get_bool(const struct config *c, const char *section, const char *key, bool def,
                          bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    const struct config_entry *e = config_find(c, section, key);

    if (e == NULL) {
        *out = def;
        return OK_RESULT;
    }
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(e->value, yes[i]) == 0) {
            *out = true;
            return OK_RESULT;
        }
        if (strcasecmp(e->value, no[i]) == 0) {
            *out = false;
            return OK_RESULT;
        }
    }
    return config_bad_value(c, section, e, "true or false (yes/no, on/off, 1/0)");
}

struct config_unit {
    const char *suffix;
    uint64_t factor;
};

/* Parses "<digits><suffix>" with suffix from units ("" allowed if listed). */
static bool config_parse_units(const char *s, const struct config_unit *units, uint64_t *out)
{
    size_t digits = 0;
    uint64_t v;

    while (s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (!config_parse_u64(s, digits, &v))
        return false;
    for (const struct config_unit *u = units; u->suffix != NULL; u++) {
        if (strcasecmp(s + digits, u->suffix) == 0)
            return !__builtin_mul_overflow(v, u->factor, out);
    }
    return false;
}

static RESULT config_get_units(const struct config *c, const char *section, const char *key,
                               uint64_t def, uint64_t min, uint64_t max, uint64_t *out,
                               const struct config_unit *units, const char *expected)
{
    const struct config_entry *e = config_find(c, section, key);
    uint64_t v;

    if (e == NULL) {
        *out = def;
        return OK_RESULT;
    }
    if (!config_parse_units(e->value, units, &v) || v < min || v > max)
        return config_bad_value(c, section, e, expected);
    *out = v;
    return OK_RESULT;
}

static void config_describe_size(uint64_t v, char *out, size_t n)
{
    static const char suffix[] = {'G', 'M', 'K'};
    static const uint64_t factor[] = {1ull << 30, 1ull << 20, 1ull << 10};

    for (size_t i = 0; i < 3; i++) {
        if (v != 0 && v % factor[i] == 0) {
            snprintf(out, n, "%" PRIu64 "%c", v / factor[i], suffix[i]);
            return;
        }
    }
    snprintf(out, n, "%" PRIu64, v);
}

vs_result config_get_size(const struct config *c, const char *section, const char *key,
                          uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    static const struct config_unit units[] = {
        {"", 1}, {"K", 1ull << 10}, {"M", 1ull << 20}, {"G", 1ull << 30}, {NULL, 0},
    };
    char lo[32], hi[32], expected[160];

    config_describe_size(min, lo, sizeof(lo));
    config_describe_size(max, hi, sizeof(hi));
    snprintf(expected, sizeof(expected),
             "a size from %s to %s (a number with an optional K, M or G suffix)", lo, hi);
    return config_get_units(c, section, key, def, min, max, out, units, expected);
}

vs_result config_get_duration_ms(const struct config *c, const char *section, const char *key,
                                 uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    static const struct config_unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0},
    };
    char expected[160];

    snprintf(expected, sizeof(expected),
             "a duration from %" PRIu64 "ms to %" PRIu64 "ms (e.g. 250ms, 30s, 5m, 1h)", min, max);
    return config_get_units(c, section, key, def, min, max, out, units, expected);
}

vs_result config_check_keys(const struct config *c, const struct config_key *known)
{
    return config_check_keys_except(c, known, "");
}

size_t config_count(const struct config *c)
{
    return c->count;
}

void config_entry(const struct config *c, size_t i, const char **section, const char **key,
                  const char **value)
{
    *section = c->entries[i].section;
    *key = c->entries[i].key;
    *value = c->entries[i].value;
}

vs_result config_check_keys_except(const struct config *c, const struct config_key *known,
                                   const char *free_section)
{
    for (size_t i = 0; i < c->count; i++) {
        const struct config_entry *e = &c->entries[i];
        bool found = free_section[0] != '\0' && strcmp(e->section, free_section) == 0;
        for (const struct config_key *k = known; k->key != NULL && !found; k++)
            found = strcmp(k->section, e->section) == 0 && strcmp(k->key, e->key) == 0;
        if (!found) {
            RAISE(ERR_CONFIG_UNKNOWN);
            return err_detail("%s:%d: [%s] %s: unknown option", c->name, e->line, e->section,
                              e->key);
        }
    }
    return OK_RESULT;
}
