/*
 * test_util.h - small helpers shared by the unit tests. Include after
 * <cmocka.h>'s prerequisites (stdarg, stddef, stdint, setjmp).
 */
#ifndef VMSEAL_TEST_UTIL_H
#define VMSEAL_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/result.h"

/* Asserts that a vs_result is OK, printing the recorded error if not. */
#define assert_ok(expr)                                                                          \
    do {                                                                                         \
        vs_result assert_r_ = (expr);                                                            \
        if (!is_ok(assert_r_)) {                                                                 \
            char assert_msg_[512];                                                               \
            print_error("%s failed: %s\n", #expr, err_format(assert_msg_, sizeof(assert_msg_))); \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

/* Asserts that a vs_result failed with exactly this code. */
#define assert_err(expr, want_code)                                              \
    do {                                                                         \
        vs_result assert_r_ = (expr);                                            \
        if (assert_r_.code != (want_code)) {                                     \
            print_error("%s: expected %s, got %s\n", #expr, err_name(want_code), \
                        err_name(assert_r_.code));                               \
            fail();                                                              \
        }                                                                        \
    } while (0)

/* Decodes a hex literal into a freshly allocated buf (caller buf_free's). */
static inline void test_hex(struct buf *b, const char *hex)
{
    assert_ok(buf_alloc(b, 0, 1 << 20));
    assert_ok(buf_write_hex(b, hex));
}

#endif
