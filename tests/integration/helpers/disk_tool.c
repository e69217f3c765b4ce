/*
 * disk_tool - test helper for tests/integration/test_disk_interop.py: the
 * disk room (luks1.h, image.h) from the command line.
 *
 * Secrets never come on the command line: every command that needs some
 * reads them from stdin, 32 raw bytes each, in the order the command lists
 * (for a chain: each encrypted layer, top first).
 *
 *   create-luks PATH SIZE          secret; new LUKS1 disk, random DEK
 *   open-luks PATH                 secret; prints the header's fields and
 *                                  "mk-sha256 <hex>" (a digest, not the key)
 *   read-payload PATH OFF LEN      secret; guest bytes [OFF, OFF+LEN) to
 *                                  stdout, decrypted by vmseal (luks1 + XTS)
 *   write-payload PATH OFF FILE    secret; FILE's bytes encrypted by vmseal at
 *                                  guest offset OFF (whole sectors)
 *   overlay PATH (plain|encrypted) LAYER...
 *                                  [overlay secret], layer secrets
 *   commit LAYER...                layer secrets
 *   rebase OVERLAY BACKING         layer secrets (overlay, then backing)
 *   export OUT LAYER...            layer secrets
 *   size LAYER...                  layer secrets; prints the guest size
 *   probe PATH                     prints "<raw|qcow2> <size>"
 *   convert IN (raw|qcow2) OUT
 *   qemu NODE QMP_SOCKET LOG LAYER...
 *                                  layer secrets; starts QEMU (paused, QMP on
 *                                  the socket) with the chain, prints its pid
 *
 * A LAYER is FORMAT:PATH with FORMAT raw, luks, qcow2 or qcow2-luks. On
 * failure: "error ERR_NAME: message" on stderr, exit status 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/secret.h"
#include "disk/image.h"
#include "disk/luks1.h"

#define MAX_SECRETS (DISK_CHAIN_MAX + 1)

static uint8_t *secrets[MAX_SECRETS]; /* secret memory, freed at exit */
static size_t secret_count;

static int fail(void)
{
    char msg[512];
    fprintf(stderr, "error %s: %s\n", err_name(err_last()->code), err_format(msg, sizeof(msg)));
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: see the comment at the top of disk_tool.c\n");
    return 2;
}

static void free_secrets(void)
{
    for (size_t i = 0; i < secret_count; i++)
        secret_free((void **)&secrets[i]);
    secret_count = 0;
}

/* The next secret from stdin. */
static RESULT next_secret(const uint8_t **out)
{
    size_t got = 0;
    uint8_t *s = NULL;

    ENSURE(secret_count < MAX_SECRETS, ERR_TOO_LARGE);
    GUARD(secret_alloc(LUKS1_SECRET_LEN, (void **)&s));
    while (got < LUKS1_SECRET_LEN) {
        ssize_t n = read(STDIN_FILENO, s + got, LUKS1_SECRET_LEN - got);
        if (n <= 0) {
            secret_free((void **)&s);
            err_raise(ERR_INVALID_ARG, __FILE__, __LINE__);
            return err_detail("stdin ended before secret %zu", secret_count + 1);
        }
        got += (size_t)n;
    }
    secrets[secret_count++] = s;
    *out = s;
    return OK_RESULT;
}

static RESULT parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    ENSURE(s[0] >= '0' && s[0] <= '9', ERR_INVALID_ARG);
    v = strtoull(s, &end, 10);
    ENSURE(*end == '\0', ERR_INVALID_ARG);
    *out = v;
    return OK_RESULT;
}

static const struct {
    const char *name;
    enum disk_format format;
} formats[] = {
    {"raw", DISK_FORMAT_RAW},
    {"luks", DISK_FORMAT_LUKS},
    {"qcow2", DISK_FORMAT_QCOW2},
    {"qcow2-luks", DISK_FORMAT_QCOW2_LUKS},
};

/* FORMAT:PATH items into chain, reading the secrets they need. */
static RESULT parse_chain(char **items, size_t n, struct disk_layer *chain)
{
    ENSURE(n >= 1 && n <= DISK_CHAIN_MAX, ERR_INVALID_ARG);
    for (size_t i = 0; i < n; i++) {
        char *colon = strchr(items[i], ':');
        size_t f;
        ENSURE(colon != NULL, ERR_INVALID_ARG);
        *colon = '\0';
        for (f = 0; f < sizeof(formats) / sizeof(formats[0]); f++)
            if (strcmp(items[i], formats[f].name) == 0)
                break;
        ENSURE(f < sizeof(formats) / sizeof(formats[0]), ERR_INVALID_ARG);
        chain[i].path = colon + 1;
        chain[i].format = formats[f].format;
        chain[i].secret = NULL;
        if (formats[f].format == DISK_FORMAT_LUKS || formats[f].format == DISK_FORMAT_QCOW2_LUKS)
            GUARD(next_secret(&chain[i].secret));
    }
    return OK_RESULT;
}

static RESULT cmd_create_luks(char **argv)
{
    const uint8_t *secret;
    uint8_t *mk = NULL;
    uint64_t size;
    vs_result rc = OK_RESULT;

    GUARD(parse_u64(argv[1], &size));
    GUARD(next_secret(&secret));
    GUARD(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&mk));
    do
        GUARD_OUT(crypto_random_key(mk, LUKS1_MASTER_KEY_LEN));
    while (secret_equal(mk, mk + LUKS1_MASTER_KEY_LEN / 2, LUKS1_MASTER_KEY_LEN / 2));
    GUARD_OUT(luks1_create_file(argv[0], size, mk, secret));
out:
    secret_free((void **)&mk);
    return rc;
}

/* Opens PATH's header with the next secret: fd and the DEK. */
static RESULT open_disk(const char *path, int flags, int *fd, uint8_t **mk, struct luks1_info *info)
{
    const uint8_t *secret;

    GUARD(next_secret(&secret));
    *fd = open(path, flags | O_CLOEXEC);
    ENSURE(*fd >= 0, ERR_IO);
    GUARD(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)mk));
    return luks1_open(*fd, secret, *mk, info);
}

static RESULT cmd_open_luks(char **argv)
{
    struct luks1_info info;
    uint8_t *mk = NULL, digest[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1];
    int fd = -1;
    vs_result rc = OK_RESULT;

    GUARD_OUT(open_disk(argv[0], O_RDONLY, &fd, &mk, &info));
    GUARD_OUT(crypto_sha256(mk, LUKS1_MASTER_KEY_LEN, digest));
    GUARD_OUT(hex_encode(digest, sizeof(digest), hex, sizeof(hex)));
    printf("cipher %s\nmode %s\nhash %s\nkey-bytes %u\npayload-offset %llu\nslots %u\n"
           "uuid %s\nmk-sha256 %s\n",
           info.cipher_name, info.cipher_mode, info.hash_spec, info.key_bytes,
           (unsigned long long)info.payload_offset_bytes, info.active_slots, info.uuid, hex);
out:
    secret_free((void **)&mk);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Reads or writes guest bytes [off, off+len) of a LUKS disk through XTS. */
static RESULT cmd_payload(char **argv, bool write_mode)
{
    struct luks1_info info;
    struct crypto_xts *x = NULL;
    uint8_t *mk = NULL, *data = NULL;
    uint64_t off, len;
    int fd = -1;
    vs_result rc = OK_RESULT;

    GUARD(parse_u64(argv[1], &off));
    ENSURE(off % LUKS1_SECTOR_SIZE == 0, ERR_INVALID_ARG);
    if (write_mode) {
        struct stat st;
        int in = open(argv[2], O_RDONLY | O_CLOEXEC);
        ENSURE(in >= 0, ERR_IO);
        len = fstat(in, &st) == 0 ? (uint64_t)st.st_size : 1;
        if (len % LUKS1_SECTOR_SIZE != 0 || len > (64u << 20) ||
            (data = malloc(len ? len : 1)) == NULL || pread(in, data, len, 0) != (ssize_t)len)
            rc = RAISE(ERR_IO);
        close(in);
        GUARD_OUT(rc);
    } else {
        GUARD(parse_u64(argv[2], &len));
        ENSURE(len % LUKS1_SECTOR_SIZE == 0 && len <= (64u << 20), ERR_INVALID_ARG);
        data = malloc(len ? len : 1);
        ENSURE(data != NULL, ERR_NOMEM);
    }
    GUARD_OUT(open_disk(argv[0], write_mode ? O_RDWR : O_RDONLY, &fd, &mk, &info));
    GUARD_OUT(crypto_xts_new(mk, &x));
    /* plain64: the tweak counts sectors from the start of the payload. */
    if (write_mode) {
        GUARD_OUT(
            crypto_xts_encrypt(x, off / LUKS1_SECTOR_SIZE, LUKS1_SECTOR_SIZE, data, data, len));
        ENSURE_OUT(pwrite(fd, data, len, (off_t)(info.payload_offset_bytes + off)) == (ssize_t)len,
                   ERR_IO);
        ENSURE_OUT(fsync(fd) == 0, ERR_IO);
    } else {
        ENSURE_OUT(pread(fd, data, len, (off_t)(info.payload_offset_bytes + off)) == (ssize_t)len,
                   ERR_IO);
        GUARD_OUT(
            crypto_xts_decrypt(x, off / LUKS1_SECTOR_SIZE, LUKS1_SECTOR_SIZE, data, data, len));
        ENSURE_OUT(fwrite(data, 1, len, stdout) == len, ERR_IO);
    }
out:
    crypto_xts_free(&x);
    secret_free((void **)&mk);
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

static RESULT cmd_overlay(char **argv, int argc)
{
    struct disk_layer chain[DISK_CHAIN_MAX];
    const uint8_t *secret = NULL;
    bool encrypted = strcmp(argv[1], "encrypted") == 0;

    ENSURE(encrypted || strcmp(argv[1], "plain") == 0, ERR_INVALID_ARG);
    if (encrypted)
        GUARD(next_secret(&secret));
    GUARD(parse_chain(argv + 2, (size_t)argc - 2, chain));
    return disk_image_create_overlay(argv[0], chain, (size_t)argc - 2, secret);
}

static RESULT cmd_commit(char **argv, int argc)
{
    struct disk_layer chain[DISK_CHAIN_MAX];
    GUARD(parse_chain(argv, (size_t)argc, chain));
    return disk_image_commit(chain, (size_t)argc);
}

static RESULT cmd_rebase(char **argv, int argc)
{
    struct disk_layer chain[2];
    ENSURE(argc == 2, ERR_INVALID_ARG);
    GUARD(parse_chain(argv, 1, &chain[0]));
    GUARD(parse_chain(argv + 1, 1, &chain[1]));
    return disk_image_rebase_unsafe(&chain[0], &chain[1]);
}

static RESULT cmd_export(char **argv, int argc)
{
    struct disk_layer chain[DISK_CHAIN_MAX];
    GUARD(parse_chain(argv + 1, (size_t)argc - 1, chain));
    return disk_image_export_raw(chain, (size_t)argc - 1, argv[0]);
}

static RESULT cmd_size(char **argv, int argc)
{
    struct disk_layer chain[DISK_CHAIN_MAX];
    uint64_t size;
    GUARD(parse_chain(argv, (size_t)argc, chain));
    GUARD(disk_image_guest_size(chain, (size_t)argc, &size));
    printf("%llu\n", (unsigned long long)size);
    return OK_RESULT;
}

static RESULT cmd_probe(char **argv)
{
    enum disk_format f;
    uint64_t size;
    GUARD(disk_image_probe(argv[0], &f, &size));
    printf("%s %llu\n", f == DISK_FORMAT_QCOW2 ? "qcow2" : "raw", (unsigned long long)size);
    return OK_RESULT;
}

static RESULT cmd_convert(char **argv)
{
    enum disk_format f;
    if (strcmp(argv[1], "raw") == 0)
        f = DISK_FORMAT_RAW;
    else if (strcmp(argv[1], "qcow2") == 0)
        f = DISK_FORMAT_QCOW2;
    else
        BAIL(ERR_INVALID_ARG);
    return disk_image_convert_to_raw(argv[0], f, argv[2]);
}

static RESULT cmd_qemu(char **argv, int argc)
{
    struct disk_layer chain[DISK_CHAIN_MAX];
    struct proc_args a;
    vs_result rc = OK_RESULT;
    pid_t pid;

    proc_args_init(&a);
    GUARD_OUT(parse_chain(argv + 3, (size_t)argc - 3, chain));
    GUARD_OUT(proc_args_add(&a, "qemu-system-x86_64"));
    static const char *const fixed[] = {
        "-machine", "q35",  "-accel", "tcg", "-nodefaults", "-no-user-config",
        "-display", "none", "-S",     "-m",  "128"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        GUARD_OUT(proc_args_add(&a, fixed[i]));
    GUARD_OUT(proc_args_add(&a, "-qmp"));
    GUARD_OUT(proc_args_addf(&a, "unix:%s,server=on,wait=off", argv[1]));
    GUARD_OUT(disk_image_qemu_args(chain, (size_t)argc - 3, argv[0], &a));
    GUARD_OUT(proc_spawn(&a, argv[2], &pid));
    printf("%d\n", (int)pid);
out:
    proc_args_free(&a); /* our ends of the secret pipes */
    return rc;
}

int main(int argc, char **argv)
{
    vs_result rc;

    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    char **args = argv + 2;
    int n = argc - 2;

    if (strcmp(cmd, "create-luks") == 0 && n == 2)
        rc = cmd_create_luks(args);
    else if (strcmp(cmd, "open-luks") == 0 && n == 1)
        rc = cmd_open_luks(args);
    else if (strcmp(cmd, "read-payload") == 0 && n == 3)
        rc = cmd_payload(args, false);
    else if (strcmp(cmd, "write-payload") == 0 && n == 3)
        rc = cmd_payload(args, true);
    else if (strcmp(cmd, "overlay") == 0 && n >= 3)
        rc = cmd_overlay(args, n);
    else if (strcmp(cmd, "commit") == 0 && n >= 2)
        rc = cmd_commit(args, n);
    else if (strcmp(cmd, "rebase") == 0 && n == 2)
        rc = cmd_rebase(args, n);
    else if (strcmp(cmd, "export") == 0 && n >= 2)
        rc = cmd_export(args, n);
    else if (strcmp(cmd, "size") == 0 && n >= 1)
        rc = cmd_size(args, n);
    else if (strcmp(cmd, "probe") == 0 && n == 1)
        rc = cmd_probe(args);
    else if (strcmp(cmd, "convert") == 0 && n == 3)
        rc = cmd_convert(args);
    else if (strcmp(cmd, "qemu") == 0 && n >= 4)
        rc = cmd_qemu(args, n);
    else
        return usage();
    free_secrets();
    if (!is_ok(rc))
        return fail();
    return fflush(stdout) == 0 ? 0 : 1;
}
