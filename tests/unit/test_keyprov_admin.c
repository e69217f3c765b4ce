/*
 * Tests of key provider administration (src/keyprov/admin.c) and of the
 * certificates it makes (src/kms/pki_gen.c):
 *
 *  - pki_gen: a self-signed certificate that OpenSSL's own path validation
 *    accepts as its own trust anchor for a TLS client (how vmseal-kms trusts
 *    it, from client_ca); a CSR that vmseal-kms's pki_sign_csr signs; strict
 *    reading of uploaded PEM texts (garbage, a key among certificates, a
 *    damaged block, an encrypted key); fingerprints as people write them;
 *  - a standard provider created with servers only, not configured until
 *    trust goes both ways; servers added and removed (the last refused);
 *    trust by CA or by a pinned certificate whose confirmed fingerprint
 *    must match; the client identity made self-signed, from a CSR (a
 *    certificate signed for another key refused), or uploaded with its key;
 *    what of it is on disk (no key in clear); persistence across reopen and
 *    the providers.json written before trust existed;
 *  - a server's certificate fetched from a TLS server run here (one that
 *    demands a client certificate, as a KMS does), and pinning it;
 *  - health: not configured, and a closed port reported unreachable fast;
 *  - removing a provider: the default is refused while others exist, the
 *    KEK cache and the files go, a native provider's destroyed-keys list
 *    stays, and a namesake added later starts clean.
 *
 * KMIP against a real server (health "ok", KEKs through a pinned trust) is
 * in tests/integration/test_kp_admin.py.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "keyprov/keyprov.h"
#include "keyprov/keyprov_internal.h"
#include "kms/pki.h"
#include "kms/pki_gen.h"

static char dir[64]; /* the test's scratch directory */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-kpadmin-XXXXXX");
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

static void path_in(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", dir, rel);
}

static bool exists(const char *rel)
{
    char path[256];
    struct stat st;
    path_in(path, sizeof(path), rel);
    return stat(path, &st) == 0;
}

static struct keyprov *open_kp(void)
{
    char data[256];
    struct keyprov *kp = NULL;
    path_in(data, sizeof(data), "data");
    assert_ok(keyprov_open(data, &kp));
    return kp;
}

static const char *const one_server[] = {"127.0.0.1:1"};

/* A self-signed certificate and its key (secret), as NUL-terminated text. */
static void make_self_signed(const char *cn, struct buf *cert, struct buf *key)
{
    assert_ok(buf_alloc(cert, 0, 65536));
    assert_ok(buf_alloc_secret(key, 0, 65536));
    assert_ok(pki_self_signed(cn, NULL, 0, 30, cert, key));
    assert_ok(buf_write_u8(cert, 0));
    assert_ok(buf_write_u8(key, 0));
}

static X509 *read_cert(const struct buf *pem)
{
    BIO *bio = BIO_new_mem_buf(buf_data(pem), (int)buf_len(pem));
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

static struct keyprov_info info_of(struct keyprov *kp, const char *name)
{
    struct keyprov_info info;
    assert_ok(keyprov_get_info(kp, name, &info));
    return info;
}

/* --- pki_gen --- */

static void test_self_signed_is_its_own_anchor(void **state)
{
    (void)state;
    struct buf cert, key, plain;
    const char *sans[] = {"kms.example.test", "192.0.2.7", "2001:db8::1"};
    char cn[PKI_NAME_MAX + 1];

    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_ok(buf_alloc_secret(&key, 0, 65536));
    assert_ok(pki_self_signed("vmseal-host1", sans, 3, 825, &cert, &key));
    X509 *x = read_cert(&cert);

    /* Identity, profile and names. */
    assert_ok(pki_cert_identity(x, cn, sizeof(cn)));
    assert_string_equal(cn, "vmseal-host1");
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_ext_by_NID(x, NID_key_usage, -1), -1);
    assert_true((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0);
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 3);
    GENERAL_NAMES_free(names);
    assert_int_equal(X509_check_host(x, "kms.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "2001:db8::1", 0), 1);

    /* OpenSSL's path validation takes it as its own trust anchor for a TLS
     * client: what a KMS does with it in its client CA file. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, x), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        print_error("verify: %s\n", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    assert_int_equal(ok, 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    /* The key is the certificate's, and PKCS#8. */
    assert_ok(pki_pem_key_matches((const char *)buf_data(&cert), buf_len(&cert),
                                  (const char *)buf_data(&key), buf_len(&key)));
    assert_non_null(memmem(buf_data(&key), buf_len(&key), "BEGIN PRIVATE KEY", 17));

    /* A key never goes to ordinary memory. */
    assert_ok(buf_alloc(&plain, 0, 65536));
    assert_err(pki_self_signed("x", NULL, 0, 30, &cert, &plain), ERR_INVALID_ARG);
    assert_err(pki_make_csr("x", &cert, &plain), ERR_INVALID_ARG);
    buf_free(&plain);
    X509_free(x);
    buf_free(&cert);
    buf_free(&key);
}

static void test_self_signed_bad_input_appends_nothing(void **state)
{
    (void)state;
    struct buf cert, key;
    const char *bad_san[] = {"not a name!"};
    char long_cn[80];

    memset(long_cn, 'a', sizeof(long_cn) - 1);
    long_cn[sizeof(long_cn) - 1] = '\0';
    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_ok(buf_alloc_secret(&key, 0, 65536));
    assert_err(pki_self_signed("", NULL, 0, 30, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_self_signed(long_cn, NULL, 0, 30, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_self_signed("a\nb", NULL, 0, 30, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_self_signed("ok", bad_san, 1, 30, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_self_signed("ok", NULL, 0, 0, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_self_signed("ok", NULL, 0, PKI_CA_DAYS + 1, &cert, &key), ERR_INVALID_ARG);
    assert_err(pki_make_csr("", &cert, &key), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&cert), 0);
    assert_int_equal(buf_len(&key), 0);
    buf_free(&cert);
    buf_free(&key);
}

static void test_csr_is_signed_by_the_kms_ca(void **state)
{
    (void)state;
    struct buf csr, key, signed_cert, other_cert, other_key;
    char pki[256];
    struct pki_cert_summary s;

    path_in(pki, sizeof(pki), "pki");
    assert_ok(pki_init(pki, "localhost"));
    assert_ok(buf_alloc(&csr, 0, 65536));
    assert_ok(buf_alloc_secret(&key, 0, 65536));
    assert_ok(pki_make_csr("vmseal-host1", &csr, &key));

    BIO *bio = BIO_new_mem_buf(buf_data(&csr), (int)buf_len(&csr));
    X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    X509_REQ_free(req);

    /* vmseal-kms signs it; the certificate is for our key and no other. */
    assert_ok(buf_alloc(&signed_cert, 0, 65536));
    assert_ok(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &signed_cert));
    assert_ok(pki_pem_key_matches((const char *)buf_data(&signed_cert), buf_len(&signed_cert),
                                  (const char *)buf_data(&key), buf_len(&key)));
    assert_ok(pki_pem_summary((const char *)buf_data(&signed_cert), buf_len(&signed_cert), &s));
    assert_string_equal(s.subject, "CN=vmseal-host1");
    assert_string_equal(s.issuer, "CN=" PKI_CA_COMMON_NAME);
    assert_false(s.self_issued);
    assert_int_equal(strlen(s.not_after), 20);
    assert_true(s.not_after_unix > (int64_t)time(NULL));

    make_self_signed("other", &other_cert, &other_key);
    assert_err(pki_pem_key_matches((const char *)buf_data(&signed_cert), buf_len(&signed_cert),
                                   (const char *)buf_data(&other_key),
                                   buf_len(&other_key) - 1),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "not the certificate's"));
    buf_free(&csr);
    buf_free(&key);
    buf_free(&signed_cert);
    buf_free(&other_cert);
    buf_free(&other_key);
}

static void test_fingerprints(void **state)
{
    (void)state;
    struct buf cert, key;
    char fp[PKI_FINGERPRINT_SIZE], parsed[PKI_FINGERPRINT_SIZE], colons[200];
    uint8_t digest[CRYPTO_SHA256_LEN];
    unsigned char *der = NULL;

    make_self_signed("fp", &cert, &key);
    X509 *x = read_cert(&cert);
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    assert_ok(crypto_sha256(der, (size_t)len, digest));
    OPENSSL_free(der);
    assert_ok(pki_pem_fingerprint((const char *)buf_data(&cert), buf_len(&cert) - 1, fp));
    for (size_t i = 0; i < sizeof(digest); i++) {
        char two[3];
        snprintf(two, sizeof(two), "%02x", digest[i]);
        assert_memory_equal(fp + 2 * i, two, 2);
    }

    /* As openssl x509 -fingerprint prints it, and in upper case. */
    size_t n = (size_t)snprintf(colons, sizeof(colons), "sha256 Fingerprint=");
    for (size_t i = 0; i < sizeof(digest); i++)
        n += (size_t)snprintf(colons + n, sizeof(colons) - n, i ? ":%02X" : "%02X", digest[i]);
    assert_ok(pki_fingerprint_parse(colons, parsed));
    assert_string_equal(parsed, fp);
    assert_ok(pki_fingerprint_parse(fp, parsed));
    assert_string_equal(parsed, fp);

    assert_err(pki_fingerprint_parse("", parsed), ERR_INVALID_ARG);
    assert_err(pki_fingerprint_parse("abcd", parsed), ERR_INVALID_ARG);
    colons[strlen(colons) - 1] = 'g';
    assert_err(pki_fingerprint_parse(colons, parsed), ERR_INVALID_ARG);
    char longer[80];
    snprintf(longer, sizeof(longer), "%s00", fp);
    assert_err(pki_fingerprint_parse(longer, parsed), ERR_INVALID_ARG);
    snprintf(longer, sizeof(longer), "%s:", fp);
    assert_err(pki_fingerprint_parse(longer, parsed), ERR_INVALID_ARG);
    X509_free(x);
    buf_free(&cert);
    buf_free(&key);
}

static void test_pem_texts_are_read_strictly(void **state)
{
    (void)state;
    struct buf a, ak, b, bk, text, out, keyout;
    size_t count = 0;

    make_self_signed("a", &a, &ak);
    make_self_signed("b", &b, &bk);
    assert_ok(buf_alloc(&text, 0, 1 << 20));
    assert_ok(buf_alloc(&out, 0, 1 << 20));

    /* Two certificates with text around them: kept, and only they. */
    assert_ok(buf_write_bytes(&text, "subject=CN = a\n", 15));
    assert_ok(buf_write_bytes(&text, buf_data(&a), buf_len(&a) - 1));
    assert_ok(buf_write_bytes(&text, "junk between\n", 13));
    assert_ok(buf_write_bytes(&text, buf_data(&b), buf_len(&b) - 1));
    assert_ok(pki_pem_certs_canonical((const char *)buf_data(&text), buf_len(&text), 8, &out,
                                      &count));
    assert_int_equal(count, 2);
    assert_int_equal(buf_len(&out), buf_len(&a) - 1 + buf_len(&b) - 1);
    assert_null(memmem(buf_data(&out), buf_len(&out), "junk", 4));
    buf_reset(&out);
    assert_err(pki_pem_certs_canonical((const char *)buf_data(&text), buf_len(&text), 1, &out,
                                       &count),
               ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), 0);

    /* A private key pasted among certificates is refused, not dropped. */
    assert_ok(buf_write_bytes(&text, buf_data(&ak), buf_len(&ak) - 1));
    assert_err(pki_pem_certs_canonical((const char *)buf_data(&text), buf_len(&text), 8, &out,
                                       NULL),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "private key"));
    assert_int_equal(buf_len(&out), 0);

    /* Garbage, nothing, a damaged block, a wrong kind of block. */
    static const char *const bad[] = {
        "hello",
        "",
        "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_err(pki_pem_certs_canonical(bad[i], strlen(bad[i]), 8, &out, NULL),
                   ERR_INVALID_ARG);
        assert_err(pki_pem_fingerprint(bad[i], strlen(bad[i]), (char[65]){0}), ERR_INVALID_ARG);
    }
    assert_int_equal(buf_len(&out), 0);

    /* A certificate with a line of its base64 left out: its DER does not
     * parse. */
    buf_reset(&text);
    const char *pem = (const char *)buf_data(&a);
    const char *line2 = strchr(strchr(pem, '\n') + 1, '\n') + 1;
    const char *line3 = strchr(line2, '\n') + 1;
    assert_ok(buf_write_bytes(&text, pem, (size_t)(line2 - pem)));
    assert_ok(buf_write_bytes(&text, line3, strlen(line3)));
    assert_err(pki_pem_certs_canonical((const char *)buf_data(&text), buf_len(&text), 8, &out,
                                       NULL),
               ERR_INVALID_ARG);

    /* Keys: re-encoded in secret memory; an encrypted one refused; a
     * certificate is no key. */
    assert_ok(buf_alloc_secret(&keyout, 0, 65536));
    assert_ok(pki_pem_key_canonical((const char *)buf_data(&ak), buf_len(&ak) - 1, &keyout));
    assert_int_equal(buf_len(&keyout), buf_len(&ak) - 1);
    buf_reset(&keyout);
    assert_err(pki_pem_key_canonical((const char *)buf_data(&a), buf_len(&a) - 1, &keyout),
               ERR_INVALID_ARG);
    {
        BIO *in = BIO_new_mem_buf(buf_data(&ak), (int)buf_len(&ak) - 1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
        BIO *enc = BIO_new(BIO_s_mem());
        char *p;
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(enc, k, EVP_aes_256_cbc(), "pw", 2, NULL,
                                                       NULL),
                         1);
        long n = BIO_get_mem_data(enc, &p);
        assert_err(pki_pem_key_canonical(p, (size_t)n, &keyout), ERR_INVALID_ARG);
        BIO_free(enc);
        BIO_free(in);
        EVP_PKEY_free(k);
    }
    assert_int_equal(buf_len(&keyout), 0);
    /* Larger than any PEM we take. */
    assert_err(pki_pem_certs_canonical("x", PKI_GEN_PEM_MAX + 1, 8, &out, NULL), ERR_TOO_LARGE);
    buf_free(&keyout);
    buf_free(&a);
    buf_free(&ak);
    buf_free(&b);
    buf_free(&bk);
    buf_free(&text);
    buf_free(&out);
}

/* --- a standard provider, step by step --- */

static void test_servers_only_is_not_configured(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    const char *servers[] = {"kms1.example:5696", "[fd00::5]:5696"};
    const char *dup[] = {"kms1.example:5696", "KMS1.example:5696"};
    struct keyprov_ref ref;
    const struct keyprov_kek_purpose purpose = {"vm1", NULL, NULL};

    assert_err(keyprov_add_standard_servers(kp, "kms", dup, 2), ERR_INVALID_ARG);
    assert_err(keyprov_add_standard_servers(kp, "kms", servers, 0), ERR_INVALID_ARG);
    assert_err(keyprov_add_standard_servers(kp, "-kms", servers, 2), ERR_INVALID_ARG);
    assert_ok(keyprov_add_standard_servers(kp, "kms", servers, 2));
    assert_err(keyprov_add_standard_servers(kp, "kms", servers, 2), ERR_EXISTS);

    struct keyprov_info info = info_of(kp, "kms");
    assert_int_equal(info.type, KEYPROV_STANDARD);
    assert_false(info.configured);
    assert_int_equal(info.trust, KEYPROV_TRUST_NONE);
    assert_false(info.has_client_cert);
    assert_true(info.is_default);
    assert_int_equal(info.server_count, 2);

    /* Not configured: no key, and a message that says what is missing. */
    assert_err(keyprov_new_kek(kp, "kms", &purpose, &ref), ERR_PROVIDER);
    assert_non_null(strstr(err_last()->detail, "not configured"));

    /* providers.json says so, and is read back so. */
    keyprov_close(&kp);
    char path[256];
    struct buf b;
    path_in(path, sizeof(path), "data/providers.json");
    assert_ok(buf_alloc(&b, 0, 1 << 20));
    assert_ok(file_read_all(path, 1 << 20, &b));
    assert_ok(buf_write_u8(&b, 0));
    assert_non_null(strstr((char *)buf_data(&b), "\"trust\": \"none\""));
    buf_free(&b);
    kp = open_kp();
    info = info_of(kp, "kms");
    assert_false(info.configured);
    assert_int_equal(info.trust, KEYPROV_TRUST_NONE);
    assert_string_equal(info.servers[1], "[fd00::5]:5696");
    keyprov_close(&kp);
}

static void test_servers_added_and_removed(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    const char *servers[] = {"kms1.example:5696"};

    assert_ok(keyprov_add_standard_servers(kp, "kms", servers, 1));
    assert_ok(keyprov_add_native(kp, "nkp"));
    assert_err(keyprov_server_add(kp, "nkp", "h:1"), ERR_INVALID_ARG);
    assert_err(keyprov_server_add(kp, "nope", "h:1"), ERR_NOT_FOUND);
    assert_err(keyprov_server_add(kp, "kms", "no port"), ERR_INVALID_ARG);
    assert_err(keyprov_server_add(kp, "kms", "h:70000"), ERR_INVALID_ARG);
    assert_err(keyprov_server_add(kp, "kms", "KMS1.EXAMPLE:5696"), ERR_EXISTS);
    assert_ok(keyprov_server_add(kp, "kms", "[fd00::5]:5696"));
    for (int i = 3; i <= KEYPROV_MAX_SERVERS; i++) {
        char s[32];
        snprintf(s, sizeof(s), "kms%d.example:5696", i);
        assert_ok(keyprov_server_add(kp, "kms", s));
    }
    assert_err(keyprov_server_add(kp, "kms", "one-more:5696"), ERR_TOO_LARGE);
    assert_int_equal(info_of(kp, "kms").server_count, KEYPROV_MAX_SERVERS);

    /* Removed by any spelling: an IPv6 address without its brackets (the
     * last ':' is the port's), a host name in another case. */
    assert_err(keyprov_server_remove(kp, "kms", "fd00::5:5697"), ERR_NOT_FOUND);
    assert_ok(keyprov_server_remove(kp, "kms", "fd00::5:5696"));
    assert_ok(keyprov_server_remove(kp, "kms", "KMS3.example:5696"));
    keyprov_close(&kp);

    kp = open_kp();
    struct keyprov_info info = info_of(kp, "kms");
    assert_int_equal(info.server_count, KEYPROV_MAX_SERVERS - 2);
    assert_string_equal(info.servers[0], "kms1.example:5696");
    assert_string_equal(info.servers[1], "kms4.example:5696");
    while (info_of(kp, "kms").server_count > 1)
        assert_ok(keyprov_server_remove(kp, "kms", info_of(kp, "kms").servers[1]));
    /* The last one stays. */
    assert_err(keyprov_server_remove(kp, "kms", "kms1.example:5696"), ERR_PERM);
    assert_non_null(strstr(err_last()->detail, "last server"));
    assert_int_equal(info_of(kp, "kms").server_count, 1);
    keyprov_close(&kp);
}

/* A PKI (CA, and its signing of CSRs) for the tests. */
static void test_pki(char *out, size_t n)
{
    path_in(out, n, "pki");
    struct stat st;
    if (stat(out, &st) != 0)
        assert_ok(pki_init(out, "localhost"));
}

static void read_text(const char *path, struct buf *b)
{
    assert_ok(buf_alloc(b, 0, 1 << 20));
    assert_ok(file_read_all(path, 1 << 20, b));
    assert_ok(buf_write_u8(b, 0));
}

static void test_trust_by_ca_and_by_pin(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    char pki[128], path[256], fp[PKI_FINGERPRINT_SIZE];
    struct buf ca, server, leaf_and_ca, other, other_key, file;

    test_pki(pki, sizeof(pki));
    snprintf(path, sizeof(path), "%s/ca.crt", pki);
    read_text(path, &ca);
    snprintf(path, sizeof(path), "%s/server.crt", pki);
    read_text(path, &server);
    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    assert_ok(keyprov_add_native(kp, "nkp"));

    /* Garbage is refused and changes nothing. */
    assert_err(keyprov_trust_ca(kp, "kms", "garbage"), ERR_INVALID_ARG);
    assert_err(keyprov_trust_ca(kp, "nkp", (const char *)buf_data(&ca)), ERR_INVALID_ARG);
    assert_int_equal(info_of(kp, "kms").trust, KEYPROV_TRUST_NONE);
    assert_false(exists("data/providers/kms/ca.pem"));

    assert_ok(keyprov_trust_ca(kp, "kms", (const char *)buf_data(&ca)));
    assert_int_equal(info_of(kp, "kms").trust, KEYPROV_TRUST_CA);
    path_in(path, sizeof(path), "data/providers/kms/ca.pem");
    read_text(path, &file);
    assert_string_equal((const char *)buf_data(&file), (const char *)buf_data(&ca));
    buf_free(&file);

    /* Pinning: the fingerprint the operator confirmed must be the
     * certificate's; a chain may follow the leaf, only the leaf is kept. */
    assert_ok(pki_pem_fingerprint((const char *)buf_data(&server), buf_len(&server) - 1, fp));
    make_self_signed("other", &other, &other_key);
    char other_fp[PKI_FINGERPRINT_SIZE];
    assert_ok(pki_pem_fingerprint((const char *)buf_data(&other), buf_len(&other) - 1, other_fp));
    assert_err(keyprov_trust_pinned(kp, "kms", (const char *)buf_data(&server), other_fp),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "is not the certificate's"));
    assert_err(keyprov_trust_pinned(kp, "kms", (const char *)buf_data(&server), "12:34"),
               ERR_INVALID_ARG);
    assert_err(keyprov_trust_pinned(kp, "kms", "nonsense", fp), ERR_INVALID_ARG);
    assert_int_equal(info_of(kp, "kms").trust, KEYPROV_TRUST_CA); /* unchanged */

    assert_ok(buf_alloc(&leaf_and_ca, 0, 1 << 20));
    assert_ok(buf_write_bytes(&leaf_and_ca, buf_data(&server), buf_len(&server) - 1));
    assert_ok(buf_write_bytes(&leaf_and_ca, buf_data(&ca), buf_len(&ca)));
    char upper[65];
    for (size_t i = 0; i < 65; i++)
        upper[i] = (fp[i] >= 'a' && fp[i] <= 'f') ? (char)(fp[i] - 32) : fp[i];
    assert_ok(keyprov_trust_pinned(kp, "kms", (const char *)buf_data(&leaf_and_ca), upper));
    struct keyprov_info info = info_of(kp, "kms");
    assert_int_equal(info.trust, KEYPROV_TRUST_PINNED);
    assert_string_equal(info.pinned_sha256, fp);
    read_text(path, &file);
    assert_string_equal((const char *)buf_data(&file), (const char *)buf_data(&server));
    buf_free(&file);

    keyprov_close(&kp);
    kp = open_kp();
    info = info_of(kp, "kms");
    assert_int_equal(info.trust, KEYPROV_TRUST_PINNED);
    assert_string_equal(info.pinned_sha256, fp);
    assert_false(info.configured); /* no client certificate yet */
    keyprov_close(&kp);
    buf_free(&ca);
    buf_free(&server);
    buf_free(&leaf_and_ca);
    buf_free(&other);
    buf_free(&other_key);
}

/* Whether any file under the data directory holds `needle`. */
static const void *scan_needle;
static size_t scan_len;
static bool scan_found;
static int scan_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || st->st_size > (1 << 20))
        return 0;
    struct buf b;
    if (!is_ok(buf_alloc(&b, 0, 1 << 20)) || !is_ok(file_read_all(path, 1 << 20, &b))) {
        err_clear();
        buf_free(&b);
        return 0;
    }
    if (memmem(buf_data(&b), buf_len(&b), scan_needle, scan_len) != NULL)
        scan_found = true;
    buf_free(&b);
    return 0;
}

static bool in_any_file(const void *needle, size_t len)
{
    char data[256];
    path_in(data, sizeof(data), "data");
    scan_needle = needle;
    scan_len = len;
    scan_found = false;
    assert_int_equal(nftw(data, scan_entry, 16, FTW_PHYS), 0);
    return scan_found;
}

/* The base64 body of a PEM key: what would show if it were stored in clear. */
static void key_body(const struct buf *key, char *out, size_t n)
{
    const char *p = strchr((const char *)buf_data(key), '\n') + 1;
    snprintf(out, n, "%.40s", p);
}

static void test_client_self_signed(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf cert;
    char pki[128], path[256], fp[PKI_FINGERPRINT_SIZE];
    struct buf ca;

    test_pki(pki, sizeof(pki));
    snprintf(path, sizeof(path), "%s/ca.crt", pki);
    read_text(path, &ca);
    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_err(keyprov_client_self_signed(kp, "kms", "bad\ncn", &cert), ERR_INVALID_ARG);
    assert_ok(keyprov_client_self_signed(kp, "kms", NULL, &cert));
    assert_int_equal(buf_len(&cert) > 0, 1);
    assert_ok(pki_pem_fingerprint((const char *)buf_data(&cert), buf_len(&cert), fp));

    struct keyprov_info info = info_of(kp, "kms");
    assert_true(info.has_client_cert);
    assert_false(info.configured); /* trust one way only */
    assert_string_equal(info.client_cert.sha256, fp);
    assert_non_null(strstr(info.client_cert.subject, "CN=vmseal-"));
    assert_string_equal(info.client_cert.subject, info.client_cert.issuer);

    assert_ok(keyprov_trust_ca(kp, "kms", (const char *)buf_data(&ca)));
    assert_true(info_of(kp, "kms").configured);

    /* On disk: the certificate, and the key only sealed. */
    assert_true(exists("data/providers/kms/cert.pem"));
    assert_true(exists("data/providers/kms/key.sealed"));
    path_in(path, sizeof(path), "data/providers/kms/key.sealed");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_false(in_any_file("PRIVATE KEY", 11));

    /* The connection's key is the certificate's (loaded as a connection
     * would load it). */
    struct keyprov_provider *p;
    struct keyprov_tls_config t;
    assert_ok(keyprov_find(kp, "kms", &p));
    assert_ok(keyprov_standard_load_tls(kp, p, &t));
    assert_ok(pki_pem_key_matches((const char *)buf_data(&t.cert), buf_len(&t.cert) - 1,
                                  (const char *)buf_data(&t.key), buf_len(&t.key) - 1));
    char body[48];
    key_body(&t.key, body, sizeof(body));
    assert_false(in_any_file(body, strlen(body)));
    keyprov_tls_config_free(&t);

    /* A custom CN, and a reopen keeps all of it. */
    buf_reset(&cert);
    assert_ok(keyprov_client_self_signed(kp, "kms", "esx-01.example", &cert));
    keyprov_close(&kp);
    kp = open_kp();
    info = info_of(kp, "kms");
    assert_true(info.configured);
    assert_string_equal(info.client_cert.subject, "CN=esx-01.example");
    keyprov_close(&kp);
    buf_free(&cert);
    buf_free(&ca);
}

static void test_client_from_a_csr(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf csr, csr2, signed1, signed2, other, other_key;
    char pki[256];

    test_pki(pki, sizeof(pki));
    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    assert_ok(buf_alloc(&csr, 0, 65536));
    assert_ok(buf_alloc(&csr2, 0, 65536));
    assert_ok(buf_alloc(&signed1, 0, 65536));
    assert_ok(buf_alloc(&signed2, 0, 65536));

    /* No request yet and no key: nothing to match a certificate with. */
    make_self_signed("other", &other, &other_key);
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&other), NULL),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "no pending certificate request"));

    assert_ok(keyprov_client_csr(kp, "kms", "vmseal-csr", &csr));
    assert_true(info_of(kp, "kms").csr_pending);
    assert_false(info_of(kp, "kms").has_client_cert);
    assert_true(exists("data/providers/kms/csr.pem"));
    assert_true(exists("data/providers/kms/csr-key.sealed"));
    assert_false(in_any_file("PRIVATE KEY", 11));
    assert_ok(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &signed1));
    assert_ok(buf_write_u8(&signed1, 0));

    /* A second request replaces the first: the first's certificate is
     * then for another key, and refused with a message that says so. */
    assert_ok(keyprov_client_csr(kp, "kms", "vmseal-csr", &csr2));
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&signed1), NULL),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "pending request's key"));
    assert_false(info_of(kp, "kms").has_client_cert);
    /* So is any certificate for another key, and garbage. */
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&other), NULL),
               ERR_INVALID_ARG);
    assert_err(keyprov_client_certificate(kp, "kms", "-----BEGIN CERTIFICATE-----\nxx", NULL),
               ERR_INVALID_ARG);

    assert_ok(pki_sign_csr(pki, buf_data(&csr2), buf_len(&csr2), &signed2));
    assert_ok(buf_write_u8(&signed2, 0));
    assert_ok(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&signed2), NULL));
    struct keyprov_info info = info_of(kp, "kms");
    assert_true(info.has_client_cert);
    assert_false(info.csr_pending);
    assert_string_equal(info.client_cert.subject, "CN=vmseal-csr");
    assert_string_equal(info.client_cert.issuer, "CN=" PKI_CA_COMMON_NAME);
    assert_false(exists("data/providers/kms/csr-key.sealed"));
    assert_false(exists("data/providers/kms/csr.pem"));
    /* Uploading it again: the request is gone. */
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&signed2), NULL),
               ERR_INVALID_ARG);
    keyprov_close(&kp);
    buf_free(&csr);
    buf_free(&csr2);
    buf_free(&signed1);
    buf_free(&signed2);
    buf_free(&other);
    buf_free(&other_key);
}

static void test_client_certificate_and_key_uploaded(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf a, ak, b, bk, csr;

    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    make_self_signed("a", &a, &ak);
    make_self_signed("b", &b, &bk);
    assert_ok(buf_alloc(&csr, 0, 65536));
    assert_ok(keyprov_client_csr(kp, "kms", NULL, &csr));

    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&a),
                                          (const char *)buf_data(&bk)),
               ERR_INVALID_ARG);
    assert_non_null(strstr(err_last()->detail, "not the certificate's"));
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&a), "not a key"),
               ERR_INVALID_ARG);
    assert_err(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&ak),
                                          (const char *)buf_data(&ak)),
               ERR_INVALID_ARG);
    assert_false(info_of(kp, "kms").has_client_cert);
    assert_true(info_of(kp, "kms").csr_pending);

    assert_ok(keyprov_client_certificate(kp, "kms", (const char *)buf_data(&a),
                                         (const char *)buf_data(&ak)));
    struct keyprov_info info = info_of(kp, "kms");
    assert_true(info.has_client_cert);
    assert_false(info.csr_pending); /* superseded */
    assert_string_equal(info.client_cert.subject, "CN=a");
    char body[48];
    key_body(&ak, body, sizeof(body));
    assert_false(in_any_file(body, strlen(body)));
    keyprov_close(&kp);
    buf_free(&a);
    buf_free(&ak);
    buf_free(&b);
    buf_free(&bk);
    buf_free(&csr);
}

/* --- a TLS server here: fetching its certificate, and health --- */

struct tls_server {
    int listen_fd;
    unsigned short port;
    SSL_CTX *ctx;
    pthread_t thread;
    int accepts; /* how many connections to serve */
};

static void *tls_server_run(void *arg)
{
    struct tls_server *s = arg;
    for (int i = 0; i < s->accepts; i++) {
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        (void)SSL_accept(ssl); /* fails: the client sends no certificate */
        SSL_free(ssl);
        close(fd);
    }
    ERR_clear_error();
    return NULL;
}

/* A server presenting cert/key and, as a KMS does, demanding a client
 * certificate; max_tls12 forces TLS 1.2. */
static void tls_server_start(struct tls_server *s, const struct buf *cert, const struct buf *key,
                             bool max_tls12, int accepts)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    BIO *bio;

    s->ctx = SSL_CTX_new(TLS_server_method());
    if (max_tls12)
        SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION);
    bio = BIO_new_mem_buf(buf_data(cert), -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = BIO_new_mem_buf(buf_data(key), -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 4), 0);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    s->accepts = accepts;
    assert_int_equal(pthread_create(&s->thread, NULL, tls_server_run, s), 0);
}

static void tls_server_stop(struct tls_server *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    SSL_CTX_free(s->ctx);
}

static void test_fetch_and_pin_a_server_certificate(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf cert, key;
    struct keyprov_server_cert sc;
    char fp[PKI_FINGERPRINT_SIZE], addr[64];
    const char *sans[] = {"127.0.0.1"};

    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_ok(buf_alloc_secret(&key, 0, 65536));
    assert_ok(pki_self_signed("kms.test", sans, 1, 30, &cert, &key));
    assert_ok(buf_write_u8(&cert, 0));
    assert_ok(buf_write_u8(&key, 0));
    assert_ok(pki_pem_fingerprint((const char *)buf_data(&cert), buf_len(&cert) - 1, fp));

    for (int tls12 = 0; tls12 <= 1; tls12++) {
        struct tls_server s;
        tls_server_start(&s, &cert, &key, tls12 == 1, 1);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.port);
        const char *servers[] = {"127.0.0.1:1", addr};
        if (tls12 == 0)
            assert_ok(keyprov_add_standard_servers(kp, "kms", servers, 2));
        else
            assert_ok(keyprov_server_add(kp, "kms", addr));
        /* Only the provider's servers. */
        assert_err(keyprov_fetch_server_cert(kp, "kms", "127.0.0.1:2", &sc), ERR_NOT_FOUND);
        assert_ok(keyprov_fetch_server_cert(kp, "kms", addr, &sc));
        tls_server_stop(&s);
        assert_string_equal(sc.address, addr);
        assert_string_equal(sc.leaf.sha256, fp);
        assert_string_equal(sc.leaf.subject, "CN=kms.test");
        assert_int_equal(sc.chain_count, 1);
        assert_int_equal(buf_len(&sc.chain_pem), buf_len(&cert) - 1);
        assert_memory_equal(buf_data(&sc.chain_pem), buf_data(&cert), buf_len(&cert) - 1);

        /* Pinned as fetched, with the fingerprint "confirmed". */
        char pem[4096];
        snprintf(pem, sizeof(pem), "%.*s", (int)buf_len(&sc.chain_pem),
                 (const char *)buf_data(&sc.chain_pem));
        assert_ok(keyprov_trust_pinned(kp, "kms", pem, sc.leaf.sha256));
        buf_free(&sc.chain_pem);
        if (tls12 == 1)
            assert_ok(keyprov_server_remove(kp, "kms", addr));
        else
            assert_ok(keyprov_server_remove(kp, "kms", addr));
    }
    assert_int_equal(info_of(kp, "kms").trust, KEYPROV_TRUST_PINNED);

    /* A closed port: an error naming the server, and quickly. */
    time_t t0 = time(NULL);
    assert_err(keyprov_fetch_server_cert(kp, "kms", NULL, &sc), ERR_PROVIDER);
    assert_non_null(strstr(err_last()->detail, "127.0.0.1:1"));
    assert_true(time(NULL) - t0 <= 2);
    keyprov_close(&kp);
    buf_free(&cert);
    buf_free(&key);
}

static void test_health(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct keyprov_health h[3];
    struct buf cert, ca;
    char pki[128], path[256];
    const char *two[] = {"127.0.0.1:1", "127.0.0.1:2"};
    const char *names[] = {"kms", "nkp", "gone"};

    test_pki(pki, sizeof(pki));
    snprintf(path, sizeof(path), "%s/ca.crt", pki);
    read_text(path, &ca);
    assert_ok(keyprov_add_standard_servers(kp, "kms", two, 2));
    assert_ok(keyprov_add_native(kp, "nkp"));

    /* Not configured: said so, and nothing is tried. */
    assert_ok(keyprov_health(kp, names, 3, h));
    assert_int_equal(h[0].server_count, 2);
    assert_int_equal(h[0].servers[0].status, KEYPROV_HEALTH_NOT_CONFIGURED);
    assert_string_equal(keyprov_health_status_name(h[0].servers[1].status), "not_configured");
    assert_non_null(strstr(h[0].servers[0].error, "not configured"));
    assert_int_equal(h[1].server_count, 0);
    assert_int_equal(h[2].server_count, 0);

    /* Configured, with every server's port closed: unreachable, at once,
     * both servers checked at the same time. */
    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_ok(keyprov_client_self_signed(kp, "kms", NULL, &cert));
    assert_ok(keyprov_trust_ca(kp, "kms", (const char *)buf_data(&ca)));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_ok(keyprov_health(kp, names, 1, h));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(h[0].servers[i].status, KEYPROV_HEALTH_UNREACHABLE);
        assert_string_equal(h[0].servers[i].address, two[i]);
        assert_int_equal(h[0].servers[i].version_count, 0);
        assert_true(h[0].servers[i].error[0] != '\0');
    }

    /* A TLS server that refuses us: a TLS error, not "unreachable". */
    struct buf scert, skey;
    struct tls_server s;
    char addr[64];
    make_self_signed("other-kms", &scert, &skey);
    tls_server_start(&s, &scert, &skey, true, 1);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", s.port);
    assert_ok(keyprov_server_add(kp, "kms", addr));
    assert_ok(keyprov_health(kp, names, 1, h));
    tls_server_stop(&s);
    assert_int_equal(h[0].server_count, 3);
    assert_int_equal(h[0].servers[2].status, KEYPROV_HEALTH_TLS_ERROR);
    assert_non_null(strstr(h[0].servers[2].error, "certificate"));
    keyprov_close(&kp);
    buf_free(&cert);
    buf_free(&ca);
    buf_free(&scert);
    buf_free(&skey);
}

/* --- removing a provider --- */

static void test_remove(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf backup, cert;
    const char pass[] = "a long enough passphrase";
    struct keyprov_ref ref, destroyed;
    const struct keyprov_kek_purpose purpose = {"vm1", NULL, NULL};

    assert_ok(keyprov_add_native(kp, "nkp")); /* the default */
    assert_ok(buf_alloc(&backup, 0, 4096));
    assert_ok(keyprov_backup(kp, "nkp", pass, strlen(pass), &backup));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &destroyed));
    assert_ok(keyprov_destroy_key(kp, &destroyed));
    assert_ok(keyprov_new_kek(kp, "nkp", &purpose, &ref));
    assert_true(keyprov_is_cached(kp, &ref));
    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    assert_ok(buf_alloc(&cert, 0, 65536));
    assert_ok(keyprov_client_self_signed(kp, "kms", NULL, &cert));

    assert_err(keyprov_remove(kp, "nope"), ERR_NOT_FOUND);
    /* The default goes last. */
    assert_err(keyprov_remove(kp, "nkp"), ERR_PERM);
    assert_non_null(strstr(err_last()->detail, "default"));
    assert_true(keyprov_is_cached(kp, &ref));

    assert_ok(keyprov_remove(kp, "kms"));
    assert_err(keyprov_get_info(kp, "kms", &(struct keyprov_info){0}), ERR_NOT_FOUND);
    assert_false(exists("data/providers/kms"));
    assert_ok(keyprov_remove(kp, "nkp"));
    assert_false(keyprov_is_cached(kp, &ref));
    assert_err(keyprov_fetch(kp, &ref), ERR_NOT_FOUND);
    assert_err(keyprov_get_default(kp, (char[KEYPROV_NAME_MAX]){0}), ERR_NOT_FOUND);
    assert_false(exists("data/providers/nkp/root.sealed"));
    assert_true(exists("data/providers/nkp/destroyed.json"));
    size_t count = 1;
    assert_ok(keyprov_list(kp, &(struct keyprov_info){0}, 0, &count));
    assert_int_equal(count, 0);

    /* A namesake starts clean: none of the removed one's identity. */
    assert_ok(keyprov_add_standard_servers(kp, "kms", one_server, 1));
    assert_false(info_of(kp, "kms").has_client_cert);
    assert_false(exists("data/providers/kms/cert.pem"));
    keyprov_close(&kp);

    /* Reopened: gone for good; restoring the native provider's backup
     * brings it back with its destroyed key still refused. */
    kp = open_kp();
    assert_err(keyprov_get_info(kp, "nkp", &(struct keyprov_info){0}), ERR_NOT_FOUND);
    assert_ok(keyprov_restore(kp, buf_data(&backup), buf_len(&backup), pass, strlen(pass), NULL,
                              NULL));
    assert_ok(keyprov_fetch(kp, &ref)); /* the live one */
    assert_err(keyprov_fetch(kp, &destroyed), ERR_KEY_STATE);
    keyprov_close(&kp);
    buf_free(&backup);
    buf_free(&cert);
}

/* --- providers.json --- */

static void write_file(const char *rel, const char *text, mode_t mode)
{
    char path[256];
    path_in(path, sizeof(path), rel);
    assert_ok(file_write_atomic(path, text, strlen(text), mode));
}

static void test_registry_before_trust_existed(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp(); /* makes host.key */
    struct buf cert, key;
    char pki[128], path[256];
    struct buf ca;

    test_pki(pki, sizeof(pki));
    snprintf(path, sizeof(path), "%s/ca.crt", pki);
    read_text(path, &ca);
    make_self_signed("old", &cert, &key);
    /* What keyprov_add_standard wrote before this file's features: no
     * "trust", and the three files. */
    path_in(path, sizeof(path), "data/providers/kms");
    assert_ok(file_mkdir(path, 0700));
    assert_ok(keyprov_standard_write_sealed(kp, "kms", KEYPROV_KEY_FILE,
                                            KEYPROV_PURPOSE_CLIENT_KEY, buf_data(&key),
                                            buf_len(&key) - 1));
    keyprov_close(&kp);
    write_file("data/providers/kms/ca.pem", (const char *)buf_data(&ca), 0644);
    write_file("data/providers/kms/cert.pem", (const char *)buf_data(&cert), 0644);
    write_file("data/providers.json",
               "{\"version\": 1, \"default\": \"kms\", \"providers\": [{\"name\": \"kms\", "
               "\"type\": \"standard\", \"servers\": [\"kms1:5696\"]}]}",
               0644);
    kp = open_kp();
    struct keyprov_info info = info_of(kp, "kms");
    assert_int_equal(info.trust, KEYPROV_TRUST_CA);
    assert_true(info.has_client_cert);
    assert_true(info.configured);
    assert_string_equal(info.client_cert.subject, "CN=old");
    keyprov_close(&kp);

    /* What the new fields may and may not say. */
    static const char *const bad[] = {
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"trust\": \"maybe\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"trust\": \"pinned\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"trust\": \"ca\", \"pinned_sha256\": "
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"trust\": \"pinned\", \"pinned_sha256\": \"ABCD\"}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"standard\", \"servers\": "
        "[\"h:1\"], \"trust\": 1}]}",
        "{\"version\": 1, \"providers\": [{\"name\": \"a\", \"type\": \"native\", \"id\": "
        "\"4c4c4544-0031-4410-8056-b4c04f4e3732\", \"backed_up\": true, \"trust\": \"ca\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        static struct keyprov_provider *slots[KEYPROV_MAX_PROVIDERS];
        struct keyprov k = {.providers = slots};
        assert_err(keyprov_registry_parse(&k, "providers.json", bad[i], strlen(bad[i])),
                   ERR_PROVIDER);
        for (size_t s = 0; s < k.provider_count; s++)
            keyprov_provider_free(&slots[s]);
    }
    buf_free(&cert);
    buf_free(&key);
    buf_free(&ca);
}

static void test_add_standard_refuses_garbage_before_any_network(void **state)
{
    (void)state;
    struct keyprov *kp = open_kp();
    struct buf a, ak, b, bk;

    make_self_signed("a", &a, &ak);
    make_self_signed("b", &b, &bk);
    assert_err(keyprov_add_standard(kp, "kms", one_server, 1, "junk", (const char *)buf_data(&a),
                                    (const char *)buf_data(&ak)),
               ERR_CRYPTO);
    assert_err(keyprov_add_standard(kp, "kms", one_server, 1, (const char *)buf_data(&a), "junk",
                                    (const char *)buf_data(&ak)),
               ERR_CRYPTO);
    assert_err(keyprov_add_standard(kp, "kms", one_server, 1, (const char *)buf_data(&a),
                                    (const char *)buf_data(&a), "junk"),
               ERR_CRYPTO);
    assert_err(keyprov_add_standard(kp, "kms", one_server, 1, (const char *)buf_data(&a),
                                    (const char *)buf_data(&a), (const char *)buf_data(&bk)),
               ERR_CRYPTO);
    /* Good PEMs, no server: nothing stored. */
    assert_err(keyprov_add_standard(kp, "kms", one_server, 1, (const char *)buf_data(&a),
                                    (const char *)buf_data(&a), (const char *)buf_data(&ak)),
               ERR_PROVIDER);
    assert_false(exists("data/providers/kms/cert.pem"));
    keyprov_close(&kp);
    buf_free(&a);
    buf_free(&ak);
    buf_free(&b);
    buf_free(&bk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_signed_is_its_own_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_signed_bad_input_appends_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_csr_is_signed_by_the_kms_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pem_texts_are_read_strictly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servers_only_is_not_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servers_added_and_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_by_ca_and_by_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_self_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_from_a_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_certificate_and_key_uploaded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_and_pin_a_server_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_before_trust_existed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_standard_refuses_garbage_before_any_network,
                                        setup, teardown),
    };
    log_set_timestamps(false);
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
