/* cloud_filter_test.c - unit tests of the SCIM filter and PATCH path parser (RFC
 * 7644 3.4.2.2, 3.5.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud_filter.h"

/* Render a parsed filter back to a canonical, fully parenthesised string. */
static void render(const struct cloud_filter *f, char *buf, size_t len)
{
    static const char *const ops[] = {"eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le"};
    char l[512], r[512];
    switch (f->op) {
    case CLOUD_FILTER_AND:
    case CLOUD_FILTER_OR:
        render(f->left, l, sizeof(l));
        render(f->right, r, sizeof(r));
        snprintf(buf, len, "(%s %s %s)", l, f->op == CLOUD_FILTER_AND ? "and" : "or", r);
        return;
    case CLOUD_FILTER_NOT:
        render(f->left, l, sizeof(l));
        snprintf(buf, len, "not%s", l);
        return;
    case CLOUD_FILTER_VALUE_PATH:
        render(f->left, l, sizeof(l));
        snprintf(buf, len, "%s[%s]", f->attr, l);
        return;
    default:
        break;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s%s%s%s%s", f->uri ? f->uri : "", f->uri ? ":" : "", f->attr,
             f->sub ? "." : "", f->sub ? f->sub : "");
    if (f->op == CLOUD_FILTER_PR) {
        snprintf(buf, len, "%s pr", path);
        return;
    }
    char *v = json_dumps(f->value, JSON_ENCODE_ANY);
    snprintf(buf, len, "%s %s %s", path, ops[f->op], v);
    free(v);
}

static void expect_parse(const char *text, const char *want)
{
    struct cloud_filter *f = NULL;
    char err[256] = "";
    int rc = cloud_filter_parse(text, &f, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' did not parse: %s", text, err);
    char got[2048];
    render(f, got, sizeof(got));
    assert_string_equal(got, want);
    cloud_filter_free(f);
}

static void expect_error(const char *text)
{
    struct cloud_filter *f = NULL;
    char err[256] = "";
    if (cloud_filter_parse(text, &f, err, sizeof(err)) == 0) {
        cloud_filter_free(f);
        fail_msg("'%s' parsed but should not", text);
    }
    assert_null(f);
    assert_true(err[0] != '\0');
}

static void test_operators(void **state)
{
    (void)state;
    expect_parse("userName eq \"bjensen\"", "userName eq \"bjensen\"");
    expect_parse("userName NE \"b\"", "userName ne \"b\"");
    expect_parse("name.familyName co \"O'Malley\"", "name.familyName co \"O'Malley\"");
    expect_parse("userName sw \"J\"", "userName sw \"J\"");
    expect_parse("userName ew \"n\"", "userName ew \"n\"");
    expect_parse("title pr", "title pr");
    expect_parse("meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                 "meta.lastModified gt \"2011-05-13T04:42:34Z\"");
    expect_parse("x ge 1", "x ge 1");
    expect_parse("x lt 2.5", "x lt 2.5");
    expect_parse("x le -3", "x le -3");
    expect_parse("active eq true", "active eq true");
    expect_parse("active eq false", "active eq false");
    expect_parse("x eq null", "x eq null");
}

static void test_precedence(void **state)
{
    (void)state;
    expect_parse("a pr or b pr and c pr", "(a pr or (b pr and c pr))");
    expect_parse("a pr and b pr or c pr", "((a pr and b pr) or c pr)");
    expect_parse("(a pr or b pr) and c pr", "((a pr or b pr) and c pr)");
    expect_parse("not (a pr) and b pr", "(nota pr and b pr)");
    expect_parse("a pr and b pr and c pr", "((a pr and b pr) and c pr)");
    expect_parse("userType eq \"Employee\" and (emails co \"example.com\" or emails.value co "
                 "\"example.org\")",
                 "(userType eq \"Employee\" and (emails co \"example.com\" or emails.value co "
                 "\"example.org\"))");
}

static void test_value_paths_and_uris(void **state)
{
    (void)state;
    expect_parse("emails[type eq \"work\" and value co \"@example.com\"]",
                 "emails[(type eq \"work\" and value co \"@example.com\")]");
    expect_parse("members[value eq \"2819c223\"]", "members[value eq \"2819c223\"]");
    expect_parse("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
                 "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"");
    expect_parse(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"");
    expect_parse("userName eq \"a\\\"b\\u00e9\"", "userName eq \"a\\\"b\xc3\xa9\"");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("");
    expect_error("userName");
    expect_error("userName eq");
    expect_error("userName eq \"x");
    expect_error("userName xx \"x\"");
    expect_error("userName eq \"x\" and");
    expect_error("userName eq \"x\" or or b pr");
    expect_error("(userName pr");
    expect_error("userName pr)");
    expect_error("not userName pr");
    expect_error("emails[type eq \"work\"");
    expect_error("emails[type[value pr]]");
    expect_error("1abc pr");
    expect_error("userName eq {\"a\":1}");
    expect_error("userName eq [1]");
    expect_error("userName eq bareword");
    expect_error("userName eq \"\xff\"");
    expect_error("userName eq \"a\\q\"");
    expect_error("a.b.c pr");
    /* nesting and size limits */
    char deep[600] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    strcat(deep, "a pr");
    for (int i = 0; i < 40; i++)
        strcat(deep, ")");
    expect_error(deep);
    char *huge = malloc(CLOUD_FILTER_MAX_LEN + 64);
    strcpy(huge, "userName eq \"");
    memset(huge + 13, 'a', CLOUD_FILTER_MAX_LEN);
    strcpy(huge + 13 + CLOUD_FILTER_MAX_LEN, "\"");
    expect_error(huge);
    free(huge);
}

/* Parse + bind + match against a user document. */
static bool matches(const char *filter, const char *doc_json)
{
    const struct cloud_rtype_def *rt = cloud_schema_rtype(CLOUD_RK_USER);
    struct cloud_filter *f = NULL;
    char err[256];
    if (cloud_filter_parse(filter, &f, err, sizeof(err)) != 0)
        fail_msg("parse '%s': %s", filter, err);
    struct cloud_scim_err serr = {0};
    if (cloud_filter_bind(f, rt, &serr) != 0)
        fail_msg("bind '%s': %s", filter, serr.detail);
    json_t *doc = json_loads(doc_json, 0, NULL);
    assert_non_null(doc);
    bool m = cloud_filter_match(f, doc);
    json_decref(doc);
    cloud_filter_free(f);
    return m;
}

static const char *const user =
    "{\"userName\":\"BJensen@example.com\",\"externalId\":\"Ext-1\",\"active\":true,"
    "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\"},"
    "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\"},"
    "{\"value\":\"babs@jensen.org\",\"type\":\"home\"}],"
    "\"meta\":{\"lastModified\":\"2026-01-02T03:04:05.678Z\"},"
    "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":{\"department\":\"Sales\"}}";

static void test_match(void **state)
{
    (void)state;
    assert_true(matches("userName eq \"bjensen@EXAMPLE.com\"", user)); /* caseExact false */
    assert_false(matches("externalId eq \"ext-1\"", user));            /* caseExact true */
    assert_true(matches("externalId eq \"Ext-1\"", user));
    assert_true(matches("emails co \"jensen.org\"", user));
    assert_true(matches("emails[type eq \"home\" and value ew \".org\"]", user));
    assert_false(matches("emails[type eq \"work\" and value ew \".org\"]", user));
    assert_true(matches("name.familyName sw \"jen\"", user));
    assert_true(matches("active eq true and not (name.givenName eq \"Bob\")", user));
    assert_true(matches("title pr or name pr", user));
    assert_false(matches("title pr", user));
    assert_true(matches("userName ne \"x\"", user));
    assert_true(matches("title ne \"x\"", user));
    assert_true(matches("meta.lastModified gt \"2026-01-02T03:04:05Z\"", user));
    assert_true(matches("meta.lastModified le \"2026-01-02T04:04:05.678+01:00\"", user));
    assert_false(matches("meta.lastModified lt \"2026-01-02T03:04:05.678Z\"", user));
    assert_true(matches("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "
                        "\"sales\"",
                        user));
    assert_true(matches("userName gt \"a\" and userName lt \"c\"", user));
}

static void expect_bind_error(const char *filter)
{
    const struct cloud_rtype_def *rt = cloud_schema_rtype(CLOUD_RK_USER);
    struct cloud_filter *f = NULL;
    char err[256];
    assert_int_equal(cloud_filter_parse(filter, &f, err, sizeof(err)), 0);
    struct cloud_scim_err serr = {0};
    if (cloud_filter_bind(f, rt, &serr) == 0)
        fail_msg("'%s' bound but should not", filter);
    assert_string_equal(serr.scim_type, "invalidFilter");
    cloud_filter_free(f);
}

static void test_bind_errors(void **state)
{
    (void)state;
    expect_bind_error("nosuch eq \"x\"");
    expect_bind_error("name.nosuch eq \"x\"");
    expect_bind_error("active gt true");
    expect_bind_error("active eq \"true\"");
    expect_bind_error("userName eq 5");
    expect_bind_error("name eq \"x\"");
    expect_bind_error("meta.lastModified gt \"yesterday\"");
    expect_bind_error("emails[nosuch eq \"x\"]");
    expect_bind_error("userName[value eq \"x\"]");
    expect_bind_error("urn:example:nosuch:foo eq \"x\"");
    expect_bind_error("userName co null");
}

/* want NULL: text is eq joined by and; else the refusal's detail must contain want. */
static void expect_eq_only(const char *text, const char *want)
{
    struct cloud_filter *f = NULL;
    char err[256] = "";
    if (cloud_filter_parse(text, &f, err, sizeof(err)) != 0)
        fail_msg("'%s' did not parse: %s", text, err);
    struct cloud_scim_err serr = {0};
    int rc = cloud_filter_eq_only(f, &serr);
    cloud_filter_free(f);
    if (want == NULL) {
        if (rc != 0)
            fail_msg("'%s' refused: %s", text, serr.detail);
        return;
    }
    if (rc == 0)
        fail_msg("'%s' accepted but should not", text);
    assert_int_equal(serr.status, 400);
    assert_string_equal(serr.scim_type, "invalidFilter");
    if (strstr(serr.detail, want) == NULL)
        fail_msg("'%s': detail '%s' does not name %s", text, serr.detail, want);
}

static void test_eq_only(void **state)
{
    (void)state;
    expect_eq_only("userName eq \"a\"", NULL);
    expect_eq_only("userName eq \"a\" and externalId eq \"b\" and active eq true", NULL);
    expect_eq_only("(userName eq \"a\") and (displayName eq null)", NULL);
    expect_eq_only("userName ne \"a\"", "'ne'");
    expect_eq_only("userName co \"a\"", "'co'");
    expect_eq_only("userName sw \"a\"", "'sw'");
    expect_eq_only("userName ew \"a\"", "'ew'");
    expect_eq_only("title pr", "'pr'");
    expect_eq_only("meta.lastModified gt \"2020-01-01T00:00:00Z\"", "'gt'");
    expect_eq_only("meta.lastModified ge \"2020-01-01T00:00:00Z\"", "'ge'");
    expect_eq_only("meta.lastModified lt \"2020-01-01T00:00:00Z\"", "'lt'");
    expect_eq_only("meta.lastModified le \"2020-01-01T00:00:00Z\"", "'le'");
    expect_eq_only("userName eq \"a\" or userName eq \"b\"", "'or'");
    expect_eq_only("not (userName eq \"a\")", "'not'");
    expect_eq_only("userName eq \"a\" and (title eq \"x\" or title eq \"y\")", "'or'");
    expect_eq_only("emails[type eq \"work\"]", "emails[...]");
    expect_eq_only("userName eq \"a\" and emails[value eq \"x\"]", "emails[...]");
}

static void expect_path(const char *text, const char *uri, const char *attr, const char *sub,
                        const char *filter)
{
    struct cloud_patch_path p;
    char err[256] = "";
    if (cloud_patch_path_parse(text, &p, err, sizeof(err)) != 0)
        fail_msg("path '%s': %s", text, err);
    if (uri == NULL)
        assert_null(p.uri);
    else
        assert_string_equal(p.uri, uri);
    assert_string_equal(p.attr, attr);
    if (sub == NULL)
        assert_null(p.sub);
    else
        assert_string_equal(p.sub, sub);
    if (filter == NULL) {
        assert_null(p.filter);
    } else {
        char got[512];
        render(p.filter, got, sizeof(got));
        assert_string_equal(got, filter);
    }
    cloud_patch_path_clear(&p);
}

static void expect_path_error(const char *text)
{
    struct cloud_patch_path p;
    char err[256] = "";
    if (cloud_patch_path_parse(text, &p, err, sizeof(err)) == 0) {
        cloud_patch_path_clear(&p);
        fail_msg("path '%s' parsed but should not", text);
    }
    assert_null(p.attr);
    assert_null(p.filter);
}

static void test_patch_paths(void **state)
{
    (void)state;
    expect_path("title", NULL, "title", NULL, NULL);
    expect_path("name.givenName", NULL, "name", "givenName", NULL);
    expect_path("members", NULL, "members", NULL, NULL);
    expect_path("members[value eq \"2819c223-7f76-453a-919d-413861904646\"]", NULL, "members", NULL,
                "value eq \"2819c223-7f76-453a-919d-413861904646\"");
    expect_path("emails[type eq \"work\"].value", NULL, "emails", "value", "type eq \"work\"");
    expect_path("addresses[type eq \"work\" and primary eq true].streetAddress", NULL, "addresses",
                "streetAddress", "(type eq \"work\" and primary eq true)");
    expect_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", NULL,
                NULL);
    expect_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value",
                NULL);
    expect_path("members[value eq \"a\"].$ref", NULL, "members", "$ref", "value eq \"a\"");
    expect_path_error("");
    expect_path_error("[value eq \"x\"]");
    expect_path_error("members[value eq \"x\"");
    expect_path_error("members[value eq]");
    expect_path_error("members[value eq \"x\"]x");
    expect_path_error("members[value eq \"x\"].");
    expect_path_error("name.givenName[value eq \"x\"]");
    expect_path_error("a.b.c");
    expect_path_error("title extra");
    expect_path_error("9lives");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_value_paths_and_uris),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_eq_only),
        cmocka_unit_test(test_patch_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
