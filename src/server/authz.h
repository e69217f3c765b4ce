/*
 * authz.h - what a caller may do: privileges (vSphere's names), roles
 * (named sets of privileges), permissions (a user or group holds a role on
 * an inventory object, propagating to its children), folders, and the one
 * table that says which privileges each operation needs (privileges.c,
 * printed into docs/privileges.md by authz_table_markdown; the unit test
 * tests/unit/test_server_authz.c checks the copy, and rewrites it when run
 * with VMSEAL_WRITE_DOCS=1).
 *
 * Inventory objects are named by paths:
 *   "/"             the root (the host): providers, keys, users, roles
 *   "folder/NAME"   a folder; its parent is "/"
 *   "vm/NAME"       a VM; its parent is its folder, or "/"
 *
 * Resolution (vSphere's rules): for a subject and an object, walk from the
 * object up to "/". At the first object carrying a permission that applies
 * (a permission on the object itself, or a propagating one on an
 * ancestor), permissions naming the user directly win over group ones; the
 * subject holds the union of the privileges of those roles. No permission
 * anywhere: nothing. The subject "root" (uid 0 on the local socket) holds
 * every privilege everywhere.
 *
 * No escalation: setting a permission, or creating a role, needs
 * Authorization.ModifyPermissions / ModifyRoles and also every privilege
 * the role carries, on that object (authz_require_all).
 */
#ifndef VMSEAL_SERVER_AUTHZ_H
#define VMSEAL_SERVER_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/result.h"
#include "server/auth.h"
#include "server/store.h"

/* X(ENUM, "Name", "what it allows"). */
#define VS_PRIVILEGES(X)                                                                      \
    X(CRYPTO_ACCESS, "Cryptographer.Access", "read an encrypted VM's data in clear (export a disk, break-glass secrets)") \
    X(CRYPTO_ADD_DISK, "Cryptographer.AddDisk", "add a disk to an encrypted VM")                 \
    X(CRYPTO_CLONE, "Cryptographer.Clone", "clone an encrypted VM")                               \
    X(CRYPTO_DECRYPT, "Cryptographer.Decrypt", "decrypt a VM or a disk")                          \
    X(CRYPTO_ENCRYPT, "Cryptographer.Encrypt", "encrypt a VM or a disk")                          \
    X(CRYPTO_ENCRYPT_NEW, "Cryptographer.EncryptNew", "create an encrypted VM")                   \
    X(CRYPTO_MANAGE_POLICY, "Cryptographer.ManageEncryptionPolicy", "create and delete encryption storage policies") \
    X(CRYPTO_MANAGE_KEY_SERVERS, "Cryptographer.ManageKeyServers", "add, configure and remove key providers") \
    X(CRYPTO_MANAGE_KEYS, "Cryptographer.ManageKeys", "list and destroy keys")                    \
    X(CRYPTO_MIGRATE, "Cryptographer.Migrate", "migrate an encrypted VM to another host")        \
    X(CRYPTO_READ_KEY_SERVERS, "Cryptographer.ReadKeyServersInfo", "see key providers and their health") \
    X(CRYPTO_RECRYPT, "Cryptographer.Recrypt", "rekey a VM, or clone it to new keys")             \
    X(CRYPTO_REGISTER_HOST, "Cryptographer.RegisterHost", "put the host in encryption mode")      \
    X(CRYPTO_REGISTER_VM, "Cryptographer.RegisterVM", "register an encrypted VM on the host")     \
    X(SYSTEM_VIEW, "System.View", "see users, roles, permissions and folders")                    \
    X(SYSTEM_READ, "System.Read", "see an object and its tasks")                                  \
    X(VM_INVENTORY_CREATE, "VirtualMachine.Inventory.Create", "create a VM in a folder or the root") \
    X(VM_INVENTORY_DELETE, "VirtualMachine.Inventory.Delete", "delete a VM")                      \
    X(VM_INVENTORY_REGISTER, "VirtualMachine.Inventory.Register", "register a VM")                \
    X(VM_INVENTORY_MOVE, "VirtualMachine.Inventory.Move", "move a VM to another folder")          \
    X(VM_PROVISIONING_CLONE, "VirtualMachine.Provisioning.Clone", "clone a VM")                   \
    X(VM_PROVISIONING_DEPLOY_TEMPLATE, "VirtualMachine.Provisioning.DeployTemplate", "clone a VM from a template") \
    X(VM_PROVISIONING_MARK_AS_TEMPLATE, "VirtualMachine.Provisioning.MarkAsTemplate", "mark a VM as a template") \
    X(VM_PROVISIONING_MARK_AS_VM, "VirtualMachine.Provisioning.MarkAsVM", "turn a template back into a VM") \
    X(VM_PROVISIONING_DISK_RANDOM_READ, "VirtualMachine.Provisioning.DiskRandomRead", "read a disk's contents (export)") \
    X(VM_INTERACT_POWER_ON, "VirtualMachine.Interact.PowerOn", "power a VM on")                   \
    X(VM_INTERACT_POWER_OFF, "VirtualMachine.Interact.PowerOff", "power a VM off")                \
    X(VM_STATE_CREATE_SNAPSHOT, "VirtualMachine.State.CreateSnapshot", "take a snapshot")         \
    X(VM_STATE_REMOVE_SNAPSHOT, "VirtualMachine.State.RemoveSnapshot", "delete (consolidate) a snapshot") \
    X(VM_STATE_REVERT_TO_SNAPSHOT, "VirtualMachine.State.RevertToSnapshot", "revert to a snapshot") \
    X(VM_CONFIG_ADD_NEW_DISK, "VirtualMachine.Config.AddNewDisk", "add a new disk")               \
    X(VM_CONFIG_SETTINGS, "VirtualMachine.Config.Settings", "change a VM's settings")             \
    X(STORAGE_PROFILE_VIEW, "StorageProfile.View", "see storage policies")                        \
    X(STORAGE_PROFILE_UPDATE, "StorageProfile.Update", "create and delete storage policies")      \
    X(STORAGE_PROFILE_APPLY, "StorageProfile.Apply", "apply a storage policy to a VM or disk")    \
    X(DATASTORE_FILE_MANAGEMENT, "Datastore.FileManagement", "read or write host files named in a request (import, export)") \
    X(FOLDER_CREATE, "Folder.Create", "create a folder")                                          \
    X(FOLDER_DELETE, "Folder.Delete", "delete a folder")                                          \
    X(AUTHORIZATION_MODIFY_ROLES, "Authorization.ModifyRoles", "create and delete roles")         \
    X(AUTHORIZATION_MODIFY_PERMISSIONS, "Authorization.ModifyPermissions", "set and remove permissions") \
    X(AUTHORIZATION_MODIFY_USERS, "Authorization.ModifyUsers", "create and delete users and groups (vmseal's own)") \
    X(SESSIONS_TERMINATE, "Sessions.TerminateSession", "list and revoke other users' tokens")     \
    X(GLOBAL_CANCEL_TASK, "Global.CancelTask", "cancel other users' tasks")

enum priv {
#define VS_PRIV_ENUM(e, name, what) PRIV_##e,
    VS_PRIVILEGES(VS_PRIV_ENUM)
#undef VS_PRIV_ENUM
        PRIV_COUNT
};

/* "Cryptographer.Access"; never NULL for p < PRIV_COUNT. */
const char *priv_name(enum priv p);
const char *priv_description(enum priv p);
/* ERR_INVALID_ARG ("unknown privilege 'X'") unless name is one of them. */
RESULT priv_parse(const char *name, enum priv *out) __attribute__((nonnull));

/* Built-in roles. */
#define AUTHZ_ROLE_ADMIN "Administrator"
#define AUTHZ_ROLE_READ_ONLY "Read-only"
#define AUTHZ_ROLE_NO_CRYPTO "No cryptography administrator"
#define AUTHZ_ROLE_NAME_MAX 64 /* 1-63 printable ASCII, spaces allowed, no leading/trailing space */

/* Who asks. root: the local administrator (every privilege). */
struct authz_subject {
    const char *user;
    const char (*groups)[AUTH_NAME_MAX];
    size_t group_count;
    bool root;
};

struct authz;

/* Creates the tables if missing and writes the built-in roles. The store
 * must outlive the authz (close the authz first). */
RESULT authz_open(struct store *st, struct authz **out) __attribute__((nonnull));
void authz_close(struct authz **z);

/* Roles. Built-in ones cannot be changed or deleted (ERR_PERM with a
 * detail); a role in use by a permission cannot be deleted (ERR_BUSY). */
RESULT authz_role_create(struct authz *z, const char *name, const enum priv *privs, size_t n)
    __attribute__((nonnull));
RESULT authz_role_delete(struct authz *z, const char *name) __attribute__((nonnull));
/* {"roles": [{"name", "builtin", "privileges": [names]}]}: built-in first. */
RESULT authz_role_list(struct authz *z, json_t **out) __attribute__((nonnull));
/* The privileges of a role (ERR_NOT_FOUND). */
RESULT authz_role_privileges(struct authz *z, const char *name, bool privs[PRIV_COUNT])
    __attribute__((nonnull));

/* Permissions: one per (principal, group flag, object); setting again
 * replaces the role. A folder object must exist (ERR_NOT_FOUND); VMs are
 * the API's to know, so any valid "vm/NAME" is accepted. Names follow
 * vm_check_name; the user "root" takes no permission (ERR_INVALID_ARG). */
RESULT authz_permission_set(struct authz *z, const char *principal, bool group,
                            const char *role, const char *object, bool propagate)
    __attribute__((nonnull));
RESULT authz_permission_remove(struct authz *z, const char *principal, bool group,
                               const char *object) __attribute__((nonnull));
/* {"permissions": [{"principal", "group", "role", "object", "propagate"}]}. */
RESULT authz_permission_list(struct authz *z, json_t **out) __attribute__((nonnull));
/* Drops every permission of a deleted user/group, or on a deleted object
 * (for "vm/NAME", also the VM's folder placement; "/" is refused). */
RESULT authz_forget_principal(struct authz *z, const char *principal, bool group)
    __attribute__((nonnull));
RESULT authz_forget_object(struct authz *z, const char *object) __attribute__((nonnull));

/* Folders (one level under the root). A folder with VMs cannot be deleted
 * (ERR_BUSY); deleting one drops the permissions on it. The list is
 * {"folders": [{"name", "vms": [names]}]}. */
RESULT authz_folder_create(struct authz *z, const char *name) __attribute__((nonnull));
RESULT authz_folder_delete(struct authz *z, const char *name) __attribute__((nonnull));
RESULT authz_folder_list(struct authz *z, json_t **out) __attribute__((nonnull));
/* Places a VM in a folder (NULL: the root), or reads where it is ("" for
 * the root). ERR_NOT_FOUND for an unknown folder. */
RESULT authz_vm_set_folder(struct authz *z, const char *vm, const char *folder)
    __attribute__((nonnull(1, 2)));
RESULT authz_vm_folder(struct authz *z, const char *vm, char folder[AUTH_NAME_MAX])
    __attribute__((nonnull));

/* The parent of an object path ("vm/x" -> "folder/f" or "/"); "/" has none. */
RESULT authz_parent(struct authz *z, const char *object, char *out, size_t size)
    __attribute__((nonnull));

/* Does s hold p on object? */
RESULT authz_has(struct authz *z, const struct authz_subject *s, const char *object,
                 enum priv p, bool *out) __attribute__((nonnull));
/* ERR_FORBIDDEN with detail "user 'bob' lacks privilege Cryptographer.Decrypt
 * on vm/web1" unless s holds p on object. */
RESULT authz_require(struct authz *z, const struct authz_subject *s, const char *object,
                     enum priv p) __attribute__((nonnull));
/* Every privilege set in privs (first missing one named). */
RESULT authz_require_all(struct authz *z, const struct authz_subject *s, const char *object,
                         const bool privs[PRIV_COUNT]) __attribute__((nonnull));

/* --- the operation table (privileges.c) ---------------------------------- */

/* When a row applies. */
enum op_cond {
    COND_ALWAYS,
    COND_VM_ENCRYPTED,   /* the VM (the source, for a clone) is encrypted */
    COND_VM_TEMPLATE,    /* the source VM is a template */
    COND_VM_NOT_TEMPLATE,
    COND_ENCRYPTS,       /* the result is encrypted and the input was not (create encrypted, encrypt, clone mode encrypt, policy) */
    COND_DECRYPTS,       /* clone mode decrypt, decrypt, policy none */
    COND_RECRYPTS,       /* clone mode recrypt, rekey */
    COND_HOST_NOT_SAFE,  /* the operation encrypts and the host is not in encryption mode yet */
    COND_HOST_PATH,      /* the request names a file on the host */
    COND_ON,             /* the request turns a flag on (template: true) */
    COND_OFF,
};

/* Which object a row checks. */
enum op_object {
    OBJ_VM,     /* the VM of the route (the source of a clone) */
    OBJ_PARENT, /* the parent argument: where a new or moved VM goes ("/" or
                   "folder/F"), or the object of a permission; NULL: the VM's parent */
    OBJ_ROOT,
};

struct op_rule {
    const char *operation; /* "vm.clone" */
    enum op_cond cond;
    enum op_object object;
    enum priv priv;
};

extern const struct op_rule op_rules[];
extern const size_t op_rule_count;

/* The facts of one request that the conditions look at. */
struct op_facts {
    bool vm_encrypted, vm_template, encrypts, decrypts, recrypts, host_safe, host_path, on;
};

/* Checks every row of operation whose condition holds. vm: the VM's name
 * (NULL when the operation has none); parent: where a new VM goes ("/" or
 * "folder/F"; NULL: the VM's parent). ERR_INVALID_ARG for an operation
 * with no rows (a bug: every operation has at least one). */
RESULT authz_require_op(struct authz *z, const struct authz_subject *s, const char *operation,
                        const char *vm, const char *parent, const struct op_facts *f)
    __attribute__((nonnull(1, 2, 3, 6)));

/* The table as Markdown (docs/privileges.md's generated part): a new
 * string (free it), or NULL when out of memory. */
char *authz_table_markdown(void);

#endif
