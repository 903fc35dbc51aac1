/* Unit tests for connector/state.c on a real SQLite file in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/state.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dirconn-state-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    strcat(dir, "/sub");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strlen(dir) - 4), dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct state *open_ok(void)
{
    struct state *st = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (state_open(dir, &st, &err) != DIRCONN_OK)
        fail_msg("%s", err.msg);
    return st;
}

static void test_objects_survive_reopen(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(state_path(st), &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);

    struct state_object o = {.external_id = "00112233-4455-6677-8899-aabbccddeeff",
                             .kind = 0,
                             .dn = "CN=Zoë,OU=Employees,DC=x",
                             .cloud_id = "c-1",
                             .name = "zoe@example.com",
                             .hash = "abab",
                             .record = "{\"userName\":\"zoe@example.com\"}",
                             .origin = STATE_ORIGIN_ADOPTED,
                             .synced_at = 1700000000,
                             .version = "W/\"7\""};
    assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    o.external_id = "g-1";
    o.kind = 1;
    o.cloud_id = "c-2";
    o.hash = NULL;
    o.record = NULL;
    o.version = NULL;
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    assert_int_equal(state_commit(st, NULL), DIRCONN_OK);

    /* A rolled back transaction leaves nothing. */
    assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
    o.external_id = "rolled-back";
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    state_rollback(st);
    state_close(st);

    st = open_ok();
    assert_int_equal(state_object_count(st, -1), 2);
    assert_int_equal(state_object_count(st, 1), 1);
    struct state_object got;
    bool found = false;
    assert_int_equal(
        state_object_get(st, "00112233-4455-6677-8899-aabbccddeeff", &got, &found, NULL),
        DIRCONN_OK);
    assert_true(found);
    assert_string_equal(got.dn, "CN=Zoë,OU=Employees,DC=x");
    assert_string_equal(got.cloud_id, "c-1");
    assert_string_equal(got.hash, "abab");
    assert_string_equal(got.record, "{\"userName\":\"zoe@example.com\"}");
    assert_int_equal(got.origin, STATE_ORIGIN_ADOPTED);
    assert_int_equal(got.synced_at, 1700000000);
    assert_string_equal(got.version, "W/\"7\"");
    state_object_clear(&got);
    assert_int_equal(state_object_find_cloud_id(st, "c-2", &got, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(got.external_id, "g-1");
    assert_null(got.hash);
    assert_null(got.version);
    state_object_clear(&got);
    assert_int_equal(state_object_find_dn(st, "cn=zoë,ou=employees,dc=x", &got, &found, NULL),
                     DIRCONN_OK);
    assert_true(found);
    state_object_clear(&got);
    assert_int_equal(state_object_get(st, "rolled-back", &got, &found, NULL), DIRCONN_OK);
    assert_false(found);
    /* The kind and cloud id alone, as a member or a manager is resolved. */
    int kind = -1;
    char *cloud_id = NULL;
    assert_int_equal(state_object_cloud_id(st, "g-1", &kind, &cloud_id, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_int_equal(kind, 1);
    assert_string_equal(cloud_id, "c-2");
    free(cloud_id);
    assert_int_equal(state_object_cloud_id(st, "rolled-back", &kind, &cloud_id, &found, NULL),
                     DIRCONN_OK);
    assert_false(found);
    assert_null(cloud_id);
    /* Without the record (what the plan reads of every object), and the record alone. */
    bool has_record = false;
    assert_int_equal(state_object_head(st, "00112233-4455-6677-8899-aabbccddeeff", &got, &found,
                                       &has_record, NULL, NULL),
                     DIRCONN_OK);
    assert_true(found);
    assert_true(has_record);
    assert_null(got.record);
    assert_string_equal(got.hash, "abab");
    assert_string_equal(got.version, "W/\"7\"");
    state_object_clear(&got);
    char *record = NULL;
    assert_int_equal(state_object_record(st, "00112233-4455-6677-8899-aabbccddeeff", &record, NULL),
                     DIRCONN_OK);
    assert_string_equal(record, "{\"userName\":\"zoe@example.com\"}");
    free(record);
    assert_int_equal(state_object_head(st, "g-1", &got, &found, &has_record, NULL, NULL),
                     DIRCONN_OK);
    assert_true(found);
    assert_false(has_record);
    assert_string_equal(got.cloud_id, "c-2");
    state_object_clear(&got);
    assert_int_equal(state_object_record(st, "g-1", &record, NULL), DIRCONN_OK);
    assert_null(record);
    assert_int_equal(state_object_head(st, "rolled-back", &got, &found, &has_record, NULL, NULL),
                     DIRCONN_OK);
    assert_false(found);
    assert_false(has_record);
    assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
    o.external_id = "not-sent";
    o.cloud_id = NULL;
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    assert_int_equal(state_commit(st, NULL), DIRCONN_OK);
    assert_int_equal(state_object_cloud_id(st, "not-sent", &kind, &cloud_id, &found, NULL),
                     DIRCONN_OK);
    assert_true(found);
    assert_null(cloud_id);
    assert_int_equal(state_object_delete(st, "not-sent", NULL), DIRCONN_OK);
    assert_int_equal(state_object_delete(st, "g-1", NULL), DIRCONN_OK);
    assert_int_equal(state_object_delete(st, "g-1", NULL), DIRCONN_OK);
    assert_int_equal(state_object_count(st, -1), 1);
    state_close(st);
}

static int count_cb(const struct state_object *o, void *arg)
{
    (void)o;
    return ++*(int *)arg >= 3 ? 1 : 0;
}

static void test_foreach_stops(void **state)
{
    (void)state;
    struct state *st = open_ok();
    char id[16];
    assert_int_equal(state_begin(st, NULL), DIRCONN_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "id-%02d", i);
        struct state_object o = {.external_id = id, .kind = 2, .dn = "CN=c", .cloud_id = id};
        assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    }
    assert_int_equal(state_commit(st, NULL), DIRCONN_OK);
    int n = 0;
    assert_int_equal(state_object_foreach(st, 2, count_cb, &n, NULL), DIRCONN_EFAIL);
    assert_int_equal(n, 3);
    state_close(st);
}

static void test_watermarks_history_settings(void **state)
{
    (void)state;
    struct state *st = open_ok();
    unsigned char cookie[5] = {0, 1, 2, 0xff, 0};
    struct state_watermark wm = {.partition = "DC=x",
                                 .method = "dirsync",
                                 .value = cookie,
                                 .len = sizeof(cookie),
                                 .scope_hash = "abc"};
    assert_int_equal(state_watermark_put(st, &wm, NULL), DIRCONN_OK);
    struct state_watermark got;
    bool found = false;
    assert_int_equal(state_watermark_get(st, "dc=X", &got, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_int_equal(got.len, 5);
    assert_memory_equal(got.value, cookie, 5);
    assert_string_equal(got.method, "dirsync");
    assert_null(got.dc);
    state_watermark_clear(&got);
    assert_int_equal(state_watermark_delete_all(st, NULL), DIRCONN_OK);
    assert_int_equal(state_watermark_get(st, "DC=x", &got, &found, NULL), DIRCONN_OK);
    assert_false(found);

    for (int i = 0; i < 3; i++) {
        struct state_history h = {.type = i == 2 ? "dry-run" : "full",
                                  .started = 100 + i,
                                  .ended = 200 + i,
                                  .status = "success",
                                  .added = i};
        assert_int_equal(state_history_add(st, &h, NULL), DIRCONN_OK);
        assert_true(h.id > 0);
    }
    struct state_history *list = NULL;
    size_t n = 0;
    assert_int_equal(state_history_list(st, 2, &list, &n, NULL), DIRCONN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].type, "dry-run");
    assert_int_equal(list[0].added, 2);
    assert_int_equal(list[1].started, 101);
    state_history_free(list, n);

    char *v = NULL;
    assert_int_equal(state_setting_get(st, "override", &v, NULL), DIRCONN_OK);
    assert_null(v);
    assert_int_equal(state_setting_set(st, "override", "1", NULL), DIRCONN_OK);
    assert_int_equal(state_setting_get(st, "override", &v, NULL), DIRCONN_OK);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(state_setting_set(st, "override", NULL, NULL), DIRCONN_OK);
    assert_int_equal(state_setting_get(st, "override", &v, NULL), DIRCONN_OK);
    assert_null(v);
    state_close(st);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    struct state *st = open_ok();
    char path[128];
    snprintf(path, sizeof(path), "%s", state_path(st));
    state_close(st);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(state_open(dir, &st, &err), DIRCONN_ESTATE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "schema version 99 is newer"));
    assert_non_null(strstr(err.msg, path));
}

static int retry_kind_of(void *arg, const char *id, const char *dn, int kind)
{
    (void)dn;
    if (strcmp(id, "id-1") == 0)
        *(int *)arg = kind;
    return 0;
}

/* The retry list's kind: -1 for the rows of a version 4 state, kept by a put without one. */
static void test_retry_kind(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct state *st = open_ok();
    assert_int_equal(state_retry_put(st, "id-1", "CN=One", 1, "500", &err), DIRCONN_OK);
    char path[128];
    snprintf(path, sizeof(path), "%s", state_path(st));
    state_close(st);
    /* back to schema version 4, which had no kind */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "ALTER TABLE retry DROP COLUMN kind;"
            " ALTER TABLE objects DROP COLUMN version;"
            " ALTER TABLE objects DROP COLUMN raw_hash; ALTER TABLE objects DROP COLUMN raw_for;"
            " ALTER TABLE objects DROP COLUMN raw_manager; ALTER TABLE objects DROP COLUMN "
            "raw_links; DROP TABLE unsent;"
            " PRAGMA user_version = 4",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st = open_ok();
    int kind = 99;
    assert_int_equal(state_retry_foreach(st, retry_kind_of, &kind, &err), DIRCONN_OK);
    assert_int_equal(kind, -1);
    assert_int_equal(state_retry_put(st, "id-1", NULL, 2, "500 again", &err), DIRCONN_OK);
    assert_int_equal(state_retry_foreach(st, retry_kind_of, &kind, &err), DIRCONN_OK);
    assert_int_equal(kind, 2);
    assert_int_equal(state_retry_put(st, "id-1", NULL, -1, "and again", &err), DIRCONN_OK);
    assert_int_equal(state_retry_foreach(st, retry_kind_of, &kind, &err), DIRCONN_OK);
    assert_int_equal(kind, 2);
    assert_int_equal(state_retry_count(st), 1);
    state_close(st);
}

/*
 * A version 5 state (no versions) is migrated: its objects are kept without a version, so
 * that the next full sync compares each with a whole read of its cloud copy.
 */
static void test_version_migration(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct state_object o = {.external_id = "u-1",
                             .kind = 0,
                             .dn = "CN=One",
                             .cloud_id = "c-1",
                             .name = "one@example.com",
                             .hash = "abab",
                             .record = "{}",
                             .version = "W/\"3\""};
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    char path[128];
    snprintf(path, sizeof(path), "%s", state_path(st));
    state_close(st);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "ALTER TABLE objects DROP COLUMN version;"
            " ALTER TABLE objects DROP COLUMN raw_hash; ALTER TABLE objects DROP COLUMN raw_for;"
            " ALTER TABLE objects DROP COLUMN raw_manager; ALTER TABLE objects DROP COLUMN "
            "raw_links; DROP TABLE unsent;"
            " PRAGMA user_version = 5",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st = open_ok();
    struct state_object got;
    bool found = false;
    assert_int_equal(state_object_get(st, "u-1", &got, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(got.record, "{}");
    assert_string_equal(got.hash, "abab");
    assert_null(got.version);
    assert_false(state_object_has_version(st));
    free(got.version);
    got.version = strdup("W/\"4\"");
    assert_int_equal(state_object_put(st, &got, NULL), DIRCONN_OK);
    assert_true(state_object_has_version(st));
    state_object_clear(&got);
    state_close(st);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), STATE_SCHEMA_VERSION);
    assert_int_equal(STATE_SCHEMA_VERSION, 8);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The object map rebuilt from the cloud inventory after an HA takeover (state_reconcile_*). */
static void put_row(struct state *st, const char *ext, int kind, const char *dn, const char *id,
                    const char *version, enum state_origin origin)
{
    struct dirconn_error err;
    struct state_object o = {.external_id = (char *)ext,
                             .kind = kind,
                             .dn = (char *)dn,
                             .cloud_id = (char *)id,
                             .name = "n",
                             .hash = "h",
                             .record = "{\"r\":1}",
                             .origin = origin,
                             .synced_at = 7,
                             .version = (char *)version};
    assert_int_equal(state_object_put(st, &o, &err), DIRCONN_OK);
}

static void test_reconcile(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    dirconn_error_clear(&err);
    /* kept: same id and version; moved: another id; stale: another version; gone: not listed;
     * nover: no version known; other: a contact (kind 2) not in the kinds reconciled */
    put_row(st, "kept", 0, "CN=Kept", "c-kept", "v1", STATE_ORIGIN_CREATED);
    put_row(st, "moved", 0, "CN=Moved", "c-old", "v1", STATE_ORIGIN_ADOPTED);
    put_row(st, "stale", 1, "CN=Stale", "c-stale", "v1", STATE_ORIGIN_CREATED);
    put_row(st, "gone", 0, "CN=Gone", "c-gone", "v1", STATE_ORIGIN_CREATED);
    put_row(st, "nover", 0, "CN=NoVer", "c-nover", NULL, STATE_ORIGIN_CREATED);
    put_row(st, "other", 2, "CN=Other", "c-other", "v1", STATE_ORIGIN_CREATED);
    struct state_reconcile r;
    assert_int_equal(state_begin(st, &err), DIRCONN_OK);
    assert_int_equal(state_reconcile_begin(st, &r, &err), DIRCONN_OK);
    assert_int_equal(state_reconcile_object(st, &r, 0, "kept", "c-kept", "k", "v1", &err),
                     DIRCONN_OK);
    assert_int_equal(state_reconcile_object(st, &r, 0, "moved", "c-new", "m", "v1", &err),
                     DIRCONN_OK);
    assert_int_equal(state_reconcile_object(st, &r, 1, "stale", "c-stale", "s", "v2", &err),
                     DIRCONN_OK);
    assert_int_equal(state_reconcile_object(st, &r, 0, "nover", "c-nover", "x", NULL, &err),
                     DIRCONN_OK);
    assert_int_equal(state_reconcile_object(st, &r, 1, "new", "c-brand", "g", "v9", &err),
                     DIRCONN_OK);
    /* a second cloud object with the same externalId: the first one listed wins */
    assert_int_equal(state_reconcile_object(st, &r, 1, "new", "c-dup", "g", "v9", &err),
                     DIRCONN_OK);
    assert_int_equal(state_reconcile_end(st, &r, 1u << 0 | 1u << 1, &err), DIRCONN_OK);
    assert_int_equal(state_commit(st, &err), DIRCONN_OK);
    assert_int_equal(r.objects, 5);
    assert_int_equal(r.changed, 4); /* moved, stale, nover, new */
    assert_int_equal(r.removed, 1); /* gone */

    struct state_object o;
    bool found = false;
    assert_int_equal(state_object_get(st, "kept", &o, &found, &err), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(o.record, "{\"r\":1}"); /* kept as it was: acknowledged */
    assert_string_equal(o.hash, "h");
    assert_string_equal(o.dn, "CN=Kept");
    state_object_clear(&o);

    assert_int_equal(state_object_get(st, "moved", &o, &found, &err), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(o.cloud_id, "c-new");
    assert_string_equal(o.version, "v1");
    assert_null(o.record); /* not acknowledged: the next change is compared with the cloud */
    assert_null(o.hash);
    assert_string_equal(o.dn, "CN=Moved"); /* the DN known is kept */
    assert_int_equal(o.origin, STATE_ORIGIN_ADOPTED);
    state_object_clear(&o);

    assert_int_equal(state_object_get(st, "stale", &o, &found, &err), DIRCONN_OK);
    assert_string_equal(o.version, "v2");
    assert_null(o.record);
    assert_string_equal(o.dn, "CN=Stale");
    state_object_clear(&o);

    assert_int_equal(state_object_get(st, "nover", &o, &found, &err), DIRCONN_OK);
    assert_null(o.record); /* no version to vouch for the copy: not kept */
    state_object_clear(&o);

    assert_int_equal(state_object_get(st, "new", &o, &found, &err), DIRCONN_OK);
    assert_true(found);
    assert_int_equal(o.kind, 1);
    assert_string_equal(o.cloud_id, "c-brand");
    assert_string_equal(o.dn, ""); /* DN unknown */
    assert_null(o.record);
    assert_int_equal(o.origin, STATE_ORIGIN_CREATED);
    state_object_clear(&o);

    assert_int_equal(state_object_get(st, "gone", &o, &found, &err), DIRCONN_OK);
    assert_false(found); /* the cloud no longer holds it */
    assert_int_equal(state_object_get(st, "other", &o, &found, &err), DIRCONN_OK);
    assert_true(found); /* a kind not reconciled stays */
    state_object_clear(&o);

    /* the DN the directory gives later is recorded on the row */
    assert_int_equal(state_object_set_dn(st, "new", "CN=New,DC=x", &err), DIRCONN_OK);
    assert_int_equal(state_object_find_dn(st, "cn=new,dc=x", &o, &found, &err), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(o.external_id, "new");
    state_object_clear(&o);

    /* a walk that stops is rolled back whole */
    assert_int_equal(state_begin(st, &err), DIRCONN_OK);
    assert_int_equal(state_reconcile_begin(st, &r, &err), DIRCONN_OK);
    assert_int_equal(state_reconcile_end(st, &r, 1u << 0 | 1u << 1, &err), DIRCONN_OK);
    assert_int_equal(r.removed, 5);
    state_rollback(st);
    assert_int_equal(state_object_count(st, -1), 6);
    state_close(st);
}

/*
 * Schema 7: a raw hash holds only with the record it was recorded for (raw_for = hash);
 * a version 6 state is migrated in place with no raw hashes.
 */
static void test_raw_hash(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct state_object o = {.external_id = "u-1",
                             .kind = 0,
                             .dn = "CN=One",
                             .cloud_id = "c-1",
                             .name = "one@example.com",
                             .hash = "abab",
                             .record = "{}"};
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    struct state_raw sr;
    bool found = true;
    assert_int_equal(state_object_raw_get(st, "u-1", "r1", &sr, &found, NULL), DIRCONN_OK);
    assert_false(found);
    assert_int_equal(sqlite3_exec(state_db(st),
                                  "UPDATE objects SET raw_hash = 'r1', raw_for = 'abab',"
                                  " raw_manager = 'CN=Boss', raw_links = '{}'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(state_object_raw_get(st, "u-1", "r1", &sr, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(sr.name, "one@example.com");
    assert_string_equal(sr.manager_dn, "CN=Boss");
    state_raw_clear(&sr);
    /* the links recorded with it, as the plan reads them */
    char *links = NULL;
    bool has_record = false;
    struct state_object head;
    assert_int_equal(state_object_head(st, "u-1", &head, &found, &has_record, &links, NULL),
                     DIRCONN_OK);
    assert_true(found);
    assert_true(has_record);
    assert_null(head.record);
    assert_string_equal(head.hash, "abab");
    assert_string_equal(links, "{}");
    free(links);
    state_object_clear(&head);
    assert_int_equal(state_object_raw_get(st, "u-1", "r2", &sr, &found, NULL), DIRCONN_OK);
    assert_false(found);
    /* another record written (a put keeps the raw columns): the raw hash no longer holds */
    o.hash = "cdcd";
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    assert_int_equal(state_object_raw_get(st, "u-1", "r1", &sr, &found, NULL), DIRCONN_OK);
    assert_false(found);
    o.hash = "abab";
    assert_int_equal(state_object_put(st, &o, NULL), DIRCONN_OK);
    assert_int_equal(state_object_raw_get(st, "u-1", "r1", &sr, &found, NULL), DIRCONN_OK);
    assert_true(found);
    state_raw_clear(&sr);
    char path[128];
    snprintf(path, sizeof(path), "%s", state_path(st));
    state_close(st);
    /* back to schema 6: the migration adds the columns, empty */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE objects DROP COLUMN raw_hash;"
                                  " ALTER TABLE objects DROP COLUMN raw_for;"
                                  " ALTER TABLE objects DROP COLUMN raw_manager;"
                                  " ALTER TABLE objects DROP COLUMN raw_links;"
                                  " DROP TABLE unsent;"
                                  " PRAGMA user_version = 6",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = open_ok();
    assert_int_equal(state_object_raw_get(st, "u-1", "r1", &sr, &found, NULL), DIRCONN_OK);
    assert_false(found);
    struct state_object got;
    assert_int_equal(state_object_get(st, "u-1", &got, &found, NULL), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(got.hash, "abab");
    state_object_clear(&got);
    state_close(st);
}

static int pragma_int(struct state *st, const char *sql)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(state_db(st), sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* [connector] state_cache_size: the pragmas state_open applies, read back, and the bound. */
static void test_cache_size(void **state)
{
    (void)state;
    assert_int_equal(state_cache_size(), STATE_CACHE_DEFAULT_MIB);
    assert_int_equal(STATE_CACHE_DEFAULT_MIB, 16);
    struct state *st = open_ok();
    assert_int_equal(pragma_int(st, "PRAGMA main.cache_size"), -16 * 1024);
    assert_int_equal(pragma_int(st, "PRAGMA temp.cache_size"), -16 * 1024);
    assert_int_equal(pragma_int(st, "PRAGMA temp_store"), 1); /* FILE */
    state_close(st);

    state_set_cache_size(1);
    assert_int_equal(state_cache_size(), 1);
    st = open_ok();
    assert_int_equal(pragma_int(st, "PRAGMA cache_size"), -1024);
    assert_int_equal(pragma_int(st, "PRAGMA temp.cache_size"), -1024);
    /* 32 MB in a TEMP table: its pages spill to the temporary file, the cache stays bounded */
    assert_int_equal(sqlite3_exec(state_db(st),
                                  "CREATE TEMP TABLE big (v TEXT);"
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                  "WHERE i < 8000) INSERT INTO big SELECT printf('%.4000c', 'x') "
                                  "FROM n;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(pragma_int(st, "SELECT count(*) FROM temp.big"), 8000);
    int used = 0, hi = 0;
    assert_int_equal(sqlite3_db_status(state_db(st), SQLITE_DBSTATUS_CACHE_USED, &used, &hi, 0),
                     SQLITE_OK);
    assert_true(used < 4 * 1024 * 1024);
    state_close(st);

    /* an open handle keeps its size; a bad size restores the default */
    st = open_ok();
    state_set_cache_size(64);
    assert_int_equal(pragma_int(st, "PRAGMA cache_size"), -1024);
    state_close(st);
    st = open_ok();
    assert_int_equal(pragma_int(st, "PRAGMA cache_size"), -64 * 1024);
    state_close(st);
    state_set_cache_size(0);
    assert_int_equal(state_cache_size(), STATE_CACHE_DEFAULT_MIB);
}

/* The names table (kept by every run): objects in scope never sent, and conflict partners. */
struct name_rows {
    char got[4][64];
    int n;
    int stop_after; /* stop the walk after this many rows, 0 = never */
};

static int name_row(void *arg, const char *id, const char *dn)
{
    struct name_rows *r = arg;
    if (r->n < 4)
        snprintf(r->got[r->n], sizeof(r->got[0]), "%s %s", id, dn != NULL ? dn : "-");
    r->n++;
    return r->stop_after > 0 && r->n >= r->stop_after;
}

static void test_names(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    struct state_object o = {.external_id = "u-sent",
                             .kind = OBJECT_USER,
                             .dn = "cn=sent",
                             .cloud_id = "c1",
                             .name = "a@x"};
    assert_int_equal(state_object_put(st, &o, &err), DIRCONN_OK);
    assert_int_equal(sqlite3_exec(state_db(st),
                                  "INSERT INTO names VALUES ('u-sent', 0, 'cn=sent', 'a@x'),"
                                  " ('u-b', 0, 'cn=b', 'a@x'), ('u-a', 0, NULL, 'a@x'),"
                                  " ('g-1', 1, 'cn=g', 'group'), ('c-1', 2, 'cn=c', 'a@x');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    /* in scope and never sent, of one kind, ordered by externalId */
    struct name_rows r = {0};
    assert_int_equal(state_names_unsent_foreach(st, OBJECT_USER, name_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.got[0], "u-a -");
    assert_string_equal(r.got[1], "u-b cn=b");
    memset(&r, 0, sizeof(r));
    assert_int_equal(state_names_unsent_foreach(st, OBJECT_GROUP, name_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.got[0], "g-1 cn=g");
    /* the other objects with the same name, any kind, not the object itself */
    memset(&r, 0, sizeof(r));
    assert_int_equal(state_name_partners_foreach(st, "u-b", name_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.got[0], "c-1 cn=c");
    assert_string_equal(r.got[1], "u-a -");
    assert_string_equal(r.got[2], "u-sent cn=sent");
    memset(&r, 0, sizeof(r));
    assert_int_equal(state_name_partners_foreach(st, "g-1", name_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 0);
    /* a callback stops the walk */
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    assert_int_equal(state_name_partners_foreach(st, "u-b", name_row, &r, &err), DIRCONN_EFAIL);
    assert_int_equal(r.n, 1);
    state_close(st);
}

/* The number of rows the statements since the last call changed (sqlite3_total_changes). */
static int changed_since(struct state *st, int *mark)
{
    int now = sqlite3_total_changes(state_db(st));
    int d = now - *mark;
    *mark = now;
    return d;
}

/* The rows sql selects (one text column each), each followed by ";". */
static char *rows_dump(struct state *st, const char *sql)
{
    static char out[512];
    out[0] = '\0';
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(state_db(st), sql, -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        strcat(out, (const char *)sqlite3_column_text(s, 0));
        strcat(out, ";");
    }
    sqlite3_finalize(s);
    return out;
}

static char *names_dump(struct state *st)
{
    return rows_dump(st, "SELECT external_id || ' ' || kind || ' ' || coalesce(dn, '-') || ' ' ||"
                         " name_lower FROM names ORDER BY external_id");
}

static char *unsent_dump(struct state *st)
{
    return rows_dump(st, "SELECT external_id || ' ' || kind || ' ' || dn_lower FROM unsent"
                         " ORDER BY external_id");
}

/*
 * The objects in scope that a plan did not send (skipped, in a naming conflict) are kept by
 * DN: a full save writes them all, a partial one those it read, saw leave or whose DN it read;
 * a later run's resolver finds them unless it read them itself.
 */
/* A plan_dir row read with DN "CN=<ext upper case>" (dn_lower "cn=<ext>"). */
static void dir_row(struct state *st, const char *ext, enum object_kind kind,
                    enum plan_dir_status status)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(state_db(st),
                                        "INSERT INTO plan_dir (external_id, kind, dn, dn_lower,"
                                        " status) VALUES (?1, ?2, 'CN=' || upper(?1), 'cn=' || ?1,"
                                        " ?3)",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, ext, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, kind);
    sqlite3_bind_int(q, 3, status);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
}

static void test_unsent(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    sqlite3 *db = state_db(st);
    assert_int_equal(state_plan_schema(st, &err), DIRCONN_OK);
    dir_row(st, "u1", OBJECT_USER, PLAN_DIR_OK);
    dir_row(st, "u2", OBJECT_USER, PLAN_DIR_CONFLICT);
    dir_row(st, "u3", OBJECT_USER, PLAN_DIR_SKIP);
    dir_row(st, "g1", OBJECT_GROUP, PLAN_DIR_SKIP);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO unsent VALUES ('old', 0, 'cn=old')", NULL, NULL, NULL),
        SQLITE_OK);
    int mark = sqlite3_total_changes(db);
    assert_int_equal(state_plan_save_unsent(st, false, &err), DIRCONN_OK);
    assert_string_equal(unsent_dump(st), "g1 1 cn=g1;u2 0 cn=u2;u3 0 cn=u3;");
    assert_int_equal(changed_since(st, &mark), 4); /* "old" deleted, three inserted */
    assert_int_equal(state_plan_save_unsent(st, false, &err), DIRCONN_OK);
    assert_int_equal(changed_since(st, &mark), 0);
    /* this run read them: they are not known from the state */
    assert_false(state_unsent_has_dn(st, "cn=u3"));
    state_plan_drop(st);

    /* The next run, partial: u3 got its mail (sent), another object holds u2's DN, g1 left. */
    assert_int_equal(state_plan_schema(st, &err), DIRCONN_OK);
    assert_true(state_unsent_has_dn(st, "cn=u2"));
    assert_true(state_unsent_has_dn(st, "cn=u3"));
    assert_true(state_unsent_has_dn(st, "cn=g1"));
    assert_false(state_unsent_has_dn(st, "cn=u1")); /* sent */
    assert_true(state_unsent_has_dn(st, "CN=U2"));  /* compared in lower case, as plan_dir */
    assert_false(state_unsent_has_dn(st, "cn=u2,ou=x"));
    dir_row(st, "u3", OBJECT_USER, PLAN_DIR_OK);
    dir_row(st, "x9", OBJECT_USER, PLAN_DIR_SKIP);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE plan_dir SET dn = 'CN=U2', dn_lower = 'cn=u2'"
                                  " WHERE external_id = 'x9'; INSERT INTO plan_gone VALUES ('g1');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_false(state_unsent_has_dn(st, "cn=g1")); /* seen leaving */
    assert_false(state_unsent_has_dn(st, "cn=u3")); /* read in this run */
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO unsent VALUES ('far', 0, 'cn=far')", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(state_plan_save_unsent(st, true, &err), DIRCONN_OK);
    assert_string_equal(unsent_dump(st), "far 0 cn=far;x9 0 cn=u2;");
    state_plan_drop(st);

    /* after the object map is rebuilt from the cloud, nothing is known */
    assert_int_equal(state_unsent_clear(st, &err), DIRCONN_OK);
    assert_string_equal(unsent_dump(st), "");
    state_close(st);
}

static void test_plan_tables(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    sqlite3 *db = state_db(st);
    assert_int_equal(state_plan_schema(st, &err), DIRCONN_OK);
    /* The status and op columns hold the enums' values, bound by name. */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO plan_dir (external_id, kind, dn, name_lower, status) VALUES"
             " ('u1', %d, 'cn=u1', 'a@x', %d), ('u2', %d, 'cn=u2', 'b@x', %d),"
             " ('u3', %d, 'cn=u3', 'c@x', %d), ('g1', %d, 'cn=g1', 'g', %d),"
             " ('c1', %d, 'cn=c1', 'a@x', %d);",
             OBJECT_USER, PLAN_DIR_OK, OBJECT_USER, PLAN_DIR_CONFLICT, OBJECT_USER, PLAN_DIR_SKIP,
             OBJECT_GROUP, PLAN_DIR_OK, OBJECT_CONTACT, PLAN_DIR_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(state_plan_index(st, false, &err), DIRCONN_OK);

    /* Names: users and contacts sent or in conflict; a second save rewrites nothing. */
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO names VALUES ('old', 0, 'cn=old', 'o@x')", NULL, NULL, NULL),
        SQLITE_OK);
    int mark = sqlite3_total_changes(db);
    assert_int_equal(state_plan_save_names(st, false, &err), DIRCONN_OK);
    assert_string_equal(names_dump(st), "c1 2 cn=c1 a@x;u1 0 cn=u1 a@x;u2 0 cn=u2 b@x;");
    assert_int_equal(changed_since(st, &mark), 4); /* "old" deleted, three inserted */
    assert_int_equal(state_plan_save_names(st, false, &err), DIRCONN_OK);
    assert_int_equal(changed_since(st, &mark), 0);
    /* A renamed object's row is replaced; the others stay as they were. */
    assert_int_equal(sqlite3_exec(db, "UPDATE plan_dir SET dn = 'cn=u1b' WHERE external_id = 'u1'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    mark = sqlite3_total_changes(db);
    assert_int_equal(state_plan_save_names(st, false, &err), DIRCONN_OK);
    assert_string_equal(names_dump(st), "c1 2 cn=c1 a@x;u1 0 cn=u1b a@x;u2 0 cn=u2 b@x;");
    assert_int_equal(changed_since(st, &mark), 1);
    /* A partial save touches only the rows of the objects it read or saw leave. */
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO names VALUES ('far', 0, 'cn=far', 'f@x'),"
                                  " ('left', 0, 'cn=left', 'l@x');"
                                  "INSERT INTO plan_gone VALUES ('left');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(state_plan_save_names(st, true, &err), DIRCONN_OK);
    assert_string_equal(names_dump(st),
                        "c1 2 cn=c1 a@x;far 0 cn=far f@x;u1 0 cn=u1b a@x;u2 0 cn=u2 b@x;");

    /* Naming conflicts: a full plan counts plan_dir; a partial one the names of the rest too. */
    assert_int_equal(state_plan_conflicts(st, false, &err), DIRCONN_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT name_lower, dns FROM plan_conflicts", -1, &s, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "a@x");
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE names SET name_lower = 'b@x' WHERE external_id = 'far'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(state_plan_conflicts(st, true, &err), DIRCONN_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM plan_conflicts", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1); /* u2 is in conflict, not OK: only a@x */
    sqlite3_finalize(s);
    /* A name read in this run that an unread object holds is a conflict; two unread objects
     * sharing a name are not this run's (neither is planned). */
    snprintf(sql, sizeof(sql),
             "INSERT INTO plan_dir (external_id, kind, dn, name_lower, status) VALUES"
             " ('u4', %d, 'cn=u4', 'd@x', %d);"
             "INSERT INTO names VALUES ('far4', 0, 'cn=far4', 'd@x'), ('n1', 0, 'cn=n1', 'z@x'),"
             " ('n2', 0, 'cn=n2', 'z@x');",
             OBJECT_USER, PLAN_DIR_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(state_plan_conflicts(st, true, &err), DIRCONN_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(name_lower || '=' || dns, ' ') FROM"
                                        " (SELECT * FROM plan_conflicts ORDER BY name_lower)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const char *found_conflicts = (const char *)sqlite3_column_text(s, 0);
    assert_non_null(strstr(found_conflicts, "d@x="));
    assert_non_null(strstr(found_conflicts, "cn=far4"));
    assert_null(strstr(found_conflicts, "z@x"));
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_exec(db,
                                  "DELETE FROM plan_dir WHERE external_id = 'u4';"
                                  "DELETE FROM names WHERE external_id IN ('far4', 'n1', 'n2');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);

    /* Moves: a match the plan marked moved gets its DN; the state row keeps everything else. */
    struct state_object o = {.external_id = "u1",
                             .kind = OBJECT_USER,
                             .dn = "cn=u1",
                             .cloud_id = "c-u1",
                             .name = "a@x",
                             .record = "{}",
                             .hash = "h"};
    assert_int_equal(state_object_put(st, &o, &err), DIRCONN_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO plan_items (op, kind, external_id, cloud_id, dn, moved) VALUES"
             " (%d, %d, 'u1', 'c-u1', 'cn=u1b', 1)",
             PLAN_MATCH, OBJECT_USER);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(state_plan_index(st, true, &err), DIRCONN_OK);
    assert_int_equal(state_plan_save_moves(st, &err), DIRCONN_OK);
    struct state_object got = {0};
    bool found = false;
    assert_int_equal(state_object_get(st, "u1", &got, &found, &err), DIRCONN_OK);
    assert_true(found);
    assert_string_equal(got.dn, "cn=u1b");
    assert_string_equal(got.record, "{}");
    assert_string_equal(got.cloud_id, "c-u1");
    state_object_clear(&got);
    /* a DN the state knows resolves, unless this run read that object or saw it leave */
    char *id = state_plan_resolve_dn(st, "CN=U1B");
    assert_null(id); /* u1 is in plan_dir */
    assert_int_equal(
        sqlite3_exec(db, "DELETE FROM plan_dir WHERE external_id = 'u1'", NULL, NULL, NULL),
        SQLITE_OK);
    id = state_plan_resolve_dn(st, "CN=U1B");
    assert_non_null(id);
    assert_string_equal(id, "u1");
    free(id);
    state_plan_drop(st);
    assert_int_not_equal(sqlite3_exec(db, "SELECT 1 FROM plan_dir", NULL, NULL, NULL), SQLITE_OK);
    state_close(st);
}

static int count_commit(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* Raw hashes are saved in transactions of STATE_PLAN_SAVE_CHUNK objects, all of them. */
static void test_plan_save_raw_chunks(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    sqlite3 *db = state_db(st);
    assert_int_equal(state_plan_schema(st, &err), DIRCONN_OK);
    const int n = 2 * STATE_PLAN_SAVE_CHUNK + 1;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d)"
             " INSERT INTO objects (external_id, kind, dn, cloud_id, name, hash, record)"
             " SELECT printf('u%%06d', i), %d, 'cn=' || i, 'c' || i, 'n' || i, 'h' || i, '{}'"
             " FROM k;"
             "INSERT INTO plan_items (op, kind, external_id, dn, name, hash)"
             " SELECT %d, kind, external_id, dn, name, hash FROM objects;"
             "INSERT INTO plan_raw SELECT external_id, 'r' || external_id, NULL, '{}' FROM objects;"
             /* one whose state record is not the one planned keeps no raw hash */
             "UPDATE plan_items SET hash = 'other' WHERE external_id = 'u000007';",
             n, OBJECT_USER, PLAN_ADD);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(state_plan_index(st, true, &err), DIRCONN_OK);
    int commits = 0;
    sqlite3_commit_hook(db, count_commit, &commits);
    assert_int_equal(state_plan_save_raw(st, &err), DIRCONN_OK);
    sqlite3_commit_hook(db, NULL, NULL);
    assert_int_equal(commits, 3);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(raw_hash = 'r' || external_id"
                                        " AND raw_for = hash) FROM objects WHERE raw_hash"
                                        " IS NOT NULL",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), n - 1);
    assert_int_equal(sqlite3_column_int(s, 1), n - 1);
    sqlite3_finalize(s);
    /* nothing changed: a second save writes nothing */
    int mark = sqlite3_total_changes(db);
    assert_int_equal(state_plan_save_raw(st, &err), DIRCONN_OK);
    assert_int_equal(sqlite3_total_changes(db) - mark, 0);
    state_close(st);
}

static void test_unusable_dir(void **state)
{
    (void)state;
    struct state *st = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(state_open("/proc/dirconn-no/state", &st, &err), DIRCONN_EIO);
    assert_non_null(strstr(err.msg, "state_dir /proc/dirconn-no/state: cannot create"));
}

struct referrer_rows {
    char got[8][64];
    int n, stop_after;
};

static int referrer_row(void *arg, const char *id, int kind, const char *cloud_id,
                        const char *record)
{
    struct referrer_rows *r = arg;
    assert_non_null(record);
    snprintf(r->got[r->n++], sizeof(r->got[0]), "%s %d %s", id, kind, cloud_id ? cloud_id : "-");
    return r->stop_after > 0 && r->n >= r->stop_after;
}

/* state_referrers_foreach: users and groups whose record names the object (itself too), not a
 * contact, not without a record; without a cloud id only when asked; in externalId order. */
static void test_referrers(void **state)
{
    (void)state;
    struct state *st = open_ok();
    struct dirconn_error err;
    struct {
        const char *ext;
        int kind;
        const char *cloud_id;
        const char *record;
    } rows[] = {
        {"x", OBJECT_USER, "cx", "{\"dirconn:manager\":\"x\"}"},
        {"g-2", OBJECT_GROUP, "cg2", "{\"dirconn:members\":[\"a\",\"x\"]}"},
        {"u-1", OBJECT_USER, "cu1", "{\"dirconn:manager\":\"x\"}"},
        {"u-0", OBJECT_USER, NULL, "{\"dirconn:manager\":\"x\"}"},
        {"c-1", OBJECT_CONTACT, "cc1", "{\"note\":\"x\"}"},
        {"u-2", OBJECT_USER, "cu2", "{\"dirconn:manager\":\"xy\"}"},
        {"u-3", OBJECT_USER, "cu3", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct state_object o = {.external_id = (char *)rows[i].ext,
                                 .kind = rows[i].kind,
                                 .dn = "cn=o",
                                 .cloud_id = (char *)rows[i].cloud_id,
                                 .name = (char *)rows[i].ext,
                                 .record = (char *)rows[i].record,
                                 .hash = rows[i].record ? "h" : NULL};
        assert_int_equal(state_object_put(st, &o, &err), DIRCONN_OK);
    }
    struct referrer_rows r = {0};
    assert_int_equal(state_referrers_foreach(st, "x", true, referrer_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.got[0], "g-2 1 cg2");
    assert_string_equal(r.got[1], "u-1 0 cu1");
    assert_string_equal(r.got[2], "x 0 cx");
    memset(&r, 0, sizeof(r));
    assert_int_equal(state_referrers_foreach(st, "x", false, referrer_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.got[1], "u-0 0 -");
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    assert_int_equal(state_referrers_foreach(st, "x", false, referrer_row, &r, &err), DIRCONN_OK);
    assert_int_equal(r.n, 1);
    state_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_objects_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watermarks_history_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_save_raw_chunks, setup, teardown),
        cmocka_unit_test(test_unusable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
