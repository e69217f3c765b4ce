/*
 * vm.h - the host engine: the VMs of one host, their files and disks, and
 * every operation on them with vSphere's rules (docs/encryption.md has the
 * table). vmseald serves it; nothing here knows about HTTP or users.
 *
 * Files: DATA_DIR/vms/NAME/ holds vm.json (descriptor.h), the config and
 * NVRAM files, the disk layers, console.log and, during an operation,
 * journal (journal.h). DATA_DIR/keys.json lists every KEK this host
 * issued and for which VM. Running VMs keep their decrypted NVRAM and
 * QEMU's pid under RUNTIME_DIR/UUID/ (a tmpfs).
 *
 * Every operation takes the VM's lock (ERR_BUSY if another operation holds
 * it), writes its journal, prepares new files, commits by replacing vm.json,
 * then removes what is no longer referenced. Operations that need keys
 * fetch the KEK through keyprov; a VM whose KEK cannot be fetched is
 * locked: ERR_VM_LOCKED, naming the provider and key.
 *
 * Results are jansson objects (the API's "vm" shape, docs/api.md), owned by
 * the caller.
 */
#ifndef VMSEAL_VM_VM_H
#define VMSEAL_VM_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/result.h"
#include "keyprov/keyprov.h"
#include "vm/descriptor.h"

struct vm_host_config {
    const char *data_dir;    /* required */
    const char *runtime_dir; /* NULL: /dev/shm/vmseald-<hash of data_dir>; must be a tmpfs */
    const char *qemu;        /* NULL: qemu-system-x86_64 */
    const char *ovmf_code;   /* NULL: /usr/share/OVMF/OVMF_CODE_4M.fd */
    const char *ovmf_vars;   /* NULL: /usr/share/OVMF/OVMF_VARS_4M.fd */
    const char *accel;       /* "kvm", "tcg", or NULL/"auto": KVM where it works */
    unsigned engine_threads; /* 0: online CPUs */
};

/* Progress and cancellation of one operation. May be NULL. */
struct vm_task_ctl {
    void (*progress)(void *ctx, unsigned percent); /* 0..100, from the worker thread */
    void *ctx;
    atomic_bool cancel; /* honoured by the bulk engine (the operation rolls back) */
};

struct vm_host;

/* Opens the host: creates DATA_DIR/vms, finds running VMs, and recovers
 * every VM whose journal says an operation was interrupted (those whose
 * keys cannot be fetched stay locked and are recovered when they unlock). */
RESULT vm_host_open(const struct vm_host_config *cfg, struct keyprov *kp, struct vm_host **out)
    __attribute__((nonnull));
void vm_host_close(struct vm_host **h);

/* Retries locked VMs (fetching their keys) and finishes pending
 * recoveries; notices VMs whose QEMU exited and powers them off cleanly
 * (re-encrypting the NVRAM). vmseald calls it every few seconds. */
void vm_host_tick(struct vm_host *h) __attribute__((nonnull));

struct vm_create_spec {
    const char *name;
    uint64_t disks[VM_MAX_DISKS]; /* sizes of new empty disks */
    size_t disk_count;
    const char *image; /* NULL, or a raw or qcow2 image imported as the first disk */
    bool encrypt;
    const char *provider; /* NULL: the default provider */
    uint64_t memory;      /* bytes; 0: 256 MiB */
    unsigned cpus;        /* 0: 1 */
};

enum vm_clone_mode { VM_CLONE_KEEP, VM_CLONE_ENCRYPT, VM_CLONE_DECRYPT, VM_CLONE_RECRYPT };

RESULT vm_create(struct vm_host *h, const struct vm_create_spec *spec, struct vm_task_ctl *ctl,
                 json_t **out) __attribute__((nonnull(1, 2, 4)));
RESULT vm_list(struct vm_host *h, json_t **out) __attribute__((nonnull));
RESULT vm_info(struct vm_host *h, const char *name, json_t **out) __attribute__((nonnull));
RESULT vm_encrypt(struct vm_host *h, const char *name, const char *provider,
                  struct vm_task_ctl *ctl, json_t **out) __attribute__((nonnull(1, 2, 5)));
RESULT vm_decrypt(struct vm_host *h, const char *name, struct vm_task_ctl *ctl, json_t **out)
    __attribute__((nonnull(1, 2, 4)));
/* Per-disk storage policies, as vSphere's: encrypts (a new DEK, a new disk
 * secret wrapped under the VM's KEK) or decrypts disk `index` alone; the
 * VM's keys and its other disks stay as they are. A disk can be encrypted
 * only in an encrypted VM; vm_decrypt decrypts every disk, vm_encrypt
 * encrypts every disk. Off, no snapshots, not linked (as vm_encrypt).
 * ERR_NOT_FOUND for a disk the VM does not have; ERR_VM_STATE for a disk
 * already so, or a VM that is not encrypted (encrypt). Cancelled through
 * ctl, it rolls back. */
RESULT vm_disk_encrypt(struct vm_host *h, const char *name, unsigned index,
                       struct vm_task_ctl *ctl, json_t **out) __attribute__((nonnull(1, 2, 5)));
RESULT vm_disk_decrypt(struct vm_host *h, const char *name, unsigned index,
                       struct vm_task_ctl *ctl, json_t **out) __attribute__((nonnull(1, 2, 5)));
RESULT vm_clone(struct vm_host *h, const char *src, const char *dst, enum vm_clone_mode mode,
                const char *provider, bool instant, struct vm_task_ctl *ctl, json_t **out)
    __attribute__((nonnull(1, 2, 3, 8)));
RESULT vm_rekey(struct vm_host *h, const char *name, bool deep, const char *provider,
                struct vm_task_ctl *ctl, json_t **out) __attribute__((nonnull(1, 2, 6)));
RESULT vm_set_template(struct vm_host *h, const char *name, bool on, json_t **out)
    __attribute__((nonnull));
RESULT vm_add_disk(struct vm_host *h, const char *name, uint64_t size, json_t **out)
    __attribute__((nonnull));
RESULT vm_export_disk(struct vm_host *h, const char *name, unsigned index, const char *path,
                      struct vm_task_ctl *ctl, json_t **out) __attribute__((nonnull(1, 2, 4, 6)));
RESULT vm_snapshot_create(struct vm_host *h, const char *name, const char *snap, json_t **out)
    __attribute__((nonnull));
RESULT vm_snapshot_delete(struct vm_host *h, const char *name, const char *snap, json_t **out)
    __attribute__((nonnull));
RESULT vm_snapshot_revert(struct vm_host *h, const char *name, const char *snap, json_t **out)
    __attribute__((nonnull));
RESULT vm_power_on(struct vm_host *h, const char *name, json_t **out) __attribute__((nonnull));
RESULT vm_power_off(struct vm_host *h, const char *name, json_t **out) __attribute__((nonnull));
RESULT vm_delete(struct vm_host *h, const char *name, json_t **out) __attribute__((nonnull));

/* Break-glass: writes to a new 0600 file (O_EXCL) the LUKS passphrases
 * (luks1_passphrase: 64 hex digits) of every encrypted layer of disk
 * `index`, one line each, top layer first: "<file relative to DATA_DIR/vms>
 * <passphrase>", for cryptsetup, qemu-img or qemu-io by hand. A plaintext
 * disk of an encrypted VM has none (an empty file and list); an
 * unencrypted VM is refused. */
RESULT vm_disk_secret(struct vm_host *h, const char *name, unsigned index, const char *path,
                      json_t **out) __attribute__((nonnull));

/* Keys this host issued, with the VMs that use them. */
RESULT vm_keys(struct vm_host *h, json_t **out) __attribute__((nonnull));

/* Crypto-shredding: Revoke + Destroy at the provider. By VM name (the keys
 * issued for that VM, which may be deleted) or by provider + key ID.
 * Refused while an existing VM uses the key. */
RESULT vm_key_destroy(struct vm_host *h, const char *vm_name, const struct keyprov_ref *ref,
                      json_t **out) __attribute__((nonnull(1, 4)));

/* What recovery did with a VM's interrupted operation since vm_host_open
 * (journal.h): rolled back (vm.json had not committed it, or a create or
 * clone never committed and its directory is gone), rolled forward (vm.json
 * had committed it, a snapshot delete was completed, or a delete whose
 * directory was already renamed away was finished), pending (a journal is
 * there but recovery has not finished: the VM is locked until its key can
 * be fetched, vm_host_tick retries; or recovery failed, see the log), or
 * none (no interrupted operation). */
enum vm_recovery {
    VM_RECOVERY_NONE,
    VM_RECOVERY_ROLLED_BACK,
    VM_RECOVERY_ROLLED_FORWARD,
    VM_RECOVERY_PENDING,
};

/* The outcome of recovery for VM `vm` (VM_RECOVERY_NONE when there was
 * nothing to recover). ERR_INVALID_ARG for an invalid VM name. */
RESULT vm_host_recovery_outcome(struct vm_host *h, const char *vm, enum vm_recovery *out)
    __attribute__((nonnull));

#endif
