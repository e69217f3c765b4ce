/* api_admin.c - session, tokens, users, groups, roles, privileges,
 * permissions, folders and storage policies (docs/api.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/secret.h"
#include "server/api_internal.h"
#include "server/policy.h"
#include "vm/vmutil.h"

static const struct op_facts no_facts;

/* RFC 3339 UTC of Unix seconds. */
static void time_text(int64_t t, char out[VM_TIME_LEN])
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, VM_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- session and tokens ---------------------------------------------------------- */

static vs_result r_login(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"user", "password", "ttl", NULL};
    const char *user, *password;
    uint64_t ttl;
    char token[AUTH_TOKEN_TEXT_MAX] = "";
    struct auth_token_info info = {0};
    char expires[VM_TIME_LEN];
    vs_result rc = OK_RESULT;
    api_require_none(c, "session.login");
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "user", true, &user));
    GUARD_OUT(api_body_str(c->body, "password", true, &password));
    GUARD_OUT(api_body_u64(c->body, "ttl", false, &ttl));
    snprintf(c->user, sizeof c->user, "%s", user); /* for the audit: who tried */
    if (ttl > AUTH_TOKEN_TTL_MAX) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("field 'ttl' is at most %u seconds", AUTH_TOKEN_TTL_MAX);
        goto out;
    }
    /* Rate limits count per address, not per connection: the port goes. */
    char address[80] = "";
    if (c->tr->peer != NULL) {
        snprintf(address, sizeof address, "%s", c->tr->peer);
        char *colon = strrchr(address, ':');
        if (colon != NULL && strncmp(address, "uid=", 4) != 0)
            *colon = '\0';
    }
    rc = auth_login(c->ctx->auth, user, password, strlen(password), address, (unsigned)ttl,
                    token, &info, &c->retry_after);
    if (!is_ok(rc))
        goto out;
    snprintf(c->token_id, sizeof c->token_id, "%s", info.id);
    time_text(info.expires, expires);
    *out = json_pack("{s:s, s:s, s:s, s:s}", "token", token, "id", info.id, "user", info.user,
                     "expires", expires);
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
    *status = 201;
    log_info("user logged in", LOG_S("user", info.user), LOG_S("token", info.id),
             LOG_S("via", c->tr->via));
out:
    api_body_wipe(c->body, "password");
    secret_wipe(token, sizeof token);
    return rc;
}

static vs_result r_whoami(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    api_require_none(c, "session.read");
    json_t *groups = json_array();
    for (size_t i = 0; groups != NULL && i < c->subject.group_count; i++)
        json_array_append_new(groups, json_string(c->groups[i]));
    return api_wrap("session",
                    json_pack("{s:s, s:b, s:o, s:s, s:s?}", "user", c->user, "root",
                              c->subject.root, "groups", groups, "via", c->tr->via, "token_id",
                              c->token_id[0] ? c->token_id : NULL),
                    out);
}

static vs_result r_logout(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    api_require_none(c, "session.logout");
    if (c->token_id[0] == '\0') {
        RAISE(ERR_INVALID_ARG);
        return err_detail("this call carries no token to revoke");
    }
    GUARD(auth_token_revoke(c->ctx->auth, c->token_id));
    log_info("token revoked", LOG_S("user", c->user), LOG_S("token", c->token_id));
    return api_wrap("revoked", json_string(c->token_id), out);
}

static bool query_flag(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 &&
            (strncmp(p + n, "=1", 2) == 0 || strncmp(p + n, "=true", 5) == 0))
            return true;
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return false;
}

static vs_result r_tokens_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    bool all = query_flag(c->query, "all");
    if (all)
        GUARD(api_require(c, "session.list_all", NULL, NULL, &no_facts));
    else
        api_require_none(c, "session.list");
    return auth_token_list(c->ctx->auth, all ? NULL : c->user, out);
}

static vs_result r_token_revoke(struct api_call *c, int *status, json_t **out)
{
    json_t *mine = NULL, *t;
    size_t i;
    bool own = false;
    (void)status;
    GUARD(auth_token_list(c->ctx->auth, c->user, &mine));
    json_array_foreach(json_object_get(mine, "tokens"), i, t)
    {
        own = own || strcmp(json_string_value(json_object_get(t, "id")), c->params[0]) == 0;
    }
    json_decref(mine);
    if (own)
        api_require_none(c, "session.revoke");
    else
        GUARD(api_require(c, "session.revoke_other", NULL, NULL, &no_facts));
    GUARD(auth_token_revoke(c->ctx->auth, c->params[0]));
    log_info("token revoked", LOG_S("by", c->user), LOG_S("token", c->params[0]));
    return api_wrap("revoked", json_string(c->params[0]), out);
}

/* --- users and groups --------------------------------------------------------------- */

/* The user object of name, from the list. */
static RESULT user_answer(struct api_call *c, const char *name, json_t **out)
{
    json_t *all = NULL, *u, *found = NULL;
    size_t i;
    GUARD(auth_user_list(c->ctx->auth, &all));
    json_array_foreach(json_object_get(all, "users"), i, u)
    {
        if (found == NULL && strcmp(json_string_value(json_object_get(u, "name")), name) == 0)
            found = json_incref(u);
    }
    json_decref(all);
    if (found == NULL) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no user '%.63s'", name);
    }
    return api_wrap("user", found, out);
}

static vs_result r_users_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "user.list", NULL, NULL, &no_facts));
    return auth_user_list(c->ctx->auth, out);
}

static vs_result r_user_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "password", NULL};
    const char *name, *password;
    vs_result rc = OK_RESULT;
    GUARD_OUT(api_require(c, "user.manage", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "name", true, &name));
    GUARD_OUT(api_body_str(c->body, "password", true, &password));
    GUARD_OUT(auth_user_create(c->ctx->auth, name, password, strlen(password)));
    log_info("user created", LOG_S("user", name), LOG_S("by", c->user));
    *status = 201;
    GUARD_OUT(user_answer(c, name, out));
out:
    api_body_wipe(c->body, "password");
    return rc;
}

static vs_result r_user_delete(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "user.manage", NULL, NULL, &no_facts));
    GUARD(auth_user_delete(c->ctx->auth, c->params[0]));
    GUARD(authz_forget_principal(c->ctx->authz, c->params[0], false));
    log_info("user deleted", LOG_S("user", c->params[0]), LOG_S("by", c->user));
    return api_wrap("deleted", json_string(c->params[0]), out);
}

static vs_result r_user_password(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"password", NULL};
    const char *password;
    vs_result rc = OK_RESULT;
    (void)status;
    if (strcmp(c->params[0], c->user) == 0 && !c->subject.root)
        api_require_none(c, "user.password");
    else
        GUARD_OUT(api_require(c, "user.manage", NULL, NULL, &no_facts));
    GUARD_OUT(api_body_only(c->body, keys));
    GUARD_OUT(api_body_str(c->body, "password", true, &password));
    GUARD_OUT(auth_user_set_password(c->ctx->auth, c->params[0], password, strlen(password)));
    log_info("password changed", LOG_S("user", c->params[0]), LOG_S("by", c->user));
    GUARD_OUT(user_answer(c, c->params[0], out));
out:
    api_body_wipe(c->body, "password");
    return rc;
}

static vs_result r_group_add(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"group", NULL};
    const char *group;
    (void)status;
    GUARD(api_require(c, "user.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "group", true, &group));
    GUARD(auth_group_add(c->ctx->auth, group, c->params[0]));
    log_info("user added to a group", LOG_S("user", c->params[0]), LOG_S("group", group),
             LOG_S("by", c->user));
    return user_answer(c, c->params[0], out);
}

static vs_result r_group_remove(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "user.manage", NULL, NULL, &no_facts));
    GUARD(auth_group_remove(c->ctx->auth, c->params[1], c->params[0]));
    log_info("user removed from a group", LOG_S("user", c->params[0]),
             LOG_S("group", c->params[1]), LOG_S("by", c->user));
    return user_answer(c, c->params[0], out);
}

/* --- privileges and roles ----------------------------------------------------------- */

static vs_result r_privileges(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    api_require_none(c, "privilege.list");
    json_t *a = json_array();
    for (int p = 0; a != NULL && p < PRIV_COUNT; p++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", priv_name((enum priv)p),
                                           "description", priv_description((enum priv)p)));
    return api_wrap("privileges", a, out);
}

static vs_result r_roles_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "role.list", NULL, NULL, &no_facts));
    return authz_role_list(c->ctx->authz, out);
}

/* The role object of name, from the list. */
static RESULT role_answer(struct api_call *c, const char *name, json_t **out)
{
    json_t *all = NULL, *r, *found = NULL;
    size_t i;
    GUARD(authz_role_list(c->ctx->authz, &all));
    json_array_foreach(json_object_get(all, "roles"), i, r)
    {
        if (found == NULL && strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
            found = json_incref(r);
    }
    json_decref(all);
    ENSURE(found != NULL, ERR_NOT_FOUND);
    return api_wrap("role", found, out);
}

static vs_result r_role_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "privileges", NULL};
    const char *name, *names[PRIV_COUNT];
    enum priv privs[PRIV_COUNT];
    bool set[PRIV_COUNT] = {false};
    size_t n = 0;
    GUARD(api_require(c, "role.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &name));
    GUARD(api_body_strings(c->body, "privileges", true, names, PRIV_COUNT, &n));
    for (size_t i = 0; i < n; i++) {
        GUARD(priv_parse(names[i], &privs[i]));
        set[privs[i]] = true;
    }
    /* No escalation: a role carries only privileges its maker holds. */
    vs_result rc = authz_require_all(c->ctx->authz, &c->subject, "/", set);
    if (!is_ok(rc)) {
        api_note_missing(c);
        return rc;
    }
    GUARD(authz_role_create(c->ctx->authz, name, privs, n));
    log_info("role created", LOG_S("role", name), LOG_S("by", c->user));
    *status = 201;
    return role_answer(c, name, out);
}

static vs_result r_role_delete(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "role.manage", NULL, NULL, &no_facts));
    GUARD(authz_role_delete(c->ctx->authz, c->params[0]));
    log_info("role deleted", LOG_S("role", c->params[0]), LOG_S("by", c->user));
    return api_wrap("deleted", json_string(c->params[0]), out);
}

/* --- permissions ---------------------------------------------------------------------- */

static vs_result r_permissions_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "permission.list", NULL, NULL, &no_facts));
    return authz_permission_list(c->ctx->authz, out);
}

/* The principal of a permission body: exactly one of "user" and "group". */
static RESULT principal(struct api_call *c, const char **name, bool *group)
{
    const char *user, *grp;
    GUARD(api_body_str(c->body, "user", false, &user));
    GUARD(api_body_str(c->body, "group", false, &grp));
    if ((user == NULL) == (grp == NULL)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("give exactly one of 'user' and 'group'");
    }
    *group = grp != NULL;
    *name = user != NULL ? user : grp;
    if (user != NULL && strcmp(user, AUTH_ROOT_USER) != 0)
        GUARD(auth_user_exists(c->ctx->auth, user));
    else if (user == NULL)
        GUARD(vm_check_name("group", grp));
    return OK_RESULT;
}

/* The object of a permission: "/", an existing folder or VM. */
static RESULT permission_object(struct api_call *c, const char *object)
{
    if (strcmp(object, "/") == 0)
        return OK_RESULT;
    if (strncmp(object, "vm/", 3) == 0) {
        json_t *v = NULL;
        GUARD(vm_check_name("VM", object + 3));
        vs_result rc = vm_info(c->ctx->host, object + 3, &v);
        json_decref(v);
        if (!is_ok(rc) && rc.code == ERR_NOT_FOUND) {
            RAISE(ERR_NOT_FOUND);
            return err_detail("no VM named '%s'", object + 3);
        }
        return rc;
    }
    if (strncmp(object, "folder/", 7) == 0) {
        char parent[8];
        /* authz knows its folders: its parent lookup fails for a missing one. */
        return authz_parent(c->ctx->authz, object, parent, sizeof parent);
    }
    RAISE(ERR_INVALID_ARG);
    return err_detail("an object is '/', 'folder/NAME' or 'vm/NAME'");
}

static vs_result r_permission_set(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"user", "group", "role", "object", "propagate", NULL};
    const char *name = NULL, *role, *object;
    bool group = false, propagate = true, privs[PRIV_COUNT];
    (void)status;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "object", false, &object));
    if (object == NULL)
        object = "/";
    GUARD(api_require(c, "permission.manage", NULL, object, &no_facts));
    GUARD(principal(c, &name, &group));
    GUARD(api_body_str(c->body, "role", true, &role));
    if (json_object_get(c->body, "propagate") != NULL)
        GUARD(api_body_bool(c->body, "propagate", &propagate));
    GUARD(permission_object(c, object));
    if (!group && strcmp(name, AUTH_ROOT_USER) == 0) {
        RAISE(ERR_PERM);
        return err_detail("root holds every privilege: it takes no permission");
    }
    GUARD(authz_role_privileges(c->ctx->authz, role, privs));
    /* No escalation: nobody hands out what they do not hold there. */
    vs_result rc = authz_require_all(c->ctx->authz, &c->subject, object, privs);
    if (!is_ok(rc)) {
        api_note_missing(c);
        return rc;
    }
    GUARD(authz_permission_set(c->ctx->authz, name, group, role, object, propagate));
    log_info("permission set", LOG_S(group ? "group" : "user", name), LOG_S("role", role),
             LOG_S("object", object), LOG_S("by", c->user));
    return api_wrap("permission",
                    json_pack("{s:s, s:b, s:s, s:s, s:b}", "principal", name, "group", group,
                              "role", role, "object", object, "propagate", propagate),
                    out);
}

static vs_result r_permission_remove(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"user", "group", "object", NULL};
    const char *name, *object, *user, *grp;
    (void)status;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "object", false, &object));
    if (object == NULL)
        object = "/";
    GUARD(api_require(c, "permission.manage", NULL, object, &no_facts));
    GUARD(api_body_str(c->body, "user", false, &user));
    GUARD(api_body_str(c->body, "group", false, &grp));
    if ((user == NULL) == (grp == NULL)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("give exactly one of 'user' and 'group'");
    }
    name = user != NULL ? user : grp;
    GUARD(authz_permission_remove(c->ctx->authz, name, grp != NULL, object));
    log_info("permission removed", LOG_S(grp != NULL ? "group" : "user", name),
             LOG_S("object", object), LOG_S("by", c->user));
    return api_wrap("removed", json_pack("{s:s, s:b, s:s}", "principal", name, "group",
                                         grp != NULL, "object", object),
                    out);
}

/* --- folders ------------------------------------------------------------------------------ */

static vs_result r_folders_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "folder.list", NULL, NULL, &no_facts));
    return authz_folder_list(c->ctx->authz, out);
}

static vs_result r_folder_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    GUARD(api_require(c, "folder.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &name));
    GUARD(vm_check_name("folder", name));
    GUARD(authz_folder_create(c->ctx->authz, name));
    log_info("folder created", LOG_S("folder", name), LOG_S("by", c->user));
    *status = 201;
    return api_wrap("folder", json_pack("{s:s, s:[]}", "name", name, "vms"), out);
}

static vs_result r_folder_delete(struct api_call *c, int *status, json_t **out)
{
    char object[API_OBJECT_MAX];
    (void)status;
    GUARD(api_require(c, "folder.delete", NULL, NULL, &no_facts));
    GUARD(authz_folder_delete(c->ctx->authz, c->params[0]));
    snprintf(object, sizeof object, "folder/%s", c->params[0]);
    GUARD(authz_forget_object(c->ctx->authz, object));
    log_info("folder deleted", LOG_S("folder", c->params[0]), LOG_S("by", c->user));
    return api_wrap("deleted", json_string(c->params[0]), out);
}

/* --- storage policies ------------------------------------------------------------------ */

static vs_result r_policies_list(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "policy.list", NULL, NULL, &no_facts));
    return policy_list(c->ctx->store, out);
}

static vs_result r_policy_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "provider", NULL};
    const char *name, *provider;
    struct keyprov_info info;
    json_t *p = NULL;
    GUARD(api_require(c, "policy.manage", NULL, NULL, &no_facts));
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &name));
    GUARD(api_body_str(c->body, "provider", true, &provider));
    GUARD(keyprov_get_info(c->ctx->kp, provider, &info));
    GUARD(policy_create(c->ctx->store, name, provider));
    log_info("storage policy created", LOG_S("policy", name), LOG_S("provider", provider),
             LOG_S("by", c->user));
    GUARD(policy_get(c->ctx->store, name, &p));
    *status = 201;
    return api_wrap("policy", p, out);
}

static vs_result r_policy_delete(struct api_call *c, int *status, json_t **out)
{
    (void)status;
    GUARD(api_require(c, "policy.manage", NULL, NULL, &no_facts));
    GUARD(policy_delete(c->ctx->store, c->params[0]));
    log_info("storage policy deleted", LOG_S("policy", c->params[0]), LOG_S("by", c->user));
    return api_wrap("deleted", json_string(c->params[0]), out);
}

const struct api_route api_routes_admin[] = {
    {"POST", "/v1/session", r_login},
    {"GET", "/v1/session", r_whoami},
    {"DELETE", "/v1/session", r_logout},
    {"GET", "/v1/tokens", r_tokens_list},
    {"DELETE", "/v1/tokens/{}", r_token_revoke},
    {"GET", "/v1/users", r_users_list},
    {"POST", "/v1/users", r_user_create},
    {"DELETE", "/v1/users/{}", r_user_delete},
    {"POST", "/v1/users/{}/password", r_user_password},
    {"POST", "/v1/users/{}/groups", r_group_add},
    {"DELETE", "/v1/users/{}/groups/{}", r_group_remove},
    {"GET", "/v1/privileges", r_privileges},
    {"GET", "/v1/roles", r_roles_list},
    {"POST", "/v1/roles", r_role_create},
    {"DELETE", "/v1/roles/{}", r_role_delete},
    {"GET", "/v1/permissions", r_permissions_list},
    {"POST", "/v1/permissions", r_permission_set},
    {"POST", "/v1/permissions/remove", r_permission_remove},
    {"GET", "/v1/folders", r_folders_list},
    {"POST", "/v1/folders", r_folder_create},
    {"DELETE", "/v1/folders/{}", r_folder_delete},
    {"GET", "/v1/policies", r_policies_list},
    {"POST", "/v1/policies", r_policy_create},
    {"DELETE", "/v1/policies/{}", r_policy_delete},
};
const size_t api_routes_admin_count = sizeof api_routes_admin / sizeof api_routes_admin[0];
