/* recover.c - finishing interrupted operations at start (journal.h), and
 * the periodic tick: locked VMs retried, exited VMs powered off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/file.h"
#include "core/log.h"
#include "vm/host.h"
#include "vm/vm.h"

static bool exists(const char *datastore, const char *name, const char *file)
{
    char path[VM_PATH_MAX];
    struct stat st;
    return is_ok(vm_path(path, sizeof path, "%s/%s/%s", datastore, name, file)) &&
           stat(path, &st) == 0;
}

/* Records what recovery did with VM name (the last word wins: a pending VM
 * is recovered later by vm_host_tick). A full table drops the record (and
 * says so): the outcome then reads as none. */
static void record(struct vm_host *h, const char *name, enum vm_recovery outcome)
{
    bool full = false;
    pthread_mutex_lock(&h->mu);
    size_t i = 0;
    while (i < h->recovered_count && strcmp(h->recovered[i].name, name) != 0)
        i++;
    if (i == h->recovered_count) {
        if (i < VM_HOST_MAX_VMS && strlen(name) < VM_NAME_MAX) {
            memcpy(h->recovered[i].name, name, strlen(name) + 1);
            h->recovered_count++;
        } else {
            full = true;
        }
    }
    if (!full)
        h->recovered[i].outcome = outcome;
    pthread_mutex_unlock(&h->mu);
    if (full)
        log_warn("recovery outcome not recorded: too many VMs", LOG_S("vm", name));
}

RESULT vm_host_recovery_outcome(struct vm_host *h, const char *vm, enum vm_recovery *out)
{
    *out = VM_RECOVERY_NONE;
    GUARD(vm_check_name("VM", vm));
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->recovered_count; i++)
        if (strcmp(h->recovered[i].name, vm) == 0)
            *out = h->recovered[i].outcome;
    pthread_mutex_unlock(&h->mu);
    return OK_RESULT;
}

/* Whether the interrupted operation of journal j had committed: vm.json
 * replaced since the journal was written (journal.h). A journal from a
 * vmseald that did not record vm.json's generation is judged by the files'
 * times, which a commit within the same clock tick as the journal cannot
 * be told from: it reads as rolled back. */
static bool committed(struct vm_host *h, const char *name, const struct vm_journal *j,
                      const struct vm_desc *d)
{
    if (strcmp(j->op, "snapshot-delete") == 0)
        return true; /* only ever goes forward */
    if (j->has_generation)
        return d->generation > j->generation;
    char desc[VM_PATH_MAX], journal[VM_PATH_MAX];
    struct stat sd, sj;
    if (!is_ok(vm_path(desc, sizeof desc, "%s/%s/vm.json", h->datastore, name)) ||
        !is_ok(vm_path(journal, sizeof journal, "%s/%s/journal", h->datastore, name)) ||
        stat(desc, &sd) != 0 || stat(journal, &sj) != 0) {
        err_clear();
        return false;
    }
    return sd.st_mtim.tv_sec > sj.st_mtim.tv_sec ||
           (sd.st_mtim.tv_sec == sj.st_mtim.tv_sec && sd.st_mtim.tv_nsec > sj.st_mtim.tv_nsec);
}

RESULT vm_recover(struct vm_host *h, const char *name)
{
    enum vm_recovery outcome = VM_RECOVERY_NONE;
    vs_result rc = OK_RESULT;
    struct vm_journal j;
    struct vm_desc *d = NULL;
    struct vm_keys *k = NULL;

    GUARD(vm_lock(h, name));
    rc = vm_journal_read(h->datastore, name, &j);
    if (rc.code == ERR_NOT_FOUND) {
        err_clear();
        rc = OK_RESULT;
        goto out;
    }
    GUARD_OUT(rc);
    if (!exists(h->datastore, name, "vm.json")) {
        /* A create or clone that never committed: nothing to keep. */
        GUARD_OUT(vm_remove_dir(h, name));
        log_warn("rolled back an interrupted operation", LOG_S("vm", name),
                 LOG_S("operation", j.op), LOG_S("started", j.started));
        outcome = VM_RECOVERY_ROLLED_BACK;
        goto out;
    }
    d = calloc(1, sizeof *d);
    ENSURE_OUT(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, name, d, &k));
    bool forward = committed(h, name, &j, d);
    if (strcmp(j.op, "snapshot-delete") == 0 && vm_desc_snapshot(d, j.snapshot) != NULL) {
        GUARD_OUT(vm_snapshot_delete_steps(h, d, k, j.snapshot));
        log_warn("rolled forward an interrupted snapshot delete", LOG_S("vm", name),
                 LOG_S("snapshot", j.snapshot));
    } else {
        log_warn(forward ? "rolled forward an interrupted operation: vm.json had committed it"
                         : "rolled back an interrupted operation: vm.json had not committed it",
                 LOG_S("vm", name), LOG_S("operation", j.op), LOG_S("started", j.started));
    }
    /* Both directions drop what vm.json does not reference (journal.h). */
    GUARD_OUT(vm_gc(h, d));
    GUARD_OUT(vm_journal_remove(h->datastore, name));
    outcome = forward ? VM_RECOVERY_ROLLED_FORWARD : VM_RECOVERY_ROLLED_BACK;
out:
    /* A journal that stays (locked VM, failure) leaves the outcome to a
     * later attempt. */
    if (!is_ok(rc))
        record(h, name, VM_RECOVERY_PENDING);
    else if (outcome != VM_RECOVERY_NONE)
        record(h, name, outcome);
    vm_unlock(h, name);
    vm_keys_free(&k);
    free(d);
    return rc;
}

/* Leftovers of an atomic write cut short (file.h writes NAME.tmp-XXXX,
 * then renames): the journal itself may be one, written before anything
 * else, so they are removed whether or not a journal exists. */
static void remove_temporaries(struct vm_host *h, const char *name)
{
    char dir[VM_PATH_MAX];
    if (!is_ok(vm_path(dir, sizeof dir, "%s/%s", h->datastore, name)))
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* not via a link */
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (dp == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    bool removed = false;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strstr(e->d_name, ".tmp-") != NULL && unlinkat(dirfd(dp), e->d_name, 0) == 0)
            removed = true;
    closedir(dp);
    if (removed)
        result_ignore(file_fsync_dir(dir));
}

/* The name of the VM a delete renamed to DATASTORE/TRASH (its vm.json's
 * "name"), for the outcome of the delete's task. Read as plain JSON: the
 * directory is not where the descriptor's checks expect it. Not through a
 * link (recovery removes a planted one without reading it). */
static bool trash_vm_name(struct vm_host *h, const char *trash, char name[VM_NAME_MAX])
{
    char path[VM_PATH_MAX];
    struct stat st;
    bool found = false;
    if (!is_ok(vm_path(path, sizeof path, "%s/%s", h->datastore, trash)) ||
        lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) ||
        !is_ok(vm_path(path, sizeof path, "%s/%s/vm.json", h->datastore, trash)) ||
        lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > VM_DESC_MAX_BYTES) {
        err_clear();
        return false;
    }
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    const char *v = json_string_value(json_object_get(o, "name"));
    if (v != NULL && is_ok(vm_check_name("VM", v))) {
        memcpy(name, v, strlen(v) + 1); /* checked: shorter than VM_NAME_MAX */
        found = true;
    }
    err_clear();
    json_decref(o);
    return found;
}

void vm_host_recover_all(struct vm_host *h)
{
    DIR *dp = opendir(h->datastore);
    if (dp == NULL)
        return;
    char (*names)[VM_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strncmp(e->d_name, ".trash-", 7) == 0) {
            /* A delete renamed the VM away, then stopped: finish it (never
             * through a symbolic link: vm_remove_dir removes the link). */
            char deleted[VM_NAME_MAX];
            bool named = trash_vm_name(h, e->d_name, deleted);
            if (is_ok(vm_remove_dir(h, e->d_name)) && named)
                record(h, deleted, VM_RECOVERY_ROLLED_FORWARD);
            err_clear();
            continue;
        }
        if (is_ok(vm_check_name("VM", e->d_name))) {
            if (n == cap) {
                size_t ncap = cap == 0 ? 64 : cap * 2;
                void *p = ncap <= VM_HOST_MAX_INVENTORY ? reallocarray(names, ncap, sizeof *names)
                                                        : NULL;
                if (p == NULL) {
                    log_error("too many VMs to recover at once: the rest waits for the next "
                              "start",
                              LOG_I("vms", (long)n));
                    err_clear();
                    break;
                }
                names = p;
                cap = ncap;
            }
            memcpy(names[n++], e->d_name, strlen(e->d_name) + 1); /* checked length */
        }
        err_clear();
    }
    closedir(dp);
    for (size_t i = 0; i < n; i++) {
        remove_temporaries(h, names[i]);
        if (!exists(h->datastore, names[i], "vm.json") &&
            !exists(h->datastore, names[i], "journal")) {
            /* A create or clone killed before its journal: an empty
             * directory. Anything else is left for the operator. */
            char dir[VM_PATH_MAX];
            if (is_ok(vm_path(dir, sizeof dir, "%s/%s", h->datastore, names[i])) &&
                rmdir(dir) == 0) {
                log_warn("rolled back an interrupted create or clone", LOG_S("vm", names[i]));
                record(h, names[i], VM_RECOVERY_ROLLED_BACK);
            } else
                log_warn("directory without vm.json left as it is", LOG_S("vm", names[i]));
            err_clear();
            continue;
        }
        if (!exists(h->datastore, names[i], "journal"))
            continue;
        if (!is_ok(vm_recover(h, names[i]))) {
            log_warn("recovery postponed", LOG_S("vm", names[i]), LOG_ERR());
            err_clear();
        }
    }
    /* Instant-clone links to clones that never came to be. */
    for (size_t i = 0; i < n; i++) {
        if (!exists(h->datastore, names[i], "vm.json"))
            continue;
        struct vm_desc *d = calloc(1, sizeof *d);
        if (d != NULL && is_ok(vm_desc_load(h->datastore, names[i], d, NULL)) &&
            d->dependent_count > 0 && is_ok(vm_lock(h, names[i]))) {
            if (!is_ok(vm_prune_dependents(h, names[i])))
                log_warn("instant clone links not checked", LOG_S("vm", names[i]), LOG_ERR());
            vm_unlock(h, names[i]);
        }
        err_clear();
        free(d);
    }
    free(names);
}

void vm_host_tick(struct vm_host *h)
{
    static char names[VM_HOST_MAX_VMS][VM_NAME_MAX];
    size_t n = 0;
    /* VMs whose QEMU exited on its own (guest shutdown): power off. */
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->running_count; i++)
        snprintf(names[n++], VM_NAME_MAX, "%s", h->running[i].name);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        if (!vm_running_exited(h, names[i]) || !is_ok(vm_lock(h, names[i]))) {
            err_clear();
            continue;
        }
        struct vm_desc *d = calloc(1, sizeof *d);
        struct vm_keys *k = NULL;
        if (d != NULL && is_ok(vm_load(h, names[i], d, &k)) &&
            is_ok(vm_power_stop(h, d, k, false)))
            log_info("vm stopped by its guest", LOG_S("vm", names[i]));
        else
            err_clear();
        vm_unlock(h, names[i]);
        vm_keys_free(&k);
        free(d);
    }
    /* Locked VMs: retry their keys; recover what waited for them. */
    n = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->locked_count; i++)
        snprintf(names[n++], VM_NAME_MAX, "%s", h->locked[i].name);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        if (vm_try_unlock(h, names[i])) {
            log_info("vm unlocked: its key is available again", LOG_S("vm", names[i]));
            if (exists(h->datastore, names[i], "journal") && !is_ok(vm_recover(h, names[i])))
                log_warn("recovery postponed", LOG_S("vm", names[i]), LOG_ERR());
        }
        err_clear();
    }
}
