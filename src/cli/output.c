/*
 * output.c - sizes, tables, progress bar and JSON for the CLI. See output.h.
 */
#include "cli/output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

char *cli_sanitize(const char *s, char *out, size_t size)
{
    size_t o = 0;

    if (size == 0)
        return out;
    if (s == NULL)
        s = "-";
    for (size_t i = 0; s[i] != '\0' && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        /* U+0080..U+009F (C1 controls; 0x9b is CSI) are 0xc2 0x80..0x9f. */
        if (c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
            out[o++] = '?';
            i++;
            continue;
        }
        out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
    return out;
}

char *cli_format_size(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    size_t u = 0;
    uint64_t scale = 1;

    while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / scale >= 1024) {
        scale *= 1024;
        u++;
    }
    if (bytes % scale == 0) {
        snprintf(out, size, "%" PRIu64 " %s", bytes / scale, units[u]);
    } else {
        /* Tenths, rounded down, in integers: no float surprises. The
         * remainder is below 2^60, so ten times it fits. */
        uint64_t whole = bytes / scale;
        uint64_t tenths = (bytes % scale) * 10 / scale;
        snprintf(out, size, "%" PRIu64 ".%" PRIu64 " %s", whole, tenths, units[u]);
    }
    return out;
}

char *cli_progress_format(const char *label, long percent, unsigned width, char *out, size_t size)
{
    char safe[128];
    char bar[257];
    unsigned filled;

    if (size == 0)
        return out;
    if (percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    if (width > sizeof(bar) - 1)
        width = sizeof(bar) - 1;
    filled = (unsigned)((unsigned long)percent * width / 100);
    for (unsigned i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : ' ';
    bar[width] = '\0';
    snprintf(out, size, "%s [%s] %ld%%", cli_sanitize(label, safe, sizeof(safe)), bar, percent);
    return out;
}

/* --- tables --- */

struct cli_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;
    char **cells; /* nrows * ncols, row-major */
};

vs_result cli_table_new(size_t ncols, const char *const *headers, struct cli_table **out)
{
    struct cli_table *t;
    vs_result rc;

    *out = NULL;
    ENSURE(ncols > 0 && ncols <= 16, ERR_INVALID_ARG);
    t = calloc(1, sizeof(*t));
    ENSURE(t != NULL, ERR_NOMEM);
    t->ncols = ncols;
    rc = cli_table_add(t, headers);
    if (!is_ok(rc)) {
        cli_table_free(&t);
        return rc;
    }
    *out = t;
    return OK_RESULT;
}

vs_result cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8, n;
        ENSURE_MUL(cap, t->ncols, &n);
        char **grown = reallocarray(t->cells, n, sizeof(*grown));
        ENSURE(grown != NULL, ERR_NOMEM);
        t->cells = grown;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        char safe[512];
        row[c] = strdup(cli_sanitize(cells[c], safe, sizeof(safe)));
        if (row[c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(row[k]);
            BAIL(ERR_NOMEM);
        }
    }
    t->nrows++;
    return OK_RESULT;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
    size_t width[16] = {0};

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > width[c])
                width[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", cell);
            else
                fprintf(f, "%-*s  ", (int)width[c], cell);
        }
    }
}

void cli_table_free(struct cli_table **t)
{
    if (t == NULL || *t == NULL)
        return;
    for (size_t i = 0; i < (*t)->nrows * (*t)->ncols; i++)
        free((*t)->cells[i]);
    free((*t)->cells);
    free(*t);
    *t = NULL;
}

void cli_print_kv(FILE *f, const char *key, const char *value, int width)
{
    char safe[1024];
    int pad = width - (int)strlen(key) - 1; /* the value starts at column `width` */
    fprintf(f, "%s:%*s%s\n", key, pad > 0 ? pad : 1, "", cli_sanitize(value, safe, sizeof(safe)));
}

static int cli_json_to_file(const char *data, size_t len, void *user)
{
    return fwrite(data, 1, len, (FILE *)user) == len ? 0 : -1;
}

vs_result cli_print_json(FILE *f, const json_t *value)
{
    ENSURE(json_dump_callback(value, cli_json_to_file, f,
                              JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) == 0,
           ERR_IO);
    ENSURE(fputc('\n', f) != EOF, ERR_IO);
    return OK_RESULT;
}
