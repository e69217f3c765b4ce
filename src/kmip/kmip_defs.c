/*
 * kmip_defs.c - names of KMIP's defined values, from the tables in
 * kmip_defs.h.
 *
 * Each lookup is a switch generated from its table, so that a value written
 * twice in a table is a compile error (duplicate case value).
 */
#include "kmip/kmip_defs.h"

#include <string.h>

#define KMIP_DEFS_NAME_CASE(name, value, text) \
    case value:                                \
        return text;

const char *kmip_tag_name(uint32_t tag)
{
    switch (tag) {
        KMIP_TAGS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_operation_name(uint32_t value)
{
    switch (value) {
        KMIP_OPERATIONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_object_type_name(uint32_t value)
{
    switch (value) {
        KMIP_OBJECT_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_result_status_name(uint32_t value)
{
    switch (value) {
        KMIP_RESULT_STATUSES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_result_reason_name(uint32_t value)
{
    switch (value) {
        KMIP_RESULT_REASONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_batch_error_option_name(uint32_t value)
{
    switch (value) {
        KMIP_BATCH_ERROR_OPTIONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_query_function_name(uint32_t value)
{
    switch (value) {
        KMIP_QUERY_FUNCTIONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_state_name(uint32_t value)
{
    switch (value) {
        KMIP_STATES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_revocation_reason_name(uint32_t value)
{
    switch (value) {
        KMIP_REVOCATION_REASONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_name_type_name(uint32_t value)
{
    switch (value) {
        KMIP_NAME_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_link_type_name(uint32_t value)
{
    switch (value) {
        KMIP_LINK_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_object_group_member_name(uint32_t value)
{
    switch (value) {
        KMIP_OBJECT_GROUP_MEMBERS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_unique_identifier_name(uint32_t value)
{
    switch (value) {
        KMIP_UNIQUE_IDENTIFIERS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_crypto_alg_name(uint32_t value)
{
    switch (value) {
        KMIP_CRYPTO_ALGS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_block_cipher_mode_name(uint32_t value)
{
    switch (value) {
        KMIP_BLOCK_CIPHER_MODES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_padding_method_name(uint32_t value)
{
    switch (value) {
        KMIP_PADDING_METHODS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_hashing_alg_name(uint32_t value)
{
    switch (value) {
        KMIP_HASHING_ALGS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_key_format_name(uint32_t value)
{
    switch (value) {
        KMIP_KEY_FORMATS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_key_compression_name(uint32_t value)
{
    switch (value) {
        KMIP_KEY_COMPRESSIONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_wrapping_method_name(uint32_t value)
{
    switch (value) {
        KMIP_WRAPPING_METHODS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_encoding_option_name(uint32_t value)
{
    switch (value) {
        KMIP_ENCODING_OPTIONS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_secret_data_type_name(uint32_t value)
{
    switch (value) {
        KMIP_SECRET_DATA_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_credential_type_name(uint32_t value)
{
    switch (value) {
        KMIP_CREDENTIAL_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_attestation_type_name(uint32_t value)
{
    switch (value) {
        KMIP_ATTESTATION_TYPES(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_usage_mask_name(uint32_t value)
{
    switch (value) {
        KMIP_USAGE_MASKS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_storage_status_mask_name(uint32_t value)
{
    switch (value) {
        KMIP_STORAGE_STATUS_MASKS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

const char *kmip_protection_storage_mask_name(uint32_t value)
{
    switch (value) {
        KMIP_PROTECTION_STORAGE_MASKS(KMIP_DEFS_NAME_CASE)
    default:
        return NULL;
    }
}

/* One row per tag, with the length of its name, for kmip_tag_by_name_n. */
struct kmip_tag_row {
    uint32_t tag;
    size_t len;
    const char *name;
};

#define KMIP_DEFS_TAG_ROW(name, value, text) {value, sizeof(text) - 1, text},
static const struct kmip_tag_row kmip_tag_rows[] = {KMIP_TAGS(KMIP_DEFS_TAG_ROW)};
#undef KMIP_DEFS_TAG_ROW

bool kmip_tag_by_name_n(const char *name, size_t len, uint32_t *out)
{
    /* No tag's name is empty, so a NULL or empty name is simply not found;
     * memcmp is never called with NULL. A linear scan: a few hundred short
     * comparisons, on a path (attribute names in 1.x requests) that is far
     * from hot. */
    if (name == NULL || len == 0)
        return false;
    for (size_t i = 0; i < sizeof(kmip_tag_rows) / sizeof(kmip_tag_rows[0]); i++) {
        const struct kmip_tag_row *row = &kmip_tag_rows[i];
        if (row->len == len && memcmp(row->name, name, len) == 0) {
            *out = row->tag;
            return true;
        }
    }
    return false;
}

bool kmip_tag_by_name(const char *name, uint32_t *out)
{
    return kmip_tag_by_name_n(name, strlen(name), out);
}
