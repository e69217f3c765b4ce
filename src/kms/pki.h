/*
 * pki.h - the development PKI of vmseal-kms: a small CA that lets a fresh
 * install speak mutually authenticated TLS (KMIP over TLS, port 5696) with
 * vCenter, ESXi and test clients, and the mapping from a client certificate to
 * the identity that owns objects.
 *
 * It is for development and evaluation. Production deployments bring
 * certificates from their own CA; nothing else in vmseal-kms depends on the
 * certificates having been made here.
 *
 * Files in the PKI directory (created 0700 if missing):
 *
 *   ca.crt      ca.key        the CA; self-signed, ECDSA P-256, 10 years
 *   server.crt  server.key    the KMS's TLS server certificate
 *   client.crt  client.key    a first client ("vmseal-client")
 *   NAME.crt    NAME.key      more clients, from pki_issue_client
 *
 * Keys are PKCS#8 PEM, unencrypted, mode 0600; certificates PEM, mode 0644.
 * Every file is written with file_write_atomic. Nothing here overwrites a
 * file: an existing certificate or key is an operator's, not ours to replace.
 *
 * Conventions: functions return a vs_result; ERR_EXISTS when a file would be
 * overwritten, ERR_INVALID_ARG for a bad name or malformed input,
 * ERR_AUTH when a CSR's signature does not verify, ERR_UNSUPPORTED for a key
 * type or size we refuse to certify, ERR_CRYPTO (with OpenSSL's reason in the
 * detail) when OpenSSL fails. The PKI directory must not be writable by group
 * or others (ERR_PERM): whoever can rename files in it can swap the CA key.
 */
#ifndef VMSEAL_KMS_PKI_H
#define VMSEAL_KMS_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/result.h"

/* File names inside the PKI directory, for the server's configuration. */
#define PKI_FILE_CA_CERT "ca.crt"
#define PKI_FILE_CA_KEY "ca.key"
#define PKI_FILE_SERVER_CERT "server.crt"
#define PKI_FILE_SERVER_KEY "server.key"
#define PKI_FILE_CLIENT_CERT "client.crt"
#define PKI_FILE_CLIENT_KEY "client.key"

/* The CN of the CA and of the first client certificate. */
#define PKI_CA_COMMON_NAME "vmseal-kms development CA"
#define PKI_CLIENT_COMMON_NAME "vmseal-client"

/* Lifetimes in days. 825 days is the longest leaf lifetime Apple platforms
 * accept for TLS server certificates (the CA/Browser Forum limit of 2018);
 * keeping every leaf within it means no client platform refuses them. */
#define PKI_CA_DAYS 3650
#define PKI_LEAF_DAYS 825

/* Validity starts this long before "now", so that a peer whose clock is a
 * little behind ours does not see a certificate that is not yet valid. */
#define PKI_BACKDATE_SECONDS 3600

/* Client names for pki_issue_client: [A-Za-z0-9._-]{1,PKI_NAME_MAX}, not
 * starting with '.'. 64 is ub-common-name (RFC 5280 Appendix A.1). */
#define PKI_NAME_MAX 64

/* The largest PEM CSR pki_sign_csr reads. A CSR with an RSA-8192 key and
 * many subjectAltNames fits in a few KiB. */
#define PKI_CSR_MAX ((size_t)64 * 1024)

/* RSA keys that pki_sign_csr certifies: NIST SP 800-131A Rev. 2 disallows
 * fewer than 2048 bits; more than 8192 only makes every handshake slower. */
#define PKI_RSA_MIN_BITS 2048
#define PKI_RSA_MAX_BITS 8192

/* A SHA-256 fingerprint in lower-case hex, with its NUL. */
#define PKI_FINGERPRINT_SIZE 65

/* Creates dir (mode 0700, its parent must exist) if missing, and in it a new
 * CA, a server certificate and a first client certificate with their keys
 * (the six files above). All keys are ECDSA P-256.
 *
 * hostname names the server: an RFC 1123 host name (letters, digits,
 * hyphens, dots; labels of 1..63, 253 in all; kept in lower case) or an IPv4
 * or IPv6 address. The server certificate's subjectAltName holds
 * DNS:localhost, IP:127.0.0.1, IP:::1 and the hostname (DNS or IP); its CN is
 * the hostname when that fits in 64 characters, else "vmseal-kms".
 *
 * ERR_EXISTS (nothing written) if any of the six files exists. If writing
 * fails halfway, the files this call created are removed again. */
RESULT pki_init(const char *dir, const char *hostname) __attribute__((nonnull));

/* Issues dir/NAME.crt and dir/NAME.key: a fresh ECDSA P-256 key and a client
 * certificate (CN=NAME, extendedKeyUsage clientAuth) signed by dir/ca.crt
 * and dir/ca.key. ERR_INVALID_ARG for a name outside [A-Za-z0-9._-]{1,64} or
 * starting with '.'; ERR_EXISTS (nothing written) if either file exists;
 * ERR_NOT_FOUND if the CA's files are missing. */
RESULT pki_issue_client(const char *dir, const char *name) __attribute__((nonnull));

/* Signs a PKCS#10 certificate request (RFC 2986) in PEM, csr_len bytes at
 * csr_pem (at most PKI_CSR_MAX): the "KMS signs vCenter's CSR" workflow.
 *
 * The request's self-signature must verify (ERR_AUTH otherwise). Its key must
 * be RSA of PKI_RSA_MIN_BITS..PKI_RSA_MAX_BITS bits, or EC on the named curve
 * P-256 or P-384 (ERR_UNSUPPORTED otherwise, with a detail saying why). The
 * certificate keeps the request's subject and copies its subjectAltName, if
 * any, and nothing else the request asks for: it is an end-entity
 * certificate for TLS clients and servers, valid PKI_LEAF_DAYS days.
 *
 * Appends the PEM certificate to out; on failure nothing is appended. csr_pem
 * must not lie inside out's memory (ERR_INVALID_ARG). */
RESULT pki_sign_csr(const char *dir, const uint8_t *csr_pem, size_t csr_len, struct buf *out)
    __attribute__((nonnull));

/* The identity vmseal-kms gives a client: the subject CN of its certificate,
 * in UTF-8, NUL-terminated in out. ERR_NOT_FOUND if the subject has no CN;
 * ERR_INVALID_ARG if it has more than one (the identity would be ambiguous),
 * or if the CN is empty, is not valid text or holds a control character (a
 * NUL would let "admin\0.evil" pass for "admin"); ERR_TOO_LARGE if it does
 * not fit in out_size bytes. cert is only read. */
RESULT pki_cert_identity(X509 *cert, char *out, size_t out_size) __attribute__((nonnull));

/* The lower-case hex SHA-256 of cert's DER encoding, as `openssl x509
 * -fingerprint -sha256` prints it without colons, NUL-terminated. */
RESULT pki_cert_fingerprint(X509 *cert, char out[PKI_FINGERPRINT_SIZE]) __attribute__((nonnull));

/* Building blocks of X.509 certificates, shared with pki_gen.c and
 * vmseald's API certificate (src/server/tls.c). */

/* A random positive serial number of 128 bits (RFC 5280 §4.1.2.2). */
RESULT pki_x509_serial(X509 *x) __attribute__((nonnull));
/* Adds one extension from a constant configuration value ("critical,CA:FALSE"). */
RESULT pki_x509_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
    __attribute__((nonnull));
/* Appends a dNSName (GEN_DNS) or iPAddress (GEN_IPADD) to names, skipping
 * a repeat. */
RESULT pki_x509_san_push(GENERAL_NAMES *names, int type, const char *value)
    __attribute__((nonnull));

#endif
