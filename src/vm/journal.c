/* journal.c - see journal.h. */
#include "vm/journal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/file.h"

#define JOURNAL_MAX_BYTES 16384

RESULT vm_journal_write(const char *datastore, const char *name, const struct vm_journal *j)
{
    char path[VM_PATH_MAX];
    GUARD(vm_path(path, sizeof path, "%s/%s/journal", datastore, name));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "op", j->op, "started", j->started,
                          "snapshot", j->snapshot, "merge_from", j->merge_from, "merge_into",
                          j->merge_into, "disk", (int)j->disk);
    ENSURE(o != NULL, ERR_NOMEM);
    if (j->has_generation &&
        json_object_set_new(o, "generation", json_integer((json_int_t)j->generation)) != 0) {
        json_decref(o);
        BAIL(ERR_NOMEM);
    }
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2));
    json_decref(o);
    ENSURE(text != NULL, ERR_NOMEM);
    vs_result rc = file_write_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

static RESULT copy_str(json_t *o, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        RAISE(ERR_JOURNAL);
        return err_detail("journal field '%s' is missing or invalid", key);
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return OK_RESULT;
}

RESULT vm_journal_read(const char *datastore, const char *name, struct vm_journal *j)
{
    vs_result rc = OK_RESULT;
    char path[VM_PATH_MAX];
    struct buf b = {0};
    json_t *o = NULL;
    json_error_t jerr;

    memset(j, 0, sizeof *j);
    GUARD(vm_path(path, sizeof path, "%s/%s/journal", datastore, name));
    GUARD(buf_alloc(&b, 1024, JOURNAL_MAX_BYTES));
    rc = file_read_all(path, JOURNAL_MAX_BYTES, &b);
    if (rc.code == ERR_TOO_LARGE) {
        /* Never written so by vmseald: damaged, like any malformed one. */
        rc = RAISE(ERR_JOURNAL);
        err_detail("the journal of VM '%s' is larger than %d bytes", name, JOURNAL_MAX_BYTES);
    }
    GUARD_OUT(rc);
    o = json_loadb((const char *)buf_data(&b), buf_len(&b), JSON_REJECT_DUPLICATES, &jerr);
    /* Six fields, and "generation" from the vmseald that records it. */
    json_t *generation = o != NULL ? json_object_get(o, "generation") : NULL;
    if (o == NULL || !json_is_object(o) ||
        json_object_size(o) != (generation != NULL ? 7u : 6u)) {
        rc = RAISE(ERR_JOURNAL);
        err_detail("the journal of VM '%s' is malformed", name);
        goto out;
    }
    GUARD_OUT(copy_str(o, "op", j->op, sizeof j->op));
    GUARD_OUT(copy_str(o, "started", j->started, sizeof j->started));
    GUARD_OUT(copy_str(o, "snapshot", j->snapshot, sizeof j->snapshot));
    GUARD_OUT(copy_str(o, "merge_from", j->merge_from, sizeof j->merge_from));
    GUARD_OUT(copy_str(o, "merge_into", j->merge_into, sizeof j->merge_into));
    /* What recovery acts on: an operation name ("snapshot-delete"), the
     * time it started, and a snapshot name when there is one. */
    bool op_ok = j->op[0] != '\0';
    for (const char *p = j->op; *p != '\0'; p++)
        op_ok = op_ok && ((*p >= 'a' && *p <= 'z') || *p == '-');
    if (!op_ok || !vm_is_time(j->started) ||
        (j->snapshot[0] != '\0' && !is_ok(vm_check_name("snapshot", j->snapshot)))) {
        rc = RAISE(ERR_JOURNAL);
        err_detail("the journal of VM '%s' names an invalid operation, time or snapshot", name);
        goto out;
    }
    json_t *disk = json_object_get(o, "disk");
    if (!json_is_integer(disk) || json_integer_value(disk) < 0 ||
        json_integer_value(disk) >= VM_MAX_DISKS) {
        rc = RAISE(ERR_JOURNAL);
        err_detail("journal field 'disk' is invalid");
        goto out;
    }
    j->disk = (unsigned)json_integer_value(disk);
    if (generation != NULL) {
        if (!json_is_integer(generation) || json_integer_value(generation) < 0 ||
            (uint64_t)json_integer_value(generation) >= VM_DESC_COUNTER_MAX) {
            rc = RAISE(ERR_JOURNAL);
            err_detail("journal field 'generation' is invalid");
            goto out;
        }
        j->generation = (uint64_t)json_integer_value(generation);
        j->has_generation = true;
    }
out:
    json_decref(o);
    buf_free(&b);
    return rc;
}

RESULT vm_journal_remove(const char *datastore, const char *name)
{
    char path[VM_PATH_MAX], dir[VM_PATH_MAX];
    GUARD(vm_path(path, sizeof path, "%s/%s/journal", datastore, name));
    GUARD(vm_path(dir, sizeof dir, "%s/%s", datastore, name));
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return OK_RESULT;
        RAISE(ERR_IO);
        return err_errno(errno);
    }
    return file_fsync_dir(dir);
}
