/*
 * mailer.c - sync reports and alerts by email (see mailer.h).
 *
 * One thread per mailer waits on a condition variable (CLOCK_MONOTONIC) for the earliest of:
 * a queued message whose retry pause is over, the end of the summary period, the "no success"
 * deadline, or stop. Deliveries run outside the lock with a libcurl easy handle bounded by
 * CURLOPT_TIMEOUT_MS; a progress callback aborts one in flight when the mailer stops.
 */
#include "connector/mailer.h"

#include "connector/core/secret_store.h"
#include "connector/core/platform.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define WARN_REPEAT_MS (3600 * 1000LL) /* a still-failing server is mentioned again after this */
#define RETRY_FIRST_MS 5000LL          /* the first pause before a retry; then x4 */

/* [reports] as the mailer keeps it (a copy: a reload frees the daemon's config). */
struct mailer_settings {
    char *smtp_url, *from, *ca_file, *username, *password_file, *connector;
    struct strlist to;
    int starttls;
    int64_t timeout_ms, interval_ms, no_success_ms;
    int retries;
};

struct mail {
    struct mailer_content c;
    enum mailer_kind kind;
    int attempts;       /* deliveries tried */
    int64_t not_before; /* monotonic ms */
};

/* The latest run, copied. */
struct run_copy {
    bool valid;
    struct mailer_run run;
    char *message, *summary;
    char *problems[MAILER_MAX_PROBLEMS];
};

struct mailer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    atomic_bool stop;
    const struct log_sink *log;
    struct mailer_settings set;
    struct mail *q[MAILER_QUEUE_MAX]; /* FIFO: q[0] is next */
    size_t n;
    /* the period of the summary */
    time_t period_start;
    int64_t next_summary; /* monotonic ms; 0 = no summaries */
    long runs, succeeded, failed_runs, threshold_runs, added, updated, deleted, failed;
    long undelivered;
    struct run_copy last;
    /* the "no success" alert */
    bool active;
    int64_t success_mono; /* last success or activation, monotonic ms */
    time_t last_success;  /* wall clock, 0 = none seen */
    bool no_success_sent;
    /* repeated alerts */
    enum mailer_kind last_alert_kind;
    char *last_alert_reason;
    int64_t last_alert_at;
    /* the delivery warning */
    bool failing;
    int64_t warned_at;
};

/* ---- composition ------------------------------------------------------------------------ */

static const char *const kind_names[] = {"summary", "sync failed", "delete threshold", "lease lost",
                                         "no success"};

const char *mailer_kind_name(enum mailer_kind kind)
{
    return kind >= MAILER_SUMMARY && kind <= MAILER_ALERT_NO_SUCCESS ? kind_names[kind] : "?";
}

void mailer_format_date(time_t t, char *out, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A wall-clock time for the bodies: "2026-12-06 20:28:16 UTC", or "never" for 0. */
static void when(time_t t, char *out, size_t len)
{
    if (t == 0) {
        snprintf(out, len, "never");
        return;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Write s with the HTML special characters escaped. */
static void html_put(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void html_row(FILE *f, const char *name, const char *value)
{
    fputs("<tr><th align=\"left\">", f);
    html_put(f, name);
    fputs("</th><td>", f);
    html_put(f, value);
    fputs("</td></tr>\n", f);
}

static const char *run_outcome(const struct mailer_run *r)
{
    switch (r->rc) {
    case DIRCONN_OK:
        return "success";
    case DIRCONN_ETHRESHOLD:
        return "stopped by the delete threshold";
    case DIRCONN_EFAIL:
        return "some objects failed";
    case DIRCONN_ECANCELED:
        return "stopped";
    default:
        return "failed";
    }
}

/* The latest run in text (section of both kinds of mail). */
static void text_run(FILE *f, const struct mailer_run *r)
{
    char end[40];
    when(r->ended, end, sizeof(end));
    fprintf(f, "\nLast Synchronization\n");
    fprintf(f, "Type: %s\nEnded: %s (%.1f s)\nStatus: %s\n", r->full ? "full" : "incremental", end,
            r->seconds, run_outcome(r));
    if (r->message != NULL && r->message[0] != '\0')
        fprintf(f, "Message: %s\n", r->message);
    if (r->summary != NULL && r->summary[0] != '\0') {
        fputc('\n', f);
        fputs(r->summary, f);
        if (r->summary[strlen(r->summary) - 1] != '\n')
            fputc('\n', f);
    }
    if (r->problems_total > 0) {
        fprintf(f, "\nProblems (%ld", r->problems_total);
        if ((long)r->n_problems < r->problems_total)
            fprintf(f, ", the first %zu", r->n_problems);
        fprintf(f, ")\n");
        for (size_t i = 0; i < r->n_problems; i++)
            fprintf(f, "- %s\n", r->problems[i]);
        if ((long)r->n_problems < r->problems_total)
            fprintf(f, "... and %ld more (see the log or 'dirconnctl sync --dry-run --report')\n",
                    r->problems_total - (long)r->n_problems);
    }
}

static void html_run(FILE *f, const struct mailer_run *r)
{
    char end[40], buf[64];
    when(r->ended, end, sizeof(end));
    fputs("<h3>Last Synchronization</h3>\n<table>\n", f);
    html_row(f, "Type", r->full ? "full" : "incremental");
    snprintf(buf, sizeof(buf), "%.1f s", r->seconds);
    html_row(f, "Ended", end);
    html_row(f, "Duration", buf);
    html_row(f, "Status", run_outcome(r));
    if (r->message != NULL && r->message[0] != '\0')
        html_row(f, "Message", r->message);
    fputs("</table>\n", f);
    if (r->summary != NULL && r->summary[0] != '\0') {
        fputs("<pre>", f);
        html_put(f, r->summary);
        fputs("</pre>\n", f);
    }
    if (r->problems_total > 0) {
        fprintf(f, "<h3>Problems (%ld)</h3>\n<table border=\"1\" cellpadding=\"3\">\n",
                r->problems_total);
        fputs("<tr><th>Warning or Error Message</th></tr>\n", f);
        for (size_t i = 0; i < r->n_problems; i++) {
            fputs("<tr><td>", f);
            html_put(f, r->problems[i]);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
        if ((long)r->n_problems < r->problems_total)
            fprintf(f, "<p>... and %ld more.</p>\n", r->problems_total - (long)r->n_problems);
    }
}

/* The subject's words for an alert; the cause itself is in the body. */
static const char *alert_title(const struct mailer_report *r)
{
    switch (r->kind) {
    case MAILER_ALERT_SYNC_FAILED:
        return "a sync failed";
    case MAILER_ALERT_THRESHOLD:
        return "the delete threshold stopped a sync";
    case MAILER_ALERT_LEASE_LOST:
        return "the HA lease was lost";
    case MAILER_ALERT_NO_SUCCESS: /* the reason says for how long */
        return r->reason != NULL ? r->reason : "no synchronization has succeeded";
    default:
        return mailer_kind_name(r->kind);
    }
}

enum dirconn_err mailer_compose(const struct mailer_report *r, struct mailer_content *out,
                                struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    const char *name = r->connector != NULL ? r->connector : "dirconn";
    char subject[512], now[40], since[40], last_ok[40];
    when(r->now, now, sizeof(now));
    when(r->period_start, since, sizeof(since));
    when(r->last_success, last_ok, sizeof(last_ok));
    bool summary = r->kind == MAILER_SUMMARY;
    if (summary)
        snprintf(subject, sizeof(subject),
                 "Directory Connector %s: sync report, %ld run%s, %ld failed", name, r->runs,
                 r->runs == 1 ? "" : "s", r->failed_runs + r->threshold_runs);
    else
        snprintf(subject, sizeof(subject), "Directory Connector %s is not working: %s", name,
                 alert_title(r));

    size_t tlen = 0, hlen = 0;
    FILE *t = open_memstream(&out->text, &tlen);
    FILE *h = t != NULL ? open_memstream(&out->html, &hlen) : NULL;
    if (h == NULL) {
        if (t != NULL)
            fclose(t);
        mailer_content_clear(out);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory composing a report");
    }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", h);
    html_put(h, subject);
    fputs("</title></head><body>\n<h2>", h);
    html_put(h, subject);
    fputs("</h2>\n", h);
    if (summary) {
        char buf[256];
        fprintf(t, "Sync report of the Directory Connector %s\nPeriod: %s to %s\n\n", name, since,
                now);
        fprintf(t,
                "Runs | %ld total | %ld succeeded | %ld failed | %ld stopped by the delete "
                "threshold\n",
                r->runs, r->succeeded, r->failed_runs, r->threshold_runs);
        fprintf(t, "Objects | %ld added | %ld updated | %ld deleted | %ld failed\n", r->added,
                r->updated, r->deleted, r->failed);
        fprintf(t, "Last successful synchronization: %s\n", last_ok);
        if (r->undelivered > 0)
            fprintf(t, "%ld earlier report emails could not be delivered\n", r->undelivered);
        fputs("<table>\n", h);
        html_row(h, "Period", since);
        html_row(h, "Until", now);
        snprintf(buf, sizeof(buf),
                 "%ld total, %ld succeeded, %ld failed, %ld stopped by the "
                 "delete threshold",
                 r->runs, r->succeeded, r->failed_runs, r->threshold_runs);
        html_row(h, "Runs", buf);
        snprintf(buf, sizeof(buf), "%ld added, %ld updated, %ld deleted, %ld failed", r->added,
                 r->updated, r->deleted, r->failed);
        html_row(h, "Objects", buf);
        html_row(h, "Last successful synchronization", last_ok);
        if (r->undelivered > 0) {
            snprintf(buf, sizeof(buf), "%ld", r->undelivered);
            html_row(h, "Undelivered earlier reports", buf);
        }
        fputs("</table>\n", h);
    } else {
        fprintf(t,
                "The Directory Connector %s is not working.\n\nAlert: %s\nCause: %s\nTime: %s\n"
                "Last successful synchronization: %s\n",
                name, mailer_kind_name(r->kind), r->reason != NULL ? r->reason : "", now, last_ok);
        fputs("<table>\n", h);
        html_row(h, "Alert", mailer_kind_name(r->kind));
        html_row(h, "Cause", r->reason != NULL ? r->reason : "");
        html_row(h, "Time", now);
        html_row(h, "Last successful synchronization", last_ok);
        fputs("</table>\n", h);
    }
    if (r->last != NULL) {
        text_run(t, r->last);
        html_run(h, r->last);
    }
    if (!summary) {
        static const char steps[] =
            "Check that the connector's host reaches the network, the directory and the cloud; "
            "run 'dirconnctl status' and verify that there are no errors; then follow "
            "docs/operations.md.";
        fprintf(t, "\n%s\n", steps);
        fputs("<p>", h);
        html_put(h, steps);
        fputs("</p>\n", h);
    }
    fputs("</body></html>\n", h);
    bool bad = ferror(t) || ferror(h);
    bad |= fclose(t) != 0;
    bad |= fclose(h) != 0;
    out->subject = strdup(subject);
    if (bad || out->subject == NULL || out->text == NULL || out->html == NULL) {
        mailer_content_clear(out);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory composing a report");
    }
    return DIRCONN_OK;
}

void mailer_content_clear(struct mailer_content *c)
{
    free(c->subject);
    free(c->text);
    free(c->html);
    memset(c, 0, sizeof(*c));
}

char *mailer_subject_header(const char *subject)
{
    size_t n = strlen(subject);
    bool ascii = true;
    char *clean = malloc(n + 1);
    if (clean == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)subject[i];
        clean[i] = (i < n && (c < 0x20 || c == 0x7f)) ? ' ' : (char)c;
        if (c >= 0x80)
            ascii = false;
    }
    size_t cap = ascii ? n + 16 : 16 + (n / 45 + 1) * 80;
    char *out = malloc(cap);
    if (out == NULL) {
        free(clean);
        return NULL;
    }
    if (ascii) {
        snprintf(out, cap, "Subject: %s", clean);
        free(clean);
        return out;
    }
    /* RFC 2047 encoded words of at most 45 bytes of text (60 of base64): each word stays under
     * 75 characters, and no UTF-8 sequence is split between two words. */
    size_t o = (size_t)snprintf(out, cap, "Subject:");
    for (size_t i = 0; i < n;) {
        size_t len = n - i < 45 ? n - i : 45;
        while (i + len < n && len > 0 && ((unsigned char)clean[i + len] & 0xC0) == 0x80)
            len--;
        if (len == 0)
            len = n - i < 45 ? n - i : 45;
        unsigned char b64[64];
        EVP_EncodeBlock(b64, (const unsigned char *)clean + i, (int)len);
        o += (size_t)snprintf(out + o, cap - o, " =?UTF-8?B?%s?=", b64);
        i += len;
    }
    free(clean);
    return out;
}

/* The domain of an address, for the Message-ID ("localhost" without one). */
static const char *domain_of(const char *addr)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
    return at != NULL && at[1] != '\0' ? at + 1 : "localhost";
}

struct curl_slist *mailer_headers(const char *from, const struct strlist *to, const char *subject,
                                  time_t now)
{
    char line[1024], date[40];
    struct curl_slist *l = NULL, *t;
    mailer_format_date(now, date, sizeof(date));
    snprintf(line, sizeof(line), "Date: %s", date);
    if ((t = curl_slist_append(l, line)) == NULL)
        return NULL;
    l = t;
    unsigned char rnd[16];
    char hex[33];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        curl_slist_free_all(l);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(line, sizeof(line), "Message-ID: <%s.dirconn@%s>", hex, domain_of(from));
    if ((t = curl_slist_append(l, line)) == NULL)
        goto fail;
    l = t;
    snprintf(line, sizeof(line), "From: <%s>", from);
    if ((t = curl_slist_append(l, line)) == NULL)
        goto fail;
    l = t;
    /* To: every recipient, one per line (folded, RFC 5322 2.2.3: up to 32 addresses of 254
     * characters would pass the 998-character line limit on one line) */
    size_t cap = 8;
    for (size_t i = 0; i < to->n; i++)
        cap += strlen(to->v[i]) + 6;
    char *tol = malloc(cap);
    if (tol == NULL)
        goto fail;
    size_t o = (size_t)snprintf(tol, cap, "To:");
    for (size_t i = 0; i < to->n; i++)
        o += (size_t)snprintf(tol + o, cap - o, "%s <%s>", i ? ",\r\n" : "", to->v[i]);
    t = curl_slist_append(l, tol);
    free(tol);
    if (t == NULL)
        goto fail;
    l = t;
    char *subj = mailer_subject_header(subject);
    t = subj != NULL ? curl_slist_append(l, subj) : NULL;
    free(subj);
    if (t == NULL)
        goto fail;
    return t;
fail:
    curl_slist_free_all(l);
    return NULL;
}

/* ---- settings ------------------------------------------------------------------------------ */

static void settings_clear(struct mailer_settings *s)
{
    free(s->smtp_url);
    free(s->from);
    free(s->ca_file);
    free(s->username);
    free(s->password_file);
    free(s->connector);
    for (size_t i = 0; i < s->to.n; i++)
        free(s->to.v[i]);
    free(s->to.v);
    memset(s, 0, sizeof(*s));
}

static bool dup_str(char **dst, const char *src)
{
    *dst = src != NULL ? strdup(src) : NULL;
    return src == NULL || *dst != NULL;
}

static bool settings_copy(struct mailer_settings *d, const struct mailer_settings *s)
{
    memset(d, 0, sizeof(*d));
    bool ok = dup_str(&d->smtp_url, s->smtp_url) && dup_str(&d->from, s->from) &&
              dup_str(&d->ca_file, s->ca_file) && dup_str(&d->username, s->username) &&
              dup_str(&d->password_file, s->password_file) && dup_str(&d->connector, s->connector);
    if (ok && s->to.n > 0) {
        d->to.v = calloc(s->to.n, sizeof(char *));
        ok = d->to.v != NULL;
        for (size_t i = 0; ok && i < s->to.n; i++, d->to.n++)
            ok = (d->to.v[i] = strdup(s->to.v[i])) != NULL;
    }
    d->starttls = s->starttls;
    d->timeout_ms = s->timeout_ms;
    d->interval_ms = s->interval_ms;
    d->no_success_ms = s->no_success_ms;
    d->retries = s->retries;
    if (!ok)
        settings_clear(d);
    return ok;
}

static bool settings_from_config(struct mailer_settings *d, const struct config *cfg)
{
    struct mailer_settings s = {
        .smtp_url = cfg->reports_smtp_url,
        .from = cfg->reports_from,
        .ca_file = cfg->reports_ca_file,
        .username = cfg->reports_username,
        .password_file = cfg->reports_password_file,
        .connector = cfg->name,
        .to = cfg->reports_to,
        .starttls = cfg->reports_starttls,
        .timeout_ms = cfg->reports_timeout_ms,
        .interval_ms = cfg->reports_interval_ms,
        .no_success_ms = cfg->reports_no_success_ms,
        .retries = cfg->reports_retries,
    };
    return settings_copy(d, &s);
}

/* ---- the queue (under lock) -------------------------------------------------------------- */

static void mail_free(struct mail *mail)
{
    if (mail != NULL)
        mailer_content_clear(&mail->c);
    free(mail);
}

/* Queue a composed report; the content is taken over (freed on failure). */
static void enqueue(struct mailer *m, enum mailer_kind kind, struct mailer_content *c)
{
    if (m->set.smtp_url == NULL) {
        mailer_content_clear(c);
        return;
    }
    struct mail *mail = calloc(1, sizeof(*mail));
    if (mail == NULL || m->n == MAILER_QUEUE_MAX) {
        m->undelivered++;
        log_msg(m->log, LOG_LEVEL_DEBUG, "email reports: the %s mail is dropped (%s)",
                mailer_kind_name(kind), mail == NULL ? "out of memory" : "the queue is full");
        free(mail);
        mailer_content_clear(c);
        return;
    }
    mail->c = *c;
    memset(c, 0, sizeof(*c));
    mail->kind = kind;
    m->q[m->n++] = mail;
    pthread_cond_signal(&m->cond);
}

static void report_base(struct mailer *m, struct mailer_report *r, enum mailer_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->connector = m->set.connector;
    r->now = time(NULL);
    r->last_success = m->last_success;
    r->last = m->last.valid ? &m->last.run : NULL;
}

/* Compose and queue an alert, unless it repeats the previous one too soon. */
static void alert(struct mailer *m, enum mailer_kind kind, const char *reason)
{
    int64_t now = platform_monotonic_ms();
    int64_t window = m->set.interval_ms > 0 ? m->set.interval_ms : 3600 * 1000LL;
    if (m->last_alert_reason != NULL && m->last_alert_kind == kind &&
        strcmp(m->last_alert_reason, reason) == 0 && now - m->last_alert_at < window) {
        log_msg(m->log, LOG_LEVEL_DEBUG, "email reports: the %s alert repeats; not sent again",
                mailer_kind_name(kind));
        return;
    }
    free(m->last_alert_reason);
    m->last_alert_reason = strdup(reason);
    m->last_alert_kind = kind;
    m->last_alert_at = now;
    struct mailer_report r;
    report_base(m, &r, kind);
    r.reason = reason;
    struct mailer_content c;
    struct dirconn_error err;
    if (mailer_compose(&r, &c, &err) == DIRCONN_OK)
        enqueue(m, kind, &c);
    else
        log_msg(m->log, LOG_LEVEL_ERROR, "email reports: %s", err.msg);
}

static void period_reset(struct mailer *m)
{
    m->runs = m->succeeded = m->failed_runs = m->threshold_runs = 0;
    m->added = m->updated = m->deleted = m->failed = 0;
    m->period_start = time(NULL);
    m->next_summary = m->set.interval_ms > 0 ? platform_monotonic_ms() + m->set.interval_ms : 0;
}

/* The period ended: queue its summary (none for a period without runs). */
static void summary_due(struct mailer *m)
{
    if (m->runs > 0) {
        struct mailer_report r;
        report_base(m, &r, MAILER_SUMMARY);
        r.period_start = m->period_start;
        r.runs = m->runs;
        r.succeeded = m->succeeded;
        r.failed_runs = m->failed_runs;
        r.threshold_runs = m->threshold_runs;
        r.added = m->added;
        r.updated = m->updated;
        r.deleted = m->deleted;
        r.failed = m->failed;
        r.undelivered = m->undelivered;
        struct mailer_content c;
        struct dirconn_error err;
        if (mailer_compose(&r, &c, &err) == DIRCONN_OK) {
            m->undelivered = 0;
            enqueue(m, MAILER_SUMMARY, &c);
        } else {
            log_msg(m->log, LOG_LEVEL_ERROR, "email reports: %s", err.msg);
        }
    } else {
        log_msg(m->log, LOG_LEVEL_DEBUG, "email reports: no run in this period, no summary");
    }
    period_reset(m);
}

/* ---- delivery ---------------------------------------------------------------------------- */

static int on_xfer(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    struct mailer *m = arg;
    return atomic_load(&m->stop) ? 1 : 0;
}

/* The SMTP AUTH password: [reports] password_file, mode 0600 or stricter, one line. */
static enum dirconn_err read_password(const char *path, char **out, struct dirconn_error *err)
{
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[reports] password_file %s: %s", path,
                                 strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[reports] password_file %s: not a regular file", path);
    if ((st.st_mode & 077) != 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "[reports] password_file %s: mode %04o lets group or others "
                                 "access the password; chmod 600 it",
                                 path, (unsigned)(st.st_mode & 07777));
    return secret_file_read(path, "[reports] password_file", out, err);
}

/* Deliver one message with libcurl's SMTP client; DIRCONN_OK once the server took it. */
static enum dirconn_err deliver(struct mailer *m, const struct mailer_settings *s,
                                const struct mail *mail, struct dirconn_error *err)
{
    char *password = NULL;
    if (s->username != NULL) {
        enum dirconn_err e = read_password(s->password_file, &password, err);
        if (e != DIRCONN_OK)
            return e;
    }
    enum dirconn_err e = DIRCONN_ENOMEM;
    CURL *h = curl_easy_init();
    curl_mime *mime = h != NULL ? curl_mime_init(h) : NULL;
    curl_mime *alt = h != NULL ? curl_mime_init(h) : NULL;
    struct curl_slist *rcpt = NULL, *hdr = NULL, *inline_hdr = NULL;
    bool ok = mime != NULL && alt != NULL;
    for (size_t i = 0; ok && i < s->to.n; i++) {
        char addr[300];
        snprintf(addr, sizeof(addr), "<%s>", s->to.v[i]);
        struct curl_slist *t = curl_slist_append(rcpt, addr);
        ok = t != NULL;
        if (ok)
            rcpt = t;
    }
    if (ok)
        ok = (hdr = mailer_headers(s->from, &s->to, mail->c.subject, time(NULL))) != NULL;
    if (ok)
        ok = (inline_hdr = curl_slist_append(NULL, "Content-Disposition: inline")) != NULL;
    if (ok) {
        /* multipart/alternative: the plain text first, the preferred HTML last (RFC 2046 5.1.4) */
        curl_mimepart *p = curl_mime_addpart(alt);
        ok = p != NULL && curl_mime_data(p, mail->c.text, CURL_ZERO_TERMINATED) == CURLE_OK &&
             curl_mime_type(p, "text/plain; charset=utf-8") == CURLE_OK &&
             curl_mime_encoder(p, "quoted-printable") == CURLE_OK;
        p = ok ? curl_mime_addpart(alt) : NULL;
        ok = p != NULL && curl_mime_data(p, mail->c.html, CURL_ZERO_TERMINATED) == CURLE_OK &&
             curl_mime_type(p, "text/html; charset=utf-8") == CURLE_OK &&
             curl_mime_encoder(p, "quoted-printable") == CURLE_OK;
        p = ok ? curl_mime_addpart(mime) : NULL;
        ok = p != NULL && curl_mime_subparts(p, alt) == CURLE_OK;
        if (ok) {
            alt = NULL; /* owned by mime now */
            ok = curl_mime_type(p, "multipart/alternative") == CURLE_OK &&
                 curl_mime_headers(p, inline_hdr, 1) == CURLE_OK;
            if (ok)
                inline_hdr = NULL;
        }
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    if (ok) {
        bool smtps = strncasecmp(s->smtp_url, "smtps:", 6) == 0;
        long use_ssl = smtps || s->starttls == REPORTS_STARTTLS_REQUIRED ? (long)CURLUSESSL_ALL
                       : s->starttls == REPORTS_STARTTLS_OPPORTUNISTIC   ? (long)CURLUSESSL_TRY
                                                                         : (long)CURLUSESSL_NONE;
        char from[300];
        snprintf(from, sizeof(from), "<%s>", s->from);
        curl_easy_setopt(h, CURLOPT_URL, s->smtp_url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* mail never goes through the HTTP proxy */
        curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl);
        if (s->ca_file != NULL)
            curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
        if (s->username != NULL) {
            curl_easy_setopt(h, CURLOPT_USERNAME, s->username);
            curl_easy_setopt(h, CURLOPT_PASSWORD, password);
        }
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, m);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK) {
            e = DIRCONN_OK;
        } else {
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            char reply[48] = "";
            if (code > 0)
                snprintf(reply, sizeof(reply), " (SMTP reply %ld)", code);
            e = dirconn_error_set(err, DIRCONN_EFAIL, "%s: %s%s", s->smtp_url,
                                  errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc), reply);
        }
    } else {
        dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory building the mail");
    }
    curl_mime_free(alt);
    curl_slist_free_all(inline_hdr);
    curl_easy_cleanup(h); /* before the lists and mime it uses */
    curl_mime_free(mime);
    curl_slist_free_all(rcpt);
    curl_slist_free_all(hdr);
    if (password != NULL)
        secret_free(password);
    return e;
}

static void *mailer_main(void *arg)
{
    struct mailer *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!atomic_load(&m->stop)) {
        int64_t now = platform_monotonic_ms();
        if (m->next_summary != 0 && now >= m->next_summary)
            summary_due(m);
        if (m->active && m->set.no_success_ms > 0 && !m->no_success_sent &&
            now - m->success_mono >= m->set.no_success_ms) {
            char reason[256];
            int64_t ms = m->set.no_success_ms;
            static const struct {
                int64_t ms;
                const char *unit;
            } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}};
            size_t u = 0;
            while (u + 1 < sizeof(units) / sizeof(units[0]) && ms % units[u].ms != 0)
                u++;
            snprintf(reason, sizeof(reason), "no synchronization has succeeded for %lld %s",
                     (long long)(ms / units[u].ms), units[u].unit);
            m->no_success_sent = true;
            alert(m, MAILER_ALERT_NO_SUCCESS, reason);
        }
        if (m->n > 0 && m->set.smtp_url == NULL) {
            for (size_t i = 0; i < m->n; i++)
                mail_free(m->q[i]);
            m->n = 0;
        }
        if (m->n > 0 && m->q[0]->not_before <= now) {
            struct mail *mail = m->q[0];
            struct mailer_settings s;
            if (!settings_copy(&s, &m->set)) {
                mail->not_before = now + RETRY_FIRST_MS; /* out of memory: later */
                continue;
            }
            pthread_mutex_unlock(&m->lock);
            struct dirconn_error err;
            dirconn_error_clear(&err);
            enum dirconn_err e = deliver(m, &s, mail, &err);
            pthread_mutex_lock(&m->lock);
            now = platform_monotonic_ms();
            mail->attempts++;
            if (atomic_load(&m->stop)) {
                settings_clear(&s);
                break;
            }
            /* the queue may have grown, never shrunk, while unlocked: q[0] is still mail */
            if (e == DIRCONN_OK) {
                log_msg(m->log, m->failing ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
                        "email reports: the %s mail was delivered to %s%s",
                        mailer_kind_name(mail->kind), s.smtp_url,
                        m->failing ? " (the server takes mail again)" : "");
                m->failing = false;
            } else {
                bool again = mail->attempts <= s.retries;
                if (!m->failing || now - m->warned_at >= WARN_REPEAT_MS) {
                    log_msg(m->log, LOG_LEVEL_WARN,
                            "email reports: the %s mail was not delivered: %s; %s (further "
                            "delivery failures are logged at debug level until one succeeds)",
                            mailer_kind_name(mail->kind), err.msg,
                            again ? "it is tried again" : "it is dropped");
                    m->warned_at = now;
                } else {
                    log_msg(m->log, LOG_LEVEL_DEBUG, "email reports: the %s mail: %s%s",
                            mailer_kind_name(mail->kind), err.msg,
                            again ? "" : "; dropped after its last attempt");
                }
                m->failing = true;
                if (again) {
                    int64_t pause = RETRY_FIRST_MS;
                    for (int i = 1; i < mail->attempts && pause < 3600 * 1000LL; i++)
                        pause *= 4;
                    mail->not_before = now + pause;
                    settings_clear(&s);
                    continue;
                }
                m->undelivered++;
            }
            settings_clear(&s);
            memmove(&m->q[0], &m->q[1], (m->n - 1) * sizeof(m->q[0]));
            m->n--;
            mail_free(mail);
            continue;
        }
        /* Sleep until the next thing to do. */
        int64_t wake = now + 3600 * 1000LL;
        if (m->next_summary != 0 && m->next_summary < wake)
            wake = m->next_summary;
        if (m->active && m->set.no_success_ms > 0 && !m->no_success_sent &&
            m->success_mono + m->set.no_success_ms < wake)
            wake = m->success_mono + m->set.no_success_ms;
        if (m->n > 0 && m->q[0]->not_before < wake)
            wake = m->q[0]->not_before;
        struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000L};
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the public side --------------------------------------------------------------------- */

enum dirconn_err mailer_new(const struct config *cfg, const struct log_sink *log,
                            struct mailer **out, struct dirconn_error *err)
{
    *out = NULL;
    if (cfg->reports_smtp_url == NULL)
        return DIRCONN_OK;
    struct mailer *m = calloc(1, sizeof(*m));
    if (m == NULL || !settings_from_config(&m->set, cfg)) {
        free(m);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "email reports: out of memory");
    }
    m->log = log;
    atomic_init(&m->stop, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    m->active = true;
    m->success_mono = platform_monotonic_ms();
    period_reset(m);
    int rc = pthread_create(&m->thread, NULL, mailer_main, m);
    if (rc != 0) {
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->lock);
        settings_clear(&m->set);
        free(m);
        return dirconn_error_set(err, DIRCONN_EFAIL, "email reports: cannot start the thread: %s",
                                 strerror(rc));
    }
    log_msg(log, LOG_LEVEL_INFO,
            "email reports: to %zu recipient%s through %s, a summary every %lld s, alerts after "
            "%lld s without a successful sync",
            cfg->reports_to.n, cfg->reports_to.n == 1 ? "" : "s", cfg->reports_smtp_url,
            (long long)(cfg->reports_interval_ms / 1000),
            (long long)(cfg->reports_no_success_ms / 1000));
    *out = m;
    return DIRCONN_OK;
}

bool mailer_reconfigure(struct mailer *m, const struct config *cfg)
{
    if (m == NULL)
        return true;
    struct mailer_settings s;
    if (!settings_from_config(&s, cfg))
        return false;
    pthread_mutex_lock(&m->lock);
    bool interval_changed = s.interval_ms != m->set.interval_ms;
    settings_clear(&m->set);
    m->set = s;
    if (interval_changed)
        m->next_summary = s.interval_ms > 0 ? platform_monotonic_ms() + s.interval_ms : 0;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return true;
}

static void run_copy_clear(struct run_copy *c)
{
    free(c->message);
    free(c->summary);
    for (size_t i = 0; i < MAILER_MAX_PROBLEMS; i++)
        free(c->problems[i]);
    memset(c, 0, sizeof(*c));
}

void mailer_sync_done(struct mailer *m, const struct mailer_run *run)
{
    if (m == NULL)
        return;
    struct run_copy c;
    memset(&c, 0, sizeof(c));
    c.run = *run;
    c.message = run->message != NULL ? strdup(run->message) : NULL;
    c.summary = run->summary != NULL ? strdup(run->summary) : NULL;
    size_t n = run->n_problems < MAILER_MAX_PROBLEMS ? run->n_problems : MAILER_MAX_PROBLEMS;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((c.problems[k] = strdup(run->problems[i])) != NULL)
            k++;
    c.run.message = c.message;
    c.run.summary = c.summary;
    c.run.problems = (const char *const *)c.problems;
    c.run.n_problems = k;
    if (c.run.problems_total < (long)k)
        c.run.problems_total = (long)k;
    c.valid = true;

    pthread_mutex_lock(&m->lock);
    run_copy_clear(&m->last);
    m->last = c;
    m->last.run.message = m->last.message;
    m->last.run.summary = m->last.summary;
    m->last.run.problems = (const char *const *)m->last.problems;
    m->runs++;
    m->added += run->added;
    m->updated += run->updated;
    m->deleted += run->deleted;
    m->failed += run->failed;
    const char *msg = run->message != NULL && run->message[0] != '\0' ? run->message : NULL;
    if (run->rc == DIRCONN_OK) {
        m->succeeded++;
        m->last_success = run->ended;
        m->success_mono = platform_monotonic_ms();
        m->no_success_sent = false;
    } else if (run->rc == DIRCONN_ETHRESHOLD) {
        m->threshold_runs++;
        alert(m, MAILER_ALERT_THRESHOLD, msg != NULL ? msg : "delete threshold exceeded");
    } else {
        m->failed_runs++;
        if (run->rc != DIRCONN_ECANCELED && run->rc != DIRCONN_ELEASE)
            alert(m, MAILER_ALERT_SYNC_FAILED, msg != NULL ? msg : dirconn_strerror(run->rc));
    }
    pthread_mutex_unlock(&m->lock);
}

void mailer_lease_lost(struct mailer *m, const char *cause)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    alert(m, MAILER_ALERT_LEASE_LOST, cause != NULL ? cause : "the HA lease was lost");
    pthread_mutex_unlock(&m->lock);
}

void mailer_set_active(struct mailer *m, bool active)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    if (active && !m->active) {
        m->success_mono = platform_monotonic_ms();
        m->no_success_sent = false;
    }
    m->active = active;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

void mailer_free(struct mailer *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    atomic_store(&m->stop, true);
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    if (m->n > 0)
        log_msg(m->log, LOG_LEVEL_INFO, "email reports: %zu queued mail%s not sent: stopping", m->n,
                m->n == 1 ? "" : "s");
    for (size_t i = 0; i < m->n; i++)
        mail_free(m->q[i]);
    run_copy_clear(&m->last);
    free(m->last_alert_reason);
    settings_clear(&m->set);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
