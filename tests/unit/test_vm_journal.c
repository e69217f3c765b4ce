/*
 * Tests of the VM journal (src/vm/journal.c), what recovery reads after a
 * crash to decide what to roll back or forward: a round trip, every way a
 * journal can be malformed (refused with ERR_JOURNAL, never half-read), and
 * removal that may be repeated.
 */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/file.h"
#include "vm/journal.h"

static char ds[64];

static int setup(void **state)
{
    char p[128];
    (void)state;
    snprintf(ds, sizeof ds, "/tmp/vmseal-test-vmjournal-XXXXXX");
    if (mkdtemp(ds) == NULL)
        return -1;
    snprintf(p, sizeof p, "%s/web1", ds);
    return mkdir(p, 0700);
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", ds);
    return system(cmd) == 0 ? 0 : -1;
}

static void journal_path(char *out, size_t n)
{
    snprintf(out, n, "%s/web1/journal", ds);
}

static void write_raw(const char *text, size_t len)
{
    char p[128];
    journal_path(p, sizeof p);
    assert_ok(file_write_atomic(p, text, len, 0600));
}

static const struct vm_journal sample = {
    .op = "snapshot-delete",
    .started = "2026-11-23T10:00:00Z",
    .snapshot = "s1",
    .merge_from = "l7",
    .merge_into = "l3",
    .disk = 15,
};

static void test_round_trip(void **state)
{
    struct vm_journal j;
    struct stat st;
    char p[128];
    (void)state;
    assert_ok(vm_journal_write(ds, "web1", &sample));
    journal_path(p, sizeof p);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    memset(&j, 0xa5, sizeof j);
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_string_equal(j.op, sample.op);
    assert_string_equal(j.started, sample.started);
    assert_string_equal(j.snapshot, sample.snapshot);
    assert_string_equal(j.merge_from, sample.merge_from);
    assert_string_equal(j.merge_into, sample.merge_into);
    assert_int_equal(j.disk, sample.disk);

    /* The journal of an operation that names no snapshot. */
    struct vm_journal plain = {.op = "encrypt", .started = "2026-11-23T10:00:00Z"};
    assert_ok(vm_journal_write(ds, "web1", &plain));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_string_equal(j.op, "encrypt");
    assert_string_equal(j.snapshot, "");
    assert_int_equal(j.disk, 0);
}

/* The sample's text with one member set to a JSON value (NULL removes it;
 * a new member is added). */
static char *sample_with(const char *key, const char *value)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "op", sample.op, "started",
                          sample.started, "snapshot", sample.snapshot, "merge_from",
                          sample.merge_from, "merge_into", sample.merge_into, "disk", 3);
    assert_non_null(o);
    if (key != NULL) {
        if (value == NULL) {
            assert_int_equal(json_object_del(o, key), 0);
        } else {
            json_t *v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            if (v == NULL)
                fail_msg("bad test value %s", value);
            assert_int_equal(json_object_set_new(o, key, v), 0);
        }
    }
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    return text;
}

static void assert_malformed(const char *text, size_t len)
{
    struct vm_journal j;
    write_raw(text, len);
    vs_result r = vm_journal_read(ds, "web1", &j);
    if (r.code != ERR_JOURNAL)
        fail_msg("journal %.200s: expected ERR_JOURNAL, got %s", text, err_name(r.code));
    assert_non_null(strstr(err_last()->detail, "journal"));
}

static void test_malformed(void **state)
{
    static const struct {
        const char *key, *value;
    } edits[] = {
        /* extra and missing fields */
        {"extra", "1"},
        {"Op", "\"encrypt\""},
        {"op", NULL},
        {"started", NULL},
        {"snapshot", NULL},
        {"merge_from", NULL},
        {"merge_into", NULL},
        {"disk", NULL},
        /* wrong types */
        {"op", "1"},
        {"op", "null"},
        {"op", "true"},
        {"op", "[\"encrypt\"]"},
        {"started", "0"},
        {"snapshot", "null"},
        {"snapshot", "{}"},
        {"merge_from", "3"},
        {"merge_into", "false"},
        {"disk", "\"1\""},
        {"disk", "1.0"},
        {"disk", "null"},
        {"disk", "true"},
        /* out of range: VM_MAX_DISKS disks, indices 0..15 */
        {"disk", "-1"},
        {"disk", "16"},
        {"disk", "4294967296"},
        {"disk", "9223372036854775807"},
        /* overlong strings */
        {"op", "\"0123456789012345678901234567890a\""}, /* 32 */
        {"started", "\"2026-11-23T10:00:00Z0\""},
        {"snapshot", "\"0123456789012345678901234567890123456789012345678901234567890123\""},
        {"merge_from", "\"l123456789012345\""},
        {"merge_into", "\"l123456789012345\""},
        /* NULs */
        {"op", "\"snapshot-delete\\u0000x\""},
        {"snapshot", "\"s1\\u0000/../x\""},
        /* values recovery would act on */
        {"op", "\"\""},
        {"op", "\"Snapshot Delete\""},
        {"op", "\"../x\""},
        {"started", "\"\""},
        {"started", "\"yesterday\""},
        {"snapshot", "\"../s1\""},
        {"snapshot", "\"a/b\""},
        {"snapshot", "\".s1\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *text = sample_with(edits[i].key, edits[i].value);
        assert_malformed(text, strlen(text));
        free(text);
    }
    /* The unedited sample is fine, so the edits are what is refused. */
    char *text = sample_with(NULL, NULL);
    write_raw(text, strlen(text));
    struct vm_journal j;
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_int_equal(j.disk, 3);

    /* Duplicate keys: a lenient reader would take the second. */
    size_t len = strlen(text);
    char *dup = malloc(len + 64);
    snprintf(dup, len + 64, "{\"disk\": 0,%s", text + 1);
    assert_malformed(dup, strlen(dup));

    /* Not JSON, not an object, trailing bytes, a NUL in the text. */
    static const char *const raw[] = {"", "{", "null", "[]", "\"journal\"", "{}", NULL};
    for (size_t i = 0; raw[i] != NULL; i++)
        assert_malformed(raw[i], strlen(raw[i]));
    snprintf(dup, len + 64, "%s{}", text);
    assert_malformed(dup, strlen(dup));
    memcpy(dup, text, len);
    dup[len / 2] = '\0';
    assert_malformed(dup, len);
    free(dup);

    /* Oversize: valid JSON padded past 16 KiB. */
    size_t big_len = 16385;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    memcpy(big, text, len);
    write_raw(big, 16384);
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_malformed(big, big_len);
    free(big);
    free(text);
}

/* vm.json's generation when the operation began: recovery's rolled back or
 * forward. Journals of a vmseald that did not record it still read. */
static void test_generation(void **state)
{
    struct vm_journal j;
    (void)state;
    struct vm_journal g = {.op = "encrypt", .started = "2026-11-23T10:00:00Z",
                           .generation = 41, .has_generation = true};
    assert_ok(vm_journal_write(ds, "web1", &g));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_true(j.has_generation);
    assert_int_equal(j.generation, 41);
    /* 0: no vm.json yet (create, clone). */
    g.generation = 0;
    assert_ok(vm_journal_write(ds, "web1", &g));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_true(j.has_generation);
    assert_int_equal(j.generation, 0);
    /* Without it (the sample, an older vmseald's journal). */
    assert_ok(vm_journal_write(ds, "web1", &sample));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_false(j.has_generation);
    char *text = sample_with(NULL, NULL);
    write_raw(text, strlen(text));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_false(j.has_generation);
    free(text);

    static const char *const bad[] = {"-1", "\"1\"", "1.0", "null", "true",
                                      "9007199254740992", /* 2^53: VM_DESC_COUNTER_MAX */
                                      "1e3", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        text = sample_with("generation", bad[i]);
        assert_malformed(text, strlen(text));
        free(text);
    }
    text = sample_with("generation", "9007199254740991");
    write_raw(text, strlen(text));
    assert_ok(vm_journal_read(ds, "web1", &j));
    assert_int_equal(j.generation, 9007199254740991ull);
    free(text);
    /* It does not stand in for one of the six. */
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "op", "encrypt", "started",
                          "2026-11-23T10:00:00Z", "snapshot", "", "merge_from", "",
                          "merge_into", "", "generation", 3);
    text = json_dumps(o, 0);
    json_decref(o);
    assert_malformed(text, strlen(text));
    free(text);
}

static void test_missing_and_remove(void **state)
{
    struct vm_journal j;
    char p[128];
    struct stat st;
    (void)state;
    assert_ok(vm_journal_write(ds, "web1", &sample));
    assert_ok(vm_journal_remove(ds, "web1"));
    journal_path(p, sizeof p);
    assert_int_not_equal(stat(p, &st), 0);
    assert_err(vm_journal_read(ds, "web1", &j), ERR_NOT_FOUND);
    /* Idempotent: removing an absent journal is no error. */
    assert_ok(vm_journal_remove(ds, "web1"));
    assert_ok(vm_journal_remove(ds, "web1"));
    assert_err(vm_journal_read(ds, "web1", &j), ERR_NOT_FOUND);
    /* A VM directory that does not exist either. */
    assert_ok(vm_journal_remove(ds, "nosuchvm"));
    assert_err(vm_journal_read(ds, "nosuchvm", &j), ERR_NOT_FOUND);
    assert_false(is_ok(vm_journal_write(ds, "nosuchvm", &sample)));
    err_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_missing_and_remove),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
