/*
 * cloud_http.h - the HTTP front of dirconn-cloud on libevent's evhttp: the router.
 *
 * It accepts the connections (TLS), turns each request into a struct cloud_req
 * (cloud_reply.h), applies the "before" faults and the latency fault, and
 * dispatches it to the control API (cloud_control.h) or the SCIM service
 * (cloud_scim.h), which answer through cloud_reply.h.
 */
#ifndef DIRCONN_CLOUD_HTTP_H
#define DIRCONN_CLOUD_HTTP_H

#include <stddef.h>

#include "cloud/cloud.h"

/* cloud_http_start - create the evhttp server on ctx->base, bind cfg.listen, set TLS. */
int cloud_http_start(struct cloud_ctx *ctx, char *msg, size_t msglen);

/* cloud_http_stop - free the server (open connections are closed) and requests
 * still held by the latency fault. */
void cloud_http_stop(struct cloud_ctx *ctx);

#endif
