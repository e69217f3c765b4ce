/* Tests of request dispatch with a real store: the whole vCenter 7.0.3
 * flow, and the refusals (life cycle, ownership, batches, limits). */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "kmip/kmip_defs.h"
#include "kms/dispatch.h"

static char dir[64];
static struct kms_rootkey *rk;
static struct kms_store *store;
static struct kms_worker_ctx w;
static struct kms_principal alice, bob;

static void principal(struct kms_principal *p, const char *id)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->identity, sizeof(p->identity), "%s", id);
    snprintf(p->owner, sizeof(p->owner), "%s", id);
    p->owners[0] = p->owner;
    p->owner_count = 1;
}

static int setup(void **state)
{
    char path[128];
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-dispatch-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/root.key", dir);
    if (!is_ok(kms_rootkey_create_file(path)) || !is_ok(kms_rootkey_open_file(path, &rk)))
        return -1;
    snprintf(path, sizeof(path), "%s/kms.db", dir);
    if (!is_ok(kms_store_open(path, rk, &store)) ||
        !is_ok(kms_worker_ctx_init(&w, store, NULL, NULL)))
        return -1;
    principal(&alice, "alice");
    principal(&bob, "bob");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    kms_worker_ctx_free(&w);
    kms_store_close(&store);
    kms_rootkey_free(&rk);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- building requests --- */

struct req {
    struct buf b;
    size_t msg, items;
};

static void req_begin(struct req *r, int major, int minor, int batch_count, uint32_t option)
{
    size_t hdr, pv;
    assert_ok(buf_alloc(&r->b, 0, 1 << 16));
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_REQUEST_MESSAGE, &r->msg));
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_REQUEST_HEADER, &hdr));
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_PROTOCOL_VERSION, &pv));
    assert_ok(ttlv_enc_integer(&r->b, KMIP_TAG_PROTOCOL_VERSION_MAJOR, major));
    assert_ok(ttlv_enc_integer(&r->b, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor));
    assert_ok(ttlv_enc_end(&r->b, pv));
    if (option)
        assert_ok(ttlv_enc_enum(&r->b, KMIP_TAG_BATCH_ERROR_CONTINUATION_OPTION, option));
    assert_ok(ttlv_enc_integer(&r->b, KMIP_TAG_BATCH_COUNT, batch_count));
    assert_ok(ttlv_enc_end(&r->b, hdr));
}

/* Opens a batch item's payload; close with item_end. */
static void item_begin(struct req *r, uint32_t op, size_t *payload)
{
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_BATCH_ITEM, &r->items));
    assert_ok(ttlv_enc_enum(&r->b, KMIP_TAG_OPERATION, op));
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_REQUEST_PAYLOAD, payload));
}

static void item_end(struct req *r, size_t payload)
{
    assert_ok(ttlv_enc_end(&r->b, payload));
    assert_ok(ttlv_enc_end(&r->b, r->items));
}

static void uid_field(struct req *r, const char *uid)
{
    if (uid != NULL)
        assert_ok(ttlv_enc_text(&r->b, KMIP_TAG_UNIQUE_IDENTIFIER, uid, strlen(uid)));
}

static void attr_1x_enum(struct req *r, const char *name, uint32_t v)
{
    size_t m;
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_ATTRIBUTE, &m));
    assert_ok(ttlv_enc_text(&r->b, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name)));
    assert_ok(ttlv_enc_enum(&r->b, KMIP_TAG_ATTRIBUTE_VALUE, v));
    assert_ok(ttlv_enc_end(&r->b, m));
}

static void attr_1x_int(struct req *r, const char *name, int32_t v)
{
    size_t m;
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_ATTRIBUTE, &m));
    assert_ok(ttlv_enc_text(&r->b, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name)));
    assert_ok(ttlv_enc_integer(&r->b, KMIP_TAG_ATTRIBUTE_VALUE, v));
    assert_ok(ttlv_enc_end(&r->b, m));
}

/* Adds a 1.x Create item for an AES key of `bits`. */
static void item_create(struct req *r, int32_t bits)
{
    size_t p, ta;
    item_begin(r, KMIP_OP_CREATE, &p);
    assert_ok(ttlv_enc_enum(&r->b, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    assert_ok(ttlv_enc_begin(&r->b, KMIP_TAG_TEMPLATE_ATTRIBUTE, &ta));
    attr_1x_enum(r, "Cryptographic Algorithm", KMIP_ALG_AES);
    attr_1x_int(r, "Cryptographic Length", bits);
    attr_1x_int(r, "Cryptographic Usage Mask", 12);
    assert_ok(ttlv_enc_end(&r->b, ta));
    item_end(r, p);
}

static void item_simple(struct req *r, uint32_t op, const char *uid)
{
    size_t p;
    item_begin(r, op, &p);
    uid_field(r, uid);
    item_end(r, p);
}

/* --- reading responses --- */

struct resp {
    struct buf b;
    struct ttlv_doc *doc;
    const struct ttlv *item; /* first batch item */
};

static void run(const struct kms_principal *who, struct req *r, struct resp *out)
{
    assert_ok(ttlv_enc_end(&r->b, r->msg));
    assert_ok(buf_alloc(&out->b, 0, 1 << 20));
    assert_ok(kms_dispatch(&w, who, buf_data(&r->b), buf_len(&r->b), 1700000000, &out->b));
    assert_ok(ttlv_decode(buf_data(&out->b), buf_len(&out->b), NULL, &out->doc));
    out->item = ttlv_find(ttlv_doc_root(out->doc), KMIP_TAG_BATCH_ITEM);
    buf_free(&r->b);
}

static void resp_free(struct resp *r)
{
    ttlv_doc_free(&r->doc);
    buf_free(&r->b);
}

static uint32_t status_of(const struct ttlv *item)
{
    uint32_t s = 99;
    assert_ok(ttlv_get_enum(ttlv_find(item, KMIP_TAG_RESULT_STATUS), &s));
    return s;
}

static uint32_t reason_of(const struct ttlv *item)
{
    uint32_t s = 0;
    assert_ok(ttlv_get_enum(ttlv_find(item, KMIP_TAG_RESULT_REASON), &s));
    return s;
}

static void uid_of(const struct ttlv *item, char *out, size_t n)
{
    const char *t;
    size_t len;
    assert_ok(ttlv_get_text(
        ttlv_find(ttlv_find(item, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_UNIQUE_IDENTIFIER), &t,
        &len));
    assert_true(len < n);
    memcpy(out, t, len);
    out[len] = '\0';
}

/* Creates an AES-256 key as who and returns its uid. */
static void create_key(const struct kms_principal *who, char uid[64])
{
    struct req r;
    struct resp s;
    req_begin(&r, 1, 4, 1, 0);
    item_create(&r, 256);
    run(who, &r, &s);
    assert_int_equal(status_of(s.item), KMIP_STATUS_SUCCESS);
    uid_of(s.item, uid, 64);
    resp_free(&s);
}

static uint32_t simple(const struct kms_principal *who, uint32_t op, const char *uid,
                       uint32_t *reason)
{
    struct req r;
    struct resp s;
    req_begin(&r, 1, 4, 1, 0);
    item_simple(&r, op, uid);
    run(who, &r, &s);
    uint32_t st = status_of(s.item);
    if (reason != NULL)
        *reason = st == KMIP_STATUS_SUCCESS ? 0 : reason_of(s.item);
    resp_free(&s);
    return st;
}

/* --- the vCenter flow --- */

/* Re-encodes it, replacing Unique Identifier texts "1"/"2" by the server's. */
static void substitute(struct buf *out, const struct ttlv *it, char ids[2][64])
{
    if (it->type == TTLV_STRUCTURE) {
        size_t m;
        assert_ok(ttlv_enc_begin(out, it->tag, &m));
        for (const struct ttlv *c = it->v.children.first; c != NULL; c = c->next)
            substitute(out, c, ids);
        assert_ok(ttlv_enc_end(out, m));
        return;
    }
    if (it->tag == KMIP_TAG_UNIQUE_IDENTIFIER && it->type == TTLV_TEXT_STRING && it->length == 1 &&
        (it->v.bytes[0] == '1' || it->v.bytes[0] == '2')) {
        const char *id = ids[it->v.bytes[0] - '1'];
        assert_true(id[0] != '\0'); /* the capture creates before it uses */
        assert_ok(ttlv_enc_text(out, it->tag, id, strlen(id)));
        return;
    }
    assert_ok(ttlv_enc_item(out, it));
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void test_vcenter_flow(void **state)
{
    struct dirent **names;
    int n = scandir(VMSEAL_TTLV_CORPUS, &names, NULL, by_name);
    char ids[2][64] = {"", ""};
    int creates = 0, checked = 0;
    (void)state;

    assert_true(n > 0);
    for (int f = 0; f < n; f++) {
        char path[1024];
        struct buf raw, msg;
        struct ttlv_doc *doc = NULL;
        struct resp s;

        if (strncmp(names[f]->d_name, "vcenter-", 8) != 0) {
            free(names[f]);
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", VMSEAL_TTLV_CORPUS, names[f]->d_name);
        assert_ok(buf_alloc(&raw, 0, 1 << 16));
        assert_ok(file_read_all(path, 1 << 16, &raw));
        assert_ok(ttlv_decode(buf_data(&raw), buf_len(&raw), NULL, &doc));
        assert_ok(buf_alloc(&msg, 0, 1 << 16));
        substitute(&msg, ttlv_doc_root(doc), ids);

        assert_ok(buf_alloc(&s.b, 0, 1 << 20));
        assert_ok(kms_dispatch(&w, &alice, buf_data(&msg), buf_len(&msg), 1700000000, &s.b));
        assert_ok(ttlv_decode(buf_data(&s.b), buf_len(&s.b), NULL, &s.doc));
        const struct ttlv *root = ttlv_doc_root(s.doc);
        int32_t minor;
        assert_ok(ttlv_get_integer(ttlv_find(ttlv_find(ttlv_find(root, KMIP_TAG_RESPONSE_HEADER),
                                                       KMIP_TAG_PROTOCOL_VERSION),
                                             KMIP_TAG_PROTOCOL_VERSION_MINOR),
                                   &minor));
        assert_int_equal(minor, 1); /* answered in the request's 1.1 */

        const struct ttlv *req_item = ttlv_find(ttlv_doc_root(doc), KMIP_TAG_BATCH_ITEM);
        for (const struct ttlv *it = ttlv_find(root, KMIP_TAG_BATCH_ITEM); it != NULL;
             it = ttlv_find_next(it), req_item = ttlv_find_next(req_item)) {
            assert_non_null(req_item);
            if (status_of(it) != KMIP_STATUS_SUCCESS) {
                const char *m = "";
                size_t ml = 0;
                if (!is_ok(ttlv_get_text(ttlv_find(it, KMIP_TAG_RESULT_MESSAGE), &m, &ml)))
                    m = "";
                fail_msg("%s: item failed: %.*s", names[f]->d_name, (int)ml, m);
            }
            /* Unique Batch Item ID echoed. */
            const struct ttlv *want = ttlv_find(req_item, KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
            const struct ttlv *got = ttlv_find(it, KMIP_TAG_UNIQUE_BATCH_ITEM_ID);
            if (want != NULL) {
                assert_non_null(got);
                assert_int_equal(got->length, want->length);
                assert_memory_equal(got->v.bytes, want->v.bytes, want->length);
            }
            uint32_t op;
            assert_ok(ttlv_get_enum(ttlv_find(it, KMIP_TAG_OPERATION), &op));
            const struct ttlv *pl = ttlv_find(it, KMIP_TAG_RESPONSE_PAYLOAD);
            if (op == KMIP_OP_CREATE) {
                assert_true(creates < 2);
                uid_of(it, ids[creates], sizeof(ids[0]));
                creates++;
            } else if (op == KMIP_OP_GET) {
                const uint8_t *km;
                size_t kl;
                const struct ttlv *kb =
                    ttlv_find(ttlv_find(pl, KMIP_TAG_SYMMETRIC_KEY), KMIP_TAG_KEY_BLOCK);
                uint32_t fmt;
                assert_ok(ttlv_get_enum(ttlv_find(kb, KMIP_TAG_KEY_FORMAT_TYPE), &fmt));
                assert_int_equal(fmt, KMIP_KEY_FORMAT_RAW);
                assert_ok(ttlv_get_bytes(
                    ttlv_find(ttlv_find(kb, KMIP_TAG_KEY_VALUE), KMIP_TAG_KEY_MATERIAL), &km, &kl));
                assert_int_equal(kl, 32);
                checked++;
            } else if (op == KMIP_OP_QUERY) {
                const char *v;
                size_t vl;
                assert_ok(ttlv_get_text(ttlv_find(pl, KMIP_TAG_VENDOR_IDENTIFICATION), &v, &vl));
                assert_memory_equal(v, "vmseal", vl);
                checked++;
            } else if (op == KMIP_OP_GET_ATTRIBUTES) {
                /* Present or not, the Unique Identifier comes back. */
                assert_non_null(ttlv_find(pl, KMIP_TAG_UNIQUE_IDENTIFIER));
                checked++;
            }
        }
        ttlv_doc_free(&doc);
        resp_free(&s);
        buf_free(&raw);
        buf_free(&msg);
        free(names[f]);
    }
    free(names);
    assert_int_equal(creates, 2);
    assert_true(checked >= 10);

    /* After the flow, the VM key is Active and carries vCenter's labels. */
    struct req r;
    struct resp s;
    size_t p;
    req_begin(&r, 1, 1, 1, 0);
    item_begin(&r, KMIP_OP_GET_ATTRIBUTES, &p);
    uid_field(&r, ids[0]);
    assert_ok(ttlv_enc_text(&r.b, KMIP_TAG_ATTRIBUTE_NAME, "State", 5));
    assert_ok(ttlv_enc_text(&r.b, KMIP_TAG_ATTRIBUTE_NAME, "x-Vendor", 8));
    item_end(&r, p);
    run(&alice, &r, &s);
    const struct ttlv *pl = ttlv_find(s.item, KMIP_TAG_RESPONSE_PAYLOAD);
    assert_int_equal(ttlv_count(pl, KMIP_TAG_ATTRIBUTE), 2);
    for (const struct ttlv *a = ttlv_find(pl, KMIP_TAG_ATTRIBUTE); a; a = ttlv_find_next(a)) {
        const char *name;
        size_t nl;
        assert_ok(ttlv_get_text(ttlv_find(a, KMIP_TAG_ATTRIBUTE_NAME), &name, &nl));
        const struct ttlv *v = ttlv_find(a, KMIP_TAG_ATTRIBUTE_VALUE);
        if (nl == 5) {
            uint32_t st;
            assert_ok(ttlv_get_enum(v, &st));
            assert_int_equal(st, KMIP_STATE_ACTIVE);
        } else {
            const char *t;
            size_t tl;
            assert_ok(ttlv_get_text(v, &t, &tl));
            assert_int_equal(tl, 12);
            assert_memory_equal(t, "VMware, Inc.", 12);
        }
    }
    resp_free(&s);
}

/* --- life cycle --- */

static void test_life_cycle_rules(void **state)
{
    char uid[64];
    uint32_t reason;
    size_t p, rr;
    struct req r;
    struct resp s;
    (void)state;

    create_key(&alice, uid);
    /* Pre-Active: cannot be activated twice; Active cannot be destroyed. */
    assert_int_equal(simple(&alice, KMIP_OP_ACTIVATE, uid, NULL), KMIP_STATUS_SUCCESS);
    assert_int_equal(simple(&alice, KMIP_OP_ACTIVATE, uid, &reason), KMIP_STATUS_OPERATION_FAILED);
    assert_int_equal(reason, KMIP_REASON_PERMISSION_DENIED);
    assert_int_equal(simple(&alice, KMIP_OP_DESTROY, uid, &reason), KMIP_STATUS_OPERATION_FAILED);

    /* Revoke with Key Compromise: Compromised; then Destroy: Destroyed
     * Compromised, and the material is gone. */
    req_begin(&r, 1, 4, 1, 0);
    item_begin(&r, KMIP_OP_REVOKE, &p);
    uid_field(&r, uid);
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_REVOCATION_REASON, &rr));
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_REVOCATION_REASON_CODE, KMIP_REVOCATION_KEY_COMPROMISE));
    assert_ok(ttlv_enc_end(&r.b, rr));
    item_end(&r, p);
    run(&alice, &r, &s);
    assert_int_equal(status_of(s.item), KMIP_STATUS_SUCCESS);
    resp_free(&s);
    assert_int_equal(simple(&alice, KMIP_OP_GET, uid, NULL), KMIP_STATUS_SUCCESS);
    assert_int_equal(simple(&alice, KMIP_OP_DESTROY, uid, NULL), KMIP_STATUS_SUCCESS);
    assert_int_equal(simple(&alice, KMIP_OP_GET, uid, &reason), KMIP_STATUS_OPERATION_FAILED);
    assert_int_equal(simple(&alice, KMIP_OP_DESTROY, uid, &reason), KMIP_STATUS_OPERATION_FAILED);

    /* The metadata stays: the state says what happened. */
    req_begin(&r, 2, 0, 1, 0);
    item_begin(&r, KMIP_OP_GET_ATTRIBUTES, &p);
    uid_field(&r, uid);
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_ATTRIBUTE_REFERENCE, KMIP_TAG_STATE));
    item_end(&r, p);
    run(&alice, &r, &s);
    uint32_t st;
    assert_ok(ttlv_get_enum(
        ttlv_find(ttlv_find(ttlv_find(s.item, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_ATTRIBUTES),
                  KMIP_TAG_STATE),
        &st));
    assert_int_equal(st, KMIP_STATE_DESTROYED_COMPROMISED);
    resp_free(&s);

    /* 2.x reports the wrong state with its own reason. */
    create_key(&alice, uid);
    assert_int_equal(simple(&alice, KMIP_OP_ACTIVATE, uid, NULL), KMIP_STATUS_SUCCESS);
    req_begin(&r, 2, 1, 1, 0);
    item_simple(&r, KMIP_OP_DESTROY, uid);
    run(&alice, &r, &s);
    assert_int_equal(reason_of(s.item), KMIP_REASON_WRONG_KEY_LIFECYCLE_STATE);
    resp_free(&s);
}

static void test_owners_do_not_see_each_other(void **state)
{
    char uid[64];
    uint32_t reason;
    (void)state;

    create_key(&alice, uid);
    assert_int_equal(simple(&bob, KMIP_OP_GET, uid, &reason), KMIP_STATUS_OPERATION_FAILED);
    assert_int_equal(reason, KMIP_REASON_ITEM_NOT_FOUND);
    assert_int_equal(simple(&bob, KMIP_OP_GET_ATTRIBUTES, uid, NULL), KMIP_STATUS_OPERATION_FAILED);
    assert_int_equal(simple(&bob, KMIP_OP_ACTIVATE, uid, NULL), KMIP_STATUS_OPERATION_FAILED);
    assert_int_equal(simple(&alice, KMIP_OP_GET, uid, NULL), KMIP_STATUS_SUCCESS);

    /* Locate: bob's list is empty, alice's has the key. */
    struct req r;
    struct resp s;
    size_t p;
    req_begin(&r, 1, 4, 1, 0);
    item_begin(&r, KMIP_OP_LOCATE, &p);
    item_end(&r, p);
    run(&bob, &r, &s);
    assert_int_equal(
        ttlv_count(ttlv_find(s.item, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_UNIQUE_IDENTIFIER), 0);
    resp_free(&s);
    req_begin(&r, 1, 4, 1, 0);
    item_begin(&r, KMIP_OP_LOCATE, &p);
    item_end(&r, p);
    run(&alice, &r, &s);
    assert_true(
        ttlv_count(ttlv_find(s.item, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_UNIQUE_IDENTIFIER) >= 1);
    resp_free(&s);
}

static void test_batches_and_refusals(void **state)
{
    struct req r;
    struct resp s;
    size_t p;
    (void)state;

    /* Stop (default): the failing item ends the batch. */
    req_begin(&r, 1, 4, 3, 0);
    item_simple(&r, KMIP_OP_GET, "no-such-key");
    item_create(&r, 256);
    item_create(&r, 256);
    run(&alice, &r, &s);
    assert_int_equal(ttlv_count(ttlv_doc_root(s.doc), KMIP_TAG_BATCH_ITEM), 1);
    assert_int_equal(reason_of(s.item), KMIP_REASON_ITEM_NOT_FOUND);
    resp_free(&s);

    /* Continue: every item is answered. */
    req_begin(&r, 1, 4, 3, KMIP_BATCH_ERROR_CONTINUE);
    item_simple(&r, KMIP_OP_GET, "no-such-key");
    item_create(&r, 100); /* not an AES length */
    item_create(&r, 128);
    run(&alice, &r, &s);
    const struct ttlv *it = s.item;
    assert_int_equal(status_of(it), KMIP_STATUS_OPERATION_FAILED);
    it = ttlv_find_next(it);
    assert_int_equal(reason_of(it), KMIP_REASON_INVALID_FIELD);
    it = ttlv_find_next(it);
    assert_int_equal(status_of(it), KMIP_STATUS_SUCCESS);
    resp_free(&s);

    /* ID Placeholder: Create then Activate and Get without identifiers. */
    req_begin(&r, 1, 4, 3, 0);
    item_create(&r, 192);
    item_simple(&r, KMIP_OP_ACTIVATE, NULL);
    item_simple(&r, KMIP_OP_GET, NULL);
    run(&alice, &r, &s);
    for (it = s.item; it != NULL; it = ttlv_find_next(it))
        assert_int_equal(status_of(it), KMIP_STATUS_SUCCESS);
    resp_free(&s);

    /* An operation we do not do. */
    req_begin(&r, 1, 4, 1, 0);
    item_simple(&r, KMIP_OP_CERTIFY, "x");
    run(&alice, &r, &s);
    assert_int_equal(reason_of(s.item), KMIP_REASON_OPERATION_NOT_SUPPORTED);
    resp_free(&s);

    /* Server-set attributes cannot be set by a client. */
    req_begin(&r, 1, 4, 1, 0);
    item_begin(&r, KMIP_OP_CREATE, &p);
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    size_t ta;
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_TEMPLATE_ATTRIBUTE, &ta));
    attr_1x_enum(&r, "Cryptographic Algorithm", KMIP_ALG_AES);
    attr_1x_int(&r, "Cryptographic Length", 256);
    attr_1x_enum(&r, "State", KMIP_STATE_ACTIVE);
    assert_ok(ttlv_enc_end(&r.b, ta));
    item_end(&r, p);
    run(&alice, &r, &s);
    assert_int_equal(reason_of(s.item), KMIP_REASON_PERMISSION_DENIED);
    resp_free(&s);

    /* Not AES, and a type we do not create. */
    req_begin(&r, 1, 4, 1, 0);
    item_begin(&r, KMIP_OP_CREATE, &p);
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_TEMPLATE_ATTRIBUTE, &ta));
    attr_1x_enum(&r, "Cryptographic Algorithm", KMIP_ALG_TRIPLE_DES);
    attr_1x_int(&r, "Cryptographic Length", 168);
    assert_ok(ttlv_enc_end(&r.b, ta));
    item_end(&r, p);
    run(&alice, &r, &s);
    assert_int_equal(reason_of(s.item), KMIP_REASON_INVALID_FIELD);
    resp_free(&s);

    /* Garbage: one item without Operation, Invalid Message. */
    struct buf out;
    struct ttlv_doc *doc = NULL;
    assert_ok(buf_alloc(&out, 0, 4096));
    assert_ok(kms_dispatch(&w, &alice,
                           (const uint8_t *)"\x42\x00\x78\x01\x00\x00\x00\x08"
                                            "\x42\x00\x01\x02\x00\x00\x00\x04",
                           16, 0, &out));
    assert_ok(ttlv_decode(buf_data(&out), buf_len(&out), NULL, &doc));
    it = ttlv_find(ttlv_doc_root(doc), KMIP_TAG_BATCH_ITEM);
    assert_null(ttlv_find(it, KMIP_TAG_OPERATION));
    assert_int_equal(reason_of(it), KMIP_REASON_INVALID_MESSAGE);
    ttlv_doc_free(&doc);
    buf_free(&out);
}

static void test_register_and_get_back(void **state)
{
    struct req r;
    struct resp s;
    size_t p, so, kb, kv;
    char uid[64];
    static const uint8_t key[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    (void)state;

    req_begin(&r, 2, 0, 1, 0);
    item_begin(&r, KMIP_OP_REGISTER, &p);
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    size_t attrs;
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_ATTRIBUTES, &attrs));
    assert_ok(ttlv_enc_integer(&r.b, KMIP_TAG_CRYPTOGRAPHIC_USAGE_MASK, 12));
    assert_ok(ttlv_enc_end(&r.b, attrs));
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_SYMMETRIC_KEY, &so));
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_KEY_BLOCK, &kb));
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_KEY_FORMAT_RAW));
    assert_ok(ttlv_enc_begin(&r.b, KMIP_TAG_KEY_VALUE, &kv));
    assert_ok(ttlv_enc_bytes(&r.b, KMIP_TAG_KEY_MATERIAL, key, sizeof(key)));
    assert_ok(ttlv_enc_end(&r.b, kv));
    assert_ok(ttlv_enc_enum(&r.b, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES));
    assert_ok(ttlv_enc_integer(&r.b, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 128));
    assert_ok(ttlv_enc_end(&r.b, kb));
    assert_ok(ttlv_enc_end(&r.b, so));
    item_end(&r, p);
    run(&alice, &r, &s);
    assert_int_equal(status_of(s.item), KMIP_STATUS_SUCCESS);
    uid_of(s.item, uid, sizeof(uid));
    resp_free(&s);

    req_begin(&r, 2, 0, 1, 0);
    item_simple(&r, KMIP_OP_GET, uid);
    run(&alice, &r, &s);
    const uint8_t *km;
    size_t kl;
    const struct ttlv *block =
        ttlv_find(ttlv_find(ttlv_find(s.item, KMIP_TAG_RESPONSE_PAYLOAD), KMIP_TAG_SYMMETRIC_KEY),
                  KMIP_TAG_KEY_BLOCK);
    assert_ok(ttlv_get_bytes(ttlv_find(ttlv_find(block, KMIP_TAG_KEY_VALUE), KMIP_TAG_KEY_MATERIAL),
                             &km, &kl));
    assert_int_equal(kl, 16);
    assert_memory_equal(km, key, 16);
    resp_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vcenter_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_life_cycle_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners_do_not_see_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_and_get_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
