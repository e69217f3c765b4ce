/*
 * cmd.h - the commands of the table in commands.c, and what they share.
 * Internal to the CLI.
 */
#ifndef VMSEAL_CLI_CMD_H
#define VMSEAL_CLI_CMD_H

#include <jansson.h>

#include "cli/api.h"
#include "cli/cli.h"

/* kp: key providers (cmd_kp.c) */
cli_command_fn cli_cmd_kp_add_native, cli_cmd_kp_add_standard, cli_cmd_kp_backup,
    cli_cmd_kp_restore, cli_cmd_kp_list, cli_cmd_kp_set_default, cli_cmd_kp_add, cli_cmd_kp_remove,
    cli_cmd_kp_server_add, cli_cmd_kp_server_remove, cli_cmd_kp_server_cert, cli_cmd_kp_trust,
    cli_cmd_kp_client_self_signed, cli_cmd_kp_client_csr, cli_cmd_kp_client_cert;

/* vm: virtual machines (cmd_vm.c) */
cli_command_fn cli_cmd_vm_create, cli_cmd_vm_list, cli_cmd_vm_info, cli_cmd_vm_encrypt,
    cli_cmd_vm_decrypt, cli_cmd_vm_clone, cli_cmd_vm_rekey, cli_cmd_vm_snapshot_create,
    cli_cmd_vm_snapshot_delete, cli_cmd_vm_snapshot_revert, cli_cmd_vm_power_on,
    cli_cmd_vm_power_off, cli_cmd_vm_delete, cli_cmd_vm_template;

/* disk, key, task, help (cmd_other.c) */
cli_command_fn cli_cmd_disk_add, cli_cmd_disk_export, cli_cmd_key_list, cli_cmd_key_destroy,
    cli_cmd_task_list, cli_cmd_task_show, cli_cmd_task_watch, cli_cmd_task_cancel, cli_cmd_help;

/* session, tokens, users, roles, privileges, permissions, folders, storage
 * policies (cmd_admin.c) */
cli_command_fn cli_cmd_login, cli_cmd_logout, cli_cmd_whoami, cli_cmd_token_list,
    cli_cmd_token_revoke, cli_cmd_user_create, cli_cmd_user_list, cli_cmd_user_delete,
    cli_cmd_user_password, cli_cmd_user_group_add, cli_cmd_user_group_remove, cli_cmd_role_create,
    cli_cmd_role_list, cli_cmd_role_delete, cli_cmd_privilege_list, cli_cmd_permission_set,
    cli_cmd_permission_list, cli_cmd_permission_remove, cli_cmd_folder_create,
    cli_cmd_folder_delete, cli_cmd_folder_list, cli_cmd_policy_list, cli_cmd_policy_create,
    cli_cmd_policy_delete;

/* vm move, vm policy (cmd_vm.c) */
cli_command_fn cli_cmd_vm_move, cli_cmd_vm_policy;

/* host (cmd_kp.c) */
cli_command_fn cli_cmd_host_show, cli_cmd_host_enable_encryption;

/* A usage error found by a command (exit 2): ERR_INVALID_ARG with a detail. */
vs_result cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), nonnull(1, 2)));

/* Puts "prefix: " before the last error's detail ("--server: ..."),
 * keeping its code, and returns it. */
vs_result cli_detail_prefix(const char *prefix) __attribute__((nonnull));

/* The same, turning the last error into a usage error (exit 2). */
vs_result cli_usage_prefix(struct cli_ctx *ctx, const char *prefix) __attribute__((nonnull));

/* Builds "/v1/..." from n segments (escaped). */
RESULT cli_path(char *out, size_t size, size_t n, ...) __attribute__((nonnull(1)));

/* Prints value on stdout as JSON (--json). */
RESULT cli_emit_json(struct cli_ctx *ctx, const json_t *value) __attribute__((nonnull));

/* Finds the VM in a task's result: {"vm": vm} (as GET /v1/vms/NAME
 * answers) or a bare vm object. NULL when the result holds none. */
json_t *cli_result_vm(json_t *result);

/* The end of a task on a VM: with --json, the task's result; otherwise
 * `done` and, when the result holds the VM, its encryption in brackets:
 * "web1 encrypted (encrypted, provider native1)". */
RESULT cli_report_vm_task(struct cli_ctx *ctx, json_t *result, const char *done)
    __attribute__((nonnull(1, 2, 3)));

/* A column of a list (cli_list): which field of each item, and how it is
 * shown. */
enum cli_column_kind {
    CLI_COL_STRING, /* a string; null or missing: null_text ("-" when NULL) */
    CLI_COL_BOOL,   /* true: "yes", false/null/missing: "no" */
    CLI_COL_JOIN,   /* an array of strings, joined with "," ("-" when empty) */
    CLI_COL_COUNT,  /* the length of an array */
};

struct cli_column {
    const char *header; /* "NAME" */
    const char *field;  /* "name" */
    enum cli_column_kind kind;
    const char *null_text;
};

/* Writes the cell of column c for item into out ("-" for nothing). */
RESULT cli_list_cell_text(const json_t *item, const struct cli_column *c, char *out, size_t size)
    __attribute__((nonnull));

/* GET path, whose answer is {list_key: [object...]}: with --json the
 * answer, otherwise a table of the columns. Every field is type-checked;
 * a malformed answer is an error. */
RESULT cli_list(struct cli_ctx *ctx, const char *path, const char *list_key,
                const struct cli_column *columns, size_t ncolumns) __attribute__((nonnull));

/* Sends one request whose answer is {key: value} (key NULL: any object)
 * and reports it: with --json the value (or the whole answer when key is
 * NULL), otherwise the line `said` (sanitized). *answer (may be NULL)
 * gets the answer (a new reference) for a caller that needs more. */
RESULT cli_call_and_say(struct cli_ctx *ctx, const char *method, const char *path,
                        const json_t *body, unsigned flags, const char *key, const char *said,
                        json_t **answer) __attribute__((nonnull(1, 2, 3, 7)));

/* json_pack failed on text that is not UTF-8 (or on memory): a usage error. */
RESULT cli_body_check(struct cli_ctx *ctx, const json_t *body) __attribute__((nonnull(1)));

/* Width of the key column of key: value output. */
#define CLI_KV_WIDTH 18

#endif
