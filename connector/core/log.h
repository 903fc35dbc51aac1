/*
 * log.h - leveled logging to stderr or syslog.
 *
 * A `struct log_sink` is owned by the caller's context (no global logger);
 * every function accepts NULL for "stderr at level info". Messages are one
 * line each; secrets must never be passed in (see docs/operations.md).
 *
 * Threads: log_msg may be called from any thread, also while another thread
 * calls log_sink_reconfigure (dirconnd's SIGHUP while its sync thread logs).
 * The level and target are atomics; a line is formatted in full first and
 * written with one call (one write(2) on unbuffered stderr, one syslog(3)),
 * so lines of different threads never interleave and none is lost. The sink
 * owns no object that a reload would free: syslog's connection belongs to
 * the C library, and syslog(3) reopens it itself if it is closed meanwhile.
 */
#ifndef DIRCONN_LOG_H
#define DIRCONN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR = 0, LOG_TARGET_SYSLOG };

struct log_repeats; /* the repeat limiter of a sink (log_sink_limit_repeats) */

struct log_sink {
    _Atomic int level;  /* an enum log_level: messages above it are dropped */
    _Atomic int target; /* an enum log_target: where lines go */
    const char *ident;  /* program name shown in each line; borrowed, not freed; never changes */
    struct log_repeats *repeats; /* NULL: log_msg_limited writes every line; owned */
};

/*
 * log_sink_init - set up a sink; opens syslog (openlog(3), LOG_DAEMON) when
 * target is LOG_TARGET_SYSLOG. ident is borrowed and must outlive the sink.
 */
void log_sink_init(struct log_sink *sink, const char *ident, enum log_level level,
                   enum log_target target);

/*
 * log_sink_close - writes the counts of repeats still pending and frees the
 * limiter (log_sink_limit_repeats), closes syslog if the sink opened it. No
 * other thread may log through the sink then. sink may be NULL.
 */
void log_sink_close(struct log_sink *sink);

/*
 * log_sink_reconfigure - change the level and target of a sink that other
 * threads may be logging through (a configuration reload), in place: the
 * ident stays. Opens syslog before lines go there, closes it after they stop
 * going there. Call it from one thread at a time.
 */
void log_sink_reconfigure(struct log_sink *sink, enum log_level level, enum log_target target);

/* log_enabled - whether a message at level would be written (sink may be NULL). */
bool log_enabled(const struct log_sink *sink, enum log_level level);

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

/*
 * Quiet in an outage: a keyed repeat limiter. log_msg_limited formats its
 * line first; the line's text (level and message) is the key. The first
 * time a text is seen it is written at once and a window of interval_ms
 * starts; identical lines within the window are only counted. The first
 * identical line after the window is written with the count of those
 * dropped, "<text> (repeated 57 times in the last 60 s)", and starts the
 * next window; a window that ends without a further line has its count
 * written as that line by the next call that finds it ended (or by
 * log_sink_close). So a message repeated for N seconds costs at most
 * N / interval + 2 lines. Up to 32 texts are tracked (the least recently
 * seen one is dropped, after its count is written). Thread-safe (one mutex
 * per limiter); log_sink_reconfigure leaves it alone.
 *
 * log_sink_limit_repeats - give the sink a limiter with windows of
 * interval_ms (> 0). clock: the window's clock in ms (NULL: CLOCK_MONOTONIC;
 * tests inject one), with clock_arg. Call before other threads log through
 * the sink. Returns false when out of memory (lines are then not limited).
 */
bool log_sink_limit_repeats(struct log_sink *sink, int64_t interval_ms, int64_t (*clock)(void *arg),
                            void *clock_arg);

/* log_msg_limited - log_msg through the sink's repeat limiter (see above); without one, log_msg. */
void log_msg_limited(const struct log_sink *sink, enum log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* log_level_name - "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

#endif
