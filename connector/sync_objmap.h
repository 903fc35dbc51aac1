/*
 * sync_objmap.h - the object map of a run (the state's objects table: which
 * cloud object each directory object is) and the cloud: rebuilt after an HA
 * takeover, completed with the cloud's objects of this directory, and the
 * DN resolver of partial plans.
 *
 * After a takeover (sync_options.rebuild_map, ha/shared_state.h) the map is
 * rebuilt from the cloud's inventory before the incremental runs
 * (state_reconcile_*, one transaction: all or nothing). Every run adopts
 * the cloud objects whose externalId has the GUID form of this directory's
 * ids (plan_adopt_cloud). A partial plan resolves a manager or member DN
 * that is neither among its objects nor on a row of the map by reading it
 * from the directory (plan_set_resolver): found in the map, its DN is
 * recorded on that row.
 *
 * Functions take the run's context (sync_ctx.h) borrowed, record their error
 * in c->err and return its code.
 */
#ifndef DIRCONN_SYNC_OBJMAP_H
#define DIRCONN_SYNC_OBJMAP_H

#include "connector/sync_ctx.h"

/*
 * sync_objmap_rebuild - list the cloud objects of the enabled kinds (the
 * selection a full sync lists) and reconcile the map with those of this
 * directory's externalId form, in one state transaction committed here; the
 * report (c->res: map_rebuilt, map_objects, map_changed, map_removed) says
 * what changed, and one line is logged. Errors: the SCIM client's, the
 * state's (the map is left as it was), DIRCONN_ENOMEM.
 */
enum dirconn_err sync_objmap_rebuild(struct sync_ctx *c);

/*
 * sync_objmap_is_ours - whether external_id (not NULL) has this directory's
 * externalId form (a GUID string: objectGUID or entryUUID), the mark of an
 * object a connector of this group created.
 */
bool sync_objmap_is_ours(const char *external_id);

/*
 * sync_objmap_adopt - plan_adopt_cloud over the kinds of the run: the cloud
 * objects with this directory's externalIds (objectGUID / entryUUID GUID
 * strings) that the state does not know are recorded as its own; logged
 * when there are some. Runs inside the caller's transaction. Errors: the
 * plan's (DIRCONN_ESTATE).
 */
enum dirconn_err sync_objmap_adopt(struct sync_ctx *c);

/*
 * sync_objmap_resolve_dn - the plan_set_resolver callback of a partial plan
 * (arg: the struct sync_ctx): the externalId of the in-scope user or group
 * with DN dn when the object map holds it (its DN is then recorded on the
 * row), or NULL (not in scope, not in the map, or an error). Returns a
 * malloc'd string the plan frees. One directory lookup per DN and run
 * (memoised until sync_objmap_free). The first error a lookup meets is kept
 * in c->resolve_e and c->resolve_msg: the run stops on it after planning.
 */
char *sync_objmap_resolve_dn(void *arg, const char *dn);

/* sync_objmap_free - free the resolver's memo of c (the DNs looked up). */
void sync_objmap_free(struct sync_ctx *c);

#endif
