/*
 * main.c - the vmseal-kms program: init, serve, pki.
 *
 *   vmseal-kms init --data-dir DIR [--hostname NAME]
 *   vmseal-kms serve --data-dir DIR [--listen HOST:PORT]
 *   vmseal-kms pki issue-client --data-dir DIR NAME
 *   vmseal-kms pki sign-csr --data-dir DIR FILE.csr
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "core/secret.h"
#include "kms/audit.h"
#include "kms/kmsconf.h"
#include "kms/pki.h"
#include "kms/rootkey.h"
#include "kms/server.h"
#include "kms/store.h"

struct kms_args {
    const char *data_dir;
    const char *listen;
    const char *hostname;
    const char *positional[4];
    int npositional;
};

static int kms_usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  vmseal-kms init --data-dir DIR [--hostname NAME]\n"
               "      create the root key, the store, kms.conf and a development PKI\n"
               "  vmseal-kms serve --data-dir DIR [--listen HOST:PORT]\n"
               "      serve KMIP over TLS in the foreground until SIGTERM or SIGINT\n"
               "  vmseal-kms pki issue-client --data-dir DIR NAME\n"
               "      write DIR/pki/NAME.crt and NAME.key, a client certificate for NAME\n"
               "  vmseal-kms pki sign-csr --data-dir DIR FILE.csr\n"
               "      sign a certificate request (e.g. vCenter's) and print the certificate\n");
    return f == stderr ? 2 : 0;
}

static int kms_fail(const char *what)
{
    char msg[512];
    fprintf(stderr, "vmseal-kms: %s: %s\n", what, err_format(msg, sizeof(msg)));
    return 1;
}

static bool kms_parse_args(int argc, char **argv, int first, struct kms_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = first; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--data-dir") == 0)
            slot = &a->data_dir;
        else if (strcmp(argv[i], "--listen") == 0)
            slot = &a->listen;
        else if (strcmp(argv[i], "--hostname") == 0)
            slot = &a->hostname;
        if (slot != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vmseal-kms: %s needs a value\n", argv[i]);
                return false;
            }
            *slot = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "vmseal-kms: unknown option %s\n", argv[i]);
            return false;
        } else if (a->npositional < 4) {
            a->positional[a->npositional++] = argv[i];
        } else {
            fprintf(stderr, "vmseal-kms: too many arguments\n");
            return false;
        }
    }
    if (a->data_dir == NULL) {
        fprintf(stderr, "vmseal-kms: --data-dir DIR is required\n");
        return false;
    }
    return true;
}

static int kms_path(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < PATH_MAX ? 0 : -1;
}

/* --- init --- */

static int cmd_init(const struct kms_args *a)
{
    char path[PATH_MAX], host[256];
    struct stat st;
    struct kms_config cfg;

    if (a->npositional != 0)
        return kms_usage(stderr);
    if (kms_path(path, a->data_dir, "kms.conf") != 0)
        return 2;
    if (stat(path, &st) == 0) {
        fprintf(stderr, "vmseal-kms: %s is already initialised (%s exists); nothing changed\n",
                a->data_dir, path);
        return 1;
    }
    if (!is_ok(file_mkdir(a->data_dir, 0700)))
        return kms_fail("creating the data directory");
    if (chmod(a->data_dir, 0700) != 0) {
        fprintf(stderr, "vmseal-kms: chmod 700 %s: %s\n", a->data_dir, strerror(errno));
        return 1;
    }
    if (a->hostname != NULL) {
        snprintf(host, sizeof(host), "%s", a->hostname);
    } else if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "localhost");
    }
    /* The PKI first: it checks the host name, and a mistake there must
     * leave nothing behind that blocks a second try. */
    if (!is_ok(kms_config_load(a->data_dir, &cfg)))
        return kms_fail("reading the defaults");
    if (kms_path(path, a->data_dir, "pki") != 0 || !is_ok(pki_init(path, host)))
        return kms_fail("creating the development PKI");
    if (!is_ok(kms_rootkey_create_file(cfg.root_key_path)))
        return kms_fail("creating the root key");
    struct kms_rootkey *rk = NULL;
    struct kms_store *store = NULL;
    if (!is_ok(kms_rootkey_open_file(cfg.root_key_path, &rk)) ||
        !is_ok(kms_store_open(cfg.store_path, rk, &store))) {
        kms_rootkey_free(&rk);
        return kms_fail("creating the store");
    }
    kms_store_close(&store);
    kms_rootkey_free(&rk);
    /* kms.conf last: its presence means "initialised". */
    if (kms_path(path, a->data_dir, "kms.conf") != 0 ||
        !is_ok(file_write_atomic(path, kms_config_default_text, strlen(kms_config_default_text),
                                 0600)))
        return kms_fail("writing kms.conf");
    printf("initialised %s\n"
           "  root key      %s (back it up apart from the store)\n"
           "  store         %s\n"
           "  configuration %s/kms.conf\n"
           "  PKI           %s/pki: ca.crt, server.crt/key (%s), client.crt/key\n"
           "serve with: vmseal-kms serve --data-dir %s\n",
           a->data_dir, cfg.root_key_path, cfg.store_path, a->data_dir, a->data_dir, host,
           a->data_dir);
    return 0;
}

/* --- serve --- */

static int cmd_serve(const struct kms_args *a)
{
    struct kms_config cfg;
    struct kms_rootkey *rk = NULL;
    struct kms_store *store = NULL;
    struct kms_audit *audit = NULL;
    enum log_level level;
    int status = 1;

    if (a->npositional != 0)
        return kms_usage(stderr);
    /* Keys live in this process: no core dumps, no ptrace by others. */
    if (!is_ok(secret_harden_process()))
        return kms_fail("hardening the process");
    /* Every connection is a descriptor: allow as many as the system lets
     * this process have. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (!is_ok(kms_config_load(a->data_dir, &cfg)))
        return kms_fail("configuration");
    if (a->listen != NULL) {
        if (strlen(a->listen) >= sizeof(cfg.listen)) {
            fprintf(stderr, "vmseal-kms: --listen value too long\n");
            return 2;
        }
        snprintf(cfg.listen, sizeof(cfg.listen), "%s", a->listen);
    }
    if (!is_ok(log_parse_level(cfg.log_level, &level)))
        return kms_fail("[log] level");
    log_set_level(level);

    if (!is_ok(kms_rootkey_open_file(cfg.root_key_path, &rk))) {
        kms_fail("root key");
        goto out;
    }
    if (!is_ok(kms_store_open(cfg.store_path, rk, &store))) {
        kms_fail("store");
        goto out;
    }
    if (!is_ok(kms_audit_open(cfg.audit_path, &audit))) {
        kms_fail("audit log");
        goto out;
    }
    if (!is_ok(kms_server_run(&cfg, store, audit))) {
        kms_fail("server");
        goto out;
    }
    log_info("stopped");
    status = 0;
out:
    kms_audit_close(&audit);
    kms_store_close(&store); /* the writer finishes what is queued */
    kms_rootkey_free(&rk);
    return status;
}

/* --- pki --- */

static int cmd_pki(int argc, char **argv)
{
    struct kms_args a;
    char dir[PATH_MAX];

    if (argc < 3)
        return kms_usage(stderr);
    if (!kms_parse_args(argc, argv, 3, &a))
        return 2;
    if (kms_path(dir, a.data_dir, "pki") != 0)
        return 2;
    if (strcmp(argv[2], "issue-client") == 0 && a.npositional == 1) {
        if (!is_ok(pki_issue_client(dir, a.positional[0])))
            return kms_fail("issuing the client certificate");
        printf("%s/%s.crt\n%s/%s.key\n", dir, a.positional[0], dir, a.positional[0]);
        return 0;
    }
    if (strcmp(argv[2], "sign-csr") == 0 && a.npositional == 1) {
        struct buf csr, cert;
        int status = 0;
        if (!is_ok(buf_alloc(&csr, 0, PKI_CSR_MAX + 1)) || !is_ok(buf_alloc(&cert, 0, 1 << 16)))
            return kms_fail("memory");
        if (!is_ok(file_read_all(a.positional[0], PKI_CSR_MAX, &csr)))
            status = kms_fail("reading the request");
        else if (!is_ok(pki_sign_csr(dir, buf_data(&csr), buf_len(&csr), &cert)))
            status = kms_fail("signing the request");
        else
            fwrite(buf_data(&cert), 1, buf_len(&cert), stdout);
        buf_free(&csr);
        buf_free(&cert);
        return status;
    }
    return kms_usage(stderr);
}

/* The subcommands, as a table (shared/STYLE.md §6). */
struct kms_command {
    const char *name;
    int (*run)(const struct kms_args *a);
};

static const struct kms_command kms_commands[] = {
    {"init", cmd_init},
    {"serve", cmd_serve},
};

int main(int argc, char **argv)
{
    struct kms_args a;

    /* Everything vmseal-kms creates (store, WAL, audit, keys) is its own. */
    umask(077);

    if (argc < 2)
        return kms_usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
        return kms_usage(stdout);
    if (strcmp(argv[1], "pki") == 0)
        return cmd_pki(argc, argv);
    for (size_t i = 0; i < sizeof(kms_commands) / sizeof(kms_commands[0]); i++) {
        if (strcmp(argv[1], kms_commands[i].name) == 0) {
            if (!kms_parse_args(argc, argv, 2, &a))
                return 2;
            return kms_commands[i].run(&a);
        }
    }
    fprintf(stderr, "vmseal-kms: unknown command %s\n", argv[1]);
    return kms_usage(stderr);
}
