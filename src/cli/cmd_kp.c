/*
 * cmd_kp.c - vmseal kp: key providers (docs/api.md, "Key providers").
 */
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
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

/* Prints an answer {"provider": provider}: the provider with --json, else
 * the line `said`. */
static vs_result cli_report_provider_line(struct cli_ctx *ctx, json_t *answer, const char *said)
{
    json_t *provider;
    const char *name;
    char safe[1024];

    GUARD(cli_json_field(answer, "provider", JSON_OBJECT, false, &provider));
    GUARD(cli_json_string(provider, "name", false, &name));
    if (ctx->json)
        return cli_emit_json(ctx, provider);
    fprintf(ctx->out, "%s\n", cli_sanitize(said, safe, sizeof(safe)));
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

/* A provider's servers: strings ("host:port"), or objects with their
 * health ({"address", "status", "versions", "error", "latency_ms"}) since
 * key provider administration; either is taken. */
static vs_result cli_kp_server(const json_t *s, const char **address, json_t **health)
{
    *health = NULL;
    if (json_is_string(s)) {
        *address = json_string_value(s);
        return OK_RESULT;
    }
    GUARD(cli_json_string(s, "address", false, address));
    *health = (json_t *)s;
    return OK_RESULT;
}

/* One row of the health table for server s of provider name. */
static vs_result cli_kp_health_row(struct cli_table *t, const char *name, const char *address,
                                   const json_t *h, bool *added)
{
    const char *status, *error;
    json_t *versions, *latency, *v;
    char vtext[128] = "", ltext[32] = "-";
    size_t k, used = 0;

    GUARD(cli_json_string(h, "status", true, &status));
    GUARD(cli_json_string(h, "error", true, &error));
    GUARD(cli_json_field(h, "versions", JSON_ARRAY, true, &versions));
    GUARD(cli_json_field(h, "latency_ms", JSON_INTEGER, true, &latency));
    *added = false;
    if (status == NULL)
        return OK_RESULT; /* not checked */
    json_array_foreach(versions, k, v)
    {
        ENSURE(json_is_string(v), ERR_INVALID_ARG);
        int w = snprintf(vtext + used, sizeof(vtext) - used, "%s%s", k ? "," : "",
                         json_string_value(v));
        if (w < 0 || (size_t)w >= sizeof(vtext) - used)
            break;
        used += (size_t)w;
    }
    if (latency != NULL && strcmp(status, "ok") == 0)
        snprintf(ltext, sizeof(ltext), "%" JSON_INTEGER_FORMAT " ms", json_integer_value(latency));
    const char *row[] = {address, name, status, used ? vtext : "-", ltext, error};
    GUARD(cli_table_add(t, row));
    *added = true;
    return OK_RESULT;
}

vs_result cli_cmd_kp_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const headers[] = {"NAME", "TYPE", "DEFAULT", "CONFIGURED",
                                          "BACKED UP / SERVERS"};
    static const char *const health_headers[] = {"KEY SERVER", "PROVIDER", "STATUS",
                                                 "KMIP VERSIONS", "LATENCY", "ERROR"};
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *p;
    struct cli_table *table = NULL, *health = NULL;
    size_t i, checked = 0;

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/providers", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "providers", JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(5, headers, &table));
    GUARD_OUT(cli_table_new(6, health_headers, &health));
    json_array_foreach(list, i, p)
    {
        const char *name, *type;
        json_t *is_default, *backed_up, *servers, *configured;
        char column[512] = "";
        GUARD_OUT(cli_json_string(p, "name", false, &name));
        GUARD_OUT(cli_json_string(p, "type", false, &type));
        GUARD_OUT(cli_json_field(p, "default", CLI_JSON_BOOL, false, &is_default));
        /* Standard providers: trust set up both ways (kp trust, kp client). */
        GUARD_OUT(cli_json_field(p, "configured", CLI_JSON_BOOL, true, &configured));
        GUARD_OUT(cli_json_field(p, "backed_up", CLI_JSON_BOOL, true, &backed_up));
        GUARD_OUT(cli_json_field(p, "servers", JSON_ARRAY, true, &servers));
        if (strcmp(type, "native") == 0) {
            snprintf(column, sizeof(column), "%s", json_is_true(backed_up) ? "yes" : "no");
        } else if (servers != NULL) {
            size_t k, used = 0;
            json_t *s, *h;
            json_array_foreach(servers, k, s)
            {
                const char *address;
                GUARD_OUT(cli_kp_server(s, &address, &h));
                if (h != NULL) {
                    bool added;
                    GUARD_OUT(cli_kp_health_row(health, name, address, h, &added));
                    checked += added;
                }
                int w = snprintf(column + used, sizeof(column) - used, "%s%s", k ? "," : "",
                                 address);
                if (w < 0 || (size_t)w >= sizeof(column) - used)
                    break;
                used += (size_t)w;
            }
        }
        const char *row[] = {name, type, json_is_true(is_default) ? "yes" : "",
                             configured == NULL ? "-" : json_is_true(configured) ? "yes" : "no",
                             column};
        GUARD_OUT(cli_table_add(table, row));
    }
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, answer));
    } else {
        cli_table_print(table, ctx->out);
        /* Each key server's health (Discover Versions over a fresh
         * connection), when vmseald checked it. */
        if (checked > 0) {
            fputc('\n', ctx->out);
            cli_table_print(health, ctx->out);
        }
    }
out:
    if (rc.code == ERR_INVALID_ARG && err_last()->detail[0] == '\0')
        err_detail("malformed answer from vmseald: a provider's servers are not strings");
    cli_table_free(&table);
    cli_table_free(&health);
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

/* Prints the scalar fields of obj as key: value lines, in its order, "_"
 * read as a space; an object's scalars under "KEY SUBKEY" (prefix), one
 * level deep; arrays are left to --json. */
static void cli_print_scalars(struct cli_ctx *ctx, const json_t *obj, const char *prefix)
{
    const char *key;
    json_t *v;
    char text[64], label[128];

    json_object_foreach((json_t *)obj, key, v)
    {
        const char *value = text;
        snprintf(label, sizeof(label), "%s%s%s", prefix, prefix[0] ? " " : "", key);
        for (char *p = label; *p != '\0'; p++)
            if (*p == '_')
                *p = ' ';
        if (json_is_object(v) && prefix[0] == '\0') {
            cli_print_scalars(ctx, v, label);
            continue;
        }
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
        cli_print_scalars(ctx, host, "");
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
        cli_print_scalars(ctx, host, "");
    }
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

/* --- key provider administration (Cryptographer.ManageKeyServers) --- */

vs_result cli_cmd_kp_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *type = cli_str(a, CLI_OPT_TYPE);
    uint64_t pems = CLI_BIT(CA) | CLI_BIT(CERT) | CLI_BIT(KEY);

    if (strcmp(type, "native") == 0) {
        if (a->given & (CLI_BIT(SERVER) | pems))
            return cli_usage_error(ctx, "a native provider takes no --server, --ca, --cert or "
                                        "--key");
        return cli_cmd_kp_add_native(ctx, a);
    }
    if (strcmp(type, "standard") != 0)
        return cli_usage_error(ctx, "--type: '%s' is neither native nor standard", type);
    if (!cli_has(a, CLI_OPT_SERVER))
        return cli_usage_error(ctx, "a standard provider needs --server HOST:PORT");
    if ((a->given & pems) == pems)
        return cli_cmd_kp_add_standard(ctx, a);
    if ((a->given & pems) != 0)
        return cli_usage_error(ctx, "--ca, --cert and --key go together (or none of them: then "
                                    "kp server-cert, kp trust and kp client establish trust)");

    /* vCenter's way: the servers now, trust in both directions afterwards. */
    vs_result rc = OK_RESULT;
    const struct cli_value *sv = &a->opt[CLI_OPT_SERVER];
    json_t *servers = json_array(), *body = NULL, *answer = NULL;

    ENSURE_OUT(servers != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < sv->count; i++) {
        if (!is_ok(cli_check_host_port(sv->text[i]))) {
            rc = cli_usage_prefix(ctx, "--server");
            goto out;
        }
        ENSURE_OUT(json_array_append_new(servers, json_string(sv->text[i])) == 0, ERR_NOMEM);
    }
    body = json_pack("{s:s, s:s, s:O}", "name", a->arg[0], "type", "standard", "servers", servers);
    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/providers", body, 0, &answer));
    GUARD_OUT(cli_report_provider(ctx, answer, "created"));
    if (!ctx->json)
        fprintf(ctx->out,
                "next: vmseal kp server-cert %s, then vmseal kp trust %s ..., and a client "
                "certificate: vmseal kp client self-signed|csr|cert %s ...\n",
                a->arg[0], a->arg[0], a->arg[0]);
out:
    json_decref(servers);
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_remove(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "providers", a->arg[0]));
    snprintf(said, sizeof(said), "removed key provider %s", a->arg[0]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, NULL, said, NULL);
}

vs_result cli_cmd_kp_server_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = NULL, *answer = NULL;
    char path[256], done[256];

    if (!is_ok(cli_check_host_port(a->arg[1])))
        return cli_usage_prefix(ctx, "HOST:PORT");
    body = json_pack("{s:s}", "address", a->arg[1]);
    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_path(path, sizeof(path), 3, "providers", a->arg[0], "servers"));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    snprintf(done, sizeof(done), "added key server %s to", a->arg[1]);
    GUARD_OUT(cli_report_provider(ctx, answer, done));
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_server_remove(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL;
    char path[384], done[256];

    if (!is_ok(cli_check_host_port(a->arg[1])))
        return cli_usage_prefix(ctx, "HOST:PORT");
    GUARD_OUT(cli_path(path, sizeof(path), 4, "providers", a->arg[0], "servers", a->arg[1]));
    GUARD_OUT(cli_api_call(ctx, "DELETE", path, NULL, 0, &answer));
    snprintf(done, sizeof(done), "removed key server %s from", a->arg[1]);
    GUARD_OUT(cli_report_provider(ctx, answer, done));
out:
    json_decref(answer);
    return rc;
}

/* Writes text (len bytes, from the answer) to a new file path (0600,
 * never overwriting). The path is checked before anything is asked of
 * the server: pass check_only first, then the text. */
static vs_result cli_kp_write_new(const char *path, const char *text, size_t len)
{
    int fd;
    vs_result rc;

    GUARD(cli_file_create(path, &fd));
    rc = cli_file_finish(path, fd, text, len);
    if (!is_ok(rc))
        (void)unlink(path);
    return rc;
}

static vs_result cli_kp_out_free(const char *path)
{
    if (access(path, F_OK) == 0) {
        vs_result rc = RAISE(ERR_EXISTS);
        err_detail("%s exists: vmseal never overwrites a file", path);
        return rc;
    }
    return OK_RESULT;
}

vs_result cli_cmd_kp_server_cert(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *out_file = cli_str(a, CLI_OPT_OUT), *server = cli_str(a, CLI_OPT_SERVER);
    json_t *body = json_object(), *answer = NULL, *sc, *chain;
    const char *address, *subject, *issuer, *not_before, *not_after, *sha256, *colons, *pem;
    char path[256];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    if (a->opt[CLI_OPT_SERVER].count > 1)
        GUARD_OUT(cli_usage_error(ctx, "kp server-cert asks one server: one --server"));
    if (server != NULL) {
        if (!is_ok(cli_check_host_port(server))) {
            rc = cli_usage_prefix(ctx, "--server");
            goto out;
        }
        ENSURE_OUT(json_object_set_new(body, "address", json_string(server)) == 0, ERR_NOMEM);
    }
    if (out_file != NULL)
        GUARD_OUT(cli_kp_out_free(out_file));
    GUARD_OUT(cli_path(path, sizeof(path), 3, "providers", a->arg[0], "server-certificate"));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "server_certificate", JSON_OBJECT, false, &sc));
    GUARD_OUT(cli_json_string(sc, "address", true, &address));
    GUARD_OUT(cli_json_string(sc, "subject", false, &subject));
    GUARD_OUT(cli_json_string(sc, "issuer", false, &issuer));
    GUARD_OUT(cli_json_string(sc, "not_before", false, &not_before));
    GUARD_OUT(cli_json_string(sc, "not_after", false, &not_after));
    GUARD_OUT(cli_json_string(sc, "sha256", false, &sha256));
    GUARD_OUT(cli_json_string(sc, "sha256_colons", true, &colons));
    GUARD_OUT(cli_json_field(sc, "chain_length", JSON_INTEGER, true, &chain));
    GUARD_OUT(cli_json_string(sc, "pem", false, &pem));
    if (out_file != NULL)
        GUARD_OUT(cli_kp_write_new(out_file, pem, strlen(pem)));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, sc));
        goto out;
    }
    cli_print_kv(ctx->out, "server", address, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "subject", subject, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "issuer", issuer, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "not before", not_before, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "not after", not_after, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "SHA-256", colons != NULL ? colons : sha256, CLI_KV_WIDTH);
    if (chain != NULL) {
        char n[32];
        snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT, json_integer_value(chain));
        cli_print_kv(ctx->out, "chain length", n, CLI_KV_WIDTH);
    }
    if (out_file != NULL) {
        char safe[PATH_MAX];
        fprintf(ctx->out, "wrote the certificate to %s\n",
                cli_sanitize(out_file, safe, sizeof(safe)));
    } else {
        /* The PEM itself, to save as FILE (docs/keyprov.md): line by line,
         * each sanitized, so that nothing in it drives the terminal. */
        const char *line = pem;
        while (*line != '\0') {
            size_t n = strcspn(line, "\n");
            char text[256], safe[256];
            snprintf(text, sizeof(text), "%.*s", (int)(n < sizeof(text) ? n : sizeof(text) - 1),
                     line);
            fprintf(ctx->out, "%s\n", cli_sanitize(text, safe, sizeof(safe)));
            line += n;
            if (*line == '\n')
                line++;
        }
    }
    fprintf(ctx->out,
            "compare the fingerprint with the key server's own; if it matches: vmseal kp trust "
            "%s --server-cert FILE --fingerprint %s\n",
            a->arg[0], sha256);
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

/* 64 hex digits, ':' allowed between pairs, and openssl's "sha256
 * Fingerprint=" before them (docs/api.md, "Key providers"): as `openssl
 * x509 -fingerprint -sha256` prints it, or as kp server-cert does. */
static bool cli_kp_fingerprint_ok(const char *text)
{
    static const char openssl[] = "sha256 Fingerprint=";
    size_t digits = 0;
    if (strncasecmp(text, openssl, sizeof(openssl) - 1) == 0)
        text += sizeof(openssl) - 1;
    for (const char *p = text; *p != '\0'; p++) {
        bool hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F');
        if (hex)
            digits++;
        else if (*p != ':')
            return false;
    }
    return digits == 64;
}

vs_result cli_cmd_kp_trust(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf pem = {0};
    json_t *body = NULL, *answer = NULL;
    char path[256];
    bool ca = cli_has(a, CLI_OPT_CA);
    const char *fingerprint = cli_str(a, CLI_OPT_FINGERPRINT);
    char said[1024];

    if (!ca && !cli_kp_fingerprint_ok(fingerprint))
        return cli_usage_error(ctx, "--fingerprint: '%s' is not a SHA-256 fingerprint (64 hex "
                                    "digits, ':' allowed)",
                               fingerprint);
    GUARD_OUT(cli_path(path, sizeof(path), 3, "providers", a->arg[0], "trust"));
    GUARD_OUT(cli_read_pem(cli_str(a, ca ? CLI_OPT_CA : CLI_OPT_SERVER_CERT), CLI_PEM_LIMIT,
                           false, &pem));
    if (ca)
        body = json_pack("{s:s%}", "ca_pem", (const char *)buf_data(&pem), buf_len(&pem));
    else
        body = json_pack("{s:s%, s:s}", "server_certificate_pem", (const char *)buf_data(&pem),
                         buf_len(&pem), "fingerprint", fingerprint);
    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    if (ca)
        snprintf(said, sizeof(said), "%s trusts the key servers that the CA in %s signed",
                 a->arg[0], cli_str(a, CLI_OPT_CA));
    else
        snprintf(said, sizeof(said), "%s trusts the key server certificate %s (SHA-256 %s)",
                 a->arg[0], cli_str(a, CLI_OPT_SERVER_CERT), fingerprint);
    GUARD_OUT(cli_report_provider_line(ctx, answer, said));
out:
    buf_free(&pem);
    json_decref(body);
    json_decref(answer);
    return rc;
}

/* kp client self-signed and kp client csr: POST .../client/WHAT {} and
 * write the answer's PEM (field) to --out. */
static vs_result cli_kp_client_pem(struct cli_ctx *ctx, const struct cli_args *a,
                                   const char *what, const char *field, const char *thing,
                                   const char *next)
{
    vs_result rc = OK_RESULT;
    const char *out_file = cli_str(a, CLI_OPT_OUT), *pem;
    json_t *body = json_object(), *answer = NULL, *provider;
    char path[256];

    ENSURE_OUT(body != NULL, ERR_NOMEM);
    GUARD_OUT(cli_kp_out_free(out_file));
    GUARD_OUT(cli_path(path, sizeof(path), 4, "providers", a->arg[0], "client", what));
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "provider", JSON_OBJECT, false, &provider));
    GUARD_OUT(cli_json_string(answer, field, false, &pem));
    GUARD_OUT(cli_kp_write_new(out_file, pem, strlen(pem)));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, answer));
    } else {
        char line[PATH_MAX + 512], safe[sizeof(line)];
        snprintf(line, sizeof(line), "%s: %s written to %s (its key stays in vmseald): %s",
                 a->arg[0], thing, out_file, next);
        fprintf(ctx->out, "%s\n", cli_sanitize(line, safe, sizeof(safe)));
    }
out:
    json_decref(body);
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_kp_client_self_signed(struct cli_ctx *ctx, const struct cli_args *a)
{
    return cli_kp_client_pem(ctx, a, "self-signed", "certificate_pem",
                             "a self-signed client certificate", "make the key server trust it");
}

vs_result cli_cmd_kp_client_csr(struct cli_ctx *ctx, const struct cli_args *a)
{
    char next[256];
    snprintf(next, sizeof(next),
             "have the key server's CA sign it, then: vmseal kp client cert %.64s --cert FILE",
             a->arg[0]);
    return cli_kp_client_pem(ctx, a, "csr", "csr_pem", "a certificate request", next);
}

vs_result cli_cmd_kp_client_cert(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf cert = {0}, key = {0};
    json_t *body = NULL, *answer = NULL;
    char path[256], said[1024];
    bool with_key = cli_has(a, CLI_OPT_KEY);

    GUARD_OUT(cli_path(path, sizeof(path), 4, "providers", a->arg[0], "client", "certificate"));
    GUARD_OUT(cli_read_pem(cli_str(a, CLI_OPT_CERT), CLI_PEM_LIMIT, false, &cert));
    if (with_key)
        GUARD_OUT(cli_read_pem(cli_str(a, CLI_OPT_KEY), CLI_KEY_PEM_LIMIT, true, &key));
    body = json_pack("{s:s%}", "certificate_pem", (const char *)buf_data(&cert), buf_len(&cert));
    GUARD_OUT(cli_body_check(ctx, body));
    if (with_key) {
        /* The key's copy inside jansson is wiped when freed (cli_json_init). */
        json_t *k = json_stringn((const char *)buf_data(&key), buf_len(&key));
        buf_free(&key);
        if (k == NULL || json_object_set_new(body, "key_pem", k) != 0)
            GUARD_OUT(cli_usage_error(ctx, "--key is not valid UTF-8 text"));
    }
    GUARD_OUT(cli_api_call(ctx, "POST", path, body, CLI_BODY_SECRET, &answer));
    snprintf(said, sizeof(said), "%s uses the client certificate %s%s", a->arg[0],
             cli_str(a, CLI_OPT_CERT), with_key ? " and its key (delete the key file now)" : "");
    GUARD_OUT(cli_report_provider_line(ctx, answer, said));
out:
    buf_free(&cert);
    buf_free(&key);
    json_decref(body);
    json_decref(answer);
    return rc;
}
