/* net/http.c - the one HTTP client of dirconn on libcurl (see http.h). */
#include "connector/net/http.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the response body ---------------------------------------------------------------------- */

void http_body_init(struct http_body *b, size_t max, bool wipe)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
    b->wipe = wipe;
}

void http_body_reset(struct http_body *b)
{
    if (b->wipe && b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    b->len = 0;
    b->overflow = b->truncated = false;
    b->completed = false;
}

void http_body_free(struct http_body *b)
{
    if (b->data != NULL && b->wipe)
        OPENSSL_cleanse(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->overflow = b->completed = false;
}

size_t http_body_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_body *b = userp;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->max) {
        if (!b->keep_head) {
            b->overflow = true;
            return 0;
        }
        b->truncated = true;
        size_t room = b->max > b->len + 1 ? b->max - b->len - 1 : 0;
        if (room == 0)
            return n; /* the head is kept: the rest is read and dropped */
        return http_body_write(data, 1, room, userp) == room ? n : 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d;
        if (b->wipe) {
            /* no realloc: the old block is wiped before it is given back */
            d = malloc(cap);
            if (d == NULL)
                return 0;
            if (b->data != NULL) {
                memcpy(d, b->data, b->len);
                OPENSSL_cleanse(b->data, b->cap);
                free(b->data);
            }
        } else {
            d = realloc(b->data, cap);
            if (d == NULL)
                return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    if (b->complete != NULL && b->complete(b->data, b->len)) {
        b->completed = true;
        return 0; /* the part wanted is in: end the transfer */
    }
    return n;
}

/* ---- response headers ----------------------------------------------------------------------- */

char *http_header_value(CURL *easy, const char *name)
{
    struct curl_header *h = NULL;
    if (easy == NULL || curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
        h == NULL)
        return NULL;
    return strdup(h->value);
}

void http_headers_clear(struct http_headers *h)
{
    free(h->etag);
    free(h->location);
    free(h->retry_after);
    free(h->www_authenticate);
    free(h->proxy_authenticate);
    free(h->content_type);
    memset(h, 0, sizeof(*h));
}

void http_headers_capture(CURL *easy, struct http_headers *h)
{
    http_headers_clear(h);
    h->etag = http_header_value(easy, "ETag");
    h->location = http_header_value(easy, "Location");
    h->retry_after = http_header_value(easy, "Retry-After");
    h->www_authenticate = http_header_value(easy, "WWW-Authenticate");
    h->proxy_authenticate = http_header_value(easy, "Proxy-Authenticate");
    h->content_type = http_header_value(easy, "Content-Type");
}

/* ---- one request ---------------------------------------------------------------------------- */

enum dirconn_err http_request_init(struct http_request *r, size_t body_max, bool wipe,
                                   struct dirconn_error *err)
{
    memset(r, 0, sizeof(*r));
    http_body_init(&r->body, body_max, wipe);
    r->easy = curl_easy_init();
    if (r->easy == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    return DIRCONN_OK;
}

void http_request_cleanup(struct http_request *r)
{
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    http_body_free(&r->body);
    http_headers_clear(&r->headers);
    memset(r, 0, sizeof(*r));
}

void http_request_setup(struct http_request *r, const struct http_options *o, const char *url)
{
    CURL *e = r->easy;
    curl_easy_reset(e);
    r->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (o->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
    if (o->accept_encoding)
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (o->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
}

enum dirconn_err http_attempt_begin(struct http_request *r, const struct http_transport *t,
                                    const char *url, struct dirconn_error *err)
{
    http_body_reset(&r->body);
    http_headers_clear(&r->headers);
    r->errbuf[0] = '\0';
    r->rc = CURLE_OK;
    r->status = 0;
    memset(&r->route, 0, sizeof(r->route));
    r->configured = false;
    if (t != NULL && t->configure != NULL) {
        enum dirconn_err e = t->configure(t->arg, r->easy, url, &r->route, err);
        if (e != DIRCONN_OK)
            return e;
        r->configured = true;
    }
    r->attempts++;
    return DIRCONN_OK;
}

enum http_outcome http_attempt_end(struct http_request *r, const struct http_transport *t,
                                   const char *url, CURLcode rc, struct dirconn_error *err)
{
    dirconn_error_clear(err);
    if (rc == CURLE_WRITE_ERROR && r->body.completed)
        rc = CURLE_OK;
    r->rc = rc;
    r->status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    http_headers_capture(r->easy, &r->headers);
    bool configured = r->configured;
    r->configured = false;
    if (!configured || t == NULL || t->outcome == NULL)
        return HTTP_OUTCOME_DEFAULT;
    return t->outcome(t->arg, r->easy, url, rc, &r->route, err);
}

enum dirconn_err http_perform(struct http_request *r, const struct http_transport *t,
                              const char *url, struct dirconn_error *err)
{
    dirconn_error_clear(err);
    for (int route = 0; route < HTTP_MAX_ROUTES; route++) {
        enum dirconn_err e = http_attempt_begin(r, t, url, err);
        if (e != DIRCONN_OK)
            return e;
        CURLcode rc = curl_easy_perform(r->easy);
        bool hooked = r->configured && t != NULL && t->outcome != NULL;
        struct dirconn_error herr;
        enum http_outcome o = http_attempt_end(r, t, url, rc, &herr);
        if (!hooked)
            return DIRCONN_OK;
        if (o == HTTP_OUTCOME_FAIL)
            return dirconn_error_set(err, herr.code != DIRCONN_OK ? herr.code : DIRCONN_EFAIL, "%s",
                                     herr.msg);
        dirconn_error_clear(err);
        if (r->rc != CURLE_OK && herr.msg[0] != '\0')
            dirconn_error_set(err, herr.code != DIRCONN_OK ? herr.code : DIRCONN_ECLOUD_CONNECT,
                              "%s", herr.msg);
        if (o != HTTP_OUTCOME_RETRY)
            break;
    }
    return DIRCONN_OK;
}

/* ---- retries -------------------------------------------------------------------------------- */

bool http_retryable_curl(CURLcode rc)
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

bool http_retryable_status(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool http_maybe_applied(CURLcode rc, long status)
{
    if (rc != CURLE_OK)
        return rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
               rc != CURLE_COULDNT_RESOLVE_PROXY && rc != CURLE_SSL_CONNECT_ERROR;
    return status == 500 || status == 502 || status == 504;
}

int64_t http_retry_delay_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t delay = base_ms;
    for (int i = 1; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    int64_t half = delay / 2;
    return half + (half > 0 ? (int64_t)(rnd % (uint64_t)(delay - half + 1)) : 0);
}

int64_t http_backoff_ms(const struct http_backoff *b, int attempt, int64_t asked_ms, uint32_t rnd)
{
    int64_t delay = asked_ms;
    if (delay < 0)
        delay = http_retry_delay_ms(attempt, b->base_ms, b->max_ms, rnd);
    if (delay > b->max_ms * 4)
        delay = b->max_ms * 4;
    return delay;
}

int64_t http_parse_retry_after(const char *value, int64_t now)
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
