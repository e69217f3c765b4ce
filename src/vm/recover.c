/* recover.c - finishing interrupted operations at start (journal.h), and
 * the periodic tick: locked VMs retried, exited VMs powered off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

RESULT vm_recover(struct vm_host *h, const char *name)
{
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
        goto out;
    }
    d = calloc(1, sizeof *d);
    ENSURE_OUT(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_load(h, name, d, &k));
    if (strcmp(j.op, "snapshot-delete") == 0 && vm_desc_snapshot(d, j.snapshot) != NULL) {
        GUARD_OUT(vm_snapshot_delete_steps(h, d, k, j.snapshot));
        log_warn("rolled forward an interrupted snapshot delete", LOG_S("vm", name),
                 LOG_S("snapshot", j.snapshot));
    } else {
        log_warn("recovered an interrupted operation: vm.json says what stays",
                 LOG_S("vm", name), LOG_S("operation", j.op), LOG_S("started", j.started));
    }
    GUARD_OUT(vm_gc(h, d));
    GUARD_OUT(vm_journal_remove(h->datastore, name));
out:
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

void vm_host_recover_all(struct vm_host *h)
{
    DIR *dp = opendir(h->datastore);
    if (dp == NULL)
        return;
    static char names[VM_HOST_MAX_VMS][VM_NAME_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strncmp(e->d_name, ".trash-", 7) == 0) {
            /* A delete renamed the VM away, then stopped: finish it (never
             * through a symbolic link: vm_remove_dir removes the link). */
            result_ignore(vm_remove_dir(h, e->d_name));
            err_clear();
            continue;
        }
        if (is_ok(vm_check_name("VM", e->d_name)) && n < VM_HOST_MAX_VMS)
            memcpy(names[n++], e->d_name, strlen(e->d_name) + 1); /* checked length */
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
                rmdir(dir) == 0)
                log_warn("rolled back an interrupted create or clone", LOG_S("vm", names[i]));
            else
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
