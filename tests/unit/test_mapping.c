/* Unit tests for connector/mapping.c: defaults, expressions, validation, skips, hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MINIMAL "[ldap]\nurls = ldaps://dc1.example.com\n"

/* ---- helpers: entries in memory, configurations, JSON lookups ----------------------------- */

static struct ldap_entry *entry_new(const char *dn, const char *id)
{
    struct ldap_entry *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->dn = strdup(dn);
    if (id != NULL) {
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->id_source = LDAP_ID_OBJECTGUID;
    }
    return e;
}

/* Append one value (len bytes) to attribute name, creating it at the end. */
static void entry_add(struct ldap_entry *e, const char *name, const void *data, size_t len)
{
    struct ldap_attr *a = NULL;
    for (size_t i = 0; i < e->n_attrs; i++) {
        if (strcmp(e->attrs[i].name, name) == 0)
            a = &e->attrs[i];
    }
    if (a == NULL) {
        e->attrs = realloc(e->attrs, (e->n_attrs + 1) * sizeof(*e->attrs));
        a = &e->attrs[e->n_attrs++];
        a->name = strdup(name);
        a->values = NULL;
        a->n_values = 0;
    }
    a->values = realloc(a->values, (a->n_values + 1) * sizeof(*a->values));
    struct ldap_value *v = &a->values[a->n_values++];
    v->data = malloc(len + 1);
    memcpy(v->data, data, len);
    v->data[len] = '\0';
    v->len = len;
}

static void entry_set(struct ldap_entry *e, const char *name, const char *value)
{
    entry_add(e, name, value, strlen(value));
}

#define JOHN_DN "CN=John Smith,OU=Employees,DC=example,DC=com"
#define JOHN_ID "b6b3ec08-2f9c-4a2b-8d0e-41632c6b7a10"

/* A full AD DS user; the attributes are added in the order of names[] (for hash tests). */
static struct ldap_entry *adds_user(bool reverse)
{
    static const char *const kv[][2] = {
        {"objectClass", "user"},
        {"mail", "john.smith@example.com"},
        {"userAccountControl", "512"},
        {"displayName", "Smith, John"},
        {"givenName", "John"},
        {"sn", "Smith"},
        {"title", "Engineer"},
        {"employeeType", "Employee"},
        {"preferredLanguage", "en-US"},
        {"telephoneNumber", "+1 555 0100"},
        {"mobile", "+1 555 0101"},
        {"facsimileTelephoneNumber", "+1 555 0102"},
        {"pager", "+1 555 0103"},
        {"homePhone", "+1 555 0104"},
        {"streetAddress", "1 Main Street"},
        {"l", "Springfield"},
        {"st", "IL"},
        {"postalCode", "62701"},
        {"c", "US"},
        {"physicalDeliveryOfficeName", "Building 4, Room 210"},
        {"employeeNumber", "E1001"},
        {"company", "Example Corp"},
        {"division", "Products"},
        {"department", "R&D"},
        {"manager", "CN=Jane Boss,OU=Employees,DC=example,DC=com"},
    };
    size_t n = sizeof(kv) / sizeof(kv[0]);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    for (size_t i = 0; i < n; i++) {
        size_t k = reverse ? n - 1 - i : i;
        entry_set(e, kv[k][0], kv[k][1]);
    }
    return e;
}

static struct config *config_ok(const char *text)
{
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (config_load_string(text, "test.conf", &cfg, &err) != DIRCONN_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static struct mapping *compile_ok(const char *text, enum object_kind kind)
{
    struct config *cfg = config_ok(text);
    struct mapping *m = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (mapping_compile(cfg, kind, &m, &err) != DIRCONN_OK)
        fail_msg("mapping: %s", err.msg);
    config_free(cfg);
    return m;
}

static void compile_fail(const char *mapping_lines, const char *expect)
{
    char text[2048];
    snprintf(text, sizeof(text), MINIMAL "[mapping]\n%s", mapping_lines);
    struct config *cfg = config_ok(text);
    struct mapping *m = (struct mapping *)1;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = mapping_compile(cfg, OBJECT_USER, &m, &err);
    config_free(cfg);
    if (rc != DIRCONN_ECONFIG)
        fail_msg("'%s' gave %s, not ECONFIG", mapping_lines, dirconn_err_name(rc));
    assert_null(m);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, expect);
    assert_null(strchr(err.msg, '\n'));
}

static void apply_ok(const struct mapping *m, const struct ldap_entry *e, struct mapping_result *r)
{
    assert_int_equal(mapping_apply(m, e, r), DIRCONN_OK);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether two results carry the same content for the state and the plan: the resource as
 * canonical JSON (sorted keys), the manager DN and the member DNs in any order. */
static bool same_result(const struct mapping_result *a, const struct mapping_result *b)
{
    assert_false(a->skipped);
    assert_false(b->skipped);
    char *da = json_dumps(a->resource, JSON_SORT_KEYS | JSON_COMPACT);
    char *db = json_dumps(b->resource, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(da);
    assert_non_null(db);
    bool same =
        strcmp(da, db) == 0 &&
        strcmp(a->manager_dn ? a->manager_dn : "", b->manager_dn ? b->manager_dn : "") == 0 &&
        a->n_members == b->n_members;
    free(da);
    free(db);
    if (!same || a->n_members == 0)
        return same;
    const char **ma = calloc(a->n_members, sizeof(*ma)), **mb = calloc(b->n_members, sizeof(*mb));
    assert_non_null(ma);
    assert_non_null(mb);
    for (size_t i = 0; i < a->n_members; i++) {
        ma[i] = a->member_dns[i];
        mb[i] = b->member_dns[i];
    }
    qsort(ma, a->n_members, sizeof(*ma), cmp_str);
    qsort(mb, b->n_members, sizeof(*mb), cmp_str);
    for (size_t i = 0; i < a->n_members && same; i++)
        same = strcmp(ma[i], mb[i]) == 0;
    free(ma);
    free(mb);
    return same;
}

/* A string member of obj by a dotted path ("name.givenName"), or NULL. */
static const char *jstr(const json_t *obj, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = obj;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

/* The value of the element of array `name` with the given type, or NULL. */
static const char *typed(const json_t *res, const char *name, const char *type, const char *key)
{
    const json_t *arr = json_object_get(res, name);
    size_t i;
    const json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (strcmp(json_string_value(json_object_get(el, "type")), type) == 0)
            return json_string_value(json_object_get(el, key));
    }
    return NULL;
}

static const json_t *enterprise(const json_t *res)
{
    return json_object_get(res, MAPPING_SCHEMA_ENTERPRISE);
}

static void dump_issues(const struct mapping_result *r)
{
    for (size_t i = 0; i < r->n_issues; i++)
        print_message("issue: %s\n", r->issues[i].message);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_default_adds_user(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    assert_int_equal(mapping_kind_of(m), OBJECT_USER);
    struct ldap_entry *e = adds_user(false);
    struct mapping_result r;
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_false(r.skipped);
    assert_int_equal(r.n_issues, 0);
    const json_t *res = r.resource;
    const json_t *schemas = json_object_get(res, "schemas");
    assert_int_equal(json_array_size(schemas), 2);
    assert_string_equal(json_string_value(json_array_get(schemas, 0)), MAPPING_SCHEMA_USER);
    assert_string_equal(json_string_value(json_array_get(schemas, 1)), MAPPING_SCHEMA_ENTERPRISE);
    assert_string_equal(jstr(res, "userName"), "john.smith@example.com");
    assert_string_equal(jstr(res, "externalId"), JOHN_ID);
    assert_string_equal(r.external_id, JOHN_ID);
    assert_true(json_is_true(json_object_get(res, "active")));
    assert_string_equal(jstr(res, "displayName"), "Smith, John");
    assert_string_equal(jstr(res, "name.givenName"), "John");
    assert_string_equal(jstr(res, "name.familyName"), "Smith");
    assert_string_equal(jstr(res, "title"), "Engineer");
    assert_string_equal(jstr(res, "userType"), "Employee");
    assert_string_equal(jstr(res, "preferredLanguage"), "en-US");
    assert_string_equal(typed(res, "emails", "work", "value"), "john.smith@example.com");
    assert_true(json_is_true(
        json_object_get(json_array_get(json_object_get(res, "emails"), 0), "primary")));
    /* Phone numbers in a fixed order: work, mobile, fax, pager, home. */
    const json_t *phones = json_object_get(res, "phoneNumbers");
    assert_int_equal(json_array_size(phones), 5);
    static const char *const order[] = {"work", "mobile", "fax", "pager", "home"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(phones, i), "type")),
                            order[i]);
    assert_string_equal(typed(res, "phoneNumbers", "fax", "value"), "+1 555 0102");
    assert_string_equal(typed(res, "phoneNumbers", "home", "value"), "+1 555 0104");
    assert_string_equal(typed(res, "addresses", "work", "streetAddress"), "1 Main Street");
    assert_string_equal(typed(res, "addresses", "work", "locality"), "Springfield");
    assert_string_equal(typed(res, "addresses", "work", "region"), "IL");
    assert_string_equal(typed(res, "addresses", "work", "postalCode"), "62701");
    assert_string_equal(typed(res, "addresses", "work", "country"), "US");
    assert_string_equal(typed(res, "addresses", "other", "formatted"), "Building 4, Room 210");
    assert_string_equal(jstr(enterprise(res), "employeeNumber"), "E1001");
    assert_string_equal(jstr(enterprise(res), "organization"), "Example Corp");
    assert_string_equal(jstr(enterprise(res), "division"), "Products");
    assert_string_equal(jstr(enterprise(res), "department"), "R&D");
    /* The manager is a DN for the plan stage, not a value in the record. */
    assert_null(json_object_get(enterprise(res), "manager"));
    assert_string_equal(r.manager_dn, "CN=Jane Boss,OU=Employees,DC=example,DC=com");
    assert_null(json_object_get(res, "photos"));
    mapping_result_clear(&r);

    /* ADS_UF_ACCOUNTDISABLE (0x2) makes the user inactive. */
    free(e->attrs[2].values[0].data);
    e->attrs[2].values[0].data = strdup("514");
    e->attrs[2].values[0].len = 3;
    apply_ok(m, e, &r);
    assert_true(json_is_false(json_object_get(r.resource, "active")));
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_default_adlds_user(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    struct ldap_entry *e =
        entry_new("CN=Ann,OU=People,O=Partition,C=US", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    e->id_source = LDAP_ID_ENTRYUUID;
    entry_set(e, "objectClass", "user");
    entry_set(e, "mail", "ann@example.org");
    entry_set(e, "msDS-UserAccountDisabled", "TRUE");
    entry_set(e, "displayName", "Ann Example");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    assert_true(json_is_false(json_object_get(r.resource, "active")));
    assert_string_equal(jstr(r.resource, "externalId"), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    /* No enterprise attribute, no enterprise schema. */
    assert_int_equal(json_array_size(json_object_get(r.resource, "schemas")), 1);
    assert_null(enterprise(r.resource));
    assert_null(json_object_get(r.resource, "phoneNumbers"));
    assert_null(json_object_get(r.resource, "addresses"));
    assert_null(r.manager_dn);
    mapping_result_clear(&r);

    free(e->attrs[2].values[0].data);
    e->attrs[2].values[0].data = strdup("FALSE");
    e->attrs[2].values[0].len = 5;
    apply_ok(m, e, &r);
    assert_true(json_is_true(json_object_get(r.resource, "active")));
    mapping_result_clear(&r);

    /* A value that is neither TRUE nor FALSE: warned, active left out. */
    free(e->attrs[2].values[0].data);
    e->attrs[2].values[0].data = strdup("maybe");
    e->attrs[2].values[0].len = 5;
    apply_ok(m, e, &r);
    assert_null(json_object_get(r.resource, "active"));
    assert_int_equal(r.n_issues, 1);
    assert_string_equal(r.issues[0].message,
                        "For CN=Ann,OU=People,O=Partition,C=US, the attribute "
                        "msDS-UserAccountDisabled has the following invalid value: maybe. This "
                        "attribute must be TRUE or FALSE.");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_concatenation(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[mapping]\n"
                                           "displayName = givenName sn\n"
                                           "name.formatted = sn, givenName\n"
                                           "nickName = givenName - initials - sn\n",
                                   OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    entry_set(e, "givenName", "John");
    entry_set(e, "sn", "Smith");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_string_equal(jstr(r.resource, "displayName"), "John Smith");
    assert_string_equal(jstr(r.resource, "name.formatted"), "Smith, John");
    /* The missing middle attribute drops out with the separator before it. */
    assert_string_equal(jstr(r.resource, "nickName"), "John - Smith");
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* Only givenName: no dangling separator. */
    e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    entry_set(e, "givenName", "John");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(r.resource, "displayName"), "John");
    assert_string_equal(jstr(r.resource, "name.formatted"), "John");
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* Only sn. */
    e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    entry_set(e, "sn", "Smith");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(r.resource, "displayName"), "Smith");
    assert_string_equal(jstr(r.resource, "name.formatted"), "Smith");
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* Neither: the value is absent (and so is the name object). */
    e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    apply_ok(m, e, &r);
    assert_null(json_object_get(r.resource, "displayName"));
    assert_null(json_object_get(r.resource, "name"));
    assert_null(json_object_get(r.resource, "nickName"));
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_constants_fallback_and_unmapping(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[mapping]\n"
                                           "userType = \"Contractor\"\n"
                                           "nickName = givenName \" \\\"The\\\" \" sn\n"
                                           "enterprise.costCenter = departmentNumber | \"none\"\n"
                                           "enterprise.division = \"Div: \" division\n"
                                           "enterprise.organization = o\n"
                                           "locale = \"en_US\"\n"
                                           "title =\n"
                                           "user.timezone = \"Europe/Berlin\"\n"
                                           "active = \"false\"\n"
                                           "externalId = dn()\n",
                                   OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    entry_set(e, "givenName", "John");
    entry_set(e, "sn", "Smith");
    entry_set(e, "title", "Engineer");
    entry_set(e, "o", "Example");
    entry_set(e, "userAccountControl", "512");
    struct mapping_result r;
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_int_equal(r.n_issues, 0);
    const json_t *res = r.resource;
    assert_string_equal(jstr(res, "userType"), "Contractor");
    assert_string_equal(jstr(res, "nickName"), "John \"The\" Smith");
    assert_string_equal(jstr(enterprise(res), "costCenter"), "none");
    /* A constant does not make a value on its own when its attribute is missing. */
    assert_null(json_object_get(enterprise(res), "division"));
    assert_string_equal(jstr(enterprise(res), "organization"), "Example");
    assert_string_equal(jstr(res, "locale"), "en_US");
    assert_string_equal(jstr(res, "timezone"), "Europe/Berlin");
    assert_null(json_object_get(res, "title")); /* unmapped by an empty expression */
    assert_true(json_is_false(json_object_get(res, "active")));
    assert_string_equal(jstr(res, "externalId"), JOHN_DN);
    mapping_result_clear(&r);

    entry_set(e, "departmentNumber", "4711");
    entry_set(e, "division", "Products");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(enterprise(r.resource), "costCenter"), "4711");
    assert_string_equal(jstr(enterprise(r.resource), "division"), "Div: Products");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_expression_edges(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[mapping]\n"
                                           "nickName = \"a|b\" | sn\n"
                                           "title = sn \" | \" givenName\n"
                                           "locale = c_1 2 c\n"
                                           "timezone = missing | other | \"UTC\"\n"
                                           "name.middleName = DN()\n"
                                           "active = \"TRUE\"\n",
                                   OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    entry_set(e, "sn", "Smith");
    entry_set(e, "givenName", "John");
    entry_set(e, "c-1", "x");
    entry_set(e, "C", "y");
    struct mapping_result r;
    apply_ok(m, e, &r);
    /* '|' inside quotes is text; only the first present alternative counts. */
    assert_string_equal(jstr(r.resource, "nickName"), "a|b");
    assert_string_equal(jstr(r.resource, "title"), "Smith | John");
    /* '_' and digits are separator text; "c" (any case) is an attribute name. */
    assert_string_equal(jstr(r.resource, "locale"), "y_1 2 y");
    /* Function names are case-insensitive, like attribute names. */
    assert_string_equal(jstr(r.resource, "name.middleName"), JOHN_DN);
    assert_string_equal(jstr(r.resource, "timezone"), "UTC");
    assert_true(json_is_true(json_object_get(r.resource, "active")));
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_bad_expressions_and_paths(void **state)
{
    (void)state;
    /* MINIMAL is 2 lines, [mapping] the 3rd: the first mapping line is line 4. */
    compile_fail("displayName = givenName sn\nfoo = mail\n",
                 "test.conf:5: [mapping] foo: unknown SCIM attribute path");
    compile_fail("emails.home = mail\n", "test.conf:4: [mapping] emails.home: unknown SCIM");
    compile_fail("displayName = \"John\n",
                 "test.conf:4: [mapping] displayName: unterminated quoted constant");
    compile_fail("displayName = \"a\\nb\"\n", "test.conf:4: [mapping] displayName: unknown escape");
    compile_fail("displayName = upper(sn)\n",
                 "test.conf:4: [mapping] displayName: unknown function 'upper()'");
    compile_fail("displayName = id(sn)\n", "test.conf:4: [mapping] displayName: id() takes no "
                                           "argument");
    compile_fail("displayName = , sn\n",
                 "test.conf:4: [mapping] displayName: literal text ', ' must stand between two "
                 "attributes");
    compile_fail("displayName = sn,\n", "literal text ',' must stand between two attributes");
    compile_fail("displayName = sn | \n", "test.conf:4: [mapping] displayName: empty alternative");
    compile_fail("displayName = active()\n",
                 "test.conf:4: [mapping] displayName: takes text, and active() gives true or "
                 "false");
    compile_fail("active = userAccountControl\n",
                 "test.conf:4: [mapping] active: takes true or false");
    compile_fail("active = active() sn\n", "active() gives true or false and cannot be combined");
    compile_fail("enterprise.manager = givenName sn\n",
                 "test.conf:4: [mapping] enterprise.manager: takes a DN-valued attribute");
    compile_fail("userName =\n", "test.conf:4: [mapping] userName: is required and cannot be "
                                 "unmapped");
    compile_fail("externalId = \n", "[mapping] externalId: is required");
    compile_fail("title = mail\n"
                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department = dept\n",
                 "test.conf:5: [mapping] "
                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: a key "
                 "cannot contain ':'");
    compile_fail("displayName = \"\x01\"\n", "literal text must be UTF-8");

    /* Paths are matched case-insensitively, in full SCIM notation or as aliases. */
    struct mapping *m = compile_ok(MINIMAL "[mapping]\n"
                                           "phoneNumbers[type eq \"mobile\"].value = pager\n"
                                           "ADDRESSES.WORK.LOCALITY = l\n"
                                           "group.displayName = name\n"
                                           "contact.displayName = cn\n",
                                   OBJECT_USER);
    mapping_free(m);

    /* group.* and contact.* lines are checked by the compile of their kind. */
    struct config *cfg = config_ok(MINIMAL "[mapping]\ngroup.userName = mail\n");
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(mapping_compile(cfg, OBJECT_USER, &m, &err), DIRCONN_OK);
    mapping_free(m);
    assert_int_equal(mapping_compile(cfg, OBJECT_GROUP, &m, &err), DIRCONN_ECONFIG);
    assert_string_equal(err.msg, "test.conf:4: [mapping] group.userName: not an attribute that "
                                 "groups are mapped to (groups take externalId and displayName)");
    config_free(cfg);
    cfg = config_ok(MINIMAL "[mapping]\ncontact.phoneNumbers.work = telephoneNumber\n");
    assert_int_equal(mapping_compile(cfg, OBJECT_CONTACT, &m, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "test.conf:4: [mapping] contact.phoneNumbers.work: not an "
                                    "attribute that contacts are mapped to"));
    config_free(cfg);
}

static void test_invalid_phone_keeps_the_rest(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    struct ldap_entry *e = entry_new("CN=b,OU=Employees,OU=C Users,DC=c,DC=com", JOHN_ID);
    entry_set(e, "mail", "b@c.com");
    entry_set(e, "telephoneNumber", "+");
    entry_set(e, "mobile", "+1 555 0101");
    entry_set(e, "displayName", "B");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    assert_int_equal(r.n_issues, 1);
    assert_string_equal(r.issues[0].attribute, "telephoneNumber");
    assert_string_equal(r.issues[0].message,
                        "For CN=b,OU=Employees,OU=C Users,DC=c,DC=com, the attribute "
                        "telephoneNumber has the following invalid value: +. This attribute must "
                        "contain at least one number.");
    assert_null(typed(r.resource, "phoneNumbers", "work", "value"));
    assert_string_equal(typed(r.resource, "phoneNumbers", "mobile", "value"), "+1 555 0101");
    assert_string_equal(jstr(r.resource, "displayName"), "B");
    assert_string_equal(jstr(r.resource, "userName"), "b@c.com");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_missing_required_attribute(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    struct ldap_entry *e = entry_new("CN=Sales User,OU=Engineers,OU=K,DC=k,DC=local", JOHN_ID);
    entry_set(e, "displayName", "Sales User");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_true(r.skipped);
    assert_null(r.resource);
    assert_string_equal(r.skip_message,
                        "The required attribute mail is missing when adding on-premises entry "
                        "CN=Sales User,OU=Engineers,OU=K,DC=k,DC=local, the entry is not created "
                        "in the cloud until all required attributes have a value.");
    mapping_result_clear(&r);
    mapping_free(m);

    /* Other required attributes, and a userName from another attribute. */
    m = compile_ok(MINIMAL "[users]\nrequired_attributes = mail employeeNumber\n"
                           "[mapping]\nuserName = userPrincipalName\n",
                   OBJECT_USER);
    entry_set(e, "mail", "sales@k.local");
    apply_ok(m, e, &r);
    assert_true(r.skipped);
    assert_non_null(strstr(r.skip_message, "The required attribute employeeNumber is missing"));
    mapping_result_clear(&r);
    entry_set(e, "employeeNumber", "7");
    apply_ok(m, e, &r);
    assert_true(r.skipped);
    assert_non_null(strstr(r.skip_message, "The required attribute userPrincipalName is missing"));
    mapping_result_clear(&r);
    /* No objectGUID/entryUUID: no externalId. */
    entry_set(e, "userPrincipalName", "sales@k.local");
    e->id[0] = '\0';
    apply_ok(m, e, &r);
    assert_true(r.skipped);
    assert_non_null(strstr(r.skip_message, "The required attribute objectGUID is missing"));
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_bad_values_dropped(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[mapping]\nnickName = description\n", OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john.smith@example.com");
    entry_add(e, "title", "\xff\xfe\x00\x01", 4); /* binary */
    entry_set(e, "department",
              "R\x07"
              "D"); /* control character */
    char big[MAPPING_VALUE_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    entry_set(e, "description", big);                         /* oversized */
    entry_set(e, "displayName", "Zoë 山田 \xF0\x9F\x98\x80"); /* unicode is kept */
    entry_set(e, "givenName", "Zoë");
    struct mapping_result r;
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_false(r.skipped);
    assert_int_equal(r.n_issues, 3);
    assert_null(json_object_get(r.resource, "title"));
    assert_null(json_object_get(r.resource, "nickName"));
    assert_null(enterprise(r.resource));
    assert_string_equal(jstr(r.resource, "displayName"), "Zoë 山田 \xF0\x9F\x98\x80");
    assert_string_equal(jstr(r.resource, "name.givenName"), "Zoë");
    /* In the order of the SCIM targets: nickName, title, enterprise department. */
    assert_string_equal(r.issues[1].message,
                        "For " JOHN_DN ", the attribute title has the following invalid value: "
                        "\\xFF\\xFE\\x00\\x01. This attribute must be UTF-8 text without control "
                        "characters.");
    assert_string_equal(r.issues[2].message,
                        "For " JOHN_DN ", the attribute department has the following invalid "
                        "value: R\\x07D. This attribute must be UTF-8 text without control "
                        "characters.");
    assert_string_equal(r.issues[0].attribute, "description");
    assert_non_null(strstr(r.issues[0].message, "... (1025 bytes). This attribute must be at most "
                                                "1024 bytes long."));
    for (size_t i = 0; i < r.n_issues; i++)
        assert_null(strchr(r.issues[i].message, '\n'));
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* An e-mail address without the addr-spec shape: dropped from emails, userName kept. */
    static const char *const bad[] = {
        "john.smith",        "john@",        "@example.com",      "jo hn@example.com",
        "john@@example.com", "john@example", ".john@example.com", "john@-example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = entry_new(JOHN_DN, JOHN_ID);
        entry_set(e, "mail", bad[i]);
        apply_ok(m, e, &r);
        assert_false(r.skipped);
        if (json_object_get(r.resource, "emails") != NULL)
            fail_msg("'%s' was accepted as an e-mail address", bad[i]);
        assert_int_equal(r.n_issues, 1);
        assert_non_null(strstr(r.issues[0].message, "This attribute must be an email address"));
        assert_string_equal(jstr(r.resource, "userName"), bad[i]);
        mapping_result_clear(&r);
        ldap_entry_free(e);
    }
    static const char *const good[] = {"o'brien+tag@mail.example.co.uk", "山田@例え.jp",
                                       "a.b-c_d@x-y.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        e = entry_new(JOHN_DN, JOHN_ID);
        entry_set(e, "mail", good[i]);
        apply_ok(m, e, &r);
        dump_issues(&r);
        assert_int_equal(r.n_issues, 0);
        assert_string_equal(typed(r.resource, "emails", "work", "value"), good[i]);
        mapping_result_clear(&r);
        ldap_entry_free(e);
    }
    mapping_free(m);
}

static void test_guid_attribute(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[mapping]\nexternalId = objectGUID\n", OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, NULL);
    const unsigned char g[16] = {0x08, 0xec, 0xb3, 0xb6, 0x9c, 0x2f, 0x2b, 0x4a,
                                 0x8d, 0x0e, 0x41, 0x63, 0x2c, 0x6b, 0x7a, 0x10};
    entry_add(e, "objectGUID", g, 16);
    entry_set(e, "mail", "john@example.com");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    assert_string_equal(jstr(r.resource, "externalId"), JOHN_ID);
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static void test_result_stability(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    struct ldap_entry *a = adds_user(false), *b = adds_user(true);
    struct mapping_result ra, rb;
    apply_ok(m, a, &ra);
    apply_ok(m, b, &rb);
    assert_true(same_result(&ra, &rb));
    /* Same again: deterministic. */
    mapping_result_clear(&rb);
    apply_ok(m, a, &rb);
    assert_true(same_result(&ra, &rb));
    mapping_result_clear(&rb);

    /* A changed mapped value changes the result; so does a changed manager. */
    entry_set(b, "title", "ignored second value");
    apply_ok(m, b, &rb);
    assert_true(same_result(&ra, &rb)); /* only the first value is mapped */
    mapping_result_clear(&rb);
    ldap_entry_free(b);
    b = adds_user(true);
    free(b->attrs[0].values[0].data); /* reversed: attrs[0] is the manager */
    b->attrs[0].values[0].data = strdup("CN=Other Boss,DC=example,DC=com");
    b->attrs[0].values[0].len = strlen(b->attrs[0].values[0].data);
    apply_ok(m, b, &rb);
    assert_false(same_result(&ra, &rb));
    mapping_result_clear(&rb);
    mapping_result_clear(&ra);
    ldap_entry_free(a);
    ldap_entry_free(b);
    mapping_free(m);

    /* Groups: member order does not matter, membership does. */
    m = compile_ok(MINIMAL, OBJECT_GROUP);
    a = entry_new("CN=Sales,OU=Groups,DC=example,DC=com", JOHN_ID);
    b = entry_new("CN=Sales,OU=Groups,DC=example,DC=com", JOHN_ID);
    entry_set(a, "cn", "Sales");
    entry_set(a, "member", "CN=A,DC=example,DC=com");
    entry_set(a, "member", "CN=B,DC=example,DC=com");
    entry_set(b, "member", "CN=B,DC=example,DC=com");
    entry_set(b, "member", "CN=A,DC=example,DC=com");
    entry_set(b, "cn", "Sales");
    apply_ok(m, a, &ra);
    apply_ok(m, b, &rb);
    assert_true(same_result(&ra, &rb));
    mapping_result_clear(&rb);
    entry_set(b, "member", "CN=C,DC=example,DC=com");
    apply_ok(m, b, &rb);
    assert_false(same_result(&ra, &rb));
    mapping_result_clear(&ra);
    mapping_result_clear(&rb);
    ldap_entry_free(a);
    ldap_entry_free(b);
    mapping_free(m);
}

static void test_groups_and_contacts(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_GROUP);
    struct ldap_entry *e = entry_new("CN=Sales,OU=Groups,DC=example,DC=com", JOHN_ID);
    entry_set(e, "objectClass", "group");
    entry_set(e, "cn", "Sales");
    entry_set(e, "member", "CN=A,DC=example,DC=com");
    entry_set(e, "member", "CN=B,DC=example,DC=com");
    struct mapping_result r;
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    const json_t *schemas = json_object_get(r.resource, "schemas");
    assert_int_equal(json_array_size(schemas), 1);
    assert_string_equal(json_string_value(json_array_get(schemas, 0)), MAPPING_SCHEMA_GROUP);
    assert_string_equal(jstr(r.resource, "displayName"), "Sales");
    assert_string_equal(jstr(r.resource, "externalId"), JOHN_ID);
    assert_null(json_object_get(r.resource, "members"));
    assert_int_equal(r.n_members, 2);
    assert_string_equal(r.member_dns[0], "CN=A,DC=example,DC=com");
    assert_string_equal(r.member_dns[1], "CN=B,DC=example,DC=com");
    mapping_result_clear(&r);
    /* displayName wins over cn when present. */
    entry_set(e, "displayName", "Sales Team");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(r.resource, "displayName"), "Sales Team");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    /* A group without a name is skipped. */
    e = entry_new("CN=X,DC=example,DC=com", JOHN_ID);
    apply_ok(m, e, &r);
    assert_true(r.skipped);
    assert_non_null(strstr(r.skip_message, "The required attribute displayName is missing when "
                                           "adding on-premises entry CN=X,DC=example,DC=com"));
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);

    /* Override for groups only. */
    m = compile_ok(MINIMAL "[mapping]\ngroup.displayName = \"AD \" name\ndisplayName = sn\n",
                   OBJECT_GROUP);
    e = entry_new("CN=Sales,OU=Groups,DC=example,DC=com", JOHN_ID);
    entry_set(e, "name", "Sales");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(r.resource, "displayName"), "AD Sales");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);

    m = compile_ok(MINIMAL, OBJECT_CONTACT);
    e = entry_new("CN=Partner,OU=Contacts,DC=example,DC=com", JOHN_ID);
    entry_set(e, "objectClass", "contact");
    entry_set(e, "cn", "Partner");
    entry_set(e, "mail", "partner@partner.example");
    entry_set(e, "telephoneNumber", "+1 555 0199");
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    schemas = json_object_get(r.resource, "schemas");
    assert_int_equal(json_array_size(schemas), 1);
    assert_string_equal(json_string_value(json_array_get(schemas, 0)), MAPPING_SCHEMA_CONTACT);
    assert_string_equal(jstr(r.resource, "displayName"), "Partner");
    assert_string_equal(typed(r.resource, "emails", "work", "value"), "partner@partner.example");
    assert_null(json_object_get(r.resource, "phoneNumbers"));
    assert_null(json_object_get(r.resource, "userName"));
    assert_int_equal(json_object_size(r.resource), 4); /* schemas externalId displayName emails */
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);
}

static bool has_attr(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0)
            return true;
    }
    return false;
}

static void test_attribute_list(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL "[users]\nrequired_attributes = mail employeeID\n"
                                           "[mapping]\ndisplayName = givenName initials sn\n"
                                           "title =\n"
                                           "[avatar]\nenabled = yes\n"
                                           "pattern = https://p.example/{sAMAccountName}.jpg\n",
                                   OBJECT_USER);
    const char *const *attrs = mapping_attributes(m);
    static const char *const want[] = {"mail",
                                       "employeeID",
                                       "givenName",
                                       "initials",
                                       "sn",
                                       "objectGUID",
                                       "entryUUID",
                                       "userAccountControl",
                                       "msDS-UserAccountDisabled",
                                       "manager",
                                       "telephoneNumber",
                                       "physicalDeliveryOfficeName",
                                       "sAMAccountName",
                                       "company",
                                       "o",
                                       "c"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!has_attr(attrs, want[i]))
            fail_msg("%s is not requested", want[i]);
    }
    assert_false(has_attr(attrs, "title"));
    assert_false(has_attr(attrs, "displayName"));
    /* No duplicates. */
    for (size_t i = 0; attrs[i] != NULL; i++) {
        for (size_t j = i + 1; attrs[j] != NULL; j++)
            assert_true(strcasecmp(attrs[i], attrs[j]) != 0);
    }
    mapping_free(m);
    m = compile_ok(MINIMAL, OBJECT_GROUP);
    attrs = mapping_attributes(m);
    assert_true(has_attr(attrs, "member"));
    assert_true(has_attr(attrs, "cn"));
    assert_false(has_attr(attrs, "mail"));
    mapping_free(m);
}

static void test_avatar_in_record(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(
        MINIMAL "[avatar]\nenabled = yes\n"
                "pattern = http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg\n",
        OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "abcd@example.com");
    struct mapping_result r;
    apply_ok(m, e, &r);
    const json_t *photos = json_object_get(r.resource, "photos");
    assert_int_equal(json_array_size(photos), 1);
    assert_string_equal(jstr(json_array_get(photos, 0), "value"),
                        "http://www.example.com/dir/photo/zoom/abcd.jpg");
    assert_string_equal(jstr(json_array_get(photos, 0), "type"), "photo");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);

    /* No match: no photo, a reason in the issues, the user still maps. */
    m = compile_ok(MINIMAL "[avatar]\nenabled = yes\n"
                           "pattern = https://p.example/{employeeID:^E\\d+}.jpg\n",
                   OBJECT_USER);
    e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "abcd@example.com");
    entry_set(e, "employeeID", "X17");
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    assert_null(json_object_get(r.resource, "photos"));
    assert_int_equal(r.n_issues, 1);
    assert_string_equal(r.issues[0].attribute, "photos");
    assert_string_equal(r.issues[0].message, "For " JOHN_DN ", no avatar is sent: "
                                             "{employeeID:^E\\d+} does not match the value 'X17'.");
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);

    /* A bad pattern is a configuration error naming the file and the pattern's line. */
    struct config *cfg =
        config_ok(MINIMAL "[avatar]\nenabled = yes\npattern = http://x/{mail:(}\n");
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(mapping_compile(cfg, OBJECT_USER, &m, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "test.conf:5: [avatar] pattern: placeholder {mail:(}: "
                                    "regular expression error at offset 1"));
    /* Groups do not use the avatar. */
    assert_int_equal(mapping_compile(cfg, OBJECT_GROUP, &m, &err), DIRCONN_OK);
    mapping_free(m);
    config_free(cfg);
}

static void test_record_limit(void **state)
{
    (void)state;
    /* Each value is capped at MAPPING_VALUE_MAX bytes, but JSON doubles a backslash: a value
     * of 1022 backslashes in every string target makes a record above MAPPING_RECORD_MAX. */
    static const char *const paths[] = {"userName",
                                        "externalId",
                                        "displayName",
                                        "nickName",
                                        "title",
                                        "userType",
                                        "preferredLanguage",
                                        "locale",
                                        "timezone",
                                        "name.formatted",
                                        "name.familyName",
                                        "name.givenName",
                                        "name.middleName",
                                        "name.honorificPrefix",
                                        "name.honorificSuffix",
                                        "phoneNumbers.work",
                                        "phoneNumbers.mobile",
                                        "phoneNumbers.fax",
                                        "phoneNumbers.pager",
                                        "phoneNumbers.home",
                                        "addresses.work.streetAddress",
                                        "addresses.work.locality",
                                        "addresses.work.region",
                                        "addresses.work.postalCode",
                                        "addresses.work.country",
                                        "addresses.work.formatted",
                                        "addresses.other.formatted",
                                        "enterprise.employeeNumber",
                                        "enterprise.costCenter",
                                        "enterprise.organization",
                                        "enterprise.division",
                                        "enterprise.department"};
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof(text), MINIMAL "[mapping]\n");
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = q\n", paths[i]);
    struct mapping *m = compile_ok(text, OBJECT_USER);
    struct ldap_entry *e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john@example.com");
    char v[MAPPING_VALUE_MAX];
    memset(v, '\\', sizeof(v) - 1);
    v[0] = '1'; /* phone numbers need a digit */
    v[sizeof(v) - 1] = '\0';
    entry_set(e, "q", v);
    struct mapping_result r;
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_int_equal(r.n_issues, 0);
    assert_true(r.skipped);
    assert_null(r.resource);
    assert_non_null(
        strstr(r.skip_message, "The on-premises entry " JOHN_DN " maps to a record of "));
    assert_non_null(strstr(r.skip_message, "more than the limit of 65536 bytes; the entry is not "
                                           "created in the cloud."));
    mapping_result_clear(&r);

    /* Half as long: sent. */
    v[sizeof(v) / 2] = '\0';
    free(e->attrs[1].values[0].data);
    e->attrs[1].values[0].data = strdup(v);
    e->attrs[1].values[0].len = strlen(v);
    apply_ok(m, e, &r);
    assert_false(r.skipped);
    assert_string_equal(jstr(r.resource, "userName"), v);
    mapping_result_clear(&r);
    mapping_free(m);
    ldap_entry_free(e);
}

/* mapping_canonical is json_dumps(JSON_SORT_KEYS | JSON_COMPACT); keys with the link prefix
 * spliced in at the split give the dump of the merged object. */
/* The values of array `name` with the given type, in order, joined by ' ' into buf. */
static const char *typed_all(const json_t *res, const char *name, const char *type, char *buf,
                             size_t len)
{
    buf[0] = '\0';
    const json_t *arr = json_object_get(res, name);
    size_t i, n = 0;
    const json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (strcmp(json_string_value(json_object_get(el, "type")), type) != 0)
            continue;
        n += (size_t)snprintf(buf + n, len - n, "%s%s", n > 0 ? " " : "",
                              json_string_value(json_object_get(el, "value")));
    }
    return buf;
}

/* Whether some issue of r contains all of the given texts. */
static bool has_issue(const struct mapping_result *r, const char *a, const char *b)
{
    for (size_t i = 0; i < r->n_issues; i++)
        if (strstr(r->issues[i].message, a) != NULL &&
            (b == NULL || strstr(r->issues[i].message, b)))
            return true;
    return false;
}

/* The seed 001 attribute list in its SCIM places (docs/mapping.md "Defaults"). */
static void test_seed_attribute_list(void **state)
{
    (void)state;
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    struct ldap_entry *e = adds_user(false);
    entry_set(e, "initials", "Q");
    entry_set(e, "generationQualifier", "Jr.");
    entry_set(e, "co", "United States");
    entry_set(e, "otherTelephone", "+1 555 0201");
    entry_set(e, "otherTelephone", "+1 555 0200");
    entry_set(e, "otherMobile", "+1 555 0202");
    entry_set(e, "otherFacsimileTelephoneNumber", "+1 555 0203");
    entry_set(e, "otherTelephone", "+1 555 0100"); /* the work number: sent once */
    struct mapping_result r;
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_int_equal(r.n_issues, 0);
    const json_t *res = r.resource;
    char buf[512];
    assert_string_equal(jstr(res, "name.middleName"), "Q");
    assert_string_equal(jstr(res, "name.honorificSuffix"), "Jr.");
    assert_string_equal(typed(res, "addresses", "work", "formatted"),
                        "1 Main Street, Springfield, IL 62701, United States");
    assert_string_equal(typed_all(res, "phoneNumbers", "other", buf, sizeof(buf)),
                        "+1 555 0200 +1 555 0201 +1 555 0202 +1 555 0203");
    assert_string_equal(typed(res, "phoneNumbers", "work", "value"), "+1 555 0100");
    /* pager, homePhone, company, department stay where they were. */
    assert_string_equal(typed(res, "phoneNumbers", "pager", "value"), "+1 555 0103");
    assert_string_equal(typed(res, "phoneNumbers", "home", "value"), "+1 555 0104");
    assert_string_equal(jstr(enterprise(res), "organization"), "Example Corp");
    assert_string_equal(jstr(enterprise(res), "department"), "R&D");
    assert_string_equal(jstr(enterprise(res), "employeeNumber"), "E1001");
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* employeeID when there is no employeeNumber; a missing part of the address drops out. */
    e = entry_new(JOHN_DN, JOHN_ID);
    entry_set(e, "mail", "john.smith@example.com");
    entry_set(e, "employeeID", "40123");
    entry_set(e, "l", "Springfield");
    entry_set(e, "co", "United States");
    apply_ok(m, e, &r);
    assert_string_equal(jstr(enterprise(r.resource), "employeeNumber"), "40123");
    assert_string_equal(typed(r.resource, "addresses", "work", "formatted"),
                        "Springfield, United States");
    assert_null(json_object_get(r.resource, "phoneNumbers"));
    mapping_result_clear(&r);
    ldap_entry_free(e);

    /* The order of the directory's values does not change the record. */
    struct ldap_entry *a = entry_new(JOHN_DN, JOHN_ID), *b = entry_new(JOHN_DN, JOHN_ID);
    entry_set(a, "mail", "john.smith@example.com");
    entry_set(b, "mail", "john.smith@example.com");
    entry_set(a, "otherTelephone", "+1 1");
    entry_set(a, "otherTelephone", "+1 2");
    entry_set(b, "otherTelephone", "+1 2");
    entry_set(b, "otherTelephone", "+1 1");
    struct mapping_result ra, rb;
    apply_ok(m, a, &ra);
    apply_ok(m, b, &rb);
    assert_true(same_result(&ra, &rb));
    assert_string_equal(ra.text, rb.text);
    mapping_result_clear(&ra);
    mapping_result_clear(&rb);
    ldap_entry_free(a);
    ldap_entry_free(b);
    mapping_free(m);
}

/* Typed multi-valued targets in the RFC 7644 3.10 value-path form, with or without a sub. */
static void test_value_path_grammar(void **state)
{
    (void)state;
    struct mapping *m =
        compile_ok(MINIMAL "[mapping]\n"
                           "phoneNumbers[type eq \"work\"] = ipPhone | telephoneNumber\n"
                           "emails[ type  eq \"other\" ] = otherMailbox\n"
                           "addresses[type eq \"work\"] = \"Site \" physicalDeliveryOfficeName\n"
                           "phoneNumbers[type eq \"other\"].value = otherTelephone | otherPager\n"
                           "addresses.other.formatted =\n",
                   OBJECT_USER);
    struct ldap_entry *e = adds_user(false);
    entry_set(e, "ipPhone", "4711");
    entry_set(e, "otherMailbox", "js@example.com");
    entry_set(e, "otherMailbox", "john@example.net");
    entry_set(e, "otherMailbox", "not-an-address");
    entry_set(e, "otherMailbox", "JS@example.com"); /* the same address: sent once */
    entry_set(e, "otherPager", "+1 555 0300");
    struct mapping_result r;
    apply_ok(m, e, &r);
    char buf[512];
    assert_string_equal(typed(r.resource, "phoneNumbers", "work", "value"), "4711");
    assert_string_equal(typed_all(r.resource, "emails", "other", buf, sizeof(buf)),
                        "john@example.net js@example.com");
    assert_string_equal(typed(r.resource, "addresses", "work", "formatted"),
                        "Site Building 4, Room 210");
    assert_string_equal(typed(r.resource, "phoneNumbers", "other", "value"), "+1 555 0300");
    assert_null(typed(r.resource, "addresses", "other", "formatted"));
    /* Aliases are not primary: the work address is the one primary email (RFC 7643 2.4). */
    size_t i, primaries = 0;
    const json_t *el;
    json_array_foreach(json_object_get(r.resource, "emails"), i, el) primaries +=
        json_is_true(json_object_get(el, "primary"));
    assert_int_equal(primaries, 1);
    assert_int_equal(r.n_issues, 1);
    assert_true(has_issue(&r,
                          "the attribute otherMailbox has the following invalid value: "
                          "not-an-address.",
                          "local-part@domain"));
    /* The targets list the new paths for the record scope. */
    const struct mapping_target *t = NULL;
    size_t n = mapping_targets(m, &t);
    bool other_email = false;
    for (size_t k = 0; k < n; k++)
        other_email =
            other_email || (strcmp(t[k].attr, "emails") == 0 && strcmp(t[k].type, "other") == 0 &&
                            strcmp(t[k].sub, "value") == 0);
    assert_true(other_email);
    mapping_result_clear(&r);
    ldap_entry_free(e);
    mapping_free(m);

    compile_fail("emails[type eq \"home\"] = mail\n", "test.conf:4: [mapping] emails[type eq "
                                                      "\"home\"]: unknown SCIM attribute path");
    compile_fail("emails[type eq other] = mail\n", "unknown SCIM attribute path");
    compile_fail("emails[type ne \"other\"] = mail\n", "unknown SCIM attribute path");
    compile_fail("emails[type eq \"other\"].display = mail\n", "unknown SCIM attribute path");
    compile_fail("phoneNumbers[type eq \"other\"] = active()\n",
                 "takes text, and active() gives true or false");
    /* Contacts keep their one email: aliases are for mailboxes only (seed 001). */
    struct config *cfg = config_ok(MINIMAL "[mapping]\ncontact.emails.other = otherMailbox\n");
    struct mapping *cm = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(mapping_compile(cfg, OBJECT_CONTACT, &cm, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "not an attribute that contacts are mapped to"));
    config_free(cfg);
}

#define PROXY_CONF MINIMAL "[users]\nsync_proxy_addresses = yes\n"

/* proxyAddresses (seed 001 "Alternate email addresses"): smtp: aliases, SMTP: primary. */
static void test_proxy_addresses(void **state)
{
    (void)state;
    struct ldap_entry *e = adds_user(false);
    entry_set(e, "proxyAddresses", "SMTP:john.smith@example.com");
    entry_set(e, "proxyAddresses", "smtp:jsmith@example.com");
    entry_set(e, "proxyAddresses", "smtp: js@example.com");
    entry_set(e, "proxyAddresses", "smtp:john@example.org");
    entry_set(e, "proxyAddresses", "X500:/o=Example/ou=Exchange/cn=Recipients/cn=jsmith");
    entry_set(e, "proxyAddresses", "SIP:john.smith@example.com");
    entry_set(e, "proxyAddresses", "smtp:John.Smith@example.com"); /* mail itself */
    entry_set(e, "proxyAddresses", "smtp:bad address@example.com");
    struct mapping_result r;
    char buf[512];

    /* Off by default (SyncProxyAddresses = False): no alias, proxyAddresses not even read. */
    struct mapping *m = compile_ok(MINIMAL, OBJECT_USER);
    apply_ok(m, e, &r);
    assert_null(typed(r.resource, "emails", "other", "value"));
    assert_int_equal(r.n_issues, 0);
    const char *const *attrs = mapping_attributes(m);
    for (size_t i = 0; attrs[i] != NULL; i++)
        assert_true(strcasecmp(attrs[i], "proxyAddresses") != 0);
    mapping_result_clear(&r);
    mapping_free(m);

    /* On, accepted domains defaulting to the mail's domain. */
    m = compile_ok(PROXY_CONF, OBJECT_USER);
    attrs = mapping_attributes(m);
    bool reads = false;
    for (size_t i = 0; attrs[i] != NULL; i++)
        reads = reads || strcasecmp(attrs[i], "proxyAddresses") == 0;
    assert_true(reads);
    apply_ok(m, e, &r);
    dump_issues(&r);
    assert_string_equal(typed_all(r.resource, "emails", "other", buf, sizeof(buf)),
                        "js@example.com jsmith@example.com");
    assert_string_equal(typed(r.resource, "emails", "work", "value"), "john.smith@example.com");
    assert_true(has_issue(&r,
                          "For " JOHN_DN ", the alternate address john@example.org in "
                          "proxyAddresses is not sent: example.org is not the domain of mail",
                          NULL));
    assert_true(has_issue(&r,
                          "the attribute proxyAddresses has the following invalid value: "
                          "bad address@example.com.",
                          NULL));
    assert_int_equal(r.n_issues, 2);
    mapping_result_clear(&r);
    mapping_free(m);

    /* accepted_domains replaces the default. */
    m = compile_ok(PROXY_CONF "accepted_domains = example.org EXAMPLE.net\n", OBJECT_USER);
    apply_ok(m, e, &r);
    assert_string_equal(typed_all(r.resource, "emails", "other", buf, sizeof(buf)),
                        "john@example.org");
    assert_true(has_issue(&r,
                          "the alternate address jsmith@example.com in proxyAddresses is not "
                          "sent: example.com is not an accepted domain ([users] accepted_domains)",
                          JOHN_DN));
    mapping_result_clear(&r);
    mapping_free(m);

    /* SMTP: must be mail: a warning naming the DN; the primary email stays mail. */
    m = compile_ok(PROXY_CONF, OBJECT_USER);
    struct ldap_entry *f = entry_new("CN=Ann,DC=example,DC=com", JOHN_ID);
    entry_set(f, "mail", "ann@example.com");
    entry_set(f, "proxyAddresses", "SMTP:ann.lee@example.com");
    entry_set(f, "proxyAddresses", "smtp:ann@example.com");
    apply_ok(m, f, &r);
    assert_true(has_issue(&r,
                          "For CN=Ann,DC=example,DC=com, the primary address "
                          "SMTP:ann.lee@example.com in proxyAddresses is not the mail attribute "
                          "(ann@example.com)",
                          NULL));
    assert_string_equal(typed(r.resource, "emails", "work", "value"), "ann@example.com");
    assert_null(typed(r.resource, "emails", "other", "value"));
    assert_int_equal(json_array_size(json_object_get(r.resource, "emails")), 1);
    mapping_result_clear(&r);
    ldap_entry_free(f);

    /* Groups and contacts never get aliases. */
    struct mapping *gm = compile_ok(PROXY_CONF, OBJECT_CONTACT);
    struct ldap_entry *c = entry_new("CN=Ext,DC=example,DC=com", JOHN_ID);
    entry_set(c, "cn", "Ext");
    entry_set(c, "mail", "ext@example.com");
    entry_set(c, "proxyAddresses", "smtp:ext2@example.com");
    apply_ok(gm, c, &r);
    assert_int_equal(json_array_size(json_object_get(r.resource, "emails")), 1);
    mapping_result_clear(&r);
    ldap_entry_free(c);
    mapping_free(gm);
    mapping_free(m);
    ldap_entry_free(e);
}

static void test_canonical_split(void **state)
{
    (void)state;
    const char *docs[] = {
        "{}", "{\"active\":true}", "{\"userName\":\"u\",\"name\":{\"b\":1,\"a\":2}}",
        ("{\"userName\":\"u\",\"addresses\":[{\"z\":1,\"y\":\"\\u00e9\"}],\"active\":false,"
         "\"displayName\":\"D\"}")};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *j = json_loads(docs[i], 0, NULL);
        assert_non_null(j);
        size_t split = 0;
        char *text = mapping_canonical(j, &split);
        char *want = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(text, want);
        assert_true(split >= 1 && split < strlen(text));
        /* the split is where a key with the prefix sorts */
        json_object_set_new(j, MAPPING_LINK_PREFIX "manager", json_string("m"));
        char *merged = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
        const char *at = strstr(merged, "\"" MAPPING_LINK_PREFIX);
        assert_non_null(at);
        size_t before = (size_t)(at - merged);
        assert_int_equal(before - (before > 1 ? 1 : 0), split);
        assert_memory_equal(merged, text, split);
        free(merged);
        free(want);
        free(text);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_adds_user),
        cmocka_unit_test(test_default_adlds_user),
        cmocka_unit_test(test_concatenation),
        cmocka_unit_test(test_constants_fallback_and_unmapping),
        cmocka_unit_test(test_expression_edges),
        cmocka_unit_test(test_bad_expressions_and_paths),
        cmocka_unit_test(test_invalid_phone_keeps_the_rest),
        cmocka_unit_test(test_missing_required_attribute),
        cmocka_unit_test(test_bad_values_dropped),
        cmocka_unit_test(test_guid_attribute),
        cmocka_unit_test(test_result_stability),
        cmocka_unit_test(test_groups_and_contacts),
        cmocka_unit_test(test_attribute_list),
        cmocka_unit_test(test_avatar_in_record),
        cmocka_unit_test(test_record_limit),
        cmocka_unit_test(test_canonical_split),
        cmocka_unit_test(test_seed_attribute_list),
        cmocka_unit_test(test_value_path_grammar),
        cmocka_unit_test(test_proxy_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
