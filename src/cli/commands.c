/*
 * commands.c - the command table, `vmseal help`, and what the commands
 * share. See cli.h.
 */
#include <stdarg.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/output.h"

#define B(id) CLI_BIT(id)

/* clang-format off */
const struct cli_command cli_commands[] = {
    /* --- key providers --- */
    {.name = "kp add-native", .args = "NAME", .synopsis = "",
     .summary = "create a native key provider (keys generated and kept by vmseald)",
     .help = "A native provider needs no key server: vmseald generates its keys and keeps them\n"
             "wrapped on this host. Back it up (vmseal kp backup) before relying on it.",
     .run = cli_cmd_kp_add_native, .min_args = 1, .max_args = 1},
    {.name = "kp add-standard", .args = "NAME",
     .synopsis = "--server HOST:PORT [--server HOST:PORT]... --ca FILE --cert FILE --key FILE",
     .summary = "create a standard key provider (KMIP key servers)",
     .help = "vmseald fetches keys from the KMIP servers over mutual TLS, trying them in the\n"
             "order given. The PEM files are read here and their contents sent to vmseald;\n"
             "the private key is held in locked memory and wiped after sending.",
     .run = cli_cmd_kp_add_standard, .min_args = 1, .max_args = 1,
     .options = B(SERVER) | B(CA) | B(CERT) | B(KEY),
     .required = B(SERVER) | B(CA) | B(CERT) | B(KEY)},
    {.name = "kp backup", .args = "NAME", .synopsis = "--to FILE [--passphrase-file FILE]",
     .summary = "back up a native key provider into a new file, under a passphrase",
     .help = "The passphrase is read from stdin (one line; asked twice, without echo, on a\n"
             "terminal) or from the first line of --passphrase-file; never from the command\n"
             "line or the environment. FILE is created with mode 0600 and never overwritten.",
     .run = cli_cmd_kp_backup, .min_args = 1, .max_args = 1,
     .options = B(TO) | B(PASSPHRASE_FILE), .required = B(TO)},
    {.name = "kp restore", .args = "", .synopsis = "--from FILE [--name NAME] [--passphrase-file FILE]",
     .summary = "restore a native key provider from a backup",
     .help = "The passphrase is read as for kp backup. --name restores the provider under\n"
             "another name than the one it was backed up with.",
     .run = cli_cmd_kp_restore, .min_args = 0, .max_args = 0,
     .options = B(FROM) | B(NAME) | B(PASSPHRASE_FILE), .required = B(FROM)},
    {.name = "kp list", .args = "", .synopsis = "", .summary = "list the key providers",
     .run = cli_cmd_kp_list},
    {.name = "kp set-default", .args = "NAME", .synopsis = "",
     .summary = "make NAME the provider used when none is named",
     .run = cli_cmd_kp_set_default, .min_args = 1, .max_args = 1},
    {.name = "kp default", .args = "NAME", .synopsis = "",
     .summary = "the same as kp set-default",
     .run = cli_cmd_kp_set_default, .min_args = 1, .max_args = 1},
    {.name = "kp add", .args = "NAME",
     .synopsis = "--type native | --type standard --server HOST:PORT [--server HOST:PORT]... "
                 "[--ca FILE --cert FILE --key FILE]",
     .summary = "create a key provider",
     .help = "--type native: as kp add-native. --type standard with --ca, --cert and --key: as\n"
             "kp add-standard. --type standard with the servers only (vCenter's way): trust\n"
             "comes afterwards, in both directions: kp server-cert and kp trust for the\n"
             "servers' certificate, kp client self-signed, csr or cert for vmseald's own.",
     .run = cli_cmd_kp_add, .min_args = 1, .max_args = 1,
     .options = B(TYPE) | B(SERVER) | B(CA) | B(CERT) | B(KEY), .required = B(TYPE)},
    {.name = "kp remove", .args = "NAME", .synopsis = "",
     .summary = "remove a key provider (refused while a VM uses it)",
     .help = "Refused while a VM, a storage policy or the host's key uses the provider, and\n"
             "for the default provider while there are others (make another the default).",
     .run = cli_cmd_kp_remove,
     .min_args = 1, .max_args = 1},
    {.name = "kp server add", .args = "NAME HOST:PORT", .synopsis = "",
     .summary = "add a key server to a standard provider's cluster",
     .run = cli_cmd_kp_server_add, .min_args = 2, .max_args = 2},
    {.name = "kp server remove", .args = "NAME HOST:PORT", .synopsis = "",
     .summary = "remove a key server from a standard provider's cluster",
     .run = cli_cmd_kp_server_remove, .min_args = 2, .max_args = 2},
    {.name = "kp server-cert", .args = "NAME", .synopsis = "[--server HOST:PORT] [--out FILE]",
     .summary = "fetch a key server's certificate and show its fingerprint",
     .help = "vmseald connects to the server (default: the provider's first) and shows the\n"
             "certificate it presents: subject, issuer, validity and SHA-256 fingerprint,\n"
             "then the PEM (the server's certificate first, then its chain); --out writes\n"
             "the PEM to a new FILE instead. Compare the fingerprint with the one the key\n"
             "server shows, then: vmseal kp trust NAME --server-cert FILE --fingerprint HEX.",
     .run = cli_cmd_kp_server_cert, .min_args = 1, .max_args = 1,
     .options = B(SERVER) | B(OUT)},
    {.name = "kp trust", .args = "NAME",
     .synopsis = "--ca FILE | --server-cert FILE --fingerprint HEX",
     .summary = "make a standard provider trust its key servers",
     .help = "--ca: the servers' certificates must be signed by this CA (PEM). --server-cert\n"
             "with --fingerprint: pin that certificate (as kp server-cert wrote it), after you\n"
             "confirmed its SHA-256 fingerprint (64 hex digits, ':' allowed, as openssl or\n"
             "kp server-cert prints it).",
     .run = cli_cmd_kp_trust, .min_args = 1, .max_args = 1,
     .options = B(CA) | B(SERVER_CERT) | B(FINGERPRINT), .exactly_one = B(CA) | B(SERVER_CERT),
     .needs = {{B(SERVER_CERT), B(FINGERPRINT)}, {B(FINGERPRINT), B(SERVER_CERT)}}},
    {.name = "kp client self-signed", .args = "NAME", .synopsis = "--out FILE",
     .summary = "give a standard provider a self-signed client certificate",
     .help = "vmseald makes the key and the certificate; the key never leaves it. FILE gets\n"
             "the certificate, for the key server to trust.",
     .run = cli_cmd_kp_client_self_signed, .min_args = 1, .max_args = 1, .options = B(OUT),
     .required = B(OUT)},
    {.name = "kp client csr", .args = "NAME", .synopsis = "--out FILE",
     .summary = "make a certificate request for the key server's CA to sign",
     .help = "vmseald makes the key and the request; the key never leaves it. Have the key\n"
             "server's CA sign FILE, then: vmseal kp client cert NAME --cert SIGNED.crt.",
     .run = cli_cmd_kp_client_csr, .min_args = 1, .max_args = 1, .options = B(OUT),
     .required = B(OUT)},
    {.name = "kp client cert", .args = "NAME", .synopsis = "--cert FILE [--key FILE]",
     .summary = "give a standard provider its client certificate (and key)",
     .help = "Without --key: the certificate signed from kp client csr. With --key: a\n"
             "certificate and key made elsewhere; the key is read into locked memory, sealed\n"
             "by vmseald, and should then be deleted here.",
     .run = cli_cmd_kp_client_cert, .min_args = 1, .max_args = 1, .options = B(CERT) | B(KEY),
     .required = B(CERT)},

    /* --- virtual machines --- */
    {.name = "vm create", .args = "NAME",
     .synopsis = "[--disk SIZE]... [--image FILE] [--encrypt [--provider P] | --policy NAME] "
                 "[--folder NAME] [--memory SIZE] [--cpus N]",
     .summary = "create a VM",
     .help = "SIZE is a number of bytes or a number with K, M, G or T (binary: 1G = 2^30).\n"
             "--image names a guest image on vmseald's host (made absolute here) that becomes\n"
             "the first disk; each --disk adds an empty disk after it. --encrypt encrypts the\n"
             "VM from its creation, under a new key of --provider (default: the default\n"
             "provider). --policy gives it a storage policy instead (an encryption policy\n"
             "encrypts it: vmseal policy list). --folder creates it in that folder (default:\n"
             "the root). Without --memory and --cpus, vmseald's defaults apply (256M, 1 CPU).",
     .run = cli_cmd_vm_create, .min_args = 1, .max_args = 1,
     .options = B(DISK) | B(IMAGE) | B(ENCRYPT) | B(PROVIDER) | B(MEMORY) | B(CPUS) | B(POLICY) |
                B(FOLDER),
     .at_most_one = B(ENCRYPT) | B(POLICY), .needs = {{B(PROVIDER), B(ENCRYPT)}}},
    {.name = "vm list", .args = "", .synopsis = "", .summary = "list the VMs",
     .run = cli_cmd_vm_list},
    {.name = "vm info", .args = "NAME", .synopsis = "", .summary = "show a VM",
     .help = "With --json, prints the VM object itself (\"encrypted\" is a top-level key).",
     .run = cli_cmd_vm_info, .min_args = 1, .max_args = 1},
    {.name = "vm encrypt", .args = "NAME", .synopsis = "[--provider P]",
     .summary = "encrypt a VM (powered off, without snapshots)",
     .help = "Encrypts the VM's files and disks under a new key of --provider (default: the\n"
             "default provider).",
     .run = cli_cmd_vm_encrypt, .min_args = 1, .max_args = 1, .options = B(PROVIDER)},
    {.name = "vm decrypt", .args = "NAME", .synopsis = "",
     .summary = "decrypt a VM (powered off, without snapshots)",
     .run = cli_cmd_vm_decrypt, .min_args = 1, .max_args = 1},
    {.name = "vm clone", .args = "SRC DST",
     .synopsis = "[--encrypt | --decrypt | --recrypt] [--provider P] [--instant]",
     .summary = "clone a VM",
     .help = "Without a mode the clone keeps the source's encryption (and its key).\n"
             "--encrypt encrypts the clone of a plain VM, --decrypt gives a plain clone of an\n"
             "encrypted one, --recrypt re-encrypts the clone under a new key; --provider picks\n"
             "the new key's provider. --instant makes an instant clone that shares the\n"
             "source's disks.",
     .run = cli_cmd_vm_clone, .min_args = 2, .max_args = 2,
     .options = B(ENCRYPT) | B(DECRYPT) | B(RECRYPT) | B(PROVIDER) | B(INSTANT),
     .at_most_one = B(ENCRYPT) | B(DECRYPT) | B(RECRYPT),
     .needs = {{B(PROVIDER), B(ENCRYPT) | B(RECRYPT)}}},
    {.name = "vm rekey", .args = "NAME", .synopsis = "--shallow | --deep [--provider P]",
     .summary = "give an encrypted VM a new key",
     .help = "--shallow replaces the key encryption key only: the small wrapped secrets are\n"
             "re-wrapped, no data is touched. --deep also replaces the disks' data keys: every\n"
             "disk is re-encrypted (refused on a VM with snapshots). --provider moves the VM\n"
             "to another provider's key.",
     .run = cli_cmd_vm_rekey, .min_args = 1, .max_args = 1,
     .options = B(SHALLOW) | B(DEEP) | B(PROVIDER), .exactly_one = B(SHALLOW) | B(DEEP)},
    {.name = "vm snapshot create", .args = "NAME SNAP", .synopsis = "",
     .summary = "take a snapshot of a VM", .run = cli_cmd_vm_snapshot_create,
     .min_args = 2, .max_args = 2},
    {.name = "vm snapshot delete", .args = "NAME SNAP", .synopsis = "",
     .summary = "delete a snapshot (its changes are kept)", .run = cli_cmd_vm_snapshot_delete,
     .min_args = 2, .max_args = 2},
    {.name = "vm snapshot revert", .args = "NAME SNAP", .synopsis = "",
     .summary = "revert a VM to a snapshot", .run = cli_cmd_vm_snapshot_revert,
     .min_args = 2, .max_args = 2},
    {.name = "vm power-on", .args = "NAME", .synopsis = "", .summary = "start a VM",
     .run = cli_cmd_vm_power_on, .min_args = 1, .max_args = 1},
    {.name = "vm power-off", .args = "NAME", .synopsis = "", .summary = "stop a VM",
     .run = cli_cmd_vm_power_off, .min_args = 1, .max_args = 1},
    {.name = "vm delete", .args = "NAME", .synopsis = "",
     .summary = "delete a VM (its keys stay at their provider)",
     .run = cli_cmd_vm_delete, .min_args = 1, .max_args = 1},
    {.name = "vm template", .args = "NAME", .synopsis = "[--off]",
     .summary = "mark a VM as a template (--off: unmark it)",
     .run = cli_cmd_vm_template, .min_args = 1, .max_args = 1, .options = B(OFF)},
    {.name = "vm move", .args = "NAME", .synopsis = "--folder FOLDER | --root",
     .summary = "move a VM into a folder, or to the root",
     .help = "Permissions on the folder then apply to the VM (they propagate to its VMs).",
     .run = cli_cmd_vm_move, .min_args = 1, .max_args = 1, .options = B(FOLDER) | B(ROOT),
     .exactly_one = B(FOLDER) | B(ROOT)},
    {.name = "vm policy", .args = "NAME", .synopsis = "--policy POLICY | --none [--disk N]",
     .summary = "change the storage policy of a VM or of one disk (encrypts or decrypts)",
     .help = "An encryption policy encrypts the VM (its files and every disk); --none decrypts\n"
             "it. With --disk N only that disk changes: a disk can be encrypted only in an\n"
             "encrypted VM. A task: followed with a progress bar, as other VM operations.",
     .run = cli_cmd_vm_policy, .min_args = 1, .max_args = 1,
     .options = B(POLICY) | B(NONE) | B(DISK_INDEX), .exactly_one = B(POLICY) | B(NONE)},

    /* --- disks --- */
    {.name = "disk add", .args = "NAME SIZE", .synopsis = "",
     .summary = "add an empty disk to a VM (encrypted if the VM is)",
     .run = cli_cmd_disk_add, .min_args = 2, .max_args = 2},
    {.name = "disk export", .args = "NAME INDEX FILE", .synopsis = "",
     .summary = "export a VM's disk as a new plain raw file",
     .help = "FILE is a path on vmseald's host (made absolute here); vmseald creates it and\n"
             "refuses to overwrite anything. The exported data is not encrypted.",
     .run = cli_cmd_disk_export, .min_args = 3, .max_args = 3},

    /* --- keys --- */
    {.name = "key list", .args = "", .synopsis = "",
     .summary = "list the keys in use, and which VMs use them", .run = cli_cmd_key_list},
    {.name = "key destroy", .args = "VM|PROVIDER/KEYID", .synopsis = "",
     .summary = "destroy a key (crypto-shredding: irreversible)",
     .help = "Names the key by the VM that used it, or by PROVIDER/KEYID when the argument\n"
             "holds a '/'. Refused while a VM that exists uses the key. Afterwards nothing\n"
             "encrypted under the key, backups included, can be opened again.",
     .run = cli_cmd_key_destroy, .min_args = 1, .max_args = 1},

    /* --- tasks --- */
    {.name = "task list", .args = "", .synopsis = "[--all-states | --running]",
     .summary = "list the tasks, newest first",
     .help = "By default the newest 50 tasks, whatever their state; --all-states every task\n"
             "vmseald keeps (the newest 1000 finished ones, and those not finished);\n"
             "--running only those running now.",
     .run = cli_cmd_task_list, .options = B(ALL_STATES) | B(RUNNING),
     .at_most_one = B(ALL_STATES) | B(RUNNING)},
    {.name = "task show", .args = "ID", .synopsis = "", .summary = "show a task",
     .run = cli_cmd_task_show, .min_args = 1, .max_args = 1},
    {.name = "task watch", .args = "ID", .synopsis = "",
     .summary = "follow a task to its end (exit 0 if it succeeds)",
     .help = "Draws a progress bar on a terminal, else prints one line per change of state or\n"
             "progress. Exits 0 when the task succeeds, 1 when it fails or is cancelled (with\n"
             "its error). Ctrl-C stops watching, not the task.",
     .run = cli_cmd_task_watch, .min_args = 1, .max_args = 1},
    {.name = "task cancel", .args = "ID", .synopsis = "",
     .summary = "cancel a task, where that is safe (it rolls back)",
     .help = "Only operations that roll back can be cancelled (encrypt, decrypt, deep rekey,\n"
             "clone, export, policy changes); the task ends \"cancelled\" once its operation\n"
             "has rolled back.",
     .run = cli_cmd_task_cancel, .min_args = 1, .max_args = 1},

    /* --- session and tokens --- */
    {.name = "login", .args = "", .synopsis = "--user NAME --password-file FILE [--ttl SECONDS]",
     .summary = "log in to vmseald's HTTPS API and keep the token",
     .help = "Needs --server https://HOST:PORT (or VMSEAL_SERVER) and, unless the server's\n"
             "certificate chains to a system CA, --ca FILE (vmseald's DATA_DIR/tls/api.crt).\n"
             "The password is read from FILE (one trailing newline stripped), never from the\n"
             "command line. The token goes to $HOME/.config/vmseal/tokens.json (mode 0600),\n"
             "with the CA file, so that later commands with the same --server need neither.",
     .run = cli_cmd_login, .options = B(USER) | B(PASSWORD_FILE) | B(TTL),
     .required = B(USER) | B(PASSWORD_FILE), .token_use = CLI_TOKEN_UNUSED},
    {.name = "logout", .args = "", .synopsis = "",
     .summary = "revoke the token of --server and forget it",
     .help = "The token is removed here even when vmseald cannot be reached; it then stays\n"
             "valid on vmseald until it expires (vmseal token revoke ID from elsewhere).",
     .run = cli_cmd_logout, .token_use = CLI_TOKEN_OPTIONAL},
    {.name = "whoami", .args = "", .synopsis = "", .summary = "show who vmseald takes you for",
     .run = cli_cmd_whoami},
    {.name = "token list", .args = "", .synopsis = "[--all]",
     .summary = "list your API tokens (--all: everyone's)", .run = cli_cmd_token_list,
     .options = B(ALL)},
    {.name = "token revoke", .args = "ID", .synopsis = "", .summary = "revoke an API token",
     .run = cli_cmd_token_revoke, .min_args = 1, .max_args = 1},

    /* --- users and groups --- */
    {.name = "user create", .args = "NAME", .synopsis = "--password-file FILE",
     .summary = "create a vmseal user",
     .help = "The password (8 to 1024 bytes) is read from FILE, one trailing newline stripped.\n"
             "A local Unix user of the same name reaches vmseald's socket as this user.",
     .run = cli_cmd_user_create, .min_args = 1, .max_args = 1, .options = B(PASSWORD_FILE),
     .required = B(PASSWORD_FILE)},
    {.name = "user list", .args = "", .synopsis = "", .summary = "list the users",
     .run = cli_cmd_user_list},
    {.name = "user delete", .args = "NAME", .synopsis = "",
     .summary = "delete a user (their tokens are revoked, their permissions removed)",
     .run = cli_cmd_user_delete, .min_args = 1, .max_args = 1},
    {.name = "user password", .args = "NAME", .synopsis = "--password-file FILE",
     .summary = "change a user's password", .run = cli_cmd_user_password, .min_args = 1,
     .max_args = 1, .options = B(PASSWORD_FILE), .required = B(PASSWORD_FILE)},
    {.name = "user group add", .args = "NAME GROUP", .synopsis = "",
     .summary = "add a user to a group", .run = cli_cmd_user_group_add, .min_args = 2,
     .max_args = 2},
    {.name = "user group remove", .args = "NAME GROUP", .synopsis = "",
     .summary = "remove a user from a group", .run = cli_cmd_user_group_remove, .min_args = 2,
     .max_args = 2},

    /* --- roles and privileges --- */
    {.name = "role create", .args = "NAME", .synopsis = "--privilege P [--privilege P]...",
     .summary = "create a role: a named set of privileges",
     .help = "vmseal privilege list names the privileges. You can only create a role whose\n"
             "privileges you hold on the root yourself.",
     .run = cli_cmd_role_create, .min_args = 1, .max_args = 1, .options = B(PRIVILEGE),
     .required = B(PRIVILEGE)},
    {.name = "role list", .args = "", .synopsis = "",
     .summary = "list the roles and their number of privileges (--json: the privileges)",
     .run = cli_cmd_role_list},
    {.name = "role delete", .args = "NAME", .synopsis = "",
     .summary = "delete a custom role (not while a permission uses it)",
     .run = cli_cmd_role_delete, .min_args = 1, .max_args = 1},
    {.name = "privilege list", .args = "", .synopsis = "", .summary = "list the privileges",
     .run = cli_cmd_privilege_list},

    /* --- permissions --- */
    {.name = "permission set", .args = "",
     .synopsis = "(--user NAME | --group NAME) --role ROLE [--object PATH] [--no-propagate]",
     .summary = "give a user or a group a role on an object",
     .help = "PATH is / (the root, the default), folder/NAME or vm/NAME. The permission\n"
             "replaces the principal's role on that object and, unless --no-propagate, holds\n"
             "on its children too (a folder's VMs; everything under /). You can only give\n"
             "privileges that you hold on that object yourself.",
     .run = cli_cmd_permission_set,
     .options = B(USER) | B(GROUP) | B(ROLE) | B(OBJECT) | B(NO_PROPAGATE),
     .required = B(ROLE), .exactly_one = B(USER) | B(GROUP)},
    {.name = "permission list", .args = "", .synopsis = "", .summary = "list the permissions",
     .run = cli_cmd_permission_list},
    {.name = "permission remove", .args = "", .synopsis = "(--user NAME | --group NAME) [--object PATH]",
     .summary = "remove a user's or a group's permission on an object (default: /)",
     .run = cli_cmd_permission_remove, .options = B(USER) | B(GROUP) | B(OBJECT),
     .exactly_one = B(USER) | B(GROUP)},

    /* --- folders --- */
    {.name = "folder create", .args = "NAME", .synopsis = "", .summary = "create a folder",
     .run = cli_cmd_folder_create, .min_args = 1, .max_args = 1},
    {.name = "folder delete", .args = "NAME", .synopsis = "",
     .summary = "delete an empty folder", .run = cli_cmd_folder_delete, .min_args = 1,
     .max_args = 1},
    {.name = "folder list", .args = "", .synopsis = "", .summary = "list the folders and their VMs",
     .run = cli_cmd_folder_list},

    /* --- storage policies --- */
    {.name = "policy list", .args = "", .synopsis = "", .summary = "list the storage policies",
     .run = cli_cmd_policy_list},
    {.name = "policy create", .args = "NAME", .synopsis = "--provider P",
     .summary = "create an encryption policy that uses key provider P",
     .run = cli_cmd_policy_create, .min_args = 1, .max_args = 1, .options = B(PROVIDER),
     .required = B(PROVIDER)},
    {.name = "policy delete", .args = "NAME", .synopsis = "",
     .summary = "delete a storage policy (not the built-in one)", .run = cli_cmd_policy_delete,
     .min_args = 1, .max_args = 1},

    /* --- the host --- */
    {.name = "host show", .args = "", .synopsis = "",
     .summary = "show the host and whether it is in encryption mode", .run = cli_cmd_host_show},
    {.name = "host enable-encryption", .args = "", .synopsis = "",
     .summary = "put the host in encryption mode (a host key from the default provider)",
     .help = "Happens by itself the first time an encrypted VM is created or registered here.\n"
             "Needs Cryptographer.RegisterHost.",
     .run = cli_cmd_host_enable_encryption},

    {.name = "help", .args = "[COMMAND]", .synopsis = "",
     .summary = "show the commands, or one command's help", .run = cli_cmd_help,
     .min_args = 0, .max_args = 3, .local = true},
};
/* clang-format on */

const size_t cli_command_count = sizeof(cli_commands) / sizeof(cli_commands[0]);

/* The groups `vmseal help` shows, by first word. */
static const struct {
    const char *word;
    const char *title; /* shared by consecutive words: one heading */
} cli_groups[] = {
    {"login", "Session"},
    {"logout", "Session"},
    {"whoami", "Session"},
    {"token", "Session"},
    {"user", "Users and groups"},
    {"role", "Roles and privileges"},
    {"privilege", "Roles and privileges"},
    {"permission", "Permissions"},
    {"folder", "Folders"},
    {"policy", "Storage policies"},
    {"kp", "Key providers"},
    {"host", "Host"},
    {"vm", "Virtual machines"},
    {"disk", "Disks"},
    {"key", "Keys"},
    {"task", "Tasks"},
    {"help", "Help"},
};

/* --- help --- */

/* "  vm create NAME [--disk SIZE]...   create a VM", the summary on a line
 * of its own when the synopsis is long. */
static void cli_print_line(FILE *f, const struct cli_command *c)
{
    enum { column = 32 };
    char left[160];
    int n = snprintf(left, sizeof(left), "%s%s%s%s%s", c->name, c->args[0] ? " " : "", c->args,
                     c->synopsis[0] ? " " : "", c->synopsis);
    if (n > column)
        fprintf(f, "  %s\n  %-*s %s\n", left, column, "", c->summary);
    else
        fprintf(f, "  %-*s %s\n", column, left, c->summary);
}

void cli_print_usage(FILE *f, const struct cli_command *c)
{
    fprintf(f, "usage: vmseal %s%s%s%s%s [--json] [--server URL | --socket PATH]\n", c->name,
            c->args[0] ? " " : "", c->args, c->synopsis[0] ? " " : "", c->synopsis);
}

static void cli_print_all(FILE *f, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *last_title = NULL;
    for (size_t g = 0; g < sizeof(cli_groups) / sizeof(cli_groups[0]); g++) {
        bool title = last_title != NULL && strcmp(last_title, cli_groups[g].title) == 0;
        size_t wlen = strlen(cli_groups[g].word);
        for (size_t k = 0; k < cli_command_count; k++) {
            const struct cli_command *c = &cli_commands[k];
            if (strncmp(c->name, cli_groups[g].word, wlen) != 0 ||
                (c->name[wlen] != ' ' && c->name[wlen] != '\0'))
                continue;
            if (plen > 0 && (strncmp(c->name, prefix, plen) != 0 || c->name[plen] != ' '))
                continue;
            if (!title)
                fprintf(f, "\n%s:\n", cli_groups[g].title);
            title = true;
            last_title = cli_groups[g].title;
            cli_print_line(f, c);
        }
    }
}

vs_result cli_print_help(FILE *f, const char *const *words, unsigned nwords)
{
    char name[128] = "";
    size_t n = 0;

    for (unsigned w = 0; w < nwords; w++) {
        int r = snprintf(name + n, sizeof(name) - n, "%s%s", w ? " " : "", words[w]);
        ENSURE(r >= 0 && (size_t)r < sizeof(name) - n, ERR_NOT_FOUND);
        n += (size_t)r;
    }
    if (nwords == 0) {
        fprintf(f, "usage: vmseal [--server https://HOST:PORT [--ca FILE] | --socket PATH] [--json]\n"
                   "              COMMAND [ARGS]\n"
                   "       vmseal --version\n\n"
                   "vmseal is the command-line client of vmseald, the vmseal management server:\n"
                   "over its local socket (vmseald knows you by your Unix user), or over HTTPS\n"
                   "with the token of `vmseal --server URL login`. Every command takes --json:\n"
                   "stdout then holds the JSON answer only.\n");
        cli_print_all(f, "");
        fprintf(f, "\nvmseal help COMMAND shows a command's options.\n");
        return OK_RESULT;
    }
    const struct cli_command *c = cli_command_find(name);
    if (c == NULL) {
        /* A group: "vm", "vm snapshot". */
        bool any = false;
        for (size_t k = 0; k < cli_command_count; k++)
            if (strncmp(cli_commands[k].name, name, n) == 0 && cli_commands[k].name[n] == ' ')
                any = true;
        if (!any) {
            vs_result rc = RAISE(ERR_NOT_FOUND);
            err_detail("no command '%s' (vmseal help lists them)", name);
            return rc;
        }
        fprintf(f, "usage: vmseal %s COMMAND [ARGS] [--json] [--server URL | --socket PATH]\n",
                name);
        cli_print_all(f, name);
        return OK_RESULT;
    }
    cli_print_usage(f, c);
    fprintf(f, "\n%s.\n", c->summary);
    if (c->help != NULL)
        fprintf(f, "\n%s\n", c->help);
    fprintf(f, "\noptions:\n");
    uint64_t opts = c->options | CLI_GLOBAL_OPTIONS;
    for (int id = 0; id < CLI_OPT_COUNT_; id++) {
        if (!((opts >> id) & 1))
            continue;
        char left[64];
        snprintf(left, sizeof(left), "%s%s%s", cli_options[id].spelling,
                 cli_options[id].metavar ? " " : "",
                 cli_options[id].metavar ? cli_options[id].metavar : "");
        fprintf(f, "  %-26s %s\n", left, cli_options[id].help);
    }
    return OK_RESULT;
}

/* --- shared by the commands --- */

vs_result cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
    vs_result rc = RAISE(ERR_INVALID_ARG);
    char detail[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    err_detail("%s", detail);
    ctx->usage_error = true;
    return rc;
}

vs_result cli_detail_prefix(const char *prefix)
{
    char why[sizeof(err_last()->detail)];
    snprintf(why, sizeof(why), "%s", err_last()->detail);
    return err_detail("%s: %s", prefix, why);
}

vs_result cli_usage_prefix(struct cli_ctx *ctx, const char *prefix)
{
    ctx->usage_error = true;
    return cli_detail_prefix(prefix);
}

vs_result cli_path(char *out, size_t size, size_t n, ...)
{
    const char *seg[8];
    va_list ap;

    ENSURE(n <= sizeof(seg) / sizeof(seg[0]), ERR_INVALID_ARG);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        seg[i] = va_arg(ap, const char *);
    va_end(ap);
    return cli_api_path(out, size, seg, n);
}

vs_result cli_emit_json(struct cli_ctx *ctx, const json_t *value)
{
    return cli_print_json(ctx->out, value);
}

json_t *cli_result_vm(json_t *result)
{
    json_t *vm;
    if (result == NULL || !json_is_object(result))
        return NULL;
    vm = json_object_get(result, "vm");
    if (json_is_object(vm))
        return vm;
    /* A bare vm object. */
    if (json_is_string(json_object_get(result, "name")) &&
        json_is_boolean(json_object_get(result, "encrypted")))
        return result;
    return NULL;
}

vs_result cli_report_vm_task(struct cli_ctx *ctx, json_t *result, const char *done)
{
    char safe[256], detail[256] = "";
    json_t *vm;

    if (ctx->json)
        return cli_emit_json(ctx, result);
    vm = cli_result_vm(result);
    if (vm != NULL) {
        json_t *encrypted;
        const char *provider = NULL;
        GUARD(cli_json_field(vm, "encrypted", CLI_JSON_BOOL, false, &encrypted));
        GUARD(cli_json_string(vm, "provider", true, &provider));
        if (json_is_true(encrypted))
            snprintf(detail, sizeof(detail), " (encrypted, provider %s)",
                     cli_sanitize(provider, safe, sizeof(safe)));
        else
            snprintf(detail, sizeof(detail), " (not encrypted)");
    }
    fprintf(ctx->out, "%s%s\n", cli_sanitize(done, safe, sizeof(safe)), detail);
    return OK_RESULT;
}

/* --- lists and simple calls --- */

/* Writes one cell of item for column c into out. */
vs_result cli_list_cell_text(const json_t *item, const struct cli_column *c, char *out,
                               size_t size)
{
    json_t *v;
    size_t k, used = 0;

    out[0] = '\0';
    switch (c->kind) {
    case CLI_COL_STRING:
        GUARD(cli_json_field(item, c->field, JSON_STRING, true, &v));
        snprintf(out, size, "%s",
                 v != NULL ? json_string_value(v) : (c->null_text ? c->null_text : "-"));
        return OK_RESULT;
    case CLI_COL_BOOL:
        GUARD(cli_json_field(item, c->field, CLI_JSON_BOOL, true, &v));
        snprintf(out, size, "%s", json_is_true(v) ? "yes" : "no");
        return OK_RESULT;
    case CLI_COL_JOIN:
    case CLI_COL_COUNT:
        GUARD(cli_json_field(item, c->field, JSON_ARRAY, true, &v));
        if (c->kind == CLI_COL_COUNT) {
            snprintf(out, size, "%zu", json_array_size(v));
            return OK_RESULT;
        }
        json_t *s;
        json_array_foreach(v, k, s)
        {
            if (!json_is_string(s)) {
                vs_result rc = RAISE(ERR_INVALID_ARG);
                err_detail("malformed answer from vmseald: field '%s' holds a %s", c->field,
                           "value that is not a string");
                return rc;
            }
            int w = snprintf(out + used, size - used, "%s%s", k ? "," : "", json_string_value(s));
            if (w < 0 || (size_t)w >= size - used)
                break; /* a long list is cut; --json has it whole */
            used += (size_t)w;
        }
        if (used == 0)
            snprintf(out, size, "-");
        return OK_RESULT;
    }
    BAIL(ERR_INTERNAL);
}

vs_result cli_list(struct cli_ctx *ctx, const char *path, const char *list_key,
                   const struct cli_column *columns, size_t ncolumns)
{
    enum { max_columns = 8 };
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *list, *item;
    struct cli_table *table = NULL;
    const char *headers[max_columns];
    char cells[max_columns][512];
    size_t i;

    ENSURE(ncolumns > 0 && ncolumns <= max_columns, ERR_INVALID_ARG);
    for (i = 0; i < ncolumns; i++)
        headers[i] = columns[i].header;
    GUARD_OUT(cli_api_call(ctx, "GET", path, NULL, 0, &answer));
    GUARD_OUT(cli_json_field(answer, list_key, JSON_ARRAY, false, &list));
    GUARD_OUT(cli_table_new(ncolumns, headers, &table));
    json_array_foreach(list, i, item)
    {
        const char *row[max_columns];
        for (size_t c = 0; c < ncolumns; c++) {
            GUARD_OUT(cli_list_cell_text(item, &columns[c], cells[c], sizeof(cells[c])));
            row[c] = cells[c];
        }
        GUARD_OUT(cli_table_add(table, row));
    }
    if (ctx->json)
        GUARD_OUT(cli_emit_json(ctx, answer));
    else
        cli_table_print(table, ctx->out);
out:
    cli_table_free(&table);
    json_decref(answer);
    return rc;
}

vs_result cli_call_and_say(struct cli_ctx *ctx, const char *method, const char *path,
                           const json_t *body, unsigned flags, const char *key, const char *said,
                           json_t **answer_out)
{
    vs_result rc = OK_RESULT;
    json_t *answer = NULL, *value = NULL;

    if (answer_out != NULL)
        *answer_out = NULL;
    GUARD_OUT(cli_api_call(ctx, method, path, body, flags, &answer));
    if (key != NULL)
        GUARD_OUT(cli_json_field(answer, key, CLI_JSON_ANY, false, &value));
    if (ctx->json) {
        GUARD_OUT(cli_emit_json(ctx, value != NULL ? value : answer));
    } else {
        char safe[1024];
        fprintf(ctx->out, "%s\n", cli_sanitize(said, safe, sizeof(safe)));
    }
    if (answer_out != NULL) {
        *answer_out = answer;
        answer = NULL;
    }
out:
    json_decref(answer);
    return rc;
}

vs_result cli_body_check(struct cli_ctx *ctx, const json_t *body)
{
    if (body == NULL)
        return cli_usage_error(ctx, "an argument is not valid UTF-8 text");
    return OK_RESULT;
}
