/*
 * result.h - typed results, the error table and the guard macros.
 *
 * Every function that can fail returns a vs_result and is declared with
 * RESULT, which carries warn_unused_result: with -Werror, ignoring a failure
 * does not compile. A vs_result is a struct, not an int, so that it cannot be
 * mistaken for a count or a boolean.
 *
 * On failure the code, the file and line where it was raised, and an optional
 * detail sentence are recorded in thread-local state (err_last()), so that the
 * caller at the top can say what went wrong and where without every layer
 * having to pass strings around. Details never contain secret material.
 *
 * Two styles of propagation, both used across the tree:
 *
 *     GUARD(buf_read_u32(b, &tag));          return early on failure
 *     ENSURE(len <= max, ERR_TOO_LARGE);      raise if the condition is false
 *
 * and, where resources must be released, a single exit:
 *
 *     vs_result rc = OK_RESULT;
 *     GUARD_OUT(step_one(x));                 rc = ..., goto out on failure
 *     ENSURE_OUT(y != NULL, ERR_NOT_FOUND);
 *   out:
 *     thing_free(&x);
 *     return rc;
 */
#ifndef VMSEAL_CORE_RESULT_H
#define VMSEAL_CORE_RESULT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The error table, written once. X(NAME, message): NAME becomes ERR_NAME; the
 * message is what a person reads. Rooms above core add their codes here, in
 * their own block, so that codes stay unique and every code has a message.
 */
#define VS_ERRORS(X)                                                           \
    /* general */                                                              \
    X(OK, "success")                                                           \
    X(NOMEM, "out of memory")                                                  \
    X(NULL_ARG, "a required argument is missing")                              \
    X(INVALID_ARG, "invalid argument")                                         \
    X(OVERFLOW, "size arithmetic overflow")                                    \
    X(TOO_LARGE, "input exceeds the size limit")                               \
    X(INTERNAL, "internal error")                                              \
    X(UNSUPPORTED, "not supported")                                            \
    /* bounded buffers */                                                      \
    X(BUF_SHORT, "read past the end of the data")                              \
    X(BUF_LIMIT, "write exceeds the buffer's size limit")                      \
    X(BUF_READONLY, "write to a read-only buffer")                             \
    X(HEX, "invalid hexadecimal string")                                       \
    /* secrets and crypto */                                                   \
    X(SECRET_MLOCK, "cannot lock secret memory in RAM (raise RLIMIT_MEMLOCK)") \
    X(CRYPTO, "cryptographic library failure")                                 \
    X(AUTH, "authentication failed: wrong key or tampered data")               \
    X(KEY_LEN, "wrong key length")                                             \
    /* files and the system */                                                 \
    X(IO, "I/O error")                                                         \
    X(NOT_FOUND, "not found")                                                  \
    X(EXISTS, "already exists")                                                \
    X(PERM, "permission denied")                                               \
    /* configuration */                                                        \
    X(CONFIG_SYNTAX, "syntax error in configuration file")                     \
    X(CONFIG_VALUE, "invalid value in configuration file")                     \
    X(CONFIG_UNKNOWN, "unknown key in configuration file")                     \
    X(CONFIG_DUPLICATE, "key set twice in configuration file")                 \
    /* kmip: TTLV codec (KMIP 1.4 §9.1, 2.1 §15) */                          \
    X(TTLV_TAG, "invalid TTLV tag")                                            \
    X(TTLV_TYPE, "invalid TTLV item type")                                     \
    X(TTLV_LENGTH, "TTLV item length does not suit its type")                  \
    X(TTLV_TRUNCATED, "TTLV item runs past the end of its container")          \
    X(TTLV_TRAILING, "bytes follow the TTLV message")                          \
    X(TTLV_VALUE, "invalid TTLV value")                                        \
    X(TTLV_DEPTH, "TTLV structures nested too deeply")                         \
    X(TTLV_TOO_MANY, "too many TTLV items in one message")                     \
    X(TTLV_MISSING, "a required TTLV field is missing")                        \
    X(TTLV_WRONG_TYPE, "a TTLV field has the wrong type")                      \
    /* kmip: messages (KMIP 1.4 §7, §11) */                                  \
    X(KMIP_INVALID_MESSAGE, "invalid KMIP message")                            \
    X(KMIP_VERSION, "KMIP protocol version not supported")                     \
    X(KMIP_ATTRIBUTE, "invalid or unknown KMIP attribute")                     \
    /* kms */                                                                  \
    X(STORE, "key store failure")                                              \
    X(CONFLICT, "the object was changed concurrently")                         \
    X(KMIP_FAILED, "KMIP operation failed")                                    \
    /* disks (LUKS1: cryptsetup's on-disk format spec 1.2.3) */                \
    X(LUKS_HEADER, "invalid or unsupported LUKS1 header")                      \
    X(LUKS_KEY, "no LUKS key slot opens with this secret")                     \
    X(DISK_FORMAT, "invalid or unsupported disk image")                        \
    X(CHILD, "an external program failed")                                     \
    X(CANCELLED, "the operation was cancelled")                                \
    /* key providers */                                                        \
    X(KEY_UNAVAILABLE, "the key cannot be fetched from its key provider")      \
    X(KEY_STATE, "the key is not in a state that allows this use")             \
    X(PROVIDER, "key provider failure")                                        \
    /* VMs */                                                                  \
    X(VM_STATE, "the VM's state does not allow this operation")                \
    X(VM_LOCKED, "the VM is locked: its key cannot be fetched")                \
    X(DESCRIPTOR, "invalid or tampered VM descriptor")                         \
    X(JOURNAL, "invalid VM journal")                                           \
    X(BUSY, "another operation is in progress on this object")                \
    /* management: users, privileges */                                        \
    X(UNAUTHENTICATED, "authentication required: no valid session")            \
    X(FORBIDDEN, "permission denied: a privilege is missing")                  \
    X(RATE_LIMITED, "too many failed attempts: try again later")

enum err_code {
#define VS_ERR_ENUM(name, msg) ERR_##name,
    VS_ERRORS(VS_ERR_ENUM)
#undef VS_ERR_ENUM
        ERR_COUNT_
};

typedef struct vs_result {
    enum err_code code;
} vs_result;

#define RESULT __attribute__((warn_unused_result)) vs_result

#define OK_RESULT ((vs_result){ERR_OK})

/* The last error raised on this thread. */
struct err_state {
    enum err_code code;
    const char *file; /* static string from __FILE__ */
    int line;
    int sys_errno;    /* errno at the time, when the error came from a syscall */
    char detail[256]; /* optional, never secret; "" when none */
};

/* Records code at file:line, clears the detail, and returns {code}. */
vs_result err_raise(enum err_code code, const char *file, int line);

/* Adds a detail sentence to the last error (printf-style, truncated to fit).
 * Returns the last error's result so it can be returned directly. */
vs_result err_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records errno alongside the last error; the message includes strerror. */
vs_result err_errno(int sys_errno);

/* The message of a code ("read past the end of the data"); never NULL. */
const char *err_message(enum err_code code);

/* The name of a code ("ERR_BUF_SHORT"); never NULL. */
const char *err_name(enum err_code code);

/* This thread's last error. Never NULL. */
const struct err_state *err_last(void);

/* Forgets this thread's last error. */
void err_clear(void);

/* Makes e this thread's last error (carrying an error across threads) and
 * returns its result. */
vs_result err_restore(const struct err_state *e);

/* Writes "message: detail (file:line)" for the last error into out (always
 * NUL-terminated when size > 0). Returns out. */
char *err_format(char *out, size_t size);

static inline bool is_ok(vs_result r)
{
    return r.code == ERR_OK;
}

#define RAISE(ecode) err_raise((ecode), __FILE__, __LINE__)

#define BAIL(ecode) return RAISE(ecode)

#define ENSURE(cond, ecode) \
    do {                    \
        if (!(cond))        \
            BAIL(ecode);    \
    } while (0)

#define ENSURE_REF(ptr) ENSURE((ptr) != NULL, ERR_NULL_ARG)

#define GUARD(expr)                       \
    do {                                  \
        vs_result guard_result_ = (expr); \
        if (guard_result_.code != ERR_OK) \
            return guard_result_;         \
    } while (0)

/* Single-exit forms: need `vs_result rc` in scope and a label `out`. */
#define GUARD_OUT(expr)        \
    do {                       \
        rc = (expr);           \
        if (rc.code != ERR_OK) \
            goto out;          \
    } while (0)

#define ENSURE_OUT(cond, ecode) \
    do {                        \
        if (!(cond)) {          \
            rc = RAISE(ecode);  \
            goto out;           \
        }                       \
    } while (0)

#define BAIL_OUT(ecode)    \
    do {                   \
        rc = RAISE(ecode); \
        goto out;          \
    } while (0)

/* Drops a result on purpose: best-effort cleanup after another error has
 * been recorded (which the caller saves and restores around it). The one
 * sanctioned way, so that every such place can be found. */
static inline void result_ignore(vs_result r)
{
    (void)r;
}

/* Overflow-checked size arithmetic. */
#define ENSURE_ADD(a, b, out) ENSURE(!__builtin_add_overflow((a), (b), (out)), ERR_OVERFLOW)
#define ENSURE_MUL(a, b, out) ENSURE(!__builtin_mul_overflow((a), (b), (out)), ERR_OVERFLOW)

#endif
