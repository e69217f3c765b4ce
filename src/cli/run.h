/*
 * run.h - the vmseal program as a function, and how a failure is told.
 */
#ifndef VMSEAL_CLI_RUN_H
#define VMSEAL_CLI_RUN_H

#include <stddef.h>

#include "cli/api.h"
#include "cli/cli.h"

/* Runs vmseal with argv; returns the exit code (CLI_EXIT_*). */
int cli_main(int argc, char *const *argv) __attribute__((nonnull));

/* Writes the last error for a person: its detail (or the code's message
 * when there is none) and the system's reason; no file:line, which is for
 * developers. */
void cli_error_text(char *out, size_t size) __attribute__((nonnull));

/* Prints the failure rc on ctx->err as "vmseal: <message>" (with --json, a
 * server's error as {"error": {"code", "message"}}), the usage line after a
 * usage error, and returns the exit code: 0 for OK, 2 usage, 130
 * interrupted, 1 otherwise. a may be NULL. */
int cli_report_failure(const struct cli_ctx *ctx, const struct cli_args *a, vs_result rc)
    __attribute__((nonnull(1)));

#endif
