/*
 * hostkey.c - the host root key, DATA_DIR/host.key, and what it seals.
 *
 * Kept like vmseal-kms keeps its root key (src/kms/rootkey.c): a 0600 file
 * of 32 random bytes, created on first use and never replaced, refused if it is any other size or
 * if group or others may access it. The key itself never touches data: sealing uses a key derived
 * from it with HKDF-SHA256, and only that derived key is kept (in secret memory).
 *
 * A sealed blob is  version (1 byte) || iv || ciphertext || tag  (AES-256-GCM,
 * crypto_seal), with AAD = version || "vmseal host seal" || 0 || purpose ||
 * 0 || name || 0 || id: the blob opens only for the use, the provider and
 * the provider id it was sealed for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"
#include "keyprov/keyprov_internal.h"

#define KEYPROV_SEAL_VERSION 1
#define KEYPROV_AAD_MAX 512

/* HKDF info: what the derived key is for (RFC 5869 §3.2). */
static const char keyprov_host_sealing_info[] = "vmseal host sealing key v1";

struct keyprov_hostkey {
    uint8_t *sealing_key; /* secret memory, CRYPTO_AES256_KEY_LEN */
};

void keyprov_hostkey_free(struct keyprov_hostkey **hk)
{
    if (hk == NULL || *hk == NULL)
        return;
    void *p = (*hk)->sealing_key;
    secret_free(&p);
    free(*hk);
    *hk = NULL;
}

/* Creates path with a new key, never replacing one: the key is written and
 * synced under a temporary name, then link(2)ed to path, which fails if
 * path exists. Two processes starting on a fresh directory at once thus
 * agree on one host key (the loser loads the winner's), where a rename
 * would let the second silently replace the key the first has already
 * sealed files under. */
static vs_result keyprov_hostkey_create(const char *path)
{
    vs_result rc = OK_RESULT;
    char tmp[PATH_MAX], dir[PATH_MAX];
    void *key = NULL;
    size_t done = 0;
    int fd = -1, n;

    n = snprintf(tmp, sizeof(tmp), "%s.new-XXXXXX", path);
    ENSURE(n > 0 && (size_t)n < sizeof(tmp), ERR_TOO_LARGE);
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
    GUARD(secret_alloc(KEYPROV_HOST_KEY_LEN, &key));
    GUARD_OUT(crypto_random_key(key, KEYPROV_HOST_KEY_LEN));
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        rc = RAISE(ERR_IO);
        err_detail("creating a host key next to %s", path);
        err_errno(errno);
        goto out;
    }
    while (done < KEYPROV_HOST_KEY_LEN) {
        ssize_t w = write(fd, (uint8_t *)key + done, KEYPROV_HOST_KEY_LEN - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = RAISE(ERR_IO);
            err_detail("writing %s", tmp);
            err_errno(errno);
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = RAISE(ERR_IO);
        err_detail("fsync of %s", tmp);
        err_errno(errno);
        goto out;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) { /* EEXIST: another's key won */
        rc = RAISE(ERR_IO);
        err_detail("creating %s", path);
        err_errno(errno);
        goto out;
    }
    GUARD_OUT(file_fsync_dir(dir));
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    secret_free(&key);
    return rc;
}

vs_result keyprov_hostkey_load(const char *path, bool create, struct keyprov_hostkey **out)
{
    vs_result rc = OK_RESULT;
    struct keyprov_hostkey *hk = NULL;
    struct buf b = {0};
    struct stat st;
    void *p = NULL;

    *out = NULL;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT && create) {
            GUARD(keyprov_hostkey_create(path));
            return keyprov_hostkey_load(path, false, out);
        }
        RAISE(e == ENOENT ? ERR_NOT_FOUND : ERR_IO);
        err_detail("host key %s", path);
        return err_errno(e);
    }
    if (!S_ISREG(st.st_mode)) {
        RAISE(ERR_IO);
        return err_detail("host key %s is not a regular file", path);
    }
    if ((st.st_mode & 077) != 0) {
        RAISE(ERR_PERM);
        return err_detail("host key %s is accessible by group or others (mode %03o): chmod 600 it",
                          path, (unsigned)(st.st_mode & 0777));
    }
    GUARD(buf_alloc_secret(&b, 0, KEYPROV_HOST_KEY_LEN + 1));
    GUARD_OUT(file_read_all(path, KEYPROV_HOST_KEY_LEN + 1, &b));
    if (buf_len(&b) != KEYPROV_HOST_KEY_LEN) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("host key %s is %zu bytes, not %d", path, buf_len(&b), KEYPROV_HOST_KEY_LEN);
        goto out;
    }
    hk = calloc(1, sizeof(*hk));
    ENSURE_OUT(hk != NULL, ERR_NOMEM);
    GUARD_OUT(secret_alloc(CRYPTO_AES256_KEY_LEN, &p));
    hk->sealing_key = p;
    GUARD_OUT(crypto_hkdf_sha256(NULL, 0, buf_data(&b), KEYPROV_HOST_KEY_LEN,
                                 keyprov_host_sealing_info, sizeof(keyprov_host_sealing_info) - 1,
                                 hk->sealing_key, CRYPTO_AES256_KEY_LEN));
    *out = hk;
    hk = NULL;
out:
    keyprov_hostkey_free(&hk);
    buf_free(&b);
    return rc;
}

static vs_result keyprov_seal_aad(struct buf *aad, const char *purpose, const char *name,
                                  const char *id)
{
    static const char label[] = "vmseal host seal";

    GUARD(buf_write_u8(aad, KEYPROV_SEAL_VERSION));
    GUARD(buf_write_bytes(aad, label, sizeof(label))); /* with its NUL: a separator */
    GUARD(buf_write_bytes(aad, purpose, strlen(purpose) + 1));
    GUARD(buf_write_bytes(aad, name, strlen(name) + 1));
    return buf_write_bytes(aad, id, strlen(id));
}

vs_result keyprov_hostkey_seal(const struct keyprov_hostkey *hk, const char *purpose,
                               const char *name, const char *id, const void *pt, size_t len,
                               struct buf *out)
{
    uint8_t mem[KEYPROV_AAD_MAX];
    struct buf aad;
    size_t start = buf_len(out);
    vs_result rc;

    buf_wrap(&aad, mem, sizeof(mem));
    GUARD(keyprov_seal_aad(&aad, purpose, name, id));
    GUARD(buf_write_u8(out, KEYPROV_SEAL_VERSION));
    rc = crypto_seal(hk->sealing_key, buf_data(&aad), buf_len(&aad), pt, len, out);
    if (!is_ok(rc))
        buf_rollback(out, start);
    return rc;
}

vs_result keyprov_hostkey_open(const struct keyprov_hostkey *hk, const char *purpose,
                               const char *name, const char *id, const void *sealed,
                               size_t sealed_len, struct buf *out)
{
    uint8_t mem[KEYPROV_AAD_MAX];
    struct buf aad, in;
    uint8_t version;

    buf_wrap(&aad, mem, sizeof(mem));
    GUARD(keyprov_seal_aad(&aad, purpose, name, id));
    buf_view(&in, sealed, sealed_len);
    if (!is_ok(buf_read_u8(&in, &version)) || version != KEYPROV_SEAL_VERSION) {
        RAISE(ERR_AUTH);
        return err_detail("sealed %s of %s: not a version %d sealed blob", purpose, name,
                          KEYPROV_SEAL_VERSION);
    }
    vs_result rc = crypto_open(hk->sealing_key, buf_data(&aad), buf_len(&aad), &in, out);
    if (!is_ok(rc))
        err_detail("sealed %s of %s does not open under this host's key (tampered, or from "
                   "another host)",
                   purpose, name);
    return rc;
}
