/*
 * cli.h - the vmseal command line: its options, its command table and the
 * parser that turns argv into a checked struct cli_args.
 *
 * One table lists every command (wireguard-tools' src/wg.c is the model):
 * its name ("vm snapshot create"), its synopsis, what it does, the options
 * it takes and the rules between them (required, exactly one of, at most
 * one of, X only with Y). The parser applies the table; the commands
 * receive arguments that already obey it, and `vmseal help` prints it. A
 * usage error never reaches the server.
 *
 * Exit codes: 0 success, 1 refused or failed, 2 usage error, 130
 * interrupted while following a task (which goes on in vmseald).
 */
#ifndef VMSEAL_CLI_CLI_H
#define VMSEAL_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/transport.h"
#include "core/result.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_INTERRUPTED = 130,
};

/* How an option takes its value. */
enum cli_opt_kind {
    CLI_KIND_FLAG,    /* no value */
    CLI_KIND_STRING,  /* one value */
    CLI_KIND_SIZE,    /* a size: bytes, or with a K/M/G/T suffix (binary) */
    CLI_KIND_COUNT,   /* a positive integer, 1..4096 */
    CLI_KIND_INDEX,   /* an index, 0..4095 */
    CLI_KIND_SECONDS, /* a number of seconds, 1..CLI_SECONDS_MAX */
};

/* The longest token lifetime vmseald grants (docs/api.md: 30 days). */
#define CLI_SECONDS_MAX (30u * 24 * 3600)

/* X(ID, spelling, kind, repeatable, metavar, help) */
#define CLI_OPTIONS(X)                                                                            \
    X(JSON, "--json", FLAG, false, NULL, "print the API's JSON answer on stdout, nothing else")   \
    X(SOCKET, "--socket", STRING, false, "PATH",                                                  \
      "vmseald's Unix socket (default: $VMSEAL_SOCKET, else " CLI_DEFAULT_SOCKET ")")             \
    X(HELP, "--help", FLAG, false, NULL, "show this help")                                        \
    X(TO, "--to", STRING, false, "FILE", "the backup file to create (mode 0600, must not exist)") \
    X(FROM, "--from", STRING, false, "FILE", "the backup file to restore from")                   \
    X(NAME, "--name", STRING, false, "NAME", "restore under this name")                           \
    X(PASSPHRASE_FILE, "--passphrase-file", STRING, false, "FILE",                                \
      "read the passphrase from FILE (one line) instead of stdin")                                \
    X(SERVER, "--server", STRING, true, "HOST:PORT", "a KMIP server, tried in order (repeat)")    \
    X(CA, "--ca", STRING, false, "FILE", "PEM CA certificate(s) of the KMIP servers")             \
    X(CERT, "--cert", STRING, false, "FILE", "PEM client certificate for the KMIP servers")       \
    X(KEY, "--key", STRING, false, "FILE", "PEM private key of --cert")                           \
    X(DISK, "--disk", SIZE, true, "SIZE", "an empty disk of SIZE (repeat for more)")              \
    X(IMAGE, "--image", STRING, false, "FILE", "a guest image to copy as the first disk")         \
    X(ENCRYPT, "--encrypt", FLAG, false, NULL, "encrypt under a new key")                         \
    X(DECRYPT, "--decrypt", FLAG, false, NULL, "decrypt the clone")                               \
    X(RECRYPT, "--recrypt", FLAG, false, NULL, "re-encrypt the clone under a new key")            \
    X(PROVIDER, "--provider", STRING, false, "P", "key provider (default: the default one)")      \
    X(MEMORY, "--memory", SIZE, false, "SIZE", "guest memory (default: vmseald's, 256M)")         \
    X(CPUS, "--cpus", COUNT, false, "N", "virtual CPUs (default: vmseald's, 1)")                  \
    X(INSTANT, "--instant", FLAG, false, NULL, "an instant clone (shares the source's disks)")    \
    X(SHALLOW, "--shallow", FLAG, false, NULL, "new KEK only: no data is rewritten")              \
    X(DEEP, "--deep", FLAG, false, NULL, "new KEK and new disk keys: the data is re-encrypted")   \
    X(OFF, "--off", FLAG, false, NULL, "clear the template mark")                              \
    /* the HTTPS transport: global options, before the command when it has its own --server \
     * or --ca (kp add-standard): a spelling picks the command's option first (args.c) */  \
    X(API_SERVER, "--server", STRING, false, "URL",                                            \
      "vmseald's HTTPS API, https://HOST:PORT (default: $VMSEAL_SERVER)")                       \
    X(API_CA, "--ca", STRING, false, "FILE",                                                   \
      "PEM CA (or certificate) that vmseald's HTTPS certificate must chain to "                \
      "(default: $VMSEAL_CA, else the one given at login)")                                    \
    X(TOKEN_FILE, "--token-file", STRING, false, "FILE",                                       \
      "read the API token from FILE instead of the token store")                               \
    /* users, roles, permissions, folders, policies, tasks, key providers */                   \
    X(USER, "--user", STRING, false, "NAME", "a vmseal user")                                  \
    X(GROUP, "--group", STRING, false, "NAME", "a group of vmseal users")                      \
    X(PASSWORD_FILE, "--password-file", STRING, false, "FILE",                                 \
      "read the password from FILE (one line)")                                                \
    X(TTL, "--ttl", SECONDS, false, "SECONDS", "the token's lifetime (default: vmseald's, 12 h)") \
    X(ALL, "--all", FLAG, false, NULL, "everyone's, not only your own")                        \
    X(PRIVILEGE, "--privilege", STRING, true, "P", "a privilege of the role (repeat)")          \
    X(ROLE, "--role", STRING, false, "ROLE", "the role to give")                               \
    X(OBJECT, "--object", STRING, false, "PATH",                                               \
      "the inventory object: / (the root, default), folder/NAME or vm/NAME")                  \
    X(NO_PROPAGATE, "--no-propagate", FLAG, false, NULL,                                       \
      "the permission holds on the object only, not on its children")                          \
    X(FOLDER, "--folder", STRING, false, "NAME", "a folder")                                   \
    X(ROOT, "--root", FLAG, false, NULL, "the root of the inventory (no folder)")              \
    X(POLICY, "--policy", STRING, false, "NAME", "a storage policy")                           \
    X(NONE, "--none", FLAG, false, NULL, "no storage policy: not encrypted")                   \
    X(DISK_INDEX, "--disk", INDEX, false, "N", "only disk N (0 is the first)")                 \
    X(TYPE, "--type", STRING, false, "TYPE", "the provider's type: native or standard")        \
    X(OUT, "--out", STRING, false, "FILE", "write to FILE (mode 0600, must not exist)")        \
    X(SERVER_CERT, "--server-cert", STRING, false, "FILE", "the key server's PEM certificate") \
    X(FINGERPRINT, "--fingerprint", STRING, false, "HEX",                                      \
      "the SHA-256 fingerprint of --server-cert, as kp server-cert showed it")                 \
    X(ALL_STATES, "--all-states", FLAG, false, NULL, "finished tasks too")                     \
    X(RUNNING, "--running", FLAG, false, NULL, "only tasks that are queued or running")

enum cli_opt_id {
#define CLI_OPT_ENUM(id, spelling, kind, repeat, metavar, help) CLI_OPT_##id,
    CLI_OPTIONS(CLI_OPT_ENUM)
#undef CLI_OPT_ENUM
        CLI_OPT_COUNT_
};

/* The options are bits of a uint64_t. */
_Static_assert(CLI_OPT_COUNT_ <= 64, "too many options for the uint64_t option masks");

#define CLI_BIT(id) ((uint64_t)1 << CLI_OPT_##id)

struct cli_option {
    const char *spelling; /* "--disk" */
    enum cli_opt_kind kind;
    bool repeatable;
    const char *metavar; /* "SIZE"; NULL for a flag */
    const char *help;
};

/* The option table, indexed by enum cli_opt_id. */
extern const struct cli_option cli_options[CLI_OPT_COUNT_];

/* Options every command takes. */
#define CLI_GLOBAL_OPTIONS                                                                    \
    (CLI_BIT(JSON) | CLI_BIT(SOCKET) | CLI_BIT(HELP) | CLI_BIT(API_SERVER) | CLI_BIT(API_CA) | \
     CLI_BIT(TOKEN_FILE))

#define CLI_MAX_ARGS 4    /* positional arguments */
#define CLI_MAX_REPEAT 64 /* values of one repeatable option (a role's privileges) */

struct cli_ctx;
struct cli_args;

/* A command: returns OK, or fails with the error recorded (and, for an
 * answer of the server, ctx->api_error filled). */
typedef vs_result cli_command_fn(struct cli_ctx *ctx, const struct cli_args *a);

/* "option needs one of these options". */
struct cli_needs {
    uint64_t option;
    uint64_t any_of;
};

/* Whether a command needs the API token over HTTPS. */
enum cli_token_use {
    CLI_TOKEN_REQUIRED = 0, /* every command but these: */
    CLI_TOKEN_UNUSED,       /* login: it gets one; none is sent */
    CLI_TOKEN_OPTIONAL,     /* logout: sent when the store holds a valid one */
};

struct cli_command {
    const char *name;     /* the words: "vm snapshot create" */
    const char *args;     /* the positional arguments: "NAME SNAP" ("" for none) */
    const char *synopsis; /* its options: "[--provider P]" ("" for none) */
    const char *summary;  /* one line for the list */
    const char *help;     /* more, for `vmseal help COMMAND`; may be NULL */
    cli_command_fn *run;
    unsigned min_args, max_args;
    uint64_t options;     /* beyond CLI_GLOBAL_OPTIONS */
    uint64_t required;    /* each must be given */
    uint64_t exactly_one; /* exactly one of these (0: no such rule) */
    uint64_t at_most_one; /* at most one of these (0: no such rule) */
    struct cli_needs needs[2];
    bool local; /* runs without a server (help) */
    enum cli_token_use token_use;
};

/* The command table, and its length. */
extern const struct cli_command cli_commands[];
extern const size_t cli_command_count;

/* The values of one option, as given. */
struct cli_value {
    unsigned count;
    const char *text[CLI_MAX_REPEAT];
    uint64_t number[CLI_MAX_REPEAT]; /* SIZE and COUNT options, parsed */
};

/* argv, parsed and checked against the command's row of the table. The
 * strings point into argv. */
struct cli_args {
    const struct cli_command *command; /* NULL with --version or bare --help */
    bool version;
    const char *arg[CLI_MAX_ARGS];
    unsigned nargs;
    uint64_t given; /* CLI_BIT()s of the options given */
    struct cli_value opt[CLI_OPT_COUNT_];
};

static inline bool cli_has(const struct cli_args *a, enum cli_opt_id id)
{
    return (a->given >> id) & 1;
}

/* The (first) value of a string option, or NULL when not given. */
static inline const char *cli_str(const struct cli_args *a, enum cli_opt_id id)
{
    return a->opt[id].count > 0 ? a->opt[id].text[0] : NULL;
}

/* Parses argv[1..argc) into *a. A usage error is ERR_INVALID_ARG with a
 * detail a person reads ("--shallow and --deep cannot be used together");
 * a->command is then set when the command was recognised, for the usage
 * line. */
RESULT cli_parse(int argc, char *const *argv, struct cli_args *a) __attribute__((nonnull));

/* Parses a size: digits, optionally followed by K, M, G or T (binary,
 * either case, "iB" allowed after it: 10G, 10GiB, 512m). Refuses zero,
 * signs, spaces, other suffixes and anything above INT64_MAX (the API's
 * integers are JSON int64). ERR_INVALID_ARG or ERR_OVERFLOW with a detail. */
RESULT cli_parse_size(const char *text, uint64_t *out) __attribute__((nonnull));

/* Parses a decimal integer in [min, max] (digits only). */
RESULT cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
    __attribute__((nonnull));

/* Checks a KMIP server address: HOST:PORT or [IPV6]:PORT, port 1..65535. */
RESULT cli_check_host_port(const char *text) __attribute__((nonnull));

/* Checks an inventory object's path (docs/api.md, "Authentication"): "/"
 * for the root, or KIND/NAME ("vm/web1", "folder/prod") with KIND lower-case
 * letters and NAME without '/'. vmseald checks that the object exists. */
RESULT cli_check_object_path(const char *text) __attribute__((nonnull));

/* The command whose name is exactly `name` ("vm info"), or NULL. */
const struct cli_command *cli_command_find(const char *name) __attribute__((nonnull));

/* Writes the usage line of c ("usage: vmseal vm info NAME [--json] ...") to f. */
void cli_print_usage(FILE *f, const struct cli_command *c) __attribute__((nonnull));

/* `vmseal help` for the words given (none: everything; a group such as
 * "vm": its commands; a command: its full help). ERR_NOT_FOUND for words
 * that name nothing. */
RESULT cli_print_help(FILE *f, const char *const *words, unsigned nwords)
    __attribute__((nonnull(1)));

#endif
