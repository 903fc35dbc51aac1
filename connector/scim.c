/* scim.c - the SCIM 2.0 HTTP client on libcurl's multi interface. */
#include "connector/scim.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Largest response body kept (a list page of a large tenant fits easily). */
#define SCIM_MAX_RESPONSE (64u * 1024 * 1024)

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
    CURL *easy;
    struct curl_slist *headers;
    char *resp;
    size_t resp_len, resp_cap;
    bool resp_overflow;
    int attempts;
    int64_t not_before_ms;
    bool token_refreshed;
    bool force_token_refresh;
    enum dirconn_err token_error;
    char token_message[DIRCONN_ERROR_LEN];
    bool configured;                        /* the configure hook ran for the attempt in flight */
    char transport_note[DIRCONN_ERROR_LEN]; /* the outcome hook's text for a transport error */
    enum dirconn_err transport_code;        /* and its code */
    char errbuf[CURL_ERROR_SIZE];
    bool create;        /* a POST that creates: not resent after it may have been applied */
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

int64_t scim_retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t delay = base_ms;
    for (int i = 1; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    int64_t half = delay / 2;
    return half + (half > 0 ? (int64_t)(rnd % (uint64_t)(delay - half + 1)) : 0);
}

int64_t scim_parse_retry_after(const char *value, int64_t now)
{
    if (value == NULL)
        return -1;
    while (*value == ' ')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end = NULL;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ')
            end++;
        if (*end != '\0' || s < 0 || s > 86400)
            return -1;
        return (int64_t)s * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    int64_t delta = (int64_t)when - now;
    return delta > 0 ? delta * 1000 : 0;
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
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->method);
    free(r->url);
    if (r->body != NULL) /* it may hold a password (pwsync.h): wiped, as every body */
        OPENSSL_cleanse(r->body, r->body_len);
    free(r->body);
    free(r->if_match);
    free(r->resp);
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

enum dirconn_err scim_submit_create(struct scim_client *c, const char *path, const json_t *body,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    enum dirconn_err e = scim_submit(c, "POST", path, body, NULL, done, arg, err);
    if (e == DIRCONN_OK) {
        struct scim_request *r = c->waiting;
        while (r->next != NULL)
            r = r->next;
        r->create = true;
    }
    return e;
}

/*
 * A failure after which the server may have applied the request: the answer
 * was lost or cut (timeouts, a connection closed after sending) or the server
 * failed while processing (500, 502, 504). Refused connections, unresolved
 * names, a failed TLS handshake (nothing was sent), 429 and 503 say it was
 * not applied.
 */
static bool ambiguous_failure(CURLcode rc, long status)
{
    if (rc != CURLE_OK)
        return rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
               rc != CURLE_COULDNT_RESOLVE_PROXY && rc != CURLE_SSL_CONNECT_ERROR;
    return status == 500 || status == 502 || status == 504;
}

static size_t write_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct scim_request *r = userp;
    size_t n = size * nmemb;
    if (r->resp_len + n + 1 > SCIM_MAX_RESPONSE) {
        r->resp_overflow = true;
        return 0;
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        char *p = realloc(r->resp, cap);
        if (p == NULL)
            return 0;
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

/* Prepare the easy handle for one attempt and add it to the multi handle. */
static enum dirconn_err start_attempt(struct scim_client *c, struct scim_request *r)
{
    r->attempts++;
    r->resp_len = 0;
    r->resp_overflow = false;
    r->errbuf[0] = '\0';
    r->token_error = DIRCONN_OK;
    r->fenced_at_send = false;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    if (r->easy == NULL)
        r->easy = curl_easy_init();
    else
        curl_easy_reset(r->easy);
    if (r->easy == NULL)
        return DIRCONN_ENOMEM;

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

    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
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
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (c->opts.write_deadline_ms != NULL && strcmp(r->method, "GET") != 0) {
        r->write_deadline_ms = c->opts.write_deadline_ms;
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_fence);
        curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "dirconn");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (c->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->opts.configure != NULL) {
        enum dirconn_err ce = c->opts.configure(c->opts.configure_arg, e, r->url, &terr);
        if (ce != DIRCONN_OK) {
            r->token_error = ce;
            snprintf(r->token_message, sizeof(r->token_message), "%s", terr.msg);
            return ce;
        }
        r->configured = true;
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return DIRCONN_ENOMEM;
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

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR: /* the TLS handshake was cut off (a server going away) */
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return true;
    default:
        return false;
    }
}

static bool retryable_status(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static char *header_value(CURL *e, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return NULL;
    return strdup(h->value);
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
        if (r->transport_note[0] != '\0' && r->transport_code != DIRCONN_OK)
            resp->code = r->transport_code;
        if (r->transport_note[0] != '\0')
            snprintf(resp->error, sizeof(resp->error), "%s %.300s: %.650s%s", r->method, r->url,
                     r->transport_note, r->attempts > 1 ? ", after retries" : "");
        else
            snprintf(resp->error, sizeof(resp->error), "%s %.500s: %s (curl %d)%s", r->method,
                     r->url, r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc), (int)rc,
                     r->attempts > 1 ? ", after retries" : "");
        if (r->resp_overflow)
            snprintf(resp->error, sizeof(resp->error), "%s %.500s: response larger than %u bytes",
                     r->method, r->url, SCIM_MAX_RESPONSE);
        return;
    }
    char *fenced = status == 409 ? header_value(r->easy, "Dirconn-Fenced") : NULL;
    scim_response_parse(resp, r->method, r->url, status, r->resp, r->resp_len, fenced != NULL);
    free(fenced);
    /* docs/cloud-api.md "HA mode": the organisation uses another lease backend. */
    char *mode = status == 409 ? header_value(r->easy, "Dirconn-HA-Mode") : NULL;
    if (mode != NULL)
        resp->code = DIRCONN_EHAMODE;
    free(mode);
    resp->etag = header_value(r->easy, "ETag");
    resp->location = header_value(r->easy, "Location");
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
    if (rc == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (c->opts.observe != NULL && !r->fenced_at_send) {
        curl_off_t us = 0;
        curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &us);
        c->opts.observe(c->opts.observe_arg, r->method, status, (double)us / 1e6);
    }
    bool retry = false;
    int64_t delay = -1;
    if (r->configured && c->opts.outcome != NULL && r->token_error == DIRCONN_OK) {
        struct dirconn_error herr;
        dirconn_error_clear(&herr);
        enum scim_outcome o = c->opts.outcome(c->opts.configure_arg, r->easy, r->url, rc, &herr);
        r->transport_note[0] = '\0';
        if (o == SCIM_OUTCOME_FAIL) {
            r->token_error = herr.code != DIRCONN_OK ? herr.code : DIRCONN_EFAIL;
            snprintf(r->token_message, sizeof(r->token_message), "%s", herr.msg);
        } else if (herr.msg[0] != '\0') {
            snprintf(r->transport_note, sizeof(r->transport_note), "%s", herr.msg);
            r->transport_code = herr.code;
        }
        if (o == SCIM_OUTCOME_RETRY) {
            retry = true;
            delay = 0;
        }
    }
    r->configured = false;
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
        retry = retryable_curl(rc) && !r->resp_overflow;
    } else if (status == 401 && c->opts.token != NULL && !r->token_refreshed) {
        retry = true;
        r->token_refreshed = true;
        r->force_token_refresh = true;
        delay = 0;
    } else if (retryable_status(status)) {
        retry = true;
        char *ra = header_value(r->easy, "Retry-After");
        delay = scim_parse_retry_after(ra, (int64_t)time(NULL));
        free(ra);
    }
    if (retry && r->create && r->token_error == DIRCONN_OK && ambiguous_failure(rc, status)) {
        /* Resending a create could make a second object: the caller looks first. */
        retry = false;
        r->maybe_applied = true;
    }
    if (retry && r->attempts <= c->opts.max_retries) {
        if (delay < 0)
            delay = scim_retry_delay_ms(r->attempts, c->opts.backoff_base_ms,
                                        c->opts.backoff_max_ms, next_random(c));
        if (delay > c->opts.backoff_max_ms * 4)
            delay = c->opts.backoff_max_ms * 4;
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
        dirconn_error_set(&c->unreachable, resp.code, "%s", resp.error);
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
    dirconn_error_clear(&c->unreachable); /* each run tries the cloud again */
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
                                           const json_t *body, const char *if_match, bool create,
                                           scim_done_fn done, void *arg, struct dirconn_error *err)
{
    if (create)
        return scim_submit_create(impl, path, body, done, arg, err);
    return scim_submit(impl, method, path, body, if_match, done, arg, err);
}

static enum dirconn_err client_port_run(void *impl, struct dirconn_error *err)
{
    return scim_run(impl, err);
}

static const struct scim_port_ops client_port_ops = {client_port_submit, client_port_run};

struct scim_port scim_client_port(struct scim_client *c)
{
    return (struct scim_port){&client_port_ops, c};
}

enum dirconn_err scim_port_submit(const struct scim_port *p, const char *method, const char *path,
                                  const json_t *body, const char *if_match, scim_done_fn done,
                                  void *arg, struct dirconn_error *err)
{
    return p->ops->submit(p->impl, method, path, body, if_match, false, done, arg, err);
}

enum dirconn_err scim_port_submit_create(const struct scim_port *p, const char *path,
                                         const json_t *body, scim_done_fn done, void *arg,
                                         struct dirconn_error *err)
{
    return p->ops->submit(p->impl, "POST", path, body, NULL, true, done, arg, err);
}

enum dirconn_err scim_port_run(const struct scim_port *p, struct dirconn_error *err)
{
    return p->ops->run(p->impl, err);
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

enum dirconn_err scim_port_list_all(const struct scim_port *p, const char *path, const char *filter,
                                    const char *attributes, int page_size,
                                    int (*fn)(void *arg, json_t *resource), void *arg,
                                    struct dirconn_error *err)
{
    char *ef = filter != NULL ? scim_url_escape(filter) : NULL;
    char *ea = attributes != NULL ? scim_url_escape(attributes) : NULL;
    if ((filter != NULL && ef == NULL) || (attributes != NULL && ea == NULL)) {
        curl_free(ef);
        curl_free(ea);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    long start = 1;
    char *prev_first = NULL; /* the id of the previous page's first resource */
    for (;;) {
        char url[8192];
        snprintf(url, sizeof(url), "%s%cstartIndex=%ld&count=%d%s%s%s%s", path,
                 strchr(path, '?') != NULL ? '&' : '?', start, page_size, ef ? "&filter=" : "",
                 ef ? ef : "", ea ? "&attributes=" : "", ea ? ea : "");
        struct scim_response resp;
        if (scim_port_request(p, "GET", url, NULL, NULL, &resp) != DIRCONN_OK) {
            e = dirconn_error_set(err, resp.code, "%s", resp.error);
            scim_response_clear(&resp);
            break;
        }
        json_t *resources = json_object_get(resp.body, "Resources");
        json_int_t total = json_integer_value(json_object_get(resp.body, "totalResults"));
        size_t n = json_array_size(resources);
        /* A provider that ignores startIndex (RFC 7644 3.4.2.4) answers the same page again:
         * never loop on it, nor hand its resources to the callback twice. */
        const char *first = json_string_value(json_object_get(json_array_get(resources, 0), "id"));
        if (start > 1 && first != NULL && prev_first != NULL && strcmp(first, prev_first) == 0) {
            e = dirconn_error_set(err, DIRCONN_ECLOUD,
                                  "GET %s: the page at startIndex=%ld starts with the resource %s "
                                  "again: the provider ignores startIndex (RFC 7644 3.4.2.4)",
                                  path, start, first);
            scim_response_clear(&resp);
            break;
        }
        free(prev_first);
        prev_first = first != NULL ? strdup(first) : NULL;
        int stop = 0;
        for (size_t i = 0; i < n && stop == 0; i++)
            stop = fn(arg, json_array_get(resources, i));
        scim_response_clear(&resp);
        if (stop != 0) {
            /* the callback's own error is in err when it set one (code and message kept) */
            e = dirconn_error_stopped(err, DIRCONN_EFAIL, "listing %s stopped", path);
            break;
        }
        start += (long)n;
        if (n == 0 || start > (long)total)
            break;
    }
    free(prev_first);
    curl_free(ef);
    curl_free(ea);
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

enum dirconn_err scim_easy_perform(const struct scim_transport *t, CURL *easy, const char *url,
                                   void (*reset)(void *), void *reset_arg, CURLcode *rc,
                                   struct dirconn_error *err)
{
    dirconn_error_clear(err);
    *rc = CURLE_OK;
    for (int route = 0; route < SCIM_MAX_ROUTES; route++) {
        if (t != NULL && t->configure != NULL) {
            enum dirconn_err e = t->configure(t->arg, easy, url, err);
            if (e != DIRCONN_OK)
                return e;
        }
        if (reset != NULL)
            reset(reset_arg);
        *rc = curl_easy_perform(easy);
        if (t == NULL || t->configure == NULL || t->outcome == NULL)
            return DIRCONN_OK;
        struct dirconn_error herr;
        dirconn_error_clear(&herr);
        enum scim_outcome o = t->outcome(t->arg, easy, url, *rc, &herr);
        if (o == SCIM_OUTCOME_FAIL)
            return dirconn_error_set(err, herr.code != DIRCONN_OK ? herr.code : DIRCONN_EFAIL, "%s",
                                     herr.msg);
        dirconn_error_clear(err);
        if (*rc != CURLE_OK && herr.msg[0] != '\0')
            dirconn_error_set(err, herr.code != DIRCONN_OK ? herr.code : DIRCONN_ECLOUD_CONNECT,
                              "%s", herr.msg);
        if (o != SCIM_OUTCOME_RETRY)
            break;
    }
    return DIRCONN_OK;
}
