/* Tests of the root key, objects and the SQLite store: round trips, group
 * commit, optimistic concurrency, Locate, and tampering detected. */
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/file.h"
#include "kmip/kmip_defs.h"
#include "kms/object.h"
#include "kms/rootkey.h"
#include "kms/store.h"

static char dir[64], keypath[128], dbpath[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmseal-test-store-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(keypath, sizeof(keypath), "%s/root.key", dir);
    snprintf(dbpath, sizeof(dbpath), "%s/kms.db", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[160];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct kms_object *make_key(const char *uid, const char *owner, uint8_t fill)
{
    struct kms_object *o = NULL;
    uint8_t key[32];
    memset(key, fill, sizeof(key));
    assert_ok(kms_object_new(uid, owner, KMIP_OBJ_SYMMETRIC_KEY, &o));
    assert_ok(buf_write_bytes(&o->material, key, sizeof(key)));
    assert_ok(kms_object_set_enum(o, KMIP_TAG_OBJECT_TYPE, KMIP_OBJ_SYMMETRIC_KEY));
    assert_ok(kms_object_set_enum(o, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALG_AES));
    assert_ok(kms_object_set_int(o, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256));
    assert_ok(kms_object_set_enum(o, KMIP_TAG_STATE, KMIP_STATE_PRE_ACTIVE));
    assert_ok(kms_object_set_date(o, KMIP_TAG_INITIAL_DATE, 1700000000));
    return o;
}

static void test_rootkey_file(void **state)
{
    struct kms_rootkey *rk = NULL;
    struct stat st;
    (void)state;

    assert_err(kms_rootkey_open_file(keypath, &rk), ERR_NOT_FOUND);
    assert_ok(kms_rootkey_create_file(keypath));
    assert_int_equal(stat(keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_err(kms_rootkey_create_file(keypath), ERR_EXISTS); /* never overwritten */
    assert_ok(kms_rootkey_open_file(keypath, &rk));
    kms_rootkey_free(&rk);
    assert_null(rk);
    chmod(keypath, 0640);
    assert_err(kms_rootkey_open_file(keypath, &rk), ERR_PERM);
    chmod(keypath, 0600);
    assert_ok(file_write_atomic(keypath, "short", 5, 0600));
    assert_err(kms_rootkey_open_file(keypath, &rk), ERR_INVALID_ARG);
}

static void test_insert_load_update(void **state)
{
    struct kms_rootkey *rk = NULL;
    struct kms_store *s = NULL;
    struct kms_store_reader *r = NULL;
    struct kms_object *o, *back = NULL, *again = NULL;
    uint32_t e;
    (void)state;

    assert_ok(kms_rootkey_create_file(keypath));
    assert_ok(kms_rootkey_open_file(keypath, &rk));
    assert_ok(kms_store_open(dbpath, rk, &s));
    assert_ok(kms_store_reader_open(s, &r));

    o = make_key("uid-1", "alice", 0x11);
    assert_ok(kms_store_insert(s, o));
    assert_int_equal(o->version, 1);
    assert_err(kms_store_insert(s, o), ERR_EXISTS);
    assert_int_equal(o->version, 1); /* a failed write changes nothing */

    assert_ok(kms_store_load(r, "uid-1", &back));
    assert_string_equal(back->owner, "alice");
    assert_int_equal(back->object_type, KMIP_OBJ_SYMMETRIC_KEY);
    assert_int_equal(buf_len(&back->material), 32);
    assert_memory_equal(buf_data(&back->material), buf_data(&o->material), 32);
    assert_int_equal(back->attr_count, o->attr_count);
    assert_ok(kms_object_get_enum(back, KMIP_TAG_STATE, &e));
    assert_int_equal(e, KMIP_STATE_PRE_ACTIVE);
    assert_err(kms_store_load(r, "uid-2", &again), ERR_NOT_FOUND);

    /* Two copies loaded; the first update wins, the second conflicts. */
    assert_ok(kms_store_load(r, "uid-1", &again));
    assert_ok(kms_object_set_enum(back, KMIP_TAG_STATE, KMIP_STATE_ACTIVE));
    assert_ok(kms_store_update(s, back));
    assert_int_equal(back->version, 2);
    assert_ok(kms_object_set_int(again, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 128));
    assert_err(kms_store_update(s, again), ERR_CONFLICT);
    assert_int_equal(again->version, 1);
    kms_object_free(&again);
    assert_ok(kms_store_load(r, "uid-1", &again));
    assert_ok(kms_object_get_enum(again, KMIP_TAG_STATE, &e));
    assert_int_equal(e, KMIP_STATE_ACTIVE);
    assert_int_equal(again->version, 2);

    /* Destroyed: no material left, the record still authenticates. */
    buf_reset(&again->material);
    assert_ok(kms_object_set_enum(again, KMIP_TAG_STATE, KMIP_STATE_DESTROYED));
    assert_ok(kms_store_update(s, again));
    kms_object_free(&back);
    assert_ok(kms_store_load(r, "uid-1", &back));
    assert_int_equal(buf_len(&back->material), 0);

    kms_object_free(&back);
    kms_object_free(&again);
    kms_object_free(&o);
    kms_store_reader_close(&r);
    kms_store_close(&s);
    kms_rootkey_free(&rk);
}

/* Runs SQL against the database behind the store's back. */
static void tamper(const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_true(sqlite3_changes(db) >= 1);
    sqlite3_close(db);
}

static void test_tampering_is_detected(void **state)
{
    struct kms_rootkey *rk = NULL, *other = NULL;
    struct kms_store *s = NULL;
    struct kms_store_reader *r = NULL;
    struct kms_object *o, *back = NULL;
    char other_key[160];
    (void)state;

    assert_ok(kms_rootkey_create_file(keypath));
    assert_ok(kms_rootkey_open_file(keypath, &rk));
    assert_ok(kms_store_open(dbpath, rk, &s));
    assert_ok(kms_store_reader_open(s, &r));
    const char *uids[] = {"owner", "state", "extra", "blob", "version", "type"};
    for (size_t i = 0; i < 6; i++) {
        o = make_key(uids[i], "alice", (uint8_t)i);
        assert_ok(kms_store_insert(s, o));
        kms_object_free(&o);
    }
    /* Each of these edits must make the record refuse to load. */
    tamper("UPDATE objects SET owner = 'mallory' WHERE uid = 'owner'");
    /* State: Pre-Active (1) -> Active (2) in the stored value's last bytes. */
    tamper("UPDATE attributes SET value = X'42000B05000000040000000200000000' "
           "WHERE uid = 'state' AND name = 'State'");
    tamper("INSERT INTO attributes VALUES ('extra', 'x-evil', 0, "
           "X'42000B07000000016100000000000000')");
    tamper("UPDATE objects SET sealed = substr(sealed, 1, 20) || X'00' || substr(sealed, 22) "
           "WHERE uid = 'blob'");
    tamper("UPDATE objects SET version = 7 WHERE uid = 'version'");
    tamper("UPDATE objects SET object_type = 7 WHERE uid = 'type'");
    for (size_t i = 0; i < 6; i++) {
        assert_err(kms_store_load(r, uids[i], &back), ERR_AUTH);
        assert_null(back);
        assert_non_null(strstr(err_last()->detail, "fails authentication"));
    }

    /* The same database under another root key does not even open: the
     * root key check record refuses it, before any request. */
    o = make_key("fine", "alice", 9);
    assert_ok(kms_store_insert(s, o));
    kms_object_free(&o);
    snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
    assert_ok(kms_rootkey_create_file(other_key));
    assert_ok(kms_rootkey_open_file(other_key, &other));
    kms_store_reader_close(&r);
    kms_store_close(&s);
    assert_err(kms_store_open(dbpath, other, &s), ERR_AUTH);
    assert_null(s);
    assert_non_null(strstr(err_last()->detail, "not the one this store was created with"));
    /* And with the right one it still does. */
    assert_ok(kms_store_open(dbpath, rk, &s));
    assert_ok(kms_store_reader_open(s, &r));
    assert_ok(kms_store_load(r, "fine", &back));
    kms_object_free(&back);
    kms_store_reader_close(&r);
    kms_store_close(&s);
    kms_rootkey_free(&other);
    kms_rootkey_free(&rk);
}

static vs_result collect(void *ctx, const char *uid)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s%s", n ? "," : "", uid);
    return OK_RESULT;
}

static void test_locate(void **state)
{
    struct kms_rootkey *rk = NULL;
    struct kms_store *s = NULL;
    struct kms_store_reader *r = NULL;
    char found[256];
    (void)state;

    assert_ok(kms_rootkey_create_file(keypath));
    assert_ok(kms_rootkey_open_file(keypath, &rk));
    assert_ok(kms_store_open(dbpath, rk, &s));
    assert_ok(kms_store_reader_open(s, &r));
    const char *owners[] = {"alice", "bob", "alice", "alice"};
    for (int i = 0; i < 4; i++) {
        char uid[8];
        snprintf(uid, sizeof(uid), "k%d", i);
        struct kms_object *o = make_key(uid, owners[i], (uint8_t)i);
        if (i >= 2)
            assert_ok(kms_object_set_enum(o, KMIP_TAG_STATE, KMIP_STATE_ACTIVE));
        assert_ok(kms_store_insert(s, o));
        kms_object_free(&o);
    }
    static const uint8_t active[] = {0x42, 0x00, 0x0b, 0x05, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0};
    struct kms_store_filter f = {"State", active, sizeof(active)};
    const char *alice[] = {"alice"};

    found[0] = '\0';
    assert_ok(kms_store_locate(r, alice, 1, NULL, 0, 0, 0, collect, found));
    assert_string_equal(found, "k0,k2,k3");
    found[0] = '\0';
    assert_ok(kms_store_locate(r, alice, 1, &f, 1, 0, 0, collect, found));
    assert_string_equal(found, "k2,k3");
    found[0] = '\0';
    assert_ok(kms_store_locate(r, NULL, 0, NULL, 0, 1, 2, collect, found)); /* admin, offset */
    assert_string_equal(found, "k1,k2");
    const char *bob[] = {"bob"};
    found[0] = '\0';
    assert_ok(kms_store_locate(r, bob, 1, &f, 1, 0, 0, collect, found));
    assert_string_equal(found, "");
    kms_store_reader_close(&r);
    kms_store_close(&s);
    kms_rootkey_free(&rk);
}

struct writer_arg {
    struct kms_store *s;
    int id;
};

static void *insert_many(void *p)
{
    struct writer_arg *a = p;
    for (int i = 0; i < 25; i++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "t%d-%d", a->id, i);
        struct kms_object *o = make_key(uid, "alice", (uint8_t)i);
        if (!is_ok(kms_store_insert(a->s, o)))
            abort();
        kms_object_free(&o);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    struct kms_rootkey *rk = NULL;
    struct kms_store *s = NULL;
    struct kms_store_stats st;
    pthread_t th[16];
    struct writer_arg args[16];
    (void)state;

    assert_ok(kms_rootkey_create_file(keypath));
    assert_ok(kms_rootkey_open_file(keypath, &rk));
    assert_ok(kms_store_open(dbpath, rk, &s));
    for (int i = 0; i < 16; i++) {
        args[i] = (struct writer_arg){s, i};
        assert_int_equal(pthread_create(&th[i], NULL, insert_many, &args[i]), 0);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    kms_store_get_stats(s, &st);
    assert_int_equal(st.writes, 400);
    /* Sixteen writers at once share fsyncs. */
    assert_true(st.commits < st.writes);
    print_message("400 writes in %llu commits\n", (unsigned long long)st.commits);
    kms_store_close(&s);
    kms_rootkey_free(&rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rootkey_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_load_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
