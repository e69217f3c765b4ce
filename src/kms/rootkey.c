/*
 * rootkey.c - the root key in a 0600 file. See rootkey.h.
 */
#include "kms/rootkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"

#define KMS_ROOTKEY_LEN 32

/* HKDF info: what the derived key is for (RFC 5869 §3.2). */
static const char kms_rootkey_sealing_info[] = "vmseal-kms record sealing key v1";

struct kms_rootkey {
    uint8_t *sealing_key; /* secret memory, CRYPTO_AES256_KEY_LEN */
};

vs_result kms_rootkey_create_file(const char *path)
{
    vs_result rc = OK_RESULT;
    struct stat st;
    uint8_t *key = NULL;
    void *p = NULL;

    if (lstat(path, &st) == 0) {
        RAISE(ERR_EXISTS);
        return err_detail("%s exists: a root key is never overwritten", path);
    }
    GUARD(secret_alloc(KMS_ROOTKEY_LEN, &p));
    key = p;
    GUARD_OUT(crypto_random_key(key, KMS_ROOTKEY_LEN));
    GUARD_OUT(file_write_atomic(path, key, KMS_ROOTKEY_LEN, 0600));
out:
    p = key;
    secret_free(&p);
    return rc;
}

vs_result kms_rootkey_open_file(const char *path, struct kms_rootkey **out)
{
    vs_result rc = OK_RESULT;
    struct kms_rootkey *rk = NULL;
    struct buf b = {0};
    struct stat st;
    void *p = NULL;

    *out = NULL;
    if (stat(path, &st) != 0) {
        RAISE(errno == ENOENT ? ERR_NOT_FOUND : ERR_IO);
        err_detail("root key %s", path);
        return err_errno(errno);
    }
    if ((st.st_mode & 077) != 0) {
        RAISE(ERR_PERM);
        return err_detail("root key %s is readable by group or others (mode %03o): chmod 600 it",
                          path, (unsigned)(st.st_mode & 0777));
    }
    GUARD(buf_alloc_secret(&b, 0, KMS_ROOTKEY_LEN + 1));
    GUARD_OUT(file_read_all(path, KMS_ROOTKEY_LEN + 1, &b));
    if (buf_len(&b) != KMS_ROOTKEY_LEN) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("root key %s is %zu bytes, not %d", path, buf_len(&b), KMS_ROOTKEY_LEN);
        goto out;
    }
    rk = calloc(1, sizeof(*rk));
    ENSURE_OUT(rk != NULL, ERR_NOMEM);
    GUARD_OUT(secret_alloc(CRYPTO_AES256_KEY_LEN, &p));
    rk->sealing_key = p;
    GUARD_OUT(crypto_hkdf_sha256(NULL, 0, buf_data(&b), KMS_ROOTKEY_LEN, kms_rootkey_sealing_info,
                                 sizeof(kms_rootkey_sealing_info) - 1, rk->sealing_key,
                                 CRYPTO_AES256_KEY_LEN));
    *out = rk;
    rk = NULL;
out:
    kms_rootkey_free(&rk);
    buf_free(&b);
    return rc;
}

void kms_rootkey_free(struct kms_rootkey **rk)
{
    if (rk == NULL || *rk == NULL)
        return;
    void *p = (*rk)->sealing_key;
    secret_free(&p);
    free(*rk);
    *rk = NULL;
}

vs_result kms_rootkey_seal(const struct kms_rootkey *rk, const void *aad, size_t aad_len,
                           const void *pt, size_t len, struct buf *out)
{
    return crypto_seal(rk->sealing_key, aad, aad_len, pt, len, out);
}

vs_result kms_rootkey_open(const struct kms_rootkey *rk, const void *aad, size_t aad_len,
                           const uint8_t *sealed, size_t sealed_len, struct buf *out)
{
    struct buf in;

    buf_view(&in, sealed, sealed_len);
    return crypto_open(rk->sealing_key, aad, aad_len, &in, out);
}
