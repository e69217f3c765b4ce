/*
 * store_sqlite.c - the SQLite store with group commit. See store.h.
 */
#include "kms/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/crypto.h"
#include "core/log.h"

/* Schema version 1. objects.seq orders Locate results by age. */
static const char kms_schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS objects ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uid TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  object_type INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  sealed BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS attributes ("
    "  uid TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  value BLOB NOT NULL,"
    "  PRIMARY KEY (uid, name, idx)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS attributes_by_value ON attributes (name, value);"
    "INSERT OR IGNORE INTO meta VALUES ('schema', '1');";

struct kms_write_job {
    /* what to write */
    const struct kms_object *obj;
    bool insert;
    int64_t old_version;
    const struct buf *sealed;
    /* the outcome */
    vs_result result;
    struct err_state err;
    bool done;
    pthread_cond_t done_cv; /* signalled (under the store's mu) when done */
    struct kms_write_job *next;
};

struct kms_store {
    char *path;
    const struct kms_rootkey *rk;
    sqlite3 *db; /* the writer's connection */
    sqlite3_stmt *insert_object, *insert_attr, *update_object, *delete_attrs;
    sqlite3_stmt *begin, *commit, *rollback, *savepoint, *release, *rollback_to;
    pthread_t writer;
    bool writer_running;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct kms_write_job *head, *tail;
    bool stopping;
    struct kms_store_stats stats;
};

struct kms_store_reader {
    struct kms_store *store;
    sqlite3 *db;
    sqlite3_stmt *load_object, *load_attrs, *begin, *commit;
};

/* Process-wide SQLite settings, before its first use: no allocation
 * statistics (they take a global mutex on every malloc and free). */
static void kms_sql_configure(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static pthread_once_t kms_sql_once = PTHREAD_ONCE_INIT;

/* --- SQLite helpers --- */

static vs_result kms_sql_fail(sqlite3 *db, const char *what, const char *file, int line)
{
    err_raise(ERR_STORE, file, line);
    return err_detail("%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
}

#define SQL_FAIL(db, what) kms_sql_fail((db), (what), __FILE__, __LINE__)

static RESULT kms_sql_exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return SQL_FAIL(db, sql);
    return OK_RESULT;
}

/* Runs a prepared statement that returns no rows (BEGIN, SAVEPOINT...). */
static RESULT kms_sql_run(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    sqlite3_reset(st);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step != SQLITE_DONE)
        return SQL_FAIL(db, what);
    return OK_RESULT;
}

static RESULT kms_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        return SQL_FAIL(db, "prepare");
    return OK_RESULT;
}

static RESULT kms_sql_open(const char *path, bool create, sqlite3 **out)
{
    (void)pthread_once(&kms_sql_once, kms_sql_configure);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    sqlite3 *db = NULL;

    *out = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        vs_result rc = SQL_FAIL(db, path);
        sqlite3_close(db);
        return rc;
    }
    /* WAL: readers never block the writer. synchronous=FULL: in WAL mode
     * every commit is fsynced, so an acknowledged write survives a crash or
     * power loss. */
    /* temp_store=MEMORY: savepoint journals in memory, not in temporary
     * files created and deleted for every batch. */
    vs_result rc = kms_sql_exec(db, "PRAGMA journal_mode=WAL;"
                                    "PRAGMA synchronous=FULL;"
                                    "PRAGMA foreign_keys=ON;"
                                    "PRAGMA temp_store=MEMORY;"
                                    "PRAGMA secure_delete=ON;"
                                    "PRAGMA cache_size=-32768;"
                                    "PRAGMA busy_timeout=10000;");
    if (!is_ok(rc)) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return OK_RESULT;
}

/* --- sealing --- */

/* The associated data of an object's sealed blob. */
static RESULT kms_store_aad(const struct kms_object *obj, int64_t version, struct buf *aad)
{
    static const char label[] = "vmseal-kms record v1";
    uint8_t digest[32];

    GUARD(kms_object_digest(obj, digest));
    GUARD(buf_write_bytes(aad, label, sizeof(label)));
    GUARD(buf_write_u32(aad, (uint32_t)strlen(obj->uid)));
    GUARD(buf_write_bytes(aad, obj->uid, strlen(obj->uid)));
    GUARD(buf_write_u32(aad, (uint32_t)strlen(obj->owner)));
    GUARD(buf_write_bytes(aad, obj->owner, strlen(obj->owner)));
    GUARD(buf_write_u32(aad, obj->object_type));
    GUARD(buf_write_u64(aad, (uint64_t)version));
    return buf_write_bytes(aad, digest, sizeof(digest));
}

static RESULT kms_store_seal(const struct kms_store *s, const struct kms_object *obj,
                             int64_t version, struct buf *sealed)
{
    uint8_t mem[512];
    struct buf aad;

    buf_wrap(&aad, mem, sizeof(mem));
    GUARD(kms_store_aad(obj, version, &aad));
    return kms_rootkey_seal(s->rk, buf_data(&aad), buf_len(&aad), buf_data(&obj->material),
                            buf_len(&obj->material), sealed);
}

/* --- the writer --- */

static RESULT kms_store_write_attrs(struct kms_store *s, const struct kms_object *obj)
{
    for (size_t i = 0; i < obj->attr_count; i++) {
        const struct kms_attr_value *v = &obj->attrs[i];
        sqlite3_stmt *st = s->insert_attr;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, obj->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, v->index);
        sqlite3_bind_blob(st, 4, v->item, (int)v->item_len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQL_FAIL(s->db, "insert attribute");
    }
    return OK_RESULT;
}

static RESULT kms_store_apply(struct kms_store *s, struct kms_write_job *j)
{
    const struct kms_object *obj = j->obj;
    sqlite3_stmt *st;
    int step;

    if (j->insert) {
        st = s->insert_object;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, obj->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, obj->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, obj->object_type);
        sqlite3_bind_int64(st, 4, obj->version);
        sqlite3_bind_blob(st, 5, buf_data(j->sealed), (int)buf_len(j->sealed), SQLITE_STATIC);
        step = sqlite3_step(st);
        if (step == SQLITE_CONSTRAINT)
            BAIL(ERR_EXISTS);
        if (step != SQLITE_DONE)
            return SQL_FAIL(s->db, "insert object");
    } else {
        st = s->update_object;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, obj->version);
        sqlite3_bind_blob(st, 2, buf_data(j->sealed), (int)buf_len(j->sealed), SQLITE_STATIC);
        sqlite3_bind_text(st, 3, obj->uid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, j->old_version);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQL_FAIL(s->db, "update object");
        /* Optimistic concurrency: the version we loaded must still be there. */
        if (sqlite3_changes(s->db) != 1)
            BAIL(ERR_CONFLICT);
        st = s->delete_attrs;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, obj->uid, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return SQL_FAIL(s->db, "delete attributes");
    }
    return kms_store_write_attrs(s, obj);
}

/* Runs a batch of jobs in one transaction, each in its own savepoint. */
static void kms_store_commit_batch(struct kms_store *s, struct kms_write_job *batch)
{
    vs_result rc = kms_sql_run(s->db, s->begin, "begin");
    size_t n = 0;

    for (struct kms_write_job *j = batch; j != NULL; j = j->next) {
        if (!is_ok(rc)) {
            j->result = rc;
            j->err = *err_last();
            continue;
        }
        vs_result sp = kms_sql_run(s->db, s->savepoint, "savepoint");
        j->result = is_ok(sp) ? kms_store_apply(s, j) : sp;
        j->err = *err_last();
        if (is_ok(j->result)) {
            sp = kms_sql_run(s->db, s->release, "release");
            n++;
        } else {
            sp = kms_sql_run(s->db, s->rollback_to, "rollback to");
            if (is_ok(sp))
                sp = kms_sql_run(s->db, s->release, "release");
        }
        if (!is_ok(sp))
            rc = sp; /* the transaction is broken: fail the rest */
    }
    if (is_ok(rc))
        rc = kms_sql_run(s->db, s->commit, "commit");
    if (!is_ok(rc)) {
        struct err_state e = *err_last();
        log_error("store commit failed", LOG_ERR());
        sqlite3_reset(s->rollback);
        (void)sqlite3_step(s->rollback);
        sqlite3_reset(s->rollback);
        for (struct kms_write_job *j = batch; j != NULL; j = j->next) {
            j->result = rc;
            j->err = e;
        }
        return;
    }
    s->stats.commits++;
    s->stats.writes += n;
}

static void *kms_store_writer(void *arg)
{
    struct kms_store *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->stopping)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->head == NULL && s->stopping)
            break;
        struct kms_write_job *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        /* Everything queued while the last commit's fsync ran goes in this
         * one: that is the group commit. */
        kms_store_commit_batch(s, batch);

        pthread_mutex_lock(&s->mu);
        for (struct kms_write_job *j = batch, *next; j != NULL; j = next) {
            next = j->next;
            j->done = true;
            /* Each waiter has its own condition: a broadcast would wake
             * every thread waiting on any write to find most not done. */
            pthread_cond_signal(&j->done_cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static RESULT kms_store_submit(struct kms_store *s, struct kms_write_job *j)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        RAISE(ERR_STORE);
        return err_detail("the store is closing");
    }
    j->next = NULL;
    pthread_cond_init(&j->done_cv, NULL);
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->work);
    while (!j->done)
        pthread_cond_wait(&j->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j->done_cv);
    if (!is_ok(j->result))
        return err_restore(&j->err);
    return OK_RESULT;
}

static RESULT kms_store_write(struct kms_store *s, struct kms_object *obj, bool insert)
{
    struct buf sealed;
    struct kms_write_job j = {.obj = obj, .insert = insert, .old_version = obj->version};
    int64_t version = insert ? 1 : obj->version + 1;
    vs_result rc;

    GUARD(buf_alloc(&sealed, 0, KMS_MAX_MATERIAL + CRYPTO_SEAL_OVERHEAD));
    rc = kms_store_seal(s, obj, version, &sealed);
    if (is_ok(rc)) {
        int64_t before = obj->version;
        obj->version = version;
        j.sealed = &sealed;
        rc = kms_store_submit(s, &j);
        if (!is_ok(rc))
            obj->version = before;
    }
    buf_free(&sealed);
    return rc;
}

vs_result kms_store_insert(struct kms_store *s, struct kms_object *obj)
{
    return kms_store_write(s, obj, true);
}

vs_result kms_store_update(struct kms_store *s, struct kms_object *obj)
{
    return kms_store_write(s, obj, false);
}

/* --- the root key check --- */

/* A record sealed under the root key when the store is created, opened on
 * every start: a store served with the wrong root key (a restore that
 * mixed backups, a replaced key file) refuses to start instead of failing
 * every request. */
static const char kms_check_aad[] = "vmseal-kms root key check v1";

static RESULT kms_store_check_root_key(struct kms_store *s)
{
    vs_result rc = OK_RESULT;
    sqlite3_stmt *st = NULL;
    struct buf sealed, out;

    GUARD(buf_alloc(&sealed, 0, 256));
    GUARD_OUT(buf_alloc_secret(&out, 0, 64));
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'root_key_check'", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = SQL_FAIL(s->db, "root key check");
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        GUARD_OUT(hex != NULL ? buf_write_hex(&sealed, hex) : RAISE(ERR_AUTH));
        rc = kms_rootkey_open(s->rk, kms_check_aad, sizeof(kms_check_aad), buf_data(&sealed),
                              buf_len(&sealed), &out);
        if (rc.code == ERR_AUTH) {
            err_detail("the root key is not the one this store was created with: "
                       "check [root_key] path and your backups");
            goto out;
        }
        GUARD_OUT(rc);
    } else if (step == SQLITE_DONE) {
        char hex[256];
        sqlite3_finalize(st);
        st = NULL;
        GUARD_OUT(kms_rootkey_seal(s->rk, kms_check_aad, sizeof(kms_check_aad), "ok", 2, &sealed));
        GUARD_OUT(hex_encode(buf_data(&sealed), buf_len(&sealed), hex, sizeof(hex)));
        if (sqlite3_prepare_v2(s->db, "INSERT INTO meta VALUES ('root_key_check', ?)", -1, &st,
                               NULL) != SQLITE_OK) {
            rc = SQL_FAIL(s->db, "root key check");
            goto out;
        }
        sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = SQL_FAIL(s->db, "root key check");
    } else {
        rc = SQL_FAIL(s->db, "root key check");
    }
out:
    sqlite3_finalize(st);
    buf_free(&sealed);
    buf_free(&out);
    return rc;
}

/* --- open and close --- */

vs_result kms_store_open(const char *path, const struct kms_rootkey *rk, struct kms_store **out)
{
    vs_result rc = OK_RESULT;
    struct kms_store *s;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    ENSURE(s != NULL, ERR_NOMEM);
    s->rk = rk;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    s->path = strdup(path);
    ENSURE_OUT(s->path != NULL, ERR_NOMEM);
    GUARD_OUT(kms_sql_open(path, true, &s->db));
    GUARD_OUT(kms_sql_exec(s->db, kms_schema));
    GUARD_OUT(kms_store_check_root_key(s));
    GUARD_OUT(kms_sql_prepare(s->db,
                              "INSERT INTO objects (uid, owner, object_type, version, sealed) "
                              "VALUES (?, ?, ?, ?, ?)",
                              &s->insert_object));
    GUARD_OUT(kms_sql_prepare(s->db,
                              "INSERT INTO attributes (uid, name, idx, value) "
                              "VALUES (?, ?, ?, ?)",
                              &s->insert_attr));
    GUARD_OUT(kms_sql_prepare(s->db,
                              "UPDATE objects SET version = ?, sealed = ? "
                              "WHERE uid = ? AND version = ?",
                              &s->update_object));
    GUARD_OUT(kms_sql_prepare(s->db, "DELETE FROM attributes WHERE uid = ?", &s->delete_attrs));
    GUARD_OUT(kms_sql_prepare(s->db, "BEGIN IMMEDIATE", &s->begin));
    GUARD_OUT(kms_sql_prepare(s->db, "COMMIT", &s->commit));
    GUARD_OUT(kms_sql_prepare(s->db, "ROLLBACK", &s->rollback));
    GUARD_OUT(kms_sql_prepare(s->db, "SAVEPOINT job", &s->savepoint));
    GUARD_OUT(kms_sql_prepare(s->db, "RELEASE job", &s->release));
    GUARD_OUT(kms_sql_prepare(s->db, "ROLLBACK TO job", &s->rollback_to));
    if (pthread_create(&s->writer, NULL, kms_store_writer, s) != 0)
        BAIL_OUT(ERR_NOMEM);
    (void)pthread_setname_np(s->writer, "kms-store");
    s->writer_running = true;
    *out = s;
    s = NULL;
out:
    kms_store_close(&s);
    return rc;
}

void kms_store_close(struct kms_store **sp)
{
    struct kms_store *s;

    if (sp == NULL || *sp == NULL)
        return;
    s = *sp;
    if (s->writer_running) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    sqlite3_finalize(s->savepoint);
    sqlite3_finalize(s->release);
    sqlite3_finalize(s->rollback_to);
    sqlite3_finalize(s->insert_object);
    sqlite3_finalize(s->insert_attr);
    sqlite3_finalize(s->update_object);
    sqlite3_finalize(s->delete_attrs);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    free(s->path);
    free(s);
    *sp = NULL;
}

void kms_store_get_stats(struct kms_store *s, struct kms_store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

/* --- reading --- */

vs_result kms_store_reader_open(struct kms_store *s, struct kms_store_reader **out)
{
    vs_result rc = OK_RESULT;
    struct kms_store_reader *r;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    ENSURE(r != NULL, ERR_NOMEM);
    r->store = s;
    GUARD_OUT(kms_sql_open(s->path, false, &r->db));
    GUARD_OUT(kms_sql_prepare(r->db,
                              "SELECT owner, object_type, version, sealed FROM objects "
                              "WHERE uid = ?",
                              &r->load_object));
    GUARD_OUT(kms_sql_prepare(r->db,
                              "SELECT name, idx, value FROM attributes WHERE uid = ? "
                              "ORDER BY name, idx",
                              &r->load_attrs));
    GUARD_OUT(kms_sql_prepare(r->db, "BEGIN", &r->begin));
    GUARD_OUT(kms_sql_prepare(r->db, "COMMIT", &r->commit));
    *out = r;
    r = NULL;
out:
    kms_store_reader_close(&r);
    return rc;
}

void kms_store_reader_close(struct kms_store_reader **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    sqlite3_finalize((*rp)->load_object);
    sqlite3_finalize((*rp)->load_attrs);
    sqlite3_finalize((*rp)->begin);
    sqlite3_finalize((*rp)->commit);
    sqlite3_close((*rp)->db);
    free(*rp);
    *rp = NULL;
}

vs_result kms_store_load(struct kms_store_reader *r, const char *uid, struct kms_object **out)
{
    vs_result rc = OK_RESULT;
    struct kms_object *obj = NULL;
    sqlite3_stmt *st = r->load_object, *at = r->load_attrs;
    uint8_t mem[512];
    struct buf aad;
    int step;

    *out = NULL;
    ENSURE(strlen(uid) < KMS_UID_MAX, ERR_NOT_FOUND);
    /* One read transaction: the row and its attributes from one snapshot. */
    GUARD(kms_sql_run(r->db, r->begin, "begin"));
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = RAISE(ERR_NOT_FOUND);
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = SQL_FAIL(r->db, "load object");
        goto out;
    }
    const char *owner = (const char *)sqlite3_column_text(st, 0);
    GUARD_OUT(kms_object_new(uid, owner ? owner : "", (uint32_t)sqlite3_column_int64(st, 1), &obj));
    obj->version = sqlite3_column_int64(st, 2);

    sqlite3_reset(at);
    sqlite3_bind_text(at, 1, uid, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(at)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(at, 0);
        const void *item = sqlite3_column_blob(at, 2);
        int len = sqlite3_column_bytes(at, 2);
        if (name == NULL || item == NULL || len <= 0) {
            rc = RAISE(ERR_AUTH);
            goto out;
        }
        rc = kms_object_add_stored(obj, name, sqlite3_column_int(at, 1), item, (size_t)len);
        if (!is_ok(rc)) {
            /* Rows that do not even parse were not written by us. */
            rc = RAISE(ERR_AUTH);
            goto out;
        }
    }
    if (step != SQLITE_DONE) {
        rc = SQL_FAIL(r->db, "load attributes");
        goto out;
    }

    buf_wrap(&aad, mem, sizeof(mem));
    GUARD_OUT(kms_store_aad(obj, obj->version, &aad));
    const void *sealed = sqlite3_column_blob(st, 3);
    int sealed_len = sqlite3_column_bytes(st, 3);
    ENSURE_OUT(sealed != NULL && sealed_len > 0, ERR_AUTH);
    GUARD_OUT(kms_rootkey_open(r->store->rk, buf_data(&aad), buf_len(&aad), sealed,
                               (size_t)sealed_len, &obj->material));
    *out = obj;
    obj = NULL;
out:
    if (rc.code == ERR_AUTH)
        err_detail("object %s: stored record fails authentication (tampered, or another root key)",
                   uid);
    sqlite3_reset(st);
    sqlite3_reset(at);
    sqlite3_reset(r->commit);
    (void)sqlite3_step(r->commit);
    sqlite3_reset(r->commit);
    kms_object_free(&obj);
    return rc;
}

vs_result kms_store_locate(struct kms_store_reader *r, const char *const *owners,
                           size_t owner_count, const struct kms_store_filter *filters,
                           size_t filter_count, uint32_t offset, uint32_t max,
                           vs_result (*cb)(void *ctx, const char *uid), void *ctx)
{
    vs_result rc = OK_RESULT;
    char sql[8192];
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    int bind = 1, step;

    ENSURE(filter_count <= KMS_STORE_MAX_FILTERS, ERR_TOO_LARGE);
    ENSURE(owners == NULL || (owner_count >= 1 && owner_count <= 16), ERR_INVALID_ARG);
#define SQL_ADD(...)                                                   \
    do {                                                               \
        int k_ = snprintf(sql + n, sizeof(sql) - n, __VA_ARGS__);      \
        ENSURE(k_ > 0 && (size_t)k_ < sizeof(sql) - n, ERR_TOO_LARGE); \
        n += (size_t)k_;                                               \
    } while (0)
    SQL_ADD("SELECT o.uid FROM objects o WHERE 1");
    if (owners != NULL) {
        SQL_ADD(" AND o.owner IN (?");
        for (size_t i = 1; i < owner_count; i++)
            SQL_ADD(", ?");
        SQL_ADD(")");
    }
    for (size_t i = 0; i < filter_count; i++)
        SQL_ADD(" AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = o.uid"
                " AND a.name = ? AND a.value = ?)");
    SQL_ADD(" ORDER BY o.seq LIMIT ? OFFSET ?");
#undef SQL_ADD

    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        return SQL_FAIL(r->db, "prepare locate");
    for (size_t i = 0; owners != NULL && i < owner_count; i++)
        sqlite3_bind_text(st, bind++, owners[i], -1, SQLITE_STATIC);
    for (size_t i = 0; i < filter_count; i++) {
        sqlite3_bind_text(st, bind++, filters[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, bind++, filters[i].item, (int)filters[i].item_len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, bind++, max == 0 ? -1 : (sqlite3_int64)max);
    sqlite3_bind_int64(st, bind++, offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *uid = (const char *)sqlite3_column_text(st, 0);
        GUARD_OUT(cb(ctx, uid ? uid : ""));
    }
    if (step != SQLITE_DONE)
        rc = SQL_FAIL(r->db, "locate");
out:
    sqlite3_finalize(st);
    return rc;
}
