/*
 * net/http.h - the one HTTP client of dirconn, on libcurl.
 *
 * Every HTTP(S) client of the connector (the SCIM client on libcurl multi,
 * the control-API client, the OAuth token request, the cloud lease client
 * through the control API, the etcd v3 lease backend, the PAC download) is
 * built from the pieces here, so that each of them is written once:
 *
 *   struct http_body      the growable response body with a size cap
 *                         (CURLOPT_WRITEFUNCTION), optionally wiped;
 *   struct http_headers   the response headers the clients read (ETag,
 *                         Location, Retry-After, WWW-Authenticate,
 *                         Proxy-Authenticate, Content-Type);
 *   struct http_options   the common options (timeouts, TLS CA and
 *                         verification, user agent, protocols);
 *   struct http_route     the proxy route chosen for one attempt, kept in
 *                         the request's own state (no table keyed by CURL *);
 *   struct http_transport the hooks that choose and judge that route
 *                         (proxy/proxy.h implements them);
 *   struct http_request   the state of one request: its easy handle, body,
 *                         headers, error buffer, route and outcome;
 *   retry decisions       which failures are retried, when a request may have
 *                         been applied, the backoff with jitter and Retry-After.
 *
 * A multi-interface client (connector/scim.c) keeps one struct http_request
 * per request and calls http_attempt_begin before adding its handle and
 * http_attempt_end once libcurl reports it done; a one-shot client calls
 * http_perform, which runs the same two steps around curl_easy_perform.
 *
 * Nothing here touches process-wide state; a request is used by one thread at
 * a time. curl_global_init is the program's business.
 */
#ifndef DIRCONN_NET_HTTP_H
#define DIRCONN_NET_HTTP_H

#include "connector/core/error.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The user agent of every request (RFC 9110 10.1.5). */
#define HTTP_USER_AGENT "dirconn"

/* Most routes one http_perform tries (a PAC list is short). */
#define HTTP_MAX_ROUTES 8

/* ---- the response body ---------------------------------------------------------------------- */

/*
 * A growable response body, NUL-terminated after len bytes once anything
 * arrived. A chunk that would make it reach max bytes (the terminating NUL
 * counted) sets overflow and ends the transfer (CURLE_WRITE_ERROR).
 * complete (may be NULL) is asked after each chunk whether the body is
 * already whole (e.g. the first object of a stream): then completed is set
 * and the transfer ends (CURLE_WRITE_ERROR, which http_attempt_end turns
 * into CURLE_OK). With wipe, every copy of the bytes is cleared with
 * OPENSSL_cleanse before it is freed (answers that carry secrets).
 */
struct http_body {
    char *data; /* len bytes + NUL, or NULL before the first byte; owned */
    size_t len;
    size_t cap;
    size_t max; /* the cap in bytes, NUL included */
    bool wipe;
    bool overflow;
    bool keep_head; /* over the cap: keep the first max - 1 bytes and take the rest unread
                       (truncated set), instead of ending the transfer (overflow) */
    bool truncated;
    bool (*complete)(const char *data, size_t len);
    bool completed;
};

/* http_body_init - an empty body of at most max bytes (NUL included); wipe as above. */
void http_body_init(struct http_body *b, size_t max, bool wipe);

/* http_body_reset - forget the bytes (wiped when b->wipe) and the overflow/completed flags;
 * the memory is kept for the next attempt. */
void http_body_reset(struct http_body *b);

/* http_body_free - free the bytes (wiped when b->wipe); b is empty afterwards. */
void http_body_free(struct http_body *b);

/*
 * http_body_write - a CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = a
 * struct http_body. Returns nmemb * size, or 0 to end the transfer (over the
 * cap unless keep_head, whole, or out of memory).
 */
size_t http_body_write(char *data, size_t size, size_t nmemb, void *userp);

/* ---- response headers ----------------------------------------------------------------------- */

/*
 * The headers of the last response of a transfer (the final one, not a
 * proxy's CONNECT answer nor a 1xx), values as libcurl gives them (leading and
 * trailing white space removed); NULL when absent. Each field is malloc'd and
 * owned by the struct (http_headers_clear).
 */
struct http_headers {
    char *etag;               /* ETag, RFC 9110 8.8.3 */
    char *location;           /* Location, RFC 9110 10.2.2 */
    char *retry_after;        /* Retry-After, RFC 9110 10.2.3 (see http_parse_retry_after) */
    char *www_authenticate;   /* WWW-Authenticate, RFC 9110 11.6.1 (first of them) */
    char *proxy_authenticate; /* Proxy-Authenticate, RFC 9110 11.7.1 (first of them) */
    char *content_type;       /* Content-Type, RFC 9110 8.3 */
};

/* http_headers_capture - fill h (cleared first) from easy after a transfer (curl_easy_header). */
void http_headers_capture(CURL *easy, struct http_headers *h);

/* http_headers_clear - free h's fields and zero it. */
void http_headers_clear(struct http_headers *h);

/*
 * http_header_value - a copy of the last response's header `name` (case
 * insensitive; the first of repeated ones) on easy, NULL when absent or out of
 * memory. The caller frees it. For the headers struct http_headers does not
 * keep (Dirconn-Fenced, Dirconn-HA-Mode).
 */
char *http_header_value(CURL *easy, const char *name);

/* ---- common options ------------------------------------------------------------------------- */

struct http_options {
    const char *ca_file;     /* PEM CA file replacing the system store, NULL = system; borrowed */
    long timeout_ms;         /* the whole transfer, ms; 0 = none */
    long connect_timeout_ms; /* the connection, ms; 0 = libcurl's default (300 s) */
    bool accept_encoding;    /* offer every encoding libcurl decodes (CURLOPT_ACCEPT_ENCODING "") */
};

/* ---- the proxy route of one attempt --------------------------------------------------------- */

/*
 * What the configure hook chose for the attempt in flight, kept in the
 * request's state until its outcome hook reads it. Opaque to this module: the
 * proxy module (proxy/proxy.h) stores its host entry, the generation of that
 * entry's route list and the index of the route in it. Zeroed before each
 * attempt.
 */
struct http_route {
    void *host; /* the hook's entry for the target host; NULL = no route chosen */
    uint64_t generation;
    size_t index;
};

/*
 * The configure hook: applied to the easy handle before each attempt (the
 * proxy options of the route it chose, recorded in *route). Returning an
 * error ends the request with that error, without a transfer.
 */
typedef enum dirconn_err (*http_configure_fn)(void *arg, CURL *easy, const char *url,
                                              struct http_route *route, struct dirconn_error *err);

/* What an outcome hook asks the client to do with a finished attempt. */
enum http_outcome {
    HTTP_OUTCOME_DEFAULT = 0, /* the client's own rules (retry or complete); a message set in
                                 err replaces the transport error text (and err->code the
                                 code) if the request fails on a transport error */
    HTTP_OUTCOME_RETRY,       /* retry at once (another route), counted as a retry */
    HTTP_OUTCOME_FAIL,        /* complete now with err->code and err->msg (e.g. HTTP 407) */
};

/*
 * The outcome hook: called after every attempt whose handle went through
 * configure, with the handle still holding its CURLINFO
 * (CURLINFO_HTTP_CONNECTCODE, ...), the transfer's CURLcode and the route the
 * configure hook recorded for that attempt, which the hook may clear once
 * judged. Every successful configure call is followed by exactly one outcome
 * call with the same route.
 */
typedef enum http_outcome (*http_outcome_fn)(void *arg, CURL *easy, const char *url, CURLcode rc,
                                             struct http_route *route, struct dirconn_error *err);

/* The transport seam as one value. */
struct http_transport {
    http_configure_fn configure; /* NULL = no hook (then outcome is not called either) */
    http_outcome_fn outcome;     /* NULL = no hook */
    void *arg;
};

/* ---- one request ---------------------------------------------------------------------------- */

struct http_request {
    CURL *easy;                   /* owned; reused across attempts (keep-alive) */
    struct http_body body;        /* the last attempt's body */
    struct http_headers headers;  /* the last attempt's headers (http_attempt_end) */
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's text for the last attempt's failure, or "" */
    struct http_route route;      /* chosen by the configure hook for the attempt in flight */
    bool configured;              /* the configure hook ran for the attempt in flight */
    CURLcode rc;                  /* the last attempt's result */
    long status;                  /* the last attempt's HTTP status, 0 when none arrived */
    int attempts;                 /* transfers made (http_attempt_begin calls that succeeded) */
};

/*
 * http_request_init - a request whose body keeps at most body_max bytes
 * (wiped when wipe). Creates its easy handle. Errors: DIRCONN_ENOMEM (r is
 * then empty; http_request_cleanup is still allowed).
 */
enum dirconn_err http_request_init(struct http_request *r, size_t body_max, bool wipe,
                                   struct dirconn_error *err);

/* http_request_cleanup - free the handle, body and headers; r is zeroed. */
void http_request_cleanup(struct http_request *r);

/*
 * http_request_setup - reset the easy handle (curl_easy_reset: the
 * connection cache stays) and set what every request of dirconn has: url,
 * CURLOPT_NOSIGNAL, http and https only (CURLOPT_PROTOCOLS_STR), the user
 * agent, TLS peer and host verification on with o->ca_file, the timeouts of
 * o, the body writer and the error buffer. The caller then sets the method,
 * request body and headers. url must stay valid until the transfer ended.
 */
void http_request_setup(struct http_request *r, const struct http_options *o, const char *url);

/*
 * http_attempt_begin - before one transfer of r: forget what the previous
 * attempt collected (body, headers, error text, route) and run t's configure
 * hook (t may be NULL), which records the route in r->route. Returns the
 * hook's error (err holds its message; the request must end without a
 * transfer).
 */
enum dirconn_err http_attempt_begin(struct http_request *r, const struct http_transport *t,
                                    const char *url, struct dirconn_error *err);

/*
 * http_attempt_end - after one transfer of r ended with rc: record rc (a body
 * that ended the transfer because it was complete counts as CURLE_OK), the
 * status (CURLINFO_RESPONSE_CODE; 0 when rc is not CURLE_OK) and the headers,
 * then, when the configure hook ran for it, ask t's outcome hook with
 * r->route. Returns the hook's answer (HTTP_OUTCOME_DEFAULT without a hook);
 * err receives its message (cleared first).
 */
enum http_outcome http_attempt_end(struct http_request *r, const struct http_transport *t,
                                   const char *url, CURLcode rc, struct dirconn_error *err);

/*
 * http_perform - the one-shot form: curl_easy_perform of r (set up by the
 * caller) through the transport seam: begin, perform, end, and again on the
 * next route while the outcome hook answers HTTP_OUTCOME_RETRY (at most
 * HTTP_MAX_ROUTES transfers). Returns the configure hook's error or, for
 * HTTP_OUTCOME_FAIL, the outcome hook's (err holds the message; the request
 * must end). Otherwise returns DIRCONN_OK with the last transfer's result in
 * r->rc, r->status, r->body and r->headers; when r->rc is not CURLE_OK and the
 * hook described the failure, err->code and err->msg hold it (err->code is
 * DIRCONN_OK when it did not).
 */
enum dirconn_err http_perform(struct http_request *r, const struct http_transport *t,
                              const char *url, struct dirconn_error *err);

/* ---- retries -------------------------------------------------------------------------------- */

/*
 * http_retryable_curl - whether a transfer that ended with rc may be tried
 * again: the connection failed or was cut, a timeout, a name not resolved,
 * the TLS handshake cut off, an HTTP/2 stream error.
 */
bool http_retryable_curl(CURLcode rc);

/*
 * http_retryable_status - whether a status says "try later": 429 (RFC 6585 4),
 * 500, 502, 503, 504 (RFC 9110 15.6).
 */
bool http_retryable_status(long status);

/*
 * http_maybe_applied - whether the server may have applied a request that
 * failed so (rc, or status when rc is CURLE_OK): the answer was lost or cut,
 * or the server failed while processing (500, 502, 504). Refused connections,
 * unresolved names, a failed TLS handshake (nothing was sent), 429 and 503
 * say it was not applied (RFC 9110 9.2.2: only idempotent requests may be
 * resent blindly).
 */
bool http_maybe_applied(CURLcode rc, long status);

/* The backoff of a client. */
struct http_backoff {
    int64_t base_ms; /* the first retry's delay, ms */
    int64_t max_ms;  /* the cap of the exponential delay, ms */
};

/*
 * http_retry_delay_ms - the delay before retry number `attempt` (1-based):
 * min(max_ms, base_ms * 2^(attempt-1)) with jitter drawn from [delay/2,
 * delay] using rnd (a uniformly random 32-bit value), in ms.
 */
int64_t http_retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd);

/*
 * http_backoff_ms - the delay before retry number `attempt` in ms: asked_ms
 * when it is >= 0 (a Retry-After, or 0 for "at once"), else
 * http_retry_delay_ms with b's base and cap; never more than 4 * b->max_ms
 * (a server asking for an hour is not waited for that long).
 */
int64_t http_backoff_ms(const struct http_backoff *b, int attempt, int64_t asked_ms, uint32_t rnd);

/*
 * http_parse_retry_after - the delay a Retry-After value asks for (RFC 9110
 * 10.2.3), in ms, from delay-seconds (at most a day) or an HTTP-date (RFC 9110
 * 5.6.7, parsed with curl_getdate) relative to now (Unix seconds; a date in
 * the past is 0). Returns -1 when value is NULL or not valid.
 */
int64_t http_parse_retry_after(const char *value, int64_t now);

#endif
