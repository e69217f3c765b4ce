/*
 * image.h - disk layers and the qemu-img operations on them: creating
 * qcow2 overlays (snapshots, linked and instant clones), committing one
 * into its backing layer, rebasing, converting to a plaintext raw file, and
 * the QEMU -blockdev description of a chain.
 *
 * Secrets reach qemu-img and QEMU only through pipes handed over as
 * inherited descriptors (`--object secret,id=..,file=/dev/fd/N,format=raw`),
 * never on a command line, in the environment or in a file.
 *
 * A chain is an array of layers, top (the active layer) first, base last.
 * Every call describes the whole chain explicitly (--image-opts / JSON), so
 * the backing-file names written inside qcow2 headers are informative
 * only, and a layer's secret is always the one vmseal holds.
 */
#ifndef VMSEAL_DISK_IMAGE_H
#define VMSEAL_DISK_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "disk/luks1.h"

#define DISK_CHAIN_MAX 64

enum disk_format {
    DISK_FORMAT_RAW,       /* plaintext raw */
    DISK_FORMAT_LUKS,      /* LUKS1 raw (QEMU driver "luks") */
    DISK_FORMAT_QCOW2,     /* plaintext qcow2 */
    DISK_FORMAT_QCOW2_LUKS /* qcow2 with encrypt.format=luks */
};

struct disk_layer {
    const char *path;
    enum disk_format format;
    const uint8_t *secret; /* LUKS1_SECRET_LEN bytes of secret memory; NULL for plaintext */
};

/* The qemu-img program every function here runs: NULL restores the
 * default ("qemu-img", searched in proc's fixed PATH). For tests, which put
 * a fake qemu-img in its place (proc never uses the caller's PATH). Not
 * thread-safe: set it before any other call. */
void disk_image_set_qemu_img(const char *path);

/* Creates an empty qcow2 overlay at path (O_EXCL semantics: fails if it
 * exists) on top of chain[0..n-1], of the chain's guest size. With secret
 * (not NULL) the overlay is LUKS-encrypted (qcow2 encrypt.format=luks) with
 * that secret. Retries qemu-img's spurious "Unable to get accurate CPU
 * usage" PBKDF calibration failure (up to 10 times), and only that. */
RESULT disk_image_create_overlay(const char *path, const struct disk_layer *chain, size_t n,
                                 const uint8_t *secret) __attribute__((nonnull(1, 2)));

/* Commits chain[0] into chain[1] (qemu-img commit, whole chain opened
 * explicitly). chain[0] keeps its data (-d): the caller drops it after
 * updating its own records. Idempotent: running it again after a crash
 * gives the same result. n >= 2. */
RESULT disk_image_commit(const struct disk_layer *chain, size_t n) __attribute__((nonnull));

/* Rewrites the backing-file name recorded in the qcow2 layer `overlay` to
 * `backing` (qemu-img rebase -u: no data moves). */
RESULT disk_image_rebase_unsafe(const struct disk_layer *overlay, const struct disk_layer *backing)
    __attribute__((nonnull));

/* Writes the chain's guest-visible bytes to a new plaintext raw file
 * (sparse where zero), mode 0600, O_EXCL. */
RESULT disk_image_export_raw(const struct disk_layer *chain, size_t n, const char *out_path)
    __attribute__((nonnull));

/* Guest size and format of an image to import ("raw" or "qcow2" only;
 * anything else, or a qcow2 with a backing file or encryption, is refused
 * with ERR_DISK_FORMAT). */
RESULT disk_image_probe(const char *path, enum disk_format *format, uint64_t *guest_size)
    __attribute__((nonnull));

/* Converts an importable image to a new plaintext raw file (sparse). */
RESULT disk_image_convert_to_raw(const char *in_path, enum disk_format in_format,
                                 const char *out_path) __attribute__((nonnull));

/* Guest size of a chain, as QEMU sees it. */
RESULT disk_image_guest_size(const struct disk_layer *chain, size_t n, uint64_t *out)
    __attribute__((nonnull));

/*
 * QEMU arguments for one drive: appends to argv (an array of strings owned
 * by the caller's builder, see core/proc.h) the `-object secret` and
 * `-blockdev` options for every layer and a `-device virtio-blk-pci` with
 * drive node "<node>", and appends to fds the pipe descriptors holding the
 * secrets (to be inherited). The caller spawns QEMU with proc_spawn and
 * closes the fds after.
 *
 * Names: layer i's secret is "<node>-s<i>"; its format node is "<node>" for
 * the top layer (i = 0) and "<node>-l<i>" below, its file node
 * "<node>-l<i>-file". Layers below the top are read-only. The -blockdev
 * values are JSON, so any path is fine (no QemuOpts comma doubling). node:
 * 1 to 20 characters [A-Za-z0-9_], starting with a letter. The device is
 * "virtio-blk-pci,drive=<node>,id=<node>-dev", the last argument appended,
 * without a bootindex: a caller that needs a boot order adds its own
 * `-boot` or replaces that argument.
 */
struct proc_args;
RESULT disk_image_qemu_args(const struct disk_layer *chain, size_t n, const char *node,
                            struct proc_args *args) __attribute__((nonnull));

#endif
