/*
 * descriptor.h - a VM's descriptor, DIR/vms/NAME/vm.json.
 *
 * The descriptor is the VM's source of truth and the commit point of every
 * operation: an operation prepares new files next to the old ones, then
 * replaces vm.json atomically; whatever vm.json does not reference is
 * garbage that recovery removes (journal.h).
 *
 * It holds the VM's identity, its disks as chains of layers, its snapshots,
 * and for an encrypted VM the encryption header: the key provider and key
 * ID of the KEK, the VM file key wrapped by the KEK (RFC 5649), and each
 * encrypted layer's disk secret wrapped by the KEK. It never holds a key in
 * clear. An encrypted VM may have plaintext disks (per-disk storage
 * policies, as vSphere's); an unencrypted VM has no encrypted layer.
 *
 * Integrity: "tag" is HMAC-SHA256 over the descriptor's canonical JSON
 * (sorted keys, compact, without "tag"), keyed with HKDF(file key,
 * "vmseal descriptor tag v1"). Changing any field (a wrapped secret, the
 * key ID, a layer's file) without the file key is detected. An unencrypted
 * VM's tag is a plain SHA-256 (detects corruption, not tampering: there is
 * nothing secret to protect).
 *
 * The hardware configuration (memory, CPUs) lives in a separate config file
 * (config-G.enc, sealed with the file key, or config-G.json), so that an
 * encrypted VM's configuration is not readable without its keys.
 */
#ifndef VMSEAL_VM_DESCRIPTOR_H
#define VMSEAL_VM_DESCRIPTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "disk/image.h"
#include "keyprov/keyprov.h"
#include "vm/vmutil.h"

#define VM_DESC_FORMAT "vmseal-vm/1"
#define VM_MAX_DISKS 16
#define VM_MAX_LAYERS 128
#define VM_MAX_SNAPSHOTS 32
#define VM_MAX_DEPENDENTS 32
#define VM_LAYER_ID_MAX 16
#define VM_FILE_MAX 160      /* a file name relative to the datastore: "VM/file" */
#define VM_WRAPPED_MAX 64    /* RFC 5649 of a 32-byte secret: 40 bytes */
#define VM_FILE_KEY_LEN 32
#define VM_DESC_MAX_BYTES (1u << 20)
#define VM_MAX_DISK_SIZE (64ull << 40)   /* guest bytes of one disk */
#define VM_DESC_COUNTER_MAX (1ull << 53) /* generation, next_layer: exact in any JSON reader */

struct vm_layer {
    char id[VM_LAYER_ID_MAX]; /* "l1", "l2", ... unique within the VM */
    unsigned disk;            /* index of the disk it belongs to */
    char file[VM_FILE_MAX];   /* relative to the datastore: "web1/disk0-1.img" */
    enum disk_format format;
    char parent[VM_LAYER_ID_MAX]; /* "" for a base layer */
    uint8_t wrapped_secret[VM_WRAPPED_MAX]; /* encrypted formats only */
    size_t wrapped_len;
    bool shared; /* frozen layer that instant clones read: never merged or rekeyed */
    bool foreign; /* owned by another VM (the source of this instant clone) */
};

struct vm_disk {
    uint64_t size;                   /* guest bytes */
    char active[VM_LAYER_ID_MAX];    /* the layer the VM writes */
};

struct vm_snapshot {
    char name[VM_NAME_MAX];
    char created[VM_TIME_LEN];
    char layers[VM_MAX_DISKS][VM_LAYER_ID_MAX]; /* frozen top layer per disk */
    char nvram_file[VM_FILE_MAX];               /* the NVRAM at that time ("" if none) */
};

struct vm_desc {
    char name[VM_NAME_MAX];
    char uuid[VM_UUID_LEN + 1];
    char created[VM_TIME_LEN];
    uint64_t generation; /* +1 at every save */
    uint64_t next_layer; /* the next layer number */
    bool template_;
    char instant_clone_of[VM_NAME_MAX]; /* "" unless an instant clone */
    char dependents[VM_MAX_DEPENDENTS][VM_NAME_MAX]; /* instant clones of this VM */
    size_t dependent_count;

    bool encrypted;
    struct keyprov_ref key; /* KEK: provider + key ID (encrypted only) */
    uint8_t wrapped_file_key[VM_WRAPPED_MAX];
    size_t wrapped_file_key_len;

    char config_file[VM_FILE_MAX]; /* "web1/config-3.enc" or ".json" */
    char nvram_file[VM_FILE_MAX];  /* "web1/nvram-3.enc" or ".fd"; "" before first boot */

    struct vm_disk disks[VM_MAX_DISKS];
    size_t disk_count;
    struct vm_layer layers[VM_MAX_LAYERS];
    size_t layer_count;
    struct vm_snapshot snapshots[VM_MAX_SNAPSHOTS];
    size_t snapshot_count;
};

/* Reads DATASTORE/NAME/vm.json into d (structure only: the tag is checked
 * by vm_desc_verify once the file key is known). Strict: unknown fields,
 * wrong types, dangling layer references, files outside the datastore
 * (absolute paths, "..", slashes beyond "VM/file") are ERR_DESCRIPTOR
 * with a detail. The tag text goes to tag_out (may be NULL). */
RESULT vm_desc_load(const char *datastore, const char *name, struct vm_desc *d,
                    uint8_t tag_out[32]) __attribute__((nonnull(1, 2, 3)));

/* vm_desc_load's parser over len bytes of JSON text in memory (the file of
 * VM `name`): for tests and the fuzz target. */
RESULT vm_desc_parse(const uint8_t *text, size_t len, const char *name, struct vm_desc *d,
                     uint8_t tag_out[32]) __attribute__((nonnull(1, 3, 4)));

/* The canonical bytes the tag covers (sorted keys, compact JSON, no tag). */
RESULT vm_desc_canonical(const struct vm_desc *d, struct buf *out) __attribute__((nonnull));

/* Computes d's tag: HMAC keyed from file_key (encrypted VMs) or SHA-256
 * (file_key NULL, unencrypted VMs). */
RESULT vm_desc_tag(const struct vm_desc *d, const uint8_t *file_key, uint8_t tag[32])
    __attribute__((nonnull(1, 3)));

/* Checks tag against d in constant time: ERR_DESCRIPTOR ("vm.json of VM
 * 'x' fails its integrity check") on mismatch. */
RESULT vm_desc_verify(const struct vm_desc *d, const uint8_t *file_key, const uint8_t tag[32])
    __attribute__((nonnull(1, 3)));

/* Increments the generation, computes the tag and replaces
 * DATASTORE/NAME/vm.json atomically (the commit point of an operation). */
RESULT vm_desc_save(const char *datastore, struct vm_desc *d, const uint8_t *file_key)
    __attribute__((nonnull(1, 2)));

/* Lookups; NULL when absent. */
struct vm_layer *vm_desc_layer(struct vm_desc *d, const char *id) __attribute__((nonnull));
const struct vm_snapshot *vm_desc_snapshot(const struct vm_desc *d, const char *name)
    __attribute__((nonnull));

/* Number of layers whose parent is id. */
size_t vm_desc_children(const struct vm_desc *d, const char *id) __attribute__((nonnull));

/* The chain of disk i from its active layer down to the base: ids into
 * out (top first), count into *n. ERR_DESCRIPTOR on a cycle or a missing
 * parent. */
RESULT vm_desc_chain(struct vm_desc *d, unsigned disk, struct vm_layer *out[DISK_CHAIN_MAX],
                     size_t *n) __attribute__((nonnull));

/* Adds a layer with a fresh id; returns it through *out. */
RESULT vm_desc_add_layer(struct vm_desc *d, unsigned disk, struct vm_layer **out)
    __attribute__((nonnull));

/* Removes layer id (nothing may reference it any more). */
void vm_desc_remove_layer(struct vm_desc *d, const char *id) __attribute__((nonnull));

/* Whether any active layer or snapshot references layer id, or a layer
 * has it as parent. */
bool vm_desc_layer_in_use(const struct vm_desc *d, const char *id) __attribute__((nonnull));

/* Whether a layer of format f is encrypted (LUKS, qcow2 with LUKS). */
bool vm_format_encrypted(enum disk_format f);

/* Whether disk `disk` of d is encrypted. Every layer of a disk's chain is
 * encrypted or none is (the parser refuses a mix), so its active layer
 * says. In an encrypted VM a disk may be plaintext (vm_disk_decrypt); in an
 * unencrypted VM none is encrypted. False for a disk d does not have. */
bool vm_disk_encrypted(const struct vm_desc *d, unsigned disk) __attribute__((nonnull));

/* "luks", "raw", "qcow2", "qcow2-luks" and back. */
const char *vm_format_name(enum disk_format f);
RESULT vm_format_parse(const char *s, enum disk_format *out) __attribute__((nonnull));

#endif
