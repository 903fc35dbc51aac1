/* id_list.c - a growing list of (externalId, DN, kind, name) records (id_list.h). */
#include "connector/id_list.h"

#include <stdlib.h>
#include <string.h>

bool id_list_add(struct id_list *l, const char *id, const char *dn, int kind, const char *name,
                 bool deleted)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct id_rec *g = realloc(l->v, cap * sizeof(*g));
        if (g == NULL)
            return false;
        l->v = g;
        l->cap = cap;
    }
    struct id_rec *r = &l->v[l->n];
    r->id = id != NULL ? strdup(id) : NULL;
    r->dn = dn != NULL ? strdup(dn) : NULL;
    r->name = name != NULL ? strdup(name) : NULL;
    r->kind = kind;
    r->deleted = deleted;
    if ((id != NULL && r->id == NULL) || (dn != NULL && r->dn == NULL) ||
        (name != NULL && r->name == NULL)) {
        free(r->id);
        free(r->dn);
        free(r->name);
        return false;
    }
    l->n++;
    return true;
}

void id_list_free(struct id_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].dn);
        free(l->v[i].name);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}
