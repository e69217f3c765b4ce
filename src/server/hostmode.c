/* hostmode.c - the host's encryption mode. See hostmode.h.
 *
 * Table `host` in vmseald.db holds at most one row (id 1): the host key's
 * provider and key ID, when the host entered the mode and who made it so.
 * The row is what "safe" means; the key itself lives at its provider (a
 * KEK like a VM's, with x-Component "Host", as vCenter gives an ESXi host
 * a host key with x-Component "ESXi Server"). */
#include "server/hostmode.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "keyprov/keyprov.h"
#include "server/api.h"
#include "vm/vmutil.h"

#define HOSTMODE_NAME_MAX 256

static const char hostmode_schema[] =
    "CREATE TABLE IF NOT EXISTS host (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " provider TEXT NOT NULL, key_id TEXT NOT NULL, created TEXT NOT NULL,"
    " created_by TEXT NOT NULL)";

/* One enable at a time: two first encryptions at once make one host key. */
static pthread_mutex_t hostmode_enable_lock = PTHREAD_MUTEX_INITIALIZER;

struct hostmode_row {
    bool present;
    char provider[KEYPROV_NAME_MAX];
    char key_id[KEYPROV_KEY_ID_MAX];
    char created[VM_TIME_LEN];
    char created_by[HOSTMODE_NAME_MAX];
};

static void hostmode_column(sqlite3_stmt *s, int col, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

/* The row, if there is one. */
static RESULT hostmode_read(struct store *st, struct hostmode_row *row)
{
    sqlite3 *db = store_lock(st);
    sqlite3_stmt *s = NULL;
    vs_result rc = store_exec(db, hostmode_schema);

    memset(row, 0, sizeof(*row));
    if (is_ok(rc) &&
        sqlite3_prepare_v2(db, "SELECT provider, key_id, created, created_by FROM host WHERE id = 1",
                           -1, &s, NULL) != SQLITE_OK)
        rc = store_error(db, "reading the host's encryption mode");
    if (is_ok(rc)) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            row->present = true;
            hostmode_column(s, 0, row->provider, sizeof(row->provider));
            hostmode_column(s, 1, row->key_id, sizeof(row->key_id));
            hostmode_column(s, 2, row->created, sizeof(row->created));
            hostmode_column(s, 3, row->created_by, sizeof(row->created_by));
        } else if (step != SQLITE_DONE) {
            rc = store_error(db, "reading the host's encryption mode");
        }
    }
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

static RESULT hostmode_write(struct store *st, const struct hostmode_row *row)
{
    sqlite3 *db = store_lock(st);
    sqlite3_stmt *s = NULL;
    vs_result rc = store_exec(db, hostmode_schema);

    if (is_ok(rc) && sqlite3_prepare_v2(db,
                                        "INSERT INTO host (id, provider, key_id, created, "
                                        "created_by) VALUES (1, ?, ?, ?, ?)",
                                        -1, &s, NULL) != SQLITE_OK)
        rc = store_error(db, "recording the host key");
    if (is_ok(rc)) {
        sqlite3_bind_text(s, 1, row->provider, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, row->key_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, row->created, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, row->created_by, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_error(db, "recording the host key");
    }
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

static void hostmode_hostname(char out[HOSTMODE_NAME_MAX])
{
    if (gethostname(out, HOSTMODE_NAME_MAX - 1) != 0 || out[0] == '\0')
        snprintf(out, HOSTMODE_NAME_MAX, "localhost");
    out[HOSTMODE_NAME_MAX - 1] = '\0';
}

/* GET /v1/host's object. */
static RESULT hostmode_info(struct api_ctx *ctx, const struct hostmode_row *row, json_t **out)
{
    char name[HOSTMODE_NAME_MAX];
    size_t providers = 0;
    json_t *vms = NULL, *key = NULL;
    struct keyprov_info dummy;

    hostmode_hostname(name);
    GUARD(keyprov_list(ctx->kp, &dummy, 0, &providers));
    GUARD(vm_list(ctx->host, &vms));
    if (row->present) {
        key = json_pack("{s:s, s:s, s:s, s:s}", "provider", row->provider, "key_id", row->key_id,
                        "created", row->created, "created_by", row->created_by);
        if (key == NULL) {
            json_decref(vms);
            BAIL(ERR_NOMEM);
        }
    }
    *out = json_pack("{s:s, s:s, s:o, s:I, s:I}", "name", name, "encryption_mode",
                     row->present ? "safe" : "none", "host_key", key != NULL ? key : json_null(),
                     "providers", (json_int_t)providers, "vms", (json_int_t)json_array_size(vms));
    json_decref(vms);
    ENSURE(*out != NULL, ERR_NOMEM);
    return OK_RESULT;
}

RESULT hostmode_get(struct api_ctx *ctx, bool *safe, json_t **info)
{
    struct hostmode_row row;

    GUARD(hostmode_read(ctx->store, &row));
    *safe = row.present;
    if (info != NULL)
        GUARD(hostmode_info(ctx, &row, info));
    return OK_RESULT;
}

RESULT hostmode_enable(struct api_ctx *ctx, const char *user)
{
    struct hostmode_row row;
    struct keyprov_ref ref;
    char host[HOSTMODE_NAME_MAX];
    struct keyprov_kek_purpose purpose = {.vm_name = host, .component = "Host"};
    vs_result rc;

    pthread_mutex_lock(&hostmode_enable_lock);
    rc = hostmode_read(ctx->store, &row);
    if (!is_ok(rc) || row.present)
        goto out;
    hostmode_hostname(host);
    rc = keyprov_new_kek(ctx->kp, NULL, &purpose, &ref);
    if (!is_ok(rc)) {
        if (rc.code == ERR_NOT_FOUND)
            err_detail("the host cannot enter encryption mode: there is no default key provider "
                       "for its host key (add one, or make one the default)");
        goto out;
    }
    snprintf(row.provider, sizeof(row.provider), "%s", ref.provider);
    snprintf(row.key_id, sizeof(row.key_id), "%s", ref.key_id);
    vm_time_now(row.created);
    snprintf(row.created_by, sizeof(row.created_by), "%s", user);
    rc = hostmode_write(ctx->store, &row);
    if (!is_ok(rc)) {
        /* The key stays at its provider, unused: say which, for its admin. */
        struct err_state why = *err_last();
        log_error("the host key was made but could not be recorded; the host is not in "
                  "encryption mode",
                  LOG_S("provider", ref.provider), LOG_S("key", ref.key_id));
        rc = err_restore(&why);
        goto out;
    }
    log_info("host encryption mode enabled", LOG_S("provider", ref.provider),
             LOG_S("key", ref.key_id), LOG_S("by", user));
out:
    pthread_mutex_unlock(&hostmode_enable_lock);
    return rc;
}
