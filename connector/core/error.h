/*
 * error.h - the one list of dirconn error codes, their messages and exit codes.
 *
 * Every module returns an `enum dirconn_err` and, where the caller needs the
 * cause, fills a `struct dirconn_error` with one human-readable line that names
 * the file:line, server or object and keeps the original library code (LDAP
 * result code, CURLcode, errno) in the text. Library codes are translated at
 * module borders; callers never see raw LDAP or curl codes.
 *
 * The list is an X-macro (libuv's UV_ERRNO_MAP style): the enum, the message
 * table and the exit code table are generated from DIRCONN_ERRNO_MAP.
 * Exit codes are documented in docs/cli.md; keep them stable.
 */
#ifndef DIRCONN_ERROR_H
#define DIRCONN_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* XX(name, exit code, message) */
#define DIRCONN_ERRNO_MAP(XX)                                                                      \
    XX(OK, 0, "success")                                                                           \
    XX(EFAIL, 1, "operation failed")                                                               \
    XX(EUSAGE, 2, "invalid command line")                                                          \
    XX(ECONFIG, 3, "invalid configuration")                                                        \
    XX(ENOMEM, 4, "out of memory")                                                                 \
    XX(EIO, 5, "I/O error")                                                                        \
    XX(ECANCELED, 6, "cancelled (not confirmed, or stopped on request)")                           \
    XX(ELDAP_CONNECT, 10, "directory server unreachable")                                          \
    XX(ELDAP_TLS, 11, "TLS failure with directory server")                                         \
    XX(ELDAP_AUTH, 12, "directory bind failed")                                                    \
    XX(ELDAP_NOSUCHOBJECT, 13, "base DN does not exist")                                           \
    XX(ELDAP_UNSUPPORTED, 14, "directory server lacks a required feature")                         \
    XX(ELDAP_TIMEOUT, 15, "directory operation timed out")                                         \
    XX(ELDAP, 16, "directory operation failed")                                                    \
    XX(EWATERMARK, 17, "change tracking watermark no longer valid")                                \
    XX(ESTATE, 20, "state store error")                                                            \
    XX(ECLOUD_CONNECT, 30, "cloud unreachable")                                                    \
    XX(ECLOUD_AUTH, 31, "cloud authentication failed")                                             \
    XX(ECLOUD, 32, "cloud request failed")                                                         \
    XX(ETHRESHOLD, 40, "delete threshold exceeded")                                                \
    XX(ELEASE, 50, "lease not held")                                                               \
    XX(EHAMODE, 51, "HA mode differs from the organisation's")                                     \
    XX(ELEASE_CONNECT, 52, "lease server unreachable")                                             \
    XX(ELEASE_AUTH, 53, "lease server refused the credentials")                                    \
    XX(ELEASE_SERVER, 54, "lease server request failed")                                           \
    XX(EPROXY, 60, "proxy failure")                                                                \
    XX(ESECRET, 70, "secret store error")                                                          \
    XX(ENOTREGISTERED, 71, "connector not registered")                                             \
    XX(EREGISTERED, 72, "connector already registered")

enum dirconn_err {
#define DIRCONN_ERR_ENUM(name, code, msg) DIRCONN_##name,
    DIRCONN_ERRNO_MAP(DIRCONN_ERR_ENUM)
#undef DIRCONN_ERR_ENUM
        DIRCONN_ERR_MAX
};

/* Longest error line kept, terminating NUL included. */
#define DIRCONN_ERROR_LEN 1024

/*
 * Where an error came from: the library or protocol at whose border it was
 * translated into a dirconn code. The library's own code is kept beside it
 * (struct dirconn_error.cause), so that an operator or a monitoring tool can
 * tell an LDAP "Invalid credentials (49)" from a "Server down (-1)" without
 * parsing the message.
 */
enum dirconn_origin {
    DIRCONN_ORIGIN_NONE = 0, /* dirconn itself (configuration, a rule, a limit) */
    DIRCONN_ORIGIN_LDAP,     /* an LDAP result code (RFC 4511 4.1.9) or a libldap API code (< 0) */
    DIRCONN_ORIGIN_CURL,     /* a libcurl CURLcode (transport: DNS, connect, TLS, proxy) */
    DIRCONN_ORIGIN_HTTP,   /* an HTTP status code (RFC 9110 15) from the cloud or a lease server */
    DIRCONN_ORIGIN_SQLITE, /* an SQLite extended result code (the state store) */
    DIRCONN_ORIGIN_ERRNO,  /* a POSIX errno value (files, sockets) */
    DIRCONN_ORIGIN_MAX
};

/*
 * One error: the code, one line of text, and the cause it was translated from.
 * Zero-initialise before use (origin DIRCONN_ORIGIN_NONE, cause 0).
 */
struct dirconn_error {
    enum dirconn_err code;
    enum dirconn_origin origin; /* where the cause comes from; NONE when dirconn decided */
    long cause;                 /* the library's own code (see enum dirconn_origin) */
    char msg[DIRCONN_ERROR_LEN];
};

/*
 * dirconn_strerror - the fixed message of an error code.
 * Returns a static string, never NULL ("unknown error" for codes out of range).
 */
const char *dirconn_strerror(enum dirconn_err code);

/*
 * dirconn_err_name - the symbolic name ("ECONFIG") of an error code.
 * Returns a static string, never NULL.
 */
const char *dirconn_err_name(enum dirconn_err code);

/*
 * dirconn_exit_code - the process exit status for an error (docs/cli.md).
 * Returns 0 for DIRCONN_OK, 1 for codes out of range.
 */
int dirconn_exit_code(enum dirconn_err code);

/*
 * dirconn_error_set - record an error with a printf-style one-line message.
 * err may be NULL (the message is dropped). The text is truncated to
 * DIRCONN_ERROR_LEN-1 bytes; newlines in it are replaced with spaces so the
 * result is always one line. The cause is reset to DIRCONN_ORIGIN_NONE, 0
 * (see dirconn_error_cause). Returns code, so callers can write
 * `return dirconn_error_set(err, DIRCONN_ECONFIG, "%s:%d: ...", ...);`.
 */
enum dirconn_err dirconn_error_set(struct dirconn_error *err, enum dirconn_err code,
                                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* dirconn_error_vset - va_list form of dirconn_error_set. */
enum dirconn_err dirconn_error_vset(struct dirconn_error *err, enum dirconn_err code,
                                    const char *fmt, va_list ap);

/*
 * dirconn_error_cause - attach the library code an error was translated from,
 * after dirconn_error_set (which resets it to DIRCONN_ORIGIN_NONE, 0). Each
 * library has one border where its codes become dirconn codes (ldap_source.c
 * and tracking.c for libldap, state.c and plan.c for SQLite, the HTTP client
 * for libcurl and HTTP statuses); that border calls this. err may be NULL.
 * Returns err->code (DIRCONN_OK when err is NULL), so a border can write
 * `return dirconn_error_cause(err, DIRCONN_ORIGIN_LDAP, rc);`.
 */
enum dirconn_err dirconn_error_cause(struct dirconn_error *err, enum dirconn_origin origin,
                                     long cause);

/*
 * dirconn_origin_name - the name of an origin, as status --json shows it:
 * "ldap", "curl", "http", "sqlite", "errno", or NULL for DIRCONN_ORIGIN_NONE
 * and values out of range. Returns a static string.
 */
const char *dirconn_origin_name(enum dirconn_origin origin);

/*
 * dirconn_error_clear - reset err to DIRCONN_OK with an empty message.
 * err may be NULL.
 */
void dirconn_error_clear(struct dirconn_error *err);

/*
 * dirconn_error_stopped - the error a walk returns when its callback stopped
 * it. A walk (a function that calls a callback for each item: plan_foreach,
 * scim_list_all, state_object_foreach, ...) clears err when it starts and
 * hands the same err to nobody but its callback's owner; so when err holds an
 * error at the stop, the callback recorded it and it is returned as it is,
 * code and message. Only a callback that stopped without a word gets code and
 * the printf-style message. err may be NULL (then code is returned).
 */
enum dirconn_err dirconn_error_stopped(struct dirconn_error *err, enum dirconn_err code,
                                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
