/*
 * cmd_config.c - dirconnctl config show: the effective configuration, every key of
 * the options table with its value, default, source and reload class, and the
 * secrets the connector uses shown as <secret> (connector/config_view.h).
 */
#include "admin/ctl.h"
#include "connector/config_view.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char config_help[] =
    "usage: dirconnctl config show [--config FILE] [--json]\n"
    "\n"
    "Print the effective configuration of FILE: every key, its value (\"(unset)\" when it\n"
    "has none), where the value comes from (FILE:LINE, or \"default\"), its default, and\n"
    "when dirconnd applies a change of it on SIGHUP (now, next-run or restart); then the\n"
    "[mapping] lines and the secrets the connector uses, each shown as <secret> with the\n"
    "file or the secret store entry it is read from (the secret itself is never read).\n"
    "The file is checked as dirconnd checks it, [mapping] expressions and the [avatar]\n"
    "pattern included.\n"
    "\n"
    "Exit codes: 0 printed, 2 usage, 3 the configuration is invalid (one FILE:LINE line).\n";

int cmd_config(struct ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(config_help, stdout);
        return 0;
    }
    if (argc < 2)
        return ctl_usage_error(ctl, "a subcommand is required: show");
    if (strcmp(argv[1], "show") != 0)
        return ctl_usage_error(ctl, "unknown subcommand '%s' (expected show)", argv[1]);
    int rc = ctl_parse_options(ctl, argc - 1, argv + 1, NULL, NULL, NULL, config_help);
    if (rc >= 0)
        return rc;
    enum dirconn_err e = ctl_load_config(ctl);
    if (e != DIRCONN_OK)
        return dirconn_exit_code(e);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    json_t *view = config_render_json(ctl->cfg);
    if (view == NULL) {
        dirconn_error_set(&err, DIRCONN_ENOMEM, "out of memory");
        return ctl_fail(ctl, &err);
    }
    int out = 0;
    if (ctl->json) {
        out = json_dumpf(view, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (out == 0)
            out = fputc('\n', stdout) == EOF || fflush(stdout) != 0 ? -1 : 0;
    } else {
        out = config_render_text(view, stdout);
    }
    json_decref(view);
    if (out != 0) {
        dirconn_error_set(&err, DIRCONN_EIO, "cannot write the output");
        return ctl_fail(ctl, &err);
    }
    return 0;
}
