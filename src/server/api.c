/* api.c - vmseald's routes (docs/api.md): one table, one handler each.
 * Handlers run on a worker thread per request, never on the event loop:
 * an operation may wait on a key provider or on qemu-img. */
#include "server/api.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/secret.h"
#include "server/tasks.h"
#include "vm/vmutil.h"

#define API_MAX_PARAMS 4
#define API_MAX_SEGMENTS 8

struct api_call {
    struct api_ctx *ctx;
    const char *params[API_MAX_PARAMS];
    size_t nparams;
    json_t *body; /* an object; {} when the request had none */
};

typedef vs_result (*route_fn)(struct api_call *c, int *status, json_t **out);

/* --- request bodies: only known fields, each of the right type ---------- */

static RESULT body_only(json_t *body, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("unknown field '%.60s' in the request", k);
        }
    }
    return OK_RESULT;
}

/* A string field; NULL (OK) when absent or null and !required. */
static RESULT body_str(json_t *body, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return OK_RESULT;
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' is required", key);
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be a string", key);
    }
    *out = json_string_value(v);
    return OK_RESULT;
}

static RESULT body_bool(json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v)) {
        *out = false;
        return OK_RESULT;
    }
    if (!json_is_boolean(v)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be true or false", key);
    }
    *out = json_is_true(v);
    return OK_RESULT;
}

static RESULT body_u64(json_t *body, const char *key, bool required, uint64_t *out)
{
    json_t *v = json_object_get(body, key);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return OK_RESULT;
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' is required", key);
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field '%s' must be a non-negative integer", key);
    }
    *out = (uint64_t)json_integer_value(v);
    return OK_RESULT;
}

/* Wipes the text of a string field that held a secret. */
static void body_wipe(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    if (json_is_string(v))
        secret_wipe((char *)json_string_value(v), json_string_length(v));
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* --- tasks: a copy of the arguments, and the operation to run ----------- */

enum task_op {
    OP_CREATE, OP_ENCRYPT, OP_DECRYPT, OP_CLONE, OP_REKEY, OP_DELETE, OP_ADD_DISK, OP_EXPORT,
    OP_SNAP_CREATE, OP_SNAP_DELETE, OP_SNAP_REVERT, OP_POWER_ON, OP_POWER_OFF
};

struct task_args {
    struct api_ctx *ctx;
    enum task_op op;
    char *name, *other, *provider, *path, *image;
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
    free(a);
}

static vs_result task_run(void *p, struct vm_task_ctl *ctl, json_t **out)
{
    struct task_args *a = p;
    struct vm_host *h = a->ctx->host;
    switch (a->op) {
    case OP_CREATE:
        return vm_create(h, &a->spec, ctl, out);
    case OP_ENCRYPT:
        return vm_encrypt(h, a->name, a->provider, ctl, out);
    case OP_DECRYPT:
        return vm_decrypt(h, a->name, ctl, out);
    case OP_CLONE:
        return vm_clone(h, a->name, a->other, (enum vm_clone_mode)a->mode, a->provider, a->flag,
                        ctl, out);
    case OP_REKEY:
        return vm_rekey(h, a->name, a->flag, a->provider, ctl, out);
    case OP_DELETE:
        return vm_delete(h, a->name, out);
    case OP_ADD_DISK:
        return vm_add_disk(h, a->name, a->number, out);
    case OP_EXPORT:
        return vm_export_disk(h, a->name, (unsigned)a->number, a->path, ctl, out);
    case OP_SNAP_CREATE:
        return vm_snapshot_create(h, a->name, a->other, out);
    case OP_SNAP_DELETE:
        return vm_snapshot_delete(h, a->name, a->other, out);
    case OP_SNAP_REVERT:
        return vm_snapshot_revert(h, a->name, a->other, out);
    case OP_POWER_ON:
        return vm_power_on(h, a->name, out);
    case OP_POWER_OFF:
        return vm_power_off(h, a->name, out);
    }
    BAIL(ERR_INTERNAL);
}

static const char *const op_names[] = {
    [OP_CREATE] = "vm.create",           [OP_ENCRYPT] = "vm.encrypt",
    [OP_DECRYPT] = "vm.decrypt",         [OP_CLONE] = "vm.clone",
    [OP_REKEY] = "vm.rekey",             [OP_DELETE] = "vm.delete",
    [OP_ADD_DISK] = "vm.disk.add",       [OP_EXPORT] = "vm.disk.export",
    [OP_SNAP_CREATE] = "vm.snapshot.create", [OP_SNAP_DELETE] = "vm.snapshot.delete",
    [OP_SNAP_REVERT] = "vm.snapshot.revert", [OP_POWER_ON] = "vm.power_on",
    [OP_POWER_OFF] = "vm.power_off",
};

/* Starts args as a task: 202 {"task": ...}. Takes args. */
static RESULT start(struct api_call *c, struct task_args *a, int *status, json_t **out)
{
    char target[128];
    json_t *t = NULL;
    a->ctx = c->ctx;
    snprintf(target, sizeof target, "vm/%s", a->name != NULL ? a->name : a->spec.name);
    GUARD(tasks_start(op_names[a->op], target, task_run, a, task_args_free, &t));
    *out = json_pack("{s:o}", "task", t);
    ENSURE(*out != NULL, ERR_NOMEM);
    *status = 202;
    return OK_RESULT;
}

static RESULT new_args(struct api_call *c, enum task_op op, struct task_args **out)
{
    /* The VM of the route: a bad name is the request's fault (400), not a
     * task that fails later (docs/api.md). */
    if (c->nparams > 0)
        GUARD(vm_check_name("VM", c->params[0]));
    struct task_args *a = calloc(1, sizeof *a);
    ENSURE(a != NULL, ERR_NOMEM);
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

/* A task on VM params[0] with no body fields. */
static RESULT simple_task(struct api_call *c, enum task_op op, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    struct task_args *a;
    GUARD(body_only(c->body, none));
    GUARD(vm_check_name("VM", c->params[0]));
    GUARD(new_args(c, op, &a));
    return start(c, a, status, out);
}

/* --- providers --------------------------------------------------------------- */

static json_t *provider_json(const struct keyprov_info *p)
{
    json_t *servers = json_array();
    for (size_t i = 0; servers != NULL && i < p->server_count; i++)
        json_array_append_new(servers, json_string(p->servers[i]));
    return json_pack("{s:s, s:s, s:b, s:b, s:o}", "name", p->name, "type",
                     p->type == KEYPROV_NATIVE ? "native" : "standard", "default",
                     p->is_default, "backed_up", p->backed_up, "servers", servers);
}

static RESULT provider_answer(struct api_call *c, const char *name, json_t **out)
{
    struct keyprov_info info;
    GUARD(keyprov_get_info(c->ctx->kp, name, &info));
    *out = json_pack("{s:o}", "provider", provider_json(&info));
    ENSURE(*out != NULL, ERR_NOMEM);
    return OK_RESULT;
}

static vs_result r_providers_list(struct api_call *c, int *status, json_t **out)
{
    static struct keyprov_info infos[64];
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    size_t n = 0;
    (void)status;
    json_t *a = json_array();
    ENSURE(a != NULL, ERR_NOMEM);
    pthread_mutex_lock(&mu);
    vs_result rc = keyprov_list(c->ctx->kp, infos, 64, &n);
    for (size_t i = 0; is_ok(rc) && i < n && i < 64; i++)
        json_array_append_new(a, provider_json(&infos[i]));
    pthread_mutex_unlock(&mu);
    if (!is_ok(rc)) {
        json_decref(a);
        return rc;
    }
    *out = json_pack("{s:o}", "providers", a);
    return OK_RESULT;
}

static vs_result r_providers_add(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "type", "servers", "ca_pem", "cert_pem",
                                       "key_pem", NULL};
    const char *name, *type;
    vs_result rc = OK_RESULT;
    GUARD_OUT(body_only(c->body, keys));
    GUARD_OUT(body_str(c->body, "name", true, &name));
    GUARD_OUT(body_str(c->body, "type", true, &type));
    GUARD_OUT(vm_check_name("provider", name));
    if (strcmp(type, "native") == 0) {
        if (json_object_size(c->body) != 2) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("a native provider takes only a name");
            goto out;
        }
        GUARD_OUT(keyprov_add_native(c->ctx->kp, name));
    } else if (strcmp(type, "standard") == 0) {
        const char *ca, *cert, *key;
        const char *servers[KEYPROV_MAX_SERVERS];
        json_t *sv = json_object_get(c->body, "servers"), *x;
        size_t i;
        GUARD_OUT(body_str(c->body, "ca_pem", true, &ca));
        GUARD_OUT(body_str(c->body, "cert_pem", true, &cert));
        GUARD_OUT(body_str(c->body, "key_pem", true, &key));
        if (!json_is_array(sv) || json_array_size(sv) == 0 ||
            json_array_size(sv) > KEYPROV_MAX_SERVERS) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("field 'servers' must list 1 to %d \"host:port\"", KEYPROV_MAX_SERVERS);
            goto out;
        }
        json_array_foreach(sv, i, x)
        {
            if (!json_is_string(x)) {
                rc = RAISE(ERR_INVALID_ARG);
                err_detail("field 'servers' must hold strings");
                goto out;
            }
            servers[i] = json_string_value(x);
        }
        GUARD_OUT(keyprov_add_standard(c->ctx->kp, name, servers, json_array_size(sv), ca, cert,
                                       key));
    } else {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("field 'type' must be \"native\" or \"standard\"");
        goto out;
    }
    *status = 201;
    GUARD_OUT(provider_answer(c, name, out));
    log_info("key provider added", LOG_S("provider", name), LOG_S("type", type));
out:
    body_wipe(c->body, "key_pem");
    return rc;
}

static vs_result r_provider_backup(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"passphrase", NULL};
    const char *pass;
    struct buf file = {0}, text = {0};
    vs_result rc = OK_RESULT;
    (void)status;
    GUARD_OUT(body_only(c->body, keys));
    GUARD_OUT(body_str(c->body, "passphrase", true, &pass));
    GUARD_OUT(buf_alloc(&file, 4096, 1 << 20));
    GUARD_OUT(buf_alloc(&text, 8192, 2 << 20));
    GUARD_OUT(keyprov_backup(c->ctx->kp, c->params[0], pass, strlen(pass), &file));
    GUARD_OUT(vm_b64_encode(buf_data(&file), buf_len(&file), &text));
    *out = json_pack("{s:s}", "backup", (const char *)buf_data(&text));
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
    log_info("key provider backed up", LOG_S("provider", c->params[0]));
out:
    body_wipe(c->body, "passphrase");
    buf_free(&file);
    buf_free(&text);
    return rc;
}

static vs_result r_providers_restore(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"backup", "passphrase", "name", NULL};
    const char *b64, *pass, *name;
    char used[KEYPROV_NAME_MAX];
    struct buf file = {0};
    vs_result rc = OK_RESULT;
    GUARD_OUT(body_only(c->body, keys));
    GUARD_OUT(body_str(c->body, "backup", true, &b64));
    GUARD_OUT(body_str(c->body, "passphrase", true, &pass));
    GUARD_OUT(body_str(c->body, "name", false, &name));
    if (name != NULL)
        GUARD_OUT(vm_check_name("provider", name));
    GUARD_OUT(buf_alloc(&file, 4096, 1 << 20));
    GUARD_OUT(vm_b64_decode(b64, &file));
    GUARD_OUT(keyprov_restore(c->ctx->kp, buf_data(&file), buf_len(&file), pass, strlen(pass),
                              name, used));
    *status = 201;
    GUARD_OUT(provider_answer(c, used, out));
    log_info("key provider restored from a backup", LOG_S("provider", used));
out:
    body_wipe(c->body, "passphrase");
    buf_free(&file);
    return rc;
}

static vs_result r_provider_default(struct api_call *c, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    (void)status;
    GUARD(body_only(c->body, none));
    GUARD(keyprov_set_default(c->ctx->kp, c->params[0]));
    return provider_answer(c, c->params[0], out);
}

/* --- VMs ----------------------------------------------------------------------- */

static vs_result r_vms_list(struct api_call *c, int *status, json_t **out)
{
    json_t *a = NULL;
    (void)status;
    GUARD(vm_list(c->ctx->host, &a));
    *out = json_pack("{s:o}", "vms", a);
    return OK_RESULT;
}

static vs_result r_vm_info(struct api_call *c, int *status, json_t **out)
{
    json_t *v = NULL;
    (void)status;
    GUARD(vm_info(c->ctx->host, c->params[0], &v));
    *out = json_pack("{s:o}", "vm", v);
    return OK_RESULT;
}

static vs_result r_vm_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "disks", "image", "encrypt", "provider",
                                       "memory", "cpus", NULL};
    const char *name, *image, *provider;
    bool encrypt;
    uint64_t memory, cpus;
    struct task_args *a;
    json_t *disks = json_object_get(c->body, "disks"), *x;
    size_t i;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "name", true, &name));
    GUARD(vm_check_name("VM", name));
    GUARD(body_str(c->body, "image", false, &image));
    GUARD(body_str(c->body, "provider", false, &provider));
    GUARD(body_bool(c->body, "encrypt", &encrypt));
    GUARD(body_u64(c->body, "memory", false, &memory));
    GUARD(body_u64(c->body, "cpus", false, &cpus));
    if (image != NULL && image[0] != '/') {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'image' must be an absolute path");
    }
    if (disks != NULL && !json_is_null(disks) &&
        (!json_is_array(disks) || json_array_size(disks) > VM_MAX_DISKS)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'disks' must list at most %d sizes", VM_MAX_DISKS);
    }
    if (cpus > 64) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a VM has at most 64 CPUs");
    }
    GUARD(new_args(c, OP_CREATE, &a));
    a->name = strdup(name);
    a->image = dup_or_null(image);
    a->provider = dup_or_null(provider);
    if (a->name == NULL || (image != NULL && a->image == NULL) ||
        (provider != NULL && a->provider == NULL)) {
        task_args_free(a);
        BAIL(ERR_NOMEM);
    }
    json_array_foreach(disks, i, x)
    {
        if (!json_is_integer(x) || json_integer_value(x) <= 0) {
            task_args_free(a);
            RAISE(ERR_INVALID_ARG);
            return err_detail("disk sizes must be positive integers (bytes)");
        }
        a->spec.disks[a->spec.disk_count++] = (uint64_t)json_integer_value(x);
    }
    a->spec.name = a->name;
    a->spec.image = a->image;
    a->spec.encrypt = encrypt;
    a->spec.provider = a->provider;
    a->spec.memory = memory;
    a->spec.cpus = (unsigned)cpus;
    return start(c, a, status, out);
}

static vs_result r_vm_delete(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_DELETE, status, out);
}

static vs_result r_vm_encrypt(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"provider", NULL};
    const char *provider;
    struct task_args *a;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "provider", false, &provider));
    GUARD(new_args(c, OP_ENCRYPT, &a));
    a->provider = dup_or_null(provider);
    return start(c, a, status, out);
}

static vs_result r_vm_decrypt(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_DECRYPT, status, out);
}

static vs_result r_vm_clone(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", "mode", "provider", "instant", NULL};
    static const char *const modes[] = {"keep", "encrypt", "decrypt", "recrypt"};
    const char *dst, *mode, *provider;
    bool instant;
    struct task_args *a;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "name", true, &dst));
    GUARD(vm_check_name("VM", dst));
    GUARD(body_str(c->body, "mode", false, &mode));
    GUARD(body_str(c->body, "provider", false, &provider));
    GUARD(body_bool(c->body, "instant", &instant));
    unsigned m = 0;
    if (mode != NULL) {
        for (m = 0; m < 4 && strcmp(mode, modes[m]) != 0; m++) {
        }
        if (m == 4) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("field 'mode' must be keep, encrypt, decrypt or recrypt");
        }
    }
    GUARD(new_args(c, OP_CLONE, &a));
    a->other = strdup(dst);
    a->provider = dup_or_null(provider);
    a->mode = m;
    a->flag = instant;
    return start(c, a, status, out);
}

static vs_result r_vm_rekey(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"deep", "provider", NULL};
    const char *provider;
    bool deep;
    struct task_args *a;
    GUARD(body_only(c->body, keys));
    GUARD(body_bool(c->body, "deep", &deep));
    GUARD(body_str(c->body, "provider", false, &provider));
    GUARD(new_args(c, OP_REKEY, &a));
    a->flag = deep;
    a->provider = dup_or_null(provider);
    return start(c, a, status, out);
}

static vs_result r_vm_template(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"template", NULL};
    bool on;
    json_t *v = NULL;
    (void)status;
    GUARD(body_only(c->body, keys));
    if (!json_is_boolean(json_object_get(c->body, "template"))) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("field 'template' must be true or false");
    }
    GUARD(body_bool(c->body, "template", &on));
    GUARD(vm_set_template(c->ctx->host, c->params[0], on, &v));
    *out = json_pack("{s:o}", "vm", v);
    return OK_RESULT;
}

static vs_result r_vm_add_disk(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"size", NULL};
    struct task_args *a;
    uint64_t size;
    GUARD(body_only(c->body, keys));
    GUARD(body_u64(c->body, "size", true, &size));
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
    struct task_args *a;
    uint64_t index;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "path", true, &path));
    GUARD(disk_index(c->params[1], &index));
    GUARD(new_args(c, OP_EXPORT, &a));
    a->number = index;
    a->path = strdup(path);
    return start(c, a, status, out);
}

static vs_result r_vm_disk_secret(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"path", NULL};
    const char *path;
    uint64_t index;
    (void)status;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "path", true, &path));
    GUARD(disk_index(c->params[1], &index));
    return vm_disk_secret(c->ctx->host, c->params[0], (unsigned)index, path, out);
}

static vs_result r_snap_create(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"name", NULL};
    const char *snap;
    struct task_args *a;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "name", true, &snap));
    GUARD(vm_check_name("snapshot", snap));
    GUARD(new_args(c, OP_SNAP_CREATE, &a));
    a->other = strdup(snap);
    return start(c, a, status, out);
}

static vs_result snap_task(struct api_call *c, enum task_op op, int *status, json_t **out)
{
    static const char *const none[] = {NULL};
    struct task_args *a;
    GUARD(body_only(c->body, none));
    GUARD(vm_check_name("snapshot", c->params[1]));
    GUARD(new_args(c, op, &a));
    a->other = strdup(c->params[1]);
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

static vs_result r_power_on(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_POWER_ON, status, out);
}

static vs_result r_power_off(struct api_call *c, int *status, json_t **out)
{
    return simple_task(c, OP_POWER_OFF, status, out);
}

/* --- keys and tasks -------------------------------------------------------------- */

static vs_result r_keys_list(struct api_call *c, int *status, json_t **out)
{
    json_t *a = NULL;
    (void)status;
    GUARD(vm_keys(c->ctx->host, &a));
    *out = json_pack("{s:o}", "keys", a);
    return OK_RESULT;
}

static vs_result r_keys_destroy(struct api_call *c, int *status, json_t **out)
{
    static const char *const keys[] = {"vm", "provider", "key_id", NULL};
    const char *vm, *provider, *key_id;
    struct keyprov_ref ref = {0};
    (void)status;
    GUARD(body_only(c->body, keys));
    GUARD(body_str(c->body, "vm", false, &vm));
    GUARD(body_str(c->body, "provider", false, &provider));
    GUARD(body_str(c->body, "key_id", false, &key_id));
    if ((vm != NULL) == (provider != NULL || key_id != NULL) ||
        (vm == NULL && (provider == NULL || key_id == NULL))) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("give either 'vm', or both 'provider' and 'key_id'");
    }
    if (vm == NULL) {
        if (strlen(provider) >= sizeof ref.provider || strlen(key_id) >= sizeof ref.key_id) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("provider or key ID too long");
        }
        memcpy(ref.provider, provider, strlen(provider) + 1);
        memcpy(ref.key_id, key_id, strlen(key_id) + 1);
    }
    return vm_key_destroy(c->ctx->host, vm, &ref, out);
}

static vs_result r_tasks_list(struct api_call *c, int *status, json_t **out)
{
    json_t *a = NULL;
    (void)c;
    (void)status;
    GUARD(tasks_list(&a));
    *out = json_pack("{s:o}", "tasks", a);
    return OK_RESULT;
}

static vs_result r_task_get(struct api_call *c, int *status, json_t **out)
{
    json_t *t = NULL;
    (void)status;
    GUARD(tasks_get(c->params[0], &t));
    *out = json_pack("{s:o}", "task", t);
    return OK_RESULT;
}

/* --- the table ------------------------------------------------------------------- */

static const struct route {
    const char *method;
    const char *pattern; /* "{}" matches one path segment */
    route_fn fn;
} routes[] = {
    {"GET", "/v1/providers", r_providers_list},
    {"POST", "/v1/providers", r_providers_add},
    {"POST", "/v1/providers/restore", r_providers_restore},
    {"POST", "/v1/providers/{}/backup", r_provider_backup},
    {"POST", "/v1/providers/{}/default", r_provider_default},
    {"GET", "/v1/vms", r_vms_list},
    {"POST", "/v1/vms", r_vm_create},
    {"GET", "/v1/vms/{}", r_vm_info},
    {"DELETE", "/v1/vms/{}", r_vm_delete},
    {"POST", "/v1/vms/{}/encrypt", r_vm_encrypt},
    {"POST", "/v1/vms/{}/decrypt", r_vm_decrypt},
    {"POST", "/v1/vms/{}/clone", r_vm_clone},
    {"POST", "/v1/vms/{}/rekey", r_vm_rekey},
    {"POST", "/v1/vms/{}/template", r_vm_template},
    {"POST", "/v1/vms/{}/disks", r_vm_add_disk},
    {"POST", "/v1/vms/{}/disks/{}/export", r_vm_export},
    {"POST", "/v1/vms/{}/disks/{}/secret", r_vm_disk_secret},
    {"POST", "/v1/vms/{}/snapshots", r_snap_create},
    {"DELETE", "/v1/vms/{}/snapshots/{}", r_snap_delete},
    {"POST", "/v1/vms/{}/snapshots/{}/revert", r_snap_revert},
    {"POST", "/v1/vms/{}/power-on", r_power_on},
    {"POST", "/v1/vms/{}/power-off", r_power_off},
    {"GET", "/v1/keys", r_keys_list},
    {"POST", "/v1/keys/destroy", r_keys_destroy},
    {"GET", "/v1/tasks", r_tasks_list},
    {"GET", "/v1/tasks/{}", r_task_get},
};

/* Splits "/a/b/c" into segments (in place). */
static size_t split(char *path, char *seg[API_MAX_SEGMENTS + 1])
{
    size_t n = 0;
    char *p = path;
    while (*p == '/' && n <= API_MAX_SEGMENTS) {
        *p++ = '\0';
        seg[n++] = p;
        while (*p != '\0' && *p != '/')
            p++;
    }
    return *p == '\0' ? n : API_MAX_SEGMENTS + 1;
}

void api_handle(struct api_ctx *ctx, const char *method, const char *path, json_t *body,
                int *status, json_t **out)
{
    char mine[512], pat[128];
    char *seg[API_MAX_SEGMENTS + 1], *pseg[API_MAX_SEGMENTS + 1];
    struct api_call c = {.ctx = ctx, .body = body};
    bool path_known = false;
    vs_result rc = OK_RESULT;

    *status = 200;
    *out = NULL;
    err_clear();
    if (strlen(path) >= sizeof mine) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("no such route");
        goto fail;
    }
    if (strchr(path, '%') != NULL) {
        /* Valid names never need percent-encoding. */
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("invalid name in the path: names use only letters, digits, '.', '_' and "
                   "'-'");
        goto fail;
    }
    snprintf(mine, sizeof mine, "%s", path);
    size_t n = split(mine, seg);
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        snprintf(pat, sizeof pat, "%s", routes[r].pattern);
        size_t pn = split(pat, pseg);
        if (pn != n)
            continue;
        bool match = true;
        c.nparams = 0;
        for (size_t i = 0; i < n && match; i++) {
            if (strcmp(pseg[i], "{}") == 0) {
                match = seg[i][0] != '\0' && c.nparams < API_MAX_PARAMS;
                if (match)
                    c.params[c.nparams++] = seg[i];
            } else {
                match = strcmp(pseg[i], seg[i]) == 0;
            }
        }
        if (!match)
            continue;
        path_known = true;
        if (strcmp(routes[r].method, method) != 0)
            continue;
        rc = routes[r].fn(&c, status, out);
        if (!is_ok(rc))
            goto fail;
        return;
    }
    rc = RAISE(ERR_NOT_FOUND);
    err_detail(path_known ? "method %s is not allowed on %s" : "no route %s %s", method, path);
    if (path_known) {
        json_decref(*out);
        *out = json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed", "message",
                         err_last()->detail);
        *status = 405;
        return;
    }
fail:
    (void)rc;
    json_decref(*out);
    json_t *e = api_error_json(status);
    *out = json_pack("{s:o}", "error", e);
}
