/*
 * msg.h - KMIP request and response messages (KMIP 1.4 §7, 2.1 §8): the
 * envelope around operations.
 *
 *   Request Message
 *     Request Header: Protocol Version, [Maximum Response Size],
 *       [Authentication], [Batch Error Continuation Option], Batch Count, ...
 *     Batch Item (Batch Count times): Operation, [Unique Batch Item ID],
 *       Request Payload
 *
 *   Response Message
 *     Response Header: Protocol Version, Time Stamp, Batch Count
 *     Batch Item: [Operation], [Unique Batch Item ID], Result Status,
 *       [Result Reason], [Result Message], [Response Payload]
 *
 * Parsing is separate from dispatch: kmip_request_parse checks the envelope
 * and hands out the batch items; an operation's handler reads its own
 * payload. Errors are told apart as KMIP needs them (§11.1): a message that
 * cannot be parsed at all is answered with one Batch Item without Operation;
 * a bad batch item fails only that item.
 */
#ifndef VMSEAL_KMIP_MSG_H
#define VMSEAL_KMIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kmip/ttlv.h"

struct kmip_version {
    int32_t major;
    int32_t minor;
};

/* Whether v is KMIP 2.x, whose attributes and errors differ from 1.x. */
static inline bool kmip_version_is_2(struct kmip_version v)
{
    return v.major >= 2;
}

/* The versions vmseal-kms speaks, newest first (Discover Versions order). */
extern const struct kmip_version kmip_versions[];
extern const size_t kmip_version_count;

/* The version to answer a request of version v with: v itself if we speak
 * it; for an unknown minor of a major we speak, our newest minor of that
 * major (KMIP 1.4 §11.1: same major, other minor: process normally).
 * False if the major is not one we speak. */
bool kmip_version_negotiate(struct kmip_version v, struct kmip_version *answer)
    __attribute__((nonnull));

/* One batch item of a request. Pointers point into the request's message. */
struct kmip_batch_item {
    uint32_t operation;
    const uint8_t *id; /* Unique Batch Item ID, or NULL */
    size_t id_len;
    const struct ttlv *payload; /* the Request Payload Structure; NULL if absent */
    /* Set when this item itself is malformed (§11.1 "error parsing batch
     * item"): answer it with Invalid Message and this text. */
    const char *error;
};

struct kmip_request {
    struct ttlv_doc *doc;
    struct kmip_version version; /* as the client sent it */
    uint32_t batch_error_option; /* KMIP_BATCH_ERROR_* (default Stop) */
    uint32_t max_response_size;  /* 0: no limit asked */
    bool has_authentication;
    size_t item_count;
    struct kmip_batch_item *items;
};

/* Limits on a request beyond the TTLV limits. */
#define KMIP_MAX_BATCH_ITEMS 256

/* Parses a request message. On success fills req (free with
 * kmip_request_free). On a message-level error (TTLV does not decode, not a
 * Request Message, header missing or malformed, Batch Count that does not
 * match, too many items) returns ERR_KMIP_INVALID_MESSAGE with a detail for
 * the Result Message; req->version then holds the version to answer with if
 * the header got that far (1.0 otherwise), and req holds nothing to free
 * but is safe to pass to kmip_request_free. An unsupported major version is
 * ERR_KMIP_VERSION. */
RESULT kmip_request_parse(const uint8_t *msg, size_t len, const struct ttlv_limits *limits,
                          struct kmip_request *req) __attribute__((nonnull(4)));

void kmip_request_free(struct kmip_request *req);

/* --- responses --- */

/* A response under construction: where the message and its Batch Count
 * are, so the count can be filled in when the items are known. */
struct kmip_response {
    struct buf *out;
    struct kmip_version version;
    size_t message_mark;
    size_t batch_count_at; /* offset of the Batch Count's value */
    int32_t batch_count;
};

/* Starts a Response Message with its header; now is the Time Stamp. */
RESULT kmip_response_begin(struct kmip_response *r, struct buf *out, struct kmip_version v,
                           int64_t now) __attribute__((nonnull));

/* Appends one Batch Item. operation 0 means "no Operation field" (message
 * level errors). For KMIP_STATUS_SUCCESS, payload (may be NULL/0 for an
 * empty payload) holds the encoded contents of the Response Payload, which
 * this wraps; on failure reason and message are written and payload is
 * ignored. */
RESULT kmip_response_add(struct kmip_response *r, uint32_t operation, const uint8_t *id,
                         size_t id_len, uint32_t status, uint32_t reason, const char *message,
                         const uint8_t *payload, size_t payload_len) __attribute__((nonnull(1)));

/* Closes the message, filling in lengths and the Batch Count. */
RESULT kmip_response_end(struct kmip_response *r) __attribute__((nonnull));

/* A whole response to a message that could not be processed at all:
 * header plus one Batch Item without Operation (KMIP 1.4 §11.1). */
RESULT kmip_response_message_error(struct buf *out, struct kmip_version v, int64_t now,
                                   uint32_t reason, const char *message) __attribute__((nonnull));

#endif
