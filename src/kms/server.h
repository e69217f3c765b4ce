/*
 * server.h - vmseal-kms's network side: KMIP over TLS with mutual
 * authentication.
 *
 * A few event loops (libevent, with its OpenSSL bufferevents; network_threads
 * of them, one per CPU by default) own the connections, so an idle or slow
 * client costs a little memory and no thread. Each loop accepts from the
 * one listening socket, runs the TLS handshakes of its connections (the
 * CPU-heavy part when clients reconnect for every request), frames their
 * requests and answers quick reads itself. Other requests go to a pool of
 * worker threads that run kms_dispatch (store reads, group-committed
 * writes); responses come back to the connection's loop. A connection has
 * at most one request in flight, as KMIP clients wait for each answer.
 */
#ifndef VMSEAL_KMS_SERVER_H
#define VMSEAL_KMS_SERVER_H

#include "core/result.h"
#include "kms/audit.h"
#include "kms/kmsconf.h"
#include "kms/store.h"

/* Serves until SIGTERM or SIGINT, then finishes what is in flight and
 * returns OK. Fails at start (address in use, bad certificate, ...) with
 * the reason. */
RESULT kms_server_run(const struct kms_config *cfg, struct kms_store *store,
                      struct kms_audit *audit) __attribute__((nonnull(1, 2)));

#endif
