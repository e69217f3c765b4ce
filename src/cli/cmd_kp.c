/*
 * cmd_kp.c - vmseal kp: key providers (docs/api.md, "Key providers").
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli/base64.h"
#include "cli/cmd.h"
#include "cli/input.h"
#include "cli/output.h"
#include "core/file.h"

/* The largest PEM file read: a CA bundle may hold many certificates. */
#define CLI_PEM_LIMIT ((size_t)1 << 20)
/* A private key is far smaller; it is held in locked memory. */
#define CLI_KEY_PEM_LIMIT ((size_t)64 << 10)
/* The largest backup file restored (vmseald takes at most 1 MiB today). */
#define CLI_BACKUP_LIMIT ((size_t)4 << 20)

/* Prints an answer {"provider": provider}: the provider with --json, else
 * "DONE TYPE key provider NAME", or with done NULL "NAME is now the
 * default key provider". */
static vs_result cli_report_provider(struct cli_ctx *ctx, json_t *answer, const char *done)
{
    json_t *provider, *is_default;
    const char *name, *type;
    char safe[256], safe_type[64];

    GUARD(cli_json_field(answer, "provider", JSON_OBJECT, false, &provider));
    GUARD(cli_json_string(provider, "name", false, &name));
    GUARD(cli_json_string(provider, "type", false, &type));
    GUARD(cli_json_field(provider, "default", CLI_JSON_BOOL, false, &is_default));
    if (ctx->json)
        return cli_emit_json(ctx, provider);
    cli_sanitize(name, safe, sizeof(safe));
    if (done == NULL) {
        fprintf(ctx->out, "%s is now the default key provider\n", safe);
        return OK_RESULT;
    }
    fprintf(ctx->out, "%s %s key provider %s%s\n", done,
            cli_sanitize(type, safe_type, sizeof(safe_type)), safe,
            json_is_true(is_default) ? " (the default)" : "");
    return OK_RESULT;
}

vs_result cli_cmd_kp_add_native(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_pack("{s:s, s:s}", "name", a->arg[0], "type", "native");
    json_t *answer = NULL;

    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/providers", body, 0, &answer));
    GUARD_OUT(cli_report_provider(ctx, answer, "created"));
    if (!ctx->json)
        fprintf(ctx->out, "back it up before relying on it: vmseal kp backup %s --to FILE\n",
                a->arg[0]);
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_add_standard(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf ca = {0}, cert = {0}, key = {0};
    json_t *body = NULL, *servers = NULL, *answer = NULL;
    const struct cli_value *sv = &a->opt[CLI_OPT_SERVER];

    for (unsigned i = 0; i < sv->count; i++) {
        if (!is_ok(cli_check_host_port(sv->text[i]))) {
            rc = cli_usage_prefix(ctx, "--server");
            goto out;
        }
    }
    GUARD_OUT(cli_read_pem(cli_str(a, CLI_OPT_CA), CLI_PEM_LIMIT, false, &ca));
    GUARD_OUT(cli_read_pem(cli_str(a, CLI_OPT_CERT), CLI_PEM_LIMIT, false, &cert));
    GUARD_OUT(cli_read_pem(cli_str(a, CLI_OPT_KEY), CLI_KEY_PEM_LIMIT, true, &key));

    servers = json_array();
    ENSURE_OUT(servers != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < sv->count; i++)
        ENSURE_OUT(json_array_append_new(servers, json_string(sv->text[i])) == 0, ERR_NOMEM);
    /* s% takes a length: the PEM buffers are not NUL-terminated. The key's
     * copy inside jansson is wiped when freed (cli_json_init). */
    body = json_pack("{s:s, s:s, s:O, s:s%, s:s%, s:s%}", "name", a->arg[0], "type", "standard",
                     "servers", servers, "ca_pem", (const char *)buf_data(&ca), buf_len(&ca),
                     "cert_pem", (const char *)buf_data(&cert), buf_len(&cert), "key_pem",
                     (const char *)buf_data(&key), buf_len(&key));
    if (body == NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the name or a PEM file is not valid UTF-8 text");
        goto out;
    }
    buf_free(&key); /* wiped: the body holds the only copy now */
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/providers", body, CLI_BODY_SECRET, &answer));
    GUARD_OUT(cli_report_provider(ctx, answer, "created"));
out:
    buf_free(&ca);
    buf_free(&cert);
    buf_free(&key);
    json_decref(servers);
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_backup(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *to = cli_str(a, CLI_OPT_TO);
    struct buf passphrase = {0}, backup = {0};
    json_t *body = NULL, *answer = NULL, *report = NULL;
    const char *b64;
    char path[PATH_MAX], prompt[160], api_path[256];
    int fd = -1;
    bool created = false, finished = false;

    GUARD_OUT(cli_path_absolute(NULL, to, path, sizeof(path)));
    GUARD_OUT(cli_path(api_path, sizeof(api_path), 3, "providers", a->arg[0], "backup"));
    /* Say "exists" before asking for a passphrase; O_EXCL below decides. */
    if (access(path, F_OK) == 0) {
        rc = RAISE(ERR_EXISTS);
        err_detail("%s exists: vmseal never overwrites a file", to);
        goto out;
    }
    snprintf(prompt, sizeof(prompt), "Passphrase for the backup of %.64s: ", a->arg[0]);
    GUARD_OUT(cli_read_passphrase(cli_str(a, CLI_OPT_PASSPHRASE_FILE), prompt, true, &passphrase));
    GUARD_OUT(cli_file_create(path, &fd));
    created = true;

    body = json_pack("{s:s%}", "passphrase", (const char *)buf_data(&passphrase),
                     buf_len(&passphrase));
    buf_free(&passphrase);
    if (body == NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the passphrase is not valid UTF-8 text");
        goto out;
    }
    GUARD_OUT(cli_api_call(ctx, "POST", api_path, body, CLI_BODY_SECRET, &answer));
    GUARD_OUT(cli_json_string(answer, "backup", false, &b64));
    GUARD_OUT(buf_alloc(&backup, 0, CLI_ANSWER_LIMIT));
    rc = cli_base64_decode(b64, strlen(b64), &backup);
    if (!is_ok(rc)) {
        rc = cli_detail_prefix("malformed answer from vmseald: the backup");
        goto out;
    }
    ENSURE_OUT(buf_len(&backup) > 0, ERR_INVALID_ARG);
    rc = cli_file_finish(path, fd, buf_data(&backup), buf_len(&backup));
    fd = -1; /* closed, whatever happened */
    GUARD_OUT(rc);
    finished = true;

    if (ctx->json) {
        /* Not the API's answer: the backup went to the file. */
        report = json_pack("{s:s, s:s, s:I}", "provider", a->arg[0], "file", path, "size",
                           (json_int_t)buf_len(&backup));
        ENSURE_OUT(report != NULL, ERR_NOMEM);
        GUARD_OUT(cli_emit_json(ctx, report));
    } else {
        char safe[PATH_MAX];
        fprintf(ctx->out,
                "wrote the backup of %s to %s (%zu bytes); keep it and its passphrase apart\n",
                a->arg[0], cli_sanitize(path, safe, sizeof(safe)), buf_len(&backup));
    }
out:
    if (fd >= 0) {
        close(fd);
        fd = -1;
    }
    /* A file this command created and did not finish is removed. */
    if (created && !finished)
        (void)unlink(path);
    buf_free(&passphrase);
    buf_free(&backup);
    json_decref(body);
    json_decref(answer);
    json_decref(report);
    return rc;
}

vs_result cli_cmd_kp_restore(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *from = cli_str(a, CLI_OPT_FROM), *name = cli_str(a, CLI_OPT_NAME);
    struct buf file = {0}, b64 = {0}, passphrase = {0};
    json_t *body = NULL, *answer = NULL;

    GUARD_OUT(buf_alloc(&file, 0, CLI_BACKUP_LIMIT));
    GUARD_OUT(file_read_all(from, CLI_BACKUP_LIMIT, &file));
    if (buf_len(&file) == 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s is empty", from);
        goto out;
    }
    GUARD_OUT(buf_alloc(&b64, 0, CLI_BACKUP_LIMIT / 3 * 4 + 4));
    GUARD_OUT(cli_base64_encode(buf_data(&file), buf_len(&file), &b64));
    GUARD_OUT(cli_read_passphrase(cli_str(a, CLI_OPT_PASSPHRASE_FILE),
                                  "Passphrase of the backup: ", false, &passphrase));
    body = json_pack("{s:s%, s:s%}", "backup", (const char *)buf_data(&b64), buf_len(&b64),
                     "passphrase", (const char *)buf_data(&passphrase), buf_len(&passphrase));
    buf_free(&passphrase);
    if (body == NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the passphrase is not valid UTF-8 text");
        goto out;
    }
    /* "name" only when given: the backup knows its provider's name. */
    if (name != NULL) {
        json_t *n = json_string(name);
        if (n == NULL || json_object_set_new(body, "name", n) != 0)
            GUARD_OUT(cli_usage_error(ctx, "--name is not valid UTF-8 text"));
    }
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/providers/restore", body, CLI_BODY_SECRET, &answer));
    GUARD_OUT(cli_report_provider(ctx, answer, "restored"));
out:
    buf_free(&file);
    buf_free(&b64);
    buf_free(&passphrase);
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const headers[] = {"NAME", "TYPE", "DEFAULT", "BACKED UP / SERVERS"};
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *p;
    struct cli_table *table = NULL;
    size_t i;

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/providers", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "providers", JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(4, headers, &table));
    json_array_foreach(list, i, p)
    {
        const char *name, *type;
        json_t *is_default, *backed_up, *servers;
        char column[512] = "";
        GUARD_OUT(cli_json_string(p, "name", false, &name));
        GUARD_OUT(cli_json_string(p, "type", false, &type));
        GUARD_OUT(cli_json_field(p, "default", CLI_JSON_BOOL, false, &is_default));
        GUARD_OUT(cli_json_field(p, "backed_up", CLI_JSON_BOOL, true, &backed_up));
        GUARD_OUT(cli_json_field(p, "servers", JSON_ARRAY, true, &servers));
        if (strcmp(type, "native") == 0) {
            snprintf(column, sizeof(column), "%s", json_is_true(backed_up) ? "yes" : "no");
        } else if (servers != NULL) {
            size_t k, used = 0;
            json_t *s;
            json_array_foreach(servers, k, s)
            {
                ENSURE_OUT(json_is_string(s), ERR_INVALID_ARG);
                int w = snprintf(column + used, sizeof(column) - used, "%s%s", k ? "," : "",
                                 json_string_value(s));
                if (w < 0 || (size_t)w >= sizeof(column) - used)
                    break;
                used += (size_t)w;
            }
        }
        const char *row[] = {name, type, json_is_true(is_default) ? "yes" : "", column};
        GUARD_OUT(cli_table_add(table, row));
    }
    if (ctx->json)
        GUARD_OUT(cli_emit_json(ctx, answer));
    else
        cli_table_print(table, ctx->out);
out:
    if (rc.code == ERR_INVALID_ARG && err_last()->detail[0] == '\0')
        err_detail("malformed answer from vmseald: a provider's servers are not strings");
    cli_table_free(&table);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_set_default(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_object(), *answer = NULL;
    char path[256];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_path(path, sizeof(path), 3, "providers", a->arg[0], "default"));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    GUARD_OUT(cli_report_provider(ctx, answer, NULL));
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

/* --- host --- */

/* Prints the scalar fields of obj as key: value lines, in its order;
 * objects and arrays are left to --json. */
static void cli_print_scalars(struct cli_ctx *ctx, const json_t *obj)
{
    const char *key;
    json_t *v;
    char text[64];

    json_object_foreach((json_t *)obj, key, v)
    {
        const char *value = text;
        if (json_is_string(v))
            value = json_string_value(v);
        else if (json_is_boolean(v))
            value = json_is_true(v) ? "yes" : "no";
        else if (json_is_integer(v))
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_null(v))
            value = "-";
        else
            continue;
        char label[64];
        snprintf(label, sizeof(label), "%s", key);
        for (char *p = label; *p != '\0'; p++)
            if (*p == '_')
                *p = ' ';
        cli_print_kv(ctx->out, label, value, CLI_KV_WIDTH);
    }
}

vs_result cli_cmd_host_show(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *host;

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/host", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "host", JSON_OBJECT, false, &host));
    if (ctx->json)
        GUARD_OUT(cli_emit_json(ctx, host));
    else
        cli_print_scalars(ctx, host);
out:
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_host_enable_encryption(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_object(), *answer = NULL, *host;

    (void)a;
    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/host/encryption", body, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "host", JSON_OBJECT, false, &host));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, host));
    } else {
        fprintf(ctx->out, "the host is in encryption mode\n");
        cli_print_scalars(ctx, host);
    }
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}
