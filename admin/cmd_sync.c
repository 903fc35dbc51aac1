/*
 * cmd_sync.c - dirconnctl dry-run and sync: run the sync engine once.
 */
#include "admin/ctl.h"
#include "connector/sync.h"

#include <getopt.h>
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
        .out = stdout,
    };
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct sync_result res;
    enum dirconn_err e = sync_run(ctl->cfg, &ctl->log, &opts, &res, &err);
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
