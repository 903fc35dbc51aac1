/*
 * plan.h - the sync plan: what a sync would add, update, delete and match.
 *
 * The plan is a value. It is computed from three inputs, each loaded into a
 * temporary table of the state database so that neither the directory nor
 * the cloud has to fit in memory:
 *   - the cloud inventory (plan_add_cloud): every user, group and contact the
 *     cloud holds, with its id, userName/displayName, externalId, whether it
 *     is an administrator (roles contains "admin") and its ETag;
 *   - the directory objects in scope (plan_add_dir): the mapped SCIM record,
 *     the manager's DN, the member DNs, or why the object is skipped;
 *   - the connector's state: which directory object is which cloud object.
 * plan_compute() classifies each object (RFC 7643 externalId is the key; a
 * cloud user with the same userName, compared case-insensitively, is
 * adopted; an email on two directory objects is a naming conflict and
 * neither is sent), resolves manager and member DNs to the externalIds of
 * objects in scope, and lists the deletions: objects the connector created
 * or adopted that left the scope. Cloud administrators are never deleted;
 * they are listed as protected (the Cisco guide's "would have been deleted,
 * but were not"). Dry run prints the plan; apply executes it.
 */
#ifndef DIRCONN_PLAN_H
#define DIRCONN_PLAN_H

#include "connector/core/object_kind.h"
#include "connector/core/error.h"
#include "connector/state.h"

#include <jansson.h>
#include <stdbool.h>

/* enum plan_op, the op column of the plan's temporary tables, is in state.h with their schema. */

/* Private keys of a planned record, resolved and removed before sending (MAPPING_LINK_PREFIX). */
#define PLAN_KEY_MANAGER "dirconn:manager" /* externalId of the manager */
#define PLAN_KEY_MEMBERS "dirconn:members" /* externalIds of the members, sorted */

struct plan_item {
    enum plan_op op;
    enum object_kind kind;
    const char *external_id;
    const char *cloud_id; /* NULL for PLAN_ADD */
    const char *dn;
    const char *name;         /* userName or displayName */
    const char *record;       /* the planned record (canonical JSON); NULL for deletions and
                                 matches (a match's record is the state's, hash the same),
                                 except a match plan_mark_verified made: the state has none */
    const char *old_record;   /* the record last acknowledged, or NULL (always for matches) */
    const char *hash;         /* hex SHA-256 of record */
    const char *version;      /* the cloud's ETag, or NULL */
    const char *changed;      /* PLAN_UPDATE: comma-separated changed attributes */
    const char *message;      /* PLAN_SKIP, PLAN_CONFLICT: the reason */
    enum state_origin origin; /* how the connector holds it after this sync */
    int depth;                /* users: depth in the management chain (managers first) */
    bool drift;               /* PLAN_UPDATE: the cloud's copy differs from what was last
                                 written (plan_mark_drift); the update is diffed against it */
};

struct plan_summary {
    long count[PLAN_OP_MAX];            /* items per operation */
    long deleted_by_kind[OBJECT_KINDS]; /* PLAN_DELETE per kind */
    long skipped_by_kind[OBJECT_KINDS]; /* PLAN_SKIP and PLAN_CONFLICT per kind */
    long warnings;                      /* attribute warnings (objects still sent) */
    long deletes;                       /* PLAN_DELETE over all kinds */
    long drift;                         /* matches turned into updates by plan_mark_drift */
    long raw_same[OBJECT_KINDS];        /* matches given by plan_add_dir_same whose record was
                                            not built: skipped by raw hash */
};

struct plan;

/*
 * plan_new - create the plan's temporary tables in st's database (dropping
 * those of an earlier plan). st is borrowed. Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err plan_new(struct state *st, struct plan **out, struct dirconn_error *err);

/* plan_free - drop the temporary tables and free. p may be NULL. */
void plan_free(struct plan *p);

/*
 * plan_discard - free p (may be NULL) and leave its temporary tables, for a
 * caller that closes the state next (state_close): closing the connection
 * discards its temporary database whole, where dropping the tables frees
 * their pages one by one (at 100,000 objects, 0.5 s of reading and writing
 * a 200 MB temporary file). Until then the tables stay; the next plan_new on
 * the same state drops them.
 */
void plan_discard(struct plan *p);

/*
 * plan_add_cloud - one object of the cloud inventory. name is the userName
 * (users) or displayName; external_id and version may be NULL.
 */
enum dirconn_err plan_add_cloud(struct plan *p, enum object_kind kind, const char *id,
                                const char *name, const char *external_id, bool is_admin,
                                const char *version, struct dirconn_error *err);

/*
 * plan_add_dir - one directory object in scope. resource is the mapped SCIM
 * record (not taken; NULL when skip_message is set); name is its userName
 * (users) or email (contacts, for conflicts) or displayName (groups);
 * manager_dn and member_dns (n_members) may be empty. An external id seen
 * twice (overlapping base DNs) is kept once.
 */
enum dirconn_err plan_add_dir(struct plan *p, enum object_kind kind, const char *external_id,
                              const char *dn, const char *name, const json_t *resource,
                              const char *manager_dn, char *const *member_dns, size_t n_members,
                              const char *skip_message, struct dirconn_error *err);

/*
 * plan_add_dir_text - plan_add_dir with the resource given as the canonical
 * text and split of mapping_canonical (text NULL when skip_message is set),
 * so that the record is not serialised again; the two are equivalent.
 */
enum dirconn_err plan_add_dir_text(struct plan *p, enum object_kind kind, const char *external_id,
                                   const char *dn, const char *name, const char *text, size_t split,
                                   const char *manager_dn, char *const *member_dns,
                                   size_t n_members, const char *skip_message,
                                   struct dirconn_error *err);

/*
 * plan_add_dir_raw - plan_add_dir_text with the raw hash of the entry
 * (ldap_entry_raw_hash, or NULL) the record was mapped from: plan_save_raw
 * records it with the record once acknowledged.
 */
enum dirconn_err plan_add_dir_raw(struct plan *p, enum object_kind kind, const char *external_id,
                                  const char *dn, const char *name, const char *text, size_t split,
                                  const char *manager_dn, char *const *member_dns, size_t n_members,
                                  const char *skip_message, const char *raw,
                                  struct dirconn_error *err);

/*
 * plan_add_dir_same - a directory object whose entry has the raw hash raw
 * that the state records for its acknowledged record (state_object_raw_get),
 * given without mapping it: name and manager_dn as the state recorded them,
 * member_dns the entry's member values; the links recorded with the raw hash
 * are read from the state by plan_compute, which resolves its
 * manager and members as for any object; when they give links, the object
 * is planned with the acknowledged record and hash (a match when the cloud
 * copy is there: counted in the summary's raw_same, its record never
 * built); otherwise with the acknowledged record relinked. It takes part in
 * naming conflicts, deletions (it is present) and the management depth like
 * any object. Errors: DIRCONN_EUSAGE (raw NULL), DIRCONN_ESTATE.
 */
enum dirconn_err plan_add_dir_same(struct plan *p, enum object_kind kind, const char *external_id,
                                   const char *dn, const char *name, const char *manager_dn,
                                   char *const *member_dns, size_t n_members, const char *raw,
                                   struct dirconn_error *err);

/*
 * plan_save_raw - record in the state (state.h, raw_hash) the raw hashes of
 * this plan's objects whose state now holds the record the plan built from
 * that entry (same hash, name and DN), with the manager DN and links of that
 * record; other objects keep what they had (their raw_for then voids it if
 * their record changed). Call outside a transaction, once the run's results
 * are committed: it commits in chunks (state_plan_save_raw, state.c).
 * Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_save_raw(struct plan *p, struct dirconn_error *err);

/*
 * plan_set_partial - make this an incremental plan: only the objects given
 * to plan_add_dir are classified; the state's other objects are unchanged,
 * and deletions are only those named by plan_add_gone. Manager and member
 * DNs that are not among this run's objects are resolved through the
 * state's objects (by DN, case-insensitively), except objects being deleted.
 * Call before adding objects.
 */
void plan_set_partial(struct plan *p);

/*
 * plan_set_resolver - partial plans: a manager or member DN that resolves
 * neither among this run's objects nor through the state by DN is given to
 * resolve (the sync layer reads it from the directory; plan.c holds no LDAP
 * handle), which returns the externalId of the in-scope object of that DN
 * (malloc'd; the caller of the plan records the DN on that object's row, so
 * the state resolves it by DN afterwards) or NULL (not in scope, not found,
 * not in the object map). resolve must cache its answers for the run: it is
 * asked again for the same DN. NULL resolve: none (the default).
 */
void plan_set_resolver(struct plan *p, char *(*resolve)(void *arg, const char *dn), void *arg);

/*
 * plan_resolve_links - partial plans: resolve every manager and member DN
 * of the directory objects given so far (as plan_compute will), so that the
 * resolver (plan_set_resolver) meets each DN that misses before the plan is
 * computed, inside the caller's transaction (the DNs it records are then
 * part of it). Nothing is planned. Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err plan_resolve_links(struct plan *p, struct dirconn_error *err);

/*
 * plan_add_gone - (partial plans) an object that was deleted in the
 * directory or left the scope. An id the state does not know is ignored.
 * Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_add_gone(struct plan *p, const char *external_id, struct dirconn_error *err);

/* plan_add_warning - an attribute warning for an object that is still sent. */
enum dirconn_err plan_add_warning(struct plan *p, const char *dn, const char *message,
                                  struct dirconn_error *err);

/*
 * plan_compute - classify every object (see above). kinds_enabled is a bit
 * mask of (1 << enum object_kind): objects of disabled kinds are neither
 * deleted nor otherwise touched. Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err plan_compute(struct plan *p, unsigned kinds_enabled, struct dirconn_error *err);

/*
 * plan_save_names - record the names (userName, contact email) of this
 * plan's directory objects in the state's names table: all of them for a
 * full plan, the changed and gone ones for a partial plan. Partial plans
 * detect naming conflicts with the objects they did not read through it.
 * Also the objects in scope it did not send (skipped, in a naming conflict)
 * by DN, which partial plans then resolve without the directory.
 * Call once the run's results are saved (inside the caller's transaction).
 * Errors: DIRCONN_ESTATE. The statements are state_plan_save_names and
 * state_plan_save_unsent (state.c).
 */
enum dirconn_err plan_save_names(struct plan *p, struct dirconn_error *err);

/* plan_get_summary - counts of the computed plan. */
const struct plan_summary *plan_get_summary(const struct plan *p);

/*
 * plan_foreach - call fn for each item with operation op (op < 0: all) and
 * kind (kind < 0: all), in a stable order: by management depth (managers
 * before their reports), then as planned. The item is valid during the
 * call only. A non-zero return stops the walk: err is cleared when the walk
 * starts, and the error fn recorded in err (code and message) is returned as
 * it is; DIRCONN_EFAIL ("plan walk stopped") only when fn recorded none
 * (dirconn_error_stopped). fn must not commit to the state database (its
 * checkpoint could not run while the walk reads: see plan_foreach_chunked);
 * writes to the plan's temporary tables are fine.
 */
enum dirconn_err plan_foreach(struct plan *p, int op, int kind,
                              int (*fn)(void *arg, const struct plan_item *item), void *arg,
                              struct dirconn_error *err);

/*
 * plan_foreach_chunked - plan_foreach for a fn that commits to the state
 * database (apply commits its batches from inside the walk): the items are
 * read in chunks of up to 256 (4 MiB of their strings) with the walk's
 * statement reset before fn is called for them, so that no read of the walk
 * keeps SQLite from checkpointing the WAL at each commit (the -wal file stays
 * bounded by wal_autocheckpoint and journal_size_limit, state.c); the next
 * chunk starts after the last item's key (depth, seq). Same order, item
 * lifetime (the call), stop rule and errors as plan_foreach, and
 * DIRCONN_ENOMEM. Give op and kind (>= 0) for large walks: each chunk is then
 * an index seek, else a sort of the items of op.
 */
enum dirconn_err plan_foreach_chunked(struct plan *p, int op, int kind,
                                      int (*fn)(void *arg, const struct plan_item *item), void *arg,
                                      struct dirconn_error *err);

/*
 * plan_foreach_projected - plan_foreach over the items of operation op whose
 * cloud copy has a projection hash recorded (plan_add_cloud_projected,
 * plan_set_cloud_projection): the items a drift comparison can compare. A
 * no-change full sync with ETags has none (the inventory lists versions), so
 * its matches are not walked. Same order, item lifetime, stop rule and errors
 * as plan_foreach.
 */
enum dirconn_err plan_foreach_projected(struct plan *p, int op,
                                        int (*fn)(void *arg, const struct plan_item *item),
                                        void *arg, struct dirconn_error *err);

/*
 * plan_item_get - call fn once with the add, update or match item of an
 * externalId, if the plan has one. Errors as plan_foreach.
 */
enum dirconn_err plan_item_get(struct plan *p, const char *external_id,
                               int (*fn)(void *arg, const struct plan_item *item), void *arg,
                               struct dirconn_error *err);

/*
 * plan_pending_ids - the externalIds of added or updated objects that the
 * state records without their record (written before their manager or member
 * groups existed), managers first. *ids is a new array of *n malloc'd
 * strings; the caller frees each and the array.
 */
enum dirconn_err plan_pending_ids(struct plan *p, char ***ids, size_t *n,
                                  struct dirconn_error *err);

/* Which members plan_resolve puts in "members". */
#define PLAN_MEMBERS_NONE (-2) /* none */
#define PLAN_MEMBERS_ALL  (-1) /* all that have a cloud id */
/* or an enum object_kind: only the members of that kind (OBJECT_GROUP: the nested groups) */

/*
 * plan_resolve - the record to send: a copy of item->record without the
 * private keys, with the enterprise manager set to the manager's cloud id
 * (looked up in the state) and, for groups, "members" set to the cloud ids
 * of the members selected by members_of_kind (PLAN_MEMBERS_NONE,
 * PLAN_MEMBERS_ALL or an enum object_kind). Members or managers without a cloud id yet
 * are left out and counted in *unresolved (may be NULL). Returns a new
 * reference or NULL on error.
 */
json_t *plan_resolve(struct plan *p, const struct plan_item *item, int members_of_kind,
                     long *unresolved);

/*
 * The cloud ids of a group's members, packed (plan_member_ids): v[0..n-1]
 * point into buf, in the order of the record's member list. A group of
 * 200,000 members takes about 9 MB here, against about 25 MB as the JSON
 * objects of a "members" array. Freed with plan_ids_free.
 */
struct plan_ids {
    const char **v;
    size_t n;
    char *buf;
};

/*
 * plan_resolve_ids - plan_resolve with PLAN_MEMBERS_ALL, but the members'
 * cloud ids go to *members (owned by the caller, plan_ids_free; cleared
 * first) and "members" is an empty array (absent when the record has no
 * member list): the caller builds the values it sends, without a JSON object per
 * member held for the whole list. Returns a new reference or NULL on error.
 */
json_t *plan_resolve_ids(struct plan *p, const struct plan_item *item, struct plan_ids *members,
                         long *unresolved);

/*
 * plan_member_ids - the cloud ids of item's members selected by
 * members_of_kind (PLAN_MEMBERS_ALL or an enum object_kind), as
 * plan_resolve puts them in "members", into *out (owned by the caller,
 * freed with plan_ids_free; cleared first). Members without a cloud id
 * are left out and counted in *unresolved (may be NULL). Returns false
 * when the record cannot be read or memory runs out (*out then empty).
 */
bool plan_member_ids(struct plan *p, const struct plan_item *item, int members_of_kind,
                     struct plan_ids *out, long *unresolved);

/* plan_ids_free - free what *ids holds and empty it (NULL ids is a no-op). */
void plan_ids_free(struct plan_ids *ids);

/*
 * plan_member_changes - for a group item, the cloud ids to add and to remove
 * (new JSON arrays, owned by the caller), comparing the planned members with
 * those of the last acknowledged record. Members without a cloud id are left
 * out.
 */
enum dirconn_err plan_member_changes(struct plan *p, const struct plan_item *item, json_t **add,
                                     json_t **remove, struct dirconn_error *err);

/*
 * plan_write_report - write every item by category, the summary and the
 * warnings to path: JSON when it ends in ".json", CSV (RFC 4180) when it ends
 * in ".csv"; written to a temporary file and renamed into place. Errors:
 * DIRCONN_EUSAGE (another extension), DIRCONN_EIO.
 */
enum dirconn_err plan_write_report(struct plan *p, const char *path, bool threshold_exceeded,
                                   struct dirconn_error *err);

/* plan_op_name - "add", "update", "match", "delete", "protected", "skip", "conflict", "forget". */
const char *plan_op_name(enum plan_op op);

/*
 * plan_add_cloud_projected - plan_add_cloud with the projection hash
 * (record.h record_projection_hash over the mapping's scope) of that cloud
 * resource, or NULL, recorded in the same row: the inventory's rows go in
 * before the plan's indexes are built (plan_compute), so a later update of a
 * row would scan the whole table. Strings are copied. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_add_cloud_projected(struct plan *p, enum object_kind kind, const char *id,
                                          const char *name, const char *external_id, bool is_admin,
                                          const char *version, const char *projection,
                                          struct dirconn_error *err);

/* plan_cloud_projection - that hash (malloc'd), or NULL when none was recorded. */
char *plan_cloud_projection(struct plan *p, enum object_kind kind, const char *id);

/*
 * plan_projection_count - after plan_compute: *needed, the number of objects
 * of kind whose cloud copy must be compared by value in a full sync because
 * its version cannot vouch for it: matches whose version in the inventory
 * is NULL or not the one the state holds (state.h, version), and updates
 * without an acknowledged record (old_record NULL, origin created, not
 * drift: the ones a caller compares before writing). *total: the objects of
 * kind in the inventory. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_projection_count(struct plan *p, enum object_kind kind, long *needed,
                                       long *total, struct dirconn_error *err);

/*
 * plan_projection_ids - the cloud ids of at most max of those objects, in a
 * new array *ids of *n malloc'd strings (the caller frees both). big: -1 all
 * of them, 1 only the big groups, 0 only the others (state.h,
 * STATE_PROJECTION_BIG: by the length of the member DNs read). Errors:
 * DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err plan_projection_ids(struct plan *p, enum object_kind kind, size_t max, int big,
                                     char ***ids, size_t *n, struct dirconn_error *err);

/*
 * plan_set_cloud_projection - after plan_compute: record the projection
 * hash of the cloud copy id read whole, and its version (NULL keeps the
 * inventory's), in its inventory row; an id not in the inventory is
 * ignored. Strings are copied. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_set_cloud_projection(struct plan *p, enum object_kind kind, const char *id,
                                           const char *version, const char *projection,
                                           struct dirconn_error *err);

/*
 * plan_note_same - the object external_id (cloud copy cloud_id of kind) was
 * compared by value with its cloud copy and found equal: plan_save_verified
 * records the version of that copy in the state, so that the next full sync
 * need not read it whole while that version holds. Nothing when the
 * inventory has no version for it. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_note_same(struct plan *p, enum object_kind kind, const char *external_id,
                                const char *cloud_id, struct dirconn_error *err);

/*
 * plan_mark_drift - turn the PLAN_MATCH item of external_id into a
 * PLAN_UPDATE with drift set and record (the state's acknowledged record,
 * copied) as its planned record: the cloud holds other values than the ones
 * dirconn last wrote (someone edited it there), and the next write puts the
 * directory's values back. Counted in the summary's drift. No item: nothing.
 * Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_mark_drift(struct plan *p, const char *external_id, const char *record,
                                 struct dirconn_error *err);

/*
 * plan_adopt_cloud - rebuild the object map from the cloud inventory (the
 * group owns what any member created): every cloud object of an enabled
 * kind whose externalId the state does not know is recorded in the state as
 * created by the connector (externalId -> cloud id, kind, name; DN from the
 * directory object with that externalId, else empty; no record), when
 *   - a directory object of its kind with that externalId is in this plan, or
 *   - is_ours(arg, kind, external_id) says the externalId has the form this
 *     directory's ids have (objectGUID / entryUUID).
 * Partial plans adopt only the objects given to plan_add_dir or plan_add_gone.
 * Objects the cloud holds twice with one externalId: the first by cloud id.
 * Call after the inventory and the directory objects were added, before
 * plan_compute, inside the caller's transaction. The adopted objects are
 * then matched, updated or (out of scope) deleted like any other the state
 * holds, under the delete threshold and the admin guard; cloud objects with
 * another externalId, or none, are untouched. *adopted (may be NULL): how
 * many. Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err plan_adopt_cloud(struct plan *p, unsigned kinds_enabled,
                                  bool (*is_ours)(void *arg, enum object_kind kind,
                                                  const char *external_id),
                                  void *arg, long *adopted, struct dirconn_error *err);

/*
 * plan_mark_verified - settle the PLAN_UPDATE item of external_id that has no
 * acknowledged record (old_record NULL: adopted, or written without its
 * record) after its planned record was compared with the cloud's copy:
 * unchanged, it becomes a PLAN_MATCH that keeps its record (nothing is
 * written; plan_save_verified records it in the state); otherwise it is
 * marked drift, so that it is diffed against a fresh read of the cloud copy
 * instead of being sent whole (not counted in the summary's drift). No such
 * item: nothing. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err plan_mark_verified(struct plan *p, const char *external_id, bool unchanged,
                                    struct dirconn_error *err);

/*
 * plan_save_verified - record in the state the records (and hashes, DNs) of
 * the matches plan_mark_verified made: the cloud holds them already; and the
 * versions plan_note_same noted. Call
 * inside the caller's transaction once the run's results are saved.
 * Errors: DIRCONN_ESTATE. The statements are state_plan_save_verified (state.c).
 */
enum dirconn_err plan_save_verified(struct plan *p, struct dirconn_error *err);

#endif
