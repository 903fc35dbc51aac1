/*
 * test_sync_phase.c - the run's state machine (connector/sync.h, enum sync_phase):
 * its names and its transition table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connector/sync.h"

static void test_names(void **state)
{
    (void)state;
    static const char *const want[] = {"starting", "connecting", "reading", "planning",
                                       "applying", "saving",     "done",    "stopped"};
    for (int p = 0; p < SYNC_PHASE_MAX; p++)
        assert_string_equal(sync_phase_name((enum sync_phase)p), want[p]);
    assert_string_equal(sync_phase_name(SYNC_PHASE_MAX), "unknown");
    assert_string_equal(sync_phase_name((enum sync_phase) - 1), "unknown");
}

/* A full run, an incremental run restarted as full, a dry run, a stop at each phase. */
static void test_runs_follow_the_table(void **state)
{
    (void)state;
    static const enum sync_phase full[] = {
        SYNC_PHASE_STARTING, SYNC_PHASE_CONNECTING, SYNC_PHASE_READING, SYNC_PHASE_PLANNING,
        SYNC_PHASE_APPLYING, SYNC_PHASE_SAVING,     SYNC_PHASE_DONE};
    for (size_t i = 0; i + 1 < sizeof(full) / sizeof(full[0]); i++)
        assert_true(sync_phase_allowed(full[i], full[i + 1]));
    assert_true(sync_phase_allowed(SYNC_PHASE_READING, SYNC_PHASE_READING)); /* restart_as_full */
    assert_true(sync_phase_allowed(SYNC_PHASE_PLANNING, SYNC_PHASE_DONE)); /* dry run, threshold */
    for (int p = SYNC_PHASE_STARTING; p <= SYNC_PHASE_SAVING; p++)
        assert_true(sync_phase_allowed((enum sync_phase)p, SYNC_PHASE_STOPPED));
}

static void test_forbidden_transitions(void **state)
{
    (void)state;
    /* no phase is skipped on the way to the cloud, and nothing leaves an end */
    assert_false(sync_phase_allowed(SYNC_PHASE_STARTING, SYNC_PHASE_READING));
    assert_false(sync_phase_allowed(SYNC_PHASE_CONNECTING, SYNC_PHASE_PLANNING));
    assert_false(sync_phase_allowed(SYNC_PHASE_READING, SYNC_PHASE_APPLYING));
    assert_false(sync_phase_allowed(SYNC_PHASE_PLANNING, SYNC_PHASE_SAVING));
    assert_false(sync_phase_allowed(SYNC_PHASE_APPLYING, SYNC_PHASE_DONE));
    assert_false(sync_phase_allowed(SYNC_PHASE_APPLYING, SYNC_PHASE_READING));
    assert_false(sync_phase_allowed(SYNC_PHASE_READING, SYNC_PHASE_DONE));
    for (int to = 0; to < SYNC_PHASE_MAX; to++) {
        assert_false(sync_phase_allowed(SYNC_PHASE_DONE, (enum sync_phase)to));
        assert_false(sync_phase_allowed(SYNC_PHASE_STOPPED, (enum sync_phase)to));
    }
    assert_false(sync_phase_allowed(SYNC_PHASE_MAX, SYNC_PHASE_STOPPED));
    assert_false(sync_phase_allowed(SYNC_PHASE_STARTING, SYNC_PHASE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_runs_follow_the_table),
        cmocka_unit_test(test_forbidden_transitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
