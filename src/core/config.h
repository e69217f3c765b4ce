/*
 * config.h - INI configuration files (parsed by inih) with typed getters.
 *
 *   # a comment line starts with # or ;
 *   [server]
 *   listen = 127.0.0.1:5696       ; an inline comment starts with ;
 *   max_message_size = 1M
 *
 * Every error names the file, the line and the key, and says what was
 * expected:
 *
 *   kms.conf:12: [server] max_message_size: expected a size from 4K to 64M
 *   (a number with an optional K, M or G suffix), got "lots"
 *
 * A key set twice, a line too long, text that is not `key = value`, an
 * indented line (inih would take it as a continuation), text after a
 * section header, a lone carriage return: each is an error, not a silent
 * choice. The earliest error in the file is the one reported. config_check_keys() refuses keys the
 * program does not know, so that a typo in an option's name is not silently ignored.
 *
 * Values are kept as the file gave them; configuration holds paths to
 * secrets, never secrets, so values may appear in error messages.
 */
#ifndef VMSEAL_CORE_CONFIG_H
#define VMSEAL_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/result.h"

struct config;

/* Longest line accepted, and largest file. */
#define CONFIG_LINE_MAX 1024
#define CONFIG_FILE_MAX (1024 * 1024)

/* Parses the file at path. ERR_NOT_FOUND if it does not exist; ERR_CONFIG_*
 * with "path:line: ..." as the detail on a bad file. *out is owned by the
 * caller: config_free it. */
RESULT config_load(const char *path, struct config **out) __attribute__((nonnull));

/* Parses text as if it were a file called name (for tests and defaults). */
RESULT config_parse(const char *name, const char *text, struct config **out)
    __attribute__((nonnull));

/* Frees *c and sets it to NULL; accepts NULL. */
void config_free(struct config **c);

/* The getters: if the key is absent, *out = def and OK. If present and not
 * of the type, ERR_CONFIG_VALUE naming file, line, section and key. Section
 * "" is the part before any [section]. Strings live as long as c. */
RESULT config_get_str(const struct config *c, const char *section, const char *key, const char *def,
                      const char **out) __attribute__((nonnull(1, 2, 3, 5)));

RESULT config_get_int(const struct config *c, const char *section, const char *key, int64_t def,
                      int64_t min, int64_t max, int64_t *out) __attribute__((nonnull));

/* true/false, yes/no, on/off, 1/0 (any case). */
RESULT config_get_bool(const struct config *c, const char *section, const char *key, bool def,
                       bool *out) __attribute__((nonnull));

/* A byte count with an optional K, M, G suffix (powers of 1024). */
RESULT config_get_size(const struct config *c, const char *section, const char *key, uint64_t def,
                       uint64_t min, uint64_t max, uint64_t *out) __attribute__((nonnull));

/* A duration in milliseconds: "250ms", "30s", "5m", "1h" (a bare number is
 * seconds). */
RESULT config_get_duration_ms(const struct config *c, const char *section, const char *key,
                              uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((nonnull));

/* Whether the key is set. */
bool config_has(const struct config *c, const char *section, const char *key)
    __attribute__((nonnull));

/* The keys a program knows: {section, key} pairs ending with {NULL, NULL}.
 * ERR_CONFIG_UNKNOWN for the first entry of c not in the list. */
struct config_key {
    const char *section;
    const char *key;
};
RESULT config_check_keys(const struct config *c, const struct config_key *known)
    __attribute__((nonnull));

/* As config_check_keys, but any key of section `free_section` is allowed
 * (a section whose keys are names the operator chooses). */
RESULT config_check_keys_except(const struct config *c, const struct config_key *known,
                                const char *free_section) __attribute__((nonnull));

/* Iterating over every entry, in file order. */
size_t config_count(const struct config *c) __attribute__((nonnull));
void config_entry(const struct config *c, size_t i, const char **section, const char **key,
                  const char **value) __attribute__((nonnull));

#endif
