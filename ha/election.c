/*
 * election.c - the HA election state machine (see election.h).
 */
#include "ha/election.h"

#include "connector/core/secret_store.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ha_election {
    struct lease_backend b;
    struct ha_options o;
    const struct log_sink *log;
    ha_role_fn role;
    void *role_arg;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on stop and on every change of what status shows */
    /* under lock */
    bool stop;
    enum ha_state state;
    struct lease_info seen; /* the last answer of the lease server */
    bool observed;          /* at least one answer */
    long activations;
    char last_error[DIRCONN_ERROR_LEN];
    enum dirconn_err last_code;
    struct config *pending_cfg; /* new [proxy] settings for the backend (owned), or NULL */
    /* lock-free for the writers */
    _Atomic int64_t deadline; /* the write gate (CLOCK_MONOTONIC ms), 0 = closed */
    _Atomic int64_t token;
    _Atomic long self_fences; /* episodes in which this instance found itself past its deadline */
};

/* The clock of the deadline: CLOCK_MONOTONIC, or the one the options inject (tests). */
static int64_t now_ms(const struct ha_election *e)
{
    return e->o.clock != NULL ? e->o.clock(e->o.clock_arg) : platform_monotonic_ms();
}

static const char *const state_names[] = {"standby", "acquiring", "active", "releasing", "stopped"};

const char *ha_state_name(enum ha_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

void ha_options_from_config(const struct config *cfg, struct ha_options *o)
{
    memset(o, 0, sizeof(*o));
    o->duration_ms = cfg->ha_lease_duration_ms;
    o->renew_ms = cfg->ha_renew_interval_ms > 0 ? cfg->ha_renew_interval_ms : o->duration_ms / 3;
    o->failover_ms = cfg->ha_failover_interval_ms;
    o->jitter_ms = cfg->ha_jitter_ms;
}

void ha_status_clear(struct ha_status *s)
{
    free(s->identity);
    free(s->holder);
    free(s->holder_since);
    free(s->last_renew);
    memset(s, 0, sizeof(*s));
}

/* Requests of the election are bounded so the thread never sleeps through its deadline. */
static int64_t request_timeout(const struct config *cfg)
{
    int64_t renew =
        cfg->ha_renew_interval_ms > 0 ? cfg->ha_renew_interval_ms : cfg->ha_lease_duration_ms / 3;
    return renew < 1000 ? 1000 : renew > 10000 ? 10000 : renew;
}

enum dirconn_err ha_backend_new(const struct config *cfg, const struct log_sink *log,
                                struct proxy_shared *proxy_shared, const char *identity,
                                struct lease_backend *out, struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    if (cfg->ha_lease == HA_LEASE_NONE)
        return DIRCONN_OK;
    if (cfg->ha_lease == HA_LEASE_CLOUD)
        return lease_backend_cloud_new(cfg, log, proxy_shared, request_timeout(cfg), out, err);
    char *id = NULL;
    char fallback[300];
    if (identity == NULL && cfg->cloud_client_id != NULL)
        identity = cfg->cloud_client_id;
    if (identity == NULL) {
        struct dirconn_error ignored;
        if (secret_store_get(cfg, SECRET_CONNECTOR_ID, &id, &ignored) == DIRCONN_OK)
            identity = id;
    }
    if (identity == NULL) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        snprintf(fallback, sizeof(fallback), "%s:%ld", host, (long)getpid());
        identity = fallback;
    }
    enum dirconn_err e =
        lease_backend_etcd_new(cfg, log, proxy_shared, identity, request_timeout(cfg), out, err);
    secret_store_free_value(id);
    return e;
}

/* ---- the thread ----------------------------------------------------------------------- */

/* Hand the backend new [proxy] settings (SIGHUP), between two of its requests. */
static void reconfigure(struct ha_election *e, struct config *cfg)
{
    if (e->b.ops->reconfigure == NULL) {
        config_free(cfg); /* etcd: never through a proxy */
        return;
    }
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (e->b.ops->reconfigure(e->b.self, cfg, &err) == DIRCONN_OK)
        log_msg(e->log, LOG_LEVEL_INFO, "ha: the lease client took the new [proxy] settings");
    else
        log_msg(e->log, LOG_LEVEL_ERROR,
                "ha: the lease client keeps its [proxy] settings: the new ones fail: %s", err.msg);
}

static int64_t jitter(const struct ha_election *e)
{
    if (e->o.jitter_ms <= 0)
        return 0;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)platform_monotonic_ms();
    return (int64_t)(r % (uint64_t)(e->o.jitter_ms + 1));
}

/* Sleep until the monotonic time `until`; returns true when asked to stop. */
static bool sleep_until(struct ha_election *e, int64_t until)
{
    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        int64_t now = now_ms(e);
        if (now >= until)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
    }
    bool stop = e->stop;
    pthread_mutex_unlock(&e->lock);
    return stop;
}

/* The one place the state changes (under lock); each transition is logged. */
static void set_state_locked(struct ha_election *e, enum ha_state s, const char *detail)
{
    if (e->state != s)
        log_msg(e->log, s == HA_STANDBY && e->state == HA_ACTIVE ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
                "ha: %s -> %s%s%s%s", state_names[e->state], state_names[s],
                detail != NULL ? " (" : "", detail != NULL ? detail : "",
                detail != NULL ? ")" : "");
    e->state = s;
    pthread_cond_broadcast(&e->cond);
}

static void set_state(struct ha_election *e, enum ha_state s, const char *detail)
{
    pthread_mutex_lock(&e->lock);
    set_state_locked(e, s, detail);
    pthread_mutex_unlock(&e->lock);
}

/* Remember an answer of the lease server (takes li's strings). */
static void note_seen(struct ha_election *e, struct lease_info *li)
{
    pthread_mutex_lock(&e->lock);
    lease_info_clear(&e->seen);
    e->seen = *li;
    memset(li, 0, sizeof(*li));
    e->observed = true;
    e->last_error[0] = '\0';
    e->last_code = DIRCONN_OK;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static void note_error(struct ha_election *e, const struct dirconn_error *err)
{
    pthread_mutex_lock(&e->lock);
    if (strcmp(e->last_error, err->msg) != 0)
        log_msg_limited(e->log, LOG_LEVEL_WARN, "ha: %s lease: %s", e->b.ops->name, err->msg);
    snprintf(e->last_error, sizeof(e->last_error), "%s", err->msg);
    e->last_code = err->code != DIRCONN_OK ? err->code : DIRCONN_ELEASE_SERVER;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Stop writing at once and stand by. */
static void fence(struct ha_election *e, const char *why)
{
    atomic_store(&e->deadline, 0);
    atomic_store(&e->token, 0);
    set_state(e, HA_STANDBY, why);
    if (e->role != NULL)
        e->role(e->role_arg, false, 0);
}

/*
 * The check every wake-up and every "am I active?" makes first: past its own
 * deadline (by the monotonic clock, counted from when the last successful
 * acquire or renew was sent), an active instance is a standby before it does
 * anything else: the gate closes, the episode is logged once (the thread that
 * closes the gate logs it), the state becomes STANDBY and the role callback
 * hears of it. Returns true when this instance may not write (the gate was
 * already closed, or it closed it now). Any thread.
 */
static bool fence_if_late(struct ha_election *e)
{
    for (;;) {
        int64_t d = atomic_load(&e->deadline);
        if (d == 0)
            return true;
        int64_t t = now_ms(e);
        if (t < d)
            return false;
        if (!atomic_compare_exchange_strong(&e->deadline, &d, 0))
            continue; /* renewed or closed meanwhile: look again */
        atomic_store(&e->token, 0);
        atomic_fetch_add(&e->self_fences, 1);
        log_msg(e->log, LOG_LEVEL_WARN,
                "ha: self-fenced: %lld ms past this instance's lease deadline (the lease "
                "less the %lld ms safety margin, counted from its last renewal request); "
                "writes stopped, standing by",
                (long long)(t - d), (long long)e->o.margin_ms);
        pthread_mutex_lock(&e->lock);
        if (e->state == HA_ACTIVE)
            set_state_locked(e, HA_STANDBY, "self-fenced");
        pthread_mutex_unlock(&e->lock);
        if (e->role != NULL)
            e->role(e->role_arg, false, 0);
        return true;
    }
}

static bool is_self(const struct ha_election *e, const char *holder)
{
    return holder != NULL && strcmp(holder, e->b.identity) == 0;
}

static void *election_main(void *arg)
{
    struct ha_election *e = arg;
    int64_t poll = e->o.renew_ms < 500 ? e->o.renew_ms : 500;
    int64_t expired_since = -1, next_renew = 0;
    /* When the lease last seen held by another instance runs out (local monotonic ms), 0 =
     * none: a lease that is free after that point expired rather than was released (etcd
     * deletes an expired key, so its "free" must be told apart this way). */
    int64_t other_until = 0;
    struct lease_info cand = {0}; /* what STANDBY saw when it decided to acquire */
    struct dirconn_error err;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        bool stop = e->stop;
        enum ha_state st = e->state;
        struct config *fresh = e->pending_cfg;
        e->pending_cfg = NULL;
        pthread_mutex_unlock(&e->lock);
        if (stop) {
            config_free(fresh);
            break;
        }
        if (fresh != NULL)
            reconfigure(e, fresh);
        if (st == HA_STANDBY) {
            struct lease_info li = {0};
            int64_t t0 = now_ms(e);
            dirconn_error_clear(&err);
            if (e->b.ops->observe(e->b.self, &li, &err) != DIRCONN_OK) {
                note_error(e, &err);
                lease_info_clear(&li);
                sleep_until(e, t0 + (e->o.renew_ms < 1000 ? e->o.renew_ms : 1000));
                continue;
            }
            bool mine = is_self(e, li.holder) && li.remaining_ms > 0 && !e->o.self_in_use;
            bool expired = li.holder != NULL && li.remaining_ms <= 0;
            if (li.holder == NULL && other_until > 0 && t0 >= other_until - 1000)
                expired = true; /* deleted on expiry (etcd), not released */
            if (li.holder != NULL && !is_self(e, li.holder) && li.remaining_ms > 0)
                other_until = t0 + li.remaining_ms;
            else if (li.holder == NULL && !expired)
                other_until = 0;
            int64_t remaining = li.remaining_ms;
            lease_info_clear(&cand);
            bool copied = lease_info_copy(&cand, &li);
            note_seen(e, &li);
            if (!copied) {
                sleep_until(e, t0 + poll);
                continue;
            }
            if (mine) {
                /* A restart while this instance held it: take it back at once. */
                set_state(e, HA_ACQUIRING, "this instance still holds the lease");
                continue;
            }
            if (cand.holder == NULL || expired) {
                int64_t wait = jitter(e);
                if (expired && (cand.holder == NULL || !is_self(e, cand.holder))) {
                    if (expired_since < 0)
                        expired_since = t0;
                    int64_t left = expired_since + e->o.failover_ms - now_ms(e);
                    wait += left > 0 ? left : 0;
                }
                if (wait > 0 && sleep_until(e, now_ms(e) + wait))
                    break;
                other_until = 0;
                set_state(e, HA_ACQUIRING, expired ? "the lease expired" : "the lease is free");
                continue;
            }
            expired_since = -1;
            sleep_until(e, t0 + (remaining + 20 < poll ? remaining + 20 : poll));
        } else if (st == HA_ACQUIRING) {
            struct lease_info li = {0};
            int64_t t0 = now_ms(e);
            dirconn_error_clear(&err);
            enum dirconn_err rc = e->b.ops->acquire(e->b.self, &cand, e->o.duration_ms, &li, &err);
            if (rc == DIRCONN_OK) {
                char why[64];
                int64_t token = li.token;
                snprintf(why, sizeof(why), "fencing token %lld", (long long)token);
                note_seen(e, &li);
                pthread_mutex_lock(&e->lock);
                /* The gate opens with the state (a self-fence moves both under this lock). */
                atomic_store(&e->token, token);
                atomic_store(&e->deadline, t0 + e->o.duration_ms - e->o.margin_ms);
                e->activations++;
                set_state_locked(e, HA_ACTIVE, why);
                pthread_mutex_unlock(&e->lock);
                next_renew = t0 + e->o.renew_ms;
                expired_since = -1;
                if (e->role != NULL)
                    e->role(e->role_arg, true, atomic_load(&e->token));
            } else {
                lease_info_clear(&li);
                if (rc != DIRCONN_ELEASE)
                    note_error(e, &err);
                set_state(e, HA_STANDBY, rc == DIRCONN_ELEASE ? "another instance took it" : NULL);
                /* Lost the race: look again shortly, not in a tight loop. */
                sleep_until(e, t0 + (rc != DIRCONN_ELEASE ? poll : (poll < 100 ? poll : 100)));
            }
        } else if (st == HA_ACTIVE) {
            /* First, on every wake-up: is this instance still within its lease? */
            if (fence_if_late(e)) {
                /* Closed by another thread: it moves the state under the lock meanwhile. */
                pthread_mutex_lock(&e->lock);
                bool still = e->state == HA_ACTIVE;
                pthread_mutex_unlock(&e->lock);
                if (still && sleep_until(e, now_ms(e) + 1))
                    break;
                continue;
            }
            int64_t deadline = atomic_load(&e->deadline);
            int64_t until = next_renew < deadline ? next_renew : deadline;
            if (sleep_until(e, until))
                break;
            if (fence_if_late(e))
                continue; /* woke past the deadline (SIGSTOP/SIGCONT, a slow host): no renewal */
            if (now_ms(e) < next_renew)
                continue; /* woke for the deadline check */
            struct lease_info li = {0};
            int64_t t0 = now_ms(e); /* the deadline counts from the request, not its answer */
            dirconn_error_clear(&err);
            enum dirconn_err rc = e->b.ops->renew(e->b.self, e->o.duration_ms, &li, &err);
            if (rc == DIRCONN_OK) {
                /* Only if the gate is still the one this renewal extends: a self-fence
                 * during the request stays (the lease is taken back through STANDBY). */
                int64_t expect = deadline;
                if (!atomic_compare_exchange_strong(&e->deadline, &expect,
                                                    t0 + e->o.duration_ms - e->o.margin_ms)) {
                    lease_info_clear(&li);
                    continue;
                }
                note_seen(e, &li);
                next_renew = t0 + e->o.renew_ms;
            } else if (rc == DIRCONN_ELEASE) {
                lease_info_clear(&li);
                char why[DIRCONN_ERROR_LEN + 32];
                snprintf(why, sizeof(why), "lost the lease: %s", err.msg);
                fence(e, why);
            } else {
                lease_info_clear(&li);
                note_error(e, &err);
                /* Retry soon, but stay within the deadline. */
                int64_t left = atomic_load(&e->deadline) - now_ms(e);
                next_renew = now_ms(e) + (left / 3 < 1000 ? (left / 3 > 50 ? left / 3 : 50) : 1000);
            }
        } else {
            break;
        }
    }
    lease_info_clear(&cand);
    return NULL;
}

enum dirconn_err ha_election_start(struct lease_backend *b, const struct ha_options *o,
                                   const struct log_sink *log, ha_role_fn role, void *arg,
                                   struct ha_election **out, struct dirconn_error *err)
{
    *out = NULL;
    struct ha_election *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    e->b = *b;
    memset(b, 0, sizeof(*b));
    e->o = *o;
    if (e->o.renew_ms <= 0)
        e->o.renew_ms = e->o.duration_ms / 3;
    if (e->o.margin_ms <= 0) {
        e->o.margin_ms = e->o.duration_ms / 10;
        if (e->o.margin_ms < 500)
            e->o.margin_ms = 500;
        if (e->o.margin_ms > 5000)
            e->o.margin_ms = 5000;
    }
    if (e->o.margin_ms >= e->o.duration_ms - e->o.renew_ms)
        e->o.margin_ms = (e->o.duration_ms - e->o.renew_ms) / 2;
    e->log = log;
    e->role = role;
    e->role_arg = arg;
    atomic_init(&e->deadline, 0);
    atomic_init(&e->token, 0);
    atomic_init(&e->self_fences, 0);
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    log_msg(log, o->one_shot ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
            "ha: %s lease for %s: duration %lld ms, renew every %lld ms, failover interval %lld "
            "ms, jitter %lld ms, safety margin %lld ms",
            e->b.ops->name, e->b.identity, (long long)e->o.duration_ms, (long long)e->o.renew_ms,
            (long long)e->o.failover_ms, (long long)e->o.jitter_ms, (long long)e->o.margin_ms);
    int rc = pthread_create(&e->thread, NULL, election_main, e);
    if (rc != 0) {
        ha_election_free(e);
        return dirconn_error_set(err, DIRCONN_EFAIL, "cannot start the election thread: %s",
                                 strerror(rc));
    }
    e->started = true;
    *out = e;
    return DIRCONN_OK;
}

enum dirconn_err ha_election_wait_active(struct ha_election *e, int64_t timeout_ms,
                                         struct dirconn_error *err)
{
    int64_t until = platform_monotonic_ms() + timeout_ms;
    enum dirconn_err rc = DIRCONN_OK;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        if (e->state == HA_ACTIVE)
            break;
        if (e->observed && e->state == HA_STANDBY && e->seen.holder != NULL &&
            (!is_self(e, e->seen.holder) || e->o.self_in_use) && e->seen.remaining_ms > 0) {
            rc = dirconn_error_set(
                err, DIRCONN_ELEASE,
                "the HA lease is held by connector %s%s (renewed %s, valid for another %lld s): "
                "that instance is the active one%s",
                e->seen.holder, is_self(e, e->seen.holder) ? ", this one" : "",
                e->seen.renewed_at ? e->seen.renewed_at : "?",
                (long long)(e->seen.remaining_ms + 999) / 1000,
                is_self(e, e->seen.holder) ? "; its dirconnd syncs: use dirconnctl sync-now" : "");
            break;
        }
        if (e->o.one_shot && e->last_error[0] != '\0' && e->state == HA_STANDBY) {
            /* One run: the lease server's failure is the answer (the cloud unreachable...). */
            rc = dirconn_error_set(err, e->last_code, "%s", e->last_error);
            break;
        }
        int64_t now = platform_monotonic_ms();
        if (now >= until) {
            if (e->last_error[0] != '\0')
                rc = dirconn_error_set(err, DIRCONN_ELEASE, "the HA lease could not be taken: %s",
                                       e->last_error);
            else
                rc = dirconn_error_set(err, DIRCONN_ELEASE,
                                       "the HA lease could not be taken within %lld ms",
                                       (long long)timeout_ms);
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

const _Atomic int64_t *ha_election_write_deadline(struct ha_election *e)
{
    return &e->deadline;
}

bool ha_election_is_active(struct ha_election *e)
{
    return !fence_if_late(e);
}

int64_t ha_election_token(struct ha_election *e)
{
    return atomic_load(&e->token);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void ha_election_status(struct ha_election *e, struct ha_status *s)
{
    memset(s, 0, sizeof(*s));
    if (e->started)
        fence_if_late(e); /* never show a role the deadline already ended */
    pthread_mutex_lock(&e->lock);
    s->state = e->state;
    s->self_fences = atomic_load(&e->self_fences);
    s->backend = e->b.ops != NULL ? e->b.ops->name : "none";
    s->identity = dup_or_null(e->b.identity);
    s->holder = dup_or_null(e->seen.holder);
    s->token = e->state == HA_ACTIVE ? atomic_load(&e->token) : e->seen.token;
    s->holder_since = dup_or_null(e->seen.acquired_at);
    s->last_renew = dup_or_null(e->seen.renewed_at);
    s->activations = e->activations;
    snprintf(s->last_error, sizeof(s->last_error), "%s", e->last_error);
    s->last_code = e->last_error[0] != '\0' ? e->last_code : DIRCONN_OK;
    pthread_mutex_unlock(&e->lock);
}

void ha_election_reconfigure(struct ha_election *e, struct config *cfg)
{
    pthread_mutex_lock(&e->lock);
    config_free(e->pending_cfg);
    e->pending_cfg = cfg;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

void ha_election_stop(struct ha_election *e, bool release)
{
    if (e == NULL || !e->started)
        return;
    /* The gate closes first: nothing is written once the release is under way. */
    bool was_active = atomic_load(&e->deadline) != 0;
    if (release)
        atomic_store(&e->deadline, 0);
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    e->started = false;
    pthread_mutex_lock(&e->lock);
    bool active = e->state == HA_ACTIVE;
    pthread_mutex_unlock(&e->lock);
    if (release && (active || was_active)) {
        set_state(e, HA_RELEASING, NULL);
        struct dirconn_error err;
        dirconn_error_clear(&err);
        if (e->b.ops->release(e->b.self, &err) == DIRCONN_OK)
            log_msg(e->log, LOG_LEVEL_INFO, "ha: lease released");
        else
            log_msg(e->log, LOG_LEVEL_WARN,
                    "ha: the lease could not be released (a standby takes it when it expires): %s",
                    err.msg);
    }
    atomic_store(&e->deadline, 0);
    set_state(e, HA_STOPPED, NULL);
}

void ha_election_free(struct ha_election *e)
{
    if (e == NULL)
        return;
    if (e->started)
        ha_election_stop(e, false);
    lease_info_clear(&e->seen);
    config_free(e->pending_cfg);
    lease_backend_free(&e->b);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

enum dirconn_err ha_election_lease_cause(void *arg, struct dirconn_error *err)
{
    struct ha_election *e = arg;
    struct ha_status hs;
    ha_election_status(e, &hs);
    enum dirconn_err rc = DIRCONN_ELEASE;
    if (strcmp(hs.backend, "cloud") == 0 &&
        (hs.last_code == DIRCONN_ECLOUD_CONNECT || hs.last_code == DIRCONN_EPROXY))
        rc = dirconn_error_set(err, hs.last_code,
                               "%s; so the HA lease could not be renewed and writes stopped",
                               hs.last_error);
    ha_status_clear(&hs);
    return rc;
}
