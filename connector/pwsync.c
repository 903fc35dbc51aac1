/* pwsync.c - password synchronisation, the connector's side (pwsync.h). */
#include "connector/pwsync.h"

#include "connector/cloud_auth.h"
#include "connector/select.h"
#include "proxy/proxy.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the change --------------------------------------------------------------------------- */

void pwsync_change_clear(struct pwsync_change *c)
{
    if (c == NULL)
        return;
    if (c->password != NULL) {
        OPENSSL_cleanse(c->password, c->len);
        free(c->password);
    }
    free(c->dn);
    memset(c, 0, sizeof(*c));
}

/* Wipe the string value of member key of obj in place (jansson's own buffer). */
static void wipe_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

enum dirconn_err pwsync_change_parse(const char *body, size_t len, struct pwsync_change *out,
                                     struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return dirconn_error_set(err, DIRCONN_EFAIL, "malformed JSON body: line %d, column %d",
                                 je.line, je.column);
    enum dirconn_err e = DIRCONN_OK;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "objectGUID") != 0 && strcmp(k, "password") != 0 && strcmp(k, "dn") != 0) {
            e = dirconn_error_set(err, DIRCONN_EFAIL, "unknown member '%.64s'", k);
            break;
        }
    }
    json_t *guid = json_object_get(j, "objectGUID"), *pw = json_object_get(j, "password"),
           *dn = json_object_get(j, "dn");
    unsigned char raw[16];
    if (e != DIRCONN_OK) {
        /* reported */
    } else if (!json_is_object(j)) {
        e = dirconn_error_set(err, DIRCONN_EFAIL, "the body must be a JSON object");
    } else if (!json_is_string(guid) || !ldap_guid_from_string(json_string_value(guid), raw)) {
        e = dirconn_error_set(err, DIRCONN_EFAIL, "objectGUID must be a GUID string");
    } else if (!json_is_string(pw) || json_string_length(pw) == 0 ||
               json_string_length(pw) > PWSYNC_MAX_PASSWORD ||
               strlen(json_string_value(pw)) != json_string_length(pw)) {
        e = dirconn_error_set(err, DIRCONN_EFAIL,
                              "password must be a non-empty string of at most %d bytes without NUL",
                              PWSYNC_MAX_PASSWORD);
    } else if (dn != NULL && !json_is_string(dn)) {
        e = dirconn_error_set(err, DIRCONN_EFAIL, "dn must be a string");
    } else {
        ldap_guid_to_string(raw, out->guid);
        out->len = json_string_length(pw);
        out->password = malloc(out->len + 1);
        out->dn = dn != NULL ? strdup(json_string_value(dn)) : NULL;
        if (out->password == NULL || (dn != NULL && out->dn == NULL)) {
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        } else {
            memcpy(out->password, json_string_value(pw), out->len + 1);
        }
    }
    if (json_is_object(j))
        wipe_member(j, "password");
    json_decref(j);
    if (e != DIRCONN_OK)
        pwsync_change_clear(out);
    return e;
}

/* --- the rules ---------------------------------------------------------------------------- */

bool pwsync_password_ok(const char *pw, size_t len, char *why, size_t whylen)
{
    size_t chars = 0;
    bool lower = false, upper = false, digit = false, other = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pw[i];
        if ((c & 0xC0) != 0x80)
            chars++; /* a lead byte or ASCII: one code point */
        if (c >= 'a' && c <= 'z')
            lower = true;
        else if (c >= 'A' && c <= 'Z')
            upper = true;
        else if (c >= '0' && c <= '9')
            digit = true;
        else
            other = true;
    }
    int classes = lower + upper + digit + other;
    if (chars < 8) {
        snprintf(why, whylen,
                 "the password has %zu characters; the cloud's password rules need at least 8",
                 chars);
        return false;
    }
    if (classes < 3) {
        snprintf(why, whylen,
                 "the password has %d of the 4 character classes (lower case, upper case, digit, "
                 "non-alphanumeric); the cloud's password rules need at least 3",
                 classes);
        return false;
    }
    if (whylen > 0)
        why[0] = '\0';
    return true;
}

/* --- applying it -------------------------------------------------------------------------- */

const char *pwsync_outcome_name(enum pwsync_outcome o)
{
    static const char *const n[] = {"applied",    "weak",        "notInScope",
                                    "notInCloud", "notWritable", "failed"};
    return (unsigned)o < sizeof(n) / sizeof(n[0]) ? n[o] : "failed";
}

bool pwsync_outcome_final(enum pwsync_outcome o)
{
    return o != PWSYNC_FAILED;
}

static enum pwsync_outcome refuse(const struct log_sink *log, enum pwsync_outcome o, char *detail,
                                  size_t dlen, const char *dn, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(detail, dlen, "%s", why);
    log_msg(log, LOG_LEVEL_WARN, "password change for %s not applied (%s): %s", dn,
            pwsync_outcome_name(o), why);
    return o;
}

enum pwsync_outcome pwsync_apply(const struct scim_port *port, struct state *st,
                                 const struct provider *prov, const struct log_sink *log,
                                 const struct pwsync_change *ch, char *detail, size_t dlen)
{
    struct state_object obj = {0};
    bool found = false;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    const char *seen_dn = ch->dn != NULL ? ch->dn : ch->guid;
    if (state_object_get(st, ch->guid, &obj, &found, &err) != DIRCONN_OK)
        return refuse(log, PWSYNC_FAILED, detail, dlen, seen_dn, "%s", err.msg);
    const char *dn = found && obj.dn != NULL ? obj.dn : seen_dn;
    enum pwsync_outcome o = PWSYNC_APPLIED;
    char why[512];
    if (!pwsync_password_ok(ch->password, ch->len, why, sizeof(why))) {
        o = refuse(log, PWSYNC_WEAK, detail, dlen, dn, "%s; not sent", why);
    } else if (!found || obj.kind != OBJECT_USER) {
        o = refuse(log, PWSYNC_NOT_IN_SCOPE, detail, dlen, dn,
                   "objectGUID %s is not a user of the connector's scope (in a synchronised "
                   "group or base DN) as of the last sync",
                   ch->guid);
    } else if (obj.cloud_id == NULL || obj.cloud_id[0] == '\0') {
        o = refuse(log, PWSYNC_NOT_IN_CLOUD, detail, dlen, dn,
                   "the user is not in the cloud yet; its password is set at its next change");
    } else {
        const char *reason = NULL;
        if (!provider_check(prov, OBJECT_USER, "password", NULL, NULL, &reason)) {
            o = refuse(log, PWSYNC_NOT_WRITABLE, detail, dlen, dn,
                       "%s, so passwords are not synchronised", reason);
        } else if (!provider_features(prov)->patch) {
            o = refuse(log, PWSYNC_NOT_WRITABLE, detail, dlen, dn,
                       "the cloud does not support PATCH (patch.supported false), so passwords "
                       "are not synchronised");
        }
    }
    if (o != PWSYNC_APPLIED) {
        state_object_clear(&obj);
        return o;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", provider_endpoint(prov, OBJECT_USER), obj.cloud_id);
    json_t *body = json_pack("{s:[s], s:[{s:s, s:s, s:s%}]}", "schemas",
                             "urn:ietf:params:scim:api:messages:2.0:PatchOp", "Operations", "op",
                             "replace", "path", "password", "value", ch->password, ch->len);
    struct scim_response resp = {0};
    enum dirconn_err e =
        body == NULL ? DIRCONN_ENOMEM : scim_port_request(port, "PATCH", path, body, NULL, &resp);
    if (body != NULL) {
        json_t *op = json_array_get(json_object_get(body, "Operations"), 0);
        wipe_member(op, "value");
        json_decref(body);
    }
    if (e == DIRCONN_OK) {
        snprintf(detail, dlen, "the cloud acknowledged the password of %s", dn);
        log_msg(log, LOG_LEVEL_INFO, "password change for %s applied (cloud id %s)", dn,
                obj.cloud_id);
    } else {
        o = refuse(log, PWSYNC_FAILED, detail, dlen, dn, "%s",
                   resp.error[0] != '\0' ? resp.error : dirconn_strerror(e));
    }
    scim_response_clear(&resp);
    state_object_clear(&obj);
    return o;
}

/* --- the daemon's session ----------------------------------------------------------------- */

struct pwsync_session {
    const struct log_sink *log;
    char *scim_base;
    struct proxy_ctx *proxy;
    struct cloud_auth *auth;
    struct scim_client *scim;
    struct provider *prov;
    struct state *st;
};

void pwsync_session_close(struct pwsync_session *s)
{
    if (s == NULL)
        return;
    state_close(s->st);
    provider_free(s->prov);
    scim_client_free(s->scim);
    cloud_auth_free(s->auth);
    proxy_free(s->proxy);
    free(s->scim_base);
    free(s);
}

enum dirconn_err pwsync_session_open(const struct config *cfg, const struct log_sink *log,
                                     struct proxy_shared *shared, const char *fencing_token,
                                     const _Atomic int64_t *write_deadline_ms,
                                     struct pwsync_session **out, struct dirconn_error *err)
{
    *out = NULL;
    if (cfg->cloud_scim_url == NULL && (cfg->cloud_url == NULL || cfg->cloud_org == NULL))
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: [cloud] needs url and org (or scim_url) to synchronise",
                                 cfg->path);
    struct pwsync_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    s->log = log;
    if (cfg->cloud_scim_url != NULL) {
        s->scim_base = strdup(cfg->cloud_scim_url);
    } else {
        size_t ul = strlen(cfg->cloud_url), len = ul + strlen(cfg->cloud_org) + 16;
        s->scim_base = malloc(len);
        if (s->scim_base != NULL)
            snprintf(s->scim_base, len, "%.*s/scim/v2/%s",
                     (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
                     cfg->cloud_org);
    }
    enum dirconn_err e = s->scim_base == NULL
                             ? dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory")
                             : proxy_new(cfg, log, shared, &s->proxy, err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cfg, proxy_configure, s->proxy, &s->auth, err);
    if (e == DIRCONN_OK) {
        cloud_auth_set_outcome(s->auth, proxy_outcome);
        struct scim_client_options so = {
            .base_url = s->scim_base,
            .ca_file = cfg->cloud_ca_file,
            .max_in_flight = 1,
            .max_retries = 2,
            .token = cloud_auth_token,
            .token_arg = s->auth,
            .configure = proxy_configure,
            .outcome = proxy_outcome,
            .configure_arg = s->proxy,
            .log = log,
            .write_deadline_ms = write_deadline_ms,
        };
        e = scim_client_new(&so, &s->scim, err);
    }
    if (e == DIRCONN_OK && fencing_token != NULL)
        e = scim_client_set_header(s->scim, "Dirconn-Fencing-Token", fencing_token);
    if (e == DIRCONN_OK && config_ha_lease_name(cfg->ha_lease) != NULL)
        e = scim_client_set_header(s->scim, "Dirconn-HA-Mode", config_ha_lease_name(cfg->ha_lease));
    if (e == DIRCONN_OK) {
        struct scim_port port = scim_client_port(s->scim);
        struct provider_settings settings = {.single_valued = NULL,
                                             .delete_cascades = cfg->cloud_delete_cascades};
        e = provider_discover(&port, log, &settings, &s->prov, err);
    }
    if (e == DIRCONN_OK)
        e = state_open(cfg->state_dir, &s->st, err);
    if (e != DIRCONN_OK) {
        pwsync_session_close(s);
        return e;
    }
    *out = s;
    return DIRCONN_OK;
}

enum pwsync_outcome pwsync_session_apply(struct pwsync_session *s, const struct pwsync_change *ch,
                                         char *detail, size_t dlen)
{
    struct scim_port port = scim_client_port(s->scim);
    return pwsync_apply(&port, s->st, s->prov, s->log, ch, detail, dlen);
}
