/* strlist.c - an ordered list of owned strings (strlist.h). */
#include "connector/core/strlist.h"

#include <stdlib.h>
#include <string.h>

bool strlist_push(struct strlist *l, const char *s)
{
    char *copy = strdup(s);
    char **v = copy != NULL ? realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
    if (v == NULL) {
        free(copy);
        return false;
    }
    l->v = v;
    l->v[l->n++] = copy;
    return true;
}

bool strlist_contains(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

void strlist_clear(struct strlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
