/* object_kind.c - the names of the object kinds (object_kind.h). */
#include "connector/core/object_kind.h"

const char *object_kind_name(enum object_kind kind)
{
    static const char *const names[OBJECT_KINDS] = {"user", "group", "contact"};
    return (int)kind >= 0 && kind < OBJECT_KINDS ? names[kind] : "?";
}
