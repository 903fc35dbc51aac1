/* cloud_filter.c - SCIM filter and PATCH path parser and evaluator (RFC 7644 3.4.2.2, 3.5.2). */
#include "cloud/cloud_filter.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
    const char *s;
    size_t pos;
    int depth;
    char *err;
    size_t errlen;
    bool failed;
};

static void perr(struct parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void perr(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s at offset %zu", msg, p->pos);
}

static void skip_ws(struct parser *p)
{
    while (p->s[p->pos] == ' ')
        p->pos++;
}

static bool is_path_char(char c)
{
    return isalnum((unsigned char)c) || c == ':' || c == '.' || c == '_' || c == '-' || c == '$';
}

/* Case-insensitive keyword followed by a non-path character. */
static bool accept_kw(struct parser *p, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(p->s + p->pos, kw, n) != 0)
        return false;
    char next = p->s[p->pos + n];
    if (is_path_char(next) || next == '"')
        return false;
    p->pos += n;
    return true;
}

static bool valid_name(const char *s)
{
    if (strcmp(s, "$ref") == 0)
        return true;
    if (!isalpha((unsigned char)s[0]))
        return false;
    for (const char *q = s + 1; *q != '\0'; q++) {
        if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_')
            return false;
    }
    return true;
}

/* Split an attrPath token ([URI ":"] ATTRNAME ["." subAttr]) into parts. */
static int split_path(const char *tok, size_t len, char **uri, char **attr, char **sub,
                      bool allow_sub)
{
    *uri = *attr = *sub = NULL;
    char *t = strndup(tok, len);
    if (t == NULL)
        return -1;
    char *rest = t;
    if (strncasecmp(t, "urn:", 4) == 0) {
        char *colon = strrchr(t, ':');
        *colon = '\0';
        *uri = strdup(t);
        rest = colon + 1;
    }
    char *dot = strchr(rest, '.');
    if (dot != NULL) {
        *dot = '\0';
        if (!allow_sub || !valid_name(dot + 1) || strchr(dot + 1, '.') != NULL)
            goto fail;
        *sub = strdup(dot + 1);
    }
    if (!valid_name(rest))
        goto fail;
    *attr = strdup(rest);
    free(t);
    return 0;
fail:
    free(t);
    free(*uri);
    free(*sub);
    *uri = *sub = NULL;
    return -1;
}

static struct cloud_filter *node_new(enum cloud_filter_op op)
{
    struct cloud_filter *f = calloc(1, sizeof(*f));
    if (f != NULL)
        f->op = op;
    return f;
}

void cloud_filter_free(struct cloud_filter *f)
{
    if (f == NULL)
        return;
    cloud_filter_free(f->left);
    cloud_filter_free(f->right);
    free(f->uri);
    free(f->attr);
    free(f->sub);
    json_decref(f->value);
    free(f);
}

/* compValue = false / null / true / number / string, decoded by jansson. */
static json_t *parse_value(struct parser *p)
{
    const char *start = p->s + p->pos;
    size_t len = 0;
    if (*start == '"') {
        len = 1;
        for (;;) {
            char c = start[len];
            if (c == '\0') {
                perr(p, "unterminated string");
                return NULL;
            }
            if (c == '\\') {
                if (start[len + 1] == '\0') {
                    perr(p, "unterminated string");
                    return NULL;
                }
                len += 2;
                continue;
            }
            len++;
            if (c == '"')
                break;
        }
    } else {
        while (start[len] != '\0' && start[len] != ' ' && start[len] != ')' && start[len] != ']')
            len++;
    }
    if (len == 0) {
        perr(p, "comparison value expected");
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(start, len, JSON_DECODE_ANY, &jerr);
    if (v == NULL || json_is_object(v) || json_is_array(v)) {
        json_decref(v);
        perr(p, "invalid comparison value (%s)", v == NULL ? jerr.text : "not a scalar");
        return NULL;
    }
    p->pos += len;
    return v;
}

static struct cloud_filter *parse_or(struct parser *p, bool in_value);

static struct cloud_filter *parse_group(struct parser *p, bool in_value)
{
    /* at '(' */
    p->pos++;
    if (++p->depth > CLOUD_FILTER_MAX_DEPTH) {
        perr(p, "filter nested too deeply");
        return NULL;
    }
    skip_ws(p);
    struct cloud_filter *f = parse_or(p, in_value);
    if (f == NULL)
        return NULL;
    skip_ws(p);
    if (p->s[p->pos] != ')') {
        perr(p, "')' expected");
        cloud_filter_free(f);
        return NULL;
    }
    p->pos++;
    p->depth--;
    return f;
}

static struct cloud_filter *parse_attr_exp(struct parser *p, bool in_value)
{
    size_t start = p->pos;
    while (is_path_char(p->s[p->pos]))
        p->pos++;
    if (p->pos == start) {
        perr(p, "attribute path expected");
        return NULL;
    }
    struct cloud_filter *f = node_new(CLOUD_FILTER_EQ);
    if (f == NULL) {
        perr(p, "out of memory");
        return NULL;
    }
    if (split_path(p->s + start, p->pos - start, &f->uri, &f->attr, &f->sub, true) != 0) {
        p->pos = start;
        perr(p, "invalid attribute path");
        cloud_filter_free(f);
        return NULL;
    }
    if (p->s[p->pos] == '[') {
        if (in_value || f->sub != NULL) {
            perr(p, "nested value filter not allowed");
            cloud_filter_free(f);
            return NULL;
        }
        p->pos++;
        if (++p->depth > CLOUD_FILTER_MAX_DEPTH) {
            perr(p, "filter nested too deeply");
            cloud_filter_free(f);
            return NULL;
        }
        skip_ws(p);
        f->op = CLOUD_FILTER_VALUE_PATH;
        f->left = parse_or(p, true);
        if (f->left == NULL) {
            cloud_filter_free(f);
            return NULL;
        }
        skip_ws(p);
        if (p->s[p->pos] != ']') {
            perr(p, "']' expected");
            cloud_filter_free(f);
            return NULL;
        }
        p->pos++;
        p->depth--;
        return f;
    }
    if (p->s[p->pos] != ' ') {
        perr(p, "operator expected");
        cloud_filter_free(f);
        return NULL;
    }
    skip_ws(p);
    static const struct {
        const char *kw;
        enum cloud_filter_op op;
    } ops[] = {{"eq", CLOUD_FILTER_EQ}, {"ne", CLOUD_FILTER_NE}, {"co", CLOUD_FILTER_CO},
               {"sw", CLOUD_FILTER_SW}, {"ew", CLOUD_FILTER_EW}, {"pr", CLOUD_FILTER_PR},
               {"gt", CLOUD_FILTER_GT}, {"ge", CLOUD_FILTER_GE}, {"lt", CLOUD_FILTER_LT},
               {"le", CLOUD_FILTER_LE}};
    size_t i;
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (accept_kw(p, ops[i].kw))
            break;
    }
    if (i == sizeof(ops) / sizeof(ops[0])) {
        perr(p, "unknown operator");
        cloud_filter_free(f);
        return NULL;
    }
    f->op = ops[i].op;
    if (f->op == CLOUD_FILTER_PR)
        return f;
    if (p->s[p->pos] != ' ') {
        perr(p, "comparison value expected");
        cloud_filter_free(f);
        return NULL;
    }
    skip_ws(p);
    f->value = parse_value(p);
    if (f->value == NULL) {
        cloud_filter_free(f);
        return NULL;
    }
    return f;
}

static struct cloud_filter *parse_unary(struct parser *p, bool in_value)
{
    skip_ws(p);
    if (accept_kw(p, "not")) {
        skip_ws(p);
        if (p->s[p->pos] != '(') {
            perr(p, "'(' expected after not");
            return NULL;
        }
        struct cloud_filter *inner = parse_group(p, in_value);
        if (inner == NULL)
            return NULL;
        struct cloud_filter *f = node_new(CLOUD_FILTER_NOT);
        if (f == NULL) {
            cloud_filter_free(inner);
            perr(p, "out of memory");
            return NULL;
        }
        f->left = inner;
        return f;
    }
    if (p->s[p->pos] == '(')
        return parse_group(p, in_value);
    return parse_attr_exp(p, in_value);
}

static struct cloud_filter *parse_binary(struct parser *p, bool in_value, bool is_or)
{
    struct cloud_filter *left = is_or ? parse_binary(p, in_value, false) : parse_unary(p, in_value);
    if (left == NULL)
        return NULL;
    for (;;) {
        size_t save = p->pos;
        if (p->s[p->pos] != ' ')
            return left;
        skip_ws(p);
        if (!accept_kw(p, is_or ? "or" : "and")) {
            p->pos = save;
            return left;
        }
        if (p->s[p->pos] != ' ') {
            perr(p, "filter expected after logical operator");
            cloud_filter_free(left);
            return NULL;
        }
        struct cloud_filter *right =
            is_or ? parse_binary(p, in_value, false) : parse_unary(p, in_value);
        if (right == NULL) {
            cloud_filter_free(left);
            return NULL;
        }
        struct cloud_filter *f = node_new(is_or ? CLOUD_FILTER_OR : CLOUD_FILTER_AND);
        if (f == NULL) {
            cloud_filter_free(left);
            cloud_filter_free(right);
            perr(p, "out of memory");
            return NULL;
        }
        f->left = left;
        f->right = right;
        left = f;
    }
}

static struct cloud_filter *parse_or(struct parser *p, bool in_value)
{
    return parse_binary(p, in_value, true);
}

int cloud_filter_parse(const char *text, struct cloud_filter **out, char *err, size_t errlen)
{
    *out = NULL;
    struct parser p = {.s = text, .err = err, .errlen = errlen};
    if (strlen(text) > CLOUD_FILTER_MAX_LEN) {
        snprintf(err, errlen, "filter longer than %d bytes", CLOUD_FILTER_MAX_LEN);
        return -1;
    }
    struct cloud_filter *f = parse_or(&p, false);
    if (f == NULL) {
        if (!p.failed)
            perr(&p, "invalid filter");
        return -1;
    }
    skip_ws(&p);
    if (p.s[p.pos] != '\0') {
        perr(&p, "unexpected text");
        cloud_filter_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

/* --- binding ----------------------------------------------------------------------------- */

static bool is_stringish(enum cloud_attr_type t)
{
    return t == CLOUD_T_STRING || t == CLOUD_T_REFERENCE || t == CLOUD_T_DATETIME ||
           t == CLOUD_T_BINARY;
}

/* The attribute a comparison looks at: the sub-attribute, or "value" of a complex attribute. */
static const struct cloud_attr_def *target_def(const struct cloud_attr_ref *r)
{
    if (r->sub != NULL)
        return r->sub;
    if (r->attr->type == CLOUD_T_COMPLEX)
        return cloud_schema_find(r->attr->subs, r->attr->nsubs, "value");
    return r->attr;
}

static int check_comparison(struct cloud_filter *f, struct cloud_scim_err *err)
{
    if (f->op == CLOUD_FILTER_PR)
        return 0;
    const struct cloud_attr_def *d = target_def(&f->ref);
    if (d == NULL)
        return cloud_scim_err_set(err, 400, "invalidFilter",
                                  "'%s' is complex; name a sub-attribute to compare", f->attr);
    const json_t *v = f->value;
    bool ordering = f->op == CLOUD_FILTER_GT || f->op == CLOUD_FILTER_GE ||
                    f->op == CLOUD_FILTER_LT || f->op == CLOUD_FILTER_LE;
    bool substring =
        f->op == CLOUD_FILTER_CO || f->op == CLOUD_FILTER_SW || f->op == CLOUD_FILTER_EW;
    if (json_is_null(v)) {
        if (f->op != CLOUD_FILTER_EQ && f->op != CLOUD_FILTER_NE)
            return cloud_scim_err_set(err, 400, "invalidFilter", "null only compares with eq/ne");
        return 0;
    }
    if (d->type == CLOUD_T_BOOLEAN) {
        if (!json_is_boolean(v) || ordering || substring)
            return cloud_scim_err_set(err, 400, "invalidFilter",
                                      "'%s' is boolean: use eq/ne with true or false", d->name);
        return 0;
    }
    if (d->type == CLOUD_T_INTEGER || d->type == CLOUD_T_DECIMAL) {
        if (!json_is_number(v) || substring)
            return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' is numeric", d->name);
        return 0;
    }
    if (is_stringish(d->type)) {
        if (!json_is_string(v))
            return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' compares with a string",
                                      d->name);
        if (d->type == CLOUD_T_BINARY && ordering)
            return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' is binary", d->name);
        if (d->type == CLOUD_T_DATETIME && !substring &&
            !cloud_schema_parse_datetime(json_string_value(v), NULL))
            return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' is not a dateTime",
                                      json_string_value(v));
        return 0;
    }
    return cloud_scim_err_set(err, 400, "invalidFilter", "cannot compare '%s'", d->name);
}

static int bind_node(struct cloud_filter *f, const struct cloud_rtype_def *rt,
                     const struct cloud_attr_def *values_of, struct cloud_scim_err *err)
{
    switch (f->op) {
    case CLOUD_FILTER_AND:
    case CLOUD_FILTER_OR:
        if (bind_node(f->left, rt, values_of, err) != 0)
            return -1;
        return bind_node(f->right, rt, values_of, err);
    case CLOUD_FILTER_NOT:
        return bind_node(f->left, rt, values_of, err);
    default:
        break;
    }
    memset(&f->ref, 0, sizeof(f->ref));
    if (values_of != NULL) {
        if (f->uri != NULL || f->sub != NULL)
            return cloud_scim_err_set(err, 400, "invalidFilter",
                                      "value filter paths name sub-attributes of '%s'",
                                      values_of->name);
        f->ref.attr = cloud_schema_find(values_of->subs, values_of->nsubs, f->attr);
        if (f->ref.attr == NULL)
            return cloud_scim_err_set(err, 400, "invalidFilter", "unknown sub-attribute '%s.%s'",
                                      values_of->name, f->attr);
    } else {
        if (cloud_schema_resolve(rt, f->uri, f->attr, f->sub, &f->ref, err) != 0) {
            err->scim_type = "invalidFilter";
            return -1;
        }
    }
    if (f->op == CLOUD_FILTER_VALUE_PATH) {
        if (f->ref.attr->type != CLOUD_T_COMPLEX || f->ref.sub != NULL)
            return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' is not a complex attribute",
                                      f->attr);
        return bind_node(f->left, rt, f->ref.attr, err);
    }
    return check_comparison(f, err);
}

int cloud_filter_bind(struct cloud_filter *f, const struct cloud_rtype_def *rt,
                      struct cloud_scim_err *err)
{
    return bind_node(f, rt, NULL, err);
}

int cloud_filter_bind_values(struct cloud_filter *f, const struct cloud_attr_def *def,
                             struct cloud_scim_err *err)
{
    if (def->type != CLOUD_T_COMPLEX)
        return cloud_scim_err_set(err, 400, "invalidFilter", "'%s' is not complex", def->name);
    return bind_node(f, NULL, def, err);
}

int cloud_filter_eq_only(const struct cloud_filter *f, struct cloud_scim_err *err)
{
    static const char *const names[] = {
        [CLOUD_FILTER_EQ] = "eq",   [CLOUD_FILTER_NE] = "ne",        [CLOUD_FILTER_CO] = "co",
        [CLOUD_FILTER_SW] = "sw",   [CLOUD_FILTER_EW] = "ew",        [CLOUD_FILTER_PR] = "pr",
        [CLOUD_FILTER_GT] = "gt",   [CLOUD_FILTER_GE] = "ge",        [CLOUD_FILTER_LT] = "lt",
        [CLOUD_FILTER_LE] = "le",   [CLOUD_FILTER_AND] = "and",      [CLOUD_FILTER_OR] = "or",
        [CLOUD_FILTER_NOT] = "not", [CLOUD_FILTER_VALUE_PATH] = "[]"};
    if (f->op == CLOUD_FILTER_AND)
        return cloud_filter_eq_only(f->left, err) == 0 ? cloud_filter_eq_only(f->right, err) : -1;
    if (f->op == CLOUD_FILTER_EQ)
        return 0;
    if (f->op == CLOUD_FILTER_VALUE_PATH)
        return cloud_scim_err_set(err, 400, "invalidFilter",
                                  "the value filter '%s[...]' is not supported: only eq "
                                  "comparisons joined by and",
                                  f->attr);
    return cloud_scim_err_set(err, 400, "invalidFilter",
                              "the operator '%s' is not supported: only eq comparisons joined "
                              "by and",
                              names[f->op]);
}

/* --- evaluation -------------------------------------------------------------------------- */

static int cmp_str(const char *a, const char *b, bool case_exact)
{
    return case_exact ? strcmp(a, b) : strcasecmp(a, b);
}

static bool str_op(enum cloud_filter_op op, const char *a, const char *b, bool case_exact)
{
    size_t la = strlen(a), lb = strlen(b);
    int (*ncmp)(const char *, const char *, size_t) = case_exact ? strncmp : strncasecmp;
    switch (op) {
    case CLOUD_FILTER_CO:
        if (lb > la)
            return false;
        for (size_t i = 0; i + lb <= la; i++) {
            if (ncmp(a + i, b, lb) == 0)
                return true;
        }
        return false;
    case CLOUD_FILTER_SW:
        return lb <= la && ncmp(a, b, lb) == 0;
    case CLOUD_FILTER_EW:
        return lb <= la && ncmp(a + la - lb, b, lb) == 0;
    default:
        return false;
    }
}

/* Compare one stored value x with the filter value; returns the comparison for op. */
static bool compare_one(const struct cloud_filter *f, const struct cloud_attr_def *d,
                        const json_t *x)
{
    const json_t *v = f->value;
    if (json_is_null(x))
        return false;
    int c = 0;
    if (d->type == CLOUD_T_BOOLEAN) {
        if (!json_is_boolean(x) || !json_is_boolean(v))
            return false;
        c = json_is_true(x) == json_is_true(v) ? 0 : 1;
    } else if (d->type == CLOUD_T_INTEGER || d->type == CLOUD_T_DECIMAL) {
        if (!json_is_number(x) || !json_is_number(v))
            return false;
        double a = json_number_value(x), b = json_number_value(v);
        c = a < b ? -1 : (a > b ? 1 : 0);
    } else {
        if (!json_is_string(x) || !json_is_string(v))
            return false;
        const char *a = json_string_value(x), *b = json_string_value(v);
        if (f->op == CLOUD_FILTER_CO || f->op == CLOUD_FILTER_SW || f->op == CLOUD_FILTER_EW)
            return str_op(f->op, a, b, d->case_exact);
        long long ta, tb;
        if (d->type == CLOUD_T_DATETIME && cloud_schema_parse_datetime(a, &ta) &&
            cloud_schema_parse_datetime(b, &tb))
            c = ta < tb ? -1 : (ta > tb ? 1 : 0);
        else
            c = cmp_str(a, b, d->case_exact);
    }
    switch (f->op) {
    case CLOUD_FILTER_EQ:
        return c == 0;
    case CLOUD_FILTER_GT:
        return c > 0;
    case CLOUD_FILTER_GE:
        return c >= 0;
    case CLOUD_FILTER_LT:
        return c < 0;
    case CLOUD_FILTER_LE:
        return c <= 0;
    default:
        return false;
    }
}

static bool present(const json_t *x)
{
    if (x == NULL || json_is_null(x))
        return false;
    if (json_is_string(x))
        return json_string_length(x) > 0;
    if (json_is_array(x))
        return json_array_size(x) > 0;
    if (json_is_object(x))
        return json_object_size(x) > 0;
    return true;
}

/* The attribute value the reference points at in obj (NULL if absent). */
static const json_t *ref_value(const struct cloud_attr_ref *r, const json_t *obj)
{
    const json_t *container = obj;
    if (r->ext != NULL)
        container = json_object_get(obj, r->ext->id);
    if (!json_is_object(container))
        return NULL;
    return json_object_get(container, r->attr->name);
}

/* Does any candidate value satisfy pred(f, d, x)? Walks multi-valued and complex values. */
static bool any_value(const struct cloud_filter *f, const json_t *obj,
                      bool (*pred)(const struct cloud_filter *, const struct cloud_attr_def *,
                                   const json_t *))
{
    const json_t *v = ref_value(&f->ref, obj);
    if (v == NULL)
        return false;
    const struct cloud_attr_def *d = target_def(&f->ref);
    const char *subname = NULL;
    if (f->ref.attr->type == CLOUD_T_COMPLEX)
        subname = f->ref.sub != NULL ? f->ref.sub->name : "value";
    if (json_is_array(v)) {
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            const json_t *x = subname != NULL ? json_object_get(el, subname) : el;
            if (x != NULL && pred(f, d, x))
                return true;
        }
        return false;
    }
    if (subname != NULL) {
        if (f->op == CLOUD_FILTER_PR && f->ref.sub == NULL)
            return pred(f, d, v);
        v = json_object_get(v, subname);
        if (v == NULL)
            return false;
    }
    return pred(f, d, v);
}

static bool pred_present(const struct cloud_filter *f, const struct cloud_attr_def *d,
                         const json_t *x)
{
    (void)f;
    (void)d;
    return present(x);
}

static bool pred_compare(const struct cloud_filter *f, const struct cloud_attr_def *d,
                         const json_t *x)
{
    return compare_one(f, d, x);
}

static bool pred_eq(const struct cloud_filter *f, const struct cloud_attr_def *d, const json_t *x)
{
    struct cloud_filter g = *f;
    g.op = CLOUD_FILTER_EQ;
    return compare_one(&g, d, x);
}

bool cloud_filter_match(const struct cloud_filter *f, const json_t *obj)
{
    switch (f->op) {
    case CLOUD_FILTER_AND:
        return cloud_filter_match(f->left, obj) && cloud_filter_match(f->right, obj);
    case CLOUD_FILTER_OR:
        return cloud_filter_match(f->left, obj) || cloud_filter_match(f->right, obj);
    case CLOUD_FILTER_NOT:
        return !cloud_filter_match(f->left, obj);
    case CLOUD_FILTER_VALUE_PATH: {
        const json_t *v = ref_value(&f->ref, obj);
        if (json_is_object(v))
            return cloud_filter_match(f->left, v);
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            if (json_is_object(el) && cloud_filter_match(f->left, el))
                return true;
        }
        return false;
    }
    case CLOUD_FILTER_PR:
        if (f->ref.sub == NULL)
            return present(ref_value(&f->ref, obj));
        return any_value(f, obj, pred_present);
    case CLOUD_FILTER_EQ:
        if (json_is_null(f->value))
            return !present(ref_value(&f->ref, obj));
        return any_value(f, obj, pred_compare);
    case CLOUD_FILTER_NE:
        if (json_is_null(f->value))
            return present(ref_value(&f->ref, obj));
        return !any_value(f, obj, pred_eq);
    default:
        return any_value(f, obj, pred_compare);
    }
}

/* --- PATCH paths ------------------------------------------------------------------------- */

void cloud_patch_path_clear(struct cloud_patch_path *p)
{
    free(p->uri);
    free(p->attr);
    free(p->sub);
    cloud_filter_free(p->filter);
    memset(p, 0, sizeof(*p));
}

int cloud_patch_path_parse(const char *text, struct cloud_patch_path *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct parser p = {.s = text, .err = err, .errlen = errlen};
    if (strlen(text) > CLOUD_FILTER_MAX_LEN) {
        snprintf(err, errlen, "path longer than %d bytes", CLOUD_FILTER_MAX_LEN);
        return -1;
    }
    while (is_path_char(p.s[p.pos]))
        p.pos++;
    if (p.pos == 0) {
        perr(&p, "attribute path expected");
        return -1;
    }
    bool has_filter = p.s[p.pos] == '[';
    if (split_path(text, p.pos, &out->uri, &out->attr, &out->sub, !has_filter) != 0) {
        size_t at = p.pos;
        p.pos = 0;
        perr(&p, "invalid attribute path '%.*s'", (int)at, text);
        return -1;
    }
    if (has_filter) {
        p.pos++;
        skip_ws(&p);
        out->filter = parse_or(&p, true);
        if (out->filter == NULL) {
            cloud_patch_path_clear(out);
            return -1;
        }
        skip_ws(&p);
        if (p.s[p.pos] != ']') {
            perr(&p, "']' expected");
            cloud_patch_path_clear(out);
            return -1;
        }
        p.pos++;
        if (p.s[p.pos] == '.') {
            p.pos++;
            size_t start = p.pos;
            while (isalnum((unsigned char)p.s[p.pos]) || p.s[p.pos] == '_' || p.s[p.pos] == '-' ||
                   p.s[p.pos] == '$')
                p.pos++;
            char *sub = strndup(p.s + start, p.pos - start);
            if (sub == NULL || !valid_name(sub)) {
                free(sub);
                perr(&p, "invalid sub-attribute");
                cloud_patch_path_clear(out);
                return -1;
            }
            out->sub = sub;
        }
    }
    if (p.s[p.pos] != '\0') {
        perr(&p, "unexpected text in path");
        cloud_patch_path_clear(out);
        return -1;
    }
    return 0;
}
