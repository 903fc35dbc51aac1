/*
 * cmd_cloud_check.c - the cloud side of dirconnctl test-connection: the SCIM
 * service provider reached with the configured authentication ([cloud] auth)
 * through the configured proxy ([proxy]), as a sync reaches it.
 */
#include "admin/ctl.h"
#include "connector/cloud_auth.h"
#include "connector/scim.h"
#include "connector/core/secret_store.h"
#include "proxy/proxy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which setting to fix when the cloud refuses the credentials. */
static void auth_hint(const struct config *cfg, char *out, size_t n)
{
    if (cfg->cloud_auth == CLOUD_AUTH_BEARER && cfg->cloud_token_file != NULL)
        snprintf(out, n, "check the token in [cloud] token_file (%s)", cfg->cloud_token_file);
    else if (cfg->cloud_auth == CLOUD_AUTH_BEARER)
        snprintf(out, n,
                 "check the secret store entry %s ('dirconnctl secret set %s'), or set [cloud] "
                 "token_file",
                 SECRET_CLOUD_TOKEN, SECRET_CLOUD_TOKEN);
    else if (cfg->cloud_client_id != NULL)
        snprintf(out, n, "check [cloud] client_id (%s) and [cloud] client_secret_file (%s)",
                 cfg->cloud_client_id,
                 cfg->cloud_client_secret_file != NULL ? cfg->cloud_client_secret_file : "unset");
    else
        snprintf(out, n,
                 "check the registration in the secret store (entries %s and %s): 'dirconnctl "
                 "reset-secret --admin-token-file FILE', or 'dirconnctl register --force'",
                 SECRET_CONNECTOR_ID, SECRET_CONNECTOR_SECRET);
}

/* One GET; its status in *status (0 = no answer). On failure err gets the cause. */
static enum dirconn_err get(struct scim_client *scim, const char *path, long *status,
                            struct dirconn_error *err)
{
    struct scim_response r;
    enum dirconn_err e = scim_request_sync(scim, "GET", path, NULL, NULL, &r);
    *status = r.status;
    if (e != DIRCONN_OK)
        dirconn_error_set(err, e, "%s", r.error);
    scim_response_clear(&r);
    return e;
}

enum dirconn_err ctl_cloud_check(struct ctl *ctl, struct ctl_cloud_check *out,
                                 struct dirconn_error *err)
{
    const struct config *cfg = ctl->cfg;
    memset(out, 0, sizeof(*out));
    snprintf(out->proxy_mode, sizeof(out->proxy_mode), "%s", proxy_mode_name(cfg->proxy_mode));
    snprintf(out->auth, sizeof(out->auth), "%s",
             cfg->cloud_auth == CLOUD_AUTH_BEARER ? "bearer" : "oauth2");
    if (cfg->cloud_scim_url != NULL) {
        snprintf(out->base, sizeof(out->base), "%s", cfg->cloud_scim_url);
    } else if (cfg->cloud_url != NULL && cfg->cloud_org != NULL) {
        size_t ul = strlen(cfg->cloud_url);
        snprintf(out->base, sizeof(out->base), "%.*s/scim/v2/%s",
                 (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
                 cfg->cloud_org);
    } else {
        return DIRCONN_OK; /* no cloud to check: a directory-only configuration */
    }
    out->configured = true;
    struct proxy_ctx *proxy = NULL;
    struct cloud_auth *auth = NULL;
    struct scim_client *scim = NULL;
    enum dirconn_err e = proxy_new(cfg, &ctl->log, NULL, &proxy, err);
    if (e == DIRCONN_OK)
        e = cloud_auth_new(cfg, proxy_configure, proxy, &auth, err);
    if (e == DIRCONN_OK) {
        cloud_auth_set_outcome(auth, proxy_outcome);
        struct scim_client_options so = {
            .base_url = out->base,
            .ca_file = cfg->cloud_ca_file,
            .timeout_ms = 30000,
            .max_retries = -1, /* a check: the first answer is the answer */
            .token = cloud_auth_token,
            .token_arg = auth,
            .configure = proxy_configure,
            .outcome = proxy_outcome,
            .configure_arg = proxy,
            .log = &ctl->log,
        };
        e = scim_client_new(&so, &scim, err);
    }
    /* Discovery first (RFC 7644 4), with the token as every request carries it; a provider may
     * answer it without checking the token, so an authenticated read of one user follows. */
    if (e == DIRCONN_OK)
        e = get(scim, "/ServiceProviderConfig", &out->spc_status, err);
    if (e == DIRCONN_OK)
        e = get(scim, "/Users?startIndex=1&count=1&attributes=id", &out->read_status, err);
    const char *id = cloud_auth_identity(auth);
    if (id != NULL)
        snprintf(out->identity, sizeof(out->identity), "%s", id);
    out->identity_stored = cfg->cloud_auth == CLOUD_AUTH_OAUTH2 && cfg->cloud_client_id == NULL;
    char *route = proxy_route_used(proxy, out->base);
    snprintf(out->route, sizeof(out->route), "%s", route != NULL ? route : "");
    free(route);
    if (e == DIRCONN_ECLOUD_AUTH) {
        char hint[600], was[DIRCONN_ERROR_LEN];
        auth_hint(cfg, hint, sizeof(hint));
        snprintf(was, sizeof(was), "%s", err->msg);
        dirconn_error_set(err, e, "%s; %s", was, hint);
    }
    scim_client_free(scim);
    cloud_auth_free(auth);
    proxy_free(proxy);
    out->code = e;
    if (e != DIRCONN_OK)
        snprintf(out->error, sizeof(out->error), "%s", err->msg);
    return e;
}

json_t *ctl_cloud_check_json(const struct ctl_cloud_check *c)
{
    if (!c->configured)
        return json_pack("{s:b}", "configured", 0);
    return json_pack(
        "{s:s, s:s, s:s?, s:s, s:s?, s:b, s:o, s:o, s:b, s:s?}", "url", c->base, "proxyMode",
        c->proxy_mode, "route", c->route[0] ? c->route : NULL, "auth", c->auth, "identity",
        c->identity[0] ? c->identity : NULL, "identityStored", c->identity_stored,
        "serviceProviderConfig", c->spc_status > 0 ? json_integer(c->spc_status) : json_null(),
        "authenticatedRead", c->read_status > 0 ? json_integer(c->read_status) : json_null(), "ok",
        c->code == DIRCONN_OK, "error", c->code != DIRCONN_OK ? c->error : NULL);
}

void ctl_cloud_check_print(const struct ctl_cloud_check *c)
{
    if (!c->configured) {
        printf("Cloud:              not configured ([cloud] url and org, or scim_url)\n");
        return;
    }
    printf("Cloud:              %s\n", c->base);
    printf("Proxy:              mode %s, route %s\n", c->proxy_mode,
           c->route[0] ? c->route : "(none taken)");
    printf("Authentication:     %s", c->auth);
    if (c->identity[0])
        printf(", connector %s%s", c->identity,
               c->identity_stored ? " (registration in the secret store)" : " ([cloud] client_id)");
    printf("\n");
    if (c->spc_status > 0)
        printf("ServiceProviderConfig: HTTP %ld\n", c->spc_status);
    if (c->read_status > 0)
        printf("Authenticated read: HTTP %ld (GET /Users)\n", c->read_status);
    printf("Cloud result:       %s%s\n",
           c->code == DIRCONN_OK ? "ok" : "FAILED: ", c->code == DIRCONN_OK ? "" : c->error);
}
