/* error.c - dirconn error codes, generated from DIRCONN_ERRNO_MAP. */
#include "connector/error.h"

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
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
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
    err->msg[0] = '\0';
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
