/*
 * diskbench - drives the bulk engine (src/disk/engine.c) for
 * bench/disk/run.sh, which runs `qemu-img convert` on the same files in the
 * same run.
 *
 *   diskbench fill PATH SIZE
 *       creates PATH (new, 0600) with SIZE bytes of pseudo-random data, every
 *       block written: a fully written plaintext disk.
 *   diskbench mkluks PATH SIZE SECRET_FILE
 *       creates PATH as an empty LUKS1 disk of SIZE guest bytes (payload
 *       sparse) with a random DEK, key slot 0 opened by the secret in
 *       SECRET_FILE: a target for `qemu-img convert -n`.
 *   diskbench copy OP SRC SRC_SECRET DST DST_SECRET [THREADS]
 *       OP is plain (plaintext -> new plaintext, no cipher: the I/O cost
 *       alone), encrypt (plaintext SRC -> new LUKS1 DST), decrypt (LUKS1 SRC ->
 *       new plaintext DST) or recrypt (LUKS1 SRC -> new LUKS1 DST with a new
 *       random DEK: deep rekey, clone with re-encryption). A secret that the
 *       operation does not need is given as "-". DST must not exist. Opens
 *       SRC's header, creates DST (LUKS1 header via luks1_create_file, or an
 *       empty sparse file), runs disk_copy (fdatasync included) and prints
 *
 *         engine_seconds S guest_bytes N gbps G
 *
 *       where S times disk_copy alone and G = N / S / 1e9.
 *
 * A secret is given as its LUKS passphrase file (64 hex digits, 0600, on
 * tmpfs, made by run.sh) because qemu-img reads the same file
 * (--object secret,file=...); it is decoded into secret memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"
#include "disk/engine.h"
#include "disk/luks1.h"

static void die(const char *what)
{
    char msg[512];
    fprintf(stderr, "diskbench: %s: %s\n", what, err_format(msg, sizeof(msg)));
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: diskbench fill PATH SIZE\n"
            "       diskbench mkluks PATH SIZE SECRET_FILE\n"
            "       diskbench copy plain|encrypt|decrypt|recrypt SRC SRC_SECRET DST DST_SECRET "
            "[THREADS]\n");
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t parse_u64(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "diskbench: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

/* Reads a disk secret from its passphrase file (LUKS1_PASSPHRASE_LEN hex
 * digits, no newline: what qemu-img reads too, luks1.h) into secret
 * memory. */
static uint8_t *read_secret(const char *path)
{
    struct buf text, raw;
    uint8_t *s = NULL;
    char *hex = NULL;

    if (!is_ok(buf_alloc_secret(&text, 0, LUKS1_PASSPHRASE_LEN + 1)) ||
        !is_ok(file_read_all(path, LUKS1_PASSPHRASE_LEN, &text)))
        die(path);
    if (buf_len(&text) != LUKS1_PASSPHRASE_LEN) {
        fprintf(stderr, "diskbench: %s: need %d hex digits\n", path, LUKS1_PASSPHRASE_LEN);
        exit(1);
    }
    if (!is_ok(secret_alloc(LUKS1_PASSPHRASE_LEN + 1, (void **)&hex)))
        die("secret_alloc");
    memcpy(hex, buf_data(&text), LUKS1_PASSPHRASE_LEN);
    if (!is_ok(buf_alloc_secret(&raw, 0, LUKS1_SECRET_LEN)) || !is_ok(buf_write_hex(&raw, hex)) ||
        buf_len(&raw) != LUKS1_SECRET_LEN)
        die(path);
    if (!is_ok(secret_alloc(LUKS1_SECRET_LEN, (void **)&s)))
        die("secret_alloc");
    memcpy(s, buf_data(&raw), LUKS1_SECRET_LEN);
    buf_free(&raw);
    buf_free(&text);
    secret_free((void **)&hex);
    return s;
}

static uint8_t *new_dek(void)
{
    uint8_t *k = NULL;
    if (!is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&k)) ||
        !is_ok(crypto_random_key(k, LUKS1_MASTER_KEY_LEN)))
        die("new DEK");
    return k;
}

static int cmd_fill(const char *path, uint64_t size)
{
    static uint64_t block[1 << 17]; /* 1 MiB */
    uint64_t x = 0x853c49e6748fea9bULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0) {
        perror(path);
        return 1;
    }
    for (uint64_t off = 0; off < size; off += sizeof(block)) {
        size_t n = size - off < sizeof(block) ? (size_t)(size - off) : sizeof(block);
        for (size_t i = 0; i < n / 8; i++) { /* splitmix64 */
            uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            block[i] = z ^ (z >> 31);
        }
        if (pwrite(fd, block, n, (off_t)off) != (ssize_t)n) {
            perror(path);
            return 1;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int cmd_mkluks(const char *path, uint64_t size, const char *secret_path)
{
    uint8_t *secret = read_secret(secret_path), *dek = new_dek();

    if (!is_ok(luks1_create_file(path, size, dek, secret)))
        die(path);
    secret_free((void **)&dek);
    secret_free((void **)&secret);
    return 0;
}

/* Opens a LUKS1 source: its DEK and payload offset. */
static int open_luks(const char *path, const char *secret_path, uint8_t **dek, uint64_t *payload,
                     uint64_t *guest_size)
{
    struct luks1_info info;
    struct stat st;
    uint8_t *secret = read_secret(secret_path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        perror(path);
        exit(1);
    }
    if (!is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)dek)) ||
        !is_ok(luks1_open(fd, secret, *dek, &info)))
        die(path);
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < info.payload_offset_bytes) {
        fprintf(stderr, "diskbench: %s: shorter than its header\n", path);
        exit(1);
    }
    *payload = info.payload_offset_bytes;
    *guest_size = (uint64_t)st.st_size - info.payload_offset_bytes;
    secret_free((void **)&secret);
    return fd;
}

static int cmd_copy(const char *op, const char *src_path, const char *src_secret,
                    const char *dst_path, const char *dst_secret, unsigned threads)
{
    bool src_luks, dst_luks;
    struct disk_end src = {0}, dst = {0};
    uint8_t *src_dek = NULL, *dst_dek = NULL, *secret = NULL;
    uint64_t guest_size;
    struct luks1_info info;
    struct stat st;

    if (strcmp(op, "plain") == 0) {
        src_luks = false, dst_luks = false;
    } else if (strcmp(op, "encrypt") == 0) {
        src_luks = false, dst_luks = true;
    } else if (strcmp(op, "decrypt") == 0) {
        src_luks = true, dst_luks = false;
    } else if (strcmp(op, "recrypt") == 0) {
        src_luks = true, dst_luks = true;
    } else {
        usage();
        return 2;
    }

    if (src_luks) {
        src.fd = open_luks(src_path, src_secret, &src_dek, &src.payload_offset, &guest_size);
        src.luks = true;
        src.master_key = src_dek;
    } else {
        src.fd = open(src_path, O_RDONLY | O_CLOEXEC);
        if (src.fd < 0 || fstat(src.fd, &st) != 0) {
            perror(src_path);
            return 1;
        }
        guest_size = (uint64_t)st.st_size;
    }

    if (dst_luks) {
        secret = read_secret(dst_secret);
        dst_dek = new_dek();
        if (!is_ok(luks1_create_file(dst_path, guest_size, dst_dek, secret)))
            die(dst_path);
        dst.fd = open(dst_path, O_RDWR | O_CLOEXEC);
        if (dst.fd < 0) {
            perror(dst_path);
            return 1;
        }
        if (!is_ok(luks1_read_header(dst.fd, &info)))
            die(dst_path);
        dst.luks = true;
        dst.master_key = dst_dek;
        dst.payload_offset = info.payload_offset_bytes;
    } else {
        dst.fd = open(dst_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (dst.fd < 0 || ftruncate(dst.fd, (off_t)guest_size) != 0) {
            perror(dst_path);
            return 1;
        }
    }

    struct disk_copy_opts opts = {.threads = threads};
    double t0 = now();
    if (!is_ok(disk_copy(&src, &dst, guest_size, &opts)))
        die("disk_copy");
    double t = now() - t0;
    printf("engine_seconds %.3f guest_bytes %llu gbps %.3f\n", t, (unsigned long long)guest_size,
           (double)guest_size / t / 1e9);

    close(src.fd);
    close(dst.fd);
    secret_free((void **)&src_dek);
    secret_free((void **)&dst_dek);
    secret_free((void **)&secret);
    return 0;
}

int main(int argc, char **argv)
{
    /* Keys are in this process: no core dumps (crypto.h). */
    if (!is_ok(secret_harden_process()))
        die("secret_harden_process");
    if (argc == 4 && strcmp(argv[1], "fill") == 0)
        return cmd_fill(argv[2], parse_u64(argv[3]));
    if (argc == 5 && strcmp(argv[1], "mkluks") == 0)
        return cmd_mkluks(argv[2], parse_u64(argv[3]), argv[4]);
    if ((argc == 7 || argc == 8) && strcmp(argv[1], "copy") == 0)
        return cmd_copy(argv[2], argv[3], argv[4], argv[5], argv[6],
                        argc == 8 ? (unsigned)parse_u64(argv[7]) : 0);
    usage();
    return 2;
}
