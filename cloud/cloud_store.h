/*
 * cloud_store.h - dirconn-cloud's SQLite state: organisations, connectors,
 * tokens, lease, connector state, reports and SCIM resources.
 *
 * One store is one connection, used by one thread only: the event loop thread has
 * ctx->store, the SCIM thread ctx->scim.store (cloud_http.c); a handler uses its
 * request's (req->st). Both open the same file. Every SQL statement
 * is prepared once at open time from CLOUD_STMT_MAP and fetched, reset and
 * with bindings cleared, by cloud_store_stmt(). WAL mode with
 * synchronous=NORMAL (or FULL with --db-sync full): a commit is in the WAL
 * file before the HTTP answer is sent, so acknowledged writes survive kill -9
 * of the process (not a power loss unless FULL).
 */
#ifndef DIRCONN_CLOUD_STORE_H
#define DIRCONN_CLOUD_STORE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "connector/core/error.h"

/* XX(name, sql) - every statement the cloud runs. */
#define CLOUD_STMT_MAP(XX)                                                                         \
    XX(BEGIN, "BEGIN IMMEDIATE")                                                                   \
    XX(COMMIT, "COMMIT")                                                                           \
    XX(ROLLBACK, "ROLLBACK")                                                                       \
    XX(SAVEPOINT, "SAVEPOINT op")                                                                  \
    XX(RELEASE, "RELEASE op")                                                                      \
    XX(ROLLBACK_TO, "ROLLBACK TO op")                                                              \
    XX(ORG_INSERT, "INSERT OR IGNORE INTO orgs(name) VALUES(?1)")                                  \
    XX(ORG_GET, "SELECT fenced_rejections, state, state_version FROM orgs WHERE name=?1")          \
    XX(ORG_FENCED_INC, "UPDATE orgs SET fenced_rejections=fenced_rejections+1 WHERE name=?1")      \
    XX(ORG_STATE_SET, "UPDATE orgs SET state=?2, state_version=state_version+1 WHERE name=?1")     \
    XX(LEASE_GET, "SELECT holder, duration_s, acquire_ms, renew_ms, transitions, rv "              \
                  "FROM orgs WHERE name=?1")                                                       \
    XX(LEASE_SET, "UPDATE orgs SET holder=?2, duration_s=?3, acquire_ms=?4, renew_ms=?5, "         \
                  "transitions=?6, rv=rv+1 WHERE name=?1")                                         \
    XX(CONN_INSERT, "INSERT INTO connectors(id, org, name, host, secret_hash, registered_ms) "     \
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)")                                              \
    XX(CONN_GET, "SELECT id, org, name, host, secret_hash, registered_ms, last_seen_ms, version "  \
                 "FROM connectors WHERE id=?1")                                                    \
    XX(CONN_LIST, "SELECT id, org, name, host, secret_hash, registered_ms, last_seen_ms, version " \
                  "FROM connectors WHERE org=?1 ORDER BY registered_ms, id")                       \
    XX(CONN_DELETE, "DELETE FROM connectors WHERE id=?1")                                          \
    XX(CONN_SECRET_SET, "UPDATE connectors SET secret_hash=?2 WHERE id=?1")                        \
    XX(CONN_SEEN, "UPDATE connectors SET last_seen_ms=?2, version=coalesce(?3, version) "          \
                  "WHERE id=?1 AND (last_seen_ms IS NULL OR last_seen_ms<?2-1000 OR "              \
                  "(?3 IS NOT NULL AND (version IS NULL OR version<>?3)))")                        \
    XX(CONN_COUNT, "SELECT count(*) FROM connectors WHERE org=?1")                                 \
    XX(TOKEN_INSERT, "INSERT INTO tokens(hash, org, connector_id, expires_ms) "                    \
                     "VALUES(?1, ?2, ?3, ?4)")                                                     \
    XX(TOKEN_GET, "SELECT hash, org, connector_id, expires_ms FROM tokens WHERE hash=?1")          \
    XX(TOKEN_DELETE_CONN, "DELETE FROM tokens WHERE connector_id=?1")                              \
    XX(TOKEN_PURGE, "DELETE FROM tokens WHERE expires_ms<?1")                                      \
    XX(PENDING_SET, "INSERT OR REPLACE INTO pending_secrets(connector_id, secret_hash, "           \
                    "created_ms) VALUES(?1, ?2, ?3)")                                              \
    XX(PENDING_GET, "SELECT secret_hash FROM pending_secrets WHERE connector_id=?1")               \
    XX(PENDING_DELETE, "DELETE FROM pending_secrets WHERE connector_id=?1")                        \
    XX(HAMODE_GET, "SELECT mode, recorded_ms, recorded_by FROM org_ha_modes WHERE org=?1")         \
    XX(HAMODE_SET, "INSERT OR REPLACE INTO org_ha_modes(org, mode, recorded_ms, recorded_by) "     \
                   "VALUES(?1, ?2, ?3, ?4)")                                                       \
    XX(HAMODE_DELETE, "DELETE FROM org_ha_modes WHERE org=?1")                                     \
    XX(REPORT_INSERT, "INSERT INTO reports(org, connector_id, received_ms, body) "                 \
                      "VALUES(?1, ?2, ?3, ?4)")                                                    \
    XX(REPORT_LIST, "SELECT seq, connector_id, received_ms, body FROM reports WHERE org=?1 "       \
                    "AND (?2 IS NULL OR connector_id=?2) ORDER BY seq DESC LIMIT ?3")              \
    XX(RES_INSERT, "INSERT INTO resources(org, kind, id, user_name_lc, external_id, "              \
                   "display_name_lc, version, created_ms, modified_ms, body) "                     \
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?8)")                                \
    XX(RES_UPDATE, "UPDATE resources SET user_name_lc=?3, external_id=?4, display_name_lc=?5, "    \
                   "version=version+1, modified_ms=?6, body=?7 WHERE org=?1 AND id=?2")            \
    XX(RES_GET, "SELECT kind, version, created_ms, modified_ms, body FROM resources "              \
                "WHERE org=?1 AND id=?2")                                                          \
    XX(RES_DELETE, "DELETE FROM resources WHERE org=?1 AND id=?2")                                 \
    XX(RES_BY_USERNAME, "SELECT id FROM resources WHERE org=?1 AND kind=0 AND user_name_lc=?2")    \
    XX(RES_COUNT, "SELECT count(*) FROM resources WHERE org=?1 AND kind=?2")                       \
    XX(RES_PAGE, "SELECT id FROM resources WHERE org=?1 AND kind=?2 ORDER BY rowid "               \
                 "LIMIT ?3 OFFSET ?4")                                                             \
    XX(RES_SCAN, "SELECT id FROM resources WHERE org=?1 AND kind=?2 ORDER BY rowid")               \
    XX(RES_SCAN_EXT, "SELECT id FROM resources WHERE org=?1 AND kind=?2 AND external_id=?3 "       \
                     "ORDER BY rowid")                                                             \
    XX(RES_SCAN_USERNAME, "SELECT id FROM resources WHERE org=?1 AND kind=?2 AND "                 \
                          "user_name_lc=?3 ORDER BY rowid")                                        \
    XX(RES_SCAN_DISPLAY, "SELECT id FROM resources WHERE org=?1 AND kind=?2 AND "                  \
                         "display_name_lc=?3 ORDER BY rowid")                                      \
    XX(RES_SCAN_ID, "SELECT id FROM resources WHERE org=?1 AND kind=?2 AND id=?3")                 \
    XX(RES_SCAN_EMAIL, "SELECT DISTINCT r.id FROM res_emails e JOIN resources r "                  \
                       "ON r.org=e.org AND r.id=e.id WHERE e.org=?1 AND r.kind=?2 AND "            \
                       "e.value_lc=?3 ORDER BY r.rowid")                                           \
    XX(EMAIL_INSERT, "INSERT INTO res_emails(org, value_lc, id) VALUES(?1, ?2, ?3)")               \
    XX(EMAIL_DELETE, "DELETE FROM res_emails WHERE org=?1 AND id=?2")                              \
    XX(MEMBER_INSERT, "INSERT OR IGNORE INTO group_members(org, group_id, member_id, kind) "       \
                      "VALUES(?1, ?2, ?3, ?4)")                                                    \
    XX(MEMBER_DELETE, "DELETE FROM group_members WHERE org=?1 AND group_id=?2 AND member_id=?3")   \
    XX(MEMBER_DELETE_GROUP, "DELETE FROM group_members WHERE org=?1 AND group_id=?2")              \
    XX(MEMBER_GET, "SELECT kind FROM group_members WHERE org=?1 AND group_id=?2 AND member_id=?3") \
    XX(MEMBER_LIST, "SELECT member_id, kind FROM group_members WHERE org=?1 AND group_id=?2 "      \
                    "ORDER BY rowid")                                                              \
    XX(MEMBER_OF, "SELECT m.group_id, json_extract(r.body, '$.displayName') "                      \
                  "FROM group_members m JOIN resources r "                                         \
                  "ON r.org=m.org AND r.id=m.group_id WHERE m.org=?1 AND m.member_id=?2 "          \
                  "ORDER BY r.rowid")                                                              \
    XX(MEMBER_GROUPS_OF, "SELECT group_id FROM group_members WHERE org=?1 AND member_id=?2")       \
    XX(PASSWORD_SET, "INSERT INTO user_passwords(org, id, salt, hash, iterations, set_ms, "        \
                     "changes) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT(org, id) DO UPDATE "  \
                     "SET salt=?3, hash=?4, iterations=?5, set_ms=?6, changes=changes+1")          \
    XX(PASSWORD_GET, "SELECT salt, hash, iterations, set_ms, changes FROM user_passwords "         \
                     "WHERE org=?1 AND id=?2")                                                     \
    XX(PASSWORD_DELETE, "DELETE FROM user_passwords WHERE org=?1 AND id=?2")

enum cloud_stmt {
#define CLOUD_STMT_ENUM(name, sql) CLOUD_STMT_##name,
    CLOUD_STMT_MAP(CLOUD_STMT_ENUM)
#undef CLOUD_STMT_ENUM
        CLOUD_STMT_MAX
};

struct cloud_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[CLOUD_STMT_MAX];
    bool in_tx;
};

/*
 * cloud_store_open - open or create the database at path, apply the schema
 * (idempotent), set WAL and synchronous (full=true: FULL, else NORMAL) and
 * prepare every statement. Returns DIRCONN_OK or DIRCONN_ESTATE with the
 * SQLite message in err. On failure the store is closed.
 */
enum dirconn_err cloud_store_open(struct cloud_store *st, const char *path, bool full,
                                  struct dirconn_error *err);

/* cloud_store_close - finalize statements, checkpoint and close. Safe on a zeroed store. */
void cloud_store_close(struct cloud_store *st);

/* cloud_store_stmt - the prepared statement, reset and with bindings cleared. */
sqlite3_stmt *cloud_store_stmt(struct cloud_store *st, enum cloud_stmt which);

/*
 * cloud_store_exec - step a statement that returns no rows (after binding).
 * Returns the sqlite result (SQLITE_DONE on success) and resets the statement.
 */
int cloud_store_exec(struct cloud_store *st, sqlite3_stmt *stmt);

/* cloud_store_begin / commit / rollback - one write transaction; return SQLITE_OK or an error. */
int cloud_store_begin(struct cloud_store *st);
int cloud_store_commit(struct cloud_store *st);
void cloud_store_rollback(struct cloud_store *st);

/* cloud_store_errmsg - the last SQLite error text. */
const char *cloud_store_errmsg(struct cloud_store *st);

#endif
