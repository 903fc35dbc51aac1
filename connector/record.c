/* record.c - the canonical record: hash, leaves, PATCH operations, projection, PUT overlay. */
#include "connector/record.h"
#include "connector/core/digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void record_hash(const char *canonical, char hex[RECORD_HASH_LEN])
{
    digest_sha256_hex(NULL, canonical, strlen(canonical), hex);
}

static bool same_name(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcasecmp(a, b) == 0;
}

bool record_scope_has(const struct record_scope *scope, const char *attr, const char *type,
                      const char *sub)
{
    if (scope == NULL)
        return true;
    for (size_t i = 0; i < scope->n; i++) {
        const struct record_path *p = &scope->paths[i];
        if (!same_name(p->attr, attr) || !same_name(p->type, type))
            continue;
        if (p->sub == NULL || same_name(p->sub, sub))
            return true;
    }
    return false;
}

char *record_filter_string(const char *s)
{
    json_t *str = json_string(s);
    char *out = str != NULL ? json_dumps(str, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(str);
    return out;
}

/* ---- leaves ---------------------------------------------------------------------------------- */

struct leaf {
    char *attr;       /* as spelled; URN-qualified inside an extension */
    const char *type; /* of the typed value, or NULL (borrowed from the resource) */
    const char *sub;  /* or NULL (borrowed) */
    json_t *value;    /* borrowed */
    json_t *element;  /* the typed value, borrowed, or NULL */
    bool ext_complex; /* a sub-attribute of an extension's complex attribute (manager) */
};

struct leaves {
    struct leaf *v;
    size_t n, cap;
    bool oom;
};

static void leaves_free(struct leaves *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].attr);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static bool skip_key(const char *key)
{
    return strcasecmp(key, "schemas") == 0 || strcasecmp(key, "id") == 0 ||
           strcasecmp(key, "meta") == 0 || strcasecmp(key, "groups") == 0 ||
           strcasecmp(key, "members") == 0 || strncmp(key, "dirconn:", 8) == 0;
}

static bool is_urn(const char *key)
{
    return strncasecmp(key, "urn:", 4) == 0;
}

static void leaf_add(struct leaves *l, const struct record_scope *scope, const char *attr,
                     size_t attr_len, const char *attr2, const char *type, const char *sub,
                     json_t *value, json_t *element, bool ext_complex)
{
    if (l->oom || json_is_null(value))
        return;
    size_t len = attr_len + (attr2 != NULL ? strlen(attr2) + 1 : 0);
    char *name = malloc(len + 1);
    if (name == NULL) {
        l->oom = true;
        return;
    }
    memcpy(name, attr, attr_len);
    name[attr_len] = '\0';
    if (attr2 != NULL) {
        name[attr_len] = ':';
        strcpy(name + attr_len + 1, attr2);
    }
    if (!record_scope_has(scope, name, type, sub)) {
        free(name);
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct leaf *g = realloc(l->v, cap * sizeof(*g));
        if (g == NULL) {
            free(name);
            l->oom = true;
            return;
        }
        l->v = g;
        l->cap = cap;
    }
    l->v[l->n++] = (struct leaf){name, type, sub, value, element, ext_complex};
}

static bool all_objects(const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_object(v))
            return false;
    }
    return json_array_size(a) > 0;
}

static const char *type_of(const json_t *element)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)element, k, v)
    {
        if (strcasecmp(k, "type") == 0)
            return json_string_value(v);
    }
    return NULL;
}

/* The leaves of resource that are in scope. */
static void collect(const json_t *res, const struct record_scope *scope, struct leaves *out)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)res, key, val)
    {
        if (skip_key(key))
            continue;
        size_t klen = strlen(key);
        if (is_urn(key) && json_is_object(val)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(val, k2, v2)
            {
                if (json_is_object(v2)) {
                    const char *sk;
                    json_t *sv;
                    json_object_foreach(v2, sk, sv)
                        leaf_add(out, scope, key, klen, k2, NULL, sk, sv, NULL, true);
                } else {
                    leaf_add(out, scope, key, klen, k2, NULL, NULL, v2, NULL, false);
                }
            }
        } else if (json_is_array(val) && all_objects(val)) {
            size_t i;
            json_t *el;
            json_array_foreach(val, i, el)
            {
                const char *t = type_of(el);
                const char *sk;
                json_t *sv;
                json_object_foreach(el, sk, sv)
                {
                    if (strcasecmp(sk, "type") != 0)
                        leaf_add(out, scope, key, klen, NULL, t, sk, sv, el, false);
                }
            }
        } else if (json_is_object(val)) {
            const char *sk;
            json_t *sv;
            json_object_foreach(val, sk, sv)
                leaf_add(out, scope, key, klen, NULL, NULL, sk, sv, NULL, false);
        } else if (!json_is_array(val) || json_array_size(val) > 0) {
            leaf_add(out, scope, key, klen, NULL, NULL, NULL, val, NULL, false);
        }
    }
}

static const struct leaf *find_leaf(const struct leaves *l, const char *attr, const char *type,
                                    const char *sub)
{
    for (size_t i = 0; i < l->n; i++) {
        if (same_name(l->v[i].attr, attr) && same_name(l->v[i].type, type) &&
            same_name(l->v[i].sub, sub))
            return &l->v[i];
    }
    return NULL;
}

/* Whether l holds a typed value (attr, type); the first leaf of it, or NULL. */
static const struct leaf *find_element(const struct leaves *l, const char *attr, const char *type)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].element != NULL && same_name(l->v[i].attr, attr) &&
            same_name(l->v[i].type, type))
            return &l->v[i];
    }
    return NULL;
}

static const struct leaf *find_attr(const struct leaves *l, const char *attr)
{
    for (size_t i = 0; i < l->n; i++) {
        if (same_name(l->v[i].attr, attr))
            return &l->v[i];
    }
    return NULL;
}

/* ---- PATCH operations ------------------------------------------------------------------------ */

/* "attr[type eq "t"]" (+ ".sub"), or "attr" (+ ".sub"). */
static char *path_of(const char *attr, const char *type, const char *sub, bool typed)
{
    char *t = typed ? record_filter_string(type != NULL ? type : "") : NULL;
    if (typed && t == NULL)
        return NULL;
    size_t len = strlen(attr) + (t ? strlen(t) + 10 : 0) + (sub ? strlen(sub) + 1 : 0) + 1;
    char *p = malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s%s%s%s%s%s", attr, t ? "[type eq " : "", t ? t : "", t ? "]" : "",
                 sub ? "." : "", sub ? sub : "");
    free(t);
    return p;
}

static bool add_op(json_t *ops, const char *op, char *path, json_t *value)
{
    if (path == NULL) {
        json_decref(value);
        return false;
    }
    json_t *o = value != NULL ? json_pack("{s:s, s:s, s:o}", "op", op, "path", path, "value", value)
                              : json_pack("{s:s, s:s}", "op", op, "path", path);
    free(path);
    return o != NULL && json_array_append_new(ops, o) == 0;
}

static bool is_immutable(const struct record_patch_rules *rules, const char *attr)
{
    for (size_t i = 0; rules != NULL && rules->immutable != NULL && rules->immutable[i]; i++)
        if (strcasecmp(rules->immutable[i], attr) == 0)
            return true;
    return false;
}

/* Whether the typed value holds sub-attributes out of scope (then it is never removed whole). */
static bool element_has_foreign(const json_t *element, const char *attr, const char *type,
                                const struct record_scope *scope)
{
    const char *sk;
    json_t *sv;
    json_object_foreach((json_t *)element, sk, sv)
    {
        if (strcasecmp(sk, "type") != 0 && !json_is_null(sv) &&
            !record_scope_has(scope, attr, type, sk))
            return true;
    }
    return false;
}

/* The object of an extension complex attribute from its leaves in l. */
static json_t *ext_object(const struct leaves *l, const char *attr)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < l->n; i++)
        if (l->v[i].ext_complex && same_name(l->v[i].attr, attr))
            json_object_set(o, l->v[i].sub, l->v[i].value);
    return o;
}

static bool ext_differs(const struct leaves *was, const struct leaves *now, const char *attr)
{
    for (size_t i = 0; i < now->n; i++) {
        const struct leaf *n = &now->v[i];
        if (!n->ext_complex || !same_name(n->attr, attr))
            continue;
        const struct leaf *w = find_leaf(was, attr, NULL, n->sub);
        if (w == NULL || !json_equal(w->value, n->value))
            return true;
    }
    for (size_t i = 0; i < was->n; i++) {
        const struct leaf *w = &was->v[i];
        if (w->ext_complex && same_name(w->attr, attr) &&
            find_leaf(now, attr, NULL, w->sub) == NULL)
            return true;
    }
    return false;
}

/* The sub-attribute "value" of a typed value (case-insensitive), or NULL. */
static json_t *element_value(const json_t *element)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)element, k, v)
    {
        if (strcasecmp(k, "value") == 0)
            return v;
    }
    return NULL;
}

/* Whether leaf i of l is the first leaf of its typed value. */
static bool first_of_element(const struct leaves *l, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (l->v[j].element == l->v[i].element)
            return false;
    return true;
}

/* How many typed values of (attr, type) l holds. */
static size_t count_elements(const struct leaves *l, const char *attr, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].element != NULL && same_name(l->v[i].attr, attr) &&
            same_name(l->v[i].type, type) && first_of_element(l, i))
            n++;
    return n;
}

/*
 * Several values of one type (emails of type "other" from proxyAddresses,
 * phoneNumbers of type "other"): the type alone does not name one of them,
 * so they are told apart by their "value" (RFC 7644 3.5.2 value filters).
 */
static bool multi_typed(const struct leaves *w, const struct leaves *n, const char *attr,
                        const char *type)
{
    return type != NULL && (count_elements(w, attr, type) > 1 || count_elements(n, attr, type) > 1);
}

/* The typed value of (attr, type) in l whose "value" equals value, or NULL. */
static const json_t *find_valued(const struct leaves *l, const char *attr, const char *type,
                                 const json_t *value)
{
    for (size_t i = 0; value != NULL && i < l->n; i++) {
        const struct leaf *x = &l->v[i];
        if (x->element != NULL && same_name(x->attr, attr) && same_name(x->type, type) &&
            json_equal(element_value(x->element), value))
            return x->element;
    }
    return NULL;
}

/* "attr[type eq "t" and value eq V]" (RFC 7644 3.5.2 valuePath), V as a JSON value. */
static char *path_of_value(const char *attr, const char *type, const json_t *value)
{
    char *t = record_filter_string(type);
    char *v = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
    char *p = NULL;
    if (t != NULL && v != NULL) {
        size_t len = strlen(attr) + strlen(t) + strlen(v) + 32;
        if ((p = malloc(len)) != NULL)
            snprintf(p, len, "%s[type eq %s and value eq %s]", attr, t, v);
    }
    free(t);
    free(v);
    return p;
}

/*
 * The operations for the typed values of (attr, type) when one side holds
 * several: "remove" of each value `now` lacks at
 * attr[type eq "t" and value eq "v"], "add" at attr of each value `was`
 * lacks. A value whose other sub-attributes changed is removed and added.
 */
static bool multi_ops(const struct leaves *w, const struct leaves *n, const char *attr,
                      const char *type, json_t *removes, json_t *adds)
{
    bool ok = true;
    for (size_t i = 0; ok && i < w->n; i++) {
        const struct leaf *x = &w->v[i];
        if (x->element == NULL || !same_name(x->attr, attr) || !same_name(x->type, type) ||
            !first_of_element(w, i))
            continue;
        const json_t *v = element_value(x->element);
        const json_t *m = find_valued(n, attr, type, v);
        if (v != NULL && (m == NULL || !json_equal(m, x->element)))
            ok = add_op(removes, "remove", path_of_value(attr, type, v), NULL);
    }
    for (size_t i = 0; ok && i < n->n; i++) {
        const struct leaf *x = &n->v[i];
        if (x->element == NULL || !same_name(x->attr, attr) || !same_name(x->type, type) ||
            !first_of_element(n, i))
            continue;
        const json_t *m = find_valued(w, attr, type, element_value(x->element));
        if (m == NULL || !json_equal(m, x->element))
            ok =
                add_op(adds, "add", path_of(attr, NULL, NULL, false), json_pack("[O]", x->element));
    }
    return ok;
}

json_t *record_patch_ops(const json_t *was, const json_t *now, const struct record_scope *scope,
                         const struct record_patch_rules *rules)
{
    struct leaves w = {0}, n = {0};
    if (was != NULL)
        collect(was, scope, &w);
    if (now != NULL)
        collect(now, scope, &n);
    json_t *removes = json_array(), *sets = json_array(), *subs = json_array(),
           *adds = json_array();
    bool ok = !w.oom && !n.oom && removes && sets && subs && adds;
    const char *set_op = rules != NULL && rules->set_with_add ? "add" : "replace";

    /* What `was` holds and `now` does not. */
    for (size_t i = 0; ok && i < w.n; i++) {
        const struct leaf *x = &w.v[i];
        if (is_immutable(rules, x->attr))
            continue;
        if (x->element != NULL && multi_typed(&w, &n, x->attr, x->type)) {
            if (find_element(&w, x->attr, x->type) == x)
                ok = multi_ops(&w, &n, x->attr, x->type, removes, adds);
            continue;
        }
        if (x->element != NULL) {
            if (find_element(&n, x->attr, x->type) != NULL) {
                if (find_leaf(&n, x->attr, x->type, x->sub) == NULL)
                    ok = add_op(removes, "remove", path_of(x->attr, x->type, x->sub, true), NULL);
                continue;
            }
            if (x->type == NULL)
                continue; /* a value without a type cannot be addressed by it: not ours */
            /* the whole value once (at its first leaf), unless it holds values that are not ours */
            if (element_has_foreign(x->element, x->attr, x->type, scope))
                ok = add_op(removes, "remove", path_of(x->attr, x->type, x->sub, true), NULL);
            else if (find_element(&w, x->attr, x->type) == x)
                ok = add_op(removes, "remove", path_of(x->attr, x->type, NULL, true), NULL);
            continue;
        }
        if (x->ext_complex) {
            if (find_attr(&n, x->attr) == NULL && find_attr(&w, x->attr) == x)
                ok = add_op(removes, "remove", path_of(x->attr, NULL, NULL, false), NULL);
            continue;
        }
        if (find_leaf(&n, x->attr, NULL, x->sub) == NULL)
            ok = add_op(removes, "remove", path_of(x->attr, NULL, x->sub, false), NULL);
    }
    /* What `now` holds and `was` does not, or holds differently. */
    for (size_t i = 0; ok && i < n.n; i++) {
        const struct leaf *x = &n.v[i];
        if (is_immutable(rules, x->attr))
            continue;
        if (x->element != NULL && multi_typed(&w, &n, x->attr, x->type)) {
            if (find_element(&w, x->attr, x->type) == NULL &&
                find_element(&n, x->attr, x->type) == x)
                ok = multi_ops(&w, &n, x->attr, x->type, removes, adds);
            continue;
        }
        if (x->element != NULL) {
            if (x->type == NULL)
                continue;
            if (find_element(&w, x->attr, x->type) == NULL) {
                if (find_element(&n, x->attr, x->type) == x)
                    ok = add_op(adds, "add", path_of(x->attr, NULL, NULL, false),
                                json_pack("[O]", x->element));
                continue;
            }
            const struct leaf *y = find_leaf(&w, x->attr, x->type, x->sub);
            if (y == NULL || !json_equal(y->value, x->value))
                ok = add_op(subs, "replace", path_of(x->attr, x->type, x->sub, true),
                            json_incref(x->value));
            continue;
        }
        if (x->ext_complex) {
            if (find_attr(&n, x->attr) == x && ext_differs(&w, &n, x->attr))
                ok = add_op(sets, set_op, path_of(x->attr, NULL, NULL, false),
                            ext_object(&n, x->attr));
            continue;
        }
        const struct leaf *y = find_leaf(&w, x->attr, NULL, x->sub);
        if (y == NULL || !json_equal(y->value, x->value))
            ok = add_op(sets, set_op, path_of(x->attr, NULL, x->sub, false), json_incref(x->value));
    }
    json_t *ops = NULL;
    if (ok && json_array_extend(removes, sets) == 0 && json_array_extend(removes, subs) == 0 &&
        json_array_extend(removes, adds) == 0)
        ops = json_incref(removes);
    json_decref(removes);
    json_decref(sets);
    json_decref(subs);
    json_decref(adds);
    leaves_free(&w);
    leaves_free(&n);
    return ops;
}

/* ---- members, projection --------------------------------------------------------------------- */

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *record_member_ids(const json_t *resource)
{
    const json_t *members = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)resource, k, v)
    {
        if (strcasecmp(k, "members") == 0)
            members = v;
    }
    size_t n = json_array_size(members), m = 0;
    json_t **vals = calloc(n > 0 ? n : 1, sizeof(*vals));
    json_t *out = json_array();
    if (vals == NULL || out == NULL) {
        free(vals);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_object_get(json_array_get(members, i), "value");
        if (json_is_string(id))
            vals[m++] = id;
    }
    qsort(vals, m, sizeof(*vals), cmp_json_str);
    for (size_t i = 0; i < m; i++)
        if (i == 0 || strcmp(json_string_value(vals[i]), json_string_value(vals[i - 1])) != 0)
            json_array_append(out, vals[i]);
    free(vals);
    return out;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    for (char *p = d; p != NULL && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

bool record_projection_hash(const json_t *resource, const struct record_scope *scope, bool members,
                            char hex[RECORD_HASH_LEN])
{
    struct leaves l = {0};
    if (resource != NULL)
        collect(resource, scope, &l);
    size_t n = l.n + 1;
    char **lines = calloc(n, sizeof(char *));
    bool ok = !l.oom && lines != NULL;
    size_t m = 0;
    for (size_t i = 0; ok && i < l.n; i++) {
        const struct leaf *x = &l.v[i];
        char *a = lower_dup(x->attr), *t = lower_dup(x->type), *s = lower_dup(x->sub);
        char *v = json_dumps(x->value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        size_t len = (a ? strlen(a) : 0) + (t ? strlen(t) : 0) + (s ? strlen(s) : 0) +
                     (v ? strlen(v) : 0) + 8;
        char *line = a && t && s && v ? malloc(len) : NULL;
        if (line != NULL) {
            snprintf(line, len, "%s\x1f%s\x1f%s=%s", a, t, s, v);
            lines[m++] = line;
        } else {
            ok = false;
        }
        free(a);
        free(t);
        free(s);
        free(v);
    }
    if (ok && members) {
        json_t *ids = resource != NULL ? record_member_ids(resource) : json_array();
        char *v = ids != NULL ? json_dumps(ids, JSON_COMPACT) : NULL;
        json_decref(ids);
        size_t len = v ? strlen(v) + 16 : 0;
        char *line = v != NULL ? malloc(len) : NULL;
        if (line != NULL) {
            snprintf(line, len, "members=%s", v);
            lines[m++] = line;
        } else {
            ok = false;
        }
        free(v);
    }
    if (ok) {
        qsort(lines, m, sizeof(char *), cmp_cstr);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
        for (size_t i = 0; ok && i < m; i++)
            ok = EVP_DigestUpdate(md, lines[i], strlen(lines[i]) + 1) == 1;
        ok = ok && digest_final_hex(md, hex);
        EVP_MD_CTX_free(md);
    }
    for (size_t i = 0; lines != NULL && i < m; i++)
        free(lines[i]);
    free(lines);
    leaves_free(&l);
    return ok;
}

/* ---- PUT overlay ----------------------------------------------------------------------------- */

/* The member of obj whose name is key, case-insensitively (its spelling in *actual). */
static json_t *get_ci(json_t *obj, const char *key, const char **actual)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, key) == 0) {
            if (actual != NULL)
                *actual = k;
            return v;
        }
    }
    return NULL;
}

/* Remove from out every leaf in scope (typed values that become empty go too). */
static void strip_scope(json_t *out, const struct record_scope *scope)
{
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(out, tmp, key, val)
    {
        if (skip_key(key))
            continue;
        if (is_urn(key) && json_is_object(val)) {
            const char *k2;
            json_t *v2;
            void *t2;
            json_object_foreach_safe(val, t2, k2, v2)
            {
                char name[512];
                snprintf(name, sizeof(name), "%s:%s", key, k2);
                if (json_is_object(v2)) {
                    const char *sk;
                    json_t *sv;
                    void *t3;
                    json_object_foreach_safe(v2, t3, sk, sv)
                    {
                        if (record_scope_has(scope, name, NULL, sk))
                            json_object_del(v2, sk);
                    }
                    if (json_object_size(v2) == 0)
                        json_object_del(val, k2);
                } else if (record_scope_has(scope, name, NULL, NULL)) {
                    json_object_del(val, k2);
                }
            }
            if (json_object_size(val) == 0)
                json_object_del(out, key);
        } else if (json_is_array(val) && all_objects(val)) {
            for (size_t i = json_array_size(val); i > 0; i--) {
                json_t *el = json_array_get(val, i - 1);
                const char *t = type_of(el);
                if (t == NULL)
                    continue;
                const char *sk;
                json_t *sv;
                void *t3;
                size_t left = 0;
                json_object_foreach_safe(el, t3, sk, sv)
                {
                    if (strcasecmp(sk, "type") == 0)
                        continue;
                    if (record_scope_has(scope, key, t, sk))
                        json_object_del(el, sk);
                    else if (strcasecmp(sk, "primary") != 0)
                        left++;
                }
                if (left == 0)
                    json_array_remove(val, i - 1);
            }
            if (json_array_size(val) == 0)
                json_object_del(out, key);
        } else if (json_is_object(val)) {
            const char *sk;
            json_t *sv;
            void *t3;
            json_object_foreach_safe(val, t3, sk, sv)
            {
                if (record_scope_has(scope, key, NULL, sk))
                    json_object_del(val, sk);
            }
            if (json_object_size(val) == 0)
                json_object_del(out, key);
        } else if (record_scope_has(scope, key, NULL, NULL)) {
            json_object_del(out, key);
        }
    }
}

/* Merge now's values into out (after strip_scope). */
static void merge_now(json_t *out, const json_t *now)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)now, key, val)
    {
        if (skip_key(key))
            continue;
        const char *have_key = NULL;
        json_t *have = get_ci(out, key, &have_key);
        if (is_urn(key) && json_is_object(val)) {
            if (!json_is_object(have)) {
                json_object_set_new(out, key, json_deep_copy(val));
                continue;
            }
            json_object_update(have, val);
        } else if (json_is_array(val) && all_objects(val)) {
            if (!json_is_array(have)) {
                json_object_set_new(out, key, json_deep_copy(val));
                continue;
            }
            /* Only the cloud's values are matched by type, each once: several values of one
             * type in now (aliases) stay several. */
            size_t i, n_have = json_array_size(have);
            json_t *el;
            bool *used = calloc(n_have + 1, sizeof(bool));
            if (used == NULL)
                continue;
            json_array_foreach(val, i, el)
            {
                const char *t = type_of(el);
                json_t *match = NULL;
                for (size_t j = 0; j < n_have && match == NULL; j++) {
                    json_t *e2 = json_array_get(have, j);
                    if (!used[j] && t != NULL && same_name(type_of(e2), t)) {
                        match = e2;
                        used[j] = true;
                    }
                }
                if (match != NULL)
                    json_object_update(match, el);
                else
                    json_array_append_new(have, json_deep_copy(el));
            }
            free(used);
        } else if (json_is_object(val) && json_is_object(have)) {
            json_object_update(have, val);
        } else {
            if (have_key != NULL && strcmp(have_key, key) != 0)
                json_object_del(out, have_key);
            json_object_set_new(out, key, json_deep_copy(val));
        }
    }
}

json_t *record_overlay(const json_t *cloud, const json_t *now, const struct record_scope *scope,
                       bool members)
{
    json_t *out = cloud != NULL ? json_deep_copy(cloud) : json_object();
    if (out == NULL)
        return NULL;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(out, tmp, k, v)
    {
        if (strcasecmp(k, "id") == 0 || strcasecmp(k, "meta") == 0 ||
            strcasecmp(k, "groups") == 0 || strcasecmp(k, "schemas") == 0 ||
            (members && strcasecmp(k, "members") == 0))
            json_object_del(out, k);
    }
    strip_scope(out, scope);
    merge_now(out, now);
    if (members) {
        json_t *m = get_ci((json_t *)now, "members", NULL);
        json_object_set_new(out, "members", m != NULL ? json_deep_copy(m) : json_array());
    }
    json_t *schemas = json_deep_copy(get_ci((json_t *)now, "schemas", NULL));
    if (!json_is_array(schemas)) {
        json_decref(schemas);
        schemas = json_array();
    }
    /* extension URNs the result still holds, and none it does not */
    for (size_t i = json_array_size(schemas); i > 0; i--) {
        const char *s = json_string_value(json_array_get(schemas, i - 1));
        if (i > 1 && s != NULL && !json_is_object(get_ci(out, s, NULL)))
            json_array_remove(schemas, i - 1);
    }
    json_object_foreach(out, k, v)
    {
        if (!is_urn(k) || !json_is_object(v))
            continue;
        bool listed = false;
        size_t i;
        json_t *s;
        json_array_foreach(schemas, i, s) listed = listed || same_name(json_string_value(s), k);
        if (!listed)
            json_array_append_new(schemas, json_string(k));
    }
    json_object_set_new(out, "schemas", schemas);
    return out;
}
