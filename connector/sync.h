/*
 * sync.h - the sync engine: source -> select -> map -> plan -> apply.
 *
 * A full sync reads every in-scope object of the directory (paged), maps it
 * to a SCIM record, loads the cloud's inventory, computes the plan (see
 * plan.h) and, unless it is a dry run, applies it over SCIM 2.0 (RFC 7644, apply.h):
 * users and contacts first (POST, or /Bulk within the server's maxOperations
 * and maxPayloadSize when it advertises bulk), then groups with their members
 * (members changed by PATCH in chunks), then managers that could only be
 * resolved once their objects existed, then deletions. Every acknowledged
 * write is recorded in the state at once (in batches committed as they
 * complete), so a rerun after a crash at any point converges: externalId is
 * the key and nothing is created twice.
 *
 * The delete threshold (Cisco guide, "Configure the Connector Policy") is
 * checked before anything changes in the cloud: a sync that would delete more
 * than [policy] delete_threshold objects fails with DIRCONN_ETHRESHOLD and
 * records a threshold event, unless the run was started with the override,
 * which is then noted in the history and shown by the next summary.
 */
#ifndef DIRCONN_SYNC_H
#define DIRCONN_SYNC_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/plan.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * SYNC_INCREMENTAL reads only what changed since the watermark of the naming
 * context (connector/tracking.h) and plans only those objects (plan_set_partial).
 * It runs a full sync instead, and says why, when there is no watermark, when
 * it was taken under another scope (selection, mapping: the scope hash), with
 * another method, on another DC or invocationId (usn), or when the server
 * refuses the cookie. The delete threshold applies to both.
 */
enum sync_mode { SYNC_DRY_RUN = 0, SYNC_FULL, SYNC_INCREMENTAL };

struct proxy_shared;
struct sync_report;

/*
 * The phases of a run, in order. sync_run moves through them with one
 * function (sync.c: sync_set_phase) that checks each transition against
 * sync_phase_allowed and logs it at debug level. The table:
 *
 *   from \ to   connecting reading planning applying saving done stopped
 *   starting        yes        -       -        -        -     -     yes
 *   connecting       -        yes      -        -        -     -     yes
 *   reading          -        yes     yes       -        -     -     yes
 *   planning         -         -       -       yes       -    yes    yes
 *   applying         -         -       -        -       yes    -     yes
 *   saving           -         -       -        -        -    yes    yes
 *
 * reading -> reading: an incremental run restarted as a full run (its
 * watermark no longer applies, or DirSync was refused). planning -> done: a
 * dry run, or a run the delete threshold held. done and stopped are final.
 */
enum sync_phase {
    SYNC_PHASE_STARTING = 0,
    SYNC_PHASE_CONNECTING, /* state, cloud discovery, directory bind, mapping compilation */
    SYNC_PHASE_READING,    /* change tracking, the directory read, the cloud inventory */
    SYNC_PHASE_PLANNING,   /* plan_compute, the drift comparison, the summary */
    SYNC_PHASE_APPLYING,   /* SCIM writes (apply.c) */
    SYNC_PHASE_SAVING,     /* the watermark, the retry list and the object map are recorded */
    SYNC_PHASE_DONE,       /* ended: success, objects failed, or the threshold held it */
    SYNC_PHASE_STOPPED,    /* ended on an error, a cancel request or a lost lease */
    SYNC_PHASE_MAX
};

/*
 * sync_phase_name - "starting", "connecting", "reading", "planning",
 * "applying", "saving", "done", "stopped" (the words of `dirconnctl status`
 * and of the "Summary | not computed: the run stopped while ..." line).
 * Returns a static string; "unknown" for values out of range.
 */
const char *sync_phase_name(enum sync_phase p);

/*
 * sync_phase_allowed - whether a run may go from phase `from` to phase `to`
 * (the table above). Returns false for values out of range.
 */
bool sync_phase_allowed(enum sync_phase from, enum sync_phase to);

struct sync_options {
    enum sync_mode mode;
    bool override_threshold; /* let this run exceed the delete threshold, once */
    /* The command that lets the run through once, named in the threshold message: the one
     * that works where the run comes from. NULL: the one-shot command, "dirconnctl sync
     * --full --override-threshold" (--incremental for an incremental run). */
    const char *override_command;
    const char *report_path;     /* the plan's report (.json or .csv; dry run or not), or NULL */
    const char *report_csv_path; /* a second copy of it, e.g. the CSV beside the JSON, or NULL */
    bool progress;               /* show progress on a terminal (stderr) */
    /*
     * dirconnd: when *cancel becomes true (another thread, a signal handler's
     * loop), the run stops after the batch in flight was acknowledged and
     * recorded, and returns DIRCONN_ECANCELED; the watermark does not move.
     */
    const atomic_bool *cancel;
    /* dirconnd: called at each phase and batch (phase: "connecting", "reading",
     * "planning", "applying"; done and total in objects, 0 when unknown). */
    void (*on_progress)(void *arg, const char *phase, long done, long total);
    void *progress_arg;
    /*
     * HA (ha/election.h): the fencing token every SCIM write carries as
     * Dirconn-Fencing-Token (docs/cloud-api.md "Fencing"), NULL = none; and
     * the write gate of the SCIM client (scim_client_options.write_deadline_ms),
     * NULL = none. A write the cloud fences or the gate holds back stops the
     * run after the batch in flight with DIRCONN_ELEASE; the watermark does not move.
     */
    const char *fencing_token;
    const _Atomic int64_t *write_deadline_ms;
    /*
     * HA: called when the run stops on DIRCONN_ELEASE, before the error line
     * is completed. It may put the cause in err instead (the lease server
     * could not be reached, so the lease could not be renewed) and return its
     * code; otherwise it returns DIRCONN_ELEASE and leaves err alone. NULL = none.
     */
    enum dirconn_err (*lease_cause)(void *arg, struct dirconn_error *err);
    void *lease_cause_arg;
    /*
     * dirconnd's reports (connector/mailer.h): called on the sync's thread for each problem of
     * the run, in the order met: an attribute warning, an object skipped for a missing required
     * attribute or a naming conflict (after planning), a write that failed. dn is the object's
     * DN ("" when the problem is not tied to one); message is one line, in the Cisco guide's
     * error table wording where it has one ("Error Messages and Fixes"). Both are borrowed for
     * the call. NULL = none.
     */
    void (*on_problem)(void *arg, const char *dn, const char *message);
    void *problem_arg;
    /* The program's memory of dead proxies and logged routes (proxy/proxy.h), shared with
     * its other cloud clients (the lease) and runs; NULL = the run keeps its own. */
    struct proxy_shared *proxy_shared;
    /*
     * HA takeover (ha/shared_state.h, HA_IMPORT_TAKEN or HA_IMPORT_PENDING): another instance
     * synchronised since this state was current. When the run is incremental (the watermark
     * applies), the object map is first rebuilt from the cloud's inventory (state_reconcile_*:
     * every cloud object of this directory's externalId form, in one transaction), then the
     * incremental runs from the watermark; the report's map_rebuilt says it was. When the run falls
     * back to a full sync, nothing more is needed: a full sync adopts the cloud's objects.
     */
    bool rebuild_map;
    /* Called after each SCIM request attempt (scim_client_options.observe); NULL = none. */
    void (*observe_scim)(void *arg, const char *method, long status, double seconds);
    void *observe_arg;
};

/*
 * sync_run - run one dry run, full or incremental sync for cfg (borrowed).
 * The watermark is saved only when every change it covers was acknowledged
 * by the cloud or recorded as a per-object failure (state_retry_put) that
 * the next incremental sync re-reads; a run stopped by an error, a crash or
 * an unreachable cloud leaves it where it was. Nothing is printed: report
 * (sync_report.h; may be NULL) receives the counts, flags, phase times and
 * error of the run, which sync_report_lines renders as the summary lines in
 * the Cisco guide's form. Returns DIRCONN_OK when every object was handled,
 * DIRCONN_EFAIL when some objects failed (each reported; the rest was
 * applied), DIRCONN_ETHRESHOLD when the delete threshold stopped the sync
 * before any change, or the error that prevented the sync (directory, cloud,
 * state, configuration) with one line in err.
 */
enum dirconn_err sync_run(const struct config *cfg, const struct log_sink *log,
                          const struct sync_options *opts, struct sync_report *report,
                          struct dirconn_error *err);

#endif
