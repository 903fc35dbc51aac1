/*
 * cloud_scim.h - the SCIM 2.0 service of dirconn-cloud (RFC 7643, RFC 7644).
 *
 * Everything under /scim/v2/{org}/: Users, Groups and Contacts (create,
 * read, list with filter/paging/attribute selection, replace, patch, delete,
 * ETags), /Bulk, and the discovery endpoints /ServiceProviderConfig,
 * /ResourceTypes and /Schemas. docs/cloud-api.md lists the supported
 * features and the choices made where the RFCs leave room.
 */
#ifndef DIRCONN_CLOUD_SCIM_H
#define DIRCONN_CLOUD_SCIM_H

#include "cloud/cloud_reply.h"

/* cloud_scim_handle - answer one request under /scim/v2/. Frees req. */
void cloud_scim_handle(struct cloud_req *req);

#endif
