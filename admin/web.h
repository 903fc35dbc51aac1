/*
 * web.h - dirconnd's status page and Prometheus /metrics, served with
 * libevent's evhttp on the daemon's event loop ([web], docs/configuration.md;
 * docs/operations.md "Status page and metrics").
 *
 * Routes (GET and HEAD unless said):
 *   /             the dashboard: the Cisco Directory Connector dashboard's
 *                 components (Cisco guide, "Directory Connector Dashboard",
 *                 table 1) from the same status object as `dirconnctl status
 *                 --json`, server-rendered SVG charts of the last runs, meta refresh
 *                 every 5 s; no script
 *   /status.json  that status object
 *   /metrics      the Prometheus text exposition (connector/metrics.h); on
 *                 [web] metrics_listen instead when that is set
 *   /report.json, /report.csv  the last run's plan report (plan_write_report), whole
 *   /action       POST (form: csrf, action = sync-full | sync-incremental |
 *                 pause | resume | override-threshold): only with [web]
 *                 password_file, only with valid credentials (HTTP Basic as
 *                 [web] username, or "Authorization: Bearer <the file's
 *                 secret>") and the page's CSRF token; each one is logged with
 *                 the remote address; answers 303 to / when done
 *
 * A listener on a loopback address serves the pages to anyone who can reach
 * it and asks credentials for actions only; another address (config.c
 * requires TLS and password_file there) asks them for every request. Nothing
 * served holds a secret. Everything runs on the loop thread: the hooks must
 * never wait (the daemon answers from its snapshot, as for the admin socket).
 */
#ifndef DIRCONN_ADMIN_WEB_H
#define DIRCONN_ADMIN_WEB_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/metrics.h"

#include <event2/event.h>
#include <jansson.h>

/* What the page asks the daemon, on the loop thread. */
struct web_hooks {
    /* the admin socket's status object (docs/cli.md "status --json"); new reference */
    json_t *(*status)(void *arg);
    /* the newest runs (at most 50), newest first, as state_history rows:
     * [{"type","started","ended" (Unix s),"status","added","updated","deleted",
     *   "matched","skipped","failed"}]; new reference */
    json_t *(*runs)(void *arg);
    /* the gauges of /metrics */
    void (*gauges)(void *arg, struct metrics_gauges *g);
    /* the configuration in force (borrowed, valid during the request) */
    const struct config *(*config)(void *arg);
    /* run an action: "sync-full", "sync-incremental", "pause", "resume",
     * "override-threshold"; returns the admin socket's answer ({"ok":bool,
     * "error":...}), new reference; remote names the client for the log */
    json_t *(*action)(void *arg, const char *action, const char *remote);
    /* the digest of the last run's report (web_report_digest), or NULL; new reference */
    json_t *(*report)(void *arg);
    /* the change latencies of the last runs that carried notified changes (at most
     * WEB_LATENCY_MAX), newest first: [{"ended": Unix s, "seconds": real}]; new reference */
    json_t *(*latency)(void *arg);
    void *arg;
};

/* How many runs the charts show. */
#define WEB_LATENCY_MAX 50

/* How many rows of each report category the page shows (the downloads hold them all). */
#define WEB_REPORT_ROWS 100

/*
 * web_report_path - where dirconnd keeps the plan report of its last run:
 * <state_dir>/report-latest.json (csv false) or .csv, into buf (len bytes).
 * Returns buf, or NULL when it does not fit.
 */
const char *web_report_path(const struct config *cfg, bool csv, char *buf, size_t len);

/*
 * web_report_digest - read a report in plan_write_report's JSON form (path)
 * into what the page shows: {"summary": {...}, "tabs": {"added" | "updated" |
 * "deleted" | "matched" | "skipped" | "conflicts": {"total": N, "rows":
 * [the first WEB_REPORT_ROWS objects]}}, "warnings": {"total", "rows"},
 * "written": Unix time}. Returns a new reference, or NULL when the file is
 * missing or not such a report. Reads the file: call it where waiting on the
 * disk blocks no one (dirconnd's worker), not on the loop.
 */
json_t *web_report_digest(const char *path);

struct web;

/*
 * web_start - listen on cfg's [web] listen (and metrics_listen) and serve on
 * base. cfg is read now only (the password file too: changes of [web] take
 * effect at the next start); metrics and hooks are borrowed until web_free.
 * *out is NULL and DIRCONN_OK returned when [web] listen and metrics_listen
 * are unset. Errors, with one line in err: DIRCONN_EIO (an address cannot be
 * bound, the password file cannot be read), DIRCONN_ECONFIG (the TLS
 * certificate or key is refused by OpenSSL, an empty password file),
 * DIRCONN_ENOMEM.
 */
enum dirconn_err web_start(struct event_base *base, const struct config *cfg,
                           struct metrics *metrics, const struct web_hooks *hooks,
                           const struct log_sink *log, struct web **out, struct dirconn_error *err);

/* web_free - close the listeners and connections, wipe the password. w may be NULL. */
void web_free(struct web *w);

#endif
