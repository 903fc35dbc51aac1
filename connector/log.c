/* log.c - leveled logging to stderr or syslog. */
#include "connector/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>

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
    atomic_init(&sink->level, (int)level);
    atomic_init(&sink->target, (int)target);
    if (target == LOG_TARGET_SYSLOG)
        openlog(sink->ident, LOG_PID, LOG_DAEMON);
}

void log_sink_close(struct log_sink *sink)
{
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
