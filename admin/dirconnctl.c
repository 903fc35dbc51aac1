/*
 * dirconnctl - the dirconn admin CLI. One table of subcommands; each parses
 * its own options, prints data (or JSON with --json) on stdout, one-line
 * errors on stderr, and exits with the codes of docs/cli.md.
 */
#include "admin/ctl.h"

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
    {"avatar-test", cmd_avatar_test, "render an avatar URI pattern with a sample value"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: dirconnctl COMMAND [--config FILE] [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'dirconnctl COMMAND --help' describes a command; exit codes are in docs/cli.md.\n");
}

enum dirconn_err ctl_load_config(struct ctl *ctl)
{
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = config_load(ctl->config_path, &ctl->cfg, &err);
    if (rc != DIRCONN_OK) {
        ctl_fail(ctl, &err);
        return rc;
    }
    log_sink_init(&ctl->log, ctl->prog, (enum log_level)ctl->cfg->log_level,
                  (enum log_target)ctl->cfg->log_target);
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

int main(int argc, char **argv)
{
    struct ctl ctl = {.prog = "dirconnctl", .config_path = CTL_DEFAULT_CONFIG};
    log_sink_init(&ctl.log, ctl.prog, LOG_LEVEL_INFO, LOG_TARGET_STDERR);
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
