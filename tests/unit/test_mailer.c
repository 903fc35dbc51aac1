/*
 * Unit tests for connector/mailer.c (message composition, header fields) and the [reports]
 * section of connector/core/config.c (values, pairs of keys, errors with file:line).
 * Delivery itself is tested against a real SMTP server (tests/integration/daemon_mail.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/config.h"
#include "connector/mailer.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINIMAL "[ldap]\nurls = ldaps://dc1.example.com\n"

static struct config *load_ok(const char *text)
{
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (config_load_string(text, "test.conf", &cfg, &err) != DIRCONN_OK)
        fail_msg("unexpected error: %s", err.msg);
    assert_non_null(cfg);
    return cfg;
}

static void load_fail(const char *text, const char *expect)
{
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(config_load_string(text, "test.conf", &cfg, &err), DIRCONN_ECONFIG);
    assert_null(cfg);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, expect);
    assert_null(strchr(err.msg, '\n'));
}

static void test_config_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    assert_null(cfg->reports_smtp_url); /* off by default */
    assert_int_equal(cfg->reports_interval_ms, 24LL * 3600 * 1000);
    assert_int_equal(cfg->reports_no_success_ms, 24LL * 3600 * 1000);
    assert_int_equal(cfg->reports_starttls, REPORTS_STARTTLS_REQUIRED);
    assert_int_equal(cfg->reports_timeout_ms, 30000);
    assert_int_equal(cfg->reports_retries, 3);
    config_free(cfg);
}

static void test_config_values(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL "[reports]\n"
                                         "smtp_url = smtp://mail.example.com:587\n"
                                         "from = dirconn@example.com\n"
                                         "to = ops@example.com, audit@example.com\n"
                                         "  third@example.org\n"
                                         "interval = 6h\n"
                                         "alert_no_success_after = 2h\n"
                                         "starttls = opportunistic\n"
                                         "timeout = 15s\n"
                                         "retries = 0\n");
    assert_string_equal(cfg->reports_smtp_url, "smtp://mail.example.com:587");
    assert_string_equal(cfg->reports_from, "dirconn@example.com");
    assert_int_equal(cfg->reports_to.n, 3);
    assert_string_equal(cfg->reports_to.v[0], "ops@example.com");
    assert_string_equal(cfg->reports_to.v[1], "audit@example.com");
    assert_string_equal(cfg->reports_to.v[2], "third@example.org");
    assert_int_equal(cfg->reports_interval_ms, 6LL * 3600 * 1000);
    assert_int_equal(cfg->reports_no_success_ms, 2LL * 3600 * 1000);
    assert_int_equal(cfg->reports_starttls, REPORTS_STARTTLS_OPPORTUNISTIC);
    assert_int_equal(cfg->reports_timeout_ms, 15000);
    assert_int_equal(cfg->reports_retries, 0);
    config_free(cfg);

    cfg =
        load_ok(MINIMAL "[reports]\nsmtp_url = smtps://mail.example.com\nfrom = a@b.example\n"
                        "to = c@d.example\nusername = dirconn\npassword_file = /etc/dirconn/smtp\n"
                        "starttls = off\n");
    assert_string_equal(cfg->reports_username, "dirconn"); /* smtps: TLS from the first byte */
    config_free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
#define R MINIMAL "[reports]\n"
    /* line 3 is the first [reports] key */
    load_fail(R "smtp_url = https://mail.example.com\nfrom = a@b.example\nto = c@d.example\n",
              "test.conf:4: [reports] smtp_url: 'https://mail.example.com': scheme 'https' is not "
              "supported");
    load_fail(R "smtp_url = smtp://dirconn:hunter2@mail.example.com\n", "test.conf:4:");
    {
        struct config *cfg = NULL;
        struct dirconn_error err;
        config_load_string(R "smtp_url = smtp://dirconn:hunter2@mail.example.com\n", "t", &cfg,
                           &err);
        assert_null(strstr(err.msg, "hunter2")); /* a secret is never echoed */
    }
    load_fail(R "smtp_url = smtp://mail.example.com\nfrom = a@b.example\nto = c@d.example\n"
                "password = hunter2\n",
              "test.conf:7: [reports] password: secrets are not accepted");
    load_fail(R "smtp_url = smtp://m.example\nfrom = not an address\nto = c@d.example\n",
              "test.conf:5: [reports] from: 'not an address': not a mail address");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\nto = c@d.example <x@y>\n",
              "test.conf:6: [reports] to: '<x@y>': not a mail address");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\n",
              "test.conf:4: [reports] smtp_url is set but to names no recipient");
    load_fail(R "smtp_url = smtp://m.example\nto = a@b.example\n",
              "test.conf:4: [reports] smtp_url is set but from is not");
    load_fail(R "from = a@b.example\nto = c@d.example\n",
              "test.conf:4: [reports] from is set but smtp_url is not");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\nto = c@d.example\n"
                "username = dirconn\n",
              "test.conf:7: [reports] username and password_file go together");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\nto = c@d.example\n"
                "password_file = /p\n",
              "test.conf:7: [reports] username and password_file go together");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\nto = c@d.example\n"
                "username = u\npassword_file = /p\nstarttls = opportunistic\n",
              "test.conf:9: [reports] username over smtp:// needs starttls = required");
    load_fail(R "smtp_url = smtp://m.example\nfrom = a@b.example\nto = c@d.example\n"
                "starttls = maybe\n",
              "test.conf:7: [reports] starttls: 'maybe' is not one of: required, opportunistic, "
              "off");
    load_fail(R "interval = 10\n", "test.conf:4: [reports] interval: '10' is not a duration");
    load_fail(R "retries = 11\n", "test.conf:4: [reports] retries: 11 is out of range");
    load_fail(R "timeout = 500ms\n", "test.conf:4: [reports] timeout: '500ms' is out of range");
#undef R
}

static const char *const problems[] = {
    "For CN=b,OU=Employees,DC=c,DC=com, the attribute telephoneNumber has the following invalid "
    "value: +.",
    "There is a naming conflict for CN=MR,OU=Users,DC=d,DC=local with <b>&amp;</b>",
};

static struct mailer_run sample_run(void)
{
    struct mailer_run run = {
        .full = true,
        .rc = DIRCONN_OK,
        .message = "",
        .summary = "Summary | 0 Admins Deleted | 0 Users Deleted | 0 Groups Deleted | 12 Objects "
                   "Added | 3 Objects Updated | 40 Objects Matched\n"
                   "Result | 12 added | 3 updated | 0 deleted | 0 failed\n",
        .added = 12,
        .updated = 3,
        .seconds = 2.5,
        .ended = 1796588896, /* 2026-12-06 20:28:16 UTC */
        .problems = problems,
        .n_problems = 2,
        .problems_total = 2,
    };
    return run;
}

static void test_compose_summary(void **state)
{
    (void)state;
    struct mailer_run run = sample_run();
    struct mailer_report r = {
        .kind = MAILER_SUMMARY,
        .connector = "conn-a",
        .now = 1796588900,
        .period_start = 1796502500,
        .runs = 3,
        .succeeded = 2,
        .failed_runs = 1,
        .added = 12,
        .updated = 3,
        .last_success = run.ended,
        .last = &run,
    };
    struct mailer_content c;
    struct dirconn_error err;
    assert_int_equal(mailer_compose(&r, &c, &err), DIRCONN_OK);
    assert_string_equal(c.subject, "Directory Connector conn-a: sync report, 3 runs, 1 failed");
    assert_non_null(strstr(c.text, "Runs | 3 total | 2 succeeded | 1 failed | 0 stopped by the "
                                   "delete threshold\n"));
    assert_non_null(strstr(c.text, "Objects | 12 added | 3 updated | 0 deleted | 0 failed\n"));
    assert_non_null(strstr(c.text, "Last successful synchronization: 2026-12-06 20:28:16 UTC\n"));
    assert_non_null(strstr(c.text, "Result | 12 added | 3 updated | 0 deleted | 0 failed\n"));
    assert_non_null(strstr(c.text, "Problems (2)\n- For CN=b,OU=Employees,DC=c,DC=com"));
    assert_null(strstr(c.text, "is not working"));
    /* HTML: the same, escaped */
    assert_non_null(strstr(c.html, "<!DOCTYPE html>"));
    assert_non_null(strstr(c.html, "12 added, 3 updated, 0 deleted, 0 failed"));
    assert_non_null(strstr(c.html, "with &lt;b&gt;&amp;amp;&lt;/b&gt;</td>"));
    assert_null(strstr(c.html, "<b>&amp;</b>"));
    assert_non_null(strstr(c.html, "<th>Warning or Error Message</th>"));
    mailer_content_clear(&c);
}

static void test_compose_alert_and_problem_limit(void **state)
{
    (void)state;
    char *many[MAILER_MAX_PROBLEMS];
    for (int i = 0; i < MAILER_MAX_PROBLEMS; i++) {
        many[i] = malloc(64);
        snprintf(many[i], 64, "problem number %d", i + 1);
    }
    struct mailer_run run = sample_run();
    run.rc = DIRCONN_ETHRESHOLD;
    run.message = "Delete threshold (20 objects) exceeded: 31 objects would be deleted";
    run.problems = (const char *const *)many;
    run.n_problems = MAILER_MAX_PROBLEMS;
    run.problems_total = 73;
    struct mailer_report r = {
        .kind = MAILER_ALERT_THRESHOLD,
        .connector = "conn-a",
        .reason = run.message,
        .now = 1796588900,
        .last = &run,
    };
    struct mailer_content c;
    struct dirconn_error err;
    assert_int_equal(mailer_compose(&r, &c, &err), DIRCONN_OK);
    assert_string_equal(c.subject,
                        "Directory Connector conn-a is not working: the delete threshold stopped a "
                        "sync");
    assert_non_null(strstr(c.text, "Cause: Delete threshold (20 objects) exceeded: 31 objects "
                                   "would be deleted\n"));
    assert_non_null(strstr(c.text, "The Directory Connector conn-a is not working.\n"));
    assert_non_null(strstr(c.text, "Alert: delete threshold\n"));
    assert_non_null(strstr(c.text, "Last successful synchronization: never\n"));
    assert_non_null(strstr(c.text, "Status: stopped by the delete threshold\n"));
    assert_non_null(strstr(c.text, "Problems (73, the first 50)\n"));
    assert_non_null(strstr(c.text, "- problem number 50\n"));
    assert_null(strstr(c.text, "problem number 51"));
    assert_non_null(strstr(c.text, "... and 23 more"));
    assert_non_null(strstr(c.html, "<p>... and 23 more.</p>"));
    assert_non_null(strstr(c.text, "dirconnctl status"));
    mailer_content_clear(&c);
    for (int i = 0; i < MAILER_MAX_PROBLEMS; i++)
        free(many[i]);
}

static void test_date(void **state)
{
    (void)state;
    char d[40];
    mailer_format_date(1796588896, d, sizeof(d));
    assert_string_equal(d, "Sun, 06 Dec 2026 20:28:16 +0000");
    mailer_format_date(0, d, sizeof(d));
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
}

static void test_subject_header(void **state)
{
    (void)state;
    char *h = mailer_subject_header("plain\r\nBcc: x@y");
    assert_string_equal(h, "Subject: plain  Bcc: x@y"); /* no header injection */
    free(h);
    /* "Rapport de synchronisation – Zürich" (UTF-8): encoded words that decode back */
    h = mailer_subject_header("Rapport \xc3\xa9t\xc3\xa9 Z\xc3\xbcrich");
    assert_string_equal(h, "Subject: =?UTF-8?B?UmFwcG9ydCDDqXTDqSBaw7xyaWNo?=");
    free(h);
    /* long: several words, each under 76 characters, no UTF-8 sequence split */
    char longs[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(longs, "\xc3\xa9t\xc3\xa9 ");
    h = mailer_subject_header(longs);
    int words = 0;
    for (char *w = strstr(h, "=?UTF-8?B?"); w != NULL; w = strstr(w + 1, "=?UTF-8?B?")) {
        char *end = strstr(w, "?=");
        assert_non_null(end);
        assert_true(end + 2 - w <= 75);
        words++;
    }
    assert_true(words >= 4);
    free(h);
}

static void test_headers(void **state)
{
    (void)state;
    char *to_v[] = {"ops@example.com", "audit@example.org"};
    struct strlist to = {to_v, 2};
    struct curl_slist *l = mailer_headers("dirconn@corp.example", &to, "the subject", 1796588896);
    assert_non_null(l);
    const char *want[] = {"Date: Sun, 06 Dec 2026 20:28:16 +0000", NULL,
                          "From: <dirconn@corp.example>",
                          "To: <ops@example.com>,\r\n <audit@example.org>", "Subject: the subject"};
    size_t i = 0;
    char first_id[128] = "";
    for (struct curl_slist *p = l; p != NULL; p = p->next, i++) {
        assert_true(i < 5);
        if (want[i] != NULL) {
            assert_string_equal(p->data, want[i]);
        } else {
            assert_int_equal(strncmp(p->data, "Message-ID: <", 13), 0);
            size_t n = strlen(p->data);
            assert_string_equal(p->data + n - strlen(".dirconn@corp.example>"),
                                ".dirconn@corp.example>");
            assert_int_equal(n, 13 + 32 + strlen(".dirconn@corp.example>"));
            snprintf(first_id, sizeof(first_id), "%s", p->data);
        }
    }
    assert_int_equal(i, 5);
    curl_slist_free_all(l);
    /* a fresh Message-ID every time */
    l = mailer_headers("dirconn@corp.example", &to, "s", 1796588896);
    assert_string_not_equal(l->next->data, first_id);
    curl_slist_free_all(l);
}

/* Without [reports] smtp_url there is no mailer, and every hook takes NULL. */
static void test_off(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    struct log_sink log;
    log_sink_init(&log, "test", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    struct mailer *m = (struct mailer *)1;
    struct dirconn_error err;
    assert_int_equal(mailer_new(cfg, &log, &m, &err), DIRCONN_OK);
    assert_null(m);
    struct mailer_run run = sample_run();
    mailer_sync_done(NULL, &run);
    mailer_lease_lost(NULL, "x");
    mailer_set_active(NULL, false);
    assert_true(mailer_reconfigure(NULL, cfg));
    mailer_free(NULL);
    log_sink_close(&log);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_compose_summary),
        cmocka_unit_test(test_compose_alert_and_problem_limit),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_subject_header),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
