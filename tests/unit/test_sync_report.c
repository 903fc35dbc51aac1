/*
 * test_sync_report.c - the summary lines of a run (connector/sync_report.h): the
 * exact text dirconnctl prints and dirconnd logs and mails, for a sync, a dry run,
 * the delete threshold, an incremental, and runs that stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connector/sync_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The lines of r through sync_report_text, checked against sync_report_render's. */
static char *text_of(const struct sync_report *r)
{
    char *t = sync_report_text(r);
    assert_non_null(t);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    sync_report_render(r, f);
    fclose(f);
    assert_string_equal(buf, t);
    free(buf);
    return t;
}

static void expect(const struct sync_report *r, const char *want)
{
    char *t = text_of(r);
    assert_string_equal(t, want);
    free(t);
}

/* A report with a plan: 20 objects threshold, 2 users and 1 group deleted, 5 added, 3 updated,
 * 40 matched. */
static struct sync_report planned(enum sync_mode mode)
{
    struct sync_report r;
    memset(&r, 0, sizeof(r));
    r.mode = mode;
    r.planned = true;
    r.threshold_enabled = true;
    r.threshold = 20;
    r.plan.deleted_by_kind[OBJECT_USER] = 2;
    r.plan.deleted_by_kind[OBJECT_GROUP] = 1;
    r.plan.deletes = 3;
    r.plan.count[PLAN_ADD] = 5;
    r.plan.count[PLAN_UPDATE] = 3;
    r.plan.count[PLAN_MATCH] = 40;
    r.read = 51;
    return r;
}

static void test_full_sync(void **state)
{
    (void)state;
    struct sync_report r = planned(SYNC_FULL);
    r.applied = true;
    r.added = 5;
    r.updated = 3;
    r.deleted = 3;
    expect(&r, "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (20 objects) not exceeded: 3 objects would be deleted\n"
               "Result | 5 added | 3 updated | 3 deleted | 0 failed\n");
    /* objects that failed: the same lines, the failures counted */
    r.updated = 2;
    r.failed = 1;
    r.code = DIRCONN_EFAIL;
    expect(&r, "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (20 objects) not exceeded: 3 objects would be deleted\n"
               "Result | 5 added | 2 updated | 3 deleted | 1 failed\n");
}

/* A dry run prints every Summary line that applies, and no Result line. */
static void test_dry_run(void **state)
{
    (void)state;
    struct sync_report r = planned(SYNC_DRY_RUN);
    r.plan.drift = 2;
    r.plan.deleted_by_kind[OBJECT_CONTACT] = 4;
    r.plan.count[PLAN_PROTECTED] = 1;
    r.plan.count[PLAN_SKIP] = 2;
    r.plan.count[PLAN_CONFLICT] = 3;
    r.plan.warnings = 6;
    r.contacts_unsupported = true;
    expect(&r, "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "2 of the updated objects were changed in the cloud (drift): the directory's "
               "values are put back\n"
               "4 contact objects will be deleted\n"
               "1 admin objects would have been deleted, but were not\n"
               "5 objects skipped (2 missing a required attribute, 3 naming conflicts)\n"
               "6 attribute warnings (the objects are sent without the invalid values)\n"
               "Contacts are not synchronised: the cloud offers no Contact resource type\n"
               "Delete threshold (20 objects) not exceeded: 3 objects would be deleted\n");
    /* the threshold switched off */
    r = planned(SYNC_DRY_RUN);
    r.threshold_enabled = false;
    expect(&r, "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold is disabled\n");
    /* a dry run that stopped before its plan says nothing */
    memset(&r, 0, sizeof(r));
    r.mode = SYNC_DRY_RUN;
    r.code = DIRCONN_ELDAP_CONNECT;
    r.stopped_in = SYNC_PHASE_CONNECTING;
    expect(&r, "");
}

static void test_delete_threshold(void **state)
{
    (void)state;
    /* held: nothing applied, the Result line says so */
    struct sync_report r = planned(SYNC_FULL);
    r.plan.deleted_by_kind[OBJECT_USER] = 21;
    r.plan.deleted_by_kind[OBJECT_GROUP] = 0;
    r.plan.deletes = 21;
    r.threshold_exceeded = true;
    r.code = DIRCONN_ETHRESHOLD;
    expect(&r, "Summary | 0 Admins Deleted | 21 Users Deleted | 0 Groups Deleted | 5 Objects "
               "Added | 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (20 objects) exceeded. 21 objects would be deleted\n"
               "Result | 0 added | 0 updated | 0 deleted | 0 failed\n");
    /* overridden for this run, with a threshold of one object */
    r.threshold = 1;
    r.override_used = true;
    r.code = DIRCONN_OK;
    r.applied = true;
    r.added = 5;
    r.updated = 3;
    r.deleted = 21;
    expect(&r, "Summary | 0 Admins Deleted | 21 Users Deleted | 0 Groups Deleted | 5 Objects "
               "Added | 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (1 object) exceeded. 21 objects would be deleted (override "
               "used for this run)\n"
               "Result | 5 added | 3 updated | 21 deleted | 0 failed\n");
    /* the next run notes the override, in local time */
    setenv("TZ", "UTC", 1);
    tzset();
    r = planned(SYNC_INCREMENTAL);
    r.previous_override = true;
    snprintf(r.previous_type, sizeof(r.previous_type), "full");
    r.previous_started = 1796558400; /* 2026-12-06 12:00:00 UTC */
    r.incremental = true;
    r.changes = 7;
    snprintf(r.tracking, sizeof(r.tracking), "usn");
    r.applied = true;
    expect(&r, "Incremental | 7 changes since the last synchronization (usn)\n"
               "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (20 objects) not exceeded: 3 objects would be deleted\n"
               "Note: the delete threshold was overridden for the full sync of 2026-12-06 "
               "12:00:00\n"
               "Result | 0 added | 0 updated | 0 deleted | 0 failed\n");
}

static void test_failures(void **state)
{
    (void)state;
    /* stopped while reading: no plan, the two usual lines */
    struct sync_report r;
    memset(&r, 0, sizeof(r));
    r.mode = SYNC_FULL;
    r.code = DIRCONN_ELDAP_CONNECT;
    r.stopped_in = SYNC_PHASE_READING;
    r.read = 42;
    expect(&r, "Summary | not computed: the run stopped while reading (42 directory objects "
               "read)\n"
               "Result | 0 added | 0 updated | 0 deleted | 0 failed\n");
    /* an incremental that ran in full and stopped while connecting to the cloud */
    memset(&r, 0, sizeof(r));
    r.mode = SYNC_INCREMENTAL;
    r.ran_full = true;
    snprintf(r.fallback, sizeof(r.fallback),
             "there is no watermark yet (no full sync since the "
             "state was created)");
    r.code = DIRCONN_ECLOUD;
    r.stopped_in = SYNC_PHASE_READING;
    expect(&r, "Running a full sync: there is no watermark yet (no full sync since the state was "
               "created)\n"
               "Summary | not computed: the run stopped while reading (0 directory objects read)\n"
               "Result | 0 added | 0 updated | 0 deleted | 0 failed\n");
    /* stopped while applying: the Summary, and what was acknowledged before the stop */
    r = planned(SYNC_FULL);
    r.code = DIRCONN_ELEASE;
    r.stopped_in = SYNC_PHASE_APPLYING;
    r.applied = true;
    r.added = 2;
    expect(&r, "Summary | 0 Admins Deleted | 2 Users Deleted | 1 Groups Deleted | 5 Objects Added "
               "| 3 Objects Updated | 40 Objects Matched\n"
               "Delete threshold (20 objects) not exceeded: 3 objects would be deleted\n"
               "Result | 2 added | 0 updated | 0 deleted | 0 failed\n");
    /* a report of a run that never started (zeroed) has no line */
    memset(&r, 0, sizeof(r));
    expect(&r, "");
}

/* Each line reaches sync_report_lines' callback without its newline. */
static void count_line(void *arg, const char *text)
{
    assert_null(strchr(text, '\n'));
    (*(int *)arg)++;
}

static void test_lines_callback(void **state)
{
    (void)state;
    struct sync_report r = planned(SYNC_FULL);
    r.applied = true;
    int n = 0;
    sync_report_lines(&r, count_line, &n);
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_sync),        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_delete_threshold), cmocka_unit_test(test_failures),
        cmocka_unit_test(test_lines_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
