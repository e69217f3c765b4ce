/*
 * base64.h - strict base64 (RFC 4648 §4, the standard alphabet, padded, no
 * line breaks), as the API carries provider backups.
 *
 * The decoder is strict on purpose: it refuses whitespace, a missing or
 * misplaced '=', characters outside the alphabet and non-zero pad bits
 * (RFC 4648 §3.5), so that one backup has exactly one encoding and a
 * damaged answer is noticed rather than half-decoded.
 */
#ifndef VMSEAL_CLI_BASE64_H
#define VMSEAL_CLI_BASE64_H

#include <stddef.h>

#include "core/buf.h"
#include "core/result.h"

/* The length of the encoding of n bytes (without a NUL); ERR_OVERFLOW if it
 * does not fit in a size_t. */
RESULT cli_base64_encoded_len(size_t n, size_t *out) __attribute__((nonnull));

/* Appends the encoding of n bytes at data to out (no NUL). On failure
 * (ERR_BUF_LIMIT, ERR_OVERFLOW) nothing is appended. */
RESULT cli_base64_encode(const void *data, size_t n, struct buf *out) __attribute__((nonnull(3)));

/* Decodes len characters of text and appends the bytes to out. ERR_INVALID_ARG
 * (with a detail naming the offset) on anything but a strict encoding;
 * nothing is appended on failure. */
RESULT cli_base64_decode(const char *text, size_t len, struct buf *out) __attribute__((nonnull(3)));

#endif
