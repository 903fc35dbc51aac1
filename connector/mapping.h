/*
 * mapping.h - the "map" stage of the sync engine: directory entries to SCIM
 * resources (RFC 7643 4.1 User, 4.2 Group, 4.3 enterprise User extension, and
 * dirconn's Contact resource urn:dirconn:params:scim:schemas:core:1.0:Contact).
 *
 * A mapping is a table from SCIM attribute path to an expression over
 * directory attributes: the built-in defaults (the attribute table of the
 * Cisco Directory Connector guide, translated to SCIM) overridden by the
 * [mapping] lines of the configuration. Expressions are parsed once by
 * mapping_compile; mapping_apply evaluates them for one entry, validates the
 * values (phone numbers, e-mail addresses, text, sizes) and reports what it
 * dropped in the words of the guide's error table. docs/mapping.md has the
 * grammar, the paths and their aliases, and the default table.
 *
 * A compiled mapping is immutable and may be shared by threads; results are
 * per call.
 */
#ifndef DIRCONN_MAPPING_H
#define DIRCONN_MAPPING_H

#include "connector/core/object_kind.h"
#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/ldap_entry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MAPPING_SCHEMA_USER       "urn:ietf:params:scim:schemas:core:2.0:User"
#define MAPPING_SCHEMA_GROUP      "urn:ietf:params:scim:schemas:core:2.0:Group"
#define MAPPING_SCHEMA_ENTERPRISE "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define MAPPING_SCHEMA_CONTACT    "urn:dirconn:params:scim:schemas:core:1.0:Contact"

/* Longest mapped string value, in bytes; longer values are dropped with a warning. */
#define MAPPING_VALUE_MAX 1024
/* Longest mapped record (compact JSON), in bytes; a longer record is skipped. */
#define MAPPING_RECORD_MAX 65536

struct mapping;

/* One per-attribute warning of one entry: the value was dropped, the rest was mapped. */
struct mapping_issue {
    char *attribute; /* the directory attribute (or the SCIM path when several fed the value) */
    char *message;   /* one line: "For <dn>, the attribute <a> has the following invalid value: <v>.
                        <rule>." */
};

/* The outcome of mapping one entry. Zero-initialised by mapping_apply; release with
 * mapping_result_clear. */
struct mapping_result {
    bool skipped;       /* the entry must not be sent; skip_message says why */
    char *skip_message; /* e.g. "The required attribute mail is missing when adding on-premises
                           entry <dn>, ..." */
    json_t
        *resource; /* the SCIM resource with "schemas"; NULL when skipped. Owned (one reference). */
    char *external_id; /* the mapped externalId (copy), or NULL when skipped */
    char *manager_dn;  /* users: the DN of the manager, for the plan stage to resolve to a cloud id
                          and set as enterprise manager.value; NULL = none */
    char *
        *member_dns; /* groups: DNs of the direct members (values of member), for the plan stage */
    size_t n_members;
    struct mapping_issue *issues; /* warnings, in the order found */
    size_t n_issues;
    char *text;        /* resource as canonical JSON (mapping_canonical); NULL when skipped */
    size_t text_split; /* where keys starting with MAPPING_LINK_PREFIX would go in text */
};

/*
 * Top-level keys that later stages add to a mapped record (the plan's
 * manager and member links) start with this prefix; mapped resources never
 * have such keys.
 */
#define MAPPING_LINK_PREFIX "dirconn:"

/*
 * mapping_compile - build the mapping of one object kind from the defaults
 * and cfg's [mapping] lines, parsing every expression once.
 *
 * Lines apply by prefix: "group.<path>" to groups, "contact.<path>" to
 * contacts, anything else (optionally "user.<path>") to users. For
 * OBJECT_USER with cfg->avatar_enabled, [avatar] pattern is compiled too and
 * its URI sent as photos[type eq "photo"]; cfg->users_required_attributes are
 * the attributes without which a user is skipped. With
 * cfg->users_sync_proxy_addresses (users only), the smtp: values of
 * proxyAddresses whose domain is in cfg->users_accepted_domains (empty: the
 * domain of the user's mail) become emails[type eq "other"] (Rackspace
 * Directory Sync, "Alternate email addresses"; docs/mapping.md).
 *
 * Paths take the alias ("phoneNumbers.other") or the RFC 7644 3.10 value
 * path, with or without the sub-attribute ('phoneNumbers[type eq "work"]').
 * emails[type eq "other"].value and phoneNumbers[type eq "other"].value are
 * multi-valued: every value of their attributes, sorted, each a value of
 * that type; everywhere else an attribute gives its first value.
 *
 * On success *out receives a mapping owned by the caller (mapping_free);
 * cfg is not referenced afterwards. Errors (*out NULL, err one line):
 *   DIRCONN_ECONFIG  "FILE:LINE: [mapping] <path>: <cause>" for an unknown
 *                    path, a path of another kind, a bad expression (syntax,
 *                    unknown function, a boolean where a string is needed),
 *                    or removing a required target; "FILE:LINE: [avatar] pattern:
 *                    <cause>" for a bad avatar pattern (avatar_compile; "FILE:" alone
 *                    for a config not loaded from a file);
 *   DIRCONN_ENOMEM   out of memory.
 */
enum dirconn_err mapping_compile(const struct config *cfg, enum object_kind kind,
                                 struct mapping **out, struct dirconn_error *err);

/*
 * mapping_attributes - the directory attributes a search must request for
 * this mapping (expressions, account state, identifiers, required
 * attributes, avatar placeholders, member/manager), NULL-terminated, without
 * duplicates (case-insensitive). Owned by m; valid until mapping_free.
 */
const char *const *mapping_attributes(const struct mapping *m);

/* One mapped SCIM target of a compiled mapping (docs/mapping.md "SCIM attribute paths"). */
struct mapping_target {
    const char *path;  /* canonical path: "title", "phoneNumbers[type eq \"work\"].value", the
                          enterprise URN-qualified name */
    const char *alias; /* the short form ("phoneNumbers.work", "enterprise.department"), or NULL */
    const char *attr;  /* the top-level attribute: "title", "name", "phoneNumbers",
                          "urn:...:User:department" (URN-qualified in the extension) */
    const char *type;  /* the "type" of the value of a multi-valued attribute, or NULL */
    const char *sub;   /* the sub-attribute ("givenName", "value"; manager: "value"), or NULL */
};

/*
 * mapping_targets - the targets m maps (a line or a default that is not
 * removed; the avatar's photos[type eq "photo"].value when an avatar is
 * compiled), in the table's order. *out points into m (valid until
 * mapping_free); returns their number. The leaves a record of m can hold
 * are exactly these (record.h scope).
 */
size_t mapping_targets(const struct mapping *m, const struct mapping_target **out);

/* mapping_kind_of - the kind m was compiled for. */
enum object_kind mapping_kind_of(const struct mapping *m);

/*
 * mapping_apply - map one entry.
 *
 * Fills *out (which it first zeroes; out must not hold a previous result):
 * either a resource, or skipped with skip_message (a required attribute is
 * missing, or the record exceeds MAPPING_RECORD_MAX). Invalid values are
 * dropped and listed in out->issues; the rest of the entry is mapped. So are
 * an SMTP: address of proxyAddresses that is not mail and an alias outside
 * the accepted domains (each naming the DN, the alias by its address).
 * Returns DIRCONN_OK (also when skipped) or DIRCONN_ENOMEM (out is then
 * cleared). m and e are only read.
 */
enum dirconn_err mapping_apply(const struct mapping *m, const struct ldap_entry *e,
                               struct mapping_result *out);

/*
 * mapping_canonical - resource as canonical JSON: json_dumps with
 * JSON_SORT_KEYS | JSON_COMPACT. *split receives the byte offset of the
 * place where top-level keys starting with MAPPING_LINK_PREFIX would sort:
 * after the opening brace and the members whose keys sort before the prefix.
 * A later stage splices its own keys in there, built with jansson too, and
 * gets exactly the dump of the merged object without parsing the text again.
 * Returns a malloc'd string, or NULL when out of memory.
 */
char *mapping_canonical(const json_t *resource, size_t *split);

/* mapping_result_clear - free what a result owns and zero it. r may be NULL. */
void mapping_result_clear(struct mapping_result *r);

/* mapping_free - free a mapping. m may be NULL. */
void mapping_free(struct mapping *m);

#endif
