/*
 * apply.h - the apply stage: a computed plan (plan.h) executed over SCIM 2.0
 * (RFC 7644) through the transport port of scim.h, every acknowledged write
 * recorded in the state (state.h) at once.
 *
 * The sync engine (sync.h) decides the order; apply executes one slice of
 * the plan per call: creations (POST, RFC 7644 3.3, or /Bulk within the
 * provider's limits, 3.7), updates (PATCH of what changed, 3.5.2, or GET and
 * PUT when the provider has no PATCH, 3.5.1), membership changes of updated
 * groups (PATCH add/remove of members values), the follow-up pass of objects
 * written before their manager or member groups existed, deletions (DELETE,
 * 3.6, after removing the object from the groups and reports that refer to
 * it unless the provider cascades) and forgotten objects (state only).
 * Objects go in batches of at most 1000 objects and of records of at most 4
 * requests of the provider's limit (bulk.maxPayloadSize with /Bulk, else
 * [cloud] max_payload; 1-16 MiB), the requests of a batch in flight together
 * (/Bulk requests of at most min(250, bulk.maxOperations) operations and
 * bulk.maxPayloadSize bytes). Adds and updates are pipelined: batch k+1 is
 * built and sent while batch k is in flight, with at most
 * apply_params.window batches out (default 2; the SCIM client's
 * max_in_flight bounds the requests). Each batch's acknowledgements are
 * committed to the state in one transaction, in the plan's order: batch k+1
 * is recorded only after batch k, even when its answers came first, so a
 * crash loses at most the batches in flight and the next run adopts those
 * objects by externalId. Deletions go stop-and-wait (one batch at a time).
 * A stop (hooks.cancelled, a lost lease, the cloud unreachable) sends no
 * new batch and records what the batches already sent had acknowledged,
 * nothing else; a failure of the run (the state, memory, the port's loop)
 * records nothing after the batch that failed.
 *
 * Rules applied to the answers (each has a test in tests/unit/test_apply.c):
 *  - a creation is never resent blindly: 409 to a POST that was retried
 *    (the first attempt was applied, its answer lost) and an answer lost
 *    after sending (scim_response.maybe_applied) look the object up by
 *    externalId first (RFC 7644 3.4.2.2 filter); it is created again only
 *    when absent;
 *  - 412 Precondition Failed to a write sent with If-Match (RFC 7644 3.14):
 *    the resource is read again (meta.version, else the ETag header) and the
 *    same write sent once more with the new version (the PUT of a provider
 *    without PATCH is rebuilt from the fresh copy, unmapped values kept; the
 *    PATCH of a drifted object is diffed again). A second 412 is a failure
 *    of the object, retried by the next sync;
 *  - 404 to the PATCH or PUT of an update: the resource was deleted in the
 *    cloud. Its cloud id is forgotten, it is looked up by externalId (it may
 *    exist under another id, then it is updated against its current copy)
 *    and otherwise created again (POST); it counts as updated;
 *  - 404 to a DELETE: already gone, the goal is met;
 *  - request bodies stay within cloud_caps.max_payload: a group is created
 *    with the members that fit and the others are added by PATCH right
 *    after; membership changes go in PATCH requests of at most
 *    cloud_caps.patch_max_ops operations (RFC 7644 3.5.2.1, 3.5.2.2);
 *  - a write the cloud fences or the write gate holds back (DIRCONN_ELEASE,
 *    HA, docs/cloud-api.md "Fencing") is not a failure of the object: the
 *    lease_lost hook runs once and the run stops after the batches in flight;
 *  - a request the cloud never answered after the client's retries
 *    (DIRCONN_ECLOUD_CONNECT: the cloud or the network is gone) or that the
 *    proxy failed (DIRCONN_EPROXY) is not a failure of the object either:
 *    every later request would fail the same way, so the run stops after the
 *    batches in flight with that error, its code and message kept (the SCIM
 *    client ends the requests still queued at once, scim.h). Those objects
 *    are not recorded; the next sync finds what was applied by externalId.
 *
 * An object whose write fails is reported (log, failed hook, counts.failed)
 * and not recorded as acknowledged; the others go on. One struct apply is
 * used by one thread at a time; it keeps no global state.
 */
#ifndef DIRCONN_APPLY_H
#define DIRCONN_APPLY_H

#include "connector/cloud_caps.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/plan.h"
#include "connector/record.h"
#include "connector/scim.h"
#include "connector/state.h"

#include <stdbool.h>

/* What the cloud acknowledged during the run (objects). */
struct apply_counts {
    long added, updated, deleted; /* acknowledged creations, updates (re-creations of objects
                                     deleted in the cloud included), deletions */
    long failed;                  /* objects whose write failed (each reported) */
    long drift;                   /* updates that put back values edited in the cloud */
    /* the same per kind (enum object_kind) */
    long added_by_kind[OBJECT_KINDS], updated_by_kind[OBJECT_KINDS], deleted_by_kind[OBJECT_KINDS],
        failed_by_kind[OBJECT_KINDS];
};

/* One object whose write failed; valid during the hook call only. */
struct apply_failure {
    const char *external_id;
    const char *dn; /* may be NULL */
    enum object_kind kind;
    enum plan_op op;    /* PLAN_ADD, PLAN_UPDATE (membership changes too) or PLAN_DELETE */
    const char *reason; /* one line */
};

/* Callbacks of the caller; each may be NULL. They run on the calling thread, from inside apply. */
struct apply_hooks {
    /* After each object is answered: done and total in objects of the run. */
    void (*progress)(void *arg, long done, long total);
    /* Asked before each slice and after each batch: true stops the run (DIRCONN_ECANCELED). */
    bool (*cancelled)(void *arg);
    /* Once, at the first write the cloud fenced or the write gate held back (code
     * DIRCONN_ELEASE), or refused because the organisation uses another HA mode
     * (DIRCONN_EHAMODE, docs/cloud-api.md "HA mode"); msg is one line. */
    void (*lease_lost)(void *arg, enum dirconn_err code, const char *msg);
    /* For each object whose write failed (the next sync retries it). */
    void (*failed)(void *arg, const struct apply_failure *f);
    void *arg;
};

/* What apply works with. Pointers are borrowed and must outlive the struct apply. */
struct apply_params {
    const struct scim_port *port; /* every SCIM request goes through it (relative paths) */
    struct state *st;             /* acknowledged objects are written here */
    struct plan *plan;            /* computed (plan_compute); its items are applied */
    struct cloud_caps caps;       /* copied */
    /* per enum object_kind: the leaves the mapping produces and the provider takes (record.h);
       the paths are borrowed */
    struct record_scope scope[OBJECT_KINDS];
    bool delete_cascades;       /* [cloud] delete_cascades: the provider removes a deleted resource
                                   from its groups and its reports' manager itself */
    const struct log_sink *log; /* NULL: stderr at info (log.h) */
    struct apply_hooks hooks;   /* copied */
    /* batches of adds and updates in flight at once: 0 = 2, 1 = stop-and-wait, at most 8 */
    int window;
    /* objects per batch (one state transaction): 0 = 1000, at most 1000 */
    int batch_objects;
};

struct apply;

/*
 * apply_new - an apply run over params (copied; what it points to is
 * borrowed). The total reported to hooks.progress is the plan's adds,
 * updates, deletions and forgotten objects. *out is owned by the caller
 * (apply_free). Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err apply_new(const struct apply_params *params, struct apply **out,
                           struct dirconn_error *err);

/* apply_free - free a (may be NULL). Nothing is sent. */
void apply_free(struct apply *a);

/*
 * apply_ops - apply the plan items of operation op (PLAN_ADD, PLAN_UPDATE,
 * PLAN_DELETE or PLAN_FORGET; < 0: all) and kind (enum object_kind; < 0: all)
 * in the plan's order, batch by batch, adds and updates pipelined (a new
 * management depth starts a new batch once every batch in flight is
 * recorded: managers are recorded before their reports). RFC 7644 3.3, 3.5.1,
 * 3.5.2, 3.6, 3.7 with the rules above. Returns DIRCONN_OK when every
 * object was answered, failures of single objects included (see
 * apply_counts); DIRCONN_ECANCELED when hooks.cancelled asked to stop,
 * DIRCONN_ELEASE when a write was fenced, DIRCONN_ECLOUD_CONNECT or
 * DIRCONN_EPROXY when the cloud could not be reached (in each case the
 * batches in flight were answered and recorded first, in order; see
 * apply_stop_error);
 * DIRCONN_ESTATE, DIRCONN_ENOMEM, or the port's loop error (DIRCONN_ECLOUD)
 * that stopped the batch. err gets one line.
 */
enum dirconn_err apply_ops(struct apply *a, int op, int kind, struct dirconn_error *err);

/*
 * apply_members - membership changes of the updated groups (planned
 * members against those of the last acknowledged record): PATCH "remove"
 * of members[value eq "<id>"] and "add" of members values (RFC 7644
 * 3.5.2.1, 3.5.2.2), within cloud_caps.max_payload and patch_max_ops. Groups
 * whose members were already written whole or diffed against the cloud's
 * copy in this run (drift, created again after a 404) are left out; without
 * PATCH (caps.patch false) members went with the PUT and nothing is sent.
 * Call after apply_ops(PLAN_UPDATE, OBJECT_GROUP). A change the cloud refuses
 * counts the group as failed (reported, retried by the next sync). Returns
 * DIRCONN_OK when every request was answered; DIRCONN_ESTATE or
 * DIRCONN_ENOMEM (reading the plan), or the port's error.
 */
enum dirconn_err apply_members(struct apply *a, struct dirconn_error *err);

/*
 * apply_pending - the follow-up pass: objects recorded without their record
 * because their manager or member groups had no cloud id when they were
 * written (created later in the run) are written again (PATCH of the
 * manager, PATCH add of the missing member groups, RFC 7644 3.5.2) and
 * recorded in full. Nothing to do when no object was left pending. Call
 * after the adds and updates. Returns DIRCONN_OK when every object was
 * answered (failures counted); the pass does not stop for hooks.cancelled,
 * a lost lease (the lease_lost hook still runs) or an unreachable cloud: the
 * caller asks apply_stop_error and stops after it; DIRCONN_ESTATE,
 * DIRCONN_ENOMEM, or the port's error.
 */
enum dirconn_err apply_pending(struct apply *a, struct dirconn_error *err);

/* apply_counts - the counts so far (owned by a, valid until apply_free). */
const struct apply_counts *apply_counts(const struct apply *a);

/*
 * apply_stop_error - why the run must stop, if it must: the first answer
 * that said the cloud cannot be reached (DIRCONN_ECLOUD_CONNECT or
 * DIRCONN_EPROXY, with that answer's message, which names the URL and keeps
 * the CURLcode or HTTP status), else the lost HA lease (DIRCONN_ELEASE).
 * Returns DIRCONN_OK, err untouched, when neither happened. For callers of
 * apply_pending and apply_members, which do not stop by themselves.
 */
enum dirconn_err apply_stop_error(const struct apply *a, struct dirconn_error *err);

/*
 * apply_bulk_result - one operation's result in a /Bulk response body (RFC
 * 7644 3.7.3): the last element of "Operations" whose bulkId is bulk_id, or
 * NULL when there is none. *status receives its status (a string such as
 * "201" or a number; 0 when absent or not a number), *detail the detail of
 * its error response or NULL, *id the created resource's id: response.id,
 * else what follows the last '/' of location, else NULL. Every pointer
 * points into body. body may be NULL or any JSON value.
 */
const json_t *apply_bulk_result(const json_t *body, const char *bulk_id, long *status,
                                const char **detail, const char **id);

#endif
