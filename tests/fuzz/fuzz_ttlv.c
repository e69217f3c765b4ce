/*
 * fuzz_ttlv.c - libFuzzer target for the TTLV decoder, seeded with the 58
 * requests of the vCenter 7.0.3 capture.
 *
 * For any input: decoding either fails cleanly or yields a tree which
 *   - re-encodes to exactly as many bytes as the input (nothing was skipped
 *     or invented), and
 *   - decodes again and re-encodes to the same bytes (the codec is stable).
 * Framing must agree with decoding about the message's length. Small limits
 * are used so that the depth and item limits are exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/ttlv.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ttlv_limits limits = {.max_depth = 12, .max_items = 512};
    struct ttlv_doc *doc = NULL, *doc2 = NULL;
    struct buf once, twice;
    size_t total;

    if (!is_ok(ttlv_decode(data, size, &limits, &doc))) {
        CHECK(doc == NULL);
        return 0;
    }
    /* A message that decodes has a valid frame, if it is a Structure. */
    const struct ttlv *root = ttlv_doc_root(doc);
    if (root->type == TTLV_STRUCTURE)
        CHECK(is_ok(ttlv_frame_length(data, size, &total)) && total == size);

    CHECK(is_ok(buf_alloc(&once, 0, size)));
    CHECK(is_ok(ttlv_enc_item(&once, root)));
    CHECK(buf_len(&once) == size);

    CHECK(is_ok(ttlv_decode(buf_data(&once), buf_len(&once), &limits, &doc2)));
    CHECK(is_ok(buf_alloc(&twice, 0, size)));
    CHECK(is_ok(ttlv_enc_item(&twice, ttlv_doc_root(doc2))));
    CHECK(buf_len(&twice) == size && memcmp(buf_data(&once), buf_data(&twice), size) == 0);

    ttlv_doc_free(&doc2);
    ttlv_doc_free(&doc);
    buf_free(&twice);
    buf_free(&once);
    return 0;
}
