/*
 * fuzz_admin.c - the requests of dirconnd's admin socket
 * (admin/admin_request.c): one JSON line as a client writes it.
 *
 * Input: the bytes a client sends; as on the socket, only the first line
 * (up to the first newline, at most DAEMON_LINE_MAX bytes is the daemon's
 * limit) is a request; it is read as a C string.
 */
#include "admin/admin_request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t len = nl != NULL ? (size_t)(nl - data) : size;
    if (len > 65536)
        return 0;
    char *line = malloc(len + 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, len);
    line[len] = '\0';
    struct admin_request req;
    const char *error = NULL;
    if (!admin_request_parse(line, &req, &error) && error == NULL)
        abort(); /* a refusal always says why */
    free(line);
    return 0;
}
