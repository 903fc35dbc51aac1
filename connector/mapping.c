/*
 * mapping.c - SCIM attribute paths, the expression language over directory
 * attributes, the default table, value validation and the record hash.
 * docs/mapping.md describes all of it for administrators.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "connector/mapping.h"
#include "connector/avatar.h"

#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- SCIM targets ---------------------------------------------------------------------------- */

#define K_USER    (1u << OBJECT_USER)
#define K_GROUP   (1u << OBJECT_GROUP)
#define K_CONTACT (1u << OBJECT_CONTACT)
#define K_ALL     (K_USER | K_GROUP | K_CONTACT)

enum value_type { VT_STRING = 0, VT_BOOL };
enum tgt_check { CHECK_NONE = 0, CHECK_EMAIL, CHECK_PHONE };
enum tgt_place {
    PL_TOP,     /* a top-level attribute */
    PL_NAME,    /* a sub-attribute of name */
    PL_EMAIL,   /* emails[type eq TYPE].value, primary */
    PL_PHONE,   /* phoneNumbers[type eq TYPE].value */
    PL_ADDR,    /* addresses[type eq TYPE].KEY */
    PL_ENT,     /* enterprise extension attribute */
    PL_MANAGER, /* enterprise manager: a DN for the plan stage */
};

struct target {
    const char *path;  /* canonical SCIM path (RFC 7644 3.10 attribute notation) */
    const char *alias; /* short form accepted in [mapping]; NULL = none */
    unsigned kinds;
    enum value_type vtype;
    enum tgt_check check;
    enum tgt_place place;
    const char *key;  /* JSON member name */
    const char *type; /* the "type" of a multi-valued element */
    bool multi;       /* several values of this type: every value of the attributes */
};

#define ENT MAPPING_SCHEMA_ENTERPRISE ":"
#define STR_TOP(p, kinds)                                                                          \
    {                                                                                              \
        p, NULL, kinds, VT_STRING, CHECK_NONE, PL_TOP, p, NULL, false                              \
    }
#define NAME_SUB(k)                                                                                \
    {                                                                                              \
        "name." k, NULL, K_USER, VT_STRING, CHECK_NONE, PL_NAME, k, NULL, false                    \
    }
#define PHONE(t)                                                                                   \
    {                                                                                              \
        "phoneNumbers[type eq \"" t "\"].value", "phoneNumbers." t, K_USER, VT_STRING,             \
            CHECK_PHONE, PL_PHONE, "value", t, false                                               \
    }
#define ADDR(t, k)                                                                                 \
    {                                                                                              \
        "addresses[type eq \"" t "\"]." k, "addresses." t "." k, K_USER, VT_STRING, CHECK_NONE,    \
            PL_ADDR, k, t, false                                                                   \
    }
#define ENTERPRISE(k)                                                                              \
    {                                                                                              \
        ENT k, "enterprise." k, K_USER, VT_STRING, CHECK_NONE, PL_ENT, k, NULL, false              \
    }

/* The order here is the order of values in multi-valued attributes (stable hashes). */
static const struct target targets[] = {
    STR_TOP("userName", K_USER),
    STR_TOP("externalId", K_ALL),
    {"active", NULL, K_USER, VT_BOOL, CHECK_NONE, PL_TOP, "active", NULL, false},
    STR_TOP("displayName", K_ALL),
    STR_TOP("nickName", K_USER),
    STR_TOP("title", K_USER),
    STR_TOP("userType", K_USER),
    STR_TOP("preferredLanguage", K_USER),
    STR_TOP("locale", K_USER),
    STR_TOP("timezone", K_USER),
    NAME_SUB("formatted"),
    NAME_SUB("familyName"),
    NAME_SUB("givenName"),
    NAME_SUB("middleName"),
    NAME_SUB("honorificPrefix"),
    NAME_SUB("honorificSuffix"),
    {"emails[type eq \"work\"].value", "emails.work", K_USER | K_CONTACT, VT_STRING, CHECK_EMAIL,
     PL_EMAIL, "value", "work", false},
    {"emails[type eq \"other\"].value", "emails.other", K_USER, VT_STRING, CHECK_EMAIL, PL_EMAIL,
     "value", "other", true},
    PHONE("work"),
    PHONE("mobile"),
    PHONE("fax"),
    PHONE("pager"),
    PHONE("home"),
    {"phoneNumbers[type eq \"other\"].value", "phoneNumbers.other", K_USER, VT_STRING, CHECK_PHONE,
     PL_PHONE, "value", "other", true},
    ADDR("work", "streetAddress"),
    ADDR("work", "locality"),
    ADDR("work", "region"),
    ADDR("work", "postalCode"),
    ADDR("work", "country"),
    ADDR("work", "formatted"),
    ADDR("other", "formatted"),
    ENTERPRISE("employeeNumber"),
    ENTERPRISE("costCenter"),
    ENTERPRISE("organization"),
    ENTERPRISE("division"),
    ENTERPRISE("department"),
    {ENT "manager", "enterprise.manager", K_USER, VT_STRING, CHECK_NONE, PL_MANAGER, "manager",
     NULL, false},
};
#define N_TARGETS (sizeof(targets) / sizeof(targets[0]))

/* The built-in table (docs/mapping.md, "Defaults"): the guide's attribute table in SCIM terms. */
struct default_rule {
    unsigned kinds;
    const char *path;
    const char *expression;
};

static const struct default_rule defaults[] = {
    {K_USER, "userName", "mail"},
    {K_ALL, "externalId", "id()"},
    {K_USER, "active", "active()"},
    {K_USER, "displayName", "displayName"},
    {K_GROUP | K_CONTACT, "displayName", "displayName | cn"},
    {K_USER, "name.givenName", "givenName"},
    {K_USER, "name.familyName", "sn"},
    {K_USER, "name.middleName", "initials"},
    {K_USER, "name.honorificSuffix", "generationQualifier"},
    {K_USER, "title", "title"},
    {K_USER, "userType", "employeeType"},
    {K_USER, "preferredLanguage", "preferredLanguage"},
    {K_USER | K_CONTACT, "emails.work", "mail"},
    {K_USER, "phoneNumbers.work", "telephoneNumber"},
    {K_USER, "phoneNumbers.mobile", "mobile"},
    {K_USER, "phoneNumbers.fax", "facsimileTelephoneNumber"},
    {K_USER, "phoneNumbers.pager", "pager"},
    {K_USER, "phoneNumbers.home", "homePhone"},
    {K_USER, "phoneNumbers.other", "otherTelephone | otherMobile | otherFacsimileTelephoneNumber"},
    {K_USER, "addresses.work.streetAddress", "streetAddress"},
    {K_USER, "addresses.work.locality", "l"},
    {K_USER, "addresses.work.region", "st"},
    {K_USER, "addresses.work.postalCode", "postalCode"},
    {K_USER, "addresses.work.country", "c"},
    {K_USER, "addresses.work.formatted", "streetAddress, l, st postalCode, co"},
    {K_USER, "addresses.other.formatted", "physicalDeliveryOfficeName"},
    {K_USER, "enterprise.employeeNumber", "employeeNumber | employeeID"},
    {K_USER, "enterprise.organization", "company | o"},
    {K_USER, "enterprise.division", "division"},
    {K_USER, "enterprise.department", "department"},
    {K_USER, "enterprise.manager", "manager"},
};
#define N_DEFAULTS (sizeof(defaults) / sizeof(defaults[0]))

/* ---- expressions ----------------------------------------------------------------------------- */

enum part_kind { PART_ATTR, PART_SEP, PART_CONST, PART_FUNC };
enum fn { FN_ID, FN_DN, FN_ACTIVE };

struct fn_def {
    const char *name;
    enum fn fn;
    enum value_type vtype;
    const char *const *reads; /* directory attributes it reads */
};

static const char *const reads_id[] = {"objectGUID", "entryUUID", NULL};
static const char *const reads_none[] = {NULL};
static const char *const reads_active[] = {"userAccountControl", "msDS-UserAccountDisabled", NULL};

static const struct fn_def functions[] = {
    {"id", FN_ID, VT_STRING, reads_id},
    {"dn", FN_DN, VT_STRING, reads_none},
    {"active", FN_ACTIVE, VT_BOOL, reads_active},
};
#define N_FUNCTIONS (sizeof(functions) / sizeof(functions[0]))

struct part {
    enum part_kind kind;
    char *text; /* attribute name, separator or constant text; NULL for a function */
    const struct fn_def *fn;
};

/* One alternative: terms (attributes, constants, functions) with separators between them. */
struct alt {
    struct part *parts;
    size_t n;
    size_t n_vars; /* terms that can be absent (attributes, functions) */
};

struct expr {
    struct alt *alts; /* tried in order; the first present one gives the value */
    size_t n;
    enum value_type vtype;
};

struct rule {
    bool set; /* the target is mapped */
    struct expr expr;
};

struct mapping {
    enum object_kind kind;
    struct rule rules[N_TARGETS];
    char **attrs; /* NULL-terminated */
    size_t n_attrs;
    char **required; /* users: directory attributes without which a user is skipped */
    size_t n_required;
    struct avatar *avatar;
    pcre2_code *email_re;
    pcre2_code *phone_re;
    struct mapping_target mapped[N_TARGETS + 1]; /* mapping_targets, built at compile */
    size_t n_mapped;
    bool proxy_addresses; /* users: [users] sync_proxy_addresses */
    char **accepted;      /* [users] accepted_domains; none = the domain of the user's mail */
    size_t n_accepted;
};

static void expr_clear(struct expr *x)
{
    for (size_t i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->alts[i].n; j++)
            free(x->alts[i].parts[j].text);
        free(x->alts[i].parts);
    }
    free(x->alts);
    memset(x, 0, sizeof(*x));
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t';
}
static bool is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static bool is_name_char(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-';
}

static bool alt_push(struct alt *a, enum part_kind kind, char *text, const struct fn_def *fn)
{
    struct part *v = realloc(a->parts, (a->n + 1) * sizeof(*v));
    if (v == NULL) {
        free(text);
        return false;
    }
    a->parts = v;
    a->parts[a->n++] = (struct part){kind, text, fn};
    if (kind == PART_ATTR || kind == PART_FUNC)
        a->n_vars++;
    return true;
}

/*
 * Parse one alternative (s, len) into a. Returns false with why set (why[0]
 * == '\0' means out of memory).
 */
static bool parse_alt(const char *s, size_t len, struct alt *a, char *why, size_t why_len)
{
    why[0] = '\0';
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            /* A quoted constant: \" and \\ are the only escapes. */
            char *text = malloc(len - i + 1);
            if (text == NULL)
                return false;
            size_t n = 0;
            i++;
            bool closed = false;
            while (i < len) {
                if (s[i] == '\\') {
                    if (i + 1 < len && (s[i + 1] == '"' || s[i + 1] == '\\')) {
                        text[n++] = s[i + 1];
                        i += 2;
                        continue;
                    }
                    free(text);
                    snprintf(
                        why, why_len,
                        "unknown escape in a quoted constant (only \\\" and \\\\ are escapes)");
                    return false;
                }
                if (s[i] == '"') {
                    closed = true;
                    i++;
                    break;
                }
                text[n++] = s[i++];
            }
            text[n] = '\0';
            if (!closed) {
                free(text);
                snprintf(why, why_len, "unterminated quoted constant");
                return false;
            }
            if (!alt_push(a, PART_CONST, text, NULL))
                return false;
        } else if (is_alpha((unsigned char)c)) {
            size_t start = i;
            while (i < len && is_name_char((unsigned char)s[i]))
                i++;
            size_t name_len = i - start;
            if (i < len && s[i] == '(') {
                size_t close = i + 1;
                while (close < len && s[close] != ')')
                    close++;
                if (close >= len) {
                    snprintf(why, why_len, "'%.*s(' is not closed with ')'", (int)name_len,
                             s + start);
                    return false;
                }
                const struct fn_def *fn = NULL;
                for (size_t k = 0; k < N_FUNCTIONS; k++) {
                    if (strlen(functions[k].name) == name_len &&
                        strncasecmp(functions[k].name, s + start, name_len) == 0)
                        fn = &functions[k];
                }
                if (fn == NULL) {
                    snprintf(why, why_len,
                             "unknown function '%.*s()'; the functions are id(), dn() and "
                             "active()",
                             (int)name_len, s + start);
                    return false;
                }
                for (size_t k = i + 1; k < close; k++) {
                    if (!is_space((unsigned char)s[k])) {
                        snprintf(why, why_len, "%s() takes no argument", fn->name);
                        return false;
                    }
                }
                if (!alt_push(a, PART_FUNC, NULL, fn))
                    return false;
                i = close + 1;
            } else {
                char *name = strndup(s + start, name_len);
                if (name == NULL || !alt_push(a, PART_ATTR, name, NULL))
                    return false;
            }
        } else {
            /* Literal separator text: everything up to the next name or quote. */
            size_t start = i;
            while (i < len && s[i] != '"' && !is_alpha((unsigned char)s[i]))
                i++;
            char *text = strndup(s + start, i - start);
            if (text == NULL || !alt_push(a, PART_SEP, text, NULL))
                return false;
        }
    }
    /* White space next to a quoted constant is layout, not text. */
    for (size_t k = 0; k < a->n; k++) {
        struct part *p = &a->parts[k];
        if (p->kind != PART_SEP)
            continue;
        if (k + 1 < a->n && a->parts[k + 1].kind == PART_CONST) {
            size_t n = strlen(p->text);
            while (n > 0 && is_space((unsigned char)p->text[n - 1]))
                p->text[--n] = '\0';
        }
        if (k > 0 && a->parts[k - 1].kind == PART_CONST) {
            size_t skip = strspn(p->text, " \t");
            memmove(p->text, p->text + skip, strlen(p->text + skip) + 1);
        }
    }
    for (size_t k = 0; k < a->n; k++) {
        const struct part *p = &a->parts[k];
        struct ldap_value v = {p->text, p->text != NULL ? strlen(p->text) : 0};
        if (p->text != NULL && !ldap_value_is_text(&v)) {
            snprintf(why, why_len, "literal text must be UTF-8 without control characters");
            return false;
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < a->n; k++) {
        if (a->parts[k].kind == PART_SEP && a->parts[k].text[0] == '\0') {
            free(a->parts[k].text);
            continue;
        }
        a->parts[w++] = a->parts[k];
    }
    a->n = w;
    if (a->n > 0 && (a->parts[0].kind == PART_SEP || a->parts[a->n - 1].kind == PART_SEP)) {
        const char *t = a->parts[0].kind == PART_SEP ? a->parts[0].text : a->parts[a->n - 1].text;
        snprintf(why, why_len,
                 "literal text '%s' must stand between two attributes; quote text at the start "
                 "or end (\"...\")",
                 t);
        return false;
    }
    return true;
}

/* Parse an expression. Returns false with why set (why[0] == '\0': out of memory). */
static bool parse_expr(const char *src, struct expr *x, char *why, size_t why_len)
{
    memset(x, 0, sizeof(*x));
    why[0] = '\0';
    size_t len = strlen(src);
    size_t start = 0;
    bool in_quote = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && in_quote && src[i] == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (i < len && src[i] == '"')
            in_quote = !in_quote;
        if (i < len && (in_quote || src[i] != '|'))
            continue;
        /* One alternative: src[start, i), trimmed. */
        size_t a = start, b = i;
        while (a < b && is_space((unsigned char)src[a]))
            a++;
        while (b > a && is_space((unsigned char)src[b - 1]))
            b--;
        if (a == b) {
            snprintf(why, why_len, "empty alternative: '|' needs an expression on both sides");
            expr_clear(x);
            return false;
        }
        struct alt *v = realloc(x->alts, (x->n + 1) * sizeof(*v));
        if (v == NULL) {
            expr_clear(x);
            return false;
        }
        x->alts = v;
        memset(&x->alts[x->n], 0, sizeof(x->alts[x->n]));
        x->n++;
        if (!parse_alt(src + a, b - a, &x->alts[x->n - 1], why, why_len)) {
            expr_clear(x);
            return false;
        }
        start = i + 1;
    }
    /* A function that gives true/false stands alone. */
    for (size_t i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->alts[i].n; j++) {
            const struct part *p = &x->alts[i].parts[j];
            if (p->kind == PART_FUNC && p->fn->vtype == VT_BOOL) {
                if (x->n != 1 || x->alts[i].n != 1) {
                    snprintf(why, why_len,
                             "%s() gives true or false and cannot be combined with other terms",
                             p->fn->name);
                    expr_clear(x);
                    return false;
                }
                x->vtype = VT_BOOL;
            }
        }
    }
    return true;
}

/* Whether x is a lone constant "true" or "false" (for boolean targets). */
static bool expr_bool_constant(const struct expr *x, bool *value)
{
    if (x->n != 1 || x->alts[0].n != 1 || x->alts[0].parts[0].kind != PART_CONST)
        return false;
    const char *t = x->alts[0].parts[0].text;
    if (strcasecmp(t, "true") == 0)
        *value = true;
    else if (strcasecmp(t, "false") == 0)
        *value = false;
    else
        return false;
    return true;
}

/* ---- compiling a mapping --------------------------------------------------------------------- */

static const char *kind_name(enum object_kind kind)
{
    switch (kind) {
    case OBJECT_GROUP:
        return "groups";
    case OBJECT_CONTACT:
        return "contacts";
    default:
        return "users";
    }
}

/*
 * A value path (RFC 7644 3.10 valuePath) in the form the targets are named
 * in: 'attr[type eq "T"]' with any white space inside the brackets, and an
 * optional ".sub"; without one, the value's main sub-attribute ("value";
 * "formatted" for addresses). Into out; false when path is not of that form.
 */
static bool canonical_value_path(const char *path, char *out, size_t out_len)
{
    const char *open = strchr(path, '[');
    if (open == NULL || open == path)
        return false;
    const char *p = open + 1;
    p += strspn(p, " \t");
    if (strncasecmp(p, "type", 4) != 0 || !is_space((unsigned char)p[4]))
        return false;
    p += 4 + strspn(p + 4, " \t");
    if (strncasecmp(p, "eq", 2) != 0 || !is_space((unsigned char)p[2]))
        return false;
    p += 2 + strspn(p + 2, " \t");
    if (*p != '"')
        return false;
    const char *type = ++p;
    while (*p != '\0' && *p != '"')
        p++;
    if (*p != '"')
        return false;
    size_t type_len = (size_t)(p - type);
    p++;
    p += strspn(p, " \t");
    if (*p != ']')
        return false;
    p++;
    size_t attr_len = (size_t)(open - path);
    const char *sub = NULL;
    if (*p == '.')
        sub = p + 1;
    else if (*p != '\0')
        return false;
    else
        sub = attr_len == 9 && strncasecmp(path, "addresses", 9) == 0 ? "formatted" : "value";
    int n = snprintf(out, out_len, "%.*s[type eq \"%.*s\"].%s", (int)attr_len, path, (int)type_len,
                     type, sub);
    return n > 0 && (size_t)n < out_len;
}

static const struct target *find_target(const char *path, size_t *index)
{
    char canon[256];
    if (strchr(path, '[') != NULL && canonical_value_path(path, canon, sizeof(canon)))
        path = canon;
    for (size_t i = 0; i < N_TARGETS; i++) {
        if (strcasecmp(targets[i].path, path) == 0 ||
            (targets[i].alias != NULL && strcasecmp(targets[i].alias, path) == 0)) {
            *index = i;
            return &targets[i];
        }
    }
    return NULL;
}

/* Whether the target is required for the kind (cannot be unmapped). */
static bool target_required(enum object_kind kind, const struct target *t)
{
    if (strcmp(t->path, "externalId") == 0)
        return true;
    if (kind == OBJECT_USER)
        return strcmp(t->path, "userName") == 0;
    return strcmp(t->path, "displayName") == 0;
}

/* Check an expression against its target; fills why on failure. */
static bool check_types(const struct target *t, const struct expr *x, char *why, size_t why_len)
{
    bool b;
    if (t->vtype == VT_BOOL) {
        if (x->vtype == VT_BOOL || expr_bool_constant(x, &b))
            return true;
        snprintf(why, why_len, "takes true or false: active(), \"true\" or \"false\"");
        return false;
    }
    if (x->vtype == VT_BOOL) {
        snprintf(why, why_len, "takes text, and %s() gives true or false",
                 x->alts[0].parts[0].fn->name);
        return false;
    }
    if (t->place == PL_MANAGER) {
        for (size_t i = 0; i < x->n; i++) {
            if (x->alts[i].n != 1 || x->alts[i].parts[0].kind != PART_ATTR) {
                snprintf(why, why_len,
                         "takes a DN-valued attribute (e.g. manager), resolved to the manager's "
                         "cloud id");
                return false;
            }
        }
    }
    return true;
}

static bool attrs_add(struct mapping *m, const char *name)
{
    for (size_t i = 0; i < m->n_attrs; i++) {
        if (strcasecmp(m->attrs[i], name) == 0)
            return true;
    }
    char **v = realloc(m->attrs, (m->n_attrs + 2) * sizeof(*v));
    if (v == NULL)
        return false;
    m->attrs = v;
    if ((v[m->n_attrs] = strdup(name)) == NULL)
        return false;
    v[++m->n_attrs] = NULL;
    return true;
}

static bool attrs_add_expr(struct mapping *m, const struct expr *x)
{
    for (size_t i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->alts[i].n; j++) {
            const struct part *p = &x->alts[i].parts[j];
            if (p->kind == PART_ATTR && !attrs_add(m, p->text))
                return false;
            if (p->kind == PART_FUNC) {
                for (size_t k = 0; p->fn->reads[k] != NULL; k++) {
                    if (!attrs_add(m, p->fn->reads[k]))
                        return false;
                }
            }
        }
    }
    return true;
}

/* The mapped targets as SCIM attribute, value type and sub-attribute (mapping_targets). */
static void build_targets(struct mapping *m)
{
    m->n_mapped = 0;
    for (size_t i = 0; i < N_TARGETS; i++) {
        const struct target *t = &targets[i];
        if (!m->rules[i].set || !(t->kinds & (1u << m->kind)))
            continue;
        struct mapping_target *o = &m->mapped[m->n_mapped++];
        *o = (struct mapping_target){t->path, t->alias, t->key, NULL, NULL};
        switch (t->place) {
        case PL_TOP:
            break;
        case PL_NAME:
            o->attr = "name";
            o->sub = t->key;
            break;
        case PL_EMAIL:
        case PL_PHONE:
        case PL_ADDR:
            o->attr = t->place == PL_EMAIL   ? "emails"
                      : t->place == PL_PHONE ? "phoneNumbers"
                                             : "addresses";
            o->type = t->type;
            o->sub = t->key;
            break;
        case PL_ENT:
            o->attr = t->path;
            break;
        case PL_MANAGER:
            o->attr = t->path;
            o->sub = "value";
            break;
        }
    }
    if (m->avatar != NULL)
        m->mapped[m->n_mapped++] = (struct mapping_target){"photos[type eq \"photo\"].value",
                                                           "avatar", "photos", "photo", "value"};
}

size_t mapping_targets(const struct mapping *m, const struct mapping_target **out)
{
    *out = m->mapped;
    return m->n_mapped;
}

void mapping_free(struct mapping *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < N_TARGETS; i++)
        expr_clear(&m->rules[i].expr);
    for (size_t i = 0; i < m->n_attrs; i++)
        free(m->attrs[i]);
    free(m->attrs);
    for (size_t i = 0; i < m->n_required; i++)
        free(m->required[i]);
    free(m->required);
    for (size_t i = 0; i < m->n_accepted; i++)
        free(m->accepted[i]);
    free(m->accepted);
    avatar_free(m->avatar);
    pcre2_code_free(m->email_re);
    pcre2_code_free(m->phone_re);
    free(m);
}

/* Set rule i from an expression; why on failure (why[0] == '\0': out of memory). */
static bool set_rule(struct mapping *m, size_t i, const char *expression, char *why, size_t why_len)
{
    struct rule *r = &m->rules[i];
    expr_clear(&r->expr);
    r->set = false;
    why[0] = '\0';
    size_t skip = strspn(expression, " \t");
    if (expression[skip] == '\0') {
        if (target_required(m->kind, &targets[i])) {
            snprintf(why, why_len, "is required and cannot be unmapped");
            return false;
        }
        return true; /* an empty expression removes the default */
    }
    struct expr x;
    if (!parse_expr(expression, &x, why, why_len))
        return false;
    if (!check_types(&targets[i], &x, why, why_len)) {
        expr_clear(&x);
        return false;
    }
    r->expr = x;
    r->set = true;
    return true;
}

/* Compile the patterns that check e-mail addresses and phone numbers. */
static enum dirconn_err compile_checks(struct mapping *m, struct dirconn_error *err)
{
    /* RFC 5322 3.4.1 addr-spec with a dot-atom local part and a domain of LDH labels
     * (non-ASCII letters allowed for internationalised addresses, RFC 6531). */
    static const char email[] =
        "^[\\p{L}\\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\\.[\\p{L}\\p{N}!#$%&'*+/=?^_`{|}~-]+)*"
        "@(?:[\\p{L}\\p{N}](?:[\\p{L}\\p{N}-]*[\\p{L}\\p{N}])?\\.)+"
        "[\\p{L}\\p{N}](?:[\\p{L}\\p{N}-]*[\\p{L}\\p{N}])?$";
    static const char phone[] = "[0-9]";
    int ecode;
    PCRE2_SIZE eoff;
    m->email_re =
        pcre2_compile((PCRE2_SPTR)email, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ecode, &eoff, NULL);
    m->phone_re =
        pcre2_compile((PCRE2_SPTR)phone, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ecode, &eoff, NULL);
    if (m->email_re == NULL || m->phone_re == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: cannot compile value checks (%d)",
                                 ecode);
    return DIRCONN_OK;
}

enum dirconn_err mapping_compile(const struct config *cfg, enum object_kind kind,
                                 struct mapping **out, struct dirconn_error *err)
{
    *out = NULL;
    const char *file = cfg->path != NULL ? cfg->path : "<config>";
    struct mapping *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
    m->kind = kind;
    char why[512] = "";
    enum dirconn_err rc = compile_checks(m, err);

    /* The defaults. */
    for (size_t d = 0; d < N_DEFAULTS && rc == DIRCONN_OK; d++) {
        if (!(defaults[d].kinds & (1u << kind)))
            continue;
        size_t i;
        snprintf(why, sizeof(why), "unknown path");
        if (find_target(defaults[d].path, &i) == NULL ||
            !set_rule(m, i, defaults[d].expression, why, sizeof(why)))
            rc = dirconn_error_set(err, why[0] ? DIRCONN_EFAIL : DIRCONN_ENOMEM,
                                   "mapping: built-in %s = %s: %s", defaults[d].path,
                                   defaults[d].expression, why[0] ? why : "out of memory");
    }

    /* The [mapping] lines of this kind. */
    for (size_t l = 0; l < cfg->n_mappings && rc == DIRCONN_OK; l++) {
        const struct config_mapping *cm = &cfg->mappings[l];
        const char *path = cm->scim_path;
        enum object_kind line_kind = OBJECT_USER;
        if (strncasecmp(path, "group.", 6) == 0) {
            line_kind = OBJECT_GROUP;
            path += 6;
        } else if (strncasecmp(path, "contact.", 8) == 0) {
            line_kind = OBJECT_CONTACT;
            path += 8;
        } else if (strncasecmp(path, "user.", 5) == 0) {
            path += 5;
        }
        if (line_kind != kind)
            continue;
        if (strcasecmp(path, "urn") == 0) {
            /* inih ends a key at the first ':' (or '='), so a full URN cannot be a key. */
            const char *eq = strchr(cm->expression, '=');
            int shown = eq != NULL ? (int)(eq - cm->expression) : (int)strlen(cm->expression);
            while (shown > 0 && is_space((unsigned char)cm->expression[shown - 1]))
                shown--;
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "%s:%d: [mapping] %s:%.*s: a key cannot contain ':' in the "
                                   "configuration file; write enterprise.<attribute>, e.g. "
                                   "enterprise.department",
                                   file, cm->line, cm->scim_path, shown, cm->expression);
            break;
        }
        size_t i;
        const struct target *t = find_target(path, &i);
        if (t == NULL) {
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "%s:%d: [mapping] %s: unknown SCIM attribute path (see "
                                   "docs/mapping.md: e.g. displayName, name.givenName, "
                                   "emails.work, phoneNumbers.mobile, addresses.work.locality, "
                                   "enterprise.department)",
                                   file, cm->line, cm->scim_path);
            break;
        }
        if (!(t->kinds & (1u << kind))) {
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "%s:%d: [mapping] %s: not an attribute that %s are mapped to "
                                   "(%s)",
                                   file, cm->line, cm->scim_path, kind_name(kind),
                                   kind == OBJECT_GROUP ? "groups take externalId and displayName"
                                                        : "contacts take externalId, "
                                                          "displayName and emails.work");
            break;
        }
        if (!set_rule(m, i, cm->expression, why, sizeof(why))) {
            if (why[0] == '\0')
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
            else
                rc = dirconn_error_set(err, DIRCONN_ECONFIG, "%s:%d: [mapping] %s: %s", file,
                                       cm->line, cm->scim_path, why);
            break;
        }
    }

    /* Required attributes, the avatar, and the attribute list. */
    if (rc == DIRCONN_OK && kind == OBJECT_USER) {
        const struct strlist *req = &cfg->users_required_attributes;
        if (req->n > 0 && (m->required = calloc(req->n, sizeof(char *))) == NULL)
            rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
        for (size_t i = 0; i < req->n && rc == DIRCONN_OK; i++) {
            if ((m->required[m->n_required++] = strdup(req->v[i])) == NULL ||
                !attrs_add(m, req->v[i]))
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
        }
        if (rc == DIRCONN_OK && cfg->users_sync_proxy_addresses) {
            /* Aliases go to emails[type eq "other"] whether or not a line maps it too. */
            size_t i;
            const struct strlist *acc = &cfg->users_accepted_domains;
            m->proxy_addresses = true;
            if (find_target("emails.other", &i) != NULL)
                m->rules[i].set = true;
            if (!attrs_add(m, "proxyAddresses") || !attrs_add(m, "mail"))
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
            if (rc == DIRCONN_OK && acc->n > 0 &&
                (m->accepted = calloc(acc->n, sizeof(char *))) == NULL)
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
            for (size_t k = 0; k < acc->n && rc == DIRCONN_OK; k++) {
                if ((m->accepted[m->n_accepted++] = strdup(acc->v[k])) == NULL)
                    rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
            }
        }
        if (rc == DIRCONN_OK && cfg->avatar_enabled && cfg->avatar_pattern != NULL) {
            struct dirconn_error aerr;
            dirconn_error_clear(&aerr);
            rc = avatar_compile(cfg->avatar_pattern, &m->avatar, &aerr);
            size_t row;
            int line = config_key_find("avatar", "pattern", &row) ? config_key_line(cfg, row) : 0;
            if (rc != DIRCONN_OK && line > 0)
                dirconn_error_set(err, rc, "%s:%d: %s", file, line, aerr.msg);
            else if (rc != DIRCONN_OK)
                dirconn_error_set(err, rc, "%s: %s", file, aerr.msg);
            for (const char *const *a = m->avatar ? avatar_attributes(m->avatar) : NULL;
                 a != NULL && *a != NULL && rc == DIRCONN_OK; a++) {
                if (!attrs_add(m, *a))
                    rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
            }
        }
    }
    if (rc == DIRCONN_OK) {
        bool ok = attrs_add(m, "objectGUID") && attrs_add(m, "entryUUID");
        if (kind == OBJECT_GROUP)
            ok = ok && attrs_add(m, "member");
        for (size_t i = 0; i < N_TARGETS && ok; i++) {
            if (m->rules[i].set)
                ok = attrs_add_expr(m, &m->rules[i].expr);
        }
        if (!ok)
            rc = dirconn_error_set(err, DIRCONN_ENOMEM, "mapping: out of memory");
    }
    if (rc != DIRCONN_OK) {
        mapping_free(m);
        return rc;
    }
    build_targets(m);
    *out = m;
    return DIRCONN_OK;
}

const char *const *mapping_attributes(const struct mapping *m)
{
    return (const char *const *)m->attrs;
}

enum object_kind mapping_kind_of(const struct mapping *m)
{
    return m->kind;
}

/* ---- applying -------------------------------------------------------------------------------- */

/* The rules and the entry of one mapping_apply call. */
struct eval {
    const struct mapping *m;
    const struct ldap_entry *e;
    struct mapping_result *r;
    bool oom;
};

/* A growing string; sbuf_add returns false when out of memory. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static bool sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* The DN for messages ("" for an entry without one). */
static const char *entry_dn(const struct ldap_entry *e)
{
    return e->dn != NULL ? e->dn : "";
}

/*
 * Render a value for a one-line message: printable UTF-8 kept, other bytes as
 * \xNN, backslash doubled, at most 64 bytes of the value shown.
 */
static void escape_value(const char *data, size_t len, char *out, size_t out_len)
{
    size_t o = 0, i = 0;
    const size_t shown = len > 64 ? 64 : len;
    while (i < shown && o + 8 < out_len) {
        unsigned char c = (unsigned char)data[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        struct ldap_value one = {(char *)data + i, n};
        if (n > 1 && i + n <= len && ldap_value_is_text(&one)) {
            memcpy(out + o, data + i, n);
            o += n;
            i += n;
            continue;
        }
        if (c == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, out_len - o, "\\x%02X", c);
        }
        i++;
    }
    out[o] = '\0';
    if (i < len)
        snprintf(out + o, out_len - o, "... (%zu bytes)", len);
}

static void add_issue(struct eval *ev, const char *attribute, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void add_issue(struct eval *ev, const char *attribute, const char *fmt, ...)
{
    char msg[DIRCONN_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *c = msg; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    struct mapping_result *r = ev->r;
    for (size_t i = 0; i < r->n_issues; i++) {
        if (strcmp(r->issues[i].message, msg) == 0)
            return; /* the same value feeding two targets is reported once */
    }
    struct mapping_issue *v = realloc(r->issues, (r->n_issues + 1) * sizeof(*v));
    if (v == NULL) {
        ev->oom = true;
        return;
    }
    r->issues = v;
    v[r->n_issues].attribute = strdup(attribute);
    v[r->n_issues].message = strdup(msg);
    r->n_issues++;
    if (v[r->n_issues - 1].attribute == NULL || v[r->n_issues - 1].message == NULL)
        ev->oom = true;
}

/* The seed's warning: "For <dn>, the attribute <a> has the following invalid value: <v>. <rule>" */
static void invalid_value(struct eval *ev, const char *attribute, const char *data, size_t len,
                          const char *rule)
{
    char shown[400];
    escape_value(data, len, shown, sizeof(shown));
    add_issue(ev, attribute, "For %s, the attribute %s has the following invalid value: %s. %s",
              entry_dn(ev->e), attribute, shown, rule);
}

/* GUID-valued binary attributes render as GUID strings. */
static bool is_guid_attr(const char *name)
{
    return strcasecmp(name, "objectGUID") == 0 || strcasecmp(name, "mS-DS-ConsistencyGuid") == 0 ||
           strcasecmp(name, "msDS-ConsistencyGuid") == 0;
}

/*
 * Value idx of an attribute (0: the first) as text (copied), or NULL when
 * absent, empty or not text (a warning is recorded). *oom on allocation failure.
 */
static char *attr_value(struct eval *ev, const char *name, size_t idx)
{
    const struct ldap_attr *a = ldap_entry_attr(ev->e, name);
    if (a == NULL || a->n_values <= idx || a->values[idx].len == 0)
        return NULL;
    const struct ldap_value *v = &a->values[idx];
    char *copy = NULL;
    if (is_guid_attr(name) && v->len == 16) {
        copy = malloc(LDAP_GUID_STRLEN);
        if (copy != NULL)
            ldap_guid_to_string((const unsigned char *)v->data, copy);
    } else if (ldap_attr_is_binary(a->name) || !ldap_value_is_text(v)) {
        invalid_value(ev, name, v->data, v->len,
                      "This attribute must be UTF-8 text without control characters.");
        return NULL;
    } else {
        copy = strndup(v->data, v->len);
    }
    if (copy == NULL)
        ev->oom = true;
    return copy;
}

/* Evaluate a string-valued term (an attribute: its value idx); NULL when absent. */
static char *eval_term(struct eval *ev, const struct part *p, size_t idx)
{
    char *s = NULL;
    switch (p->kind) {
    case PART_CONST:
        s = strdup(p->text);
        break;
    case PART_ATTR:
        return attr_value(ev, p->text, idx);
    case PART_FUNC:
        if (p->fn->fn == FN_ID) {
            if (ev->e->id[0] == '\0')
                return NULL;
            s = strdup(ev->e->id);
        } else if (p->fn->fn == FN_DN) {
            if (ev->e->dn == NULL || ev->e->dn[0] == '\0')
                return NULL;
            s = strdup(ev->e->dn);
        } else {
            return NULL;
        }
        break;
    case PART_SEP:
        return NULL;
    }
    if (s == NULL)
        ev->oom = true;
    return s;
}

/*
 * Evaluate a string expression: the first alternative with a present term.
 * Missing terms drop out with the separator before them (the separator kept
 * is the one just before the next present term). *source receives the name to
 * report the value under: the attribute when one attribute gave it.
 */
/*
 * Evaluate one alternative with value idx of its attributes (a multi-valued
 * target's alternative has one attribute). NULL when it has no value.
 */
static char *eval_alt(struct eval *ev, const struct alt *a, size_t idx, const char **source)
{
    struct sbuf b = {0};
    const char *sep = NULL;
    size_t present_vars = 0;
    const char *only_attr = NULL;
    bool failed = false;
    for (size_t j = 0; j < a->n && !failed; j++) {
        const struct part *p = &a->parts[j];
        if (p->kind == PART_SEP) {
            sep = p->text;
            continue;
        }
        char *v = eval_term(ev, p, idx);
        if (v == NULL) {
            if (ev->oom)
                failed = true;
            continue;
        }
        if (p->kind != PART_CONST) {
            present_vars++;
            only_attr = p->kind == PART_ATTR ? p->text : NULL;
        }
        if (b.len > 0 && sep != NULL)
            failed = !sbuf_add(&b, sep, strlen(sep));
        if (!failed)
            failed = !sbuf_add(&b, v, strlen(v));
        sep = NULL;
        free(v);
    }
    if (failed) {
        ev->oom = true;
        free(b.p);
        return NULL;
    }
    if ((a->n_vars > 0 && present_vars == 0) || b.len == 0) {
        free(b.p);
        return NULL;
    }
    *source = present_vars == 1 && a->n_vars == 1 ? only_attr : NULL;
    return b.p;
}

static char *eval_string(struct eval *ev, const struct expr *x, const char **source)
{
    for (size_t i = 0; i < x->n && !ev->oom; i++) {
        char *v = eval_alt(ev, &x->alts[i], 0, source);
        if (v != NULL)
            return v;
    }
    return NULL;
}

/* The one attribute of an alternative whose values a multi-valued target takes, or NULL. */
static const char *alt_attribute(const struct alt *a)
{
    if (a->n_vars != 1)
        return NULL;
    for (size_t j = 0; j < a->n; j++)
        if (a->parts[j].kind == PART_ATTR)
            return a->parts[j].text;
    return NULL;
}

/* active(): msDS-UserAccountDisabled (AD LDS) or bit 0x2 of userAccountControl (AD DS). */
static bool eval_active(struct eval *ev, bool *present)
{
    *present = true;
    const struct ldap_attr *a = ldap_entry_attr(ev->e, "msDS-UserAccountDisabled");
    if (a != NULL && a->n_values > 0) {
        const struct ldap_value *v = &a->values[0];
        if (strcasecmp(v->data, "TRUE") == 0 && v->len == 4)
            return false;
        if (strcasecmp(v->data, "FALSE") == 0 && v->len == 5)
            return true;
        invalid_value(ev, "msDS-UserAccountDisabled", v->data, v->len,
                      "This attribute must be TRUE or FALSE.");
    }
    a = ldap_entry_attr(ev->e, "userAccountControl");
    if (a != NULL && a->n_values > 0) {
        const struct ldap_value *v = &a->values[0];
        char *end = NULL;
        errno = 0;
        long long uac = strtoll(v->data, &end, 10);
        if (v->len > 0 && errno == 0 && end == v->data + v->len && uac >= INT32_MIN &&
            uac <= (long long)UINT32_MAX)
            return ((unsigned long long)uac & 0x2u) == 0; /* ADS_UF_ACCOUNTDISABLE */
        invalid_value(ev, "userAccountControl", v->data, v->len,
                      "This attribute must be an integer.");
    }
    if (a == NULL && ldap_entry_attr(ev->e, "msDS-UserAccountDisabled") == NULL)
        return true; /* no account state: the account is enabled */
    *present = false;
    return false;
}

/* Validate a mapped string for its target; false = dropped (warning recorded). */
static bool check_value(struct eval *ev, const struct target *t, const char *source,
                        const char *value)
{
    const char *name = source != NULL ? source : (t->alias != NULL ? t->alias : t->path);
    size_t len = strlen(value);
    if (t->place == PL_MANAGER)
        return true;
    if (len > MAPPING_VALUE_MAX) {
        char rule[80];
        snprintf(rule, sizeof(rule), "This attribute must be at most %d bytes long.",
                 MAPPING_VALUE_MAX);
        invalid_value(ev, name, value, len, rule);
        return false;
    }
    const pcre2_code *re = t->check == CHECK_EMAIL   ? ev->m->email_re
                           : t->check == CHECK_PHONE ? ev->m->phone_re
                                                     : NULL;
    if (re == NULL)
        return true;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL) {
        ev->oom = true;
        return false;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)value, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    bool ok = rc >= 0;
    if (ok && t->check == CHECK_EMAIL) {
        /* RFC 5321 4.5.3.1: local part at most 64 octets, a path at most 256. */
        const char *at = strrchr(value, '@');
        ok = at != NULL && at - value <= 64 && len <= 254;
    }
    if (!ok)
        invalid_value(ev, name, value, len,
                      t->check == CHECK_PHONE
                          ? "This attribute must contain at least one number."
                          : "This attribute must be an email address of the form "
                            "local-part@domain.");
    return ok;
}

/* The JSON object of a multi-valued element with the given type, created on first use. */
static json_t *typed_element(json_t *root, const char *array, const char *type, bool primary)
{
    json_t *arr = json_object_get(root, array);
    if (arr == NULL) {
        arr = json_array();
        if (arr == NULL || json_object_set_new(root, array, arr) != 0)
            return NULL;
    }
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        if (strcmp(json_string_value(json_object_get(el, "type")), type) == 0)
            return el;
    }
    el = json_pack("{s:s}", "type", type);
    if (el == NULL)
        return NULL;
    if (primary)
        json_object_set_new(el, "primary", json_true());
    if (json_array_append_new(arr, el) != 0)
        return NULL;
    return el;
}

/* Place a validated value in the resource. Returns false when out of memory. */
static bool place_value(struct eval *ev, json_t *root, json_t *ent, const struct target *t,
                        json_t *value)
{
    json_t *obj = NULL;
    switch (t->place) {
    case PL_TOP:
        obj = root;
        break;
    case PL_NAME:
        obj = json_object_get(root, "name");
        if (obj == NULL) {
            obj = json_object();
            if (obj == NULL || json_object_set_new(root, "name", obj) != 0)
                obj = NULL;
        }
        break;
    case PL_EMAIL:
        obj = typed_element(root, "emails", t->type, true);
        break;
    case PL_PHONE:
        obj = typed_element(root, "phoneNumbers", t->type, false);
        break;
    case PL_ADDR:
        obj = typed_element(root, "addresses", t->type, strcmp(t->type, "work") == 0);
        break;
    case PL_ENT:
        obj = ent;
        break;
    case PL_MANAGER:
        free(ev->r->manager_dn);
        ev->r->manager_dn = strdup(json_string_value(value));
        json_decref(value);
        return ev->r->manager_dn != NULL;
    }
    return obj != NULL && json_object_set_new(obj, t->key, value) == 0;
}

/* ---- multi-valued targets and proxyAddresses ------------------------------------------------ */

/* The values of a multi-valued target, without duplicates (case-insensitive). */
struct vlist {
    char **v;
    size_t n;
};

static void vlist_clear(struct vlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Add v (owned) unless the list holds it already. */
static void vlist_add(struct eval *ev, struct vlist *l, char *v)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->v[i], v) == 0) {
            free(v);
            return;
        }
    }
    char **g = realloc(l->v, (l->n + 1) * sizeof(*g));
    if (g == NULL) {
        free(v);
        ev->oom = true;
        return;
    }
    l->v = g;
    l->v[l->n++] = v;
}

static int cmp_value(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int c = strcasecmp(x, y);
    return c != 0 ? c : strcmp(x, y);
}

/* Whether domain is one an alias may have: [users] accepted_domains, else the mail's domain. */
static bool accepted_domain(const struct mapping *m, const char *domain, const char *mail_domain)
{
    if (m->n_accepted == 0)
        return mail_domain != NULL && strcasecmp(domain, mail_domain) == 0;
    for (size_t i = 0; i < m->n_accepted; i++)
        if (strcasecmp(domain, m->accepted[i]) == 0)
            return true;
    return false;
}

/*
 * The alternate addresses of a user (Rackspace Directory Sync, "Alternate
 * email addresses"): each smtp: value of proxyAddresses whose domain is
 * accepted. SMTP: marks the primary address, which must be mail. Other
 * address types (X500:, SIP:, x400:) are not e-mail addresses and are left out.
 */
static void proxy_values(struct eval *ev, const struct target *t, struct vlist *l)
{
    const struct ldap_attr *pa = ldap_entry_attr(ev->e, "proxyAddresses");
    if (pa == NULL || pa->n_values == 0)
        return;
    const struct mapping *m = ev->m;
    const char *dn = entry_dn(ev->e);
    char *mail = attr_value(ev, "mail", 0);
    const char *mail_at = mail != NULL ? strrchr(mail, '@') : NULL;
    const char *mail_domain = mail_at != NULL ? mail_at + 1 : NULL;
    for (size_t i = 0; i < pa->n_values && !ev->oom; i++) {
        const struct ldap_value *v = &pa->values[i];
        if (v->len < 5 || !ldap_value_is_text(v))
            continue;
        bool primary = strncmp(v->data, "SMTP:", 5) == 0;
        if (!primary && strncmp(v->data, "smtp:", 5) != 0)
            continue;
        size_t skip = 5;
        while (skip < v->len && is_space((unsigned char)v->data[skip]))
            skip++;
        char *addr = strndup(v->data + skip, v->len - skip);
        if (addr == NULL) {
            ev->oom = true;
            break;
        }
        if (primary) {
            if (mail == NULL || strcasecmp(addr, mail) != 0)
                add_issue(ev, "proxyAddresses",
                          "For %s, the primary address SMTP:%s in proxyAddresses is not the mail "
                          "attribute (%s); the primary email address is taken from mail.",
                          dn, addr, mail != NULL ? mail : "none");
            free(addr);
            continue;
        }
        if ((mail != NULL && strcasecmp(addr, mail) == 0) ||
            !check_value(ev, t, "proxyAddresses", addr)) {
            free(addr);
            continue;
        }
        const char *domain = strrchr(addr, '@') + 1; /* check_value saw the '@' */
        if (!accepted_domain(m, domain, mail_domain)) {
            if (m->n_accepted > 0)
                add_issue(ev, "proxyAddresses",
                          "For %s, the alternate address %s in proxyAddresses is not sent: %s is "
                          "not an accepted domain ([users] accepted_domains).",
                          dn, addr, domain);
            else
                add_issue(ev, "proxyAddresses",
                          "For %s, the alternate address %s in proxyAddresses is not sent: %s is "
                          "not the domain of mail (%s) and [users] accepted_domains is not set.",
                          dn, addr, domain, mail_domain != NULL ? mail_domain : "none");
            free(addr);
            continue;
        }
        vlist_add(ev, l, addr);
    }
    free(mail);
}

/*
 * A multi-valued target (emails[type eq "other"], phoneNumbers[type eq
 * "other"]): every alternative adds its values, an alternative with one
 * attribute one value per value of the attribute; for emails of type
 * "other", the aliases of proxyAddresses too. The values are sorted (stable
 * hashes) and appended as values of the target's type, leaving out those
 * the attribute already holds. Returns false when out of memory.
 */
static bool place_multi(struct eval *ev, json_t *root, const struct target *t,
                        const struct rule *rule)
{
    struct vlist l = {0};
    for (size_t i = 0; i < rule->expr.n && !ev->oom; i++) {
        const struct alt *a = &rule->expr.alts[i];
        const char *attr = alt_attribute(a);
        const struct ldap_attr *la = attr != NULL ? ldap_entry_attr(ev->e, attr) : NULL;
        size_t n = la != NULL ? la->n_values : 1;
        for (size_t idx = 0; idx < n && !ev->oom; idx++) {
            const char *source = NULL;
            char *v = eval_alt(ev, a, idx, &source);
            if (v != NULL && check_value(ev, t, source, v))
                vlist_add(ev, &l, v);
            else
                free(v);
        }
    }
    if (t->place == PL_EMAIL && ev->m->proxy_addresses && !ev->oom)
        proxy_values(ev, t, &l);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), cmp_value);
    const char *array = t->place == PL_EMAIL ? "emails" : "phoneNumbers";
    json_t *arr = json_object_get(root, array);
    for (size_t i = 0; i < l.n && !ev->oom; i++) {
        bool have = false;
        size_t k;
        json_t *el;
        json_array_foreach(arr, k, el)
        {
            const char *v = json_string_value(json_object_get(el, "value"));
            have = have || (v != NULL && strcasecmp(v, l.v[i]) == 0);
        }
        if (have)
            continue;
        if (arr == NULL) {
            arr = json_array();
            if (arr == NULL || json_object_set_new(root, array, arr) != 0) {
                ev->oom = true;
                break;
            }
        }
        json_t *o = json_pack("{s:s,s:s}", "type", t->type, "value", l.v[i]);
        if (o == NULL || json_array_append_new(arr, o) != 0)
            ev->oom = true;
    }
    vlist_clear(&l);
    return !ev->oom;
}

/* The name a required target's absence is reported under. */
static const char *rule_source_name(const struct mapping *m, size_t i)
{
    const struct rule *r = &m->rules[i];
    if (r->set && r->expr.n > 0 && r->expr.alts[0].n == 1) {
        const struct part *p = &r->expr.alts[0].parts[0];
        if (p->kind == PART_ATTR)
            return p->text;
        if (p->kind == PART_FUNC && p->fn->fn == FN_ID)
            return "objectGUID";
    }
    return targets[i].path;
}

static bool skip(struct eval *ev, const char *attribute)
{
    char msg[DIRCONN_ERROR_LEN];
    snprintf(msg, sizeof(msg),
             "The required attribute %s is missing when adding on-premises entry %s, the entry is "
             "not created in the cloud until all required attributes have a value.",
             attribute, entry_dn(ev->e));
    ev->r->skipped = true;
    ev->r->skip_message = strdup(msg);
    return ev->r->skip_message != NULL;
}

void mapping_result_clear(struct mapping_result *r)
{
    if (r == NULL)
        return;
    free(r->skip_message);
    json_decref(r->resource);
    free(r->text);
    free(r->external_id);
    free(r->manager_dn);
    for (size_t i = 0; i < r->n_members; i++)
        free(r->member_dns[i]);
    free(r->member_dns);
    for (size_t i = 0; i < r->n_issues; i++) {
        free(r->issues[i].attribute);
        free(r->issues[i].message);
    }
    free(r->issues);
    memset(r, 0, sizeof(*r));
}

/* Members of a group: the text values of member. */
static bool collect_members(struct eval *ev)
{
    const struct ldap_attr *a = ldap_entry_attr(ev->e, "member");
    if (a == NULL || a->n_values == 0)
        return true;
    struct mapping_result *r = ev->r;
    if ((r->member_dns = calloc(a->n_values, sizeof(char *))) == NULL)
        return false;
    for (size_t i = 0; i < a->n_values; i++) {
        const struct ldap_value *v = &a->values[i];
        if (!ldap_value_is_text(v) || v->len == 0) {
            invalid_value(ev, "member", v->data, v->len, "This attribute must hold DNs.");
            continue;
        }
        if ((r->member_dns[r->n_members] = strndup(v->data, v->len)) == NULL)
            return false;
        r->n_members++;
    }
    return true;
}

/* Drop the resource: a record is skipped when required data is missing or it is too large. */
static void drop_resource(struct mapping_result *r)
{
    json_decref(r->resource);
    r->resource = NULL;
    free(r->text);
    r->text = NULL;
    free(r->external_id);
    r->external_id = NULL;
}

enum dirconn_err mapping_apply(const struct mapping *m, const struct ldap_entry *e,
                               struct mapping_result *out)
{
    memset(out, 0, sizeof(*out));
    struct eval ev = {m, e, out, false};
    const char *dn = entry_dn(e);

    /* Required directory attributes first: such an entry is not mapped at all. */
    for (size_t i = 0; i < m->n_required; i++) {
        const struct ldap_attr *a = ldap_entry_attr(e, m->required[i]);
        if (a == NULL || a->n_values == 0 || a->values[0].len == 0) {
            if (!skip(&ev, m->required[i]))
                goto oom;
            return DIRCONN_OK;
        }
    }

    json_t *root = json_object();
    json_t *ent = json_object();
    json_t *schemas = json_array();
    if (root == NULL || ent == NULL || schemas == NULL) {
        json_decref(root);
        json_decref(ent);
        json_decref(schemas);
        goto oom;
    }
    out->resource = root;
    const char *schema = m->kind == OBJECT_USER    ? MAPPING_SCHEMA_USER
                         : m->kind == OBJECT_GROUP ? MAPPING_SCHEMA_GROUP
                                                   : MAPPING_SCHEMA_CONTACT;
    json_array_append_new(schemas, json_string(schema));
    json_object_set_new(root, "schemas", schemas);

    for (size_t i = 0; i < N_TARGETS && !ev.oom; i++) {
        const struct rule *rule = &m->rules[i];
        const struct target *t = &targets[i];
        if (!rule->set)
            continue;
        if (t->multi) {
            if (!place_multi(&ev, root, t, rule))
                ev.oom = true;
            continue;
        }
        json_t *value = NULL;
        if (t->vtype == VT_BOOL) {
            bool b = false, present = true;
            if (!expr_bool_constant(&rule->expr, &b))
                b = eval_active(&ev, &present);
            if (present)
                value = json_boolean(b);
        } else {
            const char *source = NULL;
            char *s = eval_string(&ev, &rule->expr, &source);
            if (s != NULL && check_value(&ev, t, source, s) && (value = json_string(s)) == NULL)
                ev.oom = true; /* every part was checked to be UTF-8 text */
            free(s);
        }
        if (value != NULL && !place_value(&ev, root, ent, t, value))
            ev.oom = true;
    }
    if (ev.oom) {
        json_decref(ent);
        goto oom;
    }

    if (m->kind == OBJECT_USER && (json_object_size(ent) > 0 || out->manager_dn != NULL)) {
        json_array_append_new(schemas, json_string(MAPPING_SCHEMA_ENTERPRISE));
        json_object_set_new(root, MAPPING_SCHEMA_ENTERPRISE, ent);
    } else {
        json_decref(ent);
    }

    if (m->avatar != NULL) {
        char *uri = NULL;
        char why[DIRCONN_ERROR_LEN];
        enum dirconn_err arc = avatar_render(m->avatar, e, &uri, why, sizeof(why));
        if (arc == DIRCONN_ENOMEM)
            goto oom;
        if (arc == DIRCONN_OK) {
            json_t *photos = json_pack("[{s:s,s:s}]", "value", uri, "type", "photo");
            free(uri);
            if (photos == NULL || json_object_set_new(root, "photos", photos) != 0)
                goto oom;
        } else {
            add_issue(&ev, "photos", "For %s, no avatar is sent: %s.", dn, why);
        }
    }

    if (m->kind == OBJECT_GROUP && !collect_members(&ev))
        goto oom;
    if (ev.oom)
        goto oom;

    /* Required SCIM attributes: externalId, and userName (users) or displayName. */
    static const char *const required_paths[] = {"externalId", "userName", "displayName"};
    for (size_t k = 0; k < 3; k++) {
        size_t i;
        const struct target *t = find_target(required_paths[k], &i);
        if (!target_required(m->kind, t) || json_object_get(root, t->key) != NULL)
            continue;
        if (!skip(&ev, rule_source_name(m, i)))
            goto oom;
        drop_resource(out);
        return DIRCONN_OK;
    }
    if ((out->external_id = strdup(json_string_value(json_object_get(root, "externalId")))) == NULL)
        goto oom;

    /* The canonical text: the size checked here is the size the later stages keep. */
    if ((out->text = mapping_canonical(root, &out->text_split)) == NULL)
        goto oom;
    size_t size = strlen(out->text);
    if (size > MAPPING_RECORD_MAX) {
        char msg[DIRCONN_ERROR_LEN];
        snprintf(msg, sizeof(msg),
                 "The on-premises entry %s maps to a record of %zu bytes, more than the limit of "
                 "%d bytes; the entry is not created in the cloud.",
                 dn, size, MAPPING_RECORD_MAX);
        drop_resource(out);
        out->skipped = true;
        if ((out->skip_message = strdup(msg)) == NULL)
            goto oom;
    }
    return DIRCONN_OK;

oom:
    mapping_result_clear(out);
    return DIRCONN_ENOMEM;
}

/* ---- canonical text -------------------------------------------------------------------------- */

char *mapping_canonical(const json_t *resource, size_t *split)
{
    /*
     * Dump the members that sort before the prefix and the rest as two
     * objects; "{" lo "," hi "}" is the dump of the whole (JSON_COMPACT
     * separates members with "," alone), and a key with the prefix sorts
     * between the two parts.
     */
    json_t *lo = json_object(), *hi = json_object();
    const char *key;
    json_t *val;
    bool ok = lo != NULL && hi != NULL;
    json_object_foreach((json_t *)resource, key, val)
    {
        if (ok)
            ok = json_object_set(strcmp(key, MAPPING_LINK_PREFIX) < 0 ? lo : hi, key, val) == 0;
    }
    char *lo_text = ok ? json_dumps(lo, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    char *hi_text = lo_text != NULL ? json_dumps(hi, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(lo);
    json_decref(hi);
    char *out = NULL;
    if (hi_text != NULL) {
        /* both are "{...}": the insides are what is between the braces */
        size_t lo_in = strlen(lo_text) - 2, hi_in = strlen(hi_text) - 2;
        bool comma = lo_in > 0 && hi_in > 0;
        out = malloc(lo_in + hi_in + (comma ? 1 : 0) + 3);
        if (out != NULL) {
            size_t n = 0;
            out[n++] = '{';
            memcpy(out + n, lo_text + 1, lo_in);
            n += lo_in;
            *split = n;
            if (comma)
                out[n++] = ',';
            memcpy(out + n, hi_text + 1, hi_in);
            n += hi_in;
            out[n++] = '}';
            out[n] = '\0';
        }
    }
    free(lo_text);
    free(hi_text);
    return out;
}

/* ---- hash ------------------------------------------------------------------------------------ */
