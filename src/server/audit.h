/*
 * audit.h - vmseald's audit log: DATA_DIR/audit.log, one JSON object per
 * line, for every API call, allowed or refused:
 *
 *   {"time": "2026-11-23T10:00:00.123Z", "user": "bob", "via": "https",
 *    "peer": "192.0.2.1:53211", "method": "POST", "route": "/v1/vms/web1/decrypt",
 *    "operation": "vm.decrypt", "object": "vm/web1", "result": "denied",
 *    "status": 403, "missing": "Cryptographer.Decrypt", "task": null}
 *
 * Never a request body, a password, a token or a key. The file is 0600,
 * opened O_APPEND; each line is one write(2), so lines from concurrent
 * calls never interleave. A failure to write is logged and does not fail
 * the call (the log on stderr still has it).
 */
#ifndef VMSEAL_SERVER_AUDIT_H
#define VMSEAL_SERVER_AUDIT_H

#include <jansson.h>

#include "core/result.h"

struct audit;

RESULT audit_open(const char *data_dir, struct audit **out) __attribute__((nonnull));
void audit_close(struct audit **a);

/* Writes line (an object; "time" is added) as one line. Thread-safe. */
void audit_write(struct audit *a, json_t *line) __attribute__((nonnull));

#endif
