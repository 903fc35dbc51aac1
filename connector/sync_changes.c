/* sync_changes.c - an incremental run's directory read: the changes since the watermark. */
#include "connector/sync_changes.h"
#include "connector/core/digest.h"

#include "connector/ldap_entry.h"
#include "connector/mapping.h"
#include "connector/plan.h"
#include "connector/select.h"
#include "connector/sync_objmap.h"
#include "connector/sync_read.h"
#include "connector/tracking.h"

#include <jansson.h>
#include <ldap.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The scope hash: what the selection and mapping were when a watermark was
 * taken. Any change (base DNs, filters, security groups, enabled kinds,
 * mapping, required attributes, avatar) makes the watermark worthless: the
 * objects it skipped may now be in scope or mapped differently.
 */
void sync_changes_scope_hash(const struct config *cfg, const struct select_plan *sel,
                             unsigned kinds, const char *partition, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char buf[64];
#define H(str) EVP_DigestUpdate(md, (str), strlen(str) + 1)
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    H("dirconn scope 1");
    H(partition != NULL ? partition : "");
    snprintf(buf, sizeof(buf), "kinds %u enabled_only %d avatar %d", kinds, cfg->users_enabled_only,
             cfg->avatar_enabled);
    H(buf);
    for (size_t i = 0; i < sel->n; i++) {
        snprintf(buf, sizeof(buf), "search %d", (int)sel->searches[i].kind);
        H(buf);
        H(sel->searches[i].base);
        H(sel->searches[i].filter);
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        H(cfg->mappings[i].scim_path);
        H(cfg->mappings[i].expression);
    }
    for (size_t i = 0; i < cfg->users_required_attributes.n; i++)
        H(cfg->users_required_attributes.v[i]);
    H(cfg->avatar_pattern != NULL ? cfg->avatar_pattern : "");
#undef H
    digest_final_hex(md, hex);
    EVP_MD_CTX_free(md);
}

/* The attributes whose changes matter to the mapping of any enabled kind. */
static const char **tracked_attrs(struct sync_ctx *c)
{
    size_t cap = 16, n = 0;
    const char **v = calloc(cap, sizeof(char *));
    static const char *const extra[] = {
        "objectClass", "userAccountControl", "msDS-UserAccountDisabled", "member", "name", NULL};
    for (int k = -1; v != NULL && k < OBJECT_KINDS; k++) {
        if (k >= 0 && !(c->kinds & (1u << k)))
            continue;
        const char *const *a = k < 0 ? extra : mapping_attributes(c->maps[k]);
        for (size_t i = 0; v != NULL && a[i] != NULL; i++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = strcasecmp(v[j], a[i]) == 0;
            if (dup)
                continue;
            if (n + 2 > cap) {
                cap *= 2;
                const char **g = realloc(v, cap * sizeof(char *));
                if (g == NULL) {
                    free(v);
                    return NULL;
                }
                v = g;
            }
            v[n++] = a[i];
            v[n] = NULL;
        }
    }
    return v;
}

static int collect_change(void *arg, const struct tracking_change *ch)
{
    struct id_list *l = arg;
    if (ch->kind == TRACKING_PRESENT)
        return !id_list_add(&l[1], ch->id, NULL, -1, NULL, false);
    if (ch->id[0] == '\0' && ch->dn == NULL)
        return 0;
    return !id_list_add(&l[0], ch->id[0] != '\0' ? ch->id : NULL, ch->dn, -1, NULL,
                        ch->kind == TRACKING_DELETED);
}

static int collect_retry(void *arg, const char *id, const char *dn, int kind)
{
    (void)kind; /* the directory says what it is when it is read again */
    struct id_list *l = arg;
    return !(id_list_add(&l[0], id, dn, -1, NULL, false) &&
             id_list_add(&l[2], id, dn, -1, NULL, false));
}

static bool is_security_group(const struct config *cfg, const char *dn)
{
    for (size_t i = 0; i < cfg->users_security_groups.n; i++)
        if (select_dn_within(dn, cfg->users_security_groups.v[i]) &&
            select_dn_within(cfg->users_security_groups.v[i], dn))
            return true;
    return false;
}

/* state_names_unsent_foreach: queue one object never sent (memory running out is not an error). */
static int queue_unsent(void *arg, const char *id, const char *dn)
{
    id_list_add(arg, id, dn, -1, NULL, false);
    return 0;
}

/* The DNs of a security group's members, now and as last sent: their scope may have changed. */
static void queue_members(struct sync_ctx *c, const char *group_id, const struct ldap_entry *entry,
                          struct id_list *more)
{
    const struct ldap_attr *m = ldap_entry_attr(entry, "member");
    for (size_t i = 0; m != NULL && i < m->n_values; i++)
        id_list_add(more, NULL, m->values[i].data, -1, NULL, false);
    /* Users in scope that were never sent (naming conflicts) are in no record: re-read them too.
     * An error reading them leaves them to the next full sync, as a failed add does. */
    state_names_unsent_foreach(c->st, OBJECT_USER, queue_unsent, more, NULL);
    struct state_object so = {0};
    bool found = false;
    if (state_object_get(c->st, group_id, &so, &found, NULL) != DIRCONN_OK || !found ||
        so.record == NULL) {
        if (found && !c->need_full) {
            /* Sent, but its record was reset (the object map rebuilt from a cloud copy that
             * another connector had changed): who was a member is not known here. */
            c->need_full = true;
            snprintf(c->res->fallback, sizeof(c->res->fallback),
                     "the security group %s changed and its last sent members are not known (no "
                     "acknowledged record since the object map was rebuilt)",
                     entry->dn);
        }
        state_object_clear(&so);
        return;
    }
    json_error_t jerr;
    json_t *rec = json_loads(so.record, 0, &jerr);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rec, PLAN_KEY_MEMBERS), i, v)
    {
        struct state_object mo = {0};
        bool mf = false;
        if (state_object_get(c->st, json_string_value(v), &mo, &mf, NULL) == DIRCONN_OK && mf)
            id_list_add(more, NULL, mo.dn, -1, NULL, false);
        state_object_clear(&mo);
    }
    json_decref(rec);
    state_object_clear(&so);
}

/*
 * An object the connector does not hold yet (new, or back in scope): the
 * groups that list it as a member and the users it manages must be re-read,
 * their member lists and managers now resolve to it. (Groups of an object leaving the scope lose it
 * in the cloud with its deletion.)
 */
static enum dirconn_err queue_groups_of_new(struct sync_ctx *c, const char *id, const char *dn,
                                            struct id_list *more)
{
    struct state_object so = {0};
    bool found = false;
    enum dirconn_err e = state_object_get(c->st, id, &so, &found, c->err);
    state_object_clear(&so);
    if (e != DIRCONN_OK || found || more == NULL)
        return e;
    char *esc = ldap_escape_filter_value(dn, strlen(dn));
    if (esc == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    size_t len = 2 * strlen(esc) + 64;
    char *filter = malloc(len);
    if (filter == NULL) {
        free(esc);
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    snprintf(filter, len, "(|(&(objectClass=group)(member=%s))(manager=%s))", esc, esc);
    free(esc);
    static const char *const attrs[] = {"objectClass", NULL};
    struct ldap_search_spec spec = {ldap_source_base_dn(c->src), LDAP_SCOPE_SUBTREE, filter, attrs,
                                    false};
    struct ldap_cursor *cur = NULL;
    e = ldap_source_search(c->src, &spec, &cur, c->err);
    while (e == DIRCONN_OK) {
        struct ldap_entry *g = NULL;
        e = ldap_cursor_next(cur, &g, c->err);
        if (e != DIRCONN_OK || g == NULL)
            break;
        if (!id_list_add(more, g->id[0] ? g->id : NULL, g->dn, -1, NULL, false))
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        ldap_entry_free(g);
    }
    ldap_cursor_free(cur);
    free(filter);
    return e;
}

/*
 * The objects that shared a name (email) with this one when it was last
 * read: a naming conflict may end when it changes or goes, and they are
 * then sent.
 */
struct partner_walk {
    struct sync_ctx *c;
    struct id_list *more;
};

static int queue_partner(void *arg, const char *id, const char *dn)
{
    struct partner_walk *w = arg;
    if (id_list_add(w->more, id, dn, -1, NULL, false))
        return 0;
    dirconn_error_set(w->c->err, DIRCONN_ENOMEM, "out of memory");
    return 1;
}

static enum dirconn_err queue_name_partners(struct sync_ctx *c, const char *id,
                                            struct id_list *more)
{
    if (id == NULL || more == NULL)
        return DIRCONN_OK;
    struct partner_walk w = {c, more};
    return state_name_partners_foreach(c->st, id, queue_partner, &w, c->err);
}

/*
 * The object left the scope or was deleted: plan its deletion if the connector holds it.
 * deleted: the directory reported its deletion; unknown to the state, the cloud is asked
 * whether it holds it (sync_cloud_load_targeted). An object the state does not know that only
 * left the scope, or never was in it, is not looked up: most changes out of the scope are those.
 */
static enum dirconn_err gone(struct sync_ctx *c, const char *id, const char *dn, bool deleted)
{
    struct state_object so = {0};
    bool found = false;
    enum dirconn_err e = DIRCONN_OK;
    if (id != NULL)
        e = state_object_get(c->st, id, &so, &found, c->err);
    else if (dn != NULL) {
        e = state_object_find_dn(c->st, dn, &so, &found, c->err);
        char *key = e == DIRCONN_OK && !found ? ldap_dn_canonical(dn) : NULL;
        if (key != NULL)
            e = state_object_find_dn(c->st, key, &so, &found, c->err);
        free(key);
    }
    if (e == DIRCONN_OK && !found && id != NULL) {
        /* Never sent (a conflict): its name goes. Or sent without the state knowing. */
        e = plan_add_gone(c->plan, id, c->err);
        if (e == DIRCONN_OK && deleted && !id_list_add(&c->touched, id, NULL, -1, NULL, true))
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    if (e == DIRCONN_OK && found) {
        e = plan_add_gone(c->plan, so.external_id, c->err);
        if (e == DIRCONN_OK &&
            !id_list_add(&c->touched, so.external_id, so.dn, so.kind, so.name, true))
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    state_object_clear(&so);
    return e;
}

/*
 * Re-read one changed object by its DN with every search of the selection
 * whose base holds it: in scope, it is mapped in full and planned; out of
 * scope (or gone), it is planned for deletion if the connector holds it.
 */
static enum dirconn_err evaluate(struct sync_ctx *c, const char *id, const char *dn,
                                 struct id_list *more, struct id_list *fresh, long *read)
{
    bool found = false;
    enum dirconn_err e = queue_name_partners(c, id, more);
    for (size_t i = 0; dn != NULL && i < c->sel->n && !found && e == DIRCONN_OK; i++) {
        const struct select_search *s = &c->sel->searches[i];
        if (!(c->kinds & (1u << s->kind)) || !select_dn_within(dn, s->base))
            continue;
        const char **attrs = sync_read_search_attrs(c->maps[s->kind]);
        if (attrs == NULL)
            return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        struct ldap_search_spec spec = {dn, LDAP_SCOPE_BASE, s->filter, attrs, false};
        struct ldap_cursor *cur = NULL;
        e = ldap_source_search(c->src, &spec, &cur, c->err);
        while (e == DIRCONN_OK) {
            struct ldap_entry *entry = NULL;
            e = ldap_cursor_next(cur, &entry, c->err);
            if (e != DIRCONN_OK || entry == NULL)
                break;
            if ((int)select_classify(entry) == (int)s->kind && entry->id[0] != '\0' &&
                (id == NULL || strcasecmp(id, entry->id) == 0)) {
                found = true;
                (*read)++;
                c->entry_skipped = false;
                e = sync_read_add_entry(c, (enum object_kind)s->kind, entry);
                /* A skipped entry is sent to no group: its groups need not be read again. The
                 * groups of the others are looked for once every change is read (fresh): an
                 * entry then in a naming conflict is not sent either. */
                if (e == DIRCONN_OK && s->kind != OBJECT_CONTACT && !c->entry_skipped &&
                    more != NULL && !id_list_add(fresh, entry->id, entry->dn, s->kind, NULL, false))
                    e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
                if (e == DIRCONN_OK && s->kind == OBJECT_GROUP && more != NULL &&
                    is_security_group(c->cfg, entry->dn))
                    queue_members(c, entry->id, entry, more);
            }
            ldap_entry_free(entry);
        }
        ldap_cursor_free(cur);
        free(attrs);
        if (e == DIRCONN_ELDAP_NOSUCHOBJECT)
            e = DIRCONN_OK; /* renamed or deleted since it was reported */
    }
    if (e == DIRCONN_OK && !found)
        e = gone(c, id, dn, false);
    return e;
}

enum dirconn_err sync_changes_note_added(struct sync_ctx *c, enum object_kind kind, const char *ext,
                                         const char *name)
{
    bool ok = id_list_add(&c->touched, ext, NULL, kind, name, false);
    return ok ? DIRCONN_OK : dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
}

static int cmp_rec(const void *a, const void *b)
{
    const struct id_rec *x = a, *y = b;
    return strcmp(x->id, y->id);
}

/* Whether id is in the sorted list. */
static bool sorted_has(const struct id_list *l, const char *id)
{
    struct id_rec key = {.id = (char *)id};
    return l->n > 0 && bsearch(&key, l->v, l->n, sizeof(*l->v), cmp_rec) != NULL;
}

struct present_walk {
    struct sync_ctx *c;
    struct id_list *present, *changed_sorted;
    struct id_list gone;
};

static int present_one(const struct state_object *o, void *arg)
{
    struct present_walk *w = arg;
    if (!(w->c->kinds & (1u << o->kind)) || sorted_has(w->present, o->external_id) ||
        sorted_has(w->changed_sorted, o->external_id))
        return 0;
    return !id_list_add(&w->gone, o->external_id, o->dn, o->kind, NULL, true);
}

/* Comparators for POSIX tsearch trees of strings: ids exactly, DNs without case. */
static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int cmp_dn(const void *a, const void *b)
{
    return strcasecmp(a, b);
}

/* Free the nodes of a tsearch tree (not its keys): POSIX has no tdestroy. */
static void tree_free(void **root, int (*cmp)(const void *, const void *))
{
    while (*root != NULL)
        tdelete(*(void *const *)*root, root, cmp);
}

/*
 * Read the changes since wm and plan them (partial plan). lists[0] gets the
 * changes and the retries, lists[1] the RFC 4533 present ids, lists[2] the
 * retries taken up by this run.
 */
/*
 * Plan each change of lists[0] (its last report), then the related objects it queued, then
 * the member and manager DNs that resolve neither in this run nor through the map by DN.
 * Inside the caller's transaction.
 */
static enum dirconn_err plan_changed(struct sync_ctx *c, struct id_list lists[3], long *read)
{
    enum dirconn_err e = DIRCONN_OK;
    struct id_list more = {0}, fresh = {0};
    /*
     * The last report of an object wins (a change, then its deletion): walked
     * from the end, an id already in the tree (POSIX tsearch) has a later
     * report. The tree then holds every changed id, for the related objects
     * below. O(n log n) for n changes.
     */
    void *changed_ids = NULL, *seen_dns = NULL;
    bool *later = calloc(lists[0].n > 0 ? lists[0].n : 1, sizeof(*later));
    if (later == NULL && e == DIRCONN_OK)
        e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    for (size_t i = lists[0].n; i-- > 0 && e == DIRCONN_OK;) {
        const char *id = lists[0].v[i].id;
        if (id == NULL)
            continue;
        if (tfind(id, &changed_ids, cmp_cstr) != NULL)
            later[i] = true;
        else if (tsearch(id, &changed_ids, cmp_cstr) == NULL)
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < lists[0].n && e == DIRCONN_OK; i++) {
        const struct id_rec *r = &lists[0].v[i];
        if (later[i])
            continue;
        if (r->deleted) {
            e = queue_name_partners(c, r->id, &more);
            if (e == DIRCONN_OK)
                e = gone(c, r->id, NULL, true);
        } else {
            e = evaluate(c, r->id, r->dn, &more, &fresh, read);
        }
        if ((i + 1) % 100 == 0)
            log_msg(c->log, LOG_LEVEL_DEBUG, "reading: %zu of %zu changed objects read again",
                    i + 1, lists[0].n);
    }
    /*
     * Related objects (groups of a changed member, ...): each DN once, none already changed.
     * Then the groups of the objects read that the state does not hold (fresh: new, back in
     * scope, never sent): the groups that list them now resolve to them, unless they are in a
     * naming conflict (state_plan_in_conflict, with every change read), and so not sent. A
     * group read for them may bring more (its own groups), until none is left.
     */
    size_t next = 0;
    while (e == DIRCONN_OK) {
        for (; next < more.n && e == DIRCONN_OK; next++) {
            /* evaluate may append to more; the strings stay where they are */
            const char *id = more.v[next].id, *dn = more.v[next].dn;
            bool seen = dn == NULL || tfind(dn, &seen_dns, cmp_dn) != NULL;
            if (!seen && tsearch(dn, &seen_dns, cmp_dn) == NULL) {
                e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
                break;
            }
            if (!seen && id != NULL)
                seen = tfind(id, &changed_ids, cmp_cstr) != NULL;
            if (!seen)
                e = evaluate(c, id, dn, &more, &fresh, read);
        }
        if (e != DIRCONN_OK || fresh.n == 0)
            break;
        struct id_list now = fresh;
        fresh = (struct id_list){0};
        if (now.n > 0)
            e = state_plan_index(c->st, false, c->err); /* plan_dir by name */
        for (size_t i = 0; i < now.n && e == DIRCONN_OK; i++) {
            if (now.v[i].kind == OBJECT_USER && state_plan_in_conflict(c->st, now.v[i].id)) {
                c->conflict_kept++;
                log_msg(c->log, LOG_LEVEL_DEBUG,
                        "%s: in a naming conflict, not sent: its groups are not read again",
                        now.v[i].dn);
                continue;
            }
            e = queue_groups_of_new(c, now.v[i].id, now.v[i].dn, &more);
        }
        id_list_free(&now);
    }
    id_list_free(&fresh);
    if (e == DIRCONN_OK && c->conflict_kept > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "%ld objects read are in a naming conflict (not sent): the groups that list them "
                "were not read again",
                c->conflict_kept);
    /* The managers and members that resolve neither in this run nor through the map by DN are
     * read from the directory (sync_objmap_resolve_dn), inside this transaction: their DNs are
     * recorded. */
    if (e == DIRCONN_OK)
        e = plan_resolve_links(c->plan, c->err);
    if (e == DIRCONN_OK && c->resolve_e != DIRCONN_OK)
        e = dirconn_error_set(c->err, c->resolve_e, "%s", c->resolve_msg);
    if (e == DIRCONN_OK && c->dn_found + c->dn_new > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "%ld member or manager DNs read from the directory: %ld found in the object map "
                "(DN recorded), %ld in scope but sent by no connector (left out)",
                c->dn_found + c->dn_new, c->dn_found, c->dn_new);
    if (e == DIRCONN_OK && c->dn_unsent > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "%ld member or manager DNs left out without reading them: in scope and not sent "
                "when last read (a required attribute missing, a naming conflict)",
                c->dn_unsent);
    tree_free(&seen_dns, cmp_dn);
    tree_free(&changed_ids, cmp_cstr);
    free(later);
    id_list_free(&more);
    return e;
}

/* RFC 4533 present phase: what was neither present (lists[1]) nor changed (lists[0]) is gone. */
static enum dirconn_err plan_not_present(struct sync_ctx *c, struct id_list lists[3])
{
    enum dirconn_err e = DIRCONN_OK;
    struct id_list changed = {0};
    for (size_t i = 0; i < lists[0].n && e == DIRCONN_OK; i++)
        if (lists[0].v[i].id != NULL &&
            !id_list_add(&changed, lists[0].v[i].id, NULL, -1, NULL, false))
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    /* qsort takes no NULL array, even empty (C11 7.22.5 1): a refresh may report no change. */
    if (changed.n > 0)
        qsort(changed.v, changed.n, sizeof(*changed.v), cmp_rec);
    if (lists[1].n > 0)
        qsort(lists[1].v, lists[1].n, sizeof(*lists[1].v), cmp_rec);
    struct present_walk w = {c, &lists[1], &changed, {0}};
    if (e == DIRCONN_OK)
        e = state_object_foreach(c->st, -1, present_one, &w, c->err);
    for (size_t i = 0; i < w.gone.n && e == DIRCONN_OK; i++)
        e = gone(c, w.gone.v[i].id, NULL, false);
    id_list_free(&w.gone);
    id_list_free(&changed);
    return e;
}

/* sync_changes_cloud_not_present: the cloud objects of this group neither in the state, nor
 * read in this run, nor present. */
struct cloud_walk {
    const struct id_list *present;
    struct id_list gone;
    bool oom;
};

static int cloud_not_present(void *arg, const struct state_plan_adoptable *row)
{
    struct cloud_walk *w = arg;
    if (row->in_scope || !sync_objmap_is_ours(row->external_id) ||
        sorted_has(w->present, row->external_id))
        return 0;
    w->oom = !id_list_add(&w->gone, row->external_id, NULL, row->kind, NULL, true);
    return w->oom;
}

enum dirconn_err sync_changes_cloud_not_present(struct sync_ctx *c, const struct id_list lists[3])
{
    struct cloud_walk w = {&lists[1], {0}, false};
    enum dirconn_err e =
        state_plan_adoptable_foreach(c->st, c->kinds, false, cloud_not_present, &w, c->err);
    if (e != DIRCONN_OK && w.oom)
        e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    for (size_t i = 0; i < w.gone.n && e == DIRCONN_OK; i++)
        e = plan_add_gone(c->plan, w.gone.v[i].id, c->err);
    if (e == DIRCONN_OK && w.gone.n > 0)
        log_msg(
            c->log, LOG_LEVEL_INFO,
            "present phase: %zu cloud object%s with this directory's externalIds neither in the "
            "state nor present in the directory: deleted",
            w.gone.n, w.gone.n == 1 ? "" : "s");
    id_list_free(&w.gone);
    return e;
}

enum dirconn_err sync_changes_plan(struct sync_ctx *c, enum change_tracking method,
                                   const char *partition, const struct state_watermark *wm,
                                   struct state_watermark *next, struct id_list lists[3],
                                   long *read)
{
    const char **attrs = tracked_attrs(c);
    if (attrs == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    struct tracking_result tr;
    enum dirconn_err e = tracking_read(c->src, c->log, method, partition, attrs, wm, collect_change,
                                       lists, next, &tr, c->err);
    free(attrs);
    if (e != DIRCONN_OK)
        return e;
    c->res->changes = (long)tr.changes;
    log_msg(c->log, LOG_LEVEL_INFO, "%s: %lu changes since the watermark",
            change_tracking_name(method), tr.changes);
    c->present_phase = tr.present_phase;
    if (tr.present_phase)
        log_msg(c->log, LOG_LEVEL_INFO,
                "%s: present phase (the server's session log does not reach back to the "
                "watermark): %zu objects present; what is neither present nor changed is deleted",
                change_tracking_name(method), lists[1].n);
    e = state_retry_foreach(c->st, collect_retry, lists, c->err);
    if (e != DIRCONN_OK)
        return e;
    if (lists[2].n > 0)
        log_msg(c->log, LOG_LEVEL_INFO, "%zu objects whose last change failed are retried",
                lists[2].n);
    plan_set_partial(c->plan);
    plan_set_resolver(c->plan, sync_objmap_resolve_dn, c);
    c->on_added = sync_changes_note_added;
    e = state_begin(c->st, c->err);
    if (e == DIRCONN_OK)
        e = plan_changed(c, lists, read);
    if (e == DIRCONN_OK && tr.present_phase)
        e = plan_not_present(c, lists);
    if (e == DIRCONN_OK)
        e = state_commit(c->st, c->err);
    else
        state_rollback(c->st);
    return e;
}
