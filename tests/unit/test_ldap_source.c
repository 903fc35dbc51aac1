/* Unit tests for connector/ldap_source.c: why AD refused a bind (the "data" code in words). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/ldap_source.h"

#include <string.h>

#define AD_DIAG(code)                                                                              \
    "80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data " code ", v4563"

static void test_ad_bind_data_codes(void **state)
{
    (void)state;
    static const struct {
        const char *diag, *code, *words;
    } cases[] = {
        {AD_DIAG("525"), "525", "user not found"},
        {AD_DIAG("52e"), "52e", "invalid credentials"},
        {AD_DIAG("530"), "530", "logon not permitted at this time"},
        {AD_DIAG("531"), "531", "logon not permitted at this workstation"},
        {AD_DIAG("532"), "532", "password expired"},
        {AD_DIAG("533"), "533", "account disabled"},
        {AD_DIAG("701"), "701", "account expired"},
        {AD_DIAG("773"), "773", "must reset password"},
        {AD_DIAG("775"), "775", "account locked out"},
        /* Samba's spelling of the same message */
        {"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1",
         "52e", "invalid credentials"},
        /* upper-case hex, a code at the end of the text */
        {"comment: AcceptSecurityContext error, data 52E", "52e", "invalid credentials"},
        {AD_DIAG("569"), "569", "a reason AD did not name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char code[9] = "x";
        const char *words = ldap_ad_bind_data(cases[i].diag, code, sizeof(code));
        assert_non_null(words);
        assert_string_equal(words, cases[i].words);
        assert_string_equal(code, cases[i].code);
    }
}

static void test_ad_bind_data_absent(void **state)
{
    (void)state;
    static const char *const diags[] = {
        NULL,
        "",
        "Invalid credentials",                                      /* slapd says nothing more */
        "comment: AcceptSecurityContext error, data , v4563",       /* no digits */
        "comment: AcceptSecurityContext error, data 52g, v1",       /* not hex up to the comma */
        "comment: AcceptSecurityContext error, data 123456789, v1", /* too long for a Win32 code */
        "comment: error,data 52e, v1",                              /* not the ", data " field */
    };
    for (size_t i = 0; i < sizeof(diags) / sizeof(diags[0]); i++) {
        char code[9] = "x";
        assert_null(ldap_ad_bind_data(diags[i], code, sizeof(code)));
        assert_string_equal(code, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ad_bind_data_codes),
        cmocka_unit_test(test_ad_bind_data_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
