/* sync_save.c - the saving phase of a run: what the cloud acknowledged moves the state on. */
#include "connector/sync_save.h"

#include "connector/plan.h"
#include "connector/state.h"

#include <stdlib.h>
#include <string.h>

/*
 * After the cloud acknowledged the run (or each failure was recorded): the
 * failures become retries, the retries this run took up are forgotten, and
 * the watermark moves, all in one transaction. Nothing here runs when the
 * run stopped on an error, so a crash or an outage never skips a change.
 */
enum dirconn_err sync_save_progress(struct sync_ctx *c, bool full, const struct id_list *retried,
                                    struct state_watermark *wm, struct dirconn_error *err)
{
    struct dirconn_error *saved = c->err;
    c->err = err;
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK) {
        c->err = saved;
        return e;
    }
    if (full)
        e = state_retry_delete(c->st, NULL, c->err);
    for (size_t i = 0; e == DIRCONN_OK && retried != NULL && i < retried->n; i++)
        e = state_retry_delete(c->st, retried->v[i].id, c->err);
    for (size_t i = 0; e == DIRCONN_OK && i < c->failures.n; i++) {
        const struct id_rec *f = &c->failures.v[i];
        e = state_retry_put(c->st, f->id, f->dn, f->kind, f->name, c->err);
        /* Forget what was last sent, so the retry rewrites the whole object. */
        struct state_object so = {0};
        bool found = false;
        if (e == DIRCONN_OK)
            e = state_object_get(c->st, f->id, &so, &found, c->err);
        if (e == DIRCONN_OK && found && (so.record != NULL || so.version != NULL)) {
            free(so.hash);
            free(so.record);
            free(so.version);
            so.hash = so.record = so.version = NULL;
            e = state_object_put(c->st, &so, c->err);
        }
        state_object_clear(&so);
    }
    if (e == DIRCONN_OK)
        e = plan_save_names(c->plan, c->err);
    if (e == DIRCONN_OK)
        e = plan_save_verified(c->plan, c->err);
    /* Matched objects whose DN changed (moved or renamed within the scope) get their new DN. */
    if (e == DIRCONN_OK)
        e = state_plan_save_moves(c->st, c->err);
    if (e == DIRCONN_OK && wm != NULL && wm->method != NULL)
        e = state_watermark_put(c->st, wm, c->err);
    if (e == DIRCONN_OK)
        e = state_commit(c->st, c->err);
    else
        state_rollback(c->st);
    c->err = saved;
    /*
     * The raw hashes last, in transactions of their own: at a first full sync
     * they rewrite every object, and one transaction over all of them held the
     * write-ahead log at twice the state's size. One not saved costs the next
     * full sync the mapping of that entry, so an error here is a warning.
     */
    if (e == DIRCONN_OK) {
        struct dirconn_error rerr;
        dirconn_error_clear(&rerr);
        if (plan_save_raw(c->plan, &rerr) != DIRCONN_OK)
            log_msg(c->log, LOG_LEVEL_WARN,
                    "%s; the next full sync maps the entries whose raw hashes were not saved",
                    rerr.msg);
    }
    return e;
}
