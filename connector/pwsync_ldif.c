/* pwsync_ldif.c - the syncpasswords script input (pwsync_ldif.h). */
#include "connector/pwsync_ldif.h"

#include <ldap.h>
#include <ldif.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pwsync_ldif_clear(struct pwsync_ldif *l)
{
    if (l == NULL)
        return;
    if (l->password != NULL) {
        OPENSSL_cleanse(l->password, l->len);
        free(l->password);
    }
    free(l->dn);
    memset(l, 0, sizeof(*l));
    l->pwd_last_set = l->uac = -1;
}

static bool decimal(const struct berval *v, long long *out)
{
    char buf[32];
    if (v->bv_len == 0 || v->bv_len >= sizeof(buf))
        return false;
    memcpy(buf, v->bv_val, v->bv_len);
    buf[v->bv_len] = '\0';
    char *end;
    *out = strtoll(buf, &end, 10);
    return *end == '\0';
}

/* Take the values of one attribute of the record into out. */
static enum dirconn_err take(const LDAPMod *m, struct pwsync_ldif *out, unsigned long line,
                             struct dirconn_error *err)
{
    const struct berval *v = m->mod_bvalues != NULL ? m->mod_bvalues[0] : NULL;
    if (v == NULL)
        return DIRCONN_OK;
    if (strcasecmp(m->mod_type, "objectGUID") == 0) {
        unsigned char raw[16];
        char text[LDAP_GUID_STRLEN];
        if (v->bv_len == 16) {
            memcpy(raw, v->bv_val, 16);
        } else if (v->bv_len != LDAP_GUID_STRLEN - 1 ||
                   (memcpy(text, v->bv_val, v->bv_len), text[v->bv_len] = '\0',
                    !ldap_guid_from_string(text, raw))) {
            return dirconn_error_set(err, DIRCONN_EFAIL,
                                     "LDIF record at line %lu: objectGUID is not a GUID", line);
        }
        ldap_guid_to_string(raw, out->guid);
    } else if (strcasecmp(m->mod_type, "virtualClearTextUTF8") == 0) {
        if (memchr(v->bv_val, '\0', v->bv_len) != NULL)
            return dirconn_error_set(err, DIRCONN_EFAIL,
                                     "LDIF record at line %lu: virtualClearTextUTF8 holds a NUL "
                                     "byte",
                                     line);
        if (out->password != NULL) {
            OPENSSL_cleanse(out->password, out->len);
            free(out->password);
        }
        out->password = malloc(v->bv_len + 1);
        if (out->password == NULL)
            return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        memcpy(out->password, v->bv_val, v->bv_len);
        out->password[v->bv_len] = '\0';
        out->len = v->bv_len;
    } else if (strcasecmp(m->mod_type, "pwdLastSet") == 0) {
        if (!decimal(v, &out->pwd_last_set))
            out->pwd_last_set = -1;
    } else if (strcasecmp(m->mod_type, "userAccountControl") == 0) {
        if (!decimal(v, &out->uac))
            out->uac = -1;
    }
    return DIRCONN_OK;
}

/* Wipe every value libldap decoded (a base64 value is a copy of its own). */
static void wipe_values(LDIFRecord *lr)
{
    for (LDAPMod **m = lr->lrop_mods; m != NULL && *m != NULL; m++) {
        if (strcasecmp((*m)->mod_type, "virtualClearTextUTF8") != 0 || (*m)->mod_bvalues == NULL)
            continue;
        for (struct berval **v = (*m)->mod_bvalues; *v != NULL; v++)
            OPENSSL_cleanse((*v)->bv_val, (*v)->bv_len);
    }
}

enum dirconn_err pwsync_ldif_read(FILE *fp, struct pwsync_ldif *out, struct dirconn_error *err)
{
    memset(out, 0, sizeof(*out));
    out->pwd_last_set = out->uac = -1;
    LDIFFP lf = {.fp = fp, .prev = NULL};
    unsigned long lineno = 0;
    char *buf = NULL;
    int buflen = 0;
    if (ldif_read_record(&lf, &lineno, &buf, &buflen) <= 0 || buf == NULL) {
        ber_memfree(buf);
        return dirconn_error_set(err, DIRCONN_EFAIL, "LDIF: no record on the input");
    }
    size_t textlen = strlen(buf);
    struct berval rbuf = {.bv_len = textlen, .bv_val = buf};
    LDIFRecord lr;
    memset(&lr, 0, sizeof(lr));
    enum dirconn_err e = DIRCONN_OK;
    int rc = ldap_parse_ldif_record(&rbuf, lineno, &lr, "dirconn-pwsync",
                                    LDIF_DEFAULT_ADD | LDIF_NO_CONTROLS);
    if (rc != LDAP_SUCCESS) {
        e = dirconn_error_set(err, DIRCONN_EFAIL,
                              "LDIF record at line %lu: libldap cannot parse it (%s)", lineno,
                              ldap_err2string(rc));
    } else if (lr.lr_op != LDAP_REQ_ADD) {
        e = dirconn_error_set(err, DIRCONN_EFAIL,
                              "LDIF record at line %lu: a change record, not an object's content",
                              lineno);
    } else {
        out->dn = strndup(lr.lr_dn.bv_val != NULL ? lr.lr_dn.bv_val : "", lr.lr_dn.bv_len);
        if (out->dn == NULL)
            e = dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
        for (LDAPMod **m = lr.lrop_mods; e == DIRCONN_OK && m != NULL && *m != NULL; m++)
            e = take(*m, out, lineno, err);
        if (e == DIRCONN_OK && out->guid[0] == '\0')
            e = dirconn_error_set(err, DIRCONN_EFAIL, "LDIF record at line %lu: no objectGUID",
                                  lineno);
    }
    if (rc == LDAP_SUCCESS)
        wipe_values(&lr);
    ldap_ldif_record_done(&lr);
    OPENSSL_cleanse(buf, textlen);
    ber_memfree(buf);
    if (e != DIRCONN_OK)
        pwsync_ldif_clear(out);
    return e;
}
