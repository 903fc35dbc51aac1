/* cloud_http.c - the router of dirconn-cloud: evhttp server, TLS, request parsing, the
 * "before" faults, and dispatch to the control API and SCIM handlers.
 *
 * Threads. The event loop thread (main.c's event_base_dispatch) accepts connections, parses
 * every request (on_request) and answers everything but SCIM itself: the control API
 * (/v1/..., lease acquire/renew/release, state, reports), /oauth/token, /healthz, and every
 * error found before routing. It owns evhttp, the fault injector and ctx->store.
 *
 * SCIM requests (/scim/...) are queued for the SCIM thread (scim_main), which processes them
 * one at a time in arrival order, with its own SQLite connection (ctx->scim.store; WAL and a
 * busy timeout: the two connections' writes wait for each other, reads never do). A request
 * handed over is not touched by the loop thread until it comes back: the SCIM thread reads
 * its private copies (path segments, query, body, request headers copied at arrival), writes
 * the answer's headers into req->out_headers and formats the body (cloud_reply_send), then
 * puts the request on the done list and activates ctx->scim.done_ev (event_active, which
 * needs evthread_use_pthreads, main.c). On the loop thread, scim_done sends the answers
 * (cloud_reply_deliver: "after" faults, log line, evhttp_send_reply). So a long SCIM request
 * (a PATCH of a large group, a stall fault) delays the SCIM requests behind it, as one SCIM
 * service would, but never the control API: the lease is renewed meanwhile. A control API
 * write waits (busy timeout, 5 s) only while a SCIM write transaction commits.
 *
 * Shutdown (cloud_http_stop): stop is set and the SCIM thread joined (a stall ends at
 * once; a request being processed is finished), then the requests still queued or done are
 * freed unanswered, before evhttp_free closes their connections. */
#include "cloud/cloud_http.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cloud/cloud_control.h"
#include "cloud/cloud_reply.h"
#include "cloud/cloud_scim.h"

/* --- routing ----------------------------------------------------------------------------- */

static void scim_enqueue(struct cloud_req *req);

static void run_request(struct cloud_req *req)
{
    if (req->nsegs == 2 && strcmp(req->segs[0], "oauth") == 0 &&
        strcmp(req->segs[1], "token") == 0) {
        cloud_control_oauth_token(req);
        return;
    }
    if (req->nsegs >= 3 && strcmp(req->segs[0], "scim") == 0 && strcmp(req->segs[1], "v2") == 0) {
        scim_enqueue(req);
        return;
    }
    if (req->nsegs >= 3 && strcmp(req->segs[0], "v1") == 0 && strcmp(req->segs[1], "orgs") == 0) {
        cloud_control_handle(req);
        return;
    }
    if (req->nsegs == 2 && strcmp(req->segs[0], "v1") == 0 && strcmp(req->segs[1], "orgs") == 0) {
        cloud_control_orgs(req);
        return;
    }
    if (req->nsegs == 2 && strcmp(req->segs[0], "v1") == 0 && strcmp(req->segs[1], "faults") == 0) {
        cloud_control_faults(req);
        return;
    }
    if (req->nsegs == 1 && strcmp(req->segs[0], "healthz") == 0) {
        cloud_reply_send(req, 200, json_pack("{s:s}", "status", "ok"), "application/json");
        return;
    }
    cloud_reply_error(req, 404, "notFound", "no such endpoint");
}

static void delayed_unlink(struct cloud_req *req)
{
    if (req->dprev != NULL)
        req->dprev->dnext = req->dnext;
    else
        req->ctx->delayed = req->dnext;
    if (req->dnext != NULL)
        req->dnext->dprev = req->dprev;
    req->dnext = req->dprev = NULL;
}

static void delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cloud_req *req = arg;
    delayed_unlink(req);
    event_free(req->delay);
    req->delay = NULL;
    run_request(req);
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "?";
    }
}

/* Split the raw path into percent-decoded segments; rejects NUL, "/", "." and "..". */
static int split_segments(struct cloud_req *req, const char *path)
{
    const char *p = path;
    if (*p != '/')
        return -1;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, '/');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (req->nsegs == CLOUD_MAX_SEGS)
            return -1;
        char *raw = strndup(p, n);
        if (raw == NULL)
            return -1;
        size_t outlen = 0;
        char *dec = evhttp_uridecode(raw, 0, &outlen);
        free(raw);
        if (dec == NULL)
            return -1;
        req->segs[req->nsegs++] = dec;
        if (outlen != strlen(dec) || strchr(dec, '/') != NULL || strcmp(dec, ".") == 0 ||
            strcmp(dec, "..") == 0 || outlen == 0)
            return -1;
        p += n;
    }
    return 0;
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct cloud_ctx *ctx = arg;
    struct cloud_req *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        evhttp_send_error(ev, 500, "out of memory");
        return;
    }
    req->ctx = ctx;
    req->ev = ev;
    req->start_ns = cloud_reply_clock_ns();
    /* answers go out in one piece: no Nagle delay against the client's delayed ACK */
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    req->method = evhttp_request_get_command(ev);
    req->method_name = method_name(req->method);
    req->st = &ctx->store;
    TAILQ_INIT(&req->query);
    TAILQ_INIT(&req->in_headers);
    TAILQ_INIT(&req->out_headers);
    struct evkeyval *h;
    TAILQ_FOREACH(h, evhttp_request_get_input_headers(ev), next)
    evhttp_add_header(&req->in_headers, h->key, h->value);
    const char *uri = evhttp_request_get_uri(ev);
    req->raw_path = strdup(uri != NULL ? uri : "?");
    char *q = req->raw_path != NULL ? strchr(req->raw_path, '?') : NULL;
    if (q != NULL)
        *q = '\0'; /* log the path only: queries may be long */
    req->body = calloc(1, 1);
    if (req->raw_path == NULL || req->body == NULL) {
        evhttp_send_error(ev, 500, "out of memory");
        free(req->raw_path);
        free(req->body);
        free(req);
        return;
    }
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(ev);
    const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
    if (path == NULL || split_segments(req, path) != 0) {
        cloud_reply_error(req, 404, "notFound", "invalid path");
        return;
    }
    const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
    if (query != NULL && evhttp_parse_query_str(query, &req->query) != 0) {
        cloud_reply_error(req, 400, "invalidSyntax", "malformed query string");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t len = evbuffer_get_length(in);
    bool bulk = cloud_reply_is_scim(req) && req->nsegs == 4 && strcmp(req->segs[3], "Bulk") == 0;
    long limit = bulk ? ctx->cfg.bulk_max_payload : ctx->cfg.max_body;
    if ((long long)len > (long long)limit) {
        cloud_reply_error(req, 413, "tooLarge",
                          "request body of %zu bytes exceeds the limit of %ld", len, limit);
        return;
    }
    if (len > 0) {
        free(req->body);
        req->body = malloc(len + 1);
        if (req->body == NULL) {
            req->body = calloc(1, 1);
            cloud_reply_error(req, 500, "internal", "out of memory");
            return;
        }
        evbuffer_copyout(in, req->body, len);
        req->body[len] = '\0';
        req->body_len = len;
    }
    bool oauth = req->nsegs == 2 && strcmp(req->segs[0], "oauth") == 0;
    req->faultable =
        cloud_reply_is_scim(req) ||
        (req->nsegs >= 2 && strcmp(req->segs[0], "v1") == 0 && strcmp(req->segs[1], "orgs") == 0) ||
        (oauth && ctx->fault.cfg.oauth);
    if (ctx->fault.cfg.scim_only && !cloud_reply_is_scim(req))
        req->faultable = false;
    if (ctx->fault.cfg.writes_only &&
        (req->method == EVHTTP_REQ_GET || req->method == EVHTTP_REQ_HEAD))
        req->faultable = false;
    if (req->faultable) {
        long delay_ms = 0;
        enum cloud_fault_action a = cloud_fault_before(&ctx->fault, cloud_now_ms(), &delay_ms);
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld",
                 ctx->fault.cfg.retry_after_s > 0 ? ctx->fault.cfg.retry_after_s : 1);
        switch (a) {
        case CLOUD_FAULT_429:
            req->faultable = false;
            cloud_reply_header(req, "Retry-After", ra);
            cloud_reply_error(req, 429, "tooManyRequests", "injected fault: throttled");
            return;
        case CLOUD_FAULT_500:
            req->faultable = false;
            cloud_reply_error(req, 500, "injectedFault", "injected fault: not applied");
            return;
        case CLOUD_FAULT_503:
            req->faultable = false;
            cloud_reply_header(req, "Retry-After", ra);
            cloud_reply_error(req, 503, "injectedFault",
                              "injected fault: unavailable, not applied");
            return;
        case CLOUD_FAULT_NONE:
            break;
        }
        if (cloud_reply_is_scim(req))
            req->stall_ms = cloud_fault_stall(&ctx->fault);
        if (delay_ms > 0) {
            req->delay = evtimer_new(ctx->base, delay_done, req);
            if (req->delay != NULL) {
                struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
                evtimer_add(req->delay, &tv);
                req->dnext = ctx->delayed;
                if (ctx->delayed != NULL)
                    ctx->delayed->dprev = req;
                ctx->delayed = req;
                return;
            }
        }
    }
    run_request(req);
}

/* --- the SCIM thread ---------------------------------------------------------------------- */

/* SCIM thread: req is answered (cloud_reply_send); the loop thread sends it. */
static void scim_answered(struct cloud_req *req)
{
    struct cloud_scim_thread *w = &req->ctx->scim;
    pthread_mutex_lock(&w->lock);
    req->qnext = NULL;
    if (w->done_tail != NULL)
        w->done_tail->qnext = req;
    else
        w->done = req;
    w->done_tail = req;
    pthread_mutex_unlock(&w->lock);
    event_active(w->done_ev, EV_READ, 0);
}

/* Loop thread: send the answers the SCIM thread finished, in the order it finished them. */
static void scim_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cloud_scim_thread *w = arg;
    pthread_mutex_lock(&w->lock);
    struct cloud_req *list = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (list != NULL) {
        struct cloud_req *req = list;
        list = req->qnext;
        cloud_reply_deliver(req);
    }
}

/* Loop thread: hand a SCIM request to the SCIM thread (processed after those queued before). */
static void scim_enqueue(struct cloud_req *req)
{
    struct cloud_scim_thread *w = &req->ctx->scim;
    req->st = &w->store;
    req->answered = scim_answered;
    req->qnext = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->queue_tail != NULL)
        w->queue_tail->qnext = req;
    else
        w->queue = req;
    w->queue_tail = req;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* SCIM thread, lock held: wait ms milliseconds (the stall fault) unless stop is set. */
static void scim_stall(struct cloud_scim_thread *w, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
        ;
}

static void *scim_main(void *arg)
{
    struct cloud_ctx *ctx = arg;
    struct cloud_scim_thread *w = &ctx->scim;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && w->queue == NULL)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->stop)
            break;
        struct cloud_req *req = w->queue;
        if (req->stall_ms > 0) {
            scim_stall(w, req->stall_ms);
            req->stall_ms = 0;
            continue; /* stop may have come meanwhile; req is still first in the queue */
        }
        w->queue = req->qnext;
        if (w->queue == NULL)
            w->queue_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        cloud_scim_handle(req); /* ends in cloud_reply_send -> scim_answered */
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Open the SCIM thread's SQLite connection and start it. */
static int scim_thread_start(struct cloud_ctx *ctx, char *msg, size_t msglen)
{
    struct cloud_scim_thread *w = &ctx->scim;
    struct dirconn_error err = {0};
    if (cloud_store_open(&w->store, ctx->cfg.db_path, ctx->cfg.db_sync_full, &err) != DIRCONN_OK) {
        snprintf(msg, msglen, "%s", err.msg);
        return -1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0 || pthread_mutex_init(&w->lock, NULL) != 0) {
        snprintf(msg, msglen, "cannot create the SCIM thread's lock");
        return -1;
    }
    w->done_ev = event_new(ctx->base, -1, 0, scim_done, w);
    if (w->done_ev == NULL || pthread_create(&w->thread, NULL, scim_main, ctx) != 0) {
        snprintf(msg, msglen, "cannot start the SCIM thread");
        return -1;
    }
    w->started = true;
    return 0;
}

static void free_list(struct cloud_req *req)
{
    while (req != NULL) {
        struct cloud_req *next = req->qnext;
        cloud_reply_free(req); /* its evhttp request goes with evhttp_free */
        req = next;
    }
}

static void scim_thread_stop(struct cloud_ctx *ctx)
{
    struct cloud_scim_thread *w = &ctx->scim;
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->started = false;
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    free_list(w->queue);
    free_list(w->done);
    w->queue = w->queue_tail = w->done = w->done_tail = NULL;
    if (w->done_ev != NULL)
        event_free(w->done_ev);
    w->done_ev = NULL;
    cloud_store_close(&w->store);
}

/* --- server setup ------------------------------------------------------------------------ */

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct cloud_ctx *ctx = arg;
    SSL *ssl = SSL_new(ctx->ssl);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static int parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        snprintf(host, hostlen, "%.*s", (int)(rb - listen - 1), listen + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return -1;
        snprintf(host, hostlen, "%.*s", (int)(colon - listen), listen);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535 || colon[1] == '\0')
        return -1;
    *port = (int)p;
    return 0;
}

int cloud_http_start(struct cloud_ctx *ctx, char *msg, size_t msglen)
{
    char host[128];
    int port;
    if (parse_listen(ctx->cfg.listen, host, sizeof(host), &port) != 0) {
        snprintf(msg, msglen, "--listen %s: expected HOST:PORT or [V6]:PORT", ctx->cfg.listen);
        return -1;
    }
    if (!ctx->cfg.insecure_http) {
        ctx->ssl = SSL_CTX_new(TLS_server_method());
        if (ctx->ssl == NULL) {
            snprintf(msg, msglen, "SSL_CTX_new failed");
            return -1;
        }
        SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION);
        if (SSL_CTX_use_certificate_chain_file(ctx->ssl, ctx->cfg.tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx->ssl, ctx->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx->ssl) != 1) {
            unsigned long e = ERR_get_error();
            snprintf(msg, msglen, "TLS certificate %s / key %s: %s", ctx->cfg.tls_cert,
                     ctx->cfg.tls_key,
                     ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) : "unusable");
            return -1;
        }
    }
    if (scim_thread_start(ctx, msg, msglen) != 0)
        return -1;
    ctx->http = evhttp_new(ctx->base);
    if (ctx->http == NULL) {
        snprintf(msg, msglen, "evhttp_new failed");
        return -1;
    }
    /* evhttp refuses a body over its own limit with a plain 413 before the request reaches
     * the handler; with twice the larger limit, a body up to that size gets the SCIM (or
     * control API) 413 of on_request, which names the limit. */
    long max = ctx->cfg.max_body > ctx->cfg.bulk_max_payload ? ctx->cfg.max_body
                                                             : ctx->cfg.bulk_max_payload;
    evhttp_set_max_body_size(ctx->http, (ev_ssize_t)max * 2);
    evhttp_set_max_headers_size(ctx->http, 64 * 1024);
    evhttp_set_timeout(ctx->http, 120);
    evhttp_set_allowed_methods(ctx->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                              EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_HEAD);
    evhttp_set_gencb(ctx->http, on_request, ctx);
    if (ctx->ssl != NULL)
        evhttp_set_bevcb(ctx->http, tls_bevcb, ctx);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(ctx->http, host, (ev_uint16_t)port);
    if (bs == NULL) {
        snprintf(msg, msglen, "cannot listen on %s", ctx->cfg.listen);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            ctx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            ctx->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (ctx->cfg.public_url != NULL) {
        snprintf(ctx->base_url, sizeof(ctx->base_url), "%s", ctx->cfg.public_url);
        size_t n = strlen(ctx->base_url);
        while (n > 0 && ctx->base_url[n - 1] == '/')
            ctx->base_url[--n] = '\0';
    } else {
        bool v6 = strchr(host, ':') != NULL;
        snprintf(ctx->base_url, sizeof(ctx->base_url), "%s://%s%s%s:%d",
                 ctx->ssl != NULL ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
                 ctx->port);
    }
    return 0;
}

void cloud_http_stop(struct cloud_ctx *ctx)
{
    scim_thread_stop(ctx);
    while (ctx->delayed != NULL) {
        struct cloud_req *req = ctx->delayed;
        delayed_unlink(req);
        cloud_reply_free(req); /* its evhttp request goes with evhttp_free below */
    }
    if (ctx->http != NULL)
        evhttp_free(ctx->http);
    ctx->http = NULL;
    if (ctx->ssl != NULL)
        SSL_CTX_free(ctx->ssl);
    ctx->ssl = NULL;
}
