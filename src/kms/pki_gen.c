/*
 * pki_gen.c - a TLS client's own certificates and requests, and strict
 * reading of PEM texts. See pki_gen.h.
 *
 * Names that come from outside (a CN, a subjectAltName) are built as ASN.1
 * values and never pass through an X509V3 configuration string, where a
 * comma would add a name of the caller's choosing (as in pki.c).
 */
#include "kms/pki_gen.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/crypto.h"

/* RFC 5280 §4.1.2.2 and the CA/Browser Forum's 64 unpredictable bits: 128. */
/* RFC 1123 §2.1 via RFC 1035 §2.3.4. */
#define PKI_GEN_DNS_MAX 253
/* ub-common-name, RFC 5280 Appendix A.1. */
#define PKI_GEN_CN_MAX 64

#define PKI_GEN_FAIL(what) CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", (what))

#define ENSURE_OSSL_OUT(cond, what)  \
    do {                             \
        if (!(cond)) {               \
            rc = PKI_GEN_FAIL(what); \
            goto out;                \
        }                            \
    } while (0)

/* Raises code with a detail and leaves through out; OpenSSL's error queue
 * is emptied: the detail says what was wrong with the input. */
#define REFUSE_OUT(code, ...)         \
    do {                              \
        ERR_clear_error();            \
        rc = RAISE(code);             \
        rc = err_detail(__VA_ARGS__); \
        goto out;                     \
    } while (0)

/* Keys go only to secret memory (core/secret.h). */
static bool pki_gen_buf_is_secret(const struct buf *b)
{
    return (b->flags & BUF_SECRET) != 0;
}

/* Never prompts: an encrypted key is refused rather than read from a tty. */
static int pki_gen_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A read-only BIO over the caller's bytes (BIO_new_mem_buf does not copy,
 * so a key's PEM is parsed where it lies, in secret memory). */
static RESULT pki_gen_bio(const char *pem, size_t len, BIO **out)
{
    if (len == 0 || len > PKI_GEN_PEM_MAX) {
        RAISE(len == 0 ? ERR_INVALID_ARG : ERR_TOO_LARGE);
        return err_detail("a PEM text of %zu bytes; 1 to %zu are accepted", len, PKI_GEN_PEM_MAX);
    }
    *out = BIO_new_mem_buf(pem, (int)len);
    if (*out == NULL)
        return PKI_GEN_FAIL("BIO_new_mem_buf");
    return OK_RESULT;
}

/* Appends what a memory BIO holds to out, then wipes the BIO's copy (for
 * keys: whether BIO_free clears its buffer is OpenSSL's business). */
static RESULT pki_gen_bio_drain(BIO *bio, struct buf *out)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    vs_result rc = OK_RESULT;

    if (len <= 0 || data == NULL)
        rc = PKI_GEN_FAIL("BIO_get_mem_data");
    else
        rc = buf_write_bytes(out, data, (size_t)len);
    if (len > 0 && data != NULL)
        OPENSSL_cleanse(data, (size_t)len);
    return rc;
}

static RESULT pki_gen_key_new(EVP_PKEY **out)
{
    /* ECDSA P-256, as pki.c: 128-bit security, and cheap handshakes for a
     * client that opens a connection per health check. */
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL)
        return PKI_GEN_FAIL("generating an EC P-256 key");
    return OK_RESULT;
}

static RESULT pki_gen_key_pem(EVP_PKEY *key, struct buf *out)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL)
        return PKI_GEN_FAIL("BIO_new");
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        rc = PKI_GEN_FAIL("encoding a private key");
    /* Drained (and wiped) even after a half-written key; nothing is kept
     * of a failure. */
    size_t before = buf_len(out);
    vs_result drained = pki_gen_bio_drain(bio, out);
    if (is_ok(rc))
        rc = drained;
    if (!is_ok(rc))
        buf_rollback(out, before);
    BIO_free(bio);
    return rc;
}

vs_result pki_cert_to_pem(X509 *cert, struct buf *out)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio == NULL)
        return PKI_GEN_FAIL("BIO_new");
    if (PEM_write_bio_X509(bio, cert) != 1)
        rc = PKI_GEN_FAIL("encoding a certificate");
    else
        rc = pki_gen_bio_drain(bio, out);
    BIO_free(bio);
    return rc;
}

/* A CN as pki_gen.h allows it. */
static RESULT pki_gen_cn_check(const char *cn)
{
    size_t n = strnlen(cn, PKI_GEN_CN_MAX + 1);

    if (n == 0 || n > PKI_GEN_CN_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a common name is 1 to %d bytes", PKI_GEN_CN_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)cn[i];
        if (c < 0x20 || c == 0x7f) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("a common name holds no control character");
        }
    }
    return OK_RESULT;
}

static RESULT pki_gen_name_cn(const char *cn, X509_NAME **out)
{
    X509_NAME *name;

    GUARD(pki_gen_cn_check(cn));
    name = X509_NAME_new();
    if (name == NULL)
        return PKI_GEN_FAIL("X509_NAME_new");
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1) {
        X509_NAME_free(name);
        ERR_clear_error();
        RAISE(ERR_INVALID_ARG);
        return err_detail("the common name is not valid UTF-8");
    }
    *out = name;
    return OK_RESULT;
}

/* RFC 1123 §2.1: labels of letters, digits and hyphens, 1..63 long, not
 * starting or ending with a hyphen; 253 in all. */
static bool pki_gen_is_dns_name(const char *s)
{
    size_t len = strnlen(s, PKI_GEN_DNS_MAX + 1), label = 0;

    if (len == 0 || len > PKI_GEN_DNS_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label < 1 || label > 63 || s[i - label] == '-' || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* The subjectAltName of sans: addresses as iPAddress, names as dNSName. */
static RESULT pki_gen_sans(const char *const *sans, size_t nsans, GENERAL_NAMES **out)
{
    vs_result rc = OK_RESULT;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();

    if (names == NULL)
        return PKI_GEN_FAIL("sk_GENERAL_NAME_new_null");
    for (size_t i = 0; i < nsans; i++) {
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, sans[i], addr) == 1 || inet_pton(AF_INET6, sans[i], addr) == 1) {
            GUARD_OUT(pki_x509_san_push(names, GEN_IPADD, sans[i]));
        } else if (pki_gen_is_dns_name(sans[i])) {
            GUARD_OUT(pki_x509_san_push(names, GEN_DNS, sans[i]));
        } else {
            REFUSE_OUT(ERR_INVALID_ARG,
                       "subjectAltName %zu is neither an IP address nor a DNS name (RFC 1123)",
                       i + 1);
        }
    }
    *out = names;
    names = NULL;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

vs_result pki_self_signed(const char *cn, const char *const *sans, size_t nsans, int days,
                          struct buf *cert_pem, struct buf *key_pem)
{
    vs_result rc = OK_RESULT;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *subject = NULL;
    GENERAL_NAMES *san = NULL;
    X509V3_CTX ctx;
    time_t now = time(NULL);
    size_t cert_before = buf_len(cert_pem), key_before = buf_len(key_pem);

    ENSURE(pki_gen_buf_is_secret(key_pem), ERR_INVALID_ARG);
    if (days < 1 || days > PKI_CA_DAYS || nsans > PKI_GEN_SANS_MAX || (nsans > 0 && sans == NULL)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a self-signed certificate lasts 1 to %d days and has at most %d "
                          "subjectAltNames",
                          PKI_CA_DAYS, PKI_GEN_SANS_MAX);
    }
    GUARD_OUT(pki_gen_name_cn(cn, &subject));
    if (nsans > 0)
        GUARD_OUT(pki_gen_sans(sans, nsans, &san));
    GUARD_OUT(pki_gen_key_new(&key));
    x = X509_new();
    ENSURE_OSSL_OUT(x != NULL, "X509_new");
    ENSURE_OSSL_OUT(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
    GUARD_OUT(pki_x509_serial(x));
    ENSURE_OSSL_OUT(X509_set_subject_name(x, subject) == 1 && X509_set_issuer_name(x, subject) == 1,
                    "setting the names");
    ENSURE_OSSL_OUT(X509_time_adj_ex(X509_getm_notBefore(x), 0, -PKI_BACKDATE_SECONDS, &now) != NULL,
                    "setting notBefore");
    ENSURE_OSSL_OUT(X509_time_adj_ex(X509_getm_notAfter(x), days, 0, &now) != NULL,
                    "setting notAfter");
    ENSURE_OSSL_OUT(X509_set_pubkey(x, key) == 1, "X509_set_pubkey");

    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    /* An end entity (RFC 5280 §4.2.1.9). No keyUsage: the peer trusts this
     * certificate by putting it in its CA file, and OpenSSL accepts a
     * self-signed certificate as its own issuer (a trust anchor) only if
     * its keyUsage, when there is one, allows keyCertSign, which
     * §4.2.1.3 forbids with cA FALSE. Without the extension every usage is
     * allowed; the extendedKeyUsage still limits it to TLS. */
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_ext_key_usage, "clientAuth,serverAuth"));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
    if (san != NULL)
        ENSURE_OSSL_OUT(X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT) == 1,
                        "adding subjectAltName");
    ENSURE_OSSL_OUT(X509_sign(x, key, EVP_sha256()) > 0, "signing the certificate");

    GUARD_OUT(pki_cert_to_pem(x, cert_pem));
    GUARD_OUT(pki_gen_key_pem(key, key_pem));
out:
    if (!is_ok(rc)) {
        buf_rollback(cert_pem, cert_before);
        buf_rollback(key_pem, key_before);
    }
    X509_NAME_free(subject);
    GENERAL_NAMES_free(san);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

vs_result pki_make_csr(const char *cn, struct buf *csr_pem, struct buf *key_pem)
{
    vs_result rc = OK_RESULT;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    BIO *bio = NULL;
    size_t csr_before = buf_len(csr_pem), key_before = buf_len(key_pem);

    ENSURE(pki_gen_buf_is_secret(key_pem), ERR_INVALID_ARG);
    GUARD_OUT(pki_gen_name_cn(cn, &subject));
    GUARD_OUT(pki_gen_key_new(&key));
    req = X509_REQ_new();
    ENSURE_OSSL_OUT(req != NULL, "X509_REQ_new");
    /* RFC 2986 §4.1: version 0 (v1). No attributes: the signer decides
     * what the certificate is for (vmseal-kms gives clientAuth). */
    ENSURE_OSSL_OUT(X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1, "X509_REQ_set_version");
    ENSURE_OSSL_OUT(X509_REQ_set_subject_name(req, subject) == 1, "X509_REQ_set_subject_name");
    ENSURE_OSSL_OUT(X509_REQ_set_pubkey(req, key) == 1, "X509_REQ_set_pubkey");
    /* §3: signed with the key it asks to certify (proof of possession). */
    ENSURE_OSSL_OUT(X509_REQ_sign(req, key, EVP_sha256()) > 0, "signing the request");
    bio = BIO_new(BIO_s_mem());
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new");
    ENSURE_OSSL_OUT(PEM_write_bio_X509_REQ(bio, req) == 1, "encoding the request");
    GUARD_OUT(pki_gen_bio_drain(bio, csr_pem));
    GUARD_OUT(pki_gen_key_pem(key, key_pem));
out:
    if (!is_ok(rc)) {
        buf_rollback(csr_pem, csr_before);
        buf_rollback(key_pem, key_before);
    }
    BIO_free(bio);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

/* --- reading PEM texts --- */

/* The PEM labels of a certificate (RFC 7468 §5.1; "X509 CERTIFICATE" is
 * what OpenSSL's own older tools wrote). */
static bool pki_gen_is_cert_label(const char *name)
{
    return strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0;
}

/* Reads the next PEM block of bio as a certificate: *out NULL (OK) at the
 * end of the text. Every block must be a certificate whose DER fills it
 * exactly. */
static RESULT pki_gen_next_cert(BIO *bio, size_t index, X509 **out)
{
    vs_result rc = OK_RESULT;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    const unsigned char *p;
    long len = 0;

    *out = NULL;
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
        unsigned long e = ERR_peek_last_error();
        ERR_clear_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            return OK_RESULT; /* no more blocks */
        RAISE(ERR_INVALID_ARG);
        return err_detail("PEM block %zu is damaged (bad base64 or no END line)", index + 1);
    }
    if (strstr(name, "PRIVATE KEY") != NULL)
        REFUSE_OUT(ERR_INVALID_ARG,
                   "PEM block %zu is a private key, where certificates were expected: a key "
                   "goes in its own field",
                   index + 1);
    if (!pki_gen_is_cert_label(name))
        REFUSE_OUT(ERR_INVALID_ARG, "PEM block %zu is a \"%.40s\", not a CERTIFICATE", index + 1,
                   name);
    if (header[0] != '\0')
        REFUSE_OUT(ERR_INVALID_ARG, "PEM block %zu has headers: a certificate has none",
                   index + 1);
    p = data;
    *out = d2i_X509(NULL, &p, len);
    if (*out == NULL || p != data + len) {
        X509_free(*out);
        *out = NULL;
        REFUSE_OUT(ERR_INVALID_ARG, "PEM block %zu is not a valid X.509 certificate", index + 1);
    }
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    return rc;
}

/* The first certificate of a PEM text (ERR_INVALID_ARG if there is none). */
static RESULT pki_gen_first_cert(const char *pem, size_t len, X509 **out)
{
    BIO *bio = NULL;
    vs_result rc;

    GUARD(pki_gen_bio(pem, len, &bio));
    rc = pki_gen_next_cert(bio, 0, out);
    BIO_free(bio);
    GUARD(rc);
    if (*out == NULL) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("no certificate in the PEM text (no \"-----BEGIN CERTIFICATE-----\")");
    }
    return OK_RESULT;
}

vs_result pki_pem_certs_canonical(const char *pem, size_t len, size_t max, struct buf *out,
                                  size_t *count)
{
    vs_result rc = OK_RESULT;
    BIO *bio = NULL;
    X509 *x = NULL;
    size_t n = 0, before = buf_len(out);

    GUARD(pki_gen_bio(pem, len, &bio));
    for (;;) {
        GUARD_OUT(pki_gen_next_cert(bio, n, &x));
        if (x == NULL)
            break;
        if (n == max)
            REFUSE_OUT(ERR_INVALID_ARG, "more than %zu certificates in the PEM text", max);
        GUARD_OUT(pki_cert_to_pem(x, out));
        X509_free(x);
        x = NULL;
        n++;
    }
    if (n == 0)
        REFUSE_OUT(ERR_INVALID_ARG,
                   "no certificate in the PEM text (no \"-----BEGIN CERTIFICATE-----\")");
    if (count != NULL)
        *count = n;
out:
    if (!is_ok(rc))
        buf_rollback(out, before);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static RESULT pki_gen_read_key(const char *pem, size_t len, EVP_PKEY **out)
{
    BIO *bio = NULL;

    GUARD(pki_gen_bio(pem, len, &bio));
    *out = PEM_read_bio_PrivateKey(bio, NULL, pki_gen_no_passphrase, NULL);
    BIO_free(bio);
    if (*out == NULL) {
        ERR_clear_error();
        RAISE(ERR_INVALID_ARG);
        return err_detail("not an unencrypted PEM private key");
    }
    return OK_RESULT;
}

vs_result pki_pem_key_canonical(const char *pem, size_t len, struct buf *out)
{
    EVP_PKEY *key = NULL;
    vs_result rc;

    ENSURE(pki_gen_buf_is_secret(out), ERR_INVALID_ARG);
    GUARD(pki_gen_read_key(pem, len, &key));
    rc = pki_gen_key_pem(key, out);
    EVP_PKEY_free(key);
    return rc;
}

vs_result pki_pem_key_matches(const char *cert_pem, size_t cert_len, const char *key_pem,
                              size_t key_len)
{
    vs_result rc = OK_RESULT;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;

    GUARD_OUT(pki_gen_first_cert(cert_pem, cert_len, &cert));
    GUARD_OUT(pki_gen_read_key(key_pem, key_len, &key));
    /* EVP_PKEY_eq: 1 the same public key, 0 another, -1 another type,
     * -2 cannot compare: all but 1 refuse. */
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1)
        REFUSE_OUT(ERR_INVALID_ARG, "key mismatch: the private key is not the certificate's "
                                    "(the certificate was issued for another key)");
out:
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

vs_result pki_pem_fingerprint(const char *pem, size_t len, char out[PKI_FINGERPRINT_SIZE])
{
    X509 *cert = NULL;
    vs_result rc;

    GUARD(pki_gen_first_cert(pem, len, &cert));
    rc = pki_cert_fingerprint(cert, out);
    X509_free(cert);
    return rc;
}

/* RFC 3339 UTC from an ASN.1 time (UTCTime or GeneralizedTime). */
static RESULT pki_gen_time(const ASN1_TIME *t, char out[PKI_GEN_TIME_LEN], int64_t *unix_out)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        RAISE(ERR_INVALID_ARG);
        return err_detail("the certificate's validity does not decode");
    }
    if (strftime(out, PKI_GEN_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        BAIL(ERR_INTERNAL);
    if (unix_out != NULL)
        *unix_out = (int64_t)timegm(&tm);
    return OK_RESULT;
}

/* A name on one line, RFC 4514 style with UTF-8 kept as it is and control
 * characters escaped, cut to fit. */
static RESULT pki_gen_name_text(const X509_NAME *name, char out[PKI_GEN_NAME_TEXT_MAX])
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;

    out[0] = '\0';
    if (bio == NULL)
        return PKI_GEN_FAIL("BIO_new");
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        BIO_free(bio);
        return PKI_GEN_FAIL("printing a name");
    }
    len = BIO_get_mem_data(bio, &data);
    if (len > 0 && data != NULL)
        snprintf(out, PKI_GEN_NAME_TEXT_MAX, "%.*s",
                 (int)(len < PKI_GEN_NAME_TEXT_MAX ? len : PKI_GEN_NAME_TEXT_MAX - 1), data);
    BIO_free(bio);
    return OK_RESULT;
}

vs_result pki_cert_summary(X509 *cert, struct pki_cert_summary *out)
{
    memset(out, 0, sizeof(*out));
    GUARD(pki_gen_name_text(X509_get_subject_name(cert), out->subject));
    GUARD(pki_gen_name_text(X509_get_issuer_name(cert), out->issuer));
    GUARD(pki_gen_time(X509_get0_notBefore(cert), out->not_before, NULL));
    GUARD(pki_gen_time(X509_get0_notAfter(cert), out->not_after, &out->not_after_unix));
    GUARD(pki_cert_fingerprint(cert, out->sha256));
    out->self_issued = X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
    return OK_RESULT;
}

vs_result pki_pem_summary(const char *pem, size_t len, struct pki_cert_summary *out)
{
    X509 *cert = NULL;
    vs_result rc;

    GUARD(pki_gen_first_cert(pem, len, &cert));
    rc = pki_cert_summary(cert, out);
    X509_free(cert);
    return rc;
}

vs_result pki_fingerprint_parse(const char *text, char out[PKI_FINGERPRINT_SIZE])
{
    static const char prefix[] = "sha256 fingerprint=";
    size_t n = 0;
    const char *s = text;

    if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0)
        s += sizeof(prefix) - 1;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        /* A ':' only between pairs: "AB:CD", never "A:BCD" or "AB::CD". */
        if (c == ':' && n > 0 && n % 2 == 0 && s[i - 1] != ':' && s[i + 1] != '\0')
            continue;
        if (n == PKI_FINGERPRINT_SIZE - 1)
            goto bad;
        if (c >= '0' && c <= '9')
            out[n++] = c;
        else if (c >= 'a' && c <= 'f')
            out[n++] = c;
        else if (c >= 'A' && c <= 'F')
            out[n++] = (char)(c - 'A' + 'a');
        else
            goto bad;
    }
    if (n != PKI_FINGERPRINT_SIZE - 1)
        goto bad;
    out[n] = '\0';
    return OK_RESULT;
bad:
    out[0] = '\0';
    RAISE(ERR_INVALID_ARG);
    return err_detail("a SHA-256 fingerprint is 64 hexadecimal digits (pairs may be separated "
                      "by ':')");
}
