/* vm.c - the host, VM locks, keys of a VM, sealed files, garbage
 * collection, and the simple operations. See vm.h. */
#include "vm/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "disk/engine.h"
#include "disk/image.h"
#include "disk/luks1.h"
#include "vm/host.h"

#define VM_CONFIG_MAX 65536
#define VM_NVRAM_MAX (16u << 20)

/* --- host ----------------------------------------------------------------- */

static RESULT copy_setting(char *out, const char *value, const char *fallback)
{
    const char *v = value != NULL ? value : fallback;
    ENSURE(strlen(v) < VM_PATH_MAX, ERR_TOO_LARGE);
    memcpy(out, v, strlen(v) + 1);
    return OK_RESULT;
}

/* The runtime directory holds decrypted UEFI variable stores: it must be
 * ours alone. Its default name under the world-writable /dev/shm is
 * predictable, so one made beforehand by another user (who could then read,
 * swap or redirect what vmseald writes and removes in it) is refused, as is
 * a symbolic link or one others may read. */
static RESULT check_private_dir(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        RAISE(ERR_IO);
        err_detail("stat of %s", dir);
        return err_errno(errno);
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        RAISE(ERR_PERM);
        return err_detail("runtime directory %s must be a directory (not a link) of user %u "
                          "with mode 0700: it holds decrypted UEFI variable stores",
                          dir, (unsigned)geteuid());
    }
    return OK_RESULT;
}

RESULT vm_host_open(const struct vm_host_config *cfg, struct keyprov *kp, struct vm_host **out)
{
    vs_result rc = OK_RESULT;
    struct vm_host *h = calloc(1, sizeof *h);
    ENSURE(h != NULL, ERR_NOMEM);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->keys_mu, NULL);
    h->kp = kp;
    h->engine_threads = cfg->engine_threads;
    ENSURE_OUT(cfg->data_dir != NULL, ERR_NULL_ARG);
    GUARD_OUT(copy_setting(h->data_dir, cfg->data_dir, ""));
    GUARD_OUT(vm_path(h->datastore, sizeof h->datastore, "%s/vms", h->data_dir));
    GUARD_OUT(copy_setting(h->qemu, cfg->qemu, "qemu-system-x86_64"));
    GUARD_OUT(copy_setting(h->ovmf_code, cfg->ovmf_code, "/usr/share/OVMF/OVMF_CODE_4M.fd"));
    GUARD_OUT(copy_setting(h->ovmf_vars, cfg->ovmf_vars, "/usr/share/OVMF/OVMF_VARS_4M.fd"));
    const char *accel = cfg->accel != NULL ? cfg->accel : "auto";
    if (strcmp(accel, "auto") != 0 && strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the accelerator must be auto, kvm or tcg");
        goto out;
    }
    snprintf(h->accel, sizeof h->accel, "%s", accel);
    if (cfg->runtime_dir != NULL) {
        GUARD_OUT(copy_setting(h->runtime_dir, cfg->runtime_dir, ""));
    } else {
        uint8_t digest[32];
        char hex[17];
        GUARD_OUT(crypto_sha256(h->data_dir, strlen(h->data_dir), digest));
        GUARD_OUT(hex_encode(digest, 8, hex, sizeof hex));
        GUARD_OUT(vm_path(h->runtime_dir, sizeof h->runtime_dir, "/dev/shm/vmseald-%s", hex));
    }
    GUARD_OUT(file_mkdir(h->data_dir, 0700));
    GUARD_OUT(file_mkdir(h->datastore, 0700));
    GUARD_OUT(file_mkdir(h->runtime_dir, 0700));
    GUARD_OUT(check_private_dir(h->runtime_dir));
    vm_power_scan(h);
    vm_host_recover_all(h);
    *out = h;
    h = NULL;
out:
    if (h != NULL)
        vm_host_close(&h);
    return rc;
}

void vm_host_close(struct vm_host **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    struct vm_host *h = *hp;
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->keys_mu);
    free(h);
    *hp = NULL;
}

/* --- locks ------------------------------------------------------------- */

RESULT vm_lock(struct vm_host *h, const char *name)
{
    vs_result rc = OK_RESULT;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->busy_count; i++) {
        if (strcmp(h->busy[i], name) == 0) {
            rc = RAISE(ERR_BUSY);
            err_detail("another operation is in progress on VM '%s'", name);
            goto out;
        }
    }
    ENSURE_OUT(h->busy_count < VM_HOST_MAX_VMS, ERR_BUSY);
    snprintf(h->busy[h->busy_count++], VM_NAME_MAX, "%s", name);
out:
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void vm_unlock(struct vm_host *h, const char *name)
{
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->busy_count; i++) {
        if (strcmp(h->busy[i], name) == 0) {
            memmove(h->busy[i], h->busy[i + 1], (h->busy_count - i - 1) * VM_NAME_MAX);
            h->busy_count--;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
}

static void set_locked(struct vm_host *h, const char *name, const char *reason)
{
    pthread_mutex_lock(&h->mu);
    size_t i;
    for (i = 0; i < h->locked_count; i++)
        if (strcmp(h->locked[i].name, name) == 0)
            break;
    if (reason == NULL) {
        if (i < h->locked_count) {
            memmove(&h->locked[i], &h->locked[i + 1],
                    (h->locked_count - i - 1) * sizeof h->locked[0]);
            h->locked_count--;
        }
    } else if (i < h->locked_count || h->locked_count < VM_HOST_MAX_VMS) {
        if (i == h->locked_count)
            h->locked_count++;
        snprintf(h->locked[i].name, sizeof h->locked[i].name, "%s", name);
        snprintf(h->locked[i].reason, sizeof h->locked[i].reason, "%s", reason);
    }
    pthread_mutex_unlock(&h->mu);
}

bool vm_locked_reason(struct vm_host *h, const char *name, char *reason, size_t size)
{
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->locked_count && !found; i++) {
        if (strcmp(h->locked[i].name, name) == 0) {
            snprintf(reason, size, "%s", h->locked[i].reason);
            found = true;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

bool vm_try_unlock(struct vm_host *h, const char *name)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    bool unlocked = false;
    if (d != NULL && is_ok(vm_desc_load(h->datastore, name, d, NULL)) &&
        (!d->encrypted || is_ok(keyprov_fetch(h->kp, &d->key)))) {
        set_locked(h, name, NULL);
        unlocked = true;
    }
    err_clear();
    free(d);
    return unlocked;
}

/* --- keys of a VM -------------------------------------------------------- */

RESULT vm_keys_alloc(struct vm_keys **out)
{
    return secret_alloc(sizeof(struct vm_keys), (void **)out);
}

void vm_keys_free(struct vm_keys **k)
{
    secret_free((void **)k);
}

const uint8_t *vm_keys_secret(const struct vm_keys *k, const char *id)
{
    for (size_t i = 0; i < k->count; i++)
        if (strcmp(k->e[i].id, id) == 0)
            return k->e[i].secret;
    return NULL;
}

RESULT vm_keys_put(struct vm_keys *k, const char *id, const uint8_t secret[LUKS1_SECRET_LEN])
{
    for (size_t i = 0; i < k->count; i++) {
        if (strcmp(k->e[i].id, id) == 0) {
            memcpy(k->e[i].secret, secret, LUKS1_SECRET_LEN);
            return OK_RESULT;
        }
    }
    ENSURE(k->count < VM_MAX_LAYERS, ERR_TOO_LARGE);
    snprintf(k->e[k->count].id, VM_LAYER_ID_MAX, "%s", id);
    memcpy(k->e[k->count].secret, secret, LUKS1_SECRET_LEN);
    k->count++;
    return OK_RESULT;
}

/* Turns a key provider failure into "the VM is locked", naming the key. */
static vs_result locked_error(struct vm_host *h, const struct vm_desc *d)
{
    char why[sizeof err_last()->detail];
    snprintf(why, sizeof why, "%s", err_last()->detail);
    char reason[256];
    snprintf(reason, sizeof reason, "key provider '%s' cannot give key '%s'", d->key.provider,
             d->key.key_id);
    set_locked(h, d->name, reason);
    RAISE(ERR_VM_LOCKED);
    return err_detail("VM '%s' is locked: %s (%s)", d->name, reason, why);
}

/* A wrapped secret of d that does not open under its KEK: the descriptor
 * was tampered with or damaged (ERR_DESCRIPTOR, like a bad tag), not a
 * caller's failed authentication (ERR_AUTH is HTTP 400). */
static vs_result unwrap_error(vs_result rc, const struct vm_desc *d, const char *what)
{
    if (rc.code != ERR_AUTH)
        return rc;
    RAISE(ERR_DESCRIPTOR);
    return err_detail("vm.json of VM '%s' fails its integrity check: %s does not open under "
                      "key %s/%s",
                      d->name, what, d->key.provider, d->key.key_id);
}

RESULT vm_keys_open(struct vm_host *h, const struct vm_desc *d, const uint8_t tag[32],
                    struct vm_keys **out)
{
    vs_result rc = OK_RESULT;
    struct vm_keys *k = NULL;
    GUARD(vm_keys_alloc(&k));
    if (!d->encrypted) {
        GUARD_OUT(vm_desc_verify(d, NULL, tag));
        goto done;
    }
    rc = keyprov_fetch(h->kp, &d->key);
    if (rc.code == ERR_KEY_UNAVAILABLE || rc.code == ERR_NOT_FOUND) {
        rc = locked_error(h, d);
        goto out;
    }
    GUARD_OUT(rc);
    set_locked(h, d->name, NULL);
    size_t len = 0;
    GUARD_OUT(
        unwrap_error(keyprov_unwrap(h->kp, &d->key, d->wrapped_file_key, d->wrapped_file_key_len,
                                    k->file_key, sizeof k->file_key, &len),
                     d, "the file key"));
    ENSURE_OUT(len == VM_FILE_KEY_LEN, ERR_DESCRIPTOR);
    k->have_file_key = true;
    GUARD_OUT(vm_desc_verify(d, k->file_key, tag));
    for (size_t i = 0; i < d->layer_count; i++) {
        const struct vm_layer *l = &d->layers[i];
        if (l->wrapped_len == 0)
            continue;
        uint8_t *s = k->e[k->count].secret;
        GUARD_OUT(unwrap_error(keyprov_unwrap(h->kp, &d->key, l->wrapped_secret, l->wrapped_len, s,
                                              LUKS1_SECRET_LEN, &len),
                               d, "a disk secret"));
        ENSURE_OUT(len == LUKS1_SECRET_LEN, ERR_DESCRIPTOR);
        snprintf(k->e[k->count].id, VM_LAYER_ID_MAX, "%s", l->id);
        k->count++;
    }
done:
    *out = k;
    k = NULL;
out:
    vm_keys_free(&k);
    return rc;
}

RESULT vm_load(struct vm_host *h, const char *name, struct vm_desc *d, struct vm_keys **keys)
{
    uint8_t tag[32];
    vs_result rc = vm_desc_load(h->datastore, name, d, tag);
    if (rc.code == ERR_NOT_FOUND) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("no VM named '%s'", name);
    }
    GUARD(rc);
    return vm_keys_open(h, d, tag, keys);
}

RESULT vm_new_layer_secret(struct vm_host *h, struct vm_desc *d, struct vm_keys *k,
                           struct vm_layer *l, uint8_t secret[LUKS1_SECRET_LEN])
{
    struct buf w;
    vs_result rc = crypto_random_key(secret, LUKS1_SECRET_LEN);
    buf_wrap(&w, l->wrapped_secret, sizeof l->wrapped_secret);
    if (is_ok(rc))
        rc = keyprov_wrap(h->kp, &d->key, secret, LUKS1_SECRET_LEN, &w);
    if (is_ok(rc)) {
        l->wrapped_len = buf_len(&w);
        rc = vm_keys_put(k, l->id, secret);
    }
    if (!is_ok(rc)) /* the callers' copy is on their stack: no secret stays there */
        secret_wipe(secret, LUKS1_SECRET_LEN);
    return rc;
}

/* --- sealed files -------------------------------------------------------- */

static RESULT file_aad(const struct vm_desc *d, const char *kind, char *aad, size_t size)
{
    /* Binds a sealed file to its VM and its role: a config cannot be
     * passed off as another VM's, or as an NVRAM. */
    return vm_path(aad, size, "vmseal %s v1 %s", kind, d->uuid);
}

RESULT vm_seal_file(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                    const char *kind, const void *data, size_t len, char file_out[VM_FILE_MAX])
{
    vs_result rc = OK_RESULT;
    char path[VM_PATH_MAX], aad[128];
    struct buf b = {0};
    GUARD(vm_path(file_out, VM_FILE_MAX, "%s/%s-%llu.%s", d->name, kind,
                  (unsigned long long)d->generation + 1, d->encrypted ? "enc" : "plain"));
    GUARD(vm_path(path, sizeof path, "%s/%s", h->datastore, file_out));
    GUARD(buf_alloc(&b, len + CRYPTO_SEAL_OVERHEAD, len + CRYPTO_SEAL_OVERHEAD + 64));
    if (d->encrypted) {
        ENSURE_OUT(k->have_file_key, ERR_INTERNAL);
        GUARD_OUT(file_aad(d, kind, aad, sizeof aad));
        GUARD_OUT(crypto_seal(k->file_key, aad, strlen(aad), data, len, &b));
    } else {
        GUARD_OUT(buf_write_bytes(&b, data, len));
    }
    GUARD_OUT(file_write_atomic(path, buf_data(&b), buf_len(&b), 0600));
out:
    buf_free(&b);
    return rc;
}

RESULT vm_open_file(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                    const char *kind, const char *file, struct buf *out)
{
    vs_result rc = OK_RESULT;
    char path[VM_PATH_MAX], aad[128];
    struct buf b = {0};
    GUARD(vm_path(path, sizeof path, "%s/%s", h->datastore, file));
    GUARD(buf_alloc(&b, 4096, VM_NVRAM_MAX + CRYPTO_SEAL_OVERHEAD));
    GUARD_OUT(file_read_all(path, VM_NVRAM_MAX + CRYPTO_SEAL_OVERHEAD, &b));
    if (d->encrypted) {
        ENSURE_OUT(k->have_file_key, ERR_INTERNAL);
        GUARD_OUT(file_aad(d, kind, aad, sizeof aad));
        rc = crypto_open(k->file_key, aad, strlen(aad), &b, out);
        if (rc.code == ERR_AUTH) {
            /* Tampered or damaged: an integrity failure (HTTP 500), not a
             * caller's failed authentication (400). */
            rc = RAISE(ERR_DESCRIPTOR);
            err_detail("%s of VM '%s' fails its integrity check", file, d->name);
        }
        GUARD_OUT(rc);
    } else {
        GUARD_OUT(buf_write_bytes(out, buf_data(&b), buf_len(&b)));
    }
out:
    buf_free(&b);
    return rc;
}

/* Re-seals a sealed file under new keys (or none): returns the new name. */
RESULT vm_reseal(struct vm_host *h, const struct vm_desc *from, const struct vm_keys *from_keys,
                 const struct vm_desc *to, const struct vm_keys *to_keys, const char *kind,
                 const char *file, char out[VM_FILE_MAX])
{
    vs_result rc = OK_RESULT;
    struct buf plain = {0};
    if (file[0] == '\0') {
        out[0] = '\0';
        return OK_RESULT;
    }
    GUARD(buf_alloc_secret(&plain, 4096, VM_NVRAM_MAX));
    GUARD_OUT(vm_open_file(h, from, from_keys, kind, file, &plain));
    GUARD_OUT(vm_seal_file(h, to, to_keys, kind, buf_data(&plain), buf_len(&plain), out));
out:
    buf_free(&plain);
    return rc;
}

/* --- config -------------------------------------------------------------- */

RESULT vm_config_write(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                       uint64_t memory, unsigned cpus)
{
    json_t *o = json_pack("{s:I, s:i}", "memory", (json_int_t)memory, "cpus", (int)cpus);
    ENSURE(o != NULL, ERR_NOMEM);
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    ENSURE(text != NULL, ERR_NOMEM);
    vs_result rc = vm_seal_file(h, d, k, "config", text, strlen(text), d->config_file);
    free(text);
    return rc;
}

RESULT vm_config_read(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                      uint64_t *memory, unsigned *cpus)
{
    vs_result rc = OK_RESULT;
    struct buf b = {0};
    json_t *o = NULL;
    GUARD(buf_alloc(&b, 256, VM_CONFIG_MAX));
    GUARD_OUT(vm_open_file(h, d, k, "config", d->config_file, &b));
    o = json_loadb((const char *)buf_data(&b), buf_len(&b), JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_object_get(o, "memory"), *c = json_object_get(o, "cpus");
    if (!json_is_object(o) || json_object_size(o) != 2 || !json_is_integer(m) ||
        !json_is_integer(c) || json_integer_value(m) <= 0 || json_integer_value(c) <= 0 ||
        json_integer_value(c) > VM_MAX_CPUS) {
        rc = RAISE(ERR_DESCRIPTOR);
        err_detail("the configuration of VM '%s' is malformed", d->name);
        goto out;
    }
    *memory = (uint64_t)json_integer_value(m);
    *cpus = (unsigned)json_integer_value(c);
out:
    json_decref(o);
    buf_free(&b);
    return rc;
}

/* --- garbage collection: the VM directory holds what vm.json references -- */

static bool referenced(const struct vm_desc *d, const char *entry)
{
    static const char *const fixed[] = {"vm.json", "journal", "console.log", NULL};
    char ref[VM_FILE_MAX];
    for (size_t i = 0; fixed[i] != NULL; i++)
        if (strcmp(entry, fixed[i]) == 0)
            return true;
    if (snprintf(ref, sizeof ref, "%s/%s", d->name, entry) >= (int)sizeof ref)
        return false;
    if (strcmp(ref, d->config_file) == 0 || strcmp(ref, d->nvram_file) == 0)
        return true;
    for (size_t i = 0; i < d->layer_count; i++)
        if (strcmp(ref, d->layers[i].file) == 0)
            return true;
    for (size_t i = 0; i < d->snapshot_count; i++)
        if (strcmp(ref, d->snapshots[i].nvram_file) == 0)
            return true;
    return false;
}

RESULT vm_gc(struct vm_host *h, const struct vm_desc *d)
{
    char dir[VM_PATH_MAX];
    GUARD(vm_path(dir, sizeof dir, "%s/%s", h->datastore, d->name));
    /* Not through a symbolic link: the VM's own directory only. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (dp == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        RAISE(ERR_IO);
        err_detail("opening the directory of VM '%s'", d->name);
        return err_errno(e);
    }
    bool removed = false;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
            continue;
        if (referenced(d, e->d_name))
            continue;
        if (unlinkat(dirfd(dp), e->d_name, 0) == 0) {
            removed = true;
            log_debug("removed unreferenced file", LOG_S("vm", d->name), LOG_S("file", e->d_name));
        }
    }
    closedir(dp);
    return removed ? file_fsync_dir(dir) : OK_RESULT;
}

/* --- the three moments of an operation (journal.h) ----------------------- */

/* The generation of NAME's vm.json (0 when there is none yet: a create or
 * clone), which the journal records so that recovery can tell whether the
 * operation committed. */
static RESULT committed_generation(struct vm_host *h, const char *name, uint64_t *out)
{
    char path[VM_PATH_MAX];
    struct stat st;
    *out = 0;
    GUARD(vm_path(path, sizeof path, "%s/%s/vm.json", h->datastore, name));
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    ENSURE(d != NULL, ERR_NOMEM);
    vs_result rc = vm_desc_load(h->datastore, name, d, NULL);
    if (is_ok(rc))
        *out = d->generation;
    free(d);
    return rc;
}

RESULT vm_op_begin(struct vm_host *h, const char *name, const char *op, const char *snapshot)
{
    struct vm_journal j = {0};
    snprintf(j.op, sizeof j.op, "%s", op);
    snprintf(j.snapshot, sizeof j.snapshot, "%s", snapshot != NULL ? snapshot : "");
    vm_time_now(j.started);
    GUARD(committed_generation(h, name, &j.generation));
    j.has_generation = true;
    return vm_journal_write(h->datastore, name, &j);
}

RESULT vm_op_finish(struct vm_host *h, const struct vm_desc *d)
{
    GUARD(vm_gc(h, d));
    return vm_journal_remove(h->datastore, d->name);
}

void vm_op_abandon(struct vm_host *h, const struct vm_desc *committed)
{
    struct err_state saved = *err_last();
    result_ignore(vm_op_finish(h, committed));
    (void)err_restore(&saved);
}

/* --- JSON views ------------------------------------------------------------ */

static bool chain_is_single_branch(const struct vm_desc *d)
{
    for (size_t i = 0; i < d->layer_count; i++)
        if (vm_desc_children(d, d->layers[i].id) > 1)
            return false;
    return true;
}

bool vm_is_linked(const struct vm_desc *d)
{
    return d->instant_clone_of[0] != '\0' || d->dependent_count > 0;
}

bool vm_rekey_allowed(const struct vm_desc *d)
{
    return d->encrypted && !vm_is_linked(d) && chain_is_single_branch(d);
}

RESULT vm_to_json(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k, json_t **out)
{
    vs_result rc = OK_RESULT;
    json_t *o = NULL, *disks = NULL, *snaps = NULL;
    char reason[256], path[VM_PATH_MAX];
    bool locked = vm_locked_reason(h, d->name, reason, sizeof reason);
    const char *state = vm_is_running(h, d->name) ? "running" : locked ? "locked" : "off";

    GUARD(vm_path(path, sizeof path, "%s/%s/console.log", h->datastore, d->name));
    o = json_pack("{s:s, s:s, s:b, s:s, s:o, s:b, s:o, s:b, s:b, s:s, s:s}", "name", d->name,
                  "uuid", d->uuid, "encrypted", d->encrypted, "state", state, "locked_reason",
                  locked ? json_string(reason) : json_null(), "template", d->template_,
                  "instant_clone_of",
                  d->instant_clone_of[0] ? json_string(d->instant_clone_of) : json_null(),
                  "linked", vm_is_linked(d), "rekeyable", vm_rekey_allowed(d), "created",
                  d->created, "console_log", path);
    ENSURE_OUT(o != NULL, ERR_NOMEM);
    json_object_set_new(o, "provider", d->encrypted ? json_string(d->key.provider) : json_null());
    json_object_set_new(o, "key_id", d->encrypted ? json_string(d->key.key_id) : json_null());
    json_t *deps = json_array();
    for (size_t i = 0; i < d->dependent_count; i++)
        json_array_append_new(deps, json_string(d->dependents[i]));
    json_object_set_new(o, "dependents", deps);
    if (k != NULL) {
        uint64_t memory;
        unsigned cpus;
        GUARD_OUT(vm_config_read(h, d, k, &memory, &cpus));
        json_object_set_new(o, "memory", json_integer((json_int_t)memory));
        json_object_set_new(o, "cpus", json_integer(cpus));
    } else {
        json_object_set_new(o, "memory", json_null());
        json_object_set_new(o, "cpus", json_null());
    }
    disks = json_array();
    for (unsigned i = 0; disks != NULL && i < d->disk_count; i++) {
        struct vm_layer *chain[DISK_CHAIN_MAX];
        size_t n;
        GUARD_OUT(vm_desc_chain(d, i, chain, &n));
        json_t *layers = json_array();
        for (size_t j = 0; layers != NULL && j < n; j++)
            json_array_append_new(layers,
                                  json_pack("{s:s, s:s, s:s, s:b}", "id", chain[j]->id, "file",
                                            chain[j]->file, "format",
                                            vm_format_name(chain[j]->format), "shared",
                                            chain[j]->shared));
        json_array_append_new(disks, json_pack("{s:i, s:I, s:b, s:o}", "index", (int)i, "size",
                                                (json_int_t)d->disks[i].size, "encrypted",
                                                vm_disk_encrypted(d, i), "layers", layers));
    }
    json_object_set_new(o, "disks", disks);
    disks = NULL;
    snaps = json_array();
    for (size_t i = 0; snaps != NULL && i < d->snapshot_count; i++)
        json_array_append_new(snaps, json_pack("{s:s, s:s}", "name", d->snapshots[i].name,
                                               "created", d->snapshots[i].created));
    json_object_set_new(o, "snapshots", snaps);
    snaps = NULL;
    *out = o;
    o = NULL;
out:
    json_decref(o);
    return rc;
}

RESULT vm_info(struct vm_host *h, const char *name, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    uint8_t tag[32];
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    rc = vm_desc_load(h->datastore, name, d, tag);
    if (rc.code == ERR_NOT_FOUND) {
        err_detail("no VM named '%s'", name);
        goto out;
    }
    GUARD_OUT(rc);
    /* A locked VM is still listed: only what needs its keys is missing. */
    if (d->encrypted && !keyprov_is_cached(h->kp, &d->key)) {
        char reason[256];
        if (vm_locked_reason(h, name, reason, sizeof reason)) {
            GUARD_OUT(vm_to_json(h, d, NULL, out));
            goto out;
        }
    }
    rc = vm_keys_open(h, d, tag, &k);
    if (rc.code == ERR_VM_LOCKED) {
        GUARD_OUT(vm_to_json(h, d, NULL, out));
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(vm_to_json(h, d, k, out));
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

RESULT vm_list_names(struct vm_host *h, char (**names)[VM_NAME_MAX], size_t *count)
{
    char (*list)[VM_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    *names = NULL;
    *count = 0;
    DIR *dp = opendir(h->datastore);
    if (dp == NULL) {
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    struct dirent *e;
    vs_result rc = OK_RESULT;
    while ((e = readdir(dp)) != NULL) {
        char path[VM_PATH_MAX];
        struct stat st;
        if (!is_ok(vm_check_name("VM", e->d_name))) {
            err_clear();
            continue;
        }
        if (!is_ok(vm_path(path, sizeof path, "%s/%s/vm.json", h->datastore, e->d_name)) ||
            stat(path, &st) != 0) {
            err_clear();
            continue;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            void *p = ncap <= VM_HOST_MAX_INVENTORY ? reallocarray(list, ncap, sizeof *list)
                                                    : NULL;
            if (p == NULL) {
                rc = RAISE(ncap <= VM_HOST_MAX_INVENTORY ? ERR_NOMEM : ERR_TOO_LARGE);
                break;
            }
            list = p;
            cap = ncap;
        }
        memcpy(list[n++], e->d_name, strlen(e->d_name) + 1); /* checked: < VM_NAME_MAX */
    }
    closedir(dp);
    if (!is_ok(rc)) {
        free(list);
        return rc;
    }
    if (n > 1)
        qsort(list, n, sizeof *list, name_cmp); /* a stable listing */
    *names = list;
    *count = n;
    return OK_RESULT;
}

RESULT vm_list(struct vm_host *h, json_t **out)
{
    char (*names)[VM_NAME_MAX] = NULL;
    size_t n = 0;
    json_t *a = json_array();
    ENSURE(a != NULL, ERR_NOMEM);
    vs_result rc = vm_list_names(h, &names, &n);
    for (size_t i = 0; is_ok(rc) && i < n; i++) {
        json_t *v = NULL;
        vs_result r = vm_info(h, names[i], &v);
        if (is_ok(r)) {
            json_array_append_new(a, v);
        } else {
            char msg[300];
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", names[i], "state",
                                               "error", "error",
                                               err_format(msg, sizeof msg)));
            err_clear();
        }
    }
    free(names);
    if (!is_ok(rc)) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return OK_RESULT;
}
