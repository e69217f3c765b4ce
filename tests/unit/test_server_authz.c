/*
 * Tests of vmseald's authorization (src/server/authz.c, privileges.c):
 *  - built-in roles hold what docs/privileges.md says; custom roles are
 *    created, listed and deleted, never over a built-in one or one in use;
 *  - permissions: set, replace, remove, list; bad principals, roles and
 *    object paths refused;
 *  - resolution (authz.h): propagation from / through a folder to a VM, a
 *    non-propagating permission on its own object only, the nearest level
 *    wins (also to take away), the user over its groups at one level, the
 *    groups together; root holds everything;
 *  - folders and VM placement; forgetting principals and objects;
 *  - the refusal's text, and authz_require_op on vm.clone in each mode: a
 *    subject holding every privilege but one applicable row's is refused
 *    naming exactly that one, and the privileges of rows that do not apply
 *    are not needed;
 *  - the table itself: every operation the API calls has rows, every
 *    privilege name parses back;
 *  - persistence across a reopen, and a change made through another
 *    connection is seen at once (no stale cache);
 *  - docs/privileges.md holds, byte for byte, the table authz_table_markdown
 *    prints between its markers. Run this test once with VMSEAL_WRITE_DOCS=1
 *    to rewrite that block after changing the table:
 *        VMSEAL_WRITE_DOCS=1 build/dev/tests/unit/test_server_authz
 */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "server/authz.h"
#include "server/store.h"
#include "vm/vmutil.h"

#ifndef VMSEAL_DOCS_DIR
#error "VMSEAL_DOCS_DIR must name the docs directory (tests/unit/CMakeLists.txt)"
#endif

struct fixture {
    char dir[64];
    struct store *st;
    struct authz *z;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/vmseal-test-authz-XXXXXX");
    if (mkdtemp(f->dir) == NULL || !is_ok(store_open(f->dir, &f->st)) ||
        !is_ok(authz_open(f->st, &f->z)))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    authz_close(&f->z);
    store_close(&f->st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int e = system(cmd);
    free(f);
    return e == 0 ? 0 : -1;
}

/* A subject: a user and up to two groups. */
struct who {
    char groups[2][AUTH_NAME_MAX];
    struct authz_subject s;
};

static const struct authz_subject *who(struct who *w, const char *user, const char *g1,
                                       const char *g2)
{
    memset(w, 0, sizeof *w);
    w->s.user = user;
    w->s.groups = (const char(*)[AUTH_NAME_MAX])w->groups;
    if (g1 != NULL)
        snprintf(w->groups[w->s.group_count++], AUTH_NAME_MAX, "%s", g1);
    if (g2 != NULL)
        snprintf(w->groups[w->s.group_count++], AUTH_NAME_MAX, "%s", g2);
    return &w->s;
}

static const struct authz_subject root_subject = {.user = "root", .root = true};

static bool has(struct authz *z, const struct authz_subject *s, const char *object, enum priv p)
{
    bool out = true;
    assert_ok(authz_has(z, s, object, p, &out));
    return out;
}

static bool has_user(struct authz *z, const char *user, const char *object, enum priv p)
{
    struct who w;
    return has(z, who(&w, user, NULL, NULL), object, p);
}

/* The number of privileges s holds on object. */
static size_t held_count(struct authz *z, const struct authz_subject *s, const char *object)
{
    size_t n = 0;
    for (size_t i = 0; i < PRIV_COUNT; i++)
        n += has(z, s, object, (enum priv)i);
    return n;
}

static void assert_detail(const char *want)
{
    if (strcmp(err_last()->detail, want) != 0) {
        print_error("detail: got \"%s\", want \"%s\"\n", err_last()->detail, want);
        fail();
    }
}

static json_t *list(vs_result (*fn)(struct authz *, json_t **), struct authz *z, const char *key)
{
    json_t *out = NULL;
    assert_ok(fn(z, &out));
    json_t *a = json_object_get(out, key);
    assert_true(json_is_array(a));
    json_incref(a);
    json_decref(out);
    return a;
}

/* --- roles ---------------------------------------------------------------- */

static void test_builtin_roles(void **state)
{
    struct fixture *f = *state;
    bool privs[PRIV_COUNT];

    assert_ok(authz_role_privileges(f->z, AUTHZ_ROLE_ADMIN, privs));
    for (size_t i = 0; i < PRIV_COUNT; i++)
        assert_true(privs[i]);

    assert_ok(authz_role_privileges(f->z, AUTHZ_ROLE_READ_ONLY, privs));
    for (size_t i = 0; i < PRIV_COUNT; i++)
        assert_int_equal(privs[i], i == PRIV_SYSTEM_VIEW || i == PRIV_SYSTEM_READ ||
                                       i == PRIV_STORAGE_PROFILE_VIEW);

    assert_ok(authz_role_privileges(f->z, AUTHZ_ROLE_NO_CRYPTO, privs));
    size_t crypto = 0;
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        bool is_crypto = strncmp(priv_name((enum priv)i), "Cryptographer.", 14) == 0;
        crypto += is_crypto;
        assert_int_equal(privs[i], !is_crypto);
    }
    assert_true(crypto >= 14);
    assert_false(privs[PRIV_CRYPTO_DECRYPT]);
    assert_true(privs[PRIV_AUTHORIZATION_MODIFY_PERMISSIONS]);

    /* Listed first, in this order, marked built in. */
    json_t *roles = list(authz_role_list, f->z, "roles");
    static const char *const names[] = {AUTHZ_ROLE_ADMIN, AUTHZ_ROLE_READ_ONLY,
                                        AUTHZ_ROLE_NO_CRYPTO};
    assert_int_equal(json_array_size(roles), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *r = json_array_get(roles, i);
        assert_string_equal(json_string_value(json_object_get(r, "name")), names[i]);
        assert_true(json_is_true(json_object_get(r, "builtin")));
    }
    json_t *ro = json_object_get(json_array_get(roles, 1), "privileges");
    assert_int_equal(json_array_size(ro), 3);
    assert_string_equal(json_string_value(json_array_get(ro, 0)), "System.View");
    assert_string_equal(json_string_value(json_array_get(ro, 1)), "System.Read");
    assert_string_equal(json_string_value(json_array_get(ro, 2)), "StorageProfile.View");
    assert_int_equal(json_array_size(json_object_get(json_array_get(roles, 0), "privileges")),
                     PRIV_COUNT);
    json_decref(roles);

    assert_err(authz_role_privileges(f->z, "Nobody", privs), ERR_NOT_FOUND);
}

static void test_role_custom(void **state)
{
    struct fixture *f = *state;
    static const enum priv ops[] = {PRIV_VM_INTERACT_POWER_ON, PRIV_SYSTEM_READ,
                                    PRIV_VM_INTERACT_POWER_ON};
    bool privs[PRIV_COUNT];

    assert_ok(authz_role_create(f->z, "VM operator", ops, 3));
    assert_ok(authz_role_create(f->z, "Auditor", ops, 0)); /* no privileges: "no access" */
    assert_err(authz_role_create(f->z, "VM operator", ops, 1), ERR_EXISTS);
    assert_ok(authz_role_privileges(f->z, "VM operator", privs));
    for (size_t i = 0; i < PRIV_COUNT; i++)
        assert_int_equal(privs[i], i == PRIV_VM_INTERACT_POWER_ON || i == PRIV_SYSTEM_READ);

    /* Built in ones first, then by name. */
    json_t *roles = list(authz_role_list, f->z, "roles");
    assert_int_equal(json_array_size(roles), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(roles, 3), "name")),
                        "Auditor");
    json_t *op = json_array_get(roles, 4);
    assert_string_equal(json_string_value(json_object_get(op, "name")), "VM operator");
    assert_true(json_is_false(json_object_get(op, "builtin")));
    json_t *names = json_object_get(op, "privileges");
    assert_int_equal(json_array_size(names), 2);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "System.Read");
    assert_string_equal(json_string_value(json_array_get(names, 1)),
                        "VirtualMachine.Interact.PowerOn");
    json_decref(roles);

    /* Built-in names, in any case, are not anyone's to take or delete. */
    assert_err(authz_role_create(f->z, AUTHZ_ROLE_ADMIN, ops, 1), ERR_PERM);
    assert_err(authz_role_create(f->z, "administrator", ops, 1), ERR_PERM);
    assert_err(authz_role_create(f->z, AUTHZ_ROLE_NO_CRYPTO, ops, 1), ERR_PERM);
    assert_err(authz_role_delete(f->z, AUTHZ_ROLE_ADMIN), ERR_PERM);
    assert_err(authz_role_delete(f->z, AUTHZ_ROLE_READ_ONLY), ERR_PERM);

    /* An out-of-range privilege. */
    enum priv bogus = (enum priv)PRIV_COUNT;
    assert_err(authz_role_create(f->z, "Bogus", &bogus, 1), ERR_INVALID_ARG);

    /* In use: busy until the permission goes. */
    assert_ok(authz_permission_set(f->z, "bob", false, "VM operator", "vm/web1", true));
    assert_err(authz_role_delete(f->z, "VM operator"), ERR_BUSY);
    assert_ok(authz_permission_remove(f->z, "bob", false, "vm/web1"));
    assert_ok(authz_role_delete(f->z, "VM operator"));
    assert_err(authz_role_delete(f->z, "VM operator"), ERR_NOT_FOUND);
    assert_err(authz_role_privileges(f->z, "VM operator", privs), ERR_NOT_FOUND);
    assert_ok(authz_role_delete(f->z, "Auditor"));
}

static void test_role_names(void **state)
{
    struct fixture *f = *state;
    static const enum priv one[] = {PRIV_SYSTEM_READ};
    char longest[AUTHZ_ROLE_NAME_MAX], too_long[AUTHZ_ROLE_NAME_MAX + 1];
    memset(longest, 'r', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'r', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';

    const char *const good[] = {"a", "Web team: operators (2)", "x-y_z.!~\"'", longest};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_ok(authz_role_create(f->z, good[i], one, 1));

    const char *const bad[] = {"",     " lead", "trail ", " ",          too_long,
                               "a\tb", "a\nb",  "\x7f",   "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_err(authz_role_create(f->z, bad[i], one, 1), ERR_INVALID_ARG);
}

/* --- permissions ---------------------------------------------------------- */

static void test_permission_set_replace_remove(void **state)
{
    struct fixture *f = *state;
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_READ_ONLY, "/", true));
    assert_ok(authz_permission_set(f->z, "bob", true, AUTHZ_ROLE_ADMIN, "/", false));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_NO_CRYPTO, "folder/web", true));
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "vm/web1", false));
    /* Again: replaces the role and the propagation. */
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "/", false));

    json_t *perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 4);
    size_t seen = 0;
    for (size_t i = 0; i < json_array_size(perms); i++) {
        json_t *p = json_array_get(perms, i);
        const char *principal = json_string_value(json_object_get(p, "principal"));
        const char *object = json_string_value(json_object_get(p, "object"));
        const char *role = json_string_value(json_object_get(p, "role"));
        bool group = json_is_true(json_object_get(p, "group"));
        bool propagate = json_is_true(json_object_get(p, "propagate"));
        assert_non_null(principal);
        assert_non_null(object);
        assert_non_null(role);
        if (strcmp(principal, "bob") == 0 && !group && strcmp(object, "/") == 0) {
            assert_string_equal(role, AUTHZ_ROLE_ADMIN);
            assert_false(propagate);
            seen++;
        } else if (strcmp(principal, "bob") == 0 && group) {
            assert_string_equal(object, "/");
            assert_string_equal(role, AUTHZ_ROLE_ADMIN);
            seen++;
        } else if (strcmp(object, "folder/web") == 0) {
            assert_string_equal(role, AUTHZ_ROLE_NO_CRYPTO);
            assert_true(propagate);
            seen++;
        } else {
            assert_string_equal(principal, "alice");
            assert_string_equal(object, "vm/web1");
            seen++;
        }
    }
    assert_int_equal(seen, 4);
    json_decref(perms);

    /* Remove: the user's, not the group of the same name. */
    assert_ok(authz_permission_remove(f->z, "bob", false, "/"));
    assert_err(authz_permission_remove(f->z, "bob", false, "/"), ERR_NOT_FOUND);
    assert_err(authz_permission_remove(f->z, "carol", false, "vm/web1"), ERR_NOT_FOUND);
    perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 3);
    json_decref(perms);
    assert_ok(authz_permission_remove(f->z, "bob", true, "/"));

    /* Refused: unknown role or folder, bad paths and principals. */
    assert_err(authz_permission_set(f->z, "bob", false, "Nobody", "/", true), ERR_NOT_FOUND);
    assert_err(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "folder/none", true),
               ERR_NOT_FOUND);
    static const char *const bad_objects[] = {
        "",
        "//",
        "/vm/x",
        "vm",
        "vm/",
        "vm/.x",
        "vm/-x",
        "vm/a/b",
        "VM/x",
        "folder",
        "folder/",
        "folder/a b",
        "vm/x\n",
        "host/x",
        "vm/../etc",
        "folder/..",
        " /",
        "vm/x ",
        "vm/0123456789012345678901234567890123456789012345678901234567890123",
    };
    for (size_t i = 0; i < sizeof bad_objects / sizeof bad_objects[0]; i++)
        assert_err(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, bad_objects[i], true),
                   ERR_INVALID_ARG);
    static const char *const bad_principals[] = {"", ".x", "a b", "a/b", "root"};
    for (size_t i = 0; i < sizeof bad_principals / sizeof bad_principals[0]; i++)
        assert_err(
            authz_permission_set(f->z, bad_principals[i], false, AUTHZ_ROLE_ADMIN, "/", true),
            ERR_INVALID_ARG);
    /* A VM is the API's to know: any valid name is accepted. */
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "vm/not-yet", true));
}

/* --- resolution ----------------------------------------------------------- */

static void test_propagation(void **state)
{
    struct fixture *f = *state;
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));

    /* Nothing anywhere: nothing. */
    assert_false(has_user(f->z, "alice", "/", PRIV_SYSTEM_READ));
    assert_false(has_user(f->z, "alice", "vm/web1", PRIV_SYSTEM_READ));

    /* On / propagating: everywhere below. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_true(has_user(f->z, "alice", "/", PRIV_CRYPTO_DECRYPT));
    assert_true(has_user(f->z, "alice", "folder/web", PRIV_CRYPTO_DECRYPT));
    assert_true(has_user(f->z, "alice", "vm/web1", PRIV_CRYPTO_DECRYPT));
    assert_true(has_user(f->z, "alice", "vm/db1", PRIV_CRYPTO_DECRYPT));
    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_CRYPTO_DECRYPT));

    /* On / only: not below. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "/", false));
    assert_true(has_user(f->z, "alice", "/", PRIV_CRYPTO_DECRYPT));
    assert_false(has_user(f->z, "alice", "folder/web", PRIV_CRYPTO_DECRYPT));
    assert_false(has_user(f->z, "alice", "vm/web1", PRIV_SYSTEM_READ));

    /* On the folder, propagating: its VMs, not the others, not the root. */
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "folder/web", true));
    assert_true(has_user(f->z, "bob", "folder/web", PRIV_VM_INVENTORY_DELETE));
    assert_true(has_user(f->z, "bob", "vm/web1", PRIV_VM_INVENTORY_DELETE));
    assert_false(has_user(f->z, "bob", "vm/db1", PRIV_VM_INVENTORY_DELETE));
    assert_false(has_user(f->z, "bob", "/", PRIV_SYSTEM_READ));

    /* A VM moved out of the folder leaves its permissions behind. */
    assert_ok(authz_vm_set_folder(f->z, "web1", NULL));
    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_VM_INVENTORY_DELETE));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));
    assert_true(has_user(f->z, "bob", "vm/web1", PRIV_VM_INVENTORY_DELETE));

    /* On the VM itself, not propagating: applies there. */
    assert_ok(authz_permission_set(f->z, "carol", false, AUTHZ_ROLE_READ_ONLY, "vm/db1", false));
    assert_true(has_user(f->z, "carol", "vm/db1", PRIV_SYSTEM_READ));
    assert_false(has_user(f->z, "carol", "vm/db1", PRIV_VM_INVENTORY_DELETE));

    /* Root: everything, everywhere, with no permission at all. */
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        assert_true(has(f->z, &root_subject, "vm/anything", (enum priv)i));
        assert_true(has(f->z, &root_subject, "/", (enum priv)i));
    }
    bool out;
    assert_err(authz_has(f->z, &root_subject, "vm/../x", PRIV_SYSTEM_READ, &out), ERR_INVALID_ARG);
    assert_err(authz_has(f->z, &root_subject, "/", (enum priv)PRIV_COUNT, &out), ERR_INVALID_ARG);
    /* A user who calls themself root is not the root subject. */
    assert_false(has_user(f->z, "root", "/", PRIV_SYSTEM_READ));
}

static void test_nearest_level_wins(void **state)
{
    struct fixture *f = *state;
    struct who w;
    const struct authz_subject *alice = who(&w, "alice", NULL, NULL);
    assert_ok(authz_folder_create(f->z, "hr"));
    assert_ok(authz_vm_set_folder(f->z, "payroll", "hr"));
    assert_ok(authz_vm_set_folder(f->z, "intranet", "hr"));

    /* Administrator on /, Read-only on one VM: only Read-only there. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_READ_ONLY, "vm/payroll", true));
    assert_int_equal(held_count(f->z, alice, "vm/payroll"), 3);
    assert_false(has(f->z, alice, "vm/payroll", PRIV_CRYPTO_DECRYPT));
    assert_true(has(f->z, alice, "vm/payroll", PRIV_SYSTEM_READ));
    assert_int_equal(held_count(f->z, alice, "vm/intranet"), PRIV_COUNT);
    assert_int_equal(held_count(f->z, alice, "vm/other"), PRIV_COUNT);

    /* A role with nothing, on the folder, propagating: takes everything
     * away below it (vSphere's "No access"). */
    static const enum priv nothing[1] = {PRIV_SYSTEM_READ};
    assert_ok(authz_role_create(f->z, "No access", nothing, 0));
    assert_ok(authz_permission_set(f->z, "alice", false, "No access", "folder/hr", true));
    assert_int_equal(held_count(f->z, alice, "folder/hr"), 0);
    assert_int_equal(held_count(f->z, alice, "vm/intranet"), 0);
    assert_int_equal(held_count(f->z, alice, "vm/payroll"), 3); /* nearer still */
    assert_int_equal(held_count(f->z, alice, "/"), PRIV_COUNT);

    /* Not propagating: the folder only; its VMs look further up. */
    assert_ok(authz_permission_set(f->z, "alice", false, "No access", "folder/hr", false));
    assert_int_equal(held_count(f->z, alice, "folder/hr"), 0);
    assert_int_equal(held_count(f->z, alice, "vm/intranet"), PRIV_COUNT);

    /* A nearer permission may also give more than the one above. */
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_READ_ONLY, "/", true));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "vm/intranet", false));
    assert_true(has_user(f->z, "bob", "vm/intranet", PRIV_CRYPTO_DECRYPT));
    assert_false(has_user(f->z, "bob", "vm/payroll", PRIV_CRYPTO_DECRYPT));
    assert_true(has_user(f->z, "bob", "vm/payroll", PRIV_SYSTEM_READ));
}

static void test_user_over_groups(void **state)
{
    struct fixture *f = *state;
    struct who w;
    static const enum priv on[] = {PRIV_VM_INTERACT_POWER_ON};
    static const enum priv off[] = {PRIV_VM_INTERACT_POWER_OFF};
    assert_ok(authz_role_create(f->z, "On", on, 1));
    assert_ok(authz_role_create(f->z, "Off", off, 1));

    /* Groups alone: their roles together. */
    assert_ok(authz_permission_set(f->z, "ops", true, "On", "vm/web1", true));
    assert_ok(authz_permission_set(f->z, "night", true, "Off", "vm/web1", true));
    const struct authz_subject *s = who(&w, "alice", "ops", "night");
    assert_true(has(f->z, s, "vm/web1", PRIV_VM_INTERACT_POWER_ON));
    assert_true(has(f->z, s, "vm/web1", PRIV_VM_INTERACT_POWER_OFF));
    assert_int_equal(held_count(f->z, s, "vm/web1"), 2);
    s = who(&w, "alice", "ops", NULL);
    assert_int_equal(held_count(f->z, s, "vm/web1"), 1);
    s = who(&w, "alice", "dev", NULL);
    assert_int_equal(held_count(f->z, s, "vm/web1"), 0);
    /* A user permission for a user named like the group is not the group's. */
    assert_ok(authz_permission_set(f->z, "night", false, AUTHZ_ROLE_ADMIN, "vm/web1", true));
    s = who(&w, "alice", "night", NULL);
    assert_int_equal(held_count(f->z, s, "vm/web1"), 1);

    /* The user's own permission at the same level wins over the groups'. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_READ_ONLY, "vm/web1", true));
    s = who(&w, "alice", "ops", "night");
    assert_int_equal(held_count(f->z, s, "vm/web1"), 3);
    assert_false(has(f->z, s, "vm/web1", PRIV_VM_INTERACT_POWER_ON));

    /* ... but a group's permission nearer the object wins over the user's
     * further up. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_ok(authz_permission_set(f->z, "ops", true, "On", "vm/web2", true));
    s = who(&w, "alice", "ops", NULL);
    assert_int_equal(held_count(f->z, s, "vm/web2"), 1);
    assert_int_equal(held_count(f->z, s, "vm/web3"), PRIV_COUNT);

    /* A user permission that does not reach the object (not propagating,
     * above it) does not hide the group's one at that level. */
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "/", false));
    assert_ok(authz_permission_set(f->z, "ops", true, AUTHZ_ROLE_READ_ONLY, "/", true));
    assert_int_equal(held_count(f->z, s, "vm/web3"), 3);
    assert_int_equal(held_count(f->z, s, "/"), PRIV_COUNT);
}

/* --- folders, placement, forgetting --------------------------------------- */

static void test_folders(void **state)
{
    struct fixture *f = *state;
    char folder[AUTH_NAME_MAX], parent[80];

    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_folder_create(f->z, "db"));
    assert_err(authz_folder_create(f->z, "web"), ERR_EXISTS);
    assert_err(authz_folder_create(f->z, "a/b"), ERR_INVALID_ARG);
    assert_err(authz_folder_create(f->z, ""), ERR_INVALID_ARG);
    assert_err(authz_folder_create(f->z, ".."), ERR_INVALID_ARG);

    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));
    assert_ok(authz_vm_set_folder(f->z, "web2", "web"));
    assert_err(authz_vm_set_folder(f->z, "web3", "nowhere"), ERR_NOT_FOUND);
    assert_err(authz_vm_set_folder(f->z, "../x", "web"), ERR_INVALID_ARG);
    assert_ok(authz_vm_folder(f->z, "web1", folder));
    assert_string_equal(folder, "web");
    assert_ok(authz_vm_folder(f->z, "other", folder));
    assert_string_equal(folder, "");

    assert_ok(authz_parent(f->z, "vm/web1", parent, sizeof parent));
    assert_string_equal(parent, "folder/web");
    assert_ok(authz_parent(f->z, "vm/other", parent, sizeof parent));
    assert_string_equal(parent, "/");
    assert_ok(authz_parent(f->z, "folder/web", parent, sizeof parent));
    assert_string_equal(parent, "/");
    assert_err(authz_parent(f->z, "/", parent, sizeof parent), ERR_NOT_FOUND);
    assert_err(authz_parent(f->z, "vm/web1", parent, 4), ERR_TOO_LARGE);
    assert_err(authz_parent(f->z, "nothing", parent, sizeof parent), ERR_INVALID_ARG);

    json_t *folders = list(authz_folder_list, f->z, "folders");
    assert_int_equal(json_array_size(folders), 2);
    json_t *db = json_array_get(folders, 0), *web = json_array_get(folders, 1);
    assert_string_equal(json_string_value(json_object_get(db, "name")), "db");
    assert_int_equal(json_array_size(json_object_get(db, "vms")), 0);
    assert_string_equal(json_string_value(json_object_get(web, "name")), "web");
    assert_int_equal(json_array_size(json_object_get(web, "vms")), 2);
    json_decref(folders);

    /* Not while it holds VMs; its permissions go with it. */
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "folder/web", true));
    assert_err(authz_folder_delete(f->z, "web"), ERR_BUSY);
    assert_ok(authz_vm_set_folder(f->z, "web1", NULL));
    assert_err(authz_folder_delete(f->z, "web"), ERR_BUSY);
    assert_ok(authz_vm_set_folder(f->z, "web2", "db"));
    assert_ok(authz_folder_delete(f->z, "web"));
    assert_err(authz_folder_delete(f->z, "web"), ERR_NOT_FOUND);
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));
    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_SYSTEM_READ));
    json_t *perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 0);
    json_decref(perms);
}

static void test_forget(void **state)
{
    struct fixture *f = *state;
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "vm/web1", true));
    assert_ok(authz_permission_set(f->z, "bob", true, AUTHZ_ROLE_ADMIN, "vm/web1", true));
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "vm/web1", true));
    assert_ok(authz_permission_set(f->z, "alice", false, AUTHZ_ROLE_ADMIN, "folder/web", true));

    /* The user bob: not the group bob. */
    assert_ok(authz_forget_principal(f->z, "bob", false));
    assert_ok(authz_forget_principal(f->z, "nobody", false));
    assert_false(has_user(f->z, "bob", "/", PRIV_SYSTEM_READ));
    json_t *perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 3);
    json_decref(perms);

    /* A deleted VM: its permissions and its place. */
    assert_ok(authz_forget_object(f->z, "vm/web1"));
    perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(perms, 0), "object")),
                        "folder/web");
    json_decref(perms);
    char folder[AUTH_NAME_MAX];
    assert_ok(authz_vm_folder(f->z, "web1", folder));
    assert_string_equal(folder, "");
    assert_ok(authz_folder_delete(f->z, "web")); /* no VM left in it */

    assert_err(authz_forget_object(f->z, "/"), ERR_INVALID_ARG);
    assert_err(authz_forget_object(f->z, "vm/"), ERR_INVALID_ARG);
}

/* --- refusals -------------------------------------------------------------- */

static void test_require_detail(void **state)
{
    struct fixture *f = *state;
    struct who w;
    const struct authz_subject *bob = who(&w, "bob", NULL, NULL);
    bool want[PRIV_COUNT] = {false};

    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_NO_CRYPTO, "/", true));
    assert_ok(authz_require(f->z, bob, "vm/web1", PRIV_VM_INTERACT_POWER_ON));
    assert_err(authz_require(f->z, bob, "vm/web1", PRIV_CRYPTO_DECRYPT), ERR_FORBIDDEN);
    assert_detail("user 'bob' lacks privilege Cryptographer.Decrypt on vm/web1");
    assert_err(authz_require(f->z, bob, "/", PRIV_CRYPTO_MANAGE_KEYS), ERR_FORBIDDEN);
    assert_detail("user 'bob' lacks privilege Cryptographer.ManageKeys on /");

    /* The first missing one in enum order. */
    want[PRIV_GLOBAL_CANCEL_TASK] = true;
    want[PRIV_CRYPTO_RECRYPT] = true;
    want[PRIV_CRYPTO_CLONE] = true;
    want[PRIV_SYSTEM_READ] = true;
    assert_err(authz_require_all(f->z, bob, "vm/web1", want), ERR_FORBIDDEN);
    assert_detail("user 'bob' lacks privilege Cryptographer.Clone on vm/web1");
    want[PRIV_CRYPTO_CLONE] = false;
    assert_err(authz_require_all(f->z, bob, "vm/web1", want), ERR_FORBIDDEN);
    assert_detail("user 'bob' lacks privilege Cryptographer.Recrypt on vm/web1");
    want[PRIV_CRYPTO_RECRYPT] = false;
    assert_ok(authz_require_all(f->z, bob, "vm/web1", want));

    /* Root never fails. */
    for (size_t i = 0; i < PRIV_COUNT; i++)
        want[i] = true;
    assert_ok(authz_require_all(f->z, &root_subject, "vm/web1", want));
    assert_ok(authz_require(f->z, &root_subject, "/", PRIV_CRYPTO_MANAGE_KEYS));
    assert_err(authz_require_all(f->z, bob, "/", want), ERR_FORBIDDEN);
    assert_detail("user 'bob' lacks privilege Cryptographer.Access on /");

    /* Nothing held at all. */
    assert_err(authz_require(f->z, who(&w, "eve", "ops", NULL), "folder/x", PRIV_SYSTEM_READ),
               ERR_FORBIDDEN);
    assert_detail("user 'eve' lacks privilege System.Read on folder/x");
}

/* A role holding every privilege but `missing`, given to carol on /. */
static void give_all_but(struct authz *z, enum priv missing)
{
    enum priv privs[PRIV_COUNT];
    size_t n = 0;
    char name[AUTHZ_ROLE_NAME_MAX];
    for (size_t i = 0; i < PRIV_COUNT; i++)
        if (i != (size_t)missing)
            privs[n++] = (enum priv)i;
    snprintf(name, sizeof name, "All but %s", priv_name(missing));
    vs_result r = authz_role_create(z, name, privs, n);
    if (r.code != ERR_EXISTS)
        assert_ok(r);
    assert_ok(authz_permission_set(z, "carol", false, name, "/", true));
}

/* A role holding exactly privs, given to carol on /. */
static void give_exactly(struct authz *z, const enum priv *privs, size_t n)
{
    static unsigned seq;
    char name[AUTHZ_ROLE_NAME_MAX];
    snprintf(name, sizeof name, "Exactly %u", ++seq);
    assert_ok(authz_role_create(z, name, privs, n));
    assert_ok(authz_permission_set(z, "carol", false, name, "/", true));
}

struct clone_mode {
    const char *what;
    struct op_facts facts;
    const char *parent; /* NULL: the source's own */
    /* Applicable rows, in table order, with the object each is checked on. */
    struct {
        enum priv p;
        const char *object;
    } need[8];
    size_t n;
};

static void test_require_op_clone(void **state)
{
    struct fixture *f = *state;
    struct who w;
    const struct authz_subject *carol = who(&w, "carol", NULL, NULL);
    assert_ok(authz_folder_create(f->z, "src"));
    assert_ok(authz_folder_create(f->z, "dst"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "src"));

    const struct clone_mode modes[] = {
        {"plain copy into the source's folder, host not in encryption mode",
         {.host_safe = false},
         NULL,
         {{PRIV_VM_PROVISIONING_CLONE, "vm/web1"}, {PRIV_VM_INVENTORY_CREATE, "folder/src"}},
         2},
        {"from a template into another folder",
         {.vm_template = true, .host_safe = true},
         "folder/dst",
         {{PRIV_VM_PROVISIONING_DEPLOY_TEMPLATE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "folder/dst"}},
         2},
        {"encrypted source, same keys",
         {.vm_encrypted = true, .host_safe = true},
         "/",
         {{PRIV_VM_PROVISIONING_CLONE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "/"},
          {PRIV_CRYPTO_CLONE, "vm/web1"}},
         3},
        {"encrypt mode, host not in encryption mode",
         {.encrypts = true, .host_safe = false},
         "folder/dst",
         {{PRIV_VM_PROVISIONING_CLONE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "folder/dst"},
          {PRIV_CRYPTO_ENCRYPT, "vm/web1"},
          {PRIV_CRYPTO_REGISTER_HOST, "/"}},
         4},
        {"encrypt mode, host safe",
         {.encrypts = true, .host_safe = true},
         "folder/dst",
         {{PRIV_VM_PROVISIONING_CLONE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "folder/dst"},
          {PRIV_CRYPTO_ENCRYPT, "vm/web1"}},
         3},
        {"decrypt mode, host not in encryption mode",
         {.vm_encrypted = true, .decrypts = true, .host_safe = false},
         "folder/dst",
         {{PRIV_VM_PROVISIONING_CLONE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "folder/dst"},
          {PRIV_CRYPTO_CLONE, "vm/web1"},
          {PRIV_CRYPTO_DECRYPT, "vm/web1"}},
         4},
        {"recrypt mode from an encrypted template",
         {.vm_encrypted = true, .vm_template = true, .recrypts = true, .host_safe = true},
         NULL,
         {{PRIV_VM_PROVISIONING_DEPLOY_TEMPLATE, "vm/web1"},
          {PRIV_VM_INVENTORY_CREATE, "folder/src"},
          {PRIV_CRYPTO_CLONE, "vm/web1"},
          {PRIV_CRYPTO_RECRYPT, "vm/web1"}},
         4},
    };

    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        const struct clone_mode *c = &modes[m];
        print_message("vm.clone: %s\n", c->what);
        /* Exactly the applicable privileges: enough. */
        enum priv exact[8];
        for (size_t i = 0; i < c->n; i++)
            exact[i] = c->need[i].p;
        give_exactly(f->z, exact, c->n);
        assert_ok(authz_require_op(f->z, carol, "vm.clone", "web1", c->parent, &c->facts));
        /* Any one of them missing: refused, naming it and its object. */
        for (size_t i = 0; i < c->n; i++) {
            char want[256];
            give_all_but(f->z, c->need[i].p);
            assert_err(authz_require_op(f->z, carol, "vm.clone", "web1", c->parent, &c->facts),
                       ERR_FORBIDDEN);
            snprintf(want, sizeof want, "user 'carol' lacks privilege %s on %s",
                     priv_name(c->need[i].p), c->need[i].object);
            assert_detail(want);
        }
        /* A privilege no applicable row names: not needed. */
        for (size_t p = 0; p < PRIV_COUNT; p++) {
            bool needed = false;
            for (size_t i = 0; i < c->n; i++)
                needed = needed || c->need[i].p == (enum priv)p;
            if (needed)
                continue;
            give_all_but(f->z, (enum priv)p);
            assert_ok(authz_require_op(f->z, carol, "vm.clone", "web1", c->parent, &c->facts));
        }
        assert_ok(authz_require_op(f->z, &root_subject, "vm.clone", "web1", c->parent, &c->facts));
    }
}

static void test_require_op_misc(void **state)
{
    struct fixture *f = *state;
    struct who w;
    const struct authz_subject *dave = who(&w, "dave", NULL, NULL);
    const struct op_facts none = {.host_safe = true};
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));

    /* Unknown operations and missing VMs are the caller's bugs. */
    assert_err(authz_require_op(f->z, &root_subject, "vm.frobnicate", "web1", NULL, &none),
               ERR_INVALID_ARG);
    assert_err(authz_require_op(f->z, &root_subject, "vm.read", NULL, NULL, &none),
               ERR_INVALID_ARG);
    assert_err(authz_require_op(f->z, &root_subject, "vm.read", "../x", NULL, &none),
               ERR_INVALID_ARG);
    assert_err(authz_require_op(f->z, &root_subject, "vm.create", NULL, "nowhere", &none),
               ERR_INVALID_ARG);
    assert_ok(authz_require_op(f->z, &root_subject, "key.list", NULL, NULL, &none));

    /* vm.template: MarkAsTemplate to turn on, MarkAsVM to turn off. */
    static const enum priv mark[] = {PRIV_VM_PROVISIONING_MARK_AS_TEMPLATE};
    assert_ok(authz_role_create(f->z, "Mark", mark, 1));
    assert_ok(authz_permission_set(f->z, "dave", false, "Mark", "folder/web", true));
    struct op_facts on = {.on = true}, off = {.on = false};
    assert_ok(authz_require_op(f->z, dave, "vm.template", "web1", NULL, &on));
    assert_err(authz_require_op(f->z, dave, "vm.template", "web1", NULL, &off), ERR_FORBIDDEN);
    assert_detail("user 'dave' lacks privilege VirtualMachine.Provisioning.MarkAsVM on vm/web1");
    /* Not in the folder: nothing. */
    assert_err(authz_require_op(f->z, dave, "vm.template", "db1", NULL, &on), ERR_FORBIDDEN);

    /* vm.create with no parent: the new VM's (root). Checked there, not on
     * the folder where dave holds something. */
    static const enum priv create[] = {PRIV_VM_INVENTORY_CREATE, PRIV_VM_CONFIG_ADD_NEW_DISK,
                                       PRIV_CRYPTO_ENCRYPT_NEW};
    assert_ok(authz_role_create(f->z, "Create", create, 3));
    assert_ok(authz_permission_set(f->z, "dave", false, "Create", "folder/web", true));
    struct op_facts enc = {.encrypts = true, .host_safe = true};
    assert_ok(authz_require_op(f->z, dave, "vm.create", "new1", "folder/web", &enc));
    assert_err(authz_require_op(f->z, dave, "vm.create", "new1", NULL, &enc), ERR_FORBIDDEN);
    assert_detail("user 'dave' lacks privilege VirtualMachine.Inventory.Create on /");
    /* Encrypting with the host not safe yet, or importing a host file: on /. */
    enc.host_safe = false;
    assert_err(authz_require_op(f->z, dave, "vm.create", "new1", "folder/web", &enc),
               ERR_FORBIDDEN);
    assert_detail("user 'dave' lacks privilege Cryptographer.RegisterHost on /");
    struct op_facts import = {.host_path = true, .host_safe = true};
    assert_err(authz_require_op(f->z, dave, "vm.create", "new1", "folder/web", &import),
               ERR_FORBIDDEN);
    assert_detail("user 'dave' lacks privilege Datastore.FileManagement on /");

    /* permission.manage: on the permission's object, passed as parent. */
    static const enum priv modify[] = {PRIV_AUTHORIZATION_MODIFY_PERMISSIONS};
    assert_ok(authz_role_create(f->z, "Modify", modify, 1));
    assert_ok(authz_permission_set(f->z, "erin", false, "Modify", "vm/web1", false));
    const struct authz_subject *erin = who(&w, "erin", NULL, NULL);
    assert_ok(authz_require_op(f->z, erin, "permission.manage", NULL, "vm/web1", &none));
    assert_err(authz_require_op(f->z, erin, "permission.manage", NULL, "folder/web", &none),
               ERR_FORBIDDEN);
    assert_detail("user 'erin' lacks privilege Authorization.ModifyPermissions on folder/web");
    assert_err(authz_require_op(f->z, erin, "permission.manage", NULL, "/", &none), ERR_FORBIDDEN);

    /* provider.backup needs both of its rows. */
    static const enum priv servers[] = {PRIV_CRYPTO_MANAGE_KEY_SERVERS};
    assert_ok(authz_role_create(f->z, "Servers", servers, 1));
    assert_ok(authz_permission_set(f->z, "frank", false, "Servers", "/", true));
    const struct authz_subject *frank = who(&w, "frank", NULL, NULL);
    assert_ok(authz_require_op(f->z, frank, "provider.manage", NULL, NULL, &none));
    assert_err(authz_require_op(f->z, frank, "provider.backup", NULL, NULL, &none), ERR_FORBIDDEN);
    assert_detail("user 'frank' lacks privilege Cryptographer.ManageKeys on /");
}

/* --- the table ------------------------------------------------------------- */

/* Every operation the API layer calls. */
static const char *const operations[] = {
    "vm.list",
    "vm.read",
    "vm.create",
    "vm.delete",
    "vm.encrypt",
    "vm.decrypt",
    "vm.clone",
    "vm.rekey",
    "vm.template",
    "vm.disk.add",
    "vm.disk.export",
    "vm.disk.secret",
    "vm.policy",
    "vm.move",
    "vm.snapshot.create",
    "vm.snapshot.delete",
    "vm.snapshot.revert",
    "vm.power_on",
    "vm.power_off",
    "provider.list",
    "provider.manage",
    "provider.backup",
    "key.list",
    "key.destroy",
    "host.read",
    "host.encryption",
    "policy.list",
    "policy.manage",
    "user.list",
    "role.list",
    "permission.list",
    "folder.list",
    "user.manage",
    "role.manage",
    "permission.manage",
    "folder.manage",
    "folder.delete",
    "session.list_all",
    "session.revoke_other",
    "task.read_other",
    "task.cancel_other",
};

static void test_table(void **state)
{
    (void)state;
    size_t n_ops = sizeof operations / sizeof operations[0];
    for (size_t o = 0; o < n_ops; o++) {
        size_t rows = 0;
        for (size_t i = 0; i < op_rule_count; i++)
            rows += strcmp(op_rules[i].operation, operations[o]) == 0;
        if (rows == 0)
            print_error("operation %s has no row\n", operations[o]);
        assert_true(rows > 0);
    }
    for (size_t i = 0; i < op_rule_count; i++) {
        const struct op_rule *r = &op_rules[i];
        bool listed = false;
        for (size_t o = 0; o < n_ops && !listed; o++)
            listed = strcmp(r->operation, operations[o]) == 0;
        if (!listed)
            print_error("row %zu: operation %s is not one the API calls\n", i, r->operation);
        assert_true(listed);
        enum priv p;
        assert_true((unsigned)r->priv < PRIV_COUNT);
        assert_ok(priv_parse(priv_name(r->priv), &p));
        assert_int_equal(p, r->priv);
        /* Rows of one operation are together (the docs read them so). */
        if (i > 0 && strcmp(op_rules[i - 1].operation, r->operation) != 0)
            for (size_t j = 0; j + 1 < i; j++)
                assert_string_not_equal(op_rules[j].operation, r->operation);
    }

    /* Every privilege: a unique name that parses back, a description. */
    for (size_t i = 0; i < PRIV_COUNT; i++) {
        enum priv p;
        assert_ok(priv_parse(priv_name((enum priv)i), &p));
        assert_int_equal(p, i);
        assert_true(strlen(priv_description((enum priv)i)) > 0);
        assert_null(strchr(priv_description((enum priv)i), '|'));
        assert_null(strchr(priv_name((enum priv)i), ' '));
    }
    enum priv p;
    assert_err(priv_parse("Cryptographer.Everything", &p), ERR_INVALID_ARG);
    assert_detail("unknown privilege 'Cryptographer.Everything'");
    assert_err(priv_parse("", &p), ERR_INVALID_ARG);
    assert_err(priv_parse("cryptographer.decrypt", &p), ERR_INVALID_ARG);
    assert_err(priv_parse("Cryptographer.Decrypt ", &p), ERR_INVALID_ARG);
}

/* docs/privileges.md holds the generated block between its markers. */
static void test_docs_block(void **state)
{
    static const char begin[] = "<!-- generated: vmseald privileges table -->";
    static const char end[] = "<!-- end generated -->";
    static const char path[] = VMSEAL_DOCS_DIR "/privileges.md";
    struct buf doc;
    (void)state;

    char *md = authz_table_markdown();
    assert_non_null(md);
    assert_true(md[0] == '\n' && md[strlen(md) - 1] == '\n');
    assert_non_null(strstr(md, "| `vm.clone` | `Cryptographer.Clone` | the VM | the VM is "
                               "encrypted |\n"));
    assert_non_null(strstr(md, "| `System.View` | see users, roles, permissions and folders | "
                               "Administrator, Read-only, No cryptography administrator |\n"));

    assert_ok(buf_alloc(&doc, 0, 1 << 20));
    assert_ok(file_read_all(path, 1 << 20, &doc));
    size_t len = buf_len(&doc);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, buf_data(&doc), len);
    text[len] = '\0';
    buf_free(&doc);

    char *a = strstr(text, begin);
    assert_non_null(a);
    a += strlen(begin);
    char *b = strstr(a, end);
    assert_non_null(b);

    const char *write = getenv("VMSEAL_WRITE_DOCS");
    if (write != NULL && strcmp(write, "1") == 0) {
        size_t head = (size_t)(a - text), tail = len - (size_t)(b - text), mlen = strlen(md);
        char *out = malloc(head + mlen + tail);
        assert_non_null(out);
        memcpy(out, text, head);
        memcpy(out + head, md, mlen);
        memcpy(out + head + mlen, b, tail);
        assert_ok(file_write_atomic(path, out, head + mlen + tail, 0644));
        print_message("rewrote the generated block of %s\n", path);
        free(out);
    } else if ((size_t)(b - a) != strlen(md) || memcmp(a, md, strlen(md)) != 0) {
        print_error("%s: the generated block differs from authz_table_markdown(); run this test "
                    "with VMSEAL_WRITE_DOCS=1 to rewrite it\n",
                    path);
        fail();
    }
    free(text);
    free(md);
}

/* --- persistence and freshness --------------------------------------------- */

static void test_persistence(void **state)
{
    struct fixture *f = *state;
    static const enum priv ops[] = {PRIV_VM_INTERACT_POWER_ON, PRIV_SYSTEM_READ};
    assert_ok(authz_role_create(f->z, "Operator", ops, 2));
    assert_ok(authz_folder_create(f->z, "web"));
    assert_ok(authz_vm_set_folder(f->z, "web1", "web"));
    assert_ok(authz_permission_set(f->z, "bob", false, "Operator", "folder/web", true));
    assert_ok(authz_permission_set(f->z, "ops", true, AUTHZ_ROLE_READ_ONLY, "/", false));

    authz_close(&f->z);
    assert_null(f->z);
    authz_close(&f->z); /* NULL: nothing */
    store_close(&f->st);
    assert_ok(store_open(f->dir, &f->st));
    assert_ok(authz_open(f->st, &f->z));

    bool privs[PRIV_COUNT];
    assert_ok(authz_role_privileges(f->z, "Operator", privs));
    assert_true(privs[PRIV_VM_INTERACT_POWER_ON] && privs[PRIV_SYSTEM_READ]);
    char folder[AUTH_NAME_MAX];
    assert_ok(authz_vm_folder(f->z, "web1", folder));
    assert_string_equal(folder, "web");
    assert_true(has_user(f->z, "bob", "vm/web1", PRIV_VM_INTERACT_POWER_ON));
    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_VM_INTERACT_POWER_OFF));
    json_t *perms = list(authz_permission_list, f->z, "permissions");
    assert_int_equal(json_array_size(perms), 2);
    json_decref(perms);
    json_t *roles = list(authz_role_list, f->z, "roles");
    assert_int_equal(json_array_size(roles), 4);
    json_decref(roles);
    assert_err(authz_folder_create(f->z, "web"), ERR_EXISTS);
}

/* A change committed through another connection (a second store on the
 * same file) is seen by the next check: nothing is answered from a stale
 * copy. */
static void test_other_connection(void **state)
{
    struct fixture *f = *state;
    struct store *st2 = NULL;
    struct authz *z2 = NULL;
    assert_ok(store_open(f->dir, &st2));
    assert_ok(authz_open(st2, &z2));

    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_CRYPTO_DECRYPT));
    assert_ok(authz_permission_set(z2, "bob", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_true(has_user(f->z, "bob", "vm/web1", PRIV_CRYPTO_DECRYPT));
    assert_ok(authz_folder_create(z2, "web"));
    assert_ok(authz_vm_set_folder(z2, "web1", "web"));
    assert_ok(authz_permission_set(z2, "bob", false, AUTHZ_ROLE_READ_ONLY, "folder/web", true));
    assert_false(has_user(f->z, "bob", "vm/web1", PRIV_CRYPTO_DECRYPT));
    assert_ok(authz_forget_principal(z2, "bob", false));
    assert_false(has_user(f->z, "bob", "/", PRIV_SYSTEM_READ));
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "/", true));
    assert_true(has_user(z2, "bob", "/", PRIV_SYSTEM_READ));

    authz_close(&z2);
    store_close(&st2);
}

/* A thousand VMs in ten folders, listed with one vm.list check each: the
 * checks read memory, not the database, and stay fast. */
static void test_many_vms(void **state)
{
    struct fixture *f = *state;
    struct who w;
    const struct authz_subject *s = who(&w, "bob", "ops", NULL);
    const struct op_facts none = {.host_safe = true};
    char name[VM_NAME_MAX];

    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        assert_ok(authz_folder_create(f->z, name));
        if (i % 2 == 0) {
            char object[80];
            snprintf(object, sizeof object, "folder/%s", name);
            assert_ok(authz_permission_set(f->z, "ops", true, AUTHZ_ROLE_READ_ONLY, object, true));
        }
    }
    for (int i = 0; i < 1000; i++) {
        char vm[VM_NAME_MAX], folder[VM_NAME_MAX];
        snprintf(vm, sizeof vm, "vm%04d", i);
        snprintf(folder, sizeof folder, "f%d", i % 10);
        assert_ok(authz_vm_set_folder(f->z, vm, folder));
    }
    assert_ok(authz_permission_set(f->z, "bob", false, AUTHZ_ROLE_ADMIN, "vm/vm0001", true));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t visible = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 1000; i++) {
            char vm[VM_NAME_MAX];
            snprintf(vm, sizeof vm, "vm%04d", i);
            vs_result r = authz_require_op(f->z, s, "vm.list", vm, NULL, &none);
            if (is_ok(r))
                visible++;
            else
                assert_int_equal(r.code, ERR_FORBIDDEN);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("5 x 1000 vm.list checks: %.1f ms\n", ms);
    assert_int_equal(visible, 5 * 501); /* even folders, and vm0001 (in f1) */
    assert_true(ms < 5000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_custom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_set_replace_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_propagation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nearest_level_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_over_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require_op_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_require_op_misc, setup, teardown),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_docs_block),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_vms, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
