/*
 * ops.h - the KMIP operations of vmseal-kms, one handler each, found
 * through one table (kms_op_find). A handler reads its Request Payload and
 * writes the contents of its Response Payload; on failure it fills in the
 * KMIP Result Reason and Result Message and writes nothing.
 *
 * Authorization is by owner: an object belongs to the identity (or group)
 * that created it. A client sees only objects of its identity and groups;
 * an admin identity sees all. Objects of others are reported as not found,
 * so that their existence does not leak.
 */
#ifndef VMSEAL_KMS_OPS_H
#define VMSEAL_KMS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kmip/msg.h"
#include "kms/object.h"
#include "kms/store.h"

#define KMS_MAX_GROUPS 8

/* Who is asking: from the client certificate, and configuration. */
struct kms_principal {
    char identity[KMS_OWNER_MAX];
    /* The owner new objects get: the identity's group if it has one. */
    char owner[KMS_OWNER_MAX];
    /* Its groups as owners: "group:NAME". */
    char groups[KMS_MAX_GROUPS][KMS_OWNER_MAX];
    /* Every owner whose objects it may use: identity and its groups. */
    const char *owners[KMS_MAX_GROUPS + 1];
    size_t owner_count;
    bool admin;
};

/* Per worker thread: where objects are, and the batch being processed. */
struct kms_ctx {
    struct kms_store *store;
    struct kms_store_reader *reader;
    const struct kms_principal *who;
    struct kmip_version version; /* of the response */
    int64_t now;
    /* ID Placeholder (KMIP 1.4 §6.15 / 2.1 §3.2.1): the Unique Identifier
     * of the last object an operation of this batch created or used. */
    char id_placeholder[KMS_UID_MAX];
    /* For the audit line: the object the current operation touched. */
    char touched[KMS_UID_MAX];
    /* Scratch in secret memory for payloads that carry key material. */
    struct buf *scratch;
};

/* A handler's refusal, as KMIP reports it. */
struct kms_op_error {
    uint32_t reason;
    char message[256];
};

typedef vs_result (*kms_op_fn)(struct kms_ctx *c, const struct ttlv *payload, struct buf *out,
                               struct kms_op_error *err);

struct kms_op {
    uint32_t operation;
    kms_op_fn fn;
    bool retry; /* re-run on a concurrent change of its object */
};

/* The handler of an operation, or NULL if vmseal-kms does not support it. */
const struct kms_op *kms_op_find(uint32_t operation);

/* Runs an operation's handler (retrying it if the table says so). */
RESULT kms_op_run(const struct kms_op *op, struct kms_ctx *c, const struct ttlv *payload,
                  struct buf *out, struct kms_op_error *err) __attribute__((nonnull));

/* Operations supported, for Query (in table order). */
size_t kms_op_count(void);
uint32_t kms_op_at(size_t i);

/* Server identity for Query Server Information. */
#define KMS_VENDOR_IDENTIFICATION "vmseal"

#endif
