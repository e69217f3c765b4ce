/*
 * pki_gen.h - a TLS client's own identity and what it reads of a peer's:
 * a self-signed certificate or a certificate request (PKCS#10) with a fresh
 * ECDSA P-256 key, the SHA-256 fingerprint and a summary of a certificate,
 * and strict reading of the PEM texts an operator uploads.
 *
 * vmseald's standard key providers use this the way vCenter does when it
 * "establishes trust" with a KMS: vCenter makes a self-signed certificate
 * or a CSR for the KMS to sign, shows the KMS's certificate with its
 * fingerprint for the operator to confirm, and takes uploaded certificates
 * and keys. Nothing here touches files: certificates and requests are PEM
 * texts in bufs, private keys PEM texts in secret bufs (buf_alloc_secret).
 *
 * Certificates made here follow the RFC 5280 profile of pki.c: version 3,
 * 128-bit random serials, ecdsa-with-SHA256, validity from an hour ago.
 *
 * Conventions: functions return a vs_result. Input that is not what it
 * should be (no certificate, a damaged one, a key that is not the
 * certificate's, a bad name) is ERR_INVALID_ARG with a detail a person
 * understands; ERR_TOO_LARGE past PKI_GEN_PEM_MAX; ERR_CRYPTO only when
 * OpenSSL fails on input it should have taken. On failure nothing is
 * appended to an output buf.
 */
#ifndef VMSEAL_KMS_PKI_GEN_H
#define VMSEAL_KMS_PKI_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/buf.h"
#include "core/result.h"
#include "kms/pki.h"

/* The largest PEM text read: a CA bundle or a chain of a few certificates,
 * or one private key (an RSA-8192 key is 6.5 KiB). */
#define PKI_GEN_PEM_MAX ((size_t)64 * 1024)

/* subjectAltNames of a self-signed certificate. */
#define PKI_GEN_SANS_MAX 16

/* A subject or issuer as one line (RFC 4514), cut to fit. */
#define PKI_GEN_NAME_TEXT_MAX 256

/* "2026-11-23T10:00:00Z" (RFC 3339, UTC) and its NUL. */
#define PKI_GEN_TIME_LEN 21

/* What an operator is shown of a certificate. */
struct pki_cert_summary {
    char subject[PKI_GEN_NAME_TEXT_MAX];
    char issuer[PKI_GEN_NAME_TEXT_MAX];
    char not_before[PKI_GEN_TIME_LEN];
    char not_after[PKI_GEN_TIME_LEN];
    int64_t not_after_unix;
    char sha256[PKI_FINGERPRINT_SIZE]; /* lower-case hex of the DER */
    bool self_issued;                  /* subject == issuer */
};

/* A fresh ECDSA P-256 key and a self-signed end-entity certificate for it:
 * subject CN=cn (1..64 bytes of UTF-8, no control character), cA FALSE,
 * extendedKeyUsage clientAuth and serverAuth, valid `days` days
 * (1..PKI_CA_DAYS). sans (nsans <= PKI_GEN_SANS_MAX) become the
 * subjectAltName: each an IPv4 or IPv6 address, or a DNS name (RFC 1123).
 * Appends the certificate's PEM to cert_pem and the key's PKCS#8 PEM to
 * key_pem, which must be a secret buf (ERR_INVALID_ARG otherwise). */
RESULT pki_self_signed(const char *cn, const char *const *sans, size_t nsans, int days,
                       struct buf *cert_pem, struct buf *key_pem)
    __attribute__((nonnull(1, 5, 6)));

/* A fresh ECDSA P-256 key and a PKCS#10 request (RFC 2986) for CN=cn,
 * signed with it. Appends the request's PEM to csr_pem and the key's
 * PKCS#8 PEM to key_pem (a secret buf). */
RESULT pki_make_csr(const char *cn, struct buf *csr_pem, struct buf *key_pem)
    __attribute__((nonnull));

/* The SHA-256 fingerprint of the first certificate in a PEM text, as
 * pki_cert_fingerprint writes it. */
RESULT pki_pem_fingerprint(const char *pem, size_t len, char out[PKI_FINGERPRINT_SIZE])
    __attribute__((nonnull));

/* The summary of one certificate, or of the first in a PEM text. */
RESULT pki_cert_summary(X509 *cert, struct pki_cert_summary *out) __attribute__((nonnull));
RESULT pki_pem_summary(const char *pem, size_t len, struct pki_cert_summary *out)
    __attribute__((nonnull));

/* Reads every certificate of a PEM text strictly (at least one; each block
 * must parse; at most `max` of them) and appends them to out re-encoded,
 * in order: what is kept of an upload is the certificates and nothing else
 * that was pasted around them (a private key among them is refused).
 * *count, when not NULL, gets how many there were. */
RESULT pki_pem_certs_canonical(const char *pem, size_t len, size_t max, struct buf *out,
                               size_t *count) __attribute__((nonnull(1, 4)));

/* Reads an unencrypted private key (PEM, PKCS#8 or traditional; an
 * encrypted one is refused, never prompted for) and appends it re-encoded
 * as PKCS#8 PEM to out, a secret buf. */
RESULT pki_pem_key_canonical(const char *pem, size_t len, struct buf *out)
    __attribute__((nonnull));

/* OK if the first certificate of cert_pem holds the public key of the
 * private key key_pem; ERR_INVALID_ARG ("key mismatch: the private key is
 * not the certificate's ...") otherwise. */
RESULT pki_pem_key_matches(const char *cert_pem, size_t cert_len, const char *key_pem,
                           size_t key_len) __attribute__((nonnull));

/* Appends the PEM of cert to out. */
RESULT pki_cert_to_pem(X509 *cert, struct buf *out) __attribute__((nonnull));

/* A fingerprint as people write it (64 hex digits, either case, optionally
 * in pairs separated by ':', as `openssl x509 -fingerprint -sha256` prints
 * them, with or without its "sha256 Fingerprint=" prefix) into lower-case
 * hex. ERR_INVALID_ARG for anything else. */
RESULT pki_fingerprint_parse(const char *text, char out[PKI_FINGERPRINT_SIZE])
    __attribute__((nonnull));

#endif
