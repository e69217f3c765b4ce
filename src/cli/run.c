/*
 * run.c - the vmseal program: parse, connect, run the command, and say
 * what went wrong with the right exit code. main.c only calls cli_main, so
 * that all of this is in the library the tests link.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "cli/input.h"
#include "cli/output.h"
#include "cli/run.h"
#include "cli/tokens.h"

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

/* After a 401 over HTTPS: how to get a valid token again. */
static void cli_report_hint(const struct cli_ctx *ctx)
{
    char safe[CLI_SERVER_URL_MAX];

    /* Not after a login that failed: it needs no advice to log in. */
    if (ctx->api_error.status != 401 || ctx->server == NULL ||
        ctx->token_source == CLI_TOKEN_NONE)
        return;
    if (ctx->token_source == CLI_TOKEN_FILE)
        fprintf(ctx->err, "vmseal: the token of --token-file is not accepted: get a new one\n");
    else
        fprintf(ctx->err,
                "vmseal: run vmseal --server %s login --user NAME --password-file FILE\n",
                cli_sanitize(ctx->server, safe, sizeof(safe)));
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
            char after[64] = "", said[32];
            /* Retry-After, unless the message already says it. */
            snprintf(said, sizeof(said), "%ld second", ctx->api_error.retry_after);
            if (ctx->api_error.retry_after > 0 && strstr(ctx->api_error.message, said) == NULL)
                snprintf(after, sizeof(after), " (retry after %ld seconds)",
                         ctx->api_error.retry_after);
            fprintf(ctx->err, "vmseal: %s%s\n",
                    cli_sanitize(ctx->api_error.message, safe, sizeof(safe)), after);
            cli_report_hint(ctx);
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

/* What the transport is made of, held for the life of the command. */
struct cli_setup {
    char server[CLI_SERVER_URL_MAX];
    char tokens_dir[PATH_MAX];
    char ca[PATH_MAX];
    struct buf token; /* secret */
    json_t *store;
};

static vs_result cli_not_logged_in(const char *server, const char *why)
{
    vs_result rc = RAISE(ERR_UNAUTHENTICATED);
    err_detail("%s %s: run vmseal --server %s login --user NAME --password-file FILE", why,
               server, server);
    return rc;
}

/* Decides the transport: HTTPS with --server (or $VMSEAL_SERVER when
 * --socket is not given), its CA (--ca, $VMSEAL_CA, else the one given at
 * login) and its token (--token-file, else the token store); otherwise the
 * Unix socket, where vmseald knows the caller by its uid and no token is
 * sent unless --token-file gives one. */
static vs_result cli_setup_transport(struct cli_ctx *ctx, const struct cli_args *a,
                                     struct cli_setup *s, struct cli_transport_config *cfg)
{
    const char *server = cli_str(a, CLI_OPT_API_SERVER), *ca = cli_str(a, CLI_OPT_API_CA);
    const char *env;
    struct cli_token_entry entry = {0};
    bool have_entry = false;

    if (server == NULL && !cli_has(a, CLI_OPT_SOCKET)) {
        env = getenv("VMSEAL_SERVER");
        server = env != NULL && env[0] != '\0' ? env : NULL;
    }
    if (cli_has(a, CLI_OPT_TOKEN_FILE)) {
        vs_result rc = cli_read_secret_file(cli_str(a, CLI_OPT_TOKEN_FILE), "token",
                                            CLI_TOKEN_MAX, &s->token);
        if (!is_ok(rc))
            return cli_detail_prefix("--token-file");
        ctx->token_source = CLI_TOKEN_FILE;
        cfg->token = &s->token;
    }
    if (server == NULL) {
        if (ca != NULL)
            return cli_usage_error(ctx, "--ca goes with --server https://HOST:PORT");
        cfg->kind = CLI_TRANSPORT_UNIX;
        cfg->socket_path = cli_socket_path(a);
        return OK_RESULT;
    }

    cfg->kind = CLI_TRANSPORT_HTTPS;
    if (!is_ok(cli_server_url_parse(server, s->server, sizeof(s->server)))) {
        if (cli_has(a, CLI_OPT_API_SERVER))
            return cli_usage_prefix(ctx, "--server");
        return cli_detail_prefix("VMSEAL_SERVER");
    }
    cfg->server = s->server;
    ctx->server = s->server;
    GUARD(cli_tokens_default_dir(s->tokens_dir, sizeof(s->tokens_dir)));
    ctx->tokens_dir = s->tokens_dir;

    /* The store is read whenever it may be needed: for the token, or for
     * the CA given at login. A store that is unsafe or malformed stops
     * everything that would use it. */
    if (cfg->token == NULL || ca == NULL) {
        GUARD(cli_tokens_load(s->tokens_dir, &s->store));
        vs_result rc = cli_tokens_get(s->store, s->server, &entry);
        if (!is_ok(rc) && rc.code != ERR_NOT_FOUND)
            return rc;
        have_entry = is_ok(rc);
    }
    if (ca == NULL) {
        env = getenv("VMSEAL_CA");
        ca = env != NULL && env[0] != '\0' ? env : NULL;
    }
    if (ca != NULL) {
        /* Absolute, as login records it. */
        GUARD(cli_path_absolute(NULL, ca, s->ca, sizeof(s->ca)));
        ctx->ca_file = s->ca;
    } else if (have_entry && entry.ca != NULL) {
        snprintf(s->ca, sizeof(s->ca), "%s", entry.ca);
        ctx->ca_file = s->ca;
    }
    cfg->ca_file = ctx->ca_file;

    if (cfg->token != NULL || a->command->token_use == CLI_TOKEN_UNUSED)
        return OK_RESULT;
    bool expired = have_entry && cli_tokens_expired(entry.expires, time(NULL));
    if (a->command->token_use == CLI_TOKEN_OPTIONAL && (!have_entry || expired)) {
        ctx->token_expires = have_entry ? entry.expires : NULL;
        return OK_RESULT;
    }
    if (!have_entry)
        return cli_not_logged_in(s->server, "not logged in to");
    if (expired) {
        char why[160];
        snprintf(why, sizeof(why), "the token of %.20s expired at %.40s, for", entry.user,
                 entry.expires);
        return cli_not_logged_in(s->server, why);
    }
    size_t n = strlen(entry.token);
    GUARD(buf_alloc_secret(&s->token, n, n));
    GUARD(buf_write_bytes(&s->token, entry.token, n));
    ctx->token_source = CLI_TOKEN_STORE;
    ctx->token_id = entry.id;
    ctx->token_expires = entry.expires;
    cfg->token = &s->token;
    return OK_RESULT;
}

int cli_main(int argc, char *const *argv)
{
    struct cli_ctx ctx = {.out = stdout, .err = stderr};
    struct cli_args a;
    struct cli_setup setup = {0};
    vs_result rc = OK_RESULT;
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
        struct cli_transport_config cfg = {0};
        rc = cli_setup_transport(&ctx, &a, &setup, &cfg);
        if (is_ok(rc) && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            rc = RAISE(ERR_INTERNAL);
            err_detail("libcurl failed to start");
        }
        curl_up = is_ok(rc);
        if (is_ok(rc))
            rc = cli_transport_open(&cfg, &ctx.transport);
        buf_free(&setup.token); /* the transport holds its own copy */
    }
    if (is_ok(rc))
        rc = a.command->run(&ctx, &a);
    if (is_ok(rc) && fflush(stdout) != 0) {
        rc = RAISE(ERR_IO);
        err_detail("writing to stdout");
    }
    status = cli_report_failure(&ctx, &a, rc);
    cli_transport_close(&ctx.transport);
    json_decref(setup.store);
    if (curl_up)
        curl_global_cleanup();
    return status;
}
