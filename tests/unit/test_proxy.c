/* Unit tests of proxy/: PAC answer checks, libproxy answers as libcurl routes,
 * redaction, resolution per mode (PAC files through libproxy), and the
 * transport seam moving to the next route after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "connector/core/config.h"
#include "connector/scim.h"
#include "proxy/proxy.h"
#include "proxy/proxy_px.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
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
    assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
    struct proxy_resolution res;
    assert_int_equal(proxy_resolve(p, "https://cloud.example/x", &res, NULL), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_null(res.routes[0]);
    assert_null(res.pac_url);
    proxy_resolution_clear(&res);
    proxy_free(p);
    config_free(cfg);

    cfg = load("mode = explicit\nurl = http://127.0.0.1:3128\n");
    assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
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
    assert_int_equal(proxy_new(cfg, NULL, NULL, &p, &err), DIRCONN_ECONFIG);
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
    assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
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
        assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
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
static int64_t fake_now_ms = 1000000;
static int64_t fake_clock(void)
{
    return fake_now_ms;
}

static void test_cache_ttl_and_failure(void **state)
{
    (void)state;
    proxy_set_clock(fake_clock); /* the TTL is measured on this clock, not on a loaded machine's */
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:1\"; }\n");
    char section[512];
    snprintf(section, sizeof(section),
             "mode = pac\npac_url = pac+file://%s/ttl.pac\npac_ttl = 1s\n", tmpdir);
    struct config *cfg = load(section);
    struct log_sink quiet = {.level = LOG_LEVEL_ERROR};
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, &quiet, NULL, &p, NULL), DIRCONN_OK);
    const char *url = "https://cloud.example/scim/v2/o/Users";
    const char *route = NULL;
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:1");
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:2\"; }\n");
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:1"); /* cached */
    fake_now_ms += 700; /* before the last fifth of the 1 s TTL: still cached */
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:1");
    fake_now_ms += 400; /* 1.1 s: expired */
    assert_int_equal(proxy_route_for(p, "https://cloud.example/other", &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:2"); /* expired: resolved again */

    /* The only route fails: the list is exhausted and resolved again at its next use. */
    write_pac("ttl.pac", "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:3\"; }\n");
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    struct http_route chosen;
    assert_int_equal(proxy_configure(p, easy, url, &chosen, NULL), DIRCONN_OK);
    assert_non_null(chosen.host); /* the route rides in the request's state */
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_outcome(p, easy, url, CURLE_COULDNT_CONNECT, &chosen, &err),
                     HTTP_OUTCOME_DEFAULT);
    assert_int_equal(err.code, DIRCONN_EPROXY);
    assert_non_null(strstr(err.msg, "proxy http://127.0.0.1:2"));
    assert_int_equal(proxy_route_for(p, url, &route, NULL), DIRCONN_OK);
    assert_string_equal(route, "http://127.0.0.1:3");

    /* An outcome of a route judged already (or never configured) changes nothing. */
    assert_null(chosen.host);
    dirconn_error_clear(&err);
    assert_int_equal(proxy_outcome(p, easy, url, CURLE_COULDNT_CONNECT, &chosen, &err),
                     HTTP_OUTCOME_DEFAULT);
    assert_int_equal(err.code, DIRCONN_OK);
    curl_easy_cleanup(easy);
    proxy_free(p);
    config_free(cfg);
    proxy_set_clock(NULL);
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
    assert_int_equal(proxy_new(cfg, &quiet, NULL, &p, NULL), DIRCONN_OK);
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

/* no_proxy as libcurl reads it (CURLOPT_NOPROXY): the cases its documentation gives. */
static void test_no_proxy_match(void **state)
{
    (void)state;
    static const struct {
        const char *list, *url;
        bool direct;
    } cases[] = {
        {"example.com", "https://example.com/x", true},
        {"example.com", "https://www.example.com/x", true},
        {"example.com", "https://example.com:8443/x", true},
        {".example.com", "https://www.example.com/x", true},
        {".example.com", "https://a.b.example.com/x", true},
        {".example.com", "https://example.com/x", true},
        {"example.com", "https://www.notexample.com/x", false},
        {"ample.com", "https://www.example.com/x", false},
        {"example.com", "https://example.com.org/x", false},
        {"EXAMPLE.com", "https://Www.Example.COM/x", true},
        {"*", "https://anything.example/", true},
        {"*", "https://10.1.2.3/", true},
        {"localhost, cloud.example ,other", "https://cloud.example/", true},
        {"localhost,other", "https://cloud.example/", false},
        {"127.0.0.1", "https://127.0.0.1:8443/", true},
        {"127.0.0.1", "https://127.0.0.2/", false},
        {"10.0.0.0/8", "https://10.1.2.3/", true},
        {"10.0.0.0/8", "https://11.1.2.3/", false},
        {"::1", "https://[::1]:8443/", true},
        {"", "https://example.com/", false},
        {NULL, "https://example.com/", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (proxy_no_proxy_match(cases[i].list, cases[i].url) != cases[i].direct)
            fail_msg("no_proxy '%s' for %s: expected %s", cases[i].list ? cases[i].list : "(null)",
                     cases[i].url, cases[i].direct ? "DIRECT" : "the proxy");
    }
}

/* A proxy variable without a scheme is http://, as curl reads it. */
static void test_env_proxy_url(void **state)
{
    (void)state;
    char *s = proxy_env_proxy_url("proxy.example:3128");
    assert_string_equal(s, "http://proxy.example:3128");
    free(s);
    s = proxy_env_proxy_url("https://proxy.example:443");
    assert_string_equal(s, "https://proxy.example:443");
    free(s);
    assert_null(proxy_env_proxy_url(""));
    assert_null(proxy_env_proxy_url(NULL));
}

static void test_auth_schemes(void **state)
{
    (void)state;
    char buf[64];
    proxy_auth_schemes(CURLAUTH_DIGEST, buf, sizeof(buf));
    assert_string_equal(buf, "Digest");
    proxy_auth_schemes(CURLAUTH_BASIC | CURLAUTH_DIGEST | CURLAUTH_DIGEST_IE, buf, sizeof(buf));
    assert_string_equal(buf, "Basic, Digest");
    proxy_auth_schemes(0, buf, sizeof(buf));
    assert_string_equal(buf, "none");
}

/* The setting that chose the route, for proxy-check. */
static void test_chosen_by(void **state)
{
    (void)state;
    static const struct {
        const char *section, *url, *chosen_by;
        bool direct;
    } cases[] = {
        {"mode = none\n", "https://cloud.example/", "[proxy] mode none", true},
        {"mode = explicit\nurl = http://127.0.0.1:3128\n", "https://cloud.example/",
         "[proxy] mode explicit", false},
        {"mode = explicit\nurl = http://127.0.0.1:3128\nno_proxy = .example\n",
         "https://cloud.example/", "[proxy] no_proxy", true},
        {"mode = explicit\nurl = http://127.0.0.1:3128\nno_proxy = other.example\n",
         "https://cloud.example/", "[proxy] mode explicit", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config *cfg = load(cases[i].section);
        struct proxy_ctx *p = NULL;
        assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
        struct proxy_resolution res;
        assert_int_equal(proxy_resolve(p, cases[i].url, &res, NULL), DIRCONN_OK);
        assert_int_equal(res.n, 1);
        assert_int_equal(res.routes[0] == NULL, cases[i].direct);
        assert_string_equal(res.chosen_by, cases[i].chosen_by);
        proxy_resolution_clear(&res);
        proxy_free(p);
        config_free(cfg);
    }
}

/* Mode auto reads the environment: https_proxy=host:port is http://host:port, no_proxy is
 * matched as libcurl does (libproxy alone would match ".example.com" only). */
static void test_auto_environment(void **state)
{
    (void)state;
    struct config *cfg = load("mode = auto\n");
    struct proxy_ctx *p = NULL;
    assert_int_equal(proxy_new(cfg, NULL, NULL, &p, NULL), DIRCONN_OK);
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "no_proxy",   "NO_PROXY",   NULL};
    for (size_t i = 0; vars[i] != NULL; i++)
        unsetenv(vars[i]);
    setenv("https_proxy", "127.0.0.1:3128", 1);
    struct proxy_resolution res;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_resolve(p, "https://www.example.com/x", &res, &err), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_non_null(res.routes[0]);
    assert_string_equal(res.routes[0], "http://127.0.0.1:3128");
    assert_string_equal(res.chosen_by, "https_proxy in the environment");
    proxy_resolution_clear(&res);
    setenv("no_proxy", "example.com", 1);
    assert_int_equal(proxy_resolve(p, "https://www.example.com/x", &res, &err), DIRCONN_OK);
    assert_int_equal(res.n, 1);
    assert_null(res.routes[0]);
    assert_string_equal(res.chosen_by, "no_proxy in the environment");
    proxy_resolution_clear(&res);
    setenv("no_proxy", "*", 1);
    assert_int_equal(proxy_resolve(p, "https://cloud.other/x", &res, &err), DIRCONN_OK);
    assert_null(res.routes[0]);
    proxy_resolution_clear(&res);
    unsetenv("no_proxy");
    unsetenv("https_proxy");
    assert_int_equal(proxy_resolve(p, "https://www.example.com/x", &res, &err), DIRCONN_OK);
    assert_null(res.routes[0]);
    assert_string_equal(res.chosen_by, "no proxy setting in the environment");
    proxy_resolution_clear(&res);
    proxy_free(p);
    config_free(cfg);
}

/* The shared memory: dead until its time, forgotten on request; a route logged once per change. */
static void test_shared_memory(void **state)
{
    (void)state;
    struct proxy_shared *s = NULL;
    assert_int_equal(proxy_shared_new(true, &s, NULL), DIRCONN_OK);
    assert_false(proxy_shared_is_dead(s, "http://a:1", 100));
    proxy_shared_mark_dead(s, "http://user:pw@a:1", 1000);
    assert_true(proxy_shared_is_dead(s, "http://a:1", 999));   /* user information ignored */
    assert_false(proxy_shared_is_dead(s, "http://a:1", 1000)); /* expired */
    assert_false(proxy_shared_is_dead(s, "http://b:2", 500));
    assert_false(proxy_shared_is_dead(s, NULL, 500));
    proxy_shared_mark_dead(s, "http://a:1", 2000);
    assert_true(proxy_shared_is_dead(s, "http://a:1", 1500));
    proxy_shared_forget_dead(s);
    assert_false(proxy_shared_is_dead(s, "http://a:1", 1500));
    assert_true(proxy_shared_note_route(s, "https://c:443", "proxy http://a:1"));
    assert_false(proxy_shared_note_route(s, "https://c:443", "proxy http://a:1"));
    assert_true(proxy_shared_note_route(s, "https://c:443", "DIRECT"));
    assert_true(proxy_shared_note_route(s, "https://d:443", "DIRECT"));
    proxy_shared_free(s);
}

/* A listening socket that counts the connections made to it and closes each at once. */
struct counter {
    int fd;
    int port;
    atomic_int accepted;
    atomic_bool stop;
    pthread_t thread;
};

static void *count_main(void *arg)
{
    struct counter *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept(c->fd, NULL, NULL);
        if (fd >= 0) {
            atomic_fetch_add(&c->accepted, 1);
            close(fd);
        }
    }
    return NULL;
}

static void counter_start(struct counter *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(c->fd, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(listen(c->fd, 16), 0);
    c->port = ntohs(sa.sin_port);
    atomic_init(&c->accepted, 0);
    atomic_init(&c->stop, false);
    assert_int_equal(pthread_create(&c->thread, NULL, count_main, c), 0);
}

static void counter_stop(struct counter *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    close(c->fd);
}

/* One transfer through the seam: configure, perform, outcome; returns the outcome. */
static enum http_outcome one_transfer(struct proxy_ctx *p, const char *url)
{
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    struct http_route route;
    assert_int_equal(proxy_configure(p, easy, url, &route, NULL), DIRCONN_OK);
    CURLcode rc = curl_easy_perform(easy);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum http_outcome o = proxy_outcome(p, easy, url, rc, &route, &err);
    curl_easy_cleanup(easy);
    return o;
}

/* "PROXY a; PROXY b; DIRECT" with a dead: the first transfer finds it dead, a second context
 * sharing the memory (the lease client, the next run) never tries it again within pac_ttl. */
static void test_dead_proxy_shared(void **state)
{
    (void)state;
    /* Threads run beside the resolutions: libproxy's children come from the launcher, forked
     * while this process has one thread (proxy_px_prefork), as in dirconnd. */
    struct dirconn_error perr;
    assert_int_equal(proxy_px_prefork(&perr), DIRCONN_OK);
    static struct counter dead, alive; /* static: outlive a failed assertion's longjmp */
    counter_start(&dead);
    counter_start(&alive); /* also closes at once: the route fails after it was tried */
    char pac[512];
    snprintf(pac, sizeof(pac),
             "function FindProxyForURL(u, h) { return \"PROXY 127.0.0.1:%d; PROXY "
             "127.0.0.1:%d; DIRECT\"; }\n",
             dead.port, alive.port);
    write_pac("dead.pac", pac);
    char section[512];
    snprintf(section, sizeof(section), "mode = pac\npac_url = pac+file://%s/dead.pac\n", tmpdir);
    struct config *cfg = load(section);
    struct log_sink quiet = {.level = LOG_LEVEL_ERROR};
    struct proxy_shared *shared = NULL;
    assert_int_equal(proxy_shared_new(false, &shared, NULL), DIRCONN_OK);
    struct proxy_ctx *p1 = NULL, *p2 = NULL, *own = NULL;
    assert_int_equal(proxy_new(cfg, &quiet, shared, &p1, NULL), DIRCONN_OK);
    const char *url = "https://cloud.example/scim/v2/o/Users";
    assert_int_equal(one_transfer(p1, url), HTTP_OUTCOME_RETRY);
    assert_int_equal(atomic_load(&dead.accepted), 1);
    assert_int_equal(atomic_load(&alive.accepted), 0);
    /* Another context of the program: it starts at the second proxy. */
    assert_int_equal(proxy_new(cfg, &quiet, shared, &p2, NULL), DIRCONN_OK);
    const char *route = NULL;
    assert_int_equal(proxy_route_for(p2, url, &route, NULL), DIRCONN_OK);
    assert_non_null(route);
    char want[64];
    snprintf(want, sizeof(want), "http://127.0.0.1:%d", alive.port);
    assert_string_equal(route, want);
    one_transfer(p2, url);
    assert_int_equal(atomic_load(&dead.accepted), 1); /* not tried again */
    assert_int_equal(atomic_load(&alive.accepted), 1);
    /* A context without the shared memory would try it again. */
    assert_int_equal(proxy_new(cfg, &quiet, NULL, &own, NULL), DIRCONN_OK);
    one_transfer(own, url);
    assert_int_equal(atomic_load(&dead.accepted), 2);
    proxy_free(own);
    proxy_free(p2);
    proxy_free(p1);
    proxy_shared_free(shared);
    config_free(cfg);
    counter_stop(&dead);
    counter_stop(&alive);
    proxy_px_prefork_stop();
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
        if (proxy_new(cfg, NULL, NULL, &p, NULL) != DIRCONN_OK ||
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
        cmocka_unit_test(test_no_proxy_match),
        cmocka_unit_test(test_env_proxy_url),
        cmocka_unit_test(test_auth_schemes),
        cmocka_unit_test(test_chosen_by),
        cmocka_unit_test(test_auto_environment),
        cmocka_unit_test(test_shared_memory),
        cmocka_unit_test(test_dead_proxy_shared),
        cmocka_unit_test(test_launcher_threads),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
