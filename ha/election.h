/*
 * election.h - the HA election: which dirconnd instance of an organisation
 * is active (syncs and writes) and which stand by.
 *
 * One state machine on its own thread, so the lease is renewed on time
 * whatever the sync worker and the event loop are doing:
 *
 *   STANDBY   -> ACQUIRING  the lease is free (released) or expired by the lease
 *                           server's clock, and this instance waited the failover
 *                           interval (expired only) plus a random jitter
 *   ACQUIRING -> ACTIVE     the compare-and-swap took it: a new fencing token
 *   ACQUIRING -> STANDBY    another instance was faster, or the server failed
 *   ACTIVE    -> STANDBY    the server says the lease is no longer ours, or it
 *                           could not be renewed before its expiry minus the
 *                           safety margin (self-fencing, below)
 *   ACTIVE    -> RELEASING  ha_election_stop(release = true) (SIGTERM)
 *   RELEASING -> STOPPED    released (a standby takes it at once)
 *   any       -> STOPPED    ha_election_stop
 * Every transition is logged ("ha: standby -> acquiring").
 *
 * Time: the lease server reports how long the current lease lasts
 * (lease_info.remaining_ms); the election turns that into a deadline on
 * CLOCK_MONOTONIC at the moment the request was sent, so neither host's
 * wall clock, nor a difference between them, takes part. An active instance
 * may write only while CLOCK_MONOTONIC is before
 *   (send time of its last successful acquire/renew) + lease duration - margin
 * and the SCIM client checks that deadline itself before each write
 * (scim_client_options.write_deadline_ms): writes stop on time even when
 * this thread is blocked in a request.
 *
 * Self-fencing comes before anything else. Every wake-up of the election
 * thread (its timer, the return of a renewal) and every question "may this
 * instance write?" (ha_election_is_active, ha_election_status, and so the
 * daemon's sync start, its shared-state write, its status and its SIGCONT
 * handler) first compares the deadline with the monotonic clock. Past it,
 * the instance is a standby at once: the gate closes, "ha: self-fenced" is
 * logged once for the episode with how late it is, the state is STANDBY, the
 * role callback is told (the daemon cancels its running sync), and only then
 * does the thread look at the lease again (STANDBY -> ACQUIRING). A process
 * resumed after a SIGSTOP that outlasted its lease therefore never renews,
 * writes or reports "active" first.
 *
 * A standby polls the lease every min(renew interval, 500 ms), so a released
 * lease is taken within about a second; an expired one right after its
 * expiry (the poll is timed by the remaining duration the server reported)
 * plus the failover interval and jitter.
 */
#ifndef DIRCONN_HA_ELECTION_H
#define DIRCONN_HA_ELECTION_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/core/platform.h"
#include "ha/lease.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum ha_state { HA_STANDBY = 0, HA_ACQUIRING, HA_ACTIVE, HA_RELEASING, HA_STOPPED };

/* ha_state_name - "standby", "acquiring", "active", "releasing", "stopped". */
const char *ha_state_name(enum ha_state s);

struct ha_options {
    int64_t duration_ms; /* lease duration ([ha] lease_duration) */
    int64_t renew_ms;    /* renew interval ([ha] renew_interval) */
    int64_t failover_ms; /* wait after expiry before taking the lease ([ha] failover_interval) */
    int64_t jitter_ms;   /* random 0..jitter added to a standby's wait ([ha] jitter) */
    int64_t margin_ms;   /* safety margin before expiry; 0 = duration/10 within 500 ms..5 s */
    bool one_shot;       /* a one-time run (dirconnctl sync): ha_election_wait_active returns
                            the lease server's first failure instead of waiting */
    bool self_in_use;    /* a lease this identity holds belongs to another live process (the
                            connector's running dirconnd) and is not taken over; false: it is
                            left by a crashed process of this identity and taken back */
    int64_t (*clock)(void *arg); /* the deadline's clock in ms; NULL: platform_monotonic_ms (tests
                                    inject one that jumps, as a SIGSTOPped process sees it) */
    void *clock_arg;
};

/* ha_options_from_config - the [ha] settings of cfg. */
void ha_options_from_config(const struct config *cfg, struct ha_options *o);

/*
 * Called on the election thread each time this instance becomes active
 * (active = true, with its fencing token) or stops being active. Keep it
 * short: hand over to the caller's own loop (event_active).
 */
typedef void (*ha_role_fn)(void *arg, bool active, int64_t token);

/* A snapshot of the election for status displays; strings owned (ha_status_clear). */
struct ha_status {
    enum ha_state state;
    const char *backend; /* "cloud", "etcd"; static */
    char *identity;      /* this instance's holderIdentity */
    char *holder;        /* the current holder as last seen, or NULL */
    int64_t token;       /* the fencing token while active, else the last seen */
    char *holder_since;  /* RFC 3339, the lease server's acquireTime of the holder, or NULL */
    char *last_renew;    /* RFC 3339, the lease server's renewTime, or NULL */
    long activations;    /* how many times this instance became active */
    long self_fences;    /* how many times it found itself past its lease deadline */
    char last_error[DIRCONN_ERROR_LEN]; /* the last lease server failure, or "" */
    enum dirconn_err last_code;         /* and its code (DIRCONN_OK when none) */
};

/* ha_status_clear - free the strings of s. */
void ha_status_clear(struct ha_status *s);

struct ha_election;

/*
 * ha_backend_new - the lease backend cfg's [ha] lease names (cloud or etcd),
 * for identity `identity` (NULL: the connector id, or for etcd host:pid when
 * not registered). *out is zeroed and DIRCONN_OK returned with out->ops ==
 * NULL when lease = none. proxy_shared (borrowed, may be NULL): the program's
 * memory of dead proxies (proxy/proxy.h). Errors: those of lease_backend_cloud_new and
 * lease_backend_etcd_new.
 */
enum dirconn_err ha_backend_new(const struct config *cfg, const struct log_sink *log,
                                struct proxy_shared *proxy_shared, const char *identity,
                                struct lease_backend *out, struct dirconn_error *err);

/*
 * ha_election_reconfigure - hand the backend the [proxy] settings of cfg
 * (taken over: freed by the election or the backend) for its requests from
 * then on (SIGHUP). The election thread applies them before its next
 * request and logs the outcome; a backend without a proxy (etcd) ignores
 * them. Settings given again before that replace the pending ones.
 */
void ha_election_reconfigure(struct ha_election *e, struct config *cfg);

/*
 * ha_election_start - start the election thread on backend b (taken over:
 * freed by ha_election_free). role (may be NULL) is called on each change of
 * role. log is borrowed and must outlive the election. Errors: DIRCONN_ENOMEM,
 * DIRCONN_EFAIL (no thread).
 */
enum dirconn_err ha_election_start(struct lease_backend *b, const struct ha_options *o,
                                   const struct log_sink *log, ha_role_fn role, void *arg,
                                   struct ha_election **out, struct dirconn_error *err);

/*
 * ha_election_wait_active - block up to timeout_ms until this instance is
 * active. Returns DIRCONN_OK when active; DIRCONN_ELEASE when the lease is
 * held by another live instance (the message names it and when it expires)
 * or the time ran out; the lease server's error when it could not be asked.
 * For one-shot runs (dirconnctl sync).
 */
enum dirconn_err ha_election_wait_active(struct ha_election *e, int64_t timeout_ms,
                                         struct dirconn_error *err);

/*
 * ha_election_write_deadline - the write gate for the SCIM client: writes
 * may start while CLOCK_MONOTONIC (ms) is below it; 0 while not active.
 * Valid until ha_election_free.
 */
const _Atomic int64_t *ha_election_write_deadline(struct ha_election *e);

/*
 * ha_election_is_active - true while this instance holds the lease and may
 * write: it is active and CLOCK_MONOTONIC is before its deadline. Past the
 * deadline it self-fences first (see above) and returns false. Any thread.
 */
bool ha_election_is_active(struct ha_election *e);

/* ha_election_token - the fencing token while active (0 otherwise). */
int64_t ha_election_token(struct ha_election *e);

/* ha_election_status - fill *s (free with ha_status_clear); self-fences first when due. */
void ha_election_status(struct ha_election *e, struct ha_status *s);

/*
 * ha_election_lease_cause - for sync_options.lease_cause (arg = the
 * election): a run stopped on the lease (DIRCONN_ELEASE) because the cloud
 * lease could not be renewed, its server being unreachable, was stopped by
 * the cloud or the proxy: err gets the lease server's failure and the
 * return is its code (DIRCONN_ECLOUD_CONNECT, DIRCONN_EPROXY). Otherwise
 * (another instance holds the lease, the etcd backend) DIRCONN_ELEASE, err
 * untouched.
 */
enum dirconn_err ha_election_lease_cause(void *arg, struct dirconn_error *err);

/*
 * ha_election_stop - stop the thread; when release is true and this
 * instance is active, the lease is released first (RELEASING) so a standby
 * takes over at once. Blocks until the thread ended (at most one request
 * timeout). The write gate closes before the release is sent.
 */
void ha_election_stop(struct ha_election *e, bool release);

/* ha_election_free - stop (without release) if running, free everything. e may be NULL. */
void ha_election_free(struct ha_election *e);

#endif
