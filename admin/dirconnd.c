/*
 * dirconnd - the dirconn daemon.
 *
 * One libevent loop (the main thread) holds everything: the incremental
 * timer, the full-sync schedule, the change notification socket and its
 * debounce and reconnection timers, the signals (SIGTERM/SIGINT, SIGHUP) and
 * the admin socket. A sync runs on a worker thread (sync_run is blocking) so
 * the loop stays responsive (status, signals). With [ha] lease = cloud or
 * etcd, the election (ha/election.h) runs on its own thread: only the active
 * instance syncs; its role changes reach the loop through the ev_role user
 * event. A standby keeps its schedule and notifications but starts no sync. What the two threads
 * share is in struct shared, under its mutex: the progress of the running sync and its result. The
 * worker tells the loop it is done with event_active() on a user event (libevent's pthreads support
 * makes that thread-safe); nothing else crosses threads, apart from the atomic cancel flag that
 * SIGTERM sets.
 *
 * Admin socket protocol (JSON lines over a UNIX stream socket, mode 0600):
 * one request object per line, one response object per line:
 *   {"cmd":"status"}                         -> {"ok":true,"status":{...}}
 *   {"cmd":"sync","type":"incremental"|"full"} -> {"ok":true,"queued":"full"}
 *     with "override_threshold":true the next run may exceed the delete threshold, once;
 *     without "type" it is then the kind of run the threshold stopped last
 *   {"cmd":"pause"} / {"cmd":"resume"}      -> {"ok":true,"paused":bool}
 *   anything else                            -> {"ok":false,"error":"..."}
 */
#include "admin/admin_request.h"
#include "admin/daemon_socket.h"
#include "admin/web.h"
#include "admin/pwsync_listener.h"
#include "connector/core/platform.h"
#include "connector/core/config.h"
#include "connector/config_view.h"
#include "connector/dir_status.h"
#include "connector/core/error.h"
#include "connector/ldap_source.h"
#include "connector/core/log.h"
#include "connector/mailer.h"
#include "connector/metrics.h"
#include "connector/notify.h"
#include "connector/state.h"
#include "connector/sync.h"
#include "connector/sync_report.h"
#include "ha/election.h"
#include "ha/shared_state.h"
#include "proxy/proxy.h"
#include "proxy/proxy_px.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Daemon states (see set_state). */
enum dstate { D_STARTING = 0, D_IDLE, D_SYNCING, D_STOPPING };

/* What a sync request asks for; FULL outranks INCREMENTAL when both wait. */
enum request { REQ_NONE = 0, REQ_INCREMENTAL, REQ_FULL };

/*
 * What status and the notification connection need from the state database, read by whoever
 * may wait on SQLite (the worker after each run; the loop only before any worker exists, or
 * while none runs), never by the loop while the worker may hold a write transaction.
 */
struct state_snap {
    bool valid;              /* read at least once */
    struct state_history *h; /* the newest runs, newest first (state_history_list) */
    size_t n;
    long retries;          /* objects waiting for a retry, -1 unknown */
    char *base_dn;         /* the partition the cookie belongs to, or NULL */
    char *state_dir;       /* the state directory it was read from */
    unsigned char *cookie; /* the RFC 4533 cookie of base_dn, or NULL */
    size_t cookie_len;
    json_t *report;  /* the page's digest of the last run's report (web_report_digest), or NULL */
    long objects[3]; /* users, groups, contacts the connector has in the cloud; -1 unknown */
};

/* Shared between the loop and the worker; every field under lock. */
struct shared {
    pthread_mutex_t lock;
    char phase[32];
    long done, total;
    /* the worker's result, read by the loop after the done event */
    enum dirconn_err rc;
    struct sync_report res;
    char message[DIRCONN_ERROR_LEN];
    enum dirconn_origin origin; /* the library the error came from, and its code */
    long cause;
    struct state_snap snap; /* replaced whole by snap_install */
};

struct client;

struct daemon {
    const char *prog;
    char *config_path;
    struct config *cfg;     /* current; the worker's run keeps run_cfg alive */
    struct config *run_cfg; /* the config of the running sync (may be older than cfg) */
    struct log_sink log;
    struct event_base *base;
    struct event *ev_incr, *ev_full, *ev_done, *ev_term, *ev_int, *ev_hup, *ev_cont;
    struct event *ev_notify, *ev_debounce, *ev_notify_retry;
    struct evconnlistener *listener;
    char socket_path[108];
    enum dstate state;
    bool paused;
    enum request pending; /* asked for while a sync ran */
    enum request running; /* the running sync's kind */
    const char *trigger;  /* what started it: "schedule", "notification", "admin" */
    time_t started, next_incr, next_full;
    atomic_bool cancel;
    pthread_t worker;
    struct shared sh;
    struct notify *notify;
    int64_t notify_backoff_ms;
    unsigned long notifications;
    enum dirconn_err last_rc;           /* the last run's outcome, also when it failed before */
    char last_error[DIRCONN_ERROR_LEN]; /* being recorded in the history (cloud unreachable) */
    enum dirconn_origin last_origin;    /* where last_error came from (error.h) */
    long last_cause;                    /* the library's own code for it */
    time_t last_ended;
    /* HA (NULL when [ha] lease = none) */
    struct ha_election *ha;
    struct event *ev_role;
    bool active;   /* the loop's view: a sync may start */
    bool takeover; /* the next sync first continues from the shared state */
    char token[32];
    bool skip_first_sync; /* --no-initial-sync: the first activation starts no sync */
    bool override_next;   /* sync-now --override-threshold: the next run may exceed it, once */
    /* the cloud side of status: whether a run reached the cloud, the route its requests took */
    bool cloud_reached;
    char cloud_route[512];
    enum request threshold_kind; /* the kind of the last run the delete threshold stopped */
    struct client *clients;      /* open admin connections */
    struct config *ha_cfg;       /* the configuration the election started with (kept until exit:
                                    the lease client borrows its [ha] and [cloud]; SIGHUP hands it
                                    new [proxy] settings); start_cfg when HA runs */
    struct config *start_cfg;    /* the configuration dirconnd started with, kept until exit: what
                                    the keys of the restart class still hold (a reload compares) */
    struct proxy_shared *proxy_shared; /* dead proxies and logged routes, for every run and
                                          the lease client */
    /* The directory side: DC in use, last error, and the guard against blind re-binds. */
    struct dir_status *dir;
    struct dir_attempt sync_attempt; /* the running sync's bind attempt */
    bool sync_held, notify_held;     /* held back while the bind waits; started once it works */
    struct event *ev_bind_check;     /* while refused: has the configuration or password changed? */
    struct mailer *mailer;           /* [reports]: sync reports and alerts by email, or NULL */
    /* [web]: the status page and /metrics (admin/web.h) */
    struct metrics *metrics;
    struct web *web;
    time_t watermark_at; /* when a run last saved the watermark (at start: the last success) */
    /* change latency: the first notification of the changes no sync has carried yet, the one
     * the running sync carries (CLOCK_MONOTONIC ms, 0 = none), the last 50 (a ring) */
    int64_t change_first_ms, run_change_ms;
    struct {
        time_t ended;
        double seconds;
    } latency[WEB_LATENCY_MAX];
    size_t n_latency, latency_next;
    struct pwsync_listener *pwsync; /* [pwsync] listen (pwsync_listener.h), or NULL */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- state machine ------------------------------------------------------------- */

static const char *const state_names[] = {"starting", "idle", "syncing", "stopping"};

/*
 * set_state - the one place the daemon's state changes; each transition is logged.
 *
 *   STARTING -> IDLE      the loop is set up (socket, timers, notifications)
 *   IDLE     -> SYNCING   a timer, a notification (after the debounce) or sync-now
 *   SYNCING  -> IDLE      the worker finished; a pending request starts the next run
 *   IDLE     -> STOPPING  SIGTERM/SIGINT: the loop exits at once
 *   SYNCING  -> STOPPING  SIGTERM/SIGINT: the run ends after its batch in flight
 * Pause and resume do not change the state: they hold back timers and notifications.
 */
static void set_state(struct daemon *d, enum dstate s)
{
    if (d->state == s)
        return;
    log_msg(&d->log, LOG_LEVEL_DEBUG, "state: %s -> %s", state_names[d->state], state_names[s]);
    d->state = s;
}

/* ---- schedule ------------------------------------------------------------------- */

/* The next time at or after now + 1 minute matching the weekly schedule, or 0 for never. */
static time_t next_weekly(const struct config_weekly *w, time_t now)
{
    if (w->days == 0)
        return 0;
    struct tm tm;
    for (int day = 0; day < 8; day++) {
        time_t t = now + (time_t)day * 86400;
        localtime_r(&t, &tm);
        tm.tm_hour = w->minute / 60;
        tm.tm_min = w->minute % 60;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        time_t cand = mktime(&tm);
        localtime_r(&cand, &tm);
        if (cand > now && (w->days & (1u << tm.tm_wday)))
            return cand;
    }
    return 0;
}

static void arm(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

static void schedule_incremental(struct daemon *d)
{
    d->next_incr = time(NULL) + (time_t)(d->cfg->incremental_interval_ms / 1000);
    arm(d->ev_incr, d->cfg->incremental_interval_ms);
}

static void schedule_full(struct daemon *d)
{
    evtimer_del(d->ev_full);
    time_t now = time(NULL);
    d->next_full = next_weekly(&d->cfg->full_sync, now);
    if (d->next_full != 0)
        arm(d->ev_full, ((int64_t)(d->next_full - now)) * 1000);
}

/* ---- the state snapshot ------------------------------------------------------------ */

static void snap_clear(struct state_snap *sn)
{
    state_history_free(sn->h, sn->n);
    free(sn->base_dn);
    free(sn->state_dir);
    free(sn->cookie);
    json_decref(sn->report);
    memset(sn, 0, sizeof(*sn));
}

/* Read what status and notifications need from cfg's state database (may wait on SQLite). */
static void snap_read(const struct config *cfg, struct state_snap *sn)
{
    memset(sn, 0, sizeof(*sn));
    sn->retries = -1;
    struct state *st = NULL;
    struct dirconn_error err;
    if (state_open(cfg->state_dir, &st, &err) != DIRCONN_OK)
        return;
    sn->state_dir = strdup(cfg->state_dir);
    if (state_history_list(st, 50, &sn->h, &sn->n, &err) != DIRCONN_OK) {
        sn->h = NULL;
        sn->n = 0;
    }
    sn->retries = state_retry_count(st);
    for (int k = 0; k < 3; k++)
        sn->objects[k] = state_object_count(st, k);
    /* The watermark of the synchronised partition; any one works for a notification. */
    struct state_watermark wm = {0};
    bool found = false;
    if (cfg->base_dn != NULL &&
        state_watermark_get(st, cfg->base_dn, &wm, &found, &err) == DIRCONN_OK && found &&
        wm.method != NULL && strcmp(wm.method, "syncrepl") == 0 && wm.len > 0) {
        sn->cookie = malloc(wm.len);
        if (sn->cookie != NULL) {
            memcpy(sn->cookie, wm.value, wm.len);
            sn->cookie_len = wm.len;
        }
    }
    if (cfg->base_dn != NULL)
        sn->base_dn = strdup(cfg->base_dn);
    state_watermark_clear(&wm);
    state_close(st);
    char rp[4200];
    if (web_report_path(cfg, false, rp, sizeof(rp)) != NULL)
        sn->report = web_report_digest(rp);
    sn->valid = sn->state_dir != NULL;
}

/* Put a snapshot read by snap_read in place of the shared one (fresh is emptied). */
static void snap_install(struct shared *sh, struct state_snap *fresh)
{
    struct state_snap old;
    pthread_mutex_lock(&sh->lock);
    old = sh->snap;
    sh->snap = *fresh;
    pthread_mutex_unlock(&sh->lock);
    memset(fresh, 0, sizeof(*fresh));
    snap_clear(&old);
}

/* ---- the worker ------------------------------------------------------------------ */

static void on_progress(void *arg, const char *phase, long done, long total)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->sh.lock);
    snprintf(d->sh.phase, sizeof(d->sh.phase), "%s", phase);
    d->sh.done = done;
    d->sh.total = total;
    pthread_mutex_unlock(&d->sh.lock);
}

struct job {
    struct daemon *d;
    struct config *cfg;
    enum sync_mode mode;
    bool ha;         /* under the HA lease */
    bool takeover;   /* first sync after becoming active */
    char token[32];  /* fencing token, "" = none */
    bool send_token; /* the cloud checks the token on SCIM writes (cloud backend) */
    int64_t token_n;
    bool override_threshold; /* sync-now --override-threshold */
    /* the run's problems for the report mail: the first MAILER_MAX_PROBLEMS, and how many */
    char *problems[MAILER_MAX_PROBLEMS];
    size_t n_problems;
    long problems_total;
};

/* sync_options.on_problem, on the worker: keep the first problems for the report mail. */
static void on_problem(void *arg, const char *dn, const char *message)
{
    struct job *j = arg;
    j->problems_total++;
    if (j->n_problems == MAILER_MAX_PROBLEMS)
        return;
    /* the guide's messages name the DN themselves; others get it in front */
    bool named = dn[0] == '\0' || strstr(message, dn) != NULL;
    size_t len = strlen(dn) + strlen(message) + 3;
    char *line = malloc(len);
    if (line == NULL)
        return;
    if (named)
        snprintf(line, len, "%s", message);
    else
        snprintf(line, len, "%s: %s", dn, message);
    j->problems[j->n_problems++] = line;
}

/* On the worker: hand the finished run to the mailer (it only queues; never waits). */
static void mail_run(struct job *j, enum dirconn_err rc, const struct sync_report *res,
                     const char *message, const char *summary)
{
    struct mailer_run run = {
        .full = !res->incremental,
        .rc = rc,
        .message = message,
        .summary = summary,
        .added = res->added,
        .updated = res->updated,
        .deleted = res->deleted,
        .failed = res->failed,
        .seconds = res->seconds,
        .ended = time(NULL),
        .problems = (const char *const *)j->problems,
        .n_problems = j->n_problems,
        .problems_total = j->problems_total,
    };
    mailer_sync_done(j->d->mailer, &run);
    for (size_t i = 0; i < j->n_problems; i++)
        free(j->problems[i]);
    j->n_problems = 0;
}

/*
 * HA, on the worker: continue from the shared state before the first sync
 * after a takeover, publish the watermarks after an acknowledged sync. The
 * worker uses its own backend (a backend serves one thread). Returns false
 * when the sync must not run.
 */
static bool shared_state(struct job *j, bool before, const struct sync_report *res,
                         enum ha_import *what)
{
    if (!before && !res->watermark_saved)
        return true;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err e = ha_shared_step(j->cfg, &j->d->log, j->d->proxy_shared, before, j->token_n,
                                        before ? NULL : j->d->ha, what, &err);
    if (e != DIRCONN_OK)
        log_msg_limited(&j->d->log, LOG_LEVEL_ERROR, "ha: shared state %s: %s",
                        before ? "not read, the sync waits" : "not written", err.msg);
    return e == DIRCONN_OK;
}

static void *worker_main(void *arg)
{
    struct job *j = arg;
    struct daemon *d = j->d;
    char report_json[4200], report_csv[4200]; /* the plan of this run, for the status page */
    struct sync_options o = {
        .report_path = web_report_path(j->cfg, false, report_json, sizeof(report_json)),
        .report_csv_path = web_report_path(j->cfg, true, report_csv, sizeof(report_csv)),
        .mode = j->mode,
        .cancel = &d->cancel,
        .on_progress = on_progress,
        .progress_arg = d,
        .fencing_token = j->ha && j->send_token ? j->token : NULL,
        .write_deadline_ms = j->ha ? ha_election_write_deadline(d->ha) : NULL,
        .override_threshold = j->override_threshold,
        .override_command = "dirconnctl sync-now --override-threshold",
        .lease_cause = j->ha ? ha_election_lease_cause : NULL,
        .lease_cause_arg = d->ha,
        .proxy_shared = d->proxy_shared,
        .on_problem = d->mailer != NULL ? on_problem : NULL,
        .problem_arg = j,
        .observe_scim = metrics_scim_request,
        .observe_arg = d->metrics,
    };
    struct sync_report res;
    memset(&res, 0, sizeof(res));
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = DIRCONN_OK;
    enum ha_import what = HA_IMPORT_CURRENT;
    if (j->ha && j->takeover && !shared_state(j, true, NULL, &what))
        rc = dirconn_error_set(&err, DIRCONN_ELEASE,
                               "the shared state could not be read; the sync waits for the next "
                               "attempt");
    /* Another instance synchronised since this one's state was current (or the first sync
     * after that takeover did not complete): the object map (which cloud object each
     * directory object is) is behind, and a partial plan would trust it. An incremental
     * first rebuilds it from the cloud's inventory, then runs from the shared watermark
     * (sync_run logs both); without a watermark that applies, it runs in full. */
    if (rc == DIRCONN_OK && (what == HA_IMPORT_TAKEN || what == HA_IMPORT_PENDING))
        o.rebuild_map = true;
    if (rc == DIRCONN_OK)
        rc = sync_run(j->cfg, &d->log, &o, &res, &err);
    if (j->ha && (rc == DIRCONN_OK || rc == DIRCONN_EFAIL))
        shared_state(j, false, &res, NULL);
    if (j->ha && (!res.incremental || res.map_rebuilt) &&
        (rc == DIRCONN_OK || rc == DIRCONN_EFAIL)) {
        struct dirconn_error ferr;
        dirconn_error_clear(&ferr);
        if (ha_shared_full_done(j->cfg, &ferr) != DIRCONN_OK)
            log_msg(&d->log, LOG_LEVEL_WARN, "ha: %s", ferr.msg);
    }
    /* The summary lines, as dirconnctl prints them (sync_report.h). */
    char *summary = sync_report_text(&res);
    if (d->mailer != NULL)
        mail_run(j, rc, &res, rc == DIRCONN_OK ? "" : err.msg, summary);
    /* The summary lines go to the log. */
    for (char *line = summary, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        log_msg(&d->log, LOG_LEVEL_INFO, "%s", line);
    }
    free(summary);
    /* What status shows of this run, read here where waiting on SQLite blocks no one. */
    struct state_snap sn;
    snap_read(j->cfg, &sn);
    snap_install(&d->sh, &sn);
    pthread_mutex_lock(&d->sh.lock);
    d->sh.rc = rc;
    d->sh.res = res;
    snprintf(d->sh.message, sizeof(d->sh.message), "%s", rc == DIRCONN_OK ? "" : err.msg);
    d->sh.origin = rc == DIRCONN_OK ? DIRCONN_ORIGIN_NONE : err.origin;
    d->sh.cause = rc == DIRCONN_OK ? 0 : err.cause;
    pthread_mutex_unlock(&d->sh.lock);
    free(j);
    event_active(d->ev_done, EV_READ, 0);
    return NULL;
}

static void start_sync(struct daemon *d, enum request what, const char *trigger)
{
    if (!dir_status_begin(d->dir, &d->sync_attempt)) {
        /* The bind was refused (or its one retry runs on the notification connection). */
        d->sync_held = true;
        log_msg(&d->log, LOG_LEVEL_DEBUG, "the %s sync (%s) is held back: the directory bind %s",
                what == REQ_FULL ? "full" : "incremental", trigger,
                dir_status_refused(d->dir) ? "was refused" : "is being tried");
        return;
    }
    d->sync_held = false;
    struct job *j = malloc(sizeof(*j));
    if (j == NULL) {
        dir_status_end(d->dir, &d->sync_attempt, DIRCONN_OK, NULL, false, NULL);
        log_msg(&d->log, LOG_LEVEL_ERROR, "out of memory starting a sync");
        return;
    }
    *j = (struct job){.d = d,
                      .cfg = d->cfg,
                      .mode = what == REQ_FULL ? SYNC_FULL : SYNC_INCREMENTAL,
                      .override_threshold = d->override_next};
    if (d->override_next)
        log_msg(&d->log, LOG_LEVEL_INFO, "this run may exceed the delete threshold, once");
    d->override_next = false;
    if (d->ha != NULL) {
        j->ha = true;
        j->takeover = d->takeover;
        j->token_n = ha_election_token(d->ha);
        snprintf(j->token, sizeof(j->token), "%lld", (long long)j->token_n);
        struct ha_status hs;
        ha_election_status(d->ha, &hs);
        j->send_token = strcmp(hs.backend, "cloud") == 0;
        ha_status_clear(&hs);
    }
    atomic_store(&d->cancel, false);
    d->run_cfg = d->cfg;
    d->running = what;
    d->trigger = trigger;
    d->started = time(NULL);
    d->run_change_ms = d->change_first_ms; /* this run reads the changes notified so far */
    d->change_first_ms = 0;
    on_progress(d, "starting", 0, 0);
    evtimer_del(d->ev_incr);
    d->next_incr = 0;
    set_state(d, D_SYNCING);
    log_msg(&d->log, LOG_LEVEL_INFO, "%s sync started (%s)",
            what == REQ_FULL ? "full" : "incremental", trigger);
    platform_notify(what == REQ_FULL ? "STATUS=full sync running"
                                     : "STATUS=incremental sync running");
    int rc = pthread_create(&d->worker, NULL, worker_main, j);
    if (rc != 0) {
        free(j);
        dir_status_end(d->dir, &d->sync_attempt, DIRCONN_OK, NULL, false, NULL);
        log_msg(&d->log, LOG_LEVEL_ERROR, "cannot start the sync thread: %s", strerror(rc));
        set_state(d, D_IDLE);
        schedule_incremental(d);
    }
}

static bool ha_active_now(struct daemon *d);

/* Ask for a sync: at once when idle, after the running one otherwise. */
static void request_sync(struct daemon *d, enum request what, const char *trigger, bool forced)
{
    if (d->state == D_STOPPING)
        return;
    if (d->ha != NULL && !ha_active_now(d)) {
        log_msg(&d->log, LOG_LEVEL_DEBUG,
                "standby: the %s sync (%s) is left to the active instance",
                what == REQ_FULL ? "full" : "incremental", trigger);
        return;
    }
    if (d->paused && !forced) {
        log_msg(&d->log, LOG_LEVEL_DEBUG, "paused: the %s sync (%s) is not started",
                what == REQ_FULL ? "full" : "incremental", trigger);
        return;
    }
    if (d->state == D_SYNCING) {
        if (what > d->pending)
            d->pending = what;
        return;
    }
    start_sync(d, what, trigger);
}

static void notify_start(struct daemon *d);

/* The metrics of a finished run (connector/metrics.h). */
static void count_run(struct daemon *d, enum dirconn_err rc, const struct sync_report *res)
{
    bool ran = rc == DIRCONN_OK || rc == DIRCONN_EFAIL || rc == DIRCONN_ETHRESHOLD;
    struct metrics_run run = {
        .full = ran ? !res->incremental : d->running == REQ_FULL,
        .outcome = rc == DIRCONN_OK           ? "success"
                   : rc == DIRCONN_EFAIL      ? "failed"
                   : rc == DIRCONN_ETHRESHOLD ? "threshold"
                                              : "error",
        .seconds = res->seconds > 0 ? res->seconds : (double)(time(NULL) - d->started),
        .ended = time(NULL),
    };
    for (int k = 0; k < OBJECT_KINDS; k++) {
        run.objects[k][METRICS_ADDED] = res->added_by_kind[k];
        run.objects[k][METRICS_UPDATED] = res->updated_by_kind[k];
        run.objects[k][METRICS_DELETED] = res->deleted_by_kind[k];
        run.objects[k][METRICS_FAILED] = res->failed_by_kind[k];
        run.objects[k][METRICS_SKIPPED] = ran ? res->plan.skipped_by_kind[k] : 0;
    }
    metrics_run_done(d->metrics, &run);
    if (res->watermark_saved)
        d->watermark_at = run.ended;
    if (d->run_change_ms != 0 && rc == DIRCONN_OK) {
        double s = (double)(mono_ms() - d->run_change_ms) / 1000.0;
        metrics_change_latency(d->metrics, s);
        d->latency[d->latency_next].ended = run.ended;
        d->latency[d->latency_next].seconds = s;
        d->latency_next = (d->latency_next + 1) % WEB_LATENCY_MAX;
        if (d->n_latency < WEB_LATENCY_MAX)
            d->n_latency++;
    } else if (d->run_change_ms != 0 && d->change_first_ms == 0) {
        d->change_first_ms = d->run_change_ms; /* not carried: the next run does */
    }
    d->run_change_ms = 0;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    pthread_join(d->worker, NULL);
    pthread_mutex_lock(&d->sh.lock);
    enum dirconn_err rc = d->sh.rc;
    struct sync_report res = d->sh.res;
    char message[DIRCONN_ERROR_LEN];
    snprintf(message, sizeof(message), "%s", d->sh.message);
    enum dirconn_origin origin = d->sh.origin;
    long cause = d->sh.cause;
    pthread_mutex_unlock(&d->sh.lock);
    if (rc == DIRCONN_OK)
        log_msg(&d->log, LOG_LEVEL_INFO,
                "%s sync done in %.1f s: %ld added, %ld updated, %ld deleted",
                res.incremental ? "incremental" : "full", res.seconds, res.added, res.updated,
                res.deleted);
    else if (rc != DIRCONN_ELDAP_AUTH) /* a refused bind: dir_status logs it, once */
        log_msg_limited(&d->log, rc == DIRCONN_ECANCELED ? LOG_LEVEL_WARN : LOG_LEVEL_ERROR,
                        "sync ended: %s", message);
    dir_status_end(d->dir, &d->sync_attempt, rc, message, res.directory[0] != '\0', res.directory);
    count_run(d, rc, &res);
    d->last_rc = rc;
    d->last_ended = time(NULL);
    /* The takeover is done once the shared state was read and a sync ran on it. */
    if (rc == DIRCONN_OK || rc == DIRCONN_EFAIL || rc == DIRCONN_ETHRESHOLD)
        d->takeover = false;
    if (rc == DIRCONN_ETHRESHOLD)
        d->threshold_kind = d->running;
    if (res.cloud_reached)
        d->cloud_reached = true;
    if (res.proxy_route[0] != '\0')
        snprintf(d->cloud_route, sizeof(d->cloud_route), "%s", res.proxy_route);
    snprintf(d->last_error, sizeof(d->last_error), "%s", rc == DIRCONN_OK ? "" : message);
    d->last_origin = rc == DIRCONN_OK ? DIRCONN_ORIGIN_NONE : origin;
    d->last_cause = rc == DIRCONN_OK ? 0 : cause;
    if (d->run_cfg != d->cfg && d->run_cfg != d->start_cfg)
        config_free(d->run_cfg); /* replaced by a reload during the run */
    d->run_cfg = NULL;
    d->running = REQ_NONE;
    if (d->state == D_STOPPING) {
        event_base_loopexit(d->base, NULL);
        return;
    }
    set_state(d, D_IDLE);
    platform_notify("STATUS=idle");
    schedule_incremental(d);
    if (d->notify_held)
        notify_start(d); /* held back while this sync's bind was the one attempt */
    enum request next = d->pending;
    d->pending = REQ_NONE;
    if (next != REQ_NONE)
        request_sync(d, next, "queued", true);
}

static void on_incr_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    request_sync(d, REQ_INCREMENTAL, "schedule", false);
    if (d->state != D_SYNCING)
        schedule_incremental(d);
}

static void on_full_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    request_sync(d, REQ_FULL, "schedule", false);
    schedule_full(d);
}

/* ---- HA ------------------------------------------------------------------------------ */

static void notify_start(struct daemon *d);
static void notify_stop(struct daemon *d);

/* On the election thread: hand the change over to the loop. */
static void on_role_change(void *arg, bool active, int64_t token)
{
    (void)token;
    struct daemon *d = arg;
    if (!active)
        atomic_store(&d->cancel, true); /* the running sync stops at once, not when the loop runs */
    event_active(d->ev_role, EV_READ, 0);
}

/* On the loop: follow the election's view. */
static void on_role(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    bool active = ha_election_is_active(d->ha);
    if (active == d->active)
        return;
    d->active = active;
    if (active) {
        snprintf(d->token, sizeof(d->token), "%lld", (long long)ha_election_token(d->ha));
        log_msg(&d->log, LOG_LEVEL_INFO, "active (fencing token %s): syncing", d->token);
        platform_notify("STATUS=active");
        d->takeover = true;
        mailer_set_active(d->mailer, true);
        if (!d->skip_first_sync)
            request_sync(d, REQ_INCREMENTAL, "takeover", true);
        d->skip_first_sync = false;
        notify_start(d);
    } else {
        d->token[0] = '\0';
        d->pending = REQ_NONE;
        log_msg(&d->log, LOG_LEVEL_WARN, "standby: %s",
                d->state == D_SYNCING ? "the running sync stops after its batch in flight"
                                      : "no sync starts here until this instance is active");
        platform_notify("STATUS=standby");
        if (d->mailer != NULL) {
            struct dirconn_error cause;
            dirconn_error_clear(&cause);
            bool known = ha_election_lease_cause(d->ha, &cause) != DIRCONN_ELEASE;
            char why[DIRCONN_ERROR_LEN + 128];
            snprintf(why, sizeof(why), "the HA lease was lost: this instance is standby%s%s",
                     known ? "; " : "", known ? cause.msg : "");
            mailer_lease_lost(d->mailer, why);
            mailer_set_active(d->mailer, false);
        }
        notify_stop(d);
        dir_status_notify(d->dir, DIR_NOTIFY_STANDBY, NULL, NULL, 0);
        evtimer_del(d->ev_notify_retry);
        evtimer_del(d->ev_debounce);
        if (d->state == D_SYNCING)
            atomic_store(&d->cancel, true);
    }
}

/*
 * The loop's "am I active?": the election's answer, which self-fences first
 * when the lease deadline passed (a process resumed after a long SIGSTOP, a
 * loop that was blocked); the loop follows it at once rather than when the
 * role event arrives. Every sync start, status and SIGCONT asks this.
 */
static bool ha_active_now(struct daemon *d)
{
    if (d->ha == NULL)
        return d->active;
    if (d->active && !ha_election_is_active(d->ha))
        on_role(-1, 0, d);
    return d->active;
}

/* SIGCONT: resumed after a stop; look at the lease deadline before anything else runs. */
static void on_cont(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ha_active_now(arg);
}

/* Start the election ([ha] lease = cloud or etcd); false on a fatal error. */
static bool ha_start(struct daemon *d)
{
    struct lease_backend b;
    struct dirconn_error err;
    enum dirconn_err e = ha_backend_new(d->cfg, &d->log, d->proxy_shared, NULL, &b, &err);
    if (e != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "ha: %s", err.msg);
        d->last_rc = e;
        return false;
    }
    if (b.ops == NULL) {
        d->active = true; /* [ha] lease = none: a single instance */
        return true;
    }
    struct ha_options o;
    ha_options_from_config(d->cfg, &o);
    d->ev_role = event_new(d->base, -1, 0, on_role, d);
    if (d->ev_role == NULL) {
        lease_backend_free(&b);
        return false;
    }
    d->ha_cfg = d->cfg; /* borrowed by the backend until exit */
    e = ha_election_start(&b, &o, &d->log, on_role_change, d, &d->ha, &err);
    if (e != DIRCONN_OK) {
        lease_backend_free(&b);
        log_msg(&d->log, LOG_LEVEL_ERROR, "ha: %s", err.msg);
        return false;
    }
    return true;
}

/* pwsync_role_fn: what the password listener needs of the HA role (loop thread). */
static void pwsync_role(void *arg, struct pwsync_role *r)
{
    struct daemon *d = arg;
    r->active = ha_active_now(d);
    if (d->ha == NULL) {
        snprintf(r->self, sizeof(r->self), "%s", d->cfg->name);
        snprintf(r->holder, sizeof(r->holder), "%s", d->cfg->name);
        return;
    }
    struct ha_status hs = {0};
    ha_election_status(d->ha, &hs);
    snprintf(r->self, sizeof(r->self), "%s", hs.identity != NULL ? hs.identity : "");
    snprintf(r->holder, sizeof(r->holder), "%s", hs.holder != NULL ? hs.holder : "");
    ha_status_clear(&hs);
    if (r->active) {
        snprintf(r->fencing_token, sizeof(r->fencing_token), "%s", d->token);
        r->write_deadline_ms = ha_election_write_deadline(d->ha);
    }
}

static json_t *ha_json(struct daemon *d)
{
    if (d->ha == NULL)
        return json_pack("{s:s, s:s, s:s}", "backend", "none", "role", "active", "state", "active");
    struct ha_status hs;
    ha_election_status(d->ha, &hs);
    json_t *o = json_pack(
        "{s:s, s:s?, s:s, s:s, s:s?, s:I, s:s?, s:s?, s:I, s:s?}", "backend", hs.backend,
        "identity", hs.identity, "role", d->active ? "active" : "standby", "state",
        ha_state_name(hs.state), "holder", hs.holder, "fencing_token", (json_int_t)hs.token,
        "holder_since", hs.holder_since, "last_renew", hs.last_renew, "activations",
        (json_int_t)hs.activations, "error", hs.last_error[0] ? hs.last_error : NULL);
    if (o != NULL)
        json_object_set_new(o, "self_fences", json_integer(hs.self_fences));
    ha_status_clear(&hs);
    return o;
}

/* ---- change notifications ------------------------------------------------------------ */

static void notify_start(struct daemon *d);

static void notify_stop(struct daemon *d)
{
    if (d->ev_notify != NULL) {
        event_free(d->ev_notify);
        d->ev_notify = NULL;
    }
    notify_close(d->notify);
    d->notify = NULL;
}

static void notify_failed(struct daemon *d, const char *why)
{
    notify_stop(d);
    log_msg(&d->log, LOG_LEVEL_WARN, "change notifications: %s; reconnecting in %lld ms", why,
            (long long)d->notify_backoff_ms);
    dir_status_notify(d->dir, DIR_NOTIFY_RECONNECTING, NULL, why,
                      time(NULL) + (time_t)((d->notify_backoff_ms + 999) / 1000));
    arm(d->ev_notify_retry, d->notify_backoff_ms);
    d->notify_backoff_ms *= 2;
    if (d->notify_backoff_ms > d->cfg->daemon_notify_retry_max_ms)
        d->notify_backoff_ms = d->cfg->daemon_notify_retry_max_ms;
}

static void on_notify_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    unsigned long changes = 0;
    struct dirconn_error err;
    enum dirconn_err e = notify_drain(d->notify, &changes, &err);
    if (changes > 0) {
        if (d->change_first_ms == 0)
            d->change_first_ms = mono_ms();
        d->notifications += changes;
        d->notify_backoff_ms = 1000; /* the connection works */
        log_msg(&d->log, LOG_LEVEL_DEBUG, "%lu change notifications; syncing in %lld ms", changes,
                (long long)d->cfg->daemon_debounce_ms);
        /* Debounce: changes come in bursts; the timer restarts with each. */
        arm(d->ev_debounce, d->cfg->daemon_debounce_ms);
    }
    if (e != DIRCONN_OK)
        notify_failed(d, err.msg);
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    request_sync(arg, REQ_INCREMENTAL, "notification", false);
}

static void on_notify_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notify_start(arg);
}

/*
 * The RFC 4533 cookie of the last sync, to start the persistent search from: from the
 * snapshot the last run (or the start) read. When it belongs to another partition or state
 * directory (a reload changed them), it is read again now, unless a sync runs (its end
 * starts the held notifications again).
 */
static unsigned char *saved_cookie(struct daemon *d, size_t *len)
{
    *len = 0;
    const char *base = d->cfg->base_dn;
    pthread_mutex_lock(&d->sh.lock);
    const struct state_snap *sn = &d->sh.snap;
    bool current = sn->valid && strcmp(sn->state_dir, d->cfg->state_dir) == 0 &&
                   ((sn->base_dn == NULL && base == NULL) ||
                    (sn->base_dn != NULL && base != NULL && strcmp(sn->base_dn, base) == 0));
    pthread_mutex_unlock(&d->sh.lock);
    if (!current && d->running == REQ_NONE) {
        struct state_snap fresh;
        snap_read(d->cfg, &fresh);
        snap_install(&d->sh, &fresh);
        current = true;
    }
    unsigned char *out = NULL;
    pthread_mutex_lock(&d->sh.lock);
    if (current && sn->cookie != NULL && (out = malloc(sn->cookie_len)) != NULL) {
        memcpy(out, sn->cookie, sn->cookie_len);
        *len = sn->cookie_len;
    }
    pthread_mutex_unlock(&d->sh.lock);
    return out;
}

static void notify_start(struct daemon *d)
{
    if (!d->cfg->notifications || !d->active) {
        dir_status_notify(d->dir, d->cfg->notifications ? DIR_NOTIFY_STANDBY : DIR_NOTIFY_OFF, NULL,
                          NULL, 0);
        return;
    }
    if (d->notify != NULL)
        return;
    struct dir_attempt a;
    if (!dir_status_begin(d->dir, &a)) {
        /* The bind was refused, or its one retry runs in a sync: wait for the outcome. */
        d->notify_held = true;
        dir_status_notify(d->dir, DIR_NOTIFY_HELD, NULL,
                          dir_status_refused(d->dir) ? "the directory refused the bind" : NULL, 0);
        return;
    }
    d->notify_held = false;
    size_t len = 0;
    unsigned char *cookie = saved_cookie(d, &len);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err e = notify_open(d->cfg, &d->log, cookie, len, &d->notify, &err);
    free(cookie);
    /* A search the DC refused or cannot do (yet) still bound: the credentials work. */
    bool bound = e == DIRCONN_OK || e == DIRCONN_ELDAP || e == DIRCONN_ELDAP_UNSUPPORTED ||
                 e == DIRCONN_EWATERMARK;
    dir_status_end(d->dir, &a, bound ? DIRCONN_OK : e, err.msg, bound,
                   d->notify != NULL ? notify_url(d->notify) : NULL);
    if (bound && d->sync_held) /* held back while this bind was the one attempt */
        request_sync(d, REQ_INCREMENTAL, "bind accepted", false);
    if (e == DIRCONN_ELDAP_UNSUPPORTED) {
        log_msg(&d->log, LOG_LEVEL_WARN, "%s; only the periodic incremental sync runs", err.msg);
        dir_status_notify(d->dir, DIR_NOTIFY_UNSUPPORTED, NULL, err.msg, 0);
        return;
    }
    if (e == DIRCONN_EWATERMARK) {
        /* RFC 4533 without a cookie yet: the first sync saves one, then on_done starts again. */
        d->notify_held = true;
        log_msg(&d->log, LOG_LEVEL_INFO, "change notifications: %s", err.msg);
        dir_status_notify(d->dir, DIR_NOTIFY_HELD, NULL, err.msg, 0);
        return;
    }
    if (e == DIRCONN_ELDAP_AUTH) {
        /* No reconnection timer: the next bind waits for a change (dir_status). */
        d->notify_held = true;
        dir_status_notify(d->dir, DIR_NOTIFY_HELD, NULL, err.msg, 0);
        return;
    }
    if (e != DIRCONN_OK) {
        notify_failed(d, err.msg);
        return;
    }
    d->ev_notify =
        event_new(d->base, notify_fd(d->notify), EV_READ | EV_PERSIST, on_notify_readable, d);
    if (d->ev_notify == NULL || event_add(d->ev_notify, NULL) != 0) {
        notify_failed(d, "cannot watch the connection");
    } else {
        dir_status_notify(d->dir, DIR_NOTIFY_CONNECTED, notify_method(d->notify), NULL, 0);
        on_notify_readable(-1, EV_READ, d); /* messages that arrived with the handshake */
    }
}

/*
 * The directory refused the bind: try once more because of why (SIGHUP, a changed
 * configuration or password). The notification connection makes the attempt when it
 * is wanted (a success then starts the held sync); else an incremental sync does.
 */
static void dir_retry(struct daemon *d, const char *why)
{
    if (!dir_status_rearm(d->dir, why))
        return;
    if (d->cfg->notifications && d->active) {
        notify_stop(d);
        evtimer_del(d->ev_notify_retry);
        d->notify_backoff_ms = 1000;
        notify_start(d);
    } else {
        request_sync(d, REQ_INCREMENTAL, why, false);
    }
}

/* ---- status ---------------------------------------------------------------------- */

/* An outcome of a run that says the cloud side fails (not the directory, the state...). */
static bool cloud_failure(enum dirconn_err rc)
{
    return rc == DIRCONN_ECLOUD_CONNECT || rc == DIRCONN_ECLOUD_AUTH || rc == DIRCONN_ECLOUD ||
           rc == DIRCONN_EPROXY || rc == DIRCONN_ENOTREGISTERED;
}

/*
 * The cloud side of status: "state" ok (the last run reached the cloud), error (the last run
 * failed on the cloud or the proxy, or the cloud lease server fails now) or unknown (no run
 * reached it yet); "error", "lease_error", the proxy mode and the route the last run's
 * requests took. *failing tells status_json that the overall word cannot be ok.
 */
static json_t *cloud_json(struct daemon *d, bool *failing)
{
    const struct config *cfg = d->cfg;
    const char *error = d->last_ended != 0 && cloud_failure(d->last_rc) ? d->last_error : NULL;
    struct ha_status hs;
    memset(&hs, 0, sizeof(hs));
    if (d->ha != NULL)
        ha_election_status(d->ha, &hs);
    const char *lease_error =
        d->ha != NULL && strcmp(hs.backend, "cloud") == 0 && hs.last_error[0] != '\0'
            ? hs.last_error
            : NULL;
    *failing = error != NULL || lease_error != NULL;
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s?}", "state",
                          *failing           ? "error"
                          : d->cloud_reached ? "ok"
                                             : "unknown",
                          "url", cfg->cloud_scim_url != NULL ? cfg->cloud_scim_url : cfg->cloud_url,
                          "error", error, "lease_error", lease_error, "proxy_mode",
                          proxy_mode_name(cfg->proxy_mode), "route",
                          d->cloud_route[0] != '\0' ? d->cloud_route : NULL);
    if (d->ha != NULL)
        ha_status_clear(&hs);
    /* what the connector has in the cloud, as the state recorded it after the last run */
    pthread_mutex_lock(&d->sh.lock);
    if (o != NULL && d->sh.snap.valid && d->sh.snap.objects[0] >= 0)
        json_object_set_new(o, "objects",
                            json_pack("{s:I, s:I, s:I}", "users", (json_int_t)d->sh.snap.objects[0],
                                      "groups", (json_int_t)d->sh.snap.objects[1], "contacts",
                                      (json_int_t)d->sh.snap.objects[2]));
    pthread_mutex_unlock(&d->sh.lock);
    return o;
}

static json_t *iso_time(time_t t)
{
    if (t == 0)
        return json_null();
    char buf[40];
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm);
    return json_string(buf);
}

/* ok < degraded < error */
static const char *worse(const char *a, const char *b)
{
    static const char *const order[] = {"ok", "degraded", "error"};
    int ra = 0, rb = 0;
    for (int i = 0; i < 3; i++) {
        if (strcmp(a, order[i]) == 0)
            ra = i;
        if (strcmp(b, order[i]) == 0)
            rb = i;
    }
    return ra >= rb ? a : b;
}

/*
 * The cloud side of the status: for now the last run's cloud error (unreachable, refused
 * authentication or request, proxy, no registration). The proxy route in use and the error
 * of every cloud request, lease renewals included, belong here too (issue 14, item 6).
 */
static json_t *status_json(struct daemon *d)
{
    const struct config *cfg = d->cfg;
    json_t *current = json_null();
    if (d->state == D_SYNCING || (d->state == D_STOPPING && d->running != REQ_NONE)) {
        pthread_mutex_lock(&d->sh.lock);
        double secs = difftime(time(NULL), d->started);
        current =
            json_pack("{s:s, s:o, s:s, s:s, s:I, s:I, s:I}", "type",
                      d->running == REQ_FULL ? "full" : "incremental", "started",
                      iso_time(d->started), "trigger", d->trigger, "phase", d->sh.phase, "done",
                      (json_int_t)d->sh.done, "total", (json_int_t)d->sh.total, "objects_per_s",
                      (json_int_t)(secs > 0 ? (double)d->sh.done / secs : 0));
        pthread_mutex_unlock(&d->sh.lock);
    }
    json_t *last = json_array();
    /* The runs' word; the overall word is the worst of it, the directory's and the cloud's. */
    const char *overall = "ok";
    json_t *reasons = json_array();
    /* From the snapshot: status never waits on SQLite (the worker may hold a write transaction). */
    pthread_mutex_lock(&d->sh.lock);
    if (d->sh.snap.valid) {
        const struct state_history *h = d->sh.snap.h;
        size_t n = d->sh.snap.n;
        {
            size_t shown = 0;
            for (size_t i = 0; i < n && shown < 2; i++) {
                if (strcmp(h[i].type, "dry-run") == 0)
                    continue;
                if (shown == 0 && strcmp(h[i].status, "success") != 0) {
                    overall = "error";
                    json_array_append_new(
                        reasons, json_string(strcmp(h[i].status, "threshold") == 0
                                                 ? "the last run: delete threshold exceeded"
                                                 : "the last run failed"));
                }
                json_array_append_new(
                    last,
                    json_pack("{s:s, s:o, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "type",
                              h[i].type, "started", iso_time((time_t)h[i].started), "ended",
                              iso_time((time_t)h[i].ended), "status", h[i].status, "added",
                              (json_int_t)h[i].added, "updated", (json_int_t)h[i].updated,
                              "deleted", (json_int_t)h[i].deleted, "matched",
                              (json_int_t)h[i].matched, "skipped", (json_int_t)h[i].skipped,
                              "failed", (json_int_t)h[i].failed, "message", h[i].message));
                shown++;
            }
        }
        long retries = d->sh.snap.retries;
        if (retries > 0) {
            overall = worse(overall, "degraded");
            char why[64];
            snprintf(why, sizeof(why), "%ld objects wait for a retry", retries);
            json_array_append_new(reasons, json_string(why));
        }
    }
    pthread_mutex_unlock(&d->sh.lock);
    /* A run that failed before it could be recorded (cloud or directory unreachable). */
    if (d->last_ended != 0 && d->last_rc != DIRCONN_OK && d->last_rc != DIRCONN_EFAIL &&
        d->last_rc != DIRCONN_ECANCELED && strcmp(overall, "error") != 0) {
        overall = "error";
        json_array_append_new(reasons, json_string(d->last_rc == DIRCONN_ETHRESHOLD
                                                       ? "the last run: delete threshold exceeded"
                                                       : "the last run failed"));
    }
    json_t *directory = dir_status_json(d->dir);
    const char *dir_word = dir_status_word(d->dir);
    if (strcmp(dir_word, "ok") != 0) {
        char why[640];
        json_array_append_new(reasons, json_string(dir_status_reason(d->dir, why, sizeof(why))));
    }
    bool cloud_failing = false;
    json_t *cloud = cloud_json(d, &cloud_failing);
    if (cloud_failing) { /* never ok while the cloud side fails */
        const char *ce = json_string_value(json_object_get(cloud, "error"));
        if (ce == NULL)
            ce = json_string_value(json_object_get(cloud, "lease_error"));
        char why[DIRCONN_ERROR_LEN + 16];
        snprintf(why, sizeof(why), "cloud: %s", ce != NULL ? ce : "the last run failed");
        json_array_append_new(reasons, json_string(why));
    }
    overall = worse(worse(overall, dir_word), cloud_failing ? "error" : "ok");
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    json_t *connectors = json_pack("[{s:s, s:s, s:b, s:s}]", "name", cfg->name ? cfg->name : host,
                                   "host", host, "active", d->active, "lease",
                                   d->ha == NULL                     ? "none"
                                   : cfg->ha_lease == HA_LEASE_CLOUD ? "cloud"
                                                                     : "etcd");
    char full[64] = "never";
    if (cfg->full_sync.days != 0) {
        static const char *const day[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        size_t k = 0;
        for (int i = 0; i < 7; i++)
            if (cfg->full_sync.days & (1u << i))
                k += (size_t)snprintf(full + k, sizeof(full) - k, "%s%s", k ? "," : "", day[i]);
        snprintf(full + k, sizeof(full) - k, " %02d:%02d", cfg->full_sync.minute / 60,
                 cfg->full_sync.minute % 60);
    }
    json_t *config = json_pack(
        "{s:s, s:o, s:s?, s:s, s:I, s:s, s:b, s:s?, s:s?, s:I, s:b, s:b, s:b}", "file", cfg->path,
        "directory", json_pack("[]"), "base_dn", cfg->base_dn, "change_tracking",
        change_tracking_name(cfg->change_tracking), "incremental_interval_s",
        (json_int_t)(cfg->incremental_interval_ms / 1000), "full_sync", full, "notifications",
        cfg->notifications, "cloud", cfg->cloud_url, "org", cfg->cloud_org, "delete_threshold",
        (json_int_t)cfg->delete_threshold, "users", cfg->users.enabled, "groups",
        cfg->groups.enabled, "contacts", cfg->contacts.enabled);
    for (size_t i = 0; i < cfg->urls.n; i++)
        json_array_append_new(json_object_get(config, "directory"), json_string(cfg->urls.v[i]));
    /* The effective configuration as dirconnctl config show renders it (config_view.h). */
    json_t *view = config_render_json(cfg);
    if (view != NULL) {
        json_object_set(config, "options", json_object_get(view, "options"));
        json_object_set(config, "mapping", json_object_get(view, "mapping"));
        json_object_set(config, "secrets", json_object_get(view, "secrets"));
        json_decref(view);
    }
    json_t *st_json = json_pack(
        "{s:s, s:s?, s:s, s:b, s:o, s:{s:o, s:o}, s:o, s:o, s:{s:b, s:s?, s:I}, s:o, s:s}",
        "overall", overall, "error", d->last_error[0] ? d->last_error : NULL, "state",
        state_names[d->state], "paused", d->paused, "current", current, "next", "full",
        iso_time(d->next_full), "incremental", iso_time(d->paused ? 0 : d->next_incr), "last", last,
        "connectors", connectors, "notifications", "connected", d->notify != NULL, "method",
        d->notify ? notify_method(d->notify) : NULL, "received", (json_int_t)d->notifications,
        "config", config, "version", DIRCONN_VERSION);
    json_object_set_new(st_json, "reasons", reasons);
    /* the library code behind the last error: {"origin": "ldap", "code": 49}, or null */
    const char *origin = dirconn_origin_name(d->last_origin);
    json_object_set_new(
        st_json, "error_cause",
        d->last_error[0] != '\0' && origin != NULL
            ? json_pack("{s:s, s:I}", "origin", origin, "code", (json_int_t)d->last_cause)
            : json_null());
    json_object_set_new(st_json, "directory", directory);
    json_object_set_new(st_json, "cloud", cloud);
    json_object_set_new(json_object_get(st_json, "notifications"), "state",
                        json_string(dir_notify_name(dir_status_notify_state(d->dir))));
    json_object_set_new(st_json, "ha", ha_json(d));
    json_object_set_new(st_json, "threshold_override", json_boolean(d->override_next));
    return st_json;
}

/* ---- admin socket ---------------------------------------------------------------- */

/* One admin request, from the socket or the page's actions (admin/web.h). */
static json_t *handle_request(struct daemon *d, struct admin_request req)
{
    json_t *resp = NULL;
    if (req.cmd == ADMIN_CMD_STATUS) {
        ha_active_now(d); /* a role the lease deadline ended is never shown */
        resp = json_pack("{s:b, s:o}", "ok", 1, "status", status_json(d));
    } else if (req.cmd == ADMIN_CMD_SYNC) {
        bool override = req.override_threshold;
        /* without a type, the kind of run the threshold stopped last */
        bool full = req.has_type ? req.full : override && d->threshold_kind == REQ_FULL;
        if (d->state == D_STOPPING) {
            resp = json_pack("{s:b, s:s}", "ok", 0, "error", "dirconnd is stopping");
        } else if (!ha_active_now(d)) {
            struct ha_status hs;
            ha_election_status(d->ha, &hs);
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "this instance is a standby; the active one is connector %s (sync there)",
                     hs.holder != NULL ? hs.holder : "(none at the moment)");
            ha_status_clear(&hs);
            resp = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
        } else {
            bool busy = d->state == D_SYNCING;
            /* An explicit request tries a refused bind once more: this sync is the attempt. */
            dir_status_rearm(d->dir, "dirconnctl sync-now");
            if (override)
                d->override_next = true;
            request_sync(d, full ? REQ_FULL : REQ_INCREMENTAL, "admin", true);
            resp =
                json_pack("{s:b, s:s, s:b, s:b}", "ok", 1, "queued", full ? "full" : "incremental",
                          "after_current", busy, "override_threshold", override);
        }
    } else {
        bool pause = req.cmd == ADMIN_CMD_PAUSE;
        if (pause != d->paused)
            log_msg(&d->log, LOG_LEVEL_INFO, "%s",
                    pause ? "paused: scheduled and notified syncs are held back" : "resumed");
        d->paused = pause;
        if (!pause && d->state == D_IDLE)
            schedule_incremental(d);
        resp = json_pack("{s:b, s:b}", "ok", 1, "paused", d->paused);
    }
    return resp;
}

static json_t *handle(struct daemon *d, const char *line)
{
    struct admin_request req;
    const char *error = NULL;
    if (!admin_request_parse(line, &req, &error))
        return json_pack("{s:b, s:s}", "ok", 0, "error", error);
    return handle_request(d, req);
}

/* ---- the status page and /metrics (admin/web.h), on the loop ----------------------- */

static json_t *web_status(void *arg)
{
    struct daemon *d = arg;
    ha_active_now(d); /* a role the lease deadline ended is never shown */
    return status_json(d);
}

static json_t *web_runs(void *arg)
{
    struct daemon *d = arg;
    json_t *runs = json_array();
    pthread_mutex_lock(&d->sh.lock);
    for (size_t i = 0; d->sh.snap.valid && i < d->sh.snap.n; i++) {
        const struct state_history *h = &d->sh.snap.h[i];
        if (strcmp(h->type, "dry-run") == 0)
            continue;
        json_array_append_new(
            runs,
            json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "type", h->type,
                      "started", (json_int_t)h->started, "ended", (json_int_t)h->ended, "status",
                      h->status, "added", (json_int_t)h->added, "updated", (json_int_t)h->updated,
                      "deleted", (json_int_t)h->deleted, "matched", (json_int_t)h->matched,
                      "skipped", (json_int_t)h->skipped, "failed", (json_int_t)h->failed));
    }
    pthread_mutex_unlock(&d->sh.lock);
    return runs;
}

static void web_gauges(void *arg, struct metrics_gauges *g)
{
    struct daemon *d = arg;
    g->ha = d->ha != NULL;
    g->active = ha_active_now(d);
    g->fencing_token = d->ha != NULL ? ha_election_token(d->ha) : 0;
    g->notify_state = dir_notify_name(dir_status_notify_state(d->dir));
    g->watermark_age = d->watermark_at != 0 ? difftime(time(NULL), d->watermark_at) : -1;
}

static json_t *web_latency(void *arg)
{
    struct daemon *d = arg;
    json_t *a = json_array();
    for (size_t i = 0; i < d->n_latency; i++) {
        size_t k = (d->latency_next + WEB_LATENCY_MAX - 1 - i) % WEB_LATENCY_MAX; /* newest first */
        json_array_append_new(a, json_pack("{s:I, s:f}", "ended", (json_int_t)d->latency[k].ended,
                                           "seconds", d->latency[k].seconds));
    }
    return a;
}

static json_t *web_report(void *arg)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->sh.lock);
    json_t *r = json_incref(d->sh.snap.report); /* never changed once installed */
    pthread_mutex_unlock(&d->sh.lock);
    return r;
}

static const struct config *web_config(void *arg)
{
    return ((struct daemon *)arg)->cfg;
}

static json_t *web_action(void *arg, const char *action, const char *remote)
{
    struct daemon *d = arg;
    struct admin_request req = {.cmd = ADMIN_CMD_SYNC};
    if (strcmp(action, "sync-full") == 0) {
        req.full = req.has_type = true;
    } else if (strcmp(action, "sync-incremental") == 0) {
        req.has_type = true;
    } else if (strcmp(action, "override-threshold") == 0) {
        req.override_threshold = true;
    } else if (strcmp(action, "pause") == 0) {
        req.cmd = ADMIN_CMD_PAUSE;
    } else if (strcmp(action, "resume") == 0) {
        req.cmd = ADMIN_CMD_RESUME;
    } else {
        return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown action");
    }
    (void)remote; /* web.c logged the request with it */
    return handle_request(d, req);
}

/* The last successful run's end, from the snapshot: the metrics' start values. */
static void metrics_from_history(struct daemon *d)
{
    pthread_mutex_lock(&d->sh.lock);
    for (size_t i = 0; d->sh.snap.valid && i < d->sh.snap.n; i++) {
        const struct state_history *h = &d->sh.snap.h[i];
        if (strcmp(h->type, "dry-run") != 0 && strcmp(h->status, "success") == 0) {
            metrics_set_last_success(d->metrics, (time_t)h->ended);
            d->watermark_at = (time_t)h->ended;
            break;
        }
    }
    pthread_mutex_unlock(&d->sh.lock);
}

/* An admin connection; the daemon keeps the open ones to close them when it stops. */
struct client {
    struct daemon *d;
    struct bufferevent *bev;
    struct client *prev, *next;
};

static void client_free(struct client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->d->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

static void on_client_write(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        client_free(arg);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = 0;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (line == NULL) {
        if (evbuffer_get_length(in) > DAEMON_LINE_MAX)
            client_free(c);
        return;
    }
    json_t *resp = handle(c->d, line);
    free(line);
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    if (text != NULL) {
        bufferevent_write(bev, text, strlen(text));
        bufferevent_write(bev, "\n", 1);
        free(text);
    }
    /* One request per connection: close once the answer is written. */
    bufferevent_setcb(bev, NULL, on_client_write, NULL, c);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    client_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct daemon *d = arg;
    struct client *c = calloc(1, sizeof(*c));
    struct bufferevent *bev =
        c != NULL ? bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->d = d;
    c->bev = bev;
    c->next = d->clients;
    if (d->clients != NULL)
        d->clients->prev = c;
    d->clients = c;
    bufferevent_setcb(bev, on_client_read, NULL, on_client_event, c);
    struct timeval tv = {10, 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int open_socket(struct daemon *d)
{
    if (daemon_socket_path(d->cfg, d->socket_path, sizeof(d->socket_path)) == NULL) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "the admin socket path is longer than 107 bytes");
        return -1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, d->socket_path, strlen(d->socket_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A socket file left by a crash is replaced; one a live daemon answers on is not. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s: another dirconnd is running", d->socket_path);
        close(fd);
        return -1;
    }
    close(fd);
    unlink(d->socket_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || chmod(d->socket_path, 0600) != 0 || listen(fd, 16) != 0) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s: cannot listen: %s", d->socket_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    d->listener = evconnlistener_new(d->base, on_accept, d, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (d->listener == NULL) {
        close(fd);
        return -1;
    }
    return 0;
}

/* ---- signals ---------------------------------------------------------------------- */

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    log_msg(&d->log, LOG_LEVEL_INFO, "%s: stopping%s", sig == SIGINT ? "SIGINT" : "SIGTERM",
            d->state == D_SYNCING ? " after the batch in flight" : "");
    platform_notify("STOPPING=1");
    bool running = d->state == D_SYNCING;
    set_state(d, D_STOPPING);
    atomic_store(&d->cancel, true);
    if (!running)
        event_base_loopexit(d->base, NULL);
}

static void arm_bind_check(struct daemon *d)
{
    struct timeval tv = {(time_t)(d->cfg->daemon_refused_bind_check_ms / 1000),
                         (suseconds_t)((d->cfg->daemon_refused_bind_check_ms % 1000) * 1000)};
    evtimer_add(d->ev_bind_check, &tv); /* a persistent event: re-adding sets the new period */
}

/* config_restart_changes callback: one line per key that waits for a restart. */
static void log_restart_change(void *arg, const char *section, const char *key)
{
    struct daemon *d = arg;
    log_msg(&d->log, LOG_LEVEL_WARN, "config: [%s] %s changed; it takes effect after a restart",
            section, key);
}

/*
 * Load the configuration again (SIGHUP, or the file changed while the bind was
 * refused: why says which). An invalid one is rejected and the running one kept.
 * Either way, a refused bind is tried once more.
 */
static void reload(struct daemon *d, const char *why)
{
    platform_notify("RELOADING=1");
    struct config *fresh = NULL;
    struct dirconn_error err;
    enum dirconn_err loaded = config_load(d->config_path, &fresh, &err);
    if (loaded == DIRCONN_OK && config_check(fresh, &err) != DIRCONN_OK) {
        config_free(fresh); /* a bad [mapping] or [avatar] is refused now, not at the next sync */
        fresh = NULL;
        loaded = err.code;
    }
    if (loaded != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR,
                "%s: the new configuration is rejected, the running one is kept: %s", why, err.msg);
        dir_retry(d, why);
        platform_notify("READY=1");
        return;
    }
    struct config *old = d->cfg;
    char *old_state_dir = strdup(old->state_dir);
    if (old_state_dir == NULL) {
        config_free(fresh);
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s: out of memory, the running configuration is kept",
                why);
        platform_notify("READY=1");
        return;
    }
    d->cfg = fresh;
    state_set_cache_size(fresh->state_cache_size); /* for the state opened from now on */
    if (d->mailer != NULL ? !mailer_reconfigure(d->mailer, fresh)
                          : mailer_new(fresh, &d->log, &d->mailer, &err) != DIRCONN_OK)
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s: email reports keep their settings: %s", why,
                d->mailer != NULL ? "out of memory" : err.msg);
    mailer_set_active(d->mailer, d->active); /* a mailer this reload started */
    if (old != d->run_cfg && old != d->start_cfg)
        config_free(old); /* else freed when the running sync ends, or at exit (start_cfg) */
    /* New proxy settings: proxies found dead under the old ones are tried again. */
    proxy_shared_forget_dead(d->proxy_shared);
    if (d->ha != NULL) {
        /* The lease client takes the new [proxy] settings from a copy of its own. */
        struct config *for_ha = NULL;
        if (config_load(d->config_path, &for_ha, &err) == DIRCONN_OK)
            ha_election_reconfigure(d->ha, for_ha);
        else
            log_msg(&d->log, LOG_LEVEL_ERROR,
                    "%s: the HA lease client keeps its [proxy] settings: %s", why, err.msg);
        log_msg(&d->log, LOG_LEVEL_INFO,
                "%s: the HA lease client keeps the [ha] and [cloud] settings it started with "
                "until dirconnd restarts",
                why);
    }
    /* In place: the sync thread may be logging through this sink right now. */
    log_sink_reconfigure(&d->log, (enum log_level)fresh->log_level,
                         (enum log_target)fresh->log_target);
    log_msg(&d->log, LOG_LEVEL_INFO, "%s: configuration %s reloaded", why, d->config_path);
    /* Keys of the restart class: against what the running parts started with. */
    config_restart_changes(d->start_cfg, fresh, log_restart_change, d);
    if (d->running == REQ_NONE && strcmp(old_state_dir, fresh->state_dir) != 0) {
        struct state_snap sn; /* no worker runs: status shows the new state directory's runs */
        snap_read(fresh, &sn);
        snap_install(&d->sh, &sn);
    }
    free(old_state_dir);
    dir_status_configure(d->dir, fresh);
    bool retry = dir_status_rearm(d->dir, why);
    arm_bind_check(d);
    schedule_full(d);
    if (d->state == D_IDLE) {
        evtimer_del(d->ev_incr);
        schedule_incremental(d);
    }
    notify_stop(d);
    evtimer_del(d->ev_notify_retry);
    d->notify_backoff_ms = 1000;
    notify_start(d);
    if (retry && !(d->cfg->notifications && d->active))
        request_sync(d, REQ_INCREMENTAL, why, false); /* the one attempt, without notifications */
    platform_notify("READY=1");
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    reload(arg, "SIGHUP");
}

/* While the bind is refused: a changed configuration is reloaded, a changed password tried. */
static void on_bind_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    enum dir_change c = dir_status_check(d->dir);
    if (c == DIR_CHANGE_CONFIG) {
        reload(d, "the configuration file changed");
    } else if (c == DIR_CHANGE_PASSWORD) {
        dir_retry(d, "the bind password changed");
    } else if (dir_status_refused(d->dir)) {
        log_msg(&d->log, LOG_LEVEL_DEBUG,
                "the directory bind stays refused: the configuration and the password are "
                "unchanged");
    }
}

/* ---- main ------------------------------------------------------------------------- */

static const char usage[] =
    "usage: dirconnd [--config FILE] [--no-initial-sync]\n"
    "\n"
    "The dirconn daemon: incremental syncs every [schedule] incremental_interval and within\n"
    "seconds of a change notification, full syncs on the [schedule] full_sync days, and the\n"
    "admin socket that dirconnctl status, sync-now, pause and resume use. SIGHUP reloads the\n"
    "configuration (an invalid one is rejected and the running one kept); SIGTERM finishes\n"
    "the batch in flight and exits.\n";

int main(int argc, char **argv)
{
    struct daemon dd;
    memset(&dd, 0, sizeof(dd));
    struct daemon *d = &dd;
    d->prog = "dirconnd";
    const char *config_path = "/etc/dirconn/dirconn.conf";
    bool initial = true;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"no-initial-sync", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else if (opt == 'n')
            initial = false;
        else if (opt == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    log_sink_init(&d->log, d->prog, LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    /* Quiet in an outage: an identical warning is one line with a count per minute. */
    log_sink_limit_repeats(&d->log, 60000, NULL, NULL);
    d->config_path = strdup(config_path);
    struct dirconn_error err;
    if (d->config_path == NULL || config_load(d->config_path, &d->cfg, &err) != DIRCONN_OK ||
        config_check(d->cfg, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", d->config_path ? err.msg : "out of memory");
        config_free(d->cfg);
        free(d->config_path);
        log_sink_close(&d->log); /* frees the repeat limiter */
        return dirconn_exit_code(DIRCONN_ECONFIG);
    }
    d->start_cfg = d->cfg;
    log_sink_reconfigure(&d->log, (enum log_level)d->cfg->log_level,
                         (enum log_target)d->cfg->log_target);
    state_set_cache_size(d->cfg->state_cache_size);
    /* The daemon holds the bind password, the connector secret and tokens: no core dumps. */
    if (platform_disable_core_dumps(&err) != DIRCONN_OK)
        log_msg(&d->log, LOG_LEVEL_WARN, "%s", err.msg);
    signal(SIGPIPE, SIG_IGN);
    /* libproxy children are forked by a launcher started while this process has one thread. */
    if (proxy_px_prefork(&err) != DIRCONN_OK)
        log_msg(&d->log, LOG_LEVEL_WARN, "%s", err.msg);
    /* Library globals are set up once, before any thread exists. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&d->sh.lock, NULL);
    atomic_init(&d->cancel, false);
    d->notify_backoff_ms = 1000;
    int exit_code = 1;
    if (proxy_shared_new(true, &d->proxy_shared, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
        goto out;
    }
    if (evthread_use_pthreads() != 0 || (d->base = event_base_new()) == NULL) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "cannot create the event loop");
        goto out;
    }
    d->ev_incr = evtimer_new(d->base, on_incr_timer, d);
    d->ev_full = evtimer_new(d->base, on_full_timer, d);
    d->ev_done = event_new(d->base, -1, 0, on_done, d);
    d->ev_debounce = evtimer_new(d->base, on_debounce, d);
    d->ev_notify_retry = evtimer_new(d->base, on_notify_retry, d);
    d->ev_term = evsignal_new(d->base, SIGTERM, on_term, d);
    d->ev_int = evsignal_new(d->base, SIGINT, on_term, d);
    d->ev_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
    d->ev_cont = evsignal_new(d->base, SIGCONT, on_cont, d);
    d->ev_bind_check = event_new(d->base, -1, EV_PERSIST, on_bind_check, d);
    if (dir_status_new(&d->log, &d->dir, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
        goto out;
    }
    dir_status_configure(d->dir, d->cfg);
    if (!d->ev_bind_check || !d->ev_incr || !d->ev_full || !d->ev_done || !d->ev_debounce ||
        !d->ev_notify_retry || !d->ev_term || !d->ev_int || !d->ev_hup || !d->ev_cont ||
        evsignal_add(d->ev_term, NULL) != 0 || evsignal_add(d->ev_int, NULL) != 0 ||
        evsignal_add(d->ev_hup, NULL) != 0 || evsignal_add(d->ev_cont, NULL) != 0) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "cannot set up the event loop");
        goto out;
    }
    /* The state directory (where the socket lives by default) is created by the state store. */
    struct state *st = NULL;
    if (state_open(d->cfg->state_dir, &st, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
        goto out;
    }
    state_close(st);
    struct state_snap first; /* no worker yet: the loop may wait on SQLite this once */
    snap_read(d->cfg, &first);
    snap_install(&d->sh, &first);
    if (open_socket(d) != 0)
        goto out;
    if (mailer_new(d->cfg, &d->log, &d->mailer, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
        goto out;
    }
    if ((d->metrics = metrics_new()) == NULL) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "out of memory");
        goto out;
    }
    metrics_from_history(d);
    {
        struct web_hooks wh = {web_status, web_runs,   web_gauges,  web_config,
                               web_action, web_report, web_latency, d};
        enum dirconn_err we = web_start(d->base, d->cfg, d->metrics, &wh, &d->log, &d->web, &err);
        if (we != DIRCONN_OK) {
            log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
            exit_code = dirconn_exit_code(we);
            goto out;
        }
    }
    if (!ha_start(d)) {
        exit_code = dirconn_exit_code(d->last_rc != DIRCONN_OK ? d->last_rc : DIRCONN_EFAIL);
        goto out;
    }
    mailer_set_active(d->mailer, d->active);
    if (pwsync_listener_start(d->base, d->config_path, &d->log, d->proxy_shared, pwsync_role, d,
                              &d->pwsync, &err) != DIRCONN_OK) {
        log_msg(&d->log, LOG_LEVEL_ERROR, "%s", err.msg);
        exit_code = dirconn_exit_code(err.code);
        goto out;
    }
    set_state(d, D_IDLE);
    schedule_full(d);
    schedule_incremental(d);
    arm_bind_check(d);
    notify_start(d);
    log_msg(&d->log, LOG_LEVEL_INFO, "dirconnd %s ready: admin socket %s, incremental every %lld s",
            DIRCONN_VERSION, d->socket_path, (long long)(d->cfg->incremental_interval_ms / 1000));
    platform_notify("READY=1\nSTATUS=idle");
    d->skip_first_sync = !initial;
    if (initial && d->ha == NULL)
        request_sync(d, REQ_INCREMENTAL, "start", false);
    event_base_dispatch(d->base);
    exit_code = 0;
    log_msg(&d->log, LOG_LEVEL_INFO, "dirconnd stopped");
out:
    pwsync_listener_stop(d->pwsync); /* before the election: its worker may be writing */
    d->pwsync = NULL;
    if (d->running != REQ_NONE) {
        atomic_store(&d->cancel, true);
        pthread_join(d->worker, NULL);
    }
    /* SIGTERM of the active: release the lease so a standby takes over at once. */
    if (d->ha != NULL) {
        ha_election_stop(d->ha, true);
        ha_election_free(d->ha);
        d->ha = NULL;
    }
    if (d->ev_role != NULL)
        event_free(d->ev_role);
    mailer_free(d->mailer); /* after the worker: it hands runs to the mailer */
    d->mailer = NULL;
    notify_stop(d);
    web_free(d->web);
    while (d->clients != NULL)
        client_free(d->clients);
    if (d->listener != NULL) {
        evconnlistener_free(d->listener);
        unlink(d->socket_path);
    }
    struct event *evs[] = {d->ev_incr, d->ev_full, d->ev_done, d->ev_debounce, d->ev_notify_retry,
                           d->ev_term, d->ev_int,  d->ev_hup,  d->ev_cont,     d->ev_bind_check};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i] != NULL)
            event_free(evs[i]);
    if (d->base != NULL)
        event_base_free(d->base);
    if (d->run_cfg != NULL && d->run_cfg != d->cfg && d->run_cfg != d->start_cfg)
        config_free(d->run_cfg);
    if (d->start_cfg != NULL && d->start_cfg != d->cfg)
        config_free(d->start_cfg); /* ha_cfg, when set, is start_cfg */
    config_free(d->cfg);
    dir_status_free(d->dir);
    proxy_shared_free(d->proxy_shared);
    free(d->config_path);
    snap_clear(&d->sh.snap);
    metrics_free(d->metrics);
    pthread_mutex_destroy(&d->sh.lock);
    log_sink_close(&d->log);
    libevent_global_shutdown();
    curl_global_cleanup();
    proxy_px_prefork_stop();
    return exit_code;
}
