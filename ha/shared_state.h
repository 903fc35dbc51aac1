/*
 * shared_state.h - what a new active connector continues from: the
 * watermarks (DirSync cookie, highest uSNChanged, RFC 4533 cookie) kept in
 * the lease server's shared document (cloud: the control API's
 * connector-state document, docs/cloud-api.md "Connector state"; etcd: the
 * state key beside the lease key).
 *
 * The document: {"format": 1, "generation": N, "writer": "<holderIdentity>",
 * "watermarks": [{"partition", "method", "value" (base64), "dc",
 * "invocationId", "scopeHash"}], "retry": [{"externalId", "kind" ("user",
 * "group", "contact"; absent when not known), "dn" (absent when not
 * known)}], "retryOverflow": true (only when the retry list overflowed)}.
 * The active connector writes it after each sync whose changes were all
 * acknowledged or recorded as failures to retry (the watermark moved in its
 * own state), fenced by its token, in one write. Each instance remembers the
 * generation its local state matches (state setting "ha-generation").
 *
 * "retry" is the local state's retry list (state_retry_put: the objects
 * whose last write failed and was not retried successfully since): a new
 * active merges it into its own, so its next incremental sync reads them
 * again and resends them. More than HA_SHARED_RETRY_MAX entries are not
 * listed: "retry" is then empty and "retryOverflow" true, and a new active
 * discards the watermarks so that its next sync runs in full. A document
 * without "retry" (written by an older version) means an empty list.
 */
#ifndef DIRCONN_HA_SHARED_STATE_H
#define DIRCONN_HA_SHARED_STATE_H

#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/state.h"
#include "ha/lease.h"

#include <stdbool.h>
#include <stdint.h>

/* The longest retry list the shared document carries (see above). */
#define HA_SHARED_RETRY_MAX 10000

/* What ha_shared_import did. */
enum ha_import {
    HA_IMPORT_CURRENT = 0, /* the local state is the shared one (this instance wrote it last) */
    HA_IMPORT_TAKEN,       /* the shared watermarks replaced the local ones: the object map is
                              behind; the caller sets sync_options.rebuild_map (rebuilt from the
                              cloud inventory, then incremental from the shared watermark) */
    HA_IMPORT_NONE,        /* no shared watermark: local ones discarded, a full sync follows */
    HA_IMPORT_PENDING,     /* the local state is the shared one, but the first sync that follows
                              an import (TAKEN or NONE) has not completed: the caller sets
                              rebuild_map again (without a watermark the sync runs in full) */
};

/*
 * ha_shared_import - on becoming active: read the shared document through b
 * and, unless the local state already matches its generation, replace the
 * local watermarks with the shared ones (none: every local watermark is
 * discarded, so the next incremental sync runs in full, guarded by the
 * delete threshold) and merge its retry list into the local one
 * (ha_shared_retry_decode; an overflowed list discards the watermarks and
 * reports HA_IMPORT_NONE). One line is logged saying which, and one with
 * the number of objects to retry taken over when there are any. Errors: the backend's
 * state_get errors, DIRCONN_ESTATE, DIRCONN_ELEASE_SERVER (a document that is not
 * in this format), DIRCONN_ENOMEM.
 */
enum dirconn_err ha_shared_import(struct lease_backend *b, struct state *st,
                                  const struct log_sink *log, enum ha_import *what,
                                  struct dirconn_error *err);

/*
 * ha_shared_full_done - a full sync, or an incremental one on an object map
 * rebuilt from the cloud inventory in the same run (sync_report.map_rebuilt),
 * completed on the local state in cfg->state_dir (every object planned;
 * failed writes are on the retry list): the object map is whole again, so
 * the mark that ha_shared_import set when it replaced the local state (state
 * setting "ha-full-pending") is removed and later imports report
 * HA_IMPORT_CURRENT. Until then they report HA_IMPORT_PENDING, so that a
 * takeover's first sync that stopped on an error (a lost DC, the cloud
 * unreachable) is followed by another rebuild (or a full sync), never by an
 * incremental one on the object map as it was. Errors: state_open's,
 * DIRCONN_ESTATE.
 */
enum dirconn_err ha_shared_full_done(const struct config *cfg, struct dirconn_error *err);

/*
 * ha_shared_retry_encode - set doc's "retry" to st's retry list, or to []
 * and "retryOverflow" to true when it holds more than HA_SHARED_RETRY_MAX
 * objects. doc is a JSON object (borrowed). Errors: DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err ha_shared_retry_encode(struct state *st, json_t *doc, struct dirconn_error *err);

/*
 * ha_shared_retry_decode - merge doc's "retry" list into st's retry list
 * (state_retry_put; the reason names origin, the document's writer, which
 * may be NULL). *merged receives the number of entries merged, *overflowed
 * whether the document says "retryOverflow": true. A document without
 * "retry" (or null) merges nothing. Run it inside the caller's transaction
 * to keep the merge whole. Errors: DIRCONN_ELEASE_SERVER ("retry" is not an array
 * or an entry is malformed: no "externalId" string, an unknown "kind", a
 * "dn" that is not a string; entries before it are merged), DIRCONN_ESTATE.
 */
enum dirconn_err ha_shared_retry_decode(const json_t *doc, struct state *st, const char *origin,
                                        size_t *merged, bool *overflowed,
                                        struct dirconn_error *err);

struct ha_election;

/*
 * ha_write_gate - asked right before each write of the shared document:
 * true while arg's instance may still write under its lease. For the
 * election, ha_shared_election_gate (arg: the struct ha_election).
 */
typedef bool (*ha_write_gate)(void *arg);

/* ha_shared_election_gate - ha_election_is_active(arg) as an ha_write_gate (self-fences late). */
bool ha_shared_election_gate(void *arg);

/* Attempts of ha_shared_export's write when the lease server fails transiently. */
#define HA_SHARED_PUT_ATTEMPTS 3

/*
 * ha_shared_export - after an acknowledged sync: write the local watermarks
 * and retry list (ha_shared_retry_encode) as the next generation of the
 * shared document, fenced by token (the backend's state_put), and remember
 * that generation locally. gate (may be NULL; gate_arg is its argument) is
 * asked before every attempt of the write, and nothing more is sent once it
 * says no. A transient failure of the write (no connection, a timeout,
 * http_retryable_status: 429, 500, 502, 503, 504) is tried again, up to HA_SHARED_PUT_ATTEMPTS
 * attempts in all, 100 and 300 ms apart, each after the gate: the backend sends a fenced write once
 * (lease.h), so an instance that lost its lease while its write was on the way never sends it
 * again. Errors: DIRCONN_ELEASE (fenced: this instance lost the lease, or the gate is closed), the
 * backend's transport errors, DIRCONN_ESTATE, DIRCONN_ENOMEM.
 */
enum dirconn_err ha_shared_export(struct lease_backend *b, struct state *st, int64_t token,
                                  ha_write_gate gate, void *gate_arg, const struct log_sink *log,
                                  struct dirconn_error *err);

/*
 * ha_shared_step - ha_shared_import (import = true; *what receives what it
 * did, may be NULL) or ha_shared_export with token and gate, on a backend of its own
 * for cfg's [ha] lease (ha_backend_new) and the state of cfg's state_dir.
 * Nothing happens with [ha] lease = none. For the thread that runs the sync
 * (a backend serves one thread; the election keeps its own). proxy_shared
 * (borrowed, may be NULL): the program's memory of dead proxies. Errors:
 * those of ha_backend_new, state_open, ha_shared_import and ha_shared_export.
 */
enum dirconn_err ha_shared_step(const struct config *cfg, const struct log_sink *log,
                                struct proxy_shared *proxy_shared, bool import, int64_t token,
                                struct ha_election *gate, enum ha_import *what,
                                struct dirconn_error *err);

#endif
