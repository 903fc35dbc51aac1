/*
 * proxy_lease_probe - acquire and renew the HA lease of dirconn-cloud's
 * control API (GET/PUT <[cloud] url>/v1/orgs/<org>/lease with If-Match, as
 * docs/cloud-api.md describes) through the proxy seam, the way the lease
 * client will: an OAuth token from cloud_auth and every request through
 * http_perform (connector/net/http.h) with proxy_configure/proxy_outcome.
 *
 *   proxy_lease_probe CONFIG
 *
 * Prints "lease held by ID, resourceVersion N" after the renewal, then
 * releases the lease (holderIdentity null) and prints "lease released";
 * exit 0, or the exit code of the error (60 for a proxy failure) with one
 * line on stderr.
 */
#include "connector/cloud_auth.h"
#include "connector/core/secret_store.h"
#include "connector/core/config.h"
#include "connector/net/http.h"
#include "proxy/proxy.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One control API request through the seam; *status and *etag (malloc'd) out. */
static enum dirconn_err call(const struct config *cfg, const struct http_transport *t,
                             const char *token, const char *method, const char *url,
                             const char *if_match, const char *body, struct http_request *req,
                             long *status, char **etag, struct dirconn_error *err)
{
    CURL *h = req->easy;
    struct curl_slist *hdr = NULL;
    char line[4200];
    snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
    hdr = curl_slist_append(hdr, line);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    if (if_match != NULL) {
        snprintf(line, sizeof(line), "If-Match: %s", if_match);
        hdr = curl_slist_append(hdr, line);
    }
    const struct http_options ho = {.ca_file = cfg->cloud_ca_file, .timeout_ms = 30000};
    http_request_setup(req, &ho, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    struct dirconn_error note;
    enum dirconn_err e = http_perform(req, t, url, &note);
    if (e != DIRCONN_OK) {
        dirconn_error_set(err, e, "%s %s: %s", method, url, note.msg);
    } else if (req->rc != CURLE_OK) {
        e = dirconn_error_set(err, note.code != DIRCONN_OK ? note.code : DIRCONN_ECLOUD_CONNECT,
                              "%s %s: %s", method, url,
                              note.code != DIRCONN_OK ? note.msg : curl_easy_strerror(req->rc));
    } else {
        *status = req->status;
        *etag = req->headers.etag != NULL ? strdup(req->headers.etag) : NULL;
    }
    curl_slist_free_all(hdr);
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: proxy_lease_probe CONFIG\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct config *cfg = NULL;
    struct proxy_ctx *p = NULL;
    struct cloud_auth *auth = NULL;
    char *token = NULL, *etag = NULL;
    struct http_request req;
    enum dirconn_err e = http_request_init(&req, 65536, false, &err);
    struct log_sink log = {.level = LOG_LEVEL_WARN, .ident = "proxy_lease_probe"};
    if (e == DIRCONN_OK)
        e = config_load(argv[1], &cfg, &err);
    if (e == DIRCONN_OK)
        e = proxy_new(cfg, &log, NULL, &p, &err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cfg, proxy_configure, p, &auth, &err);
    if (e == DIRCONN_OK) {
        cloud_auth_set_outcome(auth, proxy_outcome);
        e = cloud_auth_token(auth, false, &token, &err);
    }
    const struct http_transport t = {proxy_configure, proxy_outcome, p};
    char url[2300];
    if (cfg != NULL)
        snprintf(url, sizeof(url), "%s/v1/orgs/%s/lease", cfg->cloud_url, cfg->cloud_org);
    long status = 0;
    /* acquire, renew, release: each a GET for the version and a PUT with If-Match */
    for (int round = 0; round < 3 && e == DIRCONN_OK; round++) {
        free(etag);
        etag = NULL;
        e = call(cfg, &t, token, "GET", url, NULL, NULL, &req, &status, &etag, &err);
        if (e == DIRCONN_OK && (status != 200 || etag == NULL))
            e = dirconn_error_set(&err, DIRCONN_ECLOUD, "GET %s: HTTP %ld", url, status);
        char body[512];
        if (round < 2)
            snprintf(body, sizeof(body), "{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":30}",
                     cfg->cloud_client_id);
        else
            snprintf(body, sizeof(body), "{\"holderIdentity\":null}");
        char *im = etag;
        etag = NULL;
        if (e == DIRCONN_OK)
            e = call(cfg, &t, token, "PUT", url, im, body, &req, &status, &etag, &err);
        free(im);
        if (e == DIRCONN_OK && status != 200)
            e = dirconn_error_set(&err, DIRCONN_ELEASE, "PUT %s: HTTP %ld %s", url, status,
                                  req.body.data != NULL ? req.body.data : "");
        if (e == DIRCONN_OK && round == 1) {
            json_error_t jerr;
            json_t *doc = json_loadb(req.body.data, req.body.len, 0, &jerr);
            printf("lease held by %s, resourceVersion %s\n",
                   json_string_value(json_object_get(doc, "holderIdentity")),
                   json_string_value(json_object_get(doc, "resourceVersion")));
            json_decref(doc);
        } else if (e == DIRCONN_OK && round == 2) {
            printf("lease released\n");
        }
    }
    if (e != DIRCONN_OK) {
        fprintf(stderr, "proxy_lease_probe: %s\n", err.msg);
    }
    secret_free(token);
    free(etag);
    http_request_cleanup(&req);
    cloud_auth_free(auth);
    proxy_free(p);
    config_free(cfg);
    curl_global_cleanup();
    return dirconn_exit_code(e);
}
