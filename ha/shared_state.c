/*
 * shared_state.c - the watermarks a new active connector continues from (see shared_state.h).
 */
#include "ha/shared_state.h"

#include "connector/net/http.h"
#include "ha/election.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GENERATION_SETTING "ha-generation"
/* Set when an import replaced the local state, cleared when a full sync completed (see .h). */
#define FULL_PENDING_SETTING "ha-full-pending"

/* The kinds of the retry list, by enum object_kind. */
static const char *const retry_kinds[] = {"user", "group", "contact"};
#define N_RETRY_KINDS (sizeof(retry_kinds) / sizeof(retry_kinds[0]))

static int64_t local_generation(struct state *st)
{
    char *v = NULL;
    struct dirconn_error ignored;
    if (state_setting_get(st, GENERATION_SETTING, &v, &ignored) != DIRCONN_OK || v == NULL)
        return 0;
    int64_t g = strtoll(v, NULL, 10);
    free(v);
    return g;
}

static enum dirconn_err set_local_generation(struct state *st, int64_t g, struct dirconn_error *err)
{
    char v[32];
    snprintf(v, sizeof(v), "%" PRId64, g);
    return state_setting_set(st, GENERATION_SETTING, v, err);
}

static json_t *opt_string(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static int add_watermark(void *arg, const struct state_watermark *wm)
{
    json_t *arr = arg;
    size_t cap = 4 * ((wm->len + 2) / 3) + 1;
    unsigned char *b64 = malloc(cap);
    if (b64 == NULL)
        return 1;
    EVP_EncodeBlock(b64, wm->value != NULL ? wm->value : (const unsigned char *)"", (int)wm->len);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "partition", wm->partition, "method",
                  wm->method, "value", (const char *)b64, "dc", opt_string(wm->dc), "invocationId",
                  opt_string(wm->invocation_id), "scopeHash", opt_string(wm->scope_hash));
    free(b64);
    return o == NULL || json_array_append_new(arr, o) != 0;
}

static char *dup_member(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? strdup(s) : NULL;
}

/* A watermark from the document; false when the entry is malformed. */
static bool parse_watermark(json_t *o, struct state_watermark *wm)
{
    memset(wm, 0, sizeof(*wm));
    const char *b64 = json_string_value(json_object_get(o, "value"));
    if (!json_is_string(json_object_get(o, "partition")) ||
        !json_is_string(json_object_get(o, "method")) || b64 == NULL)
        return false;
    size_t n = strlen(b64);
    if (n % 4 != 0)
        return false;
    wm->value = malloc(n / 4 * 3 + 1);
    if (wm->value == NULL)
        return false;
    int len = n > 0 ? EVP_DecodeBlock(wm->value, (const unsigned char *)b64, (int)n) : 0;
    if (len < 0) {
        state_watermark_clear(wm);
        return false;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
        len--;
    wm->len = (size_t)len;
    wm->value[wm->len] = '\0';
    wm->partition = dup_member(o, "partition");
    wm->method = dup_member(o, "method");
    wm->dc = dup_member(o, "dc");
    wm->invocation_id = dup_member(o, "invocationId");
    wm->scope_hash = dup_member(o, "scopeHash");
    return wm->partition != NULL && wm->method != NULL;
}

static int add_retry(void *arg, const char *external_id, const char *dn, int kind)
{
    json_t *arr = arg;
    json_t *o = json_pack("{s:s}", "externalId", external_id);
    if (o == NULL)
        return 1;
    int bad = 0;
    if (kind >= 0 && (size_t)kind < N_RETRY_KINDS)
        bad |= json_object_set_new(o, "kind", json_string(retry_kinds[kind]));
    if (dn != NULL)
        bad |= json_object_set_new(o, "dn", json_string(dn));
    return bad != 0 || json_array_append_new(arr, o) != 0;
}

enum dirconn_err ha_shared_retry_encode(struct state *st, json_t *doc, struct dirconn_error *err)
{
    long n = state_retry_count(st);
    if (n < 0)
        return dirconn_error_set(err, DIRCONN_ESTATE, "%s: the objects to retry cannot be counted",
                                 state_path(st));
    json_t *arr = json_array();
    if (arr == NULL || json_object_set_new(doc, "retry", arr) != 0)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (n > HA_SHARED_RETRY_MAX)
        return json_object_set_new(doc, "retryOverflow", json_true()) == 0
                   ? DIRCONN_OK
                   : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    enum dirconn_err e = state_retry_foreach(st, add_retry, arr, err);
    if (e == DIRCONN_EFAIL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    return e;
}

/* One entry of the retry list; false when it is malformed. */
static bool parse_retry(json_t *o, const char **id, const char **dn, int *kind)
{
    *id = json_string_value(json_object_get(o, "externalId"));
    json_t *d = json_object_get(o, "dn"), *k = json_object_get(o, "kind");
    *dn = json_string_value(d);
    *kind = -1;
    if (*id == NULL || **id == '\0' || (d != NULL && !json_is_null(d) && *dn == NULL))
        return false;
    if (k == NULL || json_is_null(k))
        return true;
    for (size_t i = 0; i < N_RETRY_KINDS && json_is_string(k); i++)
        if (strcmp(json_string_value(k), retry_kinds[i]) == 0)
            *kind = (int)i;
    return *kind >= 0;
}

enum dirconn_err ha_shared_retry_decode(const json_t *doc, struct state *st, const char *origin,
                                        size_t *merged, bool *overflowed, struct dirconn_error *err)
{
    *merged = 0;
    *overflowed = json_is_true(json_object_get(doc, "retryOverflow"));
    json_t *arr = json_object_get(doc, "retry");
    if (arr == NULL || json_is_null(arr))
        return DIRCONN_OK; /* a document of an older version: no failed write to retry */
    if (!json_is_array(arr))
        return dirconn_error_set(err, DIRCONN_ELEASE_SERVER,
                                 "the shared state document's retry list is not an array");
    char reason[160];
    snprintf(reason, sizeof(reason), "its last write failed (retry list of the shared state, %s)",
             origin != NULL ? origin : "another instance");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *id = NULL, *dn = NULL;
        int kind = -1;
        if (!parse_retry(o, &id, &dn, &kind))
            return dirconn_error_set(err, DIRCONN_ELEASE_SERVER,
                                     "the shared state document has a malformed retry entry "
                                     "(entry %zu)",
                                     i);
        enum dirconn_err e = state_retry_put(st, id, dn, kind, reason, err);
        if (e != DIRCONN_OK)
            return e;
        (*merged)++;
    }
    return DIRCONN_OK;
}

enum dirconn_err ha_shared_import(struct lease_backend *b, struct state *st,
                                  const struct log_sink *log, enum ha_import *what,
                                  struct dirconn_error *err)
{
    *what = HA_IMPORT_CURRENT;
    json_t *doc = NULL;
    char *version = NULL;
    enum dirconn_err e = b->ops->state_get(b->self, &doc, &version, err);
    free(version);
    if (e != DIRCONN_OK)
        return e;
    int64_t gen = (int64_t)json_integer_value(json_object_get(doc, "generation"));
    int64_t mine = local_generation(st);
    json_t *wms = json_object_get(doc, "watermarks");
    const char *writer = json_string_value(json_object_get(doc, "writer"));
    if (gen != 0 && !json_is_array(wms)) {
        json_decref(doc);
        return dirconn_error_set(err, DIRCONN_ELEASE_SERVER,
                                 "the shared %s state document (generation %" PRId64
                                 ") has no watermarks array",
                                 b->ops->name, gen);
    }
    if (gen != 0 && gen == mine) {
        json_decref(doc);
        char *pending = NULL;
        e = state_setting_get(st, FULL_PENDING_SETTING, &pending, err);
        if (e != DIRCONN_OK)
            return e;
        if (pending != NULL) {
            /* An earlier takeover's first sync stopped before it completed: this one
             * rebuilds the object map again (or runs in full), never an incremental on the
             * map as it was. */
            *what = HA_IMPORT_PENDING;
            log_msg(log, LOG_LEVEL_INFO,
                    "ha: the first sync that follows the takeover (generation %" PRId64
                    ") has not completed yet: this sync rebuilds the object map again (or runs "
                    "in full)",
                    gen);
        } else {
            log_msg(log, LOG_LEVEL_INFO,
                    "ha: the local state is the shared one (generation %" PRId64 "): continuing",
                    gen);
        }
        free(pending);
        return DIRCONN_OK;
    }
    e = state_begin(st, err);
    if (e == DIRCONN_OK)
        e = state_watermark_delete_all(st, err);
    size_t merged = 0;
    bool overflowed = false;
    if (e == DIRCONN_OK)
        e = ha_shared_retry_decode(doc, st, writer, &merged, &overflowed, err);
    size_t i;
    json_t *o;
    size_t taken = 0;
    json_array_foreach(wms, i, o)
    {
        if (e != DIRCONN_OK || overflowed)
            break; /* an overflowed retry list: every object is read again, by a full sync */
        struct state_watermark wm;
        if (!parse_watermark(o, &wm)) {
            state_watermark_clear(&wm);
            e = dirconn_error_set(err, DIRCONN_ELEASE_SERVER,
                                  "the shared %s state document has a malformed watermark "
                                  "(entry %zu)",
                                  b->ops->name, i);
            break;
        }
        e = state_watermark_put(st, &wm, err);
        state_watermark_clear(&wm);
        taken++;
    }
    if (e == DIRCONN_OK)
        e = set_local_generation(st, gen, err);
    /* Until a full sync completes on this state, every sync runs in full (HA_IMPORT_PENDING). */
    if (e == DIRCONN_OK)
        e = state_setting_set(st, FULL_PENDING_SETTING, "1", err);
    if (e == DIRCONN_OK)
        e = state_commit(st, err);
    else
        state_rollback(st);
    if (e == DIRCONN_OK && merged > 0)
        log_msg(log, LOG_LEVEL_INFO,
                "ha: the shared state's retry list: %zu object%s whose last write failed, "
                "retried by this instance",
                merged, merged == 1 ? "" : "s");
    if (e == DIRCONN_OK && overflowed) {
        *what = HA_IMPORT_NONE;
        log_msg(log, LOG_LEVEL_INFO,
                "ha: the shared state's retry list overflowed (more than %d failed writes): the "
                "next sync runs in full (guarded by the delete threshold)",
                HA_SHARED_RETRY_MAX);
    } else if (e == DIRCONN_OK && taken > 0) {
        *what = HA_IMPORT_TAKEN;
        log_msg(log, LOG_LEVEL_INFO,
                "ha: continuing from the shared state: %zu watermark%s of generation %" PRId64
                " written by %s",
                taken, taken == 1 ? "" : "s", gen, writer != NULL ? writer : "?");
    } else if (e == DIRCONN_OK) {
        *what = HA_IMPORT_NONE;
        log_msg(log, LOG_LEVEL_INFO,
                "ha: no shared watermark: the next sync runs in full (guarded by the delete "
                "threshold)");
    }
    json_decref(doc);
    return e;
}

bool ha_shared_election_gate(void *arg)
{
    return ha_election_is_active(arg);
}

/* A failure of the write that another attempt may not meet: no answer, a "try later" status. */
static bool transient_put(enum dirconn_err e, const struct dirconn_error *err)
{
    if (e == DIRCONN_ECLOUD_CONNECT || e == DIRCONN_ELEASE_CONNECT)
        return true;
    return err->origin == DIRCONN_ORIGIN_HTTP && http_retryable_status(err->cause);
}

/* The backend's state_put, tried again after transient failures, the gate asked before each. */
static enum dirconn_err put_gated(struct lease_backend *b, const json_t *doc, const char *version,
                                  int64_t token, ha_write_gate gate, void *gate_arg,
                                  struct dirconn_error *err)
{
    enum dirconn_err e = DIRCONN_OK;
    for (int attempt = 0; attempt < HA_SHARED_PUT_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            struct timespec ts = {0, (attempt == 1 ? 100 : 300) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (gate != NULL && !gate(gate_arg))
            return dirconn_error_set(err, DIRCONN_ELEASE,
                                     "this instance is no longer active (its lease deadline "
                                     "passed): nothing written%s",
                                     attempt > 0 ? " again" : "");
        dirconn_error_clear(err);
        e = b->ops->state_put(b->self, doc, version, token, err);
        if (e == DIRCONN_OK || !transient_put(e, err))
            return e;
    }
    return e;
}

enum dirconn_err ha_shared_export(struct lease_backend *b, struct state *st, int64_t token,
                                  ha_write_gate gate, void *gate_arg, const struct log_sink *log,
                                  struct dirconn_error *err)
{
    json_t *old = NULL;
    char *version = NULL;
    enum dirconn_err e = b->ops->state_get(b->self, &old, &version, err);
    if (e != DIRCONN_OK)
        return e;
    int64_t gen = (int64_t)json_integer_value(json_object_get(old, "generation"));
    int64_t mine = local_generation(st);
    int64_t next = (gen > mine ? gen : mine) + 1;
    json_decref(old);
    json_t *arr = json_array();
    json_t *doc = arr != NULL
                      ? json_pack("{s:i, s:I, s:s, s:o}", "format", 1, "generation",
                                  (json_int_t)next, "writer", b->identity, "watermarks", arr)
                      : NULL;
    if (doc == NULL) {
        free(version);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    e = state_watermark_foreach(st, add_watermark, arr, err);
    if (e == DIRCONN_EFAIL)
        e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (e == DIRCONN_OK)
        e = ha_shared_retry_encode(st, doc, err);
    if (e == DIRCONN_OK)
        e = put_gated(b, doc, version, token, gate, gate_arg, err);
    free(version);
    if (e == DIRCONN_OK)
        e = set_local_generation(st, next, err);
    if (e == DIRCONN_OK)
        log_msg(log, LOG_LEVEL_DEBUG,
                "ha: shared state generation %" PRId64 " written (%zu watermarks, %s%zu "
                "objects to retry)",
                next, json_array_size(arr),
                json_is_true(json_object_get(doc, "retryOverflow")) ? "overflowed: over " : "",
                json_is_true(json_object_get(doc, "retryOverflow"))
                    ? (size_t)HA_SHARED_RETRY_MAX
                    : json_array_size(json_object_get(doc, "retry")));
    json_decref(doc);
    return e;
}

enum dirconn_err ha_shared_step(const struct config *cfg, const struct log_sink *log,
                                struct proxy_shared *proxy_shared, bool import, int64_t token,
                                struct ha_election *gate, enum ha_import *what,
                                struct dirconn_error *err)
{
    enum ha_import ignored = HA_IMPORT_CURRENT;
    if (what == NULL)
        what = &ignored;
    *what = HA_IMPORT_CURRENT;
    struct lease_backend b;
    struct state *st = NULL;
    enum dirconn_err e = ha_backend_new(cfg, log, proxy_shared, NULL, &b, err);
    if (e == DIRCONN_OK && b.ops == NULL)
        return DIRCONN_OK;
    if (e == DIRCONN_OK)
        e = state_open(cfg->state_dir, &st, err);
    if (e == DIRCONN_OK)
        e = import ? ha_shared_import(&b, st, log, what, err)
                   : ha_shared_export(&b, st, token, gate != NULL ? ha_shared_election_gate : NULL,
                                      gate, log, err);
    state_close(st);
    lease_backend_free(&b);
    return e;
}

enum dirconn_err ha_shared_full_done(const struct config *cfg, struct dirconn_error *err)
{
    struct state *st = NULL;
    enum dirconn_err e = state_open(cfg->state_dir, &st, err);
    char *pending = NULL;
    if (e == DIRCONN_OK)
        e = state_setting_get(st, FULL_PENDING_SETTING, &pending, err);
    if (e == DIRCONN_OK && pending != NULL)
        e = state_setting_set(st, FULL_PENDING_SETTING, NULL, err);
    free(pending);
    state_close(st);
    return e;
}
