/* cloud_hamode_test.c - unit tests of an organisation's HA mode rules (cloud/cloud_hamode.h,
 * docs/cloud-api.md "HA mode"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cloud/cloud_hamode.h"

static void test_parse_and_name(void **state)
{
    (void)state;
    enum cloud_ha_mode m = CLOUD_HA_UNSET;
    assert_true(cloud_ha_mode_parse("cloud", &m));
    assert_int_equal(m, CLOUD_HA_CLOUD);
    assert_true(cloud_ha_mode_parse("etcd", &m));
    assert_int_equal(m, CLOUD_HA_ETCD);
    assert_true(cloud_ha_mode_parse("none", &m));
    assert_int_equal(m, CLOUD_HA_NONE);
    assert_false(cloud_ha_mode_parse("Cloud", &m));
    assert_false(cloud_ha_mode_parse("", &m));
    assert_false(cloud_ha_mode_parse(NULL, &m));
    assert_string_equal(cloud_ha_mode_name(CLOUD_HA_ETCD), "etcd");
    assert_null(cloud_ha_mode_name(CLOUD_HA_UNSET));
}

static void test_effective_and_accepts(void **state)
{
    (void)state;
    assert_int_equal(cloud_ha_mode_effective(CLOUD_HA_ETCD, true), CLOUD_HA_ETCD);
    assert_int_equal(cloud_ha_mode_effective(CLOUD_HA_UNSET, true), CLOUD_HA_CLOUD);
    assert_int_equal(cloud_ha_mode_effective(CLOUD_HA_UNSET, false), CLOUD_HA_UNSET);
    assert_true(cloud_ha_mode_accepts(CLOUD_HA_UNSET, CLOUD_HA_CLOUD));
    assert_true(cloud_ha_mode_accepts(CLOUD_HA_ETCD, CLOUD_HA_UNSET));
    assert_true(cloud_ha_mode_accepts(CLOUD_HA_ETCD, CLOUD_HA_ETCD));
    assert_false(cloud_ha_mode_accepts(CLOUD_HA_ETCD, CLOUD_HA_CLOUD));
    assert_false(cloud_ha_mode_accepts(CLOUD_HA_CLOUD, CLOUD_HA_NONE));
    assert_false(cloud_ha_mode_accepts(CLOUD_HA_NONE, CLOUD_HA_ETCD));
}

static void test_recording_rule(void **state)
{
    (void)state;
    /* reads never record; a recorded mode is never replaced by a request */
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_UNSET, CLOUD_HA_ETCD, CLOUD_HA_ACT_READ),
                     CLOUD_HA_UNSET);
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_ETCD, CLOUD_HA_ETCD, CLOUD_HA_ACT_WRITE),
                     CLOUD_HA_UNSET);
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_UNSET, CLOUD_HA_ETCD, CLOUD_HA_ACT_WRITE),
                     CLOUD_HA_ETCD);
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_UNSET, CLOUD_HA_NONE, CLOUD_HA_ACT_REGISTER),
                     CLOUD_HA_NONE);
    /* an older connector declares nothing: its write records nothing */
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_UNSET, CLOUD_HA_UNSET, CLOUD_HA_ACT_WRITE),
                     CLOUD_HA_UNSET);
    /* taking the cloud lease is the cloud mode, declared or not */
    assert_int_equal(cloud_ha_mode_to_record(CLOUD_HA_UNSET, CLOUD_HA_UNSET, CLOUD_HA_ACT_LEASE),
                     CLOUD_HA_CLOUD);
}

static void test_tokenless_writes(void **state)
{
    (void)state;
    /* the trap: etcd and none never depend on the lease counter */
    assert_true(cloud_ha_mode_tokenless_ok(CLOUD_HA_ETCD, 0));
    assert_true(cloud_ha_mode_tokenless_ok(CLOUD_HA_ETCD, 7));
    assert_true(cloud_ha_mode_tokenless_ok(CLOUD_HA_NONE, 7));
    assert_false(cloud_ha_mode_tokenless_ok(CLOUD_HA_CLOUD, 0));
    assert_false(cloud_ha_mode_tokenless_ok(CLOUD_HA_CLOUD, 3));
    /* nothing recorded: as before modes existed */
    assert_true(cloud_ha_mode_tokenless_ok(CLOUD_HA_UNSET, 0));
    assert_false(cloud_ha_mode_tokenless_ok(CLOUD_HA_UNSET, 1));
}

static void test_change(void **state)
{
    (void)state;
    bool release = true;
    /* to cloud: never refused, the lease stays */
    assert_true(cloud_ha_mode_change(CLOUD_HA_CLOUD, true, true, false, &release));
    assert_false(release);
    /* leaving the cloud lease while it is held: refused unless forced, then released */
    assert_false(cloud_ha_mode_change(CLOUD_HA_ETCD, true, true, false, &release));
    assert_true(cloud_ha_mode_change(CLOUD_HA_ETCD, true, true, true, &release));
    assert_true(release);
    /* held but expired: allowed, released (its holder is fenced) */
    assert_true(cloud_ha_mode_change(CLOUD_HA_NONE, true, false, false, &release));
    assert_true(release);
    /* free: allowed, nothing to release; forgetting the mode counts as leaving */
    assert_true(cloud_ha_mode_change(CLOUD_HA_UNSET, false, false, false, &release));
    assert_false(release);
    assert_false(cloud_ha_mode_change(CLOUD_HA_UNSET, true, true, false, NULL));
}

static void test_message_names_both(void **state)
{
    (void)state;
    char buf[400];
    cloud_ha_mode_mismatch(buf, sizeof(buf), "acme", CLOUD_HA_ETCD, false, CLOUD_HA_CLOUD);
    assert_non_null(strstr(buf, "the organisation acme uses the etcd lease; this connector is "
                                "configured with the cloud lease ([ha] lease = cloud)"));
    cloud_ha_mode_mismatch(buf, sizeof(buf), "acme", CLOUD_HA_CLOUD, true, CLOUD_HA_NONE);
    assert_non_null(strstr(buf, "uses the cloud lease (a connector holds it); this connector is "
                                "configured with no HA lease ([ha] lease = none)"));
    assert_non_null(strstr(buf, "dirconnctl ha-mode set"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_name), cmocka_unit_test(test_effective_and_accepts),
        cmocka_unit_test(test_recording_rule), cmocka_unit_test(test_tokenless_writes),
        cmocka_unit_test(test_change),         cmocka_unit_test(test_message_names_both),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
