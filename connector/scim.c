/* scim.c - the SCIM 2.0 HTTP client on libcurl's multi interface. */
#include "connector/scim.h"

#include "connector/net/http.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Largest response body kept (a list page of a large tenant fits easily). */
#define SCIM_MAX_RESPONSE (64u * 1024 * 1024)
/* What is kept of an answer whose body is not parsed on success (scim_submit_status_only): an
 * error's body is short; a group's answer to a member PATCH may be larger than
 * SCIM_MAX_RESPONSE, and is read to its end and dropped. */
#define SCIM_STATUS_ONLY_KEEP (64u * 1024)

struct scim_header {
    char *name;
    char *value;
};

struct scim_request {
    struct scim_request *next;
    struct scim_client *client;
    char *method;
    char *url;
    char *body;
    size_t body_len;
    char *if_match;
    scim_done_fn done;
    void *arg;
    struct http_request http; /* the easy handle, answer body and headers, route, error text */
    bool transferred;         /* the attempt in flight went to libcurl (not ended before) */
    struct curl_slist *headers;
    int attempts;
    int64_t not_before_ms;
    bool token_refreshed;
    bool force_token_refresh;
    enum dirconn_err token_error;
    char token_message[DIRCONN_ERROR_LEN];
    char transport_note[DIRCONN_ERROR_LEN]; /* the outcome hook's text for a transport error */
    enum dirconn_err transport_code;        /* and its code */
    bool create;        /* a POST that creates: not resent after it may have been applied */
    bool status_only;   /* the body of a 2xx answer is not parsed (scim_submit_status_only) */
    bool maybe_applied; /* it ended on such a failure */
    bool own_if_match;  /* if_match is the version the client read after a 428, not the caller's */
    int version_reads;  /* reads of the version for a provider that requires If-Match */
    bool needs_version; /* read the version before the next attempt (wants_version) */
    struct scim_request *active_next;         /* in the client's list of requests in flight */
    const _Atomic int64_t *write_deadline_ms; /* the HA write deadline, for a write, or NULL */
    bool fenced_at_send; /* the deadline passed between the start and the sending: not sent */
};

struct scim_client {
    struct scim_client_options opts;
    char *base_url;
    char *ca_file;
    CURLM *multi;
    struct scim_request *waiting; /* not yet started, or waiting for a retry */
    struct scim_request *active;  /* in flight (in_flight of them) */
    int in_flight;
    struct scim_header *extra;
    size_t n_extra;
    char *token;
    uint64_t rng;           /* xorshift64* state for backoff jitter, seeded from RAND_bytes */
    bool if_match_required; /* a write without If-Match was answered 428: read versions first */
    /* A request of this scim_run ended unanswered after its retries (or on a proxy failure):
     * the requests still waiting end at once with this error instead of retrying each. */
    struct dirconn_error unreachable;
    /* scim_run_until returned with requests still queued or in flight: the next run goes on
     * with the same run (c->unreachable kept) */
    bool run_partial;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * CURLOPT_PREREQFUNCTION: libcurl calls it when the connection is ready, just
 * before the request goes out. A write whose HA deadline passed since
 * start_attempt (the process was frozen, or waited for a connection) is
 * aborted unsent, so the window between the self-fencing check and the send
 * is the few instructions between this call and the write to the socket.
 */
static int prereq_fence(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                        int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    struct scim_request *r = clientp;
    if (r->write_deadline_ms != NULL && mono_ms() >= atomic_load(r->write_deadline_ms)) {
        r->fenced_at_send = true;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

static uint32_t next_random(struct scim_client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * 2685821657736338717ULL) >> 32);
}

char *scim_url_escape(const char *s)
{
    return curl_easy_escape(NULL, s, 0);
}

enum dirconn_err scim_client_new(const struct scim_client_options *opts, struct scim_client **out,
                                 struct dirconn_error *err)
{
    *out = NULL;
    if (opts->base_url == NULL || (strncasecmp(opts->base_url, "https://", 8) != 0 &&
                                   strncasecmp(opts->base_url, "http://", 7) != 0))
        return dirconn_error_set(err, DIRCONN_ECONFIG, "SCIM base URL '%s' is not an http(s) URL",
                                 opts->base_url != NULL ? opts->base_url : "");
    struct scim_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    c->opts = *opts;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = 60000;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 10000;
    if (c->opts.max_in_flight <= 0)
        c->opts.max_in_flight = 8;
    if (c->opts.max_retries < 0)
        c->opts.max_retries = 0;
    else if (c->opts.max_retries == 0)
        c->opts.max_retries = 6;
    if (c->opts.backoff_base_ms <= 0)
        c->opts.backoff_base_ms = 500;
    if (c->opts.backoff_max_ms <= 0)
        c->opts.backoff_max_ms = 30000;
    c->base_url = strdup(opts->base_url);
    size_t n = c->base_url != NULL ? strlen(c->base_url) : 0;
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    c->ca_file = opts->ca_file != NULL ? strdup(opts->ca_file) : NULL;
    c->multi = curl_multi_init();
    if (RAND_bytes((unsigned char *)&c->rng, sizeof(c->rng)) != 1 || c->rng == 0)
        c->rng = (uint64_t)mono_ms() | 1;
    if (c->base_url == NULL || c->multi == NULL || (opts->ca_file != NULL && c->ca_file == NULL)) {
        scim_client_free(c);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->opts.max_in_flight);
    *out = c;
    return DIRCONN_OK;
}

static void request_free(struct scim_request *r)
{
    if (r == NULL)
        return;
    http_request_cleanup(&r->http);
    curl_slist_free_all(r->headers);
    free(r->method);
    free(r->url);
    if (r->body != NULL) /* it may hold a password (pwsync.h): wiped, as every body */
        OPENSSL_cleanse(r->body, r->body_len);
    free(r->body);
    free(r->if_match);
    free(r);
}

static void version_read_done(void *arg, const struct scim_response *resp);
static bool is_write(const struct scim_request *r);

void scim_client_free(struct scim_client *c)
{
    if (c == NULL)
        return;
    while (c->waiting != NULL) {
        struct scim_request *r = c->waiting;
        c->waiting = r->next;
        if (r->done == version_read_done)
            request_free(r->arg); /* the write parked behind the read of its version */
        request_free(r);
    }
    for (size_t i = 0; i < c->n_extra; i++) {
        free(c->extra[i].name);
        free(c->extra[i].value);
    }
    free(c->extra);
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    free(c->base_url);
    free(c->ca_file);
    free(c->token);
    free(c);
}

enum dirconn_err scim_client_set_header(struct scim_client *c, const char *name, const char *value)
{
    for (size_t i = 0; i < c->n_extra; i++) {
        if (strcasecmp(c->extra[i].name, name) == 0) {
            free(c->extra[i].value);
            c->extra[i].value = NULL;
            if (value == NULL) {
                free(c->extra[i].name);
                c->extra[i] = c->extra[--c->n_extra];
                return DIRCONN_OK;
            }
            c->extra[i].value = strdup(value);
            return c->extra[i].value != NULL ? DIRCONN_OK : DIRCONN_ENOMEM;
        }
    }
    if (value == NULL)
        return DIRCONN_OK;
    struct scim_header *h = realloc(c->extra, (c->n_extra + 1) * sizeof(*h));
    if (h == NULL)
        return DIRCONN_ENOMEM;
    c->extra = h;
    h[c->n_extra].name = strdup(name);
    h[c->n_extra].value = strdup(value);
    if (h[c->n_extra].name == NULL || h[c->n_extra].value == NULL) {
        free(h[c->n_extra].name);
        free(h[c->n_extra].value);
        return DIRCONN_ENOMEM;
    }
    c->n_extra++;
    return DIRCONN_OK;
}

enum dirconn_err scim_submit(struct scim_client *c, const char *method, const char *path,
                             const json_t *body, const char *if_match, scim_done_fn done, void *arg,
                             struct dirconn_error *err)
{
    struct scim_request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    r->client = c;
    r->done = done;
    r->arg = arg;
    r->method = strdup(method);
    bool absolute = strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0;
    size_t len = strlen(c->base_url) + strlen(path) + 2;
    r->url = malloc(len);
    if (r->url != NULL) {
        if (absolute)
            snprintf(r->url, len, "%s", path);
        else
            snprintf(r->url, len, "%s%s%s", c->base_url, path[0] == '/' ? "" : "/", path);
    }
    if (body != NULL) {
        r->body = json_dumps(body, JSON_COMPACT);
        r->body_len = r->body != NULL ? strlen(r->body) : 0;
    }
    if (if_match != NULL)
        r->if_match = strdup(if_match);
    if (r->method == NULL || r->url == NULL || (body != NULL && r->body == NULL) ||
        (if_match != NULL && r->if_match == NULL)) {
        request_free(r);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    /* Append to the waiting list, keeping submission order. */
    struct scim_request **tail = &c->waiting;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = r;
    return DIRCONN_OK;
}

/* The request scim_submit queued last. */
static struct scim_request *last_waiting(struct scim_client *c)
{
    struct scim_request *r = c->waiting;
    while (r->next != NULL)
        r = r->next;
    return r;
}

enum dirconn_err scim_submit_create(struct scim_client *c, const char *path, const json_t *body,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    enum dirconn_err e = scim_submit(c, "POST", path, body, NULL, done, arg, err);
    if (e == DIRCONN_OK)
        last_waiting(c)->create = true;
    return e;
}

enum dirconn_err scim_submit_status_only(struct scim_client *c, const char *method,
                                         const char *path, const json_t *body, const char *if_match,
                                         scim_done_fn done, void *arg, struct dirconn_error *err)
{
    enum dirconn_err e = scim_submit(c, method, path, body, if_match, done, arg, err);
    if (e == DIRCONN_OK)
        last_waiting(c)->status_only = true;
    return e;
}

/* Prepare the easy handle for one attempt and add it to the multi handle. */
static enum dirconn_err start_attempt(struct scim_client *c, struct scim_request *r)
{
    r->attempts++;
    r->transferred = false;
    r->token_error = DIRCONN_OK;
    r->fenced_at_send = false;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    if (r->http.easy == NULL &&
        http_request_init(&r->http, r->status_only ? SCIM_STATUS_ONLY_KEEP : SCIM_MAX_RESPONSE,
                          false, NULL) != DIRCONN_OK)
        return DIRCONN_ENOMEM;
    r->http.body.keep_head = r->status_only;

    /* Self-fencing (HA): no write starts once the lease may have expired. */
    if (c->opts.write_deadline_ms != NULL && strcmp(r->method, "GET") != 0 &&
        mono_ms() >= atomic_load(c->opts.write_deadline_ms)) {
        r->token_error = DIRCONN_ELEASE;
        snprintf(r->token_message, sizeof(r->token_message),
                 "not sent: this connector no longer holds the HA lease (self-fenced)");
        return DIRCONN_ELEASE;
    }
    struct dirconn_error terr;
    dirconn_error_clear(&terr);
    if (c->opts.token != NULL && (c->token == NULL || r->force_token_refresh)) {
        free(c->token);
        c->token = NULL;
        enum dirconn_err e =
            c->opts.token(c->opts.token_arg, r->force_token_refresh, &c->token, &terr);
        r->force_token_refresh = false;
        if (e != DIRCONN_OK) {
            r->token_error = e;
            snprintf(r->token_message, sizeof(r->token_message), "%s", terr.msg);
            return e;
        }
    }
    char line[8192];
    struct curl_slist *h = NULL;
    bool ok = true;
#define ADD_HEADER(...)                                                                            \
    do {                                                                                           \
        snprintf(line, sizeof(line), __VA_ARGS__);                                                 \
        struct curl_slist *nh = curl_slist_append(h, line);                                        \
        if (nh == NULL)                                                                            \
            ok = false;                                                                            \
        else                                                                                       \
            h = nh;                                                                                \
    } while (0)
    ADD_HEADER("Accept: %s, application/json", SCIM_CONTENT_TYPE);
    if (c->token != NULL)
        ADD_HEADER("Authorization: Bearer %s", c->token);
    if (r->body != NULL)
        ADD_HEADER("Content-Type: %s", SCIM_CONTENT_TYPE);
    if (r->if_match != NULL)
        ADD_HEADER("If-Match: %s", r->if_match);
    for (size_t i = 0; i < c->n_extra; i++)
        ADD_HEADER("%s: %s", c->extra[i].name, c->extra[i].value);
    ADD_HEADER("Expect:"); /* no 100-continue round trip */
#undef ADD_HEADER
    /* The Authorization line held the token: wipe the stack copy. */
    memset(line, 0, sizeof(line));
    r->headers = h;
    if (!ok)
        return DIRCONN_ENOMEM;

    const struct http_options ho = {.ca_file = c->ca_file,
                                    .timeout_ms = (long)c->opts.timeout_ms,
                                    .connect_timeout_ms = (long)c->opts.connect_timeout_ms,
                                    .accept_encoding = true};
    http_request_setup(&r->http, &ho, r->url);
    CURL *e = r->http.easy;
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (strcmp(r->method, "GET") == 0)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcmp(r->method, "DELETE") == 0 && r->body == NULL)
        curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    if (r->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (c->opts.write_deadline_ms != NULL && strcmp(r->method, "GET") != 0) {
        r->write_deadline_ms = c->opts.write_deadline_ms;
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_fence);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
    }
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    const struct http_transport t = {c->opts.configure, c->opts.outcome, c->opts.configure_arg};
    enum dirconn_err ce = http_attempt_begin(&r->http, &t, r->url, &terr);
    if (ce != DIRCONN_OK) {
        r->token_error = ce;
        snprintf(r->token_message, sizeof(r->token_message), "%s", terr.msg);
        return ce;
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return DIRCONN_ENOMEM;
    r->transferred = true;
    c->in_flight++;
    r->active_next = c->active;
    c->active = r;
    return DIRCONN_OK;
}

static bool is_write(const struct scim_request *r)
{
    return strcmp(r->method, "PATCH") == 0 || strcmp(r->method, "PUT") == 0 ||
           strcmp(r->method, "DELETE") == 0;
}

static void version_read_done(void *arg, const struct scim_response *resp);

/*
 * Whether a write to r's resource (its URL without the query), or the read
 * of its version, is in flight: with a provider that requires If-Match, two
 * writes to one resource at once would refuse each other (412).
 */
static bool resource_busy(const struct scim_client *c, const struct scim_request *r)
{
    size_t n = strcspn(r->url, "?");
    for (const struct scim_request *a = c->active; a != NULL; a = a->active_next)
        if ((is_write(a) || a->done == version_read_done) && strcspn(a->url, "?") == n &&
            strncmp(a->url, r->url, n) == 0)
            return true;
    return false;
}

/* Fill resp from a finished attempt. */
static void build_response(struct scim_request *r, CURLcode rc, long status,
                           struct scim_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->attempts = r->attempts;
    resp->status = status;
    resp->maybe_applied = r->maybe_applied;
    if (r->token_error != DIRCONN_OK) {
        resp->code = r->token_error;
        snprintf(resp->error, sizeof(resp->error), "%s %.300s: %.700s", r->method, r->url,
                 r->token_message);
        return;
    }
    if (rc != CURLE_OK) {
        resp->code = DIRCONN_ECLOUD_CONNECT;
        resp->origin = DIRCONN_ORIGIN_CURL;
        resp->cause = (long)rc;
        if (r->transport_note[0] != '\0' && r->transport_code != DIRCONN_OK)
            resp->code = r->transport_code;
        if (r->transport_note[0] != '\0')
            snprintf(resp->error, sizeof(resp->error), "%s %.300s: %.650s%s", r->method, r->url,
                     r->transport_note, r->attempts > 1 ? ", after retries" : "");
        else
            snprintf(resp->error, sizeof(resp->error), "%s %.500s: %s (curl %d)%s", r->method,
                     r->url, r->http.errbuf[0] ? r->http.errbuf : curl_easy_strerror(rc), (int)rc,
                     r->attempts > 1 ? ", after retries" : "");
        if (r->http.body.overflow)
            snprintf(resp->error, sizeof(resp->error), "%s %.500s: response larger than %u bytes",
                     r->method, r->url, SCIM_MAX_RESPONSE);
        return;
    }
    char *fenced = status == 409 ? http_header_value(r->http.easy, "Dirconn-Fenced") : NULL;
    bool skip_body = r->status_only && status >= 200 && status < 300;
    scim_response_parse(resp, r->method, r->url, status, r->http.body.data,
                        skip_body ? 0 : r->http.body.len, fenced != NULL);
    free(fenced);
    /* docs/cloud-api.md "HA mode": the organisation uses another lease backend. */
    char *mode = status == 409 ? http_header_value(r->http.easy, "Dirconn-HA-Mode") : NULL;
    if (mode != NULL)
        resp->code = DIRCONN_EHAMODE;
    free(mode);
    resp->etag = r->http.headers.etag != NULL ? strdup(r->http.headers.etag) : NULL;
    resp->location = r->http.headers.location != NULL ? strdup(r->http.headers.location) : NULL;
}

enum dirconn_err scim_response_error(const struct scim_response *r, struct dirconn_error *err)
{
    dirconn_error_set(err, r->code, "%s", r->error);
    dirconn_error_cause(err, r->origin, r->cause);
    return r->code;
}

void scim_response_parse(struct scim_response *resp, const char *method, const char *url,
                         long status, const char *body, size_t len, bool fenced)
{
    resp->status = status;
    if (len > 0) {
        json_error_t jerr;
        resp->body = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    }
    if (status >= 200 && status < 300) {
        resp->code = DIRCONN_OK;
        return;
    }
    resp->code = status == 401 || status == 403 ? DIRCONN_ECLOUD_AUTH : DIRCONN_ECLOUD;
    resp->origin = DIRCONN_ORIGIN_HTTP;
    resp->cause = status;
    /* docs/cloud-api.md "Fencing": a write under a stale fencing token. */
    if (fenced && status == 409)
        resp->code = DIRCONN_ELEASE;
    if (json_is_object(resp->body)) {
        const char *t = json_string_value(json_object_get(resp->body, "scimType"));
        const char *d = json_string_value(json_object_get(resp->body, "detail"));
        if (d == NULL)
            d = json_string_value(json_object_get(resp->body, "error_description"));
        if (d == NULL)
            d = json_string_value(json_object_get(resp->body, "error"));
        resp->scim_type = t != NULL ? strdup(t) : NULL;
        resp->detail = d != NULL ? strdup(d) : NULL;
    } else if (len > 0) {
        resp->detail = strndup(body, len > 200 ? 200 : len);
    }
    snprintf(resp->error, sizeof(resp->error), "%s %.300s: HTTP %ld%s%.60s%s%.500s", method, url,
             status, resp->scim_type ? " " : "", resp->scim_type ? resp->scim_type : "",
             resp->detail ? ": " : "", resp->detail ? resp->detail : "");
    for (char *p = resp->error; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
}

void scim_response_clear(struct scim_response *resp)
{
    json_decref(resp->body);
    free(resp->etag);
    free(resp->location);
    free(resp->scim_type);
    free(resp->detail);
    memset(resp, 0, sizeof(*resp));
}

/* The reads of the version a write may make (a 428, then 412s from concurrent writes). */
#define VERSION_READS_MAX 3

/*
 * The version of the resource a parked write (arg) goes to was read: send the
 * write again with If-Match (RFC 7644 3.14). Without a version the write goes
 * as it was, and its answer completes it.
 */
static void version_read_done(void *arg, const struct scim_response *resp)
{
    struct scim_request *w = arg;
    struct scim_client *c = w->client;
    const char *v = NULL;
    if (resp->code == DIRCONN_OK)
        v = json_string_value(json_object_get(json_object_get(resp->body, "meta"), "version"));
    if (v == NULL && resp->code == DIRCONN_OK)
        v = resp->etag;
    if (v != NULL) {
        char *dup = strdup(v);
        if (dup != NULL) {
            free(w->if_match);
            w->if_match = dup;
            w->own_if_match = true;
        }
    }
    w->not_before_ms = 0;
    w->next = c->waiting;
    c->waiting = w;
}

/*
 * A provider that requires If-Match answered 428 Precondition Required (RFC
 * 6585 3) to a write the caller sent without it, or 412 to the version this
 * client read for it (the resource changed after the read): the write goes
 * back to the head of the queue, to be sent again after a read of the
 * resource's current version (queue_version_read). Returns false when this
 * answer completes the request.
 */
static bool wants_version(struct scim_client *c, struct scim_request *r, long status)
{
    bool wanted = (status == 428 && (r->if_match == NULL || r->own_if_match)) ||
                  (status == 412 && r->own_if_match);
    if (!is_write(r) || !wanted || r->version_reads >= VERSION_READS_MAX)
        return false;
    if (status == 428 && !c->if_match_required) {
        c->if_match_required = true;
        log_msg(c->opts.log, LOG_LEVEL_INFO,
                "cloud: %s %s: 428 Precondition Required: writes carry If-Match with the version "
                "read first, one at a time per resource",
                r->method, r->url);
    }
    log_msg(c->opts.log, LOG_LEVEL_DEBUG, "%s %s: HTTP %ld; reading the version for If-Match",
            r->method, r->url, status);
    r->needs_version = true;
    r->not_before_ms = 0;
    r->next = c->waiting;
    c->waiting = r;
    return true;
}

/*
 * Start the read of the version of write r's resource (its URL without the
 * query): r waits, parked as the read's argument, and is queued again by
 * version_read_done. Returns false when out of memory (r is then sent as it is).
 */
static bool queue_version_read(struct scim_client *c, struct scim_request *r)
{
    struct scim_request *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return false;
    g->client = c;
    g->done = version_read_done;
    g->arg = r;
    g->method = strdup("GET");
    g->url = strndup(r->url, strcspn(r->url, "?"));
    if (g->method == NULL || g->url == NULL) {
        request_free(g);
        return false;
    }
    r->needs_version = false;
    r->version_reads++;
    g->next = c->waiting;
    c->waiting = g;
    return true;
}

/* An attempt ended: retry it later, or complete it. */
static void attempt_done(struct scim_client *c, struct scim_request *r, CURLcode rc)
{
    long status = 0;
    if (rc == CURLE_OK && r->transferred)
        curl_easy_getinfo(r->http.easy, CURLINFO_RESPONSE_CODE, &status);
    if (c->opts.observe != NULL && !r->fenced_at_send) {
        curl_off_t us = 0;
        if (r->transferred)
            curl_easy_getinfo(r->http.easy, CURLINFO_TOTAL_TIME_T, &us);
        c->opts.observe(c->opts.observe_arg, r->method, status, (double)us / 1e6);
    }
    bool retry = false;
    int64_t delay = -1;
    if (r->transferred) {
        /* the answer's headers into r->http, and the outcome hook with the attempt's route */
        const struct http_transport t = {c->opts.configure, c->opts.outcome, c->opts.configure_arg};
        bool hooked = r->http.configured && c->opts.outcome != NULL;
        struct dirconn_error herr;
        enum http_outcome o = http_attempt_end(&r->http, &t, r->url, rc, &herr);
        if (hooked)
            r->transport_note[0] = '\0';
        if (!hooked) {
            /* no hook: the client's own rules */
        } else if (o == HTTP_OUTCOME_FAIL) {
            r->token_error = herr.code != DIRCONN_OK ? herr.code : DIRCONN_EFAIL;
            snprintf(r->token_message, sizeof(r->token_message), "%s", herr.msg);
        } else if (herr.msg[0] != '\0') {
            snprintf(r->transport_note, sizeof(r->transport_note), "%s", herr.msg);
            r->transport_code = herr.code;
        }
        if (hooked && o == HTTP_OUTCOME_RETRY) {
            retry = true;
            delay = 0;
        }
        r->transferred = false;
    }
    /* prereq_fence stopped it before it went out (the outcome hook above still
     * ran, to release the route it had chosen): never resent. */
    if (r->fenced_at_send && r->token_error == DIRCONN_OK) {
        r->token_error = DIRCONN_ELEASE;
        snprintf(r->token_message, sizeof(r->token_message),
                 "not sent: this connector no longer holds the HA lease (self-fenced)");
        retry = false;
    }
    if (retry) {
        /* the outcome hook chose another route */
    } else if (r->token_error != DIRCONN_OK) {
        retry = r->token_error == DIRCONN_ECLOUD_CONNECT || r->token_error == DIRCONN_ECLOUD;
    } else if (rc != CURLE_OK) {
        retry = http_retryable_curl(rc) && !r->http.body.overflow;
    } else if (status == 401 && c->opts.token != NULL && !r->token_refreshed) {
        retry = true;
        r->token_refreshed = true;
        r->force_token_refresh = true;
        delay = 0;
    } else if (http_retryable_status(status)) {
        retry = true;
        delay = http_parse_retry_after(r->http.headers.retry_after, (int64_t)time(NULL));
    }
    if (retry && r->create && r->token_error == DIRCONN_OK && http_maybe_applied(rc, status)) {
        /* Resending a create could make a second object: the caller looks first. */
        retry = false;
        r->maybe_applied = true;
    }
    if (retry && r->attempts <= c->opts.max_retries) {
        const struct http_backoff bo = {c->opts.backoff_base_ms, c->opts.backoff_max_ms};
        delay = http_backoff_ms(&bo, r->attempts, delay, delay < 0 ? next_random(c) : 0);
        log_msg(c->opts.log, LOG_LEVEL_DEBUG, "%s %s: %s%ld, retry %d in %lld ms", r->method,
                r->url, rc != CURLE_OK ? "transport error " : "HTTP ",
                rc != CURLE_OK ? (long)rc : status, r->attempts, (long long)delay);
        r->not_before_ms = mono_ms() + delay;
        r->next = c->waiting;
        c->waiting = r;
        return;
    }
    if (rc == CURLE_OK && r->token_error == DIRCONN_OK && (status == 428 || status == 412) &&
        wants_version(c, r, status))
        return; /* sent again once its version is read */
    struct scim_response resp;
    build_response(r, rc, status, &resp);
    if ((resp.code == DIRCONN_ECLOUD_CONNECT || resp.code == DIRCONN_EPROXY) &&
        !resp.maybe_applied && c->unreachable.code == DIRCONN_OK)
        scim_response_error(&resp, &c->unreachable);
    if (r->done != NULL)
        r->done(r->arg, &resp);
    scim_response_clear(&resp);
    request_free(r);
}

/*
 * The cloud could not be reached (c->unreachable): end every waiting request
 * now, unsent, with that error. A write parked behind the read of its version
 * comes back to the list when the read ends, and is ended in turn.
 */
static void end_waiting(struct scim_client *c)
{
    while (c->waiting != NULL) {
        struct scim_request *r = c->waiting;
        c->waiting = r->next;
        r->next = NULL;
        struct scim_response resp;
        memset(&resp, 0, sizeof(resp));
        resp.code = c->unreachable.code;
        resp.attempts = r->attempts;
        snprintf(resp.error, sizeof(resp.error), "%s %.300s: not sent: %.650s", r->method, r->url,
                 c->unreachable.msg);
        if (r->done != NULL)
            r->done(r->arg, &resp);
        request_free(r);
    }
}

enum dirconn_err scim_run(struct scim_client *c, struct dirconn_error *err)
{
    return scim_run_until(c, NULL, NULL, err);
}

enum dirconn_err scim_run_until(struct scim_client *c, bool (*until)(void *arg), void *arg,
                                struct dirconn_error *err)
{
    if (!c->run_partial)
        dirconn_error_clear(&c->unreachable); /* each run tries the cloud again */
    c->run_partial = false;
    /*
     * A token is asked for only while no transfer is in flight (fetching one blocks this
     * loop): here, before the first transfer of the run, where the token source renews a
     * token that nears its expiry; after a 401, once the transfers in flight are done.
     */
    if (c->opts.token != NULL && c->in_flight == 0 && c->token != NULL) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }
    while (c->waiting != NULL || c->in_flight > 0) {
        if (c->unreachable.code != DIRCONN_OK)
            end_waiting(c);
        if (c->waiting == NULL && c->in_flight == 0)
            break;
        int64_t now = mono_ms();
        int64_t next_due = -1;
        /* Start what is due, in order, up to the in-flight limit. */
        struct scim_request **pp = &c->waiting;
        while (*pp != NULL && c->in_flight < c->opts.max_in_flight) {
            struct scim_request *r = *pp;
            if (r->not_before_ms > now) {
                if (next_due < 0 || r->not_before_ms < next_due)
                    next_due = r->not_before_ms;
                pp = &r->next;
                continue;
            }
            if (c->if_match_required && is_write(r) && resource_busy(c, r)) {
                pp = &r->next; /* after the write to the same resource in flight */
                continue;
            }
            if (c->opts.token != NULL && (c->token == NULL || r->force_token_refresh) &&
                c->in_flight > 0)
                break; /* the token is fetched once the transfers in flight are done */
            *pp = r->next;
            r->next = NULL;
            if (is_write(r) &&
                (r->needs_version ||
                 (c->if_match_required && r->if_match == NULL && r->version_reads == 0)) &&
                queue_version_read(c, r)) {
                pp = &c->waiting; /* the read went first in the list */
                continue;
            }
            enum dirconn_err e = start_attempt(c, r);
            if (e == DIRCONN_ENOMEM) {
                request_free(r);
                return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
            }
            if (e != DIRCONN_OK)
                attempt_done(c, r, CURLE_OK);
        }
        for (struct scim_request *r = *pp; r != NULL; r = r->next) {
            if (next_due < 0 || r->not_before_ms < next_due)
                next_due = r->not_before_ms;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK)
            return dirconn_error_set(err, DIRCONN_ECLOUD, "libcurl: %s", curl_multi_strerror(mc));
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct scim_request *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(c->multi, msg->easy_handle);
            c->in_flight--;
            for (struct scim_request **ap = &c->active; *ap != NULL; ap = &(*ap)->active_next)
                if (*ap == r) {
                    *ap = r->active_next;
                    break;
                }
            r->active_next = NULL;
            attempt_done(c, r, rc);
        }
        if (c->in_flight == 0 && c->waiting == NULL)
            break;
        if (until != NULL && until(arg)) {
            c->run_partial = true;
            return DIRCONN_OK;
        }
        int wait_ms = 100;
        if (c->in_flight == 0 && next_due >= 0) {
            int64_t d = next_due - mono_ms();
            wait_ms = d <= 0 ? 0 : d > 1000 ? 1000 : (int)d;
        }
        if (wait_ms > 0) {
            mc = curl_multi_poll(c->multi, NULL, 0, wait_ms, NULL);
            if (mc != CURLM_OK)
                return dirconn_error_set(err, DIRCONN_ECLOUD, "libcurl: %s",
                                         curl_multi_strerror(mc));
        }
    }
    return DIRCONN_OK;
}

/* ---- the transport port --------------------------------------------------------------------- */

static enum dirconn_err client_port_submit(void *impl, const char *method, const char *path,
                                           const json_t *body, const char *if_match, unsigned flags,
                                           scim_done_fn done, void *arg, struct dirconn_error *err)
{
    if (flags & SCIM_SUBMIT_CREATE)
        return scim_submit_create(impl, path, body, done, arg, err);
    if (flags & SCIM_SUBMIT_STATUS_ONLY)
        return scim_submit_status_only(impl, method, path, body, if_match, done, arg, err);
    return scim_submit(impl, method, path, body, if_match, done, arg, err);
}

static enum dirconn_err client_port_run(void *impl, struct dirconn_error *err)
{
    return scim_run(impl, err);
}

static enum dirconn_err client_port_run_until(void *impl, bool (*until)(void *arg), void *arg,
                                              struct dirconn_error *err)
{
    return scim_run_until(impl, until, arg, err);
}

static const struct scim_port_ops client_port_ops = {client_port_submit, client_port_run,
                                                     client_port_run_until};

struct scim_port scim_client_port(struct scim_client *c)
{
    return (struct scim_port){&client_port_ops, c};
}

enum dirconn_err scim_port_submit(const struct scim_port *p, const char *method, const char *path,
                                  const json_t *body, const char *if_match, scim_done_fn done,
                                  void *arg, struct dirconn_error *err)
{
    return p->ops->submit(p->impl, method, path, body, if_match, 0, done, arg, err);
}

enum dirconn_err scim_port_submit_status_only(const struct scim_port *p, const char *method,
                                              const char *path, const json_t *body,
                                              const char *if_match, scim_done_fn done, void *arg,
                                              struct dirconn_error *err)
{
    return p->ops->submit(p->impl, method, path, body, if_match, SCIM_SUBMIT_STATUS_ONLY, done, arg,
                          err);
}

enum dirconn_err scim_port_submit_create(const struct scim_port *p, const char *path,
                                         const json_t *body, scim_done_fn done, void *arg,
                                         struct dirconn_error *err)
{
    return p->ops->submit(p->impl, "POST", path, body, NULL, SCIM_SUBMIT_CREATE, done, arg, err);
}

enum dirconn_err scim_port_run(const struct scim_port *p, struct dirconn_error *err)
{
    return p->ops->run(p->impl, err);
}

enum dirconn_err scim_port_run_until(const struct scim_port *p, bool (*until)(void *arg), void *arg,
                                     struct dirconn_error *err)
{
    if (p->ops->run_until == NULL)
        return p->ops->run(p->impl, err);
    return p->ops->run_until(p->impl, until, arg, err);
}

void scim_response_copy(struct scim_response *out, const struct scim_response *resp)
{
    *out = *resp;
    /* Take ownership of the heap fields: the caller's copy frees them. */
    json_incref(out->body);
    out->etag = resp->etag ? strdup(resp->etag) : NULL;
    out->location = resp->location ? strdup(resp->location) : NULL;
    out->scim_type = resp->scim_type ? strdup(resp->scim_type) : NULL;
    out->detail = resp->detail ? strdup(resp->detail) : NULL;
}

static void capture_done(void *arg, const struct scim_response *resp)
{
    scim_response_copy(arg, resp);
}

enum dirconn_err scim_port_request(const struct scim_port *p, const char *method, const char *path,
                                   const json_t *body, const char *if_match,
                                   struct scim_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err e =
        scim_port_submit(p, method, path, body, if_match, capture_done, resp, &err);
    if (e == DIRCONN_OK)
        e = scim_port_run(p, &err);
    if (e != DIRCONN_OK) {
        resp->code = e;
        snprintf(resp->error, sizeof(resp->error), "%s", err.msg);
    }
    return resp->code;
}

enum dirconn_err scim_request_sync(struct scim_client *c, const char *method, const char *path,
                                   const json_t *body, const char *if_match,
                                   struct scim_response *resp)
{
    struct scim_port p = scim_client_port(c);
    return scim_port_request(&p, method, path, body, if_match, resp);
}

/*
 * The pages of a list after the first are pipelined: the first answer gives
 * totalResults and the page's length, and up to LIST_WINDOW pages are then
 * asked at once, at the startIndex each will have if every page before it is
 * as long as the first (RFC 7644 3.4.2.4). The answers are taken in order; a
 * page shorter than that stride before the end (a provider that caps count
 * lower, or a list that changed) drops the pages asked after it, and the walk
 * goes on from the index the short page ended at, as one page after the other
 * would.
 */
#define LIST_WINDOW 4

struct list_page {
    long start;
    bool done;
    struct scim_response resp;
};

struct list_walk {
    struct list_page *win[LIST_WINDOW]; /* in flight or answered, in order from head */
    size_t head, n;                     /* win[(head + i) % LIST_WINDOW], i < n */
};

static void list_page_done(void *arg, const struct scim_response *resp)
{
    struct list_page *pg = arg;
    scim_response_copy(&pg->resp, resp);
    pg->done = true;
}

static bool list_head_done(void *arg)
{
    const struct list_walk *w = arg;
    return w->n == 0 || w->win[w->head]->done;
}

static void list_page_free(struct list_page *pg)
{
    if (pg != NULL)
        scim_response_clear(&pg->resp);
    free(pg);
}

/* Wait for the pages still in flight and drop every page of the window. */
static void list_walk_drop(const struct scim_port *p, struct list_walk *w)
{
    bool pending = false;
    for (size_t i = 0; i < w->n; i++)
        pending = pending || !w->win[(w->head + i) % LIST_WINDOW]->done;
    if (pending) {
        struct dirconn_error ignored;
        (void)scim_port_run(p, &ignored); /* their answers are not used */
    }
    for (size_t i = 0; i < w->n; i++)
        list_page_free(w->win[(w->head + i) % LIST_WINDOW]);
    w->head = w->n = 0;
}

struct scim_list {
    struct scim_port port;
    char *path;
    char *ef, *ea; /* filter and attributes, escaped, or NULL */
    int page_size;
    int (*fn)(void *arg, json_t *resource);
    void *arg;
    struct list_walk w;
    long start;       /* the startIndex of the next page taken */
    long next;        /* the startIndex of the next page asked */
    long stride;      /* the first page's length: 0 until it is known */
    json_int_t total; /* totalResults of the last page taken */
    char *prev_first; /* the id of the previous page's first resource */
    bool finished;    /* the walk ended: e is its outcome */
    enum dirconn_err e;
};

enum dirconn_err scim_port_list_open(const struct scim_port *p, const char *path,
                                     const char *filter, const char *attributes, int page_size,
                                     int (*fn)(void *arg, json_t *resource), void *arg,
                                     struct scim_list **out, struct dirconn_error *err)
{
    *out = NULL;
    struct scim_list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    l->port = *p;
    l->path = strdup(path);
    l->ef = filter != NULL ? scim_url_escape(filter) : NULL;
    l->ea = attributes != NULL ? scim_url_escape(attributes) : NULL;
    if (l->path == NULL || (filter != NULL && l->ef == NULL) ||
        (attributes != NULL && l->ea == NULL)) {
        scim_list_free(l);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    l->page_size = page_size;
    l->fn = fn;
    l->arg = arg;
    l->start = l->next = 1;
    dirconn_error_clear(err);
    *out = l;
    return DIRCONN_OK;
}

static bool list_no_wait(void *arg)
{
    (void)arg;
    return true;
}

/* Ask the pages due: the first page alone, then up to LIST_WINDOW pages ahead. */
static enum dirconn_err list_ask(struct scim_list *l, struct dirconn_error *err)
{
    struct list_walk *w = &l->w;
    while (w->n < (l->stride > 0 ? LIST_WINDOW : 1) &&
           (l->stride == 0 || l->next <= (long)l->total)) {
        char url[8192];
        snprintf(url, sizeof(url), "%s%cstartIndex=%ld&count=%d%s%s%s%s", l->path,
                 strchr(l->path, '?') != NULL ? '&' : '?', l->next, l->page_size,
                 l->ef ? "&filter=" : "", l->ef ? l->ef : "", l->ea ? "&attributes=" : "",
                 l->ea ? l->ea : "");
        struct list_page *pg = calloc(1, sizeof(*pg));
        if (pg == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        pg->start = l->next;
        enum dirconn_err e =
            scim_port_submit(&l->port, "GET", url, NULL, NULL, list_page_done, pg, err);
        if (e != DIRCONN_OK) {
            free(pg);
            if (w->n == 0)
                return e;
            /* the pages in flight first; asked again once they are taken */
            dirconn_error_clear(err);
            return DIRCONN_OK;
        }
        w->win[(w->head + w->n) % LIST_WINDOW] = pg;
        w->n++;
        if (l->stride == 0)
            break;
        l->next += l->stride;
    }
    return DIRCONN_OK;
}

/* Take the answered page at the head of the window: *more false once the walk has ended. */
static enum dirconn_err list_take(struct scim_list *l, bool *more, struct dirconn_error *err)
{
    struct list_walk *w = &l->w;
    struct list_page *pg = w->win[w->head];
    *more = false;
    w->head = (w->head + 1) % LIST_WINDOW;
    w->n--;
    if (pg->resp.code != DIRCONN_OK) {
        enum dirconn_err e = scim_response_error(&pg->resp, err);
        list_page_free(pg);
        return e;
    }
    json_t *resources = json_object_get(pg->resp.body, "Resources");
    l->total = json_integer_value(json_object_get(pg->resp.body, "totalResults"));
    size_t n = json_array_size(resources);
    /* A provider that ignores startIndex (RFC 7644 3.4.2.4) answers the same page again:
     * never loop on it, nor hand its resources to the callback twice. */
    const char *first = json_string_value(json_object_get(json_array_get(resources, 0), "id"));
    if (l->start > 1 && first != NULL && l->prev_first != NULL &&
        strcmp(first, l->prev_first) == 0) {
        enum dirconn_err e =
            dirconn_error_set(err, DIRCONN_ECLOUD,
                              "GET %s: the page at startIndex=%ld starts with the resource %s "
                              "again: the provider ignores startIndex (RFC 7644 3.4.2.4)",
                              l->path, l->start, first);
        list_page_free(pg);
        return e;
    }
    free(l->prev_first);
    l->prev_first = first != NULL ? strdup(first) : NULL;
    int stop = 0;
    for (size_t i = 0; i < n && stop == 0; i++)
        stop = l->fn(l->arg, json_array_get(resources, i));
    list_page_free(pg);
    if (stop != 0) {
        /* the callback's own error is in err when it set one (code and message kept) */
        return dirconn_error_stopped(err, DIRCONN_EFAIL, "listing %s stopped", l->path);
    }
    l->start += (long)n;
    if (n == 0 || l->start > (long)l->total)
        return DIRCONN_OK;
    if (l->stride == 0) {
        l->stride = (long)n;
        l->next = l->start;
    } else if (w->n > 0 && w->win[w->head]->start != l->start) {
        /* a short page before the end: the pages asked after it start elsewhere */
        list_walk_drop(&l->port, w);
        l->next = l->start;
    }
    *more = true;
    return DIRCONN_OK;
}

enum dirconn_err scim_list_step(struct scim_list *l, bool wait, bool *finished,
                                struct dirconn_error *err)
{
    while (!l->finished) {
        enum dirconn_err e = list_ask(l, err);
        if (e != DIRCONN_OK || l->w.n == 0) {
            l->finished = true;
            l->e = e;
            break;
        }
        e = scim_port_run_until(&l->port, wait ? list_head_done : list_no_wait,
                                wait ? (void *)&l->w : NULL, err);
        bool more = false;
        if (e == DIRCONN_OK && !l->w.win[l->w.head]->done) {
            if (!wait)
                break; /* the next page is not answered yet */
            e = dirconn_error_set(err, DIRCONN_ECLOUD,
                                  "GET %s: no answer to the page at "
                                  "startIndex=%ld",
                                  l->path, l->w.win[l->w.head]->start);
        }
        if (e == DIRCONN_OK)
            e = list_take(l, &more, err);
        if (e != DIRCONN_OK || !more) {
            l->finished = true;
            l->e = e;
        }
    }
    if (l->finished)
        list_walk_drop(&l->port, &l->w);
    *finished = l->finished;
    return l->finished ? l->e : DIRCONN_OK;
}

void scim_list_free(struct scim_list *l)
{
    if (l == NULL)
        return;
    list_walk_drop(&l->port, &l->w);
    free(l->prev_first);
    free(l->path);
    curl_free(l->ef);
    curl_free(l->ea);
    free(l);
}

enum dirconn_err scim_port_list_all(const struct scim_port *p, const char *path, const char *filter,
                                    const char *attributes, int page_size,
                                    int (*fn)(void *arg, json_t *resource), void *arg,
                                    struct dirconn_error *err)
{
    struct scim_list *l = NULL;
    enum dirconn_err e =
        scim_port_list_open(p, path, filter, attributes, page_size, fn, arg, &l, err);
    bool finished = false;
    if (e == DIRCONN_OK)
        e = scim_list_step(l, true, &finished, err);
    scim_list_free(l);
    return e;
}

enum dirconn_err scim_list_all(struct scim_client *c, const char *path, const char *filter,
                               const char *attributes, int page_size,
                               int (*fn)(void *arg, json_t *resource), void *arg,
                               struct dirconn_error *err)
{
    struct scim_port p = scim_client_port(c);
    return scim_port_list_all(&p, path, filter, attributes, page_size, fn, arg, err);
}
