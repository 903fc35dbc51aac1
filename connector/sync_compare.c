/* sync_compare.c - the plan compared with the cloud's copies: drift, unacknowledged updates. */
#include "connector/sync_compare.h"

#include "connector/plan.h"
#include "connector/record.h"
#include "connector/state.h"
#include "connector/sync_cloud.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/*
 * Incremental runs: an update of an object without an acknowledged record
 * (a row the rebuilt map reset, an adopted object, a failed write) is
 * diffed against a fresh read of its cloud copy (as a full run's
 * verify_unacknowledged does when it differs): only what differs is
 * written, and a group's members are compared with the cloud's list.
 */
static int unacknowledged_item(void *arg, const struct plan_item *it)
{
    struct id_list *l = arg;
    if (it->old_record != NULL || it->cloud_id == NULL || it->record == NULL || it->drift ||
        it->origin != STATE_ORIGIN_CREATED)
        return 0;
    return !id_list_add(l, it->external_id, NULL, it->kind, NULL, false);
}

enum dirconn_err sync_compare_unacknowledged(struct sync_ctx *c)
{
    struct id_list l = {0};
    enum dirconn_err e = plan_foreach(c->plan, PLAN_UPDATE, -1, unacknowledged_item, &l, c->err);
    for (size_t i = 0; i < l.n && e == DIRCONN_OK; i++)
        e = plan_mark_verified(c->plan, l.v[i].id, false, c->err);
    if (e == DIRCONN_OK && l.n > 0)
        log_msg(c->log, LOG_LEVEL_DEBUG,
                "object map: %zu updates without an acknowledged record are diffed against the "
                "cloud's copy",
                l.n);
    id_list_free(&l);
    return e;
}

/*
 * Drift: a match whose cloud copy no longer holds what dirconn last wrote
 * (someone edited it in the cloud). The projection of the acknowledged
 * record, resolved to cloud ids, over the mapping's scope is compared with
 * the projection of the cloud copy the inventory read; values outside the
 * scope (attributes dirconn does not map) are never compared. Each drifted
 * match becomes an update (plan_mark_drift), applied against a fresh read of
 * the cloud copy.
 */
struct drift_walk {
    struct sync_ctx *c;
    struct id_list found;
    enum dirconn_err e;
};

static int drift_item(void *arg, const struct plan_item *it)
{
    struct drift_walk *w = arg;
    struct sync_ctx *c = w->c;
    if (it->cloud_id == NULL)
        return 0;
    char *cloud = plan_cloud_projection(c->plan, it->kind, it->cloud_id);
    if (cloud == NULL)
        return 0;
    struct state_object so = {0};
    bool known = false;
    w->e = state_object_get(c->st, it->external_id, &so, &known, c->err);
    if (w->e == DIRCONN_OK && known && so.record != NULL) {
        struct plan_item old = {.op = PLAN_MATCH,
                                .kind = it->kind,
                                .external_id = it->external_id,
                                .record = so.record};
        json_t *rec = plan_resolve(
            c->plan, &old, it->kind == OBJECT_GROUP ? PLAN_MEMBERS_ALL : PLAN_MEMBERS_NONE, NULL);
        char hex[RECORD_HASH_LEN];
        if (rec != NULL) {
            json_object_set_new(rec, "externalId", json_string(it->external_id));
            if (record_projection_hash(rec, &c->scope[it->kind], it->kind == OBJECT_GROUP, hex)) {
                if (strcmp(hex, cloud) != 0)
                    id_list_add(&w->found, it->external_id, it->dn, it->kind, so.record, false);
                else
                    w->e = plan_note_same(c->plan, it->kind, it->external_id, it->cloud_id, c->err);
            }
        }
        json_decref(rec);
    }
    state_object_clear(&so);
    free(cloud);
    return w->e != DIRCONN_OK;
}

static enum dirconn_err detect_drift(struct sync_ctx *c)
{
    struct drift_walk w = {c, {0}, DIRCONN_OK};
    enum dirconn_err e = plan_foreach_projected(c->plan, PLAN_MATCH, drift_item, &w, c->err);
    if (w.e != DIRCONN_OK)
        e = w.e;
    for (size_t i = 0; i < w.found.n && e == DIRCONN_OK; i++) {
        log_msg(c->log, LOG_LEVEL_INFO,
                "%s: changed in the cloud; the directory's values are put back",
                w.found.v[i].dn != NULL ? w.found.v[i].dn : w.found.v[i].id);
        e = plan_mark_drift(c->plan, w.found.v[i].id, w.found.v[i].name, c->err);
    }
    id_list_free(&w.found);
    return e;
}

/*
 * Updates without an acknowledged record (objects just adopted from the
 * inventory, or written without their record): the planned record, resolved
 * to cloud ids, is compared with the cloud's copy the inventory read, over
 * the mapping's scope (as drift). The same: a match, nothing is written.
 * Different: the update is diffed against a fresh read of the cloud copy,
 * so only what differs is sent.
 */
struct verify_walk {
    struct sync_ctx *c;
    struct id_list same, differ;
};

static int verify_item(void *arg, const struct plan_item *it)
{
    struct verify_walk *w = arg;
    struct sync_ctx *c = w->c;
    if (it->old_record != NULL || it->cloud_id == NULL || it->record == NULL || it->drift ||
        it->origin != STATE_ORIGIN_CREATED)
        return 0;
    char *cloud = plan_cloud_projection(c->plan, it->kind, it->cloud_id);
    if (cloud == NULL)
        return 0;
    json_t *rec = plan_resolve(
        c->plan, it, it->kind == OBJECT_GROUP ? PLAN_MEMBERS_ALL : PLAN_MEMBERS_NONE, NULL);
    char hex[RECORD_HASH_LEN];
    bool ok = true;
    if (rec != NULL) {
        json_object_set_new(rec, "externalId", json_string(it->external_id));
        if (record_projection_hash(rec, &c->scope[it->kind], it->kind == OBJECT_GROUP, hex)) {
            bool same = strcmp(hex, cloud) == 0;
            ok = id_list_add(same ? &w->same : &w->differ, it->external_id, NULL, it->kind, NULL,
                             false);
            if (ok && same &&
                plan_note_same(c->plan, it->kind, it->external_id, it->cloud_id, c->err) !=
                    DIRCONN_OK) {
                json_decref(rec);
                free(cloud);
                return 1;
            }
        }
    }
    json_decref(rec);
    free(cloud);
    if (!ok)
        dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    return !ok;
}

static enum dirconn_err verify_unacknowledged(struct sync_ctx *c)
{
    struct verify_walk w = {c, {0}, {0}};
    enum dirconn_err e = plan_foreach(c->plan, PLAN_UPDATE, -1, verify_item, &w, c->err);
    for (size_t i = 0; i < w.same.n && e == DIRCONN_OK; i++)
        e = plan_mark_verified(c->plan, w.same.v[i].id, true, c->err);
    for (size_t i = 0; i < w.differ.n && e == DIRCONN_OK; i++)
        e = plan_mark_verified(c->plan, w.differ.v[i].id, false, c->err);
    if (e == DIRCONN_OK && w.same.n + w.differ.n > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "object map: %zu objects without an acknowledged record compared with the cloud: "
                "%zu the same, %zu to update",
                w.same.n + w.differ.n, w.same.n, w.differ.n);
    id_list_free(&w.same);
    id_list_free(&w.differ);
    return e;
}

/* The comparisons of a full run with the cloud, in one transaction (the plan's rows). */
enum dirconn_err sync_compare_full(struct sync_ctx *c)
{
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = sync_cloud_fill_projections(c);
    if (e == DIRCONN_OK)
        e = detect_drift(c);
    if (e == DIRCONN_OK)
        e = verify_unacknowledged(c);
    if (e == DIRCONN_OK)
        return state_commit(c->st, c->err);
    state_rollback(c->st);
    return e;
}
