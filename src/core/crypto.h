/*
 * crypto.h - the cryptography vmseal uses, on OpenSSL 3 EVP only.
 *
 * No primitive is written here: each function is a thin, checked use of an
 * EVP cipher, MAC or KDF, with fixed sizes as named constants so that a key
 * of the wrong length cannot be passed by accident.
 *
 * Conventions:
 *   - all functions return a vs_result; ERR_AUTH means "wrong key or tampered
 *     data" and is the only error a caller should treat as a verdict on the
 *     data rather than on the system;
 *   - decryption releases no plaintext unless authentication succeeded: on
 *     failure the output is wiped before returning;
 *   - in-place operation (in == out) is allowed where stated;
 *   - functions that append to a struct buf refuse (ERR_INVALID_ARG) input
 *     that lies inside that buf's memory, which growing it could free.
 *
 * OpenSSL keeps expanded keys (AES key schedules) in its own heap, outside
 * secret memory: a process that holds keys must call
 * secret_harden_process() at start, so that no core dump can carry them.
 */
#ifndef VMSEAL_CORE_CRYPTO_H
#define VMSEAL_CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

#define CRYPTO_AES256_KEY_LEN 32
#define CRYPTO_GCM_IV_LEN 12
#define CRYPTO_GCM_TAG_LEN 16
#define CRYPTO_XTS_KEY_LEN 64 /* two AES-256 keys: data key || tweak key */
#define CRYPTO_XTS_BLOCK_LEN 16
#define CRYPTO_SHA256_LEN 32

/* crypto_seal output: iv || ciphertext || tag */
#define CRYPTO_SEAL_OVERHEAD (CRYPTO_GCM_IV_LEN + CRYPTO_GCM_TAG_LEN)

/* RFC 5649: the wrapped length of an n-byte key (n >= 1). */
#define CRYPTO_KWP_WRAPPED_LEN(n) (8 + (((size_t)(n) + 7) / 8) * 8)
#define CRYPTO_KWP_MAX_KEY_LEN 4096

/* Raises code at file:line with "<formatted text>: <OpenSSL's reason>" as
 * the detail, and empties OpenSSL's error queue so that a later failure is
 * not blamed on this one. For all code that calls OpenSSL directly. */
vs_result crypto_raise_openssl(enum err_code code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), nonnull(2, 4)));
#define CRYPTO_RAISE_OPENSSL(code, ...) \
    crypto_raise_openssl((code), __FILE__, __LINE__, __VA_ARGS__)

/* A PEM reader's pem_password_cb that never prompts: without one OpenSSL
 * asks on the terminal for an encrypted key's passphrase, and a server
 * would hang. An encrypted key is refused instead. */
int crypto_pem_no_password(char *buf, int size, int rwflag, void *u);

/* --- randomness --- */

/* Fills out with bytes from OpenSSL's public DRBG (nonces, identifiers). */
RESULT crypto_random(void *out, size_t len) __attribute__((nonnull));

/* Fills out from OpenSSL's private DRBG: for key material only. */
RESULT crypto_random_key(void *out, size_t len) __attribute__((nonnull));

/* --- AES-256-GCM --- */

/* Encrypts len bytes of pt into ct (same length; in place allowed) and
 * writes the 16-byte tag. The caller guarantees iv is never reused with key;
 * prefer crypto_seal, which draws it at random. */
RESULT crypto_gcm_seal(const uint8_t key[CRYPTO_AES256_KEY_LEN],
                       const uint8_t iv[CRYPTO_GCM_IV_LEN], const void *aad, size_t aad_len,
                       const void *pt, size_t len, uint8_t *ct, uint8_t tag[CRYPTO_GCM_TAG_LEN])
    __attribute__((nonnull(1, 2, 8)));

/* Decrypts and verifies. On ERR_AUTH, pt has been wiped. In place allowed. */
RESULT crypto_gcm_open(const uint8_t key[CRYPTO_AES256_KEY_LEN],
                       const uint8_t iv[CRYPTO_GCM_IV_LEN], const void *aad, size_t aad_len,
                       const void *ct, size_t len, const uint8_t tag[CRYPTO_GCM_TAG_LEN],
                       uint8_t *pt) __attribute__((nonnull(1, 2, 7)));

/* Seals pt under key with a random IV, appending iv || ct || tag to out. */
RESULT crypto_seal(const uint8_t key[CRYPTO_AES256_KEY_LEN], const void *aad, size_t aad_len,
                   const void *pt, size_t len, struct buf *out) __attribute__((nonnull(1, 6)));

/* Opens what crypto_seal wrote (all of in's remaining bytes), appending the
 * plaintext to out (which should be a secret buf when the plaintext is a
 * key). On failure nothing is appended and in's cursor has not moved. */
RESULT crypto_open(const uint8_t key[CRYPTO_AES256_KEY_LEN], const void *aad, size_t aad_len,
                   struct buf *in, struct buf *out) __attribute__((nonnull(1, 4, 5)));

/* --- AES key wrap with padding (RFC 5649) --- */

/* Wraps key_len (1..CRYPTO_KWP_MAX_KEY_LEN) bytes under a 16, 24 or 32-byte
 * KEK, appending CRYPTO_KWP_WRAPPED_LEN(key_len) bytes to out. */
RESULT crypto_kwp_wrap(const uint8_t *kek, size_t kek_len, const void *key, size_t key_len,
                       struct buf *out) __attribute__((nonnull));

/* Unwraps, checking RFC 5649's integrity check; ERR_AUTH on a wrong KEK or
 * tampered input. Appends the key to out (use a secret buf), which needs room
 * for wrapped_len bytes while it works (the key is 8 or more bytes less). */
RESULT crypto_kwp_unwrap(const uint8_t *kek, size_t kek_len, const void *wrapped,
                         size_t wrapped_len, struct buf *out) __attribute__((nonnull));

/* --- XTS-AES-256 with plain64 sector tweaks (dm-crypt, LUKS, QEMU) --- */

/* A keyed XTS context. Opaque. One thread at a time: concurrent calls on the
 * same context abort the process (they would silently mix tweaks). Give each
 * worker its own context. */
struct crypto_xts;

/* key is data key || tweak key; the two halves must differ. */
RESULT crypto_xts_new(const uint8_t key[CRYPTO_XTS_KEY_LEN], struct crypto_xts **out)
    __attribute__((nonnull));

/* Wipes and frees *x, sets *x = NULL; accepts NULL. */
void crypto_xts_free(struct crypto_xts **x);

/* Encrypts len bytes, a whole number of sector_size-byte sectors, the first
 * of which is number `sector`; each later sector's number is one more. The
 * tweak of sector n is n as 64-bit little-endian, zero-padded to 16 bytes
 * (dm-crypt's "plain64"). In place allowed. sector_size is a multiple of 16
 * in [16, 1 MiB]. */
RESULT crypto_xts_encrypt(struct crypto_xts *x, uint64_t sector, size_t sector_size, const void *in,
                          void *out, size_t len) __attribute__((nonnull));
RESULT crypto_xts_decrypt(struct crypto_xts *x, uint64_t sector, size_t sector_size, const void *in,
                          void *out, size_t len) __attribute__((nonnull));

/* --- hashing, MAC and key derivation --- */

RESULT crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
    __attribute__((nonnull(3)));

RESULT crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          uint8_t out[CRYPTO_SHA256_LEN]) __attribute__((nonnull(1, 5)));

/* Recomputes the MAC and compares in constant time: OK or ERR_AUTH. */
RESULT crypto_hmac_sha256_verify(const void *key, size_t key_len, const void *data, size_t len,
                                 const uint8_t mac[CRYPTO_SHA256_LEN])
    __attribute__((nonnull(1, 5)));

/* RFC 5869 HKDF-SHA256 (extract then expand) into out_len (<= 8160) bytes. */
RESULT crypto_hkdf_sha256(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
                          const void *info, size_t info_len, void *out, size_t out_len)
    __attribute__((nonnull(3, 7)));

/* RFC 5869 HKDF-Extract only: the 32-byte PRK. */
RESULT crypto_hkdf_sha256_extract(const void *salt, size_t salt_len, const void *ikm,
                                  size_t ikm_len, uint8_t prk[CRYPTO_SHA256_LEN])
    __attribute__((nonnull(3, 5)));

/* PBKDF2-HMAC-SHA256 (RFC 8018). iterations >= 1. */
RESULT crypto_pbkdf2_sha256(const void *password, size_t password_len, const void *salt,
                            size_t salt_len, uint32_t iterations, void *out, size_t out_len)
    __attribute__((nonnull(3, 6)));

#endif
