/*
 * host.h - internals shared by the vm room's files (not a public API).
 */
#ifndef VMSEAL_VM_HOST_H
#define VMSEAL_VM_HOST_H

#include <pthread.h>
#include <sys/types.h>

#include "vm/descriptor.h"
#include "vm/journal.h"
#include "vm/vm.h"

#define VM_HOST_MAX_VMS 256 /* running, busy or locked at once */
#define VM_HOST_MAX_INVENTORY 100000 /* VMs in one datastore */
#define VM_MAX_CPUS 64

struct vm_running {
    char name[VM_NAME_MAX];
    char uuid[VM_UUID_LEN + 1];
    pid_t pid;
    bool is_child; /* started by this process (waitpid), else polled */
};

struct vm_locked {
    char name[VM_NAME_MAX];
    char reason[256];
};

struct vm_recovered {
    char name[VM_NAME_MAX];
    enum vm_recovery outcome;
};

struct vm_host {
    char data_dir[VM_PATH_MAX];
    char datastore[VM_PATH_MAX]; /* DATA_DIR/vms */
    char runtime_dir[VM_PATH_MAX];
    char qemu[VM_PATH_MAX];
    char ovmf_code[VM_PATH_MAX];
    char ovmf_vars[VM_PATH_MAX];
    char accel[8]; /* "auto", "kvm" or "tcg" */
    unsigned engine_threads;
    struct keyprov *kp;

    pthread_mutex_t mu; /* guards everything below */
    char busy[VM_HOST_MAX_VMS][VM_NAME_MAX];
    size_t busy_count;
    struct vm_running running[VM_HOST_MAX_VMS];
    size_t running_count;
    struct vm_locked locked[VM_HOST_MAX_VMS];
    size_t locked_count;
    struct vm_recovered recovered[VM_HOST_MAX_VMS]; /* recover.c: what recovery did */
    size_t recovered_count;
    pthread_mutex_t keys_mu; /* keys.json */
};

/* The secrets of one open VM, in secret memory. */
struct vm_secret_entry {
    char id[VM_LAYER_ID_MAX];
    uint8_t secret[LUKS1_SECRET_LEN];
};
struct vm_keys {
    uint8_t file_key[VM_FILE_KEY_LEN];
    bool have_file_key;
    size_t count;
    struct vm_secret_entry e[VM_MAX_LAYERS];
};

/* vm.c: locks, keys, files */
RESULT vm_lock(struct vm_host *h, const char *name) __attribute__((nonnull));
void vm_unlock(struct vm_host *h, const char *name) __attribute__((nonnull));
/* Tries to fetch a locked VM's KEK: true (and no longer locked) on success. */
bool vm_try_unlock(struct vm_host *h, const char *name) __attribute__((nonnull));
bool vm_locked_reason(struct vm_host *h, const char *name, char *reason, size_t size)
    __attribute__((nonnull));
RESULT vm_keys_alloc(struct vm_keys **out) __attribute__((nonnull));
void vm_keys_free(struct vm_keys **k);
const uint8_t *vm_keys_secret(const struct vm_keys *k, const char *id) __attribute__((nonnull));
RESULT vm_keys_put(struct vm_keys *k, const char *id, const uint8_t secret[LUKS1_SECRET_LEN])
    __attribute__((nonnull));
RESULT vm_keys_open(struct vm_host *h, const struct vm_desc *d, const uint8_t tag[32],
                    struct vm_keys **out) __attribute__((nonnull));
/* Loads vm.json, fetches the KEK, checks the tag, unwraps every secret.
 * ERR_NOT_FOUND ("no VM named"), ERR_VM_LOCKED, ERR_DESCRIPTOR. */
RESULT vm_load(struct vm_host *h, const char *name, struct vm_desc *d, struct vm_keys **keys)
    __attribute__((nonnull));
/* A fresh random disk secret for layer l, wrapped under d's KEK into l,
 * kept in k and copied to secret (wiped on failure). */
RESULT vm_new_layer_secret(struct vm_host *h, struct vm_desc *d, struct vm_keys *k,
                           struct vm_layer *l, uint8_t secret[LUKS1_SECRET_LEN])
    __attribute__((nonnull));
RESULT vm_reseal(struct vm_host *h, const struct vm_desc *from, const struct vm_keys *from_keys,
                 const struct vm_desc *to, const struct vm_keys *to_keys, const char *kind,
                 const char *file, char out[VM_FILE_MAX]) __attribute__((nonnull));
RESULT vm_config_write(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                       uint64_t memory, unsigned cpus) __attribute__((nonnull));
RESULT vm_config_read(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                      uint64_t *memory, unsigned *cpus) __attribute__((nonnull));
RESULT vm_to_json(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k, json_t **out)
    __attribute__((nonnull(1, 2, 4)));
/* The names of the VMs in the datastore, sorted: *names is a new array of
 * *count names (free it), NULL when there are none. At most
 * VM_HOST_MAX_INVENTORY. */
RESULT vm_list_names(struct vm_host *h, char (**names)[VM_NAME_MAX], size_t *count)
    __attribute__((nonnull));
bool vm_is_linked(const struct vm_desc *d) __attribute__((nonnull));
bool vm_rekey_allowed(const struct vm_desc *d) __attribute__((nonnull));

/* vm.c: an operation writes its intent (begin), prepares new files, commits
 * by saving vm.json, then drops what vm.json no longer references and the
 * journal (finish). A failure before the commit drops the new files and the
 * journal (abandon, given the descriptor as committed), keeping the error. */
RESULT vm_op_begin(struct vm_host *h, const char *name, const char *op, const char *snapshot)
    __attribute__((nonnull(1, 2, 3)));
RESULT vm_op_finish(struct vm_host *h, const struct vm_desc *d) __attribute__((nonnull));
void vm_op_abandon(struct vm_host *h, const struct vm_desc *committed) __attribute__((nonnull));

/* ops.c, shared with snapshots and recovery */
/* ERR_VM_STATE ("VM 'x' is running: power it off first") unless d is off. */
RESULT vm_require_off(struct vm_host *h, const struct vm_desc *d) __attribute__((nonnull));
RESULT vm_create_overlay(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                         struct vm_layer *o, const uint8_t *secret)
    __attribute__((nonnull(1, 2, 3, 4)));
/* A new qcow2 overlay on layer `parent` of disk `disk`, which becomes the
 * disk's active layer: LUKS-encrypted with a new secret (wrapped under d's
 * KEK, kept in k) when the parent is encrypted, plaintext otherwise. */
RESULT vm_add_overlay(struct vm_host *h, struct vm_desc *d, struct vm_keys *k, unsigned disk,
                      const char *parent) __attribute__((nonnull));
RESULT vm_disk_chain(struct vm_host *h, struct vm_desc *d, const struct vm_keys *k,
                     unsigned disk, char paths[DISK_CHAIN_MAX][VM_PATH_MAX],
                     struct disk_layer chain[DISK_CHAIN_MAX], size_t *n) __attribute__((nonnull));
RESULT vm_prune_dependents(struct vm_host *h, const char *name) __attribute__((nonnull));
RESULT vm_remove_dir(struct vm_host *h, const char *name) __attribute__((nonnull));

/* snap.c: the body of snapshot delete, also run by recovery */
RESULT vm_snapshot_delete_steps(struct vm_host *h, struct vm_desc *d, struct vm_keys *k,
                                const char *snap) __attribute__((nonnull));

/* recover.c */
void vm_host_recover_all(struct vm_host *h) __attribute__((nonnull));
RESULT vm_recover(struct vm_host *h, const char *name) __attribute__((nonnull));

/* keys.c: keys.json, the KEKs this host issued */
RESULT vm_keys_record(struct vm_host *h, const struct keyprov_ref *ref, const char *vm_name,
                      const char *vm_uuid) __attribute__((nonnull));

/* power.c */
RESULT vm_power_start(struct vm_host *h, struct vm_desc *d, struct vm_keys *k)
    __attribute__((nonnull));
RESULT vm_power_stop(struct vm_host *h, struct vm_desc *d, struct vm_keys *k, bool kill_qemu)
    __attribute__((nonnull));
void vm_power_scan(struct vm_host *h) __attribute__((nonnull));
bool vm_is_running(struct vm_host *h, const char *name) __attribute__((nonnull));
bool vm_running_exited(struct vm_host *h, const char *name) __attribute__((nonnull));

/* vm.c, used by power.c */
RESULT vm_seal_file(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                    const char *kind, const void *data, size_t len, char file_out[VM_FILE_MAX])
    __attribute__((nonnull));
RESULT vm_open_file(struct vm_host *h, const struct vm_desc *d, const struct vm_keys *k,
                    const char *kind, const char *file, struct buf *out) __attribute__((nonnull));
RESULT vm_gc(struct vm_host *h, const struct vm_desc *d) __attribute__((nonnull));

#endif
