/*
 * config.h - the dirconn configuration file (INI, parsed with inih).
 *
 * One file, sections per concern; every key, its type, default and bounds live
 * in one options table in config.c (the pattern of redis config.c and SSSD's
 * ldap_opts.c) and are documented in docs/configuration.md. Unknown sections
 * or keys, duplicate keys, bad values, durations without a unit, inline
 * passwords and missing required keys are errors naming file:line and the key.
 *
 * A reload parses into a new struct config and the caller swaps it in only if
 * config_load() succeeded; a config is never modified after loading.
 */
#ifndef DIRCONN_CONFIG_H
#define DIRCONN_CONFIG_H

#include "connector/core/error.h"
#include "connector/core/strlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * When dirconnd applies a changed value (docs/configuration.md, column "reload"; the
 * pattern of redis's per-option flags):
 */
enum config_reload {
    CONFIG_RELOAD_NOW = 0, /* at the reload itself (SIGHUP): timers, log, mail, notifications */
    CONFIG_RELOAD_RUN,     /* read by each sync run: the next run uses it, a running one not */
    CONFIG_RELOAD_RESTART, /* kept by a part started once (listeners, socket, HA lease client,
                              state directory): only after dirconnd restarts */
};

enum change_tracking {
    CHANGE_TRACKING_AUTO = 0,
    CHANGE_TRACKING_DIRSYNC,  /* AD DirSync control 1.2.840.113556.1.4.841 */
    CHANGE_TRACKING_USN,      /* uSNChanged polling against one DC */
    CHANGE_TRACKING_SYNCREPL, /* RFC 4533 content synchronisation */
};

enum cloud_auth_mode { CLOUD_AUTH_OAUTH2 = 0, CLOUD_AUTH_BEARER };
enum ha_lease_backend { HA_LEASE_CLOUD = 0, HA_LEASE_ETCD, HA_LEASE_NONE };
/* [reports] starttls on smtp:// URLs (smtps:// is TLS from the first byte). */
enum reports_starttls {
    REPORTS_STARTTLS_REQUIRED = 0,  /* STARTTLS (RFC 3207) or no mail: CURLUSESSL_ALL */
    REPORTS_STARTTLS_OPPORTUNISTIC, /* STARTTLS when the server offers it: CURLUSESSL_TRY */
    REPORTS_STARTTLS_OFF,           /* plain SMTP (a relay on the same host) */
};
enum proxy_mode { PROXY_MODE_AUTO = 0, PROXY_MODE_PAC, PROXY_MODE_EXPLICIT, PROXY_MODE_NONE };
enum proxy_auth {
    PROXY_AUTH_ANY = 0,
    PROXY_AUTH_BASIC,
    PROXY_AUTH_DIGEST,
    PROXY_AUTH_NTLM,
    PROXY_AUTH_NEGOTIATE
};

/* One [mapping] line: SCIM attribute path = expression over directory attributes. */
struct config_mapping {
    char *scim_path;  /* e.g. "displayName", "name.givenName" */
    char *expression; /* e.g. "givenName sn"; parsed by the mapping module */
    int line;         /* line in the file, for error messages */
};

/* A weekly schedule: a set of days and a time of day ("Sun 02:00", "Mon,Thu 23:30", "daily 03:00").
 */
struct config_weekly {
    unsigned days; /* bit 0 = Sunday ... bit 6 = Saturday; 0 = never */
    int minute;    /* minutes after local midnight, 0..1439 */
};

/* Which object kind a [users]/[groups]/[contacts] section describes. */
struct config_scope {
    struct strlist base_dns; /* containers or OUs; empty = the whole naming context */
    char *filter;            /* extra LDAP filter (RFC 4515), ANDed with the default; NULL = none */
    bool enabled;            /* sync this kind at all */
};

struct config {
    char *path;     /* the file this was loaded from */
    int *key_lines; /* per options-table row: the line that set it, 0 = its default
                       (config_key_line) */

    /* [connector] */
    char *name;           /* connector name shown in the cloud; default: the host name */
    char *state_dir;      /* state database, secret store */
    char *key_file;       /* secret store key; NULL = <state_dir>/secret.key */
    int state_cache_size; /* MiB of SQLite page cache, database and temp tables each (state.h) */

    /* [ldap] */
    struct strlist urls; /* preferred domain controllers, in order (ldap:// or ldaps://) */
    char *bind_dn;
    char *bind_password_file;
    char *ca_file;
    bool start_tls;     /* StartTLS on ldap:// URLs (RFC 4513 3) */
    bool tls_insecure;  /* skip certificate verification (labs only; logged as a warning) */
    char *base_dn;      /* domain or AD LDS partition; NULL = the server's defaultNamingContext */
    int page_size;      /* RFC 2696 page size */
    int64_t timeout_ms; /* network and operation timeout */
    enum change_tracking change_tracking;

    /* [users] */
    struct config_scope users;
    bool users_enabled_only;
    struct strlist users_security_groups; /* DNs of groups whose direct members are in scope */
    struct strlist users_required_attributes;
    bool users_sync_proxy_addresses;       /* smtp: values of proxyAddresses become emails of type
                                              "other" (Rackspace SyncProxyAddresses) */
    struct strlist users_accepted_domains; /* domains an alias may have; empty = the user's mail
                                              domain */

    /* [groups] */
    struct config_scope groups;

    /* [contacts] */
    struct config_scope contacts;

    /* [mapping] */
    struct config_mapping *mappings;
    size_t n_mappings;

    /* [avatar] */
    bool avatar_enabled;
    char *avatar_pattern;

    /* [policy] */
    int delete_threshold;
    bool delete_threshold_enabled;

    /* [schedule] */
    int64_t incremental_interval_ms;
    struct config_weekly full_sync;
    bool notifications;

    /* [cloud] */
    char *cloud_url; /* control API base URL */
    char *cloud_org;
    char *cloud_scim_url; /* SCIM base URL; default <url>/scim/v2/<org> */
    enum cloud_auth_mode cloud_auth;
    char *cloud_client_id;          /* connector id for OAuth 2.0 client credentials */
    char *cloud_client_secret_file; /* file holding the connector secret */
    char *cloud_token_file;         /* bearer token file (auth = bearer) */
    char *cloud_ca_file;
    bool cloud_delete_cascades; /* the provider removes a deleted resource from groups and managers
                                 */
    int cloud_max_payload;      /* bytes per request body; 0: bulk.maxPayloadSize, else 1 MiB */
    int cloud_patch_max_operations;     /* operations per PATCH request */
    struct strlist cloud_single_valued; /* multi-valued User attributes the provider takes one
                                           value of (RFC 7643 4.1.2 names) */

    /* [ha] */
    enum ha_lease_backend ha_lease;
    struct strlist ha_etcd_endpoints;
    char *ha_etcd_ca_file;       /* PEM CA bundle for https endpoints; NULL = system store */
    char *ha_etcd_cert_file;     /* PEM client certificate (with ha_etcd_key_file) */
    char *ha_etcd_key_file;      /* PEM private key of the client certificate */
    char *ha_etcd_user;          /* etcd authentication user (with ha_etcd_password_file) */
    char *ha_etcd_password_file; /* the user's password, one line, mode 0600 or stricter */
    int64_t ha_lease_duration_ms;
    int64_t ha_renew_interval_ms; /* 0 = a third of the lease duration */
    int64_t ha_failover_interval_ms;
    int64_t ha_jitter_ms; /* random 0..jitter added to a standby's wait before it acquires */

    /* [proxy] */
    enum proxy_mode proxy_mode;
    char *proxy_pac_url;
    char *proxy_url;
    char *proxy_username;
    char *proxy_password_file;
    enum proxy_auth proxy_auth;
    char *proxy_no_proxy;
    int64_t proxy_pac_ttl_ms; /* how long a resolved proxy list is kept per host */

    /* [reports] sync reports and alerts by email (connector/mailer.h); off without smtp_url */
    char *reports_smtp_url;        /* smtp:// or smtps:// URL of the submission server */
    char *reports_from;            /* envelope and header sender address */
    struct strlist reports_to;     /* recipient addresses */
    int64_t reports_interval_ms;   /* the periodic summary ("Send Reports per... time"); 0 = none */
    int64_t reports_no_success_ms; /* alert when no sync succeeded for this long; 0 = never */
    int reports_starttls;          /* enum reports_starttls */
    char *reports_ca_file;         /* PEM CA bundle for the SMTP server; NULL = system store */
    char *reports_username;        /* SMTP AUTH user (with reports_password_file) */
    char *reports_password_file;   /* the SMTP AUTH password, one line */
    int64_t reports_timeout_ms;    /* longest time one delivery attempt may take */
    int reports_retries;           /* further attempts after a failed delivery */
    /* [web] (admin/web.h): the status page and /metrics; NULL listen = off */
    char *web_listen;         /* "127.0.0.1:8080", "[::1]:8080"; numeric host */
    char *web_metrics_listen; /* /metrics on its own listener, or NULL = on listen */
    char *web_tls_cert;       /* PEM certificate chain; with tls_key: HTTPS */
    char *web_tls_key;        /* PEM private key */
    char *web_username;       /* HTTP Basic user name (default "admin") */
    char *web_password_file;  /* the password (Basic) or bearer token; NULL = no actions */
    /* [pwsync] (docs/password-sync.md) */
    char *pwsync_listen;    /* HOST:PORT of the password change listener; NULL = off */
    char *pwsync_tls_cert;  /* PEM server certificate chain */
    char *pwsync_tls_key;   /* PEM private key */
    char *pwsync_client_ca; /* PEM CA(s) whose client certificates are accepted */

    /* [log] */
    int log_level;  /* enum log_level */
    int log_target; /* enum log_target */

    /* [daemon] */
    char *daemon_socket;                /* admin socket; NULL = <state_dir>/dirconnd.sock */
    int64_t daemon_debounce_ms;         /* wait after a change notification before syncing */
    int64_t daemon_notify_retry_max_ms; /* longest wait between notification reconnections */
    /* while a bind is refused: how often to look for a change of the configuration or password */
    int64_t daemon_refused_bind_check_ms;
};

/*
 * config_load - read and validate a configuration file.
 *
 * path: the INI file. On success *out receives a new config owned by the
 * caller (free with config_free) and DIRCONN_OK is returned. On failure *out
 * is NULL, err holds one line "FILE:LINE: [section] key: cause" (or
 * "FILE: cause" for errors without a line) and the code is DIRCONN_ECONFIG
 * (DIRCONN_EIO when the file cannot be read, DIRCONN_ENOMEM).
 *
 * Long values may be split over indented continuation lines (inih multi-line
 * values): list keys take one item per line, filters and expressions are
 * joined without a separator, other keys reject continuations.
 */
enum dirconn_err config_load(const char *path, struct config **out, struct dirconn_error *err);

/*
 * config_load_string - as config_load, from a NUL-terminated buffer. name is
 * used in error messages in place of the file name (e.g. "<embedded>").
 */
enum dirconn_err config_load_string(const char *text, const char *name, struct config **out,
                                    struct dirconn_error *err);

/* config_free - free a config and everything it owns. cfg may be NULL. */
void config_free(struct config *cfg);

/*
 * config_fingerprint - a hex SHA-256 (OpenSSL EVP), into hex[65], over the
 * value of every key of the options table (defaults included, in the table's
 * order, each with its section and key name) and every [mapping] line,
 * leaving out the sections that never reach a mapped record ([log], [web],
 * [daemon], [schedule], [reports], [pwsync], [ha], [proxy], [policy]): two
 * configurations have the same fingerprint exactly when the other sections
 * hold the same values. The state's raw hashes (state.h, raw_hash) include
 * it: any change there ([connector], [ldap], [users], [groups], [contacts],
 * [avatar], [cloud], [mapping]), a key that does not touch records included,
 * makes the next full sync map every object again.
 */
void config_fingerprint(const struct config *cfg, char hex[65]);

/* config_ha_lease_name - "cloud", "etcd" or "none" ([ha] lease); NULL for another value. */
const char *config_ha_lease_name(enum ha_lease_backend b);

/*
 * config_parse_duration - parse a duration with units ("500ms", "30s", "10m",
 * "1h30m", "2d"); a bare number is rejected. Returns true and stores
 * milliseconds in *ms on success.
 */
bool config_parse_duration(const char *text, int64_t *ms);

/*
 * config_parse_weekly - parse a weekly schedule: "never", "daily HH:MM", or a
 * comma-separated list of English day abbreviations (Sun..Sat) and "HH:MM".
 * Returns true on success.
 */
bool config_parse_weekly(const char *text, struct config_weekly *out);

/*
 * config_parse_listen - split a listen address "HOST:PORT" or "[IPV6]:PORT"
 * (numeric host, port 1-65535) with getaddrinfo(AI_NUMERICHOST). On success
 * stores the host (without brackets) in host (hostlen bytes), the port in
 * *port, whether the address is a loopback one (127.0.0.0/8, ::1) in
 * *loopback, and returns true; else false with the cause in why.
 */
bool config_parse_listen(const char *text, char *host, size_t hostlen, int *port, bool *loopback,
                         char *why, size_t whylen);

/*
 * config_key_count / config_key_at - enumerate the options table (used by the
 * test that checks docs/configuration.md documents every key). config_key_at
 * stores static strings in *section and *key and returns false past the end.
 * The free-form [mapping] section is not in the table.
 */
size_t config_key_count(void);
bool config_key_at(size_t i, const char **section, const char **key);

/* One row of the options table, as config_key_info describes it (static strings). */
struct config_key_info {
    const char *section;
    const char *key;
    const char *type; /* "string", "boolean", "integer", "duration", "enum", "list", "schedule" */
    const char *def;  /* the default in the file's syntax; NULL = none (unset, or computed:
                         the host name, <state_dir>/..., a third of lease_duration) */
    bool secret_file; /* the value names a file whose content is a secret: the path is shown,
                         the content never read by config_value_text */
    enum config_reload reload;
    const char *doc; /* one line; docs/configuration.md holds the whole text */
};

/* config_key_info - describe row i of the options table; false past the end. */
bool config_key_info(size_t i, struct config_key_info *out);

/* config_reload_name - "now", "next-run" or "restart"; NULL for another value. */
const char *config_reload_name(enum config_reload r);

/*
 * config_key_line - the line of cfg's file that set row i of the options table,
 * 0 when the key kept its default (or i is past the end).
 */
int config_key_line(const struct config *cfg, size_t i);

/* config_key_find - the row of section.key (case-insensitive) in *i; false if none. */
bool config_key_find(const char *section, const char *key, size_t *i);

/*
 * config_value_text - the effective value of row i in the file's syntax: booleans
 * yes/no, durations with units ("10m", "1h30m", "250ms"), schedules ("Sun 02:00",
 * "daily 03:00", "never"), lists joined by "; " (DN lists) or " ". On success
 * returns true and *out is a malloc'd string (free()) or NULL when the key is
 * unset; false when out of memory or i is past the end. No configuration key
 * holds a secret (the loader refuses them), so every value may be shown.
 */
bool config_value_text(const struct config *cfg, size_t i, char **out);

/*
 * config_restart_changes - call fn(arg, section, key) for each key of the
 * CONFIG_RELOAD_RESTART class whose value differs between running (the
 * configuration dirconnd started with) and fresh (a reload). Returns how many
 * differ. Both configs are only read.
 */
size_t config_restart_changes(const struct config *running, const struct config *fresh,
                              void (*fn)(void *arg, const char *section, const char *key),
                              void *arg);

#endif
