/*
 * web.c - the status page and /metrics of dirconnd on libevent's evhttp (see web.h).
 *
 * The page is built from the status object the admin socket answers with
 * (the hooks), HTML-escaped with evhttp_htmlescape; forms are read with
 * evhttp_parse_query_str; TLS is OpenSSL through bufferevent_openssl. The
 * charts are SVG drawn here: one bar per run.
 */
#include "admin/web.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WEB_SECRET_MAX 1024
#define WEB_BODY_MAX   4096
/* The refresh period of the page (issue 18: at most 5 s). */
#define WEB_REFRESH_S 5

struct web;

/* One listener: the page (and /metrics unless it has its own), or /metrics only. */
struct web_listener {
    struct web *w;
    struct evhttp *http;
    bool loopback;
    bool page;    /* serves /, /status.json and /action */
    bool metrics; /* serves /metrics */
    char addr[320];
};

struct web {
    struct event_base *base;
    struct metrics *metrics;
    struct web_hooks hooks;
    const struct log_sink *log;
    struct web_listener l[2];
    int n;
    SSL_CTX *ssl;
    char *username;
    char secret[WEB_SECRET_MAX]; /* "" = no password_file: no actions */
    size_t secret_len;
    char csrf[65];
};

/* ---- HTML helpers --------------------------------------------------------------- */

static void put_esc(struct evbuffer *b, const char *s)
{
    char *e = evhttp_htmlescape(s != NULL ? s : "");
    if (e != NULL) {
        evbuffer_add(b, e, strlen(e));
        free(e);
    }
}

/* A JSON value as text: strings as they are, numbers, yes/no, "—" for null or missing. */
static void put_json(struct evbuffer *b, const json_t *v)
{
    if (json_is_string(v))
        put_esc(b, json_string_value(v));
    else if (json_is_integer(v))
        evbuffer_add_printf(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        evbuffer_add_printf(b, "%.1f", json_real_value(v));
    else if (json_is_boolean(v))
        evbuffer_add_printf(b, "%s", json_is_true(v) ? "yes" : "no");
    else
        evbuffer_add_printf(b, "\xe2\x80\x94");
}

/* <tr><th>label</th><td id="id">value</td></tr> */
static void row(struct evbuffer *b, const char *label, const char *id, const json_t *v)
{
    evbuffer_add_printf(b, "<tr><th>");
    put_esc(b, label);
    evbuffer_add_printf(b, "</th><td id=\"%s\">", id);
    put_json(b, v);
    evbuffer_add_printf(b, "</td></tr>\n");
}

static void row_text(struct evbuffer *b, const char *label, const char *id, const char *text)
{
    json_t *v = json_string(text);
    row(b, label, id, v);
    json_decref(v);
}

static void local_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- the report ------------------------------------------------------------------- */

/* The page's tabs and the report categories they gather (plan.c, category_of). */
static const struct {
    const char *tab, *label;
    const char *cats[3];
} tabs[] = {
    {"added", "Added", {"added"}},
    {"updated", "Updated", {"updated"}},
    {"deleted", "Deleted", {"usersDeleted", "groupsDeleted", "contactsDeleted"}},
    {"matched", "Matched", {"matched"}},
    {"skipped", "Skipped", {"skipped"}},
    {"conflicts", "Conflicts", {"conflicts"}},
};
#define N_TABS (sizeof(tabs) / sizeof(tabs[0]))

const char *web_report_path(const struct config *cfg, bool csv, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/report-latest.%s", cfg->state_dir ? cfg->state_dir : ".",
                     csv ? "csv" : "json");
    return n > 0 && (size_t)n < len ? buf : NULL;
}

/* {"total": N, "rows": [...]} from the arrays of a report's categories. */
static json_t *digest_of(json_t *const *lists, size_t n)
{
    json_t *rows = json_array();
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        json_t *v;
        json_array_foreach(lists[i], k, v)
        {
            if (json_array_size(rows) < WEB_REPORT_ROWS)
                json_array_append(rows, v);
            total++;
        }
    }
    return json_pack("{s:I, s:o}", "total", (json_int_t)total, "rows", rows);
}

json_t *web_report_digest(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return NULL;
    json_t *doc = json_load_file(path, 0, NULL);
    const json_t *objects = json_object_get(doc, "objects");
    if (!json_is_object(objects)) {
        json_decref(doc);
        return NULL;
    }
    json_t *t = json_object();
    for (size_t i = 0; i < N_TABS; i++) {
        json_t *lists[3];
        size_t n = 0;
        for (size_t c = 0; c < 3 && tabs[i].cats[c] != NULL; c++)
            lists[n++] = json_object_get(objects, tabs[i].cats[c]);
        json_object_set_new(t, tabs[i].tab, digest_of(lists, n));
    }
    json_t *warnings = json_object_get(doc, "warnings");
    json_t *out =
        json_pack("{s:O?, s:o, s:o, s:I}", "summary", json_object_get(doc, "summary"), "tabs", t,
                  "warnings", digest_of(&warnings, 1), "written", (json_int_t)sb.st_mtime);
    json_decref(doc);
    return out;
}

/* The report as tabs (CSS :target, no script), and the download links. */
static void report_section(struct evbuffer *b, const json_t *rep)
{
    evbuffer_add_printf(b, "<section id=\"report\"><h2>Synchronization Report</h2>\n");
    if (rep == NULL) {
        evbuffer_add_printf(b, "<p id=\"report-none\">No report yet.</p></section>\n");
        return;
    }
    char when[32];
    local_time((time_t)json_integer_value(json_object_get(rep, "written")), when, sizeof(when));
    evbuffer_add_printf(
        b,
        "<p>The plan of the last run (%s). Download: "
        "<a id=\"report-json\" href=\"/report.json\">JSON</a>, "
        "<a id=\"report-csv\" href=\"/report.csv\">CSV</a></p>\n<nav class=\"tabs\">",
        when);
    const json_t *t = json_object_get(rep, "tabs");
    for (size_t i = 0; i < N_TABS; i++)
        evbuffer_add_printf(b, "<a href=\"#tab-%s\" id=\"tablink-%s\">%s (%lld)</a> ", tabs[i].tab,
                            tabs[i].tab, tabs[i].label,
                            (long long)json_integer_value(
                                json_object_get(json_object_get(t, tabs[i].tab), "total")));
    evbuffer_add_printf(b, "</nav><div class=\"panels\">\n");
    for (size_t i = 0; i < N_TABS; i++) {
        const json_t *d = json_object_get(t, tabs[i].tab);
        long long total = json_integer_value(json_object_get(d, "total"));
        evbuffer_add_printf(b,
                            "<div class=\"panel\" id=\"tab-%s\" data-total=\"%lld\">"
                            "<table class=\"runs\"><tr><th>Kind</th><th>DN</th><th>Name</th>"
                            "<th>externalId</th><th>Details</th></tr>\n",
                            tabs[i].tab, total);
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(d, "rows"), k, v)
        {
            evbuffer_add_printf(b, "<tr class=\"item\"><td>");
            put_json(b, json_object_get(v, "kind"));
            evbuffer_add_printf(b, "</td><td>");
            put_json(b, json_object_get(v, "dn"));
            evbuffer_add_printf(b, "</td><td>");
            put_json(b, json_object_get(v, "name"));
            evbuffer_add_printf(b, "</td><td>");
            put_json(b, json_object_get(v, "externalId"));
            evbuffer_add_printf(b, "</td><td>");
            const json_t *det = json_object_get(v, "changed");
            put_json(b, det != NULL ? det : json_object_get(v, "message"));
            evbuffer_add_printf(b, "</td></tr>\n");
        }
        if (total > (long long)json_array_size(json_object_get(d, "rows")))
            evbuffer_add_printf(b,
                                "<tr><td colspan=\"5\">and %lld more (download the report)"
                                "</td></tr>\n",
                                total - (long long)json_array_size(json_object_get(d, "rows")));
        evbuffer_add_printf(b, "</table></div>\n");
    }
    evbuffer_add_printf(b, "</div></section>\n");
}

/* Recent events: the errors of the status, the invalid values and the naming conflicts. */
static void events_section(struct evbuffer *b, const json_t *st, const json_t *rep)
{
    evbuffer_add_printf(b, "<section id=\"events-section\"><h2>Recent Events</h2>"
                           "<table class=\"runs\" id=\"events\"><tr><th>Level</th><th>DN</th>"
                           "<th>Event</th></tr>\n");
    size_t i;
    json_t *v;
    const json_t *err = json_object_get(st, "error");
    if (json_is_string(err)) {
        evbuffer_add_printf(b, "<tr class=\"event error\"><td>error</td><td></td><td>");
        put_esc(b, json_string_value(err));
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    json_array_foreach(json_object_get(st, "last"), i, v)
    {
        if (!json_is_string(json_object_get(v, "message")))
            continue;
        evbuffer_add_printf(
            b, "<tr class=\"event %s\"><td>%s</td><td></td><td>",
            strcmp(json_string_value(json_object_get(v, "status")), "success") == 0 ? "info"
                                                                                    : "error",
            strcmp(json_string_value(json_object_get(v, "status")), "success") == 0 ? "info"
                                                                                    : "error");
        put_esc(b, json_string_value(json_object_get(v, "message")));
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    const json_t *conf = json_object_get(json_object_get(rep, "tabs"), "conflicts");
    json_array_foreach(json_object_get(conf, "rows"), i, v)
    {
        evbuffer_add_printf(b, "<tr class=\"event conflict\"><td>warning</td><td>");
        put_json(b, json_object_get(v, "dn"));
        evbuffer_add_printf(b, "</td><td>naming conflict: ");
        put_json(b, json_object_get(v, "message"));
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    const json_t *warn = json_object_get(rep, "warnings");
    json_array_foreach(json_object_get(warn, "rows"), i, v)
    {
        evbuffer_add_printf(b, "<tr class=\"event invalid\"><td>warning</td><td>");
        put_json(b, json_object_get(v, "dn"));
        evbuffer_add_printf(b, "</td><td>");
        put_json(b, json_object_get(v, "message"));
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    evbuffer_add_printf(b, "</table></section>\n");
}

/* ---- the page --------------------------------------------------------------------- */

/* An SVG bar chart of one quantity over the runs (oldest left); id names the svg element. */
static void chart(struct evbuffer *b, const char *id, const char *title, const char *unit,
                  const json_t *runs, double (*value)(const json_t *run))
{
    const int width = 600, height = 150, top = 20, bottom = 20;
    size_t n = json_array_size(runs);
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        double v = value(json_array_get(runs, i));
        if (v > max)
            max = v;
    }
    evbuffer_add_printf(b,
                        "<figure><svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
                        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
                        "<title>",
                        id, width, height, width, height);
    put_esc(b, title);
    evbuffer_add_printf(b,
                        "</title><rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
                        "fill=\"#f6f6f6\"/><text x=\"4\" y=\"14\" font-size=\"11\">max %.1f %s"
                        "</text>",
                        width, height, max, unit);
    double slot = (double)width / 50.0;
    int plot = height - top - bottom;
    for (size_t k = 0; k < n; k++) {
        const json_t *run = json_array_get(runs, n - 1 - k); /* oldest first */
        double v = value(run);
        double h = max > 0 ? v / max * plot : 0;
        if (v > 0 && h < 1)
            h = 1;
        const char *status = json_string_value(json_object_get(run, "status"));
        bool ok = status == NULL || strcmp(status, "success") == 0; /* latencies: no status */
        char when[32];
        const json_t *at = json_object_get(run, "started");
        local_time((time_t)json_integer_value(at != NULL ? at : json_object_get(run, "ended")),
                   when, sizeof(when));
        evbuffer_add_printf(b,
                            "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"%s\"><title>",
                            k * slot + 1, top + plot - h, slot - 2, h, ok ? "#3a7" : "#c33");
        const char *type = json_string_value(json_object_get(run, "type"));
        put_esc(b, type != NULL ? type : "change");
        evbuffer_add_printf(b, " %s: %.1f %s</title></rect>", when, v, unit);
    }
    evbuffer_add_printf(b,
                        "<text x=\"4\" y=\"%d\" font-size=\"11\">last %zu runs, oldest "
                        "left</text></svg><figcaption>",
                        height - 5, n);
    put_esc(b, title);
    evbuffer_add_printf(b, "</figcaption></figure>\n");
}

static double run_duration(const json_t *run)
{
    double d = (double)(json_integer_value(json_object_get(run, "ended")) -
                        json_integer_value(json_object_get(run, "started")));
    return d > 0 ? d : 0;
}

static double latency_value(const json_t *l)
{
    return json_real_value(json_object_get(l, "seconds"));
}

static double run_changes(const json_t *run)
{
    return (double)(json_integer_value(json_object_get(run, "added")) +
                    json_integer_value(json_object_get(run, "updated")) +
                    json_integer_value(json_object_get(run, "deleted")));
}

/* The Configuration Summary's sentences (Cisco guide, table 1). */
static void config_summary(struct evbuffer *b, const struct config *cfg)
{
    evbuffer_add_printf(b, "<ul id=\"config-summary\">\n");
    struct {
        const char *what;
        bool enabled;
        bool filtered;
    } kinds[] = {
        {"users", cfg->users.enabled,
         cfg->users.filter != NULL || cfg->users.base_dns.n > 0 ||
             cfg->users_security_groups.n > 0 || cfg->users_enabled_only},
        {"groups", cfg->groups.enabled, cfg->groups.filter != NULL || cfg->groups.base_dns.n > 0},
        {"contacts", cfg->contacts.enabled,
         cfg->contacts.filter != NULL || cfg->contacts.base_dns.n > 0},
    };
    bool all = true;
    for (size_t i = 0; i < 3; i++)
        all = all && kinds[i].enabled && !kinds[i].filtered;
    if (all)
        evbuffer_add_printf(b, "<li>All objects will be synchronized</li>\n");
    for (size_t i = 0; i < 3; i++) {
        if (!kinds[i].enabled)
            evbuffer_add_printf(b, "<li>No %s will be synchronized</li>\n", kinds[i].what);
        else if (kinds[i].filtered)
            evbuffer_add_printf(b,
                                "<li>Selected %s will be synchronized (filter or base DNs)</li>\n",
                                kinds[i].what);
        else
            evbuffer_add_printf(b, "<li>All %s will be synchronized</li>\n", kinds[i].what);
    }
    if (!cfg->delete_threshold_enabled)
        evbuffer_add_printf(b, "<li>Delete threshold has been disabled</li>\n");
    else
        evbuffer_add_printf(b, "<li>Delete threshold is %lld objects</li>\n",
                            (long long)cfg->delete_threshold);
    if (!cfg->notifications)
        evbuffer_add_printf(b, "<li>Change notifications have been disabled</li>\n");
    if (cfg->avatar_enabled)
        evbuffer_add_printf(b, "<li>Avatars will be synchronized</li>\n");
    evbuffer_add_printf(b, "</ul>\n");
}

static void actions(struct web *w, struct evbuffer *b, const json_t *st)
{
    if (w->secret_len == 0) {
        evbuffer_add_printf(b, "<p id=\"actions-off\">Actions are off: [web] password_file is "
                               "not set.</p>\n");
        return;
    }
    bool paused = json_is_true(json_object_get(st, "paused"));
    static const char *const names[][2] = {{"sync-incremental", "Sync Now (incremental)"},
                                           {"sync-full", "Sync Now (full)"},
                                           {"pause", "Pause"},
                                           {"resume", "Resume"},
                                           {"override-threshold", "Override Threshold (next run)"}};
    evbuffer_add_printf(b, "<div id=\"actions\">\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((paused && strcmp(names[i][0], "pause") == 0) ||
            (!paused && strcmp(names[i][0], "resume") == 0))
            continue;
        evbuffer_add_printf(b,
                            "<form method=\"post\" action=\"/action\">"
                            "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                            "<button type=\"submit\" name=\"action\" value=\"%s\" id=\"act-%s\">"
                            "%s</button></form>\n",
                            w->csrf, names[i][0], names[i][0], names[i][1]);
    }
    evbuffer_add_printf(b, "</div>\n");
}

static void page(struct web *w, struct evbuffer *b)
{
    json_t *st = w->hooks.status(w->hooks.arg);
    json_t *runs = w->hooks.runs(w->hooks.arg);
    const struct config *cfg = w->hooks.config(w->hooks.arg);
    if (st == NULL)
        st = json_object();
    if (runs == NULL)
        runs = json_array();
    const json_t *conn0 = json_array_get(json_object_get(st, "connectors"), 0);
    const json_t *ha = json_object_get(st, "ha");
    const char *overall = json_string_value(json_object_get(st, "overall"));
    const char *colour = overall == NULL                    ? "amber"
                         : strcmp(overall, "ok") == 0       ? "green"
                         : strcmp(overall, "degraded") == 0 ? "amber"
                                                            : "red";
    evbuffer_add_printf(b,
                        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta http-equiv=\"refresh\" content=\"%d\">"
                        "<title>Directory Connector Dashboard</title><style>"
                        "body{font-family:sans-serif;margin:1em 2em}"
                        "section{display:inline-block;vertical-align:top;margin:0 2em 1em 0}"
                        "th{text-align:left;padding-right:1em;font-weight:normal;color:#555}"
                        "table.runs th,table.runs td{padding:0 .6em}"
                        ".ind{display:inline-block;width:1em;height:1em;border-radius:50%%;"
                        "vertical-align:middle;margin-right:.4em}"
                        ".green{background:#2a2}.amber{background:#e90}.red{background:#d22}"
                        "form{display:inline}"
                        ".panel{display:none}.panel:target{display:block}"
                        ".panels:not(:has(.panel:target)) #tab-added{display:block}"
                        "nav.tabs a{margin-right:1em}"
                        "figure{display:inline-block;margin:0 1.5em 1em 0}</style></head><body>\n",
                        WEB_REFRESH_S);
    evbuffer_add_printf(b, "<h1>Directory Connector Dashboard</h1>\n<p>Connector <b id=\"name\">");
    put_esc(b, json_string_value(json_object_get(conn0, "name")));
    evbuffer_add_printf(b, "</b>, dirconn <span id=\"version\">");
    put_esc(b, json_string_value(json_object_get(st, "version")));
    evbuffer_add_printf(b, "</span></p>\n");

    /* Current Synchronization Status */
    evbuffer_add_printf(b,
                        "<section id=\"current-status\"><h2>Current Synchronization Status</h2>"
                        "<p><span id=\"indicator\" class=\"ind %s\" data-colour=\"%s\"></span>"
                        "<span id=\"overall\">",
                        colour, colour);
    put_esc(b, overall);
    evbuffer_add_printf(b, "</span> (<span id=\"state\">");
    put_esc(b, json_string_value(json_object_get(st, "state")));
    evbuffer_add_printf(b, "</span>%s)</p>\n<ul id=\"reasons\">",
                        json_is_true(json_object_get(st, "paused")) ? ", paused" : "");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(st, "reasons"), i, v)
    {
        evbuffer_add_printf(b, "<li>");
        put_esc(b, json_string_value(v));
        evbuffer_add_printf(b, "</li>");
    }
    evbuffer_add_printf(b, "</ul></section>\n");

    /* Current Synchronization */
    const json_t *cur = json_object_get(st, "current");
    evbuffer_add_printf(b, "<section id=\"current\"><h2>Current Synchronization</h2><table>\n");
    if (!json_is_object(cur)) {
        row_text(b, "Status", "current-state", "Idle");
    } else {
        row(b, "Type", "current-type", json_object_get(cur, "type"));
        row(b, "Start", "current-started", json_object_get(cur, "started"));
        row(b, "Phase", "current-phase", json_object_get(cur, "phase"));
        long long done = json_integer_value(json_object_get(cur, "done"));
        long long total = json_integer_value(json_object_get(cur, "total"));
        char text[96];
        if (total > 0)
            snprintf(text, sizeof(text), "%lld of %lld objects", done, total);
        else
            snprintf(text, sizeof(text), "%lld objects", done);
        row_text(b, "Progress", "current-progress", text);
        row(b, "Objects/s", "current-rate", json_object_get(cur, "objects_per_s"));
    }
    evbuffer_add_printf(b, "</table></section>\n");

    /* Next Synchronization */
    const json_t *next = json_object_get(st, "next");
    evbuffer_add_printf(b, "<section id=\"next\"><h2>Next Synchronization</h2><table>\n");
    const json_t *ni = json_object_get(next, "incremental");
    const json_t *nf = json_object_get(next, "full");
    if (json_is_string(ni))
        row(b, "Incremental", "next-incremental", ni);
    else
        row_text(b, "Incremental", "next-incremental", "Not Scheduled");
    if (json_is_string(nf))
        row(b, "Full", "next-full", nf);
    else
        row_text(b, "Full", "next-full", "Not Scheduled");
    evbuffer_add_printf(b, "</table></section>\n");

    /* Last Synchronization: the last two, with their summaries */
    evbuffer_add_printf(b,
                        "<section id=\"last\"><h2>Last Synchronization</h2>"
                        "<table class=\"runs\"><tr><th>Type</th><th>Start</th><th>End</th>"
                        "<th>Status</th><th>Added</th><th>Updated</th><th>Deleted</th>"
                        "<th>Matched</th><th>Skipped</th><th>Failed</th><th>Message</th></tr>\n");
    static const char *const cols[] = {"type",    "started", "ended",   "status",
                                       "added",   "updated", "deleted", "matched",
                                       "skipped", "failed",  "message"};
    json_array_foreach(json_object_get(st, "last"), i, v)
    {
        evbuffer_add_printf(b, "<tr id=\"last-%zu\">", i);
        for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
            evbuffer_add_printf(b, "<td id=\"last-%zu-%s\">", i, cols[c]);
            put_json(b, json_object_get(v, cols[c]));
            evbuffer_add_printf(b, "</td>");
        }
        evbuffer_add_printf(b, "</tr>\n");
    }
    if (json_array_size(json_object_get(st, "last")) == 0)
        evbuffer_add_printf(b, "<tr><td colspan=\"11\">No synchronization yet</td></tr>\n");
    evbuffer_add_printf(b, "</table></section>\n");

    /* Connectors: the HA group as this instance sees it */
    evbuffer_add_printf(b, "<section id=\"connectors\"><h2>Connectors</h2><table>\n");
    row(b, "Name", "conn-name", json_object_get(conn0, "name"));
    row(b, "Host", "conn-host", json_object_get(conn0, "host"));
    row(b, "Role", "conn-role", json_object_get(ha, "role"));
    row(b, "Lease", "conn-lease", json_object_get(ha, "backend"));
    row(b, "Lease holder", "conn-holder", json_object_get(ha, "holder"));
    row(b, "Holder since", "conn-holder-since", json_object_get(ha, "holder_since"));
    row(b, "Last renew", "conn-last-renew", json_object_get(ha, "last_renew"));
    row(b, "Fencing token", "conn-fencing-token", json_object_get(ha, "fencing_token"));
    row(b, "Version", "conn-version", json_object_get(st, "version"));
    evbuffer_add_printf(b, "</table></section>\n");

    /* Cloud Statistics: what the last run did in the cloud */
    const json_t *last0 = json_array_get(json_object_get(st, "last"), 0);
    const json_t *cloud = json_object_get(st, "cloud");
    evbuffer_add_printf(b, "<section id=\"cloud\"><h2>Cloud Statistics</h2><table>\n");
    row(b, "Cloud", "cloud-state", json_object_get(cloud, "state"));
    const json_t *objs = json_object_get(cloud, "objects");
    row(b, "Users", "cloud-users", json_object_get(objs, "users"));
    row(b, "Groups", "cloud-groups", json_object_get(objs, "groups"));
    row(b, "Contacts", "cloud-contacts", json_object_get(objs, "contacts"));
    row(b, "SCIM URL", "cloud-url", json_object_get(cloud, "url"));
    row(b, "Proxy route", "cloud-route", json_object_get(cloud, "route"));
    row(b, "Added (last run)", "cloud-added", json_object_get(last0, "added"));
    row(b, "Updated (last run)", "cloud-updated", json_object_get(last0, "updated"));
    row(b, "Deleted (last run)", "cloud-deleted", json_object_get(last0, "deleted"));
    row(b, "Unchanged (last run)", "cloud-matched", json_object_get(last0, "matched"));
    evbuffer_add_printf(b, "</table></section>\n");

    /* Synchronization Schedule */
    const json_t *c = json_object_get(st, "config");
    evbuffer_add_printf(b, "<section id=\"schedule\"><h2>Synchronization Schedule</h2><table>\n");
    char every[64];
    snprintf(every, sizeof(every), "every %lld s",
             (long long)json_integer_value(json_object_get(c, "incremental_interval_s")));
    row_text(b, "Incremental", "schedule-incremental", every);
    row(b, "Full", "schedule-full", json_object_get(c, "full_sync"));
    row(b, "Change notifications", "schedule-notifications",
        json_object_get(json_object_get(st, "notifications"), "state"));
    evbuffer_add_printf(b, "</table></section>\n");

    /* Configuration Summary */
    evbuffer_add_printf(b, "<section id=\"config\"><h2>Configuration Summary</h2>\n");
    if (cfg != NULL)
        config_summary(b, cfg);
    evbuffer_add_printf(b, "</section>\n");

    /* Charts */
    evbuffer_add_printf(b, "<section id=\"charts\"><h2>Last runs</h2>\n");
    chart(b, "chart-duration", "Sync duration", "s", runs, run_duration);
    chart(b, "chart-changes", "Objects changed", "objects", runs, run_changes);
    json_t *lat = w->hooks.latency != NULL ? w->hooks.latency(w->hooks.arg) : NULL;
    if (lat == NULL)
        lat = json_array();
    chart(b, "chart-latency", "Change latency (notification to cloud)", "s", lat, latency_value);
    json_decref(lat);
    evbuffer_add_printf(b, "</section>\n");

    json_t *rep = w->hooks.report != NULL ? w->hooks.report(w->hooks.arg) : NULL;
    events_section(b, st, rep);
    report_section(b, rep);
    json_decref(rep);

    evbuffer_add_printf(b, "<section id=\"actions-section\"><h2>Actions</h2>\n");
    actions(w, b, st);
    evbuffer_add_printf(b, "</section>\n</body></html>\n");
    json_decref(st);
    json_decref(runs);
}

/* ---- requests ------------------------------------------------------------------------ */

static bool secret_equal(const char *given, size_t len, const char *want, size_t want_len)
{
    return len == want_len && CRYPTO_memcmp(given, want, len) == 0;
}

/* Do the request's credentials match [web] username and password_file? */
static bool authorized(struct web *w, struct evhttp_request *req)
{
    if (w->secret_len == 0)
        return false;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h == NULL)
        return false;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        return secret_equal(h + 7, strlen(h + 7), w->secret, w->secret_len);
    if (strncasecmp(h, "Basic ", 6) != 0)
        return false;
    const char *in = h + 6;
    size_t inlen = strlen(in);
    if (inlen == 0 || inlen % 4 != 0 || inlen > 4 * WEB_SECRET_MAX)
        return false;
    unsigned char *out = malloc(inlen / 4 * 3 + 1);
    if (out == NULL)
        return false;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
    bool ok = false;
    if (n > 0) {
        /* EVP_DecodeBlock counts the padding as zero bytes */
        if (in[inlen - 1] == '=')
            n--;
        if (in[inlen - 2] == '=')
            n--;
        out[n] = '\0';
        char *colon = memchr(out, ':', (size_t)n);
        if (colon != NULL) {
            size_t ulen = (size_t)(colon - (char *)out);
            size_t plen = (size_t)n - ulen - 1;
            bool user_ok = secret_equal((char *)out, ulen, w->username, strlen(w->username));
            bool pass_ok = secret_equal(colon + 1, plen, w->secret, w->secret_len);
            ok = user_ok && pass_ok;
        }
        OPENSSL_cleanse(out, (size_t)n);
    }
    free(out);
    return ok;
}

static void remote_of(struct evhttp_request *req, char *buf, size_t len)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn != NULL)
        evhttp_connection_get_peer(conn, &host, &port);
    snprintf(buf, len, "%s port %u", host != NULL ? host : "?", (unsigned)port);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void challenge(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Basic realm=\"dirconn\", charset=\"UTF-8\"");
    reply_text(req, 401, "Unauthorized", "credentials required");
}

static void on_action(struct web *w, struct evhttp_request *req)
{
    char remote[128];
    remote_of(req, remote, sizeof(remote));
    if (w->secret_len == 0) {
        log_msg(w->log, LOG_LEVEL_WARN, "web: action refused from %s: actions are off", remote);
        reply_text(req, 403, "Forbidden", "actions are off: [web] password_file is not set");
        return;
    }
    if (!authorized(w, req)) {
        log_msg(w->log, LOG_LEVEL_WARN, "web: action refused from %s: no valid credentials",
                remote);
        challenge(req);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[WEB_BODY_MAX + 1];
    if (len > WEB_BODY_MAX) {
        reply_text(req, 413, "Payload Too Large", "the form is too large");
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    struct evkeyvalq form;
    if (evhttp_parse_query_str(body, &form) != 0) {
        reply_text(req, 400, "Bad Request", "the form cannot be read");
        return;
    }
    const char *csrf = evhttp_find_header(&form, "csrf");
    const char *action = evhttp_find_header(&form, "action");
    if (csrf == NULL || !secret_equal(csrf, strlen(csrf), w->csrf, strlen(w->csrf))) {
        log_msg(w->log, LOG_LEVEL_WARN, "web: action refused from %s: missing or wrong CSRF token",
                remote);
        reply_text(req, 403, "Forbidden", "missing or wrong CSRF token: reload the page");
    } else if (action == NULL) {
        reply_text(req, 400, "Bad Request", "no action");
    } else {
        log_msg(w->log, LOG_LEVEL_INFO, "web: %s requested from %s", action, remote);
        json_t *r = w->hooks.action(w->hooks.arg, action, remote);
        if (r != NULL && json_is_true(json_object_get(r, "ok"))) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/");
            reply_text(req, 303, "See Other", "done");
        } else {
            const char *e = json_string_value(json_object_get(r, "error"));
            log_msg(w->log, LOG_LEVEL_WARN, "web: %s from %s refused: %s", action, remote,
                    e != NULL ? e : "failed");
            reply_text(req, 409, "Conflict", e != NULL ? e : "the action failed");
        }
        json_decref(r);
    }
    evhttp_clear_headers(&form);
}

/* The whole report file, without reading it here: evbuffer_add_file (sendfile where it can). */
static void send_report(struct web *w, struct evhttp_request *req, bool csv)
{
    char path[4200];
    const struct config *cfg = w->hooks.config(w->hooks.arg);
    int fd = cfg != NULL && web_report_path(cfg, csv, path, sizeof(path)) != NULL
                 ? open(path, O_RDONLY | O_CLOEXEC)
                 : -1;
    if (fd < 0) {
        reply_text(req, 404, "Not Found", "no report yet");
        return;
    }
    struct stat sb;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || fstat(fd, &sb) != 0) {
        close(fd);
        if (b != NULL)
            evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    /* the buffer owns fd from here (closed when the data is sent or the buffer freed) */
    if (evbuffer_add_file(b, fd, 0, (ev_off_t)sb.st_size) != 0) {
        evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", csv ? "text/csv; charset=utf-8" : "application/json");
    evhttp_add_header(out, "Content-Disposition",
                      csv ? "attachment; filename=\"dirconn-report.csv\""
                          : "attachment; filename=\"dirconn-report.json\"");
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct web_listener *l = arg;
    struct web *w = l->w;
    /* The answer goes out at once: without TCP_NODELAY the last segment of a page waits for the
     * client's delayed ACK (40 ms on Linux), which made the page 30 requests/s. */
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *parsed = evhttp_uri_parse(uri);
    const char *path = parsed != NULL ? evhttp_uri_get_path(parsed) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Cache-Control", "no-store");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    if (parsed == NULL) {
        reply_text(req, 400, "Bad Request", "the request URI cannot be read");
    } else if (!l->loopback && !authorized(w, req)) {
        char remote[128];
        remote_of(req, remote, sizeof(remote));
        log_msg(w->log, LOG_LEVEL_DEBUG, "web: %s from %s: no valid credentials", path, remote);
        challenge(req);
    } else if (l->page && strcmp(path, "/action") == 0) {
        if (method != EVHTTP_REQ_POST) {
            evhttp_add_header(out, "Allow", "POST");
            reply_text(req, 405, "Method Not Allowed", "POST only");
        } else {
            on_action(w, req);
        }
    } else if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(out, "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "GET or HEAD");
    } else if (l->metrics && strcmp(path, "/metrics") == 0) {
        struct metrics_gauges g = {.watermark_age = -1};
        w->hooks.gauges(w->hooks.arg, &g);
        size_t len = 0;
        char *text = metrics_render(w->metrics, &g, &len);
        struct evbuffer *b = evbuffer_new();
        if (text == NULL || b == NULL) {
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        } else {
            evbuffer_add(b, text, len);
            evhttp_add_header(out, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            evhttp_send_reply(req, HTTP_OK, "OK", b);
        }
        free(text);
        if (b != NULL)
            evbuffer_free(b);
    } else if (l->page && (strcmp(path, "/report.json") == 0 || strcmp(path, "/report.csv") == 0)) {
        send_report(w, req, strcmp(path, "/report.csv") == 0);
    } else if (l->page && strcmp(path, "/status.json") == 0) {
        json_t *st = w->hooks.status(w->hooks.arg);
        char *text = st != NULL ? json_dumps(st, JSON_INDENT(2)) : NULL;
        json_decref(st);
        struct evbuffer *b = evbuffer_new();
        if (text == NULL || b == NULL) {
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        } else {
            evbuffer_add_printf(b, "%s\n", text);
            evhttp_add_header(out, "Content-Type", "application/json");
            evhttp_send_reply(req, HTTP_OK, "OK", b);
        }
        free(text);
        if (b != NULL)
            evbuffer_free(b);
    } else if (l->page && strcmp(path, "/") == 0) {
        struct evbuffer *b = evbuffer_new();
        if (b == NULL) {
            evhttp_send_error(req, HTTP_INTERNAL, NULL);
        } else {
            page(w, b);
            evhttp_add_header(out, "Content-Type", "text/html; charset=utf-8");
            evhttp_add_header(out, "Content-Security-Policy",
                              "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                              "form-action 'self'");
            evhttp_send_reply(req, HTTP_OK, "OK", b);
            evbuffer_free(b);
        }
    } else {
        reply_text(req, 404, "Not Found", "not found");
    }
    if (parsed != NULL)
        evhttp_uri_free(parsed);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    struct web *w = arg;
    SSL *ssl = SSL_new(w->ssl);
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static enum dirconn_err tls_setup(struct web *w, const struct config *cfg,
                                  struct dirconn_error *err)
{
    w->ssl = SSL_CTX_new(TLS_server_method());
    if (w->ssl == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "web: cannot create the TLS context");
    SSL_CTX_set_min_proto_version(w->ssl, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(w->ssl, cfg->web_tls_cert) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: [web] tls_cert: %s", cfg->web_tls_cert,
                                 e);
    }
    if (SSL_CTX_use_PrivateKey_file(w->ssl, cfg->web_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(w->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: [web] tls_key: %s", cfg->web_tls_key,
                                 e);
    }
    return DIRCONN_OK;
}

static enum dirconn_err read_secret(struct web *w, const char *path, struct dirconn_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: [web] password_file: %s", path,
                                 strerror(errno));
    size_t n = fread(w->secret, 1, sizeof(w->secret) - 1, f);
    fclose(f);
    w->secret[n] = '\0';
    char *nl = strpbrk(w->secret, "\r\n");
    if (nl != NULL)
        *nl = '\0';
    w->secret_len = strlen(w->secret);
    if (w->secret_len == 0)
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: [web] password_file: the first line is empty", path);
    return DIRCONN_OK;
}

static enum dirconn_err listen_on(struct web *w, const char *addr, bool page, bool metrics,
                                  struct dirconn_error *err)
{
    struct web_listener *l = &w->l[w->n];
    char host[300], why[128];
    int port = 0;
    if (!config_parse_listen(addr, host, sizeof(host), &port, &l->loopback, why, sizeof(why)))
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[web] %s: %s", addr, why);
    l->w = w;
    l->page = page;
    l->metrics = metrics;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    l->http = evhttp_new(w->base);
    if (l->http == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "web: out of memory");
    w->n++;
    evhttp_set_timeout(l->http, 10);
    evhttp_set_max_body_size(l->http, WEB_BODY_MAX);
    evhttp_set_max_headers_size(l->http, 16384);
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(l->http, on_request, l);
    if (w->ssl != NULL)
        evhttp_set_bevcb(l->http, tls_bev, w);
    if (evhttp_bind_socket_with_handle(l->http, host, (ev_uint16_t)port) == NULL)
        return dirconn_error_set(err, DIRCONN_EIO, "web: cannot listen on %s: %s", addr,
                                 strerror(errno));
    return DIRCONN_OK;
}

enum dirconn_err web_start(struct event_base *base, const struct config *cfg,
                           struct metrics *metrics, const struct web_hooks *hooks,
                           const struct log_sink *log, struct web **out, struct dirconn_error *err)
{
    *out = NULL;
    if (cfg->web_listen == NULL && cfg->web_metrics_listen == NULL)
        return DIRCONN_OK;
    struct web *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "web: out of memory");
    w->base = base;
    w->metrics = metrics;
    w->hooks = *hooks;
    w->log = log;
    w->username = strdup(cfg->web_username != NULL ? cfg->web_username : "admin");
    unsigned char raw[32];
    enum dirconn_err e = DIRCONN_OK;
    if (w->username == NULL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "web: out of memory");
    else if (RAND_bytes(raw, sizeof(raw)) != 1)
        e = dirconn_error_set(err, DIRCONN_EFAIL, "web: no random bytes for the CSRF token");
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(w->csrf + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (e == DIRCONN_OK && cfg->web_password_file != NULL)
        e = read_secret(w, cfg->web_password_file, err);
    if (e == DIRCONN_OK && cfg->web_tls_cert != NULL)
        e = tls_setup(w, cfg, err);
    if (e == DIRCONN_OK && cfg->web_listen != NULL)
        e = listen_on(w, cfg->web_listen, true, cfg->web_metrics_listen == NULL, err);
    if (e == DIRCONN_OK && cfg->web_metrics_listen != NULL)
        e = listen_on(w, cfg->web_metrics_listen, false, true, err);
    if (e != DIRCONN_OK) {
        web_free(w);
        return e;
    }
    for (int i = 0; i < w->n; i++)
        log_msg(log, LOG_LEVEL_INFO, "web: %s on %s://%s/",
                w->l[i].page && w->l[i].metrics ? "status page and metrics"
                : w->l[i].page                  ? "status page"
                                                : "metrics",
                w->ssl != NULL ? "https" : "http", w->l[i].addr);
    *out = w;
    return DIRCONN_OK;
}

void web_free(struct web *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < w->n; i++)
        evhttp_free(w->l[i].http);
    if (w->ssl != NULL)
        SSL_CTX_free(w->ssl);
    OPENSSL_cleanse(w->secret, sizeof(w->secret));
    OPENSSL_cleanse(w->csrf, sizeof(w->csrf));
    free(w->username);
    free(w);
}
