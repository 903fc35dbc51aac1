/*
 * sync.c - the sync engine: the order of a run, its phases (sync_set_phase) and its report.
 * The parts it calls, one prefix each: sync_cloud.c (the SCIM client, discovery, the
 * inventory), sync_read.c (the directory read and mapping), sync_changes.c (an incremental's
 * changes), sync_objmap.c (the object map: takeover rebuild, adoption, DN resolver),
 * sync_compare.c (drift, unacknowledged updates), sync_apply.c (apply.c in the run's order),
 * sync_save.c (the saving phase), sync_report.c (the report's lines, history and post).
 * The run's context is sync_ctx.h.
 */
#include "connector/sync.h"

#include "connector/cloud_auth.h"
#include "connector/ldap_source.h"
#include "connector/mapping.h"
#include "connector/plan.h"
#include "connector/provider.h"
#include "connector/scim.h"
#include "connector/select.h"
#include "connector/state.h"
#include "connector/sync_apply.h"
#include "connector/sync_changes.h"
#include "connector/sync_cloud.h"
#include "connector/sync_compare.h"
#include "connector/sync_ctx.h"
#include "connector/sync_objmap.h"
#include "connector/sync_read.h"
#include "connector/sync_save.h"
#include "connector/sync_report.h"
#include "connector/tracking.h"
#include "proxy/proxy.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[SYNC_PHASE_MAX] = {
    "starting", "connecting", "reading", "planning", "applying", "saving", "done", "stopped",
};

const char *sync_phase_name(enum sync_phase p)
{
    return (int)p >= 0 && p < SYNC_PHASE_MAX ? phase_names[p] : "unknown";
}

bool sync_phase_allowed(enum sync_phase from, enum sync_phase to)
{
#define PH(x) (1u << SYNC_PHASE_##x)
    /* the table in sync.h */
    static const unsigned next[SYNC_PHASE_MAX] = {
        [SYNC_PHASE_STARTING] = PH(CONNECTING) | PH(STOPPED),
        [SYNC_PHASE_CONNECTING] = PH(READING) | PH(STOPPED),
        [SYNC_PHASE_READING] = PH(READING) | PH(PLANNING) | PH(STOPPED),
        [SYNC_PHASE_PLANNING] = PH(APPLYING) | PH(DONE) | PH(STOPPED),
        [SYNC_PHASE_APPLYING] = PH(SAVING) | PH(STOPPED),
        [SYNC_PHASE_SAVING] = PH(DONE) | PH(STOPPED),
    };
#undef PH
    if ((int)from < 0 || from >= SYNC_PHASE_MAX || (int)to < 0 || to >= SYNC_PHASE_MAX)
        return false;
    return (next[from] & (1u << to)) != 0;
}

/*
 * The one place a run changes phase: the transition is checked against the
 * table (sync.h), logged at debug level with the time spent in the phase it
 * leaves, and the four working phases are reported to on_progress (dirconnd's
 * status). An unexpected transition is a defect: it is logged as a warning.
 */
static void sync_set_phase(struct sync_ctx *c, enum sync_phase to)
{
    double now = sync_ctx_now();
    if (!sync_phase_allowed(c->phase, to))
        log_msg(c->log, LOG_LEVEL_WARN, "sync: unexpected phase change %s -> %s",
                sync_phase_name(c->phase), sync_phase_name(to));
    log_msg(c->log, LOG_LEVEL_DEBUG, "sync: phase %s -> %s after %.2f s", sync_phase_name(c->phase),
            sync_phase_name(to), c->phase_started > 0 ? now - c->phase_started : 0.0);
    if (c->phase_started > 0)
        c->res->phase_seconds[c->phase] += now - c->phase_started;
    c->phase = to;
    c->phase_started = now;
    if (c->opts->on_progress != NULL && to >= SYNC_PHASE_CONNECTING && to <= SYNC_PHASE_APPLYING)
        c->opts->on_progress(c->opts->progress_arg, sync_phase_name(to), 0, 0);
}

/* plan_foreach: hand a skipped or conflicting object to opts->on_problem. */
static int report_problem(void *arg, const struct plan_item *item)
{
    struct sync_ctx *c = arg;
    c->opts->on_problem(c->opts->problem_arg, item->dn != NULL ? item->dn : "",
                        item->message != NULL ? item->message : plan_op_name(item->op));
    return 0;
}

/* ---- the run ---------------------------------------------------------------------- */

/* What one run carries from phase to phase (sync_run). */
struct run {
    time_t started;   /* Unix seconds, for the history */
    const char *type; /* "dry-run", "full" or "incremental" */
    struct select_plan sel;
    const char *partition; /* the naming context; NULL before the directory was reached */
    enum change_tracking method;
    bool tracking;    /* a change tracking method applies: this run takes a watermark */
    bool incremental; /* the run reads the changes since the saved watermark */
    struct state_watermark wm, next; /* the saved watermark, the one this run takes */
    struct id_list lists[3];         /* sync_changes_plan: changes, present ids, retries */
    char hash[65];                   /* the scope hash (sync_changes_scope_hash) */
    bool history;                    /* the run is recorded in the history */
    double read_started;             /* sync_ctx_now when the reading phase began */
};

/* Connecting: the state, the cloud, the directory, the selection, the mappings, discovery. */
static enum dirconn_err connect_all(struct sync_ctx *c, struct run *r)
{
    const struct config *cfg = c->cfg;
    sync_set_phase(c, SYNC_PHASE_CONNECTING);
    enum dirconn_err e = state_open(cfg->state_dir, &c->st, c->err);
    if (e == DIRCONN_OK)
        e = sync_cloud_open(c);
    if (e == DIRCONN_OK)
        e = ldap_source_open(cfg, c->log, &c->src, c->err);
    if (e == DIRCONN_OK)
        snprintf(c->res->directory, sizeof(c->res->directory), "%s", ldap_source_url(c->src));
    if (e == DIRCONN_OK)
        e = ldap_source_check_base(c->src, c->err);
    if (e == DIRCONN_OK)
        e = select_build(cfg, ldap_source_rootdse(c->src)->kind, ldap_source_base_dn(c->src),
                         &r->sel, c->err);
    for (int k = 0; k < OBJECT_KINDS && e == DIRCONN_OK; k++)
        e = mapping_compile(cfg, (enum object_kind)k, &c->maps[k], c->err);
    if (e == DIRCONN_OK)
        e = sync_cloud_discover(c);
    c->res->cloud_reached = c->prov != NULL;
    unsigned kinds = 0;
    if (cfg->users.enabled)
        kinds |= 1u << OBJECT_USER;
    if (cfg->groups.enabled)
        kinds |= 1u << OBJECT_GROUP;
    if (cfg->contacts.enabled && c->caps.contacts)
        kinds |= 1u << OBJECT_CONTACT;
    c->kinds = kinds;
    c->sel = &r->sel;
    if (e == DIRCONN_OK && cfg->contacts.enabled && !c->caps.contacts) {
        c->res->contacts_unsupported = true;
        log_msg(c->log, LOG_LEVEL_WARN,
                "the cloud offers no Contact resource type: contacts are not synchronised");
    }
    r->partition = e == DIRCONN_OK ? ldap_source_base_dn(c->src) : NULL;
    return e;
}

/* Change tracking: which method, and whether the saved watermark still applies. */
static enum dirconn_err choose_tracking(struct sync_ctx *c, struct run *r)
{
    enum dirconn_err e = DIRCONN_OK;
    if (c->opts->mode != SYNC_DRY_RUN) {
        struct dirconn_error terr;
        r->tracking = tracking_method(c->cfg, c->src, &r->method, &terr) == DIRCONN_OK;
        if (!r->tracking)
            snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", terr.msg);
        sync_changes_scope_hash(c->cfg, &r->sel, c->kinds, r->partition, r->hash);
    }
    if (r->tracking && c->opts->mode == SYNC_INCREMENTAL) {
        bool found = false;
        e = state_watermark_get(c->st, r->partition, &r->wm, &found, c->err);
        if (e == DIRCONN_OK) {
            const char *why =
                !found ? "there is no watermark yet (no full sync since the state was created)"
                : r->wm.scope_hash == NULL || strcmp(r->wm.scope_hash, r->hash) != 0
                    ? "the scope or the mapping changed since the last full sync"
                : r->wm.method == NULL || strcmp(r->wm.method, change_tracking_name(r->method)) != 0
                    ? "the change tracking method changed"
                    : NULL;
            if (why != NULL)
                snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", why);
            else
                r->incremental = true;
        }
    }
    return e;
}

/*
 * An incremental run that cannot go on (its watermark no longer applies, or
 * the change tracking method was refused) becomes a full run: the partial plan,
 * the change lists and the next watermark are dropped and a new plan is opened.
 * Errors: those of plan_new.
 */
static enum dirconn_err restart_as_full(struct sync_ctx *c, struct id_list lists[3],
                                        struct state_watermark *next)
{
    plan_free(c->plan);
    c->plan = NULL;
    c->on_added = NULL;
    c->present_phase = false;
    id_list_free(&c->touched);
    for (int i = 0; i < 3; i++)
        id_list_free(&lists[i]);
    state_watermark_clear(next);
    memset(next, 0, sizeof(*next));
    sync_set_phase(c, SYNC_PHASE_READING);
    return plan_new(c->st, &c->plan, c->err);
}

/* An incremental: the map rebuilt after a takeover, then the changes planned; or a full run. */
static enum dirconn_err read_changes(struct sync_ctx *c, struct run *r)
{
    enum dirconn_err e = c->opts->rebuild_map ? sync_objmap_rebuild(c) : DIRCONN_OK;
    if (e != DIRCONN_OK)
        return e;
    c->need_full = c->present_phase = false;
    e = sync_changes_plan(c, r->method, r->partition, &r->wm, &r->next, r->lists, &c->res->read);
    if (e == DIRCONN_OK && c->need_full) {
        /* A change only a full read can plan (its reason in c->res->fallback). */
        r->incremental = false;
        e = restart_as_full(c, r->lists, &r->next);
    } else if (e == DIRCONN_EWATERMARK) {
        /* The watermark no longer applies (another DC, a restored DC, a refused cookie). */
        snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", c->err->msg);
        e = state_watermark_delete_all(c->st, c->err);
        r->incremental = false;
        if (e == DIRCONN_OK)
            e = restart_as_full(c, r->lists, &r->next);
    } else if (e == DIRCONN_ELDAP_UNSUPPORTED && r->method == CHANGE_TRACKING_DIRSYNC &&
               c->cfg->change_tracking == CHANGE_TRACKING_AUTO) {
        /* DirSync refused even with object security: uSNChanged polling, from a full sync. */
        snprintf(c->res->fallback, sizeof(c->res->fallback),
                 "%s; falling back to uSNChanged polling", c->err->msg);
        r->incremental = false;
        r->method = CHANGE_TRACKING_USN;
        e = restart_as_full(c, r->lists, &r->next);
    }
    return e;
}

/* A full run takes the watermark before reading: changes made during the read are read again. */
static void take_watermark(struct sync_ctx *c, struct run *r)
{
    struct dirconn_error terr;
    enum dirconn_err te = tracking_read(c->src, c->log, r->method, r->partition, NULL, NULL, NULL,
                                        NULL, &r->next, NULL, &terr);
    if (te == DIRCONN_ELDAP_UNSUPPORTED && r->method == CHANGE_TRACKING_DIRSYNC &&
        c->cfg->change_tracking == CHANGE_TRACKING_AUTO) {
        log_msg(c->log, LOG_LEVEL_WARN, "%s; falling back to uSNChanged polling", terr.msg);
        state_watermark_clear(&r->next);
        memset(&r->next, 0, sizeof(r->next));
        r->method = CHANGE_TRACKING_USN;
        te = tracking_read(c->src, c->log, r->method, r->partition, NULL, NULL, NULL, NULL,
                           &r->next, NULL, &terr);
    }
    if (te != DIRCONN_OK) {
        log_msg(c->log, LOG_LEVEL_WARN,
                "no change tracking watermark: %s; the next incremental sync runs in full",
                terr.msg);
        state_watermark_clear(&r->next);
        memset(&r->next, 0, sizeof(r->next));
    }
}

/* f inside one state transaction: committed when it returns DIRCONN_OK, else rolled back. */
static enum dirconn_err in_transaction(struct sync_ctx *c, struct run *r,
                                       enum dirconn_err (*f)(struct sync_ctx *c, struct run *r))
{
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = f(c, r);
    if (e == DIRCONN_OK)
        return state_commit(c->st, c->err);
    state_rollback(c->st);
    return e;
}

static enum dirconn_err adopt(struct sync_ctx *c, struct run *r)
{
    enum dirconn_err e =
        c->present_phase ? sync_changes_cloud_not_present(c, r->lists) : DIRCONN_OK;
    return e == DIRCONN_OK ? sync_objmap_adopt(c) : e;
}

/* A full run: the directory read while the cloud's inventory is listed (sync_cloud.h). */
static enum dirconn_err read_and_adopt(struct sync_ctx *c, struct run *r)
{
    enum dirconn_err e = sync_cloud_inventory_start(c, c->kinds);
    if (e == DIRCONN_OK)
        e = sync_read_directory(c, &r->sel, c->kinds, &c->res->read);
    if (e == DIRCONN_OK)
        e = sync_cloud_inventory_finish(c);
    sync_cloud_inventory_drop(c);
    return e == DIRCONN_OK ? sync_objmap_adopt(c) : e;
}

/* Reading: the changes or the whole directory, and the cloud's inventory. */
static enum dirconn_err read_all(struct sync_ctx *c, struct run *r)
{
    r->read_started = sync_ctx_now();
    sync_set_phase(c, SYNC_PHASE_READING);
    enum dirconn_err e = r->incremental ? read_changes(c, r) : DIRCONN_OK;
    if (e == DIRCONN_OK && c->opts->mode == SYNC_INCREMENTAL && !r->incremental) {
        log_msg(c->log, LOG_LEVEL_INFO, "incremental sync not possible: %s; running a full sync",
                c->res->fallback);
        c->res->ran_full = true;
    }
    if (e == DIRCONN_OK && r->tracking && !r->incremental)
        take_watermark(c, r);
    c->drift_check = !r->incremental;
    if (e == DIRCONN_OK) {
        sync_read_fingerprint(c, r->partition, c->raw_fp);
        c->raw_skip = !r->incremental;
    }
    c->no_versions = e == DIRCONN_OK && c->drift_check && !state_object_has_version(c->st);
    if (e == DIRCONN_OK)
        e = r->incremental ? sync_cloud_load_targeted(c) : DIRCONN_OK;
    if (e == DIRCONN_OK)
        e = in_transaction(c, r, r->incremental ? adopt : read_and_adopt);
    return e;
}

/* Planning: the plan, its comparisons with the cloud, the report's Summary, the report files. */
static enum dirconn_err plan_all(struct sync_ctx *c, struct run *r)
{
    const struct sync_options *opts = c->opts;
    sync_set_phase(c, SYNC_PHASE_PLANNING);
    log_msg(c->log, LOG_LEVEL_DEBUG, "%ld directory objects read and mapped in %.2f s",
            c->res->read, sync_ctx_now() - r->read_started);
    double tp = sync_ctx_now();
    enum dirconn_err e = plan_compute(c->plan, c->kinds, c->err);
    if (e == DIRCONN_OK && c->resolve_e != DIRCONN_OK)
        e = dirconn_error_set(c->err, c->resolve_e, "%s", c->resolve_msg);
    if (e == DIRCONN_OK && c->drift_check)
        e = sync_compare_full(c);
    if (e == DIRCONN_OK && r->incremental)
        e = sync_compare_unacknowledged(c);
    if (e != DIRCONN_OK)
        return e;
    log_msg(c->log, LOG_LEVEL_DEBUG, "plan computed in %.2f s", sync_ctx_now() - tp);
    const struct plan_summary *s = plan_get_summary(c->plan);
    log_msg(c->log, LOG_LEVEL_INFO,
            "%ld directory objects skipped by raw hash (not mapped), %ld of them matched "
            "without building their record",
            c->raw_skipped,
            s->raw_same[OBJECT_USER] + s->raw_same[OBJECT_GROUP] + s->raw_same[OBJECT_CONTACT]);
    c->res->plan = *s;
    c->res->threshold_exceeded =
        c->cfg->delete_threshold_enabled && s->deletes > c->cfg->delete_threshold;
    c->res->override_used =
        c->res->threshold_exceeded && opts->override_threshold && opts->mode != SYNC_DRY_RUN;
    log_msg(c->log, LOG_LEVEL_INFO,
            "%s: %ld directory objects read; plan: %ld add, %ld update, %ld match, %ld delete",
            r->type, c->res->read, s->count[PLAN_ADD], s->count[PLAN_UPDATE], s->count[PLAN_MATCH],
            s->deletes);
    if (r->incremental)
        snprintf(c->res->tracking, sizeof(c->res->tracking), "%s", change_tracking_name(r->method));
    c->res->planned = true;
    if (opts->on_problem != NULL) {
        /* The skipped objects and naming conflicts, for the report mail. */
        struct dirconn_error perr;
        plan_foreach(c->plan, PLAN_SKIP, -1, report_problem, c, &perr);
        plan_foreach(c->plan, PLAN_CONFLICT, -1, report_problem, c, &perr);
    }
    if (opts->report_path != NULL)
        e = plan_write_report(c->plan, opts->report_path, c->res->threshold_exceeded, c->err);
    if (e == DIRCONN_OK && opts->report_csv_path != NULL)
        e = plan_write_report(c->plan, opts->report_csv_path, c->res->threshold_exceeded, c->err);
    return e;
}

/* The delete threshold holds the run before any change (Cisco guide, "Delete Threshold"). */
static enum dirconn_err threshold_held(struct sync_ctx *c)
{
    const char *cmd = c->opts->override_command;
    if (cmd == NULL)
        cmd = c->opts->mode == SYNC_INCREMENTAL
                  ? "dirconnctl sync --incremental --override-threshold"
                  : "dirconnctl sync --full --override-threshold";
    return dirconn_error_set(c->err, DIRCONN_ETHRESHOLD,
                             "Delete threshold (%d objects) exceeded: %ld objects would be "
                             "deleted; nothing was changed. Check the dry-run report, then "
                             "run '%s' to let this sync through once",
                             c->cfg->delete_threshold, c->res->plan.deletes, cmd);
}

/* Applying and saving: the plan goes to the cloud, then the watermark moves. */
static enum dirconn_err apply_all(struct sync_ctx *c, struct run *r)
{
    if (c->res->threshold_exceeded && !c->res->override_used)
        return threshold_held(c);
    sync_set_phase(c, SYNC_PHASE_APPLYING);
    enum dirconn_err e = sync_apply_plan(c);
    if (e == DIRCONN_OK && c->res->failed > 0)
        e = dirconn_error_set(c->err, DIRCONN_EFAIL,
                              "%ld objects failed (reported above); the others were "
                              "synchronised",
                              c->res->failed);
    c->res->applied = true;
    if (e != DIRCONN_OK && e != DIRCONN_EFAIL)
        return sync_apply_stopped_midway(c, e);
    /* Every change was acknowledged or recorded as a failure to retry: move on. */
    struct dirconn_error serr;
    sync_set_phase(c, SYNC_PHASE_SAVING);
    if (r->next.method != NULL)
        r->next.scope_hash = strdup(r->hash);
    enum dirconn_err se = sync_save_progress(
        c, !r->incremental, &r->lists[2],
        r->next.method != NULL && r->next.scope_hash != NULL ? &r->next : NULL, &serr);
    if (se != DIRCONN_OK) {
        *c->err = serr; /* message and cause */
        return se;
    }
    c->res->watermark_saved = r->next.method != NULL;
    return e;
}

/* The end of a run: its last phase, the history, the control API, the report's last fields. */
static void finish(struct sync_ctx *c, struct run *r, enum dirconn_err e, double t0)
{
    c->res->stopped_in = c->phase;
    /* a run that ended (success, failed objects, the threshold) is done; any other is stopped */
    bool ended = e == DIRCONN_OK || e == DIRCONN_EFAIL || e == DIRCONN_ETHRESHOLD;
    sync_set_phase(c, ended && sync_phase_allowed(c->phase, SYNC_PHASE_DONE) ? SYNC_PHASE_DONE
                                                                             : SYNC_PHASE_STOPPED);
    if (r->history) {
        const char *status = e == DIRCONN_OK           ? "success"
                             : e == DIRCONN_ETHRESHOLD ? "threshold"
                                                       : "failed";
        const struct plan_summary *s = c->plan != NULL ? plan_get_summary(c->plan) : NULL;
        const char *msg = e == DIRCONN_OK ? NULL : c->err->msg;
        sync_report_history(c->st, c->log, c->res, s, r->type, status, r->started, msg);
        if (ended)
            sync_report_post(c->scim, c->auth, c->cfg, c->log, c->res, s, r->type, r->started, msg);
    }
    c->res->seconds = sync_ctx_now() - t0;
    char *route = c->scim_base != NULL ? proxy_route_used(c->proxy, c->scim_base) : NULL;
    snprintf(c->res->proxy_route, sizeof(c->res->proxy_route), "%s", route != NULL ? route : "");
    free(route);
    c->res->code = e;
    snprintf(c->res->error, sizeof(c->res->error), "%s", e == DIRCONN_OK ? "" : c->err->msg);
}

static void release(struct sync_ctx *c, struct run *r)
{
    state_watermark_clear(&r->wm);
    state_watermark_clear(&r->next);
    for (int i = 0; i < 3; i++)
        id_list_free(&r->lists[i]);
    id_list_free(&c->touched);
    id_list_free(&c->failures);
    sync_objmap_free(c);
    plan_discard(c->plan); /* state_close below discards its tables whole */
    provider_free(c->prov);
    for (int k = 0; k < OBJECT_KINDS; k++)
        free(c->scope_paths[k]);
    for (size_t i = 0; i < c->n_unsent; i++)
        free(c->unsent[i]);
    free(c->unsent);
    select_plan_free(&r->sel);
    for (int k = 0; k < OBJECT_KINDS; k++)
        mapping_free(c->maps[k]);
    scim_client_free(c->scim);
    cloud_auth_free(c->auth);
    proxy_free(c->proxy);
    free(c->scim_base);
    ldap_source_close(c->src);
    state_close(c->st);
}

enum dirconn_err sync_run(const struct config *cfg, const struct log_sink *log,
                          const struct sync_options *opts, struct sync_report *report,
                          struct dirconn_error *err)
{
    struct sync_report local;
    struct sync_ctx ctx = {
        .cfg = cfg, .log = log, .opts = opts, .res = report ? report : &local, .err = err};
    struct sync_ctx *c = &ctx;
    memset(c->res, 0, sizeof(*c->res));
    c->res->mode = opts->mode;
    c->res->threshold_enabled = cfg->delete_threshold_enabled;
    c->res->threshold = cfg->delete_threshold;
    double t0 = sync_ctx_now();
    struct run r = {.started = time(NULL), .method = CHANGE_TRACKING_AUTO};

    enum dirconn_err e = connect_all(c, &r);
    if (e == DIRCONN_OK)
        e = choose_tracking(c, &r);
    if (e == DIRCONN_OK)
        e = plan_new(c->st, &c->plan, err);
    r.history = e == DIRCONN_OK;
    if (e == DIRCONN_OK)
        sync_report_previous_override(c->st, c->res);
    if (e == DIRCONN_OK)
        e = read_all(c, &r);
    c->res->incremental = r.incremental;
    r.type = opts->mode == SYNC_DRY_RUN ? "dry-run" : r.incremental ? "incremental" : "full";
    if (e == DIRCONN_OK)
        e = plan_all(c, &r);
    if (e == DIRCONN_OK && opts->mode != SYNC_DRY_RUN)
        e = apply_all(c, &r);
    finish(c, &r, e, t0);
    release(c, &r);
    return e;
}
