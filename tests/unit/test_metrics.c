/* Unit tests for connector/metrics.c: what is counted, and the text exposition format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(struct metrics *m, const struct metrics_gauges *g)
{
    size_t len = 0;
    char *text = metrics_render(m, g, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("'%s' is not a line of:\n%s", line, text);
}

static void lacks(const char *text, const char *part)
{
    if (strstr(text, part) != NULL)
        fail_msg("'%s' should not be in:\n%s", part, text);
}

static void test_empty(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    struct metrics_gauges g = {.active = true, .watermark_age = -1};
    char *t = render(m, &g);
    has(t, "# TYPE dirconn_sync_duration_seconds histogram");
    has(t, "dirconn_sync_duration_seconds_bucket{type=\"full\",le=\"+Inf\"} 0");
    has(t, "dirconn_sync_duration_seconds_count{type=\"incremental\"} 0");
    has(t, "# TYPE dirconn_objects_total counter");
    has(t, "dirconn_objects_total{kind=\"contact\",op=\"skipped\"} 0");
    has(t, "dirconn_last_success_timestamp_seconds 0");
    has(t, "dirconn_lease_active 1");
    /* no HA, no notification state, no watermark: those gauges are left out */
    lacks(t, "dirconn_lease_fencing_token");
    lacks(t, "dirconn_notification_state");
    lacks(t, "dirconn_watermark_age_seconds");
    /* every line ends with a newline, the last one too */
    assert_int_equal(t[strlen(t) - 1], '\n');
    free(t);
    metrics_free(m);
}

static void test_runs_and_requests(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_run r = {.full = true, .outcome = "success", .seconds = 12.5, .ended = 1000};
    r.objects[OBJECT_USER][METRICS_ADDED] = 133;
    r.objects[OBJECT_GROUP][METRICS_ADDED] = 21;
    r.objects[OBJECT_USER][METRICS_SKIPPED] = 18;
    metrics_run_done(m, &r);
    struct metrics_run t = {.full = false, .outcome = "threshold", .seconds = 0.5, .ended = 2000};
    metrics_run_done(m, &t);
    metrics_set_last_success(m, 500); /* older than the run's end: kept */
    metrics_scim_request(m, "POST", 201, 0.02);
    metrics_scim_request(m, "POST", 409, 0.3);
    metrics_scim_request(m, "GET", 0, 40);
    metrics_scim_request(m, "PROPFIND", 500, 0.001);
    metrics_change_latency(m, 1.25);
    struct metrics_gauges g = {.ha = true,
                               .active = false,
                               .fencing_token = 7,
                               .notify_state = "reconnecting",
                               .watermark_age = 42};
    char *x = render(m, &g);
    has(x, "dirconn_sync_duration_seconds_bucket{type=\"full\",le=\"10\"} 0");
    has(x, "dirconn_sync_duration_seconds_bucket{type=\"full\",le=\"30\"} 1");
    has(x, "dirconn_sync_duration_seconds_bucket{type=\"full\",le=\"+Inf\"} 1");
    has(x, "dirconn_sync_duration_seconds_sum{type=\"full\"} 12.500000");
    has(x, "dirconn_sync_duration_seconds_bucket{type=\"incremental\",le=\"1\"} 1");
    has(x, "dirconn_syncs_total{type=\"full\",outcome=\"success\"} 1");
    has(x, "dirconn_syncs_total{type=\"incremental\",outcome=\"threshold\"} 1");
    has(x, "dirconn_objects_total{kind=\"user\",op=\"added\"} 133");
    has(x, "dirconn_objects_total{kind=\"group\",op=\"added\"} 21");
    has(x, "dirconn_objects_total{kind=\"user\",op=\"skipped\"} 18");
    has(x, "dirconn_last_success_timestamp_seconds 1000");
    has(x, "dirconn_delete_threshold_trips_total 1");
    has(x, "dirconn_scim_requests_total{method=\"POST\",status_class=\"2xx\"} 1");
    has(x, "dirconn_scim_requests_total{method=\"POST\",status_class=\"4xx\"} 1");
    has(x, "dirconn_scim_requests_total{method=\"GET\",status_class=\"none\"} 1");
    has(x, "dirconn_scim_requests_total{method=\"other\",status_class=\"5xx\"} 1");
    has(x, "dirconn_scim_request_duration_seconds_bucket{method=\"POST\",le=\"0.025\"} 1");
    has(x, "dirconn_scim_request_duration_seconds_bucket{method=\"POST\",le=\"0.5\"} 2");
    has(x, "dirconn_scim_request_duration_seconds_bucket{method=\"GET\",le=\"30\"} 0");
    has(x, "dirconn_scim_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 1");
    has(x, "dirconn_lease_active 0");
    has(x, "dirconn_lease_fencing_token 7");
    has(x, "dirconn_notification_state{state=\"reconnecting\"} 1");
    has(x, "dirconn_notification_state{state=\"connected\"} 0");
    has(x, "dirconn_watermark_age_seconds 42");
    has(x, "dirconn_change_latency_seconds_bucket{le=\"0.5\"} 0");
    has(x, "dirconn_change_latency_seconds_bucket{le=\"2\"} 1");
    has(x, "dirconn_change_latency_seconds_count 1");
    has(x, "dirconn_change_latency_seconds_sum 1.250000");
    free(x);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_runs_and_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
