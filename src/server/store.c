/* store.c - see store.h. */
#include "server/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/log.h"
#include "vm/vmutil.h"

struct store {
    sqlite3 *db;
    pthread_mutex_t mu;
};

RESULT store_error(sqlite3 *db, const char *what)
{
    RAISE(ERR_STORE);
    return err_detail("%s: %s", what, sqlite3_errmsg(db));
}

RESULT store_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        RAISE(ERR_STORE);
        vs_result rc = err_detail("database: %s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return OK_RESULT;
}

RESULT store_begin(sqlite3 *db)
{
    return store_exec(db, "BEGIN IMMEDIATE");
}

RESULT store_commit(sqlite3 *db)
{
    return store_exec(db, "COMMIT");
}

void store_rollback(sqlite3 *db)
{
    (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

RESULT store_open(const char *data_dir, struct store **out)
{
    char path[VM_PATH_MAX];
    *out = NULL;
    GUARD(vm_path(path, sizeof path, "%s/vmseald.db", data_dir));
    struct store *s = calloc(1, sizeof *s);
    ENSURE(s != NULL, ERR_NOMEM);
    pthread_mutex_init(&s->mu, NULL);
    mode_t old = umask(077);
    int e = sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            NULL);
    umask(old);
    vs_result rc = OK_RESULT;
    if (e != SQLITE_OK) {
        rc = RAISE(ERR_STORE);
        err_detail("cannot open %s: %s", path,
                   s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    (void)chmod(path, 0600);
    rc = store_exec(s->db, "PRAGMA journal_mode=WAL;"
                           "PRAGMA synchronous=FULL;"
                           "PRAGMA foreign_keys=ON;"
                           "PRAGMA secure_delete=ON;"
                           "PRAGMA busy_timeout=10000;");
    if (!is_ok(rc))
        goto fail;
    *out = s;
    return OK_RESULT;
fail:
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}

void store_close(struct store **sp)
{
    struct store *s = *sp;
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
    *sp = NULL;
}

sqlite3 *store_lock(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    return s->db;
}

void store_unlock(struct store *s)
{
    pthread_mutex_unlock(&s->mu);
}
