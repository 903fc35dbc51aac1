/*
 * cloud_filter.h - SCIM filter expressions and PATCH paths (RFC 7644 3.4.2.2, 3.5.2).
 *
 * The filter grammar of RFC 7644 3.4.2.2 has no library, so this module
 * parses it by recursive descent (precedence: not > and > or; parentheses;
 * valuePath "attr[filter]"). Comparison values are decoded by jansson (JSON
 * string escapes, numbers, UTF-8 validation). Parsing knows no schema;
 * cloud_filter_bind() then resolves every attribute path against a resource
 * type and checks that operators and values suit the attribute types.
 *
 * Memory: every parse result is owned by the caller and freed with
 * cloud_filter_free() / cloud_patch_path_clear().
 */
#ifndef DIRCONN_CLOUD_FILTER_H
#define DIRCONN_CLOUD_FILTER_H

#include "cloud/cloud_schema.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Filter node kinds; the comparison operators are those of RFC 7644 table 3. */
enum cloud_filter_op {
    CLOUD_FILTER_EQ,
    CLOUD_FILTER_NE,
    CLOUD_FILTER_CO,
    CLOUD_FILTER_SW,
    CLOUD_FILTER_EW,
    CLOUD_FILTER_PR,
    CLOUD_FILTER_GT,
    CLOUD_FILTER_GE,
    CLOUD_FILTER_LT,
    CLOUD_FILTER_LE,
    CLOUD_FILTER_AND,
    CLOUD_FILTER_OR,
    CLOUD_FILTER_NOT,
    CLOUD_FILTER_VALUE_PATH /* attr[left] */
};

/* One node of a parsed filter. */
struct cloud_filter {
    enum cloud_filter_op op;
    char *uri;     /* schema URN prefix of the attribute path, or NULL */
    char *attr;    /* attribute name (comparisons, PR, VALUE_PATH) */
    char *sub;     /* sub-attribute name or NULL */
    json_t *value; /* comparison value (string, number, true, false, null) */
    struct cloud_filter *left, *right;
    struct cloud_attr_ref ref; /* filled by cloud_filter_bind */
};

/* Longest filter text accepted, in bytes, and deepest nesting. */
#define CLOUD_FILTER_MAX_LEN   8192
#define CLOUD_FILTER_MAX_DEPTH 32

/*
 * cloud_filter_parse - parse text (NUL-terminated) into *out.
 * Returns 0, or -1 with a one-line reason in err (errlen bytes) for syntax
 * errors, text longer than CLOUD_FILTER_MAX_LEN or nesting deeper than
 * CLOUD_FILTER_MAX_DEPTH (callers answer 400 invalidFilter).
 */
int cloud_filter_parse(const char *text, struct cloud_filter **out, char *err, size_t errlen);

/* cloud_filter_free - free a tree from cloud_filter_parse; NULL is fine. */
void cloud_filter_free(struct cloud_filter *f);

/*
 * cloud_filter_bind - resolve attribute paths of f against rt and check the
 * operator and value types (gt/lt on booleans, co on numbers ... are errors).
 * Returns 0, or -1 with err (400 invalidFilter).
 */
int cloud_filter_bind(struct cloud_filter *f, const struct cloud_rtype_def *rt,
                      struct cloud_scim_err *err);

/*
 * cloud_filter_bind_values - bind f as the value filter of a multi-valued
 * complex attribute def (paths name its sub-attributes), as in
 * emails[type eq "work"] or members[value eq "..."].
 */
int cloud_filter_bind_values(struct cloud_filter *f, const struct cloud_attr_def *def,
                             struct cloud_scim_err *err);

/*
 * cloud_filter_eq_only - whether f (parsed; bound or not) is made only of eq comparisons
 * joined by and, the filters some providers limit themselves to (AWS IAM Identity Center;
 * dirconn-cloud --filter-eq-only). Parentheses are fine. Returns 0, or -1 with err filled:
 * 400 invalidFilter naming the first other operator met (ne, co, sw, ew, pr, gt, ge, lt, le,
 * or, not, a value filter "attr[...]"), RFC 7644 3.12 ("the specified attribute and filter
 * comparison combination is not supported").
 */
int cloud_filter_eq_only(const struct cloud_filter *f, struct cloud_scim_err *err);

/* cloud_filter_match - evaluate a bound filter against a resource (or element) object. */
bool cloud_filter_match(const struct cloud_filter *f, const json_t *obj);

/* A PATCH path: attrPath, or valuePath with an optional ".subAttr" (RFC 7644 3.5.2). */
struct cloud_patch_path {
    char *uri;                   /* schema URN prefix or NULL */
    char *attr;                  /* attribute name */
    char *sub;                   /* sub-attribute or NULL */
    struct cloud_filter *filter; /* value filter or NULL */
};

/*
 * cloud_patch_path_parse - parse a PATCH "path" into *out (zeroed first).
 * Returns 0, or -1 with err (callers answer 400 invalidPath).
 */
int cloud_patch_path_parse(const char *text, struct cloud_patch_path *out, char *err,
                           size_t errlen);

/* cloud_patch_path_clear - free what cloud_patch_path_parse allocated. */
void cloud_patch_path_clear(struct cloud_patch_path *p);

#endif
