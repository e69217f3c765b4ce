/*
 * dispatch.h - one KMIP request message in, one response message out.
 *
 * No network here: the server calls it from a worker thread with the bytes
 * it framed, and the request-handler fuzz target calls it directly.
 */
#ifndef VMSEAL_KMS_DISPATCH_H
#define VMSEAL_KMS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kms/ops.h"

/* What happened to one batch item, for the audit log. */
struct kms_audit_item {
    const struct kms_principal *who;
    struct kmip_version version;
    uint32_t operation; /* 0 when the message itself was invalid */
    const char *uid;    /* object touched, "" if none */
    uint32_t status;
    uint32_t reason; /* when status is not Success */
    const char *message;
};

typedef void (*kms_audit_fn)(void *ctx, const struct kms_audit_item *item);

/* Everything a worker needs that outlives one request. */
struct kms_worker_ctx {
    struct kms_store *store;
    struct kms_store_reader *reader;
    struct buf scratch; /* secret: payloads carry key material */
    kms_audit_fn audit;
    void *audit_ctx;
};

RESULT kms_worker_ctx_init(struct kms_worker_ctx *w, struct kms_store *store, kms_audit_fn audit,
                           void *audit_ctx) __attribute__((nonnull(1, 2)));
void kms_worker_ctx_free(struct kms_worker_ctx *w);

/* Processes a request, appending the whole response message to resp.
 * Fails only if no response can be written at all (resp too small even for
 * an error): the caller then closes the connection. now is the time
 * stamp. */
RESULT kms_dispatch(struct kms_worker_ctx *w, const struct kms_principal *who, const uint8_t *msg,
                    size_t len, int64_t now, struct buf *resp) __attribute__((nonnull(1, 2, 6)));

/* Whether every item of the request is a quick read of at most one object
 * (Discover Versions, Query, Get, Get Attributes, Get Attribute List): such
 * a request may be answered on the event loop itself, sparing two thread
 * hand-offs. False for anything that writes, may take long (Locate), or
 * does not parse (the worker then writes the error). */
bool kms_request_is_quick(const uint8_t *msg, size_t len);

#endif
