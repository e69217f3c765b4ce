/*
 * rekeybench - time of a shallow rekey (vm_rekey, deep = false) of an
 * encrypted VM with N disks of SIZE bytes, through the host engine itself
 * (what vmseald runs for `vmseal vm rekey NAME --shallow`), with a native
 * provider or with a standard one (a KMIP server: vmseal-kms).
 *
 *   rekeybench --data-dir DIR --disks N --size BYTES [--iterations K]
 *              [--kms HOST:PORT --ca F --cert F --key F]
 *
 * Prints one line: disks, size, provider, median and max milliseconds.
 * A shallow rekey re-wraps the VM's small secrets under a new KEK: its time
 * must not depend on the size of the disks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "keyprov/keyprov.h"
#include "vm/vm.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what)
{
    char msg[512];
    fprintf(stderr, "rekeybench: %s: %s\n", what, err_format(msg, sizeof msg));
    return 1;
}

static char *read_text(const char *path)
{
    struct buf b = {0};
    if (!is_ok(buf_alloc(&b, 4096, 1 << 20)) || !is_ok(file_read_all(path, 1 << 20, &b)) ||
        !is_ok(buf_write_u8(&b, 0))) {
        buf_free(&b);
        return NULL;
    }
    char *s = strdup((const char *)buf_data(&b));
    buf_free(&b);
    return s;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *kms = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    unsigned long disks = 1, iterations = 20;
    unsigned long long size = 2ull << 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data-dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--disks") == 0)
            disks = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0)
            size = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--iterations") == 0)
            iterations = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--kms") == 0)
            kms = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else {
            fprintf(stderr, "rekeybench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (dir == NULL || disks < 1 || disks > VM_MAX_DISKS || iterations < 1 ||
        iterations > 1000 || size % 512 != 0 || (kms != NULL && (!ca || !cert || !key))) {
        fprintf(stderr, "usage: rekeybench --data-dir DIR --disks N --size BYTES "
                        "[--iterations K] [--kms HOST:PORT --ca F --cert F --key F]\n");
        return 2;
    }
    struct keyprov *kp = NULL;
    struct vm_host *h = NULL;
    log_set_level(LOG_WARN);
    json_t *out = NULL;
    if (!is_ok(keyprov_open(dir, &kp)))
        return fail("opening key providers");
    const char *provider = "native";
    if (kms != NULL) {
        char *ca_pem = read_text(ca), *cert_pem = read_text(cert), *key_pem = read_text(key);
        const char *servers[1] = {kms};
        provider = "kms";
        if (ca_pem == NULL || cert_pem == NULL || key_pem == NULL ||
            !is_ok(keyprov_add_standard(kp, provider, servers, 1, ca_pem, cert_pem, key_pem)))
            return fail("adding the standard provider");
        free(ca_pem);
        free(cert_pem);
        free(key_pem);
    } else {
        struct buf backup = {0};
        if (!is_ok(keyprov_add_native(kp, provider)) || !is_ok(buf_alloc(&backup, 4096, 1 << 20)) ||
            !is_ok(keyprov_backup(kp, provider, "bench passphrase", 16, &backup)))
            return fail("adding the native provider");
        buf_free(&backup);
    }
    struct vm_host_config cfg = {.data_dir = dir};
    if (!is_ok(vm_host_open(&cfg, kp, &h)))
        return fail("opening the host");
    struct vm_create_spec spec = {.name = "bench", .disk_count = disks, .encrypt = true,
                                  .provider = provider};
    for (unsigned long i = 0; i < disks; i++)
        spec.disks[i] = size;
    if (!is_ok(vm_create(h, &spec, NULL, &out)))
        return fail("creating the VM");
    json_decref(out);
    double *ms = calloc(iterations, sizeof *ms);
    if (ms == NULL)
        return 1;
    for (unsigned long i = 0; i < iterations; i++) {
        double t0 = now_ms();
        if (!is_ok(vm_rekey(h, "bench", false, NULL, NULL, &out)))
            return fail("shallow rekey");
        ms[i] = now_ms() - t0;
        json_decref(out);
    }
    qsort(ms, iterations, sizeof *ms, cmp_double);
    printf("disks=%lu size=%llu provider=%s iterations=%lu median_ms=%.2f max_ms=%.2f\n", disks,
           size, kms != NULL ? "standard(vmseal-kms)" : "native", iterations,
           ms[iterations / 2], ms[iterations - 1]);
    free(ms);
    vm_host_close(&h);
    keyprov_close(&kp);
    return 0;
}
