/*
 * cmd_directory.c - dirconnctl subcommands that talk to the directory:
 * partitions, test-connection and search.
 */
#include "admin/ctl.h"
#include "connector/ldap_source.h"

#include <getopt.h>
#include <jansson.h>
#include <ldap.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { OPT_BASE = 0x200, OPT_SCOPE, OPT_FILTER, OPT_ATTRS, OPT_COUNT, OPT_LIMIT };

/* Load the configuration and connect to the directory. Returns an exit code or -1 to go on. */
static int connect_directory(struct ctl *ctl, struct ldap_source **src)
{
    enum dirconn_err loaded = ctl_load_config(ctl);
    if (loaded != DIRCONN_OK)
        return dirconn_exit_code(loaded);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (ldap_source_open(ctl->cfg, &ctl->log, src, &err) != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    return -1;
}

static void print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        puts(text);
        free(text);
    }
    json_decref(doc);
}

/* ---- partitions ------------------------------------------------------------ */

static const char partitions_help[] =
    "usage: dirconnctl partitions [--config FILE] [--json]\n"
    "\n"
    "Connect to the first working domain controller of [ldap] urls and list the naming\n"
    "contexts of its rootDSE with their kind: domain, configuration, schema or application\n"
    "partition (AD LDS partitions). The one synchronised ([ldap] base_dn, or the domain)\n"
    "is marked with '*'.\n";

int cmd_partitions(struct ctl *ctl, int argc, char **argv)
{
    int rc = ctl_parse_options(ctl, argc, argv, NULL, NULL, NULL, partitions_help);
    if (rc >= 0)
        return rc;
    struct ldap_source *src = NULL;
    if ((rc = connect_directory(ctl, &src)) >= 0)
        return rc;
    const struct ldap_rootdse *dse = ldap_source_rootdse(src);
    const char *base = ldap_source_base_dn(src);
    if (ctl->json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "server", json_string(ldap_source_url(src)));
        json_object_set_new(doc, "serverKind", json_string(ldap_server_kind_name(dse->kind)));
        json_t *list = json_array();
        for (size_t i = 0; i < dse->naming_contexts.n; i++) {
            const char *nc = dse->naming_contexts.v[i];
            json_t *item = json_object();
            json_object_set_new(item, "namingContext", json_string(nc));
            json_object_set_new(item, "kind",
                                json_string(ldap_nc_kind_name(ldap_rootdse_nc_kind(dse, nc))));
            json_object_set_new(item, "synchronized",
                                json_boolean(base != NULL && strcasecmp(base, nc) == 0));
            json_array_append_new(list, item);
        }
        json_object_set_new(doc, "partitions", list);
        print_json(doc);
    } else {
        printf("Server: %s (%s%s%s)\n", ldap_source_url(src), ldap_server_kind_name(dse->kind),
               dse->vendor_name ? ", " : "", dse->vendor_name ? dse->vendor_name : "");
        size_t width = strlen("NAMING CONTEXT");
        for (size_t i = 0; i < dse->naming_contexts.n; i++) {
            if (strlen(dse->naming_contexts.v[i]) > width)
                width = strlen(dse->naming_contexts.v[i]);
        }
        printf("  %-*s  %s\n", (int)width, "NAMING CONTEXT", "KIND");
        for (size_t i = 0; i < dse->naming_contexts.n; i++) {
            const char *nc = dse->naming_contexts.v[i];
            bool synced = base != NULL && strcasecmp(base, nc) == 0;
            printf("%c %-*s  %s\n", synced ? '*' : ' ', (int)width, nc,
                   ldap_nc_kind_name(ldap_rootdse_nc_kind(dse, nc)));
        }
    }
    ldap_source_close(src);
    return 0;
}

/* ---- test-connection ------------------------------------------------------ */

static const char test_connection_help[] =
    "usage: dirconnctl test-connection [--config FILE] [--json]\n"
    "\n"
    "Try the preferred domain controllers of [ldap] urls in order, bind, and report the DC\n"
    "used, the TLS protection, the server kind, whether the base DN exists, paged results\n"
    "support, and the change tracking the server offers (DirSync, uSNChanged, RFC 4533)\n"
    "and the one change_tracking selects. Fails when the configured method is not offered.\n"
    "Then check the cloud: GET ServiceProviderConfig and one authenticated read with the\n"
    "configured authentication, through the configured proxy. Each side is reported apart;\n"
    "the exit code is the directory's failure, else the cloud's.\n";

static json_t *tracking_array(unsigned bits)
{
    json_t *a = json_array();
    for (int t = CHANGE_TRACKING_DIRSYNC; t <= CHANGE_TRACKING_SYNCREPL; t++) {
        if (bits & LDAP_TRACKING_BIT(t))
            json_array_append_new(a, json_string(change_tracking_name((enum change_tracking)t)));
    }
    return a;
}

/*
 * The cloud side after the directory's (dir_rc: its exit code, 0 = fine): a
 * failure is one more error line; the directory's failure keeps its code.
 */
static int cloud_side(struct ctl *ctl, int dir_rc, const struct ctl_cloud_check *cc)
{
    if (cc->code == DIRCONN_OK)
        return dir_rc;
    fprintf(stderr, "%s %s: cloud: %s\n", ctl->prog, ctl->command, cc->error);
    return dir_rc != 0 ? dir_rc : dirconn_exit_code(cc->code);
}

int cmd_test_connection(struct ctl *ctl, int argc, char **argv)
{
    int rc = ctl_parse_options(ctl, argc, argv, NULL, NULL, NULL, test_connection_help);
    if (rc >= 0)
        return rc;
    struct ldap_source *src = NULL;
    struct ctl_cloud_check cc;
    struct dirconn_error cerr;
    if ((rc = connect_directory(ctl, &src)) >= 0) {
        if (ctl->cfg == NULL)
            return rc; /* no configuration, no cloud to check */
        ctl_cloud_check(ctl, &cc, &cerr);
        if (ctl->json)
            print_json(json_pack("{s:o}", "cloud", ctl_cloud_check_json(&cc)));
        else
            ctl_cloud_check_print(&cc);
        return cloud_side(ctl, rc, &cc);
    }
    ctl_cloud_check(ctl, &cc, &cerr);
    const struct ldap_rootdse *dse = ldap_source_rootdse(src);
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err base_rc = ldap_source_check_base(src, &err);
    unsigned offered = ldap_rootdse_tracking_offered(dse);
    enum change_tracking configured = (enum change_tracking)ctl->cfg->change_tracking;
    enum change_tracking selected =
        configured == CHANGE_TRACKING_AUTO ? ldap_rootdse_tracking_auto(dse) : configured;
    bool selected_ok = selected != CHANGE_TRACKING_AUTO && (offered & LDAP_TRACKING_BIT(selected));
    char tls[256];
    ldap_source_tls(src, tls, sizeof(tls));
    const char *base = ldap_source_base_dn(src);
    bool paging = ldap_source_supports(src, LDAP_OID_PAGED_RESULTS);
    bool notify = ldap_source_supports(src, LDAP_OID_NOTIFICATION) ||
                  ldap_source_supports(src, LDAP_OID_SYNC);

    if (ctl->json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "server", json_string(ldap_source_url(src)));
        json_object_set_new(doc, "serverKind", json_string(ldap_server_kind_name(dse->kind)));
        json_object_set_new(doc, "dnsHostName",
                            dse->dns_host_name ? json_string(dse->dns_host_name) : json_null());
        json_object_set_new(doc, "tls", json_string(tls));
        json_object_set_new(doc, "bindDn",
                            ctl->cfg->bind_dn ? json_string(ctl->cfg->bind_dn) : json_null());
        json_object_set_new(doc, "baseDn", base ? json_string(base) : json_null());
        json_object_set_new(doc, "baseDnExists", json_boolean(base_rc == DIRCONN_OK));
        json_object_set_new(doc, "pagedResults", json_boolean(paging));
        json_object_set_new(doc, "changeTrackingOffered", tracking_array(offered));
        json_object_set_new(doc, "changeTrackingConfigured",
                            json_string(change_tracking_name(configured)));
        json_object_set_new(doc, "changeTrackingSelected",
                            selected_ok ? json_string(change_tracking_name(selected))
                                        : json_null());
        json_object_set_new(doc, "changeNotifications", json_boolean(notify));
        if (dse->has_usn)
            json_object_set_new(doc, "highestCommittedUSN",
                                json_integer((json_int_t)dse->highest_committed_usn));
        json_object_set_new(doc, "cloud", ctl_cloud_check_json(&cc));
        print_json(doc);
    } else {
        printf("Domain controller:  %s\n", ldap_source_url(src));
        printf("Server:             %s%s%s\n", ldap_server_kind_name(dse->kind),
               dse->dns_host_name ? ", " : "", dse->dns_host_name ? dse->dns_host_name : "");
        printf("TLS:                %s\n", tls);
        printf("Bound as:           %s\n", ctl->cfg->bind_dn ? ctl->cfg->bind_dn : "(anonymous)");
        printf("Base DN:            %s (%s)\n", base ? base : "(none)",
               base_rc == DIRCONN_OK ? "exists" : "MISSING");
        printf("Paged results:      %s\n", paging ? "yes" : "no");
        printf("Change tracking:    offered:");
        for (int t = CHANGE_TRACKING_DIRSYNC; t <= CHANGE_TRACKING_SYNCREPL; t++) {
            if (offered & LDAP_TRACKING_BIT(t))
                printf(" %s", change_tracking_name((enum change_tracking)t));
        }
        printf("%s; configured: %s; selected: %s\n", offered ? "" : " none",
               change_tracking_name(configured),
               selected_ok ? change_tracking_name(selected) : "none");
        printf("Change notifications: %s\n", notify ? "yes" : "no");
        ctl_cloud_check_print(&cc);
    }
    ldap_source_close(src);
    rc = 0;
    if (base_rc != DIRCONN_OK) {
        rc = ctl_fail(ctl, &err);
    } else if (!paging) {
        dirconn_error_set(&err, DIRCONN_ELDAP_UNSUPPORTED,
                          "the server does not offer paged results (RFC 2696)");
        rc = ctl_fail(ctl, &err);
    } else if (!selected_ok) {
        dirconn_error_set(&err, DIRCONN_ELDAP_UNSUPPORTED,
                          "[ldap] change_tracking = %s is not offered by the server",
                          change_tracking_name(configured));
        rc = ctl_fail(ctl, &err);
    }
    return cloud_side(ctl, rc, &cc);
}

/* ---- search ------------------------------------------------------------------ */

static const char search_help[] =
    "usage: dirconnctl search [--config FILE] [--base DN] [--scope base|one|sub]\n"
    "                         [--filter FILTER] [--attrs A,B,...] [--count] [--limit N]\n"
    "\n"
    "Run a paged search (RFC 2696) over the configured connection and print one JSON object\n"
    "per entry and line: {\"dn\", \"id\" (objectGUID or entryUUID), \"attributes\"}. Binary\n"
    "values are printed as {\"base64\": ...}. Ranged attributes (member;range=...) are\n"
    "returned complete. --count prints only the number of entries. The base defaults to\n"
    "[ldap] base_dn (or the domain), the filter to (objectClass=*).\n";

struct search_args {
    const char *base;
    const char *filter;
    char *attrs_csv;
    int scope;
    bool count;
    long limit;
};

static int search_opt(struct ctl *ctl, int opt, const char *arg, void *user)
{
    struct search_args *a = user;
    switch (opt) {
    case OPT_BASE:
        a->base = arg;
        break;
    case OPT_FILTER:
        a->filter = arg;
        break;
    case OPT_ATTRS:
        a->attrs_csv = (char *)arg;
        break;
    case OPT_COUNT:
        a->count = true;
        break;
    case OPT_LIMIT: {
        char *end = NULL;
        a->limit = strtol(arg, &end, 10);
        if (*end != '\0' || a->limit < 0)
            return ctl_usage_error(ctl, "--limit takes a number, not '%s'", arg);
        break;
    }
    case OPT_SCOPE:
        if (strcmp(arg, "base") == 0)
            a->scope = LDAP_SCOPE_BASE;
        else if (strcmp(arg, "one") == 0)
            a->scope = LDAP_SCOPE_ONELEVEL;
        else if (strcmp(arg, "sub") == 0)
            a->scope = LDAP_SCOPE_SUBTREE;
        else
            return ctl_usage_error(ctl, "--scope is base, one or sub, not '%s'", arg);
        break;
    default:
        break;
    }
    return -1;
}

static json_t *value_json(const char *attr, const struct ldap_value *v)
{
    if (!ldap_attr_is_binary(attr) && ldap_value_is_text(v))
        return json_stringn(v->data, v->len);
    size_t cap = 4 * ((v->len + 2) / 3) + 1;
    unsigned char *b64 = malloc(cap);
    if (b64 == NULL)
        return json_null();
    EVP_EncodeBlock(b64, (const unsigned char *)v->data, (int)v->len);
    json_t *o = json_pack("{s:s}", "base64", (const char *)b64);
    free(b64);
    return o;
}

static json_t *entry_json(const struct ldap_entry *e)
{
    json_t *attrs = json_object();
    for (size_t i = 0; i < e->n_attrs; i++) {
        const struct ldap_attr *a = &e->attrs[i];
        json_t *vals = json_array();
        for (size_t j = 0; j < a->n_values; j++)
            json_array_append_new(vals, value_json(a->name, &a->values[j]));
        json_object_set_new(attrs, a->name, vals);
    }
    return json_pack("{s:s, s:s?, s:o}", "dn", e->dn, "id", e->id[0] ? e->id : NULL, "attributes",
                     attrs);
}

int cmd_search(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {{"base", required_argument, NULL, OPT_BASE},
                                          {"scope", required_argument, NULL, OPT_SCOPE},
                                          {"filter", required_argument, NULL, OPT_FILTER},
                                          {"attrs", required_argument, NULL, OPT_ATTRS},
                                          {"count", no_argument, NULL, OPT_COUNT},
                                          {"limit", required_argument, NULL, OPT_LIMIT},
                                          {NULL, 0, NULL, 0}};
    struct search_args a = {.scope = LDAP_SCOPE_SUBTREE};
    int rc = ctl_parse_options(ctl, argc, argv, extra, search_opt, &a, search_help);
    if (rc >= 0)
        return rc;
    struct ldap_source *src = NULL;
    if ((rc = connect_directory(ctl, &src)) >= 0)
        return rc;

    struct dirconn_error err;
    dirconn_error_clear(&err);
    const char *base = a.base != NULL ? a.base : ldap_source_base_dn(src);
    if (base == NULL) {
        ldap_source_check_base(src, &err); /* explains the missing base DN */
        ldap_source_close(src);
        return ctl_fail(ctl, &err);
    }
    /* Split --attrs on commas; the array borrows the string. */
    const char *attrs[64];
    size_t n = 0;
    char *save = NULL;
    for (char *t = a.attrs_csv ? strtok_r(a.attrs_csv, ",", &save) : NULL; t != NULL && n < 63;
         t = strtok_r(NULL, ",", &save))
        attrs[n++] = t;
    attrs[n] = NULL;
    struct ldap_search_spec spec = {base, a.scope, a.filter, a.attrs_csv ? attrs : NULL, false};
    struct ldap_cursor *cur = NULL;
    enum dirconn_err e = ldap_source_search(src, &spec, &cur, &err);
    long count = 0;
    while (e == DIRCONN_OK) {
        struct ldap_entry *entry = NULL;
        e = ldap_cursor_next(cur, &entry, &err);
        if (e != DIRCONN_OK || entry == NULL)
            break;
        count++;
        if (!a.count) {
            json_t *j = entry_json(entry);
            char *line = json_dumps(j, JSON_COMPACT);
            if (line != NULL) {
                puts(line);
                free(line);
            }
            json_decref(j);
        }
        ldap_entry_free(entry);
        if (a.limit > 0 && count >= a.limit)
            break;
    }
    if (e == DIRCONN_OK && a.count)
        printf("%ld\n", count);
    if (e == DIRCONN_OK)
        log_msg(&ctl->log, LOG_LEVEL_DEBUG, "%ld entries in %lu pages", count,
                ldap_cursor_pages(cur));
    ldap_cursor_free(cur);
    ldap_source_close(src);
    if (e != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    return 0;
}
