/*
 * cloud_auth.h - bearer tokens for the cloud: OAuth 2.0 client credentials
 * (RFC 6749 4.4) or a static SCIM bearer token read from a file.
 *
 * With [cloud] auth = oauth2 the connector id ([cloud] client_id) and its
 * secret ([cloud] client_secret_file) -- or, when neither key is set, the
 * cloud-connector-id and cloud-connector-secret of the secret store that
 * `dirconnctl register` saved -- are sent with HTTP Basic
 * authentication, each form-urlencoded first (RFC 6749 2.3.1), to
 * <[cloud] url>/oauth/token with grant_type=client_credentials. The token is
 * cached until 90% of its expires_in has passed (RFC 6749 5.1). With auth =
 * bearer the token is the content of [cloud] token_file (or the secret
 * store's cloud-token when token_file is not set). Secrets are wiped
 * from memory after use (OPENSSL_cleanse) and never logged.
 */
#ifndef DIRCONN_CLOUD_AUTH_H
#define DIRCONN_CLOUD_AUTH_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/net/http.h"

#include <stdbool.h>
#include <stdint.h>

struct cloud_auth;

/*
 * cloud_auth_new - a token source for cfg's [cloud] section. cfg is borrowed
 * and must outlive the source; configure/arg (may be NULL) are applied to the
 * token request's libcurl handle (proxy settings). Errors: DIRCONN_ECONFIG
 * (a required key is missing: the message names it), DIRCONN_ENOMEM.
 */
enum dirconn_err cloud_auth_new(const struct config *cfg, http_configure_fn configure, void *arg,
                                struct cloud_auth **out, struct dirconn_error *err);

/*
 * cloud_auth_set_outcome - the outcome hook of the transport seam (connector/net/http.h),
 * called with the configure arg after each token transfer: it may ask for
 * the next proxy at once (HTTP_OUTCOME_RETRY) or end the request with its
 * error (HTTP_OUTCOME_FAIL, e.g. DIRCONN_EPROXY on HTTP 407).
 */
void cloud_auth_set_outcome(struct cloud_auth *a, http_outcome_fn outcome);

/* cloud_auth_free - wipe the cached token and free. a may be NULL. */
void cloud_auth_free(struct cloud_auth *a);

/*
 * cloud_auth_identity - the connector id ([cloud] client_id, or the
 * cloud-connector-id that `dirconnctl register` saved) the current OAuth 2.0
 * token was issued to; NULL before a token was obtained, with auth = bearer,
 * or when a is NULL. Owned by a, valid until the next token or cloud_auth_free.
 */
const char *cloud_auth_identity(const struct cloud_auth *a);

/*
 * cloud_auth_token - a scim_token_fn: store a malloc'd bearer token in
 * *token. refresh = true discards the cached token first. Errors:
 * DIRCONN_ECLOUD_AUTH (the cloud refused the credentials: the message holds
 * the OAuth error, never the secret), DIRCONN_ECLOUD_CONNECT (the token
 * endpoint is unreachable), DIRCONN_ECONFIG (a secret file cannot be read),
 * DIRCONN_ECLOUD (a malformed token response), and those of
 * secret_store_get() (DIRCONN_ESECRET: not registered, store unreadable).
 */
enum dirconn_err cloud_auth_token(void *a, bool refresh, char **token, struct dirconn_error *err);

/*
 * cloud_auth_parse_token - read the token endpoint's answer to a client
 * credentials grant (RFC 6749 4.4.3, 5.1; errors 5.2): HTTP status and body
 * (len bytes, JSON, need not be NUL-terminated). url and id (the connector
 * id) are only named in messages. On DIRCONN_OK *token receives the access
 * token (wipe and free with secret_free, core/secret_store.h) and *lifetime_ms how long
 * to use it: 90 % of expires_in (of an hour without one, of a day when it is
 * longer: a token is renewed at least daily). Errors (*token
 * NULL): DIRCONN_ECLOUD_AUTH for 400/401/403 (with the OAuth error and
 * error_description), DIRCONN_ECLOUD for other statuses and an answer without
 * a Bearer access_token, DIRCONN_ENOMEM.
 */
enum dirconn_err cloud_auth_parse_token(long status, const char *body, size_t len, const char *url,
                                        const char *id, char **token, int64_t *lifetime_ms,
                                        struct dirconn_error *err);

#endif
