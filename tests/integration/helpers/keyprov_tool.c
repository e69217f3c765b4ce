/*
 * keyprov_tool - drives src/keyprov in one process, step by step, for
 * tests/integration/test_keyprov_*.py:
 *
 *   keyprov_tool --data-dir DIR STEP [';' STEP]...
 *
 * Steps (PROVIDER "-" means the default provider):
 *
 *   add-standard NAME CA_FILE CERT_FILE KEY_FILE SERVER...
 *   add-native NAME
 *   backup NAME PASSPHRASE_FILE OUT_FILE
 *   restore FILE PASSPHRASE_FILE [NAME]
 *   new-kek PROVIDER VM_NAME VM_UUID        -> key=ID
 *   fetch PROVIDER KEY
 *   cached PROVIDER KEY                     -> cached=0|1
 *   wrap PROVIDER KEY HEX                   -> wrapped=HEX
 *   unwrap PROVIDER KEY HEX                 -> plain_sha256=HEX
 *   destroy PROVIDER KEY
 *   probe NAME SERVER_INDEX
 *   info NAME                               -> type=, servers=, default=, backed_up=
 *   pause                                   prints "N.paused=1", waits for a line on stdin
 *
 * For step N it prints "N.step=NAME", "N.rc=ERR_..." and, on failure,
 * "N.error=<message: detail>", then its results, one "N.key=value" per
 * line, flushed. A failed step does not stop the next ones: the test
 * decides what a refusal means. Unwrapped bytes are never printed, only
 * their SHA-256. Exit status 0 once every step ran, 2 for bad usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"
#include "keyprov/keyprov.h"

#define TOOL_FILE_MAX (1u << 20)

static int step_no;

static void out(const char *key, const char *value)
{
    printf("%d.%s=%s\n", step_no, key, value);
}

static vs_result read_text(const char *path, struct buf *b, bool secret)
{
    GUARD(secret ? buf_alloc_secret(b, 0, TOOL_FILE_MAX + 1) : buf_alloc(b, 0, TOOL_FILE_MAX + 1));
    GUARD(file_read_all(path, TOOL_FILE_MAX, b));
    return buf_write_u8(b, 0);
}

static void make_ref(struct keyprov_ref *ref, const char *provider, const char *key)
{
    memset(ref, 0, sizeof(*ref));
    snprintf(ref->provider, sizeof(ref->provider), "%s", provider);
    snprintf(ref->key_id, sizeof(ref->key_id), "%s", key);
}

static const char *provider_arg(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

static vs_result step_add_standard(struct keyprov *kp, int argc, char **argv)
{
    vs_result rc = OK_RESULT;
    struct buf ca = {0}, cert = {0}, key = {0};

    ENSURE(argc >= 6 && argc - 5 <= KEYPROV_MAX_SERVERS, ERR_INVALID_ARG);
    GUARD_OUT(read_text(argv[2], &ca, false));
    GUARD_OUT(read_text(argv[3], &cert, false));
    GUARD_OUT(read_text(argv[4], &key, true));
    GUARD_OUT(keyprov_add_standard(kp, argv[1], (const char *const *)argv + 5, (size_t)argc - 5,
                                   (const char *)buf_data(&ca), (const char *)buf_data(&cert),
                                   (const char *)buf_data(&key)));
out:
    buf_free(&key);
    buf_free(&cert);
    buf_free(&ca);
    return rc;
}

static vs_result step_add_native(struct keyprov *kp, int argc, char **argv)
{
    ENSURE(argc == 2, ERR_INVALID_ARG);
    return keyprov_add_native(kp, argv[1]);
}

static vs_result step_backup(struct keyprov *kp, int argc, char **argv)
{
    vs_result rc = OK_RESULT;
    struct buf pass = {0}, file = {0};

    ENSURE(argc == 4, ERR_INVALID_ARG);
    GUARD_OUT(read_text(argv[2], &pass, true));
    GUARD_OUT(buf_alloc(&file, 0, 4096));
    GUARD_OUT(keyprov_backup(kp, argv[1], buf_data(&pass), buf_len(&pass) - 1, &file));
    GUARD_OUT(file_write_atomic(argv[3], buf_data(&file), buf_len(&file), 0600));
out:
    buf_free(&file);
    buf_free(&pass);
    return rc;
}

static vs_result step_restore(struct keyprov *kp, int argc, char **argv)
{
    vs_result rc = OK_RESULT;
    struct buf pass = {0}, file = {0};
    char name[KEYPROV_NAME_MAX];

    ENSURE(argc == 3 || argc == 4, ERR_INVALID_ARG);
    GUARD_OUT(read_text(argv[2], &pass, true));
    GUARD_OUT(buf_alloc(&file, 0, TOOL_FILE_MAX));
    GUARD_OUT(file_read_all(argv[1], TOOL_FILE_MAX, &file));
    GUARD_OUT(keyprov_restore(kp, buf_data(&file), buf_len(&file), buf_data(&pass),
                              buf_len(&pass) - 1, argc == 4 ? argv[3] : NULL, name));
    out("name", name);
out:
    buf_free(&file);
    buf_free(&pass);
    return rc;
}

static vs_result step_new_kek(struct keyprov *kp, int argc, char **argv)
{
    struct keyprov_ref ref;

    ENSURE(argc == 4, ERR_INVALID_ARG);
    const struct keyprov_kek_purpose purpose = {argv[2], argv[3]};
    GUARD(keyprov_new_kek(kp, provider_arg(argv[1]), &purpose, &ref));
    out("provider", ref.provider);
    out("key", ref.key_id);
    return OK_RESULT;
}

static vs_result step_fetch(struct keyprov *kp, int argc, char **argv)
{
    struct keyprov_ref ref;

    ENSURE(argc == 3, ERR_INVALID_ARG);
    make_ref(&ref, argv[1], argv[2]);
    return keyprov_fetch(kp, &ref);
}

static vs_result step_cached(struct keyprov *kp, int argc, char **argv)
{
    struct keyprov_ref ref;

    ENSURE(argc == 3, ERR_INVALID_ARG);
    make_ref(&ref, argv[1], argv[2]);
    out("cached", keyprov_is_cached(kp, &ref) ? "1" : "0");
    return OK_RESULT;
}

static vs_result step_wrap(struct keyprov *kp, int argc, char **argv)
{
    vs_result rc = OK_RESULT;
    struct keyprov_ref ref;
    struct buf plain = {0}, wrapped = {0};
    char hex[2 * 1024 + 1];

    ENSURE(argc == 4, ERR_INVALID_ARG);
    make_ref(&ref, argv[1], argv[2]);
    GUARD_OUT(buf_alloc_secret(&plain, 0, 1024));
    GUARD_OUT(buf_write_hex(&plain, argv[3]));
    GUARD_OUT(buf_alloc(&wrapped, 0, 1024));
    GUARD_OUT(keyprov_wrap(kp, &ref, buf_data(&plain), buf_len(&plain), &wrapped));
    GUARD_OUT(hex_encode(buf_data(&wrapped), buf_len(&wrapped), hex, sizeof(hex)));
    out("wrapped", hex);
out:
    buf_free(&wrapped);
    buf_free(&plain);
    return rc;
}

static vs_result step_unwrap(struct keyprov *kp, int argc, char **argv)
{
    vs_result rc = OK_RESULT;
    struct keyprov_ref ref;
    struct buf wrapped = {0};
    void *plain = NULL;
    size_t len;
    uint8_t digest[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1];

    ENSURE(argc == 4, ERR_INVALID_ARG);
    make_ref(&ref, argv[1], argv[2]);
    GUARD_OUT(buf_alloc(&wrapped, 0, 1024));
    GUARD_OUT(buf_write_hex(&wrapped, argv[3]));
    GUARD_OUT(secret_alloc(1024, &plain));
    GUARD_OUT(keyprov_unwrap(kp, &ref, buf_data(&wrapped), buf_len(&wrapped), plain, 1024, &len));
    GUARD_OUT(crypto_sha256(plain, len, digest));
    GUARD_OUT(hex_encode(digest, sizeof(digest), hex, sizeof(hex)));
    out("plain_sha256", hex);
out:
    secret_free(&plain);
    buf_free(&wrapped);
    return rc;
}

static vs_result step_destroy(struct keyprov *kp, int argc, char **argv)
{
    struct keyprov_ref ref;

    ENSURE(argc == 3, ERR_INVALID_ARG);
    make_ref(&ref, argv[1], argv[2]);
    return keyprov_destroy_key(kp, &ref);
}

static vs_result step_probe(struct keyprov *kp, int argc, char **argv)
{
    char *end;
    unsigned long i;

    ENSURE(argc == 3, ERR_INVALID_ARG);
    i = strtoul(argv[2], &end, 10);
    ENSURE(*end == '\0' && end != argv[2], ERR_INVALID_ARG);
    return keyprov_probe(kp, argv[1], i);
}

static vs_result step_info(struct keyprov *kp, int argc, char **argv)
{
    struct keyprov_info info;
    char servers[KEYPROV_MAX_SERVERS * 257] = "";

    ENSURE(argc == 2, ERR_INVALID_ARG);
    GUARD(keyprov_get_info(kp, argv[1], &info));
    for (size_t i = 0; i < info.server_count; i++) {
        size_t n = strlen(servers);
        snprintf(servers + n, sizeof(servers) - n, "%s%s", i ? "," : "", info.servers[i]);
    }
    out("type", info.type == KEYPROV_NATIVE ? "native" : "standard");
    out("servers", servers);
    out("default", info.is_default ? "1" : "0");
    out("backed_up", info.backed_up ? "1" : "0");
    return OK_RESULT;
}

static vs_result step_pause(struct keyprov *kp, int argc, char **argv)
{
    char line[16];

    (void)kp, (void)argv;
    ENSURE(argc == 1, ERR_INVALID_ARG);
    out("paused", "1");
    fflush(stdout);
    ENSURE(fgets(line, sizeof(line), stdin) != NULL, ERR_IO);
    return OK_RESULT;
}

static const struct {
    const char *name;
    vs_result (*fn)(struct keyprov *kp, int argc, char **argv);
} steps[] = {
    {"add-standard", step_add_standard},
    {"add-native", step_add_native},
    {"backup", step_backup},
    {"restore", step_restore},
    {"new-kek", step_new_kek},
    {"fetch", step_fetch},
    {"cached", step_cached},
    {"wrap", step_wrap},
    {"unwrap", step_unwrap},
    {"destroy", step_destroy},
    {"probe", step_probe},
    {"info", step_info},
    {"pause", step_pause},
};

int main(int argc, char **argv)
{
    struct keyprov *kp = NULL;
    char msg[512];

    if (argc < 3 || strcmp(argv[1], "--data-dir") != 0) {
        fprintf(stderr, "usage: see the top of keyprov_tool.c\n");
        return 2;
    }
    if (!is_ok(keyprov_open(argv[2], &kp))) {
        printf("open.rc=%s\nopen.error=%s\n", err_name(err_last()->code),
               err_format(msg, sizeof(msg)));
        return 0;
    }
    for (int i = 3; i < argc; step_no++) {
        int end = i;
        while (end < argc && strcmp(argv[end], ";") != 0)
            end++;
        size_t k = 0;
        while (k < sizeof(steps) / sizeof(steps[0]) && strcmp(steps[k].name, argv[i]) != 0)
            k++;
        if (k == sizeof(steps) / sizeof(steps[0])) {
            fprintf(stderr, "keyprov_tool: unknown step %s\n", argv[i]);
            keyprov_close(&kp);
            return 2;
        }
        out("step", argv[i]);
        err_clear();
        vs_result rc = steps[k].fn(kp, end - i, argv + i);
        out("rc", err_name(rc.code));
        if (!is_ok(rc))
            out("error", err_format(msg, sizeof(msg)));
        fflush(stdout);
        i = end + 1;
    }
    keyprov_close(&kp);
    return 0;
}
