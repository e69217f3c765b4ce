/*
 * Tests of the VM descriptor (src/vm/descriptor.c), the commit point of
 * every VM operation and the one file an attacker on the datastore would
 * edit first:
 *  - round trips through a real datastore (save, load, equal), for an
 *    encrypted VM with snapshots and dependents, a plaintext VM and an
 *    instant clone;
 *  - the tag: HMAC under the file key (right key, wrong key, no key), a
 *    plain SHA-256 for unencrypted VMs, and that it covers every field of
 *    the file: changing any one field (each listed by hand, then every
 *    leaf of the JSON tree in turn) is refused by the parser or by the tag;
 *  - strict parsing: unknown, missing and wrongly typed fields at every
 *    level, duplicate keys, file references outside the VM's directory,
 *    dangling references, cycles and over-long chains, bad sizes, secrets
 *    of the wrong length or encoding, oversize input, a name that is not
 *    the directory's, all ERR_DESCRIPTOR;
 *  - the edits the operations make: chain, add, remove, in use, children;
 *  - mixed VMs (per-disk encryption): an encrypted VM with a plaintext disk
 *    round-trips and its tag still covers every layer; a chain that mixes
 *    encrypted and plaintext layers is refused.
 */
#include "test_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/crypto.h"
#include "core/file.h"
#include "vm/descriptor.h"

static char ds[64]; /* the datastore: DIR/vms */

static const uint8_t file_key[VM_FILE_KEY_LEN] = {
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4};

static int setup(void **state)
{
    static const char *const vms[] = {"web1", "web2", "plain1", "long1", NULL};
    (void)state;
    snprintf(ds, sizeof ds, "/tmp/vmseal-test-vmdesc-XXXXXX");
    if (mkdtemp(ds) == NULL)
        return -1;
    for (size_t i = 0; vms[i] != NULL; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", ds, vms[i]);
        if (mkdir(p, 0700) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", ds);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- descriptors built in memory ------------------------------------------ */

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + 7 * i);
}

static struct vm_layer *layer(struct vm_desc *d, const char *id, unsigned disk, const char *file,
                              enum disk_format f, const char *parent)
{
    struct vm_layer *l = &d->layers[d->layer_count++];
    snprintf(l->id, sizeof l->id, "%s", id);
    l->disk = disk;
    snprintf(l->file, sizeof l->file, "%s", file);
    l->format = f;
    snprintf(l->parent, sizeof l->parent, "%s", parent);
    if (f == DISK_FORMAT_LUKS || f == DISK_FORMAT_QCOW2_LUKS) {
        l->wrapped_len = CRYPTO_KWP_WRAPPED_LEN(LUKS1_SECRET_LEN);
        fill(l->wrapped_secret, l->wrapped_len, (uint8_t)(0x40 + d->layer_count));
    }
    return l;
}

/* An encrypted VM "web1": two disks of two layers each, a snapshot on the
 * base layers, an NVRAM, an instant clone "web2". */
static struct vm_desc *build_encrypted(void)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->name, sizeof d->name, "web1");
    snprintf(d->uuid, sizeof d->uuid, "4c4c4544-0031-3410-8056-b4c04f4e3732");
    snprintf(d->created, sizeof d->created, "2026-11-23T10:00:00Z");
    d->next_layer = 4;
    snprintf(d->dependents[d->dependent_count++], VM_NAME_MAX, "web2");
    d->encrypted = true;
    snprintf(d->key.provider, sizeof d->key.provider, "n1");
    snprintf(d->key.key_id, sizeof d->key.key_id, "f900dbee-6468-485c-a7cd-995b071affb3");
    d->wrapped_file_key_len = CRYPTO_KWP_WRAPPED_LEN(VM_FILE_KEY_LEN);
    fill(d->wrapped_file_key, d->wrapped_file_key_len, 0x11);
    snprintf(d->config_file, sizeof d->config_file, "web1/config-3.enc");
    snprintf(d->nvram_file, sizeof d->nvram_file, "web1/nvram-3.enc");
    layer(d, "l1", 0, "web1/disk0-l1.img", DISK_FORMAT_LUKS, "");
    layer(d, "l2", 1, "web1/disk1-l2.img", DISK_FORMAT_LUKS, "");
    layer(d, "l3", 0, "web1/disk0-l3.qcow2", DISK_FORMAT_QCOW2_LUKS, "l1");
    layer(d, "l4", 1, "web1/disk1-l4.qcow2", DISK_FORMAT_QCOW2_LUKS, "l2");
    d->disk_count = 2;
    d->disks[0].size = 1 << 20;
    snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "l3");
    d->disks[1].size = 2 << 20;
    snprintf(d->disks[1].active, VM_LAYER_ID_MAX, "l4");
    struct vm_snapshot *s = &d->snapshots[d->snapshot_count++];
    snprintf(s->name, sizeof s->name, "s1");
    snprintf(s->created, sizeof s->created, "2026-11-23T10:05:00Z");
    snprintf(s->layers[0], VM_LAYER_ID_MAX, "l1");
    snprintf(s->layers[1], VM_LAYER_ID_MAX, "l2");
    snprintf(s->nvram_file, sizeof s->nvram_file, "web1/snap-s1.nvram");
    return d;
}

/* A plaintext VM "plain1": one raw disk, a template. */
static struct vm_desc *build_plain(void)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->name, sizeof d->name, "plain1");
    snprintf(d->uuid, sizeof d->uuid, "0192f3a0-7c1e-4b8a-9d2f-6e5a4b3c2d1e");
    snprintf(d->created, sizeof d->created, "2026-01-02T03:04:05Z");
    d->next_layer = 2;
    d->template_ = true;
    snprintf(d->config_file, sizeof d->config_file, "plain1/config-1.plain");
    layer(d, "l2", 0, "plain1/disk0-l2.img", DISK_FORMAT_RAW, "");
    d->disk_count = 1;
    d->disks[0].size = 512;
    snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "l2");
    return d;
}

/* "web2", an instant clone of web1: web1's frozen layers are foreign and
 * shared, each disk goes on in an overlay of its own. */
static struct vm_desc *build_instant(void)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->name, sizeof d->name, "web2");
    snprintf(d->uuid, sizeof d->uuid, "a1b2c3d4-e5f6-4789-8abc-def012345678");
    snprintf(d->created, sizeof d->created, "2026-11-23T11:00:00Z");
    d->next_layer = 8;
    snprintf(d->instant_clone_of, sizeof d->instant_clone_of, "web1");
    d->encrypted = true;
    snprintf(d->key.provider, sizeof d->key.provider, "n1");
    snprintf(d->key.key_id, sizeof d->key.key_id, "f900dbee-6468-485c-a7cd-995b071affb3");
    d->wrapped_file_key_len = CRYPTO_KWP_WRAPPED_LEN(VM_FILE_KEY_LEN);
    fill(d->wrapped_file_key, d->wrapped_file_key_len, 0x11);
    snprintf(d->config_file, sizeof d->config_file, "web2/config-1.enc");
    struct vm_layer *l = layer(d, "l1", 0, "web1/disk0-l1.img", DISK_FORMAT_LUKS, "");
    l->foreign = l->shared = true;
    l = layer(d, "l3", 0, "web1/disk0-l3.qcow2", DISK_FORMAT_QCOW2_LUKS, "l1");
    l->foreign = l->shared = true;
    layer(d, "l8", 0, "web2/disk0-l8.qcow2", DISK_FORMAT_QCOW2_LUKS, "l3");
    d->disk_count = 1;
    d->disks[0].size = 1 << 20;
    snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "l8");
    return d;
}

/* The file key a descriptor's tag is under (NULL: SHA-256). */
static const uint8_t *key_of(const struct vm_desc *d)
{
    return d->encrypted ? file_key : NULL;
}

/* Saves d into the datastore and returns the text of its vm.json
 * (NUL-terminated, free()). */
static char *save_text(struct vm_desc *d)
{
    char path[256];
    struct buf b;
    assert_ok(vm_desc_save(ds, d, key_of(d)));
    snprintf(path, sizeof path, "%s/%s/vm.json", ds, d->name);
    assert_ok(buf_alloc(&b, 4096, VM_DESC_MAX_BYTES));
    assert_ok(file_read_all(path, VM_DESC_MAX_BYTES, &b));
    char *text = malloc(buf_len(&b) + 1);
    assert_non_null(text);
    memcpy(text, buf_data(&b), buf_len(&b));
    text[buf_len(&b)] = '\0';
    assert_int_equal(strlen(text), buf_len(&b));
    buf_free(&b);
    return text;
}

static vs_result parse(const char *text, const char *name, struct vm_desc *out, uint8_t tag[32])
{
    return vm_desc_parse((const uint8_t *)text, strlen(text), name, out, tag);
}

/* Fails with the first differing byte when two descriptors differ. */
static void assert_desc_equal(const struct vm_desc *a, const struct vm_desc *b)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (size_t i = 0; i < sizeof *a; i++)
        if (x[i] != y[i])
            fail_msg("descriptors differ at byte %zu of %zu", i, sizeof *a);
}

/* --- editing the JSON text -------------------------------------------------- */

/* The member or element at path ("layers/0/secret"), or NULL. */
static json_t *json_at(json_t *root, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", path);
    json_t *cur = root;
    for (char *seg = copy; cur != NULL && seg != NULL;) {
        char *slash = strchr(seg, '/');
        if (slash != NULL)
            *slash = '\0';
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(seg, NULL, 10))
                                 : json_object_get(cur, seg);
        seg = slash != NULL ? slash + 1 : NULL;
    }
    return cur;
}

/* The text with the member or element at path set to value (JSON text;
 * NULL removes it). A new string (free()). */
static char *edit(const char *text, const char *path, const char *value)
{
    json_error_t e;
    json_t *root = json_loads(text, 0, &e);
    char parent_path[256], *last;
    assert_non_null(root);
    snprintf(parent_path, sizeof parent_path, "%s", path);
    last = strrchr(parent_path, '/');
    json_t *parent = root;
    if (last != NULL) {
        *last++ = '\0';
        parent = json_at(root, parent_path);
    } else {
        last = parent_path;
    }
    if (parent == NULL)
        fail_msg("no '%s' in the descriptor", path);
    json_t *v = NULL;
    if (value != NULL) {
        v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (v == NULL)
            fail_msg("bad test value %s: %s", value, e.text);
    }
    int rc;
    if (json_is_array(parent)) {
        size_t idx = strtoul(last, NULL, 10);
        rc = v != NULL ? json_array_set_new(parent, idx, v) : json_array_remove(parent, idx);
    } else {
        rc = v != NULL ? json_object_set_new(parent, last, v) : json_object_del(parent, last);
    }
    if (rc != 0)
        fail_msg("cannot edit '%s'", path);
    char *out = json_dumps(root, JSON_INDENT(2) | JSON_ENCODE_ANY);
    json_decref(root);
    assert_non_null(out);
    return out;
}

struct change {
    const char *path;
    const char *value; /* JSON text; NULL removes the field */
};

/* Parses text edited by c: must be refused with ERR_DESCRIPTOR. */
static void assert_refused(const char *text, const char *name, const struct change *c)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    uint8_t tag[32];
    char *t = edit(text, c->path, c->value);
    vs_result r = parse(t, name, d, tag);
    if (r.code != ERR_DESCRIPTOR)
        fail_msg("%s = %s: expected ERR_DESCRIPTOR, got %s", c->path,
                 c->value != NULL ? c->value : "(removed)", err_name(r.code));
    /* The detail names the VM, for the person reading the log. */
    assert_non_null(strstr(err_last()->detail, name));
    free(t);
    free(d);
}

/* Parses text edited by c: must parse, and then fail its tag. Returns
 * whether it parsed (when may_not_parse, a refusal is fine too). */
static bool assert_tag_fails(const char *text, const char *name, const uint8_t *key,
                             const char *path, const char *value, bool may_not_parse)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    uint8_t tag[32];
    char *t = edit(text, path, value);
    vs_result r = parse(t, name, d, tag);
    bool parsed = is_ok(r);
    if (!parsed && !(may_not_parse && r.code == ERR_DESCRIPTOR))
        fail_msg("%s = %s: the parser refused it (%s: %s)", path, value, err_name(r.code),
                 err_last()->detail);
    if (parsed) {
        r = vm_desc_verify(d, key, tag);
        if (r.code != ERR_DESCRIPTOR)
            fail_msg("%s = %s: the tag still verifies", path, value);
    }
    err_clear();
    free(t);
    free(d);
    return parsed;
}

/* --- round trips ---------------------------------------------------------- */

static void round_trip(struct vm_desc *d)
{
    struct vm_desc *back = calloc(1, sizeof *back);
    uint8_t tag[32], want[32];
    struct stat st;
    char path[256];
    assert_non_null(back);
    assert_ok(vm_desc_save(ds, d, key_of(d)));
    assert_int_equal(d->generation, 1);
    assert_ok(vm_desc_load(ds, d->name, back, tag));
    assert_desc_equal(d, back);
    assert_ok(vm_desc_verify(back, key_of(d), tag));
    assert_ok(vm_desc_tag(d, key_of(d), want));
    assert_memory_equal(tag, want, 32);
    /* Without tag_out, the structure alone. */
    memset(back, 0, sizeof *back);
    assert_ok(vm_desc_load(ds, d->name, back, NULL));
    assert_desc_equal(d, back);
    snprintf(path, sizeof path, "%s/%s/vm.json", ds, d->name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A second save: a new generation, a new tag. */
    assert_ok(vm_desc_save(ds, d, key_of(d)));
    assert_int_equal(d->generation, 2);
    assert_ok(vm_desc_load(ds, d->name, back, tag));
    assert_int_equal(back->generation, 2);
    assert_memory_not_equal(tag, want, 32);
    free(back);
}

static void test_round_trip_encrypted(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted();
    round_trip(d);
    free(d);
}

static void test_round_trip_plain(void **state)
{
    (void)state;
    struct vm_desc *d = build_plain();
    round_trip(d);
    free(d);
}

static void test_round_trip_instant(void **state)
{
    (void)state;
    struct vm_desc *d = build_instant();
    round_trip(d);
    free(d);
}

/* web1 with disk 1 in clear: its base raw, its overlay plain qcow2. */
static struct vm_desc *build_mixed(enum disk_format base1, enum disk_format top1)
{
    struct vm_desc *d = build_encrypted();
    struct vm_layer *b = vm_desc_layer(d, "l2"), *t = vm_desc_layer(d, "l4");
    b->format = base1;
    t->format = top1;
    struct vm_layer *both[] = {b, t};
    for (size_t i = 0; i < 2; i++) {
        if (!vm_format_encrypted(both[i]->format)) {
            both[i]->wrapped_len = 0;
            memset(both[i]->wrapped_secret, 0, sizeof both[i]->wrapped_secret);
        }
    }
    return d;
}

static void test_mixed_disks(void **state)
{
    (void)state;
    struct vm_desc *d = build_mixed(DISK_FORMAT_RAW, DISK_FORMAT_QCOW2);
    round_trip(d);
    assert_true(vm_disk_encrypted(d, 0));
    assert_false(vm_disk_encrypted(d, 1));
    assert_false(vm_disk_encrypted(d, 2)); /* no such disk */
    char *text = save_text(d);
    uint8_t key[VM_FILE_KEY_LEN];
    memcpy(key, file_key, sizeof key);
    /* The plaintext disk's layers as they are: no secret. */
    struct change secret = {"layers/1/secret",
                            "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""};
    assert_refused(text, "web1", &secret);
    /* Still under the tag: a plaintext disk cannot be swapped for another
     * file, nor an encrypted one's format changed, without the file key. */
    assert_tag_fails(text, "web1", key, "layers/1/file", "\"web1/disk1-l9.img\"", false);
    assert_tag_fails(text, "web1", key, "layers/1/format", "\"qcow2\"", true);
    free(text);
    free(d);
    /* A chain is encrypted or plaintext as a whole. */
    static const enum disk_format mixes[][2] = {
        {DISK_FORMAT_RAW, DISK_FORMAT_QCOW2_LUKS},
        {DISK_FORMAT_LUKS, DISK_FORMAT_QCOW2},
    };
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
        struct vm_desc *m = build_mixed(mixes[i][0], mixes[i][1]), *out = calloc(1, sizeof *out);
        char *t = save_text(m);
        uint8_t tag[32];
        assert_err(parse(t, "web1", out, tag), ERR_DESCRIPTOR);
        assert_non_null(strstr(err_last()->detail, "layer 'l4' is"));
        assert_non_null(strstr(err_last()->detail, "its parent 'l2' is not"));
        free(t);
        free(m);
        free(out);
    }
}

static void test_save_failure_keeps_generation(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted();
    snprintf(d->name, sizeof d->name, "nodir"); /* no such directory */
    assert_false(is_ok(vm_desc_save(ds, d, file_key)));
    assert_int_equal(d->generation, 0);
    err_clear();
    free(d);
}

/* --- the tag -------------------------------------------------------------- */

static void test_tag_keys(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted(), *back = calloc(1, sizeof *back);
    uint8_t tag[32], key[VM_FILE_KEY_LEN];
    char *text = save_text(d);
    assert_ok(parse(text, "web1", back, tag));
    assert_ok(vm_desc_verify(back, file_key, tag));
    /* Any other key: each bit of the file key matters. */
    for (size_t bit = 0; bit < 8 * VM_FILE_KEY_LEN; bit += 13) {
        memcpy(key, file_key, sizeof key);
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_err(vm_desc_verify(back, key, tag), ERR_DESCRIPTOR);
        assert_non_null(strstr(err_last()->detail, "web1"));
    }
    /* Not the SHA-256 of an unencrypted VM either. */
    assert_err(vm_desc_verify(back, NULL, tag), ERR_DESCRIPTOR);
    /* A tag with one bit changed. */
    for (size_t i = 0; i < 32; i += 5) {
        tag[i] ^= 0x80;
        assert_err(vm_desc_verify(back, file_key, tag), ERR_DESCRIPTOR);
        tag[i] ^= 0x80;
    }
    assert_ok(vm_desc_verify(back, file_key, tag));
    free(text);
    free(back);
    free(d);
}

/* The tag is HKDF-SHA256(file key, "vmseal descriptor tag v1") as an HMAC
 * key over the canonical bytes, computed here from the parts. */
static void test_tag_construction(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted();
    struct buf canon;
    uint8_t mac_key[32], want[32], got[32];
    static const char info[] = "vmseal descriptor tag v1";
    assert_ok(buf_alloc(&canon, 4096, VM_DESC_MAX_BYTES));
    assert_ok(vm_desc_canonical(d, &canon));
    assert_ok(crypto_hkdf_sha256(NULL, 0, file_key, sizeof file_key, info, sizeof info - 1, mac_key,
                                 sizeof mac_key));
    assert_ok(crypto_hmac_sha256(mac_key, sizeof mac_key, buf_data(&canon), buf_len(&canon), want));
    assert_ok(vm_desc_tag(d, file_key, got));
    assert_memory_equal(got, want, 32);
    buf_free(&canon);
    free(d);
}

static void test_tag_unencrypted_sha256(void **state)
{
    (void)state;
    struct vm_desc *d = build_plain(), *back = calloc(1, sizeof *back);
    struct buf canon;
    uint8_t tag[32], want[32];
    char *text = save_text(d);
    assert_ok(parse(text, "plain1", back, tag));
    assert_ok(buf_alloc(&canon, 4096, VM_DESC_MAX_BYTES));
    assert_ok(vm_desc_canonical(back, &canon));
    assert_ok(crypto_sha256(buf_data(&canon), buf_len(&canon), want));
    assert_memory_equal(tag, want, 32);
    assert_ok(vm_desc_verify(back, NULL, tag));
    /* Under a key it is another tag. */
    assert_err(vm_desc_verify(back, file_key, tag), ERR_DESCRIPTOR);
    /* Corruption is detected. */
    char *t = edit(text, "disks/0/size", "1024");
    assert_ok(parse(t, "plain1", back, tag));
    assert_err(vm_desc_verify(back, NULL, tag), ERR_DESCRIPTOR);
    free(t);
    buf_free(&canon);
    free(text);
    free(back);
    free(d);
}

/* Every member of the saved file is in the canonical bytes: the file
 * without its tag, as compact JSON with sorted keys, is exactly them. */
static void test_canonical_covers_the_file(void **state)
{
    (void)state;
    struct vm_desc *variants[] = {build_encrypted(), build_plain(), build_instant()};
    for (size_t v = 0; v < 3; v++) {
        struct vm_desc *d = variants[v];
        char *text = save_text(d);
        json_t *o = json_loads(text, 0, NULL);
        assert_non_null(o);
        assert_int_equal(json_object_del(o, "tag"), 0);
        char *want = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
        struct buf canon;
        assert_ok(buf_alloc(&canon, 4096, VM_DESC_MAX_BYTES));
        assert_ok(vm_desc_canonical(d, &canon));
        assert_int_equal(buf_len(&canon), strlen(want));
        assert_memory_equal(buf_data(&canon), want, strlen(want));
        buf_free(&canon);
        free(want);
        json_decref(o);
        free(text);
        free(d);
    }
}

/* Each field changed by hand: the parser accepts the edit (it is
 * well-formed), the tag refuses it. */
static void test_tamper_each_field(void **state)
{
    (void)state;
    static const struct change enc[] = {
        {"encryption/file_key", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""},
        {"layers/3/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""},
        {"encryption/key_id", "\"f900dbee-6468-485c-a7cd-995b071affb4\""},
        {"encryption/key_id", "\"someone-elses-key\""},
        {"encryption/provider", "\"n2\""},
        {"layers/2/file", "\"web1/disk0-l9.qcow2\""},
        {"layers/0/file", "\"web1/other.img\""},
        {"layers/2/parent", "null"},
        {"layers/2/format", "\"luks\""},
        {"layers/0/shared", "true"},
        {"snapshots/0/layers/0", "\"l3\""},
        {"snapshots/0/name", "\"s2\""},
        {"snapshots/0/created", "\"2027-01-01T00:00:00Z\""},
        {"snapshots/0/nvram", "null"},
        {"snapshots/0/nvram", "\"web1/nvram-1.enc\""},
        {"snapshots", "[]"},
        {"generation", "7"},
        {"generation", "0"},
        {"next_layer", "9"},
        {"template", "true"},
        {"uuid", "\"4c4c4544-0031-3410-8056-b4c04f4e3733\""},
        {"created", "\"2026-11-23T10:00:01Z\""},
        {"config", "\"web1/config-2.enc\""},
        {"nvram", "null"},
        {"nvram", "\"web1/nvram-4.enc\""},
        {"disks/0/size", "1049088"},
        {"disks/1/size", "512"},
        {"disks/1/size", "70368744177664"}, /* 64 TiB, the most */
        {"generation", "9007199254740991"},
        {"disks/0/active", "\"l1\""},
        {"dependents", "[]"},
        {"dependents", "[\"web2\", \"web3\"]"},
    };
    static const struct change inst[] = {
        {"instant_clone_of", "null"}, /* then its foreign layers are refused */
        {"layers/1/shared", "false"},
        {"layers/2/parent", "\"l1\""},
        {"layers/0/file", "\"web1/disk0-l2.img\""},
    };
    struct vm_desc *d = build_encrypted(), *i = build_instant();
    char *text = save_text(d), *itext = save_text(i);
    for (size_t k = 0; k < sizeof enc / sizeof enc[0]; k++)
        assert_true(assert_tag_fails(text, "web1", file_key, enc[k].path, enc[k].value, false));
    for (size_t k = 0; k < sizeof inst / sizeof inst[0]; k++)
        assert_tag_fails(itext, "web2", file_key, inst[k].path, inst[k].value, k == 0);
    free(text);
    free(itext);
    free(d);
    free(i);
}

/* Paths of every leaf (and every member, when members) under v. */
static void collect(json_t *v, const char *path, bool members, char (*out)[128], size_t *n)
{
    if (json_is_object(v) || json_is_array(v)) {
        const char *k;
        json_t *x;
        size_t i;
        if (json_is_object(v)) {
            json_object_foreach(v, k, x)
            {
                char p[128];
                snprintf(p, sizeof p, "%s%s%s", path, *path ? "/" : "", k);
                if (members && *n < 512)
                    snprintf(out[(*n)++], 128, "%s", p);
                collect(x, p, members, out, n);
            }
        } else {
            json_array_foreach(v, i, x)
            {
                char p[128];
                snprintf(p, sizeof p, "%s/%zu", path, i);
                if (members && *n < 512)
                    snprintf(out[(*n)++], 128, "%s", p);
                collect(x, p, members, out, n);
            }
        }
    } else if (!members && *n < 512) {
        snprintf(out[(*n)++], 128, "%s", path);
    }
}

/* The next character of the same kind (so that names stay names and
 * base64 stays base64). */
static char next_char(char c)
{
    if (c >= 'a' && c <= 'y')
        return (char)(c + 1);
    if (c == 'z')
        return 'a';
    if (c >= 'A' && c <= 'Y')
        return (char)(c + 1);
    if (c == 'Z')
        return 'A';
    if (c >= '0' && c <= '8')
        return (char)(c + 1);
    if (c == '9')
        return '0';
    return 0;
}

/* Every leaf of the JSON tree changed in turn: refused by the parser, or
 * parsed and refused by the tag. */
static void tamper_every_leaf(struct vm_desc *d, size_t min_parsed)
{
    static char paths[512][128];
    size_t n = 0, parsed = 0;
    char *text = save_text(d);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    collect(root, "", false, paths, &n);
    assert_true(n > 20);
    for (size_t k = 0; k < n; k++) {
        json_t *v = json_at(root, paths[k]);
        char value[256];
        if (strcmp(paths[k], "tag") == 0 || strcmp(paths[k], "format") == 0 || json_is_null(v))
            continue;
        if (json_is_boolean(v)) {
            snprintf(value, sizeof value, "%s", json_is_true(v) ? "false" : "true");
        } else if (json_is_integer(v)) {
            bool size = strstr(paths[k], "size") != NULL;
            snprintf(value, sizeof value, "%lld",
                     (long long)json_integer_value(v) + (size ? 512 : 1));
        } else if (json_is_string(v)) {
            char s[200];
            snprintf(s, sizeof s, "%s", json_string_value(v));
            size_t len = strlen(s), at = len / 2;
            while (at < len && next_char(s[at]) == 0)
                at++;
            if (at == len)
                fail_msg("nothing to change in %s", paths[k]);
            s[at] = next_char(s[at]);
            snprintf(value, sizeof value, "\"%s\"", s);
        } else {
            fail_msg("unexpected leaf %s", paths[k]);
        }
        parsed += assert_tag_fails(text, d->name, key_of(d), paths[k], value, true);
    }
    /* Most edits are well-formed: the tag, not the parser, caught them. */
    if (parsed < min_parsed)
        fail_msg("only %zu of %zu edits parsed", parsed, n);
    json_decref(root);
    free(text);
}

static void test_tamper_every_leaf(void **state)
{
    (void)state;
    struct vm_desc *e = build_encrypted(), *p = build_plain(), *i = build_instant();
    tamper_every_leaf(e, 24);
    tamper_every_leaf(p, 7);
    tamper_every_leaf(i, 16);
    free(e);
    free(p);
    free(i);
}

/* --- strict parsing ----------------------------------------------------------- */

/* Every member removed, at every level: refused. */
static void test_missing_fields(void **state)
{
    (void)state;
    static char paths[512][128];
    struct vm_desc *variants[] = {build_encrypted(), build_plain(), build_instant()};
    for (size_t v = 0; v < 3; v++) {
        size_t n = 0;
        char *text = save_text(variants[v]);
        json_t *root = json_loads(text, 0, NULL);
        collect(root, "", true, paths, &n);
        assert_true(n > 20);
        for (size_t k = 0; k < n; k++) {
            /* An array element removed can be valid (one dependent
             * fewer); members cannot. */
            const char *last = strrchr(paths[k], '/');
            last = last != NULL ? last + 1 : paths[k];
            if (last[0] >= '0' && last[0] <= '9')
                continue;
            struct change c = {paths[k], NULL};
            assert_refused(text, variants[v]->name, &c);
        }
        json_decref(root);
        free(text);
        free(variants[v]);
    }
}

/* Every member and element given a value of another type: refused. */
static void test_wrong_types(void **state)
{
    (void)state;
    static char paths[512][128];
    struct vm_desc *variants[] = {build_encrypted(), build_plain(), build_instant()};
    for (size_t v = 0; v < 3; v++) {
        size_t n = 0;
        char *text = save_text(variants[v]);
        json_t *root = json_loads(text, 0, NULL);
        collect(root, "", true, paths, &n);
        for (size_t k = 0; k < n; k++) {
            json_t *x = json_at(root, paths[k]);
            const char *others[6];
            size_t m = 0;
            if (!json_is_string(x))
                others[m++] = "\"x/y\""; /* no name, id, file or base64 */
            if (!json_is_integer(x)) {
                others[m++] = "1";
                others[m++] = "1.0";
            }
            if (!json_is_boolean(x))
                others[m++] = "true";
            if (!json_is_object(x))
                others[m++] = "{}";
            if (!json_is_array(x))
                others[m++] = "[]";
            for (size_t j = 0; j < m; j++) {
                /* null where null is allowed is not another type. */
                struct change c = {paths[k], others[j]};
                assert_refused(text, variants[v]->name, &c);
            }
            if (json_is_integer(x)) {
                struct change c = {paths[k], "-1"};
                assert_refused(text, variants[v]->name, &c);
            }
        }
        json_decref(root);
        free(text);
        free(variants[v]);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    static const char secret32[] = "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"";
    static const char secret48[] =
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\"";
    static const struct change enc[] = {
        /* unknown fields at each level */
        {"extra", "1"},
        {"Name", "\"web1\""},
        {"encryption/extra", "null"},
        {"disks/0/extra", "0"},
        {"layers/1/extra", "false"},
        {"snapshots/0/extra", "\"x\""},
        /* the format */
        {"format", "\"vmseal-vm/2\""},
        {"format", "\"\""},
        /* names: slashes, dots, absolute paths, too long */
        {"snapshots/0/name", "\"a/b\""},
        {"snapshots/0/name", "\"..\""},
        {"snapshots/0/name", "\".hidden\""},
        {"snapshots/0/name", "\"\""},
        {"snapshots/0/name",
         "\"0123456789012345678901234567890123456789012345678901234567890123\""},
        {"dependents/0", "\"a/b\""},
        {"dependents/0", "\"..\""},
        {"dependents/0", "\"web1\""},           /* itself */
        {"dependents", "[\"web2\", \"web2\"]"}, /* twice */
        {"dependents", "[\"web2\", \"web2\\u0000x\"]"},
        {"instant_clone_of", "\"../web2\""},
        {"instant_clone_of", "\"web1\""}, /* itself */
        {"encryption/provider", "\"../n1\""},
        {"encryption/provider", "\"\""},
        /* file references */
        {"layers/0/file", "\"/etc/passwd\""},
        {"layers/0/file", "\"web1/../web2/disk0-l1.img\""},
        {"layers/0/file", "\"../web1/disk0-l1.img\""},
        {"layers/0/file", "\"web1/sub/disk0-l1.img\""},
        {"layers/0/file", "\"web1/.disk0-l1.img\""},
        {"layers/0/file", "\"web1/..\""},
        {"layers/0/file", "\"web1/\""},
        {"layers/0/file", "\"web1\""},
        {"layers/0/file", "\"/web1/disk0-l1.img\""},
        {"layers/0/file", "\"web1//disk0-l1.img\""},
        {"layers/0/file", "\"web2/disk0-l1.img\""}, /* another VM's, not foreign */
        {"layers/0/file", "\"web1/disk1-l2.img\""}, /* l2's file, twice */
        {"layers/0/file", "\"web1/disk0 l1.img\""},
        {"layers/0/foreign", "true"}, /* web1 is no instant clone */
        {"config", "\"web2/config-3.enc\""},
        {"config", "\"/tmp/config\""},
        {"config", "null"},
        {"nvram", "\"web1/../../nvram\""},
        {"nvram", "\"plain1/nvram-3.enc\""},
        {"snapshots/0/nvram", "\"/tmp/snap.nvram\""},
        {"snapshots/0/nvram", "\"web2/snap-s1.nvram\""},
        /* identifiers */
        {"uuid", "\"../../../../../../../../../../../etc\""},
        {"uuid", "\"4C4C4544-0031-3410-8056-B4C04F4E3732\""},
        {"uuid", "\"4c4c4544-0031-3410-8056-b4c04f4e373\""},
        {"uuid", "\"\""},
        {"created", "\"yesterday\""},
        {"snapshots/0/created", "\"2026-11-23 10:05:00\""},
        {"layers/0/id", "\"x1\""},
        {"layers/0/id", "\"l01\""},
        {"layers/0/id", "\"l\""},
        {"layers/0/id", "\"l9\""}, /* beyond next_layer: a new layer would take it */
        {"next_layer", "3"},       /* below l4 */
        {"layers/0/id", "\"l2\""}, /* twice */
        {"layers/0/id", "\"l1,file.filename=/etc/shadow\""},
        /* dangling references */
        {"layers/2/parent", "\"l9\""},
        {"layers/2/parent", "\"l2\""}, /* on another disk */
        {"layers/2/parent", "\"l3\""}, /* itself */
        {"layers/2/parent", "\"\""},
        {"disks/0/active", "\"l9\""},
        {"disks/0/active", "\"l4\""}, /* disk 1's layer */
        {"disks/0/active", "\"\""},
        {"snapshots/0/layers/0", "\"l9\""},
        {"snapshots/0/layers/0", "\"l2\""}, /* disk 1's layer */
        {"snapshots/0/layers", "[\"l1\"]"}, /* one per disk */
        {"snapshots/0/layers", "[\"l1\", \"l2\", \"l3\"]"},
        {"snapshots", "[{\"name\": \"s1\", \"created\": \"2026-11-23T10:05:00Z\", \"layers\": "
                      "[\"l1\", \"l2\"], \"nvram\": null}, {\"name\": \"s1\", \"created\": "
                      "\"2026-11-23T10:05:00Z\", \"layers\": [\"l1\", \"l2\"], \"nvram\": null}]"},
        {"layers/3/disk", "2"}, /* a layer of no disk */
        {"layers/3/disk", "16"},
        {"layers/3/disk", "4294967296"},
        /* sizes */
        {"disks/0/size", "0"},
        {"disks/0/size", "511"},
        {"disks/0/size", "1048577"},
        {"disks/0/size", "1048832"},
        {"disks/0/size", "70368744178176"}, /* 64 TiB + 512 */
        {"disks/0/size", "9223372036854775296"},
        {"generation", "9007199254740992"}, /* 2^53 */
        {"next_layer", "9223372036854775807"},
        /* formats and secrets */
        {"layers/0/format", "\"vmdk\""},
        {"layers/0/format", "\"LUKS\""},
        {"layers/0/format", "\"raw\""},   /* plaintext layer in an encrypted VM */
        {"layers/2/format", "\"qcow2\""}, /* same */
        {"layers/0/secret", "null"},
        {"layers/0/secret", "\"\""},
        {"layers/0/secret", secret32},
        {"layers/0/secret", secret48},
        {"layers/0/secret", "\"not base64!\""},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw\""},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\\n\""},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJx==\""},
        {"encryption/file_key", secret32},
        {"encryption/file_key", "\"=AAA\""},
        {"encryption", "{}"},
        {"encryption", "null"}, /* then its encrypted layers are refused */
        /* tag */
        {"tag", "\"00\""},
        {"tag", "\"zz7le93gz1k3uzaaheh67vbq01w//kug7k0mhhcv+ljdi4tisjo0vw==zzzzzzzz\""},
        {"tag", "\"a507e234f44107b38449c317e3404ba7e7e55147d5b14792abd4b73e371127e\""},
        {"tag", "\"a507e234f44107b38449c317e3404ba7e7e55147d5b14792abd4b73e371127e5a\""},
    };
    static const struct change plain[] = {
        {"layers/0/format", "\"luks\""}, /* an encrypted layer in an unencrypted VM */
        {"layers/0/format", "\"qcow2-luks\""},
        {"layers/0/secret", secret32},
        {"layers/0/secret", "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISInJCUmJw==\""},
        {"layers/0/secret", "\"\""},
        {"layers/0/shared", "null"},
        {"template", "null"},
        {"template", "\"true\""},
        {"template", "1"},
        {"generation", "\"1\""},
        {"generation", "1.5"},
        {"name", "\"plain2\""},
        {"name", "\"a/b\""},
        {"name", "null"},
        {"layers", "{}"},
        {"layers", "[]"}, /* the disk's active layer is missing */
        {"disks", "[]"},  /* then the layer belongs to no disk */
    };
    static const struct change inst[] = {
        {"instant_clone_of", "null"},                 /* foreign layers in a VM that is none */
        {"instant_clone_of", "\"plain1\""},           /* foreign layers elsewhere than the source */
        {"layers/0/file", "\"plain1/x.img\""},        /* foreign, not in the source's directory */
        {"layers/2/file", "\"web1/disk0-l8.qcow2\""}, /* own layer in the source's directory */
        {"layers/0/foreign", "false"},
        {"disks/0/active", "\"l3\""}, /* the guest would write the source's frozen layer */
        {"layers/2/shared", "true"},  /* the active layer frozen */
    };
    struct vm_desc *e = build_encrypted(), *p = build_plain(), *i = build_instant();
    char *etext = save_text(e), *ptext = save_text(p), *itext = save_text(i);
    for (size_t k = 0; k < sizeof enc / sizeof enc[0]; k++)
        assert_refused(etext, "web1", &enc[k]);
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
        assert_refused(ptext, "plain1", &plain[k]);
    for (size_t k = 0; k < sizeof inst / sizeof inst[0]; k++)
        assert_refused(itext, "web2", &inst[k]);
    free(etext);
    free(ptext);
    free(itext);
    free(e);
    free(p);
    free(i);
}

/* Raw texts: not JSON, not an object, duplicate keys, NULs, oversize. */
static void test_refused_texts(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted(), *out = calloc(1, sizeof *out);
    char *text = save_text(d);
    uint8_t tag[32];
    static const char *const bad[] = {
        "", " ", "null", "[]", "\"web1\"", "1", "{", "{}", "{\"format\": \"vmseal-vm/1\"}", NULL};
    for (size_t k = 0; bad[k] != NULL; k++)
        assert_err(parse(bad[k], "web1", out, tag), ERR_DESCRIPTOR);

    /* Duplicate keys, at the top and inside a layer: the second value
     * would silently win in a lenient parser. */
    size_t len = strlen(text);
    char *dup = malloc(len + 64);
    snprintf(dup, len + 64, "{\n  \"name\": \"web1\",%s", text + 1);
    assert_err(parse(dup, "web1", out, tag), ERR_DESCRIPTOR);
    char *at = strstr(text, "\"id\": \"l1\"");
    assert_non_null(at);
    snprintf(dup, len + 64, "%.*s\"id\": \"l1\", \"id\": \"l1\"%s", (int)(at - text), text,
             at + strlen("\"id\": \"l1\""));
    assert_err(parse(dup, "web1", out, tag), ERR_DESCRIPTOR);

    /* Trailing bytes, a NUL inside the text. */
    snprintf(dup, len + 64, "%s{}", text);
    assert_err(parse(dup, "web1", out, tag), ERR_DESCRIPTOR);
    memcpy(dup, text, len + 1);
    dup[len / 2] = '\0';
    assert_err(vm_desc_parse((const uint8_t *)dup, len, "web1", out, tag), ERR_DESCRIPTOR);
    free(dup);
    char *n = edit(text, "snapshots/0/name", "\"s1\\u0000x\"");
    assert_err(parse(n, "web1", out, tag), ERR_DESCRIPTOR);
    free(n);

    /* The text as saved still parses. */
    assert_ok(parse(text, "web1", out, tag));
    assert_ok(vm_desc_verify(out, file_key, tag));

    /* Oversize: the valid text padded with spaces past the limit. */
    char *big = malloc(VM_DESC_MAX_BYTES + 2);
    memset(big, ' ', VM_DESC_MAX_BYTES + 1);
    memcpy(big, text, len);
    big[VM_DESC_MAX_BYTES + 1] = '\0';
    assert_ok(vm_desc_parse((const uint8_t *)big, VM_DESC_MAX_BYTES, "web1", out, tag));
    assert_err(vm_desc_parse((const uint8_t *)big, VM_DESC_MAX_BYTES + 1, "web1", out, tag),
               ERR_DESCRIPTOR);
    /* The same from a file. */
    char path[256];
    snprintf(path, sizeof path, "%s/web1/vm.json", ds);
    assert_ok(file_write_atomic(path, big, VM_DESC_MAX_BYTES + 1, 0600));
    assert_err(vm_desc_load(ds, "web1", out, tag), ERR_DESCRIPTOR);
    free(big);

    /* The name must be the directory's. */
    assert_err(parse(text, "web2", out, tag), ERR_DESCRIPTOR);
    assert_non_null(strstr(err_last()->detail, "web2"));
    /* And a valid name at all (the caller's mistake). */
    assert_err(parse(text, "../web1", out, tag), ERR_INVALID_ARG);
    assert_err(vm_desc_load(ds, "../web1", out, tag), ERR_INVALID_ARG);
    assert_err(vm_desc_load(ds, "nosuchvm", out, tag), ERR_NOT_FOUND);
    free(text);
    free(out);
    free(d);
}

/* Counts: at most VM_MAX_* of each. */
static void test_limits(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted(), *out = calloc(1, sizeof *out);
    char *text = save_text(d);
    json_t *root = json_loads(text, 0, NULL);
    char *t;
    /* 33 dependents. */
    json_t *deps = json_array();
    for (int k = 0; k < VM_MAX_DEPENDENTS + 1; k++)
        json_array_append_new(deps, json_sprintf("c%d", k));
    json_object_set(root, "dependents", deps);
    t = json_dumps(root, 0);
    assert_err(parse(t, "web1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    json_array_remove(deps, 0);
    t = json_dumps(root, 0);
    assert_ok(parse(t, "web1", out, NULL));
    assert_int_equal(out->dependent_count, VM_MAX_DEPENDENTS);
    free(t);
    json_decref(deps);
    json_object_set_new(root, "dependents", json_array());
    /* 33 snapshots. */
    json_t *snaps = json_array();
    for (int k = 0; k < VM_MAX_SNAPSHOTS + 1; k++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", k);
        json_array_append_new(snaps,
                              json_pack("{s:s, s:s, s:[s,s], s:n}", "name", name, "created",
                                        "2026-11-23T10:05:00Z", "layers", "l1", "l2", "nvram"));
    }
    json_object_set(root, "snapshots", snaps);
    t = json_dumps(root, 0);
    assert_err(parse(t, "web1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    json_array_remove(snaps, 0);
    t = json_dumps(root, 0);
    assert_ok(parse(t, "web1", out, NULL));
    assert_int_equal(out->snapshot_count, VM_MAX_SNAPSHOTS);
    free(t);
    json_decref(snaps);
    /* 129 layers: the limit comes before anything else is checked. */
    json_t *layers = json_array();
    for (int k = 0; k < VM_MAX_LAYERS + 1; k++)
        json_array_append_new(layers, json_object());
    json_object_set_new(root, "layers", layers);
    t = json_dumps(root, 0);
    assert_err(parse(t, "web1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    /* 17 disks. */
    json_t *disks = json_array();
    for (int k = 0; k < VM_MAX_DISKS + 1; k++)
        json_array_append_new(disks, json_pack("{s:i, s:s}", "size", 512, "active", "l1"));
    json_object_set_new(root, "disks", disks);
    t = json_dumps(root, 0);
    assert_err(parse(t, "web1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    json_decref(root);
    free(text);
    free(out);
    free(d);
}

/* Chains: up to DISK_CHAIN_MAX layers; longer, or a cycle, refused,
 * whether the active layer or only a snapshot reaches it. */
static struct vm_desc *build_chain(size_t n)
{
    struct vm_desc *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->name, sizeof d->name, "long1");
    snprintf(d->uuid, sizeof d->uuid, "0192f3a0-7c1e-4b8a-9d2f-6e5a4b3c2d1f");
    snprintf(d->created, sizeof d->created, "2026-01-02T03:04:05Z");
    snprintf(d->config_file, sizeof d->config_file, "long1/config-1.plain");
    d->disk_count = 1;
    d->disks[0].size = 1 << 20;
    for (size_t i = 0; i < n; i++) {
        struct vm_layer *l;
        char file[64];
        assert_ok(vm_desc_add_layer(d, 0, &l));
        snprintf(file, sizeof file, "long1/disk0-%s.qcow2", l->id);
        snprintf(l->file, sizeof l->file, "%s", file);
        l->format = i == 0 ? DISK_FORMAT_RAW : DISK_FORMAT_QCOW2;
        if (i > 0)
            snprintf(l->parent, sizeof l->parent, "%s", d->layers[i - 1].id);
        snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "%s", l->id);
    }
    return d;
}

static void test_chains(void **state)
{
    (void)state;
    struct vm_desc *out = calloc(1, sizeof *out);
    struct vm_layer *chain[DISK_CHAIN_MAX];
    size_t n;

    struct vm_desc *d = build_chain(DISK_CHAIN_MAX);
    char *text = save_text(d);
    assert_ok(parse(text, "long1", out, NULL));
    assert_ok(vm_desc_chain(out, 0, chain, &n));
    assert_int_equal(n, DISK_CHAIN_MAX);
    assert_string_equal(chain[0]->id, "l64");
    assert_string_equal(chain[DISK_CHAIN_MAX - 1]->id, "l1");
    free(text);
    free(d);

    d = build_chain(DISK_CHAIN_MAX + 1);
    text = save_text(d);
    assert_err(parse(text, "long1", out, NULL), ERR_DESCRIPTOR);
    /* Also when the over-long chain is only a snapshot's: the active
     * layer is the base, a snapshot holds the top. */
    char *t = edit(text, "disks/0/active", "\"l1\"");
    assert_err(parse(t, "long1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    free(text);
    free(d);

    /* A cycle through the active layer: l1 -> l3 -> l2 -> l1. */
    d = build_chain(3);
    text = save_text(d);
    t = edit(text, "layers/0/parent", "\"l3\"");
    assert_err(parse(t, "long1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    /* A cycle among layers no disk reaches: the active layer is a base,
     * l2 and l3 point at each other. */
    char *t2 = edit(text, "layers/1/parent", "\"l3\"");
    t = edit(t2, "disks/0/active", "\"l1\"");
    assert_err(parse(t, "long1", out, NULL), ERR_DESCRIPTOR);
    free(t);
    free(t2);
    free(text);
    free(d);
    free(out);
}

/* --- the edits operations make ---------------------------------------------- */

static void test_chain_and_lookups(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted();
    struct vm_layer *chain[DISK_CHAIN_MAX];
    size_t n = 99;
    assert_ok(vm_desc_chain(d, 0, chain, &n));
    assert_int_equal(n, 2);
    assert_string_equal(chain[0]->id, "l3");
    assert_string_equal(chain[1]->id, "l1");
    assert_ok(vm_desc_chain(d, 1, chain, &n));
    assert_string_equal(chain[0]->id, "l4");
    assert_string_equal(chain[1]->id, "l2");
    assert_err(vm_desc_chain(d, 2, chain, &n), ERR_INVALID_ARG);

    assert_ptr_equal(vm_desc_layer(d, "l2"), &d->layers[1]);
    assert_null(vm_desc_layer(d, "l5"));
    assert_null(vm_desc_layer(d, ""));
    assert_non_null(vm_desc_snapshot(d, "s1"));
    assert_null(vm_desc_snapshot(d, "s2"));

    assert_int_equal(vm_desc_children(d, "l1"), 1);
    assert_int_equal(vm_desc_children(d, "l3"), 0);
    assert_int_equal(vm_desc_children(d, "l9"), 0);
    /* In use: as an active layer, by a snapshot, as a parent. */
    assert_true(vm_desc_layer_in_use(d, "l3"));
    assert_true(vm_desc_layer_in_use(d, "l1"));
    d->snapshot_count = 0;
    assert_true(vm_desc_layer_in_use(d, "l1")); /* l3's parent */
    assert_false(vm_desc_layer_in_use(d, "l9"));

    /* A missing parent in memory: refused, not followed. */
    snprintf(d->layers[2].parent, VM_LAYER_ID_MAX, "l9");
    assert_err(vm_desc_chain(d, 0, chain, &n), ERR_DESCRIPTOR);
    /* A cycle in memory. */
    snprintf(d->layers[2].parent, VM_LAYER_ID_MAX, "l3");
    assert_err(vm_desc_chain(d, 0, chain, &n), ERR_DESCRIPTOR);
    /* A dangling active layer. */
    snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "l9");
    assert_err(vm_desc_chain(d, 0, chain, &n), ERR_DESCRIPTOR);
    free(d);
}

static void test_add_remove(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted();
    struct vm_layer *l;
    assert_ok(vm_desc_add_layer(d, 1, &l));
    assert_string_equal(l->id, "l5");
    assert_int_equal(l->disk, 1);
    assert_int_equal(d->next_layer, 5);
    assert_int_equal(d->layer_count, 5);
    assert_int_equal(l->wrapped_len, 0);
    assert_string_equal(l->parent, "");

    /* Removal keeps the order of the others and clears the freed slot. */
    vm_desc_remove_layer(d, "l2");
    assert_int_equal(d->layer_count, 4);
    assert_string_equal(d->layers[0].id, "l1");
    assert_string_equal(d->layers[1].id, "l3");
    assert_string_equal(d->layers[2].id, "l4");
    assert_string_equal(d->layers[3].id, "l5");
    static const struct vm_layer zero;
    assert_memory_equal(&d->layers[4], &zero, sizeof zero);
    vm_desc_remove_layer(d, "l2"); /* absent: nothing happens */
    assert_int_equal(d->layer_count, 4);
    /* The id may point into the array itself. */
    vm_desc_remove_layer(d, d->layers[3].id);
    assert_int_equal(d->layer_count, 3);
    assert_null(vm_desc_layer(d, "l5"));

    /* Ids are never reused, even after a removal. */
    assert_ok(vm_desc_add_layer(d, 0, &l));
    assert_string_equal(l->id, "l6");

    /* Up to VM_MAX_LAYERS. */
    while (d->layer_count < VM_MAX_LAYERS)
        assert_ok(vm_desc_add_layer(d, 0, &l));
    size_t next = d->next_layer;
    assert_err(vm_desc_add_layer(d, 0, &l), ERR_TOO_LARGE);
    assert_int_equal(d->next_layer, next);
    assert_int_equal(d->layer_count, VM_MAX_LAYERS);
    free(d);
}

/* What add_layer makes, saved and loaded, parses: the ids it hands out
 * are ones the parser accepts. */
static void test_added_layers_parse(void **state)
{
    (void)state;
    struct vm_desc *d = build_encrypted(), *out = calloc(1, sizeof *out);
    struct vm_layer *l;
    uint8_t tag[32];
    assert_ok(vm_desc_add_layer(d, 0, &l));
    snprintf(l->file, sizeof l->file, "web1/disk0-%s.qcow2", l->id);
    snprintf(l->parent, sizeof l->parent, "l3");
    l->format = DISK_FORMAT_QCOW2_LUKS;
    l->wrapped_len = CRYPTO_KWP_WRAPPED_LEN(LUKS1_SECRET_LEN);
    snprintf(d->disks[0].active, VM_LAYER_ID_MAX, "%s", l->id);
    char *text = save_text(d);
    assert_ok(parse(text, "web1", out, tag));
    assert_ok(vm_desc_verify(out, file_key, tag));
    assert_desc_equal(d, out);
    free(text);
    free(out);
    free(d);
}

static void test_format_names(void **state)
{
    (void)state;
    static const enum disk_format all[] = {DISK_FORMAT_RAW, DISK_FORMAT_LUKS, DISK_FORMAT_QCOW2,
                                           DISK_FORMAT_QCOW2_LUKS};
    for (size_t i = 0; i < 4; i++) {
        enum disk_format f;
        assert_ok(vm_format_parse(vm_format_name(all[i]), &f));
        assert_int_equal(f, all[i]);
    }
    enum disk_format f = DISK_FORMAT_RAW;
    assert_err(vm_format_parse("vmdk", &f), ERR_DESCRIPTOR);
    assert_err(vm_format_parse("", &f), ERR_DESCRIPTOR);
    assert_err(vm_format_parse("qcow2 ", &f), ERR_DESCRIPTOR);
    assert_int_equal(f, DISK_FORMAT_RAW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_encrypted),
        cmocka_unit_test(test_round_trip_plain),
        cmocka_unit_test(test_round_trip_instant),
        cmocka_unit_test(test_mixed_disks),
        cmocka_unit_test(test_save_failure_keeps_generation),
        cmocka_unit_test(test_tag_keys),
        cmocka_unit_test(test_tag_construction),
        cmocka_unit_test(test_tag_unencrypted_sha256),
        cmocka_unit_test(test_canonical_covers_the_file),
        cmocka_unit_test(test_tamper_each_field),
        cmocka_unit_test(test_tamper_every_leaf),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refused_texts),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chains),
        cmocka_unit_test(test_chain_and_lookups),
        cmocka_unit_test(test_add_remove),
        cmocka_unit_test(test_added_layers_parse),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
