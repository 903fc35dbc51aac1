/*
 * lease.h - the HA lease: one backend interface, two backends.
 *
 * Several dirconnd instances of one organisation elect the active one
 * through a lease kept by a lease server: the reference cloud's control API
 * (docs/cloud-api.md, "Lease", modelled on the Kubernetes
 * coordination.k8s.io/v1 Lease) or an etcd v3 cluster through its JSON
 * gateway (etcd's "gRPC gateway": /v3/lease/grant, /v3/lease/keepalive,
 * /v3/kv/range, /v3/kv/txn). The election (ha/election.h) drives a backend;
 * a backend only talks to its server.
 *
 * Time: every duration a backend reports is measured by the lease server's
 * clock relative to its own answer (cloud: renewTime + leaseDurationSeconds
 * - serverTime; etcd: the lease's TTL), never by comparing this host's wall
 * clock with another's. The election turns them into deadlines on the local
 * monotonic clock.
 *
 * The fencing token is a number that grows with every change of holder:
 * the cloud's leaseTransitions, etcd's create_revision of the lease key.
 * Writes made under the lease carry it (cloud: the Dirconn-Fencing-Token
 * header on SCIM writes and PUT /state; etcd: a txn compare on the lease
 * key's create_revision for the state key).
 *
 * A backend is used by one thread at a time (the election thread); its
 * calls are synchronous HTTP requests bounded by the backend's timeout.
 */
#ifndef DIRCONN_HA_LEASE_H
#define DIRCONN_HA_LEASE_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What a backend saw of the lease at one answer of the lease server. */
struct lease_info {
    char *holder;         /* holderIdentity (connector id), NULL when nobody holds it; owned */
    int64_t token;        /* fencing token of the current holder (0 when free and never held) */
    int64_t remaining_ms; /* how long the holder's lease lasts from this answer, by the server's
                             clock; 0 when free or expired */
    int64_t duration_ms;  /* the holder's lease duration, 0 when free */
    char *version;        /* compare-and-swap version (cloud: resourceVersion; etcd: the key's
                             mod_revision as text), NULL when the backend has none; owned */
    char *acquired_at;    /* RFC 3339 time the holder took it, by the server's clock, or NULL */
    char *renewed_at;     /* RFC 3339 time of the last renewal, by the server's clock, or NULL */
};

/* lease_info_clear - free the strings of li and zero it. li may be NULL. */
void lease_info_clear(struct lease_info *li);

/* lease_info_copy - deep copy; returns false when out of memory (dst is then zeroed). */
bool lease_info_copy(struct lease_info *dst, const struct lease_info *src);

/*
 * The backend operations. `self` is the backend's own pointer. Each fills
 * *out (zeroed by the caller, freed with lease_info_clear) on success.
 *
 * The etcd backend's errors are in the lease-server family (lease_server_error):
 * DIRCONN_ELEASE_CONNECT when no endpoint answered, DIRCONN_ELEASE_AUTH when
 * it refused the credentials, DIRCONN_ELEASE_SERVER for another failure of
 * the server or its answer. The cloud lease's server is the cloud: its errors
 * are the cloud's (DIRCONN_ECLOUD_CONNECT, DIRCONN_ECLOUD_AUTH, DIRCONN_ECLOUD),
 * as those of the sync that runs beside it. DIRCONN_EPROXY and DIRCONN_ENOMEM
 * as they are.
 *
 * observe  - read the lease. Errors: the transport's, DIRCONN_ENOMEM.
 * acquire  - take the lease for this instance with duration_ms, given what
 *            observe last returned (`seen`: its version is the compare-and-swap
 *            precondition). Only when seen shows it free or expired (remaining_ms
 *            == 0) or held by this instance. DIRCONN_ELEASE when another instance
 *            was faster or holds it (412/409, txn compare failed); transport errors.
 * renew    - extend this instance's lease by duration_ms from now (server clock).
 *            DIRCONN_ELEASE when it is no longer this instance's (expired and taken,
 *            released by an operator, deregistered); transport errors otherwise
 *            (the caller retries until its own deadline).
 * release  - give it up so a standby takes it at once (holder null, or the key
 *            deleted and the etcd lease revoked). DIRCONN_OK also when this
 *            instance no longer held it.
 * state_get - the shared connector-state document (cloud: GET /state; etcd: the
 *            state key beside the lease key) into *doc (owned; {} when none was
 *            ever written) and its version into *version (owned; may be NULL).
 * state_put - replace the document, if its version is still `version` (NULL =
 *            unconditional) and this instance still holds the lease under
 *            `token`. DIRCONN_ELEASE when the write was fenced (stale token, lease
 *            lost); a version mismatch is DIRCONN_ELEASE_SERVER (etcd) or
 *            DIRCONN_ECLOUD (cloud); transport errors. Sent once: a
 *            transport failure, 429 or 5xx is not tried again here (the
 *            caller asks whether it may still write first; ha_shared_export).
 * free     - release everything (does not release the lease).
 * reconfigure - optional (NULL: the backend has no settings to take): take
 *            the [proxy] settings of cfg (owned by the backend from now on,
 *            also on error) for the requests from now on. Errors: those of
 *            proxy_new; the old settings stay then.
 */
struct proxy_shared;

struct lease_backend_ops {
    const char *name; /* "cloud" or "etcd", for logs and status */
    enum dirconn_err (*observe)(void *self, struct lease_info *out, struct dirconn_error *err);
    enum dirconn_err (*acquire)(void *self, const struct lease_info *seen, int64_t duration_ms,
                                struct lease_info *out, struct dirconn_error *err);
    enum dirconn_err (*renew)(void *self, int64_t duration_ms, struct lease_info *out,
                              struct dirconn_error *err);
    enum dirconn_err (*release)(void *self, struct dirconn_error *err);
    enum dirconn_err (*state_get)(void *self, json_t **doc, char **version,
                                  struct dirconn_error *err);
    enum dirconn_err (*state_put)(void *self, const json_t *doc, const char *version, int64_t token,
                                  struct dirconn_error *err);
    void (*free)(void *self);
    enum dirconn_err (*reconfigure)(void *self, struct config *cfg, struct dirconn_error *err);
};

/*
 * lease_server_error - the border of a lease backend: the cloud-family codes
 * its transport gives (DIRCONN_ECLOUD_CONNECT, DIRCONN_ECLOUD_AUTH,
 * DIRCONN_ECLOUD) become the lease-server family (DIRCONN_ELEASE_CONNECT,
 * DIRCONN_ELEASE_AUTH, DIRCONN_ELEASE_SERVER; docs/cli.md exit codes 52–54),
 * so that an etcd outage is never reported as "cloud unreachable". The etcd
 * backend applies it (LEASE_SERVER_BORDER); the cloud lease does not, its
 * server being the cloud.
 * Other codes pass unchanged. err (may be NULL) gets the same code; its
 * message and cause stay. Returns the translated code.
 */
enum dirconn_err lease_server_error(enum dirconn_err e, struct dirconn_error *err);

/*
 * LEASE_SERVER_BORDER(pfx) - in a backend's source: define the operations
 * pfx##_observe_b, pfx##_acquire_b, pfx##_renew_b, pfx##_release_b,
 * pfx##_state_get_b and pfx##_state_put_b, each calling the backend's own
 * pfx##_observe ... pfx##_state_put and passing its result through
 * lease_server_error. The backend's struct lease_backend_ops names the _b
 * functions, so every error leaves the backend in the lease-server family.
 */
#define LEASE_SERVER_BORDER(pfx)                                                                   \
    static enum dirconn_err pfx##_observe_b(void *self, struct lease_info *out,                    \
                                            struct dirconn_error *err)                             \
    {                                                                                              \
        return lease_server_error(pfx##_observe(self, out, err), err);                             \
    }                                                                                              \
    static enum dirconn_err pfx##_acquire_b(void *self, const struct lease_info *seen,             \
                                            int64_t duration_ms, struct lease_info *out,           \
                                            struct dirconn_error *err)                             \
    {                                                                                              \
        return lease_server_error(pfx##_acquire(self, seen, duration_ms, out, err), err);          \
    }                                                                                              \
    static enum dirconn_err pfx##_renew_b(void *self, int64_t duration_ms, struct lease_info *out, \
                                          struct dirconn_error *err)                               \
    {                                                                                              \
        return lease_server_error(pfx##_renew(self, duration_ms, out, err), err);                  \
    }                                                                                              \
    static enum dirconn_err pfx##_release_b(void *self, struct dirconn_error *err)                 \
    {                                                                                              \
        return lease_server_error(pfx##_release(self, err), err);                                  \
    }                                                                                              \
    static enum dirconn_err pfx##_state_get_b(void *self, json_t **doc, char **version,            \
                                              struct dirconn_error *err)                           \
    {                                                                                              \
        return lease_server_error(pfx##_state_get(self, doc, version, err), err);                  \
    }                                                                                              \
    static enum dirconn_err pfx##_state_put_b(void *self, const json_t *doc, const char *version,  \
                                              int64_t token, struct dirconn_error *err)            \
    {                                                                                              \
        return lease_server_error(pfx##_state_put(self, doc, version, token, err), err);           \
    }

/* A backend: its operations, its state, and who this instance is. */
struct lease_backend {
    const struct lease_backend_ops *ops;
    void *self;
    char *identity; /* this instance's holderIdentity (the connector id); owned */
    /* true when the cloud checks the fencing token on SCIM writes (cloud
     * backend): the SCIM client then sends Dirconn-Fencing-Token. With etcd
     * the cloud knows nothing of the lease and the connector fences itself. */
    bool cloud_fencing;
};

/*
 * lease_cloud_parse - read the control API's answer to GET or PUT /lease
 * (docs/cloud-api.md "Lease"): holderIdentity, leaseTransitions (the fencing
 * token), resourceVersion (else the ETag without W/ and quotes),
 * leaseDurationSeconds (taken as 0 to 86400: more than a day is a day), and
 * the time left, from renewTime, serverTime and expired, by the server's clock. *out is zeroed
 * first (free with lease_info_clear). Errors: DIRCONN_ECLOUD (the body is not a JSON object).
 */
struct control_response;
enum dirconn_err lease_cloud_parse(const struct control_response *r, struct lease_info *out,
                                   struct dirconn_error *err);

/*
 * lease_backend_cloud_new - the reference cloud's lease (docs/cloud-api.md
 * "Lease", "Fencing", "Connector state") for cfg's [cloud] and [proxy]
 * (cfg borrowed, must outlive the backend). The identity is the connector id
 * ([cloud] client_id or the secret store's cloud-connector-id). Requests go
 * through the proxy seam with the connector's OAuth token; each is bounded by
 * timeout_ms. proxy_shared (borrowed, may be NULL) is the program's memory of
 * dead proxies (proxy/proxy.h). Errors: DIRCONN_ECONFIG ([cloud] url/org missing, auth = bearer
 * which has no connector identity), DIRCONN_ENOTREGISTERED (no connector id),
 * DIRCONN_ENOMEM, those of cloud_auth_new and proxy_new.
 */
enum dirconn_err lease_backend_cloud_new(const struct config *cfg, const struct log_sink *log,
                                         struct proxy_shared *proxy_shared, int64_t timeout_ms,
                                         struct lease_backend *out, struct dirconn_error *err);

/*
 * lease_backend_etcd_new - an etcd v3 lease through the JSON gateway of
 * cfg's [ha] etcd_endpoints (tried in order; the next one when one does not
 * answer), under the key prefix /dirconn/<org>/ (lease key "leader", state
 * key "state"). identity: the holder name to write (the connector id, or
 * host name and pid when not registered); copied. Errors: DIRCONN_ECONFIG
 * (no endpoints; [ha] etcd_password_file unreadable, empty, more than one
 * line, or open to group or others), DIRCONN_ENOMEM.
 *
 * cfg is borrowed only during the call; log is borrowed and must outlive the
 * backend. shared (borrowed, may be NULL; must outlive the backend): the
 * program's memory where the endpoint that answered last is kept, so that
 * every etcd backend of the program (the election's, the shared-state
 * step's) starts there. org is [cloud] org, or "default" when unset.
 * timeout_ms bounds each HTTP request to one endpoint (connect included;
 * <= 0: 5000), so one operation may take a few requests times the endpoints
 * that do not answer. Requests never use a proxy (CURLOPT_NOPROXY "*": etcd
 * is on the site's network); https endpoints are verified against [ha]
 * etcd_ca_file (else the system CA store), with the client certificate of
 * [ha] etcd_cert_file and etcd_key_file when set. With [ha] etcd_user the
 * backend authenticates (POST /v3/auth/authenticate) before its first
 * request and sends the token on each; a token etcd refuses is renewed once
 * per request. A refused user or password is DIRCONN_ECLOUD_AUTH naming
 * [ha] etcd_user and etcd_password_file. The caller has run
 * curl_global_init. ha/lease_etcd.c has the etcd API calls.
 *
 * What the etcd backend reports (struct lease_info; acquired_at and
 * renewed_at are always NULL, etcd keeps no such times):
 *   holder       the leader key's value; NULL when the key is absent: etcd
 *                deletes it itself when its etcd lease expires, so expired
 *                and free are one state.
 *   token        the leader key's create_revision (etcd's cluster revision
 *                when this holder created it: it grows with every change of
 *                holder and stays through renewals); 0 when free.
 *   version      the leader key's mod_revision as decimal text (changes at
 *                acquire and when a renewal re-attaches the key); NULL when free.
 *   remaining_ms the etcd lease's remaining TTL (/v3/lease/timetolive, whole
 *                seconds rounded down by etcd) x 1000; right after acquire
 *                and renew: the TTL etcd granted x 1000. 0 when free, when
 *                the etcd lease already expired but the key is not yet
 *                deleted, or when the key has no etcd lease.
 *   duration_ms  the TTL etcd granted x 1000: ceil(duration_ms / 1000) s,
 *                or etcd's minimum TTL when that is larger.
 * acquire ignores `seen` (may be NULL): its precondition is etcd's txn compare
 * "the leader key is absent"; when the key already holds this identity it
 * renews instead. renew with another duration than the etcd lease's TTL
 * attaches the key to a new etcd lease (same create_revision: the token
 * stays). state_get returns version "0" when the state key was never
 * written; state_put's version is compared with the state key's
 * mod_revision ("0" = only if never written). The state must fit etcd's
 * request size limit (--max-request-bytes, 1.5 MiB by default).
 */
enum dirconn_err lease_backend_etcd_new(const struct config *cfg, const struct log_sink *log,
                                        struct proxy_shared *shared, const char *identity,
                                        int64_t timeout_ms, struct lease_backend *out,
                                        struct dirconn_error *err);

/* lease_backend_free - free the backend (ops->free) and the identity; zero *b. */
void lease_backend_free(struct lease_backend *b);

#endif
