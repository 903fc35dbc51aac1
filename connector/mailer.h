/*
 * mailer.h - sync reports and alerts by email ([reports], docs/operations.md "Email alerts").
 *
 * The Cisco guide's connector emails a report of each period ("Set the Connector Schedule":
 * "Send Reports per... time") and alerts that "the Directory Connector is not working"
 * ("Troubleshoot"). dirconnd does the same: a periodic summary of the runs of the period, and an
 * alert when a sync fails, the delete threshold stops a run, the HA lease is lost, or no sync
 * has succeeded for [reports] alert_no_success_after. Each mail holds the summary lines of the
 * latest run and its first MAILER_MAX_PROBLEMS problems (the guide's "Error Messages and Fixes"
 * table), as text/plain and text/html alternatives.
 *
 * Mail goes out with libcurl's SMTP client (RFC 5321; STARTTLS RFC 3207 or smtps://, AUTH RFC
 * 4954) on the mailer's own thread: the sync and the event loop only queue a message (bounded,
 * MAILER_QUEUE_MAX; a full queue drops the new message), never wait for the server. A delivery
 * attempt is bounded by [reports] timeout; a failed one is retried [reports] retries times with
 * a growing pause. An unreachable server gives one warning line, then debug lines until a
 * delivery succeeds again (a reminder every hour).
 *
 * The message itself is built with libcurl's mime API (curl_mime: multipart/alternative,
 * quoted-printable bodies, Content-Type, MIME-Version); the mailer adds the header fields the
 * mime API does not make: Date, Message-ID, From, To and Subject (RFC 5322 3.6).
 *
 * Threads: every function may be called from any thread; a NULL mailer makes each a no-op.
 */
#ifndef DIRCONN_MAILER_H
#define DIRCONN_MAILER_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define MAILER_MAX_PROBLEMS 50 /* problems listed in one mail; the rest are counted */
#define MAILER_QUEUE_MAX    16 /* messages waiting for delivery */

enum mailer_kind {
    MAILER_SUMMARY = 0,       /* the periodic report */
    MAILER_ALERT_SYNC_FAILED, /* a sync ended with an error or with failed objects */
    MAILER_ALERT_THRESHOLD,   /* the delete threshold stopped a run */
    MAILER_ALERT_LEASE_LOST,  /* the HA lease was lost: this instance no longer syncs */
    MAILER_ALERT_NO_SUCCESS,  /* no sync succeeded for [reports] alert_no_success_after */
};

/* One finished sync as the reports show it. Every pointer is borrowed. */
struct mailer_run {
    bool full;           /* full or incremental */
    enum dirconn_err rc; /* sync_run's result */
    const char *message; /* rc's one line, "" or NULL on success */
    const char *summary; /* the summary lines (sync.h: "Summary | ...", "Result | ...") */
    long added, updated, deleted, failed; /* what the cloud acknowledged, failed objects */
    double seconds;                       /* wall time of the run */
    time_t ended;                         /* wall clock */
    const char *const *problems;          /* the first problems, one line each */
    size_t n_problems;                    /* at most MAILER_MAX_PROBLEMS are shown */
    long problems_total;                  /* all problems of the run (>= n_problems) */
};

/* What one mail says; input of mailer_compose. Pointers are borrowed. */
struct mailer_report {
    enum mailer_kind kind;
    const char *connector; /* [connector] name */
    const char *reason;    /* alerts: the cause, one line; NULL for the summary */
    time_t now;
    time_t period_start;                  /* summary: start of the period */
    long runs, succeeded, failed_runs;    /* summary: runs of the period */
    long threshold_runs;                  /* summary: runs the delete threshold stopped */
    long added, updated, deleted, failed; /* summary: objects over the period */
    long undelivered;                     /* earlier mails that could not be delivered */
    time_t last_success;                  /* the last successful sync, 0 = none known */
    const struct mailer_run *last;        /* the latest run, or NULL */
};

/* A composed message: all three strings are malloc'd UTF-8, freed by mailer_content_clear. */
struct mailer_content {
    char *subject; /* one line, without RFC 2047 encoding (mailer_subject_header encodes) */
    char *text;    /* text/plain body, lines ending in \n */
    char *html;    /* text/html body, a whole document */
};

/*
 * mailer_compose - the subject and both bodies of a report. The text lists the period's counts
 * (summary) or the cause (alert), the latest run's summary lines and its first
 * MAILER_MAX_PROBLEMS problems ("and N more" beyond); the HTML says the same in tables, every
 * value HTML-escaped. Returns DIRCONN_OK, or DIRCONN_ENOMEM with out cleared.
 */
enum dirconn_err mailer_compose(const struct mailer_report *r, struct mailer_content *out,
                                struct dirconn_error *err);

/* mailer_content_clear - free what mailer_compose made; c may hold NULLs. */
void mailer_content_clear(struct mailer_content *c);

/* mailer_kind_name - "summary", "sync failed", "delete threshold", "lease lost", "no success". */
const char *mailer_kind_name(enum mailer_kind kind);

/*
 * mailer_format_date - RFC 5322 3.3 date-time of t in UTC ("Sun, 06 Dec 2026 20:28:16 +0000"),
 * in English whatever the locale, into out (at least 40 bytes).
 */
void mailer_format_date(time_t t, char *out, size_t len);

/*
 * mailer_subject_header - "Subject: ..." for subject: control characters become spaces; a subject
 * with bytes over 0x7f is sent as RFC 2047 encoded words (UTF-8, base64 with OpenSSL), split
 * on character boundaries. Returns a malloc'd line (no CRLF), NULL when out of memory.
 */
char *mailer_subject_header(const char *subject);

/*
 * mailer_headers - the header fields libcurl's mime API does not make: Date (now), Message-ID
 * (<128 random bits in hex "@" the sender's domain>, RAND_bytes), From, To (every recipient),
 * Subject. Returns a new list the caller frees with curl_slist_free_all, NULL when out of memory.
 */
struct curl_slist *mailer_headers(const char *from, const struct strlist *to, const char *subject,
                                  time_t now);

struct mailer;

/*
 * mailer_new - a mailer for cfg's [reports] (copied: the mailer never reads cfg again), logging
 * to log (borrowed, must outlive the mailer). With no [reports] smtp_url, *out is NULL and
 * DIRCONN_OK is returned (reports are off). The thread starts at once; the first summary is due
 * one interval later, and the "no success" clock starts now. Errors: DIRCONN_ENOMEM, DIRCONN_EFAIL
 * (the thread could not start), with one line in err.
 */
enum dirconn_err mailer_new(const struct config *cfg, const struct log_sink *log,
                            struct mailer **out, struct dirconn_error *err);

/*
 * mailer_reconfigure - take cfg's [reports] for the next deliveries (SIGHUP). With no smtp_url
 * the mailer stops sending: queued and new messages are dropped. Returns false when out of
 * memory (the old settings stay).
 */
bool mailer_reconfigure(struct mailer *m, const struct config *cfg);

/*
 * mailer_sync_done - a sync ended: count it in the period, keep it as the latest run (copied),
 * and queue an alert for DIRCONN_ETHRESHOLD (threshold) or any other error but
 * DIRCONN_ECANCELED and DIRCONN_ELEASE (the run was stopped: shutdown, or the lease-lost alert
 * says it). An alert repeating the previous one (same kind and cause) within the summary
 * interval (an hour without one) is not sent again. Never blocks on the network.
 */
void mailer_sync_done(struct mailer *m, const struct mailer_run *run);

/* mailer_lease_lost - the HA lease was lost (cause: one line, borrowed): queue that alert. */
void mailer_lease_lost(struct mailer *m, const char *cause);

/*
 * mailer_set_active - whether this instance is the one that syncs (HA). While standby the
 * "no success" clock does not run; it restarts at activation.
 */
void mailer_set_active(struct mailer *m, bool active);

/*
 * mailer_free - stop the thread (a delivery in flight is aborted) and free everything; messages
 * still queued are dropped and counted in one info line. m may be NULL.
 */
void mailer_free(struct mailer *m);

#endif
