/* select.c - object selection: searches per kind and entry classification. */
#include "connector/select.h"

#include <lber.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* AD's bitwise AND matching rule (LDAP_MATCHING_RULE_BIT_AND). */
#define AD_ENABLED_FILTER  "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
#define LDS_ENABLED_FILTER "(!(msDS-UserAccountDisabled=TRUE))"

static const char *const default_filters[OBJECT_KINDS] = {
    "(&(objectClass=user)(!(objectClass=computer)))",
    "(&(objectClass=group)(!(isCriticalSystemObject=TRUE)))",
    "(objectClass=contact)",
};

/* A growing string; on allocation failure it stays NULL-marked. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void sbuf_add(struct sbuf *b, const char *text)
{
    size_t n = strlen(text);
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

bool select_dn_within(const char *dn, const char *base)
{
    LDAPDN d = NULL, b = NULL;
    bool within = false;
    if (ldap_str2dn(dn, &d, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return false;
    if (ldap_str2dn(base, &b, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
        ldap_dnfree(d);
        return false;
    }
    size_t nd = 0, nb = 0;
    while (d != NULL && d[nd] != NULL)
        nd++;
    while (b != NULL && b[nb] != NULL)
        nb++;
    if (nb <= nd) {
        within = true;
        /* Compare the last nb RDNs of dn with base, attribute by attribute. */
        for (size_t i = 0; within && i < nb; i++) {
            LDAPRDN rd = d[nd - nb + i], rb = b[i];
            size_t k = 0;
            for (; within && rd[k] != NULL && rb[k] != NULL; k++) {
                LDAPAVA *x = rd[k], *y = rb[k];
                within =
                    x->la_attr.bv_len == y->la_attr.bv_len &&
                    strncasecmp(x->la_attr.bv_val, y->la_attr.bv_val, x->la_attr.bv_len) == 0 &&
                    x->la_value.bv_len == y->la_value.bv_len &&
                    strncasecmp(x->la_value.bv_val, y->la_value.bv_val, x->la_value.bv_len) == 0;
            }
            within = within && rd[k] == NULL && rb[k] == NULL;
        }
    }
    ldap_dnfree(d);
    ldap_dnfree(b);
    return within;
}

static char *escape_value(const char *value)
{
    struct berval in = {(ber_len_t)strlen(value), (char *)value}, out = {0, NULL};
    if (ldap_bv2escaped_filter_value(&in, &out) != 0)
        return NULL;
    char *copy = strndup(out.bv_val, out.bv_len);
    ber_memfree(out.bv_val);
    return copy;
}

/* The complete filter of one kind. */
static char *kind_filter(const struct config *cfg, enum ldap_server_kind server,
                         enum object_kind kind)
{
    const struct config_scope *scope = kind == OBJECT_USER    ? &cfg->users
                                       : kind == OBJECT_GROUP ? &cfg->groups
                                                              : &cfg->contacts;
    struct sbuf b = {0};
    sbuf_add(&b, "(&");
    sbuf_add(&b, default_filters[kind]);
    if (kind == OBJECT_USER && cfg->users_enabled_only)
        sbuf_add(&b, server == LDAP_SERVER_AD_DS ? AD_ENABLED_FILTER : LDS_ENABLED_FILTER);
    if (kind == OBJECT_USER && cfg->users_security_groups.n > 0) {
        sbuf_add(&b, "(|");
        for (size_t i = 0; i < cfg->users_security_groups.n; i++) {
            char *esc = escape_value(cfg->users_security_groups.v[i]);
            if (esc == NULL) {
                b.failed = true;
                break;
            }
            sbuf_add(&b, "(memberOf=");
            sbuf_add(&b, esc);
            sbuf_add(&b, ")");
            free(esc);
        }
        sbuf_add(&b, ")");
    }
    if (scope->filter != NULL) {
        /* A configured filter may omit its outer parentheses. */
        bool wrap = scope->filter[0] != '(';
        if (wrap)
            sbuf_add(&b, "(");
        sbuf_add(&b, scope->filter);
        if (wrap)
            sbuf_add(&b, ")");
    }
    sbuf_add(&b, ")");
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static bool add_search(struct select_plan *plan, enum object_kind kind, const char *base,
                       const char *filter)
{
    struct select_search *s = realloc(plan->searches, (plan->n + 1) * sizeof(*s));
    if (s == NULL)
        return false;
    plan->searches = s;
    struct select_search *one = &plan->searches[plan->n];
    one->kind = kind;
    one->base = strdup(base);
    one->filter = strdup(filter);
    plan->n++;
    return one->base != NULL && one->filter != NULL;
}

enum dirconn_err select_build(const struct config *cfg, enum ldap_server_kind server,
                              const char *naming_context, struct select_plan *out,
                              struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    static const char *const sections[] = {"users", "groups", "contacts"};
    for (int k = 0; k < OBJECT_KINDS; k++) {
        const struct config_scope *scope = k == OBJECT_USER    ? &cfg->users
                                           : k == OBJECT_GROUP ? &cfg->groups
                                                               : &cfg->contacts;
        if (!scope->enabled)
            continue;
        char *filter = kind_filter(cfg, server, (enum object_kind)k);
        if (filter == NULL) {
            select_plan_free(out);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
        bool ok = true;
        if (scope->base_dns.n == 0) {
            ok = add_search(out, (enum object_kind)k, naming_context, filter);
        }
        for (size_t i = 0; ok && i < scope->base_dns.n; i++) {
            const char *base = scope->base_dns.v[i];
            if (!select_dn_within(base, naming_context)) {
                free(filter);
                select_plan_free(out);
                return dirconn_error_set(err, DIRCONN_ECONFIG,
                                         "%s: [%s] base_dns: '%s' is not inside the synchronised "
                                         "naming context '%s'",
                                         cfg->path, sections[k], base, naming_context);
            }
            bool nested = false;
            for (size_t j = 0; j < scope->base_dns.n && !nested; j++) {
                /* Drop a base inside another (and the later of two equal ones). */
                if (j != i && select_dn_within(base, scope->base_dns.v[j]) &&
                    (!select_dn_within(scope->base_dns.v[j], base) || j < i))
                    nested = true;
            }
            if (!nested)
                ok = add_search(out, (enum object_kind)k, base, filter);
        }
        free(filter);
        if (!ok) {
            select_plan_free(out);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
    }
    return DIRCONN_OK;
}

void select_plan_free(struct select_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->n; i++) {
        free(plan->searches[i].base);
        free(plan->searches[i].filter);
    }
    free(plan->searches);
    plan->searches = NULL;
    plan->n = 0;
}

enum object_kind select_classify(const struct ldap_entry *entry)
{
    if (ldap_entry_has_class(entry, "computer"))
        return OBJECT_KINDS;
    if (ldap_entry_has_class(entry, "user"))
        return OBJECT_USER;
    if (ldap_entry_has_class(entry, "group"))
        return OBJECT_GROUP;
    if (ldap_entry_has_class(entry, "contact"))
        return OBJECT_CONTACT;
    return OBJECT_KINDS;
}

bool select_entry_enabled(const struct ldap_entry *entry)
{
    const char *uac = ldap_entry_str(entry, "userAccountControl");
    if (uac != NULL)
        return (strtoul(uac, NULL, 10) & 0x2u) == 0;
    const char *disabled = ldap_entry_str(entry, "msDS-UserAccountDisabled");
    if (disabled != NULL)
        return strcasecmp(disabled, "TRUE") != 0;
    return true;
}
