/* plan.c - the sync plan, computed in temporary tables of the state database. */
#include "connector/plan.h"
#include "connector/core/digest.h"

#include "connector/ldap_entry.h"
#include "connector/mapping.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct plan {
    struct state *st;
    sqlite3 *db;
    sqlite3_stmt *ins_cloud, *ins_dir, *ins_warning, *ins_item;
    sqlite3_stmt *dir_by_dn, *cloud_by_id, *cloud_by_ext, *cloud_by_name;
    sqlite3_stmt *ins_gone;
    sqlite3_stmt *set_projection, *ins_same, *get_projection; /* prepared on first use */
    sqlite3_stmt *ins_raw;
    sqlite3_stmt *member_dns;
    bool partial; /* incremental: only the objects given are planned; deletions are explicit */
    char *(*resolve)(void *arg, const char *dn); /* partial: a DN that misses (plan_set_resolver) */
    void *resolve_arg;
    EVP_MD *sha256; /* fetched once: EVP_sha256() makes each digest look the algorithm up again */
    struct plan_summary summary;
    /* Partial plans: the member and manager DNs that plan_resolve_links resolved through the
     * state, so that the plan does not look them up a second time (link_memo). */
    void *memo;         /* tsearch tree of struct link_memo, by DN */
    size_t memo_n;      /* entries in memo, at most LINK_MEMO_MAX */
    bool memo_fill;     /* plan_resolve_links is filling it */
    bool memo_resolver; /* the resolver found a DN while it was filled (it wrote the state) */
};

/*
 * A DN that a partial plan resolved through the state (state_plan_resolve_dn): the
 * externalId it found. Kept from plan_resolve_links to the plan's own link resolution,
 * and only while nothing can have changed the answer: a deletion recorded
 * (plan_add_gone) empties it, and so does a resolver that found a DN while it was
 * filled (it records the object's new DN in the state). plan_dir is asked first in any
 * case.
 * Bounded: at most LINK_MEMO_MAX DNs (about 200 bytes each).
 */
#define LINK_MEMO_MAX 100000

struct link_memo {
    char *id; /* points into dn's allocation, after the DN */
    char dn[];
};

static int link_memo_cmp(const void *a, const void *b)
{
    return strcmp(((const struct link_memo *)a)->dn, ((const struct link_memo *)b)->dn);
}

static void link_memo_clear(struct plan *p)
{
    while (p->memo != NULL) {
        struct link_memo *m = *(struct link_memo **)p->memo;
        tdelete(m, &p->memo, link_memo_cmp);
        free(m);
    }
    p->memo_n = 0;
}

static void link_memo_add(struct plan *p, const char *dn, const char *id)
{
    if (p->memo_n >= LINK_MEMO_MAX)
        return;
    size_t dl = strlen(dn) + 1, il = strlen(id) + 1;
    struct link_memo *m = malloc(sizeof(*m) + dl + il);
    if (m == NULL)
        return; /* not kept: looked up again */
    memcpy(m->dn, dn, dl);
    m->id = m->dn + dl;
    memcpy(m->id, id, il);
    struct link_memo **at = tsearch(m, &p->memo, link_memo_cmp);
    if (at == NULL || *at != m) {
        free(m); /* out of memory, or the DN is there already */
        return;
    }
    p->memo_n++;
}

static const char *link_memo_get(const struct plan *p, const char *dn)
{
    size_t dl = strlen(dn) + 1;
    char buf[sizeof(struct link_memo) + 512];
    if (p->memo == NULL || sizeof(struct link_memo) + dl > sizeof(buf))
        return NULL;
    struct link_memo *key = (struct link_memo *)(void *)buf;
    memcpy(key->dn, dn, dl);
    struct link_memo **at = tfind(key, &p->memo, link_memo_cmp);
    return at != NULL ? (*at)->id : NULL;
}

static const char *const op_names[PLAN_OP_MAX] = {"add",       "update", "match",    "delete",
                                                  "protected", "skip",   "conflict", "forget"};

const char *plan_op_name(enum plan_op op)
{
    return (int)op >= 0 && op < PLAN_OP_MAX ? op_names[op] : "?";
}

static enum dirconn_err db_fail(struct plan *p, struct dirconn_error *err, const char *what)
{
    dirconn_error_set(err, DIRCONN_ESTATE, "%s: plan: %s: %s", state_path(p->st), what,
                      sqlite3_errmsg(p->db));
    return dirconn_error_cause(err, DIRCONN_ORIGIN_SQLITE, sqlite3_extended_errcode(p->db));
}

enum dirconn_err plan_new(struct state *st, struct plan **out, struct dirconn_error *err)
{
    *out = NULL;
    struct plan *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    p->st = st;
    p->db = state_db(st);
    enum dirconn_err se = state_plan_schema(st, err);
    if (se != DIRCONN_OK) {
        free(p);
        return se;
    }
    p->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* NULL: EVP_sha256() is used */
    struct {
        sqlite3_stmt **stmt;
        const char *sql;
    } stmts[] = {
        {&p->ins_cloud, "INSERT INTO plan_cloud VALUES (?1, ?2, lower(?3), ?4, ?5, ?6, ?7, ?3)"},
        {&p->ins_dir,
         "INSERT OR IGNORE INTO plan_dir VALUES (?1, ?2, ?3, lower(?10), ?4, lower(?4),"
         " ?5, ?6, ?7, ?8, ?9, lower(?11), ?12, ?13, ?14)"},
        {&p->ins_raw, "INSERT OR REPLACE INTO plan_raw VALUES (?1, ?2, ?3, ?4)"},
        {&p->ins_warning, "INSERT INTO plan_warnings (dn, message) VALUES (?1, ?2)"},
        {&p->ins_item, "INSERT INTO plan_items (op, kind, external_id, cloud_id, dn, name, record,"
                       " old_record, hash, version, changed, message, origin, moved)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"},
        /* Managers are users; members are users or groups (RFC 7643 4.2), never contacts. */
        {&p->dir_by_dn,
         "SELECT external_id FROM plan_dir WHERE dn_lower = lower(?1) AND status = :dir_ok"
         " AND kind IN (:user, :group)"},
        {&p->cloud_by_id,
         "SELECT id, is_admin, version FROM plan_cloud WHERE kind = ?1 AND id = ?2"},
        {&p->cloud_by_ext,
         "SELECT id, is_admin, version FROM plan_cloud WHERE kind = ?1 AND external_id = ?2"},
        {&p->cloud_by_name, "SELECT id, is_admin, version, external_id FROM plan_cloud"
                            " WHERE kind = ?1 AND name_lower = lower(?2)"},
        {&p->ins_gone, "INSERT OR IGNORE INTO plan_gone VALUES (?1)"},
        /* the DNs of a members column (members_json), one row each */
        {&p->member_dns, "SELECT value FROM json_each(?1)"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        if (sqlite3_prepare_v2(p->db, stmts[i].sql, -1, stmts[i].stmt, NULL) != SQLITE_OK) {
            enum dirconn_err e = db_fail(p, err, "prepare");
            plan_free(p);
            return e;
        }
    }
    *out = p;
    return DIRCONN_OK;
}

static void release(struct plan *p, bool drop)
{
    if (p == NULL)
        return;
    sqlite3_stmt *all[] = {p->ins_cloud,      p->ins_dir,        p->ins_warning,  p->ins_item,
                           p->dir_by_dn,      p->cloud_by_id,    p->cloud_by_ext, p->cloud_by_name,
                           p->ins_gone,       p->set_projection, p->ins_same,     p->ins_raw,
                           p->get_projection, p->member_dns};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    EVP_MD_free(p->sha256);
    link_memo_clear(p);
    if (drop)
        state_plan_drop(p->st);
    free(p);
}

void plan_free(struct plan *p)
{
    release(p, true);
}

void plan_discard(struct plan *p)
{
    release(p, false);
}

static enum dirconn_err step_done(struct plan *p, sqlite3_stmt *s, struct dirconn_error *err,
                                  const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? DIRCONN_OK : db_fail(p, err, what);
}

enum dirconn_err plan_add_cloud(struct plan *p, enum object_kind kind, const char *id,
                                const char *name, const char *external_id, bool is_admin,
                                const char *version, struct dirconn_error *err)
{
    return plan_add_cloud_projected(p, kind, id, name, external_id, is_admin, version, NULL, err);
}

enum dirconn_err plan_add_cloud_projected(struct plan *p, enum object_kind kind, const char *id,
                                          const char *name, const char *external_id, bool is_admin,
                                          const char *version, const char *projection,
                                          struct dirconn_error *err)
{
    sqlite3_stmt *s = p->ins_cloud;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, is_admin);
    sqlite3_bind_text(s, 6, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, projection, -1, SQLITE_STATIC);
    return step_done(p, s, err, "recording the cloud inventory");
}

enum dirconn_err plan_add_dir(struct plan *p, enum object_kind kind, const char *external_id,
                              const char *dn, const char *name, const json_t *resource,
                              const char *manager_dn, char *const *member_dns, size_t n_members,
                              const char *skip_message, struct dirconn_error *err)
{
    size_t split = 0;
    char *text = resource != NULL ? mapping_canonical(resource, &split) : NULL;
    if (resource != NULL && text == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    enum dirconn_err e = plan_add_dir_text(p, kind, external_id, dn, name, text, split, manager_dn,
                                           member_dns, n_members, skip_message, err);
    free(text);
    return e;
}

/*
 * The text of the JSON array of the n DNs (as json_dumps of a compact array
 * of json_string values: a DN that is not UTF-8 is left out), written one
 * value at a time by jansson's encoder into one buffer: no array of n values
 * is built beside the text (a group of 200,000 members held its DNs twice
 * more that way). NULL: out of memory.
 */
static char *members_json(char *const *dns, size_t n)
{
    size_t cap = 3, len = 0;
    for (size_t i = 0; i < n; i++)
        cap += strlen(dns[i]) + 3; /* quotes and comma; escapes grow it below */
    size_t rest = cap - 3;         /* the estimate of the values not written yet */
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    out[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        rest -= strlen(dns[i]) + 3;
        json_t *v = json_string(dns[i]);
        if (v == NULL)
            continue;
        size_t sep = len > 1 ? 1 : 0;
        /* "]" and NUL stay free; the escapes of the values before may have taken the estimate
         * of this one (len <= cap - 2 always holds) */
        size_t room = cap > len + sep + 2 ? cap - len - sep - 2 : 0;
        size_t w = json_dumpb(v, out + len + sep, room, JSON_ENCODE_ANY);
        if (w > room) {
            /* room for this value, the estimate of the rest and an eighth more for their
             * escapes (doubling held a group of 200,000 DNs in 30 MB for 17 MB of text) */
            cap = len + sep + w + 2 + rest + rest / 8 + 64;
            char *grown = realloc(out, cap);
            if (grown == NULL) {
                json_decref(v);
                free(out);
                return NULL;
            }
            out = grown;
            w = json_dumpb(v, out + len + sep, w, JSON_ENCODE_ANY);
        }
        json_decref(v);
        if (w == 0) {
            free(out);
            return NULL;
        }
        if (sep)
            out[len] = ',';
        len += sep + w;
    }
    out[len++] = ']';
    out[len] = '\0';
    return out;
}

static enum dirconn_err add_dir(struct plan *p, enum object_kind kind, const char *external_id,
                                const char *dn, const char *name, const char *res_text,
                                size_t split, const char *manager_dn, char *const *member_dns,
                                size_t n_members, const char *skip_message, const char *raw,
                                bool same, struct dirconn_error *err)
{
    char *members_text = n_members > 0 ? members_json(member_dns, n_members) : NULL;
    if (n_members > 0 && members_text == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    sqlite3_stmt *s = p->ins_dir;
    sqlite3_bind_text(s, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_text(s, 3, dn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, res_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, manager_dn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, members_text, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, skip_message != NULL ? PLAN_DIR_SKIP : PLAN_DIR_OK);
    sqlite3_bind_text(s, 9, skip_message, -1, SQLITE_STATIC);
    /* DNs are compared in one spelling: member values and entry DNs may escape differently. */
    char *key = ldap_dn_canonical(dn);
    sqlite3_bind_text(s, 10, key != NULL ? key : dn, -1, SQLITE_STATIC);
    char *mkey = manager_dn != NULL ? ldap_dn_canonical(manager_dn) : NULL;
    sqlite3_bind_text(s, 11, mkey != NULL ? mkey : manager_dn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 12, (sqlite3_int64)split);
    sqlite3_bind_text(s, 13, skip_message == NULL ? raw : NULL, -1, SQLITE_STATIC);
    if (same)
        sqlite3_bind_int(s, 14, 1);
    else
        sqlite3_bind_null(s, 14);
    enum dirconn_err e = step_done(p, s, err, "recording a directory object");
    free(key);
    free(mkey);
    free(members_text);
    return e;
}

enum dirconn_err plan_add_dir_text(struct plan *p, enum object_kind kind, const char *external_id,
                                   const char *dn, const char *name, const char *res_text,
                                   size_t split, const char *manager_dn, char *const *member_dns,
                                   size_t n_members, const char *skip_message,
                                   struct dirconn_error *err)
{
    return add_dir(p, kind, external_id, dn, name, res_text, split, manager_dn, member_dns,
                   n_members, skip_message, NULL, false, err);
}

enum dirconn_err plan_add_dir_raw(struct plan *p, enum object_kind kind, const char *external_id,
                                  const char *dn, const char *name, const char *res_text,
                                  size_t split, const char *manager_dn, char *const *member_dns,
                                  size_t n_members, const char *skip_message, const char *raw,
                                  struct dirconn_error *err)
{
    return add_dir(p, kind, external_id, dn, name, res_text, split, manager_dn, member_dns,
                   n_members, skip_message, raw, false, err);
}

enum dirconn_err plan_add_dir_same(struct plan *p, enum object_kind kind, const char *external_id,
                                   const char *dn, const char *name, const char *manager_dn,
                                   char *const *member_dns, size_t n_members, const char *raw,
                                   struct dirconn_error *err)
{
    if (raw == NULL)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "plan: %s: no raw hash", dn);
    return add_dir(p, kind, external_id, dn, name, NULL, 0, manager_dn, member_dns, n_members, NULL,
                   raw, true, err);
}

enum dirconn_err plan_add_warning(struct plan *p, const char *dn, const char *message,
                                  struct dirconn_error *err)
{
    sqlite3_bind_text(p->ins_warning, 1, dn, -1, SQLITE_STATIC);
    sqlite3_bind_text(p->ins_warning, 2, message, -1, SQLITE_STATIC);
    enum dirconn_err e = step_done(p, p->ins_warning, err, "recording a warning");
    if (e == DIRCONN_OK)
        p->summary.warnings++;
    return e;
}

/*
 * The externalId of the in-scope directory object with this DN, or NULL
 * (malloc'd). known_key: the DN's key as plan_dir keeps it (lower-case
 * canonical), when the caller has it, or NULL.
 */
static char *dir_external_id(struct plan *p, const char *dn, const char *known_key)
{
    char *key = known_key != NULL ? strdup(known_key) : ldap_dn_canonical(dn);
    sqlite3_bind_text(p->dir_by_dn, 1, key != NULL ? key : dn, -1, SQLITE_STATIC);
    state_plan_bind(p->dir_by_dn);
    char *id = NULL;
    if (sqlite3_step(p->dir_by_dn) == SQLITE_ROW)
        id = strdup((const char *)sqlite3_column_text(p->dir_by_dn, 0));
    sqlite3_reset(p->dir_by_dn);
    sqlite3_clear_bindings(p->dir_by_dn);
    if (id == NULL && p->partial && dn != NULL && !p->memo_fill) {
        const char *known = link_memo_get(p, dn);
        if (known != NULL) {
            free(key);
            return strdup(known);
        }
    }
    /* The state holds DNs as the server spelled them: try that spelling, then the canonical one. */
    for (int pass = 0; id == NULL && p->partial && pass < 2; pass++) {
        const char *try = pass == 0 ? dn : key;
        if (try == NULL || (pass == 1 && strcmp(dn, key) == 0))
            continue;
        /* Partial plans: a manager or member not read in this run is resolved through the state. */
        id = state_plan_resolve_dn(p->st, try);
        if (id != NULL && p->memo_fill && dn != NULL)
            link_memo_add(p, dn, id);
    }
    /* Neither read in this run nor known by this DN: the directory says what it is. */
    if (id == NULL && p->partial && p->resolve != NULL && dn != NULL) {
        id = p->resolve(p->resolve_arg, dn);
        /* found: the resolver recorded the object's new DN in the state */
        p->memo_resolver = p->memo_resolver || (p->memo_fill && id != NULL);
    }
    free(key);
    return id;
}

void plan_set_partial(struct plan *p)
{
    p->partial = true;
}

void plan_set_resolver(struct plan *p, char *(*resolve)(void *arg, const char *dn), void *arg)
{
    p->resolve = resolve;
    p->resolve_arg = arg;
}

enum dirconn_err plan_resolve_links(struct plan *p, struct dirconn_error *err)
{
    if (!p->partial || p->resolve == NULL)
        return DIRCONN_OK;
    /* Each link is looked up by DN in plan_dir: indexed now, not when the plan is computed (a
     * re-read group of 100,000 members would scan plan_dir for each). */
    enum dirconn_err e = state_plan_index(p->st, false, err);
    if (e != DIRCONN_OK)
        return e;
    /* The links first, then the lookups: the resolver may write the state, not plan_dir. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(
            p->db,
            "SELECT manager_dn, manager_lower, members FROM plan_dir WHERE status = :dir_ok"
            " AND (manager_dn IS NOT NULL OR members IS NOT NULL)",
            -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "reading the directory objects' links");
    state_plan_bind(s);
    json_t *dns = json_array();
    if (dns == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    int rc = SQLITE_DONE;
    while (e == DIRCONN_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *manager = (const char *)sqlite3_column_text(s, 0);
        const char *members = (const char *)sqlite3_column_text(s, 2);
        if (manager != NULL)
            json_array_append_new(dns, json_string(manager));
        json_error_t jerr;
        json_t *list = members != NULL ? json_loads(members, 0, &jerr) : NULL;
        json_array_extend(dns, list);
        json_decref(list);
    }
    if (e == DIRCONN_OK && rc != SQLITE_DONE)
        e = db_fail(p, err, "reading the directory objects' links");
    sqlite3_finalize(s);
    size_t i;
    json_t *v;
    link_memo_clear(p);
    p->memo_fill = true;
    p->memo_resolver = false;
    json_array_foreach(dns, i, v)
    {
        if (e != DIRCONN_OK)
            break;
        free(dir_external_id(p, json_string_value(v), NULL));
    }
    p->memo_fill = false;
    if (p->memo_resolver)
        link_memo_clear(p); /* the resolver may have written the state */
    json_decref(dns);
    return e;
}

enum dirconn_err plan_add_gone(struct plan *p, const char *external_id, struct dirconn_error *err)
{
    link_memo_clear(p); /* a DN it holds may name the object gone */
    sqlite3_bind_text(p->ins_gone, 1, external_id, -1, SQLITE_STATIC);
    return step_done(p, p->ins_gone, err, "recording a deletion");
}

struct cloud_row {
    char *id;
    bool is_admin;
    char *version;
    char *external_id;
    bool found;
};

static void cloud_row_clear(struct cloud_row *r)
{
    free(r->id);
    free(r->version);
    free(r->external_id);
    memset(r, 0, sizeof(*r));
}

static char *dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t != NULL ? strdup((const char *)t) : NULL;
}

/* Look up the cloud inventory; at most one row is taken (the first). */
static void cloud_lookup(struct plan *p, sqlite3_stmt *s, int kind, const char *key,
                         struct cloud_row *out)
{
    memset(out, 0, sizeof(*out));
    if (key == NULL)
        return;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        out->found = true;
        out->id = dup_col(s, 0);
        out->is_admin = sqlite3_column_int(s, 1) != 0;
        out->version = dup_col(s, 2);
        if (sqlite3_column_count(s) > 3)
            out->external_id = dup_col(s, 3);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    (void)p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The externalIds of the members whose DNs the members column holds (the
 * JSON text members_json wrote), sorted and without repeats, in *ids (*n of
 * them; free each and the array). The DNs are read by SQLite's json_each,
 * one row at a time: no tree of a big group's DNs is built (200,000 members
 * took about 23 MB as a jansson array). False: out of memory, or the text is
 * not a JSON array (a member list is never taken for empty).
 */
static bool member_external_ids(struct plan *p, const char *members, char ***ids, size_t *n)
{
    sqlite3_stmt *s = p->member_dns;
    char **v = NULL;
    size_t k = 0, cap = 0;
    bool ok = true;
    int rc;
    sqlite3_bind_text(s, 1, members, -1, SQLITE_STATIC);
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *dn = (const char *)sqlite3_column_text(s, 0);
        char *id = dn != NULL ? dir_external_id(p, dn, NULL) : NULL;
        if (id == NULL)
            continue;
        if (k == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            char **grown = realloc(v, cap * sizeof(*v));
            if (grown == NULL) {
                free(id);
                ok = false;
                break;
            }
            v = grown;
        }
        v[k++] = id;
    }
    ok = ok && rc == SQLITE_DONE;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (ok && k > 0) {
        qsort(v, k, sizeof(*v), cmp_str);
        size_t w = 1;
        for (size_t i = 1; i < k; i++) {
            if (strcmp(v[i], v[w - 1]) == 0)
                free(v[i]);
            else
                v[w++] = v[i];
        }
        k = w;
    }
    if (!ok) {
        for (size_t i = 0; i < k; i++)
            free(v[i]);
        free(v);
        v = NULL;
        k = 0;
    }
    *ids = v;
    *n = k;
    return ok;
}

/*
 * The links of the record to plan: the private keys naming the manager and
 * members by externalId (only objects in scope), as the canonical text
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) makes of that object ("{}" for
 * none). It is spliced into the mapped resource at its split
 * (mapping_canonical, record_text): the result is the canonical dump of the
 * merged object, without parsing the resource again. The member array is
 * written one value at a time (members_json) into the place of an empty
 * array in jansson's dump of the object: the members key sorts last. NULL:
 * out of memory, or a members column that is not a JSON array.
 */
static char *record_links(struct plan *p, const char *manager_dn, const char *manager_key,
                          const char *members)
{
    json_t *links = json_object();
    if (links == NULL)
        return NULL;
    if (manager_dn != NULL) {
        char *mid = dir_external_id(p, manager_dn, manager_key);
        if (mid != NULL)
            json_object_set_new(links, PLAN_KEY_MANAGER, json_string(mid));
        free(mid);
    }
    char **ids = NULL;
    size_t n = 0;
    if (members != NULL && (json_object_set_new(links, PLAN_KEY_MEMBERS, json_array()) != 0 ||
                            !member_external_ids(p, members, &ids, &n))) {
        json_decref(links);
        return NULL;
    }
    char *text = json_dumps(links, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(links);
    if (text != NULL && members != NULL) {
        /* "...[]}": the empty array is the dump's end (PLAN_KEY_MEMBERS sorts last) */
        char *arr = members_json(ids, n);
        size_t len = strlen(text);
        char *out = arr != NULL && len >= 3 && strcmp(text + len - 3, "[]}") == 0
                        ? malloc(len - 3 + strlen(arr) + 2)
                        : NULL;
        if (out != NULL) {
            memcpy(out, text, len - 3);
            strcpy(out + len - 3, arr);
            strcat(out + len - 3, "}");
        }
        free(arr);
        free(text);
        text = out;
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return text;
}

/* The record: resource with the links (record_links, as text: "{}" for none) spliced in. */
static char *record_text(const char *resource, size_t split, const char *ltext)
{
    if (strcmp(ltext, "{}") == 0)
        return strdup(resource);
    size_t len = strlen(resource);
    if (split < 1 || split >= len)
        return NULL;
    /* resource[0, split) "," links-inside "," resource[split, len): commas where both sides have
     * members; resource[split] is "," (members on both sides), "}" (none after) or a key */
    size_t lin = strlen(ltext) - 2;
    const char *rest = resource + split;
    bool comma_before = split > 1, comma_after = rest[0] != ',' && rest[0] != '}';
    char *out = malloc(len + lin + 3);
    if (out != NULL) {
        size_t n = split;
        memcpy(out, resource, split);
        if (comma_before)
            out[n++] = ',';
        memcpy(out + n, ltext + 1, lin);
        n += lin;
        if (comma_after)
            out[n++] = ',';
        memcpy(out + n, rest, len - split + 1);
    }
    return out;
}

/*
 * The record of an object whose raw hash held (plan_add_dir_same) but whose
 * links changed: the acknowledged record, which the unchanged entry mapped
 * to, with its private link keys replaced by the links text ltext
 * (record_links); the canonical dump, as mapping_canonical and record_text
 * make it.
 */
static char *record_relinked(const char *acknowledged, const char *ltext)
{
    json_error_t jerr;
    json_t *rec = acknowledged != NULL ? json_loads(acknowledged, 0, &jerr) : NULL;
    json_t *links = rec != NULL ? json_loads(ltext, 0, &jerr) : NULL;
    if (links == NULL) {
        json_decref(rec);
        return NULL;
    }
    json_object_del(rec, PLAN_KEY_MANAGER);
    json_object_del(rec, PLAN_KEY_MEMBERS);
    json_object_update(rec, links);
    json_decref(links);
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(rec);
    return text;
}

/* The top-level attributes (and enterprise extension attributes) that differ. */
static char *changed_attributes(const char *old_text, json_t *now)
{
    json_error_t jerr;
    json_t *old = old_text != NULL ? json_loads(old_text, 0, &jerr) : NULL;
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        json_decref(old);
        return NULL;
    }
    out[0] = '\0';
#define ADD_NAME(n)                                                                                \
    do {                                                                                           \
        size_t l = strlen(n);                                                                      \
        if (len + l + 2 > cap) {                                                                   \
            cap = (cap + l) * 2;                                                                   \
            char *g = realloc(out, cap);                                                           \
            if (g == NULL)                                                                         \
                break;                                                                             \
            out = g;                                                                               \
        }                                                                                          \
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", n);                  \
    } while (0)
    const char *key;
    json_t *val;
    json_object_foreach(now, key, val)
    {
        json_t *was = json_object_get(old, key);
        if (!json_equal(was, val))
            ADD_NAME(key);
    }
    json_object_foreach(old, key, val)
    {
        if (json_object_get(now, key) == NULL)
            ADD_NAME(key);
    }
#undef ADD_NAME
    json_decref(old);
    return out;
}

static enum dirconn_err insert_item(struct plan *p, enum plan_op op, int kind, const char *ext,
                                    const char *cloud_id, const char *dn, const char *name,
                                    const char *record, const char *old_record, const char *hash,
                                    const char *version, const char *changed, const char *message,
                                    int origin, bool moved, struct dirconn_error *err)
{
    sqlite3_stmt *s = p->ins_item;
    sqlite3_bind_int(s, 1, op);
    sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_text(s, 3, ext, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, cloud_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, dn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, record, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, old_record, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, changed, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, message, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 13, origin);
    sqlite3_bind_int(s, 14, moved);
    enum dirconn_err e = step_done(p, s, err, "recording the plan");
    if (e == DIRCONN_OK) {
        p->summary.count[op]++;
        if (op == PLAN_SKIP || op == PLAN_CONFLICT)
            p->summary.skipped_by_kind[kind]++;
        if (op == PLAN_DELETE) {
            p->summary.deleted_by_kind[kind]++;
            p->summary.deletes++;
        }
    }
    return e;
}

/* Classify one directory object in scope. */
static enum dirconn_err plan_one(struct plan *p, sqlite3_stmt *row, struct dirconn_error *err)
{
    const char *ext = (const char *)sqlite3_column_text(row, 0);
    int kind = sqlite3_column_int(row, 1);
    const char *dn = (const char *)sqlite3_column_text(row, 2);
    const char *name = (const char *)sqlite3_column_text(row, 3);
    const char *resource = (const char *)sqlite3_column_text(row, 4);
    const char *manager_dn = (const char *)sqlite3_column_text(row, 5);
    const char *members = (const char *)sqlite3_column_text(row, 6);
    int status = sqlite3_column_int(row, 7);
    const char *message = (const char *)sqlite3_column_text(row, 8);
    size_t split = (size_t)sqlite3_column_int64(row, 9);
    const char *manager_key = (const char *)sqlite3_column_text(row, 10);
    const char *raw = (const char *)sqlite3_column_text(row, 11);
    bool raw_held = sqlite3_column_int(row, 12) != 0; /* plan_add_dir_same */

    if (status != PLAN_DIR_OK)
        return insert_item(p, status == PLAN_DIR_SKIP ? PLAN_SKIP : PLAN_CONFLICT, kind, ext, NULL,
                           dn, name, NULL, NULL, NULL, NULL, NULL, message, 0, false, err);

    /* the acknowledged record is read only where it is needed (a match needs its hash); the
     * links recorded with the raw hash, for an entry whose raw hash held */
    struct state_object so = {0};
    bool known = false, has_record = false;
    char *same_links = NULL;
    enum dirconn_err e =
        state_object_head(p->st, ext, &so, &known, &has_record, raw_held ? &same_links : NULL, err);
    if (e == DIRCONN_OK && raw_held && same_links == NULL)
        e = dirconn_error_set(err, DIRCONN_ESTATE,
                              "plan: %s: the links recorded with its raw hash are gone", dn);
    if (e != DIRCONN_OK) {
        free(same_links);
        state_object_clear(&so);
        return e;
    }
    char *ltext = record_links(p, manager_dn, manager_key, members);
    char *text = NULL;
    char hash[65];
    /*
     * An entry whose raw hash held (sync_read.c sync_read_add_entry): its record is the
     * acknowledged one when its links resolve as they did then; then neither
     * the record nor its hash is computed. Else the acknowledged record is
     * relinked (the resource part is what the unchanged entry maps to).
     */
    bool same = same_links != NULL && ltext != NULL && known && so.hash != NULL && has_record &&
                strcmp(ltext, same_links) == 0;
    free(same_links);
    if (same)
        snprintf(hash, sizeof(hash), "%s", so.hash);
    else if (ltext != NULL && raw_held)
        e = state_object_record(p->st, ext, &so.record, err);
    if (e != DIRCONN_OK) {
        free(ltext);
        state_object_clear(&so);
        return e;
    }
    if (!same && ltext != NULL)
        text = raw_held ? record_relinked(so.record, ltext) : record_text(resource, split, ltext);
    if (!same && text == NULL) {
        free(ltext);
        state_object_clear(&so);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "plan: cannot build the record of %s", dn);
    }
    if (!same)
        digest_sha256_hex(p->sha256, text, strlen(text), hash);
    /* same: the state holds this raw hash and these links already (state_object_raw_get) */
    if (raw != NULL && !same) {
        sqlite3_stmt *s = p->ins_raw;
        sqlite3_bind_text(s, 1, ext, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, raw, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, manager_dn, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, ltext, -1, SQLITE_STATIC);
        e = step_done(p, s, err, "recording a raw hash");
    }
    free(ltext);
    if (e != DIRCONN_OK) {
        free(text);
        state_object_clear(&so);
        return e;
    }
    struct cloud_row c = {0};
    enum plan_op op = PLAN_ADD;
    int origin = STATE_ORIGIN_CREATED;
    const char *skip = NULL;
    char why[1024];
    if (known && so.cloud_id != NULL)
        cloud_lookup(p, p->cloud_by_id, kind, so.cloud_id, &c);
    if (c.found) {
        op = so.hash != NULL && strcmp(so.hash, hash) == 0 ? PLAN_MATCH : PLAN_UPDATE;
        origin = so.origin;
    } else {
        cloud_row_clear(&c);
        cloud_lookup(p, p->cloud_by_ext, kind, ext, &c);
        if (c.found) {
            /* Ours from an earlier run whose acknowledgement was not recorded. */
            op = PLAN_UPDATE;
            origin = known ? so.origin : STATE_ORIGIN_CREATED;
        } else if (kind == OBJECT_USER) {
            cloud_row_clear(&c);
            cloud_lookup(p, p->cloud_by_name, kind, name, &c);
            if (c.found && c.external_id != NULL && c.external_id[0] != '\0') {
                snprintf(why, sizeof(why),
                         "The cloud user %s (id %s) already has the externalId %s; %s is not "
                         "sent until one of them changes",
                         name, c.id, c.external_id, dn);
                skip = why;
            } else if (c.found) {
                op = PLAN_UPDATE; /* adopt the cloud user made by hand */
                origin = STATE_ORIGIN_ADOPTED;
            }
        }
    }
    /* Not a match: the acknowledged record is the old one (and, raw-held, the new one too). */
    if (op != PLAN_MATCH && skip == NULL && has_record && so.record == NULL)
        e = state_object_record(p->st, ext, &so.record, err);
    /* Not a match after all (the cloud copy is gone, say): the record is the acknowledged one. */
    if (same && op == PLAN_MATCH)
        p->summary.raw_same[kind]++;
    else if (e == DIRCONN_OK && same && skip == NULL &&
             (so.record == NULL || (text = strdup(so.record)) == NULL))
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && skip != NULL) {
        e = insert_item(p, PLAN_CONFLICT, kind, ext, NULL, dn, name, NULL, NULL, NULL, NULL, NULL,
                        skip, 0, false, err);
    } else if (e == DIRCONN_OK) {
        /* Only updates need the record as a value. */
        json_error_t jerr;
        json_t *rec = op == PLAN_UPDATE ? json_loads(text, 0, &jerr) : NULL;
        char *changed = rec != NULL ? changed_attributes(known ? so.record : NULL, rec) : NULL;
        json_decref(rec);
        /* A match is the acknowledged record itself: the state has it, the plan need not. */
        bool keep = op != PLAN_MATCH;
        /* moved or renamed in the scope: state_plan_save_moves gives the state the new DN */
        bool moved = known && so.dn != NULL && dn != NULL && strcmp(so.dn, dn) != 0;
        e = insert_item(p, op, kind, ext, c.found ? c.id : NULL, dn, name, keep ? text : NULL,
                        keep && known ? so.record : NULL, hash, c.version, changed, NULL, origin,
                        moved, err);
        free(changed);
    }
    cloud_row_clear(&c);
    state_object_clear(&so);
    free(text);
    return e;
}

static enum dirconn_err compute(struct plan *p, unsigned kinds_enabled, struct dirconn_error *err);

enum dirconn_err plan_compute(struct plan *p, unsigned kinds_enabled, struct dirconn_error *err)
{
    /*
     * One transaction (a savepoint works inside the caller's too): in
     * autocommit mode every row written to the temporary tables was its own
     * transaction, with its journal and page writes.
     */
    if (sqlite3_exec(p->db, "SAVEPOINT plan_compute", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(p, err, "starting the plan");
    enum dirconn_err e = compute(p, kinds_enabled, err);
    if (e != DIRCONN_OK)
        sqlite3_exec(p->db, "ROLLBACK TO plan_compute", NULL, NULL, NULL);
    if (sqlite3_exec(p->db, "RELEASE plan_compute", NULL, NULL, NULL) != SQLITE_OK &&
        e == DIRCONN_OK)
        e = db_fail(p, err, "finishing the plan");
    return e;
}

/* A state object that left the scope (state_plan_gone_foreach): delete, protect or forget it. */
struct gone_arg {
    struct plan *p;
    struct dirconn_error *err;
    enum dirconn_err e;
};

static int plan_gone_one(const struct state_object *o, void *arg)
{
    struct gone_arg *g = arg;
    struct cloud_row c;
    cloud_lookup(g->p, g->p->cloud_by_id, o->kind, o->cloud_id, &c);
    enum plan_op op = !c.found ? PLAN_FORGET : c.is_admin ? PLAN_PROTECTED : PLAN_DELETE;
    g->e = insert_item(g->p, op, o->kind, o->external_id, o->cloud_id, o->dn, o->name, NULL,
                       o->record, NULL, c.version, NULL,
                       op == PLAN_PROTECTED ? "a cloud administrator is never deleted" : NULL,
                       (int)o->origin, false, g->err);
    cloud_row_clear(&c);
    return g->e != DIRCONN_OK;
}

/* Whether the plan adds or updates a user (*any; plan_items_op answers it from the index). */
static enum dirconn_err users_written(struct plan *p, bool *any, struct dirconn_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT 1 FROM plan_items WHERE op IN (:add, :update) AND kind = :user"
                           " LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "plan: looking for users to write");
    state_plan_bind(s);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p, err, "plan: looking for users to write");
    *any = rc == SQLITE_ROW;
    return DIRCONN_OK;
}

static enum dirconn_err compute(struct plan *p, unsigned kinds_enabled, struct dirconn_error *err)
{
    memset(p->summary.count, 0, sizeof(p->summary.count));
    memset(p->summary.deleted_by_kind, 0, sizeof(p->summary.deleted_by_kind));
    memset(p->summary.skipped_by_kind, 0, sizeof(p->summary.skipped_by_kind));
    memset(p->summary.raw_same, 0, sizeof(p->summary.raw_same));
    p->summary.deletes = 0;
    /* Naming conflicts: one email on two users or contacts; none of them is sent. */
    static const char conflicts[] =
        "UPDATE plan_dir SET status = :dir_conflict, message = 'Naming conflict: the email ' || "
        "name ||"
        " ' is on more than one directory object (' || (SELECT dns FROM plan_conflicts c"
        " WHERE c.name_lower = plan_dir.name_lower) || '); none of them is sent'"
        " WHERE status = :dir_ok AND kind IN (:user, :contact) AND name_lower IN"
        " (SELECT name_lower FROM plan_conflicts);"
        "DROP TABLE temp.plan_conflicts;";
    /* A partial plan also counts the names of the objects in scope it did not read. */
    enum dirconn_err e = state_plan_index(p->st, false, err);
    if (e == DIRCONN_OK)
        e = state_plan_exec(p->st, "DELETE FROM plan_items", "plan", err);
    if (e == DIRCONN_OK)
        e = state_plan_conflicts(p->st, p->partial, err);
    if (e == DIRCONN_OK)
        e = state_plan_exec(p->st, conflicts, "plan: naming conflicts", err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_stmt *rows = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT external_id, kind, dn, name, resource, manager_dn, members,"
                           " status, message, split, manager_lower, raw, same FROM plan_dir"
                           " ORDER BY kind + 0, external_id", /* plan_dir_walk */
                           -1, &rows, NULL) != SQLITE_OK)
        return db_fail(p, err, "reading the directory objects");
    while (e == DIRCONN_OK && sqlite3_step(rows) == SQLITE_ROW)
        e = plan_one(p, rows, err);
    sqlite3_finalize(rows);
    if (e != DIRCONN_OK)
        return e;

    /* Deletions: objects the connector holds that left the scope. */
    struct gone_arg g = {.p = p, .err = err};
    e = state_plan_gone_foreach(p->st, kinds_enabled, p->partial, plan_gone_one, &g, err);
    if (g.e != DIRCONN_OK)
        e = g.e; /* the walk reports "stopped": insert_item's error says why */
    if (e != DIRCONN_OK)
        return e;

    /*
     * Depth in the management chain: users whose manager is not in scope are
     * 0, their reports 1, and so on (cycles are cut at 32 and go last). Users
     * are applied in this order, so a manager has a cloud id before its reports
     * are written.
     */
    static const char depth_sql[] =
        /* the walk's look-up of a manager's reports; only this walk needs it */
        "CREATE INDEX IF NOT EXISTS temp.plan_dir_manager ON plan_dir(manager_lower);"
        "DROP TABLE IF EXISTS temp.plan_depth;"
        "CREATE TEMP TABLE plan_depth AS WITH RECURSIVE lvl(ext, dn_lower, depth) AS ("
        "  SELECT d.external_id, d.dn_lower, 0 FROM plan_dir d"
        "   WHERE d.kind = :user AND d.status = :dir_ok"
        "   AND (d.manager_lower IS NULL OR NOT EXISTS (SELECT 1 FROM plan_dir m"
        "    WHERE m.dn_lower = d.manager_lower AND m.status = :dir_ok AND m.kind = :user))"
        "  UNION ALL"
        "  SELECT d.external_id, d.dn_lower, lvl.depth + 1 FROM lvl"
        "   JOIN plan_dir d ON d.manager_lower = lvl.dn_lower"
        "   WHERE d.kind = :user AND d.status = :dir_ok AND lvl.depth < 32)"
        " SELECT ext, max(depth) AS depth FROM lvl GROUP BY ext;"
        "CREATE INDEX temp.plan_depth_ext ON plan_depth(ext);"
        "UPDATE plan_items SET depth = coalesce((SELECT depth FROM plan_depth"
        " WHERE plan_depth.ext = plan_items.external_id), 99)"
        " WHERE kind = :user AND op IN (:add, :update, :match);"
        "DROP TABLE temp.plan_depth;";
    e = state_plan_index(p->st, true, err);
    bool writes = true;
    if (e == DIRCONN_OK)
        e = users_written(p, &writes, err);
    /* No user is added or updated: the depths would order only matches, which all have their
     * cloud ids (a match the drift check turns into an update keeps depth 0, as do all of
     * them: none waits for a manager's creation). At 1M users the walk takes seconds. */
    if (e == DIRCONN_OK && writes)
        e = state_plan_exec(p->st, depth_sql, "plan: management depth", err);
    return e;
}

enum dirconn_err plan_save_names(struct plan *p, struct dirconn_error *err)
{
    enum dirconn_err e = state_plan_save_names(p->st, p->partial, err);
    return e == DIRCONN_OK ? state_plan_save_unsent(p->st, p->partial, err) : e;
}

const struct plan_summary *plan_get_summary(const struct plan *p)
{
    return &p->summary;
}

/* An item from a row of ITEM_COLUMNS; its strings are valid until the next step. */
#define ITEM_COLUMNS                                                                               \
    "op, kind, external_id, cloud_id, dn, name, record, old_record, hash, version, changed,"       \
    " message, origin, depth, drift"

static void read_item(sqlite3_stmt *s, struct plan_item *it)
{
    *it = (struct plan_item){
        .op = (enum plan_op)sqlite3_column_int(s, 0),
        .kind = (enum object_kind)sqlite3_column_int(s, 1),
        .external_id = (const char *)sqlite3_column_text(s, 2),
        .cloud_id = (const char *)sqlite3_column_text(s, 3),
        .dn = (const char *)sqlite3_column_text(s, 4),
        .name = (const char *)sqlite3_column_text(s, 5),
        .record = (const char *)sqlite3_column_text(s, 6),
        .old_record = (const char *)sqlite3_column_text(s, 7),
        .hash = (const char *)sqlite3_column_text(s, 8),
        .version = (const char *)sqlite3_column_text(s, 9),
        .changed = (const char *)sqlite3_column_text(s, 10),
        .message = (const char *)sqlite3_column_text(s, 11),
        .origin = (enum state_origin)sqlite3_column_int(s, 12),
        .depth = sqlite3_column_int(s, 13),
        .drift = sqlite3_column_int(s, 14) != 0,
    };
}

/* Items of a chunk of the walk (plan_foreach), their strings copied. */
#define WALK_CHUNK_ITEMS 256
#define WALK_CHUNK_BYTES (4L << 20)

struct walk_item {
    struct plan_item it;
    char *text[11]; /* the copied strings of it */
};

static char *dup_column(sqlite3_stmt *s, int col, long *bytes)
{
    const char *v = (const char *)sqlite3_column_text(s, col);
    if (v == NULL)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, v, n + 1);
        *bytes += (long)n;
    }
    return c;
}

/* A copy of the current row's item; false when out of memory. */
static bool copy_item(sqlite3_stmt *s, struct walk_item *w, long *bytes)
{
    read_item(s, &w->it);
    static const int cols[11] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0};
    bool ok = true;
    for (int i = 0; i < 10; i++) {
        w->text[i] = dup_column(s, cols[i], bytes);
        ok = ok && (w->text[i] != NULL) == (sqlite3_column_type(s, cols[i]) != SQLITE_NULL);
    }
    w->text[10] = NULL;
    w->it.external_id = w->text[0];
    w->it.cloud_id = w->text[1];
    w->it.dn = w->text[2];
    w->it.name = w->text[3];
    w->it.record = w->text[4];
    w->it.old_record = w->text[5];
    w->it.hash = w->text[6];
    w->it.version = w->text[7];
    w->it.changed = w->text[8];
    w->it.message = w->text[9];
    return ok;
}

static void free_items(struct walk_item *v, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 11; k++)
            free(v[i].text[k]);
}

/*
 * The walk reads plan_items in keyset order (depth, seq). A chunked walk
 * (plan_foreach_chunked) is for a fn that commits to the state (apply):
 * while a statement of the connection is stepping, a commit leaves the
 * connection in a read transaction on the state database, and SQLite's
 * checkpoint (the automatic one at commit, wal_autocheckpoint) cannot run on
 * a connection in a transaction, so the -wal file would grow with every
 * commit until the walk ended (7.6 GB at a million users). The chunked walk
 * copies up to WALK_CHUNK_ITEMS items (WALK_CHUNK_BYTES of their strings),
 * resets the statement (which ends its read), and calls fn for each with no
 * statement of the walk active; the next chunk starts after the last item's
 * key (with op and kind given, plan_items' index on op, kind, depth, seq makes
 * that a seek). The plain walk reads the rows in place.
 */
/* walk: every item of op and kind, or (projected) only those whose cloud copy has a projection */
static enum dirconn_err walk_where(struct plan *p, int op, int kind, bool chunked, bool projected,
                                   int (*fn)(void *arg, const struct plan_item *item), void *arg,
                                   struct dirconn_error *err)
{
    char sql[768];
    snprintf(sql, sizeof(sql),
             "SELECT " ITEM_COLUMNS ", seq FROM plan_items WHERE (depth, seq) > (?3, ?4)%s%s%s"
             " ORDER BY depth, seq",
             op >= 0 ? " AND op = ?1" : "", kind >= 0 ? " AND kind = ?2" : "",
             projected ? " AND EXISTS (SELECT 1 FROM plan_cloud c WHERE c.kind = plan_items.kind"
                         " AND c.id = plan_items.cloud_id AND c.projection IS NOT NULL)"
                       : "");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "reading the plan");
    if (op >= 0)
        sqlite3_bind_int(s, 1, op);
    if (kind >= 0)
        sqlite3_bind_int(s, 2, kind);
    sqlite3_bind_int64(s, 3, INT64_MIN);
    sqlite3_bind_int64(s, 4, INT64_MIN);
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    int rc = SQLITE_DONE;
    if (!chunked) {
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct plan_item it;
            read_item(s, &it);
            if (fn(arg, &it) != 0) {
                e = dirconn_error_stopped(err, DIRCONN_EFAIL, "plan walk stopped");
                break;
            }
        }
        if (e == DIRCONN_OK && rc != SQLITE_DONE)
            e = db_fail(p, err, "reading the plan");
        sqlite3_finalize(s);
        return e;
    }
    struct walk_item *chunk = calloc(WALK_CHUNK_ITEMS, sizeof(*chunk));
    if (chunk == NULL) {
        sqlite3_finalize(s);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    for (;;) {
        int n = 0;
        long bytes = 0;
        sqlite3_int64 depth = 0, seq = 0;
        while (n < WALK_CHUNK_ITEMS && bytes < WALK_CHUNK_BYTES &&
               (rc = sqlite3_step(s)) == SQLITE_ROW) {
            bool ok = copy_item(s, &chunk[n], &bytes);
            n++;
            if (!ok) {
                e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
                break;
            }
            depth = sqlite3_column_int64(s, 13);
            seq = sqlite3_column_int64(s, 15);
        }
        bool done = n < WALK_CHUNK_ITEMS && bytes < WALK_CHUNK_BYTES;
        if (done && e == DIRCONN_OK && rc != SQLITE_DONE)
            e = db_fail(p, err, "reading the plan");
        sqlite3_reset(s); /* no read of the walk stays open while fn runs */
        sqlite3_bind_int64(s, 3, depth);
        sqlite3_bind_int64(s, 4, seq);
        for (int i = 0; i < n && e == DIRCONN_OK; i++)
            if (fn(arg, &chunk[i].it) != 0)
                e = dirconn_error_stopped(err, DIRCONN_EFAIL, "plan walk stopped");
        free_items(chunk, n);
        memset(chunk, 0, sizeof(*chunk) * (size_t)n);
        if (e != DIRCONN_OK || done)
            break;
    }
    free(chunk);
    sqlite3_finalize(s);
    return e;
}

static enum dirconn_err walk(struct plan *p, int op, int kind, bool chunked,
                             int (*fn)(void *arg, const struct plan_item *item), void *arg,
                             struct dirconn_error *err)
{
    return walk_where(p, op, kind, chunked, false, fn, arg, err);
}

enum dirconn_err plan_foreach(struct plan *p, int op, int kind,
                              int (*fn)(void *arg, const struct plan_item *item), void *arg,
                              struct dirconn_error *err)
{
    return walk(p, op, kind, false, fn, arg, err);
}

enum dirconn_err plan_foreach_projected(struct plan *p, int op,
                                        int (*fn)(void *arg, const struct plan_item *item),
                                        void *arg, struct dirconn_error *err)
{
    /* a projection is recorded while the cloud rows are read, before the plan's indexes */
    sqlite3_stmt *s = NULL;
    bool any = false;
    if (sqlite3_prepare_v2(p->db, "SELECT 1 FROM plan_cloud WHERE projection IS NOT NULL LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "reading the plan");
    int rc = sqlite3_step(s);
    any = rc == SQLITE_ROW;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(p, err, "reading the plan");
    dirconn_error_clear(err);
    return any ? walk_where(p, op, -1, false, true, fn, arg, err) : DIRCONN_OK;
}

enum dirconn_err plan_foreach_chunked(struct plan *p, int op, int kind,
                                      int (*fn)(void *arg, const struct plan_item *item), void *arg,
                                      struct dirconn_error *err)
{
    return walk(p, op, kind, true, fn, arg, err);
}

enum dirconn_err plan_item_get(struct plan *p, const char *external_id,
                               int (*fn)(void *arg, const struct plan_item *item), void *arg,
                               struct dirconn_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT " ITEM_COLUMNS " FROM plan_items WHERE external_id = ?1"
                           " AND op IN (:add, :update, :match) LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "reading the plan");
    state_plan_bind(s);
    sqlite3_bind_text(s, 1, external_id, -1, SQLITE_STATIC);
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    if (sqlite3_step(s) == SQLITE_ROW) {
        struct plan_item it;
        read_item(s, &it);
        if (fn(arg, &it) != 0)
            e = dirconn_error_stopped(err, DIRCONN_EFAIL, "plan walk stopped");
    }
    sqlite3_finalize(s);
    return e;
}

/* A growing list of strings (plan_pending_ids, plan_projection_ids). */
struct id_vec {
    char **v;
    size_t n, cap;
    bool oom;
};

static int id_vec_push(void *arg, const char *id)
{
    struct id_vec *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **g = realloc(l->v, cap * sizeof(char *));
        if (g == NULL)
            return l->oom = true;
        l->v = g;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(id != NULL ? id : "")) == NULL)
        return l->oom = true;
    l->n++;
    return 0;
}

/* Hand the list over (*ids, *n) on success; free it on error. */
static enum dirconn_err id_vec_take(struct id_vec *l, enum dirconn_err e, char ***ids, size_t *n,
                                    struct dirconn_error *err)
{
    if (l->oom)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e != DIRCONN_OK) {
        for (size_t i = 0; i < l->n; i++)
            free(l->v[i]);
        free(l->v);
        return e;
    }
    *ids = l->v;
    *n = l->n;
    return DIRCONN_OK;
}

enum dirconn_err plan_pending_ids(struct plan *p, char ***ids, size_t *n, struct dirconn_error *err)
{
    *ids = NULL;
    *n = 0;
    struct id_vec l = {0};
    enum dirconn_err e = state_plan_pending_foreach(p->st, id_vec_push, &l, err);
    return id_vec_take(&l, e, ids, n, err);
}

/* The cloud id of the object with this externalId, from the state (malloc'd), or NULL. */
static char *cloud_id_of(struct plan *p, const char *external_id)
{
    int kind = 0;
    bool found = false;
    char *id = NULL;
    if (state_object_cloud_id(p->st, external_id, &kind, &id, &found, NULL) != DIRCONN_OK) {
        free(id);
        return NULL;
    }
    return id;
}

/*
 * The cloud ids of the externalIds in members (a record's PLAN_KEY_MEMBERS)
 * of the kind asked, looked up in the state, into *out (empty on entry);
 * the others counted in *unresolved. false when memory runs out.
 */
static bool member_ids_of(struct plan *p, const json_t *members, int members_of_kind,
                          struct plan_ids *out, long *unresolved)
{
    size_t n = json_array_size(members), len = 0, cap = 0, k = 0;
    size_t *off = malloc((n > 0 ? n : 1) * sizeof(*off));
    bool ok = off != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        int kind = 0;
        char *cloud_id = NULL;
        bool found = false;
        state_object_cloud_id(p->st, json_string_value(json_array_get(members, i)), &kind,
                              &cloud_id, &found, NULL);
        if (found && cloud_id != NULL) {
            if (members_of_kind == PLAN_MEMBERS_ALL || kind == members_of_kind) {
                size_t l = strlen(cloud_id) + 1;
                if (len + l > cap) {
                    size_t c = cap ? cap : 4096;
                    while (len + l > c)
                        c *= 2;
                    char *g = realloc(out->buf, c);
                    ok = g != NULL;
                    if (ok) {
                        out->buf = g;
                        cap = c;
                    }
                }
                if (ok) {
                    memcpy(out->buf + len, cloud_id, l);
                    off[k++] = len;
                    len += l;
                }
            }
        } else if (unresolved != NULL) {
            (*unresolved)++;
        }
        free(cloud_id);
    }
    if (ok && k > 0) {
        char *tight = realloc(out->buf, len); /* a doubling buffer gives back its slack */
        if (tight != NULL)
            out->buf = tight;
        out->v = malloc(k * sizeof(*out->v));
        ok = out->v != NULL;
        for (size_t i = 0; ok && i < k; i++)
            out->v[i] = out->buf + off[i];
        out->n = ok ? k : 0;
    }
    free(off);
    if (!ok)
        plan_ids_free(out);
    return ok;
}

/*
 * plan_resolve, and plan_resolve_ids when ids is not NULL: the members' cloud
 * ids then go to *ids, and "members" is an empty array.
 */
static json_t *resolve(struct plan *p, const struct plan_item *item, int members_of_kind,
                       struct plan_ids *ids, long *unresolved)
{
    json_error_t jerr;
    json_t *rec = item->record != NULL ? json_loads(item->record, 0, &jerr) : NULL;
    if (rec == NULL)
        return NULL;
    const char *mgr = json_string_value(json_object_get(rec, PLAN_KEY_MANAGER));
    if (mgr != NULL) {
        char *id = cloud_id_of(p, mgr);
        if (id != NULL) {
            json_t *ent =
                json_object_get(rec, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
            if (ent == NULL) {
                ent = json_object();
                json_object_set_new(
                    rec, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", ent);
                json_t *schemas = json_object_get(rec, "schemas");
                json_array_append_new(
                    schemas,
                    json_string("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
            }
            json_object_set_new(ent, "manager", json_pack("{s:s}", "value", id));
            free(id);
        } else if (unresolved != NULL) {
            (*unresolved)++;
        }
    }
    json_t *members = json_object_get(rec, PLAN_KEY_MEMBERS);
    if (members_of_kind != PLAN_MEMBERS_NONE && members != NULL) {
        struct plan_ids own = {0}, *v = ids != NULL ? ids : &own;
        json_t *out = json_array();
        if (out == NULL || !member_ids_of(p, members, members_of_kind, v, unresolved)) {
            json_decref(out);
            json_decref(rec);
            return NULL;
        }
        for (size_t i = 0; ids == NULL && i < own.n; i++)
            json_array_append_new(out, json_pack("{s:s}", "value", own.v[i]));
        plan_ids_free(&own);
        json_object_set_new(rec, "members", out);
    }
    json_object_del(rec, PLAN_KEY_MANAGER);
    json_object_del(rec, PLAN_KEY_MEMBERS);
    return rec;
}

json_t *plan_resolve(struct plan *p, const struct plan_item *item, int members_of_kind,
                     long *unresolved)
{
    return resolve(p, item, members_of_kind, NULL, unresolved);
}

json_t *plan_resolve_ids(struct plan *p, const struct plan_item *item, struct plan_ids *members,
                         long *unresolved)
{
    *members = (struct plan_ids){0};
    return resolve(p, item, PLAN_MEMBERS_ALL, members, unresolved);
}

bool plan_member_ids(struct plan *p, const struct plan_item *item, int members_of_kind,
                     struct plan_ids *out, long *unresolved)
{
    *out = (struct plan_ids){0};
    json_error_t jerr;
    json_t *rec = item->record != NULL ? json_loads(item->record, 0, &jerr) : NULL;
    if (rec == NULL)
        return false;
    json_t *members = json_object_get(rec, PLAN_KEY_MEMBERS);
    bool ok = members == NULL || member_ids_of(p, members, members_of_kind, out, unresolved);
    json_decref(rec);
    return ok;
}

void plan_ids_free(struct plan_ids *ids)
{
    if (ids == NULL)
        return;
    free(ids->v);
    free(ids->buf);
    *ids = (struct plan_ids){0};
}

static json_t *member_set(const char *record)
{
    json_error_t jerr;
    json_t *rec = record != NULL ? json_loads(record, 0, &jerr) : NULL;
    json_t *m = json_incref(json_object_get(rec, PLAN_KEY_MEMBERS));
    json_decref(rec);
    return m != NULL ? m : json_array();
}

/*
 * The strings of a JSON array, sorted (the array keeps them). NULL on
 * failure. A record's member list is stored sorted (record_links): checked
 * in one pass, it is then not sorted again, so a diff of two records is O(n).
 */
static const char **sorted_strings(json_t *a, size_t *n)
{
    *n = json_array_size(a);
    const char **v = calloc(*n > 0 ? *n : 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        if (json_is_string(e))
            v[k++] = json_string_value(e);
    }
    *n = k;
    bool sorted = true;
    for (size_t j = 1; j < k && sorted; j++)
        sorted = strcmp(v[j - 1], v[j]) <= 0;
    if (!sorted)
        qsort(v, k, sizeof(*v), cmp_str);
    return v;
}

/* Append the cloud id of the member externalId ext to out (none: the member is not in the cloud).
 */
static void append_cloud_id(struct plan *p, json_t *out, const char *ext)
{
    char *id = cloud_id_of(p, ext);
    if (id != NULL)
        json_array_append_new(out, json_string(id));
    free(id);
}

enum dirconn_err plan_member_changes(struct plan *p, const struct plan_item *item, json_t **add,
                                     json_t **remove, struct dirconn_error *err)
{
    json_t *now = member_set(item->record);
    json_t *was = member_set(item->old_record);
    *add = json_array();
    *remove = json_array();
    size_t nn = 0, nw = 0;
    const char **a = sorted_strings(now, &nn);
    const char **b = sorted_strings(was, &nw);
    enum dirconn_err e = DIRCONN_OK;
    if (*add == NULL || *remove == NULL || a == NULL || b == NULL) {
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    } else {
        /*
         * One merge walk over the two sorted sets: O(n log n) for a group of
         * n members, where a scan of one list per member of the other was
         * O(n^2) (minutes for a 100,000-member group). Only the changed
         * members are looked up in the object map.
         */
        size_t i = 0, j = 0;
        while (i < nn || j < nw) {
            int c = i == nn ? 1 : j == nw ? -1 : strcmp(a[i], b[j]);
            if (c == 0) {
                const char *same = a[i];
                while (i < nn && strcmp(a[i], same) == 0)
                    i++;
                while (j < nw && strcmp(b[j], same) == 0)
                    j++;
            } else if (c < 0) {
                const char *added = a[i];
                append_cloud_id(p, *add, added);
                while (i < nn && strcmp(a[i], added) == 0)
                    i++;
            } else {
                const char *removed = b[j];
                append_cloud_id(p, *remove, removed);
                while (j < nw && strcmp(b[j], removed) == 0)
                    j++;
            }
        }
    }
    free(a);
    free(b);
    json_decref(now);
    json_decref(was);
    if (e != DIRCONN_OK) {
        json_decref(*add);
        json_decref(*remove);
        *add = *remove = NULL;
    }
    return e;
}

/* ---- report ---------------------------------------------------------------- */

static void csv_field(FILE *fp, const char *s, bool last)
{
    /* RFC 4180: quote every field; double the quotes inside. */
    fputc('"', fp);
    for (const char *c = s != NULL ? s : ""; *c != '\0'; c++) {
        if (*c == '"')
            fputc('"', fp);
        fputc(*c, fp);
    }
    fputc('"', fp);
    fputs(last ? "\r\n" : ",", fp);
}

struct report_ctx {
    FILE *fp;
    bool csv;
    json_t *cats;
};

static const char *category_of(const struct plan_item *it)
{
    switch (it->op) {
    case PLAN_ADD:
        return "added";
    case PLAN_UPDATE:
        return "updated";
    case PLAN_MATCH:
        return "matched";
    case PLAN_DELETE:
        return it->kind == OBJECT_USER    ? "usersDeleted"
               : it->kind == OBJECT_GROUP ? "groupsDeleted"
                                          : "contactsDeleted";
    case PLAN_PROTECTED:
        return "adminsNotDeleted";
    case PLAN_SKIP:
        return "skipped";
    case PLAN_CONFLICT:
        return "conflicts";
    case PLAN_FORGET:
        return "alreadyGone";
    case PLAN_OP_MAX:
        break;
    }
    return "other";
}

static int report_item(void *arg, const struct plan_item *it)
{
    struct report_ctx *r = arg;
    const char *cat = category_of(it);
    if (r->csv) {
        csv_field(r->fp, cat, false);
        csv_field(r->fp, object_kind_name(it->kind), false);
        csv_field(r->fp, it->dn, false);
        csv_field(r->fp, it->name, false);
        csv_field(r->fp, it->external_id, false);
        csv_field(r->fp, it->cloud_id, false);
        csv_field(r->fp, it->changed != NULL ? it->changed : it->message, true);
        return 0;
    }
    json_t *list = json_object_get(r->cats, cat);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(r->cats, cat, list);
    }
    json_t *o =
        json_pack("{s:s, s:s?, s:s?, s:s?, s:s?}", "kind", object_kind_name(it->kind), "dn", it->dn,
                  "name", it->name, "externalId", it->external_id, "cloudId", it->cloud_id);
    if (it->changed != NULL)
        json_object_set_new(o, "changed", json_string(it->changed));
    if (it->message != NULL)
        json_object_set_new(o, "message", json_string(it->message));
    json_array_append_new(list, o);
    return 0;
}

enum dirconn_err plan_write_report(struct plan *p, const char *path, bool threshold_exceeded,
                                   struct dirconn_error *err)
{
    size_t len = strlen(path);
    bool csv = len > 4 && strcasecmp(path + len - 4, ".csv") == 0;
    bool js = len > 5 && strcasecmp(path + len - 5, ".json") == 0;
    if (!csv && !js)
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "report %s: the name must end in .json or .csv", path);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    if (fp == NULL)
        return dirconn_error_set(err, DIRCONN_EIO, "report %s: cannot create: %s", path,
                                 strerror(errno));
    struct report_ctx r = {fp, csv, json_object()};
    if (csv)
        fputs("\"category\",\"kind\",\"dn\",\"name\",\"externalId\",\"cloudId\",\"details\"\r\n",
              fp);
    enum dirconn_err e = plan_foreach(p, -1, -1, report_item, &r, err);
    sqlite3_stmt *s = NULL;
    json_t *warnings = json_array();
    if (e == DIRCONN_OK &&
        sqlite3_prepare_v2(p->db, "SELECT dn, message FROM plan_warnings ORDER BY seq", -1, &s,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *dn = (const char *)sqlite3_column_text(s, 0);
            const char *m = (const char *)sqlite3_column_text(s, 1);
            if (csv) {
                csv_field(fp, "warning", false);
                csv_field(fp, "", false);
                csv_field(fp, dn, false);
                csv_field(fp, "", false);
                csv_field(fp, "", false);
                csv_field(fp, "", false);
                csv_field(fp, m, true);
            } else {
                json_array_append_new(warnings, json_pack("{s:s?, s:s?}", "dn", dn, "message", m));
            }
        }
        sqlite3_finalize(s);
    }
    if (e == DIRCONN_OK && !csv) {
        const struct plan_summary *sum = &p->summary;
        json_t *summary = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "adminsDeleted",
            (json_int_t)0, "adminsNotDeleted", (json_int_t)sum->count[PLAN_PROTECTED],
            "usersDeleted", (json_int_t)sum->deleted_by_kind[OBJECT_USER], "groupsDeleted",
            (json_int_t)sum->deleted_by_kind[OBJECT_GROUP], "contactsDeleted",
            (json_int_t)sum->deleted_by_kind[OBJECT_CONTACT], "objectsAdded",
            (json_int_t)sum->count[PLAN_ADD], "objectsUpdated", (json_int_t)sum->count[PLAN_UPDATE],
            "objectsMatched", (json_int_t)sum->count[PLAN_MATCH], "objectsUpdatedForDrift",
            (json_int_t)sum->drift, "skipped",
            (json_int_t)(sum->count[PLAN_SKIP] + sum->count[PLAN_CONFLICT]), "warnings",
            (json_int_t)sum->warnings, "deleteThresholdExceeded", threshold_exceeded);
        json_t *doc = json_pack("{s:o, s:o, s:o}", "summary", summary, "objects", r.cats,
                                "warnings", warnings);
        r.cats = NULL;
        warnings = NULL;
        if (json_dumpf(doc, fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            e = dirconn_error_set(err, DIRCONN_EIO, "report %s: write failed", path);
        json_decref(doc);
    }
    json_decref(r.cats);
    json_decref(warnings);
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        e = e != DIRCONN_OK
                ? e
                : dirconn_error_set(err, DIRCONN_EIO, "report %s: %s", path, strerror(errno));
    fclose(fp);
    if (e == DIRCONN_OK && rename(tmp, path) != 0)
        e = dirconn_error_set(err, DIRCONN_EIO, "report %s: cannot rename into place: %s", path,
                              strerror(errno));
    if (e != DIRCONN_OK)
        unlink(tmp);
    return e;
}

char *plan_cloud_projection(struct plan *p, enum object_kind kind, const char *id)
{
    char *out = NULL;
    if (p->get_projection == NULL &&
        sqlite3_prepare_v2(p->db, "SELECT projection FROM plan_cloud WHERE kind = ?1 AND id = ?2",
                           -1, &p->get_projection, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_stmt *s = p->get_projection;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
        out = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return out;
}

enum dirconn_err plan_mark_drift(struct plan *p, const char *external_id, const char *record,
                                 struct dirconn_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "UPDATE plan_items SET op = ?2, record = ?3, old_record = NULL,"
                           " changed = 'drift', drift = 1 WHERE external_id = ?1 AND op = ?4",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "recording drift");
    sqlite3_bind_text(s, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, PLAN_UPDATE);
    sqlite3_bind_text(s, 3, record, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, PLAN_MATCH);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_fail(p, err, "recording drift");
    if (sqlite3_changes(p->db) > 0) {
        p->summary.count[PLAN_MATCH]--;
        p->summary.count[PLAN_UPDATE]++;
        p->summary.drift++;
    }
    return DIRCONN_OK;
}

/* ---- the object map rebuilt from the cloud inventory ---------------------------------- */

struct adopt_row {
    int kind;
    char *id, *external_id, *name, *dn;
};

static void adopt_rows_free(struct adopt_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].external_id);
        free(v[i].name);
        free(v[i].dn);
    }
    free(v);
}

/* The rows to adopt, one per externalId (state_plan_adoptable_foreach). */
struct adopt_arg {
    bool (*is_ours)(void *arg, enum object_kind kind, const char *external_id);
    void *arg;
    struct adopt_row *v;
    size_t n, cap;
    bool oom;
};

static int adopt_collect(void *arg, const struct state_plan_adoptable *r)
{
    struct adopt_arg *a = arg;
    /* One cloud object per externalId: a second one with the same is left alone. */
    if (a->n > 0 && strcmp(a->v[a->n - 1].external_id, r->external_id) == 0)
        return 0;
    if (!r->in_scope && (a->is_ours == NULL || !a->is_ours(a->arg, r->kind, r->external_id)))
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        struct adopt_row *g = realloc(a->v, cap * sizeof(*g));
        if (g == NULL)
            return a->oom = true;
        a->v = g;
        a->cap = cap;
    }
    struct adopt_row *row = &a->v[a->n++];
    *row = (struct adopt_row){.kind = r->kind,
                              .id = r->cloud_id != NULL ? strdup(r->cloud_id) : NULL,
                              .external_id = strdup(r->external_id),
                              .name = r->name != NULL ? strdup(r->name) : NULL,
                              .dn = r->dn != NULL ? strdup(r->dn) : NULL};
    if (row->id == NULL || row->external_id == NULL)
        return a->oom = true;
    return 0;
}

enum dirconn_err plan_adopt_cloud(struct plan *p, unsigned kinds_enabled,
                                  bool (*is_ours)(void *arg, enum object_kind kind,
                                                  const char *external_id),
                                  void *arg, long *adopted, struct dirconn_error *err)
{
    if (adopted != NULL)
        *adopted = 0;
    struct adopt_arg a = {.is_ours = is_ours, .arg = arg};
    enum dirconn_err e =
        state_plan_adoptable_foreach(p->st, kinds_enabled, p->partial, adopt_collect, &a, err);
    if (e == DIRCONN_EFAIL && a.oom)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct adopt_row *v = a.v;
    size_t n = a.n;
    for (size_t i = 0; i < n && e == DIRCONN_OK; i++) {
        /* No record yet: the plan compares the cloud's copy before writing (see plan.h). */
        struct state_object o = {.external_id = v[i].external_id,
                                 .kind = v[i].kind,
                                 .dn = v[i].dn != NULL ? v[i].dn : "",
                                 .cloud_id = v[i].id,
                                 .name = v[i].name,
                                 .origin = STATE_ORIGIN_CREATED};
        e = state_object_put(p->st, &o, err);
    }
    if (e == DIRCONN_OK && adopted != NULL)
        *adopted = (long)n;
    adopt_rows_free(v, n);
    return e;
}

enum dirconn_err plan_mark_verified(struct plan *p, const char *external_id, bool unchanged,
                                    struct dirconn_error *err)
{
    /* ?2 PLAN_MATCH, ?3 PLAN_UPDATE */
    static const char *const sql[2] = {
        "UPDATE plan_items SET drift = 1 WHERE external_id = ?1 AND op = ?3 AND ?2 >= 0",
        "UPDATE plan_items SET op = ?2, changed = NULL, drift = 0 WHERE external_id = ?1"
        " AND op = ?3"};
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, sql[unchanged], -1, &s, NULL) != SQLITE_OK)
        return db_fail(p, err, "recording a comparison with the cloud");
    sqlite3_bind_text(s, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, PLAN_MATCH);
    sqlite3_bind_int(s, 3, PLAN_UPDATE);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_fail(p, err, "recording a comparison with the cloud");
    if (unchanged && sqlite3_changes(p->db) > 0) {
        p->summary.count[PLAN_UPDATE]--;
        p->summary.count[PLAN_MATCH]++;
    }
    return DIRCONN_OK;
}

enum dirconn_err plan_projection_count(struct plan *p, enum object_kind kind, long *needed,
                                       long *total, struct dirconn_error *err)
{
    *needed = *total = 0;
    long k = state_plan_projection_count(p->st, kind, err);
    if (k < 0)
        return DIRCONN_ESTATE;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT count(*) FROM plan_cloud WHERE kind = ?1", -1, &s,
                           NULL) != SQLITE_OK)
        return db_fail(p, err, "counting the objects to compare");
    sqlite3_bind_int(s, 1, kind);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *total = (long)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return db_fail(p, err, "counting the objects to compare");
    *needed = k;
    return DIRCONN_OK;
}

enum dirconn_err plan_projection_ids(struct plan *p, enum object_kind kind, size_t max, int big,
                                     char ***ids, size_t *n, struct dirconn_error *err)
{
    *ids = NULL;
    *n = 0;
    struct id_vec l = {0};
    enum dirconn_err e = state_plan_projection_foreach(p->st, kind, max, big, id_vec_push, &l, err);
    return id_vec_take(&l, e, ids, n, err);
}

enum dirconn_err plan_set_cloud_projection(struct plan *p, enum object_kind kind, const char *id,
                                           const char *version, const char *projection,
                                           struct dirconn_error *err)
{
    if (p->set_projection == NULL &&
        sqlite3_prepare_v2(p->db,
                           "UPDATE plan_cloud SET projection = ?3, version = coalesce(?4, version)"
                           " WHERE kind = ?1 AND id = ?2",
                           -1, &p->set_projection, NULL) != SQLITE_OK)
        return db_fail(p, err, "recording a cloud copy");
    sqlite3_stmt *s = p->set_projection;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, projection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, version, -1, SQLITE_STATIC);
    return step_done(p, s, err, "recording a cloud copy");
}

enum dirconn_err plan_note_same(struct plan *p, enum object_kind kind, const char *external_id,
                                const char *cloud_id, struct dirconn_error *err)
{
    if (p->ins_same == NULL &&
        sqlite3_prepare_v2(p->db,
                           "INSERT OR REPLACE INTO plan_same SELECT ?3, version FROM plan_cloud"
                           " WHERE kind = ?1 AND id = ?2 AND version IS NOT NULL LIMIT 1",
                           -1, &p->ins_same, NULL) != SQLITE_OK)
        return db_fail(p, err, "recording a comparison with the cloud");
    sqlite3_stmt *s = p->ins_same;
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, cloud_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, external_id, -1, SQLITE_STATIC);
    return step_done(p, s, err, "recording a comparison with the cloud");
}

enum dirconn_err plan_save_verified(struct plan *p, struct dirconn_error *err)
{
    return state_plan_save_verified(p->st, err);
}

enum dirconn_err plan_save_raw(struct plan *p, struct dirconn_error *err)
{
    return state_plan_save_raw(p->st, err);
}
