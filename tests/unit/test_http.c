/*
 * Unit tests of connector/net/http.c: the body cap, the header capture, the
 * retry and backoff decisions and the route of each request, against a real
 * HTTP listener on loopback (a thread answering canned responses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a loopback server: each connection gets the canned answer, then is closed -------------- */

struct server {
    int fd;
    unsigned short port;
    pthread_t thread;
    atomic_bool stop;
    const char *answer; /* whole HTTP/1.1 response; "Connection: close" semantics */
    atomic_int served;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pf = {.fd = s->fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        /* read the request head (the tests send no body larger than the buffer) */
        char buf[8192];
        size_t len = 0;
        while (len + 1 < sizeof(buf)) {
            ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        atomic_fetch_add(&s->served, 1); /* before the answer: the client sees it counted */
        size_t off = 0, total = strlen(s->answer);
        while (off < total) {
            ssize_t w = write(c, s->answer + off, total - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s, const char *answer)
{
    memset(s, 0, sizeof(*s));
    s->answer = answer;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void server_url(const struct server *s, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%u/x", (unsigned)s->port);
}

static const struct http_options opts = {.timeout_ms = 10000, .connect_timeout_ms = 5000};

/* An answer with a body of n bytes of 'a'. */
static char *answer_with_body(size_t n)
{
    const char *fmt = "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n";
    char head[256];
    int hl = snprintf(head, sizeof(head), fmt, n);
    char *a = malloc((size_t)hl + n + 1);
    assert_non_null(a);
    memcpy(a, head, (size_t)hl);
    memset(a + hl, 'a', n);
    a[(size_t)hl + n] = '\0';
    return a;
}

/* ---- the body ------------------------------------------------------------------------------- */

/* A body under the cap arrives whole and NUL-terminated; one over it ends the transfer. */
static void test_body_cap(void **state)
{
    (void)state;
    for (int wipe = 0; wipe < 2; wipe++) {
        char *answer = answer_with_body(10000); /* several chunks, grows past 4096 */
        struct server s;
        server_start(&s, answer);
        char url[64];
        server_url(&s, url, sizeof(url));

        struct http_request r;
        assert_int_equal(http_request_init(&r, 10001, wipe, NULL), DIRCONN_OK);
        http_request_setup(&r, &opts, url);
        struct dirconn_error err;
        assert_int_equal(http_perform(&r, NULL, url, &err), DIRCONN_OK);
        assert_int_equal(r.rc, CURLE_OK);
        assert_int_equal(r.status, 200);
        assert_false(r.body.overflow);
        assert_int_equal(r.body.len, 10000);
        assert_int_equal(strlen(r.body.data), 10000); /* NUL-terminated */
        assert_int_equal(r.attempts, 1);

        /* The same request again with a cap one byte smaller: over it. */
        http_request_cleanup(&r);
        assert_int_equal(http_request_init(&r, 10000, wipe, NULL), DIRCONN_OK);
        http_request_setup(&r, &opts, url);
        assert_int_equal(http_perform(&r, NULL, url, &err), DIRCONN_OK);
        assert_int_equal(r.rc, CURLE_WRITE_ERROR);
        assert_true(r.body.overflow);
        assert_true(r.body.len < 10000);
        assert_int_equal(r.status, 200); /* the status of an answer cut by the cap stays */

        /* A reset forgets the bytes and the flag; the memory stays for the next attempt. */
        http_body_reset(&r.body);
        assert_int_equal(r.body.len, 0);
        assert_false(r.body.overflow);
        http_request_cleanup(&r);
        assert_null(r.easy);
        server_stop(&s);
        free(answer);
    }
}

/* A GET of url by a request whose body keeps the head of at most max bytes (keep_head). */
static void get_keep_head(struct http_request *r, size_t max, const char *url)
{
    assert_int_equal(http_request_init(r, max, false, NULL), DIRCONN_OK);
    r->body.keep_head = true;
    http_request_setup(r, &opts, url);
    struct dirconn_error err;
    assert_int_equal(http_perform(r, NULL, url, &err), DIRCONN_OK);
    assert_int_equal(r->rc, CURLE_OK); /* not cut: the whole answer was taken */
    assert_int_equal(r->status, 200);
    assert_false(r->body.overflow);
}

/* keep_head: an answer over the cap is read to its end; its first max - 1 bytes are kept. */
static void test_body_keep_head(void **state)
{
    (void)state;
    char *answer = answer_with_body(100000); /* several chunks */
    struct server s;
    server_start(&s, answer);
    char url[64];
    server_url(&s, url, sizeof(url));
    struct http_request r;
    get_keep_head(&r, 1001, url);
    assert_true(r.body.truncated);
    assert_int_equal(r.body.len, 1000);
    assert_int_equal(strlen(r.body.data), 1000);
    assert_int_equal(strspn(r.body.data, "a"), 1000);
    http_request_cleanup(&r);
    /* under the cap: whole, not truncated */
    get_keep_head(&r, 100001, url);
    assert_false(r.body.truncated);
    assert_int_equal(r.body.len, 100000);
    http_request_cleanup(&r);
    server_stop(&s);
    free(answer);
}

/* A stream's body is whole once the part wanted is in: the transfer ends with CURLE_OK. */
static bool first_line_in(const char *data, size_t len)
{
    return memchr(data, '\n', len) != NULL;
}

static void test_body_complete(void **state)
{
    (void)state;
    /* A chunked answer that never ends on its own: only the completion ends it early. */
    struct server s;
    server_start(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\nfirst\n\r\n");
    char url[64];
    server_url(&s, url, sizeof(url));
    struct http_request r;
    assert_int_equal(http_request_init(&r, 1024, false, NULL), DIRCONN_OK);
    r.body.complete = first_line_in;
    http_request_setup(&r, &opts, url);
    struct dirconn_error err;
    assert_int_equal(http_perform(&r, NULL, url, &err), DIRCONN_OK);
    assert_int_equal(r.rc, CURLE_OK);
    assert_true(r.body.completed);
    assert_string_equal(r.body.data, "first\n");
    http_request_cleanup(&r);
    server_stop(&s);
}

/* ---- headers -------------------------------------------------------------------------------- */

static void test_header_capture(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "HTTP/1.1 503 Service Unavailable\r\n"
                     "ETag: W/\"7\"\r\n"
                     "Location: https://cloud.example/scim/v2/Users/1\r\n"
                     "Retry-After:   120  \r\n"
                     "WWW-Authenticate: Bearer realm=\"scim\"\r\n"
                     "Proxy-Authenticate: Basic realm=\"p\"\r\n"
                     "Content-Type: application/scim+json\r\n"
                     "Dirconn-Fenced: 1\r\n"
                     "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
    char url[64];
    server_url(&s, url, sizeof(url));
    struct http_request r;
    assert_int_equal(http_request_init(&r, 1024, false, NULL), DIRCONN_OK);
    http_request_setup(&r, &opts, url);
    struct dirconn_error err;
    assert_int_equal(http_perform(&r, NULL, url, &err), DIRCONN_OK);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.headers.etag, "W/\"7\"");
    assert_string_equal(r.headers.location, "https://cloud.example/scim/v2/Users/1");
    assert_string_equal(r.headers.retry_after, "120");
    assert_int_equal(http_parse_retry_after(r.headers.retry_after, 0), 120000);
    assert_string_equal(r.headers.www_authenticate, "Bearer realm=\"scim\"");
    assert_string_equal(r.headers.proxy_authenticate, "Basic realm=\"p\"");
    assert_string_equal(r.headers.content_type, "application/scim+json");
    char *fenced = http_header_value(r.easy, "dirconn-fenced");
    assert_string_equal(fenced, "1");
    free(fenced);
    assert_null(http_header_value(r.easy, "Dirconn-HA-Mode"));
    /* The next attempt starts with none of them. */
    assert_int_equal(http_attempt_begin(&r, NULL, url, &err), DIRCONN_OK);
    assert_null(r.headers.etag);
    assert_int_equal(r.body.len, 0);
    http_request_cleanup(&r);
    server_stop(&s);
}

/* ---- retry and backoff decisions ------------------------------------------------------------ */

static void test_retry_decisions(void **state)
{
    (void)state;
    /* transport failures that are tried again, and ones that are not */
    assert_true(http_retryable_curl(CURLE_COULDNT_CONNECT));
    assert_true(http_retryable_curl(CURLE_OPERATION_TIMEDOUT));
    assert_true(http_retryable_curl(CURLE_GOT_NOTHING));
    assert_true(http_retryable_curl(CURLE_SSL_CONNECT_ERROR));
    assert_false(http_retryable_curl(CURLE_PEER_FAILED_VERIFICATION));
    assert_false(http_retryable_curl(CURLE_WRITE_ERROR));
    assert_false(http_retryable_curl(CURLE_OK));
    /* statuses that say "later" (RFC 6585 4, RFC 9110 15.6) */
    for (long st = 100; st < 600; st++)
        assert_int_equal(http_retryable_status(st),
                         st == 429 || st == 500 || st == 502 || st == 503 || st == 504);
    /* a request may have been applied: lost answers and server failures, not refusals */
    assert_true(http_maybe_applied(CURLE_OPERATION_TIMEDOUT, 0));
    assert_true(http_maybe_applied(CURLE_RECV_ERROR, 0));
    assert_false(http_maybe_applied(CURLE_COULDNT_CONNECT, 0));
    assert_false(http_maybe_applied(CURLE_COULDNT_RESOLVE_HOST, 0));
    assert_false(http_maybe_applied(CURLE_SSL_CONNECT_ERROR, 0));
    assert_true(http_maybe_applied(CURLE_OK, 500));
    assert_true(http_maybe_applied(CURLE_OK, 502));
    assert_true(http_maybe_applied(CURLE_OK, 504));
    assert_false(http_maybe_applied(CURLE_OK, 503));
    assert_false(http_maybe_applied(CURLE_OK, 429));
    assert_false(http_maybe_applied(CURLE_OK, 200));
}

static void test_backoff(void **state)
{
    (void)state;
    /* Attempt n waits between half and all of min(max, base * 2^(n-1)). */
    for (uint32_t rnd = 0; rnd < 5000; rnd += 37) {
        int64_t d1 = http_retry_delay_ms(1, 500, 30000, rnd);
        assert_true(d1 >= 250 && d1 <= 500);
        int64_t d4 = http_retry_delay_ms(4, 500, 30000, rnd);
        assert_true(d4 >= 2000 && d4 <= 4000);
        int64_t d20 = http_retry_delay_ms(20, 500, 30000, rnd);
        assert_true(d20 >= 15000 && d20 <= 30000);
    }
    /* Jitter spreads the values. */
    assert_int_not_equal(http_retry_delay_ms(3, 500, 30000, 1),
                         http_retry_delay_ms(3, 500, 30000, 977));
    /* A delay asked for (Retry-After, or 0 for another route) wins, up to 4 * max. */
    const struct http_backoff b = {500, 30000};
    assert_int_equal(http_backoff_ms(&b, 3, 0, 12345), 0);
    assert_int_equal(http_backoff_ms(&b, 3, 7000, 12345), 7000);
    assert_int_equal(http_backoff_ms(&b, 3, 3600000, 12345), 120000);
    assert_int_equal(http_backoff_ms(&b, 2, -1, 77), http_retry_delay_ms(2, 500, 30000, 77));
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(http_parse_retry_after("7", 0), 7000);
    assert_int_equal(http_parse_retry_after(" 0", 0), 0);
    assert_int_equal(http_parse_retry_after("-1", 0), -1);
    assert_int_equal(http_parse_retry_after("soon", 0), -1);
    assert_int_equal(http_parse_retry_after("5x", 0), -1);
    assert_int_equal(http_parse_retry_after("86401", 0), -1);
    assert_int_equal(http_parse_retry_after(NULL, 0), -1);
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 (RFC 9110 5.6.7). */
    assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770), 7000);
    assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800), 0);
}

/* ---- the route of each request -------------------------------------------------------------- */

/*
 * A transport whose configure hook hands out routes 1, 2, 3... and whose
 * outcome hook checks that each attempt comes back with its own route and
 * answers RETRY until `retries` attempts were judged.
 */
struct seam {
    size_t next_index;
    int judged;
    int retries;
    size_t seen[16]; /* the route index each outcome received, in order */
    const void *host[16];
    CURL *easy_seen[16];
};

static enum dirconn_err seam_configure(void *arg, CURL *easy, const char *url,
                                       struct http_route *route, struct dirconn_error *err)
{
    (void)easy;
    (void)url;
    (void)err;
    struct seam *s = arg;
    assert_null(route->host); /* zeroed before each attempt */
    route->host = s;
    route->index = ++s->next_index;
    route->generation = 7;
    return DIRCONN_OK;
}

static enum http_outcome seam_outcome(void *arg, CURL *easy, const char *url, CURLcode rc,
                                      struct http_route *route, struct dirconn_error *err)
{
    (void)url;
    (void)rc;
    struct seam *s = arg;
    assert_true(s->judged < 16);
    s->seen[s->judged] = route->index;
    s->host[s->judged] = route->host;
    s->easy_seen[s->judged] = easy;
    s->judged++;
    if (s->judged <= s->retries) {
        dirconn_error_set(err, DIRCONN_EPROXY, "route %zu failed; next route", route->index);
        return HTTP_OUTCOME_RETRY;
    }
    return HTTP_OUTCOME_DEFAULT;
}

/* http_perform: each attempt's outcome gets the route its configure chose; RETRY moves on. */
static void test_route_per_attempt(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    char url[64];
    server_url(&s, url, sizeof(url));
    struct seam sm = {.retries = 2};
    const struct http_transport t = {seam_configure, seam_outcome, &sm};
    struct http_request r;
    assert_int_equal(http_request_init(&r, 1024, false, NULL), DIRCONN_OK);
    http_request_setup(&r, &opts, url);
    struct dirconn_error err;
    assert_int_equal(http_perform(&r, &t, url, &err), DIRCONN_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(sm.judged, 3);
    assert_int_equal(r.attempts, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sm.seen[i], (size_t)i + 1);
        assert_ptr_equal(sm.host[i], &sm);
    }
    assert_int_equal(err.code, DIRCONN_OK); /* the last transfer succeeded: no note */
    assert_int_equal(atomic_load(&s.served), 3);

    /* A hook that always asks for another route stops after HTTP_MAX_ROUTES transfers. */
    struct seam always = {.retries = 1000};
    const struct http_transport t2 = {seam_configure, seam_outcome, &always};
    assert_int_equal(http_perform(&r, &t2, url, &err), DIRCONN_OK);
    assert_int_equal(always.judged, HTTP_MAX_ROUTES);
    http_request_cleanup(&r);
    server_stop(&s);
}

/* Two requests in flight at once on a multi handle: each outcome gets its own request's route,
 * however their transfers end, with no table keyed by the easy handle. */
static void test_route_per_request_multi(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    char url[64];
    server_url(&s, url, sizeof(url));
    struct seam sm = {.retries = 0};
    const struct http_transport t = {seam_configure, seam_outcome, &sm};
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    struct http_request r[2];
    size_t chosen[2];
    struct dirconn_error err;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(http_request_init(&r[i], 1024, false, NULL), DIRCONN_OK);
        http_request_setup(&r[i], &opts, url);
        curl_easy_setopt(r[i].easy, CURLOPT_PRIVATE, &r[i]);
        assert_int_equal(http_attempt_begin(&r[i], &t, url, &err), DIRCONN_OK);
        assert_true(r[i].configured);
        chosen[i] = r[i].route.index;
        assert_int_equal(curl_multi_add_handle(m, r[i].easy), CURLM_OK);
    }
    assert_int_not_equal(chosen[0], chosen[1]);
    int running = 1, done = 0;
    while (done < 2) {
        assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct http_request *q = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, msg->easy_handle);
            size_t before = (size_t)sm.judged;
            assert_int_equal(http_attempt_end(q, &t, url, rc, &err), HTTP_OUTCOME_DEFAULT);
            assert_int_equal(sm.seen[before], chosen[q == &r[0] ? 0 : 1]);
            assert_ptr_equal(sm.easy_seen[before], q->easy);
            assert_false(q->configured);
            assert_int_equal(q->status, 200);
            assert_string_equal(q->body.data, "ok");
            done++;
        }
        if (done < 2)
            assert_int_equal(curl_multi_poll(m, NULL, 0, 100, NULL), CURLM_OK);
    }
    assert_int_equal(sm.judged, 2);
    /* an attempt that was never configured is not judged */
    r[0].configured = false;
    assert_int_equal(http_attempt_end(&r[0], &t, url, CURLE_OK, &err), HTTP_OUTCOME_DEFAULT);
    assert_int_equal(sm.judged, 2);
    for (int i = 0; i < 2; i++)
        http_request_cleanup(&r[i]);
    curl_multi_cleanup(m);
    server_stop(&s);
}

/* A configure hook's error ends the request before any transfer. */
static enum dirconn_err refuse(void *arg, CURL *easy, const char *url, struct http_route *route,
                               struct dirconn_error *err)
{
    (void)arg;
    (void)easy;
    (void)route;
    return dirconn_error_set(err, DIRCONN_EPROXY, "PAC for %s failed", url);
}

static void test_configure_error(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    char url[64];
    server_url(&s, url, sizeof(url));
    struct seam sm = {0};
    const struct http_transport t = {refuse, seam_outcome, &sm};
    struct http_request r;
    assert_int_equal(http_request_init(&r, 1024, false, NULL), DIRCONN_OK);
    http_request_setup(&r, &opts, url);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(http_perform(&r, &t, url, &err), DIRCONN_EPROXY);
    assert_non_null(strstr(err.msg, "PAC for http://127.0.0.1:"));
    assert_int_equal(r.attempts, 0);
    assert_int_equal(sm.judged, 0);
    assert_int_equal(atomic_load(&s.served), 0);
    http_request_cleanup(&r);
    server_stop(&s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_body_keep_head),
        cmocka_unit_test(test_body_complete),
        cmocka_unit_test(test_header_capture),
        cmocka_unit_test(test_retry_decisions),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_route_per_attempt),
        cmocka_unit_test(test_route_per_request_multi),
        cmocka_unit_test(test_configure_error),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
