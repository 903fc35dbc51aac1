/*
 * provider.h - what the SCIM service provider declares (RFC 7644 4) and what
 * the connector may therefore send it.
 *
 * provider_discover() reads, once per run, /ServiceProviderConfig (RFC 7643
 * 5: patch, bulk with maxOperations and maxPayloadSize, filter with
 * maxResults, etag, sort), /ResourceTypes (RFC 7643 6: endpoints, core
 * schema, schema extensions) and /Schemas (RFC 7643 7: attributes,
 * sub-attributes, multiValued, mutability). A provider that answers 404 (or
 * another non-authentication error) to /ResourceTypes or /Schemas gets the
 * documented defaults (docs/cloud-api.md "What the connector needs"):
 * Users at /Users with the RFC 7643 4.1 User schema and the 4.3 enterprise
 * extension, Groups at /Groups with the 4.2 schema, no Contact type; each
 * default taken is a warning.
 *
 * provider_restrict() then drops from a mapped record what the provider
 * does not declare or declares read-only, and what a configured provider
 * limitation excludes ([cloud] single_valued), so that the record the plan
 * stores and hashes is exactly what is sent. provider_check() says the same
 * for one mapping target, for the run's report of mappings that are not sent.
 *
 * A struct provider is immutable after discovery and owned by its caller.
 */
#ifndef DIRCONN_PROVIDER_H
#define DIRCONN_PROVIDER_H

#include "connector/core/object_kind.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/scim.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* RFC 7643 7 "mutability". */
enum provider_mutability {
    PROVIDER_READWRITE = 0,
    PROVIDER_READONLY,
    PROVIDER_IMMUTABLE,
    PROVIDER_WRITEONLY
};

/* What ServiceProviderConfig says (RFC 7643 5), with the connector's reading of it. */
struct provider_features {
    bool patch;               /* patch.supported; false: updates are GET + PUT */
    bool bulk;                /* bulk.supported with positive limits */
    long bulk_max_operations; /* bulk.maxOperations */
    long bulk_max_payload;    /* bulk.maxPayloadSize, bytes (0: not declared) */
    bool filter;              /* filter.supported */
    long filter_max_results;  /* filter.maxResults (0: not declared) */
    bool etag;                /* etag.supported: If-Match on writes, meta.version for drift */
    bool sort;                /* sort.supported (never used: the connector assumes no sorting) */
};

/* Settings of the site for this provider ([cloud] keys, docs/configuration.md). */
struct provider_settings {
    const char *const *single_valued; /* multi-valued attributes taken with one value;
                                         NULL-terminated or NULL */
    bool delete_cascades; /* the provider removes a deleted user from groups and managers */
};

struct provider;

/*
 * provider_discover - read the discovery endpoints through port (relative
 * paths of the SCIM base) and build *out (owned by the caller,
 * provider_free). settings is copied. Warnings (defaults taken, odd answers)
 * are logged at warn level and kept for provider_warnings. Errors: those of
 * the ServiceProviderConfig request (DIRCONN_ECLOUD_CONNECT, DIRCONN_ECLOUD_AUTH,
 * DIRCONN_ECLOUD with the URL and status), and a 401/403 on the other two;
 * DIRCONN_ENOMEM.
 */
enum dirconn_err provider_discover(const struct scim_port *port, const struct log_sink *log,
                                   const struct provider_settings *settings, struct provider **out,
                                   struct dirconn_error *err);

/*
 * provider_from_documents - the same from documents already read (NULL: the
 * endpoint did not answer), for tests and tools. spc must not be NULL.
 */
enum dirconn_err provider_from_documents(const json_t *spc, const json_t *resource_types,
                                         const json_t *schemas,
                                         const struct provider_settings *settings,
                                         const struct log_sink *log, struct provider **out,
                                         struct dirconn_error *err);

/* provider_free - free p (may be NULL). */
void provider_free(struct provider *p);

/* provider_features - the ServiceProviderConfig reading. Owned by p. */
const struct provider_features *provider_features(const struct provider *p);

/* provider_has_kind - whether the provider offers the resource type (Contact is optional). */
bool provider_has_kind(const struct provider *p, enum object_kind kind);

/* provider_endpoint - the resource type's endpoint ("/Users"), or the default. Owned by p. */
const char *provider_endpoint(const struct provider *p, enum object_kind kind);

/*
 * provider_check - whether one leaf (attr URN-qualified inside an
 * extension, type, sub as in record.h) can be sent for kind. Returns true
 * when it can; false with a reason (a static or p-owned string, e.g. "the
 * cloud's User resource type has no extension urn:..., so ...") otherwise.
 * Immutable attributes can be sent (on creation only).
 */
bool provider_check(const struct provider *p, enum object_kind kind, const char *attr,
                    const char *type, const char *sub, const char **why);

/*
 * provider_restrict - remove from resource (a record as the map stage
 * built it, changed in place) every attribute, extension, sub-attribute
 * and extra value provider_check refuses or settings->single_valued
 * excludes (the first value of such an attribute is kept: the mapping's
 * order, docs/mapping.md), and fix "schemas". Returns true when something
 * was removed.
 */
bool provider_restrict(const struct provider *p, enum object_kind kind, json_t *resource);

/*
 * provider_immutable - the attributes of kind declared immutable
 * (URN-qualified in an extension), NULL-terminated, for
 * record_patch_rules.immutable. Owned by p.
 */
const char *const *provider_immutable(const struct provider *p, enum object_kind kind);

/* provider_warnings - the warnings of discovery, NULL-terminated. Owned by p. */
const char *const *provider_warnings(const struct provider *p);

#endif
