/* Tests of vmseal's TLS helpers through real handshakes.
 *
 * The verified-chain cache (kmip/tlsverify.h): a server and a client
 * context, both with a cache, talk over an in-memory BIO pair with the
 * development PKI of pki_init. A repeated peer is answered from the cache
 * with the same verified chain; everything that must not be (a refused
 * peer, another expected host name, a certificate that has expired since,
 * a slot taken by another peer) is verified in full again, and refused
 * when it fails.
 *
 * The TLS library context (kmip/tlslib.h): the server contexts here are
 * made in it, the clients in OpenSSL's default context, so every handshake
 * crosses the two; TLS 1.2 and 1.3 both complete, with every cipher suite
 * kind and group; a client or server in it offers what one in the default
 * context does; certificates with RSA,
 * EC and Ed25519 keys parse in it with usable keys; tls_use_key_file loads
 * a key and refuses a missing file, a file without a key, an encrypted
 * key (without prompting) and a key that is not the certificate's. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kmip/tlslib.h"
#include "kmip/tlsverify.h"
#include "kms/pki.h"

static char tmp[64];
static char pki[128];  /* the trusted development PKI */
static char pki2[128]; /* another CA, not trusted by anyone */

static void path(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/vmseal-test-tlsv-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", tmp);
    snprintf(pki2, sizeof(pki2), "%s/pki2", tmp);
    if (!is_ok(pki_init(pki, "localhost")) || !is_ok(pki_init(pki2, "localhost")) ||
        !is_ok(pki_issue_client(pki, "second")) || !is_ok(pki_issue_client(pki, "third")) ||
        !is_ok(pki_issue_client(pki, "fourth")) || !is_ok(pki_issue_client(pki, "fifth")))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* A new SSL_CTX for method in the TLS library context, or with lean
 * false, in OpenSSL's default one. */
static SSL_CTX *ctx_in(const SSL_METHOD *method, bool lean)
{
    SSL_CTX *ctx = NULL;
    if (lean)
        assert_ok(tls_ctx_new(method, &ctx));
    else
        ctx = SSL_CTX_new(method);
    assert_non_null(ctx);
    return ctx;
}

/* A server context trusting dir's CA for clients, with a cache, in the TLS
 * library context or (lean false) the default one. */
static SSL_CTX *server_ctx_in(const char *dir, size_t capacity, bool lean)
{
    char crt[256], key[256], ca[256];
    SSL_CTX *ctx = ctx_in(TLS_server_method(), lean);
    path(crt, sizeof(crt), dir, PKI_FILE_SERVER_CERT);
    path(key, sizeof(key), dir, PKI_FILE_SERVER_KEY);
    path(ca, sizeof(ca), dir, PKI_FILE_CA_CERT);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, crt), 1);
    assert_ok(tls_use_key_file(ctx, key));
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Full handshakes only: resumption would skip verification anyway. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    assert_ok(tls_vcache_attach(ctx, capacity, 3600));
    return ctx;
}

static SSL_CTX *server_ctx(const char *dir, size_t capacity)
{
    return server_ctx_in(dir, capacity, true);
}

/* A client context trusting the CA of trust_dir, presenting cert/key, in
 * the TLS library context or (lean false) the default one. */
static SSL_CTX *client_ctx_pem_in(const char *trust_dir, X509 *cert, EVP_PKEY *key, bool lean)
{
    char ca[256];
    SSL_CTX *ctx = ctx_in(TLS_client_method(), lean);
    path(ca, sizeof(ca), trust_dir, PKI_FILE_CA_CERT);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    assert_ok(tls_vcache_attach(ctx, 16, 3600));
    return ctx;
}

static SSL_CTX *client_ctx_pem(const char *trust_dir, X509 *cert, EVP_PKEY *key)
{
    return client_ctx_pem_in(trust_dir, cert, key, false);
}

/* Reads dir/file: a certificate, or with want_key a private key. */
static void *read_pem(const char *dir, const char *file, bool want_key)
{
    char p[256];
    path(p, sizeof(p), dir, file);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    void *obj = want_key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
                         : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(obj);
    return obj;
}

static X509 *read_cert(const char *dir, const char *file)
{
    return read_pem(dir, file, false);
}

static EVP_PKEY *read_key(const char *dir, const char *file)
{
    return read_pem(dir, file, true);
}

static SSL_CTX *client_ctx_in(const char *trust_dir, const char *dir, const char *name, bool lean)
{
    char crt[64], key[64];
    snprintf(crt, sizeof(crt), "%s.crt", name);
    snprintf(key, sizeof(key), "%s.key", name);
    X509 *x = read_cert(dir, crt);
    EVP_PKEY *k = read_key(dir, key);
    SSL_CTX *ctx = client_ctx_pem_in(trust_dir, x, k, lean);
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

static SSL_CTX *client_ctx(const char *trust_dir, const char *dir, const char *name)
{
    return client_ctx_in(trust_dir, dir, name, false);
}

struct outcome {
    bool ok;
    long server_verify, client_verify;
    int server_chain, client_chain; /* verified chain lengths, -1 for none */
    bool server_leaf_is_peer;       /* chain[0] is the certificate received */
    int version;                    /* the protocol version agreed */
    char cipher[64];                /* the cipher suite agreed */
    char group[32];                 /* the key exchange group agreed */
    /* What the client offered, as the server saw it: cipher suites
     * (names, ':'-separated), signature algorithms (TLS code points) and
     * groups (TLS group ids). */
    char offered_ciphers[4096];
    int offered_sigalgs[64], n_offered_sigalgs;
    int offered_groups[32], n_offered_groups;
};

/* Records in o what the client of s offered. */
static void record_offer(SSL *s, struct outcome *o)
{
    STACK_OF(SSL_CIPHER) *cs = SSL_get_client_ciphers(s);
    size_t used = 0;
    for (int i = 0; cs != NULL && i < sk_SSL_CIPHER_num(cs); i++) {
        const char *name = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(cs, i));
        int n = snprintf(o->offered_ciphers + used, sizeof(o->offered_ciphers) - used, "%s:", name);
        assert_true(n > 0 && (size_t)n < sizeof(o->offered_ciphers) - used);
        used += (size_t)n;
    }
    int n = SSL_get_sigalgs(s, -1, NULL, NULL, NULL, NULL, NULL);
    assert_true(n >= 0 && n <= 64);
    for (int i = 0; i < n; i++) {
        unsigned char rhash, rsig;
        SSL_get_sigalgs(s, i, NULL, NULL, NULL, &rsig, &rhash);
        o->offered_sigalgs[i] = rhash << 8 | rsig;
    }
    o->n_offered_sigalgs = n;
    n = SSL_get1_groups(s, NULL);
    assert_true(n >= 0 && n <= 32);
    SSL_get1_groups(s, o->offered_groups);
    o->n_offered_groups = n;
}

/* One full handshake over a BIO pair, the client expecting host (NULL:
 * no name check). */
static struct outcome handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *host)
{
    struct outcome o = {.server_chain = -1, .client_chain = -1};
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *bs, *bc;
    assert_non_null(s);
    assert_non_null(c);
    assert_int_equal(BIO_new_bio_pair(&bs, 0, &bc, 0), 1);
    SSL_set_bio(s, bs, bs);
    SSL_set_bio(c, bc, bc);
    if (host != NULL)
        assert_int_equal(SSL_set1_host(c, host), 1);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool sd = false, cd = false, failed = false;
    for (int round = 0; round < 50 && !failed && !(sd && cd); round++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = true;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                failed = true;
        }
        if (!sd && !failed) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = true;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                failed = true;
        }
    }
    ERR_clear_error();
    o.ok = sd && cd && !failed;
    o.server_verify = SSL_get_verify_result(s);
    o.client_verify = SSL_get_verify_result(c);
    STACK_OF(X509) *sch = SSL_get0_verified_chain(s), *cch = SSL_get0_verified_chain(c);
    o.server_chain = sch != NULL ? sk_X509_num(sch) : -1;
    o.client_chain = cch != NULL ? sk_X509_num(cch) : -1;
    X509 *peer = SSL_get0_peer_certificate(s);
    o.server_leaf_is_peer = sch != NULL && peer != NULL && sk_X509_value(sch, 0) == peer;
    o.version = SSL_version(c);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(c);
    snprintf(o.cipher, sizeof(o.cipher), "%s", cipher ? SSL_CIPHER_get_name(cipher) : "");
    const char *group = SSL_group_to_name(s, SSL_get_shared_group(s, 0));
    snprintf(o.group, sizeof(o.group), "%s", group ? group : "");
    record_offer(s, &o);
    SSL_free(s);
    SSL_free(c);
    return o;
}

static void assert_stats(SSL_CTX *ctx, uint64_t hits, uint64_t misses)
{
    uint64_t h, m;
    tls_vcache_stats(ctx, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

static void assert_good(struct outcome o)
{
    assert_true(o.ok);
    assert_int_equal(o.server_verify, X509_V_OK);
    assert_int_equal(o.client_verify, X509_V_OK);
    assert_int_equal(o.server_chain, 2); /* client leaf, CA */
    assert_int_equal(o.client_chain, 2); /* server leaf, CA */
    assert_true(o.server_leaf_is_peer);
}

/* The second handshake of the same pair is answered from both caches,
 * with the same verified chains as the first. */
static void test_repeat_is_cached(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 64), *c = client_ctx(pki, pki, "client");

    assert_good(handshake(s, c, "localhost"));
    assert_stats(s, 0, 1);
    assert_stats(c, 0, 1);
    for (int i = 0; i < 3; i++)
        assert_good(handshake(s, c, "localhost"));
    assert_stats(s, 3, 1);
    assert_stats(c, 3, 1);
    /* Another trusted client is a new entry, then a hit of its own. */
    SSL_CTX *c2 = client_ctx(pki, pki, "second");
    assert_good(handshake(s, c2, "localhost"));
    assert_good(handshake(s, c2, "localhost"));
    assert_stats(s, 4, 2);
    SSL_CTX_free(c2);
    SSL_CTX_free(c);
    SSL_CTX_free(s);
}

/* A client of an untrusted CA is refused, every time: failures are not
 * cached. A trusted client is still served afterwards. */
static void test_refusal_not_cached(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 64);
    SSL_CTX *bad = client_ctx(pki, pki2, "client"); /* trusts our server, its cert from pki2 */

    for (int i = 0; i < 3; i++) {
        struct outcome o = handshake(s, bad, "localhost");
        assert_false(o.ok);
        assert_int_not_equal(o.server_verify, X509_V_OK);
    }
    assert_stats(s, 0, 3);
    SSL_CTX *good = client_ctx(pki, pki, "client");
    assert_good(handshake(s, good, "localhost"));
    assert_stats(s, 0, 4);
    SSL_CTX_free(good);
    SSL_CTX_free(bad);
    SSL_CTX_free(s);
}

/* The expected host name is part of the key: a cached chain verified for
 * localhost is not an answer for another name. */
static void test_host_name_in_key(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 64), *c = client_ctx(pki, pki, "client");

    assert_good(handshake(s, c, "localhost"));
    assert_good(handshake(s, c, "localhost"));
    assert_stats(c, 1, 1);
    for (int i = 0; i < 2; i++) {
        struct outcome o = handshake(s, c, "not-this-server.example");
        assert_false(o.ok);
        assert_int_equal(o.client_verify, X509_V_ERR_HOSTNAME_MISMATCH);
    }
    assert_stats(c, 1, 3);
    /* No name check at all is another key too, and succeeds. */
    assert_good(handshake(s, c, NULL));
    assert_stats(c, 1, 4);
    assert_good(handshake(s, c, "localhost"));
    assert_stats(c, 2, 4);
    SSL_CTX_free(c);
    SSL_CTX_free(s);
}

/* A client certificate issued here by the trusted CA, valid from now for
 * `seconds`. */
static void issue_short(int seconds, X509 **cert, EVP_PKEY **key)
{
    X509 *ca = read_cert(pki, PKI_FILE_CA_CERT);
    EVP_PKEY *cakey = read_key(pki, PKI_FILE_CA_KEY);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), seconds));
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"short", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    X509_EXTENSION *eku = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "clientAuth");
    assert_non_null(eku);
    assert_int_equal(X509_add_ext(x, eku, -1), 1);
    X509_EXTENSION_free(eku);
    assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    *cert = x;
    *key = k;
}

/* A chain is reused only while every certificate in it is valid: once the
 * client certificate has expired, the cached entry is no answer, and the
 * full verification refuses it. */
static void test_expiry_ends_entry(void **state)
{
    (void)state;
    X509 *x;
    EVP_PKEY *k;
    issue_short(3, &x, &k);
    SSL_CTX *s = server_ctx(pki, 64), *c = client_ctx_pem(pki, x, k);

    /* notAfter has a resolution of one second: 2 to 3 s from now. A machine
     * too loaded to make two handshakes in that time cannot test this. */
    assert_good(handshake(s, c, "localhost"));
    assert_good(handshake(s, c, "localhost"));
    assert_stats(s, 1, 1);
    /* Then past notAfter, whatever the time spent so far. */
    int days, secs;
    do {
        sleep(1);
        assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    } while (days > 0 || secs >= 0);
    struct outcome o = handshake(s, c, "localhost");
    assert_false(o.ok);
    assert_int_equal(o.server_verify, X509_V_ERR_CERT_HAS_EXPIRED);
    assert_stats(s, 1, 2);
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_CTX_free(c);
    SSL_CTX_free(s);
}

/* With one slot, two clients keep evicting each other: every handshake is
 * a full verification, and every one succeeds. */
static void test_eviction(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 1);
    SSL_CTX *a = client_ctx(pki, pki, "client"), *b = client_ctx(pki, pki, "second");

    assert_good(handshake(s, a, "localhost"));
    assert_good(handshake(s, a, "localhost"));
    assert_stats(s, 1, 1);
    for (int i = 0; i < 3; i++) {
        assert_good(handshake(s, b, "localhost"));
        assert_good(handshake(s, a, "localhost"));
    }
    assert_stats(s, 1, 7);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(s);
}

/* Four slots make one set of four: four clients are all kept, whatever
 * their keys; a fifth replaces the least recently used one. */
static void test_set_keeps_four(void **state)
{
    (void)state;
    static const char *const names[] = {"client", "second", "third", "fourth", "fifth"};
    SSL_CTX *s = server_ctx(pki, 4), *c[5];
    for (int i = 0; i < 5; i++)
        c[i] = client_ctx(pki, pki, names[i]);

    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 4; i++)
            assert_good(handshake(s, c[i], "localhost"));
    assert_stats(s, 4, 4);
    /* "client" again: "second" is now the least recently used, and the
     * fifth takes its place. */
    assert_good(handshake(s, c[0], "localhost"));
    assert_good(handshake(s, c[4], "localhost"));
    assert_stats(s, 5, 5);
    static const int kept[] = {0, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        assert_good(handshake(s, c[kept[i]], "localhost"));
    assert_stats(s, 9, 5);
    assert_good(handshake(s, c[1], "localhost"));
    assert_stats(s, 9, 6);
    for (int i = 0; i < 5; i++)
        SSL_CTX_free(c[i]);
    SSL_CTX_free(s);
}

static int accept_all(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

/* Out-of-range arguments, a context with a verify callback and a second
 * attach are refused; a context without a cache has no statistics. */
static void test_attach_refusals(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_stats(ctx, 0, 0);
    assert_err(tls_vcache_attach(ctx, 0, 60), ERR_INVALID_ARG);
    assert_err(tls_vcache_attach(ctx, TLS_VCACHE_MAX_CAPACITY + 1, 60), ERR_INVALID_ARG);
    assert_err(tls_vcache_attach(ctx, 8, 0), ERR_INVALID_ARG);
    assert_err(tls_vcache_attach(ctx, 8, TLS_VCACHE_MAX_AGE_MAX + 1), ERR_INVALID_ARG);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_all);
    assert_err(tls_vcache_attach(ctx, 8, 60), ERR_INVALID_ARG);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    assert_ok(tls_vcache_attach(ctx, 8, 60));
    assert_err(tls_vcache_attach(ctx, 8, 60), ERR_INVALID_ARG);
    assert_stats(ctx, 0, 0);
    SSL_CTX_free(ctx);
}

/* Both protocol versions complete between a server in the TLS library
 * context and a client in the default one, and a repeat is cached. */
static void test_tls12_and_tls13(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 64);
    const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

    for (size_t i = 0; i < 2; i++) {
        SSL_CTX *c = client_ctx(pki, pki, "client");
        assert_int_equal(SSL_CTX_set_max_proto_version(c, versions[i]), 1);
        struct outcome o = handshake(s, c, "localhost");
        assert_good(o);
        assert_int_equal(o.version, versions[i]);
        assert_good(handshake(s, c, "localhost"));
        SSL_CTX_free(c);
    }
    /* The protocol version is not part of the key: one client, one miss. */
    assert_stats(s, 3, 1);
    SSL_CTX_free(s);
}

/* The TLS library context offers what the default one does: a client in
 * it sends the same cipher suites, signature algorithms and groups, and a
 * server in it enables the same cipher suites, every one that libssl
 * knows included. */
static void test_same_offer(void **state)
{
    (void)state;
    static const char all12[] = "ALL:COMPLEMENTOFALL:@SECLEVEL=0";
    static const char all13[] = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                                "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:"
                                "TLS_AES_128_CCM_8_SHA256";
    SSL_CTX *s = server_ctx_in(pki, 16, false);
    SSL_CTX *c_default = client_ctx_in(pki, pki, "client", false);
    SSL_CTX *c_lean = client_ctx_in(pki, pki, "client", true);
    assert_int_equal(SSL_CTX_set_cipher_list(c_default, all12), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(c_lean, all12), 1);
    struct outcome a = handshake(s, c_default, "localhost");
    struct outcome b = handshake(s, c_lean, "localhost");
    assert_good(a);
    assert_good(b);
    assert_string_equal(b.offered_ciphers, a.offered_ciphers);
    assert_int_equal(b.n_offered_sigalgs, a.n_offered_sigalgs);
    assert_memory_equal(b.offered_sigalgs, a.offered_sigalgs,
                        sizeof(int) * (size_t)a.n_offered_sigalgs);
    assert_int_equal(b.n_offered_groups, a.n_offered_groups);
    assert_memory_equal(b.offered_groups, a.offered_groups,
                        sizeof(int) * (size_t)a.n_offered_groups);
    /* Not vacuous: AES-CBC with SHA-1, SHA-256 and SHA-384 MACs,
     * CAMELLIA, ARIA, CCM, ChaCha20; RSA-PSS, Ed25519 and ECDSA; X448 and
     * the FFDHE groups. */
    const char *expect[] = {"ECDHE-ECDSA-AES256-SHA:",        "ECDHE-RSA-AES128-SHA256:",
                            "ECDHE-ECDSA-AES256-SHA384:",     "CAMELLIA256-SHA:",
                            "ECDHE-ARIA256-GCM-SHA384:",      "ECDHE-ECDSA-AES256-CCM8:",
                            "ECDHE-ECDSA-CHACHA20-POLY1305:", "TLS_AES_128_GCM_SHA256:"};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        if (strstr(a.offered_ciphers, expect[i]) == NULL)
            fail_msg("%s not offered in the default context", expect[i]);
    assert_true(a.n_offered_sigalgs >= 20);
    assert_true(a.n_offered_groups >= 9);
    SSL_CTX_free(c_default);
    SSL_CTX_free(c_lean);
    SSL_CTX_free(s);

    for (int lean = 0; lean < 2; lean++) {
        SSL_CTX *d = ctx_in(TLS_server_method(), false), *l = ctx_in(TLS_server_method(), true);
        assert_int_equal(SSL_CTX_set_cipher_list(d, all12), 1);
        assert_int_equal(SSL_CTX_set_cipher_list(l, all12), 1);
        assert_int_equal(SSL_CTX_set_ciphersuites(d, all13), 1);
        assert_int_equal(SSL_CTX_set_ciphersuites(l, all13), 1);
        STACK_OF(SSL_CIPHER) *dc = SSL_CTX_get_ciphers(d), *lc = SSL_CTX_get_ciphers(l);
        assert_true(sk_SSL_CIPHER_num(dc) >= 60);
        assert_int_equal(sk_SSL_CIPHER_num(lc), sk_SSL_CIPHER_num(dc));
        for (int i = 0; i < sk_SSL_CIPHER_num(dc); i++)
            assert_string_equal(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(lc, i)),
                                SSL_CIPHER_get_name(sk_SSL_CIPHER_value(dc, i)));
        SSL_CTX_free(d);
        SSL_CTX_free(l);
    }
}

/* A server in the TLS library context completes handshakes with every TLS
 * 1.3 cipher suite, TLS 1.2 suites of each kind of record protection
 * (GCM, CCM, ChaCha20-Poly1305, CBC with HMAC-SHA1/SHA-256/SHA-384,
 * CAMELLIA, ARIA) and every key exchange group, each one forced by the
 * client. */
static void test_suites_and_groups(void **state)
{
    (void)state;
    SSL_CTX *s = server_ctx(pki, 64);
    assert_int_equal(SSL_CTX_set_cipher_list(s, "ALL:@SECLEVEL=0"), 1);
    assert_int_equal(SSL_CTX_set_ciphersuites(s, "TLS_AES_256_GCM_SHA384:"
                                                 "TLS_CHACHA20_POLY1305_SHA256:"
                                                 "TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:"
                                                 "TLS_AES_128_CCM_8_SHA256"),
                     1);
    /* Each case forces one suite (agreed as named) or one group (agreed as
     * want_group, OpenSSL's name for it) from the client. */
    static const struct {
        int version;
        const char *suites, *groups, *want_group;
    } cases[] = {
        {TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", NULL, NULL},
        {TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", NULL, NULL},
        {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", NULL, NULL},
        {TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", NULL, NULL},
        {TLS1_3_VERSION, "TLS_AES_128_CCM_8_SHA256", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES256-CCM", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA384", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-CAMELLIA256-SHA384", NULL, NULL},
        {TLS1_2_VERSION, "ECDHE-ECDSA-ARIA256-GCM-SHA384", NULL, NULL},
        {TLS1_3_VERSION, NULL, "X25519", "x25519"},
        {TLS1_3_VERSION, NULL, "P-256", "secp256r1"},
        {TLS1_3_VERSION, NULL, "P-384", "secp384r1"},
        {TLS1_3_VERSION, NULL, "P-521", "secp521r1"},
        {TLS1_3_VERSION, NULL, "X448", "x448"},
        {TLS1_3_VERSION, NULL, "ffdhe2048", "ffdhe2048"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL_CTX *c = client_ctx(pki, pki, "client");
        if (cases[i].version == TLS1_2_VERSION) {
            assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
            assert_int_equal(SSL_CTX_set_cipher_list(c, cases[i].suites), 1);
        } else if (cases[i].suites != NULL) {
            assert_int_equal(SSL_CTX_set_ciphersuites(c, cases[i].suites), 1);
        }
        if (cases[i].groups != NULL)
            assert_int_equal(SSL_CTX_set1_groups_list(c, cases[i].groups), 1);
        struct outcome o = handshake(s, c, "localhost");
        assert_good(o);
        assert_int_equal(o.version, cases[i].version);
        if (cases[i].suites != NULL)
            assert_string_equal(o.cipher, cases[i].suites);
        if (cases[i].want_group != NULL && strcasecmp(o.group, cases[i].want_group) != 0)
            fail_msg("group %s: agreed %s", cases[i].groups, o.group);
        SSL_CTX_free(c);
    }
    SSL_CTX_free(s);
}

/* A self-signed certificate for key, DER-encoded into *der. */
static int self_signed_der(EVP_PKEY *key, const EVP_MD *md, unsigned char **der)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"t", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, md) > 0);
    *der = NULL;
    int n = i2d_X509(x, der);
    assert_true(n > 0);
    X509_free(x);
    return n;
}

/* Certificates with RSA, EC and Ed25519 keys parse in the TLS library
 * context with a usable public key of the right type (their own signature
 * verifies with it); a damaged one is refused. */
static void test_key_types_parse(void **state)
{
    (void)state;
    OSSL_LIB_CTX *lib;
    assert_ok(tls_libctx(&lib));
    struct {
        EVP_PKEY *key;
        const EVP_MD *md;
        const char *type;
    } cases[] = {
        {EVP_RSA_gen(2048), EVP_sha256(), "RSA"},
        {EVP_EC_gen("P-256"), EVP_sha256(), "EC"},
        {EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), NULL, "ED25519"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_non_null(cases[i].key);
        unsigned char *der;
        int n = self_signed_der(cases[i].key, cases[i].md, &der);
        const unsigned char *p = der;
        X509 *x = X509_new_ex(lib, NULL);
        assert_non_null(x);
        assert_non_null(d2i_X509(&x, &p, n));
        EVP_PKEY *pub = X509_get0_pubkey(x);
        assert_non_null(pub);
        assert_true(EVP_PKEY_is_a(pub, cases[i].type));
        assert_int_equal(X509_verify(x, pub), 1);
        X509_free(x);
        /* The same certificate with a byte in its middle flipped: it
         * fails to parse, or parses to a key that does not verify it;
         * never a crash. */
        unsigned char *bad = OPENSSL_memdup(der, (size_t)n);
        assert_non_null(bad);
        unsigned char *spki = bad + n / 2;
        spki[0] ^= 0xff;
        p = bad;
        x = X509_new_ex(lib, NULL);
        assert_non_null(x);
        if (d2i_X509(&x, &p, n) != NULL) {
            EVP_PKEY *k = X509_get0_pubkey(x);
            assert_true(k == NULL || X509_verify(x, k) != 1);
        }
        ERR_clear_error();
        X509_free(x);
        OPENSSL_free(bad);
        OPENSSL_free(der);
        EVP_PKEY_free(cases[i].key);
    }
}

static int secret_password(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    (void)u;
    return snprintf(buf, (size_t)size, "%s", "not-asked");
}

/* tls_use_key_file: the right key loads; a missing file, a file without a
 * key, an encrypted key (refused, not prompted for) and another key than
 * the certificate's are refused. */
static void test_use_key_file(void **state)
{
    (void)state;
    char crt[256], key[256], other[256], enc[256];
    SSL_CTX *ctx;
    assert_ok(tls_ctx_new(TLS_server_method(), &ctx));
    path(crt, sizeof(crt), pki, PKI_FILE_SERVER_CERT);
    path(key, sizeof(key), pki, PKI_FILE_SERVER_KEY);
    path(other, sizeof(other), pki, PKI_FILE_CLIENT_KEY);
    path(enc, sizeof(enc), tmp, "encrypted.key");
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);

    EVP_PKEY *k = read_key(pki, PKI_FILE_SERVER_KEY);
    FILE *f = fopen(enc, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, secret_password, NULL),
                     1);
    fclose(f);
    EVP_PKEY_free(k);

    assert_err(tls_use_key_file(ctx, "/nonexistent/vmseal/key.pem"), ERR_NOT_FOUND);
    assert_err(tls_use_key_file(ctx, crt), ERR_CRYPTO);
    assert_err(tls_use_key_file(ctx, enc), ERR_CRYPTO);
    assert_err(tls_use_key_file(ctx, other), ERR_CRYPTO);
    assert_ok(tls_use_key_file(ctx, key));
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
    ERR_clear_error();
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeat_is_cached),  cmocka_unit_test(test_refusal_not_cached),
        cmocka_unit_test(test_host_name_in_key),  cmocka_unit_test(test_expiry_ends_entry),
        cmocka_unit_test(test_eviction),          cmocka_unit_test(test_attach_refusals),
        cmocka_unit_test(test_tls12_and_tls13),   cmocka_unit_test(test_key_types_parse),
        cmocka_unit_test(test_use_key_file),      cmocka_unit_test(test_same_offer),
        cmocka_unit_test(test_suites_and_groups), cmocka_unit_test(test_set_keeps_four),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
