/*
 * pki.c - the development PKI of vmseal-kms. See pki.h.
 *
 * Certificates follow the RFC 5280 profile: version 3, random positive
 * serials, SHA-256 signatures, the extensions a TLS stack checks (basic
 * constraints, key usage, extended key usage) and the key identifiers that
 * path building uses. Extensions with fixed values are written through
 * OpenSSL's X509V3 configuration strings, which are constants here; names
 * that come from outside (the hostname, a CSR's subjectAltName) are built as
 * ASN.1 values and never pass through a configuration string, where a comma
 * would add a name of the caller's choosing.
 */
#include "kms/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"

/* Bounds on what we read back from the PKI directory: a PEM certificate is
 * about 1 KiB, a P-256 key 250 bytes, an RSA-8192 key 6.5 KiB. */
#define PKI_FILE_MAX ((size_t)64 * 1024)

/* RFC 1123 §2.1 via RFC 1035 §2.3.4: 253 characters in the text form. */
#define PKI_HOSTNAME_MAX 253
#define PKI_LABEL_MAX 63

/* 128 random bits: RFC 5280 §4.1.2.2 allows up to 20 octets; the CA/Browser
 * Forum asks for at least 64 unpredictable bits, which is what kept chosen-
 * prefix collisions (the 2008 MD5 "rogue CA") from being repeated. */
#define PKI_SERIAL_BYTES 16

/* The server certificate's CN when the hostname is longer than
 * ub-common-name: the subjectAltName carries the name anyway, and it is the
 * subjectAltName that TLS clients check (RFC 6125 §6.4.4). */
#define PKI_SERVER_FALLBACK_CN "vmseal-kms"

/* --- errors --- */

#define PKI_FAIL(what) CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", (what))
#define PKI_REFUSE(code, what) CRYPTO_RAISE_OPENSSL((code), "%s", (what))

#define ENSURE_OSSL(cond, what)    \
    do {                           \
        if (!(cond))               \
            return PKI_FAIL(what); \
    } while (0)

#define ENSURE_OSSL_OUT(cond, what) \
    do {                            \
        if (!(cond)) {              \
            rc = PKI_FAIL(what);    \
            goto out;               \
        }                           \
    } while (0)

/* Raises code with a detail sentence and leaves through out. */
#define REFUSE_OUT(code, ...)         \
    do {                              \
        rc = RAISE(code);             \
        rc = err_detail(__VA_ARGS__); \
        goto out;                     \
    } while (0)

/* --- certificate profiles --- */

/* What a certificate may be used for: one row per kind we issue. */
struct pki_profile {
    const char *basic_constraints; /* X509V3 configuration values */
    const char *key_usage;
    const char *ext_key_usage; /* NULL: no extendedKeyUsage */
    int days;
};

enum pki_profile_id {
    PKI_PROFILE_CA,
    PKI_PROFILE_SERVER,
    PKI_PROFILE_CLIENT,
    PKI_PROFILE_CSR_RSA,
    PKI_PROFILE_CSR_EC,
};

static const struct pki_profile pki_profiles[] = {
    /* RFC 5280 §4.2.1.9: a CA's basicConstraints is critical with cA TRUE;
     * pathLenConstraint 0 because this CA signs end entities only, so its
     * key cannot be used to make an intermediate. §4.2.1.3: keyCertSign and
     * cRLSign, and CAs SHOULD mark keyUsage critical. No extendedKeyUsage:
     * §4.2.1.12 defines it for end entities. */
    [PKI_PROFILE_CA] = {"critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", NULL,
                        PKI_CA_DAYS},
    /* End entities: cA FALSE, so that no verifier treats them as issuers.
     * An ECDSA key in TLS only signs (the handshake, or ECDHE parameters):
     * digitalSignature is all it needs. */
    [PKI_PROFILE_SERVER] = {"CA:FALSE", "critical,digitalSignature", "serverAuth", PKI_LEAF_DAYS},
    [PKI_PROFILE_CLIENT] = {"CA:FALSE", "critical,digitalSignature", "clientAuth", PKI_LEAF_DAYS},
    /* A signed CSR serves vCenter as its KMIP client certificate, and as a
     * server certificate where the same peer also listens. An RSA key may be
     * used for TLS 1.2 RSA key transport: keyEncipherment. RFC 5480 §3 does
     * not allow keyEncipherment with an EC key, so EC leaves go without. */
    [PKI_PROFILE_CSR_RSA] = {"CA:FALSE", "critical,digitalSignature,keyEncipherment",
                             "serverAuth,clientAuth", PKI_LEAF_DAYS},
    [PKI_PROFILE_CSR_EC] = {"CA:FALSE", "critical,digitalSignature", "serverAuth,clientAuth",
                            PKI_LEAF_DAYS},
};

/* The names every server certificate carries, so that a local client can
 * connect by any of the usual spellings of "this machine". */
static const struct {
    int type;
    const char *value;
} pki_server_names[] = {
    {GEN_DNS, "localhost"},
    {GEN_IPADD, "127.0.0.1"},
    {GEN_IPADD, "::1"},
};

/* EC curves a CSR's key may use: NIST P-256 and P-384 are what TLS peers
 * (and vCenter) support everywhere. */
static const int pki_csr_curves[] = {NID_X9_62_prime256v1, NID_secp384r1};

/* --- names and paths --- */

static bool pki_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char pki_to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Client names become file names and CNs: a strict set, so that no name can
 * leave the directory ("../x"), hide (".x") or need quoting. */
static RESULT pki_name_check(const char *name)
{
    size_t len = strnlen(name, PKI_NAME_MAX + 1);
    bool ok = len >= 1 && len <= PKI_NAME_MAX && name[0] != '.';

    for (size_t i = 0; ok && i < len; i++)
        ok = pki_is_alnum(name[i]) || name[i] == '.' || name[i] == '_' || name[i] == '-';
    if (!ok) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("a client name is 1 to %d of A-Z a-z 0-9 . _ - and does not start "
                          "with '.'",
                          PKI_NAME_MAX);
    }
    return OK_RESULT;
}

/* Checks that hostname is an IP address or an RFC 1123 §2.1 host name
 * (labels of letters, digits and hyphens, 1..63 long, not beginning or ending
 * with a hyphen) and writes it in lower case to out (PKI_HOSTNAME_MAX + 1
 * bytes): DNS names compare without case (RFC 4343), so one spelling is kept.
 * The hostname is not echoed in the detail: it may hold anything. */
static RESULT pki_hostname_check(const char *hostname, char *out, size_t out_size, bool *is_ip)
{
    unsigned char addr[sizeof(struct in6_addr)];
    size_t len = strnlen(hostname, PKI_HOSTNAME_MAX + 1), label = 0;
    bool ok = len >= 1 && len <= PKI_HOSTNAME_MAX;

    ENSURE(out_size > PKI_HOSTNAME_MAX, ERR_INTERNAL);
    *is_ip =
        ok && (inet_pton(AF_INET, hostname, addr) == 1 || inet_pton(AF_INET6, hostname, addr) == 1);
    for (size_t i = 0; ok && !*is_ip && i <= len; i++) {
        char c = hostname[i];
        if (c == '.' || c == '\0') {
            ok = label >= 1 && label <= PKI_LABEL_MAX && hostname[i - label] != '-' &&
                 hostname[i - 1] != '-';
            label = 0;
        } else {
            ok = pki_is_alnum(c) || c == '-';
            label++;
        }
    }
    if (!ok) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("the hostname must be an IP address or a host name of letters, digits, "
                          "hyphens and dots (RFC 1123), at most %d characters",
                          PKI_HOSTNAME_MAX);
    }
    for (size_t i = 0; i < len; i++)
        out[i] = pki_to_lower(hostname[i]);
    out[len] = '\0';
    return OK_RESULT;
}

static RESULT pki_path(char *out, size_t size, const char *dir, const char *file)
{
    int n = snprintf(out, size, "%s/%s", dir, file);

    if (n < 0 || (size_t)n >= size) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("the path of %s in the PKI directory is too long", file);
    }
    return OK_RESULT;
}

/* Whoever can rename files in the PKI directory can put their own key in
 * place of ca.key, or a certificate of their choosing in place of ours, between
 * our writes and the server's reads: refuse a directory writable by group or
 * others. */
static RESULT pki_dir_check(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        int e = errno;
        RAISE(e == ENOENT ? ERR_NOT_FOUND : e == EACCES ? ERR_PERM : ERR_IO);
        err_detail("stat of the PKI directory %s", dir);
        return err_errno(e);
    }
    if (!S_ISDIR(st.st_mode)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s is not a directory", dir);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        RAISE(ERR_PERM);
        return err_detail("%s is writable by group or others (mode %03o): it would hold keys", dir,
                          (unsigned)(st.st_mode & 0777));
    }
    return OK_RESULT;
}

/* One file this module writes. */
struct pki_file {
    const char *name; /* in the PKI directory */
    const struct buf *content;
    mode_t mode;
};

/* ERR_EXISTS if any of the files exists (or is a dangling link). */
static RESULT pki_files_absent(const char *dir, const struct pki_file *files, size_t n)
{
    char path[PATH_MAX];
    struct stat st;

    for (size_t i = 0; i < n; i++) {
        GUARD(pki_path(path, sizeof(path), dir, files[i].name));
        if (lstat(path, &st) == 0) {
            RAISE(ERR_EXISTS);
            return err_detail("%s exists; refusing to overwrite it", path);
        }
        if (errno != ENOENT) {
            int e = errno;
            RAISE(e == EACCES ? ERR_PERM : ERR_IO);
            err_detail("lstat of %s", path);
            return err_errno(e);
        }
    }
    return OK_RESULT;
}

/* Writes the files in order. On failure, removes those this call wrote,
 * including a half-done one, so that the operator can simply run again:
 * pki_files_absent made sure that none of them existed before. (Another
 * process of the same user could create one in between; the directory is
 * not writable by anyone else, and this is a development tool.) */
static RESULT pki_files_write(const char *dir, const struct pki_file *files, size_t n)
{
    vs_result rc = OK_RESULT;
    char path[PATH_MAX];
    size_t done = 0;

    for (; done < n; done++) {
        GUARD_OUT(pki_path(path, sizeof(path), dir, files[done].name));
        GUARD_OUT(file_write_atomic(path, buf_data(files[done].content),
                                    buf_len(files[done].content), files[done].mode));
    }
    return OK_RESULT;
out:
    for (size_t i = 0; i <= done && i < n; i++) {
        int len = snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        if (len > 0 && (size_t)len < sizeof(path))
            (void)unlink(path);
    }
    return rc;
}

/* --- keys, PEM --- */

/* ECDSA P-256: a 128-bit security level, and signing about ten times faster
 * than RSA-2048, which matters because vCenter opens a new TLS connection for
 * nearly every request. */
static RESULT pki_key_new(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ENSURE_OSSL(*out != NULL, "generating an EC P-256 key");
    return OK_RESULT;
}

/* Appends the PKCS#8 (RFC 5958) PEM of key to out, a secret buf. Unencrypted:
 * the server must start unattended; the file is 0600 in a directory that only
 * its owner can write (pki_dir_check). */
static RESULT pki_key_pem(EVP_PKEY *key, struct buf *out)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len;

    ENSURE_OSSL(bio != NULL, "BIO_new");
    ENSURE_OSSL_OUT(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1,
                    "encoding a private key");
    len = BIO_get_mem_data(bio, &pem);
    ENSURE_OSSL_OUT(len > 0 && pem != NULL, "BIO_get_mem_data");
    GUARD_OUT(buf_write_bytes(out, pem, (size_t)len));
out:
    /* Wipe the BIO's copy ourselves, even after a half-written key: whether
     * BIO_free clears its buffer is OpenSSL's business, not a promise. */
    pem = NULL;
    len = BIO_get_mem_data(bio, &pem);
    if (len > 0 && pem != NULL)
        OPENSSL_cleanse(pem, (size_t)len);
    BIO_free(bio);
    return rc;
}

/* Appends the PEM of cert to out, all of it or nothing. */
static RESULT pki_cert_pem(X509 *cert, struct buf *out)
{
    vs_result rc = OK_RESULT;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long len;

    ENSURE_OSSL(bio != NULL, "BIO_new");
    ENSURE_OSSL_OUT(PEM_write_bio_X509(bio, cert) == 1, "encoding a certificate");
    len = BIO_get_mem_data(bio, &pem);
    ENSURE_OSSL_OUT(len > 0 && pem != NULL, "BIO_get_mem_data");
    GUARD_OUT(buf_write_bytes(out, pem, (size_t)len));
out:
    BIO_free(bio);
    return rc;
}

/* Loads dir/ca.crt and dir/ca.key and checks that they belong together, that
 * the certificate is a CA and that it has not expired. The key's PEM is read
 * into secret memory and parsed in place (BIO_new_mem_buf does not copy). */
static RESULT pki_ca_load(const char *dir, X509 **cert_out, EVP_PKEY **key_out)
{
    vs_result rc = OK_RESULT;
    char path[PATH_MAX];
    struct buf crt = {0}, key = {0};
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pkey = NULL;

    GUARD_OUT(pki_path(path, sizeof(path), dir, PKI_FILE_CA_CERT));
    GUARD_OUT(buf_alloc(&crt, 4096, PKI_FILE_MAX));
    GUARD_OUT(file_read_all(path, PKI_FILE_MAX, &crt));
    bio = BIO_new_mem_buf(buf_data(&crt), (int)buf_len(&crt));
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new_mem_buf");
    cert = PEM_read_bio_X509(bio, NULL, crypto_pem_no_password, NULL);
    if (cert == NULL) {
        rc = PKI_REFUSE(ERR_INVALID_ARG, "ca.crt is not a PEM certificate");
        goto out;
    }
    BIO_free(bio);
    bio = NULL;

    GUARD_OUT(pki_path(path, sizeof(path), dir, PKI_FILE_CA_KEY));
    GUARD_OUT(buf_alloc_secret(&key, 4096, PKI_FILE_MAX));
    GUARD_OUT(file_read_all(path, PKI_FILE_MAX, &key));
    bio = BIO_new_mem_buf(buf_data(&key), (int)buf_len(&key));
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new_mem_buf");
    pkey = PEM_read_bio_PrivateKey(bio, NULL, crypto_pem_no_password, NULL);
    if (pkey == NULL) {
        rc = PKI_REFUSE(ERR_INVALID_ARG, "ca.key is not an unencrypted PEM private key");
        goto out;
    }

    if (X509_check_private_key(cert, pkey) != 1) {
        ERR_clear_error();
        REFUSE_OUT(ERR_INVALID_ARG, "ca.key in %s is not the key of ca.crt", dir);
    }
    /* X509_check_ca: 1 for a v3 certificate with basicConstraints cA TRUE
     * (RFC 5280 §4.2.1.9); issuing under anything else makes leaves no
     * verifier accepts. */
    if (X509_check_ca(cert) != 1)
        REFUSE_OUT(ERR_INVALID_ARG, "ca.crt in %s is not a CA certificate", dir);
    /* -1: notAfter is in the past; 0: it does not parse. */
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
        REFUSE_OUT(ERR_INVALID_ARG, "ca.crt in %s has expired: make a new PKI", dir);

    *cert_out = cert;
    cert = NULL;
    *key_out = pkey;
    pkey = NULL;
out:
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    buf_free(&crt);
    buf_free(&key);
    return rc;
}

/* --- certificates --- */

/* RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. 128 random
 * bits read as unsigned are never negative and take at most 17 octets in DER
 * (a leading zero when the top bit is set). Zero, with probability 2^-128, is
 * not positive: it becomes 1. */
RESULT pki_x509_serial(X509 *x)
{
    vs_result rc = OK_RESULT;
    uint8_t rnd[PKI_SERIAL_BYTES];
    BIGNUM *bn = NULL;

    GUARD(crypto_random(rnd, sizeof(rnd)));
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    ENSURE_OSSL_OUT(bn != NULL, "BN_bin2bn");
    if (BN_is_zero(bn))
        ENSURE_OSSL_OUT(BN_one(bn) == 1, "BN_one");
    ENSURE_OSSL_OUT(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL, "BN_to_ASN1_INTEGER");
out:
    BN_free(bn);
    return rc;
}

/* Adds one extension with a constant configuration value. */
RESULT pki_x509_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return PKI_FAIL(OBJ_nid2ln(nid));
    ok = X509_add_ext(x, ext, -1); /* copies ext */
    X509_EXTENSION_free(ext);
    ENSURE_OSSL(ok == 1, "X509_add_ext");
    return OK_RESULT;
}

/* Makes and signs a certificate for subject_key under profile p.
 * issuer_cert NULL: self-signed with issuer_key (which is subject_key).
 * san, if not NULL, becomes the subjectAltName (critical if san_critical). */
static RESULT pki_cert_new(const struct pki_profile *p, const X509_NAME *subject,
                           EVP_PKEY *subject_key, GENERAL_NAMES *san, bool san_critical,
                           X509 *issuer_cert, EVP_PKEY *issuer_key, X509 **out)
{
    vs_result rc = OK_RESULT;
    X509 *x = X509_new();
    X509V3_CTX ctx;
    time_t now = time(NULL);

    ENSURE_OSSL(x != NULL, "X509_new");
    /* RFC 5280 §4.1.2.1: extensions need v3, encoded as the integer 2. */
    ENSURE_OSSL_OUT(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
    GUARD_OUT(pki_x509_serial(x));
    ENSURE_OSSL_OUT(X509_set_subject_name(x, subject) == 1, "X509_set_subject_name");
    /* §4.1.2.4: the issuer field is the issuer's subject, byte for byte, so
     * that verifiers chain on it. */
    ENSURE_OSSL_OUT(X509_set_issuer_name(x, issuer_cert != NULL ? X509_get_subject_name(issuer_cert)
                                                                : subject) == 1,
                    "X509_set_issuer_name");
    /* §4.1.2.5: X509_time_adj_ex writes UTCTime through 2049 and
     * GeneralizedTime from 2050, as the profile requires. Both ends are
     * counted from the same "now". */
    ENSURE_OSSL_OUT(X509_time_adj_ex(X509_getm_notBefore(x), 0, -PKI_BACKDATE_SECONDS, &now) !=
                        NULL,
                    "setting notBefore");
    ENSURE_OSSL_OUT(X509_time_adj_ex(X509_getm_notAfter(x), p->days, 0, &now) != NULL,
                    "setting notAfter");
    /* A leaf outliving its CA would only fail later and more confusingly:
     * end it with the CA. */
    if (issuer_cert != NULL &&
        ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer_cert)) > 0)
        ENSURE_OSSL_OUT(X509_set1_notAfter(x, X509_get0_notAfter(issuer_cert)) == 1,
                        "X509_set1_notAfter");
    ENSURE_OSSL_OUT(X509_set_pubkey(x, subject_key) == 1, "X509_set_pubkey");

    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer_cert != NULL ? issuer_cert : x, x, NULL, NULL, 0);
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_basic_constraints, p->basic_constraints));
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_key_usage, p->key_usage));
    if (p->ext_key_usage != NULL)
        GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_ext_key_usage, p->ext_key_usage));
    /* §4.2.1.2: the SHA-1 of the subjectPublicKey bits (method 1); MUST on a
     * CA, SHOULD on an end entity. */
    GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
    /* §4.2.1.1: MUST, except on a self-signed CA, where it MAY be omitted.
     * "always": fail rather than silently omit it if the issuer has no
     * subjectKeyIdentifier. */
    if (issuer_cert != NULL)
        GUARD_OUT(pki_x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (san != NULL)
        ENSURE_OSSL_OUT(X509_add1_ext_i2d(x, NID_subject_alt_name, san, san_critical ? 1 : 0,
                                          X509V3_ADD_DEFAULT) == 1,
                        "adding subjectAltName");
    /* ecdsa-with-SHA256 (RFC 5758 §3.2) under our P-256 CA. X509_sign returns
     * the signature's length, 0 on failure. */
    ENSURE_OSSL_OUT(X509_sign(x, issuer_key, EVP_sha256()) > 0, "signing the certificate");
    *out = x;
    x = NULL;
out:
    X509_free(x);
    return rc;
}

/* A subject of one CN (UTF8String; OpenSSL refuses more than the 64
 * characters of ub-common-name). */
static RESULT pki_name_cn(const char *cn, X509_NAME **out)
{
    X509_NAME *name = X509_NAME_new();

    ENSURE_OSSL(name != NULL, "X509_NAME_new");
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1) {
        X509_NAME_free(name);
        return PKI_FAIL("setting the subject CN");
    }
    *out = name;
    return OK_RESULT;
}

/* Appends a dNSName or iPAddress to names, skipping a repeat (the hostname
 * may be "localhost" or "127.0.0.1"). */
RESULT pki_x509_san_push(GENERAL_NAMES *names, int type, const char *value)
{
    vs_result rc = OK_RESULT;
    ASN1_STRING *s = NULL;
    GENERAL_NAME *gen = NULL;

    if (type == GEN_IPADD) {
        /* §4.2.1.6: 4 octets for IPv4, 16 for IPv6, in network order. */
        s = a2i_IPADDRESS(value);
        ENSURE_OSSL_OUT(s != NULL, "encoding an IP address");
    } else {
        s = ASN1_IA5STRING_new();
        ENSURE_OSSL_OUT(s != NULL && ASN1_STRING_set(s, value, -1) == 1, "encoding a DNS name");
    }
    gen = GENERAL_NAME_new();
    ENSURE_OSSL_OUT(gen != NULL, "GENERAL_NAME_new");
    GENERAL_NAME_set0_value(gen, type, s);
    s = NULL;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++)
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(names, i), gen) == 0)
            goto out;
    ENSURE_OSSL_OUT(sk_GENERAL_NAME_push(names, gen) > 0, "sk_GENERAL_NAME_push");
    gen = NULL;
out:
    GENERAL_NAME_free(gen);
    ASN1_STRING_free(s);
    return rc;
}

/* The server's subjectAltName: the local names, then the hostname. */
static RESULT pki_server_san(const char *host, bool host_is_ip, GENERAL_NAMES **out)
{
    vs_result rc = OK_RESULT;
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();

    ENSURE_OSSL(names != NULL, "sk_GENERAL_NAME_new_null");
    for (size_t i = 0; i < sizeof(pki_server_names) / sizeof(pki_server_names[0]); i++)
        GUARD_OUT(pki_x509_san_push(names, pki_server_names[i].type, pki_server_names[i].value));
    GUARD_OUT(pki_x509_san_push(names, host_is_ip ? GEN_IPADD : GEN_DNS, host));
    *out = names;
    names = NULL;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

/* A key and its certificate on their way to two files. */
struct pki_pair {
    EVP_PKEY *key;
    X509 *cert;
    struct buf key_pem; /* secret */
    struct buf cert_pem;
};

static void pki_pair_free(struct pki_pair *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    buf_free(&p->key_pem);
    buf_free(&p->cert_pem);
    *p = (struct pki_pair){0};
}

static RESULT pki_pair_encode(struct pki_pair *p)
{
    GUARD(buf_alloc_secret(&p->key_pem, 1024, PKI_FILE_MAX));
    GUARD(pki_key_pem(p->key, &p->key_pem));
    GUARD(buf_alloc(&p->cert_pem, 2048, PKI_FILE_MAX));
    return pki_cert_pem(p->cert, &p->cert_pem);
}

/* A fresh key and an end-entity certificate for it, CN=cn, under the CA. */
static RESULT pki_pair_issue(enum pki_profile_id profile, const char *cn, GENERAL_NAMES *san,
                             X509 *ca_cert, EVP_PKEY *ca_key, struct pki_pair *out)
{
    vs_result rc = OK_RESULT;
    X509_NAME *subject = NULL;

    GUARD(pki_key_new(&out->key));
    GUARD_OUT(pki_name_cn(cn, &subject));
    GUARD_OUT(pki_cert_new(&pki_profiles[profile], subject, out->key, san, false, ca_cert, ca_key,
                           &out->cert));
    GUARD_OUT(pki_pair_encode(out));
out:
    X509_NAME_free(subject);
    return rc;
}

/* --- the public functions --- */

vs_result pki_init(const char *dir, const char *hostname)
{
    vs_result rc = OK_RESULT;
    char host[PKI_HOSTNAME_MAX + 1];
    bool host_is_ip = false;
    struct pki_pair ca = {0}, server = {0}, client = {0};
    X509_NAME *subject = NULL;
    GENERAL_NAMES *san = NULL;
    /* Keys first: a crash in the middle leaves a key without its
     * certificate, never a certificate whose key is missing. */
    const struct pki_file files[] = {
        {PKI_FILE_CA_KEY, &ca.key_pem, 0600},
        {PKI_FILE_CA_CERT, &ca.cert_pem, 0644},
        {PKI_FILE_SERVER_KEY, &server.key_pem, 0600},
        {PKI_FILE_SERVER_CERT, &server.cert_pem, 0644},
        {PKI_FILE_CLIENT_KEY, &client.key_pem, 0600},
        {PKI_FILE_CLIENT_CERT, &client.cert_pem, 0644},
    };
    const size_t n_files = sizeof(files) / sizeof(files[0]);

    GUARD(pki_hostname_check(hostname, host, sizeof(host), &host_is_ip));
    GUARD(file_mkdir(dir, 0700));
    GUARD(pki_dir_check(dir));
    GUARD(pki_files_absent(dir, files, n_files));

    /* Everything is made in memory first: a failure of OpenSSL leaves no
     * file behind. */
    GUARD_OUT(pki_key_new(&ca.key));
    GUARD_OUT(pki_name_cn(PKI_CA_COMMON_NAME, &subject));
    GUARD_OUT(pki_cert_new(&pki_profiles[PKI_PROFILE_CA], subject, ca.key, NULL, false, NULL,
                           ca.key, &ca.cert));
    GUARD_OUT(pki_pair_encode(&ca));

    GUARD_OUT(pki_server_san(host, host_is_ip, &san));
    GUARD_OUT(pki_pair_issue(PKI_PROFILE_SERVER,
                             strlen(host) <= PKI_NAME_MAX ? host : PKI_SERVER_FALLBACK_CN, san,
                             ca.cert, ca.key, &server));
    GUARD_OUT(
        pki_pair_issue(PKI_PROFILE_CLIENT, PKI_CLIENT_COMMON_NAME, NULL, ca.cert, ca.key, &client));

    GUARD_OUT(pki_files_write(dir, files, n_files));
out:
    X509_NAME_free(subject);
    GENERAL_NAMES_free(san);
    pki_pair_free(&ca);
    pki_pair_free(&server);
    pki_pair_free(&client);
    return rc;
}

vs_result pki_issue_client(const char *dir, const char *name)
{
    vs_result rc = OK_RESULT;
    char crt_name[PKI_NAME_MAX + sizeof(".crt")], key_name[PKI_NAME_MAX + sizeof(".key")];
    struct pki_pair pair = {0};
    X509 *ca_cert = NULL;
    EVP_PKEY *ca_key = NULL;
    const struct pki_file files[] = {
        {key_name, &pair.key_pem, 0600},
        {crt_name, &pair.cert_pem, 0644},
    };
    const size_t n_files = sizeof(files) / sizeof(files[0]);

    GUARD(pki_name_check(name));
    /* Cannot be truncated: the name is at most PKI_NAME_MAX characters. */
    ENSURE(snprintf(crt_name, sizeof(crt_name), "%s.crt", name) > 0, ERR_INTERNAL);
    ENSURE(snprintf(key_name, sizeof(key_name), "%s.key", name) > 0, ERR_INTERNAL);
    GUARD(pki_dir_check(dir));
    GUARD(pki_files_absent(dir, files, n_files));

    GUARD_OUT(pki_ca_load(dir, &ca_cert, &ca_key));
    GUARD_OUT(pki_pair_issue(PKI_PROFILE_CLIENT, name, NULL, ca_cert, ca_key, &pair));
    GUARD_OUT(pki_files_write(dir, files, n_files));
out:
    pki_pair_free(&pair);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* Which profile a CSR's key gets, or ERR_UNSUPPORTED saying why not. */
static RESULT pki_csr_key_profile(EVP_PKEY *key, enum pki_profile_id *out)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits < PKI_RSA_MIN_BITS || bits > PKI_RSA_MAX_BITS) {
            RAISE(ERR_UNSUPPORTED);
            return err_detail("the CSR's RSA key has %d bits; %d to %d are accepted", bits,
                              PKI_RSA_MIN_BITS, PKI_RSA_MAX_BITS);
        }
        *out = PKI_PROFILE_CSR_RSA;
        return OK_RESULT;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = "", encoding[32] = "";
        size_t len = 0;
        int nid = NID_undef;

        /* RFC 5480 §2.1.1: PKIX keys name their curve. Explicit parameters
         * (how CVE-2020-0601 passed a forged curve off as P-256) would also
         * be copied into our certificate as they are: refused. */
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                           sizeof(encoding), &len) != 1 ||
            strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0 ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) != 1) {
            ERR_clear_error();
            RAISE(ERR_UNSUPPORTED);
            return err_detail("the CSR's EC key does not name its curve (RFC 5480 §2.1.1)");
        }
        nid = OBJ_sn2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
        for (size_t i = 0; i < sizeof(pki_csr_curves) / sizeof(pki_csr_curves[0]); i++) {
            if (nid == pki_csr_curves[i]) {
                *out = PKI_PROFILE_CSR_EC;
                return OK_RESULT;
            }
        }
        RAISE(ERR_UNSUPPORTED);
        return err_detail("the CSR's EC key is on curve %s; P-256 and P-384 are accepted", group);
    }
    RAISE(ERR_UNSUPPORTED);
    return err_detail("the CSR's key is %s; RSA (%d to %d bits) and EC P-256 or P-384 are accepted",
                      EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key)
                                                           : "of an unknown type",
                      PKI_RSA_MIN_BITS, PKI_RSA_MAX_BITS);
}

/* The subjectAltName a CSR asks for, decoded, or *out NULL if it asks for
 * none. Nothing else from the request's extensions is looked at: a CSR that
 * asks for cA TRUE or for keyCertSign gets what our profile says. */
static RESULT pki_csr_san(X509_REQ *req, GENERAL_NAMES **out)
{
    vs_result rc = OK_RESULT;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *names = NULL;
    int at;

    *out = NULL;
    if (exts == NULL) {
        /* OpenSSL 3 returns an empty stack when there is no extension
         * request (1.1 returned NULL): NULL now means that there is one and
         * it does not decode. Check rather than rely on either. */
        if (X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) < 0 &&
            X509_REQ_get_attr_by_NID(req, NID_ms_ext_req, -1) < 0) {
            ERR_clear_error();
            return OK_RESULT;
        }
        return PKI_REFUSE(ERR_INVALID_ARG, "the CSR's extension request does not decode");
    }
    at = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    if (at < 0)
        goto out;
    /* RFC 5280 §4.2: a certificate has at most one instance of an
     * extension; two in a request leave us to guess which was meant. */
    if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name, at) >= 0)
        REFUSE_OUT(ERR_INVALID_ARG, "the CSR asks for two subjectAltName extensions");
    names = X509V3_EXT_d2i(X509v3_get_ext(exts, at));
    if (names == NULL) {
        rc = PKI_REFUSE(ERR_INVALID_ARG, "the CSR's subjectAltName does not decode");
        goto out;
    }
    /* §4.2.1.6: GeneralNames is SIZE (1..MAX). */
    if (sk_GENERAL_NAME_num(names) < 1)
        REFUSE_OUT(ERR_INVALID_ARG, "the CSR's subjectAltName is empty");
    *out = names;
    names = NULL;
out:
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

vs_result pki_sign_csr(const char *dir, const uint8_t *csr_pem, size_t csr_len, struct buf *out)
{
    vs_result rc = OK_RESULT;
    BIO *bio = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *req_key; /* owned by req */
    const X509_NAME *subject;
    bool no_subject;
    enum pki_profile_id profile = PKI_PROFILE_CSR_RSA;
    GENERAL_NAMES *san = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL;

    if (csr_len == 0 || csr_len > PKI_CSR_MAX) {
        RAISE(csr_len == 0 ? ERR_INVALID_ARG : ERR_TOO_LARGE);
        return err_detail("a CSR of %zu bytes; 1 to %zu are accepted", csr_len, PKI_CSR_MAX);
    }
    ENSURE(!buf_overlaps(out, csr_pem, csr_len), ERR_INVALID_ARG);
    GUARD(pki_dir_check(dir));

    /* Read-only over the caller's bytes (len fits in an int: <= 64 KiB).
     * PEM_read_bio_X509_REQ also takes "NEW CERTIFICATE REQUEST", which
     * Windows and older VMware tools write. */
    bio = BIO_new_mem_buf(csr_pem, (int)csr_len);
    ENSURE_OSSL_OUT(bio != NULL, "BIO_new_mem_buf");
    req = PEM_read_bio_X509_REQ(bio, NULL, crypto_pem_no_password, NULL);
    if (req == NULL) {
        rc = PKI_REFUSE(ERR_INVALID_ARG, "not a PEM certificate request");
        goto out;
    }
    /* RFC 2986 §4.1: version is 0 (v1); anything else is not a request we
     * understand. */
    if (X509_REQ_get_version(req) != X509_REQ_VERSION_1)
        REFUSE_OUT(ERR_INVALID_ARG, "the CSR's version is %ld; only 0 (v1) exists",
                   X509_REQ_get_version(req));
    req_key = X509_REQ_get0_pubkey(req);
    if (req_key == NULL) {
        rc = PKI_REFUSE(ERR_UNSUPPORTED, "the CSR's public key cannot be read");
        goto out;
    }
    /* Key policy before the signature check: an RSA-16384 key is refused
     * without first spending time on its signature. */
    GUARD_OUT(pki_csr_key_profile(req_key, &profile));
    /* RFC 2986 §3: the request is signed with the key it asks to certify,
     * which proves that the requester holds it. X509_REQ_verify: 1 good, 0
     * bad, -1 could not be checked (a malformed signature): both refuse. */
    if (X509_REQ_verify(req, req_key) != 1) {
        rc = PKI_REFUSE(ERR_AUTH, "the CSR's signature does not verify");
        goto out;
    }
    GUARD_OUT(pki_csr_san(req, &san));
    subject = X509_REQ_get_subject_name(req);
    /* RFC 5280 §4.1.2.6: an empty subject is allowed only with a critical
     * subjectAltName that names the subject. */
    no_subject = subject == NULL || X509_NAME_entry_count(subject) == 0;
    if (no_subject && san == NULL)
        REFUSE_OUT(ERR_INVALID_ARG, "the CSR has neither a subject nor a subjectAltName");

    GUARD_OUT(pki_ca_load(dir, &ca_cert, &ca_key));
    GUARD_OUT(pki_cert_new(&pki_profiles[profile], subject, req_key, san, no_subject, ca_cert,
                           ca_key, &cert));
    GUARD_OUT(pki_cert_pem(cert, out));
out:
    BIO_free(bio);
    X509_REQ_free(req);
    GENERAL_NAMES_free(san);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    X509_free(cert);
    return rc;
}

vs_result pki_cert_identity(X509 *cert, char *out, size_t out_size)
{
    vs_result rc = OK_RESULT;
    const X509_NAME *subject = X509_get_subject_name(cert);
    unsigned char *utf8 = NULL;
    int at, len;

    ENSURE(out_size > 0, ERR_INVALID_ARG);
    out[0] = '\0';
    if (subject == NULL || (at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)) < 0) {
        RAISE(ERR_NOT_FOUND);
        return err_detail("the certificate's subject has no CN");
    }
    /* Two CNs: which one is the identity depends on who reads it. */
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("the certificate's subject has more than one CN");
    }
    /* Converts any of the string types a CN may have (UTF8String,
     * PrintableString, BMPString, ...) to UTF-8, refusing invalid encodings. */
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
    if (len < 0)
        return PKI_REFUSE(ERR_INVALID_ARG, "the certificate's CN is not valid text");
    if (len == 0)
        REFUSE_OUT(ERR_INVALID_ARG, "the certificate's CN is empty");
    /* A NUL would make "admin\0.evil.example" compare equal to "admin" in
     * C (the 2009 null-prefix attacks); other control characters have no
     * place in a name either. */
    for (int i = 0; i < len; i++)
        if (utf8[i] < 0x20 || utf8[i] == 0x7f)
            REFUSE_OUT(ERR_INVALID_ARG, "the certificate's CN holds a control character");
    if ((size_t)len >= out_size)
        REFUSE_OUT(ERR_TOO_LARGE, "the certificate's CN is %d bytes; %zu fit", len, out_size - 1);
    memcpy(out, utf8, (size_t)len);
    out[len] = '\0';
out:
    OPENSSL_free(utf8);
    return rc;
}

vs_result pki_cert_fingerprint(X509 *cert, char out[PKI_FINGERPRINT_SIZE])
{
    vs_result rc;
    unsigned char *der = NULL;
    uint8_t digest[CRYPTO_SHA256_LEN];
    int len = i2d_X509(cert, &der);

    ENSURE_OSSL(len > 0 && der != NULL, "encoding the certificate");
    rc = crypto_sha256(der, (size_t)len, digest);
    OPENSSL_free(der);
    GUARD(rc);
    return hex_encode(digest, sizeof(digest), out, PKI_FINGERPRINT_SIZE);
}
