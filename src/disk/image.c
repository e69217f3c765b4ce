/*
 * image.c - qemu-img operations on disk chains and QEMU's -blockdev
 * description of a chain. See image.h.
 *
 * Every image is opened through a JSON description that names the driver
 * of each layer, its file, its secret and its backing layer, all the way
 * down ("json:{...}" for qemu-img, JSON -blockdev values for QEMU):
 *
 *   - nothing is probed: a raw guest disk whose first bytes look like a
 *     qcow2 header is never taken for one, and a qcow2 header's backing
 *     name never decides which file is opened ("backing": null at the
 *     bottom);
 *   - a path is a JSON string, never a QemuOpts value (where a comma would
 *     have to be doubled) nor a filename (where "nbd:..." or "json:..."
 *     would be read as a protocol);
 *   - secrets are `--object secret,id=..,file=/dev/fd/N,format=raw` over a
 *     pipe (core/proc.h); the passphrase is the secret in hex
 *     (luks1_passphrase), because QEMU takes LUKS passphrases as UTF-8 text.
 *
 * Plain output paths given to qemu-img (the file it creates) start with
 * "/" or "./", for the same protocol reason. Files we create are reserved
 * first with O_EXCL and mode 0600; qemu-img then writes into them, keeping
 * the mode.
 */
#include "disk/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/proc.h"
#include "core/secret.h"

#define IMAGE_JSON_MAX ((size_t)131071 - 5) /* an argument, less "json:" */
#define IMAGE_INFO_MAX ((size_t)1 << 20)
#define IMAGE_SHORT_TIMEOUT_MS 120000 /* create, info, rebase */
#define IMAGE_CREATE_ATTEMPTS 10
#define IMAGE_OVERLAY_ITER_TIME_MS 10 /* PBKDF2 time: the secret is 256 random bits */
#define IMAGE_NODE_MAX 20

/* qemu-img's PBKDF calibration reads the thread's CPU time and gives up when
 * it looks wrong (crypto/pbkdf.c); it fails this way about half the time on
 * some hosts. The one failure that is retried. */
static const char image_cpu_usage_error[] = "Unable to get accurate CPU usage";

static char image_qemu_img[PATH_MAX] = "qemu-img";

void disk_image_set_qemu_img(const char *path)
{
    snprintf(image_qemu_img, sizeof(image_qemu_img), "%s", path != NULL ? path : "qemu-img");
}

/* --- chains --- */

static bool image_is_qcow2(enum disk_format f)
{
    return f == DISK_FORMAT_QCOW2 || f == DISK_FORMAT_QCOW2_LUKS;
}

static bool image_is_encrypted(enum disk_format f)
{
    return f == DISK_FORMAT_LUKS || f == DISK_FORMAT_QCOW2_LUKS;
}

static const char *image_driver(enum disk_format f)
{
    switch (f) {
    case DISK_FORMAT_RAW:
        return "raw";
    case DISK_FORMAT_LUKS:
        return "luks";
    case DISK_FORMAT_QCOW2:
    case DISK_FORMAT_QCOW2_LUKS:
        return "qcow2";
    }
    return NULL;
}

static RESULT image_check_chain(const struct disk_layer *chain, size_t n)
{
    ENSURE(n >= 1 && n <= DISK_CHAIN_MAX, ERR_INVALID_ARG);
    for (size_t i = 0; i < n; i++) {
        const struct disk_layer *l = &chain[i];
        ENSURE(l->path != NULL && l->path[0] != '\0', ERR_INVALID_ARG);
        ENSURE(image_driver(l->format) != NULL, ERR_INVALID_ARG);
        if (image_is_encrypted(l->format) != (l->secret != NULL)) {
            err_raise(ERR_INVALID_ARG, __FILE__, __LINE__);
            return err_detail("layer %zu (%s): a secret is needed exactly for encrypted formats", i,
                              l->path);
        }
        /* Only qcow2 has a backing layer. */
        if (i + 1 < n && !image_is_qcow2(l->format)) {
            err_raise(ERR_INVALID_ARG, __FILE__, __LINE__);
            return err_detail("layer %zu (%s) is not qcow2 but has a layer below it", i, l->path);
        }
    }
    return OK_RESULT;
}

/* --- JSON descriptions --- */

/* A JSON string. Control characters are refused rather than escaped: no
 * path vmseal makes has one, and QEMU's own messages would mangle them. */
static RESULT image_json_string(struct buf *b, const char *s)
{
    GUARD(buf_write_u8(b, '"'));
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            err_raise(ERR_INVALID_ARG, __FILE__, __LINE__);
            return err_detail("a path holds a control character");
        }
        if (*p == '"' || *p == '\\')
            GUARD(buf_write_u8(b, '\\'));
        GUARD(buf_write_u8(b, *p));
    }
    return buf_write_u8(b, '"');
}

static RESULT image_json_raw(struct buf *b, const char *s)
{
    return buf_write_bytes(b, s, strlen(s));
}

/* A secret's id: "<prefix><i>" ("sec0" for qemu-img, "disk0-s0" for QEMU). */
static RESULT image_json_id(struct buf *b, const char *prefix, size_t i)
{
    char id[64];
    int n = snprintf(id, sizeof(id), "%s%zu", prefix, i);
    ENSURE(n > 0 && (size_t)n < sizeof(id), ERR_TOO_LARGE);
    return image_json_string(b, id);
}

enum image_backing {
    IMAGE_BACKING_CHAIN, /* the next layers inline, "backing": null at the bottom */
    IMAGE_BACKING_NONE,  /* "backing": null: this layer alone */
};

/* Layer i for qemu-img: secrets are "<sec_prefix><i>". */
static RESULT image_json_layer(struct buf *b, const struct disk_layer *chain, size_t n, size_t i,
                               enum image_backing backing, const char *sec_prefix)
{
    const struct disk_layer *l = &chain[i];

    GUARD(image_json_raw(b, "{\"driver\":"));
    GUARD(image_json_string(b, image_driver(l->format)));
    if (l->format == DISK_FORMAT_LUKS) {
        GUARD(image_json_raw(b, ",\"key-secret\":"));
        GUARD(image_json_id(b, sec_prefix, i));
    } else if (l->format == DISK_FORMAT_QCOW2_LUKS) {
        GUARD(image_json_raw(b, ",\"encrypt\":{\"format\":\"luks\",\"key-secret\":"));
        GUARD(image_json_id(b, sec_prefix, i));
        GUARD(image_json_raw(b, "}"));
    }
    GUARD(image_json_raw(b, ",\"file\":{\"driver\":\"file\",\"filename\":"));
    GUARD(image_json_string(b, l->path));
    GUARD(image_json_raw(b, "}"));
    if (image_is_qcow2(l->format)) {
        GUARD(image_json_raw(b, ",\"backing\":"));
        if (backing == IMAGE_BACKING_CHAIN && i + 1 < n)
            GUARD(image_json_layer(b, chain, n, i + 1, backing, sec_prefix));
        else
            GUARD(image_json_raw(b, "null"));
    }
    return image_json_raw(b, "}");
}

/* "json:{...}" for chain[first..n-1] into a fresh buf (caller frees). */
static RESULT image_json_filename(const struct disk_layer *chain, size_t n, size_t first,
                                  enum image_backing backing, struct buf *out)
{
    vs_result rc = OK_RESULT;

    GUARD(buf_alloc(out, 256, IMAGE_JSON_MAX + 6));
    GUARD_OUT(image_json_raw(out, "json:"));
    GUARD_OUT(image_json_layer(out, chain, n, first, backing, "sec"));
    GUARD_OUT(buf_write_u8(out, '\0'));
    return OK_RESULT;
out:
    buf_free(out);
    if (rc.code == ERR_BUF_LIMIT)
        err_detail("the chain's description is longer than a command-line argument may be");
    return rc;
}

/* --- secrets for a child --- */

/* Hands layer i's passphrase to the child through a pipe and adds
 * "<opt> secret,id=<id>,file=/dev/fd/N,format=raw". */
static RESULT image_add_secret(struct proc_args *args, const char *opt, const char *id,
                               const uint8_t *secret)
{
    vs_result rc = OK_RESULT;
    char *pass = NULL;
    int fd;

    GUARD(secret_alloc(LUKS1_PASSPHRASE_LEN + 1, (void **)&pass));
    GUARD_OUT(luks1_passphrase(secret, pass));
    GUARD_OUT(proc_args_add_secret(args, pass, LUKS1_PASSPHRASE_LEN, &fd));
    GUARD_OUT(proc_args_add(args, opt));
    GUARD_OUT(proc_args_addf(args, "secret,id=%s,file=/dev/fd/%d,format=raw", id, fd));
out:
    secret_free((void **)&pass);
    return rc;
}

/* Secrets sec<i> of the layers chain[first..last] that have one. */
static RESULT image_add_secrets(struct proc_args *args, const struct disk_layer *chain,
                                size_t first, size_t last)
{
    char id[32];

    for (size_t i = first; i <= last; i++) {
        if (chain[i].secret == NULL)
            continue;
        snprintf(id, sizeof(id), "sec%zu", i);
        GUARD(image_add_secret(args, "--object", id, chain[i].secret));
    }
    return OK_RESULT;
}

/* A plain filename for qemu-img that cannot be read as a protocol or an
 * option: absolute, or "./" in front. */
static RESULT image_plain_filename(const char *path, char *out, size_t size)
{
    int n;

    ENSURE(path[0] != '\0', ERR_INVALID_ARG);
    n = snprintf(out, size, "%s%s", path[0] == '/' ? "" : "./", path);
    ENSURE(n > 0 && (size_t)n < size, ERR_TOO_LARGE);
    return OK_RESULT;
}

/* --- running qemu-img --- */

static RESULT image_args_start(struct proc_args *args, const char *command)
{
    proc_args_init(args);
    GUARD(proc_args_add(args, image_qemu_img));
    GUARD(proc_args_add(args, command));
    return OK_RESULT;
}

/* The last line of err, printable, into out. */
static void image_last_line(const struct buf *err, char *out, size_t size)
{
    const uint8_t *d = buf_data(err);
    size_t end = buf_len(err), start, j = 0;

    while (end > 0 && (d[end - 1] == '\n' || d[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && d[start - 1] != '\n')
        start--;
    for (size_t i = start; i < end && j + 1 < size; i++)
        out[j++] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
    if (size > 0)
        out[j] = '\0';
}

static bool image_mentions(const struct buf *b, const char *needle)
{
    return buf_len(b) > 0 && memmem(buf_data(b), buf_len(b), needle, strlen(needle)) != NULL;
}

/* Runs args; a status other than 0 is ERR_CHILD naming qemu-img's last
 * line. err_keep, when not NULL, receives stderr (the caller frees it). */
static RESULT image_run(struct proc_args *args, int timeout_ms, struct buf *out,
                        struct buf *err_keep)
{
    vs_result rc = OK_RESULT;
    struct buf err;
    char line[200];
    int status;

    GUARD(buf_alloc(&err, 0, 1 << 20));
    GUARD_OUT(proc_run(args, timeout_ms, out, &err, &status));
    if (status != 0) {
        image_last_line(&err, line, sizeof(line));
        rc = RAISE(ERR_CHILD);
        err_detail("qemu-img %s exited with status %d: %s", args->argv[1], status, line);
    }
out:
    if (err_keep != NULL) {
        *err_keep = err;
        return rc;
    }
    buf_free(&err);
    return rc;
}

/* Reserves path: a new empty file, mode 0600 whatever the umask. */
static RESULT image_reserve(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        int e = errno;
        err_raise(e == EEXIST                 ? ERR_EXISTS
                  : e == EACCES || e == EPERM ? ERR_PERM
                                              : ERR_IO,
                  __FILE__, __LINE__);
        err_detail("creating %s", path);
        return err_errno(e);
    }
    if (fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        err_raise(ERR_IO, __FILE__, __LINE__);
        err_detail("fchmod of %s", path);
        return err_errno(e);
    }
    close(fd);
    return OK_RESULT;
}

/* fsyncs a file qemu-img wrote, and its directory. */
static RESULT image_sync(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        err_raise(ERR_IO, __FILE__, __LINE__);
        err_detail("fsync of %s", path);
        return err_errno(e);
    }
    close(fd);
    if (slash == NULL)
        return file_fsync_dir(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    ENSURE(n < sizeof(dir), ERR_TOO_LARGE);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return file_fsync_dir(dir);
}

/* --- reading qemu-img's JSON output (bounded, through struct buf) --- */

static bool image_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void image_skip_ws(struct buf *b)
{
    const uint8_t *p;
    while (is_ok(buf_peek_ptr(b, 1, &p)) && image_ws(*p))
        if (!is_ok(buf_skip(b, 1)))
            return;
}

/* Skips one JSON string (the cursor on its opening quote). */
static RESULT image_skip_string(struct buf *b)
{
    uint8_t c;

    GUARD(buf_read_u8(b, &c));
    ENSURE(c == '"', ERR_CHILD);
    for (;;) {
        GUARD(buf_read_u8(b, &c));
        if (c == '"')
            return OK_RESULT;
        if (c == '\\')
            GUARD(buf_read_u8(b, &c));
    }
}

/* Skips one JSON value of any kind, nested up to 32 levels. */
static RESULT image_skip_value(struct buf *b)
{
    const uint8_t *p;
    unsigned depth = 0;

    image_skip_ws(b);
    GUARD(buf_peek_ptr(b, 1, &p));
    if (*p == '"')
        return image_skip_string(b);
    if (*p != '{' && *p != '[') {
        /* number, true, false, null: up to a delimiter */
        while (is_ok(buf_peek_ptr(b, 1, &p)) && *p != ',' && *p != '}' && *p != ']' &&
               !image_ws(*p))
            GUARD(buf_skip(b, 1));
        return OK_RESULT;
    }
    do {
        GUARD(buf_peek_ptr(b, 1, &p));
        if (*p == '"') {
            GUARD(image_skip_string(b));
            continue;
        }
        if (*p == '{' || *p == '[') {
            ENSURE(++depth <= 32, ERR_CHILD);
        } else if (*p == '}' || *p == ']') {
            depth--;
        }
        GUARD(buf_skip(b, 1));
    } while (depth > 0);
    return OK_RESULT;
}

/* Points *out at len bytes at offset off of doc, through a fresh view. */
static RESULT image_slice(const struct buf *doc, size_t off, size_t len, const uint8_t **out)
{
    struct buf v;

    buf_view(&v, buf_data(doc), buf_len(doc));
    GUARD(buf_skip(&v, off));
    return buf_read_ptr(&v, len, out);
}

/* Finds the member `key` of the top-level object in doc and points
 * *val and *len at its raw value. ERR_NOT_FOUND if absent; another error if doc
 * is not a JSON object. Keys with escapes never match (qemu-img's have
 * none). */
static RESULT image_json_member(const struct buf *doc, const char *key, const uint8_t **val,
                                size_t *len)
{
    struct buf b;
    uint8_t c;
    size_t klen = strlen(key);

    buf_view(&b, buf_data(doc), buf_len(doc));
    image_skip_ws(&b);
    GUARD(buf_read_u8(&b, &c));
    ENSURE(c == '{', ERR_CHILD);
    for (;;) {
        const uint8_t *p;
        size_t kpos, klen_seen, vpos;

        image_skip_ws(&b);
        GUARD(buf_peek_ptr(&b, 1, &p));
        if (*p == '}')
            break;
        kpos = buf_rpos(&b) + 1;
        GUARD(image_skip_string(&b));
        klen_seen = buf_rpos(&b) - kpos - 1;
        image_skip_ws(&b);
        GUARD(buf_read_u8(&b, &c));
        ENSURE(c == ':', ERR_CHILD);
        image_skip_ws(&b);
        vpos = buf_rpos(&b);
        GUARD(image_skip_value(&b));
        if (klen_seen == klen) {
            const uint8_t *k;
            GUARD(image_slice(doc, kpos, klen, &k));
            if (memcmp(k, key, klen) == 0) {
                *len = buf_rpos(&b) - vpos;
                return image_slice(doc, vpos, *len, val);
            }
        }
        image_skip_ws(&b);
        GUARD(buf_read_u8(&b, &c));
        if (c == '}')
            break;
        ENSURE(c == ',', ERR_CHILD);
    }
    return RAISE(ERR_NOT_FOUND);
}

static RESULT image_json_u64(const struct buf *doc, const char *key, uint64_t *out)
{
    const uint8_t *v;
    size_t len;
    uint64_t x = 0;

    GUARD(image_json_member(doc, key, &v, &len));
    ENSURE(len >= 1 && len <= 20, ERR_CHILD);
    for (size_t i = 0; i < len; i++) {
        ENSURE(v[i] >= '0' && v[i] <= '9', ERR_CHILD);
        ENSURE(x <= (UINT64_MAX - (v[i] - '0')) / 10, ERR_CHILD);
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return OK_RESULT;
}

/* A string member without escapes, into out. */
static RESULT image_json_text(const struct buf *doc, const char *key, char *out, size_t size)
{
    const uint8_t *v;
    size_t len;

    GUARD(image_json_member(doc, key, &v, &len));
    ENSURE(len >= 2 && v[0] == '"' && v[len - 1] == '"' && len - 2 < size, ERR_CHILD);
    for (size_t i = 1; i + 1 < len; i++)
        ENSURE(v[i] >= 0x20 && v[i] < 0x7f && v[i] != '\\', ERR_CHILD);
    memcpy(out, v + 1, len - 2);
    out[len - 2] = '\0';
    return OK_RESULT;
}

/* `qemu-img info --output=json` of filename into info (fresh buf). */
static RESULT image_info(struct proc_args *args, const char *filename, struct buf *info)
{
    vs_result rc = OK_RESULT;

    GUARD(buf_alloc(info, 4096, IMAGE_INFO_MAX));
    GUARD_OUT(proc_args_add(args, "--output=json"));
    GUARD_OUT(proc_args_add(args, filename));
    GUARD_OUT(image_run(args, IMAGE_SHORT_TIMEOUT_MS, info, NULL));
    return OK_RESULT;
out:
    buf_free(info);
    return rc;
}

/* --- the operations --- */

vs_result disk_image_guest_size(const struct disk_layer *chain, size_t n, uint64_t *out)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0}, info = {0};

    proc_args_init(&args);
    *out = 0;
    GUARD(image_check_chain(chain, n));
    /* The top layer alone says the guest's size (qemu-img info opens no
     * backing layer); a LUKS layer's size is what follows its header. */
    GUARD_OUT(image_args_start(&args, "info"));
    GUARD_OUT(image_add_secrets(&args, chain, 0, 0));
    GUARD_OUT(image_json_filename(chain, n, 0, IMAGE_BACKING_NONE, &name));
    GUARD_OUT(image_info(&args, (const char *)buf_data(&name), &info));
    rc = image_json_u64(&info, "virtual-size", out);
    if (!is_ok(rc)) {
        rc = RAISE(ERR_CHILD);
        err_detail("qemu-img info gave no virtual-size for %s", chain[0].path);
    }
out:
    buf_free(&info);
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

/* One attempt at `qemu-img create` of the overlay. */
static RESULT image_create_once(const char *target, const struct disk_layer *below,
                                const uint8_t *secret, uint64_t size, struct buf *err)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;

    proc_args_init(&args);
    GUARD_OUT(image_args_start(&args, "create"));
    GUARD_OUT(proc_args_add(&args, "-q"));
    GUARD_OUT(proc_args_add(&args, "-f"));
    GUARD_OUT(proc_args_add(&args, "qcow2"));
    if (secret != NULL) {
        GUARD_OUT(image_add_secret(&args, "--object", "sec0", secret));
        GUARD_OUT(proc_args_add(&args, "-o"));
        GUARD_OUT(proc_args_addf(&args,
                                 "encrypt.format=luks,encrypt.key-secret=sec0,"
                                 "encrypt.iter-time=%d",
                                 IMAGE_OVERLAY_ITER_TIME_MS));
    }
    /* The backing name is recorded, not opened (-u): informative only. */
    GUARD_OUT(proc_args_add(&args, "-u"));
    GUARD_OUT(proc_args_add(&args, "-b"));
    GUARD_OUT(proc_args_add(&args, below->path));
    GUARD_OUT(proc_args_add(&args, "-F"));
    GUARD_OUT(proc_args_add(&args, image_driver(below->format)));
    GUARD_OUT(proc_args_add(&args, target));
    GUARD_OUT(proc_args_addf(&args, "%llu", (unsigned long long)size));
    rc = image_run(&args, IMAGE_SHORT_TIMEOUT_MS, NULL, err);
out:
    proc_args_free(&args);
    return rc;
}

vs_result disk_image_create_overlay(const char *path, const struct disk_layer *chain, size_t n,
                                    const uint8_t *secret)
{
    vs_result rc = OK_RESULT;
    char target[PATH_MAX];
    uint64_t size;
    bool reserved = false;

    GUARD(image_check_chain(chain, n));
    ENSURE(n < DISK_CHAIN_MAX, ERR_TOO_LARGE);
    GUARD(image_plain_filename(path, target, sizeof(target)));
    GUARD(disk_image_guest_size(chain, n, &size));
    GUARD(image_reserve(path));
    reserved = true;
    for (int attempt = 1;; attempt++) {
        struct buf err = {0};
        /* A failed qemu-img create deletes the file it was creating (QEMU
         * >= 5.1): reserve it again, so that the retry writes into a 0600
         * file of ours instead of creating one with qemu-img's 0644. */
        if (attempt > 1 && access(path, F_OK) != 0)
            GUARD_OUT(image_reserve(path));
        rc = image_create_once(target, &chain[0], secret, size, &err);
        bool spurious =
            !is_ok(rc) && rc.code == ERR_CHILD && image_mentions(&err, image_cpu_usage_error);
        buf_free(&err);
        if (is_ok(rc) || !spurious)
            break;
        if (attempt == IMAGE_CREATE_ATTEMPTS) {
            err_detail("qemu-img create failed %d times: %s", attempt, image_cpu_usage_error);
            break;
        }
    }
    GUARD_OUT(rc);
    GUARD_OUT(image_sync(path));
    return OK_RESULT;
out:
    if (reserved)
        unlink(path);
    return rc;
}

vs_result disk_image_commit(const struct disk_layer *chain, size_t n)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0};

    proc_args_init(&args);
    GUARD(image_check_chain(chain, n));
    ENSURE(n >= 2, ERR_INVALID_ARG);
    /* Into the layer right below (qemu-img's default base); -d: the top
     * keeps its clusters, so a rerun after a crash writes the same data. */
    GUARD_OUT(image_args_start(&args, "commit"));
    GUARD_OUT(proc_args_add(&args, "-q"));
    GUARD_OUT(proc_args_add(&args, "-d"));
    GUARD_OUT(image_add_secrets(&args, chain, 0, n - 1));
    GUARD_OUT(image_json_filename(chain, n, 0, IMAGE_BACKING_CHAIN, &name));
    GUARD_OUT(proc_args_add(&args, (const char *)buf_data(&name)));
    GUARD_OUT(image_run(&args, 0, NULL, NULL));
    GUARD_OUT(image_sync(chain[1].path));
out:
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

vs_result disk_image_rebase_unsafe(const struct disk_layer *overlay,
                                   const struct disk_layer *backing)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0};

    proc_args_init(&args);
    GUARD(image_check_chain(overlay, 1));
    GUARD(image_check_chain(backing, 1));
    ENSURE(image_is_qcow2(overlay->format), ERR_INVALID_ARG);
    GUARD_OUT(image_args_start(&args, "rebase"));
    GUARD_OUT(proc_args_add(&args, "-q"));
    GUARD_OUT(proc_args_add(&args, "-u"));
    GUARD_OUT(image_add_secrets(&args, overlay, 0, 0));
    GUARD_OUT(proc_args_add(&args, "-b"));
    GUARD_OUT(proc_args_add(&args, backing->path));
    GUARD_OUT(proc_args_add(&args, "-F"));
    GUARD_OUT(proc_args_add(&args, image_driver(backing->format)));
    GUARD_OUT(image_json_filename(overlay, 1, 0, IMAGE_BACKING_NONE, &name));
    GUARD_OUT(proc_args_add(&args, (const char *)buf_data(&name)));
    GUARD_OUT(image_run(&args, IMAGE_SHORT_TIMEOUT_MS, NULL, NULL));
    GUARD_OUT(image_sync(overlay->path));
out:
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

/* qemu-img convert of `source` (a json: filename) to a new raw out_path. */
static RESULT image_convert(struct proc_args *args, const char *source, const char *out_path)
{
    vs_result rc = OK_RESULT;
    char target[PATH_MAX];

    GUARD(image_plain_filename(out_path, target, sizeof(target)));
    GUARD(image_reserve(out_path));
    GUARD_OUT(proc_args_add(args, "-O"));
    GUARD_OUT(proc_args_add(args, "raw"));
    GUARD_OUT(proc_args_add(args, source));
    GUARD_OUT(proc_args_add(args, target));
    GUARD_OUT(image_run(args, 0, NULL, NULL));
    GUARD_OUT(image_sync(out_path));
    return OK_RESULT;
out:
    unlink(out_path);
    return rc;
}

vs_result disk_image_export_raw(const struct disk_layer *chain, size_t n, const char *out_path)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0};

    proc_args_init(&args);
    GUARD(image_check_chain(chain, n));
    GUARD_OUT(image_args_start(&args, "convert"));
    GUARD_OUT(proc_args_add(&args, "-q"));
    GUARD_OUT(image_add_secrets(&args, chain, 0, n - 1));
    GUARD_OUT(image_json_filename(chain, n, 0, IMAGE_BACKING_CHAIN, &name));
    GUARD_OUT(image_convert(&args, (const char *)buf_data(&name), out_path));
out:
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

/* --- importing --- */

/* qcow2 header (QEMU docs/interop/qcow2.txt), the fields that decide
 * whether an image is self-contained and unencrypted. */
#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
static const uint8_t image_luks_magic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};

static vs_result image_refuse(const char *path, const char *why)
{
    err_raise(ERR_DISK_FORMAT, __FILE__, __LINE__);
    return err_detail("%s: %s", path, why);
}

/* Reads the start of path; for a qcow2 image checks it is importable and
 * returns its size, else the file's size. *is_qcow2 tells which it looked
 * like. */
static RESULT image_check_header(const char *path, bool *is_qcow2, uint64_t *size_out)
{
    uint8_t head[512];
    struct buf b;
    struct stat st;
    ssize_t got = 0;
    uint32_t magic, version, backing_size, cluster_bits, crypt;
    uint64_t backing_offset, size, incompat = 0;
    int fd;

    *is_qcow2 = false;
    *size_out = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        err_raise(e == ENOENT   ? ERR_NOT_FOUND
                  : e == EACCES ? ERR_PERM
                                : ERR_IO,
                  __FILE__, __LINE__);
        err_detail("opening %s", path);
        return err_errno(e);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return image_refuse(path, "not a regular file");
    }
    *size_out = (uint64_t)st.st_size;
    while (got < (ssize_t)sizeof(head)) {
        ssize_t r = pread(fd, head + got, sizeof(head) - (size_t)got, got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    close(fd);

    buf_view(&b, head, (size_t)got);
    if ((size_t)got >= sizeof(image_luks_magic) &&
        memcmp(head, image_luks_magic, sizeof(image_luks_magic)) == 0)
        return image_refuse(path, "a LUKS image cannot be imported (decrypt it first)");
    if (!is_ok(buf_read_u32(&b, &magic)) || magic != QCOW2_MAGIC)
        return OK_RESULT; /* not qcow2: qemu-img says what it is */
    *is_qcow2 = true;
    if (!is_ok(buf_read_u32(&b, &version)) || !is_ok(buf_read_u64(&b, &backing_offset)) ||
        !is_ok(buf_read_u32(&b, &backing_size)) || !is_ok(buf_read_u32(&b, &cluster_bits)) ||
        !is_ok(buf_read_u64(&b, &size)) || !is_ok(buf_read_u32(&b, &crypt)))
        return image_refuse(path, "truncated qcow2 header");
    if (version != 2 && version != 3)
        return image_refuse(path, "unsupported qcow2 version");
    if (version == 3) {
        /* l1_size .. snapshots_offset, then incompatible_features at 72 */
        if (!is_ok(buf_skip(&b, 72 - 36)) || !is_ok(buf_read_u64(&b, &incompat)))
            return image_refuse(path, "truncated qcow2 header");
    }
    if (backing_offset != 0 || backing_size != 0)
        return image_refuse(path, "a qcow2 image with a backing file cannot be imported");
    if (crypt != 0)
        return image_refuse(path, "an encrypted qcow2 image cannot be imported");
    if (incompat & QCOW2_INCOMPAT_DATA_FILE)
        return image_refuse(path, "a qcow2 image with an external data file cannot be imported");
    *size_out = size;
    return OK_RESULT;
}

/* json:{"driver":fmt,"file":{...}} of an importable image (no backing). */
static RESULT image_import_filename(const char *path, enum disk_format format, struct buf *out)
{
    const struct disk_layer layer = {.path = path, .format = format, .secret = NULL};
    return image_json_filename(&layer, 1, 0, IMAGE_BACKING_NONE, out);
}

vs_result disk_image_probe(const char *path, enum disk_format *format, uint64_t *guest_size)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0}, info = {0};
    char fmt[32];
    uint64_t size, header_size;
    bool is_qcow2;

    proc_args_init(&args);
    *guest_size = 0;
    *format = DISK_FORMAT_RAW;
    GUARD(image_check_header(path, &is_qcow2, &header_size));
    /* Let qemu-img probe the format (file driver named, so the path is
     * never a protocol), but only over the file: no backing is opened. */
    GUARD_OUT(buf_alloc(&name, 256, IMAGE_JSON_MAX + 6));
    GUARD_OUT(image_json_raw(&name, "json:{\"file\":{\"driver\":\"file\",\"filename\":"));
    GUARD_OUT(image_json_string(&name, path));
    GUARD_OUT(image_json_raw(&name, "}}"));
    GUARD_OUT(buf_write_u8(&name, '\0'));
    GUARD_OUT(image_args_start(&args, "info"));
    GUARD_OUT(image_info(&args, (const char *)buf_data(&name), &info));
    if (!is_ok(image_json_text(&info, "format", fmt, sizeof(fmt))) ||
        !is_ok(image_json_u64(&info, "virtual-size", &size))) {
        rc = RAISE(ERR_CHILD);
        err_detail("qemu-img info of %s gave no format or size", path);
        goto out;
    }
    if (strcmp(fmt, is_qcow2 ? "qcow2" : "raw") != 0) {
        rc = image_refuse(path, "not a raw or qcow2 image");
        err_detail("%s: a %s image cannot be imported (raw or qcow2 only)", path, fmt);
        goto out;
    }
    {
        const uint8_t *v;
        size_t len;
        if (is_ok(image_json_member(&info, "backing-filename", &v, &len))) {
            rc = image_refuse(path, "an image with a backing file cannot be imported");
            goto out;
        }
        if (is_ok(image_json_member(&info, "encrypted", &v, &len)) &&
            !(len == 5 && memcmp(v, "false", 5) == 0)) {
            rc = image_refuse(path, "an encrypted image cannot be imported");
            goto out;
        }
    }
    /* qemu-img rounds a raw file's size up to a sector; the guest's disk
     * is the file itself, so a partial sector is refused, not padded. */
    if (size != header_size || size == 0 || size % LUKS1_SECTOR_SIZE != 0) {
        rc = image_refuse(path, "the size is not a whole, non-zero number of 512-byte sectors");
        goto out;
    }
    *format = is_qcow2 ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
    *guest_size = size;
out:
    buf_free(&info);
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

vs_result disk_image_convert_to_raw(const char *in_path, enum disk_format in_format,
                                    const char *out_path)
{
    vs_result rc = OK_RESULT;
    struct proc_args args;
    struct buf name = {0};
    uint64_t size;
    bool is_qcow2;

    proc_args_init(&args);
    ENSURE(in_format == DISK_FORMAT_RAW || in_format == DISK_FORMAT_QCOW2, ERR_INVALID_ARG);
    /* Checked again here: the file may have changed since the probe. */
    GUARD(image_check_header(in_path, &is_qcow2, &size));
    if (is_qcow2 != (in_format == DISK_FORMAT_QCOW2))
        return image_refuse(in_path, "the image's format changed since it was probed");
    GUARD_OUT(image_args_start(&args, "convert"));
    GUARD_OUT(proc_args_add(&args, "-q"));
    GUARD_OUT(image_import_filename(in_path, in_format, &name));
    GUARD_OUT(image_convert(&args, (const char *)buf_data(&name), out_path));
out:
    buf_free(&name);
    proc_args_free(&args);
    return rc;
}

/* --- QEMU --- */

static RESULT image_check_node(const char *node)
{
    size_t n = strlen(node);

    ENSURE(n >= 1 && n <= IMAGE_NODE_MAX, ERR_INVALID_ARG);
    ENSURE((node[0] >= 'a' && node[0] <= 'z') || (node[0] >= 'A' && node[0] <= 'Z'),
           ERR_INVALID_ARG);
    for (size_t i = 0; i < n; i++) {
        char c = node[i];
        ENSURE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_',
               ERR_INVALID_ARG);
    }
    return OK_RESULT;
}

/* Node name of layer i: "<node>" on top, "<node>-l<i>" below. */
static RESULT image_node_name(const char *node, size_t i, const char *suffix, char *out,
                              size_t size)
{
    int n = i == 0 && suffix[0] == '\0' ? snprintf(out, size, "%s", node)
                                        : snprintf(out, size, "%s-l%zu%s", node, i, suffix);
    ENSURE(n > 0 && (size_t)n < size, ERR_TOO_LARGE);
    return OK_RESULT;
}

/* One -blockdev value for layer i: format node over an inline file node. */
static RESULT image_blockdev(struct buf *b, const struct disk_layer *chain, size_t n, size_t i,
                             const char *node)
{
    const struct disk_layer *l = &chain[i];
    char name[48], sec_prefix[32];
    /* Layers below the top are read-only; the inline file node inherits it
     * (and a later live commit can reopen both read-write). */
    const char *ro = i > 0 ? ",\"read-only\":true" : "";

    snprintf(sec_prefix, sizeof(sec_prefix), "%s-s", node);

    GUARD(image_node_name(node, i, "", name, sizeof(name)));
    GUARD(image_json_raw(b, "{\"node-name\":"));
    GUARD(image_json_string(b, name));
    GUARD(image_json_raw(b, ",\"driver\":"));
    GUARD(image_json_string(b, image_driver(l->format)));
    GUARD(image_json_raw(b, ro));
    if (l->format == DISK_FORMAT_LUKS) {
        GUARD(image_json_raw(b, ",\"key-secret\":"));
        GUARD(image_json_id(b, sec_prefix, i));
    } else if (l->format == DISK_FORMAT_QCOW2_LUKS) {
        GUARD(image_json_raw(b, ",\"encrypt\":{\"format\":\"luks\",\"key-secret\":"));
        GUARD(image_json_id(b, sec_prefix, i));
        GUARD(image_json_raw(b, "}"));
    }
    GUARD(image_node_name(node, i, "-file", name, sizeof(name)));
    GUARD(image_json_raw(b, ",\"file\":{\"node-name\":"));
    GUARD(image_json_string(b, name));
    GUARD(image_json_raw(b, ",\"driver\":\"file\",\"filename\":"));
    GUARD(image_json_string(b, l->path));
    GUARD(image_json_raw(b, "}"));
    if (image_is_qcow2(l->format)) {
        GUARD(image_json_raw(b, ",\"backing\":"));
        if (i + 1 < n) {
            GUARD(image_node_name(node, i + 1, "", name, sizeof(name)));
            GUARD(image_json_string(b, name));
        } else {
            GUARD(image_json_raw(b, "null"));
        }
    }
    GUARD(image_json_raw(b, "}"));
    return buf_write_u8(b, '\0');
}

vs_result disk_image_qemu_args(const struct disk_layer *chain, size_t n, const char *node,
                               struct proc_args *args)
{
    vs_result rc = OK_RESULT;
    struct buf b = {0};
    char id[48];

    GUARD(image_check_chain(chain, n));
    GUARD(image_check_node(node));
    for (size_t i = 0; i < n; i++) {
        if (chain[i].secret == NULL)
            continue;
        snprintf(id, sizeof(id), "%s-s%zu", node, i);
        GUARD(image_add_secret(args, "-object", id, chain[i].secret));
    }
    /* Bottom first: a -blockdev may only name nodes that already exist. */
    GUARD(buf_alloc(&b, 512, IMAGE_JSON_MAX));
    for (size_t i = n; i-- > 0;) {
        buf_reset(&b);
        GUARD_OUT(image_blockdev(&b, chain, n, i, node));
        GUARD_OUT(proc_args_add(args, "-blockdev"));
        GUARD_OUT(proc_args_add(args, (const char *)buf_data(&b)));
    }
    GUARD_OUT(proc_args_add(args, "-device"));
    GUARD_OUT(proc_args_addf(args, "virtio-blk-pci,drive=%s,id=%s-dev", node, node));
out:
    buf_free(&b);
    return rc;
}
