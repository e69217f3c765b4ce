/*
 * dispatch.c - from request bytes to response bytes. See dispatch.h.
 */
#include "kms/dispatch.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "kmip/kmip_defs.h"

/* Response payloads: a Get carries at most a key, Locate a list of ids. */
#define KMS_PAYLOAD_MAX (1u << 20)

vs_result kms_worker_ctx_init(struct kms_worker_ctx *w, struct kms_store *store, kms_audit_fn audit,
                              void *audit_ctx)
{
    memset(w, 0, sizeof(*w));
    w->store = store;
    w->audit = audit;
    w->audit_ctx = audit_ctx;
    GUARD(kms_store_reader_open(store, &w->reader));
    vs_result rc = buf_alloc_secret(&w->scratch, 0, KMS_PAYLOAD_MAX);
    if (!is_ok(rc))
        kms_store_reader_close(&w->reader);
    return rc;
}

void kms_worker_ctx_free(struct kms_worker_ctx *w)
{
    if (w == NULL)
        return;
    kms_store_reader_close(&w->reader);
    buf_free(&w->scratch);
}

static void kms_audit(struct kms_worker_ctx *w, const struct kms_principal *who,
                      struct kmip_version v, uint32_t op, const char *uid, uint32_t status,
                      uint32_t reason, const char *message)
{
    if (w->audit == NULL)
        return;
    struct kms_audit_item it = {who, v, op, uid ? uid : "", status, reason, message};
    w->audit(w->audit_ctx, &it);
}

bool kms_request_is_quick(const uint8_t *msg, size_t len)
{
    struct kmip_request req;
    bool quick;

    if (!is_ok(kmip_request_parse(msg, len, NULL, &req)))
        return false;
    quick = req.item_count > 0;
    for (size_t i = 0; i < req.item_count && quick; i++) {
        switch (req.items[i].operation) {
        case KMIP_OP_DISCOVER_VERSIONS:
        case KMIP_OP_QUERY:
        case KMIP_OP_GET:
        case KMIP_OP_GET_ATTRIBUTES:
        case KMIP_OP_GET_ATTRIBUTE_LIST:
            break;
        default:
            quick = false;
        }
    }
    kmip_request_free(&req);
    return quick;
}

vs_result kms_dispatch(struct kms_worker_ctx *w, const struct kms_principal *who,
                       const uint8_t *msg, size_t len, int64_t now, struct buf *resp)
{
    struct kmip_request req;
    struct kmip_response r;
    struct kms_ctx c;
    size_t start = buf_len(resp);
    vs_result rc;

    rc = kmip_request_parse(msg, len, NULL, &req);
    if (!is_ok(rc)) {
        /* §11.1: a message that cannot be parsed, or of a major version we
         * do not speak, gets one Batch Item without Operation. */
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", err_last()->detail);
        kms_audit(w, who, req.version, 0, NULL, KMIP_STATUS_OPERATION_FAILED,
                  KMIP_REASON_INVALID_MESSAGE, detail);
        kmip_request_free(&req);
        return kmip_response_message_error(resp, req.version, now, KMIP_REASON_INVALID_MESSAGE,
                                           detail);
    }

    memset(&c, 0, sizeof(c));
    c.store = w->store;
    c.reader = w->reader;
    c.who = who;
    c.now = now;
    c.scratch = &w->scratch;
    (void)kmip_version_negotiate(req.version, &c.version); /* parse checked the major */

    GUARD_OUT(kmip_response_begin(&r, resp, c.version, now));
    for (size_t i = 0; i < req.item_count; i++) {
        const struct kmip_batch_item *item = &req.items[i];
        const struct kms_op *op = item->error ? NULL : kms_op_find(item->operation);
        struct kms_op_error err = {0, ""};
        vs_result hr;

        buf_reset(&w->scratch);
        c.touched[0] = '\0';
        if (item->error != NULL) {
            err.reason = KMIP_REASON_INVALID_MESSAGE;
            snprintf(err.message, sizeof(err.message), "%s", item->error);
            hr = RAISE(ERR_KMIP_FAILED);
        } else if (op == NULL) {
            err.reason = KMIP_REASON_OPERATION_NOT_SUPPORTED;
            snprintf(err.message, sizeof(err.message), "%s is not supported",
                     kmip_operation_name(item->operation) ? kmip_operation_name(item->operation)
                                                          : "this operation");
            hr = RAISE(ERR_KMIP_FAILED);
        } else if (item->payload == NULL) {
            err.reason = KMIP_REASON_INVALID_MESSAGE;
            snprintf(err.message, sizeof(err.message), "Request Payload is missing");
            hr = RAISE(ERR_KMIP_FAILED);
        } else {
            hr = kms_op_run(op, &c, item->payload, &w->scratch, &err);
            if (!is_ok(hr) && err.reason == 0) {
                /* The handler failed without a KMIP verdict: our fault. */
                char m[256];
                log_error("handler failed", LOG_S("error", err_format(m, sizeof(m))));
                err.reason = hr.code == ERR_BUF_LIMIT ? KMIP_REASON_RESPONSE_TOO_LARGE
                                                      : KMIP_REASON_GENERAL_FAILURE;
                snprintf(err.message, sizeof(err.message), "%s",
                         hr.code == ERR_BUF_LIMIT ? "response too large" : "internal error");
            }
        }

        bool ok = is_ok(hr);
        size_t before = buf_len(resp);
        rc = kmip_response_add(&r, item->operation, item->id, item->id_len,
                               ok ? KMIP_STATUS_SUCCESS : KMIP_STATUS_OPERATION_FAILED, err.reason,
                               err.message, buf_data(&w->scratch), buf_len(&w->scratch));
        /* §11.1: a response over the client's Maximum Response Size, or
         * over ours, becomes Response Too Large for that item. */
        if (is_ok(rc) && req.max_response_size != 0 &&
            buf_len(resp) - start > req.max_response_size) {
            GUARD_OUT(buf_truncate(resp, before));
            r.batch_count--;
            ok = false;
            err.reason = KMIP_REASON_RESPONSE_TOO_LARGE;
            snprintf(err.message, sizeof(err.message), "response exceeds Maximum Response Size");
            rc = kmip_response_add(&r, item->operation, item->id, item->id_len,
                                   KMIP_STATUS_OPERATION_FAILED, err.reason, err.message, NULL, 0);
        }
        if (rc.code == ERR_BUF_LIMIT) {
            ok = false;
            err.reason = KMIP_REASON_RESPONSE_TOO_LARGE;
            snprintf(err.message, sizeof(err.message), "response too large");
            rc = kmip_response_add(&r, item->operation, item->id, item->id_len,
                                   KMIP_STATUS_OPERATION_FAILED, err.reason, err.message, NULL, 0);
        }
        GUARD_OUT(rc);
        kms_audit(w, who, c.version, item->operation, c.touched,
                  ok ? KMIP_STATUS_SUCCESS : KMIP_STATUS_OPERATION_FAILED, err.reason,
                  ok ? NULL : err.message);
        /* Batch Error Continuation Option (1.4 §6.7): Stop (the default)
         * ends the batch at the first failure. Undo is treated as Stop:
         * vmseal-kms does not undo earlier items. */
        if (!ok && req.batch_error_option != KMIP_BATCH_ERROR_CONTINUE)
            break;
    }
    GUARD_OUT(kmip_response_end(&r));
out:
    buf_reset(&w->scratch);
    kmip_request_free(&req);
    if (!is_ok(rc))
        buf_rollback(resp, start);

    return rc;
}
