/*
 * authz.c - see authz.h.
 *
 * The four tables (roles, permissions, folders, vm_folder) live in
 * vmseald.db; checks read an in-memory copy of them (the model), so that
 * listing a thousand VMs costs a thousand walks in memory, not thousands of
 * queries. The model is guarded by the store's mutex, like the connection
 * it mirrors, and is never trusted stale:
 *   - every change made here marks it stale, and the next call reloads it
 *     before reading (under the same lock: no check sees a half-applied
 *     change);
 *   - a change committed by another connection (an operator's sqlite3, a
 *     second process) moves SQLite's PRAGMA data_version, which every call
 *     reads first, and the model is reloaded.
 * A reload that fails fails the call: a check never answers from an old
 * copy.
 */
#include "server/authz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "vm/vmutil.h"

/* "folder/" + a 63-character name + NUL, with room to spare. */
#define OBJECT_MAX 80

/* --- privileges ------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *what;
} privileges[PRIV_COUNT] = {
#define VS_PRIV_ROW(e, name, what) [PRIV_##e] = {name, what},
    VS_PRIVILEGES(VS_PRIV_ROW)
#undef VS_PRIV_ROW
};

const char *priv_name(enum priv p)
{
    return (unsigned)p < PRIV_COUNT ? privileges[p].name : "(unknown privilege)";
}

const char *priv_description(enum priv p)
{
    return (unsigned)p < PRIV_COUNT ? privileges[p].what : "";
}

RESULT priv_parse(const char *name, enum priv *out)
{
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        if (strcmp(privileges[i].name, name) == 0) {
            *out = (enum priv)i;
            return OK_RESULT;
        }
    }
    RAISE(ERR_INVALID_ARG);
    return err_detail("unknown privilege '%.64s'", name);
}

/* --- built-in roles ----------------------------------------------------------- */

/* Computed from the enum, so that a new privilege lands in Administrator
 * (and, unless it is a Cryptographer one, in No cryptography administrator)
 * at the next start. */
static bool holds_all(enum priv p)
{
    (void)p;
    return true;
}

static bool holds_read_only(enum priv p)
{
    return p == PRIV_SYSTEM_VIEW || p == PRIV_SYSTEM_READ || p == PRIV_STORAGE_PROFILE_VIEW;
}

static bool holds_no_crypto(enum priv p)
{
    static const char crypto[] = "Cryptographer.";
    return strncmp(priv_name(p), crypto, sizeof crypto - 1) != 0;
}

static const struct {
    const char *name;
    bool (*holds)(enum priv p);
} builtin_roles[] = {
    {AUTHZ_ROLE_ADMIN, holds_all},
    {AUTHZ_ROLE_READ_ONLY, holds_read_only},
    {AUTHZ_ROLE_NO_CRYPTO, holds_no_crypto},
};

#define BUILTIN_ROLE_COUNT (sizeof builtin_roles / sizeof builtin_roles[0])

/* Case-insensitive: a custom "administrator" holding less than the real
 * one would mislead whoever reads a permission list. */
static bool role_name_is_builtin(const char *name)
{
    for (size_t i = 0; i < BUILTIN_ROLE_COUNT; i++)
        if (strcasecmp(builtin_roles[i].name, name) == 0)
            return true;
    return false;
}

/* 1-63 printable ASCII characters, spaces allowed inside. */
static RESULT role_check_name(const char *name)
{
    size_t n = strnlen(name, AUTHZ_ROLE_NAME_MAX);
    if (n == 0 || n >= AUTHZ_ROLE_NAME_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("role name must be 1 to %d characters", AUTHZ_ROLE_NAME_MAX - 1);
    }
    if (name[0] == ' ' || name[n - 1] == ' ') {
        RAISE(ERR_INVALID_ARG);
        return err_detail("role name must not start or end with a space");
    }
    for (size_t i = 0; i < n; i++) {
        if (name[i] < 0x20 || name[i] > 0x7e) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("role name may only use printable ASCII characters");
        }
    }
    return OK_RESULT;
}

/* The privileges of a role as the database keeps them: names in enum
 * order, separated by single spaces. */
#define PRIV_TEXT_MAX (PRIV_COUNT * 48)

static RESULT privs_to_text(const bool privs[PRIV_COUNT], char out[PRIV_TEXT_MAX])
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        if (!privs[i])
            continue;
        int n = snprintf(out + len, PRIV_TEXT_MAX - len, "%s%s", len > 0 ? " " : "",
                         privileges[i].name);
        ENSURE(n > 0 && (size_t)n < PRIV_TEXT_MAX - len, ERR_TOO_LARGE);
        len += (size_t)n;
    }
    return OK_RESULT;
}

/* Unknown names (a privilege a later version dropped) are skipped: a role
 * loses what this version does not know, it never gains. */
static void privs_from_text(const char *role, const char *text, bool privs[PRIV_COUNT])
{
    memset(privs, 0, PRIV_COUNT * sizeof privs[0]);
    while (*text != '\0') {
        size_t n = strcspn(text, " ");
        bool known = false;
        for (size_t i = 0; i < PRIV_COUNT && !known; i++) {
            if (strlen(privileges[i].name) == n && memcmp(privileges[i].name, text, n) == 0) {
                privs[i] = true;
                known = true;
            }
        }
        if (!known && n > 0)
            log_warn("role names an unknown privilege: ignored", LOG_S("role", role),
                     LOG_I("length", (long long)n));
        text += n;
        text += strspn(text, " ");
    }
}

/* --- object paths ---------------------------------------------------------------- */

enum object_kind { OBJECT_ROOT, OBJECT_FOLDER, OBJECT_VM };

/* "/", "folder/NAME" or "vm/NAME" with NAME as vm_check_name wants it;
 * *name points into object. */
static RESULT object_parse(const char *object, enum object_kind *kind, const char **name)
{
    static const char folder[] = "folder/", vm[] = "vm/";
    if (strcmp(object, "/") == 0) {
        *kind = OBJECT_ROOT;
        *name = "";
        return OK_RESULT;
    }
    if (strncmp(object, folder, sizeof folder - 1) == 0) {
        *kind = OBJECT_FOLDER;
        *name = object + sizeof folder - 1;
        return vm_check_name("folder", *name);
    }
    if (strncmp(object, vm, sizeof vm - 1) == 0) {
        *kind = OBJECT_VM;
        *name = object + sizeof vm - 1;
        return vm_check_name("VM", *name);
    }
    RAISE(ERR_INVALID_ARG);
    return err_detail("object '%.80s' is not /, folder/NAME or vm/NAME", object);
}

/* --- the model: the tables in memory ------------------------------------------------- */

struct role {
    char name[AUTHZ_ROLE_NAME_MAX];
    bool builtin;
    bool privs[PRIV_COUNT];
};

struct perm {
    char object[OBJECT_MAX];
    char principal[AUTH_NAME_MAX];
    bool group;
    bool propagate;
    size_t role; /* index in model.roles */
};

struct placement {
    char vm[VM_NAME_MAX];
    char folder[VM_NAME_MAX];
};

struct model {
    struct role *roles; /* built-in ones first, then by name */
    size_t role_count;
    struct perm *perms; /* sorted by object, then group flag, then principal */
    size_t perm_count;
    char (*folders)[VM_NAME_MAX]; /* sorted */
    size_t folder_count;
    struct placement *placements; /* sorted by vm */
    size_t placement_count;
};

struct authz {
    struct store *st;
    sqlite3_stmt *data_version; /* PRAGMA data_version */
    sqlite3_int64 version;      /* at the last load */
    bool fresh;                 /* the model mirrors the tables */
    struct model model;
};

static void model_free(struct model *m)
{
    free(m->roles);
    free(m->perms);
    free(m->folders);
    free(m->placements);
    memset(m, 0, sizeof *m);
}

/* Makes room for one more element of size bytes in *array. */
static RESULT array_grow(void *array, size_t *cap, size_t count, size_t size)
{
    void **p = array;
    if (count < *cap)
        return OK_RESULT;
    size_t n = *cap == 0 ? 16 : *cap, bytes;
    ENSURE_MUL(n, (size_t)2, &n);
    ENSURE_MUL(n, size, &bytes);
    void *q = realloc(*p, bytes);
    ENSURE(q != NULL, ERR_NOMEM);
    *p = q;
    *cap = n;
    return OK_RESULT;
}

/* Copies a text column into dst; a value that does not fit (a tampered
 * database: every name was checked on the way in) fails the load. */
static RESULT column_copy(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (t == NULL || n < 0 || (size_t)n >= size || memchr(t, '\0', (size_t)n) != NULL) {
        RAISE(ERR_STORE);
        return err_detail("authorization tables: a value of column %d is malformed", col);
    }
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return OK_RESULT;
}

static int perm_cmp(const void *a, const void *b)
{
    const struct perm *x = a, *y = b;
    int c = strcmp(x->object, y->object);
    if (c == 0)
        c = (int)x->group - (int)y->group;
    if (c == 0)
        c = strcmp(x->principal, y->principal);
    return c;
}

static int placement_cmp(const void *a, const void *b)
{
    const struct placement *x = a, *y = b;
    return strcmp(x->vm, y->vm);
}

static int folder_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static const struct role *model_role(const struct model *m, const char *name)
{
    for (size_t i = 0; i < m->role_count; i++)
        if (strcmp(m->roles[i].name, name) == 0)
            return &m->roles[i];
    return NULL;
}

static bool model_has_folder(const struct model *m, const char *name)
{
    return m->folder_count > 0 &&
           bsearch(name, m->folders, m->folder_count, sizeof m->folders[0], folder_cmp) != NULL;
}

/* The folder of a VM, or NULL (the root). */
static const char *model_folder_of(const struct model *m, const char *vm)
{
    struct placement key;
    if (m->placement_count == 0 || strlen(vm) >= sizeof key.vm)
        return NULL;
    snprintf(key.vm, sizeof key.vm, "%s", vm);
    const struct placement *p =
        bsearch(&key, m->placements, m->placement_count, sizeof key, placement_cmp);
    return p != NULL ? p->folder : NULL;
}

/* The first permission on object (perms are sorted by object), or
 * perm_count. */
static size_t model_perms_on(const struct model *m, const char *object)
{
    size_t lo = 0, hi = m->perm_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->perms[mid].object, object) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static RESULT load_roles(sqlite3 *db, struct model *m)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, "SELECT name, builtin, privileges FROM roles", -1, &st, NULL) !=
        SQLITE_OK)
        return store_error(db, "reading roles");
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        GUARD_OUT(array_grow(&m->roles, &cap, m->role_count, sizeof m->roles[0]));
        struct role *r = &m->roles[m->role_count];
        memset(r, 0, sizeof *r);
        GUARD_OUT(column_copy(st, 0, r->name, sizeof r->name));
        r->builtin = sqlite3_column_int(st, 1) != 0;
        const unsigned char *text = sqlite3_column_text(st, 2);
        privs_from_text(r->name, text != NULL ? (const char *)text : "", r->privs);
        m->role_count++;
    }
    if (e != SQLITE_DONE)
        rc = store_error(db, "reading roles");
out:
    sqlite3_finalize(st);
    if (!is_ok(rc))
        return rc;
    /* Built-in roles in their table's order, then the others by name. */
    struct role *sorted = calloc(m->role_count > 0 ? m->role_count : 1, sizeof *sorted);
    ENSURE(sorted != NULL, ERR_NOMEM);
    size_t n = 0;
    for (size_t b = 0; b < BUILTIN_ROLE_COUNT; b++)
        for (size_t i = 0; i < m->role_count; i++)
            if (m->roles[i].builtin && strcmp(m->roles[i].name, builtin_roles[b].name) == 0)
                sorted[n++] = m->roles[i];
    size_t first_custom = n;
    for (size_t i = 0; i < m->role_count; i++)
        if (!m->roles[i].builtin)
            sorted[n++] = m->roles[i];
    /* A row marked built-in that this version does not define is dropped:
     * it grants nothing. */
    for (size_t i = first_custom + 1; i < n; i++) {
        struct role r = sorted[i];
        size_t j = i;
        for (; j > first_custom && strcmp(sorted[j - 1].name, r.name) > 0; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = r;
    }
    free(m->roles);
    m->roles = sorted;
    m->role_count = n;
    return OK_RESULT;
}

static RESULT load_perms(sqlite3 *db, struct model *m)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db,
                           "SELECT object, principal, is_group, propagate, role FROM permissions",
                           -1, &st, NULL) != SQLITE_OK)
        return store_error(db, "reading permissions");
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        char role[AUTHZ_ROLE_NAME_MAX];
        GUARD_OUT(array_grow(&m->perms, &cap, m->perm_count, sizeof m->perms[0]));
        struct perm *p = &m->perms[m->perm_count];
        memset(p, 0, sizeof *p);
        GUARD_OUT(column_copy(st, 0, p->object, sizeof p->object));
        GUARD_OUT(column_copy(st, 1, p->principal, sizeof p->principal));
        p->group = sqlite3_column_int(st, 2) != 0;
        p->propagate = sqlite3_column_int(st, 3) != 0;
        GUARD_OUT(column_copy(st, 4, role, sizeof role));
        const struct role *r = model_role(m, role);
        /* The foreign key keeps the role; without it, the permission would
         * still apply (and block what is above it) but grant nothing. */
        p->role = r != NULL ? (size_t)(r - m->roles) : SIZE_MAX;
        m->perm_count++;
    }
    if (e != SQLITE_DONE)
        rc = store_error(db, "reading permissions");
out:
    sqlite3_finalize(st);
    if (is_ok(rc) && m->perm_count > 1)
        qsort(m->perms, m->perm_count, sizeof m->perms[0], perm_cmp);
    return rc;
}

static RESULT load_folders(sqlite3 *db, struct model *m)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, "SELECT name FROM folders", -1, &st, NULL) != SQLITE_OK)
        return store_error(db, "reading folders");
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        GUARD_OUT(array_grow(&m->folders, &cap, m->folder_count, sizeof m->folders[0]));
        GUARD_OUT(column_copy(st, 0, m->folders[m->folder_count], sizeof m->folders[0]));
        m->folder_count++;
    }
    if (e != SQLITE_DONE)
        rc = store_error(db, "reading folders");
out:
    sqlite3_finalize(st);
    if (is_ok(rc) && m->folder_count > 1)
        qsort(m->folders, m->folder_count, sizeof m->folders[0], folder_cmp);
    return rc;
}

static RESULT load_placements(sqlite3 *db, struct model *m)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, "SELECT vm, folder FROM vm_folder", -1, &st, NULL) != SQLITE_OK)
        return store_error(db, "reading VM folders");
    int e;
    while ((e = sqlite3_step(st)) == SQLITE_ROW) {
        GUARD_OUT(array_grow(&m->placements, &cap, m->placement_count, sizeof m->placements[0]));
        struct placement *p = &m->placements[m->placement_count];
        GUARD_OUT(column_copy(st, 0, p->vm, sizeof p->vm));
        GUARD_OUT(column_copy(st, 1, p->folder, sizeof p->folder));
        m->placement_count++;
    }
    if (e != SQLITE_DONE)
        rc = store_error(db, "reading VM folders");
out:
    sqlite3_finalize(st);
    if (is_ok(rc) && m->placement_count > 1)
        qsort(m->placements, m->placement_count, sizeof m->placements[0], placement_cmp);
    return rc;
}

/* Reads the four tables in one read transaction (one consistent view). */
static RESULT model_load(sqlite3 *db, struct model *m)
{
    vs_result rc = OK_RESULT;
    GUARD(store_exec(db, "BEGIN"));
    GUARD_OUT(load_roles(db, m));
    GUARD_OUT(load_perms(db, m));
    GUARD_OUT(load_folders(db, m));
    GUARD_OUT(load_placements(db, m));
    GUARD_OUT(store_commit(db));
    return OK_RESULT;
out:
    store_rollback(db);
    model_free(m);
    return rc;
}

/* Reloads the model unless it mirrors the tables. Store lock held. */
static RESULT model_refresh(struct authz *z, sqlite3 *db)
{
    int e = sqlite3_step(z->data_version);
    sqlite3_int64 version = e == SQLITE_ROW ? sqlite3_column_int64(z->data_version, 0) : 0;
    sqlite3_reset(z->data_version);
    if (e != SQLITE_ROW) {
        z->fresh = false;
        return store_error(db, "reading the database's data version");
    }
    if (z->fresh && version == z->version)
        return OK_RESULT;
    struct model m = {0};
    z->fresh = false;
    GUARD(model_load(db, &m));
    model_free(&z->model);
    z->model = m;
    z->version = version;
    z->fresh = true;
    return OK_RESULT;
}

/* Takes the store's lock and a fresh model; on failure the lock is not
 * held. Every public function that reads the model starts here and ends
 * with store_unlock. */
static RESULT authz_enter(struct authz *z, sqlite3 **db)
{
    *db = store_lock(z->st);
    vs_result rc = model_refresh(z, *db);
    if (!is_ok(rc))
        store_unlock(z->st);
    return rc;
}

/* --- SQL ----------------------------------------------------------------------------- */

/* Runs one statement; types names the parameters that follow: 's' text,
 * 'i' int. *changes (may be NULL) gets the number of rows changed. */
static RESULT sql_run(sqlite3 *db, const char *what, int *changes, const char *sql,
                      const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    vs_result rc = OK_RESULT;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_error(db, what);
    va_start(ap, types);
    int e = SQLITE_OK;
    for (int i = 0; types[i] != '\0' && e == SQLITE_OK; i++) {
        if (types[i] == 's')
            e = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            e = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
    }
    va_end(ap);
    if (e != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        rc = store_error(db, what);
    else if (changes != NULL)
        *changes = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

/* --- open, close ----------------------------------------------------------------------- */

/* clang-format off */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS roles ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  builtin INTEGER NOT NULL DEFAULT 0,"
    "  privileges TEXT NOT NULL DEFAULT '');" /* names, space-separated */
    "CREATE TABLE IF NOT EXISTS folders (name TEXT PRIMARY KEY NOT NULL);"
    "CREATE TABLE IF NOT EXISTS permissions ("
    "  principal TEXT NOT NULL,"
    "  is_group INTEGER NOT NULL,"
    "  object TEXT NOT NULL,"
    "  role TEXT NOT NULL REFERENCES roles(name),"
    "  propagate INTEGER NOT NULL,"
    "  UNIQUE (principal, is_group, object));"
    "CREATE TABLE IF NOT EXISTS vm_folder ("
    "  vm TEXT PRIMARY KEY NOT NULL,"
    "  folder TEXT NOT NULL REFERENCES folders(name));";
/* clang-format on */

/* Writes the built-in roles as this version defines them. */
static RESULT builtin_roles_refresh(sqlite3 *db)
{
    vs_result rc = OK_RESULT;
    GUARD(store_begin(db));
    for (size_t b = 0; b < BUILTIN_ROLE_COUNT; b++) {
        bool privs[PRIV_COUNT];
        char text[PRIV_TEXT_MAX];
        for (size_t i = 0; i < PRIV_COUNT; i++)
            privs[i] = builtin_roles[b].holds((enum priv)i);
        GUARD_OUT(privs_to_text(privs, text));
        GUARD_OUT(sql_run(db, "writing the built-in roles", NULL,
                          "INSERT INTO roles (name, builtin, privileges) VALUES (?1, 1, ?2) "
                          "ON CONFLICT (name) DO UPDATE SET builtin = 1, privileges = ?2",
                          "ss", builtin_roles[b].name, text));
    }
    GUARD_OUT(store_commit(db));
    return OK_RESULT;
out:
    store_rollback(db);
    return rc;
}

RESULT authz_open(struct store *st, struct authz **out)
{
    vs_result rc = OK_RESULT;
    *out = NULL;
    struct authz *z = calloc(1, sizeof *z);
    ENSURE(z != NULL, ERR_NOMEM);
    z->st = st;
    sqlite3 *db = store_lock(st);
    GUARD_OUT(store_exec(db, schema));
    GUARD_OUT(builtin_roles_refresh(db));
    if (sqlite3_prepare_v3(db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                           &z->data_version, NULL) != SQLITE_OK) {
        rc = store_error(db, "preparing the data version query");
        goto out;
    }
    GUARD_OUT(model_refresh(z, db));
    *out = z;
    z = NULL;
out:
    if (z != NULL) {
        sqlite3_finalize(z->data_version);
        free(z);
    }
    store_unlock(st);
    return rc;
}

void authz_close(struct authz **zp)
{
    struct authz *z = *zp;
    if (z == NULL)
        return;
    store_lock(z->st);
    sqlite3_finalize(z->data_version);
    store_unlock(z->st);
    model_free(&z->model);
    free(z);
    *zp = NULL;
}

/* --- roles ----------------------------------------------------------------------------- */

RESULT authz_role_create(struct authz *z, const char *name, const enum priv *privs, size_t n)
{
    bool set[PRIV_COUNT] = {false};
    char text[PRIV_TEXT_MAX];
    GUARD(role_check_name(name));
    if (role_name_is_builtin(name)) {
        RAISE(ERR_PERM);
        return err_detail("role '%s' is built in", name);
    }
    for (size_t i = 0; i < n; i++) {
        ENSURE((unsigned)privs[i] < PRIV_COUNT, ERR_INVALID_ARG);
        set[privs[i]] = true;
    }
    GUARD(privs_to_text(set, text));

    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    if (model_role(&z->model, name) != NULL) {
        rc = RAISE(ERR_EXISTS);
        err_detail("role '%s' exists", name);
        goto out;
    }
    GUARD_OUT(sql_run(db, "creating a role", NULL,
                      "INSERT INTO roles (name, builtin, privileges) VALUES (?1, 0, ?2)", "ss",
                      name, text));
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

RESULT authz_role_delete(struct authz *z, const char *name)
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    const struct model *m = &z->model;
    const struct role *r = model_role(m, name);
    if (r == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no role '%.64s'", name);
        goto out;
    }
    if (r->builtin) {
        rc = RAISE(ERR_PERM);
        err_detail("role '%s' is built in", name);
        goto out;
    }
    size_t used = 0, index = (size_t)(r - m->roles);
    for (size_t i = 0; i < m->perm_count; i++)
        used += m->perms[i].role == index;
    if (used > 0) {
        rc = RAISE(ERR_BUSY);
        err_detail("role '%s' is used by %zu permission%s: remove them first", name, used,
                   used == 1 ? "" : "s");
        goto out;
    }
    GUARD_OUT(sql_run(db, "deleting a role", NULL,
                      "DELETE FROM roles WHERE name = ?1 AND "
                      "builtin = 0",
                      "s", name));
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

static json_t *role_json(const struct role *r)
{
    json_t *names = json_array();
    for (size_t i = 0; names != NULL && i < PRIV_COUNT; i++) {
        if (r->privs[i] && json_array_append_new(names, json_string(privileges[i].name)) != 0) {
            json_decref(names);
            names = NULL;
        }
    }
    if (names == NULL)
        return NULL;
    return json_pack("{s:s, s:b, s:o}", "name", r->name, "builtin", r->builtin, "privileges",
                     names);
}

RESULT authz_role_list(struct authz *z, json_t **out)
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    *out = NULL;
    json_t *roles = json_array();
    ENSURE(roles != NULL, ERR_NOMEM);
    GUARD_OUT(authz_enter(z, &db));
    for (size_t i = 0; i < z->model.role_count && is_ok(rc); i++)
        if (json_array_append_new(roles, role_json(&z->model.roles[i])) != 0)
            rc = RAISE(ERR_NOMEM);
    store_unlock(z->st);
    if (!is_ok(rc))
        goto out;
    *out = json_pack("{s:o}", "roles", roles);
    roles = NULL;
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
out:
    json_decref(roles);
    return rc;
}

RESULT authz_role_privileges(struct authz *z, const char *name, bool privs[PRIV_COUNT])
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    memset(privs, 0, PRIV_COUNT * sizeof privs[0]);
    GUARD(authz_enter(z, &db));
    const struct role *r = model_role(&z->model, name);
    if (r != NULL) {
        memcpy(privs, r->privs, PRIV_COUNT * sizeof privs[0]);
    } else {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no role '%.64s'", name);
    }
    store_unlock(z->st);
    return rc;
}

/* --- permissions ----------------------------------------------------------------------- */

static RESULT principal_check(const char *principal, bool group)
{
    GUARD(vm_check_name(group ? "group" : "user", principal));
    if (!group && strcmp(principal, AUTH_ROOT_USER) == 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("root holds every privilege: it takes no permission");
    }
    return OK_RESULT;
}

RESULT authz_permission_set(struct authz *z, const char *principal, bool group, const char *role,
                            const char *object, bool propagate)
{
    enum object_kind kind;
    const char *name;
    GUARD(principal_check(principal, group));
    GUARD(object_parse(object, &kind, &name));

    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    if (model_role(&z->model, role) == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no role '%.64s'", role);
        goto out;
    }
    /* VMs are the API's to know; folders are ours. */
    if (kind == OBJECT_FOLDER && !model_has_folder(&z->model, name)) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no folder '%s'", name);
        goto out;
    }
    GUARD_OUT(sql_run(db, "setting a permission", NULL,
                      "INSERT INTO permissions (principal, is_group, object, role, propagate) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (principal, is_group, object) "
                      "DO UPDATE SET role = ?4, propagate = ?5",
                      "sissi", principal, (int)group, object, role, (int)propagate));
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

RESULT authz_permission_remove(struct authz *z, const char *principal, bool group,
                               const char *object)
{
    sqlite3 *db;
    int changes = 0;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    GUARD_OUT(sql_run(db, "removing a permission", &changes,
                      "DELETE FROM permissions WHERE principal = ?1 AND is_group = ?2 AND "
                      "object = ?3",
                      "sis", principal, (int)group, object));
    z->fresh = false;
    if (changes == 0) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no permission for %s '%.64s' on %.80s", group ? "group" : "user", principal,
                   object);
    }
out:
    store_unlock(z->st);
    return rc;
}

RESULT authz_permission_list(struct authz *z, json_t **out)
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    *out = NULL;
    json_t *perms = json_array();
    ENSURE(perms != NULL, ERR_NOMEM);
    GUARD_OUT(authz_enter(z, &db));
    const struct model *m = &z->model;
    for (size_t i = 0; i < m->perm_count && is_ok(rc); i++) {
        const struct perm *p = &m->perms[i];
        const char *role = p->role < m->role_count ? m->roles[p->role].name : "";
        json_t *j =
            json_pack("{s:s, s:b, s:s, s:s, s:b}", "principal", p->principal, "group", p->group,
                      "role", role, "object", p->object, "propagate", p->propagate);
        if (json_array_append_new(perms, j) != 0)
            rc = RAISE(ERR_NOMEM);
    }
    store_unlock(z->st);
    if (!is_ok(rc))
        goto out;
    *out = json_pack("{s:o}", "permissions", perms);
    perms = NULL;
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
out:
    json_decref(perms);
    return rc;
}

RESULT authz_forget_principal(struct authz *z, const char *principal, bool group)
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    rc = sql_run(db, "dropping a principal's permissions", NULL,
                 "DELETE FROM permissions WHERE principal = ?1 AND is_group = ?2", "si", principal,
                 (int)group);
    z->fresh = false;
    store_unlock(z->st);
    return rc;
}

/* Store lock held, inside a transaction. */
static RESULT forget_object_locked(sqlite3 *db, const char *object, enum object_kind kind,
                                   const char *name)
{
    GUARD(sql_run(db, "dropping an object's permissions", NULL,
                  "DELETE FROM permissions WHERE object = ?1", "s", object));
    if (kind == OBJECT_VM)
        GUARD(sql_run(db, "dropping a VM's folder", NULL, "DELETE FROM vm_folder WHERE vm = ?1",
                      "s", name));
    return OK_RESULT;
}

RESULT authz_forget_object(struct authz *z, const char *object)
{
    enum object_kind kind;
    const char *name;
    GUARD(object_parse(object, &kind, &name));
    if (kind == OBJECT_ROOT) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("the root is never deleted");
    }
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    GUARD_OUT(store_begin(db));
    rc = forget_object_locked(db, object, kind, name);
    if (is_ok(rc))
        rc = store_commit(db);
    if (!is_ok(rc))
        store_rollback(db);
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

/* --- folders ----------------------------------------------------------------------------- */

RESULT authz_folder_create(struct authz *z, const char *name)
{
    GUARD(vm_check_name("folder", name));
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    if (model_has_folder(&z->model, name)) {
        rc = RAISE(ERR_EXISTS);
        err_detail("folder '%s' exists", name);
        goto out;
    }
    GUARD_OUT(sql_run(db, "creating a folder", NULL, "INSERT INTO folders (name) VALUES (?1)", "s",
                      name));
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

/* Deleting a folder drops the permissions on it in the same transaction:
 * a folder created later under the same name starts with none. */
RESULT authz_folder_delete(struct authz *z, const char *name)
{
    char object[OBJECT_MAX];
    GUARD(vm_check_name("folder", name));
    GUARD(vm_path(object, sizeof object, "folder/%s", name));
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    const struct model *m = &z->model;
    if (!model_has_folder(m, name)) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no folder '%s'", name);
        goto out;
    }
    size_t vms = 0;
    for (size_t i = 0; i < m->placement_count; i++)
        vms += strcmp(m->placements[i].folder, name) == 0;
    if (vms > 0) {
        rc = RAISE(ERR_BUSY);
        err_detail("folder '%s' holds %zu VM%s: move them first", name, vms, vms == 1 ? "" : "s");
        goto out;
    }
    GUARD_OUT(store_begin(db));
    rc = forget_object_locked(db, object, OBJECT_FOLDER, name);
    if (is_ok(rc))
        rc = sql_run(db, "deleting a folder", NULL, "DELETE FROM folders WHERE name = ?1", "s",
                     name);
    if (is_ok(rc))
        rc = store_commit(db);
    if (!is_ok(rc))
        store_rollback(db);
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

RESULT authz_folder_list(struct authz *z, json_t **out)
{
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    *out = NULL;
    json_t *folders = json_array();
    ENSURE(folders != NULL, ERR_NOMEM);
    GUARD_OUT(authz_enter(z, &db));
    const struct model *m = &z->model;
    for (size_t f = 0; f < m->folder_count && is_ok(rc); f++) {
        json_t *vms = json_array();
        for (size_t i = 0; vms != NULL && i < m->placement_count; i++) {
            if (strcmp(m->placements[i].folder, m->folders[f]) == 0 &&
                json_array_append_new(vms, json_string(m->placements[i].vm)) != 0) {
                json_decref(vms);
                vms = NULL;
            }
        }
        json_t *j = vms != NULL ? json_pack("{s:s, s:o}", "name", m->folders[f], "vms", vms) : NULL;
        if (json_array_append_new(folders, j) != 0)
            rc = RAISE(ERR_NOMEM);
    }
    store_unlock(z->st);
    if (!is_ok(rc))
        goto out;
    *out = json_pack("{s:o}", "folders", folders);
    folders = NULL;
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
out:
    json_decref(folders);
    return rc;
}

RESULT authz_vm_set_folder(struct authz *z, const char *vm, const char *folder)
{
    bool root = folder == NULL || folder[0] == '\0';
    GUARD(vm_check_name("VM", vm));
    if (!root)
        GUARD(vm_check_name("folder", folder));
    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    if (root) {
        GUARD_OUT(
            sql_run(db, "placing a VM", NULL, "DELETE FROM vm_folder WHERE vm = ?1", "s", vm));
    } else if (!model_has_folder(&z->model, folder)) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no folder '%s'", folder);
        goto out;
    } else {
        GUARD_OUT(sql_run(db, "placing a VM", NULL,
                          "INSERT INTO vm_folder (vm, folder) VALUES (?1, ?2) "
                          "ON CONFLICT (vm) DO UPDATE SET folder = ?2",
                          "ss", vm, folder));
    }
    z->fresh = false;
out:
    store_unlock(z->st);
    return rc;
}

RESULT authz_vm_folder(struct authz *z, const char *vm, char folder[AUTH_NAME_MAX])
{
    folder[0] = '\0';
    GUARD(vm_check_name("VM", vm));
    sqlite3 *db;
    GUARD(authz_enter(z, &db));
    const char *f = model_folder_of(&z->model, vm);
    if (f != NULL)
        snprintf(folder, AUTH_NAME_MAX, "%s", f);
    store_unlock(z->st);
    return OK_RESULT;
}

/* --- resolution ---------------------------------------------------------------------------- */

/* The parent of a parsed object. Store lock held. */
static RESULT parent_locked(const struct model *m, const char *object, char *out, size_t size)
{
    enum object_kind kind;
    const char *name;
    GUARD(object_parse(object, &kind, &name));
    if (kind == OBJECT_ROOT) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("the root has no parent");
    }
    const char *folder = kind == OBJECT_VM ? model_folder_of(m, name) : NULL;
    if (folder != NULL)
        return vm_path(out, size, "folder/%s", folder);
    return vm_path(out, size, "/");
}

RESULT authz_parent(struct authz *z, const char *object, char *out, size_t size)
{
    sqlite3 *db;
    if (size > 0)
        out[0] = '\0';
    GUARD(authz_enter(z, &db));
    vs_result rc = parent_locked(&z->model, object, out, size);
    store_unlock(z->st);
    return rc;
}

static bool subject_in_group(const struct authz_subject *s, const char *group)
{
    for (size_t i = 0; s->groups != NULL && i < s->group_count; i++)
        if (strncmp(s->groups[i], group, AUTH_NAME_MAX) == 0)
            return true;
    return false;
}

static void privs_add(const struct model *m, const struct perm *p, bool privs[PRIV_COUNT])
{
    if (p->role >= m->role_count)
        return;
    for (size_t i = 0; i < PRIV_COUNT; i++)
        privs[i] = privs[i] || m->roles[p->role].privs[i];
}

/*
 * What s holds on object (authz.h, "Resolution"): walk from the object up
 * to "/"; at the first level where a permission applies to s (its own
 * object, or a propagating one above), the user's own permission wins over
 * its groups' ones; the groups' ones add up. Store lock held; s is not
 * root.
 */
static RESULT privileges_locked(const struct model *m, const struct authz_subject *s,
                                const char *object, bool privs[PRIV_COUNT])
{
    char chain[3][OBJECT_MAX];
    size_t depth = 0;
    memset(privs, 0, PRIV_COUNT * sizeof privs[0]);

    /* object, its folder (for a VM in one), "/" */
    GUARD(vm_path(chain[depth++], OBJECT_MAX, "%s", object));
    while (strcmp(chain[depth - 1], "/") != 0) {
        ENSURE(depth < 3, ERR_INTERNAL);
        GUARD(parent_locked(m, chain[depth - 1], chain[depth], OBJECT_MAX));
        depth++;
    }

    for (size_t level = 0; level < depth; level++) {
        bool user[PRIV_COUNT] = {false}, groups[PRIV_COUNT] = {false};
        bool user_hit = false, group_hit = false;
        for (size_t i = model_perms_on(m, chain[level]);
             i < m->perm_count && strcmp(m->perms[i].object, chain[level]) == 0; i++) {
            const struct perm *p = &m->perms[i];
            if (level > 0 && !p->propagate)
                continue;
            if (!p->group && s->user != NULL && strcmp(p->principal, s->user) == 0) {
                user_hit = true;
                privs_add(m, p, user);
            } else if (p->group && subject_in_group(s, p->principal)) {
                group_hit = true;
                privs_add(m, p, groups);
            }
        }
        if (user_hit || group_hit) {
            memcpy(privs, user_hit ? user : groups, PRIV_COUNT * sizeof privs[0]);
            return OK_RESULT;
        }
    }
    return OK_RESULT;
}

/* s's privileges on object; everything for root (the object still has to
 * be a valid path). Store lock held. */
static RESULT subject_privileges_locked(const struct model *m, const struct authz_subject *s,
                                        const char *object, bool privs[PRIV_COUNT])
{
    enum object_kind kind;
    const char *name;
    GUARD(object_parse(object, &kind, &name));
    if (s->root) {
        for (size_t i = 0; i < PRIV_COUNT; i++)
            privs[i] = true;
        return OK_RESULT;
    }
    return privileges_locked(m, s, object, privs);
}

static vs_result deny(const struct authz_subject *s, const char *object, enum priv p)
{
    RAISE(ERR_FORBIDDEN);
    return err_detail("user '%.63s' lacks privilege %s on %.80s", s->user != NULL ? s->user : "",
                      priv_name(p), object);
}

RESULT authz_has(struct authz *z, const struct authz_subject *s, const char *object, enum priv p,
                 bool *out)
{
    bool privs[PRIV_COUNT];
    sqlite3 *db;
    *out = false;
    ENSURE((unsigned)p < PRIV_COUNT, ERR_INVALID_ARG);
    GUARD(authz_enter(z, &db));
    vs_result rc = subject_privileges_locked(&z->model, s, object, privs);
    store_unlock(z->st);
    GUARD(rc);
    *out = privs[p];
    return OK_RESULT;
}

RESULT authz_require(struct authz *z, const struct authz_subject *s, const char *object,
                     enum priv p)
{
    bool held;
    GUARD(authz_has(z, s, object, p, &held));
    if (!held)
        return deny(s, object, p);
    return OK_RESULT;
}

RESULT authz_require_all(struct authz *z, const struct authz_subject *s, const char *object,
                         const bool privs[PRIV_COUNT])
{
    bool held[PRIV_COUNT];
    sqlite3 *db;
    GUARD(authz_enter(z, &db));
    vs_result rc = subject_privileges_locked(&z->model, s, object, held);
    store_unlock(z->st);
    GUARD(rc);
    for (size_t i = 0; i < PRIV_COUNT; i++)
        if (privs[i] && !held[i])
            return deny(s, object, (enum priv)i);
    return OK_RESULT;
}

/* --- the operation table ----------------------------------------------------------------- */

static bool cond_holds(enum op_cond c, const struct op_facts *f)
{
    switch (c) {
    case COND_ALWAYS:
        return true;
    case COND_VM_ENCRYPTED:
        return f->vm_encrypted;
    case COND_VM_TEMPLATE:
        return f->vm_template;
    case COND_VM_NOT_TEMPLATE:
        return !f->vm_template;
    case COND_ENCRYPTS:
        return f->encrypts;
    case COND_DECRYPTS:
        return f->decrypts;
    case COND_RECRYPTS:
        return f->recrypts;
    case COND_HOST_NOT_SAFE:
        return f->encrypts && !f->host_safe;
    case COND_HOST_PATH:
        return f->host_path;
    case COND_ON:
        return f->on;
    case COND_OFF:
        return !f->on;
    }
    return false;
}

/* The object a row checks. Store lock held. A row that needs a VM the
 * caller did not name is a bug of the caller: ERR_INVALID_ARG. */
static RESULT row_object_locked(const struct model *m, const struct op_rule *row, const char *vm,
                                const char *parent, char out[OBJECT_MAX])
{
    enum object_kind kind;
    const char *name;
    char object[OBJECT_MAX];
    if (row->object == OBJ_ROOT)
        return vm_path(out, OBJECT_MAX, "/");
    if (row->object == OBJ_PARENT && parent != NULL) {
        GUARD(object_parse(parent, &kind, &name));
        return vm_path(out, OBJECT_MAX, "%s", parent);
    }
    /* The VM, or (OBJ_PARENT without a parent) the VM's own parent. */
    if (vm == NULL) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("operation %s needs a VM", row->operation);
    }
    GUARD(vm_check_name("VM", vm));
    GUARD(vm_path(object, sizeof object, "vm/%s", vm));
    if (row->object == OBJ_VM)
        return vm_path(out, OBJECT_MAX, "%s", object);
    return parent_locked(m, object, out, OBJECT_MAX);
}

RESULT authz_require_op(struct authz *z, const struct authz_subject *s, const char *operation,
                        const char *vm, const char *parent, const struct op_facts *f)
{
    bool known = false;
    for (size_t i = 0; i < op_rule_count && !known; i++)
        known = strcmp(op_rules[i].operation, operation) == 0;
    if (!known) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("unknown operation '%.64s'", operation);
    }

    sqlite3 *db;
    vs_result rc = OK_RESULT;
    GUARD(authz_enter(z, &db));
    for (size_t i = 0; i < op_rule_count; i++) {
        const struct op_rule *row = &op_rules[i];
        char object[OBJECT_MAX];
        bool held[PRIV_COUNT];
        if (strcmp(row->operation, operation) != 0 || !cond_holds(row->cond, f))
            continue;
        GUARD_OUT(row_object_locked(&z->model, row, vm, parent, object));
        GUARD_OUT(subject_privileges_locked(&z->model, s, object, held));
        if (!held[row->priv]) {
            rc = deny(s, object, row->priv);
            goto out;
        }
    }
out:
    store_unlock(z->st);
    return rc;
}

/* --- the table as Markdown ------------------------------------------------------------------ */

static const char *cond_words(enum op_cond c)
{
    switch (c) {
    case COND_ALWAYS:
        return "always";
    case COND_VM_ENCRYPTED:
        return "the VM is encrypted";
    case COND_VM_TEMPLATE:
        return "the VM is a template";
    case COND_VM_NOT_TEMPLATE:
        return "the VM is not a template";
    case COND_ENCRYPTS:
        return "it encrypts";
    case COND_DECRYPTS:
        return "it decrypts";
    case COND_RECRYPTS:
        return "it changes the keys (recrypt)";
    case COND_HOST_NOT_SAFE:
        return "it encrypts and the host is not in encryption mode yet";
    case COND_HOST_PATH:
        return "the request names a file on the host";
    case COND_ON:
        return "it turns the flag on";
    case COND_OFF:
        return "it turns the flag off";
    }
    return "?";
}

static const char *object_words(enum op_object o)
{
    switch (o) {
    case OBJ_VM:
        return "the VM";
    case OBJ_PARENT:
        return "the target";
    case OBJ_ROOT:
        return "`/`";
    }
    return "?";
}

char *authz_table_markdown(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    fputs("\n\n| operation | privilege | on | when |\n|---|---|---|---|\n", f);
    for (size_t i = 0; i < op_rule_count; i++)
        fprintf(f, "| `%s` | `%s` | %s | %s |\n", op_rules[i].operation,
                priv_name(op_rules[i].priv), object_words(op_rules[i].object),
                cond_words(op_rules[i].cond));
    fputs("\n*The VM* is the VM the request names (the source of a clone, the VM of a task). "
          "*The target* is where a new or moved VM goes (`/` or `folder/NAME`); for "
          "`permission.manage`, the object of the permission.\n",
          f);
    fputs("\n| privilege | allows | built-in roles that hold it |\n|---|---|---|\n", f);
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        fprintf(f, "| `%s` | %s | ", privileges[i].name, privileges[i].what);
        const char *sep = "";
        for (size_t b = 0; b < BUILTIN_ROLE_COUNT; b++) {
            if (builtin_roles[b].holds((enum priv)i)) {
                fprintf(f, "%s%s", sep, builtin_roles[b].name);
                sep = ", ";
            }
        }
        fputs(" |\n", f);
    }
    fputs("\n", f);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}
