/*
 * cloud_reply.h - a request of dirconn-cloud and the functions its handlers answer it with.
 *
 * Every request becomes a struct cloud_req: the decoded path segments,
 * the parsed query, the body (NUL-terminated copy), and after
 * cloud_reply_authenticate() the caller's identity. Handlers answer exactly
 * once through cloud_reply_send() (or one of the error helpers), which adds
 * the content type, applies the "after" faults, logs one line and frees req.
 * The router (cloud_http.h) makes the request; the handlers (cloud_control.h,
 * cloud_scim.h) include only this header.
 */
#ifndef DIRCONN_CLOUD_REPLY_H
#define DIRCONN_CLOUD_REPLY_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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
    long patch_ops;               /* PATCH operations applied (a PATCH, or inside /Bulk), logged */
    long stall_ms;                /* stall fault: the SCIM processing waits this long first */
    struct cloud_store *st;       /* the SQLite connection of the thread that processes it */
    struct evkeyvalq in_headers;  /* copy of the request headers (readable on any thread) */
    struct evkeyvalq out_headers; /* the answer's headers until it is sent */
    /* Set for a request processed on the SCIM thread: cloud_reply_send keeps the answer
     * (status, text, ctype) and calls answered(req) instead of sending; the loop thread
     * then sends it with cloud_reply_deliver. */
    void (*answered)(struct cloud_req *req);
    int status;
    char *text; /* the answer's body, JSON text, or NULL */
    size_t text_len;
    const char *ctype;
    struct cloud_req *qnext;         /* in the SCIM thread's queue or done list */
    struct event *delay;             /* latency fault timer */
    struct cloud_req *dnext, *dprev; /* in ctx->delayed while the timer runs */
};

/* cloud_reply_clock_ns - the monotonic clock in nanoseconds (CLOCK_MONOTONIC); start_ns and the
 * duration in the log line are read from it. */
int64_t cloud_reply_clock_ns(void);

/* cloud_reply_free - free a request that will not be answered (its segments, query, body and
 * latency timer); the evhttp request is not touched. */
void cloud_reply_free(struct cloud_req *req);

/* cloud_reply_header - add an output header to the answer. */
void cloud_reply_header(struct cloud_req *req, const char *name, const char *value);

/* cloud_reply_input_header - a request header or NULL. */
const char *cloud_reply_input_header(struct cloud_req *req, const char *name);

/* cloud_reply_query - the value of a query parameter or NULL. */
const char *cloud_reply_query(struct cloud_req *req, const char *name);

/*
 * cloud_reply_send - answer with status and body (stolen, may be NULL for no
 * body) of content type ctype ("application/scim+json", "application/json").
 * Frees req. On the SCIM thread (req->answered set): formats the body there and hands the
 * request over with req->answered; the loop thread sends it (cloud_reply_deliver).
 */
void cloud_reply_send(struct cloud_req *req, int status, json_t *body, const char *ctype);

/*
 * cloud_reply_deliver - on the event loop thread: send the answer kept by cloud_reply_send for
 * a request with answered set (the "after" faults, the log line), then free req.
 */
void cloud_reply_deliver(struct cloud_req *req);

/* cloud_reply_scim_error - a SCIM Error response (RFC 7644 3.12); scim_type may be NULL. */
void cloud_reply_scim_error(struct cloud_req *req, int status, const char *scim_type,
                            const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cloud_reply_api_error - a control API error {"status", "error", "detail"}. */
void cloud_reply_api_error(struct cloud_req *req, int status, const char *code, const char *fmt,
                           ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cloud_reply_error - a SCIM or control error depending on the request path. */
void cloud_reply_error(struct cloud_req *req, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/*
 * cloud_reply_authenticate - check the bearer token for org: the admin token
 * or a connector access token of that org. Sets req->auth and
 * req->connector_id. On failure answers 401 (missing, unknown or expired
 * token, with WWW-Authenticate) or 403 (token of another org) and returns -1.
 */
int cloud_reply_authenticate(struct cloud_req *req, const char *org);

/* cloud_reply_org_exists - whether org is a configured organisation. */
bool cloud_reply_org_exists(struct cloud_ctx *ctx, const char *org);

/* cloud_reply_is_scim - whether the request path is under /scim/. */
bool cloud_reply_is_scim(const struct cloud_req *req);

#endif
