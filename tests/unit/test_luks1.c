/* Tests of LUKS1 headers: our writer against our reader, every header field
 * corrupted, tampered key material, and the layout the spec (and
 * cryptsetup's checks) require. Interoperability with cryptsetup and QEMU
 * in both directions is tests/integration/test_disk_interop.py. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/secret.h"
#include "disk/luks1.h"

/* Field offsets, from the spec's figure "PHDR layout" (written out here
 * independently of luks1.c, so that a wrong layout there fails here). */
#define OFF_MAGIC 0
#define OFF_VERSION 6
#define OFF_CIPHER_NAME 8
#define OFF_CIPHER_MODE 40
#define OFF_HASH_SPEC 72
#define OFF_PAYLOAD 104
#define OFF_KEY_BYTES 108
#define OFF_MK_DIGEST 112
#define OFF_MK_SALT 132
#define OFF_MK_ITER 164
#define OFF_UUID 168
#define OFF_SLOT(i) (208 + 48 * (i))
#define SLOT_ACTIVE 0
#define SLOT_ITER 4
#define SLOT_SALT 8
#define SLOT_OFFSET 40
#define SLOT_STRIPES 44

static char dir[64];
static uint8_t *master_key; /* secret memory */
static uint8_t secret[LUKS1_SECRET_LEN];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-luks1-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (!is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&master_key)))
        return -1;
    if (!is_ok(crypto_random_key(master_key, LUKS1_MASTER_KEY_LEN)) ||
        !is_ok(crypto_random_key(secret, sizeof(secret))))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    secret_free((void **)&master_key);
    secret_wipe(secret, sizeof(secret));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* A fresh disk of 1 MiB, open read-write; returns the fd. */
static int new_disk(const char *name)
{
    char p[128];
    int fd;

    path_in(p, sizeof(p), name);
    assert_ok(luks1_create_file(p, 1 << 20, master_key, secret));
    fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static void put(int fd, off_t off, const void *data, size_t n)
{
    assert_int_equal(pwrite(fd, data, n, off), (ssize_t)n);
}

static void put_be32(int fd, off_t off, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(fd, off, b, 4);
}

static uint32_t get_be32(int fd, off_t off)
{
    uint8_t b[4];
    assert_int_equal(pread(fd, b, 4, off), 4);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void flip(int fd, off_t off)
{
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x01;
    put(fd, off, &b, 1);
}

static void test_round_trip(void **state)
{
    uint8_t *got = NULL;
    struct luks1_info info;
    struct secret_stats before, after;
    char p[128];
    struct stat st;
    int fd;
    (void)state;

    secret_get_stats(&before);
    fd = new_disk("a.img");
    path_in(p, sizeof(p), "a.img");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, LUKS1_PAYLOAD_OFFSET_BYTES + (1 << 20));
    /* The payload is left sparse: only the header area is allocated. */
    assert_true((uint64_t)st.st_blocks * 512 <= LUKS1_PAYLOAD_OFFSET_BYTES + 65536);

    assert_ok(luks1_read_header(fd, &info));
    assert_string_equal(info.cipher_name, "aes");
    assert_string_equal(info.cipher_mode, "xts-plain64");
    assert_string_equal(info.hash_spec, "sha256");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.payload_offset_bytes, 4096 * 512);
    assert_int_equal(info.active_slots, 1);
    assert_int_equal(strlen(info.uuid), 36);
    assert_int_equal(info.uuid[14], '4'); /* RFC 4122 version 4 */

    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    memset(&info, 0xff, sizeof(info));
    assert_ok(luks1_open(fd, secret, got, &info));
    assert_memory_equal(got, master_key, LUKS1_MASTER_KEY_LEN);
    assert_int_equal(info.active_slots, 1);
    assert_string_equal(info.cipher_mode, "xts-plain64");
    /* info may be NULL. */
    secret_wipe(got, LUKS1_MASTER_KEY_LEN);
    assert_ok(luks1_open(fd, secret, got, NULL));
    assert_memory_equal(got, master_key, LUKS1_MASTER_KEY_LEN);
    secret_free((void **)&got);
    close(fd);

    /* Every secret allocation made on the way was released. */
    secret_get_stats(&after);
    assert_int_equal(after.live_allocations, before.live_allocations);
}

/* The bytes on disk, checked against the spec rather than against our
 * reader: magic, version, names, the layout of all eight slots. */
static void test_layout_on_disk(void **state)
{
    uint8_t magic[6], name[32], zeros[32] = {0};
    int fd;
    (void)state;

    fd = new_disk("layout.img");
    assert_int_equal(pread(fd, magic, 6, OFF_MAGIC), 6);
    assert_memory_equal(magic, "LUKS\xba\xbe", 6);
    assert_int_equal(pread(fd, name, 2, OFF_VERSION), 2);
    assert_int_equal(name[0], 0);
    assert_int_equal(name[1], 1);
    assert_int_equal(pread(fd, name, 32, OFF_CIPHER_NAME), 32);
    assert_memory_equal(name, "aes\0\0\0\0", 7);
    assert_memory_equal(name + 3, zeros, 29);
    assert_int_equal(pread(fd, name, 32, OFF_CIPHER_MODE), 32);
    assert_memory_equal(name, "xts-plain64", 12);
    assert_int_equal(pread(fd, name, 32, OFF_HASH_SPEC), 32);
    assert_memory_equal(name, "sha256", 7);
    assert_int_equal(get_be32(fd, OFF_PAYLOAD), 4096);
    assert_int_equal(get_be32(fd, OFF_KEY_BYTES), 64);
    assert_int_equal(get_be32(fd, OFF_MK_ITER), LUKS1_KDF_ITERATIONS);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(get_be32(fd, OFF_SLOT(i) + SLOT_ACTIVE), i == 0 ? 0x00AC71F3 : 0x0000DEAD);
        assert_int_equal(get_be32(fd, OFF_SLOT(i) + SLOT_STRIPES), 4000);
        /* 500 sectors of material per slot, on 4096-byte boundaries. */
        assert_int_equal(get_be32(fd, OFF_SLOT(i) + SLOT_OFFSET), 8 + 504 * i);
    }
    assert_int_equal(get_be32(fd, OFF_SLOT(0) + SLOT_ITER), LUKS1_KDF_ITERATIONS);
    close(fd);
}

static void test_wrong_secret(void **state)
{
    uint8_t *got = NULL, wrong[LUKS1_SECRET_LEN];
    int fd;
    (void)state;

    fd = new_disk("w.img");
    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    memcpy(wrong, secret, sizeof(wrong));
    wrong[LUKS1_SECRET_LEN - 1] ^= 0x80;
    assert_err(luks1_open(fd, wrong, got, NULL), ERR_LUKS_KEY);
    /* Nothing of a candidate key is left in the output. */
    uint8_t zeros[LUKS1_MASTER_KEY_LEN] = {0};
    assert_memory_equal(got, zeros, sizeof(zeros));
    secret_free((void **)&got);
    close(fd);
}

static void test_refusals_at_creation(void **state)
{
    uint8_t *weak = NULL;
    char p[128];
    int fd;
    (void)state;

    path_in(p, sizeof(p), "x.img");
    /* Not a whole number of sectors, or empty. */
    assert_err(luks1_create_file(p, 1000, master_key, secret), ERR_INVALID_ARG);
    assert_err(luks1_create_file(p, 0, master_key, secret), ERR_INVALID_ARG);
    assert_int_equal(access(p, F_OK), -1);

    /* XTS with equal halves is refused, and the file is removed. */
    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&weak));
    memset(weak, 0x5a, LUKS1_MASTER_KEY_LEN);
    assert_err(luks1_create_file(p, 1 << 20, weak, secret), ERR_INVALID_ARG);
    assert_int_equal(access(p, F_OK), -1);
    secret_free((void **)&weak);

    /* O_EXCL: an existing file is never overwritten. */
    fd = open(p, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_err(luks1_create_file(p, 1 << 20, master_key, secret), ERR_EXISTS);
    assert_int_equal(access(p, F_OK), 0);

    /* luks1_format never extends a file too small for the header area. */
    fd = open(p, O_RDWR);
    assert_int_equal(ftruncate(fd, 4096), 0);
    assert_err(luks1_format(fd, master_key, secret), ERR_INVALID_ARG);
    close(fd);
}

/* A re-format in place leaves nothing of the old slots. */
static void test_reformat(void **state)
{
    uint8_t *got = NULL, old_secret[LUKS1_SECRET_LEN];
    int fd;
    (void)state;

    fd = new_disk("r.img");
    memcpy(old_secret, secret, sizeof(old_secret));
    assert_ok(crypto_random_key(secret, sizeof(secret)));
    assert_ok(luks1_format(fd, master_key, secret));
    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    assert_err(luks1_open(fd, old_secret, got, NULL), ERR_LUKS_KEY);
    assert_ok(luks1_open(fd, secret, got, NULL));
    assert_memory_equal(got, master_key, LUKS1_MASTER_KEY_LEN);
    secret_free((void **)&got);
    close(fd);
}

/* One corruption of the header and the sentence its refusal should carry. */
struct corruption {
    const char *what;
    off_t off;
    enum { SET_BE32, SET_BYTES, FILL } kind;
    uint32_t value;
    const char *bytes;
    size_t len;
};

static const struct corruption corruptions[] = {
    {"magic", OFF_MAGIC, SET_BYTES, 0, "LUKS\xba\xbf", 6},
    {"magic", OFF_MAGIC, SET_BYTES, 0, "SKUL", 4},
    {"version", OFF_VERSION, SET_BYTES, 0, "\x00\x02", 2},
    {"version", OFF_VERSION, SET_BYTES, 0, "\x01\x00", 2},
    {"cipher-name", OFF_CIPHER_NAME, SET_BYTES, 0, "twofish", 8},
    {"cipher-name", OFF_CIPHER_NAME, SET_BYTES, 0, "AES", 4},
    {"cipher-name", OFF_CIPHER_NAME, FILL, 'a', NULL, 32},
    {"cipher-mode", OFF_CIPHER_MODE, SET_BYTES, 0, "cbc-essiv:sha256", 17},
    {"cipher-mode", OFF_CIPHER_MODE, SET_BYTES, 0, "xts-plain\0", 10},
    {"cipher-mode", OFF_CIPHER_MODE, FILL, 'x', NULL, 32},
    {"hash-spec", OFF_HASH_SPEC, SET_BYTES, 0, "sha1\0\0\0", 7},
    {"hash-spec", OFF_HASH_SPEC, FILL, 's', NULL, 32},
    {"payload-offset", OFF_PAYLOAD, SET_BE32, 0, NULL, 0},
    {"payload-offset", OFF_PAYLOAD, SET_BE32, 100, NULL, 0},
    {"payload-offset", OFF_PAYLOAD, SET_BE32, 3536 + 499, NULL, 0},
    {"key-bytes", OFF_KEY_BYTES, SET_BE32, 32, NULL, 0},
    {"key-bytes", OFF_KEY_BYTES, SET_BE32, 0xffffffff, NULL, 0},
    {"mk-digest-iter", OFF_MK_ITER, SET_BE32, 0, NULL, 0},
    {"mk-digest-iter", OFF_MK_ITER, SET_BE32, 10000001, NULL, 0},
    {"mk-digest-iter", OFF_MK_ITER, SET_BE32, 0xffffffff, NULL, 0},
    {"uuid", OFF_UUID, FILL, '1', NULL, 40},
    {"uuid", OFF_UUID, SET_BYTES, 0, "\0", 1},
    {"uuid", OFF_UUID, SET_BYTES, 0, "x", 1},
    {"uuid", OFF_UUID + 36, SET_BYTES, 0, "ab", 2}, /* 38 characters */
    {"slot state", OFF_SLOT(0) + SLOT_ACTIVE, SET_BE32, 1, NULL, 0},
    {"slot state", OFF_SLOT(5) + SLOT_ACTIVE, SET_BE32, 0, NULL, 0},
    {"slot iterations", OFF_SLOT(0) + SLOT_ITER, SET_BE32, 0, NULL, 0},
    {"slot iterations", OFF_SLOT(0) + SLOT_ITER, SET_BE32, 0xffffffff, NULL, 0},
    {"slot iterations", OFF_SLOT(0) + SLOT_ITER, SET_BE32, 10000001, NULL, 0},
    {"slot offset", OFF_SLOT(0) + SLOT_OFFSET, SET_BE32, 0, NULL, 0},
    {"slot offset", OFF_SLOT(0) + SLOT_OFFSET, SET_BE32, 1, NULL, 0},
    {"slot offset", OFF_SLOT(0) + SLOT_OFFSET, SET_BE32, 4000, NULL, 0},
    {"slot offset", OFF_SLOT(0) + SLOT_OFFSET, SET_BE32, 0xffffffff, NULL, 0},
    {"slot offset", OFF_SLOT(7) + SLOT_OFFSET, SET_BE32, 4096, NULL, 0},
    {"slot overlap", OFF_SLOT(1) + SLOT_OFFSET, SET_BE32, 8 + 499, NULL, 0},
    {"slot overlap", OFF_SLOT(3) + SLOT_OFFSET, SET_BE32, 8, NULL, 0},
    {"slot stripes", OFF_SLOT(0) + SLOT_STRIPES, SET_BE32, 1, NULL, 0},
    {"slot stripes", OFF_SLOT(6) + SLOT_STRIPES, SET_BE32, 4001, NULL, 0},
    {"slot stripes", OFF_SLOT(0) + SLOT_STRIPES, SET_BE32, 0xffffffff, NULL, 0},
};

static void apply(int fd, const struct corruption *c)
{
    uint8_t fill[64];

    switch (c->kind) {
    case SET_BE32:
        put_be32(fd, c->off, c->value);
        break;
    case SET_BYTES:
        put(fd, c->off, c->bytes, c->len);
        break;
    case FILL:
        memset(fill, (int)c->value, sizeof(fill));
        put(fd, c->off, fill, c->len);
        break;
    }
}

static void test_every_field_corrupted(void **state)
{
    uint8_t pristine[LUKS1_HEADER_SIZE];
    uint8_t *got = NULL;
    struct luks1_info info;
    int fd;
    (void)state;

    fd = new_disk("c.img");
    assert_int_equal(pread(fd, pristine, sizeof(pristine), 0), (ssize_t)sizeof(pristine));
    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
        const struct corruption *c = &corruptions[i];
        put(fd, 0, pristine, sizeof(pristine));
        assert_ok(luks1_read_header(fd, &info)); /* the restore worked */
        apply(fd, c);
        vs_result r = luks1_read_header(fd, &info);
        if (r.code != ERR_LUKS_HEADER) {
            print_error("corruption %zu (%s): expected ERR_LUKS_HEADER, got %s\n", i, c->what,
                        err_name(r.code));
            fail();
        }
        assert_true(strlen(err_last()->detail) > 0); /* names the field */
        assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_HEADER);
    }
    /* And the pristine header still opens: the loop tested corruptions,
     * not a header our reader could never read. */
    put(fd, 0, pristine, sizeof(pristine));
    assert_ok(luks1_open(fd, secret, got, NULL));
    assert_memory_equal(got, master_key, LUKS1_MASTER_KEY_LEN);
    secret_free((void **)&got);
    close(fd);
}

static void test_truncated(void **state)
{
    uint8_t *got = NULL;
    struct luks1_info info;
    int fd;
    (void)state;

    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    fd = new_disk("t.img");
    /* The header itself cut short, at several lengths. */
    static const off_t lengths[] = {0, 1, 6, 100, 207, 591};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        close(fd);
        fd = new_disk("t2.img");
        char p[128];
        path_in(p, sizeof(p), "t2.img");
        assert_int_equal(ftruncate(fd, lengths[i]), 0);
        assert_err(luks1_read_header(fd, &info), ERR_LUKS_HEADER);
        assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_HEADER);
        unlink(p);
    }
    /* The header whole, the key material cut short: the header reads, the
     * open refuses without reading past the end. */
    close(fd);
    fd = new_disk("t3.img");
    assert_int_equal(ftruncate(fd, 8 * 512 + 1000), 0);
    assert_ok(luks1_read_header(fd, &info));
    assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_HEADER);
    close(fd);
    secret_free((void **)&got);
}

static void test_tampered_key_slot(void **state)
{
    uint8_t *got = NULL;
    int fd;
    (void)state;

    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&got));
    /* One bit of key material, anywhere in the slot: the AF merge spreads
     * it over the whole key. First, middle and last sectors. */
    static const off_t where[] = {8 * 512, 8 * 512 + 128000, 8 * 512 + 255999};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        fd = new_disk(i == 0 ? "k0.img" : i == 1 ? "k1.img" : "k2.img");
        flip(fd, where[i]);
        assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_KEY);
        close(fd);
    }
    /* The slot's salt, the digest, the digest's salt. */
    static const off_t fields[] = {OFF_SLOT(0) + SLOT_SALT, OFF_MK_DIGEST + 19, OFF_MK_SALT};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%zu.img", i);
        fd = new_disk(name);
        flip(fd, fields[i]);
        assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_KEY);
        close(fd);
    }
    /* The iteration counts, changed within their bounds. */
    fd = new_disk("it.img");
    put_be32(fd, OFF_SLOT(0) + SLOT_ITER, LUKS1_KDF_ITERATIONS + 1);
    assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_KEY);
    put_be32(fd, OFF_SLOT(0) + SLOT_ITER, LUKS1_KDF_ITERATIONS);
    put_be32(fd, OFF_MK_ITER, LUKS1_KDF_ITERATIONS - 1);
    assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_KEY);
    put_be32(fd, OFF_MK_ITER, LUKS1_KDF_ITERATIONS);
    assert_ok(luks1_open(fd, secret, got, NULL));

    /* Slot 0 disabled: no slot to try. */
    put_be32(fd, OFF_SLOT(0) + SLOT_ACTIVE, 0x0000DEAD);
    assert_ok(luks1_read_header(fd, &(struct luks1_info){0}));
    assert_err(luks1_open(fd, secret, got, NULL), ERR_LUKS_KEY);

    /* The same material moved to slot 3 (offsets swapped, slot 0
     * disabled): every enabled slot is tried, not only slot 0. */
    uint8_t slot0[48], slot3[48];
    assert_int_equal(pread(fd, slot0, 48, OFF_SLOT(0)), 48);
    assert_int_equal(pread(fd, slot3, 48, OFF_SLOT(3)), 48);
    put(fd, OFF_SLOT(3), slot0, 48);
    put(fd, OFF_SLOT(0), slot3, 48);
    put_be32(fd, OFF_SLOT(3) + SLOT_ACTIVE, 0x00AC71F3);
    struct luks1_info info;
    assert_ok(luks1_open(fd, secret, got, &info));
    assert_int_equal(info.active_slots, 1u << 3);
    assert_memory_equal(got, master_key, LUKS1_MASTER_KEY_LEN);
    close(fd);
    secret_free((void **)&got);
}

/* The passphrase QEMU and cryptsetup are given: the secret in lower-case
 * hex, nothing else (no newline). */
static void test_passphrase(void **state)
{
    uint8_t s[LUKS1_SECRET_LEN];
    char p[LUKS1_PASSPHRASE_LEN + 1];
    (void)state;

    for (size_t i = 0; i < sizeof(s); i++)
        s[i] = (uint8_t)(i * 0x11 + 0x0a);
    assert_ok(luks1_passphrase(s, p));
    assert_string_equal(p, "0a1b2c3d4e5f708192a3b4c5d6e7f8091a2b3c4d5e6f8091a2b3c4d5e6f70819");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passphrase),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_at_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reformat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_field_corrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_key_slot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
