/*
 * record.h - the canonical record: its hash, its leaves, and the difference
 * between two records as SCIM PATCH operations (RFC 7644 3.5.2).
 *
 * A record is a SCIM resource as the map stage builds it (RFC 7643 4.1 User
 * with the enterprise extension 4.3, 4.2 Group, dirconn's Contact): simple
 * attributes ("title"), complex ones ("name" with sub-attributes),
 * multi-valued complex attributes whose values are told apart by "type"
 * (emails, phoneNumbers, addresses, photos: one value per type, except the
 * several values of type "other" of emails and phoneNumbers, told apart by
 * their "value"), and
 * the enterprise extension object keyed by its schema URN. "members" (groups)
 * is handled by the caller as add/remove of values; "schemas", "id", "meta",
 * "groups" and keys starting with "dirconn:" are never leaves.
 *
 * A leaf is one value the connector manages, named by its RFC 7644 3.10
 * attribute path: "title", "name.givenName", "emails[type eq \"work\"].value",
 * "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
 * "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value".
 * Names compare case-insensitively (RFC 7643 2.1), values with json_equal.
 *
 * A scope is the set of leaves a mapping can produce. Comparing our record
 * with the cloud's copy of a resource (drift, a 412, an object recorded
 * without its record) is limited to the scope, so that values of attributes
 * dirconn does not map are left alone.
 *
 * Functions here are pure: no I/O, no global state. json_t arguments are
 * borrowed unless said otherwise.
 */
#ifndef DIRCONN_RECORD_H
#define DIRCONN_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* SHA-256 as lower-case hex, plus NUL. */
#define RECORD_HASH_LEN 65

/* One leaf path of a scope: attribute (URN-qualified inside an extension), value type,
 * sub-attribute. */
struct record_path {
    const char *attr; /* "title", "name", "phoneNumbers", "urn:...:User:department", "members" */
    const char *type; /* the "type" of a multi-valued value, or NULL */
    const char *sub;  /* the sub-attribute, or NULL */
};

/* A set of leaf paths (borrowed strings). */
struct record_scope {
    const struct record_path *paths;
    size_t n;
};

/* How record_patch_ops writes the operations that set a value. */
struct record_patch_rules {
    /*
     * Set simple and complex sub-attribute values with "add" instead of
     * "replace". RFC 7644 3.5.2.1: an add on a single-valued attribute
     * replaces its value; some providers take no replace on groups.
     */
    bool set_with_add;
    /* Attributes the provider declares immutable (RFC 7643 7): never in a PATCH. NULL-terminated,
     * URN-qualified for extension attributes, or NULL. */
    const char *const *immutable;
};

/*
 * record_hash - the hex SHA-256 (OpenSSL EVP) of a record's canonical text
 * (json_dumps with JSON_SORT_KEYS | JSON_COMPACT), into hex[RECORD_HASH_LEN].
 */
void record_hash(const char *canonical, char hex[RECORD_HASH_LEN]);

/*
 * record_scope_has - whether the leaf (attr, type, sub) is in scope
 * (case-insensitive; a scope path without sub covers every sub-attribute of
 * its attribute and type). A NULL scope holds every leaf.
 */
bool record_scope_has(const struct record_scope *scope, const char *attr, const char *type,
                      const char *sub);

/*
 * record_patch_ops - the PATCH operations (a new JSON array, owned by the
 * caller; empty when nothing differs) that turn the resource `was` into
 * `now` for the leaves in scope (NULL: every leaf of either). Both are
 * resolved resources (manager and member ids are cloud ids); either may be
 * NULL (no values). members are not compared (see record_member_sets).
 *
 * Operations, in this order (RFC 7644 3.5.2):
 *  - "remove" of each cleared value at its path: "title", "name.givenName",
 *    "urn:...:User:department", "urn:...:User:manager",
 *    "phoneNumbers[type eq \"work\"]" (the whole value when `now` has no
 *    value of that type and `was`'s value holds nothing out of scope), or
 *    "addresses[type eq \"work\"].locality";
 *  - "replace" (or "add", rules->set_with_add) of each new or changed simple
 *    or complex sub-attribute value at its path; a changed value of an
 *    extension's complex attribute (manager) is replaced as a whole:
 *    path "urn:...:User:manager", value {"value": "<id>"};
 *  - "replace" of changed sub-attributes of an existing typed value:
 *    "phoneNumbers[type eq \"work\"].value";
 *  - "add" of each new typed value at the attribute: path "phoneNumbers",
 *    value [{"type": "work", "value": "..."}].
 * When either side holds several values of one type (emails of type "other"
 * from proxyAddresses), the type does not name one of them: each value
 * `now` lacks is removed at emails[type eq "other" and value eq "..."]
 * (RFC 7644 3.5.2.2 valuePath), each new one added at "emails" as above,
 * and a value whose other sub-attributes changed is removed and added.
 * Filter values are written as JSON strings (RFC 7644 3.4.2.2). Returns NULL
 * when out of memory.
 */
json_t *record_patch_ops(const json_t *was, const json_t *now, const struct record_scope *scope,
                         const struct record_patch_rules *rules);

/*
 * record_member_ids - the "value"s of a resource's members (a new sorted
 * JSON array of strings, duplicates removed). NULL when out of memory.
 */
json_t *record_member_ids(const json_t *resource);

/*
 * record_projection_hash - a digest of the leaves of resource in scope (and,
 * with members, of its member ids), independent of attribute order, of the
 * order of typed values and of the spelling case of attribute names. Equal
 * hashes of our record and of the cloud's copy mean the cloud holds exactly
 * the values the connector manages. Into hex[RECORD_HASH_LEN]; returns false
 * when out of memory.
 */
bool record_projection_hash(const json_t *resource, const struct record_scope *scope, bool members,
                            char hex[RECORD_HASH_LEN]);

/*
 * record_overlay - the body of a PUT (RFC 7644 3.5.1) that gives the cloud's
 * resource `cloud` the values of `now` for the leaves in scope and keeps
 * every value outside it: a new object owned by the caller, without "id",
 * "meta" and "groups" (read-only), with "schemas" from `now` plus the
 * extension URNs still present, and with now's members when members is
 * true. NULL when out of memory.
 */
json_t *record_overlay(const json_t *cloud, const json_t *now, const struct record_scope *scope,
                       bool members);

/*
 * record_filter_string - a SCIM filter comparison value (RFC 7644 3.4.2.2: a
 * JSON string, RFC 8259 7) for s, quotes included, '"' and '\' escaped.
 * A malloc'd string, or NULL when out of memory.
 */
char *record_filter_string(const char *s);

#endif
