/* Tests of core crypto against published vectors (crypto_vectors.h), and
 * the refusals: wrong key, tampered data, truncated input, bad sizes. */
#include "test_util.h"

#include <string.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "crypto_vectors.h"

#define N_ITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* --- AES-256-GCM --- */

static void test_gcm_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(gcm_vectors); i++) {
        const struct gcm_vector *v = &gcm_vectors[i];
        struct buf key, iv, aad, pt, ct, tag;
        uint8_t out[512], got_tag[CRYPTO_GCM_TAG_LEN];

        test_hex(&key, v->key);
        test_hex(&iv, v->iv);
        test_hex(&aad, v->aad);
        test_hex(&pt, v->pt);
        test_hex(&ct, v->ct);
        test_hex(&tag, v->tag);
        assert_int_equal(buf_len(&key), CRYPTO_AES256_KEY_LEN);
        assert_int_equal(buf_len(&iv), CRYPTO_GCM_IV_LEN);
        assert_int_equal(buf_len(&tag), CRYPTO_GCM_TAG_LEN);
        assert_true(buf_len(&ct) <= sizeof(out));

        if (v->valid) {
            assert_ok(crypto_gcm_seal(buf_data(&key), buf_data(&iv), buf_data(&aad), buf_len(&aad),
                                      buf_data(&pt), buf_len(&pt), out, got_tag));
            if (buf_len(&ct) > 0)
                assert_memory_equal(out, buf_data(&ct), buf_len(&ct));
            assert_memory_equal(got_tag, buf_data(&tag), CRYPTO_GCM_TAG_LEN);
            memset(out, 0, sizeof(out));
            assert_ok(crypto_gcm_open(buf_data(&key), buf_data(&iv), buf_data(&aad), buf_len(&aad),
                                      buf_data(&ct), buf_len(&ct), buf_data(&tag), out));
            if (buf_len(&pt) > 0)
                assert_memory_equal(out, buf_data(&pt), buf_len(&pt));
        } else {
            /* Published as FAIL: the tag must not verify, and nothing is
             * released. */
            memset(out, 0x55, sizeof(out));
            assert_err(crypto_gcm_open(buf_data(&key), buf_data(&iv), buf_data(&aad), buf_len(&aad),
                                       buf_data(&ct), buf_len(&ct), buf_data(&tag), out),
                       ERR_AUTH);
            for (size_t j = 0; j < buf_len(&ct); j++)
                assert_int_equal(out[j], 0);
        }
        buf_free(&key);
        buf_free(&iv);
        buf_free(&aad);
        buf_free(&pt);
        buf_free(&ct);
        buf_free(&tag);
    }
}

static void test_gcm_tampering_is_detected(void **state)
{
    uint8_t key[32], iv[12], pt[48], ct[48], tag[16], out[48];
    static const char aad[] = "object-id:1:version:1";
    (void)state;

    memset(key, 1, sizeof(key));
    memset(iv, 2, sizeof(iv));
    memset(pt, 3, sizeof(pt));
    assert_ok(crypto_gcm_seal(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag));

    /* Every bit of ciphertext, tag, AAD, IV and key matters. */
    for (size_t i = 0; i < sizeof(ct); i++) {
        ct[i] ^= 0x80;
        assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out), ERR_AUTH);
        ct[i] ^= 0x80;
    }
    for (size_t i = 0; i < sizeof(tag); i++) {
        tag[i] ^= 1;
        assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out), ERR_AUTH);
        tag[i] ^= 1;
    }
    char aad2[sizeof(aad)];
    memcpy(aad2, aad, sizeof(aad));
    aad2[10] ^= 1;
    assert_err(crypto_gcm_open(key, iv, aad2, sizeof(aad2), ct, sizeof(ct), tag, out), ERR_AUTH);
    assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad) - 1, ct, sizeof(ct), tag, out), ERR_AUTH);
    iv[0] ^= 1;
    assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out), ERR_AUTH);
    iv[0] ^= 1;
    key[31] ^= 1;
    assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out), ERR_AUTH);
    key[31] ^= 1;
    /* Truncated ciphertext. */
    assert_err(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct) - 1, tag, out), ERR_AUTH);
    /* And the untouched message still opens. */
    assert_ok(crypto_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, out));
    assert_memory_equal(out, pt, sizeof(pt));
}

static void test_seal_open_round_trip_and_refusals(void **state)
{
    uint8_t key[32], other[32];
    static const char secret_text[] = "a data encryption key, 32 bytes";
    struct buf sealed, opened, in;
    (void)state;

    assert_ok(crypto_random_key(key, sizeof(key)));
    assert_ok(crypto_random_key(other, sizeof(other)));
    assert_ok(buf_alloc(&sealed, 0, 4096));
    assert_ok(buf_alloc_secret(&opened, 0, 4096));

    assert_ok(crypto_seal(key, "aad", 3, secret_text, sizeof(secret_text), &sealed));
    assert_int_equal(buf_len(&sealed), sizeof(secret_text) + CRYPTO_SEAL_OVERHEAD);
    /* The plaintext does not appear in the sealed bytes. */
    assert_null(memmem(buf_data(&sealed), buf_len(&sealed), secret_text, 8));

    buf_view(&in, buf_data(&sealed), buf_len(&sealed));
    assert_ok(crypto_open(key, "aad", 3, &in, &opened));
    assert_int_equal(buf_remaining(&in), 0);
    assert_memory_equal(buf_data(&opened), secret_text, sizeof(secret_text));

    /* Wrong key, wrong AAD: refused, nothing appended, cursor unmoved. */
    buf_reset(&opened);
    buf_view(&in, buf_data(&sealed), buf_len(&sealed));
    assert_err(crypto_open(other, "aad", 3, &in, &opened), ERR_AUTH);
    assert_int_equal(buf_len(&opened), 0);
    assert_int_equal(buf_rpos(&in), 0);
    assert_err(crypto_open(key, "aae", 3, &in, &opened), ERR_AUTH);
    assert_int_equal(buf_len(&opened), 0);

    /* Truncated anywhere, down to nothing. */
    for (size_t n = 0; n < buf_len(&sealed); n++) {
        buf_view(&in, buf_data(&sealed), n);
        assert_err(crypto_open(key, "aad", 3, &in, &opened), ERR_AUTH);
        assert_int_equal(buf_len(&opened), 0);
    }

    /* Two seals of the same plaintext differ (fresh IV). */
    struct buf again;
    assert_ok(buf_alloc(&again, 0, 4096));
    assert_ok(crypto_seal(key, "aad", 3, secret_text, sizeof(secret_text), &again));
    assert_memory_not_equal(buf_data(&again), buf_data(&sealed), CRYPTO_GCM_IV_LEN);

    /* A seal that does not fit the output's limit writes nothing. */
    uint8_t small[16];
    struct buf tiny;
    buf_wrap(&tiny, small, sizeof(small));
    assert_err(crypto_seal(key, NULL, 0, secret_text, sizeof(secret_text), &tiny), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&tiny), 0);

    buf_free(&again);
    buf_free(&sealed);
    buf_free(&opened);
}

/* --- AES key wrap with padding --- */

static void test_kwp_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(kwp_vectors); i++) {
        const struct kwp_vector *v = &kwp_vectors[i];
        struct buf kek, key, wrapped, out;

        test_hex(&kek, v->kek);
        test_hex(&key, v->key);
        test_hex(&wrapped, v->wrapped);
        assert_int_equal(buf_len(&wrapped), CRYPTO_KWP_WRAPPED_LEN(buf_len(&key)));

        assert_ok(buf_alloc(&out, 0, 4096));
        assert_ok(
            crypto_kwp_wrap(buf_data(&kek), buf_len(&kek), buf_data(&key), buf_len(&key), &out));
        assert_int_equal(buf_len(&out), buf_len(&wrapped));
        assert_memory_equal(buf_data(&out), buf_data(&wrapped), buf_len(&wrapped));
        buf_free(&out);

        assert_ok(buf_alloc_secret(&out, 0, 4096));
        assert_ok(crypto_kwp_unwrap(buf_data(&kek), buf_len(&kek), buf_data(&wrapped),
                                    buf_len(&wrapped), &out));
        assert_int_equal(buf_len(&out), buf_len(&key));
        assert_memory_equal(buf_data(&out), buf_data(&key), buf_len(&key));
        buf_free(&out);
        buf_free(&kek);
        buf_free(&key);
        buf_free(&wrapped);
    }
}

static void test_kwp_refusals(void **state)
{
    uint8_t kek[32], wrong[32], key[32];
    struct buf wrapped, out;
    (void)state;

    memset(kek, 0x11, sizeof(kek));
    memset(wrong, 0x12, sizeof(wrong));
    memset(key, 0x33, sizeof(key));
    assert_ok(buf_alloc(&wrapped, 0, 4096));
    assert_ok(buf_alloc_secret(&out, 0, 4096));
    assert_ok(crypto_kwp_wrap(kek, sizeof(kek), key, sizeof(key), &wrapped));
    assert_int_equal(buf_len(&wrapped), 40);

    /* Wrong KEK. */
    assert_err(crypto_kwp_unwrap(wrong, sizeof(wrong), buf_data(&wrapped), buf_len(&wrapped), &out),
               ERR_AUTH);
    assert_int_equal(buf_len(&out), 0);
    /* Every byte tampered. */
    uint8_t copy[40];
    for (size_t i = 0; i < sizeof(copy); i++) {
        memcpy(copy, buf_data(&wrapped), sizeof(copy));
        copy[i] ^= 0x01;
        assert_err(crypto_kwp_unwrap(kek, sizeof(kek), copy, sizeof(copy), &out), ERR_AUTH);
        assert_int_equal(buf_len(&out), 0);
    }
    /* Truncated: not a multiple of 8, or a whole block short. */
    assert_err(crypto_kwp_unwrap(kek, sizeof(kek), buf_data(&wrapped), 39, &out), ERR_AUTH);
    assert_err(crypto_kwp_unwrap(kek, sizeof(kek), buf_data(&wrapped), 32, &out), ERR_AUTH);
    assert_err(crypto_kwp_unwrap(kek, sizeof(kek), buf_data(&wrapped), 8, &out), ERR_AUTH);
    /* KEK lengths other than 128/192/256 bits. */
    assert_err(crypto_kwp_wrap(kek, 20, key, sizeof(key), &wrapped), ERR_KEY_LEN);
    assert_err(crypto_kwp_unwrap(kek, 31, buf_data(&wrapped), 40, &out), ERR_KEY_LEN);
    /* Empty key. */
    assert_err(crypto_kwp_wrap(kek, sizeof(kek), key, 0, &wrapped), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), 0);
    buf_free(&wrapped);
    buf_free(&out);
}

static void test_kwp_failure_stays_inside_the_output(void **state)
{
    uint8_t kek[32], key[32], mem[48];
    struct buf wrapped, out;
    (void)state;

    memset(kek, 0x21, sizeof(kek));
    memset(key, 0x43, sizeof(key));
    assert_ok(buf_alloc(&wrapped, 0, 64));
    assert_ok(crypto_kwp_wrap(kek, sizeof(kek), key, sizeof(key), &wrapped));
    uint8_t *w = (uint8_t *)(uintptr_t)buf_data(&wrapped);

    /* An output of exactly the wrapped length, then a canary: a failed
     * unwrap must not touch a byte past the output (OpenSSL wipes the whole
     * input length there). */
    memset(mem, 0xaa, sizeof(mem));
    buf_wrap(&out, mem, 40);
    w[20] ^= 1;
    assert_err(crypto_kwp_unwrap(kek, sizeof(kek), w, 40, &out), ERR_AUTH);
    w[20] ^= 1;
    for (size_t i = 40; i < sizeof(mem); i++)
        assert_int_equal(mem[i], 0xaa);
    assert_int_equal(buf_len(&out), 0);
    assert_ok(crypto_kwp_unwrap(kek, sizeof(kek), w, 40, &out));
    assert_int_equal(buf_len(&out), 32);
    assert_memory_equal(mem, key, 32);
    for (size_t i = 40; i < sizeof(mem); i++)
        assert_int_equal(mem[i], 0xaa);
    /* Too small to work in: refused up front, nothing written. */
    buf_wrap(&out, mem, 32);
    assert_err(crypto_kwp_unwrap(kek, sizeof(kek), w, 40, &out), ERR_BUF_LIMIT);
    buf_free(&wrapped);
}

static void test_input_inside_the_output_is_refused(void **state)
{
    uint8_t key[32];
    struct buf b, in;
    (void)state;

    memset(key, 0x5c, sizeof(key));
    assert_ok(buf_alloc(&b, 0, 4096));
    assert_ok(crypto_seal(key, NULL, 0, "plaintext", 9, &b));
    size_t sealed_len = buf_len(&b);
    /* Opening a record into the buffer that holds it: growing the buffer
     * would free the input under the decryption. */
    buf_view(&in, buf_data(&b), sealed_len);
    assert_err(crypto_open(key, NULL, 0, &in, &b), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&b), sealed_len);
    assert_int_equal(buf_rpos(&in), 0);
    /* Sealing bytes of the output into the output. */
    assert_err(crypto_seal(key, NULL, 0, buf_data(&b) + 4, 8, &b), ERR_INVALID_ARG);
    assert_err(crypto_kwp_wrap(key, sizeof(key), buf_data(&b), 16, &b), ERR_INVALID_ARG);
    assert_err(crypto_kwp_unwrap(key, sizeof(key), buf_data(&b), 16, &b), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&b), sealed_len);
    buf_free(&b);
}

/* --- XTS-AES-256, plain64 --- */

static void test_xts_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(xts_vectors); i++) {
        const struct xts_vector *v = &xts_vectors[i];
        struct buf key, pt, ct;
        struct crypto_xts *x = NULL;
        uint8_t out[512];

        test_hex(&key, v->key);
        test_hex(&pt, v->pt);
        test_hex(&ct, v->ct);
        assert_int_equal(buf_len(&key), CRYPTO_XTS_KEY_LEN);
        assert_int_equal(buf_len(&pt), 512);
        assert_ok(crypto_xts_new(buf_data(&key), &x));
        assert_ok(crypto_xts_encrypt(x, v->sector, 512, buf_data(&pt), out, 512));
        assert_memory_equal(out, buf_data(&ct), 512);
        assert_ok(crypto_xts_decrypt(x, v->sector, 512, out, out, 512)); /* in place */
        assert_memory_equal(out, buf_data(&pt), 512);
        crypto_xts_free(&x);
        assert_null(x);
        buf_free(&key);
        buf_free(&pt);
        buf_free(&ct);
    }
}

static void test_xts_sectors_are_independent_and_numbered(void **state)
{
    uint8_t key[64], data[4 * 512], whole[4 * 512], one[512];
    struct crypto_xts *x = NULL;
    (void)state;

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    assert_ok(crypto_xts_new(key, &x));
    /* Four sectors from 1000 in one call == one sector at a time. */
    assert_ok(crypto_xts_encrypt(x, 1000, 512, data, whole, sizeof(data)));
    for (int s = 0; s < 4; s++) {
        assert_ok(crypto_xts_encrypt(x, 1000 + (uint64_t)s, 512, data + 512 * s, one, 512));
        assert_memory_equal(one, whole + 512 * s, 512);
    }
    /* The same plaintext in another sector encrypts differently. */
    assert_ok(crypto_xts_encrypt(x, 1001, 512, data, one, 512));
    assert_memory_not_equal(one, whole, 512);
    /* Decrypting with the wrong sector number does not give the data back. */
    assert_ok(crypto_xts_decrypt(x, 1001, 512, whole, one, 512));
    assert_memory_not_equal(one, data, 512);

    /* Refusals: partial sector, bad sector sizes, numbering past 2^64. */
    assert_err(crypto_xts_encrypt(x, 0, 512, data, whole, 500), ERR_INVALID_ARG);
    assert_err(crypto_xts_encrypt(x, 0, 0, data, whole, 512), ERR_INVALID_ARG);
    assert_err(crypto_xts_encrypt(x, 0, 520, data, whole, 520), ERR_INVALID_ARG);
    assert_err(crypto_xts_encrypt(x, UINT64_MAX, 512, data, whole, 1024), ERR_OVERFLOW);
    assert_ok(crypto_xts_encrypt(x, UINT64_MAX, 512, data, whole, 512));
    assert_ok(crypto_xts_encrypt(x, 0, 4096, data, whole, 0)); /* nothing to do */
    crypto_xts_free(&x);
    crypto_xts_free(&x);
    crypto_xts_free(NULL);

    /* Equal halves are refused (SP 800-38E). */
    memset(key, 9, sizeof(key));
    assert_err(crypto_xts_new(key, &x), ERR_INVALID_ARG);
    assert_null(x);
}

/* --- hashes, MACs, KDFs --- */

static void test_sha256_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(sha256_vectors); i++) {
        struct buf want;
        uint8_t got[CRYPTO_SHA256_LEN];
        test_hex(&want, sha256_vectors[i].digest);
        assert_ok(crypto_sha256(sha256_vectors[i].msg, strlen(sha256_vectors[i].msg), got));
        assert_memory_equal(got, buf_data(&want), sizeof(got));
        buf_free(&want);
    }
}

static void test_hmac_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(hmac_vectors); i++) {
        struct buf key, data, mac;
        uint8_t got[CRYPTO_SHA256_LEN];
        test_hex(&key, hmac_vectors[i].key);
        test_hex(&data, hmac_vectors[i].data);
        test_hex(&mac, hmac_vectors[i].mac);
        assert_ok(crypto_hmac_sha256(buf_data(&key), buf_len(&key), buf_data(&data), buf_len(&data),
                                     got));
        assert_memory_equal(got, buf_data(&mac), sizeof(got));
        assert_ok(crypto_hmac_sha256_verify(buf_data(&key), buf_len(&key), buf_data(&data),
                                            buf_len(&data), buf_data(&mac)));
        /* A one-bit change in the MAC, the data or the key is refused. */
        got[31] ^= 1;
        assert_err(crypto_hmac_sha256_verify(buf_data(&key), buf_len(&key), buf_data(&data),
                                             buf_len(&data), got),
                   ERR_AUTH);
        if (buf_len(&data) > 0) {
            assert_err(crypto_hmac_sha256_verify(buf_data(&key), buf_len(&key), buf_data(&data),
                                                 buf_len(&data) - 1, buf_data(&mac)),
                       ERR_AUTH);
        }
        assert_err(crypto_hmac_sha256_verify(buf_data(&key), buf_len(&key) - 1, buf_data(&data),
                                             buf_len(&data), buf_data(&mac)),
                   ERR_AUTH);
        buf_free(&key);
        buf_free(&data);
        buf_free(&mac);
    }
}

static void test_hkdf_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(hkdf_vectors); i++) {
        const struct hkdf_vector *v = &hkdf_vectors[i];
        struct buf ikm, salt, info, prk, okm;
        uint8_t got_prk[CRYPTO_SHA256_LEN], got[255];
        test_hex(&ikm, v->ikm);
        test_hex(&salt, v->salt);
        test_hex(&info, v->info);
        test_hex(&prk, v->prk);
        test_hex(&okm, v->okm);
        assert_true(buf_len(&okm) <= sizeof(got));
        assert_ok(crypto_hkdf_sha256_extract(buf_data(&salt), buf_len(&salt), buf_data(&ikm),
                                             buf_len(&ikm), got_prk));
        assert_memory_equal(got_prk, buf_data(&prk), sizeof(got_prk));
        assert_ok(crypto_hkdf_sha256(buf_data(&salt), buf_len(&salt), buf_data(&ikm), buf_len(&ikm),
                                     buf_data(&info), buf_len(&info), got, buf_len(&okm)));
        assert_memory_equal(got, buf_data(&okm), buf_len(&okm));
        buf_free(&ikm);
        buf_free(&salt);
        buf_free(&info);
        buf_free(&prk);
        buf_free(&okm);
    }
    /* L above 255 * HashLen, or zero, is refused (RFC 5869 §2.3). */
    uint8_t big[255 * 32 + 1];
    assert_err(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, big, sizeof(big)), ERR_INVALID_ARG);
    assert_err(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, big, 0), ERR_INVALID_ARG);
    assert_ok(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, big, sizeof(big) - 1));
}

static void test_pbkdf2_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ITEMS(pbkdf2_vectors); i++) {
        const struct pbkdf2_vector *v = &pbkdf2_vectors[i];
        struct buf dk;
        uint8_t got[128];
        test_hex(&dk, v->dk);
        assert_true(buf_len(&dk) <= sizeof(got));
        assert_ok(crypto_pbkdf2_sha256(v->password, strlen(v->password), v->salt, strlen(v->salt),
                                       v->iterations, got, buf_len(&dk)));
        assert_memory_equal(got, buf_data(&dk), buf_len(&dk));
        buf_free(&dk);
    }
    uint8_t out[32];
    assert_err(crypto_pbkdf2_sha256("p", 1, "s", 1, 0, out, sizeof(out)), ERR_INVALID_ARG);
    assert_err(crypto_pbkdf2_sha256("p", 1, "s", 1, 1, out, 0), ERR_INVALID_ARG);
}

static void test_random(void **state)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    (void)state;
    assert_ok(crypto_random(a, sizeof(a)));
    assert_ok(crypto_random_key(b, sizeof(b)));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_published_vectors),
        cmocka_unit_test(test_gcm_tampering_is_detected),
        cmocka_unit_test(test_seal_open_round_trip_and_refusals),
        cmocka_unit_test(test_kwp_published_vectors),
        cmocka_unit_test(test_kwp_refusals),
        cmocka_unit_test(test_kwp_failure_stays_inside_the_output),
        cmocka_unit_test(test_input_inside_the_output_is_refused),
        cmocka_unit_test(test_xts_published_vectors),
        cmocka_unit_test(test_xts_sectors_are_independent_and_numbered),
        cmocka_unit_test(test_sha256_published_vectors),
        cmocka_unit_test(test_hmac_published_vectors),
        cmocka_unit_test(test_hkdf_published_vectors),
        cmocka_unit_test(test_pbkdf2_published_vectors),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
