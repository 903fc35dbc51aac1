/*
 * lease_cloud.c - the HA lease kept by the reference cloud's control API
 * (docs/cloud-api.md "Lease", "Fencing", "Connector state"): GET/PUT
 * /v1/orgs/<org>/lease with If-Match on resourceVersion, the fencing token
 * leaseTransitions, and the connector-state document GET/PUT /state.
 *
 * Requests go through the control API client (connector/control.h) with the
 * connector's own OAuth token and the proxy seam, like every cloud request.
 */
/* strptime (XSI) and timegm (BSD, glibc, POSIX.1-2024): both on every platform we build on. */
#undef _POSIX_C_SOURCE
#define _XOPEN_SOURCE   700
#define _DEFAULT_SOURCE 1
#include "connector/cloud_auth.h"
#include "connector/control.h"
#include "connector/core/secret_store.h"
#include "ha/lease.h"
#include "proxy/proxy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cloud_lease {
    const struct config *cfg;
    const struct log_sink *log;
    struct proxy_ctx *proxy;
    struct proxy_shared *proxy_shared; /* borrowed, or NULL */
    struct config *proxy_cfg;          /* the [proxy] settings of the last reconfigure, or NULL */
    struct cloud_auth *auth;
    struct control_options co;
    const char *id;  /* the backend's identity (struct lease_backend) */
    char *version;   /* resourceVersion after our last successful PUT, for renewals */
    int64_t timeout; /* ms per request */
};

/* Milliseconds since the epoch of an RFC 3339 time in UTC as the cloud writes it
 * ("2026-11-22T00:04:53.123Z"), or -1. Both times compared come from the server. */
static int64_t rfc3339_ms(const char *s)
{
    if (s == NULL)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    int64_t ms = 0;
    if (*rest == '.') {
        int64_t scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
            ms += (*rest - '0') * scale;
            scale /= 10;
        }
    }
    if (*rest != 'Z' && *rest != 'z')
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static char *dup_json_string(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? strdup(s) : NULL;
}

enum dirconn_err lease_cloud_parse(const struct control_response *r, struct lease_info *out,
                                   struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    json_t *b = r->body;
    if (!json_is_object(b))
        return dirconn_error_set(err, DIRCONN_ECLOUD, "lease: the answer is not a JSON object");
    out->holder = dup_json_string(b, "holderIdentity");
    out->token = (int64_t)json_integer_value(json_object_get(b, "leaseTransitions"));
    out->version = dup_json_string(b, "resourceVersion");
    out->acquired_at = dup_json_string(b, "acquireTime");
    out->renewed_at = dup_json_string(b, "renewTime");
    /* [ha] lease_duration is at most an hour: a day bounds what any holder can have asked for */
    json_int_t secs = json_integer_value(json_object_get(b, "leaseDurationSeconds"));
    int64_t dur = (secs < 0 ? 0 : secs > 86400 ? 86400 : (int64_t)secs) * 1000;
    if (out->holder != NULL) {
        out->duration_ms = dur;
        int64_t renewed = rfc3339_ms(out->renewed_at);
        int64_t now = rfc3339_ms(json_string_value(json_object_get(b, "serverTime")));
        bool expired = json_is_true(json_object_get(b, "expired"));
        if (!expired && renewed >= 0 && now >= 0 && renewed + dur > now)
            out->remaining_ms = renewed + dur - now;
        else if (!expired && (renewed < 0 || now < 0))
            out->remaining_ms = dur; /* no server times: assume a full term (conservative) */
    }
    if (out->version == NULL && r->etag != NULL) {
        const char *v = r->etag;
        if (strncmp(v, "W/", 2) == 0)
            v += 2;
        size_t n = strlen(v);
        out->version = n >= 2 && v[0] == '"' ? strndup(v + 1, n - 2) : strdup(v);
    }
    return DIRCONN_OK;
}

static bool transient(enum dirconn_err e, long status)
{
    return e == DIRCONN_ECLOUD_CONNECT || status == 429 || status == 500 || status == 502 ||
           status == 503 || status == 504;
}

/*
 * One control API request with the connector's token; a 401 refreshes it once;
 * 429, 5xx and connection failures are tried again twice after 100 and 300 ms
 * (the election has its own deadline; a lease request never waits long),
 * except a fenced write (fencing set): it is sent once, and its caller asks
 * whether it may still write before it tries again (ha_shared_export). A
 * timeout may come after the cloud took the request: a resend after the
 * instance lost its lease is a write it knows it must not make.
 * *retried tells whether an earlier attempt may have been applied.
 */
static enum dirconn_err call_r(struct cloud_lease *cl, const char *method, const char *path,
                               const json_t *body, const char *if_match, const char *fencing,
                               struct control_response *r, bool *retried, struct dirconn_error *err)
{
    memset(r, 0, sizeof(*r));
    *retried = false;
    bool refreshed = false;
    enum dirconn_err e = DIRCONN_ECLOUD_AUTH;
    for (int attempt = 0; attempt < 4; attempt++) {
        char *tok = NULL;
        e = cloud_auth_token(cl->auth, refreshed, &tok, err);
        if (e != DIRCONN_OK)
            return e;
        struct control_options co = cl->co;
        co.fencing_token = fencing;
        control_response_clear(r);
        e = control_request(&co, tok, method, path, body, if_match, r, err);
        secret_free(tok);
        if (r->status == 401 && !refreshed) {
            refreshed = true;
            continue;
        }
        if (!transient(e, r->status) || attempt >= 2 || fencing != NULL)
            return e;
        *retried = true;
        struct timespec ts = {0, (attempt == 0 ? 100 : 300) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return e;
}

static enum dirconn_err call(struct cloud_lease *cl, const char *method, const char *path,
                             const json_t *body, const char *if_match, const char *fencing,
                             struct control_response *r, struct dirconn_error *err)
{
    bool retried;
    return call_r(cl, method, path, body, if_match, fencing, r, &retried, err);
}

static enum dirconn_err cl_observe(void *self, struct lease_info *out, struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    struct control_response r;
    enum dirconn_err e = call(cl, "GET", "lease", NULL, NULL, NULL, &r, err);
    if (e == DIRCONN_OK)
        e = lease_cloud_parse(&r, out, err);
    control_response_clear(&r);
    return e;
}

/* PUT lease naming this instance (acquire or renew) under If-Match "<version>". */
static enum dirconn_err put_self(struct cloud_lease *cl, const char *version, int64_t duration_ms,
                                 struct lease_info *out, long *status, struct dirconn_error *err)
{
    json_t *body = json_pack("{s:s, s:I}", "holderIdentity", cl->id, "leaseDurationSeconds",
                             (json_int_t)((duration_ms + 999) / 1000));
    if (body == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    char im[80];
    snprintf(im, sizeof(im), "\"%s\"", version != NULL ? version : "0");
    struct control_response r;
    enum dirconn_err e = call(cl, "PUT", "lease", body, im, NULL, &r, err);
    json_decref(body);
    *status = r.status;
    if (e == DIRCONN_OK) {
        e = lease_cloud_parse(&r, out, err);
        if (e == DIRCONN_OK) {
            free(cl->version);
            cl->version = out->version != NULL ? strdup(out->version) : NULL;
        }
    } else if (r.status == 409 || r.status == 412) {
        e = DIRCONN_ELEASE; /* the message of control_request names the cause */
        err->code = DIRCONN_ELEASE;
    }
    control_response_clear(&r);
    return e;
}

static enum dirconn_err cl_acquire(void *self, const struct lease_info *seen, int64_t duration_ms,
                                   struct lease_info *out, struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    long status = 0;
    enum dirconn_err e = put_self(cl, seen->version, duration_ms, out, &status, err);
    if (e != DIRCONN_ELEASE || status != 412)
        return e;
    /* A 412 after a PUT whose answer was lost: did that PUT make this instance the holder? */
    struct lease_info now = {0};
    struct dirconn_error oerr;
    if (cl_observe(cl, &now, &oerr) == DIRCONN_OK && now.holder != NULL &&
        strcmp(now.holder, cl->id) == 0 && now.remaining_ms > 0 &&
        (seen->holder == NULL || strcmp(seen->holder, cl->id) != 0)) {
        free(cl->version);
        cl->version = now.version != NULL ? strdup(now.version) : NULL;
        *out = now;
        dirconn_error_clear(err);
        return DIRCONN_OK;
    }
    lease_info_clear(&now);
    return e;
}

static enum dirconn_err cl_renew(void *self, int64_t duration_ms, struct lease_info *out,
                                 struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    long status = 0;
    enum dirconn_err e = put_self(cl, cl->version, duration_ms, out, &status, err);
    if (e != DIRCONN_ELEASE || status != 412)
        return e;
    /* The version moved (an operator, a PUT whose answer was lost): is it still ours? */
    struct lease_info now = {0};
    e = cl_observe(cl, &now, err);
    if (e == DIRCONN_OK &&
        (now.holder == NULL || strcmp(now.holder, cl->id) != 0 || now.remaining_ms <= 0))
        e = dirconn_error_set(err, DIRCONN_ELEASE, "the lease is now held by %s",
                              now.holder != NULL ? now.holder : "nobody");
    if (e == DIRCONN_OK)
        e = put_self(cl, now.version, duration_ms, out, &status, err);
    lease_info_clear(&now);
    return e;
}

static enum dirconn_err cl_release(void *self, struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *tok = NULL;
        enum dirconn_err e = cloud_auth_token(cl->auth, attempt > 0, &tok, err);
        if (e != DIRCONN_OK)
            return e;
        bool released = false;
        e = control_lease_release(&cl->co, tok, cl->id, &released, err);
        secret_free(tok);
        if (e != DIRCONN_ECLOUD_AUTH || attempt > 0)
            return e;
    }
    return DIRCONN_ECLOUD_AUTH;
}

static enum dirconn_err cl_state_get(void *self, json_t **doc, char **version,
                                     struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    *doc = NULL;
    *version = NULL;
    struct control_response r;
    enum dirconn_err e = call(cl, "GET", "state", NULL, NULL, NULL, &r, err);
    if (e == DIRCONN_OK) {
        *doc = r.body != NULL ? json_incref(r.body) : json_object();
        *version = r.etag != NULL ? strdup(r.etag) : NULL;
    }
    control_response_clear(&r);
    return e;
}

static enum dirconn_err cl_state_put(void *self, const json_t *doc, const char *version,
                                     int64_t token, struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    char fencing[32];
    snprintf(fencing, sizeof(fencing), "%" PRId64, token);
    struct control_response r;
    enum dirconn_err e =
        call(cl, "PUT", "state", doc, version != NULL ? version : "*", fencing, &r, err);
    if (e != DIRCONN_OK && r.status == 409 &&
        strcmp(json_string_value(json_object_get(r.body, "error")) != NULL
                   ? json_string_value(json_object_get(r.body, "error"))
                   : "",
               "fenced") == 0) {
        e = DIRCONN_ELEASE;
        err->code = DIRCONN_ELEASE;
    }
    control_response_clear(&r);
    return e;
}

static void cl_free(void *self)
{
    struct cloud_lease *cl = self;
    if (cl == NULL)
        return;
    cloud_auth_free(cl->auth);
    proxy_free(cl->proxy);
    config_free(cl->proxy_cfg);
    free(cl->version);
    free(cl);
}

/*
 * Take cfg's [proxy] settings (SIGHUP): a new proxy context, a new OAuth
 * client on it (the token is fetched again through the new route), the
 * control client's seam moved to it. The [cloud] settings stay.
 */
static enum dirconn_err cl_reconfigure(void *self, struct config *cfg, struct dirconn_error *err)
{
    struct cloud_lease *cl = self;
    struct proxy_ctx *proxy = NULL;
    struct cloud_auth *auth = NULL;
    enum dirconn_err e = proxy_new(cfg, cl->log, cl->proxy_shared, &proxy, err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cl->cfg, proxy_configure, proxy, &auth, err);
    if (e != DIRCONN_OK) {
        proxy_free(proxy);
        config_free(cfg);
        return e;
    }
    cloud_auth_set_outcome(auth, proxy_outcome);
    cloud_auth_free(cl->auth);
    proxy_free(cl->proxy);
    config_free(cl->proxy_cfg);
    cl->auth = auth;
    cl->proxy = proxy;
    cl->proxy_cfg = cfg;
    cl->co.configure_arg = proxy;
    return DIRCONN_OK;
}

static const struct lease_backend_ops cloud_ops = {
    .name = "cloud",
    .observe = cl_observe,
    .acquire = cl_acquire,
    .renew = cl_renew,
    .release = cl_release,
    .state_get = cl_state_get,
    .state_put = cl_state_put,
    .free = cl_free,
    .reconfigure = cl_reconfigure,
};

enum dirconn_err lease_backend_cloud_new(const struct config *cfg, const struct log_sink *log,
                                         struct proxy_shared *proxy_shared, int64_t timeout_ms,
                                         struct lease_backend *out, struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    if (cfg->cloud_url == NULL || cfg->cloud_org == NULL)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: [ha] lease = cloud needs [cloud] url and org", cfg->path);
    if (cfg->cloud_auth != CLOUD_AUTH_OAUTH2)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: [ha] lease = cloud needs [cloud] auth = oauth2 (a bearer "
                                 "token names no connector); set [ha] lease = none or etcd",
                                 cfg->path);
    char *id = NULL;
    if (cfg->cloud_client_id != NULL) {
        id = strdup(cfg->cloud_client_id);
        if (id == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    } else {
        enum dirconn_err e = secret_store_get(cfg, SECRET_CONNECTOR_ID, &id, err);
        if (e != DIRCONN_OK)
            return e;
        char *copy = strdup(id);
        secret_store_free_value(id);
        id = copy;
        if (id == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    struct cloud_lease *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        free(id);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    cl->cfg = cfg;
    cl->log = log;
    cl->timeout = timeout_ms;
    cl->proxy_shared = proxy_shared;
    enum dirconn_err e = proxy_new(cfg, log, proxy_shared, &cl->proxy, err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cfg, proxy_configure, cl->proxy, &cl->auth, err);
    if (e != DIRCONN_OK) {
        cl_free(cl);
        free(id);
        return e;
    }
    cloud_auth_set_outcome(cl->auth, proxy_outcome);
    control_options_from_config(cfg, &cl->co);
    cl->co.timeout_ms = timeout_ms;
    cl->co.configure = proxy_configure;
    cl->co.outcome = proxy_outcome;
    cl->co.configure_arg = cl->proxy;
    out->ops = &cloud_ops;
    out->self = cl;
    out->identity = id;
    out->cloud_fencing = true;
    cl->id = out->identity;
    return DIRCONN_OK;
}
