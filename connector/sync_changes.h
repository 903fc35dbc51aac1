/*
 * sync_changes.h - the directory read of an incremental run (sync.c): the
 * changes since the watermark, read again and planned.
 *
 * The change tracking method (tracking.h: DirSync, uSNChanged polling,
 * RFC 4533) reports what changed since the watermark; with the objects whose
 * last write failed (the retry list), each is read again by its DN with the
 * searches of the selection whose base holds it, and planned in a partial
 * plan (plan_set_partial): in scope, mapped and given to the plan; out of
 * scope or gone, planned for deletion when the state holds it. The objects
 * whose record depends on a changed one (the groups of a new member, the
 * members of a security group, the partners of a naming conflict) are read
 * again too; member and manager DNs resolve through the object map
 * (sync_objmap_resolve_dn).
 *
 * Functions take the run's context (sync_ctx.h) borrowed, record their error
 * in c->err and return its code.
 */
#ifndef DIRCONN_SYNC_CHANGES_H
#define DIRCONN_SYNC_CHANGES_H

#include "connector/ldap_source.h"
#include "connector/state.h"
#include "connector/sync_ctx.h"

struct select_plan;

/*
 * sync_changes_scope_hash - hex (64 characters and a NUL) is the SHA-256 of
 * what the selection and mapping are (sel's searches, the kinds in the bit
 * set kinds, [users] enabled_only and required attributes, the [mapping]
 * lines, the avatar pattern) under partition (may be NULL): a watermark
 * taken under another scope hash no longer applies. cfg and sel borrowed.
 */
void sync_changes_scope_hash(const struct config *cfg, const struct select_plan *sel,
                             unsigned kinds, const char *partition, char hex[65]);

/*
 * sync_changes_plan - read the changes of partition since wm with method
 * (tracking_read), add the retry list, and plan them in c->plan (made
 * partial; its resolver is sync_objmap_resolve_dn and c->on_added collects
 * c->touched), in one state transaction (rolled back on an error). Filled:
 * next (the watermark after these changes, not saved), lists[0] (the changes
 * and retries), lists[1] (the RFC 4533 present ids), lists[2] (the retries
 * taken up), c->res->changes, *read (entries read again, not reset). An RFC
 * 4533 present phase plans the deletion of what was neither present nor
 * changed. A change only a full run can plan (a security group changed whose
 * record the rebuilt object map reset: its former members are unknown) sets
 * c->need_full and says why in c->res->fallback; the caller then runs in
 * full. Errors: DIRCONN_EWATERMARK (the watermark no longer applies: the
 * caller runs in full), DIRCONN_ELDAP_UNSUPPORTED (the method was refused),
 * the directory's and the state's errors, the first error a DN lookup met
 * (c->resolve_e), DIRCONN_ENOMEM.
 */
enum dirconn_err sync_changes_plan(struct sync_ctx *c, enum change_tracking method,
                                   const char *partition, const struct state_watermark *wm,
                                   struct state_watermark *next, struct id_list lists[3],
                                   long *read);

/*
 * sync_changes_note_added - c->on_added of an incremental: record the object
 * given to the plan in c->touched (for its targeted inventory). Errors:
 * DIRCONN_ENOMEM.
 */
enum dirconn_err sync_changes_note_added(struct sync_ctx *c, enum object_kind kind, const char *ext,
                                         const char *name);

/*
 * sync_changes_cloud_not_present - after an RFC 4533 present phase (c->present_phase) and
 * the whole inventory loaded into the plan: the cloud objects of the kinds of the run with
 * this directory's externalId form (sync_objmap_is_ours) that the state does not know, this
 * run did not read and the directory did not list as present (lists[1], sorted by
 * sync_changes_plan) are planned for deletion (plan_add_gone; sync_objmap_adopt then records
 * them), as a full sync would. They are what an HA active killed after its writes and
 * before it shared its state created, and the directory deleted since. Logged when there are
 * some. Inside the caller's transaction. Errors: the state's, the plan's, DIRCONN_ENOMEM.
 */
enum dirconn_err sync_changes_cloud_not_present(struct sync_ctx *c, const struct id_list lists[3]);

#endif
