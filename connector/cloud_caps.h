/*
 * cloud_caps.h - what the cloud's SCIM service provider supports and the
 * limits a run keeps to, as the sync engine reads them once per run from
 * discovery (provider.h, RFC 7643 5 ServiceProviderConfig) and the [cloud]
 * settings (docs/configuration.md). Filled by sync.c; read by the inventory
 * (page, filter, etag) and by apply (apply.h). A plain value: no functions.
 */
#ifndef DIRCONN_CLOUD_CAPS_H
#define DIRCONN_CLOUD_CAPS_H

#include <stdbool.h>

struct cloud_caps {
    bool bulk;                /* bulk.supported: creations go by /Bulk (RFC 7644 3.7) */
    long bulk_max_operations; /* bulk.maxOperations: operations per /Bulk request */
    long bulk_max_payload;    /* bulk.maxPayloadSize: bytes per /Bulk request */
    bool contacts;            /* the provider has a Contact resource type */
    bool etag;          /* etag.supported: If-Match on updates and deletions (RFC 7644 3.14) */
    bool patch;         /* patch.supported; false: updates are GET + PUT (RFC 7644 3.5.1) */
    bool filter;        /* filter.supported; false: the inventory is read in full, never filtered */
    long page;          /* resources per list page: min(1000, filter.maxResults) */
    long max_payload;   /* bytes per request body ([cloud] max_payload, bulk.maxPayloadSize) */
    long patch_max_ops; /* operations per PATCH request ([cloud] patch_max_operations) */
};

#endif
