/*
 * pwsync.h - password synchronisation, the connector's side (docs/password-sync.md).
 *
 * A password change arrives from dirconn-pwsync (the handler on a domain controller) as one
 * JSON object (pwsync_change_parse). The active connector applies it (pwsync_apply): the
 * seed's password rules first (Rackspace Directory Sync administrator's guide, "Rackspace Email
 * and Hosted Exchange password requirements": at least eight characters and three of the four
 * classes), then the user must be in scope and already in the cloud (the state holds its
 * objectGUID with a SCIM id), then the provider's /Schemas must declare the User attribute
 * "password" writable (RFC 7643 4.1.1; not readOnly, not absent); then one PATCH replaces it
 * (RFC 7644 3.5.2.3). Whatever is refused is logged with the user's DN and the reason, and
 * nothing is sent.
 *
 * The secret: a password lives only in memory, is never logged, reported or written to disk,
 * and every buffer that held it is wiped with OPENSSL_cleanse (pwsync_change_clear, the PATCH
 * body; the SCIM client wipes its copy of each request body).
 */
#ifndef DIRCONN_PWSYNC_H
#define DIRCONN_PWSYNC_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/ldap_entry.h"
#include "connector/core/log.h"
#include "connector/provider.h"
#include "connector/scim.h"
#include "connector/state.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest password taken, bytes of UTF-8 (AD's limit is 256 characters). */
#define PWSYNC_MAX_PASSWORD 1024

/* One password change as the handler sends it (docs/password-sync.md "Wire protocol"). */
struct pwsync_change {
    char guid[LDAP_GUID_STRLEN]; /* objectGUID, lower-case GUID string */
    char *dn;                    /* the DN the handler saw, or NULL */
    char *password;              /* UTF-8, NUL-terminated; wiped by pwsync_change_clear */
    size_t len;                  /* bytes of password */
};

/*
 * pwsync_change_parse - parse the body of a change request: a JSON object with "objectGUID"
 * (the GUID string, any case), "password" (a non-empty string without NUL, at most
 * PWSYNC_MAX_PASSWORD bytes) and optionally "dn" (a string); other members are refused.
 * body: len bytes. On DIRCONN_OK *out owns copies (pwsync_change_clear). Errors:
 * DIRCONN_EFAIL with one line naming the member (never the password), DIRCONN_ENOMEM.
 * Whatever the outcome, the parser's copies of the password are wiped; body is not changed.
 */
enum dirconn_err pwsync_change_parse(const char *body, size_t len, struct pwsync_change *out,
                                     struct dirconn_error *err);

/* pwsync_change_clear - wipe the password, free the copies and zero c. Safe on a zeroed c. */
void pwsync_change_clear(struct pwsync_change *c);

/*
 * pwsync_password_ok - the seed's rules: at least 8 characters (Unicode code points of the
 * UTF-8 text) and at least 3 of: a lower-case letter a-z, an upper-case letter A-Z, a digit
 * 0-9, any other character (non-alphanumeric: "!, $, #, %, space, and so on"; a non-ASCII
 * character counts here). pw: len bytes. Returns true when it passes; otherwise false and a
 * reason (which rule, never the password) in why (whylen bytes).
 */
bool pwsync_password_ok(const char *pw, size_t len, char *why, size_t whylen);

/* What became of one change. */
enum pwsync_outcome {
    PWSYNC_APPLIED = 0,  /* the cloud acknowledged the PATCH */
    PWSYNC_WEAK,         /* the password fails the rules: not sent */
    PWSYNC_NOT_IN_SCOPE, /* no user of the connector's scope has this objectGUID */
    PWSYNC_NOT_IN_CLOUD, /* in scope but not (yet) created in the cloud */
    PWSYNC_NOT_WRITABLE, /* the provider declares no writable password (or no PATCH) */
    PWSYNC_FAILED        /* the cloud or the state failed: worth a retry later */
};

/* pwsync_outcome_name - "applied", "weak", "notInScope", "notInCloud", "notWritable", "failed". */
const char *pwsync_outcome_name(enum pwsync_outcome o);

/* pwsync_outcome_final - whether a retry cannot change the outcome (all but PWSYNC_FAILED). */
bool pwsync_outcome_final(enum pwsync_outcome o);

/*
 * pwsync_apply - apply one change through port (a PATCH of <Users endpoint>/<id> replacing
 * "password"), after the checks above, reading the state st (the user's DN, kind and SCIM
 * id) and the provider prov (endpoint, patch support, the password attribute). One log line
 * per refusal or failure, at warn level, names the DN and the reason; an applied change is one
 * info line with the DN. detail (dlen bytes) receives the same reason, for the handler.
 */
enum pwsync_outcome pwsync_apply(const struct scim_port *port, struct state *st,
                                 const struct provider *prov, const struct log_sink *log,
                                 const struct pwsync_change *ch, char *detail, size_t dlen);

struct proxy_shared;
struct pwsync_session;

/*
 * pwsync_session_open - what pwsync_apply needs for cfg's cloud (borrowed; outlives the
 * session): the proxy route, the cloud authentication, a SCIM client (fencing_token, may be
 * NULL, rides on every write as Dirconn-Fencing-Token; write_deadline_ms, may be NULL, is the
 * HA write gate), the provider's discovery and the state database. On DIRCONN_OK *out is
 * owned by the caller (pwsync_session_close). Errors: those of proxy_new, cloud_auth_new,
 * scim_client_new, provider_discover and state_open, with their message.
 */
enum dirconn_err pwsync_session_open(const struct config *cfg, const struct log_sink *log,
                                     struct proxy_shared *shared, const char *fencing_token,
                                     const _Atomic int64_t *write_deadline_ms,
                                     struct pwsync_session **out, struct dirconn_error *err);

/* pwsync_session_apply - pwsync_apply with the session's port, state and provider. */
enum pwsync_outcome pwsync_session_apply(struct pwsync_session *s, const struct pwsync_change *ch,
                                         char *detail, size_t dlen);

/* pwsync_session_close - free the session (may be NULL). */
void pwsync_session_close(struct pwsync_session *s);

#endif
