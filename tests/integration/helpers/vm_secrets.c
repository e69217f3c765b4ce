/*
 * vm_secrets DATA_DIR - prints every secret that protects the VMs of a
 * vmseald data directory, one per line as "<kind> <hex>", so that a test can
 * scan every file vmseald wrote for their raw bytes (and their text forms).
 * Run it while vmseald is stopped. Kinds: root (a native provider's root),
 * kek, file_key, disk_secret, passphrase (the LUKS passphrase text, printed
 * as hex of its ASCII), dek (a LUKS1 base layer's master key).
 *
 * A test tool: it exists to prove that these bytes are nowhere on disk.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"
#include "disk/luks1.h"
#include "keyprov/keyprov.h"
#include "keyprov/keyprov_internal.h"
#include "vm/descriptor.h"

static void print_hex(const char *kind, const uint8_t *p, size_t n)
{
    printf("%s ", kind);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static vs_result print_kek(void *arg, const uint8_t kek[KEYPROV_KEK_LEN], uint32_t state)
{
    (void)arg;
    (void)state;
    print_hex("kek", kek, KEYPROV_KEK_LEN);
    return OK_RESULT;
}

static int fail(const char *what)
{
    char msg[512];
    fprintf(stderr, "vm_secrets: %s: %s\n", what, err_format(msg, sizeof msg));
    return 1;
}

int main(int argc, char **argv)
{
    struct keyprov *kp = NULL;
    char datastore[4096];
    if (argc != 2) {
        fprintf(stderr, "usage: vm_secrets DATA_DIR\n");
        return 2;
    }
    if (!is_ok(keyprov_open(argv[1], &kp)))
        return fail("opening the key providers");
    for (size_t i = 0; i < kp->provider_count; i++)
        if (kp->providers[i]->root != NULL)
            print_hex("root", kp->providers[i]->root, KEYPROV_ROOT_LEN);
    snprintf(datastore, sizeof datastore, "%s/vms", argv[1]);
    DIR *dp = opendir(datastore);
    if (dp == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        static struct vm_desc d;
        if (!is_ok(vm_check_name("VM", e->d_name)) ||
            !is_ok(vm_desc_load(datastore, e->d_name, &d, NULL))) {
            err_clear();
            continue;
        }
        if (!d.encrypted)
            continue;
        if (!is_ok(keyprov_fetch(kp, &d.key)))
            return fail("fetching a KEK");
        if (!is_ok(keyprov_cache_use(kp->cache, d.key.provider, d.key.key_id, print_kek, NULL)))
            return fail("reading a KEK");
        uint8_t *k = NULL;
        size_t len;
        if (!is_ok(secret_alloc(64, (void **)&k)))
            return fail("secret memory");
        if (!is_ok(keyprov_unwrap(kp, &d.key, d.wrapped_file_key, d.wrapped_file_key_len, k, 64,
                                  &len)))
            return fail("unwrapping a file key");
        print_hex("file_key", k, len);
        for (size_t j = 0; j < d.layer_count; j++) {
            const struct vm_layer *l = &d.layers[j];
            if (l->wrapped_len == 0)
                continue;
            if (!is_ok(keyprov_unwrap(kp, &d.key, l->wrapped_secret, l->wrapped_len, k, 64, &len)))
                return fail("unwrapping a disk secret");
            print_hex("disk_secret", k, len);
            char pass[LUKS1_PASSPHRASE_LEN + 1];
            if (!is_ok(luks1_passphrase(k, pass)))
                return fail("passphrase");
            print_hex("passphrase", (const uint8_t *)pass, LUKS1_PASSPHRASE_LEN);
            if (l->format != DISK_FORMAT_LUKS)
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", datastore, l->file);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            uint8_t *dek = NULL;
            if (fd < 0 || !is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&dek)) ||
                !is_ok(luks1_open(fd, k, dek, NULL)))
                return fail("opening a LUKS layer");
            print_hex("dek", dek, LUKS1_MASTER_KEY_LEN);
            secret_free((void **)&dek);
            close(fd);
        }
        secret_free((void **)&k);
    }
    closedir(dp);
    keyprov_close(&kp);
    return 0;
}
