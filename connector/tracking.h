/*
 * tracking.h - change tracking: what changed in a naming context since a
 * watermark, with one of three methods.
 *
 *   dirsync   the DirSync control (MS-ADTS 3.1.1.3.4.1.3, OID
 *             1.2.840.113556.1.4.841) on AD DS and AD LDS. The cookie is the
 *             watermark; the search is repeated while the server says more
 *             data is waiting. Without the "Replicating Directory Changes"
 *             right the server refuses it (insufficientAccessRights); the
 *             search is then repeated with the object-security flag
 *             (LDAP_DIRSYNC_OBJECT_SECURITY). Incremental values
 *             (LDAP_DIRSYNC_INCREMENTAL_VALUES) are asked for so that a
 *             change of a large group costs its changed values only.
 *             Tombstones (isDeleted) are reported as deletions by objectGUID.
 *   usn       uSNChanged polling against one DC (MS-ADTS 3.1.1.1.9): objects
 *             with uSNChanged strictly greater than the saved
 *             highestCommittedUSN, tombstones through the Show Deleted
 *             control (1.2.840.113556.1.4.417). The watermark is bound to the
 *             DC (dsServiceName) and its invocationId (MS-ADTS 3.1.1.1.9,
 *             MS-DRSR 5.1): if either changed, it no longer applies.
 *   syncrepl  RFC 4533 content synchronisation in refreshOnly mode with the
 *             cookie, through libldap's ldap_sync API. A refresh in the
 *             present phase (RFC 4533 3.3.1) reports every unchanged object
 *             as present; the caller then deletes what was neither present
 *             nor changed. The server sends a changed entry whichever of
 *             its attributes changed, and the caller reads it again by DN:
 *             the refresh asks for no attribute ("1.1", RFC 4511 4.5.1.8),
 *             so a changed group's member values are not sent twice.
 *
 * The module only reads: it reports changes and the watermark that covers
 * them. Saving the watermark is the caller's job, after the cloud
 * acknowledged every change it covers (see sync.c).
 */
#ifndef DIRCONN_TRACKING_H
#define DIRCONN_TRACKING_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/ldap_source.h"
#include "connector/core/log.h"
#include "connector/state.h"

#include <stdbool.h>

enum tracking_change_kind {
    TRACKING_CHANGED = 0, /* added, modified, renamed or moved: re-read it by DN */
    TRACKING_DELETED,     /* deleted (tombstone, RFC 4533 delete): known by id only */
    TRACKING_PRESENT,     /* RFC 4533 present phase: unchanged and still there */
};

/* One change. Valid during the callback only. */
struct tracking_change {
    enum tracking_change_kind kind;
    const char *id; /* objectGUID string or entryUUID (lower case); "" when the server sent none */
    const char *dn; /* the current DN (TRACKING_CHANGED), else NULL */
};

/* Called for each change; a non-zero return stops the read (DIRCONN_EFAIL). */
typedef int (*tracking_change_fn)(void *arg, const struct tracking_change *change);

struct tracking_result {
    unsigned long changes;    /* changes reported (present entries not counted) */
    bool present_phase;       /* syncrepl: objects neither present nor changed are gone */
    bool object_security;     /* dirsync: the object-security flag had to be used */
    unsigned long long bytes; /* the entries' DNs, attribute descriptions and values read (as
                                 ldap_entry_bytes counts them; logged at debug level) */
};

/*
 * tracking_method - the method to use on this server: [ldap] change_tracking
 * when forced (it must be offered by the rootDSE), else dirsync, usn,
 * syncrepl, the first the rootDSE offers. Errors: DIRCONN_ELDAP_UNSUPPORTED
 * (the forced method, or every method, is not offered; the message says which).
 */
enum dirconn_err tracking_method(const struct config *cfg, const struct ldap_source *src,
                                 enum change_tracking *out, struct dirconn_error *err);

/*
 * tracking_read - report the changes of partition (a naming context DN)
 * since from (NULL: the beginning; then fn may be NULL and only the current
 * watermark is taken, as cheaply as the method allows) and fill next with
 * the watermark that covers them (fields malloc'd; free with
 * state_watermark_clear; next->scope_hash is left NULL for the caller).
 * attrs (NULL-terminated) are the attributes whose changes matter (dirsync
 * reports an object only when one of the requested attributes changed).
 * src is borrowed and must be connected to the DC the watermark belongs to.
 * Errors: DIRCONN_EWATERMARK (from belongs to another method, DC or
 * invocationId, or the server refused the cookie: a full sync is needed),
 * DIRCONN_ELDAP_UNSUPPORTED (the server refused the method even with the
 * object-security flag), DIRCONN_EFAIL (fn stopped it), DIRCONN_ELDAP,
 * DIRCONN_ELDAP_TIMEOUT, DIRCONN_ELDAP_CONNECT, DIRCONN_ENOMEM.
 */
enum dirconn_err tracking_read(struct ldap_source *src, const struct log_sink *log,
                               enum change_tracking method, const char *partition,
                               const char *const *attrs, const struct state_watermark *from,
                               tracking_change_fn fn, void *arg, struct state_watermark *next,
                               struct tracking_result *res, struct dirconn_error *err);

/* tracking_uuid_to_string - a 16-byte RFC 4122 UUID as lower-case text (37 bytes with NUL). */
void tracking_uuid_to_string(const unsigned char uuid[16], char out[37]);

#endif
