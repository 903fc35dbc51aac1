/*
 * metrics.h - dirconnd's Prometheus metrics: counters and histograms that the
 * sync thread and the event loop feed, rendered in the Prometheus text
 * exposition format (version 0.0.4, "Exposition formats" of the Prometheus
 * documentation) for GET /metrics (admin/web.h).
 *
 * Names follow the Prometheus naming guide ("Metric and label naming"): the
 * dirconn_ prefix, base units (seconds), _total on counters, one metric per
 * quantity with labels for its dimensions:
 *
 *   dirconn_build_info{version}                          gauge, 1
 *   dirconn_sync_duration_seconds{type}                  histogram (type full|incremental)
 *   dirconn_syncs_total{type,outcome}                    counter (success|failed|threshold|error)
 *   dirconn_objects_total{kind,op}                       counter (kind user|group|contact;
 *                                                        op added|updated|deleted|failed|skipped)
 *   dirconn_last_success_timestamp_seconds               gauge, Unix time (0 = none yet)
 *   dirconn_delete_threshold_trips_total                 counter
 *   dirconn_scim_requests_total{method,status_class}     counter (2xx..5xx, "none": no answer)
 *   dirconn_scim_request_duration_seconds{method}        histogram, per attempt
 *   dirconn_lease_active                                 gauge, 1 active, 0 standby
 *   dirconn_lease_fencing_token                          gauge (HA only)
 *   dirconn_notification_state{state}                    gauge, 1 for the current state
 *   dirconn_watermark_age_seconds                        gauge (once a watermark was saved)
 *   dirconn_change_latency_seconds                       histogram: from the first change
 *                                                        notification of a burst to the end of
 *                                                        the successful sync that carried it
 *
 * Counters count from the process start (Prometheus' rate() handles resets).
 * Thread-safe: every function may be called from any thread.
 */
#ifndef DIRCONN_METRICS_H
#define DIRCONN_METRICS_H

#include "connector/plan.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The object operations counted per kind (dirconn_objects_total's op label). */
enum metrics_op {
    METRICS_ADDED = 0,
    METRICS_UPDATED,
    METRICS_DELETED,
    METRICS_FAILED,
    METRICS_SKIPPED,
    METRICS_OP_MAX
};

/* One finished run, as dirconnd saw it end. */
struct metrics_run {
    bool full;           /* a full sync (an incremental that fell back to full counts as full) */
    const char *outcome; /* "success", "failed", "threshold", "error" */
    double seconds;      /* wall time */
    long objects[OBJECT_KINDS][METRICS_OP_MAX]; /* acknowledged (added...) or reported */
    time_t ended;                               /* Unix time */
};

/* What the loop knows at scrape time (gauges that are not counted here). */
struct metrics_gauges {
    bool ha;                  /* an HA lease backend runs */
    bool active;              /* this instance may sync (always true without HA) */
    int64_t fencing_token;    /* the lease's fencing token, 0 = none */
    const char *notify_state; /* dir_notify_name(); NULL = not shown */
    double watermark_age;     /* seconds since the watermark was saved; < 0 unknown */
};

struct metrics;

/* metrics_new - a zeroed set; NULL when out of memory. Free with metrics_free. */
struct metrics *metrics_new(void);

/* metrics_free - free m (may be NULL). */
void metrics_free(struct metrics *m);

/*
 * metrics_scim_request - count one SCIM request attempt: method ("GET", "POST",
 * "PUT", "PATCH", "DELETE"; anything else counts as "other"), the HTTP status
 * (0 when no answer arrived) and its duration in seconds. Matches the shape of
 * scim_client_options.observe (connector/scim.h), with m as its argument.
 */
void metrics_scim_request(void *m, const char *method, long status, double seconds);

/* metrics_run_done - count a finished run (dry runs are not counted). */
void metrics_run_done(struct metrics *m, const struct metrics_run *run);

/* metrics_change_latency - count one change latency (seconds; see the list above). */
void metrics_change_latency(struct metrics *m, double seconds);

/* metrics_set_last_success - set the last successful sync's end (Unix time), e.g. at start. */
void metrics_set_last_success(struct metrics *m, time_t t);

/*
 * metrics_render - the exposition text (Content-Type "text/plain; version=0.0.4")
 * of every metric, with g's gauges. Returns a malloc'ed NUL-terminated string the
 * caller frees, its length in *len; NULL when out of memory.
 */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g, size_t *len);

#endif
