/* Tests of disk chains and qemu-img: the QEMU -blockdev description of a
 * chain (exact strings, JSON escaping, secrets only through pipes), chain
 * and node-name refusals, and the retry of qemu-img's spurious PBKDF
 * calibration failure, with a fake qemu-img (disk_image_set_qemu_img).
 * Real images with real qemu-img, QEMU and cryptsetup are
 * tests/integration/test_disk_interop.py. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/proc.h"
#include "core/secret.h"
#include "disk/image.h"

static char dir[64];
static uint8_t *secret_a, *secret_b; /* secret memory */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-image-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (!is_ok(secret_alloc(LUKS1_SECRET_LEN, (void **)&secret_a)) ||
        !is_ok(secret_alloc(LUKS1_SECRET_LEN, (void **)&secret_b)))
        return -1;
    for (size_t i = 0; i < LUKS1_SECRET_LEN; i++) {
        secret_a[i] = (uint8_t)(0xa0 + i);
        secret_b[i] = (uint8_t)(0x10 + 3 * i);
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    disk_image_set_qemu_img(NULL);
    secret_free((void **)&secret_a);
    secret_free((void **)&secret_b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char p[128];
    path_in(p, sizeof(p), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(p, mode);
}

static void read_file(const char *name, char *out, size_t size)
{
    char p[128];
    ssize_t n;
    path_in(p, sizeof(p), name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) {
        out[0] = '\0';
        return;
    }
    n = read(fd, out, size - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

/* Reads what a secret pipe holds. */
static void read_pipe(int fd, char *out, size_t size)
{
    ssize_t n = read(fd, out, size - 1);
    assert_true(n >= 0);
    out[n] = '\0';
}

static void test_qemu_args_exact(void **state)
{
    const struct disk_layer chain[] = {
        {.path = "/vm/a/disk0-1.qcow2", .format = DISK_FORMAT_QCOW2_LUKS, .secret = secret_b},
        {.path = "/vm/a/disk0-p.qcow2", .format = DISK_FORMAT_QCOW2, .secret = NULL},
        {.path = "/vm/a/disk0.img", .format = DISK_FORMAT_LUKS, .secret = secret_a},
    };
    struct proc_args a;
    char want[512], got[128], pass[LUKS1_PASSPHRASE_LEN + 1];
    int fd0, fd2;
    (void)state;

    proc_args_init(&a);
    assert_ok(proc_args_add(&a, "qemu-system-x86_64"));
    assert_ok(disk_image_qemu_args(chain, 3, "disk0", &a));
    assert_int_equal(a.argc, 1 + 2 * 2 + 3 * 2 + 2);
    assert_int_equal(a.fd_count, 2);
    fd0 = a.fds[0];
    fd2 = a.fds[1];

    /* Secrets first, by layer, each from its own pipe. */
    assert_string_equal(a.argv[1], "-object");
    snprintf(want, sizeof(want), "secret,id=disk0-s0,file=/dev/fd/%d,format=raw", fd0);
    assert_string_equal(a.argv[2], want);
    assert_string_equal(a.argv[3], "-object");
    snprintf(want, sizeof(want), "secret,id=disk0-s2,file=/dev/fd/%d,format=raw", fd2);
    assert_string_equal(a.argv[4], want);

    /* Then the nodes, bottom first, each naming the one below. */
    assert_string_equal(a.argv[5], "-blockdev");
    assert_string_equal(a.argv[6],
                        "{\"node-name\":\"disk0-l2\",\"driver\":\"luks\",\"read-only\":true,"
                        "\"key-secret\":\"disk0-s2\",\"file\":{\"node-name\":\"disk0-l2-file\","
                        "\"driver\":\"file\",\"filename\":\"/vm/a/disk0.img\"}}");
    assert_string_equal(a.argv[7], "-blockdev");
    assert_string_equal(a.argv[8],
                        "{\"node-name\":\"disk0-l1\",\"driver\":\"qcow2\",\"read-only\":true,"
                        "\"file\":{\"node-name\":\"disk0-l1-file\",\"driver\":\"file\","
                        "\"filename\":\"/vm/a/disk0-p.qcow2\"},\"backing\":\"disk0-l2\"}");
    assert_string_equal(a.argv[9], "-blockdev");
    assert_string_equal(a.argv[10],
                        "{\"node-name\":\"disk0\",\"driver\":\"qcow2\",\"encrypt\":{\"format\":"
                        "\"luks\",\"key-secret\":\"disk0-s0\"},\"file\":{\"node-name\":"
                        "\"disk0-l0-file\",\"driver\":\"file\",\"filename\":"
                        "\"/vm/a/disk0-1.qcow2\"},\"backing\":\"disk0-l1\"}");
    assert_string_equal(a.argv[11], "-device");
    assert_string_equal(a.argv[12], "virtio-blk-pci,drive=disk0,id=disk0-dev");
    assert_null(a.argv[13]);

    /* No argument carries a secret, raw or as its passphrase. */
    for (size_t i = 0; i < a.argc; i++) {
        assert_ok(luks1_passphrase(secret_a, pass));
        assert_null(strstr(a.argv[i], pass));
        assert_ok(luks1_passphrase(secret_b, pass));
        assert_null(strstr(a.argv[i], pass));
        assert_null(memmem(a.argv[i], strlen(a.argv[i]), secret_a, 4));
    }
    /* The pipes hold the passphrases: hex of the secrets, no newline. */
    read_pipe(fd0, got, sizeof(got));
    assert_ok(luks1_passphrase(secret_b, pass));
    assert_string_equal(got, pass);
    read_pipe(fd2, got, sizeof(got));
    assert_ok(luks1_passphrase(secret_a, pass));
    assert_string_equal(got, pass);
    secret_wipe(pass, sizeof(pass));
    proc_args_free(&a);
}

static void test_qemu_args_plain_and_escaping(void **state)
{
    const struct disk_layer raw[] = {
        {.path = "/vm/we,ird \"name\"\\x.img", .format = DISK_FORMAT_RAW, .secret = NULL},
    };
    struct proc_args a;
    (void)state;

    proc_args_init(&a);
    assert_ok(disk_image_qemu_args(raw, 1, "d_1", &a));
    assert_int_equal(a.argc, 4);
    assert_int_equal(a.fd_count, 0);
    /* JSON: commas need nothing, quotes and backslashes are escaped. */
    assert_string_equal(a.argv[1],
                        "{\"node-name\":\"d_1\",\"driver\":\"raw\",\"file\":{\"node-name\":"
                        "\"d_1-l0-file\",\"driver\":\"file\",\"filename\":"
                        "\"/vm/we,ird \\\"name\\\"\\\\x.img\"}}");
    assert_string_equal(a.argv[3], "virtio-blk-pci,drive=d_1,id=d_1-dev");
    proc_args_free(&a);

    /* Control characters in a path are refused. */
    const struct disk_layer ctl[] = {{.path = "/vm/a\nb.img", .format = DISK_FORMAT_RAW}};
    proc_args_init(&a);
    assert_err(disk_image_qemu_args(ctl, 1, "disk0", &a), ERR_INVALID_ARG);
    proc_args_free(&a);
}

static void test_refused_chains_and_nodes(void **state)
{
    struct proc_args a;
    const struct disk_layer ok[] = {{.path = "/x.img", .format = DISK_FORMAT_RAW}};
    const struct disk_layer luks_no_secret[] = {{.path = "/x.img", .format = DISK_FORMAT_LUKS}};
    const struct disk_layer raw_with_secret[] = {
        {.path = "/x.img", .format = DISK_FORMAT_RAW, .secret = secret_a}};
    const struct disk_layer raw_on_top[] = {
        {.path = "/top.img", .format = DISK_FORMAT_RAW},
        {.path = "/base.img", .format = DISK_FORMAT_RAW},
    };
    const struct disk_layer no_path[] = {{.path = "", .format = DISK_FORMAT_RAW}};
    const struct disk_layer bad_format[] = {{.path = "/x", .format = (enum disk_format)7}};
    static const char *const bad_nodes[] = {"",       "0disk",  "disk-0",
                                            "disk.0", "disk 0", "abcdefghijklmnopqrstu"};
    (void)state;

    proc_args_init(&a);
    assert_err(disk_image_qemu_args(luks_no_secret, 1, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(raw_with_secret, 1, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(raw_on_top, 2, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(no_path, 1, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(bad_format, 1, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(ok, 0, "disk0", &a), ERR_INVALID_ARG);
    assert_err(disk_image_qemu_args(ok, DISK_CHAIN_MAX + 1, "disk0", &a), ERR_INVALID_ARG);
    for (size_t i = 0; i < sizeof(bad_nodes) / sizeof(bad_nodes[0]); i++)
        assert_err(disk_image_qemu_args(ok, 1, bad_nodes[i], &a), ERR_INVALID_ARG);
    assert_int_equal(a.argc, 0); /* nothing was appended by a refusal */
    assert_ok(disk_image_qemu_args(ok, 1, "abcdefghijklmnopqrst", &a));
    proc_args_free(&a);

    /* The same checks guard the qemu-img operations. */
    uint64_t size;
    assert_err(disk_image_guest_size(luks_no_secret, 1, &size), ERR_INVALID_ARG);
    assert_err(disk_image_commit(ok, 1), ERR_INVALID_ARG);
    assert_err(disk_image_commit(raw_on_top, 2), ERR_INVALID_ARG);
}

/* A fake qemu-img: "create" fails the first <fails> times with <message>
 * (reading the secret pipe, as the real one would), then runs the real
 * qemu-img; every other command goes straight to the real one. It records
 * its arguments (argv.log) and the last secret it read (secret.seen). */
static void install_fake(int fails, const char *message)
{
    char script[2048], p[128], n[16];

    snprintf(script, sizeof(script),
             "#!/bin/sh\n"
             "d=%s\n"
             "if [ \"$1\" = create ]; then\n"
             "  echo \"$@\" >> $d/argv.log\n"
             "  n=$(cat $d/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > $d/count\n"
             "  if [ $n -le $(cat $d/fails) ]; then\n"
             "    for a in \"$@\"; do case \"$a\" in secret,*) f=${a#*file=}; f=${f%%%%,*};"
             " cat $f > $d/secret.seen;; esac; done\n"
             "    echo \"qemu-img: ov.qcow2: $(cat $d/message)\" >&2\n"
             "    exit 1\n"
             "  fi\n"
             "fi\n"
             "exec /usr/bin/qemu-img \"$@\"\n",
             dir);
    write_file("fake-qemu-img", script, 0755);
    snprintf(n, sizeof(n), "%d\n", fails);
    write_file("fails", n, 0600);
    write_file("message", message, 0600);
    path_in(p, sizeof(p), "count");
    unlink(p);
    path_in(p, sizeof(p), "fake-qemu-img");
    disk_image_set_qemu_img(p);
}

static int fake_count(void)
{
    char text[32];
    read_file("count", text, sizeof(text));
    return (int)strtol(text, NULL, 10);
}

/* A plaintext raw base of 1 MiB to put overlays on. */
static void make_base(char *out, size_t n)
{
    path_in(out, n, "base.img");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
}

static void test_create_retries_spurious_failure(void **state)
{
    char base[128], ov[128], seen[128], pass[LUKS1_PASSPHRASE_LEN + 1], log[4096];
    struct disk_layer chain[1];
    struct stat st;
    uint64_t size;
    (void)state;

    make_base(base, sizeof(base));
    chain[0] = (struct disk_layer){.path = base, .format = DISK_FORMAT_RAW};
    path_in(ov, sizeof(ov), "ov.qcow2");

    /* Three spurious failures, then success: encrypted overlay made. */
    install_fake(3, "Unable to get accurate CPU usage");
    assert_ok(disk_image_create_overlay(ov, chain, 1, secret_b));
    /* 4, or more if the real qemu-img then failed the same way: retried too. */
    assert_true(fake_count() >= 4);
    assert_int_equal(stat(ov, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The fake read the secret pipe: the passphrase, hex, and nothing
     * of it was on the command line. */
    read_file("secret.seen", seen, sizeof(seen));
    assert_ok(luks1_passphrase(secret_b, pass));
    assert_string_equal(seen, pass);
    read_file("argv.log", log, sizeof(log));
    assert_null(strstr(log, pass));
    assert_non_null(strstr(log, "encrypt.format=luks,encrypt.key-secret=sec0"));
    assert_non_null(strstr(log, "encrypt.iter-time=10"));
    /* The overlay is a real one (real qemu-img), of the base's size. */
    const struct disk_layer top[] = {
        {.path = ov, .format = DISK_FORMAT_QCOW2_LUKS, .secret = secret_b},
        {.path = base, .format = DISK_FORMAT_RAW},
    };
    assert_ok(disk_image_guest_size(top, 2, &size));
    assert_int_equal(size, 1 << 20);
    assert_int_equal(unlink(ov), 0);

    /* The spurious failure every time: gives up after 10, removes the file. */
    install_fake(1000, "Unable to get accurate CPU usage");
    assert_err(disk_image_create_overlay(ov, chain, 1, secret_b), ERR_CHILD);
    assert_int_equal(fake_count(), 10);
    assert_non_null(strstr(err_last()->detail, "10 times"));
    assert_int_equal(access(ov, F_OK), -1);

    /* Any other failure is not retried, and its message is kept. */
    install_fake(1, "Disk quota exceeded");
    assert_err(disk_image_create_overlay(ov, chain, 1, NULL), ERR_CHILD);
    assert_int_equal(fake_count(), 1);
    assert_non_null(strstr(err_last()->detail, "Disk quota exceeded"));
    assert_int_equal(access(ov, F_OK), -1);

    /* An existing file is never overwritten: qemu-img create never runs. */
    install_fake(0, "unused");
    write_file("ov.qcow2", "keep me", 0600);
    assert_err(disk_image_create_overlay(ov, chain, 1, NULL), ERR_EXISTS);
    assert_int_equal(fake_count(), 0);
    read_file("ov.qcow2", log, sizeof(log));
    assert_string_equal(log, "keep me");

    /* A missing qemu-img is an error, not a hang or a crash. */
    disk_image_set_qemu_img("/nonexistent/qemu-img");
    assert_err(disk_image_guest_size(chain, 1, &size), ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qemu_args_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qemu_args_plain_and_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_chains_and_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_retries_spurious_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
