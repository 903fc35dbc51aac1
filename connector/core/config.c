/*
 * config.c - the dirconn configuration file: one options table, parsed with inih.
 *
 * inih reads the file line by line through config_reader(), which counts lines
 * so that every error names file:line, and which turns an over-long line into
 * an error instead of letting inih split it. The handler looks the key up in
 * the options table, parses the value with the option's type and bounds, runs
 * the option's validator (libldap for DNs, filters and LDAP URLs, libcurl's URL
 * API for HTTP URLs), and stores it at the option's offset in struct config.
 */
#include "connector/core/config.h"
#include "connector/core/digest.h"

#include "connector/core/log.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <lber.h>
#include <ldap.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* inih's fixed line buffer (INI_MAX_LINE in the distribution's build). */
#define CONFIG_MAX_LINE 200

enum opt_type {
    OPT_STRING,
    OPT_BOOL,
    OPT_INT,
    OPT_DURATION,
    OPT_ENUM,
    OPT_LIST,
    OPT_WEEKLY,
};

/* Option flags. */
#define OPT_REQUIRED    0x1u  /* must be set */
#define OPT_JOIN_NONE   0x2u  /* continuation lines are appended without a separator */
#define OPT_LIST_SEMI   0x4u  /* list items are separated by ';' (DNs contain commas and spaces) */
#define OPT_LIST_SPACE  0x8u  /* list items are separated by white space, ',' or ';' */
#define OPT_NO_SECRET   0x40u /* a URL that must not hold a password (never echoed in errors) */
#define OPT_SECRET_FILE 0x80u /* names a file whose content is a secret (the path is not one) */

typedef bool (*opt_validator)(const char *value, char *why, size_t whylen);

struct opt {
    const char *section;
    const char *key;
    enum opt_type type;
    size_t offset;
    const char *def; /* default, as text in the option's syntax; NULL = unset */
    int64_t min, max;
    const char *const *names; /* OPT_ENUM: value names, index = stored int */
    unsigned flags;
    opt_validator validate;    /* per value (per item for lists) */
    enum config_reload reload; /* when dirconnd applies a changed value (config.h) */
    const char *doc;           /* one line; docs/configuration.md has the whole text */
};

static bool validate_dn(const char *value, char *why, size_t whylen);
static bool validate_bind_name(const char *value, char *why, size_t whylen);
static bool validate_filter(const char *value, char *why, size_t whylen);
static bool validate_ldap_url(const char *value, char *why, size_t whylen);
static bool validate_http_url(const char *value, char *why, size_t whylen);
static bool validate_proxy_url(const char *value, char *why, size_t whylen);
/* Does the URL hold a password in its user information (user:password@host)? */
static bool url_has_password(const char *value)
{
    CURLU *u = curl_url();
    char *password = NULL;
    bool has = u != NULL &&
               curl_url_set(u, CURLUPART_URL, value, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK && password != NULL;
    if (password != NULL)
        OPENSSL_cleanse(password, strlen(password));
    curl_free(password);
    curl_url_cleanup(u);
    return has;
}

static bool validate_pac_url(const char *value, char *why, size_t whylen);
static bool validate_smtp_url(const char *value, char *why, size_t whylen);
static bool validate_mailbox(const char *value, char *why, size_t whylen);
static bool validate_listen(const char *value, char *why, size_t whylen);
static bool validate_attribute(const char *value, char *why, size_t whylen);
static bool validate_scim_multi_valued(const char *value, char *why, size_t whylen);
static bool validate_mail_domain(const char *value, char *why, size_t whylen);

static const char *const change_tracking_names[] = {"auto", "dirsync", "usn", "syncrepl", NULL};
static const char *const cloud_auth_names[] = {"oauth2", "bearer", NULL};
static const char *const ha_lease_names[] = {"cloud", "etcd", "none", NULL};
static const char *const proxy_mode_names[] = {"auto", "pac", "explicit", "none", NULL};
static const char *const proxy_auth_names[] = {"any", "basic", "digest", "ntlm", "negotiate", NULL};
static const char *const reports_starttls_names[] = {"required", "opportunistic", "off", NULL};
static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_target_names[] = {"stderr", "syslog", NULL};

#define OFF(field) offsetof(struct config, field)
#define DAY_MS     (24LL * 3600 * 1000)

/* The options table. docs/configuration.md documents every row; a unit test checks that. */
static const struct opt options[] = {
    {"connector", "name", OPT_STRING, OFF(name), NULL, 1, 64, NULL, 0, NULL, CONFIG_RELOAD_RESTART,
     "The connector's name, shown in the cloud's connector list and in dirconnctl connectors"},
    {"connector", "state_dir", OPT_STRING, OFF(state_dir), "/var/lib/dirconn", 1, PATH_MAX, NULL, 0,
     NULL, CONFIG_RELOAD_RESTART, "Where the state database and the encrypted secret store live"},
    {"connector", "key_file", OPT_STRING, OFF(key_file), NULL, 1, PATH_MAX, NULL, OPT_SECRET_FILE,
     NULL, CONFIG_RELOAD_RUN, "The key of the encrypted secret store (<state_dir>/secrets.enc)"},
    {"connector", "state_cache_size", OPT_INT, OFF(state_cache_size), "16", 1, 4096, NULL, 0, NULL,
     CONFIG_RELOAD_RUN,
     "MiB of SQLite page cache for the state database and for the plan's temporary tables"},

    {"ldap", "urls", OPT_LIST, OFF(urls), NULL, 1, 32, NULL, OPT_REQUIRED | OPT_LIST_SPACE,
     validate_ldap_url, CONFIG_RELOAD_RUN, "The preferred domain controllers, in order"},
    {"ldap", "bind_dn", OPT_STRING, OFF(bind_dn), NULL, 1, 1024, NULL, 0, validate_bind_name,
     CONFIG_RELOAD_RUN, "The account the connector binds as (simple bind, RFC 4513 5.1.3)"},
    {"ldap", "bind_password_file", OPT_STRING, OFF(bind_password_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RUN, "File holding the bind password"},
    {"ldap", "ca_file", OPT_STRING, OFF(ca_file), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "PEM file of the CA(s) that sign the domain controllers' certificates"},
    {"ldap", "start_tls", OPT_BOOL, OFF(start_tls), "yes", 0, 0, NULL, 0, NULL, CONFIG_RELOAD_RUN,
     "Issue StartTLS (RFC 4511 4.14) on ldap:// URLs before binding"},
    {"ldap", "tls_insecure", OPT_BOOL, OFF(tls_insecure), "no", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Skip certificate verification"},
    {"ldap", "base_dn", OPT_STRING, OFF(base_dn), NULL, 1, 1024, NULL, 0, validate_dn,
     CONFIG_RELOAD_RUN, "The naming context to synchronise"},
    {"ldap", "page_size", OPT_INT, OFF(page_size), "500", 1, 100000, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Entries per page of the paged search (RFC 2696)"},
    {"ldap", "timeout", OPT_DURATION, OFF(timeout_ms), "30s", 100, 3600 * 1000, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Connect timeout, and the longest wait for one LDAP operation or page"},
    {"ldap", "change_tracking", OPT_ENUM, OFF(change_tracking), "auto", 0, 0, change_tracking_names,
     0, NULL, CONFIG_RELOAD_RUN, "How changes are found for incremental syncs"},

    {"users", "base_dns", OPT_LIST, OFF(users.base_dns), NULL, 0, 256, NULL, OPT_LIST_SEMI,
     validate_dn, CONFIG_RELOAD_RUN, "Containers or OUs to search, each with its subtree"},
    {"users", "filter", OPT_STRING, OFF(users.filter), NULL, 1, 65536, NULL, OPT_JOIN_NONE,
     validate_filter, CONFIG_RELOAD_RUN,
     "Extra filter ANDed with the default user filter (users that are not computers)"},
    {"users", "enabled", OPT_BOOL, OFF(users.enabled), "yes", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Synchronise users at all"},
    {"users", "enabled_only", OPT_BOOL, OFF(users_enabled_only), "no", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Only users enabled in the directory"},
    {"users", "security_groups", OPT_LIST, OFF(users_security_groups), NULL, 0, 256, NULL,
     OPT_LIST_SEMI, validate_dn, CONFIG_RELOAD_RUN,
     "Only direct members of these groups are in scope"},
    {"users", "required_attributes", OPT_LIST, OFF(users_required_attributes), "mail", 0, 32, NULL,
     OPT_LIST_SPACE, validate_attribute, CONFIG_RELOAD_RUN,
     "A user lacking one of these attributes is skipped and reported"},
    {"users", "sync_proxy_addresses", OPT_BOOL, OFF(users_sync_proxy_addresses), "no", 0, 0, NULL,
     0, NULL, CONFIG_RELOAD_RUN,
     "Rackspace Directory Sync's SyncProxyAddresses (\"Alternate email addresses\")"},
    {"users", "accepted_domains", OPT_LIST, OFF(users_accepted_domains), NULL, 0, 256, NULL,
     OPT_LIST_SPACE, validate_mail_domain, CONFIG_RELOAD_RUN,
     "The domains an alias may have (the seed"},

    {"groups", "base_dns", OPT_LIST, OFF(groups.base_dns), NULL, 0, 256, NULL, OPT_LIST_SEMI,
     validate_dn, CONFIG_RELOAD_RUN, "Containers or OUs to search"},
    {"groups", "filter", OPT_STRING, OFF(groups.filter), NULL, 1, 65536, NULL, OPT_JOIN_NONE,
     validate_filter, CONFIG_RELOAD_RUN, "Extra filter ANDed with the default group filter"},
    {"groups", "enabled", OPT_BOOL, OFF(groups.enabled), "yes", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Synchronise groups"},

    {"contacts", "base_dns", OPT_LIST, OFF(contacts.base_dns), NULL, 0, 256, NULL, OPT_LIST_SEMI,
     validate_dn, CONFIG_RELOAD_RUN, "Containers or OUs to search"},
    {"contacts", "filter", OPT_STRING, OFF(contacts.filter), NULL, 1, 65536, NULL, OPT_JOIN_NONE,
     validate_filter, CONFIG_RELOAD_RUN, "Extra filter ANDed with the default contact filter"},
    {"contacts", "enabled", OPT_BOOL, OFF(contacts.enabled), "yes", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Synchronise contacts to the cloud's Contact resource type"},

    {"avatar", "enabled", OPT_BOOL, OFF(avatar_enabled), "no", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Send an avatar URI in the SCIM photos attribute (type photo)"},
    {"avatar", "pattern", OPT_STRING, OFF(avatar_pattern), NULL, 1, 2048, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "URI pattern with {attribute} and {attribute:regex} placeholders, e.g"},

    {"policy", "delete_threshold", OPT_INT, OFF(delete_threshold), "20", 0, 10000000, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "The most deletions one sync may make"},
    {"policy", "delete_threshold_enabled", OPT_BOOL, OFF(delete_threshold_enabled), "yes", 0, 0,
     NULL, 0, NULL, CONFIG_RELOAD_RUN, "Enforce delete_threshold"},

    {"schedule", "incremental_interval", OPT_DURATION, OFF(incremental_interval_ms), "10m", 1000,
     DAY_MS, NULL, 0, NULL, CONFIG_RELOAD_NOW,
     "How often dirconnd runs an incremental sync (the safety net behind change notifications)"},
    {"schedule", "full_sync", OPT_WEEKLY, OFF(full_sync), "Sun 02:00", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_NOW, "When dirconnd runs a full sync"},
    {"schedule", "notifications", OPT_BOOL, OFF(notifications), "yes", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_NOW, "Listen for directory change notifications and sync within seconds"},

    {"cloud", "url", OPT_STRING, OFF(cloud_url), NULL, 1, 2048, NULL, 0, validate_http_url,
     CONFIG_RELOAD_RUN, "Base URL of the cloud's connector control API"},
    {"cloud", "org", OPT_STRING, OFF(cloud_org), NULL, 1, 128, NULL, 0, NULL, CONFIG_RELOAD_RUN,
     "The organisation in the cloud"},
    {"cloud", "scim_url", OPT_STRING, OFF(cloud_scim_url), NULL, 1, 2048, NULL, 0,
     validate_http_url, CONFIG_RELOAD_RUN,
     "SCIM 2.0 base URL (RFC 7644), for clouds whose SCIM endpoint lives elsewhere"},
    {"cloud", "auth", OPT_ENUM, OFF(cloud_auth), "oauth2", 0, 0, cloud_auth_names, 0, NULL,
     CONFIG_RELOAD_RUN, "oauth2"},
    {"cloud", "client_id", OPT_STRING, OFF(cloud_client_id), NULL, 1, 256, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "The connector id the cloud assigned at registration (auth = oauth2)"},
    {"cloud", "client_secret_file", OPT_STRING, OFF(cloud_client_secret_file), NULL, 1, PATH_MAX,
     NULL, OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RUN,
     "File holding the connector secret (auth = oauth2)"},
    {"cloud", "token_file", OPT_STRING, OFF(cloud_token_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RUN, "File holding the bearer token (auth = bearer)"},
    {"cloud", "ca_file", OPT_STRING, OFF(cloud_ca_file), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "PEM file of the CA(s) for the cloud's certificate"},
    {"cloud", "delete_cascades", OPT_BOOL, OFF(cloud_delete_cascades), "no", 0, 0, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "The provider removes a deleted resource from groups and managers"},
    {"cloud", "max_payload", OPT_INT, OFF(cloud_max_payload), "0", 0, 1073741824, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "The largest request body sent to this provider"},
    {"cloud", "patch_max_operations", OPT_INT, OFF(cloud_patch_max_operations), "100", 1, 100000,
     NULL, 0, NULL, CONFIG_RELOAD_RUN, "The most operations in one PATCH request (1 to 100000)"},
    {"cloud", "single_valued", OPT_LIST, OFF(cloud_single_valued), NULL, 0, 8, NULL, OPT_LIST_SPACE,
     validate_scim_multi_valued, CONFIG_RELOAD_RUN, "Multi-valued User attributes (RFC 7643 4.1.2"},

    {"ha", "lease", OPT_ENUM, OFF(ha_lease), "cloud", 0, 0, ha_lease_names, 0, NULL,
     CONFIG_RELOAD_RESTART, "Where the HA lease is kept"},
    {"ha", "etcd_endpoints", OPT_LIST, OFF(ha_etcd_endpoints), NULL, 0, 16, NULL, OPT_LIST_SPACE,
     validate_http_url, CONFIG_RELOAD_RESTART,
     "Space-separated client URLs of the etcd v3 cluster's members (http:// or https://, e.g"},
    {"ha", "etcd_ca_file", OPT_STRING, OFF(ha_etcd_ca_file), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "PEM CA certificates that https etcd endpoints are verified against"},
    {"ha", "etcd_cert_file", OPT_STRING, OFF(ha_etcd_cert_file), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART,
     "PEM client certificate presented to https etcd endpoints, for etcd's --client-cert-auth"},
    {"ha", "etcd_key_file", OPT_STRING, OFF(ha_etcd_key_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RESTART,
     "PEM private key of etcd_cert_file (unencrypted"},
    {"ha", "etcd_user", OPT_STRING, OFF(ha_etcd_user), NULL, 1, 256, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "etcd user for etcd authentication (etcdctl auth enable)"},
    {"ha", "etcd_password_file", OPT_STRING, OFF(ha_etcd_password_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RESTART,
     "File holding the password of etcd_user on one line"},
    {"ha", "lease_duration", OPT_DURATION, OFF(ha_lease_duration_ms), "30s", 1000, 3600 * 1000,
     NULL, 0, NULL, CONFIG_RELOAD_RESTART, "How long a lease lasts without renewal"},
    {"ha", "renew_interval", OPT_DURATION, OFF(ha_renew_interval_ms), NULL, 100, 3600 * 1000, NULL,
     0, NULL, CONFIG_RELOAD_RESTART, "How often the active connector renews"},
    {"ha", "failover_interval", OPT_DURATION, OFF(ha_failover_interval_ms), "0s", 0, DAY_MS, NULL,
     0, NULL, CONFIG_RELOAD_RESTART,
     "How long a standby waits after the lease expired before it takes it"},
    {"ha", "jitter", OPT_DURATION, OFF(ha_jitter_ms), "250ms", 0, 60 * 1000, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "A random wait added before a standby takes a free or expired lease"},

    {"proxy", "mode", OPT_ENUM, OFF(proxy_mode), "auto", 0, 0, proxy_mode_names, 0, NULL,
     CONFIG_RELOAD_RUN, "auto"},
    {"proxy", "pac_url", OPT_STRING, OFF(proxy_pac_url), NULL, 1, 2048, NULL, 0, validate_pac_url,
     CONFIG_RELOAD_RUN, "PAC file"},
    {"proxy", "url", OPT_STRING, OFF(proxy_url), NULL, 1, 2048, NULL, OPT_NO_SECRET,
     validate_proxy_url, CONFIG_RELOAD_RUN, "http://proxy.example.com:3128"},
    {"proxy", "username", OPT_STRING, OFF(proxy_username), NULL, 1, 256, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Proxy user name"},
    {"proxy", "password_file", OPT_STRING, OFF(proxy_password_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RUN, "File holding the proxy password"},
    {"proxy", "auth", OPT_ENUM, OFF(proxy_auth), "any", 0, 0, proxy_auth_names, 0, NULL,
     CONFIG_RELOAD_RUN, "Proxy authentication scheme"},
    {"proxy", "no_proxy", OPT_STRING, OFF(proxy_no_proxy), NULL, 1, 4096, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "Hosts, domains, addresses or CIDR ranges reached without a proxy"},
    {"proxy", "pac_ttl", OPT_DURATION, OFF(proxy_pac_ttl_ms), "5m", 1000, DAY_MS, NULL, 0, NULL,
     CONFIG_RELOAD_RUN, "How long a resolved proxy list, or a failed proxy's exclusion, is kept"},

    {"web", "listen", OPT_STRING, OFF(web_listen), NULL, 1, 300, NULL, 0, validate_listen,
     CONFIG_RELOAD_RESTART, "Where the status page and /metrics listen"},
    {"web", "metrics_listen", OPT_STRING, OFF(web_metrics_listen), NULL, 1, 300, NULL, 0,
     validate_listen, CONFIG_RELOAD_RESTART,
     "/metrics on a listener of its own (the page's listener then serves no /metrics)"},
    {"web", "tls_cert", OPT_STRING, OFF(web_tls_cert), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "PEM certificate chain"},
    {"web", "tls_key", OPT_STRING, OFF(web_tls_key), NULL, 1, PATH_MAX, NULL, OPT_SECRET_FILE, NULL,
     CONFIG_RELOAD_RESTART, "PEM private key of tls_cert"},
    {"web", "username", OPT_STRING, OFF(web_username), "admin", 1, 128, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "The HTTP Basic user name"},
    {"web", "password_file", OPT_STRING, OFF(web_password_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_RESTART,
     "File holding the password (HTTP Basic as username) or bearer token (Authorization"},

    {"daemon", "socket", OPT_STRING, OFF(daemon_socket), NULL, 1, 107, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "The UNIX socket on which dirconnd answers dirconnctl"},
    {"daemon", "debounce", OPT_DURATION, OFF(daemon_debounce_ms), "1s", 0, 60 * 1000, NULL, 0, NULL,
     CONFIG_RELOAD_NOW, "How long dirconnd waits after a change notification before it syncs"},
    {"daemon", "notify_retry_max", OPT_DURATION, OFF(daemon_notify_retry_max_ms), "5m", 1000,
     3600 * 1000, NULL, 0, NULL, CONFIG_RELOAD_NOW,
     "The longest wait between reconnections of the notification connection"},
    {"daemon", "refused_bind_check", OPT_DURATION, OFF(daemon_refused_bind_check_ms), "10s", 1000,
     3600 * 1000, NULL, 0, NULL, CONFIG_RELOAD_NOW,
     "While the bind is refused: how often to look for a changed configuration or password"},

    {"reports", "smtp_url", OPT_STRING, OFF(reports_smtp_url), NULL, 1, 2048, NULL, OPT_NO_SECRET,
     validate_smtp_url, CONFIG_RELOAD_NOW, "The mail submission server"},
    {"reports", "from", OPT_STRING, OFF(reports_from), NULL, 3, 254, NULL, 0, validate_mailbox,
     CONFIG_RELOAD_NOW, "The sender, in the envelope (MAIL FROM) and the From"},
    {"reports", "to", OPT_LIST, OFF(reports_to), NULL, 0, 32, NULL, OPT_LIST_SPACE,
     validate_mailbox, CONFIG_RELOAD_NOW, "The recipients (RCPT TO, and the To"},
    {"reports", "interval", OPT_DURATION, OFF(reports_interval_ms), "1d", 0, 31 * DAY_MS, NULL, 0,
     NULL, CONFIG_RELOAD_NOW,
     "How often the summary of the period's runs goes out (\"Send Reports per"},
    {"reports", "alert_no_success_after", OPT_DURATION, OFF(reports_no_success_ms), "1d", 0,
     31 * DAY_MS, NULL, 0, NULL, CONFIG_RELOAD_NOW,
     "Alert when no sync has succeeded for this long"},
    {"reports", "starttls", OPT_ENUM, OFF(reports_starttls), "required", 0, 0,
     reports_starttls_names, 0, NULL, CONFIG_RELOAD_NOW, "For smtp:// URLs"},
    {"reports", "ca_file", OPT_STRING, OFF(reports_ca_file), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_NOW, "PEM CA bundle that verifies the mail server's certificate"},
    {"reports", "username", OPT_STRING, OFF(reports_username), NULL, 1, 256, NULL, 0, NULL,
     CONFIG_RELOAD_NOW, "The SMTP AUTH (RFC 4954) user"},
    {"reports", "password_file", OPT_STRING, OFF(reports_password_file), NULL, 1, PATH_MAX, NULL,
     OPT_SECRET_FILE, NULL, CONFIG_RELOAD_NOW,
     "A file (mode 0600 or stricter) whose one line is the SMTP AUTH password"},
    {"reports", "timeout", OPT_DURATION, OFF(reports_timeout_ms), "30s", 1000, 600 * 1000, NULL, 0,
     NULL, CONFIG_RELOAD_NOW, "The longest one delivery attempt may take"},
    {"reports", "retries", OPT_INT, OFF(reports_retries), "3", 0, 10, NULL, 0, NULL,
     CONFIG_RELOAD_NOW,
     "How many more times a mail that was not delivered is tried, after 5 s, then 20 s, 80 s, "},
    {"pwsync", "listen", OPT_STRING, OFF(pwsync_listen), NULL, 1, 300, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "Address of the password change listener"},
    {"pwsync", "tls_cert", OPT_STRING, OFF(pwsync_tls_cert), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "PEM certificate chain the listener presents"},
    {"pwsync", "tls_key", OPT_STRING, OFF(pwsync_tls_key), NULL, 1, PATH_MAX, NULL, OPT_SECRET_FILE,
     NULL, CONFIG_RELOAD_RESTART, "PEM private key of tls_cert"},
    {"pwsync", "client_ca", OPT_STRING, OFF(pwsync_client_ca), NULL, 1, PATH_MAX, NULL, 0, NULL,
     CONFIG_RELOAD_RESTART, "PEM CA certificate(s)"},

    {"log", "level", OPT_ENUM, OFF(log_level), "info", 0, 0, log_level_names, 0, NULL,
     CONFIG_RELOAD_NOW, "The least severe level written"},
    {"log", "target", OPT_ENUM, OFF(log_target), "stderr", 0, 0, log_target_names, 0, NULL,
     CONFIG_RELOAD_NOW, "Where log lines go (syslog facility LOG_DAEMON)"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Sections whose keys are free-form (validated by their own module). */
static const char *const free_sections[] = {"mapping", NULL};

/* Parsing context shared by the reader and the handler. */
struct config_parse {
    struct config *cfg;
    const char *name;           /* file name for messages */
    FILE *fp;                   /* config_reader input (file) */
    const char *text;           /* config_reader input (string) */
    int line;                   /* line most recently handed to inih */
    bool continuation;          /* that line started with white space */
    int long_line;              /* first line longer than inih's buffer, 0 = none */
    int set_line[N_OPTIONS];    /* line where each option was set, 0 = not set */
    const struct opt *last_opt; /* option of the previous handled line */
    struct dirconn_error *err;
    bool failed;
    int fail_line; /* line of the recorded error, 0 = none or not tied to a line */
};

size_t config_key_count(void)
{
    return N_OPTIONS;
}

bool config_key_at(size_t i, const char **section, const char **key)
{
    if (i >= N_OPTIONS)
        return false;
    *section = options[i].section;
    *key = options[i].key;
    return true;
}

static const char *const type_names[] = {
    [OPT_STRING] = "string",     [OPT_BOOL] = "boolean", [OPT_INT] = "integer",
    [OPT_DURATION] = "duration", [OPT_ENUM] = "enum",    [OPT_LIST] = "list",
    [OPT_WEEKLY] = "schedule",
};

bool config_key_info(size_t i, struct config_key_info *out)
{
    if (i >= N_OPTIONS)
        return false;
    const struct opt *o = &options[i];
    *out = (struct config_key_info){
        o->section, o->key, type_names[o->type], o->def, (o->flags & OPT_SECRET_FILE) != 0,
        o->reload,  o->doc};
    return true;
}

const char *config_reload_name(enum config_reload r)
{
    switch (r) {
    case CONFIG_RELOAD_NOW:
        return "now";
    case CONFIG_RELOAD_RUN:
        return "next-run";
    case CONFIG_RELOAD_RESTART:
        return "restart";
    }
    return NULL;
}

int config_key_line(const struct config *cfg, size_t i)
{
    return cfg != NULL && cfg->key_lines != NULL && i < N_OPTIONS ? cfg->key_lines[i] : 0;
}

bool config_key_find(const char *section, const char *key, size_t *i)
{
    for (size_t k = 0; k < N_OPTIONS; k++) {
        if (strcasecmp(options[k].section, section) == 0 && strcasecmp(options[k].key, key) == 0) {
            *i = k;
            return true;
        }
    }
    return false;
}

/* A duration in the units the file takes: "1h30m", "250ms", "0s". */
static void format_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", DAY_MS}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t k = 0;
    buf[0] = '\0';
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]) && ms > 0; u++) {
        int64_t n = ms / units[u].ms;
        ms %= units[u].ms;
        if (n > 0 && k < len)
            k += (size_t)snprintf(buf + k, len - k, "%lld%s", (long long)n, units[u].unit);
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "0s");
}

static void format_weekly(const struct config_weekly *w, char *buf, size_t len)
{
    static const char *const day[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    if (w->days == 0) {
        snprintf(buf, len, "never");
        return;
    }
    size_t k = 0;
    if (w->days == 0x7f)
        k = (size_t)snprintf(buf, len, "daily");
    for (int i = 0; i < 7 && w->days != 0x7f; i++)
        if ((w->days & (1u << i)) && k < len)
            k += (size_t)snprintf(buf + k, len - k, "%s%s", k ? "," : "", day[i]);
    if (k < len)
        snprintf(buf + k, len - k, " %02d:%02d", w->minute / 60, w->minute % 60);
}

bool config_value_text(const struct config *cfg, size_t i, char **out)
{
    *out = NULL;
    if (i >= N_OPTIONS)
        return false;
    const struct opt *o = &options[i];
    const void *field = (const char *)cfg + o->offset;
    char buf[128];
    switch (o->type) {
    case OPT_STRING: {
        const char *v = *(char *const *)field;
        return v == NULL || (*out = strdup(v)) != NULL;
    }
    case OPT_BOOL:
        snprintf(buf, sizeof(buf), "%s", *(const bool *)field ? "yes" : "no");
        break;
    case OPT_INT:
        snprintf(buf, sizeof(buf), "%d", *(const int *)field);
        break;
    case OPT_DURATION:
        format_duration(*(const int64_t *)field, buf, sizeof(buf));
        break;
    case OPT_ENUM: {
        int v = *(const int *)field;
        int n = 0;
        while (o->names[n] != NULL)
            n++;
        snprintf(buf, sizeof(buf), "%s", v >= 0 && v < n ? o->names[v] : "?");
        break;
    }
    case OPT_WEEKLY:
        format_weekly((const struct config_weekly *)field, buf, sizeof(buf));
        break;
    case OPT_LIST: {
        const struct strlist *l = field;
        if (l->n == 0)
            return true;
        const char *sep = (o->flags & OPT_LIST_SEMI) ? "; " : " ";
        size_t len = 1;
        for (size_t k = 0; k < l->n; k++)
            len += strlen(l->v[k]) + strlen(sep);
        char *s = malloc(len);
        if (s == NULL)
            return false;
        s[0] = '\0';
        size_t at = 0;
        for (size_t k = 0; k < l->n; k++)
            at += (size_t)snprintf(s + at, len - at, "%s%s", k ? sep : "", l->v[k]);
        *out = s;
        return true;
    }
    }
    return (*out = strdup(buf)) != NULL;
}

size_t config_restart_changes(const struct config *running, const struct config *fresh,
                              void (*fn)(void *arg, const char *section, const char *key),
                              void *arg)
{
    size_t changed = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].reload != CONFIG_RELOAD_RESTART)
            continue;
        char *a = NULL, *b = NULL;
        bool ok = config_value_text(running, i, &a) && config_value_text(fresh, i, &b);
        /* Out of memory: counted as a change, which only costs a log line. */
        bool differs = !ok || (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
        free(a);
        free(b);
        if (differs) {
            changed++;
            if (fn != NULL)
                fn(arg, options[i].section, options[i].key);
        }
    }
    return changed;
}

/* ---- validators -------------------------------------------------------- */

static bool validate_dn(const char *value, char *why, size_t whylen)
{
    LDAPDN dn = NULL;
    int rc = ldap_str2dn(value, &dn, LDAP_DN_FORMAT_LDAPV3);
    if (rc != LDAP_SUCCESS) {
        snprintf(why, whylen, "not a valid distinguished name (RFC 4514): %s", ldap_err2string(rc));
        return false;
    }
    ldap_dnfree(dn);
    return true;
}

/* A character that no name of an AD account or domain takes (control characters, space aside). */
static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/*
 * The name of a simple bind (RFC 4513 5.1.3 leaves its form to the server). AD DS and
 * AD LDS take, besides a DN, the forms of MS-ADTS 5.1.1.1.1 "Simple Authentication":
 * a user principal name (user@dns.domain) and a down-level logon name (DOMAIN\user;
 * AD DS only). A value with '=' is a DN and must parse as one; otherwise it must be one
 * of the two forms: a DNS domain of letters, digits and hyphens after the last '@', or a
 * NetBIOS domain (at most 15 characters, none of \ / : * ? " < > |) before one '\',
 * with a user name of no control characters, '@' or '\' around it.
 */
static bool validate_bind_name(const char *value, char *why, size_t whylen)
{
    static const char forms[] = "expected a distinguished name (CN=svc,OU=Service "
                                "Accounts,DC=example,DC=com), a user principal name "
                                "(svc@example.com) or a down-level logon name (EXAMPLE\\svc)";
    if (strchr(value, '=') != NULL)
        return validate_dn(value, why, whylen);
    for (const char *p = value; *p != '\0'; p++) {
        if (is_control((unsigned char)*p)) {
            snprintf(why, whylen, "control characters are not allowed; %s", forms);
            return false;
        }
    }
    const char *backslash = strchr(value, '\\');
    const char *at = strrchr(value, '@');
    if (backslash != NULL) {
        size_t domain = (size_t)(backslash - value);
        const char *user = backslash + 1;
        if (domain == 0 || domain > 15 || strcspn(value, "/:*?\"<>|") < domain) {
            snprintf(why, whylen,
                     "the domain of DOMAIN\\user is 1 to 15 characters, none of "
                     "\\ / : * ? \" < > |; %s",
                     forms);
            return false;
        }
        if (*user == '\0' || strpbrk(user, "\\@") != NULL || user[0] == ' ' ||
            user[strlen(user) - 1] == ' ') {
            snprintf(why, whylen, "the user of DOMAIN\\user is empty or holds '\\' or '@'; %s",
                     forms);
            return false;
        }
        return true;
    }
    if (at != NULL) {
        const char *domain = at + 1;
        bool label_start = true, ok = at != value && *domain != '\0' && value[0] != ' ';
        for (const char *p = domain; ok && *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '.') {
                ok = !label_start && p[-1] != '-';
                label_start = true;
            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       (c == '-' && !label_start)) {
                label_start = false;
            } else {
                ok = false;
            }
        }
        if (!ok || label_start || value[strlen(value) - 1] == '-') {
            snprintf(why, whylen, "a user principal name is user@dns.domain; %s", forms);
            return false;
        }
        return true;
    }
    snprintf(why, whylen, "%s", forms);
    return false;
}

/*
 * An LDAP filter is checked by libldap's own filter encoder: the assertion
 * control (RFC 4528) carries a full Filter, and building its value parses the
 * string form (RFC 4515) without any network traffic.
 */
static bool validate_filter(const char *value, char *why, size_t whylen)
{
    LDAP *ld = NULL;
    if (ldap_initialize(&ld, NULL) != LDAP_SUCCESS || ld == NULL) {
        snprintf(why, whylen, "cannot initialise libldap to check the filter");
        return false;
    }
    struct berval bv = {0, NULL};
    int rc = ldap_create_assertion_control_value(ld, (char *)value, &bv);
    ldap_unbind_ext(ld, NULL, NULL);
    if (bv.bv_val != NULL)
        ber_memfree(bv.bv_val);
    if (rc != LDAP_SUCCESS) {
        snprintf(why, whylen, "not a valid LDAP filter (RFC 4515): %s", ldap_err2string(rc));
        return false;
    }
    return true;
}

static bool validate_ldap_url(const char *value, char *why, size_t whylen)
{
    LDAPURLDesc *lud = NULL;
    int rc = ldap_url_parse(value, &lud);
    if (rc != LDAP_URL_SUCCESS) {
        snprintf(why, whylen,
                 "not a valid LDAP URL (RFC 4516), expected ldap://host[:port] or "
                 "ldaps://host[:port]");
        return false;
    }
    bool ok = strcasecmp(lud->lud_scheme, "ldap") == 0 || strcasecmp(lud->lud_scheme, "ldaps") == 0;
    if (!ok)
        snprintf(why, whylen, "scheme '%s' is not supported, use ldap:// or ldaps://",
                 lud->lud_scheme);
    else if (lud->lud_host == NULL || lud->lud_host[0] == '\0') {
        snprintf(why, whylen, "the URL names no host");
        ok = false;
    }
    ldap_free_urldesc(lud);
    return ok;
}

static bool validate_url_scheme(const char *value, const char *const *schemes, char *why,
                                size_t whylen)
{
    CURLU *u = curl_url();
    if (u == NULL) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, value, CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        snprintf(why, whylen, "not a valid URL: %s", curl_url_strerror(rc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        snprintf(why, whylen, "the URL has no scheme");
    } else {
        for (size_t i = 0; schemes[i] != NULL; i++) {
            if (strcasecmp(scheme, schemes[i]) == 0)
                ok = true;
        }
        if (!ok) {
            snprintf(why, whylen, "scheme '%s' is not supported here", scheme);
        } else if (strncasecmp(scheme, "pac+file", 8) != 0 &&
                   (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')) {
            snprintf(why, whylen, "the URL names no host");
            ok = false;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

bool config_parse_listen(const char *text, char *host, size_t hostlen, int *port, bool *loopback,
                         char *why, size_t whylen)
{
    const char *colon = strrchr(text, ':');
    const char *h = text;
    size_t hl = colon != NULL ? (size_t)(colon - text) : 0;
    if (colon == NULL || hl == 0 || colon[1] == '\0') {
        snprintf(why, whylen, "expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)");
        return false;
    }
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') {
            snprintf(why, whylen, "an IPv6 address is written in brackets: [::1]:8080");
            return false;
        }
        h++;
        hl -= 2;
    }
    if (hl >= hostlen) {
        snprintf(why, whylen, "the host is too long");
        return false;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (h == text && strchr(host, ':') != NULL) {
        snprintf(why, whylen, "an IPv6 address is written in brackets: [::1]:8080");
        return false;
    }
    /* glibc's getaddrinfo takes a service number modulo 65536: the bounds are checked here */
    char *end = NULL;
    errno = 0;
    long pn = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || !isdigit((unsigned char)colon[1]) || pn < 1 || pn > 65535) {
        snprintf(why, whylen, "the port must be 1-65535");
        return false;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(why, whylen, "not a numeric address and port: %s", gai_strerror(rc));
        return false;
    }
    *port = ai->ai_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
    if (ai->ai_family == AF_INET6)
        *loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    else
        *loopback = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    freeaddrinfo(ai);
    if (*port <= 0) {
        snprintf(why, whylen, "the port must be 1-65535");
        return false;
    }
    return true;
}

static bool validate_listen(const char *value, char *why, size_t whylen)
{
    char host[300];
    int port;
    bool loopback;
    return config_parse_listen(value, host, sizeof(host), &port, &loopback, why, whylen);
}

static bool validate_http_url(const char *value, char *why, size_t whylen)
{
    static const char *const schemes[] = {"https", "http", NULL};
    return validate_url_scheme(value, schemes, why, whylen);
}

static bool validate_proxy_url(const char *value, char *why, size_t whylen)
{
    static const char *const schemes[] = {"http", "https", "socks5", "socks5h", NULL};
    return validate_url_scheme(value, schemes, why, whylen);
}

static bool validate_pac_url(const char *value, char *why, size_t whylen)
{
    /* libproxy's forms: pac+http://, pac+https://, pac+file:// (also plain http(s) and file). */
    if (strncasecmp(value, "pac+file://", 11) == 0 || strncasecmp(value, "file://", 7) == 0) {
        const char *p = strstr(value, "://") + 3;
        if (*p != '/') {
            snprintf(why, whylen, "a PAC file URL needs an absolute path (pac+file:///path)");
            return false;
        }
        return true;
    }
    static const char *const schemes[] = {"pac+http", "pac+https", "http", "https", NULL};
    return validate_url_scheme(value, schemes, why, whylen);
}

static bool validate_smtp_url(const char *value, char *why, size_t whylen)
{
    static const char *const schemes[] = {"smtp", "smtps", NULL};
    if (!validate_url_scheme(value, schemes, why, whylen)) {
        size_t n = strlen(why);
        snprintf(why + n, whylen - n, " (expected smtp://host[:port] or smtps://host[:port])");
        return false;
    }
    return true;
}

/*
 * A bare mail address (RFC 5321 4.1.2 Mailbox, as the envelope takes it): one '@' between a
 * non-empty local part and domain, and none of the characters that would end or quote it in
 * an envelope or header (white space, control characters, <>()[],;:"\). Display names and
 * quoted local parts are not taken; the check guards the SMTP commands, it does not parse
 * RFC 5322 addresses.
 */
static bool validate_mailbox(const char *value, char *why, size_t whylen)
{
    const char *at = strchr(value, '@');
    bool ok = at != NULL && at != value && at[1] != '\0' && strchr(at + 1, '@') == NULL;
    for (const char *p = value; ok && *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        ok = c > 0x20 && c != 0x7f && strchr("<>()[],;:\"\\", c) == NULL;
    }
    if (!ok)
        snprintf(why, whylen,
                 "not a mail address; expected a bare address such as "
                 "dirconn@example.com");
    return ok;
}

/* An LDAP attribute description: a letter, then letters, digits and hyphens (RFC 4512 1.4). */
static bool validate_attribute(const char *value, char *why, size_t whylen)
{
    bool ok = isalpha((unsigned char)value[0]) != 0;
    for (const char *p = value; ok && *p != '\0'; p++)
        ok = isalnum((unsigned char)*p) || *p == '-';
    if (!ok)
        snprintf(why, whylen, "'%s' is not an LDAP attribute name", value);
    return ok;
}

/*
 * A mail domain: two or more labels of letters, digits and hyphens (RFC 1035
 * 2.3.1 LDH; non-ASCII letters allowed for RFC 6531 domains), at most 253 bytes.
 */
static bool validate_mail_domain(const char *value, char *why, size_t whylen)
{
    size_t len = strlen(value), labels = 0, label = 0;
    bool ok = len > 0 && len <= 253;
    for (size_t i = 0; ok && i <= len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '.' || c == '\0') {
            ok = label > 0 && label <= 63 && value[i - 1] != '-' && value[i - label] != '-';
            labels++;
            label = 0;
            continue;
        }
        ok = isalnum(c) || c == '-' || c >= 0x80;
        label++;
    }
    if (!ok || labels < 2)
        snprintf(why, whylen,
                 "not a mail domain (two or more labels of letters, digits and '-', e.g. "
                 "example.com)");
    return ok && labels >= 2;
}

/* A multi-valued attribute of the SCIM User schema (RFC 7643 4.1.2). */
static bool validate_scim_multi_valued(const char *value, char *why, size_t whylen)
{
    static const char *const names[] = {"emails", "phoneNumbers",     "ims",
                                        "photos", "addresses",        "entitlements",
                                        "roles",  "x509Certificates", NULL};
    for (int i = 0; names[i] != NULL; i++)
        if (strcasecmp(value, names[i]) == 0)
            return true;
    snprintf(why, whylen,
             "not a multi-valued User attribute (emails, phoneNumbers, ims, photos, addresses, "
             "entitlements, roles, x509Certificates)");
    return false;
}

/* ---- value parsers -------------------------------------------------------- */

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1", NULL};
    static const char *const no[] = {"no", "false", "off", "0", NULL};
    for (int i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int64(const char *v, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return false;
    *out = n;
    return true;
}

bool config_parse_duration(const char *text, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = text;
    int64_t total = 0;
    if (*p == '\0')
        return false;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p))
            return false;
        errno = 0;
        char *end = NULL;
        long long n = strtoll(p, &end, 10);
        if (errno != 0 || n < 0)
            return false;
        p = end;
        size_t ulen = 0;
        while (isalpha((unsigned char)p[ulen]))
            ulen++;
        if (ulen == 0)
            return false; /* a bare number: the unit is mandatory */
        int64_t mult = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strlen(units[i].unit) == ulen && strncmp(p, units[i].unit, ulen) == 0)
                mult = units[i].ms;
        }
        if (mult == 0 || n > INT64_MAX / mult || total > INT64_MAX - n * mult)
            return false;
        total += n * mult;
        p += ulen;
    }
    *ms = total;
    return true;
}

bool config_parse_weekly(const char *text, struct config_weekly *out)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    char buf[128];
    if (strlen(text) >= sizeof(buf))
        return false;
    snprintf(buf, sizeof(buf), "%s", text);
    if (strcasecmp(buf, "never") == 0) {
        out->days = 0;
        out->minute = 0;
        return true;
    }
    char *space = strrchr(buf, ' ');
    if (space == NULL)
        return false;
    *space = '\0';
    const char *hm = space + 1;
    int h = -1, m = -1;
    char tail = '\0';
    if (strlen(hm) != 5 || sscanf(hm, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 ||
        m < 0 || m > 59)
        return false;
    unsigned mask = 0;
    if (strcasecmp(buf, "daily") == 0) {
        mask = 0x7f;
    } else {
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            size_t len = strlen(tok);
            while (len > 0 && tok[len - 1] == ' ')
                tok[--len] = '\0';
            int found = -1;
            for (int d = 0; d < 7; d++) {
                if (strncasecmp(tok, days[d], 3) == 0 && (len == 3 || len > 3)) {
                    /* "Sun" or a longer English day name starting with it ("Sunday"). */
                    static const char *const full[] = {"sunday",   "monday", "tuesday", "wednesday",
                                                       "thursday", "friday", "saturday"};
                    if (len == 3 || strcasecmp(tok, full[d]) == 0)
                        found = d;
                }
            }
            if (found < 0)
                return false;
            mask |= 1u << found;
        }
    }
    if (mask == 0)
        return false;
    out->days = mask;
    out->minute = h * 60 + m;
    return true;
}

/* ---- storing values ------------------------------------------------------- */

static enum dirconn_err parse_fail(struct config_parse *ps, int line, const struct opt *o,
                                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static enum dirconn_err parse_fail(struct config_parse *ps, int line, const struct opt *o,
                                   const char *fmt, ...)
{
    if (ps->failed)
        return DIRCONN_ECONFIG;
    char cause[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    ps->failed = true;
    ps->fail_line = line;
    if (line > 0 && o != NULL)
        return dirconn_error_set(ps->err, DIRCONN_ECONFIG, "%s:%d: [%s] %s: %s", ps->name, line,
                                 o->section, o->key, cause);
    if (line > 0)
        return dirconn_error_set(ps->err, DIRCONN_ECONFIG, "%s:%d: %s", ps->name, line, cause);
    if (o != NULL)
        return dirconn_error_set(ps->err, DIRCONN_ECONFIG, "%s: [%s] %s: %s", ps->name, o->section,
                                 o->key, cause);
    return dirconn_error_set(ps->err, DIRCONN_ECONFIG, "%s: %s", ps->name, cause);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Append the items of one value to a list option. */
static bool store_list(struct config_parse *ps, const struct opt *o, int line, const char *value)
{
    struct strlist *l = (struct strlist *)((char *)ps->cfg + o->offset);
    const char *seps = (o->flags & OPT_LIST_SEMI) ? ";" : " \t,;";
    char *copy = strdup(value);
    if (copy == NULL) {
        parse_fail(ps, line, o, "out of memory");
        return false;
    }
    char *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, seps, &save); ok && tok != NULL;
         tok = strtok_r(NULL, seps, &save)) {
        char *item = trim(tok);
        if (*item == '\0')
            continue;
        char why[512] = "";
        if (o->validate != NULL && !o->validate(item, why, sizeof(why))) {
            parse_fail(ps, line, o, "'%s': %s", item, why);
            ok = false;
        } else if (o->max > 0 && l->n >= (size_t)o->max) {
            parse_fail(ps, line, o, "at most %lld items", (long long)o->max);
            ok = false;
        } else if (!strlist_push(l, item)) {
            parse_fail(ps, line, o, "out of memory");
            ok = false;
        }
    }
    free(copy);
    return ok;
}

/* Parse one value of option o and store it in the config. */
static bool store_value(struct config_parse *ps, const struct opt *o, int line, const char *value)
{
    void *field = (char *)ps->cfg + o->offset;
    char why[512] = "";
    switch (o->type) {
    case OPT_STRING: {
        size_t len = strlen(value);
        if (len < (size_t)o->min || len > (size_t)o->max) {
            parse_fail(ps, line, o, "value must be %lld to %lld characters long", (long long)o->min,
                       (long long)o->max);
            return false;
        }
        if ((o->flags & OPT_NO_SECRET) && url_has_password(value)) {
            /* A secret is never a value in the file, and never echoed in the message. */
            parse_fail(ps, line, o,
                       "the URL holds a password, and secrets are not accepted in the "
                       "configuration file; put the user name in [%s] username and the password "
                       "in the file that [%s] password_file names, or use 'dirconnctl secret set "
                       "%s-password'",
                       o->section, o->section, o->section);
            return false;
        }
        /* Values that may continue on the next line are validated once complete. */
        bool deferred = (o->flags & OPT_JOIN_NONE) && line > 0;
        if (!deferred && o->validate != NULL && !o->validate(value, why, sizeof(why))) {
            parse_fail(ps, line, o, "'%s': %s", value, why);
            return false;
        }
        char *copy = strdup(value);
        if (copy == NULL) {
            parse_fail(ps, line, o, "out of memory");
            return false;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return true;
    }
    case OPT_BOOL:
        if (!parse_bool(value, (bool *)field)) {
            parse_fail(ps, line, o, "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)",
                       value);
            return false;
        }
        return true;
    case OPT_INT: {
        int64_t n = 0;
        if (!parse_int64(value, &n)) {
            parse_fail(ps, line, o, "'%s' is not an integer", value);
            return false;
        }
        if (n < o->min || n > o->max) {
            parse_fail(ps, line, o, "%lld is out of range (%lld to %lld)", (long long)n,
                       (long long)o->min, (long long)o->max);
            return false;
        }
        *(int *)field = (int)n;
        return true;
    }
    case OPT_DURATION: {
        int64_t ms = 0;
        if (!config_parse_duration(value, &ms)) {
            parse_fail(ps, line, o,
                       "'%s' is not a duration; give a number with a unit: ms, s, m, h or d "
                       "(e.g. 30s, 10m, 1h30m)",
                       value);
            return false;
        }
        if (ms < o->min || ms > o->max) {
            parse_fail(ps, line, o, "'%s' is out of range (%lldms to %lldms)", value,
                       (long long)o->min, (long long)o->max);
            return false;
        }
        *(int64_t *)field = ms;
        return true;
    }
    case OPT_ENUM:
        for (int i = 0; o->names[i] != NULL; i++) {
            if (strcasecmp(value, o->names[i]) == 0) {
                *(int *)field = i;
                return true;
            }
        }
        {
            char allowed[256] = "";
            for (int i = 0; o->names[i] != NULL; i++) {
                strncat(allowed, i ? ", " : "", sizeof(allowed) - strlen(allowed) - 1);
                strncat(allowed, o->names[i], sizeof(allowed) - strlen(allowed) - 1);
            }
            parse_fail(ps, line, o, "'%s' is not one of: %s", value, allowed);
        }
        return false;
    case OPT_LIST:
        return store_list(ps, o, line, value);
    case OPT_WEEKLY:
        if (!config_parse_weekly(value, (struct config_weekly *)field)) {
            parse_fail(ps, line, o,
                       "'%s' is not a schedule; use 'never', 'daily HH:MM' or days and a time "
                       "such as 'Sun 02:00' or 'Mon,Thu 23:30'",
                       value);
            return false;
        }
        return true;
    }
    return false;
}

/* Append a continuation line to a string option. */
static bool append_value(struct config_parse *ps, const struct opt *o, int line, const char *value)
{
    char **field = (char **)((char *)ps->cfg + o->offset);
    const char *prev = *field != NULL ? *field : "";
    size_t len = strlen(prev) + strlen(value) + 1;
    char *joined = malloc(len);
    if (joined == NULL) {
        parse_fail(ps, line, o, "out of memory");
        return false;
    }
    snprintf(joined, len, "%s%s", prev, value);
    char *saved = *field;
    *field = NULL;
    bool ok = store_value(ps, o, line, joined);
    if (ok)
        free(saved);
    else
        *field = saved;
    free(joined);
    return ok;
}

static bool add_mapping(struct config_parse *ps, int line, const char *key, const char *value)
{
    struct config *cfg = ps->cfg;
    if (ps->continuation && cfg->n_mappings > 0 &&
        strcmp(cfg->mappings[cfg->n_mappings - 1].scim_path, key) == 0) {
        struct config_mapping *m = &cfg->mappings[cfg->n_mappings - 1];
        size_t len = strlen(m->expression) + strlen(value) + 2;
        char *joined = malloc(len);
        if (joined == NULL)
            return parse_fail(ps, line, NULL, "out of memory") == DIRCONN_OK;
        snprintf(joined, len, "%s %s", m->expression, value);
        free(m->expression);
        m->expression = joined;
        return true;
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (strcmp(cfg->mappings[i].scim_path, key) == 0) {
            parse_fail(ps, line, NULL, "[mapping] %s: duplicate key (first set at line %d)", key,
                       cfg->mappings[i].line);
            return false;
        }
    }
    struct config_mapping *v = realloc(cfg->mappings, (cfg->n_mappings + 1) * sizeof(*v));
    if (v == NULL)
        return parse_fail(ps, line, NULL, "out of memory") == DIRCONN_OK;
    cfg->mappings = v;
    struct config_mapping *m = &cfg->mappings[cfg->n_mappings];
    m->scim_path = strdup(key);
    m->expression = strdup(value);
    m->line = line;
    cfg->n_mappings++;
    if (m->scim_path == NULL || m->expression == NULL)
        return parse_fail(ps, line, NULL, "out of memory") == DIRCONN_OK;
    return true;
}

static bool is_password_key(const char *key)
{
    size_t n = strlen(key);
    return (n >= 8 && strcasecmp(key + n - 8, "password") == 0) || strcasecmp(key, "secret") == 0 ||
           strcasecmp(key, "token") == 0;
}

/* inih handler: one name = value pair (or one continuation line of it). */
static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_parse *ps = user;
    int line = ps->line;
    if (ps->failed)
        return 0;

    for (int i = 0; free_sections[i] != NULL; i++) {
        if (strcasecmp(section, free_sections[i]) == 0)
            return add_mapping(ps, line, name, value) ? 1 : 0;
    }

    const struct opt *o = NULL;
    bool section_known = false;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcasecmp(options[i].section, section) == 0) {
            section_known = true;
            if (strcasecmp(options[i].key, name) == 0)
                o = &options[i];
        }
    }
    if (!section_known) {
        parse_fail(ps, line, NULL, "unknown section [%s]", section);
        return 0;
    }
    if (o == NULL) {
        if (is_password_key(name))
            parse_fail(ps, line, NULL,
                       "[%s] %s: secrets are not accepted in the configuration file; name a file "
                       "with %s_file or use 'dirconnctl secret set'",
                       section, name, name);
        else
            parse_fail(ps, line, NULL, "[%s] %s: unknown key", section, name);
        return 0;
    }
    size_t idx = (size_t)(o - options);

    if (ps->continuation && ps->last_opt == o && ps->set_line[idx] != 0) {
        if (o->type == OPT_LIST)
            return store_list(ps, o, line, value) ? 1 : 0;
        if (o->type == OPT_STRING && (o->flags & OPT_JOIN_NONE))
            return append_value(ps, o, line, value) ? 1 : 0;
        parse_fail(ps, line, o, "this key does not take continuation lines");
        return 0;
    }
    if (ps->set_line[idx] != 0) {
        parse_fail(ps, line, o, "duplicate key (first set at line %d)", ps->set_line[idx]);
        return 0;
    }
    ps->set_line[idx] = line;
    ps->last_opt = o;
    if (o->type == OPT_LIST)
        strlist_clear((struct strlist *)((char *)ps->cfg + o->offset)); /* drop the default */
    return store_value(ps, o, line, value) ? 1 : 0;
}

/*
 * inih reader: hands inih one line at a time so that ps->line is the number of
 * the line the handler is called for. A line longer than inih's buffer is
 * consumed whole and replaced by an empty line; config_parse_text reports it.
 */
static char *config_reader(char *str, int num, void *stream)
{
    struct config_parse *ps = stream;
    size_t cap = (size_t)num;
    size_t n = 0;
    bool got = false, eol = false;
    while (!eol) {
        int c;
        if (ps->fp != NULL) {
            c = fgetc(ps->fp);
        } else {
            c = *ps->text != '\0' ? (unsigned char)*ps->text++ : EOF;
        }
        if (c == EOF)
            break;
        got = true;
        if (c == '\n')
            eol = true;
        if (n + 1 < cap)
            str[n++] = (char)c;
        else if (!eol && ps->long_line == 0)
            ps->long_line = ps->line + 1;
    }
    if (!got)
        return NULL;
    ps->line++;
    if (ps->long_line == ps->line)
        n = 0;
    str[n] = '\0';
    ps->continuation = n > 0 && (str[0] == ' ' || str[0] == '\t');
    if (!ps->continuation)
        ps->last_opt = NULL;
    return str;
}

static void config_set_defaults(struct config_parse *ps)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].def != NULL)
            store_value(ps, &options[i], 0, options[i].def);
    }
}

/* The line where section.key was set, 0 when it kept its default. */
static int config_line_of(const struct config_parse *ps, const char *section, const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].key, key) == 0)
            return ps->set_line[i];
    }
    return 0;
}

/* [reports]: the keys that go together (connector/mailer.h). */
static void reports_cross_check(struct config_parse *ps)
{
    struct config *cfg = ps->cfg;
#define LINE_OF(sec, k) config_line_of(ps, sec, k)
    static const char *const keys[] = {"from",    "to",       "username", "password_file",
                                       "ca_file", "starttls", NULL};
    if (cfg->reports_smtp_url == NULL) {
        for (size_t i = 0; keys[i] != NULL && !ps->failed; i++)
            if (LINE_OF("reports", keys[i]) != 0)
                parse_fail(ps, LINE_OF("reports", keys[i]), NULL,
                           "[reports] %s is set but smtp_url is not (no mail is sent without it)",
                           keys[i]);
        return;
    }
    int url_line = LINE_OF("reports", "smtp_url");
    if (cfg->reports_from == NULL)
        parse_fail(ps, url_line, NULL, "[reports] smtp_url is set but from is not");
    else if (cfg->reports_to.n == 0)
        parse_fail(ps, url_line, NULL, "[reports] smtp_url is set but to names no recipient");
    else if ((cfg->reports_username == NULL) != (cfg->reports_password_file == NULL))
        parse_fail(ps,
                   cfg->reports_username != NULL ? LINE_OF("reports", "username")
                                                 : LINE_OF("reports", "password_file"),
                   NULL,
                   "[reports] username and password_file go together: set both or neither "
                   "(the password is never a value in the file)");
    else if (cfg->reports_username != NULL &&
             strncasecmp(cfg->reports_smtp_url, "smtps:", 6) != 0 &&
             cfg->reports_starttls != REPORTS_STARTTLS_REQUIRED)
        parse_fail(ps,
                   LINE_OF("reports", "starttls") != 0 ? LINE_OF("reports", "starttls")
                                                       : LINE_OF("reports", "username"),
                   NULL,
                   "[reports] username over smtp:// needs starttls = required (the password "
                   "would cross the network in clear), or use an smtps:// URL");
#undef LINE_OF
}

/*
 * [web]: TLS needs both files; a listener outside loopback needs TLS and a password
 * (issue 18: the page is never served in clear text or without authentication beyond
 * the host).
 */
static void web_cross_check(struct config_parse *ps)
{
    const struct config *cfg = ps->cfg;
    if ((cfg->web_tls_cert == NULL) != (cfg->web_tls_key == NULL)) {
        parse_fail(ps,
                   cfg->web_tls_cert != NULL ? config_line_of(ps, "web", "tls_cert")
                                             : config_line_of(ps, "web", "tls_key"),
                   NULL, "[web] tls_cert and tls_key go together: set both or neither");
        return;
    }
    const char *const keys[] = {"listen", "metrics_listen"};
    const char *const values[] = {cfg->web_listen, cfg->web_metrics_listen};
    for (int i = 0; i < 2 && !ps->failed; i++) {
        char host[300], why[128];
        int port = 0;
        bool loopback = false;
        if (values[i] == NULL ||
            !config_parse_listen(values[i], host, sizeof(host), &port, &loopback, why,
                                 sizeof(why)) ||
            loopback)
            continue;
        if (cfg->web_tls_cert == NULL || cfg->web_password_file == NULL)
            parse_fail(ps, config_line_of(ps, "web", keys[i]), NULL,
                       "[web] %s = %s is not a loopback address: it needs tls_cert, tls_key and "
                       "password_file (HTTPS with authentication)",
                       keys[i], values[i]);
    }
}

/* Checks that involve more than one key, run after the whole file was read. */
static void config_cross_check(struct config_parse *ps)
{
    struct config *cfg = ps->cfg;
    for (size_t i = 0; i < N_OPTIONS && !ps->failed; i++) {
        const struct opt *o = &options[i];
        /* Only string options hold a char * at their offset. */
        const char *value = o->type == OPT_STRING ? *(char **)((char *)cfg + o->offset) : NULL;
        char why[512] = "";
        if ((o->flags & OPT_REQUIRED) && ps->set_line[i] == 0)
            parse_fail(ps, 0, o, "required key is missing");
        else if ((o->flags & OPT_JOIN_NONE) && value != NULL && o->validate != NULL &&
                 !o->validate(value, why, sizeof(why)))
            parse_fail(ps, ps->set_line[i], o, "'%s': %s", value, why);
    }
#define LINE_OF(sec, k) config_line_of(ps, sec, k)
    /* Without bind_password_file the bind password comes from the secret store
     * (ldap-bind-password); without token_file the bearer token does (cloud-token). */
    if (!ps->failed && cfg->avatar_enabled && cfg->avatar_pattern == NULL)
        parse_fail(ps, LINE_OF("avatar", "enabled"), NULL,
                   "[avatar] enabled is yes but no pattern is set");
    if (!ps->failed && cfg->ha_lease == HA_LEASE_ETCD && cfg->ha_etcd_endpoints.n == 0)
        parse_fail(ps, LINE_OF("ha", "lease"), NULL, "[ha] lease = etcd needs etcd_endpoints");
    if (!ps->failed && (cfg->ha_etcd_cert_file == NULL) != (cfg->ha_etcd_key_file == NULL))
        parse_fail(ps,
                   cfg->ha_etcd_cert_file != NULL ? LINE_OF("ha", "etcd_cert_file")
                                                  : LINE_OF("ha", "etcd_key_file"),
                   NULL, "[ha] etcd_cert_file and etcd_key_file go together: set both or neither");
    if (!ps->failed && (cfg->ha_etcd_user == NULL) != (cfg->ha_etcd_password_file == NULL))
        parse_fail(ps,
                   cfg->ha_etcd_user != NULL ? LINE_OF("ha", "etcd_user")
                                             : LINE_OF("ha", "etcd_password_file"),
                   NULL,
                   "[ha] etcd_user and etcd_password_file go together: set both or neither "
                   "(the password is never a value in the file)");
    if (!ps->failed && cfg->ha_renew_interval_ms == 0)
        cfg->ha_renew_interval_ms = cfg->ha_lease_duration_ms / 3;
    if (!ps->failed && cfg->ha_renew_interval_ms >= cfg->ha_lease_duration_ms)
        parse_fail(ps, LINE_OF("ha", "renew_interval"), NULL,
                   "[ha] renew_interval must be shorter than lease_duration");
    if (!ps->failed && cfg->proxy_mode == PROXY_MODE_EXPLICIT && cfg->proxy_url == NULL)
        parse_fail(ps, LINE_OF("proxy", "mode"), NULL, "[proxy] mode = explicit needs url");
    if (!ps->failed && cfg->proxy_mode == PROXY_MODE_PAC && cfg->proxy_pac_url == NULL)
        parse_fail(ps, LINE_OF("proxy", "mode"), NULL, "[proxy] mode = pac needs pac_url");
    if (!ps->failed && cfg->proxy_password_file != NULL && cfg->proxy_username == NULL)
        parse_fail(ps, LINE_OF("proxy", "password_file"), NULL,
                   "[proxy] password_file is set but username is not");
    if (!ps->failed)
        reports_cross_check(ps);
    if (!ps->failed)
        web_cross_check(ps);
    /* docs/password-sync.md: the password listener takes mutual TLS only. */
    if (!ps->failed && cfg->pwsync_listen != NULL &&
        (cfg->pwsync_tls_cert == NULL || cfg->pwsync_tls_key == NULL ||
         cfg->pwsync_client_ca == NULL))
        parse_fail(ps, LINE_OF("pwsync", "listen"), NULL,
                   "[pwsync] listen needs tls_cert, tls_key and client_ca: password changes are "
                   "taken over mutual TLS only");
#undef LINE_OF
    if (!ps->failed && cfg->name == NULL) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "dirconn");
        cfg->name = strdup(host);
        if (cfg->name == NULL)
            parse_fail(ps, 0, NULL, "out of memory");
    }
}

static enum dirconn_err config_parse_text(struct config_parse *ps)
{
    config_set_defaults(ps);
    int rc = ini_parse_stream(config_reader, ps, config_handler, ps);
    /* Report whichever problem comes first in the file. */
    if (ps->long_line != 0 && (!ps->failed || ps->long_line < ps->fail_line)) {
        ps->failed = false;
        parse_fail(ps, ps->long_line, NULL,
                   "line longer than %d characters; split the value over indented continuation "
                   "lines",
                   CONFIG_MAX_LINE - 2);
    } else if (rc > 0 && (!ps->failed || rc < ps->fail_line)) {
        ps->failed = false;
        parse_fail(ps, rc, NULL, "syntax error: expected '[section]' or 'key = value'");
    } else if (rc < 0 && !ps->failed) {
        parse_fail(ps, 0, NULL, "cannot read the file");
    }
    if (!ps->failed)
        config_cross_check(ps);
    return ps->failed ? ps->err->code : DIRCONN_OK;
}

static enum dirconn_err config_load_common(struct config_parse *ps, const char *name,
                                           struct config **out, struct dirconn_error *err)
{
    struct dirconn_error local;
    dirconn_error_clear(&local);
    ps->err = err != NULL ? err : &local;
    ps->name = name;
    ps->cfg = calloc(1, sizeof(*ps->cfg));
    *out = NULL;
    if (ps->cfg == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "%s: out of memory", name);
    ps->cfg->path = strdup(name);
    enum dirconn_err rc = config_parse_text(ps);
    if (rc == DIRCONN_OK) {
        ps->cfg->key_lines = malloc(sizeof(ps->set_line));
        if (ps->cfg->key_lines == NULL)
            rc = dirconn_error_set(ps->err, DIRCONN_ENOMEM, "%s: out of memory", name);
        else
            memcpy(ps->cfg->key_lines, ps->set_line, sizeof(ps->set_line));
    }
    if (rc != DIRCONN_OK) {
        config_free(ps->cfg);
        return rc;
    }
    *out = ps->cfg;
    return DIRCONN_OK;
}

enum dirconn_err config_load(const char *path, struct config **out, struct dirconn_error *err)
{
    struct config_parse ps = {0};
    *out = NULL;
    ps.fp = fopen(path, "r");
    if (ps.fp == NULL)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: cannot open: %s", path, strerror(errno));
    enum dirconn_err rc = config_load_common(&ps, path, out, err);
    fclose(ps.fp);
    return rc;
}

enum dirconn_err config_load_string(const char *text, const char *name, struct config **out,
                                    struct dirconn_error *err)
{
    struct config_parse ps = {0};
    ps.text = text;
    return config_load_common(&ps, name, out, err);
}

/* Length-prefixed, so that no two configurations collide by concatenation. */
static void fp_update(EVP_MD_CTX *md, const void *data, size_t len)
{
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    EVP_DigestUpdate(md, n, sizeof(n));
    EVP_DigestUpdate(md, data, len);
}

static void fp_str(EVP_MD_CTX *md, const char *s)
{
    if (s == NULL)
        fp_update(md, "\xff", 1); /* unset differs from "" */
    else
        fp_update(md, s, strlen(s) + 1);
}

void config_fingerprint(const struct config *cfg, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char buf[96];
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    fp_str(md, "dirconn config 1");
    /* Sections that never reach a mapped record: how to run, log, serve, schedule, report. */
    static const char *const outside[] = {"log",    "web", "daemon", "schedule", "reports",
                                          "pwsync", "ha",  "proxy",  "policy",   NULL};
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        const void *field = (const char *)cfg + o->offset;
        bool skip = false;
        for (size_t k = 0; outside[k] != NULL; k++)
            skip = skip || strcmp(o->section, outside[k]) == 0;
        if (skip)
            continue;
        fp_str(md, o->section);
        fp_str(md, o->key);
        switch (o->type) {
        case OPT_STRING:
            fp_str(md, *(char *const *)field);
            break;
        case OPT_BOOL:
            fp_str(md, *(const bool *)field ? "1" : "0");
            break;
        case OPT_INT:
        case OPT_ENUM:
            snprintf(buf, sizeof(buf), "%d", *(const int *)field);
            fp_str(md, buf);
            break;
        case OPT_DURATION:
            snprintf(buf, sizeof(buf), "%lld", (long long)*(const int64_t *)field);
            fp_str(md, buf);
            break;
        case OPT_LIST: {
            const struct strlist *l = field;
            snprintf(buf, sizeof(buf), "%zu", l->n);
            fp_str(md, buf);
            for (size_t k = 0; k < l->n; k++)
                fp_str(md, l->v[k]);
            break;
        }
        case OPT_WEEKLY: {
            const struct config_weekly *w = field;
            snprintf(buf, sizeof(buf), "%u %d", w->days, w->minute);
            fp_str(md, buf);
            break;
        }
        }
    }
    snprintf(buf, sizeof(buf), "mappings %zu", cfg->n_mappings);
    fp_str(md, buf);
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        fp_str(md, cfg->mappings[i].scim_path);
        fp_str(md, cfg->mappings[i].expression);
    }
    digest_final_hex(md, hex);
    EVP_MD_CTX_free(md);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        void *field = (char *)cfg + options[i].offset;
        if (options[i].type == OPT_STRING)
            free(*(char **)field);
        else if (options[i].type == OPT_LIST)
            strlist_clear((struct strlist *)field);
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        free(cfg->mappings[i].scim_path);
        free(cfg->mappings[i].expression);
    }
    free(cfg->mappings);
    free(cfg->key_lines);
    free(cfg->path);
    free(cfg);
}

const char *config_ha_lease_name(enum ha_lease_backend b)
{
    return b >= HA_LEASE_CLOUD && b <= HA_LEASE_NONE ? ha_lease_names[b] : NULL;
}
