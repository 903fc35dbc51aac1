/* Unit tests of proxy/: PAC answer checks, libproxy answers as libcurl routes,
 * redaction, resolution per mode (PAC files through libproxy), and the
 * transport seam moving to the next route after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "connector/config.h"
#include "connector/scim.h"
#include "proxy/proxy.h"
#include "proxy/proxy_px.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dirconn-test-proxy.XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct config *load(const char *proxy_section)
{
    char text[4096];
    snprintf(text, sizeof(text), "[ldap]\nurls = ldap://127.0.0.1:1\n[proxy]\n%s", proxy_section);
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (config_load_string(text, "<test>", &cfg, &err) != DIRCONN_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static void write_pac(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(body, fp);
    fclose(fp);
}

static void test_pac_directives(void **state)
{
    (void)state;
    bool garbage = true;
    assert_int_equal(proxy_pac_directives("PROXY a:1; PROXY b:2; DIRECT", &garbage), 3);
    assert_false(garbage);
    assert_int_equal(proxy_pac_directives(" ;DIRECT; ", &garbage), 1);
    assert_false(garbage);
    assert_int_equal(proxy_pac_directives("SOCKS5 s:1080;HTTPS h:443", &garbage), 2);
    assert_false(garbage);
    assert_int_equal(proxy_pac_directives("garbage", &garbage), 1);
    assert_true(garbage);
    proxy_pac_directives("PROXY", &garbage);
    assert_true(garbage);
    proxy_pac_directives("DIRECT now", &garbage);
    assert_true(garbage);
    proxy_pac_directives("PROXY a:1 b:2", &garbage);
    assert_true(garbage);
    assert_int_equal(proxy_pac_directives("", &garbage), 0);
    assert_false(garbage);
}

static void test_routes_from_libproxy(void **state)
{
    (void)state;
    char *r = (char *)1;
    assert_true(proxy_route_from_libproxy("direct://", &r));
    assert_null(r);
    assert_true(proxy_route_from_libproxy("http://p.example:3128", &r));
    assert_string_equal(r, "http://p.example:3128");
    free(r);
    assert_true(proxy_route_from_libproxy("socks://s:1080", &r));
    assert_string_equal(r, "socks4://s:1080");
    free(r);
    assert_true(proxy_route_from_libproxy("socks5://s:1080", &r));
    assert_string_equal(r, "socks5h://s:1080");
    free(r);
    assert_false(proxy_route_from_libproxy("wpad://", &r));
    assert_false(proxy_route_from_libproxy("ftp://x", &r));
}

static void test_redact(void **state)
{
    (void)state;
    char *s = proxy_redact("http://alice:secret@p.example:3128");
    assert_non_null(s);
    assert_null(strstr(s, "secret"));
    assert_null(strstr(s, "alice"));
    assert_string_equal(s, "http://p.example:3128");
    free(s);
    s = proxy_redact(NULL);
    assert_string_equal(s, "DIRECT");
    free(s);
}

static void test_resolve_none_and_explicit(void **state)
{
    (void)state;
    struct config *cfg = load("mode = none\n");
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, NULL, &p, NULL), DIRCONN_OK);
    struct proxy_resolution res;
    assert_int_equal(proxy_resolve(p, "https://cloud.example/x", &res, NULL), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_null(res.routes[0]);
    assert_null(res.pac_url);
    proxy_resolution_clear(&res);
    proxy_free(p);
    config_free(cfg);

    cfg = load("mode = explicit\nurl = http://127.0.0.1:3128\n");
    assert_int_equal(proxy_new(cfg, NULL, &p, NULL), DIRCONN_OK);
    assert_int_equal(proxy_resolve(p, "https://cloud.example/x", &res, NULL), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_string_equal(res.routes[0], "http://127.0.0.1:3128");
    proxy_resolution_clear(&res);
    proxy_free(p);
    config_free(cfg);
}

static void test_password_file_missing(void **state)
{
    (void)state;
    struct config *cfg = load("mode = explicit\nurl = http://127.0.0.1:3128\nusername = u\n"
                              "password_file = /nonexistent/pw\n");
    struct proxy_ctx *p = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_new(cfg, NULL, &p, &err), DIRCONN_ECONFIG);
    assert_null(p);
    assert_non_null(strstr(err.msg, "[proxy] password_file"));
    config_free(cfg);
}

/* mode = pac with pac+file://: libproxy evaluates the file; failures name the PAC. */
static void test_resolve_pac_file(void **state)
{
    (void)state;
    write_pac("ok.pac", "function FindProxyForURL(url, host) {\n"
                        "  if (host == \"cloud.example\") return \"PROXY 127.0.0.1:1; PROXY "
                        "127.0.0.1:2; DIRECT\";\n"
                        "  return \"DIRECT\"; }\n");
    write_pac("garbage.pac", "function FindProxyForURL(url, host) { return \"nonsense\"; }\n");
    write_pac("syntax.pac", "function FindProxyForURL(url, host) { return (\n");
    char section[512];
    snprintf(section, sizeof(section), "mode = pac\npac_url = pac+file://%s/ok.pac\n", tmpdir);
    struct config *cfg = load(section);
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, NULL, &p, NULL), DIRCONN_OK);
    struct proxy_resolution res;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_resolve(p, "https://cloud.example/scim", &res, &err), DIRCONN_OK);
    assert_int_equal(res.n, 3);
    assert_string_equal(res.routes[0], "http://127.0.0.1:1");
    assert_string_equal(res.routes[1], "http://127.0.0.1:2");
    assert_null(res.routes[2]);
    assert_non_null(res.pac_answer);
    assert_non_null(strstr(res.pac_url, "ok.pac"));
    proxy_resolution_clear(&res);
    assert_int_equal(proxy_resolve(p, "https://other.example/", &res, &err), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_null(res.routes[0]);
    proxy_resolution_clear(&res);
    proxy_free(p);
    config_free(cfg);

    static const struct {
        const char *file, *want;
    } bad[] = {{"garbage.pac", "returned 'nonsense'"},
               {"syntax.pac", "cannot be evaluated"},
               {"missing.pac", "cannot be read"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(section, sizeof(section), "mode = pac\npac_url = pac+file://%s/%s\n", tmpdir,
                 bad[i].file);
        cfg = load(section);
        assert_int_equal(proxy_new(cfg, NULL, &p, NULL), DIRCONN_OK);
        dirconn_error_clear(&err);
        assert_int_equal(proxy_resolve(p, "https://cloud.example/scim", &res, &err),
                         DIRCONN_EPROXY);
        if (strstr(err.msg, bad[i].want) == NULL || strstr(err.msg, bad[i].file) == NULL)
            fail_msg("%s: '%s' lacks '%s'", bad[i].file, err.msg, bad[i].want);
        proxy_resolution_clear(&res);
        proxy_free(p);
        config_free(cfg);
    }
}

/* The list is kept for pac_ttl, and resolved again early once every route failed. */
static void test_cache_ttl_and_failure(void **state)
{
    (void)state;
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:1\"; }\n");
    char section[512];
    snprintf(section, sizeof(section),
             "mode = pac\npac_url = pac+file://%s/ttl.pac\npac_ttl = 1s\n", tmpdir);
    struct config *cfg = load(section);
    struct log_sink quiet = {.level = LOG_LEVEL_ERROR};
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, &quiet, &p, NULL), DIRCONN_OK);
    const char *url = "https://cloud.example/scim/v2/o/Users";
    const char *route = NULL;
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:1");
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:2\"; }\n");
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:1"); /* cached */
    struct timespec pause = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(proxy_route_for(p, "https://cloud.example/other", &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:2"); /* expired: resolved again */

    /* The only route fails: the list is exhausted and resolved again at its next use. */
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:3\"; }\n");
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    assert_int_equal(proxy_configure(p, easy, url, NULL), DIRCONN_OK);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_outcome(p, easy, url, CURLE_COULDNT_CONNECT, &err),
                     SCIM_OUTCOME_DEFAULT);
    assert_int_equal(err.code, DIRCONN_EPROXY);
    assert_non_null(strstr(err.msg, "proxy http://127.0.0.1:2"));
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:3");

    /* An outcome without a configured transfer changes nothing. */
    dirconn_error_clear(&err);
    assert_int_equal(proxy_outcome(p, easy, url, CURLE_COULDNT_CONNECT, &err),
                     SCIM_OUTCOME_DEFAULT);
    assert_int_equal(err.code, DIRCONN_OK);
    curl_easy_cleanup(easy);
    proxy_free(p);
    config_free(cfg);
}

/* The cache's expiry: renewed ahead while idle, served stale while transfers are in flight. */
static void test_cache_usable(void **state)
{
    (void)state;
    const int64_t ttl = 300000, exp = 1000000 + ttl; /* resolved at 1000000 */
    assert_true(proxy_cache_usable(1000000, exp, ttl, false));
    assert_true(proxy_cache_usable(exp - ttl / 5 - 1, exp, ttl, false));
    assert_false(proxy_cache_usable(exp - ttl / 5, exp, ttl, false)); /* ahead of expiry */
    assert_false(proxy_cache_usable(exp, exp, ttl, false));
    assert_true(proxy_cache_usable(exp - ttl / 5, exp, ttl, true)); /* transfers in flight */
    assert_true(proxy_cache_usable(exp, exp, ttl, true));
    assert_true(proxy_cache_usable(exp + ttl - 1, exp, ttl, true));
    assert_false(proxy_cache_usable(exp + ttl, exp, ttl, true)); /* at most one more TTL */
}

/* The SCIM client with the proxy seam: each route of the PAC list is tried in turn. */
static int done_calls;
static void on_done(void *arg, const struct scim_response *resp)
{
    struct scim_response *out = arg;
    done_calls++;
    out->code = resp->code;
    out->attempts = resp->attempts;
    memcpy(out->error, resp->error, sizeof(out->error));
}

static void test_seam_moves_through_routes(void **state)
{
    (void)state;
    write_pac("down.pac", "function FindProxyForURL(url, host) {\n"
                          "  return \"PROXY 127.0.0.1:1; PROXY 127.0.0.1:2\"; }\n");
    char section[512];
    snprintf(section, sizeof(section), "mode = pac\npac_url = pac+file://%s/down.pac\n", tmpdir);
    struct config *cfg = load(section);
    struct log_sink quiet = {.level = LOG_LEVEL_ERROR};
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, &quiet, &p, NULL), DIRCONN_OK);
    struct scim_client_options o = {.base_url = "https://127.0.0.1:9/scim/v2/o",
                                    .max_retries = 2,
                                    .backoff_base_ms = 10,
                                    .backoff_max_ms = 20,
                                    .connect_timeout_ms = 1000,
                                    .configure = proxy_configure,
                                    .outcome = proxy_outcome,
                                    .configure_arg = p,
                                    .log = &quiet};
    struct scim_client *c = NULL;
    assert_int_equal(scim_client_new(&o, &c, NULL), DIRCONN_OK);
    struct scim_response r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(scim_submit(c, "GET", "/Users", NULL, NULL, on_done, &r, NULL), DIRCONN_OK);
    assert_int_equal(scim_run(c, NULL), DIRCONN_OK);
    assert_int_equal(done_calls, 1);
    /* proxy 1, proxy 2 (list exhausted: every route was a proxy), then the retry's proxy 1 */
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.code, DIRCONN_EPROXY);
    if (strstr(r.error, "proxy http://127.0.0.1:1 (from PAC pac+file://") == NULL)
        fail_msg("message: %s", r.error);
    scim_client_free(c);
    proxy_free(p);
    config_free(cfg);
}

/* One resolution of ok.pac for cloud.example; returns 0 when libproxy gave its three routes. */
static void *resolve_loop(void *arg)
{
    const char *section = arg;
    struct config *cfg = load(section);
    long bad = 0;
    for (int i = 0; i < 5; i++) {
        struct proxy_ctx *p = NULL;
        struct proxy_resolution res;
        struct dirconn_error err;
        if (proxy_new(cfg, NULL, &p, NULL) != DIRCONN_OK ||
            proxy_resolve(p, "https://cloud.example/scim", &res, &err) != DIRCONN_OK) {
            bad++;
        } else {
            if (res.n != 3 || res.routes[0] == NULL || strcmp(res.routes[0], "http://127.0.0.1:1"))
                bad++;
            proxy_resolution_clear(&res);
        }
        proxy_free(p);
    }
    config_free(cfg);
    return (void *)bad;
}

/* With the launcher (proxy_px_prefork), threads resolve at the same time; after it stops,
 * resolutions fork directly again. */
static void test_launcher_threads(void **state)
{
    (void)state;
    write_pac("ok.pac", "function FindProxyForURL(url, host) {\n"
                        "  if (host == \"cloud.example\") return \"PROXY 127.0.0.1:1; PROXY "
                        "127.0.0.1:2; DIRECT\";\n"
                        "  return \"DIRECT\"; }\n");
    static char section[512];
    snprintf(section, sizeof(section), "mode = pac\npac_url = pac+file://%s/ok.pac\n", tmpdir);
    struct dirconn_error err;
    assert_int_equal(proxy_px_prefork(&err), DIRCONN_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, resolve_loop, section), 0);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        assert_int_equal((long)bad, 0);
    }
    proxy_px_prefork_stop();
    assert_int_equal((long)resolve_loop(section), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pac_directives),
        cmocka_unit_test(test_routes_from_libproxy),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_resolve_none_and_explicit),
        cmocka_unit_test(test_password_file_missing),
        cmocka_unit_test(test_resolve_pac_file),
        cmocka_unit_test(test_cache_ttl_and_failure),
        cmocka_unit_test(test_cache_usable),
        cmocka_unit_test(test_seam_moves_through_routes),
        cmocka_unit_test(test_launcher_threads),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
