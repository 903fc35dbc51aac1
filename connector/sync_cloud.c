/* sync_cloud.c - the cloud side of a run: the SCIM client, discovery and the inventory. */
#include "connector/sync_cloud.h"

#include "connector/cloud_auth.h"
#include "connector/mapping.h"
#include "connector/plan.h"
#include "connector/provider.h"
#include "connector/record.h"
#include "connector/scim.h"
#include "connector/state.h"
#include "proxy/proxy.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const resource_paths[OBJECT_KINDS] = {"/Users", "/Groups", "/Contacts"};

const char *sync_cloud_resource_path(enum object_kind kind)
{
    return resource_paths[kind];
}

/* Record that a mapped target cannot be sent (logged now, in the report with the plan). */
static void note_unsent(struct sync_ctx *c, enum object_kind kind, const struct mapping_target *t,
                        const char *when, const char *why)
{
    char msg[1024];
    snprintf(msg, sizeof(msg), "[%s] mapping to %s is not sent%s: %s", object_kind_name(kind),
             t->path, when, why);
    for (size_t i = 0; i < c->n_unsent; i++)
        if (strcmp(c->unsent[i], msg) == 0)
            return;
    char **v = realloc(c->unsent, (c->n_unsent + 1) * sizeof(*v));
    if (v == NULL)
        return;
    c->unsent = v;
    if ((v[c->n_unsent] = strdup(msg)) != NULL)
        c->n_unsent++;
    log_msg(c->log, LOG_LEVEL_WARN, "%s", msg);
}

/*
 * Discovery (RFC 7644 4): /ServiceProviderConfig, /ResourceTypes and
 * /Schemas, read once per run (provider.h). What the mappings produce and
 * the provider cannot take is reported once, and left out of every record.
 */
enum dirconn_err sync_cloud_discover(struct sync_ctx *c)
{
    struct scim_port port = scim_client_port(c->scim);
    const struct strlist *sv = &c->cfg->cloud_single_valued;
    const char *single[9] = {NULL}; /* [cloud] single_valued holds at most 8 names */
    for (size_t i = 0; i < sv->n && i < 8; i++)
        single[i] = sv->v[i];
    struct provider_settings settings = {.single_valued = single,
                                         .delete_cascades = c->cfg->cloud_delete_cascades};
    enum dirconn_err e = provider_discover(&port, c->log, &settings, &c->prov, c->err);
    if (e != DIRCONN_OK)
        return e;
    const struct provider_features *f = provider_features(c->prov);
    c->caps.bulk = f->bulk;
    c->caps.bulk_max_operations = f->bulk_max_operations;
    c->caps.bulk_max_payload = f->bulk_max_payload;
    c->caps.etag = f->etag;
    c->caps.patch = f->patch;
    c->caps.filter = f->filter;
    c->caps.page = f->filter_max_results > 0 && f->filter_max_results < SYNC_INVENTORY_PAGE
                       ? f->filter_max_results
                       : SYNC_INVENTORY_PAGE;
    c->caps.contacts = provider_has_kind(c->prov, OBJECT_CONTACT);
    c->caps.max_payload = c->cfg->cloud_max_payload > 0 ? c->cfg->cloud_max_payload
                          : f->bulk_max_payload > 0     ? f->bulk_max_payload
                                                        : 1048576;
    c->caps.patch_max_ops =
        c->cfg->cloud_patch_max_operations > 0 ? c->cfg->cloud_patch_max_operations : 100;
    for (int k = 0; k < OBJECT_KINDS; k++) {
        if (c->maps[k] == NULL || !provider_has_kind(c->prov, (enum object_kind)k))
            continue;
        const struct mapping_target *t = NULL;
        size_t n = mapping_targets(c->maps[k], &t);
        c->scope_paths[k] = calloc(n + 1, sizeof(struct record_path));
        if (c->scope_paths[k] == NULL)
            return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        /* The scope: what the mapping produces and the provider takes (record.h). */
        size_t ns = 0;
        c->scope_paths[k][ns++] = (struct record_path){"externalId", NULL, NULL};
        for (size_t i = 0; i < n; i++) {
            const char *why = NULL;
            if (!provider_check(c->prov, (enum object_kind)k, t[i].attr, t[i].type, t[i].sub,
                                &why)) {
                note_unsent(c, (enum object_kind)k, &t[i], "", why);
                continue;
            }
            c->scope_paths[k][ns++] = (struct record_path){t[i].attr, t[i].type, t[i].sub};
            /* A provider that takes one value: a later typed value of the same attribute
             * goes only when the ones mapped before it are empty (provider_restrict). */
            if (k != OBJECT_USER || t[i].type == NULL)
                continue;
            const char *first = NULL;
            for (size_t j = 0; j < i && first == NULL; j++)
                if (t[j].type != NULL && strcasecmp(t[j].attr, t[i].attr) == 0 &&
                    strcasecmp(t[j].type, t[i].type) != 0)
                    first = t[j].path;
            for (size_t s = 0; first != NULL && s < sv->n; s++)
                if (strcasecmp(sv->v[s], t[i].attr) == 0) {
                    char when[256], why[256];
                    snprintf(when, sizeof(when), " when %s has a value", first);
                    snprintf(why, sizeof(why),
                             "the cloud takes one %s value ([cloud] single_valued)", t[i].attr);
                    note_unsent(c, (enum object_kind)k, &t[i], when, why);
                }
        }
        c->scope[k] = (struct record_scope){c->scope_paths[k], ns};
    }
    log_msg(c->log, LOG_LEVEL_DEBUG,
            "cloud: patch %s, bulk %s (max %ld operations, %ld bytes), filter %s (page %ld), "
            "etag %s, contacts %s",
            c->caps.patch ? "yes" : "no", c->caps.bulk ? "yes" : "no", c->caps.bulk_max_operations,
            c->caps.bulk_max_payload, c->caps.filter ? "yes" : "no", c->caps.page,
            c->caps.etag ? "yes" : "no", c->caps.contacts ? "yes" : "no");
    return DIRCONN_OK;
}

struct inventory_ctx {
    struct sync_ctx *c;
    enum object_kind kind;
    enum dirconn_err e;
    bool project; /* whole resources of a full run: record each one's projection (drift) */
    bool fill;    /* after the plan: only the projection and version of known rows (fill) */
    long listed;  /* resources handed to inventory_one */
};

static bool is_admin(json_t *res)
{
    size_t i;
    json_t *role;
    json_array_foreach(json_object_get(res, "roles"), i, role)
    {
        const char *v = json_string_value(json_object_get(role, "value"));
        const char *t = json_string_value(json_object_get(role, "type"));
        if ((v != NULL && strcasecmp(v, "admin") == 0) ||
            (t != NULL && strcasecmp(t, "admin") == 0))
            return true;
    }
    return false;
}

static int inventory_one(void *arg, json_t *res)
{
    struct inventory_ctx *ic = arg;
    ic->listed++;
    const char *id = json_string_value(json_object_get(res, "id"));
    const char *name = json_string_value(
        json_object_get(res, ic->kind == OBJECT_USER ? "userName" : "displayName"));
    const char *ext = json_string_value(json_object_get(res, "externalId"));
    const char *version =
        json_string_value(json_object_get(json_object_get(res, "meta"), "version"));
    if (id == NULL)
        return 0;
    char hex[RECORD_HASH_LEN];
    bool projected =
        ic->project && ext != NULL &&
        record_projection_hash(res, &ic->c->scope[ic->kind], ic->kind == OBJECT_GROUP, hex);
    if (ic->fill)
        ic->e = projected
                    ? plan_set_cloud_projection(ic->c->plan, ic->kind, id, version, hex, ic->c->err)
                    : DIRCONN_OK;
    else
        ic->e = plan_add_cloud_projected(ic->c->plan, ic->kind, id, name, ext, is_admin(res),
                                         version, projected ? hex : NULL, ic->c->err);
    return ic->e != DIRCONN_OK;
}

/* Of meta only the version (the ETag) is used: asking for meta.version keeps the pages small;
 * a provider without ETags (RFC 7644 3.14) has no version to ask for. */
static const char *const inventory_attrs[2][OBJECT_KINDS] = {
    {"id,userName,externalId,roles,meta.version", "id,displayName,externalId,meta.version",
     "id,displayName,externalId,meta.version"},
    {"id,userName,externalId,roles", "id,displayName,externalId", "id,displayName,externalId"}};

/*
 * Whether a full run's inventory reads whole resources, to compare every
 * match with its cloud copy (detect_drift): with a provider without ETags
 * (RFC 7644 3.14), or one that refused the attributes= selection. With
 * ETags the inventory lists the selection with meta.version, and only the
 * objects whose version is not the one the state holds are read whole
 * afterwards (sync_cloud_fill_projections); but a state without any version (new, an
 * instance that took over with an empty state, or just migrated) would have
 * every copy read again: the whole resources are listed at once.
 */
static bool whole_inventory(const struct sync_ctx *c)
{
    return c->no_attr_select || (c->drift_check && (!c->caps.etag || c->no_versions));
}

/* The attributes= selection of an inventory read (RFC 7644 3.9), NULL = whole resources. */
const char *sync_cloud_inventory_select(const struct sync_ctx *c, enum object_kind kind)
{
    if (whole_inventory(c))
        return NULL; /* a full run reads the values too, to see drift (detect_drift) */
    return inventory_attrs[c->caps.etag ? 0 : 1][kind];
}

/*
 * The path of a whole-resource inventory read of users: without "groups"
 * (RFC 7644 3.9 excludedAttributes), a read-only attribute dirconn never
 * maps that a provider computes for each user it returns. A provider that
 * refuses the parameter (one probe per run, count=1) gets plain reads.
 */
static const char *inventory_path(struct sync_ctx *c, enum object_kind kind, bool whole)
{
    static const char *const users_without_groups = "/Users?excludedAttributes=groups";
    if (kind != OBJECT_USER || !whole || !c->drift_check || c->no_attr_select)
        return resource_paths[kind];
    struct scim_response r;
    enum dirconn_err e = scim_request_sync(
        c->scim, "GET", "/Users?count=1&excludedAttributes=groups", NULL, NULL, &r);
    if (e != DIRCONN_OK && r.status == 400) {
        log_msg(c->log, LOG_LEVEL_INFO,
                "cloud: excludedAttributes refused (%s); reading whole resources", r.error);
        c->no_attr_select = true;
    }
    scim_response_clear(&r);
    return c->no_attr_select ? resource_paths[kind] : users_without_groups;
}

/*
 * A full inventory being listed: one kind after the other (users, groups,
 * contacts), each a scim_list stepped by sync_cloud_inventory_step.
 */
struct sync_inventory {
    unsigned kinds; /* the kinds to list */
    int kind;       /* the kind being listed, or the last one listed */
    struct scim_list *list;
    struct inventory_ctx ic;
    long listed; /* resources of the kinds done */
    double started;
};

/* Open the listing of the next kind of inv->kinds, if any is left (inv->list stays NULL). */
static enum dirconn_err inventory_open_next(struct sync_ctx *c, struct sync_inventory *inv)
{
    while (inv->list == NULL && ++inv->kind < OBJECT_KINDS) {
        if (!(inv->kinds & (1u << inv->kind)))
            continue;
        enum object_kind k = (enum object_kind)inv->kind;
        const char *sel = sync_cloud_inventory_select(c, k);
        inv->ic = (struct inventory_ctx){c, k, DIRCONN_OK, c->drift_check && sel == NULL, false, 0};
        struct scim_port port = scim_client_port(c->scim);
        enum dirconn_err e =
            scim_port_list_open(&port, inventory_path(c, k, sel == NULL), NULL, sel, c->caps.page,
                                inventory_one, &inv->ic, &inv->list, c->err);
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}

enum dirconn_err sync_cloud_inventory_start(struct sync_ctx *c, unsigned kinds)
{
    sync_cloud_inventory_drop(c);
    struct sync_inventory *inv = calloc(1, sizeof(*inv));
    if (inv == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    inv->kinds = kinds;
    inv->kind = -1;
    inv->started = sync_ctx_now();
    c->inventory = inv;
    enum dirconn_err e = inventory_open_next(c, inv);
    return e == DIRCONN_OK ? sync_cloud_inventory_step(c, false) : e;
}

enum dirconn_err sync_cloud_inventory_step(struct sync_ctx *c, bool wait)
{
    struct sync_inventory *inv = c->inventory;
    while (inv != NULL && inv->list != NULL) {
        bool finished = false;
        enum dirconn_err e = scim_list_step(inv->list, wait, &finished, c->err);
        if (inv->ic.e != DIRCONN_OK)
            return inv->ic.e; /* recorded by inventory_one in c->err */
        if (e != DIRCONN_OK || !finished)
            return e;
        scim_list_free(inv->list);
        inv->list = NULL;
        inv->listed += inv->ic.listed;
        e = inventory_open_next(c, inv);
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}

enum dirconn_err sync_cloud_inventory_finish(struct sync_ctx *c)
{
    struct sync_inventory *inv = c->inventory;
    if (inv == NULL)
        return DIRCONN_OK;
    double waited = sync_ctx_now();
    enum dirconn_err e = sync_cloud_inventory_step(c, true);
    if (e == DIRCONN_OK) {
        double now = sync_ctx_now();
        log_msg(c->log, LOG_LEVEL_DEBUG,
                "cloud: inventory of %ld objects (%.2f s of it after the directory read) listed "
                "in %.2f s",
                inv->listed, now - waited, now - inv->started);
    }
    sync_cloud_inventory_drop(c);
    return e;
}

void sync_cloud_inventory_drop(struct sync_ctx *c)
{
    if (c->inventory == NULL)
        return;
    scim_list_free(c->inventory->list);
    free(c->inventory);
    c->inventory = NULL;
}

/* The inventory in one transaction, as the directory read: not one per object. */
enum dirconn_err sync_cloud_load_inventory(struct sync_ctx *c, unsigned kinds)
{
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = sync_cloud_inventory_start(c, kinds);
    if (e == DIRCONN_OK)
        e = sync_cloud_inventory_finish(c);
    sync_cloud_inventory_drop(c);
    if (e == DIRCONN_OK)
        return state_commit(c->st, c->err);
    state_rollback(c->st);
    return e;
}

/*
 * The lookups of the targeted inventory, pipelined through the client (up to
 * its max_in_flight in flight): each is a GET of a resource or of a filtered
 * list; 404 is no object. The answers are given to the plan in the order the
 * lookups were made, as when they ran one after the other: the plan takes the
 * first of the cloud objects it holds with one externalId or userName
 * (cloud_lookup), so the order of its rows is kept. At most LOOKUP_WINDOW
 * lookups are submitted ahead of the first one not yet recorded.
 */
#define LOOKUP_WINDOW 64

struct lookups;

struct lookup {
    struct lookups *t;
    enum object_kind kind;
    char *path;   /* which may end in "attributes=..." (sync_cloud_inventory_select) */
    bool project; /* the path has no selection: record the projection (drift check) */
    bool done;
    json_t *body; /* the answer, kept until the lookups made before it are recorded */
};

struct lookups {
    struct sync_ctx *c;
    struct lookup *win[LOOKUP_WINDOW]; /* submitted, not yet recorded: [seq % LOOKUP_WINDOW] */
    size_t submitted, recorded;        /* sequence numbers */
    enum dirconn_err e;                /* the first failure; its message is in c->err */
    bool orphan; /* the client kept requests after a failed loop: they free, nothing more */
};

/* Give the answers completed in order to the plan, and free them. */
static void lookups_record(struct lookups *t)
{
    while (t->recorded < t->submitted) {
        struct lookup *l = t->win[t->recorded % LOOKUP_WINDOW];
        if (!l->done)
            break;
        if (t->e == DIRCONN_OK && !t->orphan && l->body != NULL) {
            struct inventory_ctx ic = {t->c, l->kind, DIRCONN_OK, l->project, false, 0};
            json_t *list = json_object_get(l->body, "Resources");
            if (list != NULL) {
                size_t i;
                json_t *res;
                json_array_foreach(list, i, res)
                {
                    if (inventory_one(&ic, res) != 0)
                        break;
                }
            } else {
                inventory_one(&ic, l->body);
            }
            t->e = ic.e;
        }
        json_decref(l->body);
        free(l->path);
        free(l);
        t->win[t->recorded % LOOKUP_WINDOW] = NULL;
        t->recorded++;
    }
}

static void lookup_fail(struct lookups *t, enum dirconn_err code, const struct dirconn_error *err,
                        long status)
{
    if (t->e != DIRCONN_OK || t->orphan)
        return; /* the first failure is the run's */
    t->e = code;
    *t->c->err = *err;
    t->c->inventory_status = status;
}

static void on_lookup(void *arg, const struct scim_response *r)
{
    struct lookup *l = arg;
    struct lookups *t = l->t;
    struct sync_ctx *c = t->c;
    char *sel = strstr(l->path, "attributes=");
    if (t->e == DIRCONN_OK && !t->orphan && r->code != DIRCONN_OK && r->status == 400 &&
        sel != NULL) {
        /* The provider refuses the selection (the attributes parameter is optional to honour,
         * RFC 7644 3.4.2.5, not to break on): read whole resources for the rest of the run. */
        if (!c->no_attr_select)
            log_msg(c->log, LOG_LEVEL_INFO,
                    "cloud: %s refused the attribute selection (%s); reading whole resources",
                    l->path, r->error);
        c->no_attr_select = true;
        sel[-1] = '\0'; /* drop "?attributes=..." or "&attributes=..." */
        l->project = c->drift_check;
        struct dirconn_error serr;
        enum dirconn_err e = scim_submit(c->scim, "GET", l->path, NULL, NULL, on_lookup, l, &serr);
        if (e == DIRCONN_OK)
            return; /* completes again, with its answer without the selection */
        lookup_fail(t, e, &serr, 0);
    } else if (r->code == DIRCONN_OK) {
        l->body = json_incref(r->body);
    } else if (r->status != 404) {
        struct dirconn_error rerr;
        enum dirconn_err e = scim_response_error(r, &rerr);
        lookup_fail(t, e, &rerr, r->status);
    }
    l->done = true;
    lookups_record(t);
    if (t->orphan && t->recorded == t->submitted)
        free(t);
}

static bool lookups_have_room(void *arg)
{
    const struct lookups *t = arg;
    return t->submitted - t->recorded <= LOOKUP_WINDOW / 2;
}

/* Run the lookups submitted: all of them (room false), or until the window is half empty. */
static void lookups_run(struct lookups *t, bool room)
{
    struct dirconn_error rerr;
    enum dirconn_err e =
        scim_run_until(t->c->scim, room ? lookups_have_room : NULL, room ? t : NULL, &rerr);
    if (e != DIRCONN_OK)
        lookup_fail(t, e, &rerr, 0);
}

/* Submit a GET of prefix (a resource, or a list with its filter) with the selection of kind. */
static void lookup_submit(struct lookups *t, enum object_kind kind, const char *prefix)
{
    struct sync_ctx *c = t->c;
    if (t->e == DIRCONN_OK && t->submitted - t->recorded >= LOOKUP_WINDOW)
        lookups_run(t, true);
    if (t->e != DIRCONN_OK)
        return; /* one after the other, the first failure ended the lookups */
    const char *sel = sync_cloud_inventory_select(c, kind);
    size_t len = strlen(prefix) + (sel != NULL ? strlen(sel) + 12 : 0) + 1;
    struct lookup *l = calloc(1, sizeof(*l));
    char *path = malloc(len);
    if (l == NULL || path == NULL) {
        free(l);
        free(path);
        t->e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        return;
    }
    snprintf(path, len, "%s%s%s", prefix,
             sel == NULL                   ? ""
             : strchr(prefix, '?') != NULL ? "&attributes="
                                           : "?attributes=",
             sel != NULL ? sel : "");
    *l = (struct lookup){t, kind, path, c->drift_check && sel == NULL, false, NULL};
    enum dirconn_err e = scim_submit(c->scim, "GET", path, NULL, NULL, on_lookup, l, c->err);
    if (e != DIRCONN_OK) {
        free(path);
        free(l);
        t->e = e;
        return;
    }
    t->win[t->submitted % LOOKUP_WINDOW] = l;
    t->submitted++;
    /* The first lookup with a selection runs alone: a provider that refuses the selection
     * says so once, and every lookup after it goes without (c->no_attr_select). */
    if (sel != NULL && t->submitted == 1)
        lookups_run(t, false);
}

static void lookup_filter(struct lookups *t, enum object_kind kind, const char *attr,
                          const char *value)
{
    char filter[1024], prefix[2048];
    /* The value is a JSON string in the filter (RFC 7644 3.4.2.2): quotes and backslashes escaped.
     */
    char *quoted = record_filter_string(value);
    if (quoted == NULL) {
        if (t->e == DIRCONN_OK)
            t->e = dirconn_error_set(t->c->err, DIRCONN_ENOMEM, "out of memory");
        return;
    }
    snprintf(filter, sizeof(filter), "%s eq %s", attr, quoted);
    free(quoted);
    char *esc = scim_url_escape(filter);
    snprintf(prefix, sizeof(prefix), "%s?filter=%s", resource_paths[kind], esc != NULL ? esc : "");
    curl_free(esc);
    lookup_submit(t, kind, prefix);
}

/*
 * The cloud's view of the objects of this run only: by cloud id when the
 * state knows it, else by externalId and (users) userName for adoption. A
 * run with many changes loads the whole inventory instead.
 */
enum dirconn_err sync_cloud_load_targeted(struct sync_ctx *c)
{
    /* Lookups cost a request or three an object, a page of the inventory one request for
     * SYNC_INVENTORY_PAGE objects: the inventory is listed when the run touches more than a
     * tenth of the objects the state holds (and more than a page). */
    long held = state_object_count(c->st, -1);
    size_t most = held / 10 > SYNC_INVENTORY_PAGE ? (size_t)(held / 10) : SYNC_INVENTORY_PAGE;
    if (c->touched.n > most || !c->caps.filter || c->present_phase)
        return sync_cloud_load_inventory(
            c, c->kinds); /* many objects, or a provider without filters */
    struct lookups *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    t->c = c;
    double t0 = sync_ctx_now();
    size_t objects = 0;
    for (size_t i = 0; i < c->touched.n && t->e == DIRCONN_OK; i++) {
        const struct id_rec *r = &c->touched.v[i];
        if (r->kind < 0 && r->deleted && r->id != NULL) {
            /* Deleted in the directory and unknown to the state, of a kind the deletion does not
             * say: the cloud may hold it all the same (the state restored from a backup, or an
             * active of the HA group stopped after its writes and before the state was shared).
             * Found, it is adopted and deleted with the rest (plan_adopt_cloud). */
            objects++;
            for (int k = 0; k < OBJECT_KINDS; k++)
                if (c->kinds & (1u << k))
                    lookup_filter(t, (enum object_kind)k, "externalId", r->id);
            continue;
        }
        if (r->kind < 0 || r->kind >= OBJECT_KINDS || !(c->kinds & (1u << r->kind)))
            continue;
        objects++;
        struct state_object so = {0};
        bool found = false;
        enum dirconn_err e = state_object_get(c->st, r->id, &so, &found, c->err);
        if (e != DIRCONN_OK) {
            state_object_clear(&so);
            t->e = e;
            break;
        }
        if (found && so.cloud_id != NULL) {
            char *esc = scim_url_escape(so.cloud_id);
            char prefix[1024];
            snprintf(prefix, sizeof(prefix), "%s/%s", resource_paths[r->kind],
                     esc != NULL ? esc : "");
            curl_free(esc);
            lookup_submit(t, (enum object_kind)r->kind, prefix);
        }
        if (!r->deleted) {
            lookup_filter(t, (enum object_kind)r->kind, "externalId", r->id);
            if (r->kind == OBJECT_USER && r->name != NULL)
                lookup_filter(t, OBJECT_USER, "userName", r->name);
        }
        state_object_clear(&so);
    }
    /* The lookups submitted run to their end, after a failure too (their callbacks free). */
    lookups_run(t, false);
    enum dirconn_err e = t->e;
    size_t n = t->submitted;
    if (t->recorded == t->submitted) {
        free(t);
    } else {
        /* the loop failed with requests left in the client: their callbacks free t */
        t->orphan = true;
    }
    if (e == DIRCONN_OK)
        log_msg(c->log, LOG_LEVEL_DEBUG,
                "cloud: targeted inventory: %zu lookups for %zu touched objects in %.2f s", n,
                objects, sync_ctx_now() - t0);
    if (e != DIRCONN_OK && c->inventory_status == 400) {
        /* The provider refused a lookup it should take (a filter with an escaped quote, say):
         * the whole inventory answers the same question, only slower. */
        log_msg(c->log, LOG_LEVEL_WARN,
                "cloud: a lookup was refused (%s); reading the whole inventory instead",
                c->err->msg);
        dirconn_error_clear(c->err);
        c->inventory_status = 0;
        return sync_cloud_load_inventory(c, c->kinds);
    }
    return e;
}

/*
 * The cloud copies a full run compares by value when the inventory was a
 * selection with meta.version (whole_inventory false): those whose version
 * is not the one the state holds, and the ones verify_unacknowledged
 * compares (plan_projection_count). An object whose version is the one the
 * state holds cannot have changed since dirconn wrote it or found it equal.
 * Up to PROJECTION_GET_MAX of a kind, and at most a quarter of the kind, are
 * read one by one (GET by id, pipelined through the client); more, and the
 * kind is listed whole, as when the provider has no ETags.
 */
#define PROJECTION_GET_MAX 1000

struct projection_get {
    struct sync_ctx *c;
    enum object_kind kind;
    char *id;
    enum dirconn_err *e;
};

static void on_projection_read(void *arg, const struct scim_response *r)
{
    struct projection_get *g = arg;
    struct sync_ctx *c = g->c;
    if (*g->e == DIRCONN_OK && r->code == DIRCONN_OK) {
        const char *version =
            json_string_value(json_object_get(json_object_get(r->body, "meta"), "version"));
        char hex[RECORD_HASH_LEN];
        if (json_string_value(json_object_get(r->body, "externalId")) != NULL &&
            record_projection_hash(r->body, &c->scope[g->kind], g->kind == OBJECT_GROUP, hex))
            *g->e = plan_set_cloud_projection(c->plan, g->kind, g->id,
                                              version != NULL ? version : r->etag, hex, c->err);
    } else if (*g->e == DIRCONN_OK && r->status != 404) {
        /* 404: deleted since the inventory; the next sync sees it gone */
        *g->e = scim_response_error(r, c->err);
    }
    free(g->id);
    free(g);
}

/* GET each of ids (n of them; freed here), pipelined, or each alone after the one before. */
static enum dirconn_err read_ids(struct sync_ctx *c, enum object_kind kind, char **ids, size_t n,
                                 bool alone)
{
    enum dirconn_err e = DIRCONN_OK;
    enum dirconn_err cb = DIRCONN_OK;
    size_t i = 0, run = 0; /* submitted, of which run to their end */
    for (; i < n && e == DIRCONN_OK; i++) {
        if (alone && i > run) {
            run = i;
            e = scim_run(c->scim, c->err);
            if (e == DIRCONN_OK)
                e = cb;
            if (e != DIRCONN_OK)
                break;
        }
        struct projection_get *g = malloc(sizeof(*g));
        char *esc = scim_url_escape(ids[i]);
        if (g == NULL || esc == NULL) {
            free(g);
            curl_free(esc);
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
            break;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", resource_paths[kind], esc);
        curl_free(esc);
        *g = (struct projection_get){c, kind, ids[i], &cb};
        ids[i] = NULL; /* g owns it now */
        e = scim_submit(c->scim, "GET", path, NULL, NULL, on_projection_read, g, c->err);
        if (e != DIRCONN_OK) {
            free(g->id);
            free(g);
        }
    }
    if (i > run) {
        /* the requests queued run to their end, even after an error (their callbacks free) */
        struct dirconn_error rerr;
        enum dirconn_err re = scim_run(c->scim, e == DIRCONN_OK ? c->err : &rerr);
        if (e == DIRCONN_OK)
            e = re != DIRCONN_OK ? re : cb;
    }
    for (size_t k = 0; k < n; k++)
        free(ids[k]);
    free(ids);
    return e;
}

/*
 * The copies read by id: pipelined, except the big groups (STATE_PROJECTION_BIG
 * bytes of member DNs or more), read one after the other once the others are
 * done. A group's copy carries its members: the copies of several groups of
 * 200,000 members each, received and parsed at once, would hold tens of MB
 * each at the same time.
 */
static enum dirconn_err read_one_by_one(struct sync_ctx *c, enum object_kind kind, size_t max)
{
    enum dirconn_err e = DIRCONN_OK;
    for (int pass = 0; pass < (kind == OBJECT_GROUP ? 2 : 1) && e == DIRCONN_OK; pass++) {
        int big = kind == OBJECT_GROUP ? pass : -1;
        char **ids = NULL;
        size_t n = 0;
        e = plan_projection_ids(c->plan, kind, max, big, &ids, &n, c->err);
        if (e == DIRCONN_OK)
            e = read_ids(c, kind, ids, n, big == 1);
    }
    return e;
}

enum dirconn_err sync_cloud_fill_projections(struct sync_ctx *c)
{
    if (!c->drift_check || whole_inventory(c))
        return DIRCONN_OK; /* every copy was read whole with the inventory */
    enum dirconn_err e = DIRCONN_OK;
    for (int k = 0; k < OBJECT_KINDS && e == DIRCONN_OK; k++) {
        if (!(c->kinds & (1u << k)))
            continue;
        long needed = 0, total = 0;
        e = plan_projection_count(c->plan, (enum object_kind)k, &needed, &total, c->err);
        if (e != DIRCONN_OK || needed == 0)
            continue;
        long bound = total / 4 < PROJECTION_GET_MAX ? total / 4 : PROJECTION_GET_MAX;
        double t0 = sync_ctx_now();
        bool one_by_one = needed <= bound;
        if (one_by_one) {
            e = read_one_by_one(c, (enum object_kind)k, (size_t)needed);
        } else {
            struct inventory_ctx ic = {c, (enum object_kind)k, DIRCONN_OK, true, true, 0};
            e = scim_list_all(c->scim, inventory_path(c, (enum object_kind)k, true), NULL, NULL,
                              c->caps.page, inventory_one, &ic, c->err);
            if (ic.e != DIRCONN_OK)
                e = ic.e;
        }
        if (e == DIRCONN_OK)
            log_msg(c->log, LOG_LEVEL_DEBUG,
                    "cloud: %ld of %ld %ss compared by value (version not the one recorded), "
                    "read %s in %.2f s",
                    needed, total, object_kind_name((enum object_kind)k),
                    one_by_one ? "one by one" : "with a whole list", sync_ctx_now() - t0);
    }
    return e;
}

enum dirconn_err sync_cloud_open(struct sync_ctx *c)
{
    const struct config *cfg = c->cfg;
    if (cfg->cloud_scim_url == NULL && (cfg->cloud_url == NULL || cfg->cloud_org == NULL))
        return dirconn_error_set(c->err, DIRCONN_ECONFIG,
                                 "%s: [cloud] needs url and org (or scim_url) to synchronise",
                                 cfg->path);
    if (cfg->cloud_scim_url != NULL) {
        c->scim_base = strdup(cfg->cloud_scim_url);
    } else {
        size_t len = strlen(cfg->cloud_url) + strlen(cfg->cloud_org) + 16;
        c->scim_base = malloc(len);
        if (c->scim_base != NULL) {
            size_t ul = strlen(cfg->cloud_url);
            snprintf(c->scim_base, len, "%.*s/scim/v2/%s",
                     (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
                     cfg->cloud_org);
        }
    }
    if (c->scim_base == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    /* Every cloud request (token and SCIM) goes the way [proxy] says. */
    enum dirconn_err e = proxy_new(cfg, c->log, c->opts->proxy_shared, &c->proxy, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = cloud_auth_new(cfg, proxy_configure, c->proxy, &c->auth, c->err);
    if (e != DIRCONN_OK)
        return e;
    cloud_auth_set_outcome(c->auth, proxy_outcome);
    struct scim_client_options so = {
        .base_url = c->scim_base,
        .ca_file = cfg->cloud_ca_file,
        .max_in_flight = 8,
        .token = cloud_auth_token,
        .token_arg = c->auth,
        .configure = proxy_configure,
        .outcome = proxy_outcome,
        .configure_arg = c->proxy,
        .log = c->log,
        .write_deadline_ms = c->opts->write_deadline_ms,
        .observe = c->opts->observe_scim,
        .observe_arg = c->opts->observe_arg,
    };
    e = scim_client_new(&so, &c->scim, c->err);
    if (e == DIRCONN_OK && c->opts->fencing_token != NULL)
        e = scim_client_set_header(c->scim, "Dirconn-Fencing-Token", c->opts->fencing_token);
    /* docs/cloud-api.md "HA mode": the cloud refuses a connector of another mode. */
    if (e == DIRCONN_OK && config_ha_lease_name(c->cfg->ha_lease) != NULL)
        e = scim_client_set_header(c->scim, "Dirconn-HA-Mode",
                                   config_ha_lease_name(c->cfg->ha_lease));
    return e;
}
