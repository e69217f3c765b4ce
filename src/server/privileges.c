/*
 * privileges.c - THE table: which privileges each operation of vmseald's
 * API needs, on which object, and when (authz.h). The API layer names an
 * operation and the facts of the request; authz_require_op checks the rows
 * below in order and names the first privilege missing. docs/privileges.md
 * prints this table (authz_table_markdown; tests/unit/test_server_authz.c
 * keeps the two equal).
 *
 * The privileges are vSphere's (vSphere Security, "Defined Privileges",
 * "Cryptographic Operations Privileges"), so that a vCenter administrator
 * reads the same names. Objects: VM is the VM of the route (the source of
 * a clone); PARENT is the target the API passes (where a new or moved VM
 * goes, or a permission's object); ROOT is "/".
 *
 * Adding an operation: add its rows here, grouped, with a comment; run the
 * authz unit test with VMSEAL_WRITE_DOCS=1 to regenerate the docs.
 */
#include "server/authz.h"

/* clang-format off */
#define ROW(op, cond, obj, p) {op, COND_##cond, OBJ_##obj, PRIV_##p}

const struct op_rule op_rules[] = {
    /* --- VMs ------------------------------------------------------------ */

    /* Seeing a VM: GET /v1/vms filters the list with one check per VM. */
    ROW("vm.list", ALWAYS, VM, SYSTEM_READ),
    ROW("vm.read", ALWAYS, VM, SYSTEM_READ),

    /* A new VM goes into a folder or the root; encrypting it, putting the
     * host into encryption mode and importing an image from a host file
     * each need their own privilege. */
    ROW("vm.create", ALWAYS, PARENT, VM_INVENTORY_CREATE),
    ROW("vm.create", ALWAYS, PARENT, VM_CONFIG_ADD_NEW_DISK),
    ROW("vm.create", ENCRYPTS, PARENT, CRYPTO_ENCRYPT_NEW),
    ROW("vm.create", HOST_NOT_SAFE, ROOT, CRYPTO_REGISTER_HOST),
    ROW("vm.create", HOST_PATH, ROOT, DATASTORE_FILE_MANAGEMENT),

    ROW("vm.delete", ALWAYS, VM, VM_INVENTORY_DELETE),

    /* Encryption, decryption, new keys. */
    ROW("vm.encrypt", ALWAYS, VM, CRYPTO_ENCRYPT),
    ROW("vm.encrypt", HOST_NOT_SAFE, ROOT, CRYPTO_REGISTER_HOST),
    ROW("vm.decrypt", ALWAYS, VM, CRYPTO_DECRYPT),
    ROW("vm.rekey", ALWAYS, VM, CRYPTO_RECRYPT),

    /* A clone: Clone or DeployTemplate on the source, Create where the copy
     * goes, and for an encrypted source or result the crypto privilege of
     * the clone's mode. */
    ROW("vm.clone", VM_NOT_TEMPLATE, VM, VM_PROVISIONING_CLONE),
    ROW("vm.clone", VM_TEMPLATE, VM, VM_PROVISIONING_DEPLOY_TEMPLATE),
    ROW("vm.clone", ALWAYS, PARENT, VM_INVENTORY_CREATE),
    ROW("vm.clone", VM_ENCRYPTED, VM, CRYPTO_CLONE),
    ROW("vm.clone", ENCRYPTS, VM, CRYPTO_ENCRYPT),
    ROW("vm.clone", HOST_NOT_SAFE, ROOT, CRYPTO_REGISTER_HOST),
    ROW("vm.clone", DECRYPTS, VM, CRYPTO_DECRYPT),
    ROW("vm.clone", RECRYPTS, VM, CRYPTO_RECRYPT),

    /* Template flag: on (template: true) or off. */
    ROW("vm.template", ON, VM, VM_PROVISIONING_MARK_AS_TEMPLATE),
    ROW("vm.template", OFF, VM, VM_PROVISIONING_MARK_AS_VM),

    /* Disks: a new disk of an encrypted VM is encrypted too; an export
     * writes a host file and, from an encrypted VM, reads data in clear;
     * the break-glass secret of a disk is a key in clear. */
    ROW("vm.disk.add", ALWAYS, VM, VM_CONFIG_ADD_NEW_DISK),
    ROW("vm.disk.add", VM_ENCRYPTED, VM, CRYPTO_ADD_DISK),
    ROW("vm.disk.export", ALWAYS, VM, VM_PROVISIONING_DISK_RANDOM_READ),
    ROW("vm.disk.export", VM_ENCRYPTED, VM, CRYPTO_ACCESS),
    ROW("vm.disk.export", ALWAYS, ROOT, DATASTORE_FILE_MANAGEMENT),
    ROW("vm.disk.secret", ALWAYS, VM, CRYPTO_ACCESS),
    ROW("vm.disk.secret", ALWAYS, ROOT, CRYPTO_MANAGE_KEYS),
    ROW("vm.disk.secret", ALWAYS, ROOT, DATASTORE_FILE_MANAGEMENT),

    /* A storage policy applied to a VM or a disk: it may encrypt or
     * decrypt. */
    ROW("vm.policy", ALWAYS, VM, STORAGE_PROFILE_APPLY),
    ROW("vm.policy", ENCRYPTS, VM, CRYPTO_ENCRYPT),
    ROW("vm.policy", HOST_NOT_SAFE, ROOT, CRYPTO_REGISTER_HOST),
    ROW("vm.policy", DECRYPTS, VM, CRYPTO_DECRYPT),

    /* Move to another folder: PARENT is the destination. */
    ROW("vm.move", ALWAYS, VM, VM_INVENTORY_MOVE),
    ROW("vm.move", ALWAYS, PARENT, VM_INVENTORY_CREATE),

    /* Snapshots and power. */
    ROW("vm.snapshot.create", ALWAYS, VM, VM_STATE_CREATE_SNAPSHOT),
    ROW("vm.snapshot.delete", ALWAYS, VM, VM_STATE_REMOVE_SNAPSHOT),
    ROW("vm.snapshot.revert", ALWAYS, VM, VM_STATE_REVERT_TO_SNAPSHOT),
    ROW("vm.power_on", ALWAYS, VM, VM_INTERACT_POWER_ON),
    ROW("vm.power_off", ALWAYS, VM, VM_INTERACT_POWER_OFF),

    /* --- key providers and keys ------------------------------------------ */

    /* provider.manage: add, remove, set default, servers, trust, client
     * certificates, restore. A backup carries the provider's keys. */
    ROW("provider.list", ALWAYS, ROOT, CRYPTO_READ_KEY_SERVERS),
    ROW("provider.manage", ALWAYS, ROOT, CRYPTO_MANAGE_KEY_SERVERS),
    ROW("provider.backup", ALWAYS, ROOT, CRYPTO_MANAGE_KEY_SERVERS),
    ROW("provider.backup", ALWAYS, ROOT, CRYPTO_MANAGE_KEYS),
    ROW("key.list", ALWAYS, ROOT, CRYPTO_MANAGE_KEYS),
    ROW("key.destroy", ALWAYS, ROOT, CRYPTO_MANAGE_KEYS),

    /* --- the host and storage policies ------------------------------------ */

    ROW("host.read", ALWAYS, ROOT, SYSTEM_READ),
    ROW("host.encryption", ALWAYS, ROOT, CRYPTO_REGISTER_HOST),
    ROW("policy.list", ALWAYS, ROOT, STORAGE_PROFILE_VIEW),
    ROW("policy.manage", ALWAYS, ROOT, STORAGE_PROFILE_UPDATE),
    ROW("policy.manage", ALWAYS, ROOT, CRYPTO_MANAGE_POLICY),

    /* --- users, roles, permissions, folders -------------------------------- */

    /* Reading who may do what. */
    ROW("user.list", ALWAYS, ROOT, SYSTEM_VIEW),
    ROW("role.list", ALWAYS, ROOT, SYSTEM_VIEW),
    ROW("permission.list", ALWAYS, ROOT, SYSTEM_VIEW),
    ROW("folder.list", ALWAYS, ROOT, SYSTEM_VIEW),

    /* Changing it. No escalation: the API also requires every privilege of
     * the role being created or granted (authz_require_all). A permission
     * is checked on its own object (PARENT). */
    ROW("user.manage", ALWAYS, ROOT, AUTHORIZATION_MODIFY_USERS),
    ROW("role.manage", ALWAYS, ROOT, AUTHORIZATION_MODIFY_ROLES),
    ROW("permission.manage", ALWAYS, PARENT, AUTHORIZATION_MODIFY_PERMISSIONS),
    ROW("folder.manage", ALWAYS, ROOT, FOLDER_CREATE),
    ROW("folder.delete", ALWAYS, ROOT, FOLDER_DELETE),

    /* --- other users' sessions and tasks ----------------------------------- */

    /* One's own tokens and tasks need nothing; other users' do. A task is
     * checked on its VM. */
    ROW("session.list_all", ALWAYS, ROOT, SESSIONS_TERMINATE),
    ROW("session.revoke_other", ALWAYS, ROOT, SESSIONS_TERMINATE),
    ROW("task.read_other", ALWAYS, VM, SYSTEM_READ),
    ROW("task.cancel_other", ALWAYS, VM, GLOBAL_CANCEL_TASK),
};
/* clang-format on */

const size_t op_rule_count = sizeof op_rules / sizeof op_rules[0];
