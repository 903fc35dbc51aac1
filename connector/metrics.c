/*
 * metrics.c - counters and histograms of dirconnd, and their Prometheus text
 * exposition (see metrics.h for the names).
 */
#include "connector/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bucket upper bounds (seconds); +Inf is implied. */
static const double sync_bounds[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
#define N_SYNC_BOUNDS (sizeof(sync_bounds) / sizeof(sync_bounds[0]))
static const double scim_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_SCIM_BOUNDS (sizeof(scim_bounds) / sizeof(scim_bounds[0]))
static const double latency_bounds[] = {0.5, 1, 2, 5, 10, 30, 60, 300, 900};
#define N_LATENCY_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

static const char *const sync_types[] = {"incremental", "full"};
static const char *const outcomes[] = {"success", "failed", "threshold", "error"};
#define N_OUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))
static const char *const kinds[OBJECT_KINDS] = {"user", "group", "contact"};
static const char *const ops[METRICS_OP_MAX] = {"added", "updated", "deleted", "failed", "skipped"};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "other"};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))
/* status classes: none (no answer), 1xx..5xx */
static const char *const classes[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
#define N_CLASSES (sizeof(classes) / sizeof(classes[0]))

struct histogram {
    unsigned long long bucket[16]; /* per bound, not cumulative; the last one is +Inf */
    unsigned long long count;
    double sum;
};

struct metrics {
    pthread_mutex_t lock;
    struct histogram sync[2];
    unsigned long long syncs[2][N_OUTCOMES];
    unsigned long long objects[OBJECT_KINDS][METRICS_OP_MAX];
    time_t last_success;
    unsigned long long threshold_trips;
    unsigned long long scim[N_METHODS][N_CLASSES];
    struct histogram scim_latency[N_METHODS];
    struct histogram change_latency;
};

static void observe(struct histogram *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m != NULL && pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_scim_request(void *arg, const char *method, long status, double seconds)
{
    struct metrics *m = arg;
    size_t mi = N_METHODS - 1;
    for (size_t i = 0; i + 1 < N_METHODS; i++)
        if (method != NULL && strcmp(method, methods[i]) == 0)
            mi = i;
    size_t ci = status >= 100 && status < 600 ? (size_t)(status / 100) : 0;
    pthread_mutex_lock(&m->lock);
    m->scim[mi][ci]++;
    observe(&m->scim_latency[mi], scim_bounds, N_SCIM_BOUNDS, seconds < 0 ? 0 : seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_run_done(struct metrics *m, const struct metrics_run *run)
{
    size_t t = run->full ? 1 : 0;
    size_t o = N_OUTCOMES - 1;
    for (size_t i = 0; i < N_OUTCOMES; i++)
        if (run->outcome != NULL && strcmp(run->outcome, outcomes[i]) == 0)
            o = i;
    pthread_mutex_lock(&m->lock);
    observe(&m->sync[t], sync_bounds, N_SYNC_BOUNDS, run->seconds < 0 ? 0 : run->seconds);
    m->syncs[t][o]++;
    for (int k = 0; k < OBJECT_KINDS; k++)
        for (int op = 0; op < METRICS_OP_MAX; op++)
            if (run->objects[k][op] > 0)
                m->objects[k][op] += (unsigned long long)run->objects[k][op];
    if (o == 0)
        m->last_success = run->ended;
    if (strcmp(outcomes[o], "threshold") == 0)
        m->threshold_trips++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_change_latency(struct metrics *m, double seconds)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->change_latency, latency_bounds, N_LATENCY_BOUNDS, seconds < 0 ? 0 : seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_set_last_success(struct metrics *m, time_t t)
{
    pthread_mutex_lock(&m->lock);
    if (t > m->last_success)
        m->last_success = t;
    pthread_mutex_unlock(&m->lock);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram's _bucket (cumulative), _sum and _count lines with one label (or none: NULL). */
static void histogram_lines(FILE *f, const char *name, const char *label, const char *value,
                            const struct histogram *h, const double *bounds, size_t n)
{
    char lv[128] = "", lb[160] = "";
    if (label != NULL) {
        snprintf(lv, sizeof(lv), "%s=\"%s\"", label, value);
        snprintf(lb, sizeof(lb), "{%s}", lv);
    }
    const char *sep = label != NULL ? "," : "";
    unsigned long long cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->bucket[i];
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lv, sep, bounds[i], cum);
    }
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lv, sep, h->count);
    fprintf(f, "%s_sum%s %.6f\n", name, lb, h->sum);
    fprintf(f, "%s_count%s %llu\n", name, lb, h->count);
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f == NULL)
        return NULL;
    pthread_mutex_lock(&m->lock);
    head(f, "dirconn_build_info", "gauge", "The running dirconnd's version (always 1).");
    fprintf(f, "dirconn_build_info{version=\"%s\"} 1\n", DIRCONN_VERSION);
    head(f, "dirconn_sync_duration_seconds", "histogram",
         "Wall time of the finished syncs, by type.");
    for (size_t t = 0; t < 2; t++)
        histogram_lines(f, "dirconn_sync_duration_seconds", "type", sync_types[t], &m->sync[t],
                        sync_bounds, N_SYNC_BOUNDS);
    head(f, "dirconn_syncs_total", "counter", "Finished syncs, by type and outcome.");
    for (size_t t = 0; t < 2; t++)
        for (size_t o = 0; o < N_OUTCOMES; o++)
            fprintf(f, "dirconn_syncs_total{type=\"%s\",outcome=\"%s\"} %llu\n", sync_types[t],
                    outcomes[o], m->syncs[t][o]);
    head(f, "dirconn_objects_total", "counter",
         "Directory objects the syncs added, updated or deleted in the cloud (acknowledged), "
         "failed to write or skipped, by kind and operation.");
    for (int k = 0; k < OBJECT_KINDS; k++)
        for (int op = 0; op < METRICS_OP_MAX; op++)
            fprintf(f, "dirconn_objects_total{kind=\"%s\",op=\"%s\"} %llu\n", kinds[k], ops[op],
                    m->objects[k][op]);
    head(f, "dirconn_last_success_timestamp_seconds", "gauge",
         "Unix time at which the last successful sync ended (0: none yet).");
    fprintf(f, "dirconn_last_success_timestamp_seconds %lld\n", (long long)m->last_success);
    head(f, "dirconn_delete_threshold_trips_total", "counter",
         "Syncs the delete threshold stopped before any change.");
    fprintf(f, "dirconn_delete_threshold_trips_total %llu\n", m->threshold_trips);
    head(f, "dirconn_scim_requests_total", "counter",
         "SCIM request attempts to the cloud, by method and HTTP status class (none: no answer).");
    for (size_t i = 0; i < N_METHODS; i++)
        for (size_t c = 0; c < N_CLASSES; c++)
            if (m->scim[i][c] > 0 || c == 2)
                fprintf(f, "dirconn_scim_requests_total{method=\"%s\",status_class=\"%s\"} %llu\n",
                        methods[i], classes[c], m->scim[i][c]);
    head(f, "dirconn_scim_request_duration_seconds", "histogram",
         "Duration of the SCIM request attempts, by method.");
    for (size_t i = 0; i < N_METHODS; i++)
        histogram_lines(f, "dirconn_scim_request_duration_seconds", "method", methods[i],
                        &m->scim_latency[i], scim_bounds, N_SCIM_BOUNDS);
    head(f, "dirconn_change_latency_seconds", "histogram",
         "From the first change notification of a burst to the end of the successful sync that "
         "carried it.");
    histogram_lines(f, "dirconn_change_latency_seconds", NULL, NULL, &m->change_latency,
                    latency_bounds, N_LATENCY_BOUNDS);
    pthread_mutex_unlock(&m->lock);
    head(f, "dirconn_lease_active", "gauge",
         "1 when this instance holds the HA lease (or runs without HA), 0 on a standby.");
    fprintf(f, "dirconn_lease_active %d\n", g->active ? 1 : 0);
    if (g->ha) {
        head(f, "dirconn_lease_fencing_token", "gauge",
             "The fencing token of the lease this instance holds or last saw.");
        fprintf(f, "dirconn_lease_fencing_token %lld\n", (long long)g->fencing_token);
    }
    if (g->notify_state != NULL) {
        static const char *const states[] = {"off",         "connected", "reconnecting",
                                             "unsupported", "held",      "standby"};
        head(f, "dirconn_notification_state", "gauge",
             "The directory change notification connection: 1 for its current state.");
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            fprintf(f, "dirconn_notification_state{state=\"%s\"} %d\n", states[i],
                    strcmp(states[i], g->notify_state) == 0);
    }
    if (g->watermark_age >= 0) {
        head(f, "dirconn_watermark_age_seconds", "gauge",
             "Seconds since a sync last saved the directory watermark.");
        fprintf(f, "dirconn_watermark_age_seconds %.0f\n", g->watermark_age);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
