/*
 * auth.h - who is calling: local users with passwords, groups, and API
 * tokens. Tables in vmseald.db (store.h).
 *
 * Passwords are hashed with Argon2id (Debian's libargon2; RFC 9106) and
 * stored in the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash),
 * so the parameters can grow without a schema change. A login for a user
 * that does not exist runs the same hash against a dummy, so that a wrong
 * name and a wrong password take the same time and get the same error.
 *
 * Tokens: 32 random bytes, given to the client once as text
 * "vst_<43 base64url chars>"; the database keeps only SHA-256 of the text,
 * an id (the first 16 hex digits of that hash: safe to show and to revoke
 * by), the user, the creation and expiry times and a revoked flag. A token
 * stops working when revoked, when it expires, or when its user is deleted.
 *
 * Brute force: failed logins are counted per user name and per peer
 * address (without the port: a new connection is the same client) in a
 * sliding window (AUTH_FAIL_WINDOW seconds). Past AUTH_FAIL_LIMIT failures
 * for a name, or AUTH_FAIL_PEER_LIMIT from one address (several users may
 * share one), logins for that name or from that address are
 * refused with ERR_RATE_LIMITED without checking the password (a right
 * password too: no oracle) until the window has passed. Concurrent Argon2id
 * computations are bounded (AUTH_HASH_PARALLEL) so that logins cannot
 * exhaust memory.
 *
 * The name "root" is reserved: it is the local administrator (uid 0 on the
 * Unix socket) and cannot be created, deleted or log in with a password.
 */
#ifndef VMSEAL_SERVER_AUTH_H
#define VMSEAL_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/result.h"
#include "server/store.h"

#define AUTH_NAME_MAX 64          /* user and group names: 1-63 chars of the VM name set */
#define AUTH_TOKEN_TEXT_MAX 64    /* "vst_" + 43 + NUL fits */
#define AUTH_TOKEN_ID_LEN 17      /* 16 hex + NUL */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
#define AUTH_TOKEN_TTL_DEFAULT (12u * 3600u)
#define AUTH_TOKEN_TTL_MAX (30u * 24u * 3600u)
#define AUTH_FAIL_LIMIT 5       /* failures per user name in the window */
#define AUTH_FAIL_PEER_LIMIT 20 /* failures per client address (many users may share one) */
#define AUTH_FAIL_WINDOW 60
#define AUTH_HASH_PARALLEL 2
#define AUTH_ROOT_USER "root"

struct auth;

/* Creates the tables if missing. The store must outlive the auth. */
RESULT auth_open(struct store *st, struct auth **out) __attribute__((nonnull));
void auth_close(struct auth **a);

/* Users. Names follow vm_check_name's rules (ERR_INVALID_ARG); "root" is
 * refused. ERR_EXISTS, ERR_NOT_FOUND. Passwords: AUTH_PASSWORD_MIN to
 * AUTH_PASSWORD_MAX bytes (ERR_INVALID_ARG); the caller wipes its copy. */
RESULT auth_user_create(struct auth *a, const char *name, const char *password, size_t len)
    __attribute__((nonnull));
RESULT auth_user_set_password(struct auth *a, const char *name, const char *password,
                              size_t len) __attribute__((nonnull));
/* Deletes the user and revokes every token of theirs (group memberships go
 * too). Permissions naming the user are the caller's to remove (authz). */
RESULT auth_user_delete(struct auth *a, const char *name) __attribute__((nonnull));
/* ERR_NOT_FOUND unless the user exists ("root" always exists). */
RESULT auth_user_exists(struct auth *a, const char *name) __attribute__((nonnull));
/* {"users": [{"name", "created", "groups": [...], "builtin": bool}]}, root first. */
RESULT auth_user_list(struct auth *a, json_t **out) __attribute__((nonnull));

/* Groups: created on first member, gone with the last. */
RESULT auth_group_add(struct auth *a, const char *group, const char *user)
    __attribute__((nonnull));
RESULT auth_group_remove(struct auth *a, const char *group, const char *user)
    __attribute__((nonnull));
/* The groups of user, up to max names of AUTH_NAME_MAX bytes. */
RESULT auth_user_groups(struct auth *a, const char *user, char (*groups)[AUTH_NAME_MAX],
                        size_t max, size_t *n) __attribute__((nonnull));

struct auth_token_info {
    char id[AUTH_TOKEN_ID_LEN];
    char user[AUTH_NAME_MAX];
    int64_t created; /* Unix seconds */
    int64_t expires;
};

/* Checks name + password and issues a token valid ttl seconds (0: the
 * default; more than AUTH_TOKEN_TTL_MAX: ERR_INVALID_ARG). peer is the
 * client's address (rate limiting), "" when unknown. Unknown user or wrong
 * password: ERR_UNAUTHENTICATED with the same detail ("wrong user name or
 * password") in the same time. Too many failures: ERR_RATE_LIMITED, and
 * *retry_after (may be NULL) the seconds to wait. token gets the text;
 * the caller wipes it after sending. */
RESULT auth_login(struct auth *a, const char *name, const char *password, size_t len,
                  const char *peer, unsigned ttl, char token[AUTH_TOKEN_TEXT_MAX],
                  struct auth_token_info *info, unsigned *retry_after)
    __attribute__((nonnull(1, 2, 3, 5, 7, 8)));

/* A presented token: ERR_UNAUTHENTICATED when unknown, malformed, revoked,
 * expired or its user is gone (detail says which, never echoing the token).
 * Compares hashes, so timing reveals nothing of the token. */
RESULT auth_token_check(struct auth *a, const char *token, struct auth_token_info *info)
    __attribute__((nonnull));
/* Revokes by id (ERR_NOT_FOUND). */
RESULT auth_token_revoke(struct auth *a, const char *id) __attribute__((nonnull));
/* {"tokens": [{"id", "user", "created", "expires", "revoked"}]}: user's, or
 * everyone's when user is NULL. Expired and revoked tokens older than a day
 * are purged on the way. */
RESULT auth_token_list(struct auth *a, const char *user, json_t **out)
    __attribute__((nonnull(1, 3)));

#endif
