/*
 * backup.c - the backup file of a native provider: its name, id and root,
 * encrypted under a key derived from a passphrase.
 *
 * Layout (integers big-endian), version 1:
 *
 *   magic        8  "VMSEALKB"
 *   version      2  1
 *   kdf          1  1 = scrypt (RFC 7914)
 *   log2(N)      1  15 when written; 14..20 accepted
 *   r            4  8 when written; 1..32 accepted
 *   p            4  1 when written; 1..16 accepted
 *   salt length  1  32 when written; 16..64 accepted
 *   salt
 *   iv          12  AES-256-GCM nonce
 *   ct length    4  1..1024
 *   ---------------- everything above is the header, the AAD of the GCM
 *   ciphertext      AES-256-GCM(key = scrypt(passphrase, salt, N, r, p),
 *                               aad = header) of the contents
 *   tag         16
 *
 *   contents: name length (1) || name || id length (1) || id || root (32)
 *
 * The KDF parameters are bounded before any work is done (a file that asks
 * for 2^40 iterations or gigabytes of memory is refused at once, not
 * obeyed), and authenticated with everything else once the key is
 * derived. A wrong magic gives ERR_INVALID_ARG ("not a backup"), an unknown
 * version ERR_UNSUPPORTED; anything else that is not exactly right (a
 * wrong passphrase, a flipped bit anywhere, a truncated or extended file,
 * parameters out of bounds) gives ERR_AUTH, and nothing of the contents is
 * released.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/crypto.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"

static const uint8_t keyprov_backup_magic[8] = {'V', 'M', 'S', 'E', 'A', 'L', 'K', 'B'};
#define KEYPROV_BACKUP_VERSION 1
#define KEYPROV_BACKUP_KDF_SCRYPT 1
#define KEYPROV_BACKUP_SALT_LEN 32
#define KEYPROV_BACKUP_SALT_MIN 16
#define KEYPROV_BACKUP_SALT_MAX 64
#define KEYPROV_BACKUP_CT_MAX 1024
#define KEYPROV_BACKUP_PASSPHRASE_MAX 4096

struct keyprov_scrypt_params {
    uint8_t log2_n;
    uint32_t r, p;
};

/* Whether the parameters are within what a backup may ask for: checked on
 * a file's say-so before any memory or time is spent. */
static bool keyprov_scrypt_in_bounds(const struct keyprov_scrypt_params *s)
{
    uint64_t n, mem, work;

    if (s->log2_n < KEYPROV_BACKUP_LOG2_N_MIN || s->log2_n > KEYPROV_BACKUP_LOG2_N_MAX ||
        s->r < 1 || s->r > KEYPROV_BACKUP_R_MAX || s->p < 1 || s->p > KEYPROV_BACKUP_P_MAX)
        return false;
    n = (uint64_t)1 << s->log2_n;
    /* OpenSSL's scrypt uses 128 r (N + p + 2) bytes; every factor is
     * bounded above, so none of this overflows. */
    mem = 128 * (uint64_t)s->r * (n + s->p + 2);
    work = n * s->r * s->p;
    return mem <= KEYPROV_BACKUP_MAXMEM && work <= KEYPROV_BACKUP_WORK_MAX;
}

/* scrypt (RFC 7914) through OpenSSL's EVP_KDF. Kept here, next to its only
 * user; it moves to core/crypto.h when a second one appears. */
static vs_result keyprov_scrypt(const void *passphrase, size_t passphrase_len, const uint8_t *salt,
                                size_t salt_len, const struct keyprov_scrypt_params *s,
                                uint8_t out[CRYPTO_AES256_KEY_LEN])
{
    vs_result rc = OK_RESULT;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    uint64_t n = (uint64_t)1 << s->log2_n, maxmem = KEYPROV_BACKUP_MAXMEM;
    uint32_t r = s->r, p = s->p;

    ENSURE(keyprov_scrypt_in_bounds(s), ERR_INVALID_ARG);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)passphrase,
                                          passphrase_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL || EVP_KDF_derive(ctx, out, CRYPTO_AES256_KEY_LEN, params) != 1) {
        secret_wipe(out, CRYPTO_AES256_KEY_LEN);
        rc = CRYPTO_RAISE_OPENSSL(ERR_CRYPTO, "%s", "scrypt");
    }
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

static vs_result keyprov_backup_header(struct buf *out, const struct keyprov_scrypt_params *s,
                                       const uint8_t *salt, size_t salt_len,
                                       const uint8_t iv[CRYPTO_GCM_IV_LEN], uint32_t ct_len)
{
    GUARD(buf_write_bytes(out, keyprov_backup_magic, sizeof(keyprov_backup_magic)));
    GUARD(buf_write_u16(out, KEYPROV_BACKUP_VERSION));
    GUARD(buf_write_u8(out, KEYPROV_BACKUP_KDF_SCRYPT));
    GUARD(buf_write_u8(out, s->log2_n));
    GUARD(buf_write_u32(out, s->r));
    GUARD(buf_write_u32(out, s->p));
    GUARD(buf_write_u8(out, (uint8_t)salt_len));
    GUARD(buf_write_bytes(out, salt, salt_len));
    GUARD(buf_write_bytes(out, iv, CRYPTO_GCM_IV_LEN));
    return buf_write_u32(out, ct_len);
}

vs_result keyprov_backup_encode(const char *name, const char *id,
                                const uint8_t root[KEYPROV_ROOT_LEN], const void *passphrase,
                                size_t passphrase_len, struct buf *out)
{
    vs_result rc = OK_RESULT;
    const struct keyprov_scrypt_params s = {KEYPROV_BACKUP_LOG2_N, KEYPROV_BACKUP_R,
                                            KEYPROV_BACKUP_P};
    uint8_t salt[KEYPROV_BACKUP_SALT_LEN], iv[CRYPTO_GCM_IV_LEN], tag[CRYPTO_GCM_TAG_LEN];
    size_t start = buf_len(out), header_at, name_len = strlen(name), id_len = strlen(id);
    struct buf plain = {0};
    void *key = NULL;
    uint8_t *ct;

    ENSURE(name_len < KEYPROV_NAME_MAX && id_len == KEYPROV_UUID_LEN, ERR_INVALID_ARG);
    ENSURE(passphrase_len <= KEYPROV_BACKUP_PASSPHRASE_MAX, ERR_TOO_LARGE);
    GUARD(buf_alloc_secret(&plain, 0, KEYPROV_BACKUP_CT_MAX));
    GUARD_OUT(buf_write_u8(&plain, (uint8_t)name_len));
    GUARD_OUT(buf_write_bytes(&plain, name, name_len));
    GUARD_OUT(buf_write_u8(&plain, (uint8_t)id_len));
    GUARD_OUT(buf_write_bytes(&plain, id, id_len));
    GUARD_OUT(buf_write_bytes(&plain, root, KEYPROV_ROOT_LEN));

    GUARD_OUT(crypto_random(salt, sizeof(salt)));
    GUARD_OUT(crypto_random(iv, sizeof(iv)));
    GUARD_OUT(secret_alloc(CRYPTO_AES256_KEY_LEN, &key));
    GUARD_OUT(keyprov_scrypt(passphrase, passphrase_len, salt, sizeof(salt), &s, key));

    header_at = buf_len(out);
    GUARD_OUT(keyprov_backup_header(out, &s, salt, sizeof(salt), iv, (uint32_t)buf_len(&plain)));
    size_t header_len = buf_len(out) - header_at;
    GUARD_OUT(buf_reserve(out, buf_len(&plain), &ct));
    /* After buf_reserve, which may have moved the memory: the header is
     * found again from its offset. */
    GUARD_OUT(crypto_gcm_seal(key, iv, buf_data(out) + header_at, header_len, buf_data(&plain),
                              buf_len(&plain), ct, tag));
    GUARD_OUT(buf_write_bytes(out, tag, sizeof(tag)));
out:
    if (!is_ok(rc))
        buf_rollback(out, start);
    secret_free(&key);
    buf_free(&plain);
    return rc;
}

static vs_result keyprov_backup_bad(const char *why)
{
    RAISE(ERR_AUTH);
    return err_detail("the backup does not open: %s", why);
}

/* The contents, read strictly from the decrypted bytes. */
static vs_result keyprov_backup_read_contents(struct buf *plain, struct keyprov_backup_contents *c)
{
    uint8_t name_len, id_len;
    const uint8_t *p;

    if (!is_ok(buf_read_u8(plain, &name_len)) || name_len == 0 || name_len >= KEYPROV_NAME_MAX ||
        !is_ok(buf_read_ptr(plain, name_len, &p)))
        return keyprov_backup_bad("its provider name is malformed");
    memcpy(c->name, p, name_len);
    c->name[name_len] = '\0';
    if (!is_ok(buf_read_u8(plain, &id_len)) || id_len != KEYPROV_UUID_LEN ||
        !is_ok(buf_read_ptr(plain, id_len, &p)))
        return keyprov_backup_bad("its provider id is malformed");
    memcpy(c->id, p, id_len);
    c->id[id_len] = '\0';
    if (!is_ok(buf_read_bytes(plain, c->root, KEYPROV_ROOT_LEN)) || buf_remaining(plain) != 0)
        return keyprov_backup_bad("its root is malformed");
    if (strlen(c->name) != name_len || !is_ok(keyprov_check_name(c->name)) ||
        !keyprov_is_uuid(c->id))
        return keyprov_backup_bad("its provider name or id is not valid");
    return OK_RESULT;
}

vs_result keyprov_backup_parse(const void *file, size_t file_len, struct keyprov_backup_parsed *out)
{
    struct buf in;
    const uint8_t *magic;
    uint16_t version;
    uint8_t kdf, salt_len;
    uint32_t ct_len;

    memset(out, 0, sizeof(*out));
    buf_view(&in, file, file_len);
    if (!is_ok(buf_read_ptr(&in, sizeof(keyprov_backup_magic), &magic)) ||
        memcmp(magic, keyprov_backup_magic, sizeof(keyprov_backup_magic)) != 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("not a vmseal key provider backup");
    }
    if (!is_ok(buf_read_u16(&in, &version)))
        return keyprov_backup_bad("truncated");
    if (version != KEYPROV_BACKUP_VERSION) {
        RAISE(ERR_UNSUPPORTED);
        return err_detail("backup format version %u; this vmseal reads version %d", version,
                          KEYPROV_BACKUP_VERSION);
    }
    if (!is_ok(buf_read_u8(&in, &kdf)) || !is_ok(buf_read_u8(&in, &out->log2_n)) ||
        !is_ok(buf_read_u32(&in, &out->r)) || !is_ok(buf_read_u32(&in, &out->p)) ||
        !is_ok(buf_read_u8(&in, &salt_len)))
        return keyprov_backup_bad("truncated");
    if (kdf != KEYPROV_BACKUP_KDF_SCRYPT)
        return keyprov_backup_bad("unknown key derivation function");
    const struct keyprov_scrypt_params s = {out->log2_n, out->r, out->p};
    if (!keyprov_scrypt_in_bounds(&s)) {
        RAISE(ERR_AUTH);
        return err_detail("the backup does not open: its scrypt parameters (N = 2^%u, r = %u, "
                          "p = %u) are out of bounds; refused before deriving",
                          s.log2_n, s.r, s.p);
    }
    if (salt_len < KEYPROV_BACKUP_SALT_MIN || salt_len > KEYPROV_BACKUP_SALT_MAX)
        return keyprov_backup_bad("salt length out of bounds");
    if (!is_ok(buf_read_ptr(&in, salt_len, &out->salt)) ||
        !is_ok(buf_read_ptr(&in, CRYPTO_GCM_IV_LEN, &out->iv)) ||
        !is_ok(buf_read_u32(&in, &ct_len)))
        return keyprov_backup_bad("truncated");
    out->salt_len = salt_len;
    out->header = file;
    out->header_len = buf_rpos(&in);
    if (ct_len == 0 || ct_len > KEYPROV_BACKUP_CT_MAX)
        return keyprov_backup_bad("contents length out of bounds");
    if (!is_ok(buf_read_ptr(&in, ct_len, &out->ct)) ||
        !is_ok(buf_read_ptr(&in, CRYPTO_GCM_TAG_LEN, &out->tag)))
        return keyprov_backup_bad("truncated");
    out->ct_len = ct_len;
    if (buf_remaining(&in) != 0)
        return keyprov_backup_bad("bytes follow its end");
    return OK_RESULT;
}

vs_result keyprov_backup_parse_contents(const void *plain, size_t len,
                                        struct keyprov_backup_contents *out)
{
    struct buf in;

    buf_view(&in, plain, len);
    return keyprov_backup_read_contents(&in, out);
}

vs_result keyprov_backup_decode(const void *file, size_t file_len, const void *passphrase,
                                size_t passphrase_len, struct keyprov_backup_contents **out)
{
    vs_result rc = OK_RESULT;
    struct keyprov_backup_parsed f;
    struct buf plain = {0};
    void *key = NULL, *contents = NULL;
    uint8_t *pt;

    *out = NULL;
    ENSURE(passphrase_len >= 1, ERR_INVALID_ARG);
    ENSURE(passphrase_len <= KEYPROV_BACKUP_PASSPHRASE_MAX, ERR_TOO_LARGE);
    /* Every field checked and bounded before any work is done for it. */
    GUARD(keyprov_backup_parse(file, file_len, &f));
    const struct keyprov_scrypt_params s = {f.log2_n, f.r, f.p};

    GUARD(secret_alloc(CRYPTO_AES256_KEY_LEN, &key));
    GUARD_OUT(keyprov_scrypt(passphrase, passphrase_len, f.salt, f.salt_len, &s, key));
    GUARD_OUT(buf_alloc_secret(&plain, 0, KEYPROV_BACKUP_CT_MAX));
    GUARD_OUT(buf_reserve(&plain, f.ct_len, &pt));
    rc = crypto_gcm_open(key, f.iv, f.header, f.header_len, f.ct, f.ct_len, f.tag, pt);
    if (!is_ok(rc)) {
        rc = keyprov_backup_bad("wrong passphrase, or the file was changed");
        goto out;
    }
    GUARD_OUT(secret_alloc(sizeof(struct keyprov_backup_contents), &contents));
    GUARD_OUT(keyprov_backup_read_contents(&plain, contents));
    *out = contents;
    contents = NULL;
out:
    secret_free(&contents);
    secret_free(&key);
    buf_free(&plain);
    return rc;
}
