/*
 * sync_ctx.h - the context of one run, shared by the parts of the sync
 * engine (sync.c and the sync_*.c files it calls). Internal to the engine:
 * nothing outside connector/sync*.c includes it.
 *
 * sync_run (sync.c) creates one struct sync_ctx on its stack, fills it in the
 * order of the run and frees what it holds at the end; every function of the
 * parts takes it borrowed, writes its error to c->err and returns its code.
 */
#ifndef DIRCONN_SYNC_CTX_H
#define DIRCONN_SYNC_CTX_H

#include "connector/cloud_caps.h"
#include "connector/id_list.h"
#include "connector/record.h"
#include "connector/sync.h"
#include "connector/sync_report.h"

#include <stdbool.h>
#include <time.h>

/* Resources per list page when reading the cloud inventory; above this many objects an
 * incremental lists the whole inventory instead of looking each one up. */
#define SYNC_INVENTORY_PAGE 1000

struct state;
struct ldap_source;
struct mapping;
struct proxy_ctx;
struct cloud_auth;
struct scim_client;
struct provider;
struct select_plan;

struct sync_ctx {
    const struct config *cfg;
    const struct log_sink *log;
    const struct sync_options *opts;
    struct sync_report *res; /* the report sync_run fills (sync_report.h) */
    struct state *st;
    struct ldap_source *src;
    struct mapping *maps[OBJECT_KINDS];
    struct proxy_ctx *proxy;
    struct cloud_auth *auth;
    struct scim_client *scim;
    struct plan *plan;
    struct cloud_caps caps;
    struct provider *prov; /* discovery of this run (RFC 7644 4) */
    char **unsent;         /* mapped targets the provider cannot take, reported once */
    size_t n_unsent;
    struct plan *unsent_plan;                      /* the plan the unsent targets were added to */
    struct record_path *scope_paths[OBJECT_KINDS]; /* the leaves each mapping produces */
    struct record_scope scope[OBJECT_KINDS];
    bool drift_check;    /* full runs: the inventory reads values, matches are compared (drift) */
    bool no_attr_select; /* the provider refused an attributes= selection: read whole resources */
    bool no_versions; /* full run: the state holds no cloud version (new, taken over, migrated) */
    long inventory_status; /* the HTTP status of the last failed inventory read, 0 = none */
    /* a full run's inventory, listed while the directory is read (sync_cloud_inventory_start) */
    struct sync_inventory *inventory;
    char *scim_base;
    unsigned kinds; /* bits of enum object_kind being synchronised */
    const struct select_plan *sel;
    /* called for each object given to the plan (incremental: targeted inventory) */
    enum dirconn_err (*on_added)(struct sync_ctx *c, enum object_kind kind, const char *ext,
                                 const char *name);
    /* raw hashes (sync_read_add_entry): the fingerprint of what else records depend on ("" = none)
     */
    char raw_fp[65];
    bool raw_skip;          /* full runs: an entry whose raw hash the state holds is not mapped */
    bool entry_warned;      /* add_entry: the entry being mapped gave a warning */
    bool entry_skipped;     /* add_entry: the entry mapped was skipped (a required attribute) */
    long raw_skipped;       /* entries given to the plan without mapping */
    struct id_list touched; /* incremental: objects planned or deleted in this run */
    bool need_full;     /* incremental: only a full run can plan it (c->res->fallback says why) */
    bool present_phase; /* incremental: RFC 4533 present phase (the whole inventory is read) */
    struct id_list failures; /* objects whose write failed: retried by the next incremental */
    /* apply (apply.h): progress on a terminal, and the lease lost during the run */
    long done, total;
    double started;
    bool lease_lost;
    enum dirconn_err lease_code; /* DIRCONN_ELEASE, or DIRCONN_EHAMODE: another HA mode */
    char lease_msg[DIRCONN_ERROR_LEN];
    enum sync_phase phase; /* the phase the run is in (sync_set_phase) */
    double phase_started;  /* when it began (sync_ctx_now) */
    /* partial plans: manager and member DNs resolved through the directory (sync_objmap_resolve_dn)
     */
    void *dn_memo;              /* tsearch tree of struct dn_memo, by canonical DN */
    long dn_found, dn_new;      /* DNs recorded on rows of the object map / in scope, not in it */
    long dn_unsent;             /* member or manager DNs known not sent (state_unsent_has_dn) */
    long conflict_kept;         /* objects read in a naming conflict: their groups not read */
    enum dirconn_err resolve_e; /* the first error a lookup met (the run stops on it) */
    char resolve_msg[DIRCONN_ERROR_LEN];
    struct dirconn_error *err;
};

/* sync_ctx_now - CLOCK_MONOTONIC in seconds (for durations only). */
static inline double sync_ctx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
