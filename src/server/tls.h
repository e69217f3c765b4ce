/*
 * tls.h - the certificate and the TLS settings of vmseald's HTTPS API.
 *
 * Files, in DATA_DIR/tls/ (mode 0700, not writable by group or others):
 *
 *   api.key   the private key, PKCS#8 PEM, unencrypted, mode 0600
 *   api.crt   its certificate, PEM, mode 0644
 *
 * The certificate made here is self-signed (clients trust it by its
 * fingerprint, or with --ca api.crt): ECDSA P-256, SHA-256, valid
 * API_TLS_DAYS days, subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1 and
 * the host's name (gethostname(2), when it is a valid RFC 1123 name),
 * basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
 * serverAuth. An operator may put a certificate of their own CA (and its
 * chain, leaf first) and key in their place: nothing here overwrites an
 * existing file.
 *
 * Conventions: functions return a vs_result; ERR_PERM for a directory or key
 * file that others could change or read, ERR_NOT_FOUND for a certificate
 * without its key, ERR_INVALID_ARG for files that do not parse or do not
 * belong together, ERR_CRYPTO (OpenSSL's reason in the detail) when OpenSSL
 * fails.
 */
#ifndef VMSEAL_SERVER_TLS_H
#define VMSEAL_SERVER_TLS_H

#include <openssl/types.h>

#include "core/result.h"

#define API_TLS_DIR "tls"
#define API_TLS_CERT "api.crt"
#define API_TLS_KEY "api.key"

/* 825 days: the longest leaf lifetime Apple platforms accept for a TLS
 * server certificate (the CA/Browser Forum limit of 2018). */
#define API_TLS_DAYS 825

/* A lower-case hex SHA-256 with its NUL: `openssl x509 -fingerprint
 * -sha256` prints the same digits, upper case with colons. */
#define API_TLS_FINGERPRINT_SIZE 65

/* Makes sure DATA_DIR/tls/api.crt and api.key exist, creating what is
 * missing: the directory, a new key and a certificate for it; or only the
 * certificate, for a key that is there without one. Never replaces a file.
 * Checks that the two belong together. Writes the certificate's SHA-256
 * fingerprint to fingerprint. data_dir must exist. */
RESULT api_tls_ensure(const char *data_dir, char fingerprint[API_TLS_FINGERPRINT_SIZE])
    __attribute__((nonnull));

/* A server context for the files of api_tls_ensure: TLS 1.2 and 1.3 only,
 * ECDHE with AEAD ciphers for TLS 1.2, the server's cipher preference,
 * session tickets and a session cache for cheap resumption, ALPN
 * "http/1.1", no renegotiation, no client certificates. *out is the
 * caller's (SSL_CTX_free). */
RESULT api_tls_context(const char *data_dir, SSL_CTX **out) __attribute__((nonnull));

#endif
