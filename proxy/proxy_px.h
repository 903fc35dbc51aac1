/*
 * proxy_px.h - the platform seam around libproxy 0.4 (px_proxy_factory_*).
 *
 * libproxy reads its configuration from the process environment and the
 * desktop, reports no errors (a PAC that fails to download, to evaluate or
 * that answers garbage all come back as "direct://") and may block on WPAD
 * or a PAC script. So each resolution runs in a short-lived child process
 * (fork(2), POSIX): the child gets the environment the mode asks for (mode
 * pac: http_proxy = https_proxy = the pac+ URL, no_proxy and the desktop
 * variables removed; mode auto: http_proxy, https_proxy (and their upper-case
 * forms) without a scheme get http://, as curl reads them, and no_proxy is
 * removed: proxy.c matches no_proxy with libcurl before asking), turns on
 * libproxy's trace (_PX_DEBUG) on a pipe, calls px_proxy_factory_get_proxies
 * and writes the list on a second pipe. The parent never changes its own
 * environment, reads both pipes up to a deadline, kills the child when it
 * is late, and reports from the trace which PAC URL was used, whether it
 * could be read and what FindProxyForURL returned. Only this file forks or
 * calls libproxy.
 */
#ifndef DIRCONN_PROXY_PX_H
#define DIRCONN_PROXY_PX_H

#include "connector/core/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proxy_px_request {
    const char *url;     /* the target URL */
    const char *pac_url; /* NULL = inherit the host's settings (mode auto); else a pac+ URL
                            libproxy can read (pac+file:///path, pac+http://) */
    int64_t timeout_ms;  /* deadline for the child */
};

struct proxy_px_answer {
    char **proxies; /* libproxy's list ("direct://", "http://h:p", ...), n entries */
    size_t n;
    bool failed;         /* libproxy returned NULL (e.g. a PAC with a syntax error) */
    char *config;        /* the configuration libproxy used (first of its trace), or NULL */
    bool pac_unreadable; /* the trace says the PAC could not be downloaded or read */
    bool pac_ran;        /* a PAC ran */
    bool no_runner;      /* a PAC was found but libproxy has no PAC runner plugin */
    bool wpad_failed;    /* WPAD was configured but found no PAC */
    char *pac_answer;    /* FindProxyForURL's raw answer when pac_ran */
};

/*
 * proxy_px_resolve - run libproxy for req in a child process and fill ans
 * (owned by the caller: proxy_px_answer_clear). Errors: DIRCONN_EPROXY (the
 * child could not be started, died, or missed the deadline), DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_px_resolve(const struct proxy_px_request *req, struct proxy_px_answer *ans,
                                  struct dirconn_error *err);

/*
 * proxy_px_prefork - start the launcher process that forks the libproxy
 * children from now on. fork(2) copies only the calling thread, and a lock
 * another thread holds at that moment (the dynamic loader's, libproxy loads
 * modules) would stay locked in the child: programs that run threads call
 * this while they are still single-threaded (dirconnd at start, dirconnctl
 * sync before its lease thread). Without it each resolution forks directly
 * (safe in single-threaded programs). The launcher ends when the program
 * closes its socket (exit, or proxy_px_prefork_stop). Errors: DIRCONN_EPROXY.
 */
enum dirconn_err proxy_px_prefork(struct dirconn_error *err);

/* proxy_px_prefork_stop - stop the launcher and reap it (nothing when none runs). */
void proxy_px_prefork_stop(void);

/* proxy_px_answer_clear - free an answer's fields. */
void proxy_px_answer_clear(struct proxy_px_answer *ans);

/*
 * proxy_px_parse_trace - read what the child wrote on its trace pipe
 * (libproxy's _PX_DEBUG lines, NUL-terminated, modified in place) into ans:
 * config (the first tab-indented line after "Config is:"), pac_unreadable,
 * no_runner, wpad_failed, and pac_ran with pac_answer (the text after
 * "Pacrunner returned: ", e.g. "PROXY a:1; DIRECT"). Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_px_parse_trace(char *trace, struct proxy_px_answer *ans);

/*
 * proxy_px_parse_list - read what the child wrote on its result pipe (lines
 * "P <proxy URL>" and "!" when libproxy returned NULL; NUL-terminated,
 * modified in place) into ans->proxies, ans->n and ans->failed.
 * Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_px_parse_list(char *text, struct proxy_px_answer *ans);

#endif
