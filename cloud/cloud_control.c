/* cloud_control.c - OAuth token endpoint, connectors, lease, fencing, state, reports, stats. */
#include "cloud/cloud_control.h"
#include "cloud/cloud_hamode.h"
#include "cloud/cloud_password.h"
#include "cloud/cloud_schema.h"

#include <ctype.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#define CT_JSON "application/json"

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static json_t *time_json(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return json_null();
    char buf[40];
    cloud_format_time(sqlite3_column_int64(s, col), buf, sizeof(buf));
    return json_string(buf);
}

static void db_error(struct cloud_req *req)
{
    log_msg(&req->ctx->log, LOG_LEVEL_ERROR, "database: %s", cloud_store_errmsg(req->st));
    cloud_store_rollback(req->st);
    cloud_reply_error(req, 500, "internal", "database error");
}

/* Parse the request body as JSON; answers 400 and returns NULL on failure. */
static json_t *parse_body(struct cloud_req *req, size_t flags)
{
    json_error_t e;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | flags, &e);
    if (j == NULL)
        cloud_reply_error(req, 400, "invalidJson", "malformed JSON body: %s (line %d, column %d)",
                          e.text, e.line, e.column);
    return j;
}

/* Strict member check: every key of obj must be in allowed (NULL-terminated). */
static const char *unknown_member(const json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        const char *const *a;
        for (a = allowed; *a != NULL; a++) {
            if (strcmp(*a, k) == 0)
                break;
        }
        if (*a == NULL)
            return k;
    }
    return NULL;
}

/* --- OAuth 2.0 client credentials (RFC 6749 4.4) ----------------------------------------- */

static void oauth_error(struct cloud_req *req, int status, const char *error, const char *desc)
{
    if (status == 401)
        cloud_reply_header(req, "WWW-Authenticate", "Basic realm=\"dirconn-cloud\"");
    cloud_reply_header(req, "Cache-Control", "no-store");
    cloud_reply_header(req, "Pragma", "no-cache");
    cloud_reply_send(req, status,
                     json_pack("{s:s, s:s}", "error", error, "error_description", desc), CT_JSON);
}

/* Decode "Basic base64(urlenc(id):urlenc(secret))" (RFC 6749 2.3.1, RFC 7617). */
static int parse_basic(const char *h, char **id, char **secret)
{
    *id = *secret = NULL;
    if (strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > 4096)
        return -1;
    unsigned char *raw = malloc(len / 4 * 3 + 1);
    if (raw == NULL)
        return -1;
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0) {
        free(raw);
        return -1;
    }
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    raw[n] = '\0';
    char *colon = memchr(raw, ':', (size_t)n);
    if (colon == NULL || strlen((char *)raw) != (size_t)n) {
        OPENSSL_cleanse(raw, (size_t)n);
        free(raw);
        return -1;
    }
    *colon = '\0';
    *id = evhttp_uridecode((char *)raw, 1, NULL);
    *secret = evhttp_uridecode(colon + 1, 1, NULL);
    OPENSSL_cleanse(raw, (size_t)n);
    free(raw);
    if (*id == NULL || *secret == NULL) {
        free(*id);
        free(*secret);
        *id = *secret = NULL;
        return -1;
    }
    return 0;
}

/* Is column col of row s the 32-byte SHA-256 md? (constant time) */
static bool hash_equal(sqlite3_stmt *s, int col, const unsigned char md[32])
{
    return sqlite3_column_bytes(s, col) == 32 &&
           CRYPTO_memcmp(sqlite3_column_blob(s, col), md, 32) == 0;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void cloud_control_oauth_token(struct cloud_req *req)
{
    struct cloud_ctx *ctx = req->ctx;
    if (req->method != EVHTTP_REQ_POST) {
        cloud_reply_header(req, "Allow", "POST");
        oauth_error(req, 405, "invalid_request", "use POST");
        return;
    }
    const char *ct = cloud_reply_input_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oauth_error(req, 400, "invalid_request",
                    "the body must be application/x-www-form-urlencoded");
        return;
    }
    struct evkeyvalq form;
    TAILQ_INIT(&form);
    if (evhttp_parse_query_str(req->body, &form) != 0) {
        evhttp_clear_headers(&form);
        oauth_error(req, 400, "invalid_request", "malformed form body");
        return;
    }
    const char *grant = evhttp_find_header(&form, "grant_type");
    const char *fid = evhttp_find_header(&form, "client_id");
    const char *fsecret = evhttp_find_header(&form, "client_secret");
    const char *authz = cloud_reply_input_header(req, "Authorization");
    char *id = NULL, *secret = NULL;
    int status = 0;
    const char *error = NULL, *desc = NULL;
    if (grant == NULL) {
        status = 400, error = "invalid_request", desc = "grant_type is missing";
    } else if (strcmp(grant, "client_credentials") != 0) {
        status = 400, error = "unsupported_grant_type", desc = "only client_credentials";
    } else if (authz != NULL) {
        if (fsecret != NULL) {
            status = 400, error = "invalid_request",
            desc = "use one client authentication method, not two";
        } else if (parse_basic(authz, &id, &secret) != 0) {
            status = 401, error = "invalid_client", desc = "malformed Basic credentials";
        } else if (fid != NULL && strcmp(fid, id) != 0) {
            status = 400, error = "invalid_request", desc = "client_id differs from Basic user";
        }
    } else if (fid == NULL || fsecret == NULL) {
        status = 401, error = "invalid_client", desc = "client authentication required";
    } else {
        id = strdup(fid);
        secret = strdup(fsecret);
    }
    if (status == 0 && (id == NULL || secret == NULL)) {
        status = 500, error = "server_error", desc = "out of memory";
    }
    char org[80] = "";
    unsigned char pending_md[32];
    bool promote = false; /* the pending secret was used: it becomes the secret now */
    if (status == 0) {
        sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_CONN_GET);
        bind_text(s, 1, id);
        unsigned char md[32];
        cloud_sha256(secret, strlen(secret), md);
        bool known = sqlite3_step(s) == SQLITE_ROW;
        if (known)
            snprintf(org, sizeof(org), "%s", (const char *)sqlite3_column_text(s, 1));
        bool current = known && hash_equal(s, 4, md);
        sqlite3_reset(s);
        if (known && !current) {
            s = cloud_store_stmt(req->st, CLOUD_STMT_PENDING_GET);
            bind_text(s, 1, id);
            promote = sqlite3_step(s) == SQLITE_ROW && hash_equal(s, 0, md);
            sqlite3_reset(s);
            memcpy(pending_md, md, sizeof(md));
        }
        if (!current && !promote)
            status = 401, error = "invalid_client", desc = "unknown client or wrong secret";
        OPENSSL_cleanse(md, sizeof(md));
    }
    evhttp_clear_headers(&form);
    if (status != 0) {
        free(id);
        free_secret(secret);
        oauth_error(req, status, error, desc);
        return;
    }
    free_secret(secret);
    char token[65];
    if (cloud_random_hex(token, 32) != 0) {
        free(id);
        oauth_error(req, 500, "server_error", "no randomness");
        return;
    }
    unsigned char md[32];
    cloud_sha256(token, strlen(token), md);
    int64_t now = cloud_now_ms();
    struct cloud_store *st = req->st;
    sqlite3_stmt *s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_PURGE);
    sqlite3_bind_int64(s, 1, now - 86400000);
    cloud_store_exec(st, s);
    int rc = SQLITE_DONE;
    if (promote) {
        /* One transaction: the pending secret replaces the old one, and every token issued
         * before (with the old secret) is revoked with it, before the new token exists. */
        rc = cloud_store_begin(st) == SQLITE_OK ? SQLITE_DONE : SQLITE_ERROR;
        if (rc == SQLITE_DONE) {
            s = cloud_store_stmt(st, CLOUD_STMT_CONN_SECRET_SET);
            bind_text(s, 1, id);
            sqlite3_bind_blob(s, 2, pending_md, 32, SQLITE_TRANSIENT);
            rc = cloud_store_exec(st, s);
        }
        if (rc == SQLITE_DONE) {
            s = cloud_store_stmt(st, CLOUD_STMT_PENDING_DELETE);
            bind_text(s, 1, id);
            rc = cloud_store_exec(st, s);
        }
        if (rc == SQLITE_DONE) {
            s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_DELETE_CONN);
            bind_text(s, 1, id);
            rc = cloud_store_exec(st, s);
        }
        OPENSSL_cleanse(pending_md, sizeof(pending_md));
    }
    s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_INSERT);
    sqlite3_bind_blob(s, 1, md, 32, SQLITE_TRANSIENT);
    bind_text(s, 2, org);
    bind_text(s, 3, id);
    sqlite3_bind_int64(s, 4, now + ctx->cfg.token_ttl_s * 1000);
    if (rc == SQLITE_DONE)
        rc = cloud_store_exec(st, s);
    if (promote) {
        if (rc == SQLITE_DONE && cloud_store_commit(st) != SQLITE_OK)
            rc = SQLITE_ERROR;
        if (rc != SQLITE_DONE)
            cloud_store_rollback(st);
        else
            log_msg(&ctx->log, LOG_LEVEL_INFO,
                    "org %s: connector %s used its new secret: the old one and its tokens are "
                    "revoked",
                    org, id);
    }
    if (rc == SQLITE_DONE) {
        s = cloud_store_stmt(st, CLOUD_STMT_CONN_SEEN);
        bind_text(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        const char *version = cloud_reply_input_header(req, CLOUD_VERSION_HEADER);
        if (version != NULL && strlen(version) <= 64)
            bind_text(s, 3, version);
        cloud_store_exec(st, s);
    }
    snprintf(req->connector_id, sizeof(req->connector_id), "%s", id);
    req->auth = CLOUD_AUTH_CONNECTOR; /* for the log line */
    free(id);
    if (rc != SQLITE_DONE) {
        OPENSSL_cleanse(token, sizeof(token));
        oauth_error(req, 500, "server_error", "database error");
        return;
    }
    cloud_reply_header(req, "Cache-Control", "no-store");
    cloud_reply_header(req, "Pragma", "no-cache");
    json_t *body = json_pack("{s:s, s:s, s:I}", "access_token", token, "token_type", "Bearer",
                             "expires_in", (json_int_t)ctx->cfg.token_ttl_s);
    OPENSSL_cleanse(token, sizeof(token));
    cloud_reply_send(req, 200, body, CT_JSON);
}

/* --- connectors -------------------------------------------------------------------------- */

/* CONN_GET / CONN_LIST row to JSON. */
static json_t *connector_json(sqlite3_stmt *s)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", sqlite3_column_text(s, 0), "name",
                          sqlite3_column_text(s, 2), "host", sqlite3_column_text(s, 3),
                          "registeredAt", time_json(s, 5), "lastSeen", time_json(s, 6));
    if (sqlite3_column_type(s, 7) != SQLITE_NULL)
        json_object_set_new(c, "version", json_string((const char *)sqlite3_column_text(s, 7)));
    return c;
}

/* Look up connector id in org; returns a JSON description or NULL (not found). */
static json_t *connector_get(struct cloud_req *req, const char *org, const char *id)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_CONN_GET);
    bind_text(s, 1, id);
    json_t *c = NULL;
    if (sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 1), org) == 0)
        c = connector_json(s);
    sqlite3_reset(s);
    return c;
}

static bool require_admin(struct cloud_req *req)
{
    if (req->auth == CLOUD_AUTH_ADMIN)
        return true;
    cloud_reply_api_error(req, 403, "forbidden", "this call needs the admin token");
    return false;
}

static bool valid_text(const json_t *v, size_t max)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

static enum cloud_ha_mode hamode_effective(struct cloud_req *req, const char *org,
                                           enum cloud_ha_mode *recorded, bool *live);
static void hamode_refuse(struct cloud_req *req, const char *org, enum cloud_ha_mode effective,
                          bool held_unrecorded, enum cloud_ha_mode declared);
static int hamode_store(struct cloud_req *req, const char *org, enum cloud_ha_mode m,
                        const char *by);

static void connectors_register(struct cloud_req *req, const char *org)
{
    struct cloud_ctx *ctx = req->ctx;
    if (!require_admin(req))
        return;
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    static const char *const allowed[] = {"name", "host", "haMode", NULL};
    const char *unk = json_is_object(b) ? unknown_member(b, allowed) : NULL;
    if (!json_is_object(b) || unk != NULL) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest",
                              unk != NULL ? "unknown member" : "body must be an object");
        return;
    }
    json_t *name = json_object_get(b, "name"), *host = json_object_get(b, "host");
    if (!valid_text(name, 128) || !valid_text(host, 255)) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest",
                              "name (1-128 chars) and host (1-255 chars) are required strings");
        return;
    }
    /* The mode the connector will run with (docs/cloud-api.md "HA mode"): checked and recorded. */
    json_t *mode = json_object_get(b, "haMode");
    enum cloud_ha_mode declared = CLOUD_HA_UNSET, recorded;
    if (mode != NULL && !cloud_ha_mode_parse(json_string_value(mode), &declared)) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest", "haMode must be cloud, etcd or none");
        return;
    }
    enum cloud_ha_mode eff = hamode_effective(req, org, &recorded, NULL);
    if (!cloud_ha_mode_accepts(eff, declared)) {
        json_decref(b);
        hamode_refuse(req, org, eff, recorded == CLOUD_HA_UNSET, declared);
        return;
    }
    char id[37], secret[65];
    if (cloud_uuid(id) != 0 || cloud_random_hex(secret, 32) != 0) {
        json_decref(b);
        cloud_reply_api_error(req, 500, "internal", "no randomness");
        return;
    }
    unsigned char md[32];
    cloud_sha256(secret, strlen(secret), md);
    int64_t now = cloud_now_ms();
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_CONN_INSERT);
    bind_text(s, 1, id);
    bind_text(s, 2, org);
    bind_text(s, 3, json_string_value(name));
    bind_text(s, 4, json_string_value(host));
    sqlite3_bind_blob(s, 5, md, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, now);
    int rc = cloud_store_exec(req->st, s);
    json_decref(b);
    enum cloud_ha_mode rec = cloud_ha_mode_to_record(recorded, declared, CLOUD_HA_ACT_REGISTER);
    if (rc == SQLITE_DONE && rec != CLOUD_HA_UNSET) {
        char by[120];
        snprintf(by, sizeof(by), "registration of connector %s", id);
        if (hamode_store(req, org, rec, by) != 0)
            rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_DONE) {
        OPENSSL_cleanse(secret, sizeof(secret));
        db_error(req);
        return;
    }
    json_t *c = connector_get(req, org, id);
    json_object_set_new(c, "secret", json_string(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    char loc[512];
    snprintf(loc, sizeof(loc), "%s/v1/orgs/%s/connectors/%s", ctx->base_url, org, id);
    cloud_reply_header(req, "Location", loc);
    cloud_reply_header(req, "Cache-Control", "no-store");
    cloud_reply_send(req, 201, c, CT_JSON);
}

static void connectors_list(struct cloud_req *req, const char *org)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_CONN_LIST);
    bind_text(s, 1, org);
    json_t *arr = json_array();
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(arr, connector_json(s));
    sqlite3_reset(s);
    cloud_reply_send(req, 200, json_pack("{s:o}", "connectors", arr), CT_JSON);
}

/* Lease row of org: fills the fields; returns 0 or -1. */
struct lease {
    char holder[40];
    bool has_holder;
    long long duration_s;
    long long acquire_ms, renew_ms;
    bool has_acquire, has_renew;
    long long transitions;
    long long rv;
};

static int lease_load(struct cloud_req *req, const char *org, struct lease *l)
{
    memset(l, 0, sizeof(*l));
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_LEASE_GET);
    bind_text(s, 1, org);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return -1;
    }
    if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
        l->has_holder = true;
        snprintf(l->holder, sizeof(l->holder), "%s", (const char *)sqlite3_column_text(s, 0));
    }
    l->duration_s = sqlite3_column_int64(s, 1);
    l->has_acquire = sqlite3_column_type(s, 2) != SQLITE_NULL;
    l->acquire_ms = sqlite3_column_int64(s, 2);
    l->has_renew = sqlite3_column_type(s, 3) != SQLITE_NULL;
    l->renew_ms = sqlite3_column_int64(s, 3);
    l->transitions = sqlite3_column_int64(s, 4);
    l->rv = sqlite3_column_int64(s, 5);
    sqlite3_reset(s);
    return 0;
}

static bool lease_expired(const struct lease *l, int64_t now)
{
    return l->has_holder && l->renew_ms + l->duration_s * 1000 <= now;
}

static int lease_store(struct cloud_req *req, const char *org, const struct lease *l)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_LEASE_SET);
    bind_text(s, 1, org);
    bind_text(s, 2, l->has_holder ? l->holder : NULL);
    sqlite3_bind_int64(s, 3, l->duration_s);
    if (l->has_acquire)
        sqlite3_bind_int64(s, 4, l->acquire_ms);
    if (l->has_renew)
        sqlite3_bind_int64(s, 5, l->renew_ms);
    sqlite3_bind_int64(s, 6, l->transitions);
    return cloud_store_exec(req->st, s) == SQLITE_DONE ? 0 : -1;
}

/* --- HA mode (docs/cloud-api.md "HA mode") --------------------------------------------------- */

/* The recorded mode of org (CLOUD_HA_UNSET: none); *ms and by (may be NULL) when recorded. */
static enum cloud_ha_mode hamode_load(struct cloud_req *req, const char *org, long long *ms,
                                      char *by, size_t byn)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_HAMODE_GET);
    bind_text(s, 1, org);
    enum cloud_ha_mode m = CLOUD_HA_UNSET;
    if (sqlite3_step(s) == SQLITE_ROW) {
        cloud_ha_mode_parse((const char *)sqlite3_column_text(s, 0), &m);
        if (ms != NULL)
            *ms = sqlite3_column_int64(s, 1);
        if (by != NULL)
            snprintf(by, byn, "%s", (const char *)sqlite3_column_text(s, 2));
    }
    sqlite3_reset(s);
    return m;
}

/* Record mode m for org (CLOUD_HA_UNSET: forget it); returns 0 or -1. */
static int hamode_store(struct cloud_req *req, const char *org, enum cloud_ha_mode m,
                        const char *by)
{
    sqlite3_stmt *s;
    if (m == CLOUD_HA_UNSET) {
        s = cloud_store_stmt(req->st, CLOUD_STMT_HAMODE_DELETE);
        bind_text(s, 1, org);
    } else {
        s = cloud_store_stmt(req->st, CLOUD_STMT_HAMODE_SET);
        bind_text(s, 1, org);
        bind_text(s, 2, cloud_ha_mode_name(m));
        sqlite3_bind_int64(s, 3, cloud_now_ms());
        bind_text(s, 4, by);
    }
    if (cloud_store_exec(req->st, s) != SQLITE_DONE)
        return -1;
    log_msg(&req->ctx->log, LOG_LEVEL_INFO, "org %s: HA mode %s%s (%s)", org,
            m == CLOUD_HA_UNSET ? "forgotten" : "recorded: ",
            m == CLOUD_HA_UNSET ? "" : cloud_ha_mode_name(m), by);
    return 0;
}

/* The mode in force in org: the recorded one, else the cloud lease while one is held. */
static enum cloud_ha_mode hamode_effective(struct cloud_req *req, const char *org,
                                           enum cloud_ha_mode *recorded, bool *live)
{
    enum cloud_ha_mode r = hamode_load(req, org, NULL, NULL, 0);
    struct lease l;
    bool held = lease_load(req, org, &l) == 0 && l.has_holder && !lease_expired(&l, cloud_now_ms());
    if (recorded != NULL)
        *recorded = r;
    if (live != NULL)
        *live = held;
    return cloud_ha_mode_effective(r, held);
}

/* Answer 409 haModeMismatch naming both modes (header Dirconn-HA-Mode: the org's). */
static void hamode_refuse(struct cloud_req *req, const char *org, enum cloud_ha_mode effective,
                          bool held_unrecorded, enum cloud_ha_mode declared)
{
    char msg[400];
    cloud_ha_mode_mismatch(msg, sizeof(msg), org, effective, held_unrecorded, declared);
    log_msg(&req->ctx->log, LOG_LEVEL_WARN, "org %s: refused %s: %s", org,
            req->auth == CLOUD_AUTH_CONNECTOR ? req->connector_id : "a registration", msg);
    cloud_reply_header(req, CLOUD_HA_MODE_HEADER, cloud_ha_mode_name(effective));
    cloud_reply_error(req, 409, "haModeMismatch", "%s", msg);
}

/* The mode a request declares (header Dirconn-HA-Mode); answers 400 and returns -1 when bad. */
static int hamode_declared(struct cloud_req *req, enum cloud_ha_mode *out)
{
    *out = CLOUD_HA_UNSET;
    const char *h = cloud_reply_input_header(req, CLOUD_HA_MODE_HEADER);
    if (h == NULL || cloud_ha_mode_parse(h, out))
        return 0;
    cloud_reply_error(req, 400, "invalidRequest", "%s must be cloud, etcd or none",
                      CLOUD_HA_MODE_HEADER);
    return -1;
}

int cloud_control_ha_mode(struct cloud_req *req, const char *org, enum cloud_ha_act act)
{
    if (req->auth != CLOUD_AUTH_CONNECTOR)
        return 0;
    enum cloud_ha_mode declared, recorded;
    if (hamode_declared(req, &declared) != 0)
        return -1;
    if (act == CLOUD_HA_ACT_LEASE && declared == CLOUD_HA_UNSET)
        declared = CLOUD_HA_CLOUD; /* taking the cloud lease is the cloud mode */
    bool live;
    enum cloud_ha_mode eff = hamode_effective(req, org, &recorded, &live);
    if (!cloud_ha_mode_accepts(eff, declared)) {
        hamode_refuse(req, org, eff, recorded == CLOUD_HA_UNSET, declared);
        return -1;
    }
    enum cloud_ha_mode rec = cloud_ha_mode_to_record(recorded, declared, act);
    if (rec != CLOUD_HA_UNSET) {
        char by[120];
        snprintf(by, sizeof(by), "%s of connector %s",
                 act == CLOUD_HA_ACT_LEASE ? "lease" : "first write", req->connector_id);
        if (hamode_store(req, org, rec, by) != 0) {
            db_error(req);
            return -1;
        }
    }
    return 0;
}

static json_t *hamode_json(struct cloud_req *req, const char *org)
{
    long long ms = 0;
    char by[120] = "";
    enum cloud_ha_mode m = hamode_load(req, org, &ms, by, sizeof(by));
    bool live;
    enum cloud_ha_mode eff = hamode_effective(req, org, NULL, &live);
    char at[40];
    if (m != CLOUD_HA_UNSET)
        cloud_format_time(ms, at, sizeof(at));
    const char *en = cloud_ha_mode_name(eff);
    return json_pack("{s:o, s:o, s:o, s:o, s:b}", "haMode",
                     m != CLOUD_HA_UNSET ? json_string(cloud_ha_mode_name(m)) : json_null(),
                     "inForce", en != NULL ? json_string(en) : json_null(), "recordedAt",
                     m != CLOUD_HA_UNSET ? json_string(at) : json_null(), "recordedBy",
                     m != CLOUD_HA_UNSET ? json_string(by) : json_null(), "leaseHeld", live);
}

static void hamode_get(struct cloud_req *req, const char *org)
{
    cloud_reply_send(req, 200, hamode_json(req, org), CT_JSON);
}

/* PUT ha-mode (admin): {"haMode": "cloud"|"etcd"|"none"|null, "force": bool}. */
static void hamode_put(struct cloud_req *req, const char *org)
{
    struct cloud_ctx *ctx = req->ctx;
    if (!require_admin(req))
        return;
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    static const char *const allowed[] = {"haMode", "force", NULL};
    json_t *mode = json_object_get(b, "haMode"), *force = json_object_get(b, "force");
    enum cloud_ha_mode to = CLOUD_HA_UNSET;
    const char *bad = NULL;
    if (!json_is_object(b))
        bad = "body must be an object";
    else if (unknown_member(b, allowed) != NULL)
        bad = "unknown member (haMode, force)";
    else if (mode == NULL ||
             (!json_is_null(mode) && !cloud_ha_mode_parse(json_string_value(mode), &to)))
        bad = "haMode must be \"cloud\", \"etcd\", \"none\" or null";
    else if (force != NULL && !json_is_boolean(force))
        bad = "force must be a boolean";
    bool forced = json_is_true(force);
    json_decref(b);
    if (bad != NULL) {
        cloud_reply_api_error(req, 400, "invalidRequest", "%s", bad);
        return;
    }
    struct lease l;
    if (lease_load(req, org, &l) != 0) {
        db_error(req);
        return;
    }
    int64_t now = cloud_now_ms();
    bool live = l.has_holder && !lease_expired(&l, now), release = false;
    if (!cloud_ha_mode_change(to, l.has_holder, live, forced, &release)) {
        cloud_reply_api_error(req, 409, "leaseHeld",
                              "the cloud lease is held by %s until it expires: stop that "
                              "connector first, or force the change (its writes are then fenced)",
                              l.holder);
        return;
    }
    struct cloud_store *st = req->st;
    int ok = cloud_store_begin(st) == SQLITE_OK;
    if (ok && release) {
        l.has_holder = l.has_acquire = l.has_renew = false;
        l.transitions++;
        ok = lease_store(req, org, &l) == 0;
    }
    ok = ok && hamode_store(req, org, to, "the admin token") == 0;
    if (!ok || cloud_store_commit(st) != SQLITE_OK) {
        db_error(req);
        return;
    }
    if (release)
        log_msg(&ctx->log, LOG_LEVEL_INFO,
                "org %s: lease released by the change of HA mode (transitions %lld)", org,
                l.transitions);
    cloud_reply_send(req, 200, hamode_json(req, org), CT_JSON);
}

static void connector_delete(struct cloud_req *req, const char *org, const char *id)
{
    struct cloud_ctx *ctx = req->ctx;
    if (!require_admin(req))
        return;
    json_t *c = connector_get(req, org, id);
    if (c == NULL) {
        cloud_reply_api_error(req, 404, "notFound", "no connector '%s' in org '%s'", id, org);
        return;
    }
    json_decref(c);
    struct cloud_store *st = req->st;
    if (cloud_store_begin(st) != SQLITE_OK) {
        db_error(req);
        return;
    }
    sqlite3_stmt *s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_DELETE_CONN);
    bind_text(s, 1, id);
    int ok = cloud_store_exec(st, s) == SQLITE_DONE;
    s = cloud_store_stmt(st, CLOUD_STMT_CONN_DELETE);
    bind_text(s, 1, id);
    ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
    s = cloud_store_stmt(st, CLOUD_STMT_PENDING_DELETE);
    bind_text(s, 1, id);
    ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
    struct lease l;
    if (ok && lease_load(req, org, &l) == 0 && l.has_holder && strcmp(l.holder, id) == 0) {
        l.has_holder = false;
        l.has_acquire = l.has_renew = false;
        l.transitions++;
        ok = lease_store(req, org, &l) == 0;
        log_msg(&ctx->log, LOG_LEVEL_INFO, "org %s: lease released by deregistration of %s", org,
                id);
    }
    if (!ok || cloud_store_commit(st) != SQLITE_OK) {
        db_error(req);
        return;
    }
    cloud_reply_send(req, 204, NULL, NULL);
}

/*
 * POST connectors/{id}/secret (docs/cloud-api.md "Connectors"). With the admin token the new
 * secret replaces the old one at once and every token of the connector is revoked. With the
 * connector's own token (only for its own id) the rotation has two phases, so that a client
 * that loses the answer, or cannot save it, is not locked out: the new secret is kept as
 * pending beside the old one, which goes on working; the first token obtained with the new
 * secret makes it the secret and revokes the old one and every token issued with it
 * (cloud_control_oauth_token). A second rotation replaces a pending secret never used.
 */
static void connector_reset_secret(struct cloud_req *req, const char *org, const char *id)
{
    struct cloud_ctx *ctx = req->ctx;
    bool self = req->auth == CLOUD_AUTH_CONNECTOR;
    if (self && strcmp(req->connector_id, id) != 0) {
        cloud_reply_api_error(req, 403, "forbidden",
                              "a connector may only rotate its own secret (use the admin token)");
        return;
    }
    if (!self && !require_admin(req))
        return;
    json_t *c = connector_get(req, org, id);
    if (c == NULL) {
        cloud_reply_api_error(req, 404, "notFound", "no connector '%s' in org '%s'", id, org);
        return;
    }
    char secret[65];
    if (cloud_random_hex(secret, 32) != 0) {
        json_decref(c);
        cloud_reply_api_error(req, 500, "internal", "no randomness");
        return;
    }
    unsigned char md[32];
    cloud_sha256(secret, strlen(secret), md);
    struct cloud_store *st = req->st;
    int ok = cloud_store_begin(st) == SQLITE_OK;
    sqlite3_stmt *s;
    if (self) {
        s = cloud_store_stmt(st, CLOUD_STMT_PENDING_SET);
        bind_text(s, 1, id);
        sqlite3_bind_blob(s, 2, md, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, cloud_now_ms());
        ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
    } else {
        s = cloud_store_stmt(st, CLOUD_STMT_CONN_SECRET_SET);
        bind_text(s, 1, id);
        sqlite3_bind_blob(s, 2, md, 32, SQLITE_TRANSIENT);
        ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
        s = cloud_store_stmt(st, CLOUD_STMT_PENDING_DELETE);
        bind_text(s, 1, id);
        ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
        s = cloud_store_stmt(st, CLOUD_STMT_TOKEN_DELETE_CONN);
        bind_text(s, 1, id);
        ok = ok && cloud_store_exec(st, s) == SQLITE_DONE;
    }
    OPENSSL_cleanse(md, sizeof(md));
    if (!ok || cloud_store_commit(st) != SQLITE_OK) {
        json_decref(c);
        OPENSSL_cleanse(secret, sizeof(secret));
        db_error(req);
        return;
    }
    if (self)
        log_msg(&ctx->log, LOG_LEVEL_INFO,
                "org %s: connector %s rotates its secret: the new one is pending until it is "
                "used",
                org, id);
    json_object_set_new(c, "secret", json_string(secret));
    json_object_set_new(c, "secretPending", json_boolean(self));
    OPENSSL_cleanse(secret, sizeof(secret));
    cloud_reply_header(req, "Cache-Control", "no-store");
    cloud_reply_send(req, 200, c, CT_JSON);
}

/* --- lease ------------------------------------------------------------------------------- */

static json_t *lease_json(const struct lease *l, int64_t now)
{
    char a[40], r[40], srv[40], rv[32];
    if (l->has_acquire)
        cloud_format_time(l->acquire_ms, a, sizeof(a));
    if (l->has_renew)
        cloud_format_time(l->renew_ms, r, sizeof(r));
    cloud_format_time(now, srv, sizeof(srv));
    snprintf(rv, sizeof(rv), "%lld", l->rv);
    return json_pack("{s:o, s:I, s:o, s:o, s:I, s:s, s:b, s:s}", "holderIdentity",
                     l->has_holder ? json_string(l->holder) : json_null(), "leaseDurationSeconds",
                     (json_int_t)l->duration_s, "acquireTime",
                     l->has_acquire ? json_string(a) : json_null(), "renewTime",
                     l->has_renew ? json_string(r) : json_null(), "leaseTransitions",
                     (json_int_t)l->transitions, "resourceVersion", rv, "expired",
                     lease_expired(l, now), "serverTime", srv);
}

static void set_etag(struct cloud_req *req, long long v)
{
    char etag[40];
    snprintf(etag, sizeof(etag), "\"%lld\"", v);
    cloud_reply_header(req, "ETag", etag);
}

/* Does the If-Match header value name version v ("*", "5", "\"5\"", W/"5", lists)? */
static bool if_match(const char *h, long long v)
{
    char want[32];
    snprintf(want, sizeof(want), "%lld", v);
    const char *p = h;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        const char *t = p;
        if (n == 1 && *t == '*')
            return true;
        if (n >= 2 && t[0] == 'W' && t[1] == '/')
            t += 2, n -= 2;
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"')
            t++, n -= 2;
        if (n == strlen(want) && strncmp(t, want, n) == 0)
            return true;
        p += (e != NULL ? (size_t)(e - p) : strlen(p));
    }
    return false;
}

static void lease_get(struct cloud_req *req, const char *org)
{
    struct lease l;
    if (lease_load(req, org, &l) != 0) {
        db_error(req);
        return;
    }
    set_etag(req, l.rv);
    cloud_reply_send(req, 200, lease_json(&l, cloud_now_ms()), CT_JSON);
}

static bool connector_in_org(struct cloud_req *req, const char *org, const char *id)
{
    json_t *c = connector_get(req, org, id);
    json_decref(c);
    return c != NULL;
}

static void lease_put(struct cloud_req *req, const char *org)
{
    struct cloud_ctx *ctx = req->ctx;
    const char *im = cloud_reply_input_header(req, "If-Match");
    if (im == NULL) {
        cloud_reply_api_error(req, 412, "preconditionFailed",
                              "PUT lease needs If-Match with the current resourceVersion");
        return;
    }
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    static const char *const allowed[] = {
        "holderIdentity", "leaseDurationSeconds", "acquireTime",
        "renewTime",      "leaseTransitions",     "resourceVersion",
        "expired",        "serverTime",           NULL};
    const char *unk = json_is_object(b) ? unknown_member(b, allowed) : NULL;
    json_t *holder = json_object_get(b, "holderIdentity");
    json_t *dur = json_object_get(b, "leaseDurationSeconds");
    const char *bad = NULL;
    if (!json_is_object(b))
        bad = "body must be an object";
    else if (unk != NULL)
        bad = "unknown member in lease";
    else if (holder == NULL || (!json_is_null(holder) && !json_is_string(holder)))
        bad = "holderIdentity (string or null) is required";
    else if (json_is_string(holder) &&
             (dur == NULL || !json_is_integer(dur) || json_integer_value(dur) < 1 ||
              json_integer_value(dur) > 86400))
        bad = "leaseDurationSeconds (1-86400) is required with a holder";
    else if (dur != NULL && !json_is_integer(dur))
        bad = "leaseDurationSeconds must be an integer";
    if (bad != NULL) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest", "%s", bad);
        return;
    }
    struct lease l;
    if (lease_load(req, org, &l) != 0) {
        json_decref(b);
        db_error(req);
        return;
    }
    if (!if_match(im, l.rv)) {
        json_decref(b);
        set_etag(req, l.rv);
        cloud_reply_api_error(req, 412, "preconditionFailed",
                              "If-Match does not name the current resourceVersion %lld", l.rv);
        return;
    }
    int64_t now = cloud_now_ms();
    const char *want = json_is_string(holder) ? json_string_value(holder) : NULL;
    bool expired = lease_expired(&l, now);
    int status = 0;
    const char *code = NULL;
    char detail[200] = "";
    if (want != NULL && !connector_in_org(req, org, want)) {
        status = 400, code = "invalidHolder";
        snprintf(detail, sizeof(detail), "holderIdentity must be a registered connector of %s",
                 org);
    } else if (req->auth == CLOUD_AUTH_CONNECTOR) {
        if (want != NULL && strcmp(want, req->connector_id) != 0) {
            status = 403, code = "forbidden";
            snprintf(detail, sizeof(detail), "a connector may only name itself as holder");
        } else if (l.has_holder && !expired && strcmp(l.holder, req->connector_id) != 0) {
            status = 409, code = "leaseHeld";
            snprintf(detail, sizeof(detail), "the lease is held by %s until it expires", l.holder);
        }
    }
    if (status != 0) {
        json_decref(b);
        cloud_reply_api_error(req, status, code, "%s", detail);
        return;
    }
    /* A connector taking the lease uses the cloud lease: refused in an org with another mode,
     * and recorded in one with none (docs/cloud-api.md "HA mode"). */
    if (want != NULL && cloud_control_ha_mode(req, org, CLOUD_HA_ACT_LEASE) != 0) {
        json_decref(b);
        return;
    }
    bool change = (want == NULL) != !l.has_holder ||
                  (want != NULL && l.has_holder && strcmp(want, l.holder) != 0);
    if (change)
        l.transitions++;
    if (want != NULL) {
        if (change || !l.has_acquire) {
            l.acquire_ms = now;
            l.has_acquire = true;
        }
        l.has_holder = true;
        snprintf(l.holder, sizeof(l.holder), "%s", want);
        l.duration_s = json_integer_value(dur);
        l.renew_ms = now;
        l.has_renew = true;
    } else {
        l.has_holder = l.has_acquire = l.has_renew = false;
        if (dur != NULL)
            l.duration_s = json_integer_value(dur);
    }
    json_decref(b);
    if (lease_store(req, org, &l) != 0 || lease_load(req, org, &l) != 0) {
        db_error(req);
        return;
    }
    if (change)
        log_msg(&ctx->log, LOG_LEVEL_INFO, "org %s: lease holder now %s (transitions %lld)", org,
                l.has_holder ? l.holder : "none", l.transitions);
    set_etag(req, l.rv);
    cloud_reply_send(req, 200, lease_json(&l, now), CT_JSON);
}

int cloud_control_fence(struct cloud_req *req, const char *org)
{
    struct cloud_ctx *ctx = req->ctx;
    if (req->auth != CLOUD_AUTH_CONNECTOR)
        return 0;
    if (cloud_control_ha_mode(req, org, CLOUD_HA_ACT_WRITE) != 0)
        return -1;
    struct lease l;
    if (lease_load(req, org, &l) != 0) {
        db_error(req);
        return -1;
    }
    const char *h = cloud_reply_input_header(req, CLOUD_FENCING_HEADER);
    const char *why = NULL;
    if (h == NULL) {
        if (cloud_ha_mode_tokenless_ok(hamode_effective(req, org, NULL, NULL), l.transitions))
            return 0;
        why = "the org uses the cloud lease: writes must carry " CLOUD_FENCING_HEADER;
    } else {
        char *end;
        long long tok = strtoll(h, &end, 10);
        if (*h == '\0' || *end != '\0' || !isdigit((unsigned char)*h))
            why = "malformed " CLOUD_FENCING_HEADER;
        else if (!l.has_holder || strcmp(l.holder, req->connector_id) != 0)
            why = "this connector does not hold the lease";
        else if (lease_expired(&l, cloud_now_ms()))
            why = "the lease has expired";
        else if (tok != l.transitions)
            why = "stale fencing token";
    }
    if (why == NULL)
        return 0;
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_ORG_FENCED_INC);
    bind_text(s, 1, org);
    cloud_store_exec(req->st, s);
    log_msg(&ctx->log, LOG_LEVEL_WARN, "org %s: fenced write from %s: %s", org, req->connector_id,
            why);
    cloud_reply_header(req, "Dirconn-Fenced", "1");
    cloud_reply_error(req, 409, "fenced", "write rejected by fencing: %s (current token %lld)", why,
                      l.transitions);
    return -1;
}

/* --- connector state --------------------------------------------------------------------- */

static void state_get(struct cloud_req *req, const char *org)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_ORG_GET);
    bind_text(s, 1, org);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        db_error(req);
        return;
    }
    json_t *doc = json_loads((const char *)sqlite3_column_text(s, 1), JSON_DECODE_ANY, NULL);
    long long v = sqlite3_column_int64(s, 2);
    sqlite3_reset(s);
    set_etag(req, v);
    cloud_reply_send(req, 200, doc != NULL ? doc : json_object(), CT_JSON);
}

static void state_put(struct cloud_req *req, const char *org)
{
    const char *im = cloud_reply_input_header(req, "If-Match");
    if (im == NULL) {
        cloud_reply_api_error(req, 412, "preconditionFailed",
                              "PUT state needs If-Match with the current ETag");
        return;
    }
    json_t *doc = parse_body(req, JSON_DECODE_ANY);
    if (doc == NULL)
        return;
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_ORG_GET);
    bind_text(s, 1, org);
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 2) : -1;
    sqlite3_reset(s);
    if (!if_match(im, v)) {
        json_decref(doc);
        set_etag(req, v);
        cloud_reply_api_error(req, 412, "preconditionFailed",
                              "If-Match does not name the current state version %lld", v);
        return;
    }
    if (cloud_control_fence(req, org) != 0) {
        json_decref(doc);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    s = cloud_store_stmt(req->st, CLOUD_STMT_ORG_STATE_SET);
    bind_text(s, 1, org);
    bind_text(s, 2, text);
    int rc = cloud_store_exec(req->st, s);
    free(text);
    if (rc != SQLITE_DONE) {
        json_decref(doc);
        db_error(req);
        return;
    }
    set_etag(req, v + 1);
    cloud_reply_send(req, 200, doc, CT_JSON);
}

/* --- reports ----------------------------------------------------------------------------- */

static void report_post(struct cloud_req *req, const char *org, const char *id)
{
    if (req->auth == CLOUD_AUTH_CONNECTOR && strcmp(req->connector_id, id) != 0) {
        cloud_reply_api_error(req, 403, "forbidden", "a connector reports only for itself");
        return;
    }
    if (!connector_in_org(req, org, id)) {
        cloud_reply_api_error(req, 404, "notFound", "no connector '%s' in org '%s'", id, org);
        return;
    }
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    static const char *const allowed[] = {"type",    "start",           "end",     "counts",
                                          "message", "thresholdEvents", "version", NULL};
    static const char *const counts[] = {"added",   "updated", "deleted", "matched",
                                         "skipped", "failed",  NULL};
    const char *bad = NULL;
    json_t *type = json_object_get(b, "type"), *start = json_object_get(b, "start"),
           *end = json_object_get(b, "end"), *cnt = json_object_get(b, "counts"),
           *te = json_object_get(b, "thresholdEvents"), *msg = json_object_get(b, "message"),
           *ver = json_object_get(b, "version");
    long long ms0 = 0, ms1 = 0;
    if (!json_is_object(b))
        bad = "body must be an object";
    else if (unknown_member(b, allowed) != NULL)
        bad = "unknown member in report";
    else if (!json_is_string(type) || (strcmp(json_string_value(type), "full") != 0 &&
                                       strcmp(json_string_value(type), "incremental") != 0 &&
                                       strcmp(json_string_value(type), "dry-run") != 0))
        bad = "type must be full, incremental or dry-run";
    else if (!json_is_string(start) || !cloud_schema_parse_datetime(json_string_value(start), &ms0))
        bad = "start must be an RFC 3339 date-time";
    else if (!json_is_string(end) || !cloud_schema_parse_datetime(json_string_value(end), &ms1))
        bad = "end must be an RFC 3339 date-time";
    else if (ms1 < ms0)
        bad = "end is before start";
    else if (!json_is_object(cnt) || unknown_member(cnt, counts) != NULL)
        bad = "counts must be an object with added, updated, deleted, matched, skipped, failed";
    else if (te != NULL && !json_is_array(te))
        bad = "thresholdEvents must be an array";
    else if (msg != NULL && !json_is_string(msg))
        bad = "message must be a string";
    else if (ver != NULL && !valid_text(ver, 64))
        bad = "version must be a short string";
    if (bad == NULL) {
        for (const char *const *c = counts; *c != NULL; c++) {
            json_t *v = json_object_get(cnt, *c);
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                bad = "every count is a required non-negative integer";
                break;
            }
        }
    }
    if (bad != NULL) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest", "%s", bad);
        return;
    }
    if (te == NULL)
        json_object_set_new(b, "thresholdEvents", json_array());
    int64_t now = cloud_now_ms();
    char *text = json_dumps(b, JSON_COMPACT);
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_REPORT_INSERT);
    bind_text(s, 1, org);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, now);
    bind_text(s, 4, text);
    int rc = cloud_store_exec(req->st, s);
    free(text);
    if (rc != SQLITE_DONE) {
        json_decref(b);
        db_error(req);
        return;
    }
    char ts[40];
    cloud_format_time(now, ts, sizeof(ts));
    json_object_set_new(b, "id", json_integer(sqlite3_last_insert_rowid(req->st->db)));
    json_object_set_new(b, "connectorId", json_string(id));
    json_object_set_new(b, "receivedAt", json_string(ts));
    cloud_reply_send(req, 201, b, CT_JSON);
}

static void reports_list(struct cloud_req *req, const char *org, const char *id)
{
    const char *lim = cloud_reply_query(req, "limit");
    long limit = 20;
    if (lim != NULL) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (*lim == '\0' || *end != '\0' || limit < 1 || limit > 1000) {
            cloud_reply_api_error(req, 400, "invalidRequest", "limit must be 1-1000");
            return;
        }
    }
    if (id != NULL && !connector_in_org(req, org, id)) {
        cloud_reply_api_error(req, 404, "notFound", "no connector '%s' in org '%s'", id, org);
        return;
    }
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_REPORT_LIST);
    bind_text(s, 1, org);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, limit);
    json_t *arr = json_array();
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *r = json_loads((const char *)sqlite3_column_text(s, 3), 0, NULL);
        if (r == NULL)
            continue;
        json_object_set_new(r, "id", json_integer(sqlite3_column_int64(s, 0)));
        json_object_set_new(r, "connectorId", json_string((const char *)sqlite3_column_text(s, 1)));
        json_object_set_new(r, "receivedAt", time_json(s, 2));
        json_array_append_new(arr, r);
    }
    sqlite3_reset(s);
    cloud_reply_send(req, 200, json_pack("{s:o}", "reports", arr), CT_JSON);
}

/* --- stats ------------------------------------------------------------------------------- */

static long long count_of(struct cloud_req *req, enum cloud_stmt which, const char *org, int kind)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, which);
    bind_text(s, 1, org);
    if (kind >= 0)
        sqlite3_bind_int(s, 2, kind);
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return n;
}

static void stats_get(struct cloud_req *req, const char *org)
{
    sqlite3_stmt *s = cloud_store_stmt(req->st, CLOUD_STMT_ORG_GET);
    bind_text(s, 1, org);
    long long fenced = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    struct lease l;
    lease_load(req, org, &l);
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:{s:o, s:I}}", "org", org,
                          "fencedRejections", (json_int_t)fenced, "users",
                          (json_int_t)count_of(req, CLOUD_STMT_RES_COUNT, org, 0), "groups",
                          (json_int_t)count_of(req, CLOUD_STMT_RES_COUNT, org, 1), "contacts",
                          (json_int_t)count_of(req, CLOUD_STMT_RES_COUNT, org, 2), "connectors",
                          (json_int_t)count_of(req, CLOUD_STMT_CONN_COUNT, org, -1), "lease",
                          "holderIdentity", l.has_holder ? json_string(l.holder) : json_null(),
                          "leaseTransitions", (json_int_t)l.transitions);
    const char *mode = cloud_ha_mode_name(hamode_load(req, org, NULL, NULL, 0));
    json_object_set_new(o, "haMode", mode != NULL ? json_string(mode) : json_null());
    cloud_reply_send(req, 200, o, CT_JSON);
}

/* 1 when id is a User of org, else 0. */
static int count_of_user(struct cloud_req *req, const char *org, const char *id)
{
    sqlite3_stmt *q = cloud_store_stmt(req->st, CLOUD_STMT_RES_GET);
    bind_text(q, 1, org);
    bind_text(q, 2, id);
    int n = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0;
    sqlite3_reset(q);
    return n;
}

/*
 * POST /password-check (admin): {"userName" | "id", "password"} -> whether the User's stored
 * salted hash matches (docs/cloud-api.md 4.11). For tests and administrators; the cleartext
 * is wiped after the comparison and never logged.
 */
static void password_check(struct cloud_req *req, const char *org)
{
    if (!require_admin(req))
        return;
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    static const char *const allowed[] = {"userName", "id", "password", NULL};
    json_t *un = json_object_get(b, "userName"), *idv = json_object_get(b, "id"),
           *pw = json_object_get(b, "password");
    const char *bad = NULL;
    if (!json_is_object(b))
        bad = "body must be an object";
    else if (unknown_member(b, allowed) != NULL)
        bad = "unknown member in body";
    else if ((un == NULL) == (idv == NULL) || (un != NULL && !json_is_string(un)) ||
             (idv != NULL && !json_is_string(idv)))
        bad = "give exactly one of userName and id, as a string";
    else if (!json_is_string(pw))
        bad = "password must be a string";
    char id[64] = "";
    if (bad == NULL && idv != NULL) {
        snprintf(id, sizeof(id), "%s", json_string_value(idv));
    } else if (bad == NULL) {
        char lc[512];
        snprintf(lc, sizeof(lc), "%s", json_string_value(un));
        for (char *c = lc; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        sqlite3_stmt *q = cloud_store_stmt(req->st, CLOUD_STMT_RES_BY_USERNAME);
        bind_text(q, 1, org);
        bind_text(q, 2, lc);
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_reset(q);
    }
    struct cloud_password_info info;
    int rc = 0;
    if (bad == NULL && id[0] != '\0')
        rc = cloud_password_check(req->st, org, id, json_string_value(pw), json_string_length(pw),
                                  &info);
    if (json_is_string(pw))
        OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
    json_decref(b);
    if (bad != NULL) {
        cloud_reply_api_error(req, 400, "invalidRequest", "%s", bad);
        return;
    }
    if (id[0] == '\0' || count_of_user(req, org, id) == 0) {
        cloud_reply_api_error(req, 404, "notFound", "no such User in org '%s'", org);
        return;
    }
    if (rc != 0) {
        db_error(req);
        return;
    }
    json_t *o = json_pack("{s:s, s:b, s:b, s:I}", "id", id, "passwordSet", info.set, "match",
                          info.match, "changes", (json_int_t)info.changes);
    if (info.set) {
        char t[40];
        cloud_format_time(info.set_ms, t, sizeof(t));
        json_object_set_new(o, "setAt", json_string(t));
    }
    cloud_reply_send(req, 200, o, CT_JSON);
}

/* --- routing ----------------------------------------------------------------------------- */

static void method_not_allowed(struct cloud_req *req, const char *allow)
{
    cloud_reply_header(req, "Allow", allow);
    cloud_reply_api_error(req, 405, "methodNotAllowed", "method not allowed here");
}

void cloud_control_handle(struct cloud_req *req)
{
    const char *org = req->segs[2];
    if (!cloud_reply_org_exists(req->ctx, org)) {
        cloud_reply_api_error(req, 404, "unknownOrg", "no organisation '%s'", org);
        return;
    }
    if (cloud_reply_authenticate(req, org) != 0 ||
        cloud_control_ha_mode(req, org, CLOUD_HA_ACT_READ) != 0)
        return;
    enum evhttp_cmd_type m = req->method;
    size_t n = req->nsegs - 3;
    char **p = req->segs + 3;
    if (n == 1 && strcmp(p[0], "connectors") == 0) {
        if (m == EVHTTP_REQ_GET)
            connectors_list(req, org);
        else if (m == EVHTTP_REQ_POST)
            connectors_register(req, org);
        else
            method_not_allowed(req, "GET, POST");
        return;
    }
    if (n >= 2 && strcmp(p[0], "connectors") == 0) {
        const char *id = p[1];
        if (n == 2) {
            if (m == EVHTTP_REQ_GET) {
                json_t *c = connector_get(req, org, id);
                if (c == NULL)
                    cloud_reply_api_error(req, 404, "notFound", "no connector '%s'", id);
                else
                    cloud_reply_send(req, 200, c, CT_JSON);
            } else if (m == EVHTTP_REQ_DELETE) {
                connector_delete(req, org, id);
            } else {
                method_not_allowed(req, "GET, DELETE");
            }
            return;
        }
        if (n == 3 && strcmp(p[2], "secret") == 0) {
            if (m == EVHTTP_REQ_POST)
                connector_reset_secret(req, org, id);
            else
                method_not_allowed(req, "POST");
            return;
        }
        if (n == 3 && strcmp(p[2], "reports") == 0) {
            if (m == EVHTTP_REQ_POST)
                report_post(req, org, id);
            else if (m == EVHTTP_REQ_GET)
                reports_list(req, org, id);
            else
                method_not_allowed(req, "GET, POST");
            return;
        }
    }
    if (n == 1 && strcmp(p[0], "reports") == 0) {
        if (m == EVHTTP_REQ_GET)
            reports_list(req, org, NULL);
        else
            method_not_allowed(req, "GET");
        return;
    }
    if (n == 1 && strcmp(p[0], "lease") == 0) {
        if (m == EVHTTP_REQ_GET)
            lease_get(req, org);
        else if (m == EVHTTP_REQ_PUT)
            lease_put(req, org);
        else
            method_not_allowed(req, "GET, PUT");
        return;
    }
    if (n == 1 && strcmp(p[0], "state") == 0) {
        if (m == EVHTTP_REQ_GET)
            state_get(req, org);
        else if (m == EVHTTP_REQ_PUT)
            state_put(req, org);
        else
            method_not_allowed(req, "GET, PUT");
        return;
    }
    if (n == 1 && strcmp(p[0], "ha-mode") == 0) {
        if (m == EVHTTP_REQ_GET)
            hamode_get(req, org);
        else if (m == EVHTTP_REQ_PUT)
            hamode_put(req, org);
        else
            method_not_allowed(req, "GET, PUT");
        return;
    }
    if (n == 1 && strcmp(p[0], "password-check") == 0) {
        if (m == EVHTTP_REQ_POST)
            password_check(req, org);
        else
            method_not_allowed(req, "POST");
        return;
    }
    if (n == 1 && strcmp(p[0], "stats") == 0) {
        if (m == EVHTTP_REQ_GET)
            stats_get(req, org);
        else
            method_not_allowed(req, "GET");
        return;
    }
    cloud_reply_api_error(req, 404, "notFound", "no such endpoint");
}

void cloud_control_orgs(struct cloud_req *req)
{
    if (cloud_reply_authenticate(req, "") != 0 || !require_admin(req))
        return;
    if (req->method != EVHTTP_REQ_GET) {
        method_not_allowed(req, "GET");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < req->ctx->cfg.norgs; i++)
        json_array_append_new(arr, json_string(req->ctx->cfg.orgs[i]));
    cloud_reply_send(req, 200, json_pack("{s:o}", "orgs", arr), CT_JSON);
}

void cloud_control_faults(struct cloud_req *req)
{
    if (cloud_reply_authenticate(req, "") != 0)
        return;
    if (!require_admin(req))
        return;
    if (req->method == EVHTTP_REQ_GET) {
        cloud_reply_send(req, 200, cloud_fault_json(&req->ctx->fault), CT_JSON);
        return;
    }
    if (req->method != EVHTTP_REQ_PUT) {
        method_not_allowed(req, "GET, PUT");
        return;
    }
    json_t *b = parse_body(req, 0);
    if (b == NULL)
        return;
    char msg[200];
    if (cloud_fault_update(&req->ctx->fault, b, msg, sizeof(msg)) != 0) {
        json_decref(b);
        cloud_reply_api_error(req, 400, "invalidRequest", "%s", msg);
        return;
    }
    json_decref(b);
    log_msg(&req->ctx->log, LOG_LEVEL_INFO, "fault settings changed");
    cloud_reply_send(req, 200, cloud_fault_json(&req->ctx->fault), CT_JSON);
}
