/*
 * object_kind.h - the kinds of directory object the connector provisions.
 *
 * One enum for every stage: the selection (select.h), the mapping (mapping.h), the provider's
 * resource types (provider.h), the plan (plan.h), apply and the state (state.h, whose `kind`
 * columns store these values and are bound as SQL parameters, never written as literals).
 * The values are stored in the state database: never renumber them.
 */
#ifndef DIRCONN_CORE_OBJECT_KIND_H
#define DIRCONN_CORE_OBJECT_KIND_H

enum object_kind {
    OBJECT_USER = 0,    /* AD user / inetOrgPerson -> SCIM User (RFC 7643 4.1) */
    OBJECT_GROUP = 1,   /* AD group / groupOfNames -> SCIM Group (RFC 7643 4.2) */
    OBJECT_CONTACT = 2, /* AD contact -> the provider's contact resource type */
    OBJECT_KINDS = 3    /* the number of kinds; also "none" where a function classifies */
};

/*
 * object_kind_name - "user", "group" or "contact"; "?" for any other value.
 * Returns a static string (never NULL, never freed).
 */
const char *object_kind_name(enum object_kind kind);

#endif
