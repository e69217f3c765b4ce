/* ops.c - the operations that create or transform disks: create, encrypt,
 * decrypt, shallow and deep rekey, clone (full and instant), add disk,
 * export, template, delete. See vm.h and docs/encryption.md. */
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
#include "vm/vm.h"

#define VM_DEFAULT_MEMORY (256ull << 20)
#define VM_MAX_MEMORY (1ull << 40)

/* --- small helpers ---------------------------------------------------------- */

static vs_result state_error(const char *fmt, const char *name)
    __attribute__((format(printf, 1, 0)));
static vs_result state_error(const char *fmt, const char *name)
{
    RAISE(ERR_VM_STATE);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    return err_detail(fmt, name);
#pragma GCC diagnostic pop
}

RESULT vm_require_off(struct vm_host *h, const struct vm_desc *d)
{
    if (vm_is_running(h, d->name))
        return state_error("VM '%s' is running: power it off first", d->name);
    return OK_RESULT;
}

static RESULT require_no_snapshots(const struct vm_desc *d)
{
    if (d->snapshot_count > 0)
        return state_error("VM '%s' has snapshots: delete them (consolidate) first", d->name);
    for (unsigned i = 0; i < d->disk_count; i++) {
        const struct vm_layer *l = NULL;
        for (size_t j = 0; j < d->layer_count; j++)
            if (strcmp(d->layers[j].id, d->disks[i].active) == 0)
                l = &d->layers[j];
        if (l == NULL || l->parent[0] != '\0')
            return state_error("VM '%s' has disks made of several layers (a linked or instant "
                               "clone, or snapshots): this needs a single layer per disk",
                               d->name);
    }
    return OK_RESULT;
}

static RESULT require_not_linked(const struct vm_desc *d, const char *what)
{
    if (d->instant_clone_of[0] != '\0') {
        RAISE(ERR_VM_STATE);
        return err_detail("VM '%s' is an instant clone of '%s' and shares its keys: %s is "
                          "refused",
                          d->name, d->instant_clone_of, what);
    }
    if (d->dependent_count > 0) {
        RAISE(ERR_VM_STATE);
        return err_detail("VM '%s' has instant clones (%s%s) that share its keys: %s is refused",
                          d->name, d->dependents[0], d->dependent_count > 1 ? ", ..." : "",
                          what);
    }
    return OK_RESULT;
}

static void report(struct vm_task_ctl *ctl, unsigned percent)
{
    if (ctl != NULL && ctl->progress != NULL)
        ctl->progress(ctl->ctx, percent > 100 ? 100 : percent);
}

struct progress_agg {
    struct vm_task_ctl *ctl;
    uint64_t base;  /* bytes done by earlier disks */
    uint64_t total; /* bytes of all disks */
};

static void agg_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    struct progress_agg *pa = ctx;
    if (pa->total > 0)
        report(pa->ctl, (unsigned)((pa->base + done) * 100 / pa->total));
}

static RESULT rm_vm_dir(const char *dir)
{
    /* Never through a symbolic link: one planted in the datastore (a
     * ".trash-*" entry, a VM directory) would make us empty whatever it
     * points at. The link itself goes. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
        if (unlink(dir) == 0 || errno == ENOENT)
            return OK_RESULT;
    }
    if (fd < 0) {
        if (errno == ENOENT)
            return OK_RESULT;
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    DIR *dp = fdopendir(fd);
    if (dp == NULL) {
        close(fd);
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        (void)unlinkat(dirfd(dp), e->d_name, 0);
    }
    closedir(dp);
    if (rmdir(dir) != 0 && errno != ENOENT) {
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    return OK_RESULT;
}

RESULT vm_remove_dir(struct vm_host *h, const char *name)
{
    char dir[VM_PATH_MAX];
    GUARD(vm_path(dir, sizeof dir, "%s/%s", h->datastore, name));
    GUARD(rm_vm_dir(dir));
    return file_fsync_dir(h->datastore);
}

static RESULT layer_path(struct vm_host *h, const struct vm_layer *l, char *out, size_t size)
{
    return vm_path(out, size, "%s/%s", h->datastore, l->file);
}

static RESULT new_dek(uint8_t *dek)
{
    do {
        GUARD(crypto_random_key(dek, LUKS1_MASTER_KEY_LEN));
    } while (secret_equal(dek, dek + LUKS1_MASTER_KEY_LEN / 2, LUKS1_MASTER_KEY_LEN / 2));
    return OK_RESULT;
}

static RESULT create_plain_file(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        RAISE(errno == EEXIST ? ERR_EXISTS : ERR_IO);
        return err_errno(errno);
    }
    vs_result rc = OK_RESULT;
    if (ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        (void)unlink(path);
    }
    close(fd);
    return rc;
}

/* Adds a new base layer for disk `disk` to d and creates its file: a LUKS1
 * image (new DEK into dek, new secret wrapped under d's KEK) when
 * `encrypted` (d must be an encrypted VM), a sparse raw file otherwise. */
static RESULT create_base(struct vm_host *h, struct vm_desc *d, struct vm_keys *k, unsigned disk,
                          uint64_t size, bool encrypted, uint8_t *dek, struct vm_layer **out)
{
    struct vm_layer *l;
    char path[VM_PATH_MAX];
    ENSURE(d->encrypted || !encrypted, ERR_INTERNAL);
    GUARD(vm_desc_add_layer(d, disk, &l));
    GUARD(vm_path(l->file, sizeof l->file, "%s/disk%u-%s.img", d->name, disk, l->id));
    GUARD(layer_path(h, l, path, sizeof path));
    if (encrypted) {
        uint8_t secret[LUKS1_SECRET_LEN];
        l->format = DISK_FORMAT_LUKS;
        vs_result rc = vm_new_layer_secret(h, d, k, l, secret);
        if (is_ok(rc))
            rc = new_dek(dek);
        if (is_ok(rc))
            rc = luks1_create_file(path, size, dek, secret);
        secret_wipe(secret, sizeof secret);
        GUARD(rc);
    } else {
        l->format = DISK_FORMAT_RAW;
        GUARD(create_plain_file(path, size));
    }
    *out = l;
    return OK_RESULT;
}

/* The disk secret of layer l (NULL for a plaintext layer) into *out. An
 * encrypted layer without its secret would be copied as if it were
 * plaintext (its LUKS header and ciphertext as guest data): refused. */
static RESULT layer_secret(const struct vm_keys *k, const struct vm_layer *l,
                           const uint8_t **out)
{
    *out = NULL;
    if (!vm_format_encrypted(l->format))
        return OK_RESULT;
    *out = vm_keys_secret(k, l->id);
    ENSURE(*out != NULL, ERR_INTERNAL);
    return OK_RESULT;
}

/* Copies guest data from src (a LUKS1 image opened with src_secret, or
 * plaintext) to dst (a LUKS1 image just created with dst_dek, or a plain
 * file), with the bulk engine. */
static RESULT copy_guest(struct vm_host *h, const char *src_path, const uint8_t *src_secret,
                         const char *dst_path, const uint8_t *dst_dek, uint64_t size,
                         struct progress_agg *pa)
{
    vs_result rc = OK_RESULT;
    int sfd = -1, dfd = -1;
    uint8_t *src_dek = NULL;
    struct disk_end s = {.luks = false}, t = {.luks = false};

    sfd = open(src_path, O_RDONLY | O_CLOEXEC);
    dfd = open(dst_path, O_RDWR | O_CLOEXEC);
    if (sfd < 0 || dfd < 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        goto out;
    }
    s.fd = sfd;
    t.fd = dfd;
    if (src_secret != NULL) {
        struct luks1_info info;
        GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&src_dek));
        GUARD_OUT(luks1_open(sfd, src_secret, src_dek, &info));
        s.luks = true;
        s.master_key = src_dek;
        s.payload_offset = info.payload_offset_bytes;
    }
    if (dst_dek != NULL) {
        t.luks = true;
        t.master_key = dst_dek;
        t.payload_offset = LUKS1_PAYLOAD_OFFSET_BYTES;
    }
    struct disk_copy_opts opts = {
        .threads = h->engine_threads,
        .progress = agg_progress,
        .progress_ctx = pa,
        .cancel = pa->ctl != NULL ? &pa->ctl->cancel : NULL,
    };
    GUARD_OUT(disk_copy(&s, &t, size, &opts));
    pa->base += size;
out:
    secret_free((void **)&src_dek);
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* A byte-for-byte, sparse copy of a whole file (a clone that keeps keys). */
static RESULT copy_file_bytes(struct vm_host *h, const char *src_path, const char *dst_path,
                              struct progress_agg *pa)
{
    struct stat st;
    if (stat(src_path, &st) != 0) {
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    ENSURE(st.st_size % 512 == 0, ERR_DISK_FORMAT);
    GUARD(create_plain_file(dst_path, (uint64_t)st.st_size));
    return copy_guest(h, src_path, NULL, dst_path, NULL, (uint64_t)st.st_size, pa);
}

/* Issues a KEK for VM d from provider (NULL: default) and records it. */
static RESULT new_kek(struct vm_host *h, struct vm_desc *d, const char *provider)
{
    struct keyprov_kek_purpose purpose = {.vm_name = d->name, .vm_uuid = d->uuid};
    GUARD(keyprov_new_kek(h->kp, provider, &purpose, &d->key));
    return vm_keys_record(h, &d->key, d->name, d->uuid);
}

/* Gives d a new random file key, wrapped under d's KEK. */
static RESULT new_file_key(struct vm_host *h, struct vm_desc *d, struct vm_keys *k)
{
    struct buf w;
    GUARD(crypto_random_key(k->file_key, VM_FILE_KEY_LEN));
    k->have_file_key = true;
    buf_wrap(&w, d->wrapped_file_key, sizeof d->wrapped_file_key);
    GUARD(keyprov_wrap(h->kp, &d->key, k->file_key, VM_FILE_KEY_LEN, &w));
    d->wrapped_file_key_len = buf_len(&w);
    return OK_RESULT;
}

/* --- create ---------------------------------------------------------------- */

RESULT vm_create(struct vm_host *h, const struct vm_create_spec *spec, struct vm_task_ctl *ctl,
                 json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL;
    struct vm_keys *k = NULL;
    uint8_t *dek = NULL;
    char dir[VM_PATH_MAX], tmp[VM_PATH_MAX];
    bool locked = false, made_dir = false;
    uint64_t memory = spec->memory ? spec->memory : VM_DEFAULT_MEMORY;
    unsigned cpus = spec->cpus ? spec->cpus : 1;
    enum disk_format image_format = DISK_FORMAT_RAW;
    uint64_t image_size = 0;

    GUARD(vm_check_name("VM", spec->name));
    if (memory < (16ull << 20) || memory > VM_MAX_MEMORY || memory % (1 << 20) != 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("memory must be a whole number of MiB between 16 MiB and 1 TiB");
    }
    if (cpus > VM_MAX_CPUS) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a VM has at most %d CPUs", VM_MAX_CPUS);
    }
    size_t total_disks = spec->disk_count + (spec->image != NULL);
    if (total_disks > VM_MAX_DISKS) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a VM has at most %d disks", VM_MAX_DISKS);
    }
    for (size_t i = 0; i < spec->disk_count; i++) {
        if (spec->disks[i] == 0 || spec->disks[i] % 512 != 0 ||
            spec->disks[i] > VM_MAX_DISK_SIZE) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("disk sizes are whole 512-byte sectors, up to 64 TiB");
        }
    }
    if (spec->image != NULL) {
        GUARD(disk_image_probe(spec->image, &image_format, &image_size));
        if (image_size % 512 != 0) {
            RAISE(ERR_DISK_FORMAT);
            return err_detail("image '%s' is not a whole number of 512-byte sectors",
                              spec->image);
        }
        /* The same limit as an empty disk's: a qcow2 header can claim any
         * size, and every byte of it is converted and encrypted. */
        if (image_size == 0 || image_size > VM_MAX_DISK_SIZE) {
            RAISE(ERR_DISK_FORMAT);
            return err_detail("image '%s' has a size of %llu bytes: disks are 512 bytes to 64 "
                              "TiB",
                              spec->image, (unsigned long long)image_size);
        }
    }

    GUARD(vm_lock(h, spec->name));
    locked = true;
    d = calloc(1, sizeof *d);
    ENSURE_OUT(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_keys_alloc(&k));
    GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&dek));
    GUARD_OUT(vm_path(dir, sizeof dir, "%s/%s", h->datastore, spec->name));
    if (mkdir(dir, 0700) != 0) {
        rc = RAISE(errno == EEXIST ? ERR_EXISTS : ERR_IO);
        if (errno == EEXIST)
            err_detail("a VM named '%s' exists", spec->name);
        else
            err_errno(errno);
        goto out;
    }
    made_dir = true;
    GUARD_OUT(file_fsync_dir(h->datastore));
    GUARD_OUT(vm_op_begin(h, spec->name, "create", NULL));

    snprintf(d->name, sizeof d->name, "%s", spec->name);
    GUARD_OUT(vm_uuid_new(d->uuid));
    vm_time_now(d->created);
    d->encrypted = spec->encrypt;
    if (d->encrypted) {
        GUARD_OUT(new_kek(h, d, spec->provider));
        GUARD_OUT(new_file_key(h, d, k));
    } else if (spec->provider != NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("--provider needs --encrypt");
        goto out;
    }
    GUARD_OUT(vm_config_write(h, d, k, memory, cpus));

    struct progress_agg pa = {.ctl = ctl, .total = image_size};
    unsigned disk = 0;
    if (spec->image != NULL) {
        const char *src = spec->image;
        struct vm_layer *l;
        if (image_format == DISK_FORMAT_QCOW2) {
            GUARD_OUT(vm_path(tmp, sizeof tmp, "%s/import.tmp", dir));
            GUARD_OUT(disk_image_convert_to_raw(spec->image, image_format, tmp));
            src = tmp;
        }
        d->disk_count = 1;
        GUARD_OUT(create_base(h, d, k, disk, image_size, d->encrypted, dek, &l));
        d->disks[disk].size = image_size;
        snprintf(d->disks[disk].active, VM_LAYER_ID_MAX, "%s", l->id);
        char path[VM_PATH_MAX];
        GUARD_OUT(layer_path(h, l, path, sizeof path));
        GUARD_OUT(copy_guest(h, src, NULL, path, d->encrypted ? dek : NULL, image_size, &pa));
        disk++;
    }
    for (size_t i = 0; i < spec->disk_count; i++, disk++) {
        struct vm_layer *l;
        d->disk_count = disk + 1;
        GUARD_OUT(create_base(h, d, k, disk, spec->disks[i], d->encrypted, dek, &l));
        d->disks[disk].size = spec->disks[i];
        snprintf(d->disks[disk].active, VM_LAYER_ID_MAX, "%s", l->id);
    }
    GUARD_OUT(vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL));
    made_dir = false; /* committed */
    GUARD_OUT(vm_op_finish(h, d));
    report(ctl, 100);
    GUARD_OUT(vm_to_json(h, d, k, out));
    log_info("vm created", LOG_S("vm", d->name), LOG_S("uuid", d->uuid),
             LOG_S("encrypted", d->encrypted ? "yes" : "no"));
out:
    if (made_dir) {
        struct err_state saved = *err_last();
        result_ignore(vm_remove_dir(h, spec->name));
        (void)err_restore(&saved);
    }
    if (locked)
        vm_unlock(h, spec->name);
    secret_free((void **)&dek);
    vm_keys_free(&k);
    free(d);
    return rc;
}

/* --- encrypt, decrypt, deep rekey, and one disk's encrypt or decrypt -------
 *
 * One transformation: base disks re-written by the bulk engine into new
 * layers (LUKS1 under a new DEK, or raw), the others carried over as they
 * are; the VM's keys renewed, dropped or kept. */

enum transform {
    TRANSFORM_ENCRYPT,      /* new KEK and file key; every disk encrypted */
    TRANSFORM_DECRYPT,      /* keys dropped; every encrypted disk decrypted */
    TRANSFORM_DEEP_REKEY,   /* new KEK and file key; encrypted disks under new DEKs */
    TRANSFORM_DISK_ENCRYPT, /* the VM's keys kept; one plaintext disk encrypted */
    TRANSFORM_DISK_DECRYPT, /* the VM's keys kept; one encrypted disk decrypted */
};

/* What becomes of one disk. */
enum disk_target { DISK_CARRY, DISK_TO_LUKS, DISK_TO_RAW };

static const char *const transform_ops[] = {"encrypt", "decrypt", "rekey-deep", "disk-encrypt",
                                            "disk-decrypt"};

/* The rules of vSphere's VM and per-disk encryption (docs/encryption.md)
 * for d, and what becomes of each of its disks. index: the disk of a
 * per-disk transformation. */
static RESULT transform_plan(const struct vm_desc *d, enum transform what, unsigned index,
                             enum disk_target target[VM_MAX_DISKS])
{
    bool per_disk = what == TRANSFORM_DISK_ENCRYPT || what == TRANSFORM_DISK_DECRYPT;
    if (per_disk && index >= d->disk_count) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("VM '%s' has no disk %u", d->name, index);
    }
    switch (what) {
    case TRANSFORM_ENCRYPT:
        if (d->encrypted)
            return state_error("VM '%s' is already encrypted", d->name);
        break;
    case TRANSFORM_DECRYPT:
    case TRANSFORM_DEEP_REKEY:
        if (!d->encrypted)
            return state_error("VM '%s' is not encrypted", d->name);
        break;
    case TRANSFORM_DISK_ENCRYPT:
        if (!d->encrypted)
            return state_error("VM '%s' is not encrypted; encrypt the VM first: a disk can only "
                               "be encrypted in an encrypted VM",
                               d->name);
        if (vm_disk_encrypted(d, index)) {
            RAISE(ERR_VM_STATE);
            return err_detail("disk %u of VM '%s' is already encrypted", index, d->name);
        }
        break;
    case TRANSFORM_DISK_DECRYPT:
        if (!vm_disk_encrypted(d, index)) {
            RAISE(ERR_VM_STATE);
            return err_detail("disk %u of VM '%s' is not encrypted", index, d->name);
        }
        break;
    }
    for (unsigned i = 0; i < d->disk_count; i++) {
        bool enc = vm_disk_encrypted(d, i);
        switch (what) {
        case TRANSFORM_ENCRYPT:
            target[i] = DISK_TO_LUKS;
            break;
        case TRANSFORM_DECRYPT:
            target[i] = enc ? DISK_TO_RAW : DISK_CARRY;
            break;
        case TRANSFORM_DEEP_REKEY: /* a plaintext disk stays so */
            target[i] = enc ? DISK_TO_LUKS : DISK_CARRY;
            break;
        case TRANSFORM_DISK_ENCRYPT:
            target[i] = i == index ? DISK_TO_LUKS : DISK_CARRY;
            break;
        case TRANSFORM_DISK_DECRYPT:
            target[i] = i == index ? DISK_TO_RAW : DISK_CARRY;
            break;
        }
    }
    return OK_RESULT;
}

static RESULT transform(struct vm_host *h, const char *name, enum transform what, unsigned index,
                        const char *provider, struct vm_task_ctl *ctl, json_t **out)
{
    const char *op = transform_ops[what];
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL, *nd = NULL;
    struct vm_keys *k = NULL, *nk = NULL;
    uint8_t *dek = NULL;
    enum disk_target target[VM_MAX_DISKS];
    bool started = false;
    bool new_keys = what == TRANSFORM_ENCRYPT || what == TRANSFORM_DEEP_REKEY;
    bool keep_keys = what == TRANSFORM_DISK_ENCRYPT || what == TRANSFORM_DISK_DECRYPT;

    GUARD(vm_check_name("VM", name));
    GUARD(vm_lock(h, name));
    d = calloc(1, sizeof *d);
    nd = calloc(1, sizeof *nd);
    ENSURE_OUT(d != NULL && nd != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, name, d, &k));
    GUARD_OUT(vm_keys_alloc(&nk));
    GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&dek));
    GUARD_OUT(vm_require_off(h, d));
    GUARD_OUT(transform_plan(d, what, index, target));
    if (!new_keys && provider != NULL) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("%s takes no provider", op);
        goto out;
    }
    GUARD_OUT(require_not_linked(d, op));
    GUARD_OUT(require_no_snapshots(d));

    GUARD_OUT(vm_op_begin(h, name, op, NULL));
    started = true;
    *nd = *d;
    /* The layers are rebuilt: new ones for the disks re-written, the old
     * ones (same file, same secret) for the others. */
    nd->layer_count = 0;
    memset(nd->layers, 0, sizeof nd->layers);
    nd->encrypted = what != TRANSFORM_DECRYPT;
    if (new_keys) {
        GUARD_OUT(new_kek(h, nd, provider != NULL             ? provider
                                 : what == TRANSFORM_DEEP_REKEY ? d->key.provider
                                                                : NULL));
        GUARD_OUT(new_file_key(h, nd, nk));
    } else if (keep_keys) {
        memcpy(nk->file_key, k->file_key, VM_FILE_KEY_LEN);
        nk->have_file_key = k->have_file_key;
    } else {
        nd->key = (struct keyprov_ref){0}; /* a reference, not a secret */
        nd->wrapped_file_key_len = 0;
    }

    struct progress_agg pa = {.ctl = ctl};
    for (unsigned i = 0; i < d->disk_count; i++)
        if (target[i] != DISK_CARRY)
            pa.total += d->disks[i].size;
    for (unsigned i = 0; i < d->disk_count; i++) {
        struct vm_layer *old = vm_desc_layer(d, d->disks[i].active), *l;
        const uint8_t *old_secret;
        char src[VM_PATH_MAX], dst[VM_PATH_MAX];
        ENSURE_OUT(old != NULL, ERR_INTERNAL);
        GUARD_OUT(layer_secret(k, old, &old_secret));
        if (target[i] == DISK_CARRY) {
            /* Its secret stays wrapped under the KEK: only when that stays. */
            ENSURE_OUT(old_secret == NULL || keep_keys, ERR_INTERNAL);
            ENSURE_OUT(nd->layer_count < VM_MAX_LAYERS, ERR_INTERNAL);
            nd->layers[nd->layer_count++] = *old;
            if (old_secret != NULL)
                GUARD_OUT(vm_keys_put(nk, old->id, old_secret));
            continue;
        }
        GUARD_OUT(create_base(h, nd, nk, i, d->disks[i].size, target[i] == DISK_TO_LUKS, dek,
                              &l));
        snprintf(nd->disks[i].active, VM_LAYER_ID_MAX, "%s", l->id);
        GUARD_OUT(layer_path(h, old, src, sizeof src));
        GUARD_OUT(layer_path(h, l, dst, sizeof dst));
        GUARD_OUT(copy_guest(h, src, old_secret, dst, target[i] == DISK_TO_LUKS ? dek : NULL,
                             d->disks[i].size, &pa));
    }
    if (!keep_keys) {
        GUARD_OUT(vm_reseal(h, d, k, nd, nk, "config", d->config_file, nd->config_file));
        GUARD_OUT(vm_reseal(h, d, k, nd, nk, "nvram", d->nvram_file, nd->nvram_file));
    }

    GUARD_OUT(vm_desc_save(h->datastore, nd, nd->encrypted ? nk->file_key : NULL));
    started = false; /* committed: from here on, roll forward */
    GUARD_OUT(vm_op_finish(h, nd));
    report(ctl, 100);
    GUARD_OUT(vm_to_json(h, nd, nk, out));
    if (keep_keys)
        log_info("vm disk transformed", LOG_S("vm", name), LOG_S("operation", op),
                 LOG_U("disk", index));
    else
        log_info("vm transformed", LOG_S("vm", name), LOG_S("operation", op));
out:
    if (started)
        vm_op_abandon(h, d);
    vm_unlock(h, name);
    secret_free((void **)&dek);
    vm_keys_free(&k);
    vm_keys_free(&nk);
    free(d);
    free(nd);
    return rc;
}

RESULT vm_encrypt(struct vm_host *h, const char *name, const char *provider,
                  struct vm_task_ctl *ctl, json_t **out)
{
    return transform(h, name, TRANSFORM_ENCRYPT, 0, provider, ctl, out);
}

RESULT vm_decrypt(struct vm_host *h, const char *name, struct vm_task_ctl *ctl, json_t **out)
{
    return transform(h, name, TRANSFORM_DECRYPT, 0, NULL, ctl, out);
}

RESULT vm_disk_encrypt(struct vm_host *h, const char *name, unsigned index,
                       struct vm_task_ctl *ctl, json_t **out)
{
    return transform(h, name, TRANSFORM_DISK_ENCRYPT, index, NULL, ctl, out);
}

RESULT vm_disk_decrypt(struct vm_host *h, const char *name, unsigned index,
                       struct vm_task_ctl *ctl, json_t **out)
{
    return transform(h, name, TRANSFORM_DISK_DECRYPT, index, NULL, ctl, out);
}

/* --- shallow rekey: new KEK, the small secrets re-wrapped, no data moves --- */

static RESULT rekey_shallow(struct vm_host *h, const char *name, const char *provider,
                            json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL, *nd = NULL;
    struct vm_keys *k = NULL;
    bool started = false;

    GUARD(vm_check_name("VM", name));
    GUARD(vm_lock(h, name));
    d = calloc(1, sizeof *d);
    nd = calloc(1, sizeof *nd);
    ENSURE_OUT(d != NULL && nd != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, name, d, &k));
    if (!d->encrypted) {
        rc = state_error("VM '%s' is not encrypted", name);
        goto out;
    }
    GUARD_OUT(require_not_linked(d, "rekey"));
    if (!vm_rekey_allowed(d)) {
        rc = state_error("VM '%s' has a snapshot tree with branches: shallow rekey needs a "
                         "single branch",
                         name);
        goto out;
    }
    GUARD_OUT(vm_op_begin(h, name, "rekey-shallow", NULL));
    started = true;
    *nd = *d;
    GUARD_OUT(new_kek(h, nd, provider != NULL ? provider : d->key.provider));
    struct buf w;
    buf_wrap(&w, nd->wrapped_file_key, sizeof nd->wrapped_file_key);
    GUARD_OUT(keyprov_wrap(h->kp, &nd->key, k->file_key, VM_FILE_KEY_LEN, &w));
    nd->wrapped_file_key_len = buf_len(&w);
    for (size_t i = 0; i < nd->layer_count; i++) {
        struct vm_layer *l = &nd->layers[i];
        if (l->wrapped_len == 0)
            continue;
        const uint8_t *s = vm_keys_secret(k, l->id);
        ENSURE_OUT(s != NULL, ERR_INTERNAL);
        buf_wrap(&w, l->wrapped_secret, sizeof l->wrapped_secret);
        GUARD_OUT(keyprov_wrap(h->kp, &nd->key, s, LUKS1_SECRET_LEN, &w));
        l->wrapped_len = buf_len(&w);
    }
    GUARD_OUT(vm_desc_save(h->datastore, nd, k->file_key));
    started = false;
    GUARD_OUT(vm_op_finish(h, nd));
    GUARD_OUT(vm_to_json(h, nd, k, out));
    log_info("vm rekeyed (shallow)", LOG_S("vm", name), LOG_S("provider", nd->key.provider),
             LOG_S("key", nd->key.key_id));
out:
    if (started)
        vm_op_abandon(h, d);
    vm_unlock(h, name);
    vm_keys_free(&k);
    free(d);
    free(nd);
    return rc;
}

RESULT vm_rekey(struct vm_host *h, const char *name, bool deep, const char *provider,
                struct vm_task_ctl *ctl, json_t **out)
{
    if (deep)
        return transform(h, name, TRANSFORM_DEEP_REKEY, 0, provider, ctl, out);
    return rekey_shallow(h, name, provider, out);
}

/* --- clone -------------------------------------------------------------------- */

/* Instant clone, first half: the source's current layers become a frozen,
 * shared base; the source goes on in new overlays. Commits the source. */
static RESULT instant_freeze_source(struct vm_host *h, struct vm_desc *sd, struct vm_keys *sk,
                                    const char *dst)
{
    if (sd->dependent_count >= VM_MAX_DEPENDENTS) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("VM '%s' has %d instant clones already", sd->name, VM_MAX_DEPENDENTS);
    }
    for (unsigned i = 0; i < sd->disk_count; i++) {
        struct vm_layer *chain[DISK_CHAIN_MAX];
        size_t n;
        GUARD(vm_desc_chain(sd, i, chain, &n));
        for (size_t j = 0; j < n; j++)
            chain[j]->shared = true;
        GUARD(vm_add_overlay(h, sd, sk, i, chain[0]->id));
    }
    snprintf(sd->dependents[sd->dependent_count++], VM_NAME_MAX, "%s", dst);
    return vm_desc_save(h->datastore, sd, sd->encrypted ? sk->file_key : NULL);
}

RESULT vm_clone(struct vm_host *h, const char *src, const char *dst, enum vm_clone_mode mode,
                const char *provider, bool instant, struct vm_task_ctl *ctl, json_t **out)
{
    static const char *const modes[] = {"keep", "encrypt", "decrypt", "recrypt"};
    vs_result rc = OK_RESULT;
    struct vm_desc *sd = NULL, *dd = NULL;
    struct vm_keys *sk = NULL, *dk = NULL;
    uint8_t *dek = NULL;
    bool src_locked = false, dst_locked = false, made_dir = false;
    char dir[VM_PATH_MAX];

    GUARD(vm_check_name("VM", src));
    GUARD(vm_check_name("VM", dst));
    if (strcmp(src, dst) == 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a clone needs a new name");
    }
    if (instant && mode != VM_CLONE_KEEP) {
        RAISE(ERR_VM_STATE);
        return err_detail("an instant clone shares its source's keys: it cannot %s",
                          modes[mode]);
    }
    if (provider != NULL && mode != VM_CLONE_ENCRYPT && mode != VM_CLONE_RECRYPT) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("--provider goes with --encrypt or --recrypt");
    }
    GUARD(vm_lock(h, src));
    src_locked = true;
    GUARD_OUT(vm_lock(h, dst));
    dst_locked = true;
    sd = calloc(1, sizeof *sd);
    dd = calloc(1, sizeof *dd);
    ENSURE_OUT(sd != NULL && dd != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, src, sd, &sk));
    GUARD_OUT(vm_keys_alloc(&dk));
    GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&dek));
    GUARD_OUT(vm_require_off(h, sd));
    if ((mode == VM_CLONE_ENCRYPT && sd->encrypted) ||
        ((mode == VM_CLONE_DECRYPT || mode == VM_CLONE_RECRYPT) && !sd->encrypted)) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("VM '%s' is %s: a clone cannot %s it", src,
                   sd->encrypted ? "encrypted" : "not encrypted", modes[mode]);
        goto out;
    }
    if (instant) {
        if (sd->template_) {
            rc = state_error("VM '%s' is a template: make full clones of it", src);
            goto out;
        }
        if (sd->instant_clone_of[0] != '\0') {
            rc = RAISE(ERR_VM_STATE);
            err_detail("VM '%s' is itself an instant clone of '%s'", src, sd->instant_clone_of);
            goto out;
        }
    } else {
        GUARD_OUT(require_no_snapshots(sd));
    }

    GUARD_OUT(vm_path(dir, sizeof dir, "%s/%s", h->datastore, dst));
    if (mkdir(dir, 0700) != 0) {
        rc = RAISE(errno == EEXIST ? ERR_EXISTS : ERR_IO);
        if (errno == EEXIST)
            err_detail("a VM named '%s' exists", dst);
        else
            err_errno(errno);
        goto out;
    }
    made_dir = true;
    GUARD_OUT(file_fsync_dir(h->datastore));
    GUARD_OUT(vm_op_begin(h, dst, instant ? "clone-instant" : "clone", NULL));

    snprintf(dd->name, sizeof dd->name, "%s", dst);
    GUARD_OUT(vm_uuid_new(dd->uuid));
    vm_time_now(dd->created);
    dd->next_layer = sd->next_layer + (instant ? sd->disk_count : 0);
    switch (mode) {
    case VM_CLONE_KEEP:
        dd->encrypted = sd->encrypted;
        dd->key = sd->key;
        memcpy(dd->wrapped_file_key, sd->wrapped_file_key, sd->wrapped_file_key_len);
        dd->wrapped_file_key_len = sd->wrapped_file_key_len;
        memcpy(dk->file_key, sk->file_key, VM_FILE_KEY_LEN);
        dk->have_file_key = sk->have_file_key;
        break;
    case VM_CLONE_ENCRYPT:
    case VM_CLONE_RECRYPT:
        dd->encrypted = true;
        GUARD_OUT(new_kek(h, dd, provider != NULL ? provider
                                 : mode == VM_CLONE_RECRYPT ? sd->key.provider
                                                            : NULL));
        GUARD_OUT(new_file_key(h, dd, dk));
        break;
    case VM_CLONE_DECRYPT:
        dd->encrypted = false;
        break;
    }

    if (instant) {
        GUARD_OUT(instant_freeze_source(h, sd, sk, dst));
        snprintf(dd->instant_clone_of, sizeof dd->instant_clone_of, "%s", src);
        dd->disk_count = sd->disk_count;
        for (unsigned i = 0; i < sd->disk_count; i++) {
            struct vm_layer *chain[DISK_CHAIN_MAX];
            size_t n;
            GUARD_OUT(vm_desc_chain(sd, i, chain, &n));
            /* chain[0] is the source's new overlay; chain[1..] the frozen base. */
            for (size_t j = n; j-- > 1;) {
                ENSURE_OUT(dd->layer_count < VM_MAX_LAYERS, ERR_TOO_LARGE);
                struct vm_layer *l = &dd->layers[dd->layer_count++];
                *l = *chain[j];
                l->foreign = true;
                l->shared = true;
                if (chain[j]->wrapped_len > 0)
                    GUARD_OUT(vm_keys_put(dk, l->id, vm_keys_secret(sk, l->id)));
            }
            dd->disks[i].size = sd->disks[i].size;
            GUARD_OUT(vm_add_overlay(h, dd, dk, i, chain[1]->id));
        }
    } else {
        struct progress_agg pa = {.ctl = ctl};
        for (unsigned i = 0; i < sd->disk_count; i++)
            pa.total += sd->disks[i].size;
        dd->disk_count = sd->disk_count;
        for (unsigned i = 0; i < sd->disk_count; i++) {
            struct vm_layer *sl = vm_desc_layer(sd, sd->disks[i].active), *l;
            char from[VM_PATH_MAX], to[VM_PATH_MAX];
            GUARD_OUT(layer_path(h, sl, from, sizeof from));
            dd->disks[i].size = sd->disks[i].size;
            if (mode == VM_CLONE_KEEP) {
                /* Same keys: the same LUKS image, byte for byte. */
                GUARD_OUT(vm_desc_add_layer(dd, i, &l));
                l->format = sl->format;
                memcpy(l->wrapped_secret, sl->wrapped_secret, sl->wrapped_len);
                l->wrapped_len = sl->wrapped_len;
                GUARD_OUT(vm_path(l->file, sizeof l->file, "%s/disk%u-%s.img", dst, i, l->id));
                GUARD_OUT(layer_path(h, l, to, sizeof to));
                GUARD_OUT(copy_file_bytes(h, from, to, &pa));
            } else {
                /* Recrypt keeps a plaintext disk plaintext (a per-disk
                 * policy); encrypt encrypts every disk, decrypt none. */
                bool enc = mode == VM_CLONE_ENCRYPT ||
                           (mode == VM_CLONE_RECRYPT && vm_disk_encrypted(sd, i));
                const uint8_t *secret;
                GUARD_OUT(layer_secret(sk, sl, &secret));
                GUARD_OUT(create_base(h, dd, dk, i, sd->disks[i].size, enc, dek, &l));
                GUARD_OUT(layer_path(h, l, to, sizeof to));
                GUARD_OUT(copy_guest(h, from, secret, to, enc ? dek : NULL, sd->disks[i].size,
                                     &pa));
            }
            snprintf(dd->disks[i].active, VM_LAYER_ID_MAX, "%s", l->id);
        }
    }
    GUARD_OUT(vm_reseal(h, sd, sk, dd, dk, "config", sd->config_file, dd->config_file));
    GUARD_OUT(vm_reseal(h, sd, sk, dd, dk, "nvram", sd->nvram_file, dd->nvram_file));
    GUARD_OUT(vm_desc_save(h->datastore, dd, dd->encrypted ? dk->file_key : NULL));
    made_dir = false;
    GUARD_OUT(vm_op_finish(h, dd));
    report(ctl, 100);
    GUARD_OUT(vm_to_json(h, dd, dk, out));
    log_info("vm cloned", LOG_S("source", src), LOG_S("clone", dst), LOG_S("mode", modes[mode]),
             LOG_S("instant", instant ? "yes" : "no"));
out:
    if (made_dir) {
        struct err_state saved = *err_last();
        result_ignore(vm_remove_dir(h, dst));
        if (instant)
            result_ignore(vm_prune_dependents(h, src));
        (void)err_restore(&saved);
    }
    if (dst_locked)
        vm_unlock(h, dst);
    if (src_locked)
        vm_unlock(h, src);
    secret_free((void **)&dek);
    vm_keys_free(&sk);
    vm_keys_free(&dk);
    free(sd);
    free(dd);
    return rc;
}

/* --- template, add disk, export, disk secret ------------------------------- */

RESULT vm_set_template(struct vm_host *h, const char *name, bool on, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc))
        rc = vm_require_off(h, d);
    if (is_ok(rc) && on && vm_is_linked(d)) {
        rc = state_error("VM '%s' is linked to instant clones: it cannot be a template", name);
    }
    if (is_ok(rc)) {
        d->template_ = on;
        rc = vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL);
    }
    if (is_ok(rc))
        rc = vm_to_json(h, d, k, out);
    vm_unlock(h, name);
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}

RESULT vm_add_disk(struct vm_host *h, const char *name, uint64_t size, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    uint8_t *dek = NULL;
    bool started = false;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    if (size == 0 || size % 512 != 0 || size > VM_MAX_DISK_SIZE) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("disk sizes are whole 512-byte sectors, up to 64 TiB");
        goto out;
    }
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc))
        rc = vm_require_off(h, d);
    if (is_ok(rc) && d->snapshot_count > 0)
        rc = state_error("VM '%s' has snapshots: delete them before adding a disk", name);
    if (is_ok(rc) && d->disk_count >= VM_MAX_DISKS) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("a VM has at most %d disks", VM_MAX_DISKS);
    }
    if (is_ok(rc))
        rc = secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&dek);
    if (is_ok(rc))
        rc = vm_op_begin(h, name, "add-disk", NULL);
    started = is_ok(rc);
    if (is_ok(rc)) {
        struct vm_desc committed = *d;
        struct vm_layer *l;
        unsigned i = (unsigned)d->disk_count;
        d->disk_count++;
        d->disks[i].size = size;
        rc = create_base(h, d, k, i, size, d->encrypted, dek, &l); /* as vSphere: encrypted in an encrypted VM */
        if (is_ok(rc)) {
            snprintf(d->disks[i].active, VM_LAYER_ID_MAX, "%s", l->id);
            rc = vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL);
        }
        if (is_ok(rc)) {
            started = false;
            rc = vm_op_finish(h, d);
        } else {
            vm_op_abandon(h, &committed);
            started = false;
        }
    }
    if (is_ok(rc))
        rc = vm_to_json(h, d, k, out);
    if (started)
        vm_op_abandon(h, d);
    vm_unlock(h, name);
out:
    secret_free((void **)&dek);
    vm_keys_free(&k);
    free(d);
    return rc;
}

/* The layers of a disk as the disk room describes them. */
RESULT vm_disk_chain(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                     unsigned disk, char paths[DISK_CHAIN_MAX][VM_PATH_MAX],
                     struct disk_layer chain[DISK_CHAIN_MAX], size_t *n)
{
    struct vm_layer *ls[DISK_CHAIN_MAX];
    GUARD(vm_desc_chain(d, disk, ls, n));
    for (size_t i = 0; i < *n; i++) {
        GUARD(layer_path(h, ls[i], paths[i], VM_PATH_MAX));
        chain[i].path = paths[i];
        chain[i].format = ls[i]->format;
        chain[i].secret = NULL;
        if (ls[i]->wrapped_len > 0) {
            chain[i].secret = vm_keys_secret(k, ls[i]->id);
            ENSURE(chain[i].secret != NULL, ERR_INTERNAL);
        }
    }
    return OK_RESULT;
}

/* Creates overlay o's file on top of the chain below it. */
RESULT vm_create_overlay(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                         struct vm_layer *o, const uint8_t *secret)
{
    static char paths[DISK_CHAIN_MAX][VM_PATH_MAX];
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct disk_layer chain[DISK_CHAIN_MAX];
    struct vm_layer *p = vm_desc_layer(d, o->parent);
    char path[VM_PATH_MAX];
    size_t n = 0;
    ENSURE(p != NULL, ERR_INTERNAL);
    GUARD(layer_path(h, o, path, sizeof path));
    pthread_mutex_lock(&mu);
    vs_result rc = OK_RESULT;
    /* The chain below o: from p down. With o on top it must stay within
     * DISK_CHAIN_MAX layers, or the descriptor committed next would never
     * load again (vm_desc_chain refuses it). */
    struct vm_layer *l = p;
    while (l != NULL && is_ok(rc)) {
        if (n == DISK_CHAIN_MAX - 1) {
            rc = RAISE(ERR_VM_STATE);
            err_detail("disk %u of VM '%s' has %d layers, the most it may have: delete "
                       "snapshots or instant clones first",
                       o->disk, d->name, DISK_CHAIN_MAX);
            break;
        }
        rc = layer_path(h, l, paths[n], VM_PATH_MAX);
        chain[n].path = paths[n];
        chain[n].format = l->format;
        chain[n].secret = l->wrapped_len > 0 ? vm_keys_secret(k, l->id) : NULL;
        if (l->wrapped_len > 0 && chain[n].secret == NULL)
            rc = RAISE(ERR_INTERNAL);
        n++;
        l = l->parent[0] != '\0' ? vm_desc_layer(d, l->parent) : NULL;
    }
    if (is_ok(rc))
        rc = disk_image_create_overlay(path, chain, n, secret);
    pthread_mutex_unlock(&mu);
    return rc;
}

RESULT vm_add_overlay(struct vm_host *h, struct vm_desc *d, struct vm_keys *k, unsigned disk,
                      const char *parent)
{
    char parent_id[VM_LAYER_ID_MAX];
    snprintf(parent_id, sizeof parent_id, "%s", parent); /* parent may point into d */
    struct vm_layer *p = vm_desc_layer(d, parent_id), *o;
    ENSURE(p != NULL && p->disk == disk, ERR_INTERNAL);
    /* The overlay is encrypted when the layer below it is: a disk is
     * encrypted or not as a whole (descriptor.h). */
    bool encrypted = vm_format_encrypted(p->format);
    uint8_t secret[LUKS1_SECRET_LEN];
    GUARD(vm_desc_add_layer(d, disk, &o));
    snprintf(o->parent, sizeof o->parent, "%s", parent_id);
    GUARD(vm_path(o->file, sizeof o->file, "%s/disk%u-%s.qcow2", d->name, disk, o->id));
    o->format = encrypted ? DISK_FORMAT_QCOW2_LUKS : DISK_FORMAT_QCOW2;
    if (encrypted)
        GUARD(vm_new_layer_secret(h, d, k, o, secret));
    vs_result rc = vm_create_overlay(h, d, k, o, encrypted ? secret : NULL);
    secret_wipe(secret, sizeof secret);
    GUARD(rc);
    snprintf(d->disks[disk].active, VM_LAYER_ID_MAX, "%s", o->id);
    return OK_RESULT;
}

RESULT vm_export_disk(struct vm_host *h, const char *name, unsigned index, const char *path,
                      struct vm_task_ctl *ctl, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    static char paths[DISK_CHAIN_MAX][VM_PATH_MAX];
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct disk_layer chain[DISK_CHAIN_MAX];
    size_t n;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    if (path[0] != '/') {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the export path must be absolute");
        goto out;
    }
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc))
        rc = vm_require_off(h, d);
    if (is_ok(rc) && index >= d->disk_count) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("VM '%s' has no disk %u", name, index);
    }
    if (is_ok(rc)) {
        pthread_mutex_lock(&mu);
        rc = vm_disk_chain(h, d, k, index, paths, chain, &n);
        if (is_ok(rc))
            rc = disk_image_export_raw(chain, n, path);
        pthread_mutex_unlock(&mu);
    }
    if (is_ok(rc)) {
        report(ctl, 100);
        *out = json_pack("{s:s, s:i, s:s, s:I}", "vm", name, "index", (int)index, "path", path,
                         "size", (json_int_t)d->disks[index].size);
        if (*out == NULL)
            rc = RAISE(ERR_NOMEM);
        log_info("disk exported in clear", LOG_S("vm", name), LOG_U("disk", index),
                 LOG_S("path", path));
    }
    vm_unlock(h, name);
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}

RESULT vm_disk_secret(struct vm_host *h, const char *name, unsigned index, const char *path,
                      json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    struct buf text = {0};
    json_t *layers = NULL;
    int fd = -1;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    if (path[0] != '/') {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("the path must be absolute");
        goto out;
    }
    GUARD_OUT(vm_load(h, name, d, &k));
    if (index >= d->disk_count) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("VM '%s' has no disk %u", name, index);
        goto out;
    }
    if (!d->encrypted) {
        rc = state_error("VM '%s' is not encrypted: its disks have no secret", name);
        goto out;
    }
    /* One line per encrypted layer of the disk's chain, top first:
     * "<file relative to the datastore> <LUKS passphrase>". A plaintext
     * disk of an encrypted VM has none: the file and the list are empty. */
    struct vm_layer *chain[DISK_CHAIN_MAX];
    size_t n;
    GUARD_OUT(vm_desc_chain(d, index, chain, &n));
    GUARD_OUT(buf_alloc_secret(&text, 4096, 64 * 1024));
    layers = json_array();
    ENSURE_OUT(layers != NULL, ERR_NOMEM);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s;
        char pass[LUKS1_PASSPHRASE_LEN + 1];
        GUARD_OUT(layer_secret(k, chain[i], &s));
        if (s == NULL)
            continue;
        GUARD_OUT(luks1_passphrase(s, pass));
        rc = buf_write_bytes(&text, chain[i]->file, strlen(chain[i]->file));
        if (is_ok(rc))
            rc = buf_write_u8(&text, ' ');
        if (is_ok(rc))
            rc = buf_write_bytes(&text, pass, LUKS1_PASSPHRASE_LEN);
        if (is_ok(rc))
            rc = buf_write_u8(&text, '\n');
        secret_wipe(pass, sizeof pass);
        GUARD_OUT(rc);
        json_array_append_new(layers, json_pack("{s:s, s:s}", "file", chain[i]->file, "format",
                                                vm_format_name(chain[i]->format)));
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = RAISE(errno == EEXIST ? ERR_EXISTS : ERR_IO);
        err_errno(errno);
        goto out;
    }
    if (write(fd, buf_data(&text), buf_len(&text)) != (ssize_t)buf_len(&text) || fsync(fd) != 0) {
        (void)unlink(path);
        rc = RAISE(ERR_IO);
        err_errno(errno);
        goto out;
    }
    *out = json_pack("{s:s, s:i, s:s, s:O}", "vm", name, "index", (int)index, "path", path,
                     "layers", layers);
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
    log_warn("disk passphrases written for break-glass access", LOG_S("vm", name),
             LOG_U("disk", index), LOG_S("path", path));
out:
    if (fd >= 0)
        close(fd);
    json_decref(layers);
    buf_free(&text);
    vm_keys_free(&k);
    free(d);
    return rc;
}

/* --- delete ---------------------------------------------------------------- */

/* Removes dependents of `name` that no longer exist, and the shared marks
 * when none is left. */
RESULT vm_prune_dependents(struct vm_host *h, const char *name)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, name, d, &k));
    size_t kept = 0;
    for (size_t i = 0; i < d->dependent_count; i++) {
        char path[VM_PATH_MAX];
        struct stat st;
        GUARD_OUT(vm_path(path, sizeof path, "%s/%s/vm.json", h->datastore, d->dependents[i]));
        if (stat(path, &st) == 0)
            memmove(d->dependents[kept++], d->dependents[i], VM_NAME_MAX);
    }
    if (kept == d->dependent_count)
        goto out;
    d->dependent_count = kept;
    if (kept == 0)
        for (size_t i = 0; i < d->layer_count; i++)
            d->layers[i].shared = false;
    GUARD_OUT(vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL));
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}

RESULT vm_delete(struct vm_host *h, const char *name, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    char dir[VM_PATH_MAX], trash[VM_PATH_MAX];
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc))
        rc = vm_require_off(h, d);
    if (is_ok(rc) && d->dependent_count > 0) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("VM '%s' has instant clones (%s%s) that read its disks: delete them first",
                   name, d->dependents[0], d->dependent_count > 1 ? ", ..." : "");
    }
    if (is_ok(rc))
        rc = vm_path(dir, sizeof dir, "%s/%s", h->datastore, name);
    if (is_ok(rc))
        rc = vm_path(trash, sizeof trash, "%s/.trash-%s", h->datastore, d->uuid);
    /* One rename makes the VM disappear; the files go after. Recovery
     * empties any .trash-* left by a crash. */
    if (is_ok(rc) && rename(dir, trash) != 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
    }
    if (is_ok(rc))
        rc = file_fsync_dir(h->datastore);
    if (is_ok(rc)) {
        result_ignore(rm_vm_dir(trash));
        if (d->instant_clone_of[0] != '\0') {
            vs_result pr = vm_lock(h, d->instant_clone_of);
            if (is_ok(pr)) {
                pr = vm_prune_dependents(h, d->instant_clone_of);
                vm_unlock(h, d->instant_clone_of);
            }
            if (!is_ok(pr)) {
                log_warn("source of an instant clone not updated; done at next start",
                         LOG_S("vm", d->instant_clone_of), LOG_ERR());
                err_clear();
            }
        }
        *out = json_pack("{s:s, s:s, s:o, s:o}", "name", name, "uuid", d->uuid, "provider",
                         d->encrypted ? json_string(d->key.provider) : json_null(), "key_id",
                         d->encrypted ? json_string(d->key.key_id) : json_null());
        if (*out == NULL)
            rc = RAISE(ERR_NOMEM);
        log_info("vm deleted; its key stays at the provider", LOG_S("vm", name));
    }
    vm_unlock(h, name);
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}
