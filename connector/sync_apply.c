/* sync_apply.c - the applying phase of a run: apply.c driven in the run's order. */
#include "connector/sync_apply.h"

#include "connector/apply.h"
#include "connector/plan.h"
#include "connector/scim.h"

#include <stdio.h>
#include <unistd.h>

/* The error a stopped run returns: the lost lease, or the cancel request. */
static enum dirconn_err stopped(struct sync_ctx *c, const char *what)
{
    if (c->lease_lost && c->lease_code == DIRCONN_EHAMODE)
        return dirconn_error_set(c->err, DIRCONN_EHAMODE, "%s; nothing more is written",
                                 c->lease_msg);
    if (c->lease_lost)
        return dirconn_error_set(c->err, DIRCONN_ELEASE,
                                 "the HA lease was lost, nothing more is written: %s",
                                 c->lease_msg);
    return dirconn_error_set(c->err, DIRCONN_ECANCELED, "%s", what);
}

static void progress(struct sync_ctx *c, const char *phase, bool force)
{
    if (c->opts->on_progress != NULL)
        c->opts->on_progress(c->opts->progress_arg, "applying", c->done, c->total);
    if (!c->opts->progress || !isatty(STDERR_FILENO))
        return;
    static const long every = 50;
    if (!force && c->done % every != 0)
        return;
    double el = sync_ctx_now() - c->started;
    fprintf(stderr, "\r%s: %ld of %ld objects (%.0f/s)   ", phase, c->done, c->total,
            el > 0 ? (double)c->done / el : 0.0);
    if (force)
        fputc('\n', stderr);
    fflush(stderr);
}

static bool apply_cancelled(void *arg)
{
    const struct sync_ctx *c = arg;
    return c->opts->cancel != NULL && atomic_load(c->opts->cancel);
}

/* A write was fenced (ha/election.h): the run stops, and says why. */
static void apply_lease_lost(void *arg, enum dirconn_err code, const char *msg)
{
    struct sync_ctx *c = arg;
    if (!c->lease_lost) {
        snprintf(c->lease_msg, sizeof(c->lease_msg), "%s", msg);
        c->lease_code = code;
    }
    c->lease_lost = true;
}

/* An object whose write failed: the next incremental sync re-reads it (sync_save_progress). */
static void apply_failed(void *arg, const struct apply_failure *f)
{
    struct sync_ctx *c = arg;
    if (!id_list_add(&c->failures, f->external_id, f->dn, f->kind, f->reason, f->op == PLAN_DELETE))
        log_msg(c->log, LOG_LEVEL_ERROR, "out of memory recording a failure");
    if (c->opts->on_problem != NULL) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s %s failed: %s", plan_op_name(f->op),
                 object_kind_name(f->kind), f->reason != NULL ? f->reason : "");
        c->opts->on_problem(c->opts->problem_arg, f->dn != NULL ? f->dn : "", msg);
    }
}

static void apply_progress(void *arg, long done, long total)
{
    struct sync_ctx *c = arg;
    c->done = done;
    c->total = total;
    progress(c, "Applying", false);
}

/*
 * Apply the plan (apply.h) in the run's order: users and contacts, then
 * groups (their members exist by then) and their membership changes, the
 * follow-up pass, then deletions (groups, contacts, users) and the objects
 * only the state still held. The counts go to the result.
 */
static enum dirconn_err apply_in_order(struct sync_ctx *c)
{
    struct scim_port port = scim_client_port(c->scim);
    struct apply_params ap = {
        .port = &port,
        .st = c->st,
        .plan = c->plan,
        .caps = c->caps,
        .delete_cascades = c->cfg->cloud_delete_cascades,
        .log = c->log,
        .hooks = {apply_progress, apply_cancelled, apply_lease_lost, apply_failed, c},
    };
    for (int k = 0; k < OBJECT_KINDS; k++)
        ap.scope[k] = c->scope[k];
    struct apply *a = NULL;
    enum dirconn_err e = apply_new(&ap, &a, c->err);
    if (e != DIRCONN_OK)
        return e;
    c->total = c->res->plan.count[PLAN_ADD] + c->res->plan.count[PLAN_UPDATE] +
               c->res->plan.deletes + c->res->plan.count[PLAN_FORGET];
    c->started = sync_ctx_now();
    e = apply_ops(a, PLAN_ADD, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_ADD, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_ADD, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_members(a, c->err);
    double tf = sync_ctx_now();
    if (e == DIRCONN_OK)
        e = apply_pending(a, c->err);
    log_msg(c->log, LOG_LEVEL_DEBUG, "follow-up pass in %.2f s", sync_ctx_now() - tf);
    /* groups, then contacts, then users */
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_FORGET, -1, c->err);
    if (e == DIRCONN_OK)
        e = apply_stop_error(a, c->err); /* the follow-up and member passes do not stop */
    const struct apply_counts *n = apply_counts(a);
    c->res->added = n->added;
    c->res->updated = n->updated;
    c->res->deleted = n->deleted;
    c->res->failed = n->failed;
    c->res->drift = n->drift;
    for (int k = 0; k < OBJECT_KINDS; k++) {
        c->res->added_by_kind[k] = n->added_by_kind[k];
        c->res->updated_by_kind[k] = n->updated_by_kind[k];
        c->res->deleted_by_kind[k] = n->deleted_by_kind[k];
        c->res->failed_by_kind[k] = n->failed_by_kind[k];
    }
    apply_free(a);
    return e;
}

/*
 * The apply stopped before its end (the cloud or the proxy lost, the lease
 * lost, a stop request): the cause keeps its code and text, and says how far
 * the run got. What was acknowledged is recorded; the watermark stays.
 */
enum dirconn_err sync_apply_stopped_midway(struct sync_ctx *c, enum dirconn_err e)
{
    if (e == DIRCONN_ELEASE && c->opts->lease_cause != NULL)
        e = c->opts->lease_cause(c->opts->lease_cause_arg, c->err);
    const struct plan_summary *s = &c->res->plan;
    long planned = s->count[PLAN_ADD] + s->count[PLAN_UPDATE] + s->deletes;
    long applied = c->res->added + c->res->updated + c->res->deleted;
    char cause[DIRCONN_ERROR_LEN];
    snprintf(cause, sizeof(cause), "%s",
             c->err->msg[0] != '\0' ? c->err->msg : dirconn_strerror(e));
    dirconn_error_set(c->err, e,
                      "%s; the sync stopped after %ld of %ld planned changes were applied (%ld "
                      "failed), the rest is left to the next sync",
                      cause, applied, planned, c->res->failed);
    return e;
}

enum dirconn_err sync_apply_plan(struct sync_ctx *c)
{
    enum dirconn_err e = apply_in_order(c);
    progress(c, "Applied", true);
    if ((e == DIRCONN_OK || e == DIRCONN_EFAIL) && c->lease_lost)
        e = stopped(c, "");
    return e;
}
