/*
 * Unit tests of the HA election state machine (ha/election.c) on an
 * in-process lease table that follows the backend contract of ha/lease.h
 * (compare-and-swap on a version, expiry by the table's own clock, a
 * fencing token that grows with every change of holder). The real lease
 * servers are exercised by the integration tests (ha_*.sh).
 */
#include "ha/election.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* The lease "server": one per test, shared by the backends of several instances. */
struct table {
    pthread_mutex_t lock;
    char holder[64]; /* "" = free */
    int64_t expires; /* monotonic ms */
    int64_t duration;
    int64_t transitions;
    int64_t version;
    bool down;           /* every request fails as if unreachable */
    int renews;          /* renew requests received */
    int reconfigured;    /* reconfigure calls */
    char proxy_url[128]; /* [proxy] url of the last one */
};

struct inst {
    struct table *t;
    char id[64];
};

static void fill(struct table *t, struct lease_info *out)
{
    memset(out, 0, sizeof(*out));
    int64_t now = platform_monotonic_ms();
    out->holder = t->holder[0] ? strdup(t->holder) : NULL;
    out->token = t->transitions;
    out->remaining_ms = t->holder[0] && t->expires > now ? t->expires - now : 0;
    out->duration_ms = t->holder[0] ? t->duration : 0;
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)t->version);
    out->version = strdup(v);
}

static enum dirconn_err down(struct table *t, struct dirconn_error *err)
{
    (void)t;
    return dirconn_error_set(err, DIRCONN_ECLOUD_CONNECT, "lease table unreachable");
}

static enum dirconn_err t_observe(void *self, struct lease_info *out, struct dirconn_error *err)
{
    struct inst *in = self;
    pthread_mutex_lock(&in->t->lock);
    enum dirconn_err e = DIRCONN_OK;
    if (in->t->down)
        e = down(in->t, err);
    else
        fill(in->t, out);
    pthread_mutex_unlock(&in->t->lock);
    return e;
}

static enum dirconn_err t_acquire(void *self, const struct lease_info *seen, int64_t duration_ms,
                                  struct lease_info *out, struct dirconn_error *err)
{
    struct inst *in = self;
    struct table *t = in->t;
    pthread_mutex_lock(&t->lock);
    enum dirconn_err e = DIRCONN_OK;
    int64_t now = platform_monotonic_ms();
    if (t->down) {
        e = down(t, err);
    } else if (seen->version == NULL || strtoll(seen->version, NULL, 10) != t->version) {
        e = dirconn_error_set(err, DIRCONN_ELEASE, "412");
    } else if (t->holder[0] && strcmp(t->holder, in->id) != 0 && t->expires > now) {
        e = dirconn_error_set(err, DIRCONN_ELEASE, "409 leaseHeld");
    } else {
        if (strcmp(t->holder, in->id) != 0)
            t->transitions++;
        snprintf(t->holder, sizeof(t->holder), "%s", in->id);
        t->expires = now + duration_ms;
        t->duration = duration_ms;
        t->version++;
        fill(t, out);
    }
    pthread_mutex_unlock(&t->lock);
    return e;
}

static enum dirconn_err t_renew(void *self, int64_t duration_ms, struct lease_info *out,
                                struct dirconn_error *err)
{
    struct inst *in = self;
    struct table *t = in->t;
    pthread_mutex_lock(&t->lock);
    enum dirconn_err e = DIRCONN_OK;
    int64_t now = platform_monotonic_ms();
    t->renews++;
    if (t->down) {
        e = down(t, err);
    } else if (strcmp(t->holder, in->id) != 0 || t->expires <= now) {
        e = dirconn_error_set(err, DIRCONN_ELEASE, "not the holder");
    } else {
        t->expires = now + duration_ms;
        t->version++;
        fill(t, out);
    }
    pthread_mutex_unlock(&t->lock);
    return e;
}

static enum dirconn_err t_release(void *self, struct dirconn_error *err)
{
    struct inst *in = self;
    struct table *t = in->t;
    pthread_mutex_lock(&t->lock);
    enum dirconn_err e = DIRCONN_OK;
    if (t->down) {
        e = down(t, err);
    } else if (strcmp(t->holder, in->id) == 0) {
        t->holder[0] = '\0';
        t->transitions++;
        t->version++;
    }
    pthread_mutex_unlock(&t->lock);
    return e;
}

static enum dirconn_err t_state_get(void *self, json_t **doc, char **version,
                                    struct dirconn_error *err)
{
    (void)self;
    (void)err;
    *doc = json_object();
    *version = NULL;
    return DIRCONN_OK;
}

static enum dirconn_err t_state_put(void *self, const json_t *doc, const char *version,
                                    int64_t token, struct dirconn_error *err)
{
    (void)self;
    (void)doc;
    (void)version;
    (void)token;
    (void)err;
    return DIRCONN_OK;
}

static void t_free(void *self)
{
    free(self);
}

static enum dirconn_err t_reconfigure(void *self, struct config *cfg, struct dirconn_error *err)
{
    (void)err;
    struct inst *in = self;
    pthread_mutex_lock(&in->t->lock);
    in->t->reconfigured++;
    snprintf(in->t->proxy_url, sizeof(in->t->proxy_url), "%s",
             cfg->proxy_url != NULL ? cfg->proxy_url : "");
    pthread_mutex_unlock(&in->t->lock);
    config_free(cfg);
    return DIRCONN_OK;
}

static const struct lease_backend_ops table_ops = {
    "table",     t_observe,   t_acquire, t_renew,       t_release,
    t_state_get, t_state_put, t_free,    t_reconfigure,
};

static struct lease_backend backend(struct table *t, const char *id)
{
    struct inst *in = calloc(1, sizeof(*in));
    assert_non_null(in);
    in->t = t;
    snprintf(in->id, sizeof(in->id), "%s", id);
    struct lease_backend b = {&table_ops, in, strdup(id), false};
    return b;
}

static struct log_sink quiet;

static struct ha_options opts(void)
{
    struct ha_options o = {
        .duration_ms = 1000, .renew_ms = 300, .failover_ms = 0, .jitter_ms = 20, .margin_ms = 100};
    return o;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Wait up to ms for pred; returns the ms it took, or -1. */
static int64_t wait_for(bool (*pred)(void *), void *arg, int64_t ms)
{
    int64_t t0 = platform_monotonic_ms();
    while (platform_monotonic_ms() - t0 < ms) {
        if (pred(arg))
            return platform_monotonic_ms() - t0;
        sleep_ms(10);
    }
    return -1;
}

static bool is_active(void *arg)
{
    return ha_election_is_active(arg);
}

static bool is_standby(void *arg)
{
    return !ha_election_is_active(arg);
}

/* The election thread has fenced (the write gate closes by the clock first, the state follows
 * when the thread next runs). */
static bool state_standby(void *arg)
{
    struct ha_status s;
    ha_election_status(arg, &s);
    bool standby = s.state == HA_STANDBY;
    ha_status_clear(&s);
    return standby;
}

static struct table *table_new(void)
{
    struct table *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

static void table_free(struct table *t)
{
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct ha_election *start(struct table *t, const char *id, struct ha_options o)
{
    struct lease_backend b = backend(t, id);
    struct ha_election *e = NULL;
    struct dirconn_error err;
    assert_int_equal(ha_election_start(&b, &o, &quiet, NULL, NULL, &e, &err), DIRCONN_OK);
    return e;
}

static bool reconfigured(void *arg)
{
    struct table *t = arg;
    pthread_mutex_lock(&t->lock);
    bool done = t->reconfigured > 0;
    pthread_mutex_unlock(&t->lock);
    return done;
}

/* SIGHUP: the election thread hands the backend the new [proxy] settings, once. */
static void test_reconfigure(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_election *a = start(t, "a", opts());
    assert_true(wait_for(is_active, a, 2000) >= 0);
    struct config *cfg = NULL;
    struct dirconn_error err;
    assert_int_equal(config_load_string("[ldap]\nurls = ldap://127.0.0.1:1\n[proxy]\n"
                                        "mode = explicit\nurl = http://127.0.0.1:3128\n",
                                        "<test>", &cfg, &err),
                     DIRCONN_OK);
    ha_election_reconfigure(a, cfg);
    assert_true(wait_for(reconfigured, t, 3000) >= 0);
    assert_string_equal(t->proxy_url, "http://127.0.0.1:3128");
    assert_true(ha_election_is_active(a)); /* the election goes on */
    /* Settings still pending when the election ends are freed with it (ASan checks). */
    assert_int_equal(
        config_load_string("[ldap]\nurls = ldap://127.0.0.1:1\n", "<test>", &cfg, &err),
        DIRCONN_OK);
    ha_election_stop(a, true);
    ha_election_reconfigure(a, cfg);
    ha_election_free(a);
    assert_int_equal(t->reconfigured, 1);
    table_free(t);
}

/* Two instances: exactly one is active; the released lease goes to the other at once. */
static void test_one_active_and_handover(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_election *a = start(t, "a", opts());
    assert_true(wait_for(is_active, a, 2000) >= 0);
    struct ha_election *b = start(t, "b", opts());
    sleep_ms(1500); /* several lease terms: a keeps renewing, b stays standby */
    assert_true(ha_election_is_active(a));
    assert_false(ha_election_is_active(b));
    int64_t token_a = ha_election_token(a);
    assert_true(token_a > 0);
    ha_election_stop(a, true); /* SIGTERM: released */
    assert_false(ha_election_is_active(a));
    int64_t took = wait_for(is_active, b, 2000);
    assert_true(took >= 0);
    assert_true(took < 800); /* a standby polls every min(renew, 500 ms) */
    assert_true(ha_election_token(b) > token_a);
    struct ha_status s;
    ha_election_status(b, &s);
    assert_string_equal(s.holder, "b");
    assert_int_equal(s.state, HA_ACTIVE);
    assert_int_equal(s.activations, 1);
    ha_status_clear(&s);
    ha_election_free(a);
    ha_election_free(b);
    table_free(t);
}

/* The lease server unreachable: the active stops writing before its lease can expire. */
static void test_self_fencing(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_election *a = start(t, "a", opts());
    assert_true(wait_for(is_active, a, 2000) >= 0);
    pthread_mutex_lock(&t->lock);
    t->down = true;
    int64_t expires = t->expires; /* the table's expiry of a's lease */
    pthread_mutex_unlock(&t->lock);
    /* The write gate closes before the lease expires on the server. */
    assert_true(*ha_election_write_deadline(a) <= expires);
    assert_true(wait_for(is_standby, a, 2000) >= 0);
    assert_true(platform_monotonic_ms() <= expires + 50);
    assert_true(wait_for(state_standby, a, 2000) >= 0);
    struct ha_status s;
    ha_election_status(a, &s);
    assert_int_equal(s.state, HA_STANDBY);
    assert_true(s.last_error[0] != '\0');
    ha_status_clear(&s);
    /* Back up: a takes the lease again (its own, expired), with a new term. */
    pthread_mutex_lock(&t->lock);
    t->down = false;
    pthread_mutex_unlock(&t->lock);
    assert_true(wait_for(is_active, a, 3000) >= 0);
    ha_election_free(a);
    table_free(t);
}

/* A holder that stops renewing (kill -9): the standby takes over after expiry + failover. */
static void test_failover_after_expiry(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_options o = opts();
    o.failover_ms = 300;
    /* "dead" holds the lease and never renews. */
    pthread_mutex_lock(&t->lock);
    snprintf(t->holder, sizeof(t->holder), "dead");
    t->transitions = 7;
    t->duration = 1000;
    t->expires = platform_monotonic_ms() + 1000;
    pthread_mutex_unlock(&t->lock);
    int64_t t0 = platform_monotonic_ms();
    struct ha_election *b = start(t, "b", o);
    assert_true(wait_for(is_active, b, 4000) >= 0);
    int64_t took = platform_monotonic_ms() - t0;
    assert_true(took >= 1000 + 300);      /* not before expiry + failover interval */
    assert_true(took < 1000 + 300 + 400); /* promptly after: timed by the remaining duration */
    assert_int_equal(ha_election_token(b), 8);
    ha_election_free(b);
    table_free(t);
}

/* A one-shot run (dirconnctl sync) does not take a lease another instance holds. */
static void test_one_shot_refused(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_election *a = start(t, "a", opts());
    assert_true(wait_for(is_active, a, 2000) >= 0);
    struct ha_options o = opts();
    o.one_shot = true;
    o.self_in_use = true;
    struct ha_election *cli = start(t, "a", o); /* the same connector as the daemon */
    struct dirconn_error err;
    int64_t t0 = platform_monotonic_ms();
    assert_int_equal(ha_election_wait_active(cli, 3000, &err), DIRCONN_ELEASE);
    assert_true(platform_monotonic_ms() - t0 < 1000);
    assert_non_null(strstr(err.msg, "held by connector a"));
    assert_true(ha_election_is_active(a));
    ha_election_free(cli);
    ha_election_stop(a, true);
    /* Free now: the one-shot run takes it. */
    cli = start(t, "c", o);
    assert_int_equal(ha_election_wait_active(cli, 3000, &err), DIRCONN_OK);
    ha_election_free(cli);
    ha_election_free(a);
    table_free(t);
}

/* The injected clock: the monotonic clock plus a leap, which is what a process resumed after
 * a SIGSTOP sees (its threads stood still, the clock did not). */
static _Atomic int64_t leap;

static int64_t leaping_clock(void *arg)
{
    (void)arg;
    return platform_monotonic_ms() + atomic_load(&leap);
}

static _Atomic int role_off; /* role callbacks saying "no longer active" */

static void count_role(void *arg, bool active, int64_t token)
{
    (void)arg;
    (void)token;
    if (!active)
        atomic_fetch_add(&role_off, 1);
}

static int renews(struct table *t)
{
    pthread_mutex_lock(&t->lock);
    int n = t->renews;
    pthread_mutex_unlock(&t->lock);
    return n;
}

struct renewed_arg {
    struct table *t;
    int from;
};

static bool renewed_since(void *arg)
{
    struct renewed_arg *r = arg;
    return renews(r->t) > r->from;
}

static bool role_went_off(void *arg)
{
    (void)arg;
    return atomic_load(&role_off) > 0;
}

static bool holder_seen_b(void *arg)
{
    struct ha_status s;
    ha_election_status(arg, &s);
    bool b = s.holder != NULL && strcmp(s.holder, "b") == 0;
    ha_status_clear(&s);
    return b;
}

/*
 * SIGSTOP past the lease, then SIGCONT: while "a" stood still, "b" took the lease. Resumed,
 * "a" must be a standby before it does anything else: no renewal request, never reported
 * active, "self-fenced" once. by_query: the first thing to run after the resume is a question
 * (status, a sync start); otherwise the election thread's own timer wakes first.
 */
static void self_fence_after_stop(bool by_query)
{
    struct table *t = table_new();
    struct ha_options o = opts();
    o.clock = leaping_clock;
    atomic_store(&leap, 0);
    atomic_store(&role_off, 0);
    struct lease_backend b = backend(t, "a");
    struct ha_election *a = NULL;
    struct dirconn_error err;
    assert_int_equal(ha_election_start(&b, &o, &quiet, count_role, NULL, &a, &err), DIRCONN_OK);
    assert_true(wait_for(is_active, a, 2000) >= 0);
    /* Right after a renewal (the thread then sleeps for the renew interval): stop. */
    struct renewed_arg r = {t, renews(t)};
    assert_true(wait_for(renewed_since, &r, 2000) >= 0);
    pthread_mutex_lock(&t->lock);
    int at_stop = t->renews;
    snprintf(t->holder, sizeof(t->holder), "b"); /* took it while a was stopped */
    t->transitions++;
    t->version++;
    t->expires = platform_monotonic_ms() + 60000;
    t->duration = 60000;
    atomic_store(&leap, 2000); /* a's lease (1000 ms) ran out while it was stopped */
    pthread_mutex_unlock(&t->lock);
    if (by_query) {
        /* The first question after the resume already gets "standby". */
        struct ha_status s;
        ha_election_status(a, &s);
        assert_int_equal(s.state, HA_STANDBY);
        assert_int_equal(s.self_fences, 1);
        ha_status_clear(&s);
        assert_false(ha_election_is_active(a));
        assert_int_equal(ha_election_token(a), 0);
        assert_int_equal(*ha_election_write_deadline(a), 0);
    } else {
        /* Nobody asks: the election thread's own wake-up fences (the role callback says so). */
        assert_true(wait_for(role_went_off, NULL, 2000) >= 0);
    }
    assert_int_equal(atomic_load(&role_off), 1);
    /* Then it looks at the lease as a standby and sees b. */
    assert_true(wait_for(holder_seen_b, a, 2000) >= 0);
    assert_false(ha_election_is_active(a));
    struct ha_status s;
    ha_election_status(a, &s);
    assert_int_equal(s.state, HA_STANDBY);
    assert_int_equal(s.self_fences, 1); /* logged once for the episode */
    assert_int_equal(s.activations, 1);
    ha_status_clear(&s);
    assert_int_equal(renews(t), at_stop); /* it never renewed after the resume */
    assert_int_equal(atomic_load(&role_off), 1);
    ha_election_free(a);
    table_free(t);
}

static void test_self_fence_first_on_query(void **state)
{
    (void)state;
    self_fence_after_stop(true);
}

static void test_self_fence_first_on_wakeup(void **state)
{
    (void)state;
    self_fence_after_stop(false);
}

/* Self-fenced with nobody else taking the lease: it takes its own lease back (a new term). */
static void test_self_fence_then_reacquire(void **state)
{
    (void)state;
    struct table *t = table_new();
    struct ha_options o = opts();
    o.clock = leaping_clock;
    atomic_store(&leap, 0);
    struct ha_election *a = NULL;
    struct lease_backend b = backend(t, "a");
    struct dirconn_error err;
    assert_int_equal(ha_election_start(&b, &o, &quiet, NULL, NULL, &a, &err), DIRCONN_OK);
    assert_true(wait_for(is_active, a, 2000) >= 0);
    atomic_store(&leap, 5000);
    assert_false(ha_election_is_active(a)); /* the question itself fences */
    pthread_mutex_lock(&t->lock);
    t->expires = 0; /* by the server's clock too, the lease ran out */
    pthread_mutex_unlock(&t->lock);
    assert_true(wait_for(is_active, a, 3000) >= 0);
    struct ha_status s;
    ha_election_status(a, &s);
    assert_int_equal(s.self_fences, 1);
    assert_int_equal(s.activations, 2);
    ha_status_clear(&s);
    ha_election_free(a);
    table_free(t);
}

int main(void)
{
    log_sink_init(&quiet, "test_election", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_active_and_handover),
        cmocka_unit_test(test_self_fencing),
        cmocka_unit_test(test_failover_after_expiry),
        cmocka_unit_test(test_one_shot_refused),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_self_fence_first_on_query),
        cmocka_unit_test(test_self_fence_first_on_wakeup),
        cmocka_unit_test(test_self_fence_then_reacquire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
