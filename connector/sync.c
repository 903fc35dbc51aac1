/* sync.c - the sync engine: read, map, plan, and apply (apply.c) in the run's order. */
#include "connector/sync.h"

#include "connector/apply.h"
#include "connector/cloud_auth.h"
#include "connector/cloud_caps.h"
#include "proxy/proxy.h"
#include "connector/ldap_entry.h"
#include "connector/ldap_source.h"
#include "connector/mapping.h"
#include "connector/provider.h"
#include "connector/record.h"
#include "connector/scim.h"
#include "connector/select.h"
#include "connector/state.h"
#include "connector/tracking.h"

#include <ldap.h>
#include <openssl/evp.h>
#include <search.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Resources per list page when reading the cloud inventory. */
#define INVENTORY_PAGE 1000

/* A growing list of (external id, DN, kind, name) records. */
struct id_rec {
    char *id;
    char *dn;
    char *name;
    int kind;
    bool deleted;
};

struct id_list {
    struct id_rec *v;
    size_t n, cap;
};

static bool id_list_add(struct id_list *l, const char *id, const char *dn, int kind,
                        const char *name, bool deleted)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct id_rec *g = realloc(l->v, cap * sizeof(*g));
        if (g == NULL)
            return false;
        l->v = g;
        l->cap = cap;
    }
    struct id_rec *r = &l->v[l->n];
    r->id = id != NULL ? strdup(id) : NULL;
    r->dn = dn != NULL ? strdup(dn) : NULL;
    r->name = name != NULL ? strdup(name) : NULL;
    r->kind = kind;
    r->deleted = deleted;
    if ((id != NULL && r->id == NULL) || (dn != NULL && r->dn == NULL) ||
        (name != NULL && r->name == NULL)) {
        free(r->id);
        free(r->dn);
        free(r->name);
        return false;
    }
    l->n++;
    return true;
}

static void id_list_free(struct id_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].dn);
        free(l->v[i].name);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

struct sync_ctx {
    const struct config *cfg;
    const struct log_sink *log;
    const struct sync_options *opts;
    struct sync_result *res;
    struct state *st;
    struct ldap_source *src;
    struct mapping *maps[OBJECT_KINDS];
    struct proxy_ctx *proxy;
    struct cloud_auth *auth;
    struct scim_client *scim;
    struct plan *plan;
    struct cloud_caps caps;
    struct provider *prov; /* discovery of this run (RFC 7644 4) */
    char **unsent;         /* mapped targets the provider cannot take, reported once */
    size_t n_unsent;
    struct plan *unsent_plan;                      /* the plan the unsent targets were added to */
    struct record_path *scope_paths[OBJECT_KINDS]; /* the leaves each mapping produces */
    struct record_scope scope[OBJECT_KINDS];
    bool drift_check;    /* full runs: the inventory reads values, matches are compared (drift) */
    bool no_attr_select; /* the provider refused an attributes= selection: read whole resources */
    bool no_versions; /* full run: the state holds no cloud version (new, taken over, migrated) */
    long inventory_status; /* the HTTP status of the last failed inventory read, 0 = none */
    char *scim_base;
    unsigned kinds; /* bits of enum object_kind being synchronised */
    const struct select_plan *sel;
    /* called for each object given to the plan (incremental: targeted inventory) */
    enum dirconn_err (*on_added)(struct sync_ctx *c, enum object_kind kind, const char *ext,
                                 const char *name);
    /* raw hashes (add_entry): the fingerprint of what else records depend on ("" = none) */
    char raw_fp[65];
    bool raw_skip;           /* full runs: an entry whose raw hash the state holds is not mapped */
    bool entry_warned;       /* add_entry: the entry being mapped gave a warning */
    long raw_skipped;        /* entries given to the plan without mapping */
    struct id_list touched;  /* incremental: objects planned or deleted in this run */
    struct id_list failures; /* objects whose write failed: retried by the next incremental */
    /* apply (apply.h): progress on a terminal, and the lease lost during the run */
    long done, total;
    double started;
    bool lease_lost;
    enum dirconn_err lease_code; /* DIRCONN_ELEASE, or DIRCONN_EHAMODE: another HA mode */
    char lease_msg[DIRCONN_ERROR_LEN];
    enum sync_phase phase; /* the phase the run is in (sync_set_phase) */
    double phase_started;  /* when it began (now_s) */
    /* partial plans: manager and member DNs resolved through the directory (resolve_dn) */
    void *dn_memo;              /* tsearch tree of struct dn_memo, by canonical DN */
    long dn_found, dn_new;      /* DNs recorded on rows of the object map / in scope, not in it */
    enum dirconn_err resolve_e; /* the first error a lookup met (the run stops on it) */
    char resolve_msg[DIRCONN_ERROR_LEN];
    bool summary_printed; /* the Summary line was printed */
    bool result_printed;  /* the Result line was printed */
    struct dirconn_error *err;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const resource_paths[OBJECT_KINDS] = {"/Users", "/Groups", "/Contacts"};

/* ---- progress -------------------------------------------------------------------- */

/* The error a stopped run returns: the lost lease, or the cancel request. */
static enum dirconn_err stopped(struct sync_ctx *c, const char *what)
{
    if (c->lease_lost && c->lease_code == DIRCONN_EHAMODE)
        return dirconn_error_set(c->err, DIRCONN_EHAMODE, "%s; nothing more is written",
                                 c->lease_msg);
    if (c->lease_lost)
        return dirconn_error_set(c->err, DIRCONN_ELEASE,
                                 "the HA lease was lost, nothing more is written: %s",
                                 c->lease_msg);
    return dirconn_error_set(c->err, DIRCONN_ECANCELED, "%s", what);
}

static const char *const phase_names[SYNC_PHASE_MAX] = {
    "starting", "connecting", "reading", "planning", "applying", "saving", "done", "stopped",
};

const char *sync_phase_name(enum sync_phase p)
{
    return (int)p >= 0 && p < SYNC_PHASE_MAX ? phase_names[p] : "unknown";
}

bool sync_phase_allowed(enum sync_phase from, enum sync_phase to)
{
#define PH(x) (1u << SYNC_PHASE_##x)
    /* the table in sync.h */
    static const unsigned next[SYNC_PHASE_MAX] = {
        [SYNC_PHASE_STARTING] = PH(CONNECTING) | PH(STOPPED),
        [SYNC_PHASE_CONNECTING] = PH(READING) | PH(STOPPED),
        [SYNC_PHASE_READING] = PH(READING) | PH(PLANNING) | PH(STOPPED),
        [SYNC_PHASE_PLANNING] = PH(APPLYING) | PH(DONE) | PH(STOPPED),
        [SYNC_PHASE_APPLYING] = PH(SAVING) | PH(STOPPED),
        [SYNC_PHASE_SAVING] = PH(DONE) | PH(STOPPED),
    };
#undef PH
    if ((int)from < 0 || from >= SYNC_PHASE_MAX || (int)to < 0 || to >= SYNC_PHASE_MAX)
        return false;
    return (next[from] & (1u << to)) != 0;
}

/*
 * The one place a run changes phase: the transition is checked against the
 * table (sync.h), logged at debug level with the time spent in the phase it
 * leaves, and the four working phases are reported to on_progress (dirconnd's
 * status). An unexpected transition is a defect: it is logged as a warning.
 */
static void sync_set_phase(struct sync_ctx *c, enum sync_phase to)
{
    double now = now_s();
    if (!sync_phase_allowed(c->phase, to))
        log_msg(c->log, LOG_LEVEL_WARN, "sync: unexpected phase change %s -> %s",
                sync_phase_name(c->phase), sync_phase_name(to));
    log_msg(c->log, LOG_LEVEL_DEBUG, "sync: phase %s -> %s after %.2f s", sync_phase_name(c->phase),
            sync_phase_name(to), c->phase_started > 0 ? now - c->phase_started : 0.0);
    c->phase = to;
    c->phase_started = now;
    if (c->opts->on_progress != NULL && to >= SYNC_PHASE_CONNECTING && to <= SYNC_PHASE_APPLYING)
        c->opts->on_progress(c->opts->progress_arg, sync_phase_name(to), 0, 0);
}

static void progress(struct sync_ctx *c, const char *phase, bool force)
{
    if (c->opts->on_progress != NULL)
        c->opts->on_progress(c->opts->progress_arg, "applying", c->done, c->total);
    if (!c->opts->progress || !isatty(STDERR_FILENO))
        return;
    static const long every = 50;
    if (!force && c->done % every != 0)
        return;
    double el = now_s() - c->started;
    fprintf(stderr, "\r%s: %ld of %ld objects (%.0f/s)   ", phase, c->done, c->total,
            el > 0 ? (double)c->done / el : 0.0);
    if (force)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- apply hooks (apply.h) --------------------------------------------------------- */

static bool apply_cancelled(void *arg)
{
    const struct sync_ctx *c = arg;
    return c->opts->cancel != NULL && atomic_load(c->opts->cancel);
}

/* A write was fenced (ha/election.h): the run stops, and says why. */
static void apply_lease_lost(void *arg, enum dirconn_err code, const char *msg)
{
    struct sync_ctx *c = arg;
    if (!c->lease_lost) {
        snprintf(c->lease_msg, sizeof(c->lease_msg), "%s", msg);
        c->lease_code = code;
    }
    c->lease_lost = true;
}

/* An object whose write failed: the next incremental sync re-reads it (save_progress). */
static void apply_failed(void *arg, const struct apply_failure *f)
{
    struct sync_ctx *c = arg;
    if (!id_list_add(&c->failures, f->external_id, f->dn, f->kind, f->reason, f->op == PLAN_DELETE))
        log_msg(c->log, LOG_LEVEL_ERROR, "out of memory recording a failure");
    if (c->opts->on_problem != NULL) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s %s failed: %s", plan_op_name(f->op),
                 object_kind_name(f->kind), f->reason != NULL ? f->reason : "");
        c->opts->on_problem(c->opts->problem_arg, f->dn != NULL ? f->dn : "", msg);
    }
}

static void apply_progress(void *arg, long done, long total)
{
    struct sync_ctx *c = arg;
    c->done = done;
    c->total = total;
    progress(c, "Applying", false);
}

/* ---- cloud discovery and inventory ------------------------------------------------ */

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
static enum dirconn_err discover(struct sync_ctx *c)
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
    c->caps.page = f->filter_max_results > 0 && f->filter_max_results < INVENTORY_PAGE
                       ? f->filter_max_results
                       : INVENTORY_PAGE;
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
 * afterwards (fill_projections); but a state without any version (new, an
 * instance that took over with an empty state, or just migrated) would have
 * every copy read again: the whole resources are listed at once.
 */
static bool whole_inventory(const struct sync_ctx *c)
{
    return c->no_attr_select || (c->drift_check && (!c->caps.etag || c->no_versions));
}

/* The attributes= selection of an inventory read (RFC 7644 3.9), NULL = whole resources. */
static const char *inventory_select(const struct sync_ctx *c, enum object_kind kind)
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

static enum dirconn_err load_inventory_kinds(struct sync_ctx *c, unsigned kinds)
{
    for (int k = 0; k < OBJECT_KINDS; k++) {
        if (!(kinds & (1u << k)))
            continue;
        const char *sel = inventory_select(c, (enum object_kind)k);
        struct inventory_ctx ic = {c, (enum object_kind)k, DIRCONN_OK,
                                   c->drift_check && sel == NULL, false};
        enum dirconn_err e =
            scim_list_all(c->scim, inventory_path(c, (enum object_kind)k, sel == NULL), NULL, sel,
                          c->caps.page, inventory_one, &ic, c->err);
        if (ic.e != DIRCONN_OK)
            return ic.e;
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}

/* The inventory in one transaction, as the directory read: not one per object. */
static enum dirconn_err load_inventory(struct sync_ctx *c, unsigned kinds)
{
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = load_inventory_kinds(c, kinds);
    if (e == DIRCONN_OK)
        return state_commit(c->st, c->err);
    state_rollback(c->st);
    return e;
}

/* ---- directory ------------------------------------------------------------------- */

static const char *record_name(enum object_kind kind, json_t *res)
{
    if (kind == OBJECT_USER)
        return json_string_value(json_object_get(res, "userName"));
    if (kind == OBJECT_CONTACT) /* contacts are matched and checked for conflicts by email only */
        return json_string_value(
            json_object_get(json_array_get(json_object_get(res, "emails"), 0), "value"));
    return json_string_value(json_object_get(res, "displayName"));
}

/* The mapping's attributes plus what classification needs (free the array only). */
static const char **search_attrs(struct mapping *m)
{
    const char *const *mattrs = mapping_attributes(m);
    size_t n = 0;
    while (mattrs[n] != NULL)
        n++;
    const char **attrs = calloc(n + 5, sizeof(char *));
    if (attrs == NULL)
        return NULL;
    memcpy(attrs, mattrs, n * sizeof(char *));
    attrs[n++] = "uSNChanged"; /* in the raw hash (add_same), where the directory has it */
    attrs[n++] = "objectClass";
    attrs[n++] = "userAccountControl";
    attrs[n++] = "msDS-UserAccountDisabled";
    return attrs;
}

/*
 * A provider that takes one email ([cloud] single_valued = emails) gets the
 * primary only (provider_restrict): the user's other addresses (the aliases
 * of proxyAddresses) are named in a warning of the run's report.
 */
static enum dirconn_err report_single_email(struct sync_ctx *c, const char *dn,
                                            const json_t *resource)
{
    const struct strlist *sv = &c->cfg->cloud_single_valued;
    bool single = false;
    for (size_t i = 0; i < sv->n; i++)
        single = single || strcasecmp(sv->v[i], "emails") == 0;
    const json_t *emails = json_object_get(resource, "emails");
    if (!single || json_array_size(emails) < 2)
        return DIRCONN_OK;
    char list[1024] = "";
    size_t n = 0, i;
    const json_t *el;
    json_array_foreach(emails, i, el)
    {
        const char *v = json_string_value(json_object_get(el, "value"));
        if (v == NULL || json_is_true(json_object_get(el, "primary")))
            continue;
        int w = snprintf(list + n, sizeof(list) - n, "%s%s", n > 0 ? ", " : "", v);
        if (w < 0 || (size_t)w >= sizeof(list) - n) {
            snprintf(list + sizeof(list) - 5, 5, "...");
            break;
        }
        n += (size_t)w;
    }
    if (n == 0)
        return DIRCONN_OK;
    char msg[DIRCONN_ERROR_LEN];
    snprintf(msg, sizeof(msg),
             "For %s, the email addresses %s are not sent: the cloud takes one emails value "
             "([cloud] single_valued), the primary.",
             dn, list);
    log_msg(c->log, LOG_LEVEL_WARN, "%s", msg);
    c->entry_warned = true;
    return plan_add_warning(c->plan, dn, msg, c->err);
}

/*
 * The fingerprint each raw hash includes: everything besides the entry that
 * a mapped record depends on and that a run knows before reading. The
 * configuration's every value (config_fingerprint: the mappings, avatar
 * pattern, accepted_domains, required attributes, selection ...), the
 * program's version (its mapping code), the naming context and directory
 * kind, the kinds synchronised, and the provider's part (provider_restrict):
 * for each kind whether it is offered and which mapped targets it takes.
 */
static void raw_fingerprint(struct sync_ctx *c, const char *partition, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char buf[128];
    hex[0] = '\0';
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return;
    }
#define H(str) EVP_DigestUpdate(md, (str), strlen(str) + 1)
    H("dirconn raw fingerprint 1");
    H(DIRCONN_VERSION);
    config_fingerprint(c->cfg, buf);
    H(buf);
    H(partition != NULL ? partition : "");
    snprintf(buf, sizeof(buf), "directory %d kinds %u",
             c->src != NULL ? (int)ldap_source_rootdse(c->src)->kind : -1, c->kinds);
    H(buf);
    for (int k = 0; k < OBJECT_KINDS; k++) {
        snprintf(buf, sizeof(buf), "kind %d offered %d paths %zu", k,
                 c->prov != NULL && provider_has_kind(c->prov, (enum object_kind)k), c->scope[k].n);
        H(buf);
        for (size_t i = 0; i < c->scope[k].n; i++) {
            const struct record_path *rp = &c->scope[k].paths[i];
            H(rp->attr != NULL ? rp->attr : "");
            H(rp->type != NULL ? rp->type : "\x01");
            H(rp->sub != NULL ? rp->sub : "\x01");
        }
    }
    for (size_t i = 0; i < c->n_unsent; i++)
        H(c->unsent[i]);
#undef H
    if (EVP_DigestFinal_ex(md, out, &len) == 1 && len == 32) {
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", out[i]);
        hex[64] = '\0';
    }
    EVP_MD_CTX_free(md);
}

/*
 * An entry mapped before whose raw hash (ldap_entry_raw_hash over the DN,
 * identifier and every attribute the search read, with raw_fingerprint) is
 * the one the state recorded with the acknowledged record, given to the plan
 * without mapping (plan_add_dir_same). The rule, and why it is safe:
 *   - The mapping is a pure function of the entry and of what the
 *     fingerprint covers (configuration, program version, provider), so an
 *     equal raw hash gives the same mapped resource, name, manager DN and
 *     member DNs as when the record was built. The stable identifier is in
 *     the hash, and the lookup is by it: the state row is this entry's
 *     (an entry whose mapping sets another externalId is never skipped).
 *     Where the directory has uSNChanged, it is one of the attributes read,
 *     so any change of the entry changes the hash too.
 *   - The state row holds the raw hash only with the record it produced
 *     (raw_for = hash, state.h): a record written by anything else voids it.
 *   - What a record depends on beyond its entry is decided in the plan as
 *     for any object, because the plan still gets the object's DN, name,
 *     manager DN and member DNs: manager and member DN -> externalId
 *     resolution (an object renamed, gone, out of scope, skipped or in a
 *     naming conflict resolves differently: the links differ from the
 *     recorded ones and the record is relinked, not skipped), the naming
 *     conflicts on userName / contact email, the cloud-side adoption and
 *     name conflicts (only when the cloud copy is not found by id, and then
 *     the record is planned whole), deletions (the object is present).
 *   - Entries whose mapping gave warnings (invalid values, aliases not
 *     sent) are always mapped, so the run's report keeps their warnings.
 * Only a full run skips; the raw hash is recorded by every run.
 */
static enum dirconn_err add_same(struct sync_ctx *c, enum object_kind kind,
                                 const struct ldap_entry *entry, const char *raw, bool *done)
{
    *done = false;
    const struct ldap_attr *a = kind == OBJECT_GROUP ? ldap_entry_attr(entry, "member") : NULL;
    size_t n = a != NULL ? a->n_values : 0;
    for (size_t i = 0; i < n; i++)
        if (a->values[i].len == 0 || !ldap_value_is_text(&a->values[i]))
            return DIRCONN_OK; /* the mapping warns about these: map it */
    struct state_raw sr;
    bool found = false;
    enum dirconn_err e = state_object_raw_get(c->st, entry->id, raw, &sr, &found, c->err);
    if (e != DIRCONN_OK || !found)
        return e;
    char **members = n > 0 ? calloc(n, sizeof(char *)) : NULL;
    if (n > 0 && members == NULL) {
        state_raw_clear(&sr);
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        members[i] = a->values[i].data;
    e = plan_add_dir_same(c->plan, kind, entry->id, entry->dn, sr.name, sr.manager_dn, members, n,
                          raw, sr.links, c->err);
    free(members);
    if (e == DIRCONN_OK && c->on_added != NULL)
        e = c->on_added(c, kind, entry->id, sr.name);
    state_raw_clear(&sr);
    *done = e == DIRCONN_OK;
    if (*done)
        c->raw_skipped++;
    return e;
}

/* Map one entry of kind and give it to the plan. */
static enum dirconn_err add_entry(struct sync_ctx *c, enum object_kind kind,
                                  struct ldap_entry *entry)
{
    enum dirconn_err e = DIRCONN_OK;
    if (c->unsent_plan != c->plan) {
        /* The mappings the provider cannot take, in this plan's report. */
        c->unsent_plan = c->plan;
        for (size_t k = 0; k < c->n_unsent && e == DIRCONN_OK; k++)
            e = plan_add_warning(c->plan, "", c->unsent[k], c->err);
        if (e != DIRCONN_OK)
            return e;
    }
    char raw[LDAP_ENTRY_RAW_HASH_LEN] = "";
    if (c->raw_fp[0] != '\0' && !ldap_entry_raw_hash(entry, c->raw_fp, raw))
        raw[0] = '\0';
    if (raw[0] != '\0' && c->raw_skip) {
        bool done = false;
        e = add_same(c, kind, entry, raw, &done);
        if (e != DIRCONN_OK || done)
            return e;
    }
    struct mapping_result mr;
    c->entry_warned = false;
    e = mapping_apply(c->maps[kind], entry, &mr);
    if (e != DIRCONN_OK) {
        dirconn_error_set(c->err, e, "mapping %s failed", entry->dn);
        mapping_result_clear(&mr);
        return e;
    }
    for (size_t k = 0; k < mr.n_issues && e == DIRCONN_OK; k++) {
        log_msg(c->log, LOG_LEVEL_WARN, "%s", mr.issues[k].message);
        e = plan_add_warning(c->plan, entry->dn, mr.issues[k].message, c->err);
        if (c->opts->on_problem != NULL)
            c->opts->on_problem(c->opts->problem_arg, entry->dn, mr.issues[k].message);
    }
    if (e == DIRCONN_OK && !mr.skipped && c->prov != NULL && kind == OBJECT_USER)
        e = report_single_email(c, entry->dn, mr.resource);
    if (e == DIRCONN_OK && !mr.skipped && c->prov != NULL) {
        /* Only what the provider declares is recorded and sent (provider_restrict). */
        const char *why;
        if (provider_restrict(c->prov, (enum object_kind)kind, mr.resource)) {
            free(mr.text);
            mr.text = mapping_canonical(mr.resource, &mr.text_split);
            if (mr.text == NULL)
                e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        }
        if (kind == OBJECT_USER && mr.manager_dn != NULL &&
            !provider_check(c->prov, OBJECT_USER, SCIM_SCHEMA_ENTERPRISE ":manager", NULL, "value",
                            &why)) {
            free(mr.manager_dn);
            mr.manager_dn = NULL;
        }
    }
    if (e == DIRCONN_OK) {
        const char *ext = mr.external_id != NULL ? mr.external_id : entry->id;
        if (mr.skipped)
            log_msg(c->log, LOG_LEVEL_WARN, "%s", mr.skip_message);
        const char *name = mr.skipped ? NULL : record_name(kind, mr.resource);
        /* A raw hash only for what add_same can find again and plan without warnings. */
        bool keep_raw =
            raw[0] != '\0' && mr.n_issues == 0 && !c->entry_warned && strcmp(ext, entry->id) == 0;
        e = plan_add_dir_raw(c->plan, kind, ext, entry->dn, name, mr.skipped ? NULL : mr.text,
                             mr.text_split, mr.manager_dn, mr.member_dns, mr.n_members,
                             mr.skipped ? mr.skip_message : NULL, keep_raw ? raw : NULL, c->err);
        if (e == DIRCONN_OK && c->on_added != NULL)
            e = c->on_added(c, kind, ext, name);
    }
    mapping_result_clear(&mr);
    return e;
}

static enum dirconn_err read_directory(struct sync_ctx *c, const struct select_plan *sel,
                                       unsigned kinds, long *read)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct select_search *s = &sel->searches[i];
        if (!(kinds & (1u << s->kind)))
            continue;
        const char **attrs = search_attrs(c->maps[s->kind]);
        if (attrs == NULL)
            return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        struct ldap_search_spec spec = {s->base, LDAP_SCOPE_SUBTREE, s->filter, attrs, false};
        struct ldap_cursor *cur = NULL;
        enum dirconn_err e = ldap_source_search(c->src, &spec, &cur, c->err);
        while (e == DIRCONN_OK) {
            struct ldap_entry *entry = NULL;
            e = ldap_cursor_next(cur, &entry, c->err);
            if (e != DIRCONN_OK || entry == NULL)
                break;
            if ((int)select_classify(entry) != (int)s->kind || entry->id[0] == '\0') {
                ldap_entry_free(entry);
                continue; /* computers, and objects without a stable identifier */
            }
            e = add_entry(c, (enum object_kind)s->kind, entry);
            if (++*read % 100 == 0)
                log_msg(c->log, LOG_LEVEL_DEBUG, "reading: %ld directory objects read", *read);
            ldap_entry_free(entry);
        }
        ldap_cursor_free(cur);
        free(attrs);
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}

/* ---- history and report --------------------------------------------------------- */

static void print_summary(struct sync_ctx *c, bool threshold_exceeded, const char *override_note)
{
    FILE *out = c->opts->out != NULL ? c->opts->out : stdout;
    const struct plan_summary *s = plan_get_summary(c->plan);
    c->summary_printed = true;
    fprintf(out,
            "Summary | 0 Admins Deleted | %ld Users Deleted | %ld Groups Deleted | %ld Objects "
            "Added | %ld Objects Updated | %ld Objects Matched\n",
            s->deleted_by_kind[OBJECT_USER], s->deleted_by_kind[OBJECT_GROUP], s->count[PLAN_ADD],
            s->count[PLAN_UPDATE], s->count[PLAN_MATCH]);
    if (s->drift > 0)
        fprintf(out,
                "%ld of the updated objects were changed in the cloud (drift): the directory's "
                "values are put back\n",
                s->drift);
    if (s->deleted_by_kind[OBJECT_CONTACT] > 0)
        fprintf(out, "%ld contact objects will be deleted\n", s->deleted_by_kind[OBJECT_CONTACT]);
    if (s->count[PLAN_PROTECTED] > 0)
        fprintf(out, "%ld admin objects would have been deleted, but were not\n",
                s->count[PLAN_PROTECTED]);
    if (s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] > 0)
        fprintf(out,
                "%ld objects skipped (%ld missing a required attribute, %ld naming conflicts)\n",
                s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT], s->count[PLAN_SKIP],
                s->count[PLAN_CONFLICT]);
    if (s->warnings > 0)
        fprintf(out, "%ld attribute warnings (the objects are sent without the invalid values)\n",
                s->warnings);
    if (c->res->contacts_unsupported)
        fprintf(out, "Contacts are not synchronised: the cloud offers no Contact resource type\n");
    if (!c->cfg->delete_threshold_enabled)
        fprintf(out, "Delete threshold is disabled\n");
    else if (threshold_exceeded)
        fprintf(out, "Delete threshold (%d object%s) exceeded. %ld objects would be deleted%s\n",
                c->cfg->delete_threshold, c->cfg->delete_threshold == 1 ? "" : "s", s->deletes,
                c->res->override_used ? " (override used for this run)" : "");
    else
        fprintf(out, "Delete threshold (%d object%s) not exceeded: %ld objects would be deleted\n",
                c->cfg->delete_threshold, c->cfg->delete_threshold == 1 ? "" : "s", s->deletes);
    if (override_note != NULL)
        fprintf(out, "%s\n", override_note);
}

/* plan_foreach: hand a skipped or conflicting object to opts->on_problem. */
static int report_problem(void *arg, const struct plan_item *item)
{
    struct sync_ctx *c = arg;
    c->opts->on_problem(c->opts->problem_arg, item->dn != NULL ? item->dn : "",
                        item->message != NULL ? item->message : plan_op_name(item->op));
    return 0;
}

static void record_history(struct sync_ctx *c, const char *type, const char *status, time_t started,
                           const char *message)
{
    const struct plan_summary *s = c->plan != NULL ? plan_get_summary(c->plan) : NULL;
    struct state_history h = {
        .type = (char *)type,
        .started = (int64_t)started,
        .ended = (int64_t)time(NULL),
        .status = (char *)status,
        .added = c->opts->mode == SYNC_DRY_RUN && s ? s->count[PLAN_ADD] : c->res->added,
        .updated = c->opts->mode == SYNC_DRY_RUN && s ? s->count[PLAN_UPDATE] : c->res->updated,
        .deleted = c->opts->mode == SYNC_DRY_RUN && s ? s->deletes : c->res->deleted,
        .matched = s ? s->count[PLAN_MATCH] : 0,
        .skipped = s ? s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] : 0,
        .failed = c->res->failed,
        .threshold_exceeded = c->res->threshold_exceeded,
        .override_used = c->res->override_used,
        .message = (char *)message,
    };
    struct dirconn_error e2;
    if (state_history_add(c->st, &h, &e2) != DIRCONN_OK)
        log_msg(c->log, LOG_LEVEL_WARN, "%s", e2.msg);
}

static void iso8601(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Post the sync report to the cloud's control API (docs/cloud-api.md,
 * Reports) when the connector authenticates as a registered connector: the
 * identity of its OAuth 2.0 token, [cloud] client_id or the registration
 * `dirconnctl register` saved in the secret store. A failure here is logged
 * and does not fail the sync.
 */
static void post_report(struct sync_ctx *c, const char *type, time_t started, const char *message)
{
    const struct config *cfg = c->cfg;
    const char *identity = cloud_auth_identity(c->auth);
    if (c->scim == NULL || cfg->cloud_auth != CLOUD_AUTH_OAUTH2 || identity == NULL ||
        cfg->cloud_url == NULL || cfg->cloud_org == NULL)
        return;
    const struct plan_summary *s = c->plan != NULL ? plan_get_summary(c->plan) : NULL;
    bool dry = c->opts->mode == SYNC_DRY_RUN;
    char start[32], end[32];
    iso8601(started, start);
    iso8601(time(NULL), end);
    json_t *events = json_array();
    if (c->res->threshold_exceeded && s != NULL)
        json_array_append_new(events, json_pack("{s:s, s:I, s:I, s:s}", "kind", "delete", "planned",
                                                (json_int_t)s->deletes, "threshold",
                                                (json_int_t)cfg->delete_threshold, "action",
                                                dry                     ? "reported"
                                                : c->res->override_used ? "overridden"
                                                                        : "aborted"));
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:s}", "type", type, "start", start,
        "end", end, "counts", "added", (json_int_t)(dry && s ? s->count[PLAN_ADD] : c->res->added),
        "updated", (json_int_t)(dry && s ? s->count[PLAN_UPDATE] : c->res->updated), "deleted",
        (json_int_t)(dry && s ? s->deletes : c->res->deleted), "matched",
        (json_int_t)(s ? s->count[PLAN_MATCH] : 0), "skipped",
        (json_int_t)(s ? s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] : 0), "failed",
        (json_int_t)c->res->failed, "thresholdEvents", events, "version", DIRCONN_VERSION);
    if (message != NULL)
        json_object_set_new(body, "message", json_string(message));
    char *id = scim_url_escape(identity);
    char *org = scim_url_escape(cfg->cloud_org);
    char url[4096];
    size_t ul = strlen(cfg->cloud_url);
    snprintf(url, sizeof(url), "%.*s/v1/orgs/%s/connectors/%s/reports",
             (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
             org ? org : "", id ? id : "");
    curl_free(id);
    curl_free(org);
    struct scim_response r;
    if (scim_request_sync(c->scim, "POST", url, body, NULL, &r) != DIRCONN_OK)
        log_msg(c->log, LOG_LEVEL_WARN, "the sync report was not accepted: %s", r.error);
    scim_response_clear(&r);
    json_decref(body);
}

/* The note shown when the previous sync overrode the threshold (Cisco guide). */
static char *override_note(struct sync_ctx *c)
{
    struct state_history *h = NULL;
    size_t n = 0;
    char *note = NULL;
    if (state_history_list(c->st, 1, &h, &n, NULL) == DIRCONN_OK && n == 1 && h[0].override_used) {
        char when[64];
        time_t t = (time_t)h[0].started;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        size_t len = 200;
        note = malloc(len);
        if (note != NULL)
            snprintf(note, len, "Note: the delete threshold was overridden for the %s sync of %s",
                     h[0].type, when);
    }
    state_history_free(h, n);
    return note;
}

/* ---- incremental ------------------------------------------------------------------ */

/*
 * The scope hash: what the selection and mapping were when a watermark was
 * taken. Any change (base DNs, filters, security groups, enabled kinds,
 * mapping, required attributes, avatar) makes the watermark worthless: the
 * objects it skipped may now be in scope or mapped differently.
 */
static void scope_hash(const struct config *cfg, const struct select_plan *sel, unsigned kinds,
                       const char *partition, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
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
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", out[i]);
    hex[64] = '\0';
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

/* The DNs of a security group's members, now and as last sent: their scope may have changed. */
static void queue_members(struct sync_ctx *c, const char *group_id, const struct ldap_entry *entry,
                          struct id_list *more)
{
    const struct ldap_attr *m = ldap_entry_attr(entry, "member");
    for (size_t i = 0; m != NULL && i < m->n_values; i++)
        id_list_add(more, NULL, m->values[i].data, -1, NULL, false);
    /* Users in scope that were never sent (naming conflicts) are in no record: re-read them too. */
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(state_db(c->st),
                           "SELECT external_id, dn FROM names WHERE kind = 0 AND external_id NOT IN"
                           " (SELECT external_id FROM objects)",
                           -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW)
            id_list_add(more, (const char *)sqlite3_column_text(q, 0),
                        (const char *)sqlite3_column_text(q, 1), -1, NULL, false);
    }
    sqlite3_finalize(q);
    struct state_object so = {0};
    bool found = false;
    if (state_object_get(c->st, group_id, &so, &found, NULL) != DIRCONN_OK || !found ||
        so.record == NULL) {
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
static enum dirconn_err queue_groups_of_new(struct sync_ctx *c, const struct ldap_entry *entry,
                                            struct id_list *more)
{
    struct state_object so = {0};
    bool found = false;
    enum dirconn_err e = state_object_get(c->st, entry->id, &so, &found, c->err);
    state_object_clear(&so);
    if (e != DIRCONN_OK || found || more == NULL)
        return e;
    char *esc = ldap_escape_filter_value(entry->dn, strlen(entry->dn));
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
static enum dirconn_err queue_name_partners(struct sync_ctx *c, const char *id,
                                            struct id_list *more)
{
    if (id == NULL || more == NULL)
        return DIRCONN_OK;
    sqlite3 *db = state_db(c->st);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT n2.external_id, n2.dn FROM names n1 JOIN names n2 ON"
                           " n2.name_lower = n1.name_lower AND n2.external_id != n1.external_id"
                           " WHERE n1.external_id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return dirconn_error_set(c->err, DIRCONN_ESTATE, "%s: %s", state_path(c->st),
                                 sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    enum dirconn_err e = DIRCONN_OK;
    while (e == DIRCONN_OK && sqlite3_step(q) == SQLITE_ROW)
        if (!id_list_add(more, (const char *)sqlite3_column_text(q, 0),
                         (const char *)sqlite3_column_text(q, 1), -1, NULL, false))
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    sqlite3_finalize(q);
    return e;
}

/* The object left the scope or was deleted: plan its deletion if the connector holds it. */
static enum dirconn_err gone(struct sync_ctx *c, const char *id, const char *dn)
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
    if (e == DIRCONN_OK && !found && id != NULL)
        e = plan_add_gone(c->plan, id, c->err); /* never sent (a conflict): its name goes */
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
                                 struct id_list *more, long *read)
{
    bool found = false;
    enum dirconn_err e = queue_name_partners(c, id, more);
    for (size_t i = 0; dn != NULL && i < c->sel->n && !found && e == DIRCONN_OK; i++) {
        const struct select_search *s = &c->sel->searches[i];
        if (!(c->kinds & (1u << s->kind)) || !select_dn_within(dn, s->base))
            continue;
        const char **attrs = search_attrs(c->maps[s->kind]);
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
                e = add_entry(c, (enum object_kind)s->kind, entry);
                if (e == DIRCONN_OK && s->kind != OBJECT_CONTACT)
                    e = queue_groups_of_new(c, entry, more);
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
        e = gone(c, id, dn);
    return e;
}

static enum dirconn_err note_added(struct sync_ctx *c, enum object_kind kind, const char *ext,
                                   const char *name)
{
    bool ok = id_list_add(&c->touched, ext, NULL, kind, name, false);
    return ok ? DIRCONN_OK : dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
}

/* One targeted inventory request: a resource, or a list of them. 404 is no object. */
/* GET path (which may end in "attributes=..." or not, see inventory_path). */
static enum dirconn_err inventory_get(struct sync_ctx *c, enum object_kind kind, char *path)
{
    struct scim_response r;
    enum dirconn_err rc = scim_request_sync(c->scim, "GET", path, NULL, NULL, &r);
    char *sel = strstr(path, "attributes=");
    if (rc != DIRCONN_OK && r.status == 400 && sel != NULL) {
        /* The provider refuses the selection (the attributes parameter is optional to honour,
         * RFC 7644 3.4.2.5, not to break on): read whole resources for the rest of the run. */
        log_msg(c->log, LOG_LEVEL_INFO,
                "cloud: %s refused the attribute selection (%s); reading whole resources", path,
                r.error);
        c->no_attr_select = true;
        sel[-1] = '\0'; /* drop "?attributes=..." or "&attributes=..." */
        sel = NULL;
        scim_response_clear(&r);
        rc = scim_request_sync(c->scim, "GET", path, NULL, NULL, &r);
    }
    if (rc != DIRCONN_OK) {
        c->inventory_status = r.status;
        enum dirconn_err e = r.status == 404 ? DIRCONN_OK : scim_response_error(&r, c->err);
        scim_response_clear(&r);
        return e;
    }
    struct inventory_ctx ic = {c, kind, DIRCONN_OK, c->drift_check && sel == NULL, false};
    json_t *list = json_object_get(r.body, "Resources");
    if (list != NULL) {
        size_t i;
        json_t *res;
        json_array_foreach(list, i, res)
        {
            if (inventory_one(&ic, res) != 0)
                break;
        }
    } else {
        inventory_one(&ic, r.body);
    }
    scim_response_clear(&r);
    return ic.e;
}

static enum dirconn_err inventory_filter(struct sync_ctx *c, enum object_kind kind,
                                         const char *attr, const char *value)
{
    char filter[1024], path[2048];
    /* The value is a JSON string in the filter (RFC 7644 3.4.2.2): quotes and backslashes escaped.
     */
    char *quoted = record_filter_string(value);
    if (quoted == NULL)
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    snprintf(filter, sizeof(filter), "%s eq %s", attr, quoted);
    free(quoted);
    char *esc = scim_url_escape(filter);
    const char *sel = inventory_select(c, kind);
    snprintf(path, sizeof(path), "%s?filter=%s%s%s", resource_paths[kind], esc != NULL ? esc : "",
             sel != NULL ? "&attributes=" : "", sel != NULL ? sel : "");
    curl_free(esc);
    return inventory_get(c, kind, path);
}

/*
 * The cloud's view of the objects of this run only: by cloud id when the
 * state knows it, else by externalId and (users) userName for adoption. A
 * run with many changes loads the whole inventory instead.
 */
static enum dirconn_err load_targeted_inventory(struct sync_ctx *c)
{
    if (c->touched.n > INVENTORY_PAGE || !c->caps.filter)
        return load_inventory(c, c->kinds); /* many objects, or a provider without filters */
    enum dirconn_err e = DIRCONN_OK;
    for (size_t i = 0; i < c->touched.n && e == DIRCONN_OK; i++) {
        const struct id_rec *r = &c->touched.v[i];
        if (r->kind < 0 || r->kind >= OBJECT_KINDS || !(c->kinds & (1u << r->kind)))
            continue;
        struct state_object so = {0};
        bool found = false;
        e = state_object_get(c->st, r->id, &so, &found, c->err);
        if (e == DIRCONN_OK && found && so.cloud_id != NULL) {
            char *esc = scim_url_escape(so.cloud_id);
            char path[1024];
            const char *sel = inventory_select(c, (enum object_kind)r->kind);
            snprintf(path, sizeof(path), "%s/%s%s%s", resource_paths[r->kind],
                     esc != NULL ? esc : "", sel != NULL ? "?attributes=" : "",
                     sel != NULL ? sel : "");
            curl_free(esc);
            e = inventory_get(c, (enum object_kind)r->kind, path);
        }
        if (e == DIRCONN_OK && !r->deleted) {
            e = inventory_filter(c, (enum object_kind)r->kind, "externalId", r->id);
            if (e == DIRCONN_OK && r->kind == OBJECT_USER && r->name != NULL)
                e = inventory_filter(c, OBJECT_USER, "userName", r->name);
        }
        state_object_clear(&so);
    }
    if (e != DIRCONN_OK && c->inventory_status == 400) {
        /* The provider refused a lookup it should take (a filter with an escaped quote, say):
         * the whole inventory answers the same question, only slower. */
        log_msg(c->log, LOG_LEVEL_WARN,
                "cloud: a lookup was refused (%s); reading the whole inventory instead",
                c->err->msg);
        dirconn_error_clear(c->err);
        c->inventory_status = 0;
        return load_inventory(c, c->kinds);
    }
    return e;
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

static void dn_memo_free(struct sync_ctx *c)
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
    for (size_t i = 0; c->sel != NULL && i < c->sel->n && ext == NULL; i++) {
        const struct select_search *s = &c->sel->searches[i];
        if ((s->kind != OBJECT_USER && s->kind != OBJECT_GROUP) || !(c->kinds & (1u << s->kind)) ||
            !select_dn_within(dn, s->base))
            continue;
        const char **attrs = search_attrs(c->maps[s->kind]);
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

static char *resolve_dn(void *arg, const char *dn)
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
 * After a takeover (sync_options.rebuild_map): the object map is rebuilt
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

static enum dirconn_err rebuild_map(struct sync_ctx *c)
{
    double t0 = now_s();
    struct state_reconcile r = {0};
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = state_reconcile_begin(c->st, &r, c->err);
    for (int k = 0; k < OBJECT_KINDS && e == DIRCONN_OK; k++) {
        if (!(c->kinds & (1u << k)))
            continue;
        struct rebuild_walk w = {c, (enum object_kind)k, &r, DIRCONN_OK};
        e = scim_list_all(c->scim, resource_paths[k], NULL,
                          inventory_select(c, (enum object_kind)k), c->caps.page, rebuild_one, &w,
                          c->err);
        if (w.e != DIRCONN_OK)
            e = w.e;
    }
    if (e == DIRCONN_OK)
        e = state_reconcile_end(c->st, &r, c->kinds, c->err);
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
            r.objects, r.changed, r.removed, now_s() - t0);
    return DIRCONN_OK;
}

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

static enum dirconn_err compare_unacknowledged(struct sync_ctx *c)
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
 * Read the changes since wm and plan them (partial plan). lists[0] gets the
 * changes and the retries, lists[1] the RFC 4533 present ids, lists[2] the
 * retries taken up by this run.
 */
static enum dirconn_err plan_changes(struct sync_ctx *c, enum change_tracking method,
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
    e = state_retry_foreach(c->st, collect_retry, lists, c->err);
    if (e != DIRCONN_OK)
        return e;
    if (lists[2].n > 0)
        log_msg(c->log, LOG_LEVEL_INFO, "%zu objects whose last change failed are retried",
                lists[2].n);
    plan_set_partial(c->plan);
    plan_set_resolver(c->plan, resolve_dn, c);
    c->on_added = note_added;
    e = state_begin(c->st, c->err);
    struct id_list more = {0};
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
                e = gone(c, r->id, NULL);
        } else {
            e = evaluate(c, r->id, r->dn, &more, read);
        }
        if ((i + 1) % 100 == 0)
            log_msg(c->log, LOG_LEVEL_DEBUG, "reading: %zu of %zu changed objects read again",
                    i + 1, lists[0].n);
    }
    /* Related objects (groups of a changed member, ...): each DN once, none already changed. */
    for (size_t i = 0; i < more.n && e == DIRCONN_OK; i++) {
        /* evaluate may append to more; the strings stay where they are */
        const char *id = more.v[i].id, *dn = more.v[i].dn;
        bool seen = dn == NULL || tfind(dn, &seen_dns, cmp_dn) != NULL;
        if (!seen && tsearch(dn, &seen_dns, cmp_dn) == NULL) {
            e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
            break;
        }
        if (!seen && id != NULL)
            seen = tfind(id, &changed_ids, cmp_cstr) != NULL;
        if (!seen)
            e = evaluate(c, id, dn, &more, read);
    }
    /* The managers and members that resolve neither in this run nor through the map by DN are
     * read from the directory (resolve_dn), inside this transaction: their DNs are recorded. */
    if (e == DIRCONN_OK)
        e = plan_resolve_links(c->plan, c->err);
    if (e == DIRCONN_OK && c->resolve_e != DIRCONN_OK)
        e = dirconn_error_set(c->err, c->resolve_e, "%s", c->resolve_msg);
    if (e == DIRCONN_OK && c->dn_found + c->dn_new > 0)
        log_msg(c->log, LOG_LEVEL_INFO,
                "%ld member or manager DNs read from the directory: %ld found in the object map "
                "(DN recorded), %ld in scope but sent by no connector (left out)",
                c->dn_found + c->dn_new, c->dn_found, c->dn_new);
    tree_free(&seen_dns, cmp_dn);
    tree_free(&changed_ids, cmp_cstr);
    free(later);
    id_list_free(&more);
    if (e == DIRCONN_OK && tr.present_phase) {
        /* RFC 4533 present phase: what was neither present nor changed is gone. */
        struct id_list changed = {0};
        for (size_t i = 0; i < lists[0].n && e == DIRCONN_OK; i++)
            if (lists[0].v[i].id != NULL &&
                !id_list_add(&changed, lists[0].v[i].id, NULL, -1, NULL, false))
                e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        qsort(changed.v, changed.n, sizeof(*changed.v), cmp_rec);
        qsort(lists[1].v, lists[1].n, sizeof(*lists[1].v), cmp_rec);
        struct present_walk w = {c, &lists[1], &changed, {0}};
        if (e == DIRCONN_OK)
            e = state_object_foreach(c->st, -1, present_one, &w, c->err);
        for (size_t i = 0; i < w.gone.n && e == DIRCONN_OK; i++)
            e = gone(c, w.gone.v[i].id, NULL);
        id_list_free(&w.gone);
        id_list_free(&changed);
    }
    if (e == DIRCONN_OK)
        e = state_commit(c->st, c->err);
    else
        state_rollback(c->st);
    return e;
}

/* Matched objects whose DN changed (moved or renamed within the scope) get their new DN. */
static int collect_moved(void *arg, const struct plan_item *it)
{
    struct id_list *l = arg;
    return !id_list_add(l, it->external_id, it->dn, it->kind, NULL, false);
}

static enum dirconn_err record_moves(struct sync_ctx *c)
{
    struct id_list matched = {0};
    enum dirconn_err e = plan_foreach(c->plan, PLAN_MATCH, -1, collect_moved, &matched, c->err);
    for (size_t i = 0; e == DIRCONN_OK && i < matched.n; i++) {
        struct state_object so = {0};
        bool found = false;
        e = state_object_get(c->st, matched.v[i].id, &so, &found, c->err);
        if (e == DIRCONN_OK && found && matched.v[i].dn != NULL &&
            strcmp(so.dn, matched.v[i].dn) != 0) {
            free(so.dn);
            so.dn = strdup(matched.v[i].dn);
            e = so.dn != NULL ? state_object_put(c->st, &so, c->err)
                              : dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        }
        state_object_clear(&so);
    }
    id_list_free(&matched);
    return e;
}

/*
 * After the cloud acknowledged the run (or each failure was recorded): the
 * failures become retries, the retries this run took up are forgotten, and
 * the watermark moves, all in one transaction. Nothing here runs when the
 * run stopped on an error, so a crash or an outage never skips a change.
 */
static enum dirconn_err save_progress(struct sync_ctx *c, bool full, const struct id_list *retried,
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
    if (e == DIRCONN_OK)
        e = plan_save_raw(c->plan, c->err);
    if (e == DIRCONN_OK)
        e = record_moves(c);
    if (e == DIRCONN_OK && wm != NULL && wm->method != NULL)
        e = state_watermark_put(c->st, wm, c->err);
    if (e == DIRCONN_OK)
        e = state_commit(c->st, c->err);
    else
        state_rollback(c->st);
    c->err = saved;
    return e;
}

/* ---- the run ---------------------------------------------------------------------- */

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
    enum dirconn_err e = plan_foreach(c->plan, PLAN_MATCH, -1, drift_item, &w, c->err);
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
 * The externalIds this directory gives (mapping id(): objectGUID or
 * entryUUID, both GUID strings): a cloud object that carries one was
 * created by a connector of this group, whichever instance was active, and
 * is managed by the active one (plan_adopt_cloud).
 */
static bool is_ours(void *arg, enum object_kind kind, const char *external_id)
{
    (void)arg;
    (void)kind;
    unsigned char guid[16];
    return ldap_guid_from_string(external_id, guid);
}

/* The object map gets what the cloud holds of this group and the state does not know. */
static enum dirconn_err adopt_cloud(struct sync_ctx *c)
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

static enum dirconn_err read_one_by_one(struct sync_ctx *c, enum object_kind kind, size_t max)
{
    char **ids = NULL;
    size_t n = 0;
    enum dirconn_err e = plan_projection_ids(c->plan, kind, max, &ids, &n, c->err);
    enum dirconn_err cb = DIRCONN_OK;
    size_t i = 0;
    for (; i < n && e == DIRCONN_OK; i++) {
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
    if (i > 0) {
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

static enum dirconn_err fill_projections(struct sync_ctx *c)
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
        double t0 = now_s();
        bool one_by_one = needed <= bound;
        if (one_by_one) {
            e = read_one_by_one(c, (enum object_kind)k, (size_t)needed);
        } else {
            struct inventory_ctx ic = {c, (enum object_kind)k, DIRCONN_OK, true, true};
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
                    one_by_one ? "one by one" : "with a whole list", now_s() - t0);
    }
    return e;
}

/* The comparisons of a full run with the cloud, in one transaction (the plan's rows). */
static enum dirconn_err compare_with_cloud(struct sync_ctx *c)
{
    enum dirconn_err e = state_begin(c->st, c->err);
    if (e != DIRCONN_OK)
        return e;
    e = fill_projections(c);
    if (e == DIRCONN_OK)
        e = detect_drift(c);
    if (e == DIRCONN_OK)
        e = verify_unacknowledged(c);
    if (e == DIRCONN_OK)
        return state_commit(c->st, c->err);
    state_rollback(c->st);
    return e;
}

static enum dirconn_err open_cloud(struct sync_ctx *c)
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

/*
 * Apply the plan (apply.h) in the run's order: users and contacts, then
 * groups (their members exist by then) and their membership changes, the
 * follow-up pass, then deletions (groups, contacts, users) and the objects
 * only the state still held. The counts go to the result.
 */
static enum dirconn_err apply_plan(struct sync_ctx *c)
{
    struct scim_port port = scim_client_port(c->scim);
    struct apply_params ap = {
        .port = &port,
        .st = c->st,
        .plan = c->plan,
        .caps = c->caps,
        .delete_cascades = c->cfg->cloud_delete_cascades,
        .log = c->log,
        .hooks = {apply_progress, apply_cancelled, apply_lease_lost, apply_failed, c},
    };
    for (int k = 0; k < OBJECT_KINDS; k++)
        ap.scope[k] = c->scope[k];
    sync_set_phase(c, SYNC_PHASE_APPLYING);
    struct apply *a = NULL;
    enum dirconn_err e = apply_new(&ap, &a, c->err);
    if (e != DIRCONN_OK)
        return e;
    c->total = c->res->plan.count[PLAN_ADD] + c->res->plan.count[PLAN_UPDATE] +
               c->res->plan.deletes + c->res->plan.count[PLAN_FORGET];
    c->started = now_s();
    e = apply_ops(a, PLAN_ADD, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_ADD, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_ADD, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_UPDATE, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_members(a, c->err);
    double tf = now_s();
    if (e == DIRCONN_OK)
        e = apply_pending(a, c->err);
    log_msg(c->log, LOG_LEVEL_DEBUG, "follow-up pass in %.2f s", now_s() - tf);
    /* groups, then contacts, then users */
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_GROUP, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_CONTACT, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_DELETE, OBJECT_USER, c->err);
    if (e == DIRCONN_OK)
        e = apply_ops(a, PLAN_FORGET, -1, c->err);
    if (e == DIRCONN_OK)
        e = apply_stop_error(a, c->err); /* the follow-up and member passes do not stop */
    const struct apply_counts *n = apply_counts(a);
    c->res->added = n->added;
    c->res->updated = n->updated;
    c->res->deleted = n->deleted;
    c->res->failed = n->failed;
    c->res->drift = n->drift;
    for (int k = 0; k < OBJECT_KINDS; k++) {
        c->res->added_by_kind[k] = n->added_by_kind[k];
        c->res->updated_by_kind[k] = n->updated_by_kind[k];
        c->res->deleted_by_kind[k] = n->deleted_by_kind[k];
        c->res->failed_by_kind[k] = n->failed_by_kind[k];
    }
    apply_free(a);
    return e;
}

/*
 * The apply stopped before its end (the cloud or the proxy lost, the lease
 * lost, a stop request): the cause keeps its code and text, and says how far
 * the run got. What was acknowledged is recorded; the watermark stays.
 */
static enum dirconn_err stopped_midway(struct sync_ctx *c, enum dirconn_err e)
{
    if (e == DIRCONN_ELEASE && c->opts->lease_cause != NULL)
        e = c->opts->lease_cause(c->opts->lease_cause_arg, c->err);
    const struct plan_summary *s = &c->res->plan;
    long planned = s->count[PLAN_ADD] + s->count[PLAN_UPDATE] + s->deletes;
    long applied = c->res->added + c->res->updated + c->res->deleted;
    char cause[DIRCONN_ERROR_LEN];
    snprintf(cause, sizeof(cause), "%s",
             c->err->msg[0] != '\0' ? c->err->msg : dirconn_strerror(e));
    dirconn_error_set(c->err, e,
                      "%s; the sync stopped after %ld of %ld planned changes were applied (%ld "
                      "failed), the rest is left to the next sync",
                      cause, applied, planned, c->res->failed);
    return e;
}

/*
 * An incremental run that cannot go on (its watermark no longer applies, or
 * the change tracking method was refused) becomes a full run: the partial plan,
 * the change lists and the next watermark are dropped and a new plan is opened.
 * Errors: those of plan_new.
 */
static enum dirconn_err restart_as_full(struct sync_ctx *c, struct id_list lists[3],
                                        struct state_watermark *next)
{
    plan_free(c->plan);
    c->plan = NULL;
    c->on_added = NULL;
    id_list_free(&c->touched);
    for (int i = 0; i < 3; i++)
        id_list_free(&lists[i]);
    state_watermark_clear(next);
    memset(next, 0, sizeof(*next));
    sync_set_phase(c, SYNC_PHASE_READING);
    return plan_new(c->st, &c->plan, c->err);
}

enum dirconn_err sync_run(const struct config *cfg, const struct log_sink *log,
                          const struct sync_options *opts, struct sync_result *res,
                          struct dirconn_error *err)
{
    struct sync_result local = {0};
    struct sync_ctx ctx = {
        .cfg = cfg, .log = log, .opts = opts, .res = res ? res : &local, .err = err};
    struct sync_ctx *c = &ctx;
    memset(c->res, 0, sizeof(*c->res));
    double t0 = now_s();
    time_t started = time(NULL);
    const char *type = opts->mode == SYNC_DRY_RUN ? "dry-run" : "full";
    struct select_plan sel = {0};
    char *note = NULL;
    bool history = false;

    sync_set_phase(c, SYNC_PHASE_CONNECTING);
    enum dirconn_err e = state_open(cfg->state_dir, &c->st, err);
    if (e == DIRCONN_OK)
        e = open_cloud(c);
    if (e == DIRCONN_OK)
        e = ldap_source_open(cfg, log, &c->src, err);
    if (e == DIRCONN_OK)
        snprintf(c->res->directory, sizeof(c->res->directory), "%s", ldap_source_url(c->src));
    if (e == DIRCONN_OK)
        e = ldap_source_check_base(c->src, err);
    if (e == DIRCONN_OK)
        e = select_build(cfg, ldap_source_rootdse(c->src)->kind, ldap_source_base_dn(c->src), &sel,
                         err);
    for (int k = 0; k < OBJECT_KINDS && e == DIRCONN_OK; k++)
        e = mapping_compile(cfg, (enum object_kind)k, &c->maps[k], err);
    if (e == DIRCONN_OK)
        e = discover(c);
    c->res->cloud_reached = c->prov != NULL;
    unsigned kinds = 0;
    if (cfg->users.enabled)
        kinds |= 1u << OBJECT_USER;
    if (cfg->groups.enabled)
        kinds |= 1u << OBJECT_GROUP;
    if (cfg->contacts.enabled && c->caps.contacts)
        kinds |= 1u << OBJECT_CONTACT;
    c->kinds = kinds;
    c->sel = &sel;
    if (e == DIRCONN_OK && cfg->contacts.enabled && !c->caps.contacts) {
        c->res->contacts_unsupported = true;
        log_msg(log, LOG_LEVEL_WARN,
                "the cloud offers no Contact resource type: contacts are not synchronised");
    }

    /* Change tracking: which method, and whether the watermark still applies. */
    const char *partition = e == DIRCONN_OK ? ldap_source_base_dn(c->src) : NULL;
    enum change_tracking method = CHANGE_TRACKING_AUTO;
    bool tracking = false, incremental = false;
    struct state_watermark wm = {0}, next = {0};
    struct id_list lists[3] = {{0}, {0}, {0}};
    char hash[65] = "";
    if (e == DIRCONN_OK && opts->mode != SYNC_DRY_RUN) {
        struct dirconn_error terr;
        tracking = tracking_method(cfg, c->src, &method, &terr) == DIRCONN_OK;
        if (!tracking)
            snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", terr.msg);
        scope_hash(cfg, &sel, kinds, partition, hash);
    }
    if (e == DIRCONN_OK && tracking && opts->mode == SYNC_INCREMENTAL) {
        bool found = false;
        e = state_watermark_get(c->st, partition, &wm, &found, err);
        if (e == DIRCONN_OK) {
            const char *why =
                !found ? "there is no watermark yet (no full sync since the state was created)"
                : wm.scope_hash == NULL || strcmp(wm.scope_hash, hash) != 0
                    ? "the scope or the mapping changed since the last full sync"
                : wm.method == NULL || strcmp(wm.method, change_tracking_name(method)) != 0
                    ? "the change tracking method changed"
                    : NULL;
            if (why != NULL)
                snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", why);
            else
                incremental = true;
        }
    }
    if (e == DIRCONN_OK)
        e = plan_new(c->st, &c->plan, err);
    history = e == DIRCONN_OK;
    if (e == DIRCONN_OK)
        note = override_note(c);
    double tp = now_s();
    long read = 0;
    if (e == DIRCONN_OK)
        sync_set_phase(c, SYNC_PHASE_READING);
    if (e == DIRCONN_OK && incremental && opts->rebuild_map)
        e = rebuild_map(c);
    if (e == DIRCONN_OK && incremental) {
        e = plan_changes(c, method, partition, &wm, &next, lists, &read);
        if (e == DIRCONN_EWATERMARK) {
            /* The watermark no longer applies (another DC, a restored DC, a refused cookie). */
            snprintf(c->res->fallback, sizeof(c->res->fallback), "%s", err->msg);
            e = state_watermark_delete_all(c->st, err);
            incremental = false;
            if (e == DIRCONN_OK)
                e = restart_as_full(c, lists, &next);
        } else if (e == DIRCONN_ELDAP_UNSUPPORTED && method == CHANGE_TRACKING_DIRSYNC &&
                   cfg->change_tracking == CHANGE_TRACKING_AUTO) {
            /* DirSync refused even with object security: uSNChanged polling, from a full sync. */
            snprintf(c->res->fallback, sizeof(c->res->fallback),
                     "%s; falling back to uSNChanged polling", err->msg);
            incremental = false;
            method = CHANGE_TRACKING_USN;
            e = restart_as_full(c, lists, &next);
        }
    }
    if (e == DIRCONN_OK && opts->mode == SYNC_INCREMENTAL && !incremental) {
        log_msg(log, LOG_LEVEL_INFO, "incremental sync not possible: %s; running a full sync",
                c->res->fallback);
        FILE *out = opts->out != NULL ? opts->out : stdout;
        fprintf(out, "Running a full sync: %s\n", c->res->fallback);
    }
    c->res->incremental = incremental;
    type = opts->mode == SYNC_DRY_RUN ? "dry-run" : incremental ? "incremental" : "full";
    if (e == DIRCONN_OK && tracking && !incremental) {
        /* Take the watermark before reading: changes made during the read are read again next time.
         */
        struct dirconn_error terr;
        enum dirconn_err te = tracking_read(c->src, log, method, partition, NULL, NULL, NULL, NULL,
                                            &next, NULL, &terr);
        if (te == DIRCONN_ELDAP_UNSUPPORTED && method == CHANGE_TRACKING_DIRSYNC &&
            cfg->change_tracking == CHANGE_TRACKING_AUTO) {
            log_msg(log, LOG_LEVEL_WARN, "%s; falling back to uSNChanged polling", terr.msg);
            state_watermark_clear(&next);
            memset(&next, 0, sizeof(next));
            method = CHANGE_TRACKING_USN;
            te = tracking_read(c->src, log, method, partition, NULL, NULL, NULL, NULL, &next, NULL,
                               &terr);
        }
        if (te != DIRCONN_OK) {
            log_msg(log, LOG_LEVEL_WARN,
                    "no change tracking watermark: %s; the next incremental sync runs in full",
                    terr.msg);
            state_watermark_clear(&next);
            memset(&next, 0, sizeof(next));
        }
    }
    c->drift_check = !incremental;
    if (e == DIRCONN_OK) {
        raw_fingerprint(c, partition, c->raw_fp);
        c->raw_skip = !incremental;
    }
    c->no_versions = e == DIRCONN_OK && c->drift_check && !state_object_has_version(c->st);
    if (e == DIRCONN_OK)
        e = incremental ? load_targeted_inventory(c) : load_inventory(c, kinds);
    if (e == DIRCONN_OK && incremental) {
        e = state_begin(c->st, err);
        if (e == DIRCONN_OK) {
            e = adopt_cloud(c);
            if (e == DIRCONN_OK)
                e = state_commit(c->st, err);
            else
                state_rollback(c->st);
        }
    }
    if (e == DIRCONN_OK && !incremental) {
        e = state_begin(c->st, err);
        if (e == DIRCONN_OK) {
            e = read_directory(c, &sel, kinds, &read);
            if (e == DIRCONN_OK)
                e = adopt_cloud(c);
            if (e == DIRCONN_OK)
                e = state_commit(c->st, err);
            else
                state_rollback(c->st);
        }
    }
    if (e == DIRCONN_OK)
        sync_set_phase(c, SYNC_PHASE_PLANNING);
    if (e == DIRCONN_OK)
        log_msg(log, LOG_LEVEL_DEBUG, "%ld directory objects read and mapped in %.2f s", read,
                now_s() - tp);
    tp = now_s();
    if (e == DIRCONN_OK)
        e = plan_compute(c->plan, kinds, err);
    if (e == DIRCONN_OK && c->resolve_e != DIRCONN_OK)
        e = dirconn_error_set(err, c->resolve_e, "%s", c->resolve_msg);
    if (e == DIRCONN_OK && c->drift_check)
        e = compare_with_cloud(c);
    if (e == DIRCONN_OK && incremental)
        e = compare_unacknowledged(c);
    if (e == DIRCONN_OK)
        log_msg(log, LOG_LEVEL_DEBUG, "plan computed in %.2f s", now_s() - tp);
    if (e == DIRCONN_OK) {
        const struct plan_summary *s = plan_get_summary(c->plan);
        log_msg(log, LOG_LEVEL_INFO,
                "%ld directory objects skipped by raw hash (not mapped), %ld of them matched "
                "without building their record",
                c->raw_skipped,
                s->raw_same[OBJECT_USER] + s->raw_same[OBJECT_GROUP] + s->raw_same[OBJECT_CONTACT]);
    }
    if (e == DIRCONN_OK) {
        const struct plan_summary *s = plan_get_summary(c->plan);
        c->res->plan = *s;
        c->res->threshold_exceeded =
            cfg->delete_threshold_enabled && s->deletes > cfg->delete_threshold;
        c->res->override_used =
            c->res->threshold_exceeded && opts->override_threshold && opts->mode != SYNC_DRY_RUN;
        log_msg(log, LOG_LEVEL_INFO,
                "%s: %ld directory objects read; plan: %ld add, %ld update, %ld match, %ld delete",
                type, read, s->count[PLAN_ADD], s->count[PLAN_UPDATE], s->count[PLAN_MATCH],
                s->deletes);
        if (incremental)
            fprintf(opts->out != NULL ? opts->out : stdout,
                    "Incremental | %ld changes since the last synchronization (%s)\n",
                    c->res->changes, change_tracking_name(method));
        print_summary(c, c->res->threshold_exceeded, note);
        if (opts->on_problem != NULL) {
            /* The skipped objects and naming conflicts, for the report mail. */
            struct dirconn_error perr;
            plan_foreach(c->plan, PLAN_SKIP, -1, report_problem, c, &perr);
            plan_foreach(c->plan, PLAN_CONFLICT, -1, report_problem, c, &perr);
        }
        if (opts->report_path != NULL)
            e = plan_write_report(c->plan, opts->report_path, c->res->threshold_exceeded, err);
        if (e == DIRCONN_OK && opts->report_csv_path != NULL)
            e = plan_write_report(c->plan, opts->report_csv_path, c->res->threshold_exceeded, err);
    }
    if (e == DIRCONN_OK && opts->mode != SYNC_DRY_RUN) {
        if (c->res->threshold_exceeded && !c->res->override_used) {
            const char *cmd = opts->override_command;
            if (cmd == NULL)
                cmd = opts->mode == SYNC_INCREMENTAL
                          ? "dirconnctl sync --incremental --override-threshold"
                          : "dirconnctl sync --full --override-threshold";
            e = dirconn_error_set(err, DIRCONN_ETHRESHOLD,
                                  "Delete threshold (%d objects) exceeded: %ld objects would be "
                                  "deleted; nothing was changed. Check the dry-run report, then "
                                  "run '%s' to let this sync through once",
                                  cfg->delete_threshold, c->res->plan.deletes, cmd);
        } else {
            e = apply_plan(c);
            progress(c, "Applied", true);
            if ((e == DIRCONN_OK || e == DIRCONN_EFAIL) && c->lease_lost)
                e = stopped(c, "");
            if (e == DIRCONN_OK && c->res->failed > 0)
                e = dirconn_error_set(err, DIRCONN_EFAIL,
                                      "%ld objects failed (reported above); the others were "
                                      "synchronised",
                                      c->res->failed);
            FILE *out = opts->out != NULL ? opts->out : stdout;
            fprintf(out, "Result | %ld added | %ld updated | %ld deleted | %ld failed\n",
                    c->res->added, c->res->updated, c->res->deleted, c->res->failed);
            c->result_printed = true;
            if (e != DIRCONN_OK && e != DIRCONN_EFAIL)
                e = stopped_midway(c, e);
            /* Every change was acknowledged or recorded as a failure to retry: move on. */
            if (e == DIRCONN_OK || e == DIRCONN_EFAIL) {
                struct dirconn_error serr;
                sync_set_phase(c, SYNC_PHASE_SAVING);
                if (next.method != NULL)
                    next.scope_hash = strdup(hash);
                enum dirconn_err se = save_progress(
                    c, !incremental, &lists[2],
                    next.method != NULL && next.scope_hash != NULL ? &next : NULL, &serr);
                if (se != DIRCONN_OK) {
                    *err = serr; /* message and cause */
                    e = se;
                } else
                    c->res->watermark_saved = next.method != NULL;
            }
        }
    }
    if (e != DIRCONN_OK && opts->mode != SYNC_DRY_RUN && !c->result_printed) {
        /* Stopped before anything was applied: say so in the usual two lines. */
        FILE *out = opts->out != NULL ? opts->out : stdout;
        if (!c->summary_printed)
            fprintf(out,
                    "Summary | not computed: the run stopped while %s (%ld directory objects "
                    "read)\n",
                    sync_phase_name(c->phase), read);
        fprintf(out, "Result | 0 added | 0 updated | 0 deleted | 0 failed\n");
    }
    /* a run that ended (success, failed objects, the threshold) is done; any other is stopped */
    bool ended = e == DIRCONN_OK || e == DIRCONN_EFAIL || e == DIRCONN_ETHRESHOLD;
    sync_set_phase(c, ended && sync_phase_allowed(c->phase, SYNC_PHASE_DONE) ? SYNC_PHASE_DONE
                                                                             : SYNC_PHASE_STOPPED);
    if (history) {
        const char *status = e == DIRCONN_OK           ? "success"
                             : e == DIRCONN_ETHRESHOLD ? "threshold"
                                                       : "failed";
        record_history(c, type, status, started, e == DIRCONN_OK ? NULL : err->msg);
        if (e == DIRCONN_OK || e == DIRCONN_EFAIL || e == DIRCONN_ETHRESHOLD)
            post_report(c, type, started, e == DIRCONN_OK ? NULL : err->msg);
    }
    c->res->seconds = now_s() - t0;
    char *route = c->scim_base != NULL ? proxy_route_used(c->proxy, c->scim_base) : NULL;
    snprintf(c->res->proxy_route, sizeof(c->res->proxy_route), "%s", route != NULL ? route : "");
    free(route);
    state_watermark_clear(&wm);
    state_watermark_clear(&next);
    for (int i = 0; i < 3; i++)
        id_list_free(&lists[i]);
    id_list_free(&c->touched);
    id_list_free(&c->failures);
    dn_memo_free(c);
    free(note);
    plan_free(c->plan);
    provider_free(c->prov);
    for (int k = 0; k < OBJECT_KINDS; k++)
        free(c->scope_paths[k]);
    for (size_t i = 0; i < c->n_unsent; i++)
        free(c->unsent[i]);
    free(c->unsent);
    select_plan_free(&sel);
    for (int k = 0; k < OBJECT_KINDS; k++)
        mapping_free(c->maps[k]);
    scim_client_free(c->scim);
    cloud_auth_free(c->auth);
    proxy_free(c->proxy);
    free(c->scim_base);
    ldap_source_close(c->src);
    state_close(c->st);
    return e;
}
