/*
 * kmsconf.c - loading kms.conf. See kmsconf.h.
 */
#include "kms/kmsconf.h"

#include <stdio.h>
#include <string.h>

#include "core/config.h"

const char kms_config_default_text[] =
    "# vmseal-kms configuration. Every option is shown with its default.\n"
    "# Relative paths are relative to the data directory.\n"
    "\n"
    "[server]\n"
    "# Address and port to serve KMIP on (5696 is KMIP's registered port).\n"
    "# Use 0.0.0.0:5696 or [::]:5696 to accept connections from vCenter and ESXi.\n"
    "listen = 127.0.0.1:5696\n"
    "# Threads that run requests (most of their time is spent waiting for fsync).\n"
    "workers = 32\n"
    "# Threads that own the connections: TLS handshakes, framing, and reads of one\n"
    "# object (Get, Get Attributes), answered without a worker. 0 = one per CPU.\n"
    "network_threads = 0\n"
    "# Largest request accepted; larger ones get Invalid Message and a closed connection.\n"
    "max_message_size = 1M\n"
    "# A connection idle this long is closed; a TLS handshake must finish within\n"
    "# handshake_timeout.\n"
    "idle_timeout = 120s\n"
    "handshake_timeout = 10s\n"
    "max_connections = 4096\n"
    "# After answering a request, a network thread keeps polling its connections\n"
    "# this long before it sleeps, so that a client's next request does not have\n"
    "# to wake it (a wake-up costs more than a Get on a virtual machine). Idle\n"
    "# polls yield the CPU to other work. 0 = sleep at once. In microseconds.\n"
    "busy_poll_us = 50\n"
    "\n"
    "[tls]\n"
    "# The server's certificate and key, and the CA that client certificates must\n"
    "# chain to (mutual TLS: a client without a trusted certificate cannot connect).\n"
    "certificate = pki/server.crt\n"
    "key = pki/server.key\n"
    "client_ca = pki/ca.crt\n"
    "# Optionally, only these client certificates (SHA-256 fingerprints, hex,\n"
    "# comma separated) are accepted, even among those the CA signed.\n"
    "pinned_clients =\n"
    "# Refuse TLS 1.2 (vCenter 7 speaks TLS 1.2; keep this off for it).\n"
    "tls13_only = false\n"
    "\n"
    "[store]\n"
    "path = kms.db\n"
    "\n"
    "[root_key]\n"
    "# The key every stored key is sealed under. Back it up apart from the store:\n"
    "# without it the store is unreadable; destroying it crypto-shreds every key.\n"
    "path = root.key\n"
    "\n"
    "[audit]\n"
    "# One JSON line per request (who, what, result; never key material).\n"
    "path = audit.log\n"
    "\n"
    "[access]\n"
    "# Identities (client certificate CN) that see and manage every object.\n"
    "admins =\n"
    "\n"
    "[groups]\n"
    "# Identities in one group share their keys: vCenter and its ESXi hosts must.\n"
    "# name = identity, identity, ...   e.g.\n"
    "# vsphere = vcenter.example.com, esxi-01.example.com, esxi-02.example.com\n"
    "\n"
    "[log]\n"
    "# debug, info, warn, error\n"
    "level = info\n";

static const struct config_key kms_config_keys[] = {
    {"server", "listen"},
    {"server", "workers"},
    {"server", "network_threads"},
    {"server", "max_message_size"},
    {"server", "idle_timeout"},
    {"server", "handshake_timeout"},
    {"server", "max_connections"},
    {"server", "busy_poll_us"},
    {"tls", "certificate"},
    {"tls", "key"},
    {"tls", "client_ca"},
    {"tls", "pinned_clients"},
    {"tls", "tls13_only"},
    {"store", "path"},
    {"root_key", "path"},
    {"audit", "path"},
    {"access", "admins"},
    {"log", "level"},
    {NULL, NULL},
};

/* Resolves a configured path against the data directory. */
static RESULT kms_config_path(const struct config *c, const char *section, const char *key,
                              const char *def, const char *dir, char out[PATH_MAX])
{
    const char *v;
    int n;

    GUARD(config_get_str(c, section, key, def, &v));
    n = v[0] == '/' ? snprintf(out, PATH_MAX, "%s", v) : snprintf(out, PATH_MAX, "%s/%s", dir, v);
    ENSURE(n > 0 && n < PATH_MAX, ERR_TOO_LARGE);
    return OK_RESULT;
}

/* Splits "a, b, c" into trimmed items. */
static RESULT kms_config_list(const char *s, char (*out)[KMS_OWNER_MAX], size_t max_items,
                              size_t item_size, size_t *count)
{
    *count = 0;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        ENSURE(*count < max_items, ERR_TOO_LARGE);
        ENSURE(n < item_size, ERR_TOO_LARGE);
        memcpy((char *)out + *count * KMS_OWNER_MAX, s, n);
        ((char *)out + *count * KMS_OWNER_MAX)[n] = '\0';
        (*count)++;
        s += n;
    }
    return OK_RESULT;
}

vs_result kms_config_load(const char *data_dir, struct kms_config *cfg)
{
    vs_result rc = OK_RESULT;
    struct config *c = NULL;
    char path[PATH_MAX];
    const char *s;
    int64_t i;

    memset(cfg, 0, sizeof(*cfg));
    ENSURE(strlen(data_dir) < sizeof(cfg->data_dir), ERR_TOO_LARGE);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data_dir);
    ENSURE(snprintf(path, sizeof(path), "%s/kms.conf", data_dir) < (int)sizeof(path),
           ERR_TOO_LARGE);
    rc = config_load(path, &c);
    if (rc.code == ERR_NOT_FOUND)
        rc = config_parse(path, "", &c); /* no file: all defaults */
    GUARD(rc);
    /* Groups are free-form keys in [groups]; everything else must be known. */
    GUARD_OUT(config_check_keys_except(c, kms_config_keys, "groups"));

    GUARD_OUT(config_get_str(c, "server", "listen", "127.0.0.1:5696", &s));
    ENSURE_OUT(strlen(s) < sizeof(cfg->listen), ERR_TOO_LARGE);
    snprintf(cfg->listen, sizeof(cfg->listen), "%s", s);
    GUARD_OUT(config_get_int(c, "server", "workers", 32, 1, 256, &i));
    cfg->workers = (unsigned)i;
    GUARD_OUT(config_get_int(c, "server", "network_threads", 0, 0, 64, &i));
    cfg->network_threads = (unsigned)i;
    GUARD_OUT(config_get_size(c, "server", "max_message_size", 1 << 20, 4096, 64 << 20,
                              &cfg->max_message_size));
    GUARD_OUT(config_get_duration_ms(c, "server", "idle_timeout", 120000, 1000, 86400000,
                                     &cfg->idle_timeout_ms));
    GUARD_OUT(config_get_duration_ms(c, "server", "handshake_timeout", 10000, 100, 600000,
                                     &cfg->handshake_timeout_ms));
    GUARD_OUT(config_get_int(c, "server", "max_connections", 4096, 1, 1000000, &i));
    cfg->max_connections = (unsigned)i;
    GUARD_OUT(config_get_int(c, "server", "busy_poll_us", 50, 0, 10000, &i));
    cfg->busy_poll_us = (uint64_t)i;

    GUARD_OUT(
        kms_config_path(c, "tls", "certificate", "pki/server.crt", data_dir, cfg->certificate));
    GUARD_OUT(kms_config_path(c, "tls", "key", "pki/server.key", data_dir, cfg->key));
    GUARD_OUT(kms_config_path(c, "tls", "client_ca", "pki/ca.crt", data_dir, cfg->client_ca));
    GUARD_OUT(config_get_str(c, "tls", "pinned_clients", "", &s));
    {
        char items[KMS_CONF_MAX_LIST][KMS_OWNER_MAX];
        size_t n;
        GUARD_OUT(kms_config_list(s, items, KMS_CONF_MAX_LIST, 65, &n));
        for (size_t k = 0; k < n; k++) {
            size_t len = strlen(items[k]);
            bool hex = len == 64;
            for (size_t j = 0; hex && j < len; j++)
                hex = (items[k][j] >= '0' && items[k][j] <= '9') ||
                      (items[k][j] >= 'a' && items[k][j] <= 'f');
            if (!hex) {
                rc = RAISE(ERR_CONFIG_VALUE);
                err_detail("%s: [tls] pinned_clients: \"%s\" is not a lower-case SHA-256 "
                           "fingerprint (64 hex digits)",
                           path, items[k]);
                goto out;
            }
            memcpy(cfg->pinned[k], items[k], 65); /* 64 hex digits and the NUL */
        }
        cfg->pinned_count = n;
    }
    GUARD_OUT(config_get_bool(c, "tls", "tls13_only", false, &cfg->tls13_only));
    GUARD_OUT(kms_config_path(c, "store", "path", "kms.db", data_dir, cfg->store_path));
    GUARD_OUT(kms_config_path(c, "root_key", "path", "root.key", data_dir, cfg->root_key_path));
    GUARD_OUT(kms_config_path(c, "audit", "path", "audit.log", data_dir, cfg->audit_path));
    GUARD_OUT(config_get_str(c, "access", "admins", "", &s));
    GUARD_OUT(kms_config_list(s, cfg->admins, KMS_CONF_MAX_LIST, KMS_OWNER_MAX, &cfg->admin_count));
    GUARD_OUT(config_get_str(c, "log", "level", "info", &s));
    ENSURE_OUT(strlen(s) < sizeof(cfg->log_level), ERR_CONFIG_VALUE);
    snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", s);

    /* [groups] name = members */
    for (size_t k = 0; k < config_count(c); k++) {
        const char *section, *key, *value;
        config_entry(c, k, &section, &key, &value);
        if (strcmp(section, "groups") != 0)
            continue;
        ENSURE_OUT(cfg->group_count < sizeof(cfg->groups) / sizeof(cfg->groups[0]), ERR_TOO_LARGE);
        struct kms_group *g = &cfg->groups[cfg->group_count++];
        ENSURE_OUT(strlen(key) < sizeof(g->name), ERR_TOO_LARGE);
        snprintf(g->name, sizeof(g->name), "%s", key);
        GUARD_OUT(
            kms_config_list(value, g->members, KMS_CONF_MAX_LIST, KMS_OWNER_MAX, &g->member_count));
    }
out:
    config_free(&c);
    return rc;
}

void kms_config_principal(const struct kms_config *cfg, const char *identity,
                          struct kms_principal *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->identity, sizeof(p->identity), "%s", identity);
    snprintf(p->owner, sizeof(p->owner), "%s", identity);
    p->owners[p->owner_count++] = p->identity;
    for (size_t g = 0; g < cfg->group_count && p->owner_count < KMS_MAX_GROUPS + 1; g++) {
        for (size_t m = 0; m < cfg->groups[g].member_count; m++) {
            if (strcmp(cfg->groups[g].members[m], identity) != 0)
                continue;
            /* Group owners are written "group:NAME" so that no certificate
             * identity can be mistaken for a group. The first group owns
             * what the identity creates: vCenter's keys belong to the group
             * its ESXi hosts are in. */
            char *owner = p->groups[p->owner_count - 1];
            snprintf(owner, KMS_OWNER_MAX, "group:%.*s", KMS_OWNER_MAX - 8, cfg->groups[g].name);
            if (p->owner_count == 1)
                snprintf(p->owner, sizeof(p->owner), "%s", owner);
            p->owners[p->owner_count++] = owner;
            break;
        }
    }
    for (size_t a = 0; a < cfg->admin_count; a++)
        if (strcmp(cfg->admins[a], identity) == 0)
            p->admin = true;
}
