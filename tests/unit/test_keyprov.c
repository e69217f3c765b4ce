/*
 * Tests of the key providers (src/keyprov): the native provider end to end
 * (backup before first use, KEK derivation checked from outside, restore on
 * a fresh data directory, tombstones), the backup file against every kind
 * of damage, the host key file, providers.json's strictness, the KEK cache
 * under threads, and that no key byte reaches any file in clear.
 *
 * The standard provider needs a KMIP server: it is tested in
 * tests/integration/test_keyprov_standard.py against vmseal-kms and PyKMIP.
 */
#include "test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov.h"
#include "keyprov/keyprov_internal.h"

static char dir[64];
static const char pass[] = "correct horse battery staple";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-keyprov-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A data directory under the test's directory. */
static void data_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void path_in(char *out, size_t n, const char *data, const char *rel)
{
    snprintf(out, n, "%s/%s", data, rel);
}

/* Opens a data directory with a native provider "nkp", backed up; the
 * backup's bytes go to *backup when not NULL. */
static struct keyprov *open_backed_up(const char *data, struct buf *backup)
{
    struct keyprov *kp = NULL;
    struct buf b;

    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_add_native(kp, "nkp"));
    assert_ok(buf_alloc(&b, 0, 4096));
    assert_ok(keyprov_backup(kp, "nkp", pass, strlen(pass), &b));
    if (backup != NULL)
        *backup = b;
    else
        buf_free(&b);
    return kp;
}

static const struct keyprov_kek_purpose purpose = {"vm1", "4c4c4544-0031-3410-8056-b4c04f4e3732"};

/* --- the native provider --- */

static void test_native_needs_a_backup_first(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct keyprov_ref ref;
    struct keyprov_info info;
    struct buf b;
    (void)state;

    data_dir(data, sizeof(data), "d");
    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_add_native(kp, "nkp"));
    assert_ok(keyprov_get_info(kp, "nkp", &info));
    assert_false(info.backed_up);
    assert_int_equal(info.type, KEYPROV_NATIVE);

    assert_err(keyprov_new_kek(kp, "nkp", &purpose, &ref), ERR_KEY_STATE);
    assert_non_null(strstr(err_last()->detail, "native provider nkp must be backed up before "
                                               "its first key is used: vmseal kp backup nkp "
                                               "--to FILE"));
    assert_err(keyprov_new_kek(kp, NULL, &purpose, &ref), ERR_KEY_STATE); /* the default */

    /* Passphrases shorter than 8 bytes are refused, and mark nothing. */
    assert_ok(buf_alloc(&b, 0, 4096));
    assert_err(keyprov_backup(kp, "nkp", "1234567", 7, &b), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&b), 0);
    assert_ok(keyprov_get_info(kp, "nkp", &info));
    assert_false(info.backed_up);
    assert_err(keyprov_backup(kp, "other", pass, strlen(pass), &b), ERR_NOT_FOUND);

    assert_ok(keyprov_backup(kp, "nkp", pass, strlen(pass), &b));
    assert_true(buf_len(&b) > 32);
    assert_ok(keyprov_get_info(kp, "nkp", &info));
    assert_true(info.backed_up);
    assert_ok(keyprov_new_kek(kp, NULL, &purpose, &ref));
    assert_string_equal(ref.provider, "nkp");
    assert_true(keyprov_is_uuid(ref.key_id));
    assert_int_equal(ref.key_id[14], '4'); /* version 4 */
    assert_true(keyprov_is_cached(kp, &ref));
    buf_free(&b);
    keyprov_close(&kp);
    assert_null(kp);
    keyprov_close(&kp); /* NULL is fine */
}

/* The KEK is HKDF-SHA256(root, "vmseal native KEK v1" || key ID): computed
 * here from the root, independently of the provider, and checked against
 * what the provider wraps with. */
static void test_native_kek_derivation_and_round_trip(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct keyprov_ref ref, ref2;
    uint8_t root[KEYPROV_ROOT_LEN], expect[KEYPROV_KEK_LEN], cached[KEYPROV_KEK_LEN];
    char info[160];
    uint8_t secret_in[32], secret_out[64];
    size_t out_len;
    struct buf wrapped, plain;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, NULL);
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref2));
    assert_string_not_equal(ref.key_id, ref2.key_id);

    assert_ok(keyprov_test_native_root(kp, "nkp", root));
    snprintf(info, sizeof(info), "vmseal native KEK v1%s", ref.key_id);
    assert_ok(crypto_hkdf_sha256(NULL, 0, root, sizeof(root), info, strlen(info), expect,
                                 sizeof(expect)));
    assert_ok(keyprov_test_cached_kek(kp, &ref, cached));
    assert_memory_equal(cached, expect, sizeof(expect));
    assert_ok(keyprov_test_cached_kek(kp, &ref2, cached));
    assert_memory_not_equal(cached, expect, sizeof(expect));

    assert_ok(crypto_random(secret_in, sizeof(secret_in)));
    assert_ok(buf_alloc(&wrapped, 0, 1024));
    assert_ok(keyprov_wrap(kp, &ref, secret_in, sizeof(secret_in), &wrapped));
    assert_int_equal(buf_len(&wrapped), CRYPTO_KWP_WRAPPED_LEN(sizeof(secret_in)));
    /* RFC 5649 under the independently computed KEK opens it. */
    assert_ok(buf_alloc_secret(&plain, 0, 1024));
    assert_ok(
        crypto_kwp_unwrap(expect, sizeof(expect), buf_data(&wrapped), buf_len(&wrapped), &plain));
    assert_memory_equal(buf_data(&plain), secret_in, sizeof(secret_in));
    buf_free(&plain);

    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), secret_out,
                             sizeof(secret_out), &out_len));
    assert_int_equal(out_len, sizeof(secret_in));
    assert_memory_equal(secret_out, secret_in, sizeof(secret_in));

    /* Wrong KEK, tampered, malformed, no room. */
    assert_err(keyprov_unwrap(kp, &ref2, buf_data(&wrapped), buf_len(&wrapped), secret_out,
                              sizeof(secret_out), &out_len),
               ERR_AUTH);
    wrapped.data[5] ^= 0x01;
    assert_err(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), secret_out,
                              sizeof(secret_out), &out_len),
               ERR_AUTH);
    wrapped.data[5] ^= 0x01;
    assert_err(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped) - 1, secret_out,
                              sizeof(secret_out), &out_len),
               ERR_INVALID_ARG);
    assert_err(
        keyprov_unwrap(kp, &ref, buf_data(&wrapped), 8, secret_out, sizeof(secret_out), &out_len),
        ERR_INVALID_ARG);
    assert_err(
        keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), secret_out, 31, &out_len),
        ERR_BUF_LIMIT);
    assert_err(keyprov_wrap(kp, &ref, secret_in, 0, &wrapped), ERR_INVALID_ARG);
    assert_err(keyprov_wrap(kp, &ref, secret_in, 513, &wrapped), ERR_INVALID_ARG);

    /* A key that is not a UUID is no native key ID; an unknown provider
     * is not found. */
    struct keyprov_ref bad = ref;
    snprintf(bad.key_id, sizeof(bad.key_id), "1234");
    assert_err(keyprov_fetch(kp, &bad), ERR_INVALID_ARG);
    bad = ref;
    snprintf(bad.provider, sizeof(bad.provider), "nope");
    assert_err(keyprov_fetch(kp, &bad), ERR_NOT_FOUND);
    assert_err(keyprov_wrap(kp, &bad, secret_in, 32, &wrapped), ERR_NOT_FOUND);
    assert_false(keyprov_is_cached(kp, &bad));
    bad = ref;
    memset(bad.provider, 'a', sizeof(bad.provider)); /* not terminated */
    assert_err(keyprov_fetch(kp, &bad), ERR_INVALID_ARG);
    assert_false(keyprov_is_cached(kp, &bad));

    secret_wipe(root, sizeof(root));
    secret_wipe(expect, sizeof(expect));
    buf_free(&wrapped);
    keyprov_close(&kp);
}

static void test_native_persists_across_reopen(void **state)
{
    char data[128], name[KEYPROV_NAME_MAX];
    struct keyprov *kp;
    struct keyprov_ref ref;
    struct keyprov_info infos[4];
    uint8_t key[48], out[48];
    size_t n, out_len;
    struct buf wrapped;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, NULL);
    assert_ok(keyprov_add_native(kp, "second"));
    assert_ok(keyprov_set_default(kp, "second"));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref));
    assert_ok(crypto_random(key, sizeof(key)));
    assert_ok(buf_alloc(&wrapped, 0, 1024));
    assert_ok(keyprov_wrap(kp, &ref, key, sizeof(key), &wrapped));
    keyprov_close(&kp);

    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_list(kp, infos, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(infos[0].name, "nkp");
    assert_true(infos[0].backed_up);
    assert_false(infos[0].is_default);
    assert_string_equal(infos[1].name, "second");
    assert_false(infos[1].backed_up);
    assert_true(infos[1].is_default);
    assert_ok(keyprov_get_default(kp, name));
    assert_string_equal(name, "second");
    /* cap smaller than the count: count is still the whole. */
    assert_ok(keyprov_list(kp, infos, 1, &n));
    assert_int_equal(n, 2);

    assert_false(keyprov_is_cached(kp, &ref)); /* a new process starts empty */
    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out),
                             &out_len));
    assert_true(keyprov_is_cached(kp, &ref));
    assert_int_equal(out_len, sizeof(key));
    assert_memory_equal(out, key, sizeof(key));
    buf_free(&wrapped);
    keyprov_close(&kp);
}

static void test_default_provider(void **state)
{
    char data[128], name[KEYPROV_NAME_MAX];
    struct keyprov *kp;
    struct keyprov_ref ref;
    (void)state;

    data_dir(data, sizeof(data), "d");
    assert_ok(keyprov_open(data, &kp));
    assert_err(keyprov_get_default(kp, name), ERR_NOT_FOUND);
    assert_err(keyprov_new_kek(kp, NULL, &purpose, &ref), ERR_NOT_FOUND);
    assert_err(keyprov_set_default(kp, "a"), ERR_NOT_FOUND);
    assert_ok(keyprov_add_native(kp, "a"));
    assert_ok(keyprov_add_native(kp, "b"));
    assert_ok(keyprov_get_default(kp, name));
    assert_string_equal(name, "a"); /* the first added */
    assert_ok(keyprov_set_default(kp, "b"));
    assert_ok(keyprov_get_default(kp, name));
    assert_string_equal(name, "b");
    assert_err(keyprov_set_default(kp, "c"), ERR_NOT_FOUND);
    assert_ok(keyprov_get_default(kp, name));
    assert_string_equal(name, "b");
    keyprov_close(&kp);
}

static void test_bad_and_duplicate_names(void **state)
{
    char data[128], long_name[80];
    struct keyprov *kp;
    struct keyprov_info info;
    size_t n;
    static const char *const bad[] = {"",     ".",   "..",   ".hidden", "-opt", "a/b",
                                      "../x", "a b", "a\\b", "é",       "a:b",  "_x"};
    (void)state;

    data_dir(data, sizeof(data), "d");
    assert_ok(keyprov_open(data, &kp));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_err(keyprov_add_native(kp, bad[i]), ERR_INVALID_ARG);
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_err(keyprov_add_native(kp, long_name), ERR_INVALID_ARG);
    long_name[63] = '\0';
    assert_ok(keyprov_add_native(kp, long_name)); /* 63 is the most */
    assert_ok(keyprov_add_native(kp, "Prod.kp_1-2"));
    assert_err(keyprov_add_native(kp, "Prod.kp_1-2"), ERR_EXISTS);
    assert_ok(keyprov_list(kp, &info, 1, &n));
    assert_int_equal(n, 2);
    assert_err(keyprov_get_info(kp, "nope", &info), ERR_NOT_FOUND);
    keyprov_close(&kp);
}

/* --- backup and restore --- */

static void test_restore_on_a_fresh_data_dir(void **state)
{
    char a[128], b[128], c[128], name[KEYPROV_NAME_MAX];
    struct keyprov *kp;
    struct keyprov_ref ref;
    struct keyprov_info info;
    struct buf backup, wrapped;
    uint8_t key[32], out[32], root_a[KEYPROV_ROOT_LEN], root_b[KEYPROV_ROOT_LEN];
    size_t out_len;
    (void)state;

    data_dir(a, sizeof(a), "a");
    kp = open_backed_up(a, &backup);
    assert_ok(keyprov_new_kek(kp, NULL, &purpose, &ref));
    assert_ok(crypto_random(key, sizeof(key)));
    assert_ok(buf_alloc(&wrapped, 0, 1024));
    assert_ok(keyprov_wrap(kp, &ref, key, sizeof(key), &wrapped));
    assert_ok(keyprov_test_native_root(kp, "nkp", root_a));
    /* Restoring the same backup onto the same provider changes nothing. */
    assert_ok(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, name));
    assert_string_equal(name, "nkp");
    /* ... but under another name on the same host it would be a second
     * copy of the root, escaping the first one's tombstones. */
    assert_err(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), "copy", NULL),
        ERR_EXISTS);
    keyprov_close(&kp);

    /* A fresh host: a new host key, the same KEKs. */
    data_dir(b, sizeof(b), "b");
    assert_ok(keyprov_open(b, &kp));
    assert_ok(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, name));
    assert_string_equal(name, "nkp");
    assert_ok(keyprov_get_info(kp, "nkp", &info));
    assert_true(info.backed_up);
    assert_true(info.is_default);
    assert_ok(keyprov_test_native_root(kp, "nkp", root_b));
    assert_memory_equal(root_a, root_b, sizeof(root_a));
    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out),
                             &out_len));
    assert_memory_equal(out, key, sizeof(key));
    keyprov_close(&kp);
    /* and it survives a reopen (sealed under b's own host key) */
    assert_ok(keyprov_open(b, &kp));
    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out),
                             &out_len));
    assert_memory_equal(out, key, sizeof(key));
    keyprov_close(&kp);

    /* Under another name: the KEKs are the same (they depend on the root
     * and the key ID only). */
    data_dir(c, sizeof(c), "c");
    assert_ok(keyprov_open(c, &kp));
    assert_ok(keyprov_add_native(kp, "nkp")); /* another provider of that name */
    assert_err(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, NULL),
        ERR_EXISTS);
    assert_err(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), "../x", NULL),
        ERR_INVALID_ARG);
    assert_ok(keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass),
                              "restored", name));
    assert_string_equal(name, "restored");
    snprintf(ref.provider, sizeof(ref.provider), "restored");
    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out),
                             &out_len));
    assert_memory_equal(out, key, sizeof(key));
    keyprov_close(&kp);

    secret_wipe(root_a, sizeof(root_a));
    secret_wipe(root_b, sizeof(root_b));
    buf_free(&backup);
    buf_free(&wrapped);
}

/* Restores file into a fresh data directory; returns the result, and
 * checks that a refusal left no provider behind. */
static vs_result restore_fresh(const void *file, size_t len, const char *passphrase)
{
    static int n;
    char data[128], sub[32];
    struct keyprov *kp;
    struct keyprov_info info;
    size_t count;
    vs_result rc;

    snprintf(sub, sizeof(sub), "r%d", n++);
    data_dir(data, sizeof(data), sub);
    assert_ok(keyprov_open(data, &kp));
    rc = keyprov_restore(kp, file, len, passphrase, strlen(passphrase), NULL, NULL);
    struct err_state e = *err_last();
    assert_ok(keyprov_list(kp, &info, 1, &count));
    assert_int_equal(count, is_ok(rc) ? 1 : 0);
    keyprov_close(&kp);
    return err_restore(&e);
}

static void test_restore_wrong_passphrase(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct buf backup;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    keyprov_close(&kp);
    assert_err(restore_fresh(buf_data(&backup), buf_len(&backup), "correct horse battery stapl"),
               ERR_AUTH);
    assert_err(restore_fresh(buf_data(&backup), buf_len(&backup), ""), ERR_INVALID_ARG);
    assert_ok(restore_fresh(buf_data(&backup), buf_len(&backup), pass));
    buf_free(&backup);
}

/* Offsets of the fields of a version 1 backup (backup.c). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_KDF = 10,
    OFF_LOG2N = 11,
    OFF_R = 12,
    OFF_P = 16,
    OFF_SALT_LEN = 20,
    OFF_SALT = 21,
    OFF_IV = 21 + 32,
    OFF_CT_LEN = 21 + 32 + 12,
    OFF_CT = 21 + 32 + 12 + 4,
};

static void test_restore_tampered(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct buf backup;
    uint8_t *f;
    size_t len;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    keyprov_close(&kp);
    f = backup.data;
    len = buf_len(&backup);
    assert_memory_equal(f, "VMSEALKB", 8);
    assert_int_equal(f[OFF_LOG2N], 15);
    assert_int_equal(f[OFF_SALT_LEN], 32);

    /* One flipped bit in each region, each field of the header included
     * (it is the AAD): nothing opens. */
    const struct {
        size_t at;
        enum err_code want;
    } flips[] = {
        {OFF_MAGIC, ERR_INVALID_ARG},
        {OFF_MAGIC + 7, ERR_INVALID_ARG},
        {OFF_VERSION + 1, ERR_UNSUPPORTED},
        {OFF_KDF, ERR_AUTH},
        {OFF_LOG2N, ERR_AUTH}, /* 15 -> 14: in bounds, another key */
        {OFF_R + 3, ERR_AUTH},
        {OFF_P + 3, ERR_AUTH},
        {OFF_SALT_LEN, ERR_AUTH},
        {OFF_SALT, ERR_AUTH},
        {OFF_SALT + 31, ERR_AUTH},
        {OFF_IV, ERR_AUTH},
        {OFF_IV + 11, ERR_AUTH},
        {OFF_CT_LEN + 3, ERR_AUTH},
        {OFF_CT, ERR_AUTH},
        {OFF_CT + 40, ERR_AUTH},
        {len - 16, ERR_AUTH}, /* the tag */
        {len - 1, ERR_AUTH},
    };
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        f[flips[i].at] ^= 0x01;
        assert_err(restore_fresh(f, len, pass), flips[i].want);
        f[flips[i].at] ^= 0x01;
    }
    assert_ok(restore_fresh(f, len, pass)); /* the untouched file still opens */
    buf_free(&backup);
}

static void test_restore_truncated_or_extended(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct keyprov_info info;
    struct buf backup;
    size_t count;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    keyprov_close(&kp);
    data_dir(data, sizeof(data), "fresh");
    assert_ok(keyprov_open(data, &kp));
    for (size_t len = 0; len < buf_len(&backup); len++) {
        vs_result rc = keyprov_restore(kp, buf_data(&backup), len, pass, strlen(pass), NULL, NULL);
        assert_err(rc, len < 8 ? ERR_INVALID_ARG : ERR_AUTH);
    }
    assert_ok(buf_write_u8(&backup, 0));
    assert_err(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, NULL),
        ERR_AUTH);
    assert_ok(keyprov_list(kp, &info, 1, &count));
    assert_int_equal(count, 0);
    keyprov_close(&kp);
    buf_free(&backup);
}

/* A file that asks for absurd scrypt work is refused at once, before any
 * memory or time is spent (the test would time out otherwise), and with a
 * detail that says so: without the bounds OpenSSL's own limit would give
 * ERR_CRYPTO, or the derivation would run for hours. */
static void test_restore_huge_scrypt_params_refused(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct buf backup;
    uint8_t *f;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    keyprov_close(&kp);
    f = backup.data;

    const struct {
        uint8_t log2n;
        uint32_t r, p;
    } huge[] = {
        {40, 8, 1},        /* N = 2^40 */
        {21, 8, 1},        /* just past the bound */
        {15, 1u << 20, 1}, /* r */
        {15, 8, 1u << 30}, /* p: CPU time */
        {20, 32, 16},      /* each in bounds, the product is not */
        {18, 32, 1},       /* memory: 128 * 32 * 2^18 = 1 GiB */
        {13, 8, 1},        /* weaker than anything vmseal writes */
        {15, 0, 1},        {15, 8, 0},
    };
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        struct buf hdr;
        uint8_t saved[OFF_SALT_LEN - OFF_LOG2N];
        memcpy(saved, f + OFF_LOG2N, sizeof(saved));
        buf_wrap(&hdr, f + OFF_LOG2N, sizeof(saved));
        assert_ok(buf_write_u8(&hdr, huge[i].log2n));
        assert_ok(buf_write_u32(&hdr, huge[i].r));
        assert_ok(buf_write_u32(&hdr, huge[i].p));
        assert_err(restore_fresh(f, buf_len(&backup), pass), ERR_AUTH);
        assert_non_null(strstr(err_last()->detail, "out of bounds"));
        memcpy(f + OFF_LOG2N, saved, sizeof(saved));
    }
    /* A huge declared ciphertext length is refused too, not allocated. */
    f[OFF_CT_LEN] = 0x7f;
    assert_err(restore_fresh(f, buf_len(&backup), pass), ERR_AUTH);
    buf_free(&backup);
}

/* --- tombstones --- */

static void test_destroyed_native_key_is_refused(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct keyprov_ref ref, other;
    struct buf backup, wrapped;
    uint8_t key[32], out[32];
    size_t out_len;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &other));
    assert_ok(crypto_random(key, sizeof(key)));
    assert_ok(buf_alloc(&wrapped, 0, 1024));
    assert_ok(keyprov_wrap(kp, &ref, key, sizeof(key), &wrapped));

    assert_ok(keyprov_destroy_key(kp, &ref));
    assert_false(keyprov_is_cached(kp, &ref));
    assert_err(keyprov_fetch(kp, &ref), ERR_KEY_STATE);
    assert_non_null(strstr(err_last()->detail, "destroyed"));
    assert_err(keyprov_wrap(kp, &ref, key, sizeof(key), &wrapped), ERR_KEY_STATE);
    assert_err(
        keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out), &out_len),
        ERR_KEY_STATE);
    assert_false(keyprov_is_cached(kp, &ref));
    assert_ok(keyprov_destroy_key(kp, &ref)); /* twice is fine */
    assert_ok(keyprov_fetch(kp, &other));     /* the others are untouched */
    keyprov_close(&kp);

    /* The tombstone is on disk. */
    assert_ok(keyprov_open(data, &kp));
    assert_err(
        keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out), &out_len),
        ERR_KEY_STATE);
    assert_ok(keyprov_fetch(kp, &other));
    /* Restoring the provider's own backup here does not resurrect it. */
    assert_ok(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, NULL));
    assert_err(keyprov_fetch(kp, &ref), ERR_KEY_STATE);
    keyprov_close(&kp);

    /* A backup restored on another host still derives it: what the
     * operator documentation warns about. */
    data_dir(data, sizeof(data), "elsewhere");
    assert_ok(keyprov_open(data, &kp));
    assert_ok(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, NULL));
    assert_ok(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), out, sizeof(out),
                             &out_len));
    assert_memory_equal(out, key, sizeof(key));
    keyprov_close(&kp);
    buf_free(&backup);
    buf_free(&wrapped);
}

/* --- the host key --- */

static void test_host_key_file(void **state)
{
    char data[128], path[192];
    struct keyprov *kp;
    struct stat st;
    (void)state;

    data_dir(data, sizeof(data), "d");
    assert_ok(keyprov_open(data, &kp));
    keyprov_close(&kp);
    path_in(path, sizeof(path), data, "host.key");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* Looser than 0600: refused. */
    static const mode_t loose[] = {0640, 0604, 0660, 0644, 0610};
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        assert_int_equal(chmod(path, loose[i]), 0);
        assert_err(keyprov_open(data, &kp), ERR_PERM);
        assert_null(kp);
    }
    assert_int_equal(chmod(path, 0400), 0); /* stricter is fine */
    assert_ok(keyprov_open(data, &kp));
    keyprov_close(&kp);
    assert_int_equal(chmod(path, 0600), 0);

    /* Wrong size: refused, never replaced. */
    assert_int_equal(truncate(path, 31), 0);
    assert_err(keyprov_open(data, &kp), ERR_INVALID_ARG);
    assert_int_equal(truncate(path, 33), 0);
    assert_err(keyprov_open(data, &kp), ERR_INVALID_ARG);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 33);
    assert_int_equal(unlink(path), 0);

    /* Missing on a fresh directory: created. Missing where providers are
     * registered: refused, not silently replaced (that would orphan every
     * sealed root). */
    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_add_native(kp, "nkp"));
    keyprov_close(&kp);
    assert_int_equal(unlink(path), 0);
    assert_err(keyprov_open(data, &kp), ERR_NOT_FOUND);
    assert_non_null(strstr(err_last()->detail, "providers.json"));
    assert_int_equal(stat(path, &st), -1);
}

/* Processes starting at once on a fresh directory agree on one host key:
 * none replaces a key another has already sealed under. */
#define RACERS 8
static pthread_barrier_t race_start;
static char race_path[192];
static struct keyprov_hostkey *racer_keys[RACERS];

static void *load_host_key(void *arg)
{
    struct keyprov_hostkey **slot = arg;

    pthread_barrier_wait(&race_start);
    if (!is_ok(keyprov_hostkey_load(race_path, true, slot)))
        *slot = NULL;
    return NULL;
}

static void test_host_key_created_once(void **state)
{
    pthread_t t[RACERS];
    struct buf sealed, plain;
    (void)state;

    for (int round = 0; round < 20; round++) {
        snprintf(race_path, sizeof(race_path), "%s/host-%d.key", dir, round);
        assert_int_equal(pthread_barrier_init(&race_start, NULL, RACERS), 0);
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, load_host_key, &racer_keys[i]), 0);
        for (int i = 0; i < RACERS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&race_start);
        for (int i = 0; i < RACERS; i++) {
            assert_non_null(racer_keys[i]);
            assert_ok(buf_alloc(&sealed, 0, 256));
            assert_ok(keyprov_hostkey_seal(racer_keys[i], "test", "n", "id", "x", 1, &sealed));
            for (int k = 0; k < RACERS; k++) {
                assert_ok(buf_alloc_secret(&plain, 0, 256));
                assert_ok(keyprov_hostkey_open(racer_keys[k], "test", "n", "id", buf_data(&sealed),
                                               buf_len(&sealed), &plain));
                /* and only for what it was sealed for */
                assert_err(keyprov_hostkey_open(racer_keys[k], "test", "m", "id", buf_data(&sealed),
                                                buf_len(&sealed), &plain),
                           ERR_AUTH);
                buf_free(&plain);
            }
            buf_free(&sealed);
        }
        for (int i = 0; i < RACERS; i++)
            keyprov_hostkey_free(&racer_keys[i]);
    }
    /* No temporary file is left behind. */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls %s | grep -v '^host-[0-9]*\\.key$')\"", dir);
    assert_int_equal(system(cmd), 0);
}

/* Another host's key (or a damaged root file) does not open the sealed
 * root: the provider is listed but broken, the others work, and restoring
 * its backup repairs it. */
static void test_damaged_root_and_repair(void **state)
{
    char data[128], path[192];
    struct keyprov *kp;
    struct keyprov_ref ref, ref2;
    struct keyprov_info info;
    struct buf backup, sealed;
    size_t n;
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    assert_ok(keyprov_add_native(kp, "fine"));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref));
    keyprov_close(&kp);

    path_in(path, sizeof(path), data, "providers/nkp/root.sealed");
    assert_ok(buf_alloc(&sealed, 0, 1024));
    assert_ok(file_read_all(path, 1024, &sealed));
    sealed.data[buf_len(&sealed) / 2] ^= 0x80;
    assert_ok(file_write_atomic(path, buf_data(&sealed), buf_len(&sealed), 0600));

    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_list(kp, &info, 1, &n));
    assert_int_equal(n, 2);
    assert_err(keyprov_fetch(kp, &ref), ERR_AUTH);
    assert_err(keyprov_new_kek(kp, "nkp", &purpose, &ref2), ERR_AUTH);
    assert_err(keyprov_backup(kp, "nkp", pass, strlen(pass), &sealed), ERR_AUTH);
    assert_ok(keyprov_backup(kp, "fine", pass, strlen(pass), &sealed));
    assert_ok(keyprov_new_kek(kp, "fine", &purpose, &ref2));

    assert_ok(
        keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL, NULL));
    assert_ok(keyprov_fetch(kp, &ref));
    keyprov_close(&kp);
    assert_ok(keyprov_open(data, &kp));
    assert_ok(keyprov_fetch(kp, &ref));
    keyprov_close(&kp);
    buf_free(&sealed);
    buf_free(&backup);
}

/* --- providers.json --- */

static void test_registry_is_read_strictly(void **state)
{
    char data[128], path[192];
    struct keyprov *kp;
    static const char id[] = "0b6c0a3e-8d43-4b7e-9a2e-3c1f5e7d9a10";
    const char *bad[] = {
        "",
        "[]",
        "{\"version\": 1, \"providers\": [], \"extra\": 1}",
        "{\"version\": 2, \"providers\": []}",
        "{\"version\": \"1\", \"providers\": []}",
        "{\"providers\": []}",
        "{\"version\": 1}",
        "{\"version\": 1, \"version\": 1, \"providers\": []}",
        "{\"version\": 1, \"providers\": [], \"default\": \"x\"}",
        "{\"version\": 1, \"providers\": [], \"default\": null}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"native\", \"id\": "
        "\"@ID@\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"native\", \"id\": "
        "\"@ID@\", "
        "\"backed_up\": 1}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"native\", \"id\": "
        "\"@ID@\", "
        "\"backed_up\": true, \"root\": \"00\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"native\", \"id\": "
        "\"x@ID@\", "
        "\"backed_up\": true}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"../a\", \"type\": \"native\", \"id\": "
        "\"@ID@\", \"backed_up\": true}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"cloud\", \"id\": \"@ID@\", "
        "\"backed_up\": true}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[]}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"host\"]}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"host:0\"]}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"id\": \"@ID@\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\",\"h:2\",\"h:3\",\"h:4\",\"h:5\",\"h:6\",\"h:7\",\"h:8\",\"h:9\"]}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"]}, {\"name\": \"a\", \"type\": \"standard\", \"servers\": [\"h:1\"]}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\\u0000b\", \"type\": \"standard\", "
        "\"servers\": [\"h:1\"]}]}",
        "{\"version\": 1, \"providers\": []} trailing",
    };
    char text[1024];
    (void)state;

    data_dir(data, sizeof(data), "d");
    assert_ok(keyprov_open(data, &kp)); /* makes host.key */
    keyprov_close(&kp);
    path_in(path, sizeof(path), data, "providers.json");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *at = strstr(bad[i], "@ID@");
        int n = at == NULL ? snprintf(text, sizeof(text), "%s", bad[i])
                           : snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - bad[i]), bad[i],
                                      id, at + 4);
        assert_true(n >= 0 && (size_t)n < sizeof(text));
        assert_ok(file_write_atomic(path, text, (size_t)n, 0644));
        vs_result rc = keyprov_open(data, &kp);
        if (rc.code != ERR_PROVIDER)
            print_error("accepted or misjudged: %s\n", text);
        assert_int_equal(rc.code, ERR_PROVIDER);
        assert_null(kp);
    }
    /* What keyprov writes itself is read back. */
    snprintf(text, sizeof(text),
             "{\"version\": 1, \"default\": \"s\", \"providers\": [{\"name\": \"s\", \"type\": "
             "\"standard\", \"servers\": [\"kms.example:5696\", \"[::1]:5696\"]}]}");
    assert_ok(file_write_atomic(path, text, strlen(text), 0644));
    assert_ok(keyprov_open(data, &kp));
    struct keyprov_info info;
    assert_ok(keyprov_get_info(kp, "s", &info));
    assert_int_equal(info.type, KEYPROV_STANDARD);
    assert_int_equal(info.server_count, 2);
    assert_string_equal(info.servers[1], "[::1]:5696");
    assert_true(info.is_default);
    keyprov_close(&kp);
}

/* --- no key byte in any file, raw or hex --- */

struct needle {
    uint8_t bytes[32];
};
static struct needle needles[16];
static size_t needle_count;
static size_t files_scanned;
static const char *scan_skip; /* host.key is the one file that holds a key */

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

static int scan_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    struct buf b;
    char hex[65];
    (void)st, (void)ftw;

    if (flag != FTW_F || strcmp(path, scan_skip) == 0)
        return 0;
    files_scanned++;
    assert_ok(buf_alloc(&b, 0, 1 << 24));
    assert_ok(file_read_all(path, 1 << 24, &b));
    for (size_t i = 0; i < needle_count; i++) {
        if (contains(buf_data(&b), buf_len(&b), needles[i].bytes, 32) ||
            contains(buf_data(&b), buf_len(&b), needles[i].bytes, 16) ||
            contains(buf_data(&b), buf_len(&b), needles[i].bytes + 16, 16))
            fail_msg("key material %zu in %s", i, path);
        assert_ok(hex_encode(needles[i].bytes, 32, hex, sizeof(hex)));
        if (contains(buf_data(&b), buf_len(&b), hex, 32) ||
            contains(buf_data(&b), buf_len(&b), hex + 32, 32))
            fail_msg("key material %zu in hex in %s", i, path);
    }
    buf_free(&b);
    return 0;
}

static void test_no_key_material_in_any_file(void **state)
{
    char data[128], hostkey[192];
    struct keyprov *kp;
    struct keyprov_ref ref;
    struct buf backup, wrapped;
    uint8_t key[32];
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, &backup);
    assert_ok(keyprov_add_native(kp, "two"));
    assert_ok(keyprov_backup(kp, "two", pass, strlen(pass), &backup));
    needle_count = 0;
    assert_ok(keyprov_test_native_root(kp, "nkp", needles[needle_count++].bytes));
    assert_ok(keyprov_test_native_root(kp, "two", needles[needle_count++].bytes));
    assert_ok(buf_alloc(&wrapped, 0, 4096));
    for (int i = 0; i < 6; i++) {
        assert_ok(keyprov_new_kek(kp, i % 2 ? "nkp" : "two", &purpose, &ref));
        assert_ok(keyprov_test_cached_kek(kp, &ref, needles[needle_count++].bytes));
        assert_ok(crypto_random(key, sizeof(key)));
        assert_ok(keyprov_wrap(kp, &ref, key, sizeof(key), &wrapped));
        if (i == 5)
            assert_ok(keyprov_destroy_key(kp, &ref));
    }
    keyprov_close(&kp);

    /* host.key holds the host key, by design; nothing else may hold any of
     * these, and host.key must not hold them either. */
    path_in(hostkey, sizeof(hostkey), data, "host.key");
    scan_skip = "";
    files_scanned = 0;
    assert_int_equal(nftw(data, scan_file, 16, FTW_PHYS), 0);
    /* host.key, providers.json, two sealed roots, one tombstone list */
    assert_int_equal(files_scanned, 5);
    /* The backup file carries the roots, encrypted. */
    for (size_t i = 0; i < needle_count; i++)
        assert_false(contains(buf_data(&backup), buf_len(&backup), needles[i].bytes, 16));
    /* And the host key itself appears nowhere else. */
    struct buf hk;
    assert_ok(buf_alloc(&hk, 0, 64));
    assert_ok(file_read_all(hostkey, 64, &hk));
    needle_count = 1;
    memcpy(needles[0].bytes, buf_data(&hk), 32);
    scan_skip = hostkey;
    assert_int_equal(nftw(data, scan_file, 16, FTW_PHYS), 0);
    assert_false(contains(buf_data(&backup), buf_len(&backup), needles[0].bytes, 16));
    secret_wipe(needles, sizeof(needles));
    buf_free(&hk);
    buf_free(&backup);
    buf_free(&wrapped);
}

/* --- threads --- */

struct worker {
    struct keyprov *kp;
    struct keyprov_ref ref;
    int failures;
};

static void *wrap_loop(void *arg)
{
    struct worker *w = arg;
    uint8_t key[32], out[32];
    size_t out_len;
    struct buf wrapped;

    if (!is_ok(buf_alloc(&wrapped, 0, 256)))
        return NULL;
    for (int i = 0; i < 200; i++) {
        buf_reset(&wrapped);
        memset(key, i, sizeof(key));
        if (!is_ok(keyprov_wrap(w->kp, &w->ref, key, sizeof(key), &wrapped)) ||
            !is_ok(keyprov_unwrap(w->kp, &w->ref, buf_data(&wrapped), buf_len(&wrapped), out,
                                  sizeof(out), &out_len)) ||
            memcmp(out, key, sizeof(key)) != 0)
            w->failures++;
    }
    buf_free(&wrapped);
    return NULL;
}

static void *new_kek_loop(void *arg)
{
    struct worker *w = arg;
    struct keyprov_ref ref;

    for (int i = 0; i < 150; i++) {
        if (!is_ok(keyprov_new_kek(w->kp, "nkp", &purpose, &ref)))
            w->failures++;
        else if (i % 3 == 0 && !is_ok(keyprov_destroy_key(w->kp, &ref)))
            w->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    char data[128];
    struct keyprov *kp;
    struct worker w[6];
    pthread_t t[6];
    (void)state;

    data_dir(data, sizeof(data), "d");
    kp = open_backed_up(data, NULL);
    log_set_level(LOG_WARN); /* 450 "new KEK" lines are not the point */
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.kp = kp};
        assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &w[i].ref));
    }
    keyprov_close(&kp);
    /* A fresh handle: the wrapping threads race to fetch the same keys
     * while others fill the cache past one slab (128 KEKs) and evict. */
    assert_ok(keyprov_open(data, &kp));
    for (int i = 0; i < 6; i++) {
        w[i].kp = kp;
        w[i].ref = w[i % 3].ref;
        assert_int_equal(
            pthread_create(&t[i], NULL, i < 3 || i == 5 ? wrap_loop : new_kek_loop, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    log_set_level(LOG_INFO);
    keyprov_close(&kp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_native_needs_a_backup_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_kek_derivation_and_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_duplicate_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_on_a_fresh_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_wrong_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_truncated_or_extended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_huge_scrypt_params_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroyed_native_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_key_created_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_root_and_repair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_is_read_strictly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_key_material_in_any_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    log_set_timestamps(false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
