/*
 * ha_lease_driver - run one HA lease operation (ha/lease.h) against the lease
 * backend that [ha] lease of a configuration names, and print the result as
 * one JSON object on stdout. For the integration tests of the backends.
 *
 *   ha_lease_driver CONFIG IDENTITY COMMAND [ARGS...]
 *
 * COMMAND:
 *   observe                      the lease as observe sees it
 *   acquire [DURATION_MS]        observe, then acquire with what it saw
 *   renew [DURATION_MS]          renew this identity's lease
 *   release                      release it ({"released": true})
 *   state-get                    {"doc": ..., "version": "..."}
 *   state-put JSON [VERSION] TOKEN   replace the state document ({"written": true})
 * DURATION_MS defaults to [ha] lease_duration. A lease prints as
 * {"holder", "token", "remaining_ms", "duration_ms", "version", "acquired_at",
 *  "renewed_at"} (null where the backend has no value).
 *
 * IDENTITY is the holder name for lease = etcd; the cloud backend takes the
 * connector id from the configuration and the secret store and ignores it
 * (pass "-").
 *
 * Exit status: 0, or the dirconn exit code of the error (50 = ELEASE,
 * 30 = ECLOUD_CONNECT, 32 = ECLOUD) with its one line on stderr; 2 for usage.
 * DIRCONN_LEASE_DRIVER_TIMEOUT_MS (environment) overrides the per-request
 * timeout (default 5000).
 */
#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "ha/lease.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: ha_lease_driver CONFIG IDENTITY observe | acquire [DURATION_MS] | "
                    "renew [DURATION_MS] | release | state-get | state-put JSON [VERSION] TOKEN\n");
}

static bool parse_int64(const char *s, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static void print_json(json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    printf("%s\n", text != NULL ? text : "null");
    free(text);
    json_decref(j);
}

static void print_info(const struct lease_info *li)
{
    print_json(json_pack("{s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "holder", str_or_null(li->holder),
                         "token", (json_int_t)li->token, "remaining_ms",
                         (json_int_t)li->remaining_ms, "duration_ms", (json_int_t)li->duration_ms,
                         "version", str_or_null(li->version), "acquired_at",
                         str_or_null(li->acquired_at), "renewed_at", str_or_null(li->renewed_at)));
}

static enum dirconn_err backend_new(const struct config *cfg, const struct log_sink *log,
                                    const char *identity, int64_t timeout_ms,
                                    struct lease_backend *b, struct dirconn_error *err)
{
    switch (cfg->ha_lease) {
    case HA_LEASE_ETCD:
        return lease_backend_etcd_new(cfg, log, NULL, identity, timeout_ms, b, err);
    case HA_LEASE_CLOUD:
        return lease_backend_cloud_new(cfg, log, NULL, timeout_ms, b, err);
    case HA_LEASE_NONE:
    default:
        return dirconn_error_set(err, DIRCONN_ECONFIG, "[ha] lease = none: there is no lease");
    }
}

static enum dirconn_err run(struct lease_backend *b, const struct config *cfg, int argc,
                            char **argv, struct dirconn_error *err)
{
    const char *cmd = argv[0];
    const struct lease_backend_ops *ops = b->ops;
    struct lease_info li = {0};
    enum dirconn_err e = DIRCONN_OK;
    int64_t duration_ms = cfg->ha_lease_duration_ms;
    if ((strcmp(cmd, "acquire") == 0 || strcmp(cmd, "renew") == 0) && argc == 2 &&
        (!parse_int64(argv[1], &duration_ms) || duration_ms <= 0))
        return dirconn_error_set(err, DIRCONN_EUSAGE, "bad DURATION_MS '%s'", argv[1]);
    if (strcmp(cmd, "observe") == 0 && argc == 1) {
        e = ops->observe(b->self, &li, err);
        if (e == DIRCONN_OK)
            print_info(&li);
    } else if (strcmp(cmd, "acquire") == 0 && argc <= 2) {
        struct lease_info seen = {0};
        e = ops->observe(b->self, &seen, err);
        if (e == DIRCONN_OK)
            e = ops->acquire(b->self, &seen, duration_ms, &li, err);
        if (e == DIRCONN_OK)
            print_info(&li);
        lease_info_clear(&seen);
    } else if (strcmp(cmd, "renew") == 0 && argc <= 2) {
        e = ops->renew(b->self, duration_ms, &li, err);
        if (e == DIRCONN_OK)
            print_info(&li);
    } else if (strcmp(cmd, "release") == 0 && argc == 1) {
        e = ops->release(b->self, err);
        if (e == DIRCONN_OK)
            print_json(json_pack("{s:b}", "released", 1));
    } else if (strcmp(cmd, "state-get") == 0 && argc == 1) {
        json_t *doc = NULL;
        char *version = NULL;
        e = ops->state_get(b->self, &doc, &version, err);
        if (e == DIRCONN_OK)
            print_json(json_pack("{s:o, s:o}", "doc", doc, "version", str_or_null(version)));
        free(version);
    } else if (strcmp(cmd, "state-put") == 0 && (argc == 3 || argc == 4)) {
        int64_t token = 0;
        const char *version = argc == 4 ? argv[2] : NULL;
        if (!parse_int64(argv[argc - 1], &token))
            return dirconn_error_set(err, DIRCONN_EUSAGE, "bad TOKEN '%s'", argv[argc - 1]);
        json_error_t jerr;
        json_t *doc = json_loads(argv[1], JSON_DECODE_ANY, &jerr);
        if (doc == NULL)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "state-put: JSON: %s", jerr.text);
        e = ops->state_put(b->self, doc, version, token, err);
        json_decref(doc);
        if (e == DIRCONN_OK)
            print_json(json_pack("{s:b}", "written", 1));
    } else {
        usage();
        return dirconn_error_set(err, DIRCONN_EUSAGE, "unknown command or wrong arguments");
    }
    lease_info_clear(&li);
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        usage();
        return dirconn_exit_code(DIRCONN_EUSAGE);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct log_sink log;
    log_sink_init(&log, "ha_lease_driver",
                  getenv("DIRCONN_LEASE_DRIVER_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
                  LOG_TARGET_STDERR);
    int64_t timeout_ms = 5000;
    const char *t = getenv("DIRCONN_LEASE_DRIVER_TIMEOUT_MS");
    if (t != NULL && (!parse_int64(t, &timeout_ms) || timeout_ms <= 0))
        timeout_ms = 5000;
    struct dirconn_error err;
    dirconn_error_clear(&err);
    struct config *cfg = NULL;
    struct lease_backend b = {0};
    enum dirconn_err e = config_load(argv[1], &cfg, &err);
    if (e == DIRCONN_OK)
        e = backend_new(cfg, &log, argv[2], timeout_ms, &b, &err);
    if (e == DIRCONN_OK)
        e = run(&b, cfg, argc - 3, argv + 3, &err);
    if (e != DIRCONN_OK)
        fprintf(stderr, "ha_lease_driver: %s: %s\n", dirconn_err_name(e),
                err.msg[0] ? err.msg : dirconn_strerror(e));
    lease_backend_free(&b);
    config_free(cfg);
    log_sink_close(&log);
    curl_global_cleanup();
    return dirconn_exit_code(e);
}
