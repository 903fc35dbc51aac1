/* cloud_patch.c - SCIM PATCH applied to a resource document (RFC 7644 3.5.2). */
#include "cloud/cloud_patch.h"

#include <stdbool.h>
#include <stdlib.h>
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

/*
 * Hash keys that mirror the comparisons above, so that a PATCH touching m values of an
 * attribute with n values costs O(n + m), not O(n * m) (a large group's members).
 * elem_key: a key equal for two values exactly when json_equal says so ("s" + the string,
 * else "j" + the canonical JSON text). NULL when out of memory.
 */
static char *elem_key(const json_t *v)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        char *k = malloc(n + 2);
        if (k == NULL)
            return NULL;
        k[0] = 's';
        memcpy(k + 1, json_string_value(v), n);
        k[n + 1] = '\0';
        /* a string with a NUL inside: the canonical text, which escapes it */
        if (memchr(json_string_value(v), '\0', n) == NULL)
            return k;
        free(k);
    }
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    if (t == NULL)
        return NULL;
    size_t n = strlen(t);
    char *k = malloc(n + 2);
    if (k != NULL) {
        k[0] = 'j';
        memcpy(k + 1, t, n + 1);
    }
    free(t);
    return k;
}

/*
 * The index of arr for same_element (complex values, keyed by their "value") or json_equal
 * (simple values): an object whose keys are elem_key of the values that have a key; values of
 * a complex attribute without "value" are not indexed (*unkeyed is set: compare those one by
 * one). NULL when out of memory.
 */
static json_t *index_of(const json_t *arr, bool complex, bool *unkeyed)
{
    json_t *idx = json_object();
    size_t i;
    json_t *el;
    *unkeyed = false;
    json_array_foreach(arr, i, el)
    {
        const json_t *k = complex ? json_object_get(el, "value") : el;
        if (k == NULL) {
            *unkeyed = true;
            continue;
        }
        char *key = elem_key(k);
        if (key == NULL || idx == NULL) {
            free(key);
            json_decref(idx);
            return NULL;
        }
        json_object_set_new_nocheck(idx, key, json_true());
        free(key);
    }
    return idx;
}

/* Whether v is in idx (built by index_of over values of the same kind). -1: out of memory. */
static int index_has(const json_t *idx, const json_t *v, bool complex)
{
    const json_t *k = complex ? json_object_get(v, "value") : v;
    if (k == NULL)
        return 0;
    char *key = elem_key(k);
    if (key == NULL)
        return -1;
    int hit = json_object_get(idx, key) != NULL;
    free(key);
    return hit;
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
            /* same_element(e, v): the "value"s compare when both have one, else the whole
             * values; an element with "value" never equals a value without, and back */
            bool unkeyed;
            json_t *idx = index_of(vals, true, &unkeyed);
            json_t *keep = json_array();
            int rc = idx != NULL && keep != NULL ? 0 : -1;
            size_t i;
            json_t *e;
            json_array_foreach(cur, i, e)
            {
                if (rc != 0)
                    break;
                int hit = 0;
                if (json_object_get(e, "value") != NULL) {
                    hit = index_has(idx, e, true);
                } else if (unkeyed) {
                    size_t j;
                    json_t *v;
                    json_array_foreach(vals, j, v) hit = hit || same_element(e, v);
                }
                if (hit < 0)
                    rc = -1;
                else if (!hit)
                    json_array_append(keep, e);
            }
            json_decref(idx);
            json_decref(wrapped);
            if (rc != 0) {
                json_decref(keep);
                return cloud_scim_err_set(err, 500, NULL, "out of memory");
            }
            if (json_array_size(keep) == 0) {
                json_decref(keep);
                json_object_del(container, key);
            } else if (json_array_size(keep) != json_array_size(cur)) {
                json_object_set_new(container, key, keep);
            } else {
                json_decref(keep);
            }
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
        bool complex = attr->type == CLOUD_T_COMPLEX, unkeyed;
        json_t *idx = index_of(cur, complex, &unkeyed);
        int rc = idx != NULL ? 0 : -1;
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            if (rc != 0)
                break;
            int dup;
            if (!complex || json_object_get(v, "value") != NULL) {
                dup = index_has(idx, v, complex);
            } else {
                /* a complex value without "value": compared whole, one by one */
                dup = 0;
                size_t j;
                json_t *e;
                json_array_foreach(cur, j, e) dup = dup || same_element(e, v);
            }
            if (dup < 0) {
                rc = -1;
            } else if (!dup) {
                json_array_append(cur, v);
                const json_t *k = complex ? json_object_get(v, "value") : v;
                char *key = k != NULL ? elem_key(k) : NULL;
                if (key != NULL)
                    json_object_set_new_nocheck(idx, key, json_true());
                else if (k != NULL)
                    rc = -1;
                free(key);
            }
        }
        json_decref(idx);
        json_decref(vals);
        if (rc != 0)
            return cloud_scim_err_set(err, 500, NULL, "out of memory");
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

/*
 * A run of "remove" operations whose paths are attr[value eq "<string>"] (how a client takes
 * members out of a group, one operation each) is applied as one pass over attr's values:
 * sequentially each operation would scan every value, O(n * m). The result is the same: a
 * value leaves when one of the filters matches it (compare_one of cloud_filter.c: strings
 * compared with strcmp, or strcasecmp when "value" is not caseExact; a value that is not a
 * string never matches), and the attribute goes when no value is left.
 */
struct remove_run {
    const struct cloud_attr_def *attr; /* NULL: no run pending */
    bool case_exact;
    json_t *keys; /* object: the filters' strings (lower-cased unless case_exact) */
};

/* The key of string s in a run: s itself, or lower-cased (ASCII, as strcasecmp in the C
 * locale). Caller frees. */
static char *run_key(const char *s, bool case_exact)
{
    char *k = strdup(s);
    if (k != NULL && !case_exact) {
        for (char *p = k; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    return k;
}

/*
 * Whether op/path is a removal of the run's shape; on success *attr and *key (caller frees)
 * are set. Anything else (another shape, or an error that patch_path_op will report) is not.
 */
static bool run_candidate(const struct cloud_rtype_def *rt, const char *op, const char *path,
                          const struct cloud_attr_def **attr, char **key, bool *case_exact)
{
    if (strcmp(op, "remove") != 0 || path == NULL ||
        (rt->ext != NULL && strcasecmp(path, rt->ext->id) == 0))
        return false;
    struct cloud_patch_path pp;
    char msg[256];
    if (cloud_patch_path_parse(path, &pp, msg, sizeof(msg)) != 0)
        return false;
    bool ok = false;
    struct cloud_attr_ref ref;
    struct cloud_scim_err e = {0};
    const struct cloud_attr_def *vd = NULL;
    if (pp.filter != NULL && pp.sub == NULL && pp.filter->op == CLOUD_FILTER_EQ &&
        json_is_string(pp.filter->value) &&
        cloud_schema_resolve(rt, pp.uri, pp.attr, NULL, &ref, &e) == 0 && ref.ext == NULL &&
        ref.attr->multi && ref.attr->type == CLOUD_T_COMPLEX &&
        ref.attr->mutability != CLOUD_M_READONLY &&
        cloud_filter_bind_values(pp.filter, ref.attr, &e) == 0 &&
        (vd = cloud_schema_find(ref.attr->subs, ref.attr->nsubs, "value")) != NULL &&
        pp.filter->ref.attr == vd && pp.filter->ref.sub == NULL && vd->type == CLOUD_T_STRING &&
        !vd->multi) {
        *attr = ref.attr;
        *case_exact = vd->case_exact;
        *key = run_key(json_string_value(pp.filter->value), vd->case_exact);
        ok = *key != NULL;
    }
    cloud_patch_path_clear(&pp);
    return ok;
}

/* End the pending run without applying it (the PATCH failed); returns rc. */
static int run_abort(struct remove_run *run, int rc)
{
    json_decref(run->keys);
    run->keys = NULL;
    run->attr = NULL;
    return rc;
}

/* Apply the pending run to doc and end it. */
static void run_flush(json_t *doc, struct remove_run *run)
{
    if (run->attr == NULL)
        return;
    json_t *cur = json_object_get(doc, run->attr->name);
    if (json_is_array(cur)) {
        json_t *keep = json_array();
        size_t i;
        json_t *el;
        json_array_foreach(cur, i, el)
        {
            const json_t *v = json_object_get(el, "value");
            bool hit = false;
            if (json_is_string(v)) {
                char *k = run_key(json_string_value(v), run->case_exact);
                hit = k != NULL && json_object_get(run->keys, k) != NULL;
                free(k);
            }
            if (!hit)
                json_array_append(keep, el);
        }
        if (json_array_size(keep) == 0)
            json_object_del(doc, run->attr->name);
        else if (json_array_size(keep) != json_array_size(cur))
            json_object_set(doc, run->attr->name, keep);
        json_decref(keep);
    }
    json_decref(run->keys);
    run->keys = NULL;
    run->attr = NULL;
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
    struct remove_run run = {0};
    json_array_foreach(ops, i, o)
    {
        if (!json_is_object(o))
            return run_abort(&run, cloud_scim_err_set(err, 400, "invalidSyntax",
                                                      "Operations[%zu] is not an object", i));
        json_object_foreach(o, k, v)
        {
            if (strcmp(k, "op") != 0 && strcmp(k, "path") != 0 && strcmp(k, "value") != 0)
                return run_abort(&run, cloud_scim_err_set(err, 400, "invalidSyntax",
                                                          "unknown member '%s' in Operations[%zu]",
                                                          k, i));
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
            return run_abort(
                &run, cloud_scim_err_set(err, 400, "invalidSyntax",
                                         "Operations[%zu].op must be add, remove or replace", i));
        if (lim != NULL && lim->no_replace && strcmp(op, "replace") == 0)
            return run_abort(&run, cloud_scim_err_set(
                                       err, 400, "invalidSyntax",
                                       "Operations[%zu]: replace is not supported for %s: use add "
                                       "and remove",
                                       i, rt->name));
        json_t *pathv = json_object_get(o, "path");
        json_t *value = json_object_get(o, "value");
        if (pathv != NULL && !json_is_string(pathv))
            return run_abort(&run, cloud_scim_err_set(err, 400, "invalidPath",
                                                      "Operations[%zu].path is not a "
                                                      "string",
                                                      i));
        const char *path = json_string_value(pathv);
        if (strcmp(op, "remove") != 0 && value == NULL)
            return run_abort(&run, cloud_scim_err_set(err, 400, "invalidValue",
                                                      "Operations[%zu] needs a value", i));
        const struct cloud_attr_def *rattr;
        char *rkey;
        bool rexact;
        if (run_candidate(rt, op, path, &rattr, &rkey, &rexact)) {
            if (run.attr != rattr)
                run_flush(doc, &run);
            if (run.attr == NULL) {
                run.attr = rattr;
                run.case_exact = rexact;
                run.keys = json_object();
            }
            json_object_set_new_nocheck(run.keys, rkey, json_true());
            free(rkey);
            continue;
        }
        run_flush(doc, &run);
        if (path != NULL) {
            if (patch_path_op(rt, doc, op, path, value, true, lim, err) != 0)
                return run_abort(&run, -1);
            continue;
        }
        if (strcmp(op, "remove") == 0)
            return run_abort(&run, cloud_scim_err_set(err, 400, "noTarget", "remove needs a path"));
        if (!json_is_object(value))
            return run_abort(&run,
                             cloud_scim_err_set(err, 400, "invalidValue",
                                                "without a path the value must be an object"));
        const char *vk;
        json_t *vv;
        json_object_foreach(value, vk, vv)
        {
            if (strcmp(vk, "schemas") == 0)
                continue;
            if (patch_path_op(rt, doc, op, vk, vv, false, lim, err) != 0)
                return run_abort(&run, -1);
        }
    }
    run_flush(doc, &run);
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
