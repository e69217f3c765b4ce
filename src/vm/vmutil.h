/*
 * vmutil.h - small helpers of the vm room: names, identifiers, base64,
 * times and bounded path building.
 */
#ifndef VMSEAL_VM_VMUTIL_H
#define VMSEAL_VM_VMUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

#define VM_NAME_MAX 64 /* names: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-' */
#define VM_UUID_LEN 36
#define VM_TIME_LEN 21 /* "2026-11-23T10:00:00Z" + NUL */
#define VM_PATH_MAX 4096

/* A name for a VM, snapshot or provider. ERR_INVALID_ARG with a detail
 * ("<what> name '...' ...") otherwise. */
RESULT vm_check_name(const char *what, const char *name) __attribute__((nonnull));

/* A random (version 4) UUID in text form. */
RESULT vm_uuid_new(char out[VM_UUID_LEN + 1]) __attribute__((nonnull));

/* Whether s is a UUID as vm_uuid_new writes it: 8-4-4-4-12 lower-case hex
 * digits. Descriptors name run-time paths after it, so nothing else may
 * pass (no '/', no ".."). */
bool vm_is_uuid(const char *s) __attribute__((nonnull));

/* The current UTC time as RFC 3339 ("2026-11-23T10:00:00Z"). */
void vm_time_now(char out[VM_TIME_LEN]) __attribute__((nonnull));

/* Whether s is a time as vm_time_now writes it (RFC 3339 §5.6, UTC, whole
 * seconds, "Z"). */
bool vm_is_time(const char *s) __attribute__((nonnull));

/* Standard base64 (RFC 4648 §4) of data appended to out, NUL-terminated
 * (the NUL is counted in buf_len). */
RESULT vm_b64_encode(const void *data, size_t len, struct buf *out) __attribute__((nonnull(3)));

/* Decodes strict base64 (padding required, no whitespace, the unused bits
 * of the last character zero: RFC 4648 §3.5, one text per value) into out
 * (secret or not, as out was allocated). ERR_INVALID_ARG on bad input;
 * nothing is appended on failure. */
RESULT vm_b64_decode(const char *text, struct buf *out) __attribute__((nonnull));

/* snprintf into a fixed buffer; ERR_TOO_LARGE if it does not fit. */
RESULT vm_path(char *out, size_t size, const char *fmt, ...)
    __attribute__((nonnull, format(printf, 3, 4)));

#endif
