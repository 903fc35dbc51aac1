/*
 * proxy.h - which proxy for which cloud URL, turned into libcurl options.
 *
 * Every HTTPS request of dirconn (OAuth token, SCIM, control API, lease)
 * goes through one struct proxy_ctx: its proxy_configure() and
 * proxy_outcome() are the transport seam of connector/net/http.h
 * (http_configure_fn, http_outcome_fn). The route chosen for a transfer
 * travels in that request's own state (struct http_route), from
 * proxy_configure to proxy_outcome.
 *
 * For each URL the context resolves an ordered list of routes (a proxy URL
 * or DIRECT) from [proxy] mode (docs/configuration.md, docs/operations.md
 * "Proxies"; Cisco Directory Connector guide, "Web Proxy Integration"):
 *   auto      the host's settings through libproxy: http_proxy, https_proxy
 *             and no_proxy, WPAD, desktop settings, a pac+http:// or
 *             pac+file:// PAC URL in those settings;
 *   pac       [proxy] pac_url evaluated through libproxy's PAC runner;
 *   explicit  [proxy] url (hosts in [proxy] no_proxy go direct);
 *   none      DIRECT.
 * Before any of that, a host that [proxy] no_proxy names (in mode auto also
 * the environment's no_proxy, or NO_PROXY) goes DIRECT; libcurl decides the
 * match (CURLOPT_NOPROXY: comma-separated names, each matching the host
 * itself and its subdomains, a leading dot optional, "*" for every host, IP
 * addresses literally or in CIDR notation). In mode auto a proxy variable
 * without a scheme ("host:port") means http://, as curl reads it.
 * The answer is cached per scheme://host:port for [proxy] pac_ttl (renewed
 * ahead of its expiry while no transfer is in flight, so that resolving never
 * holds up transfers; see proxy_cache_usable). Each
 * transfer uses the host's current route; when a proxy cannot be reached
 * (or answers the CONNECT with an error) the next route of the list is
 * tried at once; when the list is exhausted the request fails with a
 * message naming every route and the list is resolved again on next use.
 * A proxy that failed is remembered as dead for [proxy] pac_ttl in the
 * struct proxy_shared of the program: every context sharing it (the run's,
 * the lease client's, the daemon's next runs) starts behind it. The route
 * of each host is logged when it changes, once per change (at info in
 * dirconnd: proxy_shared_new).
 * HTTP 407 is final: DIRCONN_EPROXY naming the proxy, the user, the schemes
 * the proxy offers (Proxy-Authenticate, RFC 9110 11.7.1) and [proxy] auth.
 *
 * HTTPS goes through a proxy with CONNECT (RFC 9110 9.3.6); TLS verification
 * of the cloud is never changed here. Proxy authentication is libcurl's
 * (Basic RFC 7617, Digest RFC 7616, NTLM, Negotiate RFC 4559), any by
 * default or pinned by [proxy] auth; the password comes from
 * [proxy] password_file, is wiped on free and never logged. Proxy URLs in
 * messages have their user information removed.
 *
 * A context is used by one thread at a time; a struct proxy_shared by any
 * number of threads. No process-wide state is touched: libproxy runs in a
 * short-lived child process (proxy_px.h).
 */
#ifndef DIRCONN_PROXY_H
#define DIRCONN_PROXY_H

#include "connector/core/config.h"
#include "connector/core/error.h"
#include "connector/core/log.h"
#include "connector/net/http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proxy_ctx;
struct proxy_shared;

/* One resolution: what proxy_resolve found for a URL (see proxy-check). */
struct proxy_resolution {
    enum proxy_mode mode;
    char *pac_url;    /* the PAC evaluated (configured or found by libproxy), or NULL */
    char *pac_answer; /* FindProxyForURL's raw answer, or NULL when no PAC ran */
    char **routes;    /* n routes in order; NULL = DIRECT, else a proxy URL (may hold user info) */
    size_t n;
    char *chosen_by; /* the setting that chose the routes, for people: "[proxy] mode explicit",
                        "[proxy] no_proxy", "no_proxy in the environment", "https_proxy in the
                        environment", "PAC file <url> ([proxy] pac_url)", "WPAD", ... */
};

/*
 * The memory that contexts of one program share (thread-safe): proxies
 * found dead, until when, and the route last logged per host.
 * proxy_shared_new - *out owned by the caller (proxy_shared_free), which
 * must outlive every context given it. log_routes: each change of a host's
 * route is logged at info (a service: dirconnd), else at debug (one-shot
 * commands, whose route proxy-check shows). Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_shared_new(bool log_routes, struct proxy_shared **out,
                                  struct dirconn_error *err);

/* proxy_shared_free - free it. s may be NULL. */
void proxy_shared_free(struct proxy_shared *s);

/*
 * proxy_shared_mark_dead - remember the proxy route (a proxy URL; user
 * information is ignored) as dead until until_ms (CLOCK_MONOTONIC, ms).
 */
void proxy_shared_mark_dead(struct proxy_shared *s, const char *route, int64_t until_ms);

/* proxy_shared_is_dead - is route remembered as dead at now_ms? DIRECT (NULL) never is. */
bool proxy_shared_is_dead(struct proxy_shared *s, const char *route, int64_t now_ms);

/* proxy_shared_forget_dead - forget every dead proxy (new proxy settings were loaded). */
void proxy_shared_forget_dead(struct proxy_shared *s);

/*
 * proxy_shared_note_route - record that transfers to key (scheme://host:port)
 * use the route described by label; true when that differs from the last
 * label recorded for key (or none was): the caller logs the change.
 */
bool proxy_shared_note_route(struct proxy_shared *s, const char *key, const char *label);

/*
 * proxy_shared_route_label - a copy (malloc'd, the caller frees it) of the
 * label last recorded for key with proxy_shared_note_route, NULL when none
 * was (or s is NULL, or out of memory). The program's clients of a group of
 * equivalent servers (the etcd endpoints of [ha]) record under one key the
 * server that answered last, so that each of them starts there.
 */
char *proxy_shared_route_label(struct proxy_shared *s, const char *key);

/*
 * proxy_no_proxy_match - would libcurl go DIRECT to url with the no_proxy
 * list `list` (CURLOPT_NOPROXY syntax)? libcurl decides: a transfer is
 * prepared with a dummy proxy, and the address of its first connection
 * attempt (made to no network, never sent) tells whether the proxy was
 * chosen. NULL or "" matches nothing.
 */
bool proxy_no_proxy_match(const char *list, const char *url);

/*
 * proxy_env_no_proxy - the environment's no_proxy list as libcurl reads it
 * (no_proxy, else NO_PROXY), or NULL. Borrowed from the environment.
 */
const char *proxy_env_no_proxy(void);

/*
 * proxy_env_proxy_url - a proxy variable's value as libcurl reads it:
 * "host:port" without a scheme is "http://host:port". NULL for NULL or "";
 * else malloc'd (the caller frees), NULL on ENOMEM.
 */
char *proxy_env_proxy_url(const char *value);

/*
 * proxy_auth_schemes - the names of the CURLAUTH_* bits in `bits` ("Basic,
 * Digest"), "none" when there is none, into buf.
 */
void proxy_auth_schemes(unsigned long bits, char *buf, size_t len);

/*
 * proxy_auth_refusal - the message for an HTTP 407 from the proxy that
 * `label` names ("proxy http://p:3128") after a transfer on easy: the user
 * of cfg's [proxy] username, the schemes the proxy offered (its
 * Proxy-Authenticate headers, CURLINFO_PROXYAUTH_AVAIL) and [proxy] auth,
 * e.g. "proxy http://p:3128 refused the credentials of user 'alice' (HTTP
 * 407): it offers Digest, [proxy] auth is basic". Into buf.
 */
void proxy_auth_refusal(const struct config *cfg, CURL *easy, const char *label, char *buf,
                        size_t len);

/*
 * proxy_new - a context for cfg's [proxy] section. cfg and log are borrowed
 * and must outlive the context; shared (borrowed, may be NULL: the context
 * keeps its own) is the program's memory of dead proxies and routes. Reads [proxy] password_file
 * now, or, when only [proxy] username is set, the secret store's proxy-password (if it is set;
 * `dirconnctl secret set proxy-password`). On success *out is owned by the caller (proxy_free).
 * Errors: DIRCONN_ECONFIG (the password file cannot be read: the message names it), those of
 * secret_store_open (DIRCONN_ESECRET: the store is damaged or its key wrong), DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_new(const struct config *cfg, const struct log_sink *log,
                           struct proxy_shared *shared, struct proxy_ctx **out,
                           struct dirconn_error *err);

/* proxy_free - wipe the password and free the context and its cache. p may be NULL. */
void proxy_free(struct proxy_ctx *p);

/*
 * proxy_resolve - the routes for url (http or https) without using or
 * filling the cache. res is filled and owned by the caller
 * (proxy_resolution_clear), also after an error when a PAC ran. Errors:
 * DIRCONN_EPROXY (the PAC cannot be downloaded or read, fails to evaluate,
 * or answers garbage; libproxy's runner did not finish in time: the message
 * names the PAC URL and the target URL), DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_resolve(struct proxy_ctx *p, const char *url, struct proxy_resolution *res,
                               struct dirconn_error *err);

/* proxy_resolution_clear - free a resolution's fields. */
void proxy_resolution_clear(struct proxy_resolution *res);

/*
 * proxy_apply - set the libcurl options for one route on easy: route NULL
 * is DIRECT (CURLOPT_PROXY "", so libcurl ignores its own environment);
 * otherwise CURLOPT_PROXY, CURLOPT_NOPROXY ([proxy] no_proxy or ""),
 * CURLOPT_HTTPPROXYTUNNEL for https targets, and the credentials and
 * CURLOPT_PROXYAUTH of [proxy]. The strings are copied by libcurl.
 * Errors: DIRCONN_EPROXY (libcurl refused an option).
 */
enum dirconn_err proxy_apply(struct proxy_ctx *p, CURL *easy, const char *url, const char *route,
                             struct dirconn_error *err);

/*
 * proxy_route_for - the route the next transfer to url takes: the current
 * route of url's host, resolving and caching its list when missing, older
 * than [proxy] pac_ttl, or exhausted by failures; proxies remembered as dead
 * are passed over while a later route remains. *route is borrowed from
 * the cache (NULL = DIRECT) and valid until the next call on p. Errors:
 * those of proxy_resolve.
 */
enum dirconn_err proxy_route_for(struct proxy_ctx *p, const char *url, const char **route,
                                 struct dirconn_error *err);

/*
 * proxy_route_used - the route transfers to url's host use now, for status
 * displays, without resolving anything: the proxy URL without user
 * information, or "DIRECT", followed by " (from PAC <url>)" when a PAC chose
 * it; "none: every route failed" after the list was exhausted. NULL when no
 * transfer to that host was configured through p yet (or out of memory).
 * The caller frees the string.
 */
char *proxy_route_used(struct proxy_ctx *p, const char *url);

/*
 * proxy_configure - an http_configure_fn (arg = the struct proxy_ctx): pick
 * the current route of url's host (resolving and caching the list when
 * needed), proxy_apply it on easy and record it in *route (the request's
 * state; zeroed on error), for proxy_outcome. Errors: those of proxy_resolve
 * and proxy_apply, DIRCONN_ENOMEM.
 */
enum dirconn_err proxy_configure(void *arg, CURL *easy, const char *url, struct http_route *route,
                                 struct dirconn_error *err);

/*
 * proxy_outcome - an http_outcome_fn (arg = the struct proxy_ctx): judge the
 * attempt made on easy through `route`, the route proxy_configure recorded for
 * it, which is cleared (judged once; a cleared route, or NULL:
 * HTTP_OUTCOME_DEFAULT, nothing judged).
 * HTTP 407 from the proxy -> HTTP_OUTCOME_FAIL with DIRCONN_EPROXY
 * (proxy_auth_refusal's message); the route failed (proxy unreachable,
 * CONNECT refused, DIRECT unreachable; a failed proxy is remembered as dead
 * for [proxy] pac_ttl) and another remains -> HTTP_OUTCOME_RETRY; the list is
 * exhausted -> HTTP_OUTCOME_DEFAULT with a message naming every route;
 * otherwise HTTP_OUTCOME_DEFAULT with no message.
 */
enum http_outcome proxy_outcome(void *arg, CURL *easy, const char *url, CURLcode rc,
                                struct http_route *route, struct dirconn_error *err);

/*
 * proxy_redact - a copy of a proxy URL without user name and password, for
 * messages; "DIRECT" for NULL. The caller frees it; NULL on ENOMEM.
 */
char *proxy_redact(const char *route);

/*
 * proxy_route_from_libproxy - a libproxy answer ("direct://",
 * "http://host:port", "socks://host:port", ...) as a route for libcurl:
 * *route = NULL for DIRECT, else a malloc'd URL (socks:// becomes
 * socks4://). Returns false for a scheme libcurl cannot use.
 */
bool proxy_route_from_libproxy(const char *answer, char **route);

/*
 * proxy_pac_directives - how many non-empty ';'-separated directives a PAC
 * answer holds (Netscape PAC format: "PROXY host:port; SOCKS host:port;
 * DIRECT"); *garbage is set when one of them is not such a directive. Used
 * to notice answers that libproxy silently turns into DIRECT.
 */
size_t proxy_pac_directives(const char *answer, bool *garbage);

/*
 * proxy_cache_usable - whether a cached route list that expires at expires_ms
 * (monotonic ms; resolved ttl_ms before) may serve now_ms without resolving it
 * again. Resolving blocks the caller (a PAC or WPAD child, up to its deadline),
 * which is the transfer loop: so with no transfer of the context in flight the
 * list is renewed ahead of its expiry (in its last fifth), and with transfers in
 * flight an expired list keeps serving for up to one more TTL, until a call
 * with none in flight renews it.
 */
bool proxy_cache_usable(int64_t now_ms, int64_t expires_ms, int64_t ttl_ms, bool in_flight);

/*
 * proxy_set_clock - for unit tests: replace the monotonic clock (milliseconds)
 * that every proxy context of the process reads for pac_ttl and the dead-proxy
 * memory with now_ms; NULL restores CLOCK_MONOTONIC. Not thread-safe: set it
 * before any context is used.
 */
void proxy_set_clock(int64_t (*now_ms)(void));

/* proxy_mode_name - "auto", "pac", "explicit" or "none". */
const char *proxy_mode_name(enum proxy_mode mode);

#endif
