/*
 * bench_crypto - throughput of core's crypto as vmseal uses it, for
 * comparison with `openssl speed -evp` on the same machine (bench/run.sh
 * runs both and prints the ratio).
 *
 *   xts:  XTS-AES-256 over 512-byte sectors (LUKS1), 1 MiB per call, the
 *         way the bulk disk engine calls it; MB/s on one thread.
 *   gcm:  crypto_gcm_seal of 32-byte keys with 36 bytes of AAD, the way the
 *         KMS seals every key record; seals per second on one thread.
 *
 * Output: one line per measurement, "name value unit".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    char msg[256];
    fprintf(stderr, "%s: %s\n", what, err_format(msg, sizeof(msg)));
    exit(1);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 3.0;
    static uint8_t data[1 << 20];
    uint8_t key[64];
    struct crypto_xts *x = NULL;

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 13 + 1);
    memset(data, 0x5a, sizeof(data));
    if (!is_ok(crypto_xts_new(key, &x)))
        die("xts");

    /* XTS: whole MiB calls, sector numbers advancing as on a disk. */
    double t0 = now(), t;
    uint64_t sector = 0, bytes = 0;
    do {
        if (!is_ok(crypto_xts_encrypt(x, sector, 512, data, data, sizeof(data))))
            die("xts encrypt");
        sector += sizeof(data) / 512;
        bytes += sizeof(data);
    } while ((t = now() - t0) < seconds);
    printf("xts_512_sectors %.0f MB/s\n", (double)bytes / t / 1e6);
    crypto_xts_free(&x);

    /* GCM: many small seals, each a full init (a key record each). */
    uint8_t iv[12] = {0}, ct[32], tag[16], aad[36];
    memset(aad, 'a', sizeof(aad));
    uint64_t n = 0;
    t0 = now();
    do {
        for (int i = 0; i < 1000; i++) {
            iv[0] = (uint8_t)i;
            if (!is_ok(crypto_gcm_seal(key, iv, aad, sizeof(aad), data, 32, ct, tag)))
                die("gcm seal");
        }
        n += 1000;
    } while ((t = now() - t0) < seconds);
    printf("gcm_seal_32 %.0f ops/s\n", (double)n / t);
    return 0;
}
