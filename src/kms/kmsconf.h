/*
 * kmsconf.h - vmseal-kms's configuration: DIR/kms.conf, INI.
 *
 * Every option has a default, so an empty file is a working configuration;
 * `vmseal-kms init` writes one with every option present and explained.
 * Relative paths are relative to the data directory.
 */
#ifndef VMSEAL_KMS_KMSCONF_H
#define VMSEAL_KMS_KMSCONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/result.h"
#include "kms/ops.h"

#define KMS_CONF_MAX_LIST 32

struct kms_group {
    char name[KMS_OWNER_MAX];
    char members[KMS_CONF_MAX_LIST][KMS_OWNER_MAX];
    size_t member_count;
};

struct kms_config {
    char data_dir[PATH_MAX];
    /* [server] */
    char listen[256];
    unsigned workers;
    unsigned network_threads; /* 0: one per online CPU */
    uint64_t max_message_size;
    uint64_t idle_timeout_ms;
    uint64_t handshake_timeout_ms;
    unsigned max_connections;
    uint64_t busy_poll_us; /* 0: never poll without sleeping */
    /* [tls] */
    char certificate[PATH_MAX];
    char key[PATH_MAX];
    char client_ca[PATH_MAX];
    char pinned[KMS_CONF_MAX_LIST][65]; /* SHA-256 fingerprints, hex */
    size_t pinned_count;
    bool tls13_only;
    /* [store], [root_key], [audit] */
    char store_path[PATH_MAX];
    char root_key_path[PATH_MAX];
    char audit_path[PATH_MAX];
    /* [access] */
    char admins[KMS_CONF_MAX_LIST][KMS_OWNER_MAX];
    size_t admin_count;
    struct kms_group groups[KMS_MAX_GROUPS * 2];
    size_t group_count;
    /* [log] */
    char log_level[16];
};

/* Loads DIR/kms.conf (absent: defaults). Errors name file, line, key. */
RESULT kms_config_load(const char *data_dir, struct kms_config *out) __attribute__((nonnull));

/* The text `init` writes: every option, commented, with its default. */
extern const char kms_config_default_text[];

/* Fills a principal for a certificate identity from the configuration:
 * its groups (the first one owns what it creates) and admin flag. */
void kms_config_principal(const struct kms_config *cfg, const char *identity,
                          struct kms_principal *out) __attribute__((nonnull));

#endif
