/* sync_report.c - the report of one run: its summary lines, history row and control-API post. */
#include "connector/sync_report.h"

#include "connector/cloud_auth.h"
#include "connector/scim.h"
#include "connector/state.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the summary lines ----------------------------------------------------------- */

struct emit {
    void (*line)(void *arg, const char *text);
    void *arg;
};

static void emit(const struct emit *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(const struct emit *o, const char *fmt, ...)
{
    char buf[DIRCONN_ERROR_LEN + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    o->line(o->arg, buf);
}

/* The Summary lines of a computed plan (Cisco guide, "Run a Dry Run"). */
static void summary_lines(const struct sync_report *r, const struct emit *o)
{
    const struct plan_summary *s = &r->plan;
    emit(o,
         "Summary | 0 Admins Deleted | %ld Users Deleted | %ld Groups Deleted | %ld Objects "
         "Added | %ld Objects Updated | %ld Objects Matched",
         s->deleted_by_kind[OBJECT_USER], s->deleted_by_kind[OBJECT_GROUP], s->count[PLAN_ADD],
         s->count[PLAN_UPDATE], s->count[PLAN_MATCH]);
    if (s->drift > 0)
        emit(o,
             "%ld of the updated objects were changed in the cloud (drift): the directory's "
             "values are put back",
             s->drift);
    if (s->deleted_by_kind[OBJECT_CONTACT] > 0)
        emit(o, "%ld contact objects will be deleted", s->deleted_by_kind[OBJECT_CONTACT]);
    if (s->count[PLAN_PROTECTED] > 0)
        emit(o, "%ld admin objects would have been deleted, but were not",
             s->count[PLAN_PROTECTED]);
    if (s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] > 0)
        emit(o, "%ld objects skipped (%ld missing a required attribute, %ld naming conflicts)",
             s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT], s->count[PLAN_SKIP],
             s->count[PLAN_CONFLICT]);
    if (s->warnings > 0)
        emit(o, "%ld attribute warnings (the objects are sent without the invalid values)",
             s->warnings);
    if (r->contacts_unsupported)
        emit(o, "Contacts are not synchronised: the cloud offers no Contact resource type");
    if (!r->threshold_enabled)
        emit(o, "Delete threshold is disabled");
    else if (r->threshold_exceeded)
        emit(o, "Delete threshold (%d object%s) exceeded. %ld objects would be deleted%s",
             r->threshold, r->threshold == 1 ? "" : "s", s->deletes,
             r->override_used ? " (override used for this run)" : "");
    else
        emit(o, "Delete threshold (%d object%s) not exceeded: %ld objects would be deleted",
             r->threshold, r->threshold == 1 ? "" : "s", s->deletes);
    if (r->previous_override) {
        char when[64];
        time_t t = (time_t)r->previous_started;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        emit(o, "Note: the delete threshold was overridden for the %s sync of %s", r->previous_type,
             when);
    }
}

void sync_report_lines(const struct sync_report *r, void (*line)(void *arg, const char *text),
                       void *arg)
{
    const struct emit o = {line, arg};
    if (r->ran_full)
        emit(&o, "Running a full sync: %s", r->fallback);
    if (r->planned && r->incremental)
        emit(&o, "Incremental | %ld changes since the last synchronization (%s)", r->changes,
             r->tracking);
    if (r->planned)
        summary_lines(r, &o);
    if (r->mode == SYNC_DRY_RUN)
        return;
    if (r->applied) {
        emit(&o, "Result | %ld added | %ld updated | %ld deleted | %ld failed", r->added,
             r->updated, r->deleted, r->failed);
    } else if (r->code != DIRCONN_OK) {
        /* Stopped before anything was applied: say so in the usual two lines. */
        if (!r->planned)
            emit(&o,
                 "Summary | not computed: the run stopped while %s (%ld directory objects "
                 "read)",
                 sync_phase_name(r->stopped_in), r->read);
        emit(&o, "Result | 0 added | 0 updated | 0 deleted | 0 failed");
    }
}

static void to_file(void *arg, const char *text)
{
    fprintf(arg, "%s\n", text);
}

void sync_report_render(const struct sync_report *r, FILE *out)
{
    sync_report_lines(r, to_file, out);
}

struct text {
    char *s;
    size_t n, cap;
    bool oom;
};

static void to_text(void *arg, const char *line)
{
    struct text *t = arg;
    size_t len = strlen(line);
    if (t->oom)
        return;
    if (t->n + len + 2 > t->cap) {
        size_t cap = (t->n + len + 2) * 2;
        char *g = realloc(t->s, cap);
        if (g == NULL) {
            t->oom = true;
            return;
        }
        t->s = g;
        t->cap = cap;
    }
    memcpy(t->s + t->n, line, len);
    t->n += len;
    t->s[t->n++] = '\n';
    t->s[t->n] = '\0';
}

char *sync_report_text(const struct sync_report *r)
{
    struct text t = {0};
    sync_report_lines(r, to_text, &t);
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    return t.s != NULL ? t.s : strdup("");
}

/* ---- history and the control API ---------------------------------------------------- */

void sync_report_previous_override(struct state *st, struct sync_report *r)
{
    struct state_history *h = NULL;
    size_t n = 0;
    r->previous_override = false;
    if (state_history_list(st, 1, &h, &n, NULL) == DIRCONN_OK && n == 1 && h[0].override_used) {
        r->previous_override = true;
        snprintf(r->previous_type, sizeof(r->previous_type), "%s",
                 h[0].type != NULL ? h[0].type : "");
        r->previous_started = h[0].started;
    }
    state_history_free(h, n);
}

void sync_report_history(struct state *st, const struct log_sink *log, const struct sync_report *r,
                         const struct plan_summary *s, const char *type, const char *status,
                         time_t started, const char *message)
{
    bool dry = r->mode == SYNC_DRY_RUN;
    struct state_history h = {
        .type = (char *)type,
        .started = (int64_t)started,
        .ended = (int64_t)time(NULL),
        .status = (char *)status,
        .added = dry && s ? s->count[PLAN_ADD] : r->added,
        .updated = dry && s ? s->count[PLAN_UPDATE] : r->updated,
        .deleted = dry && s ? s->deletes : r->deleted,
        .matched = s ? s->count[PLAN_MATCH] : 0,
        .skipped = s ? s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] : 0,
        .failed = r->failed,
        .threshold_exceeded = r->threshold_exceeded,
        .override_used = r->override_used,
        .message = (char *)message,
    };
    struct dirconn_error e2;
    if (state_history_add(st, &h, &e2) != DIRCONN_OK)
        log_msg(log, LOG_LEVEL_WARN, "%s", e2.msg);
}

static void iso8601(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void sync_report_post(struct scim_client *scim, const struct cloud_auth *auth,
                      const struct config *cfg, const struct log_sink *log,
                      const struct sync_report *r, const struct plan_summary *s, const char *type,
                      time_t started, const char *message)
{
    const char *identity = auth != NULL ? cloud_auth_identity(auth) : NULL;
    if (scim == NULL || cfg->cloud_auth != CLOUD_AUTH_OAUTH2 || identity == NULL ||
        cfg->cloud_url == NULL || cfg->cloud_org == NULL)
        return;
    bool dry = r->mode == SYNC_DRY_RUN;
    char start[32], end[32];
    iso8601(started, start);
    iso8601(time(NULL), end);
    json_t *events = json_array();
    if (r->threshold_exceeded && s != NULL)
        json_array_append_new(events, json_pack("{s:s, s:I, s:I, s:s}", "kind", "delete", "planned",
                                                (json_int_t)s->deletes, "threshold",
                                                (json_int_t)cfg->delete_threshold, "action",
                                                dry                ? "reported"
                                                : r->override_used ? "overridden"
                                                                   : "aborted"));
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:s}", "type", type, "start", start,
        "end", end, "counts", "added", (json_int_t)(dry && s ? s->count[PLAN_ADD] : r->added),
        "updated", (json_int_t)(dry && s ? s->count[PLAN_UPDATE] : r->updated), "deleted",
        (json_int_t)(dry && s ? s->deletes : r->deleted), "matched",
        (json_int_t)(s ? s->count[PLAN_MATCH] : 0), "skipped",
        (json_int_t)(s ? s->count[PLAN_SKIP] + s->count[PLAN_CONFLICT] : 0), "failed",
        (json_int_t)r->failed, "thresholdEvents", events, "version", DIRCONN_VERSION);
    if (message != NULL)
        json_object_set_new(body, "message", json_string(message));
    char *id = scim_url_escape(identity);
    char *org = scim_url_escape(cfg->cloud_org);
    char url[4096];
    size_t ul = strlen(cfg->cloud_url);
    snprintf(url, sizeof(url), "%.*s/v1/orgs/%s/connectors/%s/reports",
             (int)(ul > 0 && cfg->cloud_url[ul - 1] == '/' ? ul - 1 : ul), cfg->cloud_url,
             org ? org : "", id ? id : "");
    curl_free(id);
    curl_free(org);
    struct scim_response resp;
    if (scim_request_sync(scim, "POST", url, body, NULL, &resp) != DIRCONN_OK)
        log_msg(log, LOG_LEVEL_WARN, "the sync report was not accepted: %s", resp.error);
    scim_response_clear(&resp);
    json_decref(body);
}
