/*
 * journal.h - the intent log of the operation in progress on one VM,
 * DATASTORE/NAME/journal.
 *
 * Every multi-step operation writes its intent here (atomically) before it
 * creates or changes any file, and removes it when done. vm.json is the
 * commit point: on the next start of vmseald, a journal found next to a
 * VM means the operation was interrupted, and recovery (vm.h,
 * vm_host_recover) rolls it back or forward:
 *
 *  - operations that only create new files and then replace vm.json
 *    (encrypt, decrypt, deep and shallow rekey, clone, snapshot create and
 *    revert, add disk) roll back if vm.json does not reference their new
 *    files yet, forward otherwise; both amount to removing every file of
 *    the VM's directory that vm.json does not reference;
 *  - operations that change a file in place (snapshot delete merges a layer
 *    into its parent) record what they merge and are rolled forward: the
 *    merge is repeated (it is idempotent) and the operation completed.
 */
#ifndef VMSEAL_VM_JOURNAL_H
#define VMSEAL_VM_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/result.h"
#include "vm/descriptor.h"

#define VM_JOURNAL_OP_MAX 32

struct vm_journal {
    char op[VM_JOURNAL_OP_MAX];     /* "encrypt", "snapshot-delete", ... */
    char started[VM_TIME_LEN];
    char snapshot[VM_NAME_MAX];     /* snapshot-delete: the snapshot */
    char merge_from[VM_LAYER_ID_MAX]; /* snapshot-delete: the child layer merged... */
    char merge_into[VM_LAYER_ID_MAX]; /* ...into this one */
    unsigned disk;                  /* snapshot-delete: which disk (one journal per disk step) */
    /* The generation of vm.json when the operation began (0: there was none,
     * a create or clone): recovery rolled the operation forward if vm.json's
     * generation is higher, back otherwise. A journal written by a vmseald
     * that did not record it has has_generation false. */
    uint64_t generation;
    bool has_generation;
};

/* Writes DATASTORE/NAME/journal atomically. */
RESULT vm_journal_write(const char *datastore, const char *name, const struct vm_journal *j)
    __attribute__((nonnull));

/* Reads it: ERR_NOT_FOUND when there is none; ERR_JOURNAL when it is
 * malformed (strict, like the descriptor). */
RESULT vm_journal_read(const char *datastore, const char *name, struct vm_journal *j)
    __attribute__((nonnull));

/* Removes it (and fsyncs the directory); no error if absent. */
RESULT vm_journal_remove(const char *datastore, const char *name) __attribute__((nonnull));

#endif
