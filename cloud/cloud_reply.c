/* cloud_reply.c - the request of dirconn-cloud and its one answer: headers, body, SCIM and
 * control API errors, the "after" faults, the log line; bearer authentication. */
#include "cloud/cloud_reply.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <sys/queue.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cloud/cloud_schema.h"

int64_t cloud_reply_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cloud_reply_free(struct cloud_req *req)
{
    for (size_t i = 0; i < req->nsegs; i++)
        free(req->segs[i]);
    evhttp_clear_headers(&req->query);
    evhttp_clear_headers(&req->in_headers);
    evhttp_clear_headers(&req->out_headers);
    free(req->text);
    free(req->raw_path);
    free(req->body);
    if (req->delay != NULL)
        event_free(req->delay);
    free(req);
}

bool cloud_reply_is_scim(const struct cloud_req *req)
{
    return req->nsegs >= 1 && strcmp(req->segs[0], "scim") == 0;
}

void cloud_reply_header(struct cloud_req *req, const char *name, const char *value)
{
    evhttp_add_header(&req->out_headers, name, value);
}

const char *cloud_reply_input_header(struct cloud_req *req, const char *name)
{
    return evhttp_find_header(&req->in_headers, name);
}

const char *cloud_reply_query(struct cloud_req *req, const char *name)
{
    return evhttp_find_header(&req->query, name);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void log_request(struct cloud_req *req, int status)
{
    double ms = (double)(cloud_reply_clock_ns() - req->start_ns) / 1e6;
    const char *who = req->auth == CLOUD_AUTH_ADMIN       ? "admin"
                      : req->auth == CLOUD_AUTH_CONNECTOR ? req->connector_id
                                                          : "-";
    char ops[32] = "";
    if (req->patch_ops > 0)
        snprintf(ops, sizeof(ops), " ops=%ld", req->patch_ops);
    /* the query is not logged: say whether it selected attributes (RFC 7644 3.9) */
    const char *sel = evhttp_find_header(&req->query, "attributes") != NULL ? " select=attributes"
                      : evhttp_find_header(&req->query, "excludedAttributes") != NULL
                          ? " select=excludedAttributes"
                          : "";
    log_msg(&req->ctx->log, LOG_LEVEL_INFO, "%s %s %d %.1fms connector=%s%s%s", req->method_name,
            req->raw_path, status, ms, who, ops, sel);
}

static json_t *scim_error_json(int status, const char *scim_type, const char *detail)
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    json_t *e =
        json_pack("{s:[s], s:s, s:s}", "schemas", CLOUD_MSG_ERROR, "status", st, "detail", detail);
    if (scim_type != NULL)
        json_object_set_new(e, "scimType", json_string(scim_type));
    return e;
}

void cloud_reply_send(struct cloud_req *req, int status, json_t *body, const char *ctype)
{
    req->status = status;
    req->ctype = ctype;
    if (body != NULL) {
        req->text = json_dumps(body, JSON_COMPACT);
        req->text_len = req->text != NULL ? strlen(req->text) : 0;
        json_decref(body);
        if (req->text == NULL) {
            req->status = 500;
            req->ctype = "application/json";
            req->text = strdup("{\"status\":500,\"detail\":\"out of memory\"}");
            req->text_len = req->text != NULL ? strlen(req->text) : 0;
        }
    }
    if (req->answered != NULL) {
        req->answered(req); /* the loop thread sends it */
        return;
    }
    cloud_reply_deliver(req);
}

/* Replace the kept body of req by JSON text of body (stolen). */
static void set_text(struct cloud_req *req, json_t *body)
{
    free(req->text);
    req->text = json_dumps(body, JSON_COMPACT);
    req->text_len = req->text != NULL ? strlen(req->text) : 0;
    json_decref(body);
}

void cloud_reply_deliver(struct cloud_req *req)
{
    int status = req->status;
    struct evkeyvalq *out = &req->out_headers;
    bool drop = false;
    if (req->faultable && status < 400) {
        /* only answers of requests that were applied (or were harmless reads) */
        bool e500 = false;
        cloud_fault_after(&req->ctx->fault, &e500, &drop);
        if (e500) {
            evhttp_remove_header(out, "ETag");
            evhttp_remove_header(out, "Location");
            status = 500;
            drop = false;
            if (cloud_reply_is_scim(req))
                set_text(req, scim_error_json(500, NULL, "injected fault: applied, then failed"));
            else
                set_text(req, json_pack("{s:i, s:s, s:s}", "status", 500, "error", "injectedFault",
                                        "detail", "injected fault: applied, then failed"));
            req->ctype = cloud_reply_is_scim(req) ? "application/scim+json" : "application/json";
        }
    }
    struct evbuffer *buf = evbuffer_new();
    if (req->text != NULL) {
        size_t len = req->text_len;
        if (drop && len > 1) {
            char cl[32];
            snprintf(cl, sizeof(cl), "%zu", len);
            evhttp_remove_header(out, "Content-Length");
            evhttp_add_header(out, "Content-Length", cl);
            evhttp_add_header(out, "Connection", "close");
            len /= 2;
        }
        evbuffer_add(buf, req->text, len);
        evhttp_add_header(out, "Content-Type",
                          req->ctype != NULL ? req->ctype : "application/json");
    } else if (drop) {
        evhttp_add_header(out, "Content-Length", "2");
        evhttp_add_header(out, "Connection", "close");
        evbuffer_add(buf, "{", 1);
    }
    struct evkeyvalq *evout = evhttp_request_get_output_headers(req->ev);
    struct evkeyval *h;
    TAILQ_FOREACH(h, out, next)
    evhttp_add_header(evout, h->key, h->value);
    log_request(req, status);
    evhttp_send_reply(req->ev, status, reason(status), buf);
    evbuffer_free(buf);
    cloud_reply_free(req);
}

void cloud_reply_scim_error(struct cloud_req *req, int status, const char *scim_type,
                            const char *fmt, ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    cloud_reply_send(req, status, scim_error_json(status, scim_type, detail),
                     "application/scim+json");
}

static void api_error_v(struct cloud_req *req, int status, const char *code, const char *fmt,
                        va_list ap)
{
    char detail[600];
    vsnprintf(detail, sizeof(detail), fmt, ap);
    json_t *e = json_pack("{s:i, s:s, s:s}", "status", status, "error", code, "detail", detail);
    cloud_reply_send(req, status, e, "application/json");
}

void cloud_reply_api_error(struct cloud_req *req, int status, const char *code, const char *fmt,
                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_error_v(req, status, code, fmt, ap);
    va_end(ap);
}

void cloud_reply_error(struct cloud_req *req, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cloud_reply_is_scim(req)) {
        char detail[600];
        vsnprintf(detail, sizeof(detail), fmt, ap);
        /* SCIM scimType values: the RFC 7644 3.12 ones, and tooLarge on the 413 of a body
         * over --max-body or maxPayloadSize (RFC 7644 3.7.4 gives that 413 no keyword; the
         * cloud names it, docs/cloud-api.md 4.9). */
        static const char *const scim_types[] = {"invalidFilter", "tooMany",       "uniqueness",
                                                 "mutability",    "invalidSyntax", "invalidPath",
                                                 "noTarget",      "invalidValue",  "invalidVers",
                                                 "sensitive",     "tooLarge",      NULL};
        const char *st = NULL;
        for (const char *const *p = scim_types; code != NULL && *p != NULL; p++) {
            if (strcmp(*p, code) == 0)
                st = *p;
        }
        cloud_reply_send(req, status, scim_error_json(status, st, detail), "application/scim+json");
    } else {
        api_error_v(req, status, code, fmt, ap);
    }
    va_end(ap);
}

bool cloud_reply_org_exists(struct cloud_ctx *ctx, const char *org)
{
    for (size_t i = 0; i < ctx->cfg.norgs; i++) {
        if (strcmp(ctx->cfg.orgs[i], org) == 0)
            return true;
    }
    return false;
}

static void unauthorized(struct cloud_req *req, const char *error, const char *detail)
{
    char h[160];
    if (error != NULL)
        snprintf(h, sizeof(h), "Bearer realm=\"dirconn-cloud\", error=\"%s\"", error);
    else
        snprintf(h, sizeof(h), "Bearer realm=\"dirconn-cloud\"");
    cloud_reply_header(req, "WWW-Authenticate", h);
    cloud_reply_error(req, 401, "unauthorized", "%s", detail);
}

int cloud_reply_authenticate(struct cloud_req *req, const char *org)
{
    struct cloud_ctx *ctx = req->ctx;
    const char *h = cloud_reply_input_header(req, "Authorization");
    if (h == NULL) {
        unauthorized(req, NULL, "authentication required: Authorization: Bearer <token>");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(req, "invalid_request", "the Authorization scheme must be Bearer");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    unsigned char md[32];
    cloud_sha256(tok, strlen(tok), md);
    if (CRYPTO_memcmp(md, ctx->admin_hash, sizeof(md)) == 0) {
        req->auth = CLOUD_AUTH_ADMIN;
        return 0;
    }
    struct cloud_store *st = req->st;
    sqlite3_stmt *s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_GET);
    sqlite3_bind_blob(s, 1, md, sizeof(md), SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || sqlite3_column_bytes(s, 0) != 32 ||
        CRYPTO_memcmp(sqlite3_column_blob(s, 0), md, 32) != 0) {
        sqlite3_reset(s);
        unauthorized(req, "invalid_token", "the access token is unknown or revoked");
        return -1;
    }
    snprintf(req->auth_org, sizeof(req->auth_org), "%s", (const char *)sqlite3_column_text(s, 1));
    snprintf(req->connector_id, sizeof(req->connector_id), "%s",
             (const char *)sqlite3_column_text(s, 2));
    int64_t expires = sqlite3_column_int64(s, 3);
    sqlite3_reset(s);
    int64_t now = cloud_now_ms();
    if (expires <= now) {
        req->connector_id[0] = '\0';
        unauthorized(req, "invalid_token", "the access token has expired");
        return -1;
    }
    req->auth = CLOUD_AUTH_CONNECTOR;
    if (strcmp(req->auth_org, org) != 0) {
        cloud_reply_error(req, 403, "forbidden", "the access token is not valid for org '%s'", org);
        return -1;
    }
    const char *version = cloud_reply_input_header(req, CLOUD_VERSION_HEADER);
    s = cloud_store_stmt(st, CLOUD_STMT_CONN_SEEN);
    sqlite3_bind_text(s, 1, req->connector_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, now);
    if (version != NULL && strlen(version) <= 64)
        sqlite3_bind_text(s, 3, version, -1, SQLITE_TRANSIENT);
    cloud_store_exec(st, s);
    return 0;
}
