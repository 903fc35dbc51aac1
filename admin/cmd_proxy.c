/*
 * cmd_proxy.c - dirconnctl proxy-check: the Cisco guide's "Troubleshoot
 * Service Account Sign In Issues" (can this host reach the cloud, and which
 * proxy is in the way), automated: the proxy mode, the PAC URL used, the
 * setting that chose the route, the proxies returned for the URL, and for
 * each one whether a request through it reached the cloud, with the HTTP
 * status and the proxy authentication scheme used.
 */
#include "admin/ctl.h"
#include "connector/net/http.h"
#include "proxy/proxy.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char proxy_check_help[] =
    "usage: dirconnctl proxy-check [URL] [--config FILE] [--json]\n"
    "\n"
    "Resolve the proxies for URL as a sync would ([proxy] mode: auto, pac, explicit or\n"
    "none) and try a GET through each of them in order, verifying the cloud's TLS\n"
    "certificate as always. Prints the mode, the PAC URL used and its answer, the\n"
    "proxies returned for the URL, and for each one whether the request reached the\n"
    "cloud and the HTTP status; 407 is reported as a proxy authentication failure.\n"
    "It also names the setting that chose the route ([proxy] mode explicit, [proxy]\n"
    "no_proxy, https_proxy in the environment, PAC file URL, WPAD, ...) and the proxy\n"
    "authentication scheme each request used.\n"
    "URL defaults to <SCIM base>/ServiceProviderConfig of the [cloud] section.\n"
    "Exit 0 when a route reached the cloud, 60 when none did or the proxy list could\n"
    "not be resolved (PAC download or evaluation failure), 3 for a bad configuration.\n";

/* The outcome of one GET through one route. */
struct probe {
    bool reached;
    long status;         /* the cloud's HTTP status, 0 if none */
    long connect_status; /* the proxy's answer to CONNECT, 0 if none */
    char auth[32];       /* the scheme of the Proxy-Authorization sent last, "" = none */
    char error[1024];    /* why it did not reach the cloud, "" when it did */
};

/*
 * CURLOPT_DEBUGFUNCTION: notes the scheme (only the first word, never the
 * credentials) of each Proxy-Authorization header that libcurl sends.
 */
static int watch_auth(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
    (void)h;
    struct probe *out = userp;
    static const char name[] = "Proxy-Authorization:";
    const size_t nl = sizeof(name) - 1;
    if (type != CURLINFO_HEADER_OUT)
        return 0;
    for (size_t i = 0; i < size;) {
        if (size - i > nl && strncasecmp(data + i, name, nl) == 0) {
            size_t j = i + nl, k;
            while (j < size && data[j] == ' ')
                j++;
            for (k = j; k < size && data[k] != ' ' && data[k] != '\r' && data[k] != '\n';)
                k++;
            snprintf(out->auth, sizeof(out->auth), "%.*s", (int)(k - j), data + j);
        }
        const char *eol = memchr(data + i, '\n', size - i);
        if (eol == NULL)
            break;
        i = (size_t)(eol - data) + 1;
    }
    return 0;
}

static size_t discard(char *d, size_t size, size_t nmemb, void *userp)
{
    (void)d;
    (void)userp;
    return size * nmemb;
}

static void probe_route(struct ctl *ctl, struct proxy_ctx *p, const char *url, const char *route,
                        struct probe *out)
{
    memset(out, 0, sizeof(*out));
    struct http_request req;
    if (http_request_init(&req, 0, false, NULL) != DIRCONN_OK) {
        http_request_cleanup(&req);
        snprintf(out->error, sizeof(out->error), "out of memory");
        return;
    }
    const struct http_options ho = {
        .ca_file = ctl->cfg->cloud_ca_file, .timeout_ms = 20000, .connect_timeout_ms = 10000};
    http_request_setup(&req, &ho, url);
    CURL *h = req.easy;
    const char *errbuf = req.errbuf;
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard); /* only the route's answer matters */
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, watch_auth);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, out);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (proxy_apply(p, h, url, route, &err) != DIRCONN_OK) {
        snprintf(out->error, sizeof(out->error), "%.500s", err.msg);
        http_request_cleanup(&req);
        return;
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_HTTP_CONNECTCODE, &out->connect_status);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    bool https = strncmp(url, "https://", 8) == 0;
    const struct config *cfg = ctl->cfg;
    if (route != NULL && (out->connect_status == 407 || (!https && out->status == 407))) {
        char *shown = proxy_redact(route);
        char label[600];
        snprintf(label, sizeof(label), "proxy %.500s", shown != NULL ? shown : "?");
        free(shown);
        proxy_auth_refusal(cfg, h, label, out->error, sizeof(out->error));
        out->status = 0;
    } else if (route != NULL && out->connect_status != 0 && out->connect_status / 100 != 2) {
        snprintf(out->error, sizeof(out->error), "the proxy answered the CONNECT with HTTP %ld",
                 out->connect_status);
    } else if (rc != CURLE_OK) {
        snprintf(out->error, sizeof(out->error), "%.400s (curl %d)",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc), (int)rc);
    } else {
        out->reached = true;
    }
    http_request_cleanup(&req);
}

/* The default URL: <SCIM base>/ServiceProviderConfig. */
static char *default_url(const struct config *cfg)
{
    const char *base = cfg->cloud_scim_url;
    char *buf = NULL;
    if (base == NULL && cfg->cloud_url != NULL && cfg->cloud_org != NULL) {
        size_t len = strlen(cfg->cloud_url) + strlen(cfg->cloud_org) + 64;
        if ((buf = malloc(len)) == NULL)
            return NULL;
        size_t ul = strlen(cfg->cloud_url);
        snprintf(buf, len, "%.*s/scim/v2/%s/ServiceProviderConfig",
                 (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
                 cfg->cloud_org);
        return buf;
    }
    if (base == NULL)
        return NULL;
    size_t bl = strlen(base);
    size_t len = bl + 32;
    if ((buf = malloc(len)) != NULL)
        snprintf(buf, len, "%.*s/ServiceProviderConfig",
                 (int)(bl > 0 && base[bl - 1] == '/' ? bl - 1 : bl), base);
    return buf;
}

static int run_check(struct ctl *ctl, const char *url)
{
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct proxy_ctx *p = NULL;
    if (proxy_new(ctl->cfg, &ctl->log, NULL, &p, &err) != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    struct proxy_resolution res;
    enum dirconn_err e = proxy_resolve(p, url, &res, &err);
    const char *pac = res.pac_url;
    if (!ctl->json) {
        printf("mode: %s\n", proxy_mode_name(ctl->cfg->proxy_mode));
        printf("PAC URL: %s\n", pac != NULL ? pac : "(none)");
        printf("URL: %s\n", url);
        if (res.pac_answer != NULL)
            printf("PAC answer: %s\n", res.pac_answer);
    }
    json_t *doc = ctl->json ? json_object() : NULL;
    if (doc != NULL) {
        json_object_set_new(doc, "mode", json_string(proxy_mode_name(ctl->cfg->proxy_mode)));
        json_object_set_new(doc, "pac_url", pac != NULL ? json_string(pac) : json_null());
        json_object_set_new(doc, "url", json_string(url));
        json_object_set_new(doc, "pac_answer",
                            res.pac_answer != NULL ? json_string(res.pac_answer) : json_null());
        json_object_set_new(doc, "chosen_by",
                            res.chosen_by != NULL ? json_string(res.chosen_by) : json_null());
    }
    if (!ctl->json && res.chosen_by != NULL)
        printf("route chosen by: %s\n", res.chosen_by);
    int rc = 0;
    if (e != DIRCONN_OK) {
        if (doc != NULL) {
            json_object_set_new(doc, "error", json_string(err.msg));
            json_object_set_new(doc, "reachable", json_false());
            json_dumpf(doc, stdout, JSON_INDENT(2));
            printf("\n");
        }
        fflush(stdout);
        rc = ctl_fail(ctl, &err);
    } else {
        json_t *list = doc != NULL ? json_array() : NULL;
        if (!ctl->json) {
            printf("proxies for this URL:\n");
            for (size_t i = 0; i < res.n; i++) {
                char *shown = proxy_redact(res.routes[i]);
                printf("  %zu. %s\n", i + 1, shown != NULL ? shown : "?");
                free(shown);
            }
            printf("checks:\n");
        }
        size_t reached_at = 0;
        for (size_t i = 0; i < res.n; i++) {
            struct probe pr;
            probe_route(ctl, p, url, res.routes[i], &pr);
            char *shown = proxy_redact(res.routes[i]);
            if (list != NULL) {
                json_t *o = json_object();
                json_object_set_new(o, "proxy", json_string(shown != NULL ? shown : "?"));
                json_object_set_new(o, "reached", json_boolean(pr.reached));
                json_object_set_new(o, "status", pr.status ? json_integer(pr.status) : json_null());
                json_object_set_new(o, "connect_status",
                                    pr.connect_status ? json_integer(pr.connect_status)
                                                      : json_null());
                json_object_set_new(o, "error", pr.reached ? json_null() : json_string(pr.error));
                json_object_set_new(o, "auth", pr.auth[0] ? json_string(pr.auth) : json_null());
                json_array_append_new(list, o);
            } else if (pr.reached) {
                printf("  %zu. %s: reached the cloud: HTTP %ld%s%s%s\n", i + 1, shown ? shown : "?",
                       pr.status,
                       res.routes[i] == NULL ? ""
                       : pr.auth[0]          ? " (proxy authentication: "
                                             : " (no proxy authentication",
                       pr.auth, res.routes[i] == NULL ? "" : ")");
            } else {
                printf("  %zu. %s: did not reach the cloud: %s\n", i + 1, shown ? shown : "?",
                       pr.error);
            }
            if (pr.reached && reached_at == 0)
                reached_at = i + 1;
            free(shown);
        }
        if (doc != NULL) {
            json_object_set_new(doc, "proxies", list);
            json_object_set_new(doc, "reachable", json_boolean(reached_at != 0));
            json_dumpf(doc, stdout, JSON_INDENT(2));
            printf("\n");
        } else if (reached_at != 0) {
            char *shown = proxy_redact(res.routes[reached_at - 1]);
            printf("result: the cloud is reachable %s%s\n",
                   res.routes[reached_at - 1] != NULL ? "through " : "",
                   res.routes[reached_at - 1] != NULL ? (shown ? shown : "?") : "directly");
            free(shown);
        } else {
            printf("result: the cloud is not reachable from this host; check the proxy settings\n");
        }
        fflush(stdout);
        if (reached_at == 0) {
            dirconn_error_set(&err, DIRCONN_EPROXY, "no route reached %s", url);
            rc = ctl_fail(ctl, &err);
        }
    }
    json_decref(doc);
    proxy_resolution_clear(&res);
    proxy_free(p);
    return rc;
}

int cmd_proxy_check(struct ctl *ctl, int argc, char **argv)
{
    /* Take the optional URL out before the common option parser sees it. */
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (args == NULL)
        return dirconn_exit_code(DIRCONN_ENOMEM);
    const char *url = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        bool value_of_config =
            i > 0 && (strcmp(argv[i - 1], "--config") == 0 || strcmp(argv[i - 1], "-c") == 0);
        if (i > 0 && url == NULL && argv[i][0] != '-' && !value_of_config) {
            url = argv[i];
            continue;
        }
        args[n++] = argv[i];
    }
    int rc = ctl_parse_options(ctl, n, args, NULL, NULL, NULL, proxy_check_help);
    free(args);
    if (rc >= 0)
        return rc;
    if (url != NULL && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return ctl_usage_error(ctl, "'%s' is not an http(s) URL", url);
    enum dirconn_err loaded = ctl_load_config(ctl);
    if (loaded != DIRCONN_OK)
        return dirconn_exit_code(loaded);
    char *dflt = NULL;
    if (url == NULL) {
        dflt = default_url(ctl->cfg);
        if (dflt == NULL) {
            struct dirconn_error err;
            dirconn_error_set(&err, DIRCONN_ECONFIG,
                              "%s: give a URL, or set [cloud] url and org (or scim_url)",
                              ctl->cfg->path);
            return ctl_fail(ctl, &err);
        }
        url = dflt;
    }
    rc = run_check(ctl, url);
    free(dflt);
    return rc;
}
