/* cloud_patch_test.c - unit tests of SCIM body validation and PATCH application (RFC 7643, RFC
 * 7644 3.5.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud_patch.h"

#define USER_SCHEMA "\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"]"
#define EXT         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

static json_t *valid(const char *text)
{
    json_t *in = load(text), *out = NULL;
    struct cloud_scim_err err = {0};
    if (cloud_schema_validate(cloud_schema_rtype(CLOUD_RK_USER), in, &out, &err) != 0)
        fail_msg("validate %s: %s", text, err.detail);
    json_decref(in);
    return out;
}

static void invalid(const char *text, const char *scim_type)
{
    json_t *in = load(text), *out = NULL;
    struct cloud_scim_err err = {0};
    int rc = cloud_schema_validate(cloud_schema_rtype(CLOUD_RK_USER), in, &out, &err);
    json_decref(in);
    if (rc == 0) {
        json_decref(out);
        fail_msg("validated but should not: %s", text);
    }
    assert_null(out);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, scim_type);
}

static void test_validate(void **state)
{
    (void)state;
    json_t *u =
        valid("{" USER_SCHEMA ",\"USERNAME\":\"a\",\"Name\":{\"GivenName\":\"G\"},"
              "\"id\":\"ignored\",\"meta\":{\"version\":\"x\"},\"groups\":[{\"value\":\"g\"}],"
              "\"password\":\"secret\",\"emails\":[],\"title\":null}");
    assert_string_equal(json_string_value(json_object_get(u, "userName")), "a");
    assert_string_equal(json_string_value(json_object_get(json_object_get(u, "name"), "givenName")),
                        "G");
    assert_null(json_object_get(u, "id"));
    assert_null(json_object_get(u, "meta"));
    assert_null(json_object_get(u, "groups"));
    assert_null(json_object_get(u, "password"));
    assert_null(json_object_get(u, "emails"));
    assert_null(json_object_get(u, "title"));
    json_decref(u);
    u = valid("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" EXT "\"],"
              "\"userName\":\"a\",\"" EXT "\":{\"department\":\"D\",\"manager\":{\"value\":\"m\","
              "\"displayName\":\"ro\"}}}");
    json_t *ext = json_object_get(u, EXT);
    assert_string_equal(json_string_value(json_object_get(ext, "department")), "D");
    assert_null(json_object_get(json_object_get(ext, "manager"), "displayName"));
    assert_int_equal(json_array_size(json_object_get(u, "schemas")), 2);
    json_decref(u);

    invalid("{\"userName\":\"a\"}", "invalidSyntax");
    invalid("{\"schemas\":\"x\",\"userName\":\"a\"}", "invalidSyntax");
    invalid("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],\"userName\":\"a\"}",
            "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"bogus\":1}", "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"username\":\"b\"}", "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"name\":{\"bogus\":1}}", "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"" EXT "\":{\"department\":\"D\"}}",
            "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":1}", "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"\"}", "invalidValue");
    invalid("{" USER_SCHEMA "}", "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"active\":\"true\"}", "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"emails\":{\"value\":\"x\"}}", "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"name\":\"x\"}", "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"emails\":[{\"value\":\"x\",\"primary\":true},"
            "{\"value\":\"y\",\"primary\":true}]}",
            "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"x509Certificates\":[{\"value\":\"abc\"}]}",
            "invalidValue");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"emails\":[{\"value\":1}]}", "invalidValue");
}

static void test_datetime(void **state)
{
    (void)state;
    long long ms;
    assert_true(cloud_schema_parse_datetime("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(cloud_schema_parse_datetime("2026-11-22T00:04:23.123Z", &ms));
    assert_int_equal(ms, 1795305863123LL);
    assert_true(cloud_schema_parse_datetime("2026-11-22T01:04:23.123+01:00", &ms));
    assert_int_equal(ms, 1795305863123LL);
    assert_true(cloud_schema_parse_datetime("2024-02-29T00:00:00Z", NULL));
    assert_false(cloud_schema_parse_datetime("2023-02-29T00:00:00Z", NULL));
    assert_false(cloud_schema_parse_datetime("2026-13-01T00:00:00Z", NULL));
    assert_false(cloud_schema_parse_datetime("2026-11-22 00:04:23Z", NULL));
    assert_false(cloud_schema_parse_datetime("2026-11-22T00:04:23", NULL));
    assert_false(cloud_schema_parse_datetime("2026-11-22T00:04:23.Z", NULL));
    assert_false(cloud_schema_parse_datetime("2026-11-22T00:04:23Zjunk", NULL));
}

/* Apply a PatchOp (Operations given) to a user document; returns the result or NULL + err. */
static json_t *patch(const char *doc, const char *ops, struct cloud_scim_err *err)
{
    json_t *d = valid(doc);
    char body[4096];
    snprintf(
        body, sizeof(body),
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[%s]}",
        ops);
    json_t *b = load(body);
    memset(err, 0, sizeof(*err));
    int rc = cloud_patch_apply(cloud_schema_rtype(CLOUD_RK_USER), d, b, err);
    json_decref(b);
    if (rc != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

static const char *const base =
    "{" USER_SCHEMA ",\"userName\":\"a\",\"title\":\"T\",\"name\":{\"givenName\":\"G\"},"
    "\"emails\":[{\"value\":\"w@x\",\"type\":\"work\",\"primary\":true},"
    "{\"value\":\"h@x\",\"type\":\"home\"}]}";

static const char *str_at(json_t *doc, const char *path)
{
    /* tiny JSON pointer: "a/b/0/c" */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = doc;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t != NULL && cur != NULL;
         t = strtok_r(NULL, "/", &save))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(t)) : json_object_get(cur, t);
    return json_string_value(cur);
}

static void test_patch_ok(void **state)
{
    (void)state;
    struct cloud_scim_err err;
    json_t *d =
        patch(base, "{\"op\":\"replace\",\"path\":\"name.givenName\",\"value\":\"N\"}", &err);
    assert_non_null(d);
    assert_string_equal(str_at(d, "name/givenName"), "N");
    json_decref(d);

    d = patch(
        base,
        "{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"w@x\"},{\"value\":\"o@x\"}]}",
        &err);
    assert_int_equal(json_array_size(json_object_get(d, "emails")), 3); /* w@x not duplicated */
    json_decref(d);

    d = patch(base, "{\"op\":\"remove\",\"path\":\"emails[type eq \\\"home\\\"]\"}", &err);
    assert_int_equal(json_array_size(json_object_get(d, "emails")), 1);
    json_decref(d);

    d = patch(
        base,
        "{\"op\":\"replace\",\"path\":\"emails[type eq \\\"work\\\"].value\",\"value\":\"n@x\"}",
        &err);
    assert_string_equal(str_at(d, "emails/0/value"), "n@x");
    json_decref(d);

    d = patch(
        base,
        "{\"op\":\"add\",\"path\":\"phoneNumbers[type eq \\\"mobile\\\"].value\",\"value\":\"1\"}",
        &err);
    assert_string_equal(str_at(d, "phoneNumbers/0/type"), "mobile");
    assert_string_equal(str_at(d, "phoneNumbers/0/value"), "1");
    json_decref(d);

    d = patch(base,
              "{\"op\":\"Replace\",\"value\":{\"TITLE\":\"X\",\"name.familyName\":\"F\","
              "\"" EXT ":department\":\"D\"}}",
              &err);
    assert_string_equal(str_at(d, "title"), "X");
    assert_string_equal(str_at(d, "name/familyName"), "F");
    assert_string_equal(str_at(d, "name/givenName"), "G"); /* complex merge */
    assert_string_equal(str_at(d, EXT "/department"), "D");
    assert_int_equal(json_array_size(json_object_get(d, "schemas")), 2);
    json_decref(d);

    /* a path-less replace merges (RFC 7644 3.5.2.3): a complex value replaces only the
     * sub-attributes it names, attributes it does not name are kept, a multi-valued one it
     * names is replaced wholesale */
    d = patch(base,
              "{\"op\":\"replace\",\"value\":{\"name\":{\"familyName\":\"F\"},"
              "\"" EXT "\":{\"department\":\"D\"}}},"
              "{\"op\":\"replace\",\"value\":{\"" EXT "\":{\"costCenter\":\"C\"}}}",
              &err);
    assert_non_null(d);
    assert_string_equal(str_at(d, "name/familyName"), "F");
    assert_string_equal(str_at(d, "name/givenName"), "G");
    assert_string_equal(str_at(d, "title"), "T");
    assert_string_equal(str_at(d, "userName"), "a");
    assert_int_equal(json_array_size(json_object_get(d, "emails")), 2);
    assert_string_equal(str_at(d, EXT "/department"), "D");
    assert_string_equal(str_at(d, EXT "/costCenter"), "C");
    json_decref(d);
    d = patch(base, "{\"op\":\"replace\",\"value\":{\"emails\":[{\"value\":\"n@x\"}]}}", &err);
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "emails")), 1);
    assert_string_equal(str_at(d, "emails/0/value"), "n@x");
    assert_string_equal(str_at(d, "name/givenName"), "G");
    json_decref(d);

    d = patch(base,
              "{\"op\":\"add\",\"path\":\"" EXT "\",\"value\":{\"costCenter\":\"C\"}},"
              "{\"op\":\"remove\",\"path\":\"" EXT ":costCenter\"}",
              &err);
    assert_null(json_object_get(d, EXT));
    assert_int_equal(json_array_size(json_object_get(d, "schemas")), 1);
    json_decref(d);

    d = patch(base, "{\"op\":\"remove\",\"path\":\"emails\",\"value\":[{\"value\":\"h@x\"}]}",
              &err);
    assert_int_equal(json_array_size(json_object_get(d, "emails")), 1);
    json_decref(d);

    /* a new primary value demotes the old one (RFC 7644 3.5.2) */
    d = patch(
        base,
        "{\"op\":\"add\",\"path\":\"emails\",\"value\":[{\"value\":\"p@x\",\"primary\":true}]}",
        &err);
    assert_non_null(d);
    json_t *em = json_object_get(d, "emails");
    assert_false(json_is_true(json_object_get(json_array_get(em, 0), "primary")));
    assert_true(json_is_true(json_object_get(json_array_get(em, 2), "primary")));
    json_decref(d);
    d = patch(
        base,
        "{\"op\":\"replace\",\"path\":\"emails[type eq \\\"home\\\"].primary\",\"value\":true}",
        &err);
    assert_non_null(d);
    em = json_object_get(d, "emails");
    assert_false(json_is_true(json_object_get(json_array_get(em, 0), "primary")));
    assert_true(json_is_true(json_object_get(json_array_get(em, 1), "primary")));
    json_decref(d);

    d = patch(base,
              "{\"op\":\"remove\",\"path\":\"nickName\"},"
              "{\"op\":\"remove\",\"path\":\"emails[type eq \\\"other\\\"]\"}",
              &err);
    assert_non_null(d); /* removing absent things succeeds */
    json_decref(d);
}

static void expect_patch_error(const char *ops, const char *scim_type)
{
    struct cloud_scim_err err;
    json_t *d = patch(base, ops, &err);
    if (d != NULL) {
        json_decref(d);
        fail_msg("patch succeeded but should not: %s", ops);
    }
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, scim_type);
}

static void test_patch_errors(void **state)
{
    (void)state;
    expect_patch_error(
        "{\"op\":\"replace\",\"path\":\"emails[type eq \\\"other\\\"].value\",\"value\":\"x\"}",
        "noTarget");
    expect_patch_error("{\"op\":\"remove\"}", "noTarget");
    expect_patch_error("{\"op\":\"remove\",\"path\":\"userName\"}", "mutability");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"id\",\"value\":\"x\"}", "mutability");
    expect_patch_error("{\"op\":\"add\",\"path\":\"groups\",\"value\":[{\"value\":\"g\"}]}",
                       "mutability");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"bogus\",\"value\":\"x\"}", "invalidPath");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"emails[bogus eq 1]\",\"value\":\"x\"}",
                       "invalidPath");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"title[value eq 1]\",\"value\":\"x\"}",
                       "invalidPath");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"name..x\",\"value\":\"x\"}", "invalidPath");
    expect_patch_error("{\"op\":\"move\",\"path\":\"title\",\"value\":\"x\"}", "invalidSyntax");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"title\"}", "invalidValue");
    expect_patch_error("{\"op\":\"replace\",\"value\":\"x\"}", "invalidValue");
    expect_patch_error("{\"op\":\"replace\",\"path\":\"title\",\"value\":\"x\",\"extra\":1}",
                       "invalidSyntax");
    expect_patch_error("{\"op\":\"add\",\"path\":\"name\",\"value\":{\"bogus\":1}}",
                       "invalidValue");
    expect_patch_error("{\"op\":\"add\",\"value\":{\"emails[type eq \\\"work\\\"].value\":\"x\"}}",
                       "invalidPath");
    expect_patch_error("{\"op\":\"add\",\"path\":\"emails[type ne \\\"work\\\" and type ne "
                       "\\\"home\\\"].value\",\"value\":\"x\"}",
                       "noTarget");
}

/* Apply ops to the group base_group with limits; returns the error's scimType or "ok". */
static const char *group_patch(const char *ops, const struct cloud_patch_limits *lim,
                               struct cloud_scim_err *err)
{
    json_t *in = load("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
                      "\"displayName\":\"G\",\"members\":[{\"value\":\"u1\"},{\"value\":\"u2\"}]}");
    json_t *d = NULL;
    memset(err, 0, sizeof(*err));
    if (cloud_schema_validate(cloud_schema_rtype(CLOUD_RK_GROUP), in, &d, err) != 0)
        fail_msg("group: %s", err->detail);
    json_decref(in);
    char body[2048];
    snprintf(
        body, sizeof(body),
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[%s]}",
        ops);
    json_t *b = load(body);
    int rc = cloud_patch_apply_limited(cloud_schema_rtype(CLOUD_RK_GROUP), d, b, lim, err);
    json_decref(b);
    json_decref(d);
    if (rc == 0)
        return "ok";
    assert_int_equal(err->status, 400);
    return err->scim_type;
}

static void test_patch_limits(void **state)
{
    (void)state;
    struct cloud_scim_err err;
    const struct cloud_patch_limits none = {0};
    const struct cloud_patch_limits group = {.no_replace = true, .no_remove_all = true};
    const struct cloud_patch_limits eq = {.eq_only_filters = true};
    const char *replace = "{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"H\"}";
    const char *replace_nopath = "{\"op\":\"Replace\",\"value\":{\"displayName\":\"H\"}}";
    const char *remove_all = "{\"op\":\"remove\",\"path\":\"members\"}";
    const char *remove_one = "{\"op\":\"remove\",\"path\":\"members[value eq \\\"u1\\\"]\"}";
    const char *remove_list =
        "{\"op\":\"remove\",\"path\":\"members\",\"value\":[{\"value\":\"u2\"}]}";
    const char *remove_ne = "{\"op\":\"remove\",\"path\":\"members[value ne \\\"u1\\\"]\"}";
    const char *add = "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"u3\"}]}";
    assert_string_equal(group_patch(replace, &none, &err), "ok");
    assert_string_equal(group_patch(replace, NULL, &err), "ok");
    assert_string_equal(group_patch(remove_all, &none, &err), "ok");
    assert_string_equal(group_patch(replace, &group, &err), "invalidSyntax");
    assert_non_null(strstr(err.detail, "replace"));
    assert_string_equal(group_patch(replace_nopath, &group, &err), "invalidSyntax");
    assert_string_equal(group_patch(remove_all, &group, &err), "invalidSyntax");
    assert_non_null(strstr(err.detail, "members"));
    assert_string_equal(group_patch(remove_one, &group, &err), "ok");
    assert_string_equal(group_patch(remove_list, &group, &err), "ok");
    assert_string_equal(group_patch(add, &group, &err), "ok");
    assert_string_equal(group_patch(remove_ne, &group, &err), "ok");
    assert_string_equal(group_patch(remove_ne, &eq, &err), "invalidFilter");
    assert_non_null(strstr(err.detail, "'ne'"));
    assert_string_equal(group_patch(remove_one, &eq, &err), "ok");
}

static void test_patch_body(void **state)
{
    (void)state;
    json_t *d = valid(base);
    struct cloud_scim_err err = {0};
    const char *bad[] = {
        "[]",
        "{}",
        "{\"schemas\":[\"urn:x\"],\"Operations\":[]}",
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[]}",
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":{}}",
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[1]}",
        ("{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":[{}],"
         "\"x\":1}"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = load(bad[i]);
        assert_int_equal(cloud_patch_apply(cloud_schema_rtype(CLOUD_RK_USER), d, b, &err), -1);
        assert_string_equal(err.scim_type, "invalidSyntax");
        json_decref(b);
    }
    json_decref(d);
}

/* PATCH a Group document (members only) with the operations ops (a JSON array); NULL on error. */
static json_t *patch_group(const char *members, const char *ops, struct cloud_scim_err *err)
{
    char doc[2048], body[2048];
    snprintf(doc, sizeof(doc),
             "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Group\"],"
             "\"displayName\":\"G\",\"members\":%s}",
             members);
    snprintf(body, sizeof(body),
             "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\"Operations\":%s}",
             ops);
    json_t *d = load(doc), *b = load(body);
    int rc = cloud_patch_apply(cloud_schema_rtype(CLOUD_RK_GROUP), d, b, err);
    json_decref(b);
    if (rc != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* The "value"s of d's attribute name, joined by commas ("-" when the attribute is absent). */
static void values_of(const json_t *d, const char *name, char *out, size_t len)
{
    const json_t *arr = json_object_get(d, name);
    snprintf(out, len, "%s", arr == NULL ? "-" : "");
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", i > 0 ? "," : "",
                 json_string_value(json_object_get(el, "value")));
    }
}

/* Member PATCHes of a large group go through indexes and one pass per run of removals
 * (cloud_patch.c): the results are those of RFC 7644 3.5.2 applied one operation after
 * the other. */
static void test_patch_members(void **state)
{
    (void)state;
    struct cloud_scim_err err = {0};
    char got[256];
#define M(v)  "{\"value\":\"" v "\",\"type\":\"User\"}"
#define RM(v) "{\"op\":\"remove\",\"path\":\"members[value eq \\\"" v "\\\"]\"}"
    /* removals (one absent, one differing in case only: value is caseExact), then an add
     * with a value already there and a new one twice, then a removal after the add */
    json_t *d =
        patch_group("[" M("a") "," M("b") "," M("c") "," M("d") "," M("f") "]",
                    "[" RM("b") "," RM("zz") "," RM("d") "," RM(
                        "A") ","
                             "{\"op\":\"add\",\"path\":\"members\",\"value\":["
                             "{\"value\":\"e\"},{\"value\":\"a\"},{\"value\":\"e\"}]}," RM("f") "]",
                    &err);
    assert_non_null(d);
    values_of(d, "members", got, sizeof(got));
    assert_string_equal(got, "a,c,e");
    json_decref(d);
    /* removing every member by filters removes the attribute */
    d = patch_group("[" M("a") "," M("b") "]", "[" RM("a") "," RM("b") "]", &err);
    assert_non_null(d);
    values_of(d, "members", got, sizeof(got));
    assert_string_equal(got, "-");
    json_decref(d);
    /* a removal with a value list: those values leave, in one pass */
    d = patch_group("[" M("a") "," M("b") "," M("c") "]",
                    "[{\"op\":\"remove\",\"path\":\"members\",\"value\":["
                    "{\"value\":\"c\"},{\"value\":\"a\"},{\"value\":\"x\"}]}]",
                    &err);
    assert_non_null(d);
    values_of(d, "members", got, sizeof(got));
    assert_string_equal(got, "b");
    json_decref(d);
    /* a filter that is not "value eq" between removals keeps the order of the operations */
    d = patch_group(
        "[" M("a") ",{\"value\":\"g\",\"type\":\"Group\"}," M("c") "]",
        "[" RM("a") ",{\"op\":\"remove\",\"path\":\"members[type eq \\\"Group\\\"]\"},"
                    "{\"op\":\"add\",\"path\":\"members\",\"value\":[{\"value\":\"a\"}]}," RM(
                        "c") "]",
        &err);
    assert_non_null(d);
    values_of(d, "members", got, sizeof(got));
    assert_string_equal(got, "a");
    json_decref(d);
    /* an error after a run of removals: the PATCH fails as a whole */
    assert_null(
        patch_group("[" M("a") "]", "[" RM("a") ",{\"op\":\"bogus\",\"path\":\"members\"}]", &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.scim_type, "invalidSyntax");
    assert_null(patch_group("[" M("a") "]",
                            "[" RM("a") ",{\"op\":\"remove\",\"path\":\"members[\"}]", &err));
    assert_string_equal(err.scim_type, "invalidPath");
#undef M
#undef RM
    /* emails.value is not caseExact: a removal by filter ignores case, as the filter does */
    d = patch(base, "{\"op\":\"remove\",\"path\":\"emails[value eq \\\"W@X\\\"]\"}", &err);
    assert_non_null(d);
    values_of(d, "emails", got, sizeof(got));
    assert_string_equal(got, "h@x");
    json_decref(d);
}

static void test_omit(void **state)
{
    (void)state;
    char msg[256];
    static const char *const bad_schema[] = {"urn:example:nosuch:title", NULL};
    static const char *const bad_attr[] = {"urn:ietf:params:scim:schemas:core:2.0:User:bogus",
                                           NULL};
    static const char *const required[] = {"urn:ietf:params:scim:schemas:core:2.0:User:userName",
                                           NULL};
    static const char *const omit[] = {"urn:ietf:params:scim:schemas:core:2.0:User:password",
                                       "urn:ietf:params:scim:schemas:core:2.0:User:emails.display",
                                       EXT ":manager.displayName", NULL};
    assert_int_equal(cloud_schema_omit(bad_schema, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "no such schema"));
    assert_int_equal(cloud_schema_omit(bad_attr, msg, sizeof(msg)), -1);
    assert_int_equal(cloud_schema_omit(required, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "required"));
    assert_int_equal(cloud_schema_omit(omit, msg, sizeof(msg)), 0);
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"password\":\"p\"}", "invalidSyntax");
    invalid("{" USER_SCHEMA ",\"userName\":\"a\",\"emails\":[{\"value\":\"x\",\"display\":\"X\"}]}",
            "invalidSyntax");
    json_t *u =
        valid("{" USER_SCHEMA ",\"userName\":\"a\",\"ims\":[{\"value\":\"x\",\"display\":\"X\"}]}");
    json_decref(u); /* ims.display is another attribute: still served */
    struct cloud_attr_ref ref;
    const struct cloud_rtype_def *rt = cloud_schema_rtype(CLOUD_RK_USER);
    assert_int_equal(cloud_schema_resolve(rt, NULL, "password", NULL, &ref, NULL), -1);
    assert_int_equal(cloud_schema_resolve(rt, EXT, "manager", "displayName", &ref, NULL), -1);
    assert_int_equal(cloud_schema_resolve(rt, EXT, "manager", "value", &ref, NULL), 0);
    json_t *sch = cloud_schema_schema_json(rt->core, "https://x");
    char *text = json_dumps(sch, 0);
    assert_null(strstr(text, "\"password\""));
    assert_non_null(strstr(text, "\"emails\""));
    free(text);
    json_decref(sch);
    assert_int_equal(cloud_schema_omit(NULL, msg, sizeof(msg)), 0); /* served again */
    u = valid("{" USER_SCHEMA ",\"userName\":\"a\",\"password\":\"p\"}");
    json_decref(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),   cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_patch_ok),   cmocka_unit_test(test_patch_errors),
        cmocka_unit_test(test_patch_body), cmocka_unit_test(test_patch_limits),
        cmocka_unit_test(test_omit),       cmocka_unit_test(test_patch_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
