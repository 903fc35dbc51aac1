/*
 * sync_cloud.h - the cloud side of a run (sync.c): the SCIM client, discovery
 * and the inventory.
 *
 * Opening the cloud builds the proxy route, the OAuth 2.0 / bearer client and
 * the SCIM client with the fencing and HA-mode headers. Discovery (RFC 7644 4)
 * reads what the provider supports and which mapped targets it takes. The
 * inventory is every cloud object of the enabled kinds (id, name, externalId,
 * admin role, meta.version: RFC 7644 3.4.2 list with an attributes= selection,
 * RFC 7644 3.9) given to the plan (plan_add_cloud_projected), for a full run
 * with the projection of each copy it compares (drift); an incremental looks
 * up only the objects it touched (by id, externalId, userName filters,
 * RFC 7644 3.4.2.2).
 *
 * Every function takes the run's context (sync_ctx.h) borrowed, records its
 * error in c->err and returns its code: DIRCONN_OK, the SCIM client's errors
 * (the HTTP status and the server's detail in the message), DIRCONN_ESTATE
 * (the plan's tables), DIRCONN_ENOMEM.
 */
#ifndef DIRCONN_SYNC_CLOUD_H
#define DIRCONN_SYNC_CLOUD_H

#include "connector/sync_ctx.h"

/*
 * sync_cloud_open - c->scim_base (from [cloud] scim_url, or url and org:
 * {url}/scim/v2/{org}), c->proxy, c->auth and c->scim, which sync_run frees.
 * Errors: DIRCONN_ECONFIG (neither scim_url nor url and org, naming the
 * file), DIRCONN_ENOMEM, and those of proxy_new, cloud_auth_new and
 * scim_client_new.
 */
enum dirconn_err sync_cloud_open(struct sync_ctx *c);

/*
 * sync_cloud_discover - read /ServiceProviderConfig, /ResourceTypes and
 * /Schemas (provider_discover): fills c->prov, c->caps and, per kind the
 * provider offers, c->scope (the paths the mapping produces and the provider
 * takes; c->scope_paths owns them). Each mapped target the provider cannot
 * take is logged once and kept in c->unsent for the plan's report.
 * Errors: those of provider_discover, DIRCONN_ENOMEM.
 */
enum dirconn_err sync_cloud_discover(struct sync_ctx *c);

/*
 * sync_cloud_resource_path - "/Users", "/Groups" or "/Contacts" for kind
 * (< OBJECT_KINDS). Returns a static string.
 */
const char *sync_cloud_resource_path(enum object_kind kind);

/*
 * sync_cloud_inventory_select - the attributes= value of an inventory read of
 * kind (RFC 7644 3.9: id, userName or displayName, externalId, roles of users,
 * meta.version when the provider has ETags), or NULL when the run reads whole
 * resources (a full run that compares values without versions, or a provider
 * that refused the selection). Returns a static string.
 */
const char *sync_cloud_inventory_select(const struct sync_ctx *c, enum object_kind kind);

/*
 * sync_cloud_load_inventory - list every cloud object of the kinds in the bit
 * set kinds (1u << enum object_kind) page by page (c->caps.page resources a
 * page) into the plan, in one state transaction (rolled back on an error).
 */
enum dirconn_err sync_cloud_load_inventory(struct sync_ctx *c, unsigned kinds);

/*
 * The same inventory listed beside the directory read of a full run, so that
 * the provider builds its pages while the directory is read and mapped (the
 * plan needs both only when it is computed). The caller holds the state
 * transaction the plan's rows are written in.
 *
 * sync_cloud_inventory_start - start listing the kinds in the bit set kinds
 * into c->inventory (one kind after the other, each scim_port_list_open with
 * sync_cloud_inventory_select) and send the first page.
 * sync_cloud_inventory_step - hand the pages answered so far to the plan;
 * wait false never waits for the cloud (sync_read_directory calls it between
 * entries), wait true returns once every kind is listed. No inventory: OK.
 * sync_cloud_inventory_finish - step until the end, log (debug) how many
 * objects were listed in how long and how long was waited for after the read,
 * and drop c->inventory.
 * sync_cloud_inventory_drop - free c->inventory, listed or not (pages in flight
 * are waited for, their answers not used); none: nothing.
 * Errors: those of sync_cloud_load_inventory, in c->err.
 */
enum dirconn_err sync_cloud_inventory_start(struct sync_ctx *c, unsigned kinds);
enum dirconn_err sync_cloud_inventory_step(struct sync_ctx *c, bool wait);
enum dirconn_err sync_cloud_inventory_finish(struct sync_ctx *c);
void sync_cloud_inventory_drop(struct sync_ctx *c);

/*
 * sync_cloud_load_targeted - an incremental's inventory: for each object of
 * c->touched, GET by the cloud id the state holds, then filters by externalId
 * and (users) userName for adoption; a 404 is no object. The lookups are
 * pipelined (scim_submit, up to the client's max_in_flight in flight; the
 * first one alone, to learn whether the provider takes the attributes=
 * selection) and their answers given to the plan in the order they were
 * made; after a failure no further lookup is made, those submitted run to
 * their end and the first failure is returned. A deletion the state
 * does not know (kind -1) is looked up by externalId in each kind of c->kinds,
 * so an object the cloud holds without the state knowing it is adopted and
 * deleted (plan_adopt_cloud with its id in the plan's gone set). More than
 * max(SYNC_INVENTORY_PAGE, a tenth of the objects the state holds) objects,
 * a provider without filters, an RFC 4533 present phase, or a lookup the
 * provider refuses with 400 (logged): the whole inventory instead.
 */
enum dirconn_err sync_cloud_load_targeted(struct sync_ctx *c);

/*
 * sync_cloud_fill_projections - after plan_compute, for a full run whose
 * inventory was a selection with meta.version: read the cloud copies whose
 * version is not the one the state holds (plan_projection_count), one by one
 * (GET by id, pipelined) when they are at most 1000 and a quarter of their
 * kind, else with a whole list of the kind, and give their projections to
 * the plan (plan_set_cloud_projection). A copy deleted since (404) is left.
 * Nothing to do for incremental runs or whole inventories.
 */
enum dirconn_err sync_cloud_fill_projections(struct sync_ctx *c);

#endif
