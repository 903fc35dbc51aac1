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

#endif
