/* Tests of KMIP messages and tables: every captured vCenter request parses
 * with the operations the capture names; envelope errors are told apart
 * (message-level vs one batch item); responses encode as the spec lays
 * them out and decode again. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "kmip/kmip_defs.h"
#include "kmip/msg.h"

static void test_tables_match_the_spec(void **state)
{
    uint32_t tag;
    (void)state;
    /* Spot checks against KMIP 1.4 §9.1.3 and 2.1 §11. */
    assert_int_equal(KMIP_TAG_REQUEST_MESSAGE, 0x420078);
    assert_int_equal(KMIP_TAG_UNIQUE_IDENTIFIER, 0x420094);
    assert_int_equal(KMIP_TAG_ATTRIBUTES, 0x420125);
    assert_int_equal(KMIP_OP_DISCOVER_VERSIONS, 0x1e);
    assert_int_equal(KMIP_OP_ADD_ATTRIBUTE, 0x0d);
    assert_int_equal(KMIP_REASON_ITEM_NOT_FOUND, 1);
    assert_int_equal(KMIP_REASON_PERMISSION_DENIED, 0x0c);
    assert_int_equal(KMIP_STATE_PRE_ACTIVE, 1);
    assert_int_equal(KMIP_STATE_DESTROYED_COMPROMISED, 6);
    assert_int_equal(KMIP_ALG_AES, 3);
    assert_string_equal(kmip_operation_name(KMIP_OP_GET_ATTRIBUTES), "Get Attributes");
    assert_string_equal(kmip_tag_name(0x420028), "Cryptographic Algorithm");
    assert_null(kmip_tag_name(0x42ffff));
    /* KMIP 1.x Attribute Names are the spec's names. */
    assert_true(kmip_tag_by_name("Cryptographic Usage Mask", &tag));
    assert_int_equal(tag, 0x42002c);
    assert_false(kmip_tag_by_name("cryptographic usage mask", &tag));
    assert_false(kmip_tag_by_name("x-Vendor", &tag));
}

static void test_versions(void **state)
{
    struct kmip_version v;
    (void)state;
    assert_true(kmip_version_negotiate((struct kmip_version){1, 1}, &v));
    assert_true(v.major == 1 && v.minor == 1);
    assert_true(kmip_version_negotiate((struct kmip_version){2, 1}, &v));
    assert_true(v.major == 2 && v.minor == 1);
    assert_true(kmip_version_negotiate((struct kmip_version){1, 9}, &v)); /* newer minor */
    assert_true(v.major == 1 && v.minor == 4);
    assert_true(kmip_version_negotiate((struct kmip_version){2, 7}, &v));
    assert_true(v.major == 2 && v.minor == 1);
    assert_false(kmip_version_negotiate((struct kmip_version){3, 0}, &v));
    assert_false(kmip_version_negotiate((struct kmip_version){0, 9}, &v));
    assert_int_equal(kmip_version_count, 7);
}

/* The operation numbers of the capture's operation names. */
static uint32_t op_of(const char *name)
{
    static const struct {
        const char *name;
        uint32_t op;
    } ops[] = {{"DiscoverVersions", KMIP_OP_DISCOVER_VERSIONS},
               {"Query", KMIP_OP_QUERY},
               {"Create", KMIP_OP_CREATE},
               {"GetAttributes", KMIP_OP_GET_ATTRIBUTES},
               {"AddAttribute", KMIP_OP_ADD_ATTRIBUTE},
               {"Get", KMIP_OP_GET},
               {"Activate", KMIP_OP_ACTIVATE}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].name, name) == 0)
            return ops[i].op;
    fail_msg("unknown operation %s in the capture's file name", name);
    return 0;
}

static void test_vcenter_requests_parse(void **state)
{
    DIR *d = opendir(VMSEAL_TTLV_CORPUS);
    struct dirent *e;
    size_t files = 0;
    (void)state;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[1024], ops[128];
        struct buf msg;
        struct kmip_request req;

        if (strncmp(e->d_name, "vcenter-", 8) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", VMSEAL_TTLV_CORPUS, e->d_name);
        /* vcenter-NN-Op1-Op2-...: the operations of each batch item. */
        snprintf(ops, sizeof(ops), "%s", e->d_name + 11);
        assert_ok(buf_alloc(&msg, 0, 1 << 16));
        assert_ok(file_read_all(path, 1 << 16, &msg));
        assert_ok(kmip_request_parse(buf_data(&msg), buf_len(&msg), NULL, &req));
        assert_int_equal(req.version.major, 1);
        assert_int_equal(req.version.minor, 1);
        assert_false(req.has_authentication);
        size_t i = 0;
        char *save = NULL;
        for (char *tok = strtok_r(ops, "-", &save); tok; tok = strtok_r(NULL, "-", &save), i++) {
            assert_true(i < req.item_count);
            assert_null(req.items[i].error);
            assert_int_equal(req.items[i].operation, op_of(tok));
        }
        assert_int_equal(i, req.item_count);
        kmip_request_free(&req);
        kmip_request_free(&req); /* twice is safe */
        buf_free(&msg);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 58);
}

/* Builds a request from parts so that each can be broken. */
struct req_parts {
    int32_t major, minor;
    int32_t batch_count;
    int items;
    bool dup_batch_count;
    bool item_without_operation;
    bool payload_not_struct;
    uint32_t root_tag;
    int32_t batch_error_option; /* 0: absent */
};

static void build_request(struct buf *b, const struct req_parts *p)
{
    size_t msg, hdr, pv, item, pl;
    assert_ok(buf_alloc(b, 0, 1 << 16));
    assert_ok(ttlv_enc_begin(b, p->root_tag ? p->root_tag : KMIP_TAG_REQUEST_MESSAGE, &msg));
    assert_ok(ttlv_enc_begin(b, KMIP_TAG_REQUEST_HEADER, &hdr));
    assert_ok(ttlv_enc_begin(b, KMIP_TAG_PROTOCOL_VERSION, &pv));
    assert_ok(ttlv_enc_integer(b, KMIP_TAG_PROTOCOL_VERSION_MAJOR, p->major));
    assert_ok(ttlv_enc_integer(b, KMIP_TAG_PROTOCOL_VERSION_MINOR, p->minor));
    assert_ok(ttlv_enc_end(b, pv));
    if (p->batch_error_option)
        assert_ok(ttlv_enc_enum(b, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION,
                                (uint32_t)p->batch_error_option));
    assert_ok(ttlv_enc_integer(b, KMIP_TAG_BATCH_COUNT, p->batch_count));
    if (p->dup_batch_count)
        assert_ok(ttlv_enc_integer(b, KMIP_TAG_BATCH_COUNT, p->batch_count));
    assert_ok(ttlv_enc_end(b, hdr));
    for (int i = 0; i < p->items; i++) {
        assert_ok(ttlv_enc_begin(b, KMIP_TAG_BATCH_ITEM, &item));
        if (!(p->item_without_operation && i == 1))
            assert_ok(ttlv_enc_enum(b, KMIP_TAG_OPERATION, KMIP_OP_GET));
        assert_ok(ttlv_enc_bytes(b, KMIP_TAG_UNIQUE_BATCH_ITEM_ID, "\x01\x02", 2));
        if (p->payload_not_struct && i == 0) {
            assert_ok(ttlv_enc_integer(b, KMIP_TAG_REQUEST_PAYLOAD, 1));
        } else {
            assert_ok(ttlv_enc_begin(b, KMIP_TAG_REQUEST_PAYLOAD, &pl));
            assert_ok(ttlv_enc_text(b, KMIP_TAG_UNIQUE_IDENTIFIER, "1", 1));
            assert_ok(ttlv_enc_end(b, pl));
        }
        assert_ok(ttlv_enc_end(b, item));
    }
    assert_ok(ttlv_enc_end(b, msg));
}

static vs_result parse_parts(const struct req_parts *p, struct kmip_request *req)
{
    struct buf b;
    build_request(&b, p);
    vs_result rc = kmip_request_parse(buf_data(&b), buf_len(&b), NULL, req);
    /* The request points into the message: tests that inspect it after
     * success do so through fields copied out below, so free now. */
    if (is_ok(rc)) {
        assert_int_equal(req->items[0].id_len, 2);
        kmip_request_free(req);
    }
    buf_free(&b);
    return rc;
}

static void test_envelope_errors(void **state)
{
    struct kmip_request req;
    const struct req_parts good = {.major = 1, .minor = 4, .batch_count = 2, .items = 2};
    struct req_parts p;
    (void)state;

    assert_ok(parse_parts(&good, &req));

    p = good;
    p.batch_count = 3; /* says 3, has 2 */
    assert_err(parse_parts(&p, &req), ERR_KMIP_INVALID_MESSAGE);
    assert_int_equal(req.version.minor, 4); /* known: answer in 1.4 */
    p = good;
    p.batch_count = 0;
    p.items = 0;
    assert_err(parse_parts(&p, &req), ERR_KMIP_INVALID_MESSAGE);
    p = good;
    p.dup_batch_count = true;
    assert_err(parse_parts(&p, &req), ERR_KMIP_INVALID_MESSAGE);
    assert_non_null(strstr(err_last()->detail, "twice"));
    p = good;
    p.root_tag = KMIP_TAG_RESPONSE_MESSAGE;
    assert_err(parse_parts(&p, &req), ERR_KMIP_INVALID_MESSAGE);
    p = good;
    p.major = 3;
    assert_err(parse_parts(&p, &req), ERR_KMIP_VERSION);
    assert_int_equal(req.version.major, 3);
    p = good;
    p.batch_error_option = 9;
    assert_err(parse_parts(&p, &req), ERR_KMIP_INVALID_MESSAGE);
    p = good;
    p.batch_error_option = KMIP_BATCH_ERROR_CONTINUE;
    assert_ok(parse_parts(&p, &req));

    /* Garbage: invalid message, answered in 1.0. */
    assert_err(kmip_request_parse((const uint8_t *)"garbage!", 8, NULL, &req),
               ERR_KMIP_INVALID_MESSAGE);
    assert_int_equal(req.version.major, 1);
    assert_int_equal(req.version.minor, 0);
    assert_null(req.items);
}

static void test_item_errors_fail_only_the_item(void **state)
{
    struct buf b;
    struct kmip_request req;
    struct req_parts p = {.major = 2, .minor = 0, .batch_count = 3, .items = 3};
    (void)state;

    p.item_without_operation = true;
    p.payload_not_struct = true;
    build_request(&b, &p);
    assert_ok(kmip_request_parse(buf_data(&b), buf_len(&b), NULL, &req));
    assert_int_equal(req.item_count, 3);
    assert_string_equal(req.items[0].error, "Request Payload is not a Structure");
    assert_string_equal(req.items[1].error, "missing or malformed Operation");
    assert_null(req.items[2].error);
    assert_int_equal(req.items[2].operation, KMIP_OP_GET);
    assert_memory_equal(req.items[2].id, "\x01\x02", 2);
    assert_non_null(req.items[2].payload);
    kmip_request_free(&req);
    buf_free(&b);
}

static void test_response_layout(void **state)
{
    struct buf out, payload;
    struct kmip_response r;
    struct ttlv_doc *doc = NULL;
    (void)state;

    assert_ok(buf_alloc(&out, 0, 4096));
    assert_ok(buf_alloc(&payload, 0, 256));
    assert_ok(ttlv_enc_text(&payload, KMIP_TAG_UNIQUE_IDENTIFIER, "42", 2));
    assert_ok(kmip_response_begin(&r, &out, (struct kmip_version){1, 1}, 1700000000));
    assert_ok(kmip_response_add(&r, KMIP_OP_CREATE, (const uint8_t *)"ID", 2, KMIP_STATUS_SUCCESS,
                                0, NULL, buf_data(&payload), buf_len(&payload)));
    assert_ok(kmip_response_add(&r, KMIP_OP_GET, NULL, 0, KMIP_STATUS_OPERATION_FAILED,
                                KMIP_REASON_ITEM_NOT_FOUND, "no object 7", NULL, 0));
    assert_ok(kmip_response_end(&r));

    assert_ok(ttlv_decode(buf_data(&out), buf_len(&out), NULL, &doc));
    const struct ttlv *root = ttlv_doc_root(doc), *hdr, *it;
    int32_t i;
    int64_t ts;
    uint32_t u;
    const char *t;
    size_t n;
    assert_int_equal(root->tag, KMIP_TAG_RESPONSE_MESSAGE);
    hdr = ttlv_find(root, KMIP_TAG_RESPONSE_HEADER);
    assert_ok(ttlv_get_integer(ttlv_find(hdr, KMIP_TAG_BATCH_COUNT), &i));
    assert_int_equal(i, 2);
    assert_ok(ttlv_get_date_time(ttlv_find(hdr, KMIP_TAG_TIME_STAMP), &ts));
    assert_int_equal(ts, 1700000000);
    assert_ok(ttlv_get_integer(
        ttlv_find(ttlv_find(hdr, KMIP_TAG_PROTOCOL_VERSION), KMIP_TAG_PROTOCOL_VERSION_MINOR), &i));
    assert_int_equal(i, 1);
    it = ttlv_find(root, KMIP_TAG_BATCH_ITEM);
    /* §7.3 field order: Operation, Unique Batch Item ID, Result Status, ... */
    assert_int_equal(it->v.children.first->tag, KMIP_TAG_OPERATION);
    assert_int_equal(it->v.children.first->next->tag, KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
    assert_ok(ttlv_get_enum(ttlv_find(it, KMIP_TAG_RESULT_STATUS), &u));
    assert_int_equal(u, KMIP_STATUS_SUCCESS);
    assert_ok(ttlv_get_text(
        ttlv_find(ttlv_find(it, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_UNIQUE_IDENTIFIER), &t, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(t, "42", 2);
    it = ttlv_find_next(it);
    assert_ok(ttlv_get_enum(ttlv_find(it, KMIP_TAG_RESULT_REASON), &u));
    assert_int_equal(u, KMIP_REASON_ITEM_NOT_FOUND);
    assert_ok(ttlv_get_text(ttlv_find(it, KMIP_TAG_RESULT_MESSAGE), &t, &n));
    assert_memory_equal(t, "no object 7", n);
    assert_null(ttlv_find(it, KMIP_TAG_RESPONSE_PAYLOAD));
    ttlv_doc_free(&doc);

    /* A message-level error: one item, no Operation. */
    buf_reset(&out);
    assert_ok(kmip_response_message_error(&out, (struct kmip_version){3, 0}, 0,
                                          KMIP_REASON_INVALID_MESSAGE, "bad"));
    assert_ok(ttlv_decode(buf_data(&out), buf_len(&out), NULL, &doc));
    root = ttlv_doc_root(doc);
    it = ttlv_find(root, KMIP_TAG_BATCH_ITEM);
    assert_null(ttlv_find(it, KMIP_TAG_OPERATION));
    assert_int_equal(ttlv_count(root, KMIP_TAG_BATCH_ITEM), 1);
    ttlv_doc_free(&doc);

    /* A response that does not fit leaves nothing half-written. */
    uint8_t small[120];
    struct buf tiny;
    buf_wrap(&tiny, small, sizeof(small));
    assert_ok(kmip_response_begin(&r, &tiny, (struct kmip_version){1, 4}, 0));
    size_t before = buf_len(&tiny);
    assert_err(kmip_response_add(&r, KMIP_OP_GET, NULL, 0, KMIP_STATUS_OPERATION_FAILED,
                                 KMIP_REASON_GENERAL_FAILURE,
                                 "a message far too long to fit in what is left of the buffer",
                                 NULL, 0),
               ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&tiny), before);
    buf_free(&payload);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_match_the_spec),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_vcenter_requests_parse),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_item_errors_fail_only_the_item),
        cmocka_unit_test(test_response_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
