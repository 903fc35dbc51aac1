/*
 * ctl.h - what the dirconnctl subcommands share: the invocation context,
 * loading the configuration, and reporting errors as one line on stderr.
 */
#ifndef DIRCONN_ADMIN_CTL_H
#define DIRCONN_ADMIN_CTL_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"

#include <stdbool.h>

/* Default configuration file when --config is not given. */
#define CTL_DEFAULT_CONFIG "/etc/dirconn/dirconn.conf"

struct ctl {
    const char *prog;        /* "dirconnctl" */
    const char *command;     /* the subcommand being run */
    const char *config_path; /* --config */
    bool json;               /* --json */
    struct config *cfg;      /* loaded by ctl_load_config */
    struct log_sink log;
};

/*
 * ctl_load_config - load ctl->config_path into ctl->cfg, check its [mapping] and
 * [avatar] (config_check), and set up logging from [log]. Returns DIRCONN_OK or
 * the config error (already printed; ctl->cfg stays NULL).
 */
enum dirconn_err ctl_load_config(struct ctl *ctl);

/*
 * ctl_fail - print "dirconnctl COMMAND: <message>" on stderr and return the
 * documented exit code for err->code (docs/cli.md).
 */
int ctl_fail(const struct ctl *ctl, const struct dirconn_error *err);

/* ctl_usage_error - print a usage error line and return exit code 2. */
int ctl_usage_error(const struct ctl *ctl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * ctl_parse_options - parse the options every command takes (--config FILE,
 * --json, --help) plus `extra` (getopt_long entries whose val is at least
 * 0x200); on_opt is called for each extra option and returns -1 to go on or an
 * exit code. help is printed for --help. Returns -1 when the command should
 * run, or the exit code to return (0 after --help, 2 on a usage error).
 */
typedef int (*ctl_opt_fn)(struct ctl *ctl, int opt, const char *arg, void *user);
struct option;
int ctl_parse_options(struct ctl *ctl, int argc, char **argv, const struct option *extra,
                      ctl_opt_fn on_opt, void *user, const char *help);

/*
 * dirconnctl config show [--json] (admin/cmd_config.c): the effective configuration
 * (connector/config_view.h). Returns an exit code.
 */
int cmd_config(struct ctl *ctl, int argc, char **argv);

/* The directory subcommands (admin/cmd_directory.c). Each returns an exit code. */
int cmd_partitions(struct ctl *ctl, int argc, char **argv);
int cmd_test_connection(struct ctl *ctl, int argc, char **argv);
int cmd_search(struct ctl *ctl, int argc, char **argv);

/*
 * The cloud side of test-connection (admin/cmd_cloud_check.c): GET
 * <SCIM base>/ServiceProviderConfig and then an authenticated read of one
 * user (GET /Users?count=1; RFC 7644 4 lets a provider answer discovery
 * without checking the token), with [cloud] auth, through [proxy], without
 * retries. The result, also on failure: */
struct ctl_cloud_check {
    bool configured;       /* [cloud] names a cloud; false: nothing was checked (DIRCONN_OK) */
    char base[1024];       /* the SCIM base URL */
    char proxy_mode[16];   /* [proxy] mode */
    char route[512];       /* the route taken (proxy_route_used), "" = none */
    char auth[16];         /* "oauth2" or "bearer" */
    char identity[256];    /* the connector id the token was issued to, or "" */
    bool identity_stored;  /* that id is the registration of the secret store */
    long spc_status;       /* HTTP status of ServiceProviderConfig, 0 = no answer */
    long read_status;      /* HTTP status of the authenticated read, 0 = not sent or no answer */
    enum dirconn_err code; /* DIRCONN_OK when both answered 2xx */
    char error[DIRCONN_ERROR_LEN];
};

/*
 * ctl_cloud_check - run the check for ctl->cfg (loaded). Returns out->code:
 * DIRCONN_OK (also when [cloud] names no cloud: out->configured is false);
 * DIRCONN_ECONFIG (a secret file unreadable);
 * DIRCONN_ECLOUD_AUTH (credentials refused: the message names the setting to
 * fix, [cloud] token_file, [cloud] client_id/client_secret_file or the
 * secret store entries); DIRCONN_ECLOUD_CONNECT, DIRCONN_EPROXY,
 * DIRCONN_ECLOUD, DIRCONN_ESECRET with the request's message (URL, CURLcode
 * or HTTP status). err and out->error get the same line.
 */
struct json_t;
enum dirconn_err ctl_cloud_check(struct ctl *ctl, struct ctl_cloud_check *out,
                                 struct dirconn_error *err);
/* ctl_cloud_check_json - the result as the "cloud" object of test-connection --json (new ref). */
struct json_t *ctl_cloud_check_json(const struct ctl_cloud_check *c);
/* ctl_cloud_check_print - the result as text lines on stdout. */
void ctl_cloud_check_print(const struct ctl_cloud_check *c);

/* The sync subcommands (admin/cmd_sync.c). */
int cmd_dry_run(struct ctl *ctl, int argc, char **argv);
int cmd_sync(struct ctl *ctl, int argc, char **argv);
/* Registration and secrets (admin/cmd_admin.c). */
int cmd_register(struct ctl *ctl, int argc, char **argv);
int cmd_deregister(struct ctl *ctl, int argc, char **argv);
int cmd_reset_secret(struct ctl *ctl, int argc, char **argv);
int cmd_connectors(struct ctl *ctl, int argc, char **argv);
int cmd_secret(struct ctl *ctl, int argc, char **argv);
int cmd_ha_mode(struct ctl *ctl, int argc, char **argv);

/* The dirconnd subcommands (admin/cmd_daemon.c): talk to dirconnd's admin socket. */
int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_sync_now(struct ctl *ctl, int argc, char **argv);
int cmd_pause(struct ctl *ctl, int argc, char **argv);
int cmd_resume(struct ctl *ctl, int argc, char **argv);
/* The proxy subcommand (admin/cmd_proxy.c): resolve and try the proxies for a cloud URL. */
int cmd_proxy_check(struct ctl *ctl, int argc, char **argv);
/* The avatar subcommand (admin/cmd_avatar.c): render an avatar URI pattern with a sample value. */
int cmd_avatar_test(struct ctl *ctl, int argc, char **argv);

#endif
