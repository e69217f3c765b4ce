/*
 * run.c - the vmseal program: parse, connect, run the command, and say
 * what went wrong with the right exit code. main.c only calls cli_main, so
 * that all of this is in the library the tests link.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/run.h"

#ifndef VMSEAL_VERSION
#define VMSEAL_VERSION "0"
#endif

void cli_error_text(char *out, size_t size)
{
    const struct err_state *e = err_last();
    char sys[96] = "";

    if (e->sys_errno != 0) {
        char tmp[80];
        snprintf(sys, sizeof(sys), ": %s", strerror_r(e->sys_errno, tmp, sizeof(tmp)));
    }
    snprintf(out, size, "%s%s", e->detail[0] ? e->detail : err_message(e->code), sys);
}

int cli_report_failure(const struct cli_ctx *ctx, const struct cli_args *a, vs_result rc)
{
    char text[1200], safe[1200];

    if (is_ok(rc))
        return CLI_EXIT_OK;
    if (ctx->has_api_error) {
        if (ctx->json) {
            /* Scripts get the API's error object, on stderr as one line. */
            char line[sizeof(ctx->api_error.message) * 2 + 128];
            json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", ctx->api_error.code, "message",
                                  ctx->api_error.message);
            size_t n = e != NULL ? json_dumpb(e, line, sizeof(line), JSON_COMPACT) : 0;
            if (n > 0 && n < sizeof(line))
                fprintf(ctx->err, "%.*s\n", (int)n, line);
            else
                fprintf(ctx->err, "vmseal: %s\n",
                        cli_sanitize(ctx->api_error.message, safe, sizeof(safe)));
            json_decref(e);
        } else {
            fprintf(ctx->err, "vmseal: %s\n",
                    cli_sanitize(ctx->api_error.message, safe, sizeof(safe)));
        }
        return CLI_EXIT_FAILED;
    }
    cli_error_text(text, sizeof(text));
    fprintf(ctx->err, "vmseal: %s\n", cli_sanitize(text, safe, sizeof(safe)));
    if (ctx->usage_error) {
        if (a != NULL && a->command != NULL)
            cli_print_usage(ctx->err, a->command);
        else
            fprintf(ctx->err, "usage: vmseal [--socket PATH] [--json] COMMAND [ARGS]\n");
        return CLI_EXIT_USAGE;
    }
    return ctx->interrupted ? CLI_EXIT_INTERRUPTED : CLI_EXIT_FAILED;
}

/* --socket, else $VMSEAL_SOCKET, else the socket of `make run`. */
static const char *cli_socket_path(const struct cli_args *a)
{
    const char *env = getenv("VMSEAL_SOCKET");
    if (cli_has(a, CLI_OPT_SOCKET))
        return cli_str(a, CLI_OPT_SOCKET);
    if (env != NULL && env[0] != '\0')
        return env;
    return CLI_DEFAULT_SOCKET;
}

int cli_main(int argc, char *const *argv)
{
    struct cli_ctx ctx = {.out = stdout, .err = stderr};
    struct cli_args a;
    vs_result rc;
    int status;
    bool curl_up = false;

    cli_json_init();
    rc = cli_parse(argc, argv, &a);
    if (!is_ok(rc)) {
        ctx.usage_error = true;
        return cli_report_failure(&ctx, &a, rc);
    }
    if (a.version) {
        printf("vmseal %s\n", VMSEAL_VERSION);
        return CLI_EXIT_OK;
    }
    if (a.command == NULL || cli_has(&a, CLI_OPT_HELP)) {
        const char *words[1] = {a.command != NULL ? a.command->name : NULL};
        /* One "word" holding the whole name finds the command exactly. */
        rc = cli_print_help(stdout, words, a.command != NULL ? 1 : 0);
        return is_ok(rc) ? CLI_EXIT_OK : cli_report_failure(&ctx, &a, rc);
    }
    ctx.json = cli_has(&a, CLI_OPT_JSON);
    ctx.progress = !ctx.json && isatty(STDERR_FILENO) == 1;

    if (!a.command->local) {
        struct cli_transport_config cfg = {
            .kind = CLI_TRANSPORT_UNIX,
            .socket_path = cli_socket_path(&a),
        };
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "vmseal: libcurl failed to start\n");
            return CLI_EXIT_FAILED;
        }
        curl_up = true;
        rc = cli_transport_open(&cfg, &ctx.transport);
    }
    if (is_ok(rc))
        rc = a.command->run(&ctx, &a);
    if (is_ok(rc) && fflush(stdout) != 0) {
        rc = RAISE(ERR_IO);
        err_detail("writing to stdout");
    }
    status = cli_report_failure(&ctx, &a, rc);
    cli_transport_close(&ctx.transport);
    if (curl_up)
        curl_global_cleanup();
    return status;
}
