/*
 * ldap_source.h - the LDAP source: connects to the first working domain
 * controller of an ordered list, reads the rootDSE, and streams entries with
 * paged searches.
 *
 * Connection (RFC 4511, RFC 4513): each URL of [ldap] urls is tried in order
 * (the seed's "Preferred Domain Controllers": top first, the next when one is
 * unreachable or fails TLS). ldaps:// is LDAP over TLS; ldap:// issues
 * StartTLS (RFC 4511 4.14) unless start_tls = no. Certificates are verified
 * against ca_file (or the system store) including the host name, unless
 * tls_insecure = yes, which is logged as a warning. The bind is a simple bind
 * (RFC 4513 5.1.3) with the password read from bind_password_file and wiped
 * from memory right after. A wrong password is not retried on the next DC.
 *
 * Searching (RFC 2696 paged results; MS-ADTS 3.1.1.3.1.3.3 ranged retrieval):
 * ldap_source_search() returns a cursor that yields one entry at a time; only
 * the entry in hand is in memory (libldap reads one message per call). Every
 * search requests objectGUID and entryUUID so each entry carries its stable
 * identifier. Attributes returned with a range option (member;range=0-1499)
 * are completed with follow-up base searches before the entry is returned.
 *
 * One source uses one LDAP connection and is not thread-safe; use one per thread.
 */
#ifndef DIRCONN_LDAP_SOURCE_H
#define DIRCONN_LDAP_SOURCE_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/ldap_entry.h"
#include "connector/core/log.h"

#include <stdbool.h>
#include <stdint.h>

/* Controls and capabilities dirconn looks for in the rootDSE. */
#define LDAP_OID_PAGED_RESULTS             "1.2.840.113556.1.4.319"   /* RFC 2696 */
#define LDAP_OID_DIRSYNC                   "1.2.840.113556.1.4.841"   /* MS-ADTS 3.1.1.3.4.1.3 */
#define LDAP_OID_NOTIFICATION              "1.2.840.113556.1.4.528"   /* MS-ADTS 3.1.1.3.4.1.9 */
#define LDAP_OID_SHOW_DELETED              "1.2.840.113556.1.4.417"   /* MS-ADTS 3.1.1.3.4.1.14 */
#define LDAP_OID_SYNC                      "1.3.6.1.4.1.4203.1.9.1.1" /* RFC 4533 */
#define LDAP_OID_CAP_ACTIVE_DIRECTORY      "1.2.840.113556.1.4.800"   /* AD DS */
#define LDAP_OID_CAP_ACTIVE_DIRECTORY_ADAM "1.2.840.113556.1.4.1851"  /* AD LDS */

/* What kind of directory server answered. */
enum ldap_server_kind { LDAP_SERVER_GENERIC = 0, LDAP_SERVER_AD_DS, LDAP_SERVER_AD_LDS };

/* The kind of a naming context listed in the rootDSE. */
enum ldap_nc_kind { LDAP_NC_DOMAIN, LDAP_NC_CONFIGURATION, LDAP_NC_SCHEMA, LDAP_NC_APPLICATION };

/* Change tracking methods a server offers (bits of 1 << enum change_tracking). */
#define LDAP_TRACKING_BIT(t) (1u << (t))

/* The rootDSE (RFC 4512 5.1; MS-ADTS 3.1.1.3.2) as far as dirconn uses it. */
struct ldap_rootdse {
    struct strlist naming_contexts;
    struct strlist supported_controls;
    struct strlist supported_capabilities;
    char *default_nc;       /* defaultNamingContext (AD DS only) */
    char *configuration_nc; /* configurationNamingContext */
    char *schema_nc;        /* schemaNamingContext */
    char *root_domain_nc;   /* rootDomainNamingContext */
    char *ds_service_name;  /* dsServiceName: the DC's nTDSDSA object */
    char *dns_host_name;
    char *vendor_name;
    char *vendor_version;
    uint64_t highest_committed_usn; /* 0 when the server has none */
    bool has_usn;
    enum ldap_server_kind kind;
};

struct ldap_source;
struct ldap_cursor;

/* One search: base, scope (LDAP_SCOPE_*), filter and attributes (NULL-terminated; NULL = all). */
struct ldap_search_spec {
    const char *base;
    int scope;
    const char *filter;
    const char *const *attrs;
    bool show_deleted; /* add the Show Deleted control (MS-ADTS 3.1.1.3.4.1.14): tombstones too */
};

/*
 * ldap_source_open - connect and bind to the first working DC of cfg->urls,
 * then read its rootDSE.
 *
 * cfg and log are borrowed and must outlive the source (log may be NULL).
 * On success *out owns a connected source (free with ldap_source_close).
 * Errors (err holds one line naming each DC tried and its cause):
 * DIRCONN_ELDAP_CONNECT (no DC reachable), DIRCONN_ELDAP_TLS (TLS handshake
 * or certificate verification failed, StartTLS refused), DIRCONN_ELDAP_AUTH
 * (bind refused: wrong password, or the server wants TLS), DIRCONN_ECONFIG
 * (password file unreadable or empty), DIRCONN_ELDAP (anything else).
 *
 * DIRCONN_ELDAP_AUTH always means that a DC answered the bind with a refusal
 * that the same credentials will meet again: invalidCredentials (49; the
 * message gives AD's data code in words, see ldap_ad_bind_data), the server
 * demanding TLS, or another bind result. The next DC is not tried, and
 * callers must not bind again with the same configuration and password
 * (dirconnd waits for a change: an account lockout policy counts every
 * attempt). A DC too busy to take the bind (busy, unavailable) is
 * DIRCONN_ELDAP, a timeout DIRCONN_ELDAP_TIMEOUT: those try the next DC.
 */
enum dirconn_err ldap_source_open(const struct config *cfg, const struct log_sink *log,
                                  struct ldap_source **out, struct dirconn_error *err);

/*
 * ldap_ad_bind_data - why AD DS, AD LDS (or Samba) refused a simple bind: the
 * Win32 error after "data" in the diagnostic message of an invalidCredentials
 * (49) result, e.g. "80090308: LdapErr: DSID-0C09042F, comment:
 * AcceptSecurityContext error, data 775, v4563".
 *
 * diag may be NULL. Writes the code in lower-case hex ("775") into code (len
 * bytes; 9 are enough), or "" when diag has none. Returns the code in words,
 * a static string: 525 "user not found", 52e "invalid credentials", 530
 * "logon not permitted at this time", 531 "logon not permitted at this
 * workstation", 532 "password expired", 533 "account disabled", 701 "account
 * expired", 773 "must reset password", 775 "account locked out", another code
 * "a reason AD did not name"; NULL when diag has no data code.
 */
const char *ldap_ad_bind_data(const char *diag, char *code, size_t len);

/*
 * ldap_source_handle - the libldap handle of the connection, for the change
 * tracking module's own operations (DirSync, RFC 4533). Owned by the source;
 * never unbind it. Not thread-safe, like the source.
 */
struct ldap;
struct ldap *ldap_source_handle(struct ldap_source *src);

/*
 * ldap_source_parse_cookie - read a response control that carries a cookie:
 * the paged results control (RFC 2696 2, LDAP_CONTROL_PAGEDRESULTS; *flag
 * receives the size estimate) or the DirSync control (MS-ADTS
 * 3.1.1.3.4.1.3, LDAP_CONTROL_X_DIRSYNC; *flag receives the "more data"
 * flag), with libldap's parsers (ldap_parse_pageresponse_control,
 * ldap_parse_dirsync_control). ctrl comes from the server: a control without
 * a value is refused here, before libldap, which reads a null buffer for it.
 * ld is any handle (used for its error state only). On LDAP_SUCCESS *cookie
 * receives the cookie (free bv_val with ber_memfree; bv_len 0 = the last
 * page, or an empty DirSync cookie). Returns LDAP_SUCCESS,
 * LDAP_DECODING_ERROR (no value, an undecodable value), LDAP_PARAM_ERROR
 * (another control), or libldap's code.
 */
struct ldapcontrol;
struct berval;
int ldap_source_parse_cookie(struct ldap *ld, struct ldapcontrol *ctrl, int *flag,
                             struct berval *cookie);

/* ldap_source_close - unbind and free. src may be NULL. */
void ldap_source_close(struct ldap_source *src);

/* ldap_source_url - the URL of the DC in use. Owned by the source. */
const char *ldap_source_url(const struct ldap_source *src);

/*
 * ldap_source_tls - how the connection is protected: "ldaps", "starttls" or
 * "none", plus the TLS version and cipher when known ("TLSv1.3 TLS_AES_256_GCM_SHA384").
 * Writes a NUL-terminated string of at most len-1 bytes into buf and returns buf.
 */
const char *ldap_source_tls(const struct ldap_source *src, char *buf, size_t len);

/* ldap_source_rootdse - the rootDSE read at connect time. Owned by the source. */
const struct ldap_rootdse *ldap_source_rootdse(const struct ldap_source *src);

/*
 * ldap_source_base_dn - the naming context to synchronise: [ldap] base_dn or,
 * when unset, the server's defaultNamingContext. Returns NULL when neither
 * exists (AD LDS without base_dn). Owned by the source or the config.
 */
const char *ldap_source_base_dn(const struct ldap_source *src);

/*
 * ldap_source_check_base - verify that the base DN is set and exists on the
 * DC (a base-scope search). Errors: DIRCONN_ECONFIG (no base DN: the message
 * lists the server's naming contexts), DIRCONN_ELDAP_NOSUCHOBJECT, others as
 * for ldap_source_search.
 */
enum dirconn_err ldap_source_check_base(struct ldap_source *src, struct dirconn_error *err);

/*
 * ldap_source_supports - whether the rootDSE lists oid in supportedControl.
 */
bool ldap_source_supports(const struct ldap_source *src, const char *oid);

/*
 * ldap_rootdse_tracking_offered - the change tracking methods the server
 * offers, as LDAP_TRACKING_BIT(CHANGE_TRACKING_*) bits: DirSync when the
 * DirSync control is listed, usn when the rootDSE has highestCommittedUSN,
 * syncrepl when the RFC 4533 control is listed.
 */
unsigned ldap_rootdse_tracking_offered(const struct ldap_rootdse *dse);

/*
 * ldap_rootdse_tracking_auto - the method change_tracking = auto picks:
 * dirsync, then usn, then syncrepl; CHANGE_TRACKING_AUTO when none is offered.
 */
enum change_tracking ldap_rootdse_tracking_auto(const struct ldap_rootdse *dse);

/* ldap_rootdse_nc_kind - the kind of a naming context of this server. */
enum ldap_nc_kind ldap_rootdse_nc_kind(const struct ldap_rootdse *dse, const char *nc);

/* ldap_nc_kind_name - "domain", "configuration", "schema" or "application partition". */
const char *ldap_nc_kind_name(enum ldap_nc_kind kind);

/* ldap_server_kind_name - "AD DS", "AD LDS" or "LDAP". */
const char *ldap_server_kind_name(enum ldap_server_kind kind);

/* change_tracking_name - "auto", "dirsync", "usn" or "syncrepl". */
const char *change_tracking_name(enum change_tracking t);

/*
 * ldap_source_search - start a paged search (RFC 2696, [ldap] page_size per
 * page, the paged-results control marked critical).
 *
 * spec is copied. On success *out is a cursor (free with ldap_cursor_free).
 * Errors: DIRCONN_ELDAP_UNSUPPORTED (the DC does not offer paged results),
 * DIRCONN_ELDAP (the request could not be sent), DIRCONN_ENOMEM.
 */
enum dirconn_err ldap_source_search(struct ldap_source *src, const struct ldap_search_spec *spec,
                                    struct ldap_cursor **out, struct dirconn_error *err);

/*
 * ldap_cursor_next - the next entry of the search.
 *
 * On DIRCONN_OK, *entry is a new entry owned by the caller (free with
 * ldap_entry_free), or NULL when the search is complete. Search references
 * (referrals to other partitions) are skipped and counted. Errors:
 * DIRCONN_ELDAP_NOSUCHOBJECT (the base DN does not exist),
 * DIRCONN_ELDAP_TIMEOUT (no answer within [ldap] timeout),
 * DIRCONN_ELDAP_CONNECT (connection lost), DIRCONN_ELDAP_UNSUPPORTED,
 * DIRCONN_ELDAP. After an error the cursor is finished.
 */
enum dirconn_err ldap_cursor_next(struct ldap_cursor *cur, struct ldap_entry **entry,
                                  struct dirconn_error *err);

/* ldap_cursor_pages - pages received so far. */
unsigned long ldap_cursor_pages(const struct ldap_cursor *cur);

/*
 * ldap_cursor_bytes - the size of the entries returned so far: the sum of
 * ldap_entry_bytes over them (the content read from the directory, without
 * the BER and TLS framing). ldap_cursor_free logs it at debug level
 * ("directory read: N entries, B bytes ...") when the cursor returned any.
 */
unsigned long long ldap_cursor_bytes(const struct ldap_cursor *cur);

/*
 * ldap_entry_bytes - the bytes of an entry's DN, attribute descriptions and
 * values (all ranges of a ranged attribute). 0 for NULL.
 */
unsigned long long ldap_entry_bytes(const struct ldap_entry *entry);

/* ldap_cursor_free - abandon the search if unfinished (RFC 4511 4.11) and free. cur may be NULL. */
void ldap_cursor_free(struct ldap_cursor *cur);

#endif
