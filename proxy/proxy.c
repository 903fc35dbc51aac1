/* proxy.c - routes per cloud URL, their cache, and the libcurl options (see proxy.h). */
#include "proxy/proxy.h"

#include "connector/core/secret_store.h"
#include "proxy/proxy_px.h"
#include "connector/core/platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* How long libproxy (WPAD, PAC script) may take for one URL. */
#define PROXY_RESOLVE_TIMEOUT_MS 20000
/* Largest PAC file downloaded. */
#define PROXY_PAC_MAX        (1024u * 1024)
#define PROXY_PAC_TIMEOUT_MS 15000L
/* One cached answer: the routes of a scheme://host:port. */
struct proxy_host {
    struct proxy_host *next;
    char *key;
    char **routes;     /* NULL = DIRECT */
    char **last_error; /* per route: why it failed last, or NULL */
    size_t n;
    size_t current;      /* the route transfers use */
    uint64_t generation; /* bumped on every resolution */
    int64_t expires_ms;
    bool stale;      /* every route failed: resolve again on next use */
    char *pac_url;   /* for messages, or NULL */
    char *chosen_by; /* the setting that chose the routes (struct proxy_resolution) */
};

/* A proxy found dead, and until when. */
struct proxy_dead {
    struct proxy_dead *next;
    char *route; /* without user information */
    int64_t until_ms;
};

/* The route last logged for a host. */
struct proxy_seen {
    struct proxy_seen *next;
    char *key;
    char *label;
};

struct proxy_shared {
    bool log_routes; /* route changes at info, else at debug */
    pthread_mutex_t lock;
    struct proxy_dead *dead;
    struct proxy_seen *seen;
};

struct proxy_ctx {
    const struct config *cfg;
    const struct log_sink *log;
    struct proxy_shared *shared; /* the program's, or own_shared */
    struct proxy_shared *own_shared;
    char *password; /* wiped on free */
    struct proxy_host *hosts;
    size_t in_flight; /* transfers between proxy_configure and proxy_outcome */
};

static int64_t (*test_clock)(void); /* proxy_set_clock */

void proxy_set_clock(int64_t (*now_ms)(void))
{
    test_clock = now_ms;
}

static int64_t mono_ms(void)
{
    if (test_clock != NULL)
        return test_clock();
    return platform_monotonic_ms();
}

const char *proxy_mode_name(enum proxy_mode mode)
{
    switch (mode) {
    case PROXY_MODE_AUTO:
        return "auto";
    case PROXY_MODE_PAC:
        return "pac";
    case PROXY_MODE_EXPLICIT:
        return "explicit";
    case PROXY_MODE_NONE:
        return "none";
    }
    return "unknown";
}

static const char *auth_name(enum proxy_auth a)
{
    switch (a) {
    case PROXY_AUTH_ANY:
        return "any";
    case PROXY_AUTH_BASIC:
        return "basic";
    case PROXY_AUTH_DIGEST:
        return "digest";
    case PROXY_AUTH_NTLM:
        return "ntlm";
    case PROXY_AUTH_NEGOTIATE:
        return "negotiate";
    }
    return "any";
}

static unsigned long curl_auth_bits(enum proxy_auth a)
{
    switch (a) {
    case PROXY_AUTH_BASIC:
        return CURLAUTH_BASIC;
    case PROXY_AUTH_DIGEST:
        return CURLAUTH_DIGEST;
    case PROXY_AUTH_NTLM:
        return CURLAUTH_NTLM;
    case PROXY_AUTH_NEGOTIATE:
        return CURLAUTH_NEGOTIATE;
    case PROXY_AUTH_ANY:
        break;
    }
    return CURLAUTH_ANY;
}

/* ---- the memory shared by the contexts of a program ----------------------------------- */

enum dirconn_err proxy_shared_new(bool log_routes, struct proxy_shared **out,
                                  struct dirconn_error *err)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    (*out)->log_routes = log_routes;
    pthread_mutex_init(&(*out)->lock, NULL);
    return DIRCONN_OK;
}

static void dead_free_all(struct proxy_shared *s)
{
    while (s->dead != NULL) {
        struct proxy_dead *d = s->dead;
        s->dead = d->next;
        free(d->route);
        free(d);
    }
}

void proxy_shared_free(struct proxy_shared *s)
{
    if (s == NULL)
        return;
    dead_free_all(s);
    while (s->seen != NULL) {
        struct proxy_seen *v = s->seen;
        s->seen = v->next;
        free(v->key);
        free(v->label);
        free(v);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void proxy_shared_mark_dead(struct proxy_shared *s, const char *route, int64_t until_ms)
{
    char *key = route != NULL ? proxy_redact(route) : NULL;
    if (s == NULL || key == NULL) {
        free(key);
        return;
    }
    pthread_mutex_lock(&s->lock);
    struct proxy_dead *d = s->dead;
    while (d != NULL && strcmp(d->route, key) != 0)
        d = d->next;
    if (d == NULL && (d = calloc(1, sizeof(*d))) != NULL) {
        d->route = key;
        key = NULL;
        d->next = s->dead;
        s->dead = d;
    }
    if (d != NULL)
        d->until_ms = until_ms;
    pthread_mutex_unlock(&s->lock);
    free(key);
}

bool proxy_shared_is_dead(struct proxy_shared *s, const char *route, int64_t now_ms)
{
    char *key = s != NULL && route != NULL ? proxy_redact(route) : NULL;
    if (key == NULL)
        return false;
    bool dead = false;
    pthread_mutex_lock(&s->lock);
    for (struct proxy_dead *d = s->dead; d != NULL; d = d->next) {
        if (strcmp(d->route, key) == 0) {
            dead = now_ms < d->until_ms;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(key);
    return dead;
}

void proxy_shared_forget_dead(struct proxy_shared *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    dead_free_all(s);
    pthread_mutex_unlock(&s->lock);
}

bool proxy_shared_note_route(struct proxy_shared *s, const char *key, const char *label)
{
    if (s == NULL || key == NULL || label == NULL)
        return false;
    bool changed = false;
    pthread_mutex_lock(&s->lock);
    struct proxy_seen *v = s->seen;
    while (v != NULL && strcmp(v->key, key) != 0)
        v = v->next;
    if (v == NULL && (v = calloc(1, sizeof(*v))) != NULL) {
        if ((v->key = strdup(key)) == NULL) {
            free(v);
            v = NULL;
        } else {
            v->next = s->seen;
            s->seen = v;
        }
    }
    if (v != NULL && (v->label == NULL || strcmp(v->label, label) != 0)) {
        char *copy = strdup(label);
        if (copy != NULL) {
            free(v->label);
            v->label = copy;
            changed = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return changed;
}

char *proxy_shared_route_label(struct proxy_shared *s, const char *key)
{
    if (s == NULL || key == NULL)
        return NULL;
    char *label = NULL;
    pthread_mutex_lock(&s->lock);
    for (const struct proxy_seen *v = s->seen; v != NULL; v = v->next) {
        if (strcmp(v->key, key) == 0) {
            label = v->label != NULL ? strdup(v->label) : NULL;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return label;
}

/* ---- no_proxy, decided by libcurl ------------------------------------------------------ */

/* The dummy proxy and direct addresses of the probe (TEST-NET-1 and -2, RFC 5737). */
#define NP_PROXY_ADDR  "192.0.2.1"
#define NP_DIRECT_ADDR "198.51.100.1"

static curl_socket_t np_opensocket(void *clientp, curlsocktype purpose,
                                   struct curl_sockaddr *address)
{
    (void)purpose;
    int *verdict = clientp;
    if (address->family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&address->addr;
        char text[INET_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        if (strcmp(text, NP_PROXY_ADDR) == 0)
            *verdict = 1; /* the proxy */
        else if (strcmp(text, NP_DIRECT_ADDR) == 0)
            *verdict = 2; /* direct */
    }
    return CURL_SOCKET_BAD; /* no connection is ever made */
}

static int np_closesocket(void *clientp, curl_socket_t item)
{
    (void)clientp;
    (void)item;
    return 0;
}

bool proxy_no_proxy_match(const char *list, const char *url)
{
    if (list == NULL || list[0] == '\0' || url == NULL)
        return false;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return false;
    int verdict = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "http://" NP_PROXY_ADDR ":9");
    curl_easy_setopt(h, CURLOPT_NOPROXY, list);
    /* Without the proxy, connect to a fixed address: no name is looked up. */
    struct curl_slist *to = curl_slist_append(NULL, "::" NP_DIRECT_ADDR ":9");
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, to);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, np_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &verdict);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, np_closesocket);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    curl_slist_free_all(to);
    return verdict == 2;
}

const char *proxy_env_no_proxy(void)
{
    const char *v = getenv("no_proxy");
    if (v == NULL || v[0] == '\0')
        v = getenv("NO_PROXY");
    return v != NULL && v[0] != '\0' ? v : NULL;
}

char *proxy_env_proxy_url(const char *value)
{
    if (value == NULL || value[0] == '\0')
        return NULL;
    if (strstr(value, "://") != NULL)
        return strdup(value);
    size_t len = strlen(value) + 8;
    char *s = malloc(len);
    if (s != NULL)
        snprintf(s, len, "http://%s", value);
    return s;
}

/* ---- proxy authentication ------------------------------------------------------------- */

void proxy_auth_schemes(unsigned long bits, char *buf, size_t len)
{
    static const struct {
        unsigned long bit;
        const char *name;
    } names[] = {{CURLAUTH_BASIC, "Basic"},   {CURLAUTH_DIGEST, "Digest"},
                 {CURLAUTH_NTLM, "NTLM"},     {CURLAUTH_NEGOTIATE, "Negotiate"},
                 {CURLAUTH_BEARER, "Bearer"}, {CURLAUTH_DIGEST_IE, "Digest"}};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && off < len; i++) {
        if ((bits & names[i].bit) == 0 || strstr(buf, names[i].name) != NULL)
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", names[i].name);
        off += w > 0 ? (size_t)w : 0;
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "none");
}

void proxy_auth_refusal(const struct config *cfg, CURL *easy, const char *label, char *buf,
                        size_t len)
{
    long avail = 0;
    curl_easy_getinfo(easy, CURLINFO_PROXYAUTH_AVAIL, &avail);
    char offered[128];
    proxy_auth_schemes((unsigned long)avail, offered, sizeof(offered));
    if (cfg->proxy_username != NULL)
        snprintf(buf, len,
                 "%s refused the credentials of user '%s' (HTTP 407): it offers %s, [proxy] auth "
                 "is %s; check [proxy] username, password_file and auth",
                 label, cfg->proxy_username, offered, auth_name(cfg->proxy_auth));
    else
        snprintf(buf, len,
                 "%s wants credentials (HTTP 407): it offers %s, [proxy] auth is %s; set [proxy] "
                 "username and password_file",
                 label, offered, auth_name(cfg->proxy_auth));
}

enum dirconn_err proxy_new(const struct config *cfg, const struct log_sink *log,
                           struct proxy_shared *shared, struct proxy_ctx **out,
                           struct dirconn_error *err)
{
    *out = NULL;
    struct proxy_ctx *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    p->cfg = cfg;
    p->log = log;
    p->shared = shared;
    if (shared == NULL) {
        enum dirconn_err e = proxy_shared_new(false, &p->own_shared, err);
        if (e != DIRCONN_OK) {
            free(p);
            return e;
        }
        p->shared = p->own_shared;
    }
    if (cfg->proxy_password_file != NULL && cfg->proxy_mode != PROXY_MODE_NONE) {
        enum dirconn_err e =
            secret_file_read(cfg->proxy_password_file, "[proxy] password_file", &p->password, err);
        if (e != DIRCONN_OK) {
            proxy_shared_free(p->own_shared);
            free(p);
            return e;
        }
    } else if (cfg->proxy_username != NULL && cfg->proxy_mode != PROXY_MODE_NONE &&
               cfg->state_dir != NULL) {
        /* No password file: the secret store's proxy-password, when it is set. */
        struct secret_store *store = NULL;
        enum dirconn_err e = secret_store_open_config(cfg, SECRET_STORE_READ, &store, err);
        if (e == DIRCONN_OK) {
            char *value = NULL;
            e = secret_store_lookup(store, SECRET_PROXY_PASSWORD, &value, err);
            if (e == DIRCONN_OK && value != NULL)
                p->password = value; /* wiped and freed like a file's password */
            secret_store_close(store);
        }
        if (e != DIRCONN_OK) {
            proxy_shared_free(p->own_shared);
            free(p);
            return e;
        }
    }
    *out = p;
    return DIRCONN_OK;
}

static void host_free_routes(struct proxy_host *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->routes[i]);
        free(h->last_error[i]);
    }
    free(h->routes);
    free(h->last_error);
    free(h->pac_url);
    free(h->chosen_by);
    h->routes = NULL;
    h->last_error = NULL;
    h->pac_url = NULL;
    h->chosen_by = NULL;
    h->n = 0;
}

void proxy_free(struct proxy_ctx *p)
{
    if (p == NULL)
        return;
    secret_free(p->password);
    while (p->hosts != NULL) {
        struct proxy_host *h = p->hosts;
        p->hosts = h->next;
        host_free_routes(h);
        free(h->key);
        free(h);
    }
    proxy_shared_free(p->own_shared);
    free(p);
}

void proxy_resolution_clear(struct proxy_resolution *res)
{
    for (size_t i = 0; i < res->n; i++)
        free(res->routes[i]);
    free(res->routes);
    free(res->pac_url);
    free(res->pac_answer);
    free(res->chosen_by);
    memset(res, 0, sizeof(*res));
}

char *proxy_redact(const char *route)
{
    if (route == NULL)
        return strdup("DIRECT");
    CURLU *u = curl_url();
    char *s = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, route, 0) == CURLUE_OK) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        char *c = NULL;
        if (curl_url_get(u, CURLUPART_URL, &c, 0) == CURLUE_OK && c != NULL) {
            size_t n = strlen(c);
            /* curl adds a path "/" to the proxy URL: drop it again */
            if (n > 0 && c[n - 1] == '/' && strchr(route + strcspn(route, ":") + 3, '/') == NULL)
                c[n - 1] = '\0';
            s = strdup(c);
            curl_free(c);
        }
    } else {
        s = strdup("<unparsable proxy URL>");
    }
    curl_url_cleanup(u);
    return s;
}

bool proxy_route_from_libproxy(const char *answer, char **route)
{
    *route = NULL;
    if (strncasecmp(answer, "direct://", 9) == 0)
        return true;
    static const struct {
        const char *from, *to;
    } map[] = {{"http://", "http://"},       {"https://", "https://"},
               {"socks://", "socks4://"},    {"socks4://", "socks4://"},
               {"socks4a://", "socks4a://"}, {"socks5://", "socks5h://"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t fl = strlen(map[i].from);
        if (strncasecmp(answer, map[i].from, fl) != 0 || answer[fl] == '\0')
            continue;
        size_t len = strlen(map[i].to) + strlen(answer + fl) + 1;
        *route = malloc(len);
        if (*route == NULL)
            return false;
        snprintf(*route, len, "%s%s", map[i].to, answer + fl);
        return true;
    }
    return false;
}

/* One directive "KEYWORD [host:port]" (already trimmed), len bytes. */
static bool directive_valid(const char *d, size_t len)
{
    static const char *const with_host[] = {"PROXY",  "SOCKS", "SOCKS4", "SOCKS4A",
                                            "SOCKS5", "HTTP",  "HTTPS",  NULL};
    size_t kw = 0;
    while (kw < len && d[kw] != ' ' && d[kw] != '\t')
        kw++;
    size_t arg = kw;
    while (arg < len && (d[arg] == ' ' || d[arg] == '\t'))
        arg++;
    if (kw == 6 && strncasecmp(d, "DIRECT", 6) == 0)
        return arg == len;
    for (size_t i = 0; with_host[i] != NULL; i++) {
        if (strlen(with_host[i]) == kw && strncasecmp(d, with_host[i], kw) == 0)
            return arg < len && strcspn(d + arg, " \t") >= len - arg;
    }
    return false;
}

size_t proxy_pac_directives(const char *answer, bool *garbage)
{
    size_t n = 0;
    *garbage = false;
    const char *s = answer;
    for (;;) {
        size_t len = strcspn(s, ";");
        const char *b = s, *e = s + len;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        if (e > b) {
            n++;
            if (!directive_valid(b, (size_t)(e - b)))
                *garbage = true;
        }
        if (s[len] == '\0')
            break;
        s += len + 1;
    }
    return n;
}

/* ---- PAC download (mode pac with an http(s) URL) -------------------------- */

/*
 * Make the configured PAC readable for libproxy: pac+file:// and file:// are
 * checked and used as they are; pac+http(s):// and http(s):// are downloaded
 * directly with libcurl (TLS verified; libproxy 0.4 has no https) into a
 * private temporary file, *tmp_path, which the caller unlinks.
 */
static enum dirconn_err pac_localise(struct proxy_ctx *p, char **px_url, char **tmp_path,
                                     struct dirconn_error *err)
{
    const char *pac = p->cfg->proxy_pac_url;
    *px_url = NULL;
    *tmp_path = NULL;
    const char *rest = strncasecmp(pac, "pac+", 4) == 0 ? pac + 4 : pac;
    if (strncasecmp(rest, "file://", 7) == 0) {
        const char *path = rest + 7;
        if (access(path, R_OK) != 0)
            return dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s cannot be read: %s", pac,
                                     strerror(errno));
        size_t len = strlen(path) + 16;
        *px_url = malloc(len);
        if (*px_url == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        snprintf(*px_url, len, "pac+file://%s", path);
        return DIRCONN_OK;
    }
    struct http_request req;
    if (http_request_init(&req, PROXY_PAC_MAX, false, err) != DIRCONN_OK) {
        http_request_cleanup(&req);
        return DIRCONN_ENOMEM;
    }
    const struct http_options ho = {.timeout_ms = PROXY_PAC_TIMEOUT_MS,
                                    .connect_timeout_ms = PROXY_PAC_TIMEOUT_MS};
    http_request_setup(&req, &ho, rest);
    CURL *h = req.easy;
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* a PAC file is fetched directly */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    struct dirconn_error note;
    (void)http_perform(&req, NULL, rest, &note); /* no hooks: always DIRCONN_OK */
    CURLcode rc = req.rc;
    long status = req.status;
    const struct http_body *b = &req.body;
    enum dirconn_err e = DIRCONN_OK;
    if (rc != CURLE_OK)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s cannot be downloaded: %s (curl %d)", pac,
                              b->overflow     ? "larger than 1 MiB"
                              : req.errbuf[0] ? req.errbuf
                                              : curl_easy_strerror(rc),
                              (int)rc);
    else if (status != 200)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s cannot be downloaded: HTTP %ld", pac,
                              status);
    else if (b->len == 0)
        e = dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s is empty", pac);
    if (e != DIRCONN_OK) {
        http_request_cleanup(&req);
        return e;
    }
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/dirconn-pac-XXXXXX",
             tmpdir != NULL && tmpdir[0] == '/' && strlen(tmpdir) < 4000 ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    bool ok = fd >= 0;
    for (size_t off = 0; ok && off < b->len;) {
        ssize_t w = write(fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    int saved = errno;
    if (fd >= 0)
        close(fd);
    http_request_cleanup(&req);
    if (!ok) {
        if (fd >= 0)
            unlink(path);
        return dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s: cannot keep a copy in %s: %s", pac,
                                 path, strerror(saved));
    }
    size_t len = strlen(path) + 16;
    *px_url = malloc(len);
    *tmp_path = strdup(path);
    if (*px_url == NULL || *tmp_path == NULL) {
        unlink(path);
        free(*px_url);
        free(*tmp_path);
        *px_url = *tmp_path = NULL;
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    snprintf(*px_url, len, "pac+file://%s", path);
    return DIRCONN_OK;
}

static enum dirconn_err add_route(struct proxy_resolution *res, const char *route)
{
    char **v = realloc(res->routes, (res->n + 1) * sizeof(*v));
    if (v == NULL)
        return DIRCONN_ENOMEM;
    res->routes = v;
    v[res->n] = NULL;
    if (route != NULL && (v[res->n] = strdup(route)) == NULL)
        return DIRCONN_ENOMEM;
    res->n++;
    return DIRCONN_OK;
}

/* Does the libproxy configuration `config` come from the variable name? Then its name. */
static bool env_gave(const char *name, const char *config)
{
    char *v = proxy_env_proxy_url(getenv(name));
    bool same = false;
    if (v != NULL) {
        size_t a = strlen(v), b = strlen(config);
        /* libproxy may add the path "/" */
        while (a > 0 && v[a - 1] == '/')
            a--;
        while (b > 0 && config[b - 1] == '/')
            b--;
        same = a == b && strncasecmp(v, config, a) == 0;
    }
    free(v);
    return same;
}

/* Mode auto: which of the host's settings libproxy used (its configuration URL). */
static char *auto_chosen_by(const char *config, const char *url)
{
    static const char *const https_vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                                             "HTTP_PROXY", NULL};
    const char *const *vars = strncasecmp(url, "https://", 8) == 0 ? https_vars : https_vars + 2;
    char buf[2300];
    if (config == NULL || strncasecmp(config, "direct://", 9) == 0) {
        snprintf(buf, sizeof(buf), "no proxy setting in the environment");
    } else if (strncasecmp(config, "wpad:", 5) == 0) {
        snprintf(buf, sizeof(buf), "WPAD");
    } else {
        const char *var = NULL;
        for (size_t i = 0; vars[i] != NULL && var == NULL; i++) {
            if (env_gave(vars[i], config))
                var = vars[i];
        }
        bool pac = strncasecmp(config, "pac+", 4) == 0;
        if (pac)
            snprintf(buf, sizeof(buf), "PAC file %.2000s (%s%s)", config, var ? var : "",
                     var ? " in the environment" : "the desktop's proxy settings");
        else if (var != NULL)
            snprintf(buf, sizeof(buf), "%s in the environment", var);
        else
            snprintf(buf, sizeof(buf), "the desktop's proxy settings");
    }
    return strdup(buf);
}

/* libproxy for modes auto and pac. */
static enum dirconn_err resolve_px(struct proxy_ctx *p, const char *url,
                                   struct proxy_resolution *res, struct dirconn_error *err)
{
    const struct config *cfg = p->cfg;
    char *px_url = NULL, *tmp_path = NULL;
    enum dirconn_err e = DIRCONN_OK;
    if (cfg->proxy_mode == PROXY_MODE_PAC) {
        size_t len = strlen(cfg->proxy_pac_url) + 32;
        if ((res->pac_url = strdup(cfg->proxy_pac_url)) == NULL ||
            (res->chosen_by = malloc(len)) == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        snprintf(res->chosen_by, len, "PAC file %s ([proxy] pac_url)", cfg->proxy_pac_url);
        e = pac_localise(p, &px_url, &tmp_path, err);
        if (e != DIRCONN_OK)
            return e;
    }
    struct proxy_px_request req = {
        .url = url,
        .pac_url = px_url,
        .timeout_ms = PROXY_RESOLVE_TIMEOUT_MS,
    };
    struct proxy_px_answer ans;
    e = proxy_px_resolve(&req, &ans, err);
    if (tmp_path != NULL)
        unlink(tmp_path);
    free(tmp_path);
    free(px_url);
    if (e != DIRCONN_OK)
        return e;
    /* In mode auto the PAC (if any) is the one libproxy found in the host's settings. */
    if (res->pac_url == NULL && ans.config != NULL &&
        (strncasecmp(ans.config, "pac+", 4) == 0 || strncasecmp(ans.config, "wpad:", 5) == 0) &&
        (res->pac_url = strdup(ans.config)) == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK && ans.pac_ran &&
        (res->pac_answer = strdup(ans.pac_answer != NULL ? ans.pac_answer : "")) == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    const char *pac = res->pac_url != NULL ? res->pac_url : "(from the host's settings)";
    bool garbage = false;
    if (e != DIRCONN_OK) {
    } else if (ans.pac_unreadable) {
        e = dirconn_error_set(err, DIRCONN_EPROXY, "PAC %s cannot be downloaded or read", pac);
    } else if (ans.no_runner) {
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "PAC %s cannot be evaluated: libproxy has no PAC runner (install "
                              "libproxy1-plugin-webkit)",
                              pac);
    } else if (ans.failed) {
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "PAC %s cannot be evaluated for %s (libproxy's PAC runner "
                              "rejected the script: syntax error?)",
                              pac, url);
    } else if (ans.pac_ran && (ans.pac_answer == NULL || ans.pac_answer[0] == '\0')) {
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "PAC %s: FindProxyForURL(\"%s\") failed or returned nothing", pac,
                              url);
    } else if (ans.pac_ran &&
               (proxy_pac_directives(ans.pac_answer, &garbage) != ans.n || garbage)) {
        e = dirconn_error_set(err, DIRCONN_EPROXY,
                              "PAC %s returned '%.200s' for %s: not a list of "
                              "'PROXY host:port', 'SOCKS host:port' or 'DIRECT'",
                              pac, ans.pac_answer, url);
    }
    if (e == DIRCONN_OK && ans.wpad_failed)
        log_msg_limited(p->log, LOG_LEVEL_WARN, "proxy: WPAD found no PAC for %s: going DIRECT",
                        url);
    if (e == DIRCONN_OK && res->chosen_by == NULL &&
        (res->chosen_by = auto_chosen_by(ans.config, url)) == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    for (size_t i = 0; e == DIRCONN_OK && i < ans.n; i++) {
        char *route = NULL;
        if (!proxy_route_from_libproxy(ans.proxies[i], &route)) {
            e = dirconn_error_set(err, DIRCONN_EPROXY,
                                  "%s%s gave the proxy '%.200s' for %s, "
                                  "which libcurl cannot use",
                                  res->pac_url != NULL ? "PAC " : "libproxy",
                                  res->pac_url != NULL ? res->pac_url : "", ans.proxies[i], url);
            break;
        }
        if (add_route(res, route) != DIRCONN_OK)
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        free(route);
    }
    proxy_px_answer_clear(&ans);
    return e;
}

enum dirconn_err proxy_resolve(struct proxy_ctx *p, const char *url, struct proxy_resolution *res,
                               struct dirconn_error *err)
{
    memset(res, 0, sizeof(*res));
    const struct config *cfg = p->cfg;
    res->mode = cfg->proxy_mode;
    enum dirconn_err e = DIRCONN_OK;
    /* no_proxy first, as libcurl matches it: such a host goes DIRECT in every mode. */
    const char *by = NULL;
    if (cfg->proxy_mode != PROXY_MODE_NONE && proxy_no_proxy_match(cfg->proxy_no_proxy, url))
        by = "[proxy] no_proxy";
    else if (cfg->proxy_mode == PROXY_MODE_AUTO && proxy_no_proxy_match(proxy_env_no_proxy(), url))
        by = getenv("no_proxy") != NULL && getenv("no_proxy")[0] != '\0'
                 ? "no_proxy in the environment"
                 : "NO_PROXY in the environment";
    if (by != NULL) {
        e = add_route(res, NULL);
    } else {
        switch (cfg->proxy_mode) {
        case PROXY_MODE_NONE:
            by = "[proxy] mode none";
            e = add_route(res, NULL);
            break;
        case PROXY_MODE_EXPLICIT:
            by = "[proxy] mode explicit";
            e = add_route(res, cfg->proxy_url);
            break;
        case PROXY_MODE_AUTO:
        case PROXY_MODE_PAC:
            return resolve_px(p, url, res, err);
        }
    }
    if (e == DIRCONN_OK && (res->chosen_by = strdup(by)) == NULL)
        e = DIRCONN_ENOMEM;
    return e == DIRCONN_OK ? e : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

enum dirconn_err proxy_apply(struct proxy_ctx *p, CURL *easy, const char *url, const char *route,
                             struct dirconn_error *err)
{
    const struct config *cfg = p->cfg;
    CURLcode rc = curl_easy_setopt(easy, CURLOPT_PROXY, route != NULL ? route : "");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_NOPROXY,
                              cfg->proxy_no_proxy != NULL ? cfg->proxy_no_proxy : "");
    if (route != NULL) {
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(easy, CURLOPT_HTTPPROXYTUNNEL, is_https(url) ? 1L : 0L);
        if (rc == CURLE_OK &&
            (cfg->proxy_username != NULL || cfg->proxy_auth == PROXY_AUTH_NEGOTIATE)) {
            /* Negotiate without a user name uses the service's Kerberos credentials. */
            rc = curl_easy_setopt(easy, CURLOPT_PROXYUSERNAME,
                                  cfg->proxy_username != NULL ? cfg->proxy_username : "");
            if (rc == CURLE_OK)
                rc = curl_easy_setopt(easy, CURLOPT_PROXYPASSWORD,
                                      p->password != NULL ? p->password : "");
            if (rc == CURLE_OK)
                rc = curl_easy_setopt(easy, CURLOPT_PROXYAUTH, curl_auth_bits(cfg->proxy_auth));
        }
    }
    if (rc != CURLE_OK) {
        char *shown = proxy_redact(route);
        dirconn_error_set(err, DIRCONN_EPROXY, "proxy %s: libcurl refused the proxy options: %s",
                          shown != NULL ? shown : "?", curl_easy_strerror(rc));
        free(shown);
        return DIRCONN_EPROXY;
    }
    return DIRCONN_OK;
}

/* "https://host:port" of a URL (the cache key); NULL on ENOMEM or a bad URL. */
static char *host_key(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        size_t len = strlen(scheme) + strlen(host) + strlen(port) + 8;
        key = malloc(len);
        if (key != NULL)
            snprintf(key, len, "%s://%s:%s", scheme, host, port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

bool proxy_cache_usable(int64_t now_ms, int64_t expires_ms, int64_t ttl_ms, bool in_flight)
{
    if (!in_flight)
        return now_ms < expires_ms - ttl_ms / 5; /* refreshed ahead, while nothing waits */
    return now_ms < expires_ms + ttl_ms;         /* stale but serving until nothing is in flight */
}

/* The cached routes of url's host, resolved when missing, expired or stale. */
static enum dirconn_err host_get(struct proxy_ctx *p, const char *url, struct proxy_host **out,
                                 struct dirconn_error *err)
{
    char *key = host_key(url);
    if (key == NULL)
        return dirconn_error_set(err, DIRCONN_EPROXY, "cannot parse the URL '%s'", url);
    struct proxy_host *h = p->hosts;
    while (h != NULL && strcmp(h->key, key) != 0)
        h = h->next;
    int64_t now = mono_ms();
    int64_t ttl = p->cfg->proxy_pac_ttl_ms > 0 ? p->cfg->proxy_pac_ttl_ms : 300000;
    /*
     * Resolving (a PAC or WPAD in a child process, up to its deadline) blocks the caller: the
     * transfer loop of scim.c with up to max_in_flight transfers. So a list is resolved again
     * ahead of its expiry (its last fifth) when no transfer of this context is in flight, and
     * while transfers are in flight an expired list goes on serving for up to one more TTL;
     * the next call with none in flight resolves it. Only a missing or exhausted list (every
     * route failed) is resolved at once.
     */
    if (h != NULL && !h->stale && h->n > 0 &&
        proxy_cache_usable(now, h->expires_ms, ttl, p->in_flight > 0)) {
        free(key);
        *out = h;
        return DIRCONN_OK;
    }
    struct proxy_resolution res;
    enum dirconn_err e = proxy_resolve(p, url, &res, err);
    if (e != DIRCONN_OK) {
        proxy_resolution_clear(&res);
        free(key);
        return e;
    }
    if (h == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL) {
            proxy_resolution_clear(&res);
            free(key);
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        }
        h->key = key;
        key = NULL;
        h->next = p->hosts;
        p->hosts = h;
    }
    free(key);
    host_free_routes(h);
    h->last_error = calloc(res.n, sizeof(*h->last_error));
    if (h->last_error == NULL) {
        proxy_resolution_clear(&res);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    h->routes = res.routes;
    h->n = res.n;
    h->pac_url = res.pac_url;
    h->chosen_by = res.chosen_by;
    res.routes = NULL;
    res.n = 0;
    res.pac_url = NULL;
    res.chosen_by = NULL;
    h->current = 0;
    h->generation++;
    h->stale = false;
    h->expires_ms = now + ttl;
    if (p->log != NULL && log_enabled(p->log, LOG_LEVEL_DEBUG)) {
        for (size_t i = 0; i < h->n; i++) {
            char *shown = proxy_redact(h->routes[i]);
            log_msg(p->log, LOG_LEVEL_DEBUG, "proxy: %s route %zu: %s%s%s", h->key, i + 1,
                    shown != NULL ? shown : "?", h->pac_url ? " from PAC " : "",
                    h->pac_url ? h->pac_url : "");
            free(shown);
        }
    }
    proxy_resolution_clear(&res);
    *out = h;
    return DIRCONN_OK;
}

/*
 * Pass over the proxies that the shared memory holds dead (another context,
 * or an earlier run, found them so) while a later route remains; when every
 * remaining route is dead the current one is tried all the same.
 */
static void skip_dead(struct proxy_ctx *p, struct proxy_host *h)
{
    int64_t now = mono_ms();
    size_t i = h->current < h->n ? h->current : 0;
    size_t first = i;
    while (i < h->n && proxy_shared_is_dead(p->shared, h->routes[i], now))
        i++;
    if (i < h->n && i != first) {
        char *shown = proxy_redact(h->routes[first]);
        log_msg(p->log, LOG_LEVEL_DEBUG,
                "proxy: %s: passing over %s, found dead less than "
                "[proxy] pac_ttl ago",
                h->key, shown != NULL ? shown : "?");
        free(shown);
        h->current = i;
    }
}

/* "proxy http://h:p (PAC X)" or "DIRECT" into buf. */
static void route_label(const struct proxy_host *h, size_t idx, char *buf, size_t len);

/* Log the host's route when it is not the one logged last for that host. */
static void note_route(struct proxy_ctx *p, struct proxy_host *h)
{
    char label[800], line[1200];
    route_label(h, h->current < h->n ? h->current : 0, label, sizeof(label));
    snprintf(line, sizeof(line), "%s, chosen by %s", label,
             h->chosen_by != NULL ? h->chosen_by : "?");
    if (proxy_shared_note_route(p->shared, h->key, line))
        log_msg(p->log, p->shared->log_routes ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
                "proxy route for %s: %s", h->key, line);
}

enum dirconn_err proxy_route_for(struct proxy_ctx *p, const char *url, const char **route,
                                 struct dirconn_error *err)
{
    struct proxy_host *h = NULL;
    *route = NULL;
    enum dirconn_err e = host_get(p, url, &h, err);
    if (e == DIRCONN_OK) {
        skip_dead(p, h);
        *route = h->routes[h->current < h->n ? h->current : 0];
    }
    return e;
}

char *proxy_route_used(struct proxy_ctx *p, const char *url)
{
    char *key = p != NULL && url != NULL ? host_key(url) : NULL;
    if (key == NULL)
        return NULL;
    struct proxy_host *h = p->hosts;
    while (h != NULL && strcmp(h->key, key) != 0)
        h = h->next;
    free(key);
    if (h == NULL || h->n == 0)
        return NULL;
    if (h->stale)
        return strdup("none: every route failed");
    char *shown = proxy_redact(h->routes[h->current < h->n ? h->current : 0]);
    if (shown == NULL || h->pac_url == NULL)
        return shown;
    size_t len = strlen(shown) + strlen(h->pac_url) + 16;
    char *out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s (from PAC %s)", shown, h->pac_url);
    free(shown);
    return out;
}

enum dirconn_err proxy_configure(void *arg, CURL *easy, const char *url, struct http_route *route,
                                 struct dirconn_error *err)
{
    struct proxy_ctx *p = arg;
    struct proxy_host *h = NULL;
    memset(route, 0, sizeof(*route));
    enum dirconn_err e = host_get(p, url, &h, err);
    if (e != DIRCONN_OK)
        return e;
    skip_dead(p, h);
    note_route(p, h);
    size_t idx = h->current < h->n ? h->current : 0;
    e = proxy_apply(p, easy, url, h->routes[idx], err);
    if (e != DIRCONN_OK)
        return e;
    /* The route rides in the request's own state to proxy_outcome. */
    *route = (struct http_route){.host = h, .generation = h->generation, .index = idx};
    p->in_flight++;
    return DIRCONN_OK;
}

/* Did the route itself fail (rather than the cloud behind it)? */
static bool route_failed(const char *route, const char *url, CURLcode rc, long connect_code)
{
    if (route == NULL)
        return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
    if (connect_code != 0 && connect_code / 100 != 2)
        return true; /* the proxy refused the CONNECT or could not reach the cloud */
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
        return true;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
        /* before the tunnel stood: the proxy's fault */
        return is_https(url) && connect_code == 0;
    default:
        return false;
    }
}

static void route_label(const struct proxy_host *h, size_t idx, char *buf, size_t len)
{
    char *shown = proxy_redact(h->routes[idx]);
    if (h->routes[idx] == NULL)
        snprintf(buf, len, "DIRECT");
    else
        snprintf(buf, len, "proxy %.300s%s%.300s%s", shown != NULL ? shown : "?",
                 h->pac_url != NULL ? " (from PAC " : "", h->pac_url != NULL ? h->pac_url : "",
                 h->pac_url != NULL ? ")" : "");
    free(shown);
}

enum http_outcome proxy_outcome(void *arg, CURL *easy, const char *url, CURLcode rc,
                                struct http_route *chosen, struct dirconn_error *err)
{
    struct proxy_ctx *p = arg;
    if (chosen == NULL || chosen->host == NULL)
        return HTTP_OUTCOME_DEFAULT; /* not configured through p, or judged already */
    if (p->in_flight > 0)
        p->in_flight--;
    struct proxy_host *h = chosen->host;
    struct {
        uint64_t generation;
        size_t index;
    } f = {chosen->generation, chosen->index};
    memset(chosen, 0, sizeof(*chosen)); /* judged once */
    if (f.generation != h->generation || f.index >= h->n)
        return HTTP_OUTCOME_DEFAULT; /* resolved again meanwhile: nothing to judge */
    const char *route = h->routes[f.index];
    long connect_code = 0, status = 0;
    curl_easy_getinfo(easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    char label[800];
    route_label(h, f.index, label, sizeof(label));
    if (route != NULL && (connect_code == 407 || (!is_https(url) && status == 407))) {
        char msg[DIRCONN_ERROR_LEN];
        proxy_auth_refusal(p->cfg, easy, label, msg, sizeof(msg));
        dirconn_error_set(err, DIRCONN_EPROXY, "%s", msg);
        return HTTP_OUTCOME_FAIL;
    }
    if (!route_failed(route, url, rc, connect_code))
        return HTTP_OUTCOME_DEFAULT; /* the route works: the host keeps it */
    char why[400];
    if (connect_code != 0 && connect_code / 100 != 2)
        snprintf(why, sizeof(why), "CONNECT answered HTTP %ld", connect_code);
    else
        snprintf(why, sizeof(why), "%s (curl %d)", curl_easy_strerror(rc), (int)rc);
    free(h->last_error[f.index]);
    h->last_error[f.index] = strdup(why);
    log_msg_limited(p->log, LOG_LEVEL_WARN, "%s failed for %s: %s", label, h->key, why);
    /* Every context of the program passes over it for pac_ttl. */
    if (route != NULL)
        proxy_shared_mark_dead(
            p->shared, route,
            mono_ms() + (p->cfg->proxy_pac_ttl_ms > 0 ? p->cfg->proxy_pac_ttl_ms : 300000));
    if (h->current == f.index)
        h->current = f.index + 1;
    if (h->current < h->n) {
        char next[800];
        route_label(h, h->current, next, sizeof(next));
        dirconn_error_set(err, route != NULL ? DIRCONN_EPROXY : DIRCONN_ECLOUD_CONNECT,
                          "%s: %s; next route: %s", label, why, next);
        return HTTP_OUTCOME_RETRY;
    }
    /* Every route failed: name them all, and resolve again next time. */
    bool all_proxies = true;
    for (size_t i = 0; i < h->n; i++)
        all_proxies = all_proxies && h->routes[i] != NULL;
    char msg[DIRCONN_ERROR_LEN];
    size_t off = (size_t)snprintf(msg, sizeof(msg), "no route reached %s:", h->key);
    for (size_t i = 0; i < h->n && off < sizeof(msg); i++) {
        char l[800];
        route_label(h, i, l, sizeof(l));
        int w = snprintf(msg + off, sizeof(msg) - off, "%s %s: %s", i ? ";" : "", l,
                         h->last_error[i] != NULL ? h->last_error[i] : "not tried");
        off += w > 0 ? (size_t)w : 0;
    }
    dirconn_error_set(err, all_proxies ? DIRCONN_EPROXY : DIRCONN_ECLOUD_CONNECT, "%s", msg);
    h->stale = true;
    h->current = 0;
    return HTTP_OUTCOME_DEFAULT;
}
