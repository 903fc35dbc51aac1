/*
 * cloud.h - the one context of dirconn-cloud, shared by its modules.
 *
 * Everything the process owns lives in struct cloud_ctx (no global mutable
 * state): the configuration parsed from the command line, the log sink, the
 * event base and HTTP server, the TLS context, the SQLite store and the fault
 * injector. main.c creates it; request handlers receive it through
 * struct cloud_req (cloud_reply.h).
 *
 * Threads: the event loop thread owns everything but the SCIM thread's members of
 * struct cloud_scim_thread (see cloud_http.c for the hand-over). Both threads read cfg,
 * log (thread-safe), base_url and the schema tables, which do not change after start;
 * a handler uses the store its request names (req->st), never ctx->store directly.
 */
#ifndef DIRCONN_CLOUD_H
#define DIRCONN_CLOUD_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloud/cloud_fault.h"
#include "cloud/cloud_store.h"
#include "connector/core/log.h"

#define CLOUD_MAX_ORGS 64

/* The command line (docs/cloud-api.md "Command line"). Strings are borrowed from argv. */
struct cloud_config {
    const char *listen;           /* "127.0.0.1:8443", "[::1]:0" */
    const char *db_path;          /* SQLite database file */
    const char *admin_token_file; /* file holding the admin token */
    const char *orgs[CLOUD_MAX_ORGS];
    size_t norgs;
    const char *tls_cert, *tls_key;
    bool insecure_http;
    const char *ready_file; /* written with the bound port once listening */
    const char *public_url; /* base URL used in meta.location; default from --listen */
    long token_ttl_s;       /* access token lifetime, seconds */
    long max_body;          /* bytes, non-bulk requests */
    long bulk_max_ops;      /* /Bulk maxOperations */
    long bulk_max_payload;  /* /Bulk maxPayloadSize, bytes */
    long filter_max_results;
    bool db_sync_full; /* synchronous=FULL instead of NORMAL */
    /* Provider emulation (docs/cloud-api.md 4.10): what a real service
     * provider may lack. All false: the full feature set, RFC 7644 to the letter. */
    bool delete_cascades;     /* DELETE also removes the resource from groups, clears manager */
    bool no_enterprise_ext;   /* no enterprise User extension (RFC 7643 4.3) */
    bool no_contacts;         /* no Contact resource type */
    bool no_bulk;             /* bulk.supported false, /Bulk answers 501 */
    bool no_patch;            /* patch.supported false, PATCH answers 501 */
    bool no_etag;             /* etag.supported false: no ETag, no meta.version, If-Match ignored */
    bool filter_eq_only;      /* filters (lists, .search, PATCH paths): only eq joined by and */
    bool no_search;           /* POST /{type}/.search answers 501 */
    bool single_value;        /* a User holds at most one value per multi-valued attribute */
    bool group_patch_limited; /* Group PATCH: no replace, no remove of all members */
    bool group_patch_no_content; /* a Group PATCH that succeeds: 204, no body (RFC 7644 3.5.2) */
    bool etag_required;          /* PUT, PATCH, DELETE without If-Match: 428 (needs ETags) */
    bool no_password;            /* the User attribute "password" is not served (not writable) */
    const char *profile; /* --profile: the canonical name of the provider profile, or NULL */
    const char *const *omit_attrs; /* attributes not served (cloud_schema_omit), from the profile */
    enum log_level log_level;
    struct cloud_fault_config fault;
};

struct event_base;
struct evhttp;
struct event;
struct cloud_req;

/*
 * The SCIM thread (cloud_http.c): every /scim/ request is processed there, one at a time in
 * arrival order, with its own SQLite connection, so that the control API (lease, state,
 * reports, on the event loop thread) is answered while a long SCIM request runs. lock guards
 * queue, done and stop; cond wakes the thread (a request queued, stop).
 */
struct cloud_scim_thread {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cloud_req *queue, *queue_tail; /* waiting for the SCIM thread (arrival order) */
    struct cloud_req *done, *done_tail;   /* answered there, to be sent by the loop thread */
    bool stop;
    struct event *done_ev;    /* made active by the SCIM thread: the loop sends what is done */
    struct cloud_store store; /* the SCIM thread's connection (the loop thread uses ctx->store) */
};

struct cloud_ctx {
    struct cloud_config cfg;
    struct log_sink log;
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *ssl;
    struct event *sig_term, *sig_int;
    struct cloud_store store; /* the event loop thread's connection */
    struct cloud_scim_thread scim;
    unsigned char admin_hash[32]; /* SHA-256 of the admin token */
    struct cloud_fault fault;
    char base_url[256];        /* scheme://host:port, no trailing slash */
    int port;                  /* bound port */
    struct cloud_req *delayed; /* requests held by the latency fault (freed at shutdown) */
};

/* cloud_now_ms - wall clock, milliseconds since the epoch. */
int64_t cloud_now_ms(void);

/* cloud_format_time - RFC 3339 UTC with milliseconds into buf (>= 32 bytes). */
void cloud_format_time(int64_t ms, char *buf, size_t len);

/* cloud_random_hex - 2*nbytes hex characters of RAND_bytes output into out (2*nbytes+1). Returns
 * 0/-1. */
int cloud_random_hex(char *out, size_t nbytes);

/* cloud_uuid - a random (version 4) UUID into out (37 bytes). Returns 0/-1. */
int cloud_uuid(char *out);

/* cloud_sha256 - SHA-256 of len bytes of data into md (32 bytes). */
void cloud_sha256(const void *data, size_t len, unsigned char md[32]);

#endif
