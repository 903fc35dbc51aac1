/* Unit tests for connector/ldap_source.c: why AD refused a bind (the "data" code in words), the
 * size of an entry read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/ldap_source.h"

#include <stdlib.h>
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

/* Append the values vals (n, NUL-terminated strings) to a new attribute desc of e. */
static void add_values(struct ldap_entry *e, const char *desc, const char *const *vals, size_t n)
{
    long first = 0, next = 0;
    struct ldap_attr *a = ldap_entry_add_attr(e, desc, strlen(desc), &first, &next);
    assert_non_null(a);
    a->values = calloc(n, sizeof(*a->values));
    assert_non_null(a->values);
    for (size_t i = 0; i < n; i++) {
        a->values[i].data = strdup(vals[i]);
        a->values[i].len = strlen(vals[i]);
    }
    a->n_values = n;
}

/*
 * ldap_entry_bytes: the DN, each attribute description (a range option is not kept) and
 * every value; the counter the "directory read" debug lines and bench/big_group.sh report.
 */
static void test_entry_bytes(void **state)
{
    (void)state;
    assert_int_equal(ldap_entry_bytes(NULL), 0);
    struct ldap_entry *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->dn = strdup("cn=g,dc=x"); /* 9 */
    assert_int_equal(ldap_entry_bytes(e), 9);
    static const char *const members[] = {"cn=a,dc=x", "cn=bb,dc=x"}; /* 9 + 10 */
    add_values(e, "member;range=0-1", members, 2);                    /* "member": 6 */
    static const char *const cn[] = {"g"};                            /* 1 */
    add_values(e, "cn", cn, 1);                                       /* 2 */
    assert_int_equal(ldap_entry_bytes(e), 9 + 6 + 19 + 2 + 1);
    ldap_entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ad_bind_data_codes),
        cmocka_unit_test(test_ad_bind_data_absent),
        cmocka_unit_test(test_entry_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
