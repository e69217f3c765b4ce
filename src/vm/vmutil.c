/* vmutil.c - see vmutil.h. */
#include "vm/vmutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/crypto.h"

RESULT vm_check_name(const char *what, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= VM_NAME_MAX) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s name must be 1 to %d characters", what, VM_NAME_MAX - 1);
    }
    if (name[0] == '.' || name[0] == '-') {
        RAISE(ERR_INVALID_ARG);
        return err_detail("%s name must not start with '.' or '-'", what);
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("%s name may only use letters, digits, '.', '_' and '-'", what);
        }
    }
    return OK_RESULT;
}

RESULT vm_uuid_new(char out[VM_UUID_LEN + 1])
{
    uint8_t b[16];
    GUARD(crypto_random(b, sizeof b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 9562 §5.4: version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, VM_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return OK_RESULT;
}

bool vm_is_uuid(const char *s)
{
    for (size_t i = 0; i < VM_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
        if (dash ? s[i] != '-' : !hex)
            return false; /* also stops at the NUL of a shorter string */
    }
    return s[VM_UUID_LEN] == '\0';
}

/* The decimal number of n digits at s, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool vm_is_time(const char *s)
{
    /* "YYYY-MM-DDTHH:MM:SSZ" */
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (s[i] == '\0' || (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]))
            return false;
    }
    int month = digits(s + 5, 2), day = digits(s + 8, 2), hour = digits(s + 11, 2),
        minute = digits(s + 14, 2), second = digits(s + 17, 2);
    return s[sizeof shape - 1] == '\0' && month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
           hour <= 23 && minute <= 59 && second <= 60; /* RFC 3339 §5.7: leap second */
}

void vm_time_now(char out[VM_TIME_LEN])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, VM_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

RESULT vm_b64_encode(const void *data, size_t len, struct buf *out)
{
    ENSURE(len <= (1u << 20), ERR_TOO_LARGE);
    size_t need = 4 * ((len + 2) / 3) + 1;
    uint8_t *dst;
    GUARD(buf_reserve(out, need, &dst));
    int n = EVP_EncodeBlock(dst, data, (int)len);
    ENSURE(n >= 0 && (size_t)n + 1 == need, ERR_INTERNAL);
    return OK_RESULT;
}

RESULT vm_b64_decode(const char *text, struct buf *out)
{
    size_t n = strlen(text);
    ENSURE(n <= (4u << 20), ERR_TOO_LARGE);
    if (n % 4 != 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("base64 text length is not a multiple of 4");
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (c != '=' && i > 0 && text[i - 1] == '=')) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("invalid base64 text");
        }
    }
    size_t pad = (n >= 1 && text[n - 1] == '=') + (n >= 2 && text[n - 2] == '=');
    if (pad > 0) {
        /* RFC 4648 §3.5: the bits of the last character that encode no
         * byte (4 with "==", 2 with "=") must be zero. */
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned v = (unsigned)(strchr(alphabet, text[n - 1 - pad]) - alphabet);
        if ((v & (pad == 2 ? 0x0fu : 0x03u)) != 0) {
            RAISE(ERR_INVALID_ARG);
            return err_detail("invalid base64 text (non-zero padding bits)");
        }
    }
    size_t raw = n / 4 * 3;
    uint8_t *dst;
    size_t start = buf_len(out);
    GUARD(buf_reserve(out, raw, &dst));
    int got = EVP_DecodeBlock(dst, (const unsigned char *)text, (int)n);
    if (got < 0 || (size_t)got != raw) {
        buf_rollback(out, start);
        RAISE(ERR_INVALID_ARG);
        return err_detail("invalid base64 text");
    }
    /* EVP_DecodeBlock decodes padding as zero bytes: drop them. */
    GUARD(buf_truncate(out, start + raw - pad));
    return OK_RESULT;
}

RESULT vm_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("path too long");
    }
    return OK_RESULT;
}
