/*
 * platform.h - the few operating-system calls that protect secrets in memory
 * and on the terminal, behind one small interface (Linux first, with POSIX
 * fallbacks elsewhere).
 *
 * - Core dumps: a process that holds secrets turns them off
 *   (prctl(PR_SET_DUMPABLE, 0) and setrlimit(RLIMIT_CORE, 0) on Linux).
 * - Key material lives in whole pages from platform_secure_alloc(), excluded
 *   from core dumps (madvise(MADV_DONTDUMP)) and locked in RAM where allowed
 *   (mlock), and wiped with OPENSSL_cleanse before they are unmapped.
 * - Secrets typed by an administrator are read from the terminal without
 *   echo (termios), never from the command line.
 * - The service manager is told the daemon's state with the sd_notify(3)
 *   datagram protocol (NOTIFY_SOCKET; no libsystemd needed).
 */
#ifndef DIRCONN_PLATFORM_H
#define DIRCONN_PLATFORM_H

#include "connector/core/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/*
 * platform_disable_core_dumps - make the calling process produce no core dump
 * and refuse ptrace attachment by other users' processes. Returns DIRCONN_OK,
 * or DIRCONN_EFAIL (err names the call and errno) when the limit cannot be
 * set. Safe to call more than once.
 */
enum dirconn_err platform_disable_core_dumps(struct dirconn_error *err);

/*
 * platform_secure_alloc - len bytes of zeroed memory in their own pages,
 * excluded from core dumps and locked in RAM when the system allows it
 * (failures of mlock are ignored: the pages are still excluded from dumps).
 * Returns NULL when out of memory. Free with platform_secure_free(p, len),
 * which wipes the bytes first.
 */
void *platform_secure_alloc(size_t len);

/* platform_secure_free - wipe (OPENSSL_cleanse) and release. p may be NULL. */
void platform_secure_free(void *p, size_t len);

/*
 * platform_monotonic_ms - CLOCK_MONOTONIC (POSIX clock_gettime) in milliseconds: the clock of
 * every timeout, deadline, TTL and duration in the project (never the wall clock, which an
 * administrator or NTP may step). Its origin is unspecified: only differences are meaningful.
 */
int64_t platform_monotonic_ms(void);

/*
 * platform_is_tty - true when fd is a terminal.
 */
bool platform_is_tty(int fd);

/*
 * platform_read_secret - read one secret line.
 *
 * When stdin is a terminal, prompt (on stderr) is printed and the line is read
 * with echo turned off (the terminal's settings are restored afterwards, also
 * on error); when confirm is not NULL the secret is asked a second time with
 * that prompt and both must match. Otherwise all of stdin is read and one
 * trailing newline (LF or CRLF) is removed. The value must be non-empty,
 * without NUL or newline, and at most max-1 bytes.
 *
 * On success *out holds a NUL-terminated buffer from platform_secure_alloc of
 * size max, which the caller frees with platform_secure_free(*out, max).
 * While the prompt waits, terminal signals are off: the interrupt character
 * (Ctrl-C), or end-of-file (Ctrl-D) on an empty line, cancels with
 * DIRCONN_ECANCELED and the terminal's settings are restored. Erase and kill
 * edit the line as usual.
 * Errors: DIRCONN_EUSAGE (empty value, line too long, NUL or newline inside,
 * the two entries differ), DIRCONN_ECANCELED, DIRCONN_EIO (read error),
 * DIRCONN_ENOMEM. The message never contains the value.
 */
enum dirconn_err platform_read_secret(const char *prompt, const char *confirm, size_t max,
                                      char **out, struct dirconn_error *err);

/*
 * platform_confirm - ask a yes/no question on the controlling terminal
 * (/dev/tty). Returns 1 for "y" or "yes" (any case), 0 for anything else,
 * and -1 when the process has no terminal to ask on.
 */
int platform_confirm(const char *question);

/*
 * platform_notify - send one sd_notify message ("READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=...") to the socket named by NOTIFY_SOCKET. Without
 * NOTIFY_SOCKET (not started by systemd, Type=simple), and on systems other
 * than Linux, it does nothing. Returns 0, or -1 with errno set.
 */
int platform_notify(const char *message);

#endif
