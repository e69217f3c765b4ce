/*
 * fuzz_vm_descriptor.c - libFuzzer target for the VM descriptor parser,
 * vm_desc_parse (src/vm/descriptor.c): vm.json is read from the datastore,
 * which the threat model does not trust (its tag is checked only after
 * parsing, and an unencrypted VM's tag is a SHA-256 anyone can recompute).
 *
 * The input is the file's text; the directory name passed is the text's own
 * "name" when it is a valid one (so that accepted inputs reach the checks
 * below), else "vm". For any input the parser accepts or refuses with
 * ERR_DESCRIPTOR, and what it accepts is what the writer could have
 * written:
 *   - every disk's chain (vm_desc_chain) starts at its active layer (its
 *     own, not frozen), runs parent by parent on that disk, and ends at a
 *     base layer;
 *   - every layer's file is in the VM's directory, or a foreign layer's in
 *     its source's; the UUID is a UUID;
 *   - the canonical bytes (vm_desc_canonical) with a tag added parse again
 *     to exactly the same descriptor, and the tag can be computed both
 *     ways (file key and SHA-256).
 * Seeds: vm.json files written by vmseald (corpus/vm_descriptor/).
 *
 * Byte mutations of JSON rarely give a descriptor that still parses, so a
 * custom mutator also edits the JSON tree of inputs that are JSON: a value
 * changed, replaced by another of the document's strings (ids, names and
 * files then point at each other), set to null, removed or duplicated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vm/descriptor.h"

#include "fuzz_util.h"

/* The "name" member of the text when it is a valid VM name, else "vm". */
static void dir_name(const uint8_t *data, size_t size, char out[VM_NAME_MAX])
{
    json_t *o = json_loadb((const char *)data, size, 0, NULL);
    const char *n = json_string_value(json_object_get(o, "name"));
    if (n != NULL && strlen(n) < VM_NAME_MAX && is_ok(vm_check_name("VM", n)))
        memcpy(out, n, strlen(n) + 1);
    else
        memcpy(out, "vm", 3);
    json_decref(o);
    err_clear();
}

static void check_chains(struct vm_desc *d)
{
    for (unsigned k = 0; k < d->disk_count; k++) {
        struct vm_layer *chain[DISK_CHAIN_MAX];
        size_t n = 0;
        CHECK(is_ok(vm_desc_chain(d, k, chain, &n)));
        CHECK(n >= 1 && n <= DISK_CHAIN_MAX);
        CHECK(strcmp(chain[0]->id, d->disks[k].active) == 0);
        CHECK(!chain[0]->shared && !chain[0]->foreign);
        for (size_t i = 0; i < n; i++) {
            CHECK(chain[i]->disk == k);
            if (i + 1 < n)
                CHECK(strcmp(chain[i]->parent, chain[i + 1]->id) == 0);
        }
        CHECK(chain[n - 1]->parent[0] == '\0');
        CHECK(vm_desc_layer_in_use(d, chain[0]->id));
    }
    for (size_t i = 0; i < d->layer_count; i++) {
        const struct vm_layer *l = &d->layers[i];
        const char *owner = l->foreign ? d->instant_clone_of : d->name;
        size_t n = strlen(owner);
        CHECK(strncmp(l->file, owner, n) == 0 && l->file[n] == '/');
        CHECK(strchr(l->file + n + 1, '/') == NULL);
        CHECK(vm_desc_layer(d, l->id) == l);
        CHECK(vm_desc_children(d, l->id) <= d->layer_count);
    }
    for (size_t i = 0; i < d->snapshot_count; i++)
        for (unsigned k = 0; k < d->disk_count; k++)
            CHECK(vm_desc_layer(d, d->snapshots[i].layers[k]) != NULL);
    CHECK(vm_is_uuid(d->uuid));
}

/* The canonical bytes, with a tag, parse to the same descriptor. */
static void check_canonical(const struct vm_desc *d)
{
    static const uint8_t key[VM_FILE_KEY_LEN] = {1, 2, 3};
    static struct vm_desc again;
    static const char tag_member[] =
        ",\"tag\":\"0000000000000000000000000000000000000000000000000000000000000000\"}";
    struct buf b;
    uint8_t tag[32];

    CHECK(is_ok(buf_alloc(&b, 4096, VM_DESC_MAX_BYTES + sizeof tag_member)));
    CHECK(is_ok(vm_desc_canonical(d, &b)));
    CHECK(buf_len(&b) > 2 && buf_data(&b)[buf_len(&b) - 1] == '}');
    CHECK(is_ok(buf_truncate(&b, buf_len(&b) - 1)));
    CHECK(is_ok(buf_write_bytes(&b, tag_member, sizeof tag_member - 1)));
    vs_result r = vm_desc_parse(buf_data(&b), buf_len(&b), d->name, &again, tag);
    CHECK(is_ok(r));
    CHECK(memcmp(d, &again, sizeof again) == 0);
    buf_free(&b);
    CHECK(is_ok(vm_desc_tag(d, key, tag)));
    CHECK(is_ok(vm_desc_tag(d, NULL, tag)));
}

/* --- the structure-aware mutator ----------------------------------------- */

/* libFuzzer's own mutator; absent (NULL) when linked without libFuzzer. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) __attribute__((weak));
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define NODES_MAX 2048

struct node {
    json_t *value, *parent;
    const char *key; /* member name when parent is an object */
    size_t index;    /* element index when parent is an array */
};

struct nodes {
    struct node n[NODES_MAX];
    size_t count;
    const char *strings[NODES_MAX]; /* every string value and member name */
    size_t string_count;
};

static void walk(json_t *v, json_t *parent, const char *key, size_t index, struct nodes *all)
{
    const char *k;
    json_t *x;
    size_t i;
    if (all->count == NODES_MAX)
        return;
    all->n[all->count++] = (struct node){v, parent, key, index};
    if (json_is_string(v) && all->string_count < NODES_MAX)
        all->strings[all->string_count++] = json_string_value(v);
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (all->string_count < NODES_MAX)
                all->strings[all->string_count++] = k;
            walk(x, v, k, 0, all);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) walk(x, v, NULL, i, all);
    }
}

static unsigned next_random(unsigned *state)
{
    /* xorshift32: deterministic for a given seed, as libFuzzer requires */
    unsigned x = *state != 0 ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Replaces node t's value by v (a new reference), or removes it (v NULL). */
static void set_node(const struct node *t, json_t *v)
{
    if (t->parent == NULL) {
        json_decref(v);
        return;
    }
    if (json_is_object(t->parent)) {
        char key[256];
        snprintf(key, sizeof key, "%s", t->key); /* t->key dies with the member */
        if (v != NULL)
            json_object_set_new(t->parent, key, v);
        else
            json_object_del(t->parent, key);
    } else if (v != NULL) {
        json_array_set_new(t->parent, t->index, v);
    } else {
        json_array_remove(t->parent, t->index);
    }
}

static void mutate_tree(json_t *root, unsigned *rnd)
{
    static struct nodes all;
    all.count = all.string_count = 0;
    walk(root, NULL, NULL, 0, &all);
    const struct node *t = &all.n[next_random(rnd) % all.count];
    char other[256], s[256];
    /* A copy: the edit may free the string it came from. */
    snprintf(other, sizeof other, "%s",
             all.string_count > 0 ? all.strings[next_random(rnd) % all.string_count] : "l1");
    switch (next_random(rnd) % 8) {
    case 0: /* another string of the document */
        set_node(t, json_string(other));
        break;
    case 1: /* null */
        set_node(t, json_null());
        break;
    case 2: /* removed */
        set_node(t, NULL);
        break;
    case 3: /* duplicated into its array, or a copy added to its object */
        if (json_is_array(t->parent))
            json_array_append(t->parent, t->value);
        else if (json_is_object(t->value))
            json_object_set_new(t->value, other, json_deep_copy(t->value));
        break;
    case 4: /* a number near a boundary */
    {
        static const json_int_t ints[] = {0,   1,   -1,  15,  16,  63,      64,         65,
                                          127, 128, 511, 512, 513, 1048576, 4294967296, INT64_MAX};
        set_node(t, json_integer(ints[next_random(rnd) % (sizeof ints / sizeof ints[0])]));
        break;
    }
    case 5: /* booleans flip; other values become one */
        set_node(t, json_boolean(!json_is_true(t->value)));
        break;
    default: /* one character of a string changed, added or removed */
        if (json_is_string(t->value)) {
            static const char chars[] = "l0123456789/.-_aZ=+ \x7f";
            snprintf(s, sizeof s, "%s", json_string_value(t->value));
            size_t len = strlen(s), at = len > 0 ? next_random(rnd) % len : 0;
            unsigned how = next_random(rnd) % 3;
            char c = chars[next_random(rnd) % (sizeof chars - 1)];
            if (how == 0 && len > 0)
                s[at] = c;
            else if (how == 1 && len + 1 < sizeof s) {
                memmove(s + at + 1, s + at, len - at + 1);
                s[at] = c;
            } else if (len > 0) {
                memmove(s + at, s + at + 1, len - at);
            }
            set_node(t, json_string(s));
        }
        break;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    unsigned rnd = seed;
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (root == NULL || next_random(&rnd) % 4 == 0) {
        json_decref(root);
        return LLVMFuzzerMutate != NULL ? LLVMFuzzerMutate(data, size, max_size) : size;
    }
    for (unsigned k = 1 + next_random(&rnd) % 3; k > 0; k--)
        mutate_tree(root, &rnd);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t n = text != NULL ? strlen(text) : 0;
    if (text == NULL || n > max_size) {
        free(text);
        return LLVMFuzzerMutate != NULL ? LLVMFuzzerMutate(data, size, max_size) : size;
    }
    memcpy(data, text, n);
    free(text);
    return n;
}

/* --- the target ----------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vm_desc d; /* 60 KB: not on the stack */
    char name[VM_NAME_MAX];
    uint8_t tag[32];

    dir_name(data, size, name);
    vs_result r = vm_desc_parse(data, size, name, &d, tag);
    CHECK(is_ok(r) || r.code == ERR_DESCRIPTOR);
    if (is_ok(r)) {
        check_chains(&d);
        check_canonical(&d);
    }
    /* Without tag_out, the same answer. */
    vs_result r2 = vm_desc_parse(data, size, name, &d, NULL);
    CHECK(r2.code == r.code || (is_ok(r2) && r.code == ERR_DESCRIPTOR));
    err_clear();
    return 0;
}
