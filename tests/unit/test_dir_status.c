/* Unit tests for connector/dir_status.c: the refused-bind guard and the directory's status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/dir_status.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char conf[128], pw[128];
    struct config *cfg;
    struct dir_status *ds;
    struct log_sink log;
};

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void write_conf(struct fixture *f, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[connector]\nstate_dir = %s/state\n[ldap]\nurls = ldaps://dc1.example.com "
             "ldaps://dc2.example.com\nbind_dn = svc@example.com\nbind_password_file = %s\n%s",
             f->dir, f->pw, extra);
    write_file(f->conf, text);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/dirconn-test-dir-status-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->conf, sizeof(f->conf), "%s/dirconn.conf", f->dir);
    snprintf(f->pw, sizeof(f->pw), "%s/bind-password", f->dir);
    write_file(f->pw, "wrong-password\n");
    write_conf(f, "");
    struct dirconn_error err;
    assert_int_equal(config_load(f->conf, &f->cfg, &err), DIRCONN_OK);
    log_sink_init(&f->log, "test", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    assert_int_equal(dir_status_new(&f->log, &f->ds, &err), DIRCONN_OK);
    dir_status_configure(f->ds, f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dir_status_free(f->ds);
    config_free(f->cfg);
    unlink(f->conf);
    unlink(f->pw);
    rmdir(f->dir);
    free(f);
    return 0;
}

#define REFUSAL                                                                                    \
    "ldaps://dc1.example.com: bind as 'svc@example.com' refused: invalid credentials (AD data "    \
    "52e)"

/* Before the first bind only one attempt runs; once it bound, attempts run side by side. */
static void test_probe_until_confirmed(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a, b, c;
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_UNKNOWN);
    assert_true(dir_status_begin(f->ds, &a));
    assert_true(a.probe);
    assert_false(dir_status_begin(f->ds, &b)); /* the probe is in flight */
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_OK);
    assert_true(dir_status_begin(f->ds, &b));
    assert_false(b.probe);
    assert_true(dir_status_begin(f->ds, &c));
    dir_status_end(f->ds, &b, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    dir_status_end(f->ds, &c, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_string_equal(dir_status_word(f->ds), "ok");
}

/* An attempt that never reached the directory (cloud down first) leaves the probe free. */
static void test_probe_without_answer(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a, b;
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ECLOUD_CONNECT, "cloud unreachable", false, NULL);
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_UNKNOWN);
    assert_true(dir_status_begin(f->ds, &b));
    assert_true(b.probe);
}

/* A refusal stops every bind until a rearm, which allows exactly one attempt. */
static void test_refusal_and_rearm(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a, b;
    assert_false(dir_status_rearm(f->ds, "nothing to lift"));
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    assert_true(dir_status_refused(f->ds));
    assert_string_equal(dir_status_word(f->ds), "error");
    for (int i = 0; i < 100; i++) /* timers, reconnections: all held back */
        assert_false(dir_status_begin(f->ds, &b));
    json_t *j = dir_status_json(f->ds);
    assert_string_equal(json_string_value(json_object_get(j, "condition")), "bind refused");
    assert_string_equal(json_string_value(json_object_get(j, "error")), REFUSAL);
    assert_string_equal(json_string_value(json_object_get(j, "error_code")), "ELDAP_AUTH");
    assert_true(json_is_string(json_object_get(j, "refused_since")));
    json_decref(j);

    assert_true(dir_status_rearm(f->ds, "SIGHUP"));
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_RETRYING);
    assert_string_equal(dir_status_word(f->ds), "error");
    assert_true(dir_status_begin(f->ds, &a));
    assert_true(a.probe);
    assert_false(dir_status_begin(f->ds, &b));
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    assert_true(dir_status_refused(f->ds));
    assert_false(dir_status_begin(f->ds, &b));

    assert_true(dir_status_rearm(f->ds, "dirconnctl sync-now"));
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_OK);
    assert_true(dir_status_begin(f->ds, &b));
    assert_false(b.probe);
}

/* A success of an attempt that began before the refusal does not lift it. */
static void test_stale_success(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a, sync, notify, late;
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_true(dir_status_begin(f->ds, &sync));   /* a long sync bound with the old password */
    assert_true(dir_status_begin(f->ds, &notify)); /* the password changed in AD meanwhile */
    dir_status_end(f->ds, &notify, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    dir_status_end(f->ds, &sync, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_true(dir_status_refused(f->ds));
    assert_false(dir_status_begin(f->ds, &late));
    /* a reload makes the attempts in flight stale too, and the credentials unconfirmed */
    assert_true(dir_status_rearm(f->ds, "SIGHUP"));
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_configure(f->ds, f->cfg);
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    assert_false(dir_status_refused(f->ds));
    assert_true(dir_status_begin(f->ds, &late));
    assert_true(late.probe);
}

/* Unreachable DCs and search errors: failing, then ok again; a fallback DC is degraded. */
static void test_failing_and_fallback(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a;
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_CONNECT, "no domain controller available", false, NULL);
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_FAILING);
    assert_string_equal(dir_status_word(f->ds), "error");
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc2.example.com");
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_OK);
    assert_string_equal(dir_status_word(f->ds), "degraded");
    char why[256];
    assert_string_equal(
        dir_status_reason(f->ds, why, sizeof(why)),
        "directory: ldaps://dc2.example.com is in use, not the preferred ldaps://dc1.example.com");
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ELDAP, "ldaps://dc1.example.com: search failed (LDAP 80)",
                   true, "ldaps://dc1.example.com");
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_FAILING);
    json_t *j = dir_status_json(f->ds);
    assert_string_equal(json_string_value(json_object_get(j, "server")), "ldaps://dc1.example.com");
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "ldaps://dc1.example.com: search failed (LDAP 80)");
    json_decref(j);
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    assert_string_equal(dir_status_word(f->ds), "ok");
    /* a cloud error says nothing about the directory */
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ECLOUD, "HTTP 500", true, "ldaps://dc1.example.com");
    assert_int_equal(dir_status_state(f->ds), DIR_STATE_OK);
}

static void test_notifications_word(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a;
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_OK, NULL, true, "ldaps://dc1.example.com");
    dir_status_notify(f->ds, DIR_NOTIFY_CONNECTED, "change notification", NULL, 0);
    assert_string_equal(dir_status_word(f->ds), "ok");
    dir_status_notify(f->ds, DIR_NOTIFY_RECONNECTING, NULL, "the connection was lost",
                      time(NULL) + 2);
    assert_string_equal(dir_status_word(f->ds), "degraded");
    json_t *j = dir_status_json(f->ds);
    json_t *n = json_object_get(j, "notifications");
    assert_string_equal(json_string_value(json_object_get(n, "state")), "reconnecting");
    assert_string_equal(json_string_value(json_object_get(n, "error")), "the connection was lost");
    assert_true(json_is_string(json_object_get(n, "next_retry")));
    assert_true(json_is_null(json_object_get(n, "method")));
    json_decref(j);
    dir_status_notify(f->ds, DIR_NOTIFY_OFF, NULL, NULL, 0);
    assert_string_equal(dir_status_word(f->ds), "ok");
}

/* Bump a file's mtime to a distinct value, as an editor saving it would. */
static void bump_mtime(const char *path, int seconds)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    ts[1].tv_sec += seconds;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* While refused: a touched file is no change, a new password or configuration is, once. */
static void test_check_files(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a;
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE); /* not refused: nothing to do */
    assert_true(dir_status_begin(f->ds, &a));
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE);
    bump_mtime(f->pw, 10);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE); /* touched, same password */
    bump_mtime(f->conf, 10);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE);
    write_file(f->pw, "the-new-password\n");
    bump_mtime(f->pw, 20);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_PASSWORD);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE); /* reported once */
    write_conf(f, "[log]\nlevel = debug\n");
    bump_mtime(f->conf, 30);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_CONFIG);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE);
    /* a removed password file is a change, and so is its return */
    unlink(f->pw);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_PASSWORD);
    write_file(f->pw, "the-new-password\n");
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_PASSWORD);
}

/* The password that was refused is the reference, not the file when the daemon started. */
static void test_check_against_refused_password(void **state)
{
    struct fixture *f = *state;
    struct dir_attempt a;
    write_file(f->pw, "second-try\n");
    bump_mtime(f->pw, 5);
    assert_true(dir_status_begin(f->ds, &a)); /* presents second-try */
    dir_status_end(f->ds, &a, DIRCONN_ELDAP_AUTH, REFUSAL, false, NULL);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_NONE);
    write_file(f->pw, "third-try\n");
    bump_mtime(f->pw, 10);
    assert_int_equal(dir_status_check(f->ds), DIR_CHANGE_PASSWORD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_until_confirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_without_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_and_rearm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_and_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifications_word, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_against_refused_password, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
