/*
 * avatar.c - avatar URI patterns: parse once, compile each placeholder's regex
 * with PCRE2, render per entry with libcurl's percent-encoder and URL parser.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "connector/avatar.h"

#include <curl/curl.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One piece of a pattern: literal text, or a placeholder. */
struct avatar_part {
    char *literal;    /* literal text (braces unescaped); NULL for a placeholder */
    char *attribute;  /* placeholder: the directory attribute */
    char *regex;      /* placeholder: the regex source; NULL for {attribute} */
    pcre2_code *code; /* compiled regex, or NULL */
};

struct avatar {
    struct avatar_part *parts;
    size_t n_parts;
    char **attributes; /* NULL-terminated, unique */
    size_t n_attributes;
};

/* A dynamic string; on allocation failure `failed` is set and later appends are no-ops. */
struct abuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void abuf_add(struct abuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool attr_char(int c, bool first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
        return true;
    return !first && ((c >= '0' && c <= '9') || c == '-' || c == ';');
}

void avatar_free(struct avatar *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_parts; i++) {
        free(a->parts[i].literal);
        free(a->parts[i].attribute);
        free(a->parts[i].regex);
        pcre2_code_free(a->parts[i].code);
    }
    free(a->parts);
    for (size_t i = 0; i < a->n_attributes; i++)
        free(a->attributes[i]);
    free(a->attributes);
    free(a);
}

static bool add_part(struct avatar *a, struct avatar_part part)
{
    struct avatar_part *v = realloc(a->parts, (a->n_parts + 1) * sizeof(*v));
    if (v == NULL)
        return false;
    a->parts = v;
    a->parts[a->n_parts++] = part;
    return true;
}

static bool add_attribute(struct avatar *a, const char *name)
{
    for (size_t i = 0; i < a->n_attributes; i++) {
        if (strcasecmp(a->attributes[i], name) == 0)
            return true;
    }
    char **v = realloc(a->attributes, (a->n_attributes + 2) * sizeof(*v));
    if (v == NULL)
        return false;
    a->attributes = v;
    if ((v[a->n_attributes] = strdup(name)) == NULL)
        return false;
    v[++a->n_attributes] = NULL;
    return true;
}

/* Flush pending literal text in lit into a literal part. */
static bool flush_literal(struct avatar *a, struct abuf *lit)
{
    if (lit->failed)
        return false;
    if (lit->len == 0)
        return true;
    struct avatar_part part = {.literal = lit->p};
    if (!add_part(a, part))
        return false;
    *lit = (struct abuf){0};
    return true;
}

/* Whether uri is an absolute http(s) URI with a host, by libcurl's URL parser (RFC 3986). */
static bool check_uri(const char *uri, char *why, size_t why_len)
{
    CURLU *h = curl_url();
    if (h == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    bool ok = false;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, uri, 0);
    if (uc != CURLUE_OK) {
        snprintf(why, why_len, "'%s' is not an absolute http(s) URI: %s (CURLUcode %d)", uri,
                 curl_url_strerror(uc), (int)uc);
    } else {
        char *scheme = NULL, *host = NULL;
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(h, CURLUPART_HOST, &host, 0);
        if (scheme == NULL || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
            snprintf(why, why_len, "'%s' is not an http or https URI", uri);
        else if (host == NULL || host[0] == '\0')
            snprintf(why, why_len, "'%s' has no host", uri);
        else
            ok = true;
        curl_free(scheme);
        curl_free(host);
    }
    curl_url_cleanup(h);
    return ok;
}

/* Render with a fixed sample in every placeholder (compile-time URI check). */
static char *render_sample(const struct avatar *a)
{
    struct abuf b = {0};
    for (size_t i = 0; i < a->n_parts; i++) {
        if (a->parts[i].literal != NULL)
            abuf_add(&b, a->parts[i].literal, strlen(a->parts[i].literal));
        else
            abuf_add(&b, "x", 1);
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p != NULL ? b.p : strdup("");
}

enum dirconn_err avatar_compile(const char *pattern, struct avatar **out, struct dirconn_error *err)
{
    *out = NULL;
    struct avatar *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
    struct abuf lit = {0};
    enum dirconn_err rc = DIRCONN_OK;
    const char *p = pattern;
    while (*p != '\0' && rc == DIRCONN_OK) {
        size_t off = (size_t)(p - pattern);
        if (p[0] == '{' && p[1] == '{') {
            abuf_add(&lit, "{", 1);
            p += 2;
            continue;
        }
        if (p[0] == '}' && p[1] == '}') {
            abuf_add(&lit, "}", 1);
            p += 2;
            continue;
        }
        if (p[0] == '}') {
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "[avatar] pattern: unmatched '}' at offset %zu; write '}}' for "
                                   "a literal brace",
                                   off);
            break;
        }
        if (p[0] != '{') {
            abuf_add(&lit, p, 1);
            p++;
            continue;
        }
        /* A placeholder: {name} or {name:regex}. */
        const char *name = p + 1;
        const char *q = name;
        while (attr_char((unsigned char)*q, q == name))
            q++;
        if (q == name || (*q != '}' && *q != ':')) {
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "[avatar] pattern: the placeholder at offset %zu must be "
                                   "{attribute} or {attribute:regex}, with an attribute name of "
                                   "letters, digits and '-'; write '{{' for a literal brace",
                                   off);
            break;
        }
        struct avatar_part part = {0};
        part.attribute = strndup(name, (size_t)(q - name));
        const char *end = q;
        if (*q == ':') {
            /* The regex runs to the '}' that balances the placeholder's '{'; backslash escapes
             * are skipped so \{ and \} do not count. */
            const char *r = q + 1;
            int depth = 1;
            for (end = r; *end != '\0'; end++) {
                if (*end == '\\' && end[1] != '\0') {
                    end++;
                    continue;
                }
                if (*end == '{')
                    depth++;
                else if (*end == '}' && --depth == 0)
                    break;
            }
            if (*end == '\0') {
                free(part.attribute);
                rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                       "[avatar] pattern: the placeholder at offset %zu is not "
                                       "closed with '}'",
                                       off);
                break;
            }
            part.regex = strndup(r, (size_t)(end - r));
            if (part.attribute == NULL || part.regex == NULL) {
                free(part.attribute);
                free(part.regex);
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
                break;
            }
            if (part.regex[0] == '\0') {
                rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                       "[avatar] pattern: placeholder {%s:}: the regular "
                                       "expression is empty; write {%s} for the whole value",
                                       part.attribute, part.attribute);
                free(part.attribute);
                free(part.regex);
                break;
            }
            int ecode = 0;
            PCRE2_SIZE eoff = 0;
            part.code = pcre2_compile((PCRE2_SPTR)part.regex, PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
            if (part.code == NULL) {
                PCRE2_UCHAR msg[256];
                if (pcre2_get_error_message(ecode, msg, sizeof(msg)) < 0)
                    snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", ecode);
                rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                       "[avatar] pattern: placeholder {%s:%s}: regular expression "
                                       "error at offset %zu: %s",
                                       part.attribute, part.regex, (size_t)eoff, (char *)msg);
                free(part.attribute);
                free(part.regex);
                break;
            }
        } else if (part.attribute == NULL) {
            rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
            break;
        }
        if (!flush_literal(a, &lit) || !add_attribute(a, part.attribute) || !add_part(a, part)) {
            free(part.attribute);
            free(part.regex);
            pcre2_code_free(part.code);
            rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
            break;
        }
        p = end + 1;
    }
    if (rc == DIRCONN_OK && !flush_literal(a, &lit))
        rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
    free(lit.p);
    if (rc == DIRCONN_OK && a->attributes == NULL) {
        /* No placeholder: an empty, NULL-terminated list. */
        a->attributes = calloc(1, sizeof(char *));
        if (a->attributes == NULL)
            rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
    }
    if (rc == DIRCONN_OK) {
        /* The literal start must name the scheme so that every result is an http(s) URI. */
        const char *first = a->n_parts > 0 ? a->parts[0].literal : NULL;
        if (first == NULL ||
            (strncasecmp(first, "http://", 7) != 0 && strncasecmp(first, "https://", 8) != 0)) {
            rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                   "[avatar] pattern: '%s' cannot give an absolute http(s) URI: "
                                   "it must start with http:// or https://",
                                   pattern);
        } else {
            char *sample = render_sample(a);
            char why[DIRCONN_ERROR_LEN];
            if (sample == NULL)
                rc = dirconn_error_set(err, DIRCONN_ENOMEM, "[avatar] pattern: out of memory");
            else if (!check_uri(sample, why, sizeof(why)))
                rc = dirconn_error_set(err, DIRCONN_ECONFIG,
                                       "[avatar] pattern: cannot give an absolute http(s) URI "
                                       "(with 'x' in each placeholder: %s)",
                                       why);
            free(sample);
        }
    }
    if (rc != DIRCONN_OK) {
        avatar_free(a);
        return rc;
    }
    *out = a;
    return DIRCONN_OK;
}

const char *const *avatar_attributes(const struct avatar *a)
{
    return (const char *const *)a->attributes;
}

/* Where a placeholder's value comes from: an entry, or one given value. */
struct avatar_source {
    const struct ldap_entry *entry;
    const char *attribute; /* avatar_render_value: NULL = every placeholder */
    const char *value;
};

static void set_why(char *why, size_t why_len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    for (char *c = why; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
}

static enum dirconn_err render(const struct avatar *a, const struct avatar_source *src, char **uri,
                               char *why, size_t why_len)
{
    *uri = NULL;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    struct abuf b = {0};
    pcre2_match_data *md = NULL;
    enum dirconn_err rc = DIRCONN_OK;
    for (size_t i = 0; i < a->n_parts && rc == DIRCONN_OK; i++) {
        const struct avatar_part *part = &a->parts[i];
        if (part->literal != NULL) {
            abuf_add(&b, part->literal, strlen(part->literal));
            continue;
        }
        const char *value = NULL;
        size_t len = 0;
        if (src->entry != NULL) {
            const struct ldap_attr *at = ldap_entry_attr(src->entry, part->attribute);
            if (at == NULL || at->n_values == 0) {
                set_why(why, why_len, "the attribute %s is missing", part->attribute);
                rc = DIRCONN_EFAIL;
                break;
            }
            if (ldap_attr_is_binary(at->name) || !ldap_value_is_text(&at->values[0])) {
                set_why(why, why_len, "the value of %s is not text", part->attribute);
                rc = DIRCONN_EFAIL;
                break;
            }
            value = at->values[0].data;
            len = at->values[0].len;
        } else {
            if (src->attribute != NULL && strcasecmp(src->attribute, part->attribute) != 0) {
                set_why(why, why_len, "no value given for attribute %s", part->attribute);
                rc = DIRCONN_EFAIL;
                break;
            }
            value = src->value;
            len = strlen(value);
        }
        const char *ins = value;
        size_t ins_len = len;
        if (part->code != NULL) {
            if (md == NULL && (md = pcre2_match_data_create(1, NULL)) == NULL) {
                rc = DIRCONN_ENOMEM;
                break;
            }
            int m = pcre2_match(part->code, (PCRE2_SPTR)value, len, 0, 0, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH) {
                set_why(why, why_len, "{%s:%s} does not match the value '%s'", part->attribute,
                        part->regex, value);
                rc = DIRCONN_EFAIL;
                break;
            }
            if (m < 0) {
                PCRE2_UCHAR msg[256];
                if (pcre2_get_error_message(m, msg, sizeof(msg)) < 0)
                    snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", m);
                set_why(why, why_len, "{%s:%s} failed on the value '%s': %s", part->attribute,
                        part->regex, value, (char *)msg);
                rc = DIRCONN_EFAIL;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] <= ov[0]) {
                set_why(why, why_len, "{%s:%s} matches only an empty string in the value '%s'",
                        part->attribute, part->regex, value);
                rc = DIRCONN_EFAIL;
                break;
            }
            ins = value + ov[0];
            ins_len = ov[1] - ov[0];
        } else if (len == 0) {
            set_why(why, why_len, "the attribute %s is empty", part->attribute);
            rc = DIRCONN_EFAIL;
            break;
        }
        if (ins_len > AVATAR_URI_MAX) {
            set_why(why, why_len, "the value inserted for {%s} is longer than %d bytes",
                    part->attribute, AVATAR_URI_MAX);
            rc = DIRCONN_EFAIL;
            break;
        }
        /* RFC 3986 2.1 percent-encoding; unreserved characters (2.3) are kept. */
        char *esc = curl_easy_escape(NULL, ins, (int)ins_len);
        if (esc == NULL) {
            rc = DIRCONN_ENOMEM;
            break;
        }
        abuf_add(&b, esc, strlen(esc));
        curl_free(esc);
    }
    pcre2_match_data_free(md);
    if (rc == DIRCONN_OK && b.failed)
        rc = DIRCONN_ENOMEM;
    if (rc == DIRCONN_OK) {
        char reason[DIRCONN_ERROR_LEN];
        if (b.len > AVATAR_URI_MAX) {
            set_why(why, why_len, "the avatar URI is %zu bytes, longer than %d", b.len,
                    AVATAR_URI_MAX);
            rc = DIRCONN_EFAIL;
        } else if (!check_uri(b.p, reason, sizeof(reason))) {
            set_why(why, why_len, "%s", reason);
            rc = DIRCONN_EFAIL;
        }
    }
    if (rc == DIRCONN_ENOMEM)
        set_why(why, why_len, "out of memory");
    if (rc != DIRCONN_OK) {
        free(b.p);
        return rc;
    }
    *uri = b.p;
    return DIRCONN_OK;
}

enum dirconn_err avatar_render(const struct avatar *a, const struct ldap_entry *e, char **uri,
                               char *why, size_t why_len)
{
    struct avatar_source src = {.entry = e};
    return render(a, &src, uri, why, why_len);
}

enum dirconn_err avatar_render_value(const struct avatar *a, const char *attribute,
                                     const char *value, char **uri, char *why, size_t why_len)
{
    struct avatar_source src = {.attribute = attribute, .value = value};
    return render(a, &src, uri, why, why_len);
}
