/*
 * engine_tool - test helper for tests/integration/test_engine_interop.py:
 * the bulk engine (disk/engine.h) from the command line, on real files that
 * QEMU then reads (or wrote).
 *
 * Secrets never come on the command line: they are read from stdin, 32 raw
 * bytes each, in the order listed.
 *
 *   mkluks PATH SIZE                  secret; new empty LUKS1 disk (payload
 *                                     sparse), random DEK
 *   copy OP SRC DST [THREADS [CHUNK]] OP is plain, encrypt, decrypt or
 *                                     recrypt; secrets: the source's (LUKS
 *                                     source), then the new disk's (LUKS
 *                                     destination). DST must not exist: it
 *                                     is created (LUKS1 header with a random
 *                                     DEK, or an empty sparse file) and
 *                                     filled by disk_copy. Prints
 *                                     "progress DONE TOTAL" per report, then
 *                                     "ok".
 *
 * On failure: "error ERR_NAME: message" on stderr, exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "disk/engine.h"
#include "disk/luks1.h"

static int fail(void)
{
    char msg[512];
    fprintf(stderr, "error %s: %s\n", err_name(err_last()->code), err_format(msg, sizeof(msg)));
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: engine_tool mkluks PATH SIZE\n"
                    "       engine_tool copy plain|encrypt|decrypt|recrypt SRC DST [THREADS "
                    "[CHUNK]]\n");
    return 2;
}

static RESULT parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    ENSURE(errno == 0 && end != s && *end == '\0', ERR_INVALID_ARG);
    *out = v;
    return OK_RESULT;
}

/* One secret from stdin into secret memory. */
static RESULT read_secret(uint8_t **out)
{
    uint8_t *s = NULL;
    size_t got = 0;

    GUARD(secret_alloc(LUKS1_SECRET_LEN, (void **)&s));
    while (got < LUKS1_SECRET_LEN) {
        ssize_t n = read(0, s + got, LUKS1_SECRET_LEN - got);
        if (n <= 0) {
            secret_free((void **)&s);
            RAISE(ERR_INVALID_ARG);
            return err_detail("stdin: a secret of %d bytes was expected", LUKS1_SECRET_LEN);
        }
        got += (size_t)n;
    }
    *out = s;
    return OK_RESULT;
}

static RESULT new_dek(uint8_t **out)
{
    GUARD(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)out));
    return crypto_random_key(*out, LUKS1_MASTER_KEY_LEN);
}

static RESULT cmd_mkluks(const char *path, const char *size_arg)
{
    vs_result rc = OK_RESULT;
    uint8_t *secret = NULL, *dek = NULL;
    uint64_t size;

    GUARD(parse_u64(size_arg, &size));
    GUARD_OUT(read_secret(&secret));
    GUARD_OUT(new_dek(&dek));
    GUARD_OUT(luks1_create_file(path, size, dek, secret));
out:
    secret_free((void **)&secret);
    secret_free((void **)&dek);
    return rc;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    printf("progress %llu %llu\n", (unsigned long long)done, (unsigned long long)total);
}

static RESULT cmd_copy(int argc, char **argv)
{
    static const struct {
        const char *name;
        bool src_luks, dst_luks;
    } ops[] = {
        {"plain", false, false},
        {"encrypt", false, true},
        {"decrypt", true, false},
        {"recrypt", true, true},
    };
    vs_result rc = OK_RESULT;
    struct disk_end src = {.fd = -1}, dst = {.fd = -1};
    struct disk_copy_opts opts = {.progress = on_progress};
    uint8_t *src_key = NULL, *dst_key = NULL, *secret = NULL;
    struct luks1_info info;
    struct stat st;
    uint64_t guest_size, n;
    size_t op = sizeof(ops) / sizeof(ops[0]);

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(argv[0], ops[i].name) == 0)
            op = i;
    ENSURE(op < sizeof(ops) / sizeof(ops[0]), ERR_INVALID_ARG);
    if (argc > 3) {
        GUARD(parse_u64(argv[3], &n));
        opts.threads = (unsigned)n;
    }
    if (argc > 4) {
        GUARD(parse_u64(argv[4], &n));
        opts.chunk_bytes = (size_t)n;
    }

    src.fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    ENSURE_OUT(src.fd >= 0 && fstat(src.fd, &st) == 0, ERR_IO);
    if (ops[op].src_luks) {
        GUARD_OUT(read_secret(&secret));
        GUARD_OUT(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&src_key));
        GUARD_OUT(luks1_open(src.fd, secret, src_key, &info));
        secret_free((void **)&secret);
        ENSURE_OUT((uint64_t)st.st_size >= info.payload_offset_bytes, ERR_DISK_FORMAT);
        src.luks = true;
        src.master_key = src_key;
        src.payload_offset = info.payload_offset_bytes;
        guest_size = (uint64_t)st.st_size - info.payload_offset_bytes;
    } else {
        guest_size = (uint64_t)st.st_size;
    }

    if (ops[op].dst_luks) {
        GUARD_OUT(read_secret(&secret));
        GUARD_OUT(new_dek(&dst_key));
        GUARD_OUT(luks1_create_file(argv[2], guest_size, dst_key, secret));
        dst.fd = open(argv[2], O_RDWR | O_CLOEXEC);
        ENSURE_OUT(dst.fd >= 0, ERR_IO);
        GUARD_OUT(luks1_read_header(dst.fd, &info));
        dst.luks = true;
        dst.master_key = dst_key;
        dst.payload_offset = info.payload_offset_bytes;
    } else {
        dst.fd = open(argv[2], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ENSURE_OUT(dst.fd >= 0 && ftruncate(dst.fd, (off_t)guest_size) == 0, ERR_IO);
    }

    GUARD_OUT(disk_copy(&src, &dst, guest_size, &opts));
    printf("ok\n");
out:
    if (src.fd >= 0)
        close(src.fd);
    if (dst.fd >= 0)
        close(dst.fd);
    secret_free((void **)&secret);
    secret_free((void **)&src_key);
    secret_free((void **)&dst_key);
    return rc;
}

int main(int argc, char **argv)
{
    vs_result rc;

    if (!is_ok(secret_harden_process()))
        return fail();
    if (argc == 4 && strcmp(argv[1], "mkluks") == 0)
        rc = cmd_mkluks(argv[2], argv[3]);
    else if (argc >= 5 && argc <= 7 && strcmp(argv[1], "copy") == 0)
        rc = cmd_copy(argc - 2, argv + 2);
    else
        return usage();
    return is_ok(rc) ? 0 : fail();
}
