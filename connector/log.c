/* log.c - leveled logging to stderr or syslog. */
#include "connector/log.h"

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
    sink->level = level;
    sink->target = target;
    if (target == LOG_TARGET_SYSLOG)
        openlog(sink->ident, LOG_PID, LOG_DAEMON);
}

void log_sink_close(struct log_sink *sink)
{
    if (sink != NULL && sink->target == LOG_TARGET_SYSLOG)
        closelog();
}

void log_vmsg(const struct log_sink *sink, enum log_level level, const char *fmt, va_list ap)
{
    enum log_level max = sink != NULL ? sink->level : LOG_LEVEL_INFO;
    if (level > max)
        return;
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, ap);
    if (sink != NULL && sink->target == LOG_TARGET_SYSLOG) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[level], "%s", line);
        return;
    }
    fprintf(stderr, "%s: %s: %s\n", sink != NULL ? sink->ident : "dirconn", log_level_name(level),
            line);
}

void log_msg(const struct log_sink *sink, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(sink, level, fmt, ap);
    va_end(ap);
}
