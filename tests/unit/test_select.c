/* Unit tests for connector/select.c: filters per kind, base DNs, classification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/select.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define NC "DC=example,DC=com"

static struct config *load(const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text), "[ldap]\nurls = ldap://dc1\n%s", extra);
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (config_load_string(text, "t.conf", &cfg, &err) != DIRCONN_OK)
        fail_msg("%s", err.msg);
    return cfg;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *cfg = load("");
    struct select_plan plan;
    assert_int_equal(select_build(cfg, LDAP_SERVER_AD_DS, NC, &plan, NULL), DIRCONN_OK);
    assert_int_equal(plan.n, 3);
    assert_int_equal(plan.searches[0].kind, OBJECT_USER);
    assert_string_equal(plan.searches[0].base, NC);
    assert_string_equal(plan.searches[0].filter,
                        "(&(&(objectClass=user)(!(objectClass=computer))))");
    assert_string_equal(plan.searches[1].filter,
                        "(&(&(objectClass=group)(!(isCriticalSystemObject=TRUE))))");
    assert_string_equal(plan.searches[2].filter, "(&(objectClass=contact))");
    select_plan_free(&plan);
    config_free(cfg);
}

static void test_enabled_only_and_groups(void **state)
{
    (void)state;
    struct config *cfg = load("[users]\nenabled_only = yes\n"
                              "security_groups = CN=Cloud Users (EU),OU=Groups," NC "\n"
                              "filter = department=Sales\n"
                              "[contacts]\nenabled = no\n");
    struct select_plan plan;
    assert_int_equal(select_build(cfg, LDAP_SERVER_AD_DS, NC, &plan, NULL), DIRCONN_OK);
    assert_int_equal(plan.n, 2);
    assert_string_equal(plan.searches[0].filter,
                        "(&(&(objectClass=user)(!(objectClass=computer)))"
                        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
                        "(|(memberOf=CN=Cloud Users \\28EU\\29,OU=Groups,DC=example,DC=com))"
                        "(department=Sales))");
    select_plan_free(&plan);
    assert_int_equal(select_build(cfg, LDAP_SERVER_AD_LDS, NC, &plan, NULL), DIRCONN_OK);
    assert_non_null(strstr(plan.searches[0].filter, "(!(msDS-UserAccountDisabled=TRUE))"));
    select_plan_free(&plan);
    config_free(cfg);
}

static void test_base_dns(void **state)
{
    (void)state;
    struct config *cfg = load("[users]\nbase_dns = OU=Staff," NC "; OU=Sales,OU=Staff," NC
                              "; ou=staff,dc=EXAMPLE,dc=com; OU=Contractors," NC "\n"
                              "[groups]\nenabled = no\n[contacts]\nenabled = no\n");
    struct select_plan plan;
    assert_int_equal(select_build(cfg, LDAP_SERVER_AD_DS, NC, &plan, NULL), DIRCONN_OK);
    assert_int_equal(plan.n, 2);
    assert_string_equal(plan.searches[0].base, "OU=Staff," NC);
    assert_string_equal(plan.searches[1].base, "OU=Contractors," NC);
    select_plan_free(&plan);
    config_free(cfg);

    cfg = load("[users]\nbase_dns = OU=Staff,DC=other,DC=com\n");
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(select_build(cfg, LDAP_SERVER_AD_DS, NC, &plan, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "t.conf: [users] base_dns: 'OU=Staff,DC=other,DC=com' is not "
                                    "inside the synchronised naming context"));
    config_free(cfg);
}

static void test_dn_within(void **state)
{
    (void)state;
    assert_true(select_dn_within("CN=a\\, b,OU=x," NC, NC));
    assert_true(select_dn_within(NC, "dc=example,dc=com"));
    assert_false(select_dn_within("DC=com", NC));
    assert_false(select_dn_within("OU=x,DC=example,DC=org", NC));
    assert_false(select_dn_within("CN=ex,DC=com", "DC=example,DC=com"));
    assert_false(select_dn_within("not a dn", NC));
}

static struct ldap_entry *entry_with(const char *attr, const char *const *values)
{
    struct ldap_entry *e = calloc(1, sizeof(*e));
    e->dn = strdup("CN=x," NC);
    e->attrs = calloc(1, sizeof(*e->attrs));
    e->n_attrs = 1;
    e->attrs[0].name = strdup(attr);
    size_t n = 0;
    while (values[n] != NULL)
        n++;
    e->attrs[0].values = calloc(n, sizeof(struct ldap_value));
    for (size_t i = 0; i < n; i++) {
        e->attrs[0].values[i].data = strdup(values[i]);
        e->attrs[0].values[i].len = strlen(values[i]);
    }
    e->attrs[0].n_values = n;
    return e;
}

static void test_classify_and_enabled(void **state)
{
    (void)state;
    const char *const user[] = {"top", "person", "organizationalPerson", "user", NULL};
    const char *const computer[] = {"top", "person", "user", "computer", NULL};
    const char *const group[] = {"top", "group", NULL};
    const char *const contact[] = {"top", "contact", NULL};
    const char *const ou[] = {"top", "organizationalUnit", NULL};
    struct ldap_entry *e = entry_with("objectClass", user);
    assert_int_equal(select_classify(e), OBJECT_USER);
    ldap_entry_free(e);
    e = entry_with("objectClass", computer);
    assert_int_equal(select_classify(e), OBJECT_KINDS);
    ldap_entry_free(e);
    e = entry_with("objectClass", group);
    assert_int_equal(select_classify(e), OBJECT_GROUP);
    ldap_entry_free(e);
    e = entry_with("objectClass", contact);
    assert_int_equal(select_classify(e), OBJECT_CONTACT);
    ldap_entry_free(e);
    e = entry_with("objectClass", ou);
    assert_int_equal(select_classify(e), OBJECT_KINDS);
    ldap_entry_free(e);

    const char *const enabled[] = {"512", NULL};
    const char *const disabled[] = {"514", NULL};
    const char *const lds_true[] = {"TRUE", NULL};
    const char *const lds_false[] = {"FALSE", NULL};
    e = entry_with("userAccountControl", enabled);
    assert_true(select_entry_enabled(e));
    ldap_entry_free(e);
    e = entry_with("userAccountControl", disabled);
    assert_false(select_entry_enabled(e));
    ldap_entry_free(e);
    e = entry_with("msDS-UserAccountDisabled", lds_true);
    assert_false(select_entry_enabled(e));
    ldap_entry_free(e);
    e = entry_with("msDS-UserAccountDisabled", lds_false);
    assert_true(select_entry_enabled(e));
    ldap_entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_enabled_only_and_groups),
        cmocka_unit_test(test_base_dns),
        cmocka_unit_test(test_dn_within),
        cmocka_unit_test(test_classify_and_enabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
