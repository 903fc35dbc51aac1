/* provider.c - discovery of a SCIM service provider (RFC 7644 4) and what may be sent to it. */
#include "connector/provider.h"

#include "connector/mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The defaults for a provider without /Schemas (RFC 7643 4.1, 4.2, 4.3; only
 * the attributes dirconn can map and their sub-attributes). Parsed by the same
 * code as a provider's own answer.
 */
static const char default_schemas[] =
    "["
    "{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attributes\":["
    "{\"name\":\"userName\"},{\"name\":\"displayName\"},{\"name\":\"nickName\"},"
    "{\"name\":\"profileUrl\"},{\"name\":\"title\"},{\"name\":\"userType\"},"
    "{\"name\":\"preferredLanguage\"},{\"name\":\"locale\"},{\"name\":\"timezone\"},"
    "{\"name\":\"active\"},"
    "{\"name\":\"name\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"formatted\"},"
    "{\"name\":\"familyName\"},{\"name\":\"givenName\"},{\"name\":\"middleName\"},"
    "{\"name\":\"honorificPrefix\"},{\"name\":\"honorificSuffix\"}]},"
    "{\"name\":\"emails\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"value\"},{\"name\":\"display\"},{\"name\":\"type\"},{\"name\":\"primary\"}]},"
    "{\"name\":\"phoneNumbers\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"value\"},{\"name\":\"display\"},{\"name\":\"type\"},{\"name\":\"primary\"}]},"
    "{\"name\":\"photos\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"value\"},{\"name\":\"display\"},{\"name\":\"type\"},{\"name\":\"primary\"}]},"
    "{\"name\":\"addresses\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"formatted\"},{\"name\":\"streetAddress\"},{\"name\":\"locality\"},"
    "{\"name\":\"region\"},{\"name\":\"postalCode\"},{\"name\":\"country\"},{\"name\":\"type\"},"
    "{\"name\":\"primary\"}]},"
    "{\"name\":\"groups\",\"type\":\"complex\",\"multiValued\":true,\"mutability\":\"readOnly\"}]},"
    "{\"id\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"attributes\":["
    "{\"name\":\"employeeNumber\"},{\"name\":\"costCenter\"},{\"name\":\"organization\"},"
    "{\"name\":\"division\"},{\"name\":\"department\"},"
    "{\"name\":\"manager\",\"type\":\"complex\",\"subAttributes\":[{\"name\":\"value\"},"
    "{\"name\":\"$ref\"},{\"name\":\"displayName\",\"mutability\":\"readOnly\"}]}]},"
    "{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:Group\",\"attributes\":["
    "{\"name\":\"displayName\"},"
    "{\"name\":\"members\",\"type\":\"complex\",\"multiValued\":true,\"subAttributes\":["
    "{\"name\":\"value\",\"mutability\":\"immutable\"},{\"name\":\"$ref\"},"
    "{\"name\":\"type\"},{\"name\":\"display\"}]}]}"
    "]";

static const char *const core_schema[OBJECT_KINDS] = {SCIM_SCHEMA_USER, SCIM_SCHEMA_GROUP,
                                                      MAPPING_SCHEMA_CONTACT};
static const char *const kind_names[OBJECT_KINDS] = {"User", "Group", "Contact"};
static const char *const default_endpoints[OBJECT_KINDS] = {"/Users", "/Groups", "/Contacts"};

/* One resource type as the connector reads it. */
struct kind_info {
    bool present;
    char *endpoint;
    json_t *core;       /* attribute definitions of the core schema (array), or NULL: unknown */
    json_t *extensions; /* URN -> attribute definitions (array, or null when unknown) */
    char **immutable;   /* NULL-terminated */
};

struct provider {
    struct provider_features f;
    struct provider_settings s;
    char **single_valued; /* owned copy of s.single_valued */
    struct kind_info k[OBJECT_KINDS];
    char **warnings;
    size_t n_warnings;
    char why[512];
};

static bool add_str(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
    if (nv == NULL)
        return false;
    *v = nv;
    nv[*n] = strdup(s);
    if (nv[*n] == NULL)
        return false;
    nv[++*n] = NULL;
    return true;
}

static void warn(struct provider *p, const struct log_sink *log, const char *msg)
{
    if (log != NULL)
        log_msg(log, LOG_LEVEL_WARN, "%s", msg);
    add_str(&p->warnings, &p->n_warnings, msg);
}

/* The list of a ListResponse (RFC 7644 3.4.2), or a bare array. Borrowed. */
static const json_t *resources_of(const json_t *doc)
{
    if (json_is_array(doc))
        return doc;
    const json_t *r = json_object_get(doc, "Resources");
    return json_is_array(r) ? r : NULL;
}

static const json_t *schema_attrs(const json_t *schemas, const char *urn)
{
    size_t i;
    const json_t *s;
    json_array_foreach(resources_of(schemas), i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (id != NULL && strcasecmp(id, urn) == 0) {
            const json_t *a = json_object_get(s, "attributes");
            return json_is_array(a) ? a : NULL;
        }
    }
    return NULL;
}

/* The definition named name (case-insensitive, RFC 7643 2.1) in an attribute array. */
static const json_t *find_attr(const json_t *attrs, const char *name)
{
    size_t i;
    const json_t *a;
    json_array_foreach(attrs, i, a)
    {
        const char *n = json_string_value(json_object_get(a, "name"));
        if (n != NULL && strcasecmp(n, name) == 0)
            return a;
    }
    return NULL;
}

static bool read_only(const json_t *def)
{
    const char *m = json_string_value(json_object_get(def, "mutability"));
    return m != NULL && strcasecmp(m, "readOnly") == 0;
}

static bool immutable(const json_t *def)
{
    const char *m = json_string_value(json_object_get(def, "mutability"));
    return m != NULL && strcasecmp(m, "immutable") == 0;
}

static void read_spc(struct provider *p, const json_t *spc)
{
    const json_t *patch = json_object_get(spc, "patch");
    const json_t *bulk = json_object_get(spc, "bulk");
    const json_t *filter = json_object_get(spc, "filter");
    p->f.patch = json_is_true(json_object_get(patch, "supported"));
    p->f.bulk_max_operations = (long)json_integer_value(json_object_get(bulk, "maxOperations"));
    p->f.bulk_max_payload = (long)json_integer_value(json_object_get(bulk, "maxPayloadSize"));
    p->f.bulk = json_is_true(json_object_get(bulk, "supported")) && p->f.bulk_max_operations > 0 &&
                p->f.bulk_max_payload > 0;
    p->f.filter = json_is_true(json_object_get(filter, "supported"));
    p->f.filter_max_results = (long)json_integer_value(json_object_get(filter, "maxResults"));
    p->f.etag = json_is_true(json_object_get(json_object_get(spc, "etag"), "supported"));
    p->f.sort = json_is_true(json_object_get(json_object_get(spc, "sort"), "supported"));
}

static enum dirconn_err build(struct provider *p, const json_t *rts, const json_t *schemas,
                              const struct log_sink *log, struct dirconn_error *err)
{
    json_error_t jerr;
    json_t *defaults = NULL;
    char msg[512];
    if (resources_of(schemas) == NULL) {
        defaults = json_loads(default_schemas, 0, &jerr);
        if (defaults == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        schemas = defaults;
        warn(p, log,
             "the cloud publishes no /Schemas: dirconn assumes the RFC 7643 User, enterprise User "
             "and Group schemas (docs/cloud-api.md)");
    }
    const json_t *list = resources_of(rts);
    if (list == NULL) {
        warn(p, log,
             "the cloud publishes no /ResourceTypes: dirconn assumes Users at /Users with the "
             "enterprise extension and Groups at /Groups, and no Contact type (docs/cloud-api.md)");
        for (int k = OBJECT_USER; k <= OBJECT_GROUP; k++) {
            p->k[k].present = true;
            p->k[k].endpoint = strdup(default_endpoints[k]);
            p->k[k].extensions = json_object();
        }
        json_object_set_new(p->k[OBJECT_USER].extensions, SCIM_SCHEMA_ENTERPRISE, json_null());
    } else {
        size_t i;
        const json_t *rt;
        json_array_foreach(list, i, rt)
        {
            const char *name = json_string_value(json_object_get(rt, "name"));
            const char *schema = json_string_value(json_object_get(rt, "schema"));
            const char *ep = json_string_value(json_object_get(rt, "endpoint"));
            for (int k = 0; k < OBJECT_KINDS; k++) {
                if (p->k[k].present)
                    continue;
                if (!((schema != NULL && strcasecmp(schema, core_schema[k]) == 0) ||
                      (name != NULL && strcasecmp(name, kind_names[k]) == 0)))
                    continue;
                p->k[k].present = true;
                p->k[k].endpoint = strdup(ep != NULL ? ep : default_endpoints[k]);
                p->k[k].extensions = json_object();
                size_t j;
                const json_t *x;
                json_array_foreach(json_object_get(rt, "schemaExtensions"), j, x)
                {
                    const char *urn = json_string_value(json_object_get(x, "schema"));
                    if (urn != NULL)
                        json_object_set_new(p->k[k].extensions, urn, json_null());
                }
            }
        }
    }
    for (int k = 0; k < OBJECT_KINDS; k++) {
        struct kind_info *ki = &p->k[k];
        if (!ki->present)
            continue;
        if (ki->endpoint == NULL || ki->extensions == NULL) {
            json_decref(defaults);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
        const json_t *core = schema_attrs(schemas, core_schema[k]);
        ki->core = core != NULL ? json_deep_copy(core) : NULL;
        if (core == NULL && k != OBJECT_CONTACT) {
            snprintf(msg, sizeof(msg),
                     "the cloud's /Schemas has no %s: every mapped %s attribute is sent",
                     core_schema[k], kind_names[k]);
            warn(p, log, msg);
        }
        const char *urn;
        json_t *v;
        json_object_foreach(ki->extensions, urn, v)
        {
            const json_t *a = schema_attrs(schemas, urn);
            if (a != NULL)
                json_object_set_new(ki->extensions, urn, json_deep_copy(a));
        }
        size_t n = 0;
        ki->immutable = calloc(1, sizeof(char *));
        size_t i;
        const json_t *a;
        /* a definition without a name (RFC 7643 7 requires one) names nothing to keep */
        json_array_foreach(ki->core, i, a)
        {
            const char *name = json_string_value(json_object_get(a, "name"));
            if (immutable(a) && name != NULL)
                add_str(&ki->immutable, &n, name);
        }
        json_object_foreach(ki->extensions, urn, v)
        {
            json_array_foreach(v, i, a)
            {
                const char *name = json_string_value(json_object_get(a, "name"));
                if (!immutable(a) || name == NULL)
                    continue;
                char q[512];
                snprintf(q, sizeof(q), "%s:%s", urn, name);
                add_str(&ki->immutable, &n, q);
            }
        }
    }
    json_decref(defaults);
    return DIRCONN_OK;
}

enum dirconn_err provider_from_documents(const json_t *spc, const json_t *resource_types,
                                         const json_t *schemas,
                                         const struct provider_settings *settings,
                                         const struct log_sink *log, struct provider **out,
                                         struct dirconn_error *err)
{
    *out = NULL;
    struct provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    read_spc(p, spc);
    size_t n = 0;
    p->single_valued = calloc(1, sizeof(char *));
    for (size_t i = 0;
         settings != NULL && settings->single_valued != NULL && settings->single_valued[i] != NULL;
         i++)
        add_str(&p->single_valued, &n, settings->single_valued[i]);
    if (settings != NULL)
        p->s.delete_cascades = settings->delete_cascades;
    p->s.single_valued = (const char *const *)p->single_valued;
    enum dirconn_err e = build(p, resource_types, schemas, log, err);
    if (e != DIRCONN_OK) {
        provider_free(p);
        return e;
    }
    if (p->warnings == NULL)
        p->warnings = calloc(1, sizeof(char *));
    *out = p;
    return DIRCONN_OK;
}

/* GET one discovery document; NULL (with no error) when the provider has none. */
static enum dirconn_err get_doc(const struct scim_port *port, const char *path, bool required,
                                json_t **doc, struct dirconn_error *err)
{
    struct scim_response r;
    *doc = NULL;
    enum dirconn_err e = scim_port_request(port, "GET", path, NULL, NULL, &r);
    if (e == DIRCONN_OK) {
        *doc = r.body != NULL ? json_incref(r.body) : NULL;
    } else if (required || r.code == DIRCONN_ECLOUD_AUTH || r.code == DIRCONN_ECLOUD_CONNECT ||
               r.code == DIRCONN_ELEASE || r.status == 401 || r.status == 403) {
        e = scim_response_error(&r, err);
    } else {
        e = DIRCONN_OK;
    }
    scim_response_clear(&r);
    return e;
}

enum dirconn_err provider_discover(const struct scim_port *port, const struct log_sink *log,
                                   const struct provider_settings *settings, struct provider **out,
                                   struct dirconn_error *err)
{
    json_t *spc = NULL, *rts = NULL, *schemas = NULL;
    *out = NULL;
    enum dirconn_err e = get_doc(port, "/ServiceProviderConfig", true, &spc, err);
    if (e == DIRCONN_OK)
        e = get_doc(port, "/ResourceTypes", false, &rts, err);
    if (e == DIRCONN_OK)
        e = get_doc(port, "/Schemas", false, &schemas, err);
    if (e == DIRCONN_OK)
        e = provider_from_documents(spc, rts, schemas, settings, log, out, err);
    json_decref(spc);
    json_decref(rts);
    json_decref(schemas);
    return e;
}

void provider_free(struct provider *p)
{
    if (p == NULL)
        return;
    for (int k = 0; k < OBJECT_KINDS; k++) {
        free(p->k[k].endpoint);
        json_decref(p->k[k].core);
        json_decref(p->k[k].extensions);
        for (size_t i = 0; p->k[k].immutable != NULL && p->k[k].immutable[i] != NULL; i++)
            free(p->k[k].immutable[i]);
        free(p->k[k].immutable);
    }
    for (size_t i = 0; p->single_valued != NULL && p->single_valued[i] != NULL; i++)
        free(p->single_valued[i]);
    free(p->single_valued);
    for (size_t i = 0; i < p->n_warnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    free(p);
}

const struct provider_features *provider_features(const struct provider *p)
{
    return &p->f;
}

bool provider_has_kind(const struct provider *p, enum object_kind kind)
{
    return p->k[kind].present;
}

const char *provider_endpoint(const struct provider *p, enum object_kind kind)
{
    return p->k[kind].endpoint != NULL ? p->k[kind].endpoint : default_endpoints[kind];
}

/* Split "urn:...:User:department" into the extension URN the kind declares and the attribute. */
static const char *split_extension(const struct kind_info *ki, const char *attr, const char **urn)
{
    const char *u;
    json_t *v;
    *urn = NULL;
    json_object_foreach(ki->extensions, u, v)
    {
        size_t n = strlen(u);
        if (strncasecmp(attr, u, n) == 0 && attr[n] == ':') {
            *urn = u;
            return attr + n + 1;
        }
    }
    return NULL;
}

static bool is_single_valued(const struct provider *p, const char *attr)
{
    for (size_t i = 0; p->single_valued[i] != NULL; i++)
        if (strcasecmp(p->single_valued[i], attr) == 0)
            return true;
    return false;
}

bool provider_check(const struct provider *p, enum object_kind kind, const char *attr,
                    const char *type, const char *sub, const char **why)
{
    struct provider *mp = (struct provider *)p; /* the reason buffer only */
    const struct kind_info *ki = &p->k[kind];
    (void)type;
    *why = NULL;
    if (!ki->present) {
        snprintf(mp->why, sizeof(mp->why), "the cloud has no %s resource type", kind_names[kind]);
        *why = mp->why;
        return false;
    }
    const json_t *attrs = ki->core;
    const char *name = attr;
    if (strncasecmp(attr, "urn:", 4) == 0) {
        const char *urn;
        name = split_extension(ki, attr, &urn);
        if (name == NULL) {
            const char *colon = strrchr(attr, ':');
            snprintf(mp->why, sizeof(mp->why),
                     "the cloud's %s resource type has no schema extension %.*s", kind_names[kind],
                     colon != NULL ? (int)(colon - attr) : (int)strlen(attr), attr);
            *why = mp->why;
            return false;
        }
        attrs = json_object_get(ki->extensions, urn);
    }
    if (attrs == NULL || !json_is_array(attrs))
        return true; /* no schema published for it: sent as mapped */
    /* externalId is a common attribute (RFC 7643 3.1), part of every resource whatever the
     * resource type's schema lists; some providers leave it out of /Schemas. */
    if (attrs == ki->core && strcasecmp(name, "externalId") == 0 && sub == NULL)
        return true;
    const json_t *def = find_attr(attrs, name);
    if (def == NULL || read_only(def)) {
        snprintf(mp->why, sizeof(mp->why), "the cloud's %s schema %s attribute %s",
                 kind_names[kind], def == NULL ? "has no" : "declares read-only the", attr);
        *why = mp->why;
        return false;
    }
    const json_t *subs = json_object_get(def, "subAttributes");
    if (sub != NULL && json_is_array(subs)) {
        const json_t *sd = find_attr(subs, sub);
        if (sd == NULL || read_only(sd)) {
            snprintf(mp->why, sizeof(mp->why), "the cloud's %s schema %s sub-attribute %s.%s",
                     kind_names[kind], sd == NULL ? "has no" : "declares read-only the", attr, sub);
            *why = mp->why;
            return false;
        }
    }
    return true;
}

/* Keep only the declared, writable sub-attributes of one complex value. */
static bool restrict_complex(const json_t *def, json_t *value)
{
    const json_t *subs = json_object_get(def, "subAttributes");
    if (!json_is_object(value) || !json_is_array(subs))
        return false;
    bool removed = false;
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(value, tmp, key, v)
    {
        const json_t *sd = find_attr(subs, key);
        if (sd == NULL || read_only(sd)) {
            json_object_del(value, key);
            removed = true;
        }
    }
    return removed;
}

/* Restrict the attributes of obj (the resource, or an extension's object) to attrs. */
static bool restrict_attrs(const struct provider *p, const json_t *attrs, json_t *obj, bool top)
{
    bool removed = false;
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v)
    {
        if (top && (strcmp(key, "schemas") == 0 || strcmp(key, "externalId") == 0 ||
                    strcmp(key, "id") == 0 || strncmp(key, "urn:", 4) == 0 ||
                    strncmp(key, MAPPING_LINK_PREFIX, strlen(MAPPING_LINK_PREFIX)) == 0))
            continue;
        const json_t *def = find_attr(attrs, key);
        if (def == NULL || read_only(def)) {
            json_object_del(obj, key);
            removed = true;
            continue;
        }
        if (json_is_array(v)) {
            size_t i;
            json_t *item;
            if (top && is_single_valued(p, key) && json_array_size(v) > 1) {
                /* The value kept: the primary one (RFC 7643 2.4), else the first mapped. */
                size_t keep = 0;
                json_array_foreach(v, i, item) if (json_is_true(json_object_get(item, "primary")))
                {
                    keep = i;
                    break;
                }
                json_t *kept = json_incref(json_array_get(v, keep));
                json_array_clear(v);
                json_array_append_new(v, kept);
                removed = true;
            }
            json_array_foreach(v, i, item) removed = restrict_complex(def, item) || removed;
        } else {
            removed = restrict_complex(def, v) || removed;
        }
        if ((json_is_object(v) && json_object_size(v) == 0) ||
            (json_is_array(v) && json_array_size(v) == 0)) {
            json_object_del(obj, key);
            removed = true;
        }
    }
    return removed;
}

bool provider_restrict(const struct provider *p, enum object_kind kind, json_t *resource)
{
    const struct kind_info *ki = &p->k[kind];
    if (!ki->present || !json_is_object(resource))
        return false;
    bool removed = false;
    if (ki->core != NULL)
        removed = restrict_attrs(p, ki->core, resource, true);
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(resource, tmp, key, v)
    {
        if (strncmp(key, "urn:", 4) != 0)
            continue;
        json_t *attrs = NULL;
        bool declared = false;
        const char *u;
        json_t *a;
        json_object_foreach(ki->extensions, u, a) if (strcasecmp(u, key) == 0)
        {
            declared = true;
            attrs = a;
        }
        if (!declared) {
            json_object_del(resource, key);
            removed = true;
            continue;
        }
        if (json_is_array(attrs) && restrict_attrs(p, attrs, v, false))
            removed = true;
        if (json_object_size(v) == 0) {
            json_object_del(resource, key);
            removed = true;
        }
    }
    if (removed) {
        /* "schemas" names the core schema and the extensions still present (RFC 7643 3). */
        json_t *schemas = json_object_get(resource, "schemas");
        for (size_t i = json_array_size(schemas); i > 0; i--) {
            const char *s = json_string_value(json_array_get(schemas, i - 1));
            if (s != NULL && strcasecmp(s, core_schema[kind]) != 0 &&
                json_object_get(resource, s) == NULL)
                json_array_remove(schemas, i - 1);
        }
    }
    return removed;
}

const char *const *provider_immutable(const struct provider *p, enum object_kind kind)
{
    return (const char *const *)p->k[kind].immutable;
}

const char *const *provider_warnings(const struct provider *p)
{
    return (const char *const *)p->warnings;
}
