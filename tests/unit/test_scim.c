/* Unit tests of connector/scim.c: escaping, options, retries, self-fencing at the send
 * (backoff and Retry-After are net/http's: tests/unit/test_http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/scim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

static void test_escape(void **state)
{
    (void)state;
    char *e = scim_url_escape("userName eq \"zoë@example.com\"");
    assert_string_equal(e, "userName%20eq%20%22zo%C3%AB%40example.com%22");
    curl_free(e);
}

static void test_client_rejects_bad_url(void **state)
{
    (void)state;
    struct scim_client_options o = {.base_url = "ftp://x"};
    struct scim_client *c = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(scim_client_new(&o, &c, &err), DIRCONN_ECONFIG);
    assert_null(c);
    o.base_url = "https://cloud.example.com/scim/v2/org/";
    assert_int_equal(scim_client_new(&o, &c, &err), DIRCONN_OK);
    assert_int_equal(scim_client_set_header(c, "Dirconn-Fencing-Token", "3"), DIRCONN_OK);
    assert_int_equal(scim_client_set_header(c, "dirconn-fencing-token", "4"), DIRCONN_OK);
    assert_int_equal(scim_client_set_header(c, "Dirconn-Fencing-Token", NULL), DIRCONN_OK);
    scim_client_free(c);
}

/* A request to a closed port fails with ECLOUD_CONNECT after its retries, naming the URL. */
static int done_calls;
static void on_done(void *arg, const struct scim_response *resp)
{
    struct scim_response *out = arg;
    done_calls++;
    out->code = resp->code;
    out->attempts = resp->attempts;
    memcpy(out->error, resp->error, sizeof(out->error));
    out->origin = resp->origin;
    out->cause = resp->cause;
}

static void test_unreachable_is_retried_then_fails(void **state)
{
    (void)state;
    struct scim_client_options o = {.base_url = "http://127.0.0.1:1/scim/v2/o",
                                    .max_retries = 2,
                                    .backoff_base_ms = 10,
                                    .backoff_max_ms = 20,
                                    .connect_timeout_ms = 1000};
    struct scim_client *c = NULL;
    assert_int_equal(scim_client_new(&o, &c, NULL), DIRCONN_OK);
    struct scim_response r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(scim_submit(c, "GET", "/Users", NULL, NULL, on_done, &r, NULL), DIRCONN_OK);
    assert_int_equal(scim_run(c, NULL), DIRCONN_OK);
    assert_int_equal(done_calls, 1);
    assert_int_equal(r.code, DIRCONN_ECLOUD_CONNECT);
    assert_int_equal(r.attempts, 3);
    assert_non_null(strstr(r.error, "GET http://127.0.0.1:1/scim/v2/o/Users"));
    /* the cause is libcurl's: nothing listens on port 1 */
    assert_int_equal(r.origin, DIRCONN_ORIGIN_CURL);
    assert_int_equal(r.cause, CURLE_COULDNT_CONNECT);
    struct dirconn_error err = {0};
    assert_int_equal(scim_response_error(&r, &err), DIRCONN_ECLOUD_CONNECT);
    assert_string_equal(err.msg, r.error);
    assert_int_equal(err.origin, DIRCONN_ORIGIN_CURL);
    assert_int_equal(err.cause, CURLE_COULDNT_CONNECT);
    scim_client_free(c);
}

/* An error status keeps its HTTP status as the cause; a success has none. */
static void test_response_cause_http(void **state)
{
    (void)state;
    struct scim_response r;
    memset(&r, 0, sizeof(r));
    const char *body = "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:Error\"],"
                       "\"status\":\"503\",\"detail\":\"busy\"}";
    scim_response_parse(&r, "GET", "/Users", 503, body, strlen(body), false);
    assert_int_equal(r.code, DIRCONN_ECLOUD);
    assert_int_equal(r.origin, DIRCONN_ORIGIN_HTTP);
    assert_int_equal(r.cause, 503);
    struct dirconn_error err = {0};
    scim_response_error(&r, &err);
    assert_int_equal(err.origin, DIRCONN_ORIGIN_HTTP);
    assert_int_equal(err.cause, 503);
    scim_response_clear(&r);
    memset(&r, 0, sizeof(r));
    scim_response_parse(&r, "GET", "/Users", 200, "{}", 2, false);
    assert_int_equal(r.code, DIRCONN_OK);
    assert_int_equal(r.origin, DIRCONN_ORIGIN_NONE);
    scim_response_clear(&r);
}

/*
 * Self-fencing at the send: the HA write deadline passes after the write was
 * started (here inside the configure hook, as when the process is frozen
 * between the two). CURLOPT_PREREQFUNCTION aborts it once the connection
 * stands: the listener accepts the connection but reads not one byte, and
 * the write ends with DIRCONN_ELEASE after one attempt, never resent.
 */
static enum dirconn_err pass_deadline(void *arg, CURL *easy, const char *url,
                                      struct http_route *route, struct dirconn_error *err)
{
    (void)easy;
    (void)url;
    (void)route;
    (void)err;
    atomic_store((_Atomic int64_t *)arg, 0);
    return DIRCONN_OK;
}

static void test_write_fenced_at_send(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/scim/v2/o", (unsigned)ntohs(sa.sin_port));

    _Atomic int64_t deadline = INT64_MAX; /* open when the write starts */
    struct scim_client_options o = {.base_url = url,
                                    .max_retries = 2,
                                    .backoff_base_ms = 10,
                                    .backoff_max_ms = 20,
                                    .connect_timeout_ms = 5000,
                                    .timeout_ms = 5000,
                                    .configure = pass_deadline,
                                    .configure_arg = (void *)&deadline,
                                    .write_deadline_ms = &deadline};
    struct scim_client *c = NULL;
    assert_int_equal(scim_client_new(&o, &c, NULL), DIRCONN_OK);
    struct scim_response r;
    memset(&r, 0, sizeof(r));
    done_calls = 0;
    json_t *body = json_pack("{s:s}", "userName", "a");
    assert_non_null(body);
    assert_int_equal(scim_submit(c, "POST", "/Users", body, NULL, on_done, &r, NULL), DIRCONN_OK);
    json_decref(body);
    assert_int_equal(scim_run(c, NULL), DIRCONN_OK);
    assert_int_equal(done_calls, 1);
    assert_int_equal(r.code, DIRCONN_ELEASE);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.error, "self-fenced"));
    scim_client_free(c); /* closes the connection: the peer reads end-of-file, no request */

    int fd = accept(ls, NULL, NULL); /* the connection stood: the check ran after it */
    assert_true(fd >= 0);
    char buf[256];
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    assert_int_equal(n, 0);
    close(fd);
    close(ls);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_client_rejects_bad_url),
        cmocka_unit_test(test_unreachable_is_retried_then_fails),
        cmocka_unit_test(test_response_cause_http),
        cmocka_unit_test(test_write_fenced_at_send),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
