/* cloud_auth.c - OAuth 2.0 client credentials and static bearer tokens. */
#include "connector/cloud_auth.h"

#include "connector/core/secret_store.h"
#include "connector/core/platform.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cloud_auth {
    const struct config *cfg;
    http_configure_fn configure;
    http_outcome_fn outcome;
    void *configure_arg;
    char *token;
    char *identity;     /* the connector id the last token was issued to (oauth2), or NULL */
    int64_t expires_ms; /* monotonic time after which the token is renewed */
};

enum dirconn_err cloud_auth_new(const struct config *cfg, http_configure_fn configure, void *arg,
                                struct cloud_auth **out, struct dirconn_error *err)
{
    *out = NULL;
    if (cfg->cloud_auth == CLOUD_AUTH_OAUTH2) {
        /* client_id and client_secret_file come together; without both, the
         * registration in the secret store is used (dirconnctl register). */
        const char *missing =
            cfg->cloud_url == NULL ? "url"
            : cfg->cloud_client_id != NULL && cfg->cloud_client_secret_file == NULL
                ? "client_secret_file"
            : cfg->cloud_client_id == NULL && cfg->cloud_client_secret_file != NULL ? "client_id"
                                                                                    : NULL;
        if (missing != NULL)
            return dirconn_error_set(err, DIRCONN_ECONFIG,
                                     "%s: [cloud] %s is required with auth = oauth2%s", cfg->path,
                                     missing,
                                     strcmp(missing, "url") == 0
                                         ? ""
                                         : " (or leave out both client_id and client_secret_file "
                                           "to use the registration in the secret store)");
    }
    struct cloud_auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    a->cfg = cfg;
    a->configure = configure;
    a->configure_arg = arg;
    *out = a;
    return DIRCONN_OK;
}

void cloud_auth_set_outcome(struct cloud_auth *a, http_outcome_fn outcome)
{
    a->outcome = outcome;
}

void cloud_auth_free(struct cloud_auth *a)
{
    if (a == NULL)
        return;
    secret_free(a->token);
    free(a->identity);
    free(a);
}

const char *cloud_auth_identity(const struct cloud_auth *a)
{
    return a != NULL ? a->identity : NULL;
}

/* The largest answer of the token endpoint kept (NUL included). */
#define TOKEN_BODY_MAX 16384

/* POST grant_type=client_credentials to the token endpoint. */
static enum dirconn_err fetch_oauth_token(struct cloud_auth *a, struct dirconn_error *err)
{
    const struct config *cfg = a->cfg;
    char *secret = NULL;
    char *client_id = NULL; /* from the secret store when not in the config */
    enum dirconn_err e;
    if (cfg->cloud_client_id != NULL) {
        e = secret_file_read(cfg->cloud_client_secret_file, "[cloud] client_secret_file", &secret,
                             err);
    } else {
        e = secret_store_get(cfg, SECRET_CONNECTOR_ID, &client_id, err);
        if (e == DIRCONN_OK)
            e = secret_store_get(cfg, SECRET_CONNECTOR_SECRET, &secret, err);
    }
    if (e != DIRCONN_OK) {
        secret_store_free_value(client_id);
        return e;
    }
    const char *id = cfg->cloud_client_id != NULL ? cfg->cloud_client_id : client_id;
    struct http_request req;
    e = http_request_init(&req, TOKEN_BODY_MAX, true, NULL); /* the answer holds the token */
    CURL *h = req.easy;
    char *uid = h ? curl_easy_escape(h, id, 0) : NULL;
    char *usecret = h ? curl_easy_escape(h, secret, 0) : NULL;
    secret_free(secret);
    char url[2200];
    size_t ulen = strlen(cfg->cloud_url);
    snprintf(url, sizeof(url), "%.*s/oauth/token",
             (int)(ulen > 0 && cfg->cloud_url[ulen - 1] == '/' ? ulen - 1 : ulen), cfg->cloud_url);
    if (e != DIRCONN_OK || uid == NULL || usecret == NULL) {
        if (usecret != NULL)
            OPENSSL_cleanse(usecret, strlen(usecret));
        curl_free(uid);
        curl_free(usecret);
        http_request_cleanup(&req);
        secret_store_free_value(client_id);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    const struct http_options ho = {
        .ca_file = cfg->cloud_ca_file, .timeout_ms = 30000, .connect_timeout_ms = 10000};
    http_request_setup(&req, &ho, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "grant_type=client_credentials");
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, uid);
    curl_easy_setopt(h, CURLOPT_PASSWORD, usecret);
    /* One transfer per route: the outcome hook may ask for another proxy at once. */
    struct dirconn_error note;
    const struct http_transport t = {a->configure, a->outcome, a->configure_arg};
    e = http_perform(&req, &t, url, &note);
    if (e != DIRCONN_OK)
        dirconn_error_set(err, e, "POST %s: %s", url, note.msg);
    long status = req.status;
    CURLcode rc = req.rc;
    OPENSSL_cleanse(usecret, strlen(usecret));
    curl_free(uid);
    curl_free(usecret);
    if (e != DIRCONN_OK) {
        http_request_cleanup(&req);
        secret_store_free_value(client_id);
        return e;
    }
    if (rc != CURLE_OK) {
        secret_store_free_value(client_id);
        if (note.code != DIRCONN_OK)
            e = dirconn_error_set(err, note.code, "POST %s: %s", url, note.msg);
        else
            e = dirconn_error_set(err, DIRCONN_ECLOUD_CONNECT, "POST %s: %s (curl %d)", url,
                                  req.errbuf[0] ? req.errbuf : curl_easy_strerror(rc), (int)rc);
        http_request_cleanup(&req);
        return e;
    }
    char *tok = NULL;
    int64_t lifetime_ms = 0;
    e = cloud_auth_parse_token(status, req.body.data != NULL ? req.body.data : "", req.body.len,
                               url, id, &tok, &lifetime_ms, err);
    http_request_cleanup(&req); /* the body is wiped */
    if (e == DIRCONN_OK) {
        free(a->identity);
        a->identity = strdup(id);
    }
    secret_store_free_value(client_id);
    if (e != DIRCONN_OK)
        return e;
    secret_free(a->token);
    a->token = tok;
    a->expires_ms = platform_monotonic_ms() + lifetime_ms;
    return DIRCONN_OK;
}

enum dirconn_err cloud_auth_parse_token(long status, const char *body, size_t len, const char *url,
                                        const char *id, char **token, int64_t *lifetime_ms,
                                        struct dirconn_error *err)
{
    *token = NULL;
    *lifetime_ms = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (status != 200) {
        const char *oerr = json_string_value(json_object_get(doc, "error"));
        const char *desc = json_string_value(json_object_get(doc, "error_description"));
        enum dirconn_err e = dirconn_error_set(
            err,
            status == 400 || status == 401 || status == 403 ? DIRCONN_ECLOUD_AUTH : DIRCONN_ECLOUD,
            "POST %s: HTTP %ld %s%s%s (connector id '%s')", url, status, oerr ? oerr : "",
            desc ? ": " : "", desc ? desc : "", id);
        json_decref(doc);
        return e;
    }
    const char *tok = json_string_value(json_object_get(doc, "access_token"));
    const char *type = json_string_value(json_object_get(doc, "token_type"));
    json_int_t expires = json_integer_value(json_object_get(doc, "expires_in"));
    if (tok == NULL || type == NULL || strcasecmp(type, "Bearer") != 0) {
        json_decref(doc);
        return dirconn_error_set(err, DIRCONN_ECLOUD,
                                 "POST %s: the answer holds no Bearer access_token", url);
    }
    *token = strdup(tok);
    /* expires_in is RECOMMENDED; without it assume an hour. Renew at 90%, at least daily. */
    if (expires <= 0)
        expires = 3600;
    if (expires > 86400)
        expires = 86400;
    *lifetime_ms = expires * 900;
    json_object_del(doc, "access_token");
    json_decref(doc);
    if (*token == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    return DIRCONN_OK;
}

enum dirconn_err cloud_auth_token(void *arg, bool refresh, char **token, struct dirconn_error *err)
{
    struct cloud_auth *a = arg;
    *token = NULL;
    if (a->cfg->cloud_auth == CLOUD_AUTH_BEARER) {
        if (a->cfg->cloud_token_file == NULL)
            return secret_store_get(a->cfg, SECRET_CLOUD_TOKEN, token, err);
        return secret_file_read(a->cfg->cloud_token_file, "[cloud] token_file", token, err);
    }
    if (refresh || a->token == NULL || platform_monotonic_ms() >= a->expires_ms) {
        enum dirconn_err e = fetch_oauth_token(a, err);
        if (e != DIRCONN_OK)
            return e;
    }
    *token = strdup(a->token);
    return *token != NULL ? DIRCONN_OK : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
}
