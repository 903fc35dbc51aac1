/*
 * pwsync_listener.h - dirconnd's password change listener ([pwsync] listen,
 * docs/password-sync.md "Wire protocol").
 *
 * An HTTP/1.1 server (libevent evhttp) on the daemon's event loop, TLS only with a required
 * client certificate signed by [pwsync] client_ca (mutual TLS, OpenSSL). It takes
 * POST /v1/password-changes (a JSON body, connector/pwsync.h). A standby answers 409 with the
 * active instance's holderIdentity; the active instance hands the change to its own worker
 * thread, which applies it at once (before any other work, whether a sync runs or not) and
 * answers when the cloud acknowledged it, or why it was not applied. Changes are applied one
 * at a time in the order they arrived. Nothing of a password is logged or written to disk.
 */
#ifndef DIRCONN_PWSYNC_LISTENER_H
#define DIRCONN_PWSYNC_LISTENER_H

#include "connector/core/error.h"
#include "connector/core/log.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct proxy_shared;

/* The daemon's HA role as the listener needs it, read on the loop thread per request. */
struct pwsync_role {
    bool active;            /* this instance may write to the cloud */
    char self[128];         /* this instance's holderIdentity ("" without HA) */
    char holder[128];       /* the active instance's holderIdentity, "" when unknown */
    char fencing_token[32]; /* while active with HA, else "" */
    const _Atomic int64_t *write_deadline_ms; /* the HA write gate, or NULL */
};

/* role_fn - fill *r (zeroed by the caller); called on the loop thread. */
typedef void (*pwsync_role_fn)(void *arg, struct pwsync_role *r);

struct pwsync_listener;

/*
 * pwsync_listener_start - load config_path again (the listener keeps its own copy, its
 * [pwsync], [cloud], [proxy] and [connector] state_dir; a SIGHUP does not change them), set up
 * the TLS context (TLS 1.2 or later, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT with
 * client_ca), bind [pwsync] listen on base and start the worker thread. Logs
 * "password listener on HOST:PORT" (the bound port). log, shared and role_arg are borrowed
 * and must outlive the listener. *out is NULL and DIRCONN_OK returned when [pwsync] listen is
 * not set. Errors: DIRCONN_ECONFIG (the configuration, a certificate, key or CA file that cannot
 * be used: the message names the file and OpenSSL's reason), DIRCONN_EIO (cannot listen),
 * DIRCONN_ENOMEM.
 */
enum dirconn_err pwsync_listener_start(struct event_base *base, const char *config_path,
                                       const struct log_sink *log, struct proxy_shared *shared,
                                       pwsync_role_fn role, void *role_arg,
                                       struct pwsync_listener **out, struct dirconn_error *err);

/*
 * pwsync_listener_stop - stop listening, let the worker finish the change in flight, answer
 * the waiting ones 503, join the worker and free everything (wiping the passwords). Call on
 * the loop thread before the event base is freed. l may be NULL.
 */
void pwsync_listener_stop(struct pwsync_listener *l);

#endif
