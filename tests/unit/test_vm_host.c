/*
 * Tests of the vm room's host (src/vm/vm.c, power.c, keys.c) where a real
 * QEMU is not wanted: a fake QEMU (a shell script) or none at all, a native
 * key provider in a temporary data directory, the runtime directory on
 * /dev/shm.
 *  - a power-on that fails after the variable store was decrypted leaves
 *    nothing in clear on the tmpfs and no QEMU behind, and says why as an
 *    internal error (not "not found");
 *  - power on and off with a QEMU that stays: the store is sealed again and
 *    the run directory wiped;
 *  - a runtime directory that is not private is refused;
 *  - a key destroy while an operation holds the VM is refused (busy);
 *  - the QEMU command line of a mixed VM (an encrypted VM with a plaintext
 *    disk, vm_disk_decrypt), with a snapshot: a key secret for the
 *    encrypted disk's layers only, the plaintext disk's opened without.
 * The real QEMU, OVMF and qemu-img are tests/integration/test_vm_*.py.
 */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "keyprov/keyprov.h"
#include "vm/host.h"
#include "vm/vm.h"

static char dir[64];     /* data directory and fake programs */
static char runtime[64]; /* on /dev/shm */
static char data_dir[128], vars[128], qemu_ok[128], qemu_exits[128], qemu_args[128],
    qemu_records[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vmseal-test-vmhost-XXXXXX");
    snprintf(runtime, sizeof runtime, "/dev/shm/vmseal-test-vmhost-XXXXXX");
    if (mkdtemp(dir) == NULL || mkdtemp(runtime) == NULL)
        return -1;
    snprintf(data_dir, sizeof data_dir, "%s/data", dir);
    snprintf(vars, sizeof vars, "%s/OVMF_VARS.fd", dir);
    snprintf(qemu_ok, sizeof qemu_ok, "%s/qemu-stays", dir);
    snprintf(qemu_exits, sizeof qemu_exits, "%s/qemu-exits", dir);
    snprintf(qemu_args, sizeof qemu_args, "%s/qemu-args", dir);
    snprintf(qemu_records, sizeof qemu_records, "%s/qemu-records", dir);
    /* A variable store template: recognisable bytes. */
    char template_[4096];
    memset(template_, 'V', sizeof template_ - 1);
    template_[sizeof template_ - 1] = '\0';
    static const char stays[] = "#!/bin/sh\nexec sleep 60\n";
    static const char exits[] = "#!/bin/sh\necho 'no such machine' >&2\nexit 1\n";
    char records[512];
    snprintf(records, sizeof records, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexec sleep 60\n",
             qemu_args);
    if (!is_ok(file_write_atomic(vars, template_, strlen(template_), 0600)) ||
        !is_ok(file_write_atomic(qemu_records, records, strlen(records), 0700)) ||
        !is_ok(file_write_atomic(qemu_ok, stays, strlen(stays), 0700)) ||
        !is_ok(file_write_atomic(qemu_exits, exits, strlen(exits), 0700)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, runtime);
    return system(cmd) == 0 ? 0 : -1;
}

/* The entries of a directory, not counting . and .. */
static size_t entries(const char *path)
{
    DIR *dp = opendir(path);
    size_t n = 0;
    struct dirent *e;
    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dp);
    return n;
}

struct fixture {
    struct keyprov *kp;
    struct vm_host *h;
};

/* A host whose QEMU is `qemu`, with a backed-up native provider. */
static void open_host(struct fixture *f, const char *qemu)
{
    struct vm_host_config cfg = {.data_dir = data_dir,
                                 .runtime_dir = runtime,
                                 .qemu = qemu,
                                 .ovmf_code = "/nonexistent/OVMF_CODE.fd",
                                 .ovmf_vars = vars,
                                 .accel = "tcg"};
    struct buf backup;
    memset(f, 0, sizeof *f);
    assert_ok(file_mkdir(data_dir, 0700));
    assert_ok(keyprov_open(data_dir, &f->kp));
    vs_result r = keyprov_add_native(f->kp, "n1");
    if (r.code != ERR_EXISTS)
        assert_ok(r);
    err_clear();
    assert_ok(buf_alloc(&backup, 0, 1 << 16));
    assert_ok(keyprov_backup(f->kp, "n1", "a passphrase", 12, &backup));
    buf_free(&backup);
    assert_ok(vm_host_open(&cfg, f->kp, &f->h));
}

static void close_host(struct fixture *f)
{
    vm_host_close(&f->h);
    keyprov_close(&f->kp);
}

static void create_vm(struct fixture *f, const char *name)
{
    struct vm_create_spec spec = {.name = name, .disk_count = 1, .encrypt = true};
    json_t *out = NULL;
    spec.disks[0] = 1 << 20;
    assert_ok(vm_create(f->h, &spec, NULL, &out));
    json_decref(out);
}

static void test_power_on_without_qemu(void **state)
{
    struct fixture f;
    json_t *out = NULL;
    (void)state;
    open_host(&f, "/nonexistent/qemu-system-x86_64");
    create_vm(&f, "p1");
    vs_result r = vm_power_on(f.h, "p1", &out);
    /* Not ERR_NOT_FOUND: the API would answer 404, "no such VM". */
    assert_int_equal(r.code, ERR_CHILD);
    assert_non_null(strstr(err_last()->detail, "qemu-system-x86_64"));
    assert_null(out);
    /* The variable store was decrypted to the run directory before QEMU
     * was to start: none of it stays. */
    assert_int_equal(entries(runtime), 0);
    assert_false(vm_is_running(f.h, "p1"));
    /* The VM is untouched and unlocked. */
    assert_ok(vm_info(f.h, "p1", &out));
    json_decref(out);
    assert_ok(vm_delete(f.h, "p1", &out));
    json_decref(out);
    close_host(&f);
}

static void test_power_on_qemu_exits(void **state)
{
    struct fixture f;
    json_t *out = NULL;
    (void)state;
    open_host(&f, qemu_exits);
    create_vm(&f, "p2");
    assert_err(vm_power_on(f.h, "p2", &out), ERR_CHILD);
    assert_non_null(strstr(err_last()->detail, "no such machine"));
    assert_int_equal(entries(runtime), 0);
    assert_false(vm_is_running(f.h, "p2"));
    assert_ok(vm_delete(f.h, "p2", &out));
    json_decref(out);
    close_host(&f);
}

static void test_power_on_off(void **state)
{
    struct fixture f;
    json_t *out = NULL;
    char path[VM_PATH_MAX + 200];
    struct buf b;
    (void)state;
    open_host(&f, qemu_ok);
    create_vm(&f, "p3");
    assert_ok(vm_power_on(f.h, "p3", &out));
    const char *uuid = json_string_value(json_object_get(out, "uuid"));
    assert_non_null(uuid);
    assert_string_equal(json_string_value(json_object_get(out, "state")), "running");
    /* The store in clear on the tmpfs while it runs, and only there. */
    snprintf(path, sizeof path, "%s/%s/nvram.fd", runtime, uuid);
    assert_ok(buf_alloc(&b, 0, 1 << 16));
    assert_ok(file_read_all(path, 1 << 16, &b));
    assert_int_equal(buf_len(&b), 4095);
    assert_int_equal(buf_data(&b)[0], 'V');
    buf_free(&b);
    json_decref(out);
    assert_err(vm_power_on(f.h, "p3", &out), ERR_VM_STATE);
    assert_ok(vm_power_off(f.h, "p3", &out));
    assert_string_equal(json_string_value(json_object_get(out, "state")), "off");
    json_decref(out);
    assert_int_equal(entries(runtime), 0);
    /* Sealed into the VM's directory: no 'V' run in clear. */
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_ok(vm_desc_load(f.h->datastore, "p3", d, NULL));
    assert_non_null(strstr(d->nvram_file, ".enc"));
    snprintf(path, sizeof path, "%s/%s", f.h->datastore, d->nvram_file);
    assert_ok(buf_alloc(&b, 0, 1 << 16));
    assert_ok(file_read_all(path, 1 << 16, &b));
    assert_null(memmem(buf_data(&b), buf_len(&b), "VVVVVVVVVVVVVVVV", 16));
    buf_free(&b);
    free(d);
    assert_ok(vm_delete(f.h, "p3", &out));
    json_decref(out);
    close_host(&f);
}

static void test_runtime_dir_private(void **state)
{
    struct fixture f;
    struct vm_host *h = NULL;
    char link[128];
    (void)state;
    open_host(&f, qemu_ok);
    close_host(&f);
    assert_ok(keyprov_open(data_dir, &f.kp));
    struct vm_host_config cfg = {.data_dir = data_dir, .runtime_dir = runtime};
    assert_int_equal(chmod(runtime, 0755), 0);
    assert_err(vm_host_open(&cfg, f.kp, &h), ERR_PERM);
    assert_non_null(strstr(err_last()->detail, runtime));
    assert_null(h);
    assert_int_equal(chmod(runtime, 0700), 0);
    snprintf(link, sizeof link, "%s-link", runtime);
    assert_int_equal(symlink(runtime, link), 0);
    cfg.runtime_dir = link;
    assert_err(vm_host_open(&cfg, f.kp, &h), ERR_PERM);
    assert_int_equal(unlink(link), 0);
    cfg.runtime_dir = runtime;
    assert_ok(vm_host_open(&cfg, f.kp, &h));
    vm_host_close(&h);
    keyprov_close(&f.kp);
}

/* Keys are recorded in keys.json when issued, before the VM using them is
 * committed, by an operation that holds the VM: a destroy meanwhile must
 * wait, or it destroys the key the operation is about to commit. */
static void test_key_destroy_busy(void **state)
{
    struct fixture f;
    json_t *out = NULL;
    (void)state;
    open_host(&f, qemu_ok);
    create_vm(&f, "k1");
    assert_ok(vm_delete(f.h, "k1", &out));
    json_decref(out);
    /* An operation on a new "k1" holds the name (as create would while it
     * issues and records its key). */
    assert_ok(vm_lock(f.h, "k1"));
    out = NULL;
    assert_err(vm_key_destroy(f.h, "k1", &(struct keyprov_ref){{0}}, &out), ERR_BUSY);
    assert_null(out);
    vm_unlock(f.h, "k1");
    /* Once it is done, the destroy goes ahead. */
    assert_ok(vm_key_destroy(f.h, "k1", &(struct keyprov_ref){{0}}, &out));
    assert_int_equal(json_array_size(json_object_get(out, "destroyed")), 1);
    json_decref(out);
    /* And the name is free again: the destroy released what it held. */
    assert_ok(vm_lock(f.h, "k1"));
    vm_unlock(f.h, "k1");
    close_host(&f);
}

/* A disk secret that cannot be wrapped (its provider is gone) does not
 * stay in the caller's buffer, which is on the caller's stack. */
static void test_new_layer_secret_wiped_on_failure(void **state)
{
    struct fixture f;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    struct vm_layer *l;
    uint8_t secret[LUKS1_SECRET_LEN], zero[LUKS1_SECRET_LEN] = {0};
    (void)state;
    open_host(&f, qemu_ok);
    assert_ok(vm_keys_alloc(&k));
    snprintf(d->name, sizeof d->name, "w1");
    d->encrypted = true;
    snprintf(d->key.provider, sizeof d->key.provider, "gone");
    snprintf(d->key.key_id, sizeof d->key.key_id, "f900dbee-6468-485c-a7cd-995b071affb3");
    assert_ok(vm_desc_add_layer(d, 0, &l));
    memset(secret, 0x5a, sizeof secret);
    assert_false(is_ok(vm_new_layer_secret(f.h, d, k, l, secret)));
    assert_memory_equal(secret, zero, sizeof secret);
    assert_int_equal(k->count, 0);
    assert_int_equal(l->wrapped_len, 0);
    /* With a provider that works, the same call succeeds. */
    snprintf(d->key.provider, sizeof d->key.provider, "n1");
    struct keyprov_kek_purpose purpose = {.vm_name = "w1", .vm_uuid = d->uuid};
    snprintf(d->uuid, sizeof d->uuid, "4c4c4544-0031-3410-8056-b4c04f4e3732");
    assert_ok(keyprov_new_kek(f.kp, "n1", &purpose, &d->key));
    assert_ok(vm_new_layer_secret(f.h, d, k, l, secret));
    assert_memory_not_equal(secret, zero, sizeof secret);
    assert_memory_equal(vm_keys_secret(k, l->id), secret, sizeof secret);
    assert_int_equal(l->wrapped_len, 40);
    err_clear();
    vm_keys_free(&k);
    free(d);
    close_host(&f);
}

/* The -blockdev argument (QEMU's JSON) that opens `file`, from the
 * recorded command line. */
static const char *blockdev_of(const char *args, const char *file, char *out, size_t size)
{
    const char *p = strstr(args, file);
    assert_non_null(p);
    const char *start = p, *end = strchr(p, '\n');
    while (start > args && start[-1] != '\n')
        start--;
    assert_non_null(end);
    assert_true((size_t)(end - start) < size);
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return out;
}

static void test_power_on_mixed_vm(void **state)
{
    struct fixture f;
    json_t *out = NULL;
    struct buf b;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_create_spec spec = {.name = "mx", .disk_count = 2, .encrypt = true};
    static char line[8192];
    (void)state;
    spec.disks[0] = spec.disks[1] = 1 << 20;
    open_host(&f, qemu_records);
    assert_ok(vm_create(f.h, &spec, NULL, &out));
    json_decref(out);
    assert_ok(vm_disk_decrypt(f.h, "mx", 1, NULL, &out));
    json_decref(out);
    assert_ok(vm_snapshot_create(f.h, "mx", "s1", &out));
    json_decref(out);
    assert_ok(vm_desc_load(f.h->datastore, "mx", d, NULL));
    assert_true(d->encrypted);
    assert_true(vm_disk_encrypted(d, 0));
    assert_false(vm_disk_encrypted(d, 1));
    assert_ok(vm_power_on(f.h, "mx", &out));
    json_decref(out);
    assert_ok(buf_alloc(&b, 0, 1 << 16));
    assert_ok(file_read_all(qemu_args, 1 << 16, &b));
    assert_ok(buf_write_u8(&b, '\0'));
    const char *args = (const char *)buf_data(&b);
    /* Disk 0: a LUKS1 base and a qcow2 overlay with LUKS, each with its
     * key secret over a pipe (-object secret,...,file=/dev/fd/N). */
    struct vm_layer *chain[DISK_CHAIN_MAX];
    size_t n;
    assert_ok(vm_desc_chain(d, 0, chain, &n));
    assert_int_equal(n, 2);
    assert_non_null(strstr(blockdev_of(args, chain[0]->file, line, sizeof line),
                           "\"encrypt\":{\"format\":\"luks\",\"key-secret\":\"disk0-s0\"}"));
    assert_non_null(strstr(blockdev_of(args, chain[1]->file, line, sizeof line),
                           "\"driver\":\"luks\",\"read-only\":true,\"key-secret\":\"disk0-s1\""));
    assert_non_null(strstr(args, "secret,id=disk0-s0,"));
    assert_non_null(strstr(args, "secret,id=disk0-s1,"));
    /* Disk 1: a raw base and a plain qcow2 overlay, no secret at all. */
    assert_ok(vm_desc_chain(d, 1, chain, &n));
    assert_int_equal(n, 2);
    blockdev_of(args, chain[0]->file, line, sizeof line);
    assert_non_null(strstr(line, "\"driver\":\"qcow2\""));
    assert_null(strstr(line, "encrypt"));
    assert_null(strstr(line, "key-secret"));
    blockdev_of(args, chain[1]->file, line, sizeof line);
    assert_non_null(strstr(line, "\"driver\":\"raw\""));
    assert_null(strstr(line, "key-secret"));
    assert_null(strstr(args, "disk1-s"));
    buf_free(&b);
    assert_ok(vm_power_off(f.h, "mx", &out));
    json_decref(out);
    assert_ok(vm_delete(f.h, "mx", &out));
    json_decref(out);
    free(d);
    close_host(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_on_without_qemu),
        cmocka_unit_test(test_power_on_qemu_exits),
        cmocka_unit_test(test_power_on_off),
        cmocka_unit_test(test_runtime_dir_private),
        cmocka_unit_test(test_key_destroy_busy),
        cmocka_unit_test(test_new_layer_secret_wiped_on_failure),
        cmocka_unit_test(test_power_on_mixed_vm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
