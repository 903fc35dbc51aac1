/*
 * sync_read.h - the directory read of a run (sync.c): search, map, give to
 * the plan.
 *
 * Each search of the selection (select.h) is read page by page
 * (ldap_source.h); every entry of the search's kind with a stable identifier
 * is mapped (mapping.h), restricted to what the provider declares
 * (provider_restrict), and given to the plan (plan_add_dir_raw). A full run
 * gives an entry whose raw hash the state recorded with its acknowledged
 * record to the plan unmapped (plan_add_dir_same; docs/architecture.md, "Raw
 * hashes").
 *
 * Every function takes the run's context (sync_ctx.h) borrowed, records its
 * error in c->err and returns its code: DIRCONN_OK, the directory's errors
 * (ldap_source.h), the mapping's, DIRCONN_ESTATE (the plan's tables),
 * DIRCONN_ENOMEM.
 */
#ifndef DIRCONN_SYNC_READ_H
#define DIRCONN_SYNC_READ_H

#include "connector/sync_ctx.h"

struct ldap_entry;
struct select_plan;

/*
 * sync_read_search_attrs - the attributes a search of m's kind reads: the
 * mapping's, plus uSNChanged, objectClass, userAccountControl and
 * msDS-UserAccountDisabled (classification, the raw hash). Returns a
 * malloc'd NULL-terminated array of borrowed strings (free the array only),
 * or NULL when memory ran out.
 */
const char **sync_read_search_attrs(struct mapping *m);

/*
 * sync_read_fingerprint - hex (64 characters and a NUL) is the SHA-256 of
 * everything a mapped record depends on besides its entry that the run knows
 * before reading: the configuration (config_fingerprint), the program
 * version, partition (the naming context, may be NULL), the directory kind,
 * the kinds synchronised and what the provider takes of each mapping. ""
 * when OpenSSL fails (then no raw hash is used).
 */
void sync_read_fingerprint(struct sync_ctx *c, const char *partition, char hex[65]);

/*
 * sync_read_add_entry - map entry (borrowed) of kind and give it to c->plan
 * with its warnings (logged, on_problem), or unmapped when c->raw_skip and
 * its raw hash is the one recorded; then c->on_added, when set. The first
 * call for a plan adds the mappings the provider cannot take to its report.
 */
enum dirconn_err sync_read_add_entry(struct sync_ctx *c, enum object_kind kind,
                                     struct ldap_entry *entry);

/* Entries read between two looks at the inventory's pages (a page is SYNC_INVENTORY_PAGE). */
#define SYNC_READ_INVENTORY_STEP 32

/*
 * sync_read_directory - read every search of sel whose kind is in the bit set
 * kinds (1u << enum object_kind) and give each entry to the plan
 * (sync_read_add_entry); computers and entries without an identifier are
 * passed over. *read counts the entries given (it is not reset). Every
 * SYNC_READ_INVENTORY_STEP entries, a full inventory being listed
 * (c->inventory) gets the pages answered meanwhile (sync_cloud_inventory_step,
 * without waiting).
 */
enum dirconn_err sync_read_directory(struct sync_ctx *c, const struct select_plan *sel,
                                     unsigned kinds, long *read);

#endif
