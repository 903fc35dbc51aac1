/*
 * select.h - object selection: which directory objects are in scope.
 *
 * Builds, for users, groups and contacts, the searches (base DNs and LDAP
 * filters) the source runs, and classifies each entry it returns. Defaults
 * follow the Cisco Directory Connector guide ("Select the Connector Object"):
 * all users that are not computers, all groups that are not critical system
 * objects, and all contacts, over the whole naming context. Configured base
 * DNs narrow the search; a configured filter is ANDed with the default one.
 *
 * enabled_only keeps users enabled in the directory: userAccountControl bit
 * 0x2 clear on AD DS (LDAP_MATCHING_RULE_BIT_AND, MS-ADTS 3.1.1.3.4.4.1),
 * msDS-UserAccountDisabled not TRUE on AD LDS and other servers.
 *
 * security_groups (Rackspace Directory Sync's scoping): when set, only direct
 * members of those groups are in scope, through the memberOf back-link
 * (MS-ADTS 3.1.1.4.5.6; slapd's memberof overlay). A group nested in one is
 * not expanded into its members.
 */
#ifndef DIRCONN_SELECT_H
#define DIRCONN_SELECT_H

#include "connector/core/object_kind.h"
#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/ldap_entry.h"
#include "connector/ldap_source.h"

#include <stdbool.h>

/* One search of the selection: a base DN and a complete filter. */
struct select_search {
    enum object_kind kind;
    char *base;
    char *filter;
};

/* The searches for all enabled kinds, in the order users, groups, contacts. */
struct select_plan {
    struct select_search *searches;
    size_t n;
};

/*
 * select_build - the searches for cfg on a server of the given kind.
 *
 * naming_context is the synchronised naming context (ldap_source_base_dn);
 * it is the base when a kind has no base_dns. Configured base DNs that lie
 * inside another configured base DN of the same kind are dropped (their
 * objects are found once). Security group DNs are escaped with
 * ldap_bv2escaped_filter_value. On success *out is filled and must be freed
 * with select_plan_free. Errors: DIRCONN_ECONFIG (a base DN outside the
 * naming context, naming the key), DIRCONN_ENOMEM.
 */
enum dirconn_err select_build(const struct config *cfg, enum ldap_server_kind server,
                              const char *naming_context, struct select_plan *out,
                              struct dirconn_error *err);

/* select_plan_free - free the searches. plan may be NULL. */
void select_plan_free(struct select_plan *plan);

/*
 * select_classify - the kind of an entry by its object classes, or
 * OBJECT_KINDS when it is none of them (computers are never users).
 */
enum object_kind select_classify(const struct ldap_entry *entry);

/*
 * select_entry_enabled - whether a user entry is enabled in the directory:
 * userAccountControl without bit 0x2 (ACCOUNTDISABLE), or
 * msDS-UserAccountDisabled not TRUE. Entries with neither are enabled.
 */
bool select_entry_enabled(const struct ldap_entry *entry);

/*
 * select_dn_within - whether dn equals base or lies below it, comparing
 * RDNs case-insensitively after parsing both with ldap_str2dn.
 */
bool select_dn_within(const char *dn, const char *base);

#endif
