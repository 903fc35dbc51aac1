/*
 * fuzz_scim.c - what the connector reads from the cloud's SCIM answers:
 * error bodies (scim_response_parse, RFC 7644 3.12), list pages
 * (scim_port_list_all, 3.4.2), Bulk responses (apply_bulk_result, 3.7.3),
 * and the discovery documents ServiceProviderConfig, ResourceTypes and
 * Schemas (provider_discover, RFC 7643 5-7) with what is then asked of them,
 * the OAuth token endpoint's answer (cloud_auth_parse_token, RFC 6749 5),
 * Retry-After values (http_parse_retry_after, RFC 9110 10.2.3) and the
 * control API's lease answers (lease_cloud_parse, docs/cloud-api.md "Lease").
 *
 * Input: a first line naming what to fuzz ("error", "list", "bulk",
 * "discover", "oauth", "retry" or "lease"), then answers separated by lines "%%" (fuzz_util.h).
 * Each answer is an optional status line ("404", default 200) and a body. A fake transport (struct
 * scim_port) gives the answers in order to the requests the code makes; when they run out it
 * answers 503 without a body.
 */
#include "connector/apply.h"
#include "connector/cloud_auth.h"
#include "connector/core/secret_store.h"
#include "connector/provider.h"
#include "connector/scim.h"
#include "connector/control.h"
#include "ha/lease.h"
#include "fuzz_util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 16

struct queued {
    scim_done_fn done;
    void *arg;
    char method[8];
    char path[256];
    bool status_only; /* SCIM_SUBMIT_STATUS_ONLY: a 2xx body is not parsed, as the client does */
};

struct fake {
    char **parts;
    size_t *lens;
    size_t n, next;
    struct queued q[8];
    size_t nq;
};

static enum dirconn_err fake_submit(void *impl, const char *method, const char *path,
                                    const json_t *body, const char *if_match, unsigned flags,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    (void)body, (void)if_match;
    struct fake *f = impl;
    if (f->nq == sizeof(f->q) / sizeof(f->q[0]))
        return dirconn_error_set(err, DIRCONN_EFAIL, "too many requests");
    struct queued *q = &f->q[f->nq++];
    q->done = done;
    q->arg = arg;
    snprintf(q->method, sizeof(q->method), "%s", method);
    snprintf(q->path, sizeof(q->path), "%s", path);
    q->status_only = (flags & SCIM_SUBMIT_STATUS_ONLY) != 0;
    return DIRCONN_OK;
}

/* The next answer: a status line when the part starts with three digits and a newline. */
static void next_answer(struct fake *f, const struct queued *q, struct scim_response *r)
{
    memset(r, 0, sizeof(*r));
    r->attempts = 1;
    if (f->next >= f->n) {
        scim_response_parse(r, q->method, q->path, 503, NULL, 0, false);
        return;
    }
    const char *b = f->parts[f->next];
    size_t len = f->lens[f->next++];
    long status = 200;
    if (len >= 4 && isdigit((unsigned char)b[0]) && isdigit((unsigned char)b[1]) &&
        isdigit((unsigned char)b[2]) && b[3] == '\n') {
        status = strtol(b, NULL, 10);
        b += 4, len -= 4;
    }
    if (q->status_only && status >= 200 && status < 300)
        len = 0;
    scim_response_parse(r, q->method, q->path, status, b, len, status == 409);
}

static enum dirconn_err fake_run(void *impl, struct dirconn_error *err)
{
    (void)err;
    struct fake *f = impl;
    while (f->nq > 0) {
        struct queued q = f->q[0];
        memmove(f->q, f->q + 1, (f->nq - 1) * sizeof(f->q[0]));
        f->nq--;
        struct scim_response r;
        next_answer(f, &q, &r);
        q.done(q.arg, &r);
        scim_response_clear(&r);
    }
    return DIRCONN_OK;
}

static const struct scim_port_ops fake_ops = {fake_submit, fake_run, NULL};

static int count_resource(void *arg, json_t *resource)
{
    size_t *n = arg;
    (*n)++;
    (void)json_string_value(json_object_get(resource, "id"));
    (void)json_string_value(json_object_get(json_object_get(resource, "meta"), "version"));
    return *n > 10000;
}

static void fuzz_discover(const struct scim_port *port)
{
    static const char *const single[] = {"emails", "phoneNumbers", NULL};
    struct provider_settings settings = {single, false};
    struct log_sink log;
    log_sink_init(&log, "fuzz", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    struct provider *p = NULL;
    struct dirconn_error err;
    if (provider_discover(port, &log, &settings, &p, &err) != DIRCONN_OK) {
        log_sink_close(&log);
        return;
    }
    (void)provider_features(p);
    (void)provider_warnings(p);
    static const struct {
        const char *attr, *type, *sub;
    } leaves[] = {
        {"userName", NULL, NULL},
        {"name", NULL, "givenName"},
        {"emails", "work", "value"},
        {"phoneNumbers", "mobile", "value"},
        {"photos", "photo", "value"},
        {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", NULL, NULL},
        {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", NULL, "value"},
        {"members", NULL, "value"},
        {"displayName", NULL, NULL},
    };
    for (int k = OBJECT_USER; k < OBJECT_KINDS; k++) {
        (void)provider_has_kind(p, (enum object_kind)k);
        (void)provider_endpoint(p, (enum object_kind)k);
        (void)provider_immutable(p, (enum object_kind)k);
        for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
            const char *why = NULL;
            (void)provider_check(p, (enum object_kind)k, leaves[i].attr, leaves[i].type,
                                 leaves[i].sub, &why);
        }
        json_error_t jerr;
        json_t *rec = json_loads(
            "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
            "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"],"
            "\"userName\":\"jdoe@example.com\",\"externalId\":\"x\",\"active\":true,"
            "\"name\":{\"givenName\":\"Jane\",\"familyName\":\"Doe\"},\"displayName\":\"Jane\","
            "\"emails\":[{\"type\":\"work\",\"value\":\"j@example.com\",\"primary\":true},"
            "{\"type\":\"home\",\"value\":\"h@example.com\"}],"
            "\"phoneNumbers\":[{\"type\":\"work\",\"value\":\"+1\"}],"
            "\"members\":[{\"value\":\"1\"}],"
            "\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\":"
            "{\"department\":\"R\",\"employeeNumber\":\"7\"}}",
            0, &jerr);
        if (rec != NULL)
            (void)provider_restrict(p, (enum object_kind)k, rec);
        json_decref(rec);
    }
    provider_free(p);
    log_sink_close(&log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 262144)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    size_t ml = (size_t)(nl - data);
    char mode[16];
    snprintf(mode, sizeof(mode), "%.*s", (int)(ml < sizeof(mode) ? ml : 0), (const char *)data);
    char *parts[MAX_PARTS];
    size_t lens[MAX_PARTS];
    size_t n = fuzz_parts(nl + 1, size - ml - 1, parts, lens, MAX_PARTS);
    struct fake f = {.parts = parts, .lens = lens, .n = n};
    struct scim_port port = {&fake_ops, &f};
    struct dirconn_error err;
    if (strcmp(mode, "error") == 0) {
        struct scim_response r;
        for (size_t i = 0; i < n; i++) {
            struct queued q = {.method = "PATCH", .path = "/Users/1"};
            next_answer(&f, &q, &r);
            struct scim_response copy;
            scim_response_copy(&copy, &r);
            scim_response_clear(&copy);
            scim_response_clear(&r);
        }
    } else if (strcmp(mode, "list") == 0) {
        size_t count = 0;
        (void)scim_port_list_all(&port, "/Users?excludedAttributes=groups", "userName eq \"a\"",
                                 "id,externalId", 2, count_resource, &count, &err);
    } else if (strcmp(mode, "bulk") == 0 && n > 0) {
        struct scim_response r;
        struct queued q = {.method = "POST", .path = "/Bulk"};
        next_answer(&f, &q, &r);
        static const char *const ids[] = {"u1", "u2", "u3", "", "qwertyuiop"};
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            long status = 0;
            const char *detail = NULL, *id = NULL;
            const json_t *res = apply_bulk_result(r.body, ids[i], &status, &detail, &id);
            if (res != NULL && id != NULL)
                free(strdup(id));
        }
        scim_response_clear(&r);
    } else if (strcmp(mode, "discover") == 0) {
        fuzz_discover(&port);
    } else if (strcmp(mode, "lease") == 0 && n > 0) {
        /* the answer's body, then optionally its ETag */
        json_error_t jerr;
        struct control_response cr = {200, json_loadb(parts[0], lens[0], 0, &jerr),
                                      n > 1 ? strdup(parts[1]) : NULL};
        struct lease_info li;
        if (lease_cloud_parse(&cr, &li, &err) == DIRCONN_OK)
            lease_info_clear(&li);
        control_response_clear(&cr);
    } else if (strcmp(mode, "retry") == 0) {
        for (size_t i = 0; i < n; i++)
            (void)http_parse_retry_after(parts[i], 1767225600); /* 2026-01-01 */
    } else if (strcmp(mode, "oauth") == 0 && n > 0) {
        long status = 200;
        const char *b = parts[0];
        size_t len = lens[0];
        if (len >= 4 && isdigit((unsigned char)b[0]) && b[3] == '\n') {
            status = strtol(b, NULL, 10);
            b += 4, len -= 4;
        }
        char *token = NULL;
        int64_t lifetime_ms = 0;
        if (cloud_auth_parse_token(status, b, len, "https://cloud.example.com/oauth/token",
                                   "c0ffee", &token, &lifetime_ms, &err) == DIRCONN_OK)
            secret_free(token);
    }
    fuzz_parts_free(parts, n);
    return 0;
}
