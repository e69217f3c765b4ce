/*
 * vm_tool DATA_DIR COMMAND ARGS... - test helper for
 * tests/integration/test_vm_disk_policy.py: the host engine (src/vm/vm.h)
 * from the command line, without vmseald. Each run opens the data
 * directory's key providers and host (vm_host_open: recovery of interrupted
 * operations runs there), does one command and prints its JSON result.
 *
 *   init                              adds native provider n1, backed up
 *   create NAME [--encrypt] [--image FILE] [--disk SIZE]...
 *   info NAME
 *   encrypt NAME | decrypt NAME
 *   disk-encrypt NAME INDEX [--cancel-at PERCENT]
 *   disk-decrypt NAME INDEX [--cancel-at PERCENT]
 *   rekey NAME (--deep|--shallow)
 *   clone SRC DST [--encrypt|--decrypt|--recrypt|--instant]
 *   add-disk NAME SIZE
 *   snapshot-create NAME SNAP | snapshot-delete NAME SNAP
 *   export NAME INDEX PATH            the disk in clear (break-glass)
 *   secret NAME INDEX PATH            the disk's LUKS passphrases (vm.h)
 *
 * SIZE: bytes, or with a K, M or G suffix. --cancel-at sets the task's
 * cancel flag once the engine reports PERCENT (the operation rolls back).
 * Environment: VM_TOOL_RUNTIME_DIR (the host's runtime directory, a tmpfs),
 * VM_TOOL_THREADS (the bulk engine's threads). On failure: "error ERR_NAME:
 * message" on stderr, exit status 1; 2 for a usage error.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/file.h"
#include "keyprov/keyprov.h"
#include "vm/vm.h"

struct tool {
    struct keyprov *kp;
    struct vm_host *h;
    int argc; /* the command's arguments, after its name */
    char **argv;
};

static int usage(void)
{
    fprintf(stderr, "usage: vm_tool DATA_DIR COMMAND ARGS... (see the top of vm_tool.c)\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t unit = 1;
    if (errno != 0 || end == s || s[0] == '-')
        return false;
    if (*end == 'K' || *end == 'M' || *end == 'G') {
        unit = *end == 'K' ? 1ull << 10 : *end == 'M' ? 1ull << 20 : 1ull << 30;
        end++;
    }
    if (*end != '\0' || v > UINT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

static bool parse_index(const char *s, unsigned *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > 1000000)
        return false;
    *out = (unsigned)v;
    return true;
}

/* --cancel-at: the cancel flag goes up once progress reaches the mark. */
struct cancel_at {
    struct vm_task_ctl ctl;
    unsigned percent;
};

static void cancel_progress(void *ctx, unsigned percent)
{
    struct cancel_at *c = ctx;
    if (percent >= c->percent)
        atomic_store(&c->ctl.cancel, true);
}

static vs_result cmd_init(struct tool *t, json_t **out)
{
    struct buf backup = {0};
    vs_result rc = keyprov_add_native(t->kp, "n1");
    if (rc.code == ERR_EXISTS) {
        err_clear();
        rc = OK_RESULT;
    }
    GUARD(rc);
    GUARD(buf_alloc(&backup, 0, 1 << 16));
    rc = keyprov_backup(t->kp, "n1", "a test passphrase", 17, &backup);
    buf_free(&backup);
    GUARD(rc);
    *out = json_pack("{s:s}", "provider", "n1");
    return *out != NULL ? OK_RESULT : RAISE(ERR_NOMEM);
}

static vs_result cmd_create(struct tool *t, json_t **out)
{
    struct vm_create_spec spec = {.name = t->argv[0]};
    for (int i = 1; i < t->argc; i++) {
        if (strcmp(t->argv[i], "--encrypt") == 0) {
            spec.encrypt = true;
        } else if (strcmp(t->argv[i], "--image") == 0 && i + 1 < t->argc) {
            spec.image = t->argv[++i];
        } else if (strcmp(t->argv[i], "--disk") == 0 && i + 1 < t->argc &&
                   spec.disk_count < VM_MAX_DISKS &&
                   parse_u64(t->argv[i + 1], &spec.disks[spec.disk_count])) {
            spec.disk_count++;
            i++;
        } else {
            RAISE(ERR_INVALID_ARG);
            return err_detail("create: bad argument '%s'", t->argv[i]);
        }
    }
    return vm_create(t->h, &spec, NULL, out);
}

static vs_result cmd_info(struct tool *t, json_t **out)
{
    return vm_info(t->h, t->argv[0], out);
}

static vs_result cmd_encrypt(struct tool *t, json_t **out)
{
    return vm_encrypt(t->h, t->argv[0], NULL, NULL, out);
}

static vs_result cmd_decrypt(struct tool *t, json_t **out)
{
    return vm_decrypt(t->h, t->argv[0], NULL, out);
}

static vs_result disk_transform(struct tool *t, bool encrypt, json_t **out)
{
    static struct cancel_at c; /* static: the engine's threads see it until we exit */
    struct vm_task_ctl *ctl = NULL;
    unsigned index = 0;
    if (!parse_index(t->argv[1], &index)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("bad disk index '%s'", t->argv[1]);
    }
    if (t->argc == 4 && strcmp(t->argv[2], "--cancel-at") == 0 &&
        parse_index(t->argv[3], &c.percent)) {
        c.ctl.progress = cancel_progress;
        c.ctl.ctx = &c;
        atomic_init(&c.ctl.cancel, false);
        ctl = &c.ctl;
    } else if (t->argc != 2) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("usage: disk-(en|de)crypt NAME INDEX [--cancel-at PERCENT]");
    }
    if (encrypt)
        return vm_disk_encrypt(t->h, t->argv[0], index, ctl, out);
    return vm_disk_decrypt(t->h, t->argv[0], index, ctl, out);
}

static vs_result cmd_disk_encrypt(struct tool *t, json_t **out)
{
    return disk_transform(t, true, out);
}

static vs_result cmd_disk_decrypt(struct tool *t, json_t **out)
{
    return disk_transform(t, false, out);
}

static vs_result cmd_rekey(struct tool *t, json_t **out)
{
    bool deep = strcmp(t->argv[1], "--deep") == 0;
    if (!deep && strcmp(t->argv[1], "--shallow") != 0) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("rekey takes --deep or --shallow");
    }
    return vm_rekey(t->h, t->argv[0], deep, NULL, NULL, out);
}

static vs_result cmd_clone(struct tool *t, json_t **out)
{
    static const struct {
        const char *flag;
        enum vm_clone_mode mode;
        bool instant;
    } modes[] = {
        {"--encrypt", VM_CLONE_ENCRYPT, false},
        {"--decrypt", VM_CLONE_DECRYPT, false},
        {"--recrypt", VM_CLONE_RECRYPT, false},
        {"--instant", VM_CLONE_KEEP, true},
    };
    enum vm_clone_mode mode = VM_CLONE_KEEP;
    bool instant = false, known = t->argc == 2;
    for (size_t i = 0; t->argc == 3 && i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(t->argv[2], modes[i].flag) == 0) {
            mode = modes[i].mode;
            instant = modes[i].instant;
            known = true;
        }
    }
    if (!known) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("usage: clone SRC DST [--encrypt|--decrypt|--recrypt|--instant]");
    }
    return vm_clone(t->h, t->argv[0], t->argv[1], mode, NULL, instant, NULL, out);
}

static vs_result cmd_add_disk(struct tool *t, json_t **out)
{
    uint64_t size;
    if (!parse_u64(t->argv[1], &size)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("bad size '%s'", t->argv[1]);
    }
    return vm_add_disk(t->h, t->argv[0], size, out);
}

static vs_result cmd_snapshot_create(struct tool *t, json_t **out)
{
    return vm_snapshot_create(t->h, t->argv[0], t->argv[1], out);
}

static vs_result cmd_snapshot_delete(struct tool *t, json_t **out)
{
    return vm_snapshot_delete(t->h, t->argv[0], t->argv[1], out);
}

static vs_result index_then_path(struct tool *t, unsigned *index)
{
    if (!parse_index(t->argv[1], index)) {
        RAISE(ERR_INVALID_ARG);
        return err_detail("bad disk index '%s'", t->argv[1]);
    }
    return OK_RESULT;
}

static vs_result cmd_export(struct tool *t, json_t **out)
{
    unsigned index = 0;
    GUARD(index_then_path(t, &index));
    return vm_export_disk(t->h, t->argv[0], index, t->argv[2], NULL, out);
}

static vs_result cmd_secret(struct tool *t, json_t **out)
{
    unsigned index = 0;
    GUARD(index_then_path(t, &index));
    return vm_disk_secret(t->h, t->argv[0], index, t->argv[2], out);
}

static const struct command {
    const char *name;
    int min_args, max_args;
    vs_result (*fn)(struct tool *t, json_t **out);
} commands[] = {
    {"init", 0, 0, cmd_init},
    {"create", 1, 2 * VM_MAX_DISKS + 4, cmd_create},
    {"info", 1, 1, cmd_info},
    {"encrypt", 1, 1, cmd_encrypt},
    {"decrypt", 1, 1, cmd_decrypt},
    {"disk-encrypt", 2, 4, cmd_disk_encrypt},
    {"disk-decrypt", 2, 4, cmd_disk_decrypt},
    {"rekey", 2, 2, cmd_rekey},
    {"clone", 2, 3, cmd_clone},
    {"add-disk", 2, 2, cmd_add_disk},
    {"snapshot-create", 2, 2, cmd_snapshot_create},
    {"snapshot-delete", 2, 2, cmd_snapshot_delete},
    {"export", 3, 3, cmd_export},
    {"secret", 3, 3, cmd_secret},
};

static int fail(void)
{
    char msg[512];
    fprintf(stderr, "error %s: %s\n", err_name(err_last()->code), err_format(msg, sizeof msg));
    return 1;
}

int main(int argc, char **argv)
{
    const struct command *cmd = NULL;
    if (argc < 3)
        return usage();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[2], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL || argc - 3 < cmd->min_args || argc - 3 > cmd->max_args)
        return usage();

    struct tool t = {.argc = argc - 3, .argv = argv + 3};
    const char *threads = getenv("VM_TOOL_THREADS");
    uint64_t nthreads = 0;
    if (threads != NULL && (!parse_u64(threads, &nthreads) || nthreads > 256))
        return usage();
    struct vm_host_config cfg = {.data_dir = argv[1],
                                 .runtime_dir = getenv("VM_TOOL_RUNTIME_DIR"),
                                 .accel = "tcg",
                                 .engine_threads = (unsigned)nthreads};
    json_t *out = NULL;
    int status = 0;
    if (!is_ok(file_mkdir(argv[1], 0700)) || !is_ok(keyprov_open(argv[1], &t.kp)) ||
        !is_ok(vm_host_open(&cfg, t.kp, &t.h)) || !is_ok(cmd->fn(&t, &out))) {
        status = fail();
    } else {
        char *text = json_dumps(out, JSON_SORT_KEYS | JSON_INDENT(2));
        if (text == NULL)
            return 1;
        printf("%s\n", text);
        free(text);
    }
    json_decref(out);
    vm_host_close(&t.h);
    keyprov_close(&t.kp);
    return status;
}
