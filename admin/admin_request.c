/* admin_request.c - the requests of dirconnd's admin socket. */
#include "admin/admin_request.h"

#include <jansson.h>
#include <string.h>

bool admin_request_parse(const char *line, struct admin_request *req, const char **error)
{
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    const char *cmd = json_string_value(json_object_get(j, "cmd"));
    bool ok = true;
    req->cmd = ADMIN_CMD_STATUS;
    req->full = false;
    req->has_type = false;
    req->override_threshold = false;
    *error = NULL;
    if (cmd == NULL) {
        *error = "a request is a JSON object with \"cmd\"";
    } else if (strcmp(cmd, "status") == 0) {
        req->cmd = ADMIN_CMD_STATUS;
    } else if (strcmp(cmd, "sync") == 0) {
        const char *type = json_string_value(json_object_get(j, "type"));
        req->cmd = ADMIN_CMD_SYNC;
        req->full = type != NULL && strcmp(type, "full") == 0;
        req->has_type = type != NULL;
        req->override_threshold = json_is_true(json_object_get(j, "override_threshold"));
        if (type != NULL && !req->full && strcmp(type, "incremental") != 0)
            *error = "type is full or incremental";
    } else if (strcmp(cmd, "pause") == 0) {
        req->cmd = ADMIN_CMD_PAUSE;
    } else if (strcmp(cmd, "resume") == 0) {
        req->cmd = ADMIN_CMD_RESUME;
    } else {
        *error = "unknown command (status, sync, pause, resume)";
    }
    if (*error != NULL)
        ok = false;
    json_decref(j);
    return ok;
}
