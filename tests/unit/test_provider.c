/* Unit tests for connector/provider.c: discovery documents and what may be sent (RFC 7644 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/provider.h"

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

static const char spc_text[] =
    "{\"patch\":{\"supported\":true},\"bulk\":{\"supported\":true,\"maxOperations\":100,"
    "\"maxPayloadSize\":65536},\"filter\":{\"supported\":true,\"maxResults\":200},"
    "\"etag\":{\"supported\":false},\"sort\":{\"supported\":false}}";

/* A provider whose User type has no enterprise extension, with single-valued emails. */
static const char rts_plain[] =
    "{\"Resources\":[{\"name\":\"User\",\"endpoint\":\"/Users\",\"schema\":"
    "\"urn:ietf:params:scim:schemas:core:2.0:User\"},{\"name\":\"Group\",\"endpoint\":\"/Groups\","
    "\"schema\":\"urn:ietf:params:scim:schemas:core:2.0:Group\"}]}";
static const char schemas_plain[] =
    "{\"Resources\":[{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attributes\":["
    "{\"name\":\"userName\"},{\"name\":\"title\"},{\"name\":\"active\"},"
    "{\"name\":\"name\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"givenName\"},"
    "{\"name\":\"familyName\"}]},"
    "{\"name\":\"emails\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"value\"},{\"name\":\"type\"},{\"name\":\"display\",\"mutability\":\"readOnly\"}]},"
    "{\"name\":\"displayName\",\"mutability\":\"readOnly\"}]},"
    "{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:Group\",\"attributes\":["
    "{\"name\":\"displayName\"},{\"name\":\"members\",\"type\":\"complex\",\"multiValued\":true}]}]"
    "}";

static struct provider *make(const char *rts, const char *schemas, const char *const *single)
{
    json_t *s = parse(spc_text), *r = rts ? parse(rts) : NULL,
           *sc = schemas ? parse(schemas) : NULL;
    struct provider_settings set = {.single_valued = single, .delete_cascades = false};
    struct provider *p = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(provider_from_documents(s, r, sc, &set, NULL, &p, &err), DIRCONN_OK);
    json_decref(s);
    json_decref(r);
    json_decref(sc);
    return p;
}

static void features_are_read(void **state)
{
    (void)state;
    struct provider *p = make(rts_plain, schemas_plain, NULL);
    const struct provider_features *f = provider_features(p);
    assert_true(f->patch);
    assert_true(f->bulk);
    assert_int_equal(f->bulk_max_operations, 100);
    assert_int_equal(f->bulk_max_payload, 65536);
    assert_true(f->filter);
    assert_int_equal(f->filter_max_results, 200);
    assert_false(f->etag);
    assert_true(provider_has_kind(p, OBJECT_USER));
    assert_true(provider_has_kind(p, OBJECT_GROUP));
    assert_false(provider_has_kind(p, OBJECT_CONTACT));
    assert_string_equal(provider_endpoint(p, OBJECT_GROUP), "/Groups");
    assert_null(provider_warnings(p)[0]);
    provider_free(p);
}

static void undeclared_values_are_not_sent(void **state)
{
    (void)state;
    const char *const single[] = {"emails", NULL};
    struct provider *p = make(rts_plain, schemas_plain, single);
    json_t *u =
        parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
              "\"userName\":\"a@x\",\"title\":\"T\",\"department\":\"D\",\"displayName\":\"A\","
              "\"name\":{\"givenName\":\"A\",\"middleName\":\"M\"},"
              "\"emails\":[{\"type\":\"work\",\"value\":\"a@x\",\"display\":\"d\"},"
              "{\"type\":\"home\",\"value\":\"b@x\"}],"
              "\"" ENT "\":{\"department\":\"D\"},\"dirconn:manager\":\"m\"}");
    assert_true(provider_restrict(p, OBJECT_USER, u));
    char *t = json_dumps(u, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "{\"dirconn:manager\":\"m\",\"emails\":[{\"type\":\"work\",\"value\":"
                           "\"a@x\"}],\"name\":{\"givenName\":\"A\"},\"schemas\":[\"urn:ietf:"
                           "params:scim:schemas:core:2.0:User\"],\"title\":\"T\",\"userName\":"
                           "\"a@x\"}");
    free(t);
    /* nothing left to remove the second time */
    assert_false(provider_restrict(p, OBJECT_USER, u));
    json_decref(u);
    /* of several values the primary one is kept, wherever it stands */
    u = parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"a@x\","
              "\"emails\":[{\"type\":\"other\",\"value\":\"o@x\"},"
              "{\"type\":\"work\",\"value\":\"a@x\",\"primary\":true}]}");
    assert_true(provider_restrict(p, OBJECT_USER, u));
    const json_t *emails = json_object_get(u, "emails");
    assert_int_equal(json_array_size(emails), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(emails, 0), "value")),
                        "a@x");
    json_decref(u);
    provider_free(p);
}

static void check_names_the_reason(void **state)
{
    (void)state;
    struct provider *p = make(rts_plain, schemas_plain, NULL);
    const char *why = NULL;
    assert_true(provider_check(p, OBJECT_USER, "title", NULL, NULL, &why));
    assert_false(provider_check(p, OBJECT_USER, ENT ":department", NULL, NULL, &why));
    assert_non_null(strstr(why, "no schema extension " ENT));
    assert_false(provider_check(p, OBJECT_USER, "displayName", NULL, NULL, &why));
    assert_non_null(strstr(why, "read-only"));
    assert_false(provider_check(p, OBJECT_USER, "name", NULL, "middleName", &why));
    assert_non_null(strstr(why, "name.middleName"));
    /* A common attribute (RFC 7643 3.1) the schema does not list is still sent. */
    assert_true(provider_check(p, OBJECT_USER, "externalId", NULL, NULL, &why));
    assert_false(provider_check(p, OBJECT_USER, "nickName", NULL, NULL, &why));
    assert_false(provider_check(p, OBJECT_CONTACT, "displayName", NULL, NULL, &why));
    assert_non_null(strstr(why, "no Contact resource type"));
    provider_free(p);
}

static void missing_documents_take_defaults(void **state)
{
    (void)state;
    struct provider *p = make(NULL, NULL, NULL);
    const char *const *w = provider_warnings(p);
    assert_non_null(w[0]);
    assert_non_null(w[1]);
    assert_null(w[2]);
    assert_non_null(strstr(w[0], "no /Schemas"));
    assert_non_null(strstr(w[1], "no /ResourceTypes"));
    const char *why = NULL;
    assert_true(provider_check(p, OBJECT_USER, ENT ":department", NULL, NULL, &why));
    assert_true(provider_check(p, OBJECT_USER, ENT ":manager", NULL, "value", &why));
    assert_false(provider_check(p, OBJECT_USER, ENT ":manager", NULL, "displayName", &why));
    assert_false(provider_check(p, OBJECT_USER, "groups", NULL, NULL, &why));
    assert_false(provider_has_kind(p, OBJECT_CONTACT));
    assert_string_equal(provider_endpoint(p, OBJECT_USER), "/Users");
    /* members.value is immutable in RFC 7643 4.2: not a top-level immutable attribute */
    assert_null(provider_immutable(p, OBJECT_GROUP)[0]);
    json_t *u = parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
                      "\"userName\":\"a\",\"" ENT "\":{\"department\":\"D\"}}");
    assert_false(provider_restrict(p, OBJECT_USER, u));
    json_decref(u);
    provider_free(p);
}

static void extension_without_schema_is_sent(void **state)
{
    (void)state;
    /* The resource type declares the extension but /Schemas does not describe it. */
    const char rts[] =
        "[{\"name\":\"User\",\"endpoint\":\"/Users\",\"schema\":\"urn:ietf:params:scim:schemas:"
        "core:2.0:User\",\"schemaExtensions\":[{\"schema\":\"" ENT "\",\"required\":false}]}]";
    struct provider *p = make(rts, schemas_plain, NULL);
    json_t *u = parse("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\",\"" ENT "\"],"
                      "\"userName\":\"a\",\"" ENT "\":{\"department\":\"D\"}}");
    assert_false(provider_restrict(p, OBJECT_USER, u));
    assert_false(provider_has_kind(p, OBJECT_GROUP));
    json_decref(u);
    provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(features_are_read),
        cmocka_unit_test(undeclared_values_are_not_sent),
        cmocka_unit_test(check_names_the_reason),
        cmocka_unit_test(missing_documents_take_defaults),
        cmocka_unit_test(extension_without_schema_is_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
