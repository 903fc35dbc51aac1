/* sync_objmap.c - the object map and the cloud: takeover rebuild, adoption, DN resolver. */
#include "connector/sync_objmap.h"

#include "connector/ldap_entry.h"
#include "connector/ldap_source.h"
#include "connector/mapping.h"
#include "connector/plan.h"
#include "connector/scim.h"
#include "connector/select.h"
#include "connector/state.h"
#include "connector/sync_cloud.h"
#include "connector/sync_read.h"

#include <jansson.h>
#include <ldap.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A manager or member DN that a partial plan resolves neither among this
 * run's objects nor through the object map by DN (plan_set_resolver): an
 * object the map holds under no DN or another one (a map rebuilt from the
 * cloud inventory after a takeover knows ids, not DNs; a rename the old
 * active synchronised), or one not synchronised yet. It is read from the
 * directory with a base-scope search of each user or group search of the
 * selection whose base holds it (its filter: in scope or not), mapped for
 * its externalId; in the map, the DN is recorded on that row and the DN
 * resolves to it; in scope but not in the map, it is left out (see below).
 * One lookup per DN and run (struct dn_memo).
 */
struct dn_memo {
    char *key; /* ldap_dn_canonical */
    char *ext; /* the externalId it resolves to, or NULL */
};

static int cmp_memo(const void *a, const void *b)
{
    return strcasecmp(((const struct dn_memo *)a)->key, ((const struct dn_memo *)b)->key);
}

void sync_objmap_free(struct sync_ctx *c)
{
    while (c->dn_memo != NULL) {
        struct dn_memo *m = *(struct dn_memo **)c->dn_memo;
        tdelete(m, &c->dn_memo, cmp_memo);
        free(m->key);
        free(m->ext);
        free(m);
    }
}

static void resolve_failed(struct sync_ctx *c, enum dirconn_err e, const char *dn, const char *msg)
{
    if (c->resolve_e != DIRCONN_OK)
        return;
    c->resolve_e = e;
    int n = snprintf(c->resolve_msg, sizeof(c->resolve_msg), "reading the member %.400s: ", dn);
    if (n > 0 && (size_t)n < sizeof(c->resolve_msg))
        snprintf(c->resolve_msg + n, sizeof(c->resolve_msg) - (size_t)n, "%.*s",
                 (int)(sizeof(c->resolve_msg) - (size_t)n - 1), msg);
}

/* The in-scope object of dn: its externalId (malloc'd) and its entry DN, or NULL. */
static char *lookup_dn(struct sync_ctx *c, const char *dn)
{
    char *ext = NULL;
    /* Once a search finds the entry in scope, the others are not asked: an entry has one kind
     * and its kind one mapping, which says whether it is sent (a member that is not sent was
     * asked once for each search whose base holds it). */
    bool in_scope = false;
    for (size_t i = 0; c->sel != NULL && i < c->sel->n && !in_scope; i++) {
        const struct select_search *s = &c->sel->searches[i];
        if ((s->kind != OBJECT_USER && s->kind != OBJECT_GROUP) || !(c->kinds & (1u << s->kind)) ||
            !select_dn_within(dn, s->base))
            continue;
        const char **attrs = sync_read_search_attrs(c->maps[s->kind]);
        if (attrs == NULL) {
            resolve_failed(c, DIRCONN_ENOMEM, dn, "out of memory");
            return NULL;
        }
        struct ldap_search_spec spec = {dn, LDAP_SCOPE_BASE, s->filter, attrs, false};
        struct ldap_cursor *cur = NULL;
        struct dirconn_error lerr;
        dirconn_error_clear(&lerr);
        enum dirconn_err e = ldap_source_search(c->src, &spec, &cur, &lerr);
        while (e == DIRCONN_OK) {
            struct ldap_entry *entry = NULL;
            e = ldap_cursor_next(cur, &entry, &lerr);
            if (e != DIRCONN_OK || entry == NULL)
                break;
            if (ext == NULL && (int)select_classify(entry) == (int)s->kind &&
                entry->id[0] != '\0') {
                in_scope = true;
                struct mapping_result mr;
                if (mapping_apply(c->maps[s->kind], entry, &mr) == DIRCONN_OK && !mr.skipped) {
                    ext = strdup(mr.external_id != NULL ? mr.external_id : entry->id);
                    if (ext == NULL)
                        resolve_failed(c, DIRCONN_ENOMEM, dn, "out of memory");
                }
                mapping_result_clear(&mr);
            }
            ldap_entry_free(entry);
        }
        ldap_cursor_free(cur);
        free(attrs);
        if (e != DIRCONN_OK && e != DIRCONN_ELDAP_NOSUCHOBJECT)
            resolve_failed(c, e, dn, lerr.msg);
    }
    return ext;
}

char *sync_objmap_resolve_dn(void *arg, const char *dn)
{
    struct sync_ctx *c = arg;
    char *key = ldap_dn_canonical(dn);
    if (key == NULL)
        key = strdup(dn);
    if (key == NULL)
        return NULL;
    struct dn_memo probe = {key, NULL};
    void *hit = tfind(&probe, &c->dn_memo, cmp_memo);
    if (hit != NULL) {
        free(key);
        const struct dn_memo *m = *(struct dn_memo **)hit;
        return m->ext != NULL ? strdup(m->ext) : NULL;
    }
    struct dn_memo *m = calloc(1, sizeof(*m));
    if (m != NULL)
        m->key = key;
    if (m == NULL || tsearch(m, &c->dn_memo, cmp_memo) == NULL) {
        free(m);
        free(key);
        resolve_failed(c, DIRCONN_ENOMEM, dn, "out of memory");
        return NULL;
    }
    if (state_unsent_has_dn(c->st, key)) {
        /* Read and not sent by the last runs (skipped, or in a naming conflict), and not changed
         * since (a change would have read it in this run): reading it again would leave it out. */
        c->dn_unsent++;
        log_msg(c->log, LOG_LEVEL_DEBUG, "%s: in scope and not sent when last read: left out", dn);
        return NULL;
    }
    char *ext = lookup_dn(c, dn);
    if (ext == NULL)
        return NULL;
    struct state_object so = {0};
    bool found = false;
    struct dirconn_error serr;
    enum dirconn_err e = state_object_get(c->st, ext, &so, &found, &serr);
    if (e == DIRCONN_OK && found)
        e = state_object_set_dn(c->st, ext, dn, &serr);
    state_object_clear(&so);
    if (e != DIRCONN_OK) {
        resolve_failed(c, e, dn, serr.msg);
        free(ext);
        return NULL;
    }
    if (found) {
        c->dn_found++;
        log_msg(c->log, LOG_LEVEL_DEBUG, "%s: found in the object map as %s (its DN recorded)", dn,
                ext);
        m->ext = ext;
        return strdup(ext);
    }
    /*
     * In scope, not in the map (rebuilt from the cloud's inventory or kept by every run): no
     * connector sent it. A full sync would not send it either (a naming conflict, a missing
     * required attribute: the names of a map rebuilt after a takeover are not all known, so
     * this run could not tell a conflict), or this run reads it anyway (changed since the
     * watermark, or on the retry list). It is left out of the record, as a full sync leaves
     * an object it does not send.
     */
    c->dn_new++;
    log_msg(c->log, LOG_LEVEL_DEBUG, "%s: in scope but not in the object map (%s): left out", dn,
            ext);
    free(ext);
    return NULL;
}

/*
 * After a takeover (sync_options.sync_objmap_rebuild): the object map is rebuilt
 * from the cloud's inventory (the selection a full sync lists: id,
 * externalId, meta.version) before the incremental runs, so that it knows
 * every object of this directory's externalId form whichever instance made
 * it (state_reconcile_*, in one transaction: all or nothing).
 */
struct rebuild_walk {
    struct sync_ctx *c;
    enum object_kind kind;
    struct state_reconcile *r;
    enum dirconn_err e;
};

static bool is_ours(void *arg, enum object_kind kind, const char *external_id);

static int rebuild_one(void *arg, json_t *res)
{
    struct rebuild_walk *w = arg;
    const char *id = json_string_value(json_object_get(res, "id"));
    const char *ext = json_string_value(json_object_get(res, "externalId"));
    if (id == NULL || ext == NULL || !is_ours(w->c, w->kind, ext))
        return 0;
    const char *name = json_string_value(
        json_object_get(res, w->kind == OBJECT_USER ? "userName" : "displayName"));
    const char *version =
        json_string_value(json_object_get(json_object_get(res, "meta"), "version"));
    w->e = state_reconcile_object(w->c->st, w->r, (int)w->kind, ext, id, name, version, w->c->err);
    return w->e != DIRCONN_OK;
}

enum dirconn_err sync_objmap_rebuild(struct sync_ctx *c)
{
    double t0 = sync_ctx_now();
    struct state_reconcile r = {0};
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = state_reconcile_begin(c->st, &r, c->err);
    for (int k = 0; k < OBJECT_KINDS && e == DIRCONN_OK; k++) {
        if (!(c->kinds & (1u << k)))
            continue;
        struct rebuild_walk w = {c, (enum object_kind)k, &r, DIRCONN_OK};
        e = scim_list_all(c->scim, sync_cloud_resource_path((enum object_kind)k), NULL,
                          sync_cloud_inventory_select(c, (enum object_kind)k), c->caps.page,
                          rebuild_one, &w, c->err);
        if (w.e != DIRCONN_OK)
            e = w.e;
    }
    if (e == DIRCONN_OK)
        e = state_reconcile_end(c->st, &r, c->kinds, c->err);
    /* Another instance may have sent objects this state recorded as not sent. */
    if (e == DIRCONN_OK)
        e = state_unsent_clear(c->st, c->err);
    if (e == DIRCONN_OK)
        e = state_commit(c->st, c->err);
    else
        state_rollback(c->st);
    if (e != DIRCONN_OK)
        return e;
    c->res->map_rebuilt = true;
    c->res->map_objects = r.objects;
    c->res->map_changed = r.changed;
    c->res->map_removed = r.removed;
    log_msg(c->log, LOG_LEVEL_INFO,
            "object map rebuilt from the cloud inventory (%ld objects, %ld adopted or changed, "
            "%ld removed) in %.2f s: this first sync after the takeover runs incremental from the "
            "shared watermark",
            r.objects, r.changed, r.removed, sync_ctx_now() - t0);
    return DIRCONN_OK;
}

/*
 * The externalIds this directory gives (mapping id(): objectGUID or
 * entryUUID, both GUID strings): a cloud object that carries one was
 * created by a connector of this group, whichever instance was active, and
 * is managed by the active one (plan_adopt_cloud).
 */
bool sync_objmap_is_ours(const char *external_id)
{
    unsigned char guid[16];
    return ldap_guid_from_string(external_id, guid);
}

static bool is_ours(void *arg, enum object_kind kind, const char *external_id)
{
    (void)arg;
    (void)kind;
    return sync_objmap_is_ours(external_id);
}

/* The object map gets what the cloud holds of this group and the state does not know. */
enum dirconn_err sync_objmap_adopt(struct sync_ctx *c)
{
    long n = 0;
    enum dirconn_err e = plan_adopt_cloud(c->plan, c->kinds, is_ours, c, &n, c->err);
    if (e == DIRCONN_OK && n > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "object map: %ld cloud object%s with this directory's externalIds taken from the "
                "cloud inventory (created by another connector of the group, or not recorded)",
                n, n == 1 ? "" : "s");
    return e;
}
