/*
 * client.h - a blocking KMIP client over mutual TLS, with a list of servers
 * tried in order (a KMS cluster), as vmseal's standard key provider uses it.
 *
 * One connection at a time, kept open between calls. A call that cannot
 * reach a server moves on to the next; a call whose request may have
 * reached a server is retried elsewhere only if it is safe to repeat (it
 * reads, or changes nothing twice: Get, Get Attributes, Locate, Query,
 * Discover Versions, Activate of an already active key is refused, so it is
 * not retried). A Create is never sent twice.
 */
#ifndef VMSEAL_KMIP_CLIENT_H
#define VMSEAL_KMIP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "kmip/msg.h"
#include "kmip/ttlv.h"

#define KMIP_CLIENT_MAX_SERVERS 8
#define KMIP_CLIENT_UID_MAX 128

struct kmip_client_config {
    const char *servers[KMIP_CLIENT_MAX_SERVERS]; /* "host:port", tried in order */
    size_t server_count;
    const char *ca_file;   /* trusted CA for the servers' certificates */
    const char *cert_file; /* our client certificate and key */
    const char *key_file;
    /* The same as PEM text in memory (NUL-terminated), each used instead of
     * its *_file when not NULL: for a caller that keeps the client key
     * sealed and never writes it in clear. kmip_client_new loads them into
     * its TLS context and keeps no pointer to them, so the caller may wipe
     * and free them as soon as it returns. Keep key_pem in secret memory. */
    const char *ca_pem;
    const char *cert_pem;        /* the certificate, then any intermediates */
    const char *key_pem;         /* unencrypted PEM private key */
    const char *server_name;     /* name to verify in server certificates; NULL: the host */
    /* Pinning: the lower-case hex SHA-256 of the one server certificate to
     * accept (as `openssl x509 -fingerprint -sha256` prints it, without the
     * colons). When set, ca_pem/ca_file may hold that certificate itself as
     * the trust anchor (X509_V_FLAG_PARTIAL_CHAIN), a server presenting any
     * other certificate is refused, and the host name is not checked: the
     * operator confirmed this exact certificate, whatever it names. */
    const char *pinned_sha256;
    struct kmip_version version; /* {0,0}: 1.4 */
    int timeout_ms;              /* connect and each I/O; 0: 10 s */
};

struct kmip_client;

/* Copies the configuration; connects lazily. */
RESULT kmip_client_new(const struct kmip_client_config *cfg, struct kmip_client **out)
    __attribute__((nonnull));
void kmip_client_free(struct kmip_client **c);

/* The answer to one operation. */
struct kmip_client_result {
    uint32_t status;
    uint32_t reason;
    char message[256];
    struct buf response; /* the whole response message (secret: keys) */
    struct ttlv_doc *doc;
    const struct ttlv *payload; /* Response Payload, NULL if none */
    size_t server;              /* index of the server that answered */
};

void kmip_client_result_free(struct kmip_client_result *r);

/* Sends one batch item (operation, payload contents as encoded TTLV
 * items) and reads the answer. OK means the server answered; r->status
 * says whether the operation succeeded. Fails (ERR_IO and a detail naming
 * every server tried) only if no server could answer. */
RESULT kmip_client_call(struct kmip_client *c, uint32_t operation, const uint8_t *payload,
                        size_t payload_len, struct kmip_client_result *r)
    __attribute__((nonnull(1, 5)));

/* --- the operations a key provider needs; each fails with ERR_KMIP_FAILED
 * and the server's reason in the detail when the server refuses --- */

RESULT kmip_client_create_aes(struct kmip_client *c, int32_t bits, char uid[KMIP_CLIENT_UID_MAX])
    __attribute__((nonnull));
RESULT kmip_client_activate(struct kmip_client *c, const char *uid) __attribute__((nonnull));
/* Adds a Text String attribute (e.g. "x-Vendor"). */
RESULT kmip_client_add_text(struct kmip_client *c, const char *uid, const char *name,
                            const char *value) __attribute__((nonnull));
/* Gets a symmetric key's raw material into out (a secret buf). */
RESULT kmip_client_get_key(struct kmip_client *c, const char *uid, struct buf *out)
    __attribute__((nonnull));
/* The object's State (KMIP_STATE_*). */
RESULT kmip_client_get_state(struct kmip_client *c, const char *uid, uint32_t *state)
    __attribute__((nonnull));
RESULT kmip_client_revoke(struct kmip_client *c, const char *uid, uint32_t reason_code)
    __attribute__((nonnull));
RESULT kmip_client_destroy(struct kmip_client *c, const char *uid) __attribute__((nonnull));
/* Discover Versions over a fresh connection to server i: a health check. */
RESULT kmip_client_probe(struct kmip_client *c, size_t server, struct kmip_version *newest)
    __attribute__((nonnull));

#endif
