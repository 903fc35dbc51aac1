/*
 * main.c - dirconn-cloud: the reference cloud (SCIM 2.0 store and connector
 * control API). Command line in docs/cloud-api.md "Command line".
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud/cloud.h"
#include "cloud/cloud_schema.h"
#include "cloud/cloud_http.h"
#include "connector/core/error.h"

#define CLOUD_VERSION "0.1.0"

/* --- the option table (name, type, target, bounds, help) --------------------------------- */

enum opt_type {
    OPT_STR,         /* const char * */
    OPT_FLAG,        /* bool, no argument */
    OPT_ORG,         /* appended to orgs[] */
    OPT_DURATION_S,  /* long seconds; "30s", "10m", "1h", bare = seconds */
    OPT_DURATION_MS, /* long milliseconds; "250ms", "2s", bare = milliseconds */
    OPT_SIZE,        /* long bytes; "512k", "1m" (KiB, MiB), bare = bytes */
    OPT_LONG,        /* long */
    OPT_RATE,        /* double in [0, 1] */
    OPT_U64,         /* uint64_t */
    OPT_SYNC,        /* "normal" | "full" -> bool db_sync_full */
    OPT_LOGLEVEL,    /* error | warn | info | debug */
    OPT_PROFILE      /* a name in profiles[] -> profile, its flags and omit_attrs */
};

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset; /* into struct cloud_config */
    long min, max;
    const char *arg;
    const char *help;
};

#define CFG(m) offsetof(struct cloud_config, m)

static const struct opt options[] = {
    {"listen", OPT_STR, CFG(listen), 0, 0, "HOST:PORT",
     "address to listen on (port 0: any free port)"},
    {"db", OPT_STR, CFG(db_path), 0, 0, "FILE", "SQLite database (created if missing)"},
    {"admin-token-file", OPT_STR, CFG(admin_token_file), 0, 0, "FILE",
     "file holding the admin token"},
    {"org", OPT_ORG, 0, 0, 0, "NAME", "organisation to serve (repeatable; default: default)"},
    {"tls-cert", OPT_STR, CFG(tls_cert), 0, 0, "FILE", "PEM certificate chain for HTTPS"},
    {"tls-key", OPT_STR, CFG(tls_key), 0, 0, "FILE", "PEM private key for HTTPS"},
    {"insecure-http", OPT_FLAG, CFG(insecure_http), 0, 0, NULL, "serve plain HTTP (tests only)"},
    {"ready-file", OPT_STR, CFG(ready_file), 0, 0, "FILE",
     "write the bound port here once listening"},
    {"public-url", OPT_STR, CFG(public_url), 0, 0, "URL",
     "base URL for meta.location (default from --listen)"},
    {"token-ttl", OPT_DURATION_S, CFG(token_ttl_s), 1, 86400 * 30, "DURATION",
     "access token lifetime (3600s)"},
    {"max-body", OPT_SIZE, CFG(max_body), 1024, 1L << 30, "BYTES",
     "largest request body except /Bulk (1m)"},
    {"bulk-max-operations", OPT_LONG, CFG(bulk_max_ops), 1, 100000, "N",
     "Bulk maxOperations (1000)"},
    {"bulk-max-payload", OPT_SIZE, CFG(bulk_max_payload), 1024, 1L << 30, "BYTES",
     "Bulk maxPayloadSize (4m)"},
    {"filter-max-results", OPT_LONG, CFG(filter_max_results), 1, 1000000, "N",
     "largest page of a list (1000)"},
    {"db-sync", OPT_SYNC, CFG(db_sync_full), 0, 0, "normal|full",
     "SQLite synchronous mode (normal)"},
    {"log-level", OPT_LOGLEVEL, CFG(log_level), 0, 0, "LEVEL",
     "error, warn, info (default), debug"},
    {"delete-cascades", OPT_FLAG, CFG(delete_cascades), 0, 0, NULL,
     "DELETE removes the resource from groups and clears manager on its reports"},
    {"no-enterprise-extension", OPT_FLAG, CFG(no_enterprise_ext), 0, 0, NULL,
     "emulate a provider without the enterprise User extension"},
    {"no-contacts", OPT_FLAG, CFG(no_contacts), 0, 0, NULL,
     "emulate a provider without the Contact resource type"},
    {"no-bulk", OPT_FLAG, CFG(no_bulk), 0, 0, NULL, "emulate a provider without /Bulk"},
    {"no-patch", OPT_FLAG, CFG(no_patch), 0, 0, NULL, "emulate a provider without PATCH"},
    {"no-etag", OPT_FLAG, CFG(no_etag), 0, 0, NULL,
     "emulate a provider without ETags (no meta.version)"},
    {"filter-eq-only", OPT_FLAG, CFG(filter_eq_only), 0, 0, NULL,
     "emulate a provider whose filters are eq comparisons joined by and"},
    {"no-search", OPT_FLAG, CFG(no_search), 0, 0, NULL,
     "emulate a provider without POST .search (501)"},
    {"single-value", OPT_FLAG, CFG(single_value), 0, 0, NULL,
     "emulate a provider that keeps one value per multi-valued User attribute"},
    {"group-patch-limited", OPT_FLAG, CFG(group_patch_limited), 0, 0, NULL,
     "emulate a provider whose Group PATCH has no replace and no remove-all"},
    {"group-patch-no-content", OPT_FLAG, CFG(group_patch_no_content), 0, 0, NULL,
     "emulate a provider that answers a Group PATCH 204 No Content, without the group"},
    {"etag-required", OPT_FLAG, CFG(etag_required), 0, 0, NULL,
     "emulate a provider that requires If-Match on PUT, PATCH and DELETE (428)"},
    {"no-password", OPT_FLAG, CFG(no_password), 0, 0, NULL,
     "emulate a provider without a writable User password attribute"},
    {"profile", OPT_PROFILE, CFG(profile), 0, 0, "NAME",
     "emulate a provider's published limits: aws-iam-identity-center (alias aws)"},
    {"fault-latency", OPT_DURATION_MS, CFG(fault.latency_ms), 0, 600000, "DURATION",
     "add latency to each request"},
    {"fault-jitter", OPT_DURATION_MS, CFG(fault.jitter_ms), 0, 600000, "DURATION",
     "plus uniform random 0..DURATION"},
    {"fault-stall", OPT_DURATION_MS, CFG(fault.stall_ms), 0, 600000, "DURATION",
     "hold the SCIM processing of each faulted SCIM request this long (blocking)"},
    {"fault-500", OPT_RATE, CFG(fault.p500), 0, 0, "RATE", "fraction answered 500 before applying"},
    {"fault-503", OPT_RATE, CFG(fault.p503), 0, 0, "RATE",
     "fraction answered 503 + Retry-After before applying"},
    {"fault-500-after", OPT_RATE, CFG(fault.p500_after), 0, 0, "RATE",
     "fraction applied, then answered 500"},
    {"fault-drop", OPT_RATE, CFG(fault.pdrop), 0, 0, "RATE",
     "fraction applied, then dropped mid-response"},
    {"fault-429-rps", OPT_LONG, CFG(fault.throttle_rps), 0, 1000000, "N",
     "429 + Retry-After above N requests/s"},
    {"fault-retry-after", OPT_LONG, CFG(fault.retry_after_s), 1, 3600, "SECONDS",
     "Retry-After of 429/503 (1)"},
    {"fault-seed", OPT_U64, CFG(fault.seed), 0, 0, "N", "seed of the fault generator (0)"},
    {"fault-oauth", OPT_FLAG, CFG(fault.oauth), 0, 0, NULL, "also inject faults on /oauth/token"},
    {"fault-writes-only", OPT_FLAG, CFG(fault.writes_only), 0, 0, NULL,
     "inject faults on POST/PUT/PATCH/DELETE only"},
    {"fault-scim-only", OPT_FLAG, CFG(fault.scim_only), 0, 0, NULL,
     "inject faults on /scim/... only (never on the control API)"},
};

/* --- provider profiles: a real provider's published limits as a set of the options above ---- */

struct profile {
    const char *name, *alias;
    const char *const *flags; /* OPT_FLAG options it sets */
    const char *const *omit;  /* attributes it does not serve (cloud_schema_omit) */
};

/*
 * AWS IAM Identity Center's SCIM implementation (its developer guide, "Limitations from SCIM
 * specification", and the user guide's supported attributes): filters only eq with and; no
 * /Me (501 here, as always), /Bulk or .search; one value per multi-valued User attribute;
 * PatchGroup without replace or remove-all; no password, ims, photos, entitlements,
 * x509Certificates, no 'display' sub-attribute of a multi-valued attribute, no
 * manager.displayName, no meta.version; only the User and Group resource types.
 */
static const char *const aws_flags[] = {"filter-eq-only",
                                        "no-search",
                                        "no-bulk",
                                        "single-value",
                                        "group-patch-limited",
                                        "no-etag",
                                        "no-contacts",
                                        "group-patch-no-content",
                                        NULL};
static const char *const aws_omit[] = {CLOUD_SCHEMA_USER ":password",
                                       CLOUD_SCHEMA_USER ":ims",
                                       CLOUD_SCHEMA_USER ":photos",
                                       CLOUD_SCHEMA_USER ":entitlements",
                                       CLOUD_SCHEMA_USER ":x509Certificates",
                                       CLOUD_SCHEMA_USER ":emails.display",
                                       CLOUD_SCHEMA_USER ":phoneNumbers.display",
                                       CLOUD_SCHEMA_USER ":roles.display",
                                       CLOUD_SCHEMA_USER ":groups.display",
                                       CLOUD_SCHEMA_ENTERPRISE ":manager.displayName",
                                       CLOUD_SCHEMA_GROUP ":members.display",
                                       NULL};

static const struct profile profiles[] = {
    {"aws-iam-identity-center", "aws", aws_flags, aws_omit},
};

static const struct opt *find_option(const char *name, size_t nlen)
{
    for (size_t k = 0; k < sizeof(options) / sizeof(options[0]); k++) {
        if (strlen(options[k].name) == nlen && strncmp(options[k].name, name, nlen) == 0)
            return &options[k];
    }
    return NULL;
}

static enum dirconn_err set_profile(struct cloud_config *cfg, const char *val,
                                    struct dirconn_error *err)
{
    if (cfg->profile != NULL)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "--profile given twice");
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        const struct profile *p = &profiles[i];
        if (strcmp(val, p->name) != 0 && strcmp(val, p->alias) != 0)
            continue;
        cfg->profile = p->name;
        cfg->omit_attrs = p->omit;
        for (const char *const *f = p->flags; *f != NULL; f++) {
            const struct opt *o = find_option(*f, strlen(*f));
            if (o == NULL || o->type != OPT_FLAG)
                return dirconn_error_set(err, DIRCONN_EUSAGE, "profile %s: bad option %s", p->name,
                                         *f);
            *(bool *)((char *)cfg + o->offset) = true;
        }
        return DIRCONN_OK;
    }
    char names[256] = "";
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof(names) - n, "%s%s (alias %s)", i > 0 ? ", " : "",
                 profiles[i].name, profiles[i].alias);
    }
    return dirconn_error_set(err, DIRCONN_EUSAGE, "--profile %s: unknown profile; known: %s", val,
                             names);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dirconn-cloud --listen HOST:PORT --db FILE --admin-token-file FILE\n"
               "         [--org NAME]... (--tls-cert FILE --tls-key FILE | --insecure-http)\n"
               "         [options]\n\noptions:\n");
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(f, "  %-34s %s\n", left, options[i].help);
    }
    fprintf(f, "  %-34s %s\n  %-34s %s\n", "--help", "this text", "--version", "print the version");
}

/* "30s" "10m" "1h" "250ms" "2d"; bare numbers are in unit_ms. Returns -1 if malformed. */
static int parse_duration(const char *s, long unit_ms, long long *out_ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno != 0 || v < 0)
        return -1;
    long long mult;
    if (*end == '\0')
        mult = unit_ms;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    if (v > LLONG_MAX / mult)
        return -1;
    *out_ms = v * mult;
    return 0;
}

static enum dirconn_err set_option(struct cloud_config *cfg, const struct opt *o, const char *val,
                                   struct dirconn_error *err)
{
    char *base = (char *)cfg;
    void *t = base + o->offset;
    char *end;
    long long ms;
    switch (o->type) {
    case OPT_STR:
        *(const char **)t = val;
        return DIRCONN_OK;
    case OPT_FLAG:
        *(bool *)t = true;
        return DIRCONN_OK;
    case OPT_ORG: {
        size_t n = strlen(val);
        bool ok = n > 0 && n <= 64;
        for (const char *p = val; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '_' || *p == '.';
        if (!ok || strcmp(val, ".") == 0 || strcmp(val, "..") == 0)
            return dirconn_error_set(err, DIRCONN_EUSAGE,
                                     "--org %s: 1-64 characters from A-Z a-z 0-9 . _ -", val);
        if (cfg->norgs == CLOUD_MAX_ORGS)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "at most %d --org", CLOUD_MAX_ORGS);
        cfg->orgs[cfg->norgs++] = val;
        return DIRCONN_OK;
    }
    case OPT_DURATION_S:
    case OPT_DURATION_MS: {
        long unit = o->type == OPT_DURATION_S ? 1000 : 1;
        if (parse_duration(val, unit, &ms) != 0)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: expected a duration (30s, 10m)",
                                     o->name, val);
        long long v = o->type == OPT_DURATION_S ? ms / 1000 : ms;
        if (v < o->min || v > o->max || (o->type == OPT_DURATION_S && ms % 1000 != 0))
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: out of range", o->name, val);
        *(long *)t = (long)v;
        return DIRCONN_OK;
    }
    case OPT_SIZE:
    case OPT_LONG: {
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (end == val || errno != 0)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: expected a number", o->name,
                                     val);
        if (o->type == OPT_SIZE && (*end == 'k' || *end == 'K'))
            v *= 1024, end++;
        else if (o->type == OPT_SIZE && (*end == 'm' || *end == 'M'))
            v *= 1024 * 1024, end++;
        if (*end != '\0' || v < o->min || v > o->max)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: expected %ld..%ld", o->name,
                                     val, o->min, o->max);
        *(long *)t = (long)v;
        return DIRCONN_OK;
    }
    case OPT_RATE: {
        errno = 0;
        double d = strtod(val, &end);
        if (end == val || *end != '\0' || errno != 0 || !(d >= 0.0 && d <= 1.0))
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: expected a fraction 0..1",
                                     o->name, val);
        *(double *)t = d;
        return DIRCONN_OK;
    }
    case OPT_U64: {
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (end == val || *end != '\0' || errno != 0 || val[0] == '-')
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s %s: expected an unsigned integer",
                                     o->name, val);
        *(uint64_t *)t = (uint64_t)v;
        return DIRCONN_OK;
    }
    case OPT_SYNC:
        if (strcmp(val, "normal") != 0 && strcmp(val, "full") != 0)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--db-sync: normal or full");
        *(bool *)t = strcmp(val, "full") == 0;
        return DIRCONN_OK;
    case OPT_LOGLEVEL: {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(val, names[i]) == 0) {
                *(enum log_level *)t = (enum log_level)i;
                return DIRCONN_OK;
            }
        }
        return dirconn_error_set(err, DIRCONN_EUSAGE, "--log-level: error, warn, info or debug");
    }
    case OPT_PROFILE:
        return set_profile(cfg, val, err);
    }
    return DIRCONN_EUSAGE;
}

static enum dirconn_err parse_args(int argc, char **argv, struct cloud_config *cfg,
                                   struct dirconn_error *err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->token_ttl_s = 3600;
    cfg->max_body = 1024 * 1024;
    cfg->bulk_max_ops = 1000;
    cfg->bulk_max_payload = 4 * 1024 * 1024;
    cfg->filter_max_results = 1000;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->fault.retry_after_s = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("dirconn-cloud %s\n", CLOUD_VERSION);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "unexpected argument '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_option(name, nlen);
        if (o == NULL)
            return dirconn_error_set(err, DIRCONN_EUSAGE, "unknown option '%s' (see --help)", a);
        const char *val = NULL;
        if (o->type == OPT_FLAG) {
            if (eq != NULL)
                return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s takes no value", o->name);
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return dirconn_error_set(err, DIRCONN_EUSAGE, "--%s needs a value", o->name);
        }
        enum dirconn_err rc = set_option(cfg, o, val, err);
        if (rc != DIRCONN_OK)
            return rc;
    }
    if (cfg->listen == NULL || cfg->db_path == NULL || cfg->admin_token_file == NULL)
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "--listen, --db and --admin-token-file are required");
    bool tls = cfg->tls_cert != NULL || cfg->tls_key != NULL;
    if (tls && cfg->insecure_http)
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "--insecure-http excludes --tls-cert/--tls-key");
    if (!cfg->insecure_http && (cfg->tls_cert == NULL || cfg->tls_key == NULL))
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "give --tls-cert and --tls-key, or --insecure-http");
    if (cfg->etag_required && cfg->no_etag)
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "--etag-required needs ETags: it excludes --no-etag%s%s",
                                 cfg->profile != NULL ? " and --profile " : "",
                                 cfg->profile != NULL ? cfg->profile : "");
    if (cfg->fault.p500 + cfg->fault.p503 > 1.0)
        return dirconn_error_set(err, DIRCONN_EUSAGE, "--fault-500 + --fault-503 exceed 1");
    if (cfg->norgs == 0)
        cfg->orgs[cfg->norgs++] = "default";
    return DIRCONN_OK;
}

/* Read the admin token file, keep only its SHA-256. */
static enum dirconn_err load_admin_token(struct cloud_ctx *ctx, struct dirconn_error *err)
{
    FILE *f = fopen(ctx->cfg.admin_token_file, "r");
    if (f == NULL)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s: %s (errno %d)",
                                 ctx->cfg.admin_token_file, strerror(errno), errno);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n < 8 || strlen(buf) != n) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: the admin token must be one line "
                                 "of at least 8 characters",
                                 ctx->cfg.admin_token_file);
    }
    cloud_sha256(buf, n, ctx->admin_hash);
    OPENSSL_cleanse(buf, sizeof(buf));
    return DIRCONN_OK;
}

static enum dirconn_err write_ready_file(struct cloud_ctx *ctx, struct dirconn_error *err)
{
    if (ctx->cfg.ready_file == NULL)
        return DIRCONN_OK;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", ctx->cfg.ready_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", ctx->port);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return dirconn_error_set(err, DIRCONN_EIO, "%s: %s", tmp, strerror(errno));
    }
    fclose(f);
    if (rename(tmp, ctx->cfg.ready_file) != 0)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: %s", ctx->cfg.ready_file, strerror(errno));
    return DIRCONN_OK;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct cloud_ctx *ctx = arg;
    log_msg(&ctx->log, LOG_LEVEL_INFO, "signal %d: shutting down", (int)sig);
    event_base_loopexit(ctx->base, NULL);
}

static int run(struct cloud_ctx *ctx, int argc, char **argv)
{
    struct dirconn_error err = {0};
    if (parse_args(argc, argv, &ctx->cfg, &err) != DIRCONN_OK) {
        fprintf(stderr, "dirconn-cloud: %s\n", err.msg);
        usage(stderr);
        return dirconn_exit_code(err.code);
    }
    log_sink_init(&ctx->log, "dirconn-cloud", ctx->cfg.log_level, LOG_TARGET_STDERR);
    cloud_fault_init(&ctx->fault, &ctx->cfg.fault);
    cloud_schema_configure(!ctx->cfg.no_enterprise_ext, !ctx->cfg.no_contacts);
    char omsg[256];
    /* --no-password adds the User's password to the profile's omitted attributes */
    const char *omit[CLOUD_SCHEMA_MAX_OMIT + 1];
    size_t nomit = 0;
    for (const char *const *o = ctx->cfg.omit_attrs; o != NULL && *o != NULL; o++)
        if (nomit < CLOUD_SCHEMA_MAX_OMIT - 1)
            omit[nomit++] = *o;
    if (ctx->cfg.no_password)
        omit[nomit++] = CLOUD_SCHEMA_USER ":password";
    omit[nomit] = NULL;
    if (cloud_schema_omit(omit, omsg, sizeof(omsg)) != 0) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "%s", omsg);
        return dirconn_exit_code(DIRCONN_ECONFIG);
    }
    if (ctx->cfg.profile != NULL)
        log_msg(&ctx->log, LOG_LEVEL_INFO, "provider profile %s", ctx->cfg.profile);
    if (load_admin_token(ctx, &err) != DIRCONN_OK ||
        cloud_store_open(&ctx->store, ctx->cfg.db_path, ctx->cfg.db_sync_full, &err) !=
            DIRCONN_OK) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "%s", err.msg);
        return dirconn_exit_code(err.code);
    }
    for (size_t i = 0; i < ctx->cfg.norgs; i++) {
        sqlite3_stmt *s = cloud_store_stmt(&ctx->store, CLOUD_STMT_ORG_INSERT);
        sqlite3_bind_text(s, 1, ctx->cfg.orgs[i], -1, SQLITE_STATIC);
        if (cloud_store_exec(&ctx->store, s) != SQLITE_DONE) {
            log_msg(&ctx->log, LOG_LEVEL_ERROR, "%s: %s", ctx->cfg.db_path,
                    cloud_store_errmsg(&ctx->store));
            return dirconn_exit_code(DIRCONN_ESTATE);
        }
    }
    /* the SCIM thread hands its answers back with event_active (cloud_http.c) */
    if (evthread_use_pthreads() == 0)
        ctx->base = event_base_new();
    if (ctx->base == NULL) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "event_base_new failed");
        return 1;
    }
    char msg[512];
    if (cloud_http_start(ctx, msg, sizeof(msg)) != 0) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "%s", msg);
        return dirconn_exit_code(DIRCONN_ECONFIG);
    }
    ctx->sig_term = evsignal_new(ctx->base, SIGTERM, on_signal, ctx);
    ctx->sig_int = evsignal_new(ctx->base, SIGINT, on_signal, ctx);
    if (ctx->sig_term == NULL || ctx->sig_int == NULL || evsignal_add(ctx->sig_term, NULL) != 0 ||
        evsignal_add(ctx->sig_int, NULL) != 0) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "cannot install signal handlers");
        return 1;
    }
    if (write_ready_file(ctx, &err) != DIRCONN_OK) {
        log_msg(&ctx->log, LOG_LEVEL_ERROR, "%s", err.msg);
        return dirconn_exit_code(err.code);
    }
    log_msg(&ctx->log, LOG_LEVEL_INFO, "listening on %s (port %d), %zu org(s), db %s",
            ctx->base_url, ctx->port, ctx->cfg.norgs, ctx->cfg.db_path);
    event_base_dispatch(ctx->base);
    log_msg(&ctx->log, LOG_LEVEL_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct cloud_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    int rc = run(&ctx, argc, argv);
    cloud_http_stop(&ctx);
    if (ctx.sig_term != NULL)
        event_free(ctx.sig_term);
    if (ctx.sig_int != NULL)
        event_free(ctx.sig_int);
    if (ctx.base != NULL)
        event_base_free(ctx.base);
    cloud_store_close(&ctx.store);
    log_sink_close(&ctx.log);
    OPENSSL_cleanse(ctx.admin_hash, sizeof(ctx.admin_hash));
    return rc;
}
