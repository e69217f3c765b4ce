/*
 * output.h - what the CLI prints: sizes, aligned tables, key: value lines,
 * the progress bar and JSON.
 *
 * Every string that came from the server is printed through
 * cli_sanitize(): a name or a message with terminal escape sequences in it
 * (a compromised or buggy server) must not be able to rewrite the user's
 * screen. JSON output needs no such care: jansson escapes control
 * characters.
 */
#ifndef VMSEAL_CLI_OUTPUT_H
#define VMSEAL_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/result.h"

/* Copies s into out (NUL-terminated, truncated to size) with every control
 * character (C0, DEL, and C1 as UTF-8 U+0080..U+009F) replaced by '?'.
 * NULL prints as "-". Returns out. */
char *cli_sanitize(const char *s, char *out, size_t size) __attribute__((nonnull(2)));

/* Writes a size for people into out: "512 B", "1 GiB", "1.5 GiB" (binary
 * units, one decimal when not whole). Returns out. */
char *cli_format_size(uint64_t bytes, char *out, size_t size) __attribute__((nonnull(2)));

/* Writes one progress line into out: "LABEL [#####     ] 42%" with a bar
 * of width cells; percent is clamped to 0..100. Returns out. */
char *cli_progress_format(const char *label, long percent, unsigned width, char *out, size_t size)
    __attribute__((nonnull(1, 4)));

/* An aligned table for people: columns separated by two spaces, the last
 * one not padded. Cells are sanitized copies. */
struct cli_table;

/* A table with ncols columns and these headers (copied). */
RESULT cli_table_new(size_t ncols, const char *const *headers, struct cli_table **out)
    __attribute__((nonnull));

/* Appends a row of ncols cells (NULL prints as "-"). */
RESULT cli_table_add(struct cli_table *t, const char *const *cells) __attribute__((nonnull));

/* Writes the table to f (headers first). */
void cli_table_print(const struct cli_table *t, FILE *f) __attribute__((nonnull));

/* Frees *t and sets it to NULL; accepts NULL. */
void cli_table_free(struct cli_table **t);

/* Prints "key:", spaces up to column width, the sanitized value and a newline. */
void cli_print_kv(FILE *f, const char *key, const char *value, int width)
    __attribute__((nonnull(1, 2)));

/* Prints a JSON value (any type) indented, with a final newline. */
RESULT cli_print_json(FILE *f, const json_t *value) __attribute__((nonnull));

#endif
