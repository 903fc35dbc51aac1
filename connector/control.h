/*
 * control.h - a small client of the cloud's connector control API
 * (docs/cloud-api.md): registration, deregistration, secret rotation, the
 * connector list and the HA lease, under <[cloud] url>/v1/orgs/<org>/.
 *
 * One libcurl easy transfer per call, JSON bodies through jansson, TLS
 * verification always on ([cloud] ca_file replaces the system store), the
 * proxy chosen through the transport seam of connector/net/http.h
 * (http_perform with the configure and outcome hooks: the next proxy is tried
 * when one fails). Calls are synchronous;
 * a client is used by one thread at a time. Bearer tokens and response bodies that carry secrets
 * are wiped (OPENSSL_cleanse) and never logged or put in error messages.
 */
#ifndef DIRCONN_CONTROL_H
#define DIRCONN_CONTROL_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/net/http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct control_options {
    const char *url;             /* control API base, e.g. https://cloud.example.com; borrowed */
    const char *org;             /* organisation; borrowed */
    const char *ca_file;         /* PEM CA file, NULL = system store; borrowed */
    int64_t timeout_ms;          /* per request, 0 = 30000 */
    http_configure_fn configure; /* proxy hook (proxy_configure), NULL = none */
    http_outcome_fn outcome;     /* proxy hook (proxy_outcome), NULL = none */
    void *configure_arg;         /* the struct proxy_ctx of both hooks */
    const char *fencing_token;   /* sent as Dirconn-Fencing-Token (docs/cloud-api.md "Fencing")
                                    when not NULL; borrowed */
    const char *ha_mode;         /* [ha] lease ("cloud", "etcd", "none"), sent as
                                    Dirconn-HA-Mode (docs/cloud-api.md "HA mode") and as haMode
                                    at registration when not NULL; static */
};

/* control_options_from_config - fill o from cfg's [cloud] section and [ha] lease (cfg must
 * outlive o). */
void control_options_from_config(const struct config *cfg, struct control_options *o);

/* The answer to one request. */
struct control_response {
    long status;  /* HTTP status, 0 when none arrived */
    json_t *body; /* parsed JSON body or NULL; owned */
    char *etag;   /* ETag header or NULL; owned */
};

/* control_response_clear - free what r owns and zero it. */
void control_response_clear(struct control_response *r);

/*
 * control_request - METHOD <url>/v1/orgs/<org>/<path> with "Authorization:
 * Bearer <bearer>", the JSON body (may be NULL) and If-Match (may be NULL).
 *
 * resp (zeroed by the caller) receives the status, body and ETag, also for
 * error statuses. Returns DIRCONN_OK for 2xx; DIRCONN_ECLOUD_AUTH for 401
 * and 403, DIRCONN_EHAMODE for 409 haModeMismatch (the message is the cloud's, naming
 * both modes), DIRCONN_ECLOUD for other statuses (the message holds the method,
 * the URL, the status and the API's error code and detail);
 * DIRCONN_ECLOUD_CONNECT when no answer arrived (libcurl's message and
 * CURLcode); the hooks' errors (DIRCONN_EPROXY: every proxy failed, or 407);
 * DIRCONN_ENOMEM. A 2xx answer that is
 * not JSON (other than an empty 204) is DIRCONN_ECLOUD.
 */
enum dirconn_err control_request(const struct control_options *o, const char *bearer,
                                 const char *method, const char *path, const json_t *body,
                                 const char *if_match, struct control_response *resp,
                                 struct dirconn_error *err);

/* A registration as the control API describes it; strings owned. */
struct control_connector {
    char *id;
    char *name;
    char *host;
    char *registered_at; /* RFC 3339, or NULL */
    char *last_seen;     /* RFC 3339, or NULL (never seen) */
    char *version;       /* the dirconn version it last reported, or NULL */
};

/* control_connector_clear - free the strings of c and zero it. */
void control_connector_clear(struct control_connector *c);

/*
 * control_register - POST connectors {name, host} with the admin token.
 * On success *out describes the new registration and *secret holds its
 * secret (malloc'd; wipe and free with secret_store_free_value).
 * Errors: those of control_request.
 */
enum dirconn_err control_register(const struct control_options *o, const char *admin_token,
                                  const char *name, const char *host, struct control_connector *out,
                                  char **secret, struct dirconn_error *err);

/*
 * control_deregister - DELETE connectors/<id>. *existed is false when the
 * cloud no longer knew the id (404, still DIRCONN_OK). Errors: those of
 * control_request.
 */
enum dirconn_err control_deregister(const struct control_options *o, const char *token,
                                    const char *id, bool *existed, struct dirconn_error *err);

/*
 * control_reset_secret - POST connectors/<id>/secret (docs/cloud-api.md
 * "Connectors"): the cloud issues a new secret. *secret as in
 * control_register. *pending (may be NULL) receives the answer's
 * secretPending: true when the cloud keeps the old secret working until the
 * new one is first used at the token endpoint (a connector rotating its own
 * secret), false when the old secret and its access tokens stopped working
 * at once (the admin token, or a cloud that does not say). Errors: those of
 * control_request (403: a connector token of another connector, or a cloud
 * that lets only the admin rotate).
 */
enum dirconn_err control_reset_secret(const struct control_options *o, const char *token,
                                      const char *id, char **secret, bool *pending,
                                      struct dirconn_error *err);

/*
 * control_list - GET connectors. *out receives an array of *n registrations
 * (free with control_list_free). Errors: those of control_request;
 * DIRCONN_ECLOUD for an answer without a connectors array.
 */
enum dirconn_err control_list(const struct control_options *o, const char *token,
                              struct control_connector **out, size_t *n, struct dirconn_error *err);

/* control_list_free - free a list from control_list. */
void control_list_free(struct control_connector *v, size_t n);

/*
 * control_lease_release - give up the organisation's HA lease if connector
 * `id` holds it: GET lease; when holderIdentity is id, PUT lease with
 * If-Match <resourceVersion> and {"holderIdentity": null}, so a standby can
 * take it at once instead of waiting for it to expire. A 412 (the lease
 * changed meanwhile) starts over, up to three times. *released tells whether
 * a PUT released it. Errors: those of control_request; DIRCONN_ELEASE when
 * the lease kept changing.
 */
enum dirconn_err control_lease_release(const struct control_options *o, const char *token,
                                       const char *id, bool *released, struct dirconn_error *err);

#endif
