/* ldap_entry.c - the directory entry model and its pure helpers. */
#include "connector/ldap_entry.h"
#include "connector/core/digest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <lber.h>
#include <ldap.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ldap_guid_to_string(const unsigned char g[16], char out[LDAP_GUID_STRLEN])
{
    snprintf(out, LDAP_GUID_STRLEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2],
             g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
             g[15]);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool ldap_guid_from_string(const char *text, unsigned char g[16])
{
    /* Byte order of the string's 16 bytes in the binary form. */
    static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    size_t len = strlen(text);
    if (len == 38 && text[0] == '{' && text[37] == '}') {
        text++;
        len -= 2;
    }
    if (len != 36)
        return false;
    int k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hexval((unsigned char)text[i]), lo = hexval((unsigned char)text[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        g[order[k++]] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    return k == 16;
}

char *ldap_escape_filter_value(const void *value, size_t len)
{
    struct berval in = {(ber_len_t)len, (char *)value};
    struct berval out = {0, NULL};
    if (ldap_bv2escaped_filter_value(&in, &out) != 0)
        return NULL;
    /* Hand the caller memory from the C allocator, not libldap's. */
    char *copy = malloc(out.bv_len + 1);
    if (copy != NULL) {
        if (out.bv_len > 0) /* an empty value gives no buffer at all */
            memcpy(copy, out.bv_val, out.bv_len);
        copy[out.bv_len] = '\0';
    }
    ber_memfree(out.bv_val);
    return copy;
}

bool ldap_range_parse(const char *desc, char *base, size_t baselen, long *low, long *high)
{
    const char *opt = NULL;
    for (const char *p = strchr(desc, ';'); p != NULL; p = strchr(p + 1, ';')) {
        if (strncasecmp(p + 1, "range=", 6) == 0) {
            opt = p;
            break;
        }
    }
    if (opt == NULL || baselen == 0)
        return false;
    const char *r = opt + 7;
    char *end = NULL;
    if (!isdigit((unsigned char)*r))
        return false;
    errno = 0;
    long lo = strtol(r, &end, 10);
    if (*end != '-' || errno == ERANGE)
        return false;
    r = end + 1;
    long hi;
    if (*r == '*') {
        hi = -1;
        end = (char *)r + 1;
    } else {
        if (!isdigit((unsigned char)*r))
            return false;
        hi = strtol(r, &end, 10);
        /* the next range starts at hi + 1: a bound that leaves no room for it is not valid */
        if (hi < lo || errno == ERANGE || hi == LONG_MAX)
            return false;
    }
    if (*end != '\0' && *end != ';')
        return false;
    /* base = desc without ";range=lo-hi" */
    size_t head = (size_t)(opt - desc);
    size_t n = snprintf(base, baselen, "%.*s%s", (int)head, desc, end);
    (void)n;
    *low = lo;
    *high = hi;
    return true;
}

/* Compare attribute descriptions by their type, ignoring options (";binary", ";range=..."). */
static bool attr_name_eq(const char *a, const char *b)
{
    size_t la = strcspn(a, ";"), lb = strcspn(b, ";");
    return la == lb && strncasecmp(a, b, la) == 0;
}

const struct ldap_attr *ldap_entry_attr(const struct ldap_entry *entry, const char *name)
{
    for (size_t i = 0; i < entry->n_attrs; i++) {
        if (attr_name_eq(entry->attrs[i].name, name))
            return &entry->attrs[i];
    }
    return NULL;
}

const char *ldap_entry_str(const struct ldap_entry *entry, const char *name)
{
    const struct ldap_attr *a = ldap_entry_attr(entry, name);
    if (a == NULL || a->n_values == 0)
        return NULL;
    return a->values[0].data;
}

bool ldap_entry_has_class(const struct ldap_entry *entry, const char *objclass)
{
    const struct ldap_attr *a = ldap_entry_attr(entry, "objectClass");
    for (size_t i = 0; a != NULL && i < a->n_values; i++) {
        if (strcasecmp(a->values[i].data, objclass) == 0)
            return true;
    }
    return false;
}

struct ldap_attr *ldap_entry_add_attr(struct ldap_entry *entry, const char *desc, size_t desc_len,
                                      long *first_value, long *next_range)
{
    char a[256], base[256];
    snprintf(a, sizeof(a), "%.*s", (int)(desc_len < sizeof(a) ? desc_len : sizeof(a) - 1), desc);
    long lo = 0, hi = -1;
    bool ranged = ldap_range_parse(a, base, sizeof(base), &lo, &hi);
    char *name = strdup(ranged ? base : a);
    struct ldap_attr *grown =
        name != NULL ? realloc(entry->attrs, (entry->n_attrs + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(name);
        return NULL;
    }
    entry->attrs = grown;
    struct ldap_attr *attr = &entry->attrs[entry->n_attrs++];
    memset(attr, 0, sizeof(*attr));
    attr->name = name;
    *first_value = ranged ? lo : 0;
    *next_range = ranged && hi >= 0 ? hi + 1 : -1;
    return attr;
}

void ldap_entry_set_id(struct ldap_entry *entry)
{
    const struct ldap_attr *guid = ldap_entry_attr(entry, "objectGUID");
    const char *uuid = ldap_entry_str(entry, "entryUUID");
    entry->id[0] = '\0';
    entry->id_source = LDAP_ID_NONE;
    if (guid != NULL && guid->n_values > 0 && guid->values[0].len == 16) {
        ldap_guid_to_string((const unsigned char *)guid->values[0].data, entry->id);
        entry->id_source = LDAP_ID_OBJECTGUID;
    } else if (uuid != NULL && strlen(uuid) == LDAP_GUID_STRLEN - 1) {
        for (size_t i = 0; i < LDAP_GUID_STRLEN; i++)
            entry->id[i] =
                (char)((uuid[i] >= 'A' && uuid[i] <= 'F') ? uuid[i] - 'A' + 'a' : uuid[i]);
        entry->id_source = LDAP_ID_ENTRYUUID;
    }
}

void ldap_entry_free(struct ldap_entry *entry)
{
    if (entry == NULL)
        return;
    for (size_t i = 0; i < entry->n_attrs; i++) {
        for (size_t j = 0; j < entry->attrs[i].n_values; j++)
            free(entry->attrs[i].values[j].data);
        free(entry->attrs[i].values);
        free(entry->attrs[i].name);
    }
    free(entry->attrs);
    free(entry->dn);
    free(entry);
}

bool ldap_value_is_text(const struct ldap_value *v)
{
    const unsigned char *p = (const unsigned char *)v->data;
    size_t i = 0;
    while (i < v->len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= v->len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

bool ldap_attr_is_binary(const char *name)
{
    static const char *const binary[] = {"objectGUID",
                                         "objectSid",
                                         "thumbnailPhoto",
                                         "jpegPhoto",
                                         "userCertificate",
                                         "cACertificate",
                                         "photo",
                                         "msExchMailboxGuid",
                                         "mS-DS-ConsistencyGuid",
                                         "msDS-ConsistencyGuid",
                                         "sIDHistory",
                                         "tokenGroups",
                                         "nTSecurityDescriptor",
                                         "userSMIMECertificate",
                                         "msExchMasterAccountSid",
                                         NULL};
    for (int i = 0; binary[i] != NULL; i++) {
        if (attr_name_eq(name, binary[i]))
            return true;
    }
    return strstr(name, ";binary") != NULL;
}

char *ldap_dn_canonical(const char *dn)
{
    LDAPDN parsed = NULL;
    if (dn == NULL || ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return NULL;
    char *text = NULL;
    int rc = ldap_dn2str(parsed, &text, LDAP_DN_FORMAT_LDAPV3 | LDAP_DN_PRETTY); /* UTF-8 kept */
    ldap_dnfree(parsed);
    if (rc != LDAP_SUCCESS || text == NULL) {
        ldap_memfree(text);
        return NULL;
    }
    char *out = strdup(text);
    ldap_memfree(text);
    return out;
}

/* ---- raw hash ----------------------------------------------------------------- */

/*
 * The serialisation is built in one buffer and digested with one EVP_Digest
 * call: an EVP_DigestUpdate per length prefix and value cost more than the
 * hashing itself (callgrind, docs/performance.md).
 */
struct raw_buf {
    unsigned char *p;
    size_t len, cap;
    bool failed;
};

static void raw_put(struct raw_buf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 1024;
        while (cap < b->len + len)
            cap *= 2;
        unsigned char *g = realloc(b->p, cap);
        if (g == NULL) {
            b->failed = true;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void raw_len(struct raw_buf *b, size_t len)
{
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    raw_put(b, n, sizeof(n));
}

static void raw_bytes(struct raw_buf *b, const void *data, size_t len)
{
    raw_len(b, len);
    raw_put(b, data, len);
}

static int cmp_attr_ptr(const void *a, const void *b)
{
    const struct ldap_attr *x = *(const struct ldap_attr *const *)a;
    const struct ldap_attr *y = *(const struct ldap_attr *const *)b;
    int c = strcasecmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->name, y->name);
}

bool ldap_entry_raw_hash(const struct ldap_entry *entry, const char *fingerprint,
                         char hex[LDAP_ENTRY_RAW_HASH_LEN])
{
    hex[0] = '\0';
    const struct ldap_attr **sorted =
        calloc(entry->n_attrs > 0 ? entry->n_attrs : 1, sizeof(*sorted));
    if (sorted == NULL)
        return false;
    struct raw_buf b = {0};
    static const char tag[] = "dirconn raw entry 1";
    raw_bytes(&b, tag, sizeof(tag) - 1);
    const char *fp = fingerprint != NULL ? fingerprint : "";
    raw_bytes(&b, fp, strlen(fp));
    char src = (char)('0' + (int)entry->id_source);
    raw_bytes(&b, &src, 1);
    raw_bytes(&b, entry->id, strlen(entry->id));
    raw_bytes(&b, entry->dn != NULL ? entry->dn : "", entry->dn != NULL ? strlen(entry->dn) : 0);
    for (size_t i = 0; i < entry->n_attrs; i++)
        sorted[i] = &entry->attrs[i];
    qsort(sorted, entry->n_attrs, sizeof(*sorted), cmp_attr_ptr);
    raw_len(&b, entry->n_attrs);
    for (size_t i = 0; i < entry->n_attrs; i++) {
        const struct ldap_attr *a = sorted[i];
        char lower[256];
        size_t n = strlen(a->name);
        if (n >= sizeof(lower))
            n = sizeof(lower) - 1; /* descriptions are cut at 255 bytes when stored */
        for (size_t k = 0; k < n; k++)
            lower[k] = (char)tolower((unsigned char)a->name[k]);
        raw_bytes(&b, lower, n);
        raw_len(&b, a->n_values);
        for (size_t v = 0; v < a->n_values; v++)
            raw_bytes(&b, a->values[v].data, a->values[v].len);
    }
    free(sorted);
    bool ok = !b.failed && digest_sha256_hex(NULL, b.p, b.len, hex);
    free(b.p);
    return ok;
}
