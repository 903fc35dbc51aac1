/* notify.c - change notifications (AD notification control, RFC 4533 refreshAndPersist). */
#include "connector/notify.h"

#include "connector/ldap_source.h"

#include <lber.h>
#include <ldap.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct notify {
    struct ldap_source *src;
    const struct log_sink *log;
    int msgid;
    const char *method;
};

static enum dirconn_err send_search(struct notify *n, const void *cookie, size_t len,
                                    struct dirconn_error *err)
{
    LDAP *ld = ldap_source_handle(n->src);
    const char *base = ldap_source_base_dn(n->src);
    LDAPControl ctrl = {0};
    BerElement *ber = NULL;
    struct berval *value = NULL;
    LDAPControl deleted = {0};
    bool show_deleted = false;
    if (ldap_source_supports(n->src, LDAP_OID_NOTIFICATION)) {
        /* MS-ADTS 3.1.1.3.4.1.9: no value; filter (objectClass=*), the NC head as base. */
        ctrl.ldctl_oid = (char *)LDAP_CONTROL_X_SERVER_NOTIFICATION;
        ctrl.ldctl_iscritical = 1;
        n->method = "change notification";
        /*
         * A deletion turns the object into a tombstone (MS-ADTS 3.1.1.5.5), which
         * a search sees only with the Show Deleted control (3.1.1.3.4.1.14): without
         * it the DC never reports deletions, and they wait for the periodic sync.
         */
        if (ldap_source_supports(n->src, LDAP_OID_SHOW_DELETED)) {
            deleted.ldctl_oid = (char *)LDAP_OID_SHOW_DELETED;
            deleted.ldctl_iscritical = 1;
            show_deleted = true;
        }
    } else if (ldap_source_supports(n->src, LDAP_OID_SYNC)) {
        /*
         * Without a cookie the refresh stage would send every entry of the naming
         * context (RFC 4533 3.4), which a server's size limit ends (slapd: 500 by
         * default) and which says nothing the first sync does not read anyway.
         */
        if (cookie == NULL || len == 0)
            return dirconn_error_set(err, DIRCONN_EWATERMARK,
                                     "%s: RFC 4533 notifications start from the cookie of a "
                                     "sync, and none is saved yet",
                                     ldap_source_url(n->src));
        /* RFC 4533 2.2: syncRequestValue ::= SEQUENCE { mode ENUMERATED, cookie OPTIONAL, ... } */
        ber = ber_alloc_t(LBER_USE_DER);
        if (ber == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        struct berval c = {len, (char *)cookie};
        int rc = ber_printf(ber, "{eO}", (ber_int_t)LDAP_SYNC_REFRESH_AND_PERSIST, &c);
        if (rc < 0 || ber_flatten(ber, &value) < 0) {
            ber_free(ber, 1);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "cannot encode the RFC 4533 control");
        }
        ctrl.ldctl_oid = (char *)LDAP_CONTROL_SYNC;
        ctrl.ldctl_value = *value;
        ctrl.ldctl_iscritical = 1;
        n->method = "RFC 4533 refreshAndPersist";
    } else {
        return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                 "%s offers neither the change notification control nor RFC 4533",
                                 ldap_source_url(n->src));
    }
    LDAPControl *ctrls[3] = {&ctrl, show_deleted ? &deleted : NULL, NULL};
    char *attrs[] = {"objectClass", NULL};
    int rc = ldap_search_ext(ld, base, LDAP_SCOPE_SUBTREE, "(objectClass=*)", attrs, 0, ctrls, NULL,
                             NULL, LDAP_NO_LIMIT, &n->msgid);
    ber_free(ber, 1);
    ber_bvfree(value);
    if (rc != LDAP_SUCCESS) {
        dirconn_error_set(err, DIRCONN_ELDAP, "%s: %s search on %s: %s (LDAP %d)",
                          ldap_source_url(n->src), n->method, base, ldap_err2string(rc), rc);
        return dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    }
    return DIRCONN_OK;
}

enum dirconn_err notify_open(const struct config *cfg, const struct log_sink *log,
                             const void *cookie, size_t len, struct notify **out,
                             struct dirconn_error *err)
{
    *out = NULL;
    struct notify *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    n->log = log;
    n->msgid = -1;
    enum dirconn_err e = ldap_source_open(cfg, log, &n->src, err);
    if (e == DIRCONN_OK && ldap_source_base_dn(n->src) == NULL)
        e = dirconn_error_set(err, DIRCONN_ECONFIG, "%s: no base DN to watch", cfg->path);
    if (e == DIRCONN_OK)
        e = send_search(n, cookie, len, err);
    if (e != DIRCONN_OK) {
        notify_close(n);
        return e;
    }
    log_msg(log, LOG_LEVEL_INFO, "watching %s for changes (%s) on %s", ldap_source_base_dn(n->src),
            n->method, ldap_source_url(n->src));
    *out = n;
    return DIRCONN_OK;
}

int notify_fd(const struct notify *n)
{
    int fd = -1;
    ldap_get_option(ldap_source_handle(n->src), LDAP_OPT_DESC, &fd);
    return fd;
}

const char *notify_url(const struct notify *n)
{
    return ldap_source_url(n->src);
}

const char *notify_method(const struct notify *n)
{
    return n->method;
}

enum dirconn_err notify_drain(struct notify *n, unsigned long *changes, struct dirconn_error *err)
{
    LDAP *ld = ldap_source_handle(n->src);
    for (;;) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int rc = ldap_result(ld, n->msgid, LDAP_MSG_ONE, &zero, &msg);
        if (rc == 0)
            return DIRCONN_OK; /* nothing more is ready */
        if (rc < 0) {
            ldap_msgfree(msg);
            return dirconn_error_set(err, DIRCONN_ELDAP_CONNECT,
                                     "%s: the change notification connection was lost",
                                     ldap_source_url(n->src));
        }
        if (rc == LDAP_RES_SEARCH_ENTRY || rc == LDAP_RES_INTERMEDIATE) {
            (*changes)++;
        } else if (rc == LDAP_RES_SEARCH_RESULT) {
            int code = LDAP_OTHER;
            char *diag = NULL;
            ldap_parse_result(ld, msg, &code, NULL, &diag, NULL, NULL, 0);
            enum dirconn_err e = dirconn_error_set(
                err, DIRCONN_ELDAP, "%s: the server ended the %s search: %s (LDAP %d)%s%s",
                ldap_source_url(n->src), n->method, ldap_err2string(code), code,
                diag && *diag ? ": " : "", diag ? diag : "");
            dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, code);
            ldap_memfree(diag);
            ldap_msgfree(msg);
            n->msgid = -1;
            return e;
        }
        ldap_msgfree(msg);
    }
}

void notify_close(struct notify *n)
{
    if (n == NULL)
        return;
    if (n->src != NULL && n->msgid >= 0)
        ldap_abandon_ext(ldap_source_handle(n->src), n->msgid, NULL, NULL);
    ldap_source_close(n->src);
    free(n);
}
