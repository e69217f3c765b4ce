/*
 * auth.c - see auth.h.
 *
 * Three locks, never nested, never held across an Argon2id computation:
 *   - the store's mutex, around SQL statements only;
 *   - hash_mu, which counts running Argon2id computations (at most
 *     AUTH_HASH_PARALLEL, each 64 MiB);
 *   - rate_mu, around the in-memory failure counters.
 *
 * Tables (created here, see store.h):
 *   users(name, hash, created)                 hash: PHC string
 *   group_members(grp, user)                   a group exists while it has members
 *   tokens(hash, id, user, created, expires, revoked)
 *                                              hash: SHA-256 of the token's text;
 *                                              revoked: Unix time, NULL while valid
 * Tokens do not reference users by foreign key: a deleted user's tokens stay
 * (revoked) so that the token list can show them until they are purged.
 */
#include "server/auth.h"

#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/log.h"
#include "core/secret.h"
#include "vm/vmutil.h"

/* Argon2id (RFC 9106): 64 MiB, two passes, one lane; about 100 ms on a
 * server core. Stored hashes carry their own parameters (PHC string), so
 * raising these applies to new passwords without a schema change. */
#define AUTH_ARGON2_TIME 2u
#define AUTH_ARGON2_MEMORY_KIB 65536u
#define AUTH_ARGON2_LANES 1u
#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32
#define AUTH_PHC_MAX 256 /* ours are 97 bytes; longer stored strings are refused */

#define AUTH_TOKEN_PREFIX "vst_"
#define AUTH_TOKEN_PREFIX_LEN 4
#define AUTH_TOKEN_RAW_LEN 32
#define AUTH_TOKEN_B64_LEN 43 /* RFC 4648 §5 without padding: ceil(32 * 8 / 6) */
#define AUTH_TOKEN_TEXT_LEN (AUTH_TOKEN_PREFIX_LEN + AUTH_TOKEN_B64_LEN)
#define AUTH_TOKEN_PURGE_AFTER 86400 /* expired or revoked tokens listed for a day */

/* Failure counters kept in memory (about 400 KiB), the entry whose latest
 * failure is oldest evicted when full. An entry outlives its attempt only
 * when the attempt failed, which cost an Argon2id run (at most
 * AUTH_HASH_PARALLEL at a time, two entries each): filling the table takes
 * longer than AUTH_FAIL_WINDOW, so the evicted entry has normally expired. */
#define AUTH_RATE_ENTRIES 4096
#define AUTH_NS_PER_S 1000000000LL

static const char auth_root_detail[] =
    "root is the local administrator: it has no password; use the Unix socket as root";
static const char auth_login_detail[] = "wrong user name or password";

enum auth_rate_kind { AUTH_RATE_NAME = 1, AUTH_RATE_PEER = 2 };

struct auth_rate_entry {
    uint8_t kind; /* 0: free */
    uint8_t key[CRYPTO_SHA256_LEN];
    unsigned count;                    /* failures recorded, at most auth_rate_limit(e) */
    unsigned next;                     /* ring slot of the next failure: the oldest when full */
    int64_t failures[AUTH_FAIL_PEER_LIMIT]; /* CLOCK_MONOTONIC ns; a name uses AUTH_FAIL_LIMIT */
    int64_t last;                      /* the latest failure (or creation) */
    unsigned hashing;                  /* attempts being hashed now */
};

struct auth {
    struct store *st;
    char dummy_phc[AUTH_PHC_MAX]; /* hash of random bytes, for unknown users */

    pthread_mutex_t hash_mu;
    pthread_cond_t hash_cv;
    unsigned hashing;

    pthread_mutex_t rate_mu;
    struct auth_rate_entry rate[AUTH_RATE_ENTRIES];
};

static const char auth_schema[] =
    "CREATE TABLE IF NOT EXISTS users ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " hash TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS group_members ("
    " grp TEXT NOT NULL,"
    " user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    " PRIMARY KEY (grp, user));"
    "CREATE INDEX IF NOT EXISTS group_members_user ON group_members(user);"
    "CREATE TABLE IF NOT EXISTS tokens ("
    " hash BLOB PRIMARY KEY NOT NULL,"
    " id TEXT NOT NULL UNIQUE,"
    " user TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " revoked INTEGER);"
    "CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user);";

/* --- small helpers --- */

static void auth_stmt_finalize(sqlite3_stmt **st)
{
    sqlite3_finalize(*st); /* accepts NULL */
    *st = NULL;
}

/* A statement finalized when it goes out of scope (before the caller's
 * store_unlock: the _locked helpers own their statements). */
#define AUTH_STMT __attribute__((cleanup(auth_stmt_finalize))) sqlite3_stmt *

static RESULT auth_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK)
        return store_error(db, "preparing a statement");
    return OK_RESULT;
}

static RESULT auth_bind_text(sqlite3 *db, sqlite3_stmt *st, int i, const char *s)
{
    if (sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return store_error(db, "binding a value");
    return OK_RESULT;
}

static RESULT auth_bind_int(sqlite3 *db, sqlite3_stmt *st, int i, int64_t v)
{
    if (sqlite3_bind_int64(st, i, v) != SQLITE_OK)
        return store_error(db, "binding a value");
    return OK_RESULT;
}

static RESULT auth_bind_blob(sqlite3 *db, sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT) != SQLITE_OK)
        return store_error(db, "binding a value");
    return OK_RESULT;
}

/* Runs a statement that returns no row. */
static RESULT auth_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_error(db, what);
    return OK_RESULT;
}

/* A column's text copied into out; ERR_STORE if it is missing or too long. */
static RESULT auth_column_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (s == NULL || n < 0 || (size_t)n >= size) {
        RAISE(ERR_STORE);
        return err_detail("database: a stored value is missing or too long");
    }
    memcpy(out, s, (size_t)n);
    out[n] = '\0';
    return OK_RESULT;
}

/* Unix seconds as RFC 3339 (vm_time_now's form). */
static void auth_time_text(int64_t t, char out[VM_TIME_LEN])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, VM_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, VM_TIME_LEN, "1970-01-01T00:00:00Z");
}

static int64_t auth_wall_now(void)
{
    return (int64_t)time(NULL);
}

static int64_t auth_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * AUTH_NS_PER_S + ts.tv_nsec;
}

static bool auth_is_root(const char *name)
{
    return strcmp(name, AUTH_ROOT_USER) == 0;
}

static RESULT auth_refuse_root(void)
{
    RAISE(ERR_PERM);
    return err_detail("%s", auth_root_detail);
}

/* A name that could be a user's: the VM name rules, and not root. */
static RESULT auth_check_user_name(const char *name)
{
    if (auth_is_root(name))
        return auth_refuse_root();
    return vm_check_name("user", name);
}

static RESULT auth_check_password(size_t len)
{
    if (len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a password must be %d to %d bytes long", AUTH_PASSWORD_MIN,
                          AUTH_PASSWORD_MAX);
    }
    return OK_RESULT;
}

/* --- Argon2id, bounded --- */

static void auth_hash_slot_take(struct auth *a)
{
    pthread_mutex_lock(&a->hash_mu);
    while (a->hashing >= AUTH_HASH_PARALLEL)
        pthread_cond_wait(&a->hash_cv, &a->hash_mu);
    a->hashing++;
    pthread_mutex_unlock(&a->hash_mu);
}

static void auth_hash_slot_give(struct auth *a)
{
    pthread_mutex_lock(&a->hash_mu);
    a->hashing--;
    pthread_cond_signal(&a->hash_cv);
    pthread_mutex_unlock(&a->hash_mu);
}

static RESULT auth_argon2_error(int e, const char *what)
{
    RAISE(e == ARGON2_MEMORY_ALLOCATION_ERROR ? ERR_NOMEM : ERR_CRYPTO);
    return err_detail("%s: Argon2id: %s", what, argon2_error_message(e));
}

/* The PHC string of password with a fresh salt. */
static RESULT auth_password_hash(struct auth *a, const void *password, size_t len,
                                 char out[AUTH_PHC_MAX])
{
    uint8_t salt[AUTH_SALT_LEN];
    GUARD(crypto_random(salt, sizeof salt));
    auth_hash_slot_take(a);
    int e =
        argon2id_hash_encoded(AUTH_ARGON2_TIME, AUTH_ARGON2_MEMORY_KIB, AUTH_ARGON2_LANES, password,
                              len, salt, sizeof salt, AUTH_HASH_LEN, out, AUTH_PHC_MAX);
    auth_hash_slot_give(a);
    if (e != ARGON2_OK) {
        secret_wipe(out, AUTH_PHC_MAX);
        return auth_argon2_error(e, "cannot hash the password");
    }
    return OK_RESULT;
}

/* Whether password matches phc, with phc's own parameters; the caller
 * holds a hash slot. A stored string that cannot be decoded is no match
 * (logged): the caller answers as for a wrong password, so a broken account
 * is not an oracle either. Argon2's final comparison is constant-time. */
static RESULT auth_password_verify(const char *phc, const void *password, size_t len, bool *match)
{
    *match = false;
    int e = argon2id_verify(phc, password, len);
    if (e == ARGON2_OK) {
        *match = true;
        return OK_RESULT;
    }
    if (e == ARGON2_VERIFY_MISMATCH)
        return OK_RESULT;
    if (e == ARGON2_MEMORY_ALLOCATION_ERROR || e == ARGON2_THREAD_FAIL)
        return auth_argon2_error(e, "cannot check the password");
    log_error("a stored password hash cannot be decoded", LOG_S("reason", argon2_error_message(e)));
    return OK_RESULT;
}

/* --- rate limiting --- */

/* Attempts are counted twice. Before queueing for a hash slot, a cheap
 * check refuses a limited name or peer at once. Then, with the slot held, a
 * second check also counts the attempts of that name or peer being hashed
 * right now and reserves a place among them: parallel guesses cannot
 * overshoot the limit, and a burst of logins waiting for a slot (a CI
 * system behind one address) is not refused for being many. */

static RESULT auth_rate_key(const char *s, uint8_t key[CRYPTO_SHA256_LEN])
{
    return crypto_sha256(s, strlen(s), key);
}

/* The entry for (kind, key), or NULL. With rate_mu held. */
static struct auth_rate_entry *auth_rate_find(struct auth *a, uint8_t kind,
                                              const uint8_t key[CRYPTO_SHA256_LEN])
{
    for (size_t i = 0; i < AUTH_RATE_ENTRIES; i++) {
        struct auth_rate_entry *e = &a->rate[i];
        if (e->kind == kind && memcmp(e->key, key, CRYPTO_SHA256_LEN) == 0)
            return e;
    }
    return NULL;
}

/* The entry for (kind, key), made if missing by taking a free one or the
 * one whose latest use is oldest, never one being hashed for. NULL when
 * every entry is being hashed for (not with AUTH_HASH_PARALLEL slots). */
static struct auth_rate_entry *auth_rate_get(struct auth *a, uint8_t kind,
                                             const uint8_t key[CRYPTO_SHA256_LEN], int64_t now)
{
    struct auth_rate_entry *e = auth_rate_find(a, kind, key);
    if (e != NULL)
        return e;
    for (size_t i = 0; i < AUTH_RATE_ENTRIES; i++) {
        struct auth_rate_entry *c = &a->rate[i];
        if (c->kind == 0) {
            e = c;
            break;
        }
        if (c->hashing == 0 && (e == NULL || c->last < e->last))
            e = c;
    }
    if (e != NULL) {
        memset(e, 0, sizeof *e);
        e->kind = kind;
        memcpy(e->key, key, CRYPTO_SHA256_LEN);
        e->last = now;
    }
    return e;
}

/* Frees an entry that no longer says anything. */
static void auth_rate_tidy(struct auth_rate_entry *e)
{
    if (e->count == 0 && e->hashing == 0)
        memset(e, 0, sizeof *e);
}

_Static_assert(AUTH_FAIL_PEER_LIMIT >= AUTH_FAIL_LIMIT, "the ring holds the larger limit");

/* The failures an entry allows in the window. */
static unsigned auth_rate_limit(const struct auth_rate_entry *e)
{
    return e->kind == AUTH_RATE_PEER ? AUTH_FAIL_PEER_LIMIT : AUTH_FAIL_LIMIT;
}

static int auth_compare_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Seconds until e may try again (0: now). Failures inside the window plus
 * attempts being hashed reach the entry's limit: the wait lasts until enough
 * of those failures leave the window; if the attempts in flight alone fill
 * it, a second (they may well succeed). */
static unsigned auth_rate_wait(const struct auth_rate_entry *e, int64_t now)
{
    int64_t recent[AUTH_FAIL_PEER_LIMIT];
    unsigned n = 0;
    if (e == NULL)
        return 0;
    unsigned limit = auth_rate_limit(e);
    /* The ring fills from slot 0: while not full, slots [0, count) hold. */
    for (unsigned i = 0; i < e->count; i++) {
        if (now - e->failures[i] < AUTH_FAIL_WINDOW * AUTH_NS_PER_S)
            recent[n++] = e->failures[i];
    }
    if (n + e->hashing < limit)
        return 0;
    unsigned k = n + e->hashing - limit + 1; /* failures that must leave */
    if (k > n)
        return 1;
    qsort(recent, n, sizeof recent[0], auth_compare_i64);
    int64_t leaves = recent[k - 1] + AUTH_FAIL_WINDOW * AUTH_NS_PER_S;
    int64_t wait = (leaves - now + AUTH_NS_PER_S - 1) / AUTH_NS_PER_S;
    return wait < 1 ? 1 : (unsigned)wait;
}

struct auth_rate_keys {
    uint8_t name[CRYPTO_SHA256_LEN];
    uint8_t peer[CRYPTO_SHA256_LEN];
    bool has_peer; /* "" peer: only the name counts */
};

static RESULT auth_rate_keys(const char *name, const char *peer, struct auth_rate_keys *k)
{
    GUARD(auth_rate_key(name, k->name));
    k->has_peer = peer[0] != '\0';
    if (k->has_peer)
        GUARD(auth_rate_key(peer, k->peer));
    return OK_RESULT;
}

/* With rate_mu held. */
static unsigned auth_rate_wait_keys(struct auth *a, const struct auth_rate_keys *k, int64_t now)
{
    unsigned wait = auth_rate_wait(auth_rate_find(a, AUTH_RATE_NAME, k->name), now);
    if (k->has_peer) {
        unsigned w = auth_rate_wait(auth_rate_find(a, AUTH_RATE_PEER, k->peer), now);
        if (w > wait)
            wait = w;
    }
    return wait;
}

/* The first check: seconds to wait, 0 to go on. */
static unsigned auth_rate_check(struct auth *a, const struct auth_rate_keys *k)
{
    pthread_mutex_lock(&a->rate_mu);
    unsigned wait = auth_rate_wait_keys(a, k, auth_monotonic_ns());
    pthread_mutex_unlock(&a->rate_mu);
    return wait;
}

/* The second check, with a hash slot held: on 0, the attempt counts as
 * being hashed until auth_rate_release. */
static unsigned auth_rate_reserve(struct auth *a, const struct auth_rate_keys *k)
{
    int64_t now = auth_monotonic_ns();
    pthread_mutex_lock(&a->rate_mu);
    unsigned wait = auth_rate_wait_keys(a, k, now);
    if (wait == 0) {
        struct auth_rate_entry *name = auth_rate_get(a, AUTH_RATE_NAME, k->name, now);
        struct auth_rate_entry *peer = NULL;
        if (name != NULL) {
            name->hashing++; /* before getting the peer's: not evicted for it */
            if (k->has_peer) {
                peer = auth_rate_get(a, AUTH_RATE_PEER, k->peer, now);
                if (peer != NULL)
                    peer->hashing++;
            }
        }
        if (name == NULL || (k->has_peer && peer == NULL)) {
            if (name != NULL) {
                name->hashing--;
                auth_rate_tidy(name);
            }
            wait = 1; /* the table is full of attempts in flight: fail closed */
        }
    }
    pthread_mutex_unlock(&a->rate_mu);
    return wait;
}

enum auth_rate_outcome { AUTH_RATE_NONE, AUTH_RATE_FAILURE, AUTH_RATE_SUCCESS };

static void auth_rate_release_one(struct auth_rate_entry *e, enum auth_rate_outcome outcome,
                                  int64_t now)
{
    if (e == NULL)
        return;
    if (e->hashing > 0)
        e->hashing--;
    if (outcome == AUTH_RATE_FAILURE) {
        e->failures[e->next] = now;
        e->next = (e->next + 1) % auth_rate_limit(e);
        if (e->count < auth_rate_limit(e))
            e->count++;
        e->last = now;
    } else if (outcome == AUTH_RATE_SUCCESS) {
        e->count = 0;
        e->next = 0;
    }
    auth_rate_tidy(e);
}

/* Ends a reserved attempt. A success forgets the name's failures, not the
 * peer's: one right password must not let a peer go on guessing others. */
static void auth_rate_release(struct auth *a, const struct auth_rate_keys *k,
                              enum auth_rate_outcome outcome)
{
    int64_t now = auth_monotonic_ns();
    pthread_mutex_lock(&a->rate_mu);
    auth_rate_release_one(auth_rate_find(a, AUTH_RATE_NAME, k->name), outcome, now);
    if (k->has_peer)
        auth_rate_release_one(auth_rate_find(a, AUTH_RATE_PEER, k->peer),
                              outcome == AUTH_RATE_SUCCESS ? AUTH_RATE_NONE : outcome, now);
    pthread_mutex_unlock(&a->rate_mu);
}

/* --- open, close --- */

RESULT auth_open(struct store *st, struct auth **out)
{
    uint8_t random_password[32];
    *out = NULL;
    struct auth *a = calloc(1, sizeof *a);
    ENSURE(a != NULL, ERR_NOMEM);
    a->st = st;
    pthread_mutex_init(&a->hash_mu, NULL);
    pthread_cond_init(&a->hash_cv, NULL);
    pthread_mutex_init(&a->rate_mu, NULL);

    sqlite3 *db = store_lock(st);
    vs_result rc = store_exec(db, auth_schema);
    store_unlock(st);
    if (!is_ok(rc))
        goto fail;
    rc = crypto_random(random_password, sizeof random_password);
    if (!is_ok(rc))
        goto fail;
    rc = auth_password_hash(a, random_password, sizeof random_password, a->dummy_phc);
    secret_wipe(random_password, sizeof random_password);
    if (!is_ok(rc))
        goto fail;
    *out = a;
    return OK_RESULT;
fail:
    auth_close(&a);
    return rc;
}

void auth_close(struct auth **ap)
{
    struct auth *a = *ap;
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->hash_mu);
    pthread_cond_destroy(&a->hash_cv);
    pthread_mutex_destroy(&a->rate_mu);
    /* Failure counters hold hashes of names and peer addresses. */
    secret_wipe(a, sizeof *a);
    free(a);
    *ap = NULL;
}

/* --- users --- */

static RESULT auth_user_exists_locked(sqlite3 *db, const char *name)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "SELECT 1 FROM users WHERE name = ?", &st));
    GUARD(auth_bind_text(db, st, 1, name));
    int e = sqlite3_step(st);
    if (e == SQLITE_ROW)
        return OK_RESULT;
    if (e != SQLITE_DONE)
        return store_error(db, "looking up a user");
    RAISE(ERR_NOT_FOUND);
    return err_detail("no user named '%s'", name);
}

RESULT auth_user_exists(struct auth *a, const char *name)
{
    if (auth_is_root(name))
        return OK_RESULT;
    GUARD(vm_check_name("user", name));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_user_exists_locked(db, name);
    store_unlock(a->st);
    return rc;
}

static RESULT auth_user_insert_locked(sqlite3 *db, const char *name, const char *phc)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "INSERT INTO users (name, hash, created) VALUES (?, ?, ?)", &st));
    GUARD(auth_bind_text(db, st, 1, name));
    GUARD(auth_bind_text(db, st, 2, phc));
    GUARD(auth_bind_int(db, st, 3, auth_wall_now()));
    int e = sqlite3_step(st);
    if ((e & 0xff) == SQLITE_CONSTRAINT) {
        RAISE(ERR_EXISTS);
        return err_detail("a user named '%s' already exists", name);
    }
    if (e != SQLITE_DONE)
        return store_error(db, "creating a user");
    return OK_RESULT;
}

RESULT auth_user_create(struct auth *a, const char *name, const char *password, size_t len)
{
    char phc[AUTH_PHC_MAX];
    GUARD(auth_check_user_name(name));
    GUARD(auth_check_password(len));
    /* Refuse a duplicate before spending a hash on it; the insert checks
     * again (another thread may create the same name meanwhile). */
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_user_exists_locked(db, name);
    store_unlock(a->st);
    if (is_ok(rc)) {
        RAISE(ERR_EXISTS);
        return err_detail("a user named '%s' already exists", name);
    }
    if (rc.code != ERR_NOT_FOUND)
        return rc;
    GUARD(auth_password_hash(a, password, len, phc));
    db = store_lock(a->st);
    rc = auth_user_insert_locked(db, name, phc);
    store_unlock(a->st);
    secret_wipe(phc, sizeof phc);
    return rc;
}

static RESULT auth_user_set_hash_locked(sqlite3 *db, const char *name, const char *phc)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "UPDATE users SET hash = ? WHERE name = ?", &st));
    GUARD(auth_bind_text(db, st, 1, phc));
    GUARD(auth_bind_text(db, st, 2, name));
    GUARD(auth_step_done(db, st, "changing a password"));
    if (sqlite3_changes(db) == 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no user named '%s'", name);
    }
    return OK_RESULT;
}

RESULT auth_user_set_password(struct auth *a, const char *name, const char *password, size_t len)
{
    char phc[AUTH_PHC_MAX];
    GUARD(auth_check_user_name(name));
    GUARD(auth_check_password(len));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_user_exists_locked(db, name);
    store_unlock(a->st);
    GUARD(rc);
    GUARD(auth_password_hash(a, password, len, phc));
    db = store_lock(a->st);
    rc = auth_user_set_hash_locked(db, name, phc);
    store_unlock(a->st);
    secret_wipe(phc, sizeof phc);
    return rc;
}

static RESULT auth_user_delete_steps(sqlite3 *db, const char *name)
{
    {
        AUTH_STMT st = NULL;
        GUARD(auth_prepare(db, "DELETE FROM group_members WHERE user = ?", &st));
        GUARD(auth_bind_text(db, st, 1, name));
        GUARD(auth_step_done(db, st, "removing a user's group memberships"));
    }
    {
        AUTH_STMT st = NULL;
        GUARD(auth_prepare(db, "UPDATE tokens SET revoked = ? WHERE user = ? AND revoked IS NULL",
                           &st));
        GUARD(auth_bind_int(db, st, 1, auth_wall_now()));
        GUARD(auth_bind_text(db, st, 2, name));
        GUARD(auth_step_done(db, st, "revoking a user's tokens"));
    }
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "DELETE FROM users WHERE name = ?", &st));
    GUARD(auth_bind_text(db, st, 1, name));
    GUARD(auth_step_done(db, st, "deleting a user"));
    if (sqlite3_changes(db) == 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no user named '%s'", name);
    }
    return OK_RESULT;
}

RESULT auth_user_delete(struct auth *a, const char *name)
{
    if (auth_is_root(name)) {
        RAISE(ERR_PERM);
        return err_detail("root is the local administrator: it cannot be deleted");
    }
    GUARD(vm_check_name("user", name));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = store_begin(db);
    if (is_ok(rc)) {
        rc = auth_user_delete_steps(db, name);
        if (is_ok(rc))
            rc = store_commit(db);
        if (!is_ok(rc))
            store_rollback(db);
    }
    store_unlock(a->st);
    return rc;
}

/* Appends {"name", "created", "groups": [], "builtin"} to users; the new
 * entry's groups array in *groups. */
static RESULT auth_user_json(json_t *users, const char *name, json_t *created, bool builtin,
                             json_t **groups)
{
    json_t *g = json_array();
    json_t *u = json_pack("{s:s, s:o, s:o, s:b}", "name", name, "created", created, "groups", g,
                          "builtin", builtin);
    ENSURE(u != NULL, ERR_NOMEM);
    ENSURE(json_array_append_new(users, u) == 0, ERR_NOMEM);
    *groups = g;
    return OK_RESULT;
}

static RESULT auth_user_list_locked(sqlite3 *db, json_t *users)
{
    json_t *groups = NULL;
    char current[AUTH_NAME_MAX] = "";
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db,
                       "SELECT u.name, u.created, g.grp FROM users u"
                       " LEFT JOIN group_members g ON g.user = u.name"
                       " ORDER BY u.name, g.grp",
                       &st));
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        char name[AUTH_NAME_MAX];
        GUARD(auth_column_text(st, 0, name, sizeof name));
        if (groups == NULL || strcmp(name, current) != 0) {
            char created[VM_TIME_LEN];
            auth_time_text(sqlite3_column_int64(st, 1), created);
            GUARD(auth_user_json(users, name, json_string(created), false, &groups));
            snprintf(current, sizeof current, "%s", name);
        }
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            char grp[AUTH_NAME_MAX];
            GUARD(auth_column_text(st, 2, grp, sizeof grp));
            ENSURE(json_array_append_new(groups, json_string(grp)) == 0, ERR_NOMEM);
        }
    }
    if (e != SQLITE_DONE)
        return store_error(db, "listing users");
    return OK_RESULT;
}

RESULT auth_user_list(struct auth *a, json_t **out)
{
    json_t *groups;
    *out = NULL;
    json_t *users = json_array();
    ENSURE(users != NULL, ERR_NOMEM);
    /* root first: built in, never created, in no group. */
    vs_result rc = auth_user_json(users, AUTH_ROOT_USER, json_null(), true, &groups);
    if (is_ok(rc)) {
        sqlite3 *db = store_lock(a->st);
        rc = auth_user_list_locked(db, users);
        store_unlock(a->st);
    }
    if (is_ok(rc)) {
        *out = json_pack("{s:o}", "users", users);
        users = NULL; /* json_pack's "o" took it, even on failure */
        if (*out == NULL)
            rc = RAISE(ERR_NOMEM);
    }
    json_decref(users);
    return rc;
}

/* --- groups --- */

static RESULT auth_check_membership_names(const char *group, const char *user)
{
    GUARD(vm_check_name("group", group));
    if (auth_is_root(user)) {
        RAISE(ERR_PERM);
        return err_detail("root is the local administrator: it holds every privilege and "
                          "belongs to no group");
    }
    return vm_check_name("user", user);
}

static RESULT auth_group_add_locked(sqlite3 *db, const char *group, const char *user)
{
    GUARD(auth_user_exists_locked(db, user));
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "INSERT INTO group_members (grp, user) VALUES (?, ?)", &st));
    GUARD(auth_bind_text(db, st, 1, group));
    GUARD(auth_bind_text(db, st, 2, user));
    int e = sqlite3_step(st);
    if ((e & 0xff) == SQLITE_CONSTRAINT) {
        RAISE(ERR_EXISTS);
        return err_detail("user '%s' is already in group '%s'", user, group);
    }
    if (e != SQLITE_DONE)
        return store_error(db, "adding a user to a group");
    return OK_RESULT;
}

RESULT auth_group_add(struct auth *a, const char *group, const char *user)
{
    GUARD(auth_check_membership_names(group, user));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_group_add_locked(db, group, user);
    store_unlock(a->st);
    return rc;
}

static RESULT auth_group_remove_locked(sqlite3 *db, const char *group, const char *user)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "DELETE FROM group_members WHERE grp = ? AND user = ?", &st));
    GUARD(auth_bind_text(db, st, 1, group));
    GUARD(auth_bind_text(db, st, 2, user));
    GUARD(auth_step_done(db, st, "removing a user from a group"));
    if (sqlite3_changes(db) == 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("user '%s' is not in group '%s'", user, group);
    }
    return OK_RESULT;
}

RESULT auth_group_remove(struct auth *a, const char *group, const char *user)
{
    GUARD(auth_check_membership_names(group, user));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_group_remove_locked(db, group, user);
    store_unlock(a->st);
    return rc;
}

static RESULT auth_user_groups_locked(sqlite3 *db, const char *user, char (*groups)[AUTH_NAME_MAX],
                                      size_t max, size_t *n)
{
    GUARD(auth_user_exists_locked(db, user));
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "SELECT grp FROM group_members WHERE user = ? ORDER BY grp", &st));
    GUARD(auth_bind_text(db, st, 1, user));
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        /* Fail closed rather than drop a group the caller would not see. */
        if (*n == max) {
            RAISE(ERR_TOO_LARGE);
            return err_detail("user '%s' is in more than %zu groups", user, max);
        }
        GUARD(auth_column_text(st, 0, groups[*n], AUTH_NAME_MAX));
        (*n)++;
    }
    if (e != SQLITE_DONE)
        return store_error(db, "listing a user's groups");
    return OK_RESULT;
}

RESULT auth_user_groups(struct auth *a, const char *user, char (*groups)[AUTH_NAME_MAX], size_t max,
                        size_t *n)
{
    *n = 0;
    if (auth_is_root(user))
        return OK_RESULT;
    GUARD(vm_check_name("user", user));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_user_groups_locked(db, user, groups, max, n);
    store_unlock(a->st);
    if (!is_ok(rc))
        *n = 0;
    return rc;
}

/* --- tokens --- */

/* RFC 4648 §5 (base64url), no padding; out gets 4 * len / 3 rounded up
 * characters and a NUL. */
static void auth_base64url(const uint8_t *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t n = len - i < 3 ? len - i : 3;
        if (n > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (n > 2)
            v |= in[i + 2];
        for (size_t k = 0; k < n + 1; k++)
            out[o++] = alphabet[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = '\0';
}

static int auth_base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Whether text has the shape of a token we issue: "vst_", 43 base64url
 * characters whose last carries 4 bits and two zero bits, nothing after.
 * Reads at most AUTH_TOKEN_TEXT_MAX bytes of text. */
static bool auth_token_well_formed(const char *text)
{
    if (strnlen(text, AUTH_TOKEN_TEXT_MAX) != AUTH_TOKEN_TEXT_LEN ||
        memcmp(text, AUTH_TOKEN_PREFIX, AUTH_TOKEN_PREFIX_LEN) != 0)
        return false;
    int v = 0;
    for (size_t i = AUTH_TOKEN_PREFIX_LEN; i < AUTH_TOKEN_TEXT_LEN; i++) {
        v = auth_base64url_value(text[i]);
        if (v < 0)
            return false;
    }
    return (v & 3) == 0;
}

/* The stored form of a token's text: its SHA-256 and the id shown. */
static RESULT auth_token_digest(const char *text, uint8_t hash[CRYPTO_SHA256_LEN],
                                char id[AUTH_TOKEN_ID_LEN])
{
    GUARD(crypto_sha256(text, AUTH_TOKEN_TEXT_LEN, hash));
    for (size_t i = 0; i < (AUTH_TOKEN_ID_LEN - 1) / 2; i++)
        snprintf(id + 2 * i, 3, "%02x", hash[i]);
    return OK_RESULT;
}

/* Stores a token for name, if name's password hash is still phc: a
 * password change or a delete (and re-create) while the login was hashing
 * must not yield a token. */
static RESULT auth_token_insert_locked(sqlite3 *db, const uint8_t hash[CRYPTO_SHA256_LEN],
                                       const struct auth_token_info *info, const char *phc)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db,
                       "INSERT INTO tokens (hash, id, user, created, expires, revoked)"
                       " SELECT ?, ?, name, ?, ?, NULL FROM users WHERE name = ? AND hash = ?",
                       &st));
    GUARD(auth_bind_blob(db, st, 1, hash, CRYPTO_SHA256_LEN));
    GUARD(auth_bind_text(db, st, 2, info->id));
    GUARD(auth_bind_int(db, st, 3, info->created));
    GUARD(auth_bind_int(db, st, 4, info->expires));
    GUARD(auth_bind_text(db, st, 5, info->user));
    GUARD(auth_bind_text(db, st, 6, phc));
    GUARD(auth_step_done(db, st, "storing a token"));
    if (sqlite3_changes(db) == 0) {
        RAISE(ERR_UNAUTHENTICATED);
        return err_detail("%s", auth_login_detail);
    }
    return OK_RESULT;
}

static RESULT auth_token_issue(struct auth *a, const char *name, const char *phc, unsigned ttl,
                               char token[AUTH_TOKEN_TEXT_MAX], struct auth_token_info *info)
{
    uint8_t raw[AUTH_TOKEN_RAW_LEN];
    uint8_t hash[CRYPTO_SHA256_LEN];
    vs_result rc = crypto_random_key(raw, sizeof raw);
    if (is_ok(rc)) {
        memcpy(token, AUTH_TOKEN_PREFIX, AUTH_TOKEN_PREFIX_LEN);
        auth_base64url(raw, sizeof raw, token + AUTH_TOKEN_PREFIX_LEN);
        rc = auth_token_digest(token, hash, info->id);
    }
    if (is_ok(rc)) {
        snprintf(info->user, sizeof info->user, "%s", name);
        info->created = auth_wall_now();
        info->expires = info->created + (int64_t)ttl;
        sqlite3 *db = store_lock(a->st);
        rc = auth_token_insert_locked(db, hash, info, phc);
        store_unlock(a->st);
    }
    secret_wipe(raw, sizeof raw);
    if (!is_ok(rc)) {
        secret_wipe(token, AUTH_TOKEN_TEXT_MAX);
        memset(info, 0, sizeof *info);
    }
    return rc;
}

/* The stored hash of name's password into phc and *found; a hash too long
 * to be ours is logged and counts as none (answered as a wrong password). */
static RESULT auth_user_hash_locked(sqlite3 *db, const char *name, char phc[AUTH_PHC_MAX],
                                    bool *found)
{
    *found = false;
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "SELECT hash FROM users WHERE name = ?", &st));
    GUARD(auth_bind_text(db, st, 1, name));
    int e = sqlite3_step(st);
    if (e == SQLITE_DONE)
        return OK_RESULT;
    if (e != SQLITE_ROW)
        return store_error(db, "looking up a user");
    const unsigned char *s = sqlite3_column_text(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    if (s == NULL || n <= 0 || n >= AUTH_PHC_MAX) {
        log_error("a stored password hash is missing or too long", LOG_S("user", name));
        return OK_RESULT;
    }
    memcpy(phc, s, (size_t)n);
    phc[n] = '\0';
    *found = true;
    return OK_RESULT;
}

/* Whether name is a user, with the stored hash in phc. A name that cannot
 * be a user's is just unknown: it gets the same hash and answer. */
static RESULT auth_login_lookup(struct auth *a, const char *name, char phc[AUTH_PHC_MAX],
                                bool *known)
{
    *known = false;
    if (!is_ok(vm_check_name("user", name)))
        return OK_RESULT;
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_user_hash_locked(db, name, phc, known);
    store_unlock(a->st);
    return rc;
}

RESULT auth_login(struct auth *a, const char *name, const char *password, size_t len,
                  const char *peer, unsigned ttl, char token[AUTH_TOKEN_TEXT_MAX],
                  struct auth_token_info *info, unsigned *retry_after)
{
    char phc[AUTH_PHC_MAX] = "";
    struct auth_rate_keys keys;
    bool known = false, match = false;

    token[0] = '\0';
    memset(info, 0, sizeof *info);
    if (retry_after != NULL)
        *retry_after = 0;
    if (ttl == 0)
        ttl = AUTH_TOKEN_TTL_DEFAULT;
    if (ttl > AUTH_TOKEN_TTL_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a token lives at most %u seconds", AUTH_TOKEN_TTL_MAX);
    }
    if (len > AUTH_PASSWORD_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a password is at most %d bytes long", AUTH_PASSWORD_MAX);
    }
    if (auth_is_root(name))
        return auth_refuse_root();

    /* Before any hashing: a refused attempt costs no Argon2id, and says
     * nothing about the password. */
    GUARD(auth_rate_keys(name, peer, &keys));
    unsigned wait = auth_rate_check(a, &keys);
    vs_result rc = OK_RESULT;
    if (wait == 0)
        rc = auth_login_lookup(a, name, phc, &known);
    if (is_ok(rc) && wait == 0) {
        auth_hash_slot_take(a);
        wait = auth_rate_reserve(a, &keys);
        if (wait == 0)
            rc = auth_password_verify(known ? phc : a->dummy_phc, password, len, &match);
        auth_hash_slot_give(a);
        if (wait == 0)
            auth_rate_release(a, &keys,
                              !is_ok(rc)       ? AUTH_RATE_NONE
                              : known && match ? AUTH_RATE_SUCCESS
                                               : AUTH_RATE_FAILURE);
    }
    if (is_ok(rc) && wait > 0) {
        if (retry_after != NULL)
            *retry_after = wait;
        rc = RAISE(ERR_RATE_LIMITED);
        err_detail("too many failed logins: try again in %u seconds", wait);
    } else if (is_ok(rc) && !(known && match)) {
        rc = RAISE(ERR_UNAUTHENTICATED);
        err_detail("%s", auth_login_detail);
    } else if (is_ok(rc)) {
        rc = auth_token_issue(a, name, phc, ttl, token, info);
    }
    secret_wipe(phc, sizeof phc);
    return rc;
}

static RESULT auth_token_unauthenticated(const char *why)
{
    RAISE(ERR_UNAUTHENTICATED);
    return err_detail("%s", why);
}

static RESULT auth_token_check_locked(sqlite3 *db, const uint8_t hash[CRYPTO_SHA256_LEN],
                                      struct auth_token_info *info)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db,
                       "SELECT t.id, t.user, t.created, t.expires, t.revoked IS NOT NULL,"
                       " EXISTS (SELECT 1 FROM users u WHERE u.name = t.user)"
                       " FROM tokens t WHERE t.hash = ?",
                       &st));
    GUARD(auth_bind_blob(db, st, 1, hash, CRYPTO_SHA256_LEN));
    int e = sqlite3_step(st);
    if (e == SQLITE_DONE)
        return auth_token_unauthenticated("unknown token");
    if (e != SQLITE_ROW)
        return store_error(db, "looking up a token");
    if (sqlite3_column_int(st, 4) != 0)
        return auth_token_unauthenticated("the token was revoked");
    int64_t expires = sqlite3_column_int64(st, 3);
    if (auth_wall_now() >= expires)
        return auth_token_unauthenticated("the token has expired");
    if (sqlite3_column_int(st, 5) == 0)
        return auth_token_unauthenticated("the token's user no longer exists");
    GUARD(auth_column_text(st, 0, info->id, sizeof info->id));
    GUARD(auth_column_text(st, 1, info->user, sizeof info->user));
    info->created = sqlite3_column_int64(st, 2);
    info->expires = expires;
    return OK_RESULT;
}

RESULT auth_token_check(struct auth *a, const char *token, struct auth_token_info *info)
{
    uint8_t hash[CRYPTO_SHA256_LEN];
    char id[AUTH_TOKEN_ID_LEN];
    memset(info, 0, sizeof *info);
    if (!auth_token_well_formed(token))
        return auth_token_unauthenticated("the token is malformed");
    /* Looked up by its hash: how far a wrong token matches a stored one
     * says nothing about the token text. */
    GUARD(auth_token_digest(token, hash, id));
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_token_check_locked(db, hash, info);
    store_unlock(a->st);
    if (!is_ok(rc))
        memset(info, 0, sizeof *info);
    return rc;
}

static bool auth_is_token_id(const char *id)
{
    for (size_t i = 0; i < AUTH_TOKEN_ID_LEN - 1; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false; /* also stops at the NUL of a shorter string */
    }
    return id[AUTH_TOKEN_ID_LEN - 1] == '\0';
}

static RESULT auth_token_revoke_locked(sqlite3 *db, const char *id)
{
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db, "UPDATE tokens SET revoked = coalesce(revoked, ?) WHERE id = ?", &st));
    GUARD(auth_bind_int(db, st, 1, auth_wall_now()));
    GUARD(auth_bind_text(db, st, 2, id));
    GUARD(auth_step_done(db, st, "revoking a token"));
    if (sqlite3_changes(db) == 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no token with id '%s'", id);
    }
    return OK_RESULT;
}

RESULT auth_token_revoke(struct auth *a, const char *id)
{
    if (!auth_is_token_id(id)) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("a token id is %d lower-case hexadecimal digits", AUTH_TOKEN_ID_LEN - 1);
    }
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_token_revoke_locked(db, id);
    store_unlock(a->st);
    return rc;
}

static RESULT auth_token_list_locked(sqlite3 *db, const char *user, json_t *tokens)
{
    int64_t now = auth_wall_now();
    {
        AUTH_STMT st = NULL;
        GUARD(auth_prepare(db,
                           "DELETE FROM tokens WHERE expires < ?1"
                           " OR (revoked IS NOT NULL AND revoked < ?1)",
                           &st));
        GUARD(auth_bind_int(db, st, 1, now - AUTH_TOKEN_PURGE_AFTER));
        GUARD(auth_step_done(db, st, "purging old tokens"));
    }
    AUTH_STMT st = NULL;
    GUARD(auth_prepare(db,
                       "SELECT id, user, created, expires, revoked IS NOT NULL FROM tokens"
                       " WHERE ?1 IS NULL OR user = ?1 ORDER BY created, id",
                       &st));
    if (user != NULL)
        GUARD(auth_bind_text(db, st, 1, user));
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        char id[AUTH_TOKEN_ID_LEN], name[AUTH_NAME_MAX], created[VM_TIME_LEN], expires[VM_TIME_LEN];
        GUARD(auth_column_text(st, 0, id, sizeof id));
        GUARD(auth_column_text(st, 1, name, sizeof name));
        auth_time_text(sqlite3_column_int64(st, 2), created);
        auth_time_text(sqlite3_column_int64(st, 3), expires);
        json_t *t =
            json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "user", name, "created", created,
                      "expires", expires, "revoked", sqlite3_column_int(st, 4) != 0);
        ENSURE(t != NULL, ERR_NOMEM);
        ENSURE(json_array_append_new(tokens, t) == 0, ERR_NOMEM);
    }
    if (e != SQLITE_DONE)
        return store_error(db, "listing tokens");
    return OK_RESULT;
}

RESULT auth_token_list(struct auth *a, const char *user, json_t **out)
{
    *out = NULL;
    json_t *tokens = json_array();
    ENSURE(tokens != NULL, ERR_NOMEM);
    sqlite3 *db = store_lock(a->st);
    vs_result rc = auth_token_list_locked(db, user, tokens);
    store_unlock(a->st);
    if (is_ok(rc)) {
        *out = json_pack("{s:o}", "tokens", tokens);
        tokens = NULL; /* json_pack's "o" took it, even on failure */
        if (*out == NULL)
            rc = RAISE(ERR_NOMEM);
    }
    json_decref(tokens);
    return rc;
}
