/*
 * fuzz_luks1.c - libFuzzer target for the LUKS1 header reader, seeded with
 * headers written by vmseal and by cryptsetup (luksFormat --type luks1).
 *
 * The input is the start of a disk (a memfd). For any input:
 *   - luks1_read_header either refuses it with ERR_LUKS_HEADER or describes
 *     a header of the one profile vmseal supports, whose key material lies
 *     between the header and the payload;
 *   - luks1_open agrees: it refuses what the reader refused, with the same
 *     code, and otherwise ends in ERR_LUKS_HEADER (key material cut short:
 *     it never reads past the end), ERR_LUKS_KEY or OK, with nothing of a
 *     candidate key left behind on failure.
 * luks1_open runs only when the input's PBKDF2 iteration counts are small,
 * so that the fuzzer measures the parser, not PBKDF2.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/secret.h"
#include "disk/luks1.h"

#include "fuzz_util.h"

static uint32_t be32_at(const uint8_t *data, size_t size, size_t off)
{
    if (off + 4 > size)
        return 0;
    return (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
           (uint32_t)data[off + 2] << 8 | data[off + 3];
}

/* Whether every PBKDF2 the input could ask for is cheap. */
static int iterations_small(const uint8_t *data, size_t size)
{
    if (be32_at(data, size, 164) > 2000) /* mk-digest-iter */
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (be32_at(data, size, 208 + 48 * i + 4) > 2000) /* slot i iterations */
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[LUKS1_SECRET_LEN] = {1, 2, 3};
    static uint8_t *mk;
    struct luks1_info info;
    int fd = memfd_create("fuzz_luks1", MFD_CLOEXEC);

    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    if (mk == NULL)
        CHECK(is_ok(secret_alloc(LUKS1_MASTER_KEY_LEN, (void **)&mk)));

    vs_result r = luks1_read_header(fd, &info);
    CHECK(is_ok(r) || r.code == ERR_LUKS_HEADER);
    if (is_ok(r)) {
        CHECK(strcmp(info.cipher_name, "aes") == 0);
        CHECK(strcmp(info.cipher_mode, "xts-plain64") == 0);
        CHECK(strcmp(info.hash_spec, "sha256") == 0);
        CHECK(info.key_bytes == LUKS1_MASTER_KEY_LEN);
        CHECK(strlen(info.uuid) <= LUKS1_UUID_LEN);
        CHECK(info.active_slots <= 0xff);
        /* The header sector(s) and 500 sectors of key material come first. */
        CHECK(info.payload_offset_bytes >= (uint64_t)(2 + 500) * LUKS1_SECTOR_SIZE);
    }
    if (iterations_small(data, size)) {
        secret_wipe(mk, LUKS1_MASTER_KEY_LEN);
        vs_result o = luks1_open(fd, secret, mk, NULL);
        if (!is_ok(r)) {
            CHECK(o.code == r.code);
        } else {
            CHECK(is_ok(o) || o.code == ERR_LUKS_HEADER || o.code == ERR_LUKS_KEY);
        }
        if (!is_ok(o)) {
            static const uint8_t zeros[LUKS1_MASTER_KEY_LEN];
            CHECK(memcmp(mk, zeros, sizeof(zeros)) == 0);
        }
    }
    close(fd);
    return 0;
}
