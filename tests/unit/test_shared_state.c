/*
 * Unit tests of the HA shared state document (ha/shared_state.c): the
 * watermarks and the retry list of failed writes, written by one instance's
 * state and read into another's, through an in-memory lease backend that
 * keeps one document with a version (compare-and-swap as the real ones).
 */
#include "ha/shared_state.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The lease server's document. */
struct store {
    json_t *doc; /* NULL = never written ({} as the cloud's initial document) */
    int version;
    int puts;     /* writes applied */
    int attempts; /* writes received, applied or not */
    int failures; /* the next this many writes fail with fail_code (HTTP fail_status) */
    enum dirconn_err fail_code;
    long fail_status;
};

static enum dirconn_err s_state_get(void *self, json_t **doc, char **version,
                                    struct dirconn_error *err)
{
    (void)err;
    struct store *s = self;
    *doc = s->doc != NULL ? json_deep_copy(s->doc) : json_object();
    char v[16];
    snprintf(v, sizeof(v), "%d", s->version);
    *version = strdup(v);
    return DIRCONN_OK;
}

static enum dirconn_err s_state_put(void *self, const json_t *doc, const char *version,
                                    int64_t token, struct dirconn_error *err)
{
    (void)token;
    struct store *s = self;
    s->attempts++;
    if (s->failures > 0) {
        s->failures--;
        dirconn_error_set(err, s->fail_code, "injected failure");
        if (s->fail_status != 0)
            dirconn_error_cause(err, DIRCONN_ORIGIN_HTTP, s->fail_status);
        return s->fail_code;
    }
    if (version == NULL || atoi(version) != s->version)
        return dirconn_error_set(err, DIRCONN_ECLOUD, "version conflict");
    json_decref(s->doc);
    s->doc = json_deep_copy(doc);
    s->version++;
    s->puts++;
    return DIRCONN_OK;
}

static const struct lease_backend_ops store_ops = {
    .name = "store", .state_get = s_state_get, .state_put = s_state_put};

static struct store store;
static struct log_sink quiet;
static char top[64];

static struct lease_backend backend(const char *id)
{
    struct lease_backend b = {&store_ops, &store, (char *)id, false};
    return b;
}

/* The state of instance `name` under the test's directory. */
static struct state *open_state(const char *name)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", top, name);
    struct state *st = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(state_open(dir, &st, &err), DIRCONN_OK);
    return st;
}

static void put_watermark(struct state *st, const char *usn)
{
    struct state_watermark wm = {.partition = "CN=Part,DC=example,DC=net",
                                 .method = "usn",
                                 .value = (unsigned char *)usn,
                                 .len = strlen(usn),
                                 .dc = "ldap://dc1",
                                 .invocation_id = "inv-1",
                                 .scope_hash = "abc"};
    struct dirconn_error err;
    assert_int_equal(state_watermark_put(st, &wm, &err), DIRCONN_OK);
}

/* Instance A's state with one watermark of usn: what an export writes. */
static struct state *exporter(const char *usn)
{
    struct state *a = open_state("a");
    put_watermark(a, usn);
    return a;
}

static int setup(void **state)
{
    (void)state;
    snprintf(top, sizeof(top), "/tmp/dirconn-shared-XXXXXX");
    if (mkdtemp(top) == NULL)
        return -1;
    memset(&store, 0, sizeof(store));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(store.doc);
    store.doc = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

struct seen {
    char ids[8][64];
    char dns[8][128];
    int kinds[8];
    int n;
};

static int collect(void *arg, const char *id, const char *dn, int kind)
{
    struct seen *s = arg;
    if (s->n == 8)
        return 1;
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
    snprintf(s->dns[s->n], sizeof(s->dns[0]), "%s", dn != NULL ? dn : "(null)");
    s->kinds[s->n++] = kind;
    return 0;
}

/* A's retry list goes into the document with the watermark, and B's state takes it. */
static void test_retry_list_round_trip(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct state *a = exporter("4711");
    assert_int_equal(state_retry_put(a, "id-user", "CN=U,DC=example,DC=net", 0, "500", &err),
                     DIRCONN_OK);
    assert_int_equal(state_retry_put(a, "id-group", NULL, 1, "500", &err), DIRCONN_OK);
    assert_int_equal(state_retry_put(a, "id-unknown", NULL, -1, "500", &err), DIRCONN_OK);
    struct lease_backend ba = backend("conn-a");
    assert_int_equal(ha_shared_export(&ba, a, 7, NULL, NULL, &quiet, &err), DIRCONN_OK);
    assert_int_equal(store.puts, 1);

    /* the document */
    json_t *retry = json_object_get(store.doc, "retry");
    assert_true(json_is_array(retry));
    assert_int_equal(json_array_size(retry), 3);
    assert_null(json_object_get(store.doc, "retryOverflow"));
    assert_int_equal(json_array_size(json_object_get(store.doc, "watermarks")), 1);
    json_t *g = json_array_get(retry, 0); /* ordered by externalId */
    assert_string_equal(json_string_value(json_object_get(g, "externalId")), "id-group");
    assert_string_equal(json_string_value(json_object_get(g, "kind")), "group");
    assert_null(json_object_get(g, "dn"));
    json_t *k = json_array_get(retry, 1);
    assert_string_equal(json_string_value(json_object_get(k, "externalId")), "id-unknown");
    assert_null(json_object_get(k, "kind"));
    json_t *u = json_array_get(retry, 2);
    assert_string_equal(json_string_value(json_object_get(u, "kind")), "user");
    assert_string_equal(json_string_value(json_object_get(u, "dn")), "CN=U,DC=example,DC=net");

    /* B, whose own retry list already holds one object, takes the watermark and merges */
    struct state *b = open_state("b");
    put_watermark(b, "12");
    assert_int_equal(state_retry_put(b, "id-own", NULL, 2, "500", &err), DIRCONN_OK);
    struct lease_backend bb = backend("conn-b");
    enum ha_import what = HA_IMPORT_CURRENT;
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_TAKEN);
    assert_int_equal(state_retry_count(b), 4);
    struct seen s = {0};
    assert_int_equal(state_retry_foreach(b, collect, &s, &err), DIRCONN_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.ids[0], "id-group");
    assert_int_equal(s.kinds[0], 1);
    assert_string_equal(s.ids[1], "id-own");
    assert_int_equal(s.kinds[1], 2);
    assert_string_equal(s.ids[2], "id-unknown");
    assert_int_equal(s.kinds[2], -1);
    assert_string_equal(s.ids[3], "id-user");
    assert_int_equal(s.kinds[3], 0);
    assert_string_equal(s.dns[3], "CN=U,DC=example,DC=net");
    struct state_watermark wm = {0};
    bool found = false;
    assert_int_equal(state_watermark_get(b, "CN=Part,DC=example,DC=net", &wm, &found, &err),
                     DIRCONN_OK);
    assert_true(found);
    assert_int_equal(wm.len, 4);
    assert_memory_equal(wm.value, "4711", 4);
    state_watermark_clear(&wm);

    /* B writes the next generation: the merged list goes on; A, behind, takes it back */
    assert_int_equal(state_retry_delete(b, "id-group", &err), DIRCONN_OK);
    assert_int_equal(ha_shared_export(&bb, b, 8, NULL, NULL, &quiet, &err), DIRCONN_OK);
    assert_int_equal(json_array_size(json_object_get(store.doc, "retry")), 3);
    assert_int_equal(ha_shared_import(&ba, a, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_TAKEN);
    assert_int_equal(state_retry_count(a), 4); /* its own id-group stays: read again, harmless */

    /* the instance that wrote the current generation continues with its own list, in full
     * until a full sync completed on the state it imported (ha_shared_full_done) */
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_PENDING);
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_PENDING); /* a full sync that stopped: still pending */
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/b", top);
    struct config cfg_b = {.state_dir = dir};
    assert_int_equal(ha_shared_full_done(&cfg_b, &err), DIRCONN_OK);
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_CURRENT);
    assert_int_equal(ha_shared_full_done(&cfg_b, &err), DIRCONN_OK); /* nothing pending: a no-op */
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_CURRENT);
    assert_int_equal(state_retry_count(b), 3);
    state_close(a);
    state_close(b);
}

/* A document of an older version has no retry list: an empty one. */
static void test_document_without_retry(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    store.doc =
        json_pack("{s:i, s:i, s:s, s:[{s:s, s:s, s:s}]}", "format", 1, "generation", 3, "writer",
                  "old", "watermarks", "partition", "CN=P", "method", "usn", "value", "MTI=");
    assert_non_null(store.doc);
    struct state *b = open_state("b");
    struct lease_backend bb = backend("conn-b");
    enum ha_import what = HA_IMPORT_CURRENT;
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_TAKEN);
    assert_int_equal(state_retry_count(b), 0);

    json_t *empty = json_object();
    size_t merged = 9;
    bool over = true;
    assert_int_equal(ha_shared_retry_decode(empty, b, NULL, &merged, &over, &err), DIRCONN_OK);
    assert_int_equal(merged, 0);
    assert_false(over);
    json_object_set_new(empty, "retry", json_null());
    assert_int_equal(ha_shared_retry_decode(empty, b, NULL, &merged, &over, &err), DIRCONN_OK);
    assert_int_equal(merged, 0);
    json_decref(empty);
    state_close(b);
}

/* Beyond HA_SHARED_RETRY_MAX the list is not written; the reader runs a full sync. */
static void test_retry_list_overflow(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct state *a = exporter("99");
    assert_int_equal(state_begin(a, &err), DIRCONN_OK);
    char id[32];
    for (int i = 0; i < HA_SHARED_RETRY_MAX; i++) {
        snprintf(id, sizeof(id), "id-%05d", i);
        assert_int_equal(state_retry_put(a, id, NULL, 0, "500", &err), DIRCONN_OK);
    }
    assert_int_equal(state_commit(a, &err), DIRCONN_OK);
    struct lease_backend ba = backend("conn-a");

    /* exactly the limit: listed */
    assert_int_equal(ha_shared_export(&ba, a, 7, NULL, NULL, &quiet, &err), DIRCONN_OK);
    assert_int_equal(json_array_size(json_object_get(store.doc, "retry")), HA_SHARED_RETRY_MAX);
    assert_null(json_object_get(store.doc, "retryOverflow"));

    /* one more: the flag instead */
    assert_int_equal(state_retry_put(a, "id-one-more", NULL, 0, "500", &err), DIRCONN_OK);
    assert_int_equal(ha_shared_export(&ba, a, 7, NULL, NULL, &quiet, &err), DIRCONN_OK);
    assert_int_equal(json_array_size(json_object_get(store.doc, "retry")), 0);
    assert_true(json_is_true(json_object_get(store.doc, "retryOverflow")));
    assert_int_equal(json_array_size(json_object_get(store.doc, "watermarks")), 1);

    struct state *b = open_state("b");
    put_watermark(b, "5");
    struct lease_backend bb = backend("conn-b");
    enum ha_import what = HA_IMPORT_CURRENT;
    assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_OK);
    assert_int_equal(what, HA_IMPORT_NONE);
    assert_int_equal(state_retry_count(b), 0);
    struct state_watermark wm = {0};
    bool found = true;
    assert_int_equal(state_watermark_get(b, "CN=Part,DC=example,DC=net", &wm, &found, &err),
                     DIRCONN_OK);
    assert_false(found); /* no watermark: the next sync runs in full */
    state_close(a);
    state_close(b);
}

/* A malformed retry list is refused and changes nothing in the reader's state. */
static void test_retry_list_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"id-1\"",                                  /* the list is not an array */
        "[{\"kind\": \"user\"}]",                    /* no externalId */
        "[{\"externalId\": \"\"}]",                  /* an empty one */
        "[{\"externalId\": \"id-1\", \"kind\": 3}]", /* a kind that is not a name */
        "[{\"externalId\": \"id-1\", \"kind\": \"printer\"}]",
        "[{\"externalId\": \"id-1\"}, {\"externalId\": \"id-2\", \"dn\": 5}]",
    };
    struct state *b = open_state("b");
    put_watermark(b, "5");
    struct lease_backend bb = backend("conn-b");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_decref(store.doc);
        json_error_t jerr;
        json_t *list = json_loads(bad[i], JSON_DECODE_ANY, &jerr);
        assert_non_null(list);
        store.doc = json_pack("{s:i, s:i, s:s, s:[], s:o}", "format", 1, "generation",
                              (int)(10 + i), "writer", "conn-a", "watermarks", "retry", list);
        assert_non_null(store.doc);
        struct dirconn_error err;
        dirconn_error_clear(&err);
        enum ha_import what = HA_IMPORT_CURRENT;
        assert_int_equal(ha_shared_import(&bb, b, &quiet, &what, &err), DIRCONN_ELEASE_SERVER);
        assert_non_null(strstr(err.msg, "retry"));
        assert_int_equal(state_retry_count(b), 0);
        struct state_watermark wm = {0};
        bool found = false;
        assert_int_equal(state_watermark_get(b, "CN=Part,DC=example,DC=net", &wm, &found, &err),
                         DIRCONN_OK);
        assert_true(found); /* rolled back */
        state_watermark_clear(&wm);
    }
    state_close(b);
}

/* A gate open for its first `open` questions, then closed (the lease deadline passed). */
struct gate {
    int open;
    int asked;
};

static bool gate_ask(void *arg)
{
    struct gate *g = arg;
    return g->asked++ < g->open;
}

/* A transient failure of the write is tried again, after the gate, until it is applied. */
static void test_export_retries_transient(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct state *a = exporter("4711");
    struct lease_backend ba = backend("conn-a");
    struct gate g = {.open = 100};
    store.failures = 1; /* no answer (a timeout, a refused connection) */
    store.fail_code = DIRCONN_ECLOUD_CONNECT;
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_OK);
    assert_int_equal(store.attempts, 2);
    assert_int_equal(store.puts, 1);
    assert_int_equal(g.asked, 2);
    store.failures = 2; /* 503 twice: the third and last attempt is applied */
    store.fail_code = DIRCONN_ECLOUD;
    store.fail_status = 503;
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_OK);
    assert_int_equal(store.attempts, 2 + HA_SHARED_PUT_ATTEMPTS);
    assert_int_equal(store.puts, 2);
    store.failures = HA_SHARED_PUT_ATTEMPTS; /* every attempt: the error of the last */
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_ECLOUD);
    assert_int_equal(store.attempts, 2 + 2 * HA_SHARED_PUT_ATTEMPTS);
    assert_int_equal(store.puts, 2);
    assert_non_null(strstr(err.msg, "injected failure"));
    state_close(a);
}

/* An instance whose lease deadline passed while its write was on the way sends it no more. */
static void test_export_not_sent_again_after_the_gate_closed(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct state *a = exporter("4711");
    struct lease_backend ba = backend("conn-a");
    struct gate g = {.open = 1};
    store.failures = 1;
    store.fail_code = DIRCONN_ECLOUD_CONNECT; /* the answer timed out; the cloud may have it */
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_ELEASE);
    assert_int_equal(store.attempts, 1);
    assert_int_equal(store.puts, 0);
    assert_non_null(strstr(err.msg, "nothing written again"));
    /* a closed gate from the start: nothing is sent at all */
    g = (struct gate){.open = 0};
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_ELEASE);
    assert_int_equal(store.attempts, 1);
    /* 501 says the server will not do it: not tried again */
    g = (struct gate){.open = 100};
    store.failures = 1;
    store.fail_code = DIRCONN_ECLOUD;
    store.fail_status = 501;
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_ECLOUD);
    assert_int_equal(store.attempts, 2);
    assert_int_equal(g.asked, 1);
    store.fail_status = 0;
    /* a refusal that is not transient (the cloud fenced it; a version conflict) is final */
    g = (struct gate){.open = 100};
    store.failures = 1;
    store.fail_code = DIRCONN_ELEASE;
    assert_int_equal(ha_shared_export(&ba, a, 7, gate_ask, &g, &quiet, &err), DIRCONN_ELEASE);
    assert_int_equal(store.attempts, 3);
    assert_int_equal(g.asked, 1);
    state_close(a);
}

int main(void)
{
    log_sink_init(&quiet, "test_shared_state", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_list_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_without_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_list_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_list_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_retries_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_not_sent_again_after_the_gate_closed, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    log_sink_close(&quiet);
    return rc;
}
