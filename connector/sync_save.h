/*
 * sync_save.h - the saving phase of a run (sync.c): after the cloud
 * acknowledged the plan (or each failure was recorded), the state moves on.
 */
#ifndef DIRCONN_SYNC_SAVE_H
#define DIRCONN_SYNC_SAVE_H

#include "connector/state.h"
#include "connector/sync_ctx.h"

/*
 * sync_save_progress - in one state transaction (rolled back on an error):
 * the failures of the run (c->failures) become retries whose last record is
 * forgotten (the retry rewrites the whole object), the retries the run took
 * up (retried, may be NULL; all of them when full) are forgotten, the plan's
 * names, verified matches and raw hashes are saved, matched objects that
 * moved get their new DN, and wm (may be NULL: none) becomes the watermark of
 * its naming context. Never called for a run stopped by an error, so a crash
 * or an outage never skips a change. The error goes to err (not c->err).
 * Returns DIRCONN_OK, DIRCONN_ESTATE or DIRCONN_ENOMEM.
 */
enum dirconn_err sync_save_progress(struct sync_ctx *c, bool full, const struct id_list *retried,
                                    struct state_watermark *wm, struct dirconn_error *err);

#endif
