/*
 * pwsync_ldif.h - one object's LDIF as samba-tool user syncpasswords hands it to its script
 * (docs/password-sync.md), read with libldap's LDIF reader (ldif_read_record) and parser
 * (ldap_parse_ldif_record, a content record taken as an add).
 *
 * The attributes read: objectGUID (its GUID string, or 16 bytes), virtualClearTextUTF8 (the
 * cleartext from Primary:CLEARTEXT or, with --decrypt-samba-gpg, Primary:SambaGPG; often
 * base64 "::"), pwdLastSet and userAccountControl (decimal). Every buffer that held the
 * cleartext (the record text, libldap's decoded values) is wiped with OPENSSL_cleanse.
 */
#ifndef DIRCONN_PWSYNC_LDIF_H
#define DIRCONN_PWSYNC_LDIF_H

#include "connector/core/error.h"
#include "connector/ldap_entry.h"

#include <stddef.h>
#include <stdio.h>

struct pwsync_ldif {
    char *dn;                    /* the record's DN (malloc) */
    char guid[LDAP_GUID_STRLEN]; /* objectGUID, lower-case GUID string */
    char *password;              /* virtualClearTextUTF8 (malloc, NUL-terminated), or NULL */
    size_t len;                  /* bytes of password */
    long long pwd_last_set;      /* pwdLastSet, -1 when absent */
    long long uac;               /* userAccountControl, -1 when absent */
};

/*
 * pwsync_ldif_read - read the first LDIF record of fp (comments, "version:" and leading blank
 * lines are skipped by libldap) into *out (pwsync_ldif_clear). Returns DIRCONN_OK; DIRCONN_EFAIL
 * with one line "LDIF line N: cause" (never a value) for no record, a record libldap cannot
 * parse, a change record other than an add, a missing or malformed objectGUID, a password that
 * holds a NUL byte; DIRCONN_ENOMEM.
 */
enum dirconn_err pwsync_ldif_read(FILE *fp, struct pwsync_ldif *out, struct dirconn_error *err);

/* pwsync_ldif_clear - wipe the password, free and zero. Safe on a zeroed struct. */
void pwsync_ldif_clear(struct pwsync_ldif *l);

#endif
