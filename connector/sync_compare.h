/*
 * sync_compare.h - the comparisons of a run's plan with the cloud's copies
 * (sync.c, planning phase), over the mapping's scope (record_projection_hash).
 *
 * Drift (full runs): a match whose cloud copy no longer holds what dirconn
 * last wrote becomes an update that puts the directory's values back
 * (plan_mark_drift). Updates without an acknowledged record (objects just
 * adopted, rows a rebuilt map reset, failed writes): compared with the cloud
 * copy, the same become matches that keep their record, the others are
 * diffed against a fresh read of the copy (plan_mark_verified).
 *
 * Functions take the run's context (sync_ctx.h) borrowed, record their error
 * in c->err and return its code: DIRCONN_OK, the SCIM client's errors, the
 * plan's and state's (DIRCONN_ESTATE), DIRCONN_ENOMEM.
 */
#ifndef DIRCONN_SYNC_COMPARE_H
#define DIRCONN_SYNC_COMPARE_H

#include "connector/sync_ctx.h"

/*
 * sync_compare_full - after plan_compute of a full run, in one state
 * transaction: read the cloud copies the inventory did not read whole
 * (sync_cloud_fill_projections), mark drift, compare the updates without an
 * acknowledged record (each logged at info level when there are some).
 */
enum dirconn_err sync_compare_full(struct sync_ctx *c);

/*
 * sync_compare_unacknowledged - after plan_compute of an incremental: each
 * update without an acknowledged record is diffed against a fresh read of
 * its cloud copy when applied (plan_mark_verified, not the same).
 */
enum dirconn_err sync_compare_unacknowledged(struct sync_ctx *c);

#endif
