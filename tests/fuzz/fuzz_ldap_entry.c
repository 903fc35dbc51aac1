/*
 * fuzz_ldap_entry.c - what the connector makes of the directory's answers
 * without a server: an entry as the LDAP source builds it
 * (ldap_entry_add_attr with ranged attributes such as member;range=0-1499,
 * ldap_entry_set_id with objectGUID rendering or entryUUID), the entry
 * helpers (DN canonical form, filter escaping, text checks, GUID strings),
 * the mapping of the entry as a user, a group and a contact with the default
 * mapping and an avatar pattern, and the DirSync and paged-results response
 * controls whose cookies the connector keeps (ldap_source_parse_cookie; the
 * cookie is then sent back in a new DirSync control as tracking.c does).
 *
 * Input: parts separated by lines "%%" (fuzz_util.h): the entry (fuzz_entry
 * text: DN line, then "attribute: value" or "attribute:: hex" lines), then
 * optionally the BER value of a response control (hex, as in fuzz_entry).
 */
#include "connector/core/config.h"
#include "connector/ldap_entry.h"
#include "connector/ldap_source.h"
#include "connector/mapping.h"
#include "fuzz_util.h"

#include <lber.h>
#include <ldap.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char conf[] = "[ldap]\nurls = ldaps://dc1.example.com\n"
                           "[avatar]\nenabled = yes\n"
                           "pattern = https://photos.example.com/{department}/{mail:^[^@]+}.jpg\n"
                           "[mapping]\nnickName = givenName \" \" sn | cn\n"
                           "name.formatted = dn()\n";

static struct mapping *maps[3];
static LDAP *ld;

static void init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    struct config *cfg = NULL;
    struct dirconn_error err;
    if (config_load_string(conf, "fuzz.conf", &cfg, &err) != DIRCONN_OK)
        abort();
    for (int k = OBJECT_USER; k <= OBJECT_CONTACT; k++) {
        if (mapping_compile(cfg, (enum object_kind)k, &maps[k], &err) != DIRCONN_OK)
            abort();
    }
    config_free(cfg);
    /* a handle that never connects: the control parsers only need one for their errors */
    if (ldap_initialize(&ld, "ldap://127.0.0.1:1") != LDAP_SUCCESS)
        abort();
}

static void controls(const char *hex, size_t len)
{
    char *bytes = malloc(len / 2 + 1);
    if (bytes == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        int hi = fuzz_hex((unsigned char)hex[i]), lo = fuzz_hex((unsigned char)hex[i + 1]);
        if (hi >= 0 && lo >= 0) {
            bytes[n++] = (char)(hi << 4 | lo);
            i++;
        }
    }
    LDAPControl ctrl = {LDAP_CONTROL_X_DIRSYNC, {n, bytes}, 0};
    int more = 0;
    struct berval cookie = {0, NULL};
    if (ldap_source_parse_cookie(ld, &ctrl, &more, &cookie) == LDAP_SUCCESS) {
        /* sent back as tracking.c does */
        LDAPControl *next = NULL;
        if (ldap_create_dirsync_control(ld, (int)LDAP_CONTROL_X_DIRSYNC_INCREMENTAL_VALUES, 1 << 20,
                                        &cookie, &next) == LDAP_SUCCESS)
            ldap_control_free(next);
    }
    ber_memfree(cookie.bv_val);
    ctrl.ldctl_oid = LDAP_CONTROL_PAGEDRESULTS;
    int estimate = 0;
    if (ldap_source_parse_cookie(ld, &ctrl, &estimate, &cookie) == LDAP_SUCCESS)
        ber_memfree(cookie.bv_val);
    free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    init();
    char *parts[2];
    size_t lens[2];
    size_t np = fuzz_parts(data, size, parts, lens, 2);
    struct ldap_entry *e = np > 0 ? fuzz_entry(parts[0], lens[0]) : NULL;
    if (e != NULL) {
        free(ldap_dn_canonical(e->dn));
        (void)ldap_entry_has_class(e, "user");
        for (size_t i = 0; i < e->n_attrs; i++) {
            const struct ldap_attr *a = &e->attrs[i];
            (void)ldap_attr_is_binary(a->name);
            (void)ldap_entry_attr(e, a->name);
            for (size_t j = 0; j < a->n_values; j++) {
                const struct ldap_value *v = &a->values[j];
                (void)ldap_value_is_text(v);
                free(ldap_escape_filter_value(v->data, v->len));
                unsigned char g[16];
                if (ldap_guid_from_string(v->data, g)) {
                    char s[LDAP_GUID_STRLEN];
                    ldap_guid_to_string(g, s);
                }
                if (j == 0 &&
                    (strcasecmp(a->name, "member") == 0 || strcasecmp(a->name, "manager") == 0))
                    free(ldap_dn_canonical(v->data));
            }
        }
        for (int k = OBJECT_USER; k <= OBJECT_CONTACT; k++) {
            struct mapping_result r;
            if (mapping_apply(maps[k], e, &r) == DIRCONN_OK) {
                mapping_result_clear(&r);
            }
        }
        ldap_entry_free(e);
    }
    if (np > 1)
        controls(parts[1], lens[1]);
    fuzz_parts_free(parts, np);
    return 0;
}
