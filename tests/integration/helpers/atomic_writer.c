/*
 * atomic_writer - test helper for tests/integration/test_atomic_file.py.
 *
 * Rewrites PATH with generation START, START+1, ... through
 * file_write_atomic() and prints "ack N" (flushed) after each write returns
 * OK, forever. The test
 * kills it with SIGKILL at a random moment and checks that PATH then holds
 * one complete generation, no older than the last acknowledged one.
 *
 * Generation N is: "gen N len L\n" followed by L bytes, byte i being
 * (N * 31 + i) & 0xff, with L = 4096 + (N * 7919) % (1 << 20): long enough
 * that a kill often lands during the write or the fsync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

int main(int argc, char **argv)
{
    static uint8_t content[64 + (1 << 20) + 4096];

    char *end;
    unsigned long start;

    if (argc != 3 || (start = strtoul(argv[2], &end, 10)) == 0 || *end != '\0') {
        fprintf(stderr, "usage: atomic_writer PATH START\n");
        return 2;
    }
    for (unsigned long gen = start;; gen++) {
        size_t len = 4096 + (gen * 7919) % (1u << 20);
        int n = snprintf((char *)content, 64, "gen %lu len %zu\n", gen, len);
        for (size_t i = 0; i < len; i++)
            content[(size_t)n + i] = (uint8_t)((gen * 31 + i) & 0xff);
        vs_result rc = file_write_atomic(argv[1], content, (size_t)n + len, 0600);
        if (!is_ok(rc)) {
            char msg[256];
            fprintf(stderr, "write failed: %s\n", err_format(msg, sizeof(msg)));
            return 1;
        }
        printf("ack %lu\n", gen);
        fflush(stdout);
    }
}
