/* Unit tests for connector/plan.c over a real state database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/plan.h"
#include "connector/record.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static struct state *st;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dirconn-plan-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return state_open(dir, &st, NULL) == DIRCONN_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    state_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *user(const char *mail, const char *display)
{
    return json_pack("{s:[s], s:s, s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:User",
                     "userName", mail, "displayName", display);
}

/* The canonical text and hash plan_compute would give a record without manager or members. */
static void record_of(json_t *rec, char **text, char hash[65])
{
    *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    record_hash(*text, hash);
}

static void put_state(const char *ext, int kind, const char *dn, const char *cloud_id,
                      const char *record, const char *hash)
{
    struct state_object o = {.external_id = (char *)ext,
                             .kind = kind,
                             .dn = (char *)dn,
                             .cloud_id = (char *)cloud_id,
                             .name = (char *)dn,
                             .hash = (char *)hash,
                             .record = (char *)record};
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
}

struct seen {
    char ops[32][64];
    int n;
};

static int collect(void *arg, const struct plan_item *it)
{
    struct seen *s = arg;
    snprintf(s->ops[s->n++], 64, "%s %s %s", plan_op_name(it->op), it->external_id,
             it->changed ? it->changed : "");
    return 0;
}

static bool has(struct seen *s, const char *line)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ops[i], line) == 0)
            return true;
    return false;
}

static void test_classification(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);

    json_t *a = user("a@x.com", "A");
    char *a_text, a_hash[65];
    record_of(a, &a_text, a_hash);
    json_t *b = user("b@x.com", "B old");
    char *b_text, b_hash[65];
    record_of(b, &b_text, b_hash);
    put_state("A", OBJECT_USER, "CN=A,DC=x", "cA", a_text, a_hash);
    put_state("B", OBJECT_USER, "CN=B,DC=x", "cB", b_text, b_hash);
    put_state("D", OBJECT_USER, "CN=D,DC=x", "cD", NULL, NULL);          /* left the scope */
    put_state("ADM", OBJECT_USER, "CN=Adm,DC=x", "cAdm", NULL, NULL);    /* left, but an admin */
    put_state("GONE", OBJECT_USER, "CN=Gone,DC=x", "cGone", NULL, NULL); /* deleted in the cloud */
    put_state("C1", OBJECT_CONTACT, "CN=C1,DC=x", "cC1", NULL, NULL);    /* contacts disabled */

    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cA", "a@x.com", "A", false, "W/\"1\"", NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cB", "b@x.com", "B", false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cD", "d@x.com", "D", false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cAdm", "adm@x.com", "ADM", true, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cHand", "Hand@X.com", NULL, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cOther", "other@x.com", "ZZZ", false, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cLost", "lost@x.com", "LOST", false, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_CONTACT, "cC1", "c1@x.com", "C1", false, NULL, NULL),
                     DIRCONN_OK);

    json_t *b2 = user("b@x.com", "B new");
    json_t *e = user("e@x.com", "E");
    json_t *h = user("hand@x.com", "Hand");
    json_t *o = user("other@x.com", "Other");
    json_t *l = user("lost@x.com", "Lost");
    json_t *dup1 = user("dup@x.com", "Dup1");
    json_t *dup2 = user("DUP@x.com", "Dup2");
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "A", "CN=A,DC=x", "a@x.com", a, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "A", "CN=A,DC=x", "a@x.com", a, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "B", "CN=B,DC=x", "b@x.com", b2, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "E", "CN=E,DC=x", "e@x.com", e, "cn=a,dc=x", NULL,
                                  0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "H", "CN=H,DC=x", "hand@x.com", h, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "O", "CN=O,DC=x", "other@x.com", o, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "LOST", "CN=L,DC=x", "lost@x.com", l, NULL, NULL,
                                  0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "S", "CN=S,DC=x", NULL, NULL, NULL, NULL, 0,
                                  "The required attribute mail is missing", NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "DUP1", "CN=Dup1,DC=x", "dup@x.com", dup1, NULL,
                                  NULL, 0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_CONTACT, "DUP2", "CN=Dup2,DC=x", "DUP@x.com", dup2,
                                  NULL, NULL, 0, NULL, NULL),
                     DIRCONN_OK);
    char *members[] = {"CN=E,DC=x", "cn=a,dc=x", "CN=S,DC=x", "CN=Outside,DC=x"};
    json_t *g = json_pack("{s:[s], s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                          "displayName", "G");
    assert_int_equal(
        plan_add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", g, NULL, members, 4, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_warning(p, "CN=E,DC=x", "invalid +", NULL), DIRCONN_OK);

    assert_int_equal(plan_compute(p, (1u << OBJECT_USER) | (1u << OBJECT_GROUP), NULL), DIRCONN_OK);
    struct seen s = {0};
    assert_int_equal(plan_foreach(p, -1, -1, collect, &s, NULL), DIRCONN_OK);
    assert_true(has(&s, "match A "));
    assert_true(has(&s, "update B displayName"));
    assert_true(has(&s, "add E "));
    assert_true(has(&s, "update H displayName,schemas,userName")); /* adopted, no old record */
    assert_true(has(&s, "conflict O ")); /* the cloud user has another externalId */
    assert_true(has(&s, "update LOST displayName,schemas,userName")); /* ours, unacknowledged */
    assert_true(has(&s, "skip S "));
    assert_true(has(&s, "conflict DUP1 "));
    assert_true(has(&s, "conflict DUP2 "));
    assert_true(has(&s, "add G "));
    assert_true(has(&s, "delete D "));
    assert_true(has(&s, "protected ADM "));
    assert_true(has(&s, "forget GONE "));
    assert_false(has(&s, "delete C1 ")); /* contacts are disabled: untouched */
    const struct plan_summary *sum = plan_get_summary(p);
    assert_int_equal(sum->count[PLAN_ADD], 2);
    assert_int_equal(sum->count[PLAN_UPDATE], 3);
    assert_int_equal(sum->count[PLAN_MATCH], 1);
    assert_int_equal(sum->deletes, 1);
    assert_int_equal(sum->deleted_by_kind[OBJECT_USER], 1);
    assert_int_equal(sum->count[PLAN_PROTECTED], 1);
    assert_int_equal(sum->warnings, 1);

    /* The report: JSON by extension, CSV by extension, anything else refused. */
    char path[128];
    snprintf(path, sizeof(path), "%s/r.json", dir);
    assert_int_equal(plan_write_report(p, path, false, NULL), DIRCONN_OK);
    json_error_t jerr;
    json_t *rep = json_load_file(path, 0, &jerr);
    assert_non_null(rep);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rep, "summary"), "objectsAdded")), 2);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(rep, "objects"), "adminsNotDeleted")), 1);
    assert_int_equal(json_array_size(json_object_get(rep, "warnings")), 1);
    json_decref(rep);
    snprintf(path, sizeof(path), "%s/r.csv", dir);
    assert_int_equal(plan_write_report(p, path, false, NULL), DIRCONN_OK);
    FILE *fp = fopen(path, "r");
    char line[512];
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_string_equal(
        line, "\"category\",\"kind\",\"dn\",\"name\",\"externalId\",\"cloudId\",\"details\"\r\n");
    fclose(fp);
    snprintf(path, sizeof(path), "%s/r.txt", dir);
    assert_int_equal(plan_write_report(p, path, false, NULL), DIRCONN_EUSAGE);

    json_decref(a);
    json_decref(b);
    json_decref(b2);
    json_decref(e);
    json_decref(h);
    json_decref(o);
    json_decref(l);
    json_decref(dup1);
    json_decref(dup2);
    json_decref(g);
    free(a_text);
    free(b_text);
    plan_free(p);
}

static int find_group(void *arg, const struct plan_item *it)
{
    if (strcmp(it->external_id, "G") == 0)
        *(char **)arg = strdup(it->record);
    return 0;
}

static int resolve_group(void *arg, const struct plan_item *it)
{
    struct plan *p = arg;
    if (strcmp(it->external_id, "G") != 0)
        return 0;
    long unresolved = 0;
    json_t *r = plan_resolve(p, it, PLAN_MEMBERS_ALL, &unresolved);
    assert_non_null(r);
    assert_null(json_object_get(r, PLAN_KEY_MEMBERS));
    assert_int_equal(json_array_size(json_object_get(r, "members")), 1); /* only E has a cloud id */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "members"), 0), "value")),
                        "cE");
    assert_int_equal(unresolved, 1);
    json_decref(r);
    json_t *add = NULL, *rem = NULL;
    assert_int_equal(plan_member_changes(p, it, &add, &rem, NULL), DIRCONN_OK);
    assert_int_equal(json_array_size(add), 1);
    assert_int_equal(json_array_size(rem), 0);
    json_decref(add);
    json_decref(rem);
    return 0;
}

/* Add group G (CN=G,DC=x) with n member DNs to p, compute the plan and return G's planned
 * record (the caller frees it). */
static char *group_record(struct plan *p, char **members, size_t n)
{
    json_t *g = json_pack("{s:[s], s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                          "displayName", "G");
    plan_add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", g, NULL, members, n, NULL, NULL);
    json_decref(g);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    char *rec = NULL;
    plan_foreach(p, -1, -1, find_group, &rec, NULL);
    assert_non_null(rec);
    return rec;
}

static void test_members_and_managers(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    json_t *a = user("a@x.com", "A");
    json_t *e = user("e@x.com", "E");
    char *members[] = {"CN=E,DC=x", "cn=a,dc=x", "CN=Outside,DC=x"};
    plan_add_dir(p, OBJECT_USER, "A", "CN=A,DC=x", "a@x.com", a, NULL, NULL, 0, NULL, NULL);
    plan_add_dir(p, OBJECT_USER, "E", "CN=E,DC=x", "e@x.com", e, "CN=A,DC=x", NULL, 0, NULL, NULL);
    char *rec = group_record(p, members, 3);
    assert_non_null(strstr(rec, "\"dirconn:members\":[\"A\",\"E\"]"));
    free(rec);
    put_state("E", OBJECT_USER, "CN=E,DC=x", "cE", NULL, NULL);
    plan_foreach(p, -1, -1, resolve_group, p, NULL);
    json_decref(a);
    json_decref(e);
    plan_free(p);
}

/* A group's member DNs go through the plan as JSON text written one value at a time, into a
 * buffer sized from the DNs' lengths. A DN with quotes (each escaped in JSON) may take the room
 * estimated for the DNs after it, by any amount: from none to more than all of it (the buffer
 * grows). Each member is still named, and a DN that is not UTF-8 is left out, not the list. */
static void test_member_text_escapes(void **state)
{
    (void)state;
    for (int quotes = 0; quotes <= 40; quotes++) {
        struct plan *p = NULL;
        assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
        char qdn[64] = "CN=";
        for (int i = 0; i < quotes; i++)
            strcat(qdn, "\"");
        strcat(qdn, ",DC=x");
        json_t *q = user("q@x.com", "Q");
        json_t *b = user("b@x.com", "B");
        char *members[] = {qdn, "CN=\xff\xfe,DC=x", "CN=B,DC=x"};
        plan_add_dir(p, OBJECT_USER, "Q", qdn, "q@x.com", q, NULL, NULL, 0, NULL, NULL);
        plan_add_dir(p, OBJECT_USER, "B", "CN=B,DC=x", "b@x.com", b, NULL, NULL, 0, NULL, NULL);
        char *rec = group_record(p, members, 3);
        assert_non_null(strstr(rec, "\"dirconn:members\":[\"B\",\"Q\"]"));
        free(rec);
        json_decref(q);
        json_decref(b);
        plan_free(p);
    }
}

/* The planned record of the user with externalId arg->ext (struct find_user). */
struct find_user {
    const char *ext;
    char *record;
};

static int find_user(void *arg, const struct plan_item *it)
{
    struct find_user *f = arg;
    if (strcmp(it->external_id, f->ext) == 0)
        f->record = strdup(it->record);
    return 0;
}

/* rec is the canonical dump (compact, keys sorted) of what it holds. */
static void assert_canonical(const char *rec)
{
    json_error_t jerr;
    json_t *j = json_loads(rec, 0, &jerr);
    assert_non_null(j);
    char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(rec, again);
    free(again);
    json_decref(j);
}

/*
 * The link keys of a record are the canonical JSON of the externalIds (the
 * record's hash is over its text): members sorted, each once however many
 * DNs name it, with the escapes jansson writes (quote, backslash, a control
 * character; non-ASCII as it is); a manager beside them; a group whose
 * members are all out of scope keeps an empty list.
 */
static void test_links_canonical(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    static const char *const ext[] = {"Z\"q", "a\\b", "\xc3\xa9t\xc3\xa9", "t\tab"};
    static const char *const dns[] = {"CN=Z,DC=x", "CN=AB,DC=x", "CN=E,DC=x", "CN=T,DC=x"};
    for (int i = 0; i < 4; i++) {
        char mail[32];
        snprintf(mail, sizeof(mail), "u%d@x.com", i);
        json_t *u = user(mail, "U");
        plan_add_dir(p, OBJECT_USER, ext[i], dns[i], mail, u, i == 3 ? dns[0] : NULL, NULL, 0, NULL,
                     NULL);
        json_decref(u);
    }
    json_t *h = json_pack("{s:[s], s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                          "displayName", "H");
    char *out_of_scope[] = {"CN=Nobody,DC=x"};
    plan_add_dir(p, OBJECT_GROUP, "H", "CN=H,DC=x", "H", h, NULL, out_of_scope, 1, NULL, NULL);
    json_decref(h);
    char *members[] = {"CN=T,DC=x", "cn=z,dc=x",  "CN=E,DC=x",
                       "CN=Z,DC=x", "CN=AB,DC=x", "CN=Nobody,DC=x"};
    char *rec = group_record(p, members, 6);
    assert_canonical(rec);
    json_error_t jerr;
    json_t *g = json_loads(rec, 0, &jerr);
    json_t *want = json_pack("[s,s,s,s]", "Z\"q", "a\\b", "t\tab", "\xc3\xa9t\xc3\xa9");
    assert_true(json_equal(json_object_get(g, PLAN_KEY_MEMBERS), want));
    json_decref(want);
    json_decref(g);
    free(rec);
    struct find_user f = {"t\tab", NULL};
    plan_foreach(p, -1, -1, find_user, &f, NULL);
    assert_non_null(f.record);
    assert_canonical(f.record);
    assert_non_null(strstr(f.record, "\"" PLAN_KEY_MANAGER "\":\"Z\\\"q\""));
    free(f.record);
    f = (struct find_user){"H", NULL};
    plan_foreach(p, -1, -1, find_user, &f, NULL);
    assert_non_null(f.record);
    assert_canonical(f.record);
    assert_non_null(strstr(f.record, "\"" PLAN_KEY_MEMBERS "\":[]"));
    free(f.record);
    plan_free(p);
}

/*
 * A partial (incremental) plan: only the objects given are classified, the
 * state's others are left alone, deletions are explicit, and members that
 * were not read in this run resolve through the state, whatever the DN's
 * spelling (escapes, case).
 */
static void test_partial(void **state)
{
    (void)state;
    json_t *a = user("a@x.com", "A");
    json_t *b = user("b@x.com", "B");
    char *ta = NULL, *tb = NULL;
    char ha[65], hb[65];
    record_of(a, &ta, ha);
    record_of(b, &tb, hb);
    put_state("A", OBJECT_USER, "cn=Doe\\2C A,dc=x", "cA", ta, ha);
    put_state("B", OBJECT_USER, "CN=B,DC=x", "cB", tb, hb);
    put_state("C", OBJECT_USER, "CN=C,DC=x", "cC", tb, hb);
    put_state("D", OBJECT_USER, "CN=D,DC=x", "cD", tb, hb);
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_set_partial(p);
    for (const char *const *id = (const char *const[]){"cA", "cB", "cC", "cD", NULL}; *id; id++)
        plan_add_cloud(p, OBJECT_USER, *id, "x", NULL, false, NULL, NULL);
    json_t *b2 = user("b@x.com", "B changed");
    json_t *g = json_pack("{s:[s], s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                          "displayName", "G");
    char *members[] = {"CN=Doe\\, A,DC=x", "CN=B,DC=x", "CN=C,DC=x"};
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "B", "CN=B,DC=x", "b@x.com", b2, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", g, NULL, members, 3, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_gone(p, "C", NULL), DIRCONN_OK);
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    struct seen s = {0};
    plan_foreach(p, -1, -1, collect, &s, NULL);
    assert_true(has(&s, "update B displayName"));
    assert_true(has(&s, "add G "));
    assert_true(has(&s, "delete C "));
    assert_int_equal(s.n, 3); /* A and D are not touched, D is not deleted */
    char *rec = NULL;
    plan_foreach(p, -1, -1, find_group, &rec, NULL);
    assert_non_null(rec);
    /* A resolves through the state (its DN spelled differently), C is being deleted */
    assert_non_null(strstr(rec, "\"dirconn:members\":[\"A\",\"B\"]"));
    free(rec);
    plan_free(p);
    free(ta);
    free(tb);
    json_decref(a);
    json_decref(b);
    json_decref(b2);
    json_decref(g);
}

/* A match whose cloud copy was edited becomes an update flagged drift (plan_mark_drift). */
static int drift_of(void *arg, const struct plan_item *it)
{
    struct plan_item *out = arg;
    out->op = it->op;
    out->drift = it->drift;
    out->changed = it->changed != NULL && strcmp(it->changed, "drift") == 0 ? "drift" : NULL;
    out->record = it->record != NULL ? "set" : NULL;
    return 0;
}

static void test_drift(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    json_t *a = user("drift@x.com", "Drift");
    char *a_text, a_hash[65];
    record_of(a, &a_text, a_hash);
    put_state("DR", OBJECT_USER, "CN=Drift,DC=x", "cDR", a_text, a_hash);
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cOTHER", "other@x.com", "OT", false, NULL, NULL),
        DIRCONN_OK);
    assert_null(plan_cloud_projection(p, OBJECT_USER, "cOTHER"));
    assert_int_equal(plan_add_cloud_projected(p, OBJECT_USER, "cDR", "drift@x.com", "DR", false,
                                              NULL, "abc", NULL),
                     DIRCONN_OK);
    char *proj = plan_cloud_projection(p, OBJECT_USER, "cDR");
    assert_string_equal(proj, "abc");
    free(proj);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "DR", "CN=Drift,DC=x", "drift@x.com", a, NULL,
                                  NULL, 0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 1);
    assert_int_equal(plan_mark_drift(p, "DR", a_text, NULL), DIRCONN_OK);
    /* a second mark finds no match: counted once */
    assert_int_equal(plan_mark_drift(p, "DR", a_text, NULL), DIRCONN_OK);
    const struct plan_summary *sum = plan_get_summary(p);
    assert_int_equal(sum->count[PLAN_MATCH], 0);
    assert_int_equal(sum->count[PLAN_UPDATE], 1);
    assert_int_equal(sum->drift, 1);
    struct plan_item it = {0};
    assert_int_equal(plan_foreach(p, PLAN_UPDATE, OBJECT_USER, drift_of, &it, NULL), DIRCONN_OK);
    assert_int_equal(it.op, PLAN_UPDATE);
    assert_true(it.drift);
    assert_non_null(it.changed);
    assert_non_null(it.record);
    json_decref(a);
    free(a_text);
    plan_free(p);
}

/* What a walk's items would leave in the state once acknowledged, as cloud id "c<externalId>". */
struct acked {
    char *text[3];
    int n;
};

static int ack(void *arg, const struct plan_item *it)
{
    struct acked *a = arg;
    char cid[16];
    snprintf(cid, sizeof(cid), "c%s", it->external_id);
    put_state(it->external_id, it->kind, it->dn, cid, it->record, it->hash);
    a->text[a->n++] = strdup(it->record);
    return 0;
}

static int depth_of(void *arg, const struct plan_item *it)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 128 - len, "%s%s=%d", len > 0 ? "," : "", it->external_id, it->depth);
    return 0;
}

/* Users are applied down the management chain (depth): a manager added before its reports.
 * A plan that adds or updates no user leaves every depth at 0: nothing waits for a creation,
 * and a match the drift check turns into an update keeps 0. */
static void test_management_depth(void **state)
{
    (void)state;
    json_t *m = user("m@x.com", "M"), *r = user("r@x.com", "R"), *q = user("q@x.com", "Q");
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "R", "CN=R,DC=x", "r@x.com", r, "CN=M,DC=x", NULL, 0, NULL, NULL);
    plan_add_dir(p, OBJECT_USER, "Q", "CN=Q,DC=x", "q@x.com", q, "CN=R,DC=x", NULL, 0, NULL, NULL);
    plan_add_dir(p, OBJECT_USER, "M", "CN=M,DC=x", "m@x.com", m, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    char got[128] = "";
    assert_int_equal(plan_foreach(p, PLAN_ADD, OBJECT_USER, depth_of, got, NULL), DIRCONN_OK);
    assert_string_equal(got, "M=0,R=1,Q=2");
    /* the state acknowledged all three, and the cloud has them: matches only */
    struct acked acked = {0};
    assert_int_equal(plan_foreach(p, PLAN_ADD, OBJECT_USER, ack, &acked, NULL), DIRCONN_OK);
    assert_int_equal(acked.n, 3);
    const char *cids[3] = {"cM", "cR", "cQ"}, *mails[3] = {"m@x.com", "r@x.com", "q@x.com"};
    const char *ids[3] = {"M", "R", "Q"};
    plan_free(p);
    p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            plan_add_cloud(p, OBJECT_USER, cids[i], mails[i], ids[i], false, NULL, NULL),
            DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "R", "CN=R,DC=x", "r@x.com", r, "CN=M,DC=x", NULL, 0, NULL, NULL);
    plan_add_dir(p, OBJECT_USER, "Q", "CN=Q,DC=x", "q@x.com", q, "CN=R,DC=x", NULL, 0, NULL, NULL);
    plan_add_dir(p, OBJECT_USER, "M", "CN=M,DC=x", "m@x.com", m, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 3);
    assert_int_equal(plan_mark_drift(p, "Q", acked.text[2], NULL), DIRCONN_OK);
    got[0] = '\0';
    assert_int_equal(plan_foreach(p, -1, OBJECT_USER, depth_of, got, NULL), DIRCONN_OK);
    assert_string_equal(got, "M=0,Q=0,R=0");
    for (int i = 0; i < 3; i++)
        free(acked.text[i]);
    json_decref(m);
    json_decref(r);
    json_decref(q);
    plan_free(p);
}

/* A match whose DN changed in the scope (moved, renamed) gives the state its new DN; the
 * others are left as they are. */
static void test_moved_match(void **state)
{
    (void)state;
    json_t *a = user("mv@x.com", "MV"), *b = user("st@x.com", "ST");
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "MV", "CN=Old,OU=A,DC=x", "mv@x.com", a, NULL, NULL, 0, NULL,
                 NULL);
    plan_add_dir(p, OBJECT_USER, "ST", "CN=Stays,DC=x", "st@x.com", b, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    struct acked acked = {0};
    assert_int_equal(plan_foreach(p, PLAN_ADD, OBJECT_USER, ack, &acked, NULL), DIRCONN_OK);
    assert_int_equal(acked.n, 2);
    plan_free(p);
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cMV", "mv@x.com", "MV", false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cST", "st@x.com", "ST", false, NULL, NULL),
                     DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "MV", "CN=New,OU=B,DC=x", "mv@x.com", a, NULL, NULL, 0, NULL,
                 NULL);
    plan_add_dir(p, OBJECT_USER, "ST", "CN=Stays,DC=x", "st@x.com", b, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 2);
    assert_int_equal(state_plan_save_moves(st, NULL), DIRCONN_OK);
    struct state_object o = {0};
    bool found = false;
    assert_int_equal(state_object_get(st, "MV", &o, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(o.dn, "CN=New,OU=B,DC=x");
    state_object_clear(&o);
    assert_int_equal(state_object_get(st, "ST", &o, &found, NULL), DIRCONN_OK);
    assert_string_equal(o.dn, "CN=Stays,DC=x");
    state_object_clear(&o);
    for (int i = 0; i < acked.n; i++)
        free(acked.text[i]);
    json_decref(a);
    json_decref(b);
    plan_free(p);
}

/* The ids of the items a walk met, joined by commas. */
static int ids_of(void *arg, const struct plan_item *it)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 128 - len, "%s%s", len > 0 ? "," : "", it->external_id);
    return 0;
}

/* plan_discard leaves the tables to state_close; a plan_new before that starts from empty ones,
 * and the state closes and opens again. */
static void test_discard(void **state)
{
    (void)state;
    json_t *a = user("d1@x.com", "D1"), *b = user("d2@x.com", "D2");
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "D1", "CN=D1,DC=x", "d1@x.com", a, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], 1);
    plan_discard(p);
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_add_dir(p, OBJECT_USER, "D2", "CN=D2,DC=x", "d2@x.com", b, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    char got[128] = "";
    assert_int_equal(plan_foreach(p, -1, -1, ids_of, got, NULL), DIRCONN_OK);
    assert_string_equal(got, "D2");
    plan_discard(p);
    plan_discard(NULL);
    state_close(st);
    st = NULL;
    assert_int_equal(state_open(dir, &st, NULL), DIRCONN_OK);
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], 0);
    plan_free(p);
    json_decref(a);
    json_decref(b);
}

/* plan_foreach_projected walks only the items whose cloud copy has a projection. */
static void test_foreach_projected(void **state)
{
    (void)state;
    for (int with = 0; with < 2; with++) {
        struct plan *p = NULL;
        assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
        const char *ids[] = {"P1", "P2", "P3"};
        json_t *u[3];
        for (int i = 0; i < 3; i++) {
            char mail[32], cid[8], dn[32];
            snprintf(mail, sizeof(mail), "p%d@x.com", i + 1);
            snprintf(cid, sizeof(cid), "c%d", i + 1);
            snprintf(dn, sizeof(dn), "CN=P%d,DC=x", i + 1);
            u[i] = user(mail, ids[i]);
            char *text, hash[65];
            record_of(u[i], &text, hash);
            put_state(ids[i], OBJECT_USER, dn, cid, text, hash);
            free(text);
            /* with: the second one's copy has a projection (its version was not the one known) */
            assert_int_equal(plan_add_cloud_projected(p, OBJECT_USER, cid, mail, ids[i], false,
                                                      NULL, with && i == 1 ? "abc" : NULL, NULL),
                             DIRCONN_OK);
            assert_int_equal(
                plan_add_dir(p, OBJECT_USER, ids[i], dn, mail, u[i], NULL, NULL, 0, NULL, NULL),
                DIRCONN_OK);
        }
        assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
        assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 3);
        char walked[128] = "";
        assert_int_equal(plan_foreach_projected(p, PLAN_MATCH, ids_of, walked, NULL), DIRCONN_OK);
        assert_string_equal(walked, with ? "P2" : "");
        for (int i = 0; i < 3; i++)
            json_decref(u[i]);
        plan_free(p);
    }
}

/*
 * The plan's answers do not depend on the locale: matching a cloud user by mail ignores ASCII
 * case only, DNs name members the same way, and the order of the plan is the same, whether the
 * process runs in the C locale (dirconn never calls setlocale) or a program around it set a
 * UTF-8 locale. One plan per locale over a fresh state, compared item by item.
 */
static void plan_in_locale(struct seen *s, char **group)
{
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    /* the cloud: an accented mail in lower case, an ASCII mail in upper case */
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "c1", "\xc3\xa1ngel@x.com", NULL, false, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "c2", "BOB@X.COM", NULL, false, NULL, NULL),
                     DIRCONN_OK);
    json_t *u1 = user("\xc3\x81ngel@x.com", "\xc3\x81ngel");
    json_t *u2 = user("bob@x.com", "Bob");
    json_t *u3 = user("\xc3\xa9mile@x.com", "\xc3\x89mile");
    json_t *g = json_pack("{s:[s], s:s}", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group",
                          "displayName", "G");
    /* the group names its members in another case than their entries */
    char *members[] = {"cn=\xc3\xa9mile,dc=x", "CN=BOB,DC=X", "cn=\xc3\xa1ngel,dc=x"};
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "U1", "CN=\xc3\x81ngel,DC=x",
                                  "\xc3\x81ngel@x.com", u1, NULL, NULL, 0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "U2", "CN=Bob,DC=x", "bob@x.com", u2, NULL, NULL,
                                  0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_dir(p, OBJECT_USER, "U3", "CN=\xc3\x89mile,DC=x",
                                  "\xc3\xa9mile@x.com", u3, NULL, NULL, 0, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", g, NULL, members, 3, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_compute(p, (1u << OBJECT_USER) | (1u << OBJECT_GROUP), NULL), DIRCONN_OK);
    assert_int_equal(plan_foreach(p, -1, -1, collect, s, NULL), DIRCONN_OK);
    *group = NULL;
    assert_int_equal(plan_foreach(p, -1, -1, find_group, group, NULL), DIRCONN_OK);
    assert_non_null(*group);
    json_decref(u1);
    json_decref(u2);
    json_decref(u3);
    json_decref(g);
    plan_free(p);
}

static void test_locale_independent(void **state)
{
    struct seen in_c = {0}, in_utf8 = {0};
    char *group_c = NULL, *group_utf8 = NULL;
    assert_non_null(setlocale(LC_ALL, "C"));
    plan_in_locale(&in_c, &group_c);
    /* the ASCII case of a mail is ignored; an accented letter's case is not folded */
    assert_true(has(&in_c, "update U2 displayName,schemas,userName")); /* adopted by mail */
    assert_true(has(&in_c, "add U1 "));
    assert_true(has(&in_c, "add U3 "));
    /* members by DN in any ASCII case; an accented letter must be spelled as in the entry */
    assert_non_null(strstr(group_c, "\"dirconn:members\":[\"U2\"]"));

    assert_int_equal(teardown(state), 0);
    assert_int_equal(setup(state), 0);
    if (setlocale(LC_ALL, "C.UTF-8") == NULL && setlocale(LC_ALL, "C.utf8") == NULL) {
        free(group_c);
        skip(); /* no UTF-8 locale on this system: nothing to compare with */
    }
    plan_in_locale(&in_utf8, &group_utf8);
    setlocale(LC_ALL, "C");
    assert_int_equal(in_utf8.n, in_c.n);
    for (int i = 0; i < in_c.n; i++)
        assert_string_equal(in_utf8.ops[i], in_c.ops[i]);
    assert_string_equal(group_utf8, group_c);
    free(group_c);
    free(group_utf8);
}

/* A callback that records its own error and stops the walk. */
struct stop_at {
    int left;
    struct dirconn_error *err;
};

static int stop_with_own_error(void *arg, const struct plan_item *it)
{
    (void)it;
    struct stop_at *s = arg;
    if (--s->left > 0)
        return 0;
    dirconn_error_set(s->err, DIRCONN_ECLOUD_CONNECT, "POST https://cloud/Users: refused (curl 7)");
    return 1;
}

static int stop_silently(void *arg, const struct plan_item *it)
{
    (void)arg;
    (void)it;
    return 1;
}

/* A walk stopped by its callback returns the callback's error, code and message; a silent stop
 * gets the walk's own; an error left in err before the walk is not taken for the callback's. */
static void test_walk_keeps_the_callback_error(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    json_t *ua = user("a@x.com", "A"), *ub = user("b@x.com", "B");
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "A", "CN=A,DC=x", "a@x.com", ua, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, "B", "CN=B,DC=x", "b@x.com", ub, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    json_decref(ua);
    json_decref(ub);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    struct dirconn_error err = {0};
    struct stop_at at = {2, &err};
    assert_int_equal(plan_foreach(p, -1, -1, stop_with_own_error, &at, &err),
                     DIRCONN_ECLOUD_CONNECT);
    assert_int_equal(err.code, DIRCONN_ECLOUD_CONNECT);
    assert_string_equal(err.msg, "POST https://cloud/Users: refused (curl 7)");
    /* err still holds that error: a silent stop is not mistaken for it */
    assert_int_equal(plan_foreach(p, -1, -1, stop_silently, NULL, &err), DIRCONN_EFAIL);
    assert_string_equal(err.msg, "plan walk stopped");
    struct stop_at at2 = {1, &err};
    assert_int_equal(plan_item_get(p, "B", stop_with_own_error, &at2, &err),
                     DIRCONN_ECLOUD_CONNECT);
    assert_string_equal(err.msg, "POST https://cloud/Users: refused (curl 7)");
    plan_free(p);
}

/* The externalIds of this directory, for plan_adopt_cloud: GUID strings (36 characters). */
static bool guid_form(void *arg, enum object_kind kind, const char *ext)
{
    (void)arg;
    (void)kind;
    return strlen(ext) == 36;
}

#define G1 "11111111-1111-1111-1111-111111111111"
#define G2 "22222222-2222-2222-2222-222222222222"
#define G3 "33333333-3333-3333-3333-333333333333"
#define G4 "44444444-4444-4444-4444-444444444444"

static int item_of(void *arg, const struct plan_item *it)
{
    struct plan_item *out = arg;
    *out = *it;
    out->record = it->record != NULL ? strdup(it->record) : NULL;
    out->external_id = strdup(it->external_id);
    out->cloud_id = out->dn = out->name = out->old_record = out->hash = NULL;
    out->version = out->changed = out->message = NULL;
    return 0;
}

/*
 * The group owns what any member created: with an empty object map (another
 * instance created everything), the cloud objects with this directory's
 * externalIds are adopted: in scope they are compared, out of scope they are
 * deleted (an administrator is protected); a cloud user made by hand and one
 * with another externalId form are never touched.
 */
static void test_adopt_cloud(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    json_t *a = user("a@x.com", "A");
    json_t *b = user("b@x.com", "B");
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cA", "a@x.com", G1, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cB", "b@x.com", G4, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cOrphan", "Orphan@x.com", G2, false, NULL, NULL),
        DIRCONN_OK);
    /* the same externalId twice in the cloud: only the first is managed */
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cOrphan2", "orphan2@x.com", G2, false, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cAdm", "adm@x.com", G3, true, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cHand", "hand@x.com", NULL, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_cloud(p, OBJECT_USER, "cHR", "hr@x.com", "hr-0042", false, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_GROUP, "cG", "G",
                                    "55555555-5555-5555-5555-555555555555", false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, G1, "CN=A,DC=x", "a@x.com", a, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, G4, "CN=B,DC=x", "b@x.com", b, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);

    long n = -1;
    assert_int_equal(plan_adopt_cloud(p, 1u << OBJECT_USER, guid_form, NULL, &n, NULL), DIRCONN_OK);
    assert_int_equal(n, 4); /* G1, G4 (in scope), G2 (once), G3; not the group (disabled) */
    assert_int_equal(state_object_count(st, -1), 4);
    struct state_object o = {0};
    bool found = false;
    assert_int_equal(state_object_get(st, G2, &o, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(o.cloud_id, "cOrphan");
    assert_string_equal(o.name, "Orphan@x.com");
    assert_int_equal(o.origin, STATE_ORIGIN_CREATED);
    assert_null(o.record);
    state_object_clear(&o);
    assert_int_equal(state_object_get(st, G1, &o, &found, NULL), DIRCONN_OK);
    assert_string_equal(o.dn, "CN=A,DC=x");
    state_object_clear(&o);
    /* adopting again finds nothing new */
    assert_int_equal(plan_adopt_cloud(p, 1u << OBJECT_USER, guid_form, NULL, &n, NULL), DIRCONN_OK);
    assert_int_equal(n, 0);

    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    struct seen s = {0};
    assert_int_equal(plan_foreach(p, -1, -1, collect, &s, NULL), DIRCONN_OK);
    assert_int_equal(s.n, 4);
    /* (the changed attributes are cut at 64 characters by collect) */
    assert_true(has(&s, "update " G1 " displayName,schemas"));
    assert_true(has(&s, "update " G4 " displayName,schemas"));
    assert_true(has(&s, "delete " G2 " "));
    assert_true(has(&s, "protected " G3 " "));
    const struct plan_summary *sum = plan_get_summary(p);
    assert_int_equal(sum->deletes, 1);

    /* G1's cloud copy is what the directory says; G4's is not */
    assert_int_equal(plan_mark_verified(p, G1, true, NULL), DIRCONN_OK);
    assert_int_equal(plan_mark_verified(p, G4, false, NULL), DIRCONN_OK);
    assert_int_equal(sum->count[PLAN_MATCH], 1);
    assert_int_equal(sum->count[PLAN_UPDATE], 1);
    assert_int_equal(sum->drift, 0);
    struct plan_item it = {0};
    assert_int_equal(plan_foreach(p, PLAN_MATCH, OBJECT_USER, item_of, &it, NULL), DIRCONN_OK);
    assert_string_equal(it.external_id, G1);
    assert_non_null(it.record);
    char *a_text, a_hash[65];
    record_of(a, &a_text, a_hash);
    assert_string_equal(it.record, a_text);
    free((char *)it.record);
    free((char *)it.external_id);
    assert_int_equal(plan_foreach(p, PLAN_UPDATE, OBJECT_USER, item_of, &it, NULL), DIRCONN_OK);
    assert_string_equal(it.external_id, G4);
    assert_true(it.drift);
    free((char *)it.record);
    free((char *)it.external_id);

    assert_int_equal(plan_save_verified(p, NULL), DIRCONN_OK);
    assert_int_equal(state_object_get(st, G1, &o, &found, NULL), DIRCONN_OK);
    assert_string_equal(o.record, a_text);
    assert_string_equal(o.hash, a_hash);
    state_object_clear(&o);
    assert_int_equal(state_object_get(st, G4, &o, &found, NULL), DIRCONN_OK);
    assert_null(o.record); /* written by apply when acknowledged, not here */
    state_object_clear(&o);
    plan_free(p);

    /* The next plan of the same directory: G1 matches through the state, nothing to compare. */
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "cA", "a@x.com", G1, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(
        plan_add_dir(p, OBJECT_USER, G1, "CN=A,DC=x", "a@x.com", a, NULL, NULL, 0, NULL, NULL),
        DIRCONN_OK);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    memset(&s, 0, sizeof(s));
    assert_int_equal(plan_foreach(p, PLAN_MATCH, -1, collect, &s, NULL), DIRCONN_OK);
    assert_true(has(&s, "match " G1 " "));
    free(a_text);
    json_decref(a);
    json_decref(b);
    plan_free(p);
}

/* A resolver that knows no DN (the directory has none of them), counting its calls. */
static int resolver_calls;
static char *resolve_none(void *arg, const char *dn)
{
    (void)arg;
    (void)dn;
    resolver_calls++;
    return NULL;
}

/*
 * plan_resolve_links resolves the members through the state before the plan does, and the
 * plan takes what it found (link_memo); an object recorded gone after that (an RFC 4533
 * present phase runs after the links are resolved) is not a member for all that.
 */
static void test_partial_links_then_gone(void **state)
{
    (void)state;
    json_t *a = user("a@x.com", "A");
    char *ta = NULL;
    char ha[65];
    record_of(a, &ta, ha);
    put_state("A", OBJECT_USER, "CN=A,DC=x", "cA", ta, ha);
    put_state("C", OBJECT_USER, "CN=C,DC=x", "cC", ta, ha);
    for (int gone_after = 0; gone_after < 2; gone_after++) {
        struct plan *p = NULL;
        assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
        plan_set_partial(p);
        resolver_calls = 0;
        plan_set_resolver(p, resolve_none, NULL);
        json_t *g = json_pack("{s:[s], s:s}", "schemas",
                              "urn:ietf:params:scim:schemas:core:2.0:Group", "displayName", "G");
        char *members[] = {"CN=A,DC=x", "cn=c,dc=x", "CN=Nobody,DC=x"};
        assert_int_equal(
            plan_add_dir(p, OBJECT_GROUP, "G", "CN=G,DC=x", "G", g, NULL, members, 3, NULL, NULL),
            DIRCONN_OK);
        assert_int_equal(plan_resolve_links(p, NULL), DIRCONN_OK);
        assert_int_equal(resolver_calls, 1); /* only the DN the state does not know */
        if (gone_after)
            assert_int_equal(plan_add_gone(p, "C", NULL), DIRCONN_OK);
        assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
        char *rec = NULL;
        plan_foreach(p, -1, -1, find_group, &rec, NULL);
        assert_non_null(rec);
        assert_non_null(strstr(rec, gone_after ? "\"dirconn:members\":[\"A\"]"
                                               : "\"dirconn:members\":[\"A\",\"C\"]"));
        free(rec);
        plan_free(p);
        json_decref(g);
    }
    free(ta);
    json_decref(a);
}

/* A partial plan adopts only the objects it was given (changed or gone). */
static void test_adopt_cloud_partial(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    plan_set_partial(p);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "c1", "one@x.com", G1, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_cloud(p, OBJECT_USER, "c2", "two@x.com", G2, false, NULL, NULL),
                     DIRCONN_OK);
    assert_int_equal(plan_add_gone(p, G1, NULL), DIRCONN_OK);
    long n = -1;
    assert_int_equal(plan_adopt_cloud(p, 1u << OBJECT_USER, guid_form, NULL, &n, NULL), DIRCONN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(plan_compute(p, 1u << OBJECT_USER, NULL), DIRCONN_OK);
    struct seen s = {0};
    assert_int_equal(plan_foreach(p, -1, -1, collect, &s, NULL), DIRCONN_OK);
    assert_int_equal(s.n, 1);
    assert_true(has(&s, "delete " G1 " "));
    plan_free(p);
}

/*
 * plan_member_changes: the added and removed members by a merge of the two
 * sets, whatever their order and with repeated values; members without a
 * cloud id are left out. 20,000 members with one added and one removed (a
 * scan per member would make 4e8 comparisons).
 */
static bool has_string(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void test_member_changes(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    put_state("m1", 0, "CN=m1", "c1", NULL, NULL);
    put_state("m2", 0, "CN=m2", "c2", NULL, NULL);
    put_state("m3", 0, "CN=m3", "c3", NULL, NULL);
    put_state("m4", 0, "CN=m4", "c4", NULL, NULL);
    /* now {m4, m1, m3, m1, x} against was {m3, m2, m2, m4, y}: m1 added, m2 removed; x and y
     * have no cloud id */
    struct plan_item it = {
        .op = PLAN_UPDATE,
        .kind = OBJECT_GROUP,
        .external_id = "G",
        .record = "{\"" PLAN_KEY_MEMBERS "\":[\"m4\",\"m1\",\"m3\",\"m1\",\"x\"]}",
        .old_record = "{\"" PLAN_KEY_MEMBERS "\":[\"m3\",\"m2\",\"m2\",\"m4\",\"y\"]}"};
    json_t *add = NULL, *rem = NULL;
    assert_int_equal(plan_member_changes(p, &it, &add, &rem, NULL), DIRCONN_OK);
    assert_int_equal(json_array_size(add), 1);
    assert_string_equal(json_string_value(json_array_get(add, 0)), "c1");
    assert_int_equal(json_array_size(rem), 1);
    assert_string_equal(json_string_value(json_array_get(rem, 0)), "c2");
    json_decref(add);
    json_decref(rem);

    /* a big group: every member known, one joins (m1) and one leaves (m2) */
    enum { N = 20000 };
    json_t *now = json_array(), *was = json_array();
    for (int i = 0; i < N; i++) {
        char ext[32];
        snprintf(ext, sizeof(ext), "u%05d", i);
        json_array_append_new(now, json_string(ext));
        json_array_append_new(was, json_string(ext));
    }
    json_array_append_new(now, json_string("m1"));
    json_array_append_new(was, json_string("m2"));
    json_t *r1 = json_pack("{s:o}", PLAN_KEY_MEMBERS, now);
    json_t *r2 = json_pack("{s:o}", PLAN_KEY_MEMBERS, was);
    char *t1 = json_dumps(r1, JSON_COMPACT), *t2 = json_dumps(r2, JSON_COMPACT);
    it.record = t1;
    it.old_record = t2;
    assert_int_equal(plan_member_changes(p, &it, &add, &rem, NULL), DIRCONN_OK);
    assert_int_equal(json_array_size(add), 1);
    assert_true(has_string(add, "c1"));
    assert_int_equal(json_array_size(rem), 1);
    assert_true(has_string(rem, "c2"));
    json_decref(add);
    json_decref(rem);
    free(t1);
    free(t2);
    json_decref(r1);
    json_decref(r2);
    plan_free(p);
}

/*
 * plan_member_changes on a 100,000-member group against a reference diff by
 * hash set (jansson objects): 1,000 members join and 1,000 leave, some of
 * them without a cloud id, with repeated values, in sorted order (as a
 * record stores them) and shuffled. The results are the same sets; the
 * time of each diff is printed (the micro benchmark of docs/performance.md).
 */
static unsigned long lcg_next(unsigned long *x)
{
    *x = *x * 6364136223846793005UL + 1442695040888963407UL;
    return *x >> 33;
}

static void shuffle(json_t *a, unsigned long *seed)
{
    for (size_t i = json_array_size(a); i > 1; i--) {
        size_t j = lcg_next(seed) % i;
        json_t *x = json_incref(json_array_get(a, i - 1));
        json_array_set(a, i - 1, json_array_get(a, j));
        json_array_set_new(a, j, x);
    }
}

/* The cloud ids of the values of one set missing from the other (map: externalId -> cloud id). */
static json_t *reference_diff(json_t *from, json_t *other, json_t *map)
{
    json_t *in_other = json_object(), *out = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(other, i, v) json_object_set(in_other, json_string_value(v), json_true());
    json_array_foreach(from, i, v)
    {
        const char *ext = json_string_value(v);
        json_t *cid = json_object_get(map, ext);
        if (json_object_get(in_other, ext) == NULL && cid != NULL)
            json_object_set(out, json_string_value(cid), json_true());
    }
    json_decref(in_other);
    return out;
}

static void assert_same_set(json_t *got, json_t *want)
{
    assert_int_equal(json_array_size(got), json_object_size(want));
    size_t i;
    json_t *v;
    json_array_foreach(got, i, v) assert_non_null(json_object_get(want, json_string_value(v)));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_member_changes_100k(void **state)
{
    (void)state;
    enum { N = 100000, CHANGED = 1000 };
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    json_t *now = json_array(), *was = json_array(), *map = json_object();
    assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
    for (int i = 0; i < N; i++) {
        char ext[32], dn[48], cid[40];
        snprintf(ext, sizeof(ext), "u%06d", i);
        /* every 50th member changes: one in two joins, the other leaves; one in ten of them
         * has no cloud id */
        bool changed = i % (N / (2 * CHANGED)) == 0;
        bool joins = changed && (i / (N / (2 * CHANGED))) % 2 == 0;
        if (!changed || joins)
            json_array_append_new(now, json_string(ext));
        if (!changed || !joins)
            json_array_append_new(was, json_string(ext));
        if (changed && (i / (N / (2 * CHANGED))) % 10 != 0) {
            snprintf(dn, sizeof(dn), "CN=%s", ext);
            snprintf(cid, sizeof(cid), "c%s", ext);
            put_state(ext, 0, dn, cid, NULL, NULL);
            json_object_set_new(map, ext, json_string(cid));
        }
    }
    assert_int_equal(state_commit(st, NULL), DIRCONN_OK);
    /* repeated values, as a hand-made list may hold them */
    json_array_append_new(now, json_string("u000000"));
    json_array_append_new(was, json_string("u000050"));
    json_t *want_add = reference_diff(now, was, map), *want_rem = reference_diff(was, now, map);
    assert_true(json_object_size(want_add) > CHANGED / 2);
    assert_true(json_object_size(want_rem) > CHANGED / 2);
    unsigned long seed = 42;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: sorted, as records store them; pass 1: shuffled */
        if (pass == 0) {
            json_array_remove(now, json_array_size(now) - 1);
            json_array_remove(was, json_array_size(was) - 1);
            json_array_insert_new(now, 1, json_string("u000000"));
            json_array_insert_new(was, 50, json_string("u000050"));
        } else {
            shuffle(now, &seed);
            shuffle(was, &seed);
        }
        json_t *r1 = json_pack("{s:O}", PLAN_KEY_MEMBERS, now);
        json_t *r2 = json_pack("{s:O}", PLAN_KEY_MEMBERS, was);
        char *t1 = json_dumps(r1, JSON_COMPACT), *t2 = json_dumps(r2, JSON_COMPACT);
        struct plan_item it = {.op = PLAN_UPDATE,
                               .kind = OBJECT_GROUP,
                               .external_id = "G",
                               .record = t1,
                               .old_record = t2};
        json_t *add = NULL, *rem = NULL;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(plan_member_changes(p, &it, &add, &rem, NULL), DIRCONN_OK);
        double took = seconds_since(&t0);
        print_message("member diff of a %d-member group, %zu joined and %zu left (%s): %.3f s\n", N,
                      json_object_size(want_add), json_object_size(want_rem),
                      pass == 0 ? "sorted" : "shuffled", took);
        assert_same_set(add, want_add);
        assert_same_set(rem, want_rem);
        json_decref(add);
        json_decref(rem);
        free(t1);
        free(t2);
        json_decref(r1);
        json_decref(r2);
    }
    json_decref(want_add);
    json_decref(want_rem);
    json_decref(now);
    json_decref(was);
    json_decref(map);
    plan_free(p);
}

/*
 * The groups whose copy is read by id are split by the length of the member DNs read
 * (STATE_PROJECTION_BIG): a group of 20,000 members (1.2 MB of DNs) is big, one of 2 is not, and -1
 * gives both.
 */
static void test_projection_big_groups(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    size_t nm = 20000;
    char **members = calloc(nm, sizeof(char *));
    assert_non_null(members);
    for (size_t i = 0; i < nm; i++) {
        members[i] = malloc(128);
        snprintf(members[i], 128, "CN=Member %06zu of a department group,OU=Nobody Read,DC=x", i);
    }
    const char *ids[2] = {"G1", "G2"};
    size_t counts[2] = {nm, 2};
    for (int i = 0; i < 2; i++) {
        char cid[8];
        snprintf(cid, sizeof(cid), "c%s", ids[i]);
        json_t *g = json_pack("{s:[s], s:s}", "schemas",
                              "urn:ietf:params:scim:schemas:core:2.0:Group", "displayName", ids[i]);
        char *text, hash[65];
        /* as recorded: no member is in the plan, so the record lists none */
        json_t *rec = json_deep_copy(g);
        json_object_set_new(rec, "dirconn:members", json_array());
        record_of(rec, &text, hash);
        json_decref(rec);
        put_state(ids[i], OBJECT_GROUP, ids[i], cid, text, hash);
        struct state_object o = {0};
        bool found = false;
        assert_int_equal(state_object_get(st, ids[i], &o, &found, NULL), DIRCONN_OK);
        o.version = strdup("W/\"1\"");
        assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
        state_object_clear(&o);
        assert_int_equal(
            plan_add_cloud(p, OBJECT_GROUP, cid, ids[i], ids[i], false, "W/\"2\"", NULL),
            DIRCONN_OK);
        assert_int_equal(plan_add_dir(p, OBJECT_GROUP, ids[i], ids[i], ids[i], g, NULL, members,
                                      counts[i], NULL, NULL),
                         DIRCONN_OK);
        json_decref(g);
        free(text);
    }
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 2);
    const char *want[3] = {"cG2", "cG1", NULL}; /* big 0, big 1, then -1: both */
    for (int big = 0; big <= 2; big++) {
        char **v = NULL;
        size_t n = 0;
        assert_int_equal(
            plan_projection_ids(p, OBJECT_GROUP, 10, big == 2 ? -1 : big, &v, &n, NULL),
            DIRCONN_OK);
        assert_int_equal(n, big == 2 ? 2 : 1);
        if (want[big] != NULL)
            assert_string_equal(v[0], want[big]);
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    for (size_t i = 0; i < nm; i++)
        free(members[i]);
    free(members);
    plan_free(p);
}

/*
 * The matches whose cloud copy a full sync compares by value: version NULL or not the one
 * the state holds; a copy recorded later (plan_set_cloud_projection) and noted equal
 * (plan_note_same) gives the state its version.
 */
static void test_projection_needed_by_version(void **state)
{
    (void)state;
    const char *ids[3] = {"V1", "V2", "V3"};
    const char *stored[3] = {"W/\"1\"", "W/\"1\"", NULL};
    const char *inventory[3] = {"W/\"1\"", "W/\"2\"", "W/\"1\""};
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    for (int i = 0; i < 3; i++) {
        char mail[32], cid[8];
        snprintf(mail, sizeof(mail), "%s@x.com", ids[i]);
        snprintf(cid, sizeof(cid), "c%s", ids[i]);
        json_t *rec = user(mail, ids[i]);
        char *text, hash[65];
        record_of(rec, &text, hash);
        put_state(ids[i], 0, ids[i], cid, text, hash);
        struct state_object o = {0};
        bool found = false;
        assert_int_equal(state_object_get(st, ids[i], &o, &found, NULL), DIRCONN_OK);
        o.version = stored[i] != NULL ? strdup(stored[i]) : NULL;
        assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
        state_object_clear(&o);
        assert_int_equal(
            plan_add_cloud(p, OBJECT_USER, cid, mail, ids[i], false, inventory[i], NULL),
            DIRCONN_OK);
        assert_int_equal(
            plan_add_dir(p, OBJECT_USER, ids[i], ids[i], mail, rec, NULL, NULL, 0, NULL, NULL),
            DIRCONN_OK);
        json_decref(rec);
        free(text);
    }
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_MATCH], 3);
    long needed = -1, total = -1;
    assert_int_equal(plan_projection_count(p, OBJECT_USER, &needed, &total, NULL), DIRCONN_OK);
    assert_int_equal(needed, 2); /* V2 (another version), V3 (none recorded) */
    assert_int_equal(total, 3);
    assert_int_equal(plan_projection_count(p, OBJECT_GROUP, &needed, &total, NULL), DIRCONN_OK);
    assert_int_equal(needed, 0);
    char **v = NULL;
    size_t n = 0;
    assert_int_equal(plan_projection_ids(p, OBJECT_USER, 10, -1, &v, &n, NULL), DIRCONN_OK);
    assert_int_equal(n, 2);
    bool saw2 = false, saw3 = false;
    for (size_t i = 0; i < n; i++) {
        saw2 = saw2 || strcmp(v[i], "cV2") == 0;
        saw3 = saw3 || strcmp(v[i], "cV3") == 0;
        free(v[i]);
    }
    free(v);
    assert_true(saw2 && saw3);
    /* V2 read whole at version 3 and found equal: its version is recorded; V3's is not noted */
    assert_int_equal(plan_set_cloud_projection(p, OBJECT_USER, "cV2", "W/\"3\"", "abc", NULL),
                     DIRCONN_OK);
    char *proj = plan_cloud_projection(p, OBJECT_USER, "cV2");
    assert_string_equal(proj, "abc");
    free(proj);
    assert_int_equal(plan_note_same(p, OBJECT_USER, "V2", "cV2", NULL), DIRCONN_OK);
    assert_int_equal(plan_save_verified(p, NULL), DIRCONN_OK);
    const char *want[3] = {"W/\"1\"", "W/\"3\"", NULL};
    for (int i = 0; i < 3; i++) {
        struct state_object o = {0};
        bool found = false;
        assert_int_equal(state_object_get(st, ids[i], &o, &found, NULL), DIRCONN_OK);
        if (want[i] == NULL)
            assert_null(o.version);
        else
            assert_string_equal(o.version, want[i]);
        state_object_clear(&o);
    }
    plan_free(p);
}

/*
 * A chunked walk whose callback commits to the state (as apply does) lets the WAL be
 * checkpointed: the -wal file stays bounded (wal_autocheckpoint of 1000 pages,
 * state.c) while the walk writes 8 times that, and every item is walked once,
 * in order.
 */
struct wal_walk {
    int seen;
    int order[2001]; /* the numbers of the externalIds walked, in order */
    long long peak;  /* bytes of the -wal file */
    char wal[600];
    char *big; /* a 16 KiB record; NULL: write nothing */
};

static int commit_while_walking(void *arg, const struct plan_item *it)
{
    struct wal_walk *w = arg;
    if (w->seen < 2001)
        w->order[w->seen] = atoi(it->external_id + 1);
    w->seen++;
    if (w->big == NULL)
        return 0;
    char ext[32];
    snprintf(ext, sizeof(ext), "W%s", it->external_id);
    if (state_begin(st, NULL) != DIRCONN_OK)
        return 1;
    struct state_object o = {.external_id = ext, .kind = 0, .dn = ext, .record = w->big};
    if (state_object_put(st, &o, NULL) != DIRCONN_OK || state_commit(st, NULL) != DIRCONN_OK)
        return 1;
    struct stat sb;
    if (stat(w->wal, &sb) == 0 && sb.st_size > w->peak)
        w->peak = sb.st_size;
    return 0;
}

static void test_walk_lets_the_wal_be_checkpointed(void **state)
{
    (void)state;
    struct plan *p = NULL;
    assert_int_equal(plan_new(st, &p, NULL), DIRCONN_OK);
    enum { N = 2000 };
    for (int i = 1; i <= N; i++) {
        char ext[16], dn[32], mail[32];
        snprintf(ext, sizeof(ext), "U%d", i);
        snprintf(dn, sizeof(dn), "CN=U%d,DC=x", i);
        snprintf(mail, sizeof(mail), "u%d@x", i);
        json_t *rec = user(mail, mail);
        assert_int_equal(
            plan_add_dir(p, OBJECT_USER, ext, dn, mail, rec, NULL, NULL, 0, NULL, NULL),
            DIRCONN_OK);
        json_decref(rec);
    }
    assert_int_equal(plan_compute(p, 7, NULL), DIRCONN_OK);
    assert_int_equal(plan_get_summary(p)->count[PLAN_ADD], N);
    /* the order of a walk that writes nothing */
    static struct wal_walk ref, w;
    assert_int_equal(plan_foreach(p, -1, -1, commit_while_walking, &ref, NULL), DIRCONN_OK);
    assert_int_equal(ref.seen, N);
    snprintf(w.wal, sizeof(w.wal), "%s-wal", state_path(st));
    w.big = malloc(16384);
    assert_non_null(w.big);
    memset(w.big, 'x', 16383);
    w.big[16383] = '\0';
    /* the walk of one operation and kind (apply's), then of all: the same items in order */
    assert_int_equal(plan_foreach_chunked(p, PLAN_ADD, OBJECT_USER, commit_while_walking, &w, NULL),
                     DIRCONN_OK);
    assert_int_equal(w.seen, N);
    assert_memory_equal(w.order, ref.order, sizeof(int) * N);
    w.seen = 0;
    assert_int_equal(plan_foreach_chunked(p, -1, -1, commit_while_walking, &w, NULL), DIRCONN_OK);
    assert_int_equal(w.seen, N);
    assert_memory_equal(w.order, ref.order, sizeof(int) * N);
    /* 2 x 2000 commits of 16 KiB records: 64 MiB written; the log stays near 1000 pages */
    assert_true(w.peak > 0);
    assert_true(w.peak < 12LL * 1024 * 1024);
    free(w.big);
    plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_classification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_and_managers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_text_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_canonical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_changes_100k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_links_then_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_projected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drift, setup, teardown),
        cmocka_unit_test_setup_teardown(test_management_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_cloud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_cloud_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locale_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_keeps_the_callback_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projection_needed_by_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projection_big_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_lets_the_wal_be_checkpointed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
