/*
 * base64.c - strict RFC 4648 §4 base64. See base64.h.
 */
#include "cli/base64.h"

#include <stdint.h>

static const char cli_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1 for a character outside the alphabet. */
static int cli_base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

vs_result cli_base64_encoded_len(size_t n, size_t *out)
{
    size_t groups = n / 3 + (n % 3 != 0);
    ENSURE_MUL(groups, (size_t)4, out);
    return OK_RESULT;
}

vs_result cli_base64_encode(const void *data, size_t n, struct buf *out)
{
    const uint8_t *in = data;
    size_t len;
    uint8_t *dst;

    ENSURE(n == 0 || data != NULL, ERR_NULL_ARG);
    GUARD(cli_base64_encoded_len(n, &len));
    if (len == 0)
        return OK_RESULT;
    GUARD(buf_reserve(out, len, &dst));
    for (size_t i = 0, o = 0; i < n; i += 3, o += 4) {
        size_t rest = n - i;
        uint32_t v = (uint32_t)in[i] << 16;
        if (rest > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rest > 2)
            v |= in[i + 2];
        dst[o] = (uint8_t)cli_base64_alphabet[(v >> 18) & 63];
        dst[o + 1] = (uint8_t)cli_base64_alphabet[(v >> 12) & 63];
        dst[o + 2] = rest > 1 ? (uint8_t)cli_base64_alphabet[(v >> 6) & 63] : '=';
        dst[o + 3] = rest > 2 ? (uint8_t)cli_base64_alphabet[v & 63] : '=';
    }
    return OK_RESULT;
}

vs_result cli_base64_decode(const char *text, size_t len, struct buf *out)
{
    vs_result rc = OK_RESULT;
    size_t start = buf_len(out);

    ENSURE(len == 0 || text != NULL, ERR_NULL_ARG);
    if (len % 4 != 0) {
        rc = RAISE(ERR_INVALID_ARG);
        err_detail("base64 text of %zu characters (not a multiple of 4)", len);
        return rc;
    }
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        bool last = i + 4 == len;
        for (size_t k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)text[i + k];
            /* '=' only at the end of the last group: "xx==" or "xxx=". */
            if (c == '=' && last && k >= 2 && (k == 3 || text[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = cli_base64_value(c);
            if (v[k] < 0 || pad > 0) {
                rc = RAISE(ERR_INVALID_ARG);
                err_detail("invalid base64 character at offset %zu", i + k);
                goto out;
            }
        }
        uint32_t word =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* RFC 4648 §3.5: the bits under the padding must be zero. */
        if ((pad == 1 && (word & 0xff) != 0) || (pad == 2 && (word & 0xffff) != 0)) {
            rc = RAISE(ERR_INVALID_ARG);
            err_detail("non-canonical base64 padding at offset %zu", i);
            goto out;
        }
        uint8_t bytes[3] = {(uint8_t)(word >> 16), (uint8_t)(word >> 8), (uint8_t)word};
        GUARD_OUT(buf_write_bytes(out, bytes, 3 - pad));
    }
out:
    if (!is_ok(rc))
        buf_rollback(out, start);
    return rc;
}
