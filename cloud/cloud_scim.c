/* cloud_scim.c - SCIM 2.0 resources, PATCH, Bulk and discovery (RFC 7643, RFC 7644). */
#include "cloud/cloud_scim.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud/cloud_control.h"
#include "cloud/cloud_filter.h"
#include "cloud/cloud_password.h"
#include "cloud/cloud_patch.h"

#define CT_SCIM  "application/scim+json"
#define MAX_PROJ 32

/* One SCIM request's view of the world: the org and its base URL. */
struct scim {
    struct cloud_ctx *ctx;
    struct cloud_store *st;
    const char *org;
    char base[512];        /* https://host:port/scim/v2/{org} */
    struct cloud_req *req; /* the request (its log line counts the PATCH operations) */
};

/* The outcome of one resource operation (used by single requests and by /Bulk). */
struct op_result {
    int status;
    json_t *res; /* stored representation after the operation (owned), or NULL */
    long long version;
    char id[40];
    bool members_partial; /* res (a Group) holds only the members the operation named */
    bool etag_on_204;     /* a 204 that still says the new version (a Group PATCH) */
    struct cloud_scim_err err;
};

static int fail(struct op_result *r, int status, const char *scim_type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int fail(struct op_result *r, int status, const char *scim_type, const char *fmt, ...)
{
    r->status = status;
    r->err.status = status;
    r->err.scim_type = scim_type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err.detail, sizeof(r->err.detail), fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_err(struct op_result *r, const struct cloud_scim_err *e)
{
    r->status = e->status;
    r->err = *e;
    return -1;
}

static char *ascii_lower(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        return NULL;
    for (char *p = d; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static void etag_of(long long v, char *buf, size_t len)
{
    snprintf(buf, len, "W/\"%lld\"", v);
}

/* Weak comparison of an If-Match / If-None-Match list against version v. */
static bool etag_matches(const char *h, long long v)
{
    char want[32];
    snprintf(want, sizeof(want), "%lld", v);
    const char *p = h;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        size_t adv = n;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        const char *t = p;
        if (n == 1 && *t == '*')
            return true;
        if (n >= 2 && t[0] == 'W' && t[1] == '/')
            t += 2, n -= 2;
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"')
            t++, n -= 2;
        if (n == strlen(want) && strncmp(t, want, n) == 0)
            return true;
        p += adv;
    }
    return false;
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = id; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    }
    return true;
}

/* --- storage ----------------------------------------------------------------------------- */

/* Put members (an array, taken; NULL or empty: nothing) into doc before its "meta" (canonical
 * order). */
static void doc_put_members(json_t *doc, json_t *members)
{
    if (json_array_size(members) == 0) {
        json_decref(members);
        return;
    }
    json_t *meta = json_incref(json_object_get(doc, "meta"));
    json_object_del(doc, "meta");
    json_object_set_new(doc, "members", members);
    if (meta != NULL)
        json_object_set_new(doc, "meta", meta);
}

/* A member as a group's document holds it: {"value", "$ref", "type"} (RFC 7643 4.2). */
static json_t *member_value(const struct scim *s, const char *v, bool is_group)
{
    char ref[700];
    snprintf(ref, sizeof(ref), "%s/%s/%s", s->base, is_group ? "Groups" : "Users", v);
    return json_pack("{s:s, s:s, s:s}", "value", v, "$ref", ref, "type",
                     is_group ? "Group" : "User");
}

/*
 * A group's members, stored apart from its document (table group_members), into doc as the
 * document held them (member_value) in the order they were added. Returns 0, or -1 when the
 * database fails.
 */
static int attach_members(struct scim *s, const char *group_id, json_t *doc)
{
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_MEMBER_LIST);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, group_id, -1, SQLITE_TRANSIENT);
    json_t *members = json_array();
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_array_append_new(members, member_value(s, (const char *)sqlite3_column_text(q, 0),
                                                    sqlite3_column_int(q, 1) == CLOUD_RK_GROUP));
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        json_decref(members);
        return -1;
    }
    doc_put_members(doc, members);
    return 0;
}

/*
 * Load resource id of kind, a Group with its members when members is true (else its document
 * alone); returns 0, 1 when absent (or another kind), -1 on error.
 */
static int res_load_doc(struct scim *s, const char *id, int kind, bool members, json_t **body,
                        long long *version, long long *created)
{
    *body = NULL;
    if (!valid_id(id))
        return 1;
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_RES_GET);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? 1 : -1;
    }
    if (kind >= 0 && sqlite3_column_int(q, 0) != kind) {
        sqlite3_reset(q);
        return 1;
    }
    if (version != NULL)
        *version = sqlite3_column_int64(q, 1);
    if (created != NULL)
        *created = sqlite3_column_int64(q, 2);
    bool group = sqlite3_column_int(q, 0) == CLOUD_RK_GROUP;
    *body = json_loadb((const char *)sqlite3_column_text(q, 4), (size_t)sqlite3_column_bytes(q, 4),
                       0, NULL);
    sqlite3_reset(q);
    if (*body != NULL && group && members && attach_members(s, id, *body) != 0) {
        json_decref(*body);
        *body = NULL;
    }
    return *body != NULL ? 0 : -1;
}

/* Load resource id of kind, whole; returns 0, 1 when absent (or another kind), -1 on error. */
static int res_load(struct scim *s, const char *id, int kind, json_t **body, long long *version,
                    long long *created)
{
    return res_load_doc(s, id, kind, true, body, version, created);
}

/* Kind of resource id, or -1 if absent. */
static int res_kind(struct scim *s, const char *id)
{
    if (!valid_id(id))
        return -1;
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_RES_GET);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_TRANSIENT);
    int kind = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    sqlite3_reset(q);
    return kind;
}

static void member_rows(struct scim *s, const char *group_id, const json_t *members,
                        const json_t *skip, enum cloud_stmt which, bool *ok)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *v = json_string_value(json_object_get(m, "value"));
        if (v == NULL || (skip != NULL && json_object_get(skip, v) != NULL))
            continue;
        sqlite3_stmt *q = cloud_store_stmt(s->st, which);
        sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, group_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, v, -1, SQLITE_STATIC);
        if (which == CLOUD_STMT_MEMBER_INSERT) {
            const char *type = json_string_value(json_object_get(m, "type"));
            sqlite3_bind_int(
                q, 4, type != NULL && strcmp(type, "Group") == 0 ? CLOUD_RK_GROUP : CLOUD_RK_USER);
        }
        if (cloud_store_exec(s->st, q) != SQLITE_DONE)
            *ok = false;
    }
}

/* Member values of a group document with their stored type: {"id": "User", ...}. */
static json_t *member_set(const json_t *doc)
{
    json_t *set = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "members"), i, m)
    {
        const char *v = json_string_value(json_object_get(m, "value"));
        json_t *type = json_object_get(m, "type");
        if (v != NULL)
            json_object_set_new(set, v, json_is_string(type) ? json_copy(type) : json_true());
    }
    return set;
}

/*
 * Write doc (canonical) as resource id: sets id and meta, inserts or updates
 * the row and, for groups, the member index (old_doc: the previous version).
 */
static int res_save(struct scim *s, const struct cloud_rtype_def *rt, const char *id, json_t *doc,
                    bool is_new, long long version, long long created_ms, const json_t *old_doc,
                    struct op_result *r)
{
    long long now = cloud_now_ms();
    char created[40], modified[40], etag[40], loc[700];
    cloud_format_time(created_ms, created, sizeof(created));
    cloud_format_time(now, modified, sizeof(modified));
    etag_of(version, etag, sizeof(etag));
    snprintf(loc, sizeof(loc), "%s%s/%s", s->base, rt->endpoint, id);
    /* canonical member order: schemas, id, externalId, attributes, meta */
    json_t *ordered = json_object();
    json_object_set(ordered, "schemas", json_object_get(doc, "schemas"));
    json_object_set_new(ordered, "id", json_string(id));
    if (json_object_get(doc, "externalId") != NULL)
        json_object_set(ordered, "externalId", json_object_get(doc, "externalId"));
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "schemas") != 0 && strcmp(k, "id") != 0 && strcmp(k, "externalId") != 0 &&
            strcmp(k, "meta") != 0)
            json_object_set(ordered, k, v);
    }
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s}", "resourceType", rt->name, "created", created,
                             "lastModified", modified, "location", loc);
    if (!s->ctx->cfg.no_etag)
        json_object_set_new(meta, "version", json_string(etag));
    json_object_set_new(ordered, "meta", meta);
    json_object_clear(doc);
    json_object_update(doc, ordered);
    json_decref(ordered);
    char *uname = ascii_lower(json_string_value(json_object_get(doc, "userName")));
    char *dname = ascii_lower(json_string_value(json_object_get(doc, "displayName")));
    const char *ext = json_string_value(json_object_get(doc, "externalId"));
    /* a group's members are rows of their own (group_members), not part of the stored body */
    json_t *members = json_incref(json_object_get(doc, "members"));
    json_object_del(doc, "members");
    char *text = json_dumps(doc, JSON_COMPACT);
    doc_put_members(doc, members);
    sqlite3_stmt *q;
    if (is_new) {
        q = cloud_store_stmt(s->st, CLOUD_STMT_RES_INSERT);
        sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, rt->kind);
        sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
        if (rt->kind == CLOUD_RK_USER)
            sqlite3_bind_text(q, 4, uname, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, ext, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 6, dname, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 7, now);
        sqlite3_bind_text(q, 8, text, -1, SQLITE_STATIC);
    } else {
        q = cloud_store_stmt(s->st, CLOUD_STMT_RES_UPDATE);
        sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
        if (rt->kind == CLOUD_RK_USER)
            sqlite3_bind_text(q, 3, uname, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, ext, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, dname, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 6, now);
        sqlite3_bind_text(q, 7, text, -1, SQLITE_STATIC);
    }
    int rc = cloud_store_exec(s->st, q);
    free(text);
    free(uname);
    free(dname);
    if (rc == SQLITE_CONSTRAINT)
        return fail(r, 409, "uniqueness", "userName is already in use");
    if (rc != SQLITE_DONE)
        return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    if (json_object_get(doc, "emails") != NULL || !is_new) {
        /* the emails.value index (filters "emails eq", "emails.value eq") */
        bool ok = true;
        if (!is_new) {
            q = cloud_store_stmt(s->st, CLOUD_STMT_EMAIL_DELETE);
            sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
            ok = cloud_store_exec(s->st, q) == SQLITE_DONE;
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "emails"), i, e)
        {
            char *lc = ascii_lower(json_string_value(json_object_get(e, "value")));
            if (lc == NULL)
                continue;
            q = cloud_store_stmt(s->st, CLOUD_STMT_EMAIL_INSERT);
            sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, lc, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
            ok = ok && cloud_store_exec(s->st, q) == SQLITE_DONE;
            free(lc);
        }
        if (!ok)
            return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    }
    if (rt->kind == CLOUD_RK_GROUP) {
        bool ok = true;
        json_t *newset = member_set(doc);
        json_t *oldset = old_doc != NULL ? member_set(old_doc) : json_object();
        if (old_doc != NULL)
            member_rows(s, id, json_object_get(old_doc, "members"), newset,
                        CLOUD_STMT_MEMBER_DELETE, &ok);
        member_rows(s, id, json_object_get(doc, "members"), oldset, CLOUD_STMT_MEMBER_INSERT, &ok);
        json_decref(newset);
        json_decref(oldset);
        if (!ok)
            return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    }
    r->version = version;
    snprintf(r->id, sizeof(r->id), "%s", id);
    return 0;
}

/*
 * Check the members of a group document: each value names an existing User
 * or Group of the org (not the group itself); fills type and $ref; drops
 * duplicates. Members already in known (member_set of the stored version)
 * are not looked up again.
 */
static int resolve_members(struct scim *s, const char *group_id, json_t *doc, const json_t *known,
                           struct op_result *r)
{
    json_t *members = json_object_get(doc, "members");
    if (members == NULL)
        return 0;
    json_t *seen = json_object();
    json_t *out = json_array();
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(members, i, m)
    {
        const char *v = json_string_value(json_object_get(m, "value"));
        if (v == NULL) {
            rc = fail(r, 400, "invalidValue", "members[%zu].value is required", i);
            break;
        }
        if (json_object_get(seen, v) != NULL)
            continue;
        if (group_id != NULL && strcmp(v, group_id) == 0) {
            rc = fail(r, 400, "invalidValue", "a group cannot be a member of itself");
            break;
        }
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *stored = known != NULL ? json_string_value(json_object_get(known, v)) : NULL;
        int kind;
        if (stored != NULL) /* already a member: its kind is known */
            kind = strcmp(stored, "Group") == 0 ? CLOUD_RK_GROUP : CLOUD_RK_USER;
        else
            kind = res_kind(s, v);
        if (kind != CLOUD_RK_USER && kind != CLOUD_RK_GROUP) {
            rc = fail(r, 400, "invalidValue", "member '%s' is not a User or Group of this org", v);
            break;
        }
        const char *actual = kind == CLOUD_RK_USER ? "User" : "Group";
        if (type != NULL && strcmp(type, actual) != 0) {
            rc = fail(r, 400, "invalidValue", "member '%s' is a %s, not a %s", v, actual, type);
            break;
        }
        json_array_append_new(out, member_value(s, v, kind == CLOUD_RK_GROUP));
        json_object_set_new(seen, v, json_true());
    }
    json_decref(seen);
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        json_object_del(doc, "members");
    } else {
        json_object_set_new(doc, "members", out);
    }
    return 0;
}

static int check_username(struct scim *s, const json_t *doc, const char *self, struct op_result *r)
{
    const char *u = json_string_value(json_object_get(doc, "userName"));
    if (u == NULL)
        return 0;
    char *lc = ascii_lower(u);
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_RES_BY_USERNAME);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, lc, -1, SQLITE_STATIC);
    int rc = 0;
    if (sqlite3_step(q) == SQLITE_ROW &&
        (self == NULL || strcmp((const char *)sqlite3_column_text(q, 0), self) != 0))
        rc = fail(r, 409, "uniqueness", "userName '%s' is already in use", u);
    sqlite3_reset(q);
    free(lc);
    return rc;
}

/* Remove id from every group that lists it (bumping those groups' versions). */
static int drop_memberships(struct scim *s, const char *id, struct op_result *r)
{
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_MEMBER_GROUPS_OF);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    json_t *groups = json_array();
    while (sqlite3_step(q) == SQLITE_ROW)
        json_array_append_new(groups, json_string((const char *)sqlite3_column_text(q, 0)));
    sqlite3_reset(q);
    size_t i;
    json_t *g;
    int rc = 0;
    json_array_foreach(groups, i, g)
    {
        json_t *doc;
        long long version, created;
        if (res_load(s, json_string_value(g), CLOUD_RK_GROUP, &doc, &version, &created) != 0)
            continue;
        json_t *old = json_deep_copy(doc);
        json_t *members = json_object_get(doc, "members");
        json_t *keep = json_array();
        size_t j;
        json_t *m;
        json_array_foreach(members, j, m)
        {
            if (strcmp(json_string_value(json_object_get(m, "value")), id) != 0)
                json_array_append(keep, m);
        }
        if (json_array_size(keep) > 0)
            json_object_set_new(doc, "members", keep);
        else {
            json_decref(keep);
            json_object_del(doc, "members");
        }
        struct op_result sub = {0};
        rc = res_save(s, cloud_schema_rtype(CLOUD_RK_GROUP), json_string_value(g), doc, false,
                      version + 1, created, old, &sub);
        json_decref(old);
        json_decref(doc);
        if (rc != 0) {
            *r = sub;
            break;
        }
    }
    json_decref(groups);
    return rc;
}

/* With --delete-cascades: clear the enterprise extension's manager on the users managed by id. */
static int clear_manager_refs(struct scim *s, const char *id, struct op_result *r)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->st->db,
                           "SELECT id FROM resources WHERE org = ?1 AND kind = 0 AND "
                           "json_extract(body, '$.\"" CLOUD_SCHEMA_ENTERPRISE
                           "\".manager.value') = ?2",
                           -1, &q, NULL) != SQLITE_OK)
        return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    json_t *users = json_array();
    while (sqlite3_step(q) == SQLITE_ROW)
        json_array_append_new(users, json_string((const char *)sqlite3_column_text(q, 0)));
    sqlite3_finalize(q);
    size_t i;
    json_t *u;
    int rc = 0;
    json_array_foreach(users, i, u)
    {
        json_t *doc;
        long long version, created;
        if (res_load(s, json_string_value(u), CLOUD_RK_USER, &doc, &version, &created) != 0)
            continue;
        json_t *old = json_deep_copy(doc);
        json_t *ext = json_object_get(doc, CLOUD_SCHEMA_ENTERPRISE);
        json_object_del(ext, "manager");
        if (json_object_size(ext) == 0)
            json_object_del(doc, CLOUD_SCHEMA_ENTERPRISE);
        struct op_result sub = {0};
        rc = res_save(s, cloud_schema_rtype(CLOUD_RK_USER), json_string_value(u), doc, false,
                      version + 1, created, old, &sub);
        json_decref(old);
        json_decref(doc);
        if (rc != 0) {
            *r = sub;
            break;
        }
    }
    json_decref(users);
    return rc;
}

/* --- operations -------------------------------------------------------------------------- */

/*
 * --single-value: a User (doc canonical, as validated) may hold at most one value in each
 * multi-valued attribute a client writes (emails, phoneNumbers, addresses, roles ...; not the
 * read-only groups). 400 invalidValue naming the first attribute with more.
 */
static int check_single_values(struct scim *s, const struct cloud_rtype_def *rt, const json_t *doc,
                               struct op_result *r)
{
    if (!s->ctx->cfg.single_value || rt->kind != CLOUD_RK_USER)
        return 0;
    const struct cloud_schema_def *schemas[] = {rt->core, rt->ext};
    for (size_t k = 0; k < 2; k++) {
        if (schemas[k] == NULL)
            continue;
        const json_t *c = k == 0 ? doc : json_object_get(doc, schemas[k]->id);
        for (size_t i = 0; c != NULL && i < schemas[k]->nattrs; i++) {
            const struct cloud_attr_def *d = &schemas[k]->attrs[i];
            if (!d->multi || d->mutability == CLOUD_M_READONLY)
                continue;
            size_t n = json_array_size(json_object_get(c, d->name));
            if (n > 1)
                return fail(r, 400, "invalidValue",
                            "'%s' would hold %zu values: this service provider keeps one value "
                            "per multi-valued attribute",
                            d->name, n);
        }
    }
    return 0;
}

static int check_preconditions(long long version, const char *if_match, const char *if_none,
                               struct op_result *r)
{
    if (if_match != NULL && !etag_matches(if_match, version))
        return fail(r, 412, NULL, "If-Match does not match the current version W/\"%lld\"",
                    version);
    if (if_none != NULL && etag_matches(if_none, version))
        return fail(r, 412, NULL, "If-None-Match matches the current version W/\"%lld\"", version);
    return 0;
}

/*
 * Keep the salted hash of a User's "password" (RFC 7643 4.1.1, writeOnly) found in the
 * validated input, then wipe the cleartext in the input document. The schema check has
 * refused a non-string value, and an omitted attribute (--no-password) as unknown.
 */
static int store_password(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                          const json_t *input, struct op_result *r)
{
    if (rt->kind != CLOUD_RK_USER)
        return 0;
    json_t *pw = cloud_json_get_ci(input, "password", NULL);
    if (!json_is_string(pw))
        return 0;
    size_t len = json_string_length(pw);
    int rc = len == 0 ? fail(r, 400, "invalidValue", "'password' must not be empty")
             : cloud_password_set(s->st, s->org, id, json_string_value(pw), len) != 0
                 ? fail(r, 500, NULL, "password store error: %s", cloud_store_errmsg(s->st))
                 : 0;
    OPENSSL_cleanse((char *)json_string_value(pw), len);
    return rc;
}

/* Wipe the "password" values of a PATCH request body (path "password" or a path-less value). */
static void wipe_patch_passwords(const json_t *body)
{
    size_t i;
    json_t *op;
    json_array_foreach(json_object_get(body, "Operations"), i, op)
    {
        const char *path = json_string_value(cloud_json_get_ci(op, "path", NULL));
        json_t *v = cloud_json_get_ci(op, "value", NULL);
        if (path != NULL) {
            size_t n = strlen(path);
            if (n < 8 || strcasecmp(path + n - 8, "password") != 0)
                continue;
        } else {
            v = cloud_json_get_ci(v, "password", NULL);
        }
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
}

static int op_create(struct scim *s, const struct cloud_rtype_def *rt, const json_t *body,
                     struct op_result *r)
{
    json_t *doc;
    if (cloud_schema_validate(rt, body, &doc, &r->err) != 0)
        return fail_err(r, &r->err);
    if (check_single_values(s, rt, doc, r) != 0) {
        json_decref(doc);
        return -1;
    }
    char id[37];
    if (cloud_uuid(id) != 0) {
        json_decref(doc);
        return fail(r, 500, NULL, "no randomness");
    }
    if ((rt->kind == CLOUD_RK_USER && check_username(s, doc, NULL, r) != 0) ||
        (rt->kind == CLOUD_RK_GROUP && resolve_members(s, id, doc, NULL, r) != 0)) {
        json_decref(doc);
        return -1;
    }
    long long now = cloud_now_ms();
    if (res_save(s, rt, id, doc, true, 1, now, NULL, r) != 0 ||
        store_password(s, rt, id, body, r) != 0) {
        json_decref(doc);
        return -1;
    }
    r->status = 201;
    r->res = doc;
    return 0;
}

/* Load for update with preconditions; 404/412 (428 with --etag-required) as results. */
static int load_for_update(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                           const char *if_match, const char *if_none, bool members, json_t **doc,
                           long long *version, long long *created, struct op_result *r)
{
    *doc = NULL;
    if (s->ctx->cfg.etag_required && if_match == NULL)
        return fail(r, 428, NULL,
                    "If-Match is required: send the version read (the ETag; in /Bulk the "
                    "operation's version) with PUT, PATCH and DELETE (RFC 6585 3)");
    int rc = res_load_doc(s, id, rt->kind, members, doc, version, created);
    if (rc == 1)
        return fail(r, 404, NULL, "%s '%s' not found", rt->name, id);
    if (rc != 0)
        return fail(r, 500, NULL, "database error");
    if (!s->ctx->cfg.no_etag && check_preconditions(*version, if_match, if_none, r) != 0) {
        json_decref(*doc);
        *doc = NULL;
        return -1;
    }
    return 0;
}

/* Validate, check and store a new full document for an existing resource. */
static int finish_update(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                         const json_t *input, json_t *old, long long version, long long created,
                         struct op_result *r)
{
    json_t *doc;
    if (cloud_schema_validate(rt, input, &doc, &r->err) != 0)
        return fail_err(r, &r->err);
    int rc = check_single_values(s, rt, doc, r);
    if (rc == 0 && rt->kind == CLOUD_RK_USER)
        rc = check_username(s, doc, id, r);
    if (rc == 0 && rt->kind == CLOUD_RK_GROUP) {
        json_t *known = member_set(old);
        rc = resolve_members(s, id, doc, known, r);
        json_decref(known);
    }
    if (rc == 0)
        rc = res_save(s, rt, id, doc, false, version + 1, created, old, r);
    if (rc == 0)
        rc = store_password(s, rt, id, input, r);
    if (rc != 0) {
        json_decref(doc);
        return -1;
    }
    r->status = 200;
    r->res = doc;
    return 0;
}

static int op_replace(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                      const json_t *body, const char *if_match, const char *if_none,
                      struct op_result *r)
{
    json_t *old;
    long long version, created;
    if (load_for_update(s, rt, id, if_match, if_none, true, &old, &version, &created, r) != 0)
        return -1;
    int rc = finish_update(s, rt, id, body, old, version, created, r);
    json_decref(old);
    return rc;
}

static int op_delete(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                     const char *if_match, const char *if_none, struct op_result *r)
{
    json_t *old;
    long long version, created;
    if (load_for_update(s, rt, id, if_match, if_none, false, &old, &version, &created, r) != 0)
        return -1;
    json_decref(old);
    /* RFC 7644 3.6 leaves it to the provider whether a deleted resource leaves the groups
     * that list it: strict by default, it stays listed (a dangling reference) unless
     * --delete-cascades, which also clears manager on the users it managed. */
    if (s->ctx->cfg.delete_cascades &&
        (drop_memberships(s, id, r) != 0 || clear_manager_refs(s, id, r) != 0))
        return -1;
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_MEMBER_DELETE_GROUP);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    bool ok = cloud_store_exec(s->st, q) == SQLITE_DONE;
    q = cloud_store_stmt(s->st, CLOUD_STMT_EMAIL_DELETE);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    ok = ok && cloud_store_exec(s->st, q) == SQLITE_DONE;
    ok = ok && cloud_password_delete(s->st, s->org, id) == 0;
    q = cloud_store_stmt(s->st, CLOUD_STMT_RES_DELETE);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    ok = ok && cloud_store_exec(s->st, q) == SQLITE_DONE;
    if (!ok)
        return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    r->status = 204;
    snprintf(r->id, sizeof(r->id), "%s", id);
    return 0;
}

/* Whether a PATCH path names a Group's members ("members", with or without the schema URN). */
static bool members_path(const struct cloud_patch_path *pp)
{
    return pp->sub == NULL && strcasecmp(pp->attr, "members") == 0 &&
           (pp->uri == NULL || strcasecmp(pp->uri, CLOUD_SCHEMA_GROUP) == 0);
}

/* Add to set the "value" of each element of list; false unless list is an array of objects
 * that each have a string "value". */
static bool named_values(json_t *set, const json_t *list)
{
    if (!json_is_array(list) || json_array_size(list) == 0)
        return false;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        const char *v = json_string_value(json_object_get(m, "value"));
        if (!json_is_object(m) || v == NULL)
            return false;
        json_object_set_new(set, v, json_true());
    }
    return true;
}

/*
 * The member values a Group PATCH names, when each of its operations adds or removes named
 * members only: "add" with path "members" and a list of values, "remove" with path
 * members[value eq "..."] (members.value is caseExact), or "remove" with path "members" and a
 * list of values. Such a PATCH can change no other member, so it is applied to the document
 * holding only the named members that exist (O(the operation), not O(the group)). Returns
 * the values as an object's keys (owned), or NULL for any other PATCH, which is applied to the
 * whole document (it also reports the errors).
 */
static json_t *named_members(const json_t *body)
{
    json_t *ops = json_is_object(body) ? cloud_json_get_ci(body, "Operations", NULL) : NULL;
    if (!json_is_array(ops) || json_array_size(ops) == 0)
        return NULL;
    json_t *set = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(ops, i, o)
    {
        const char *op = json_string_value(json_object_get(o, "op"));
        const char *path = json_string_value(json_object_get(o, "path"));
        const json_t *value = json_object_get(o, "value");
        struct cloud_patch_path pp;
        char perr[160];
        bool ok = op != NULL && path != NULL &&
                  cloud_patch_path_parse(path, &pp, perr, sizeof(perr)) == 0;
        if (!ok) {
            json_decref(set);
            return NULL;
        }
        const struct cloud_filter *f = pp.filter;
        if (!members_path(&pp))
            ok = false;
        else if (strcasecmp(op, "add") == 0)
            ok = f == NULL && named_values(set, value);
        else if (strcasecmp(op, "remove") == 0 && f == NULL)
            ok = named_values(set, value);
        else if (strcasecmp(op, "remove") == 0)
            ok = value == NULL && f->op == CLOUD_FILTER_EQ && f->uri == NULL && f->sub == NULL &&
                 f->attr != NULL && strcmp(f->attr, "value") == 0 && json_is_string(f->value) &&
                 json_object_set(set, json_string_value(f->value), json_true()) == 0;
        else
            ok = false;
        cloud_patch_path_clear(&pp);
        if (!ok) {
            json_decref(set);
            return NULL;
        }
    }
    return set;
}

/* Into doc (a Group's document without its members): those of the values named that are
 * members, as attach_members writes them. Returns 0, or -1 when the database fails. */
static int attach_named_members(struct scim *s, const char *group_id, const json_t *named,
                                json_t *doc)
{
    json_t *members = json_array();
    const char *v;
    json_t *unused;
    int rc = SQLITE_ROW;
    json_object_foreach((json_t *)named, v, unused)
    {
        sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_MEMBER_GET);
        sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, group_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, v, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            json_array_append_new(members,
                                  member_value(s, v, sqlite3_column_int(q, 0) == CLOUD_RK_GROUP));
        sqlite3_reset(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(members);
        return -1;
    }
    doc_put_members(doc, members);
    return 0;
}

static int op_patch(struct scim *s, const struct cloud_rtype_def *rt, const char *id,
                    const json_t *body, const char *if_match, const char *if_none,
                    struct op_result *r)
{
    json_t *named = rt->kind == CLOUD_RK_GROUP ? named_members(body) : NULL;
    json_t *old;
    long long version, created;
    if (load_for_update(s, rt, id, if_match, if_none, named == NULL, &old, &version, &created, r) !=
        0) {
        json_decref(named);
        return -1;
    }
    if (named != NULL && attach_named_members(s, id, named, old) != 0) {
        json_decref(named);
        json_decref(old);
        return fail(r, 500, NULL, "database error: %s", cloud_store_errmsg(s->st));
    }
    const struct cloud_config *cfg = &s->ctx->cfg;
    bool group_limited = cfg->group_patch_limited && rt->kind == CLOUD_RK_GROUP;
    struct cloud_patch_limits lim = {.eq_only_filters = cfg->filter_eq_only,
                                     .no_replace = group_limited,
                                     .no_remove_all = group_limited};
    json_t *doc = json_deep_copy(old);
    if (s->req != NULL)
        s->req->patch_ops += (long)json_array_size(json_object_get(body, "Operations"));
    int rc = cloud_patch_apply_limited(rt, doc, body, &lim, &r->err);
    if (rc != 0)
        fail_err(r, &r->err);
    else
        rc = finish_update(s, rt, id, doc, old, version, created, r);
    /* res_save wrote the difference between the named members before and after */
    r->members_partial = rc == 0 && named != NULL;
    wipe_patch_passwords(body);
    json_decref(named);
    json_decref(doc);
    json_decref(old);
    return rc;
}

/* --- output: groups, projection ------------------------------------------------------------ */

/* Add the read-only "groups" attribute of a user. */
static void add_user_groups(struct scim *s, json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (id == NULL)
        return;
    /* groups.display, unless the schema omits it (--profile) */
    struct cloud_attr_ref dref;
    bool display = cloud_schema_resolve(cloud_schema_rtype(CLOUD_RK_USER), NULL, "groups",
                                        "display", &dref, NULL) == 0;
    sqlite3_stmt *q = cloud_store_stmt(s->st, CLOUD_STMT_MEMBER_OF);
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    json_t *groups = json_array();
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *gid = (const char *)sqlite3_column_text(q, 0);
        const char *disp = (const char *)sqlite3_column_text(q, 1);
        char ref[700];
        snprintf(ref, sizeof(ref), "%s/Groups/%s", s->base, gid);
        json_t *g = json_pack("{s:s, s:s, s:s}", "value", gid, "$ref", ref, "type", "direct");
        if (disp != NULL && display)
            json_object_set_new(g, "display", json_string(disp));
        json_array_append_new(groups, g);
    }
    sqlite3_reset(q);
    if (json_array_size(groups) > 0)
        json_object_set_new(doc, "groups", groups);
    else
        json_decref(groups);
}

struct proj {
    int mode; /* 0 none, 1 attributes, 2 excludedAttributes */
    struct cloud_attr_ref refs[MAX_PROJ];
    size_t n;
};

/*
 * Whether a response with projection p carries the top-level attribute name.
 * "groups" of a user is computed from the memberships on every read, which
 * costs a query per user: list pages that do not return it skip that work.
 */
static bool proj_keeps(const struct proj *p, const char *name)
{
    if (p->mode == 0)
        return true;
    for (size_t i = 0; i < p->n; i++) {
        if (p->refs[i].ext == NULL && p->refs[i].attr != NULL &&
            strcasecmp(p->refs[i].attr->name, name) == 0)
            return p->mode == 1;
    }
    return p->mode == 2;
}

static int proj_parse(const struct cloud_rtype_def *rt, const char *attrs, const char *excl,
                      struct proj *p, struct cloud_scim_err *err)
{
    memset(p, 0, sizeof(*p));
    if (attrs != NULL && excl != NULL)
        return cloud_scim_err_set(err, 400, "invalidValue",
                                  "use attributes or excludedAttributes, not both");
    const char *list = attrs != NULL ? attrs : excl;
    if (list == NULL)
        return 0;
    p->mode = attrs != NULL ? 1 : 2;
    char *copy = strdup(list);
    if (copy == NULL)
        return cloud_scim_err_set(err, 500, NULL, "out of memory");
    char *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (n == 0)
            continue;
        if (p->n == MAX_PROJ) {
            rc = cloud_scim_err_set(err, 400, "invalidValue", "too many attributes listed");
            break;
        }
        struct cloud_patch_path pp;
        char msg[200];
        if (cloud_patch_path_parse(tok, &pp, msg, sizeof(msg)) != 0 || pp.filter != NULL) {
            cloud_patch_path_clear(&pp); /* zeroed by a failed parse: safe either way */
            rc = cloud_scim_err_set(err, 400, "invalidValue", "bad attribute name '%s'", tok);
            break;
        }
        int r = cloud_schema_resolve(rt, pp.uri, pp.attr, pp.sub, &p->refs[p->n], err);
        cloud_patch_path_clear(&pp);
        if (r != 0) {
            err->scim_type = "invalidValue";
            rc = -1;
            break;
        }
        p->n++;
    }
    free(copy);
    return rc;
}

static void proj_copy(json_t *out, const json_t *full, const struct cloud_attr_ref *ref)
{
    const json_t *src = ref->ext != NULL ? json_object_get(full, ref->ext->id) : full;
    const json_t *v = json_object_get(src, ref->attr->name);
    if (v == NULL)
        return;
    json_t *dst = out;
    if (ref->ext != NULL) {
        dst = json_object_get(out, ref->ext->id);
        if (dst == NULL) {
            dst = json_object();
            json_object_set_new(out, ref->ext->id, dst);
        }
    }
    if (ref->sub == NULL) {
        json_object_set_new(dst, ref->attr->name, json_deep_copy(v));
        return;
    }
    json_t *have = json_object_get(dst, ref->attr->name);
    if (json_is_array(v)) {
        if (!json_is_array(have)) {
            have = json_array();
            for (size_t i = 0; i < json_array_size(v); i++)
                json_array_append_new(have, json_object());
            json_object_set_new(dst, ref->attr->name, have);
        }
        for (size_t i = 0; i < json_array_size(v) && i < json_array_size(have); i++) {
            json_t *x = json_object_get(json_array_get(v, i), ref->sub->name);
            if (x != NULL)
                json_object_set(json_array_get(have, i), ref->sub->name, x);
        }
        return;
    }
    json_t *x = json_object_get(v, ref->sub->name);
    if (x == NULL)
        return;
    if (!json_is_object(have)) {
        have = json_object();
        json_object_set_new(dst, ref->attr->name, have);
    }
    json_object_set(have, ref->sub->name, x);
}

/* Apply the projection to a full representation; consumes full. */
static json_t *proj_apply(const struct proj *p, json_t *full)
{
    if (p->mode == 0)
        return full;
    if (p->mode == 1) {
        json_t *out = json_object();
        json_object_set(out, "schemas", json_object_get(full, "schemas"));
        json_object_set(out, "id", json_object_get(full, "id"));
        for (size_t i = 0; i < p->n; i++)
            proj_copy(out, full, &p->refs[i]);
        json_decref(full);
        return out;
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct cloud_attr_ref *ref = &p->refs[i];
        if (ref->attr->returned == CLOUD_R_ALWAYS)
            continue;
        json_t *src = ref->ext != NULL ? json_object_get(full, ref->ext->id) : full;
        if (!json_is_object(src))
            continue;
        if (ref->sub == NULL) {
            json_object_del(src, ref->attr->name);
            continue;
        }
        json_t *v = json_object_get(src, ref->attr->name);
        if (json_is_array(v)) {
            size_t j;
            json_t *el;
            json_array_foreach(v, j, el) json_object_del(el, ref->sub->name);
        } else if (json_is_object(v)) {
            json_object_del(v, ref->sub->name);
        }
    }
    return full;
}

/* The full representation of a stored document (adds users' groups). Consumes doc. */
static json_t *representation(struct scim *s, const struct cloud_rtype_def *rt, json_t *doc)
{
    if (rt->kind == CLOUD_RK_USER)
        add_user_groups(s, doc);
    return doc;
}

/* The representation when the response will hold the attribute "groups", else doc as stored. */
static json_t *representation_for(struct scim *s, const struct cloud_rtype_def *rt, json_t *doc,
                                  bool groups_needed)
{
    return groups_needed ? representation(s, rt, doc) : doc;
}

/* --- HTTP handlers ----------------------------------------------------------------------- */

static void reply_error(struct cloud_req *req, const struct op_result *r)
{
    cloud_reply_scim_error(req, r->status, r->err.scim_type, "%s", r->err.detail);
}

static json_t *parse_scim_body(struct cloud_req *req)
{
    const char *ct = cloud_reply_input_header(req, "Content-Type");
    if (ct == NULL || (strncasecmp(ct, "application/scim+json", 21) != 0 &&
                       strncasecmp(ct, "application/json", 16) != 0)) {
        cloud_reply_scim_error(req, 415, NULL,
                               "Content-Type must be application/scim+json (or application/json)");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL)
        cloud_reply_scim_error(req, 400, "invalidSyntax", "malformed JSON: %s (line %d, column %d)",
                               e.text, e.line, e.column);
    return j;
}

/* Run one write in a transaction and answer. */
static void answer_write(struct cloud_req *req, struct scim *s, const struct cloud_rtype_def *rt,
                         struct op_result *r, int rc, const struct proj *p)
{
    if (rc != 0) {
        cloud_store_rollback(s->st);
        json_decref(r->res);
        reply_error(req, r);
        return;
    }
    if (cloud_store_commit(s->st) != SQLITE_OK) {
        json_decref(r->res);
        cloud_reply_scim_error(req, 500, NULL, "commit failed");
        return;
    }
    char etag[40];
    etag_of(r->version, etag, sizeof(etag));
    if (r->status == 204) {
        if (r->etag_on_204 && !s->ctx->cfg.no_etag)
            cloud_reply_header(req, "ETag", etag);
        json_decref(r->res);
        cloud_reply_send(req, 204, NULL, NULL);
        return;
    }
    if (!s->ctx->cfg.no_etag)
        cloud_reply_header(req, "ETag", etag);
    if (r->status == 201) {
        cloud_reply_header(
            req, "Location",
            json_string_value(json_object_get(json_object_get(r->res, "meta"), "location")));
    }
    if (r->members_partial) {
        /* the operation saw only the members it named: the answer holds them all (or none) */
        json_object_del(r->res, "members");
        if (proj_keeps(p, "members") && attach_members(s, r->id, r->res) != 0) {
            json_decref(r->res);
            cloud_reply_scim_error(req, 500, NULL, "database error");
            return;
        }
    }
    json_t *out = proj_apply(p, representation(s, rt, r->res));
    cloud_reply_send(req, r->status, out, CT_SCIM);
}

static bool parse_int_param(struct cloud_req *req, const char *name, long long *out)
{
    const char *v = cloud_reply_query(req, name);
    if (v == NULL)
        return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0') {
        cloud_reply_scim_error(req, 400, "invalidValue", "'%s' must be an integer", name);
        return false;
    }
    *out = n;
    return true;
}

/* Pick an index for a filter: an eq on an indexed attribute, alone or inside an "and". */
static const struct cloud_filter *indexed_eq(const struct cloud_filter *f, enum cloud_stmt *which)
{
    if (f->op == CLOUD_FILTER_AND) {
        const struct cloud_filter *l = indexed_eq(f->left, which);
        return l != NULL ? l : indexed_eq(f->right, which);
    }
    if (f->op != CLOUD_FILTER_EQ || !json_is_string(f->value) || f->ref.ext != NULL)
        return NULL;
    const char *n = f->ref.attr->name;
    if (strcmp(n, "emails") == 0 &&
        (f->ref.sub == NULL || strcmp(f->ref.sub->name, "value") == 0)) {
        *which = CLOUD_STMT_RES_SCAN_EMAIL;
        return f;
    }
    if (f->ref.sub != NULL)
        return NULL;
    if (strcmp(n, "userName") == 0)
        *which = CLOUD_STMT_RES_SCAN_USERNAME;
    else if (strcmp(n, "externalId") == 0)
        *which = CLOUD_STMT_RES_SCAN_EXT;
    else if (strcmp(n, "displayName") == 0)
        *which = CLOUD_STMT_RES_SCAN_DISPLAY;
    else if (strcmp(n, "id") == 0)
        *which = CLOUD_STMT_RES_SCAN_ID;
    else
        return NULL;
    return f;
}

/* Sorting (RFC 7644 3.4.2.3). */
struct sort_spec {
    bool on, desc;
    struct cloud_attr_ref ref;
    const struct cloud_attr_def *def; /* the attribute whose values are compared */
};

struct sort_item {
    json_t *doc;
    const json_t *key; /* borrowed from doc; NULL when the resource has no value */
    size_t idx;
    const struct sort_spec *spec;
};

static int sort_parse(const struct cloud_rtype_def *rt, const char *by, const char *order,
                      struct sort_spec *sp, struct cloud_scim_err *err)
{
    memset(sp, 0, sizeof(*sp));
    if (order != NULL && strcmp(order, "ascending") != 0 && strcmp(order, "descending") != 0)
        return cloud_scim_err_set(err, 400, "invalidValue",
                                  "sortOrder must be ascending or descending");
    if (by == NULL)
        return 0;
    struct cloud_patch_path pp;
    char msg[200];
    if (cloud_patch_path_parse(by, &pp, msg, sizeof(msg)) != 0 || pp.filter != NULL) {
        cloud_patch_path_clear(&pp);
        return cloud_scim_err_set(err, 400, "invalidValue", "bad sortBy '%s'", by);
    }
    int rc = cloud_schema_resolve(rt, pp.uri, pp.attr, pp.sub, &sp->ref, err);
    cloud_patch_path_clear(&pp);
    if (rc != 0) {
        err->scim_type = "invalidValue";
        return -1;
    }
    sp->def = sp->ref.sub;
    if (sp->def == NULL && sp->ref.attr->type == CLOUD_T_COMPLEX)
        sp->def = cloud_schema_find(sp->ref.attr->subs, sp->ref.attr->nsubs, "value");
    else if (sp->def == NULL)
        sp->def = sp->ref.attr;
    if (sp->def == NULL)
        return cloud_scim_err_set(err, 400, "invalidValue",
                                  "sortBy '%s' is complex: name a sub-attribute", by);
    sp->on = true;
    sp->desc = order != NULL && strcmp(order, "descending") == 0;
    return 0;
}

/* The value a resource sorts by: multi-valued attributes use the primary value, else the first. */
static const json_t *sort_key(const struct sort_spec *sp, const json_t *doc)
{
    const json_t *c = sp->ref.ext != NULL ? json_object_get(doc, sp->ref.ext->id) : doc;
    const json_t *v = json_object_get(c, sp->ref.attr->name);
    if (json_is_array(v)) {
        const json_t *pick = json_array_get(v, 0);
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            if (json_is_true(json_object_get(el, "primary"))) {
                pick = el;
                break;
            }
        }
        v = pick;
    }
    if (json_is_object(v))
        v = json_object_get(v, sp->def->name);
    return v == NULL || json_is_null(v) ? NULL : v;
}

static int sort_cmp(const void *pa, const void *pb)
{
    const struct sort_item *a = pa, *b = pb;
    const struct cloud_attr_def *d = a->spec->def;
    int c = 0;
    if (a->key == NULL || b->key == NULL) {
        c = (a->key == NULL) - (b->key == NULL); /* no value: last ascending, first descending */
    } else if (json_is_string(a->key) && json_is_string(b->key)) {
        const char *x = json_string_value(a->key), *y = json_string_value(b->key);
        long long tx, ty;
        if (d->type == CLOUD_T_DATETIME && cloud_schema_parse_datetime(x, &tx) &&
            cloud_schema_parse_datetime(y, &ty))
            c = (tx > ty) - (tx < ty);
        else
            c = d->case_exact ? strcmp(x, y) : strcasecmp(x, y);
    } else if (json_is_number(a->key) && json_is_number(b->key)) {
        double x = json_number_value(a->key), y = json_number_value(b->key);
        c = (x > y) - (x < y);
    } else if (json_is_boolean(a->key) && json_is_boolean(b->key)) {
        c = json_is_true(a->key) - json_is_true(b->key);
    }
    if (a->spec->desc)
        c = -c;
    if (c == 0)
        c = (a->idx > b->idx) - (a->idx < b->idx);
    return c;
}

/*
 * A page of a list without filter or sort whose attributes= names only
 * top-level core attributes that are stored (not a user's computed
 * "groups"): SQLite's -> takes the named values out of each stored body,
 * and only they are parsed, instead of the whole document. Builds the same
 * objects as proj_apply. Returns the Resources array, or NULL when the
 * request does not qualify (or on an error: the caller takes the general
 * path then).
 */
static json_t *list_page_projected(struct scim *s, const struct cloud_rtype_def *rt,
                                   const struct proj *p, long long start, long long count)
{
    if (p->mode != 1 || proj_keeps(p, "groups"))
        return NULL;
    char sql[4096];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "SELECT body -> '$.schemas', id");
    for (size_t i = 0; i < p->n; i++) {
        const struct cloud_attr_ref *ref = &p->refs[i];
        const char *name = ref->attr != NULL ? ref->attr->name : NULL;
        const char *sub = ref->sub != NULL ? ref->sub->name : NULL;
        if (ref->ext != NULL || name == NULL || strpbrk(name, "'\"") != NULL ||
            (rt->kind == CLOUD_RK_GROUP && strcmp(name, "members") == 0) ||
            (sub != NULL && (ref->attr->multi || strpbrk(sub, "'\"") != NULL)))
            return NULL;
        if (sub != NULL)
            n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", body -> '$.\"%s\".\"%s\"'", name,
                                  sub);
        else
            n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", body -> '$.\"%s\"'", name);
        if (n >= sizeof(sql))
            return NULL;
    }
    n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                          " FROM resources WHERE org=?1 AND kind=?2 ORDER BY rowid"
                          " LIMIT ?3 OFFSET ?4");
    sqlite3_stmt *q = NULL;
    if (n >= sizeof(sql) || sqlite3_prepare_v2(s->st->db, sql, -1, &q, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return NULL;
    }
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, rt->kind);
    sqlite3_bind_int64(q, 3, count);
    sqlite3_bind_int64(q, 4, start - 1);
    json_t *resources = json_array();
    int rc;
    while (resources != NULL && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *out = json_object();
        for (int c = 0; c < (int)p->n + 2; c++) {
            const char *text = (const char *)sqlite3_column_text(q, c);
            if (text == NULL)
                continue; /* not in the stored document */
            const char *key = c == 0 ? "schemas" : c == 1 ? "id" : p->refs[c - 2].attr->name;
            json_t *v = c == 1 ? json_string(text)
                               : json_loadb(text, (size_t)sqlite3_column_bytes(q, c),
                                            JSON_DECODE_ANY, NULL);
            if (v == NULL) {
                json_decref(out);
                out = NULL;
                break;
            }
            const struct cloud_attr_def *sub = c >= 2 ? p->refs[c - 2].sub : NULL;
            if (sub == NULL) {
                json_object_set_new(out, key, v);
                continue;
            }
            /* a sub-attribute of a single-valued complex attribute, as proj_copy places it */
            json_t *have = json_object_get(out, key);
            if (!json_is_object(have)) {
                have = json_object();
                json_object_set_new(out, key, have);
            }
            json_object_set_new(have, sub->name, v);
        }
        if (out == NULL || json_array_append_new(resources, out) != 0) {
            json_decref(resources);
            resources = NULL;
        }
    }
    if (resources != NULL && rc != SQLITE_DONE) {
        json_decref(resources);
        resources = NULL;
    }
    sqlite3_finalize(q);
    return resources;
}

/* Whether filter f names the top-level attribute attr anywhere (RFC 7644 3.4.2.2). */
static bool filter_names(const struct cloud_filter *f, const char *attr)
{
    if (f == NULL)
        return false;
    if (f->attr != NULL && strcasecmp(f->attr, attr) == 0)
        return true;
    return filter_names(f->left, attr) || filter_names(f->right, attr);
}

static void list_resources(struct cloud_req *req, struct scim *s, const struct cloud_rtype_def *rt)
{
    struct cloud_ctx *ctx = s->ctx;
    struct sort_spec sort;
    struct cloud_scim_err serr = {0};
    if (sort_parse(rt, cloud_reply_query(req, "sortBy"), cloud_reply_query(req, "sortOrder"), &sort,
                   &serr) != 0) {
        cloud_reply_scim_error(req, serr.status, serr.scim_type, "%s", serr.detail);
        return;
    }
    long long start = 1, count = ctx->cfg.filter_max_results;
    if (!parse_int_param(req, "startIndex", &start) || !parse_int_param(req, "count", &count))
        return;
    if (start < 1)
        start = 1;
    if (count < 0)
        count = 0;
    if (count > ctx->cfg.filter_max_results)
        count = ctx->cfg.filter_max_results;
    struct proj p;
    struct cloud_scim_err err = {0};
    if (proj_parse(rt, cloud_reply_query(req, "attributes"),
                   cloud_reply_query(req, "excludedAttributes"), &p, &err) != 0) {
        cloud_reply_scim_error(req, err.status, err.scim_type, "%s", err.detail);
        return;
    }
    const char *ftext = cloud_reply_query(req, "filter");
    struct cloud_filter *f = NULL;
    if (ftext != NULL) {
        char msg[300];
        if (cloud_filter_parse(ftext, &f, msg, sizeof(msg)) != 0) {
            cloud_reply_scim_error(req, 400, "invalidFilter", "%s", msg);
            return;
        }
        if ((ctx->cfg.filter_eq_only && cloud_filter_eq_only(f, &err) != 0) ||
            cloud_filter_bind(f, rt, &err) != 0) {
            cloud_filter_free(f);
            cloud_reply_scim_error(req, 400, "invalidFilter", "%s", err.detail);
            return;
        }
    }
    json_t *resources = json_array();
    long long total = 0;
    sqlite3_stmt *q;
    if (f == NULL && sort.on) {
        q = cloud_store_stmt(s->st, CLOUD_STMT_RES_SCAN);
    } else if (f == NULL) {
        q = cloud_store_stmt(s->st, CLOUD_STMT_RES_COUNT);
        sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, rt->kind);
        total = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
        sqlite3_reset(q);
        json_t *page = list_page_projected(s, rt, &p, start, count);
        if (page != NULL) {
            json_decref(resources);
            json_t *out =
                json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", CLOUD_MSG_LIST, "totalResults",
                          (json_int_t)total, "itemsPerPage", (json_int_t)json_array_size(page),
                          "startIndex", (json_int_t)start, "Resources", page);
            cloud_reply_send(req, 200, out, CT_SCIM);
            return;
        }
        q = cloud_store_stmt(s->st, CLOUD_STMT_RES_PAGE);
        sqlite3_bind_int64(q, 3, count);
        sqlite3_bind_int64(q, 4, start - 1);
    } else {
        enum cloud_stmt which = CLOUD_STMT_RES_SCAN;
        const struct cloud_filter *eq = indexed_eq(f, &which);
        q = cloud_store_stmt(s->st, which);
        if (eq != NULL) {
            char *v = which == CLOUD_STMT_RES_SCAN_EXT || which == CLOUD_STMT_RES_SCAN_ID
                          ? strdup(json_string_value(eq->value))
                          : ascii_lower(json_string_value(eq->value));
            sqlite3_bind_text(q, 3, v, -1, SQLITE_TRANSIENT);
            free(v);
        }
    }
    sqlite3_bind_text(q, 1, s->org, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, rt->kind);
    /* a group's members are composed only when the filter, the order or the answer use them */
    bool members =
        proj_keeps(&p, "members") || sort.on || (f != NULL && filter_names(f, "members"));
    /* collect ids first: loading uses other statements */
    json_t *ids = json_array();
    while (sqlite3_step(q) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(q, 0)));
    sqlite3_reset(q);
    size_t i;
    json_t *idv;
    struct sort_item *items = NULL;
    size_t nitems = 0;
    if (sort.on)
        items = calloc(json_array_size(ids) + 1, sizeof(*items));
    json_array_foreach(ids, i, idv)
    {
        json_t *doc;
        if (res_load_doc(s, json_string_value(idv), rt->kind, members, &doc, NULL, NULL) != 0)
            continue;
        doc = representation_for(s, rt, doc, f != NULL || sort.on || proj_keeps(&p, "groups"));
        if (sort.on) {
            /* sorting needs every match before paging */
            if (f != NULL && !cloud_filter_match(f, doc)) {
                json_decref(doc);
                continue;
            }
            items[nitems] = (struct sort_item){doc, sort_key(&sort, doc), nitems, &sort};
            nitems++;
            continue;
        }
        if (f != NULL) {
            if (!cloud_filter_match(f, doc)) {
                json_decref(doc);
                continue;
            }
            total++;
            if (total < start || (long long)json_array_size(resources) >= count) {
                json_decref(doc);
                continue;
            }
        }
        json_array_append_new(resources, proj_apply(&p, doc));
    }
    if (sort.on) {
        qsort(items, nitems, sizeof(*items), sort_cmp);
        total = (long long)nitems;
        for (size_t k = 0; k < nitems; k++) {
            if ((long long)k + 1 >= start && (long long)json_array_size(resources) < count)
                json_array_append_new(resources, proj_apply(&p, items[k].doc));
            else
                json_decref(items[k].doc);
        }
        free(items);
    }
    json_decref(ids);
    cloud_filter_free(f);
    json_t *out =
        json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", CLOUD_MSG_LIST, "totalResults",
                  (json_int_t)total, "itemsPerPage", (json_int_t)json_array_size(resources),
                  "startIndex", (json_int_t)start, "Resources", resources);
    cloud_reply_send(req, 200, out, CT_SCIM);
}

/* POST /{type}/.search (RFC 7644 3.4.3): the SearchRequest becomes the query of a list. */
static void search(struct cloud_req *req, struct scim *s, const struct cloud_rtype_def *rt)
{
    json_t *body = parse_scim_body(req);
    if (body == NULL)
        return;
    const char *bad = NULL;
    json_t *schemas = json_object_get(body, "schemas");
    if (!json_is_object(body))
        bad = "the body must be a SearchRequest object";
    else if (!json_is_array(schemas) || json_array_size(schemas) != 1 ||
             !json_is_string(json_array_get(schemas, 0)) ||
             strcmp(json_string_value(json_array_get(schemas, 0)),
                    "urn:ietf:params:scim:api:messages:2.0:SearchRequest") != 0)
        bad = "'schemas' must be [\"urn:ietf:params:scim:api:messages:2.0:SearchRequest\"]";
    evhttp_clear_headers(&req->query);
    const char *k;
    json_t *v;
    if (bad == NULL) {
        json_object_foreach(body, k, v)
        {
            char buf[64];
            if (strcmp(k, "schemas") == 0)
                continue;
            if (strcmp(k, "filter") == 0 || strcmp(k, "sortBy") == 0 ||
                strcmp(k, "sortOrder") == 0) {
                if (!json_is_string(v)) {
                    bad = "filter, sortBy and sortOrder are strings";
                    break;
                }
                evhttp_add_header(&req->query, k, json_string_value(v));
            } else if (strcmp(k, "startIndex") == 0 || strcmp(k, "count") == 0) {
                if (!json_is_integer(v)) {
                    bad = "startIndex and count are integers";
                    break;
                }
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                evhttp_add_header(&req->query, k, buf);
            } else if (strcmp(k, "attributes") == 0 || strcmp(k, "excludedAttributes") == 0) {
                char list[2048] = "";
                size_t i;
                json_t *a;
                if (!json_is_array(v)) {
                    bad = "attributes and excludedAttributes are arrays of strings";
                    break;
                }
                json_array_foreach(v, i, a)
                {
                    if (!json_is_string(a) ||
                        strlen(list) + json_string_length(a) + 2 > sizeof(list)) {
                        bad = "attributes and excludedAttributes are short arrays of strings";
                        break;
                    }
                    if (i > 0)
                        strcat(list, ",");
                    strcat(list, json_string_value(a));
                }
                if (bad != NULL)
                    break;
                evhttp_add_header(&req->query, k, list);
            } else {
                bad = "unknown member in SearchRequest";
                break;
            }
        }
    }
    json_decref(body);
    if (bad != NULL) {
        cloud_reply_scim_error(req, 400, "invalidSyntax", "%s", bad);
        return;
    }
    list_resources(req, s, rt);
}

static void get_resource(struct cloud_req *req, struct scim *s, const struct cloud_rtype_def *rt,
                         const char *id)
{
    struct proj p;
    struct cloud_scim_err err = {0};
    if (proj_parse(rt, cloud_reply_query(req, "attributes"),
                   cloud_reply_query(req, "excludedAttributes"), &p, &err) != 0) {
        cloud_reply_scim_error(req, err.status, err.scim_type, "%s", err.detail);
        return;
    }
    json_t *doc;
    long long version;
    /* a group's members are composed only when the answer holds them */
    int rc = res_load_doc(s, id, rt->kind, proj_keeps(&p, "members"), &doc, &version, NULL);
    if (rc == 1) {
        cloud_reply_scim_error(req, 404, NULL, "%s '%s' not found", rt->name, id);
        return;
    }
    if (rc != 0) {
        cloud_reply_scim_error(req, 500, NULL, "database error");
        return;
    }
    char etag[40];
    etag_of(version, etag, sizeof(etag));
    if (!s->ctx->cfg.no_etag)
        cloud_reply_header(req, "ETag", etag);
    const char *inm = cloud_reply_input_header(req, "If-None-Match");
    if (!s->ctx->cfg.no_etag && inm != NULL && etag_matches(inm, version)) {
        json_decref(doc);
        cloud_reply_send(req, 304, NULL, NULL);
        return;
    }
    cloud_reply_send(req, 200,
                     proj_apply(&p, representation_for(s, rt, doc, proj_keeps(&p, "groups"))),
                     CT_SCIM);
}

static void write_resource(struct cloud_req *req, struct scim *s, const struct cloud_rtype_def *rt,
                           const char *id)
{
    struct proj p;
    struct cloud_scim_err err = {0};
    if (req->method != EVHTTP_REQ_DELETE &&
        proj_parse(rt, cloud_reply_query(req, "attributes"),
                   cloud_reply_query(req, "excludedAttributes"), &p, &err) != 0) {
        cloud_reply_scim_error(req, err.status, err.scim_type, "%s", err.detail);
        return;
    }
    if (req->method == EVHTTP_REQ_DELETE)
        memset(&p, 0, sizeof(p));
    json_t *body = NULL;
    if (req->method != EVHTTP_REQ_DELETE) {
        body = parse_scim_body(req);
        if (body == NULL)
            return;
    }
    if (cloud_control_fence(req, s->org) != 0) {
        json_decref(body);
        return;
    }
    if (cloud_store_begin(s->st) != SQLITE_OK) {
        json_decref(body);
        cloud_reply_scim_error(req, 500, NULL, "database busy");
        return;
    }
    const char *im = cloud_reply_input_header(req, "If-Match");
    const char *inm = cloud_reply_input_header(req, "If-None-Match");
    struct op_result r = {0};
    int rc;
    switch (req->method) {
    case EVHTTP_REQ_POST:
        rc = op_create(s, rt, body, &r);
        break;
    case EVHTTP_REQ_PUT:
        rc = op_replace(s, rt, id, body, im, inm, &r);
        break;
    case EVHTTP_REQ_PATCH:
        rc = op_patch(s, rt, id, body, im, inm, &r);
        /* RFC 7644 3.5.2: a successful PATCH is answered 200 with the whole resource, or
         * 204 No Content with the response headers; some providers answer a Group PATCH
         * the second way (--group-patch-no-content, AWS IAM Identity Center's PatchGroup) */
        if (rc == 0 && rt->kind == CLOUD_RK_GROUP && s->ctx->cfg.group_patch_no_content) {
            r.status = 204;
            r.etag_on_204 = true;
        }
        break;
    default:
        rc = op_delete(s, rt, id, im, inm, &r);
        break;
    }
    json_decref(body);
    answer_write(req, s, rt, &r, rc, &p);
}

/* --- Bulk (RFC 7644 3.7) ----------------------------------------------------------------- */

/* Collect "bulkId:x" references in v into refs (object of names). */
static void collect_refs(const json_t *v, json_t *refs)
{
    if (json_is_string(v)) {
        const char *sv = json_string_value(v);
        if (strncmp(sv, "bulkId:", 7) == 0)
            json_object_set_new(refs, sv + 7, json_true());
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) collect_refs(e, refs);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) collect_refs(e, refs);
    }
}

/* Replace "bulkId:x" strings with the created ids in map (in place). */
static void substitute_refs(json_t *v, const json_t *map)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e) && strncmp(json_string_value(e), "bulkId:", 7) == 0) {
                const char *id = json_string_value(json_object_get(map, json_string_value(e) + 7));
                if (id != NULL)
                    json_array_set_new(v, i, json_string(id));
            } else {
                substitute_refs(e, map);
            }
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            if (json_is_string(e) && strncmp(json_string_value(e), "bulkId:", 7) == 0) {
                const char *id = json_string_value(json_object_get(map, json_string_value(e) + 7));
                if (id != NULL)
                    json_object_set_new(v, k, json_string(id));
            } else {
                substitute_refs(e, map);
            }
        }
    }
}

static json_t *bulk_error_response(const struct op_result *r)
{
    char st[16];
    snprintf(st, sizeof(st), "%d", r->status);
    json_t *e = json_pack("{s:[s], s:s, s:s}", "schemas", CLOUD_MSG_ERROR, "status", st, "detail",
                          r->err.detail);
    if (r->err.scim_type != NULL)
        json_object_set_new(e, "scimType", json_string(r->err.scim_type));
    return e;
}

/* Run one bulk operation (refs already substituted). */
static int bulk_run_op(struct scim *s, const char *method, const char *path, const char *version,
                       const json_t *data, struct op_result *r, const struct cloud_rtype_def **rtp)
{
    if (path == NULL || path[0] != '/')
        return fail(r, 400, "invalidPath", "operation path must start with '/'");
    char seg[64], id[128] = "";
    const char *slash = strchr(path + 1, '/');
    size_t n = slash != NULL ? (size_t)(slash - path - 1) : strlen(path + 1);
    if (n == 0 || n >= sizeof(seg))
        return fail(r, 400, "invalidPath", "unknown path '%s'", path);
    memcpy(seg, path + 1, n);
    seg[n] = '\0';
    const struct cloud_rtype_def *rt = cloud_schema_rtype_by_endpoint(seg);
    if (rt == NULL)
        return fail(r, 400, "invalidPath", "unknown resource endpoint '%s'", path);
    *rtp = rt;
    if (slash != NULL) {
        if (strlen(slash + 1) >= sizeof(id) || strchr(slash + 1, '/') != NULL)
            return fail(r, 404, NULL, "no resource at '%s'", path);
        snprintf(id, sizeof(id), "%s", slash + 1);
    }
    if (strcmp(method, "POST") == 0) {
        if (slash != NULL)
            return fail(r, 400, "invalidPath", "POST goes to the resource type endpoint");
        if (data == NULL)
            return fail(r, 400, "invalidSyntax", "POST needs data");
        return op_create(s, rt, data, r);
    }
    if (slash == NULL || id[0] == '\0')
        return fail(r, 400, "invalidPath", "%s needs a resource id in the path", method);
    if (strcmp(method, "DELETE") == 0)
        return op_delete(s, rt, id, version, NULL, r);
    if (data == NULL)
        return fail(r, 400, "invalidSyntax", "%s needs data", method);
    if (strcmp(method, "PUT") == 0)
        return op_replace(s, rt, id, data, version, NULL, r);
    if (strcmp(method, "PATCH") == 0)
        return op_patch(s, rt, id, data, version, NULL, r);
    return fail(r, 400, "invalidValue", "unknown method '%s'", method);
}

static void savepoint(struct scim *s, enum cloud_stmt which)
{
    cloud_store_exec(s->st, cloud_store_stmt(s->st, which));
}

static void bulk(struct cloud_req *req, struct scim *s)
{
    struct cloud_ctx *ctx = s->ctx;
    json_t *body = parse_scim_body(req);
    if (body == NULL)
        return;
    const char *bad = NULL;
    const char *k;
    json_t *v;
    if (!json_is_object(body))
        bad = "the body must be a BulkRequest object";
    else {
        json_object_foreach(body, k, v)
        {
            if (strcmp(k, "schemas") != 0 && strcmp(k, "Operations") != 0 &&
                strcmp(k, "failOnErrors") != 0)
                bad = "unknown member in BulkRequest";
        }
    }
    json_t *schemas = json_object_get(body, "schemas");
    json_t *ops = json_object_get(body, "Operations");
    json_t *foe = json_object_get(body, "failOnErrors");
    if (bad == NULL && (!json_is_array(schemas) || json_array_size(schemas) != 1 ||
                        !json_is_string(json_array_get(schemas, 0)) ||
                        strcmp(json_string_value(json_array_get(schemas, 0)), CLOUD_MSG_BULK_REQ)))
        bad = "'schemas' must be [\"" CLOUD_MSG_BULK_REQ "\"]";
    if (bad == NULL && !json_is_array(ops))
        bad = "'Operations' must be an array";
    if (bad == NULL && foe != NULL && (!json_is_integer(foe) || json_integer_value(foe) < 0))
        bad = "'failOnErrors' must be a non-negative integer";
    if (bad != NULL) {
        json_decref(body);
        cloud_reply_scim_error(req, 400, "invalidSyntax", "%s", bad);
        return;
    }
    size_t nops = json_array_size(ops);
    if ((long)nops > ctx->cfg.bulk_max_ops) {
        json_decref(body);
        cloud_reply_scim_error(req, 413, "tooLarge",
                               "the request has %zu operations; maxOperations is %ld", nops,
                               ctx->cfg.bulk_max_ops);
        return;
    }
    long long fail_on = foe != NULL ? json_integer_value(foe) : 0;
    if (cloud_control_fence(req, s->org) != 0) {
        json_decref(body);
        return;
    }
    if (cloud_store_begin(s->st) != SQLITE_OK) {
        json_decref(body);
        cloud_reply_scim_error(req, 500, NULL, "database busy");
        return;
    }
    json_t **results = calloc(nops + 1, sizeof(*results));
    bool *done = calloc(nops + 1, sizeof(*done));
    json_t *idmap = json_object();   /* bulkId -> created id */
    json_t *pending = json_object(); /* bulkIds of POSTs not run yet */
    json_t *failed = json_object();  /* bulkIds of failed POSTs */
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        const char *bid = json_string_value(json_object_get(op, "bulkId"));
        if (bid != NULL)
            json_object_set_new(pending, bid, json_true());
    }
    long long errors = 0;
    bool stop = false;
    size_t remaining = nops;
    while (remaining > 0 && !stop) {
        bool progress = false;
        json_array_foreach(ops, i, op)
        {
            if (done[i] || stop)
                continue;
            struct op_result r = {0};
            const struct cloud_rtype_def *rt = NULL;
            const char *method = NULL, *path = NULL, *bid = NULL, *version = NULL;
            json_t *data = NULL;
            int rc = 0;
            bool defer = false;
            if (!json_is_object(op)) {
                rc = fail(&r, 400, "invalidSyntax", "operation is not an object");
            } else {
                json_object_foreach(op, k, v)
                {
                    if (strcmp(k, "method") != 0 && strcmp(k, "path") != 0 &&
                        strcmp(k, "bulkId") != 0 && strcmp(k, "version") != 0 &&
                        strcmp(k, "data") != 0)
                        rc = fail(&r, 400, "invalidSyntax", "unknown member '%s' in operation", k);
                }
                method = json_string_value(json_object_get(op, "method"));
                path = json_string_value(json_object_get(op, "path"));
                bid = json_string_value(json_object_get(op, "bulkId"));
                version = json_string_value(json_object_get(op, "version"));
                json_t *bidv = json_object_get(op, "bulkId");
                if (rc == 0 && (method == NULL || path == NULL))
                    rc = fail(&r, 400, "invalidSyntax", "operation needs method and path");
                else if (rc == 0 && bidv != NULL && bid == NULL)
                    rc = fail(&r, 400, "invalidSyntax", "bulkId must be a string");
                else if (rc == 0 && strcmp(method, "POST") == 0 && bid == NULL)
                    rc = fail(&r, 400, "invalidSyntax", "POST operations need a bulkId");
            }
            if (rc == 0) {
                json_t *refs = json_object();
                collect_refs(json_object_get(op, "data"), refs);
                if (strncmp(path, "bulkId:", 7) == 0 || strstr(path, "/bulkId:") != NULL) {
                    const char *p = strstr(path, "bulkId:");
                    json_object_set_new(refs, p + 7, json_true());
                }
                const char *ref;
                json_t *unused;
                json_object_foreach(refs, ref, unused)
                {
                    if (json_object_get(idmap, ref) != NULL)
                        continue;
                    if (json_object_get(failed, ref) != NULL) {
                        rc = fail(&r, 409, NULL, "bulkId '%s' refers to a failed operation", ref);
                        break;
                    }
                    if (json_object_get(pending, ref) != NULL &&
                        (bid == NULL || strcmp(ref, bid) != 0)) {
                        defer = true;
                        continue;
                    }
                    rc = fail(&r, 409, NULL, "bulkId '%s' is not defined by a POST", ref);
                    break;
                }
                json_decref(refs);
            }
            if (rc == 0 && defer)
                continue;
            progress = true;
            if (rc == 0) {
                data = json_deep_copy(json_object_get(op, "data"));
                substitute_refs(data, idmap);
                char fixed[512];
                const char *p = strstr(path, "bulkId:");
                if (p != NULL) {
                    const char *rid = json_string_value(json_object_get(idmap, p + 7));
                    snprintf(fixed, sizeof(fixed), "%.*s%s", (int)(p - path), path,
                             rid != NULL ? rid : "");
                    path = fixed;
                }
                savepoint(s, CLOUD_STMT_SAVEPOINT);
                rc = bulk_run_op(s, method, path, version, data, &r, &rt);
                if (rc != 0)
                    savepoint(s, CLOUD_STMT_ROLLBACK_TO);
                savepoint(s, CLOUD_STMT_RELEASE);
                json_decref(data);
            }
            json_t *res = json_object();
            if (method != NULL)
                json_object_set_new(res, "method", json_string(method));
            if (bid != NULL)
                json_object_set_new(res, "bulkId", json_string(bid));
            char st[16];
            snprintf(st, sizeof(st), "%d", r.status);
            if (rc == 0) {
                if (r.status != 204) {
                    char etag[40];
                    etag_of(r.version, etag, sizeof(etag));
                    if (!s->ctx->cfg.no_etag)
                        json_object_set_new(res, "version", json_string(etag));
                    json_object_set(res, "location",
                                    json_object_get(json_object_get(r.res, "meta"), "location"));
                }
                if (bid != NULL && strcmp(method, "POST") == 0) {
                    json_object_set_new(idmap, bid, json_string(r.id));
                    json_object_del(pending, bid);
                }
            } else {
                errors++;
                json_object_set_new(res, "response", bulk_error_response(&r));
                if (bid != NULL) {
                    json_object_set_new(failed, bid, json_true());
                    json_object_del(pending, bid);
                }
            }
            json_object_set_new(res, "status", json_string(st));
            json_decref(r.res);
            results[i] = res;
            done[i] = true;
            remaining--;
            if (fail_on > 0 && errors >= fail_on)
                stop = true;
        }
        if (!progress && !stop) {
            /* circular references: fail what is left */
            json_array_foreach(ops, i, op)
            {
                if (done[i])
                    continue;
                struct op_result r = {0};
                fail(&r, 409, NULL, "circular bulkId references");
                json_t *res =
                    json_pack("{s:O?, s:O?, s:s, s:o}", "method", json_object_get(op, "method"),
                              "bulkId", json_object_get(op, "bulkId"), "status", "409", "response",
                              bulk_error_response(&r));
                results[i] = res;
                done[i] = true;
                remaining--;
                errors++;
            }
        }
    }
    int crc = cloud_store_commit(s->st);
    json_t *out_ops = json_array();
    for (i = 0; i < nops; i++) {
        if (results[i] != NULL)
            json_array_append_new(out_ops, results[i]);
    }
    free(results);
    free(done);
    json_decref(idmap);
    json_decref(pending);
    json_decref(failed);
    json_decref(body);
    if (crc != SQLITE_OK) {
        json_decref(out_ops);
        cloud_reply_scim_error(req, 500, NULL, "commit failed");
        return;
    }
    cloud_reply_send(
        req, 200, json_pack("{s:[s], s:o}", "schemas", CLOUD_MSG_BULK_RESP, "Operations", out_ops),
        CT_SCIM);
}

/* --- discovery --------------------------------------------------------------------------- */

static json_t *service_provider_config(struct scim *s)
{
    char loc[700];
    snprintf(loc, sizeof(loc), "%s/ServiceProviderConfig", s->base);
    const struct cloud_config *c = &s->ctx->cfg;
    return json_pack(
        "{s:[s], s:s, s:{s:b}, s:{s:b, s:I, s:I}, s:{s:b, s:I}, s:{s:b}, s:{s:b}, s:{s:b}, "
        "s:[{s:s, s:s, s:s, s:b}], s:{s:s, s:s}}",
        "schemas", "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
        "documentationUri", "docs/cloud-api.md", "patch", "supported", !c->no_patch, "bulk",
        "supported", !c->no_bulk, "maxOperations", (json_int_t)c->bulk_max_ops, "maxPayloadSize",
        (json_int_t)c->bulk_max_payload, "filter", "supported", 1, "maxResults",
        (json_int_t)c->filter_max_results, "changePassword", "supported", 0, "sort", "supported", 1,
        "etag", "supported", !c->no_etag, "authenticationSchemes", "type", "oauthbearertoken",
        "name", "OAuth Bearer Token", "description",
        "OAuth 2.0 client credentials (POST /oauth/token) or the org admin token", "primary", 1,
        "meta", "resourceType", "ServiceProviderConfig", "location", loc);
}

static void discovery(struct cloud_req *req, struct scim *s)
{
    if (req->method != EVHTTP_REQ_GET) {
        cloud_reply_header(req, "Allow", "GET");
        cloud_reply_scim_error(req, 405, NULL, "discovery endpoints are read-only");
        return;
    }
    const char *what = req->segs[3];
    const char *arg = req->nsegs > 4 ? req->segs[4] : NULL;
    if (req->nsegs > 5) {
        cloud_reply_scim_error(req, 404, NULL, "no such endpoint");
        return;
    }
    if (strcmp(what, "ServiceProviderConfig") == 0 && arg == NULL) {
        cloud_reply_send(req, 200, service_provider_config(s), CT_SCIM);
        return;
    }
    if (strcmp(what, "ResourceTypes") == 0) {
        if (arg == NULL) {
            cloud_reply_send(req, 200, cloud_schema_rtypes_json(s->base), CT_SCIM);
            return;
        }
        for (int k = 0; k < CLOUD_RK_MAX; k++) {
            const struct cloud_rtype_def *rt = cloud_schema_rtype((enum cloud_rkind)k);
            if (cloud_schema_rtype_served(rt->kind) && strcmp(rt->name, arg) == 0) {
                cloud_reply_send(req, 200, cloud_schema_rtype_json(rt, s->base), CT_SCIM);
                return;
            }
        }
        cloud_reply_scim_error(req, 404, NULL, "no resource type '%s'", arg);
        return;
    }
    if (strcmp(what, "Schemas") == 0) {
        if (arg == NULL) {
            cloud_reply_send(req, 200, cloud_schema_schemas_json(s->base), CT_SCIM);
            return;
        }
        const struct cloud_schema_def *sd = cloud_schema_by_id(arg);
        if (sd == NULL) {
            cloud_reply_scim_error(req, 404, NULL, "no schema '%s'", arg);
            return;
        }
        cloud_reply_send(req, 200, cloud_schema_schema_json(sd, s->base), CT_SCIM);
        return;
    }
    cloud_reply_scim_error(req, 404, NULL, "no such endpoint");
}

void cloud_scim_handle(struct cloud_req *req)
{
    struct scim s = {.ctx = req->ctx, .st = req->st, .org = req->segs[2], .req = req};
    if (!cloud_reply_org_exists(req->ctx, s.org)) {
        cloud_reply_scim_error(req, 404, NULL, "no organisation '%s'", s.org);
        return;
    }
    snprintf(s.base, sizeof(s.base), "%s/scim/v2/%s", req->ctx->base_url, s.org);
    if (req->nsegs < 4) {
        cloud_reply_scim_error(req, 404, NULL, "no such endpoint");
        return;
    }
    const char *what = req->segs[3];
    if (strcmp(what, "ServiceProviderConfig") == 0 || strcmp(what, "ResourceTypes") == 0 ||
        strcmp(what, "Schemas") == 0) {
        discovery(req, &s);
        return;
    }
    if (cloud_reply_authenticate(req, s.org) != 0 ||
        cloud_control_ha_mode(req, s.org, CLOUD_HA_ACT_READ) != 0)
        return;
    if (strcmp(what, "Me") == 0 || (strcmp(what, ".search") == 0 && req->nsegs == 4)) {
        cloud_reply_scim_error(req, 501, NULL, "/%s is not implemented", what);
        return;
    }
    if (strcmp(what, "Bulk") == 0 && req->nsegs == 4) {
        if (req->method != EVHTTP_REQ_POST) {
            cloud_reply_header(req, "Allow", "POST");
            cloud_reply_scim_error(req, 405, NULL, "use POST for /Bulk");
            return;
        }
        if (s.ctx->cfg.no_bulk) {
            cloud_reply_scim_error(req, 501, NULL, "/Bulk is not supported (bulk.supported false)");
            return;
        }
        bulk(req, &s);
        return;
    }
    const struct cloud_rtype_def *rt = cloud_schema_rtype_by_endpoint(what);
    if (rt == NULL || req->nsegs > 5) {
        cloud_reply_scim_error(req, 404, NULL, "no such endpoint");
        return;
    }
    enum evhttp_cmd_type m = req->method;
    if (req->nsegs == 4) {
        if (m == EVHTTP_REQ_GET)
            list_resources(req, &s, rt);
        else if (m == EVHTTP_REQ_POST)
            write_resource(req, &s, rt, NULL);
        else {
            cloud_reply_header(req, "Allow", "GET, POST");
            cloud_reply_scim_error(req, 405, NULL, "method not allowed on %s", rt->endpoint);
        }
        return;
    }
    const char *id = req->segs[4];
    if (strcmp(id, ".search") == 0) {
        if (s.ctx->cfg.no_search)
            cloud_reply_scim_error(req, 501, NULL, "POST %s/.search is not supported",
                                   rt->endpoint);
        else if (m == EVHTTP_REQ_POST)
            search(req, &s, rt);
        else {
            cloud_reply_header(req, "Allow", "POST");
            cloud_reply_scim_error(req, 405, NULL, "use POST for .search");
        }
        return;
    }
    if (!valid_id(id)) {
        cloud_reply_scim_error(req, 404, NULL, "%s '%s' not found", rt->name, id);
        return;
    }
    if (m == EVHTTP_REQ_PATCH && s.ctx->cfg.no_patch) {
        cloud_reply_scim_error(req, 501, NULL, "PATCH is not supported (patch.supported false)");
        return;
    }
    if (m == EVHTTP_REQ_GET)
        get_resource(req, &s, rt, id);
    else if (m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_PATCH || m == EVHTTP_REQ_DELETE)
        write_resource(req, &s, rt, id);
    else {
        cloud_reply_header(req, "Allow", "GET, PUT, PATCH, DELETE");
        cloud_reply_scim_error(req, 405, NULL, "method not allowed on a resource");
    }
}
