/*
 * tlslib.c - the "vmseal-tls" provider and its library context (see
 * tlslib.h).
 *
 * A provider wrapping another is how OpenSSL's own tests restrict a
 * library context to some algorithms (test/filterprov.c). Ours answers
 * every query with the default provider's algorithm table, except six:
 * digests, ciphers, MACs, KDFs, key managers and decoders, where it keeps
 * only what TLS and certificates use (the lists below; decoders: only the
 * DER SubjectPublicKeyInfo ones). For each public key it decodes, OpenSSL
 * 3.0 walks every key manager and decoder of the library context, and the
 * key manager walk copies the whole store of the context's fetched
 * algorithms (tlslib.h): the fewer there are, the cheaper each
 * certificate.
 *
 * Its provider context is the default provider's, so the implementations
 * it hands out run exactly as they do in the default context, and keys
 * made by them are the same kind of objects. Capabilities (TLS groups and
 * signature algorithms) and parameters are the default provider's too.
 */
#include "kmip/tlslib.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/file.h"

/* What the library context keeps of the default provider's algorithms, by
 * their first name there: what libssl 3.0 fetches, for every cipher suite,
 * group and signature algorithm it offers in the default context, and what
 * certificates name. tests/unit/test_kmip_tls.c checks that an SSL_CTX
 * offers the same suites, groups and signature algorithms in both. */

/* Digests of TLS PRFs, handshake hashes, signature algorithms and
 * certificate signatures. SHAKE: Ed448. */
static const char *const tl_digests[] = {
    "SHA1",         "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512", "SHA2-512/224",
    "SHA2-512/256", "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512", "SHAKE-128",
    "SHAKE-256",    "MD5",      "MD5-SHA1", NULL,
};
/* The record ciphers of libssl's cipher table (ssl/ssl_ciph.c), its
 * stitched CBC+HMAC ones, and AES-256-CBC of session tickets. */
static const char *const tl_ciphers[] = {
    "AES-128-CBC",
    "AES-256-CBC",
    "AES-128-GCM",
    "AES-256-GCM",
    "AES-128-CCM",
    "AES-256-CCM",
    "ChaCha20-Poly1305",
    "CAMELLIA-128-CBC",
    "CAMELLIA-256-CBC",
    "ARIA-128-GCM",
    "ARIA-256-GCM",
    "DES-EDE3-CBC",
    "AES-128-CBC-HMAC-SHA1",
    "AES-256-CBC-HMAC-SHA1",
    "AES-128-CBC-HMAC-SHA256",
    "AES-256-CBC-HMAC-SHA256",
    NULL,
};
/* HMAC: Finished messages, record MACs, session tickets. */
static const char *const tl_macs[] = {"HMAC", NULL};
static const char *const tl_kdfs[] = {"TLS1-PRF", "HKDF", "TLS13-KDF", NULL};
/* Key types of certificates (RSA, RSA-PSS, EC, ED25519, ED448, DSA), of
 * key exchange (EC, X25519, X448, DH for FFDHE groups), and HMAC, whose
 * keys libssl makes for the MAC of CBC cipher suites. */
static const char *const tl_key_types[] = {
    "RSA", "RSA-PSS", "EC", "ED25519", "ED448", "DSA", "X25519", "X448", "DH", "HMAC", NULL,
};
/* The DER SubjectPublicKeyInfo decoders of the certificate key types, and
 * "DER", which reads the structure and hands the key to them (tl_kept
 * checks the properties). */
static const char *const tl_decoders[] = {
    "RSA", "RSA-PSS", "EC", "ED25519", "ED448", "DSA", "DER", NULL,
};

static const struct tl_filter {
    int op;
    const char *const *names;
} tl_filters[] = {
    {OSSL_OP_DIGEST, tl_digests}, {OSSL_OP_CIPHER, tl_ciphers},    {OSSL_OP_MAC, tl_macs},
    {OSSL_OP_KDF, tl_kdfs},       {OSSL_OP_KEYMGMT, tl_key_types}, {OSSL_OP_DECODER, tl_decoders},
};
#define TL_NFILTERS (sizeof(tl_filters) / sizeof(tl_filters[0]))

static OSSL_PROVIDER *tl_inner;                /* the default provider, default context */
static OSSL_ALGORITHM *tl_tables[TL_NFILTERS]; /* the subsets; NULL-terminated */
static OSSL_LIB_CTX *tl_ctx;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

/* The filtered table for op, NULL if op is passed through. */
static const OSSL_ALGORITHM *tl_table(int op)
{
    for (size_t i = 0; i < TL_NFILTERS; i++)
        if (tl_filters[i].op == op)
            return tl_tables[i];
    return NULL;
}

static const OSSL_ALGORITHM *tl_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    const OSSL_ALGORITHM *t = tl_table(op);
    if (t != NULL) {
        *no_cache = 0;
        return t;
    }
    return OSSL_PROVIDER_query_operation(tl_inner, op, no_cache);
}

static void tl_unquery(void *provctx, int op, const OSSL_ALGORITHM *algs)
{
    (void)provctx;
    if (tl_table(op) == NULL)
        OSSL_PROVIDER_unquery_operation(tl_inner, op, algs);
}

static int tl_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb, void *arg)
{
    (void)provctx;
    return OSSL_PROVIDER_get_capabilities(tl_inner, capability, cb, arg);
}

static const OSSL_PARAM *tl_gettable_params(void *provctx)
{
    static const OSSL_PARAM none[] = {{NULL, 0, NULL, 0, 0}};
    (void)provctx;
    return none;
}

static int tl_get_params(void *provctx, OSSL_PARAM params[])
{
    (void)provctx;
    return OSSL_PROVIDER_get_params(tl_inner, params);
}

static void tl_teardown(void *provctx)
{
    (void)provctx; /* the tables live as long as the process */
}

static const OSSL_DISPATCH tl_dispatch[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))tl_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))tl_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))tl_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))tl_query},
    {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, (void (*)(void))tl_unquery},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))tl_capabilities},
    {0, NULL},
};

/* Whether the first of an algorithm's names (before the first ':') is one
 * of names. */
static bool tl_named(const OSSL_ALGORITHM *a, const char *const *names)
{
    for (; *names != NULL; names++) {
        size_t n = strlen(*names);
        if (strncmp(a->algorithm_names, *names, n) == 0 &&
            (a->algorithm_names[n] == '\0' || a->algorithm_names[n] == ':'))
            return true;
    }
    return false;
}

static bool tl_kept(const struct tl_filter *f, const OSSL_ALGORITHM *a)
{
    if (!tl_named(a, f->names))
        return false;
    if (f->op != OSSL_OP_DECODER)
        return true;
    const char *p = a->property_definition;
    return p != NULL && strstr(p, "input=der") != NULL &&
           strstr(p, "structure=SubjectPublicKeyInfo") != NULL;
}

/* A copy of the default provider's table for f->op, with only the entries
 * f keeps; all of them if it keeps none (a default provider whose names or
 * properties read otherwise: correct, only slower, rather than nothing).
 * NULL on allocation failure. */
static OSSL_ALGORITHM *tl_subset(const struct tl_filter *f)
{
    int no_cache = 0;
    size_t n = 0, k = 0;
    const OSSL_ALGORITHM *all = OSSL_PROVIDER_query_operation(tl_inner, f->op, &no_cache);
    while (all != NULL && all[n].algorithm_names != NULL)
        n++;
    OSSL_ALGORITHM *sub = calloc(n + 1, sizeof(*sub));
    if (sub == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (tl_kept(f, &all[i]))
            sub[k++] = all[i];
    if (k == 0 && n > 0)
        memcpy(sub, all, n * sizeof(*all));
    return sub;
}

/* OSSL_provider_init_fn, run by OSSL_PROVIDER_load in tl_setup. */
static int tl_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;

    tl_inner = OSSL_PROVIDER_load(NULL, "default");
    if (tl_inner == NULL)
        return 0;
    for (size_t i = 0; i < TL_NFILTERS; i++)
        if ((tl_tables[i] = tl_subset(&tl_filters[i])) == NULL)
            return 0;
    *provctx = OSSL_PROVIDER_get0_provider_ctx(tl_inner);
    *out = tl_dispatch;
    return 1;
}

static void tl_setup(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL)
        return;
    if (OSSL_PROVIDER_add_builtin(ctx, "vmseal-tls", tl_init) != 1 ||
        OSSL_PROVIDER_load(ctx, "vmseal-tls") == NULL) {
        OSSL_LIB_CTX_free(ctx);
        return;
    }
    tl_ctx = ctx;
}

RESULT tls_libctx(OSSL_LIB_CTX **out)
{
    (void)pthread_once(&tl_once, tl_setup);
    *out = tl_ctx;
    if (tl_ctx == NULL)
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "setting up the TLS library context");
    return OK_RESULT;
}

RESULT tls_ctx_new(const SSL_METHOD *method, SSL_CTX **out)
{
    OSSL_LIB_CTX *lib;

    *out = NULL;
    GUARD(tls_libctx(&lib));
    *out = SSL_CTX_new_ex(lib, NULL, method);
    if (*out == NULL)
        return CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "SSL_CTX_new");
    return OK_RESULT;
}

/* Key files are small; anything larger is not one. */
#define TLS_KEY_FILE_MAX (64u << 10)

RESULT tls_use_key_file(SSL_CTX *ctx, const char *path)
{
    vs_result rc = OK_RESULT;
    struct buf pem = {0};
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;

    /* The key's PEM goes to secret memory, wiped when freed, and is parsed
     * in place (BIO_new_mem_buf does not copy): no stdio buffer keeps it. */
    GUARD_OUT(buf_alloc_secret(&pem, 4096, TLS_KEY_FILE_MAX));
    rc = file_read_all(path, TLS_KEY_FILE_MAX, &pem);
    if (!is_ok(rc)) {
        err_detail("cannot read %s", path);
        goto out;
    }
    bio = BIO_new_mem_buf(buf_data(&pem), (int)buf_len(&pem));
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey_ex(bio, NULL, crypto_pem_no_password, NULL, NULL, NULL);
    if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s %s", "loading key", path);
out:
    EVP_PKEY_free(key); /* ctx keeps its own reference */
    BIO_free(bio);
    buf_free(&pem);
    return rc;
}
