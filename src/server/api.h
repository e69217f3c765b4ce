/*
 * api.h - vmseald's HTTP+JSON API (docs/api.md), independent of the
 * transport: main.c serves it on the Unix socket (HTTPS comes next).
 */
#ifndef VMSEAL_SERVER_API_H
#define VMSEAL_SERVER_API_H

#include <jansson.h>

#include "keyprov/keyprov.h"
#include "vm/vm.h"

struct api_ctx {
    struct vm_host *host;
    struct keyprov *kp;
};

/* Runs the route for method + path with body (a JSON object; {} when
 * empty). Sets *status (HTTP) and *out (the response body, a new
 * reference; errors are {"error": {code, message}}). Blocking: call it
 * from a worker thread. */
void api_handle(struct api_ctx *ctx, const char *method, const char *path, json_t *body,
                int *status, json_t **out) __attribute__((nonnull));

#endif
