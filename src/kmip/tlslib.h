/*
 * tlslib.h - the OpenSSL library context for TLS endpoints that make many
 * full handshakes: vmseal-kms, and the load generator that measures it.
 *
 * OpenSSL 3.0 decodes the public key of every certificate it parses
 * through its decoder framework, and builds that framework's context anew
 * for each one: it enumerates every decoder and key manager of every
 * provider in the library context and chains them (40 decoders in the
 * default provider of OpenSSL 3.0.19, 12 of them for SubjectPublicKeyInfo;
 * the rest for private keys, PEM, MSBLOB, PVK, ...). Under callgrind that
 * is 1.2 M instructions per certificate, about a fifth of a full
 * handshake's on either side, as each side parses the other's certificate;
 * with only the 12 it is 0.7 M (later OpenSSL releases cache the decoder
 * context: openssl/openssl#21426).
 *
 * For each certificate it also enumerates every key manager of the library
 * context, and that walk copies the context's whole store of fetched
 * algorithms (about 210 in the default context once libssl has fetched
 * its ciphers and digests: the default provider's 124 ciphers, 22
 * digests, ...).
 *
 * tls_libctx() is a library context whose one provider, "vmseal-tls",
 * passes OpenSSL's default provider through (the same implementations,
 * called with the default provider's own context) but offers only what
 * TLS and certificates use: the digests, ciphers, MAC and KDFs that libssl
 * fetches for its cipher suites, the key managers of certificate and key
 * exchange key types, and their DER SubjectPublicKeyInfo decoders (the
 * lists are in tlslib.c). An SSL_CTX in it offers the same cipher suites,
 * signature algorithms and groups as one in the default context
 * (tests/unit/test_kmip_tls.c checks it); certificates, trust stores and
 * handshakes work as there. Under callgrind, a new connection to
 * vmseal-kms costs the server 4.30 M instructions with only the decoders
 * filtered, 3.85 M with everything above (docs/performance.md). Private keys in
 * PEM do not decode in it, so load them with tls_use_key_file(), which
 * decodes in the default context.
 *
 * Created once per process, on first use, and kept until exit.
 */
#ifndef VMSEAL_KMIP_TLSLIB_H
#define VMSEAL_KMIP_TLSLIB_H

#include <openssl/ssl.h>

#include "core/result.h"

/* The context described above, in *out. ERR_CRYPTO if OpenSSL cannot set
 * it up (the default provider cannot be loaded). Thread-safe. */
RESULT tls_libctx(OSSL_LIB_CTX **out) __attribute__((nonnull));

/* A new SSL_CTX for method in tls_libctx(). */
RESULT tls_ctx_new(const SSL_METHOD *method, SSL_CTX **out) __attribute__((nonnull));

/* Loads the PEM private key at path (unencrypted) into ctx, decoding it in
 * the default library context; the file's text is held in secret memory
 * only. ERR_NOT_FOUND if the file does not exist, ERR_TOO_LARGE or ERR_IO
 * if it cannot be read as a key file, ERR_CRYPTO if it holds no key, an
 * encrypted one (never prompted for) or a key that ctx refuses. */
RESULT tls_use_key_file(SSL_CTX *ctx, const char *path) __attribute__((nonnull));

#endif
