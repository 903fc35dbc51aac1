/*
 * cmd_sync.c - dirconnctl dry-run and sync: run the sync engine once.
 */
#include "admin/ctl.h"
#include "admin/daemon_socket.h"
#include "connector/state.h"
#include "connector/sync.h"
#include "connector/sync_report.h"
#include "ha/election.h"
#include "ha/shared_state.h"
#include "proxy/proxy.h"
#include "proxy/proxy_px.h"

#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

enum { OPT_REPORT = 0x300, OPT_OVERRIDE, OPT_FULL, OPT_NO_PROGRESS, OPT_INCREMENTAL };

static const char dry_run_help[] =
    "usage: dirconnctl dry-run [--config FILE] [--report FILE.json|FILE.csv]\n"
    "\n"
    "Read the objects in scope from the directory, compare them with the cloud, and print\n"
    "what a synchronization would do, changing nothing:\n"
    "  Summary | Admins Deleted | Users Deleted | Groups Deleted | Objects Added |\n"
    "          Objects Updated | Objects Matched\n"
    "and whether the delete threshold would be exceeded. --report writes every object by\n"
    "category (added, updated with the changed attributes, deleted, admins not deleted,\n"
    "matched, skipped, conflicts) and the attribute warnings, as JSON or CSV by extension.\n";

static const char sync_help[] =
    "usage: dirconnctl sync --full|--incremental [--config FILE] [--override-threshold]\n"
    "                       [--report FILE] [--no-progress]\n"
    "\n"
    "Run a full synchronization: read the directory, compute the plan as dry-run does, and\n"
    "apply it to the cloud over SCIM 2.0. --incremental reads only what changed since the\n"
    "last synchronization (DirSync, uSNChanged or RFC 4533, see [ldap] change_tracking) and\n"
    "runs a full synchronization instead, saying why, when the scope or mapping changed or\n"
    "there is no watermark yet. A sync that would delete more objects than\n"
    "[policy] delete_threshold stops before changing anything (exit 40);\n"
    "--override-threshold lets this run through once, and the next summary notes it.\n"
    "Progress is shown on a terminal. Exit 1 when some objects failed (each is reported;\n"
    "the others were synchronised).\n";

struct sync_args {
    const char *report;
    bool override_threshold;
    bool full;
    bool incremental;
    bool no_progress;
};

static int sync_opt(struct ctl *ctl, int opt, const char *arg, void *user)
{
    (void)ctl;
    struct sync_args *a = user;
    if (opt == OPT_REPORT)
        a->report = arg;
    else if (opt == OPT_OVERRIDE)
        a->override_threshold = true;
    else if (opt == OPT_FULL)
        a->full = true;
    else if (opt == OPT_INCREMENTAL)
        a->incremental = true;
    else if (opt == OPT_NO_PROGRESS)
        a->no_progress = true;
    return -1;
}

/* Whether this connector's dirconnd answers on its admin socket. */
static bool daemon_running(const struct config *cfg)
{
    char path[108];
    if (daemon_socket_path(cfg, path, sizeof(path)) == NULL)
        return false;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

/*
 * Take the HA lease for this run (NULL with [ha] lease = none). A lease this
 * connector holds is its dirconnd's while that answers on the admin socket;
 * otherwise it was left by a run that crashed and is taken back.
 */
static enum dirconn_err ha_lease(struct ctl *ctl, struct proxy_shared *shared,
                                 struct ha_election **out, struct dirconn_error *err)
{
    *out = NULL;
    struct lease_backend b;
    enum dirconn_err e = ha_backend_new(ctl->cfg, &ctl->log, shared, NULL, &b, err);
    if (e != DIRCONN_OK || b.ops == NULL)
        return e;
    struct ha_options o;
    ha_options_from_config(ctl->cfg, &o);
    o.one_shot = true;
    o.self_in_use = daemon_running(ctl->cfg);
    e = ha_election_start(&b, &o, &ctl->log, NULL, NULL, out, err);
    if (e != DIRCONN_OK) {
        lease_backend_free(&b);
        return e;
    }
    e = ha_election_wait_active(*out, o.failover_ms + o.jitter_ms + 15000, err);
    if (e != DIRCONN_OK) {
        ha_election_stop(*out, false);
        ha_election_free(*out);
        *out = NULL;
    }
    return e;
}

static int run(struct ctl *ctl, enum sync_mode mode, const struct sync_args *a)
{
    enum dirconn_err loaded = ctl_load_config(ctl);
    if (loaded != DIRCONN_OK)
        return dirconn_exit_code(loaded);
    struct sync_options opts = {
        .mode = mode,
        .override_threshold = a->override_threshold,
        .report_path = a->report,
        .progress = !a->no_progress,
    };
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct sync_report res;
    memset(&res, 0, sizeof(res));
    /* One memory of dead proxies for every cloud client of the run (sync, lease, state). */
    struct proxy_shared *shared = NULL;
    if (proxy_shared_new(false, &shared, &err) != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    opts.proxy_shared = shared;
    /* Under [ha] lease = cloud|etcd a sync writes only while holding the lease. */
    struct ha_election *ha = NULL;
    /* The lease thread runs beside the sync: libproxy children come from a launcher forked
     * now, while this process has one thread (proxy/proxy_px.h). */
    if (mode != SYNC_DRY_RUN && ctl->cfg->ha_lease != HA_LEASE_NONE &&
        proxy_px_prefork(&err) != DIRCONN_OK)
        log_msg(&ctl->log, LOG_LEVEL_WARN, "%s", err.msg);
    enum dirconn_err e = mode == SYNC_DRY_RUN ? DIRCONN_OK : ha_lease(ctl, shared, &ha, &err);
    char token[32] = "";
    bool send_token = false;
    if (e == DIRCONN_OK && ha != NULL) {
        snprintf(token, sizeof(token), "%lld", (long long)ha_election_token(ha));
        struct ha_status hs;
        ha_election_status(ha, &hs);
        send_token = strcmp(hs.backend, "cloud") == 0;
        ha_status_clear(&hs);
        opts.fencing_token = send_token ? token : NULL;
        opts.write_deadline_ms = ha_election_write_deadline(ha);
        opts.lease_cause = ha_election_lease_cause;
        opts.lease_cause_arg = ha;
        enum ha_import what = HA_IMPORT_CURRENT;
        e = ha_shared_step(ctl->cfg, &ctl->log, shared, true, 0, NULL, &what, &err);
        /* Another connector synchronised since this state was current (see dirconnd): an
         * incremental first rebuilds the object map from the cloud's inventory. */
        if (e == DIRCONN_OK && (what == HA_IMPORT_TAKEN || what == HA_IMPORT_PENDING))
            opts.rebuild_map = true;
    }
    if (e == DIRCONN_OK) {
        e = sync_run(ctl->cfg, &ctl->log, &opts, &res, &err);
        sync_report_render(&res, stdout);
    }
    if (e == DIRCONN_OK && res.map_rebuilt)
        printf("Object map rebuilt from the cloud inventory (%ld objects, %ld adopted or changed, "
               "%ld removed): another connector synchronised since this one's state was current; "
               "this sync ran incremental from the shared watermark\n",
               res.map_objects, res.map_changed, res.map_removed);
    if (ha != NULL && (e == DIRCONN_OK || e == DIRCONN_EFAIL) &&
        (!res.incremental || res.map_rebuilt)) {
        struct dirconn_error ferr;
        if (ha_shared_full_done(ctl->cfg, &ferr) != DIRCONN_OK)
            log_msg(&ctl->log, LOG_LEVEL_WARN, "ha: %s", ferr.msg);
    }
    if (ha != NULL && (e == DIRCONN_OK || e == DIRCONN_EFAIL) && res.watermark_saved) {
        struct dirconn_error serr;
        if (ha_shared_step(ctl->cfg, &ctl->log, shared, false, ha_election_token(ha), ha, NULL,
                           &serr) != DIRCONN_OK)
            log_msg(&ctl->log, LOG_LEVEL_WARN, "ha: the shared state was not written: %s",
                    serr.msg);
    }
    if (ha != NULL) {
        ha_election_stop(ha, true);
        ha_election_free(ha);
    }
    proxy_shared_free(shared);
    proxy_px_prefork_stop();
    fflush(stdout);
    if (e != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    if (a->report != NULL)
        printf("Report written to %s\n", a->report);
    return 0;
}

int cmd_dry_run(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {{"report", required_argument, NULL, OPT_REPORT},
                                          {NULL, 0, NULL, 0}};
    struct sync_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, sync_opt, &a, dry_run_help);
    if (rc >= 0)
        return rc;
    return run(ctl, SYNC_DRY_RUN, &a);
}

int cmd_sync(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {{"report", required_argument, NULL, OPT_REPORT},
                                          {"override-threshold", no_argument, NULL, OPT_OVERRIDE},
                                          {"full", no_argument, NULL, OPT_FULL},
                                          {"incremental", no_argument, NULL, OPT_INCREMENTAL},
                                          {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
                                          {NULL, 0, NULL, 0}};
    struct sync_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, sync_opt, &a, sync_help);
    if (rc >= 0)
        return rc;
    if (a.full == a.incremental)
        return ctl_usage_error(ctl, "say which synchronization: --full or --incremental");
    return run(ctl, a.full ? SYNC_FULL : SYNC_INCREMENTAL, &a);
}
