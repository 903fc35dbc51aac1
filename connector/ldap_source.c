/*
 * ldap_source.c - connect to the preferred domain controllers, read the
 * rootDSE, and stream entries with paged searches and ranged retrieval.
 *
 * libldap result codes are translated to dirconn errors here; the original
 * code and the server's diagnostic message stay in the error text.
 */
#include "connector/ldap_source.h"

#include "connector/core/secret_store.h"

#include <errno.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Longest password accepted from a password file. */
#define BIND_PASSWORD_MAX 1024

struct ldap_source {
    const struct config *cfg;
    const struct log_sink *log;
    LDAP *ld;
    char *url;
    bool tls_started; /* StartTLS succeeded */
    bool ldaps;
    struct ldap_rootdse dse;
};

struct ldap_cursor {
    struct ldap_source *src;
    char *base;
    char *filter;
    char **attrs; /* NULL-terminated, objectGUID and entryUUID added */
    int scope;
    bool show_deleted;
    int msgid; /* outstanding page request, -1 = none */
    struct berval cookie;
    bool done;
    unsigned long pages;
    unsigned long references;
    unsigned long entries;    /* entries returned by ldap_cursor_next */
    unsigned long long bytes; /* their DNs, attribute descriptions and values (ldap_entry_bytes) */
};

/* ---- small helpers ---------------------------------------------------- */

static struct timeval timeout_tv(const struct ldap_source *src)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(src->cfg->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)((src->cfg->timeout_ms % 1000) * 1000);
    return tv;
}

/* The server's diagnostic message for the last operation, or "". Copies into buf. */
static const char *diag_message(LDAP *ld, char *buf, size_t len)
{
    char *msg = NULL;
    buf[0] = '\0';
    if (ld != NULL && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS &&
        msg != NULL) {
        if (msg[0] != '\0')
            snprintf(buf, len, "%s", msg);
        ldap_memfree(msg);
    }
    /* Trailing newlines and NULs that AD appends. */
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* "Invalid credentials (49); AcceptSecurityContext error ..." */
static const char *describe_rc(LDAP *ld, int rc, char *buf, size_t len)
{
    char diag[512];
    diag_message(ld, diag, sizeof(diag));
    if (diag[0] != '\0')
        snprintf(buf, len, "%s (%d): %s", ldap_err2string(rc), rc, diag);
    else
        snprintf(buf, len, "%s (%d)", ldap_err2string(rc), rc);
    return buf;
}

static bool looks_like_tls_failure(const char *diag)
{
    static const char *const words[] = {"SSL", "TLS", "certificate", "handshake", NULL};
    for (int i = 0; words[i] != NULL; i++) {
        if (strstr(diag, words[i]) != NULL)
            return true;
    }
    return false;
}

/* TCP connect to host:port within timeout_ms; returns the socket or -1 with errno set. */
static int tcp_connect(const char *host, int port, int64_t timeout_ms)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1, saved = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int soerr = ETIMEDOUT;
            socklen_t len = sizeof(soerr);
            if (poll(&pfd, 1, (int)timeout_ms) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            rc = soerr == 0 ? 0 : -1;
            errno = soerr;
        }
        if (rc != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        } else {
            fcntl(fd, F_SETFL, flags);
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = saved;
    return fd;
}

/*
 * Why an LDAPS connection failed, when libldap's TLS library gives no detail:
 * connect again with OpenSSL, verifying the certificate against the same CA
 * file and host name (RFC 6125), and describe what fails. Writes one phrase
 * into why and returns true when TCP works but TLS does not (a TLS failure);
 * false when the server is unreachable, or when the probe's handshake
 * succeeds (the failure was something else).
 */
static bool diagnose_ldaps(const struct ldap_source *src, const char *url, char *why, size_t whylen)
{
    LDAPURLDesc *lud = NULL;
    if (ldap_url_parse(url, &lud) != LDAP_URL_SUCCESS)
        return false;
    int port = lud->lud_port != 0 ? lud->lud_port : 636;
    int fd = tcp_connect(lud->lud_host, port, src->cfg->timeout_ms);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        ldap_free_urldesc(lud);
        return false;
    }
    bool tls_failure = true;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    if (ctx == NULL) {
        snprintf(why, whylen, "TLS handshake failed");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, src->cfg->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (src->cfg->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, src->cfg->ca_file, NULL) != 1
                                  : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(why, whylen, "cannot load the CA file %s",
                 src->cfg->ca_file != NULL ? src->cfg->ca_file : "(system store)");
        goto out;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        snprintf(why, whylen, "TLS handshake failed");
        goto out;
    }
    SSL_set_tlsext_host_name(ssl, lud->lud_host);
    if (!src->cfg->tls_insecure)
        SSL_set1_host(ssl, lud->lud_host);
    struct timeval tv = timeout_tv(src);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (SSL_connect(ssl) == 1) {
        tls_failure = false;
        snprintf(why, whylen, "TLS handshake succeeded on a second attempt");
        goto out;
    }
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        snprintf(why, whylen, "certificate verify failed: %s%s",
                 X509_verify_cert_error_string(verify),
                 verify == X509_V_ERR_HOSTNAME_MISMATCH ? " (the URL's host is not in the "
                                                          "certificate)"
                                                        : " (is [ldap] ca_file the CA that "
                                                          "signed the DC's certificate?)");
    } else {
        char buf[256];
        unsigned long e = ERR_peek_last_error();
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(why, whylen, "%s", e != 0 ? buf : "the server closed the connection");
    }
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ldap_free_urldesc(lud);
    return tls_failure;
}

/* Read the bind password: the file's content without a trailing newline. */
static enum dirconn_err read_password(const char *path, char *buf, size_t len,
                                      struct dirconn_error *err)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[ldap] bind_password_file %s: cannot open: %s", path,
                                 strerror(errno));
    size_t n = fread(buf, 1, len - 1, fp);
    bool too_long = n == len - 1 && fgetc(fp) != EOF;
    bool failed = ferror(fp) != 0;
    fclose(fp);
    if (failed || too_long) {
        OPENSSL_cleanse(buf, len);
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[ldap] bind_password_file %s: %s", path,
                                 failed ? "read error" : "longer than 1023 bytes");
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n == 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[ldap] bind_password_file %s is empty (an empty password "
                                 "would be an unauthenticated bind, RFC 4513 5.1.2)",
                                 path);
    if (memchr(buf, '\0', n) != NULL) {
        OPENSSL_cleanse(buf, len);
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[ldap] bind_password_file %s contains a NUL byte", path);
    }
    return DIRCONN_OK;
}

/* Without [ldap] bind_password_file: the password from the secret store (ldap-bind-password). */
static enum dirconn_err store_password(const struct config *cfg, char *buf, size_t len,
                                       struct dirconn_error *err)
{
    char *value = NULL;
    enum dirconn_err e = secret_store_get(cfg, SECRET_LDAP_BIND_PASSWORD, &value, err);
    if (e != DIRCONN_OK)
        return e;
    size_t n = strlen(value);
    if (n >= len) {
        secret_store_free_value(value);
        return dirconn_error_set(err, DIRCONN_ECONFIG, "secret store: %s is longer than %zu bytes",
                                 SECRET_LDAP_BIND_PASSWORD, len - 1);
    }
    memcpy(buf, value, n + 1);
    secret_store_free_value(value);
    return DIRCONN_OK;
}

/* ---- refused binds ----------------------------------------------------- */

/*
 * The Win32 error that AD DS, AD LDS and Samba put after "data" in the
 * diagnostic message of an invalidCredentials bind result, in words.
 */
static const struct {
    unsigned code;
    const char *words;
    const char *advice;  /* what to do about it */
    bool names_password; /* the advice ends with where the password comes from */
} ad_bind_data[] = {
    {0x525, "user not found", "check [ldap] bind_dn", false},
    {0x52e, "invalid credentials", "check [ldap] bind_dn and the password in", true},
    {0x530, "logon not permitted at this time", "the account's logon hours forbid it now", false},
    {0x531, "logon not permitted at this workstation",
     "the account's workstation restrictions (userWorkstations) forbid this host", false},
    {0x532, "password expired", "set a new password on the account, then in", true},
    {0x533, "account disabled", "enable the account", false},
    {0x701, "account expired", "extend the account's expiry date (accountExpires)", false},
    {0x773, "must reset password", "set a new password on the account, then in", true},
    {0x775, "account locked out",
     "unlock the account (or wait for the domain's lockout duration) and check the password in",
     true},
};

const char *ldap_ad_bind_data(const char *diag, char *code, size_t len)
{
    if (len > 0)
        code[0] = '\0';
    /* "80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 775, v4563" */
    const char *p = diag != NULL ? strstr(diag, ", data ") : NULL;
    if (p == NULL)
        return NULL;
    p += strlen(", data ");
    size_t n = strspn(p, "0123456789abcdefABCDEF");
    if (n == 0 || n > 8 || (p[n] != '\0' && p[n] != ',' && p[n] != ' '))
        return NULL;
    char hex[9];
    memcpy(hex, p, n);
    hex[n] = '\0';
    unsigned long value = strtoul(hex, NULL, 16);
    if (len > 0)
        snprintf(code, len, "%lx", value);
    for (size_t i = 0; i < sizeof(ad_bind_data) / sizeof(ad_bind_data[0]); i++) {
        if (ad_bind_data[i].code == value)
            return ad_bind_data[i].words;
    }
    return "a reason AD did not name";
}

/* What to do about a refused bind with AD data code (hex, "" = none); where: the password's home.
 */
static void refusal_advice(const char *code, const char *where, char *buf, size_t len)
{
    unsigned long value = code[0] != '\0' ? strtoul(code, NULL, 16) : 0x52e;
    const char *advice = "check [ldap] bind_dn and the password in";
    bool names_password = true;
    for (size_t i = 0; i < sizeof(ad_bind_data) / sizeof(ad_bind_data[0]); i++) {
        if (ad_bind_data[i].code == value) {
            advice = ad_bind_data[i].advice;
            names_password = ad_bind_data[i].names_password;
        }
    }
    snprintf(buf, len, "%s%s%s", advice, names_password ? " " : "", names_password ? where : "");
}

/* ---- rootDSE ---------------------------------------------------------- */

static void rootdse_clear(struct ldap_rootdse *d)
{
    strlist_clear(&d->naming_contexts);
    strlist_clear(&d->supported_controls);
    strlist_clear(&d->supported_capabilities);
    free(d->default_nc);
    free(d->configuration_nc);
    free(d->schema_nc);
    free(d->root_domain_nc);
    free(d->ds_service_name);
    free(d->dns_host_name);
    free(d->vendor_name);
    free(d->vendor_version);
    memset(d, 0, sizeof(*d));
}

static bool copy_values(struct berval **vals, struct strlist *out)
{
    size_t n = (size_t)ldap_count_values_len(vals);
    if (n == 0)
        return true;
    out->v = calloc(n, sizeof(char *));
    if (out->v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        out->v[i] = strndup(vals[i]->bv_val, vals[i]->bv_len);
        if (out->v[i] == NULL)
            return false;
        out->n++;
    }
    return true;
}

static bool copy_first(struct berval **vals, char **out)
{
    if (ldap_count_values_len(vals) < 1)
        return true;
    *out = strndup(vals[0]->bv_val, vals[0]->bv_len);
    return *out != NULL;
}

static bool strlist_has(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], s) == 0)
            return true;
    }
    return false;
}

static enum dirconn_err read_rootdse(struct ldap_source *src, struct dirconn_error *err)
{
    static const char *const attrs[] = {"namingContexts",
                                        "defaultNamingContext",
                                        "configurationNamingContext",
                                        "schemaNamingContext",
                                        "rootDomainNamingContext",
                                        "supportedControl",
                                        "supportedCapabilities",
                                        "highestCommittedUSN",
                                        "dsServiceName",
                                        "dnsHostName",
                                        "vendorName",
                                        "vendorVersion",
                                        NULL};
    struct timeval tv = timeout_tv(src);
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(src->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", (char **)attrs, 0,
                               NULL, NULL, &tv, 0, &res);
    if (rc != LDAP_SUCCESS) {
        char why[768];
        describe_rc(src->ld, rc, why, sizeof(why));
        ldap_msgfree(res);
        dirconn_error_set(err, rc == LDAP_TIMEOUT ? DIRCONN_ELDAP_TIMEOUT : DIRCONN_ELDAP,
                          "%s: cannot read the rootDSE: %s", src->url, why);
        return dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    }
    LDAPMessage *e = ldap_first_entry(src->ld, res);
    struct ldap_rootdse *d = &src->dse;
    bool ok = true;
    if (e != NULL) {
        BerElement *ber = NULL;
        for (char *a = ldap_first_attribute(src->ld, e, &ber); a != NULL;
             a = ldap_next_attribute(src->ld, e, ber)) {
            struct berval **vals = ldap_get_values_len(src->ld, e, a);
            if (strcasecmp(a, "namingContexts") == 0)
                ok = ok && copy_values(vals, &d->naming_contexts);
            else if (strcasecmp(a, "supportedControl") == 0)
                ok = ok && copy_values(vals, &d->supported_controls);
            else if (strcasecmp(a, "supportedCapabilities") == 0)
                ok = ok && copy_values(vals, &d->supported_capabilities);
            else if (strcasecmp(a, "defaultNamingContext") == 0)
                ok = ok && copy_first(vals, &d->default_nc);
            else if (strcasecmp(a, "configurationNamingContext") == 0)
                ok = ok && copy_first(vals, &d->configuration_nc);
            else if (strcasecmp(a, "schemaNamingContext") == 0)
                ok = ok && copy_first(vals, &d->schema_nc);
            else if (strcasecmp(a, "rootDomainNamingContext") == 0)
                ok = ok && copy_first(vals, &d->root_domain_nc);
            else if (strcasecmp(a, "dsServiceName") == 0)
                ok = ok && copy_first(vals, &d->ds_service_name);
            else if (strcasecmp(a, "dnsHostName") == 0)
                ok = ok && copy_first(vals, &d->dns_host_name);
            else if (strcasecmp(a, "vendorName") == 0)
                ok = ok && copy_first(vals, &d->vendor_name);
            else if (strcasecmp(a, "vendorVersion") == 0)
                ok = ok && copy_first(vals, &d->vendor_version);
            else if (strcasecmp(a, "highestCommittedUSN") == 0 && ldap_count_values_len(vals) > 0) {
                char num[32];
                snprintf(num, sizeof(num), "%.*s", (int)vals[0]->bv_len, vals[0]->bv_val);
                d->highest_committed_usn = strtoull(num, NULL, 10);
                d->has_usn = true;
            }
            ldap_value_free_len(vals);
            ldap_memfree(a);
        }
        ber_free(ber, 0);
    }
    ldap_msgfree(res);
    if (!ok)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "%s: out of memory reading the rootDSE",
                                 src->url);
    if (strlist_has(&d->supported_capabilities, LDAP_OID_CAP_ACTIVE_DIRECTORY))
        d->kind = LDAP_SERVER_AD_DS;
    else if (strlist_has(&d->supported_capabilities, LDAP_OID_CAP_ACTIVE_DIRECTORY_ADAM))
        d->kind = LDAP_SERVER_AD_LDS;
    else
        d->kind = LDAP_SERVER_GENERIC;
    return DIRCONN_OK;
}

/* ---- connection --------------------------------------------------------- */

static enum dirconn_err set_options(struct ldap_source *src, LDAP *ld, struct dirconn_error *err)
{
    const struct config *cfg = src->cfg;
    int version = LDAP_VERSION3;
    struct timeval tv = timeout_tv(src);
    int require = cfg->tls_insecure ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    int tls_min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    int newctx = 0;
    const char *what = NULL;
    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS)
        what = "protocol version";
    else if (ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS)
        what = "referrals";
    else if (ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS)
        what = "restart";
    else if (ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        what = "network timeout";
    else if (ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        what = "timeout";
    else if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS)
        what = "TLS certificate verification";
    else if (ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls_min) != LDAP_OPT_SUCCESS)
        what = "TLS minimum version";
    else if (cfg->ca_file != NULL &&
             ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file) != LDAP_OPT_SUCCESS)
        what = "TLS CA file";
    else if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &newctx) != LDAP_OPT_SUCCESS)
        what = "TLS context (is [ldap] ca_file a readable PEM file?)";
    if (what != NULL)
        return dirconn_error_set(err, DIRCONN_ELDAP_TLS, "%s: cannot set the %s", src->url, what);
    return DIRCONN_OK;
}

/* Connect, protect and bind to one DC. On failure the handle is released. */
static enum dirconn_err connect_one(struct ldap_source *src, const char *url,
                                    struct dirconn_error *err)
{
    const struct config *cfg = src->cfg;
    char why[768];
    LDAP *ld = NULL;
    src->ldaps = strncasecmp(url, "ldaps://", 8) == 0;
    src->tls_started = false;
    int rc = ldap_initialize(&ld, url);
    if (rc != LDAP_SUCCESS)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: %s", url, ldap_err2string(rc));
    enum dirconn_err e = set_options(src, ld, err);
    if (e != DIRCONN_OK)
        goto fail;

    rc = ldap_connect(ld);
    if (rc != LDAP_SUCCESS) {
        char diag[512], probe[512];
        diag_message(ld, diag, sizeof(diag));
        if (src->ldaps && looks_like_tls_failure(diag))
            e = dirconn_error_set(err, DIRCONN_ELDAP_TLS, "%s: TLS handshake failed: %s", url,
                                  diag);
        else if (src->ldaps && rc != LDAP_TIMEOUT && diagnose_ldaps(src, url, probe, sizeof(probe)))
            e = dirconn_error_set(err, DIRCONN_ELDAP_TLS, "%s: TLS handshake failed: %s", url,
                                  probe);
        else
            e = dirconn_error_set(
                err, rc == LDAP_TIMEOUT ? DIRCONN_ELDAP_TIMEOUT : DIRCONN_ELDAP_CONNECT,
                "%s: cannot connect: %s", url, describe_rc(ld, rc, why, sizeof(why)));
        goto fail;
    }

    if (!src->ldaps && cfg->start_tls) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc == LDAP_SERVER_DOWN) {
            e = dirconn_error_set(err, DIRCONN_ELDAP_CONNECT,
                                  "%s: connection lost during StartTLS: %s", url,
                                  describe_rc(ld, rc, why, sizeof(why)));
            goto fail;
        }
        if (rc != LDAP_SUCCESS) {
            describe_rc(ld, rc, why, sizeof(why));
            if (rc == LDAP_CONNECT_ERROR)
                e = dirconn_error_set(err, DIRCONN_ELDAP_TLS,
                                      "%s: StartTLS handshake failed: %s (is the DC's certificate "
                                      "signed by [ldap] ca_file, with the URL's host in it?)",
                                      url, why);
            else
                e = dirconn_error_set(err, DIRCONN_ELDAP_TLS, "%s: the server refused StartTLS: %s",
                                      url, why);
            goto fail;
        }
        src->tls_started = true;
    } else if (!src->ldaps) {
        log_msg(src->log, LOG_LEVEL_WARN,
                "%s: start_tls = no: the bind password and all data cross the network in clear",
                url);
    }
    if (cfg->tls_insecure && (src->ldaps || src->tls_started))
        log_msg(src->log, LOG_LEVEL_WARN,
                "%s: tls_insecure = yes: the server certificate is NOT verified", url);

    if (cfg->bind_dn != NULL) {
        char password[BIND_PASSWORD_MAX];
        e = cfg->bind_password_file != NULL
                ? read_password(cfg->bind_password_file, password, sizeof(password), err)
                : store_password(cfg, password, sizeof(password), err);
        if (e != DIRCONN_OK)
            goto fail;
        struct berval cred = {(ber_len_t)strlen(password), password};
        rc = ldap_sasl_bind_s(ld, cfg->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
        OPENSSL_cleanse(password, sizeof(password));
        if (rc != LDAP_SUCCESS) {
            describe_rc(ld, rc, why, sizeof(why));
            if (rc == LDAP_INVALID_CREDENTIALS) {
                /* AD says why in the diagnostic message ("..., data 775, ..."). */
                char diag[512], code[16], advice[512];
                diag_message(ld, diag, sizeof(diag));
                const char *words = ldap_ad_bind_data(diag, code, sizeof(code));
                refusal_advice(code,
                               cfg->bind_password_file != NULL
                                   ? cfg->bind_password_file
                                   : "the secret store (" SECRET_LDAP_BIND_PASSWORD ")",
                               advice, sizeof(advice));
                e = dirconn_error_set(err, DIRCONN_ELDAP_AUTH,
                                      "%s: bind as '%s' refused: %s%s%s%s; %s: %s", url,
                                      cfg->bind_dn, words != NULL ? words : "invalid credentials",
                                      code[0] != '\0' ? " (AD data " : "", code,
                                      code[0] != '\0' ? ")" : "", advice, why);
            } else if (rc == LDAP_BUSY || rc == LDAP_UNAVAILABLE) {
                /* The DC cannot take the bind now: the next DC, or a later attempt, may. */
                e = dirconn_error_set(err, DIRCONN_ELDAP, "%s: bind as '%s' not possible now: %s",
                                      url, cfg->bind_dn, why);
            } else if (rc == LDAP_TIMEOUT) {
                e = dirconn_error_set(err, DIRCONN_ELDAP_TIMEOUT, "%s: bind as '%s' timed out: %s",
                                      url, cfg->bind_dn, why);
            } else if (rc == LDAP_STRONG_AUTH_REQUIRED || rc == LDAP_CONFIDENTIALITY_REQUIRED) {
                e = dirconn_error_set(err, DIRCONN_ELDAP_AUTH,
                                      "%s: the server requires TLS for simple binds; use "
                                      "ldaps:// or start_tls = yes: %s",
                                      url, why);
            } else if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) {
                e = dirconn_error_set(err, DIRCONN_ELDAP_CONNECT,
                                      "%s: connection lost during bind: %s", url, why);
            } else {
                e = dirconn_error_set(err, DIRCONN_ELDAP_AUTH, "%s: bind as '%s' failed: %s", url,
                                      cfg->bind_dn, why);
            }
            goto fail;
        }
    }
    src->ld = ld;
    free(src->url);
    src->url = strdup(url);
    if (src->url == NULL) {
        src->ld = NULL;
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        goto fail;
    }
    e = read_rootdse(src, err);
    if (e != DIRCONN_OK) {
        rootdse_clear(&src->dse);
        src->ld = NULL;
        goto fail;
    }
    return DIRCONN_OK;
fail:
    /* the libldap code behind a connect, StartTLS or bind failure (RFC 4511 4.1.9) */
    if (rc != LDAP_SUCCESS && err != NULL && err->origin == DIRCONN_ORIGIN_NONE)
        dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    ldap_unbind_ext(ld, NULL, NULL);
    return e;
}

/* Append s to the NUL-terminated text in buf (size bytes), truncating at the end. */
static void append_truncated(char *buf, size_t size, const char *s)
{
    size_t used = strlen(buf), n = strlen(s);
    if (used + 1 >= size)
        return;
    if (n > size - used - 1)
        n = size - used - 1;
    memcpy(buf + used, s, n);
    buf[used + n] = '\0';
}

enum dirconn_err ldap_source_open(const struct config *cfg, const struct log_sink *log,
                                  struct ldap_source **out, struct dirconn_error *err)
{
    *out = NULL;
    struct ldap_source *src = calloc(1, sizeof(*src));
    if (src == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    src->cfg = cfg;
    src->log = log;
    /* One line naming every DC tried and why it was passed over. */
    char tried[DIRCONN_ERROR_LEN] = "";
    enum dirconn_err e = DIRCONN_ELDAP_CONNECT;
    struct dirconn_error one; /* the last DC's error: its code and cause are the run's */
    dirconn_error_clear(&one);
    for (size_t i = 0; i < cfg->urls.n; i++) {
        dirconn_error_clear(&one);
        e = connect_one(src, cfg->urls.v[i], &one);
        if (e == DIRCONN_OK) {
            if (i > 0)
                log_msg(log, LOG_LEVEL_WARN, "using %s: the preferred DCs before it failed: %s",
                        cfg->urls.v[i], tried);
            else
                log_msg(log, LOG_LEVEL_DEBUG, "connected to %s", cfg->urls.v[i]);
            *out = src;
            return DIRCONN_OK;
        }
        log_msg(log, LOG_LEVEL_DEBUG, "%s", one.msg);
        append_truncated(tried, sizeof(tried), tried[0] != '\0' ? "; " : "");
        append_truncated(tried, sizeof(tried), one.msg);
        /* A refused password or a broken configuration is the same on every DC. */
        if (e == DIRCONN_ELDAP_AUTH || e == DIRCONN_ECONFIG || e == DIRCONN_ENOMEM) {
            dirconn_error_set(err, e, "%s", one.msg);
            dirconn_error_cause(err, one.origin, one.cause);
            ldap_source_close(src);
            return e;
        }
    }
    if (cfg->urls.n > 1)
        dirconn_error_set(err, e, "no domain controller available: %s", tried);
    else
        dirconn_error_set(err, e, "%s", tried);
    dirconn_error_cause(err, one.origin, one.cause);
    ldap_source_close(src);
    return e;
}

void ldap_source_close(struct ldap_source *src)
{
    if (src == NULL)
        return;
    if (src->ld != NULL)
        ldap_unbind_ext(src->ld, NULL, NULL);
    rootdse_clear(&src->dse);
    free(src->url);
    free(src);
}

struct ldap *ldap_source_handle(struct ldap_source *src)
{
    return src->ld;
}

const char *ldap_source_url(const struct ldap_source *src)
{
    return src->url;
}

const char *ldap_source_tls(const struct ldap_source *src, char *buf, size_t len)
{
    const char *mode = src->ldaps ? "ldaps" : src->tls_started ? "starttls" : "none";
    char *version = NULL, *cipher = NULL;
    if (src->ldaps || src->tls_started) {
        ldap_get_option(src->ld, LDAP_OPT_X_TLS_VERSION, &version);
        ldap_get_option(src->ld, LDAP_OPT_X_TLS_CIPHER, &cipher);
    }
    if (version != NULL)
        snprintf(buf, len, "%s %s%s%s", mode, version, cipher ? " " : "", cipher ? cipher : "");
    else
        snprintf(buf, len, "%s", mode);
    ldap_memfree(version);
    ldap_memfree(cipher);
    return buf;
}

const struct ldap_rootdse *ldap_source_rootdse(const struct ldap_source *src)
{
    return &src->dse;
}

const char *ldap_source_base_dn(const struct ldap_source *src)
{
    return src->cfg->base_dn != NULL ? src->cfg->base_dn : src->dse.default_nc;
}

bool ldap_source_supports(const struct ldap_source *src, const char *oid)
{
    return strlist_has(&src->dse.supported_controls, oid);
}

unsigned ldap_rootdse_tracking_offered(const struct ldap_rootdse *dse)
{
    unsigned bits = 0;
    if (strlist_has(&dse->supported_controls, LDAP_OID_DIRSYNC))
        bits |= LDAP_TRACKING_BIT(CHANGE_TRACKING_DIRSYNC);
    if (dse->has_usn)
        bits |= LDAP_TRACKING_BIT(CHANGE_TRACKING_USN);
    if (strlist_has(&dse->supported_controls, LDAP_OID_SYNC))
        bits |= LDAP_TRACKING_BIT(CHANGE_TRACKING_SYNCREPL);
    return bits;
}

enum change_tracking ldap_rootdse_tracking_auto(const struct ldap_rootdse *dse)
{
    unsigned bits = ldap_rootdse_tracking_offered(dse);
    static const enum change_tracking order[] = {CHANGE_TRACKING_DIRSYNC, CHANGE_TRACKING_USN,
                                                 CHANGE_TRACKING_SYNCREPL};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (bits & LDAP_TRACKING_BIT(order[i]))
            return order[i];
    }
    return CHANGE_TRACKING_AUTO;
}

enum ldap_nc_kind ldap_rootdse_nc_kind(const struct ldap_rootdse *dse, const char *nc)
{
    if (dse->default_nc != NULL && strcasecmp(nc, dse->default_nc) == 0)
        return LDAP_NC_DOMAIN;
    if (dse->configuration_nc != NULL && strcasecmp(nc, dse->configuration_nc) == 0)
        return LDAP_NC_CONFIGURATION;
    if (dse->schema_nc != NULL && strcasecmp(nc, dse->schema_nc) == 0)
        return LDAP_NC_SCHEMA;
    if (dse->kind == LDAP_SERVER_AD_DS && dse->root_domain_nc != NULL &&
        strcasecmp(nc, dse->root_domain_nc) == 0)
        return LDAP_NC_DOMAIN;
    return LDAP_NC_APPLICATION;
}

const char *ldap_nc_kind_name(enum ldap_nc_kind kind)
{
    switch (kind) {
    case LDAP_NC_DOMAIN:
        return "domain";
    case LDAP_NC_CONFIGURATION:
        return "configuration";
    case LDAP_NC_SCHEMA:
        return "schema";
    case LDAP_NC_APPLICATION:
        break;
    }
    return "application partition";
}

const char *ldap_server_kind_name(enum ldap_server_kind kind)
{
    switch (kind) {
    case LDAP_SERVER_AD_DS:
        return "AD DS";
    case LDAP_SERVER_AD_LDS:
        return "AD LDS";
    case LDAP_SERVER_GENERIC:
        break;
    }
    return "LDAP";
}

const char *change_tracking_name(enum change_tracking t)
{
    static const char *const names[] = {"auto", "dirsync", "usn", "syncrepl"};
    if ((int)t < 0 || (size_t)t >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[t];
}

/* ---- searching ---------------------------------------------------------- */

/* Translate a search result code; the message names the DC and the base. */
static enum dirconn_err search_error_text(struct ldap_source *src, const char *base, int rc,
                                          const char *matched, const char *diag,
                                          struct dirconn_error *err)
{
    char extra[640] = "";
    if (diag != NULL && diag[0] != '\0')
        snprintf(extra, sizeof(extra), ": %s", diag);
    switch (rc) {
    case LDAP_NO_SUCH_OBJECT:
        return dirconn_error_set(err, DIRCONN_ELDAP_NOSUCHOBJECT,
                                 "%s: base DN '%s' does not exist (closest existing entry: '%s')",
                                 src->url, base, matched != NULL ? matched : "");
    case LDAP_UNAVAILABLE_CRITICAL_EXTENSION:
        return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                 "%s: the server refused the paged results control (RFC 2696) "
                                 "searching '%s'%s",
                                 src->url, base, extra);
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
        return dirconn_error_set(err, DIRCONN_ELDAP_TIMEOUT,
                                 "%s: search of '%s' timed out ([ldap] timeout)%s", src->url, base,
                                 extra);
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
        return dirconn_error_set(err, DIRCONN_ELDAP_CONNECT,
                                 "%s: connection lost while searching '%s': %s (LDAP %d)%s",
                                 src->url, base, ldap_err2string(rc), rc, extra);
    case LDAP_FILTER_ERROR:
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: the server rejected the filter%s",
                                 src->url, extra);
    default:
        return dirconn_error_set(err, DIRCONN_ELDAP, "%s: search of '%s' failed: %s (%d)%s",
                                 src->url, base, ldap_err2string(rc), rc, extra);
    }
}

/* search_error_text with the LDAP result code kept as the cause (the libldap border). */
static enum dirconn_err search_error(struct ldap_source *src, const char *base, int rc,
                                     const char *matched, const char *diag,
                                     struct dirconn_error *err)
{
    search_error_text(src, base, rc, matched, diag, err);
    return dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
}

enum dirconn_err ldap_source_check_base(struct ldap_source *src, struct dirconn_error *err)
{
    const char *base = ldap_source_base_dn(src);
    if (base == NULL) {
        char list[700] = "";
        for (size_t i = 0; i < src->dse.naming_contexts.n; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s'%s'", i ? ", " : "",
                     src->dse.naming_contexts.v[i]);
        }
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: the server has no defaultNamingContext (AD LDS?); set "
                                 "[ldap] base_dn to one of its partitions: %s",
                                 src->url, list);
    }
    static const char *const attrs[] = {"1.1", NULL};
    struct timeval tv = timeout_tv(src);
    LDAPMessage *res = NULL;
    int rc = ldap_search_ext_s(src->ld, base, LDAP_SCOPE_BASE, "(objectClass=*)", (char **)attrs, 0,
                               NULL, NULL, &tv, 1, &res);
    char *matched = NULL, *diag = NULL;
    if (rc == LDAP_NO_SUCH_OBJECT && res != NULL)
        ldap_parse_result(src->ld, res, NULL, &matched, &diag, NULL, NULL, 0);
    ldap_msgfree(res);
    enum dirconn_err e = DIRCONN_OK;
    if (rc != LDAP_SUCCESS)
        e = search_error(src, base, rc, matched, diag, err);
    ldap_memfree(matched);
    ldap_memfree(diag);
    return e;
}

static enum dirconn_err send_page(struct ldap_cursor *cur, struct dirconn_error *err)
{
    struct ldap_source *src = cur->src;
    LDAPControl *page = NULL;
    int rc = ldap_create_page_control(src->ld, (ber_int_t)src->cfg->page_size,
                                      cur->cookie.bv_len ? &cur->cookie : NULL, 1, &page);
    if (rc != LDAP_SUCCESS) {
        dirconn_error_set(err, DIRCONN_ELDAP, "%s: cannot build the paged results control: %s",
                          src->url, ldap_err2string(rc));
        return dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    }
    LDAPControl deleted = {LDAP_CONTROL_X_SHOW_DELETED, {0, NULL}, 1};
    LDAPControl *ctrls[3] = {page, cur->show_deleted ? &deleted : NULL, NULL};
    struct timeval tv = timeout_tv(src);
    rc = ldap_search_ext(src->ld, cur->base, cur->scope, cur->filter, cur->attrs, 0, ctrls, NULL,
                         &tv, 0, &cur->msgid);
    ldap_control_free(page);
    if (rc != LDAP_SUCCESS) {
        cur->msgid = -1;
        char diag[512];
        diag_message(src->ld, diag, sizeof(diag));
        return search_error(src, cur->base, rc, NULL, diag, err);
    }
    return DIRCONN_OK;
}

static char *xstrdup_opt(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

enum dirconn_err ldap_source_search(struct ldap_source *src, const struct ldap_search_spec *spec,
                                    struct ldap_cursor **out, struct dirconn_error *err)
{
    *out = NULL;
    if (!ldap_source_supports(src, LDAP_OID_PAGED_RESULTS))
        return dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                 "%s: the server does not offer paged results (RFC 2696, control "
                                 "%s in the rootDSE's supportedControl)",
                                 src->url, LDAP_OID_PAGED_RESULTS);
    struct ldap_cursor *cur = calloc(1, sizeof(*cur));
    if (cur == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    cur->src = src;
    cur->scope = spec->scope;
    cur->show_deleted = spec->show_deleted;
    cur->msgid = -1;
    cur->base = xstrdup_opt(spec->base);
    cur->filter = xstrdup_opt(spec->filter != NULL ? spec->filter : "(objectClass=*)");
    size_t n = 0;
    while (spec->attrs != NULL && spec->attrs[n] != NULL)
        n++;
    /* NULL attrs means all user attributes: "*" plus the identifiers. */
    cur->attrs = calloc(n + 4, sizeof(char *));
    bool ok = cur->base != NULL && cur->filter != NULL && cur->attrs != NULL;
    size_t k = 0;
    if (ok && spec->attrs == NULL)
        ok = (cur->attrs[k++] = strdup("*")) != NULL;
    /*
     * On Active Directory, large multi-valued attributes are asked for with an
     * explicit range of the default MaxValRange (MS-ADTS 3.1.1.3.1.3.3): the DC
     * answers at most that many values and names the range it returned, and
     * fetch_ranges() follows it. Windows truncates even without the option;
     * asking explicitly makes every AD implementation (Samba included) answer
     * the same way.
     */
    bool ad = src->dse.kind == LDAP_SERVER_AD_DS || src->dse.kind == LDAP_SERVER_AD_LDS;
    for (size_t i = 0; ok && i < n; i++) {
        if (ad && strcasecmp(spec->attrs[i], "member") == 0)
            ok = (cur->attrs[k++] = strdup("member;range=0-1499")) != NULL;
        else
            ok = (cur->attrs[k++] = strdup(spec->attrs[i])) != NULL;
    }
    if (ok)
        ok = (cur->attrs[k++] = strdup("objectGUID")) != NULL;
    if (ok)
        ok = (cur->attrs[k++] = strdup("entryUUID")) != NULL;
    if (!ok) {
        ldap_cursor_free(cur);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    enum dirconn_err e = send_page(cur, err);
    if (e != DIRCONN_OK) {
        ldap_cursor_free(cur);
        return e;
    }
    *out = cur;
    return DIRCONN_OK;
}

/* Append the values of vals to attribute attr. */
static bool attr_append(struct ldap_attr *attr, struct berval **vals)
{
    size_t n = (size_t)ldap_count_values_len(vals);
    if (n == 0)
        return true;
    struct ldap_value *v = realloc(attr->values, (attr->n_values + n) * sizeof(*v));
    if (v == NULL)
        return false;
    attr->values = v;
    for (size_t i = 0; i < n; i++) {
        struct ldap_value *dst = &attr->values[attr->n_values];
        dst->data = malloc(vals[i]->bv_len + 1);
        if (dst->data == NULL)
            return false;
        memcpy(dst->data, vals[i]->bv_val, vals[i]->bv_len);
        dst->data[vals[i]->bv_len] = '\0';
        dst->len = vals[i]->bv_len;
        attr->n_values++;
    }
    return true;
}

/* attr_append for the values of ldap_get_attribute_ber (an array ending in a NULL bv_val). */
static bool attr_append_array(struct ldap_attr *attr, BerVarray vals)
{
    size_t n = 0;
    while (vals != NULL && vals[n].bv_val != NULL)
        n++;
    if (n == 0)
        return true;
    struct ldap_value *v = realloc(attr->values, (attr->n_values + n) * sizeof(*v));
    if (v == NULL)
        return false;
    attr->values = v;
    for (size_t i = 0; i < n; i++) {
        struct ldap_value *dst = &attr->values[attr->n_values];
        dst->data = malloc(vals[i].bv_len + 1);
        if (dst->data == NULL)
            return false;
        memcpy(dst->data, vals[i].bv_val, vals[i].bv_len);
        dst->data[vals[i].bv_len] = '\0';
        dst->len = vals[i].bv_len;
        attr->n_values++;
    }
    return true;
}

/*
 * Complete a ranged attribute (MS-ADTS 3.1.1.3.1.3.3): ask for
 * "name;range=<next>-*" on the entry until the server answers with a range
 * ending in "*".
 */
static enum dirconn_err fetch_ranges(struct ldap_cursor *cur, const char *dn,
                                     struct ldap_attr *attr, long next, struct dirconn_error *err)
{
    struct ldap_source *src = cur->src;
    for (int round = 0; round < 1000000; round++) {
        char want[256];
        snprintf(want, sizeof(want), "%s;range=%ld-*", attr->name, next);
        char *attrs[] = {want, NULL};
        struct timeval tv = timeout_tv(src);
        LDAPMessage *res = NULL;
        int rc = ldap_search_ext_s(src->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
                                   NULL, &tv, 0, &res);
        if (rc != LDAP_SUCCESS) {
            char diag[512];
            diag_message(src->ld, diag, sizeof(diag));
            ldap_msgfree(res);
            return search_error(src, dn, rc, NULL, diag, err);
        }
        LDAPMessage *e = ldap_first_entry(src->ld, res);
        bool found = false, last = true;
        if (e != NULL) {
            BerElement *ber = NULL;
            for (char *a = ldap_first_attribute(src->ld, e, &ber); a != NULL;
                 a = ldap_next_attribute(src->ld, e, ber)) {
                char base[256];
                long lo = 0, hi = 0;
                if (ldap_range_parse(a, base, sizeof(base), &lo, &hi) &&
                    strcasecmp(base, attr->name) == 0) {
                    struct berval **vals = ldap_get_values_len(src->ld, e, a);
                    bool ok = attr_append(attr, vals);
                    ldap_value_free_len(vals);
                    if (!ok) {
                        ldap_memfree(a);
                        ber_free(ber, 0);
                        ldap_msgfree(res);
                        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
                    }
                    found = true;
                    last = hi < 0;
                    next = hi + 1;
                }
                ldap_memfree(a);
            }
            ber_free(ber, 0);
        }
        ldap_msgfree(res);
        if (!found || last)
            return DIRCONN_OK;
    }
    return dirconn_error_set(err, DIRCONN_ELDAP, "%s: ranged retrieval of %s on '%s' does not end",
                             src->url, attr->name, dn);
}

static enum dirconn_err convert_entry(struct ldap_cursor *cur, LDAPMessage *msg,
                                      struct ldap_entry **out, struct dirconn_error *err)
{
    struct ldap_source *src = cur->src;
    struct ldap_entry *entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    char *dn = ldap_get_dn(src->ld, msg);
    entry->dn = dn != NULL ? strdup(dn) : NULL;
    ldap_memfree(dn);
    if (entry->dn == NULL) {
        ldap_entry_free(entry);
        return dirconn_error_set(err, DIRCONN_ELDAP, "%s: an entry without a DN", src->url);
    }
    enum dirconn_err e = DIRCONN_OK;
    /*
     * One pass over the entry with ldap_get_attribute_ber (ldapsearch's way):
     * ldap_get_values_len would scan the entry from its start for each
     * attribute.
     */
    BerElement *ber = NULL;
    struct berval dn_bv, name_bv;
    BerVarray vals = NULL;
    int rc = ldap_get_dn_ber(src->ld, msg, &ber, &dn_bv);
    for (rc = rc == LDAP_SUCCESS ? ldap_get_attribute_ber(src->ld, msg, ber, &name_bv, &vals) : rc;
         rc == LDAP_SUCCESS && name_bv.bv_val != NULL;
         rc = ldap_get_attribute_ber(src->ld, msg, ber, &name_bv, &vals)) {
        /* the name points into the message and is not terminated */
        long first = 0, next = -1;
        struct ldap_attr *attr =
            ldap_entry_add_attr(entry, name_bv.bv_val, name_bv.bv_len, &first, &next);
        if (attr == NULL || !attr_append_array(attr, vals)) {
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        } else if (next >= 0) {
            log_msg(src->log, LOG_LEVEL_DEBUG, "%s: %s came in ranges (%ld-%ld first)", entry->dn,
                    attr->name, first, next - 1);
            e = fetch_ranges(cur, entry->dn, attr, next, err);
        }
        ber_memfree(vals);
        vals = NULL;
        if (e != DIRCONN_OK)
            break;
    }
    ber_free(ber, 0);
    if (e == DIRCONN_OK && rc != LDAP_SUCCESS) {
        dirconn_error_set(err, DIRCONN_ELDAP, "%s: %s: cannot decode the entry: %s", src->url,
                          entry->dn, ldap_err2string(rc));
        e = dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);
    }
    if (e != DIRCONN_OK) {
        ldap_entry_free(entry);
        return e;
    }
    ldap_entry_set_id(entry);
    *out = entry;
    return DIRCONN_OK;
}

int ldap_source_parse_cookie(struct ldap *ld, struct ldapcontrol *ctrl, int *flag,
                             struct berval *cookie)
{
    *flag = 0;
    cookie->bv_len = 0;
    cookie->bv_val = NULL;
    if (ctrl == NULL || ctrl->ldctl_oid == NULL)
        return LDAP_PARAM_ERROR;
    if (ctrl->ldctl_value.bv_val == NULL || ctrl->ldctl_value.bv_len == 0)
        return LDAP_DECODING_ERROR;
    if (strcmp(ctrl->ldctl_oid, LDAP_CONTROL_PAGEDRESULTS) == 0) {
        ber_int_t estimate = 0;
        int rc = ldap_parse_pageresponse_control(ld, ctrl, &estimate, cookie);
        *flag = (int)estimate;
        return rc;
    }
    if (strcmp(ctrl->ldctl_oid, LDAP_CONTROL_X_DIRSYNC) == 0)
        return ldap_parse_dirsync_control(ld, ctrl, flag, cookie);
    return LDAP_PARAM_ERROR;
}

/* The page's final result: check the code and pick up the cookie for the next page. */
static enum dirconn_err finish_page(struct ldap_cursor *cur, LDAPMessage *msg,
                                    struct dirconn_error *err)
{
    struct ldap_source *src = cur->src;
    int code = LDAP_SUCCESS;
    char *matched = NULL, *diag = NULL;
    LDAPControl **ctrls = NULL;
    cur->msgid = -1;
    cur->pages++;
    int rc = ldap_parse_result(src->ld, msg, &code, &matched, &diag, NULL, &ctrls, 0);
    enum dirconn_err e = DIRCONN_OK;
    if (rc != LDAP_SUCCESS)
        code = rc;
    if (code != LDAP_SUCCESS) {
        e = search_error(src, cur->base, code, matched, diag, err);
    } else {
        LDAPControl *page = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL);
        int estimate = 0;
        if (cur->cookie.bv_val != NULL) {
            ber_memfree(cur->cookie.bv_val);
            cur->cookie.bv_val = NULL;
            cur->cookie.bv_len = 0;
        }
        if (page == NULL) {
            e = dirconn_error_set(err, DIRCONN_ELDAP_UNSUPPORTED,
                                  "%s: the server ignored the paged results control (RFC 2696) "
                                  "searching '%s'",
                                  src->url, cur->base);
        } else if (ldap_source_parse_cookie(src->ld, page, &estimate, &cur->cookie) !=
                   LDAP_SUCCESS) {
            e = dirconn_error_set(err, DIRCONN_ELDAP, "%s: malformed paged results response",
                                  src->url);
        } else if (cur->cookie.bv_len == 0) {
            cur->done = true;
        } else {
            e = send_page(cur, err);
        }
    }
    ldap_controls_free(ctrls);
    ldap_memfree(matched);
    ldap_memfree(diag);
    if (e != DIRCONN_OK)
        cur->done = true;
    return e;
}

enum dirconn_err ldap_cursor_next(struct ldap_cursor *cur, struct ldap_entry **entry,
                                  struct dirconn_error *err)
{
    *entry = NULL;
    struct ldap_source *src = cur->src;
    while (!cur->done) {
        if (cur->msgid < 0) {
            cur->done = true;
            return dirconn_error_set(err, DIRCONN_ELDAP, "%s: search has no request outstanding",
                                     src->url);
        }
        struct timeval tv = timeout_tv(src);
        LDAPMessage *msg = NULL;
        int rc = ldap_result(src->ld, cur->msgid, LDAP_MSG_ONE, &tv, &msg);
        if (rc == 0 || rc == -1) {
            int code = LDAP_TIMEOUT;
            if (rc == -1)
                ldap_get_option(src->ld, LDAP_OPT_RESULT_CODE, &code);
            char diag[512];
            diag_message(src->ld, diag, sizeof(diag));
            ldap_msgfree(msg);
            cur->done = true;
            if (rc == 0) {
                ldap_abandon_ext(src->ld, cur->msgid, NULL, NULL);
                cur->msgid = -1;
            }
            return search_error(src, cur->base, code, NULL, diag, err);
        }
        enum dirconn_err e = DIRCONN_OK;
        switch (rc) {
        case LDAP_RES_SEARCH_ENTRY:
            e = convert_entry(cur, msg, entry, err);
            ldap_msgfree(msg);
            if (e == DIRCONN_OK) {
                cur->entries++;
                cur->bytes += ldap_entry_bytes(*entry);
            } else {
                ldap_abandon_ext(src->ld, cur->msgid, NULL, NULL);
                cur->msgid = -1;
                cur->done = true;
            }
            return e;
        case LDAP_RES_SEARCH_REFERENCE:
            cur->references++;
            ldap_msgfree(msg);
            break;
        case LDAP_RES_SEARCH_RESULT:
            e = finish_page(cur, msg, err);
            ldap_msgfree(msg);
            if (e != DIRCONN_OK)
                return e;
            break;
        default:
            ldap_msgfree(msg);
            break;
        }
    }
    return DIRCONN_OK;
}

unsigned long ldap_cursor_pages(const struct ldap_cursor *cur)
{
    return cur->pages;
}

unsigned long long ldap_cursor_bytes(const struct ldap_cursor *cur)
{
    return cur->bytes;
}

unsigned long long ldap_entry_bytes(const struct ldap_entry *entry)
{
    if (entry == NULL)
        return 0;
    unsigned long long n = entry->dn != NULL ? strlen(entry->dn) : 0;
    for (size_t i = 0; i < entry->n_attrs; i++) {
        const struct ldap_attr *a = &entry->attrs[i];
        n += a->name != NULL ? strlen(a->name) : 0;
        for (size_t j = 0; j < a->n_values; j++)
            n += a->values[j].len;
    }
    return n;
}

void ldap_cursor_free(struct ldap_cursor *cur)
{
    if (cur == NULL)
        return;
    if (cur->entries > 0)
        log_msg(cur->src->log, LOG_LEVEL_DEBUG,
                "%s: directory read: %lu entries, %llu bytes (DNs, attribute descriptions and "
                "values) searching '%s'",
                cur->src->url, cur->entries, cur->bytes, cur->base);
    if (cur->msgid >= 0 && cur->src->ld != NULL)
        ldap_abandon_ext(cur->src->ld, cur->msgid, NULL, NULL);
    if (cur->cookie.bv_val != NULL)
        ber_memfree(cur->cookie.bv_val);
    for (size_t i = 0; cur->attrs != NULL && cur->attrs[i] != NULL; i++)
        free(cur->attrs[i]);
    free(cur->attrs);
    free(cur->base);
    free(cur->filter);
    free(cur);
}
