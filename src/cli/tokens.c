/*
 * tokens.c - the token store. See tokens.h.
 */
#include "cli/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/transport.h"
#include "core/buf.h"
#include "core/file.h"

#define CLI_TOKENS_FAIL(code, ...)            \
    do {                                      \
        vs_result cli_fail_rc_ = RAISE(code); \
        err_detail(__VA_ARGS__);              \
        return cli_fail_rc_;                  \
    } while (0)

static vs_result cli_tokens_sys_fail(int e, const char *what, const char *path)
{
    vs_result rc = RAISE(e == EACCES || e == EPERM ? ERR_PERM : ERR_IO);
    err_errno(e);
    err_detail("%s %s", what, path);
    return rc;
}

vs_result cli_tokens_default_dir(char *out, size_t size)
{
    const char *home = getenv("HOME");
    int n;

    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] != '/')
        CLI_TOKENS_FAIL(ERR_NOT_FOUND, "no home directory (HOME) to keep the API tokens in");
    n = snprintf(out, size, "%s%s.config/vmseal", home,
                 home[strlen(home) - 1] == '/' ? "" : "/");
    if (n < 0 || (size_t)n >= size)
        CLI_TOKENS_FAIL(ERR_TOO_LARGE, "the home directory's path is too long");
    return OK_RESULT;
}

static vs_result cli_tokens_file(const char *dir, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", dir, CLI_TOKENS_FILE);
    if (n < 0 || (size_t)n >= size)
        CLI_TOKENS_FAIL(ERR_TOO_LARGE, "the token store's path is too long");
    return OK_RESULT;
}

/* Only its owner may have written what decides where tokens go. */
static vs_result cli_tokens_check_owner(const struct stat *st, const char *path, bool is_dir)
{
    if (st->st_uid != geteuid())
        CLI_TOKENS_FAIL(ERR_PERM, "%s belongs to another user (uid %u): vmseal does not use it",
                        path, (unsigned)st->st_uid);
    /* The file: nobody else reads the tokens. The directory: nobody else
     * can replace the file in it. */
    mode_t forbidden = is_dir ? (S_IWGRP | S_IWOTH) : (S_IRWXG | S_IRWXO);
    if (st->st_mode & forbidden)
        CLI_TOKENS_FAIL(ERR_PERM, "%s is open to others (mode %04o): chmod %s %s", path,
                        (unsigned)(st->st_mode & 07777), is_dir ? "700" : "600", path);
    return OK_RESULT;
}

/* --- entries --- */

static bool cli_tokens_is_string(const json_t *v, bool nullable)
{
    return json_is_string(v) || (nullable && (v == NULL || json_is_null(v)));
}

/* Checks one entry; the detail says what is wrong with it. */
static vs_result cli_tokens_check_entry(const char *server, const json_t *entry)
{
    static const char *const known[] = {"token", "id", "user", "expires", "ca"};
    const char *key;
    json_t *v;
    char url[CLI_SERVER_URL_MAX];

    if (!is_ok(cli_server_url_parse(server, url, sizeof(url))) || strcmp(url, server) != 0)
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "'%.80s' is not a server URL", server);
    if (!json_is_object(entry))
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the entry of %s is not an object", server);
    json_object_foreach((json_t *)entry, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            found = found || strcmp(key, known[i]) == 0;
        if (!found)
            CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the entry of %s has an unknown field '%.40s'",
                            server, key);
    }
    v = json_object_get(entry, "token");
    if (!json_is_string(v) ||
        !cli_token_is_valid((const uint8_t *)json_string_value(v), json_string_length(v)))
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the token of %s is missing or malformed", server);
    if (!cli_tokens_is_string(json_object_get(entry, "user"), false) ||
        !cli_tokens_is_string(json_object_get(entry, "expires"), false))
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the entry of %s needs \"user\" and \"expires\" strings",
                        server);
    if (!cli_tokens_is_string(json_object_get(entry, "id"), true))
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the token id of %s is not a string", server);
    v = json_object_get(entry, "ca");
    if (!cli_tokens_is_string(v, true) || (json_is_string(v) && json_string_value(v)[0] != '/'))
        CLI_TOKENS_FAIL(ERR_CONFIG_VALUE, "the CA of %s is not an absolute path", server);
    return OK_RESULT;
}

json_t *cli_tokens_entry_new(const char *token, const char *id, const char *user,
                             const char *expires, const char *ca)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "token", token, "user", user, "expires", expires);
    if (e == NULL)
        return NULL;
    if ((id != NULL && json_object_set_new(e, "id", json_string(id)) != 0) ||
        json_object_set_new(e, "ca", ca != NULL ? json_string(ca) : json_null()) != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

vs_result cli_tokens_get(const json_t *store, const char *server, struct cli_token_entry *e)
{
    const json_t *entry = json_object_get(store, server);

    *e = (struct cli_token_entry){0};
    if (entry == NULL)
        CLI_TOKENS_FAIL(ERR_NOT_FOUND, "no token for %s", server);
    GUARD(cli_tokens_check_entry(server, entry));
    e->token = json_string_value(json_object_get(entry, "token"));
    e->user = json_string_value(json_object_get(entry, "user"));
    e->expires = json_string_value(json_object_get(entry, "expires"));
    e->id = json_string_value(json_object_get(entry, "id")); /* NULL when absent or null */
    e->ca = json_string_value(json_object_get(entry, "ca"));
    return OK_RESULT;
}

/* --- reading --- */

/* Reads the open file fd (st its stat) into secret memory and parses it. */
static vs_result cli_tokens_parse_fd(int fd, const struct stat *st, const char *path,
                                     json_t **store)
{
    vs_result rc = OK_RESULT;
    struct buf raw = {0};
    uint8_t *p;
    size_t size = (size_t)st->st_size, got = 0;
    json_t *v = NULL, *entry;
    json_error_t error;
    const char *server;

    if (st->st_size < 0 || size > CLI_TOKENS_LIMIT)
        CLI_TOKENS_FAIL(ERR_TOO_LARGE, "%s is larger than %zu bytes", path, CLI_TOKENS_LIMIT);
    GUARD(buf_alloc_secret(&raw, size + 1, size + 1));
    GUARD_OUT(buf_reserve(&raw, size, &p));
    while (got < size) {
        ssize_t n = read(fd, p + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? cli_tokens_sys_fail(errno, "reading", path) : RAISE(ERR_IO);
            if (n == 0)
                err_detail("%s shrank while it was read", path);
            goto out;
        }
        got += (size_t)n;
    }
    v = json_loadb((const char *)buf_data(&raw), buf_len(&raw), JSON_REJECT_DUPLICATES, &error);
    if (v == NULL || !json_is_object(v)) {
        rc = RAISE(ERR_CONFIG_VALUE);
        goto out;
    }
    json_object_foreach(v, server, entry)
    {
        rc = cli_tokens_check_entry(server, entry);
        if (!is_ok(rc))
            goto out;
    }
    *store = v;
    v = NULL;
out:
    if (rc.code == ERR_CONFIG_VALUE) {
        char why[sizeof(err_last()->detail)];
        snprintf(why, sizeof(why), "%s", err_last()->detail[0] ? err_last()->detail : "not a JSON object");
        err_detail("%s is malformed: %s (remove it and log in again)", path, why);
    }
    json_decref(v);
    buf_free(&raw);
    return rc;
}

vs_result cli_tokens_load(const char *dir, json_t **store)
{
    vs_result rc = OK_RESULT;
    char path[PATH_MAX];
    struct stat st;
    int fd;

    *store = NULL;
    GUARD(cli_tokens_file(dir, path, sizeof(path)));
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) {
        *store = json_object();
        ENSURE(*store != NULL, ERR_NOMEM);
        return OK_RESULT;
    }
    if (fd < 0) {
        if (errno == ELOOP)
            CLI_TOKENS_FAIL(ERR_PERM, "%s is a symbolic link: vmseal does not follow it", path);
        return cli_tokens_sys_fail(errno, "opening", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = cli_tokens_sys_fail(errno, "stat of", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = RAISE(ERR_CONFIG_VALUE);
        err_detail("%s is not a regular file", path);
        goto out;
    }
    GUARD_OUT(cli_tokens_check_owner(&st, path, false));
    if (stat(dir, &st) != 0) {
        rc = cli_tokens_sys_fail(errno, "stat of", dir);
        goto out;
    }
    GUARD_OUT(cli_tokens_check_owner(&st, dir, true));
    if (fstat(fd, &st) != 0) {
        rc = cli_tokens_sys_fail(errno, "stat of", path);
        goto out;
    }
    GUARD_OUT(cli_tokens_parse_fd(fd, &st, path, store));
out:
    close(fd);
    return rc;
}

/* --- writing --- */

/* Creates dir (0700) and its parent (0700, as XDG asks of ~/.config) when
 * missing; tightens a directory of ours that others may write to. */
static vs_result cli_tokens_make_dir(const char *dir)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(dir, '/');
    struct stat st;

    if (slash != NULL && slash != dir && (size_t)(slash - dir) < sizeof(parent)) {
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = '\0';
        if (stat(parent, &st) != 0 && errno == ENOENT)
            GUARD(file_mkdir(parent, 0700));
    }
    GUARD(file_mkdir(dir, 0700));
    if (lstat(dir, &st) != 0)
        return cli_tokens_sys_fail(errno, "stat of", dir);
    if (!S_ISDIR(st.st_mode))
        CLI_TOKENS_FAIL(ERR_PERM, "%s is not a directory (a symbolic link?)", dir);
    if (st.st_uid != geteuid())
        return cli_tokens_check_owner(&st, dir, true);
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
        return cli_tokens_sys_fail(errno, "chmod 700", dir);
    return OK_RESULT;
}

vs_result cli_tokens_update(const char *dir, const char *server, const json_t *entry,
                            bool *removed)
{
    vs_result rc = OK_RESULT;
    char path[PATH_MAX];
    json_t *store = NULL;
    struct buf text = {0};
    uint8_t *p;
    size_t n;
    int dfd = -1;

    if (removed != NULL)
        *removed = false;
    if (entry != NULL)
        GUARD(cli_tokens_check_entry(server, entry));
    GUARD(cli_tokens_file(dir, path, sizeof(path)));
    GUARD(cli_tokens_make_dir(dir));
    /* One writer at a time: the lock is on the directory, which the
     * atomic rename never replaces. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return cli_tokens_sys_fail(errno, "opening", dir);
    while (flock(dfd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            rc = cli_tokens_sys_fail(errno, "locking", dir);
            goto out;
        }
    }
    GUARD_OUT(cli_tokens_load(dir, &store));
    if (removed != NULL)
        *removed = json_object_get(store, server) != NULL;
    if (entry != NULL)
        ENSURE_OUT(json_object_set(store, server, (json_t *)entry) == 0, ERR_NOMEM);
    else
        (void)json_object_del(store, server);

    /* Encoded straight into secret memory: jansson keeps no copy. */
    n = json_dumpb(store, NULL, 0, JSON_INDENT(2) | JSON_SORT_KEYS);
    ENSURE_OUT(n > 0, ERR_NOMEM);
    GUARD_OUT(buf_alloc_secret(&text, n + 1, n + 1));
    GUARD_OUT(buf_reserve(&text, n, &p));
    ENSURE_OUT(json_dumpb(store, (char *)p, n, JSON_INDENT(2) | JSON_SORT_KEYS) == n,
               ERR_INTERNAL);
    GUARD_OUT(buf_write_u8(&text, '\n'));
    GUARD_OUT(file_write_atomic(path, buf_data(&text), buf_len(&text), 0600));
out:
    if (dfd >= 0)
        close(dfd); /* releases the lock */
    buf_free(&text);
    json_decref(store);
    return rc;
}

/* --- expiry --- */

bool cli_tokens_expired(const char *expires, time_t now)
{
    struct tm tm = {0};
    const char *rest = strptime(expires, "%Y-%m-%dT%H:%M:%S", &tm);
    time_t t;

    if (rest == NULL)
        return false;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return false;
    t = timegm(&tm);
    return t != (time_t)-1 && t <= now;
}
