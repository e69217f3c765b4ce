/* policy.c - see policy.h. */
#include "server/policy.h"

#include <stdio.h>
#include <string.h>

#include "vm/vmutil.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY, provider TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vm_policy (vm TEXT NOT NULL, disk INTEGER NOT NULL,"
    " policy TEXT NOT NULL, PRIMARY KEY (vm, disk));";

/* Takes the lock and makes sure the tables exist. */
static RESULT lock_db(struct store *st, sqlite3 **db)
{
    *db = store_lock(st);
    vs_result rc = store_exec(*db, schema);
    if (!is_ok(rc))
        store_unlock(st);
    return rc;
}

/* Role-like names: 1-63 printable ASCII, spaces inside only. */
static RESULT check_name(const char *name)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n < POLICY_NAME_MAX && name[0] != ' ' && name[n - 1] != ' ';
    for (size_t i = 0; ok && i < n; i++)
        ok = name[i] >= 0x20 && name[i] < 0x7f && name[i] != '/';
    if (!ok) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a policy name is 1-63 printable characters without '/' (spaces "
                          "inside only)");
    }
    return OK_RESULT;
}

RESULT policy_list(struct store *st, json_t **out)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    json_t *a = json_array();
    ENSURE(a != NULL, ERR_NOMEM);
    json_array_append_new(a, json_pack("{s:s, s:b, s:n, s:b}", "name", POLICY_BUILTIN,
                                       "encryption", 1, "provider", "builtin", 1));
    vs_result rc = lock_db(st, &db);
    if (!is_ok(rc)) {
        json_decref(a);
        return rc;
    }
    if (sqlite3_prepare_v2(db, "SELECT name, provider FROM policies ORDER BY name", -1, &s,
                           NULL) != SQLITE_OK) {
        rc = store_error(db, "listing policies");
    } else {
        while (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(a, json_pack("{s:s, s:b, s:s, s:b}", "name",
                                               (const char *)sqlite3_column_text(s, 0),
                                               "encryption", 1, "provider",
                                               (const char *)sqlite3_column_text(s, 1),
                                               "builtin", 0));
    }
    sqlite3_finalize(s);
    store_unlock(st);
    if (!is_ok(rc)) {
        json_decref(a);
        return rc;
    }
    *out = json_pack("{s:o}", "policies", a);
    ENSURE(*out != NULL, ERR_NOMEM);
    return OK_RESULT;
}

/* Runs one statement with text parameters; *changes gets the rows changed. */
static RESULT run(struct store *st, const char *sql, const char *what, int *changes,
                  const char *p1, const char *p2, const char *p3, int i2)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    GUARD(lock_db(st, &db));
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        rc = store_error(db, what);
        goto out;
    }
    sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
    if (i2 >= -1)
        sqlite3_bind_int(s, 2, i2);
    else if (p2 != NULL)
        sqlite3_bind_text(s, 2, p2, -1, SQLITE_TRANSIENT);
    if (p3 != NULL)
        sqlite3_bind_text(s, 3, p3, -1, SQLITE_TRANSIENT);
    int e = sqlite3_step(s);
    if (e == SQLITE_CONSTRAINT) {
        rc = RAISE(ERR_EXISTS);
        err_detail("policy '%.63s' exists", p1);
    } else if (e != SQLITE_DONE) {
        rc = store_error(db, what);
    }
    if (changes != NULL)
        *changes = sqlite3_changes(db);
out:
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

RESULT policy_create(struct store *st, const char *name, const char *provider)
{
    GUARD(check_name(name));
    if (strcmp(name, POLICY_BUILTIN) == 0) {
        RAISE(ERR_EXISTS);
        return err_detail("'%s' is the bundled policy", POLICY_BUILTIN);
    }
    return run(st, "INSERT INTO policies (name, provider) VALUES (?1, ?2)", "creating a policy",
               NULL, name, provider, NULL, -2);
}

RESULT policy_delete(struct store *st, const char *name)
{
    int changes = 0;
    if (strcmp(name, POLICY_BUILTIN) == 0) {
        RAISE(ERR_PERM);
        return err_detail("the bundled '%s' cannot be deleted", POLICY_BUILTIN);
    }
    GUARD(run(st, "DELETE FROM policies WHERE name = ?1", "deleting a policy", &changes, name,
              NULL, NULL, -2));
    if (changes == 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no policy '%.63s'", name);
    }
    return OK_RESULT;
}

RESULT policy_provider(struct store *st, const char *name, char provider[KEYPROV_NAME_MAX])
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    provider[0] = '\0';
    if (strcmp(name, POLICY_BUILTIN) == 0)
        return OK_RESULT;
    GUARD(lock_db(st, &db));
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, "SELECT provider FROM policies WHERE name = ?1", -1, &s, NULL) !=
        SQLITE_OK) {
        rc = store_error(db, "reading a policy");
    } else {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW) {
            snprintf(provider, KEYPROV_NAME_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
        } else {
            rc = RAISE(ERR_NOT_FOUND);
            err_detail("no storage policy '%.63s'", name);
        }
    }
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

RESULT policy_get(struct store *st, const char *name, json_t **out)
{
    char provider[KEYPROV_NAME_MAX];
    GUARD(policy_provider(st, name, provider));
    bool builtin = strcmp(name, POLICY_BUILTIN) == 0;
    *out = json_pack("{s:s, s:b, s:s?, s:b}", "name", name, "encryption", 1, "provider",
                     builtin ? NULL : provider, "builtin", builtin);
    ENSURE(*out != NULL, ERR_NOMEM);
    return OK_RESULT;
}

RESULT policy_vm_set(struct store *st, const char *vm, int disk, const char *name)
{
    if (name == NULL)
        return run(st, "DELETE FROM vm_policy WHERE vm = ?1 AND disk = ?2",
                   "forgetting a VM's policy", NULL, vm, NULL, NULL, disk);
    return run(st,
               "INSERT INTO vm_policy (vm, disk, policy) VALUES (?1, ?2, ?3) "
               "ON CONFLICT (vm, disk) DO UPDATE SET policy = excluded.policy",
               "recording a VM's policy", NULL, vm, NULL, name, disk);
}

RESULT policy_vm_get(struct store *st, const char *vm, int disk, char name[POLICY_NAME_MAX])
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    name[0] = '\0';
    GUARD(lock_db(st, &db));
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, "SELECT policy FROM vm_policy WHERE vm = ?1 AND disk = ?2", -1,
                           &s, NULL) != SQLITE_OK) {
        rc = store_error(db, "reading a VM's policy");
    } else {
        sqlite3_bind_text(s, 1, vm, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 2, disk);
        if (sqlite3_step(s) == SQLITE_ROW)
            snprintf(name, POLICY_NAME_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

RESULT policy_vm_forget(struct store *st, const char *vm)
{
    return run(st, "DELETE FROM vm_policy WHERE vm = ?1", "forgetting a VM's policies", NULL, vm,
               NULL, NULL, -2);
}
