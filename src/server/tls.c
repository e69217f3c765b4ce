/*
 * tls.c - the API's certificate and TLS context. See tls.h.
 *
 * The certificate follows the RFC 5280 profile as src/kms/pki.c does for the
 * KMS (random positive serial, v3, SHA-256, key identifiers); it is
 * self-signed because the API has no CA of its own to chain to: clients pin
 * it (its fingerprint) or trust the file. The host's name comes from
 * gethostname(2) and is encoded as an ASN.1 value, never through an
 * OpenSSL configuration string, where a comma would add a name.
 */
#include "server/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/file.h"
#include "core/log.h"
#include "kms/pki.h"
#include "vm/vmutil.h"

/* What we read back: a PEM certificate chain of a few certificates, or an
 * RSA-8192 key, fits many times over. */
#define TLS_FILE_MAX ((size_t)64 * 1024)

/* Validity starts an hour back, so that a client whose clock is a little
 * behind does not see a certificate that is not yet valid. */
#define TLS_BACKDATE_SECONDS 3600

/* RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 128 random
 * bits (the CA/Browser Forum asks for at least 64 unpredictable ones). */

/* RFC 1123 §2.1 via RFC 1035 §2.3.4. */
#define TLS_HOSTNAME_MAX 253
#define TLS_LABEL_MAX 63

/* ub-common-name (RFC 5280 Appendix A.1). */
#define TLS_CN_MAX 64
#define TLS_FALLBACK_CN "vmseald"

/* TLS 1.2 suites: ECDHE (forward secrecy) with an AEAD, for an ECDSA key
 * (ours) or an RSA key (an operator's). TLS 1.3's suites are all AEAD with
 * (EC)DHE; OpenSSL's default list is kept. */
#define TLS_CIPHERS_12 "ECDHE+AESGCM:ECDHE+CHACHA20"

/* Sessions kept for resumption by id (TLS 1.2 clients without tickets),
 * and the lifetime of a session or ticket, in seconds. */
#define TLS_SESSION_CACHE_SIZE 4096
#define TLS_SESSION_TIMEOUT 3600

#define TLS_FAIL(what) CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", (what))

#define ENSURE_OSSL_OUT(cond, what) \
    do {                            \
        if (!(cond)) {              \
            rc = TLS_FAIL(what);    \
            goto out;               \
        }                           \
    } while (0)

/* The local names every certificate made here carries. */
static const struct {
    int type;
    const char *value;
} tls_local_names[] = {
    {GEN_DNS, "localhost"},
    {GEN_IPADD, "127.0.0.1"},
    {GEN_IPADD, "::1"},
};

/* --- files and the directory --- */

struct tls_paths {
    char dir[VM_PATH_MAX];
    char cert[VM_PATH_MAX];
    char key[VM_PATH_MAX];
};

static RESULT tls_paths_make(const char *data_dir, struct tls_paths *p)
{
    GUARD(vm_path(p->dir, sizeof p->dir, "%s/%s", data_dir, API_TLS_DIR));
    GUARD(vm_path(p->cert, sizeof p->cert, "%s/%s", p->dir, API_TLS_CERT));
    return vm_path(p->key, sizeof p->key, "%s/%s", p->dir, API_TLS_KEY);
}

/* Whoever can rename files in the directory can swap the key: it must be
 * ours and not writable by group or others. */
static RESULT tls_dir_check(const char *dir)
{
    struct stat st;

    if (lstat(dir, &st) != 0) {
        int e = errno;
        RAISE(e == ENOENT ? ERR_NOT_FOUND : ERR_IO);
        err_detail("stat of %s", dir);
        return err_errno(e);
    }
    if (!S_ISDIR(st.st_mode)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s is not a directory", dir);
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        RAISE(ERR_PERM);
        return err_detail("%s must belong to vmseald's user and not be writable by group or "
                          "others (it is mode %03o): it holds the API's key",
                          dir, (unsigned)(st.st_mode & 0777));
    }
    return OK_RESULT;
}

/* *exists: whether path is there (a dangling link counts: it is not ours
 * to replace). */
static RESULT tls_file_exists(const char *path, bool *exists)
{
    struct stat st;

    if (lstat(path, &st) == 0) {
        *exists = true;
        return OK_RESULT;
    }
    if (errno == ENOENT) {
        *exists = false;
        return OK_RESULT;
    }
    int e = errno;
    RAISE(e == EACCES ? ERR_PERM : ERR_IO);
    err_detail("lstat of %s", path);
    return err_errno(e);
}

/* A PEM reader's passphrase callback that never prompts (OpenSSL would ask
 * on the terminal for an encrypted key, and a daemon would hang). */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Loads the key from path, read into secret memory and parsed in place.
 * Refuses a key file that group or others may read. */
static RESULT tls_key_load(const char *path, EVP_PKEY **out)
{
    vs_result rc = OK_RESULT;
    struct buf pem = {0};
    struct stat st;
    BIO *bio = NULL;

    *out = NULL;
    if (stat(path, &st) == 0 && (st.st_mode & 0077) != 0) {
        RAISE(ERR_PERM);
        return err_detail("%s is readable or writable by group or others (mode %03o): "
                          "chmod 600 it",
                          path, (unsigned)(st.st_mode & 0777));
    }
    GUARD_OUT(buf_alloc_secret(&pem, 1024, TLS_FILE_MAX));
    GUARD_OUT(file_read_all(path, TLS_FILE_MAX, &pem));
    bio = BIO_new_mem_buf(buf_data(&pem), (int)buf_len(&pem));
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new_mem_buf");
    *out = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
    if (*out == NULL) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_INVALID_ARG, "%s is not an unencrypted PEM private key",
                                  path);
        goto out;
    }
out:
    BIO_free(bio);
    buf_free(&pem); /* wipes */
    return rc;
}

/* The first certificate of path (the leaf of a chain). */
static RESULT tls_cert_load(const char *path, X509 **out)
{
    vs_result rc = OK_RESULT;
    struct buf pem = {0};
    BIO *bio = NULL;

    *out = NULL;
    GUARD_OUT(buf_alloc(&pem, 2048, TLS_FILE_MAX));
    GUARD_OUT(file_read_all(path, TLS_FILE_MAX, &pem));
    bio = BIO_new_mem_buf(buf_data(&pem), (int)buf_len(&pem));
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new_mem_buf");
    *out = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL);
    if (*out == NULL)
        rc = CRYPTO_RAISE_OPENSSL(ERR_INVALID_ARG, "%s is not a PEM certificate", path);
out:
    BIO_free(bio);
    buf_free(&pem);
    return rc;
}

/* The PKCS#8 (RFC 5958) PEM of key, written 0600. The BIO's copy is wiped
 * by us: whether BIO_free clears it is OpenSSL's business, not a promise. */
static RESULT tls_key_write(EVP_PKEY *key, const char *path)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len;

    if (bio == NULL)
        return TLS_FAIL("BIO_new");
    ENSURE_OSSL_OUT(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1,
                    "encoding the private key");
    len = BIO_get_mem_data(bio, &pem);
    ENSURE_OSSL_OUT(len > 0 && pem != NULL, "BIO_get_mem_data");
    GUARD_OUT(file_write_atomic(path, pem, (size_t)len, 0600));
out:
    pem = NULL;
    len = BIO_get_mem_data(bio, &pem);
    if (len > 0 && pem != NULL)
        OPENSSL_cleanse(pem, (size_t)len);
    BIO_free(bio);
    return rc;
}

static RESULT tls_cert_write(X509 *cert, const char *path)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len;

    if (bio == NULL)
        return TLS_FAIL("BIO_new");
    ENSURE_OSSL_OUT(PEM_write_bio_X509(bio, cert) == 1, "encoding the certificate");
    len = BIO_get_mem_data(bio, &pem);
    ENSURE_OSSL_OUT(len > 0 && pem != NULL, "BIO_get_mem_data");
    /* Public: clients copy it to trust the API. */
    GUARD_OUT(file_write_atomic(path, pem, (size_t)len, 0644));
out:
    BIO_free(bio);
    return rc;
}

/* --- the certificate --- */

static bool tls_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The host's name, lower case (RFC 4343: DNS names compare without case),
 * if it is an RFC 1123 §2.1 name or an IP address; else "" (a name that
 * would not be a valid dNSName is left out, not guessed at). */
static void tls_hostname(char out[TLS_HOSTNAME_MAX + 1], bool *is_ip)
{
    char name[TLS_HOSTNAME_MAX + 2] = "";
    unsigned char addr[sizeof(struct in6_addr)];
    size_t len, label = 0;
    bool ok;

    out[0] = '\0';
    *is_ip = false;
    if (gethostname(name, sizeof name - 1) != 0)
        return;
    name[sizeof name - 1] = '\0';
    len = strlen(name);
    ok = len >= 1 && len <= TLS_HOSTNAME_MAX;
    *is_ip = ok && (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1);
    for (size_t i = 0; ok && !*is_ip && i <= len; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            ok = label >= 1 && label <= TLS_LABEL_MAX && name[i - label] != '-' &&
                 name[i - 1] != '-';
            label = 0;
        } else {
            ok = tls_is_alnum(c) || c == '-';
            label++;
        }
    }
    if (!ok) {
        *is_ip = false;
        return;
    }
    for (size_t i = 0; i <= len; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
}

/* A self-signed server certificate for key. */
static RESULT tls_cert_new(EVP_PKEY *key, X509 **out)
{
    vs_result rc = OK_RESULT;
    char host[TLS_HOSTNAME_MAX + 1];
    bool host_is_ip;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    GENERAL_NAMES *san = sk_GENERAL_NAME_new_null();
    X509V3_CTX ctx;
    time_t now = time(NULL);

    *out = NULL;
    ENSURE_OSSL_OUT(x != NULL && name != NULL && san != NULL, "allocating a certificate");
    tls_hostname(host, &host_is_ip);
    const char *cn = host[0] != '\0' && strlen(host) <= TLS_CN_MAX ? host : TLS_FALLBACK_CN;
    ENSURE_OSSL_OUT(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                               (const unsigned char *)cn, -1, -1, 0) == 1,
                    "setting the subject CN");
    /* RFC 5280 §4.1.2.1: extensions need v3. */
    ENSURE_OSSL_OUT(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
    GUARD_OUT(pki_x509_serial(x));
    ENSURE_OSSL_OUT(X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1,
                    "setting the names");
    ENSURE_OSSL_OUT(X509_time_adj_ex(X509_getm_notBefore(x), 0, -TLS_BACKDATE_SECONDS, &now) !=
                            NULL &&
                        X509_time_adj_ex(X509_getm_notAfter(x), API_TLS_DAYS, 0, &now) != NULL,
                    "setting the validity");
    ENSURE_OSSL_OUT(X509_set_pubkey(x, key) == 1, "X509_set_pubkey");

    memset(&ctx, 0, sizeof ctx);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    /* An end entity: no verifier may take it for an issuer. An ECDSA key
     * in TLS only signs: digitalSignature is all it needs. */
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_ext_key_usage, "serverAuth"));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
    /* Equal to the subject key identifier: verifiers see at once that the
     * certificate is its own issuer. */
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
    for (size_t i = 0; i < sizeof tls_local_names / sizeof tls_local_names[0]; i++)
        GUARD_OUT(pki_x509_san_push(san, tls_local_names[i].type, tls_local_names[i].value));
    if (host[0] != '\0')
        GUARD_OUT(pki_x509_san_push(san, host_is_ip ? GEN_IPADD : GEN_DNS, host));
    ENSURE_OSSL_OUT(X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT) == 1,
                    "adding subjectAltName");
    /* ecdsa-with-SHA256 (RFC 5758 §3.2). Returns the signature's length. */
    ENSURE_OSSL_OUT(X509_sign(x, key, EVP_sha256()) > 0, "signing the certificate");
    *out = x;
    x = NULL;
out:
    X509_free(x);
    X509_NAME_free(name);
    GENERAL_NAMES_free(san);
    return rc;
}

/* --- the public functions --- */

vs_result api_tls_ensure(const char *data_dir, char fingerprint[API_TLS_FINGERPRINT_SIZE])
{
    vs_result rc = OK_RESULT;
    struct tls_paths p;
    bool have_cert = false, have_key = false;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;

    fingerprint[0] = '\0';
    GUARD(tls_paths_make(data_dir, &p));
    GUARD(file_mkdir(p.dir, 0700));
    GUARD(tls_dir_check(p.dir));
    GUARD(tls_file_exists(p.cert, &have_cert));
    GUARD(tls_file_exists(p.key, &have_key));

    if (have_cert && !have_key) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("%s exists without its key %s: put the key there, or remove the "
                          "certificate to have a new pair made",
                          p.cert, p.key);
    }
    if (have_key) {
        GUARD_OUT(tls_key_load(p.key, &key));
    } else {
        /* ECDSA P-256: 128-bit security, and a handshake signature ten
         * times cheaper than RSA-2048's. */
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ENSURE_OSSL_OUT(key != NULL, "generating an EC P-256 key");
        /* The key first: a crash in between leaves a key without its
         * certificate, which the next call completes. */
        GUARD_OUT(tls_key_write(key, p.key));
        log_info("API key created", LOG_S("path", p.key));
    }
    if (have_cert) {
        GUARD_OUT(tls_cert_load(p.cert, &cert));
    } else {
        GUARD_OUT(tls_cert_new(key, &cert));
        GUARD_OUT(tls_cert_write(cert, p.cert));
        log_info("API certificate created", LOG_S("path", p.cert));
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        RAISE(ERR_INVALID_ARG);
        rc = err_detail("%s is not the key of %s", p.key, p.cert);
        goto out;
    }
    GUARD_OUT(pki_cert_fingerprint(cert, fingerprint));
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* ALPN (RFC 7301): HTTP/1.1 is what evhttp speaks. A client that offers
 * only something else (h2) goes on without ALPN and finds out. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

vs_result api_tls_context(const char *data_dir, SSL_CTX **out)
{
    vs_result rc = OK_RESULT;
    struct tls_paths p;
    SSL_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    static const unsigned char sid_ctx[] = "vmseald-api";

    *out = NULL;
    GUARD(tls_paths_make(data_dir, &p));
    GUARD(tls_dir_check(p.dir));
    ctx = SSL_CTX_new(TLS_server_method());
    ENSURE_OSSL_OUT(ctx != NULL, "SSL_CTX_new");
    /* RFC 8996: TLS 1.0 and 1.1 are deprecated. */
    ENSURE_OSSL_OUT(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1,
                    "setting the minimum TLS version");
    ENSURE_OSSL_OUT(SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) == 1, "setting the ciphers");
    /* Session tickets stay on (OpenSSL's default): a client that comes
     * back resumes without a full handshake, and the ticket keys are
     * random per process. No client certificate is asked for, so a
     * ticket holds nothing about who the client is: the API
     * authenticates every request by its token or SO_PEERCRED.
     *
     * SSL_OP_IGNORE_UNEXPECTED_EOF: clients that close without
     * close_notify are common; HTTP/1.1 frames every message
     * (Content-Length), so a truncation cannot pass for a whole one. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    ENSURE_OSSL_OUT(SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) == 1,
                    "SSL_CTX_set_session_id_context");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
    /* An operator's certificate may come with its chain, leaf first. */
    if (SSL_CTX_use_certificate_chain_file(ctx, p.cert) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_INVALID_ARG, "loading the certificate %s", p.cert);
        goto out;
    }
    GUARD_OUT(tls_key_load(p.key, &key));
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rc = CRYPTO_RAISE_OPENSSL(ERR_INVALID_ARG, "%s is not the key of %s", p.key, p.cert);
        goto out;
    }
    *out = ctx;
    ctx = NULL;
out:
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return rc;
}
