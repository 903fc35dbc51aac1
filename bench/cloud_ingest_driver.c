/*
 * cloud_ingest_driver.c - load generator for bench/cloud_ingest.sh.
 *
 * Creates users in a dirconn-cloud org as fast as the server allows, with
 * single POST /Users or POST /Bulk, keeping CONCURRENCY requests in flight
 * on kept-alive connections (libcurl multi). Prints one JSON object:
 * {"mode", "users", "requests", "seconds", "usersPerSecond", "errors"}.
 *
 * usage: cloud_ingest_driver --scim URL --token-file FILE [--cacert FILE]
 *          --mode single|bulk [--users N] [--bulk-size N] [--concurrency N] [--prefix S]
 *          [--shape small|directory]
 * --shape small (the default): userName, externalId, active, displayName, name, one email,
 * title. --shape directory: also what the connector maps from a user of the ldsfx
 * organisation (bench/sync.sh): two addresses, a phone number, preferredLanguage and the
 * enterprise extension's department and employeeNumber (no manager: it would name a user
 * created before), so that the ingest floor ingests users as large as the ones it is a floor for.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct driver {
    const char *scim, *cacert, *mode, *prefix, *shape;
    char token_header[600];
    long users, bulk_size, concurrency;
    long next_user, done_users, requests, errors;
    CURLM *multi;
};

struct transfer {
    CURL *easy;
    char *body;
    struct curl_slist *headers;
    long users;
    char *resp;
    size_t resp_len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    char *r = realloc(t->resp, t->resp_len + len + 1);
    if (r == NULL)
        return 0;
    memcpy(r + t->resp_len, p, len);
    t->resp = r;
    t->resp_len += len;
    t->resp[t->resp_len] = '\0';
    return len;
}

static json_t *user_json(struct driver *d, long i)
{
    char name[128], mail[160], ext[64], given[32], family[32];
    snprintf(name, sizeof(name), "%s%07ld@bench.example.com", d->prefix, i);
    snprintf(mail, sizeof(mail), "%s%07ld@mail.bench.example.com", d->prefix, i);
    snprintf(ext, sizeof(ext), "%s-ext-%07ld", d->prefix, i);
    snprintf(given, sizeof(given), "Given%ld", i);
    snprintf(family, sizeof(family), "Family%ld", i);
    json_t *u = json_pack("{s:[s], s:s, s:s, s:b, s:s, s:{s:s, s:s}, s:[{s:s, s:s, s:b}], s:s}",
                          "schemas", "urn:ietf:params:scim:schemas:core:2.0:User", "userName", name,
                          "externalId", ext, "active", 1, "displayName", name, "name", "givenName",
                          given, "familyName", family, "emails", "value", mail, "type", "work",
                          "primary", 1, "title", "Engineer");
    if (u == NULL || strcmp(d->shape, "directory") != 0)
        return u;
    char phone[32], employee[16];
    snprintf(phone, sizeof(phone), "+48 12 5550 %04ld", i % 10000);
    snprintf(employee, sizeof(employee), "E%06ld", i);
    json_array_append_new(
        json_object_get(u, "schemas"),
        json_string("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
    json_object_set_new(u, "addresses",
                        json_pack("[{s:s, s:s, s:s, s:s, s:b, s:s, s:s}, {s:s, s:s}]", "country",
                                  "PL", "formatted", "Krak\u00f3w, MA 31-019, Poland", "locality",
                                  "Krak\u00f3w", "postalCode", "31-019", "primary", 1, "region",
                                  "MA", "type", "work", "formatted", "Krak\u00f3w", "type",
                                  "other"));
    json_object_set_new(u, "phoneNumbers",
                        json_pack("[{s:s, s:s}]", "type", "work", "value", phone));
    json_object_set_new(u, "preferredLanguage", json_string("pl-PL"));
    json_object_set_new(u, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                        json_pack("{s:s, s:s}", "department", "Sales", "employeeNumber", employee));
    return u;
}

static int start_one(struct driver *d)
{
    if (d->next_user >= d->users)
        return 0;
    struct transfer *t = calloc(1, sizeof(*t));
    char url[1024];
    json_t *body;
    if (strcmp(d->mode, "bulk") == 0) {
        json_t *ops = json_array();
        long n = 0;
        for (; n < d->bulk_size && d->next_user < d->users; n++, d->next_user++) {
            char bid[32];
            snprintf(bid, sizeof(bid), "u%ld", n);
            json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:o}", "method", "POST", "path",
                                                 "/Users", "bulkId", bid, "data",
                                                 user_json(d, d->next_user)));
        }
        t->users = n;
        body = json_pack("{s:[s], s:o}", "schemas",
                         "urn:ietf:params:scim:api:messages:2.0:BulkRequest", "Operations", ops);
        snprintf(url, sizeof(url), "%s/Bulk", d->scim);
    } else {
        body = user_json(d, d->next_user++);
        t->users = 1;
        snprintf(url, sizeof(url), "%s/Users", d->scim);
    }
    t->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    t->easy = curl_easy_init();
    t->headers = curl_slist_append(NULL, d->token_header);
    t->headers = curl_slist_append(t->headers, "Content-Type: application/scim+json");
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT, 120L);
    if (d->cacert != NULL)
        curl_easy_setopt(t->easy, CURLOPT_CAINFO, d->cacert);
    curl_multi_add_handle(d->multi, t->easy);
    d->requests++;
    return 1;
}

static void finish_one(struct driver *d, CURL *easy, CURLcode rc)
{
    struct transfer *t;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    long ok = 0;
    if (rc == CURLE_OK && status == 201 && t->users == 1 && strcmp(d->mode, "single") == 0) {
        ok = 1;
    } else if (rc == CURLE_OK && status == 200 && strcmp(d->mode, "bulk") == 0) {
        json_t *r = json_loads(t->resp != NULL ? t->resp : "", 0, NULL);
        size_t i;
        json_t *op;
        json_array_foreach(json_object_get(r, "Operations"), i, op)
        {
            const char *st = json_string_value(json_object_get(op, "status"));
            if (st != NULL && strcmp(st, "201") == 0)
                ok++;
        }
        json_decref(r);
    }
    if (ok != t->users && d->errors < 3)
        fprintf(stderr, "cloud_ingest_driver: request failed: curl %d, HTTP %ld: %.200s\n", rc,
                status, t->resp != NULL ? t->resp : "");
    d->errors += t->users - ok;
    d->done_users += ok;
    curl_multi_remove_handle(d->multi, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t->resp);
    free(t);
}

int main(int argc, char **argv)
{
    struct driver d = {.mode = "single",
                       .users = 1000,
                       .bulk_size = 500,
                       .concurrency = 4,
                       .prefix = "u",
                       .shape = "small"};
    const char *token_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--scim") == 0)
            d.scim = v;
        else if (strcmp(k, "--token-file") == 0)
            token_file = v;
        else if (strcmp(k, "--cacert") == 0)
            d.cacert = v;
        else if (strcmp(k, "--mode") == 0)
            d.mode = v;
        else if (strcmp(k, "--users") == 0)
            d.users = atol(v);
        else if (strcmp(k, "--bulk-size") == 0)
            d.bulk_size = atol(v);
        else if (strcmp(k, "--concurrency") == 0)
            d.concurrency = atol(v);
        else if (strcmp(k, "--prefix") == 0)
            d.prefix = v;
        else if (strcmp(k, "--shape") == 0)
            d.shape = v;
        else {
            fprintf(stderr, "cloud_ingest_driver: unknown option %s\n", k);
            return 2;
        }
    }
    if (d.scim == NULL || token_file == NULL || d.users < 1 || d.bulk_size < 1 ||
        d.concurrency < 1 || (strcmp(d.shape, "small") != 0 && strcmp(d.shape, "directory") != 0)) {
        fprintf(stderr, "usage: cloud_ingest_driver --scim URL --token-file FILE [--cacert FILE] "
                        "--mode single|bulk [--users N] [--bulk-size N] [--concurrency N] "
                        "[--prefix S] [--shape small|directory]\n");
        return 2;
    }
    FILE *f = fopen(token_file, "r");
    char tok[512] = "";
    if (f == NULL || fgets(tok, sizeof(tok), f) == NULL) {
        fprintf(stderr, "cloud_ingest_driver: cannot read %s\n", token_file);
        return 2;
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    snprintf(d.token_header, sizeof(d.token_header), "Authorization: Bearer %s", tok);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d.multi = curl_multi_init();
    curl_multi_setopt(d.multi, CURLMOPT_MAX_HOST_CONNECTIONS, d.concurrency);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long inflight = 0;
    while (inflight < d.concurrency && start_one(&d))
        inflight++;
    while (inflight > 0) {
        int running;
        curl_multi_perform(d.multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(d.multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            finish_one(&d, m->easy_handle, m->data.result);
            inflight--;
            if (start_one(&d))
                inflight++;
        }
        if (inflight > 0)
            curl_multi_poll(d.multi, NULL, 0, 100, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"mode\":\"%s\",\"users\":%ld,\"requests\":%ld,\"bulkSize\":%ld,\"concurrency\":%ld,"
           "\"seconds\":%.3f,\"usersPerSecond\":%.1f,\"errors\":%ld}\n",
           d.mode, d.done_users, d.requests, strcmp(d.mode, "bulk") == 0 ? d.bulk_size : 1,
           d.concurrency, secs, secs > 0 ? (double)d.done_users / secs : 0.0, d.errors);
    curl_multi_cleanup(d.multi);
    curl_global_cleanup();
    return d.errors == 0 ? 0 : 1;
}
