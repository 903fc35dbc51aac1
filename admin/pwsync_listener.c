/* pwsync_listener.c - dirconnd's password change listener (pwsync_listener.h). */
#include "admin/pwsync_listener.h"

#include "connector/core/config.h"
#include "connector/pwsync.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PWSYNC_PATH     "/v1/password-changes"
#define PWSYNC_MAX_BODY 8192

struct job {
    struct job *next;
    struct pwsync_listener *l;
    struct evhttp_request *req; /* NULL once its connection closed (loop thread, under lock) */
    struct pwsync_change ch;
    struct pwsync_role role;
    enum pwsync_outcome outcome;
    char detail[DIRCONN_ERROR_LEN + 64];
};

struct pwsync_listener {
    const struct log_sink *log;
    struct proxy_shared *shared;
    struct config *cfg; /* the listener's own copy */
    struct event_base *base;
    SSL_CTX *ssl;
    struct evhttp *http;
    struct event *ev_done;
    pwsync_role_fn role;
    void *role_arg;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    struct job *pending, *done; /* FIFO lists under lock */
    struct job *inflight;       /* the worker's job, under lock */
};

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    pwsync_change_clear(&j->ch);
    free(j);
}

static void append(struct job **list, struct job *j)
{
    j->next = NULL;
    while (*list != NULL)
        list = &(*list)->next;
    *list = j;
}

/* --- replies (loop thread) ---------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *out = evbuffer_new();
    if (text != NULL && out != NULL)
        evbuffer_add(out, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, reason, out);
    if (out != NULL)
        evbuffer_free(out);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct job *j = arg;
    pthread_mutex_lock(&j->l->lock);
    j->req = NULL;
    pthread_mutex_unlock(&j->l->lock);
}

static void answer_job(struct job *j)
{
    if (j->req == NULL)
        return;
    struct evhttp_connection *evcon = evhttp_request_get_connection(j->req);
    if (evcon != NULL)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    json_t *b = json_pack("{s:s, s:s, s:s}", "result", pwsync_outcome_name(j->outcome), "connector",
                          j->role.self, "detail", j->detail);
    if (j->outcome == PWSYNC_APPLIED)
        reply(j->req, 200, "OK", b);
    else if (pwsync_outcome_final(j->outcome))
        reply(j->req, 422, "Unprocessable Entity", b);
    else
        reply(j->req, 503, "Service Unavailable", b);
    j->req = NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pwsync_listener *l = arg;
    pthread_mutex_lock(&l->lock);
    struct job *list = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->lock);
    while (list != NULL) {
        struct job *j = list;
        list = j->next;
        answer_job(j);
        job_free(j);
    }
}

/* --- the worker --------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct pwsync_listener *l = arg;
    struct pwsync_session *s = NULL;
    char session_token[32] = "";
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (l->pending == NULL && !l->stopping)
            pthread_cond_wait(&l->cond, &l->lock);
        if (l->pending == NULL && l->stopping)
            break;
        struct job *j = l->pending;
        l->pending = j->next;
        l->inflight = j;
        pthread_mutex_unlock(&l->lock);
        if (s != NULL && strcmp(session_token, j->role.fencing_token) != 0) {
            pwsync_session_close(s); /* a new term of office: a new fencing token */
            s = NULL;
        }
        struct dirconn_error err;
        dirconn_error_clear(&err);
        if (s == NULL &&
            pwsync_session_open(l->cfg, l->log, l->shared,
                                j->role.fencing_token[0] != '\0' ? j->role.fencing_token : NULL,
                                j->role.write_deadline_ms, &s, &err) != DIRCONN_OK) {
            s = NULL;
            j->outcome = PWSYNC_FAILED;
            snprintf(j->detail, sizeof(j->detail), "%s", err.msg);
            log_msg(l->log, LOG_LEVEL_WARN, "password change for %s not applied (failed): %s",
                    j->ch.dn != NULL ? j->ch.dn : j->ch.guid, err.msg);
        } else {
            snprintf(session_token, sizeof(session_token), "%s", j->role.fencing_token);
            j->outcome = pwsync_session_apply(s, &j->ch, j->detail, sizeof(j->detail));
        }
        OPENSSL_cleanse(j->ch.password, j->ch.len); /* no longer needed */
        pthread_mutex_lock(&l->lock);
        l->inflight = NULL;
        append(&l->done, j);
        event_active(l->ev_done, EV_READ, 0);
        if (l->pending == NULL && s != NULL) {
            /* idle: let go of the state database and the cloud connection */
            pthread_mutex_unlock(&l->lock);
            pwsync_session_close(s);
            s = NULL;
            pthread_mutex_lock(&l->lock);
        }
    }
    pthread_mutex_unlock(&l->lock);
    pwsync_session_close(s);
    return NULL;
}

/* --- requests (loop thread) --------------------------------------------------------------- */

/* Copy the request body out and wipe evbuffer's copy of it. NULL when too large. */
static char *take_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *buf = n <= PWSYNC_MAX_BODY ? malloc(n + 1) : NULL;
    if (buf != NULL) {
        evbuffer_copyout(in, buf, n);
        buf[n] = '\0';
    }
    int nv = evbuffer_peek(in, -1, NULL, NULL, 0);
    if (nv > 0) {
        struct evbuffer_iovec *v = calloc((size_t)nv, sizeof(*v));
        if (v != NULL) {
            evbuffer_peek(in, -1, NULL, v, nv);
            for (int i = 0; i < nv; i++)
                OPENSSL_cleanse(v[i].iov_base, v[i].iov_len);
            free(v);
        }
    }
    evbuffer_drain(in, n);
    *len = n;
    return buf;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct pwsync_listener *l = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL || strcmp(path, PWSYNC_PATH) != 0) {
        reply(req, 404, "Not Found",
              json_pack("{s:s, s:s}", "result", "error", "detail", "no such endpoint"));
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply(req, 405, "Method Not Allowed",
              json_pack("{s:s, s:s}", "result", "error", "detail", "use POST"));
        return;
    }
    size_t len = 0;
    char *body = take_body(req, &len);
    struct job *j = calloc(1, sizeof(*j));
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err e =
        body == NULL ? dirconn_error_set(&err, DIRCONN_EFAIL, "the body is larger than %d bytes",
                                         PWSYNC_MAX_BODY)
        : j == NULL  ? dirconn_error_set(&err, DIRCONN_ENOMEM, "out of memory")
                     : pwsync_change_parse(body, len, &j->ch, &err);
    if (body != NULL) {
        OPENSSL_cleanse(body, len);
        free(body);
    }
    if (e != DIRCONN_OK) {
        log_msg(l->log, LOG_LEVEL_WARN, "password change request refused: %s", err.msg);
        reply(req, 400, "Bad Request",
              json_pack("{s:s, s:s}", "result", "error", "detail", err.msg));
        job_free(j);
        return;
    }
    j->l = l;
    l->role(l->role_arg, &j->role);
    if (!j->role.active) {
        log_msg(l->log, LOG_LEVEL_INFO,
                "password change for %s: this instance is a standby; the active one is %s",
                j->ch.dn != NULL ? j->ch.dn : j->ch.guid,
                j->role.holder[0] != '\0' ? j->role.holder : "unknown");
        reply(req, 409, "Conflict",
              json_pack("{s:s, s:s, s:s?, s:s}", "result", "standby", "connector", j->role.self,
                        "active", j->role.holder[0] != '\0' ? j->role.holder : NULL, "detail",
                        "this connector is a standby; send the change to the active one"));
        job_free(j);
        return;
    }
    j->req = req;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_conn_close, j);
    pthread_mutex_lock(&l->lock);
    append(&l->pending, j);
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* --- setup -------------------------------------------------------------------------------- */

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct pwsync_listener *l = arg;
    SSL *ssl = SSL_new(l->ssl);
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
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

static enum dirconn_err tls_setup(struct pwsync_listener *l, struct dirconn_error *err)
{
    const struct config *c = l->cfg;
    l->ssl = SSL_CTX_new(TLS_server_method());
    if (l->ssl == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(l->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(l->ssl, SSL_OP_NO_RENEGOTIATION);
    const char *what = NULL, *file = NULL;
    if (SSL_CTX_use_certificate_chain_file(l->ssl, c->pwsync_tls_cert) != 1)
        what = "tls_cert", file = c->pwsync_tls_cert;
    else if (SSL_CTX_use_PrivateKey_file(l->ssl, c->pwsync_tls_key, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(l->ssl) != 1)
        what = "tls_key", file = c->pwsync_tls_key;
    else if (SSL_CTX_load_verify_locations(l->ssl, c->pwsync_client_ca, NULL) != 1)
        what = "client_ca", file = c->pwsync_client_ca;
    if (what != NULL) {
        unsigned long e = ERR_get_error();
        const char *r = ERR_reason_error_string(e);
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: [pwsync] %s %s: %s", c->path, what,
                                 file, r != NULL ? r : "unusable");
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->pwsync_client_ca);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(l->ssl, names);
    /* mutual TLS: a client without a certificate signed by client_ca fails the handshake */
    SSL_CTX_set_verify(l->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return DIRCONN_OK;
}

enum dirconn_err pwsync_listener_start(struct event_base *base, const char *config_path,
                                       const struct log_sink *log, struct proxy_shared *shared,
                                       pwsync_role_fn role, void *role_arg,
                                       struct pwsync_listener **out, struct dirconn_error *err)
{
    *out = NULL;
    struct config *cfg = NULL;
    enum dirconn_err e = config_load(config_path, &cfg, err);
    if (e != DIRCONN_OK)
        return e;
    if (cfg->pwsync_listen == NULL) {
        config_free(cfg);
        return DIRCONN_OK;
    }
    struct pwsync_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        config_free(cfg);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    l->cfg = cfg;
    l->log = log;
    l->shared = shared;
    l->base = base;
    l->role = role;
    l->role_arg = role_arg;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    char host[128];
    int port = 0;
    if (parse_listen(cfg->pwsync_listen, host, sizeof(host), &port) != 0)
        e = dirconn_error_set(err, DIRCONN_ECONFIG,
                              "%s: [pwsync] listen %s: expected HOST:PORT or [V6]:PORT", cfg->path,
                              cfg->pwsync_listen);
    if (e == DIRCONN_OK)
        e = tls_setup(l, err);
    if (e == DIRCONN_OK && ((l->http = evhttp_new(base)) == NULL ||
                            (l->ev_done = event_new(base, -1, 0, on_done, l)) == NULL))
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct evhttp_bound_socket *bs = NULL;
    if (e == DIRCONN_OK) {
        evhttp_set_max_body_size(l->http, PWSYNC_MAX_BODY * 2);
        evhttp_set_max_headers_size(l->http, 16 * 1024);
        evhttp_set_timeout(l->http, 120);
        evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                EVHTTP_REQ_DELETE);
        evhttp_set_gencb(l->http, on_request, l);
        evhttp_set_bevcb(l->http, tls_bevcb, l);
        bs = evhttp_bind_socket_with_handle(l->http, host, (ev_uint16_t)port);
        if (bs == NULL)
            e = dirconn_error_set(err, DIRCONN_EIO, "[pwsync] listen %s: cannot listen there",
                                  cfg->pwsync_listen);
    }
    if (e == DIRCONN_OK) {
        if (pthread_create(&l->worker, NULL, worker_main, l) != 0)
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "cannot start the password worker");
        else
            l->worker_started = true;
    }
    if (e != DIRCONN_OK) {
        pwsync_listener_stop(l);
        return e;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    bool v6 = strchr(host, ':') != NULL;
    log_msg(log, LOG_LEVEL_INFO, "password listener on %s%s%s:%d (mutual TLS)", v6 ? "[" : "", host,
            v6 ? "]" : "", port);
    *out = l;
    return DIRCONN_OK;
}

void pwsync_listener_stop(struct pwsync_listener *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    struct job *waiting = l->pending; /* not started: answered 503 */
    l->pending = NULL;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    if (l->worker_started)
        pthread_join(l->worker, NULL);
    on_done(-1, 0, l); /* the one in flight */
    while (waiting != NULL) {
        struct job *j = waiting;
        waiting = j->next;
        j->outcome = PWSYNC_FAILED;
        snprintf(j->detail, sizeof(j->detail), "the connector is stopping");
        answer_job(j);
        job_free(j);
    }
    if (l->http != NULL)
        evhttp_free(l->http);
    if (l->ev_done != NULL)
        event_free(l->ev_done);
    if (l->ssl != NULL)
        SSL_CTX_free(l->ssl);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    config_free(l->cfg);
    free(l);
}
