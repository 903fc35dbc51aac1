/*
 * dirconnctl - the dirconn admin CLI. One table of subcommands; each parses
 * its own options, prints data (or JSON with --json) on stdout, one-line
 * errors on stderr, and exits with the codes of docs/cli.md.
 */
#define _DEFAULT_SOURCE /* getopt_long */
#include "admin/ctl.h"
#include "connector/config_view.h"
#include "connector/core/platform.h"
#include "connector/state.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_command {
    const char *name;
    int (*run)(struct ctl *ctl, int argc, char **argv);
    const char *summary;
};

static const struct ctl_command commands[] = {
    {"partitions", cmd_partitions, "list the directory's naming contexts and their kind"},
    {"test-connection", cmd_test_connection,
     "bind to the preferred DCs and report the DC, TLS and change tracking"},
    {"search", cmd_search, "run a paged search with the configured connection (JSON lines)"},
    {"dry-run", cmd_dry_run, "show what a sync would add, update and delete, changing nothing"},
    {"sync", cmd_sync, "synchronise the directory into the cloud (--full or --incremental)"},
    {"status", cmd_status, "dirconnd: current and next synchronizations, the last two, connectors"},
    {"sync-now", cmd_sync_now, "dirconnd: start a synchronization now (--full or --incremental)"},
    {"pause", cmd_pause, "dirconnd: hold back scheduled and notified synchronizations"},
    {"resume", cmd_resume, "dirconnd: let scheduled and notified synchronizations run again"},
    {"avatar-test", cmd_avatar_test, "render an avatar URI pattern with a sample value"},
    {"register", cmd_register, "register this connector with the cloud (--admin-token-file)"},
    {"deregister", cmd_deregister, "release the lease, delete the registration, wipe the secret"},
    {"reset-secret", cmd_reset_secret, "rotate the connector secret in the cloud and locally"},
    {"connectors", cmd_connectors, "list the organisation's registered connectors"},
    {"ha-mode", cmd_ha_mode, "show or set the organisation's HA mode (cloud, etcd, none)"},
    {"secret", cmd_secret, "store a secret (set NAME), remove one (unset NAME), list names"},
    {"config", cmd_config,
     "show the effective configuration: values, defaults, sources, reload classes"},
    {"proxy-check", cmd_proxy_check,
     "show the proxies for a cloud URL and whether each one reaches the cloud"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: dirconnctl COMMAND [--config FILE] [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n'dirconnctl COMMAND --help' describes a command; exit codes are in docs/cli.md.\n");
}

enum dirconn_err ctl_load_config(struct ctl *ctl)
{
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = config_load(ctl->config_path, &ctl->cfg, &err);
    if (rc == DIRCONN_OK && (rc = config_check(ctl->cfg, &err)) != DIRCONN_OK) {
        config_free(ctl->cfg); /* a bad [mapping] or [avatar] is refused at load */
        ctl->cfg = NULL;
    }
    if (rc != DIRCONN_OK) {
        ctl_fail(ctl, &err);
        return rc;
    }
    log_sink_init(&ctl->log, ctl->prog, (enum log_level)ctl->cfg->log_level,
                  (enum log_target)ctl->cfg->log_target);
    state_set_cache_size(ctl->cfg->state_cache_size);
    return DIRCONN_OK;
}

int ctl_fail(const struct ctl *ctl, const struct dirconn_error *err)
{
    fprintf(stderr, "%s %s: %s\n", ctl->prog, ctl->command != NULL ? ctl->command : "",
            err->msg[0] != '\0' ? err->msg : dirconn_strerror(err->code));
    return dirconn_exit_code(err->code);
}

int ctl_usage_error(const struct ctl *ctl, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s: %s (see '%s %s --help')\n", ctl->prog, ctl->command, msg, ctl->prog,
            ctl->command);
    return dirconn_exit_code(DIRCONN_EUSAGE);
}

enum { OPT_CONFIG = 'c', OPT_HELP = 'h', OPT_JSON = 0x100 };

int ctl_parse_options(struct ctl *ctl, int argc, char **argv, const struct option *extra,
                      ctl_opt_fn on_opt, void *user, const char *help)
{
    struct option opts[16];
    size_t n = 0;
    opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    opts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    for (size_t i = 0; extra != NULL && extra[i].name != NULL && n < 15; i++)
        opts[n++] = extra[i];
    opts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            ctl->config_path = optarg;
            break;
        case OPT_JSON:
            ctl->json = true;
            break;
        case OPT_HELP:
            fputs(help, stdout);
            return 0;
        case ':':
            return ctl_usage_error(ctl, "option '%s' needs a value", argv[optind - 1]);
        case '?':
            return ctl_usage_error(ctl, "unknown option '%s'", argv[optind - 1]);
        default:
            if (on_opt != NULL) {
                int rc = on_opt(ctl, c, optarg, user);
                if (rc >= 0)
                    return rc;
            }
            break;
        }
    }
    if (optind < argc)
        return ctl_usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    return -1;
}

int main(int argc, char **argv)
{
    struct ctl ctl = {.prog = "dirconnctl", .config_path = CTL_DEFAULT_CONFIG};
    /* A server that goes away mid-request is an error to report, never a death by signal. */
    signal(SIGPIPE, SIG_IGN);
    log_sink_init(&ctl.log, ctl.prog, LOG_LEVEL_INFO, LOG_TARGET_STDERR);
    /* dirconnctl handles secrets: no core dump may hold them. */
    struct dirconn_error dump_err;
    dirconn_error_clear(&dump_err);
    if (platform_disable_core_dumps(&dump_err) != DIRCONN_OK)
        log_msg(&ctl.log, LOG_LEVEL_WARN, "%s", dump_err.msg);
    if (argc < 2) {
        usage(stderr);
        return dirconn_exit_code(DIRCONN_EUSAGE);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dirconnctl %s\n", DIRCONN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            ctl.command = commands[i].name;
            int rc = commands[i].run(&ctl, argc - 1, argv + 1);
            config_free(ctl.cfg);
            log_sink_close(&ctl.log);
            return rc;
        }
    }
    fprintf(stderr, "dirconnctl: unknown command '%s' (see 'dirconnctl --help')\n", argv[1]);
    return dirconn_exit_code(DIRCONN_EUSAGE);
}
