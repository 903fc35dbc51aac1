/*
 * state.h - the connector's local state in SQLite: which directory object is
 * which cloud object, what was last sent, watermarks and sync history.
 *
 * The database is DIR/state.db ([connector] state_dir, created mode 0700, the
 * file mode 0600) in WAL mode with synchronous=FULL: a transaction that
 * state_commit() returned from survives a crash or power loss. The schema is
 * versioned with PRAGMA user_version; state_open() applies the missing
 * migrations in order, each in its own transaction, and refuses a database
 * newer than the code.
 *
 * Objects are keyed by the directory's stable identifier (objectGUID as a
 * GUID string, or entryUUID), which is also the SCIM externalId (RFC 7643
 * 3.1). A watermark (DirSync cookie, highest uSNChanged, RFC 4533 cookie) is
 * stored per naming context and is written only by the caller that knows the
 * changes it covers were acknowledged by the cloud.
 *
 * One struct state is used by one thread at a time.
 */
#ifndef DIRCONN_STATE_H
#define DIRCONN_STATE_H

#include "connector/core/error.h"
#include "connector/core/object_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

/* Current schema version (PRAGMA user_version). */
#define STATE_SCHEMA_VERSION 8

/* How the connector came to manage a cloud object. Only these may ever be deleted by it. */
enum state_origin { STATE_ORIGIN_CREATED = 0, STATE_ORIGIN_ADOPTED = 1 };

struct state_object {
    char *external_id; /* objectGUID / entryUUID string; the key */
    int kind;          /* enum object_kind */
    char *dn;          /* DN at the last sync */
    char *cloud_id;    /* SCIM id in the cloud */
    char *name;        /* userName (users), displayName (groups, contacts) */
    char *hash;        /* hex SHA-256 of the record last acknowledged by the cloud, or NULL */
    char *record;      /* that record (canonical JSON), or NULL; for update diffs */
    enum state_origin origin;
    int64_t synced_at; /* Unix seconds of the last acknowledged write */
    /*
     * The cloud's version (ETag, RFC 7644 3.14: meta.version, else the ETag
     * header) of the copy that holds record: the answer to the write that
     * made it, or the copy a full sync read and found equal; NULL when not
     * known. A full sync compares values only of the objects whose version in
     * the inventory differs (a drift check at the cost of a selected list).
     */
    char *version;
};

/*
 * What the state holds about the directory entry an object's record was
 * mapped from (schema 7), for a full sync to skip mapping an entry that did
 * not change (sync_read.c, sync_read_add_entry). Columns of objects:
 *   raw_hash    ldap_entry_raw_hash of the entry, with the fingerprint of the
 *               configuration and the provider it was mapped under;
 *   raw_for     the record hash (hash) that raw_hash belongs to: the raw hash
 *               holds only while the record it produced is the one recorded,
 *               so a record written by anything else (an apply that stopped
 *               before the run's results were saved, a failure, a drift
 *               repair of another record) makes the raw hash void;
 *   raw_manager the manager DN the mapping gave (users), or NULL;
 *   raw_links   the record's private link keys (plan.h PLAN_KEY_MANAGER and
 *               PLAN_KEY_MEMBERS) as the compact sorted JSON object the plan
 *               spliced in ("{}" without links).
 * Written by plan_save_raw (plan.h) with the run's results. A state of
 * schema 6 is migrated in place with these columns NULL: its next full sync
 * maps every entry and records them. Downgrade: a dirconn that knows only
 * schema 6 refuses a schema 7 state ("newer than this dirconn supports");
 * resetting PRAGMA user_version to 6 by hand is safe, as the older code never
 * reads the four columns, and the values it leaves behind are voided by
 * raw_for once it rewrites a record.
 */
struct state_raw {
    char *name;       /* the plan name (userName, contact email, group displayName) */
    char *manager_dn; /* raw_manager, or NULL */
};

struct state_watermark {
    char *partition;      /* naming context */
    char *method;         /* "dirsync", "usn", "syncrepl" */
    unsigned char *value; /* cookie bytes, or the USN as decimal text */
    size_t len;
    char *dc;            /* the DC the watermark belongs to (usn) */
    char *invocation_id; /* the DC's invocationId (usn) */
    char *scope_hash;    /* hash of the selection and mapping it was taken under */
};

struct state_history {
    int64_t id;             /* assigned by state_history_add */
    char *type;             /* "full", "incremental", "dry-run" */
    int64_t started, ended; /* Unix seconds */
    char *status;           /* "success", "failed", "threshold" */
    long added, updated, deleted, matched, skipped, failed;
    bool threshold_exceeded;
    bool override_used;
    char *message; /* one line, or NULL */
};

struct state;

/* Default of [connector] state_cache_size, in MiB (docs/configuration.md). */
#define STATE_CACHE_DEFAULT_MIB 16

/*
 * state_set_cache_size - the page cache size, in MiB (1 or more; anything else
 * restores STATE_CACHE_DEFAULT_MIB), of the handles state_open opens from now
 * on: [connector] state_cache_size. The programs call it with the value of the
 * configuration they load, before they open the state database. Process-wide
 * and thread-safe; open handles keep their size.
 */
void state_set_cache_size(int mib);

/* state_cache_size - the size in MiB that state_open applies now. */
int state_cache_size(void);

/*
 * state_open - open (creating if needed) dir/state.db and migrate it to
 * STATE_SCHEMA_VERSION. dir is created with mode 0700 if missing. The
 * connection's memory is bounded (SQLite pragmas, https://sqlite.org/pragma.html):
 * cache_size = -(state_cache_size() * 1024) KiB for the database and the same
 * again for the temporary tables (temp.cache_size), and temp_store = FILE, so
 * TEMP tables (the plan's) spill to a temporary file, not to memory. On success
 * *out owns the handle (state_close). Errors: DIRCONN_ESTATE (the message
 * names the file and SQLite's error), DIRCONN_EIO (the directory cannot be
 * created), DIRCONN_ENOMEM.
 */
enum dirconn_err state_open(const char *dir, struct state **out, struct dirconn_error *err);

/* state_close - close the database. st may be NULL. */
void state_close(struct state *st);

/*
 * state_db - the SQLite connection, for modules that keep their own tables
 * in the state database (the plan's temporary tables). Owned by st.
 */
struct sqlite3 *state_db(struct state *st);

/* state_path - the database file's path. Owned by st. */
const char *state_path(const struct state *st);

/*
 * state_begin / state_commit / state_rollback - a write transaction
 * (BEGIN IMMEDIATE). Writes outside a transaction commit one by one.
 */
enum dirconn_err state_begin(struct state *st, struct dirconn_error *err);
enum dirconn_err state_commit(struct state *st, struct dirconn_error *err);
void state_rollback(struct state *st);

/*
 * state_object_get - look up an object by external id. On DIRCONN_OK,
 * *found says whether it exists and, if so, *out is filled with fields the
 * caller frees with state_object_clear.
 */
enum dirconn_err state_object_get(struct state *st, const char *external_id,
                                  struct state_object *out, bool *found, struct dirconn_error *err);

/*
 * state_object_head - state_object_get without the record: out->record is
 * left NULL and *has_record says whether the state holds one (read it with
 * state_object_record when it is needed). What the plan reads of every
 * object (plan.c plan_one): most are matches, which need only the hash, and
 * a group's record can be megabytes. raw_links: NULL, or where the links
 * recorded with the raw hash go (raw_links above; malloc'd, NULL when
 * none), for an object whose raw hash held in this run. Errors:
 * DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err state_object_head(struct state *st, const char *external_id,
                                   struct state_object *out, bool *found, bool *has_record,
                                   char **raw_links, struct dirconn_error *err);

/*
 * state_object_record - the record of external_id (*record, malloc'd; NULL
 * when the state holds no record or no such object). Errors: DIRCONN_ESTATE,
 * DIRCONN_ENOMEM.
 */
enum dirconn_err state_object_record(struct state *st, const char *external_id, char **record,
                                     struct dirconn_error *err);

/*
 * state_object_cloud_id - the kind (*kind) and cloud id (*cloud_id,
 * malloc'd, NULL when it has none) of the object external_id, read without
 * its record: what resolving a member or a manager to its cloud id needs
 * (a group's record can be megabytes). *found false when the state does not
 * hold it. Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err state_object_cloud_id(struct state *st, const char *external_id, int *kind,
                                       char **cloud_id, bool *found, struct dirconn_error *err);

/*
 * state_object_raw_get - *found: the object external_id holds a record, a
 * cloud id and the raw hash raw_hash for that very record (raw_for = hash),
 * with its links (raw_links); then *out receives its name and manager DN
 * (free with state_raw_clear). The links are read by the plan
 * (state_object_head), not here: a big group's are megabytes. Errors:
 * DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err state_object_raw_get(struct state *st, const char *external_id,
                                      const char *raw_hash, struct state_raw *out, bool *found,
                                      struct dirconn_error *err);

/* state_raw_clear - free what r owns and zero it. r may be NULL. */
void state_raw_clear(struct state_raw *r);

/*
 * state_object_find_cloud_id - look up an object by its cloud id (used to
 * recognise the connector's own objects in the cloud). As state_object_get.
 */
enum dirconn_err state_object_find_cloud_id(struct state *st, const char *cloud_id,
                                            struct state_object *out, bool *found,
                                            struct dirconn_error *err);

/* state_object_put - insert or replace an object (all fields). obj is not taken. */
enum dirconn_err state_object_put(struct state *st, const struct state_object *obj,
                                  struct dirconn_error *err);

/* state_object_delete - forget an object; deleting an unknown id is not an error. */
enum dirconn_err state_object_delete(struct state *st, const char *external_id,
                                     struct dirconn_error *err);

/*
 * state_object_foreach - call fn for every object of a kind (kind < 0: all),
 * ordered by external id. The object passed is valid only during the call.
 * A non-zero return from fn stops the walk with the error fn recorded in
 * err (cleared when the walk starts; code and message kept), or
 * DIRCONN_EFAIL when it recorded none (dirconn_error_stopped). Writes to the
 * database from fn are not allowed.
 */
enum dirconn_err state_object_foreach(struct state *st, int kind,
                                      int (*fn)(const struct state_object *obj, void *arg),
                                      void *arg, struct dirconn_error *err);

/*
 * state_object_find_dn - look up an object by its DN (case-insensitive). As state_object_get.
 */
enum dirconn_err state_object_find_dn(struct state *st, const char *dn, struct state_object *out,
                                      bool *found, struct dirconn_error *err);

/*
 * state_object_has_version - whether any object has a cloud version recorded (false on an
 * error, or for a state that has none: empty, or just migrated from schema version 5).
 */
bool state_object_has_version(struct state *st);

/*
 * state_object_has_unacknowledged - whether any user or group is held without an acknowledged
 * record (a map rebuilt from the cloud inventory, an adopted object, a failed write): the
 * state alone cannot then tell which objects refer to another (true on an error).
 */
bool state_object_has_unacknowledged(struct state *st);

/*
 * state_referrers_foreach - call fn for each user or group whose acknowledged record names
 * external_id (its manager or one of its members, plan.h PLAN_KEY_MANAGER and
 * PLAN_KEY_MEMBERS): a text match on the record, so fn must check the record's keys itself.
 * The object itself is among them when its own record names it (a user who is his own
 * manager). Objects without a cloud id are left out when with_cloud_id is true. Rows come in
 * externalId order; fn gets the row's externalId, kind (enum object_kind), cloud id (may be NULL)
 * and record, valid during the call only, and returns 0 to go on or non-zero to stop (the walk then
 * returns DIRCONN_OK). fn must not write the state: the read is still open (collect, then write).
 * Errors: DIRCONN_ESTATE ("<state path>: reading the objects that refer to one: <SQLite message>
 * (SQLite N)"), with the SQLite cause.
 */
enum dirconn_err state_referrers_foreach(struct state *st, const char *external_id,
                                         bool with_cloud_id,
                                         int (*fn)(void *arg, const char *external_id, int kind,
                                                   const char *cloud_id, const char *record),
                                         void *arg, struct dirconn_error *err);

/* state_object_count - the number of objects of a kind (kind < 0: all), or -1 on error. */
long state_object_count(struct state *st, int kind);

/*
 * The object map rebuilt from the cloud inventory (HA takeover, ha/shared_state.h): another
 * instance may have created, changed or deleted objects since this state was current.
 * state_reconcile_begin starts a walk (*r zeroed; a temporary table of the externalIds seen);
 * state_reconcile_object is called for each cloud object carrying this directory's
 * externalId form (the caller decides which: sync_objmap.c is_ours), of kind (enum object_kind),
 * with its SCIM id, name (userName or displayName, may be NULL) and meta.version (may be
 * NULL: a provider without ETags); state_reconcile_end removes the rows of the kinds in the
 * bit set kinds (1u << kind) whose externalId was not listed (the cloud object is gone) and
 * ends the walk. Run the three inside one transaction (state_begin): a walk that stops is
 * rolled back whole, never left half-done.
 *
 * A row with the same externalId, kind, cloud id and version (both known and equal) is kept
 * as it is: its record is the one that copy holds. Any other (a new row, another id, another
 * or unknown version) gets the cloud id, name and version, and no acknowledged record (hash
 * and record NULL), so the next change to it is compared with the cloud's copy; its DN and
 * origin are kept when the row existed (DN "" when unknown). The first cloud object listed
 * for an externalId wins; repeats are ignored. Counts in *r: objects (distinct externalIds
 * listed), changed (rows added or reset), removed. Errors: DIRCONN_ESTATE.
 */
struct state_reconcile {
    long objects, changed, removed;
};
enum dirconn_err state_reconcile_begin(struct state *st, struct state_reconcile *r,
                                       struct dirconn_error *err);
enum dirconn_err state_reconcile_object(struct state *st, struct state_reconcile *r, int kind,
                                        const char *external_id, const char *cloud_id,
                                        const char *name, const char *version,
                                        struct dirconn_error *err);
enum dirconn_err state_reconcile_end(struct state *st, struct state_reconcile *r, unsigned kinds,
                                     struct dirconn_error *err);

/*
 * state_object_set_dn - record the DN of the object external_id (the directory named it
 * under this DN now; NULL stores ""). An unknown id is not an error. Errors: DIRCONN_ESTATE.
 */
enum dirconn_err state_object_set_dn(struct state *st, const char *external_id, const char *dn,
                                     struct dirconn_error *err);

/* state_object_clear - free the fields of an object filled by a get. obj may be NULL. */
void state_object_clear(struct state_object *obj);

/*
 * state_watermark_get - the watermark of a naming context. On DIRCONN_OK,
 * *found says whether one exists; if so *out's fields are the caller's to
 * free with state_watermark_clear.
 */
enum dirconn_err state_watermark_get(struct state *st, const char *partition,
                                     struct state_watermark *out, bool *found,
                                     struct dirconn_error *err);

/*
 * state_watermark_foreach - call fn for each stored watermark (borrowed for
 * the call), in partition order; fn returning non-zero stops the walk
 * (DIRCONN_EFAIL). Errors: DIRCONN_ESTATE.
 */
enum dirconn_err state_watermark_foreach(struct state *st,
                                         int (*fn)(void *arg, const struct state_watermark *wm),
                                         void *arg, struct dirconn_error *err);

/* state_watermark_put - store (replace) the watermark of wm->partition. */
enum dirconn_err state_watermark_put(struct state *st, const struct state_watermark *wm,
                                     struct dirconn_error *err);

/* state_watermark_delete_all - discard every watermark (forces a full sync). */
enum dirconn_err state_watermark_delete_all(struct state *st, struct dirconn_error *err);

/* state_watermark_clear - free the fields of a watermark. wm may be NULL. */
void state_watermark_clear(struct state_watermark *wm);

/* state_history_add - append a sync to the history; sets h->id. */
enum dirconn_err state_history_add(struct state *st, struct state_history *h,
                                   struct dirconn_error *err);

/*
 * state_history_list - the newest `limit` syncs, newest first, into a new
 * array *out of *n entries; free with state_history_free.
 */
enum dirconn_err state_history_list(struct state *st, size_t limit, struct state_history **out,
                                    size_t *n, struct dirconn_error *err);

/* state_history_free - free an array from state_history_list. */
void state_history_free(struct state_history *h, size_t n);

/*
 * state_setting_get / state_setting_set - small named values (e.g. the
 * one-shot delete threshold override). get stores a malloc'd copy in *value,
 * or NULL when unset; set with value NULL deletes the setting.
 */
enum dirconn_err state_setting_get(struct state *st, const char *name, char **value,
                                   struct dirconn_error *err);
enum dirconn_err state_setting_set(struct state *st, const char *name, const char *value,
                                   struct dirconn_error *err);

/*
 * state_retry_put - remember an object whose change failed (its write was
 * refused, or answered with an error) so that the next incremental sync
 * re-reads and resends it; the watermark may then move past its change.
 * dn is its DN when known (NULL keeps the one recorded); kind its enum
 * enum object_kind when known (< 0 keeps the one recorded, or none). The list is
 * also carried by the HA shared state (ha/shared_state.h). Errors: DIRCONN_ESTATE.
 */
enum dirconn_err state_retry_put(struct state *st, const char *external_id, const char *dn,
                                 int kind, const char *reason, struct dirconn_error *err);

/* state_retry_delete - the object was handled (NULL: all were); an unknown id is not an error. */
enum dirconn_err state_retry_delete(struct state *st, const char *external_id,
                                    struct dirconn_error *err);

/*
 * state_retry_foreach - call fn for every object to retry, ordered by
 * external id (dn may be NULL; kind is an enum object_kind, or -1 when not
 * known). A non-zero return stops the walk, with fn's own error as
 * state_object_foreach. fn must not write.
 */
enum dirconn_err state_retry_foreach(struct state *st,
                                     int (*fn)(void *arg, const char *external_id, const char *dn,
                                               int kind),
                                     void *arg, struct dirconn_error *err);

/* state_retry_count - the number of objects to retry, or -1 on error. */
long state_retry_count(struct state *st);

/*
 * state_names_unsent_foreach - call fn for each object of kind that the names table holds
 * (a directory object in scope at the last run, with its name) and the objects table does
 * not (no connector sent it: a naming conflict, a missing required attribute), ordered by
 * external id. fn gets the externalId and the DN (NULL when none was recorded), both valid
 * only during the call. Returns DIRCONN_OK; DIRCONN_ESTATE on a database error (the message
 * names the file and SQLite's error); a non-zero return from fn stops the walk with fn's own
 * error as state_object_foreach. fn must not write.
 */
enum dirconn_err state_names_unsent_foreach(struct state *st, enum object_kind kind,
                                            int (*fn)(void *arg, const char *external_id,
                                                      const char *dn),
                                            void *arg, struct dirconn_error *err);

/*
 * state_name_partners_foreach - call fn for each other object that had the same name
 * (case-insensitive: email, userName) as external_id in the names table when it was last
 * read: the partners of a naming conflict. Arguments, order, returns and errors as
 * state_names_unsent_foreach; an unknown external_id has no partners (DIRCONN_OK).
 */
enum dirconn_err state_name_partners_foreach(struct state *st, const char *external_id,
                                             int (*fn)(void *arg, const char *external_id,
                                                       const char *dn),
                                             void *arg, struct dirconn_error *err);

/*
 * The plan's temporary tables.
 *
 * plan.c computes a run's plan in temporary tables of this connection
 * (plan_cloud, plan_dir, plan_items, plan_raw, plan_same, plan_gone,
 * plan_warnings); their schema is kept here, with the state's, because the
 * statements that join them with the state's tables (objects, names) live
 * here too: every statement that reads or writes a state table is in
 * state.c. The state_plan_save_* functions move the state on from the plan
 * after the cloud acknowledged it (sync_save.c).
 */

/* A planned operation: the op column of plan_items (bound as :add, :update ... in SQL). */
enum plan_op {
    PLAN_ADD = 0,   /* create in the cloud */
    PLAN_UPDATE,    /* change in the cloud (PATCH of the changed attributes), or adopt */
    PLAN_MATCH,     /* in the cloud and unchanged */
    PLAN_DELETE,    /* created or adopted by the connector, gone from the scope */
    PLAN_PROTECTED, /* would be deleted, but is a cloud administrator */
    PLAN_SKIP,      /* not sent: a required attribute is missing */
    PLAN_CONFLICT,  /* not sent: its email is on another directory object too */
    PLAN_FORGET,    /* in the state but already gone from the cloud: only the state entry goes */
    PLAN_OP_MAX
};

/* The status column of plan_dir (bound as :dir_ok, :dir_skip, :dir_conflict in SQL). */
enum plan_dir_status {
    PLAN_DIR_OK = 0,   /* in scope, planned */
    PLAN_DIR_SKIP,     /* not sent: a required attribute is missing (its message says which) */
    PLAN_DIR_CONFLICT, /* not sent: a naming conflict (its message names the other objects) */
};

/*
 * state_plan_schema - drop and create the plan's temporary tables, empty.
 * Returns DIRCONN_OK, or DIRCONN_ESTATE (the message names the file and
 * SQLite's error).
 */
enum dirconn_err state_plan_schema(struct state *st, struct dirconn_error *err);

/* state_plan_drop - drop the plan's temporary tables (plan_free). Never fails. */
void state_plan_drop(struct state *st);

/*
 * state_plan_index - build the secondary indexes of the plan's temporary
 * tables once their rows are in: items false, the input tables (plan_cloud,
 * plan_dir); items true, plan_items. Maintained row by row, their random
 * keys rewrote pages all the time once the tables outgrew SQLite's cache.
 * Idempotent. Errors as state_plan_schema.
 */
enum dirconn_err state_plan_index(struct state *st, bool items, struct dirconn_error *err);

/*
 * state_plan_bind - bind the named parameters of stmt that name an object
 * kind (:user, :group, :contact; enum object_kind), a plan operation (:add,
 * :update, :match, :delete ...; enum plan_op, by plan_op_name) or a status of
 * plan_dir (:dir_ok, :dir_skip, :dir_conflict): SQL never writes them as
 * numbers. SQLite numbers a :name after the highest ?N seen before it, so a
 * statement that mixes them writes every ?N before its first :name.
 * Parameters stmt does not name are left alone. Never fails.
 */
void state_plan_bind(struct sqlite3_stmt *stmt);

/*
 * state_plan_exec - run sql, one or more statements on the plan's temporary
 * tables, each bound with state_plan_bind. what names the step in the error
 * message. Returns DIRCONN_OK or DIRCONN_ESTATE.
 */
enum dirconn_err state_plan_exec(struct state *st, const char *sql, const char *what,
                                 struct dirconn_error *err);

/*
 * state_plan_resolve_dn - for a partial plan: the externalId (malloc'd, the
 * caller frees it) of the user or group the state knows by dn (compared
 * without case, as the server spelled it), if this run neither read it
 * (plan_dir) nor saw it leave the scope (plan_gone); NULL when there is none
 * or on a database error (a DN that does not resolve is reported by the
 * plan as unresolved).
 */
char *state_plan_resolve_dn(struct state *st, const char *dn);

/*
 * state_plan_conflicts - fill temp.plan_conflicts (name_lower, dns: the DNs
 * joined by "; ") with the names (email, userName) that more than one user
 * or contact in scope carries: those of plan_dir (status 0), and for a
 * partial plan also those of the names table for the objects this run did
 * not read and did not see leave. The caller drops the table. Errors as
 * state_plan_schema.
 */
enum dirconn_err state_plan_conflicts(struct state *st, bool partial, struct dirconn_error *err);

/*
 * state_plan_gone_foreach - call fn for each object of the state whose kind
 * is in kinds (a bit mask, 1 << enum object_kind) that the plan did not read
 * (plan_dir): for a partial plan only those it saw leave the scope
 * (plan_gone). Ordered by kind, then externalId. obj is valid during the
 * call only; fn may write the plan's tables, never the state's. Returns
 * DIRCONN_OK; DIRCONN_ESTATE on a database error; fn's non-zero return stops
 * the walk with fn's own error, as state_object_foreach.
 */
enum dirconn_err state_plan_gone_foreach(struct state *st, unsigned kinds, bool partial,
                                         int (*fn)(const struct state_object *obj, void *arg),
                                         void *arg, struct dirconn_error *err);

/* A cloud object the state does not map (state_plan_adoptable_foreach). */
struct state_plan_adoptable {
    enum object_kind kind;
    const char *cloud_id;
    const char *external_id;
    const char *name; /* the directory's name if read in this run, else the cloud's */
    const char *dn;   /* NULL when this run did not read it */
    bool in_scope;    /* read in this run (plan_dir) */
};

/*
 * state_plan_adoptable_foreach - call fn for each object of the cloud
 * inventory (plan_cloud) with an externalId, of a kind in kinds, that no
 * state object has: for a partial plan only those read in this run or seen
 * leaving the scope. Ordered by externalId, kind, cloud id (the caller keeps
 * one per externalId). The strings are valid during the call only; fn must
 * not write the state. Returns and errors as state_plan_gone_foreach.
 */
enum dirconn_err state_plan_adoptable_foreach(struct state *st, unsigned kinds, bool partial,
                                              int (*fn)(void *arg,
                                                        const struct state_plan_adoptable *row),
                                              void *arg, struct dirconn_error *err);

/*
 * state_plan_pending_foreach - call fn with the externalId of each planned
 * add or update with a record whose state object has a cloud id but no
 * record (written to the cloud, never acknowledged), in apply order (depth,
 * then plan order). Returns and errors as state_plan_gone_foreach.
 */
enum dirconn_err state_plan_pending_foreach(struct state *st,
                                            int (*fn)(void *arg, const char *external_id),
                                            void *arg, struct dirconn_error *err);

/*
 * state_plan_projection_count - the number of planned objects of kind whose
 * cloud copy must be compared by value: matches whose version in the
 * inventory is not the one the state holds, and updates without an
 * acknowledged record (created by the connector, not found to have drifted).
 * Returns the count, or -1 on a database error (err set, DIRCONN_ESTATE).
 */
long state_plan_projection_count(struct state *st, enum object_kind kind,
                                 struct dirconn_error *err);

/* Member DNs (bytes of the plan's list) from which a group's copy is big (a million users:
 * the copy of a group of 200,000 members is tens of MB once parsed). */
#define STATE_PROJECTION_BIG (1L << 20)

/*
 * state_plan_projection_foreach - call fn with the cloud id of each of those
 * objects (state_plan_projection_count), each once, at most max of them.
 * big: -1 all of them; 1 only the groups whose member DNs read in this run
 * take STATE_PROJECTION_BIG bytes or more; 0 only the others.
 * Returns and errors as state_plan_gone_foreach.
 */
enum dirconn_err state_plan_projection_foreach(struct state *st, enum object_kind kind, size_t max,
                                               int big, int (*fn)(void *arg, const char *cloud_id),
                                               void *arg, struct dirconn_error *err);

/*
 * state_plan_save_names - replace the names table (full: all of it; partial:
 * the rows of the objects this run read or saw leave) with the names of the
 * users and contacts in scope (plan_dir, sent or in a naming conflict).
 * Rows that did not change are not rewritten. Call inside a transaction.
 * Errors as state_plan_schema.
 */
enum dirconn_err state_plan_save_names(struct state *st, bool partial, struct dirconn_error *err);

/*
 * state_plan_save_unsent - replace the unsent table (full: all of it; partial: the rows of
 * the objects this run read or saw leave, and of other objects holding a DN this run read)
 * with the objects in scope this plan did not send: skipped (:dir_skip, a required attribute
 * missing) or in a naming conflict (:dir_conflict), with their canonical DN (plan_dir
 * dn_lower). Rows that did not change are not rewritten. Call inside a transaction. Errors
 * as state_plan_schema.
 */
enum dirconn_err state_plan_save_unsent(struct state *st, bool partial, struct dirconn_error *err);

/*
 * state_unsent_has_dn - whether the object in scope with canonical DN dn (as
 * ldap_dn_canonical spells it; compared in lower case, as plan_dir's dn_lower) was read and
 * not sent by the runs that saved the unsent table (state_plan_save_unsent), and this run
 * neither read it (plan_dir) nor saw it leave (plan_gone). A partial plan's resolver then
 * leaves it out of a group's members, as reading it again would, without asking the
 * directory. Needs the plan's temporary tables (state_plan_schema). false when not known or
 * on a database error (the caller then asks the directory).
 */
bool state_unsent_has_dn(struct state *st, const char *dn);

/*
 * state_plan_in_conflict - whether the user or contact external_id that this run read
 * (plan_dir, sendable) shares its name with another object in scope: another one this run
 * read, or one of the names table that this run neither read nor saw leave; as
 * state_plan_conflicts will find once every change is read, so that it will not be sent.
 * Needs the plan's temporary tables and their indexes (state_plan_index). false when not,
 * or on a database error (the caller then treats the object as sent).
 */
bool state_plan_in_conflict(struct state *st, const char *external_id);

/*
 * state_unsent_clear - forget every object not sent: after the object map is rebuilt from the
 * cloud (another instance may have sent them since this state was written). Errors as
 * state_plan_schema.
 */
enum dirconn_err state_unsent_clear(struct state *st, struct dirconn_error *err);

/*
 * state_plan_save_verified - record in the state the records, hashes and DNs
 * of the matches verified by comparing the cloud's copy (plan_items, op
 * match with a record), and the versions of the cloud copies found equal
 * (plan_same). Errors as state_plan_schema.
 */
enum dirconn_err state_plan_save_verified(struct state *st, struct dirconn_error *err);

/* Objects per transaction of state_plan_save_raw: its write-ahead log stays near 20 MB. */
#define STATE_PLAN_SAVE_CHUNK 10000

/*
 * state_plan_save_raw - record the raw hashes (plan_raw) of the objects
 * whose state record is the very one this plan built (same hash, name, DN).
 * Call outside a transaction: it commits every STATE_PLAN_SAVE_CHUNK objects
 * (in externalId order), so a first full sync of a million objects does not
 * hold one transaction over all of them. A raw hash is only a shortcut: one
 * not recorded (a crash between chunks, an error) costs the next full sync
 * the mapping of that entry, nothing else. Errors as state_plan_schema; the
 * chunks committed before an error stay.
 */
enum dirconn_err state_plan_save_raw(struct state *st, struct dirconn_error *err);

/*
 * state_plan_save_moves - give the matched objects whose DN changed within
 * the scope (moved or renamed) their new DN. Errors as state_plan_schema.
 */
enum dirconn_err state_plan_save_moves(struct state *st, struct dirconn_error *err);

#endif
