/*
 * lease_etcd.c - the HA lease in an etcd v3 cluster (lease.h), through etcd's
 * JSON gateway (the gRPC gateway of etcd 3.4: POST /v3/lease/grant,
 * /v3/lease/keepalive, /v3/lease/timetolive, /v3/lease/revoke, /v3/kv/range,
 * /v3/kv/txn; https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/).
 *
 * Keys, under /dirconn/<org>/ (org = [cloud] org, or "default"):
 *   leader  value: the holder's identity; attached to an etcd lease whose TTL
 *           is the lease duration, so that etcd itself deletes the key when the
 *           holder stops renewing (by the etcd leader's clock): free = absent.
 *   state   value: the shared connector-state document (compact JSON); no lease.
 * The fencing token is the leader key's create_revision: etcd's cluster-wide
 * revision counter only grows, and the key is created anew at every change
 * of holder. A state write is a txn that compares the leader key's
 * create_revision with the writer's token and its value with the writer's
 * identity, so a deposed holder can never overwrite the state.
 *
 * Transport: one libcurl easy handle (connections kept alive), no proxy
 * (CURLOPT_NOPROXY "*": etcd is on the site's network, not behind the
 * cloud's proxy), each request bounded by timeout_ms. The endpoints are tried
 * in order from the one that answered last; the next one is tried when an
 * endpoint does not answer (any libcurl transport error) or answers 503 (a
 * member without a raft leader). The endpoint that answered last is also
 * recorded in the program's struct proxy_shared (when it has one), under a
 * key naming the endpoint list, and read before each request: the election's
 * backend and the shared-state step's short-lived ones start at the same
 * endpoint instead of each at the first URL.
 *
 * TLS (https endpoints): verified against [ha] etcd_ca_file, else the system
 * store; a client certificate and key ([ha] etcd_cert_file, etcd_key_file,
 * PEM) when configured (etcd --client-cert-auth).
 *
 * Authentication (etcd auth enabled, [ha] etcd_user and etcd_password_file):
 * POST /v3/auth/authenticate {"name", "password"} gives a simple or JWT token,
 * sent as "Authorization: <token>" on every request. A token that etcd no
 * longer accepts (HTTP 401, or "invalid auth token" / "auth token is
 * expired" in the answer: a stream carries the error in its body) is dropped,
 * the user authenticates again and the request is retried once. The
 * password and the token are wiped (OPENSSL_cleanse) when freed, never logged.
 *
 * Int64 values come as decimal strings in the
 * gateway's JSON (proto3 mapping) and zero values are omitted; keys and
 * values are base64 (OpenSSL EVP_EncodeBlock / EVP_DecodeBlock).
 */
#include "ha/lease.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include "connector/core/secret_store.h"
#include "connector/net/http.h"
#include "proxy/proxy.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ETCD_BODY_MAX           (4 * 1024 * 1024)
#define ETCD_DEFAULT_TIMEOUT_MS 5000
#define ETCD_KEY_PREFIX         "/dirconn/"

struct etcd {
    const struct log_sink *log; /* borrowed */
    char **endpoints;           /* base URLs without a trailing '/'; owned */
    size_t n_endpoints;
    size_t current;     /* index of the endpoint that answered last */
    int64_t timeout_ms; /* per HTTP request */
    char *identity;     /* owned copy */
    char *identity_b64;
    char *leader_key; /* "/dirconn/<org>/leader", for messages */
    char *leader_b64;
    char *state_b64;
    int64_t lease_id; /* the etcd lease this instance's leader key is attached to, 0 = unknown */
    struct http_request http;    /* one easy handle for every request (connections kept alive) */
    struct proxy_shared *shared; /* the program's memory of the endpoint that answered; borrowed,
                                    may be NULL */
    char *shared_key;            /* "etcd <endpoint> <endpoint>...": the key in it */
    char *ca_file, *cert_file, *key_file; /* [ha] etcd_ca_file, ...; NULL when unset */
    char *user;                           /* [ha] etcd_user, NULL without etcd authentication */
    char *password_file;                  /* [ha] etcd_password_file, for messages */
    char *password;                       /* its content; wiped */
    char *token;                          /* the auth token, NULL before authenticating; wiped */
};

/* ---- base64 and JSON helpers ------------------------------------------------------------- */

/* b64_encode - base64 of len bytes (NUL-terminated, malloc'd), NULL when out of memory. */
static char *b64_encode(const void *data, size_t len)
{
    if (len > INT_MAX / 4 * 3 - 3)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* b64_decode - decode s into *out (malloc'd, NUL-terminated) and *outlen. */
static enum dirconn_err b64_decode(const char *s, char **out, size_t *outlen,
                                   struct dirconn_error *err)
{
    size_t n = strlen(s);
    *out = NULL;
    if (n % 4 != 0 || n > INT_MAX)
        return dirconn_error_set(err, DIRCONN_ECLOUD, "etcd: malformed base64 in an answer");
    char *d = malloc(n / 4 * 3 + 1);
    if (d == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    int r = n > 0 ? EVP_DecodeBlock((unsigned char *)d, (const unsigned char *)s, (int)n) : 0;
    if (r < 0) {
        free(d);
        return dirconn_error_set(err, DIRCONN_ECLOUD, "etcd: malformed base64 in an answer");
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (n >= 1 && s[n - 1] == '=')
        r--;
    if (n >= 2 && s[n - 2] == '=')
        r--;
    d[r] = '\0';
    *out = d;
    *outlen = (size_t)r;
    return DIRCONN_OK;
}

/* parse_i64 - a whole decimal int64 (etcd's revisions and lease IDs); false when malformed. */
static bool parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)x;
    return true;
}

/*
 * get_i64 - the int64 member key of obj: a decimal string in the gateway's
 * proto3 JSON (a number is accepted too). An absent member is proto3's zero.
 * Returns false when the member is malformed.
 */
static bool get_i64(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return parse_i64(json_string_value(v), out);
}

/* A JSON string holding an int64 as etcd's gateway expects it; NULL when out of memory. */
static json_t *i64_json(int64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

static char *i64_text(int64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return strdup(s);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

/* A streaming answer (keepalive): the body is whole once its first JSON object is in. */
static bool first_object_in(const char *data, size_t len)
{
    json_error_t jerr;
    json_t *first = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, &jerr);
    bool whole = first != NULL;
    json_decref(first);
    return whole;
}

/* Append "; " and one endpoint's failure to the message collected in buf. */
static void note_failure(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void note_failure(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len > 0 && len + 2 < cap) {
        memcpy(buf + len, "; ", 3);
        len += 2;
    }
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* A text answer (etcd's own HTTP handlers answer text/plain) as one line of at most cap - 1
 * characters, control characters as spaces; "(no JSON answer)" when empty. */
static const char *plain_text(const struct http_body *b, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; b->data != NULL && i < b->len && n + 1 < cap; i++)
        buf[n++] = (unsigned char)b->data[i] < 0x20 || b->data[i] == 0x7f ? ' ' : b->data[i];
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return n > 0 ? buf : "(no JSON answer)";
}

/* The gateway's error text: {"error": "...", "message": "...", "code": N}. */
static const char *gateway_message(const json_t *body)
{
    const char *m = json_string_value(json_object_get(body, "message"));
    if (m == NULL)
        m = json_string_value(json_object_get(body, "error"));
    return m != NULL ? m : "";
}

/*
 * etcd_post - POST the JSON req to path on the endpoints, from the one that
 * answered last, moving on while an endpoint does not answer. stream: the
 * answer is a stream (keepalive): only its first object is read. On success
 * *resp is the answer (an object; owned by the caller). Errors:
 * DIRCONN_ECLOUD_CONNECT (no endpoint answered), DIRCONN_ECLOUD_AUTH (HTTP
 * 401/403), DIRCONN_ECLOUD (another HTTP status, an answer that is not a
 * JSON object), DIRCONN_ENOMEM.
 */
/* The endpoint named in messages about an answer: the one that answered last. */
static const char *cur_ep(const struct etcd *e)
{
    return e->endpoints[e->current];
}

/* Start at the endpoint another client of the program found answering last, if any. */
static void take_shared_endpoint(struct etcd *e)
{
    char *label = proxy_shared_route_label(e->shared, e->shared_key);
    for (size_t i = 0; label != NULL && i < e->n_endpoints; i++) {
        if (strcmp(e->endpoints[i], label) == 0) {
            e->current = i;
            break;
        }
    }
    free(label);
}

/* A libcurl failure of the TLS layer (handshake, certificates, an alert from the server). */
static bool tls_failure(CURLcode rc, const char *ep)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return true;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        /* TLS 1.3: a refused client certificate arrives as an alert on the first read. */
        return strncmp(ep, "https:", 6) == 0;
    default:
        return false;
    }
}

static enum dirconn_err etcd_post(struct etcd *e, const char *path, const json_t *req, bool stream,
                                  json_t **resp, long *http_status, struct dirconn_error *err)
{
    *resp = NULL;
    if (http_status != NULL)
        *http_status = 0;
    char *payload = json_dumps(req, JSON_COMPACT);
    if (payload == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    take_shared_endpoint(e);
    char *auth_hdr = NULL;
    if (e->token != NULL && strcmp(path, "/v3/auth/authenticate") != 0) {
        size_t cap = strlen("Authorization: ") + strlen(e->token) + 1;
        auth_hdr = malloc(cap);
        if (auth_hdr == NULL) {
            free(payload);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
        snprintf(auth_hdr, cap, "Authorization: %s", e->token);
    }
    char failures[DIRCONN_ERROR_LEN] = "";
    enum dirconn_err rv = DIRCONN_ECLOUD_CONNECT;
    struct http_body *b = &e->http.body;
    b->complete = stream ? first_object_in : NULL;
    for (size_t i = 0; i < e->n_endpoints; i++) {
        size_t idx = (e->current + i) % e->n_endpoints;
        const char *ep = e->endpoints[idx];
        size_t urlcap = strlen(ep) + strlen(path) + 1;
        char *url = malloc(urlcap);
        if (url == NULL) {
            rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
            break;
        }
        snprintf(url, urlcap, "%s%s", ep, path);
        struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        if (hdrs != NULL && auth_hdr != NULL) {
            struct curl_slist *more = curl_slist_append(hdrs, auth_hdr);
            if (more == NULL) {
                curl_slist_free_all(hdrs);
                hdrs = NULL;
            } else {
                hdrs = more;
            }
        }
        if (hdrs == NULL) {
            free(url);
            rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
            break;
        }
        const struct http_options ho = {.ca_file = e->ca_file,
                                        .timeout_ms = (long)e->timeout_ms,
                                        .connect_timeout_ms = (long)e->timeout_ms};
        http_request_setup(&e->http, &ho, url);
        CURL *h = e->http.easy;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* etcd is on the LAN: never a proxy */
        if (e->cert_file != NULL) {
            curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert_file);
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(h, CURLOPT_SSLKEY, e->key_file);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        struct dirconn_error note;
        (void)http_perform(&e->http, NULL, url, &note); /* no hooks: always DIRCONN_OK */
        curl_slist_free_all(hdrs);
        CURLcode rc = e->http.rc; /* a stream's first object ends it with CURLE_OK */
        long status = e->http.status;
        const char *errbuf = e->http.errbuf;
        if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && b->overflow)) {
            /* A member with --client-cert-auth closes a TLS 1.3 connection that came without
             * a certificate right after the handshake: libcurl then reports a send or receive
             * error, not the alert. */
            bool closed =
                (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) && e->cert_file == NULL;
            note_failure(failures, sizeof(failures), "etcd %s: %s (curl %d)%s", ep,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc), (int)rc,
                         !tls_failure(rc, ep) ? ""
                         : closed ? " (TLS: the member closed the connection; does it require a "
                                    "client certificate? see [ha] etcd_cert_file, etcd_key_file)"
                                  : " (TLS: see [ha] etcd_ca_file, etcd_cert_file, "
                                    "etcd_key_file)");
            if (i + 1 < e->n_endpoints)
                /* curl's own text, not errbuf (which names the milliseconds it took):
                 * identical failures make identical lines, which the log limits. */
                log_msg_limited(e->log, LOG_LEVEL_WARN, "etcd %s: %s (curl %d); trying %s", ep,
                                curl_easy_strerror(rc), (int)rc,
                                e->endpoints[(idx + 1) % e->n_endpoints]);
            free(url);
            continue;
        }
        json_error_t jerr;
        char text[256];
        json_t *j = b->len > 0 && !b->overflow
                        ? json_loadb(b->data, b->len, JSON_DISABLE_EOF_CHECK, &jerr)
                        : NULL;
        if (status == 503) {
            /* A member that lost its raft leader (gRPC Unavailable): ask another. */
            note_failure(failures, sizeof(failures), "etcd %s: HTTP 503 %s", ep,
                         gateway_message(j));
            if (i + 1 < e->n_endpoints)
                log_msg_limited(e->log, LOG_LEVEL_WARN, "etcd %s: HTTP 503 %s; trying %s", ep,
                                gateway_message(j), e->endpoints[(idx + 1) % e->n_endpoints]);
            json_decref(j);
            free(url);
            continue;
        }
        bool moved = e->current != idx;
        e->current = idx;
        if (e->shared != NULL ? proxy_shared_note_route(e->shared, e->shared_key, ep) && moved
                              : moved)
            log_msg(e->log, LOG_LEVEL_INFO, "etcd: now using %s", ep);
        if (http_status != NULL)
            *http_status = status;
        if (b->overflow)
            rv =
                dirconn_error_set(err, DIRCONN_ECLOUD,
                                  "etcd %s: the answer is larger than %d bytes", ep, ETCD_BODY_MAX);
        else if (status < 200 || status > 299)
            rv = dirconn_error_set(
                err, status == 401 || status == 403 ? DIRCONN_ECLOUD_AUTH : DIRCONN_ECLOUD,
                "etcd %s: POST %s: HTTP %ld: %s", ep, path, status,
                j != NULL ? gateway_message(j) : plain_text(b, text, sizeof(text)));
        else if (!json_is_object(j))
            rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: POST %s: the answer is not JSON",
                                   ep, path);
        else {
            *resp = j;
            j = NULL;
            rv = DIRCONN_OK;
        }
        json_decref(j);
        free(url);
        break;
    }
    if (rv == DIRCONN_ECLOUD_CONNECT)
        dirconn_error_set(err, rv, "%s", failures[0] ? failures : "etcd: no endpoint");
    http_body_reset(b); /* the memory is kept for the next request */
    b->complete = NULL;
    if (auth_hdr != NULL) {
        OPENSSL_cleanse(auth_hdr, strlen(auth_hdr));
        free(auth_hdr);
    }
    free(payload);
    return rv;
}

static void drop_token(struct etcd *e)
{
    if (e->token != NULL) {
        OPENSSL_cleanse(e->token, strlen(e->token));
        free(e->token);
        e->token = NULL;
    }
}

/*
 * authenticate - POST /v3/auth/authenticate with [ha] etcd_user and the
 * password: e->token. Errors: DIRCONN_ECLOUD_AUTH (etcd refused the user or
 * password: the message names the [ha] keys), the transport's.
 */
static enum dirconn_err authenticate(struct etcd *e, struct dirconn_error *err)
{
    drop_token(e);
    json_t *req = json_pack("{s:s, s:s}", "name", e->user, "password", e->password);
    if (req == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    json_t *resp = NULL;
    long status = 0;
    struct dirconn_error note;
    dirconn_error_clear(&note);
    enum dirconn_err rv = etcd_post(e, "/v3/auth/authenticate", req, false, &resp, &status, &note);
    /* the request held the password */
    json_t *pw = json_object_get(req, "password");
    if (json_string_value(pw) != NULL)
        OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
    json_decref(req);
    const char *token = json_string_value(json_object_get(resp, "token"));
    if (rv == DIRCONN_OK && (token == NULL || token[0] == '\0'))
        rv = dirconn_error_set(err, DIRCONN_ECLOUD_AUTH,
                               "etcd %s: authentication as [ha] etcd_user '%s' gave no token (is "
                               "authentication enabled in etcd?)",
                               cur_ep(e), e->user);
    else if (rv == DIRCONN_OK && (e->token = strdup(token)) == NULL)
        rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    else if (rv == DIRCONN_ECLOUD || rv == DIRCONN_ECLOUD_AUTH)
        /* etcd answers 400 "authentication failed, invalid user ID or password" */
        rv = dirconn_error_set(err, DIRCONN_ECLOUD_AUTH,
                               "etcd %s: authentication failed for [ha] etcd_user '%s' with the "
                               "password in [ha] etcd_password_file %s: %s",
                               cur_ep(e), e->user, e->password_file, note.msg);
    else if (rv != DIRCONN_OK)
        *err = note;
    if (token != NULL)
        OPENSSL_cleanse((char *)token, strlen(token));
    json_decref(resp);
    return rv;
}

/* Does the error (message) or answer say that etcd refused the auth token? */
static bool token_refused(const char *msg)
{
    return msg != NULL && (strstr(msg, "invalid auth token") != NULL ||
                           strstr(msg, "auth token is expired") != NULL);
}

/* The error text of a stream answer: {"error": {"grpc_code", "message"}}. */
static const char *stream_error(const json_t *resp)
{
    return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

/*
 * etcd_call - etcd_post with etcd authentication when [ha] etcd_user is set:
 * authenticate first when there is no token; when etcd refuses the token
 * (expired, or revoked by a restart of etcd with simple tokens),
 * authenticate again and send the request once more. Errors: etcd_post's
 * and authenticate's.
 */
static enum dirconn_err etcd_call(struct etcd *e, const char *path, const json_t *req, bool stream,
                                  json_t **resp, long *http_status, struct dirconn_error *err)
{
    *resp = NULL;
    if (e->user == NULL)
        return etcd_post(e, path, req, stream, resp, http_status, err);
    bool fresh = false;
    if (e->token == NULL) {
        enum dirconn_err rv = authenticate(e, err);
        if (rv != DIRCONN_OK)
            return rv;
        fresh = true;
    }
    for (;;) {
        long status = 0;
        enum dirconn_err rv = etcd_post(e, path, req, stream, resp, &status, err);
        if (http_status != NULL)
            *http_status = status;
        bool refused = (rv != DIRCONN_OK && (status == 401 || token_refused(err->msg))) ||
                       (rv == DIRCONN_OK && token_refused(stream_error(*resp)));
        if (!refused || fresh)
            return rv;
        log_msg(e->log, LOG_LEVEL_INFO,
                "etcd %s: the auth token of [ha] etcd_user '%s' was refused: authenticating again",
                cur_ep(e), e->user);
        json_decref(*resp);
        *resp = NULL;
        rv = authenticate(e, err);
        if (rv != DIRCONN_OK)
            return rv;
        fresh = true;
    }
}

/* ---- keys, leases and transactions -------------------------------------------------------- */

/* One key as a range answer describes it. */
struct kv {
    bool present;
    char *value; /* decoded, NUL-terminated; owned */
    size_t value_len;
    int64_t create_revision, mod_revision, lease;
};

static void kv_clear(struct kv *kv)
{
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

/* kv_from_range - the first key of a RangeResponse (or of prev_kvs when member is "prev_kvs"). */
static enum dirconn_err kv_from(const struct etcd *e, const json_t *resp, const char *member,
                                struct kv *kv, struct dirconn_error *err)
{
    memset(kv, 0, sizeof(*kv));
    const json_t *kvs = json_object_get(resp, member);
    if (kvs == NULL || json_array_size(kvs) == 0)
        return DIRCONN_OK;
    const json_t *k = json_array_get(kvs, 0);
    const char *v = json_string_value(json_object_get(k, "value"));
    if (!get_i64(k, "create_revision", &kv->create_revision) ||
        !get_i64(k, "mod_revision", &kv->mod_revision) || !get_i64(k, "lease", &kv->lease))
        return dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: malformed key-value in an answer",
                                 cur_ep(e));
    enum dirconn_err rv = b64_decode(v != NULL ? v : "", &kv->value, &kv->value_len, err);
    if (rv != DIRCONN_OK)
        return rv;
    kv->present = true;
    return DIRCONN_OK;
}

static bool kv_is(const struct kv *kv, const char *identity)
{
    return kv->present && kv->value_len == strlen(identity) && strcmp(kv->value, identity) == 0;
}

/* range - read one key (POST /v3/kv/range). */
static enum dirconn_err range(struct etcd *e, const char *key_b64, struct kv *kv,
                              struct dirconn_error *err)
{
    memset(kv, 0, sizeof(*kv));
    json_t *req = json_pack("{s:s}", "key", key_b64);
    json_t *resp = NULL;
    enum dirconn_err rv = req != NULL ? etcd_call(e, "/v3/kv/range", req, false, &resp, NULL, err)
                                      : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (rv == DIRCONN_OK)
        rv = kv_from(e, resp, "kvs", kv, err);
    json_decref(resp);
    json_decref(req);
    return rv;
}

/* lease_grant - a new etcd lease of ttl_s seconds (POST /v3/lease/grant): its ID and the TTL
 * etcd granted (it may raise a TTL below its minimum). */
static enum dirconn_err lease_grant(struct etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted,
                                    struct dirconn_error *err)
{
    json_t *req = json_pack("{s:o}", "TTL", i64_json(ttl_s));
    json_t *resp = NULL;
    enum dirconn_err rv = req != NULL
                              ? etcd_call(e, "/v3/lease/grant", req, false, &resp, NULL, err)
                              : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    json_decref(req);
    if (rv != DIRCONN_OK)
        return rv;
    const char *why = json_string_value(json_object_get(resp, "error"));
    if (!get_i64(resp, "ID", id) || !get_i64(resp, "TTL", granted) || *id == 0 || *granted <= 0)
        rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: lease grant refused%s%s", cur_ep(e),
                               why ? ": " : "", why ? why : "");
    json_decref(resp);
    return rv;
}

/* lease_revoke - revoke an etcd lease (POST /v3/lease/revoke), deleting the keys attached to
 * it; a lease that is already gone (HTTP 404) is not an error. Best effort where the caller
 * ignores the result. */
static enum dirconn_err lease_revoke(struct etcd *e, int64_t id, struct dirconn_error *err)
{
    if (id == 0)
        return DIRCONN_OK;
    json_t *req = json_pack("{s:o}", "ID", i64_json(id));
    json_t *resp = NULL;
    long status = 0;
    struct dirconn_error note;
    dirconn_error_clear(&note);
    enum dirconn_err rv = req != NULL
                              ? etcd_call(e, "/v3/lease/revoke", req, false, &resp, &status, &note)
                              : dirconn_error_set(&note, DIRCONN_ENOMEM, "out of memory");
    json_decref(req);
    json_decref(resp);
    if (rv == DIRCONN_ECLOUD && status == 404)
        return DIRCONN_OK; /* "etcdserver: requested lease not found" */
    if (rv != DIRCONN_OK) {
        log_msg(e->log, LOG_LEVEL_WARN, "%s", note.msg);
        if (err != NULL)
            *err = note;
    }
    return rv;
}

/* lease_ttl - the remaining TTL and granted TTL (seconds) of an etcd lease (POST
 * /v3/lease/timetolive); *ttl <= 0 when it expired or never existed. */
static enum dirconn_err lease_ttl(struct etcd *e, int64_t id, int64_t *ttl, int64_t *granted,
                                  struct dirconn_error *err)
{
    *ttl = *granted = 0;
    json_t *req = json_pack("{s:o}", "ID", i64_json(id));
    json_t *resp = NULL;
    enum dirconn_err rv = req != NULL
                              ? etcd_call(e, "/v3/lease/timetolive", req, false, &resp, NULL, err)
                              : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    json_decref(req);
    if (rv == DIRCONN_OK && (!get_i64(resp, "TTL", ttl) || !get_i64(resp, "grantedTTL", granted)))
        rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: malformed timetolive answer",
                               cur_ep(e));
    json_decref(resp);
    return rv;
}

/* lease_keepalive - one keepalive of an etcd lease (POST /v3/lease/keepalive, a stream of
 * which the first result is read): the TTL it has again, <= 0 when the lease is gone. */
static enum dirconn_err lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl,
                                        struct dirconn_error *err)
{
    *ttl = 0;
    json_t *req = json_pack("{s:o}", "ID", i64_json(id));
    json_t *resp = NULL;
    enum dirconn_err rv = req != NULL
                              ? etcd_call(e, "/v3/lease/keepalive", req, true, &resp, NULL, err)
                              : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    json_decref(req);
    if (rv != DIRCONN_OK)
        return rv;
    const json_t *result = json_object_get(resp, "result");
    if (result == NULL) {
        /* A stream error: {"error": {"grpc_code": N, "message": "..."}}. */
        const json_t *e2 = json_object_get(resp, "error");
        const char *m = json_string_value(json_object_get(e2, "message"));
        rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: keepalive failed: %s", cur_ep(e),
                               m != NULL ? m : "no result");
    } else if (!get_i64(result, "TTL", ttl)) {
        rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: malformed keepalive answer",
                               cur_ep(e));
    }
    json_decref(resp);
    return rv;
}

/* A txn compare of key's target ("CREATE", "MOD", "VALUE") with value (an int64 as text,
 * or base64 for VALUE), under the field name etcd's Compare message uses for the target. */
static json_t *compare(const char *key_b64, const char *target, const char *field,
                       const char *value)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "key", key_b64, "target", target, "result", "EQUAL",
                     field, value);
}

/* txn - POST /v3/kv/txn {compare, success, failure} (the arrays are stolen). *succeeded says
 * which branch ran; *resp is the answer (owned by the caller). */
static enum dirconn_err txn(struct etcd *e, json_t *cmp, json_t *success, json_t *failure,
                            bool *succeeded, json_t **resp, struct dirconn_error *err)
{
    *succeeded = false;
    *resp = NULL;
    json_t *req =
        json_pack("{s:o?, s:o?, s:o?}", "compare", cmp, "success", success, "failure", failure);
    if (req == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    enum dirconn_err rv = etcd_call(e, "/v3/kv/txn", req, false, resp, NULL, err);
    json_decref(req);
    if (rv == DIRCONN_OK)
        *succeeded = json_is_true(json_object_get(*resp, "succeeded"));
    return rv;
}

/* The n-th response of a txn answer, by its member name ("response_range", ...). */
static const json_t *txn_response(const json_t *resp, size_t n, const char *member)
{
    return json_object_get(json_array_get(json_object_get(resp, "responses"), n), member);
}

/* The lease duration in whole seconds as etcd takes it: ceil(ms / 1000), at least 1. */
static int64_t ttl_of(int64_t duration_ms)
{
    if (duration_ms <= 0)
        return 1;
    return (duration_ms + 999) / 1000;
}

/* Fill out for the leader key kv held by this instance, with a TTL in seconds. */
static enum dirconn_err fill_held(const struct kv *kv, int64_t ttl_s, int64_t granted_s,
                                  struct lease_info *out, struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    out->holder = strdup(kv->value);
    out->version = i64_text(kv->mod_revision);
    out->token = kv->create_revision;
    /* etcd's numbers as they come, within a day (lease_duration is at most an hour): a huge
     * TTL must not overflow the milliseconds */
    out->remaining_ms = ttl_s > 0 ? (ttl_s > 86400 ? 86400 : ttl_s) * 1000 : 0;
    out->duration_ms = granted_s > 0 ? (granted_s > 86400 ? 86400 : granted_s) * 1000 : 0;
    if (out->holder == NULL || out->version == NULL) {
        lease_info_clear(out);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    return DIRCONN_OK;
}

/* ---- the operations ------------------------------------------------------------------------ */

static enum dirconn_err etcd_observe(void *self, struct lease_info *out, struct dirconn_error *err)
{
    struct etcd *e = self;
    struct kv kv;
    memset(out, 0, sizeof(*out));
    enum dirconn_err rv = range(e, e->leader_b64, &kv, err);
    if (rv != DIRCONN_OK || !kv.present) {
        kv_clear(&kv);
        return rv; /* free: holder NULL, token 0, remaining 0 */
    }
    int64_t ttl = 0, granted = 0;
    if (kv.lease != 0)
        rv = lease_ttl(e, kv.lease, &ttl, &granted, err);
    if (rv == DIRCONN_OK)
        rv = fill_held(&kv, ttl, granted, out, err);
    /* etcd counts the TTL in whole seconds and leaves it out under one (an expired lease
     * says -1): the key is still held for up to a second. */
    if (rv == DIRCONN_OK && kv.lease != 0 && ttl == 0 && granted > 0)
        out->remaining_ms = 500;
    if (rv == DIRCONN_OK && kv_is(&kv, e->identity))
        e->lease_id = kv.lease;
    kv_clear(&kv);
    return rv;
}

static enum dirconn_err etcd_renew(void *self, int64_t duration_ms, struct lease_info *out,
                                   struct dirconn_error *err);

static enum dirconn_err etcd_acquire(void *self, const struct lease_info *seen, int64_t duration_ms,
                                     struct lease_info *out, struct dirconn_error *err)
{
    struct etcd *e = self;
    (void)seen; /* etcd's own compare (the key is absent) is the precondition */
    memset(out, 0, sizeof(*out));
    int64_t id = 0, granted = 0;
    enum dirconn_err rv = lease_grant(e, ttl_of(duration_ms), &id, &granted, err);
    if (rv != DIRCONN_OK)
        return rv;
    /* Create the leader key only if it is absent (create_revision 0), attached to the new
     * lease; read it back in the same txn for its create_revision (the token). */
    json_t *put = json_pack("{s:{s:s, s:s, s:o}}", "request_put", "key", e->leader_b64, "value",
                            e->identity_b64, "lease", i64_json(id));
    json_t *rd = json_pack("{s:{s:s}}", "request_range", "key", e->leader_b64);
    json_t *rd2 = json_pack("{s:{s:s}}", "request_range", "key", e->leader_b64);
    json_t *cmp = json_pack("[o]", compare(e->leader_b64, "CREATE", "create_revision", "0"));
    json_t *ok = json_pack("[o,o]", put, rd);
    json_t *ko = json_pack("[o]", rd2);
    bool succeeded = false;
    json_t *resp = NULL;
    struct kv kv = {0};
    if (cmp == NULL || ok == NULL || ko == NULL) {
        json_decref(cmp);
        json_decref(ok);
        json_decref(ko);
        rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    } else {
        rv = txn(e, cmp, ok, ko, &succeeded, &resp, err);
    }
    if (rv == DIRCONN_OK)
        rv = kv_from(e, txn_response(resp, succeeded ? 1 : 0, "response_range"), "kvs", &kv, err);
    json_decref(resp);
    if (rv != DIRCONN_OK) {
        lease_revoke(e, id, NULL);
        kv_clear(&kv);
        return rv;
    }
    if (succeeded) {
        if (e->lease_id != 0 && e->lease_id != id)
            lease_revoke(e, e->lease_id, NULL); /* an older lease of ours without the key */
        e->lease_id = id;
        if (!kv.present) /* deleted between the put and the range of one txn: cannot be */
            rv = dirconn_error_set(err, DIRCONN_ECLOUD, "etcd %s: %s missing after its put",
                                   cur_ep(e), e->leader_key);
        else
            rv = fill_held(&kv, granted, granted, out, err);
        log_msg(e->log, LOG_LEVEL_DEBUG, "etcd %s: %s acquired by %s (token %" PRId64 ")",
                cur_ep(e), e->leader_key, e->identity, kv.create_revision);
        kv_clear(&kv);
        return rv;
    }
    lease_revoke(e, id, NULL);
    if (kv_is(&kv, e->identity)) {
        /* Ours already (an earlier acquire of this identity): keep it alive instead. */
        e->lease_id = kv.lease;
        kv_clear(&kv);
        return etcd_renew(self, duration_ms, out, err);
    }
    rv = dirconn_error_set(err, DIRCONN_ELEASE, "etcd %s: %s is held by %s (token %" PRId64 ")",
                           cur_ep(e), e->leader_key, kv.present ? kv.value : "(nobody)",
                           kv.create_revision);
    kv_clear(&kv);
    return rv;
}

/*
 * Attach the leader key (ours, created at create_revision) to a new lease of ttl_s seconds,
 * keeping its create_revision (a put on an existing key does): for a renewal with another
 * duration, as an etcd lease's TTL is fixed when it is granted.
 */
static enum dirconn_err relet(struct etcd *e, int64_t create_revision, int64_t ttl_s, struct kv *kv,
                              int64_t *granted, struct dirconn_error *err)
{
    int64_t id = 0;
    enum dirconn_err rv = lease_grant(e, ttl_s, &id, granted, err);
    if (rv != DIRCONN_OK)
        return rv;
    char crev[32];
    snprintf(crev, sizeof(crev), "%" PRId64, create_revision);
    json_t *cmp = json_pack("[o,o]", compare(e->leader_b64, "CREATE", "create_revision", crev),
                            compare(e->leader_b64, "VALUE", "value", e->identity_b64));
    json_t *ok =
        json_pack("[{s:{s:s, s:s, s:o}}, {s:{s:s}}]", "request_put", "key", e->leader_b64, "value",
                  e->identity_b64, "lease", i64_json(id), "request_range", "key", e->leader_b64);
    bool succeeded = false;
    json_t *resp = NULL;
    if (cmp == NULL || ok == NULL) {
        json_decref(cmp);
        json_decref(ok);
        rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    } else {
        rv = txn(e, cmp, ok, NULL, &succeeded, &resp, err);
    }
    kv_clear(kv);
    if (rv == DIRCONN_OK && !succeeded)
        rv = dirconn_error_set(err, DIRCONN_ELEASE, "etcd %s: %s is no longer held by %s",
                               cur_ep(e), e->leader_key, e->identity);
    if (rv == DIRCONN_OK)
        rv = kv_from(e, txn_response(resp, 1, "response_range"), "kvs", kv, err);
    json_decref(resp);
    if (rv != DIRCONN_OK) {
        lease_revoke(e, id, NULL);
        return rv;
    }
    lease_revoke(e, e->lease_id, NULL); /* the old lease has no key left */
    e->lease_id = id;
    return DIRCONN_OK;
}

static enum dirconn_err etcd_renew(void *self, int64_t duration_ms, struct lease_info *out,
                                   struct dirconn_error *err)
{
    struct etcd *e = self;
    struct kv kv = {0};
    enum dirconn_err rv = DIRCONN_OK;
    memset(out, 0, sizeof(*out));
    if (e->lease_id == 0) {
        /* A fresh process: learn the lease from the key. */
        rv = range(e, e->leader_b64, &kv, err);
        if (rv != DIRCONN_OK)
            goto out;
        if (!kv_is(&kv, e->identity) || kv.lease == 0) {
            rv = dirconn_error_set(err, DIRCONN_ELEASE, "etcd %s: %s is %s%s, not by %s", cur_ep(e),
                                   e->leader_key, kv.present ? "held by " : "free",
                                   kv.present ? kv.value : "", e->identity);
            goto out;
        }
        e->lease_id = kv.lease;
        kv_clear(&kv);
    }
    int64_t ttl = 0;
    rv = lease_keepalive(e, e->lease_id, &ttl, err);
    if (rv != DIRCONN_OK)
        goto out;
    if (ttl <= 0) {
        rv = dirconn_error_set(err, DIRCONN_ELEASE,
                               "etcd %s: lease %" PRId64 " of %s expired (%s is lost)", cur_ep(e),
                               e->lease_id, e->identity, e->leader_key);
        e->lease_id = 0;
        goto out;
    }
    /* The lease lives: is the key on it still ours (an operator may have deleted it)? */
    rv = range(e, e->leader_b64, &kv, err);
    if (rv != DIRCONN_OK)
        goto out;
    if (!kv_is(&kv, e->identity) || kv.lease != e->lease_id) {
        rv = dirconn_error_set(err, DIRCONN_ELEASE, "etcd %s: %s is %s%s, not by %s", cur_ep(e),
                               e->leader_key, kv.present ? "held by " : "free",
                               kv.present ? kv.value : "", e->identity);
        lease_revoke(e, e->lease_id, NULL); /* nothing of ours is attached to it any more */
        e->lease_id = 0;
        goto out;
    }
    int64_t granted = ttl;
    if (ttl != ttl_of(duration_ms)) {
        rv = relet(e, kv.create_revision, ttl_of(duration_ms), &kv, &granted, err);
        if (rv != DIRCONN_OK)
            goto out;
        ttl = granted;
    }
    rv = fill_held(&kv, ttl, granted, out, err);
out:
    kv_clear(&kv);
    return rv;
}

static enum dirconn_err etcd_release(void *self, struct dirconn_error *err)
{
    struct etcd *e = self;
    /* Delete the leader key only if it is ours; its prev_kv names the lease to revoke. */
    json_t *cmp = json_pack("[o]", compare(e->leader_b64, "VALUE", "value", e->identity_b64));
    json_t *ok =
        json_pack("[{s:{s:s, s:b}}]", "request_delete_range", "key", e->leader_b64, "prev_kv", 1);
    bool succeeded = false;
    json_t *resp = NULL;
    enum dirconn_err rv;
    if (cmp == NULL || ok == NULL) {
        json_decref(cmp);
        json_decref(ok);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    rv = txn(e, cmp, ok, NULL, &succeeded, &resp, err);
    if (rv != DIRCONN_OK)
        return rv;
    /* The key is gone (or was not ours): revoking is tidying up, best effort (an etcd lease
     * that is not revoked expires by itself). */
    struct kv prev = {0};
    if (succeeded &&
        kv_from(e, txn_response(resp, 0, "response_delete_range"), "prev_kvs", &prev, NULL) ==
            DIRCONN_OK &&
        prev.lease != 0 && prev.lease != e->lease_id)
        lease_revoke(e, prev.lease, NULL);
    lease_revoke(e, e->lease_id, NULL);
    e->lease_id = 0;
    log_msg(e->log, LOG_LEVEL_DEBUG, "etcd %s: %s %s", cur_ep(e), e->leader_key,
            succeeded ? "released" : "was not held by us");
    kv_clear(&prev);
    json_decref(resp);
    return rv;
}

static enum dirconn_err etcd_state_get(void *self, json_t **doc, char **version,
                                       struct dirconn_error *err)
{
    struct etcd *e = self;
    *doc = NULL;
    *version = NULL;
    struct kv kv;
    enum dirconn_err rv = range(e, e->state_b64, &kv, err);
    if (rv != DIRCONN_OK)
        return rv;
    json_t *d = NULL;
    if (!kv.present) {
        d = json_object();
    } else {
        json_error_t jerr;
        d = json_loadb(kv.value, kv.value_len, JSON_DECODE_ANY, &jerr);
        if (d == NULL)
            rv = dirconn_error_set(err, DIRCONN_ECLOUD,
                                   "etcd %s: the state key is not JSON: %s (line %d)", cur_ep(e),
                                   jerr.text, jerr.line);
    }
    char *v = rv == DIRCONN_OK ? i64_text(kv.present ? kv.mod_revision : 0) : NULL;
    if (rv == DIRCONN_OK && (d == NULL || v == NULL))
        rv = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (rv == DIRCONN_OK) {
        *doc = d;
        *version = v;
    } else {
        json_decref(d);
        free(v);
    }
    kv_clear(&kv);
    return rv;
}

static enum dirconn_err etcd_state_put(void *self, const json_t *doc, const char *version,
                                       int64_t token, struct dirconn_error *err)
{
    struct etcd *e = self;
    if (token <= 0)
        return dirconn_error_set(err, DIRCONN_ELEASE,
                                 "etcd %s: state write fenced: no fencing token", cur_ep(e));
    int64_t want_mod = 0;
    if (version != NULL) {
        if (!parse_i64(version, &want_mod) || want_mod < 0)
            return dirconn_error_set(err, DIRCONN_ECLOUD,
                                     "etcd: state version '%s' is not an etcd revision", version);
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    char *val = text != NULL ? b64_encode(text, strlen(text)) : NULL;
    free(text);
    char tok[32], mod[32];
    snprintf(tok, sizeof(tok), "%" PRId64, token);
    snprintf(mod, sizeof(mod), "%" PRId64, want_mod);
    json_t *cmp = json_pack("[o,o]", compare(e->leader_b64, "CREATE", "create_revision", tok),
                            compare(e->leader_b64, "VALUE", "value", e->identity_b64));
    if (cmp != NULL && version != NULL &&
        json_array_append_new(cmp, compare(e->state_b64, "MOD", "mod_revision", mod)) != 0) {
        json_decref(cmp);
        cmp = NULL;
    }
    json_t *ok = val != NULL ? json_pack("[{s:{s:s, s:s}}]", "request_put", "key", e->state_b64,
                                         "value", val)
                             : NULL;
    json_t *ko = json_pack("[{s:{s:s}}, {s:{s:s}}]", "request_range", "key", e->leader_b64,
                           "request_range", "key", e->state_b64);
    free(val);
    if (cmp == NULL || ok == NULL || ko == NULL) {
        json_decref(cmp);
        json_decref(ok);
        json_decref(ko);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    bool succeeded = false;
    json_t *resp = NULL;
    enum dirconn_err rv = txn(e, cmp, ok, ko, &succeeded, &resp, err);
    if (rv != DIRCONN_OK || succeeded) {
        json_decref(resp);
        return rv;
    }
    /* Which compare failed? The leader key first: a fenced write is not a version race. */
    struct kv leader = {0}, state = {0};
    rv = kv_from(e, txn_response(resp, 0, "response_range"), "kvs", &leader, err);
    if (rv == DIRCONN_OK)
        rv = kv_from(e, txn_response(resp, 1, "response_range"), "kvs", &state, err);
    if (rv != DIRCONN_OK) {
        /* rv and err say why */
    } else if (!kv_is(&leader, e->identity) || leader.create_revision != token) {
        if (leader.present)
            rv = dirconn_error_set(err, DIRCONN_ELEASE,
                                   "etcd %s: state write fenced: %s is held by %s with token "
                                   "%" PRId64 ", not by %s with token %" PRId64,
                                   cur_ep(e), e->leader_key, leader.value, leader.create_revision,
                                   e->identity, token);
        else
            rv = dirconn_error_set(err, DIRCONN_ELEASE,
                                   "etcd %s: state write fenced: %s is free (token %" PRId64
                                   " of %s expired)",
                                   cur_ep(e), e->leader_key, token, e->identity);
    } else {
        rv = dirconn_error_set(err, DIRCONN_ECLOUD,
                               "etcd %s: state version is %" PRId64 ", not %s (changed meanwhile)",
                               cur_ep(e), state.present ? state.mod_revision : 0,
                               version != NULL ? version : "(any)");
    }
    kv_clear(&leader);
    kv_clear(&state);
    json_decref(resp);
    return rv;
}

static void etcd_free(void *self)
{
    struct etcd *e = self;
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n_endpoints; i++)
        free(e->endpoints[i]);
    free(e->endpoints);
    free(e->identity);
    free(e->identity_b64);
    free(e->leader_key);
    free(e->leader_b64);
    free(e->state_b64);
    http_request_cleanup(&e->http);
    free(e->shared_key);
    free(e->ca_file);
    free(e->cert_file);
    free(e->key_file);
    free(e->user);
    free(e->password_file);
    secret_free(e->password);
    drop_token(e);
    free(e);
}

/* The border: every operation's errors in the lease-server family (lease.h). */
LEASE_SERVER_BORDER(etcd)

static const struct lease_backend_ops etcd_ops = {
    .name = "etcd",
    .observe = etcd_observe_b,
    .acquire = etcd_acquire_b,
    .renew = etcd_renew_b,
    .release = etcd_release_b,
    .state_get = etcd_state_get_b,
    .state_put = etcd_state_put_b,
    .free = etcd_free,
};

/*
 * read_password - [ha] etcd_password_file: a regular file that neither group nor others may
 * read or write (mode 0600 or stricter: it holds a secret), one line. Errors: DIRCONN_ECONFIG
 * naming the key and the file, DIRCONN_ENOMEM.
 */
static enum dirconn_err read_password(const char *path, char **out, struct dirconn_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[ha] etcd_password_file %s: %s", path,
                                 strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[ha] etcd_password_file %s: not a regular file", path);
    if ((st.st_mode & 077) != 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[ha] etcd_password_file %s: mode %04o lets group or others "
                                 "access the password; chmod 600 it",
                                 path, (unsigned)(st.st_mode & 07777));
    return secret_file_read(path, "[ha] etcd_password_file", out, err);
}

/* A copy of s (NULL stays NULL); false when out of memory. */
static bool dup_opt(char **dst, const char *s)
{
    *dst = s != NULL ? strdup(s) : NULL;
    return s == NULL || *dst != NULL;
}

/* "/dirconn/<org>/<name>" (malloc'd), NULL when out of memory. */
static char *key_of(const char *org, const char *name)
{
    size_t cap = strlen(ETCD_KEY_PREFIX) + strlen(org) + strlen(name) + 2;
    char *k = malloc(cap);
    if (k != NULL)
        snprintf(k, cap, "%s%s/%s", ETCD_KEY_PREFIX, org, name);
    return k;
}

enum dirconn_err lease_backend_etcd_new(const struct config *cfg, const struct log_sink *log,
                                        struct proxy_shared *shared, const char *identity,
                                        int64_t timeout_ms, struct lease_backend *out,
                                        struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    if (cfg->ha_etcd_endpoints.n == 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[ha] etcd_endpoints: no etcd endpoint");
    if (identity == NULL || identity[0] == '\0')
        return dirconn_error_set(err, DIRCONN_ECONFIG, "etcd lease: no holder identity");
    const char *org =
        cfg->cloud_org != NULL && cfg->cloud_org[0] != '\0' ? cfg->cloud_org : "default";
    struct etcd *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    e->log = log;
    e->shared = shared;
    e->timeout_ms = timeout_ms > 0 ? timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
    e->endpoints = calloc(cfg->ha_etcd_endpoints.n, sizeof(*e->endpoints));
    bool ok = e->endpoints != NULL;
    for (size_t i = 0; ok && i < cfg->ha_etcd_endpoints.n; i++) {
        const char *u = cfg->ha_etcd_endpoints.v[i];
        size_t len = strlen(u);
        while (len > 0 && u[len - 1] == '/')
            len--;
        e->endpoints[i] = strndup(u, len);
        ok = e->endpoints[i] != NULL;
        e->n_endpoints = i + 1;
    }
    char *state_key = NULL;
    if (ok) {
        e->identity = strdup(identity);
        e->identity_b64 = b64_encode(identity, strlen(identity));
        e->leader_key = key_of(org, "leader");
        state_key = key_of(org, "state");
        e->leader_b64 = e->leader_key ? b64_encode(e->leader_key, strlen(e->leader_key)) : NULL;
        e->state_b64 = state_key ? b64_encode(state_key, strlen(state_key)) : NULL;
        (void)http_request_init(&e->http, ETCD_BODY_MAX, false, NULL); /* checked below */
        out->identity = strdup(identity);
        ok = e->identity && e->identity_b64 && e->leader_b64 && e->state_b64 &&
             e->http.easy != NULL && out->identity;
    }
    free(state_key);
    size_t keycap = 5;
    for (size_t i = 0; ok && i < e->n_endpoints; i++)
        keycap += strlen(e->endpoints[i]) + 1;
    if (ok && (e->shared_key = malloc(keycap)) != NULL) {
        strcpy(e->shared_key, "etcd");
        for (size_t i = 0; i < e->n_endpoints; i++) {
            strcat(e->shared_key, " ");
            strcat(e->shared_key, e->endpoints[i]);
        }
    }
    ok = ok && e->shared_key != NULL && dup_opt(&e->ca_file, cfg->ha_etcd_ca_file) &&
         dup_opt(&e->cert_file, cfg->ha_etcd_cert_file) &&
         dup_opt(&e->key_file, cfg->ha_etcd_key_file) && dup_opt(&e->user, cfg->ha_etcd_user) &&
         dup_opt(&e->password_file, cfg->ha_etcd_password_file);
    if (ok && e->user != NULL) {
        enum dirconn_err rv = e->password_file != NULL
                                  ? read_password(e->password_file, &e->password, err)
                                  : dirconn_error_set(err, DIRCONN_ECONFIG,
                                                      "[ha] etcd_user needs etcd_password_file");
        if (rv != DIRCONN_OK) {
            etcd_free(e);
            free(out->identity);
            memset(out, 0, sizeof(*out));
            return rv;
        }
    }
    if (!ok) {
        etcd_free(e);
        free(out->identity);
        memset(out, 0, sizeof(*out));
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    out->ops = &etcd_ops;
    out->self = e;
    out->cloud_fencing = false;
    return DIRCONN_OK;
}
