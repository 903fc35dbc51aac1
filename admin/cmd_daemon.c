/*
 * cmd_daemon.c - dirconnctl status, sync-now, pause and resume: one request
 * to dirconnd's admin socket (JSON lines, docs/architecture.md "dirconnd").
 */
#include "admin/ctl.h"
#include "admin/daemon_socket.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { OPT_FULL = 0x400, OPT_INCREMENTAL, OPT_SOCKET, OPT_OVERRIDE };

struct daemon_args {
    const char *socket;
    bool full, incremental;
    bool override_threshold;
    int fail_rc; /* set by ask: the exit code of a failure before the request (0 = 1) */
};

static int daemon_opt(struct ctl *ctl, int opt, const char *arg, void *user)
{
    (void)ctl;
    struct daemon_args *a = user;
    if (opt == OPT_FULL)
        a->full = true;
    else if (opt == OPT_INCREMENTAL)
        a->incremental = true;
    else if (opt == OPT_SOCKET)
        a->socket = arg;
    else if (opt == OPT_OVERRIDE)
        a->override_threshold = true;
    return -1;
}

/* Send one request line and read one response line; NULL with a message printed on failure. */
static json_t *ask(struct ctl *ctl, struct daemon_args *a, json_t *req)
{
    char path[128];
    if (a->socket != NULL) {
        snprintf(path, sizeof(path), "%s", a->socket);
    } else {
        enum dirconn_err loaded = ctl_load_config(ctl);
        if (loaded != DIRCONN_OK) {
            a->fail_rc = dirconn_exit_code(loaded); /* 3: docs/cli.md */
            return NULL;
        }
        if (daemon_socket_path(ctl->cfg, path, sizeof(path)) == NULL) {
            fprintf(stderr, "%s %s: the admin socket path is too long\n", ctl->prog, ctl->command);
            return NULL;
        }
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "%s %s: the admin socket path is too long\n", ctl->prog, ctl->command);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "%s %s: dirconnd is not running (cannot connect to %s: %s)\n", ctl->prog,
                ctl->command, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char *text = json_dumps(req, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    bool sent = text != NULL && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    free(text);
    char *buf = malloc(DAEMON_LINE_MAX);
    size_t got = 0;
    while (sent && buf != NULL && got < DAEMON_LINE_MAX - 1) {
        ssize_t n = read(fd, buf + got, DAEMON_LINE_MAX - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(buf, '\n', got) != NULL)
            break;
    }
    close(fd);
    json_t *resp = NULL;
    if (buf != NULL && got > 0) {
        buf[got] = '\0';
        json_error_t jerr;
        resp = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
    }
    free(buf);
    if (resp == NULL)
        fprintf(stderr, "%s %s: no answer from dirconnd on %s\n", ctl->prog, ctl->command, path);
    else if (!json_is_true(json_object_get(resp, "ok"))) {
        fprintf(stderr, "%s %s: %s\n", ctl->prog, ctl->command,
                json_string_value(json_object_get(resp, "error")));
        json_decref(resp);
        resp = NULL;
    }
    return resp;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "-";
}

static long num(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(o, k));
}

/* The dashboard of the seed, as text. */
static void print_status(json_t *s)
{
    const char *overall = str(s, "overall");
    printf("Status:                 %s (%s%s)\n", overall, str(s, "state"),
           json_is_true(json_object_get(s, "paused")) ? ", paused" : "");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(s, "reasons"), i, h)
    {
        printf("  %s\n", json_string_value(h));
    }
    if (json_is_string(json_object_get(s, "error")))
        printf("Last error:             %s\n", str(s, "error"));
    json_t *cur = json_object_get(s, "current");
    if (json_is_object(cur)) {
        printf("Current synchronization: %s, started %s (%s), phase %s", str(cur, "type"),
               str(cur, "started"), str(cur, "trigger"), str(cur, "phase"));
        if (num(cur, "total") > 0)
            printf(", %ld of %ld objects", num(cur, "done"), num(cur, "total"));
        printf("\n");
    } else {
        printf("Current synchronization: none\n");
    }
    json_t *next = json_object_get(s, "next");
    printf("Next full sync:         %s\n",
           json_is_string(json_object_get(next, "full")) ? str(next, "full") : "not scheduled");
    printf("Next incremental sync:  %s\n",
           json_is_string(json_object_get(next, "incremental")) ? str(next, "incremental")
           : json_is_true(json_object_get(s, "paused"))         ? "paused"
                                                                : "after the current one");
    printf("Last synchronizations:\n");
    json_array_foreach(json_object_get(s, "last"), i, h)
    {
        printf("  %-11s %s  %-9s %ld added, %ld updated, %ld deleted, %ld matched, %ld skipped, "
               "%ld failed\n",
               str(h, "type"), str(h, "started"), str(h, "status"), num(h, "added"),
               num(h, "updated"), num(h, "deleted"), num(h, "matched"), num(h, "skipped"),
               num(h, "failed"));
        if (json_is_string(json_object_get(h, "message")))
            printf("              %s\n", str(h, "message"));
    }
    if (json_array_size(json_object_get(s, "last")) == 0)
        printf("  none yet\n");
    printf("Connectors:\n");
    json_array_foreach(json_object_get(s, "connectors"), i, h)
        printf("  %s on %s%s\n", str(h, "name"), str(h, "host"),
               json_is_true(json_object_get(h, "active")) ? " (active)" : " (standby)");
    json_t *ha = json_object_get(s, "ha");
    if (json_is_object(ha) && strcmp(str(ha, "backend"), "none") != 0) {
        bool active = strcmp(str(ha, "role"), "active") == 0;
        printf("High availability:      %s on the %s lease (state %s), fencing token %ld\n",
               str(ha, "role"), str(ha, "backend"), str(ha, "state"), num(ha, "fencing_token"));
        printf("  holder %s%s, since %s, last renewal %s\n",
               json_is_string(json_object_get(ha, "holder")) ? str(ha, "holder") : "none",
               active ? " (this instance)" : "",
               json_is_string(json_object_get(ha, "holder_since")) ? str(ha, "holder_since") : "-",
               json_is_string(json_object_get(ha, "last_renew")) ? str(ha, "last_renew") : "-");
        if (json_is_string(json_object_get(ha, "error")))
            printf("  lease server: %s\n", str(ha, "error"));
    }
    json_t *dir = json_object_get(s, "directory");
    if (json_is_object(dir)) {
        printf("Directory:              %s (%s), DC %s", str(dir, "state"), str(dir, "condition"),
               str(dir, "server"));
        if (json_is_string(json_object_get(dir, "bound")))
            printf(", last bind %s", str(dir, "bound"));
        printf("\n");
        if (json_is_string(json_object_get(dir, "refused_since")))
            printf("  bind refused since %s: no bind until the configuration or the password "
                   "changes, SIGHUP, or sync-now\n",
                   str(dir, "refused_since"));
        if (json_is_string(json_object_get(dir, "error")))
            printf("  last error %s: %s\n", str(dir, "error_at"), str(dir, "error"));
    }
    json_t *cl = json_object_get(s, "cloud");
    if (json_is_object(cl)) {
        printf("Cloud:                  %s, %s\n", str(cl, "state"), str(cl, "url"));
        printf("  proxy mode %s, route %s\n", str(cl, "proxy_mode"),
               json_is_string(json_object_get(cl, "route")) ? str(cl, "route") : "not used yet");
        if (json_is_string(json_object_get(cl, "error")))
            printf("  last error: %s\n", str(cl, "error"));
        if (json_is_string(json_object_get(cl, "lease_error")))
            printf("  lease server: %s\n", str(cl, "lease_error"));
    }
    if (json_is_true(json_object_get(s, "threshold_override")))
        printf("Delete threshold:       the next synchronization may exceed it, once\n");
    json_t *n = json_object_get(s, "notifications");
    json_t *dn = json_object_get(dir, "notifications");
    const char *nstate =
        json_is_string(json_object_get(n, "state"))
            ? str(n, "state")
            : (json_is_true(json_object_get(n, "connected")) ? "connected" : "not connected");
    printf("Change notifications:   %s%s%s, %ld received\n", nstate,
           json_is_string(json_object_get(n, "method")) ? " via " : "",
           json_is_string(json_object_get(n, "method")) ? str(n, "method") : "",
           num(n, "received"));
    if (json_is_string(json_object_get(dn, "error")))
        printf("  %s\n", str(dn, "error"));
    if (json_is_string(json_object_get(dn, "next_retry")))
        printf("  next attempt %s\n", str(dn, "next_retry"));
    json_t *cloud = json_object_get(s, "cloud");
    if (json_is_object(cloud))
        printf("Cloud:                  %s%s%s\n", str(cloud, "state"),
               json_is_string(json_object_get(cloud, "error")) ? ": " : "",
               json_is_string(json_object_get(cloud, "error")) ? str(cloud, "error") : "");
    json_t *c = json_object_get(s, "config");
    printf("Configuration:          %s\n", str(c, "file"));
    printf("  directory %s",
           json_string_value(json_array_get(json_object_get(c, "directory"), 0))
               ? json_string_value(json_array_get(json_object_get(c, "directory"), 0))
               : "-");
    printf(", base %s, change tracking %s\n", str(c, "base_dn"), str(c, "change_tracking"));
    printf("  cloud %s (org %s), delete threshold %ld\n", str(c, "cloud"), str(c, "org"),
           num(c, "delete_threshold"));
    printf("  incremental every %ld s, full sync %s, notifications %s\n",
           num(c, "incremental_interval_s"), str(c, "full_sync"),
           json_is_true(json_object_get(c, "notifications")) ? "on" : "off");
}

static const char status_help[] =
    "usage: dirconnctl status [--config FILE | --socket PATH] [--json]\n"
    "\n"
    "Ask dirconnd for its status: the overall word (ok, degraded or error) and why, the\n"
    "current synchronization (type, start, phase, progress), the next full and incremental\n"
    "synchronizations, the last two with their counts, the connectors and which one is\n"
    "active, the directory side (DC in use, last bind or search error, a refused bind, the\n"
    "change notification connection), the cloud side (state, last error, proxy mode and the\n"
    "route in use), a pending threshold override, and the configuration summary.\n"
    "--json prints the daemon's answer as JSON.\n";

static const struct option socket_opt[] = {{"socket", required_argument, NULL, OPT_SOCKET},
                                           {NULL, 0, NULL, 0}};

int cmd_status(struct ctl *ctl, int argc, char **argv)
{
    struct daemon_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, socket_opt, daemon_opt, &a, status_help);
    if (rc >= 0)
        return rc;
    json_t *req = json_pack("{s:s}", "cmd", "status");
    json_t *resp = ask(ctl, &a, req);
    json_decref(req);
    if (resp == NULL)
        return a.fail_rc != 0 ? a.fail_rc : 1;
    json_t *s = json_object_get(resp, "status");
    if (ctl->json) {
        char *t = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (t != NULL)
            puts(t);
        free(t);
    } else {
        print_status(s);
    }
    json_decref(resp);
    return 0;
}

static const char sync_now_help[] =
    "usage: dirconnctl sync-now --full|--incremental [--override-threshold]\n"
    "                           [--config FILE | --socket PATH]\n"
    "       dirconnctl sync-now --override-threshold [--config FILE | --socket PATH]\n"
    "\n"
    "Ask dirconnd to start a synchronization now (also while paused); when one is running, it\n"
    "starts when that one ends. Returns once dirconnd has accepted the request.\n"
    "--override-threshold lets that run exceed [policy] delete_threshold, once (the next\n"
    "summary notes it); without --full or --incremental the run is of the kind the threshold\n"
    "stopped last.\n";

int cmd_sync_now(struct ctl *ctl, int argc, char **argv)
{
    static const struct option extra[] = {{"full", no_argument, NULL, OPT_FULL},
                                          {"incremental", no_argument, NULL, OPT_INCREMENTAL},
                                          {"socket", required_argument, NULL, OPT_SOCKET},
                                          {"override-threshold", no_argument, NULL, OPT_OVERRIDE},
                                          {NULL, 0, NULL, 0}};
    struct daemon_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, extra, daemon_opt, &a, sync_now_help);
    if (rc >= 0)
        return rc;
    if (a.full && a.incremental)
        return ctl_usage_error(ctl, "say which synchronization: --full or --incremental");
    if (!a.full && !a.incremental && !a.override_threshold)
        return ctl_usage_error(ctl, "say which synchronization: --full or --incremental");
    json_t *req =
        json_pack("{s:s, s:b}", "cmd", "sync", "override_threshold", a.override_threshold);
    if (a.full || a.incremental)
        json_object_set_new(req, "type", json_string(a.full ? "full" : "incremental"));
    json_t *resp = ask(ctl, &a, req);
    json_decref(req);
    if (resp == NULL)
        return a.fail_rc != 0 ? a.fail_rc : 1;
    const char *queued = json_string_value(json_object_get(resp, "queued"));
    printf("%s synchronization %s%s\n",
           queued != NULL && strcmp(queued, "full") == 0 ? "Full" : "Incremental",
           json_is_true(json_object_get(resp, "after_current"))
               ? "queued: it starts when the current one ends"
               : "started",
           a.override_threshold ? "; it may exceed the delete threshold, once" : "");
    json_decref(resp);
    return 0;
}

static int pause_resume(struct ctl *ctl, int argc, char **argv, const char *cmd, const char *help)
{
    struct daemon_args a = {0};
    int rc = ctl_parse_options(ctl, argc, argv, socket_opt, daemon_opt, &a, help);
    if (rc >= 0)
        return rc;
    json_t *req = json_pack("{s:s}", "cmd", cmd);
    json_t *resp = ask(ctl, &a, req);
    json_decref(req);
    if (resp == NULL)
        return a.fail_rc != 0 ? a.fail_rc : 1;
    printf("%s\n", json_is_true(json_object_get(resp, "paused"))
                       ? "Paused: scheduled and notified synchronizations are held back"
                       : "Resumed");
    json_decref(resp);
    return 0;
}

int cmd_pause(struct ctl *ctl, int argc, char **argv)
{
    return pause_resume(ctl, argc, argv, "pause",
                        "usage: dirconnctl pause [--config FILE | --socket PATH]\n\n"
                        "Hold back dirconnd's scheduled and notified synchronizations (a running "
                        "one finishes;\nsync-now still works) until resume.\n");
}

int cmd_resume(struct ctl *ctl, int argc, char **argv)
{
    return pause_resume(ctl, argc, argv, "resume",
                        "usage: dirconnctl resume [--config FILE | --socket PATH]\n\n"
                        "Let dirconnd's scheduled and notified synchronizations run again.\n");
}
