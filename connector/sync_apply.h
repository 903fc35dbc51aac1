/*
 * sync_apply.h - the applying phase of a run (sync.c): the plan goes to the
 * cloud through apply.h in the run's order, with the run's hooks.
 *
 * The order: users and contacts (POST or /Bulk, RFC 7644 3.3 and 3.7) and
 * their updates, groups with their members, membership changes, the
 * follow-up pass for managers and members created later in the run, then
 * deletions (groups, contacts, users) and the objects only the state still
 * held. The hooks show progress on a terminal (sync_options.progress) and to
 * on_progress, stop at a cancel request after the batch in flight, note a
 * fenced write (the lease lost) and record each failed object for the retry
 * list (c->failures) and on_problem.
 */
#ifndef DIRCONN_SYNC_APPLY_H
#define DIRCONN_SYNC_APPLY_H

#include "connector/sync_ctx.h"

/*
 * sync_apply_plan - apply c->plan in the run's order; the report (c->res:
 * added, updated, deleted, failed, drift and per kind) gets what the cloud
 * acknowledged, even when it stops. Returns DIRCONN_OK, DIRCONN_EFAIL (the
 * follow-up or member passes met a failure apply_stop_error reports),
 * DIRCONN_ECANCELED (a cancel request), DIRCONN_ELEASE or DIRCONN_EHAMODE (a
 * write was fenced: "the HA lease was lost, nothing more is written"), or
 * the cloud's error that stopped it, in c->err. Failed objects alone are not
 * an error here (c->res->failed).
 */
enum dirconn_err sync_apply_plan(struct sync_ctx *c);

/*
 * sync_apply_stopped_midway - the apply stopped before its end with e: the
 * cause (for DIRCONN_ELEASE, sync_options.lease_cause may put the lease
 * server's error in its place) keeps its code and text in c->err, followed
 * by "; the sync stopped after N of M planned changes were applied (F
 * failed), the rest is left to the next sync". Returns the code.
 */
enum dirconn_err sync_apply_stopped_midway(struct sync_ctx *c, enum dirconn_err e);

#endif
