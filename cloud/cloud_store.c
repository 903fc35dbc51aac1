/* cloud_store.c - SQLite schema and prepared statements of dirconn-cloud. */
#include "cloud/cloud_store.h"

#include <stdio.h>
#include <string.h>

static const char *const stmt_sql[] = {
#define CLOUD_STMT_SQL(name, sql) sql,
    CLOUD_STMT_MAP(CLOUD_STMT_SQL)
#undef CLOUD_STMT_SQL
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS orgs("
    "  name TEXT PRIMARY KEY,"
    "  fenced_rejections INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT '{}',"
    "  state_version INTEGER NOT NULL DEFAULT 0,"
    "  holder TEXT, duration_s INTEGER NOT NULL DEFAULT 0,"
    "  acquire_ms INTEGER, renew_ms INTEGER,"
    "  transitions INTEGER NOT NULL DEFAULT 0,"
    "  rv INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE IF NOT EXISTS connectors("
    "  id TEXT PRIMARY KEY, org TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL,"
    "  secret_hash BLOB NOT NULL, registered_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER, version TEXT);"
    "CREATE INDEX IF NOT EXISTS connectors_org ON connectors(org);"
    "CREATE TABLE IF NOT EXISTS tokens("
    "  hash BLOB PRIMARY KEY, org TEXT NOT NULL, connector_id TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tokens_connector ON tokens(connector_id);"
    /* A secret issued to a connector that rotates its own secret: it replaces secret_hash
     * the first time it obtains a token (docs/cloud-api.md "Connectors"). A table of its own,
     * so that databases written before it need no migration. */
    "CREATE TABLE IF NOT EXISTS pending_secrets("
    "  connector_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, created_ms INTEGER NOT NULL);"
    /* The organisation's HA mode (docs/cloud-api.md "HA mode"); no row: not recorded. A table
     * of its own, like pending_secrets. */
    "CREATE TABLE IF NOT EXISTS org_ha_modes("
    "  org TEXT PRIMARY KEY, mode TEXT NOT NULL, recorded_ms INTEGER NOT NULL,"
    "  recorded_by TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS reports("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, connector_id TEXT NOT NULL,"
    "  received_ms INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS reports_org ON reports(org, seq);"
    "CREATE TABLE IF NOT EXISTS resources("
    "  org TEXT NOT NULL, kind INTEGER NOT NULL, id TEXT NOT NULL,"
    "  user_name_lc TEXT, external_id TEXT, display_name_lc TEXT,"
    "  version INTEGER NOT NULL, created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,"
    "  body TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS resources_id ON resources(org, id);"
    "CREATE INDEX IF NOT EXISTS resources_kind ON resources(org, kind);"
    "CREATE UNIQUE INDEX IF NOT EXISTS resources_username ON resources(org, user_name_lc)"
    "  WHERE kind=0;"
    "CREATE INDEX IF NOT EXISTS resources_external ON resources(org, kind, external_id);"
    "CREATE INDEX IF NOT EXISTS resources_display ON resources(org, kind, display_name_lc);"
    "CREATE TABLE IF NOT EXISTS res_emails("
    "  org TEXT NOT NULL, value_lc TEXT NOT NULL, id TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS res_emails_value ON res_emails(org, value_lc);"
    "CREATE INDEX IF NOT EXISTS res_emails_id ON res_emails(org, id);"
    /* A group's members are rows apart from its document (whose body holds no "members"):
     * a member added or removed writes one row, not the whole list. kind is the member's
     * resource kind when it was added (0 User, 1 Group), kept for a member deleted since
     * without --delete-cascades; rowid is the order the members were added in. */
    "CREATE TABLE IF NOT EXISTS group_members("
    "  org TEXT NOT NULL, group_id TEXT NOT NULL, member_id TEXT NOT NULL,"
    "  kind INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS group_members_key ON group_members(org, group_id, "
    "member_id);"
    "CREATE INDEX IF NOT EXISTS group_members_by_member ON group_members(org, member_id, "
    "group_id);"
    /* The salted hash of a User's password (cloud_password.h); a table of its own, so that
     * databases written before it need no migration. */
    "CREATE TABLE IF NOT EXISTS user_passwords("
    "  org TEXT NOT NULL, id TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,"
    "  iterations INTEGER NOT NULL, set_ms INTEGER NOT NULL, changes INTEGER NOT NULL,"
    "  PRIMARY KEY(org, id)) WITHOUT ROWID;";

/*
 * Databases written before group_members kept each group's members in its document (and a
 * "members" table as the index by member): move them to group_members in their order, take
 * them out of the documents and drop the old table, in one transaction. A no-op otherwise.
 */
static const char migrate_members_sql[] =
    "INSERT OR IGNORE INTO group_members(org, group_id, member_id, kind) "
    "  SELECT r.org, r.id, json_extract(j.value, '$.value'),"
    "         CASE json_extract(j.value, '$.type') WHEN 'Group' THEN 1 ELSE 0 END"
    "  FROM resources r, json_each(r.body, '$.members') j WHERE r.kind = 1"
    "  ORDER BY r.rowid, j.key;"
    "UPDATE resources SET body = json_remove(body, '$.members') "
    "  WHERE kind = 1 AND json_type(body, '$.members') IS NOT NULL;"
    "DROP TABLE members;";

static int migrate_members(sqlite3 *db, char **msg)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(
        db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'members'", -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    bool old = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    if (!old)
        return SQLITE_OK;
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, migrate_members_sql, NULL, NULL, msg);
    if (rc == SQLITE_OK)
        return sqlite3_exec(db, "COMMIT", NULL, NULL, msg);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

enum dirconn_err cloud_store_open(struct cloud_store *st, const char *path, bool full,
                                  struct dirconn_error *err)
{
    memset(st, 0, sizeof(*st));
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(st->db, 5000);
    char *msg = NULL;
    char pragmas[160];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;",
             full ? "FULL" : "NORMAL");
    rc = sqlite3_exec(st->db, pragmas, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, schema_sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = migrate_members(st->db, &msg);
    if (rc != SQLITE_OK) {
        dirconn_error_set(err, DIRCONN_ESTATE, "%s: %s (sqlite %d)", path,
                          msg != NULL ? msg : sqlite3_errstr(rc), rc);
        sqlite3_free(msg);
        cloud_store_close(st);
        return DIRCONN_ESTATE;
    }
    for (int i = 0; i < CLOUD_STMT_MAX; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[i],
                                NULL);
        if (rc != SQLITE_OK) {
            dirconn_error_set(err, DIRCONN_ESTATE, "%s: preparing statement %d: %s (sqlite %d)",
                              path, i, sqlite3_errmsg(st->db), rc);
            cloud_store_close(st);
            return DIRCONN_ESTATE;
        }
    }
    return DIRCONN_OK;
fail:
    dirconn_error_set(err, DIRCONN_ESTATE, "%s: %s (sqlite %d)", path,
                      st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc), rc);
    cloud_store_close(st);
    return DIRCONN_ESTATE;
}

void cloud_store_close(struct cloud_store *st)
{
    for (int i = 0; i < CLOUD_STMT_MAX; i++) {
        if (st->stmts[i] != NULL)
            sqlite3_finalize(st->stmts[i]);
        st->stmts[i] = NULL;
    }
    if (st->db != NULL)
        sqlite3_close(st->db);
    st->db = NULL;
}

sqlite3_stmt *cloud_store_stmt(struct cloud_store *st, enum cloud_stmt which)
{
    sqlite3_stmt *s = st->stmts[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

int cloud_store_exec(struct cloud_store *st, sqlite3_stmt *stmt)
{
    (void)st;
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc;
}

int cloud_store_begin(struct cloud_store *st)
{
    int rc = cloud_store_exec(st, cloud_store_stmt(st, CLOUD_STMT_BEGIN));
    if (rc == SQLITE_DONE) {
        st->in_tx = true;
        return SQLITE_OK;
    }
    return rc;
}

int cloud_store_commit(struct cloud_store *st)
{
    int rc = cloud_store_exec(st, cloud_store_stmt(st, CLOUD_STMT_COMMIT));
    if (rc == SQLITE_DONE) {
        st->in_tx = false;
        return SQLITE_OK;
    }
    cloud_store_rollback(st);
    return rc;
}

void cloud_store_rollback(struct cloud_store *st)
{
    if (!st->in_tx)
        return;
    if (sqlite3_get_autocommit(st->db) == 0)
        cloud_store_exec(st, cloud_store_stmt(st, CLOUD_STMT_ROLLBACK));
    st->in_tx = false;
}

const char *cloud_store_errmsg(struct cloud_store *st)
{
    return sqlite3_errmsg(st->db);
}
