/* apply.c - the apply stage: a plan executed over SCIM 2.0 through the transport port. */
#include "connector/apply.h"
#include "connector/core/platform.h"
#include "connector/core/strlist.h"
#include "connector/record.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Objects per state transaction while applying (at most; apply_params.batch_objects). */
#define APPLY_BATCH 1000
/* Batches of adds and updates in flight at once (apply_params.window). */
#define APPLY_WINDOW     2
#define APPLY_WINDOW_MAX 8
/* Objects built between two turns of the HTTP loop while batches are in flight. */
#define APPLY_PUMP 100
/* Record bytes per batch: 4 requests of the provider's limit, within these bounds. */
#define APPLY_BATCH_BYTES_MIN (1L << 20)
#define APPLY_BATCH_BYTES_MAX (16L << 20)
/* Operations per /Bulk request, so that a batch's adds travel as several requests in flight. */
#define BULK_CHUNK 250
/* Bytes a /Bulk request adds around its operations, and around each operation's data. */
#define BULK_REQ_OVERHEAD 128
#define BULK_OP_OVERHEAD  128
/* Members per PATCH operation (bounded chunks). */
#define MEMBER_CHUNK 500

static const char *const resource_paths[OBJECT_KINDS] = {"/Users", "/Groups", "/Contacts"};

struct apply {
    struct apply_params p;
    struct apply_counts counts;
    long done, total; /* objects answered, and to apply (progress) */
    long pending;     /* objects recorded without their record: the follow-up pass has work */
    /* HA: a write was fenced (the cloud refused the fencing token, or the write
     * gate held it back): the run stops after the batch in flight. */
    bool lease_lost;
    enum dirconn_err lease_code; /* DIRCONN_ELEASE or DIRCONN_EHAMODE */
    char lease_msg[DIRCONN_ERROR_LEN];
    /* The cloud could not be reached (no answer after the retries, or the proxy failed):
     * every later request would fail the same way, so the run stops after the batch in
     * flight with this error, code and message as the first such answer gave them. */
    struct dirconn_error cloud_lost;
    /* groups created again in this run (deleted in the cloud) or found again under another id:
       their members were written whole or diffed against the cloud's copy, the member pass
       leaves them alone */
    json_t *settled; /* a set: externalId -> null (a jansson object, hashed) */
    /* objects recorded pending (without their record) in this run: externalId -> the version
     * their creation's answer gave, when that copy held what was sent; the follow-up pass
     * writes with If-Match of it, so that its answer vouches for the whole record */
    json_t *created_versions;
    struct dirconn_error *err; /* the error of the public call in progress */
    /* the pipeline (apply_ops): batches sent and not yet committed, oldest first */
    struct batch *ring[APPLY_WINDOW_MAX];
    int ring_head, ring_n;
    int window;       /* batches in flight for the slice in progress (1: stop-and-wait) */
    int *outstanding; /* the request count of the batch being sent or finished, or NULL */
};

/* ---- progress and stopping --------------------------------------------------------- */

static void progress(struct apply *a)
{
    if (a->p.hooks.progress != NULL)
        a->p.hooks.progress(a->p.hooks.arg, a->done, a->total);
}

static bool cancelled(const struct apply *a)
{
    return a->lease_lost || a->cloud_lost.code != DIRCONN_OK ||
           (a->p.hooks.cancelled != NULL && a->p.hooks.cancelled(a->p.hooks.arg));
}

/*
 * A response that stops the run instead of failing its object: this connector
 * may no longer write (DIRCONN_ELEASE, ha/election.h), or the cloud could not
 * be reached (DIRCONN_ECLOUD_CONNECT after the client's retries, DIRCONN_EPROXY).
 * A creation whose answer was lost (maybe_applied) is not one: it is looked up.
 */
static bool stops_run(struct apply *a, const struct scim_response *r)
{
    if ((r->code == DIRCONN_ECLOUD_CONNECT || r->code == DIRCONN_EPROXY) && !r->maybe_applied) {
        if (a->cloud_lost.code == DIRCONN_OK) {
            scim_response_error(r, &a->cloud_lost);
            log_msg(a->p.log, LOG_LEVEL_ERROR, "%s; the run stops after the requests in flight",
                    r->error);
        }
        return true;
    }
    if (r->code != DIRCONN_ELEASE && r->code != DIRCONN_EHAMODE)
        return false;
    if (!a->lease_lost) {
        /* Another HA mode: the cloud's message names both modes, and is the whole story. */
        snprintf(a->lease_msg, sizeof(a->lease_msg), "%s",
                 r->code == DIRCONN_EHAMODE && r->detail != NULL ? r->detail : r->error);
        a->lease_lost = true;
        a->lease_code = r->code;
        if (a->p.hooks.lease_lost != NULL)
            a->p.hooks.lease_lost(a->p.hooks.arg, r->code, a->lease_msg);
    }
    return true;
}

/* The error a stopped run returns: the cloud lost, the lost lease, or the cancel request. */
static enum dirconn_err stopped(struct apply *a, const char *what)
{
    if (a->cloud_lost.code != DIRCONN_OK)
        return dirconn_error_set(a->err, a->cloud_lost.code, "%s", a->cloud_lost.msg);
    if (a->lease_lost && a->lease_code == DIRCONN_EHAMODE)
        return dirconn_error_set(a->err, DIRCONN_EHAMODE, "%s; nothing more is written",
                                 a->lease_msg);
    if (a->lease_lost)
        return dirconn_error_set(a->err, DIRCONN_ELEASE,
                                 "the HA lease was lost, nothing more is written: %s",
                                 a->lease_msg);
    return dirconn_error_set(a->err, DIRCONN_ECANCELED, "%s", what);
}

/* ---- one batch ------------------------------------------------------------------- */

/* One object of a batch being applied. */
struct apply_op {
    struct apply *a;
    enum plan_op op;
    enum object_kind kind;
    char *external_id;
    char *cloud_id;
    char *dn;
    char *name;
    char *record; /* what the state records once acknowledged */
    char *hash;
    char *version; /* the cloud's ETag from the inventory, for If-Match */
    enum state_origin origin;
    bool ok;
    bool pending;  /* sent without its manager or some members: recorded without its record */
    bool followup; /* the second write of a pending object */
    bool lookup;   /* created by a lost attempt: find it by externalId */
    bool recreate; /* and when it is not there, create it (the POST may not have been applied) */
    /* the bytes of the POST body (adds), for the /Bulk sizing and shrink_payload; the body
     * itself is not kept: found absent after a lost answer, it is built again (create_body) */
    size_t sent_len;
    bool in_bulk; /* the add travels in a /Bulk request (submit_bulk), not a POST of its own */
    char *new_cloud_id;
    /* group adds: the members' cloud ids; the first post_members went in the POST, the rest
     * (the values that did not fit it) are added by PATCH once the group exists */
    struct plan_ids members;
    size_t post_members;
    bool too_large;   /* 413 to a group's POST: sent again with fewer members (shrink_payload) */
    bool rest_failed; /* and adding them failed: recorded without its record */
    /*
     * The rest sent as a chain (send_rest): one PATCH at a time, each with
     * If-Match of the version the answer before it gave (new_version), the
     * first with the creation's. rest_at..rest_next: the members of the PATCH
     * in flight. rest_chained: every PATCH so far went to the version before
     * it, so the last version vouches for the whole record.
     */
    size_t rest_at, rest_next;
    bool rest_chained;
    bool drift; /* the cloud copy was edited: diffed against a fresh read of it */
    /* the write in flight, and what its answer asks for */
    const char *method; /* "POST", "PUT", "PATCH" or "DELETE" */
    json_t *body;       /* the PATCH body, sent again after a 412 */
    bool if_match;      /* it was sent with If-Match */
    bool create;        /* it is a POST: the add, or the re-creation of an object gone */
    bool answered;      /* counted in the progress (once, whatever follows) */
    bool stale;         /* 412 to a write with If-Match: read it again, send once more */
    bool stale_retried; /* and that was done: another 412 is a failure */
    bool gone;          /* 404 to an update: deleted in the cloud, look it up or create it */
    bool gone_handled;  /* and that was done: another 404 is a failure */
    bool recreated;     /* its cloud id changed in this run (found again or created again) */
    /*
     * The version (ETag) the answer to the write gave (new_version), and
     * whether the copy it names holds the record in the mapping's scope
     * (vouches): a creation, a PUT built from a fresh read, a PATCH diffed
     * against a fresh read (drift), or a PATCH with If-Match of a copy whose
     * version was the one the state held. Group updates do not vouch (their
     * members change by later PATCHes), nor follow-ups, lookups and
     * re-creations. Recorded in the state (state.h, version) only then.
     */
    char *new_version;
    bool vouches;
};

struct batch {
    struct apply_op ops[APPLY_BATCH];
    int n;
    long bytes;      /* of the ops' records */
    int outstanding; /* its requests not yet answered */
};

/* A request of apply: its done callback, and the count of its batch's unanswered requests. */
struct tracked {
    scim_done_fn done;
    void *arg;
    int *outstanding;
};

static void tracked_done(void *arg, const struct scim_response *r)
{
    struct tracked *t = arg;
    t->done(t->arg, r);
    if (t->outstanding != NULL)
        (*t->outstanding)--;
    free(t);
}

/*
 * Every request of apply that goes through the port's queue goes through
 * here: counted in the batch being sent or finished (a->outstanding), so
 * that the pipeline can wait for one batch while later ones stay in flight.
 */
/* flags: SCIM_SUBMIT_CREATE, SCIM_SUBMIT_STATUS_ONLY or 0 (scim.h, struct scim_port_ops) */
static enum dirconn_err port_submit(struct apply *a, const char *method, const char *path,
                                    const json_t *body, const char *if_match, unsigned flags,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    struct tracked *t = malloc(sizeof(*t));
    if (t == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    *t = (struct tracked){done, arg, a->outstanding};
    if (t->outstanding != NULL)
        (*t->outstanding)++;
    enum dirconn_err e =
        (flags & SCIM_SUBMIT_CREATE)
            ? scim_port_submit_create(a->p.port, path, body, tracked_done, t, err)
        : (flags & SCIM_SUBMIT_STATUS_ONLY)
            ? scim_port_submit_status_only(a->p.port, method, path, body, if_match, tracked_done, t,
                                           err)
            : scim_port_submit(a->p.port, method, path, body, if_match, tracked_done, t, err);
    if (e != DIRCONN_OK) {
        if (t->outstanding != NULL)
            (*t->outstanding)--;
        free(t);
    }
    return e;
}

static void op_clear(struct apply_op *o)
{
    free(o->external_id);
    free(o->cloud_id);
    free(o->dn);
    free(o->name);
    free(o->record);
    free(o->hash);
    free(o->version);
    free(o->new_cloud_id);
    free(o->new_version);
    plan_ids_free(&o->members);
    json_decref(o->body);
    memset(o, 0, sizeof(*o));
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* A group add with members that did not fit its POST (added by PATCH once it exists). */
static bool has_rest(const struct apply_op *o)
{
    return o->members.n > o->post_members;
}

/* How an object is named in messages: its DN, else its externalId. */
static const char *who(const struct apply_op *o)
{
    return o->dn != NULL ? o->dn : o->external_id;
}

/* The path of o's resource: /Users/<cloud id>. */
static void op_path(const struct apply_op *o, char path[512])
{
    snprintf(path, 512, "%s/%s", resource_paths[o->kind], o->cloud_id);
}

/* o was answered: counted once in the progress, whatever retries follow. */
static void answered(struct apply *a, struct apply_op *o)
{
    if (o->answered)
        return;
    o->answered = true;
    a->done++;
    progress(a);
}

/* The version a read says the resource has (RFC 7644 3.14): meta.version, else the ETag. */
static const char *version_of(const struct scim_response *r)
{
    const char *v = json_string_value(json_object_get(json_object_get(r->body, "meta"), "version"));
    return v != NULL ? v : r->etag;
}

/* An object whose write failed: counted, given to the failed hook (the next sync retries it). */
static void failed(struct apply *a, const char *external_id, const char *dn, enum object_kind kind,
                   enum plan_op op, const char *what)
{
    a->counts.failed++;
    a->counts.failed_by_kind[kind]++;
    struct apply_failure f = {external_id, dn, kind, op, what};
    if (a->p.hooks.failed != NULL)
        a->p.hooks.failed(a->p.hooks.arg, &f);
}

static void report_failure(struct apply *a, struct apply_op *o, const char *what)
{
    failed(a, o->external_id, o->dn, o->kind, o->op, what);
    log_msg(a->p.log, LOG_LEVEL_ERROR, "%s %s %s failed: %s", plan_op_name(o->op),
            object_kind_name(o->kind), who(o), what);
}

/* The id from a created resource: its "id", else the last segment of Location. */
static char *created_id(const struct scim_response *r)
{
    const char *id = json_string_value(json_object_get(r->body, "id"));
    if (id != NULL)
        return strdup(id);
    if (r->location != NULL) {
        const char *slash = strrchr(r->location, '/');
        if (slash != NULL && slash[1] != '\0')
            return strdup(slash + 1);
    }
    return NULL;
}

/*
 * 413 Payload Too Large (RFC 9110 15.5.14) to the POST of a group that
 * carried members: RFC 7644 declares no limit for a single request
 * (bulk.maxPayloadSize is the Bulk limit), so the provider's is learned here.
 * The run's request limit becomes half the refused body, and the group is
 * sent again by recover() with the members that fit it; the others, and the
 * member PATCHes of every later group, follow that limit. False (a failure
 * of the object) when the POST carried no member or the limit would fall
 * under 1 KiB.
 */
static bool shrink_payload(struct apply *a, struct apply_op *o)
{
    long sent = (long)o->sent_len;
    long cap = sent / 2;
    if (o->kind != OBJECT_GROUP || o->post_members == 0 || cap < 1024)
        return false;
    if (cap < a->p.caps.max_payload) {
        log_msg(a->p.log, LOG_LEVEL_WARN,
                "the cloud refused the %ld-byte POST of group %s as too large (413): requests "
                "carry at most %ld bytes for the rest of this sync; set [cloud] max_payload to "
                "the provider's limit",
                sent, o->dn != NULL ? o->dn : o->external_id, cap);
        a->p.caps.max_payload = cap;
    }
    return true;
}

/*
 * The answer to o's write. What needs another request (a lookup, a read
 * and a second attempt, a re-creation) is marked here and done by recover()
 * once the batch's requests have all been answered.
 */
static void on_write_done(void *arg, const struct scim_response *r)
{
    struct apply_op *o = arg;
    struct apply *a = o->a;
    answered(a, o);
    if (stops_run(a, r))
        return; /* not a failure of the object: nothing was written */
    if (r->code != DIRCONN_OK) {
        if (o->op == PLAN_DELETE && r->status == 404) {
            o->ok = true; /* already gone: the goal is met */
            return;
        }
        if (o->create && r->status == 409 && r->attempts > 1) {
            /* An earlier attempt was applied before its answer was lost. */
            o->lookup = true;
            return;
        }
        if (o->create && r->maybe_applied) {
            /* The POST may have created it: look before creating it again. */
            o->lookup = true;
            o->recreate = true;
            return;
        }
        if (o->create && r->status == 413 && shrink_payload(a, o)) {
            /* Larger than the provider takes: fewer members in the POST, the rest by PATCH. */
            o->too_large = true;
            return;
        }
        if (r->status == 412 && o->if_match && !o->stale_retried) {
            /* Changed in the cloud since it was read: read it again, send once more. */
            o->stale = true;
            return;
        }
        if (r->status == 404 && o->op == PLAN_UPDATE && !o->create && !o->gone_handled) {
            /* Deleted in the cloud: found again by externalId, or created again. */
            o->gone = true;
            return;
        }
        if (r->status == 412) {
            report_failure(a, o,
                           "changed in the cloud since this sync read it (412); the next "
                           "sync updates it");
            return;
        }
        report_failure(a, o, r->error);
        return;
    }
    o->ok = true;
    free(o->new_version);
    o->new_version = dup_or_null(version_of(r));
    if (o->create) {
        free(o->new_cloud_id);
        o->new_cloud_id = created_id(r);
        if (o->new_cloud_id == NULL) {
            o->ok = false;
            report_failure(a, o, "the cloud returned no id for the created resource");
        }
    }
}

/* The query that finds o by externalId (RFC 7644 3.4.2.2); false when out of memory. */
static bool lookup_path(const struct apply_op *o, char path[2048])
{
    char filter[600];
    char *quoted = record_filter_string(o->external_id);
    if (quoted == NULL)
        return false;
    snprintf(filter, sizeof(filter), "externalId eq %s", quoted);
    free(quoted);
    char *esc = scim_url_escape(filter);
    if (esc == NULL)
        return false;
    snprintf(path, 2048, "%s?filter=%s&attributes=id", resource_paths[o->kind], esc);
    curl_free(esc);
    return true;
}

/* The answer to a POST sent again by find_created. */
static void on_recreate_done(void *arg, const struct scim_response *r)
{
    struct scim_response *out = arg;
    *out = *r;
    out->body = r->body != NULL ? json_incref(r->body) : NULL;
    out->etag = out->location = out->scim_type = out->detail = NULL;
    if (r->location != NULL)
        out->location = strdup(r->location);
}

/* o->sent_len for the POST body about to be sent; false when out of memory. */
static bool note_sent(struct apply_op *o, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    bool written = text != NULL;
    o->sent_len = written ? strlen(text) : 0;
    free(text);
    return written;
}

static json_t *create_body(struct apply *a, struct apply_op *o);

/*
 * An add that answered 409 on a retry: the first attempt created the object
 * and its answer was lost. Find it by externalId and record it; it is
 * recorded without its record, so the next sync brings it up to date. With
 * o->recreate (the answer was lost after sending: maybe applied), an object
 * that is not there is created now, and looked up again if that answer is
 * lost too.
 */
static void find_created(struct apply *a, struct apply_op *o)
{
    char path[2048];
    o->lookup = false;
    o->vouches = false; /* what it finds may hold other values */
    if (!lookup_path(o, path)) {
        report_failure(a, o, "out of memory");
        return;
    }
    for (int round = 0; round < 3; round++) {
        struct scim_response r;
        scim_port_request(a->p.port, "GET", path, NULL, NULL, &r);
        const char *id = json_string_value(
            json_object_get(json_array_get(json_object_get(r.body, "Resources"), 0), "id"));
        if (r.code == DIRCONN_OK && id != NULL) {
            o->new_cloud_id = strdup(id);
            o->ok = o->new_cloud_id != NULL;
            o->pending = true;
            log_msg(a->p.log, LOG_LEVEL_INFO,
                    "%s: created by an attempt whose answer was lost; recorded", who(o));
            scim_response_clear(&r);
            return;
        }
        if (stops_run(a, &r)) {
            scim_response_clear(&r);
            return;
        }
        if (r.code != DIRCONN_OK || !o->recreate || o->sent_len == 0) {
            report_failure(a, o,
                           r.code != DIRCONN_OK ? r.error
                                                : "409 Conflict, and no object has its externalId");
            scim_response_clear(&r);
            return;
        }
        scim_response_clear(&r);
        /* Not there: the lost POST was not applied. Create it now (the same body, built again). */
        json_t *body = create_body(a, o);
        struct scim_response w;
        memset(&w, 0, sizeof(w));
        struct dirconn_error serr;
        if (body == NULL ||
            port_submit(a, "POST", resource_paths[o->kind], body, NULL, SCIM_SUBMIT_CREATE,
                        on_recreate_done, &w, &serr) != DIRCONN_OK ||
            scim_port_run(a->p.port, &serr) != DIRCONN_OK) {
            json_decref(body);
            report_failure(a, o, "out of memory sending the object again");
            return;
        }
        json_decref(body);
        if (stops_run(a, &w)) {
            scim_response_clear(&w);
            return;
        }
        if (w.code == DIRCONN_OK) {
            o->new_cloud_id = created_id(&w);
            o->ok = o->new_cloud_id != NULL;
            if (!o->ok)
                report_failure(a, o, "the cloud returned no id for the created resource");
            scim_response_clear(&w);
            return;
        }
        if (w.status == 413 && shrink_payload(a, o)) {
            /* Larger than the provider takes alone (a group that went in /Bulk, whose answer
             * was lost): recover() sends it again with the members that fit, the rest by PATCH. */
            o->too_large = true;
            scim_response_clear(&w);
            return;
        }
        if (!w.maybe_applied) {
            report_failure(a, o, w.error);
            scim_response_clear(&w);
            return;
        }
        scim_response_clear(&w); /* lost again: look once more */
    }
    report_failure(a, o, "the cloud's answers to creating it were lost three times");
}

/*
 * The cloud forgets a deleted object everywhere: as a group member and as a
 * manager. The state's records of the objects that referred to it forget it
 * too, so that the object coming back later (same externalId, new cloud id)
 * is seen as a change of those groups and users.
 */
static int collect_ref(void *arg, const char *external_id, int kind, const char *cloud_id,
                       const char *record)
{
    (void)kind, (void)cloud_id, (void)record;
    return strlist_push(arg, external_id) ? 0 : 1;
}

static enum dirconn_err forget_references(struct apply *a, const char *gone_id)
{
    struct strlist refs = {0};
    enum dirconn_err e =
        state_referrers_foreach(a->p.st, gone_id, false, collect_ref, &refs, a->err);
    for (size_t i = 0; i < refs.n && e == DIRCONN_OK; i++) {
        struct state_object so = {0};
        bool found = false;
        e = state_object_get(a->p.st, refs.v[i], &so, &found, a->err);
        json_error_t jerr;
        json_t *rec =
            e == DIRCONN_OK && found && so.record ? json_loads(so.record, 0, &jerr) : NULL;
        if (rec != NULL) {
            bool changed = false;
            const char *mgr = json_string_value(json_object_get(rec, PLAN_KEY_MANAGER));
            if (mgr != NULL && strcmp(mgr, gone_id) == 0) {
                json_object_del(rec, PLAN_KEY_MANAGER);
                changed = true;
            }
            json_t *members = json_object_get(rec, PLAN_KEY_MEMBERS);
            for (size_t k = json_array_size(members); k > 0; k--) {
                if (strcmp(json_string_value(json_array_get(members, k - 1)), gone_id) == 0) {
                    json_array_remove(members, k - 1);
                    changed = true;
                }
            }
            char *text = changed ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            if (text != NULL) {
                char hash[65];
                record_hash(text, hash);
                free(so.record);
                free(so.hash);
                so.record = text;
                so.hash = strdup(hash);
                e = state_object_put(a->p.st, &so, a->err);
            }
            json_decref(rec);
        }
        state_object_clear(&so);
    }
    strlist_clear(&refs);
    return e;
}

/*
 * RFC 7644 leaves it to the service provider whether deleting a resource
 * removes it from the groups that list it and from the manager of its
 * reports ([cloud] delete_cascades). When the provider is not known to do
 * so, dirconn does it before the DELETE: for each object whose acknowledged
 * record refers to the one being deleted, a PATCH "remove" of
 * members[value eq "<id>"] (groups) or of the enterprise manager (users).
 * Returns false, with the object reported as failed, when one of them
 * fails: the object is then not deleted (the next sync tries again). A
 * referrer already gone from the cloud (404) needs nothing.
 */
/*
 * For a provider without PATCH: read the group or user at path, take out the
 * member whose value is target (a group) or the enterprise manager (a user),
 * and PUT the rest back (RFC 7644 3.5.1), If-Match with the version read; a
 * 412 (changed since it was read, RFC 7644 3.14) reads it again and sends
 * the PUT once more. *r is the answer of the GET when it failed, else of the
 * PUT (a resource that no longer lists target is not written: 200 of the GET).
 */
static void unlink_by_put(struct apply *a, int kind, const char *path, const char *target,
                          struct scim_response *r)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        scim_port_request(a->p.port, "GET", path, NULL, NULL, r);
        if (r->code != DIRCONN_OK || !json_is_object(r->body))
            return;
        json_t *doc = json_deep_copy(r->body);
        bool changed = false;
        if (kind == OBJECT_USER) {
            json_t *ext = json_object_get(doc, SCIM_SCHEMA_ENTERPRISE);
            changed = json_object_get(ext, "manager") != NULL;
            json_object_del(ext, "manager");
        } else {
            json_t *members = json_object_get(doc, "members"), *keep = json_array();
            size_t k;
            json_t *m;
            json_array_foreach(members, k, m)
            {
                const char *v = json_string_value(json_object_get(m, "value"));
                if (v != NULL && strcmp(v, target) == 0)
                    changed = true;
                else
                    json_array_append(keep, m);
            }
            json_object_set_new(doc, "members", keep);
        }
        if (!changed) {
            json_decref(doc);
            return;
        }
        char *if_match = a->p.caps.etag ? dup_or_null(version_of(r)) : NULL;
        json_object_del(doc, "meta");
        scim_response_clear(r);
        scim_port_request(a->p.port, "PUT", path, doc, if_match, r);
        bool again = r->status == 412 && if_match != NULL && attempt == 0;
        free(if_match);
        json_decref(doc);
        if (!again)
            return;
        log_msg(a->p.log, LOG_LEVEL_INFO,
                "%s changed in the cloud since it was read (412); reading it again", path);
        scim_response_clear(r);
    }
}

/* One referrer of o (a group listing it, a user it manages) loses the reference. */
static bool unlink_one(struct apply *a, struct apply_op *o, int kind, const char *cloud_id,
                       const char *label, bool *patched)
{
    char opath[600], path[600];
    if (kind == OBJECT_USER) {
        snprintf(opath, sizeof(opath), "%s:manager", SCIM_SCHEMA_ENTERPRISE);
    } else {
        char *v = record_filter_string(o->cloud_id);
        snprintf(opath, sizeof(opath), "members[value eq %s]", v != NULL ? v : "\"\"");
        free(v);
    }
    snprintf(path, sizeof(path), "%s/%s", resource_paths[kind], cloud_id);
    struct scim_response r;
    bool ok = true;
    if (a->p.caps.patch) {
        json_t *body = json_pack("{s:[s], s:[{s:s, s:s}]}", "schemas", SCIM_SCHEMA_PATCH,
                                 "Operations", "op", "remove", "path", opath);
        scim_port_request(a->p.port, "PATCH", path, body, NULL, &r);
        json_decref(body);
    } else {
        unlink_by_put(a, kind, path, o->cloud_id, &r);
    }
    if (stops_run(a, &r)) {
        ok = false;
    } else if (r.code != DIRCONN_OK && r.status != 404) {
        char why[DIRCONN_ERROR_LEN + 128];
        snprintf(why, sizeof(why), "removing it from %s %s before deleting it failed: %s",
                 kind == OBJECT_USER ? "the manager of user" : "group", label, r.error);
        report_failure(a, o, why);
        ok = false;
    } else {
        *patched = true;
        log_msg(a->p.log, LOG_LEVEL_DEBUG, "%s: removed from %s %s before its deletion", who(o),
                kind == OBJECT_USER ? "the manager of" : "group", path);
    }
    scim_response_clear(&r);
    return ok;
}

/*
 * The referrers the cloud knows and the state cannot tell: objects of the
 * map without an acknowledged record (a map rebuilt from the cloud
 * inventory after an HA takeover, adopted objects) may list o too. The
 * cloud is asked (RFC 7644 3.4.2.2 filters on members.value and the
 * enterprise manager.value): the groups that list o, and for a user the
 * users it manages. A provider without filters, or one that refuses the
 * filter, is not asked (a debug line says so): the next full sync compares
 * those objects with their cloud copies.
 */
struct referrer_walk {
    json_t *ids; /* [kind, id] pairs */
    int kind;
};

static int collect_referrer(void *arg, json_t *res)
{
    struct referrer_walk *w = arg;
    const char *id = json_string_value(json_object_get(res, "id"));
    if (id != NULL)
        json_array_append_new(w->ids, json_pack("[i, s]", w->kind, id));
    return 0;
}

static json_t *cloud_referrers(struct apply *a, struct apply_op *o)
{
    json_t *ids = json_array();
    if (ids == NULL || !a->p.caps.filter || o->cloud_id == NULL ||
        !state_object_has_unacknowledged(a->p.st))
        return ids;
    char *v = record_filter_string(o->cloud_id);
    if (v == NULL)
        return ids;
    for (int kind = OBJECT_USER; kind <= OBJECT_GROUP; kind++) {
        if (kind == OBJECT_USER && o->kind != OBJECT_USER)
            continue; /* only users manage */
        char filter[700];
        if (kind == OBJECT_GROUP)
            snprintf(filter, sizeof(filter), "members.value eq %s", v);
        else
            snprintf(filter, sizeof(filter), "%s:manager.value eq %s", SCIM_SCHEMA_ENTERPRISE, v);
        struct referrer_walk w = {ids, kind};
        struct dirconn_error lerr;
        dirconn_error_clear(&lerr);
        if (scim_port_list_all(a->p.port, resource_paths[kind], filter, "id",
                               (int)(a->p.caps.page > 0 ? a->p.caps.page : 100), collect_referrer,
                               &w, &lerr) != DIRCONN_OK)
            log_msg(a->p.log, LOG_LEVEL_DEBUG, "%s: the cloud was not asked who lists it: %s",
                    who(o), lerr.msg);
    }
    free(v);
    return ids;
}

struct unlink_walk {
    struct apply *a;
    struct apply_op *o;
    json_t *done; /* the cloud ids unlinked */
    bool ok, patched;
};

static int unlink_referrer(void *arg, const char *external_id, int kind, const char *cloud_id,
                           const char *record)
{
    struct unlink_walk *w = arg;
    if (strcmp(external_id, w->o->external_id) == 0)
        return 0;
    json_error_t jerr;
    json_t *rec = json_loads(record, 0, &jerr);
    bool refers = false;
    if (kind == OBJECT_USER) {
        const char *mgr = json_string_value(json_object_get(rec, PLAN_KEY_MANAGER));
        refers = mgr != NULL && strcmp(mgr, w->o->external_id) == 0;
    } else {
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(rec, PLAN_KEY_MEMBERS), k, m) refers =
            refers || (json_is_string(m) && strcmp(json_string_value(m), w->o->external_id) == 0);
    }
    json_decref(rec);
    if (!refers)
        return 0;
    w->ok = unlink_one(w->a, w->o, kind, cloud_id, external_id, &w->patched);
    json_array_append_new(w->done, json_string(cloud_id));
    return w->ok ? 0 : 1;
}

static bool unlink_referrers(struct apply *a, struct apply_op *o)
{
    struct unlink_walk w = {a, o, json_array(), true, false};
    struct dirconn_error serr;
    dirconn_error_clear(&serr);
    if (state_referrers_foreach(a->p.st, o->external_id, true, unlink_referrer, &w, &serr) !=
        DIRCONN_OK) {
        report_failure(a, o, serr.msg);
        json_decref(w.done);
        return false;
    }
    bool ok = w.ok, patched = w.patched;
    json_t *done = w.done;
    json_t *more = ok ? cloud_referrers(a, o) : NULL;
    size_t i;
    json_t *pair;
    json_array_foreach(more, i, pair)
    {
        if (!ok)
            break;
        const char *cloud_id = json_string_value(json_array_get(pair, 1));
        bool seen = false;
        size_t k;
        json_t *d;
        json_array_foreach(done, k, d) seen = seen || strcmp(json_string_value(d), cloud_id) == 0;
        if (seen || strcmp(cloud_id, o->cloud_id) == 0)
            continue;
        ok = unlink_one(a, o, (int)json_integer_value(json_array_get(pair, 0)), cloud_id, cloud_id,
                        &patched);
        json_array_append_new(done, json_string(cloud_id));
    }
    json_decref(more);
    json_decref(done);
    if (ok && patched) {
        /*
         * A member's version may change with its groups (the read-only "groups"
         * attribute, RFC 7643 4.1.2): the DELETE goes without the If-Match of
         * the version read before these PATCHes.
         */
        free(o->version);
        o->version = NULL;
    }
    return ok;
}

/*
 * The version recorded with o's record (state.h, version): the answer's, when
 * the copy it names holds all that was sent (holds_all_sent: o->vouches, the
 * members added after the write chained by If-Match) and nothing is left
 * pending.
 */
static bool holds_all_sent(const struct apply_op *o)
{
    return o->vouches && (!has_rest(o) || o->rest_chained);
}

static char *vouched_version(const struct apply_op *o)
{
    return holds_all_sent(o) && !o->pending ? o->new_version : NULL;
}

/* Record the acknowledged operations of a batch in the state, in one transaction. */
static enum dirconn_err commit_batch(struct apply *a, struct batch *b)
{
    enum dirconn_err e = state_begin(a->p.st, a->err);
    for (int i = 0; i < b->n && e == DIRCONN_OK; i++) {
        struct apply_op *o = &b->ops[i];
        if (!o->ok)
            continue;
        if (o->op == PLAN_DELETE || o->op == PLAN_FORGET) {
            e = state_object_delete(a->p.st, o->external_id, a->err);
            if (e == DIRCONN_OK && o->kind != OBJECT_CONTACT)
                e = forget_references(a, o->external_id);
            if (o->op == PLAN_DELETE) {
                a->counts.deleted++;
                a->counts.deleted_by_kind[o->kind]++;
            }
            continue;
        }
        struct state_object so = {
            .external_id = o->external_id,
            .kind = o->kind,
            .dn = o->dn,
            .cloud_id = o->new_cloud_id != NULL ? o->new_cloud_id : o->cloud_id,
            .name = o->name,
            .hash = o->pending ? NULL : o->hash,
            .record = o->pending ? NULL : o->record,
            .origin = o->origin,
            .synced_at = (int64_t)time(NULL),
            .version = vouched_version(o),
        };
        e = state_object_put(a->p.st, &so, a->err);
        /* a pending creation: the follow-up pass writes with If-Match of its version */
        if (e == DIRCONN_OK && o->pending && !o->followup && o->op == PLAN_ADD &&
            holds_all_sent(o) && o->new_version != NULL &&
            json_object_set_new(a->created_versions, o->external_id, json_string(o->new_version)) !=
                0)
            e = dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
        if (e == DIRCONN_OK && o->recreated && o->kind != OBJECT_CONTACT)
            /* the old cloud id is gone: who referred to it is rewritten by the next sync */
            e = forget_references(a, o->external_id);
        if (e == DIRCONN_OK && o->recreated && o->kind == OBJECT_GROUP &&
            json_object_set_new(a->settled, o->external_id, json_null()) != 0)
            e = dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
        if (o->pending)
            a->pending++;
        if (o->followup)
            continue;
        if (o->op == PLAN_ADD) {
            a->counts.added++;
            a->counts.added_by_kind[o->kind]++;
        } else if (o->op == PLAN_UPDATE) {
            a->counts.updated++;
            a->counts.updated_by_kind[o->kind]++;
        }
    }
    if (e == DIRCONN_OK)
        e = state_commit(a->p.st, a->err);
    else
        state_rollback(a->p.st);
    for (int i = 0; i < b->n; i++)
        op_clear(&b->ops[i]);
    b->n = 0;
    return e;
}

/* Bytes of a PATCH request around its operations, and per value or operation (estimates). */
#define PATCH_OVERHEAD         256
#define MEMBER_VALUE_OVERHEAD  16
#define MEMBER_REMOVE_OVERHEAD 64
/*
 * Member PATCHes of one group queued ahead of their answers while a batch is
 * tracked (a->outstanding): the bodies wait in memory until they are sent, so
 * a group of 200,000 members does not hold its 400 PATCHes (10 MB) at once.
 */
#define MEMBER_PATCHES_AHEAD 16

struct count_below {
    const int *count;
    int limit;
};

static bool count_below(void *arg)
{
    const struct count_below *c = arg;
    return *c->count < c->limit;
}

/*
 * The cloud ids of a JSON array of ids (strings) or of member objects
 * ({"value": id}), pointing into it: a new array (free it, not the strings),
 * NULL when out of memory. Entries without an id are left out.
 */
static const char **ids_of_json(const json_t *a, size_t *n)
{
    size_t len = json_array_size(a), k = 0;
    const char **v = malloc((len > 0 ? len : 1) * sizeof(*v));
    for (size_t i = 0; v != NULL && i < len; i++) {
        const json_t *m = json_array_get(a, i);
        const char *id = json_is_string(m) ? json_string_value(m)
                                           : json_string_value(json_object_get(m, "value"));
        if (id != NULL)
            v[k++] = id;
    }
    *n = k;
    return v;
}

/*
 * One member PATCH body (RFC 7644 3.5.2.1, 3.5.2.2) from ids[*i] on: "add"
 * of "members" values, one operation holding as many values as fit [cloud]
 * max_payload (and at most MEMBER_CHUNK); or "remove" of
 * members[value eq "<id>"], at most [cloud] patch_max_operations operations
 * and max_payload bytes. *i moves past the ids it holds. NULL when out of
 * memory.
 */
static json_t *member_patch_body(const struct apply *a, const char *const *ids, size_t n,
                                 bool remove, size_t *i)
{
    long budget = a->p.caps.max_payload - PATCH_OVERHEAD;
    if (budget < 1024)
        budget = 1024;
    json_t *ops = json_array(), *vals = remove ? NULL : json_array();
    long used = 0;
    size_t count = 0;
    for (; *i < n; (*i)++) {
        const char *id = ids[*i];
        long size = (long)strlen(id) + (remove ? MEMBER_REMOVE_OVERHEAD : MEMBER_VALUE_OVERHEAD);
        if (count > 0 && (used + size > budget || (remove ? (long)count >= a->p.caps.patch_max_ops
                                                          : count >= MEMBER_CHUNK)))
            break;
        used += size;
        count++;
        if (remove) {
            char *q = record_filter_string(id);
            char p[600];
            snprintf(p, sizeof(p), "members[value eq %s]", q != NULL ? q : "\"\"");
            free(q);
            json_array_append_new(ops, json_pack("{s:s, s:s}", "op", "remove", "path", p));
        } else {
            json_array_append_new(vals, json_pack("{s:s}", "value", id));
        }
    }
    if (!remove)
        json_array_append_new(
            ops, json_pack("{s:s, s:s, s:o}", "op", "add", "path", "members", "value", vals));
    return json_pack("{s:[s], s:o}", "schemas", SCIM_SCHEMA_PATCH, "Operations", ops);
}

/*
 * Membership changes of one group as PATCH requests within the provider's
 * limits (member_patch_body). ids: n cloud ids. arg_for(ctx) gives each
 * request its callback argument. While a batch is tracked, at most
 * MEMBER_PATCHES_AHEAD of these requests wait for their answers: the port
 * runs until half of them came.
 */
static enum dirconn_err submit_member_patches(struct apply *a, const char *path,
                                              const char *const *ids, size_t n, bool remove,
                                              scim_done_fn done, void *(*arg_for)(void *ctx),
                                              void *ctx)
{
    size_t i = 0;
    int *tracked = a->outstanding;
    int base = tracked != NULL ? *tracked : 0;
    while (i < n) {
        json_t *body = member_patch_body(a, ids, n, remove, &i);
        void *arg = arg_for(ctx);
        enum dirconn_err e = body == NULL || arg == NULL
                                 ? dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory")
                                 : port_submit(a, "PATCH", path, body, NULL,
                                               SCIM_SUBMIT_STATUS_ONLY, done, arg, a->err);
        json_decref(body);
        if (e == DIRCONN_OK && tracked != NULL && *tracked >= base + MEMBER_PATCHES_AHEAD) {
            struct count_below below = {tracked, base + MEMBER_PATCHES_AHEAD / 2};
            e = scim_port_run_until(a->p.port, count_below, &below, a->err);
        }
        if (e != DIRCONN_OK)
            return e; /* arg is freed by the caller's bookkeeping (or is not owned) */
    }
    return DIRCONN_OK;
}

/* submit_member_patches of a JSON array of ids or member objects (ids_of_json). */
static enum dirconn_err submit_member_patches_json(struct apply *a, const char *path,
                                                   const json_t *ids, bool remove,
                                                   scim_done_fn done, void *(*arg_for)(void *ctx),
                                                   void *ctx)
{
    size_t n = 0;
    const char **v = ids_of_json(ids, &n);
    if (v == NULL)
        return dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
    enum dirconn_err e = submit_member_patches(a, path, v, n, remove, done, arg_for, ctx);
    free(v);
    return e;
}

/* The members a group's creation could not carry: a failure leaves it recorded without record. */
static void on_rest_done(void *arg, const struct scim_response *r)
{
    struct apply_op *o = arg;
    if (r->code == DIRCONN_OK)
        return;
    if (stops_run(o->a, r)) {
        o->rest_failed = true; /* not recorded: the next sync adds the rest */
        return;
    }
    if (!o->rest_failed) {
        o->rest_failed = true;
        report_failure(o->a, o, r->error);
    }
}

static void *same_arg(void *ctx)
{
    return ctx;
}

static void on_rest_link_done(void *arg, const struct scim_response *r);

/* The path of the group the rest goes to: created in this run, or (a follow-up) before. */
static void rest_path(const struct apply_op *o, char path[512])
{
    snprintf(path, 512, "%s/%s", resource_paths[o->kind],
             o->new_cloud_id != NULL ? o->new_cloud_id : o->cloud_id);
}

/* The next PATCH of a group's rest chain (send_rest), from o->rest_at on. */
static enum dirconn_err submit_rest_link(struct apply *a, struct apply_op *o,
                                         struct dirconn_error *err)
{
    char path[512];
    rest_path(o, path);
    o->rest_next = o->rest_at;
    json_t *body =
        member_patch_body(a, (const char *const *)o->members.v, o->members.n, false, &o->rest_next);
    enum dirconn_err e =
        body == NULL ? dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory")
                     : port_submit(a, "PATCH", path, body, o->rest_chained ? o->new_version : NULL,
                                   SCIM_SUBMIT_STATUS_ONLY, on_rest_link_done, o, err);
    json_decref(body);
    return e;
}

/*
 * The answer to a PATCH of the chain: its ETag is the If-Match of the next
 * one. A 412 (the group was edited in the cloud meanwhile, or a lost answer's
 * PATCH was applied and sent again) or an answer without an ETag ends the
 * chain: the rest goes on one PATCH at a time without If-Match (adding a
 * member twice changes nothing), and the group is recorded without a version,
 * so the next sync compares it with a fresh read.
 */
static void on_rest_link_done(void *arg, const struct scim_response *r)
{
    struct apply_op *o = arg;
    struct apply *a = o->a;
    if (r->status == 412 && o->rest_chained) {
        o->rest_chained = false; /* this PATCH again, without If-Match */
    } else if (r->code != DIRCONN_OK) {
        on_rest_done(arg, r);
        return;
    } else {
        o->rest_at = o->rest_next;
        free(o->new_version);
        o->new_version = o->rest_chained ? dup_or_null(r->etag) : NULL;
        o->rest_chained = o->new_version != NULL;
    }
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (o->rest_at < o->members.n && submit_rest_link(a, o, &err) != DIRCONN_OK) {
        o->rest_failed = true;
        report_failure(a, o, err.msg);
    }
}

/*
 * The members a group's creation could not carry, by PATCH once it exists
 * (and the member groups a follow-up adds, created after it). When the
 * provider keeps versions (etag.supported) and the answer to the write gave
 * one that vouches for the copy, they go as a chain: one PATCH
 * at a time, each with If-Match of the version before it (RFC 7644 3.14),
 * so that the last answer's version vouches for the whole record and the
 * next no-change sync need not read the group (a group of 100,000 members is
 * megabytes). Otherwise up to MEMBER_PATCHES_AHEAD go at once and the group
 * is recorded without a version.
 */
static enum dirconn_err send_rest(struct apply *a, struct apply_op *o)
{
    if (a->p.caps.etag && o->vouches && o->new_version != NULL) {
        o->rest_at = o->post_members;
        o->rest_chained = true;
        return submit_rest_link(a, o, a->err);
    }
    char path[512];
    rest_path(o, path);
    return submit_member_patches(a, path, (const char *const *)o->members.v + o->post_members,
                                 o->members.n - o->post_members, false, on_rest_done, same_arg, o);
}

/*
 * The PATCH body (RFC 7644 3.5.2) that turns the last acknowledged record
 * (old_record, as the state holds it; NULL when it was recorded without one)
 * into rec (resolved), members excluded: only what changed, a "remove" at
 * the path of each cleared value (record_patch_ops). Groups set values with
 * "add" (RFC 7644 3.5.2.1), which some providers require instead of
 * "replace". NULL when out of memory.
 */
static json_t *patch_for(struct apply *a, const struct apply_op *o, json_t *rec,
                         const char *old_record)
{
    json_t *was = NULL;
    if (old_record != NULL) {
        struct plan_item old = {.op = PLAN_UPDATE,
                                .kind = o->kind,
                                .external_id = o->external_id,
                                .record = old_record};
        was = plan_resolve(a->p.plan, &old, PLAN_MEMBERS_NONE, NULL);
        if (was != NULL)
            json_object_set_new(was, "externalId", json_string(o->external_id));
    }
    struct record_patch_rules rules = {.set_with_add = o->kind == OBJECT_GROUP};
    json_t *ops = record_patch_ops(was, rec, NULL, &rules);
    json_decref(was);
    if (ops == NULL)
        return NULL;
    return json_pack("{s:[s], s:o}", "schemas", SCIM_SCHEMA_PATCH, "Operations", ops);
}

/*
 * The PATCH body that turns the cloud's copy of the resource (as read now)
 * into rec for the leaves of the mapping's scope, values outside it left
 * alone; members excluded. NULL when out of memory.
 */
static json_t *patch_against(struct apply *a, const struct apply_op *o, const json_t *rec,
                             const json_t *cloud)
{
    struct record_patch_rules rules = {.set_with_add = o->kind == OBJECT_GROUP};
    json_t *ops = record_patch_ops(cloud, rec, &a->p.scope[o->kind], &rules);
    if (ops == NULL)
        return NULL;
    return json_pack("{s:[s], s:o}", "schemas", SCIM_SCHEMA_PATCH, "Operations", ops);
}

struct bulk_req {
    struct apply *a;
    struct batch *b;
    int first, count;
    size_t payload; /* the request's size in bytes, about */
};

const json_t *apply_bulk_result(const json_t *body, const char *bulk_id, long *status,
                                const char **detail, const char **id)
{
    const json_t *res = NULL;
    size_t k;
    json_t *item;
    json_array_foreach(json_object_get(body, "Operations"), k, item)
    {
        const char *bid = json_string_value(json_object_get(item, "bulkId"));
        if (bid != NULL && strcmp(bid, bulk_id) == 0)
            res = item;
    }
    json_t *st = json_object_get(res, "status");
    *status =
        json_is_string(st) ? strtol(json_string_value(st), NULL, 10) : (long)json_integer_value(st);
    *detail = json_string_value(json_object_get(json_object_get(res, "response"), "detail"));
    const char *loc = json_string_value(json_object_get(res, "location"));
    const char *slash = loc != NULL ? strrchr(loc, '/') : NULL;
    *id = json_string_value(json_object_get(json_object_get(res, "response"), "id"));
    if (*id == NULL && slash != NULL)
        *id = slash + 1;
    return res;
}

static void on_bulk_done(void *arg, const struct scim_response *r)
{
    struct bulk_req *br = arg;
    struct apply *a = br->a;
    if (stops_run(a, r)) {
        for (int i = 0; i < br->count; i++)
            if (br->b->ops[br->first + i].in_bulk)
                answered(a, &br->b->ops[br->first + i]);
        free(br);
        return;
    }
    if (r->maybe_applied) {
        /* Some or all of the bulk may have been applied: each is looked up, then created. */
        for (int i = 0; i < br->count; i++) {
            struct apply_op *o = &br->b->ops[br->first + i];
            if (!o->in_bulk)
                continue;
            answered(a, o);
            o->lookup = true;
            o->recreate = true;
        }
        free(br);
        return;
    }
    if (r->code != DIRCONN_OK && r->status == 413) {
        /* Larger than the provider takes after all: smaller Bulk requests from now on, and
         * these operations are sent one by one (a group with fewer members if it must). */
        long cap = (long)br->payload / 2;
        if (cap < a->p.caps.bulk_max_payload) {
            log_msg(a->p.log, LOG_LEVEL_WARN,
                    "the cloud refused a %zu-byte /Bulk request as too large (413): its %d "
                    "operations are sent one by one, and Bulk requests carry at most %ld bytes "
                    "for the rest of this sync",
                    br->payload, br->count, cap);
            a->p.caps.bulk_max_payload = cap;
        }
        for (int i = 0; i < br->count; i++) {
            struct apply_op *o = &br->b->ops[br->first + i];
            if (!o->in_bulk)
                continue;
            answered(a, o);
            o->too_large = true;
        }
        free(br);
        return;
    }
    if (r->code != DIRCONN_OK) {
        for (int i = 0; i < br->count; i++) {
            struct apply_op *o = &br->b->ops[br->first + i];
            if (!o->in_bulk)
                continue;
            answered(a, o);
            report_failure(a, o, r->error);
        }
        free(br);
        return;
    }
    for (int i = 0; i < br->count; i++) {
        struct apply_op *o = &br->b->ops[br->first + i];
        if (!o->in_bulk)
            continue; /* a group too large for a bulk operation, sent alone */
        answered(a, o);
        long status = 0;
        const char *detail = NULL, *rid = NULL;
        const json_t *res = apply_bulk_result(r->body, o->external_id, &status, &detail, &rid);
        if (res != NULL && status == 409 && r->attempts > 1) {
            o->lookup = true;
            continue;
        }
        if (res == NULL || status < 200 || status >= 300) {
            char why[512];
            snprintf(why, sizeof(why), "bulk operation answered %ld%s%s", status,
                     detail ? ": " : "", detail ? detail : "");
            report_failure(a, o, res == NULL ? "no result in the bulk response" : why);
            continue;
        }
        o->new_cloud_id = rid != NULL ? strdup(rid) : NULL;
        o->ok = o->new_cloud_id != NULL;
        /* the operation's version (RFC 7644 3.7.3), else the resource's meta.version */
        const char *ver = json_string_value(json_object_get(res, "version"));
        if (ver == NULL)
            ver = json_string_value(json_object_get(
                json_object_get(json_object_get(res, "response"), "meta"), "version"));
        free(o->new_version);
        o->new_version = dup_or_null(ver);
        if (!o->ok)
            report_failure(a, o, "the bulk result names no location");
    }
    free(br);
}

/* Send the ADDs of a batch with /Bulk (RFC 7644 3.7) within the server's limits. */
static enum dirconn_err submit_bulk(struct apply *a, struct batch *b, json_t **bodies, int from,
                                    int to)
{
    int i = from;
    while (i < to) {
        json_t *ops = json_array();
        size_t payload = BULK_REQ_OVERHEAD;
        int first = i;
        long max_ops =
            a->p.caps.bulk_max_operations < BULK_CHUNK ? a->p.caps.bulk_max_operations : BULK_CHUNK;
        while (i < to && (long)json_array_size(ops) < max_ops) {
            if (bodies[i] == NULL) { /* sent alone (send_op) */
                i++;
                continue;
            }
            /* sent_len is the size of bodies[i] as send_op wrote it: not written again here */
            size_t sent = b->ops[i].sent_len;
            char *text = sent == 0 ? json_dumps(bodies[i], JSON_COMPACT) : NULL;
            size_t len = sent > 0       ? sent + BULK_OP_OVERHEAD
                         : text != NULL ? strlen(text) + BULK_OP_OVERHEAD
                                        : 0;
            free(text);
            if (json_array_size(ops) > 0 && (long)(payload + len) > a->p.caps.bulk_max_payload)
                break;
            payload += len;
            json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:O}", "method", "POST", "path",
                                                 resource_paths[b->ops[i].kind], "bulkId",
                                                 b->ops[i].external_id, "data", bodies[i]));
            i++;
        }
        if (json_array_size(ops) == 0) { /* the batch's last adds were all sent alone */
            json_decref(ops);
            break;
        }
        json_t *req =
            json_pack("{s:[s], s:o}", "schemas", SCIM_SCHEMA_BULK_REQUEST, "Operations", ops);
        struct bulk_req *br = malloc(sizeof(*br));
        if (br == NULL) {
            json_decref(req);
            return dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
        }
        *br = (struct bulk_req){a, b, first, i - first, payload};
        enum dirconn_err e = port_submit(a, "POST", "/Bulk", req, NULL, SCIM_SUBMIT_CREATE,
                                         on_bulk_done, br, a->err);
        json_decref(req);
        if (e != DIRCONN_OK) {
            free(br);
            return e;
        }
    }
    return DIRCONN_OK;
}

/*
 * Send o's write; on_write_done takes its answer. body is borrowed (a PATCH
 * body is kept for a second attempt after a 412). A POST is a creation
 * (scim_port_submit_create: never resent after an ambiguous failure). Errors:
 * those of the port's submit.
 */
static enum dirconn_err submit_write(struct apply *a, struct apply_op *o, const char *method,
                                     const char *path, json_t *body, const char *if_match,
                                     struct dirconn_error *err)
{
    o->method = method;
    o->if_match = if_match != NULL;
    o->create = strcmp(method, "POST") == 0;
    json_decref(o->body);
    o->body = strcmp(method, "PATCH") == 0 ? json_incref(body) : NULL;
    return port_submit(a, method, path, body, if_match, o->create ? SCIM_SUBMIT_CREATE : 0,
                       on_write_done, o, err);
}

/* o's planned record resolved to cloud ids (plan_resolve), with its externalId; NULL on error. */
static json_t *resolved(struct apply *a, const struct apply_op *o, int members, long *unresolved)
{
    struct plan_item it = {
        .op = o->op, .kind = o->kind, .external_id = o->external_id, .record = o->record};
    json_t *rec = plan_resolve(a->p.plan, &it, members, unresolved);
    if (rec != NULL)
        json_object_set_new(rec, "externalId", json_string(o->external_id));
    return rec;
}

/*
 * The size of a member value's compact JSON, {"value":"<id>"}: counted for
 * an id that jansson writes as it is, asked of jansson for the others.
 */
static long member_json_size(const char *id)
{
    long n = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c != '\0'; c++, n++) {
        if (*c < 0x20 || *c == '"' || *c == '\\' || *c >= 0x7f) {
            json_t *m = json_pack("{s:s}", "value", id);
            char *t = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
            n = t != NULL ? (long)strlen(t) : 0;
            free(t);
            json_decref(m);
            return n;
        }
    }
    return n + (long)strlen("{\"value\":\"\"}");
}

/*
 * The body of the POST that creates o (RFC 7644 3.3): its resolved record.
 * A group's POST carries the members that fit [cloud] max_payload; the
 * others stay in o->members (after post_members) and are added by PATCH once
 * the group exists (submit_member_patches). A manager, or a member, without
 * a cloud id yet (created later in this run) makes o pending: the follow-up
 * pass (apply_pending) sets it. NULL when the planned record cannot be read.
 */
static json_t *create_body(struct apply *a, struct apply_op *o)
{
    long unresolved = 0;
    plan_ids_free(&o->members);
    o->post_members = 0;
    if (o->kind != OBJECT_GROUP) {
        json_t *rec = resolved(a, o, PLAN_MEMBERS_NONE, &unresolved);
        o->pending = unresolved > 0;
        return rec;
    }
    struct plan_item it = {
        .op = o->op, .kind = o->kind, .external_id = o->external_id, .record = o->record};
    json_t *rec = plan_resolve_ids(a->p.plan, &it, &o->members, &unresolved);
    if (rec == NULL)
        return NULL;
    json_object_set_new(rec, "externalId", json_string(o->external_id));
    o->pending = unresolved > 0;
    json_t *members = json_object_get(rec, "members");
    size_t nm = o->members.n, keep = nm;
    if (nm > 0) {
        /* exact sizes: the body without members, then each member's compact JSON and its comma */
        char *text = json_dumps(rec, JSON_COMPACT);
        long used = text != NULL ? (long)strlen(text) - 1 : 0, all = used;
        free(text);
        long *msize = malloc(nm * sizeof(long));
        for (size_t k = 0; msize != NULL && k < nm; k++)
            all += msize[k] = member_json_size(o->members.v[k]) + 1;
        if (msize == NULL)
            keep = 0;
        else if (all + PATCH_OVERHEAD > a->p.caps.max_payload)
            for (keep = 0;
                 keep < nm && used + msize[keep] + PATCH_OVERHEAD <= a->p.caps.max_payload;)
                used += msize[keep++];
        free(msize);
    }
    for (size_t k = 0; k < keep; k++)
        if (json_array_append_new(members, json_pack("{s:s}", "value", o->members.v[k])) != 0) {
            json_decref(rec);
            plan_ids_free(&o->members);
            return NULL;
        }
    o->post_members = keep;
    if (keep == nm)
        plan_ids_free(&o->members); /* all in the POST: nothing is held for PATCHes */
    return rec;
}

/*
 * The body of the PUT (RFC 7644 3.5.1) that gives the cloud's copy of o, as
 * read now, the planned values of the mapped attributes (members included
 * for groups), values outside the mapping kept. NULL when out of memory.
 */
static json_t *put_body(struct apply *a, const struct apply_op *o, const json_t *cloud)
{
    json_t *full =
        resolved(a, o, o->kind == OBJECT_GROUP ? PLAN_MEMBERS_ALL : PLAN_MEMBERS_NONE, NULL);
    json_t *body = full != NULL
                       ? record_overlay(cloud, full, &a->p.scope[o->kind], o->kind == OBJECT_GROUP)
                       : NULL;
    json_decref(full);
    return body;
}

/*
 * Read o's resource at path as the cloud holds it now into *g (the caller
 * clears it). false when there is nothing to write against: the lease was
 * lost, the resource is gone (404: an update is marked gone the first time,
 * a deletion has met its goal), or the read failed (reported). o counts as
 * answered then.
 */
static bool read_current(struct apply *a, struct apply_op *o, const char *path,
                         struct scim_response *g)
{
    scim_port_request(a->p.port, "GET", path, NULL, NULL, g);
    if (g->code == DIRCONN_OK && json_is_object(g->body))
        return true;
    answered(a, o);
    if (stops_run(a, g))
        return false;
    if (g->status == 404 && o->op == PLAN_DELETE)
        o->ok = true;
    else if (g->status == 404 && o->op == PLAN_UPDATE && !o->gone_handled)
        o->gone = true;
    else
        report_failure(a, o, g->code != DIRCONN_OK ? g->error : "the cloud sent no resource");
    return false;
}

/*
 * Members of a group diffed against the cloud's copy (drift, or a group
 * found again under another id): PATCH remove of the members it has and
 * should not, add of those it lacks.
 */
static enum dirconn_err members_against(struct apply *a, struct apply_op *o, const char *path,
                                        const json_t *cloud)
{
    json_t *full = resolved(a, o, PLAN_MEMBERS_ALL, NULL);
    json_t *want = record_member_ids(full), *have = record_member_ids(cloud);
    json_t *add = json_array(), *del = json_array();
    /* record_member_ids gives both sets sorted and without repeats: one merge walk. */
    size_t i = 0, j = 0, nw = json_array_size(want), nh = json_array_size(have);
    while (i < nw || j < nh) {
        json_t *w = json_array_get(want, i), *h = json_array_get(have, j);
        int c = i == nw ? 1 : j == nh ? -1 : strcmp(json_string_value(w), json_string_value(h));
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            json_array_append(add, w);
            i++;
        } else {
            json_array_append(del, h);
            j++;
        }
    }
    enum dirconn_err e = DIRCONN_OK;
    if (json_array_size(del) > 0)
        e = submit_member_patches_json(a, path, del, true, on_rest_done, same_arg, o);
    if (e == DIRCONN_OK && json_array_size(add) > 0)
        e = submit_member_patches_json(a, path, add, false, on_rest_done, same_arg, o);
    json_decref(add);
    json_decref(del);
    json_decref(want);
    json_decref(have);
    json_decref(full);
    return e;
}

/*
 * Send an update (PLAN_UPDATE, and the follow-up pass): a PATCH of what
 * changed (RFC 7644 3.5.2) since the last acknowledged record, or since the
 * cloud's copy read now (drift); members of updated groups go separately
 * (apply_members). A provider without PATCH (patch.supported false) gets a
 * GET and a PUT of the resource with the mapped values set, unmapped values
 * kept, members included, If-Match with the version read. Returns an error
 * only when the batch cannot go on (out of memory, the port).
 */
static enum dirconn_err send_update(struct apply *a, struct apply_op *o)
{
    long unresolved = 0;
    json_t *rec = resolved(a, o, PLAN_MEMBERS_NONE, &unresolved);
    if (rec == NULL) {
        report_failure(a, o, "the planned record cannot be read");
        answered(a, o);
        return DIRCONN_OK;
    }
    /* A manager created later in this run is set by the follow-up pass (apply_pending). */
    o->pending = unresolved > 0;
    char path[512];
    op_path(o, path);
    enum dirconn_err e = DIRCONN_OK;
    struct scim_response g;
    memset(&g, 0, sizeof(g));
    if (!a->p.caps.patch) {
        o->vouches = true; /* the PUT is built from the copy read now */
        if (read_current(a, o, path, &g)) {
            json_t *body = put_body(a, o, g.body);
            e = body == NULL ? dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory")
                             : submit_write(a, o, "PUT", path, body,
                                            a->p.caps.etag ? version_of(&g) : g.etag, a->err);
            json_decref(body);
        }
        scim_response_clear(&g);
        json_decref(rec);
        return e;
    }
    json_t *patch = NULL;
    o->vouches = false;
    if (o->drift) {
        /* Diff against the cloud's copy as it is now, within the mapping's scope. */
        o->vouches = o->kind != OBJECT_GROUP;
        if (!read_current(a, o, path, &g)) {
            scim_response_clear(&g);
            json_decref(rec);
            return DIRCONN_OK;
        }
        patch = patch_against(a, o, rec, g.body);
        if (patch != NULL && o->kind == OBJECT_GROUP)
            e = members_against(a, o, path, g.body);
        scim_response_clear(&g);
    } else {
        struct state_object so = {0};
        bool known = false;
        state_object_get(a->p.st, o->external_id, &so, &known, NULL);
        patch = patch_for(a, o, rec, known ? so.record : NULL);
        /* With If-Match of the version the state holds, the patched copy holds rec; a
         * follow-up's, with If-Match of the version its creation gave (created_versions). */
        o->vouches = o->followup ? o->version != NULL
                                 : o->kind != OBJECT_GROUP && known && so.record != NULL &&
                                       so.version != NULL && o->version != NULL &&
                                       strcmp(so.version, o->version) == 0;
        state_object_clear(&so);
    }
    json_decref(rec);
    if (patch == NULL)
        return dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && o->followup && o->kind == OBJECT_GROUP) {
        /*
         * The group was created with every member that had a cloud id:
         * all users. What was missing are member groups created after it;
         * add those now, in bounded chunks.
         */
        struct plan_item it = {
            .op = o->op, .kind = o->kind, .external_id = o->external_id, .record = o->record};
        plan_ids_free(&o->members);
        o->post_members = 0;
        /* added once the PATCH below is answered, as the rest of a creation (send_rest) */
        if (!plan_member_ids(a->p.plan, &it, OBJECT_GROUP, &o->members, NULL))
            e = dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
    }
    if (e == DIRCONN_OK && json_array_size(json_object_get(patch, "Operations")) == 0) {
        /* The cloud already holds these values (say, a changed member only). */
        o->ok = true;
        free(o->new_version);
        /* the copy left as it was: with its version, when that vouched for the old record */
        o->new_version = o->drift ? NULL : dup_or_null(o->version);
        answered(a, o);
    } else if (e == DIRCONN_OK) {
        e = submit_write(a, o, "PATCH", path, patch, o->version, a->err);
    }
    json_decref(patch);
    return e;
}

/* Send one object of a batch; adds go to *bulk_body instead when bulk_body is not NULL. */
static enum dirconn_err send_op(struct apply *a, struct apply_op *o, json_t **bulk_body)
{
    if (o->op == PLAN_FORGET) {
        o->ok = true;
        answered(a, o);
        return DIRCONN_OK;
    }
    if (o->op == PLAN_DELETE) {
        if (!a->p.delete_cascades && o->kind != OBJECT_CONTACT && o->cloud_id != NULL &&
            !unlink_referrers(a, o)) {
            answered(a, o);
            return DIRCONN_OK;
        }
        char path[512];
        op_path(o, path);
        return submit_write(a, o, "DELETE", path, NULL, o->version, a->err);
    }
    if (o->op == PLAN_UPDATE)
        return send_update(a, o);
    json_t *rec = create_body(a, o);
    if (rec == NULL) {
        report_failure(a, o, "the planned record cannot be read");
        answered(a, o);
        return DIRCONN_OK;
    }
    bool written = note_sent(o, rec);
    o->create = true;
    o->vouches = true; /* the created copy holds the record (groups: unless has_rest) */
    /*
     * A group whose POST body (members up to [cloud] max_payload) would not
     * fit one operation of a /Bulk request of the provider's size goes alone.
     */
    if (bulk_body != NULL &&
        (!written ||
         (long)o->sent_len + BULK_OP_OVERHEAD + BULK_REQ_OVERHEAD <= a->p.caps.bulk_max_payload)) {
        *bulk_body = rec;
        o->in_bulk = true;
        return DIRCONN_OK;
    }
    enum dirconn_err e = submit_write(a, o, "POST", resource_paths[o->kind], rec, NULL, a->err);
    json_decref(rec);
    return e;
}

/* Send o's write and wait for its answer (recovery, one object at a time). */
static void write_now(struct apply *a, struct apply_op *o, const char *method, const char *path,
                      json_t *body, const char *if_match)
{
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (submit_write(a, o, method, path, body, if_match, &err) != DIRCONN_OK ||
        scim_port_run(a->p.port, &err) != DIRCONN_OK)
        report_failure(a, o, err.msg);
}

/*
 * 412 Precondition Failed to a write sent with If-Match (RFC 7644 3.14):
 * the resource changed in the cloud since it was read. Read it again and
 * send the write once more with the version read (meta.version, else the
 * ETag header): a DELETE or a PATCH as it was, the PATCH of a drifted object
 * diffed again against the fresh copy, a PUT rebuilt from the fresh copy so
 * that the values outside the mapping are the cloud's current ones. A
 * second 412 is a failure of the object (on_write_done).
 */
static void retry_stale(struct apply *a, struct apply_op *o)
{
    o->stale = false;
    o->stale_retried = true;
    char path[512];
    op_path(o, path);
    struct scim_response g;
    if (!read_current(a, o, path, &g)) {
        scim_response_clear(&g);
        return;
    }
    log_msg(a->p.log, LOG_LEVEL_INFO,
            "%s: changed in the cloud since this sync read it (412); read again, sent once more",
            who(o));
    const char *method = o->method;
    json_t *body = NULL;
    if (strcmp(method, "PUT") == 0) {
        body = put_body(a, o, g.body);
    } else if (strcmp(method, "PATCH") == 0 && o->drift) {
        json_t *rec = resolved(a, o, PLAN_MEMBERS_NONE, NULL);
        body = rec != NULL ? patch_against(a, o, rec, g.body) : NULL;
        json_decref(rec);
    } else if (strcmp(method, "PATCH") == 0) {
        body = json_incref(o->body);
        o->vouches = false; /* the copy changed in the cloud: the PATCH may not cover it */
    }
    if (strcmp(method, "DELETE") != 0 && body == NULL) {
        report_failure(a, o, "out of memory");
    } else if (body != NULL && strcmp(method, "PATCH") == 0 &&
               json_array_size(json_object_get(body, "Operations")) == 0) {
        o->ok = true; /* the cloud's copy holds these values now */
    } else {
        free(o->version);
        o->version = dup_or_null(version_of(&g));
        write_now(a, o, method, path, body, o->version);
    }
    json_decref(body);
    scim_response_clear(&g);
}

/*
 * 404 to the PATCH or PUT of an update (or to the read before it): the
 * resource was deleted in the cloud. Its cloud id is forgotten. An object
 * with its externalId (RFC 7644 3.4.2.2 filter) may exist under another id:
 * it is then updated against its current copy (as drift); otherwise the
 * object is created again (POST, RFC 7644 3.3, with the rules of a
 * creation). It counts as updated; the objects that referred to the old id
 * are rewritten by the next sync (commit_batch, forget_references).
 */
static void recreate_gone(struct apply *a, struct apply_op *o)
{
    o->gone = false;
    o->gone_handled = true;
    o->vouches = false;
    log_msg(a->p.log, LOG_LEVEL_WARN,
            "%s: deleted in the cloud (404); looking it up by externalId, else creating it again",
            who(o));
    char path[2048];
    if (!lookup_path(o, path)) {
        report_failure(a, o, "out of memory");
        return;
    }
    struct scim_response r;
    scim_port_request(a->p.port, "GET", path, NULL, NULL, &r);
    if (stops_run(a, &r)) {
        scim_response_clear(&r);
        return;
    }
    if (r.code != DIRCONN_OK) {
        report_failure(a, o, r.error);
        scim_response_clear(&r);
        return;
    }
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(r.body, "Resources"), 0), "id"));
    o->recreated = true;
    o->ok = false;
    free(o->cloud_id);
    free(o->version);
    o->cloud_id = dup_or_null(id);
    o->version = NULL;
    scim_response_clear(&r);
    if (o->cloud_id != NULL) {
        /* There under another id: bring its current copy up to date. */
        o->drift = true;
        struct dirconn_error err;
        struct dirconn_error *saved = a->err;
        a->err = &err;
        dirconn_error_clear(&err);
        if (send_update(a, o) != DIRCONN_OK || scim_port_run(a->p.port, &err) != DIRCONN_OK)
            report_failure(a, o, err.msg);
        a->err = saved;
        return;
    }
    json_t *body = create_body(a, o);
    if (body == NULL || !note_sent(o, body))
        report_failure(a, o, "the planned record cannot be read");
    else
        write_now(a, o, "POST", resource_paths[o->kind], body, NULL);
    json_decref(body);
}

/* A POST refused as too large (a group's, shrink_payload; or a /Bulk request's): sent alone. */
static void resend_smaller(struct apply *a, struct apply_op *o)
{
    o->too_large = false;
    json_t *body = create_body(a, o);
    if (body == NULL || !note_sent(o, body))
        report_failure(a, o, "the planned record cannot be read");
    else
        write_now(a, o, "POST", resource_paths[o->kind], body, NULL);
    json_decref(body);
}

/*
 * What the answers of a batch asked for, object by object, each request
 * answered before the next: a lookup by externalId (a creation that may have
 * been applied), a second attempt after a 412, a re-creation after a 404.
 * Each of these happens at most once per object and may lead to another
 * (a 412, then a 404; a re-creation whose answer is lost, then a lookup).
 */
static void recover(struct apply *a, struct apply_op *o)
{
    for (int round = 0; round < 8 && !a->lease_lost && a->cloud_lost.code == DIRCONN_OK; round++) {
        if (o->lookup)
            find_created(a, o);
        else if (o->stale)
            retry_stale(a, o);
        else if (o->gone)
            recreate_gone(a, o);
        else if (o->too_large)
            resend_smaller(a, o);
        else
            return;
    }
}

/* ---- the pipeline ---------------------------------------------------------------------- */

static bool at_once(void *arg)
{
    (void)arg;
    return true;
}

/* Send one batch of adds, updates or deletes; its answers are taken by finish_batch. */
static enum dirconn_err send_batch(struct apply *a, struct batch *b)
{
    json_t *bodies[APPLY_BATCH] = {0};
    bool bulk = a->p.caps.bulk;
    for (int i = 0; i < b->n; i++)
        bulk = bulk && b->ops[i].op == PLAN_ADD;
    long max_ops =
        a->p.caps.bulk_max_operations < BULK_CHUNK ? a->p.caps.bulk_max_operations : BULK_CHUNK;
    enum dirconn_err e = DIRCONN_OK;
    int *saved = a->outstanding;
    a->outstanding = &b->outstanding;
    /*
     * Adds in Bulk are sent as soon as a request's worth is built ([first, i]): the JSON trees
     * of a batch's records (several times their text) are never all held at once.
     */
    int first = 0;
    long ops = 0, payload = BULK_REQ_OVERHEAD;
    for (int i = 0; i < b->n && e == DIRCONN_OK; i++) {
        e = send_op(a, &b->ops[i], bulk ? &bodies[i] : NULL);
        if (e == DIRCONN_OK && bodies[i] != NULL) {
            ops++;
            payload += (long)b->ops[i].sent_len + BULK_OP_OVERHEAD;
        }
        if (e == DIRCONN_OK && bulk &&
            (i == b->n - 1 || ops >= max_ops || payload >= a->p.caps.bulk_max_payload)) {
            e = submit_bulk(a, b, bodies, first, i + 1);
            for (int k = first; k <= i; k++) {
                json_decref(bodies[k]);
                bodies[k] = NULL;
            }
            first = i + 1;
            ops = 0;
            payload = BULK_REQ_OVERHEAD;
        }
        /* the batches in flight go on being sent and answered while this one is built */
        if (e == DIRCONN_OK && a->ring_n > 0 && i % APPLY_PUMP == APPLY_PUMP - 1)
            e = scim_port_run_until(a->p.port, at_once, NULL, a->err);
    }
    a->outstanding = saved;
    for (int i = 0; i < b->n; i++)
        json_decref(bodies[i]);
    return e;
}

static bool batch_answered(void *arg)
{
    const struct batch *b = arg;
    return b->outstanding == 0;
}

/*
 * Wait for the answers of a sent batch (later batches stay in flight), do
 * what they asked for (recover: lookups, second attempts, re-creations; the
 * members that did not fit a group's POST), and record the acknowledged
 * objects in one transaction. sent: the batch went out whole (else its
 * requests are only drained, and what was acknowledged recorded).
 */
static enum dirconn_err finish_batch(struct apply *a, struct batch *b, bool sent)
{
    enum dirconn_err e = DIRCONN_OK;
    int *saved = a->outstanding;
    a->outstanding = &b->outstanding;
    if (!sent) {
        struct dirconn_error ignored;
        scim_port_run(a->p.port, &ignored); /* no callback may outlive the batch */
        e = DIRCONN_EFAIL;
    } else if (b->outstanding > 0) {
        e = scim_port_run_until(a->p.port, batch_answered, b, a->err);
    }
    for (int i = 0; i < b->n && e == DIRCONN_OK; i++)
        recover(a, &b->ops[i]);
    /* Members that did not fit a group's POST. */
    bool more = false;
    for (int i = 0; i < b->n && e == DIRCONN_OK; i++) {
        struct apply_op *o = &b->ops[i];
        if (!o->ok || !has_rest(o) || (o->new_cloud_id == NULL && o->cloud_id == NULL))
            continue;
        e = send_rest(a, o);
        more = true;
    }
    if (e == DIRCONN_OK && more)
        e = scim_port_run_until(a->p.port, batch_answered, b, a->err);
    if (e != DIRCONN_OK && b->outstanding > 0) {
        struct dirconn_error ignored;
        scim_port_run(a->p.port, &ignored);
    }
    a->outstanding = saved;
    for (int i = 0; i < b->n; i++)
        if (b->ops[i].rest_failed)
            b->ops[i].ok =
                false; /* not recorded: the next sync finds it by externalId, adds the rest */
    enum dirconn_err ce = commit_batch(a, b);
    b->outstanding = 0;
    b->bytes = 0;
    return !sent ? ce : e != DIRCONN_OK ? e : ce;
}

/* Send one batch, wait for all its answers, and record the results (stop-and-wait). */
static enum dirconn_err flush_batch(struct apply *a, struct batch *b)
{
    if (b->n == 0)
        return DIRCONN_OK;
    enum dirconn_err e = send_batch(a, b);
    enum dirconn_err f = finish_batch(a, b, e == DIRCONN_OK);
    return e != DIRCONN_OK ? e : f;
}

/* The oldest batch in flight: finished, recorded, freed. */
static enum dirconn_err pipe_pop(struct apply *a)
{
    struct batch *b = a->ring[a->ring_head];
    a->ring[a->ring_head] = NULL;
    a->ring_head = (a->ring_head + 1) % APPLY_WINDOW_MAX;
    a->ring_n--;
    enum dirconn_err e = finish_batch(a, b, true);
    free(b);
    return e;
}

/*
 * The batches still in flight, oldest first. commit: each is finished and
 * recorded in order (a stop: what the cloud acknowledged is kept), until one
 * of them fails; the others (and all without commit: a failure) are only
 * drained, nothing of them recorded.
 */
static enum dirconn_err pipe_drain(struct apply *a, bool commit)
{
    enum dirconn_err e = DIRCONN_OK;
    if (!commit && a->ring_n > 0) {
        struct dirconn_error ignored;
        scim_port_run(a->p.port, &ignored);
    }
    while (a->ring_n > 0) {
        if (commit && e == DIRCONN_OK) {
            e = pipe_pop(a);
            continue;
        }
        struct batch *b = a->ring[a->ring_head];
        a->ring[a->ring_head] = NULL;
        a->ring_head = (a->ring_head + 1) % APPLY_WINDOW_MAX;
        a->ring_n--;
        if (b->outstanding > 0) {
            struct dirconn_error ignored;
            scim_port_run(a->p.port, &ignored);
        }
        for (int i = 0; i < b->n; i++)
            op_clear(&b->ops[i]);
        free(b);
    }
    return e;
}

/*
 * Send a full batch and keep it in flight: with a window of w batches, the
 * oldest is finished and recorded once w are out, so that the cloud works on
 * batch k while batch k+1 is built, and acknowledgements are recorded in the
 * plan's order. The batch is owned by the pipeline from here on.
 */
static enum dirconn_err pipe_push(struct apply *a, struct batch *b)
{
    enum dirconn_err e = send_batch(a, b);
    if (e != DIRCONN_OK) {
        /* not sent whole: the batches before it are recorded, then what it had acknowledged */
        enum dirconn_err d = pipe_drain(a, true);
        (void)d;
        finish_batch(a, b, false);
        free(b);
        return e;
    }
    int slot = (a->ring_head + a->ring_n) % APPLY_WINDOW_MAX;
    a->ring[slot] = b;
    a->ring_n++;
    /* let the requests go out now: the cloud works on them while the next batch is built */
    if (a->ring_n < a->window)
        e = scim_port_run_until(a->p.port, at_once, NULL, a->err);
    while (e == DIRCONN_OK && a->ring_n >= a->window)
        e = pipe_pop(a);
    return e;
}

/* Objects and record bytes that end a batch. */
static int batch_objects(const struct apply *a)
{
    int n = a->p.batch_objects;
    return n > 0 && n < APPLY_BATCH ? n : APPLY_BATCH;
}

static long batch_bytes(const struct apply *a)
{
    long per = a->p.caps.bulk && a->p.caps.bulk_max_payload > 0 ? a->p.caps.bulk_max_payload
                                                                : a->p.caps.max_payload;
    long n = per > 0 && per < APPLY_BATCH_BYTES_MAX / 4 ? 4 * per : APPLY_BATCH_BYTES_MAX;
    return n < APPLY_BATCH_BYTES_MIN ? APPLY_BATCH_BYTES_MIN : n;
}

struct apply_walk {
    struct apply *a;
    struct batch *b; /* being filled, or NULL */
    enum dirconn_err e;
    int depth;     /* management depth of the items in the batch */
    bool stopping; /* a stop (cancel, lost lease or cloud): the batches in flight are recorded */
};

/* The batch being filled goes out; with flush, every batch in flight is recorded too. */
static enum dirconn_err walk_send(struct apply_walk *w, bool flush)
{
    struct apply *a = w->a;
    enum dirconn_err e = DIRCONN_OK;
    if (w->b != NULL && w->b->n > 0) {
        e = pipe_push(a, w->b);
        w->b = NULL;
    }
    if (e == DIRCONN_OK && flush)
        e = pipe_drain(a, true);
    if (e == DIRCONN_OK && cancelled(a)) {
        w->stopping = true;
        e = stopped(a, "stopped on request after a batch; the rest is left to the next sync");
    }
    return e;
}

static int apply_item(void *arg, const struct plan_item *it)
{
    struct apply_walk *w = arg;
    /* A new management level starts a new batch: its managers are committed by then. */
    if (w->b != NULL && w->b->n > 0 && it->depth != w->depth) {
        w->e = walk_send(w, true);
        if (w->e != DIRCONN_OK)
            return 1;
    }
    if (w->b == NULL && (w->b = calloc(1, sizeof(*w->b))) == NULL) {
        w->e = dirconn_error_set(w->a->err, DIRCONN_ENOMEM, "out of memory");
        return 1;
    }
    w->depth = it->depth;
    struct apply_op *o = &w->b->ops[w->b->n++];
    *o = (struct apply_op){.a = w->a, .op = it->op, .kind = it->kind, .origin = it->origin};
    o->external_id = dup_or_null(it->external_id);
    o->cloud_id = dup_or_null(it->cloud_id);
    o->dn = dup_or_null(it->dn);
    o->name = dup_or_null(it->name);
    o->record = dup_or_null(it->record);
    o->hash = dup_or_null(it->hash);
    o->version = w->a->p.caps.etag ? dup_or_null(it->version) : NULL;
    o->drift = it->drift;
    if (it->drift)
        w->a->counts.drift++;
    w->b->bytes += o->record != NULL ? (long)strlen(o->record) : 0;
    if (w->b->n >= batch_objects(w->a) || w->b->bytes >= batch_bytes(w->a))
        w->e = walk_send(w, false);
    return w->e != DIRCONN_OK;
}

static enum dirconn_err apply_ops_timed(struct apply *a, int op, int kind);

/* Apply the items of one operation and kind; logs how long it took at debug level. */
enum dirconn_err apply_ops(struct apply *a, int op, int kind, struct dirconn_error *err)
{
    a->err = err;
    double t0 = (platform_monotonic_ms() / 1000.0);
    long before = a->done;
    enum dirconn_err e = apply_ops_timed(a, op, kind);
    if (a->done > before)
        log_msg(a->p.log, LOG_LEVEL_DEBUG, "%s %s: %ld objects in %.2f s",
                op >= 0 ? plan_op_name((enum plan_op)op) : "all",
                kind >= 0 ? object_kind_name((enum object_kind)kind) : "kinds", a->done - before,
                (platform_monotonic_ms() / 1000.0) - t0);
    return e;
}

static enum dirconn_err apply_ops_timed(struct apply *a, int op, int kind)
{
    if (cancelled(a))
        return stopped(a, "stopped on request; the rest is left to the next sync");
    /*
     * Adds and updates are pipelined; deletions stay stop-and-wait (each may first
     * unlink its referrers by the state's records, which earlier batches change).
     */
    int window = a->p.window > 0 ? a->p.window : APPLY_WINDOW;
    if (window > APPLY_WINDOW_MAX)
        window = APPLY_WINDOW_MAX;
    a->window = op == PLAN_ADD || op == PLAN_UPDATE ? window : 1;
    struct apply_walk w = {a, NULL, DIRCONN_OK, 0, false};
    enum dirconn_err e = plan_foreach_chunked(a->p.plan, op, kind, apply_item, &w, a->err);
    if (w.e != DIRCONN_OK)
        e = w.e;
    if (e == DIRCONN_OK)
        e = walk_send(&w, true);
    /* A stop records what the batches in flight had acknowledged; a failure records nothing
     * more. */
    enum dirconn_err d = pipe_drain(a, e == DIRCONN_OK || w.stopping);
    if (e == DIRCONN_OK)
        e = d;
    if (e == DIRCONN_OK)
        e = apply_stop_error(a, a->err); /* the last batch met the lost cloud or lease */
    if (w.b != NULL) {
        for (int i = 0; i < w.b->n; i++)
            op_clear(&w.b->ops[i]);
        free(w.b);
    }
    return e;
}

/* Member changes of updated groups: PATCH add/remove in chunks (RFC 7644 3.5.2.1, 3.5.2.2). */
struct member_walk {
    struct apply *a;
    enum dirconn_err e;
    long patches;
};

struct member_patch {
    struct apply *a;
    char *external_id;
    char *dn;
};

static void on_member_patch(void *arg, const struct scim_response *r)
{
    struct member_patch *mp = arg;
    struct apply *a = mp->a;
    if (stops_run(a, r)) {
        /* nothing written */
    } else if (r->code != DIRCONN_OK) {
        log_msg(a->p.log, LOG_LEVEL_ERROR, "group membership change of %s failed: %s",
                mp->dn ? mp->dn : mp->external_id, r->error);
        failed(a, mp->external_id, mp->dn, OBJECT_GROUP, PLAN_UPDATE, r->error);
    }
    free(mp->external_id);
    free(mp->dn);
    free(mp);
}

struct member_arg {
    struct apply *a;
    const struct plan_item *it;
};

static void *member_arg_new(void *ctx)
{
    struct member_arg *ma = ctx;
    struct member_patch *mp = calloc(1, sizeof(*mp));
    if (mp != NULL) {
        mp->a = ma->a;
        mp->external_id = dup_or_null(ma->it->external_id);
        mp->dn = dup_or_null(ma->it->dn);
    }
    return mp;
}

static int member_item(void *arg, const struct plan_item *it)
{
    struct member_walk *w = arg;
    struct apply *a = w->a;
    if (it->kind != OBJECT_GROUP || it->op != PLAN_UPDATE || it->drift)
        return 0; /* drift: members were diffed against the cloud's copy when it was applied */
    if (json_object_get(a->settled, it->external_id) != NULL)
        return 0; /* created again, or found again and diffed against its copy */
    json_t *add = NULL, *remove = NULL;
    w->e = plan_member_changes(a->p.plan, it, &add, &remove, a->err);
    if (w->e != DIRCONN_OK)
        return 1;
    struct state_object so = {0};
    bool known = false;
    state_object_get(a->p.st, it->external_id, &so, &known, NULL);
    const char *cloud_id = known && so.cloud_id ? so.cloud_id : it->cloud_id;
    char path[512];
    snprintf(path, sizeof(path), "/Groups/%s", cloud_id);
    struct member_arg ma = {a, it};
    for (int pass = 0; pass < 2 && w->e == DIRCONN_OK; pass++) {
        json_t *list = pass == 0 ? remove : add;
        if (json_array_size(list) > 0) {
            w->e = submit_member_patches_json(a, path, list, pass == 0, on_member_patch,
                                              member_arg_new, &ma);
            w->patches++;
        }
    }
    state_object_clear(&so);
    json_decref(add);
    json_decref(remove);
    return w->e != DIRCONN_OK;
}

/*
 * Users whose manager had no cloud id when they were written (the manager was
 * created later in this run) were recorded without their record: PATCH them
 * again now that every manager exists, and record them fully.
 */
struct manager_walk {
    struct apply *a;
    struct batch *b;
    enum dirconn_err e;
};

static int manager_item(void *arg, const struct plan_item *it)
{
    struct manager_walk *w = arg;
    /* Every pending object: also one without manager or members that a lost answer left
     * recorded without its record (find_created), else the next sync would update it. */
    if (it->record == NULL)
        return 0;
    struct state_object so = {0};
    bool known = false;
    w->e = state_object_get(w->a->p.st, it->external_id, &so, &known, w->a->err);
    bool pending = w->e == DIRCONN_OK && known && so.record == NULL && so.cloud_id != NULL;
    if (pending) {
        struct apply_op *o = &w->b->ops[w->b->n++];
        *o = (struct apply_op){
            .a = w->a, .op = PLAN_UPDATE, .kind = it->kind, .origin = so.origin, .followup = true};
        o->external_id = dup_or_null(it->external_id);
        o->cloud_id = dup_or_null(so.cloud_id);
        o->dn = dup_or_null(it->dn);
        o->name = dup_or_null(it->name);
        o->record = dup_or_null(it->record);
        o->hash = dup_or_null(it->hash);
        o->version = w->a->p.caps.etag ? dup_or_null(json_string_value(json_object_get(
                                             w->a->created_versions, it->external_id)))
                                       : NULL;
        if (w->b->n == APPLY_BATCH)
            w->e = flush_batch(w->a, w->b);
    }
    state_object_clear(&so);
    return w->e != DIRCONN_OK;
}

enum dirconn_err apply_pending(struct apply *a, struct dirconn_error *err)
{
    a->err = err;
    if (a->pending == 0)
        return DIRCONN_OK;
    char **ids = NULL;
    size_t n = 0;
    enum dirconn_err e = plan_pending_ids(a->p.plan, &ids, &n, a->err);
    struct batch *b = calloc(1, sizeof(*b));
    if (e == DIRCONN_OK && b == NULL)
        e = dirconn_error_set(a->err, DIRCONN_ENOMEM, "out of memory");
    log_msg(a->p.log, LOG_LEVEL_DEBUG, "follow-up pass: %zu objects", n);
    struct manager_walk w = {a, b, DIRCONN_OK};
    for (size_t i = 0; i < n && e == DIRCONN_OK; i++) {
        e = plan_item_get(a->p.plan, ids[i], manager_item, &w, a->err);
        if (w.e != DIRCONN_OK)
            e = w.e;
    }
    if (e == DIRCONN_OK && b != NULL)
        e = flush_batch(a, b);
    for (int i = 0; b != NULL && i < b->n; i++)
        op_clear(&b->ops[i]);
    free(b);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return e;
}

/* ---- the run ----------------------------------------------------------------------- */

enum dirconn_err apply_members(struct apply *a, struct dirconn_error *err)
{
    a->err = err;
    if (!a->p.caps.patch)
        return DIRCONN_OK; /* without PATCH, members went with the PUT */
    struct member_walk w = {a, DIRCONN_OK, 0};
    enum dirconn_err e = plan_foreach(a->p.plan, PLAN_UPDATE, OBJECT_GROUP, member_item, &w, err);
    if (w.e != DIRCONN_OK)
        e = w.e;
    if (e == DIRCONN_OK)
        e = scim_port_run(a->p.port, err);
    return e;
}

enum dirconn_err apply_new(const struct apply_params *params, struct apply **out,
                           struct dirconn_error *err)
{
    *out = NULL;
    struct apply *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    a->p = *params;
    if ((a->settled = json_object()) == NULL || (a->created_versions = json_object()) == NULL) {
        json_decref(a->settled);
        free(a);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    const struct plan_summary *s = plan_get_summary(a->p.plan);
    a->total = s->count[PLAN_ADD] + s->count[PLAN_UPDATE] + s->deletes + s->count[PLAN_FORGET];
    *out = a;
    return DIRCONN_OK;
}

void apply_free(struct apply *a)
{
    if (a == NULL)
        return;
    json_decref(a->settled);
    json_decref(a->created_versions);
    free(a);
}

const struct apply_counts *apply_counts(const struct apply *a)
{
    return &a->counts;
}

enum dirconn_err apply_stop_error(const struct apply *a, struct dirconn_error *err)
{
    if (a->cloud_lost.code != DIRCONN_OK)
        return dirconn_error_set(err, a->cloud_lost.code, "%s", a->cloud_lost.msg);
    if (a->lease_lost && a->lease_code == DIRCONN_EHAMODE)
        return dirconn_error_set(err, DIRCONN_EHAMODE, "%s; nothing more is written", a->lease_msg);
    if (a->lease_lost)
        return dirconn_error_set(err, DIRCONN_ELEASE,
                                 "the HA lease was lost, nothing more is written: %s",
                                 a->lease_msg);
    return DIRCONN_OK;
}
