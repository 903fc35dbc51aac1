/*
 * admin_request.h - the requests of dirconnd's admin socket.
 *
 * A client writes one JSON object on one line and reads one JSON line back
 * (docs/cli.md "dirconnd admin socket"): {"cmd":"status"},
 * {"cmd":"sync","type":"full"|"incremental","override_threshold":bool} (type may
 * be left out), {"cmd":"pause"},
 * {"cmd":"resume"}. This module only reads a request; what the daemon does
 * with it is dirconnd.c's business.
 */
#ifndef DIRCONN_ADMIN_REQUEST_H
#define DIRCONN_ADMIN_REQUEST_H

#include <stdbool.h>

enum admin_cmd { ADMIN_CMD_STATUS = 0, ADMIN_CMD_SYNC, ADMIN_CMD_PAUSE, ADMIN_CMD_RESUME };

struct admin_request {
    enum admin_cmd cmd;
    bool full;               /* sync: type "full" */
    bool has_type;           /* sync: the request named a type */
    bool override_threshold; /* sync: the next run may exceed the delete threshold, once */
};

/*
 * admin_request_parse - read one request line (NUL-terminated, without its
 * newline; any bytes). Returns true with *req filled, or false with *error
 * pointing to a static message for the answer's "error" member (not JSON,
 * no "cmd", an unknown command, a bad sync type).
 */
bool admin_request_parse(const char *line, struct admin_request *req, const char **error);

#endif
