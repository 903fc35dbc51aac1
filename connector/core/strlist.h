/*
 * strlist.h - an ordered list of strings that owns its strings: the configuration's list keys,
 * the rootDSE's naming contexts and controls, a mail's recipients, the groups apply settled.
 */
#ifndef DIRCONN_CORE_STRLIST_H
#define DIRCONN_CORE_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialise ({0}) before the first strlist_push. */
struct strlist {
    char **v; /* n strings, each malloc'd and owned by the list */
    size_t n;
};

/*
 * strlist_push - append a copy of s (not NULL).
 * Returns false when memory ran out; the list is then unchanged.
 */
bool strlist_push(struct strlist *l, const char *s);

/* strlist_contains - whether the list holds a string equal to s (strcmp): a linear scan. */
bool strlist_contains(const struct strlist *l, const char *s);

/* strlist_clear - free the strings and the array; the list is empty ({0}) again. l may be NULL. */
void strlist_clear(struct strlist *l);

#endif
