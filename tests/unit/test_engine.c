/* Tests of the bulk engine (disk_copy) against engine.h's contract.
 *
 * Every LUKS byte the engine writes is compared with a reference computed
 * here, independently of core's crypto: OpenSSL's AES-256-XTS through EVP,
 * one sector at a time, tweak = the guest sector number (plain64). Holes
 * are checked with SEEK_DATA / SEEK_HOLE on the files themselves. The
 * negative cases sit next to the positive ones: cancellation, a short
 * source, a destination of the wrong size, bad arguments, a failing
 * destination, wrong keys. QEMU reading the engine's output through its
 * own luks driver is tests/integration/test_engine_interop.py. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "disk/engine.h"

#define SECTOR 512
#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define LUKS_BASE LUKS1_PAYLOAD_OFFSET_BYTES

static char dir[64];
static uint8_t *key_a, *key_b; /* secret memory, LUKS1_MASTER_KEY_LEN each */

/* --- fixtures --- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-engine-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (!is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&key_a)) ||
        !is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&key_b)))
        return -1;
    if (!is_ok(crypto_random_key(key_a, LUKS1_MASTER_KEY_LEN)) ||
        !is_ok(crypto_random_key(key_b, LUKS1_MASTER_KEY_LEN)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    secret_free((void **)&key_a);
    secret_free((void **)&key_b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- files --- */

static int file_new(const char *name, uint64_t size)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

static void pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
    assert_int_equal(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
}

static void pread_all(int fd, void *p, size_t len, uint64_t off)
{
    assert_int_equal(pread(fd, p, len, (off_t)off), (ssize_t)len);
}

/* True when [off, off+len) of fd holds no allocated byte. */
static bool range_is_hole(int fd, uint64_t off, uint64_t len)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO;
    return (uint64_t)d >= off + len;
}

/* True when all of [off, off+len) of fd is allocated. */
static bool range_is_data(int fd, uint64_t off, uint64_t len)
{
    off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
    return h >= 0 && (uint64_t)h >= off + len;
}

static uint64_t allocated_bytes(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* --- the guest's disk, as a model in memory --- */

struct range {
    uint64_t off, len;
};

/* A guest disk: its bytes (zeros in holes) and its holes (4 KiB-aligned,
 * so that every file system can represent them). */
struct model {
    uint8_t *bytes;
    uint64_t size;
    const struct range *holes;
    size_t n_holes;
};

static void model_init(struct model *m, uint64_t size, const struct range *holes, size_t n_holes,
                       uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

    m->size = size;
    m->holes = holes;
    m->n_holes = n_holes;
    m->bytes = malloc(size);
    assert_non_null(m->bytes);
    for (uint64_t i = 0; i < size; i += 8) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(m->bytes + i, &x, size - i < 8 ? size - i : 8);
    }
    for (size_t h = 0; h < n_holes; h++) {
        assert_true(holes[h].off + holes[h].len <= size);
        memset(m->bytes + holes[h].off, 0, holes[h].len);
    }
}

static void model_free(struct model *m)
{
    free(m->bytes);
    m->bytes = NULL;
}

static bool model_in_hole(const struct model *m, uint64_t off)
{
    for (size_t h = 0; h < m->n_holes; h++)
        if (off >= m->holes[h].off && off < m->holes[h].off + m->holes[h].len)
            return true;
    return false;
}

/* Reference XTS-AES-256 plain64, straight on OpenSSL (not core/crypto.c). */
static void ref_xts(const uint8_t *key, bool encrypt, uint64_t first_sector, uint8_t *p,
                    uint64_t len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    for (uint64_t off = 0; off < len; off += SECTOR) {
        uint8_t iv[16] = {0};
        uint64_t s = first_sector + off / SECTOR;
        int n = 0, f = 0;
        for (int i = 0; i < 8; i++)
            iv[i] = (uint8_t)(s >> (8 * i));
        assert_int_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv, encrypt), 1);
        assert_int_equal(EVP_CipherUpdate(ctx, p + off, &n, p + off, SECTOR), 1);
        assert_int_equal(EVP_CipherFinal_ex(ctx, p + off + n, &f), 1);
        assert_int_equal(n + f, SECTOR);
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* Writes the model as a file: plaintext (base 0, key NULL) or LUKS
 * payload at base under key; holes left unallocated. */
static int model_write(const struct model *m, const char *name, const uint8_t *key, uint64_t base)
{
    int fd = file_new(name, base + m->size);
    uint8_t *tmp = malloc(m->size);

    assert_non_null(tmp);
    memcpy(tmp, m->bytes, m->size);
    if (key != NULL)
        ref_xts(key, true, 0, tmp, m->size);
    for (uint64_t off = 0; off < m->size; off += SECTOR)
        if (!model_in_hole(m, off))
            pwrite_all(fd, tmp + off, SECTOR, base + off);
    free(tmp);
    return fd;
}

/* Reads the guest bytes of a file (decrypting with key when not NULL). */
static uint8_t *guest_read(int fd, uint64_t size, const uint8_t *key, uint64_t base)
{
    uint8_t *p = malloc(size);
    assert_non_null(p);
    pread_all(fd, p, size, base);
    if (key != NULL)
        ref_xts(key, false, 0, p, size);
    return p;
}

static struct disk_end plain_end(int fd)
{
    return (struct disk_end){.fd = fd, .luks = false};
}

static struct disk_end luks_end(int fd, const uint8_t *key, uint64_t base)
{
    return (struct disk_end){.fd = fd, .luks = true, .master_key = key, .payload_offset = base};
}

static bool files_equal(int a, int b)
{
    struct stat sa, sb;
    bool same = true;
    uint8_t *x, *y;

    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    if (sa.st_size != sb.st_size)
        return false;
    x = malloc((size_t)sa.st_size + 1);
    y = malloc((size_t)sb.st_size + 1);
    assert_true(x != NULL && y != NULL);
    pread_all(a, x, (size_t)sa.st_size, 0);
    pread_all(b, y, (size_t)sb.st_size, 0);
    same = memcmp(x, y, (size_t)sa.st_size) == 0;
    free(x);
    free(y);
    return same;
}

/* A disk whose size is no multiple of any chunk used here, with holes at
 * the start, in the middle, spanning chunk boundaries and at the end. */
static const struct range holes_a[] = {
    {0, 8 * KIB},
    {64 * KIB, 64 * KIB},
    {1 * MIB - 4 * KIB, 12 * KIB},
    {2 * MIB, 300 * KIB},
};
#define SIZE_A (3 * MIB + 7 * SECTOR)
/* The trailing 7 sectors and the last 4 KiB before them are left as a hole
 * too (an ftruncate'd tail): */
static const struct range holes_a_tail[] = {
    {0, 8 * KIB},
    {64 * KIB, 64 * KIB},
    {1 * MIB - 4 * KIB, 12 * KIB},
    {2 * MIB, 300 * KIB},
    {3 * MIB - 4 * KIB, 4 * KIB + 7 * SECTOR},
};

/* --- the cipher under the engine --- */

/* Reference XTS with any data unit size, straight on OpenSSL. */
static void ref_xts_units(const uint8_t *key, bool encrypt, uint64_t first, size_t unit,
                          const uint8_t *in, uint8_t *out, size_t len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    for (size_t off = 0; off < len; off += unit) {
        uint8_t iv[16] = {0};
        uint64_t s = first + off / unit;
        int n = 0, f = 0;
        for (int i = 0; i < 8; i++)
            iv[i] = (uint8_t)(s >> (8 * i));
        assert_int_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv, encrypt), 1);
        assert_int_equal(EVP_CipherUpdate(ctx, out + off, &n, in + off, (int)unit), 1);
        assert_int_equal(EVP_CipherFinal_ex(ctx, out + off + n, &f), 1);
        assert_int_equal((size_t)(n + f), unit);
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* core's XTS (written over AES-ECB for speed, crypto.c) against OpenSSL's
 * own AES-256-XTS: sector sizes from one block to 1 MiB, calls shorter and
 * longer than its internal batch, sectors straddling batches, sector numbers
 * where the tweak's bytes carry, misaligned buffers, in place or not. */
static void test_xts_matches_openssl(void **state)
{
    static const size_t units[] = {16,         32,    48,         512,   4096,
                                   16384 - 16, 16384, 16384 + 16, 65536, 1 << 20};
    static const uint64_t firsts[] = {
        0, 1, 0xff, 0xffffffffULL, 0x0123456789abcdefULL, UINT64_MAX - 40};
    const size_t max_len = 3 * MIB;
    uint8_t *in = malloc(max_len + 1), *got = malloc(max_len + 1), *want = malloc(max_len);
    struct crypto_xts *x = NULL;
    (void)state;

    assert_true(in != NULL && got != NULL && want != NULL);
    for (size_t i = 0; i < max_len + 1; i++)
        in[i] = (uint8_t)(i * 131 + (i >> 9));
    assert_ok(crypto_xts_new(key_a, &x));
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t unit = units[u];
        size_t counts[] = {1, 2, 3, 7, 33, 1025};
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            size_t len = unit * counts[c];
            if (len > max_len)
                continue;
            for (size_t f = 0; f < sizeof(firsts) / sizeof(firsts[0]); f++) {
                uint64_t first = firsts[f];
                if (first > UINT64_MAX - (counts[c] - 1))
                    continue;
                const uint8_t *src = in + (f & 1); /* misaligned half the time */
                ref_xts_units(key_a, true, first, unit, src, want, len);
                assert_ok(crypto_xts_encrypt(x, first, unit, src, got + 1, len));
                assert_memory_equal(got + 1, want, len);
                assert_ok(crypto_xts_decrypt(x, first, unit, got + 1, got + 1, len)); /* in place */
                assert_memory_equal(got + 1, src, len);
                ref_xts_units(key_a, false, first, unit, src, want, len);
                memcpy(got, src, len);
                assert_ok(crypto_xts_decrypt(x, first, unit, got, got, len));
                assert_memory_equal(got, want, len);
            }
        }
    }
    crypto_xts_free(&x);
    free(in);
    free(got);
    free(want);
}

/* --- round trips against the reference --- */

static void test_plain_to_luks_to_plain(void **state)
{
    struct model m;
    struct disk_copy_opts o = {.threads = 3, .chunk_bytes = 256 * KIB};
    uint8_t marker[SECTOR];
    (void)state;

    model_init(&m, SIZE_A, holes_a_tail, sizeof(holes_a_tail) / sizeof(holes_a_tail[0]), 1);
    int src = model_write(&m, "a.raw", NULL, 0);
    int luks = file_new("a.luks", LUKS_BASE + m.size);
    memset(marker, 0xa5, sizeof(marker));
    pwrite_all(luks, marker, sizeof(marker), 0); /* stands for the header */

    struct disk_end s = plain_end(src), d = luks_end(luks, key_a, LUKS_BASE);
    assert_ok(disk_copy(&s, &d, m.size, &o));

    /* Every payload sector written, holes as encrypted zeros: exactly the
     * reference encryption of the guest's view (zeros in holes). */
    assert_true(range_is_data(luks, LUKS_BASE, m.size));
    uint8_t *got = malloc(m.size), *want = malloc(m.size);
    assert_true(got != NULL && want != NULL);
    pread_all(luks, got, m.size, LUKS_BASE);
    memcpy(want, m.bytes, m.size);
    ref_xts(key_a, true, 0, want, m.size);
    assert_memory_equal(got, want, m.size);
    /* The header area is not touched. */
    uint8_t head[SECTOR];
    pread_all(luks, head, sizeof(head), 0);
    assert_memory_equal(head, marker, sizeof(marker));
    assert_true(range_is_hole(luks, 4096, LUKS_BASE - 4096));

    /* Back to plaintext: the guest's bytes, holes read as zeros. */
    int back = file_new("a.back", m.size);
    s = luks_end(luks, key_a, LUKS_BASE);
    d = plain_end(back);
    assert_ok(disk_copy(&s, &d, m.size, &o));
    free(got);
    got = guest_read(back, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size);

    free(got);
    free(want);
    close(src);
    close(luks);
    close(back);
    model_free(&m);
}

static void test_recrypt_then_decrypt(void **state)
{
    struct model m;
    struct disk_copy_opts o = {.threads = 2, .chunk_bytes = 128 * KIB};
    (void)state;

    model_init(&m, SIZE_A, holes_a, sizeof(holes_a) / sizeof(holes_a[0]), 2);
    int src = model_write(&m, "r.luks", key_a, LUKS_BASE);
    int dst = file_new("r2.luks", LUKS_BASE + m.size);

    struct disk_end s = luks_end(src, key_a, LUKS_BASE), d = luks_end(dst, key_b, LUKS_BASE);
    assert_ok(disk_copy(&s, &d, m.size, &o));

    /* Data sectors are the reference encryption under the new key; the
     * source's holes (never written) stay holes. */
    uint8_t *want = malloc(m.size), *got = malloc(m.size);
    assert_true(want != NULL && got != NULL);
    memcpy(want, m.bytes, m.size);
    ref_xts(key_b, true, 0, want, m.size);
    pread_all(dst, got, m.size, LUKS_BASE);
    for (uint64_t off = 0; off < m.size; off += SECTOR) {
        if (model_in_hole(&m, off))
            continue;
        assert_memory_equal(got + off, want + off, SECTOR);
    }
    for (size_t h = 0; h < sizeof(holes_a) / sizeof(holes_a[0]); h++)
        assert_true(range_is_hole(dst, LUKS_BASE + holes_a[h].off, holes_a[h].len));

    /* Decrypted with the new key: the guest's data; holes stay holes. */
    int plain = file_new("r.raw", m.size);
    s = luks_end(dst, key_b, LUKS_BASE);
    d = plain_end(plain);
    assert_ok(disk_copy(&s, &d, m.size, &o));
    free(got);
    got = guest_read(plain, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size);
    for (size_t h = 0; h < sizeof(holes_a) / sizeof(holes_a[0]); h++)
        assert_true(range_is_hole(plain, holes_a[h].off, holes_a[h].len));

    free(want);
    free(got);
    close(src);
    close(dst);
    close(plain);
    model_free(&m);
}

/* A payload offset that is a whole number of sectors but not of file system
 * blocks: extents reported by the file system are widened to whole sectors,
 * and whatever the guest reads is preserved. */
static void test_unaligned_payload_offset(void **state)
{
    struct model m;
    const uint64_t base = 3 * SECTOR;
    (void)state;

    model_init(&m, 1 * MIB + 5 * SECTOR, NULL, 0, 3);
    int src = model_write(&m, "u.luks", key_a, base);
    int dst = file_new("u2.luks", LUKS_BASE + m.size);
    int plain = file_new("u.raw", m.size);

    struct disk_end s = luks_end(src, key_a, base), d = luks_end(dst, key_b, LUKS_BASE);
    assert_ok(disk_copy(&s, &d, m.size, &(struct disk_copy_opts){.chunk_bytes = 96 * KIB}));
    s = luks_end(dst, key_b, LUKS_BASE);
    d = plain_end(plain);
    assert_ok(disk_copy(&s, &d, m.size, NULL));
    uint8_t *got = guest_read(plain, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size);

    free(got);
    close(src);
    close(dst);
    close(plain);
    model_free(&m);
}

static void test_wrong_key_gives_other_data(void **state)
{
    struct model m;
    (void)state;

    model_init(&m, 512 * KIB, NULL, 0, 4);
    int src = model_write(&m, "w.luks", key_a, LUKS_BASE);
    int out = file_new("w.raw", m.size);

    struct disk_end s = luks_end(src, key_b, LUKS_BASE), d = plain_end(out);
    assert_ok(disk_copy(&s, &d, m.size, NULL)); /* XTS cannot tell */
    uint8_t *got = guest_read(out, m.size, NULL, 0);
    for (uint64_t off = 0; off < m.size; off += SECTOR)
        assert_memory_not_equal(got + off, m.bytes + off, SECTOR);
    free(got);
    close(out);

    /* The right key on the same source gives the data back. */
    out = file_new("w2.raw", m.size);
    s = luks_end(src, key_a, LUKS_BASE);
    d = plain_end(out);
    assert_ok(disk_copy(&s, &d, m.size, NULL));
    got = guest_read(out, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size);

    free(got);
    close(src);
    close(out);
    model_free(&m);
}

/* --- holes --- */

static void test_plain_holes_stay_holes(void **state)
{
    struct model m;
    (void)state;

    model_init(&m, SIZE_A, holes_a_tail, sizeof(holes_a_tail) / sizeof(holes_a_tail[0]), 5);
    int src = model_write(&m, "h.raw", NULL, 0);
    int dst = file_new("h2.raw", m.size);

    struct disk_end s = plain_end(src), d = plain_end(dst);
    assert_ok(disk_copy(&s, &d, m.size, &(struct disk_copy_opts){.chunk_bytes = 64 * KIB}));
    uint8_t *got = guest_read(dst, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size);
    for (size_t h = 0; h < sizeof(holes_a_tail) / sizeof(holes_a_tail[0]); h++)
        assert_true(range_is_hole(dst, holes_a_tail[h].off, holes_a_tail[h].len));
    assert_true(range_is_data(dst, 8 * KIB, 56 * KIB));
    /* No more allocated than the source (a file system may round up). */
    assert_true(allocated_bytes(dst) <= allocated_bytes(src) + 64 * KIB);
    assert_true(allocated_bytes(dst) < m.size);

    free(got);
    close(src);
    close(dst);
    model_free(&m);
}

static void test_luks_holes_stay_holes_into_plain(void **state)
{
    struct model m;
    (void)state;

    model_init(&m, SIZE_A, holes_a_tail, sizeof(holes_a_tail) / sizeof(holes_a_tail[0]), 6);
    int src = model_write(&m, "lh.luks", key_a, LUKS_BASE);
    int dst = file_new("lh.raw", m.size);

    struct disk_end s = luks_end(src, key_a, LUKS_BASE), d = plain_end(dst);
    assert_ok(disk_copy(&s, &d, m.size, &(struct disk_copy_opts){.threads = 4}));
    uint8_t *got = guest_read(dst, m.size, NULL, 0);
    assert_memory_equal(got, m.bytes, m.size); /* holes: zeros, as in the model */
    for (size_t h = 0; h < sizeof(holes_a_tail) / sizeof(holes_a_tail[0]); h++)
        assert_true(range_is_hole(dst, holes_a_tail[h].off, holes_a_tail[h].len));
    assert_true(allocated_bytes(dst) < m.size);

    free(got);
    close(src);
    close(dst);
    model_free(&m);
}

/* An all-hole plaintext source (an empty imported disk) into LUKS: every
 * sector becomes encrypted zeros, which the guest reads as zeros. */
static void test_plain_empty_into_luks_reads_zeros(void **state)
{
    const uint64_t size = 2 * MIB + 512;
    (void)state;

    int src = file_new("z.raw", size);
    int dst = file_new("z.luks", LUKS_BASE + size);
    struct disk_end s = plain_end(src), d = luks_end(dst, key_a, LUKS_BASE);
    assert_ok(disk_copy(&s, &d, size, NULL));
    assert_true(range_is_data(dst, LUKS_BASE, size));
    uint8_t *got = guest_read(dst, size, key_a, LUKS_BASE);
    uint8_t *zero = calloc(1, size);
    assert_non_null(zero);
    assert_memory_equal(got, zero, size);
    /* ...and the ciphertext is not zeros. */
    pread_all(dst, got, SECTOR, LUKS_BASE);
    assert_memory_not_equal(got, zero, SECTOR);

    free(got);
    free(zero);
    close(src);
    close(dst);
}

/* --- threads --- */

static void test_threads_give_identical_output(void **state)
{
    struct model m;
    static const struct disk_copy_opts variants[] = {
        {.threads = 1, .chunk_bytes = 64 * KIB},
        {.threads = 4, .chunk_bytes = 36 * SECTOR},
        {.threads = 0, .chunk_bytes = 0},
        {.threads = 7, .chunk_bytes = 1 * MIB},
    };
    int enc[4], rec[4];
    (void)state;

    model_init(&m, SIZE_A, holes_a, sizeof(holes_a) / sizeof(holes_a[0]), 7);
    int plain = model_write(&m, "t.raw", NULL, 0);
    int luks = model_write(&m, "t.luks", key_a, LUKS_BASE);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t.enc%d", i);
        enc[i] = file_new(name, LUKS_BASE + m.size);
        snprintf(name, sizeof(name), "t.rec%d", i);
        rec[i] = file_new(name, LUKS_BASE + m.size);
        struct disk_end s = plain_end(plain), d = luks_end(enc[i], key_b, LUKS_BASE);
        assert_ok(disk_copy(&s, &d, m.size, &variants[i]));
        s = luks_end(luks, key_a, LUKS_BASE);
        d = luks_end(rec[i], key_b, LUKS_BASE);
        assert_ok(disk_copy(&s, &d, m.size, &variants[i]));
    }
    for (int i = 1; i < 4; i++) {
        assert_true(files_equal(enc[0], enc[i]));
        assert_true(files_equal(rec[0], rec[i]));
        assert_int_equal(allocated_bytes(rec[0]), allocated_bytes(rec[i]));
    }
    for (int i = 0; i < 4; i++) {
        close(enc[i]);
        close(rec[i]);
    }
    close(plain);
    close(luks);
    model_free(&m);
}

/* Chunks so large that only two fit in the engine's buffer budget: threads
 * wait for a free slot in turn, and every chunk still gets through. A
 * sparse LUKS disk keeps it cheap: only its few data extents move. */
static void test_large_chunks_few_slots(void **state)
{
    const uint64_t size = 600 * MIB;
    static const uint64_t at[] = {0, 130 * MIB - 32 * KIB, 300 * MIB, 600 * MIB - 64 * KIB};
    uint8_t piece[64 * 1024], *want = malloc(sizeof(piece)), *got = malloc(sizeof(piece));
    (void)state;

    assert_true(want != NULL && got != NULL);
    int src = file_new("big.luks", LUKS_BASE + size);
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        memset(piece, (int)(0x41 + i), sizeof(piece));
        ref_xts(key_a, true, at[i] / SECTOR, piece, sizeof(piece));
        pwrite_all(src, piece, sizeof(piece), LUKS_BASE + at[i]);
    }
    int dst = file_new("big2.luks", LUKS_BASE + size);
    struct disk_end s = luks_end(src, key_a, LUKS_BASE), d = luks_end(dst, key_b, LUKS_BASE);
    assert_ok(
        disk_copy(&s, &d, size, &(struct disk_copy_opts){.threads = 4, .chunk_bytes = 128 * MIB}));
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        memset(want, (int)(0x41 + i), sizeof(piece));
        pread_all(dst, got, sizeof(piece), LUKS_BASE + at[i]);
        ref_xts(key_b, false, at[i] / SECTOR, got, sizeof(piece));
        assert_memory_equal(got, want, sizeof(piece));
    }
    assert_true(range_is_hole(dst, LUKS_BASE + 64 * KIB, 100 * MIB));
    assert_true(allocated_bytes(dst) < 2 * MIB);

    free(want);
    free(got);
    close(src);
    close(dst);
}

/* --- progress and cancellation --- */

struct progress_log {
    uint64_t done[64];
    uint64_t total[64];
    size_t n;
    atomic_bool *cancel_at_first; /* when set: cancel on the first report */
};

static void progress_record(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_log *log = ctx;
    if (log->n < 64) {
        log->done[log->n] = done;
        log->total[log->n] = total;
    }
    log->n++;
    if (log->cancel_at_first != NULL)
        atomic_store(log->cancel_at_first, true);
}

static void test_progress_is_monotonic_and_ends_at_total(void **state)
{
    /* Sparse plaintext: 320 MiB of guest, a few MiB of data, cheap to copy
     * while crossing several 64 MiB steps. */
    const uint64_t size = 320 * MIB + 3 * SECTOR;
    struct progress_log log = {0};
    uint8_t data[64 * 1024];
    (void)state;

    int src = file_new("p.raw", size);
    memset(data, 0x3c, sizeof(data));
    for (uint64_t off = 0; off < size - sizeof(data); off += 32 * MIB)
        pwrite_all(src, data, sizeof(data), off);
    int dst = file_new("p2.raw", size);
    struct disk_end s = plain_end(src), d = plain_end(dst);
    struct disk_copy_opts o = {.threads = 2, .progress = progress_record, .progress_ctx = &log};
    assert_ok(disk_copy(&s, &d, size, &o));

    assert_true(log.n >= 3 && log.n <= 64);
    for (size_t i = 0; i < log.n; i++) {
        assert_int_equal(log.total[i], size);
        assert_true(log.done[i] <= size);
        if (i > 0)
            assert_true(log.done[i] > log.done[i - 1]);
    }
    assert_int_equal(log.done[log.n - 1], size); /* once, at the end */
    close(src);
    close(dst);

    /* An empty disk reports once: done == total == 0. */
    memset(&log, 0, sizeof(log));
    src = file_new("p0.raw", 0);
    dst = file_new("p0b.raw", 0);
    s = plain_end(src);
    d = plain_end(dst);
    assert_ok(disk_copy(&s, &d, 0, &o));
    assert_int_equal(log.n, 1);
    assert_int_equal(log.done[0], 0);
    assert_int_equal(log.total[0], 0);
    close(src);
    close(dst);
}

static void test_cancel(void **state)
{
    const uint64_t size = 320 * MIB;
    atomic_bool cancel;
    struct progress_log log = {0};
    (void)state;

    int src = file_new("c.raw", size);
    int dst = file_new("c2.raw", size);
    struct disk_end s = plain_end(src), d = plain_end(dst);

    /* Already cancelled: nothing is done. */
    atomic_init(&cancel, true);
    struct disk_copy_opts o = {.threads = 2, .cancel = &cancel};
    assert_err(disk_copy(&s, &d, size, &o), ERR_CANCELLED);

    /* Cancelled from the first progress report: stops, never reports the
     * end. */
    atomic_store(&cancel, false);
    log.cancel_at_first = &cancel;
    o.progress = progress_record;
    o.progress_ctx = &log;
    o.chunk_bytes = 1 * MIB;
    assert_err(disk_copy(&s, &d, size, &o), ERR_CANCELLED);
    assert_true(log.n >= 1);
    for (size_t i = 0; i < log.n && i < 64; i++)
        assert_true(log.done[i] < size);

    /* Encrypting (threads busy with the cipher) is cancelled the same way. */
    int luks = file_new("c.luks", LUKS_BASE + size);
    memset(&log, 0, sizeof(log));
    atomic_store(&cancel, false);
    log.cancel_at_first = &cancel;
    d = luks_end(luks, key_a, LUKS_BASE);
    assert_err(disk_copy(&s, &d, size, &o), ERR_CANCELLED);
    assert_true(log.n >= 1 && log.done[0] < size);
    /* It stopped soon after: the end of the payload was never written. */
    assert_true(range_is_hole(luks, LUKS_BASE + size - 128 * MIB, 128 * MIB));

    close(src);
    close(dst);
    close(luks);
}

/* --- refusals --- */

static void test_short_source(void **state)
{
    struct model m;
    (void)state;

    model_init(&m, 1 * MIB, NULL, 0, 8);
    /* The file holds one sector less than base + guest size. */
    int plain = model_write(&m, "s.raw", NULL, 0);
    assert_int_equal(ftruncate(plain, (off_t)(m.size - SECTOR)), 0);
    int luks = model_write(&m, "s.luks", key_a, LUKS_BASE);
    assert_int_equal(ftruncate(luks, (off_t)(LUKS_BASE + m.size - SECTOR)), 0);
    int dst = file_new("s.out", m.size);
    int dst_luks = file_new("s.out.luks", LUKS_BASE + m.size);

    struct disk_end s = plain_end(plain), d = plain_end(dst);
    assert_err(disk_copy(&s, &d, m.size, NULL), ERR_IO);
    d = luks_end(dst_luks, key_b, LUKS_BASE);
    assert_err(disk_copy(&s, &d, m.size, NULL), ERR_IO);
    s = luks_end(luks, key_a, LUKS_BASE);
    assert_err(disk_copy(&s, &d, m.size, NULL), ERR_IO);
    /* A source with no payload at all. */
    int header_only = file_new("s.hdr", LUKS_BASE);
    s = luks_end(header_only, key_a, LUKS_BASE);
    assert_err(disk_copy(&s, &d, m.size, NULL), ERR_IO);

    close(plain);
    close(luks);
    close(dst);
    close(dst_luks);
    close(header_only);
    model_free(&m);
}

static void test_bad_arguments(void **state)
{
    const uint64_t size = 64 * KIB;
    (void)state;

    int src = file_new("b.raw", size);
    int dst = file_new("b2.raw", size);
    int luks = file_new("b.luks", LUKS_BASE + size);
    struct disk_end s = plain_end(src), d = plain_end(dst);

    assert_err(disk_copy(&s, &d, size - 1, NULL), ERR_INVALID_ARG); /* not whole sectors */
    assert_err(disk_copy(&s, &d, size, &(struct disk_copy_opts){.chunk_bytes = 1000}),
               ERR_INVALID_ARG);
    assert_err(disk_copy(&s, &s, size, NULL), ERR_INVALID_ARG); /* same descriptor */

    /* The same file through two descriptors: the source would be written. */
    char path[128];
    snprintf(path, sizeof(path), "%s/b.raw", dir);
    int again = open(path, O_RDWR | O_CLOEXEC);
    assert_true(again >= 0);
    d = plain_end(again);
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    close(again);

    /* A destination of the wrong size: skipped holes would not be holes. */
    d = plain_end(dst);
    assert_err(disk_copy(&s, &d, size - SECTOR, NULL), ERR_INVALID_ARG);
    d = luks_end(luks, key_a, LUKS_BASE);
    assert_err(disk_copy(&s, &d, size - SECTOR, NULL), ERR_INVALID_ARG);

    /* Ends that contradict themselves. */
    d = (struct disk_end){.fd = dst, .luks = false, .master_key = key_a};
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    d = (struct disk_end){.fd = dst, .luks = false, .payload_offset = 4096};
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    d = (struct disk_end){.fd = luks, .luks = true, .payload_offset = LUKS_BASE};
    assert_err(disk_copy(&s, &d, size, NULL), ERR_NULL_ARG);
    d = luks_end(luks, key_a, LUKS_BASE - 100);
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    d = plain_end(-1);
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    d = plain_end(dst);
    s = luks_end(src, key_a, UINT64_MAX - 100);
    assert_err(disk_copy(&s, &d, size, NULL), ERR_INVALID_ARG);
    s = luks_end(src, key_a, UINT64_MAX - 511);
    assert_err(disk_copy(&s, &d, size, NULL), ERR_OVERFLOW);

    /* An XTS key whose halves are equal is refused, by every worker. */
    uint8_t *weak = NULL;
    assert_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&weak));
    memset(weak, 0x11, LUKS1_MASTER_KEY_LEN);
    s = plain_end(src);
    d = luks_end(luks, weak, LUKS_BASE);
    assert_err(
        disk_copy(&s, &d, size, &(struct disk_copy_opts){.threads = 4, .chunk_bytes = 4 * KIB}),
        ERR_INVALID_ARG);
    secret_free((void **)&weak);

    close(src);
    close(dst);
    close(luks);
}

/* A destination that cannot be written: the error of a worker thread
 * reaches the caller with its detail. */
static void test_destination_write_error(void **state)
{
    struct model m;
    char path[128];
    (void)state;

    model_init(&m, 1 * MIB, NULL, 0, 9);
    int src = model_write(&m, "e.raw", NULL, 0);
    int dst = file_new("e.luks", LUKS_BASE + m.size);
    close(dst);
    snprintf(path, sizeof(path), "%s/e.luks", dir);
    dst = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(dst >= 0);

    struct disk_end s = plain_end(src), d = luks_end(dst, key_a, LUKS_BASE);
    assert_err(
        disk_copy(&s, &d, m.size, &(struct disk_copy_opts){.threads = 3, .chunk_bytes = 64 * KIB}),
        ERR_IO);
    assert_int_equal(err_last()->sys_errno, EBADF);

    close(src);
    close(dst);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xts_matches_openssl),
        cmocka_unit_test(test_plain_to_luks_to_plain),
        cmocka_unit_test(test_recrypt_then_decrypt),
        cmocka_unit_test(test_unaligned_payload_offset),
        cmocka_unit_test(test_wrong_key_gives_other_data),
        cmocka_unit_test(test_plain_holes_stay_holes),
        cmocka_unit_test(test_luks_holes_stay_holes_into_plain),
        cmocka_unit_test(test_plain_empty_into_luks_reads_zeros),
        cmocka_unit_test(test_threads_give_identical_output),
        cmocka_unit_test(test_large_chunks_few_slots),
        cmocka_unit_test(test_progress_is_monotonic_and_ends_at_total),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_short_source),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_destination_write_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
