/*
 * sync_report.h - the report of one run (sync_run): a value, and its one renderer.
 *
 * sync_run prints nothing: it fills a struct sync_report (counts per kind and
 * operation, phase times, the error, the dry-run, threshold and fallback
 * flags). Whoever ran it renders the summary lines with sync_report_lines
 * (dirconnctl on stdout, dirconnd in its log and report mails), so that both
 * print the same lines, in the Cisco guide's form ("Run a Dry Run", "Delete
 * Threshold"):
 *
 *   Running a full sync: <why>                            incremental asked, full run
 *   Incremental | N changes since the last synchronization (<method>)
 *   Summary | 0 Admins Deleted | N Users Deleted | N Groups Deleted | N Objects Added |
 *             N Objects Updated | N Objects Matched      (one line)
 *   N of the updated objects were changed in the cloud (drift): the directory's values are put back
 *   N contact objects will be deleted
 *   N admin objects would have been deleted, but were not
 *   N objects skipped (N missing a required attribute, N naming conflicts)
 *   N attribute warnings (the objects are sent without the invalid values)
 *   Contacts are not synchronised: the cloud offers no Contact resource type
 *   Delete threshold is disabled
 *   Delete threshold (T objects) exceeded. N objects would be deleted[ (override used for this
 * run)] Delete threshold (T objects) not exceeded: N objects would be deleted Note: the delete
 * threshold was overridden for the <type> sync of <local time> Summary | not computed: the run
 * stopped while <phase> (N directory objects read) Result | N added | N updated | N deleted | N
 * failed
 *
 * The same module records the run in the state's history and posts it to the
 * control API (docs/cloud-api.md, Reports).
 */
#ifndef DIRCONN_SYNC_REPORT_H
#define DIRCONN_SYNC_REPORT_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/plan.h"
#include "connector/sync.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct state;
struct scim_client;
struct cloud_auth;

struct sync_report {
    enum sync_mode mode; /* the mode asked for (an incremental may run in full: incremental) */
    /* what sync_run returned, and its error line ("" on success) */
    enum dirconn_err code;
    char error[DIRCONN_ERROR_LEN];
    /* the phase a stopped run was in when it stopped (the "not computed" line), and the
     * seconds spent in each phase (sync_set_phase), wall time */
    enum sync_phase stopped_in;
    double phase_seconds[SYNC_PHASE_MAX];
    double seconds; /* the whole run, wall time */

    /* reading */
    bool incremental; /* the run was incremental (SYNC_INCREMENTAL may fall back) */
    bool ran_full;    /* SYNC_INCREMENTAL ran as a full sync: the "Running" line */
    char fallback[DIRCONN_ERROR_LEN + 64]; /* why an incremental ran as a full sync, or "" */
    char tracking[16];                     /* incremental: the change tracking method's name */
    long changes;                          /* incremental: changes reported by the directory */
    long read;                             /* directory objects read and given to the plan */

    /* planning: the Summary lines when planned */
    bool planned;             /* the plan was computed (and the Summary lines printable) */
    struct plan_summary plan; /* what the plan said */
    bool threshold_enabled;   /* [policy] delete_threshold_enabled */
    int threshold;            /* [policy] delete_threshold, objects */
    bool threshold_exceeded;
    bool override_used;
    bool contacts_unsupported; /* the cloud has no Contact resource type */
    /* the previous run in the history overrode the threshold: its type ("full", ...) and
     * start (Unix seconds), shown as the Note line in local time */
    bool previous_override;
    char previous_type[16];
    int64_t previous_started;

    /* applying: the Result line (non-dry runs) */
    bool applied;                 /* the apply ran: the counts are what the cloud acknowledged */
    long added, updated, deleted; /* what the cloud acknowledged */
    long failed;                  /* objects whose write failed (reported, not fatal) */
    long drift;                   /* updates that put back values edited in the cloud */
    /* added, updated, deleted, failed per kind (enum object_kind); skipped: plan.skipped_by_kind */
    long added_by_kind[OBJECT_KINDS], updated_by_kind[OBJECT_KINDS], deleted_by_kind[OBJECT_KINDS],
        failed_by_kind[OBJECT_KINDS];

    /* saving */
    bool watermark_saved; /* the watermark moved at the end of this run */
    /* rebuild_map: the object map was rebuilt (and committed) before the incremental; the
     * distinct externalIds the inventory listed, the rows added or reset, the rows removed */
    bool map_rebuilt;
    long map_objects, map_changed, map_removed;

    /* where it ran, for status displays */
    char directory[512];   /* the DC the run bound to, "" when it did not get that far */
    bool cloud_reached;    /* the cloud answered the run's discovery */
    char proxy_route[512]; /* the route the SCIM requests used at the end (proxy_route_used),
                              or "" when none was taken */
};

/*
 * sync_report_lines - the renderer: call line(arg, text) for each summary
 * line of r, in the order above, text without its newline (borrowed for the
 * call). Which lines: "Running a full sync" when r->ran_full; the
 * Incremental and Summary lines when r->planned; for a run that is not a dry
 * run, the Result line (the acknowledged counts when r->applied, zeros when
 * the run failed before applying, preceded by "Summary | not computed" when
 * it was not planned). A dry run that failed before its plan has no line, nor
 * has a zeroed report (a run that was not started).
 * The Note line's time is r->previous_started in local time.
 */
void sync_report_lines(const struct sync_report *r, void (*line)(void *arg, const char *text),
                       void *arg);

/* sync_report_render - write the lines of sync_report_lines to out, each ending in '\n'. */
void sync_report_render(const struct sync_report *r, FILE *out);

/*
 * sync_report_text - the lines of sync_report_lines as one string, each
 * ending in '\n' ("" when there is none). Returns a malloc'd string the
 * caller frees, or NULL when memory ran out.
 */
char *sync_report_text(const struct sync_report *r);

/*
 * sync_report_previous_override - fill r->previous_* from the newest run of
 * st's history (state_history_list): set when that run overrode the delete
 * threshold (Cisco guide, "Delete Threshold": the next summary notes it).
 * Unset when the history is empty or cannot be read.
 */
void sync_report_previous_override(struct state *st, struct sync_report *r);

/*
 * sync_report_history - record the run in st's history (state_history_add):
 * type ("dry-run", "full", "incremental"), status ("success", "threshold",
 * "failed"), started (Unix seconds), message (the error line, or NULL). s is
 * the plan's summary (NULL when there was no plan); a dry run records the
 * planned adds, updates and deletes, a sync what r says the cloud
 * acknowledged. A failure is logged at warning level on log, not returned.
 */
void sync_report_history(struct state *st, const struct log_sink *log, const struct sync_report *r,
                         const struct plan_summary *s, const char *type, const char *status,
                         time_t started, const char *message);

/*
 * sync_report_post - post the run to the cloud's control API
 * (docs/cloud-api.md, Reports: POST {url}/v1/orgs/{org}/connectors/{id}/reports
 * with the counts and the threshold event) when the connector authenticates
 * as a registered connector ([cloud] auth = oauth2 and auth has an identity);
 * otherwise nothing. scim (may be NULL: nothing), auth and cfg are borrowed.
 * Arguments as sync_report_history. A refused post is logged at warning
 * level and does not fail the run.
 */
void sync_report_post(struct scim_client *scim, const struct cloud_auth *auth,
                      const struct config *cfg, const struct log_sink *log,
                      const struct sync_report *r, const struct plan_summary *s, const char *type,
                      time_t started, const char *message);

#endif
