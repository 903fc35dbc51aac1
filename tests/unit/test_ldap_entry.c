/* Unit tests for connector/ldap_entry.c: GUIDs, filter escaping, ranges, text detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/ldap_entry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void test_guid_rendering(void **state)
{
    (void)state;
    /* MS-DTYP 2.3.4: the first three fields little-endian. */
    const unsigned char g[16] = {0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
                                 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    char s[LDAP_GUID_STRLEN];
    ldap_guid_to_string(g, s);
    assert_string_equal(s, "00112233-4455-6677-8899-aabbccddeeff");

    unsigned char back[16];
    assert_true(ldap_guid_from_string(s, back));
    assert_memory_equal(back, g, 16);
    assert_true(ldap_guid_from_string("{00112233-4455-6677-8899-AABBCCDDEEFF}", back));
    assert_memory_equal(back, g, 16);
    assert_false(ldap_guid_from_string("00112233-4455-6677-8899-aabbccddeef", back));
    assert_false(ldap_guid_from_string("00112233x4455-6677-8899-aabbccddeeff", back));
    assert_false(ldap_guid_from_string("0011223g-4455-6677-8899-aabbccddeeff", back));

    /* A GUID as AD shows it: {B6B3EC08-...} from bytes 08 EC B3 B6 ... */
    const unsigned char ad[16] = {0x08, 0xec, 0xb3, 0xb6, 0x9c, 0x2f, 0x2b, 0x4a,
                                  0x8d, 0x0e, 0x41, 0x63, 0x2c, 0x6b, 0x7a, 0x10};
    ldap_guid_to_string(ad, s);
    assert_string_equal(s, "b6b3ec08-2f9c-4a2b-8d0e-41632c6b7a10");
}

static void test_filter_escaping(void **state)
{
    (void)state;
    char *e = ldap_escape_filter_value("a*(b)\\c", 7);
    assert_string_equal(e, "a\\2A\\28b\\29\\5Cc");
    free(e);
    const unsigned char bin[3] = {0x00, 0x41, 0xff};
    e = ldap_escape_filter_value(bin, 3);
    assert_non_null(e);
    assert_int_equal(strncmp(e, "\\00", 3), 0);
    assert_non_null(strstr(e, "A"));
    free(e);
    e = ldap_escape_filter_value("O'Brien, Seán", strlen("O'Brien, Seán"));
    assert_non_null(e);
    assert_null(strchr(e, '('));
    free(e);
}

static void test_range_parsing(void **state)
{
    (void)state;
    char base[64];
    long lo = 0, hi = 0;
    assert_true(ldap_range_parse("member;range=0-1499", base, sizeof(base), &lo, &hi));
    assert_string_equal(base, "member");
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 1499);
    assert_true(ldap_range_parse("member;range=1500-*", base, sizeof(base), &lo, &hi));
    assert_int_equal(lo, 1500);
    assert_int_equal(hi, -1);
    assert_true(ldap_range_parse("member;Range=3000-4499;binary", base, sizeof(base), &lo, &hi));
    assert_string_equal(base, "member;binary");
    assert_false(ldap_range_parse("member", base, sizeof(base), &lo, &hi));
    assert_false(ldap_range_parse("member;range=", base, sizeof(base), &lo, &hi));
    assert_false(ldap_range_parse("member;range=10-5", base, sizeof(base), &lo, &hi));
    assert_false(ldap_range_parse("member;range=a-5", base, sizeof(base), &lo, &hi));
    assert_false(ldap_range_parse("member;range=0-5x", base, sizeof(base), &lo, &hi));
    /* the next range would start past LONG_MAX */
    assert_false(
        ldap_range_parse("member;range=0-9223372036854775807", base, sizeof(base), &lo, &hi));
    assert_false(
        ldap_range_parse("member;range=0-99999999999999999999", base, sizeof(base), &lo, &hi));
    assert_false(
        ldap_range_parse("member;range=99999999999999999999-*", base, sizeof(base), &lo, &hi));
}

static struct ldap_value val(const char *s, size_t len)
{
    struct ldap_value v = {(char *)s, len};
    return v;
}

static void test_text_detection(void **state)
{
    (void)state;
    struct ldap_value v = val("Zoë 山田 O'Brien", strlen("Zoë 山田 O'Brien"));
    assert_true(ldap_value_is_text(&v));
    v = val("tab\there", 8);
    assert_true(ldap_value_is_text(&v));
    v = val("bell\a", 5);
    assert_false(ldap_value_is_text(&v));
    v = val("\xc3", 1); /* truncated sequence */
    assert_false(ldap_value_is_text(&v));
    v = val("\xc0\xaf", 2); /* overlong '/' */
    assert_false(ldap_value_is_text(&v));
    v = val("\xed\xa0\x80", 3); /* surrogate */
    assert_false(ldap_value_is_text(&v));
    v = val("a\0b", 3);
    assert_false(ldap_value_is_text(&v));
    v = val("\xf0\x9f\x98\x80", 4); /* U+1F600 */
    assert_true(ldap_value_is_text(&v));
    assert_true(ldap_attr_is_binary("objectGUID"));
    assert_true(ldap_attr_is_binary("thumbnailphoto"));
    assert_true(ldap_attr_is_binary("userCertificate;binary"));
    assert_false(ldap_attr_is_binary("mail"));
}

static void test_entry_lookup(void **state)
{
    (void)state;
    struct ldap_entry *e = calloc(1, sizeof(*e));
    e->dn = strdup("CN=x,DC=y");
    e->attrs = calloc(2, sizeof(*e->attrs));
    e->n_attrs = 2;
    e->attrs[0].name = strdup("objectClass");
    e->attrs[0].values = calloc(2, sizeof(struct ldap_value));
    e->attrs[0].values[0].data = strdup("top");
    e->attrs[0].values[0].len = 3;
    e->attrs[0].values[1].data = strdup("User");
    e->attrs[0].values[1].len = 4;
    e->attrs[0].n_values = 2;
    e->attrs[1].name = strdup("mail");
    e->attrs[1].values = calloc(1, sizeof(struct ldap_value));
    e->attrs[1].values[0].data = strdup("a@b");
    e->attrs[1].values[0].len = 3;
    e->attrs[1].n_values = 1;
    assert_true(ldap_entry_has_class(e, "user"));
    assert_false(ldap_entry_has_class(e, "computer"));
    assert_string_equal(ldap_entry_str(e, "MAIL"), "a@b");
    assert_null(ldap_entry_str(e, "sn"));
    assert_non_null(ldap_entry_attr(e, "mail;binary"));
    ldap_entry_free(e);
}

/* One spelling per DN: "\\," and "\\2C" escape the same comma; UTF-8 stays as it is. */
static void test_dn_canonical(void **state)
{
    (void)state;
    char *a = ldap_dn_canonical("CN=Hern\xc3\xa1ndez\\, Pedro,OU=Employees,DC=x");
    char *b = ldap_dn_canonical("cn=Hern\xc3\xa1ndez\\2C Pedro,ou=Employees,dc=x");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(strcasecmp(a, b), 0);
    assert_string_equal(a, "CN=Hern\xc3\xa1ndez\\2C Pedro,OU=Employees,DC=x");
    free(a);
    free(b);
    assert_null(ldap_dn_canonical("not a DN"));
}

/* ---- raw hash ---------------------------------------------------------------- */

/* An entry from "name=v1|v2;name2=v3" (values may be empty: "name=" has one empty value). */
static struct ldap_entry *raw_entry(const char *dn, const char *spec)
{
    struct ldap_entry *e = calloc(1, sizeof(*e));
    e->dn = strdup(dn);
    snprintf(e->id, sizeof(e->id), "%s", "00112233-4455-6677-8899-aabbccddeeff");
    e->id_source = LDAP_ID_OBJECTGUID;
    char *copy = strdup(spec), *save = NULL;
    for (char *a = strtok_r(copy, ";", &save); a != NULL; a = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(a, '=');
        *eq = '\0';
        e->attrs = realloc(e->attrs, (e->n_attrs + 1) * sizeof(*e->attrs));
        struct ldap_attr *at = &e->attrs[e->n_attrs++];
        memset(at, 0, sizeof(*at));
        at->name = strdup(a);
        const char *v = eq + 1;
        for (;;) {
            const char *bar = strchr(v, '|');
            size_t len = bar != NULL ? (size_t)(bar - v) : strlen(v);
            at->values = realloc(at->values, (at->n_values + 1) * sizeof(*at->values));
            at->values[at->n_values].data = strndup(v, len);
            at->values[at->n_values].len = len;
            at->n_values++;
            if (bar == NULL)
                break;
            v = bar + 1;
        }
    }
    free(copy);
    return e;
}

static void raw_hash_of(const char *dn, const char *spec, const char *fp, char out[65])
{
    struct ldap_entry *e = raw_entry(dn, spec);
    assert_true(ldap_entry_raw_hash(e, fp, out));
    assert_int_equal(strlen(out), 64);
    ldap_entry_free(e);
}

/* The attributes' order (and the case of their names) does not matter. */
static void test_raw_hash_attribute_order(void **state)
{
    (void)state;
    char a[65], b[65], c[65];
    raw_hash_of("CN=x,DC=y", "mail=a@b;sn=Doe;givenName=Jane", "fp", a);
    raw_hash_of("CN=x,DC=y", "givenName=Jane;SN=Doe;mail=a@b", "fp", b);
    assert_string_equal(a, b);
    raw_hash_of("CN=x,DC=y", "sn=Doe;mail=a@b;givenname=Jane", "fp", c);
    assert_string_equal(a, c);
    /* the serialisation is the format: SHA-256 of tag, fingerprint, id source, id, DN, the
     * attribute count, then name, value count and values, each string after its 8-byte
     * big-endian length (computed independently with Python's hashlib) */
    raw_hash_of("CN=x,DC=y", "mail=a@b", "", a);
    assert_string_equal(a, "bf887af97bb166e76bb7996377ffd9c73830afc5c235146766de30f84c9897c2");
}

/* The values' order within an attribute is kept: it can matter to a mapping. */
static void test_raw_hash_value_order(void **state)
{
    (void)state;
    char a[65], b[65];
    raw_hash_of("CN=x,DC=y", "proxyAddresses=SMTP:a@b|smtp:c@d", "fp", a);
    raw_hash_of("CN=x,DC=y", "proxyAddresses=smtp:c@d|SMTP:a@b", "fp", b);
    assert_string_not_equal(a, b);
}

/* Lengths are part of the serialisation: no two entries collide by concatenation. */
static void test_raw_hash_length_prefixes(void **state)
{
    (void)state;
    char a[65], b[65];
    /* one value "bc" against two values "b", "c" */
    raw_hash_of("CN=x,DC=y", "member=bc", "", a);
    raw_hash_of("CN=x,DC=y", "member=b|c", "", b);
    assert_string_not_equal(a, b);
    /* a value moved across the attribute boundary */
    raw_hash_of("CN=x,DC=y", "a=xy;b=z", "", a);
    raw_hash_of("CN=x,DC=y", "a=x;b=yz", "", b);
    assert_string_not_equal(a, b);
    /* an attribute name that takes the start of its value */
    raw_hash_of("CN=x,DC=y", "sn=Doe", "", a);
    raw_hash_of("CN=x,DC=y", "snD=oe", "", b);
    assert_string_not_equal(a, b);
    /* an empty value against no value: two values "" and "" against one */
    raw_hash_of("CN=x,DC=y", "a=|", "", a);
    raw_hash_of("CN=x,DC=y", "a=", "", b);
    assert_string_not_equal(a, b);
    /* the DN against the fingerprint and the first attribute */
    raw_hash_of("CN=x,DC=yz", "", "", a);
    raw_hash_of("CN=x,DC=y", "", "z", b);
    assert_string_not_equal(a, b);
}

/* DN, identifier, values and fingerprint each change the digest. */
static void test_raw_hash_inputs(void **state)
{
    (void)state;
    char base[65], h[65];
    raw_hash_of("CN=x,DC=y", "mail=a@b", "fp", base);
    raw_hash_of("CN=x2,DC=y", "mail=a@b", "fp", h);
    assert_string_not_equal(base, h);
    raw_hash_of("CN=x,DC=y", "mail=a@c", "fp", h);
    assert_string_not_equal(base, h);
    raw_hash_of("CN=x,DC=y", "mail=a@b", "fp2", h);
    assert_string_not_equal(base, h);
    raw_hash_of("CN=x,DC=y", "mail=a@b;uSNChanged=12", "fp", h);
    assert_string_not_equal(base, h);
    struct ldap_entry *e = raw_entry("CN=x,DC=y", "mail=a@b");
    e->id[0] = 'f';
    assert_true(ldap_entry_raw_hash(e, "fp", h));
    assert_string_not_equal(base, h);
    ldap_entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guid_rendering),
        cmocka_unit_test(test_filter_escaping),
        cmocka_unit_test(test_range_parsing),
        cmocka_unit_test(test_text_detection),
        cmocka_unit_test(test_entry_lookup),
        cmocka_unit_test(test_dn_canonical),
        cmocka_unit_test(test_raw_hash_attribute_order),
        cmocka_unit_test(test_raw_hash_value_order),
        cmocka_unit_test(test_raw_hash_length_prefixes),
        cmocka_unit_test(test_raw_hash_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
