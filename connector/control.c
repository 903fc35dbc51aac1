/* control.c - the connector control API client (libcurl easy + jansson). */
#include "connector/control.h"

#include "connector/net/http.h"
#include "connector/core/secret_store.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (8 * 1024 * 1024)

void control_options_from_config(const struct config *cfg, struct control_options *o)
{
    memset(o, 0, sizeof(*o));
    o->url = cfg->cloud_url;
    o->org = cfg->cloud_org;
    o->ca_file = cfg->cloud_ca_file;
    o->ha_mode = config_ha_lease_name(cfg->ha_lease);
}

void control_response_clear(struct control_response *r)
{
    json_decref(r->body);
    free(r->etag);
    memset(r, 0, sizeof(*r));
}

void control_connector_clear(struct control_connector *c)
{
    free(c->id);
    free(c->name);
    free(c->host);
    free(c->registered_at);
    free(c->version);
    free(c->last_seen);
    memset(c, 0, sizeof(*c));
}

enum dirconn_err control_request(const struct control_options *o, const char *bearer,
                                 const char *method, const char *path, const json_t *body,
                                 const char *if_match, struct control_response *resp,
                                 struct dirconn_error *err)
{
    memset(resp, 0, sizeof(*resp));
    if (o->url == NULL || o->org == NULL)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[cloud] url and org are needed for the control API");
    size_t ulen = strlen(o->url);
    while (ulen > 0 && o->url[ulen - 1] == '/')
        ulen--;
    struct http_request req;
    enum dirconn_err e =
        http_request_init(&req, BODY_MAX, true, NULL); /* bodies may carry a secret */
    CURL *h = req.easy;
    char *eorg = h != NULL ? curl_easy_escape(h, o->org, 0) : NULL;
    size_t urlcap = ulen + strlen(path) + (eorg ? strlen(eorg) : 0) + 32;
    char *url = malloc(urlcap);
    char *payload = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t authcap = strlen(bearer) + 32;
    char *auth = malloc(authcap);
    struct curl_slist *hdrs = NULL;
    if (e != DIRCONN_OK || eorg == NULL || url == NULL || auth == NULL ||
        (body != NULL && payload == NULL)) {
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, urlcap, "%.*s/v1/orgs/%s/%s", (int)ulen, o->url, eorg, path);
    snprintf(auth, authcap, "Authorization: Bearer %s", bearer);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (payload != NULL)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (if_match != NULL) {
        char im[256];
        snprintf(im, sizeof(im), "If-Match: %s", if_match);
        hdrs = curl_slist_append(hdrs, im);
    }
    if (o->ha_mode != NULL) {
        char hm[64];
        snprintf(hm, sizeof(hm), "Dirconn-HA-Mode: %s", o->ha_mode);
        hdrs = curl_slist_append(hdrs, hm);
    }
    if (o->fencing_token != NULL) {
        char ft[96];
        snprintf(ft, sizeof(ft), "Dirconn-Fencing-Token: %s", o->fencing_token);
        hdrs = curl_slist_append(hdrs, ft);
    }
    const struct http_options ho = {.ca_file = o->ca_file,
                                    .timeout_ms = (long)(o->timeout_ms > 0 ? o->timeout_ms : 30000),
                                    .connect_timeout_ms = 10000};
    http_request_setup(&req, &ho, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (payload != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    /* Through the transport seam (net/http.h): the proxy hooks pick the route and may
     * move to the next one when a proxy fails. */
    const struct http_transport t = {o->configure, o->outcome, o->configure_arg};
    struct dirconn_error note;
    e = http_perform(&req, &t, url, &note);
    if (e != DIRCONN_OK) {
        dirconn_error_set(err, e, "%s %s: %s", method, url, note.msg);
        goto out;
    }
    CURLcode rc = req.rc;
    const struct http_body *b = &req.body;
    resp->status = req.status;
    if (req.headers.etag != NULL)
        resp->etag = strdup(req.headers.etag);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && b->overflow)) {
        resp->status = 0;
        if (note.code != DIRCONN_OK)
            e = dirconn_error_set(err, note.code, "%s %s: %s", method, url, note.msg);
        else
            e = dirconn_error_set(err, DIRCONN_ECLOUD_CONNECT, "%s %s: %s (curl %d)", method, url,
                                  req.errbuf[0] ? req.errbuf : curl_easy_strerror(rc), (int)rc);
        dirconn_error_cause(err, DIRCONN_ORIGIN_CURL, (long)rc);
        goto out;
    }
    if (b->overflow) {
        e = dirconn_error_set(err, DIRCONN_ECLOUD, "%s %s: the answer is larger than %d bytes",
                              method, url, BODY_MAX);
        goto out;
    }
    if (b->len > 0) {
        json_error_t jerr;
        resp->body = json_loadb(b->data, b->len, 0, &jerr);
    }
    if (resp->status < 200 || resp->status > 299) {
        const char *code = json_string_value(json_object_get(resp->body, "error"));
        const char *detail = json_string_value(json_object_get(resp->body, "detail"));
        if (detail == NULL)
            detail = json_string_value(json_object_get(resp->body, "error_description"));
        if (resp->status == 409 && code != NULL && strcmp(code, "haModeMismatch") == 0 &&
            detail != NULL) {
            e = dirconn_error_set(err, DIRCONN_EHAMODE, "%s", detail);
            goto out;
        }
        e = dirconn_error_set(
            err, resp->status == 401 || resp->status == 403 ? DIRCONN_ECLOUD_AUTH : DIRCONN_ECLOUD,
            "%s %s: HTTP %ld%s%s%s%s", method, url, resp->status, code ? " " : "", code ? code : "",
            detail ? ": " : "", detail ? detail : "");
        dirconn_error_cause(err, DIRCONN_ORIGIN_HTTP, resp->status);
    } else if (b->len > 0 && resp->body == NULL) {
        e = dirconn_error_set(err, DIRCONN_ECLOUD, "%s %s: HTTP %ld with a body that is not JSON",
                              method, url, resp->status);
    }
out:
    if (auth != NULL) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    for (struct curl_slist *l = hdrs; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data)); /* the list's copy of the bearer token */
    curl_slist_free_all(hdrs);
    free(payload);
    free(url);
    curl_free(eorg);
    http_request_cleanup(&req); /* the body is wiped */
    return e;
}

static char *dup_member(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v != NULL ? strdup(v) : NULL;
}

static bool connector_from_json(const json_t *obj, struct control_connector *c)
{
    memset(c, 0, sizeof(*c));
    c->id = dup_member(obj, "id");
    c->name = dup_member(obj, "name");
    c->host = dup_member(obj, "host");
    c->registered_at = dup_member(obj, "registeredAt");
    c->last_seen = dup_member(obj, "lastSeen");
    c->version = dup_member(obj, "version");
    return c->id != NULL;
}

/* Copy the "secret" member out of a response body and wipe it there. */
static enum dirconn_err take_secret(json_t *body, const char *what, char **secret,
                                    struct dirconn_error *err)
{
    json_t *v = json_object_get(body, "secret");
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0')
        return dirconn_error_set(err, DIRCONN_ECLOUD, "%s: the answer holds no secret", what);
    *secret = strdup(s);
    OPENSSL_cleanse((char *)s, json_string_length(v));
    json_object_del(body, "secret");
    return *secret != NULL ? DIRCONN_OK : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
}

enum dirconn_err control_register(const struct control_options *o, const char *admin_token,
                                  const char *name, const char *host, struct control_connector *out,
                                  char **secret, struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    *secret = NULL;
    json_t *req = json_pack("{s:s, s:s}", "name", name, "host", host);
    if (req != NULL && o->ha_mode != NULL)
        json_object_set_new(req, "haMode", json_string(o->ha_mode));
    if (req == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct control_response r;
    enum dirconn_err e = control_request(o, admin_token, "POST", "connectors", req, NULL, &r, err);
    json_decref(req);
    if (e == DIRCONN_OK && !connector_from_json(r.body, out))
        e = dirconn_error_set(err, DIRCONN_ECLOUD, "POST connectors: the answer holds no id");
    if (e == DIRCONN_OK)
        e = take_secret(r.body, "POST connectors", secret, err);
    if (e != DIRCONN_OK)
        control_connector_clear(out);
    control_response_clear(&r);
    return e;
}

/* "connectors/<escaped id><suffix>" */
static char *connector_path(const char *id, const char *suffix)
{
    char *eid = curl_easy_escape(NULL, id, 0);
    if (eid == NULL)
        return NULL;
    size_t n = strlen(eid) + strlen(suffix) + 16;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "connectors/%s%s", eid, suffix);
    curl_free(eid);
    return p;
}

enum dirconn_err control_deregister(const struct control_options *o, const char *token,
                                    const char *id, bool *existed, struct dirconn_error *err)
{
    *existed = false;
    char *path = connector_path(id, "");
    if (path == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct control_response r;
    enum dirconn_err e = control_request(o, token, "DELETE", path, NULL, NULL, &r, err);
    free(path);
    if (e == DIRCONN_OK) {
        *existed = true;
    } else if (r.status == 404) {
        dirconn_error_clear(err);
        e = DIRCONN_OK;
    }
    control_response_clear(&r);
    return e;
}

enum dirconn_err control_reset_secret(const struct control_options *o, const char *token,
                                      const char *id, char **secret, bool *pending,
                                      struct dirconn_error *err)
{
    *secret = NULL;
    if (pending != NULL)
        *pending = false;
    char *path = connector_path(id, "/secret");
    if (path == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct control_response r;
    enum dirconn_err e = control_request(o, token, "POST", path, NULL, NULL, &r, err);
    if (e == DIRCONN_OK)
        e = take_secret(r.body, path, secret, err);
    if (e == DIRCONN_OK && pending != NULL)
        *pending = json_is_true(json_object_get(r.body, "secretPending"));
    free(path);
    control_response_clear(&r);
    return e;
}

void control_list_free(struct control_connector *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        control_connector_clear(&v[i]);
    free(v);
}

enum dirconn_err control_list(const struct control_options *o, const char *token,
                              struct control_connector **out, size_t *n, struct dirconn_error *err)
{
    *out = NULL;
    *n = 0;
    struct control_response r;
    enum dirconn_err e = control_request(o, token, "GET", "connectors", NULL, NULL, &r, err);
    json_t *arr = json_object_get(r.body, "connectors");
    if (e == DIRCONN_OK && !json_is_array(arr))
        e = dirconn_error_set(err, DIRCONN_ECLOUD, "GET connectors: no connectors array");
    if (e == DIRCONN_OK) {
        size_t count = json_array_size(arr);
        struct control_connector *v = calloc(count + 1, sizeof(*v));
        if (v == NULL) {
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        } else {
            size_t k = 0;
            for (size_t i = 0; i < count; i++) {
                if (connector_from_json(json_array_get(arr, i), &v[k]))
                    k++;
                else
                    control_connector_clear(&v[k]);
            }
            *out = v;
            *n = k;
        }
    }
    control_response_clear(&r);
    return e;
}

enum dirconn_err control_lease_release(const struct control_options *o, const char *token,
                                       const char *id, bool *released, struct dirconn_error *err)
{
    *released = false;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct control_response r;
        enum dirconn_err e = control_request(o, token, "GET", "lease", NULL, NULL, &r, err);
        if (e != DIRCONN_OK) {
            control_response_clear(&r);
            return e;
        }
        const char *holder = json_string_value(json_object_get(r.body, "holderIdentity"));
        if (holder == NULL || strcmp(holder, id) != 0) {
            control_response_clear(&r);
            return DIRCONN_OK; /* not ours: nothing to release */
        }
        char etag[64];
        const char *rv = json_string_value(json_object_get(r.body, "resourceVersion"));
        if (r.etag != NULL)
            snprintf(etag, sizeof(etag), "%s", r.etag);
        else if (rv != NULL)
            snprintf(etag, sizeof(etag), "\"%s\"", rv);
        else
            snprintf(etag, sizeof(etag), "*");
        control_response_clear(&r);
        json_t *body = json_pack("{s:n}", "holderIdentity");
        if (body == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        e = control_request(o, token, "PUT", "lease", body, etag, &r, err);
        json_decref(body);
        long status = r.status;
        control_response_clear(&r);
        if (e == DIRCONN_OK) {
            *released = true;
            return DIRCONN_OK;
        }
        if (status != 412)
            return e;
        dirconn_error_clear(err);
    }
    return dirconn_error_set(err, DIRCONN_ELEASE,
                             "the lease of org %s kept changing while it was being released",
                             o->org);
}
