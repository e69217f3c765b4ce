/*
 * tlslib.c - the "vmseal-tls" provider and its library context (see
 * tlslib.h).
 *
 * A provider wrapping another is how OpenSSL's own tests restrict a
 * library context to some algorithms (test/filterprov.c). Ours answers
 * every query with the default provider's algorithm table, except the
 * decoders' (OSSL_OP_DECODER), where it answers with the default
 * provider's entries whose properties say "input=der" and
 * "structure=SubjectPublicKeyInfo". Its provider context is the default
 * provider's, so the implementations it hands out run exactly as they do
 * in the default context, and keys made by them are the same kind of
 * objects. Capabilities (TLS groups and signature algorithms) and
 * parameters are the default provider's too.
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

static OSSL_PROVIDER *tl_inner;     /* the default provider, default context */
static OSSL_ALGORITHM *tl_decoders; /* the subset we expose; NULL-terminated */
static OSSL_LIB_CTX *tl_ctx;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static const OSSL_ALGORITHM *tl_query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    if (op == OSSL_OP_DECODER) {
        *no_cache = 0;
        return tl_decoders;
    }
    return OSSL_PROVIDER_query_operation(tl_inner, op, no_cache);
}

static void tl_unquery(void *provctx, int op, const OSSL_ALGORITHM *algs)
{
    (void)provctx;
    if (op != OSSL_OP_DECODER)
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

static bool tl_wanted(const OSSL_ALGORITHM *a)
{
    const char *p = a->property_definition;
    return p != NULL && strstr(p, "input=der") != NULL &&
           strstr(p, "structure=SubjectPublicKeyInfo") != NULL;
}

/* OSSL_provider_init_fn, run by OSSL_PROVIDER_load in tl_setup. */
static int tl_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
    int no_cache = 0;
    size_t n = 0, k = 0;
    (void)handle;
    (void)in;

    tl_inner = OSSL_PROVIDER_load(NULL, "default");
    if (tl_inner == NULL)
        return 0;
    const OSSL_ALGORITHM *all = OSSL_PROVIDER_query_operation(tl_inner, OSSL_OP_DECODER, &no_cache);
    while (all != NULL && all[n].algorithm_names != NULL)
        n++;
    tl_decoders = calloc(n + 1, sizeof(*tl_decoders));
    if (tl_decoders == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tl_wanted(&all[i]))
            tl_decoders[k++] = all[i];
    /* A default provider whose properties read otherwise: all its decoders
     * (correct, only slower) rather than none. */
    if (k == 0)
        memcpy(tl_decoders, all, n * sizeof(*all));
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
