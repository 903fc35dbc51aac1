/*
 * dir_status.h - the directory side of dirconnd: which DC is in use, the last
 * bind or search error, the state of the change notification connection, and
 * the guard that keeps a refused bind from being tried again blindly.
 *
 * Why a guard: an account lockout policy (the domain's lockoutThreshold; on
 * Samba, samba-tool domain passwordsettings) counts every simple
 * bind with a wrong password in the account's badPwdCount, and locks the
 * account at the threshold. A daemon that binds again on each timer, each
 * notification reconnection and each sync locks out its own service account
 * within minutes. So, once a DC refused the bind (DIRCONN_ELDAP_AUTH, see
 * ldap_source_open), no connection binds again until something that could
 * fix it happened: the configuration or the bind password changed (the
 * caller polls dir_status_check), a reload (SIGHUP), or an administrator's
 * explicit request (dirconnctl sync-now). Each of those lifts the refusal for
 * one attempt (dir_status_rearm).
 *
 * Credentials are also "unconfirmed" before the first successful bind and
 * after a reload: then only one attempt may be in flight at a time (the
 * probe), so that the sync thread and the notification connection never
 * present the same wrong password twice. The attempts that were held back
 * meanwhile are the caller's to start again once the probe succeeded.
 *
 * Each attempt is bracketed by dir_status_begin and dir_status_end. An epoch
 * distinguishes outcomes of attempts that began before the last refusal,
 * rearm or reload ("stale"): they update the DC and error shown, never the state.
 *
 * Not thread-safe: dirconnd uses it from its event loop only (the sync
 * thread's outcome is reported by the loop once the thread has ended).
 */
#ifndef DIRCONN_DIR_STATUS_H
#define DIRCONN_DIR_STATUS_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/*
 * The directory side's state (see dir_status_set_state in dir_status.c for
 * the transition table).
 */
enum dir_state {
    DIR_STATE_UNKNOWN = 0, /* nothing tried yet */
    DIR_STATE_OK,          /* the last attempt bound (and searched, for a sync) */
    DIR_STATE_FAILING,     /* the last attempt failed: unreachable, TLS, timeout, search error */
    DIR_STATE_REFUSED,     /* a DC refused the bind: no bind until a change, SIGHUP or sync-now */
    DIR_STATE_RETRYING,    /* the refusal was lifted for one attempt, not yet answered */
};

/* The change notification connection, as the daemon last reported it. */
enum dir_notify {
    DIR_NOTIFY_OFF = 0,      /* [schedule] notifications = no */
    DIR_NOTIFY_CONNECTED,    /* the search is running */
    DIR_NOTIFY_RECONNECTING, /* lost or refused; a reconnection is scheduled */
    DIR_NOTIFY_UNSUPPORTED,  /* the DC offers neither mechanism */
    DIR_NOTIFY_HELD,         /* not connected because the bind waits (refused, or a probe runs) */
    DIR_NOTIFY_STANDBY,      /* HA standby: only the active instance watches */
};

/* What dir_status_check found. */
enum dir_change { DIR_CHANGE_NONE = 0, DIR_CHANGE_CONFIG, DIR_CHANGE_PASSWORD };

/* One bind attempt; filled by dir_status_begin, read by dir_status_end. */
struct dir_attempt {
    uint64_t epoch;
    bool probe;             /* the one attempt allowed while the credentials are unconfirmed */
    unsigned char hash[32]; /* keyed hash of the password source when the attempt began */
    bool has_password;      /* the password source existed */
};

struct dir_status;

/*
 * dir_status_new - an empty status (state unknown, notifications off). log is
 * borrowed and must outlive it. Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err dir_status_new(const struct log_sink *log, struct dir_status **out,
                                struct dirconn_error *err);

/* dir_status_free - free; ds may be NULL. */
void dir_status_free(struct dir_status *ds);

/*
 * dir_status_configure - the configuration now in use (after the first load
 * and each reload): the preferred DC ([ldap] urls, first), the configuration
 * file and the password source to watch ([ldap] bind_password_file, else the
 * secret store file when bind_dn is set). Takes a snapshot of the
 * configuration file (stat and content). Attempts in flight become stale and
 * the credentials unconfirmed. A refusal stays (dir_status_rearm lifts it).
 * cfg is read during the call only.
 */
void dir_status_configure(struct dir_status *ds, const struct config *cfg);

/*
 * dir_status_begin - may a connection bind now? Returns false while the bind
 * is refused, and while the credentials are unconfirmed and another attempt
 * (the probe) is in flight; the caller then holds its attempt back. On true,
 * *a describes the attempt (it reads the password source to remember which
 * password it presents); pass it to dir_status_end.
 */
bool dir_status_begin(struct dir_status *ds, struct dir_attempt *a);

/*
 * dir_status_end - the outcome of an attempt. code is the attempt's result
 * (DIRCONN_OK or an error), msg its one-line message (may be NULL for OK);
 * bound says whether the attempt bound, url (may be NULL) the DC it bound to.
 * DIRCONN_ELDAP_AUTH enters the refused state and logs msg once, at error,
 * with what lifts it; the other directory errors (ELDAP_*, EWATERMARK) enter
 * the failing state and are kept as the last error; a bind without such an
 * error confirms the credentials (state ok). Other codes (cloud, state) say
 * nothing about the directory. A stale attempt changes no state.
 */
void dir_status_end(struct dir_status *ds, const struct dir_attempt *a, enum dirconn_err code,
                    const char *msg, bool bound, const char *url);

/*
 * dir_status_rearm - lift a refusal for one attempt, because of why ("SIGHUP",
 * "dirconnctl sync-now", "the bind password changed"), logged at info.
 * Returns true when the bind was refused (the caller should now make that
 * attempt), false when there was nothing to lift.
 */
bool dir_status_rearm(struct dir_status *ds, const char *why);

/* dir_status_refused - whether binds are held back by a refusal. */
bool dir_status_refused(const struct dir_status *ds);

/* dir_status_state - the current state. */
enum dir_state dir_status_state(const struct dir_status *ds);

/*
 * dir_status_check - while the bind is refused, has the configuration file
 * or the password source changed since the refusal? A cheap stat(2) first;
 * the content (a keyed SHA-256) only when the stat differs, so touching a
 * file changes nothing. Reports each change once: DIR_CHANGE_CONFIG (reload
 * it, which rearms), else DIR_CHANGE_PASSWORD (rearm), else DIR_CHANGE_NONE
 * (also when the bind is not refused).
 */
enum dir_change dir_status_check(struct dir_status *ds);

/*
 * dir_status_notify - the notification connection's state. method (static
 * string, may be NULL) names the mechanism while connected; error (may be
 * NULL) is why it is not; next_retry is the time of the next reconnection
 * (0 = none). Strings are copied.
 */
void dir_status_notify(struct dir_status *ds, enum dir_notify st, const char *method,
                       const char *error, time_t next_retry);

/* dir_status_notify_state - the notification connection's state. */
enum dir_notify dir_status_notify_state(const struct dir_status *ds);

/*
 * dir_status_word - the directory side in one word: "error" (the bind is
 * refused or being retried, or the last attempt failed), "degraded" (it works,
 * but the notification connection is down, or a DC other than the preferred
 * one is in use), else "ok". A static string.
 */
const char *dir_status_word(const struct dir_status *ds);

/*
 * dir_status_reason - why dir_status_word is not "ok", as one phrase
 * ("directory: bind refused", "directory: change notifications reconnecting",
 * "directory: ldaps://dc2:636 is in use, not the preferred ldaps://dc1:636"),
 * written to buf (len bytes) and returned.
 */
const char *dir_status_reason(const struct dir_status *ds, char *buf, size_t len);

/* dir_state_name - "unknown", "ok", "failing", "bind refused", "retrying the bind". */
const char *dir_state_name(enum dir_state s);

/* dir_notify_name - "off", "connected", "reconnecting", "unsupported", "held", "standby". */
const char *dir_notify_name(enum dir_notify n);

/*
 * dir_status_json - the "directory" object of dirconnd's status
 * (docs/architecture.md "dirconnd"): state (the word), condition, server,
 * preferred, bound, error, error_code, error_at, refused_since, and
 * notifications {state, method, error, next_retry}. A new reference.
 */
json_t *dir_status_json(const struct dir_status *ds);

#endif
