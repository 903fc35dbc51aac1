/* state.c - the connector's local state in SQLite. */
#include "connector/state.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* [connector] state_cache_size in MiB, for the handles opened from now on. */
static atomic_int state_cache_mib = STATE_CACHE_DEFAULT_MIB;

void state_set_cache_size(int mib)
{
    atomic_store(&state_cache_mib, mib >= 1 ? mib : STATE_CACHE_DEFAULT_MIB);
}

int state_cache_size(void)
{
    return atomic_load(&state_cache_mib);
}

/*
 * Prepared statements of the hot paths, kept for the life of the handle: one
 * slot per string literal that uses it (cached()), so the cache grows with
 * the statements and never turns one away. Only when memory runs out is a
 * statement prepared and finalized at each call.
 */
struct stmt_slot {
    const char *sql; /* a string literal: compared by address */
    sqlite3_stmt *stmt;
};

struct state {
    sqlite3 *db;
    char *path;
    struct stmt_slot *cache;
    size_t n_cache, cap_cache;
};

/*
 * Migrations: migrations[i] takes the schema from version i to i + 1.
 * Never edit a released migration; append a new one.
 */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE objects ("
    "  external_id TEXT PRIMARY KEY NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  dn TEXT NOT NULL,"
    "  cloud_id TEXT,"
    "  name TEXT,"
    "  hash BLOB,"
    "  origin INTEGER NOT NULL DEFAULT 0,"
    "  synced_at INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE INDEX objects_cloud_id ON objects(cloud_id);"
    "CREATE INDEX objects_kind ON objects(kind, external_id);"
    "CREATE TABLE watermarks ("
    "  partition TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
    "  method TEXT NOT NULL,"
    "  value BLOB,"
    "  dc TEXT,"
    "  invocation_id TEXT,"
    "  scope_hash TEXT"
    ");"
    "CREATE TABLE history ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type TEXT NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  ended INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  added INTEGER NOT NULL DEFAULT 0,"
    "  updated INTEGER NOT NULL DEFAULT 0,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  matched INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  threshold_exceeded INTEGER NOT NULL DEFAULT 0,"
    "  override_used INTEGER NOT NULL DEFAULT 0,"
    "  message TEXT"
    ");"
    "CREATE TABLE settings ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL"
    ");",
    /* 1 -> 2: keep the acknowledged record (for update diffs) and the hash as hex text */
    "ALTER TABLE objects ADD COLUMN record TEXT;"
    "UPDATE objects SET hash = NULL;"
    "CREATE INDEX objects_dn ON objects(dn COLLATE NOCASE);",
    /* 2 -> 3: a rowid table; records of a few KiB overflow badly in a WITHOUT ROWID table */
    "CREATE TABLE objects_new ("
    "  external_id TEXT NOT NULL UNIQUE,"
    "  kind INTEGER NOT NULL,"
    "  dn TEXT NOT NULL,"
    "  cloud_id TEXT,"
    "  name TEXT,"
    "  hash BLOB,"
    "  origin INTEGER NOT NULL DEFAULT 0,"
    "  synced_at INTEGER NOT NULL DEFAULT 0,"
    "  record TEXT"
    ");"
    "INSERT INTO objects_new SELECT external_id, kind, dn, cloud_id, name, hash, origin,"
    "  synced_at, record FROM objects;"
    "DROP TABLE objects;"
    "ALTER TABLE objects_new RENAME TO objects;"
    "CREATE INDEX objects_cloud_id ON objects(cloud_id);"
    "CREATE INDEX objects_kind ON objects(kind, external_id);"
    "CREATE INDEX objects_dn ON objects(dn COLLATE NOCASE);",
    /* 3 -> 4: objects whose change failed (retried by the next incremental sync); names */
    "CREATE TABLE retry ("
    "  external_id TEXT PRIMARY KEY NOT NULL,"
    "  dn TEXT,"
    "  reason TEXT,"
    "  since INTEGER NOT NULL DEFAULT 0"
    ");"
    /* the names (email, userName) of the directory objects in scope, for naming conflicts */
    "CREATE TABLE names ("
    "  external_id TEXT PRIMARY KEY NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  dn TEXT,"
    "  name_lower TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX names_name ON names(name_lower);",
    /* 4 -> 5: the kind of an object to retry (-1: not known), for the shared state's retry list */
    "ALTER TABLE retry ADD COLUMN kind INTEGER NOT NULL DEFAULT -1;",
    /* 5 -> 6: the cloud's version (ETag) of the copy last written or compared equal; an
     * object without one is compared with a whole read of its cloud copy by the next full sync */
    "ALTER TABLE objects ADD COLUMN version TEXT;",
    /* 6 -> 7: the raw hash of the directory entry the record was mapped from, the record hash
     * it belongs to, the plan name, manager DN and links of that record (state.h, raw_hash);
     * NULL for every object of a migrated state, so its next full sync maps everything */
    "ALTER TABLE objects ADD COLUMN raw_hash TEXT;"
    "ALTER TABLE objects ADD COLUMN raw_for TEXT;"
    "ALTER TABLE objects ADD COLUMN raw_manager TEXT;"
    "ALTER TABLE objects ADD COLUMN raw_links TEXT;",
    /* 7 -> 8: the objects in scope that were read and not sent (a required attribute missing,
     * a naming conflict), by canonical DN, so that an incremental resolving a member or manager
     * DN does not ask the directory about them again (state_unsent_has_dn); empty after the
     * migration, so the next runs ask as before until a full sync fills it */
    "CREATE TABLE unsent ("
    "  external_id TEXT PRIMARY KEY NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  dn_lower TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX unsent_dn ON unsent(dn_lower);",
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == STATE_SCHEMA_VERSION, "one migration per schema version");

static enum dirconn_err db_error(struct state *st, struct dirconn_error *err, const char *what)
{
    dirconn_error_set(err, DIRCONN_ESTATE, "%s: %s: %s (SQLite %d)", st->path, what,
                      sqlite3_errmsg(st->db), sqlite3_extended_errcode(st->db));
    return dirconn_error_cause(err, DIRCONN_ORIGIN_SQLITE, sqlite3_extended_errcode(st->db));
}

static enum dirconn_err exec(struct state *st, const char *sql, const char *what,
                             struct dirconn_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        dirconn_error_set(err, DIRCONN_ESTATE, "%s: %s: %s", st->path, what,
                          msg != NULL ? msg : sqlite3_errmsg(st->db));
        dirconn_error_cause(err, DIRCONN_ORIGIN_SQLITE, sqlite3_extended_errcode(st->db));
        sqlite3_free(msg);
        return DIRCONN_ESTATE;
    }
    return DIRCONN_OK;
}

static enum dirconn_err prepare(struct state *st, const char *sql, sqlite3_stmt **stmt,
                                struct dirconn_error *err)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return db_error(st, err, "prepare");
    return DIRCONN_OK;
}

/*
 * A prepared statement for a string literal, from the handle's cache: reset
 * and with cleared bindings. Release it with cached_done(), never finalize it.
 */
static enum dirconn_err cached(struct state *st, const char *sql, sqlite3_stmt **stmt,
                               struct dirconn_error *err)
{
    for (size_t i = 0; i < st->n_cache; i++) {
        if (st->cache[i].sql == sql) {
            *stmt = st->cache[i].stmt;
            return DIRCONN_OK;
        }
    }
    enum dirconn_err e = prepare(st, sql, stmt, err);
    if (e != DIRCONN_OK)
        return e;
    if (st->n_cache == st->cap_cache) {
        size_t cap = st->cap_cache > 0 ? st->cap_cache * 2 : 16;
        struct stmt_slot *grown = realloc(st->cache, cap * sizeof(*grown));
        if (grown == NULL)
            return DIRCONN_OK; /* out of memory: cached_done() finalizes it */
        st->cache = grown;
        st->cap_cache = cap;
    }
    st->cache[st->n_cache++] = (struct stmt_slot){sql, *stmt};
    return DIRCONN_OK;
}

static void cached_done(struct state *st, sqlite3_stmt *stmt)
{
    for (size_t i = 0; i < st->n_cache; i++) {
        if (st->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            return;
        }
    }
    sqlite3_finalize(stmt);
}

static enum dirconn_err migrate(struct state *st, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st, "PRAGMA user_version", &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    int version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (version < 0)
        return db_error(st, err, "reading the schema version");
    if (version > STATE_SCHEMA_VERSION)
        return dirconn_error_set(err, DIRCONN_ESTATE,
                                 "%s: schema version %d is newer than this dirconn supports (%d); "
                                 "use the newer dirconn or restore a backup",
                                 st->path, version, STATE_SCHEMA_VERSION);
    for (int v = version; v < STATE_SCHEMA_VERSION; v++) {
        char what[64], bump[64];
        snprintf(what, sizeof(what), "migration to schema version %d", v + 1);
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if ((e = exec(st, "BEGIN IMMEDIATE", what, err)) != DIRCONN_OK)
            return e;
        if ((e = exec(st, migrations[v], what, err)) != DIRCONN_OK ||
            (e = exec(st, bump, what, err)) != DIRCONN_OK ||
            (e = exec(st, "COMMIT", what, err)) != DIRCONN_OK) {
            exec(st, "ROLLBACK", what, NULL);
            return e;
        }
    }
    return DIRCONN_OK;
}

static enum dirconn_err make_dir(const char *dir, struct dirconn_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return dirconn_error_set(err, DIRCONN_EIO, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST)
                return dirconn_error_set(err, DIRCONN_EIO,
                                         "[connector] state_dir %s: cannot create %s: %s", dir,
                                         path, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return DIRCONN_OK;
}

enum dirconn_err state_open(const char *dir, struct state **out, struct dirconn_error *err)
{
    *out = NULL;
    enum dirconn_err e = make_dir(dir, err);
    if (e != DIRCONN_OK)
        return e;
    struct state *st = calloc(1, sizeof(*st));
    size_t len = strlen(dir) + sizeof("/state.db");
    if (st == NULL || (st->path = malloc(len)) == NULL) {
        free(st);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    snprintf(st->path, len, "%s/state.db", dir);
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(
        st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    umask(old);
    if (rc != SQLITE_OK) {
        e = dirconn_error_set(err, DIRCONN_ESTATE, "%s: cannot open: %s", st->path,
                              st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        dirconn_error_cause(err, DIRCONN_ORIGIN_SQLITE,
                            st->db != NULL ? sqlite3_extended_errcode(st->db) : rc);
        state_close(st);
        return e;
    }
    sqlite3_busy_timeout(st->db, 10000);
    sqlite3_extended_result_codes(st->db, 1);
    /*
     * Bounded memory: the page cache of the database and, apart, the one of the temporary
     * tables (the plan's), each [connector] state_cache_size; temporary tables live in a
     * temporary file, not in memory (temp_store before anything creates one).
     */
    char cache[160];
    long kib = (long)state_cache_size() * 1024;
    snprintf(cache, sizeof(cache),
             "PRAGMA temp_store = FILE; PRAGMA main.cache_size = -%ld; "
             "PRAGMA temp.cache_size = -%ld",
             kib, kib);
    if ((e = exec(st, cache, "setting the cache size and temp_store", err)) != DIRCONN_OK ||
        (e = exec(st, "PRAGMA journal_mode = WAL", "setting WAL mode", err)) != DIRCONN_OK ||
        (e = exec(st, "PRAGMA synchronous = FULL", "setting synchronous", err)) != DIRCONN_OK ||
        (e = exec(st, "PRAGMA journal_size_limit = 67108864", "limiting the WAL", err)) !=
            DIRCONN_OK ||
        (e = exec(st, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) != DIRCONN_OK ||
        (e = migrate(st, err)) != DIRCONN_OK) {
        state_close(st);
        return e;
    }
    *out = st;
    return DIRCONN_OK;
}

void state_close(struct state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_cache; i++)
        sqlite3_finalize(st->cache[i].stmt);
    free(st->cache);
    sqlite3_close(st->db);
    free(st->path);
    free(st);
}

struct sqlite3 *state_db(struct state *st)
{
    return st->db;
}

const char *state_path(const struct state *st)
{
    return st->path;
}

/*
 * SQLite calls the busy handler only for a connection without a read transaction: a
 * BEGIN IMMEDIATE from inside a walk (a SELECT of this connection still stepping, as apply
 * commits its batches during the plan walk) gets SQLITE_BUSY at once while another process
 * holds the write lock. Wait for that lock here, as the busy timeout would, up to the same
 * 10 s. A lock held by a writer that then commits cannot be waited out this way (the walk's
 * snapshot is older than that commit: SQLITE_BUSY_SNAPSHOT), and still fails.
 */
enum dirconn_err state_begin(struct state *st, struct dirconn_error *err)
{
    long waited_ms = 0, step_ms = 1;
    for (;;) {
        int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return DIRCONN_OK;
        int ext = sqlite3_extended_errcode(st->db);
        if (rc != SQLITE_BUSY || ext == SQLITE_BUSY_SNAPSHOT || waited_ms >= 10000 ||
            sqlite3_get_autocommit(st->db) == 0)
            break;
        sqlite3_sleep((int)step_ms);
        waited_ms += step_ms;
        if (step_ms < 100)
            step_ms *= 2;
    }
    return exec(st, "BEGIN IMMEDIATE", "begin", err);
}

enum dirconn_err state_commit(struct state *st, struct dirconn_error *err)
{
    return exec(st, "COMMIT", "commit", err);
}

void state_rollback(struct state *st)
{
    if (!sqlite3_get_autocommit(st->db))
        exec(st, "ROLLBACK", "rollback", NULL);
}

/* ---- objects ---------------------------------------------------------------- */

static char *col_text(sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    return t != NULL ? strdup((const char *)t) : NULL;
}

static void read_object(sqlite3_stmt *stmt, struct state_object *o)
{
    memset(o, 0, sizeof(*o));
    o->external_id = col_text(stmt, 0);
    o->kind = sqlite3_column_int(stmt, 1);
    o->dn = col_text(stmt, 2);
    o->cloud_id = col_text(stmt, 3);
    o->name = col_text(stmt, 4);
    o->hash = col_text(stmt, 5);
    o->origin = (enum state_origin)sqlite3_column_int(stmt, 6);
    o->synced_at = sqlite3_column_int64(stmt, 7);
    o->record = col_text(stmt, 8);
    o->version = col_text(stmt, 9);
}

#define OBJECT_COLUMNS                                                                             \
    "external_id, kind, dn, cloud_id, name, hash, origin, synced_at, record, version"

/*
 * Run the cached statement sql with key bound to ?1, one step: *row says
 * whether it gave a row, which the caller reads before cached_done(st,
 * *stmt). what names the read in a database error.
 */
static enum dirconn_err step_by_key(struct state *st, const char *sql, const char *key,
                                    sqlite3_stmt **stmt, bool *row, const char *what,
                                    struct dirconn_error *err)
{
    *row = false;
    enum dirconn_err e = cached(st, sql, stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(*stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_ROW)
        *row = true;
    else if (rc != SQLITE_DONE)
        e = db_error(st, err, what);
    return e;
}

/* *out: column col as a malloc'd string, NULL when the value is NULL. */
static enum dirconn_err dup_column(sqlite3_stmt *stmt, int col, char **out,
                                   struct dirconn_error *err)
{
    const char *t = (const char *)sqlite3_column_text(stmt, col);
    if (t != NULL && (*out = strdup(t)) == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    return DIRCONN_OK;
}

/* An object by the key sql binds; extra: NULL, or where column 10 goes (dup_column). */
static enum dirconn_err object_get_by(struct state *st, const char *sql, const char *key,
                                      struct state_object *out, bool *found, char **extra,
                                      struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    memset(out, 0, sizeof(*out));
    if (extra != NULL)
        *extra = NULL;
    enum dirconn_err e = step_by_key(st, sql, key, &stmt, found, "reading an object", err);
    if (e == DIRCONN_OK && *found) {
        read_object(stmt, out);
        if (extra != NULL)
            e = dup_column(stmt, 10, extra, err);
    }
    if (stmt != NULL)
        cached_done(st, stmt);
    return e;
}

enum dirconn_err state_object_get(struct state *st, const char *external_id,
                                  struct state_object *out, bool *found, struct dirconn_error *err)
{
    static const char sql[] = "SELECT " OBJECT_COLUMNS " FROM objects WHERE external_id = ?1";
    return object_get_by(st, sql, external_id, out, found, NULL, err);
}

enum dirconn_err state_object_head(struct state *st, const char *external_id,
                                   struct state_object *out, bool *found, bool *has_record,
                                   char **raw_links, struct dirconn_error *err)
{
    /* the record's column is its NULL-ness (read_object takes column 8 as text: "1" or NULL);
     * raw_links is column 10 of the second */
#define HEAD_COLUMNS                                                                               \
    "SELECT external_id, kind, dn, cloud_id, name, hash, origin, synced_at,"                       \
    " CASE WHEN record IS NULL THEN NULL ELSE 1 END, version"
    static const char sql[] = HEAD_COLUMNS " FROM objects WHERE external_id = ?1";
    static const char sql_links[] = HEAD_COLUMNS ", raw_links FROM objects WHERE external_id = ?1";
#undef HEAD_COLUMNS
    enum dirconn_err e = object_get_by(st, raw_links != NULL ? sql_links : sql, external_id, out,
                                       found, raw_links, err);
    *has_record = out->record != NULL;
    free(out->record);
    out->record = NULL;
    return e;
}

enum dirconn_err state_object_record(struct state *st, const char *external_id, char **record,
                                     struct dirconn_error *err)
{
    static const char sql[] = "SELECT record FROM objects WHERE external_id = ?1";
    *record = NULL;
    sqlite3_stmt *stmt = NULL;
    bool row = false;
    enum dirconn_err e =
        step_by_key(st, sql, external_id, &stmt, &row, "reading an object's record", err);
    if (e == DIRCONN_OK && row)
        e = dup_column(stmt, 0, record, err);
    if (stmt != NULL)
        cached_done(st, stmt);
    return e;
}

enum dirconn_err state_object_cloud_id(struct state *st, const char *external_id, int *kind,
                                       char **cloud_id, bool *found, struct dirconn_error *err)
{
    static const char sql[] = "SELECT kind, cloud_id FROM objects WHERE external_id = ?1";
    *cloud_id = NULL;
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = step_by_key(st, sql, external_id, &stmt, found, "reading an object", err);
    if (e == DIRCONN_OK && *found) {
        *kind = sqlite3_column_int(stmt, 0);
        e = dup_column(stmt, 1, cloud_id, err);
    }
    if (stmt != NULL)
        cached_done(st, stmt);
    return e;
}

enum dirconn_err state_object_raw_get(struct state *st, const char *external_id,
                                      const char *raw_hash, struct state_raw *out, bool *found,
                                      struct dirconn_error *err)
{
    static const char sql[] =
        "SELECT name, raw_manager FROM objects WHERE external_id = ?1"
        " AND raw_hash = ?2 AND raw_for = hash AND record IS NOT NULL AND cloud_id IS NOT NULL"
        " AND raw_links IS NOT NULL";
    *found = false;
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = cached(st, sql, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, raw_hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *v[2];
        for (int i = 0; i < 2; i++)
            v[i] = (const char *)sqlite3_column_text(stmt, i);
        out->name = v[0] != NULL ? strdup(v[0]) : NULL;
        out->manager_dn = v[1] != NULL ? strdup(v[1]) : NULL;
        if ((v[0] != NULL && out->name == NULL) || (v[1] != NULL && out->manager_dn == NULL)) {
            state_raw_clear(out);
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        } else {
            *found = true;
        }
    } else if (rc != SQLITE_DONE) {
        e = db_error(st, err, "reading an object's raw hash");
    }
    cached_done(st, stmt);
    return e;
}

void state_raw_clear(struct state_raw *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->manager_dn);
    memset(r, 0, sizeof(*r));
}

enum dirconn_err state_object_find_cloud_id(struct state *st, const char *cloud_id,
                                            struct state_object *out, bool *found,
                                            struct dirconn_error *err)
{
    static const char sql[] = "SELECT " OBJECT_COLUMNS " FROM objects WHERE cloud_id = ?1";
    return object_get_by(st, sql, cloud_id, out, found, NULL, err);
}

enum dirconn_err state_object_find_dn(struct state *st, const char *dn, struct state_object *out,
                                      bool *found, struct dirconn_error *err)
{
    static const char sql[] = "SELECT " OBJECT_COLUMNS " FROM objects WHERE dn = ?1 COLLATE NOCASE";
    return object_get_by(st, sql, dn, out, found, NULL, err);
}

enum dirconn_err state_object_put(struct state *st, const struct state_object *o,
                                  struct dirconn_error *err)
{
    static const char sql[] =
        "INSERT INTO objects (" OBJECT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10) ON CONFLICT(external_id) DO UPDATE SET kind = excluded.kind, dn = excluded.dn,"
        " cloud_id = excluded.cloud_id, name = excluded.name, hash = excluded.hash,"
        " origin = excluded.origin, synced_at = excluded.synced_at, record = excluded.record,"
        " version = excluded.version";
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = cached(st, sql, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, o->external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, o->kind);
    sqlite3_bind_text(stmt, 3, o->dn != NULL ? o->dn : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, o->cloud_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, o->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, (int)o->origin);
    sqlite3_bind_int64(stmt, 8, o->synced_at);
    sqlite3_bind_text(stmt, 9, o->record, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 10, o->version, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "writing an object");
    cached_done(st, stmt);
    return e;
}

enum dirconn_err state_object_delete(struct state *st, const char *external_id,
                                     struct dirconn_error *err)
{
    static const char sql[] = "DELETE FROM objects WHERE external_id = ?1";
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = cached(st, sql, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "deleting an object");
    cached_done(st, stmt);
    return e;
}

/* One walk over the OBJECT_COLUMNS rows of a prepared statement, which it finalizes. */
static enum dirconn_err object_walk(struct state *st, sqlite3_stmt *stmt,
                                    int (*fn)(const struct state_object *obj, void *arg), void *arg,
                                    const char *what, struct dirconn_error *err)
{
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct state_object o;
        read_object(stmt, &o);
        int stop = fn(&o, arg);
        state_object_clear(&o);
        if (stop != 0) {
            sqlite3_finalize(stmt);
            return dirconn_error_stopped(err, DIRCONN_EFAIL, "%s: walk of the objects stopped",
                                         st->path);
        }
    }
    if (rc != SQLITE_DONE)
        e = db_error(st, err, what);
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_object_foreach(struct state *st, int kind,
                                      int (*fn)(const struct state_object *obj, void *arg),
                                      void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "SELECT " OBJECT_COLUMNS " FROM objects WHERE ?1 < 0 OR kind = ?1 "
                                 "ORDER BY external_id",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_int(stmt, 1, kind);
    return object_walk(st, stmt, fn, arg, "reading the objects", err);
}

bool state_object_has_version(struct state *st)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM objects WHERE version IS NOT NULL LIMIT 1", -1,
                           &stmt, NULL) != SQLITE_OK)
        return false;
    bool found = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return found;
}

bool state_object_has_unacknowledged(struct state *st)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(
            st->db, "SELECT 1 FROM objects WHERE record IS NULL AND kind IN (?1, ?2) LIMIT 1", -1,
            &stmt, NULL) != SQLITE_OK)
        return true;
    sqlite3_bind_int(stmt, 1, OBJECT_USER);
    sqlite3_bind_int(stmt, 2, OBJECT_GROUP);
    bool found = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    return found;
}

enum dirconn_err state_referrers_foreach(struct state *st, const char *external_id,
                                         bool with_cloud_id,
                                         int (*fn)(void *arg, const char *external_id, int kind,
                                                   const char *cloud_id, const char *record),
                                         void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *q = NULL;
    enum dirconn_err e = prepare(st,
                                 "SELECT external_id, kind, cloud_id, record FROM objects"
                                 " WHERE kind IN (?2, ?3) AND record IS NOT NULL"
                                 " AND (?4 = 0 OR cloud_id IS NOT NULL)"
                                 " AND instr(record, '\"' || ?1 || '\"') > 0"
                                 " ORDER BY external_id",
                                 &q, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(q, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, OBJECT_USER);
    sqlite3_bind_int(q, 3, OBJECT_GROUP);
    sqlite3_bind_int(q, 4, with_cloud_id ? 1 : 0);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (fn(arg, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int(q, 1),
               (const char *)sqlite3_column_text(q, 2),
               (const char *)sqlite3_column_text(q, 3)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        e = db_error(st, err, "reading the objects that refer to one");
    sqlite3_finalize(q);
    return e;
}

long state_object_count(struct state *st, int kind)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM objects WHERE ?1 < 0 OR kind = ?1", -1,
                           &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int(stmt, 1, kind);
    long n = sqlite3_step(stmt) == SQLITE_ROW ? (long)sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return n;
}

/* ---- the object map rebuilt from the cloud inventory (state.h) ------------------ */

enum dirconn_err state_reconcile_begin(struct state *st, struct state_reconcile *r,
                                       struct dirconn_error *err)
{
    memset(r, 0, sizeof(*r));
    return exec(st,
                "DROP TABLE IF EXISTS temp.reconcile_seen;"
                "CREATE TEMP TABLE reconcile_seen (external_id TEXT PRIMARY KEY) WITHOUT ROWID;",
                "starting the object map's reconciliation", err);
}

static bool same_text(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

enum dirconn_err state_reconcile_object(struct state *st, struct state_reconcile *r, int kind,
                                        const char *external_id, const char *cloud_id,
                                        const char *name, const char *version,
                                        struct dirconn_error *err)
{
    static const char seen_sql[] = "INSERT OR IGNORE INTO temp.reconcile_seen VALUES (?1)";
    if (external_id == NULL || external_id[0] == '\0' || cloud_id == NULL)
        return DIRCONN_OK;
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = cached(st, seen_sql, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    bool first = rc == SQLITE_DONE && sqlite3_changes(st->db) > 0;
    cached_done(st, stmt);
    if (rc != SQLITE_DONE)
        return db_error(st, err, "reconciling the object map");
    if (!first)
        return DIRCONN_OK; /* one cloud object per externalId: the first listed */
    r->objects++;
    struct state_object o = {0};
    bool found = false;
    e = state_object_get(st, external_id, &o, &found, err);
    if (e != DIRCONN_OK)
        return e;
    if (found && o.kind == kind && same_text(o.cloud_id, cloud_id) &&
        same_text(o.version, version)) {
        state_object_clear(&o);
        return DIRCONN_OK; /* the copy the acknowledged record belongs to */
    }
    /* Another copy (or one the state did not know): its record is not acknowledged, the next
     * change to it is compared with the cloud's copy; the DN stays when known. */
    struct state_object n = {.external_id = (char *)external_id,
                             .kind = kind,
                             .dn = found ? o.dn : NULL,
                             .cloud_id = (char *)cloud_id,
                             .name = name != NULL ? (char *)name
                                     : found      ? o.name
                                                  : NULL,
                             .origin = found ? o.origin : STATE_ORIGIN_CREATED,
                             .synced_at = found ? o.synced_at : 0,
                             .version = (char *)version};
    e = state_object_put(st, &n, err);
    state_object_clear(&o);
    if (e == DIRCONN_OK)
        r->changed++;
    return e;
}

enum dirconn_err state_reconcile_end(struct state *st, struct state_reconcile *r, unsigned kinds,
                                     struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "DELETE FROM objects WHERE ((?1 >> kind) & 1) = 1 AND external_id"
                                 " NOT IN (SELECT external_id FROM temp.reconcile_seen)",
                                 &stmt, err);
    if (e == DIRCONN_OK) {
        sqlite3_bind_int64(stmt, 1, (sqlite3_int64)kinds);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            e = db_error(st, err, "removing what the cloud no longer holds from the object map");
        else
            r->removed = (long)sqlite3_changes(st->db);
        sqlite3_finalize(stmt);
    }
    sqlite3_exec(st->db, "DROP TABLE IF EXISTS temp.reconcile_seen", NULL, NULL, NULL);
    return e;
}

enum dirconn_err state_object_set_dn(struct state *st, const char *external_id, const char *dn,
                                     struct dirconn_error *err)
{
    static const char sql[] = "UPDATE objects SET dn = ?2 WHERE external_id = ?1";
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = cached(st, sql, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, dn != NULL ? dn : "", -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "recording an object's DN");
    cached_done(st, stmt);
    return e;
}

void state_object_clear(struct state_object *o)
{
    if (o == NULL)
        return;
    free(o->external_id);
    free(o->dn);
    free(o->cloud_id);
    free(o->name);
    free(o->hash);
    free(o->record);
    free(o->version);
    memset(o, 0, sizeof(*o));
}

/* ---- watermarks ------------------------------------------------------------- */

/* The watermark of the current row of `SELECT partition, method, value, dc, invocation_id,
 * scope_hash`. */
static void row_watermark(sqlite3_stmt *stmt, struct state_watermark *out)
{
    memset(out, 0, sizeof(*out));
    out->partition = col_text(stmt, 0);
    out->method = col_text(stmt, 1);
    out->len = (size_t)sqlite3_column_bytes(stmt, 2);
    out->value = malloc(out->len + 1);
    if (out->value != NULL) {
        if (out->len > 0)
            memcpy(out->value, sqlite3_column_blob(stmt, 2), out->len);
        out->value[out->len] = '\0';
    }
    out->dc = col_text(stmt, 3);
    out->invocation_id = col_text(stmt, 4);
    out->scope_hash = col_text(stmt, 5);
}

enum dirconn_err state_watermark_get(struct state *st, const char *partition,
                                     struct state_watermark *out, bool *found,
                                     struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    *found = false;
    memset(out, 0, sizeof(*out));
    enum dirconn_err e = prepare(st,
                                 "SELECT partition, method, value, dc, invocation_id, scope_hash "
                                 "FROM watermarks WHERE partition = ?1",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, partition, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        row_watermark(stmt, out);
        *found = true;
    } else if (rc != SQLITE_DONE) {
        e = db_error(st, err, "reading a watermark");
    }
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_watermark_foreach(struct state *st,
                                         int (*fn)(void *arg, const struct state_watermark *wm),
                                         void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "SELECT partition, method, value, dc, invocation_id, scope_hash "
                                 "FROM watermarks ORDER BY partition",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct state_watermark wm;
        row_watermark(stmt, &wm);
        int stop = fn(arg, &wm);
        state_watermark_clear(&wm);
        if (stop != 0) {
            e = dirconn_error_set(err, DIRCONN_EFAIL, "stopped while listing watermarks");
            break;
        }
    }
    if (e == DIRCONN_OK && rc != SQLITE_DONE)
        e = db_error(st, err, "listing watermarks");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_watermark_put(struct state *st, const struct state_watermark *wm,
                                     struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "INSERT OR REPLACE INTO watermarks (partition, method, value, dc, "
                                 "invocation_id, scope_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, wm->partition, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, wm->method, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, wm->value, (int)wm->len, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, wm->dc, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, wm->invocation_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, wm->scope_hash, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "writing a watermark");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_watermark_delete_all(struct state *st, struct dirconn_error *err)
{
    return exec(st, "DELETE FROM watermarks", "discarding the watermarks", err);
}

void state_watermark_clear(struct state_watermark *wm)
{
    if (wm == NULL)
        return;
    free(wm->partition);
    free(wm->method);
    free(wm->value);
    free(wm->dc);
    free(wm->invocation_id);
    free(wm->scope_hash);
    memset(wm, 0, sizeof(*wm));
}

/* ---- history ------------------------------------------------------------------ */

enum dirconn_err state_history_add(struct state *st, struct state_history *h,
                                   struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "INSERT INTO history (type, started, ended, status, added, "
                                 "updated, deleted, matched, skipped, failed, threshold_exceeded, "
                                 "override_used, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                 "?9, ?10, ?11, ?12, ?13)",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, h->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, h->started);
    sqlite3_bind_int64(stmt, 3, h->ended);
    sqlite3_bind_text(stmt, 4, h->status != NULL ? h->status : "success", -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, h->added);
    sqlite3_bind_int64(stmt, 6, h->updated);
    sqlite3_bind_int64(stmt, 7, h->deleted);
    sqlite3_bind_int64(stmt, 8, h->matched);
    sqlite3_bind_int64(stmt, 9, h->skipped);
    sqlite3_bind_int64(stmt, 10, h->failed);
    sqlite3_bind_int(stmt, 11, h->threshold_exceeded);
    sqlite3_bind_int(stmt, 12, h->override_used);
    sqlite3_bind_text(stmt, 13, h->message, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "recording the sync history");
    else
        h->id = sqlite3_last_insert_rowid(st->db);
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_history_list(struct state *st, size_t limit, struct state_history **out,
                                    size_t *n, struct dirconn_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e =
        prepare(st,
                "SELECT id, type, started, ended, status, added, updated, deleted, "
                "matched, skipped, failed, threshold_exceeded, override_used, "
                "message FROM history ORDER BY id DESC LIMIT ?1",
                &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)limit);
    struct state_history *list = calloc(limit > 0 ? limit : 1, sizeof(*list));
    if (list == NULL) {
        sqlite3_finalize(stmt);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    int rc;
    size_t k = 0;
    while (k < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct state_history *h = &list[k++];
        h->id = sqlite3_column_int64(stmt, 0);
        h->type = col_text(stmt, 1);
        h->started = sqlite3_column_int64(stmt, 2);
        h->ended = sqlite3_column_int64(stmt, 3);
        h->status = col_text(stmt, 4);
        h->added = (long)sqlite3_column_int64(stmt, 5);
        h->updated = (long)sqlite3_column_int64(stmt, 6);
        h->deleted = (long)sqlite3_column_int64(stmt, 7);
        h->matched = (long)sqlite3_column_int64(stmt, 8);
        h->skipped = (long)sqlite3_column_int64(stmt, 9);
        h->failed = (long)sqlite3_column_int64(stmt, 10);
        h->threshold_exceeded = sqlite3_column_int(stmt, 11) != 0;
        h->override_used = sqlite3_column_int(stmt, 12) != 0;
        h->message = col_text(stmt, 13);
    }
    sqlite3_finalize(stmt);
    *out = list;
    *n = k;
    return DIRCONN_OK;
}

void state_history_free(struct state_history *h, size_t n)
{
    for (size_t i = 0; h != NULL && i < n; i++) {
        free(h[i].type);
        free(h[i].status);
        free(h[i].message);
    }
    free(h);
}

/* ---- settings -------------------------------------------------------------------- */

enum dirconn_err state_setting_get(struct state *st, const char *name, char **value,
                                   struct dirconn_error *err)
{
    *value = NULL;
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st, "SELECT value FROM settings WHERE name = ?1", &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *value = col_text(stmt, 0);
    else if (rc != SQLITE_DONE)
        e = db_error(st, err, "reading a setting");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_setting_set(struct state *st, const char *name, const char *value,
                                   struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e =
        prepare(st,
                value != NULL ? "INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)"
                              : "DELETE FROM settings WHERE name = ?1",
                &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (value != NULL)
        sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "writing a setting");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_retry_put(struct state *st, const char *external_id, const char *dn,
                                 int kind, const char *reason, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "INSERT INTO retry (external_id, dn, reason, since, kind) VALUES"
                                 " (?1, ?2, ?3, strftime('%s','now'), ?4) ON CONFLICT(external_id)"
                                 " DO UPDATE SET dn = coalesce(?2, dn), reason = ?3,"
                                 " kind = CASE WHEN ?4 >= 0 THEN ?4 ELSE kind END",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, dn, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, kind < 0 ? -1 : kind);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "recording an object to retry");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_retry_delete(struct state *st, const char *external_id,
                                    struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(
        st, external_id != NULL ? "DELETE FROM retry WHERE external_id = ?1" : "DELETE FROM retry",
        &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    if (external_id != NULL)
        sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        e = db_error(st, err, "forgetting an object to retry");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_retry_foreach(struct state *st,
                                     int (*fn)(void *arg, const char *external_id, const char *dn,
                                               int kind),
                                     void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e =
        prepare(st, "SELECT external_id, dn, kind FROM retry ORDER BY external_id", &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    dirconn_error_clear(err);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (fn(arg, (const char *)sqlite3_column_text(stmt, 0),
               (const char *)sqlite3_column_text(stmt, 1), sqlite3_column_int(stmt, 2)) != 0) {
            e = dirconn_error_stopped(err, DIRCONN_EFAIL, "retry walk stopped");
            break;
        }
    }
    if (e == DIRCONN_OK && rc != SQLITE_DONE)
        e = db_error(st, err, "reading the objects to retry");
    sqlite3_finalize(stmt);
    return e;
}

long state_retry_count(struct state *st)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM retry", -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    long n = sqlite3_step(stmt) == SQLITE_ROW ? (long)sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return n;
}

/* One walk over (external_id, dn) rows of a prepared statement (state_names_*). */
static enum dirconn_err names_walk(struct state *st, sqlite3_stmt *stmt,
                                   int (*fn)(void *arg, const char *external_id, const char *dn),
                                   void *arg, struct dirconn_error *err)
{
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (fn(arg, (const char *)sqlite3_column_text(stmt, 0),
               (const char *)sqlite3_column_text(stmt, 1)) != 0) {
            e = dirconn_error_stopped(err, DIRCONN_EFAIL, "names walk stopped");
            break;
        }
    }
    if (e == DIRCONN_OK && rc != SQLITE_DONE)
        e = db_error(st, err, "reading the names");
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_names_unsent_foreach(struct state *st, enum object_kind kind,
                                            int (*fn)(void *arg, const char *external_id,
                                                      const char *dn),
                                            void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "SELECT external_id, dn FROM names WHERE kind = ?1 AND external_id"
                                 " NOT IN (SELECT external_id FROM objects) ORDER BY external_id",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_int(stmt, 1, (int)kind);
    return names_walk(st, stmt, fn, arg, err);
}

enum dirconn_err state_name_partners_foreach(struct state *st, const char *external_id,
                                             int (*fn)(void *arg, const char *external_id,
                                                       const char *dn),
                                             void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e =
        prepare(st,
                "SELECT n2.external_id, n2.dn FROM names n1 JOIN names n2 ON"
                " n2.name_lower = n1.name_lower AND n2.external_id != n1.external_id"
                " WHERE n1.external_id = ?1 ORDER BY n2.external_id",
                &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_text(stmt, 1, external_id, -1, SQLITE_TRANSIENT);
    return names_walk(st, stmt, fn, arg, err);
}

/* --- the plan's temporary tables (state.h) ------------------------------------------------ */

static const char plan_schema_sql[] =
    "DROP TABLE IF EXISTS temp.plan_cloud;"
    "DROP TABLE IF EXISTS temp.plan_dir;"
    "DROP TABLE IF EXISTS temp.plan_items;"
    "DROP TABLE IF EXISTS temp.plan_warnings;"
    "DROP TABLE IF EXISTS temp.plan_gone;"
    "DROP TABLE IF EXISTS temp.plan_same;"
    "DROP TABLE IF EXISTS temp.plan_raw;"
    /* raw hashes of the directory objects planned, with what their records were built from */
    "CREATE TEMP TABLE plan_raw (external_id TEXT PRIMARY KEY, raw TEXT, manager_dn TEXT,"
    "  links TEXT) WITHOUT ROWID;"
    "CREATE TEMP TABLE plan_same (external_id TEXT PRIMARY KEY, version TEXT) WITHOUT ROWID;"
    "CREATE TEMP TABLE plan_gone (external_id TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TEMP TABLE plan_cloud (kind INTEGER, id TEXT, name_lower TEXT, external_id TEXT,"
    "  is_admin INTEGER, version TEXT, projection TEXT, name TEXT);"
    "CREATE TEMP TABLE plan_dir (external_id TEXT PRIMARY KEY, kind INTEGER, dn TEXT,"
    "  dn_lower TEXT, name TEXT, name_lower TEXT, resource TEXT, manager_dn TEXT,"
    "  members TEXT, status INTEGER, message TEXT, manager_lower TEXT, split INTEGER,"
    "  raw TEXT, same INTEGER);"
    "CREATE TEMP TABLE plan_items (seq INTEGER PRIMARY KEY, op INTEGER, kind INTEGER,"
    "  external_id TEXT, cloud_id TEXT, dn TEXT, name TEXT, record TEXT, old_record TEXT,"
    "  hash TEXT, version TEXT, changed TEXT, message TEXT, origin INTEGER,"
    "  depth INTEGER NOT NULL DEFAULT 0, drift INTEGER NOT NULL DEFAULT 0,"
    "  moved INTEGER NOT NULL DEFAULT 0);"
    "CREATE TEMP TABLE plan_warnings (seq INTEGER PRIMARY KEY, dn TEXT, message TEXT);";

static const char plan_index_input_sql[] =
    "CREATE INDEX IF NOT EXISTS temp.plan_cloud_id ON plan_cloud(kind, id);"
    "CREATE INDEX IF NOT EXISTS temp.plan_cloud_ext ON plan_cloud(kind, external_id);"
    "CREATE INDEX IF NOT EXISTS temp.plan_cloud_name ON plan_cloud(kind, name_lower);"
    /* Covering the plan's look-up of a member or manager by DN (status and externalId): the
     * rows themselves (records, member lists) are not read for it. */
    "CREATE INDEX IF NOT EXISTS temp.plan_dir_dn ON plan_dir(dn_lower, status, external_id);"
    "CREATE INDEX IF NOT EXISTS temp.plan_dir_name ON plan_dir(name_lower);"
    /* The plan's walk in (kind, externalId) order reads this index instead of sorting whole
     * rows (records and member lists): at 1M objects that sort held 71 MB. Its first column
     * is the expression kind + 0, which only that walk's ORDER BY names: an index on plain
     * kind would be chosen for every "kind = :user" lookup (there are no statistics), and
     * the management depth's correlated lookup would scan all users for each user. */
    "CREATE INDEX IF NOT EXISTS temp.plan_dir_walk ON plan_dir(kind + 0, external_id);";

static const char plan_index_items_sql[] =
    "CREATE INDEX IF NOT EXISTS temp.plan_items_op ON plan_items(op, kind, depth, seq);"
    "CREATE INDEX IF NOT EXISTS temp.plan_items_ext ON plan_items(external_id);";

enum dirconn_err state_plan_schema(struct state *st, struct dirconn_error *err)
{
    return exec(st, plan_schema_sql, "plan: creating its tables", err);
}

void state_plan_drop(struct state *st)
{
    sqlite3_exec(st->db,
                 "DROP TABLE IF EXISTS temp.plan_cloud; DROP TABLE IF EXISTS temp.plan_dir;"
                 "DROP TABLE IF EXISTS temp.plan_items; DROP TABLE IF EXISTS temp.plan_warnings;"
                 "DROP TABLE IF EXISTS temp.plan_gone; DROP TABLE IF EXISTS temp.plan_same;"
                 "DROP TABLE IF EXISTS temp.plan_raw;",
                 NULL, NULL, NULL);
}

enum dirconn_err state_plan_index(struct state *st, bool items, struct dirconn_error *err)
{
    return exec(st, items ? plan_index_items_sql : plan_index_input_sql, "plan: indexing", err);
}

void state_plan_bind(sqlite3_stmt *stmt)
{
    static const struct {
        const char *name;
        int value;
    } v[] = {{":user", OBJECT_USER},       {":group", OBJECT_GROUP},
             {":contact", OBJECT_CONTACT}, {":add", PLAN_ADD},
             {":update", PLAN_UPDATE},     {":match", PLAN_MATCH},
             {":delete", PLAN_DELETE},     {":protected", PLAN_PROTECTED},
             {":skip", PLAN_SKIP},         {":conflict", PLAN_CONFLICT},
             {":forget", PLAN_FORGET},     {":dir_ok", PLAN_DIR_OK},
             {":dir_skip", PLAN_DIR_SKIP}, {":dir_conflict", PLAN_DIR_CONFLICT}};
    if (sqlite3_bind_parameter_count(stmt) == 0)
        return;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int idx = sqlite3_bind_parameter_index(stmt, v[i].name);
        if (idx > 0)
            sqlite3_bind_int(stmt, idx, v[i].value);
    }
}

enum dirconn_err state_plan_exec(struct state *st, const char *sql, const char *what,
                                 struct dirconn_error *err)
{
    const char *tail = sql;
    while (tail != NULL && *tail != '\0') {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(st->db, tail, -1, &s, &tail) != SQLITE_OK)
            return db_error(st, err, what);
        if (s == NULL) /* only white space or a comment was left */
            continue;
        state_plan_bind(s);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            ;
        if (rc != SQLITE_DONE) {
            enum dirconn_err e = db_error(st, err, what);
            sqlite3_finalize(s);
            return e;
        }
        sqlite3_finalize(s);
    }
    return DIRCONN_OK;
}

char *state_plan_resolve_dn(struct state *st, const char *dn)
{
    static const char sql[] =
        "SELECT external_id FROM objects o WHERE dn = ?1 COLLATE NOCASE AND kind IN (:user, :group)"
        " AND NOT EXISTS (SELECT 1 FROM plan_gone g WHERE g.external_id = o.external_id)"
        " AND NOT EXISTS (SELECT 1 FROM plan_dir d WHERE d.external_id = o.external_id)";
    sqlite3_stmt *stmt = NULL;
    if (cached(st, sql, &stmt, NULL) != DIRCONN_OK)
        return NULL;
    state_plan_bind(stmt);
    sqlite3_bind_text(stmt, 1, dn, -1, SQLITE_STATIC);
    char *id = sqlite3_step(stmt) == SQLITE_ROW ? col_text(stmt, 0) : NULL;
    cached_done(st, stmt);
    return id;
}

enum dirconn_err state_plan_conflicts(struct state *st, bool partial, struct dirconn_error *err)
{
    static const char full[] =
        "DROP TABLE IF EXISTS temp.plan_conflicts;"
        "CREATE TEMP TABLE plan_conflicts AS SELECT name_lower, group_concat(dn, '; ') AS dns"
        " FROM plan_dir WHERE status = :dir_ok AND kind IN (:user, :contact) AND name_lower IS NOT "
        "NULL"
        " GROUP BY name_lower HAVING count(*) > 1;";
    /* The names of the objects in scope that this run did not read: the names table, by the
     * names of the objects it read (only those are planned: an index look-up for each, not a
     * sort of every name the state holds). */
    static const char part[] =
        "DROP TABLE IF EXISTS temp.plan_conflicts;"
        "CREATE TEMP TABLE plan_conflicts AS SELECT name_lower, group_concat(dn, '; ') AS dns"
        " FROM (SELECT name_lower, dn FROM plan_dir WHERE status = :dir_ok AND kind IN (:user, "
        ":contact)"
        "   AND name_lower IS NOT NULL"
        " UNION ALL SELECT name_lower, coalesce(dn, external_id) FROM names"
        "   WHERE name_lower IN (SELECT name_lower FROM plan_dir WHERE status = :dir_ok"
        "     AND kind IN (:user, :contact) AND name_lower IS NOT NULL)"
        "   AND external_id NOT IN (SELECT external_id FROM plan_dir)"
        "   AND external_id NOT IN (SELECT external_id FROM plan_gone))"
        " GROUP BY name_lower HAVING count(*) > 1;";
    return state_plan_exec(st, partial ? part : full, "plan: naming conflicts", err);
}

enum dirconn_err state_plan_gone_foreach(struct state *st, unsigned kinds, bool partial,
                                         int (*fn)(const struct state_object *obj, void *arg),
                                         void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(
        st,
        "SELECT " OBJECT_COLUMNS " FROM objects o WHERE ((?1 >> o.kind) & 1) = 1 AND NOT EXISTS"
        " (SELECT 1 FROM plan_dir d WHERE d.external_id = o.external_id)"
        " AND (?2 = 0 OR o.external_id IN (SELECT external_id FROM plan_gone))"
        " ORDER BY o.kind, o.external_id",
        &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_int(stmt, 1, (int)kinds);
    sqlite3_bind_int(stmt, 2, partial);
    return object_walk(st, stmt, fn, arg, "plan: reading the objects that left the scope", err);
}

enum dirconn_err state_plan_adoptable_foreach(struct state *st, unsigned kinds, bool partial,
                                              int (*fn)(void *arg,
                                                        const struct state_plan_adoptable *row),
                                              void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(
        st,
        "SELECT c.kind, c.id, c.external_id, coalesce(d.name, c.name), d.dn,"
        " d.external_id IS NOT NULL FROM plan_cloud c LEFT JOIN plan_dir d"
        " ON d.external_id = c.external_id AND d.kind = c.kind"
        " WHERE ((?1 >> c.kind) & 1) = 1 AND c.external_id IS NOT NULL AND c.external_id != ''"
        " AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.external_id = c.external_id)"
        " AND (?2 = 0 OR d.external_id IS NOT NULL"
        "  OR c.external_id IN (SELECT external_id FROM plan_gone))"
        " ORDER BY c.external_id, c.kind, c.id",
        &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    sqlite3_bind_int(stmt, 1, (int)kinds);
    sqlite3_bind_int(stmt, 2, partial);
    dirconn_error_clear(err);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct state_plan_adoptable row = {.kind = (enum object_kind)sqlite3_column_int(stmt, 0),
                                           .cloud_id = (const char *)sqlite3_column_text(stmt, 1),
                                           .external_id =
                                               (const char *)sqlite3_column_text(stmt, 2),
                                           .name = (const char *)sqlite3_column_text(stmt, 3),
                                           .dn = (const char *)sqlite3_column_text(stmt, 4),
                                           .in_scope = sqlite3_column_int(stmt, 5) != 0};
        if (fn(arg, &row) != 0) {
            sqlite3_finalize(stmt);
            return dirconn_error_stopped(err, DIRCONN_EFAIL,
                                         "%s: walk of the cloud inventory stopped", st->path);
        }
    }
    if (rc != SQLITE_DONE)
        e = db_error(st, err, "plan: reading the cloud inventory");
    sqlite3_finalize(stmt);
    return e;
}

/* One walk over the first column (text) of a prepared statement (state_plan_*_foreach). */
static enum dirconn_err text_walk(struct state *st, sqlite3_stmt *stmt, size_t max,
                                  int (*fn)(void *arg, const char *value), void *arg,
                                  const char *what, struct dirconn_error *err)
{
    enum dirconn_err e = DIRCONN_OK;
    dirconn_error_clear(err);
    int rc = SQLITE_DONE;
    for (size_t n = 0; n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW; n++) {
        if (fn(arg, (const char *)sqlite3_column_text(stmt, 0)) != 0) {
            e = dirconn_error_stopped(err, DIRCONN_EFAIL, "%s: %s stopped", st->path, what);
            break;
        }
    }
    if (e == DIRCONN_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = db_error(st, err, what);
    sqlite3_finalize(stmt);
    return e;
}

enum dirconn_err state_plan_pending_foreach(struct state *st,
                                            int (*fn)(void *arg, const char *external_id),
                                            void *arg, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st,
                                 "SELECT i.external_id FROM plan_items i JOIN objects o"
                                 " ON o.external_id = i.external_id WHERE i.op IN (:add, :update)"
                                 " AND i.record IS NOT NULL AND o.record IS NULL"
                                 " AND o.cloud_id IS NOT NULL ORDER BY i.depth, i.seq",
                                 &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    state_plan_bind(stmt);
    return text_walk(st, stmt, SIZE_MAX, fn, arg, "plan: reading the pending objects", err);
}

/*
 * The items whose cloud copy must be compared by value: matches whose version
 * in the inventory is not the one the state holds, and updates without an
 * acknowledged record that the connector created and that were not found to
 * have drifted (adopted, or written without their record).
 */
#define NEEDS_PROJECTION                                                                           \
    " FROM plan_items i LEFT JOIN objects o ON o.external_id = i.external_id"                      \
    " WHERE i.kind = :kind AND i.cloud_id IS NOT NULL AND ((i.op = :match AND (i.version IS NULL"  \
    " OR o.version IS NULL OR i.version != o.version)) OR (i.op = :update"                         \
    " AND i.old_record IS NULL AND i.record IS NOT NULL AND i.drift = 0 AND i.origin = :created))"

/* Named parameters only: a ?N after a :name would share its slot (SQLite numbers them in order). */
static void bind_needs_projection(sqlite3_stmt *stmt, enum object_kind kind)
{
    state_plan_bind(stmt);
    sqlite3_bind_int(stmt, sqlite3_bind_parameter_index(stmt, ":kind"), (int)kind);
    sqlite3_bind_int(stmt, sqlite3_bind_parameter_index(stmt, ":created"), STATE_ORIGIN_CREATED);
}

long state_plan_projection_count(struct state *st, enum object_kind kind, struct dirconn_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (prepare(st, "SELECT count(*)" NEEDS_PROJECTION, &stmt, err) != DIRCONN_OK)
        return -1;
    bind_needs_projection(stmt, kind);
    long n = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(stmt, 0);
    else
        db_error(st, err, "plan: counting the objects to compare");
    sqlite3_finalize(stmt);
    return n;
}

enum dirconn_err state_plan_projection_foreach(struct state *st, enum object_kind kind, size_t max,
                                               int big, int (*fn)(void *arg, const char *cloud_id),
                                               void *arg, struct dirconn_error *err)
{
    /* big: by the length of the member DNs the directory gave (plan_dir.members) */
    static const char any[] = "SELECT DISTINCT i.cloud_id" NEEDS_PROJECTION;
    static const char by_size[] = "SELECT DISTINCT i.cloud_id" NEEDS_PROJECTION
                                  " AND (coalesce((SELECT length(d.members) FROM plan_dir d"
                                  " WHERE d.external_id = i.external_id), 0) >= :big_len) = :big";
    sqlite3_stmt *stmt = NULL;
    enum dirconn_err e = prepare(st, big < 0 ? any : by_size, &stmt, err);
    if (e != DIRCONN_OK)
        return e;
    bind_needs_projection(stmt, kind);
    if (big >= 0) {
        sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":big_len"),
                           STATE_PROJECTION_BIG);
        sqlite3_bind_int(stmt, sqlite3_bind_parameter_index(stmt, ":big"), big != 0);
    }
    return text_walk(st, stmt, max, fn, arg, "plan: listing the objects to compare", err);
}

enum dirconn_err state_plan_save_names(struct state *st, bool partial, struct dirconn_error *err)
{
    /*
     * Skipped objects have no name; conflicted ones keep theirs (status 2).
     * Only the rows that changed are written: a run that changed no name
     * writes nothing here.
     */
#define NAMES_IN_SCOPE                                                                             \
    " SELECT external_id, kind, dn, name_lower FROM plan_dir WHERE status IN (:dir_ok, "           \
    ":dir_conflict)"                                                                               \
    " AND kind IN (:user, :contact) AND name_lower IS NOT NULL"
    static const char full[] =
        "DELETE FROM names WHERE NOT EXISTS (SELECT 1 FROM plan_dir d"
        " WHERE d.external_id = names.external_id AND d.status IN (:dir_ok, :dir_conflict)"
        " AND d.kind IN (:user, :contact) AND d.name_lower IS NOT NULL);"
        "INSERT OR REPLACE INTO names" NAMES_IN_SCOPE " AND NOT EXISTS (SELECT 1 FROM names n"
        " WHERE n.external_id = plan_dir.external_id AND n.kind = plan_dir.kind"
        " AND n.dn IS plan_dir.dn AND n.name_lower = plan_dir.name_lower);";
    static const char part[] =
        "DELETE FROM names WHERE (external_id IN (SELECT external_id FROM plan_dir)"
        " OR external_id IN (SELECT external_id FROM plan_gone)) AND NOT EXISTS (SELECT 1"
        " FROM plan_dir d WHERE d.external_id = names.external_id AND d.status IN (:dir_ok, "
        ":dir_conflict)"
        " AND d.kind IN (:user, :contact) AND d.name_lower IS NOT NULL);"
        "INSERT OR REPLACE INTO names" NAMES_IN_SCOPE " AND NOT EXISTS (SELECT 1 FROM names n"
        " WHERE n.external_id = plan_dir.external_id AND n.kind = plan_dir.kind"
        " AND n.dn IS plan_dir.dn AND n.name_lower = plan_dir.name_lower);";
#undef NAMES_IN_SCOPE
    return state_plan_exec(st, partial ? part : full, "plan: saving the names", err);
}

enum dirconn_err state_plan_save_unsent(struct state *st, bool partial, struct dirconn_error *err)
{
    /*
     * As state_plan_save_names: only the rows that changed are written. A partial plan also
     * drops the rows of another object with a DN it read (the DN now names that object).
     */
#define UNSENT_IN_SCOPE                                                                            \
    " SELECT external_id, kind, dn_lower FROM plan_dir WHERE status IN (:dir_skip, :dir_conflict)" \
    " AND dn_lower IS NOT NULL"
#define UNSENT_INSERT                                                                              \
    "INSERT OR REPLACE INTO unsent" UNSENT_IN_SCOPE " AND NOT EXISTS (SELECT 1 FROM unsent u"      \
    " WHERE u.external_id = plan_dir.external_id AND u.kind = plan_dir.kind"                       \
    " AND u.dn_lower = plan_dir.dn_lower);"
    static const char full[] =
        "DELETE FROM unsent WHERE NOT EXISTS (SELECT 1 FROM plan_dir d WHERE d.external_id ="
        " unsent.external_id AND d.status IN (:dir_skip, :dir_conflict) AND d.dn_lower IS NOT "
        "NULL);" UNSENT_INSERT;
    static const char part[] =
        "DELETE FROM unsent WHERE (external_id IN (SELECT external_id FROM plan_dir)"
        " OR external_id IN (SELECT external_id FROM plan_gone)"
        " OR dn_lower IN (SELECT dn_lower FROM plan_dir)) AND NOT EXISTS (SELECT 1 FROM plan_dir d"
        " WHERE d.external_id = unsent.external_id AND d.status IN (:dir_skip, :dir_conflict)"
        " AND d.dn_lower = unsent.dn_lower);" UNSENT_INSERT;
#undef UNSENT_INSERT
#undef UNSENT_IN_SCOPE
    return state_plan_exec(st, partial ? part : full, "plan: saving the objects not sent", err);
}

/* Whether sql (a cached statement on the plan's tables, bound with state_plan_bind and ?1 =
 * arg) has a row; false on a database error. */
static bool plan_has_row(struct state *st, const char *sql, const char *arg)
{
    sqlite3_stmt *stmt = NULL;
    if (cached(st, sql, &stmt, NULL) != DIRCONN_OK)
        return false;
    state_plan_bind(stmt);
    sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
    bool found = sqlite3_step(stmt) == SQLITE_ROW;
    cached_done(st, stmt);
    return found;
}

bool state_unsent_has_dn(struct state *st, const char *dn)
{
    return plan_has_row(
        st,
        "SELECT 1 FROM unsent u WHERE dn_lower = lower(?1)"
        " AND NOT EXISTS (SELECT 1 FROM plan_gone g WHERE g.external_id = u.external_id)"
        " AND NOT EXISTS (SELECT 1 FROM plan_dir d WHERE d.external_id = u.external_id)",
        dn);
}

bool state_plan_in_conflict(struct state *st, const char *external_id)
{
    /* The counts of state_plan_conflicts (partial) for this object's name. */
    static const char sql[] =
        "SELECT 1 FROM plan_dir me WHERE me.external_id = ?1 AND me.status = :dir_ok"
        " AND me.kind IN (:user, :contact) AND me.name_lower IS NOT NULL"
        " AND (SELECT count(*) FROM plan_dir d WHERE d.name_lower = me.name_lower"
        "   AND d.status = :dir_ok AND d.kind IN (:user, :contact))"
        " + (SELECT count(*) FROM names n WHERE n.name_lower = me.name_lower"
        "   AND NOT EXISTS (SELECT 1 FROM plan_dir d WHERE d.external_id = n.external_id)"
        "   AND NOT EXISTS (SELECT 1 FROM plan_gone g WHERE g.external_id = n.external_id)) > 1";
    return plan_has_row(st, sql, external_id);
}

enum dirconn_err state_unsent_clear(struct state *st, struct dirconn_error *err)
{
    return exec(st, "DELETE FROM unsent", "forgetting the objects not sent", err);
}

enum dirconn_err state_plan_save_verified(struct state *st, struct dirconn_error *err)
{
    static const char sql[] =
        "UPDATE objects SET record = i.record, hash = i.hash, dn = coalesce(i.dn, objects.dn),"
        " synced_at = CAST(strftime('%s', 'now') AS INTEGER)"
        " FROM plan_items i WHERE i.external_id = objects.external_id AND i.op = :match"
        " AND i.record IS NOT NULL;"
        /* the versions of the cloud copies compared and found equal (plan_note_same) */
        "UPDATE objects SET version = s.version FROM plan_same s"
        " WHERE s.external_id = objects.external_id;";
    return state_plan_exec(st, sql, "plan: saving the verified records", err);
}

enum dirconn_err state_plan_save_raw(struct state *st, struct dirconn_error *err)
{
    /* The upper externalId of the next chunk (plan_raw's key order), or none for the last. */
    static const char bound_sql[] = "SELECT external_id FROM plan_raw WHERE external_id > ?1"
                                    " ORDER BY external_id LIMIT 1 OFFSET ?2";
    /*
     * Only where the state holds the very record this plan built from the
     * entry (its hash, name and DN): a write that failed or was not made
     * leaves the old record, whose raw hash, if any, still describes it.
     * plan_raw drives the join (CROSS JOIN keeps it the outer loop) through a
     * range of its key, so each chunk reads its own rows: driven by plan_items,
     * every chunk read all of them. The last chunk has no upper bound.
     */
#define UPDATE_RAW(HI)                                                                             \
    "UPDATE objects SET raw_hash = r.raw, raw_for = objects.hash, raw_manager = r.manager_dn,"     \
    " raw_links = r.links FROM plan_raw r CROSS JOIN plan_items i ON i.external_id = "             \
    "r.external_id"                                                                                \
    " AND i.op IN (:add, :update, :match) WHERE objects.external_id = r.external_id"               \
    " AND r.external_id > :lo" HI " AND objects.hash = i.hash AND objects.name IS i.name"          \
    " AND objects.dn = i.dn AND objects.record IS NOT NULL AND r.raw IS NOT NULL"                  \
    " AND r.links IS NOT NULL AND (objects.raw_hash IS NOT r.raw OR objects.raw_for IS NOT"        \
    " objects.hash OR objects.raw_manager IS NOT r.manager_dn OR objects.raw_links IS NOT "        \
    "r.links)"
    static const char sql[] = UPDATE_RAW(" AND r.external_id <= :hi");
    static const char sql_last[] = UPDATE_RAW("");
#undef UPDATE_RAW
    sqlite3_stmt *bound = NULL, *upd = NULL, *upd_last = NULL;
    enum dirconn_err e = prepare(st, bound_sql, &bound, err);
    if (e == DIRCONN_OK)
        e = prepare(st, sql, &upd, err);
    if (e == DIRCONN_OK)
        e = prepare(st, sql_last, &upd_last, err);
    char *lo = strdup(""); /* below every externalId (never empty: the state's key) */
    if (e == DIRCONN_OK && lo == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    bool last = false;
    while (e == DIRCONN_OK && !last) {
        sqlite3_bind_text(bound, 1, lo, -1, SQLITE_STATIC);
        sqlite3_bind_int64(bound, 2, STATE_PLAN_SAVE_CHUNK - 1);
        int rc = sqlite3_step(bound);
        char *hi = rc == SQLITE_ROW ? col_text(bound, 0) : NULL;
        sqlite3_reset(bound);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            e = db_error(st, err, "plan: saving the raw hashes");
            break;
        }
        last = hi == NULL;
        e = state_begin(st, err);
        if (e != DIRCONN_OK) {
            free(hi);
            break;
        }
        sqlite3_stmt *u = last ? upd_last : upd;
        state_plan_bind(u);
        sqlite3_bind_text(u, sqlite3_bind_parameter_index(u, ":lo"), lo, -1, SQLITE_STATIC);
        if (!last)
            sqlite3_bind_text(u, sqlite3_bind_parameter_index(u, ":hi"), hi, -1, SQLITE_STATIC);
        rc = sqlite3_step(u);
        sqlite3_reset(u);
        if (rc != SQLITE_DONE) {
            e = db_error(st, err, "plan: saving the raw hashes");
            state_rollback(st);
        } else {
            e = state_commit(st, err);
        }
        free(lo);
        lo = hi;
    }
    free(lo);
    sqlite3_finalize(bound);
    sqlite3_finalize(upd);
    sqlite3_finalize(upd_last);
    return e;
}

enum dirconn_err state_plan_save_moves(struct state *st, struct dirconn_error *err)
{
    static const char sql[] =
        "UPDATE objects SET dn = i.dn FROM plan_items i WHERE i.moved"
        " AND i.external_id = objects.external_id AND i.op = :match AND i.dn IS NOT NULL"
        " AND objects.dn != i.dn";
    return state_plan_exec(st, sql, "plan: saving the moved objects", err);
}
