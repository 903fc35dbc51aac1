/* Unit tests for connector/avatar.c: URI patterns with {attribute:regex} placeholders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/avatar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct avatar *compile_ok(const char *pattern)
{
    struct avatar *a = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (avatar_compile(pattern, &a, &err) != DIRCONN_OK)
        fail_msg("pattern '%s' did not compile: %s", pattern, err.msg);
    assert_non_null(a);
    return a;
}

static void compile_fail(const char *pattern, const char *expect)
{
    struct avatar *a = (struct avatar *)1;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = avatar_compile(pattern, &a, &err);
    if (rc != DIRCONN_ECONFIG)
        fail_msg("pattern '%s' gave %s, not ECONFIG", pattern, dirconn_err_name(rc));
    assert_null(a);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, expect);
    assert_string_equal(err.msg, strstr(err.msg, "[avatar] pattern: "));
}

/* Render pattern with value for every placeholder; returns the URI (caller frees) or NULL. */
static char *render(const char *pattern, const char *attribute, const char *value, char *why,
                    size_t why_len)
{
    struct avatar *a = compile_ok(pattern);
    char *uri = NULL;
    enum dirconn_err rc = avatar_render_value(a, attribute, value, &uri, why, why_len);
    avatar_free(a);
    if (rc != DIRCONN_OK) {
        assert_int_equal(rc, DIRCONN_EFAIL);
        assert_null(uri);
        return NULL;
    }
    return uri;
}

static void expect_uri(const char *pattern, const char *value, const char *want)
{
    char why[256] = "";
    char *uri = render(pattern, NULL, value, why, sizeof(why));
    if (uri == NULL)
        fail_msg("'%s' with '%s' gave no URI: %s", pattern, value, why);
    assert_string_equal(uri, want);
    free(uri);
}

static void test_seed_example(void **state)
{
    (void)state;
    /* "Configure an Avatar": abcd@example.com gives .../zoom/abcd.jpg */
    expect_uri("http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg", "abcd@example.com",
               "http://www.example.com/dir/photo/zoom/abcd.jpg");
    struct avatar *a = compile_ok("http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg");
    const char *const *attrs = avatar_attributes(a);
    assert_string_equal(attrs[0], "mail");
    assert_null(attrs[1]);
    avatar_free(a);
}

static void test_whole_value_and_several_placeholders(void **state)
{
    (void)state;
    expect_uri("https://photos.example.com/{sAMAccountName}.png", "jdoe",
               "https://photos.example.com/jdoe.png");
    expect_uri("https://photos.example.com/{mail:(?<=@)[^.]+}/{mail:^[^@]+}.jpg",
               "abcd@sales.example.com", "https://photos.example.com/sales/abcd.jpg");
    /* Lookbehind and lookahead together, plus a quantifier with braces inside the regex. */
    expect_uri("https://x.example/{employeeID:(?<=E)\\d{3}(?=-)}", "E123-77",
               "https://x.example/123");
    /* Literal braces. */
    expect_uri("https://x.example/{{a}}/{uid}", "bob", "https://x.example/{a}/bob");

    /* Two attributes from an entry. */
    struct avatar *a = compile_ok("https://x.example/{department}/{mail:.*?(?=@)}.jpg");
    const char *const *attrs = avatar_attributes(a);
    assert_string_equal(attrs[0], "department");
    assert_string_equal(attrs[1], "mail");
    assert_null(attrs[2]);

    struct ldap_value mail = {"jo@example.com", 14}, dept = {"R&D", 3};
    struct ldap_attr at[2] = {{"mail", &mail, 1}, {"department", &dept, 1}};
    struct ldap_entry e = {.dn = "CN=Jo,DC=example,DC=com", .attrs = at, .n_attrs = 2};
    char *uri = NULL;
    char why[256];
    assert_int_equal(avatar_render(a, &e, &uri, why, sizeof(why)), DIRCONN_OK);
    assert_string_equal(uri, "https://x.example/R%26D/jo.jpg");
    free(uri);

    /* A missing attribute gives no URI and a reason. */
    e.n_attrs = 1;
    assert_int_equal(avatar_render(a, &e, &uri, why, sizeof(why)), DIRCONN_EFAIL);
    assert_null(uri);
    assert_string_equal(why, "the attribute department is missing");

    /* avatar_render_value with a named attribute: the other placeholder has no value. */
    assert_int_equal(avatar_render_value(a, "mail", "jo@example.com", &uri, why, sizeof(why)),
                     DIRCONN_EFAIL);
    assert_string_equal(why, "no value given for attribute department");
    avatar_free(a);
}

static void test_no_match(void **state)
{
    (void)state;
    char why[256] = "";
    char *uri = render("http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg", NULL,
                       "no-at-sign", why, sizeof(why));
    assert_null(uri);
    assert_non_null(strstr(why, "does not match the value 'no-at-sign'"));
    /* A match of nothing at all is no match either. */
    uri = render("http://x.example/{mail:.*?(?=@)}.jpg", NULL, "@example.com", why, sizeof(why));
    assert_null(uri);
    assert_non_null(strstr(why, "empty string"));
    uri = render("http://x.example/{uid}.jpg", NULL, "", why, sizeof(why));
    assert_null(uri);
    assert_string_equal(why, "the attribute uid is empty");
}

static void test_percent_encoding(void **state)
{
    (void)state;
    /* RFC 3986: unreserved characters stay, everything else is percent-encoded as UTF-8. */
    expect_uri("https://x.example/p/{cn}", "Ann Lee", "https://x.example/p/Ann%20Lee");
    expect_uri("https://x.example/p/{cn}", "Zoë", "https://x.example/p/Zo%C3%AB");
    expect_uri("https://x.example/p/{cn}", "山田", "https://x.example/p/%E5%B1%B1%E7%94%B0");
    expect_uri("https://x.example/p/{path}", "a/b?c#d", "https://x.example/p/a%2Fb%3Fc%23d");
    expect_uri("https://x.example/p/{v}", "A-z_0.9~", "https://x.example/p/A-z_0.9~");
    /* Unicode in the regex itself (PCRE2 UTF mode): one character, not one byte. */
    expect_uri("https://x.example/{cn:^.}", "Éva", "https://x.example/%C3%89");
    /* \w and \d are Unicode-aware (UCP), as in .NET regular expressions. */
    expect_uri("https://x.example/{cn:^\\w+}", "Zoë Ann", "https://x.example/Zo%C3%AB");
}

static void test_bad_patterns(void **state)
{
    (void)state;
    compile_fail("http://x.example/{mail:(abc}.jpg",
                 "placeholder {mail:(abc}: regular expression error at offset 4: missing closing "
                 "parenthesis");
    compile_fail("http://x.example/{mail:a{2,1}}.jpg", "placeholder {mail:a{2,1}}: regular "
                                                       "expression error at offset");
    compile_fail("http://x.example/{mail:.*", "is not closed");
    compile_fail("http://x.example/{mail", "must be {attribute} or {attribute:regex}");
    compile_fail("http://x.example/{}", "must be {attribute} or {attribute:regex}");
    compile_fail("http://x.example/a}b", "unmatched '}' at offset 18");
    compile_fail("http://x.example/{mail:}", "the regular expression is empty");
    /* Results that cannot be absolute http(s) URIs. */
    compile_fail("ftp://x.example/{mail}", "must start with http:// or https://");
    compile_fail("{url}", "must start with http:// or https://");
    compile_fail("/photos/{mail}.jpg", "must start with http:// or https://");
    compile_fail("http://bad host.example/{mail}.jpg", "cannot give an absolute http(s) URI");
}

static void test_final_uri_checked(void **state)
{
    (void)state;
    /* The host comes from the value: a value that breaks it gives no URI. */
    char why[256] = "";
    char *uri = render("https://{host:[^ ]+}.example.com/x.jpg", NULL, "ok", why, sizeof(why));
    assert_non_null(uri);
    assert_string_equal(uri, "https://ok.example.com/x.jpg");
    free(uri);
    uri = render("https://{host:.+}.example.com/x.jpg", NULL, "bad host", why, sizeof(why));
    assert_null(uri);
    assert_non_null(strstr(why, "is not an absolute http(s) URI"));
    /* Values that are too long for a URI. */
    char big[AVATAR_URI_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    uri = render("https://x.example/{v}", NULL, big, why, sizeof(why));
    assert_null(uri);
    assert_non_null(strstr(why, "longer than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_whole_value_and_several_placeholders),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_percent_encoding),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_final_uri_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
