/*
 * fuzz_util.h - small helpers shared by the fuzz harnesses (header only,
 * static inline functions): cutting an input into NUL-terminated parts and building
 * a directory entry from text the way the LDAP source builds one.
 */
#ifndef DIRCONN_FUZZ_UTIL_H
#define DIRCONN_FUZZ_UTIL_H

#include "connector/ldap_entry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The separator between the parts of one input: a line holding only "%%". */
#define FUZZ_SEP "\n%%\n"

/*
 * Cut data at each FUZZ_SEP into at most max parts, each a malloc'd
 * NUL-terminated copy (embedded NULs kept, lens[i] is the length). Returns
 * the number of parts; free with fuzz_parts_free.
 */
static inline size_t fuzz_parts(const uint8_t *data, size_t size, char **parts, size_t *lens,
                                size_t max)
{
    size_t n = 0, start = 0, sl = strlen(FUZZ_SEP);
    while (n < max) {
        size_t end = size;
        if (n + 1 < max) {
            for (size_t i = start; i + sl <= size; i++) {
                if (memcmp(data + i, FUZZ_SEP, sl) == 0) {
                    end = i;
                    break;
                }
            }
        }
        parts[n] = malloc(end - start + 1);
        if (parts[n] == NULL)
            break;
        memcpy(parts[n], data + start, end - start);
        parts[n][end - start] = '\0';
        lens[n] = end - start;
        n++;
        if (end == size)
            break;
        start = end + sl;
    }
    return n;
}

static inline void fuzz_parts_free(char **parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
}

static inline int fuzz_hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * An entry from LDIF-like text: the first line is the DN ("dn: " optional),
 * each further line "description: value" adds a value (raw bytes up to the
 * line end) or "description:: hex" a binary value (hex digits, other
 * characters skipped). Consecutive lines with the same description are the
 * values of one attribute; a new description is added with
 * ldap_entry_add_attr as the LDAP source does (ranged descriptions such as
 * "member;range=0-1499" included). The identifier is then set with
 * ldap_entry_set_id. NULL when out of memory.
 */
static inline struct ldap_entry *fuzz_entry(const char *text, size_t len)
{
    struct ldap_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    const char *p = text, *end = text + len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
    if (l >= 4 && strncmp(p, "dn: ", 4) == 0)
        p += 4, l -= 4;
    e->dn = strndup(p, l);
    if (e->dn == NULL) {
        free(e);
        return NULL;
    }
    p = nl != NULL ? nl + 1 : end;
    struct ldap_attr *attr = NULL;
    char last[256] = "";
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            size_t dl = (size_t)(colon - p);
            if (attr == NULL || dl >= sizeof(last) || strncmp(last, p, dl) != 0 ||
                last[dl] != '\0') {
                long first = 0, next = -1;
                attr = ldap_entry_add_attr(e, p, dl, &first, &next);
                if (attr == NULL)
                    break;
                snprintf(last, sizeof(last), "%.*s", (int)(dl < sizeof(last) ? dl : 0), p);
            }
            const char *v = colon + 1;
            bool binary = v < le && *v == ':';
            if (binary)
                v++;
            if (v < le && *v == ' ')
                v++;
            size_t vl = (size_t)(le - v);
            char *data = malloc(vl + 1);
            struct ldap_value *grown =
                data != NULL ? realloc(attr->values, (attr->n_values + 1) * sizeof(*grown)) : NULL;
            if (grown == NULL) {
                free(data);
                break;
            }
            attr->values = grown;
            size_t n = 0;
            if (binary) {
                for (size_t i = 0; i + 1 < vl; i++) {
                    int hi = fuzz_hex((unsigned char)v[i]), lo = fuzz_hex((unsigned char)v[i + 1]);
                    if (hi >= 0 && lo >= 0) {
                        data[n++] = (char)(hi << 4 | lo);
                        i++;
                    }
                }
            } else {
                memcpy(data, v, vl);
                n = vl;
            }
            data[n] = '\0';
            attr->values[attr->n_values].data = data;
            attr->values[attr->n_values].len = n;
            attr->n_values++;
        }
        p = le < end ? le + 1 : end;
    }
    ldap_entry_set_id(e);
    return e;
}

#endif
