/*
 * fuzz_config.c - the configuration file (connector/core/config.c, inih), its
 * [mapping] expressions (connector/mapping.c) and the [avatar] pattern
 * (connector/avatar.c).
 *
 * Input: the text of a configuration file, optionally followed by a line
 * "%%" and an entry (fuzz_util.h fuzz_entry text). The file is loaded with
 * config_load_string; a configuration that loads is compiled into the
 * mapping of each object kind (users with the avatar pattern when [avatar]
 * is enabled), and each compiled mapping is applied to the entry (without
 * one, to a fixed entry that is a user, a group and a contact at once), so
 * that every expression that compiles also runs.
 */
#include "connector/core/config.h"
#include "connector/mapping.h"
#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char sample[] =
    "dn: CN=Jane Doe\\, Sr.,OU=Staff,DC=example,DC=com\n"
    "objectClass: top\nobjectClass: person\nobjectClass: user\nobjectClass: group\n"
    "objectClass: contact\n"
    "objectGUID:: 3322110055447766 8899aabbccddeeff\n"
    "sAMAccountName: jdoe\nuserPrincipalName: jdoe@example.com\nmail: jane.doe@example.com\n"
    "givenName: Jane\nsn: Doe\ndisplayName: Jane Doe\ncn: Jane Doe\ntitle: Engineer\n"
    "department: R&D\ntelephoneNumber: +1 555 0100\nmobile: +1 555 0101\n"
    "employeeID: 00042\nuserAccountControl: 512\ninitials: J\nco: France\nl: Paris\n"
    "manager: CN=Boss,OU=Staff,DC=example,DC=com\n"
    "member: CN=Jane Doe\\, Sr.,OU=Staff,DC=example,DC=com\nmember: CN=Bob,DC=example,DC=com\n"
    "description: caf\xc3\xa9 \xe5\xb1\xb1\xe7\x94\xb0\n"
    "thumbnailPhoto:: ffd8ffe000104a464946\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *parts[2];
    size_t lens[2];
    size_t n = fuzz_parts(data, size, parts, lens, 2);
    if (n == 0)
        return 0;
    const char *text = parts[0];
    struct config *cfg = NULL;
    struct dirconn_error err;
    if (config_load_string(text, "fuzz.conf", &cfg, &err) == DIRCONN_OK) {
        struct ldap_entry *e =
            n > 1 ? fuzz_entry(parts[1], lens[1]) : fuzz_entry(sample, sizeof(sample) - 1);
        for (int kind = OBJECT_USER; kind <= OBJECT_CONTACT; kind++) {
            struct mapping *m = NULL;
            if (mapping_compile(cfg, (enum object_kind)kind, &m, &err) != DIRCONN_OK)
                continue;
            (void)mapping_attributes(m);
            const struct mapping_target *t = NULL;
            (void)mapping_targets(m, &t);
            struct mapping_result r;
            if (e != NULL && mapping_apply(m, e, &r) == DIRCONN_OK) {
                mapping_result_clear(&r);
            }
            mapping_free(m);
        }
        ldap_entry_free(e);
        config_free(cfg);
    }
    fuzz_parts_free(parts, n);
    return 0;
}
