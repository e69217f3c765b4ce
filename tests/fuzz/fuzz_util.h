/*
 * fuzz_util.h - what the fuzz targets share.
 */
#ifndef VMSEAL_FUZZ_UTIL_H
#define VMSEAL_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold for every input; libFuzzer reports the abort as
 * a crash with the input that caused it. */
#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

#endif
