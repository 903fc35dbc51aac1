/* Unit tests for connector/core/config.c: defaults, values, and errors with file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/config.h"
#include "connector/config_view.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MINIMAL "[ldap]\nurls = ldaps://dc1.example.com ldap://dc2.example.com:3389\n"

static struct config *load_ok(const char *text)
{
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = config_load_string(text, "test.conf", &cfg, &err);
    if (rc != DIRCONN_OK)
        fail_msg("unexpected error: %s", err.msg);
    assert_non_null(cfg);
    return cfg;
}

/* Loads text expecting an error; returns the message in a static-free buffer of the caller. */
static void load_fail(const char *text, const char *expect)
{
    struct config *cfg = (struct config *)1;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    enum dirconn_err rc = config_load_string(text, "test.conf", &cfg, &err);
    assert_int_equal(rc, DIRCONN_ECONFIG);
    assert_null(cfg);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, expect);
    assert_null(strchr(err.msg, '\n'));
}

/* [ldap] bind_dn takes the names AD accepts for a simple bind: a DN, user@domain, DOMAIN\\user. */
static void test_bind_names(void **state)
{
    (void)state;
    static const char *const good[] = {
        "CN=Sync,OU=Service Accounts,DC=example,DC=com",
        "CN=svc@example.com,OU=x,DC=example,DC=com", /* an '@' inside a DN value */
        "svc-dirconn@dirconn.test",
        "first.last@corp.example.com",
        "svc@CORP",
        "DIRCONN\\svc-dirconn",
        "CORP-EU\\First Last",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), MINIMAL "bind_dn = %s\n", good[i]);
        struct config *cfg = load_ok(text);
        assert_string_equal(cfg->bind_dn, good[i]);
        config_free(cfg);
    }
    static const struct {
        const char *value, *why;
    } bad[] = {
        {"svc-dirconn", "expected a distinguished name"},
        {"CN=x,,DC=y", "not a valid distinguished name"},
        {"@example.com", "a user principal name is user@dns.domain"},
        {"svc@", "a user principal name is user@dns.domain"},
        {"svc@exa mple.com", "a user principal name is user@dns.domain"},
        {"svc@example..com", "a user principal name is user@dns.domain"},
        {"svc@example.com.", "a user principal name is user@dns.domain"},
        {"svc@example-.com", "a user principal name is user@dns.domain"},
        {"svc@-example.com", "a user principal name is user@dns.domain"},
        {"svc@example.com-", "a user principal name is user@dns.domain"},
        {"\\svc", "the domain of DOMAIN\\user"},
        {"NETBIOSNAMETOOLONG\\svc", "the domain of DOMAIN\\user"},
        {"COR*P\\svc", "the domain of DOMAIN\\user"},
        {"CORP\\", "the user of DOMAIN\\user"},
        {"CORP\\a\\b", "the user of DOMAIN\\user"},
        {"CORP\\svc@example.com", "the user of DOMAIN\\user"},
        {"svc\tx@example.com", "control characters are not allowed"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], expect[256];
        snprintf(text, sizeof(text), MINIMAL "bind_dn = %s\n", bad[i].value);
        snprintf(expect, sizeof(expect), "test.conf:3: [ldap] bind_dn: '%s': %s", bad[i].value,
                 bad[i].why);
        load_fail(text, expect);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    assert_int_equal(cfg->urls.n, 2);
    assert_string_equal(cfg->urls.v[0], "ldaps://dc1.example.com");
    assert_string_equal(cfg->urls.v[1], "ldap://dc2.example.com:3389");
    assert_int_equal(cfg->page_size, 500);
    assert_int_equal(cfg->state_cache_size, 16);
    assert_true(cfg->start_tls);
    assert_false(cfg->tls_insecure);
    assert_int_equal(cfg->timeout_ms, 30000);
    assert_int_equal(cfg->delete_threshold, 20);
    assert_true(cfg->delete_threshold_enabled);
    assert_int_equal(cfg->incremental_interval_ms, 600000);
    assert_int_equal(cfg->full_sync.days, 1u);
    assert_int_equal(cfg->full_sync.minute, 120);
    assert_int_equal(cfg->ha_lease_duration_ms, 30000);
    assert_int_equal(cfg->ha_renew_interval_ms, 10000);
    assert_int_equal(cfg->change_tracking, CHANGE_TRACKING_AUTO);
    assert_int_equal(cfg->users_required_attributes.n, 1);
    assert_string_equal(cfg->users_required_attributes.v[0], "mail");
    assert_string_equal(cfg->state_dir, "/var/lib/dirconn");
    assert_non_null(cfg->name);
    assert_true(cfg->users.enabled);
    assert_true(cfg->groups.enabled);
    assert_null(cfg->base_dn);
    config_free(cfg);
}

static void test_values(void **state)
{
    (void)state;
    struct config *cfg = load_ok("; a comment\n"
                                 "[connector]\nname = conn-a\nstate_dir = /tmp/x\n"
                                 "[ldap]\nurls = ldap://a\n"
                                 "bind_dn = CN=Sync,OU=Service Accounts,DC=example,DC=com\n"
                                 "bind_password_file = /etc/dirconn/bind.pw\n"
                                 "base_dn = DC=example,DC=com\npage_size = 1000\n"
                                 "timeout = 1m30s\nchange_tracking = DirSync\nstart_tls = off\n"
                                 "[users]\nbase_dns = OU=Employees,DC=example,DC=com\n"
                                 "  OU=Contractors,DC=example,DC=com\n"
                                 "filter = (&(objectClass=user)\n  (mail=*))\n"
                                 "security_groups = CN=Cloud Users,OU=Groups,DC=example,DC=com;"
                                 "CN=Other,DC=example,DC=com\n"
                                 "[mapping]\ndisplayName = givenName sn\nname.familyName = sn\n"
                                 "[schedule]\nfull_sync = Mon,Thu 23:30\n"
                                 "[cloud]\nsingle_valued = emails phoneNumbers\n"
                                 "[ha]\nlease_duration = 15s\n");
    assert_string_equal(cfg->name, "conn-a");
    assert_int_equal(cfg->page_size, 1000);
    assert_int_equal(cfg->timeout_ms, 90000);
    assert_int_equal(cfg->change_tracking, CHANGE_TRACKING_DIRSYNC);
    assert_false(cfg->start_tls);
    assert_int_equal(cfg->users.base_dns.n, 2);
    assert_string_equal(cfg->users.base_dns.v[1], "OU=Contractors,DC=example,DC=com");
    assert_string_equal(cfg->users.filter, "(&(objectClass=user)(mail=*))");
    assert_int_equal(cfg->users_security_groups.n, 2);
    assert_string_equal(cfg->users_security_groups.v[0],
                        "CN=Cloud Users,OU=Groups,DC=example,DC=com");
    assert_int_equal(cfg->n_mappings, 2);
    assert_string_equal(cfg->mappings[0].scim_path, "displayName");
    assert_string_equal(cfg->mappings[0].expression, "givenName sn");
    assert_int_equal(cfg->mappings[0].line, 21);
    assert_int_equal(cfg->full_sync.days, (1u << 1) | (1u << 4));
    assert_int_equal(cfg->full_sync.minute, 23 * 60 + 30);
    assert_int_equal(cfg->ha_renew_interval_ms, 5000);
    assert_int_equal(cfg->cloud_single_valued.n, 2);
    assert_string_equal(cfg->cloud_single_valued.v[1], "phoneNumbers");
    assert_false(cfg->users_sync_proxy_addresses); /* SyncProxyAddresses defaults to False */
    assert_int_equal(cfg->users_accepted_domains.n, 0);
    config_free(cfg);
    cfg = load_ok(MINIMAL "[users]\nsync_proxy_addresses = yes\n"
                          "accepted_domains = example.com, example.org xn--bcher-kva.example\n");
    assert_true(cfg->users_sync_proxy_addresses);
    assert_int_equal(cfg->users_accepted_domains.n, 3);
    assert_string_equal(cfg->users_accepted_domains.v[1], "example.org");
    config_free(cfg);
}

static void test_errors_name_file_line(void **state)
{
    (void)state;
    load_fail(MINIMAL "[ldap]\nbogus = 1\n", "test.conf:4: [ldap] bogus: unknown key");
    load_fail(MINIMAL "[ldpa]\nurls = ldap://x\n", "test.conf:4: unknown section [ldpa]");
    load_fail(MINIMAL "[schedule]\nincremental_interval = 600\n",
              "test.conf:4: [schedule] incremental_interval: '600' is not a duration");
    load_fail(MINIMAL "page_size = 0\n", "test.conf:3: [ldap] page_size: 0 is out of range");
    load_fail(MINIMAL "page_size = ten\n",
              "test.conf:3: [ldap] page_size: 'ten' is not an integer");
    load_fail("[connector]\nstate_cache_size = 0\n" MINIMAL,
              "test.conf:2: [connector] state_cache_size: 0 is out of range (1 to 4096)");
    load_fail("[connector]\n\nstate_cache_size = 16MiB\n" MINIMAL,
              "test.conf:3: [connector] state_cache_size: '16MiB' is not an integer");
    load_fail("[connector]\nstate_cache_size = 4097\n" MINIMAL,
              "test.conf:2: [connector] state_cache_size: 4097 is out of range (1 to 4096)");
    {
        struct config *cfg = load_ok("[connector]\nstate_cache_size = 64\n" MINIMAL);
        assert_int_equal(cfg->state_cache_size, 64);
        config_free(cfg);
    }
    load_fail(MINIMAL "urls = ldap://y\n",
              "test.conf:3: [ldap] urls: duplicate key (first set at line 2)");
    load_fail(MINIMAL "bind_password = hunter2\n",
              "test.conf:3: [ldap] bind_password: secrets are not accepted");
    load_fail(MINIMAL "[proxy]\nmode = explicit\nurl = http://alice:hunter2@proxy.example:3128\n",
              "test.conf:5: [proxy] url: the URL holds a password, and secrets are not accepted");
    load_fail(
        MINIMAL "[users]\nfilter = (&(objectClass=user)(mail=*)\n",
        "test.conf:4: [users] filter: '(&(objectClass=user)(mail=*)': not a valid LDAP filter");
    load_fail(MINIMAL "base_dn = not a dn\n",
              "test.conf:3: [ldap] base_dn: 'not a dn': not a valid distinguished name");
    load_fail("[ldap]\nurls = http://dc1\n",
              "test.conf:2: [ldap] urls: 'http://dc1': not a valid LDAP URL");
    load_fail(MINIMAL "start_tls = maybe\n",
              "test.conf:3: [ldap] start_tls: 'maybe' is not a boolean");
    load_fail(MINIMAL "change_tracking = magic\n",
              "'magic' is not one of: auto, dirsync, usn, syncrepl");
    load_fail(MINIMAL "this line has no equals sign\n", "test.conf:3: syntax error");
    load_fail("[connector]\nname = a\n", "test.conf: [ldap] urls: required key is missing");
    load_fail(MINIMAL "page_size = 10\n  20\n",
              "test.conf:4: [ldap] page_size: this key does not take continuation lines");
    load_fail(MINIMAL "[schedule]\nfull_sync = Funday 02:00\n",
              "test.conf:4: [schedule] full_sync");
    load_fail(MINIMAL "[cloud]\nurl = ftp://cloud\n", "test.conf:4: [cloud] url: 'ftp://cloud'");
    load_fail(
        MINIMAL "[cloud]\nsingle_valued = emails phoneNumber\n",
        "test.conf:4: [cloud] single_valued: 'phoneNumber': not a multi-valued User attribute");
    load_fail(MINIMAL "[users]\nsync_proxy_addresses = perhaps\n",
              "test.conf:4: [users] sync_proxy_addresses: 'perhaps' is not a boolean");
    load_fail(MINIMAL "[users]\naccepted_domains = example.com localhost\n",
              "test.conf:4: [users] accepted_domains: 'localhost': not a mail domain");
    load_fail(MINIMAL "[users]\naccepted_domains = example.com, -bad.example.org\n",
              "test.conf:4: [users] accepted_domains: '-bad.example.org': not a mail domain");
    load_fail(MINIMAL "[users]\naccepted_domains = a..example.com\n",
              "test.conf:4: [users] accepted_domains: 'a..example.com': not a mail domain");
    load_fail(MINIMAL "[ha]\nlease_duration = 3s\nrenew_interval = 3s\n",
              "test.conf:5: [ha] renew_interval must be shorter than lease_duration");
    load_fail(MINIMAL "[mapping]\ndisplayName = a\ndisplayName = b\n",
              "test.conf:5: [mapping] displayName: duplicate key (first set at line 4)");
    /* the password listener: mutual TLS only */
    load_fail(MINIMAL "[pwsync]\nlisten = 127.0.0.1:8732\n",
              "test.conf:4: [pwsync] listen needs tls_cert, tls_key and client_ca");
    load_fail(MINIMAL "[pwsync]\nlisten = 127.0.0.1:8732\ntls_cert = c.pem\ntls_key = k.pem\n",
              "test.conf:4: [pwsync] listen needs tls_cert, tls_key and client_ca");
    struct config *cfg = load_ok(MINIMAL "[pwsync]\nlisten = 127.0.0.1:8732\ntls_cert = c.pem\n"
                                         "tls_key = k.pem\nclient_ca = ca.pem\n");
    assert_string_equal(cfg->pwsync_client_ca, "ca.pem");
    config_free(cfg);
    cfg = load_ok(MINIMAL);
    assert_null(cfg->pwsync_listen); /* off by default */
    config_free(cfg);
}

/* A proxy URL with a password is refused at its line, and the password is not echoed. */
static void test_proxy_url_password(void **state)
{
    (void)state;
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(config_load_string(MINIMAL "[proxy]\nmode = explicit\n"
                                                "url = http://alice:hunter2@proxy.example:3128\n",
                                        "test.conf", &cfg, &err),
                     DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "test.conf:5: [proxy] url:"));
    assert_non_null(strstr(err.msg, "[proxy] password_file"));
    assert_null(strstr(err.msg, "hunter2"));
    /* A user name alone is no secret. */
    assert_int_equal(config_load_string(MINIMAL "[proxy]\nmode = explicit\n"
                                                "url = http://alice@proxy.example:3128\n",
                                        "test.conf", &cfg, &err),
                     DIRCONN_OK);
    config_free(cfg);
}

/* Secrets may come from the secret store: no *_file key is required for them. */
static void test_secrets_from_store(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL "bind_dn = CN=x,DC=y\n[cloud]\nauth = bearer\n"
                                         "[connector]\nkey_file = /etc/dirconn/secret.key\n");
    assert_null(cfg->bind_password_file);
    assert_null(cfg->cloud_token_file);
    assert_string_equal(cfg->key_file, "/etc/dirconn/secret.key");
    config_free(cfg);
    cfg = load_ok(MINIMAL);
    assert_null(cfg->key_file); /* <state_dir>/secret.key */
    config_free(cfg);
}

static void test_long_line(void **state)
{
    (void)state;
    char text[1024];
    char filter[400];
    memset(filter, 'x', sizeof(filter) - 1);
    filter[sizeof(filter) - 1] = '\0';
    snprintf(text, sizeof(text), MINIMAL "[users]\nfilter = (cn=%s)\n", filter);
    load_fail(text, "test.conf:4: line longer than");
}

static void test_durations_and_weekly(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_true(config_parse_duration("500ms", &ms));
    assert_int_equal(ms, 500);
    assert_true(config_parse_duration("1h30m", &ms));
    assert_int_equal(ms, 5400000);
    assert_true(config_parse_duration("2d", &ms));
    assert_int_equal(ms, 172800000);
    assert_false(config_parse_duration("30", &ms));
    assert_false(config_parse_duration("", &ms));
    assert_false(config_parse_duration("5 s", &ms));
    assert_false(config_parse_duration("5w", &ms));
    assert_false(config_parse_duration("-5s", &ms));

    struct config_weekly w;
    assert_true(config_parse_weekly("daily 03:15", &w));
    assert_int_equal(w.days, 0x7f);
    assert_int_equal(w.minute, 195);
    assert_true(config_parse_weekly("never", &w));
    assert_int_equal(w.days, 0);
    assert_true(config_parse_weekly("Saturday 00:00", &w));
    assert_int_equal(w.days, 1u << 6);
    assert_false(config_parse_weekly("Sun 24:00", &w));
    assert_false(config_parse_weekly("Sun 2:00", &w));
    assert_false(config_parse_weekly("Sunn 02:00", &w));
}

static void test_file_errors(void **state)
{
    (void)state;
    struct config *cfg = NULL;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    assert_int_equal(config_load("/nonexistent/dirconn.conf", &cfg, &err), DIRCONN_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/dirconn.conf: cannot open"));

    char path[] = "/tmp/dirconn-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(MINIMAL "\n[users]\nenabled_only = sometimes\n", fp);
    fclose(fp);
    assert_int_equal(config_load(path, &cfg, &err), DIRCONN_ECONFIG);
    char expect[128];
    snprintf(expect, sizeof(expect), "%s:5: [users] enabled_only", path);
    assert_non_null(strstr(err.msg, expect));
    unlink(path);
}

/* docs/configuration.md must document every key of the options table. */
static void test_every_key_documented(void **state)
{
    (void)state;
    const char *src = getenv("DIRCONN_SOURCE_DIR");
    if (src == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    doc[n] = '\0';
    fclose(fp);
    const char *section = NULL, *key = NULL;
    for (size_t i = 0; config_key_at(i, &section, &key); i++) {
        char sect[64], row[96];
        snprintf(sect, sizeof(sect), "## [%s]", section);
        snprintf(row, sizeof(row), "| `%s` |", key);
        const char *s = strstr(doc, sect);
        if (s == NULL)
            fail_msg("docs/configuration.md has no section '%s'", sect);
        const char *next = strstr(s + 1, "\n## ");
        const char *r = strstr(s, row);
        if (r == NULL || (next != NULL && r > next))
            fail_msg("docs/configuration.md does not document [%s] %s", section, key);
    }
    assert_int_equal(config_key_count() > 40, 1);
}

/* The example file in docs/configuration.md must load. */
static void test_documented_example_loads(void **state)
{
    (void)state;
    const char *src = getenv("DIRCONN_SOURCE_DIR");
    if (src == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    doc[n] = '\0';
    fclose(fp);
    char *start = strstr(doc, "```ini\n");
    assert_non_null(start);
    start += 7;
    char *end = strstr(start, "```");
    assert_non_null(end);
    *end = '\0';
    struct config *cfg = load_ok(start);
    assert_int_equal(cfg->users.base_dns.n, 2);
    assert_string_equal(cfg->users.filter, "(&(department=*)(!(title=Intern)))");
    assert_int_equal(cfg->urls.n, 2);
    config_free(cfg);
}

/* [web] (issue 18): off by default; outside loopback only with TLS and a password. */
static void test_web(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    assert_null(cfg->web_listen);
    assert_null(cfg->web_metrics_listen);
    assert_string_equal(cfg->web_username, "admin");
    config_free(cfg);
    cfg = load_ok(MINIMAL "[web]\nlisten = 127.0.0.1:8080\nmetrics_listen = [::1]:9470\n");
    assert_string_equal(cfg->web_listen, "127.0.0.1:8080");
    assert_string_equal(cfg->web_metrics_listen, "[::1]:9470");
    config_free(cfg);
    cfg = load_ok(MINIMAL "[web]\nlisten = 0.0.0.0:8443\ntls_cert = c.pem\ntls_key = k.pem\n"
                          "password_file = p\n");
    config_free(cfg);
    load_fail(MINIMAL "[web]\nlisten = 0.0.0.0:8080\n",
              "test.conf:4: [web] listen = 0.0.0.0:8080 is not a loopback address: it needs "
              "tls_cert, tls_key and password_file");
    load_fail(MINIMAL "[web]\nlisten = 127.0.0.1:8080\nmetrics_listen = 192.0.2.1:9470\n"
                      "tls_cert = c.pem\ntls_key = k.pem\n",
              "test.conf:5: [web] metrics_listen = 192.0.2.1:9470 is not a loopback address");
    load_fail(MINIMAL "[web]\nlisten = 127.0.0.1:8080\ntls_cert = c.pem\n",
              "test.conf:5: [web] tls_cert and tls_key go together");
    load_fail(MINIMAL "[web]\nlisten = 127.0.0.1\n", "test.conf:4: [web] listen: '127.0.0.1': "
                                                     "expected HOST:PORT");
    load_fail(MINIMAL "[web]\nlisten = localhost:8080\n", "not a numeric address and port");
    load_fail(MINIMAL "[web]\nlisten = 127.0.0.1:0\n", "the port must be 1-65535");
    load_fail(MINIMAL "[web]\nlisten = 127.0.0.1:70000\n", "the port must be 1-65535");
    load_fail(MINIMAL "[web]\nlisten = ::1:8080\n", "written in brackets");
    char host[64];
    int port = 0;
    bool loopback = false;
    char why[128];
    assert_true(
        config_parse_listen("[::1]:8080", host, sizeof(host), &port, &loopback, why, sizeof(why)));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_true(loopback);
    assert_true(
        config_parse_listen("127.5.6.7:1", host, sizeof(host), &port, &loopback, why, sizeof(why)));
    assert_true(loopback);
    assert_true(
        config_parse_listen("[::]:1", host, sizeof(host), &port, &loopback, why, sizeof(why)));
    assert_false(loopback);
}

/* The options table: every row has a type, a reload class and a line of text; every default parses
 * and renders back as written (config_value_text). */
static void test_table_rows(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL);
    struct config_key_info ki;
    size_t n = 0, with_default = 0;
    for (size_t i = 0; config_key_info(i, &ki); i++, n++) {
        assert_non_null(ki.type);
        assert_true(ki.doc != NULL && ki.doc[0] != '\0');
        if (config_reload_name(ki.reload) == NULL)
            fail_msg("[%s] %s has no reload class", ki.section, ki.key);
        if (ki.def == NULL)
            continue;
        with_default++;
        char *text = NULL;
        assert_true(config_value_text(cfg, i, &text));
        if (text == NULL || strcmp(text, ki.def) != 0)
            fail_msg("[%s] %s: default '%s' renders as '%s'", ki.section, ki.key, ki.def,
                     text ? text : "(unset)");
        free(text);
        /* The default, written in the file, loads. */
        char conf[512];
        /* [reports] keys go with a mail server (reports_cross_check). */
        snprintf(conf, sizeof(conf), "%s[%s]\n%s = %s\n%s", MINIMAL, ki.section, ki.key, ki.def,
                 strcmp(ki.section, "reports") == 0
                     ? "smtp_url = smtps://mail.example.com\nfrom = a@example.com\n"
                       "to = b@example.com\n"
                     : "");
        struct config *c2 = load_ok(conf);
        assert_int_equal(config_key_line(c2, i), 4);
        config_free(c2);
    }
    assert_int_equal(n, config_key_count());
    assert_true(with_default > 30);
    assert_null(config_reload_name((enum config_reload)7));
    /* Classes follow what dirconnd does on SIGHUP (admin/dirconnd.c reload()). */
    static const struct {
        const char *section, *key;
        enum config_reload r;
    } expect[] = {
        {"web", "listen", CONFIG_RELOAD_RESTART},
        {"pwsync", "listen", CONFIG_RELOAD_RESTART},
        {"connector", "state_dir", CONFIG_RELOAD_RESTART},
        {"daemon", "socket", CONFIG_RELOAD_RESTART},
        {"ha", "lease", CONFIG_RELOAD_RESTART},
        {"log", "level", CONFIG_RELOAD_NOW},
        {"schedule", "full_sync", CONFIG_RELOAD_NOW},
        {"reports", "to", CONFIG_RELOAD_NOW},
        {"ldap", "urls", CONFIG_RELOAD_RUN},
        {"cloud", "url", CONFIG_RELOAD_RUN},
    };
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        size_t i;
        assert_true(config_key_find(expect[k].section, expect[k].key, &i));
        assert_true(config_key_info(i, &ki));
        assert_int_equal(ki.reload, expect[k].r);
    }
    size_t i;
    assert_false(config_key_find("web", "nope", &i));
    assert_true(config_key_find("ldap", "bind_password_file", &i) && config_key_info(i, &ki));
    assert_true(ki.secret_file);
    assert_true(config_key_find("ldap", "bind_dn", &i) && config_key_info(i, &ki));
    assert_false(ki.secret_file);
    config_free(cfg);
}

/* Values render in the file's syntax; the source of each is its line, 0 for a default. */
static void test_sources_and_values(void **state)
{
    (void)state;
    struct config *cfg = load_ok(MINIMAL "[schedule]\n"
                                         "incremental_interval = 90m\n"
                                         "full_sync = Mon,Thu 23:30\n"
                                         "[users]\n"
                                         "base_dns = OU=A,DC=x;OU=B,DC=x\n"
                                         "[mapping]\n"
                                         "displayName = givenName sn\n");
    struct {
        const char *section, *key, *value;
        int line;
    } expect[] = {
        {"ldap", "urls", "ldaps://dc1.example.com ldap://dc2.example.com:3389", 2},
        {"schedule", "incremental_interval", "1h30m", 4},
        {"schedule", "full_sync", "Mon,Thu 23:30", 5},
        {"users", "base_dns", "OU=A,DC=x; OU=B,DC=x", 7},
        {"ldap", "page_size", "500", 0},
        {"ha", "jitter", "250ms", 0},
        {"ldap", "base_dn", NULL, 0},
    };
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        size_t i;
        char *text = NULL;
        assert_true(config_key_find(expect[k].section, expect[k].key, &i));
        assert_true(config_value_text(cfg, i, &text));
        if (expect[k].value == NULL)
            assert_null(text);
        else
            assert_string_equal(text, expect[k].value);
        free(text);
        assert_int_equal(config_key_line(cfg, i), expect[k].line);
    }
    assert_int_equal(cfg->mappings[0].line, 9);

    json_t *view = config_render_json(cfg);
    assert_non_null(view);
    assert_string_equal(json_string_value(json_object_get(view, "file")), "test.conf");
    size_t n = json_array_size(json_object_get(view, "options"));
    assert_int_equal(n, config_key_count());
    size_t k;
    json_t *o;
    int seen = 0;
    json_array_foreach(json_object_get(view, "options"), k, o)
    {
        const char *key = json_string_value(json_object_get(o, "key"));
        const char *sec = json_string_value(json_object_get(o, "section"));
        const char *src = json_string_value(json_object_get(o, "source"));
        if (strcmp(sec, "schedule") == 0 && strcmp(key, "incremental_interval") == 0) {
            assert_string_equal(src, "test.conf:4");
            assert_string_equal(json_string_value(json_object_get(o, "value")), "1h30m");
            assert_string_equal(json_string_value(json_object_get(o, "default")), "10m");
            assert_string_equal(json_string_value(json_object_get(o, "reload")), "now");
            seen++;
        } else if (strcmp(sec, "ldap") == 0 && strcmp(key, "page_size") == 0) {
            assert_string_equal(src, "default");
            seen++;
        } else if (strcmp(sec, "ldap") == 0 && strcmp(key, "base_dn") == 0) {
            assert_true(json_is_null(json_object_get(o, "value")));
            seen++;
        }
    }
    assert_int_equal(seen, 3);
    json_t *m = json_array_get(json_object_get(view, "mapping"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "source")), "test.conf:9");
    assert_string_equal(json_string_value(json_object_get(m, "value")), "givenName sn");
    json_decref(view);
    config_free(cfg);
}

/* Secrets: rendered as <secret> with their source, their content never read. */
static void test_secrets_masked(void **state)
{
    (void)state;
    char pw[] = "/tmp/dirconn-test-pw-XXXXXX";
    int fd = mkstemp(pw);
    assert_true(fd >= 0);
    static const char secret[] = "s3cret-Value-42";
    assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
    close(fd);
    char conf[1024];
    snprintf(conf, sizeof(conf),
             MINIMAL "bind_dn = CN=svc,DC=example,DC=com\nbind_password_file = %s\n"
                     "[cloud]\nurl = https://cloud.example\norg = acme\nauth = bearer\n"
                     "[proxy]\nmode = explicit\nurl = http://proxy.example:3128\n"
                     "username = px\n",
             pw);
    struct config *cfg = load_ok(conf);
    json_t *view = config_render_json(cfg);
    assert_non_null(view);
    char *text = json_dumps(view, JSON_COMPACT);
    assert_non_null(text);
    assert_null(strstr(text, secret));
    FILE *mem = tmpfile();
    assert_non_null(mem);
    assert_int_equal(config_render_text(view, mem), 0);
    rewind(mem);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof(out) - 1, mem);
    out[n] = '\0';
    fclose(mem);
    assert_null(strstr(out, secret));
    char expect[256];
    snprintf(expect, sizeof(expect),
             "secret ldap-bind-password = <secret>  (source file %s, named by [ldap] "
             "bind_password_file at test.conf:4)",
             pw);
    if (strstr(out, expect) == NULL)
        fail_msg("no '%s' in:\n%s", expect, out);
    assert_non_null(
        strstr(out, "secret cloud-token = <secret>  (source secret store entry cloud-token)"));
    assert_non_null(strstr(
        out, "secret proxy-password = <secret>  (source secret store entry proxy-password)"));
    /* The path of a *_file key is shown: it is not a secret. */
    snprintf(expect, sizeof(expect), "[ldap] bind_password_file = %s  (source test.conf:4,", pw);
    assert_non_null(strstr(out, expect));
    size_t k;
    json_t *o;
    json_array_foreach(json_object_get(view, "secrets"), k, o)
        assert_string_equal(json_string_value(json_object_get(o, "value")), "<secret>");
    assert_int_equal(json_array_size(json_object_get(view, "secrets")), 4);
    free(text);
    json_decref(view);
    config_free(cfg);
    unlink(pw);
}

/* config_check: [mapping] and [avatar] are compiled at load, errors name file:line. */
static void test_config_check(void **state)
{
    (void)state;
    struct dirconn_error err;
    struct config *cfg = load_ok(MINIMAL "[mapping]\ndisplayName = givenName sn\n"
                                         "group.displayName = cn\n");
    dirconn_error_clear(&err);
    assert_int_equal(config_check(cfg, &err), DIRCONN_OK);
    config_free(cfg);
    cfg = load_ok(MINIMAL "[mapping]\ndisplayName = givenName sn\ntitle = concat(\n");
    assert_int_equal(config_check(cfg, &err), DIRCONN_ECONFIG);
    if (strncmp(err.msg, "test.conf:5: [mapping] title: ", 30) != 0)
        fail_msg("unexpected: %s", err.msg);
    config_free(cfg);
    cfg = load_ok(MINIMAL "[mapping]\ncontact.title = title\n");
    assert_int_equal(config_check(cfg, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "test.conf:4: [mapping] contact.title: "));
    config_free(cfg);
    cfg = load_ok(MINIMAL "[avatar]\nenabled = yes\npattern = http://x.example/{mail:(}.jpg\n");
    assert_int_equal(config_check(cfg, &err), DIRCONN_ECONFIG);
    if (strncmp(err.msg, "test.conf:5: [avatar] pattern: ", 31) != 0)
        fail_msg("unexpected: %s", err.msg);
    config_free(cfg);
}

static void count_change(void *arg, const char *section, const char *key)
{
    char *buf = arg;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "[%s] %s;", section, key);
}

/* A reload names the keys of the restart class that changed, and only those. */
static void test_restart_changes(void **state)
{
    (void)state;
    struct config *a = load_ok(MINIMAL "[web]\nlisten = 127.0.0.1:8080\n[log]\nlevel = info\n");
    struct config *b = load_ok(MINIMAL "[log]\nlevel = debug\n[web]\nlisten = 127.0.0.1:8081\n"
                                       "[daemon]\nsocket = /tmp/x.sock\n[ldap]\npage_size = 9\n");
    char seen[256] = "";
    assert_int_equal(config_restart_changes(a, b, count_change, seen), 2);
    assert_string_equal(seen, "[web] listen;[daemon] socket;");
    seen[0] = '\0';
    assert_int_equal(config_restart_changes(a, a, count_change, seen), 0);
    assert_string_equal(seen, "");
    config_free(a);
    config_free(b);
}

/* docs/configuration.md: every row is a key of the table, with the table's reload class. */
static void test_doc_rows_match_table(void **state)
{
    (void)state;
    const char *src = getenv("DIRCONN_SOURCE_DIR");
    if (src == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[8192], section[64] = "";
    size_t rows = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        char key[64];
        if (sscanf(line, "## [%63[a-z]]", section) == 1)
            continue;
        if (strncmp(line, "## ", 3) == 0)
            section[0] = '\0';
        if (section[0] == '\0' || sscanf(line, "| `%63[a-z_]` |", key) != 1)
            continue;
        size_t i;
        struct config_key_info ki;
        if (!config_key_find(section, key, &i) || !config_key_info(i, &ki))
            fail_msg("docs/configuration.md documents [%s] %s, which the options table lacks",
                     section, key);
        /* | key | type | default | reload | meaning | */
        const char *cell = line;
        for (int bar = 0; bar < 4 && cell != NULL; bar++) {
            cell = strchr(cell, '|');
            while (cell != NULL && cell > line && cell[-1] == '\\')
                cell = strchr(cell + 1, '|');
            if (cell != NULL)
                cell++;
        }
        char want[64];
        snprintf(want, sizeof(want), " `%s` |", config_reload_name(ki.reload));
        if (cell == NULL || strncmp(cell, want, strlen(want)) != 0)
            fail_msg("docs/configuration.md: [%s] %s: the reload column is not%s", section, key,
                     want);
        rows++;
    }
    fclose(fp);
    assert_int_equal(rows, config_key_count());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors_name_file_line),
        cmocka_unit_test(test_secrets_from_store),
        cmocka_unit_test(test_proxy_url_password),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_durations_and_weekly),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_bind_names),
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_documented_example_loads),
        cmocka_unit_test(test_web),
        cmocka_unit_test(test_table_rows),
        cmocka_unit_test(test_sources_and_values),
        cmocka_unit_test(test_secrets_masked),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_restart_changes),
        cmocka_unit_test(test_doc_rows_match_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
