/*
 * fuzz_keyprov_files.c - libFuzzer target for what src/keyprov reads from
 * files: a provider backup (its header and fields, and its decrypted
 * contents), providers.json and a native provider's destroyed.json. The
 * first byte of the input picks the reader; the rest is the file.
 *
 * For any input each reader accepts or refuses with its own codes, and
 * what it accepts is what the writer could have written:
 *   - a backup parses only if every field is in bounds and the fields
 *     cover the input exactly (no scrypt is run: the fuzzer measures the
 *     parser, not the KDF);
 *   - decrypted contents give a valid provider name and a UUID;
 *   - providers.json gives valid, distinct names and a default among them;
 *   - destroyed.json gives UUIDs only.
 * Seeds: files written by vmseal (corpus/keyprov_files/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "keyprov/keyprov_internal.h"

#include "fuzz_util.h"

static void fuzz_backup(const uint8_t *data, size_t size)
{
    struct keyprov_backup_parsed f;
    vs_result r = keyprov_backup_parse(data, size, &f);

    CHECK(is_ok(r) || r.code == ERR_INVALID_ARG || r.code == ERR_UNSUPPORTED || r.code == ERR_AUTH);
    if (!is_ok(r))
        return;
    CHECK(f.log2_n >= KEYPROV_BACKUP_LOG2_N_MIN && f.log2_n <= KEYPROV_BACKUP_LOG2_N_MAX);
    CHECK(f.r >= 1 && f.r <= KEYPROV_BACKUP_R_MAX && f.p >= 1 && f.p <= KEYPROV_BACKUP_P_MAX);
    CHECK(f.header == data && f.salt > data && f.iv == f.salt + f.salt_len);
    CHECK(f.ct == data + f.header_len && f.tag == f.ct + f.ct_len);
    CHECK(f.header_len + f.ct_len + CRYPTO_GCM_TAG_LEN == size);
}

static void fuzz_contents(const uint8_t *data, size_t size)
{
    struct keyprov_backup_contents c;
    vs_result r = keyprov_backup_parse_contents(data, size, &c);

    CHECK(is_ok(r) || r.code == ERR_AUTH);
    if (is_ok(r)) {
        CHECK(is_ok(keyprov_check_name(c.name)));
        CHECK(keyprov_is_uuid(c.id));
        CHECK(size == 1 + strlen(c.name) + 1 + KEYPROV_UUID_LEN + KEYPROV_ROOT_LEN);
    }
}

static void fuzz_registry(const uint8_t *data, size_t size)
{
    static struct keyprov_provider *slots[KEYPROV_MAX_PROVIDERS];
    struct keyprov kp = {.providers = slots}; /* what parsing uses of a handle */
    vs_result r = keyprov_registry_parse(&kp, "providers.json", data, size);

    CHECK(is_ok(r) || r.code == ERR_PROVIDER || r.code == ERR_NOMEM);
    if (is_ok(r)) {
        bool default_found = kp.default_name[0] == '\0';
        for (size_t i = 0; i < kp.provider_count; i++) {
            const struct keyprov_provider *p = kp.providers[i];
            CHECK(is_ok(keyprov_check_name(p->name)));
            CHECK(p->type != KEYPROV_NATIVE || keyprov_is_uuid(p->id));
            CHECK(p->type != KEYPROV_STANDARD ||
                  (p->server_count >= 1 && p->server_count <= KEYPROV_MAX_SERVERS));
            for (size_t k = 0; k < i; k++)
                CHECK(strcmp(kp.providers[k]->name, p->name) != 0);
            default_found = default_found || strcmp(kp.default_name, p->name) == 0;
        }
        CHECK(default_found);
    }
    for (size_t i = 0; i < kp.provider_count; i++)
        keyprov_provider_free(&kp.providers[i]);
}

static void fuzz_tombstones(const uint8_t *data, size_t size)
{
    struct keyprov_provider *p = NULL;

    CHECK(is_ok(keyprov_provider_new(&p)));
    vs_result r = keyprov_native_parse_tombstones(p, "destroyed.json", data, size);
    CHECK(is_ok(r) || r.code == ERR_PROVIDER || r.code == ERR_NOMEM);
    if (is_ok(r))
        for (size_t i = 0; i < p->tombstone_count; i++)
            CHECK(keyprov_is_uuid(p->tombstones[i]));
    keyprov_provider_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const readers[])(const uint8_t *, size_t) = {
        fuzz_backup,
        fuzz_contents,
        fuzz_registry,
        fuzz_tombstones,
    };

    if (size == 0)
        return 0;
    readers[data[0] % (sizeof(readers) / sizeof(readers[0]))](data + 1, size - 1);
    err_clear();
    return 0;
}
