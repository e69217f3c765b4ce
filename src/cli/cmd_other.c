/*
 * cmd_other.c - vmseal disk, key, task and help.
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/input.h"
#include "cli/output.h"

/* --- disks --- */

vs_result cli_cmd_disk_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = NULL, *result = NULL;
    char path[256], label[128], done[256], human[32];
    uint64_t size;

    if (!is_ok(cli_parse_size(a->arg[1], &size)))
        return cli_usage_prefix(ctx, "SIZE");
    body = json_pack("{s:I}", "size", (json_int_t)size);
    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", a->arg[0], "disks"));
    snprintf(label, sizeof(label), "add disk to %.64s", a->arg[0]);
    snprintf(done, sizeof(done), "added a disk of %s to %s",
             cli_format_size(size, human, sizeof(human)), a->arg[0]);
    GUARD_OUT(cli_api_task(ctx, "POST", path, body, label, &result));
    GUARD_OUT(cli_report_vm_task(ctx, result, done));
out:
    json_decref(body);
    json_decref(result);
    return rc;
}

vs_result cli_cmd_disk_export(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = NULL, *result = NULL;
    char path[384], file[PATH_MAX], label[128], done[PATH_MAX + 128];
    uint64_t index;

    if (!is_ok(cli_parse_uint(a->arg[1], 0, 4095, &index)))
        return cli_usage_prefix(ctx, "INDEX");
    /* vmseald creates the file: a path relative to it means nothing. */
    GUARD_OUT(cli_path_absolute(NULL, a->arg[2], file, sizeof(file)));
    body = json_pack("{s:s}", "path", file);
    if (body == NULL)
        GUARD_OUT(cli_usage_error(ctx, "FILE is not valid UTF-8 text"));
    GUARD_OUT(cli_path(path, sizeof(path), 5, "vms", a->arg[0], "disks", a->arg[1], "export"));
    snprintf(label, sizeof(label), "export %.64s disk %" PRIu64, a->arg[0], index);
    snprintf(done, sizeof(done), "exported disk %" PRIu64 " of %s to %s (not encrypted)", index,
             a->arg[0], file);
    GUARD_OUT(cli_api_task(ctx, "POST", path, body, label, &result));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, result));
    } else {
        char safe[sizeof(done)];
        fprintf(ctx->out, "%s\n", cli_sanitize(done, safe, sizeof(safe)));
    }
out:
    json_decref(body);
    json_decref(result);
    return rc;
}

/* --- keys --- */

vs_result cli_cmd_key_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const headers[] = {"PROVIDER", "KEY ID", "VMS", "DESTROYED"};
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *key;
    struct cli_table *table = NULL;
    size_t i;

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/keys", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "keys", JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(4, headers, &table));
    json_array_foreach(list, i, key)
    {
        const char *provider, *key_id;
        json_t *vms, *destroyed, *vm;
        char names[512] = "";
        size_t k, used = 0;
        GUARD_OUT(cli_json_string(key, "provider", false, &provider));
        GUARD_OUT(cli_json_string(key, "key_id", false, &key_id));
        GUARD_OUT(cli_json_field(key, "vms", JSON_ARRAY, false, &vms));
        GUARD_OUT(cli_json_field(key, "destroyed", CLI_JSON_BOOL, false, &destroyed));
        json_array_foreach(vms, k, vm)
        {
            if (!json_is_string(vm)) {
                rc = RAISE(ERR_INVALID_ARG);
                err_detail("malformed answer from vmseald: a key's vms are not names");
                goto out;
            }
            int w = snprintf(names + used, sizeof(names) - used, "%s%s", k ? "," : "",
                             json_string_value(vm));
            if (w < 0 || (size_t)w >= sizeof(names) - used)
                break;
            used += (size_t)w;
        }
        const char *row[] = {provider, key_id, used ? names : "-",
                             json_is_true(destroyed) ? "yes" : "no"};
        GUARD_OUT(cli_table_add(table, row));
    }
    if (ctx->json)
        GUARD_OUT(cli_emit_json(ctx, answer));
    else
        cli_table_print(table, ctx->out);
out:
    cli_table_free(&table);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_key_destroy(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *what = a->arg[0], *slash = strchr(what, '/');
    json_t *body = NULL, *answer = NULL, *key, *list = NULL, *item;
    char provider[256];
    size_t i;

    if (slash != NULL) {
        /* PROVIDER/KEYID: provider names hold no '/', key IDs may. */
        size_t plen = (size_t)(slash - what);
        if (plen == 0 || slash[1] == '\0' || plen >= sizeof(provider))
            return cli_usage_error(ctx, "'%s' is not PROVIDER/KEYID", what);
        memcpy(provider, what, plen);
        provider[plen] = '\0';
        body = json_pack("{s:s, s:s}", "provider", provider, "key_id", slash + 1);
    } else {
        body = json_pack("{s:s}", "vm", what);
    }
    if (body == NULL)
        return cli_usage_error(ctx, "an argument is not valid UTF-8 text");
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/keys/destroy", body, 0, &answer));
    /* docs/api.md answers {"key": key}; a VM that was rekeyed used several
     * keys, so {"destroyed": [key...]} is taken as well. */
    GUARD_OUT(cli_json_field(answer, "key", JSON_OBJECT, true, &key));
    if (key != NULL) {
        list = json_pack("[O]", key);
        ENSURE_OUT(list != NULL, ERR_NOMEM);
    } else {
        GUARD_OUT(cli_json_field(answer, "destroyed", JSON_ARRAY, false, &key));
        list = json_incref(key);
    }
    json_array_foreach(list, i, item)
    {
        const char *p, *id;
        GUARD_OUT(cli_json_string(item, "provider", false, &p));
        GUARD_OUT(cli_json_string(item, "key_id", false, &id));
        if (!ctx->json) {
            char sp[256], sid[512];
            fprintf(ctx->out,
                    "destroyed key %s of provider %s: what it encrypted can no longer be opened\n",
                    cli_sanitize(id, sid, sizeof(sid)), cli_sanitize(p, sp, sizeof(sp)));
        }
    }
    if (ctx->json)
        GUARD_OUT(cli_emit_json(
            ctx, json_object_get(answer, "key") != NULL ? json_object_get(answer, "key") : answer));
out:
    json_decref(list);
    json_decref(body);
    json_decref(answer);
    return rc;
}

/* --- tasks --- */

/* How many tasks `vmseal task list` shows without --all-states. */
#define CLI_TASK_LIST_DEFAULT "50"

vs_result cli_cmd_task_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const headers[] = {"ID",    "OPERATION", "TARGET",  "USER",
                                          "STATE", "PROGRESS",  "STARTED"};
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *item;
    struct cli_table *table = NULL;
    size_t i;
    /* docs/api.md, "Tasks": ?state= and ?limit=. By default the newest
     * CLI_TASK_LIST_DEFAULT of any state; --all-states every task vmseald
     * keeps; --running those running now. */
    const char *query = cli_has(a, CLI_OPT_RUNNING)      ? "/v1/tasks?state=running"
                        : cli_has(a, CLI_OPT_ALL_STATES) ? "/v1/tasks"
                                                         : "/v1/tasks?limit=" CLI_TASK_LIST_DEFAULT;

    GUARD_OUT(cli_api_call(ctx, "GET", query, NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "tasks", JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(7, headers, &table));
    json_array_foreach(list, i, item)
    {
        struct cli_task t;
        const char *started, *user;
        char progress[16];
        GUARD_OUT(cli_task_parse(item, &t));
        GUARD_OUT(cli_json_string(item, "started", true, &started));
        GUARD_OUT(cli_json_string(item, "user", true, &user));
        snprintf(progress, sizeof(progress), "%ld%%", t.progress);
        const char *row[] = {t.id, t.operation, t.target, user, t.state, progress, started};
        GUARD_OUT(cli_table_add(table, row));
    }
    if (ctx->json)
        GUARD_OUT(cli_emit_json(ctx, answer));
    else
        cli_table_print(table, ctx->out);
out:
    cli_table_free(&table);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_task_show(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *task;
    struct cli_task t;
    const char *started, *finished, *user, *recovered;
    json_t *cancellable;
    char path[256], line[1024];

    GUARD_OUT(cli_path(path, sizeof(path), 2, "tasks", a->arg[0]));
    GUARD_OUT(cli_api_call(ctx, "GET", path, NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "task", JSON_OBJECT, false, &task));
    GUARD_OUT(cli_task_parse(task, &t));
    GUARD_OUT(cli_json_string(task, "started", true, &started));
    GUARD_OUT(cli_json_string(task, "finished", true, &finished));
    GUARD_OUT(cli_json_string(task, "user", true, &user));
    GUARD_OUT(cli_json_string(task, "recovered", true, &recovered));
    GUARD_OUT(cli_json_field(task, "cancellable", CLI_JSON_BOOL, true, &cancellable));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, task));
        goto out;
    }
    cli_print_kv(ctx->out, "id", t.id, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "operation", t.operation, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "target", t.target, CLI_KV_WIDTH);
    if (user != NULL)
        cli_print_kv(ctx->out, "user", user, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "state", t.state, CLI_KV_WIDTH);
    snprintf(line, sizeof(line), "%ld%%", t.progress);
    cli_print_kv(ctx->out, "progress", line, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "started", started, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "finished", finished, CLI_KV_WIDTH);
    if (cancellable != NULL)
        cli_print_kv(ctx->out, "cancellable", json_is_true(cancellable) ? "yes" : "no",
                     CLI_KV_WIDTH);
    if (recovered != NULL)
        cli_print_kv(ctx->out, "recovered", recovered, CLI_KV_WIDTH);
    if (t.error != NULL) {
        struct cli_api_error e;
        (void)cli_api_error_from_json(t.error, 0, &e);
        snprintf(line, sizeof(line), "%.40s: %.900s", e.code, e.message);
        cli_print_kv(ctx->out, "error", line, CLI_KV_WIDTH);
    }
    json_t *vm = cli_result_vm(t.result);
    if (vm != NULL) {
        const char *name = NULL;
        GUARD_OUT(cli_json_string(vm, "name", false, &name));
        snprintf(line, sizeof(line), "vm %s (%s)", name,
                 json_is_true(json_object_get(vm, "encrypted")) ? "encrypted" : "not encrypted");
        cli_print_kv(ctx->out, "result", line, CLI_KV_WIDTH);
    } else if (t.result != NULL) {
        /* Another kind of result: compact JSON, cut to one line. */
        size_t n = json_dumpb(t.result, line, sizeof(line) - 1, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0 || n > sizeof(line) - 1)
            snprintf(line, sizeof(line), "(%zu bytes of JSON: --json shows it)", n);
        else
            line[n] = '\0';
        cli_print_kv(ctx->out, "result", line, CLI_KV_WIDTH);
    }
out:
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_task_watch(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *task = NULL;
    char label[160], safe[160];
    const char *operation = NULL, *target = NULL;

    snprintf(label, sizeof(label), "task %.100s", a->arg[0]);
    /* A bar on a terminal; otherwise one line per change (unless --json,
     * which prints the final task only). */
    rc = cli_task_follow(ctx, a->arg[0], label, CLI_WATCH_POLL_MS, !ctx->progress && !ctx->json,
                         &task);
    if (is_ok(rc)) {
        if (ctx->json) {
            rc = cli_emit_json(ctx, task);
        } else {
            struct cli_task t;
            rc = cli_task_parse(task, &t);
            operation = is_ok(rc) ? t.operation : NULL;
            target = is_ok(rc) ? t.target : NULL;
            snprintf(label, sizeof(label), "task %s (%s on %s) succeeded", a->arg[0],
                     operation != NULL ? operation : "?", target != NULL ? target : "?");
            fprintf(ctx->out, "%s\n", cli_sanitize(label, safe, sizeof(safe)));
        }
    }
    json_decref(task);
    return rc;
}

vs_result cli_cmd_task_cancel(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_object();
    char path[256], said[512];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_path(path, sizeof(path), 3, "tasks", a->arg[0], "cancel"));
    snprintf(said, sizeof(said),
             "asked task %s to stop: it ends cancelled once its operation has rolled back "
             "(vmseal task watch %s)",
             a->arg[0], a->arg[0]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", path, body, 0, "task", said, NULL));
out:
    json_decref(body);
    return rc;
}

/* --- help --- */

vs_result cli_cmd_help(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = cli_print_help(ctx->out, a->arg, a->nargs);
    if (!is_ok(rc))
        ctx->usage_error = true;
    return rc;
}
