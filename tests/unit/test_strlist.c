/* Unit tests for connector/core/strlist.c: order, copies, lookup and clearing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/strlist.h"

#include <stdio.h>
#include <string.h>

static void test_push_contains_clear(void **state)
{
    (void)state;
    struct strlist l = {0};
    assert_false(strlist_contains(&l, "a"));
    char buf[8] = "first";
    assert_true(strlist_push(&l, buf));
    strcpy(buf, "changed"); /* the list holds its own copy */
    for (int i = 0; i < 100; i++) {
        char s[16];
        snprintf(s, sizeof(s), "item-%d", i);
        assert_true(strlist_push(&l, s));
    }
    assert_int_equal(l.n, 101);
    assert_string_equal(l.v[0], "first");
    assert_string_equal(l.v[1], "item-0");
    assert_string_equal(l.v[100], "item-99");
    assert_true(strlist_contains(&l, "item-57"));
    assert_false(strlist_contains(&l, "changed"));
    assert_false(strlist_contains(&l, "ITEM-57")); /* byte comparison */
    strlist_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    assert_false(strlist_contains(&l, "first"));
    strlist_clear(&l); /* twice is harmless */
    strlist_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_contains_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
