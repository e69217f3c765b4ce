/*
 * LUKS1 headers, written and read by vmseal itself (LUKS On-Disk Format
 * Specification 1.2.3, cryptsetup's docs/on-disk-format.pdf).
 *
 * vmseal's disks are LUKS1 raw images: cipher aes, mode xts-plain64, a
 * 512-bit master key (the disk's DEK: XTS-AES-256), hash sha256, one active
 * key slot (slot 0) opened by the disk secret (CRYPTO_AES256_KEY_LEN random
 * bytes). The LUKS passphrase is the secret written as 64 lower-case hex
 * digits (luks1_passphrase): QEMU reads LUKS passphrases as UTF-8 text only
 * ("Data from secret ... is not valid UTF-8" for raw bytes, and a NUL would
 * end it), so the raw bytes cannot be the passphrase. QEMU's luks driver,
 * qemu-img and cryptsetup open the disks with that passphrase.
 *
 * Why our own writer: `qemu-img create -f luks` calibrates PBKDF2 by reading
 * thread CPU time and fails about half the time here; cryptsetup needs root
 * and a loop device for some operations. The secret is 256 random bits, so
 * PBKDF2's work factor adds nothing to its strength: we use a fixed,
 * small iteration count (LUKS1_KDF_ITERATIONS) and say so in the header's
 * fields, as the format allows.
 *
 * Layout written: header (592 bytes) in sector 0; key material of slot 0 at
 * sector 8 (LUKS1_KEY_MATERIAL_OFFSET), 4000 anti-forensic stripes of 64
 * bytes = 500 sectors; payload at sector 4096 (2 MiB, cryptsetup's default
 * alignment), so LUKS1_PAYLOAD_OFFSET_BYTES bytes of header precede the
 * guest's data. Sector n of the payload is encrypted with tweak n (plain64
 * counts from the payload start, as dm-crypt and QEMU do).
 */
#ifndef VMSEAL_DISK_LUKS1_H
#define VMSEAL_DISK_LUKS1_H

#include <stdint.h>
#include <sys/types.h>

#include "core/crypto.h"
#include "core/result.h"

#define LUKS1_SECTOR_SIZE 512
#define LUKS1_HEADER_SIZE 592
#define LUKS1_MASTER_KEY_LEN CRYPTO_XTS_KEY_LEN     /* 64: XTS-AES-256 */
#define LUKS1_SECRET_LEN CRYPTO_AES256_KEY_LEN      /* 32: the disk secret */
#define LUKS1_PASSPHRASE_LEN (2 * LUKS1_SECRET_LEN) /* 64 hex digits */
#define LUKS1_STRIPES 4000
#define LUKS1_KEY_MATERIAL_OFFSET 8 /* sectors */
#define LUKS1_PAYLOAD_OFFSET 4096   /* sectors */
#define LUKS1_PAYLOAD_OFFSET_BYTES ((uint64_t)LUKS1_PAYLOAD_OFFSET * LUKS1_SECTOR_SIZE)
#define LUKS1_KDF_ITERATIONS 1000 /* the minimum cryptsetup accepts */
#define LUKS1_UUID_LEN 36         /* text form, without NUL */

/* What a header says, after luks1_read_header checked it. No secrets. */
struct luks1_info {
    uint64_t payload_offset_bytes; /* where the guest's sector 0 starts */
    uint32_t key_bytes;            /* master key length: 64 for our disks */
    char cipher_name[32];          /* "aes" */
    char cipher_mode[32];          /* "xts-plain64" */
    char hash_spec[32];            /* "sha256" */
    char uuid[LUKS1_UUID_LEN + 1];
    unsigned active_slots; /* bit i set: key slot i is enabled */
};

/* Writes the LUKS passphrase of `secret` (64 lower-case hex digits and a
 * NUL) into out, which should be secret memory: what goes to QEMU (through a
 * pipe) and to cryptsetup (--key-file, no newline). */
RESULT luks1_passphrase(const uint8_t secret[LUKS1_SECRET_LEN], char out[LUKS1_PASSPHRASE_LEN + 1])
    __attribute__((nonnull));

/*
 * Writes a LUKS1 header for `master_key` with key slot 0 opened by
 * `secret`, at the start of fd (payload not touched), then fsyncs. Random
 * salts, a random UUID. The file is not truncated or extended: the caller
 * sizes it (ftruncate to LUKS1_PAYLOAD_OFFSET_BYTES + guest size, leaving
 * the payload sparse). Refuses a master key whose two halves are equal
 * (XTS). Returns OK or an error; on error the first
 * LUKS1_PAYLOAD_OFFSET_BYTES of fd are unspecified.
 */
RESULT luks1_format(int fd, const uint8_t master_key[LUKS1_MASTER_KEY_LEN],
                    const uint8_t secret[LUKS1_SECRET_LEN]) __attribute__((nonnull));

/* Reads and checks the header of fd (magic, version 1, a supported cipher,
 * mode, hash and key size, slots inside the header area, payload offset
 * past the key material). ERR_LUKS_HEADER with a detail naming the field
 * on anything else. Never reads past the header area. */
RESULT luks1_read_header(int fd, struct luks1_info *out) __attribute__((nonnull));

/* Opens fd's header with `secret`: tries every enabled slot, recovers the
 * master key (AF-merge, digest check in constant time) into
 * master_key_out, which must be secret memory of LUKS1_MASTER_KEY_LEN
 * bytes. ERR_LUKS_KEY when no slot accepts the secret. info_out, when not
 * NULL, receives the header's description. */
RESULT luks1_open(int fd, const uint8_t secret[LUKS1_SECRET_LEN],
                  uint8_t master_key_out[LUKS1_MASTER_KEY_LEN], struct luks1_info *info_out)
    __attribute__((nonnull(2, 3)));

/* Creates path (O_EXCL, mode 0600) as a new LUKS1 disk of guest_size bytes
 * (a multiple of LUKS1_SECTOR_SIZE): header written, payload sparse,
 * file and directory fsynced. On error, removes what it created. */
RESULT luks1_create_file(const char *path, uint64_t guest_size,
                         const uint8_t master_key[LUKS1_MASTER_KEY_LEN],
                         const uint8_t secret[LUKS1_SECRET_LEN]) __attribute__((nonnull));

#endif
