/* log.c - leveled logging to stderr or syslog. */
#include "connector/core/log.h"
#include "connector/core/platform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define REPEAT_SLOTS 32
#define REPEAT_TEXT  1024

struct repeat_slot {
    bool used;
    int level;
    int64_t since; /* the window's start */
    int64_t last;  /* when the text was last seen */
    long count;    /* identical lines dropped in this window */
    char text[REPEAT_TEXT];
};

struct log_repeats {
    pthread_mutex_t lock;
    int64_t interval;
    int64_t (*clock)(void *arg);
    void *clock_arg;
    struct repeat_slot slot[REPEAT_SLOTS];
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(enum log_level level)
{
    if ((int)level < 0 || level > LOG_LEVEL_DEBUG)
        return "?";
    return level_names[level];
}

void log_sink_init(struct log_sink *sink, const char *ident, enum log_level level,
                   enum log_target target)
{
    sink->ident = ident != NULL ? ident : "dirconn";
    sink->repeats = NULL;
    atomic_init(&sink->level, (int)level);
    atomic_init(&sink->target, (int)target);
    if (target == LOG_TARGET_SYSLOG)
        openlog(sink->ident, LOG_PID, LOG_DAEMON);
}

static void flush_repeats(const struct log_sink *sink, bool all);

void log_sink_close(struct log_sink *sink)
{
    if (sink != NULL && sink->repeats != NULL) {
        flush_repeats(sink, true);
        pthread_mutex_destroy(&sink->repeats->lock);
        free(sink->repeats);
        sink->repeats = NULL;
    }
    if (sink != NULL && atomic_load(&sink->target) == LOG_TARGET_SYSLOG)
        closelog();
}

void log_sink_reconfigure(struct log_sink *sink, enum log_level level, enum log_target target)
{
    int old = atomic_load(&sink->target);
    if (target == LOG_TARGET_SYSLOG && old != LOG_TARGET_SYSLOG)
        openlog(sink->ident, LOG_PID, LOG_DAEMON);
    atomic_store(&sink->level, (int)level);
    atomic_store(&sink->target, (int)target);
    /* A thread that read the old target just before may still call syslog(3) once:
     * it then reopens the connection itself (POSIX), and the next line goes to stderr. */
    if (old == LOG_TARGET_SYSLOG && target != LOG_TARGET_SYSLOG)
        closelog();
}

bool log_enabled(const struct log_sink *sink, enum log_level level)
{
    int max = sink != NULL ? atomic_load(&sink->level) : LOG_LEVEL_INFO;
    return (int)level <= max;
}

void log_vmsg(const struct log_sink *sink, enum log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(sink, level))
        return;
    /* "<ident>: <level>: " + text + "\n", formatted first and written with one call. */
    char line[2300];
    int head = snprintf(line, sizeof(line), "%s: %s: ", sink != NULL ? sink->ident : "dirconn",
                        log_level_name(level));
    if (head < 0 || (size_t)head >= sizeof(line) - 2)
        head = 0;
    int body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
    if (body < 0)
        body = 0;
    size_t len = (size_t)head + (size_t)body;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: still one whole line */
    if (sink != NULL && atomic_load(&sink->target) == LOG_TARGET_SYSLOG) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        line[len] = '\0';
        syslog(prio[level], "%s", line + head);
        return;
    }
    line[len++] = '\n';
    line[len] = '\0';
    /* stderr is unbuffered: one fwrite is one write(2) under the stream's lock. */
    fwrite(line, 1, len, stderr);
}

void log_msg(const struct log_sink *sink, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(sink, level, fmt, ap);
    va_end(ap);
}

/* ---- the repeat limiter ---------------------------------------------------------------- */

static int64_t mono_ms(void *arg)
{
    (void)arg;
    return platform_monotonic_ms();
}

bool log_sink_limit_repeats(struct log_sink *sink, int64_t interval_ms, int64_t (*clock)(void *arg),
                            void *clock_arg)
{
    struct log_repeats *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return false;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return false;
    }
    r->interval = interval_ms > 0 ? interval_ms : 60000;
    r->clock = clock != NULL ? clock : mono_ms;
    r->clock_arg = clock_arg;
    sink->repeats = r;
    return true;
}

/* The summary of a window with dropped lines (under the limiter's lock). */
static void write_count(const struct log_sink *sink, const struct repeat_slot *s, int64_t now)
{
    long long secs = (long long)((now - s->since + 500) / 1000);
    log_msg(sink, (enum log_level)s->level, "%s (repeated %ld time%s in the last %lld s)", s->text,
            s->count, s->count == 1 ? "" : "s", secs < 1 ? 1 : secs);
}

/* Close the windows that ended (all: every window), writing their counts. */
static void flush_repeats_locked(const struct log_sink *sink, int64_t now, bool all)
{
    struct log_repeats *r = sink->repeats;
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *s = &r->slot[i];
        if (!s->used || (!all && now - s->since < r->interval))
            continue;
        if (s->count > 0)
            write_count(sink, s, now);
        s->used = false;
    }
}

static void flush_repeats(const struct log_sink *sink, bool all)
{
    struct log_repeats *r = sink->repeats;
    pthread_mutex_lock(&r->lock);
    flush_repeats_locked(sink, r->clock(r->clock_arg), all);
    pthread_mutex_unlock(&r->lock);
}

void log_msg_limited(const struct log_sink *sink, enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(sink, level))
        return;
    char text[REPEAT_TEXT];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    if (sink == NULL || sink->repeats == NULL) {
        log_msg(sink, level, "%s", text);
        return;
    }
    struct log_repeats *r = sink->repeats;
    pthread_mutex_lock(&r->lock);
    int64_t now = r->clock(r->clock_arg);
    struct repeat_slot *hit = NULL, *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *s = &r->slot[i];
        if (!s->used) {
            if (free_slot == NULL)
                free_slot = s;
            continue;
        }
        if (s->level == (int)level && strcmp(s->text, text) == 0)
            hit = s;
        else if (oldest == NULL || s->last < oldest->last)
            oldest = s;
    }
    if (hit != NULL && now - hit->since < r->interval) {
        hit->count++; /* within the window: counted, not written */
        hit->last = now;
    } else if (hit != NULL) {
        if (hit->count > 0)
            write_count(sink, hit, now); /* this line, with the window's count */
        else
            log_msg(sink, level, "%s", text);
        hit->since = hit->last = now;
        hit->count = 0;
    } else {
        struct repeat_slot *s = free_slot;
        if (s == NULL) { /* every slot busy: the least recently seen text gives way */
            s = oldest;
            if (s->count > 0)
                write_count(sink, s, now);
        }
        log_msg(sink, level, "%s", text);
        s->used = true;
        s->level = (int)level;
        s->since = s->last = now;
        s->count = 0;
        snprintf(s->text, sizeof(s->text), "%s", text);
        hit = s;
    }
    /* The windows of other texts that ended: their counts now. */
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat_slot *s = &r->slot[i];
        if (s == hit || !s->used || now - s->since < r->interval)
            continue;
        if (s->count > 0)
            write_count(sink, s, now);
        s->used = false;
    }
    pthread_mutex_unlock(&r->lock);
}
