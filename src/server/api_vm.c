/* api_vm.c - the VM routes (docs/api.md, "VMs", "Folders" move, "Storage
 * policies" apply). Each handler validates its request, checks the
 * privileges of its operation (docs/privileges.md) with the facts of this
 * request, and only then starts the task: a refused call changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/api_internal.h"
#include "server/hostmode.h"
#include "server/policy.h"
#include "vm/vmutil.h"

/* --- tasks: a copy of the arguments, and the operation to run ----------- */

enum task_op {
    OP_CREATE, OP_ENCRYPT, OP_DECRYPT, OP_CLONE, OP_REKEY, OP_DELETE, OP_ADD_DISK, OP_EXPORT,
    OP_SNAP_CREATE, OP_SNAP_DELETE, OP_SNAP_REVERT, OP_POWER_ON, OP_POWER_OFF, OP_DISK_ENCRYPT,
    OP_DISK_DECRYPT
};

static const struct {
    const char *name; /* the task's operation: the privilege table's name */
    bool cancellable; /* the work honours vm_task_ctl.cancel and rolls back */
} ops[] = {
    [OP_CREATE] = {"vm.create", false},
    [OP_ENCRYPT] = {"vm.encrypt", true},
    [OP_DECRYPT] = {"vm.decrypt", true},
    [OP_CLONE] = {"vm.clone", true},
    [OP_REKEY] = {"vm.rekey", true},
    [OP_DELETE] = {"vm.delete", false},
    [OP_ADD_DISK] = {"vm.disk.add", false},
    [OP_EXPORT] = {"vm.disk.export", true},
    [OP_SNAP_CREATE] = {"vm.snapshot.create", false},
    [OP_SNAP_DELETE] = {"vm.snapshot.delete", false},
    [OP_SNAP_REVERT] = {"vm.snapshot.revert", false},
    [OP_POWER_ON] = {"vm.power_on", false},
    [OP_POWER_OFF] = {"vm.power_off", false},
    [OP_DISK_ENCRYPT] = {"vm.policy", true},
    [OP_DISK_DECRYPT] = {"vm.policy", true},
};

struct task_args {
    struct api_ctx *ctx;
    enum task_op op;
    char *name, *other, *provider, *path, *image, *folder, *policy;
    bool flag;
    unsigned mode;
    uint64_t number;
    struct vm_create_spec spec;
};

static void task_args_free(void *p)
{
    struct task_args *a = p;
    if (a == NULL)
        return;
    free(a->name);
    free(a->other);
    free(a->provider);
    free(a->path);
    free(a->image);
    free(a->folder);
    free(a->policy);
    free(a);
}

static enum err_code last_code(void)
{
    return err_last()->code;
}

/* What the inventory remembers besides the VM's files: its folder and its
 * policy. Updated after the operation, from the task's thread. */
static void inventory_after(struct task_args *a, bool ok)
{
    struct api_ctx *ctx = a->ctx;
    switch (a->op) {
    case OP_CREATE:
        if (!ok) {
            if (a->folder != NULL && last_code() != ERR_EXISTS)
                result_ignore(authz_vm_set_folder(ctx->authz, a->name, NULL));
        } else if (a->policy != NULL) {
            result_ignore(policy_vm_set(ctx->store, a->name, -1, a->policy));
        }
        break;
    case OP_CLONE:
        if (ok && a->folder != NULL)
            result_ignore(authz_vm_set_folder(ctx->authz, a->other, a->folder));
        break;
    case OP_DELETE:
        if (ok) {
            char object[API_OBJECT_MAX];
            snprintf(object, sizeof object, "vm/%s", a->name);
            result_ignore(authz_forget_object(ctx->authz, object));
            result_ignore(authz_vm_set_folder(ctx->authz, a->name, NULL));
            result_ignore(policy_vm_forget(ctx->store, a->name));
        }
        break;
    case OP_ENCRYPT:
        if (ok)
            result_ignore(policy_vm_set(ctx->store, a->name, -1, a->policy));
        break;
    case OP_DECRYPT:
        if (ok)
            result_ignore(policy_vm_forget(ctx->store, a->name));
        break;
    case OP_DISK_ENCRYPT:
    case OP_DISK_DECRYPT:
        if (ok)
            result_ignore(policy_vm_set(ctx->store, a->name, (int)a->number,
                                        a->op == OP_DISK_ENCRYPT ? a->policy : NULL));
        break;
    default:
        break;
    }
}

static vs_result task_run(void *p, struct vm_task_ctl *ctl, json_t **out)
{
    struct task_args *a = p;
    struct vm_host *h = a->ctx->host;
    vs_result rc;
    switch (a->op) {
    case OP_CREATE:
        rc = vm_create(h, &a->spec, ctl, out);
        break;
    case OP_ENCRYPT:
        rc = vm_encrypt(h, a->name, a->provider, ctl, out);
        break;
    case OP_DECRYPT:
        rc = vm_decrypt(h, a->name, ctl, out);
        break;
    case OP_CLONE:
        rc = vm_clone(h, a->name, a->other, (enum vm_clone_mode)a->mode, a->provider, a->flag,
                      ctl, out);
        break;
    case OP_REKEY:
        rc = vm_rekey(h, a->name, a->flag, a->provider, ctl, out);
        break;
    case OP_DELETE:
        rc = vm_delete(h, a->name, out);
        break;
    case OP_ADD_DISK:
        rc = vm_add_disk(h, a->name, a->number, out);
        break;
    case OP_EXPORT:
        rc = vm_export_disk(h, a->name, (unsigned)a->number, a->path, ctl, out);
        break;
    case OP_SNAP_CREATE:
        rc = vm_snapshot_create(h, a->name, a->other, out);
        break;
    case OP_SNAP_DELETE:
        rc = vm_snapshot_delete(h, a->name, a->other, out);
        break;
    case OP_SNAP_REVERT:
        rc = vm_snapshot_revert(h, a->name, a->other, out);
        break;
    case OP_POWER_ON:
        rc = vm_power_on(h, a->name, out);
        break;
    case OP_POWER_OFF:
        rc = vm_power_off(h, a->name, out);
        break;
    case OP_DISK_ENCRYPT:
        rc = vm_disk_encrypt(h, a->name, (unsigned)a->number, ctl, out);
        break;
    case OP_DISK_DECRYPT:
        rc = vm_disk_decrypt(h, a->name, (unsigned)a->number, ctl, out);
        break;
    default:
        BAIL(ERR_INTERNAL);
    }
    struct err_state saved = *err_last();
    inventory_after(a, is_ok(rc));
    (void)err_restore(&saved);
    return rc;
}

static RESULT new_args(struct api_call *c, enum task_op op, struct task_args **out)
{
    struct task_args *a = calloc(1, sizeof *a);
    ENSURE(a != NULL, ERR_NOMEM);
    a->ctx = c->ctx;
    a->op = op;
    if (c->nparams > 0) {
        a->name = strdup(c->params[0]);
        if (a->name == NULL) {
            free(a);
            BAIL(ERR_NOMEM);
        }
    }
    *out = a;
    return OK_RESULT;
}

/* Duplicates s into *slot (NULL stays NULL). */
static RESULT dup_into(char **slot, const char *s)
{
    if (s == NULL)
        return OK_RESULT;
    *slot = strdup(s);
    ENSURE(*slot != NULL, ERR_NOMEM);
    return OK_RESULT;
}

static RESULT start(struct api_call *c, struct task_args *a, int *status, json_t **out)
{
    char target[API_OBJECT_MAX];
    snprintf(target, sizeof target, "vm/%s", a->name);
    /* A clone journals on its destination. */
    const char *journal_vm = a->op == OP_CLONE ? a->other : NULL;
    return api_start_task(c, ops[a->op].name, target, journal_vm, ops[a->op].cancellable,
                          task_run, a, task_args_free, status, out);
}

/* --- facts and checks -------------------------------------------------------- */

/* The VM's facts. A VM the caller may not see is "forbidden", not "not
 * found", so that names do not leak. */
static RESULT vm_facts(struct api_call *c, const char *name, struct op_facts *f, json_t **vm_out)
{
    json_t *v = NULL;
    GUARD(vm_check_name("VM", name));
    vs_result rc = vm_info(c->ctx->host, name, &v);
    if (!is_ok(rc)) {
        if (rc.code == ERR_NOT_FOUND) {
            struct err_state saved = *err_last();
            struct op_facts none = {0};
            GUARD(api_require(c, "vm.read", name, NULL, &none));
            return err_restore(&saved);
        }
        return rc;
    }
    f->vm_encrypted = json_is_true(json_object_get(v, "encrypted"));
    f->vm_template = json_is_true(json_object_get(v, "template"));
    if (vm_out != NULL)
        *vm_out = v;
    else
        json_decref(v);
    return OK_RESULT;
}

/* Checks the operation; when it encrypts on a host not yet in encryption
 * mode, and the check passed, puts the host in that mode. */
static RESULT require(struct api_call *c, const char *operation, const char *vm,
                      const char *parent, struct op_facts *f)
{
    if (f->encrypts)
        GUARD(hostmode_get(c->ctx, &f->host_safe, NULL));
    GUARD(api_require(c, operation, vm, parent, f));
    if (f->encrypts && !f->host_safe)
        GUARD(hostmode_enable(c->ctx, c->user));
    return OK_RESULT;
}

/* The object path of a folder name (NULL: the root). */
static RESULT folder_object(struct api_call *c, const char *folder, char *out, size_t size)
{
    if (folder == NULL) {
        snprintf(out, size, "/");
        return OK_RESULT;
    }
    GUARD(vm_check_name("folder", folder));
    json_t *list = NULL;
    GUARD(authz_folder_list(c->ctx->authz, &list));
    json_t *a = json_object_get(list, "folders"), *x;
    size_t i;
    bool found = false;
    json_array_foreach(a, i, x)
    {
        found = found || strcmp(json_string_value(json_object_get(x, "name")), folder) == 0;
    }
    json_decref(list);
    if (!found) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no folder '%.63s'", folder);
    }
    snprintf(out, size, "folder/%s", folder);
    return OK_RESULT;
}

/* Adds "folder" and "policy" (VM and disks) to a vm object. */
static void decorate(struct api_ctx *ctx, json_t *vm)
{
    const char *name = json_string_value(json_object_get(vm, "name"));
    char folder[AUTH_NAME_MAX] = "", policy[POLICY_NAME_MAX] = "";
    if (name == NULL)
        return;
    if (is_ok(authz_vm_folder(ctx->authz, name, folder)) && folder[0] != '\0')
        json_object_set_new(vm, "folder", json_string(folder));
    else
        json_object_set_new(vm, "folder", json_null());
    bool encrypted = json_is_true(json_object_get(vm, "encrypted"));
    if (encrypted && !is_ok(policy_vm_get(ctx->store, name, -1, policy)))
        policy[0] = '\0';
    json_object_set_new(vm, "policy", !encrypted      ? json_null()
                                      : policy[0] != 0 ? json_string(policy)
                                                       : json_string(POLICY_BUILTIN));
    json_t *disks = json_object_get(vm, "disks"), *d;
    size_t i;
    json_array_foreach(disks, i, d)
    {
        char dp[POLICY_NAME_MAX] = "";
        bool de = json_is_true(json_object_get(d, "encrypted"));
        json_int_t index = json_integer_value(json_object_get(d, "index"));
        if (de && !is_ok(policy_vm_get(ctx->store, name, (int)index, dp)))
            dp[0] = '\0';
        json_object_set_new(d, "policy", !de         ? json_null()
                                         : dp[0] != 0 ? json_string(dp)
                                         : policy[0] != 0 ? json_string(policy)
                                                          : json_string(POLICY_BUILTIN));
    }
}

/* A vm answer from a task result or an info call. */
static RESULT vm_answer(struct api_call *c, json_t *v, json_t **out)
{
    decorate(c->ctx, v);
    return api_wrap("vm", v, out);
}

/* --- routes ------------------------------------------------------------------- */

static vs_result r_vms_list(struct api_call *c, int *status, json_t **out)
{
    json_t *all = NULL, *mine = NULL, *v;
    size_t i;
    (void)status;
    api_require_none(c, "vm.list");
    GUARD(vm_list(c->ctx->host, &all));
    mine = json_array();
    if (mine == NULL) {
        json_decref(all);
        BAIL(ERR_NOMEM);
    }
    json_array_foreach(all, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        char object[API_OBJECT_MAX];
        bool ok = c->subject.root;
        if (!ok && name != NULL) {
            snprintf(object, sizeof object, "vm/%s", name);
            if (!is_ok(authz_has(c->ctx->authz, &c->subject, object, PRIV_SYSTEM_READ, &ok)))
                ok = false;
        }
        if (ok) {
            decorate(c->ctx, v);
            json_array_append(mine, v);
        }
    }
    json_decref(all);
    return api_wrap("vms", mine, out);
}

static vs_result r_vm_info(struct api_call *c, int *status, json_t **out)
{
    struct op_facts f = {0};
    json_t *v = NULL;
    (void)status;
    GUARD(vm_facts(c, c->params[0], &f, &v));
    vs_result rc = api_require(c, "vm.read", c->params[0], NULL, &f);
    if (!is_ok(rc)) {
        json_decref(v);
        return rc;
    }
    return vm_answer(c, v, out);
}

static vs_result r_vm_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "disks", "image", "encrypt", "provider", "policy",
                                       "folder", "memory", "cpus", NULL};
    const char *name, *image, *provider, *policy, *folder;
    char parent[API_OBJECT_MAX], policy_provider_name[KEYPROV_NAME_MAX] = "";
    bool encrypt;
    uint64_t memory, cpus;
    struct task_args *a = NULL;
    json_t *disks = json_object_get(c->body, "disks"), *x;
    size_t i;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &name));
    GUARD(vm_check_name("VM", name));
    GUARD(api_body_str(c->body, "image", false, &image));
    GUARD(api_body_str(c->body, "provider", false, &provider));
    GUARD(api_body_str(c->body, "policy", false, &policy));
    GUARD(api_body_str(c->body, "folder", false, &folder));
    GUARD(api_body_bool(c->body, "encrypt", &encrypt));
    GUARD(api_body_u64(c->body, "memory", false, &memory));
    GUARD(api_body_u64(c->body, "cpus", false, &cpus));
    if (image != NULL && image[0] != '/') {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'image' must be an absolute path");
    }
    if (disks != NULL && !json_is_null(disks) &&
        (!json_is_array(disks) || json_array_size(disks) > VM_MAX_DISKS)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'disks' must list at most %d sizes", VM_MAX_DISKS);
    }
    json_array_foreach(disks, i, x)
    {
        if (!json_is_integer(x) || json_integer_value(x) <= 0) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("disk sizes must be positive integers (bytes)");
        }
    }
    if (cpus > 64) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a VM has at most 64 CPUs");
    }
    if (policy != NULL) {
        if (provider != NULL || (json_object_get(c->body, "encrypt") != NULL && !encrypt)) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("give either a policy, or 'encrypt' and 'provider'");
        }
        GUARD(policy_provider(c->ctx->store, policy, policy_provider_name));
        encrypt = true;
        if (policy_provider_name[0] != '\0')
            provider = policy_provider_name;
    }
    if (provider != NULL && !encrypt) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a provider is only used with \"encrypt\": true");
    }
    GUARD(folder_object(c, folder, parent, sizeof parent));
    json_t *existing = NULL;
    if (is_ok(vm_info(c->ctx->host, name, &existing))) {
        json_decref(existing);
        RAISE(ERR_EXISTS);
        return err_detail("VM '%s' exists", name);
    }
    err_clear();
    struct op_facts f = {.encrypts = encrypt, .host_path = image != NULL};
    GUARD(require(c, "vm.create", NULL, parent, &f));
    snprintf(c->object, sizeof c->object, "vm/%s", name);

    GUARD(new_args(c, OP_CREATE, &a));
    vs_result rc = OK_RESULT;
    GUARD_OUT(dup_into(&a->name, name));
    GUARD_OUT(dup_into(&a->image, image));
    GUARD_OUT(dup_into(&a->provider, provider));
    GUARD_OUT(dup_into(&a->policy, policy));
    json_array_foreach(disks, i, x)
    {
        a->spec.disks[a->spec.disk_count++] = (uint64_t)json_integer_value(x);
    }
    a->spec.name = a->name;
    a->spec.image = a->image;
    a->spec.encrypt = encrypt;
    a->spec.provider = a->provider;
    a->spec.memory = memory;
    a->spec.cpus = (unsigned)cpus;
    if (folder != NULL) {
        GUARD_OUT(dup_into(&a->folder, folder));
        GUARD_OUT(authz_vm_set_folder(c->ctx->authz, name, folder));
    }
    return start(c, a, status, out);
out:
    task_args_free(a);
    return rc;
}

/* A task on the route's VM with no body fields. */
static RESULT simple_task(struct api_call *c, enum task_op op, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, none));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, ops[op].name, c->params[0], NULL, &f));
    GUARD(new_args(c, op, &a));
    return start(c, a, status, out);
}

static vs_result r_vm_delete(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_DELETE, status, out);
}

static vs_result r_power_on(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_POWER_ON, status, out);
}

static vs_result r_power_off(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_POWER_OFF, status, out);
}

static vs_result r_vm_decrypt(struct api_call *c, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, none));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    f.decrypts = true;
    GUARD(require(c, "vm.decrypt", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_DECRYPT, &a));
    return start(c, a, status, out);
}

static vs_result r_vm_encrypt(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"provider", NULL};
    const char *provider;
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "provider", false, &provider));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    f.encrypts = true;
    GUARD(require(c, "vm.encrypt", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_ENCRYPT, &a));
    vs_result rc = dup_into(&a->provider, provider);
    if (!is_ok(rc)) {
        task_args_free(a);
        return rc;
    }
    return start(c, a, status, out);
}

static vs_result r_vm_clone(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "mode", "provider", "instant", NULL};
    static const char *const modes[] = {"keep", "encrypt", "decrypt", "recrypt"};
    const char *dst, *mode, *provider;
    char parent[API_OBJECT_MAX], folder[AUTH_NAME_MAX] = "";
    bool instant;
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &dst));
    GUARD(vm_check_name("VM", dst));
    GUARD(api_body_str(c->body, "mode", false, &mode));
    GUARD(api_body_str(c->body, "provider", false, &provider));
    GUARD(api_body_bool(c->body, "instant", &instant));
    unsigned m = 0;
    if (mode != NULL) {
        for (m = 0; m < 4 && strcmp(mode, modes[m]) != 0; m++) {
        }
        if (m == 4) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("field 'mode' must be keep, encrypt, decrypt or recrypt");
        }
    }
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    f.encrypts = m == VM_CLONE_ENCRYPT;
    f.decrypts = m == VM_CLONE_DECRYPT;
    f.recrypts = m == VM_CLONE_RECRYPT;
    /* The clone goes where its source is. */
    GUARD(authz_vm_folder(c->ctx->authz, c->params[0], folder));
    GUARD(folder_object(c, folder[0] != '\0' ? folder : NULL, parent, sizeof parent));
    GUARD(require(c, "vm.clone", c->params[0], parent, &f));
    GUARD(new_args(c, OP_CLONE, &a));
    vs_result rc = OK_RESULT;
    GUARD_OUT(dup_into(&a->other, dst));
    GUARD_OUT(dup_into(&a->provider, provider));
    if (folder[0] != '\0')
        GUARD_OUT(dup_into(&a->folder, folder));
    a->mode = m;
    a->flag = instant;
    return start(c, a, status, out);
out:
    task_args_free(a);
    return rc;
}

static vs_result r_vm_rekey(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"deep", "provider", NULL};
    const char *provider;
    bool deep;
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_bool(c->body, "deep", &deep));
    GUARD(api_body_str(c->body, "provider", false, &provider));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    f.recrypts = true;
    GUARD(require(c, "vm.rekey", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_REKEY, &a));
    a->flag = deep;
    vs_result rc = dup_into(&a->provider, provider);
    if (!is_ok(rc)) {
        task_args_free(a);
        return rc;
    }
    return start(c, a, status, out);
}

static vs_result r_vm_template(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"template", NULL};
    struct op_facts f = {0};
    json_t *v = NULL;
    (void)status;
    GUARD(api_body_only(c->body, keys));
    if (!json_is_boolean(json_object_get(c->body, "template"))) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'template' must be true or false");
    }
    GUARD(api_body_bool(c->body, "template", &f.on));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, "vm.template", c->params[0], NULL, &f));
    GUARD(vm_set_template(c->ctx->host, c->params[0], f.on, &v));
    return vm_answer(c, v, out);
}

static vs_result r_vm_add_disk(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"size", NULL};
    struct op_facts f = {0};
    struct task_args *a;
    uint64_t size;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_u64(c->body, "size", true, &size));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, "vm.disk.add", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_ADD_DISK, &a));
    a->number = size;
    return start(c, a, status, out);
}

static RESULT disk_index(const char *text, uint64_t *out)
{
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || v >= VM_MAX_DISKS) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no disk '%.20s'", text);
    }
    *out = v;
    return OK_RESULT;
}

static vs_result r_vm_export(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"path", NULL};
    const char *path;
    struct op_facts f = {.host_path = true};
    struct task_args *a;
    uint64_t index;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "path", true, &path));
    GUARD(disk_index(c->params[1], &index));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, "vm.disk.export", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_EXPORT, &a));
    a->number = index;
    vs_result rc = dup_into(&a->path, path);
    if (!is_ok(rc)) {
        task_args_free(a);
        return rc;
    }
    return start(c, a, status, out);
}

static vs_result r_vm_disk_secret(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"path", NULL};
    const char *path;
    struct op_facts f = {.host_path = true};
    uint64_t index;
    (void)status;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "path", true, &path));
    GUARD(disk_index(c->params[1], &index));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, "vm.disk.secret", c->params[0], NULL, &f));
    return vm_disk_secret(c->ctx->host, c->params[0], (unsigned)index, path, out);
}

static vs_result r_snap_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", NULL};
    const char *snap;
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "name", true, &snap));
    GUARD(vm_check_name("snapshot", snap));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, "vm.snapshot.create", c->params[0], NULL, &f));
    GUARD(new_args(c, OP_SNAP_CREATE, &a));
    vs_result rc = dup_into(&a->other, snap);
    if (!is_ok(rc)) {
        task_args_free(a);
        return rc;
    }
    return start(c, a, status, out);
}

static vs_result snap_task(struct api_call *c, enum task_op op, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    struct op_facts f = {0};
    struct task_args *a;
    GUARD(api_body_only(c->body, none));
    GUARD(vm_check_name("snapshot", c->params[1]));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(require(c, ops[op].name, c->params[0], NULL, &f));
    GUARD(new_args(c, op, &a));
    vs_result rc = dup_into(&a->other, c->params[1]);
    if (!is_ok(rc)) {
        task_args_free(a);
        return rc;
    }
    return start(c, a, status, out);
}

static vs_result r_snap_delete(struct api_call *c, int *status, json_t **out)
{
    return snap_task(c, OP_SNAP_DELETE, status, out);
}

static vs_result r_snap_revert(struct api_call *c, int *status, json_t **out)
{
    return snap_task(c, OP_SNAP_REVERT, status, out);
}

static vs_result r_vm_move(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"folder", NULL};
    const char *folder;
    char parent[API_OBJECT_MAX];
    struct op_facts f = {0};
    json_t *v = NULL;
    (void)status;
    GUARD(api_body_only(c->body, keys));
    GUARD(api_body_str(c->body, "folder", false, &folder));
    GUARD(vm_facts(c, c->params[0], &f, NULL));
    GUARD(folder_object(c, folder, parent, sizeof parent));
    GUARD(require(c, "vm.move", c->params[0], parent, &f));
    GUARD(authz_vm_set_folder(c->ctx->authz, c->params[0], folder));
    GUARD(vm_info(c->ctx->host, c->params[0], &v));
    log_info("vm moved", LOG_S("vm", c->params[0]), LOG_S("folder", folder ? folder : "/"));
    return vm_answer(c, v, out);
}

/* POST /v1/vms/NAME/policy {"policy", "disk"}: encryption by policy. */
static vs_result r_vm_policy(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"policy", "disk", NULL};
    const char *policy;
    char provider[KEYPROV_NAME_MAX] = "";
    struct op_facts f = {0};
    json_t *v = NULL, *disk_json = json_object_get(c->body, "disk");
    struct task_args *a = NULL;
    enum task_op op;
    uint64_t disk = 0;
    bool one_disk = disk_json != NULL && !json_is_null(disk_json);
    vs_result rc = OK_RESULT;

    GUARD(api_body_only(c->body, keys));
    if (json_object_get(c->body, "policy") == NULL) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'policy' is required (a policy name, or null for none)");
    }
    GUARD(api_body_str(c->body, "policy", false, &policy));
    if (one_disk)
        GUARD(api_body_u64(c->body, "disk", true, &disk));
    if (policy != NULL)
        GUARD(policy_provider(c->ctx->store, policy, provider));
    GUARD(vm_facts(c, c->params[0], &f, &v));

    bool now; /* the VM or disk is encrypted now */
    if (one_disk) {
        json_t *d = json_array_get(json_object_get(v, "disks"), (size_t)disk);
        if (d == NULL) {
            json_decref(v);
            RAISE(ERR_NOT_FOUND);
            return err_detail("VM '%s' has no disk %llu", c->params[0],
                              (unsigned long long)disk);
        }
        now = json_is_true(json_object_get(d, "encrypted"));
    } else {
        now = f.vm_encrypted;
    }
    f.encrypts = policy != NULL && !now;
    f.decrypts = policy == NULL && now;
    GUARD_OUT(require(c, "vm.policy", c->params[0], NULL, &f));
    if (!f.encrypts && !f.decrypts) {
        /* Same encryption: only the name it shows changes. */
        GUARD_OUT(policy_vm_set(c->ctx->store, c->params[0], one_disk ? (int)disk : -1, policy));
        return vm_answer(c, v, out);
    }
    json_decref(v);
    v = NULL;
    op = one_disk ? (f.encrypts ? OP_DISK_ENCRYPT : OP_DISK_DECRYPT)
                  : (f.encrypts ? OP_ENCRYPT : OP_DECRYPT);
    GUARD(new_args(c, op, &a));
    a->number = disk;
    GUARD_OUT(dup_into(&a->policy, policy));
    if (provider[0] != '\0')
        GUARD_OUT(dup_into(&a->provider, provider));
    return start(c, a, status, out);
out:
    json_decref(v);
    task_args_free(a);
    return rc;
}

const struct api_route api_routes_vm[] = {
    {"GET", "/v1/vms", r_vms_list},
    {"POST", "/v1/vms", r_vm_create},
    {"GET", "/v1/vms/{}", r_vm_info},
    {"DELETE", "/v1/vms/{}", r_vm_delete},
    {"POST", "/v1/vms/{}/encrypt", r_vm_encrypt},
    {"POST", "/v1/vms/{}/decrypt", r_vm_decrypt},
    {"POST", "/v1/vms/{}/clone", r_vm_clone},
    {"POST", "/v1/vms/{}/rekey", r_vm_rekey},
    {"POST", "/v1/vms/{}/template", r_vm_template},
    {"POST", "/v1/vms/{}/move", r_vm_move},
    {"POST", "/v1/vms/{}/policy", r_vm_policy},
    {"POST", "/v1/vms/{}/disks", r_vm_add_disk},
    {"POST", "/v1/vms/{}/disks/{}/export", r_vm_export},
    {"POST", "/v1/vms/{}/disks/{}/secret", r_vm_disk_secret},
    {"POST", "/v1/vms/{}/snapshots", r_snap_create},
    {"DELETE", "/v1/vms/{}/snapshots/{}", r_snap_delete},
    {"POST", "/v1/vms/{}/snapshots/{}/revert", r_snap_revert},
    {"POST", "/v1/vms/{}/power-on", r_power_on},
    {"POST", "/v1/vms/{}/power-off", r_power_off},
};
const size_t api_routes_vm_count = sizeof api_routes_vm / sizeof api_routes_vm[0];
