/*
 * fuzz_avatar.c - avatar URI patterns (connector/avatar.c): the pattern
 * parser, the PCRE2 placeholders and the rendering of a value.
 *
 * Input: parts separated by a line "%%" (fuzz_util.h): the pattern, a value,
 * then optionally an attribute name and an entry (fuzz_entry text). The
 * pattern is compiled; if it compiles, the value is rendered for every
 * placeholder (avatar_render_value with no attribute), for the named
 * attribute, and the entry is rendered with avatar_render.
 */
#include "connector/avatar.h"
#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *parts[4];
    size_t lens[4];
    size_t n = fuzz_parts(data, size, parts, lens, 4);
    struct avatar *a = NULL;
    struct dirconn_error err;
    if (n >= 1 && avatar_compile(parts[0], &a, &err) == DIRCONN_OK) {
        (void)avatar_attributes(a);
        const char *value = n >= 2 ? parts[1] : "";
        char why[256];
        char *uri = NULL;
        if (avatar_render_value(a, NULL, value, &uri, why, sizeof(why)) == DIRCONN_OK)
            free(uri);
        uri = NULL;
        if (n >= 3 && avatar_render_value(a, parts[2], value, &uri, why, sizeof(why)) == DIRCONN_OK)
            free(uri);
        if (n >= 4) {
            struct ldap_entry *e = fuzz_entry(parts[3], lens[3]);
            uri = NULL;
            if (e != NULL && avatar_render(a, e, &uri, why, sizeof(why)) == DIRCONN_OK)
                free(uri);
            ldap_entry_free(e);
        }
        avatar_free(a);
    }
    fuzz_parts_free(parts, n);
    return 0;
}
