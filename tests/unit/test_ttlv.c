/* Tests of the TTLV codec: every captured vCenter request decodes and
 * re-encodes byte for byte; every malformation is refused with its own
 * error; the limits hold; the encoder writes whole items or nothing. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "kmip/ttlv.h"

#ifndef VMSEAL_TTLV_CORPUS
#error "VMSEAL_TTLV_CORPUS must name the directory of captured messages"
#endif

/* Tags used here (KMIP 1.4 §9.1.3.1). */
#define TAG_REQUEST_MESSAGE 0x420078
#define TAG_REQUEST_HEADER 0x420077
#define TAG_PROTOCOL_VERSION 0x420069
#define TAG_PROTOCOL_VERSION_MAJOR 0x42006a
#define TAG_BATCH_COUNT 0x42000d
#define TAG_BATCH_ITEM 0x42000f
#define TAG_OPERATION 0x42005c
#define TAG_UNIQUE_BATCH_ITEM_ID 0x420093

static void test_vcenter_capture_round_trips(void **state)
{
    DIR *d = opendir(VMSEAL_TTLV_CORPUS);
    struct dirent *e;
    size_t files = 0, add_attribute_batches = 0;
    (void)state;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        struct buf msg, again;
        struct ttlv_doc *doc = NULL;
        size_t total;

        if (strncmp(e->d_name, "vcenter-", 8) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", VMSEAL_TTLV_CORPUS, e->d_name);
        assert_ok(buf_alloc(&msg, 0, 1 << 20));
        assert_ok(file_read_all(path, 1 << 20, &msg));

        assert_ok(ttlv_frame_length(buf_data(&msg), 1 << 20, &total));
        assert_int_equal(total, buf_len(&msg));
        assert_ok(ttlv_decode(buf_data(&msg), buf_len(&msg), NULL, &doc));

        /* The shape every request has (KMIP 1.4 §7.1). */
        const struct ttlv *root = ttlv_doc_root(doc);
        assert_int_equal(root->tag, TAG_REQUEST_MESSAGE);
        const struct ttlv *hdr = ttlv_find(root, TAG_REQUEST_HEADER);
        assert_ok(ttlv_get_struct(hdr));
        int32_t major, batch_count;
        assert_ok(ttlv_get_integer(
            ttlv_find(ttlv_find(hdr, TAG_PROTOCOL_VERSION), TAG_PROTOCOL_VERSION_MAJOR), &major));
        assert_int_equal(major, 1);
        assert_ok(ttlv_get_integer(ttlv_find(hdr, TAG_BATCH_COUNT), &batch_count));
        assert_int_equal((size_t)batch_count, ttlv_count(root, TAG_BATCH_ITEM));
        for (const struct ttlv *item = ttlv_find(root, TAG_BATCH_ITEM); item != NULL;
             item = ttlv_find_next(item)) {
            uint32_t op;
            assert_ok(ttlv_get_enum(ttlv_find(item, TAG_OPERATION), &op));
            if (op == 0x0d && batch_count == 3) /* Add Attribute, three items */
                add_attribute_batches++;
            const uint8_t *id;
            size_t id_len;
            const struct ttlv *bid = ttlv_find(item, TAG_UNIQUE_BATCH_ITEM_ID);
            if (bid != NULL) {
                assert_ok(ttlv_get_bytes(bid, &id, &id_len));
                assert_int_equal(id_len, 8);
            }
        }

        /* Re-encoding gives the same bytes. */
        assert_ok(buf_alloc(&again, 0, 1 << 20));
        assert_ok(ttlv_enc_item(&again, root));
        assert_int_equal(buf_len(&again), buf_len(&msg));
        assert_memory_equal(buf_data(&again), buf_data(&msg), buf_len(&msg));

        ttlv_doc_free(&doc);
        assert_null(doc);
        buf_free(&again);
        buf_free(&msg);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 58);             /* the whole capture */
    assert_true(add_attribute_batches >= 2); /* vCenter's three-item batches */
}

/* --- building test messages --- */

/* A request-like message: Structure { Integer, Text, Structure { Bool } }. */
static void build_sample(struct buf *b)
{
    size_t outer, inner;
    assert_ok(buf_alloc(b, 0, 4096));
    assert_ok(ttlv_enc_begin(b, 0x420078, &outer));
    assert_ok(ttlv_enc_integer(b, 0x42000d, -2));
    assert_ok(ttlv_enc_text(b, 0x420055, "x-Name", 6));
    assert_ok(ttlv_enc_begin(b, 0x420077, &inner));
    assert_ok(ttlv_enc_bool(b, 0x420008, true));
    assert_ok(ttlv_enc_end(b, inner));
    assert_ok(ttlv_enc_end(b, outer));
}

static void test_encoder_layout(void **state)
{
    struct buf b;
    (void)state;
    build_sample(&b);
    /* Spelled out field by field (KMIP 1.4 §9.1.2 gives the same forms). */
    static const uint8_t expect[] = {
        0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x38, /* struct, 56 */
        0x42, 0x00, 0x0d, 0x02, 0x00, 0x00, 0x00, 0x04, /* integer */
        0xff, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x00, 0x00, /* -2, padding */
        0x42, 0x00, 0x55, 0x07, 0x00, 0x00, 0x00, 0x06, /* text, 6 */
        'x',  '-',  'N',  'a',  'm',  'e',  0x00, 0x00, /* padded */
        0x42, 0x00, 0x77, 0x01, 0x00, 0x00, 0x00, 0x10, /* struct, 16 */
        0x42, 0x00, 0x08, 0x06, 0x00, 0x00, 0x00, 0x08, /* boolean */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* true */
    };
    assert_int_equal(buf_len(&b), sizeof(expect));
    assert_memory_equal(buf_data(&b), expect, sizeof(expect));
    buf_free(&b);
}

static void test_every_type_round_trips(void **state)
{
    struct buf b;
    struct ttlv_doc *doc = NULL;
    size_t m;
    static const uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0x80, 0,    0,    0,    0,    0,    0,    1};
    (void)state;

    assert_ok(buf_alloc(&b, 0, 4096));
    assert_ok(ttlv_enc_begin(&b, 0x540001, &m)); /* an extension tag */
    assert_ok(ttlv_enc_integer(&b, 0x420001, INT32_MIN));
    assert_ok(ttlv_enc_long(&b, 0x420002, INT64_MIN));
    assert_ok(ttlv_enc_big_integer(&b, 0x420003, big, sizeof(big)));
    assert_ok(ttlv_enc_enum(&b, 0x420004, 0xffffffffu));
    assert_ok(ttlv_enc_bool(&b, 0x420005, false));
    assert_ok(ttlv_enc_text(&b, 0x420006, "\xc3\xa9t\xc3\xa9", 5));
    assert_ok(ttlv_enc_bytes(&b, 0x420007, "\x00\x01\x02", 3));
    assert_ok(ttlv_enc_date_time(&b, 0x420008, 1700000000));
    assert_ok(ttlv_enc_interval(&b, 0x420009, 86400));
    assert_ok(ttlv_enc_text(&b, 0x42000a, "", 0));
    assert_ok(ttlv_enc_bytes(&b, 0x42000b, NULL, 0));
    assert_ok(ttlv_enc_end(&b, m));

    assert_ok(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc));
    const struct ttlv *r = ttlv_doc_root(doc);
    int32_t i;
    int64_t l;
    uint32_t u;
    bool bo = true;
    const char *t;
    const uint8_t *p;
    size_t n;
    assert_int_equal(r->tag, 0x540001);
    assert_int_equal(r->v.children.count, 11);
    assert_ok(ttlv_get_integer(ttlv_find(r, 0x420001), &i));
    assert_int_equal(i, INT32_MIN);
    assert_ok(ttlv_get_long(ttlv_find(r, 0x420002), &l));
    assert_true(l == INT64_MIN);
    assert_int_equal(ttlv_find(r, 0x420003)->type, TTLV_BIG_INTEGER);
    assert_memory_equal(ttlv_find(r, 0x420003)->v.bytes, big, sizeof(big));
    assert_ok(ttlv_get_enum(ttlv_find(r, 0x420004), &u));
    assert_int_equal(u, 0xffffffffu);
    assert_ok(ttlv_get_bool(ttlv_find(r, 0x420005), &bo));
    assert_false(bo);
    assert_ok(ttlv_get_text(ttlv_find(r, 0x420006), &t, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(t, "\xc3\xa9t\xc3\xa9", 5);
    assert_ok(ttlv_get_bytes(ttlv_find(r, 0x420007), &p, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(p, "\x00\x01\x02", 3);
    assert_ok(ttlv_get_date_time(ttlv_find(r, 0x420008), &l));
    assert_int_equal(l, 1700000000);
    assert_ok(ttlv_get_interval(ttlv_find(r, 0x420009), &u));
    assert_int_equal(u, 86400);
    assert_ok(ttlv_get_text(ttlv_find(r, 0x42000a), &t, &n));
    assert_int_equal(n, 0);

    /* Wrong type and missing field are told apart. */
    assert_err(ttlv_get_integer(ttlv_find(r, 0x420002), &i), ERR_TTLV_WRONG_TYPE);
    assert_err(ttlv_get_text(ttlv_find(r, 0x420007), &t, &n), ERR_TTLV_WRONG_TYPE);
    assert_err(ttlv_get_integer(ttlv_find(r, 0x4200ff), &i), ERR_TTLV_MISSING);
    assert_err(ttlv_get_struct(ttlv_find(r, 0x420001)), ERR_TTLV_WRONG_TYPE);
    assert_null(ttlv_find(ttlv_find(r, 0x420001), 0x420001)); /* not a structure */

    /* And it re-encodes identically. */
    struct buf again;
    assert_ok(buf_alloc(&again, 0, 4096));
    assert_ok(ttlv_enc_item(&again, r));
    assert_int_equal(buf_len(&again), buf_len(&b));
    assert_memory_equal(buf_data(&again), buf_data(&b), buf_len(&b));
    buf_free(&again);
    ttlv_doc_free(&doc);
    buf_free(&b);
}

/* Decodes hex and expects the given error. */
static void expect_decode_error(const char *hex, enum err_code code)
{
    struct buf b;
    struct ttlv_doc *doc = (struct ttlv_doc *)1;
    test_hex(&b, hex);
    assert_err(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc), code);
    assert_null(doc);
    buf_free(&b);
}

static void test_malformed_items(void **state)
{
    (void)state;
    /* Tag whose first byte is neither 0x42 nor 0x54. */
    expect_decode_error("43000102000000040000000100000000", ERR_TTLV_TAG);
    expect_decode_error("00000002000000040000000100000000", ERR_TTLV_TAG);
    /* Unknown types. */
    expect_decode_error("42000100000000040000000100000000", ERR_TTLV_TYPE);
    expect_decode_error("4200010c000000040000000100000000", ERR_TTLV_TYPE);
    expect_decode_error("420001ff000000040000000100000000", ERR_TTLV_TYPE);
    /* Lengths that do not suit the type. */
    expect_decode_error("42000102000000080000000100000000", ERR_TTLV_LENGTH); /* integer 8 */
    expect_decode_error("42000105000000030000000100000000", ERR_TTLV_LENGTH); /* enum 3 */
    expect_decode_error("42000103000000040000000100000000", ERR_TTLV_LENGTH); /* long 4 */
    expect_decode_error("42000106000000040000000100000000", ERR_TTLV_LENGTH); /* bool 4 */
    expect_decode_error("42000104000000040000000100000000", ERR_TTLV_LENGTH); /* big int 4 */
    expect_decode_error("4200010400000000", ERR_TTLV_LENGTH);                 /* big int 0 */
    expect_decode_error("4200010100000004"
                        "0000000000000000",
                        ERR_TTLV_LENGTH); /* struct 4 */
    /* A Boolean that is neither 0 nor 1. */
    expect_decode_error("42000106000000080000000000000002", ERR_TTLV_VALUE);
    /* Text that is not UTF-8, or holds NUL. */
    expect_decode_error("4200010700000002c328000000000000", ERR_TTLV_VALUE);
    expect_decode_error("42000107000000026100000000000000", ERR_TTLV_VALUE);
    expect_decode_error("4200010700000003eda080"
                        "0000000000",
                        ERR_TTLV_VALUE);                                     /* surrogate */
    expect_decode_error("4200010700000002c0af000000000000", ERR_TTLV_VALUE); /* overlong */
    /* Byte strings may hold anything, NUL included. */
    struct buf b;
    struct ttlv_doc *doc = NULL;
    test_hex(&b, "42000108000000020000000000000000");
    assert_ok(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc));
    ttlv_doc_free(&doc);
    buf_free(&b);
}

static void test_lengths_that_lie(void **state)
{
    (void)state;
    /* Declared longer than what is there, up to 4 GiB. */
    expect_decode_error("4200780100000010"
                        "4200010200000004",
                        ERR_TTLV_TRUNCATED);
    expect_decode_error("42007801fffffff8"
                        "0000000000000000",
                        ERR_TTLV_TRUNCATED);
    expect_decode_error("42000108ffffffff"
                        "0000000000000000",
                        ERR_TTLV_TRUNCATED);
    /* A child longer than its parent, though the message has the bytes. */
    expect_decode_error("4200780100000008"
                        "4200010800000008"
                        "0000000000000000",
                        ERR_TTLV_TRUNCATED);
    /* Padding missing: 3 bytes of text and no padding. */
    expect_decode_error("4200010700000003616263", ERR_TTLV_TRUNCATED);
    /* Less than a header. */
    expect_decode_error("", ERR_TTLV_TRUNCATED);
    expect_decode_error("42007801000000", ERR_TTLV_TRUNCATED);
    /* Bytes after the message. */
    expect_decode_error("4200780100000000"
                        "00",
                        ERR_TTLV_TRAILING);
    expect_decode_error("4200780100000000"
                        "4200780100000000",
                        ERR_TTLV_TRAILING);
}

static void test_every_truncation_of_a_real_message_is_refused(void **state)
{
    struct buf b;
    struct ttlv_doc *doc = NULL;
    (void)state;
    build_sample(&b);
    for (size_t n = 0; n < buf_len(&b); n++) {
        vs_result rc = ttlv_decode(buf_data(&b), n, NULL, &doc);
        assert_false(is_ok(rc));
        assert_null(doc);
    }
    assert_ok(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc));
    ttlv_doc_free(&doc);
    buf_free(&b);
}

static void test_limits(void **state)
{
    struct buf b;
    struct ttlv_doc *doc = NULL;
    size_t marks[40];
    (void)state;

    /* 40 nested structures against a limit of 32 (and of 40). */
    assert_ok(buf_alloc(&b, 0, 4096));
    for (int i = 0; i < 40; i++)
        assert_ok(ttlv_enc_begin(&b, 0x420001, &marks[i]));
    for (int i = 39; i >= 0; i--)
        assert_ok(ttlv_enc_end(&b, marks[i]));
    assert_err(ttlv_decode(buf_data(&b), buf_len(&b), NULL, &doc), ERR_TTLV_DEPTH);
    struct ttlv_limits deep = {.max_depth = 40, .max_items = 100};
    assert_ok(ttlv_decode(buf_data(&b), buf_len(&b), &deep, &doc));
    ttlv_doc_free(&doc);
    deep.max_depth = 39;
    assert_err(ttlv_decode(buf_data(&b), buf_len(&b), &deep, &doc), ERR_TTLV_DEPTH);
    buf_free(&b);

    /* 1000 items against a limit of 500. */
    size_t m;
    assert_ok(buf_alloc(&b, 0, 1 << 20));
    assert_ok(ttlv_enc_begin(&b, 0x420001, &m));
    for (int i = 0; i < 999; i++)
        assert_ok(ttlv_enc_integer(&b, 0x420002, i));
    assert_ok(ttlv_enc_end(&b, m));
    struct ttlv_limits few = {.max_depth = 4, .max_items = 500};
    assert_err(ttlv_decode(buf_data(&b), buf_len(&b), &few, &doc), ERR_TTLV_TOO_MANY);
    assert_null(doc);
    few.max_items = 1000;
    assert_ok(ttlv_decode(buf_data(&b), buf_len(&b), &few, &doc));
    assert_int_equal(ttlv_count(ttlv_doc_root(doc), 0x420002), 999);
    ttlv_doc_free(&doc);
    buf_free(&b);
}

static void test_frame_length(void **state)
{
    struct buf b;
    size_t total = 0;
    (void)state;

    test_hex(&b, "4200780100000040");
    assert_ok(ttlv_frame_length(buf_data(&b), 1024, &total));
    assert_int_equal(total, 72);
    assert_err(ttlv_frame_length(buf_data(&b), 71, &total), ERR_TOO_LARGE);
    assert_err(ttlv_frame_length(buf_data(&b), 4, &total), ERR_TOO_LARGE);
    buf_free(&b);
    test_hex(&b, "42007801ffffffc0"); /* 4 GiB declared: refused before any read */
    assert_err(ttlv_frame_length(buf_data(&b), 1 << 20, &total), ERR_TOO_LARGE);
    buf_free(&b);
    test_hex(&b, "4200780200000004"); /* not a Structure */
    assert_err(ttlv_frame_length(buf_data(&b), 1024, &total), ERR_TTLV_TYPE);
    buf_free(&b);
    test_hex(&b, "1603010200000004"); /* a TLS ClientHello on the wrong port */
    assert_err(ttlv_frame_length(buf_data(&b), 1024, &total), ERR_TTLV_TAG);
    buf_free(&b);
    test_hex(&b, "4200780100000044");
    assert_err(ttlv_frame_length(buf_data(&b), 1024, &total), ERR_TTLV_LENGTH);
    buf_free(&b);
}

static void test_encoder_refusals_write_nothing(void **state)
{
    uint8_t mem[20];
    struct buf b;
    size_t m;
    (void)state;

    buf_wrap(&b, mem, sizeof(mem));
    assert_ok(ttlv_enc_integer(&b, 0x420001, 7)); /* 16 bytes */
    assert_err(ttlv_enc_integer(&b, 0x420001, 7), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 16);
    assert_err(ttlv_enc_text(&b, 0x420001, "abc", 3), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 16);
    assert_err(ttlv_enc_begin(&b, 0x420001, &m), ERR_BUF_LIMIT);
    assert_int_equal(buf_len(&b), 16);

    struct buf g;
    assert_ok(buf_alloc(&g, 0, 1024));
    assert_err(ttlv_enc_integer(&g, 0x430001, 1), ERR_TTLV_TAG);
    assert_err(ttlv_enc_integer(&g, 0x1420001, 1), ERR_TTLV_TAG);
    assert_err(ttlv_enc_text(&g, 0x420001, "a\0b", 3), ERR_TTLV_VALUE);
    assert_err(ttlv_enc_text(&g, 0x420001, "\xff", 1), ERR_TTLV_VALUE);
    assert_err(ttlv_enc_big_integer(&g, 0x420001, "1234", 4), ERR_TTLV_LENGTH);
    assert_int_equal(buf_len(&g), 0);
    assert_err(ttlv_enc_end(&g, 0), ERR_INVALID_ARG); /* nothing was begun */
    buf_free(&g);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(ttlv_utf8_valid((const uint8_t *)"", 0));
    assert_true(ttlv_utf8_valid((const uint8_t *)"VMware, Inc.", 12));
    assert_true(ttlv_utf8_valid((const uint8_t *)"\xe2\x82\xac", 3));      /* € */
    assert_true(ttlv_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(ttlv_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ttlv_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut short */
    assert_false(ttlv_utf8_valid((const uint8_t *)"\x80", 1));             /* lone continuation */
    assert_false(ttlv_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
    assert_false(ttlv_utf8_valid((const uint8_t *)"\xf0\x80\x80\xaf", 4)); /* overlong */
    assert_false(ttlv_utf8_valid((const uint8_t *)"a\0", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vcenter_capture_round_trips),
        cmocka_unit_test(test_encoder_layout),
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_malformed_items),
        cmocka_unit_test(test_lengths_that_lie),
        cmocka_unit_test(test_every_truncation_of_a_real_message_is_refused),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_frame_length),
        cmocka_unit_test(test_encoder_refusals_write_nothing),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
