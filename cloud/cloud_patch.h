/*
 * cloud_patch.h - SCIM PATCH operations applied to a resource document (RFC 7644 3.5.2).
 *
 * Pure JSON work, no storage: the caller loads the stored (canonical)
 * document, applies the PatchOp to a copy, validates the result with
 * cloud_schema_validate() and stores it only if everything succeeded.
 * Semantics chosen where the RFC leaves room are listed in docs/cloud-api.md
 * section 4.5 (add to a filter that matches nothing creates the value when
 * the filter is a conjunction of eq terms; remove of something absent
 * succeeds; remove with a value list removes those values).
 */
#ifndef DIRCONN_CLOUD_PATCH_H
#define DIRCONN_CLOUD_PATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "cloud/cloud_schema.h"

/*
 * cloud_patch_apply - apply the PatchOp request body to doc (modified in
 * place; on failure doc is left partly modified, so pass a copy). Attribute
 * names are canonicalised to the schema spelling; "schemas" is recomputed
 * from the presence of the extension object. Types are not checked here
 * (validate the result). Returns 0, or -1 with err: 400 invalidSyntax
 * (malformed PatchOp), invalidPath, noTarget, mutability (read-only or
 * required target) or invalidValue.
 */
int cloud_patch_apply(const struct cloud_rtype_def *rt, json_t *doc, const json_t *body,
                      struct cloud_scim_err *err);

/*
 * What a service provider may refuse in a PATCH (dirconn-cloud provider emulation,
 * docs/cloud-api.md "Provider emulation"). All false: RFC 7644 3.5.2 in full.
 */
struct cloud_patch_limits {
    bool eq_only_filters; /* value filters in paths: eq joined by and, else 400 invalidFilter */
    bool no_replace;      /* op "replace" (with or without path): 400 invalidSyntax */
    bool no_remove_all;   /* "remove" of a whole multi-valued attribute (a path without value
                           * filter, no value list): 400 invalidSyntax */
};

/*
 * cloud_patch_apply_limited - cloud_patch_apply, also refusing the operations lim (may be
 * NULL: no limits) rules out. Same ownership and errors (doc partly modified on failure: pass
 * a copy), plus those listed with the members of lim.
 */
int cloud_patch_apply_limited(const struct cloud_rtype_def *rt, json_t *doc, const json_t *body,
                              const struct cloud_patch_limits *lim, struct cloud_scim_err *err);

#endif
