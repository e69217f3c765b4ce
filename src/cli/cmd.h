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
    cli_cmd_kp_restore, cli_cmd_kp_list, cli_cmd_kp_set_default;

/* vm: virtual machines (cmd_vm.c) */
cli_command_fn cli_cmd_vm_create, cli_cmd_vm_list, cli_cmd_vm_info, cli_cmd_vm_encrypt,
    cli_cmd_vm_decrypt, cli_cmd_vm_clone, cli_cmd_vm_rekey, cli_cmd_vm_snapshot_create,
    cli_cmd_vm_snapshot_delete, cli_cmd_vm_snapshot_revert, cli_cmd_vm_power_on,
    cli_cmd_vm_power_off, cli_cmd_vm_delete, cli_cmd_vm_template;

/* disk, key, task, help (cmd_other.c) */
cli_command_fn cli_cmd_disk_add, cli_cmd_disk_export, cli_cmd_key_list, cli_cmd_key_destroy,
    cli_cmd_task_list, cli_cmd_task_show, cli_cmd_help;

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

/* Width of the key column of key: value output. */
#define CLI_KV_WIDTH 18

#endif
