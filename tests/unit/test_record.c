/* Unit tests for connector/record.c: PATCH operations from a diff, projection, PUT overlay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENT "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL)
        fail_msg("bad JSON in test: %s: %s", text, jerr.text);
    return j;
}

/* The operations as one compact line, for exact comparisons. */
static char *ops_text(const char *was, const char *now, const struct record_scope *scope,
                      bool set_with_add)
{
    json_t *w = was != NULL ? parse(was) : NULL, *n = now != NULL ? parse(now) : NULL;
    struct record_patch_rules rules = {.set_with_add = set_with_add};
    json_t *ops = record_patch_ops(w, n, scope, &rules);
    assert_non_null(ops);
    char *t = json_dumps(ops, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(ops);
    json_decref(w);
    json_decref(n);
    return t;
}

static void expect_ops(const char *was, const char *now, const struct record_scope *scope,
                       const char *want)
{
    char *got = ops_text(was, now, scope, false);
    if (strcmp(got, want) != 0)
        fail_msg("ops\n  got  %s\n  want %s", got, want);
    free(got);
}

static const char base_user[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
    "\"userName\":\"ann@x.test\",\"title\":\"Engineer\",\"active\":true,"
    "\"name\":{\"givenName\":\"Ann\",\"familyName\":\"Lee\"},"
    "\"emails\":[{\"primary\":true,\"type\":\"work\",\"value\":\"ann@x.test\"}],"
    "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"+1 555 0100\"},"
    "{\"type\":\"mobile\",\"value\":\"+1 555 0199\"}],"
    "\"addresses\":[{\"primary\":true,\"type\":\"work\",\"locality\":\"Oslo\","
    "\"streetAddress\":\"Main 1\"}],"
    "\"" ENT "\":{\"department\":\"R&D\",\"manager\":{\"value\":\"m-1\"}}}";

static void test_identical(void **state)
{
    (void)state;
    expect_ops(base_user, base_user, NULL, "[]");
}

static void test_title_only(void **state)
{
    (void)state;
    const char *now = "{\"userName\":\"ann@x.test\",\"title\":\"Lead\"}";
    const char *was = "{\"userName\":\"ann@x.test\",\"title\":\"Engineer\"}";
    expect_ops(was, now, NULL, "[{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Lead\"}]");
    char *t = ops_text(was, now, NULL, true);
    assert_string_equal(t, "[{\"op\":\"add\",\"path\":\"title\",\"value\":\"Lead\"}]");
    free(t);
}

/* Cleared values are removed at their path: never a path-less replace. */
static void test_cleared_values(void **state)
{
    (void)state;
    const char now[] =
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
        "\"userName\":\"ann@x.test\",\"active\":true,"
        "\"name\":{\"familyName\":\"Lee\"},"
        "\"emails\":[{\"primary\":true,\"type\":\"work\",\"value\":\"ann@x.test\"}],"
        "\"phoneNumbers\":[{\"type\":\"mobile\",\"value\":\"+1 555 0199\"}],"
        "\"addresses\":[{\"primary\":true,\"type\":\"work\",\"streetAddress\":\"Main 1\"}]}";
    expect_ops(base_user, now, NULL,
               "[{\"op\":\"remove\",\"path\":\"title\"},"
               "{\"op\":\"remove\",\"path\":\"name.givenName\"},"
               "{\"op\":\"remove\",\"path\":\"phoneNumbers[type eq \\\"work\\\"]\"},"
               "{\"op\":\"remove\",\"path\":\"addresses[type eq \\\"work\\\"].locality\"},"
               "{\"op\":\"remove\",\"path\":\"" ENT ":department\"},"
               "{\"op\":\"remove\",\"path\":\"" ENT ":manager\"}]");
}

static void test_added_and_changed(void **state)
{
    (void)state;
    const char was[] = "{\"userName\":\"ann@x.test\","
                       "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"1\"}]}";
    const char now[] = "{\"userName\":\"ann@x.test\",\"name\":{\"givenName\":\"Ann\"},"
                       "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"2\"},"
                       "{\"type\":\"fax\",\"value\":\"3\"}],"
                       "\"" ENT "\":{\"manager\":{\"value\":\"m-2\"},\"division\":\"D\"}}";
    expect_ops(was, now, NULL,
               "[{\"op\":\"replace\",\"path\":\"name.givenName\",\"value\":\"Ann\"},"
               "{\"op\":\"replace\",\"path\":\"" ENT ":manager\",\"value\":{\"value\":\"m-2\"}},"
               "{\"op\":\"replace\",\"path\":\"" ENT ":division\",\"value\":\"D\"},"
               "{\"op\":\"replace\",\"path\":\"phoneNumbers[type eq \\\"work\\\"].value\","
               "\"value\":\"2\"},"
               "{\"op\":\"add\",\"path\":\"phoneNumbers\",\"value\":[{\"type\":\"fax\","
               "\"value\":\"3\"}]}]");
}

/*
 * Against the cloud's copy (drift): only the leaves in scope count; the
 * cloud's own additions ($ref, display, an "other" phone, nickName) stay.
 */
static void test_scope_leaves_foreign_values(void **state)
{
    (void)state;
    static const struct record_path paths[] = {
        {"userName", NULL, NULL},          {"title", NULL, NULL},
        {"phoneNumbers", "work", "value"}, {"phoneNumbers", "mobile", "value"},
        {ENT ":manager", NULL, "value"},   {ENT ":department", NULL, NULL},
    };
    struct record_scope scope = {paths, sizeof(paths) / sizeof(paths[0])};
    const char cloud[] =
        "{\"id\":\"u-1\",\"meta\":{\"version\":\"W/\\\"3\\\"\"},\"userName\":\"ann@x.test\","
        "\"title\":\"Boss\",\"nickName\":\"A\","
        "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"1\",\"display\":\"one\"},"
        "{\"type\":\"other\",\"value\":\"9\"},{\"type\":\"mobile\",\"value\":\"7\"}],"
        "\"" ENT "\":{\"manager\":{\"value\":\"m-1\",\"$ref\":\"https://x/Users/m-1\","
        "\"displayName\":\"M\"},\"department\":\"Old\"}}";
    const char now[] = "{\"userName\":\"ann@x.test\",\"title\":\"Engineer\","
                       "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"1\"}],"
                       "\"" ENT "\":{\"manager\":{\"value\":\"m-1\"}}}";
    expect_ops(cloud, now, &scope,
               "[{\"op\":\"remove\",\"path\":\"phoneNumbers[type eq \\\"mobile\\\"]\"},"
               "{\"op\":\"remove\",\"path\":\"" ENT ":department\"},"
               "{\"op\":\"replace\",\"path\":\"title\",\"value\":\"Engineer\"}]");
    /* the projections agree once the cloud holds our values, whatever else it holds */
    const char fixed[] =
        "{\"id\":\"u-1\",\"userName\":\"ann@x.test\",\"title\":\"Engineer\",\"nickName\":\"A\","
        "\"phoneNumbers\":[{\"type\":\"other\",\"value\":\"9\"},"
        "{\"value\":\"1\",\"type\":\"work\",\"display\":\"one\"}],"
        "\"" ENT "\":{\"manager\":{\"$ref\":\"https://x/Users/m-1\",\"value\":\"m-1\"}}}";
    json_t *a = parse(fixed), *b = parse(now), *c = parse(cloud);
    char ha[RECORD_HASH_LEN], hb[RECORD_HASH_LEN], hc[RECORD_HASH_LEN];
    assert_true(record_projection_hash(a, &scope, false, ha));
    assert_true(record_projection_hash(b, &scope, false, hb));
    assert_true(record_projection_hash(c, &scope, false, hc));
    assert_string_equal(ha, hb);
    assert_string_not_equal(hb, hc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_member_ids_and_projection(void **state)
{
    (void)state;
    json_t *g1 = parse("{\"displayName\":\"G\",\"members\":[{\"value\":\"b\"},{\"value\":\"a\","
                       "\"type\":\"User\"},{\"value\":\"b\"}]}");
    json_t *g2 = parse("{\"displayName\":\"G\",\"members\":[{\"value\":\"a\"},{\"value\":\"b\"}]}");
    json_t *g3 = parse("{\"displayName\":\"G\",\"members\":[{\"value\":\"a\"}]}");
    json_t *ids = record_member_ids(g1);
    char *t = json_dumps(ids, JSON_COMPACT);
    assert_string_equal(t, "[\"a\",\"b\"]");
    free(t);
    json_decref(ids);
    static const struct record_path paths[] = {{"displayName", NULL, NULL}};
    struct record_scope scope = {paths, 1};
    char h1[RECORD_HASH_LEN], h2[RECORD_HASH_LEN], h3[RECORD_HASH_LEN];
    assert_true(record_projection_hash(g1, &scope, true, h1));
    assert_true(record_projection_hash(g2, &scope, true, h2));
    assert_true(record_projection_hash(g3, &scope, true, h3));
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    /* members never appear as PATCH operations: they are add/remove of values */
    t = ops_text("{\"members\":[{\"value\":\"a\"}]}", "{\"members\":[]}", NULL, false);
    assert_string_equal(t, "[]");
    free(t);
    json_decref(g1);
    json_decref(g2);
    json_decref(g3);
}

static void test_filter_string(void **state)
{
    (void)state;
    char *s = record_filter_string("a\"b\\c@x.test");
    assert_string_equal(s, "\"a\\\"b\\\\c@x.test\"");
    free(s);
    char *t =
        ops_text("{\"emails\":[{\"type\":\"we\\\"ird\",\"value\":\"a@b.c\"}]}", "{}", NULL, false);
    assert_string_equal(t,
                        "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"we\\\\\\\"ird\\\"]\"}]");
    free(t);
}

/* PUT without PATCH: our values replace the mapped ones, the rest of the cloud's copy stays. */
static void test_overlay(void **state)
{
    (void)state;
    static const struct record_path paths[] = {
        {"userName", NULL, NULL},          {"title", NULL, NULL},
        {"phoneNumbers", "work", "value"}, {ENT ":department", NULL, NULL},
        {ENT ":manager", NULL, "value"},
    };
    struct record_scope scope = {paths, sizeof(paths) / sizeof(paths[0])};
    json_t *cloud =
        parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
              "\"id\":\"u-1\",\"meta\":{\"version\":\"W/\\\"1\\\"\"},\"userName\":\"ann@x.test\","
              "\"title\":\"Boss\",\"nickName\":\"A\","
              "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"1\"},{\"type\":\"other\",\"value\":"
              "\"9\"}],"
              "\"" ENT "\":{\"department\":\"Old\",\"costCenter\":\"CC\"}}");
    json_t *now = parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                        "\"userName\":\"ann@x.test\",\"phoneNumbers\":[{\"type\":\"work\","
                        "\"value\":\"2\"}]}");
    json_t *put = record_overlay(cloud, now, &scope, false);
    assert_non_null(put);
    char *t = json_dumps(put, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t,
                        "{\"nickName\":\"A\","
                        "\"phoneNumbers\":[{\"type\":\"other\",\"value\":\"9\"},{\"type\":\"work\","
                        "\"value\":\"2\"}],"
                        "\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
                        "\"" ENT "\":{\"costCenter\":\"CC\"},\"userName\":\"ann@x.test\"}");
    free(t);
    json_decref(put);
    json_decref(cloud);
    json_decref(now);
}

/* Several values of one type (proxyAddresses aliases): told apart by their value. */
static void test_several_values_of_one_type(void **state)
{
    (void)state;
    static const struct record_path paths[] = {
        {"userName", NULL, NULL},
        {"emails", "work", "value"},
        {"emails", "other", "value"},
    };
    struct record_scope scope = {paths, sizeof(paths) / sizeof(paths[0])};
#define U(aliases)                                                                                 \
    "{\"userName\":\"ann@x.test\",\"emails\":[{\"primary\":true,\"type\":\"work\",\"value\":"      \
    "\"ann@x.test\"}" aliases "]}"
#define A(v) ",{\"type\":\"other\",\"value\":\"" v "\"}"
    /* Two appear: two adds (the cloud gets no primary from them). */
    expect_ops(U(""), U(A("a@x.test") A("b@x.test")), &scope,
               "[{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":\"other\",\"value\":"
               "\"a@x.test\"}]},{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":\"other\","
               "\"value\":\"b@x.test\"}]}]");
    /* One of three changes: one remove by value filter, one add; the others are untouched. */
    expect_ops(U(A("a@x.test") A("b@x.test") A("c@x.test")),
               U(A("a@x.test") A("c@x.test") A("d@x.test")), &scope,
               "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" and value eq "
               "\\\"b@x.test\\\"]\"},{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"type\":"
               "\"other\",\"value\":\"d@x.test\"}]}]");
    /* Two go, one stays. */
    expect_ops(U(A("a@x.test") A("b@x.test") A("c@x.test")), U(A("b@x.test")), &scope,
               "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" and value eq "
               "\\\"a@x.test\\\"]\"},{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" "
               "and value eq \\\"c@x.test\\\"]\"}]");
    /* All go: each is removed, the work address stays. */
    expect_ops(U(A("a@x.test") A("b@x.test")), U(""), &scope,
               "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" and value eq "
               "\\\"a@x.test\\\"]\"},{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" "
               "and value eq \\\"b@x.test\\\"]\"}]");
    /* One value on each side: the type names it, as for every other typed value. */
    expect_ops(U(A("a@x.test")), U(A("e@x.test")), &scope,
               "[{\"op\":\"replace\",\"path\":\"emails[type eq \\\"other\\\"].value\",\"value\":"
               "\"e@x.test\"}]");
    /* A value with a quote is a JSON string in the filter (RFC 7644 3.4.2.2). */
    expect_ops(U(A("q\\\"1@x.test") A("b@x.test")), U(A("b@x.test")), &scope,
               "[{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\" and value eq "
               "\\\"q\\\\\\\"1@x.test\\\"]\"}]");
    /* The same set in another order: nothing to do. */
    expect_ops(U(A("a@x.test") A("b@x.test")), U(A("b@x.test") A("a@x.test")), &scope, "[]");

    /* The projection does not depend on the order of the values. */
    json_t *x = parse(U(A("a@x.test") A("b@x.test"))), *y = parse(U(A("b@x.test") A("a@x.test")));
    json_t *z = parse(U(A("a@x.test")));
    char hx[RECORD_HASH_LEN], hy[RECORD_HASH_LEN], hz[RECORD_HASH_LEN];
    assert_true(record_projection_hash(x, &scope, false, hx));
    assert_true(record_projection_hash(y, &scope, false, hy));
    assert_true(record_projection_hash(z, &scope, false, hz));
    assert_string_equal(hx, hy);
    assert_string_not_equal(hx, hz);

    /* PUT: the cloud's aliases are replaced by ours, and ours stay several. */
    json_t *cloud = parse("{\"id\":\"u-1\",\"userName\":\"ann@x.test\",\"emails\":[{\"type\":"
                          "\"home\",\"value\":\"ann@home.test\"},{\"type\":\"other\",\"value\":"
                          "\"old@x.test\"},{\"type\":\"work\",\"value\":\"ann@x.test\",\"primary\":"
                          "true}]}");
    json_t *put = record_overlay(cloud, x, &scope, false);
    char *t = json_dumps(json_object_get(put, "emails"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "[{\"type\":\"home\",\"value\":\"ann@home.test\"},{\"primary\":true,"
                           "\"type\":\"work\",\"value\":\"ann@x.test\"},{\"type\":\"other\","
                           "\"value\":\"a@x.test\"},{\"type\":\"other\",\"value\":\"b@x.test\"}]");
    free(t);
    json_decref(put);
    json_decref(cloud);
    json_decref(x);
    json_decref(y);
    json_decref(z);
#undef U
#undef A
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_title_only),
        cmocka_unit_test(test_cleared_values),
        cmocka_unit_test(test_added_and_changed),
        cmocka_unit_test(test_scope_leaves_foreign_values),
        cmocka_unit_test(test_member_ids_and_projection),
        cmocka_unit_test(test_filter_string),
        cmocka_unit_test(test_overlay),
        cmocka_unit_test(test_several_values_of_one_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
