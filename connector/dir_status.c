/* dir_status.c - the directory side of dirconnd and the guard against blind re-binds. */
#include "connector/dir_status.h"

#include "connector/core/secret_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest file read to hash it; a configuration or password file is far smaller. */
#define WATCH_MAX (4 * 1024 * 1024)

/* A watched file: what stat(2) said and the keyed hash of its content. */
struct watched {
    char path[PATH_MAX];
    bool present; /* the file existed at the snapshot */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    unsigned char hash[32];
};

struct dir_status {
    const struct log_sink *log;
    enum dir_state state;
    uint64_t epoch;        /* bumped by a refusal, a rearm and a reload */
    bool confirmed;        /* a bind with the current configuration and password worked */
    bool probe_in_flight;  /* the one unconfirmed attempt is running */
    unsigned char key[32]; /* HMAC key: no plain hash of a password stays in memory */
    char preferred[512];   /* [ldap] urls, first */
    char url[512];         /* the DC of the last successful bind, "" = none yet */
    time_t bound_at;
    char error[DIRCONN_ERROR_LEN]; /* the last directory error, "" = none */
    enum dirconn_err error_code;
    time_t error_at;
    time_t refused_at;
    struct watched config;   /* the configuration file, as loaded */
    struct watched password; /* the password source, as the refused attempt read it */
    bool watch_password;     /* there is a password source (bind_dn is set) */
    /* the notification connection */
    enum dir_notify notify;
    const char *notify_method;
    char notify_error[DIRCONN_ERROR_LEN];
    time_t notify_retry;
};

static const char *const state_names[] = {"unknown", "ok", "failing", "bind refused",
                                          "retrying the bind"};
static const char *const notify_names[] = {"off",         "connected", "reconnecting",
                                           "unsupported", "held",      "standby"};

const char *dir_state_name(enum dir_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

const char *dir_notify_name(enum dir_notify n)
{
    return (unsigned)n < sizeof(notify_names) / sizeof(notify_names[0]) ? notify_names[n] : "?";
}

/*
 * set_state - the one place the state changes; each transition is logged (info).
 *
 *   UNKNOWN, OK, FAILING, RETRYING -> OK        an attempt bound (and its search worked)
 *   UNKNOWN, OK, FAILING, RETRYING -> FAILING   unreachable, TLS, timeout, search error
 *   UNKNOWN, OK, FAILING, RETRYING -> REFUSED   a DC refused the bind (DIRCONN_ELDAP_AUTH)
 *   REFUSED                        -> RETRYING  rearm: SIGHUP, configuration or password
 *                                               changed, dirconnctl sync-now
 * Only attempts that began in the current epoch move the state (see dir_status_end);
 * nothing leaves REFUSED but a rearm.
 */
static void set_state(struct dir_status *ds, enum dir_state s)
{
    if (ds->state == s)
        return;
    log_msg(ds->log, LOG_LEVEL_INFO, "directory: %s -> %s", state_names[ds->state], state_names[s]);
    ds->state = s;
}

/* ---- watched files ---------------------------------------------------------------- */

/*
 * Take the stat and the keyed hash of path into w. A missing file is a state
 * of its own (present = false, hash of nothing), so that its creation counts
 * as a change.
 */
static void watch_snapshot(const struct dir_status *ds, const char *path, struct watched *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "%s", path);
    unsigned char *buf = NULL;
    size_t n = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= WATCH_MAX) {
        w->present = true;
        w->dev = st.st_dev;
        w->ino = st.st_ino;
        w->size = st.st_size;
        w->mtime = st.st_mtim;
        w->ctime = st.st_ctim;
        buf = malloc((size_t)st.st_size + 1);
        while (buf != NULL && n < (size_t)st.st_size) {
            ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            n += (size_t)got;
        }
    }
    if (fd >= 0)
        close(fd);
    unsigned int len = sizeof(w->hash);
    HMAC(EVP_sha256(), ds->key, (int)sizeof(ds->key), buf != NULL ? buf : (unsigned char *)"", n,
         w->hash, &len);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, n); /* a password file */
        free(buf);
    }
}

/* Whether stat(2) says the file may have changed since the snapshot. */
static bool watch_stat_differs(const struct watched *w)
{
    struct stat st;
    if (stat(w->path, &st) != 0)
        return w->present;
    return !w->present || st.st_dev != w->dev || st.st_ino != w->ino || st.st_size != w->size ||
           st.st_mtim.tv_sec != w->mtime.tv_sec || st.st_mtim.tv_nsec != w->mtime.tv_nsec ||
           st.st_ctim.tv_sec != w->ctime.tv_sec || st.st_ctim.tv_nsec != w->ctime.tv_nsec;
}

/*
 * Whether the content changed since the snapshot w; the snapshot moves to the
 * current file either way, so each change is reported once.
 */
static bool watch_changed(const struct dir_status *ds, struct watched *w)
{
    if (w->path[0] == '\0' || !watch_stat_differs(w))
        return false;
    struct watched now;
    watch_snapshot(ds, w->path, &now);
    bool changed = now.present != w->present || CRYPTO_memcmp(now.hash, w->hash, 32) != 0;
    *w = now;
    return changed;
}

/* ---- the status ------------------------------------------------------------------- */

enum dirconn_err dir_status_new(const struct log_sink *log, struct dir_status **out,
                                struct dirconn_error *err)
{
    *out = NULL;
    struct dir_status *ds = calloc(1, sizeof(*ds));
    if (ds == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (RAND_bytes(ds->key, sizeof(ds->key)) != 1) {
        free(ds);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "cannot draw a random key (RAND_bytes)");
    }
    ds->log = log;
    ds->epoch = 1;
    *out = ds;
    return DIRCONN_OK;
}

void dir_status_free(struct dir_status *ds)
{
    if (ds == NULL)
        return;
    OPENSSL_cleanse(ds->key, sizeof(ds->key));
    free(ds);
}

/* Where the bind password comes from: its file, the secret store, or nowhere (anonymous). */
static bool password_source(const struct config *cfg, char *buf, size_t len)
{
    if (cfg->bind_dn == NULL)
        return false;
    if (cfg->bind_password_file != NULL) {
        snprintf(buf, len, "%s", cfg->bind_password_file);
        return true;
    }
    return secret_store_path(cfg, buf, len);
}

void dir_status_configure(struct dir_status *ds, const struct config *cfg)
{
    snprintf(ds->preferred, sizeof(ds->preferred), "%s", cfg->urls.n > 0 ? cfg->urls.v[0] : "");
    if (cfg->path != NULL)
        watch_snapshot(ds, cfg->path, &ds->config);
    else
        memset(&ds->config, 0, sizeof(ds->config));
    char path[PATH_MAX];
    ds->watch_password = password_source(cfg, path, sizeof(path));
    if (ds->watch_password && strcmp(path, ds->password.path) != 0)
        watch_snapshot(ds, path, &ds->password);
    if (!ds->watch_password)
        memset(&ds->password, 0, sizeof(ds->password));
    ds->epoch++;
    ds->confirmed = false;
    ds->probe_in_flight = false;
}

bool dir_status_begin(struct dir_status *ds, struct dir_attempt *a)
{
    memset(a, 0, sizeof(*a));
    if (ds->state == DIR_STATE_REFUSED)
        return false;
    if (!ds->confirmed) {
        if (ds->probe_in_flight)
            return false;
        ds->probe_in_flight = true;
        a->probe = true;
    }
    a->epoch = ds->epoch;
    if (ds->watch_password) {
        struct watched w;
        watch_snapshot(ds, ds->password.path, &w);
        memcpy(a->hash, w.hash, sizeof(a->hash));
        a->has_password = w.present;
    }
    return true;
}

static bool directory_error(enum dirconn_err code)
{
    switch (code) {
    case DIRCONN_ELDAP_CONNECT:
    case DIRCONN_ELDAP_TLS:
    case DIRCONN_ELDAP_AUTH:
    case DIRCONN_ELDAP_NOSUCHOBJECT:
    case DIRCONN_ELDAP_UNSUPPORTED:
    case DIRCONN_ELDAP_TIMEOUT:
    case DIRCONN_ELDAP:
    case DIRCONN_EWATERMARK:
        return true;
    default:
        return false;
    }
}

void dir_status_end(struct dir_status *ds, const struct dir_attempt *a, enum dirconn_err code,
                    const char *msg, bool bound, const char *url)
{
    bool fresh = a->epoch == ds->epoch;
    if (a->probe && fresh)
        ds->probe_in_flight = false;
    if (bound)
        ds->bound_at = time(NULL);
    if (bound && url != NULL && url[0] != '\0')
        snprintf(ds->url, sizeof(ds->url), "%s", url);
    if (directory_error(code)) {
        snprintf(ds->error, sizeof(ds->error), "%s", msg != NULL ? msg : dirconn_strerror(code));
        ds->error_code = code;
        ds->error_at = time(NULL);
    }
    if (!fresh || ds->state == DIR_STATE_REFUSED)
        return;
    if (code == DIRCONN_ELDAP_AUTH) {
        log_msg(ds->log, LOG_LEVEL_ERROR,
                "%s; no connection binds again until the configuration or the bind password "
                "changes, SIGHUP, or dirconnctl sync-now",
                ds->error);
        set_state(ds, DIR_STATE_REFUSED);
        ds->refused_at = time(NULL);
        /* What the refused attempt presented: a change from it lifts the refusal. */
        memcpy(ds->password.hash, a->hash, sizeof(a->hash));
        ds->password.present = a->has_password;
        ds->password.mtime.tv_sec = -1; /* the next check reads the content */
        ds->confirmed = false;
        ds->probe_in_flight = false;
        ds->epoch++;
    } else if (directory_error(code)) {
        set_state(ds, DIR_STATE_FAILING);
    } else if (bound) {
        ds->confirmed = true;
        set_state(ds, DIR_STATE_OK);
    }
}

bool dir_status_rearm(struct dir_status *ds, const char *why)
{
    if (ds->state != DIR_STATE_REFUSED)
        return false;
    log_msg(ds->log, LOG_LEVEL_INFO, "directory: %s: one bind is tried again", why);
    set_state(ds, DIR_STATE_RETRYING);
    ds->epoch++;
    ds->confirmed = false;
    ds->probe_in_flight = false;
    return true;
}

bool dir_status_refused(const struct dir_status *ds)
{
    return ds->state == DIR_STATE_REFUSED;
}

enum dir_state dir_status_state(const struct dir_status *ds)
{
    return ds->state;
}

enum dir_change dir_status_check(struct dir_status *ds)
{
    if (ds->state != DIR_STATE_REFUSED)
        return DIR_CHANGE_NONE;
    if (watch_changed(ds, &ds->config))
        return DIR_CHANGE_CONFIG;
    if (ds->watch_password && watch_changed(ds, &ds->password))
        return DIR_CHANGE_PASSWORD;
    return DIR_CHANGE_NONE;
}

void dir_status_notify(struct dir_status *ds, enum dir_notify st, const char *method,
                       const char *error, time_t next_retry)
{
    ds->notify = st;
    ds->notify_method = st == DIR_NOTIFY_CONNECTED ? method : NULL;
    snprintf(ds->notify_error, sizeof(ds->notify_error), "%s", error != NULL ? error : "");
    ds->notify_retry = next_retry;
}

enum dir_notify dir_status_notify_state(const struct dir_status *ds)
{
    return ds->notify;
}

const char *dir_status_word(const struct dir_status *ds)
{
    if (ds->state == DIR_STATE_REFUSED || ds->state == DIR_STATE_RETRYING ||
        ds->state == DIR_STATE_FAILING)
        return "error";
    if (ds->notify == DIR_NOTIFY_RECONNECTING || ds->notify == DIR_NOTIFY_HELD)
        return "degraded";
    if (ds->url[0] != '\0' && ds->preferred[0] != '\0' && strcmp(ds->url, ds->preferred) != 0)
        return "degraded";
    return "ok";
}

const char *dir_status_reason(const struct dir_status *ds, char *buf, size_t len)
{
    if (ds->state == DIR_STATE_REFUSED || ds->state == DIR_STATE_RETRYING ||
        ds->state == DIR_STATE_FAILING)
        snprintf(buf, len, "directory: %s", dir_state_name(ds->state));
    else if (ds->notify == DIR_NOTIFY_RECONNECTING || ds->notify == DIR_NOTIFY_HELD)
        snprintf(buf, len, "directory: change notifications %s", dir_notify_name(ds->notify));
    else if (ds->url[0] != '\0' && ds->preferred[0] != '\0' && strcmp(ds->url, ds->preferred) != 0)
        snprintf(buf, len, "directory: %s is in use, not the preferred %s", ds->url, ds->preferred);
    else
        snprintf(buf, len, "directory: ok");
    return buf;
}

static json_t *iso_time(time_t t)
{
    if (t == 0)
        return json_null();
    char buf[40];
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm);
    return json_string(buf);
}

static json_t *string_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

json_t *dir_status_json(const struct dir_status *ds)
{
    json_t *n =
        json_pack("{s:s, s:o, s:o, s:o}", "state", dir_notify_name(ds->notify), "method",
                  string_or_null(ds->notify_method), "error", string_or_null(ds->notify_error),
                  "next_retry", iso_time(ds->notify_retry));
    return json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "state", dir_status_word(ds),
        "condition", dir_state_name(ds->state), "server", string_or_null(ds->url), "preferred",
        string_or_null(ds->preferred), "bound", iso_time(ds->bound_at), "error",
        string_or_null(ds->error), "error_code",
        ds->error[0] != '\0' ? json_string(dirconn_err_name(ds->error_code)) : json_null(),
        "error_at", iso_time(ds->error_at), "refused_since",
        ds->state == DIR_STATE_REFUSED || ds->state == DIR_STATE_RETRYING ? iso_time(ds->refused_at)
                                                                          : json_null(),
        "notifications", n);
}
