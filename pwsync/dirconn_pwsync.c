/*
 * dirconn-pwsync - the password handler for the domain controller (docs/password-sync.md).
 *
 * samba-tool user syncpasswords --script runs it once per changed object, without arguments,
 * with the object's LDIF on stdin (connector/pwsync_ldif.h). It sends the change over mutual
 * TLS (libcurl, a client certificate) to the connectors of its configuration, in order; a
 * standby answers with the active connector's name and the handler goes there. It prints
 * "DONE-EXIT: ..." only when the active connector answered that the cloud acknowledged the
 * change, or that the change can never be applied (a weak password, a user out of scope, a
 * provider without a writable password: the connector reports it); otherwise it exits with
 * status 75 (EX_TEMPFAIL) and syncpasswords stops without moving its cache, so the change is
 * delivered when it runs again.
 *
 * Configuration: --config FILE, else $DIRCONN_PWSYNC_CONFIG, else /etc/dirconn/pwsync.conf
 * (syncpasswords passes no arguments). Exit status: 0 answered DONE-EXIT, 2 usage, 3
 * configuration, 65 bad input (EX_DATAERR), 75 not delivered (EX_TEMPFAIL).
 */
#include "connector/pwsync_ldif.h"

#include <curl/curl.h>
#include <ini.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CONNECTORS 16
#define EXIT_USAGE     2
#define EXIT_CONFIG    3
#define EXIT_DATAERR   65
#define EXIT_TEMPFAIL  75

struct connector {
    char *name; /* the connector's holderIdentity (dirconnctl status), as standbys name it */
    char *url;  /* https://host:port */
};

struct handler_config {
    const char *path;
    struct connector c[MAX_CONNECTORS];
    int n;
    char *tls_cert, *tls_key, *ca_file;
    long timeout_s;
    char error[512];
};

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct handler_config *hc = user;
    if (hc->error[0] != '\0')
        return 1;
    if (strcmp(section, "pwsync") != 0) {
        snprintf(hc->error, sizeof(hc->error), "unknown section [%s]", section);
        return 0;
    }
    char **slot = strcmp(key, "tls_cert") == 0  ? &hc->tls_cert
                  : strcmp(key, "tls_key") == 0 ? &hc->tls_key
                  : strcmp(key, "ca_file") == 0 ? &hc->ca_file
                                                : NULL;
    if (slot != NULL) {
        if (*slot != NULL) {
            snprintf(hc->error, sizeof(hc->error), "[pwsync] %s: duplicate key", key);
            return 0;
        }
        *slot = strdup(value);
        return *slot != NULL;
    }
    if (strcmp(key, "timeout") == 0) {
        char *end;
        hc->timeout_s = strtol(value, &end, 10);
        if (end == value || (strcmp(end, "s") != 0 && *end != '\0') || hc->timeout_s < 1 ||
            hc->timeout_s > 3600) {
            snprintf(hc->error, sizeof(hc->error),
                     "[pwsync] timeout: '%s' is not a duration of 1s to 3600s", value);
            return 0;
        }
        return 1;
    }
    if (strcmp(key, "connector") == 0) {
        /* connector = NAME URL */
        const char *sp = strpbrk(value, " \t");
        const char *url = sp;
        while (url != NULL && (*url == ' ' || *url == '\t'))
            url++;
        if (sp == NULL || url == NULL || strncmp(url, "https://", 8) != 0 ||
            strpbrk(url, " \t") != NULL) {
            snprintf(hc->error, sizeof(hc->error),
                     "[pwsync] connector: '%s': expected NAME https://HOST:PORT", value);
            return 0;
        }
        if (hc->n == MAX_CONNECTORS) {
            snprintf(hc->error, sizeof(hc->error), "[pwsync] connector: more than %d",
                     MAX_CONNECTORS);
            return 0;
        }
        hc->c[hc->n].name = strndup(value, (size_t)(sp - value));
        hc->c[hc->n].url = strdup(url);
        for (size_t n; hc->c[hc->n].url != NULL && (n = strlen(hc->c[hc->n].url)) > 8 &&
                       hc->c[hc->n].url[n - 1] == '/';)
            hc->c[hc->n].url[n - 1] = '\0';
        hc->n++;
        return hc->c[hc->n - 1].name != NULL && hc->c[hc->n - 1].url != NULL;
    }
    snprintf(hc->error, sizeof(hc->error), "[pwsync] %s: unknown key", key);
    return 0;
}

static void config_clear(struct handler_config *hc)
{
    for (int i = 0; i < hc->n; i++) {
        free(hc->c[i].name);
        free(hc->c[i].url);
    }
    free(hc->tls_cert);
    free(hc->tls_key);
    free(hc->ca_file);
}

static bool config_load(struct handler_config *hc)
{
    hc->timeout_s = 30;
    int rc = ini_parse(hc->path, on_ini, hc);
    if (rc < 0) {
        fprintf(stdout, "dirconn-pwsync: %s: cannot read the file\n", hc->path);
        return false;
    }
    if (rc > 0) {
        fprintf(stdout, "dirconn-pwsync: %s:%d: %s\n", hc->path, rc,
                hc->error[0] != '\0' ? hc->error : "syntax error");
        return false;
    }
    const char *missing = hc->n == 0             ? "connector"
                          : hc->tls_cert == NULL ? "tls_cert"
                          : hc->tls_key == NULL  ? "tls_key"
                          : hc->ca_file == NULL  ? "ca_file"
                                                 : NULL;
    if (missing != NULL) {
        fprintf(stdout, "dirconn-pwsync: %s: [pwsync] %s is required (mutual TLS only)\n", hc->path,
                missing);
        return false;
    }
    return true;
}

/* --- delivery ----------------------------------------------------------------------------- */

struct answer {
    char *buf;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t add = size * n;
    if (a->len + add > 65536)
        return 0;
    char *nb = realloc(a->buf, a->len + add + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + a->len, p, add);
    a->buf = nb;
    a->len += add;
    a->buf[a->len] = '\0';
    return add;
}

/* POST body to one connector; status (0: no answer) and the parsed answer (or NULL). */
static long post(const struct handler_config *hc, const struct connector *c, const char *body,
                 json_t **answer, char *why, size_t whylen)
{
    *answer = NULL;
    CURL *e = curl_easy_init();
    if (e == NULL) {
        snprintf(why, whylen, "curl_easy_init failed");
        return 0;
    }
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof(url), "%s/v1/password-changes", c->url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct answer a = {0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body); /* not copied: wiped by the caller */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e, CURLOPT_SSLCERT, hc->tls_cert);
    curl_easy_setopt(e, CURLOPT_SSLKEY, hc->tls_key);
    curl_easy_setopt(e, CURLOPT_CAINFO, hc->ca_file);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* on the LAN: never through a proxy */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, hc->timeout_s);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        *answer = a.buf != NULL ? json_loadb(a.buf, a.len, 0, NULL) : NULL;
    } else {
        snprintf(why, whylen, "%s (curl %d)", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc),
                 (int)rc);
    }
    free(a.buf);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

static int find(const struct handler_config *hc, const char *name)
{
    for (int i = 0; name != NULL && i < hc->n; i++)
        if (strcmp(hc->c[i].name, name) == 0)
            return i;
    return -1;
}

/*
 * Try the connectors in order; a standby's answer sends the next attempt to the active it
 * names (once per connector). Returns the exit status; prints the DONE-EXIT line or the errors.
 */
static int deliver(const struct handler_config *hc, const struct pwsync_ldif *l)
{
    json_t *o = json_pack("{s:s, s:s, s:s%}", "objectGUID", l->guid, "dn", l->dn, "password",
                          l->password, l->len);
    char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (o != NULL) {
        json_t *pw = json_object_get(o, "password");
        OPENSSL_cleanse((char *)json_string_value(pw), json_string_length(pw));
        json_decref(o);
    }
    if (body == NULL) {
        fprintf(stdout, "dirconn-pwsync: out of memory\n");
        return EXIT_TEMPFAIL;
    }
    bool tried[MAX_CONNECTORS] = {false};
    char errors[4096] = "";
    int next = 0, rc = EXIT_TEMPFAIL;
    while (next >= 0) {
        const struct connector *c = &hc->c[next];
        tried[next] = true;
        json_t *ans = NULL;
        char why[512] = "";
        long status = post(hc, c, body, &ans, why, sizeof(why));
        const char *result = json_string_value(json_object_get(ans, "result"));
        const char *detail = json_string_value(json_object_get(ans, "detail"));
        int want = -1;
        size_t el = strlen(errors);
        if (status == 200 && result != NULL && strcmp(result, "applied") == 0) {
            printf("DONE-EXIT: %s: password applied by connector %s: %s\n", l->dn, c->name,
                   detail != NULL ? detail : "");
            rc = 0;
        } else if (status == 422) {
            printf("DONE-EXIT: %s: password not applied (%s), reported by connector %s: %s\n",
                   l->dn, result != NULL ? result : "refused", c->name,
                   detail != NULL ? detail : "");
            rc = 0;
        } else if (status == 409 && result != NULL && strcmp(result, "standby") == 0) {
            const char *active = json_string_value(json_object_get(ans, "active"));
            want = find(hc, active);
            snprintf(errors + el, sizeof(errors) - el, "%s%s is a standby (active: %s)",
                     el > 0 ? "; " : "", c->name, active != NULL ? active : "unknown");
            if (want >= 0 && tried[want])
                want = -1;
        } else {
            snprintf(errors + el, sizeof(errors) - el, "%s%s: %s", el > 0 ? "; " : "", c->name,
                     status == 0 ? why
                     : detail != NULL
                         ? detail
                         : (snprintf(why, sizeof(why), "HTTP %ld", status), (const char *)why));
        }
        json_decref(ans);
        if (rc == 0)
            break;
        next = want;
        for (int i = 0; next < 0 && i < hc->n; i++)
            if (!tried[i])
                next = i;
    }
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (rc != 0)
        printf("dirconn-pwsync: %s: not delivered, kept for the next run: %s\n", l->dn, errors);
    return rc;
}

int main(int argc, char **argv)
{
    struct handler_config hc;
    memset(&hc, 0, sizeof(hc));
    hc.path = getenv("DIRCONN_PWSYNC_CONFIG");
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            hc.path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: dirconn-pwsync [--config FILE] < one object's LDIF\n"
                   "  run by samba-tool user syncpasswords --script; see docs/password-sync.md\n");
            return 0;
        } else {
            fprintf(stdout, "dirconn-pwsync: unknown argument %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (hc.path == NULL || hc.path[0] == '\0')
        hc.path = "/etc/dirconn/pwsync.conf";
    /* samba-tool reads stderr and stdout together and wants DONE-EXIT first */
    setvbuf(stdin, NULL, _IONBF, 0); /* no stdio copy of the cleartext */
    if (!config_load(&hc)) {
        config_clear(&hc);
        return EXIT_CONFIG;
    }
    struct pwsync_ldif l;
    struct dirconn_error err;
    memset(&err, 0, sizeof(err));
    if (pwsync_ldif_read(stdin, &l, &err) != DIRCONN_OK) {
        printf("dirconn-pwsync: %s\n", err.msg);
        config_clear(&hc);
        return EXIT_DATAERR;
    }
    int rc = 0;
    if (l.password == NULL) {
        /* a change of userAccountControl, sAMAccountName ... without a cleartext */
        printf("DONE-EXIT: %s: no cleartext password in the change (nothing to send; is "
               "plaintext or GPG storage configured?)\n",
               l.dn);
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = deliver(&hc, &l);
        curl_global_cleanup();
    }
    pwsync_ldif_clear(&l);
    config_clear(&hc);
    return rc;
}
