/* snap.c - snapshots: create, revert, delete (consolidate). See vm.h.
 *
 * A disk is a tree of layers. Taking a snapshot freezes each disk's
 * active layer and puts a new qcow2 overlay on it (LUKS-encrypted with its
 * own secret when the disk is encrypted). Reverting puts a new overlay on the
 * snapshot's frozen layers and drops the current one. Deleting a snapshot
 * drops the layers only it kept (the frozen top of a branch a revert left),
 * then merges, where it can, the one layer above the remaining frozen layer
 * into it (qemu-img commit), so that chains do not grow without end; a
 * frozen layer with several children or shared with instant clones is left
 * as it is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "disk/image.h"
#include "vm/host.h"
#include "vm/vm.h"

#define NVRAM_COPY_MAX (16u << 20)

static RESULT copy_small_file(struct vm_host *h, const char *from, const char *to)
{
    char src[VM_PATH_MAX], dst[VM_PATH_MAX];
    struct buf b = {0};
    vs_result rc = OK_RESULT;
    GUARD(vm_path(src, sizeof src, "%s/%s", h->datastore, from));
    GUARD(vm_path(dst, sizeof dst, "%s/%s", h->datastore, to));
    GUARD(buf_alloc(&b, 65536, NVRAM_COPY_MAX));
    GUARD_OUT(file_read_all(src, NVRAM_COPY_MAX, &b));
    GUARD_OUT(file_write_atomic(dst, buf_data(&b), buf_len(&b), 0600));
out:
    buf_free(&b);
    return rc;
}

static RESULT load_off(struct vm_host *h, const char *name, struct vm_desc *d,
                       struct vm_keys **k)
{
    GUARD(vm_load(h, name, d, k));
    return vm_require_off(h, d);
}

RESULT vm_snapshot_create(struct vm_host *h, const char *name, const char *snap, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL, *committed = NULL;
    struct vm_keys *k = NULL;
    bool started = false;
    GUARD(vm_check_name("VM", name));
    GUARD(vm_check_name("snapshot", snap));
    GUARD(vm_lock(h, name));
    d = calloc(1, sizeof *d);
    committed = calloc(1, sizeof *committed);
    ENSURE_OUT(d != NULL && committed != NULL, ERR_NOMEM);
    GUARD_OUT(load_off(h, name, d, &k));
    if (vm_desc_snapshot(d, snap) != NULL) {
        rc = RAISE(ERR_EXISTS);
        err_detail("VM '%s' has a snapshot named '%s'", name, snap);
        goto out;
    }
    if (d->snapshot_count >= VM_MAX_SNAPSHOTS) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("VM '%s' has %d snapshots, the most it may have", name, VM_MAX_SNAPSHOTS);
        goto out;
    }
    *committed = *d;
    GUARD_OUT(vm_op_begin(h, name, "snapshot-create", snap));
    started = true;
    struct vm_snapshot *s = &d->snapshots[d->snapshot_count];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", snap);
    vm_time_now(s->created);
    for (unsigned i = 0; i < d->disk_count; i++) {
        memcpy(s->layers[i], d->disks[i].active, VM_LAYER_ID_MAX);
        GUARD_OUT(vm_add_overlay(h, d, k, i, s->layers[i]));
    }
    if (d->nvram_file[0] != '\0') {
        GUARD_OUT(vm_path(s->nvram_file, sizeof s->nvram_file, "%s/snap-%s.nvram", name, snap));
        GUARD_OUT(copy_small_file(h, d->nvram_file, s->nvram_file));
    }
    d->snapshot_count++;
    GUARD_OUT(vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL));
    started = false;
    GUARD_OUT(vm_op_finish(h, d));
    GUARD_OUT(vm_to_json(h, d, k, out));
    log_info("snapshot created", LOG_S("vm", name), LOG_S("snapshot", snap));
out:
    if (started)
        vm_op_abandon(h, committed);
    vm_unlock(h, name);
    vm_keys_free(&k);
    free(d);
    free(committed);
    return rc;
}

RESULT vm_snapshot_revert(struct vm_host *h, const char *name, const char *snap, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL, *committed = NULL;
    struct vm_keys *k = NULL;
    bool started = false;
    GUARD(vm_check_name("VM", name));
    GUARD(vm_check_name("snapshot", snap));
    GUARD(vm_lock(h, name));
    d = calloc(1, sizeof *d);
    committed = calloc(1, sizeof *committed);
    ENSURE_OUT(d != NULL && committed != NULL, ERR_NOMEM);
    GUARD_OUT(load_off(h, name, d, &k));
    const struct vm_snapshot *s = vm_desc_snapshot(d, snap);
    if (s == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("VM '%s' has no snapshot named '%s'", name, snap);
        goto out;
    }
    *committed = *d;
    GUARD_OUT(vm_op_begin(h, name, "snapshot-revert", snap));
    started = true;
    for (unsigned i = 0; i < d->disk_count; i++) {
        char old[VM_LAYER_ID_MAX];
        snprintf(old, sizeof old, "%s", d->disks[i].active);
        GUARD_OUT(vm_add_overlay(h, d, k, i, s->layers[i]));
        struct vm_layer *ol = vm_desc_layer(d, old);
        if (ol != NULL && !ol->shared && !vm_desc_layer_in_use(d, old))
            vm_desc_remove_layer(d, old);
    }
    if (s->nvram_file[0] != '\0') {
        GUARD_OUT(vm_path(d->nvram_file, sizeof d->nvram_file, "%s/nvram-%llu.%s", name,
                          (unsigned long long)d->generation + 1,
                          d->encrypted ? "enc" : "plain"));
        GUARD_OUT(copy_small_file(h, s->nvram_file, d->nvram_file));
    } else {
        d->nvram_file[0] = '\0';
    }
    GUARD_OUT(vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL));
    started = false;
    GUARD_OUT(vm_op_finish(h, d));
    GUARD_OUT(vm_to_json(h, d, k, out));
    log_info("reverted to snapshot", LOG_S("vm", name), LOG_S("snapshot", snap));
out:
    if (started)
        vm_op_abandon(h, committed);
    vm_unlock(h, name);
    vm_keys_free(&k);
    free(d);
    free(committed);
    return rc;
}

/* Replaces every reference to layer `from` by `to`. */
static void redirect(struct vm_desc *d, const char *from, const char *to)
{
    for (size_t i = 0; i < d->disk_count; i++)
        if (strcmp(d->disks[i].active, from) == 0)
            snprintf(d->disks[i].active, VM_LAYER_ID_MAX, "%s", to);
    for (size_t i = 0; i < d->snapshot_count; i++)
        for (size_t k = 0; k < d->disk_count; k++)
            if (strcmp(d->snapshots[i].layers[k], from) == 0)
                snprintf(d->snapshots[i].layers[k], VM_LAYER_ID_MAX, "%s", to);
    for (size_t i = 0; i < d->layer_count; i++)
        if (strcmp(d->layers[i].parent, from) == 0)
            snprintf(d->layers[i].parent, VM_LAYER_ID_MAX, "%s", to);
}

/* The body of snapshot delete, also run by recovery (roll forward): every
 * step is idempotent. Commits d. */
RESULT vm_snapshot_delete_steps(struct vm_host *h, struct vm_desc *d, struct vm_keys *k,
                                const char *snap)
{
    char snap_name[VM_NAME_MAX];
    snprintf(snap_name, sizeof snap_name, "%s", snap); /* snap may point into d */
    snap = snap_name;
    static char paths[DISK_CHAIN_MAX][VM_PATH_MAX];
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct vm_snapshot *s = NULL;
    size_t index = 0;
    for (size_t i = 0; i < d->snapshot_count; i++) {
        if (strcmp(d->snapshots[i].name, snap) == 0) {
            s = &d->snapshots[i];
            index = i;
        }
    }
    if (s == NULL) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("VM '%s' has no snapshot named '%s'", d->name, snap);
    }
    char frozen[VM_MAX_DISKS][VM_LAYER_ID_MAX];
    memcpy(frozen, s->layers, sizeof frozen);
    /* The snapshot's record goes first (in memory): then "in use" below
     * does not count it. */
    memmove(&d->snapshots[index], &d->snapshots[index + 1],
            (d->snapshot_count - index - 1) * sizeof d->snapshots[0]);
    d->snapshot_count--;

    for (unsigned i = 0; i < d->disk_count; i++) {
        struct vm_layer *p = vm_desc_layer(d, frozen[i]), *c = NULL;
        /* A layer only this snapshot kept (after a revert, the frozen top of
         * another branch: no child, not active, in no other snapshot) goes,
         * and then its parents while the same holds; their files go at the
         * commit (vm_gc). Left in place, they would keep a branch in the tree
         * that no snapshot delete could ever consolidate. */
        while (p != NULL && !p->shared && !p->foreign && !vm_desc_layer_in_use(d, p->id)) {
            char parent[VM_LAYER_ID_MAX];
            snprintf(parent, sizeof parent, "%s", p->parent);
            vm_desc_remove_layer(d, p->id);
            p = parent[0] != '\0' ? vm_desc_layer(d, parent) : NULL;
        }
        /* Then the first layer still in use: merged with its one child if
         * nothing else needs it. */
        if (p == NULL || p->shared || p->foreign || vm_desc_children(d, p->id) != 1)
            continue;
        bool p_referenced = false;
        for (size_t j = 0; j < d->snapshot_count; j++)
            p_referenced |= strcmp(d->snapshots[j].layers[i], p->id) == 0;
        if (p_referenced || strcmp(d->disks[i].active, p->id) == 0)
            continue;
        for (size_t j = 0; j < d->layer_count; j++)
            if (strcmp(d->layers[j].parent, p->id) == 0)
                c = &d->layers[j];
        if (c == NULL || c->shared || c->foreign)
            continue;
        /* Merge the child c into p: the chain seen from c is unchanged
         * while it runs, so a crash leaves c and its state intact. */
        struct disk_layer chain[DISK_CHAIN_MAX];
        size_t n = 0;
        struct vm_layer *l = c;
        pthread_mutex_lock(&mu);
        vs_result rc = OK_RESULT;
        while (l != NULL && is_ok(rc) && n < DISK_CHAIN_MAX) {
            rc = vm_path(paths[n], VM_PATH_MAX, "%s/%s", h->datastore, l->file);
            chain[n].path = paths[n];
            chain[n].format = l->format;
            chain[n].secret = l->wrapped_len > 0 ? vm_keys_secret(k, l->id) : NULL;
            n++;
            l = l->parent[0] != '\0' ? vm_desc_layer(d, l->parent) : NULL;
        }
        if (is_ok(rc))
            rc = disk_image_commit(chain, n);
        pthread_mutex_unlock(&mu);
        GUARD(rc);
        char cid[VM_LAYER_ID_MAX], pid[VM_LAYER_ID_MAX];
        snprintf(cid, sizeof cid, "%s", c->id);
        snprintf(pid, sizeof pid, "%s", p->id);
        vm_desc_remove_layer(d, cid);
        redirect(d, cid, pid);
    }
    return vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL);
}

RESULT vm_snapshot_delete(struct vm_host *h, const char *name, const char *snap, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = NULL;
    struct vm_keys *k = NULL;
    GUARD(vm_check_name("VM", name));
    GUARD(vm_check_name("snapshot", snap));
    GUARD(vm_lock(h, name));
    d = calloc(1, sizeof *d);
    ENSURE_OUT(d != NULL, ERR_NOMEM);
    GUARD_OUT(load_off(h, name, d, &k));
    if (vm_desc_snapshot(d, snap) == NULL) {
        rc = RAISE(ERR_NOT_FOUND);
        err_detail("VM '%s' has no snapshot named '%s'", name, snap);
        goto out;
    }
    /* From here the operation only goes forward: a crash is finished by
     * recovery (journal.h). */
    GUARD_OUT(vm_op_begin(h, name, "snapshot-delete", snap));
    GUARD_OUT(vm_snapshot_delete_steps(h, d, k, snap));
    GUARD_OUT(vm_op_finish(h, d));
    GUARD_OUT(vm_to_json(h, d, k, out));
    log_info("snapshot deleted", LOG_S("vm", name), LOG_S("snapshot", snap));
out:
    vm_unlock(h, name);
    vm_keys_free(&k);
    free(d);
    return rc;
}
