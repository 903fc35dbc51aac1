/*
 * scim.h - the SCIM 2.0 HTTP client (RFC 7644) on libcurl's multi interface.
 *
 * Requests are queued with scim_submit() and executed by scim_run(), which
 * keeps up to max_in_flight requests in flight over keep-alive connections
 * (each request's transfer state is a struct http_request of
 * connector/net/http.h, whose retry rules and backoff it uses)
 * and calls each request's completion callback once, with its final
 * response. Transient failures are retried with exponential backoff and
 * jitter: connection errors and timeouts, 429 Too Many Requests, 500, 502,
 * 503 and 504, honouring Retry-After (RFC 9110 10.2.3, seconds or HTTP-date;
 * http_parse_retry_after)
 * up to max_retries; a 401 refreshes the bearer token once. Other statuses
 * complete the request as they are; SCIM errors (RFC 7644 3.12) are parsed
 * into status, scimType and detail. A provider that requires If-Match: a
 * PATCH, PUT or DELETE answered 428 Precondition Required (RFC 6585 3)
 * without the caller's If-Match is sent again after a GET of the resource,
 * with its meta.version (else the ETag header) as If-Match; a 412 to that
 * version (a concurrent write came first) reads it again, at most 3 reads.
 * A 412 to the caller's own If-Match completes the request.
 *
 * Requests carry "Authorization: Bearer <token>" from the token callback,
 * "Content-Type: application/scim+json", If-Match when given (RFC 7644 3.14),
 * and the extra headers of the client (the fencing token). TLS verification
 * of the cloud is always on; ca_file replaces the system store. Proxy
 * settings are applied to every transfer by the configure hook.
 *
 * A client is used by one thread at a time.
 */
#ifndef DIRCONN_SCIM_H
#define DIRCONN_SCIM_H

#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/net/http.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SCIM_CONTENT_TYPE        "application/scim+json"
#define SCIM_SCHEMA_USER         "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_SCHEMA_GROUP        "urn:ietf:params:scim:schemas:core:2.0:Group"
#define SCIM_SCHEMA_ENTERPRISE   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_SCHEMA_PATCH        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define SCIM_SCHEMA_BULK_REQUEST "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
#define SCIM_SCHEMA_LIST         "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define SCIM_SCHEMA_ERROR        "urn:ietf:params:scim:api:messages:2.0:Error"

/*
 * The bearer token source: store a malloc'd token in *token (the client
 * frees it) or return an error. refresh = true after a 401: the cached token
 * must not be returned again.
 */
typedef enum dirconn_err (*scim_token_fn)(void *arg, bool refresh, char **token,
                                          struct dirconn_error *err);

struct scim_client_options {
    const char *base_url;       /* SCIM base, e.g. https://cloud/scim/v2/org; copied */
    const char *ca_file;        /* PEM CA file, NULL = system store; copied */
    int64_t timeout_ms;         /* per attempt, default 60000 */
    int64_t connect_timeout_ms; /* default 10000 */
    int max_in_flight;          /* concurrent requests, default 8 */
    int max_retries;            /* retries after the first attempt, default 6 */
    int64_t backoff_base_ms;    /* first retry delay, default 500 */
    int64_t backoff_max_ms;     /* cap, default 30000 */
    scim_token_fn token;        /* NULL = no Authorization header */
    void *token_arg;
    http_configure_fn configure; /* the transport seam (connector/net/http.h, proxy_configure);
                                    NULL = no hook */
    http_outcome_fn outcome;     /* NULL = no hook; called with configure_arg */
    void *configure_arg;
    const struct log_sink *log;
    /*
     * HA self-fencing: when not NULL, a write (any method but GET) is only
     * started while CLOCK_MONOTONIC in ms is below *write_deadline_ms (the
     * election moves it on each renewal, ha/election.h); later writes
     * complete at once with DIRCONN_ELEASE, unsent. The deadline is checked
     * again by CURLOPT_PREREQFUNCTION just before the request goes out, so a
     * write that waited for its connection (or whose process was frozen) past
     * the deadline is aborted unsent too, and never resent. Borrowed.
     */
    const _Atomic int64_t *write_deadline_ms;
    /*
     * Called after every attempt that ran a transfer (retries included) with
     * the method, the HTTP status (0 when no answer arrived) and the
     * attempt's duration in seconds (CURLINFO_TOTAL_TIME_T); for metrics
     * (connector/metrics.h, metrics_scim_request). NULL = none.
     */
    void (*observe)(void *arg, const char *method, long status, double seconds);
    void *observe_arg;
};

/* The final outcome of one request. */
struct scim_response {
    enum dirconn_err code;         /* DIRCONN_OK for 2xx; DIRCONN_ECLOUD_AUTH for 401/403;
                                      DIRCONN_ELEASE for a write the cloud fenced (409 with
                                      Dirconn-Fenced) or the write gate held back;
                                      DIRCONN_ECLOUD for other statuses; DIRCONN_ECLOUD_CONNECT when no
                                      answer arrived (after the retries); the token source's error */
    long status;                   /* HTTP status, 0 when none arrived */
    json_t *body;                  /* parsed JSON body or NULL; owned by the response */
    char *etag;                    /* ETag header or NULL */
    char *location;                /* Location header or NULL */
    char *scim_type;               /* scimType of a SCIM error, or NULL */
    char *detail;                  /* detail of a SCIM error (or the raw body start), or NULL */
    int attempts;                  /* how many times it was sent */
    bool maybe_applied;            /* scim_submit_create: it failed in a way after which the
                                      server may have created the object (lost or cut answer,
                                      500, 502, 504); it was not resent */
    char error[DIRCONN_ERROR_LEN]; /* one line describing a failure ("" on 2xx) */
    enum dirconn_origin origin;    /* the cause of a failure: DIRCONN_ORIGIN_CURL (no answer),
                                      DIRCONN_ORIGIN_HTTP (an error status), or NONE */
    long cause;                    /* the CURLcode or the HTTP status */
};

/*
 * scim_response_error - the failure of r as a dirconn error: its code, its
 * line and its cause (the CURLcode or HTTP status, see struct scim_response).
 * err may be NULL. Returns r->code.
 */
enum dirconn_err scim_response_error(const struct scim_response *r, struct dirconn_error *err);

struct scim_client;
struct scim_request;

/* Called once per request from inside scim_run with the final response (valid during the call). */
typedef void (*scim_done_fn)(void *arg, const struct scim_response *resp);

/*
 * scim_client_new - a client for opts->base_url. On success *out is owned by
 * the caller (scim_client_free). Errors: DIRCONN_ECONFIG (base URL not
 * http(s)), DIRCONN_ENOMEM.
 */
enum dirconn_err scim_client_new(const struct scim_client_options *opts, struct scim_client **out,
                                 struct dirconn_error *err);

/* scim_client_free - free the client; queued requests are dropped without callbacks. */
void scim_client_free(struct scim_client *c);

/*
 * scim_client_set_header - set (or with value NULL remove) an extra request
 * header sent on every request, e.g. the fencing token. name and value are copied.
 */
enum dirconn_err scim_client_set_header(struct scim_client *c, const char *name, const char *value);

/*
 * scim_submit - queue a request. method is GET, POST, PUT, PATCH or DELETE;
 * path is relative to the base URL ("/Users", "/Users/<id>") or absolute;
 * body (may be NULL) is serialised now and not taken; if_match may be NULL.
 * done runs from scim_run. Errors: DIRCONN_ENOMEM (the callback never runs).
 */
enum dirconn_err scim_submit(struct scim_client *c, const char *method, const char *path,
                             const json_t *body, const char *if_match, scim_done_fn done, void *arg,
                             struct dirconn_error *err);

/*
 * scim_submit_create - scim_submit of a POST that creates a resource (or a
 * /Bulk of creations). Unlike other requests it is not resent after a
 * failure that may have come after the server applied it (the answer lost or
 * cut, 500, 502, 504): SCIM servers need not refuse a second Group or Contact
 * with the same externalId, so resending could create a duplicate. The
 * response then has maybe_applied set, and the caller looks the object up by
 * externalId before creating it again. Refused connections, failed TLS
 * handshakes (nothing was sent), 429 and 503 are retried as usual. Errors: those of scim_submit.
 */
enum dirconn_err scim_submit_create(struct scim_client *c, const char *path, const json_t *body,
                                    scim_done_fn done, void *arg, struct dirconn_error *err);

/*
 * scim_submit_status_only - scim_submit of a request whose caller reads only
 * the outcome of a success: the body of a 2xx answer is not parsed
 * (resp->body NULL; etag and location are kept), the body of an error answer
 * is, as usual. For the member PATCHes of a large group, whose answer is the
 * whole group with all its members (RFC 7644 3.5.2: 200 and the resource).
 * Errors: those of scim_submit.
 */
enum dirconn_err scim_submit_status_only(struct scim_client *c, const char *method,
                                         const char *path, const json_t *body, const char *if_match,
                                         scim_done_fn done, void *arg, struct dirconn_error *err);

/*
 * scim_run - execute queued requests until none is left (requests submitted
 * from callbacks included). Once a request of the run ends because the cloud
 * could not be reached (DIRCONN_ECLOUD_CONNECT after its retries, not a
 * creation whose answer was lost; or DIRCONN_EPROXY), the requests still
 * waiting (not in flight) end at once, unsent, with that code and the
 * message "<METHOD> <URL>: not sent: <the first failure>" instead of each
 * going through its own retries; the next scim_run tries the cloud again.
 * Returns DIRCONN_OK when every request completed
 * (whatever its outcome: see each response's code), or an error when the
 * loop itself failed (DIRCONN_ENOMEM, DIRCONN_ECLOUD for a libcurl failure).
 */
enum dirconn_err scim_run(struct scim_client *c, struct dirconn_error *err);

/*
 * scim_run_until - scim_run that returns once until(arg) is true, asked after
 * each round (start what is due, let libcurl send and receive what it can,
 * complete what ended) before waiting for the sockets: a predicate that is
 * true at once sends what can be sent without waiting and returns. It also
 * returns when nothing is left. Requests
 * still queued or in flight stay so; a later scim_run or scim_run_until goes
 * on with them as the same run (a cloud found unreachable still ends the
 * waiting requests at once). until NULL: scim_run. Errors: those of scim_run.
 */
enum dirconn_err scim_run_until(struct scim_client *c, bool (*until)(void *arg), void *arg,
                                struct dirconn_error *err);

/*
 * scim_request_sync - submit one request and run it; the caller owns
 * *resp's fields (scim_response_clear). Returns resp->code.
 */
enum dirconn_err scim_request_sync(struct scim_client *c, const char *method, const char *path,
                                   const json_t *body, const char *if_match,
                                   struct scim_response *resp);

/*
 * scim_response_parse - the part of a response read from the answer's status
 * and body (RFC 7644 3.12 errors): sets resp->status, resp->body (the body
 * parsed as JSON, any value, or NULL), resp->code (DIRCONN_OK for 2xx,
 * DIRCONN_ECLOUD_AUTH for 401/403, DIRCONN_ELEASE for a 409 when fenced (the
 * Dirconn-Fenced header was present), else DIRCONN_ECLOUD), and for a failure
 * scim_type, detail (from scimType and detail, error_description or error of
 * a JSON object, else the first 200 bytes of the body) and the one-line
 * error naming method and url. body: len bytes, need not be NUL-terminated.
 * resp must be zeroed or cleared before; its other fields are left alone.
 * Used for every answer of the client; exposed for tests and the fuzz harness.
 */
void scim_response_parse(struct scim_response *resp, const char *method, const char *url,
                         long status, const char *body, size_t len, bool fenced);

/* scim_response_clear - free a response's fields. */
void scim_response_clear(struct scim_response *resp);

/*
 * scim_list_all - GET every page of path (e.g. "/Users", or with a query of
 * its own: "/Users?excludedAttributes=groups") with startIndex and
 * count (RFC 7644 3.4.2.4), optional filter and attributes, calling fn for
 * each resource in Resources; fn returning non-zero stops the walk with the
 * error fn recorded in err (cleared when the walk starts; code and message
 * kept), or DIRCONN_EFAIL ("listing <path> stopped") when it recorded none
 * (dirconn_error_stopped). page_size is the count per request. The first
 * page is asked alone; its length gives the startIndex of the next ones, and
 * up to 4 are then asked ahead and taken in order (a shorter page before the
 * end drops those asked after it, and the walk goes on where it ended).
 * Errors: DIRCONN_ECLOUD (a non-2xx answer, message names the URL and
 * status), the transport errors of scim_run.
 */
enum dirconn_err scim_list_all(struct scim_client *c, const char *path, const char *filter,
                               const char *attributes, int page_size,
                               int (*fn)(void *arg, json_t *resource), void *arg,
                               struct dirconn_error *err);

/*
 * The transport port: what the stages above the HTTP client (apply,
 * discovery, inventory) use to talk to the cloud, so that each apply rule
 * can be tested with scripted answers and no server (tests/unit/test_apply.c).
 * submit queues one request (create = scim_submit_create's rules: never
 * resent after an ambiguous failure); run executes what is queued, calling
 * each done callback once, requests submitted from callbacks included.
 * Errors and ownership are those of scim_submit and scim_run.
 */
/* How a request is submitted through a port (flags of scim_port_ops.submit). */
#define SCIM_SUBMIT_CREATE      1u /* scim_submit_create */
#define SCIM_SUBMIT_STATUS_ONLY 2u /* scim_submit_status_only */

struct scim_port_ops {
    /* flags: SCIM_SUBMIT_CREATE (a POST that creates), SCIM_SUBMIT_STATUS_ONLY, or 0 */
    enum dirconn_err (*submit)(void *impl, const char *method, const char *path, const json_t *body,
                               const char *if_match, unsigned flags, scim_done_fn done, void *arg,
                               struct dirconn_error *err);
    enum dirconn_err (*run)(void *impl, struct dirconn_error *err);
    /* run until until(arg) is true or nothing is left (scim_run_until); NULL: run */
    enum dirconn_err (*run_until)(void *impl, bool (*until)(void *arg), void *arg,
                                  struct dirconn_error *err);
};

struct scim_port {
    const struct scim_port_ops *ops;
    void *impl;
};

/* scim_client_port - the port of a real client (borrowed: c outlives the port). */
struct scim_port scim_client_port(struct scim_client *c);

/* scim_port_submit, scim_port_submit_create, scim_port_run - scim_submit, scim_submit_create and
 * scim_run through a port. */
enum dirconn_err scim_port_submit(const struct scim_port *p, const char *method, const char *path,
                                  const json_t *body, const char *if_match, scim_done_fn done,
                                  void *arg, struct dirconn_error *err);
enum dirconn_err scim_port_submit_create(const struct scim_port *p, const char *path,
                                         const json_t *body, scim_done_fn done, void *arg,
                                         struct dirconn_error *err);
/* scim_port_submit_status_only - scim_submit_status_only through a port. */
enum dirconn_err scim_port_submit_status_only(const struct scim_port *p, const char *method,
                                              const char *path, const json_t *body,
                                              const char *if_match, scim_done_fn done, void *arg,
                                              struct dirconn_error *err);
enum dirconn_err scim_port_run(const struct scim_port *p, struct dirconn_error *err);

/* scim_port_run_until - scim_run_until through a port (a port without run_until runs all). */
enum dirconn_err scim_port_run_until(const struct scim_port *p, bool (*until)(void *arg), void *arg,
                                     struct dirconn_error *err);

/* scim_port_request - scim_request_sync through a port (the caller owns *resp's fields). */
enum dirconn_err scim_port_request(const struct scim_port *p, const char *method, const char *path,
                                   const json_t *body, const char *if_match,
                                   struct scim_response *resp);

/*
 * scim_port_list_all - scim_list_all through a port, with the same rules:
 * a callback that stops the walk after setting err (err->code not
 * DIRCONN_OK) stops it with its own error, not a generic one.
 */
enum dirconn_err scim_port_list_all(const struct scim_port *p, const char *path, const char *filter,
                                    const char *attributes, int page_size,
                                    int (*fn)(void *arg, json_t *resource), void *arg,
                                    struct dirconn_error *err);

/*
 * A listing that goes on beside other work (the full run's inventory while the
 * directory is read): scim_port_list_all's walk, RFC 7644 3.4.2.4, taken a
 * step at a time, with the same pipelined pages and the same rules.
 *
 * scim_port_list_open - start listing path (as scim_port_list_all: filter and
 * attributes may be NULL, page_size the count per request, fn called for each
 * resource of each page in order, arg its argument). Nothing is sent until the
 * first scim_list_step. *out: the listing, freed with scim_list_free; err is
 * cleared (fn's error is recorded there). Errors: DIRCONN_ENOMEM (*out NULL).
 *
 * scim_list_step - ask the pages due, let the port send and receive, and hand
 * the answered pages at the head of the window to fn, in order. wait false:
 * never waits for the network (a round of the port's run_until whose
 * predicate is true at once), returns when the next page is not answered yet;
 * wait true: returns when the listing has ended. *finished: the listing ended;
 * the return value is then its outcome (the errors of scim_port_list_all), and
 * every later step returns the same. DIRCONN_OK and *finished false: more to
 * come. The port's other requests run too while a step runs (the port is
 * shared).
 *
 * scim_list_free - drop a listing, ended or not: pages still in flight are
 * waited for and their answers not used. NULL is accepted.
 */
struct scim_list;
enum dirconn_err scim_port_list_open(const struct scim_port *p, const char *path,
                                     const char *filter, const char *attributes, int page_size,
                                     int (*fn)(void *arg, json_t *resource), void *arg,
                                     struct scim_list **out, struct dirconn_error *err);
enum dirconn_err scim_list_step(struct scim_list *l, bool wait, bool *finished,
                                struct dirconn_error *err);
void scim_list_free(struct scim_list *l);

/*
 * scim_response_copy - a response that outlives its callback: *out gets
 * resp's values and copies of its heap fields (scim_response_clear frees them).
 */
void scim_response_copy(struct scim_response *out, const struct scim_response *resp);

/* scim_url_escape - percent-encode a query value (libcurl's curl_easy_escape); free with curl_free.
 */
char *scim_url_escape(const char *s);

#endif
