/*
 * platform.h - the few Linux-only calls of dirconnd, in one place.
 *
 * platform_notify tells the service manager about the daemon's state with
 * the sd_notify(3) datagram protocol (NOTIFY_SOCKET; no libsystemd needed):
 * "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...". Without
 * NOTIFY_SOCKET (not started by systemd, Type=simple) it does nothing.
 * platform_harden makes the process non-dumpable (prctl PR_SET_DUMPABLE 0):
 * no core file or ptrace by other users shows the secrets it holds.
 * On other systems both are no-ops.
 */
#ifndef DIRCONN_ADMIN_PLATFORM_H
#define DIRCONN_ADMIN_PLATFORM_H

/* platform_notify - send one sd_notify message; returns 0, or -1 with errno set. */
int platform_notify(const char *message);

/* platform_harden - process hardening that needs no privileges; returns 0 or -1. */
int platform_harden(void);

#endif
