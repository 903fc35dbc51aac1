/* cloud_patch.c - SCIM PATCH applied to a resource document (RFC 7644 3.5.2). */
#include "cloud/cloud_patch.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "cloud/cloud_filter.h"

/* Canonical copy of a complex value's members (sub-attribute names as in the schema). */
static int canon_subs(const struct cloud_attr_def *def, const json_t *v, json_t **out,
                      struct cloud_scim_err *err)
{
    if (!json_is_object(v))
        return cloud_scim_err_set(err, 400, "invalidValue", "'%s' needs an object value",
                                  def->name);
    json_t *o = json_object();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        const struct cloud_attr_def *sd = cloud_schema_find(def->subs, def->nsubs, k);
        if (sd == NULL) {
            json_decref(o);
            return cloud_scim_err_set(err, 400, "invalidValue", "unknown sub-attribute '%s.%s'",
                                      def->name, k);
        }
        json_object_set(o, sd->name, x);
    }
    *out = o;
    return 0;
}

/* Add the filter's eq terms (a conjunction) as members of obj; -1 if the filter is not one. */
static int eq_terms(const struct cloud_filter *f, json_t *obj)
{
    if (f->op == CLOUD_FILTER_AND)
        return eq_terms(f->left, obj) == 0 && eq_terms(f->right, obj) == 0 ? 0 : -1;
    if (f->op != CLOUD_FILTER_EQ || json_is_null(f->value))
        return -1;
    json_object_set(obj, f->ref.attr->name, f->value);
    return 0;
}

static void merge_into(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) json_object_set(dst, k, v);
}

static bool same_element(const json_t *a, const json_t *b)
{
    const json_t *va = json_object_get(a, "value"), *vb = json_object_get(b, "value");
    if (va != NULL && vb != NULL)
        return json_equal(va, vb);
    return json_equal(a, b);
}

/* Apply one operation to an attribute of container (top-level doc or extension object). */
static int patch_attr(const char *op, json_t *container, const struct cloud_attr_def *attr,
                      const struct cloud_attr_def *sub, struct cloud_filter *filter, json_t *value,
                      struct cloud_scim_err *err)
{
    const char *key = attr->name;
    json_t *cur = json_object_get(container, key);
    bool add = strcmp(op, "add") == 0, replace = strcmp(op, "replace") == 0;
    bool remove = !add && !replace;
    if (filter != NULL) {
        size_t nmatch = 0, i;
        json_t *el;
        if (json_is_array(cur)) {
            for (i = 0; i < json_array_size(cur);) {
                el = json_array_get(cur, i);
                if (!cloud_filter_match(filter, el)) {
                    i++;
                    continue;
                }
                nmatch++;
                if (remove) {
                    if (sub != NULL) {
                        json_object_del(el, sub->name);
                        i++;
                    } else {
                        json_array_remove(cur, i);
                    }
                    continue;
                }
                if (sub != NULL) {
                    json_object_set(el, sub->name, value);
                } else {
                    json_t *c;
                    if (canon_subs(attr, value, &c, err) != 0)
                        return -1;
                    if (replace)
                        json_array_set_new(cur, i, c);
                    else {
                        merge_into(el, c);
                        json_decref(c);
                    }
                }
                i++;
            }
            if (remove && json_array_size(cur) == 0)
                json_object_del(container, key);
        }
        if (nmatch > 0 || remove)
            return 0;
        if (replace)
            return cloud_scim_err_set(err, 400, "noTarget", "no value of '%s' matches the filter",
                                      key);
        /* add with no match: create the element the filter describes */
        json_t *n = json_object();
        if (eq_terms(filter, n) != 0) {
            json_decref(n);
            return cloud_scim_err_set(err, 400, "noTarget",
                                      "no value of '%s' matches and the filter is not a list "
                                      "of eq terms",
                                      key);
        }
        if (sub != NULL) {
            json_object_set(n, sub->name, value);
        } else {
            json_t *c;
            if (canon_subs(attr, value, &c, err) != 0) {
                json_decref(n);
                return -1;
            }
            merge_into(n, c);
            json_decref(c);
        }
        if (!json_is_array(cur)) {
            cur = json_array();
            json_object_set_new(container, key, cur);
        }
        json_array_append_new(cur, n);
        return 0;
    }
    if (sub != NULL) {
        if (attr->multi) {
            if (!json_is_array(cur)) {
                if (remove)
                    return 0;
                return cloud_scim_err_set(err, 400, "noTarget", "'%s' has no values", key);
            }
            size_t i;
            json_t *el;
            json_array_foreach(cur, i, el)
            {
                if (remove)
                    json_object_del(el, sub->name);
                else
                    json_object_set(el, sub->name, value);
            }
            return 0;
        }
        if (remove) {
            if (json_is_object(cur)) {
                json_object_del(cur, sub->name);
                if (json_object_size(cur) == 0)
                    json_object_del(container, key);
            }
            return 0;
        }
        if (!json_is_object(cur)) {
            cur = json_object();
            json_object_set_new(container, key, cur);
        }
        json_object_set(cur, sub->name, value);
        return 0;
    }
    if (remove) {
        if (attr->required)
            return cloud_scim_err_set(err, 400, "mutability", "'%s' is required", key);
        if (value != NULL && attr->multi && json_is_array(cur)) {
            json_t *vals = value;
            json_t *wrapped = NULL;
            if (!json_is_array(value)) {
                wrapped = json_array();
                json_array_append(wrapped, value);
                vals = wrapped;
            }
            for (size_t i = 0; i < json_array_size(cur);) {
                bool hit = false;
                size_t j;
                json_t *v;
                json_array_foreach(vals, j, v)
                {
                    if (same_element(json_array_get(cur, i), v))
                        hit = true;
                }
                if (hit)
                    json_array_remove(cur, i);
                else
                    i++;
            }
            json_decref(wrapped);
            if (json_array_size(cur) == 0)
                json_object_del(container, key);
            return 0;
        }
        json_object_del(container, key);
        return 0;
    }
    if (value == NULL)
        return cloud_scim_err_set(err, 400, "invalidValue", "'%s' needs a value", op);
    if (attr->multi) {
        json_t *vals = json_is_array(value) ? json_deep_copy(value) : json_pack("[O]", value);
        if (attr->type == CLOUD_T_COMPLEX) {
            size_t i;
            json_t *v;
            json_array_foreach(vals, i, v)
            {
                json_t *c;
                if (canon_subs(attr, v, &c, err) != 0) {
                    json_decref(vals);
                    return -1;
                }
                json_array_set_new(vals, i, c);
            }
        }
        if (replace || !json_is_array(cur)) {
            json_object_set_new(container, key, vals);
            return 0;
        }
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            bool dup = false;
            size_t j;
            json_t *e;
            json_array_foreach(cur, j, e)
            {
                if (attr->type == CLOUD_T_COMPLEX ? same_element(e, v) : json_equal(e, v))
                    dup = true;
            }
            if (!dup)
                json_array_append(cur, v);
        }
        json_decref(vals);
        return 0;
    }
    if (attr->type == CLOUD_T_COMPLEX) {
        json_t *c;
        if (canon_subs(attr, value, &c, err) != 0)
            return -1;
        if (!json_is_object(cur)) {
            json_object_set_new(container, key, c);
            return 0;
        }
        merge_into(cur, c);
        json_decref(c);
        return 0;
    }
    json_object_set(container, key, value);
    return 0;
}

/* Elements of a multi-valued attribute that have "primary": true. */
static size_t primaries(const json_t *arr, const json_t **out, size_t max)
{
    size_t n = 0, i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (json_is_true(json_object_get(el, "primary")) && n < max)
            out[n++] = el;
    }
    return n;
}

/*
 * After an operation on a multi-valued attribute: a value that became primary
 * makes every other value non-primary (RFC 7644 3.5.2: the server sets
 * "primary" to false on the other values).
 */
static void settle_primary(json_t *arr, const json_t *const *before, size_t nbefore)
{
    const json_t *now[64];
    size_t n = primaries(arr, now, 64);
    const json_t *fresh = NULL;
    for (size_t i = 0; i < n; i++) {
        bool old = false;
        for (size_t j = 0; j < nbefore; j++)
            old = old || now[i] == before[j];
        if (!old)
            fresh = now[i];
    }
    if (fresh == NULL || n < 2)
        return;
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (el != fresh && json_is_true(json_object_get(el, "primary")))
            json_object_set_new(el, "primary", json_false());
    }
}

/* The container an attribute reference lives in (creating the extension object if asked). */
static json_t *container_of(json_t *doc, const struct cloud_attr_ref *ref, bool create)
{
    if (ref->ext == NULL)
        return doc;
    json_t *c = json_object_get(doc, ref->ext->id);
    if (c == NULL && create) {
        c = json_object();
        json_object_set_new(doc, ref->ext->id, c);
    }
    return c;
}

static int check_mutable(const struct cloud_attr_ref *ref, struct cloud_scim_err *err)
{
    if (ref->attr->mutability == CLOUD_M_READONLY ||
        (ref->sub != NULL && ref->sub->mutability == CLOUD_M_READONLY))
        return cloud_scim_err_set(err, 400, "mutability", "'%s%s%s' is read-only", ref->attr->name,
                                  ref->sub != NULL ? "." : "",
                                  ref->sub != NULL ? ref->sub->name : "");
    return 0;
}

/* Apply an op given a path string (no path: called per member of the value object). */
static int patch_path_op(const struct cloud_rtype_def *rt, json_t *doc, const char *op,
                         const char *path, json_t *value, bool allow_filter,
                         const struct cloud_patch_limits *lim, struct cloud_scim_err *err)
{
    if (rt->ext != NULL && strcasecmp(path, rt->ext->id) == 0) {
        /* the whole extension object */
        if (strcmp(op, "remove") == 0) {
            json_object_del(doc, rt->ext->id);
            return 0;
        }
        if (!json_is_object(value))
            return cloud_scim_err_set(err, 400, "invalidValue", "'%s' needs an object value", path);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)value, k, v)
        {
            struct cloud_attr_ref ref;
            if (cloud_schema_resolve(rt, rt->ext->id, k, NULL, &ref, err) != 0) {
                err->scim_type = "invalidValue";
                return -1;
            }
            if (check_mutable(&ref, err) != 0 ||
                patch_attr(op, container_of(doc, &ref, true), ref.attr, NULL, NULL, v, err) != 0)
                return -1;
        }
        return 0;
    }
    struct cloud_patch_path pp;
    char msg[256];
    if (cloud_patch_path_parse(path, &pp, msg, sizeof(msg)) != 0)
        return cloud_scim_err_set(err, 400, "invalidPath", "path '%s': %s", path, msg);
    int rc = -1;
    struct cloud_attr_ref ref;
    if (pp.filter != NULL && !allow_filter) {
        cloud_scim_err_set(err, 400, "invalidPath", "'%s' may not hold a value filter", path);
        goto out;
    }
    if (pp.filter != NULL && lim != NULL && lim->eq_only_filters &&
        cloud_filter_eq_only(pp.filter, err) != 0)
        goto out;
    if (cloud_schema_resolve(rt, pp.uri, pp.attr, pp.filter != NULL ? NULL : pp.sub, &ref, err) !=
        0) {
        err->scim_type = "invalidPath";
        goto out;
    }
    if (pp.filter != NULL) {
        if (!ref.attr->multi || ref.attr->type != CLOUD_T_COMPLEX) {
            cloud_scim_err_set(err, 400, "invalidPath",
                               "'%s' is not a multi-valued complex attribute", ref.attr->name);
            goto out;
        }
        if (cloud_filter_bind_values(pp.filter, ref.attr, err) != 0) {
            err->scim_type = "invalidPath";
            goto out;
        }
        if (pp.sub != NULL) {
            ref.sub = cloud_schema_find(ref.attr->subs, ref.attr->nsubs, pp.sub);
            if (ref.sub == NULL) {
                cloud_scim_err_set(err, 400, "invalidPath", "unknown sub-attribute '%s.%s'",
                                   ref.attr->name, pp.sub);
                goto out;
            }
        }
    }
    if (check_mutable(&ref, err) != 0)
        goto out;
    bool remove = strcmp(op, "remove") == 0;
    if (remove && lim != NULL && lim->no_remove_all && ref.attr->multi && pp.filter == NULL &&
        pp.sub == NULL && value == NULL) {
        cloud_scim_err_set(err, 400, "invalidSyntax",
                           "removing every value of '%s' is not supported: name the values "
                           "with a filter ('%s[value eq \"...\"]') or a value list",
                           ref.attr->name, ref.attr->name);
        goto out;
    }
    json_t *container = container_of(doc, &ref, !remove);
    if (container == NULL) {
        rc = 0; /* removing from an absent extension: nothing to do */
        goto out;
    }
    const json_t *before[64];
    size_t nbefore = 0;
    bool multi = ref.attr->multi && ref.attr->type == CLOUD_T_COMPLEX;
    if (multi)
        nbefore = primaries(json_object_get(container, ref.attr->name), before, 64);
    rc = patch_attr(op, container, ref.attr, ref.sub, pp.filter, value, err);
    if (rc == 0 && multi && json_is_array(json_object_get(container, ref.attr->name)))
        settle_primary(json_object_get(container, ref.attr->name), before, nbefore);
    if (ref.ext != NULL && json_object_size(container) == 0)
        json_object_del(doc, ref.ext->id);
out:
    cloud_patch_path_clear(&pp);
    return rc;
}

int cloud_patch_apply(const struct cloud_rtype_def *rt, json_t *doc, const json_t *body,
                      struct cloud_scim_err *err)
{
    return cloud_patch_apply_limited(rt, doc, body, NULL, err);
}

int cloud_patch_apply_limited(const struct cloud_rtype_def *rt, json_t *doc, const json_t *body,
                              const struct cloud_patch_limits *lim, struct cloud_scim_err *err)
{
    if (!json_is_object(body))
        return cloud_scim_err_set(err, 400, "invalidSyntax", "the body must be a PatchOp object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (strcmp(k, "schemas") != 0 && strcasecmp(k, "Operations") != 0)
            return cloud_scim_err_set(err, 400, "invalidSyntax", "unknown member '%s' in PatchOp",
                                      k);
    }
    json_t *schemas = json_object_get(body, "schemas");
    if (!json_is_array(schemas) || json_array_size(schemas) != 1 ||
        !json_is_string(json_array_get(schemas, 0)) ||
        strcmp(json_string_value(json_array_get(schemas, 0)), CLOUD_MSG_PATCH) != 0)
        return cloud_scim_err_set(err, 400, "invalidSyntax", "'schemas' must be [\"%s\"]",
                                  CLOUD_MSG_PATCH);
    json_t *ops = cloud_json_get_ci(body, "Operations", NULL);
    if (!json_is_array(ops) || json_array_size(ops) == 0)
        return cloud_scim_err_set(err, 400, "invalidSyntax",
                                  "'Operations' must be a non-empty array");
    size_t i;
    json_t *o;
    json_array_foreach(ops, i, o)
    {
        if (!json_is_object(o))
            return cloud_scim_err_set(err, 400, "invalidSyntax", "Operations[%zu] is not an object",
                                      i);
        json_object_foreach(o, k, v)
        {
            if (strcmp(k, "op") != 0 && strcmp(k, "path") != 0 && strcmp(k, "value") != 0)
                return cloud_scim_err_set(err, 400, "invalidSyntax",
                                          "unknown member '%s' in Operations[%zu]", k, i);
        }
        const char *opname = json_string_value(json_object_get(o, "op"));
        const char *op = NULL;
        if (opname != NULL) {
            if (strcasecmp(opname, "add") == 0)
                op = "add";
            else if (strcasecmp(opname, "replace") == 0)
                op = "replace";
            else if (strcasecmp(opname, "remove") == 0)
                op = "remove";
        }
        if (op == NULL)
            return cloud_scim_err_set(err, 400, "invalidSyntax",
                                      "Operations[%zu].op must be add, remove or replace", i);
        if (lim != NULL && lim->no_replace && strcmp(op, "replace") == 0)
            return cloud_scim_err_set(err, 400, "invalidSyntax",
                                      "Operations[%zu]: replace is not supported for %s: use add "
                                      "and remove",
                                      i, rt->name);
        json_t *pathv = json_object_get(o, "path");
        json_t *value = json_object_get(o, "value");
        if (pathv != NULL && !json_is_string(pathv))
            return cloud_scim_err_set(err, 400, "invalidPath",
                                      "Operations[%zu].path is not a "
                                      "string",
                                      i);
        const char *path = json_string_value(pathv);
        if (strcmp(op, "remove") != 0 && value == NULL)
            return cloud_scim_err_set(err, 400, "invalidValue", "Operations[%zu] needs a value", i);
        if (path != NULL) {
            if (patch_path_op(rt, doc, op, path, value, true, lim, err) != 0)
                return -1;
            continue;
        }
        if (strcmp(op, "remove") == 0)
            return cloud_scim_err_set(err, 400, "noTarget", "remove needs a path");
        if (!json_is_object(value))
            return cloud_scim_err_set(err, 400, "invalidValue",
                                      "without a path the value must be an object");
        const char *vk;
        json_t *vv;
        json_object_foreach(value, vk, vv)
        {
            if (strcmp(vk, "schemas") == 0)
                continue;
            if (patch_path_op(rt, doc, op, vk, vv, false, lim, err) != 0)
                return -1;
        }
    }
    /* schemas follows the extension object's presence */
    json_t *sch = json_array();
    json_array_append_new(sch, json_string(rt->core->id));
    if (rt->ext != NULL && json_object_size(json_object_get(doc, rt->ext->id)) > 0)
        json_array_append_new(sch, json_string(rt->ext->id));
    else if (rt->ext != NULL)
        json_object_del(doc, rt->ext->id);
    json_object_set_new(doc, "schemas", sch);
    return 0;
}
