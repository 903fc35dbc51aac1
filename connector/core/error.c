/* error.c - dirconn error codes, generated from DIRCONN_ERRNO_MAP. */
#include "connector/core/error.h"

#include <stdio.h>
#include <string.h>

static const char *const error_messages[] = {
#define DIRCONN_ERR_MSG(name, code, msg) msg,
    DIRCONN_ERRNO_MAP(DIRCONN_ERR_MSG)
#undef DIRCONN_ERR_MSG
};

static const char *const error_names[] = {
#define DIRCONN_ERR_NAME(name, code, msg) #name,
    DIRCONN_ERRNO_MAP(DIRCONN_ERR_NAME)
#undef DIRCONN_ERR_NAME
};

static const int error_exit_codes[] = {
#define DIRCONN_ERR_EXIT(name, code, msg) code,
    DIRCONN_ERRNO_MAP(DIRCONN_ERR_EXIT)
#undef DIRCONN_ERR_EXIT
};

const char *dirconn_strerror(enum dirconn_err code)
{
    if ((int)code < 0 || code >= DIRCONN_ERR_MAX)
        return "unknown error";
    return error_messages[code];
}

const char *dirconn_err_name(enum dirconn_err code)
{
    if ((int)code < 0 || code >= DIRCONN_ERR_MAX)
        return "EUNKNOWN";
    return error_names[code];
}

int dirconn_exit_code(enum dirconn_err code)
{
    if ((int)code < 0 || code >= DIRCONN_ERR_MAX)
        return 1;
    return error_exit_codes[code];
}

enum dirconn_err dirconn_error_vset(struct dirconn_error *err, enum dirconn_err code,
                                    const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->origin = DIRCONN_ORIGIN_NONE;
    err->cause = 0;
    /* a message may quote the previous one (err->msg as an argument): format a copy */
    char line[DIRCONN_ERROR_LEN];
    vsnprintf(line, sizeof(line), fmt, ap);
    memcpy(err->msg, line, sizeof(err->msg));
    for (char *p = err->msg; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    return code;
}

enum dirconn_err dirconn_error_set(struct dirconn_error *err, enum dirconn_err code,
                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dirconn_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void dirconn_error_clear(struct dirconn_error *err)
{
    if (err == NULL)
        return;
    err->code = DIRCONN_OK;
    err->origin = DIRCONN_ORIGIN_NONE;
    err->cause = 0;
    err->msg[0] = '\0';
}

enum dirconn_err dirconn_error_cause(struct dirconn_error *err, enum dirconn_origin origin,
                                     long cause)
{
    if (err == NULL)
        return DIRCONN_OK;
    err->origin = origin;
    err->cause = cause;
    return err->code;
}

const char *dirconn_origin_name(enum dirconn_origin origin)
{
    static const char *const names[DIRCONN_ORIGIN_MAX] = {
        [DIRCONN_ORIGIN_LDAP] = "ldap",   [DIRCONN_ORIGIN_CURL] = "curl",
        [DIRCONN_ORIGIN_HTTP] = "http",   [DIRCONN_ORIGIN_SQLITE] = "sqlite",
        [DIRCONN_ORIGIN_ERRNO] = "errno",
    };
    if ((int)origin <= 0 || origin >= DIRCONN_ORIGIN_MAX)
        return NULL;
    return names[origin];
}

enum dirconn_err dirconn_error_stopped(struct dirconn_error *err, enum dirconn_err code,
                                       const char *fmt, ...)
{
    if (err == NULL)
        return code;
    if (err->code != DIRCONN_OK)
        return err->code; /* the callback's own error */
    va_list ap;
    va_start(ap, fmt);
    dirconn_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}
