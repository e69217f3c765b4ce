/* descriptor.c - see descriptor.h. */
#include "vm/descriptor.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/crypto.h"
#include "core/file.h"
#include "core/secret.h"

static const char tag_info[] = "vmseal descriptor tag v1";

static const struct {
    enum disk_format format;
    const char *name;
} format_names[] = {
    {DISK_FORMAT_RAW, "raw"},
    {DISK_FORMAT_LUKS, "luks"},
    {DISK_FORMAT_QCOW2, "qcow2"},
    {DISK_FORMAT_QCOW2_LUKS, "qcow2-luks"},
};

const char *vm_format_name(enum disk_format f)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (format_names[i].format == f)
            return format_names[i].name;
    return "unknown";
}

RESULT vm_format_parse(const char *s, enum disk_format *out)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
        if (strcmp(format_names[i].name, s) == 0) {
            *out = format_names[i].format;
            return OK_RESULT;
        }
    }
    RAISE(ERR_DESCRIPTOR);
    return err_detail("unknown disk format '%.32s'", s);
}

bool vm_format_encrypted(enum disk_format f)
{
    return f == DISK_FORMAT_LUKS || f == DISK_FORMAT_QCOW2_LUKS;
}

bool vm_disk_encrypted(const struct vm_desc *d, unsigned disk)
{
    for (size_t i = 0; disk < d->disk_count && i < d->layer_count; i++)
        if (strcmp(d->layers[i].id, d->disks[disk].active) == 0)
            return vm_format_encrypted(d->layers[i].format);
    return false;
}

/* --- encoding ------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

static RESULT b64_json(const uint8_t *data, size_t len, json_t **out)
{
    struct buf b = {0};
    vs_result rc = OK_RESULT;
    GUARD(buf_alloc(&b, 128, 4096));
    GUARD_OUT(vm_b64_encode(data, len, &b));
    *out = json_string((const char *)buf_data(&b));
    ENSURE_OUT(*out != NULL, ERR_NOMEM);
out:
    buf_free(&b);
    return rc;
}

/* Builds the descriptor's JSON (without the tag). */
static RESULT desc_to_json(const struct vm_desc *d, json_t **out)
{
    vs_result rc = OK_RESULT;
    json_t *o = json_object(), *a, *x;
    ENSURE(o != NULL, ERR_NOMEM);
    int e = 0;
    e |= json_object_set_new(o, "format", json_string(VM_DESC_FORMAT));
    e |= json_object_set_new(o, "name", json_string(d->name));
    e |= json_object_set_new(o, "uuid", json_string(d->uuid));
    e |= json_object_set_new(o, "created", json_string(d->created));
    e |= json_object_set_new(o, "generation", json_integer((json_int_t)d->generation));
    e |= json_object_set_new(o, "next_layer", json_integer((json_int_t)d->next_layer));
    e |= json_object_set_new(o, "template", json_boolean(d->template_));
    e |= json_object_set_new(o, "instant_clone_of", str_or_null(d->instant_clone_of));
    a = json_array();
    for (size_t i = 0; a != NULL && i < d->dependent_count; i++)
        e |= json_array_append_new(a, json_string(d->dependents[i]));
    e |= json_object_set_new(o, "dependents", a);
    if (d->encrypted) {
        x = json_object();
        json_t *fk = NULL;
        GUARD_OUT(b64_json(d->wrapped_file_key, d->wrapped_file_key_len, &fk));
        if (x != NULL) {
            e |= json_object_set_new(x, "provider", json_string(d->key.provider));
            e |= json_object_set_new(x, "key_id", json_string(d->key.key_id));
            e |= json_object_set_new(x, "file_key", fk);
        } else {
            json_decref(fk);
        }
        e |= json_object_set_new(o, "encryption", x);
    } else {
        e |= json_object_set_new(o, "encryption", json_null());
    }
    e |= json_object_set_new(o, "config", json_string(d->config_file));
    e |= json_object_set_new(o, "nvram", str_or_null(d->nvram_file));

    a = json_array();
    for (size_t i = 0; a != NULL && i < d->disk_count; i++) {
        x = json_pack("{s:I, s:s}", "size", (json_int_t)d->disks[i].size, "active",
                      d->disks[i].active);
        e |= json_array_append_new(a, x);
    }
    e |= json_object_set_new(o, "disks", a);

    a = json_array();
    for (size_t i = 0; a != NULL && i < d->layer_count; i++) {
        const struct vm_layer *l = &d->layers[i];
        json_t *secret = json_null();
        if (l->wrapped_len > 0)
            GUARD_OUT(b64_json(l->wrapped_secret, l->wrapped_len, &secret));
        x = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o, s:b, s:b}", "id", l->id, "disk",
                      (json_int_t)l->disk, "file", l->file, "format", vm_format_name(l->format),
                      "parent", str_or_null(l->parent), "secret", secret, "shared", l->shared,
                      "foreign", l->foreign);
        e |= json_array_append_new(a, x);
    }
    e |= json_object_set_new(o, "layers", a);

    a = json_array();
    for (size_t i = 0; a != NULL && i < d->snapshot_count; i++) {
        const struct vm_snapshot *s = &d->snapshots[i];
        json_t *ls = json_array();
        for (size_t k = 0; ls != NULL && k < d->disk_count; k++)
            e |= json_array_append_new(ls, json_string(s->layers[k]));
        x = json_pack("{s:s, s:s, s:o, s:o}", "name", s->name, "created", s->created, "layers",
                      ls ? ls : json_null(), "nvram", str_or_null(s->nvram_file));
        e |= json_array_append_new(a, x);
    }
    e |= json_object_set_new(o, "snapshots", a);
    ENSURE_OUT(e == 0, ERR_NOMEM);
    *out = o;
    o = NULL;
out:
    json_decref(o);
    return rc;
}

RESULT vm_desc_canonical(const struct vm_desc *d, struct buf *out)
{
    json_t *o = NULL;
    GUARD(desc_to_json(d, &o));
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    ENSURE(text != NULL, ERR_NOMEM);
    vs_result rc = buf_write_bytes(out, text, strlen(text));
    free(text);
    return rc;
}

RESULT vm_desc_tag(const struct vm_desc *d, const uint8_t *file_key, uint8_t tag[32])
{
    struct buf b = {0};
    vs_result rc = OK_RESULT;
    uint8_t *mac_key = NULL;
    GUARD(buf_alloc(&b, 4096, VM_DESC_MAX_BYTES));
    GUARD_OUT(vm_desc_canonical(d, &b));
    if (file_key != NULL) {
        GUARD_OUT(secret_alloc(32, (void **)&mac_key));
        GUARD_OUT(crypto_hkdf_sha256(NULL, 0, file_key, VM_FILE_KEY_LEN, tag_info,
                                     sizeof tag_info - 1, mac_key, 32));
        GUARD_OUT(crypto_hmac_sha256(mac_key, 32, buf_data(&b), buf_len(&b), tag));
    } else {
        GUARD_OUT(crypto_sha256(buf_data(&b), buf_len(&b), tag));
    }
out:
    secret_free((void **)&mac_key);
    buf_free(&b);
    return rc;
}

RESULT vm_desc_verify(const struct vm_desc *d, const uint8_t *file_key, const uint8_t tag[32])
{
    uint8_t want[32];
    GUARD(vm_desc_tag(d, file_key, want));
    if (!secret_equal(want, tag, 32)) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("vm.json of VM '%s' fails its integrity check", d->name);
    }
    return OK_RESULT;
}

RESULT vm_desc_save(const char *datastore, struct vm_desc *d, const uint8_t *file_key)
{
    vs_result rc = OK_RESULT;
    json_t *o = NULL;
    char *text = NULL;
    char path[VM_PATH_MAX], hex[65];
    uint8_t tag[32];

    d->generation++;
    GUARD_OUT(vm_desc_tag(d, file_key, tag));
    GUARD_OUT(hex_encode(tag, sizeof tag, hex, sizeof hex));
    GUARD_OUT(desc_to_json(d, &o));
    ENSURE_OUT(json_object_set_new(o, "tag", json_string(hex)) == 0, ERR_NOMEM);
    text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    ENSURE_OUT(text != NULL, ERR_NOMEM);
    GUARD_OUT(vm_path(path, sizeof path, "%s/%s/vm.json", datastore, d->name));
    GUARD_OUT(file_write_atomic(path, text, strlen(text), 0600));
out:
    if (rc.code != ERR_OK)
        d->generation--;
    free(text);
    json_decref(o);
    return rc;
}

/* --- decoding: every field checked ------------------------------------- */

#define DESC_FAIL(...)                     \
    do {                                   \
        rc = RAISE(ERR_DESCRIPTOR);        \
        err_detail(__VA_ARGS__);           \
        goto out;                          \
    } while (0)

/* Copies a JSON string member, not empty, into out (size bytes,
 * NUL-terminated); null allowed when nullable (gives ""). */
static RESULT get_str(json_t *o, const char *key, char *out, size_t size, bool nullable)
{
    json_t *v = json_object_get(o, key);
    if (v != NULL && json_is_null(v) && nullable) {
        out[0] = '\0';
        return OK_RESULT;
    }
    if (v == NULL || !json_is_string(v)) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is missing or not a string", key);
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    /* vmseald writes null, never "", for an absent value. */
    if (n == 0 || n >= size || strlen(s) != n) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is empty, too long or holds a NUL", key);
    }
    memcpy(out, s, n + 1);
    return OK_RESULT;
}

static RESULT get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is missing or not a non-negative integer", key);
    }
    *out = (uint64_t)json_integer_value(v);
    return OK_RESULT;
}

static RESULT get_bool(json_t *o, const char *key, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || !json_is_boolean(v)) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is missing or not a boolean", key);
    }
    *out = json_is_true(v);
    return OK_RESULT;
}

static RESULT get_b64(json_t *o, const char *key, uint8_t *out, size_t cap, size_t *len)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || !json_is_string(v)) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is missing or not a string", key);
    }
    struct buf b;
    buf_wrap(&b, out, cap);
    if (!is_ok(vm_b64_decode(json_string_value(v), &b))) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("field '%s' is not base64 of at most %zu bytes", key, cap);
    }
    *len = buf_len(&b);
    return OK_RESULT;
}

/* A name in the descriptor: a bad one is a damaged descriptor
 * (ERR_DESCRIPTOR), not a bad request. */
static RESULT desc_name(const char *what, const char *name)
{
    if (!is_ok(vm_check_name(what, name))) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("%s name '%.80s' is invalid", what, name);
    }
    return OK_RESULT;
}

/* A layer id as vm_desc_add_layer makes them: "l" and a decimal number
 * from 1 to next_layer without leading zeros (so that a new id never
 * collides with an old one). */
static bool layer_id_ok(const char *id, uint64_t next_layer)
{
    uint64_t v = 0;
    if (id[0] != 'l' || id[1] < '1' || id[1] > '9')
        return false;
    for (const char *p = id + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v <= next_layer;
}

/* Copies a string array element (a name or layer id) into out. */
static bool array_str(json_t *v, char *out, size_t size)
{
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* Only the listed keys may appear. */
static RESULT only_keys(json_t *o, const char *what, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++)
            known = strcmp(keys[i], k) == 0;
        if (!known) {
            RAISE(ERR_DESCRIPTOR);
            return err_detail("unknown field '%.40s' in %s", k, what);
        }
    }
    return OK_RESULT;
}

/* A file reference: "DIR/FILE", both valid names, DIR the owner's. */
static RESULT check_file_ref(const char *ref, const char *owner)
{
    const char *slash = strchr(ref, '/');
    char dir[VM_NAME_MAX];
    if (slash == NULL || (size_t)(slash - ref) >= sizeof dir || strchr(slash + 1, '/') != NULL) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("file reference '%.80s' is not DIR/FILE", ref);
    }
    memcpy(dir, ref, (size_t)(slash - ref));
    dir[slash - ref] = '\0';
    if (!is_ok(vm_check_name("directory", dir)) || !is_ok(vm_check_name("file", slash + 1))) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("file reference '%.80s' is not DIR/FILE", ref);
    }
    if (strcmp(dir, owner) != 0) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("file '%.80s' is outside the VM's directory", ref);
    }
    return OK_RESULT;
}

static RESULT desc_from_json(json_t *o, struct vm_desc *d, uint8_t tag_out[32])
{
    vs_result rc = OK_RESULT;
    static const char *const top_keys[] = {
        "format",   "name",   "uuid",  "created", "generation", "next_layer", "template",
        "instant_clone_of", "dependents", "encryption", "config", "nvram", "disks", "layers",
        "snapshots", "tag", NULL};
    static const char *const enc_keys[] = {"provider", "key_id", "file_key", NULL};
    static const char *const disk_keys[] = {"size", "active", NULL};
    static const char *const layer_keys[] = {"id",     "disk",   "file",   "format",
                                             "parent", "secret", "shared", "foreign", NULL};
    static const char *const snap_keys[] = {"name", "created", "layers", "nvram", NULL};
    char format[32], taghex[65];
    json_t *a, *x;
    size_t i;

    memset(d, 0, sizeof *d);
    ENSURE_OUT(json_is_object(o), ERR_DESCRIPTOR);
    GUARD_OUT(only_keys(o, "the descriptor", top_keys));
    GUARD_OUT(get_str(o, "format", format, sizeof format, false));
    if (strcmp(format, VM_DESC_FORMAT) != 0)
        DESC_FAIL("unsupported descriptor format '%s'", format);
    GUARD_OUT(get_str(o, "name", d->name, sizeof d->name, false));
    GUARD_OUT(desc_name("VM", d->name));
    GUARD_OUT(get_str(o, "uuid", d->uuid, sizeof d->uuid, false));
    /* The UUID names the VM's run-time directory: nothing but a UUID. */
    if (!vm_is_uuid(d->uuid))
        DESC_FAIL("field 'uuid' is not a UUID");
    GUARD_OUT(get_str(o, "created", d->created, sizeof d->created, false));
    if (!vm_is_time(d->created))
        DESC_FAIL("field 'created' is not a time");
    GUARD_OUT(get_u64(o, "generation", &d->generation));
    GUARD_OUT(get_u64(o, "next_layer", &d->next_layer));
    /* Both grow by one per operation; near 2^63 the next save would write
     * a negative number and the VM would never load again. */
    if (d->generation >= VM_DESC_COUNTER_MAX || d->next_layer >= VM_DESC_COUNTER_MAX)
        DESC_FAIL("field 'generation' or 'next_layer' is out of range");
    GUARD_OUT(get_bool(o, "template", &d->template_));
    GUARD_OUT(get_str(o, "instant_clone_of", d->instant_clone_of, sizeof d->instant_clone_of,
                      true));
    if (d->instant_clone_of[0] != '\0' && (!is_ok(vm_check_name("VM", d->instant_clone_of)) ||
                                           strcmp(d->instant_clone_of, d->name) == 0))
        DESC_FAIL("field 'instant_clone_of' is not another VM's name");
    a = json_object_get(o, "dependents");
    if (!json_is_array(a) || json_array_size(a) > VM_MAX_DEPENDENTS)
        DESC_FAIL("field 'dependents' is not an array of at most %d names", VM_MAX_DEPENDENTS);
    json_array_foreach(a, i, x)
    {
        if (!array_str(x, d->dependents[i], VM_NAME_MAX) ||
            !is_ok(vm_check_name("VM", d->dependents[i])) || strcmp(d->dependents[i], d->name) == 0)
            DESC_FAIL("field 'dependents' holds an invalid name");
        for (size_t k = 0; k < i; k++)
            if (strcmp(d->dependents[k], d->dependents[i]) == 0)
                DESC_FAIL("field 'dependents' names '%s' twice", d->dependents[i]);
        d->dependent_count++;
    }

    x = json_object_get(o, "encryption");
    if (x == NULL)
        DESC_FAIL("field 'encryption' is missing");
    if (!json_is_null(x)) {
        if (!json_is_object(x))
            DESC_FAIL("field 'encryption' is not an object");
        GUARD_OUT(only_keys(x, "'encryption'", enc_keys));
        d->encrypted = true;
        GUARD_OUT(get_str(x, "provider", d->key.provider, sizeof d->key.provider, false));
        GUARD_OUT(desc_name("provider", d->key.provider));
        GUARD_OUT(get_str(x, "key_id", d->key.key_id, sizeof d->key.key_id, false));
        GUARD_OUT(get_b64(x, "file_key", d->wrapped_file_key, sizeof d->wrapped_file_key,
                          &d->wrapped_file_key_len));
        if (d->wrapped_file_key_len != CRYPTO_KWP_WRAPPED_LEN(VM_FILE_KEY_LEN))
            DESC_FAIL("the wrapped file key has the wrong length");
    }
    GUARD_OUT(get_str(o, "config", d->config_file, sizeof d->config_file, false));
    GUARD_OUT(check_file_ref(d->config_file, d->name));
    GUARD_OUT(get_str(o, "nvram", d->nvram_file, sizeof d->nvram_file, true));
    if (d->nvram_file[0] != '\0')
        GUARD_OUT(check_file_ref(d->nvram_file, d->name));

    a = json_object_get(o, "layers");
    if (!json_is_array(a) || json_array_size(a) > VM_MAX_LAYERS)
        DESC_FAIL("field 'layers' is not an array of at most %d layers", VM_MAX_LAYERS);
    json_array_foreach(a, i, x)
    {
        struct vm_layer *l = &d->layers[i];
        char fmt[16];
        uint64_t disk;
        if (!json_is_object(x))
            DESC_FAIL("a layer is not an object");
        GUARD_OUT(only_keys(x, "a layer", layer_keys));
        GUARD_OUT(get_str(x, "id", l->id, sizeof l->id, false));
        if (!layer_id_ok(l->id, d->next_layer))
            DESC_FAIL("layer id '%s' is not l1..l%llu", l->id, (unsigned long long)d->next_layer);
        GUARD_OUT(get_u64(x, "disk", &disk));
        if (disk >= VM_MAX_DISKS)
            DESC_FAIL("layer '%s' names disk %llu", l->id, (unsigned long long)disk);
        l->disk = (unsigned)disk;
        GUARD_OUT(get_str(x, "file", l->file, sizeof l->file, false));
        GUARD_OUT(get_str(x, "format", fmt, sizeof fmt, false));
        GUARD_OUT(vm_format_parse(fmt, &l->format));
        GUARD_OUT(get_str(x, "parent", l->parent, sizeof l->parent, true));
        GUARD_OUT(get_bool(x, "shared", &l->shared));
        GUARD_OUT(get_bool(x, "foreign", &l->foreign));
        /* A foreign layer is one of the source's frozen layers, read by
         * this instant clone: in the source's directory, nowhere else. */
        if (l->foreign && d->instant_clone_of[0] == '\0')
            DESC_FAIL("layer '%s' is foreign in a VM that is not an instant clone", l->id);
        GUARD_OUT(check_file_ref(l->file, l->foreign ? d->instant_clone_of : d->name));
        json_t *s = json_object_get(x, "secret");
        if (vm_format_encrypted(l->format)) {
            if (!d->encrypted)
                DESC_FAIL("layer '%s' is encrypted in an unencrypted VM", l->id);
            GUARD_OUT(get_b64(x, "secret", l->wrapped_secret, sizeof l->wrapped_secret,
                              &l->wrapped_len));
            if (l->wrapped_len != CRYPTO_KWP_WRAPPED_LEN(LUKS1_SECRET_LEN))
                DESC_FAIL("layer '%s' has a wrapped secret of the wrong length", l->id);
        } else if (s == NULL || !json_is_null(s)) {
            DESC_FAIL("plaintext layer '%s' must have a null secret", l->id);
        }
        /* A plaintext layer in an encrypted VM is a disk left in clear by
         * a storage policy (vm_disk_decrypt): the VM's files stay
         * encrypted, and the tag, keyed from the file key, covers every
         * layer's format, so none can be turned plaintext behind our back. */
        for (size_t k = 0; k < i; k++)
            if (strcmp(d->layers[k].id, l->id) == 0 || strcmp(d->layers[k].file, l->file) == 0)
                DESC_FAIL("layer '%s' is listed twice", l->id);
        d->layer_count++;
    }
    for (i = 0; i < d->layer_count; i++) {
        struct vm_layer *l = &d->layers[i];
        if (l->parent[0] == '\0')
            continue;
        struct vm_layer *p = vm_desc_layer(d, l->parent);
        if (p == NULL || p->disk != l->disk || p == l)
            DESC_FAIL("layer '%s' has a missing parent '%s'", l->id, l->parent);
        /* A disk is encrypted or not as a whole: an overlay in clear on an
         * encrypted layer would keep the guest's new writes in clear. */
        if (vm_format_encrypted(p->format) != vm_format_encrypted(l->format))
            DESC_FAIL("layer '%s' is %s but its parent '%s' is not", l->id,
                      vm_format_encrypted(l->format) ? "encrypted" : "plaintext", p->id);
    }

    a = json_object_get(o, "disks");
    if (!json_is_array(a) || json_array_size(a) > VM_MAX_DISKS)
        DESC_FAIL("field 'disks' is not an array of at most %d disks", VM_MAX_DISKS);
    json_array_foreach(a, i, x)
    {
        struct vm_disk *dk = &d->disks[i];
        if (!json_is_object(x))
            DESC_FAIL("a disk is not an object");
        GUARD_OUT(only_keys(x, "a disk", disk_keys));
        GUARD_OUT(get_u64(x, "size", &dk->size));
        if (dk->size == 0 || dk->size % 512 != 0 || dk->size > VM_MAX_DISK_SIZE)
            DESC_FAIL("disk %zu has an invalid size", i);
        GUARD_OUT(get_str(x, "active", dk->active, sizeof dk->active, false));
        struct vm_layer *l = vm_desc_layer(d, dk->active);
        if (l == NULL || l->disk != i)
            DESC_FAIL("disk %zu's active layer '%s' is missing", i, dk->active);
        /* The layer the guest writes is never a frozen one that instant
         * clones read, nor another VM's. */
        if (l->shared || l->foreign)
            DESC_FAIL("disk %zu's active layer '%s' is frozen or another VM's", i, dk->active);
        d->disk_count++;
    }
    for (i = 0; i < d->layer_count; i++)
        if (d->layers[i].disk >= d->disk_count)
            DESC_FAIL("layer '%s' belongs to no disk", d->layers[i].id);

    a = json_object_get(o, "snapshots");
    if (!json_is_array(a) || json_array_size(a) > VM_MAX_SNAPSHOTS)
        DESC_FAIL("field 'snapshots' is not an array of at most %d snapshots", VM_MAX_SNAPSHOTS);
    json_array_foreach(a, i, x)
    {
        struct vm_snapshot *s = &d->snapshots[i];
        size_t k;
        json_t *y;
        if (!json_is_object(x))
            DESC_FAIL("a snapshot is not an object");
        GUARD_OUT(only_keys(x, "a snapshot", snap_keys));
        GUARD_OUT(get_str(x, "name", s->name, sizeof s->name, false));
        GUARD_OUT(desc_name("snapshot", s->name));
        GUARD_OUT(get_str(x, "created", s->created, sizeof s->created, false));
        if (!vm_is_time(s->created))
            DESC_FAIL("snapshot '%s' has an invalid time", s->name);
        GUARD_OUT(get_str(x, "nvram", s->nvram_file, sizeof s->nvram_file, true));
        if (s->nvram_file[0] != '\0')
            GUARD_OUT(check_file_ref(s->nvram_file, d->name));
        json_t *ls = json_object_get(x, "layers");
        if (!json_is_array(ls) || json_array_size(ls) != d->disk_count)
            DESC_FAIL("snapshot '%s' does not name one layer per disk", s->name);
        json_array_foreach(ls, k, y)
        {
            if (!array_str(y, s->layers[k], VM_LAYER_ID_MAX))
                DESC_FAIL("snapshot '%s' has an invalid layer", s->name);
            struct vm_layer *l = vm_desc_layer(d, s->layers[k]);
            if (l == NULL || l->disk != k)
                DESC_FAIL("snapshot '%s' names a missing layer", s->name);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->snapshots[j].name, s->name) == 0)
                DESC_FAIL("snapshot '%s' is listed twice", s->name);
        d->snapshot_count++;
    }

    for (unsigned k = 0; k < d->disk_count; k++) {
        struct vm_layer *chain[DISK_CHAIN_MAX];
        size_t n;
        GUARD_OUT(vm_desc_chain(d, k, chain, &n));
    }
    /* Every layer's ancestry, not only the active ones': a cycle or an
     * over-long chain among layers that only snapshots reach is refused
     * too. */
    for (i = 0; i < d->layer_count; i++) {
        const struct vm_layer *l = &d->layers[i];
        size_t depth = 1;
        while (l != NULL && l->parent[0] != '\0' && depth <= DISK_CHAIN_MAX) {
            l = vm_desc_layer(d, l->parent);
            depth++;
        }
        if (depth > DISK_CHAIN_MAX)
            DESC_FAIL("layer '%s' has more than %d layers below it or a cycle", d->layers[i].id,
                      DISK_CHAIN_MAX - 1);
    }

    GUARD_OUT(get_str(o, "tag", taghex, sizeof taghex, false));
    if (tag_out != NULL) {
        struct buf tb;
        buf_wrap(&tb, tag_out, 32);
        if (strlen(taghex) != 64 || !is_ok(buf_write_hex(&tb, taghex)))
            DESC_FAIL("field 'tag' is not 64 hex digits");
    }
out:
    return rc;
}

RESULT vm_desc_load(const char *datastore, const char *name, struct vm_desc *d,
                    uint8_t tag_out[32])
{
    vs_result rc = OK_RESULT;
    char path[VM_PATH_MAX];
    struct buf b = {0};

    GUARD(vm_check_name("VM", name));
    GUARD(vm_path(path, sizeof path, "%s/%s/vm.json", datastore, name));
    GUARD(buf_alloc(&b, 8192, VM_DESC_MAX_BYTES));
    rc = file_read_all(path, VM_DESC_MAX_BYTES, &b);
    if (rc.code == ERR_TOO_LARGE) {
        /* Never written so by vmseald: damaged or tampered, not a bad request. */
        rc = RAISE(ERR_DESCRIPTOR);
        err_detail("vm.json of VM '%s' is larger than %u bytes", name, VM_DESC_MAX_BYTES);
    }
    GUARD_OUT(rc);
    GUARD_OUT(vm_desc_parse(buf_data(&b), buf_len(&b), name, d, tag_out));
out:
    buf_free(&b);
    return rc;
}

RESULT vm_desc_parse(const uint8_t *text, size_t len, const char *name, struct vm_desc *d,
                     uint8_t tag_out[32])
{
    vs_result rc = OK_RESULT;
    json_t *o = NULL;
    json_error_t jerr;

    GUARD(vm_check_name("VM", name));
    if (len > VM_DESC_MAX_BYTES) {
        RAISE(ERR_DESCRIPTOR);
        return err_detail("vm.json of VM '%s' is larger than %u bytes", name, VM_DESC_MAX_BYTES);
    }
    o = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        DESC_FAIL("vm.json of VM '%s' is not valid JSON: %s (line %d)", name, jerr.text,
                  jerr.line);
    GUARD_OUT(desc_from_json(o, d, tag_out));
    if (strcmp(d->name, name) != 0)
        DESC_FAIL("vm.json in directory '%s' names VM '%s'", name, d->name);
out:
    if (rc.code == ERR_DESCRIPTOR && strstr(err_last()->detail, name) == NULL) {
        char detail[sizeof err_last()->detail];
        snprintf(detail, sizeof detail, "%s", err_last()->detail);
        err_detail("vm.json of VM '%s': %s", name, detail);
    }
    json_decref(o);
    return rc;
}

/* --- lookups and edits --------------------------------------------------- */

struct vm_layer *vm_desc_layer(struct vm_desc *d, const char *id)
{
    for (size_t i = 0; i < d->layer_count; i++)
        if (strcmp(d->layers[i].id, id) == 0)
            return &d->layers[i];
    return NULL;
}

const struct vm_snapshot *vm_desc_snapshot(const struct vm_desc *d, const char *name)
{
    for (size_t i = 0; i < d->snapshot_count; i++)
        if (strcmp(d->snapshots[i].name, name) == 0)
            return &d->snapshots[i];
    return NULL;
}

size_t vm_desc_children(const struct vm_desc *d, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < d->layer_count; i++)
        n += strcmp(d->layers[i].parent, id) == 0;
    return n;
}

RESULT vm_desc_chain(struct vm_desc *d, unsigned disk, struct vm_layer *out[DISK_CHAIN_MAX],
                     size_t *n)
{
    ENSURE(disk < d->disk_count, ERR_INVALID_ARG);
    struct vm_layer *l = vm_desc_layer(d, d->disks[disk].active);
    size_t count = 0;
    while (l != NULL) {
        if (count == DISK_CHAIN_MAX) {
            RAISE(ERR_DESCRIPTOR);
            return err_detail("disk %u's chain is longer than %d layers or has a cycle", disk,
                              DISK_CHAIN_MAX);
        }
        out[count++] = l;
        if (l->parent[0] == '\0')
            break;
        struct vm_layer *p = vm_desc_layer(d, l->parent);
        if (p == NULL) {
            RAISE(ERR_DESCRIPTOR);
            return err_detail("layer '%s' has a missing parent", l->id);
        }
        l = p;
    }
    ENSURE(count > 0, ERR_DESCRIPTOR);
    *n = count;
    return OK_RESULT;
}

RESULT vm_desc_add_layer(struct vm_desc *d, unsigned disk, struct vm_layer **out)
{
    if (d->layer_count >= VM_MAX_LAYERS) {
        RAISE(ERR_TOO_LARGE);
        return err_detail("a VM has at most %d disk layers", VM_MAX_LAYERS);
    }
    struct vm_layer *l = &d->layers[d->layer_count];
    memset(l, 0, sizeof *l);
    d->next_layer++;
    snprintf(l->id, sizeof l->id, "l%llu", (unsigned long long)d->next_layer);
    l->disk = disk;
    d->layer_count++;
    *out = l;
    return OK_RESULT;
}

void vm_desc_remove_layer(struct vm_desc *d, const char *id)
{
    for (size_t i = 0; i < d->layer_count; i++) {
        if (strcmp(d->layers[i].id, id) == 0) {
            memmove(&d->layers[i], &d->layers[i + 1],
                    (d->layer_count - i - 1) * sizeof d->layers[0]);
            d->layer_count--;
            memset(&d->layers[d->layer_count], 0, sizeof d->layers[0]);
            return;
        }
    }
}

bool vm_desc_layer_in_use(const struct vm_desc *d, const char *id)
{
    for (size_t i = 0; i < d->disk_count; i++)
        if (strcmp(d->disks[i].active, id) == 0)
            return true;
    for (size_t i = 0; i < d->snapshot_count; i++)
        for (size_t k = 0; k < d->disk_count; k++)
            if (strcmp(d->snapshots[i].layers[k], id) == 0)
                return true;
    return vm_desc_children(d, id) > 0;
}
