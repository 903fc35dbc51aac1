/* Unit tests for connector/core/error.c: the X-macro tables and one-line messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_codes_and_names(void **state)
{
    (void)state;
    assert_int_equal(dirconn_exit_code(DIRCONN_OK), 0);
    assert_int_equal(dirconn_exit_code(DIRCONN_EUSAGE), 2);
    assert_int_equal(dirconn_exit_code(DIRCONN_ECONFIG), 3);
    assert_string_equal(dirconn_err_name(DIRCONN_ELDAP_AUTH), "ELDAP_AUTH");
    assert_string_equal(dirconn_strerror(DIRCONN_ELDAP_TLS), "TLS failure with directory server");
    assert_string_equal(dirconn_strerror((enum dirconn_err)9999), "unknown error");
    assert_int_equal(dirconn_exit_code((enum dirconn_err)9999), 1);
}

static void test_exit_codes_unique(void **state)
{
    (void)state;
    for (int i = 0; i < DIRCONN_ERR_MAX; i++)
        for (int j = i + 1; j < DIRCONN_ERR_MAX; j++)
            assert_int_not_equal(dirconn_exit_code((enum dirconn_err)i),
                                 dirconn_exit_code((enum dirconn_err)j));
}

static void test_set_is_one_line(void **state)
{
    (void)state;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = dirconn_error_set(&err, DIRCONN_ELDAP, "a\nb\r%s", "c");
    assert_int_equal(rc, DIRCONN_ELDAP);
    assert_int_equal(err.code, DIRCONN_ELDAP);
    assert_string_equal(err.msg, "a b c");
    assert_int_equal(dirconn_error_set(NULL, DIRCONN_EIO, "x"), DIRCONN_EIO);
}

/* docs/cli.md must list every exit code with its name. */
/* The library code behind an error survives until the next error replaces it. */
static void test_cause_kept_and_reset(void **state)
{
    (void)state;
    struct dirconn_error err = {0};
    assert_int_equal(err.origin, DIRCONN_ORIGIN_NONE);
    dirconn_error_set(&err, DIRCONN_ELDAP_AUTH, "ldap://dc1: bind refused");
    assert_int_equal(dirconn_error_cause(&err, DIRCONN_ORIGIN_LDAP, 49), DIRCONN_ELDAP_AUTH);
    assert_int_equal(err.origin, DIRCONN_ORIGIN_LDAP);
    assert_int_equal(err.cause, 49);
    assert_string_equal(err.msg, "ldap://dc1: bind refused");
    /* a message that quotes the previous one keeps its text, and a new error drops the cause */
    dirconn_error_set(&err, DIRCONN_EFAIL, "sync stopped: %s", err.msg);
    assert_string_equal(err.msg, "sync stopped: ldap://dc1: bind refused");
    assert_int_equal(err.origin, DIRCONN_ORIGIN_NONE);
    assert_int_equal(err.cause, 0);
    dirconn_error_set(&err, DIRCONN_ESTATE, "state.db: locked");
    dirconn_error_cause(&err, DIRCONN_ORIGIN_SQLITE, 5);
    dirconn_error_clear(&err);
    assert_int_equal(err.code, DIRCONN_OK);
    assert_int_equal(err.origin, DIRCONN_ORIGIN_NONE);
    assert_int_equal(err.cause, 0);
    assert_int_equal(dirconn_error_cause(NULL, DIRCONN_ORIGIN_HTTP, 503), DIRCONN_OK);
}

static void test_origin_names(void **state)
{
    (void)state;
    assert_null(dirconn_origin_name(DIRCONN_ORIGIN_NONE));
    assert_string_equal(dirconn_origin_name(DIRCONN_ORIGIN_LDAP), "ldap");
    assert_string_equal(dirconn_origin_name(DIRCONN_ORIGIN_CURL), "curl");
    assert_string_equal(dirconn_origin_name(DIRCONN_ORIGIN_HTTP), "http");
    assert_string_equal(dirconn_origin_name(DIRCONN_ORIGIN_SQLITE), "sqlite");
    assert_string_equal(dirconn_origin_name(DIRCONN_ORIGIN_ERRNO), "errno");
    assert_null(dirconn_origin_name(DIRCONN_ORIGIN_MAX));
    for (int o = DIRCONN_ORIGIN_LDAP; o < DIRCONN_ORIGIN_MAX; o++)
        assert_non_null(dirconn_origin_name((enum dirconn_origin)o));
}

static void test_cli_doc_lists_exit_codes(void **state)
{
    (void)state;
    const char *src = getenv("DIRCONN_SOURCE_DIR");
    if (src == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/cli.md", src);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    doc[n] = '\0';
    fclose(fp);
    for (int i = 0; i < DIRCONN_ERR_MAX; i++) {
        char row[96];
        snprintf(row, sizeof(row), "| %d | `%s` |", dirconn_exit_code((enum dirconn_err)i),
                 dirconn_err_name((enum dirconn_err)i));
        if (strstr(doc, row) == NULL)
            fail_msg("docs/cli.md lacks the exit code row '%s'", row);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_and_names),
        cmocka_unit_test(test_exit_codes_unique),
        cmocka_unit_test(test_set_is_one_line),
        cmocka_unit_test(test_cli_doc_lists_exit_codes),
        cmocka_unit_test(test_cause_kept_and_reset),
        cmocka_unit_test(test_origin_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
