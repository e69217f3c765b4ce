/* keys.c - DATA_DIR/keys.json: every KEK this host issued, for which VM,
 * and whether it was destroyed; and crypto-shredding. See vm.h. */
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/log.h"
#include "vm/host.h"
#include "vm/vm.h"

#define KEYS_MAX_BYTES (8u << 20)

static RESULT keys_path(struct vm_host *h, char *out, size_t size)
{
    return vm_path(out, size, "%s/keys.json", h->data_dir);
}

/* Reads keys.json into *out (an array); a missing file is an empty list. */
static RESULT keys_read(struct vm_host *h, json_t **out)
{
    char path[VM_PATH_MAX];
    struct buf b = {0};
    vs_result rc = OK_RESULT;
    GUARD(keys_path(h, path, sizeof path));
    GUARD(buf_alloc(&b, 4096, KEYS_MAX_BYTES));
    rc = file_read_all(path, KEYS_MAX_BYTES, &b);
    if (rc.code == ERR_NOT_FOUND) {
        err_clear();
        buf_free(&b);
        *out = json_array();
        return *out != NULL ? OK_RESULT : RAISE(ERR_NOMEM);
    }
    GUARD_OUT(rc);
    json_t *o = json_loadb((const char *)buf_data(&b), buf_len(&b), JSON_REJECT_DUPLICATES, NULL);
    json_t *a = json_object_get(o, "keys");
    if (!json_is_array(a)) {
        json_decref(o);
        rc = RAISE(ERR_DESCRIPTOR);
        err_detail("%s is malformed", path);
        goto out;
    }
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        if (!json_is_string(json_object_get(x, "provider")) ||
            !json_is_string(json_object_get(x, "key_id")) ||
            !json_is_string(json_object_get(x, "vm")) ||
            !json_is_boolean(json_object_get(x, "destroyed"))) {
            json_decref(o);
            rc = RAISE(ERR_DESCRIPTOR);
            err_detail("%s has a malformed entry", path);
            goto out;
        }
    }
    *out = json_incref(a);
    json_decref(o);
out:
    buf_free(&b);
    return rc;
}

static RESULT keys_write(struct vm_host *h, json_t *a)
{
    char path[VM_PATH_MAX];
    GUARD(keys_path(h, path, sizeof path));
    json_t *o = json_pack("{s:O}", "keys", a);
    ENSURE(o != NULL, ERR_NOMEM);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    ENSURE(text != NULL, ERR_NOMEM);
    vs_result rc = file_write_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

RESULT vm_keys_record(struct vm_host *h, const struct keyprov_ref *ref, const char *vm_name,
                      const char *vm_uuid)
{
    json_t *a = NULL;
    char now[VM_TIME_LEN];
    vm_time_now(now);
    pthread_mutex_lock(&h->keys_mu);
    vs_result rc = keys_read(h, &a);
    if (is_ok(rc)) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "provider", ref->provider,
                              "key_id", ref->key_id, "vm", vm_name, "vm_uuid", vm_uuid,
                              "issued", now, "destroyed", 0);
        if (e == NULL || json_array_append_new(a, e) != 0)
            rc = RAISE(ERR_NOMEM);
    }
    if (is_ok(rc))
        rc = keys_write(h, a);
    pthread_mutex_unlock(&h->keys_mu);
    json_decref(a);
    return rc;
}

/* Names of existing VMs whose KEK is (provider, key_id), as a JSON array. */
static RESULT users_of(struct vm_host *h, const char *provider, const char *key_id,
                       json_t **out)
{
    char (*names)[VM_NAME_MAX] = NULL;
    size_t n = 0;
    json_t *a = json_array();
    ENSURE(a != NULL, ERR_NOMEM);
    vs_result rc = vm_list_names(h, &names, &n);
    for (size_t i = 0; is_ok(rc) && i < n; i++) {
        struct vm_desc *d = calloc(1, sizeof *d);
        if (d == NULL) {
            rc = RAISE(ERR_NOMEM);
            break;
        }
        if (is_ok(vm_desc_load(h->datastore, names[i], d, NULL)) && d->encrypted &&
            strcmp(d->key.provider, provider) == 0 && strcmp(d->key.key_id, key_id) == 0)
            json_array_append_new(a, json_string(names[i]));
        err_clear();
        free(d);
    }
    free(names);
    if (!is_ok(rc)) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return OK_RESULT;
}

RESULT vm_keys(struct vm_host *h, json_t **out)
{
    json_t *a = NULL, *list = json_array();
    ENSURE(list != NULL, ERR_NOMEM);
    pthread_mutex_lock(&h->keys_mu);
    vs_result rc = keys_read(h, &a);
    pthread_mutex_unlock(&h->keys_mu);
    size_t i;
    json_t *x;
    if (is_ok(rc)) {
        json_array_foreach(a, i, x)
        {
            json_t *users = NULL;
            rc = users_of(h, json_string_value(json_object_get(x, "provider")),
                          json_string_value(json_object_get(x, "key_id")), &users);
            if (!is_ok(rc))
                break;
            json_t *e = json_deep_copy(x);
            json_object_set_new(e, "vms", users);
            json_array_append_new(list, e);
        }
    }
    json_decref(a);
    if (!is_ok(rc)) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return OK_RESULT;
}

/* VM names held by a key destroy (vm_lock), released at the end. */
struct held_vms {
    char names[VM_HOST_MAX_VMS][VM_NAME_MAX];
    size_t count;
};

/* Locks the VM a key was issued for, once. A key is recorded here when it
 * is issued, before the VM that will use it is committed, by an operation
 * holding that VM's lock (create, encrypt, rekey, clone): while it runs,
 * "no VM uses the key" is not yet true, and destroying the key would leave
 * the VM it commits encrypted under a destroyed key. */
static RESULT hold_vm(struct vm_host *h, struct held_vms *held, const char *name)
{
    for (size_t i = 0; i < held->count; i++)
        if (strcmp(held->names[i], name) == 0)
            return OK_RESULT;
    ENSURE(held->count < VM_HOST_MAX_VMS, ERR_BUSY);
    ENSURE(strlen(name) < VM_NAME_MAX, ERR_INVALID_ARG);
    GUARD(vm_lock(h, name));
    snprintf(held->names[held->count++], VM_NAME_MAX, "%s", name);
    return OK_RESULT;
}

RESULT vm_key_destroy(struct vm_host *h, const char *vm_name, const struct keyprov_ref *ref,
                      json_t **out)
{
    json_t *a = NULL, *done = json_array();
    struct held_vms *held = calloc(1, sizeof *held);
    if (held == NULL || done == NULL) {
        free(held);
        json_decref(done);
        BAIL(ERR_NOMEM);
    }
    if (vm_name != NULL) {
        vs_result nr = vm_check_name("VM", vm_name);
        if (!is_ok(nr)) {
            free(held);
            json_decref(done);
            return nr;
        }
    }
    pthread_mutex_lock(&h->keys_mu);
    vs_result rc = keys_read(h, &a);
    size_t i, matched = 0;
    json_t *x;
    if (!is_ok(rc))
        goto out;
    /* First every check, then every destroy: a refusal changes nothing. */
    json_array_foreach(a, i, x)
    {
        const char *p = json_string_value(json_object_get(x, "provider"));
        const char *kid = json_string_value(json_object_get(x, "key_id"));
        const char *v = json_string_value(json_object_get(x, "vm"));
        bool match = vm_name != NULL ? strcmp(v, vm_name) == 0
                                     : strcmp(p, ref->provider) == 0 &&
                                           strcmp(kid, ref->key_id) == 0;
        if (!match || json_is_true(json_object_get(x, "destroyed")))
            continue;
        GUARD_OUT(hold_vm(h, held, v));
        json_t *users = NULL;
        GUARD_OUT(users_of(h, p, kid, &users));
        if (json_array_size(users) > 0) {
            rc = RAISE(ERR_VM_STATE);
            err_detail("key %s/%s is used by VM '%s': delete or rekey that VM first", p, kid,
                       json_string_value(json_array_get(users, 0)));
            json_decref(users);
            goto out;
        }
        json_decref(users);
        matched++;
    }
    if (matched == 0) {
        rc = RAISE(ERR_NOT_FOUND);
        if (vm_name != NULL)
            err_detail("no key issued by this host for a VM named '%s' is left to destroy",
                       vm_name);
        else
            err_detail("key %s/%s was not issued by this host, or is destroyed already",
                       ref->provider, ref->key_id);
        goto out;
    }
    json_array_foreach(a, i, x)
    {
        const char *p = json_string_value(json_object_get(x, "provider"));
        const char *kid = json_string_value(json_object_get(x, "key_id"));
        const char *v = json_string_value(json_object_get(x, "vm"));
        bool match = vm_name != NULL ? strcmp(v, vm_name) == 0
                                     : strcmp(p, ref->provider) == 0 &&
                                           strcmp(kid, ref->key_id) == 0;
        if (!match || json_is_true(json_object_get(x, "destroyed")))
            continue;
        struct keyprov_ref r = {0};
        snprintf(r.provider, sizeof r.provider, "%s", p);
        snprintf(r.key_id, sizeof r.key_id, "%s", kid);
        GUARD_OUT(keyprov_destroy_key(h->kp, &r));
        json_object_set_new(x, "destroyed", json_true());
        GUARD_OUT(keys_write(h, a));
        json_array_append_new(done, json_pack("{s:s, s:s, s:s}", "provider", p, "key_id", kid,
                                              "vm", v));
        log_warn("key destroyed (crypto-shredding)", LOG_S("provider", p), LOG_S("key", kid),
                 LOG_S("vm", v));
    }
    *out = json_pack("{s:O}", "destroyed", done);
    if (*out == NULL)
        rc = RAISE(ERR_NOMEM);
out:
    pthread_mutex_unlock(&h->keys_mu);
    for (size_t k = 0; k < held->count; k++)
        vm_unlock(h, held->names[k]);
    free(held);
    json_decref(a);
    json_decref(done);
    return rc;
}
