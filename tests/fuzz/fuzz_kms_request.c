/*
 * fuzz_kms_request.c - libFuzzer target for vmseal-kms's request handler:
 * bytes as they come off a connection, through the whole of kms_dispatch
 * (envelope, batches, every operation's payload parsing, the store), seeded
 * with the vCenter 7.0.3 requests.
 *
 * For any input the handler must produce a response that is itself a valid
 * KMIP Response Message (so a client can always read why), without crashing,
 * leaking or growing without bound. The store lives in a temporary
 * directory for the whole run, so operations see the objects earlier inputs
 * created (the vCenter seeds create keys "1" and "2" in spirit; random
 * identifiers are found through Locate and the ID Placeholder).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmip/kmip_defs.h"
#include "kms/dispatch.h"

#include "fuzz_util.h"

static struct kms_worker_ctx w;
static struct kms_principal who;
static bool ready;

static void fuzz_setup(void)
{
    static char dir[] = "/tmp/vmseal-fuzz-kms-XXXXXX";
    char path[128];
    struct kms_rootkey *rk = NULL;
    struct kms_store *store = NULL;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/root.key", dir);
    CHECK(is_ok(kms_rootkey_create_file(path)));
    CHECK(is_ok(kms_rootkey_open_file(path, &rk)));
    snprintf(path, sizeof(path), "%s/kms.db", dir);
    CHECK(is_ok(kms_store_open(path, rk, &store)));
    CHECK(is_ok(kms_worker_ctx_init(&w, store, NULL, NULL)));
    memset(&who, 0, sizeof(who));
    snprintf(who.identity, sizeof(who.identity), "fuzzer");
    snprintf(who.owner, sizeof(who.owner), "fuzzer");
    who.owners[0] = who.owner;
    who.owner_count = 1;
    ready = true;
    /* The store and key live for the whole process; the directory is
     * removed at exit (it holds only fuzzer keys). */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf resp;
    struct ttlv_doc *doc = NULL;

    if (!ready)
        fuzz_setup();
    if (size > 65536)
        return 0;
    CHECK(is_ok(buf_alloc(&resp, 0, 4u << 20)));
    /* Whatever came in, an answer goes out, and it decodes as a response. */
    CHECK(is_ok(kms_dispatch(&w, &who, data, size, 1700000000, &resp)));
    CHECK(is_ok(ttlv_decode(buf_data(&resp), buf_len(&resp), NULL, &doc)));
    const struct ttlv *root = ttlv_doc_root(doc);
    CHECK(root->tag == KMIP_TAG_RESPONSE_MESSAGE);
    int32_t count;
    CHECK(is_ok(ttlv_get_integer(
        ttlv_find(ttlv_find(root, KMIP_TAG_RESPONSE_HEADER), KMIP_TAG_BATCH_COUNT), &count)));
    CHECK(count >= 1 && (size_t)count == ttlv_count(root, KMIP_TAG_BATCH_ITEM));
    ttlv_doc_free(&doc);
    buf_free(&resp);
    return 0;
}
