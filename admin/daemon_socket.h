/*
 * daemon_socket.h - where dirconnd's admin socket is, shared by dirconnd and
 * dirconnctl. The protocol is described in docs/architecture.md ("dirconnd").
 */
#ifndef DIRCONN_ADMIN_DAEMON_SOCKET_H
#define DIRCONN_ADMIN_DAEMON_SOCKET_H

#include "connector/core/config.h"

#include <stdio.h>

/* Longest request or response line (bytes). */
#define DAEMON_LINE_MAX 65536

/*
 * daemon_socket_path - [daemon] socket, or <state_dir>/dirconnd.sock, into
 * buf (len bytes; sockaddr_un allows 107). Returns buf, or NULL when it does
 * not fit.
 */
static inline const char *daemon_socket_path(const struct config *cfg, char *buf, size_t len)
{
    int n = cfg->daemon_socket != NULL
                ? snprintf(buf, len, "%s", cfg->daemon_socket)
                : snprintf(buf, len, "%s/dirconnd.sock", cfg->state_dir ? cfg->state_dir : ".");
    return n > 0 && (size_t)n < len && n <= 107 ? buf : NULL;
}

#endif
