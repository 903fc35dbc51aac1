/*
 * ldap_entry.h - the directory entry model handed from the LDAP source to the
 * sync engine, and the small pure helpers around it (objectGUID rendering,
 * filter value escaping, AD ranged-retrieval attribute options).
 *
 * An entry is a DN, its stable identifier (objectGUID on AD DS and AD LDS,
 * entryUUID on servers that lack objectGUID), and multi-valued attributes
 * whose values are kept as the raw bytes the server sent (binary attributes
 * such as objectGUID or thumbnailPhoto stay binary). Every value also carries
 * a terminating NUL byte past its length, so text values can be used as C
 * strings; binary values must be read with their length.
 */
#ifndef DIRCONN_LDAP_ENTRY_H
#define DIRCONN_LDAP_ENTRY_H

#include "connector/core/error.h"

#include <stdbool.h>
#include <stddef.h>

/* Length of a GUID string "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus NUL. */
#define LDAP_GUID_STRLEN 37

struct ldap_value {
    char *data; /* len bytes, followed by a NUL not counted in len */
    size_t len;
};

struct ldap_attr {
    char *name; /* attribute description as the server returned it, range option removed */
    struct ldap_value *values;
    size_t n_values;
};

/* Where an entry's stable identifier came from. */
enum ldap_id_source { LDAP_ID_NONE = 0, LDAP_ID_OBJECTGUID, LDAP_ID_ENTRYUUID };

struct ldap_entry {
    char *dn;
    char id[LDAP_GUID_STRLEN]; /* lower-case GUID/UUID string; "" when the entry has none */
    enum ldap_id_source id_source;
    struct ldap_attr *attrs;
    size_t n_attrs;
};

/*
 * ldap_guid_to_string - render a 16-byte objectGUID as the standard GUID string
 * (MS-DTYP 2.3.4.3): the first three fields are stored little-endian, the last
 * two big-endian, so bytes 33 22 11 00 55 44 77 66 88 99 AA BB CC DD EE FF give
 * "00112233-4455-6677-8899-aabbccddeeff". out must hold LDAP_GUID_STRLEN bytes.
 */
void ldap_guid_to_string(const unsigned char guid[16], char out[LDAP_GUID_STRLEN]);

/*
 * ldap_guid_from_string - the inverse of ldap_guid_to_string (case-insensitive,
 * with or without braces). Returns false if text is not a GUID string.
 */
bool ldap_guid_from_string(const char *text, unsigned char guid[16]);

/*
 * ldap_escape_filter_value - escape an assertion value for use inside an LDAP
 * filter (RFC 4515 3: '*', '(', ')', '\\' and NUL become \2A \28 \29 \5C \00),
 * through libldap's ldap_bv2escaped_filter_value. value/len may hold binary
 * bytes (an objectGUID). Returns a string the caller frees with free(), or
 * NULL when out of memory.
 */
char *ldap_escape_filter_value(const void *value, size_t len);

/*
 * ldap_range_parse - parse an AD ranged-retrieval attribute description
 * (MS-ADTS 3.1.1.3.1.3.3), e.g. "member;range=0-1499" or "member;range=1500-*".
 * On success stores the attribute name without the range option in base
 * (truncated to baselen-1), the bounds in *low and *high (*high = -1 for "*"),
 * and returns true. Returns false when the description has no valid range
 * option (bounds that do not fit a long, or an upper bound of LONG_MAX, which
 * leaves no next range, are not valid). Other options (";binary") are kept in base.
 */
bool ldap_range_parse(const char *desc, char *base, size_t baselen, long *low, long *high);

/*
 * ldap_entry_add_attr - append an empty attribute to entry, named by the
 * attribute description the server sent: desc_len bytes at desc (need not be
 * NUL-terminated; descriptions longer than 255 bytes are cut). A ranged
 * description (ldap_range_parse, MS-ADTS 3.1.1.3.1.3.3) is stored under its
 * name without the range option: *first_value receives the index of the
 * first value it carries and *next_range the index of the first value still
 * to read ("member;range=0-1499": 0 and 1500). Without a range option, or for
 * a range ending in "*", *next_range is -1 (the values are complete).
 * Returns the attribute, owned by entry and valid until the next
 * ldap_entry_add_attr, or NULL when out of memory (entry unchanged).
 */
struct ldap_attr *ldap_entry_add_attr(struct ldap_entry *entry, const char *desc, size_t desc_len,
                                      long *first_value, long *next_range);

/*
 * ldap_entry_set_id - set entry->id and id_source from the entry's
 * attributes: objectGUID when its first value has 16 bytes (rendered by
 * ldap_guid_to_string), else entryUUID when it is 36 characters (lower-cased),
 * else "" and LDAP_ID_NONE.
 */
void ldap_entry_set_id(struct ldap_entry *entry);

/*
 * ldap_entry_attr - the attribute named name (case-insensitive, options
 * ignored), or NULL. The result is owned by the entry.
 */
const struct ldap_attr *ldap_entry_attr(const struct ldap_entry *entry, const char *name);

/*
 * ldap_entry_str - the first value of attribute name as a C string, or NULL
 * when absent. Owned by the entry.
 */
const char *ldap_entry_str(const struct ldap_entry *entry, const char *name);

/* ldap_entry_has_class - whether objectClass holds class (case-insensitive). */
bool ldap_entry_has_class(const struct ldap_entry *entry, const char *objclass);

/*
 * ldap_dn_canonical - one spelling of a DN (RFC 4514): parsed with
 * ldap_str2dn and written back with ldap_dn2str (LDAPv3, UTF-8 kept as is,
 * special characters as hex escapes), so that
 * "CN=Doe\\, Jane" and "cn=Doe\\2C Jane" compare equal case-insensitively.
 * Returns a string the caller frees with free(), or NULL when dn does not
 * parse or memory runs out.
 */
char *ldap_dn_canonical(const char *dn);

/* ldap_entry_free - free an entry and everything it owns. entry may be NULL. */
void ldap_entry_free(struct ldap_entry *entry);

/*
 * ldap_value_is_text - whether a value is valid UTF-8 without control
 * characters (other than tab), i.e. safe to print and to send as a JSON string.
 */
bool ldap_value_is_text(const struct ldap_value *v);

/*
 * ldap_attr_is_binary - whether an attribute is binary by schema in AD DS,
 * AD LDS or OpenLDAP (objectGUID, objectSid, thumbnailPhoto, jpegPhoto,
 * userCertificate, ...), so its values are never treated as text.
 */
bool ldap_attr_is_binary(const char *name);

/* Length of a hex SHA-256 plus NUL. */
#define LDAP_ENTRY_RAW_HASH_LEN 65

/*
 * ldap_entry_raw_hash - a digest of the entry as the server sent it, taken
 * before any mapping: the hex SHA-256 (OpenSSL EVP) into hex[65] of a
 * canonical serialisation of
 *   - a format tag and fingerprint (NUL-terminated; the caller's digest of what
 *     else a record depends on: the configuration, the provider; "" for none),
 *   - the stable identifier and its source, and the DN,
 *   - every attribute, sorted by name (compared case-insensitively, names
 *     folded to lower case), each with its values in the order the server
 *     sent them (an attribute's value order can matter to a mapping),
 * every string and value preceded by its length as 8 bytes big-endian and
 * every list by its count, so that no two different entries serialise alike
 * by concatenation. The attributes are those the search asked for, so the
 * digest covers what the mapping and the selection read. Returns false when
 * out of memory or OpenSSL fails (hex is then "").
 */
bool ldap_entry_raw_hash(const struct ldap_entry *entry, const char *fingerprint,
                         char hex[LDAP_ENTRY_RAW_HASH_LEN]);

#endif
