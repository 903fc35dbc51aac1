/* Unit tests for connector/tracking.c: method choice from the rootDSE, UUID text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/ldap_source.h"
#include "connector/tracking.h"

#include <string.h>

static void test_uuid_text(void **state)
{
    (void)state;
    /* RFC 4122 byte order: no swapping, unlike objectGUID (MS-DTYP 2.3.4.3). */
    const unsigned char u[16] = {0xda, 0xba, 0x0b, 0x0c, 0x7a, 0x56, 0x10, 0x41,
                                 0x9d, 0x68, 0xbb, 0x4c, 0xec, 0xf9, 0x5d, 0xb4};
    char out[37];
    tracking_uuid_to_string(u, out);
    assert_string_equal(out, "daba0b0c-7a56-1041-9d68-bb4cecf95db4");
}

static void test_auto_order(void **state)
{
    (void)state;
    char *ctrls_ad[] = {LDAP_OID_PAGED_RESULTS, LDAP_OID_DIRSYNC, LDAP_OID_SYNC};
    struct ldap_rootdse dse = {0};
    dse.supported_controls.v = ctrls_ad;
    dse.supported_controls.n = 3;
    dse.has_usn = true;
    assert_int_equal(ldap_rootdse_tracking_auto(&dse), CHANGE_TRACKING_DIRSYNC);
    dse.supported_controls.n = 1;
    assert_int_equal(ldap_rootdse_tracking_auto(&dse), CHANGE_TRACKING_USN);
    char *ctrls_ol[] = {LDAP_OID_PAGED_RESULTS, LDAP_OID_SYNC};
    dse.supported_controls.v = ctrls_ol;
    dse.supported_controls.n = 2;
    dse.has_usn = false;
    assert_int_equal(ldap_rootdse_tracking_auto(&dse), CHANGE_TRACKING_SYNCREPL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_text),
        cmocka_unit_test(test_auto_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
