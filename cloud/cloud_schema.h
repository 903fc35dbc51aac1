/*
 * cloud_schema.h - SCIM 2.0 schemas served and enforced by dirconn-cloud.
 *
 * The attribute tables here are the one definition of the User, Group,
 * enterprise User extension and Contact schemas: /Schemas and /ResourceTypes
 * are generated from them and every resource body is validated against them
 * (RFC 7643 sections 2, 4, 7 and 8.7).
 *
 * Stored resources are kept in canonical form: attribute names spelled as in
 * the schema (SCIM names are case-insensitive on input, RFC 7643 2.1),
 * values type-checked, readOnly attributes sent by clients dropped.
 */
#ifndef DIRCONN_CLOUD_SCHEMA_H
#define DIRCONN_CLOUD_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CLOUD_SCHEMA_USER       "urn:ietf:params:scim:schemas:core:2.0:User"
#define CLOUD_SCHEMA_GROUP      "urn:ietf:params:scim:schemas:core:2.0:Group"
#define CLOUD_SCHEMA_ENTERPRISE "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define CLOUD_SCHEMA_CONTACT    "urn:dirconn:params:scim:schemas:core:1.0:Contact"
#define CLOUD_MSG_ERROR         "urn:ietf:params:scim:api:messages:2.0:Error"
#define CLOUD_MSG_LIST          "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define CLOUD_MSG_PATCH         "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define CLOUD_MSG_BULK_REQ      "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
#define CLOUD_MSG_BULK_RESP     "urn:ietf:params:scim:api:messages:2.0:BulkResponse"

/* RFC 7643 2.3 data types. */
enum cloud_attr_type {
    CLOUD_T_STRING,
    CLOUD_T_BOOLEAN,
    CLOUD_T_DECIMAL,
    CLOUD_T_INTEGER,
    CLOUD_T_DATETIME,
    CLOUD_T_BINARY,
    CLOUD_T_REFERENCE,
    CLOUD_T_COMPLEX
};

/* RFC 7643 7 "mutability", "returned", "uniqueness". */
enum cloud_mutability { CLOUD_M_READWRITE, CLOUD_M_READONLY, CLOUD_M_IMMUTABLE, CLOUD_M_WRITEONLY };
enum cloud_returned { CLOUD_R_DEFAULT, CLOUD_R_ALWAYS, CLOUD_R_NEVER, CLOUD_R_REQUEST };
enum cloud_uniqueness { CLOUD_U_NONE, CLOUD_U_SERVER, CLOUD_U_GLOBAL };

/* One attribute definition; sub-attributes only for CLOUD_T_COMPLEX. */
struct cloud_attr_def {
    const char *name;
    enum cloud_attr_type type;
    bool multi;
    bool required;
    bool case_exact;
    enum cloud_mutability mutability;
    enum cloud_returned returned;
    enum cloud_uniqueness uniqueness;
    const char *description;
    const char *const *canonical; /* NULL-terminated or NULL */
    const char *const *ref_types; /* NULL-terminated or NULL */
    const struct cloud_attr_def *subs;
    size_t nsubs;
};

/* One schema (RFC 7643 7). */
struct cloud_schema_def {
    const char *id;
    const char *name;
    const char *description;
    const struct cloud_attr_def *attrs;
    size_t nattrs;
};

/* The resource kinds the store knows; the value is stored in the database. */
enum cloud_rkind { CLOUD_RK_USER = 0, CLOUD_RK_GROUP = 1, CLOUD_RK_CONTACT = 2, CLOUD_RK_MAX };

/* One resource type (RFC 7643 6) with its core schema and extensions. */
struct cloud_rtype_def {
    enum cloud_rkind kind;
    const char *name;     /* "User" */
    const char *endpoint; /* "/Users" (the path segment without '/': endpoint + 1) */
    const char *description;
    const struct cloud_schema_def *core;
    const struct cloud_schema_def *ext; /* NULL or the one extension */
    bool ext_required;
};

/* A resolved attribute path: where in a resource an attribute lives. */
struct cloud_attr_ref {
    const struct cloud_schema_def *ext; /* non-NULL: inside the extension object */
    const struct cloud_attr_def *attr;  /* top-level (or extension) attribute */
    const struct cloud_attr_def *sub;   /* sub-attribute or NULL */
};

/* A SCIM error being built (RFC 7644 3.12): HTTP status, scimType or NULL, detail. */
struct cloud_scim_err {
    int status;
    const char *scim_type;
    char detail[512];
};

/*
 * cloud_scim_err_set - fill err (may be NULL) and return -1, so callers can
 * write `return cloud_scim_err_set(err, 400, "invalidValue", "...")`.
 */
int cloud_scim_err_set(struct cloud_scim_err *err, int status, const char *scim_type,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cloud_schema_rtype - the resource type of a kind, or by endpoint segment ("Users"); NULL if none.
 */
/*
 * cloud_schema_configure - which optional parts of the schema this server
 * serves (dirconn-cloud --no-enterprise-extension, --no-contacts). Without the
 * enterprise extension, User has no schemaExtensions and a resource or PATCH
 * path that uses it is answered 400; without contacts, /Contacts is not an
 * endpoint and neither /ResourceTypes nor /Schemas lists it. Call once at
 * startup, before serving. Default: both served.
 */
void cloud_schema_configure(bool enterprise, bool contacts);

/*
 * cloud_schema_omit - the attributes and sub-attributes this server does not serve
 * (dirconn-cloud --profile), replacing any earlier set; paths (NULL-terminated list, or NULL
 * for none) are "URN:attr" or "URN:attr.sub" with the id of a core or extension schema. An
 * omitted attribute is unknown everywhere, as one the schema never had: /Schemas does not
 * declare it, a body using it is 400 invalidSyntax, a PATCH path invalidPath, a filter
 * invalidFilter, attributes=/sortBy invalidValue. Required attributes cannot be omitted. At
 * most CLOUD_SCHEMA_MAX_OMIT paths. Call at startup, before serving. Returns 0, or -1 with a
 * reason in msg (msglen bytes) and the earlier set kept.
 */
#define CLOUD_SCHEMA_MAX_OMIT 32
int cloud_schema_omit(const char *const *paths, char *msg, size_t msglen);

/* cloud_schema_rtype_served - whether resource type kind is served (see above). */
bool cloud_schema_rtype_served(enum cloud_rkind kind);

const struct cloud_rtype_def *cloud_schema_rtype(enum cloud_rkind kind);
const struct cloud_rtype_def *cloud_schema_rtype_by_endpoint(const char *segment);

/* cloud_schema_common - the common attributes id, externalId, meta (RFC 7643 3.1). */
const struct cloud_attr_def *cloud_schema_common(size_t *n);

/* cloud_schema_find - case-insensitive lookup of name in defs[0..n); NULL if absent. */
const struct cloud_attr_def *cloud_schema_find(const struct cloud_attr_def *defs, size_t n,
                                               const char *name);

/*
 * cloud_schema_resolve - resolve an attribute path given as its parts for a
 * resource type: uri (schema URN or NULL), attr name, sub name (or NULL).
 * Common attributes resolve with ref->ext NULL. Returns 0, or -1 with a 400
 * invalidPath/invalidFilter-style detail in err (scim_type left to caller: the
 * returned err has scim_type NULL).
 */
int cloud_schema_resolve(const struct cloud_rtype_def *rt, const char *uri, const char *attr,
                         const char *sub, struct cloud_attr_ref *ref, struct cloud_scim_err *err);

/*
 * cloud_schema_validate - check a full resource body (POST, PUT, or the
 * result of PATCH) against rt and return a new canonical copy in *out
 * (caller owns, json_decref). readOnly attributes (id, meta, groups,
 * members.display ...) are dropped; writeOnly "password" is dropped after
 * validation (never stored). Unknown attributes and missing or wrong
 * "schemas" are 400 invalidSyntax; wrong types, bad dateTime/binary,
 * missing required attributes, two primaries are 400 invalidValue.
 * Returns 0 or -1 with err filled.
 */
int cloud_schema_validate(const struct cloud_rtype_def *rt, const json_t *in, json_t **out,
                          struct cloud_scim_err *err);

/* cloud_schema_parse_datetime - xsd:dateTime (RFC 3339) to milliseconds since the epoch. */
bool cloud_schema_parse_datetime(const char *s, long long *ms);

/* JSON documents for the discovery endpoints (RFC 7644 4); base is the
 * SCIM base URL for meta.location. Caller owns the result. */
json_t *cloud_schema_schemas_json(const char *base);
json_t *cloud_schema_schema_json(const struct cloud_schema_def *s, const char *base);
const struct cloud_schema_def *cloud_schema_by_id(const char *id);
json_t *cloud_schema_rtypes_json(const char *base);
json_t *cloud_schema_rtype_json(const struct cloud_rtype_def *rt, const char *base);

/* cloud_json_get_ci - case-insensitive object member lookup; NULL if absent. */
json_t *cloud_json_get_ci(const json_t *obj, const char *key, const char **actual_key);

#endif
