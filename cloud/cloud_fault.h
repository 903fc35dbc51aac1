/*
 * cloud_fault.h - fault injection for dirconn-cloud (docs/cloud-api.md, "Fault injection").
 *
 * Faults apply to /scim/ and /v1/orgs/ requests (and /oauth/token when
 * oauth is set). Decisions come from one seeded generator (splitmix64) so a
 * run with the same seed and request order injects the same faults.
 *
 * Order per request: throttle (429 + Retry-After when more than throttle_rps
 * requests arrived in the current second), latency, then error_500 / error_503
 * (answered before the request is applied), then after the request was
 * applied: error_500_after (applied, then answered 500) and drop (applied,
 * then the connection is closed in the middle of the response body).
 */
#ifndef DIRCONN_CLOUD_FAULT_H
#define DIRCONN_CLOUD_FAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct cloud_fault_config {
    long latency_ms;    /* added to every faulted request */
    long jitter_ms;     /* plus uniform 0..jitter_ms */
    long stall_ms;      /* SCIM requests: the thread that processes them is held this long first
                         * (blocking, unlike latency_ms: the SCIM requests behind it wait) */
    double p500;        /* fraction answered 500 before applying */
    double p503;        /* fraction answered 503 + Retry-After before applying */
    double p500_after;  /* fraction applied, then answered 500 */
    double pdrop;       /* fraction applied, then dropped mid-response */
    long throttle_rps;  /* > 0: 429 above this many requests per second */
    long retry_after_s; /* Retry-After for 429 and 503 */
    uint64_t seed;      /* generator seed */
    bool oauth;         /* also fault POST /oauth/token */
    bool writes_only;   /* only POST, PUT, PATCH, DELETE (reads always pass) */
    bool scim_only;     /* only /scim/... (the control API: lease, state, reports, passes) */
};

struct cloud_fault_counts {
    uint64_t throttled, e500, e503, e500_after, dropped, delayed, stalled;
};

struct cloud_fault {
    struct cloud_fault_config cfg;
    uint64_t rng;
    int64_t window_s;
    long window_count;
    struct cloud_fault_counts counts;
};

enum cloud_fault_action { CLOUD_FAULT_NONE, CLOUD_FAULT_429, CLOUD_FAULT_500, CLOUD_FAULT_503 };

/* cloud_fault_init - set the configuration and seed the generator. */
void cloud_fault_init(struct cloud_fault *f, const struct cloud_fault_config *cfg);

/*
 * cloud_fault_before - decide the faults applied before a request runs.
 * now_ms is the wall clock in milliseconds; *delay_ms receives the latency
 * to add (0 for none). Returns the error to answer instead of running the
 * request, or CLOUD_FAULT_NONE.
 */
enum cloud_fault_action cloud_fault_before(struct cloud_fault *f, int64_t now_ms, long *delay_ms);

/*
 * cloud_fault_stall - the stall (milliseconds, 0 for none) of a SCIM request that passed
 * cloud_fault_before; counts it. Called on the event loop thread when the request arrives; the
 * SCIM thread sleeps that long before it processes the request (cloud_http.c).
 */
long cloud_fault_stall(struct cloud_fault *f);

/* cloud_fault_after - decide the faults applied after a request ran. */
void cloud_fault_after(struct cloud_fault *f, bool *error_500, bool *drop);

/* cloud_fault_json - the configuration and counters as JSON (caller owns). */
json_t *cloud_fault_json(const struct cloud_fault *f);

/*
 * cloud_fault_update - apply the members of a JSON object (same names as
 * cloud_fault_json's "config") to f; unknown members or bad values leave f
 * unchanged and return -1 with a message in msg.
 */
int cloud_fault_update(struct cloud_fault *f, const json_t *obj, char *msg, size_t msglen);

#endif
