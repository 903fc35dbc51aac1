/*
 * cloud_http.h - the HTTP front of dirconn-cloud on libevent's evhttp.
 *
 * Every request becomes a struct cloud_req: the decoded path segments,
 * the parsed query, the body (NUL-terminated copy), and after
 * cloud_http_authenticate() the caller's identity. Handlers answer exactly
 * once through cloud_http_reply() (or one of the error helpers), which adds
 * the content type, applies the "after" faults, logs one line and frees req.
 */
#ifndef DIRCONN_CLOUD_HTTP_H
#define DIRCONN_CLOUD_HTTP_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>

#include "cloud/cloud.h"

#define CLOUD_MAX_SEGS       12
#define CLOUD_FENCING_HEADER "Dirconn-Fencing-Token"
#define CLOUD_VERSION_HEADER "Dirconn-Connector-Version"

enum cloud_auth_kind { CLOUD_AUTH_NONE, CLOUD_AUTH_ADMIN, CLOUD_AUTH_CONNECTOR };

struct cloud_req {
    struct cloud_ctx *ctx;
    struct evhttp_request *ev;
    enum evhttp_cmd_type method;
    const char *method_name;
    char *raw_path;             /* as received, for the log */
    char *segs[CLOUD_MAX_SEGS]; /* percent-decoded path segments */
    size_t nsegs;
    struct evkeyvalq query; /* parsed query string */
    char *body;             /* NUL-terminated copy of the body, never NULL */
    size_t body_len;
    enum cloud_auth_kind auth;
    char connector_id[40]; /* when auth == CLOUD_AUTH_CONNECTOR */
    char auth_org[80];
    int64_t start_ns;
    bool faultable;
    long patch_ops;      /* PATCH operations applied (a PATCH, or inside /Bulk), logged */
    struct event *delay; /* latency fault timer */
    struct cloud_req *dnext, *dprev; /* in ctx->delayed while the timer runs */
};

/* cloud_http_start - create the evhttp server on ctx->base, bind cfg.listen, set TLS. */
int cloud_http_start(struct cloud_ctx *ctx, char *msg, size_t msglen);

/* cloud_http_stop - free the server (open connections are closed) and requests
 * still held by the latency fault. */
void cloud_http_stop(struct cloud_ctx *ctx);

/* cloud_http_header - add an output header to the answer. */
void cloud_http_header(struct cloud_req *req, const char *name, const char *value);

/* cloud_http_input_header - a request header or NULL. */
const char *cloud_http_input_header(struct cloud_req *req, const char *name);

/* cloud_http_query - the value of a query parameter or NULL. */
const char *cloud_http_query(struct cloud_req *req, const char *name);

/*
 * cloud_http_reply - answer with status and body (stolen, may be NULL for no
 * body) of content type ctype ("application/scim+json", "application/json").
 * Frees req.
 */
void cloud_http_reply(struct cloud_req *req, int status, json_t *body, const char *ctype);

/* cloud_http_scim_error - a SCIM Error response (RFC 7644 3.12); scim_type may be NULL. */
void cloud_http_scim_error(struct cloud_req *req, int status, const char *scim_type,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cloud_http_api_error - a control API error {"status", "error", "detail"}. */
void cloud_http_api_error(struct cloud_req *req, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cloud_http_error - a SCIM or control error depending on the request path. */
void cloud_http_error(struct cloud_req *req, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/*
 * cloud_http_authenticate - check the bearer token for org: the admin token
 * or a connector access token of that org. Sets req->auth and
 * req->connector_id. On failure answers 401 (missing, unknown or expired
 * token, with WWW-Authenticate) or 403 (token of another org) and returns -1.
 */
int cloud_http_authenticate(struct cloud_req *req, const char *org);

/* cloud_http_org_exists - whether org is a configured organisation. */
bool cloud_http_org_exists(struct cloud_ctx *ctx, const char *org);

/* cloud_http_is_scim - whether the request path is under /scim/. */
bool cloud_http_is_scim(const struct cloud_req *req);

#endif
