/*
 * id_list.h - a growing list of (externalId, DN, kind, name) records: the
 * changes an incremental sync reads again, the objects a run touched, the
 * writes that failed (sync.c and its parts).
 */
#ifndef DIRCONN_ID_LIST_H
#define DIRCONN_ID_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct id_rec {
    char *id;   /* externalId, or NULL (an object known by its DN only) */
    char *dn;   /* DN, or NULL */
    char *name; /* userName / displayName, a failure's reason, a record: as the user says */
    int kind;   /* enum object_kind, or -1 when not known */
    bool deleted;
};

/* Zero-initialise ({0}) before the first id_list_add. */
struct id_list {
    struct id_rec *v;
    size_t n, cap;
};

/*
 * id_list_add - append one record; id, dn and name (each may be NULL) are
 * copied. Returns false when memory ran out (the list is unchanged).
 */
bool id_list_add(struct id_list *l, const char *id, const char *dn, int kind, const char *name,
                 bool deleted);

/* id_list_free - free the records and their strings; the list is empty ({0}) again. */
void id_list_free(struct id_list *l);

#endif
