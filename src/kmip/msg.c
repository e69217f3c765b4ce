/*
 * msg.c - KMIP request parsing and response encoding. See msg.h.
 */
#include "kmip/msg.h"

#include <stdlib.h>
#include <string.h>

#include "kmip/kmip_defs.h"

/* KMIP 2.1 §12 and 1.4 §12: every version from 1.0; newest first. */
const struct kmip_version kmip_versions[] = {
    {2, 1}, {2, 0}, {1, 4}, {1, 3}, {1, 2}, {1, 1}, {1, 0},
};
const size_t kmip_version_count = sizeof(kmip_versions) / sizeof(kmip_versions[0]);

bool kmip_version_negotiate(struct kmip_version v, struct kmip_version *answer)
{
    for (size_t i = 0; i < kmip_version_count; i++) {
        const struct kmip_version *k = &kmip_versions[i];
        /* The first (newest) of the same major that is not newer than v. */
        if (k->major == v.major && k->minor <= v.minor) {
            *answer = *k;
            return true;
        }
    }
    return false;
}

void kmip_request_free(struct kmip_request *req)
{
    if (req == NULL)
        return;
    ttlv_doc_free(&req->doc);
    free(req->items);
    req->items = NULL;
    req->item_count = 0;
}

static vs_result kmip_invalid(const char *why)
{
    RAISE(ERR_KMIP_INVALID_MESSAGE);
    return err_detail("%s", why);
}

/* The field with this tag, which must appear at most once (§11.1: the same
 * field twice is an Invalid Message). *dup is set if it appears again. */
static const struct ttlv *kmip_field(const struct ttlv *s, uint32_t tag, bool *dup)
{
    const struct ttlv *f = ttlv_find(s, tag);
    if (f != NULL && ttlv_find_next(f) != NULL)
        *dup = true;
    return f;
}

static RESULT kmip_parse_header(const struct ttlv *hdr, struct kmip_request *req,
                                int32_t *batch_count)
{
    bool dup = false;
    const struct ttlv *pv, *f;
    struct kmip_version answer;

    if (!is_ok(ttlv_get_struct(hdr)))
        return kmip_invalid("missing Request Header");
    pv = kmip_field(hdr, KMIP_TAG_PROTOCOL_VERSION, &dup);
    if (!is_ok(ttlv_get_struct(pv)) ||
        !is_ok(ttlv_get_integer(kmip_field(pv, KMIP_TAG_PROTOCOL_VERSION_MAJOR, &dup),
                                &req->version.major)) ||
        !is_ok(ttlv_get_integer(kmip_field(pv, KMIP_TAG_PROTOCOL_VERSION_MINOR, &dup),
                                &req->version.minor)))
        return kmip_invalid("missing or malformed Protocol Version");
    if (!kmip_version_negotiate(req->version, &answer)) {
        RAISE(ERR_KMIP_VERSION);
        return err_detail("protocol version %d.%d: this server speaks 1.0 to 2.1",
                          req->version.major, req->version.minor);
    }

    f = kmip_field(hdr, KMIP_TAG_MAXIMUM_RESPONSE_SIZE, &dup);
    if (f != NULL) {
        int32_t max;
        if (!is_ok(ttlv_get_integer(f, &max)) || max <= 0)
            return kmip_invalid("malformed Maximum Response Size");
        req->max_response_size = (uint32_t)max;
    }
    req->has_authentication = kmip_field(hdr, KMIP_TAG_AUTHENTICATION, &dup) != NULL;

    f = kmip_field(hdr, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION, &dup);
    if (f != NULL) {
        uint32_t opt;
        if (!is_ok(ttlv_get_enum(f, &opt)) ||
            (opt != KMIP_BATCH_ERROR_CONTINUE && opt != KMIP_BATCH_ERROR_STOP &&
             opt != KMIP_BATCH_ERROR_UNDO))
            return kmip_invalid("malformed Batch Error Continuation Option");
        req->batch_error_option = opt;
    }
    if (!is_ok(ttlv_get_integer(kmip_field(hdr, KMIP_TAG_BATCH_COUNT, &dup), batch_count)))
        return kmip_invalid("missing or malformed Batch Count");
    if (dup)
        return kmip_invalid("a field appears twice in the Request Header");
    return OK_RESULT;
}

static void kmip_parse_item(const struct ttlv *it, struct kmip_batch_item *item)
{
    bool dup = false;
    const struct ttlv *f;

    memset(item, 0, sizeof(*item));
    if (it->type != TTLV_STRUCTURE) {
        item->error = "Batch Item is not a Structure";
        return;
    }
    if (!is_ok(ttlv_get_enum(kmip_field(it, KMIP_TAG_OPERATION, &dup), &item->operation))) {
        item->error = "missing or malformed Operation";
        return;
    }
    f = kmip_field(it, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, &dup);
    if (f != NULL && !is_ok(ttlv_get_bytes(f, &item->id, &item->id_len))) {
        item->error = "malformed Unique Batch Item ID";
        return;
    }
    f = kmip_field(it, KMIP_TAG_REQUEST_PAYLOAD, &dup);
    if (f != NULL && f->type != TTLV_STRUCTURE) {
        item->error = "Request Payload is not a Structure";
        return;
    }
    item->payload = f;
    if (dup)
        item->error = "a field appears twice in the Batch Item";
}

vs_result kmip_request_parse(const uint8_t *msg, size_t len, const struct ttlv_limits *limits,
                             struct kmip_request *req)
{
    vs_result rc = OK_RESULT;
    const struct ttlv *root;
    int32_t batch_count = 0;
    size_t n;

    memset(req, 0, sizeof(*req));
    req->version = (struct kmip_version){1, 0};
    req->batch_error_option = KMIP_BATCH_ERROR_STOP; /* §6.8's default */

    rc = ttlv_decode(msg, len, limits, &req->doc);
    if (!is_ok(rc)) {
        char why[200];
        err_format(why, sizeof(why));
        return kmip_invalid(why);
    }
    root = ttlv_doc_root(req->doc);
    ENSURE_OUT(root->tag == KMIP_TAG_REQUEST_MESSAGE && root->type == TTLV_STRUCTURE,
               ERR_KMIP_INVALID_MESSAGE);
    GUARD_OUT(kmip_parse_header(ttlv_find(root, KMIP_TAG_REQUEST_HEADER), req, &batch_count));

    n = ttlv_count(root, KMIP_TAG_BATCH_ITEM);
    if (batch_count < 1 || (size_t)batch_count != n) {
        rc = kmip_invalid("Batch Count does not match the Batch Items");
        goto out;
    }
    if (n > KMIP_MAX_BATCH_ITEMS) {
        rc = kmip_invalid("too many Batch Items");
        goto out;
    }
    req->items = calloc(n, sizeof(*req->items));
    ENSURE_OUT(req->items != NULL, ERR_NOMEM);
    req->item_count = n;
    size_t i = 0;
    for (const struct ttlv *it = ttlv_find(root, KMIP_TAG_BATCH_ITEM); it != NULL;
         it = ttlv_find_next(it))
        kmip_parse_item(it, &req->items[i++]);
out:
    if (!is_ok(rc)) {
        struct kmip_version v = req->version;
        kmip_request_free(req);
        req->version = v; /* what to answer the error with */
    }
    return rc;
}

/* --- responses --- */

vs_result kmip_response_begin(struct kmip_response *r, struct buf *out, struct kmip_version v,
                              int64_t now)
{
    size_t hdr, pv, start = buf_len(out);
    vs_result rc = OK_RESULT;

    memset(r, 0, sizeof(*r));
    r->out = out;
    r->version = v;
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_RESPONSE_MESSAGE, &r->message_mark));
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_RESPONSE_HEADER, &hdr));
    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_PROTOCOL_VERSION, &pv));
    GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_PROTOCOL_VERSION_MAJOR, v.major));
    GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_PROTOCOL_VERSION_MINOR, v.minor));
    GUARD_OUT(ttlv_enc_end(out, pv));
    GUARD_OUT(ttlv_enc_date_time(out, KMIP_TAG_TIME_STAMP, now));
    r->batch_count_at = buf_len(out) + TTLV_HEADER_LEN;
    GUARD_OUT(ttlv_enc_integer(out, KMIP_TAG_BATCH_COUNT, 0)); /* filled in at the end */
    GUARD_OUT(ttlv_enc_end(out, hdr));
out:
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}

vs_result kmip_response_add(struct kmip_response *r, uint32_t operation, const uint8_t *id,
                            size_t id_len, uint32_t status, uint32_t reason, const char *message,
                            const uint8_t *payload, size_t payload_len)
{
    struct buf *out = r->out;
    size_t item, pl, start = buf_len(out);
    vs_result rc = OK_RESULT;

    GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_BATCH_ITEM, &item));
    if (operation != 0)
        GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_OPERATION, operation));
    if (id != NULL)
        GUARD_OUT(ttlv_enc_bytes(out, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, id, id_len));
    GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_RESULT_STATUS, status));
    if (status != KMIP_STATUS_SUCCESS) {
        GUARD_OUT(ttlv_enc_enum(out, KMIP_TAG_RESULT_REASON, reason));
        if (message != NULL)
            GUARD_OUT(ttlv_enc_text(out, KMIP_TAG_RESULT_MESSAGE, message, strlen(message)));
    } else {
        GUARD_OUT(ttlv_enc_begin(out, KMIP_TAG_RESPONSE_PAYLOAD, &pl));
        if (payload_len > 0)
            GUARD_OUT(buf_write_bytes(out, payload, payload_len));
        GUARD_OUT(ttlv_enc_end(out, pl));
    }
    GUARD_OUT(ttlv_enc_end(out, item));
    r->batch_count++;
out:
    if (!is_ok(rc))
        buf_rollback(out, start);

    return rc;
}

vs_result kmip_response_end(struct kmip_response *r)
{
    GUARD(buf_patch_u32(r->out, r->batch_count_at, (uint32_t)r->batch_count));
    return ttlv_enc_end(r->out, r->message_mark);
}

vs_result kmip_response_message_error(struct buf *out, struct kmip_version v, int64_t now,
                                      uint32_t reason, const char *message)
{
    struct kmip_response r;
    struct kmip_version answer;

    if (!kmip_version_negotiate(v, &answer))
        answer = v.major >= 2 ? kmip_versions[0] : (struct kmip_version){1, 0};
    GUARD(kmip_response_begin(&r, out, answer, now));
    GUARD(
        kmip_response_add(&r, 0, NULL, 0, KMIP_STATUS_OPERATION_FAILED, reason, message, NULL, 0));
    return kmip_response_end(&r);
}
