/*
 * tlsverify.h - a cache of verified peer certificate chains, for TLS
 * contexts that see the same peers again and again: vmseal-kms (vCenter
 * and its hosts open a new connection for nearly every request) and the
 * KMIP client (a new connection after every idle timeout).
 *
 * OpenSSL 3.0 verifies the peer's chain from scratch on every full
 * handshake (X509_verify_cert: path building through the trust store, the
 * checks of every certificate's extensions and validity, a signature
 * verification per link), about a fifth of a handshake's CPU on either
 * side. Its result depends on nothing but
 *
 *   - the certificates the peer sent (leaf and intermediates), byte for byte;
 *   - the trust store and verification parameters of the SSL_CTX, which
 *     vmseal sets up once and never changes while the context is in use;
 *   - the connection's own parameters: expected host names, e-mail, IP
 *     address, flags, depth, security level, and which side we are;
 *   - the time, through the certificates' validity periods.
 *
 * A successful verification is remembered under a SHA-256 of all of these
 * but the time, with the verified chain, until the earliest notAfter in
 * that chain and for at most max_age seconds; a handshake presenting the
 * same certificates with the same parameters gets that chain without the
 * work. Failures are never remembered: a refused peer is refused again,
 * in full, every time. The peer still proves that it holds the private key
 * on every handshake (its CertificateVerify, or the key exchange's
 * signature): libssl checks that apart from the chain, and the cache does
 * not touch it.
 *
 * Never answered from the cache, always verified in full: contexts with
 * CRL checks (revocation can change without the certificates changing) or
 * a fixed verification time. The key does not cover DANE's TLSA records:
 * do not attach a cache to a context whose connections enable DANE.
 *
 * The table is bounded by its capacity and shared by all threads using the
 * context. It is 4-way set-associative: up to 4 peers whose keys fall in
 * the same set are all kept; a fifth replaces the least recently used.
 */
#ifndef VMSEAL_KMIP_TLSVERIFY_H
#define VMSEAL_KMIP_TLSVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/result.h"

#define TLS_VCACHE_MAX_CAPACITY 65536
#define TLS_VCACHE_MAX_AGE_MAX (7u * 24 * 3600)

/* Makes ctx verify its peers through a cache of capacity entries (rounded
 * up to a power of two, 1..TLS_VCACHE_MAX_CAPACITY), each kept at most
 * max_age_s seconds (1..TLS_VCACHE_MAX_AGE_MAX). The cache lives and dies
 * with ctx. Call once per context, after its trust store and verification
 * parameters are set: ERR_INVALID_ARG for a context with a verify callback
 * (which may accept what verification refused: its verdict is not the
 * chain's), for a second call, or for out-of-range arguments. */
RESULT tls_vcache_attach(SSL_CTX *ctx, size_t capacity, unsigned max_age_s)
    __attribute__((nonnull));

/* How many verifications ctx answered from its cache (hits) and how many
 * it made in full (misses: new peers, expired entries, failures, bypasses).
 * Both 0 for a context without a cache. */
void tls_vcache_stats(const SSL_CTX *ctx, uint64_t *hits, uint64_t *misses)
    __attribute__((nonnull));

#endif
