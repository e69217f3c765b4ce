/*
 * kmip_defs.h - KMIP's defined values: the tags, enumerations and bit masks
 * of KMIP 1.4 §9.1.3 and KMIP 2.1 §11-12, transcribed from the spec text.
 *
 * Each table is written once, as an X-macro of lines X_(NAME, value, "Name"),
 * used as KMIP_TAGS(MY_MACRO). The parameter is X_, not X, because one tag
 * is named X (0x42009F): with a parameter X, that NAME would be replaced by
 * the caller's macro. No NAME ends in an underscore.
 *
 *   "Name"  the name exactly as the spec writes it. Where 1.4 and 2.1 spell
 *           it differently, 2.1's spelling, with 1.4's in a comment.
 *   NAME    "Name" in UPPER_SNAKE: every run of characters other than
 *           letters and digits becomes one underscore. A word that the
 *           table's prefix already says is dropped ("Query Operations" is
 *           KMIP_QUERY_OPERATIONS, "Certificate Link" KMIP_LINK_CERTIFICATE,
 *           "On-line storage" KMIP_STORAGE_ON_LINE, "Group Member Fresh"
 *           KMIP_GROUP_MEMBER_FRESH), and 3DES is TRIPLE_DES, as a C name
 *           cannot start with a digit.
 *   value   the spec's value.
 *
 * A table holds the union of 1.4 and 2.1, in order of value:
 *
 *   - a line marked "2.x" is not in 1.4;
 *   - a line marked "1.x only" is in 1.4 but (Reserved) in 2.1: a 2.x
 *     message must not carry it; "deprecated" means 1.4 marks it so (the
 *     certificate tags "as of version 1.1");
 *   - values that 2.1 lists as (Reserved) and 1.4 does not define are left
 *     out, and so are the extension ranges (tags 0x540000-0x54FFFF,
 *     enumerations 0x8XXXXXXX), which belong to whoever defines them.
 *
 * The two specs agree on every value they both define: none of the
 * differences above is a value that changed meaning.
 *
 * Tables, their enum types, constant prefixes and name functions:
 *
 *   table (spec name)               X-macro                        prefix
 *   Tag                             KMIP_TAGS                      KMIP_TAG_
 *   Operation                       KMIP_OPERATIONS                KMIP_OP_
 *   Object Type                     KMIP_OBJECT_TYPES              KMIP_OBJ_
 *   Result Status                   KMIP_RESULT_STATUSES           KMIP_STATUS_
 *   Result Reason                   KMIP_RESULT_REASONS            KMIP_REASON_
 *   Batch Error Continuation Option KMIP_BATCH_ERROR_OPTIONS       KMIP_BATCH_ERROR_
 *   Query Function                  KMIP_QUERY_FUNCTIONS           KMIP_QUERY_
 *   State                           KMIP_STATES                    KMIP_STATE_
 *   Revocation Reason Code          KMIP_REVOCATION_REASONS        KMIP_REVOCATION_
 *   Name Type                       KMIP_NAME_TYPES                KMIP_NAME_TYPE_
 *   Link Type                       KMIP_LINK_TYPES                KMIP_LINK_
 *   Object Group Member             KMIP_OBJECT_GROUP_MEMBERS      KMIP_GROUP_MEMBER_
 *   Unique Identifier               KMIP_UNIQUE_IDENTIFIERS        KMIP_UID_
 *   Cryptographic Algorithm         KMIP_CRYPTO_ALGS               KMIP_ALG_
 *   Block Cipher Mode               KMIP_BLOCK_CIPHER_MODES        KMIP_MODE_
 *   Padding Method                  KMIP_PADDING_METHODS           KMIP_PADDING_
 *   Hashing Algorithm               KMIP_HASHING_ALGS              KMIP_HASH_
 *   Key Format Type                 KMIP_KEY_FORMATS               KMIP_KEY_FORMAT_
 *   Key Compression Type            KMIP_KEY_COMPRESSIONS          KMIP_KEY_COMPRESSION_
 *   Wrapping Method                 KMIP_WRAPPING_METHODS          KMIP_WRAP_
 *   Encoding Option                 KMIP_ENCODING_OPTIONS          KMIP_ENCODING_
 *   Secret Data Type                KMIP_SECRET_DATA_TYPES         KMIP_SECRET_DATA_
 *   Credential Type                 KMIP_CREDENTIAL_TYPES          KMIP_CREDENTIAL_
 *   Attestation Type                KMIP_ATTESTATION_TYPES         KMIP_ATTESTATION_
 *   Cryptographic Usage Mask        KMIP_USAGE_MASKS               KMIP_USAGE_
 *   Storage Status Mask             KMIP_STORAGE_STATUS_MASKS      KMIP_STORAGE_
 *   Protection Storage Mask         KMIP_PROTECTION_STORAGE_MASKS  KMIP_PROTECTION_
 *
 * The enum type of table KMIP_FOOS is enum kmip_foo, as listed with each
 * table below, and its name function is kmip_foo_name().
 */
#ifndef VMSEAL_KMIP_KMIP_DEFS_H
#define VMSEAL_KMIP_KMIP_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Tags: KMIP 1.4 §9.1.3.1 (Table 288), KMIP 2.1 §11.56 (Table 487).
 *
 * 1.4's table ends with "(Reserved) 420120 - 42FFFF", a range that overlaps
 * its own last five entries (Sensitive 0x420120 .. Replace Existing
 * 0x420124); the entries win, as in 2.1, where the range is "420XXX -
 * 42FFFF". 2.1's Vendor Attribute (§4.60) has no tag of its own: it is an
 * Attribute (0x420008) holding Vendor Identification, Attribute Name and
 * Attribute Value.
 */
#define KMIP_TAGS(X_)                                                                             \
    X_(ACTIVATION_DATE, 0x420001, "Activation Date")                                              \
    X_(APPLICATION_DATA, 0x420002, "Application Data")                                            \
    X_(APPLICATION_NAMESPACE, 0x420003, "Application Namespace")                                  \
    X_(APPLICATION_SPECIFIC_INFORMATION, 0x420004, "Application Specific Information")            \
    X_(ARCHIVE_DATE, 0x420005, "Archive Date")                                                    \
    X_(ASYNCHRONOUS_CORRELATION_VALUE, 0x420006, "Asynchronous Correlation Value")                \
    X_(ASYNCHRONOUS_INDICATOR, 0x420007, "Asynchronous Indicator")                                \
    X_(ATTRIBUTE, 0x420008, "Attribute")                                                          \
    X_(ATTRIBUTE_INDEX, 0x420009, "Attribute Index") /* 1.x only */                               \
    X_(ATTRIBUTE_NAME, 0x42000A, "Attribute Name")                                                \
    X_(ATTRIBUTE_VALUE, 0x42000B, "Attribute Value")                                              \
    X_(AUTHENTICATION, 0x42000C, "Authentication")                                                \
    X_(BATCH_COUNT, 0x42000D, "Batch Count")                                                      \
    X_(BATCH_ERROR_CONTINUATION_OPTION, 0x42000E, "Batch Error Continuation Option")              \
    X_(BATCH_ITEM, 0x42000F, "Batch Item")                                                        \
    X_(BATCH_ORDER_OPTION, 0x420010, "Batch Order Option")                                        \
    X_(BLOCK_CIPHER_MODE, 0x420011, "Block Cipher Mode")                                          \
    X_(CANCELLATION_RESULT, 0x420012, "Cancellation Result")                                      \
    X_(CERTIFICATE, 0x420013, "Certificate")                                                      \
    X_(CERTIFICATE_IDENTIFIER, 0x420014, "Certificate Identifier") /* 1.x only, deprecated */     \
    X_(CERTIFICATE_ISSUER, 0x420015, "Certificate Issuer")         /* 1.x only, deprecated */     \
    X_(CERTIFICATE_ISSUER_ALTERNATIVE_NAME, 0x420016,                                             \
       "Certificate Issuer Alternative Name") /* 1.x only, deprecated */                          \
    X_(CERTIFICATE_ISSUER_DISTINGUISHED_NAME, 0x420017,                                           \
       "Certificate Issuer Distinguished Name") /* 1.x only, deprecated */                        \
    X_(CERTIFICATE_REQUEST, 0x420018, "Certificate Request")                                      \
    X_(CERTIFICATE_REQUEST_TYPE, 0x420019, "Certificate Request Type")                            \
    X_(CERTIFICATE_SUBJECT, 0x42001A, "Certificate Subject") /* 1.x only, deprecated */           \
    X_(CERTIFICATE_SUBJECT_ALTERNATIVE_NAME, 0x42001B,                                            \
       "Certificate Subject Alternative Name") /* 1.x only, deprecated */                         \
    X_(CERTIFICATE_SUBJECT_DISTINGUISHED_NAME, 0x42001C,                                          \
       "Certificate Subject Distinguished Name") /* 1.x only, deprecated */                       \
    X_(CERTIFICATE_TYPE, 0x42001D, "Certificate Type")                                            \
    X_(CERTIFICATE_VALUE, 0x42001E, "Certificate Value")                                          \
    X_(COMMON_TEMPLATE_ATTRIBUTE, 0x42001F, "Common Template-Attribute") /* 1.x only */           \
    X_(COMPROMISE_DATE, 0x420020, "Compromise Date")                                              \
    X_(COMPROMISE_OCCURRENCE_DATE, 0x420021, "Compromise Occurrence Date")                        \
    X_(CONTACT_INFORMATION, 0x420022, "Contact Information")                                      \
    X_(CREDENTIAL, 0x420023, "Credential")                                                        \
    X_(CREDENTIAL_TYPE, 0x420024, "Credential Type")                                              \
    X_(CREDENTIAL_VALUE, 0x420025, "Credential Value")                                            \
    X_(CRITICALITY_INDICATOR, 0x420026, "Criticality Indicator")                                  \
    X_(CRT_COEFFICIENT, 0x420027, "CRT Coefficient")                                              \
    X_(CRYPTOGRAPHIC_ALGORITHM, 0x420028, "Cryptographic Algorithm")                              \
    X_(CRYPTOGRAPHIC_DOMAIN_PARAMETERS, 0x420029, "Cryptographic Domain Parameters")              \
    X_(CRYPTOGRAPHIC_LENGTH, 0x42002A, "Cryptographic Length")                                    \
    X_(CRYPTOGRAPHIC_PARAMETERS, 0x42002B, "Cryptographic Parameters")                            \
    X_(CRYPTOGRAPHIC_USAGE_MASK, 0x42002C, "Cryptographic Usage Mask")                            \
    X_(CUSTOM_ATTRIBUTE, 0x42002D, "Custom Attribute") /* 1.x only */                             \
    X_(D, 0x42002E, "D")                                                                          \
    X_(DEACTIVATION_DATE, 0x42002F, "Deactivation Date")                                          \
    X_(DERIVATION_DATA, 0x420030, "Derivation Data")                                              \
    X_(DERIVATION_METHOD, 0x420031, "Derivation Method")                                          \
    X_(DERIVATION_PARAMETERS, 0x420032, "Derivation Parameters")                                  \
    X_(DESTROY_DATE, 0x420033, "Destroy Date")                                                    \
    X_(DIGEST, 0x420034, "Digest")                                                                \
    X_(DIGEST_VALUE, 0x420035, "Digest Value")                                                    \
    X_(ENCRYPTION_KEY_INFORMATION, 0x420036, "Encryption Key Information")                        \
    X_(G, 0x420037, "G")                                                                          \
    X_(HASHING_ALGORITHM, 0x420038, "Hashing Algorithm")                                          \
    X_(INITIAL_DATE, 0x420039, "Initial Date")                                                    \
    X_(INITIALIZATION_VECTOR, 0x42003A, "Initialization Vector")                                  \
    X_(ISSUER, 0x42003B, "Issuer") /* 1.x only, deprecated */                                     \
    X_(ITERATION_COUNT, 0x42003C, "Iteration Count")                                              \
    X_(IV_COUNTER_NONCE, 0x42003D, "IV/Counter/Nonce")                                            \
    X_(J, 0x42003E, "J")                                                                          \
    X_(KEY, 0x42003F, "Key")                                                                      \
    X_(KEY_BLOCK, 0x420040, "Key Block")                                                          \
    X_(KEY_COMPRESSION_TYPE, 0x420041, "Key Compression Type")                                    \
    X_(KEY_FORMAT_TYPE, 0x420042, "Key Format Type")                                              \
    X_(KEY_MATERIAL, 0x420043, "Key Material")                                                    \
    X_(KEY_PART_IDENTIFIER, 0x420044, "Key Part Identifier")                                      \
    X_(KEY_VALUE, 0x420045, "Key Value")                                                          \
    X_(KEY_WRAPPING_DATA, 0x420046, "Key Wrapping Data")                                          \
    X_(KEY_WRAPPING_SPECIFICATION, 0x420047, "Key Wrapping Specification")                        \
    X_(LAST_CHANGE_DATE, 0x420048, "Last Change Date")                                            \
    X_(LEASE_TIME, 0x420049, "Lease Time")                                                        \
    X_(LINK, 0x42004A, "Link")                                                                    \
    X_(LINK_TYPE, 0x42004B, "Link Type")                                                          \
    X_(LINKED_OBJECT_IDENTIFIER, 0x42004C, "Linked Object Identifier")                            \
    X_(MAC_SIGNATURE, 0x42004D, "MAC/Signature")                                                  \
    X_(MAC_SIGNATURE_KEY_INFORMATION, 0x42004E, "MAC/Signature Key Information")                  \
    X_(MAXIMUM_ITEMS, 0x42004F, "Maximum Items")                                                  \
    X_(MAXIMUM_RESPONSE_SIZE, 0x420050, "Maximum Response Size")                                  \
    X_(MESSAGE_EXTENSION, 0x420051, "Message Extension")                                          \
    X_(MODULUS, 0x420052, "Modulus")                                                              \
    X_(NAME, 0x420053, "Name")                                                                    \
    X_(NAME_TYPE, 0x420054, "Name Type")                                                          \
    X_(NAME_VALUE, 0x420055, "Name Value")                                                        \
    X_(OBJECT_GROUP, 0x420056, "Object Group")                                                    \
    X_(OBJECT_TYPE, 0x420057, "Object Type")                                                      \
    X_(OFFSET, 0x420058, "Offset")                                                                \
    X_(OPAQUE_DATA_TYPE, 0x420059, "Opaque Data Type")                                            \
    X_(OPAQUE_DATA_VALUE, 0x42005A, "Opaque Data Value")                                          \
    X_(OPAQUE_OBJECT, 0x42005B, "Opaque Object")                                                  \
    X_(OPERATION, 0x42005C, "Operation")                                                          \
    X_(OPERATION_POLICY_NAME, 0x42005D, "Operation Policy Name") /* 1.x only, deprecated */       \
    X_(P, 0x42005E, "P")                                                                          \
    X_(PADDING_METHOD, 0x42005F, "Padding Method")                                                \
    X_(PRIME_EXPONENT_P, 0x420060, "Prime Exponent P")                                            \
    X_(PRIME_EXPONENT_Q, 0x420061, "Prime Exponent Q")                                            \
    X_(PRIME_FIELD_SIZE, 0x420062, "Prime Field Size")                                            \
    X_(PRIVATE_EXPONENT, 0x420063, "Private Exponent")                                            \
    X_(PRIVATE_KEY, 0x420064, "Private Key")                                                      \
    X_(PRIVATE_KEY_TEMPLATE_ATTRIBUTE, 0x420065, "Private Key Template-Attribute") /* 1.x only */ \
    X_(PRIVATE_KEY_UNIQUE_IDENTIFIER, 0x420066, "Private Key Unique Identifier")                  \
    X_(PROCESS_START_DATE, 0x420067, "Process Start Date")                                        \
    X_(PROTECT_STOP_DATE, 0x420068, "Protect Stop Date")                                          \
    X_(PROTOCOL_VERSION, 0x420069, "Protocol Version")                                            \
    X_(PROTOCOL_VERSION_MAJOR, 0x42006A, "Protocol Version Major")                                \
    X_(PROTOCOL_VERSION_MINOR, 0x42006B, "Protocol Version Minor")                                \
    X_(PUBLIC_EXPONENT, 0x42006C, "Public Exponent")                                              \
    X_(PUBLIC_KEY, 0x42006D, "Public Key")                                                        \
    X_(PUBLIC_KEY_TEMPLATE_ATTRIBUTE, 0x42006E, "Public Key Template-Attribute") /* 1.x only */   \
    X_(PUBLIC_KEY_UNIQUE_IDENTIFIER, 0x42006F, "Public Key Unique Identifier")                    \
    X_(PUT_FUNCTION, 0x420070, "Put Function")                                                    \
    X_(Q, 0x420071, "Q")                                                                          \
    X_(Q_STRING, 0x420072, "Q String")                                                            \
    X_(QLENGTH, 0x420073, "Qlength")                                                              \
    X_(QUERY_FUNCTION, 0x420074, "Query Function")                                                \
    X_(RECOMMENDED_CURVE, 0x420075, "Recommended Curve")                                          \
    X_(REPLACED_UNIQUE_IDENTIFIER, 0x420076, "Replaced Unique Identifier")                        \
    X_(REQUEST_HEADER, 0x420077, "Request Header")                                                \
    X_(REQUEST_MESSAGE, 0x420078, "Request Message")                                              \
    X_(REQUEST_PAYLOAD, 0x420079, "Request Payload")                                              \
    X_(RESPONSE_HEADER, 0x42007A, "Response Header")                                              \
    X_(RESPONSE_MESSAGE, 0x42007B, "Response Message")                                            \
    X_(RESPONSE_PAYLOAD, 0x42007C, "Response Payload")                                            \
    X_(RESULT_MESSAGE, 0x42007D, "Result Message")                                                \
    X_(RESULT_REASON, 0x42007E, "Result Reason")                                                  \
    X_(RESULT_STATUS, 0x42007F, "Result Status")                                                  \
    X_(REVOCATION_MESSAGE, 0x420080, "Revocation Message")                                        \
    X_(REVOCATION_REASON, 0x420081, "Revocation Reason")                                          \
    X_(REVOCATION_REASON_CODE, 0x420082, "Revocation Reason Code")                                \
    X_(KEY_ROLE_TYPE, 0x420083, "Key Role Type")                                                  \
    X_(SALT, 0x420084, "Salt")                                                                    \
    X_(SECRET_DATA, 0x420085, "Secret Data")                                                      \
    X_(SECRET_DATA_TYPE, 0x420086, "Secret Data Type")                                            \
    X_(SERIAL_NUMBER, 0x420087, "Serial Number") /* 1.x only, deprecated */                       \
    X_(SERVER_INFORMATION, 0x420088, "Server Information")                                        \
    X_(SPLIT_KEY, 0x420089, "Split Key")                                                          \
    X_(SPLIT_KEY_METHOD, 0x42008A, "Split Key Method")                                            \
    X_(SPLIT_KEY_PARTS, 0x42008B, "Split Key Parts")                                              \
    X_(SPLIT_KEY_THRESHOLD, 0x42008C, "Split Key Threshold")                                      \
    X_(STATE, 0x42008D, "State")                                                                  \
    X_(STORAGE_STATUS_MASK, 0x42008E, "Storage Status Mask")                                      \
    X_(SYMMETRIC_KEY, 0x42008F, "Symmetric Key")                                                  \
    X_(TEMPLATE, 0x420090, "Template")                     /* 1.x only */                         \
    X_(TEMPLATE_ATTRIBUTE, 0x420091, "Template-Attribute") /* 1.x only */                         \
    X_(TIME_STAMP, 0x420092, "Time Stamp")                                                        \
    X_(UNIQUE_BATCH_ITEM_ID, 0x420093, "Unique Batch Item ID")                                    \
    X_(UNIQUE_IDENTIFIER, 0x420094, "Unique Identifier")                                          \
    X_(USAGE_LIMITS, 0x420095, "Usage Limits")                                                    \
    X_(USAGE_LIMITS_COUNT, 0x420096, "Usage Limits Count")                                        \
    X_(USAGE_LIMITS_TOTAL, 0x420097, "Usage Limits Total")                                        \
    X_(USAGE_LIMITS_UNIT, 0x420098, "Usage Limits Unit")                                          \
    X_(USERNAME, 0x420099, "Username")                                                            \
    X_(VALIDITY_DATE, 0x42009A, "Validity Date")                                                  \
    X_(VALIDITY_INDICATOR, 0x42009B, "Validity Indicator")                                        \
    X_(VENDOR_EXTENSION, 0x42009C, "Vendor Extension")                                            \
    X_(VENDOR_IDENTIFICATION, 0x42009D, "Vendor Identification")                                  \
    X_(WRAPPING_METHOD, 0x42009E, "Wrapping Method")                                              \
    X_(X, 0x42009F, "X")                                                                          \
    X_(Y, 0x4200A0, "Y")                                                                          \
    X_(PASSWORD, 0x4200A1, "Password")                                                            \
    X_(DEVICE_IDENTIFIER, 0x4200A2, "Device Identifier")                                          \
    X_(ENCODING_OPTION, 0x4200A3, "Encoding Option")                                              \
    X_(EXTENSION_INFORMATION, 0x4200A4, "Extension Information")                                  \
    X_(EXTENSION_NAME, 0x4200A5, "Extension Name")                                                \
    X_(EXTENSION_TAG, 0x4200A6, "Extension Tag")                                                  \
    X_(EXTENSION_TYPE, 0x4200A7, "Extension Type")                                                \
    X_(FRESH, 0x4200A8, "Fresh")                                                                  \
    X_(MACHINE_IDENTIFIER, 0x4200A9, "Machine Identifier")                                        \
    X_(MEDIA_IDENTIFIER, 0x4200AA, "Media Identifier")                                            \
    X_(NETWORK_IDENTIFIER, 0x4200AB, "Network Identifier")                                        \
    X_(OBJECT_GROUP_MEMBER, 0x4200AC, "Object Group Member")                                      \
    X_(CERTIFICATE_LENGTH, 0x4200AD, "Certificate Length")                                        \
    X_(DIGITAL_SIGNATURE_ALGORITHM, 0x4200AE, "Digital Signature Algorithm")                      \
    X_(CERTIFICATE_SERIAL_NUMBER, 0x4200AF, "Certificate Serial Number")                          \
    X_(DEVICE_SERIAL_NUMBER, 0x4200B0, "Device Serial Number")                                    \
    X_(ISSUER_ALTERNATIVE_NAME, 0x4200B1, "Issuer Alternative Name")                              \
    X_(ISSUER_DISTINGUISHED_NAME, 0x4200B2, "Issuer Distinguished Name")                          \
    X_(SUBJECT_ALTERNATIVE_NAME, 0x4200B3, "Subject Alternative Name")                            \
    X_(SUBJECT_DISTINGUISHED_NAME, 0x4200B4, "Subject Distinguished Name")                        \
    X_(X_509_CERTIFICATE_IDENTIFIER, 0x4200B5, "X.509 Certificate Identifier")                    \
    X_(X_509_CERTIFICATE_ISSUER, 0x4200B6, "X.509 Certificate Issuer")                            \
    X_(X_509_CERTIFICATE_SUBJECT, 0x4200B7, "X.509 Certificate Subject")                          \
    X_(KEY_VALUE_LOCATION, 0x4200B8, "Key Value Location")                                        \
    X_(KEY_VALUE_LOCATION_VALUE, 0x4200B9, "Key Value Location Value")                            \
    X_(KEY_VALUE_LOCATION_TYPE, 0x4200BA, "Key Value Location Type")                              \
    X_(KEY_VALUE_PRESENT, 0x4200BB, "Key Value Present")                                          \
    X_(ORIGINAL_CREATION_DATE, 0x4200BC, "Original Creation Date")                                \
    X_(PGP_KEY, 0x4200BD, "PGP Key")                                                              \
    X_(PGP_KEY_VERSION, 0x4200BE, "PGP Key Version")                                              \
    X_(ALTERNATIVE_NAME, 0x4200BF, "Alternative Name")                                            \
    X_(ALTERNATIVE_NAME_VALUE, 0x4200C0, "Alternative Name Value")                                \
    X_(ALTERNATIVE_NAME_TYPE, 0x4200C1, "Alternative Name Type")                                  \
    X_(DATA, 0x4200C2, "Data")                                                                    \
    X_(SIGNATURE_DATA, 0x4200C3, "Signature Data")                                                \
    X_(DATA_LENGTH, 0x4200C4, "Data Length")                                                      \
    X_(RANDOM_IV, 0x4200C5, "Random IV")                                                          \
    X_(MAC_DATA, 0x4200C6, "MAC Data")                                                            \
    X_(ATTESTATION_TYPE, 0x4200C7, "Attestation Type")                                            \
    X_(NONCE, 0x4200C8, "Nonce")                                                                  \
    X_(NONCE_ID, 0x4200C9, "Nonce ID")                                                            \
    X_(NONCE_VALUE, 0x4200CA, "Nonce Value")                                                      \
    X_(ATTESTATION_MEASUREMENT, 0x4200CB, "Attestation Measurement")                              \
    X_(ATTESTATION_ASSERTION, 0x4200CC, "Attestation Assertion")                                  \
    X_(IV_LENGTH, 0x4200CD, "IV Length")                                                          \
    X_(TAG_LENGTH, 0x4200CE, "Tag Length")                                                        \
    X_(FIXED_FIELD_LENGTH, 0x4200CF, "Fixed Field Length")                                        \
    X_(COUNTER_LENGTH, 0x4200D0, "Counter Length")                                                \
    X_(INITIAL_COUNTER_VALUE, 0x4200D1, "Initial Counter Value")                                  \
    X_(INVOCATION_FIELD_LENGTH, 0x4200D2, "Invocation Field Length")                              \
    X_(ATTESTATION_CAPABLE_INDICATOR, 0x4200D3, "Attestation Capable Indicator")                  \
    X_(OFFSET_ITEMS, 0x4200D4, "Offset Items")                                                    \
    X_(LOCATED_ITEMS, 0x4200D5, "Located Items")                                                  \
    X_(CORRELATION_VALUE, 0x4200D6, "Correlation Value")                                          \
    X_(INIT_INDICATOR, 0x4200D7, "Init Indicator")                                                \
    X_(FINAL_INDICATOR, 0x4200D8, "Final Indicator")                                              \
    X_(RNG_PARAMETERS, 0x4200D9, "RNG Parameters")                                                \
    X_(RNG_ALGORITHM, 0x4200DA, "RNG Algorithm")                                                  \
    X_(DRBG_ALGORITHM, 0x4200DB, "DRBG Algorithm")                                                \
    X_(FIPS186_VARIATION, 0x4200DC, "FIPS186 Variation")                                          \
    X_(PREDICTION_RESISTANCE, 0x4200DD, "Prediction Resistance")                                  \
    X_(RANDOM_NUMBER_GENERATOR, 0x4200DE, "Random Number Generator")                              \
    X_(VALIDATION_INFORMATION, 0x4200DF, "Validation Information")                                \
    X_(VALIDATION_AUTHORITY_TYPE, 0x4200E0, "Validation Authority Type")                          \
    X_(VALIDATION_AUTHORITY_COUNTRY, 0x4200E1, "Validation Authority Country")                    \
    X_(VALIDATION_AUTHORITY_URI, 0x4200E2, "Validation Authority URI")                            \
    X_(VALIDATION_VERSION_MAJOR, 0x4200E3, "Validation Version Major")                            \
    X_(VALIDATION_VERSION_MINOR, 0x4200E4, "Validation Version Minor")                            \
    X_(VALIDATION_TYPE, 0x4200E5, "Validation Type")                                              \
    X_(VALIDATION_LEVEL, 0x4200E6, "Validation Level")                                            \
    X_(VALIDATION_CERTIFICATE_IDENTIFIER, 0x4200E7, "Validation Certificate Identifier")          \
    X_(VALIDATION_CERTIFICATE_URI, 0x4200E8, "Validation Certificate URI")                        \
    X_(VALIDATION_VENDOR_URI, 0x4200E9, "Validation Vendor URI")                                  \
    X_(VALIDATION_PROFILE, 0x4200EA, "Validation Profile")                                        \
    X_(PROFILE_INFORMATION, 0x4200EB, "Profile Information")                                      \
    X_(PROFILE_NAME, 0x4200EC, "Profile Name")                                                    \
    X_(SERVER_URI, 0x4200ED, "Server URI")                                                        \
    X_(SERVER_PORT, 0x4200EE, "Server Port")                                                      \
    X_(STREAMING_CAPABILITY, 0x4200EF, "Streaming Capability")                                    \
    X_(ASYNCHRONOUS_CAPABILITY, 0x4200F0, "Asynchronous Capability")                              \
    X_(ATTESTATION_CAPABILITY, 0x4200F1, "Attestation Capability")                                \
    X_(UNWRAP_MODE, 0x4200F2, "Unwrap Mode")                                                      \
    X_(DESTROY_ACTION, 0x4200F3, "Destroy Action")                                                \
    X_(SHREDDING_ALGORITHM, 0x4200F4, "Shredding Algorithm")                                      \
    X_(RNG_MODE, 0x4200F5, "RNG Mode")                                                            \
    X_(CLIENT_REGISTRATION_METHOD, 0x4200F6, "Client Registration Method")                        \
    X_(CAPABILITY_INFORMATION, 0x4200F7, "Capability Information")                                \
    X_(KEY_WRAP_TYPE, 0x4200F8, "Key Wrap Type")                                                  \
    X_(BATCH_UNDO_CAPABILITY, 0x4200F9, "Batch Undo Capability")                                  \
    X_(BATCH_CONTINUE_CAPABILITY, 0x4200FA, "Batch Continue Capability")                          \
    X_(PKCS_12_FRIENDLY_NAME, 0x4200FB, "PKCS#12 Friendly Name")                                  \
    X_(DESCRIPTION, 0x4200FC, "Description")                                                      \
    X_(COMMENT, 0x4200FD, "Comment")                                                              \
    X_(AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, 0x4200FE,                                        \
       "Authenticated Encryption Additional Data")                                                \
    X_(AUTHENTICATED_ENCRYPTION_TAG, 0x4200FF, "Authenticated Encryption Tag")                    \
    X_(SALT_LENGTH, 0x420100, "Salt Length")                                                      \
    X_(MASK_GENERATOR, 0x420101, "Mask Generator")                                                \
    X_(MASK_GENERATOR_HASHING_ALGORITHM, 0x420102, "Mask Generator Hashing Algorithm")            \
    X_(P_SOURCE, 0x420103, "P Source")                                                            \
    X_(TRAILER_FIELD, 0x420104, "Trailer Field")                                                  \
    X_(CLIENT_CORRELATION_VALUE, 0x420105, "Client Correlation Value")                            \
    X_(SERVER_CORRELATION_VALUE, 0x420106, "Server Correlation Value")                            \
    X_(DIGESTED_DATA, 0x420107, "Digested Data")                                                  \
    X_(CERTIFICATE_SUBJECT_CN, 0x420108, "Certificate Subject CN")                                \
    X_(CERTIFICATE_SUBJECT_O, 0x420109, "Certificate Subject O")                                  \
    X_(CERTIFICATE_SUBJECT_OU, 0x42010A, "Certificate Subject OU")                                \
    X_(CERTIFICATE_SUBJECT_EMAIL, 0x42010B, "Certificate Subject Email")                          \
    X_(CERTIFICATE_SUBJECT_C, 0x42010C, "Certificate Subject C")                                  \
    X_(CERTIFICATE_SUBJECT_ST, 0x42010D, "Certificate Subject ST")                                \
    X_(CERTIFICATE_SUBJECT_L, 0x42010E, "Certificate Subject L")                                  \
    X_(CERTIFICATE_SUBJECT_UID, 0x42010F, "Certificate Subject UID")                              \
    X_(CERTIFICATE_SUBJECT_SERIAL_NUMBER, 0x420110, "Certificate Subject Serial Number")          \
    X_(CERTIFICATE_SUBJECT_TITLE, 0x420111, "Certificate Subject Title")                          \
    X_(CERTIFICATE_SUBJECT_DC, 0x420112, "Certificate Subject DC")                                \
    X_(CERTIFICATE_SUBJECT_DN_QUALIFIER, 0x420113, "Certificate Subject DN Qualifier")            \
    X_(CERTIFICATE_ISSUER_CN, 0x420114, "Certificate Issuer CN")                                  \
    X_(CERTIFICATE_ISSUER_O, 0x420115, "Certificate Issuer O")                                    \
    X_(CERTIFICATE_ISSUER_OU, 0x420116, "Certificate Issuer OU")                                  \
    X_(CERTIFICATE_ISSUER_EMAIL, 0x420117, "Certificate Issuer Email")                            \
    X_(CERTIFICATE_ISSUER_C, 0x420118, "Certificate Issuer C")                                    \
    X_(CERTIFICATE_ISSUER_ST, 0x420119, "Certificate Issuer ST")                                  \
    X_(CERTIFICATE_ISSUER_L, 0x42011A, "Certificate Issuer L")                                    \
    X_(CERTIFICATE_ISSUER_UID, 0x42011B, "Certificate Issuer UID")                                \
    X_(CERTIFICATE_ISSUER_SERIAL_NUMBER, 0x42011C, "Certificate Issuer Serial Number")            \
    X_(CERTIFICATE_ISSUER_TITLE, 0x42011D, "Certificate Issuer Title")                            \
    X_(CERTIFICATE_ISSUER_DC, 0x42011E, "Certificate Issuer DC")                                  \
    X_(CERTIFICATE_ISSUER_DN_QUALIFIER, 0x42011F, "Certificate Issuer DN Qualifier")              \
    X_(SENSITIVE, 0x420120, "Sensitive")                                                          \
    X_(ALWAYS_SENSITIVE, 0x420121, "Always Sensitive")                                            \
    X_(EXTRACTABLE, 0x420122, "Extractable")                                                      \
    X_(NEVER_EXTRACTABLE, 0x420123, "Never Extractable")                                          \
    X_(REPLACE_EXISTING, 0x420124, "Replace Existing")                                            \
    /* 2.x: the rest is not in 1.4 */                                                             \
    X_(ATTRIBUTES, 0x420125, "Attributes")                                                        \
    X_(COMMON_ATTRIBUTES, 0x420126, "Common Attributes")                                          \
    X_(PRIVATE_KEY_ATTRIBUTES, 0x420127, "Private Key Attributes")                                \
    X_(PUBLIC_KEY_ATTRIBUTES, 0x420128, "Public Key Attributes")                                  \
    X_(EXTENSION_ENUMERATION, 0x420129, "Extension Enumeration")                                  \
    X_(EXTENSION_ATTRIBUTE, 0x42012A, "Extension Attribute")                                      \
    X_(EXTENSION_PARENT_STRUCTURE_TAG, 0x42012B, "Extension Parent Structure Tag")                \
    X_(EXTENSION_DESCRIPTION, 0x42012C, "Extension Description")                                  \
    X_(SERVER_NAME, 0x42012D, "Server Name")                                                      \
    X_(SERVER_SERIAL_NUMBER, 0x42012E, "Server Serial Number")                                    \
    X_(SERVER_VERSION, 0x42012F, "Server Version")                                                \
    X_(SERVER_LOAD, 0x420130, "Server Load")                                                      \
    X_(PRODUCT_NAME, 0x420131, "Product Name")                                                    \
    X_(BUILD_LEVEL, 0x420132, "Build Level")                                                      \
    X_(BUILD_DATE, 0x420133, "Build Date")                                                        \
    X_(CLUSTER_INFO, 0x420134, "Cluster Info")                                                    \
    X_(ALTERNATE_FAILOVER_ENDPOINTS, 0x420135, "Alternate Failover Endpoints")                    \
    X_(SHORT_UNIQUE_IDENTIFIER, 0x420136, "Short Unique Identifier")                              \
    /* 0x420137: 2.1 writes "Reserved" (sic, no parentheses): no item, left out */                \
    X_(TAG, 0x420138, "Tag")                                                                      \
    X_(CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER, 0x420139, "Certificate Request Unique Identifier")  \
    X_(NIST_KEY_TYPE, 0x42013A, "NIST Key Type")                                                  \
    X_(ATTRIBUTE_REFERENCE, 0x42013B, "Attribute Reference")                                      \
    X_(CURRENT_ATTRIBUTE, 0x42013C, "Current Attribute")                                          \
    X_(NEW_ATTRIBUTE, 0x42013D, "New Attribute")                                                  \
    /* 0x42013E: (Reserved) in 2.1 */                                                             \
    /* 0x42013F: (Reserved) in 2.1 */                                                             \
    X_(CERTIFICATE_REQUEST_VALUE, 0x420140, "Certificate Request Value")                          \
    X_(LOG_MESSAGE, 0x420141, "Log Message")                                                      \
    X_(PROFILE_VERSION, 0x420142, "Profile Version")                                              \
    X_(PROFILE_VERSION_MAJOR, 0x420143, "Profile Version Major")                                  \
    X_(PROFILE_VERSION_MINOR, 0x420144, "Profile Version Minor")                                  \
    X_(PROTECTION_LEVEL, 0x420145, "Protection Level")                                            \
    X_(PROTECTION_PERIOD, 0x420146, "Protection Period")                                          \
    X_(QUANTUM_SAFE, 0x420147, "Quantum Safe")                                                    \
    X_(QUANTUM_SAFE_CAPABILITY, 0x420148, "Quantum Safe Capability")                              \
    X_(TICKET, 0x420149, "Ticket")                                                                \
    X_(TICKET_TYPE, 0x42014A, "Ticket Type")                                                      \
    X_(TICKET_VALUE, 0x42014B, "Ticket Value")                                                    \
    X_(REQUEST_COUNT, 0x42014C, "Request Count")                                                  \
    X_(RIGHTS, 0x42014D, "Rights")                                                                \
    X_(OBJECTS, 0x42014E, "Objects")                                                              \
    X_(OPERATIONS, 0x42014F, "Operations")                                                        \
    X_(RIGHT, 0x420150, "Right")                                                                  \
    X_(ENDPOINT_ROLE, 0x420151, "Endpoint Role")                                                  \
    X_(DEFAULTS_INFORMATION, 0x420152, "Defaults Information")                                    \
    X_(OBJECT_DEFAULTS, 0x420153, "Object Defaults")                                              \
    X_(EPHEMERAL, 0x420154, "Ephemeral")                                                          \
    X_(SERVER_HASHED_PASSWORD, 0x420155, "Server Hashed Password")                                \
    X_(ONE_TIME_PASSWORD, 0x420156, "One Time Password")                                          \
    X_(HASHED_PASSWORD, 0x420157, "Hashed Password")                                              \
    X_(ADJUSTMENT_TYPE, 0x420158, "Adjustment Type")                                              \
    X_(PKCS_11_INTERFACE, 0x420159, "PKCS#11 Interface")                                          \
    X_(PKCS_11_FUNCTION, 0x42015A, "PKCS#11 Function")                                            \
    X_(PKCS_11_INPUT_PARAMETERS, 0x42015B, "PKCS#11 Input Parameters")                            \
    X_(PKCS_11_OUTPUT_PARAMETERS, 0x42015C, "PKCS#11 Output Parameters")                          \
    X_(PKCS_11_RETURN_CODE, 0x42015D, "PKCS#11 Return Code")                                      \
    X_(PROTECTION_STORAGE_MASK, 0x42015E, "Protection Storage Mask")                              \
    X_(PROTECTION_STORAGE_MASKS, 0x42015F, "Protection Storage Masks")                            \
    X_(INTEROP_FUNCTION, 0x420160, "Interop Function")                                            \
    X_(INTEROP_IDENTIFIER, 0x420161, "Interop Identifier")                                        \
    X_(ADJUSTMENT_VALUE, 0x420162, "Adjustment Value")                                            \
    X_(COMMON_PROTECTION_STORAGE_MASKS, 0x420163, "Common Protection Storage Masks")              \
    X_(PRIVATE_PROTECTION_STORAGE_MASKS, 0x420164, "Private Protection Storage Masks")            \
    X_(PUBLIC_PROTECTION_STORAGE_MASKS, 0x420165, "Public Protection Storage Masks")              \
    X_(OBJECT_GROUPS, 0x420166, "Object Groups")                                                  \
    X_(OBJECT_TYPES, 0x420167, "Object Types")                                                    \
    X_(CONSTRAINTS, 0x420168, "Constraints")                                                      \
    X_(CONSTRAINT, 0x420169, "Constraint")                                                        \
    X_(ROTATE_INTERVAL, 0x42016A, "Rotate Interval")                                              \
    X_(ROTATE_AUTOMATIC, 0x42016B, "Rotate Automatic")                                            \
    X_(ROTATE_OFFSET, 0x42016C, "Rotate Offset")                                                  \
    X_(ROTATE_DATE, 0x42016D, "Rotate Date")                                                      \
    X_(ROTATE_GENERATION, 0x42016E, "Rotate Generation")                                          \
    X_(ROTATE_NAME, 0x42016F, "Rotate Name")                                                      \
    X_(ROTATE_NAME_VALUE, 0x420170, "Rotate Name Value")                                          \
    X_(ROTATE_NAME_TYPE, 0x420171, "Rotate Name Type")                                            \
    X_(ROTATE_LATEST, 0x420172, "Rotate Latest")                                                  \
    X_(ASYNCHRONOUS_REQUEST, 0x420173, "Asynchronous Request")                                    \
    X_(SUBMISSION_DATE, 0x420174, "Submission Date")                                              \
    X_(PROCESSING_STAGE, 0x420175, "Processing Stage")                                            \
    X_(ASYNCHRONOUS_CORRELATION_VALUES, 0x420176, "Asynchronous Correlation Values")

/*
 * Operation Enumeration: KMIP 1.4 §9.1.3.2.27 (Table 315), KMIP 2.1 §11.36
 * (Table 470). enum kmip_operation, KMIP_OP_*.
 */
#define KMIP_OPERATIONS(X_)                                                              \
    X_(CREATE, 0x00000001, "Create")                                                     \
    X_(CREATE_KEY_PAIR, 0x00000002, "Create Key Pair")                                   \
    X_(REGISTER, 0x00000003, "Register")                                                 \
    X_(RE_KEY, 0x00000004, "Re-key")                                                     \
    X_(DERIVE_KEY, 0x00000005, "Derive Key")                                             \
    X_(CERTIFY, 0x00000006, "Certify")                                                   \
    X_(RE_CERTIFY, 0x00000007, "Re-certify")                                             \
    X_(LOCATE, 0x00000008, "Locate")                                                     \
    X_(CHECK, 0x00000009, "Check")                                                       \
    X_(GET, 0x0000000A, "Get")                                                           \
    X_(GET_ATTRIBUTES, 0x0000000B, "Get Attributes")                                     \
    X_(GET_ATTRIBUTE_LIST, 0x0000000C, "Get Attribute List")                             \
    X_(ADD_ATTRIBUTE, 0x0000000D, "Add Attribute")                                       \
    X_(MODIFY_ATTRIBUTE, 0x0000000E, "Modify Attribute")                                 \
    X_(DELETE_ATTRIBUTE, 0x0000000F, "Delete Attribute")                                 \
    X_(OBTAIN_LEASE, 0x00000010, "Obtain Lease")                                         \
    X_(GET_USAGE_ALLOCATION, 0x00000011, "Get Usage Allocation")                         \
    X_(ACTIVATE, 0x00000012, "Activate")                                                 \
    X_(REVOKE, 0x00000013, "Revoke")                                                     \
    X_(DESTROY, 0x00000014, "Destroy")                                                   \
    X_(ARCHIVE, 0x00000015, "Archive")                                                   \
    X_(RECOVER, 0x00000016, "Recover")                                                   \
    X_(VALIDATE, 0x00000017, "Validate")                                                 \
    X_(QUERY, 0x00000018, "Query")                                                       \
    X_(CANCEL, 0x00000019, "Cancel")                                                     \
    X_(POLL, 0x0000001A, "Poll")                                                         \
    X_(NOTIFY, 0x0000001B, "Notify")                                                     \
    X_(PUT, 0x0000001C, "Put")                                                           \
    X_(RE_KEY_KEY_PAIR, 0x0000001D, "Re-key Key Pair")                                   \
    X_(DISCOVER_VERSIONS, 0x0000001E, "Discover Versions")                               \
    X_(ENCRYPT, 0x0000001F, "Encrypt")                                                   \
    X_(DECRYPT, 0x00000020, "Decrypt")                                                   \
    X_(SIGN, 0x00000021, "Sign")                                                         \
    X_(SIGNATURE_VERIFY, 0x00000022, "Signature Verify")                                 \
    X_(MAC, 0x00000023, "MAC")                                                           \
    X_(MAC_VERIFY, 0x00000024, "MAC Verify")                                             \
    X_(RNG_RETRIEVE, 0x00000025, "RNG Retrieve")                                         \
    X_(RNG_SEED, 0x00000026, "RNG Seed")                                                 \
    X_(HASH, 0x00000027, "Hash")                                                         \
    X_(CREATE_SPLIT_KEY, 0x00000028, "Create Split Key")                                 \
    X_(JOIN_SPLIT_KEY, 0x00000029, "Join Split Key")                                     \
    X_(IMPORT, 0x0000002A, "Import")                                                     \
    X_(EXPORT, 0x0000002B, "Export")                                                     \
    X_(LOG, 0x0000002C, "Log")                                                 /* 2.x */ \
    X_(LOGIN, 0x0000002D, "Login")                                             /* 2.x */ \
    X_(LOGOUT, 0x0000002E, "Logout")                                           /* 2.x */ \
    X_(DELEGATED_LOGIN, 0x0000002F, "Delegated Login")                         /* 2.x */ \
    X_(ADJUST_ATTRIBUTE, 0x00000030, "Adjust Attribute")                       /* 2.x */ \
    X_(SET_ATTRIBUTE, 0x00000031, "Set Attribute")                             /* 2.x */ \
    X_(SET_ENDPOINT_ROLE, 0x00000032, "Set Endpoint Role")                     /* 2.x */ \
    X_(PKCS_11, 0x00000033, "PKCS#11")                                         /* 2.x */ \
    X_(INTEROP, 0x00000034, "Interop")                                         /* 2.x */ \
    X_(RE_PROVISION, 0x00000035, "Re-Provision")                               /* 2.x */ \
    X_(SET_DEFAULTS, 0x00000036, "Set Defaults")                               /* 2.x */ \
    X_(SET_CONSTRAINTS, 0x00000037, "Set Constraints")                         /* 2.x */ \
    X_(GET_CONSTRAINTS, 0x00000038, "Get Constraints")                         /* 2.x */ \
    X_(QUERY_ASYNCHRONOUS_REQUESTS, 0x00000039, "Query Asynchronous Requests") /* 2.x */ \
    X_(PROCESS, 0x0000003A, "Process")                                         /* 2.x */ \
    X_(PING, 0x0000003B, "Ping")                                               /* 2.x */

/*
 * Object Type Enumeration: KMIP 1.4 §9.1.3.2.12 (Table 300), KMIP 2.1 §11.34
 * (Table 468). enum kmip_object_type, KMIP_OBJ_*.
 */
#define KMIP_OBJECT_TYPES(X_)                                       \
    X_(CERTIFICATE, 0x00000001, "Certificate")                      \
    X_(SYMMETRIC_KEY, 0x00000002, "Symmetric Key")                  \
    X_(PUBLIC_KEY, 0x00000003, "Public Key")                        \
    X_(PRIVATE_KEY, 0x00000004, "Private Key")                      \
    X_(SPLIT_KEY, 0x00000005, "Split Key")                          \
    X_(TEMPLATE, 0x00000006, "Template") /* 1.x only, deprecated */ \
    X_(SECRET_DATA, 0x00000007, "Secret Data")                      \
    X_(OPAQUE_OBJECT, 0x00000008, "Opaque Object")                  \
    X_(PGP_KEY, 0x00000009, "PGP Key")                              \
    X_(CERTIFICATE_REQUEST, 0x0000000A, "Certificate Request") /* 2.x */

/*
 * Result Status Enumeration: KMIP 1.4 §9.1.3.2.28 (Table 316), KMIP 2.1 §11.47
 * (Table 480). enum kmip_result_status, KMIP_STATUS_*.
 */
#define KMIP_RESULT_STATUSES(X_)                           \
    X_(SUCCESS, 0x00000000, "Success")                     \
    X_(OPERATION_FAILED, 0x00000001, "Operation Failed")   \
    X_(OPERATION_PENDING, 0x00000002, "Operation Pending") \
    X_(OPERATION_UNDONE, 0x00000003, "Operation Undone")

/*
 * Result Reason Enumeration: KMIP 1.4 §9.1.3.2.29 (Table 317), KMIP 2.1 §11.46
 * (Table 479). 2.1 reserves 0x27, 0x31, 0x33 and 0x38. Its table of
 * descriptions (Table 478) names some reasons differently; the names here are
 * those of the enumeration table. enum kmip_result_reason, KMIP_REASON_*.
 */
#define KMIP_RESULT_REASONS(X_)                                                                \
    X_(ITEM_NOT_FOUND, 0x00000001, "Item Not Found")                                           \
    X_(RESPONSE_TOO_LARGE, 0x00000002, "Response Too Large")                                   \
    X_(AUTHENTICATION_NOT_SUCCESSFUL, 0x00000003, "Authentication Not Successful")             \
    X_(INVALID_MESSAGE, 0x00000004, "Invalid Message")                                         \
    X_(OPERATION_NOT_SUPPORTED, 0x00000005, "Operation Not Supported")                         \
    X_(MISSING_DATA, 0x00000006, "Missing Data")                                               \
    X_(INVALID_FIELD, 0x00000007, "Invalid Field")                                             \
    X_(FEATURE_NOT_SUPPORTED, 0x00000008, "Feature Not Supported")                             \
    X_(OPERATION_CANCELED_BY_REQUESTER, 0x00000009, "Operation Canceled By Requester")         \
    X_(CRYPTOGRAPHIC_FAILURE, 0x0000000A, "Cryptographic Failure")                             \
    X_(ILLEGAL_OPERATION, 0x0000000B, "Illegal Operation") /* 1.x only */                      \
    X_(PERMISSION_DENIED, 0x0000000C, "Permission Denied")                                     \
    X_(OBJECT_ARCHIVED, 0x0000000D, "Object Archived") /* 1.4 spells it "Object archived" */   \
    X_(INDEX_OUT_OF_BOUNDS, 0x0000000E, "Index Out of Bounds") /* 1.x only */                  \
    X_(APPLICATION_NAMESPACE_NOT_SUPPORTED, 0x0000000F, "Application Namespace Not Supported") \
    X_(KEY_FORMAT_TYPE_NOT_SUPPORTED, 0x00000010, "Key Format Type Not Supported")             \
    X_(KEY_COMPRESSION_TYPE_NOT_SUPPORTED, 0x00000011, "Key Compression Type Not Supported")   \
    X_(ENCODING_OPTION_ERROR, 0x00000012, "Encoding Option Error")                             \
    X_(KEY_VALUE_NOT_PRESENT, 0x00000013, "Key Value Not Present")                             \
    X_(ATTESTATION_REQUIRED, 0x00000014, "Attestation Required")                               \
    X_(ATTESTATION_FAILED, 0x00000015, "Attestation Failed")                                   \
    X_(SENSITIVE, 0x00000016, "Sensitive")                                                     \
    X_(NOT_EXTRACTABLE, 0x00000017, "Not Extractable")                                         \
    X_(OBJECT_ALREADY_EXISTS, 0x00000018, "Object Already Exists")                             \
    X_(INVALID_TICKET, 0x00000019, "Invalid Ticket")                             /* 2.x */     \
    X_(USAGE_LIMIT_EXCEEDED, 0x0000001A, "Usage Limit Exceeded")                 /* 2.x */     \
    X_(NUMERIC_RANGE, 0x0000001B, "Numeric Range")                               /* 2.x */     \
    X_(INVALID_DATA_TYPE, 0x0000001C, "Invalid Data Type")                       /* 2.x */     \
    X_(READ_ONLY_ATTRIBUTE, 0x0000001D, "Read Only Attribute")                   /* 2.x */     \
    X_(MULTI_VALUED_ATTRIBUTE, 0x0000001E, "Multi Valued Attribute")             /* 2.x */     \
    X_(UNSUPPORTED_ATTRIBUTE, 0x0000001F, "Unsupported Attribute")               /* 2.x */     \
    X_(ATTRIBUTE_INSTANCE_NOT_FOUND, 0x00000020, "Attribute Instance Not Found") /* 2.x */     \
    X_(ATTRIBUTE_NOT_FOUND, 0x00000021, "Attribute Not Found")                   /* 2.x */     \
    X_(ATTRIBUTE_READ_ONLY, 0x00000022, "Attribute Read Only")                   /* 2.x */     \
    X_(ATTRIBUTE_SINGLE_VALUED, 0x00000023, "Attribute Single Valued")           /* 2.x */     \
    X_(BAD_CRYPTOGRAPHIC_PARAMETERS, 0x00000024, "Bad Cryptographic Parameters") /* 2.x */     \
    X_(BAD_PASSWORD, 0x00000025, "Bad Password")                                 /* 2.x */     \
    X_(CODEC_ERROR, 0x00000026, "Codec Error")                                   /* 2.x */     \
    X_(ILLEGAL_OBJECT_TYPE, 0x00000028, "Illegal Object Type")                   /* 2.x */     \
    X_(INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, 0x00000029,                                      \
       "Incompatible Cryptographic Usage Mask")                    /* 2.x */                   \
    X_(INTERNAL_SERVER_ERROR, 0x0000002A, "Internal Server Error") /* 2.x */                   \
    X_(INVALID_ASYNCHRONOUS_CORRELATION_VALUE, 0x0000002B,                                     \
       "Invalid Asynchronous Correlation Value")                                   /* 2.x */   \
    X_(INVALID_ATTRIBUTE, 0x0000002C, "Invalid Attribute")                         /* 2.x */   \
    X_(INVALID_ATTRIBUTE_VALUE, 0x0000002D, "Invalid Attribute Value")             /* 2.x */   \
    X_(INVALID_CORRELATION_VALUE, 0x0000002E, "Invalid Correlation Value")         /* 2.x */   \
    X_(INVALID_CSR, 0x0000002F, "Invalid CSR")                                     /* 2.x */   \
    X_(INVALID_OBJECT_TYPE, 0x00000030, "Invalid Object Type")                     /* 2.x */   \
    X_(KEY_WRAP_TYPE_NOT_SUPPORTED, 0x00000032, "Key Wrap Type Not Supported")     /* 2.x */   \
    X_(MISSING_INITIALIZATION_VECTOR, 0x00000034, "Missing Initialization Vector") /* 2.x */   \
    X_(NON_UNIQUE_NAME_ATTRIBUTE, 0x00000035, "Non Unique Name Attribute")         /* 2.x */   \
    X_(OBJECT_DESTROYED, 0x00000036, "Object Destroyed")                           /* 2.x */   \
    X_(OBJECT_NOT_FOUND, 0x00000037, "Object Not Found")                           /* 2.x */   \
    X_(NOT_AUTHORISED, 0x00000039, "Not Authorised")                               /* 2.x */   \
    X_(SERVER_LIMIT_EXCEEDED, 0x0000003A, "Server Limit Exceeded")                 /* 2.x */   \
    X_(UNKNOWN_ENUMERATION, 0x0000003B, "Unknown Enumeration")                     /* 2.x */   \
    X_(UNKNOWN_MESSAGE_EXTENSION, 0x0000003C, "Unknown Message Extension")         /* 2.x */   \
    X_(UNKNOWN_TAG, 0x0000003D, "Unknown Tag")                                     /* 2.x */   \
    X_(UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, 0x0000003E,                                       \
       "Unsupported Cryptographic Parameters")                                       /* 2.x */ \
    X_(UNSUPPORTED_PROTOCOL_VERSION, 0x0000003F, "Unsupported Protocol Version")     /* 2.x */ \
    X_(WRAPPING_OBJECT_ARCHIVED, 0x00000040, "Wrapping Object Archived")             /* 2.x */ \
    X_(WRAPPING_OBJECT_DESTROYED, 0x00000041, "Wrapping Object Destroyed")           /* 2.x */ \
    X_(WRAPPING_OBJECT_NOT_FOUND, 0x00000042, "Wrapping Object Not Found")           /* 2.x */ \
    X_(WRONG_KEY_LIFECYCLE_STATE, 0x00000043, "Wrong Key Lifecycle State")           /* 2.x */ \
    X_(PROTECTION_STORAGE_UNAVAILABLE, 0x00000044, "Protection Storage Unavailable") /* 2.x */ \
    X_(PKCS_11_CODEC_ERROR, 0x00000045, "PKCS#11 Codec Error")                       /* 2.x */ \
    X_(PKCS_11_INVALID_FUNCTION, 0x00000046, "PKCS#11 Invalid Function")             /* 2.x */ \
    X_(PKCS_11_INVALID_INTERFACE, 0x00000047, "PKCS#11 Invalid Interface")           /* 2.x */ \
    X_(PRIVATE_PROTECTION_STORAGE_UNAVAILABLE, 0x00000048,                                     \
       "Private Protection Storage Unavailable") /* 2.x */                                     \
    X_(PUBLIC_PROTECTION_STORAGE_UNAVAILABLE, 0x00000049,                                      \
       "Public Protection Storage Unavailable")                            /* 2.x */           \
    X_(UNKNOWN_OBJECT_GROUP, 0x0000004A, "Unknown Object Group")           /* 2.x */           \
    X_(CONSTRAINT_VIOLATION, 0x0000004B, "Constraint Violation")           /* 2.x */           \
    X_(DUPLICATE_PROCESS_REQUEST, 0x0000004C, "Duplicate Process Request") /* 2.x */           \
    X_(GENERAL_FAILURE, 0x00000100, "General Failure")

/*
 * Batch Error Continuation Option Enumeration: KMIP 1.4 §9.1.3.2.30 (Table
 * 318), KMIP 2.1 §11.5 (Table 435). enum kmip_batch_error_option,
 * KMIP_BATCH_ERROR_*.
 */
#define KMIP_BATCH_ERROR_OPTIONS(X_)     \
    X_(CONTINUE, 0x00000001, "Continue") \
    X_(STOP, 0x00000002, "Stop")         \
    X_(UNDO, 0x00000003, "Undo")

/*
 * Query Function Enumeration: KMIP 1.4 §9.1.3.2.24 (Table 312), KMIP 2.1
 * §11.44 (Table 476). enum kmip_query_function, KMIP_QUERY_*.
 */
#define KMIP_QUERY_FUNCTIONS(X_)                                                         \
    X_(OPERATIONS, 0x00000001, "Query Operations")                                       \
    X_(OBJECTS, 0x00000002, "Query Objects")                                             \
    X_(SERVER_INFORMATION, 0x00000003, "Query Server Information")                       \
    X_(APPLICATION_NAMESPACES, 0x00000004, "Query Application Namespaces")               \
    X_(EXTENSION_LIST, 0x00000005, "Query Extension List")                               \
    X_(EXTENSION_MAP, 0x00000006, "Query Extension Map")                                 \
    X_(ATTESTATION_TYPES, 0x00000007, "Query Attestation Types")                         \
    X_(RNGS, 0x00000008, "Query RNGs")                                                   \
    X_(VALIDATIONS, 0x00000009, "Query Validations")                                     \
    X_(PROFILES, 0x0000000A, "Query Profiles")                                           \
    X_(CAPABILITIES, 0x0000000B, "Query Capabilities")                                   \
    X_(CLIENT_REGISTRATION_METHODS, 0x0000000C, "Query Client Registration Methods")     \
    X_(DEFAULTS_INFORMATION, 0x0000000D, "Query Defaults Information")         /* 2.x */ \
    X_(STORAGE_PROTECTION_MASKS, 0x0000000E, "Query Storage Protection Masks") /* 2.x */

/*
 * State Enumeration: KMIP 1.4 §9.1.3.2.18 (Table 306), KMIP 2.1 §11.55 (Table
 * 486). enum kmip_state, KMIP_STATE_*.
 */
#define KMIP_STATES(X_)                        \
    X_(PRE_ACTIVE, 0x00000001, "Pre-Active")   \
    X_(ACTIVE, 0x00000002, "Active")           \
    X_(DEACTIVATED, 0x00000003, "Deactivated") \
    X_(COMPROMISED, 0x00000004, "Compromised") \
    X_(DESTROYED, 0x00000005, "Destroyed")     \
    X_(DESTROYED_COMPROMISED, 0x00000006, "Destroyed Compromised")

/*
 * Revocation Reason Code Enumeration: KMIP 1.4 §9.1.3.2.19 (Table 307), KMIP
 * 2.1 §11.48 (Table 481). enum kmip_revocation_reason, KMIP_REVOCATION_*.
 */
#define KMIP_REVOCATION_REASONS(X_)                                  \
    X_(UNSPECIFIED, 0x00000001, "Unspecified")                       \
    X_(KEY_COMPROMISE, 0x00000002, "Key Compromise")                 \
    X_(CA_COMPROMISE, 0x00000003, "CA Compromise")                   \
    X_(AFFILIATION_CHANGED, 0x00000004, "Affiliation Changed")       \
    X_(SUPERSEDED, 0x00000005, "Superseded")                         \
    X_(CESSATION_OF_OPERATION, 0x00000006, "Cessation of Operation") \
    X_(PRIVILEGE_WITHDRAWN, 0x00000007, "Privilege Withdrawn")

/*
 * Name Type Enumeration: KMIP 1.4 §9.1.3.2.11 (Table 299), KMIP 2.1 §11.31
 * (Table 466). enum kmip_name_type, KMIP_NAME_TYPE_*.
 */
#define KMIP_NAME_TYPES(X_)                                                \
    X_(UNINTERPRETED_TEXT_STRING, 0x00000001, "Uninterpreted Text String") \
    X_(URI, 0x00000002, "URI")

/*
 * Link Type Enumeration: KMIP 1.4 §9.1.3.2.20 (Table 308), KMIP 2.1 §11.28
 * (Table 465). enum kmip_link_type, KMIP_LINK_*.
 */
#define KMIP_LINK_TYPES(X_)                                               \
    X_(CERTIFICATE, 0x00000101, "Certificate Link")                       \
    X_(PUBLIC_KEY, 0x00000102, "Public Key Link")                         \
    X_(PRIVATE_KEY, 0x00000103, "Private Key Link")                       \
    X_(DERIVATION_BASE_OBJECT, 0x00000104, "Derivation Base Object Link") \
    X_(DERIVED_KEY, 0x00000105, "Derived Key Link")                       \
    X_(REPLACEMENT_OBJECT, 0x00000106, "Replacement Object Link")         \
    X_(REPLACED_OBJECT, 0x00000107, "Replaced Object Link")               \
    X_(PARENT, 0x00000108, "Parent Link")                                 \
    X_(CHILD, 0x00000109, "Child Link")                                   \
    X_(PREVIOUS, 0x0000010A, "Previous Link")                             \
    X_(NEXT, 0x0000010B, "Next Link")                                     \
    X_(PKCS_12_CERTIFICATE, 0x0000010C, "PKCS#12 Certificate Link")       \
    X_(PKCS_12_PASSWORD, 0x0000010D, "PKCS#12 Password Link")             \
    X_(WRAPPING_KEY, 0x0000010E, "Wrapping Key Link") /* 2.x */

/*
 * Object Group Member Enumeration: KMIP 1.4 §9.1.3.2.33 (Table 321), KMIP 2.1
 * §11.33 (Table 467). enum kmip_object_group_member, KMIP_GROUP_MEMBER_*.
 */
#define KMIP_OBJECT_GROUP_MEMBERS(X_)           \
    X_(FRESH, 0x00000001, "Group Member Fresh") \
    X_(DEFAULT, 0x00000002, "Group Member Default")

/*
 * Unique Identifier Enumeration: KMIP 2.1 §11.58 (Table 489), new in 2.x. enum
 * kmip_unique_identifier, KMIP_UID_*.
 */
#define KMIP_UNIQUE_IDENTIFIERS(X_)                                            \
    X_(ID_PLACEHOLDER, 0x00000001, "ID Placeholder")                           \
    X_(CERTIFY, 0x00000002, "Certify")                                         \
    X_(CREATE, 0x00000003, "Create")                                           \
    X_(CREATE_KEY_PAIR, 0x00000004, "Create Key Pair")                         \
    X_(CREATE_KEY_PAIR_PRIVATE_KEY, 0x00000005, "Create Key Pair Private Key") \
    X_(CREATE_KEY_PAIR_PUBLIC_KEY, 0x00000006, "Create Key Pair Public Key")   \
    X_(CREATE_SPLIT_KEY, 0x00000007, "Create Split Key")                       \
    X_(DERIVE_KEY, 0x00000008, "Derive Key")                                   \
    X_(IMPORT, 0x00000009, "Import")                                           \
    X_(JOIN_SPLIT_KEY, 0x0000000A, "Join Split Key")                           \
    X_(LOCATE, 0x0000000B, "Locate")                                           \
    X_(REGISTER, 0x0000000C, "Register")                                       \
    X_(RE_KEY, 0x0000000D, "Re-key")                                           \
    X_(RE_CERTIFY, 0x0000000E, "Re-certify")                                   \
    X_(RE_KEY_KEY_PAIR, 0x0000000F, "Re-key Key Pair")                         \
    X_(RE_KEY_KEY_PAIR_PRIVATE_KEY, 0x00000010, "Re-key Key Pair Private Key") \
    X_(RE_KEY_KEY_PAIR_PUBLIC_KEY, 0x00000011, "Re-key Key Pair Public Key")

/*
 * Cryptographic Algorithm Enumeration: KMIP 1.4 §9.1.3.2.13 (Table 301), KMIP
 * 2.1 §11.12 (Table 443). 3DES is TRIPLE_DES. enum kmip_crypto_alg,
 * KMIP_ALG_*.
 */
#define KMIP_CRYPTO_ALGS(X_)                                         \
    X_(DES, 0x00000001, "DES")                                       \
    X_(TRIPLE_DES, 0x00000002, "3DES")                               \
    X_(AES, 0x00000003, "AES")                                       \
    X_(RSA, 0x00000004, "RSA")                                       \
    X_(DSA, 0x00000005, "DSA")                                       \
    X_(ECDSA, 0x00000006, "ECDSA")                                   \
    X_(HMAC_SHA1, 0x00000007, "HMAC-SHA1")                           \
    X_(HMAC_SHA224, 0x00000008, "HMAC-SHA224")                       \
    X_(HMAC_SHA256, 0x00000009, "HMAC-SHA256")                       \
    X_(HMAC_SHA384, 0x0000000A, "HMAC-SHA384")                       \
    X_(HMAC_SHA512, 0x0000000B, "HMAC-SHA512")                       \
    X_(HMAC_MD5, 0x0000000C, "HMAC-MD5")                             \
    X_(DH, 0x0000000D, "DH")                                         \
    X_(ECDH, 0x0000000E, "ECDH")                                     \
    X_(ECMQV, 0x0000000F, "ECMQV")                                   \
    X_(BLOWFISH, 0x00000010, "Blowfish")                             \
    X_(CAMELLIA, 0x00000011, "Camellia")                             \
    X_(CAST5, 0x00000012, "CAST5")                                   \
    X_(IDEA, 0x00000013, "IDEA")                                     \
    X_(MARS, 0x00000014, "MARS")                                     \
    X_(RC2, 0x00000015, "RC2")                                       \
    X_(RC4, 0x00000016, "RC4")                                       \
    X_(RC5, 0x00000017, "RC5")                                       \
    X_(SKIPJACK, 0x00000018, "SKIPJACK")                             \
    X_(TWOFISH, 0x00000019, "Twofish")                               \
    X_(EC, 0x0000001A, "EC")                                         \
    X_(ONE_TIME_PAD, 0x0000001B, "One Time Pad")                     \
    X_(CHACHA20, 0x0000001C, "ChaCha20")                             \
    X_(POLY1305, 0x0000001D, "Poly1305")                             \
    X_(CHACHA20POLY1305, 0x0000001E, "ChaCha20Poly1305")             \
    X_(SHA3_224, 0x0000001F, "SHA3-224")                             \
    X_(SHA3_256, 0x00000020, "SHA3-256")                             \
    X_(SHA3_384, 0x00000021, "SHA3-384")                             \
    X_(SHA3_512, 0x00000022, "SHA3-512")                             \
    X_(HMAC_SHA3_224, 0x00000023, "HMAC-SHA3-224")                   \
    X_(HMAC_SHA3_256, 0x00000024, "HMAC-SHA3-256")                   \
    X_(HMAC_SHA3_384, 0x00000025, "HMAC-SHA3-384")                   \
    X_(HMAC_SHA3_512, 0x00000026, "HMAC-SHA3-512")                   \
    X_(SHAKE_128, 0x00000027, "SHAKE-128")                           \
    X_(SHAKE_256, 0x00000028, "SHAKE-256")                           \
    X_(ARIA, 0x00000029, "ARIA")                           /* 2.x */ \
    X_(SEED, 0x0000002A, "SEED")                           /* 2.x */ \
    X_(SM2, 0x0000002B, "SM2")                             /* 2.x */ \
    X_(SM3, 0x0000002C, "SM3")                             /* 2.x */ \
    X_(SM4, 0x0000002D, "SM4")                             /* 2.x */ \
    X_(GOST_R_34_10_2012, 0x0000002E, "GOST R 34.10-2012") /* 2.x */ \
    X_(GOST_R_34_11_2012, 0x0000002F, "GOST R 34.11-2012") /* 2.x */ \
    X_(GOST_R_34_13_2015, 0x00000030, "GOST R 34.13-2015") /* 2.x */ \
    X_(GOST_28147_89, 0x00000031, "GOST 28147-89")         /* 2.x */ \
    X_(XMSS, 0x00000032, "XMSS")                           /* 2.x */ \
    X_(SPHINCS_256, 0x00000033, "SPHINCS-256")             /* 2.x */ \
    X_(MCELIECE, 0x00000034, "McEliece")                   /* 2.x */ \
    X_(MCELIECE_6960119, 0x00000035, "McEliece-6960119")   /* 2.x */ \
    X_(MCELIECE_8192128, 0x00000036, "McEliece-8192128")   /* 2.x */ \
    X_(ED25519, 0x00000037, "Ed25519")                     /* 2.x */ \
    X_(ED448, 0x00000038, "Ed448")                         /* 2.x */

/*
 * Block Cipher Mode Enumeration: KMIP 1.4 §9.1.3.2.14 (Table 302), KMIP 2.1
 * §11.6 (Table 436). enum kmip_block_cipher_mode, KMIP_MODE_*.
 */
#define KMIP_BLOCK_CIPHER_MODES(X_)                        \
    X_(CBC, 0x00000001, "CBC")                             \
    X_(ECB, 0x00000002, "ECB")                             \
    X_(PCBC, 0x00000003, "PCBC")                           \
    X_(CFB, 0x00000004, "CFB")                             \
    X_(OFB, 0x00000005, "OFB")                             \
    X_(CTR, 0x00000006, "CTR")                             \
    X_(CMAC, 0x00000007, "CMAC")                           \
    X_(CCM, 0x00000008, "CCM")                             \
    X_(GCM, 0x00000009, "GCM")                             \
    X_(CBC_MAC, 0x0000000A, "CBC-MAC")                     \
    X_(XTS, 0x0000000B, "XTS")                             \
    X_(AESKEYWRAPPADDING, 0x0000000C, "AESKeyWrapPadding") \
    X_(NISTKEYWRAP, 0x0000000D, "NISTKeyWrap")             \
    X_(X9_102_AESKW, 0x0000000E, "X9.102 AESKW")           \
    X_(X9_102_TDKW, 0x0000000F, "X9.102 TDKW")             \
    X_(X9_102_AKW1, 0x00000010, "X9.102 AKW1")             \
    X_(X9_102_AKW2, 0x00000011, "X9.102 AKW2")             \
    X_(AEAD, 0x00000012, "AEAD")

/*
 * Padding Method Enumeration: KMIP 1.4 §9.1.3.2.15 (Table 303), KMIP 2.1
 * §11.37 (Table 471). enum kmip_padding_method, KMIP_PADDING_*.
 */
#define KMIP_PADDING_METHODS(X_)             \
    X_(NONE, 0x00000001, "None")             \
    X_(OAEP, 0x00000002, "OAEP")             \
    X_(PKCS5, 0x00000003, "PKCS5")           \
    X_(SSL3, 0x00000004, "SSL3")             \
    X_(ZEROS, 0x00000005, "Zeros")           \
    X_(ANSI_X9_23, 0x00000006, "ANSI X9.23") \
    X_(ISO_10126, 0x00000007, "ISO 10126")   \
    X_(PKCS1_V1_5, 0x00000008, "PKCS1 v1.5") \
    X_(X9_31, 0x00000009, "X9.31")           \
    X_(PSS, 0x0000000A, "PSS")

/*
 * Hashing Algorithm Enumeration: KMIP 1.4 §9.1.3.2.16 (Table 304), KMIP 2.1
 * §11.21 (Table 454). enum kmip_hashing_alg, KMIP_HASH_*.
 */
#define KMIP_HASHING_ALGS(X_)                                            \
    X_(MD2, 0x00000001, "MD2")                                           \
    X_(MD4, 0x00000002, "MD4")                                           \
    X_(MD5, 0x00000003, "MD5")                                           \
    X_(SHA_1, 0x00000004, "SHA-1")                                       \
    X_(SHA_224, 0x00000005, "SHA-224")                                   \
    X_(SHA_256, 0x00000006, "SHA-256")                                   \
    X_(SHA_384, 0x00000007, "SHA-384")                                   \
    X_(SHA_512, 0x00000008, "SHA-512")                                   \
    X_(RIPEMD_160, 0x00000009, "RIPEMD-160")                             \
    X_(TIGER, 0x0000000A, "Tiger")                                       \
    X_(WHIRLPOOL, 0x0000000B, "Whirlpool")                               \
    X_(SHA_512_224, 0x0000000C, "SHA-512/224")                           \
    X_(SHA_512_256, 0x0000000D, "SHA-512/256")                           \
    X_(SHA3_224, 0x0000000E, "SHA3-224") /* 1.4 spells it "SHA-3-224" */ \
    X_(SHA3_256, 0x0000000F, "SHA3-256") /* 1.4 spells it "SHA-3-256" */ \
    X_(SHA3_384, 0x00000010, "SHA3-384") /* 1.4 spells it "SHA-3-384" */ \
    X_(SHA3_512, 0x00000011, "SHA3-512") /* 1.4 spells it "SHA-3-512" */

/*
 * Key Format Type Enumeration: KMIP 1.4 §9.1.3.2.3 (Table 291), KMIP 2.1
 * §11.25 (Table 461). enum kmip_key_format, KMIP_KEY_FORMAT_*.
 */
#define KMIP_KEY_FORMATS(X_)                                                   \
    X_(RAW, 0x00000001, "Raw")                                                 \
    X_(OPAQUE, 0x00000002, "Opaque")                                           \
    X_(PKCS_1, 0x00000003, "PKCS#1")                                           \
    X_(PKCS_8, 0x00000004, "PKCS#8")                                           \
    X_(X_509, 0x00000005, "X.509")                                             \
    X_(ECPRIVATEKEY, 0x00000006, "ECPrivateKey")                               \
    X_(TRANSPARENT_SYMMETRIC_KEY, 0x00000007, "Transparent Symmetric Key")     \
    X_(TRANSPARENT_DSA_PRIVATE_KEY, 0x00000008, "Transparent DSA Private Key") \
    X_(TRANSPARENT_DSA_PUBLIC_KEY, 0x00000009, "Transparent DSA Public Key")   \
    X_(TRANSPARENT_RSA_PRIVATE_KEY, 0x0000000A, "Transparent RSA Private Key") \
    X_(TRANSPARENT_RSA_PUBLIC_KEY, 0x0000000B, "Transparent RSA Public Key")   \
    X_(TRANSPARENT_DH_PRIVATE_KEY, 0x0000000C, "Transparent DH Private Key")   \
    X_(TRANSPARENT_DH_PUBLIC_KEY, 0x0000000D, "Transparent DH Public Key")     \
    X_(TRANSPARENT_ECDSA_PRIVATE_KEY, 0x0000000E,                              \
       "Transparent ECDSA Private Key") /* 1.x only, deprecated */             \
    X_(TRANSPARENT_ECDSA_PUBLIC_KEY, 0x0000000F,                               \
       "Transparent ECDSA Public Key") /* 1.x only, deprecated */              \
    X_(TRANSPARENT_ECDH_PRIVATE_KEY, 0x00000010,                               \
       "Transparent ECDH Private Key") /* 1.x only, deprecated */              \
    X_(TRANSPARENT_ECDH_PUBLIC_KEY, 0x00000011,                                \
       "Transparent ECDH Public Key") /* 1.x only, deprecated */               \
    X_(TRANSPARENT_ECMQV_PRIVATE_KEY, 0x00000012,                              \
       "Transparent ECMQV Private Key") /* 1.x only, deprecated */             \
    X_(TRANSPARENT_ECMQV_PUBLIC_KEY, 0x00000013,                               \
       "Transparent ECMQV Public Key") /* 1.x only, deprecated */              \
    X_(TRANSPARENT_EC_PRIVATE_KEY, 0x00000014, "Transparent EC Private Key")   \
    X_(TRANSPARENT_EC_PUBLIC_KEY, 0x00000015, "Transparent EC Public Key")     \
    X_(PKCS_12, 0x00000016, "PKCS#12")                                         \
    X_(PKCS_10, 0x00000017, "PKCS#10") /* 2.x */

/*
 * Key Compression Type Enumeration: KMIP 1.4 §9.1.3.2.2 (Table 290), KMIP 2.1
 * §11.24 (Table 459). enum kmip_key_compression, KMIP_KEY_COMPRESSION_*.
 */
#define KMIP_KEY_COMPRESSIONS(X_)                                                      \
    X_(EC_PUBLIC_KEY_TYPE_UNCOMPRESSED, 0x00000001, "EC Public Key Type Uncompressed") \
    X_(EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_PRIME, 0x00000002,                          \
       "EC Public Key Type X9.62 Compressed Prime")                                    \
    X_(EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_CHAR2, 0x00000003,                          \
       "EC Public Key Type X9.62 Compressed Char2")                                    \
    X_(EC_PUBLIC_KEY_TYPE_X9_62_HYBRID, 0x00000004, "EC Public Key Type X9.62 Hybrid")

/*
 * Wrapping Method Enumeration: KMIP 1.4 §9.1.3.2.4 (Table 292), KMIP 2.1
 * §11.62 (Table 494). enum kmip_wrapping_method, KMIP_WRAP_*.
 */
#define KMIP_WRAPPING_METHODS(X_)                                  \
    X_(ENCRYPT, 0x00000001, "Encrypt")                             \
    X_(MAC_SIGN, 0x00000002, "MAC/sign")                           \
    X_(ENCRYPT_THEN_MAC_SIGN, 0x00000003, "Encrypt then MAC/sign") \
    X_(MAC_SIGN_THEN_ENCRYPT, 0x00000004, "MAC/sign then encrypt") \
    X_(TR_31, 0x00000005, "TR-31")

/*
 * Encoding Option Enumeration: KMIP 1.4 §9.1.3.2.32 (Table 320), KMIP 2.1
 * §11.18 (Table 450). enum kmip_encoding_option, KMIP_ENCODING_*.
 */
#define KMIP_ENCODING_OPTIONS(X_)              \
    X_(NO_ENCODING, 0x00000001, "No Encoding") \
    X_(TTLV_ENCODING, 0x00000002, "TTLV Encoding")

/*
 * Secret Data Type Enumeration: KMIP 1.4 §9.1.3.2.9 (Table 297), KMIP 2.1
 * §11.52 (Table 483). enum kmip_secret_data_type, KMIP_SECRET_DATA_*.
 */
#define KMIP_SECRET_DATA_TYPES(X_)       \
    X_(PASSWORD, 0x00000001, "Password") \
    X_(SEED, 0x00000002, "Seed")

/*
 * Credential Type Enumeration: KMIP 1.4 §9.1.3.2.1 (Table 289), KMIP 2.1
 * §11.11 (Table 442). enum kmip_credential_type, KMIP_CREDENTIAL_*.
 */
#define KMIP_CREDENTIAL_TYPES(X_)                                    \
    X_(USERNAME_AND_PASSWORD, 0x00000001, "Username and Password")   \
    X_(DEVICE, 0x00000002, "Device")                                 \
    X_(ATTESTATION, 0x00000003, "Attestation")                       \
    X_(ONE_TIME_PASSWORD, 0x00000004, "One Time Password") /* 2.x */ \
    X_(HASHED_PASSWORD, 0x00000005, "Hashed Password")     /* 2.x */ \
    X_(TICKET, 0x00000006, "Ticket")                       /* 2.x */

/*
 * Attestation Type Enumeration: KMIP 1.4 §9.1.3.2.36 (Table 324), KMIP 2.1
 * §11.4 (Table 433). enum kmip_attestation_type, KMIP_ATTESTATION_*.
 */
#define KMIP_ATTESTATION_TYPES(X_)                               \
    X_(TPM_QUOTE, 0x00000001, "TPM Quote")                       \
    X_(TCG_INTEGRITY_REPORT, 0x00000002, "TCG Integrity Report") \
    X_(SAML_ASSERTION, 0x00000003, "SAML Assertion")

/*
 * Cryptographic Usage Mask bit mask: KMIP 1.4 §9.1.3.3.1 (Table 325), KMIP 2.1
 * §12.1 (Table 496). Values are single bits, ORed together on the wire. enum
 * kmip_usage_mask, KMIP_USAGE_*.
 */
#define KMIP_USAGE_MASKS(X_)                                                  \
    X_(SIGN, 0x00000001, "Sign")                                              \
    X_(VERIFY, 0x00000002, "Verify")                                          \
    X_(ENCRYPT, 0x00000004, "Encrypt")                                        \
    X_(DECRYPT, 0x00000008, "Decrypt")                                        \
    X_(WRAP_KEY, 0x00000010, "Wrap Key")                                      \
    X_(UNWRAP_KEY, 0x00000020, "Unwrap Key")                                  \
    X_(EXPORT, 0x00000040, "Export") /* 1.x only */                           \
    X_(MAC_GENERATE, 0x00000080, "MAC Generate")                              \
    X_(MAC_VERIFY, 0x00000100, "MAC Verify")                                  \
    X_(DERIVE_KEY, 0x00000200, "Derive Key")                                  \
    X_(CONTENT_COMMITMENT_NON_REPUDIATION, 0x00000400,                        \
       "Content Commitment (Non Repudiation)") /* 1.x only */                 \
    X_(KEY_AGREEMENT, 0x00000800, "Key Agreement")                            \
    X_(CERTIFICATE_SIGN, 0x00001000, "Certificate Sign")                      \
    X_(CRL_SIGN, 0x00002000, "CRL Sign")                                      \
    X_(GENERATE_CRYPTOGRAM, 0x00004000, "Generate Cryptogram") /* 1.x only */ \
    X_(VALIDATE_CRYPTOGRAM, 0x00008000, "Validate Cryptogram") /* 1.x only */ \
    X_(TRANSLATE_ENCRYPT, 0x00010000, "Translate Encrypt")     /* 1.x only */ \
    X_(TRANSLATE_DECRYPT, 0x00020000, "Translate Decrypt")     /* 1.x only */ \
    X_(TRANSLATE_WRAP, 0x00040000, "Translate Wrap")           /* 1.x only */ \
    X_(TRANSLATE_UNWRAP, 0x00080000, "Translate Unwrap")       /* 1.x only */ \
    X_(AUTHENTICATE, 0x00100000, "Authenticate")               /* 2.x */      \
    X_(UNRESTRICTED, 0x00200000, "Unrestricted")               /* 2.x */      \
    X_(FPE_ENCRYPT, 0x00400000, "FPE Encrypt")                 /* 2.x */      \
    X_(FPE_DECRYPT, 0x00800000, "FPE Decrypt")                 /* 2.x */

/*
 * Storage Status Mask bit mask: KMIP 1.4 §9.1.3.3.2 (Table 326), KMIP 2.1
 * §12.3 (Table 498). Values are single bits, ORed together on the wire. enum
 * kmip_storage_status_mask, KMIP_STORAGE_*.
 */
#define KMIP_STORAGE_STATUS_MASKS(X_)            \
    X_(ON_LINE, 0x00000001, "On-line storage")   \
    X_(ARCHIVAL, 0x00000002, "Archival storage") \
    X_(DESTROYED, 0x00000004, "Destroyed storage") /* 2.x */

/*
 * Protection Storage Mask bit mask: KMIP 2.1 §12.2 (Table 497), new in 2.x.
 * Values are single bits, ORed together on the wire. enum
 * kmip_protection_storage_mask, KMIP_PROTECTION_*.
 */
#define KMIP_PROTECTION_STORAGE_MASKS(X_)                \
    X_(SOFTWARE, 0x00000001, "Software")                 \
    X_(HARDWARE, 0x00000002, "Hardware")                 \
    X_(ON_PROCESSOR, 0x00000004, "On Processor")         \
    X_(ON_SYSTEM, 0x00000008, "On System")               \
    X_(OFF_SYSTEM, 0x00000010, "Off System")             \
    X_(HYPERVISOR, 0x00000020, "Hypervisor")             \
    X_(OPERATING_SYSTEM, 0x00000040, "Operating System") \
    X_(CONTAINER, 0x00000080, "Container")               \
    X_(ON_PREMISES, 0x00000100, "On Premises")           \
    X_(OFF_PREMISES, 0x00000200, "Off Premises")         \
    X_(SELF_MANAGED, 0x00000400, "Self Managed")         \
    X_(OUTSOURCED, 0x00000800, "Outsourced")             \
    X_(VALIDATED, 0x00001000, "Validated")               \
    X_(SAME_JURISDICTION, 0x00002000, "Same Jurisdiction")

/* --- the enum types, generated from the tables --- */

#define KMIP_DEFS_ENUM_TAG(name, value, text) KMIP_TAG_##name = value,
enum kmip_tag { KMIP_TAGS(KMIP_DEFS_ENUM_TAG) };
#undef KMIP_DEFS_ENUM_TAG

#define KMIP_DEFS_ENUM_OP(name, value, text) KMIP_OP_##name = value,
enum kmip_operation { KMIP_OPERATIONS(KMIP_DEFS_ENUM_OP) };
#undef KMIP_DEFS_ENUM_OP

#define KMIP_DEFS_ENUM_OBJ(name, value, text) KMIP_OBJ_##name = value,
enum kmip_object_type { KMIP_OBJECT_TYPES(KMIP_DEFS_ENUM_OBJ) };
#undef KMIP_DEFS_ENUM_OBJ

#define KMIP_DEFS_ENUM_STATUS(name, value, text) KMIP_STATUS_##name = value,
enum kmip_result_status { KMIP_RESULT_STATUSES(KMIP_DEFS_ENUM_STATUS) };
#undef KMIP_DEFS_ENUM_STATUS

#define KMIP_DEFS_ENUM_REASON(name, value, text) KMIP_REASON_##name = value,
enum kmip_result_reason { KMIP_RESULT_REASONS(KMIP_DEFS_ENUM_REASON) };
#undef KMIP_DEFS_ENUM_REASON

#define KMIP_DEFS_ENUM_BATCH_ERROR(name, value, text) KMIP_BATCH_ERROR_##name = value,
enum kmip_batch_error_option { KMIP_BATCH_ERROR_OPTIONS(KMIP_DEFS_ENUM_BATCH_ERROR) };
#undef KMIP_DEFS_ENUM_BATCH_ERROR

#define KMIP_DEFS_ENUM_QUERY(name, value, text) KMIP_QUERY_##name = value,
enum kmip_query_function { KMIP_QUERY_FUNCTIONS(KMIP_DEFS_ENUM_QUERY) };
#undef KMIP_DEFS_ENUM_QUERY

#define KMIP_DEFS_ENUM_STATE(name, value, text) KMIP_STATE_##name = value,
enum kmip_state { KMIP_STATES(KMIP_DEFS_ENUM_STATE) };
#undef KMIP_DEFS_ENUM_STATE

#define KMIP_DEFS_ENUM_REVOCATION(name, value, text) KMIP_REVOCATION_##name = value,
enum kmip_revocation_reason { KMIP_REVOCATION_REASONS(KMIP_DEFS_ENUM_REVOCATION) };
#undef KMIP_DEFS_ENUM_REVOCATION

#define KMIP_DEFS_ENUM_NAME_TYPE(name, value, text) KMIP_NAME_TYPE_##name = value,
enum kmip_name_type { KMIP_NAME_TYPES(KMIP_DEFS_ENUM_NAME_TYPE) };
#undef KMIP_DEFS_ENUM_NAME_TYPE

#define KMIP_DEFS_ENUM_LINK(name, value, text) KMIP_LINK_##name = value,
enum kmip_link_type { KMIP_LINK_TYPES(KMIP_DEFS_ENUM_LINK) };
#undef KMIP_DEFS_ENUM_LINK

#define KMIP_DEFS_ENUM_GROUP_MEMBER(name, value, text) KMIP_GROUP_MEMBER_##name = value,
enum kmip_object_group_member { KMIP_OBJECT_GROUP_MEMBERS(KMIP_DEFS_ENUM_GROUP_MEMBER) };
#undef KMIP_DEFS_ENUM_GROUP_MEMBER

#define KMIP_DEFS_ENUM_UID(name, value, text) KMIP_UID_##name = value,
enum kmip_unique_identifier { KMIP_UNIQUE_IDENTIFIERS(KMIP_DEFS_ENUM_UID) };
#undef KMIP_DEFS_ENUM_UID

#define KMIP_DEFS_ENUM_ALG(name, value, text) KMIP_ALG_##name = value,
enum kmip_crypto_alg { KMIP_CRYPTO_ALGS(KMIP_DEFS_ENUM_ALG) };
#undef KMIP_DEFS_ENUM_ALG

#define KMIP_DEFS_ENUM_MODE(name, value, text) KMIP_MODE_##name = value,
enum kmip_block_cipher_mode { KMIP_BLOCK_CIPHER_MODES(KMIP_DEFS_ENUM_MODE) };
#undef KMIP_DEFS_ENUM_MODE

#define KMIP_DEFS_ENUM_PADDING(name, value, text) KMIP_PADDING_##name = value,
enum kmip_padding_method { KMIP_PADDING_METHODS(KMIP_DEFS_ENUM_PADDING) };
#undef KMIP_DEFS_ENUM_PADDING

#define KMIP_DEFS_ENUM_HASH(name, value, text) KMIP_HASH_##name = value,
enum kmip_hashing_alg { KMIP_HASHING_ALGS(KMIP_DEFS_ENUM_HASH) };
#undef KMIP_DEFS_ENUM_HASH

#define KMIP_DEFS_ENUM_KEY_FORMAT(name, value, text) KMIP_KEY_FORMAT_##name = value,
enum kmip_key_format { KMIP_KEY_FORMATS(KMIP_DEFS_ENUM_KEY_FORMAT) };
#undef KMIP_DEFS_ENUM_KEY_FORMAT

#define KMIP_DEFS_ENUM_KEY_COMPRESSION(name, value, text) KMIP_KEY_COMPRESSION_##name = value,
enum kmip_key_compression { KMIP_KEY_COMPRESSIONS(KMIP_DEFS_ENUM_KEY_COMPRESSION) };
#undef KMIP_DEFS_ENUM_KEY_COMPRESSION

#define KMIP_DEFS_ENUM_WRAP(name, value, text) KMIP_WRAP_##name = value,
enum kmip_wrapping_method { KMIP_WRAPPING_METHODS(KMIP_DEFS_ENUM_WRAP) };
#undef KMIP_DEFS_ENUM_WRAP

#define KMIP_DEFS_ENUM_ENCODING(name, value, text) KMIP_ENCODING_##name = value,
enum kmip_encoding_option { KMIP_ENCODING_OPTIONS(KMIP_DEFS_ENUM_ENCODING) };
#undef KMIP_DEFS_ENUM_ENCODING

#define KMIP_DEFS_ENUM_SECRET_DATA(name, value, text) KMIP_SECRET_DATA_##name = value,
enum kmip_secret_data_type { KMIP_SECRET_DATA_TYPES(KMIP_DEFS_ENUM_SECRET_DATA) };
#undef KMIP_DEFS_ENUM_SECRET_DATA

#define KMIP_DEFS_ENUM_CREDENTIAL(name, value, text) KMIP_CREDENTIAL_##name = value,
enum kmip_credential_type { KMIP_CREDENTIAL_TYPES(KMIP_DEFS_ENUM_CREDENTIAL) };
#undef KMIP_DEFS_ENUM_CREDENTIAL

#define KMIP_DEFS_ENUM_ATTESTATION(name, value, text) KMIP_ATTESTATION_##name = value,
enum kmip_attestation_type { KMIP_ATTESTATION_TYPES(KMIP_DEFS_ENUM_ATTESTATION) };
#undef KMIP_DEFS_ENUM_ATTESTATION

#define KMIP_DEFS_ENUM_USAGE(name, value, text) KMIP_USAGE_##name = value,
enum kmip_usage_mask { KMIP_USAGE_MASKS(KMIP_DEFS_ENUM_USAGE) };
#undef KMIP_DEFS_ENUM_USAGE

#define KMIP_DEFS_ENUM_STORAGE(name, value, text) KMIP_STORAGE_##name = value,
enum kmip_storage_status_mask { KMIP_STORAGE_STATUS_MASKS(KMIP_DEFS_ENUM_STORAGE) };
#undef KMIP_DEFS_ENUM_STORAGE

#define KMIP_DEFS_ENUM_PROTECTION(name, value, text) KMIP_PROTECTION_##name = value,
enum kmip_protection_storage_mask { KMIP_PROTECTION_STORAGE_MASKS(KMIP_DEFS_ENUM_PROTECTION) };
#undef KMIP_DEFS_ENUM_PROTECTION

/* --- names --- */

/*
 * The spec's name of a value: a static string, never to be freed; NULL if the
 * value is not in the table (an extension, a reserved or an unknown value).
 * For the bit masks, the name of a single bit: NULL for 0, for several bits
 * or for an unknown bit.
 */
const char *kmip_tag_name(uint32_t tag);
const char *kmip_operation_name(uint32_t value);
const char *kmip_object_type_name(uint32_t value);
const char *kmip_result_status_name(uint32_t value);
const char *kmip_result_reason_name(uint32_t value);
const char *kmip_batch_error_option_name(uint32_t value);
const char *kmip_query_function_name(uint32_t value);
const char *kmip_state_name(uint32_t value);
const char *kmip_revocation_reason_name(uint32_t value);
const char *kmip_name_type_name(uint32_t value);
const char *kmip_link_type_name(uint32_t value);
const char *kmip_object_group_member_name(uint32_t value);
const char *kmip_unique_identifier_name(uint32_t value);
const char *kmip_crypto_alg_name(uint32_t value);
const char *kmip_block_cipher_mode_name(uint32_t value);
const char *kmip_padding_method_name(uint32_t value);
const char *kmip_hashing_alg_name(uint32_t value);
const char *kmip_key_format_name(uint32_t value);
const char *kmip_key_compression_name(uint32_t value);
const char *kmip_wrapping_method_name(uint32_t value);
const char *kmip_encoding_option_name(uint32_t value);
const char *kmip_secret_data_type_name(uint32_t value);
const char *kmip_credential_type_name(uint32_t value);
const char *kmip_attestation_type_name(uint32_t value);
const char *kmip_usage_mask_name(uint32_t value);
const char *kmip_storage_status_mask_name(uint32_t value);
const char *kmip_protection_storage_mask_name(uint32_t value);

/*
 * The tag whose spec name is exactly name (case and spaces matter), e.g.
 * "Cryptographic Algorithm" -> 0x420028. KMIP 1.x names attributes by these
 * strings (Attribute Name, KMIP 1.4 §2.1.1). Returns whether it was found;
 * sets *out only if so. Custom attribute names ("x-...", "y-...") are not
 * tags and are not found.
 */
bool kmip_tag_by_name(const char *name, uint32_t *out) __attribute__((nonnull));

/* The same for a name that is not NUL-terminated, as a TTLV Text String is
 * (ttlv_get_text): name[0, len). name may be NULL if len is 0. */
bool kmip_tag_by_name_n(const char *name, size_t len, uint32_t *out) __attribute__((nonnull(3)));

#endif
