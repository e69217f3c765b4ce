/*
 * audit.h - one JSON line per KMIP batch item: when, who (certificate
 * identity and address), what (operation, object), and the result. Never key
 * material: the record is built from the audit item alone, which carries
 * none. Lines are appended with one write(2) each (O_APPEND), so lines from
 * worker threads never interleave.
 */
#ifndef VMSEAL_KMS_AUDIT_H
#define VMSEAL_KMS_AUDIT_H

#include "core/result.h"
#include "kms/dispatch.h"

struct kms_audit;

/* Opens (creating, mode 0600) the audit file for appending. */
RESULT kms_audit_open(const char *path, struct kms_audit **out) __attribute__((nonnull));
void kms_audit_close(struct kms_audit **a);

/* The peer address to record with the next items of this thread. */
void kms_audit_set_peer(const char *peer);

/* A kms_audit_fn: ctx is the struct kms_audit. */
void kms_audit_write(void *ctx, const struct kms_audit_item *item);

#endif
