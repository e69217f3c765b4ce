/*
 * tokens.h - the token store: the API tokens that `vmseal login` got, one
 * per server, kept for the commands that follow.
 *
 * The store is $HOME/.config/vmseal/tokens.json (the directory 0700, the
 * file 0600, both the user's own), one JSON object keyed by the server's
 * normalised URL (cli_server_url_parse):
 *
 *   {"https://h:8443": {"token": "vst_...", "id": "0f3a...", "user": "alice",
 *                       "expires": "2026-11-23T22:00:00Z", "ca": "/abs/ca.pem"}}
 *
 * "ca" (absolute, or null) is the CA file given at login, so that later
 * commands to the same server need no --ca; "id" may be missing.
 *
 * The file is read strictly: not JSON, a duplicate key, an entry of the
 * wrong shape or a token outside RFC 6750's character set make it
 * malformed, and nothing is sent (a tampered store must not inject headers
 * or point at another CA silently). A file or directory that others can
 * read or that another user owns is refused, as ssh refuses its keys.
 * Every change is a read-modify-write under an exclusive lock on the
 * directory, written atomically (temporary file, fsync, rename, fsync of
 * the directory: core/file.h), so that two logins at once lose nothing
 * and a crash leaves the old store or the new one. Tokens are read into
 * memory that jansson wipes on release (cli_json_init).
 */
#ifndef VMSEAL_CLI_TOKENS_H
#define VMSEAL_CLI_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "core/result.h"

/* The largest store read: many servers' entries fit in far less. */
#define CLI_TOKENS_LIMIT ((size_t)1 << 20)

#define CLI_TOKENS_FILE "tokens.json"

/* Writes the store's directory, $HOME/.config/vmseal, into out (HOME from
 * the environment, else the password database). */
RESULT cli_tokens_default_dir(char *out, size_t size) __attribute__((nonnull));

/* One server's entry, pointing into the store's JSON. */
struct cli_token_entry {
    const char *token;
    const char *id;      /* NULL when not recorded */
    const char *user;
    const char *expires; /* RFC 3339 */
    const char *ca;      /* NULL: the system's CAs */
};

/* Reads dir/tokens.json into *store (a new object; an empty one when the
 * file does not exist). Refuses, with a detail naming the file: a file
 * readable or writable by group or others, one owned by another user, and a
 * malformed one (ERR_CONFIG_VALUE). */
RESULT cli_tokens_load(const char *dir, json_t **store) __attribute__((nonnull));

/* Fills *e from store[server]; ERR_NOT_FOUND when there is none. */
RESULT cli_tokens_get(const json_t *store, const char *server, struct cli_token_entry *e)
    __attribute__((nonnull));

/* Under the directory's lock: reads the store, sets store[server] to entry
 * (a JSON object as above; NULL removes the server's entry) and writes it
 * back atomically (0600), creating dir (0700) and its parent when
 * missing. *removed (may be NULL) tells whether an entry was there. */
RESULT cli_tokens_update(const char *dir, const char *server, const json_t *entry, bool *removed)
    __attribute__((nonnull(1, 2)));

/* Makes an entry object for cli_tokens_update (strings copied; id and ca
 * may be NULL). NULL when out of memory or a string is not UTF-8. */
json_t *cli_tokens_entry_new(const char *token, const char *id, const char *user,
                             const char *expires, const char *ca) __attribute__((nonnull(1, 3, 4)));

/* Whether an RFC 3339 UTC time ("2026-11-23T22:00:00Z", fractions allowed)
 * is at or before now. A time that does not parse is not expired: the
 * server decides. */
bool cli_tokens_expired(const char *expires, time_t now) __attribute__((nonnull));

#endif
