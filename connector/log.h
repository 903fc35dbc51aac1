/*
 * log.h - leveled logging to stderr or syslog.
 *
 * A `struct log_sink` is owned by the caller's context (no global logger);
 * every function accepts NULL for "stderr at level info". Messages are one
 * line each; secrets must never be passed in (see docs/operations.md).
 */
#ifndef DIRCONN_LOG_H
#define DIRCONN_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR = 0, LOG_TARGET_SYSLOG };

struct log_sink {
    enum log_level level;   /* messages above this level are dropped */
    enum log_target target; /* where lines go */
    const char *ident;      /* program name shown in each line; borrowed, not freed */
};

/*
 * log_sink_init - set up a sink; opens syslog (openlog(3), LOG_DAEMON) when
 * target is LOG_TARGET_SYSLOG. ident is borrowed and must outlive the sink.
 */
void log_sink_init(struct log_sink *sink, const char *ident, enum log_level level,
                   enum log_target target);

/* log_sink_close - closes syslog if the sink opened it. sink may be NULL. */
void log_sink_close(struct log_sink *sink);

/*
 * log_msg - write one line at the given level. On stderr the line reads
 * "<ident>: <level>: <text>"; on syslog the level maps to LOG_ERR,
 * LOG_WARNING, LOG_INFO, LOG_DEBUG.
 */
void log_msg(const struct log_sink *sink, enum log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* log_vmsg - va_list form of log_msg. */
void log_vmsg(const struct log_sink *sink, enum log_level level, const char *fmt, va_list ap);

/* log_level_name - "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

#endif
