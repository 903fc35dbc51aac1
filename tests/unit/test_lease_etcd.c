/*
 * Unit tests for ha/lease_etcd.c against a scripted fake of etcd's JSON
 * gateway on loopback (one thread, canned answers in order): what the
 * backend sends (int64 as strings, base64 keys), how it reads the answers
 * (proto3 omissions, int64 strings, a keepalive stream that stays open),
 * endpoint failover (refused, HTTP 503) and the error codes. The real etcd
 * cluster is in tests/integration/ha_etcd_lease.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/config.h"
#include "ha/lease.h"
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STEPS 16

struct step {
    int status;
    const char *body;
    bool hold; /* a stream: send the body as one chunk and keep the connection open */
};

struct fake {
    int lfd;
    int port;
    pthread_t thread;
    struct step steps[MAX_STEPS];
    int n_steps;
    char *requests[MAX_STEPS]; /* "PATH BODY" of each request answered */
    int n_requests;
    int held[MAX_STEPS];
    int n_held;
};

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* Read one request (headers, then Content-Length bytes of body) into a "PATH BODY" string. */
static char *read_request(int fd)
{
    size_t cap = 65536, len = 0;
    char *buf = calloc(1, cap);
    char *end = NULL;
    while (len + 1 < cap && (end = strstr(buf, "\r\n\r\n")) == NULL) {
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    if (end == NULL) {
        free(buf);
        return NULL;
    }
    const char *cl = strstr(buf, "Content-Length:");
    size_t body_len = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
    size_t head = (size_t)(end - buf) + 4;
    while (len < head + body_len && len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    char path[256] = "";
    sscanf(buf, "POST %255s", path);
    /* the Authorization header, when one was sent, after a tab */
    char auth[256] = "";
    const char *a = strstr(buf, "\r\nAuthorization: ");
    if (a != NULL && a < end)
        sscanf(a + 17, "%255[^\r]", auth);
    char *out = malloc(strlen(path) + body_len + strlen(auth) + 3);
    sprintf(out, "%s %.*s%s%s", path, (int)body_len, buf + head, auth[0] ? "\t" : "", auth);
    free(buf);
    return out;
}

static void *serve(void *arg)
{
    struct fake *f = arg;
    for (int i = 0; i < f->n_steps; i++) {
        int c = accept(f->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        f->requests[f->n_requests++] = read_request(c);
        const struct step *s = &f->steps[i];
        char head[512];
        if (s->hold) {
            snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
                     s->status, strlen(s->body), s->body);
            (void)!write(c, head, strlen(head));
            f->held[f->n_held++] = c; /* the stream stays open */
            continue;
        }
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 s->status, strlen(s->body));
        (void)!write(c, head, strlen(head));
        (void)!write(c, s->body, strlen(s->body));
        close(c);
    }
    return NULL;
}

static void fake_step(struct fake *f, int status, const char *body, bool hold)
{
    f->steps[f->n_steps++] = (struct step){status, body, hold};
}

static void fake_start(struct fake *f)
{
    assert_true(pthread_create(&f->thread, NULL, serve, f) == 0);
}

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->lfd = listen_loopback(&f->port);
    assert_true(f->lfd >= 0);
}

static void fake_done(struct fake *f)
{
    /* Unblock an accept that no request came for. */
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    for (int i = 0; i < f->n_held; i++)
        close(f->held[i]);
}

static void fake_free(struct fake *f)
{
    for (int i = 0; i < f->n_requests; i++)
        free(f->requests[i]);
}

/* A port nothing listens on. */
static int dead_port(void)
{
    int port = 0;
    int fd = listen_loopback(&port);
    close(fd);
    return port;
}

static struct config *conf(const char *endpoints)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[ldap]\nurls = ldap://127.0.0.1:1\n[cloud]\norg = acme\n[ha]\nlease = etcd\n"
             "etcd_endpoints = %s\n",
             endpoints);
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(config_load_string(text, "test.conf", &cfg, &err), DIRCONN_OK);
    return cfg;
}

static struct log_sink quiet = {
    .level = LOG_LEVEL_ERROR, .target = LOG_TARGET_STDERR, .ident = "test_lease_etcd"};

static void backend(struct lease_backend *b, const char *endpoints)
{
    struct config *cfg = conf(endpoints);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "A", 2000, b, &err), DIRCONN_OK);
    config_free(cfg); /* the backend keeps copies */
    assert_string_equal(b->ops->name, "etcd");
    assert_string_equal(b->identity, "A");
    assert_false(b->cloud_fencing);
}

static char *url_of(int port)
{
    static char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", port);
    return u;
}

/* base64 of "/dirconn/acme/leader" and of "A" */
#define LEADER_B64 "L2RpcmNvbm4vYWNtZS9sZWFkZXI="
#define STATE_B64  "L2RpcmNvbm4vYWNtZS9zdGF0ZQ=="
#define A_B64      "QQ=="
#define B_B64      "Qg=="
#define HDR        "\"header\":{\"revision\":\"9\"}"
#define KV(value, crev, mrev, lease)                                                               \
    "{\"key\":\"" LEADER_B64 "\",\"create_revision\":\"" crev "\",\"mod_revision\":\"" mrev        \
    "\",\"version\":\"1\",\"value\":\"" value "\",\"lease\":\"" lease "\"}"

static void test_new_errors(void **state)
{
    (void)state;
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(
        config_load_string("[ldap]\nurls = ldap://127.0.0.1:1\n", "t.conf", &cfg, &err),
        DIRCONN_OK);
    struct lease_backend b;
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "A", 1000, &b, &err),
                     DIRCONN_ECONFIG);
    assert_null(b.ops);
    config_free(cfg);
    cfg = conf("http://127.0.0.1:1");
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "", 1000, &b, &err),
                     DIRCONN_ECONFIG);
    config_free(cfg);
}

static void test_observe_free_and_held(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 200, "{" HDR "}", false); /* range: no kvs member at all (proto3) */
    fake_step(&f, 200,
              "{" HDR ",\"kvs\":[" KV(B_B64, "9007199254740993", "9007199254740995",
                                      "7587869874430190000") "],\"count\":\"1\"}",
              false);
    fake_step(&f, 200,
              "{" HDR ",\"ID\":\"7587869874430190000\",\"TTL\":\"4\",\"grantedTTL\":\"5\"}", false);
    fake_start(&f);
    struct lease_backend b;
    backend(&b, url_of(f.port));
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    assert_null(li.holder);
    assert_int_equal(li.token, 0);
    assert_int_equal(li.remaining_ms, 0);
    assert_null(li.version);
    lease_info_clear(&li);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    assert_string_equal(li.holder, "B");
    assert_true(li.token == 9007199254740993LL); /* beyond a double's 53 bits */
    assert_string_equal(li.version, "9007199254740995");
    assert_int_equal(li.remaining_ms, 4000);
    assert_int_equal(li.duration_ms, 5000);
    assert_null(li.acquired_at);
    lease_info_clear(&li);
    lease_backend_free(&b);
    fake_done(&f);
    assert_int_equal(f.n_requests, 3);
    assert_string_equal(f.requests[0], "/v3/kv/range {\"key\":\"" LEADER_B64 "\"}");
    assert_string_equal(f.requests[2], "/v3/lease/timetolive {\"ID\":\"7587869874430190000\"}");
    fake_free(&f);
}

static void test_failover_refused_and_503(void **state)
{
    (void)state;
    struct fake f1, f2;
    fake_init(&f1);
    fake_init(&f2);
    fake_step(&f1, 503,
              "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no "
              "leader\",\"code\":14}",
              false);
    fake_step(&f2, 200, "{" HDR "}", false);
    fake_step(&f2, 200, "{" HDR "}", false);
    fake_start(&f1);
    fake_start(&f2);
    char eps[256];
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d http://127.0.0.1:%d http://127.0.0.1:%d",
             dead_port(), f1.port, f2.port);
    struct lease_backend b;
    backend(&b, eps);
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    /* refused, then 503, then the third answers */
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    /* and is asked first next time (f2 has one more answer, f1 none) */
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    lease_backend_free(&b);
    fake_done(&f1);
    fake_done(&f2);
    assert_int_equal(f1.n_requests, 1);
    assert_int_equal(f2.n_requests, 2);
    fake_free(&f1);
    fake_free(&f2);
}

/* A second backend of the program (the shared-state step's) starts at the endpoint that
 * answered the first one, not at the dead first URL again. */
static void test_shared_endpoint(void **state)
{
    (void)state;
    struct fake f1, f2;
    fake_init(&f1);
    fake_init(&f2);
    /* f1 counts the requests it gets: one 503, and one more would be a second try */
    fake_step(&f1, 503, "{\"error\":\"etcdserver: no leader\",\"code\":14}", false);
    fake_step(&f1, 503, "{\"error\":\"etcdserver: no leader\",\"code\":14}", false);
    fake_step(&f2, 200, "{" HDR "}", false);
    fake_step(&f2, 200, "{" HDR "}", false);
    fake_start(&f1);
    fake_start(&f2);
    char eps[256];
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d http://127.0.0.1:%d", f1.port, f2.port);
    struct config *cfg = conf(eps);
    struct proxy_shared *shared = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(proxy_shared_new(false, &shared, &err), DIRCONN_OK);
    struct lease_backend b1, b2;
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, shared, "A", 2000, &b1, &err), DIRCONN_OK);
    struct lease_info li = {0};
    assert_int_equal(b1.ops->observe(b1.self, &li, &err), DIRCONN_OK); /* f1 503, then f2 */
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, shared, "A", 2000, &b2, &err), DIRCONN_OK);
    assert_int_equal(b2.ops->observe(b2.self, &li, &err), DIRCONN_OK); /* f2 at once */
    lease_backend_free(&b2);
    lease_backend_free(&b1);
    proxy_shared_free(shared);
    config_free(cfg);
    fake_done(&f1);
    fake_done(&f2);
    assert_int_equal(f1.n_requests, 1);
    assert_int_equal(f2.n_requests, 2);
    fake_free(&f1);
    fake_free(&f2);
}

/* A configuration with etcd authentication; the password file (mode `mode`) in *pwfile. */
static struct config *conf_auth(int port, mode_t mode, char *pwfile, size_t cap)
{
    snprintf(pwfile, cap, "/tmp/test_lease_etcd.pw.XXXXXX");
    int fd = mkstemp(pwfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret\n", 7), 7);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    char text[1024];
    snprintf(text, sizeof(text),
             "[ldap]\nurls = ldap://127.0.0.1:1\n[cloud]\norg = acme\n[ha]\nlease = etcd\n"
             "etcd_endpoints = http://127.0.0.1:%d\netcd_user = dirconn\n"
             "etcd_password_file = %s\n",
             port, pwfile);
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(config_load_string(text, "test.conf", &cfg, &err), DIRCONN_OK);
    return cfg;
}

#define AUTH_REQ "/v3/auth/authenticate {\"name\":\"dirconn\",\"password\":\"s3cret\"}"

static void test_auth_token_renewed(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 200, "{" HDR ",\"token\":\"T1.1\"}", false);
    fake_step(&f, 200, "{" HDR "}", false);
    /* the token expired (etcd restarted): 401, authenticate again, once more */
    fake_step(&f, 401, "{\"error\":\"etcdserver: invalid auth token\",\"code\":16}", false);
    fake_step(&f, 200, "{" HDR ",\"token\":\"T2.2\"}", false);
    fake_step(&f, 200, "{" HDR "}", false);
    /* a stream carries the refusal in its body */
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV(A_B64, "12", "12", "42") "]}", false);
    fake_step(&f, 200,
              "{\"error\":{\"grpc_code\":16,\"http_code\":401,\"message\":\"etcdserver: "
              "invalid auth token\"}}",
              true);
    fake_step(&f, 200, "{" HDR ",\"token\":\"T3.3\"}", false);
    fake_step(&f, 200, "{\"result\":{" HDR ",\"ID\":\"42\",\"TTL\":\"30\"}}", true);
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV(A_B64, "12", "12", "42") "]}", false);
    fake_start(&f);
    char pw[64];
    struct config *cfg = conf_auth(f.port, 0600, pw, sizeof(pw));
    struct lease_backend b;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "A", 2000, &b, &err), DIRCONN_OK);
    config_free(cfg);
    struct lease_info li = {0};
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_OK);
    assert_int_equal(b.ops->renew(b.self, 30000, &li, &err), DIRCONN_OK);
    assert_int_equal(li.token, 12);
    lease_info_clear(&li);
    lease_backend_free(&b);
    fake_done(&f);
    unlink(pw);
    assert_int_equal(f.n_requests, 10);
    assert_string_equal(f.requests[0], AUTH_REQ);
    assert_string_equal(f.requests[1], "/v3/kv/range {\"key\":\"" LEADER_B64 "\"}\tT1.1");
    assert_string_equal(f.requests[2], "/v3/kv/range {\"key\":\"" LEADER_B64 "\"}\tT1.1");
    assert_string_equal(f.requests[3], AUTH_REQ);
    assert_string_equal(f.requests[4], "/v3/kv/range {\"key\":\"" LEADER_B64 "\"}\tT2.2");
    assert_string_equal(f.requests[6], "/v3/lease/keepalive {\"ID\":\"42\"}\tT2.2");
    assert_string_equal(f.requests[7], AUTH_REQ);
    assert_string_equal(f.requests[8], "/v3/lease/keepalive {\"ID\":\"42\"}\tT3.3");
    fake_free(&f);
}

static void test_auth_refused(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 400,
              "{\"error\":\"etcdserver: authentication failed, invalid user ID or "
              "password\",\"code\":3}",
              false);
    fake_start(&f);
    char pw[64];
    struct config *cfg = conf_auth(f.port, 0600, pw, sizeof(pw));
    struct lease_backend b;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "A", 2000, &b, &err), DIRCONN_OK);
    config_free(cfg);
    struct lease_info li = {0};
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_AUTH);
    assert_non_null(strstr(err.msg, "[ha] etcd_user 'dirconn'"));
    assert_non_null(strstr(err.msg, "[ha] etcd_password_file"));
    assert_non_null(strstr(err.msg, "invalid user ID or password"));
    assert_null(strstr(err.msg, "s3cret"));
    lease_backend_free(&b);
    fake_done(&f);
    unlink(pw);
    fake_free(&f);

    /* a password file that others may read is refused before any request */
    cfg = conf_auth(1, 0644, pw, sizeof(pw));
    assert_int_equal(lease_backend_etcd_new(cfg, &quiet, NULL, "A", 2000, &b, &err),
                     DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "[ha] etcd_password_file"));
    assert_non_null(strstr(err.msg, "0644"));
    assert_null(b.ops);
    config_free(cfg);
    unlink(pw);
}

static void test_nobody_answers(void **state)
{
    (void)state;
    char eps[256];
    int p1 = dead_port(), p2 = dead_port();
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d http://127.0.0.1:%d", p1, p2);
    struct lease_backend b;
    backend(&b, eps);
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_CONNECT);
    char want[64];
    snprintf(want, sizeof(want), "etcd http://127.0.0.1:%d: ", p1);
    assert_non_null(strstr(err.msg, want));
    snprintf(want, sizeof(want), "etcd http://127.0.0.1:%d: ", p2);
    assert_non_null(strstr(err.msg, want));
    lease_backend_free(&b);
}

static void test_renew_reads_one_stream_result(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV(A_B64, "12", "12", "42") "]}", false);
    /* the keepalive stream answers and stays open: renew must not wait for its end */
    fake_step(&f, 200, "{\"result\":{" HDR ",\"ID\":\"42\",\"TTL\":\"30\"}}", true);
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV(A_B64, "12", "12", "42") "]}", false);
    /* a second renewal: the lease is gone (no TTL in the result) */
    fake_step(&f, 200, "{\"result\":{" HDR ",\"ID\":\"42\"}}", true);
    fake_start(&f);
    struct lease_backend b;
    backend(&b, url_of(f.port));
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(b.ops->renew(b.self, 30000, &li, &err), DIRCONN_OK);
    assert_string_equal(li.holder, "A");
    assert_int_equal(li.token, 12);
    assert_int_equal(li.remaining_ms, 30000);
    lease_info_clear(&li);
    assert_int_equal(b.ops->renew(b.self, 30000, &li, &err), DIRCONN_ELEASE);
    assert_non_null(strstr(err.msg, "expired"));
    lease_backend_free(&b);
    fake_done(&f);
    assert_string_equal(f.requests[1], "/v3/lease/keepalive {\"ID\":\"42\"}");
    assert_string_equal(f.requests[3], "/v3/lease/keepalive {\"ID\":\"42\"}");
    fake_free(&f);
}

static void test_acquire_refused_revokes(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 200, "{" HDR ",\"ID\":\"77\",\"TTL\":\"3\"}", false);
    /* compare failed: "succeeded" is omitted (proto3 false); the failure branch's range */
    fake_step(&f, 200,
              "{" HDR ",\"responses\":[{\"response_range\":{" HDR
              ",\"kvs\":[" KV(B_B64, "5", "5", "99") "],\"count\":\"1\"}}]}",
              false);
    fake_step(&f, 200, "{" HDR "}", false); /* revoke */
    fake_start(&f);
    struct lease_backend b;
    backend(&b, url_of(f.port));
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(b.ops->acquire(b.self, NULL, 2500, &li, &err), DIRCONN_ELEASE);
    assert_non_null(strstr(err.msg, "held by B (token 5)"));
    lease_backend_free(&b);
    fake_done(&f);
    assert_string_equal(f.requests[0], "/v3/lease/grant {\"TTL\":\"3\"}"); /* ceil(2.5 s) */
    assert_non_null(strstr(f.requests[1], "\"target\":\"CREATE\""));
    assert_non_null(strstr(f.requests[1], "\"create_revision\":\"0\""));
    assert_non_null(strstr(f.requests[1], "\"lease\":\"77\""));
    assert_string_equal(f.requests[2], "/v3/lease/revoke {\"ID\":\"77\"}");
    fake_free(&f);
}

static void test_state_put_fenced_or_conflict(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    /* 1: the leader key has another create_revision: fenced */
    fake_step(&f, 200,
              "{" HDR ",\"responses\":[{\"response_range\":{\"kvs\":[" KV(
                  A_B64, "20", "20", "1") "]}},{\"response_range\":{}}]}",
              false);
    /* 2: the leader key is ours with token 12, the state moved on: conflict */
    fake_step(
        &f, 200,
        "{" HDR ",\"responses\":[{\"response_range\":{\"kvs\":[" KV(
            A_B64, "12", "12",
            "1") "]}},{\"response_range\":{\"kvs\":[{\"key\":\"" STATE_B64
                 "\",\"create_revision\":\"3\",\"mod_revision\":\"15\",\"value\":\"e30=\"}]}}]}",
        false);
    /* 3: success */
    fake_step(&f, 200, "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}", false);
    fake_start(&f);
    struct lease_backend b;
    backend(&b, url_of(f.port));
    struct dirconn_error err;
    dirconn_error_clear(&err);
    json_t *doc = json_pack("{s:i}", "n", 1);
    assert_int_equal(b.ops->state_put(b.self, doc, "14", 12, &err), DIRCONN_ELEASE);
    assert_non_null(strstr(err.msg, "fenced"));
    assert_int_equal(b.ops->state_put(b.self, doc, "14", 12, &err), DIRCONN_ELEASE_SERVER);
    assert_non_null(strstr(err.msg, "state version is 15, not 14"));
    assert_int_equal(b.ops->state_put(b.self, doc, NULL, 12, &err), DIRCONN_OK);
    assert_int_equal(b.ops->state_put(b.self, doc, "x1", 12, &err), DIRCONN_ELEASE_SERVER);
    assert_int_equal(b.ops->state_put(b.self, doc, NULL, 0, &err), DIRCONN_ELEASE);
    json_decref(doc);
    lease_backend_free(&b);
    fake_done(&f);
    assert_int_equal(f.n_requests, 3);
    assert_non_null(strstr(f.requests[0], "\"mod_revision\":\"14\""));
    assert_non_null(strstr(f.requests[0], "\"create_revision\":\"12\""));
    assert_non_null(strstr(f.requests[0], "\"value\":\"" A_B64 "\""));
    assert_null(strstr(f.requests[2], "\"MOD\"")); /* unconditional: no version compare */
    /* the document goes in as base64 of its compact JSON: {"n":1} */
    assert_non_null(strstr(f.requests[2], "\"value\":\"eyJuIjoxfQ==\""));
    fake_free(&f);
}

static void test_malformed_answers(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV(A_B64, "12x", "12", "1") "]}", false);
    fake_step(&f, 200, "not json", false);
    fake_step(&f, 400, "{\"error\":\"bad\",\"message\":\"etcdserver: bad thing\",\"code\":3}",
              false);
    fake_step(&f, 200, "{" HDR ",\"kvs\":[" KV("QQ", "12", "12", "1") "]}", false);
    fake_start(&f);
    struct lease_backend b;
    backend(&b, url_of(f.port));
    struct lease_info li = {0};
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_SERVER);
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_SERVER);
    assert_non_null(strstr(err.msg, "not JSON"));
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_SERVER);
    assert_non_null(strstr(err.msg, "HTTP 400: etcdserver: bad thing"));
    assert_int_equal(b.ops->observe(b.self, &li, &err), DIRCONN_ELEASE_SERVER);
    lease_info_clear(&li);
    lease_backend_free(&b);
    fake_done(&f);
    fake_free(&f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test(test_observe_free_and_held),
        cmocka_unit_test(test_failover_refused_and_503),
        cmocka_unit_test(test_nobody_answers),
        cmocka_unit_test(test_shared_endpoint),
        cmocka_unit_test(test_auth_token_renewed),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_renew_reads_one_stream_result),
        cmocka_unit_test(test_acquire_refused_revokes),
        cmocka_unit_test(test_state_put_fenced_or_conflict),
        cmocka_unit_test(test_malformed_answers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
