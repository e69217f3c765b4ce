/*
 * cmd_admin.c - vmseal login, logout, whoami, token, user, role, privilege,
 * permission, folder and policy (docs/api.md: "Session and tokens", "Users
 * and groups", "Roles and privileges", "Permissions", "Folders", "Storage
 * policies").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/input.h"
#include "cli/output.h"
#include "cli/tokens.h"

/* docs/api.md, "Users and groups": passwords of 8 to 1024 bytes (the
 * server judges the lower bound). */
#define CLI_PASSWORD_MAX 1024

static vs_result cli_read_password(const struct cli_args *a, struct buf *out)
{
    if (!is_ok(cli_read_secret_file(cli_str(a, CLI_OPT_PASSWORD_FILE), "password",
                                    CLI_PASSWORD_MAX, out)))
        return cli_detail_prefix("--password-file");
    return OK_RESULT;
}

/* {"password": ...} plus, when name is not NULL, "name": name. The
 * password's copy inside jansson is wiped when freed (cli_json_init). */
static json_t *cli_password_body(const char *name_key, const char *name, const struct buf *pw)
{
    json_t *body =
        json_pack("{s:s%}", "password", (const char *)buf_data(pw), buf_len(pw));
    if (body != NULL && name != NULL && json_object_set_new(body, name_key, json_string(name)) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* --- session --- */

vs_result cli_cmd_login(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf password = {0};
    json_t *body = NULL, *answer = NULL, *entry = NULL, *report = NULL;
    const char *token, *id, *user, *expires;

    if (ctx->server == NULL)
        return cli_usage_error(ctx, "vmseal login is for --server https://HOST:PORT (or "
                                    "VMSEAL_SERVER): on the socket, vmseald knows you by your "
                                    "Unix user");
    GUARD_OUT(cli_read_password(a, &password));
    body = cli_password_body("user", cli_str(a, CLI_OPT_USER), &password);
    buf_free(&password); /* the body holds the only copy now */
    GUARD_OUT(cli_body_check(ctx, body));
    ENSURE_OUT(json_object_set_new(body, "ttl",
                                   cli_has(a, CLI_OPT_TTL)
                                       ? json_integer((json_int_t)a->opt[CLI_OPT_TTL].number[0])
                                       : json_null()) == 0,
               ERR_NOMEM);
    GUARD_OUT(cli_api_call(ctx, "POST", "/v1/session", body, CLI_BODY_SECRET, &answer));
    GUARD_OUT(cli_json_string(answer, "token", false, &token));
    GUARD_OUT(cli_json_string(answer, "id", true, &id));
    GUARD_OUT(cli_json_string(answer, "user", false, &user));
    GUARD_OUT(cli_json_string(answer, "expires", false, &expires));
    if (!cli_token_is_valid((const uint8_t *)token, strlen(token))) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("malformed answer from vmseald: the token is not a bearer token");
        goto out;
    }
    entry = cli_tokens_entry_new(token, id, user, expires, ctx->ca_file);
    ENSURE_OUT(entry != NULL, ERR_NOMEM);
    GUARD_OUT(cli_tokens_update(ctx->tokens_dir, ctx->server, entry, NULL));
    if (ctx->json) {
        /* The API's answer without the token: stdout is no place for it. */
        report = json_pack("{s:s, s:s?, s:s, s:s}", "server", ctx->server, "id", id, "user", user,
                           "expires", expires);
        ENSURE_OUT(report != NULL, ERR_NOMEM);
        GUARD_OUT(cli_emit_json(ctx, report));
    } else {
        char su[128], se[64], ss[CLI_SERVER_URL_MAX];
        fprintf(ctx->out, "logged in to %s as %s (the token expires %s)\n",
                cli_sanitize(ctx->server, ss, sizeof(ss)), cli_sanitize(user, su, sizeof(su)),
                cli_sanitize(expires, se, sizeof(se)));
    }
out:
    buf_free(&password);
    json_decref(body);
    json_decref(answer);
    json_decref(entry);
    json_decref(report);
    return rc;
}

/* The report of a logout with --json. */
static vs_result cli_logout_json(struct cli_ctx *ctx, const char *revoked, bool removed)
{
    json_t *report = json_pack("{s:s?, s:s?, s:b}", "server", ctx->server, "revoked", revoked,
                               "removed", removed);
    vs_result rc;
    ENSURE(report != NULL, ERR_NOMEM);
    rc = cli_emit_json(ctx, report);
    json_decref(report);
    return rc;
}

vs_result cli_cmd_logout(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL;
    bool from_store = ctx->token_source == CLI_TOKEN_STORE, removed = false;
    char where[CLI_SERVER_URL_MAX], expires[64];
    const char *revoked = NULL;

    (void)a;
    if (ctx->server == NULL && ctx->token_source != CLI_TOKEN_FILE)
        return cli_usage_error(ctx, "vmseal logout is for --server https://HOST:PORT (or "
                                    "VMSEAL_SERVER), or --token-file FILE: on the socket there "
                                    "is no session");
    cli_sanitize(ctx->server != NULL ? ctx->server : "vmseald", where, sizeof(where));
    cli_sanitize(ctx->token_expires != NULL ? ctx->token_expires : "it expires", expires,
                 sizeof(expires));
    if (ctx->token_source == CLI_TOKEN_NONE) {
        /* No valid token to revoke: drop an expired entry, if any. */
        GUARD(cli_tokens_update(ctx->tokens_dir, ctx->server, NULL, &removed));
        if (ctx->json)
            return cli_logout_json(ctx, NULL, removed);
        fprintf(ctx->out, removed ? "removed the expired token of %s\n" : "not logged in to %s\n",
                where);
        return OK_RESULT;
    }
    rc = cli_api_call(ctx, "DELETE", "/v1/session", NULL, 0, &answer);
    /* 401: the token was no longer valid (expired or revoked): gone anyway. */
    bool gone = is_ok(rc) || (ctx->has_api_error && ctx->api_error.status == 401);
    if (from_store) {
        /* Removed here whatever vmseald said: the user asked to be logged
         * out of this machine. The failure to revoke, if any, is kept. */
        struct err_state saved = *err_last();
        vs_result local = cli_tokens_update(ctx->tokens_dir, ctx->server, NULL, &removed);
        if (!is_ok(local)) {
            json_decref(answer);
            ctx->has_api_error = false;
            return local;
        }
        if (!is_ok(rc))
            rc = err_restore(&saved);
    }
    if (!gone) {
        /* Unreachable, or refused: the token lives on until it expires. The
         * reason follows, from cli_report_failure. */
        fprintf(ctx->err, "vmseal: vmseald did not revoke the token%s: it stays valid until %s\n",
                from_store && removed ? " (removed here all the same)" : "", expires);
        json_decref(answer);
        return rc;
    }
    ctx->has_api_error = false;
    if (answer != NULL && !is_ok(cli_json_string(answer, "revoked", true, &revoked)))
        revoked = NULL;
    if (ctx->json) {
        rc = cli_logout_json(ctx, revoked, removed);
    } else {
        fprintf(ctx->out, "logged out of %s%s\n", where,
                answer == NULL ? " (the token was no longer valid)" : "");
        rc = OK_RESULT;
    }
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_whoami(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *session, *root, *groups;
    const char *user, *via, *token_id;
    char line[512];

    (void)a;
    GUARD_OUT(cli_api_call(ctx, "GET", "/v1/session", NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, "session", JSON_OBJECT, false, &session));
    GUARD_OUT(cli_json_string(session, "user", false, &user));
    GUARD_OUT(cli_json_field(session, "root", CLI_JSON_BOOL, true, &root));
    GUARD_OUT(cli_json_field(session, "groups", JSON_ARRAY, true, &groups));
    GUARD_OUT(cli_json_string(session, "via", true, &via));
    GUARD_OUT(cli_json_string(session, "token_id", true, &token_id));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, session));
        goto out;
    }
    static const struct cli_column group_column = {"", "groups", CLI_COL_JOIN, NULL};
    cli_print_kv(ctx->out, "user", user, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "administrator", json_is_true(root) ? "yes (root)" : "no",
                 CLI_KV_WIDTH);
    GUARD_OUT(cli_list_cell_text(session, &group_column, line, sizeof(line)));
    cli_print_kv(ctx->out, "groups", line, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "via", via, CLI_KV_WIDTH);
    if (ctx->server != NULL)
        cli_print_kv(ctx->out, "server", ctx->server, CLI_KV_WIDTH);
    cli_print_kv(ctx->out, "token", token_id, CLI_KV_WIDTH);
    if (ctx->token_source == CLI_TOKEN_STORE && ctx->token_expires != NULL)
        cli_print_kv(ctx->out, "expires", ctx->token_expires, CLI_KV_WIDTH);
out:
    json_decref(answer);
    return rc;
}

vs_result cli_cmd_token_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"ID", "id", CLI_COL_STRING, NULL},         {"USER", "user", CLI_COL_STRING, NULL},
        {"CREATED", "created", CLI_COL_STRING, NULL}, {"EXPIRES", "expires", CLI_COL_STRING, NULL},
        {"REVOKED", "revoked", CLI_COL_BOOL, NULL},
    };
    return cli_list(ctx, cli_has(a, CLI_OPT_ALL) ? "/v1/tokens?all=1" : "/v1/tokens", "tokens",
                    columns, sizeof(columns) / sizeof(columns[0]));
}

vs_result cli_cmd_token_revoke(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "tokens", a->arg[0]));
    snprintf(said, sizeof(said), "revoked token %s", a->arg[0]);
    GUARD(cli_call_and_say(ctx, "DELETE", path, NULL, 0, "revoked", said, NULL));
    /* Our own stored token: no use keeping it. */
    if (ctx->server != NULL && ctx->token_source == CLI_TOKEN_STORE &&
        ctx->token_id != NULL && strcmp(ctx->token_id, a->arg[0]) == 0) {
        rc = cli_tokens_update(ctx->tokens_dir, ctx->server, NULL, NULL);
        if (is_ok(rc) && !ctx->json)
            fprintf(ctx->out, "it was this machine's token for %s: logged out\n", ctx->server);
    }
    return rc;
}

/* --- users and groups --- */

vs_result cli_cmd_user_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf password = {0};
    json_t *body = NULL;
    char said[256];

    GUARD_OUT(cli_read_password(a, &password));
    body = cli_password_body("name", a->arg[0], &password);
    buf_free(&password);
    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "created user %s", a->arg[0]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/users", body, CLI_BODY_SECRET, "user", said,
                               NULL));
out:
    buf_free(&password);
    json_decref(body);
    return rc;
}

vs_result cli_cmd_user_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"NAME", "name", CLI_COL_STRING, NULL},
        {"GROUPS", "groups", CLI_COL_JOIN, NULL},
        {"BUILT-IN", "builtin", CLI_COL_BOOL, NULL},
        {"CREATED", "created", CLI_COL_STRING, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/users", "users", columns, sizeof(columns) / sizeof(columns[0]));
}

vs_result cli_cmd_user_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "users", a->arg[0]));
    snprintf(said, sizeof(said),
             "deleted user %s (their tokens are revoked, their permissions removed)", a->arg[0]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, NULL, said, NULL);
}

vs_result cli_cmd_user_password(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    struct buf password = {0};
    json_t *body = NULL;
    char path[256], said[256];

    GUARD_OUT(cli_path(path, sizeof(path), 3, "users", a->arg[0], "password"));
    GUARD_OUT(cli_read_password(a, &password));
    body = cli_password_body(NULL, NULL, &password);
    buf_free(&password);
    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "changed the password of %s", a->arg[0]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", path, body, CLI_BODY_SECRET, "user", said, NULL));
out:
    buf_free(&password);
    json_decref(body);
    return rc;
}

vs_result cli_cmd_user_group_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_pack("{s:s}", "group", a->arg[1]);
    char path[256], said[256];

    GUARD_OUT(cli_body_check(ctx, body));
    GUARD_OUT(cli_path(path, sizeof(path), 3, "users", a->arg[0], "groups"));
    snprintf(said, sizeof(said), "added %s to group %s", a->arg[0], a->arg[1]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", path, body, 0, "user", said, NULL));
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_user_group_remove(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[384], said[256];

    GUARD(cli_path(path, sizeof(path), 4, "users", a->arg[0], "groups", a->arg[1]));
    snprintf(said, sizeof(said), "removed %s from group %s", a->arg[0], a->arg[1]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, "user", said, NULL);
}

/* --- roles and privileges --- */

vs_result cli_cmd_role_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const struct cli_value *pv = &a->opt[CLI_OPT_PRIVILEGE];
    json_t *privileges = json_array(), *body = NULL;
    char said[256];

    ENSURE_OUT(privileges != NULL, ERR_NOMEM);
    for (unsigned i = 0; i < pv->count; i++) {
        json_t *p = json_string(pv->text[i]);
        if (p == NULL)
            GUARD_OUT(cli_usage_error(ctx, "--privilege is not valid UTF-8 text"));
        ENSURE_OUT(json_array_append_new(privileges, p) == 0, ERR_NOMEM);
    }
    body = json_pack("{s:s, s:O}", "name", a->arg[0], "privileges", privileges);
    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "created role %s (%u privilege%s)", a->arg[0], pv->count,
             pv->count == 1 ? "" : "s");
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/roles", body, 0, "role", said, NULL));
out:
    json_decref(privileges);
    json_decref(body);
    return rc;
}

vs_result cli_cmd_role_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"NAME", "name", CLI_COL_STRING, NULL},
        {"BUILT-IN", "builtin", CLI_COL_BOOL, NULL},
        {"PRIVILEGES", "privileges", CLI_COL_COUNT, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/roles", "roles", columns, sizeof(columns) / sizeof(columns[0]));
}

vs_result cli_cmd_role_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "roles", a->arg[0]));
    snprintf(said, sizeof(said), "deleted role %s", a->arg[0]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, NULL, said, NULL);
}

vs_result cli_cmd_privilege_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"NAME", "name", CLI_COL_STRING, NULL},
        {"DESCRIPTION", "description", CLI_COL_STRING, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/privileges", "privileges", columns,
                    sizeof(columns) / sizeof(columns[0]));
}

/* --- permissions --- */

/* {"user": NAME} or {"group": NAME}, and "object" (default "/"). */
static json_t *cli_principal_body(const struct cli_args *a, const char **kind, const char **name,
                                  const char **object)
{
    bool user = cli_has(a, CLI_OPT_USER);
    *kind = user ? "user" : "group";
    *name = cli_str(a, user ? CLI_OPT_USER : CLI_OPT_GROUP);
    *object = cli_has(a, CLI_OPT_OBJECT) ? cli_str(a, CLI_OPT_OBJECT) : "/";
    return json_pack("{s:s, s:s}", *kind, *name, "object", *object);
}

/* --object, checked (usage error), or "/". */
static vs_result cli_object_check(struct cli_ctx *ctx, const struct cli_args *a)
{
    if (cli_has(a, CLI_OPT_OBJECT) && !is_ok(cli_check_object_path(cli_str(a, CLI_OPT_OBJECT))))
        return cli_usage_prefix(ctx, "--object");
    return OK_RESULT;
}

vs_result cli_cmd_permission_set(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *kind, *name, *object, *role = cli_str(a, CLI_OPT_ROLE);
    bool propagate = !cli_has(a, CLI_OPT_NO_PROPAGATE);
    json_t *body = NULL;
    char said[512];

    GUARD(cli_object_check(ctx, a));
    body = cli_principal_body(a, &kind, &name, &object);
    GUARD_OUT(cli_body_check(ctx, body));
    json_t *role_json = json_string(role);
    if (role_json == NULL)
        GUARD_OUT(cli_usage_error(ctx, "--role is not valid UTF-8 text"));
    ENSURE_OUT(json_object_set_new(body, "role", role_json) == 0 &&
                   json_object_set_new(body, "propagate", json_boolean(propagate)) == 0,
               ERR_NOMEM);
    snprintf(said, sizeof(said), "gave %s %s the role %s on %s%s", kind, name, role, object,
             propagate ? "" : " (not propagated to its children)");
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/permissions", body, 0, "permission", said,
                               NULL));
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_permission_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"PRINCIPAL", "principal", CLI_COL_STRING, NULL},
        {"GROUP", "group", CLI_COL_BOOL, NULL},
        {"ROLE", "role", CLI_COL_STRING, NULL},
        {"OBJECT", "object", CLI_COL_STRING, NULL},
        {"PROPAGATE", "propagate", CLI_COL_BOOL, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/permissions", "permissions", columns,
                    sizeof(columns) / sizeof(columns[0]));
}

vs_result cli_cmd_permission_remove(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    const char *kind, *name, *object;
    json_t *body = NULL;
    char said[512];

    GUARD(cli_object_check(ctx, a));
    body = cli_principal_body(a, &kind, &name, &object);
    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "removed the permission of %s %s on %s", kind, name, object);
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/permissions/remove", body, 0, "removed", said,
                               NULL));
out:
    json_decref(body);
    return rc;
}

/* --- folders --- */

vs_result cli_cmd_folder_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body = json_pack("{s:s}", "name", a->arg[0]);
    char said[256];

    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "created folder %s", a->arg[0]);
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/folders", body, 0, "folder", said, NULL));
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_folder_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "folders", a->arg[0]));
    snprintf(said, sizeof(said), "deleted folder %s", a->arg[0]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, NULL, said, NULL);
}

vs_result cli_cmd_folder_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"NAME", "name", CLI_COL_STRING, NULL},
        {"VMS", "vms", CLI_COL_JOIN, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/folders", "folders", columns, sizeof(columns) / sizeof(columns[0]));
}

/* --- storage policies --- */

vs_result cli_cmd_policy_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct cli_column columns[] = {
        {"NAME", "name", CLI_COL_STRING, NULL},
        {"ENCRYPTION", "encryption", CLI_COL_BOOL, NULL},
        {"PROVIDER", "provider", CLI_COL_STRING, "(default)"},
        {"BUILT-IN", "builtin", CLI_COL_BOOL, NULL},
    };
    (void)a;
    return cli_list(ctx, "/v1/policies", "policies", columns,
                    sizeof(columns) / sizeof(columns[0]));
}

vs_result cli_cmd_policy_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    vs_result rc = OK_RESULT;
    json_t *body =
        json_pack("{s:s, s:s}", "name", a->arg[0], "provider", cli_str(a, CLI_OPT_PROVIDER));
    char said[256];

    GUARD_OUT(cli_body_check(ctx, body));
    snprintf(said, sizeof(said), "created encryption policy %s (provider %s)", a->arg[0],
             cli_str(a, CLI_OPT_PROVIDER));
    GUARD_OUT(cli_call_and_say(ctx, "POST", "/v1/policies", body, 0, "policy", said, NULL));
out:
    json_decref(body);
    return rc;
}

vs_result cli_cmd_policy_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
    char path[256], said[256];

    GUARD(cli_path(path, sizeof(path), 2, "policies", a->arg[0]));
    snprintf(said, sizeof(said), "deleted policy %s", a->arg[0]);
    return cli_call_and_say(ctx, "DELETE", path, NULL, 0, NULL, said, NULL);
}
