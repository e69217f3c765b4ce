/* Tests of the development PKI: the certificates pki_init and
 * pki_issue_client make are checked with OpenSSL's own path validation
 * (strict RFC 5280 mode, TLS purposes) and once with the openssl command;
 * pki_sign_csr is fed requests made here, good, tampered, malformed and with
 * keys it must refuse. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/secret.h"
#include "kms/pki.h"

static char tmp[64];  /* the test's scratch directory */
static char pki[128]; /* tmp/pki: made by pki_init */

static const char *const all_files[] = {
    PKI_FILE_CA_CERT,    PKI_FILE_CA_KEY,      PKI_FILE_SERVER_CERT,
    PKI_FILE_SERVER_KEY, PKI_FILE_CLIENT_CERT, PKI_FILE_CLIENT_KEY,
};
#define N_FILES (sizeof(all_files) / sizeof(all_files[0]))

#define HOSTNAME "KMS.Example.test" /* kept in lower case */

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/vmseal-test-pki-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", tmp);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* setup, then a PKI in pki/. */
static int setup_init(void **state)
{
    if (setup(state) != 0)
        return -1;
    return is_ok(pki_init(pki, HOSTNAME)) ? 0 : -1;
}

static void path_in(char *out, size_t n, const char *d, const char *name)
{
    snprintf(out, n, "%s/%s", d, name);
}

static size_t count_entries(const char *d)
{
    DIR *dh = opendir(d);
    struct dirent *e;
    size_t n = 0;
    if (dh == NULL)
        return 0;
    while ((e = readdir(dh)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dh);
    return n;
}

static X509 *load_cert_in(const char *d, const char *name)
{
    char p[256];
    FILE *f;
    X509 *c;
    path_in(p, sizeof(p), d, name);
    f = fopen(p, "r");
    assert_non_null(f);
    c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(c);
    return c;
}

static X509 *load_cert(const char *name)
{
    return load_cert_in(pki, name);
}

static EVP_PKEY *load_key(const char *name)
{
    char p[256];
    FILE *f;
    EVP_PKEY *k;
    path_in(p, sizeof(p), pki, name);
    f = fopen(p, "r");
    assert_non_null(f);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static X509 *cert_from_buf(const struct buf *b)
{
    BIO *bio = BIO_new_mem_buf(buf_data(b), (int)buf_len(b));
    X509 *c;
    assert_non_null(bio);
    c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(c);
    return c;
}

/* X509_verify_cert of leaf against ca alone, for purpose, in strict mode
 * (OpenSSL 3's X509_V_FLAG_X509_STRICT checks RFC 5280 rules: key
 * identifiers, critical basicConstraints on the CA, keyUsage, ...). Returns
 * 1 if it verifies; *err gets the verification error. */
static int verify_chain(X509 *ca, X509 *leaf, int purpose, int *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
    ok = X509_verify_cert(ctx);
    *err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void assert_verifies(X509 *ca, X509 *leaf, int purpose)
{
    int err = 0;
    if (verify_chain(ca, leaf, purpose, &err) != 1) {
        print_error("verification failed: %s\n", X509_verify_cert_error_string(err));
        fail();
    }
}

static void assert_mode(const char *d, const char *name, mode_t want)
{
    char p[256];
    struct stat st;
    path_in(p, sizeof(p), d, name);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, want);
}

static void assert_absent(const char *d, const char *name)
{
    char p[256];
    struct stat st;
    path_in(p, sizeof(p), d, name);
    assert_int_not_equal(lstat(p, &st), 0);
}

static bool ext_critical(X509 *c, int nid)
{
    int at = X509_get_ext_by_NID(c, nid, -1);
    assert_true(at >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(c, at)) == 1;
}

static void assert_cn(X509 *c, const char *want)
{
    char cn[128];
    assert_ok(pki_cert_identity(c, cn, sizeof(cn)));
    assert_string_equal(cn, want);
}

/* Days and seconds from notBefore to notAfter, and notBefore about an hour
 * before now. */
static void assert_validity(X509 *c, int want_days)
{
    int days = -1, secs = -1;
    time_t early = time(NULL) - PKI_BACKDATE_SECONDS - 120, late = early + 240;

    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)),
                     1);
    assert_int_equal(days, want_days);
    assert_int_equal(secs, PKI_BACKDATE_SECONDS);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(c), &early), 1);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(c), &late), -1);
}

/* Positive, more than 64 and at most 128 bits (the chance that 128 random
 * bits have 64 leading zeros is 2^-64). Returns it for comparisons. */
static BIGNUM *checked_serial(X509 *c)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
    return bn;
}

static void assert_p256(EVP_PKEY *k)
{
    char group[64] = "";
    size_t len = 0;
    assert_true(EVP_PKEY_is_a(k, "EC"));
    assert_int_equal(
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len),
        1);
    assert_string_equal(group, "prime256v1");
}

/* --- pki_init --- */

static void test_init_files_and_modes(void **state)
{
    struct stat st;
    struct secret_stats before, after;
    (void)state;

    secret_get_stats(&before);
    assert_ok(pki_init(pki, HOSTNAME));
    secret_get_stats(&after);
    assert_int_equal(after.live_allocations, before.live_allocations); /* no secret leaked */

    assert_int_equal(stat(pki, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(count_entries(pki), N_FILES); /* no temporary file left */
    assert_mode(pki, PKI_FILE_CA_KEY, 0600);
    assert_mode(pki, PKI_FILE_SERVER_KEY, 0600);
    assert_mode(pki, PKI_FILE_CLIENT_KEY, 0600);
    assert_mode(pki, PKI_FILE_CA_CERT, 0644);
    assert_mode(pki, PKI_FILE_SERVER_CERT, 0644);
    assert_mode(pki, PKI_FILE_CLIENT_CERT, 0644);
}

static void test_init_ca(void **state)
{
    X509 *ca = load_cert(PKI_FILE_CA_CERT);
    EVP_PKEY *key = load_key(PKI_FILE_CA_KEY);
    BIGNUM *serial;
    (void)state;

    assert_cn(ca, PKI_CA_COMMON_NAME);
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_int_equal(X509_self_signed(ca, 1), 1); /* and its signature verifies */
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_get_pathlen(ca), 0);
    assert_true(ext_critical(ca, NID_basic_constraints));
    assert_true(ext_critical(ca, NID_key_usage));
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_ext_by_NID(ca, NID_ext_key_usage, -1), -1);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_validity(ca, PKI_CA_DAYS);
    serial = checked_serial(ca);
    assert_p256(key);
    assert_int_equal(X509_check_private_key(ca, key), 1);
    BN_free(serial);
    EVP_PKEY_free(key);
    X509_free(ca);
}

static void test_init_chain_and_purposes(void **state)
{
    X509 *ca = load_cert(PKI_FILE_CA_CERT);
    X509 *server = load_cert(PKI_FILE_SERVER_CERT);
    X509 *client = load_cert(PKI_FILE_CLIENT_CERT);
    BIGNUM *s1, *s2, *s3;
    int err = 0;
    (void)state;

    assert_verifies(ca, server, X509_PURPOSE_SSL_SERVER);
    assert_verifies(ca, client, X509_PURPOSE_SSL_CLIENT);
    /* Each leaf is good for its own side of TLS only. */
    assert_int_equal(verify_chain(ca, client, X509_PURPOSE_SSL_SERVER, &err), 0);
    assert_int_equal(err, X509_V_ERR_INVALID_PURPOSE);
    assert_int_equal(verify_chain(ca, server, X509_PURPOSE_SSL_CLIENT, &err), 0);
    assert_int_equal(err, X509_V_ERR_INVALID_PURPOSE);
    /* A leaf is no issuer. */
    assert_int_equal(verify_chain(server, client, X509_PURPOSE_SSL_CLIENT, &err), 0);

    assert_cn(server, "kms.example.test");
    assert_cn(client, PKI_CLIENT_COMMON_NAME);
    assert_int_equal(X509_check_ca(server), 0);
    assert_int_equal(X509_check_ca(client), 0);
    assert_int_equal(X509_get_key_usage(server), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_key_usage(client), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(server), XKU_SSL_SERVER);
    assert_int_equal(X509_get_extended_key_usage(client), XKU_SSL_CLIENT);
    /* RFC 5280 §4.2.1.1: the leaves name their issuer's key. */
    assert_non_null(X509_get0_authority_key_id(server));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(server), X509_get0_subject_key_id(ca)), 0);
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(client), X509_get0_subject_key_id(ca)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(server), X509_get_subject_name(ca)), 0);
    assert_validity(server, PKI_LEAF_DAYS);
    assert_validity(client, PKI_LEAF_DAYS);

    s1 = checked_serial(ca);
    s2 = checked_serial(server);
    s3 = checked_serial(client);
    assert_int_not_equal(BN_cmp(s1, s2), 0);
    assert_int_not_equal(BN_cmp(s2, s3), 0);
    assert_int_not_equal(BN_cmp(s1, s3), 0);
    BN_free(s1);
    BN_free(s2);
    BN_free(s3);

    X509_free(ca);
    X509_free(server);
    X509_free(client);
}

static void test_init_other_ca_does_not_verify(void **state)
{
    char other[160];
    X509 *ca2, *server;
    int err = 0;
    (void)state;

    snprintf(other, sizeof(other), "%s/other", tmp);
    assert_ok(pki_init(other, HOSTNAME));
    ca2 = load_cert_in(other, PKI_FILE_CA_CERT);
    server = load_cert(PKI_FILE_SERVER_CERT);
    assert_int_equal(verify_chain(ca2, server, X509_PURPOSE_SSL_SERVER, &err), 0);
    assert_int_equal(err, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    X509_free(ca2);
    X509_free(server);
}

static int san_count(X509 *c)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    int n;
    if (names == NULL)
        return 0;
    n = sk_GENERAL_NAME_num(names);
    GENERAL_NAMES_free(names);
    return n;
}

static void test_init_server_names(void **state)
{
    X509 *server = load_cert(PKI_FILE_SERVER_CERT);
    X509 *client = load_cert(PKI_FILE_CLIENT_CERT);
    (void)state;

    assert_int_equal(san_count(server), 4);
    assert_int_equal(X509_check_host(server, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(server, "kms.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(server, "KMS.EXAMPLE.TEST", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(server, "::1", 0), 1);
    assert_int_equal(X509_check_host(server, "evil.example", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(server, "example.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(server, "127.0.0.2", 0), 0);
    assert_false(ext_critical(server, NID_subject_alt_name)); /* the subject is not empty */
    assert_int_equal(san_count(client), 0);
    X509_free(server);
    X509_free(client);
}

static void test_init_keys_match_certs(void **state)
{
    X509 *ca = load_cert(PKI_FILE_CA_CERT), *server = load_cert(PKI_FILE_SERVER_CERT),
         *client = load_cert(PKI_FILE_CLIENT_CERT);
    EVP_PKEY *ca_key = load_key(PKI_FILE_CA_KEY), *server_key = load_key(PKI_FILE_SERVER_KEY),
             *client_key = load_key(PKI_FILE_CLIENT_KEY);
    (void)state;

    assert_int_equal(X509_check_private_key(ca, ca_key), 1);
    assert_int_equal(X509_check_private_key(server, server_key), 1);
    assert_int_equal(X509_check_private_key(client, client_key), 1);
    assert_int_equal(X509_check_private_key(server, client_key), 0);
    assert_int_equal(X509_check_private_key(client, ca_key), 0);
    assert_p256(server_key);
    assert_p256(client_key);
    /* Three different keys. */
    assert_int_not_equal(EVP_PKEY_eq(ca_key, server_key), 1);
    assert_int_not_equal(EVP_PKEY_eq(server_key, client_key), 1);

    X509_free(ca);
    X509_free(server);
    X509_free(client);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(client_key);
}

static void read_all_files(struct buf out[N_FILES])
{
    char p[256];
    for (size_t i = 0; i < N_FILES; i++) {
        path_in(p, sizeof(p), pki, all_files[i]);
        assert_ok(buf_alloc(&out[i], 0, 1 << 16));
        assert_ok(file_read_all(p, 1 << 16, &out[i]));
    }
}

static void test_init_refuses_to_overwrite(void **state)
{
    struct buf before[N_FILES], after[N_FILES];
    char lone[160], p[256];
    (void)state;

    read_all_files(before);
    assert_err(pki_init(pki, HOSTNAME), ERR_EXISTS);
    read_all_files(after);
    for (size_t i = 0; i < N_FILES; i++) {
        assert_int_equal(buf_len(&before[i]), buf_len(&after[i]));
        assert_memory_equal(buf_data(&before[i]), buf_data(&after[i]), buf_len(&before[i]));
        buf_free(&before[i]);
        buf_free(&after[i]);
    }
    assert_int_equal(count_entries(pki), N_FILES);

    /* Any one of the six is enough, and nothing else is written. */
    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(lone, sizeof(lone), "%s/lone%zu", tmp, i);
        assert_int_equal(mkdir(lone, 0700), 0);
        path_in(p, sizeof(p), lone, all_files[i]);
        assert_ok(file_write_atomic(p, "x", 1, 0600));
        assert_err(pki_init(lone, HOSTNAME), ERR_EXISTS);
        assert_int_equal(count_entries(lone), 1);
    }
    /* A dangling symbolic link counts: writing through it would create
     * its target. */
    snprintf(lone, sizeof(lone), "%s/link", tmp);
    assert_int_equal(mkdir(lone, 0700), 0);
    path_in(p, sizeof(p), lone, PKI_FILE_CA_KEY);
    assert_int_equal(symlink("/nonexistent/vmseal-test", p), 0);
    assert_err(pki_init(lone, HOSTNAME), ERR_EXISTS);
    assert_int_equal(count_entries(lone), 1);
}

static void test_init_hostnames(void **state)
{
    static const char *const bad[] = {
        "",
        "a b",
        "kms.example.test,DNS:evil.example",
        "kms/../x",
        "-kms.example",
        "kms-.example",
        "kms..example",
        ".kms",
        "kms.example.",
        "*.example.test",
        "kms_1.example",
        "k\xc3\xa9ms.example",
        "kms\n.example",
        "1.2.3.4/8",
        "::1%lo",
        "012345678901234567890123456789012345678901234567890123456789abcd.example", /* 64 */
    };
    char long_label[80], too_long[300], fine_long[260], sub[160];
    X509 *c;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/bad%zu", tmp, i);
        assert_err(pki_init(sub, bad[i]), ERR_INVALID_ARG);
        assert_int_not_equal(access(sub, F_OK), 0); /* refused before anything was made */
    }
    /* 63 is the longest label; 253 the longest name. */
    memset(long_label, 'a', 63);
    memcpy(long_label + 63, ".example", sizeof(".example"));
    /* "a.a. ... .a", 253 characters; one more in front makes 254. */
    for (size_t i = 0; i < 252; i += 2)
        memcpy(fine_long + i, "a.", 2);
    memcpy(fine_long + 252, "a", 2);
    snprintf(too_long, sizeof(too_long), "b%s", fine_long);
    snprintf(sub, sizeof(sub), "%s/toolong", tmp);
    assert_err(pki_init(sub, too_long), ERR_INVALID_ARG);

    /* A 253-character name: the CN falls back, the subjectAltName has it. */
    snprintf(sub, sizeof(sub), "%s/long", tmp);
    assert_int_equal(strlen(fine_long), 253);
    assert_ok(pki_init(sub, fine_long));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_cn(c, "vmseal-kms");
    assert_int_equal(X509_check_host(c, fine_long, 0, 0, NULL), 1);
    X509_free(c);

    snprintf(sub, sizeof(sub), "%s/label", tmp);
    assert_ok(pki_init(sub, long_label));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_int_equal(X509_check_host(c, long_label, 0, 0, NULL), 1);
    X509_free(c);

    /* An IP address goes in as an iPAddress, not as a dNSName. */
    snprintf(sub, sizeof(sub), "%s/ip", tmp);
    assert_ok(pki_init(sub, "192.0.2.7"));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_int_equal(san_count(c), 4);
    assert_int_equal(X509_check_ip_asc(c, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_host(c, "192.0.2.7", 0, 0, NULL), 0);
    assert_cn(c, "192.0.2.7");
    X509_free(c);

    snprintf(sub, sizeof(sub), "%s/ip6", tmp);
    assert_ok(pki_init(sub, "2001:DB8::5"));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_int_equal(X509_check_ip_asc(c, "2001:db8::5", 0), 1);
    X509_free(c);

    /* "localhost" and "::1" are there already: not twice. */
    snprintf(sub, sizeof(sub), "%s/localhost", tmp);
    assert_ok(pki_init(sub, "localhost"));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_int_equal(san_count(c), 3);
    X509_free(c);
    snprintf(sub, sizeof(sub), "%s/loop6", tmp);
    assert_ok(pki_init(sub, "0:0::1"));
    c = load_cert_in(sub, PKI_FILE_SERVER_CERT);
    assert_int_equal(san_count(c), 3);
    X509_free(c);
}

static void test_init_directory(void **state)
{
    char sub[160];
    (void)state;

    /* Others could swap the keys in a directory they can write to. */
    snprintf(sub, sizeof(sub), "%s/open", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(sub, 0770), 0);
    assert_err(pki_init(sub, HOSTNAME), ERR_PERM);
    assert_int_equal(chmod(sub, 0702), 0);
    assert_err(pki_init(sub, HOSTNAME), ERR_PERM);
    assert_int_equal(count_entries(sub), 0);
    /* An existing private directory is used as it is. */
    assert_int_equal(chmod(sub, 0750), 0);
    assert_ok(pki_init(sub, HOSTNAME));
    assert_int_equal(count_entries(sub), N_FILES);

    snprintf(sub, sizeof(sub), "%s/no/such", tmp);
    assert_err(pki_init(sub, HOSTNAME), ERR_NOT_FOUND);
}

/* A write that fails halfway (here: files may not grow past 400 bytes, so
 * the ~240-byte ca.key is written and the ~550-byte ca.crt is not) leaves
 * nothing behind, and a second run then works. */
static void test_init_rolls_back(void **state)
{
    struct rlimit old, small;
    void (*old_handler)(int);
    vs_result r;
    (void)state;

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 400;
    old_handler = signal(SIGXFSZ, SIG_IGN); /* write(2) fails with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    r = pki_init(pki, HOSTNAME);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_err(r, ERR_IO);
    assert_int_equal(count_entries(pki), 0);
    assert_ok(pki_init(pki, HOSTNAME));
    assert_int_equal(count_entries(pki), N_FILES);

    /* The same for one client. */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    r = pki_issue_client(pki, "late");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_err(r, ERR_IO);
    assert_int_equal(count_entries(pki), N_FILES);
    assert_ok(pki_issue_client(pki, "late"));
    assert_int_equal(count_entries(pki), N_FILES + 2);
}

/* --- pki_issue_client --- */

static void test_issue_client(void **state)
{
    char crt[PKI_NAME_MAX + 8], p[256], name64[PKI_NAME_MAX + 1];
    X509 *ca, *c;
    EVP_PKEY *k;
    int err = 0;
    (void)state;

    assert_ok(pki_issue_client(pki, "esxi-01.lab_A"));
    assert_mode(pki, "esxi-01.lab_A.key", 0600);
    assert_mode(pki, "esxi-01.lab_A.crt", 0644);
    assert_int_equal(count_entries(pki), N_FILES + 2);
    ca = load_cert(PKI_FILE_CA_CERT);
    c = load_cert("esxi-01.lab_A.crt");
    k = load_key("esxi-01.lab_A.key");
    assert_verifies(ca, c, X509_PURPOSE_SSL_CLIENT);
    assert_int_equal(verify_chain(ca, c, X509_PURPOSE_SSL_SERVER, &err), 0);
    assert_int_equal(err, X509_V_ERR_INVALID_PURPOSE);
    assert_int_equal(X509_check_private_key(c, k), 1);
    assert_p256(k);
    assert_cn(c, "esxi-01.lab_A");
    assert_validity(c, PKI_LEAF_DAYS);
    X509_free(c);
    EVP_PKEY_free(k);

    /* Once only; nor over the PKI's own files. */
    assert_err(pki_issue_client(pki, "esxi-01.lab_A"), ERR_EXISTS);
    assert_err(pki_issue_client(pki, "ca"), ERR_EXISTS);
    assert_err(pki_issue_client(pki, "server"), ERR_EXISTS);
    /* Either file is enough. */
    path_in(p, sizeof(p), pki, "half.key");
    assert_ok(file_write_atomic(p, "x", 1, 0600));
    assert_err(pki_issue_client(pki, "half"), ERR_EXISTS);
    assert_absent(pki, "half.crt");

    /* 64 characters is the longest name. */
    memset(name64, 'n', PKI_NAME_MAX);
    name64[PKI_NAME_MAX] = '\0';
    assert_ok(pki_issue_client(pki, name64));
    snprintf(crt, sizeof(crt), "%s.crt", name64);
    c = load_cert(crt);
    assert_verifies(ca, c, X509_PURPOSE_SSL_CLIENT);
    assert_cn(c, name64);
    X509_free(c);
    X509_free(ca);
}

static void test_issue_client_bad_names(void **state)
{
    static const char *const bad[] = {
        "../x",
        "",
        ".hidden",
        "a b",
        "a/b",
        "..",
        ".",
        "x\n",
        "caf\xc3\xa9",
        "a,CN=admin",
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", /* 65 */
    };
    char p[256];
    (void)state;

    assert_int_equal(strlen(bad[sizeof(bad) / sizeof(bad[0]) - 1]), PKI_NAME_MAX + 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_err(pki_issue_client(pki, bad[i]), ERR_INVALID_ARG);
    assert_int_equal(count_entries(pki), N_FILES);
    path_in(p, sizeof(p), tmp, "x.crt");
    assert_int_not_equal(access(p, F_OK), 0); /* "../x" wrote nothing beside */
}

static void test_issue_client_needs_a_good_ca(void **state)
{
    char sub[160], p[256], other[160];
    struct buf key;
    (void)state;

    /* No CA at all. */
    snprintf(sub, sizeof(sub), "%s/empty", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_err(pki_issue_client(sub, "x"), ERR_NOT_FOUND);
    assert_int_equal(count_entries(sub), 0);

    /* A ca.key that is not the CA's key. */
    snprintf(other, sizeof(other), "%s/other", tmp);
    assert_ok(pki_init(other, HOSTNAME));
    assert_ok(buf_alloc(&key, 0, 1 << 16));
    path_in(p, sizeof(p), other, PKI_FILE_CA_KEY);
    assert_ok(file_read_all(p, 1 << 16, &key));
    path_in(p, sizeof(p), pki, PKI_FILE_CA_KEY);
    assert_ok(file_write_atomic(p, buf_data(&key), buf_len(&key), 0600));
    assert_err(pki_issue_client(pki, "x"), ERR_INVALID_ARG);
    assert_absent(pki, "x.crt");
    assert_absent(pki, "x.key");

    /* A CA "certificate" that is a leaf, with its own key as ca.key. */
    path_in(p, sizeof(p), pki, PKI_FILE_CLIENT_KEY);
    buf_reset(&key);
    assert_ok(file_read_all(p, 1 << 16, &key));
    path_in(p, sizeof(p), pki, PKI_FILE_CA_KEY);
    assert_ok(file_write_atomic(p, buf_data(&key), buf_len(&key), 0600));
    buf_reset(&key);
    path_in(p, sizeof(p), pki, PKI_FILE_CLIENT_CERT);
    assert_ok(file_read_all(p, 1 << 16, &key));
    path_in(p, sizeof(p), pki, PKI_FILE_CA_CERT);
    assert_ok(file_write_atomic(p, buf_data(&key), buf_len(&key), 0644));
    assert_err(pki_issue_client(pki, "x"), ERR_INVALID_ARG);

    /* Garbage in ca.crt. */
    assert_ok(file_write_atomic(p, "not a certificate\n", 18, 0644));
    assert_err(pki_issue_client(pki, "x"), ERR_INVALID_ARG);
    assert_absent(pki, "x.crt");
    buf_free(&key);
}

/* --- pki_sign_csr --- */

static EVP_PKEY *keygen_rsa(size_t bits)
{
    /* EVP_PKEY_Q_keygen is variadic: RSA's size must be passed as size_t. */
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    assert_non_null(k);
    return k;
}

static EVP_PKEY *keygen_ec(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return k;
}

static void req_add_ext(STACK_OF(X509_EXTENSION) * exts, X509_REQ *req, int nid, const char *v)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
    assert_non_null(ext);
    assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
}

/* A request for key with subject "CN=cn,O=VMware" (no subject if cn is
 * NULL) and subjectAltName san (none if NULL). It also asks to be a CA,
 * which the signer must ignore. */
static X509_REQ *make_req(EVP_PKEY *key, const char *cn, const char *san)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

    assert_non_null(req);
    assert_non_null(name);
    assert_non_null(exts);
    if (cn != NULL) {
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                    (const unsigned char *)"VMware", -1, -1, 0),
                         1);
    }
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    req_add_ext(exts, req, NID_basic_constraints, "critical,CA:TRUE");
    req_add_ext(exts, req, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        req_add_ext(exts, req, NID_subject_alt_name, san);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    /* Ed25519 signs without a separate digest. */
    assert_true(X509_REQ_sign(req, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) > 0);
    return req;
}

/* The PEM of req in a buf (caller buf_free's). */
static void req_pem(X509_REQ *req, struct buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    n = BIO_get_mem_data(bio, &p);
    assert_true(n > 0);
    assert_ok(buf_alloc(out, 0, 1 << 20));
    assert_ok(buf_write_bytes(out, p, (size_t)n));
    BIO_free(bio);
}

/* Signs req's PEM and returns the certificate, checked against the CA for
 * both TLS purposes. */
static X509 *sign_ok(X509_REQ *req)
{
    struct buf csr, out;
    X509 *ca = load_cert(PKI_FILE_CA_CERT), *c;

    req_pem(req, &csr);
    assert_ok(buf_alloc(&out, 0, 1 << 16));
    assert_ok(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &out));
    c = cert_from_buf(&out);
    assert_verifies(ca, c, X509_PURPOSE_SSL_CLIENT);
    assert_verifies(ca, c, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(c), X509_REQ_get_subject_name(req)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c), X509_REQ_get0_pubkey(req)), 1);
    /* What the request asked beyond its names is ignored. */
    assert_int_equal(X509_check_ca(c), 0);
    assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_validity(c, PKI_LEAF_DAYS);
    BN_free(checked_serial(c));
    X509_free(ca);
    buf_free(&csr);
    buf_free(&out);
    return c;
}

static void test_sign_csr_rsa(void **state)
{
    EVP_PKEY *k = keygen_rsa(2048);
    X509_REQ *req = make_req(k, "vcenter.example.test", "DNS:vcenter.example.test,IP:192.0.2.10");
    X509 *c;
    char cn[128];
    (void)state;

    c = sign_ok(req);
    assert_ok(pki_cert_identity(c, cn, sizeof(cn)));
    assert_string_equal(cn, "vcenter.example.test");
    assert_int_equal(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(san_count(c), 2);
    assert_int_equal(X509_check_host(c, "vcenter.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(c, "192.0.2.10", 0), 1);
    assert_false(ext_critical(c, NID_subject_alt_name));
    X509_free(c);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
}

static void test_sign_csr_ec(void **state)
{
    static const char *const curves[] = {"P-256", "P-384"};
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *k = keygen_ec(curves[i]);
        X509_REQ *req = make_req(k, "esxi-7.example.test", NULL);
        X509 *c = sign_ok(req);
        /* RFC 5480 §3: no keyEncipherment for an EC key. */
        assert_int_equal(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
        assert_int_equal(san_count(c), 0);
        X509_free(c);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
    }
}

static void test_sign_csr_empty_subject(void **state)
{
    EVP_PKEY *k = keygen_ec("P-256");
    X509_REQ *req = make_req(k, NULL, "DNS:vcenter.example.test");
    X509_REQ *bare = make_req(k, NULL, NULL);
    struct buf csr, out;
    X509 *c;
    (void)state;

    /* RFC 5280 §4.1.2.6: then the subjectAltName is critical. */
    c = sign_ok(req);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(c)), 0);
    assert_true(ext_critical(c, NID_subject_alt_name));
    X509_free(c);

    req_pem(bare, &csr);
    assert_ok(buf_alloc(&out, 0, 1 << 16));
    assert_err(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &out), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), 0);
    buf_free(&csr);
    buf_free(&out);
    X509_REQ_free(req);
    X509_REQ_free(bare);
    EVP_PKEY_free(k);
}

static void test_sign_csr_tampered(void **state)
{
    EVP_PKEY *rsa = keygen_rsa(2048), *ec = keygen_ec("P-256");
    X509_REQ *req = make_req(rsa, "vcenter.example.test", "DNS:vcenter.example.test");
    X509_REQ *req_ec = make_req(ec, "vcenter.example.test", NULL);
    X509_NAME *admin = X509_NAME_new();
    struct buf csr, out;
    unsigned char *der = NULL;
    int der_len;
    BIO *bio;
    char *p = NULL;
    long n;
    (void)state;

    assert_ok(buf_alloc(&out, 0, 1 << 16));

    /* The subject changed after signing: the signature no longer covers
     * what is asked. (set_subject_name marks the request for re-encoding;
     * the old signature stays.) */
    assert_non_null(admin);
    assert_int_equal(X509_NAME_add_entry_by_txt(admin, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"admin", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_subject_name(req, admin), 1);
    req_pem(req, &csr);
    assert_err(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &out), ERR_AUTH);
    assert_int_equal(buf_len(&out), 0);
    buf_free(&csr);

    /* One bit of the ECDSA signature flipped (its last byte is the end of
     * s inside the BIT STRING). */
    der_len = i2d_X509_REQ(req_ec, &der);
    assert_true(der_len > 0);
    der[der_len - 1] ^= 0x01;
    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_true(PEM_write_bio(bio, PEM_STRING_X509_REQ, "", der, der_len) > 0);
    n = BIO_get_mem_data(bio, &p);
    assert_err(pki_sign_csr(pki, (const uint8_t *)p, (size_t)n, &out), ERR_AUTH);
    assert_int_equal(buf_len(&out), 0);
    /* The same bytes unflipped are fine: the test can fail. */
    der[der_len - 1] ^= 0x01;
    assert_int_equal(BIO_reset(bio), 1);
    assert_true(PEM_write_bio(bio, PEM_STRING_X509_REQ, "", der, der_len) > 0);
    n = BIO_get_mem_data(bio, &p);
    assert_ok(pki_sign_csr(pki, (const uint8_t *)p, (size_t)n, &out));
    assert_true(buf_len(&out) > 0);

    BIO_free(bio);
    OPENSSL_free(der);
    X509_NAME_free(admin);
    X509_REQ_free(req);
    X509_REQ_free(req_ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    buf_free(&out);
}

static void test_sign_csr_malformed(void **state)
{
    EVP_PKEY *k = keygen_ec("P-256");
    X509_REQ *req = make_req(k, "vcenter.example.test", NULL);
    struct buf csr, out, big, small;
    char crt_path[256];
    struct buf crt;
    uint8_t *mid;
    (void)state;

    req_pem(req, &csr);
    assert_ok(buf_alloc(&out, 0, 1 << 16));

    assert_err(pki_sign_csr(pki, (const uint8_t *)"hello", 5, &out), ERR_INVALID_ARG);
    assert_err(pki_sign_csr(pki, buf_data(&csr), 0, &out), ERR_INVALID_ARG);
    /* Cut in half. */
    assert_err(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr) / 2, &out), ERR_INVALID_ARG);
    /* A certificate is not a request. */
    path_in(crt_path, sizeof(crt_path), pki, PKI_FILE_SERVER_CERT);
    assert_ok(buf_alloc(&crt, 0, 1 << 16));
    assert_ok(file_read_all(crt_path, 1 << 16, &crt));
    assert_err(pki_sign_csr(pki, buf_data(&crt), buf_len(&crt), &out), ERR_INVALID_ARG);
    buf_free(&crt);
    /* Base64 broken in the middle. */
    assert_ok(buf_alloc(&big, 0, 1 << 20));
    assert_ok(buf_write_bytes(&big, buf_data(&csr), buf_len(&csr)));
    mid = big.data + buf_len(&big) / 2;
    *mid = *mid == '!' ? '?' : '!';
    assert_err(pki_sign_csr(pki, buf_data(&big), buf_len(&big), &out), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), 0);

    /* Size: text before the PEM block is skipped, up to exactly 64 KiB in
     * all; one byte more is refused before it is parsed. */
    buf_reset(&big);
    assert_ok(buf_write_zeros(&big, PKI_CSR_MAX - buf_len(&csr)));
    memset(big.data, 'x', buf_len(&big));
    big.data[buf_len(&big) - 1] = '\n';
    assert_ok(buf_write_bytes(&big, buf_data(&csr), buf_len(&csr)));
    assert_int_equal(buf_len(&big), PKI_CSR_MAX);
    assert_ok(pki_sign_csr(pki, buf_data(&big), buf_len(&big), &out));
    buf_reset(&out);
    assert_ok(buf_write_u8(&big, '\n'));
    assert_err(pki_sign_csr(pki, buf_data(&big), buf_len(&big), &out), ERR_TOO_LARGE);
    assert_int_equal(buf_len(&out), 0);

    /* An output buffer too small gets nothing. */
    assert_ok(buf_alloc(&small, 0, 100));
    assert_ok(buf_write_u8(&small, 0x5a));
    assert_err(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &small), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&small), 1);
    buf_free(&small);

    /* Input inside the output buffer (growing it could free the input). */
    buf_reset(&out);
    assert_ok(buf_write_bytes(&out, buf_data(&csr), buf_len(&csr)));
    assert_err(pki_sign_csr(pki, buf_data(&out), buf_len(&out), &out), ERR_INVALID_ARG);
    assert_int_equal(buf_len(&out), buf_len(&csr));
    buf_reset(&out);

    /* No CA in the directory. */
    assert_err(pki_sign_csr(tmp, buf_data(&csr), buf_len(&csr), &out), ERR_NOT_FOUND);
    assert_int_equal(buf_len(&out), 0);

    buf_free(&big);
    buf_free(&csr);
    buf_free(&out);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
}

static void assert_csr_unsupported(EVP_PKEY *k)
{
    X509_REQ *req = make_req(k, "weak.example.test", NULL);
    struct buf csr, out;

    req_pem(req, &csr);
    assert_ok(buf_alloc(&out, 0, 1 << 16));
    assert_err(pki_sign_csr(pki, buf_data(&csr), buf_len(&csr), &out), ERR_UNSUPPORTED);
    assert_true(err_last()->detail[0] != '\0'); /* says why */
    assert_int_equal(buf_len(&out), 0);
    buf_free(&csr);
    buf_free(&out);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
}

static void test_sign_csr_unsupported_keys(void **state)
{
    EVP_PKEY *explicit_p256 = keygen_ec("P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    (void)state;

    assert_csr_unsupported(keygen_rsa(1024));
    assert_csr_unsupported(keygen_ec("secp256k1"));
    assert_non_null(ed);
    assert_csr_unsupported(ed);
    /* P-256 itself, but spelled out as explicit parameters. */
    assert_int_equal(EVP_PKEY_set_utf8_string_param(explicit_p256, OSSL_PKEY_PARAM_EC_ENCODING,
                                                    OSSL_PKEY_EC_ENCODING_EXPLICIT),
                     1);
    assert_csr_unsupported(explicit_p256);
}

/* --- identity and fingerprint --- */

/* An unsigned certificate with the given subject: enough for identity. */
static X509 *cert_with_subject(X509_NAME *name)
{
    X509 *c = X509_new();
    assert_non_null(c);
    assert_int_equal(X509_set_subject_name(c, name), 1);
    X509_NAME_free(name);
    return c;
}

/* A subject with one CN of ASN.1 type `type` and raw bytes v (len n). */
static X509_NAME *name_raw_cn(int type, const void *v, int n)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    assert_int_equal(
        X509_NAME_add_entry_by_NID(name, NID_commonName, type, (const unsigned char *)v, n, -1, 0),
        1);
    return name;
}

static void test_identity(void **state)
{
    X509 *client = load_cert(PKI_FILE_CLIENT_CERT), *c;
    X509_NAME *name;
    char out[64];
    (void)state;

    assert_cn(client, PKI_CLIENT_COMMON_NAME);
    /* Exactly the length plus the NUL fits; one byte less does not. */
    assert_ok(pki_cert_identity(client, out, strlen(PKI_CLIENT_COMMON_NAME) + 1));
    assert_err(pki_cert_identity(client, out, strlen(PKI_CLIENT_COMMON_NAME)), ERR_TOO_LARGE);
    assert_string_equal(out, "");
    assert_err(pki_cert_identity(client, out, 0), ERR_INVALID_ARG);
    X509_free(client);

    /* No CN. */
    name = X509_NAME_new();
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                (const unsigned char *)"VMware", -1, -1, 0),
                     1);
    c = cert_with_subject(name);
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_NOT_FOUND);
    X509_free(c);
    c = cert_with_subject(X509_NAME_new());
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_NOT_FOUND);
    X509_free(c);

    /* Two CNs: ambiguous. */
    name = name_raw_cn(MBSTRING_UTF8, "alice", -1);
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                                (const unsigned char *)"admin", -1, -1, 0),
                     1);
    c = cert_with_subject(name);
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_INVALID_ARG);
    X509_free(c);

    /* A NUL inside: "admin\0.evil" is not "admin". */
    c = cert_with_subject(name_raw_cn(V_ASN1_UTF8STRING, "admin\0.evil", 11));
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_INVALID_ARG);
    X509_free(c);
    c = cert_with_subject(name_raw_cn(V_ASN1_UTF8STRING, "ad\nmin", 6));
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_INVALID_ARG);
    X509_free(c);
    /* Empty, and invalid UTF-8. */
    c = cert_with_subject(name_raw_cn(V_ASN1_UTF8STRING, "", 0));
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_INVALID_ARG);
    X509_free(c);
    /* A CN that is not a string type at all. (Invalid UTF-8 in a
     * UTF8String cannot get this far: OpenSSL refuses it when it
     * canonicalises the name, on decoding or on X509_set_subject_name.) */
    c = cert_with_subject(name_raw_cn(V_ASN1_BIT_STRING, "admin", 5));
    assert_err(pki_cert_identity(c, out, sizeof(out)), ERR_INVALID_ARG);
    X509_free(c);

    /* Other string types come out as UTF-8: a BMPString "é" (U+00E9). */
    c = cert_with_subject(name_raw_cn(V_ASN1_BMPSTRING, "\x00\xe9", 2));
    assert_ok(pki_cert_identity(c, out, sizeof(out)));
    assert_string_equal(out, "\xc3\xa9");
    X509_free(c);
    c = cert_with_subject(name_raw_cn(V_ASN1_PRINTABLESTRING, "vcenter01", 9));
    assert_ok(pki_cert_identity(c, out, sizeof(out)));
    assert_string_equal(out, "vcenter01");
    X509_free(c);
}

static void test_fingerprint(void **state)
{
    X509 *server = load_cert(PKI_FILE_SERVER_CERT), *client = load_cert(PKI_FILE_CLIENT_CERT);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char fp[PKI_FINGERPRINT_SIZE], fp2[PKI_FINGERPRINT_SIZE], want[PKI_FINGERPRINT_SIZE];
    (void)state;

    memset(fp, 'Z', sizeof(fp));
    assert_ok(pki_cert_fingerprint(server, fp));
    assert_int_equal(strlen(fp), 64);
    for (size_t i = 0; i < 64; i++)
        assert_true((fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'a' && fp[i] <= 'f'));
    assert_int_equal(X509_digest(server, EVP_sha256(), md, &md_len), 1);
    assert_int_equal(md_len, 32);
    for (size_t i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(fp, want);

    assert_ok(pki_cert_fingerprint(client, fp2));
    assert_string_not_equal(fp, fp2);
    X509_free(server);
    X509_free(client);
}

/* The openssl command agrees: server.crt verifies for a TLS server against
 * ca.crt (in strict mode), client.crt does not. One run, both files. */
static void test_openssl_command_agrees(void **state)
{
    char cmd[512], output[4096];
    FILE *f;
    size_t n;
    int status;
    (void)state;

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl verify -x509_strict -purpose sslserver -CAfile ca.crt "
             "server.crt client.crt 2>&1",
             pki);
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(output, 1, sizeof(output) - 1, f);
    output[n] = '\0';
    status = pclose(f);
    if (strstr(output, "server.crt: OK") == NULL)
        print_error("openssl verify said:\n%s\n", output);
    assert_non_null(strstr(output, "server.crt: OK"));
    assert_null(strstr(output, "client.crt: OK"));
    /* X509_V_ERR_INVALID_PURPOSE (its wording changed between versions). */
    assert_non_null(strstr(output, "error 26 "));
    assert_non_null(strstr(output, "client.crt: verification failed"));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_files_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_ca, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_chain_and_purposes, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_other_ca_does_not_verify, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_server_names, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_keys_match_certs, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses_to_overwrite, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_init_hostnames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_client, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_issue_client_bad_names, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_issue_client_needs_a_good_ca, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_rsa, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_ec, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_empty_subject, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_tampered, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_malformed, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_sign_csr_unsupported_keys, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_identity, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup_init, teardown),
        cmocka_unit_test_setup_teardown(test_openssl_command_agrees, setup_init, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
