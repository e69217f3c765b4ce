/*
 * args.c - argv to struct cli_args, checked against the command table.
 * See cli.h.
 */
#include "cli/cli.h"

#include <string.h>

const struct cli_option cli_options[CLI_OPT_COUNT_] = {
#define CLI_OPT_ROW(id, spelling, kind, repeat, metavar, help) \
    [CLI_OPT_##id] = {spelling, CLI_KIND_##kind, repeat, metavar, help},
    CLI_OPTIONS(CLI_OPT_ROW)
#undef CLI_OPT_ROW
};

/* A usage error: ERR_INVALID_ARG with a sentence. */
#define CLI_USAGE(...)                                    \
    do {                                                  \
        vs_result cli_usage_rc_ = RAISE(ERR_INVALID_ARG); \
        err_detail(__VA_ARGS__);                          \
        return cli_usage_rc_;                             \
    } while (0)

/* --- values --- */

static bool cli_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads the leading digits of text into *value; *end after them. */
static vs_result cli_read_digits(const char *text, uint64_t *value, const char **end)
{
    uint64_t v = 0;
    const char *p = text;

    if (!cli_is_digit(*p))
        CLI_USAGE("'%s' is not a number", text);
    for (; cli_is_digit(*p); p++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) {
            vs_result rc = RAISE(ERR_OVERFLOW);
            err_detail("'%s' is too large", text);
            return rc;
        }
    }
    *value = v;
    *end = p;
    return OK_RESULT;
}

vs_result cli_parse_size(const char *text, uint64_t *out)
{
    /* Binary units, as disks and memory are counted. */
    static const struct {
        char upper, lower;
        unsigned shift;
    } suffixes[] = {{'K', 'k', 10}, {'M', 'm', 20}, {'G', 'g', 30}, {'T', 't', 40}};
    uint64_t v, scaled;
    const char *p;
    unsigned shift = 0;

    if (text[0] == '\0')
        CLI_USAGE("empty size");
    if (!cli_is_digit(text[0]))
        CLI_USAGE("'%s' is not a size (bytes, or a number with K, M, G or T)", text);
    GUARD(cli_read_digits(text, &v, &p));
    if (*p != '\0') {
        size_t i;
        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
            if (*p == suffixes[i].upper || *p == suffixes[i].lower)
                break;
        if (i == sizeof(suffixes) / sizeof(suffixes[0]) ||
            (p[1] != '\0' && strcmp(p + 1, "iB") != 0))
            CLI_USAGE("'%s': unknown size suffix '%s' (use K, M, G or T: binary units)", text, p);
        shift = suffixes[i].shift;
    }
    if (v == 0)
        CLI_USAGE("'%s': a size must be greater than zero", text);
    /* The API's integers are JSON int64: nothing above INT64_MAX. */
    if (v > (uint64_t)INT64_MAX >> shift) {
        vs_result rc = RAISE(ERR_OVERFLOW);
        err_detail("'%s' is too large", text);
        return rc;
    }
    scaled = v << shift;
    *out = scaled;
    return OK_RESULT;
}

vs_result cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    const char *end;

    GUARD(cli_read_digits(text, &v, &end));
    if (*end != '\0')
        CLI_USAGE("'%s' is not a number", text);
    if (v < min || v > max)
        CLI_USAGE("'%s' is out of range (%llu to %llu)", text, (unsigned long long)min,
                  (unsigned long long)max);
    *out = v;
    return OK_RESULT;
}

static bool cli_is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || cli_is_digit(c) || c == '.' ||
           c == '-' || c == '_';
}

static bool cli_is_ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || cli_is_digit(c) || c == ':' ||
           c == '.';
}

vs_result cli_check_host_port(const char *text)
{
    const char *port;
    uint64_t n;
    size_t hostlen = 0;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            CLI_USAGE("'%s' is not HOST:PORT ([IPV6]:PORT for an IPv6 address)", text);
        for (const char *p = text + 1; p < close; p++, hostlen++)
            if (!cli_is_ipv6_char(*p))
                CLI_USAGE("'%s': invalid IPv6 address", text);
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            CLI_USAGE("'%s' is not HOST:PORT (KMIP's port is usually 5696)", text);
        for (const char *p = text; p < colon; p++, hostlen++)
            if (!cli_is_host_char(*p))
                CLI_USAGE("'%s': invalid host name", text);
        port = colon + 1;
    }
    if (hostlen == 0)
        CLI_USAGE("'%s' has no host", text);
    if (port[0] == '\0' || !is_ok(cli_parse_uint(port, 1, 65535, &n)))
        CLI_USAGE("'%s': the port must be a number from 1 to 65535", text);
    return OK_RESULT;
}

vs_result cli_check_object_path(const char *text)
{
    const char *slash = strchr(text, '/');

    if (strcmp(text, "/") == 0)
        return OK_RESULT;
    if (slash == NULL || slash == text || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
        CLI_USAGE("'%s' is not an object: / (the root), folder/NAME or vm/NAME", text);
    for (const char *p = text; p < slash; p++)
        if (*p < 'a' || *p > 'z')
            CLI_USAGE("'%s' is not an object: / (the root), folder/NAME or vm/NAME", text);
    return OK_RESULT;
}

/* --- options --- */

/* The option spelled exactly as the first len bytes of arg, or -1. One
 * spelling may name two options where they take different places: one of
 * the allowed set is preferred (the HTTPS transport's --server and --ca,
 * before the command, will not be kp add-standard's). */
static int cli_option_find(const char *arg, size_t len, uint64_t allowed)
{
    int found = -1;
    for (int id = 0; id < CLI_OPT_COUNT_; id++) {
        if (strlen(cli_options[id].spelling) != len ||
            memcmp(cli_options[id].spelling, arg, len) != 0)
            continue;
        if ((allowed >> id) & 1)
            return id;
        if (found < 0)
            found = id;
    }
    return found;
}

/* "A, B or C" for the options in mask. */
static const char *cli_option_list(uint64_t mask, const char *sep_last, char *out, size_t size)
{
    size_t n = 0, total = (size_t)__builtin_popcountll(mask), k = 0;
    out[0] = '\0';
    for (int id = 0; id < CLI_OPT_COUNT_; id++) {
        if (!((mask >> id) & 1))
            continue;
        const char *sep = k == 0 ? "" : (k + 1 == total ? sep_last : ", ");
        int w = snprintf(out + n, size - n, "%s%s", sep, cli_options[id].spelling);
        if (w < 0 || (size_t)w >= size - n)
            break;
        n += (size_t)w;
        k++;
    }
    return out;
}

/* Parses the option at argv[*i] (and its value), advancing *i. */
static vs_result cli_parse_option(int argc, char *const *argv, int *i, struct cli_args *a,
                                  uint64_t allowed, const struct cli_command *c)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    int id = strcmp(arg, "-h") == 0 ? CLI_OPT_HELP : cli_option_find(arg, len, allowed);
    const char *value = NULL;

    if (id < 0)
        CLI_USAGE("unknown option %.*s", (int)len, arg);
    const struct cli_option *o = &cli_options[id];
    if (!((allowed >> id) & 1)) {
        if (c != NULL)
            CLI_USAGE("'vmseal %s' has no %s option", c->name, o->spelling);
        CLI_USAGE("%s goes after the command", o->spelling);
    }
    struct cli_value *v = &a->opt[id];
    if (v->count > 0 && !o->repeatable)
        CLI_USAGE("%s is given twice", o->spelling);
    if (v->count == CLI_MAX_REPEAT)
        CLI_USAGE("too many %s options (at most %d)", o->spelling, CLI_MAX_REPEAT);
    (*i)++;
    if (o->kind == CLI_KIND_FLAG) {
        if (eq != NULL)
            CLI_USAGE("%s takes no value", o->spelling);
    } else if (eq != NULL) {
        value = eq + 1;
    } else if (*i < argc && strncmp(argv[*i], "--", 2) != 0) {
        /* A value that starts with "--" is taken for a forgotten value
         * followed by the next option; --to=--odd-name still works. */
        value = argv[(*i)++];
    } else {
        CLI_USAGE("%s needs a value (%s)", o->spelling, o->metavar);
    }
    if (value != NULL && value[0] == '\0')
        CLI_USAGE("%s needs a value (%s), not an empty string", o->spelling, o->metavar);

    v->text[v->count] = value;
    if (o->kind != CLI_KIND_FLAG && o->kind != CLI_KIND_STRING) {
        uint64_t *number = &v->number[v->count];
        vs_result rc = o->kind == CLI_KIND_SIZE    ? cli_parse_size(value, number)
                       : o->kind == CLI_KIND_COUNT ? cli_parse_uint(value, 1, 4096, number)
                       : o->kind == CLI_KIND_INDEX ? cli_parse_uint(value, 0, 4095, number)
                                                   : cli_parse_uint(value, 1, CLI_SECONDS_MAX, number);
        if (!is_ok(rc)) {
            char why[sizeof(err_last()->detail)];
            snprintf(why, sizeof(why), "%s", err_last()->detail);
            rc = RAISE(ERR_INVALID_ARG); /* an overflow too is a usage error */
            err_detail("%s: %s", o->spelling, why);
            return rc;
        }
    }
    v->count++;
    a->given |= (uint64_t)1 << id;
    return OK_RESULT;
}

/* --- commands --- */

const struct cli_command *cli_command_find(const char *name)
{
    for (size_t k = 0; k < cli_command_count; k++)
        if (strcmp(cli_commands[k].name, name) == 0)
            return &cli_commands[k];
    return NULL;
}

/* How many of the words of name argv[i..] spells out (0 if not all). With
 * prefix, how many leading words match even when not all do. */
static unsigned cli_name_match(const char *name, int argc, char *const *argv, int i, bool prefix)
{
    unsigned words = 0;
    const char *p = name;

    while (*p != '\0') {
        size_t len = strcspn(p, " ");
        if (i + (int)words >= argc || strlen(argv[i + words]) != len ||
            memcmp(argv[i + words], p, len) != 0)
            return prefix ? words : 0;
        words++;
        p += len;
        if (*p == ' ')
            p++;
    }
    return words;
}

/* Finds the command that argv[*i..] names, the longest match winning, and
 * advances *i past its words. */
static vs_result cli_match_command(int argc, char *const *argv, int *i, struct cli_args *a)
{
    const struct cli_command *best = NULL;
    unsigned best_words = 0, prefix_words = 0;

    for (size_t k = 0; k < cli_command_count; k++) {
        unsigned w = cli_name_match(cli_commands[k].name, argc, argv, *i, false);
        if (w > best_words) {
            best = &cli_commands[k];
            best_words = w;
        }
        w = cli_name_match(cli_commands[k].name, argc, argv, *i, true);
        if (w > prefix_words)
            prefix_words = w;
    }
    if (best != NULL) {
        a->command = best;
        *i += (int)best_words;
        return OK_RESULT;
    }
    if (prefix_words == 0)
        CLI_USAGE("unknown command '%s' (vmseal help lists the commands)", argv[*i]);
    /* "vm" alone, or "vm frob": name the group and where to look. */
    char group[64] = "";
    size_t n = 0;
    for (unsigned w = 0; w < prefix_words; w++) {
        int r = snprintf(group + n, sizeof(group) - n, "%s%s", w ? " " : "", argv[*i + (int)w]);
        if (r < 0 || (size_t)r >= sizeof(group) - n)
            break;
        n += (size_t)r;
    }
    if (*i + (int)prefix_words < argc && argv[*i + (int)prefix_words][0] != '-')
        CLI_USAGE("unknown command '%s %s' (vmseal help %s lists them)", group,
                  argv[*i + (int)prefix_words], group);
    CLI_USAGE("'%s' needs a command (vmseal help %s lists them)", group, group);
}

/* Applies the command's rules to what was given. */
static vs_result cli_check_rules(const struct cli_command *c, const struct cli_args *a)
{
    char list[160];
    uint64_t given = a->given;

    if (a->nargs < c->min_args)
        CLI_USAGE("'vmseal %s' needs %s", c->name, c->args);
    for (int id = 0; id < CLI_OPT_COUNT_; id++)
        if (((c->required >> id) & 1) && !((given >> id) & 1))
            CLI_USAGE("'vmseal %s' needs %s %s", c->name, cli_options[id].spelling,
                      cli_options[id].metavar ? cli_options[id].metavar : "");
    if (c->exactly_one != 0 && (given & c->exactly_one) == 0)
        CLI_USAGE("'vmseal %s' needs one of %s", c->name,
                  cli_option_list(c->exactly_one, " or ", list, sizeof(list)));
    uint64_t exclusive[2] = {c->exactly_one, c->at_most_one};
    for (size_t k = 0; k < 2; k++)
        if (__builtin_popcountll(given & exclusive[k]) > 1)
            CLI_USAGE("%s cannot be used together",
                      cli_option_list(given & exclusive[k], " and ", list, sizeof(list)));
    for (size_t k = 0; k < sizeof(c->needs) / sizeof(c->needs[0]); k++)
        if (c->needs[k].option != 0 && (given & c->needs[k].option) != 0 &&
            (given & c->needs[k].any_of) == 0) {
            char what[64];
            CLI_USAGE("%s needs %s",
                      cli_option_list(c->needs[k].option, " and ", what, sizeof(what)),
                      cli_option_list(c->needs[k].any_of, " or ", list, sizeof(list)));
        }
    return OK_RESULT;
}

vs_result cli_parse(int argc, char *const *argv, struct cli_args *a)
{
    int i = 1;
    bool only_args = false;

    memset(a, 0, sizeof(*a));
    /* Before the command: the global options, and --version. */
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (strcmp(argv[i], "--version") == 0) {
            a->version = true;
            i++;
            continue;
        }
        GUARD(cli_parse_option(argc, argv, &i, a, CLI_GLOBAL_OPTIONS, NULL));
    }
    if (i == argc) {
        if (a->version || cli_has(a, CLI_OPT_HELP))
            return OK_RESULT;
        CLI_USAGE("no command given (vmseal help lists them)");
    }
    if (a->version)
        CLI_USAGE("--version takes no command");
    GUARD(cli_match_command(argc, argv, &i, a));

    const struct cli_command *c = a->command;
    uint64_t allowed = c->options | CLI_GLOBAL_OPTIONS;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_args && strcmp(arg, "--") == 0) {
            only_args = true;
        } else if (!only_args && arg[0] == '-' && arg[1] != '\0') {
            GUARD(cli_parse_option(argc, argv, &i, a, allowed, c));
            i--; /* cli_parse_option advanced past the option and its value */
        } else if (a->nargs < c->max_args) {
            a->arg[a->nargs++] = arg;
        } else if (c->max_args == 0) {
            CLI_USAGE("'vmseal %s' takes no arguments ('%s' is one too many)", c->name, arg);
        } else {
            CLI_USAGE("'vmseal %s' takes %s ('%s' is one too many)", c->name, c->args, arg);
        }
    }
    /* --help asks for help whatever else is there. */
    if (cli_has(a, CLI_OPT_HELP))
        return OK_RESULT;
    /* The two transports exclude each other. */
    if (cli_has(a, CLI_OPT_SOCKET) && cli_has(a, CLI_OPT_API_SERVER))
        CLI_USAGE("--socket and --server cannot be used together (the Unix socket, or HTTPS)");
    return cli_check_rules(c, a);
}
