/*
 * cmd_admin.c - dirconnctl register, deregister, reset-secret, connectors and
 * secret: the connector's registration with the cloud's control API and the
 * encrypted secret store (docs/cli.md; the Cisco Directory Connector guide's
 * "Uninstall and Deregister Directory Connectors" and "Reset Connector Secret").
 *
 * Secrets (the admin token, the connector secret, values typed for `secret
 * set`) are read from files or the terminal, never from the command line;
 * they are wiped after use and never printed.
 */
#include "admin/ctl.h"
#include "connector/cloud_auth.h"
#include "connector/control.h"
#include "ha/election.h"
#include "connector/core/platform.h"
#include "connector/core/secret_store.h"
#include "proxy/proxy.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_ADMIN_TOKEN = 0x400, OPT_NAME, OPT_FORCE, OPT_YES, OPT_ID };

struct admin_args {
    const char *admin_token_file;
    const char *name;
    const char *id;
    bool force;
    bool yes;
};

static int admin_opt(struct ctl *ctl, int opt, const char *arg, void *user)
{
    (void)ctl;
    struct admin_args *a = user;
    if (opt == OPT_ADMIN_TOKEN)
        a->admin_token_file = arg;
    else if (opt == OPT_NAME)
        a->name = arg;
    else if (opt == OPT_FORCE)
        a->force = true;
    else if (opt == OPT_YES)
        a->yes = true;
    else if (opt == OPT_ID)
        a->id = arg;
    return -1;
}

static const char register_help[] =
    "usage: dirconnctl register [--config FILE] --admin-token-file FILE [--name NAME] [--force]\n"
    "                           [--json]\n"
    "\n"
    "Register this connector instance with the cloud's control API ([cloud] url, org) and\n"
    "save the connector id and secret it is given in the encrypted secret store of\n"
    "[connector] state_dir. The connector then authenticates with OAuth 2.0 client\n"
    "credentials; leave [cloud] client_id and client_secret_file unset.\n"
    "\n"
    "  --admin-token-file FILE  file holding the organisation's admin token (never on the\n"
    "                           command line)\n"
    "  --name NAME              name shown in the cloud (default: [connector] name)\n"
    "  --force                  this instance is registered already: register it again and\n"
    "                           deregister the old id (its HA lease is released first)\n"
    "  --json                   print {id, name, host, org, registeredAt}\n"
    "\n"
    "Exit 0 when registered; 72 when already registered without --force; 3, 30-32, 70 on\n"
    "configuration, cloud and secret store errors (docs/cli.md).\n";

static const char deregister_help[] =
    "usage: dirconnctl deregister [--config FILE] [--admin-token-file FILE [--id ID]] [--yes]\n"
    "\n"
    "Remove this connector's registration: release the HA lease if this connector holds it\n"
    "(so a standby takes over at once), delete the registration in the cloud, and wipe the\n"
    "connector id and secret from the local secret store. Deregistering the last connector\n"
    "of the organisation stops the synchronization: it warns and asks for confirmation\n"
    "unless --yes.\n"
    "\n"
    "  --admin-token-file FILE  the organisation's admin token; deleting a registration\n"
    "                           needs it. Without it the lease is released and the local\n"
    "                           secret wiped with the connector's own credentials, and the\n"
    "                           registration stays in the cloud until an administrator\n"
    "                           deletes it.\n"
    "  --id ID                  deregister another registration of the organisation, e.g.\n"
    "                           of an instance that was uninstalled without it (needs the\n"
    "                           admin token; this instance's secret is left alone)\n"
    "  --yes                    do not ask for confirmation\n"
    "\n"
    "Exit 0 when deregistered; 6 when not confirmed; 71 when not registered; 30-32, 50, 70\n"
    "on cloud, lease and secret store errors (docs/cli.md).\n";

static const char reset_help[] =
    "usage: dirconnctl reset-secret [--config FILE] [--admin-token-file FILE] [--json]\n"
    "\n"
    "Rotate this connector's secret. By default the connector's own credentials in the secret\n"
    "store authorise it: the cloud issues a new secret, the store saves it in one atomic\n"
    "write with the old one kept beside it, a token obtained with the new secret confirms\n"
    "it (the cloud then revokes the old secret and every token issued with it), and the old\n"
    "secret is dropped from the store. Interrupted at any point, the connector keeps a\n"
    "secret that works; the next reset-secret finishes or undoes the interrupted one. A\n"
    "running dirconnd reads the new secret from the store with its next token.\n"
    "\n"
    "  --admin-token-file FILE  authenticate with the organisation's admin token instead\n"
    "                           (when the connector's credentials no longer work): the old\n"
    "                           secret stops working at once\n"
    "\n"
    "Exit 0 when rotated; 71 when not registered; 30-32, 70 on cloud and secret store\n"
    "errors (docs/cli.md).\n";

static const char connectors_help[] =
    "usage: dirconnctl connectors [--config FILE] [--admin-token-file FILE] [--json]\n"
    "\n"
    "List the organisation's registered connectors: id, name, host, HA role (active: holds\n"
    "the lease; standby; with [ha] lease = none: -), since when the active one holds the\n"
    "lease and when it last renewed it (the lease server's clock), the version it reported,\n"
    "when registered and when last seen. This instance is marked '*'. Authenticates with\n"
    "the admin token when --admin-token-file is given, else with the connector's own\n"
    "credentials.\n"
    "--json prints {\"org\", \"lease\": {backend, holder, holderSince, lastRenew, expired},\n"
    "\"connectors\": [{id, name, host, role, holderSince, lastRenew, version, registeredAt,\n"
    "lastSeen, self}]}.\n";

static const char secret_help[] =
    "usage: dirconnctl secret set NAME [--config FILE]\n"
    "       dirconnctl secret unset NAME [--config FILE]\n"
    "       dirconnctl secret list [--config FILE] [--json]\n"
    "\n"
    "Manage the encrypted secret store of [connector] state_dir. 'set' reads the value from\n"
    "a prompt without echo (asked twice) when standard input is a terminal, or else from\n"
    "standard input (one trailing newline is removed), and stores it. Values are never\n"
    "taken from the command line. NAME is one of:\n"
    "  ldap-bind-password  the [ldap] bind_dn password when bind_password_file is not set\n"
    "  proxy-password      the [proxy] username's password when password_file is not set\n"
    "  cloud-token         the SCIM bearer token (auth = bearer) when token_file is not set\n"
    "'unset' removes a value; 'list' prints the names that are set, never values.\n"
    "(cloud-connector-id and cloud-connector-secret are managed by 'register'.)\n";

/* ---- helpers ---------------------------------------------------------------- */

static int fail_code(struct ctl *ctl, enum dirconn_err code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail_code(struct ctl *ctl, enum dirconn_err code, const char *fmt, ...)
{
    struct dirconn_error err;
    dirconn_error_clear(&err);
    va_list ap;
    va_start(ap, fmt);
    dirconn_error_vset(&err, code, fmt, ap);
    va_end(ap);
    return ctl_fail(ctl, &err);
}

static void warn(const struct ctl *ctl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void warn(const struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s %s: warning: ", ctl->prog, ctl->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Load the configuration and check the [cloud] keys the control API needs. */
static enum dirconn_err load_cloud_config(struct ctl *ctl)
{
    enum dirconn_err e = ctl_load_config(ctl);
    if (e != DIRCONN_OK)
        return e;
    const char *missing = ctl->cfg->cloud_url == NULL   ? "url"
                          : ctl->cfg->cloud_org == NULL ? "org"
                                                        : NULL;
    if (missing != NULL) {
        fail_code(ctl, DIRCONN_ECONFIG, "%s: [cloud] %s is required to reach the control API",
                  ctl->cfg->path, missing);
        return DIRCONN_ECONFIG;
    }
    return DIRCONN_OK;
}

/* The cloud side of a command: the control API options, all traffic through [proxy]. */
struct admin_cloud {
    struct proxy_ctx *proxy;
    struct control_options opts;
};

static enum dirconn_err cloud_open(struct ctl *ctl, struct admin_cloud *c,
                                   struct dirconn_error *err)
{
    memset(c, 0, sizeof(*c));
    enum dirconn_err e = proxy_new(ctl->cfg, &ctl->log, NULL, &c->proxy, err);
    if (e != DIRCONN_OK)
        return e;
    control_options_from_config(ctl->cfg, &c->opts);
    c->opts.configure = proxy_configure;
    c->opts.outcome = proxy_outcome;
    c->opts.configure_arg = c->proxy;
    return DIRCONN_OK;
}

static void cloud_close(struct admin_cloud *c)
{
    proxy_free(c->proxy);
    c->proxy = NULL;
}

/*
 * The token for the control API: the admin token from its file, or else the
 * connector's own OAuth 2.0 token (through the proxy). *token is wiped and
 * freed by the caller (secret_free).
 */
static enum dirconn_err api_token(struct ctl *ctl, struct admin_cloud *c,
                                  const char *admin_token_file, char **token,
                                  struct dirconn_error *err)
{
    *token = NULL;
    if (admin_token_file != NULL)
        return secret_file_read(admin_token_file, "--admin-token-file", token, err);
    struct cloud_auth *auth = NULL;
    enum dirconn_err e = cloud_auth_new(ctl->cfg, proxy_configure, c->proxy, &auth, err);
    if (e == DIRCONN_OK) {
        cloud_auth_set_outcome(auth, proxy_outcome);
        e = cloud_auth_token(auth, false, token, err);
    }
    cloud_auth_free(auth);
    return e;
}

static enum dirconn_err open_store(struct ctl *ctl, enum secret_store_mode mode,
                                   struct secret_store **s, struct dirconn_error *err)
{
    return secret_store_open_config(ctl->cfg, mode, s, err);
}

/* ---- register --------------------------------------------------------------- */

static int run_register(struct ctl *ctl, const struct admin_args *a)
{
    if (a->admin_token_file == NULL)
        return ctl_usage_error(ctl, "--admin-token-file FILE is required");
    if (load_cloud_config(ctl) != DIRCONN_OK)
        return dirconn_exit_code(DIRCONN_ECONFIG);
    const struct config *cfg = ctl->cfg;
    if (cfg->cloud_client_id != NULL)
        warn(ctl,
             "[cloud] client_id is set in %s: the connector keeps using it and not this "
             "registration until client_id and client_secret_file are removed",
             cfg->path);
    if (cfg->cloud_auth != CLOUD_AUTH_OAUTH2)
        warn(ctl, "[cloud] auth = bearer: the registration is used for the lease and reports, "
                  "SCIM requests keep the bearer token");
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct admin_cloud cloud;
    if (cloud_open(ctl, &cloud, &err) != DIRCONN_OK) {
        cloud_close(&cloud);
        return ctl_fail(ctl, &err);
    }
    struct secret_store *store = NULL;
    char *admin = NULL, *secret = NULL, *old_id = NULL;
    struct control_connector reg = {0};
    int rc = 0;
    enum dirconn_err e = open_store(ctl, SECRET_STORE_CREATE, &store, &err);
    if (e == DIRCONN_OK)
        e = secret_store_lookup(store, SECRET_CONNECTOR_ID, &old_id, &err);
    if (e == DIRCONN_OK && old_id != NULL && !a->force)
        e = dirconn_error_set(&err, DIRCONN_EREGISTERED,
                              "this instance is registered already as %s; use --force to "
                              "register it again (the old registration is deregistered)",
                              old_id);
    if (e == DIRCONN_OK)
        e = secret_file_read(a->admin_token_file, "--admin-token-file", &admin, &err);
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    const char *name = a->name != NULL ? a->name : cfg->name;
    if (e == DIRCONN_OK)
        e = control_register(&cloud.opts, admin, name, host, &reg, &secret, &err);
    if (e != DIRCONN_OK)
        goto out;
    secret_store_remove(store, SECRET_CONNECTOR_SECRET_PREVIOUS);
    e = secret_store_put(store, SECRET_CONNECTOR_ID, reg.id, &err);
    if (e == DIRCONN_OK)
        e = secret_store_put(store, SECRET_CONNECTOR_SECRET, secret, &err);
    if (e == DIRCONN_OK)
        e = secret_store_save(store, &err);
    if (e != DIRCONN_OK) {
        /* Do not leave a registration behind whose secret nobody has. */
        struct dirconn_error ignored;
        bool existed;
        dirconn_error_clear(&ignored);
        control_deregister(&cloud.opts, admin, reg.id, &existed, &ignored);
        goto out;
    }
    log_msg(&ctl->log, LOG_LEVEL_INFO, "registered connector %s (%s) in org %s", reg.id, name,
            cfg->cloud_org);
    if (ctl->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id", reg.id, "name",
                              reg.name ? reg.name : name, "host", reg.host ? reg.host : host, "org",
                              cfg->cloud_org, "registeredAt", reg.registered_at);
        char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(o);
    } else {
        printf("Registered connector '%s' (host %s) in organisation %s as %s.\n", name, host,
               cfg->cloud_org, reg.id);
    }
    if (old_id != NULL) {
        /* --force: the new registration is saved; now retire the old one. */
        bool released = false, existed = false;
        e = control_lease_release(&cloud.opts, admin, old_id, &released, &err);
        if (e == DIRCONN_OK)
            e = control_deregister(&cloud.opts, admin, old_id, &existed, &err);
        if (e != DIRCONN_OK) {
            rc = ctl_fail(ctl, &err);
            warn(ctl, "the old registration %s could not be removed; remove it in the cloud",
                 old_id);
            e = DIRCONN_OK;
            goto out;
        }
        if (!ctl->json)
            printf("Deregistered the old registration %s%s%s.\n", old_id,
                   released ? " (its HA lease was released)" : "",
                   existed ? "" : " (the cloud no longer knew it)");
    }
out:
    if (e != DIRCONN_OK)
        rc = ctl_fail(ctl, &err);
    secret_free(admin);
    secret_store_free_value(secret);
    free(old_id);
    control_connector_clear(&reg);
    secret_store_close(store);
    cloud_close(&cloud);
    return rc;
}

int cmd_register(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN},
        {"name", required_argument, NULL, OPT_NAME},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0}};
    struct admin_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, admin_opt, &a, register_help);
    if (rc >= 0)
        return rc;
    return run_register(ctl, &a);
}

/* ---- deregister ------------------------------------------------------------- */

static int run_deregister(struct ctl *ctl, const struct admin_args *a)
{
    if (a->id != NULL && a->admin_token_file == NULL)
        return ctl_usage_error(ctl, "--id needs --admin-token-file");
    if (load_cloud_config(ctl) != DIRCONN_OK)
        return dirconn_exit_code(DIRCONN_ECONFIG);
    const struct config *cfg = ctl->cfg;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct admin_cloud cloud;
    if (cloud_open(ctl, &cloud, &err) != DIRCONN_OK) {
        cloud_close(&cloud);
        return ctl_fail(ctl, &err);
    }
    struct secret_store *store = NULL;
    char *local_id = NULL, *token = NULL;
    struct control_connector *list = NULL;
    size_t n = 0;
    int rc = 0;
    enum dirconn_err e = open_store(ctl, SECRET_STORE_UPDATE, &store, &err);
    if (e == DIRCONN_OK)
        e = secret_store_lookup(store, SECRET_CONNECTOR_ID, &local_id, &err);
    if (e != DIRCONN_OK && a->id != NULL) {
        /* Deregistering another instance does not need this one's store. */
        warn(ctl, "%s", err.msg);
        dirconn_error_clear(&err);
        secret_store_close(store);
        store = NULL;
        e = DIRCONN_OK;
    }
    if (e == DIRCONN_OK && a->id == NULL && local_id == NULL)
        e = dirconn_error_set(&err, DIRCONN_ENOTREGISTERED,
                              "this instance is not registered (no connector id in the secret "
                              "store of %s)",
                              cfg->state_dir);
    const char *id = a->id != NULL ? a->id : local_id;
    bool local = local_id != NULL && strcmp(id, local_id) == 0;
    if (e == DIRCONN_OK) {
        e = api_token(ctl, &cloud, a->admin_token_file, &token, &err);
        if (e == DIRCONN_ECLOUD_AUTH && a->admin_token_file == NULL) {
            size_t len = strlen(err.msg);
            snprintf(err.msg + len, sizeof(err.msg) - len,
                     " (the connector's credentials no longer work: use --admin-token-file)");
        }
    }
    if (e == DIRCONN_OK)
        e = control_list(&cloud.opts, token, &list, &n, &err);
    if (e != DIRCONN_OK)
        goto out;
    size_t others = 0;
    bool known = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].id, id) != 0)
            others++;
        else
            known = true;
    }
    if (!known && !local) {
        e = dirconn_error_set(&err, DIRCONN_ENOTREGISTERED, "organisation %s has no connector %s",
                              cfg->cloud_org, id);
        goto out;
    }
    if (others == 0) {
        warn(ctl,
             "%s is the last connector of organisation %s: after deregistration, users "
             "are not synchronized any more",
             id, cfg->cloud_org);
        if (!a->yes) {
            int answer = platform_confirm("Deregister it? [y/N] ");
            if (answer < 0) {
                e = dirconn_error_set(&err, DIRCONN_ECANCELED,
                                      "confirmation needed to deregister the last connector, "
                                      "and there is no terminal to ask on; nothing was changed "
                                      "(give --yes)");
                goto out;
            }
            if (answer == 0) {
                e = dirconn_error_set(&err, DIRCONN_ECANCELED,
                                      "deregistration cancelled; nothing was changed");
                goto out;
            }
        }
    }
    bool released = false, existed = false;
    e = control_lease_release(&cloud.opts, token, id, &released, &err);
    if (e != DIRCONN_OK)
        goto out;
    if (released)
        printf("Released the HA lease held by %s.\n", local ? "this connector" : id);
    if (a->admin_token_file != NULL) {
        e = control_deregister(&cloud.opts, token, id, &existed, &err);
        if (e != DIRCONN_OK)
            goto out;
    }
    if (local) {
        secret_store_remove(store, SECRET_CONNECTOR_ID);
        secret_store_remove(store, SECRET_CONNECTOR_SECRET);
        secret_store_remove(store, SECRET_CONNECTOR_SECRET_PREVIOUS);
        e = secret_store_save(store, &err);
        if (e != DIRCONN_OK)
            goto out;
    }
    log_msg(&ctl->log, LOG_LEVEL_INFO, "deregistered connector %s from org %s", id, cfg->cloud_org);
    if (a->admin_token_file != NULL)
        printf("Deregistered connector %s from organisation %s%s%s.\n", id, cfg->cloud_org,
               existed ? "" : " (the cloud no longer knew it)",
               local ? "; its local secret is wiped" : "");
    else
        printf("Wiped the local secret of connector %s. Its registration stays in organisation "
               "%s until an administrator deletes it (dirconnctl deregister "
               "--admin-token-file, or the cloud's console).\n",
               id, cfg->cloud_org);
out:
    if (e != DIRCONN_OK)
        rc = ctl_fail(ctl, &err);
    secret_free(token);
    control_list_free(list, n);
    free(local_id);
    secret_store_close(store);
    cloud_close(&cloud);
    return rc;
}

int cmd_deregister(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN},
        {"yes", no_argument, NULL, OPT_YES},
        {"id", required_argument, NULL, OPT_ID},
        {NULL, 0, NULL, 0}};
    struct admin_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, admin_opt, &a, deregister_help);
    if (rc >= 0)
        return rc;
    return run_deregister(ctl, &a);
}

/* ---- reset-secret ----------------------------------------------------------- */

/*
 * Do the credentials in the secret store work? A fresh token from the store as it is on disk
 * (read again, as dirconnd reads it for every token). On a cloud with the two-phase rotation
 * (docs/cloud-api.md "Connectors") this token is what makes a pending secret the connector's
 * secret and revokes the old one. Errors: those of cloud_auth_token.
 */
static enum dirconn_err store_credentials_work(struct ctl *ctl, struct admin_cloud *c,
                                               struct dirconn_error *err)
{
    char *token = NULL;
    enum dirconn_err e = api_token(ctl, c, NULL, &token, err);
    secret_free(token);
    return e;
}

/* Set the connector secret to current, and the previous one to previous (NULL: none), in one
 * atomic write of the store. */
static enum dirconn_err store_secrets(struct secret_store *store, const char *current,
                                      const char *previous, struct dirconn_error *err)
{
    enum dirconn_err e = secret_store_put(store, SECRET_CONNECTOR_SECRET, current, err);
    if (e == DIRCONN_OK && previous != NULL)
        e = secret_store_put(store, SECRET_CONNECTOR_SECRET_PREVIOUS, previous, err);
    else if (e == DIRCONN_OK)
        secret_store_remove(store, SECRET_CONNECTOR_SECRET_PREVIOUS);
    if (e == DIRCONN_OK)
        e = secret_store_save(store, err);
    return e;
}

static void append_msg(struct dirconn_error *err, const char *text)
{
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len, "%s", text);
}

/*
 * An earlier reset-secret saved a new secret beside the previous one and stopped before a
 * token confirmed it. Keep the one the cloud takes: the new one (the token just obtained
 * confirms it), else the previous one.
 */
static enum dirconn_err finish_interrupted(struct ctl *ctl, struct admin_cloud *c,
                                           struct secret_store *store, const char *current,
                                           const char *previous, struct dirconn_error *err)
{
    enum dirconn_err e = store_credentials_work(ctl, c, err);
    if (e == DIRCONN_OK) {
        warn(ctl, "an earlier reset-secret stopped before its new secret was confirmed; the "
                  "cloud takes the new secret: it is kept");
        return store_secrets(store, current, NULL, err);
    }
    if (e != DIRCONN_ECLOUD_AUTH)
        return e;
    dirconn_error_clear(err);
    warn(ctl, "an earlier reset-secret stopped before its new secret was confirmed, and the "
              "cloud refuses that secret: going back to the previous one");
    return store_secrets(store, previous, NULL, err);
}

/*
 * Rotation with the connector's own credentials (the default):
 *   1. a token with the secret of the store; POST connectors/<id>/secret -> new secret;
 *   2. one atomic write of the store: the new secret, and the old one beside it as
 *      cloud-connector-secret-previous;
 *   3. a token with the store's (new) credentials: it proves the saved secret works, and the
 *      cloud then makes it the secret and revokes the old one;
 *   4. the previous secret is dropped from the store.
 * A stop after 1 leaves the store as it was, and the cloud still takes the old secret (the new
 * one is pending until used). A stop after 2 leaves both secrets in the store; whatever reads
 * the store (dirconnd, a sync) uses the new one and so confirms it, and the next reset-secret
 * finishes the step (finish_interrupted). With the admin token the cloud replaces the secret
 * at once: only step 2 remains, without the previous secret.
 */
static int run_reset(struct ctl *ctl, const struct admin_args *a)
{
    if (load_cloud_config(ctl) != DIRCONN_OK)
        return dirconn_exit_code(DIRCONN_ECONFIG);
    const struct config *cfg = ctl->cfg;
    if (cfg->cloud_client_id != NULL)
        return fail_code(ctl, DIRCONN_ECONFIG,
                         "%s: [cloud] client_id and client_secret_file are set: this connector's "
                         "credentials are managed in those files, not in the secret store",
                         cfg->path);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct admin_cloud cloud;
    if (cloud_open(ctl, &cloud, &err) != DIRCONN_OK) {
        cloud_close(&cloud);
        return ctl_fail(ctl, &err);
    }
    bool own = a->admin_token_file == NULL;
    struct secret_store *store = NULL;
    char *id = NULL, *token = NULL, *secret = NULL, *old = NULL, *previous = NULL;
    bool pending = false;
    int rc = 0;
    enum dirconn_err e = open_store(ctl, SECRET_STORE_UPDATE, &store, &err);
    if (e == DIRCONN_OK)
        e = secret_store_lookup(store, SECRET_CONNECTOR_ID, &id, &err);
    if (e == DIRCONN_OK && id == NULL)
        e = dirconn_error_set(&err, DIRCONN_ENOTREGISTERED,
                              "this instance is not registered (no connector id in the secret "
                              "store of %s)",
                              cfg->state_dir);
    if (e == DIRCONN_OK)
        e = secret_store_lookup(store, SECRET_CONNECTOR_SECRET, &old, &err);
    if (e == DIRCONN_OK)
        e = secret_store_lookup(store, SECRET_CONNECTOR_SECRET_PREVIOUS, &previous, &err);
    /* Prove the store can be written before the cloud is asked for anything. */
    if (e == DIRCONN_OK)
        e = secret_store_save(store, &err);
    if (e == DIRCONN_OK && own && previous != NULL && old != NULL) {
        e = finish_interrupted(ctl, &cloud, store, old, previous, &err);
        secret_store_free_value(old);
        old = NULL;
        if (e == DIRCONN_OK)
            e = secret_store_lookup(store, SECRET_CONNECTOR_SECRET, &old, &err);
    }
    if (e == DIRCONN_OK) {
        e = api_token(ctl, &cloud, a->admin_token_file, &token, &err);
        if (e == DIRCONN_ECLOUD_AUTH && own)
            append_msg(&err, " (the connector's credentials no longer work: use "
                             "--admin-token-file)");
    }
    if (e == DIRCONN_OK) {
        e = control_reset_secret(&cloud.opts, token, id, &secret, &pending, &err);
        if (e == DIRCONN_ECLOUD_AUTH && own)
            append_msg(&err, " (this cloud may let only the administrator rotate secrets: "
                             "--admin-token-file)");
    }
    if (e != DIRCONN_OK)
        goto out;
    /* Step 2. A pending secret leaves the old one working in the cloud: keep it here too. */
    e = store_secrets(store, secret, own && pending ? old : NULL, &err);
    if (e != DIRCONN_OK) {
        append_msg(&err, own && pending
                             ? "; nothing changed: the old secret still works and is still in "
                               "the secret store (the cloud drops the unsaved new secret at "
                               "the next rotation)"
                             : "; the cloud issued a new secret that could not be saved and "
                               "the old one no longer works: run reset-secret "
                               "--admin-token-file again");
        goto out;
    }
    if (own) {
        /* Step 3: the saved secret gets a token, which confirms it in the cloud. */
        e = store_credentials_work(ctl, &cloud, &err);
        if (e == DIRCONN_ECLOUD_AUTH && pending) {
            struct dirconn_error ignored;
            dirconn_error_clear(&ignored);
            bool restored = old != NULL && store_secrets(store, old, NULL, &ignored) == DIRCONN_OK;
            append_msg(&err, restored ? "; the cloud refuses the new secret: the old one is "
                                        "kept in the secret store"
                                      : "; the cloud refuses the new secret, and the old one "
                                        "stays in the secret store as the previous secret");
            goto out;
        }
        if (e != DIRCONN_OK) {
            append_msg(&err, "; the new secret is saved, not yet confirmed: the next token "
                             "obtained with it (dirconnd, a sync, or reset-secret again) "
                             "confirms it, and the old secret is kept until then");
            goto out;
        }
        /* Step 4. */
        if (secret_store_remove(store, SECRET_CONNECTOR_SECRET_PREVIOUS)) {
            struct dirconn_error werr;
            dirconn_error_clear(&werr);
            if (secret_store_save(store, &werr) != DIRCONN_OK)
                warn(ctl,
                     "the rotation is done, but the previous secret stays in the secret "
                     "store until the next reset-secret: %s",
                     werr.msg);
        }
    }
    log_msg(&ctl->log, LOG_LEVEL_INFO, "reset the secret of connector %s%s", id,
            own ? " with its own credentials" : " with the admin token");
    if (ctl->json) {
        json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "id", id, "org", cfg->cloud_org, "reset", 1,
                              "authorisedBy", own ? "connector" : "admin");
        char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(o);
    } else {
        printf("Reset the secret of connector %s; the new secret is saved in the secret store%s "
               "and the old one no longer works.\n",
               id, own ? ", it obtained a token," : "");
    }
out:
    if (e != DIRCONN_OK)
        rc = ctl_fail(ctl, &err);
    secret_free(token);
    secret_store_free_value(secret);
    secret_store_free_value(old);
    secret_store_free_value(previous);
    free(id);
    secret_store_close(store);
    cloud_close(&cloud);
    return rc;
}

int cmd_reset_secret(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN}, {NULL, 0, NULL, 0}};
    struct admin_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, admin_opt, &a, reset_help);
    if (rc >= 0)
        return rc;
    return run_reset(ctl, &a);
}

/* ---- connectors ------------------------------------------------------------- */

/* The HA lease as its server shows it: the cloud's GET lease with the token used for the
 * list, or the etcd backend. *has is false with [ha] lease = none. */
static enum dirconn_err lease_view(struct ctl *ctl, struct admin_cloud *cloud, const char *token,
                                   struct lease_info *li, bool *has, struct dirconn_error *err)
{
    *has = false;
    memset(li, 0, sizeof(*li));
    if (ctl->cfg->ha_lease == HA_LEASE_NONE)
        return DIRCONN_OK;
    if (ctl->cfg->ha_lease == HA_LEASE_ETCD) {
        struct lease_backend b;
        enum dirconn_err e = ha_backend_new(ctl->cfg, &ctl->log, NULL, NULL, &b, err);
        if (e == DIRCONN_OK)
            e = b.ops->observe(b.self, li, err);
        lease_backend_free(&b);
        *has = e == DIRCONN_OK;
        return e;
    }
    struct control_response r;
    enum dirconn_err e = control_request(&cloud->opts, token, "GET", "lease", NULL, NULL, &r, err);
    if (e == DIRCONN_OK) {
        const char *h = json_string_value(json_object_get(r.body, "holderIdentity"));
        const char *at = json_string_value(json_object_get(r.body, "acquireTime"));
        const char *rt = json_string_value(json_object_get(r.body, "renewTime"));
        li->holder = h != NULL ? strdup(h) : NULL;
        li->acquired_at = at != NULL ? strdup(at) : NULL;
        li->renewed_at = rt != NULL ? strdup(rt) : NULL;
        li->token = (json_int_t)json_integer_value(json_object_get(r.body, "leaseTransitions"));
        li->remaining_ms = json_is_true(json_object_get(r.body, "expired")) ? 0 : 1;
        *has = true;
    }
    control_response_clear(&r);
    return e;
}

static const char *role_of(bool has_lease, const struct lease_info *li, const char *id)
{
    if (!has_lease)
        return "-";
    return li->holder != NULL && strcmp(li->holder, id) == 0
               ? (li->remaining_ms > 0 ? "active" : "expired")
               : "standby";
}

static int run_connectors(struct ctl *ctl, const struct admin_args *a)
{
    if (load_cloud_config(ctl) != DIRCONN_OK)
        return dirconn_exit_code(DIRCONN_ECONFIG);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct admin_cloud cloud;
    if (cloud_open(ctl, &cloud, &err) != DIRCONN_OK) {
        cloud_close(&cloud);
        return ctl_fail(ctl, &err);
    }
    char *self = NULL, *token = NULL;
    struct control_connector *list = NULL;
    size_t n = 0;
    /* Which one is this instance: read the store if it can be read, quietly. */
    struct secret_store *store = NULL;
    struct dirconn_error ignored;
    dirconn_error_clear(&ignored);
    if (open_store(ctl, SECRET_STORE_READ, &store, &ignored) == DIRCONN_OK)
        secret_store_lookup(store, SECRET_CONNECTOR_ID, &self, &ignored);
    secret_store_close(store);
    if (self == NULL && ctl->cfg->cloud_client_id != NULL)
        self = strdup(ctl->cfg->cloud_client_id);
    enum dirconn_err e = api_token(ctl, &cloud, a->admin_token_file, &token, &err);
    if (e == DIRCONN_OK)
        e = control_list(&cloud.opts, token, &list, &n, &err);
    struct lease_info li = {0};
    bool has_lease = false;
    if (e == DIRCONN_OK)
        e = lease_view(ctl, &cloud, token, &li, &has_lease, &err);
    int rc = 0;
    if (e != DIRCONN_OK) {
        rc = ctl_fail(ctl, &err);
    } else if (ctl->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            bool holder = has_lease && li.holder != NULL && strcmp(li.holder, list[i].id) == 0;
            json_array_append_new(
                arr, json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b}", "id",
                               list[i].id, "name", list[i].name, "host", list[i].host, "role",
                               role_of(has_lease, &li, list[i].id), "holderSince",
                               holder ? li.acquired_at : NULL, "lastRenew",
                               holder ? li.renewed_at : NULL, "version", list[i].version,
                               "registeredAt", list[i].registered_at, "lastSeen", list[i].last_seen,
                               "self", self != NULL && strcmp(self, list[i].id) == 0));
        }
        json_t *lease =
            has_lease
                ? json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:I}", "backend",
                            ctl->cfg->ha_lease == HA_LEASE_ETCD ? "etcd" : "cloud", "holder",
                            li.holder, "holderSince", li.acquired_at, "lastRenew", li.renewed_at,
                            "expired", li.holder != NULL && li.remaining_ms <= 0, "fencingToken",
                            (json_int_t)li.token)
                : json_null();
        json_t *o = json_pack("{s:s, s:o, s:o}", "org", ctl->cfg->cloud_org, "lease", lease,
                              "connectors", arr);
        char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(o);
    } else if (n == 0) {
        printf("No connectors are registered in organisation %s.\n", ctl->cfg->cloud_org);
    } else {
        printf("  %-36s  %-16s  %-20s  %-8s  %-24s  %-24s  %-8s  %-24s  %s\n", "ID", "NAME", "HOST",
               "ROLE", "HOLDER SINCE", "LAST RENEW", "VERSION", "REGISTERED", "LAST SEEN");
        for (size_t i = 0; i < n; i++) {
            bool me = self != NULL && strcmp(self, list[i].id) == 0;
            bool holder = has_lease && li.holder != NULL && strcmp(li.holder, list[i].id) == 0;
            printf("%c %-36s  %-16s  %-20s  %-8s  %-24s  %-24s  %-8s  %-24s  %s\n", me ? '*' : ' ',
                   list[i].id, list[i].name ? list[i].name : "-", list[i].host ? list[i].host : "-",
                   role_of(has_lease, &li, list[i].id),
                   holder && li.acquired_at ? li.acquired_at : "-",
                   holder && li.renewed_at ? li.renewed_at : "-",
                   list[i].version ? list[i].version : "-",
                   list[i].registered_at ? list[i].registered_at : "-",
                   list[i].last_seen ? list[i].last_seen : "never");
        }
        /* Whether any instance runs is not known here: say who takes the lease, not when. */
        if (has_lease && li.holder != NULL && li.remaining_ms <= 0)
            printf("The lease of %s expired: the next instance that runs (a standby dirconnd, "
                   "or a sync) takes it over.\n",
                   li.holder);
        else if (has_lease && li.holder == NULL)
            printf("Nobody holds the HA lease: the first instance that runs (dirconnd, or a sync) "
                   "takes it.\n");
    }
    lease_info_clear(&li);
    secret_free(token);
    control_list_free(list, n);
    free(self);
    cloud_close(&cloud);
    return rc;
}

int cmd_connectors(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN}, {NULL, 0, NULL, 0}};
    struct admin_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, admin_opt, &a, connectors_help);
    if (rc >= 0)
        return rc;
    return run_connectors(ctl, &a);
}

/* ---- secret ----------------------------------------------------------------- */

static const char *const settable[] = {SECRET_LDAP_BIND_PASSWORD, SECRET_PROXY_PASSWORD,
                                       SECRET_CLOUD_TOKEN, NULL};

static bool is_settable(const char *name)
{
    for (size_t i = 0; settable[i] != NULL; i++) {
        if (strcmp(settable[i], name) == 0)
            return true;
    }
    return false;
}

static int secret_set(struct ctl *ctl, const char *name, bool unset)
{
    if (!is_settable(name))
        return ctl_usage_error(ctl,
                               "'%s' is not a secret name: use ldap-bind-password, "
                               "proxy-password or cloud-token",
                               name);
    enum dirconn_err e = ctl_load_config(ctl);
    if (e != DIRCONN_OK)
        return dirconn_exit_code(e);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct secret_store *store = NULL;
    char *value = NULL;
    size_t cap = SECRET_STORE_VALUE_MAX + 1;
    e = open_store(ctl, unset ? SECRET_STORE_UPDATE : SECRET_STORE_CREATE, &store, &err);
    if (e == DIRCONN_OK && !unset) {
        char prompt[128];
        snprintf(prompt, sizeof(prompt), "Value of %s: ", name);
        e = platform_read_secret(prompt, "Again: ", cap, &value, &err);
        if (e == DIRCONN_OK)
            e = secret_store_put(store, name, value, &err);
    }
    bool was_set = false;
    if (e == DIRCONN_OK && unset)
        was_set = secret_store_remove(store, name);
    if (e == DIRCONN_OK && (!unset || was_set))
        e = secret_store_save(store, &err);
    platform_secure_free(value, cap);
    int rc = 0;
    if (e != DIRCONN_OK) {
        rc = ctl_fail(ctl, &err);
    } else {
        char path[PATH_MAX];
        secret_store_path(ctl->cfg, path, sizeof(path));
        if (unset)
            printf(was_set ? "Removed %s from %s.\n" : "%s was not set in %s.\n", name, path);
        else
            printf("Stored %s in %s.\n", name, path);
    }
    secret_store_close(store);
    return rc;
}

static int secret_list(struct ctl *ctl)
{
    enum dirconn_err e = ctl_load_config(ctl);
    if (e != DIRCONN_OK)
        return dirconn_exit_code(e);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct secret_store *store = NULL;
    e = open_store(ctl, SECRET_STORE_READ, &store, &err);
    if (e != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    if (ctl->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < secret_store_count(store); i++)
            json_array_append_new(arr, json_string(secret_store_name_at(store, i)));
        json_t *o = json_pack("{s:o}", "names", arr);
        char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            puts(text);
        free(text);
        json_decref(o);
    } else {
        for (size_t i = 0; i < secret_store_count(store); i++)
            printf("%s\n", secret_store_name_at(store, i));
    }
    secret_store_close(store);
    return 0;
}

int cmd_secret(struct ctl *ctl, int argc, char **argv)
{
    /* dirconnctl secret ACTION [NAME] [options]: argv[0] is "secret". */
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(secret_help, stdout);
        return 0;
    }
    if (argc < 2)
        return ctl_usage_error(ctl, "give an action: set NAME, unset NAME or list");
    const char *action = argv[1];
    if (strcmp(action, "list") == 0) {
        int rc = ctl_parse_options(ctl, argc - 1, argv + 1, NULL, NULL, NULL, secret_help);
        return rc >= 0 ? rc : secret_list(ctl);
    }
    if (strcmp(action, "set") != 0 && strcmp(action, "unset") != 0)
        return ctl_usage_error(ctl, "unknown action '%s': use set, unset or list", action);
    if (argc < 3 || argv[2][0] == '-') {
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            fputs(secret_help, stdout);
            return 0;
        }
        return ctl_usage_error(ctl, "'secret %s' needs a NAME", action);
    }
    const char *name = argv[2];
    /* argv + 2: NAME stands where getopt expects the program name. */
    int rc = ctl_parse_options(ctl, argc - 2, argv + 2, NULL, NULL, NULL, secret_help);
    if (rc >= 0)
        return rc;
    return secret_set(ctl, name, strcmp(action, "unset") == 0);
}

/* ---- ha-mode ---------------------------------------------------------------- */

static const char ha_mode_help[] =
    "usage: dirconnctl ha-mode show [--config FILE] [--admin-token-file FILE] [--json]\n"
    "       dirconnctl ha-mode set cloud|etcd|none [--config FILE] --admin-token-file FILE\n"
    "                              [--force]\n"
    "\n"
    "The organisation's HA mode: which lease backend its connectors use (docs/cloud-api.md\n"
    "\"HA mode\"). The cloud records it when a connector registers, first takes the cloud lease\n"
    "or first writes, and refuses a connector configured with another [ha] lease (exit 51).\n"
    "show prints the recorded mode, the one in force, and this connector's [ha] lease.\n"
    "set records another mode (with the admin token): connectors of the old mode are refused\n"
    "from then on. Leaving the cloud lease while a connector holds it is refused (exit 50)\n"
    "unless --force, which releases the lease so that its holder's writes are fenced.\n"
    "Stop the old group first, set the mode, then start the new group.\n"
    "  --admin-token-file FILE  the organisation's admin token (show: else the connector's\n"
    "                           own credentials)\n"
    "  --force                  set it even while a connector holds the cloud lease\n"
    "  --json                   show: print the cloud's answer with \"configured\" added\n";

static int run_ha_mode(struct ctl *ctl, const struct admin_args *a, const char *set_to)
{
    if (load_cloud_config(ctl) != DIRCONN_OK)
        return dirconn_exit_code(DIRCONN_ECONFIG);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct admin_cloud cloud;
    if (cloud_open(ctl, &cloud, &err) != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    /* show: never refused for this connector's own mode; set: the admin token ignores it. */
    cloud.opts.ha_mode = NULL;
    char *token = NULL;
    json_t *body = NULL;
    struct control_response r;
    memset(&r, 0, sizeof(r));
    const char *configured = config_ha_lease_name(ctl->cfg->ha_lease);
    enum dirconn_err e = api_token(ctl, &cloud, a->admin_token_file, &token, &err);
    if (e == DIRCONN_OK && set_to != NULL) {
        body = json_pack("{s:s, s:b}", "haMode", set_to, "force", a->force);
        e = body != NULL
                ? control_request(&cloud.opts, token, "PUT", "ha-mode", body, NULL, &r, &err)
                : dirconn_error_set(&err, DIRCONN_ENOMEM, "out of memory");
        const char *code = json_string_value(json_object_get(r.body, "error"));
        const char *detail = json_string_value(json_object_get(r.body, "detail"));
        if (e != DIRCONN_OK && r.status == 409 && code != NULL && strcmp(code, "leaseHeld") == 0)
            e = dirconn_error_set(&err, DIRCONN_ELEASE, "%s; nothing was changed",
                                  detail != NULL ? detail : "the cloud lease is held");
    } else if (e == DIRCONN_OK) {
        e = control_request(&cloud.opts, token, "GET", "ha-mode", NULL, NULL, &r, &err);
    }
    int rc = 0;
    if (e != DIRCONN_OK) {
        rc = ctl_fail(ctl, &err);
    } else if (ctl->json && set_to == NULL) {
        json_object_set_new(r.body, "configured", json_string(configured));
        char *text = json_dumps(r.body, JSON_INDENT(2));
        if (text != NULL)
            puts(text);
        free(text);
    } else {
        const char *mode = json_string_value(json_object_get(r.body, "haMode"));
        const char *force = json_string_value(json_object_get(r.body, "inForce"));
        if (set_to != NULL)
            printf("Organisation %s: HA mode set to %s.\n", ctl->cfg->cloud_org, set_to);
        else if (mode != NULL)
            printf("Organisation %s: HA mode %s (recorded %s, by %s).\n", ctl->cfg->cloud_org, mode,
                   json_string_value(json_object_get(r.body, "recordedAt")),
                   json_string_value(json_object_get(r.body, "recordedBy")));
        else if (force != NULL)
            printf("Organisation %s: no HA mode recorded; a connector holds the %s lease.\n",
                   ctl->cfg->cloud_org, force);
        else
            printf("Organisation %s: no HA mode recorded yet: the first connector that "
                   "registers, takes the cloud lease or writes records its own.\n",
                   ctl->cfg->cloud_org);
        const char *now = set_to != NULL ? set_to : force;
        if (now != NULL && configured != NULL && strcmp(now, configured) != 0)
            printf("This connector is configured with [ha] lease = %s: the cloud refuses it.\n",
                   configured);
    }
    json_decref(body);
    control_response_clear(&r);
    secret_free(token);
    cloud_close(&cloud);
    return rc;
}

int cmd_ha_mode(struct ctl *ctl, int argc, char **argv)
{
    /* dirconnctl ha-mode ACTION [MODE] [options]: argv[0] is "ha-mode". */
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(ha_mode_help, stdout);
        return 0;
    }
    if (argc < 2)
        return ctl_usage_error(ctl, "give an action: show, or set cloud|etcd|none");
    static const struct option extra[] = {
        {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN},
        {"force", no_argument, NULL, OPT_FORCE},
        {NULL, 0, NULL, 0}};
    struct admin_args a = {0};
    const char *action = argv[1];
    if (strcmp(action, "show") == 0) {
        int rc = ctl_parse_options(ctl, argc - 1, argv + 1, extra, admin_opt, &a, ha_mode_help);
        if (rc >= 0)
            return rc;
        if (a.force)
            return ctl_usage_error(ctl, "--force is for 'ha-mode set'");
        return run_ha_mode(ctl, &a, NULL);
    }
    if (strcmp(action, "set") != 0)
        return ctl_usage_error(ctl, "unknown action '%s': use show or set", action);
    if (argc < 3 || argv[2][0] == '-') {
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            fputs(ha_mode_help, stdout);
            return 0;
        }
        return ctl_usage_error(ctl, "'ha-mode set' needs a mode: cloud, etcd or none");
    }
    const char *mode = argv[2];
    if (strcmp(mode, "cloud") != 0 && strcmp(mode, "etcd") != 0 && strcmp(mode, "none") != 0)
        return ctl_usage_error(ctl, "unknown HA mode '%s': use cloud, etcd or none", mode);
    /* argv + 2: MODE stands where getopt expects the program name. */
    int rc = ctl_parse_options(ctl, argc - 2, argv + 2, extra, admin_opt, &a, ha_mode_help);
    if (rc >= 0)
        return rc;
    if (a.admin_token_file == NULL)
        return ctl_usage_error(ctl, "'ha-mode set' needs --admin-token-file FILE");
    return run_ha_mode(ctl, &a, mode);
}
