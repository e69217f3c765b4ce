/*
 * luks1.c - LUKS1 headers: format, read, open. See luks1.h.
 *
 * References: "LUKS On-Disk Format Specification Version 1.2.3"
 * (cryptsetup, docs/on-disk-format.pdf), cited below as "spec" with the
 * name of its figure or part. The
 * header is big-endian; every byte read from the disk goes through a
 * struct buf.
 *
 * What we accept is deliberately narrow: the one profile vmseal writes
 * (aes / xts-plain64 / sha256 / 512-bit key), which is also what
 * `cryptsetup luksFormat --type luks1 --cipher aes-xts-plain64
 * --key-size 512 --hash sha256` writes. The checks on key slots are those
 * cryptsetup itself applies before it trusts a header (all eight slots
 * carry 4000 stripes and lie, without overlapping, between the header and
 * the payload), plus bounds on PBKDF2 iterations so that a hostile header
 * cannot make an open run for hours.
 */
#include "disk/luks1.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/secret.h"

/* spec, figure "PHDR layout": field sizes. */
#define LUKS1_MAGIC_LEN 6
#define LUKS1_NAME_LEN 32 /* cipher-name, cipher-mode, hash-spec */
#define LUKS1_DIGEST_LEN 20
#define LUKS1_SALT_LEN 32
#define LUKS1_UUID_FIELD_LEN 40
#define LUKS1_NUM_SLOTS 8
#define LUKS1_VERSION 1

/* spec, figure "key slot layout": slot states. */
#define LUKS1_KEY_ENABLED 0x00AC71F3u
#define LUKS1_KEY_DISABLED 0x0000DEADu

/* Bounds on work a header may ask for. cryptsetup's own headers use a few
 * hundred thousand iterations at most on fast machines; ten million per
 * PBKDF2 is already tens of seconds. */
#define LUKS1_MAX_ITERATIONS 10000000u

/* One slot's anti-forensic material: 4000 stripes of the key's length. */
#define LUKS1_AF_LEN ((size_t)LUKS1_MASTER_KEY_LEN * LUKS1_STRIPES)
#define LUKS1_AF_SECTORS ((uint32_t)(LUKS1_AF_LEN / LUKS1_SECTOR_SIZE))
/* cryptsetup places slots on 4096-byte boundaries: 500 sectors -> 504. */
#define LUKS1_SLOT_ALIGN_SECTORS 8u
#define LUKS1_SLOT_STRIDE                                                           \
    ((LUKS1_AF_SECTORS + LUKS1_SLOT_ALIGN_SECTORS - 1) / LUKS1_SLOT_ALIGN_SECTORS * \
     LUKS1_SLOT_ALIGN_SECTORS)

_Static_assert(LUKS1_AF_LEN % LUKS1_SECTOR_SIZE == 0, "AF material is whole sectors");
_Static_assert(LUKS1_KEY_MATERIAL_OFFSET + (LUKS1_NUM_SLOTS - 1) * LUKS1_SLOT_STRIDE +
                       LUKS1_AF_SECTORS <=
                   LUKS1_PAYLOAD_OFFSET,
               "eight key slots fit before the payload");
_Static_assert(LUKS1_MASTER_KEY_LEN % CRYPTO_SHA256_LEN == 0, "diffusion uses whole hash blocks");

static const uint8_t luks1_magic[LUKS1_MAGIC_LEN] = {'L', 'U', 'K', 'S', 0xba, 0xbe};

struct luks1_slot {
    uint32_t active;
    uint32_t iterations;
    uint8_t salt[LUKS1_SALT_LEN];
    uint32_t key_material_offset; /* sectors */
    uint32_t stripes;
};

/* The whole header as parsed (public: nothing in it is secret). */
struct luks1_header {
    char cipher_name[LUKS1_NAME_LEN];
    char cipher_mode[LUKS1_NAME_LEN];
    char hash_spec[LUKS1_NAME_LEN];
    uint32_t payload_offset; /* sectors */
    uint32_t key_bytes;
    uint8_t mk_digest[LUKS1_DIGEST_LEN];
    uint8_t mk_digest_salt[LUKS1_SALT_LEN];
    uint32_t mk_digest_iterations;
    char uuid[LUKS1_UUID_FIELD_LEN];
    struct luks1_slot slots[LUKS1_NUM_SLOTS];
};

static vs_result luks1_bad(const char *file, int line, const char *field)
{
    err_raise(ERR_LUKS_HEADER, file, line);
    return err_detail("LUKS1 header: %s", field);
}
#define LUKS1_BAD(field) luks1_bad(__FILE__, __LINE__, (field))
#define LUKS1_ENSURE(cond, field)    \
    do {                             \
        if (!(cond))                 \
            return LUKS1_BAD(field); \
    } while (0)

static vs_result luks1_io(const char *file, int line, const char *what)
{
    int e = errno;

    err_raise(ERR_IO, file, line);
    err_detail("%s", what);
    return err_errno(e);
}
#define LUKS1_IO(what) luks1_io(__FILE__, __LINE__, (what))

/* --- reading and writing whole ranges --- */

/* Reads exactly len bytes at off. A short file is a truncated header. */
static RESULT luks1_pread_full(int fd, void *out, size_t len, uint64_t off, const char *what)
{
    uint8_t *p = out;

    ENSURE(off <= (uint64_t)INT64_MAX - len, ERR_OVERFLOW);
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return LUKS1_IO(what);
        }
        if (n == 0)
            return LUKS1_BAD(what); /* past the end of the file: truncated */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return OK_RESULT;
}

static RESULT luks1_pwrite_full(int fd, const void *data, size_t len, uint64_t off)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return LUKS1_IO("writing the LUKS1 header");
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return OK_RESULT;
}

/* --- parsing (spec, "PHDR layout") --- */

/* A fixed-size, NUL-padded text field: must hold a NUL inside its size. */
static RESULT luks1_read_text(struct buf *b, char out[], size_t size, const char *field)
{
    const uint8_t *p;

    GUARD(buf_read_ptr(b, size, &p));
    LUKS1_ENSURE(memchr(p, '\0', size) != NULL, field);
    memcpy(out, p, size);
    return OK_RESULT;
}

static RESULT luks1_decode(struct buf *b, struct luks1_header *h)
{
    const uint8_t *magic;
    uint16_t version;

    GUARD(buf_read_ptr(b, LUKS1_MAGIC_LEN, &magic));
    LUKS1_ENSURE(memcmp(magic, luks1_magic, LUKS1_MAGIC_LEN) == 0, "bad magic (not LUKS)");
    GUARD(buf_read_u16(b, &version));
    LUKS1_ENSURE(version == LUKS1_VERSION, "version is not 1");
    GUARD(luks1_read_text(b, h->cipher_name, sizeof(h->cipher_name), "cipher-name not terminated"));
    GUARD(luks1_read_text(b, h->cipher_mode, sizeof(h->cipher_mode), "cipher-mode not terminated"));
    GUARD(luks1_read_text(b, h->hash_spec, sizeof(h->hash_spec), "hash-spec not terminated"));
    GUARD(buf_read_u32(b, &h->payload_offset));
    GUARD(buf_read_u32(b, &h->key_bytes));
    GUARD(buf_read_bytes(b, h->mk_digest, sizeof(h->mk_digest)));
    GUARD(buf_read_bytes(b, h->mk_digest_salt, sizeof(h->mk_digest_salt)));
    GUARD(buf_read_u32(b, &h->mk_digest_iterations));
    GUARD(luks1_read_text(b, h->uuid, sizeof(h->uuid), "uuid not terminated"));
    for (size_t i = 0; i < LUKS1_NUM_SLOTS; i++) {
        struct luks1_slot *s = &h->slots[i];
        GUARD(buf_read_u32(b, &s->active));
        GUARD(buf_read_u32(b, &s->iterations));
        GUARD(buf_read_bytes(b, s->salt, sizeof(s->salt)));
        GUARD(buf_read_u32(b, &s->key_material_offset));
        GUARD(buf_read_u32(b, &s->stripes));
    }
    return OK_RESULT;
}

static bool luks1_uuid_ok(const char *uuid)
{
    size_t n = strlen(uuid); /* terminated: checked by luks1_read_text */

    if (n == 0 || n > LUKS1_UUID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = uuid[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == '-'))
            return false;
    }
    return true;
}

/* The semantic checks, after the syntax of luks1_decode. */
static RESULT luks1_check(const struct luks1_header *h)
{
    LUKS1_ENSURE(strcmp(h->cipher_name, "aes") == 0, "unsupported cipher-name (want aes)");
    LUKS1_ENSURE(strcmp(h->cipher_mode, "xts-plain64") == 0,
                 "unsupported cipher-mode (want xts-plain64)");
    LUKS1_ENSURE(strcmp(h->hash_spec, "sha256") == 0, "unsupported hash-spec (want sha256)");
    LUKS1_ENSURE(h->key_bytes == LUKS1_MASTER_KEY_LEN, "key-bytes is not 64 (XTS-AES-256)");
    LUKS1_ENSURE(h->mk_digest_iterations >= 1 && h->mk_digest_iterations <= LUKS1_MAX_ITERATIONS,
                 "mk-digest-iter out of range");
    LUKS1_ENSURE(luks1_uuid_ok(h->uuid), "uuid is not a UUID");
    /* A detached header (payload-offset 0) is not one of ours. */
    LUKS1_ENSURE(h->payload_offset > 0, "payload-offset is 0 (detached header)");

    for (size_t i = 0; i < LUKS1_NUM_SLOTS; i++) {
        const struct luks1_slot *s = &h->slots[i];
        uint64_t start = s->key_material_offset, end = start + LUKS1_AF_SECTORS;

        LUKS1_ENSURE(s->active == LUKS1_KEY_ENABLED || s->active == LUKS1_KEY_DISABLED,
                     "key slot state is neither enabled nor disabled");
        /* cryptsetup enforces 4000 stripes on every slot, enabled or not. */
        LUKS1_ENSURE(s->stripes == LUKS1_STRIPES, "key slot stripes is not 4000");
        /* The key material starts after the header's sector(s)... */
        LUKS1_ENSURE(start * LUKS1_SECTOR_SIZE >= LUKS1_HEADER_SIZE,
                     "key slot material overlaps the header");
        /* ...and ends before the payload. */
        LUKS1_ENSURE(end <= h->payload_offset, "key slot material runs into the payload");
        if (s->active == LUKS1_KEY_ENABLED)
            LUKS1_ENSURE(s->iterations >= 1 && s->iterations <= LUKS1_MAX_ITERATIONS,
                         "key slot iterations out of range");
        for (size_t j = 0; j < i; j++) {
            uint64_t other = h->slots[j].key_material_offset;
            LUKS1_ENSURE(end <= other || other + LUKS1_AF_SECTORS <= start, "key slots overlap");
        }
    }
    return OK_RESULT;
}

static RESULT luks1_load(int fd, struct luks1_header *h)
{
    uint8_t raw[LUKS1_HEADER_SIZE];
    struct buf b;

    GUARD(luks1_pread_full(fd, raw, sizeof(raw), 0, "truncated (shorter than 592 bytes)"));
    buf_view(&b, raw, sizeof(raw));
    memset(h, 0, sizeof(*h));
    GUARD(luks1_decode(&b, h));
    ENSURE(buf_remaining(&b) == 0, ERR_INTERNAL); /* the layout above is 592 bytes */
    return luks1_check(h);
}

static void luks1_describe(const struct luks1_header *h, struct luks1_info *out)
{
    memset(out, 0, sizeof(*out));
    out->payload_offset_bytes = (uint64_t)h->payload_offset * LUKS1_SECTOR_SIZE;
    out->key_bytes = h->key_bytes;
    /* All terminated within their (equal or smaller) sizes: checked. */
    snprintf(out->cipher_name, sizeof(out->cipher_name), "%s", h->cipher_name);
    snprintf(out->cipher_mode, sizeof(out->cipher_mode), "%s", h->cipher_mode);
    snprintf(out->hash_spec, sizeof(out->hash_spec), "%s", h->hash_spec);
    /* At most LUKS1_UUID_LEN characters: checked by luks1_uuid_ok. */
    memcpy(out->uuid, h->uuid, strnlen(h->uuid, LUKS1_UUID_LEN));
    for (unsigned i = 0; i < LUKS1_NUM_SLOTS; i++)
        if (h->slots[i].active == LUKS1_KEY_ENABLED)
            out->active_slots |= 1u << i;
}

vs_result luks1_read_header(int fd, struct luks1_info *out)
{
    struct luks1_header h;

    memset(out, 0, sizeof(*out));
    GUARD(luks1_load(fd, &h));
    luks1_describe(&h, out);
    return OK_RESULT;
}

/* --- anti-forensic split and merge (spec, "AF-Splitter") --- */

/* H1 diffusion: each hash-sized block j of d becomes
 * SHA-256(be32(j) || block j). The key length is a whole number of blocks. */
static RESULT luks1_diffuse(uint8_t d[LUKS1_MASTER_KEY_LEN])
{
    uint8_t in[4 + CRYPTO_SHA256_LEN];
    vs_result rc = OK_RESULT;

    for (uint32_t j = 0; j < LUKS1_MASTER_KEY_LEN / CRYPTO_SHA256_LEN; j++) {
        in[0] = (uint8_t)(j >> 24);
        in[1] = (uint8_t)(j >> 16);
        in[2] = (uint8_t)(j >> 8);
        in[3] = (uint8_t)j;
        memcpy(in + 4, d + j * CRYPTO_SHA256_LEN, CRYPTO_SHA256_LEN);
        GUARD_OUT(crypto_sha256(in, sizeof(in), d + j * CRYPTO_SHA256_LEN));
    }
out:
    secret_wipe(in, sizeof(in));
    return rc;
}

static void luks1_xor(uint8_t *d, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] ^= s[i];
}

/* af (LUKS1_AF_LEN bytes of secret memory) <- split of key. d is 64 bytes
 * of secret scratch. Stripes 0..n-2 are random; the last one is
 * key XOR the diffused XOR-chain of the others. */
static RESULT luks1_af_split(const uint8_t key[LUKS1_MASTER_KEY_LEN], uint8_t *af, uint8_t *d)
{
    const size_t n = LUKS1_STRIPES, k = LUKS1_MASTER_KEY_LEN;

    GUARD(crypto_random_key(af, (n - 1) * k));
    secret_wipe(d, k);
    for (size_t i = 0; i < n - 1; i++) {
        luks1_xor(d, af + i * k, k);
        GUARD(luks1_diffuse(d));
    }
    memcpy(af + (n - 1) * k, d, k);
    luks1_xor(af + (n - 1) * k, key, k);
    return OK_RESULT;
}

static RESULT luks1_af_merge(const uint8_t *af, uint8_t key[LUKS1_MASTER_KEY_LEN])
{
    const size_t n = LUKS1_STRIPES, k = LUKS1_MASTER_KEY_LEN;

    secret_wipe(key, k);
    for (size_t i = 0; i < n - 1; i++) {
        luks1_xor(key, af + i * k, k);
        GUARD(luks1_diffuse(key));
    }
    luks1_xor(key, af + (n - 1) * k, k);
    return OK_RESULT;
}

/* --- writing --- */

static RESULT luks1_put_text(struct buf *b, const char *s, size_t size)
{
    size_t n = strlen(s);

    ENSURE(n < size, ERR_INTERNAL); /* room for the terminating NUL */
    GUARD(buf_write_bytes(b, s, n));
    return buf_write_zeros(b, size - n);
}

static RESULT luks1_encode(const struct luks1_header *h, uint8_t out[LUKS1_HEADER_SIZE])
{
    struct buf b;

    buf_wrap(&b, out, LUKS1_HEADER_SIZE);
    GUARD(buf_write_bytes(&b, luks1_magic, sizeof(luks1_magic)));
    GUARD(buf_write_u16(&b, LUKS1_VERSION));
    GUARD(luks1_put_text(&b, h->cipher_name, LUKS1_NAME_LEN));
    GUARD(luks1_put_text(&b, h->cipher_mode, LUKS1_NAME_LEN));
    GUARD(luks1_put_text(&b, h->hash_spec, LUKS1_NAME_LEN));
    GUARD(buf_write_u32(&b, h->payload_offset));
    GUARD(buf_write_u32(&b, h->key_bytes));
    GUARD(buf_write_bytes(&b, h->mk_digest, sizeof(h->mk_digest)));
    GUARD(buf_write_bytes(&b, h->mk_digest_salt, sizeof(h->mk_digest_salt)));
    GUARD(buf_write_u32(&b, h->mk_digest_iterations));
    GUARD(luks1_put_text(&b, h->uuid, LUKS1_UUID_FIELD_LEN));
    for (size_t i = 0; i < LUKS1_NUM_SLOTS; i++) {
        const struct luks1_slot *s = &h->slots[i];
        GUARD(buf_write_u32(&b, s->active));
        GUARD(buf_write_u32(&b, s->iterations));
        GUARD(buf_write_bytes(&b, s->salt, sizeof(s->salt)));
        GUARD(buf_write_u32(&b, s->key_material_offset));
        GUARD(buf_write_u32(&b, s->stripes));
    }
    ENSURE(buf_len(&b) == LUKS1_HEADER_SIZE, ERR_INTERNAL);
    return OK_RESULT;
}

/* A random (version 4, RFC 4122 §4.4) UUID in text form. */
static RESULT luks1_new_uuid(char out[LUKS1_UUID_FIELD_LEN])
{
    uint8_t r[16];
    char hex[33];

    GUARD(crypto_random(r, sizeof(r)));
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    GUARD(hex_encode(r, sizeof(r), hex, sizeof(hex)));
    int n = snprintf(out, LUKS1_UUID_FIELD_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
                     hex + 16, hex + 20);
    ENSURE(n == LUKS1_UUID_LEN, ERR_INTERNAL);
    return OK_RESULT;
}

vs_result luks1_passphrase(const uint8_t secret[LUKS1_SECRET_LEN],
                           char out[LUKS1_PASSPHRASE_LEN + 1])
{
    return hex_encode(secret, LUKS1_SECRET_LEN, out, LUKS1_PASSPHRASE_LEN + 1);
}

/* A keyed XTS context over key material: the tweak counts sectors from the
 * start of the slot's material, which is encrypted like a payload whose
 * sector 0 is the slot's first sector (the spec's IV reference point for
 * key material; cryptsetup and QEMU do the same). */
static RESULT luks1_slot_key(const uint8_t *secret, const struct luks1_slot *s, uint8_t *derived,
                             struct crypto_xts **x)
{
    char *pass = NULL;
    vs_result rc = OK_RESULT;

    GUARD(secret_alloc(LUKS1_PASSPHRASE_LEN + 1, (void **)&pass));
    GUARD_OUT(luks1_passphrase(secret, pass));
    GUARD_OUT(crypto_pbkdf2_sha256(pass, LUKS1_PASSPHRASE_LEN, s->salt, sizeof(s->salt),
                                   s->iterations, derived, LUKS1_MASTER_KEY_LEN));
    rc = crypto_xts_new(derived, x);
out:
    secret_free((void **)&pass);
    return rc;
}

vs_result luks1_format(int fd, const uint8_t master_key[LUKS1_MASTER_KEY_LEN],
                       const uint8_t secret[LUKS1_SECRET_LEN])
{
    vs_result rc = OK_RESULT;
    struct luks1_header h;
    struct crypto_xts *x = NULL;
    uint8_t *area = NULL, *af = NULL, *scratch = NULL;
    struct stat st;

    /* NIST SP 800-38E: XTS's data key and tweak key must differ. */
    ENSURE(
        !secret_equal(master_key, master_key + LUKS1_MASTER_KEY_LEN / 2, LUKS1_MASTER_KEY_LEN / 2),
        ERR_INVALID_ARG);
    if (fstat(fd, &st) != 0)
        return LUKS1_IO("stat of the disk");
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < LUKS1_PAYLOAD_OFFSET_BYTES) {
        err_raise(ERR_INVALID_ARG, __FILE__, __LINE__);
        return err_detail("the disk file is smaller than the LUKS1 header area (2 MiB)");
    }

    memset(&h, 0, sizeof(h));
    memcpy(h.cipher_name, "aes", sizeof("aes"));
    memcpy(h.cipher_mode, "xts-plain64", sizeof("xts-plain64"));
    memcpy(h.hash_spec, "sha256", sizeof("sha256"));
    h.payload_offset = LUKS1_PAYLOAD_OFFSET;
    h.key_bytes = LUKS1_MASTER_KEY_LEN;
    h.mk_digest_iterations = LUKS1_KDF_ITERATIONS;
    GUARD(crypto_random(h.mk_digest_salt, sizeof(h.mk_digest_salt)));
    GUARD(luks1_new_uuid(h.uuid));
    /* Every slot gets its place and stripes, as cryptsetup lays them out
     * (and checks them); only slot 0 is enabled. */
    for (uint32_t i = 0; i < LUKS1_NUM_SLOTS; i++) {
        h.slots[i].active = LUKS1_KEY_DISABLED;
        h.slots[i].key_material_offset = LUKS1_KEY_MATERIAL_OFFSET + i * LUKS1_SLOT_STRIDE;
        h.slots[i].stripes = LUKS1_STRIPES;
    }
    h.slots[0].active = LUKS1_KEY_ENABLED;
    h.slots[0].iterations = LUKS1_KDF_ITERATIONS;
    GUARD(crypto_random(h.slots[0].salt, sizeof(h.slots[0].salt)));

    /* spec, "master key digest": PBKDF2 of the master key, 20 bytes. */
    GUARD(crypto_pbkdf2_sha256(master_key, LUKS1_MASTER_KEY_LEN, h.mk_digest_salt,
                               sizeof(h.mk_digest_salt), h.mk_digest_iterations, h.mk_digest,
                               sizeof(h.mk_digest)));

    /* The whole header area is written: the header, slot 0's encrypted
     * material, and zeros everywhere else, so that nothing of an older
     * header (other slots' material) survives a re-format in place. The
     * area holds only ciphertext and public fields: ordinary memory. */
    area = calloc(1, LUKS1_PAYLOAD_OFFSET_BYTES);
    ENSURE_OUT(area != NULL, ERR_NOMEM);
    GUARD_OUT(secret_alloc(LUKS1_AF_LEN, (void **)&af));
    GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN * 2, (void **)&scratch));
    GUARD_OUT(luks1_af_split(master_key, af, scratch));
    /* scratch: [0,64) was the AF chain, now the slot's derived key. */
    GUARD_OUT(luks1_slot_key(secret, &h.slots[0], scratch, &x));
    GUARD_OUT(crypto_xts_encrypt(x, 0, LUKS1_SECTOR_SIZE, af,
                                 area + (size_t)LUKS1_KEY_MATERIAL_OFFSET * LUKS1_SECTOR_SIZE,
                                 LUKS1_AF_LEN));
    GUARD_OUT(luks1_encode(&h, area));
    GUARD_OUT(luks1_pwrite_full(fd, area, LUKS1_PAYLOAD_OFFSET_BYTES, 0));
    if (fsync(fd) != 0)
        GUARD_OUT(LUKS1_IO("fsync of the LUKS1 header"));
out:
    crypto_xts_free(&x);
    secret_free((void **)&scratch);
    secret_free((void **)&af);
    free(area);
    return rc;
}

/* Tries one enabled slot. OK with the key in mk when the digest matches;
 * ERR_LUKS_KEY when it does not; another error when the system failed. */
static RESULT luks1_try_slot(int fd, const struct luks1_header *h, const struct luks1_slot *s,
                             const uint8_t *secret, uint8_t *af, uint8_t *derived, uint8_t *mk)
{
    struct crypto_xts *x = NULL;
    uint8_t digest[LUKS1_DIGEST_LEN];
    vs_result rc = OK_RESULT;

    GUARD(luks1_pread_full(fd, af, LUKS1_AF_LEN,
                           (uint64_t)s->key_material_offset * LUKS1_SECTOR_SIZE,
                           "key material truncated"));
    rc = luks1_slot_key(secret, s, derived, &x);
    if (rc.code == ERR_INVALID_ARG) {
        /* A derived key with equal halves: not a key this slot was made
         * with (probability 2^-256). */
        rc = RAISE(ERR_LUKS_KEY);
        goto out;
    }
    GUARD_OUT(rc);
    GUARD_OUT(crypto_xts_decrypt(x, 0, LUKS1_SECTOR_SIZE, af, af, LUKS1_AF_LEN));
    GUARD_OUT(luks1_af_merge(af, mk));
    GUARD_OUT(crypto_pbkdf2_sha256(mk, LUKS1_MASTER_KEY_LEN, h->mk_digest_salt,
                                   sizeof(h->mk_digest_salt), h->mk_digest_iterations, digest,
                                   sizeof(digest)));
    ENSURE_OUT(secret_equal(digest, h->mk_digest, sizeof(digest)), ERR_LUKS_KEY);
out:
    crypto_xts_free(&x);
    if (!is_ok(rc))
        secret_wipe(mk, LUKS1_MASTER_KEY_LEN);
    return rc;
}

vs_result luks1_open(int fd, const uint8_t secret[LUKS1_SECRET_LEN],
                     uint8_t master_key_out[LUKS1_MASTER_KEY_LEN], struct luks1_info *info_out)
{
    vs_result rc = OK_RESULT;
    struct luks1_header h;
    uint8_t *af = NULL, *scratch = NULL;
    bool found = false;

    if (info_out != NULL)
        memset(info_out, 0, sizeof(*info_out));
    GUARD(luks1_load(fd, &h));
    GUARD_OUT(secret_alloc(LUKS1_AF_LEN, (void **)&af));
    /* scratch: derived slot key [0,64), candidate master key [64,128). */
    GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN * 2, (void **)&scratch));
    for (size_t i = 0; i < LUKS1_NUM_SLOTS && !found; i++) {
        if (h.slots[i].active != LUKS1_KEY_ENABLED)
            continue;
        rc = luks1_try_slot(fd, &h, &h.slots[i], secret, af, scratch,
                            scratch + LUKS1_MASTER_KEY_LEN);
        if (is_ok(rc))
            found = true;
        else if (rc.code != ERR_LUKS_KEY)
            goto out;
    }
    ENSURE_OUT(found, ERR_LUKS_KEY);
    memcpy(master_key_out, scratch + LUKS1_MASTER_KEY_LEN, LUKS1_MASTER_KEY_LEN);
    if (info_out != NULL)
        luks1_describe(&h, info_out);
    rc = OK_RESULT;
out:
    secret_free((void **)&scratch);
    secret_free((void **)&af);
    return rc;
}

/* --- a new disk file --- */

static RESULT luks1_dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        ENSURE(size >= 2, ERR_TOO_LARGE);
        memcpy(dir, ".", 2);
        return OK_RESULT;
    }
    n = slash == path ? 1 : (size_t)(slash - path);
    ENSURE(n < size, ERR_TOO_LARGE);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return OK_RESULT;
}

vs_result luks1_create_file(const char *path, uint64_t guest_size,
                            const uint8_t master_key[LUKS1_MASTER_KEY_LEN],
                            const uint8_t secret[LUKS1_SECRET_LEN])
{
    vs_result rc = OK_RESULT;
    char dir[PATH_MAX];
    uint64_t total;
    int fd;

    ENSURE(guest_size > 0 && guest_size % LUKS1_SECTOR_SIZE == 0, ERR_INVALID_ARG);
    ENSURE_ADD(guest_size, LUKS1_PAYLOAD_OFFSET_BYTES, &total);
    ENSURE(total <= (uint64_t)INT64_MAX, ERR_OVERFLOW);
    GUARD(luks1_dir_of(path, dir, sizeof(dir)));

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        err_raise(e == EEXIST                 ? ERR_EXISTS
                  : e == EACCES || e == EPERM ? ERR_PERM
                                              : ERR_IO,
                  __FILE__, __LINE__);
        err_detail("creating %s", path);
        return err_errno(e);
    }
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)total) != 0) {
        rc = LUKS1_IO("sizing the new disk");
        err_detail("sizing %s", path);
        goto out;
    }
    GUARD_OUT(luks1_format(fd, master_key, secret));
    if (close(fd) != 0) {
        fd = -1;
        GUARD_OUT(LUKS1_IO("closing the new disk"));
    }
    fd = -1;
    GUARD_OUT(file_fsync_dir(dir));
    return OK_RESULT;
out:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return rc;
}
