/*
 * cmd_vm.c - vmseal vm: virtual machines (docs/api.md, "VMs").
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/input.h"
#include "cli/output.h"

/* Runs one task on a VM and reports it: the body (NULL: none) is sent to
 * method path, `label` names the progress bar, `done` the success. */
static vs_result cli_vm_task(struct cli_ctx *ctx, const char *method, const char *path,
                             const json_t *body, const char *label, const char *done)
{
    json_t *result = NULL;
    vs_result rc = cli_api_task(ctx, method, path, body, label, &result);
    if (is_ok(rc))
        rc = cli_report_vm_task(ctx, result, done);
    json_decref(result);
    return rc;
}

/* The common shape: POST /v1/vms/NAME/ACTION with body (taken over here),
 * labelled "ACTION NAME", reported as `done`. */
static vs_result cli_vm_action(struct cli_ctx *ctx, const char *name, const char *action,
                               json_t *body, const char *done)
{
    char path[512], label[128];
    vs_result rc = OK_RESULT;

    if (body == NULL)
        return cli_usage_error(ctx, "an argument is not valid UTF-8 text");
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", name, action));
    snprintf(label, sizeof(label), "%s %.64s", action, name);
    rc = cli_vm_task(ctx, "POST", path, body, label, done);
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_vm_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const struct cli_value *disk = &a->opt[CLI_OPT_DISK];
    json_t *disks = json_array(), *body = NULL;
    char image[PATH_MAX], label[128], done[256];

    ENSURE_OUT(disks != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < disk->count; i++)
        ENSURE_OUT(json_array_append_new(disks, json_integer((json_int_t)disk->number[i])) == 0,
                   ERR_NOMEM);
    /* The server opens the image: a path relative to it means nothing. */
    if (cli_has(a, CLI_OPT_IMAGE))
        GUARD_OUT(cli_path_absolute(NULL, cli_str(a, CLI_OPT_IMAGE), image, sizeof(image)));
    /* memory and cpus: null when not given, and vmseald's defaults apply. */
    json_t *memory = cli_has(a, CLI_OPT_MEMORY)
                         ? json_integer((json_int_t)a->opt[CLI_OPT_MEMORY].number[0])
                         : json_null();
    json_t *cpus = cli_has(a, CLI_OPT_CPUS)
                       ? json_integer((json_int_t)a->opt[CLI_OPT_CPUS].number[0])
                       : json_null();
    body = json_pack("{s:s, s:O, s:s?, s:b, s:s?, s:o, s:o}", "name", a->arg[0], "disks", disks,
                     "image", cli_has(a, CLI_OPT_IMAGE) ? image : NULL, "encrypt",
                     cli_has(a, CLI_OPT_ENCRYPT), "provider", cli_str(a, CLI_OPT_PROVIDER),
                     "memory", memory, "cpus", cpus);
    if (body == NULL)
        GUARD_OUT(cli_usage_error(ctx, "an argument is not valid UTF-8 text"));
    /* "policy" and "folder" only when given: null is their default. */
    static const struct {
        enum cli_opt_id option;
        const char *field;
    } optional[] = {{CLI_OPT_POLICY, "policy"}, {CLI_OPT_FOLDER, "folder"}};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
        if (!cli_has(a, optional[i].option))
            continue;
        json_t *v = json_string(cli_str(a, optional[i].option));
        if (v == NULL || json_object_set_new(body, optional[i].field, v) != 0)
            GUARD_OUT(cli_usage_error(ctx, "an argument is not valid UTF-8 text"));
    }
    snprintf(label, sizeof(label), "create %.64s", a->arg[0]);
    snprintf(done, sizeof(done), "created %s", a->arg[0]);
    GUARD_OUT(cli_vm_task(ctx, "POST", "/v1/vms", body, label, done));
out:
    json_decref(disks);
    json_decref(body);
    return rc;
}

vs_result cli_cmd_vm_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const headers[] = {"NAME",     "STATE", "ENCRYPTED",
                                          "PROVIDER", "DISKS", "SNAPSHOTS"};
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *vm;
    struct cli_table *table = NULL;
    size_t i;

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/vms", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "vms", JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(6, headers, &table));
    json_array_foreach(list, i, vm)
    {
        const char *name, *state, *provider;
        json_t *encrypted, *disks, *snapshots, *template;
        char ndisks[24], nsnaps[24], state_col[64];
        GUARD_OUT(cli_json_string(vm, "name", false, &name));
        GUARD_OUT(cli_json_string(vm, "state", false, &state));
        GUARD_OUT(cli_json_field(vm, "encrypted", CLI_JSON_BOOL, false, &encrypted));
        GUARD_OUT(cli_json_string(vm, "provider", true, &provider));
        GUARD_OUT(cli_json_field(vm, "disks", JSON_ARRAY, false, &disks));
        GUARD_OUT(cli_json_field(vm, "snapshots", JSON_ARRAY, false, &snapshots));
        GUARD_OUT(cli_json_field(vm, "template", CLI_JSON_BOOL, true, &template));
        snprintf(ndisks, sizeof(ndisks), "%zu", json_array_size(disks));
        snprintf(nsnaps, sizeof(nsnaps), "%zu", json_array_size(snapshots));
        snprintf(state_col, sizeof(state_col), "%s%s", state,
                 json_is_true(template) ? " (template)" : "");
        const char *row[] = {name,     state_col, json_is_true(encrypted) ? "yes" : "no",
                             provider, ndisks,    nsnaps};
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

static const char *cli_yes_no(const json_t *b)
{
    return json_is_true(b) ? "yes" : "no";
}

/* One disk of a vm object as "1 GiB, encrypted; disk0.img (luks), ...". */
static vs_result cli_format_disk(const json_t *disk, char *out, size_t size, json_int_t *index)
{
    json_t *ji, *jsize, *encrypted, *layers, *layer;
    char human[32];
    size_t used, k;
    int w;

    GUARD(cli_json_field(disk, "index", JSON_INTEGER, false, &ji));
    GUARD(cli_json_field(disk, "size", JSON_INTEGER, false, &jsize));
    GUARD(cli_json_field(disk, "encrypted", CLI_JSON_BOOL, true, &encrypted));
    GUARD(cli_json_field(disk, "layers", JSON_ARRAY, true, &layers));
    *index = json_integer_value(ji);
    json_int_t bytes = json_integer_value(jsize);
    cli_format_size(bytes > 0 ? (uint64_t)bytes : 0, human, sizeof(human));
    w = snprintf(out, size, "%s, %s", human,
                 encrypted == NULL         ? "-"
                 : json_is_true(encrypted) ? "encrypted"
                                           : "not encrypted");
    used = w > 0 && (size_t)w < size ? (size_t)w : size - 1;
    json_array_foreach(layers, k, layer)
    {
        const char *file, *format;
        GUARD(cli_json_string(layer, "file", false, &file));
        GUARD(cli_json_string(layer, "format", true, &format));
        w = snprintf(out + used, size - used, "%s%s (%s)", k == 0 ? "; " : ", ", file,
                     format != NULL ? format : "?");
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
    return OK_RESULT;
}

/* Prints a vm object as key: value lines, in this order; the fields that
 * are not always shown only when the server gives them (a lock reason,
 * clone parents). */
static vs_result cli_print_vm(struct cli_ctx *ctx, const json_t *vm)
{
    static const struct {
        const char *key, *label;
        bool flag;   /* true/false, printed yes/no */
        bool always; /* printed ("-") even when null */
    } fields[] = {
        {"name", "name", false, true},
        {"uuid", "uuid", false, true},
        {"state", "state", false, true},
        {"locked_reason", "locked because", false, false},
        {"encrypted", "encrypted", true, true},
        {"provider", "provider", false, true},
        {"key_id", "key id", false, true},
        {"template", "template", true, false},
        {"folder", "folder", false, false},
        {"policy", "storage policy", false, false},
        {"linked_clone_of", "linked clone of", false, false},
        {"instant_clone_of", "instant clone of", false, false},
        {"rekeyable", "rekeyable", true, false},
    };
    const char *s;
    json_t *v, *list, *item;
    char line[1024];
    size_t i;
    FILE *f = ctx->out;

    /* Check what must be there before printing anything. */
    GUARD(cli_json_string(vm, "name", false, &s));
    GUARD(cli_json_string(vm, "state", false, &s));
    GUARD(cli_json_field(vm, "encrypted", CLI_JSON_BOOL, false, &v));
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        GUARD(cli_json_field(vm, fields[i].key, fields[i].flag ? CLI_JSON_BOOL : JSON_STRING, true,
                             &v));
        if (v == NULL && !fields[i].always)
            continue;
        cli_print_kv(f, fields[i].label,
                     v == NULL        ? NULL
                     : fields[i].flag ? cli_yes_no(v)
                                      : json_string_value(v),
                     CLI_KV_WIDTH);
    }
    GUARD(cli_json_field(vm, "memory", JSON_INTEGER, true, &v));
    if (v != NULL && json_integer_value(v) >= 0)
        cli_print_kv(f, "memory",
                     cli_format_size((uint64_t)json_integer_value(v), line, sizeof(line)),
                     CLI_KV_WIDTH);
    GUARD(cli_json_field(vm, "cpus", JSON_INTEGER, true, &v));
    if (v != NULL) {
        snprintf(line, sizeof(line), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        cli_print_kv(f, "cpus", line, CLI_KV_WIDTH);
    }
    GUARD(cli_json_field(vm, "disks", JSON_ARRAY, true, &list));
    json_array_foreach(list, i, item)
    {
        char key[48];
        json_int_t index;
        GUARD(cli_format_disk(item, line, sizeof(line), &index));
        snprintf(key, sizeof(key), "disk %" JSON_INTEGER_FORMAT, index);
        cli_print_kv(f, key, line, CLI_KV_WIDTH);
    }
    GUARD(cli_json_field(vm, "snapshots", JSON_ARRAY, true, &list));
    json_array_foreach(list, i, item)
    {
        const char *snap, *created;
        GUARD(cli_json_string(item, "name", false, &snap));
        GUARD(cli_json_string(item, "created", true, &created));
        snprintf(line, sizeof(line), "%s (%s)", snap, created != NULL ? created : "?");
        cli_print_kv(f, "snapshot", line, CLI_KV_WIDTH);
    }
    GUARD(cli_json_string(vm, "console_log", true, &s));
    if (s != NULL)
        cli_print_kv(f, "console log", s, CLI_KV_WIDTH);
    return OK_RESULT;
}

vs_result cli_cmd_vm_info(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *vm;
    char path[256];

    GUARD_OUT(cli_path(path, sizeof(path), 2, "vms", a->arg[0]));
    GUARD_OUT(cli_api_call(ctx, "GET", path, NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "vm", JSON_OBJECT, false, &vm));
    if (ctx->json) {
        /* The vm itself, so that "encrypted" is a top-level key. */
        GUARD_OUT(cli_emit_json(ctx, vm));
    } else {
        GUARD_OUT(cli_print_vm(ctx, vm));
    }
out:
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_vm_encrypt(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[256];
    snprintf(done, sizeof(done), "encrypted %s", a->arg[0]);
    return cli_vm_action(ctx, a->arg[0], "encrypt",
                         json_pack("{s:s?}", "provider", cli_str(a, CLI_OPT_PROVIDER)), done);
}

vs_result cli_cmd_vm_decrypt(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[256];
    snprintf(done, sizeof(done), "decrypted %s", a->arg[0]);
    return cli_vm_action(ctx, a->arg[0], "decrypt", json_object(), done);
}

vs_result cli_cmd_vm_power_on(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[256];
    snprintf(done, sizeof(done), "powered on %s", a->arg[0]);
    return cli_vm_action(ctx, a->arg[0], "power-on", json_object(), done);
}

vs_result cli_cmd_vm_power_off(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[256];
    snprintf(done, sizeof(done), "powered off %s", a->arg[0]);
    return cli_vm_action(ctx, a->arg[0], "power-off", json_object(), done);
}

vs_result cli_cmd_vm_clone(struct cli_ctx *ctx, const struct cli_args *a)
{
    /* The clone's mode from the flag given (at most one, by the table). */
    static const struct {
        enum cli_opt_id flag;
        const char *mode;
    } modes[] = {
        {CLI_OPT_ENCRYPT, "encrypt"}, {CLI_OPT_DECRYPT, "decrypt"}, {CLI_OPT_RECRYPT, "recrypt"}};
    const char *mode = "keep";
    char done[256];

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (cli_has(a, modes[i].flag))
            mode = modes[i].mode;
    snprintf(done, sizeof(done), "cloned %s to %s%s", a->arg[0], a->arg[1],
             cli_has(a, CLI_OPT_INSTANT) ? " as an instant clone" : "");
    return cli_vm_action(ctx, a->arg[0], "clone",
                         json_pack("{s:s, s:s, s:s?, s:b}", "name", a->arg[1], "mode", mode,
                                   "provider", cli_str(a, CLI_OPT_PROVIDER), "instant",
                                   cli_has(a, CLI_OPT_INSTANT)),
                         done);
}

vs_result cli_cmd_vm_rekey(struct cli_ctx *ctx, const struct cli_args *a)
{
    bool deep = cli_has(a, CLI_OPT_DEEP);
    char done[256];
    snprintf(done, sizeof(done), "%s rekey of %s done", deep ? "deep" : "shallow", a->arg[0]);
    return cli_vm_action(
        ctx, a->arg[0], "rekey",
        json_pack("{s:b, s:s?}", "deep", deep, "provider", cli_str(a, CLI_OPT_PROVIDER)), done);
}

vs_result cli_cmd_vm_template(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    bool on = !cli_has(a, CLI_OPT_OFF);
    json_t *body = json_pack("{s:b}", "template", on), *answer = NULL, *vm;
    char path[256];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", a->arg[0], "template"));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "vm", JSON_OBJECT, false, &vm));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, vm));
    } else {
        char safe[128];
        fprintf(ctx->out, "%s is %s a template\n", cli_sanitize(a->arg[0], safe, sizeof(safe)),
                on ? "now" : "no longer");
    }
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_vm_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    char path[256], label[128], done[256];

    GUARD_OUT(cli_path(path, sizeof(path), 2, "vms", a->arg[0]));
    snprintf(label, sizeof(label), "delete %.64s", a->arg[0]);
    snprintf(done, sizeof(done), "deleted %s (its keys stay at their provider)", a->arg[0]);
    GUARD_OUT(cli_vm_task(ctx, "DELETE", path, NULL, label, done));
out:
    return rc;
}

/* --- snapshots --- */

vs_result cli_cmd_vm_snapshot_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_pack("{s:s}", "name", a->arg[1]);
    char path[256], label[160], done[320];

    if (body == NULL)
        return cli_usage_error(ctx, "an argument is not valid UTF-8 text");
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", a->arg[0], "snapshots"));
    snprintf(label, sizeof(label), "snapshot %.64s", a->arg[0]);
    snprintf(done, sizeof(done), "created snapshot %s of %s", a->arg[1], a->arg[0]);
    GUARD_OUT(cli_vm_task(ctx, "POST", path, body, label, done));
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_vm_snapshot_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    char path[384], label[160], done[320];

    GUARD_OUT(cli_path(path, sizeof(path), 4, "vms", a->arg[0], "snapshots", a->arg[1]));
    snprintf(label, sizeof(label), "delete snapshot %.64s", a->arg[1]);
    snprintf(done, sizeof(done), "deleted snapshot %s of %s", a->arg[1], a->arg[0]);
    GUARD_OUT(cli_vm_task(ctx, "DELETE", path, NULL, label, done));
out:
    return rc;
}

vs_result cli_cmd_vm_snapshot_revert(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_object();
    char path[384], label[160], done[320];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_path(path, sizeof(path), 5, "vms", a->arg[0], "snapshots", a->arg[1], "revert"));
    snprintf(label, sizeof(label), "revert %.64s", a->arg[0]);
    snprintf(done, sizeof(done), "reverted %s to snapshot %s", a->arg[0], a->arg[1]);
    GUARD_OUT(cli_vm_task(ctx, "POST", path, body, label, done));
out:
    json_decref(body);
    return rc;
}

/* --- inventory and storage policy --- */

vs_result cli_cmd_vm_move(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *folder = cli_str(a, CLI_OPT_FOLDER); /* NULL with --root */
    json_t *body = json_pack("{s:s?}", "folder", folder), *answer = NULL;
    char path[256], said[256];

    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", a->arg[0], "move"));
    if (folder != NULL)
        snprintf(said, sizeof(said), "moved %s to folder %s", a->arg[0], folder);
    else
        snprintf(said, sizeof(said), "moved %s to the root", a->arg[0]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", path, body, 0, "vm", said, &answer));
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_vm_policy(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *policy = cli_str(a, CLI_OPT_POLICY); /* NULL with --none */
    bool one_disk = cli_has(a, CLI_OPT_DISK_INDEX);
    uint64_t disk = one_disk ? a->opt[CLI_OPT_DISK_INDEX].number[0] : 0;
    json_t *body = NULL, *result = NULL;
    char path[256], label[128], what[160], done[512];

    body = json_pack("{s:s?, s:o}", "policy", policy, "disk",
                     one_disk ? json_integer((json_int_t)disk) : json_null());
    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_path(path, sizeof(path), 3, "vms", a->arg[0], "policy"));
    if (one_disk)
        snprintf(what, sizeof(what), "disk %" PRIu64 " of %.64s", disk, a->arg[0]);
    else
        snprintf(what, sizeof(what), "%.64s", a->arg[0]);
    snprintf(label, sizeof(label), "policy %.100s", what);
    if (policy != NULL)
        snprintf(done, sizeof(done), "%s has the storage policy %s", what, policy);
    else
        snprintf(done, sizeof(done), "%s has no storage policy", what);
    /* A task when something changes; the VM at once when nothing does. */
    GUARD_OUT(cli_api_task_or_now(ctx, "POST", path, body, label, &result));
    GUARD_OUT(cli_report_vm_task(ctx, result, done));
out:
    json_decref(body);
    json_decref(result);
    return rc;
}
