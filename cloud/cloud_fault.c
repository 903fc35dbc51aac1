/* cloud_fault.c - seeded fault injection (latency, 5xx, 429 throttling, dropped responses). */
#include "cloud/cloud_fault.h"

#include <stdio.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(struct cloud_fault *f)
{
    return (double)(splitmix64(&f->rng) >> 11) / 9007199254740992.0;
}

void cloud_fault_init(struct cloud_fault *f, const struct cloud_fault_config *cfg)
{
    memset(f, 0, sizeof(*f));
    f->cfg = *cfg;
    f->rng = cfg->seed;
}

enum cloud_fault_action cloud_fault_before(struct cloud_fault *f, int64_t now_ms, long *delay_ms)
{
    *delay_ms = 0;
    if (f->cfg.throttle_rps > 0) {
        int64_t sec = now_ms / 1000;
        if (sec != f->window_s) {
            f->window_s = sec;
            f->window_count = 0;
        }
        if (++f->window_count > f->cfg.throttle_rps) {
            f->counts.throttled++;
            return CLOUD_FAULT_429;
        }
    }
    if (f->cfg.latency_ms > 0 || f->cfg.jitter_ms > 0) {
        *delay_ms = f->cfg.latency_ms;
        if (f->cfg.jitter_ms > 0)
            *delay_ms += (long)(uniform(f) * (double)(f->cfg.jitter_ms + 1));
        f->counts.delayed++;
    }
    if (f->cfg.p500 > 0 || f->cfg.p503 > 0) {
        double r = uniform(f);
        if (r < f->cfg.p500) {
            f->counts.e500++;
            return CLOUD_FAULT_500;
        }
        if (r < f->cfg.p500 + f->cfg.p503) {
            f->counts.e503++;
            return CLOUD_FAULT_503;
        }
    }
    return CLOUD_FAULT_NONE;
}

long cloud_fault_stall(struct cloud_fault *f)
{
    if (f->cfg.stall_ms <= 0)
        return 0;
    f->counts.stalled++;
    return f->cfg.stall_ms;
}

void cloud_fault_after(struct cloud_fault *f, bool *error_500, bool *drop)
{
    *error_500 = *drop = false;
    if (f->cfg.p500_after > 0 && uniform(f) < f->cfg.p500_after) {
        *error_500 = true;
        f->counts.e500_after++;
        return;
    }
    if (f->cfg.pdrop > 0 && uniform(f) < f->cfg.pdrop) {
        *drop = true;
        f->counts.dropped++;
    }
}

json_t *cloud_fault_json(const struct cloud_fault *f)
{
    const struct cloud_fault_config *c = &f->cfg;
    return json_pack(
        "{s:{s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:b, s:b, s:b}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "config", "latencyMs", (json_int_t)c->latency_ms, "jitterMs", (json_int_t)c->jitter_ms,
        "stallMs", (json_int_t)c->stall_ms, "error500", c->p500, "error503", c->p503,
        "error500After", c->p500_after, "drop", c->pdrop, "throttleRps",
        (json_int_t)c->throttle_rps, "retryAfter", (json_int_t)c->retry_after_s, "seed",
        (json_int_t)c->seed, "oauth", c->oauth, "writesOnly", c->writes_only, "scimOnly",
        c->scim_only, "counts", "throttled", (json_int_t)f->counts.throttled, "error500",
        (json_int_t)f->counts.e500, "error503", (json_int_t)f->counts.e503, "error500After",
        (json_int_t)f->counts.e500_after, "dropped", (json_int_t)f->counts.dropped, "delayed",
        (json_int_t)f->counts.delayed, "stalled", (json_int_t)f->counts.stalled);
}

static int get_rate(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= 0.0 && d <= 1.0))
        return -1;
    *out = d;
    return 0;
}

static int get_long(const json_t *v, long max, long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return -1;
    *out = (long)json_integer_value(v);
    return 0;
}

int cloud_fault_update(struct cloud_fault *f, const json_t *obj, char *msg, size_t msglen)
{
    if (!json_is_object(obj)) {
        snprintf(msg, msglen, "body must be a JSON object");
        return -1;
    }
    struct cloud_fault_config c = f->cfg;
    bool reseed = false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        int rc;
        if (strcmp(k, "latencyMs") == 0)
            rc = get_long(v, 600000, &c.latency_ms);
        else if (strcmp(k, "jitterMs") == 0)
            rc = get_long(v, 600000, &c.jitter_ms);
        else if (strcmp(k, "stallMs") == 0)
            rc = get_long(v, 600000, &c.stall_ms);
        else if (strcmp(k, "error500") == 0)
            rc = get_rate(v, &c.p500);
        else if (strcmp(k, "error503") == 0)
            rc = get_rate(v, &c.p503);
        else if (strcmp(k, "error500After") == 0)
            rc = get_rate(v, &c.p500_after);
        else if (strcmp(k, "drop") == 0)
            rc = get_rate(v, &c.pdrop);
        else if (strcmp(k, "throttleRps") == 0)
            rc = get_long(v, 1000000, &c.throttle_rps);
        else if (strcmp(k, "retryAfter") == 0)
            rc = get_long(v, 3600, &c.retry_after_s);
        else if (strcmp(k, "oauth") == 0) {
            rc = json_is_boolean(v) ? 0 : -1;
            c.oauth = json_is_true(v);
        } else if (strcmp(k, "writesOnly") == 0) {
            rc = json_is_boolean(v) ? 0 : -1;
            c.writes_only = json_is_true(v);
        } else if (strcmp(k, "scimOnly") == 0) {
            rc = json_is_boolean(v) ? 0 : -1;
            c.scim_only = json_is_true(v);
        } else if (strcmp(k, "seed") == 0) {
            rc = json_is_integer(v) && json_integer_value(v) >= 0 ? 0 : -1;
            c.seed = (uint64_t)json_integer_value(v);
            reseed = true;
        } else {
            snprintf(msg, msglen, "unknown fault setting '%s'", k);
            return -1;
        }
        if (rc != 0) {
            snprintf(msg, msglen, "bad value for '%s'", k);
            return -1;
        }
    }
    if (c.p500 + c.p503 > 1.0) {
        snprintf(msg, msglen, "error500 + error503 must not exceed 1");
        return -1;
    }
    f->cfg = c;
    if (reseed)
        f->rng = c.seed;
    return 0;
}
