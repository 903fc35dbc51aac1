/*
 * Unit tests for connector/apply.c: each apply rule against a fake SCIM
 * transport (struct scim_port) that records the requests and answers from a
 * script, over a real plan and state in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/apply.h"
#include "connector/record.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CORE_USER  "urn:ietf:params:scim:schemas:core:2.0:User"
#define CORE_GROUP "urn:ietf:params:scim:schemas:core:2.0:Group"
#define ENT        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/* ---- the fake transport ------------------------------------------------------------ */

/* One scripted answer: the first unused one whose method and path prefix match is given. */
struct answer {
    const char *method;
    const char *path; /* prefix of the request path */
    long status;
    const char *body; /* JSON text or NULL */
    int attempts;     /* 0: 1 */
    bool maybe_applied;
    const char *etag;
    bool used;
};

/* ANSWER(method, path prefix, status, body[, .attempts = n, .maybe_applied = true, .etag = e]) */
#define ANSWER(m, p, s, ...)                                                                       \
    {                                                                                              \
        .method = (m), .path = (p), .status = (s), .body = __VA_ARGS__                             \
    }

struct request {
    char method[8];
    char *path;
    char *body; /* compact JSON with sorted keys, or NULL */
    char *if_match;
    bool create;
    bool status_only; /* submitted with SCIM_SUBMIT_STATUS_ONLY */
};

#define MAX_REQUESTS 512

struct fake {
    struct request req[MAX_REQUESTS];
    int n;
    struct answer *script;
    int next_id;
    /* queued requests not yet answered */
    struct {
        int index;
        scim_done_fn done;
        void *arg;
    } queue[MAX_REQUESTS];
    int head, tail;
    bool lifo;      /* answer the request queued last first (later batches answer first) */
    int max_queued; /* the most requests queued and not yet answered at one time */
    int arrived;    /* answers arrived: given by the next run_until before asking its predicate */
};

static enum dirconn_err fake_submit(void *impl, const char *method, const char *path,
                                    const json_t *body, const char *if_match, unsigned flags,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    (void)err;
    struct fake *f = impl;
    assert_true(f->n < MAX_REQUESTS);
    struct request *r = &f->req[f->n];
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->path = strdup(path);
    r->body = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    r->if_match = if_match != NULL ? strdup(if_match) : NULL;
    r->create = (flags & SCIM_SUBMIT_CREATE) != 0;
    r->status_only = (flags & SCIM_SUBMIT_STATUS_ONLY) != 0;
    f->queue[f->tail].index = f->n;
    f->queue[f->tail].done = done;
    f->queue[f->tail].arg = arg;
    f->tail++;
    f->n++;
    if (f->tail - f->head > f->max_queued)
        f->max_queued = f->tail - f->head;
    return DIRCONN_OK;
}

static struct answer *scripted(struct fake *f, const struct request *r)
{
    for (struct answer *a = f->script; a != NULL && a->method != NULL; a++)
        if (!a->used && strcmp(a->method, r->method) == 0 &&
            strncmp(a->path, r->path, strlen(a->path)) == 0) {
            a->used = true;
            return a;
        }
    return NULL;
}

/*
 * Answer the queued requests, in order (or the last queued first with lifo),
 * until until(arg) is true (asked before each answer: a predicate true at
 * once answers nothing, as when no answer has arrived yet) or none is left.
 */
static enum dirconn_err fake_run_until(void *impl, bool (*until)(void *arg), void *arg,
                                       struct dirconn_error *err)
{
    (void)err;
    struct fake *f = impl;
    while (f->head < f->tail && (until == NULL || f->arrived > 0 || !until(arg))) {
        if (f->arrived > 0)
            f->arrived--;
        int i = f->head++;
        if (f->lifo) {
            /* the last one queued goes first; the rest keep their order */
            int last = f->tail - 1;
            int index = f->queue[last].index;
            scim_done_fn done = f->queue[last].done;
            void *darg = f->queue[last].arg;
            for (int k = last; k > i; k--)
                f->queue[k] = f->queue[k - 1];
            f->queue[i].index = index;
            f->queue[i].done = done;
            f->queue[i].arg = darg;
        }
        const struct request *r = &f->req[f->queue[i].index];
        struct answer *a = scripted(f, r);
        struct scim_response resp;
        memset(&resp, 0, sizeof(resp));
        char id[32];
        json_error_t jerr;
        if (a != NULL) {
            resp.status = a->status;
            resp.body = a->body != NULL ? json_loads(a->body, 0, &jerr) : NULL;
            resp.attempts = a->attempts > 0 ? a->attempts : 1;
            resp.maybe_applied = a->maybe_applied;
            resp.etag = (char *)a->etag;
        } else if (strcmp(r->method, "POST") == 0) {
            snprintf(id, sizeof(id), "new%d", ++f->next_id);
            resp.status = 201;
            resp.body = json_pack("{s:s}", "id", id);
            resp.attempts = 1;
        } else {
            resp.status = strcmp(r->method, "DELETE") == 0 ? 204 : 200;
            resp.body = strcmp(r->method, "GET") == 0
                            ? json_pack("{s:i, s:[]}", "totalResults", 0, "Resources")
                            : NULL;
            resp.attempts = 1;
        }
        resp.code = resp.status >= 200 && resp.status < 300 ? DIRCONN_OK
                    : resp.status == 0                      ? DIRCONN_ECLOUD_CONNECT
                                                            : DIRCONN_ECLOUD;
        if (resp.code != DIRCONN_OK)
            snprintf(resp.error, sizeof(resp.error), "%s %s: HTTP %ld", r->method, r->path,
                     resp.status);
        /* docs/cloud-api.md "HA mode": what scim.c makes of a 409 with Dirconn-HA-Mode */
        const char *mode_detail = json_string_value(json_object_get(resp.body, "haModeMismatch"));
        if (resp.status == 409 && mode_detail != NULL) {
            resp.code = DIRCONN_EHAMODE;
            resp.detail = (char *)mode_detail;
        }
        f->queue[i].done(f->queue[i].arg, &resp);
        json_decref(resp.body);
    }
    return DIRCONN_OK;
}

static enum dirconn_err fake_run(void *impl, struct dirconn_error *err)
{
    return fake_run_until(impl, NULL, NULL, err);
}

static const struct scim_port_ops fake_ops = {fake_submit, fake_run, fake_run_until};

static void fake_clear(struct fake *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->req[i].path);
        free(f->req[i].body);
        free(f->req[i].if_match);
    }
    memset(f, 0, sizeof(*f));
}

/* The number of requests with this method whose path starts with prefix. */
static int count(const struct fake *f, const char *method, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < f->n; i++)
        n += strcmp(f->req[i].method, method) == 0 &&
             strncmp(f->req[i].path, prefix, strlen(prefix)) == 0;
    return n;
}

static json_t *body_of(const struct request *r)
{
    json_error_t jerr;
    json_t *j = r->body != NULL ? json_loads(r->body, 0, &jerr) : NULL;
    assert_non_null(j);
    return j;
}

/* ---- the state, the plan and the run ------------------------------------------------ */

static char dir[64];
static struct state *st;
static struct fake fake;

struct seen {
    long failures;
    char last_failure[512];
    bool lease_lost;
    enum dirconn_err lease_code;
    char lease_msg[512];
};
static struct seen seen;
/* apply_params.window and batch_objects of the next start() (0: apply's defaults) */
static int start_window, start_batch;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dirconn-apply-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    memset(&seen, 0, sizeof(seen));
    start_window = start_batch = 0;
    return state_open(dir, &st, NULL) == DIRCONN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fake_clear(&fake);
    state_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void on_failed(void *arg, const struct apply_failure *f)
{
    struct seen *s = arg;
    s->failures++;
    snprintf(s->last_failure, sizeof(s->last_failure), "%s %s", f->external_id, f->reason);
}

static void on_lease_lost(void *arg, enum dirconn_err code, const char *msg)
{
    struct seen *s = arg;
    s->lease_lost = true;
    s->lease_code = code;
    snprintf(s->lease_msg, sizeof(s->lease_msg), "%s", msg);
}

/* The leaves the tests' mappings produce (record.h). */
static const struct record_path user_paths[] = {{"externalId", NULL, NULL},
                                                {"userName", NULL, NULL},
                                                {"displayName", NULL, NULL},
                                                {"title", NULL, NULL},
                                                {ENT ":manager", NULL, "value"}};
static const struct record_path group_paths[] = {{"externalId", NULL, NULL},
                                                 {"displayName", NULL, NULL}};

static struct cloud_caps default_caps(void)
{
    return (struct cloud_caps){
        .patch = true, .filter = true, .page = 100, .max_payload = 1048576, .patch_max_ops = 100};
}

static struct apply *start(struct plan *p, struct answer *script, const struct cloud_caps *caps,
                           bool cascades, struct scim_port *port)
{
    fake.script = script;
    *port = (struct scim_port){&fake_ops, &fake};
    struct apply_params ap = {
        .port = port,
        .st = st,
        .plan = p,
        .caps = *caps,
        .delete_cascades = cascades,
        .hooks = {.lease_lost = on_lease_lost, .failed = on_failed, .arg = &seen},
        .window = start_window,
        .batch_objects = start_batch,
    };
    ap.scope[OBJECT_USER] = (struct record_scope){user_paths, 5};
    ap.scope[OBJECT_GROUP] = (struct record_scope){group_paths, 2};
    struct apply *a = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(apply_new(&ap, &a, &err), DIRCONN_OK);
    return a;
}

static json_t *user(const char *name, const char *title)
{
    json_t *u =
        json_pack("{s:[s], s:s, s:s}", "schemas", CORE_USER, "userName", name, "displayName", name);
    if (title != NULL)
        json_object_set_new(u, "title", json_string(title));
    return u;
}

static json_t *group(const char *name)
{
    return json_pack("{s:[s], s:s}", "schemas", CORE_GROUP, "displayName", name);
}

/* Record an object as acknowledged: record is the canonical text of rec (taken), or NULL. */
static void put_state(const char *ext, int kind, const char *dn, const char *cloud_id, json_t *rec)
{
    char *text = rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char hash[65];
    if (text != NULL)
        record_hash(text, hash);
    struct state_object o = {.external_id = (char *)ext,
                             .kind = kind,
                             .dn = (char *)dn,
                             .cloud_id = (char *)cloud_id,
                             .name = (char *)ext,
                             .hash = text != NULL ? hash : NULL,
                             .record = text};
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    free(text);
    json_decref(rec);
}

static struct state_object get_state(const char *ext, bool *found)
{
    struct state_object o = {0};
    assert_int_equal(state_object_get(st, ext, &o, found, NULL), DIRCONN_OK);
    return o;
}

static void add_dir(struct plan *p, int kind, const char *ext, const char *dn, const char *name,
                    json_t *rec, const char *manager_dn, char **members, size_t n_members)
{
    assert_int_equal(plan_add_dir(p, (enum object_kind)kind, ext, dn, name, rec, manager_dn,
                                  members, n_members, NULL, NULL),
                     DIRCONN_OK);
    json_decref(rec);
}

/* ---- creations ------------------------------------------------------------------- */

/* One new user U1 in the plan. */
static struct plan *plan_one_add(void)
{
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    add_dir(p, OBJECT_USER, "U1", "CN=U1,DC=x", "u1@x", user("u1@x", "T"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], 1);
    return p;
}

/* 409 to a POST that was sent again: the first attempt created it. Look it up, never POST again. */
static void conflict_after_retry_adopts(void **state)
{
    (void)state;
    struct plan *p = plan_one_add();
    struct answer script[] = {ANSWER("POST", "/Users", 409,
                                     "{\"status\":\"409\",\"scimType\":\"uniqueness\"}",
                                     .attempts = 2),
                              ANSWER("GET", "/Users?filter=", 200,
                                     "{\"totalResults\":1,\"Resources\":[{\"id\":\"found1\"}]}"),
                              {0}};
    struct scim_port port;
    struct apply *a = start(p, script, &(struct cloud_caps){0}, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 2);
    assert_string_equal(fake.req[0].method, "POST");
    assert_true(fake.req[0].create);
    assert_string_equal(fake.req[1].method, "GET");
    assert_non_null(strstr(fake.req[1].path, "externalId%20eq%20%22U1%22"));
    assert_int_equal(count(&fake, "POST", "/Users"), 1);
    bool found = false;
    struct state_object o = get_state("U1", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "found1");
    assert_null(o.record); /* recorded without its record: the next sync brings it up to date */
    state_object_clear(&o);
    assert_int_equal(apply_counts(a)->added, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

/* An answer lost after sending (maybe applied), and the object is there: adopted, no second POST.
 */
static void maybe_applied_found_is_not_resent(void **state)
{
    (void)state;
    struct plan *p = plan_one_add();
    struct answer script[] = {ANSWER("POST", "/Users", 502, NULL, .maybe_applied = true),
                              ANSWER("GET", "/Users?filter=", 200,
                                     "{\"totalResults\":1,\"Resources\":[{\"id\":\"there\"}]}"),
                              {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 2);
    assert_int_equal(count(&fake, "POST", "/Users"), 1);
    assert_int_equal(count(&fake, "GET", "/Users?filter="), 1);
    bool found = false;
    struct state_object o = get_state("U1", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "there");
    state_object_clear(&o);
    assert_int_equal(apply_counts(a)->added, 1);
    apply_free(a);
    plan_free(p);
}

/* The same, and the object is not there: the lookup comes first, then the one POST again. */
static void maybe_applied_absent_is_created_after_lookup(void **state)
{
    (void)state;
    struct plan *p = plan_one_add();
    struct answer script[] = {ANSWER("POST", "/Users", 0, NULL, .maybe_applied = true),
                              ANSWER("POST", "/Users", 201, "{\"id\":\"second\"}"),
                              {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    assert_string_equal(fake.req[0].method, "POST");
    assert_string_equal(fake.req[1].method, "GET"); /* looked up before creating it again */
    assert_non_null(strstr(fake.req[1].path, "filter=externalId"));
    assert_string_equal(fake.req[2].method, "POST");
    assert_true(fake.req[2].create);
    assert_string_equal(fake.req[0].body, fake.req[2].body); /* the same object */
    bool found = false;
    struct state_object o = get_state("U1", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "second");
    assert_non_null(o.record);
    state_object_clear(&o);
    assert_int_equal(apply_counts(a)->added, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

/* Adopted after a lost answer, without a manager or members: the follow-up pass of the same run
 * brings it up to date and records it, so that the next sync has nothing to do. */
static void adopted_is_recorded_by_the_follow_up(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    add_dir(p, OBJECT_GROUP, "G1", "CN=G1,DC=x", "Empty", group("Empty"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    struct answer script[] = {ANSWER("POST", "/Groups", 500, NULL, .maybe_applied = true),
                              ANSWER("GET", "/Groups?filter=", 200,
                                     "{\"totalResults\":1,\"Resources\":[{\"id\":\"g1\"}]}"),
                              ANSWER("PATCH", "/Groups/g1", 200, "{\"id\":\"g1\"}"),
                              {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
    bool found = false;
    struct state_object o = get_state("G1", &found);
    assert_true(found);
    assert_null(o.record); /* not yet: the answer was lost */
    state_object_clear(&o);
    assert_int_equal(apply_pending(a, &err), DIRCONN_OK);
    assert_int_equal(count(&fake, "POST", "/Groups"), 1);
    assert_int_equal(count(&fake, "PATCH", "/Groups/g1"), 1);
    o = get_state("G1", &found);
    assert_true(found);
    assert_non_null(o.record);
    state_object_clear(&o);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

/* ---- request sizes -------------------------------------------------------------- */

#define N_MEMBERS 150
#define N_MANY    900

/* Users M000..M<n-1> acknowledged, in the directory and in the cloud with long cloud ids. */
static void many_users(struct plan *p, char **dns, int n)
{
    for (int i = 0; i < n; i++) {
        char ext[16], dn[32], id[48], name[32];
        snprintf(ext, sizeof(ext), "M%03d", i);
        snprintf(dn, sizeof(dn), "CN=M%03d,DC=x", i);
        snprintf(id, sizeof(id), "0000000-0000-0000-0000-00000000%04d", i);
        snprintf(name, sizeof(name), "m%03d@x", i);
        put_state(ext, OBJECT_USER, dn, id, user(name, NULL));
        assert_int_equal(plan_add_cloud(p, OBJECT_USER, id, name, ext, false, NULL, NULL),
                         DIRCONN_OK);
        add_dir(p, OBJECT_USER, ext, dn, name, user(name, NULL), NULL, NULL, 0);
        dns[i] = strdup(dn);
    }
}

/*
 * A group with 150 members under max_payload 2048: the POST carries the
 * members that fit, PATCH "add" requests no bigger than the limit carry the
 * rest; every member is sent exactly once. Removing ten members goes in
 * requests of at most patch_max_ops operations.
 */
static void payload_limit_chunks_members(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    char *dns[N_MEMBERS];
    many_users(p, dns, N_MEMBERS);
    add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", group("G"), NULL, dns, N_MEMBERS);
    /* G2 listed M000..M009 when it was last written and lists none now */
    json_t *g2 = group("G2");
    json_t *was = json_array();
    for (int i = 0; i < 10; i++)
        json_array_append_new(was, json_sprintf("M%03d", i));
    json_object_set_new(g2, PLAN_KEY_MEMBERS, was);
    put_state("G2", OBJECT_GROUP, "CN=G2,DC=x", "cG2", g2);
    assert_int_equal(plan_add_cloud(p, OBJECT_GROUP, "cG2", "G2", "G2", false, NULL, NULL),
                     DIRCONN_OK);
    add_dir(p, OBJECT_GROUP, "G2", "CN=G2,DC=x", "G2", group("G2"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], 1);

    struct cloud_caps caps = default_caps();
    caps.max_payload = 2048;
    caps.patch_max_ops = 4;
    struct answer script[] = {ANSWER("POST", "/Groups", 201, "{\"id\":\"cG\"}"), {0}};
    struct scim_port port;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
    assert_int_equal(count(&fake, "POST", "/Groups"), 1);
    int patches = count(&fake, "PATCH", "/Groups/cG");
    assert_true(patches >= 2); /* 150 values do not fit one request of 2048 bytes */
    json_t *all = json_array();
    for (int i = 0; i < fake.n; i++) {
        const struct request *r = &fake.req[i];
        assert_true(strlen(r->body) <= 2048);
        json_t *b = body_of(r);
        json_t *vals = NULL;
        if (strcmp(r->method, "POST") == 0) {
            vals = json_object_get(b, "members");
            assert_true(json_array_size(vals) > 0);
            assert_false(r->status_only); /* its answer gives the new group's id */
        } else {
            assert_string_equal(r->path, "/Groups/cG");
            /* the answer to a member PATCH is the whole group: only its status is read */
            assert_true(r->status_only);
            json_t *ops = json_object_get(b, "Operations");
            assert_true(json_array_size(ops) >= 1 && json_array_size(ops) <= 4);
            json_t *op = json_array_get(ops, 0);
            assert_string_equal(json_string_value(json_object_get(op, "op")), "add");
            assert_string_equal(json_string_value(json_object_get(op, "path")), "members");
            vals = json_object_get(op, "value");
        }
        size_t k;
        json_t *v;
        json_array_foreach(vals, k, v) json_array_append(all, json_object_get(v, "value"));
        json_decref(b);
    }
    assert_int_equal(json_array_size(all), N_MEMBERS);
    for (size_t i = 0; i < json_array_size(all); i++)
        for (size_t j = i + 1; j < json_array_size(all); j++)
            assert_false(json_equal(json_array_get(all, i), json_array_get(all, j)));
    json_decref(all);
    bool found = false;
    struct state_object o = get_state("G", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "cG");
    assert_non_null(o.record);
    state_object_clear(&o);

    /* Ten removals, four operations per request at most. */
    fake_clear(&fake);
    fake.script = script;
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_GROUP, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 0); /* nothing but members changed */
    assert_int_equal(apply_members(a, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    size_t removed = 0;
    for (int i = 0; i < fake.n; i++) {
        assert_string_equal(fake.req[i].method, "PATCH");
        assert_string_equal(fake.req[i].path, "/Groups/cG2");
        assert_true(fake.req[i].status_only);
        json_t *b = body_of(&fake.req[i]);
        json_t *ops = json_object_get(b, "Operations");
        assert_true(json_array_size(ops) <= 4);
        size_t k;
        json_t *op;
        json_array_foreach(ops, k, op)
        {
            assert_string_equal(json_string_value(json_object_get(op, "op")), "remove");
            assert_non_null(strstr(json_string_value(json_object_get(op, "path")),
                                   "members[value eq \"0000000-"));
            removed++;
        }
        json_decref(b);
    }
    assert_int_equal(removed, 10);
    assert_int_equal(apply_counts(a)->failed, 0);
    for (int i = 0; i < N_MEMBERS; i++)
        free(dns[i]);
    apply_free(a);
    plan_free(p);
}

/* A plan that adds group G listing users M000..M<n-1> (many_users; their DNs in dns). */
static struct plan *plan_group_of(char **dns, int n)
{
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    many_users(p, dns, n);
    add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", group("G"), NULL, dns, n);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    return p;
}

/* G was added without a failure and is recorded under cloud id cG; then all is freed. */
static void group_added_then_free(struct apply *a, struct plan *p, char **dns, int n)
{
    assert_int_equal(apply_counts(a)->failed, 0);
    bool found = false;
    struct state_object o = get_state("G", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "cG");
    assert_non_null(o.record);
    state_object_clear(&o);
    for (int i = 0; i < n; i++)
        free(dns[i]);
    apply_free(a);
    plan_free(p);
}

/* The provider's answer to a body over its limit (RFC 7644 3.12 error). */
#define TOO_LARGE                                                                                  \
    "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:Error\"],"                              \
    "\"status\":\"413\",\"detail\":\"request body too large\"}"

/*
 * The requests from the first'th on (a group's POST and its member PATCHes),
 * but the skip'th (one refused, or -1), are each at most limit bytes and
 * carry n member values, each once.
 */
static void assert_members_sent_once(const struct fake *f, int first, size_t limit, int n, int skip)
{
    json_t *all = json_array();
    for (int i = first; i < f->n; i++) {
        if (i == skip)
            continue;
        const struct request *r = &f->req[i];
        assert_true(strlen(r->body) <= limit);
        json_t *b = body_of(r);
        json_t *vals =
            strcmp(r->method, "POST") == 0
                ? json_object_get(b, "members")
                : json_object_get(json_array_get(json_object_get(b, "Operations"), 0), "value");
        size_t k;
        json_t *v;
        json_array_foreach(vals, k, v) json_array_append(all, json_object_get(v, "value"));
        json_decref(b);
    }
    assert_int_equal(json_array_size(all), n);
    for (size_t i = 0; i < json_array_size(all); i++)
        for (size_t j = i + 1; j < json_array_size(all); j++)
            assert_false(json_equal(json_array_get(all, i), json_array_get(all, j)));
    json_decref(all);
}

/*
 * A group of 900 members under max_payload 2048: the members that do not
 * fit its POST take more than 16 PATCHes, and at most 16 of them wait for
 * their answers at once (their bodies are held until sent). Every member is
 * still sent once, and the group is recorded with its record.
 */
static void member_patches_wait_in_bounds(void **state)
{
    (void)state;
    char *dns[N_MANY];
    struct plan *p = plan_group_of(dns, N_MANY);

    struct cloud_caps caps = default_caps();
    caps.max_payload = 2048;
    struct answer script[] = {ANSWER("POST", "/Groups", 201, "{\"id\":\"cG\"}"), {0}};
    struct scim_port port;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
    assert_int_equal(count(&fake, "POST", "/Groups"), 1);
    assert_true(count(&fake, "PATCH", "/Groups/cG") > 16);
    assert_true(fake.max_queued <= 16);
    assert_members_sent_once(&fake, 0, 2048, N_MANY, -1);
    group_added_then_free(a, p, dns, N_MANY);
}

/*
 * The provider refuses a group's POST as too large (413) though it is under
 * max_payload (RFC 7644 declares no limit for a single request): the POST is
 * sent again with at most half the bytes, the other members follow by PATCH
 * under the same limit, every member once, and the group is not a failure.
 * lost: the first POST's answer was lost; the group is looked up, not found,
 * and its creation sent again is the one refused (the group had gone in a
 * /Bulk request, under a larger limit).
 */
static void group_sent_again_smaller(bool lost)
{
    char *dns[N_MEMBERS];
    struct plan *p = plan_group_of(dns, N_MEMBERS);
    struct cloud_caps caps = default_caps();
    struct answer script[] = {ANSWER("POST", "/Groups", 0, NULL, .maybe_applied = true),
                              ANSWER("POST", "/Groups", 413, TOO_LARGE),
                              ANSWER("POST", "/Groups", 201, "{\"id\":\"cG\"}"),
                              {0}};
    struct scim_port port;
    struct apply *a = start(p, lost ? script : script + 1, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
    int refused_at = lost ? 2 : 0;
    assert_int_equal(count(&fake, "POST", "/Groups"), lost ? 3 : 2);
    if (lost)
        assert_string_equal(fake.req[1].method, "GET"); /* looked up before creating it again */
    assert_string_equal(fake.req[refused_at].method, "POST");
    size_t refused = strlen(fake.req[refused_at].body);
    assert_string_equal(fake.req[refused_at + 1].method, "POST");
    assert_true(strlen(fake.req[refused_at + 1].body) <= refused / 2);
    assert_true(count(&fake, "PATCH", "/Groups/cG") >= 1);
    assert_members_sent_once(&fake, refused_at + 1, refused / 2, N_MEMBERS, -1);
    group_added_then_free(a, p, dns, N_MEMBERS);
}

static void too_large_post_is_sent_again_smaller(void **state)
{
    (void)state;
    group_sent_again_smaller(false);
}

static void lost_then_too_large_is_sent_again_smaller(void **state)
{
    (void)state;
    group_sent_again_smaller(true);
}

/* ---- deletions ------------------------------------------------------------------ */

/*
 * D is deleted; group G lists D and user R has D as manager. Unless the
 * provider cascades, D is first removed from G (PATCH remove of
 * members[value eq "cD"]) and from R's manager, then deleted; only the
 * deletion counts (the threshold counts deletions only).
 */
static struct plan *plan_delete_with_referrers(void)
{
    json_t *g = group("G");
    json_object_set_new(g, PLAN_KEY_MEMBERS, json_pack("[s, s]", "D", "X"));
    json_t *r = user("r@x", NULL);
    json_object_set_new(r, PLAN_KEY_MANAGER, json_string("D"));
    put_state("D", OBJECT_USER, "CN=D,DC=x", "cD", user("d@x", NULL));
    put_state("X", OBJECT_USER, "CN=X,DC=x", "cX", user("x@x", NULL));
    put_state("G", OBJECT_GROUP, "CN=G,DC=x", "cG", g);
    put_state("R", OBJECT_USER, "CN=R,DC=x", "cR", r);
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_set_partial(p);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cD", "d@x", "D", false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_gone(p, "D", NULL), DIRCONN_OK);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    const struct plan_summary *s = plan_get_summary(p);
    assert_int_equal(s->deletes, 1);
    assert_int_equal(s->count[PLAN_UPDATE], 0);
    return p;
}

static void delete_unlinks_referrers_first(void **state)
{
    (void)state;
    struct plan *p = plan_delete_with_referrers();
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, NULL, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_DELETE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    assert_string_equal(fake.req[2].method, "DELETE");
    assert_string_equal(fake.req[2].path, "/Users/cD");
    bool group_done = false, manager_done = false;
    for (int i = 0; i < 2; i++) {
        const struct request *r = &fake.req[i];
        assert_string_equal(r->method, "PATCH");
        json_t *b = body_of(r);
        json_t *ops = json_object_get(b, "Operations");
        assert_int_equal(json_array_size(ops), 1);
        json_t *op = json_array_get(ops, 0);
        assert_string_equal(json_string_value(json_object_get(op, "op")), "remove");
        const char *path = json_string_value(json_object_get(op, "path"));
        if (strcmp(r->path, "/Groups/cG") == 0) {
            assert_string_equal(path, "members[value eq \"cD\"]");
            group_done = true;
        } else {
            assert_string_equal(r->path, "/Users/cR");
            assert_string_equal(path, ENT ":manager");
            manager_done = true;
        }
        json_decref(b);
    }
    assert_true(group_done && manager_done);
    const struct apply_counts *n = apply_counts(a);
    assert_int_equal(n->deleted, 1);
    assert_int_equal(n->updated, 0);
    assert_int_equal(n->failed, 0);
    /* The state forgets D, and the records that referred to it forget it too. */
    bool found = true;
    struct state_object o = get_state("D", &found);
    assert_false(found);
    o = get_state("G", &found);
    assert_true(found);
    assert_null(strstr(o.record, "\"D\""));
    assert_non_null(strstr(o.record, "\"X\""));
    state_object_clear(&o);
    o = get_state("R", &found);
    assert_true(found);
    assert_null(strstr(o.record, PLAN_KEY_MANAGER));
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/* A provider that cascades ([cloud] delete_cascades): the DELETE alone. */
static void delete_cascades_sends_delete_only(void **state)
{
    (void)state;
    struct plan *p = plan_delete_with_referrers();
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, NULL, &caps, true, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_DELETE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 1);
    assert_string_equal(fake.req[0].method, "DELETE");
    assert_string_equal(fake.req[0].path, "/Users/cD");
    assert_int_equal(apply_counts(a)->deleted, 1);
    apply_free(a);
    plan_free(p);
}

/* ---- updates -------------------------------------------------------------------- */

/* U was last written with title A and has title B now. */
static struct plan *plan_title_change(void)
{
    put_state("U", OBJECT_USER, "CN=U,DC=x", "cU", user("u@x", "A"));
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cU", "u@x", "U", false, "W/\"1\"", NULL),
                     DIRCONN_OK);
    add_dir(p, OBJECT_USER, "U", "CN=U,DC=x", "u@x", user("u@x", "B"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_UPDATE], 1);
    return p;
}

/* Asserts that r is a PATCH of /Users/cU setting the title to B and nothing else. */
static void assert_title_patch(const struct request *r)
{
    assert_string_equal(r->method, "PATCH");
    assert_string_equal(r->path, "/Users/cU");
    json_t *b = body_of(r);
    json_t *ops = json_object_get(b, "Operations");
    assert_int_equal(json_array_size(ops), 1);
    json_t *op = json_array_get(ops, 0);
    assert_string_equal(json_string_value(json_object_get(op, "op")), "replace");
    assert_string_equal(json_string_value(json_object_get(op, "path")), "title");
    assert_string_equal(json_string_value(json_object_get(op, "value")), "B");
    json_decref(b);
}

static void title_change_is_one_operation(void **state)
{
    (void)state;
    struct plan *p = plan_title_change();
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, NULL, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 1);
    assert_title_patch(&fake.req[0]);
    assert_null(fake.req[0].if_match); /* the provider has no ETags */
    assert_int_equal(apply_counts(a)->updated, 1);
    bool found = false;
    struct state_object o = get_state("U", &found);
    assert_non_null(strstr(o.record, "\"title\":\"B\""));
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/* G listed U1 and U2 and lists U2 and U3: one remove and one add of members values, nothing else.
 */
static void membership_change_is_add_and_remove(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    const char *ids[] = {"U1", "U2", "U3"};
    for (int i = 0; i < 3; i++) {
        char dn[32], name[16], cid[8];
        snprintf(dn, sizeof(dn), "CN=%s,DC=x", ids[i]);
        snprintf(name, sizeof(name), "%s@x", ids[i]);
        snprintf(cid, sizeof(cid), "c%d", i + 1);
        put_state(ids[i], OBJECT_USER, dn, cid, user(name, NULL));
        assert_int_equal(plan_add_cloud(p, OBJECT_USER, cid, name, ids[i], false, NULL, NULL),
                         DIRCONN_OK);
        add_dir(p, OBJECT_USER, ids[i], dn, name, user(name, NULL), NULL, NULL, 0);
    }
    json_t *g = group("G");
    json_object_set_new(g, PLAN_KEY_MEMBERS, json_pack("[s, s]", "U1", "U2"));
    put_state("G", OBJECT_GROUP, "CN=G,DC=x", "cG", g);
    assert_int_equal(plan_add_cloud(p, OBJECT_GROUP, "cG", "G", "G", false, NULL, NULL),
                     DIRCONN_OK);
    char *members[] = {"CN=U2,DC=x", "CN=U3,DC=x"};
    add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", group("G"), NULL, members, 2);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_UPDATE], 1);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 3);

    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, NULL, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_GROUP, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 0); /* the group's own attributes did not change */
    assert_int_equal(apply_members(a, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 2);
    int adds = 0, removes = 0;
    for (int i = 0; i < fake.n; i++) {
        assert_string_equal(fake.req[i].method, "PATCH");
        assert_string_equal(fake.req[i].path, "/Groups/cG");
        json_t *b = body_of(&fake.req[i]);
        json_t *ops = json_object_get(b, "Operations");
        assert_int_equal(json_array_size(ops), 1);
        json_t *op = json_array_get(ops, 0);
        const char *kind = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        if (strcmp(kind, "remove") == 0) {
            assert_string_equal(path, "members[value eq \"c1\"]");
            removes++;
        } else {
            assert_string_equal(kind, "add");
            assert_string_equal(path, "members");
            json_t *v = json_object_get(op, "value");
            assert_int_equal(json_array_size(v), 1);
            assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "value")),
                                "c3");
            adds++;
        }
        json_decref(b);
    }
    assert_int_equal(adds, 1);
    assert_int_equal(removes, 1);
    assert_int_equal(apply_counts(a)->updated, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

/* ---- 412 Precondition Failed ---------------------------------------------------- */

static struct cloud_caps etag_caps(void)
{
    struct cloud_caps caps = default_caps();
    caps.etag = true;
    return caps;
}

/* 412 to the PATCH sent with If-Match: read the resource again, the same PATCH once more. */
static void stale_patch_is_read_again_and_retried(void **state)
{
    (void)state;
    struct plan *p = plan_title_change();
    struct answer script[] = {ANSWER("PATCH", "/Users/cU", 412, NULL),
                              ANSWER("GET", "/Users/cU", 200,
                                     "{\"id\":\"cU\",\"userName\":\"u@x\",\"title\":\"X\",\"meta\":"
                                     "{\"version\":\"W/\\\"2\\\"\"}}"),
                              ANSWER("PATCH", "/Users/cU", 200, NULL),
                              {0}};
    struct scim_port port;
    struct cloud_caps caps = etag_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    assert_title_patch(&fake.req[0]);
    assert_string_equal(fake.req[0].if_match, "W/\"1\""); /* the version of the inventory */
    assert_string_equal(fake.req[1].method, "GET");
    assert_string_equal(fake.req[1].path, "/Users/cU");
    assert_title_patch(&fake.req[2]);
    assert_string_equal(fake.req[2].if_match, "W/\"2\""); /* the version read again */
    assert_string_equal(fake.req[0].body, fake.req[2].body);
    assert_int_equal(apply_counts(a)->updated, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    bool found = false;
    struct state_object o = get_state("U", &found);
    assert_non_null(strstr(o.record, "\"title\":\"B\""));
    assert_null(o.version); /* the PATCH went over a copy changed in the cloud: no version */
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/* The state's version of U (state.h), as the last sync recorded it. */
static void set_version(const char *ext, const char *version)
{
    bool found = false;
    struct state_object o = get_state(ext, &found);
    assert_true(found);
    free(o.version);
    o.version = version != NULL ? strdup(version) : NULL;
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    state_object_clear(&o);
}

/*
 * The version a write's answer gives is recorded when the written copy holds the record:
 * a creation (meta.version of the body), a PATCH with If-Match of the version the state
 * held (the ETag header of a bodiless answer); not a PATCH over a copy whose version is
 * not the one the state held (edited in the cloud since: it may hold other values).
 */
static void versions_recorded_from_answers(void **state)
{
    (void)state;
    struct cloud_caps caps = etag_caps();
    struct dirconn_error err = {0};
    struct scim_port port;
    bool found = false;

    struct plan *p = plan_one_add();
    struct answer add[] = {
        ANSWER("POST", "/Users", 201, "{\"id\":\"n1\",\"meta\":{\"version\":\"W/\\\"1\\\"\"}}"),
        {0}};
    struct apply *a = start(p, add, &caps, false, &port);
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
    struct state_object o = get_state("U1", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "n1");
    assert_string_equal(o.version, "W/\"1\"");
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
    fake_clear(&fake);

    for (int edited = 0; edited < 2; edited++) {
        p = plan_title_change(); /* the inventory has U at W/"1" */
        set_version("U", edited ? "W/\"0\"" : "W/\"1\"");
        struct answer patch[] = {ANSWER("PATCH", "/Users/cU", 200, NULL, .etag = "W/\"2\""), {0}};
        a = start(p, patch, &caps, false, &port);
        assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
        assert_int_equal(fake.n, 1);
        assert_string_equal(fake.req[0].if_match, "W/\"1\"");
        o = get_state("U", &found);
        assert_non_null(strstr(o.record, "\"title\":\"B\""));
        if (edited)
            assert_null(o.version);
        else
            assert_string_equal(o.version, "W/\"2\"");
        state_object_clear(&o);
        apply_free(a);
        plan_free(p);
        fake_clear(&fake);
    }
}

/*
 * With versions (etag.supported), the members a group's POST could not carry
 * go as a chain: one PATCH at a time, each with If-Match of the version the
 * answer before it gave (the first: the creation's), and the last answer's
 * version is recorded, so the next no-change sync need not read the group.
 * stale: the second PATCH gets 412 (the group was edited in the cloud
 * meanwhile); that PATCH goes again and the rest follow without If-Match,
 * every member is still added once, and the group is recorded without a
 * version (the next sync compares it with a fresh read).
 */
static void rest_chain_records_the_last_version(void **state)
{
    (void)state;
    for (int stale = 0; stale < 2; stale++) {
        char *dns[N_MEMBERS];
        struct plan *p = plan_group_of(dns, N_MEMBERS);
        struct cloud_caps caps = etag_caps();
        caps.max_payload = 2048;
        static const char *const etags[] = {"W/\"2\"", "W/\"3\"", "W/\"4\"", "W/\"5\"",
                                            "W/\"6\"", "W/\"7\"", "W/\"8\"", "W/\"9\""};
        struct answer script[10] = {ANSWER(
            "POST", "/Groups", 201, "{\"id\":\"cG\",\"meta\":{\"version\":\"W/\\\"1\\\"\"}}")};
        for (int k = 0; k < 8; k++)
            script[1 + k] =
                (struct answer)ANSWER("PATCH", "/Groups/cG", 200, NULL, .etag = etags[k]);
        if (stale) {
            script[2].status = 412;
            script[2].etag = NULL;
        }
        struct scim_port port;
        struct apply *a = start(p, script, &caps, false, &port);
        struct dirconn_error err = {0};
        assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
        assert_int_equal(apply_counts(a)->failed, 0);
        int patches = count(&fake, "PATCH", "/Groups/cG");
        assert_true(patches >= 3 && patches <= 8);
        assert_int_equal(fake.max_queued, 1); /* one at a time */
        for (int i = 0; i < fake.n; i++) {
            const struct request *r = &fake.req[i];
            if (i == 1)
                assert_string_equal(r->if_match, "W/\"1\"");
            else if (i == 2)
                assert_string_equal(r->if_match, "W/\"2\"");
            else if (i > 2 && !stale)
                assert_string_equal(r->if_match, etags[i - 2]);
            else if (i > 2)
                assert_null(r->if_match);
            if (stale && i == 3)
                assert_string_equal(r->body, fake.req[2].body); /* the refused one again */
        }
        assert_members_sent_once(&fake, 0, 2048, N_MEMBERS, stale ? 2 : -1);
        bool found = false;
        struct state_object o = get_state("G", &found);
        assert_true(found);
        if (stale)
            assert_null(o.version);
        else
            assert_string_equal(o.version, etags[patches - 1]);
        state_object_clear(&o);
        group_added_then_free(a, p, dns, N_MEMBERS);
        fake_clear(&fake);
        assert_int_equal(state_object_delete(st, "G", NULL), DIRCONN_OK);
    }
}

/*
 * A group created before a member group (G lists H; G is created first, so
 * without H: pending) is completed by the follow-up pass with If-Match of the
 * version G's creation gave, then the member PATCH with If-Match of the
 * version that answer gave; the last version is recorded with G's record, so
 * the next no-change sync need not read G (a big group that lists a nested
 * one is megabytes).
 */
static void follow_up_records_the_last_version(void **state)
{
    (void)state;
    char *dns[3];
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    many_users(p, dns, 3);
    char *members[] = {dns[0], dns[1], dns[2], "CN=H,DC=x"};
    add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", group("G"), NULL, members, 4);
    add_dir(p, OBJECT_GROUP, "H", "CN=H,DC=x", "H", group("H"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    struct cloud_caps caps = etag_caps();
    struct answer script[] = {
        ANSWER("POST", "/Groups", 201, "{\"id\":\"cG\",\"meta\":{\"version\":\"W/\\\"1\\\"\"}}"),
        ANSWER("POST", "/Groups", 201, "{\"id\":\"cH\",\"meta\":{\"version\":\"W/\\\"h\\\"\"}}"),
        ANSWER("PATCH", "/Groups/cG", 200, NULL, .etag = "W/\"2\""),
        ANSWER("PATCH", "/Groups/cG", 200, NULL, .etag = "W/\"3\""),
        {0}};
    struct scim_port port;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err), DIRCONN_OK);
    bool found = false;
    struct state_object o = get_state("G", &found);
    assert_true(found);
    assert_null(o.record); /* pending: H had no cloud id yet */
    assert_null(o.version);
    state_object_clear(&o);
    int before = fake.n;
    assert_int_equal(apply_pending(a, &err), DIRCONN_OK);
    assert_int_equal(apply_counts(a)->failed, 0);
    int patches = count(&fake, "PATCH", "/Groups/cG");
    assert_true(patches >= 1 && patches <= 2);
    const char *expect = "W/\"1\"";
    for (int i = before; i < fake.n; i++) {
        assert_string_equal(fake.req[i].path, "/Groups/cG");
        assert_string_equal(fake.req[i].if_match, expect);
        expect = i == before ? "W/\"2\"" : "W/\"3\"";
    }
    /* the last PATCH adds H */
    assert_non_null(strstr(fake.req[fake.n - 1].body, "\"value\":\"cH\""));
    o = get_state("G", &found);
    assert_true(found);
    assert_non_null(o.record);
    assert_string_equal(o.version, patches == 2 ? "W/\"3\"" : "W/\"2\"");
    state_object_clear(&o);
    for (int i = 0; i < 3; i++)
        free(dns[i]);
    apply_free(a);
    plan_free(p);
}

/* A second 412: a failure of the object, reported; nothing recorded, no third attempt. */
static void second_412_is_a_failure(void **state)
{
    (void)state;
    struct plan *p = plan_title_change();
    struct answer script[] = {
        ANSWER("PATCH", "/Users/cU", 412, NULL),
        ANSWER("GET", "/Users/cU", 200,
               "{\"id\":\"cU\",\"userName\":\"u@x\",\"meta\":{\"version\":\"W/\\\"2\\\"\"}}"),
        ANSWER("PATCH", "/Users/cU", 412, NULL),
        ANSWER("GET", "/Users/cU", 200,
               "{\"id\":\"cU\",\"userName\":\"u@x\",\"meta\":{\"version\":\"W/\\\"3\\\"\"}}"),
        {0}};
    struct scim_port port;
    struct cloud_caps caps = etag_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    assert_int_equal(count(&fake, "PATCH", "/Users/cU"), 2);
    assert_int_equal(apply_counts(a)->failed, 1);
    assert_int_equal(apply_counts(a)->updated, 0);
    assert_int_equal(seen.failures, 1);
    assert_non_null(strstr(seen.last_failure, "412"));
    bool found = false;
    struct state_object o = get_state("U", &found);
    assert_non_null(strstr(o.record, "\"title\":\"A\"")); /* what was last acknowledged */
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/*
 * A provider without PATCH: GET and PUT with If-Match. After a 412 the PUT
 * is rebuilt from the fresh copy: the value outside the mapping
 * (nickName) is the cloud's current one, the title the directory's.
 */
static void stale_put_is_rebuilt_from_the_fresh_copy(void **state)
{
    (void)state;
    struct plan *p = plan_title_change();
    struct answer script[] = {
        ANSWER("GET", "/Users/cU", 200,
               "{\"id\":\"cU\",\"userName\":\"u@x\",\"title\":\"A\",\"nickName\":\"old\","
               "\"meta\":{\"version\":\"1\"}}"),
        ANSWER("PUT", "/Users/cU", 412, NULL),
        ANSWER("GET", "/Users/cU", 200,
               "{\"id\":\"cU\",\"userName\":\"u@x\",\"title\":\"A\",\"nickName\":\"new\","
               "\"meta\":{\"version\":\"2\"}}"),
        ANSWER("PUT", "/Users/cU", 200, NULL),
        {0}};
    struct scim_port port;
    struct cloud_caps caps = etag_caps();
    caps.patch = false;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 4);
    const char *methods[] = {"GET", "PUT", "GET", "PUT"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(fake.req[i].method, methods[i]);
        assert_string_equal(fake.req[i].path, "/Users/cU");
    }
    assert_string_equal(fake.req[1].if_match, "1");
    assert_string_equal(fake.req[3].if_match, "2");
    json_t *first = body_of(&fake.req[1]), *second = body_of(&fake.req[3]);
    assert_string_equal(json_string_value(json_object_get(first, "nickName")), "old");
    assert_string_equal(json_string_value(json_object_get(second, "nickName")), "new");
    assert_string_equal(json_string_value(json_object_get(second, "title")), "B");
    assert_string_equal(json_string_value(json_object_get(second, "externalId")), "U");
    assert_null(json_object_get(second, "meta"));
    json_decref(first);
    json_decref(second);
    assert_int_equal(apply_counts(a)->updated, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

/* ---- 404 to an update ----------------------------------------------------------- */

/*
 * 404 to the PATCH: U was deleted in the cloud. Nothing has its externalId:
 * it is created again (the whole record), counted as updated, recorded
 * under its new id; R, whose manager it is, forgets it in the state so that
 * the next sync points R's manager at the new id.
 */
static void gone_on_patch_is_created_again(void **state)
{
    (void)state;
    json_t *r = user("r@x", NULL);
    json_object_set_new(r, PLAN_KEY_MANAGER, json_string("U"));
    put_state("R", OBJECT_USER, "CN=R,DC=x", "cR", r);
    struct plan *p = plan_title_change();
    struct answer script[] = {ANSWER("PATCH", "/Users/cU", 404, NULL),
                              ANSWER("POST", "/Users", 201, "{\"id\":\"cU-new\"}"),
                              {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 3);
    assert_title_patch(&fake.req[0]);
    assert_string_equal(fake.req[1].method, "GET"); /* looked up by externalId first */
    assert_non_null(strstr(fake.req[1].path, "/Users?filter=externalId%20eq%20%22U%22"));
    assert_string_equal(fake.req[2].method, "POST");
    assert_string_equal(fake.req[2].path, "/Users");
    assert_true(fake.req[2].create);
    json_t *b = body_of(&fake.req[2]);
    assert_string_equal(json_string_value(json_object_get(b, "externalId")), "U");
    assert_string_equal(json_string_value(json_object_get(b, "userName")), "u@x");
    assert_string_equal(json_string_value(json_object_get(b, "title")), "B");
    json_decref(b);
    const struct apply_counts *n = apply_counts(a);
    assert_int_equal(n->updated, 1);
    assert_int_equal(n->added, 0);
    assert_int_equal(n->failed, 0);
    bool found = false;
    struct state_object o = get_state("U", &found);
    assert_true(found);
    assert_string_equal(o.cloud_id, "cU-new");
    assert_non_null(strstr(o.record, "\"title\":\"B\""));
    state_object_clear(&o);
    o = get_state("R", &found);
    assert_null(strstr(o.record, PLAN_KEY_MANAGER));
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/* 404 to the PATCH, and the lookup finds U under another id: updated there, no POST. */
static void gone_on_patch_found_elsewhere_is_updated_there(void **state)
{
    (void)state;
    struct plan *p = plan_title_change();
    struct answer script[] = {
        ANSWER("PATCH", "/Users/cU", 404, NULL),
        ANSWER("GET", "/Users?filter=", 200,
               "{\"totalResults\":1,\"Resources\":[{\"id\":\"cU2\"}]}"),
        ANSWER("GET", "/Users/cU2", 200,
               "{\"id\":\"cU2\",\"externalId\":\"U\",\"userName\":\"u@x\",\"displayName\":"
               "\"u@x\",\"title\":\"Z\"}"),
        {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.n, 4);
    assert_int_equal(count(&fake, "POST", "/"), 0);
    assert_string_equal(fake.req[2].method, "GET");
    assert_string_equal(fake.req[2].path, "/Users/cU2");
    assert_string_equal(fake.req[3].method, "PATCH");
    assert_string_equal(fake.req[3].path, "/Users/cU2");
    json_t *b = body_of(&fake.req[3]);
    json_t *ops = json_object_get(b, "Operations");
    assert_int_equal(json_array_size(ops), 1); /* against its copy: only the title differs */
    assert_string_equal(json_string_value(json_object_get(json_array_get(ops, 0), "path")),
                        "title");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ops, 0), "value")), "B");
    json_decref(b);
    assert_int_equal(apply_counts(a)->updated, 1);
    assert_int_equal(apply_counts(a)->failed, 0);
    bool found = false;
    struct state_object o = get_state("U", &found);
    assert_string_equal(o.cloud_id, "cU2");
    state_object_clear(&o);
    apply_free(a);
    plan_free(p);
}

/*
 * The cloud stops answering (status 0: DIRCONN_ECLOUD_CONNECT after the client's retries):
 * not a failure of the object but the end of the run, with the answer's own error; what was
 * acknowledged in the batch is recorded, and nothing more is sent.
 */
static void unreachable_cloud_stops_the_run(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    add_dir(p, OBJECT_USER, "U1", "CN=U1,DC=x", "u1@x", user("u1@x", NULL), NULL, NULL, 0);
    add_dir(p, OBJECT_USER, "U2", "CN=U2,DC=x", "u2@x", user("u2@x", NULL), NULL, NULL, 0);
    add_dir(p, OBJECT_GROUP, "G1", "CN=G1,DC=x", "G1", group("G1"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    struct answer script[] = {ANSWER("POST", "/Users", 0, NULL), {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_ECLOUD_CONNECT);
    assert_string_equal(err.msg, "POST /Users: HTTP 0");
    assert_int_equal(apply_counts(a)->failed, 0);
    assert_int_equal(seen.failures, 0);
    assert_int_equal(apply_counts(a)->added, 1); /* the other POST of the batch was answered */
    bool found = false;
    struct state_object o = get_state("U2", &found);
    assert_true(found);
    state_object_clear(&o);
    o = get_state("U1", &found);
    assert_false(found); /* never acknowledged: the next sync finds it by externalId */
    state_object_clear(&o);
    /* The next slices send nothing and give the same error. */
    int sent = fake.n;
    struct dirconn_error err2 = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err2), DIRCONN_ECLOUD_CONNECT);
    assert_string_equal(err2.msg, "POST /Users: HTTP 0");
    assert_int_equal(fake.n, sent);
    struct dirconn_error err3 = {0};
    assert_int_equal(apply_stop_error(a, &err3), DIRCONN_ECLOUD_CONNECT);
    assert_false(seen.lease_lost);
    apply_free(a);
    plan_free(p);
}

/*
 * The cloud refuses a write because the organisation uses another HA mode: the run stops as
 * for a lost lease (nothing more is sent, the object is no failure), but says so with the
 * cloud's message naming both modes, never "the HA lease was lost".
 */
static void other_ha_mode_stops_the_run(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    add_dir(p, OBJECT_USER, "U1", "CN=U1,DC=x", "u1@x", user("u1@x", NULL), NULL, NULL, 0);
    add_dir(p, OBJECT_GROUP, "G1", "CN=G1,DC=x", "G1", group("G1"), NULL, NULL, 0);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
#define MODE_MSG                                                                                   \
    "the organisation acme uses the etcd lease; this connector is configured with the cloud "      \
    "lease ([ha] lease = cloud)"
    struct answer script[] = {
        ANSWER("POST", "/Users", 409, "{\"haModeMismatch\": \"" MODE_MSG "\"}"), {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_EHAMODE);
    assert_string_equal(err.msg, MODE_MSG "; nothing more is written");
    assert_true(seen.lease_lost);
    assert_int_equal(seen.lease_code, DIRCONN_EHAMODE);
    assert_string_equal(seen.lease_msg, MODE_MSG);
    assert_int_equal(seen.failures, 0);
    int sent = fake.n;
    struct dirconn_error err2 = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_GROUP, &err2), DIRCONN_EHAMODE);
    assert_int_equal(fake.n, sent);
    struct dirconn_error err3 = {0};
    assert_int_equal(apply_stop_error(a, &err3), DIRCONN_EHAMODE);
    assert_null(strstr(err3.msg, "HA lease was lost"));
#undef MODE_MSG
    apply_free(a);
    plan_free(p);
}

/* List /Users by pages of 2 through a fake port answering from script (f is the caller's). */
static enum dirconn_err list_scripted(struct fake *f, struct answer *script,
                                      int (*fn)(void *arg, json_t *resource), void *arg,
                                      struct dirconn_error *err)
{
    memset(f, 0, sizeof(*f));
    f->script = script;
    struct scim_port port = {&fake_ops, f};
    return scim_port_list_all(&port, "/Users", NULL, NULL, 2, fn, arg, err);
}

/* A provider that ignores startIndex answers the first page again: the listing stops with an
 * error naming it, and no resource reaches the callback twice. */
static int count_listed(void *arg, json_t *resource)
{
    (void)resource;
    (*(int *)arg)++;
    return 0;
}

static void listing_stops_when_startindex_is_ignored(void **state)
{
    (void)state;
    static const char page[] = "{\"totalResults\":1000000,\"Resources\":"
                               "[{\"id\":\"a\"},{\"id\":\"b\"}]}";
    struct answer script[] = {ANSWER("GET", "/Users", 200, page),
                              ANSWER("GET", "/Users", 200, page),
                              ANSWER("GET", "/Users", 200, page),
                              {0}};
    struct fake f;
    struct dirconn_error err;
    int listed = 0;
    assert_int_equal(list_scripted(&f, script, count_listed, &listed, &err), DIRCONN_ECLOUD);
    assert_int_equal(listed, 2);
    /* the first page, then the window of pages asked ahead (LIST_WINDOW in scim.c) */
    assert_int_equal(count(&f, "GET", "/Users"), 5);
    assert_non_null(strstr(err.msg, "ignores startIndex"));
    fake_clear(&f);
}

/* The ids a listing handed to its callback, in order, joined by commas. */
static int collect_listed(void *arg, json_t *resource)
{
    char *ids = arg;
    size_t len = strlen(ids);
    snprintf(ids + len, 64 - len, "%s%s", len > 0 ? "," : "",
             json_string_value(json_object_get(resource, "id")));
    return 0;
}

/* Pages are asked ahead at the stride of the first; a shorter page before the end (a provider
 * that caps count lower on a later page) drops the pages asked after it, and the listing goes on
 * where the short page ended: every resource once, in order. */
static void listing_after_a_short_page(void **state)
{
    (void)state;
    struct answer script[] = {
        ANSWER("GET", "/Users?startIndex=1&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"a\"},{\"id\":\"b\"}]}"),
        ANSWER("GET", "/Users?startIndex=3&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"c\"}]}"),
        ANSWER("GET", "/Users?startIndex=5&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"e\"}]}"),
        ANSWER("GET", "/Users?startIndex=4&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"d\"},{\"id\":\"e\"}]}"),
        {0}};
    struct fake f;
    struct dirconn_error err;
    char ids[64] = "";
    assert_int_equal(list_scripted(&f, script, collect_listed, ids, &err), DIRCONN_OK);
    assert_string_equal(ids, "a,b,c,d,e");
    assert_int_equal(count(&f, "GET", "/Users?startIndex=5&"), 1); /* asked ahead, dropped */
    assert_int_equal(count(&f, "GET", "/Users?startIndex=4&"), 1);
    assert_int_equal(count(&f, "GET", "/Users"), 4);
    fake_clear(&f);
}

/* A listing stepped without waiting (the inventory beside the directory read): a step takes
 * only the pages already answered, in order, and says the listing has not ended; the step that
 * takes the last page ends it, and a later step returns the same outcome. */
static void listing_stepped_without_waiting(void **state)
{
    (void)state;
    struct answer script[] = {
        ANSWER("GET", "/Users?startIndex=1&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"a\"},{\"id\":\"b\"}]}"),
        ANSWER("GET", "/Users?startIndex=3&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"c\"},{\"id\":\"d\"}]}"),
        ANSWER("GET", "/Users?startIndex=5&", 200,
               "{\"totalResults\":5,\"Resources\":[{\"id\":\"e\"}]}"),
        {0}};
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.script = script;
    struct scim_port port = {&fake_ops, &f};
    struct dirconn_error err;
    char ids[64] = "";
    struct scim_list *l = NULL;
    assert_int_equal(
        scim_port_list_open(&port, "/Users", NULL, "id", 2, collect_listed, ids, &l, &err),
        DIRCONN_OK);
    assert_int_equal(f.n, 0); /* nothing sent before the first step */
    bool finished = true;
    /* no answer has arrived: the first page is asked, nothing is taken */
    assert_int_equal(scim_list_step(l, false, &finished, &err), DIRCONN_OK);
    assert_false(finished);
    assert_string_equal(ids, "");
    assert_int_equal(f.n, 1);
    assert_non_null(strstr(f.req[0].path, "attributes=id"));
    /* one answer arrives before each step: the first page, then the pages asked ahead of it */
    f.arrived = 1;
    assert_int_equal(scim_list_step(l, false, &finished, &err), DIRCONN_OK);
    assert_false(finished);
    assert_string_equal(ids, "a,b");
    assert_int_equal(f.n, 3); /* startIndex 3 and 5, asked at the first page's stride */
    f.arrived = 1;
    assert_int_equal(scim_list_step(l, false, &finished, &err), DIRCONN_OK);
    assert_false(finished);
    assert_string_equal(ids, "a,b,c,d");
    f.arrived = 1;
    assert_int_equal(scim_list_step(l, false, &finished, &err), DIRCONN_OK);
    assert_true(finished);
    assert_string_equal(ids, "a,b,c,d,e");
    assert_int_equal(scim_list_step(l, true, &finished, &err), DIRCONN_OK);
    assert_true(finished);
    assert_int_equal(f.n, 3);
    scim_list_free(l);
    fake_clear(&f);
}

/* ---- the pipeline ------------------------------------------------------------------- */

/* n new users U1..Un, in this order in the plan. */
static struct plan *plan_users(int n)
{
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    for (int i = 1; i <= n; i++) {
        char ext[16], dn[32], name[16];
        snprintf(ext, sizeof(ext), "U%d", i);
        snprintf(dn, sizeof(dn), "CN=U%d,DC=x", i);
        snprintf(name, sizeof(name), "u%d@x", i);
        add_dir(p, OBJECT_USER, ext, dn, name, user(name, NULL), NULL, NULL, 0);
    }
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], n);
    return p;
}

/* The externalIds the state holds, in the order they were first recorded. */
static void recorded_order(char *out, size_t size)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(state_db(st),
                                        "SELECT external_id FROM objects ORDER BY rowid", -1, &q,
                                        NULL),
                     SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(q) == SQLITE_ROW) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len > 0 ? "," : "", sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
}

/* Two batches in flight: batch 2 is sent before batch 1 is answered; with a window of 1 it is
 * not (stop-and-wait). */
static void two_batches_in_flight(void **state)
{
    (void)state;
    for (int window = 1; window <= 2; window++) {
        struct plan *p = plan_users(4);
        struct answer script[] = {{0}};
        struct scim_port port;
        struct cloud_caps caps = default_caps();
        start_window = window;
        start_batch = 2;
        struct apply *a = start(p, script, &caps, false, &port);
        struct dirconn_error err = {0};
        assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
        assert_int_equal(count(&fake, "POST", "/Users"), 4);
        /* window 2: both batches' POSTs queued before the first answer */
        assert_int_equal(fake.max_queued, 2 * window);
        assert_int_equal(apply_counts(a)->added, 4);
        char order[64];
        recorded_order(order, sizeof(order));
        assert_string_equal(order, "U1,U2,U3,U4");
        apply_free(a);
        plan_free(p);
        fake_clear(&fake);
        assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
        assert_int_equal(sqlite3_exec(state_db(st), "DELETE FROM objects", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(state_commit(st, NULL), DIRCONN_OK);
    }
}

/* The second batch answers first: each answer goes to its own object, and the acknowledgements
 * are recorded in the plan's order (batch 1, then batch 2). */
static void later_batch_answered_first_is_recorded_after(void **state)
{
    (void)state;
    struct plan *p = plan_users(4);
    struct answer script[] = {{0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    start_window = 2;
    start_batch = 2;
    fake.lifo = true;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(fake.max_queued, 4);
    /* answered U4, U3, U2, U1: the fake's ids new1..new4 in that order */
    static const char *const want[][2] = {
        {"U1", "new4"}, {"U2", "new3"}, {"U3", "new2"}, {"U4", "new1"}};
    for (int i = 0; i < 4; i++) {
        bool found = false;
        struct state_object o = get_state(want[i][0], &found);
        assert_true(found);
        assert_string_equal(o.cloud_id, want[i][1]);
        assert_non_null(o.record);
        state_object_clear(&o);
    }
    char order[64];
    recorded_order(order, sizeof(order));
    assert_string_equal(order, "U1,U2,U3,U4");
    assert_int_equal(apply_counts(a)->added, 4);
    apply_free(a);
    plan_free(p);
}

/*
 * Batch 1 meets an unreachable cloud while batch 2 is already sent: no batch 3 is sent, batch
 * 1's acknowledged object and batch 2's are recorded, the unacknowledged one is not, and the run
 * stops with the cloud's error. The same with a write the cloud fences (lost lease).
 */
static void failure_in_batch_with_next_sent(void **state)
{
    (void)state;
    for (int fenced = 0; fenced <= 1; fenced++) {
        struct plan *p = plan_users(6);
        struct answer script[] = {ANSWER("POST", "/Users", 0, NULL), {0}};
        if (fenced)
            script[0] =
                (struct answer)ANSWER("POST", "/Users", 409, "{\"haModeMismatch\":\"other mode\"}");
        struct scim_port port;
        struct cloud_caps caps = default_caps();
        start_window = 2;
        start_batch = 2;
        struct apply *a = start(p, script, &caps, false, &port);
        struct dirconn_error err = {0};
        assert_int_equal(apply_ops(a, PLAN_ADD, OBJECT_USER, &err),
                         fenced ? DIRCONN_EHAMODE : DIRCONN_ECLOUD_CONNECT);
        assert_int_equal(fake.n, 4); /* batches 1 and 2; batch 3 (U5, U6) never sent */
        assert_int_equal(fake.max_queued, 4);
        assert_int_equal(seen.lease_lost, fenced == 1);
        assert_int_equal(apply_counts(a)->failed, 0);
        assert_int_equal(apply_counts(a)->added, 3);
        char order[64];
        recorded_order(order, sizeof(order));
        assert_string_equal(order, "U2,U3,U4");
        apply_free(a);
        plan_free(p);
        fake_clear(&fake);
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
        assert_int_equal(sqlite3_exec(state_db(st), "DELETE FROM objects", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(state_commit(st, NULL), DIRCONN_OK);
    }
}

/* A 412 in batch 1 while batch 2 is in flight: read again and sent once more, both recorded. */
static void stale_in_batch_with_next_sent(void **state)
{
    (void)state;
    put_state("U1", OBJECT_USER, "CN=U1,DC=x", "c1", user("u1@x", "Old"));
    put_state("U2", OBJECT_USER, "CN=U2,DC=x", "c2", user("u2@x", "Old"));
    put_state("U3", OBJECT_USER, "CN=U3,DC=x", "c3", user("u3@x", "Old"));
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    for (int i = 1; i <= 3; i++) {
        char ext[8], dn[32], name[16], cid[8];
        snprintf(ext, sizeof(ext), "U%d", i);
        snprintf(dn, sizeof(dn), "CN=U%d,DC=x", i);
        snprintf(name, sizeof(name), "u%d@x", i);
        snprintf(cid, sizeof(cid), "c%d", i);
        assert_int_equal(plan_add_cloud(p, OBJECT_USER, cid, name, ext, false, "W/\"1\"", NULL),
                         DIRCONN_OK);
        add_dir(p, OBJECT_USER, ext, dn, name, user(name, "New"), NULL, NULL, 0);
    }
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_UPDATE], 3);
    struct answer script[] = {
        ANSWER("PATCH", "/Users/c1", 412, NULL),
        ANSWER("GET", "/Users/c1", 200, "{\"id\":\"c1\",\"meta\":{\"version\":\"W/\\\"2\\\"\"}}"),
        {0}};
    struct scim_port port;
    struct cloud_caps caps = default_caps();
    caps.etag = true;
    start_window = 2;
    start_batch = 2;
    struct apply *a = start(p, script, &caps, false, &port);
    struct dirconn_error err = {0};
    assert_int_equal(apply_ops(a, PLAN_UPDATE, OBJECT_USER, &err), DIRCONN_OK);
    assert_int_equal(count(&fake, "PATCH", "/Users/c1"), 2);
    assert_int_equal(count(&fake, "PATCH", "/Users/c3"), 1);
    assert_int_equal(fake.max_queued, 3); /* U3's PATCH went out before U1's 412 was handled */
    int last = -1;
    for (int i = 0; i < fake.n; i++)
        if (strcmp(fake.req[i].method, "PATCH") == 0 && strcmp(fake.req[i].path, "/Users/c1") == 0)
            last = i;
    assert_non_null(fake.req[last].if_match);
    assert_string_equal(fake.req[last].if_match, "W/\"2\"");
    assert_int_equal(apply_counts(a)->updated, 3);
    assert_int_equal(apply_counts(a)->failed, 0);
    apply_free(a);
    plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(conflict_after_retry_adopts, setup, teardown),
        cmocka_unit_test_setup_teardown(maybe_applied_found_is_not_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(adopted_is_recorded_by_the_follow_up, setup, teardown),
        cmocka_unit_test_setup_teardown(maybe_applied_absent_is_created_after_lookup, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(payload_limit_chunks_members, setup, teardown),
        cmocka_unit_test_setup_teardown(member_patches_wait_in_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_then_too_large_is_sent_again_smaller, setup, teardown),
        cmocka_unit_test_setup_teardown(too_large_post_is_sent_again_smaller, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_unlinks_referrers_first, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_cascades_sends_delete_only, setup, teardown),
        cmocka_unit_test_setup_teardown(title_change_is_one_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(membership_change_is_add_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_patch_is_read_again_and_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(versions_recorded_from_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(rest_chain_records_the_last_version, setup, teardown),
        cmocka_unit_test_setup_teardown(follow_up_records_the_last_version, setup, teardown),
        cmocka_unit_test_setup_teardown(second_412_is_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_put_is_rebuilt_from_the_fresh_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(gone_on_patch_is_created_again, setup, teardown),
        cmocka_unit_test_setup_teardown(gone_on_patch_found_elsewhere_is_updated_there, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unreachable_cloud_stops_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(other_ha_mode_stops_the_run, setup, teardown),
        cmocka_unit_test(listing_stops_when_startindex_is_ignored),
        cmocka_unit_test(listing_after_a_short_page),
        cmocka_unit_test(listing_stepped_without_waiting),
        cmocka_unit_test_setup_teardown(two_batches_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(later_batch_answered_first_is_recorded_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failure_in_batch_with_next_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_in_batch_with_next_sent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
