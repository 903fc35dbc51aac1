/* tracking.c - change tracking: DirSync, uSNChanged polling, RFC 4533. */
#include "connector/tracking.h"

#include <inttypes.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

/* Seconds to wait for one message of a change tracking search. */
#define TRACKING_TIMEOUT_S 120
/* MaxBytes of a DirSync request (MS-ADTS 3.1.1.3.4.1.3). */
#define DIRSYNC_MAX_BYTES 1048576

/* Object classes whose changes matter (users, groups, contacts). */
static const char kinds_filter[] =
    "(|(objectClass=user)(objectClass=group)(objectClass=contact)(objectClass=inetOrgPerson)"
    "(objectClass=groupOfNames))";

void tracking_uuid_to_string(const unsigned char u[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
             u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
             u[14], u[15]);
}

enum dirconn_err tracking_method(const struct config *cfg, const struct ldap_source *src,
                                 enum change_tracking *out, struct dirconn_error *err)
{
    const struct ldap_rootdse *dse = ldap_source_rootdse(src);
    unsigned offered = ldap_rootdse_tracking_offered(dse);
    if (cfg->change_tracking != CHANGE_TRACKING_AUTO) {
        if (!(offered & LDAP_TRACKING_BIT(cfg->change_tracking)))
            return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                     "%s: [ldap] change_tracking = %s, but %s does not offer it",
                                     cfg->path, change_tracking_name(cfg->change_tracking),
                                     ldap_source_url(src));
        *out = cfg->change_tracking;
        return DIRCONN_OK;
    }
    *out = ldap_rootdse_tracking_auto(dse);
    if (*out == CHANGE_TRACKING_AUTO)
        return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                 "%s offers no change tracking (DirSync, highestCommittedUSN or "
                                 "RFC 4533); only full syncs are possible",
                                 ldap_source_url(src));
    return DIRCONN_OK;
}

static enum dirconn_err ldap_fail(struct ldap_source *src, int rc, const char *what,
                                  struct dirconn_error *err)
{
    LDAP *ld = ldap_source_handle(src);
    char *diag = NULL;
    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    enum dirconn_err code = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR
                                ? DIRCONN_ELDAP_CONNECT
                            : rc == LDAP_TIMEOUT ? DIRCONN_ELDAP_TIMEOUT
                                                 : DIRCONN_ELDAP;
    enum dirconn_err e =
        dirconn_error_set(err, code, "%s: %s: %s (LDAP %d)%s%s", ldap_source_url(src), what,
                          ldap_err2string(rc), rc, diag && *diag ? ": " : "", diag ? diag : "");
    ldap_memfree(diag);
    dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    return e;
}

static bool set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s != NULL ? strdup(s) : NULL;
    return s == NULL || *dst != NULL;
}

static bool set_value(struct state_watermark *wm, const void *v, size_t len)
{
    free(wm->value);
    wm->value = malloc(len > 0 ? len : 1);
    if (wm->value == NULL)
        return false;
    if (len > 0)
        memcpy(wm->value, v, len);
    wm->len = len;
    return true;
}

/* The objectGUID of an entry message as a string, or "" without one. */
static void entry_guid(LDAP *ld, LDAPMessage *msg, char out[LDAP_GUID_STRLEN])
{
    out[0] = '\0';
    struct berval **v = ldap_get_values_len(ld, msg, "objectGUID");
    if (v != NULL && v[0] != NULL && v[0]->bv_len == 16)
        ldap_guid_to_string((const unsigned char *)v[0]->bv_val, out);
    ldap_value_free_len(v);
}

static bool entry_is_deleted(LDAP *ld, LDAPMessage *msg)
{
    struct berval **v = ldap_get_values_len(ld, msg, "isDeleted");
    bool del =
        v != NULL && v[0] != NULL && v[0]->bv_len == 4 && strncasecmp(v[0]->bv_val, "TRUE", 4) == 0;
    ldap_value_free_len(v);
    return del;
}

/* The bytes of an entry message's DN, attribute descriptions and values (ldap_entry_bytes). */
static unsigned long long message_bytes(LDAP *ld, LDAPMessage *msg, const char *dn)
{
    unsigned long long n = dn != NULL ? strlen(dn) : 0;
    BerElement *ber = NULL;
    for (char *a = ldap_first_attribute(ld, msg, &ber); a != NULL;
         a = ldap_next_attribute(ld, msg, ber)) {
        n += strlen(a);
        struct berval **v = ldap_get_values_len(ld, msg, a);
        for (size_t i = 0; v != NULL && v[i] != NULL; i++)
            n += v[i]->bv_len;
        ldap_value_free_len(v);
        ldap_memfree(a);
    }
    ber_free(ber, 0);
    return n;
}

/* ---- DirSync ------------------------------------------------------------------- */

/* One DirSync request and its answers; *more says whether the server has more. */
static enum dirconn_err dirsync_once(struct ldap_source *src, const char *partition, char **attrs,
                                     int flags, struct berval *cookie, tracking_change_fn fn,
                                     void *arg, bool *more, int *result_rc,
                                     struct tracking_result *res, struct dirconn_error *err)
{
    LDAP *ld = ldap_source_handle(src);
    LDAPControl *ctrl = NULL;
    int rc = ldap_create_dirsync_control(ld, flags, DIRSYNC_MAX_BYTES, cookie, &ctrl);
    if (rc != LDAP_SUCCESS)
        return ldap_fail(src, rc, "cannot build the DirSync control", err);
    ctrl->ldctl_iscritical = 1;
    LDAPControl *ctrls[2] = {ctrl, NULL};
    struct timeval tv = {TRACKING_TIMEOUT_S, 0};
    int msgid = -1;
    rc = ldap_search_ext(ld, partition, LDAP_SCOPE_SUBTREE, kinds_filter, attrs, 0, ctrls, NULL,
                         &tv, 0, &msgid);
    ldap_control_free(ctrl);
    if (rc != LDAP_SUCCESS)
        return ldap_fail(src, rc, "DirSync search", err);
    *more = false;
    *result_rc = LDAP_SUCCESS;
    enum dirconn_err e = DIRCONN_OK;
    for (;;) {
        LDAPMessage *msg = NULL;
        rc = ldap_result(ld, msgid, LDAP_MSG_ONE, &tv, &msg);
        if (rc <= 0) {
            ldap_msgfree(msg);
            ldap_abandon_ext(ld, msgid, NULL, NULL);
            return ldap_fail(src, rc == 0 ? LDAP_TIMEOUT : LDAP_SERVER_DOWN, "DirSync search", err);
        }
        if (rc == LDAP_RES_SEARCH_ENTRY && e == DIRCONN_OK) {
            char guid[LDAP_GUID_STRLEN];
            entry_guid(ld, msg, guid);
            char *dn = ldap_get_dn(ld, msg);
            bool del = entry_is_deleted(ld, msg);
            struct tracking_change ch = {del ? TRACKING_DELETED : TRACKING_CHANGED, guid,
                                         del ? NULL : dn};
            res->changes++;
            res->bytes += message_bytes(ld, msg, dn);
            if (fn != NULL && fn(arg, &ch) != 0)
                e = dirconn_error_set(err, DIRCONN_EFAIL, "change tracking stopped");
            ldap_memfree(dn);
        } else if (rc == LDAP_RES_SEARCH_RESULT) {
            int code = LDAP_OTHER;
            LDAPControl **rctrls = NULL;
            char *diag = NULL;
            rc = ldap_parse_result(ld, msg, &code, NULL, &diag, NULL, &rctrls, 1);
            msg = NULL;
            *result_rc = code;
            if (e == DIRCONN_OK && (rc != LDAP_SUCCESS || code != LDAP_SUCCESS)) {
                if (code != LDAP_INSUFFICIENT_ACCESS &&
                    code != LDAP_UNAVAILABLE_CRITICAL_EXTENSION &&
                    code != LDAP_UNWILLING_TO_PERFORM)
                    e = dirconn_error_set(err, DIRCONN_ELDAP,
                                          "%s: DirSync search of %s: %s (LDAP %d)%s%s",
                                          ldap_source_url(src), partition, ldap_err2string(code),
                                          code, diag && *diag ? ": " : "", diag ? diag : "");
                else
                    e = dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                          "%s: DirSync refused on %s: %s (LDAP %d)%s%s",
                                          ldap_source_url(src), partition, ldap_err2string(code),
                                          code, diag && *diag ? ": " : "", diag ? diag : "");
                dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, code != LDAP_SUCCESS ? code : rc);
            }
            ldap_memfree(diag);
            if (e == DIRCONN_OK) {
                LDAPControl *resp = ldap_control_find(LDAP_CONTROL_X_DIRSYNC, rctrls, NULL);
                int cont = 0;
                struct berval next = {0, NULL};
                if (resp == NULL ||
                    ldap_source_parse_cookie(ld, resp, &cont, &next) != LDAP_SUCCESS)
                    e = dirconn_error_set(err, DIRCONN_ELDAP,
                                          "%s: the DirSync answer carries no cookie",
                                          ldap_source_url(src));
                else {
                    ber_memfree(cookie->bv_val);
                    *cookie = next;
                    *more = cont != 0;
                }
            }
            ldap_controls_free(rctrls);
            break;
        }
        ldap_msgfree(msg);
    }
    return e;
}

static enum dirconn_err dirsync_read(struct ldap_source *src, const struct log_sink *log,
                                     const char *partition, const char *const *attrs,
                                     const struct state_watermark *from, tracking_change_fn fn,
                                     void *arg, struct state_watermark *next,
                                     struct tracking_result *res, struct dirconn_error *err)
{
    /* The attributes that matter, plus what classification of deletions needs. */
    size_t n = 0;
    while (attrs != NULL && attrs[n] != NULL)
        n++;
    char **a = calloc(n + 4, sizeof(char *));
    if (a == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        a[k++] = (char *)attrs[i];
    a[k++] = "objectGUID";
    a[k++] = "isDeleted";
    if (fn == NULL) /* taking the watermark only: the least the server accepts */
        a[0] = "objectGUID", a[1] = NULL;
    struct berval cookie = {0, NULL};
    if (from != NULL && from->len > 0) {
        cookie.bv_val = ber_memalloc(from->len);
        if (cookie.bv_val == NULL) {
            free(a);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
        memcpy(cookie.bv_val, from->value, from->len);
        cookie.bv_len = from->len;
    }
    int flags = (int)LDAP_CONTROL_X_DIRSYNC_INCREMENTAL_VALUES;
    enum dirconn_err e = DIRCONN_OK;
    bool more = true;
    while (e == DIRCONN_OK && more) {
        int code = 0;
        e = dirsync_once(src, partition, a, flags, &cookie, fn, arg, &more, &code, res, err);
        if (e == DIRCONN_ELDAP_UNSUPPORTED && code == LDAP_INSUFFICIENT_ACCESS &&
            !(flags & LDAP_CONTROL_X_DIRSYNC_OBJECT_SECURITY)) {
            log_msg(log, LOG_LEVEL_INFO,
                    "%s: DirSync without the object-security flag was refused (the account lacks "
                    "Replicating Directory Changes); asking with the flag",
                    ldap_source_url(src));
            flags |= LDAP_CONTROL_X_DIRSYNC_OBJECT_SECURITY;
            res->object_security = true;
            e = DIRCONN_OK;
            more = true;
        } else if (e == DIRCONN_ELDAP && from != NULL && code == LDAP_PROTOCOL_ERROR) {
            e = dirconn_error_set(err, DIRCONN_EWATERMARK, "%s: the DirSync cookie was refused",
                                  ldap_source_url(src));
        }
    }
    free(a);
    if (e == DIRCONN_OK &&
        (!set_str(&next->method, "dirsync") || !set_str(&next->partition, partition) ||
         !set_value(next, cookie.bv_val, cookie.bv_len)))
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    ber_memfree(cookie.bv_val);
    return e;
}

/* ---- uSNChanged ------------------------------------------------------------------ */

/* The DC's highestCommittedUSN, dsServiceName and invocationId, read now. */
static enum dirconn_err usn_now(struct ldap_source *src, uint64_t *usn, char **service,
                                char inv[LDAP_GUID_STRLEN], struct dirconn_error *err)
{
    LDAP *ld = ldap_source_handle(src);
    char *attrs[] = {"highestCommittedUSN", "dsServiceName", NULL};
    struct timeval tv = {TRACKING_TIMEOUT_S, 0};
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                               &tv, 0, &res);
    if (rc != LDAP_SUCCESS) {
        ldap_msgfree(res);
        return ldap_fail(src, rc, "reading highestCommittedUSN", err);
    }
    LDAPMessage *entry = ldap_first_entry(ld, res);
    struct berval **h = entry ? ldap_get_values_len(ld, entry, "highestCommittedUSN") : NULL;
    struct berval **s = entry ? ldap_get_values_len(ld, entry, "dsServiceName") : NULL;
    enum dirconn_err e = DIRCONN_OK;
    if (h == NULL || h[0] == NULL || s == NULL || s[0] == NULL) {
        e = dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                              "%s: the rootDSE has no highestCommittedUSN or dsServiceName",
                              ldap_source_url(src));
    } else {
        char buf[32];
        snprintf(buf, sizeof(buf), "%.*s", (int)h[0]->bv_len, h[0]->bv_val);
        *usn = strtoull(buf, NULL, 10);
        *service = strndup(s[0]->bv_val, s[0]->bv_len);
        if (*service == NULL)
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    ldap_value_free_len(h);
    ldap_value_free_len(s);
    ldap_msgfree(res);
    if (e != DIRCONN_OK)
        return e;
    char *iattrs[] = {"invocationId", NULL};
    res = NULL;
    rc = ldap_search_ext_s(ld, *service, LDAP_SCOPE_BASE, "(objectClass=*)", iattrs, 0, NULL, NULL,
                           &tv, 0, &res);
    inv[0] = '\0';
    if (rc == LDAP_SUCCESS && (entry = ldap_first_entry(ld, res)) != NULL) {
        struct berval **v = ldap_get_values_len(ld, entry, "invocationId");
        if (v != NULL && v[0] != NULL && v[0]->bv_len == 16)
            ldap_guid_to_string((const unsigned char *)v[0]->bv_val, inv);
        ldap_value_free_len(v);
    }
    ldap_msgfree(res);
    if (inv[0] == '\0') {
        free(*service);
        *service = NULL;
        return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                 "%s: the invocationId of the DC cannot be read",
                                 ldap_source_url(src));
    }
    return DIRCONN_OK;
}

static enum dirconn_err usn_search(struct ldap_source *src, const char *partition,
                                   const char *filter, bool deleted, tracking_change_fn fn,
                                   void *arg, struct tracking_result *res,
                                   struct dirconn_error *err)
{
    static const char *const attrs[] = {"objectClass", "isDeleted", NULL};
    struct ldap_search_spec spec = {partition, LDAP_SCOPE_SUBTREE, filter, attrs, deleted};
    struct ldap_cursor *cur = NULL;
    enum dirconn_err e = ldap_source_search(src, &spec, &cur, err);
    while (e == DIRCONN_OK) {
        struct ldap_entry *entry = NULL;
        e = ldap_cursor_next(cur, &entry, err);
        if (e != DIRCONN_OK || entry == NULL)
            break;
        bool del = deleted || ldap_entry_str(entry, "isDeleted") != NULL;
        struct tracking_change ch = {del ? TRACKING_DELETED : TRACKING_CHANGED, entry->id,
                                     del ? NULL : entry->dn};
        res->changes++;
        res->bytes += ldap_entry_bytes(entry);
        if (fn(arg, &ch) != 0)
            e = dirconn_error_set(err, DIRCONN_EFAIL, "change tracking stopped");
        ldap_entry_free(entry);
    }
    ldap_cursor_free(cur);
    return e;
}

static enum dirconn_err usn_read(struct ldap_source *src, const char *partition,
                                 const struct state_watermark *from, tracking_change_fn fn,
                                 void *arg, struct state_watermark *next,
                                 struct tracking_result *res, struct dirconn_error *err)
{
    uint64_t now = 0;
    char *service = NULL;
    char inv[LDAP_GUID_STRLEN];
    enum dirconn_err e = usn_now(src, &now, &service, inv, err);
    if (e != DIRCONN_OK)
        return e;
    if (from != NULL) {
        if (from->dc == NULL || strcasecmp(from->dc, service) != 0)
            e = dirconn_error_set(err, DIRCONN_EWATERMARK,
                                  "the USN watermark belongs to another DC (%s, now %s)",
                                  from->dc ? from->dc : "none", service);
        else if (from->invocation_id == NULL || strcasecmp(from->invocation_id, inv) != 0)
            e = dirconn_error_set(err, DIRCONN_EWATERMARK,
                                  "the DC's invocationId changed (%s, now %s): it was restored",
                                  from->invocation_id ? from->invocation_id : "none", inv);
    }
    if (e == DIRCONN_OK && from != NULL && fn != NULL) {
        char text[32], filter[512];
        snprintf(text, sizeof(text), "%.*s", (int)(from->len < 31 ? from->len : 31),
                 (const char *)from->value);
        unsigned long long since = strtoull(text, NULL, 10) + 1; /* strictly greater */
        snprintf(filter, sizeof(filter), "(&(uSNChanged>=%llu)%s)", since, kinds_filter);
        e = usn_search(src, partition, filter, false, fn, arg, res, err);
        if (e == DIRCONN_OK) {
            snprintf(filter, sizeof(filter), "(&(isDeleted=TRUE)(uSNChanged>=%llu))", since);
            e = usn_search(src, partition, filter, true, fn, arg, res, err);
        }
    }
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, now);
    if (e == DIRCONN_OK &&
        (!set_str(&next->method, "usn") || !set_str(&next->partition, partition) ||
         !set_str(&next->dc, service) || !set_str(&next->invocation_id, inv) ||
         !set_value(next, text, strlen(text))))
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    free(service);
    return e;
}

/* ---- RFC 4533 ---------------------------------------------------------------------- */

struct syncrepl_ctx {
    tracking_change_fn fn;
    void *arg;
    struct tracking_result *res;
    bool stopped;
};

static int report(struct syncrepl_ctx *sc, enum tracking_change_kind kind, struct berval *uuid,
                  const char *dn)
{
    char id[37] = "";
    if (uuid != NULL && uuid->bv_len == 16)
        tracking_uuid_to_string((const unsigned char *)uuid->bv_val, id);
    if (kind == TRACKING_PRESENT)
        sc->res->present_phase = true;
    else
        sc->res->changes++;
    if (sc->fn == NULL)
        return 0;
    struct tracking_change ch = {kind, id, dn};
    if (sc->fn(sc->arg, &ch) != 0) {
        sc->stopped = true;
        return -1;
    }
    return 0;
}

static int on_sync_entry(ldap_sync_t *ls, LDAPMessage *msg, struct berval *uuid,
                         ldap_sync_refresh_t phase)
{
    struct syncrepl_ctx *sc = ls->ls_private;
    if (phase == LDAP_SYNC_CAPI_PRESENT)
        return report(sc, TRACKING_PRESENT, uuid, NULL);
    if (phase == LDAP_SYNC_CAPI_DELETE)
        return report(sc, TRACKING_DELETED, uuid, NULL);
    char *dn = ldap_get_dn(ls->ls_ld, msg);
    sc->res->bytes += message_bytes(ls->ls_ld, msg, dn);
    int rc = report(sc, TRACKING_CHANGED, uuid, dn);
    ldap_memfree(dn);
    return rc;
}

static int on_sync_reference(ldap_sync_t *ls, LDAPMessage *msg)
{
    (void)ls;
    (void)msg;
    return 0;
}

static int on_sync_intermediate(ldap_sync_t *ls, LDAPMessage *msg, BerVarray uuids,
                                ldap_sync_refresh_t phase)
{
    struct syncrepl_ctx *sc = ls->ls_private;
    (void)msg;
    if (phase == LDAP_SYNC_CAPI_PRESENTS)
        sc->res->present_phase = true;
    for (size_t i = 0; uuids != NULL && uuids[i].bv_val != NULL; i++) {
        int rc =
            report(sc, phase == LDAP_SYNC_CAPI_DELETES_IDSET ? TRACKING_DELETED : TRACKING_PRESENT,
                   &uuids[i], NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int on_sync_result(ldap_sync_t *ls, LDAPMessage *msg, int refresh_deletes)
{
    struct syncrepl_ctx *sc = ls->ls_private;
    (void)msg;
    if (refresh_deletes)
        sc->res->present_phase = false;
    return 0;
}

static enum dirconn_err syncrepl_read(struct ldap_source *src, const char *partition,
                                      const char *const *attrs, const struct state_watermark *from,
                                      tracking_change_fn fn, void *arg,
                                      struct state_watermark *next, struct tracking_result *res,
                                      struct dirconn_error *err)
{
    struct syncrepl_ctx sc = {fn, arg, res, false};
    ldap_sync_t ls;
    ldap_sync_initialize(&ls);
    /*
     * No attribute: the entryUUID comes in the Sync State control (RFC 4533
     * 2.2) and the DN with the entry; the caller reads a changed entry again
     * by DN. attrs select nothing here (the server reports an entry whatever
     * changed in it).
     */
    (void)attrs;
    char *one[] = {"1.1", NULL};
    ls.ls_base = (char *)partition;
    ls.ls_scope = LDAP_SCOPE_SUBTREE;
    /*
     * Only the current cookie (a full sync takes its watermark before it reads the directory):
     * a refresh without a cookie sends the whole content (RFC 4533 3.3.1), so the filter asks
     * for no entry, on the entryUUID index a syncrepl provider keeps. The SyncDone control
     * still carries the cookie of the server's current state, whatever the filter was; the
     * incrementals refresh from it with the filter below.
     */
    bool cookie_only = fn == NULL && (from == NULL || from->len == 0);
    ls.ls_filter = cookie_only ? (char *)"(entryUUID=00000000-0000-0000-0000-000000000000)"
                               : (char *)"(objectClass=*)";
    ls.ls_attrs = one;
    ls.ls_timeout = TRACKING_TIMEOUT_S;
    /*
     * A refresh cannot be paged: ask explicitly for no limit. Servers apply
     * their soft limit to requests without one; the sync account needs a hard
     * limit above the directory's size (slapd: limits ... size.hard=unlimited).
     */
    ls.ls_sizelimit = 0x7fffffff;
    ls.ls_search_entry = on_sync_entry;
    ls.ls_search_reference = on_sync_reference;
    ls.ls_intermediate = on_sync_intermediate;
    ls.ls_search_result = on_sync_result;
    ls.ls_private = &sc;
    ls.ls_ld = ldap_source_handle(src);
    if (from != NULL && from->len > 0) {
        struct berval c = {from->len, (char *)from->value};
        ber_dupbv(&ls.ls_cookie, &c);
    }
    int rc = ldap_sync_init_refresh_only(&ls);
    enum dirconn_err e = DIRCONN_OK;
    if (sc.stopped)
        e = dirconn_error_set(err, DIRCONN_EFAIL, "change tracking stopped");
    else if (rc != LDAP_SUCCESS)
        e = ldap_fail(src, rc, "RFC 4533 refresh", err);
    if (e == DIRCONN_OK &&
        (!set_str(&next->method, "syncrepl") || !set_str(&next->partition, partition) ||
         !set_value(next, ls.ls_cookie.bv_val, ls.ls_cookie.bv_len)))
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    /* The handle, base, filter and attributes are ours: keep ldap_sync_destroy off them. */
    ls.ls_ld = NULL;
    ls.ls_base = NULL;
    ls.ls_filter = NULL;
    ls.ls_attrs = NULL;
    ldap_sync_destroy(&ls, 0);
    return e;
}

enum dirconn_err tracking_read(struct ldap_source *src, const struct log_sink *log,
                               enum change_tracking method, const char *partition,
                               const char *const *attrs, const struct state_watermark *from,
                               tracking_change_fn fn, void *arg, struct state_watermark *next,
                               struct tracking_result *res, struct dirconn_error *err)
{
    struct tracking_result local;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    const char *name = change_tracking_name(method);
    if (from != NULL && (from->method == NULL || strcmp(from->method, name) != 0))
        return dirconn_error_set(err, DIRCONN_EWATERMARK,
                                 "the watermark was taken with %s, the method now is %s",
                                 from->method ? from->method : "none", name);
    enum dirconn_err e;
    switch (method) {
    case CHANGE_TRACKING_DIRSYNC:
        e = dirsync_read(src, log, partition, attrs, from, fn, arg, next, res, err);
        break;
    case CHANGE_TRACKING_USN:
        e = usn_read(src, partition, from, fn, arg, next, res, err);
        break;
    case CHANGE_TRACKING_SYNCREPL:
        e = syncrepl_read(src, partition, attrs, from, fn, arg, next, res, err);
        break;
    case CHANGE_TRACKING_AUTO:
    default:
        return dirconn_error_set(err, DIRCONN_EUSAGE, "tracking_read: no method");
    }
    if (e == DIRCONN_OK)
        log_msg(log, LOG_LEVEL_DEBUG,
                "%s: directory read: %lu changes, %llu bytes (DNs, attribute descriptions and "
                "values) of %s",
                ldap_source_url(src), res->changes, res->bytes, name);
    return e;
}
