/*
 * notify.h - change notifications: a long-lived search that the directory
 * answers whenever something in the synchronised naming context changes.
 *
 *   AD DS / AD LDS: the LDAP change notification control (MS-ADTS
 *   3.1.1.3.4.1.9, OID 1.2.840.113556.1.4.528) on a subtree search of the
 *   naming context head; one entry per changed object. The search also
 *   carries the Show Deleted control (3.1.1.3.4.1.14, OID
 *   1.2.840.113556.1.4.417) when the DC offers it, so that a deletion (the
 *   object becomes a tombstone) is notified like any other change.
 *   Other servers: RFC 4533 refreshAndPersist (section 3.4) from the saved
 *   cookie; every entry or syncInfo message counts as a change, deletions
 *   included (an entry whose Sync State control says delete, 3.4.2).
 *
 * The module reports *that* something changed, not what: the incremental
 * sync reads the changes with its watermark. It is driven from an event
 * loop: notify_fd() is watched for reading and notify_drain() reads, with a
 * zero timeout, every message that is ready (as SSSD's sdap_async does), so
 * it never blocks. One struct notify owns its own LDAP connection; use it
 * from one thread.
 */
#ifndef DIRCONN_NOTIFY_H
#define DIRCONN_NOTIFY_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"

#include <stddef.h>

struct notify;

/*
 * notify_open - connect (as ldap_source_open: the preferred DCs in order,
 * TLS), pick the mechanism from the rootDSE and send the search. cookie
 * (len bytes, may be NULL) is the RFC 4533 cookie to start from. cfg and log
 * are borrowed and must outlive the handle. Errors: those of
 * ldap_source_open, DIRCONN_ELDAP_UNSUPPORTED (the server offers neither
 * mechanism), DIRCONN_EWATERMARK (RFC 4533 without a cookie: open again once
 * a sync saved one), DIRCONN_ELDAP (the search was refused).
 */
enum dirconn_err notify_open(const struct config *cfg, const struct log_sink *log,
                             const void *cookie, size_t len, struct notify **out,
                             struct dirconn_error *err);

/* notify_fd - the connection's socket, to watch for reading. */
int notify_fd(const struct notify *n);

/* notify_url - the URL of the DC the connection is bound to. Owned by n. */
const char *notify_url(const struct notify *n);

/* notify_method - "change notification" or "RFC 4533 refreshAndPersist". */
const char *notify_method(const struct notify *n);

/*
 * notify_drain - read every message that is ready without waiting; adds the
 * number of change messages to *changes. Errors: DIRCONN_ELDAP_CONNECT (the
 * connection was lost), DIRCONN_ELDAP (the server ended the search, e.g. an
 * administrative limit); after an error, close and reopen with a backoff.
 */
enum dirconn_err notify_drain(struct notify *n, unsigned long *changes, struct dirconn_error *err);

/* notify_close - abandon the search, unbind and free. n may be NULL. */
void notify_close(struct notify *n);

#endif
