/* power.c - power on and off: QEMU with OVMF, disks opened by QEMU's own
 * LUKS driver with secrets over inherited pipes, the UEFI variable store
 * decrypted on a tmpfs only while the VM runs and sealed again at power
 * off, the serial console to console.log. See vm.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "core/file.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/secret.h"
#include "vm/host.h"
#include "vm/vm.h"

#define NVRAM_MAX (16u << 20)
#define STOP_WAIT_MS 30000
#define START_CHECK_MS 400

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool vm_is_running(struct vm_host *h, const char *name)
{
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->running_count && !found; i++)
        found = strcmp(h->running[i].name, name) == 0;
    pthread_mutex_unlock(&h->mu);
    return found;
}

static bool running_get(struct vm_host *h, const char *name, struct vm_running *out)
{
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->running_count && !found; i++) {
        if (strcmp(h->running[i].name, name) == 0) {
            *out = h->running[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

static void running_add(struct vm_host *h, const struct vm_running *r)
{
    pthread_mutex_lock(&h->mu);
    if (h->running_count < VM_HOST_MAX_VMS)
        h->running[h->running_count++] = *r;
    pthread_mutex_unlock(&h->mu);
}

static void running_remove(struct vm_host *h, const char *name)
{
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->running_count; i++) {
        if (strcmp(h->running[i].name, name) == 0) {
            memmove(&h->running[i], &h->running[i + 1],
                    (h->running_count - i - 1) * sizeof h->running[0]);
            h->running_count--;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
}

/* Whether pid is alive and is the QEMU of VM uuid (its -name). */
static bool is_our_qemu(pid_t pid, const char *uuid)
{
    char path[64], want[64];
    uint8_t cmd[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    snprintf(want, sizeof want, "vmseal-%s", uuid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0)
        return false;
    cmd[n] = '\0';
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen((char *)cmd + i) + 1)
        if (strcmp((char *)cmd + i, want) == 0)
            return true;
    return false;
}

static bool exited(const struct vm_running *r)
{
    if (r->is_child) {
        int status;
        pid_t got = waitpid(r->pid, &status, WNOHANG);
        return got == r->pid || (got < 0 && errno == ECHILD);
    }
    return !is_our_qemu(r->pid, r->uuid);
}

bool vm_running_exited(struct vm_host *h, const char *name)
{
    struct vm_running r;
    return running_get(h, name, &r) && exited(&r);
}

static RESULT run_dir(struct vm_host *h, const struct vm_desc *d, char *out, size_t size)
{
    return vm_path(out, size, "%s/%s", h->runtime_dir, d->uuid);
}

/* Finds VMs whose QEMU outlived a previous vmseald. */
void vm_power_scan(struct vm_host *h)
{
    DIR *dp = opendir(h->datastore);
    if (dp == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        struct vm_desc *d = calloc(1, sizeof *d);
        char path[VM_PATH_MAX];
        struct buf b = {0};
        if (d == NULL)
            break;
        if (is_ok(vm_check_name("VM", e->d_name)) &&
            is_ok(vm_desc_load(h->datastore, e->d_name, d, NULL)) &&
            is_ok(vm_path(path, sizeof path, "%s/%s/pid", h->runtime_dir, d->uuid)) &&
            is_ok(buf_alloc(&b, 32, 64)) && is_ok(file_read_all(path, 64, &b)) &&
            is_ok(buf_write_u8(&b, 0))) {
            long pid = strtol((const char *)buf_data(&b), NULL, 10);
            struct vm_running r = {.pid = (pid_t)pid, .is_child = false};
            snprintf(r.name, sizeof r.name, "%s", d->name);
            snprintf(r.uuid, sizeof r.uuid, "%s", d->uuid);
            /* Listed as running even if it exited meanwhile: the next tick
             * powers it off properly (the NVRAM is still on the tmpfs). */
            running_add(h, &r);
            log_info("vm found running", LOG_S("vm", d->name), LOG_I("pid", pid));
        }
        err_clear();
        buf_free(&b);
        free(d);
    }
    closedir(dp);
}

static RESULT check_tmpfs(const char *dir)
{
    struct statfs st;
    if (statfs(dir, &st) != 0) {
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    if (st.f_type != TMPFS_MAGIC && st.f_type != RAMFS_MAGIC) {
        RAISE(ERR_VM_STATE);
        return err_detail("runtime directory %s is not on a tmpfs: the decrypted UEFI variable "
                          "store must never reach a disk",
                          dir);
    }
    return OK_RESULT;
}

/* KVM where it works: /dev/kvm opens and the CPU offers hardware
 * virtualization (vmx or svm). Some sandboxes give a /dev/kvm that accepts
 * every ioctl but cannot run a guest (QEMU then stops with "KVM internal
 * error ... emulation failure" inside OVMF); their CPUs show neither flag. */
static bool kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    close(fd);
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (f == NULL)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        /* "flags\t\t: fpu vme ... vmx ...": whole words only. */
        for (const char *p = strchr(line, ':'); p != NULL && *p != '\0' && !found;) {
            p += strspn(p, ": \t\n");
            size_t n = strcspn(p, " \t\n");
            found = n == 3 && (strncmp(p, "vmx", 3) == 0 || strncmp(p, "svm", 3) == 0);
            p += n;
        }
        break;
    }
    fclose(f);
    return found;
}

static RESULT no_commas(const char *path)
{
    if (strchr(path, ',') != NULL) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("path '%s' has a comma, which QEMU options cannot carry", path);
    }
    return OK_RESULT;
}

/* Wipes and removes the run directory's files (the NVRAM in clear first). */
static void clean_run_dir(const char *dir)
{
    char path[VM_PATH_MAX];
    if (is_ok(vm_path(path, sizeof path, "%s/nvram.fd", dir))) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0) {
            static const uint8_t zeros[65536];
            for (off_t off = 0; off < st.st_size; off += (off_t)sizeof zeros)
                if (pwrite(fd, zeros, sizeof zeros, off) < 0)
                    break;
        }
        if (fd >= 0)
            close(fd);
    }
    DIR *dp = opendir(dir);
    if (dp != NULL) {
        struct dirent *e;
        while ((e = readdir(dp)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                (void)unlinkat(dirfd(dp), e->d_name, 0);
        closedir(dp);
    }
    (void)rmdir(dir);
    err_clear();
}

RESULT vm_power_start(struct vm_host *h, struct vm_desc *d, struct vm_keys *k)
{
    static char paths[DISK_CHAIN_MAX][VM_PATH_MAX];
    static pthread_mutex_t paths_mu = PTHREAD_MUTEX_INITIALIZER;
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf nv = {0};
    char dir[VM_PATH_MAX], nvram[VM_PATH_MAX], console[VM_PATH_MAX], log_path[VM_PATH_MAX],
        pidfile[VM_PATH_MAX];
    uint64_t memory;
    unsigned cpus;
    pid_t pid = -1;
    bool paths_locked = false, made_dir = false;

    proc_args_init(&args);
    GUARD_OUT(vm_config_read(h, d, k, &memory, &cpus));
    GUARD_OUT(check_tmpfs(h->runtime_dir));
    GUARD_OUT(run_dir(h, d, dir, sizeof dir));
    clean_run_dir(dir);
    if (mkdir(dir, 0700) != 0) {
        rc = RAISE(ERR_IO);
        err_errno(errno);
        goto out;
    }
    made_dir = true; /* from here a failure wipes it: it holds the NVRAM in clear */
    GUARD_OUT(vm_path(nvram, sizeof nvram, "%s/nvram.fd", dir));
    GUARD_OUT(vm_path(log_path, sizeof log_path, "%s/qemu.log", dir));
    GUARD_OUT(vm_path(pidfile, sizeof pidfile, "%s/pid", dir));
    GUARD_OUT(vm_path(console, sizeof console, "%s/%s/console.log", h->datastore, d->name));
    GUARD_OUT(no_commas(nvram));
    GUARD_OUT(no_commas(console));
    GUARD_OUT(no_commas(h->ovmf_code));

    /* The variable store in clear, on the tmpfs only. */
    GUARD_OUT(buf_alloc_secret(&nv, 1 << 20, NVRAM_MAX));
    if (d->nvram_file[0] != '\0') {
        GUARD_OUT(vm_open_file(h, d, k, "nvram", d->nvram_file, &nv));
    } else {
        GUARD_OUT(file_read_all(h->ovmf_vars, NVRAM_MAX, &nv));
    }
    GUARD_OUT(file_write_atomic(nvram, buf_data(&nv), buf_len(&nv), 0600));

    GUARD_OUT(proc_args_add(&args, h->qemu));
    GUARD_OUT(proc_args_add(&args, "-name"));
    GUARD_OUT(proc_args_addf(&args, "vmseal-%s", d->uuid));
    GUARD_OUT(proc_args_add(&args, "-machine"));
    GUARD_OUT(proc_args_add(&args, "q35"));
    bool kvm = strcmp(h->accel, "kvm") == 0 || (strcmp(h->accel, "auto") == 0 && kvm_usable());
    GUARD_OUT(proc_args_add(&args, "-accel"));
    GUARD_OUT(proc_args_add(&args, kvm ? "kvm" : "tcg"));
    GUARD_OUT(proc_args_add(&args, "-m"));
    GUARD_OUT(proc_args_addf(&args, "%lluM", (unsigned long long)(memory >> 20)));
    GUARD_OUT(proc_args_add(&args, "-smp"));
    GUARD_OUT(proc_args_addf(&args, "%u", cpus));
    GUARD_OUT(proc_args_add(&args, "-nodefaults"));
    GUARD_OUT(proc_args_add(&args, "-no-user-config"));
    GUARD_OUT(proc_args_add(&args, "-display"));
    GUARD_OUT(proc_args_add(&args, "none"));
    GUARD_OUT(proc_args_add(&args, "-chardev"));
    GUARD_OUT(proc_args_addf(&args, "file,id=console,path=%s,append=on", console));
    GUARD_OUT(proc_args_add(&args, "-serial"));
    GUARD_OUT(proc_args_add(&args, "chardev:console"));
    GUARD_OUT(proc_args_add(&args, "-drive"));
    GUARD_OUT(proc_args_addf(&args, "if=pflash,format=raw,unit=0,readonly=on,file=%s",
                             h->ovmf_code));
    GUARD_OUT(proc_args_add(&args, "-drive"));
    GUARD_OUT(proc_args_addf(&args, "if=pflash,format=raw,unit=1,file=%s", nvram));
    pthread_mutex_lock(&paths_mu);
    paths_locked = true;
    for (unsigned i = 0; i < d->disk_count; i++) {
        struct disk_layer chain[DISK_CHAIN_MAX];
        size_t n;
        char node[32];
        snprintf(node, sizeof node, "disk%u", i);
        GUARD_OUT(vm_disk_chain(h, d, k, i, paths, chain, &n));
        for (size_t j = 0; j < n; j++)
            GUARD_OUT(no_commas(chain[j].path));
        GUARD_OUT(disk_image_qemu_args(chain, n, node, &args));
        if (i == 0) {
            /* Boot from the first disk: its device is the last argument. */
            char *dev = args.argv[args.argc - 1];
            char *with_boot = NULL;
            if (asprintf(&with_boot, "%s,bootindex=0", dev) < 0) {
                rc = RAISE(ERR_NOMEM);
                goto out;
            }
            args.argv[args.argc - 1] = with_boot;
            free(dev);
        }
    }
    rc = proc_spawn(&args, log_path, &pid);
    if (!is_ok(rc)) {
        /* QEMU missing or not executable: not "no such VM" (404). */
        char why[sizeof err_last()->detail];
        snprintf(why, sizeof why, "%s", err_last()->detail);
        rc = RAISE(ERR_CHILD);
        err_detail("%s", why);
        goto out;
    }
    pthread_mutex_unlock(&paths_mu);
    paths_locked = false;
    proc_args_free(&args); /* closes our ends of the secret pipes */

    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "%d\n", (int)pid);
    GUARD_OUT(file_write_atomic(pidfile, pidtext, strlen(pidtext), 0600));
    struct vm_running r = {.pid = pid, .is_child = true};
    snprintf(r.name, sizeof r.name, "%s", d->name);
    snprintf(r.uuid, sizeof r.uuid, "%s", d->uuid);

    /* A QEMU that refuses its command line exits at once: say why. */
    for (int waited = 0; waited < START_CHECK_MS; waited += 50) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            struct buf lb = {0};
            char last[200] = "";
            if (is_ok(buf_alloc(&lb, 4096, 1 << 20)) &&
                is_ok(file_read_all(log_path, 1 << 20, &lb)) && buf_len(&lb) > 0) {
                size_t end = buf_len(&lb), start;
                while (end > 0 && buf_data(&lb)[end - 1] == '\n')
                    end--;
                start = end;
                while (start > 0 && buf_data(&lb)[start - 1] != '\n')
                    start--;
                snprintf(last, sizeof last, "%.*s", (int)(end - start),
                         (const char *)buf_data(&lb) + start);
            }
            buf_free(&lb);
            pid = -1; /* reaped */
            rc = RAISE(ERR_CHILD);
            err_detail("QEMU exited at start: %s", last);
            goto out;
        }
        sleep_ms(50);
    }
    running_add(h, &r);
    log_info("vm powered on", LOG_S("vm", d->name), LOG_I("pid", pid));
out:
    if (paths_locked)
        pthread_mutex_unlock(&paths_mu);
    proc_args_free(&args);
    buf_free(&nv);
    if (!is_ok(rc)) {
        /* Nothing of a failed start stays: no QEMU nobody tracks (a second
         * power-on would open the same disks), no NVRAM in clear. */
        struct err_state saved = *err_last();
        if (pid > 0) {
            (void)kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
        }
        if (made_dir)
            clean_run_dir(dir);
        (void)err_restore(&saved);
    }
    return rc;
}

RESULT vm_power_stop(struct vm_host *h, struct vm_desc *d, struct vm_keys *k, bool kill_qemu)
{
    vs_result rc = OK_RESULT;
    struct vm_running r;
    struct buf nv = {0};
    char dir[VM_PATH_MAX], nvram[VM_PATH_MAX];
    if (!running_get(h, d->name, &r)) {
        RAISE(ERR_VM_STATE);
        return err_detail("VM '%s' is not running", d->name);
    }
    if (kill_qemu && !exited(&r)) {
        /* QEMU closes its block devices cleanly on SIGTERM. */
        (void)kill(r.pid, SIGTERM);
        int waited = 0;
        while (!exited(&r) && waited < STOP_WAIT_MS) {
            sleep_ms(50);
            waited += 50;
        }
        if (!exited(&r)) {
            (void)kill(r.pid, SIGKILL);
            while (!exited(&r))
                sleep_ms(20);
        }
    }
    GUARD(run_dir(h, d, dir, sizeof dir));
    GUARD(vm_path(nvram, sizeof nvram, "%s/nvram.fd", dir));
    GUARD(buf_alloc_secret(&nv, 1 << 20, NVRAM_MAX));
    rc = file_read_all(nvram, NVRAM_MAX, &nv);
    if (is_ok(rc)) {
        struct vm_desc committed = *d;
        GUARD_OUT(vm_seal_file(h, d, k, "nvram", buf_data(&nv), buf_len(&nv), d->nvram_file));
        rc = vm_desc_save(h->datastore, d, d->encrypted ? k->file_key : NULL);
        if (!is_ok(rc)) {
            *d = committed;
            goto out;
        }
        GUARD_OUT(vm_gc(h, d));
    } else if (rc.code == ERR_NOT_FOUND) {
        /* Lost with the tmpfs (a host reboot): the last sealed store stays. */
        log_warn("vm's variable store was not found on the tmpfs; keeping the last one",
                 LOG_S("vm", d->name));
        err_clear();
        rc = OK_RESULT;
    } else {
        goto out;
    }
    clean_run_dir(dir);
    running_remove(h, d->name);
    log_info("vm powered off", LOG_S("vm", d->name));
out:
    buf_free(&nv);
    return rc;
}

RESULT vm_power_on(struct vm_host *h, const char *name, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc) && vm_is_running(h, name)) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("VM '%s' is already running", name);
    }
    if (is_ok(rc) && d->template_) {
        rc = RAISE(ERR_VM_STATE);
        err_detail("VM '%s' is a template: clone it, then power on the clone", name);
    }
    if (is_ok(rc))
        rc = vm_power_start(h, d, k);
    if (is_ok(rc))
        rc = vm_to_json(h, d, k, out);
    vm_unlock(h, name);
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}

RESULT vm_power_off(struct vm_host *h, const char *name, json_t **out)
{
    vs_result rc = OK_RESULT;
    struct vm_desc *d = calloc(1, sizeof *d);
    struct vm_keys *k = NULL;
    ENSURE(d != NULL, ERR_NOMEM);
    GUARD_OUT(vm_check_name("VM", name));
    GUARD_OUT(vm_lock(h, name));
    rc = vm_load(h, name, d, &k);
    if (is_ok(rc))
        rc = vm_power_stop(h, d, k, true);
    if (is_ok(rc))
        rc = vm_to_json(h, d, k, out);
    vm_unlock(h, name);
out:
    vm_keys_free(&k);
    free(d);
    return rc;
}
