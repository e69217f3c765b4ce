/*
 * kmip_client_tool - drives src/kmip/client.c through a key provider's
 * whole flow, for tests/integration/test_kmip_client.py:
 *
 *   kmip_client_tool --ca F --cert F --key F [--version 1.4|2.0] [--keep]
 *                    --server HOST:PORT [--server HOST:PORT]...
 *
 * Create AES-256, Add Attribute x-Vendor, State (Pre-Active), Activate,
 * State (Active), Get (32 bytes), Destroy refused while Active, Revoke
 * (key compromise), Destroy, Get refused. Prints one "key=value" line per
 * step; the key itself is never printed, only its SHA-256 as a check value.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "kmip/client.h"
#include "kmip/kmip_defs.h"

static struct kmip_client *client;
static struct buf key;

/* Reports a failed step; frees everything, so that sanitizer runs judge
 * the library, not this tool's shortcuts. */
static int fail(const char *step)
{
    char msg[512];
    printf("failed=%s\nerror=%s\n", step, err_format(msg, sizeof(msg)));
    fflush(stdout);
    kmip_client_free(&client);
    buf_free(&key);
    return 1;
}

int main(int argc, char **argv)
{
    struct kmip_client_config cfg = {0};
    bool keep = false; /* --keep: stop after Get, leaving the key Active */
    struct kmip_client **cp = &client, *c;
    char uid[KMIP_CLIENT_UID_MAX];
    uint32_t state;
    uint8_t digest[32];
    char hex[65];

    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
            i--;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: see the top of kmip_client_tool.c\n");
            return 2;
        }
        if (strcmp(argv[i], "--server") == 0 && cfg.server_count < KMIP_CLIENT_MAX_SERVERS)
            cfg.servers[cfg.server_count++] = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0)
            cfg.ca_file = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cfg.cert_file = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            cfg.key_file = argv[i + 1];
        else if (strcmp(argv[i], "--name") == 0)
            cfg.server_name = argv[i + 1];
        else if (strcmp(argv[i], "--version") == 0)
            cfg.version = strcmp(argv[i + 1], "2.0") == 0 ? (struct kmip_version){2, 0}
                                                          : (struct kmip_version){1, 4};
        else {
            fprintf(stderr, "usage: see the top of kmip_client_tool.c\n");
            return 2;
        }
    }
    cfg.timeout_ms = 5000;
    if (!is_ok(kmip_client_new(&cfg, cp)))
        return fail("setup");
    c = client;
    if (!is_ok(kmip_client_create_aes(c, 256, uid)))
        return fail("create");
    printf("uid=%s\n", uid);
    if (!is_ok(kmip_client_add_text(c, uid, "x-Vendor", "vmseal tests")))
        return fail("add_attribute");
    if (!is_ok(kmip_client_get_state(c, uid, &state)))
        return fail("state");
    printf("state_created=%s\n", kmip_state_name(state));
    if (!is_ok(kmip_client_activate(c, uid)))
        return fail("activate");
    if (!is_ok(kmip_client_get_state(c, uid, &state)))
        return fail("state");
    printf("state_activated=%s\n", kmip_state_name(state));
    if (!is_ok(buf_alloc_secret(&key, 0, 64)) || !is_ok(kmip_client_get_key(c, uid, &key)))
        return fail("get");
    if (!is_ok(crypto_sha256(buf_data(&key), buf_len(&key), digest)) ||
        !is_ok(hex_encode(digest, sizeof(digest), hex, sizeof(hex))))
        return fail("digest");
    printf("key_bytes=%zu\nkey_sha256=%s\n", buf_len(&key), hex);
    buf_free(&key);
    if (keep) {
        kmip_client_free(&client);
        printf("done=1\n");
        return 0;
    }
    vs_result rc = kmip_client_destroy(c, uid);
    printf("destroy_active=%s\n", rc.code == ERR_KMIP_FAILED ? "refused" : "allowed");
    if (!is_ok(kmip_client_revoke(c, uid, KMIP_REVOCATION_KEY_COMPROMISE)))
        return fail("revoke");
    if (!is_ok(kmip_client_destroy(c, uid)))
        return fail("destroy");
    if (!is_ok(buf_alloc_secret(&key, 0, 64)))
        return fail("memory");
    rc = kmip_client_get_key(c, uid, &key);
    printf("get_destroyed=%s\n", rc.code == ERR_KMIP_FAILED ? "refused" : "allowed");
    buf_free(&key);
    struct kmip_version newest;
    for (size_t i = 0; i < cfg.server_count; i++) {
        rc = kmip_client_probe(c, i, &newest);
        if (is_ok(rc))
            printf("probe%zu=%d.%d\n", i, newest.major, newest.minor);
        else
            printf("probe%zu=down\n", i);
    }
    kmip_client_free(&client);
    printf("done=1\n");
    return 0;
}
