/*
 * proxy_lease_probe - acquire and renew the HA lease of dirconn-cloud's
 * control API (GET/PUT <[cloud] url>/v1/orgs/<org>/lease with If-Match, as
 * docs/cloud-api.md describes) through the proxy seam, the way the lease
 * client will: an OAuth token from cloud_auth and every request through
 * scim_easy_perform with proxy_configure/proxy_outcome.
 *
 *   proxy_lease_probe CONFIG
 *
 * Prints "lease held by ID, resourceVersion N" after the renewal, then
 * releases the lease (holderIdentity null) and prints "lease released";
 * exit 0, or the exit code of the error (60 for a proxy failure) with one
 * line on stderr.
 */
#include "connector/cloud_auth.h"
#include "connector/config.h"
#include "connector/scim.h"
#include "proxy/proxy.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char data[65536];
    size_t len;
};

static size_t collect(char *p, size_t size, size_t nmemb, void *userp)
{
    struct buf *b = userp;
    size_t n = size * nmemb;
    if (b->len + n >= sizeof(b->data))
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void reset(void *arg)
{
    ((struct buf *)arg)->len = 0;
}

/* One control API request through the seam; *status and *etag (malloc'd) out. */
static enum dirconn_err call(const struct config *cfg, const struct scim_transport *t,
                             const char *token, const char *method, const char *url,
                             const char *if_match, const char *body, struct buf *out, long *status,
                             char **etag, struct dirconn_error *err)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct curl_slist *hdr = NULL;
    char line[4200];
    snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
    hdr = curl_slist_append(hdr, line);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    if (if_match != NULL) {
        snprintf(line, sizeof(line), "If-Match: %s", if_match);
        hdr = curl_slist_append(hdr, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cfg->cloud_ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->cloud_ca_file);
    CURLcode rc = CURLE_OK;
    struct dirconn_error note;
    enum dirconn_err e = scim_easy_perform(t, h, url, reset, out, &rc, &note);
    if (e != DIRCONN_OK) {
        dirconn_error_set(err, e, "%s %s: %s", method, url, note.msg);
    } else if (rc != CURLE_OK) {
        e = dirconn_error_set(err, note.code != DIRCONN_OK ? note.code : DIRCONN_ECLOUD_CONNECT,
                              "%s %s: %s", method, url,
                              note.code != DIRCONN_OK ? note.msg : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        struct curl_header *eh = NULL;
        *etag = curl_easy_header(h, "ETag", 0, CURLH_HEADER, -1, &eh) == CURLHE_OK
                    ? strdup(eh->value)
                    : NULL;
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
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
    struct buf *out = calloc(1, sizeof(*out));
    struct log_sink log = {.level = LOG_LEVEL_WARN, .ident = "proxy_lease_probe"};
    enum dirconn_err e = out != NULL ? config_load(argv[1], &cfg, &err) : DIRCONN_ENOMEM;
    if (e == DIRCONN_OK)
        e = proxy_new(cfg, &log, NULL, &p, &err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cfg, proxy_configure, p, &auth, &err);
    if (e == DIRCONN_OK) {
        cloud_auth_set_outcome(auth, proxy_outcome);
        e = cloud_auth_token(auth, false, &token, &err);
    }
    struct scim_transport t = {proxy_configure, proxy_outcome, p};
    char url[2300];
    if (cfg != NULL)
        snprintf(url, sizeof(url), "%s/v1/orgs/%s/lease", cfg->cloud_url, cfg->cloud_org);
    long status = 0;
    /* acquire, renew, release: each a GET for the version and a PUT with If-Match */
    for (int round = 0; round < 3 && e == DIRCONN_OK; round++) {
        free(etag);
        etag = NULL;
        e = call(cfg, &t, token, "GET", url, NULL, NULL, out, &status, &etag, &err);
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
            e = call(cfg, &t, token, "PUT", url, im, body, out, &status, &etag, &err);
        free(im);
        if (e == DIRCONN_OK && status != 200)
            e = dirconn_error_set(&err, DIRCONN_ELEASE, "PUT %s: HTTP %ld %s", url, status,
                                  out->data);
        if (e == DIRCONN_OK && round == 1) {
            json_error_t jerr;
            json_t *doc = json_loadb(out->data, out->len, 0, &jerr);
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
    cloud_auth_free_secret(token);
    free(etag);
    free(out);
    cloud_auth_free(auth);
    proxy_free(p);
    config_free(cfg);
    curl_global_cleanup();
    return dirconn_exit_code(e);
}
