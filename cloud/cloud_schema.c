/* cloud_schema.c - SCIM 2.0 schema tables, validation and discovery documents. */
#include "cloud/cloud_schema.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int cloud_scim_err_set(struct cloud_scim_err *err, int status, const char *scim_type,
                       const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->status = status;
    err->scim_type = scim_type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    return -1;
}

#define NSUB(a) (sizeof(a) / sizeof((a)[0]))

/* Shorthands for the tables: S simple readWrite, RO readOnly. */
#define ATTR(n, t, m, req, ce, mut, ret, uniq, desc, canon, refs, subs, nsubs)                     \
    {                                                                                              \
        n, t, m, req, ce, mut, ret, uniq, desc, canon, refs, subs, nsubs                           \
    }
#define STR(n, desc)                                                                               \
    ATTR(n, CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT, CLOUD_U_NONE, \
         desc, NULL, NULL, NULL, 0)
#define BOOL(n, desc)                                                                              \
    ATTR(n, CLOUD_T_BOOLEAN, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,              \
         CLOUD_U_NONE, desc, NULL, NULL, NULL, 0)

static const char *const canon_email_types[] = {"work", "home", "other", NULL};
static const char *const canon_phone_types[] = {"work",  "home",  "mobile", "fax",
                                                "pager", "other", NULL};
static const char *const canon_addr_types[] = {"work", "home", "other", NULL};
static const char *const canon_photo_types[] = {"photo", "thumbnail", NULL};
static const char *const canon_member_types[] = {"User", "Group", NULL};
static const char *const canon_group_types[] = {"direct", "indirect", NULL};
static const char *const refs_external[] = {"external", NULL};
static const char *const refs_user_group[] = {"User", "Group", NULL};
static const char *const refs_user[] = {"User", NULL};

/* value/display/type/primary: the usual multi-valued sub-attributes. */
#define MV_SUBS(name, vtype, canon)                                                                \
    static const struct cloud_attr_def name[] = {                                                  \
        ATTR("value", vtype, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,              \
             CLOUD_U_NONE, "The value.", NULL, NULL, NULL, 0),                                     \
        STR("display", "A human-readable name, primarily used for display purposes."),             \
        ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,      \
             CLOUD_U_NONE, "A label indicating the attribute's function.", canon, NULL, NULL, 0),  \
        BOOL("primary", "Whether this is the primary value."),                                     \
    }

MV_SUBS(emails_subs, CLOUD_T_STRING, canon_email_types);
MV_SUBS(phones_subs, CLOUD_T_STRING, canon_phone_types);
MV_SUBS(ims_subs, CLOUD_T_STRING, NULL);
MV_SUBS(roles_subs, CLOUD_T_STRING, NULL);
MV_SUBS(ents_subs, CLOUD_T_STRING, NULL);
MV_SUBS(certs_subs, CLOUD_T_BINARY, NULL);

static const struct cloud_attr_def photos_subs[] = {
    ATTR("value", CLOUD_T_REFERENCE, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "URL of a photo of the User.", NULL, refs_external, NULL, 0),
    STR("display", "A human-readable name, primarily used for display purposes."),
    ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A label indicating the attribute's function.", canon_photo_types, NULL,
         NULL, 0),
    BOOL("primary", "Whether this is the primary photo."),
};

static const struct cloud_attr_def name_subs[] = {
    STR("formatted", "The full name."),
    STR("familyName", "The family name."),
    STR("givenName", "The given name."),
    STR("middleName", "The middle name(s)."),
    STR("honorificPrefix", "The honorific prefix(es)."),
    STR("honorificSuffix", "The honorific suffix(es)."),
};

static const struct cloud_attr_def addr_subs[] = {
    STR("formatted", "The full mailing address."),
    STR("streetAddress", "The full street address component."),
    STR("locality", "The city or locality component."),
    STR("region", "The state or region component."),
    STR("postalCode", "The zip code or postal code component."),
    STR("country", "The country name component."),
    ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A label indicating the attribute's function.", canon_addr_types, NULL, NULL,
         0),
    BOOL("primary", "Whether this is the primary address."),
};

static const struct cloud_attr_def user_groups_subs[] = {
    ATTR("value", CLOUD_T_STRING, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The identifier of the User's group.", NULL, NULL, NULL, 0),
    ATTR("$ref", CLOUD_T_REFERENCE, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The URI of the corresponding Group resource.", NULL, refs_user_group, NULL,
         0),
    ATTR("display", CLOUD_T_STRING, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The displayName of the group.", NULL, NULL, NULL, 0),
    ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "direct or indirect membership.", canon_group_types, NULL, NULL, 0),
};

#define MV(n, subs, desc)                                                                          \
    ATTR(n, CLOUD_T_COMPLEX, true, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT, CLOUD_U_NONE, \
         desc, NULL, NULL, subs, NSUB(subs))

static const struct cloud_attr_def user_attrs[] = {
    ATTR("userName", CLOUD_T_STRING, false, true, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_SERVER, "Unique identifier for the User, case-insensitive.", NULL, NULL, NULL, 0),
    ATTR("name", CLOUD_T_COMPLEX, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The components of the user's real name.", NULL, NULL, name_subs,
         NSUB(name_subs)),
    STR("displayName", "The name of the User, suitable for display to end-users."),
    STR("nickName", "The casual way to address the user."),
    ATTR("profileUrl", CLOUD_T_REFERENCE, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A fully qualified URL pointing to a page representing the User.", NULL,
         refs_external, NULL, 0),
    STR("title", "The user's title, such as \"Vice President\"."),
    STR("userType", "Used to identify the relationship between the organization and the user."),
    STR("preferredLanguage", "The User's preferred written or spoken language."),
    STR("locale", "The User's default location."),
    STR("timezone", "The User's time zone in the Olson time zone database format."),
    BOOL("active", "The User's administrative status."),
    ATTR("password", CLOUD_T_STRING, false, false, false, CLOUD_M_WRITEONLY, CLOUD_R_NEVER,
         CLOUD_U_NONE, "The User's cleartext password (kept as a salted hash, never returned).",
         NULL, NULL, NULL, 0),
    MV("emails", emails_subs, "Email addresses for the user."),
    MV("phoneNumbers", phones_subs, "Phone numbers for the User."),
    MV("ims", ims_subs, "Instant messaging addresses for the User."),
    MV("photos", photos_subs, "URLs of photos of the User."),
    MV("addresses", addr_subs, "A physical mailing address for this User."),
    ATTR("groups", CLOUD_T_COMPLEX, true, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A list of groups to which the user belongs.", NULL, NULL, user_groups_subs,
         NSUB(user_groups_subs)),
    MV("entitlements", ents_subs, "A list of entitlements for the User."),
    MV("roles", roles_subs, "A list of roles for the User (\"admin\" makes an administrator)."),
    MV("x509Certificates", certs_subs, "A list of certificates issued to the User."),
};

static const struct cloud_attr_def members_subs[] = {
    ATTR("value", CLOUD_T_STRING, false, false, true, CLOUD_M_IMMUTABLE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "Identifier of the member of this Group.", NULL, NULL, NULL, 0),
    ATTR("$ref", CLOUD_T_REFERENCE, false, false, false, CLOUD_M_IMMUTABLE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The URI corresponding to a SCIM resource that is a member.", NULL,
         refs_user_group, NULL, 0),
    ATTR("display", CLOUD_T_STRING, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A human-readable name for the member.", NULL, NULL, NULL, 0),
    ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_IMMUTABLE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A label indicating the type of resource.", canon_member_types, NULL, NULL,
         0),
};

static const struct cloud_attr_def group_attrs[] = {
    ATTR("displayName", CLOUD_T_STRING, false, true, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A human-readable name for the Group.", NULL, NULL, NULL, 0),
    ATTR("members", CLOUD_T_COMPLEX, true, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A list of members of the Group.", NULL, NULL, members_subs,
         NSUB(members_subs)),
};

static const struct cloud_attr_def manager_subs[] = {
    ATTR("value", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The id of the SCIM resource representing the User's manager.", NULL, NULL,
         NULL, 0),
    ATTR("$ref", CLOUD_T_REFERENCE, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The URI of the SCIM resource representing the User's manager.", NULL,
         refs_user, NULL, 0),
    ATTR("displayName", CLOUD_T_STRING, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The displayName of the User's manager.", NULL, NULL, NULL, 0),
};

static const struct cloud_attr_def enterprise_attrs[] = {
    STR("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
    STR("costCenter", "Identifies the name of a cost center."),
    STR("organization", "Identifies the name of an organization."),
    STR("division", "Identifies the name of a division."),
    STR("department", "Identifies the name of a department."),
    ATTR("manager", CLOUD_T_COMPLEX, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The User's manager.", NULL, NULL, manager_subs, NSUB(manager_subs)),
};

static const struct cloud_attr_def contact_email_subs[] = {
    ATTR("value", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "Email address of the contact.", NULL, NULL, NULL, 0),
    STR("display", "A human-readable name, primarily used for display purposes."),
    ATTR("type", CLOUD_T_STRING, false, false, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "A label indicating the attribute's function.", canon_email_types, NULL,
         NULL, 0),
    BOOL("primary", "Whether this is the primary address."),
};

static const struct cloud_attr_def contact_attrs[] = {
    ATTR("displayName", CLOUD_T_STRING, false, true, false, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The name of the contact, suitable for display.", NULL, NULL, NULL, 0),
    MV("emails", contact_email_subs, "Email addresses of the contact."),
};

static const struct cloud_attr_def meta_subs[] = {
    ATTR("resourceType", CLOUD_T_STRING, false, false, true, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The name of the resource type.", NULL, NULL, NULL, 0),
    ATTR("created", CLOUD_T_DATETIME, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "When the resource was added.", NULL, NULL, NULL, 0),
    ATTR("lastModified", CLOUD_T_DATETIME, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "When the resource was last modified.", NULL, NULL, NULL, 0),
    ATTR("location", CLOUD_T_REFERENCE, false, false, true, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The URI of the resource.", NULL, NULL, NULL, 0),
    ATTR("version", CLOUD_T_STRING, false, false, true, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "The version (weak entity tag) of the resource.", NULL, NULL, NULL, 0),
};

static const struct cloud_attr_def common_attrs[] = {
    ATTR("id", CLOUD_T_STRING, false, false, true, CLOUD_M_READONLY, CLOUD_R_ALWAYS, CLOUD_U_SERVER,
         "Server-assigned identifier.", NULL, NULL, NULL, 0),
    ATTR("externalId", CLOUD_T_STRING, false, false, true, CLOUD_M_READWRITE, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "Identifier defined by the provisioning client.", NULL, NULL, NULL, 0),
    ATTR("meta", CLOUD_T_COMPLEX, false, false, false, CLOUD_M_READONLY, CLOUD_R_DEFAULT,
         CLOUD_U_NONE, "Resource metadata.", NULL, NULL, meta_subs, NSUB(meta_subs)),
};

static const struct cloud_schema_def schema_user = {CLOUD_SCHEMA_USER, "User", "User Account",
                                                    user_attrs, NSUB(user_attrs)};
static const struct cloud_schema_def schema_group = {CLOUD_SCHEMA_GROUP, "Group", "Group",
                                                     group_attrs, NSUB(group_attrs)};
static const struct cloud_schema_def schema_enterprise = {CLOUD_SCHEMA_ENTERPRISE, "EnterpriseUser",
                                                          "Enterprise User", enterprise_attrs,
                                                          NSUB(enterprise_attrs)};
static const struct cloud_schema_def schema_contact = {
    CLOUD_SCHEMA_CONTACT, "Contact", "Directory contact (dirconn extension resource)",
    contact_attrs, NSUB(contact_attrs)};

static const struct cloud_schema_def *const all_schemas[] = {&schema_user, &schema_enterprise,
                                                             &schema_group, &schema_contact};

/* Not const: cloud_schema_configure takes the extension and the Contact type away. */
static struct cloud_rtype_def rtypes[CLOUD_RK_MAX] = {
    {CLOUD_RK_USER, "User", "/Users", "User Account", &schema_user, &schema_enterprise, false},
    {CLOUD_RK_GROUP, "Group", "/Groups", "Group", &schema_group, NULL, false},
    {CLOUD_RK_CONTACT, "Contact", "/Contacts", "Directory contact", &schema_contact, NULL, false},
};

static bool enterprise_on = true, contacts_on = true;
static const struct cloud_attr_def *omitted[CLOUD_SCHEMA_MAX_OMIT]; /* cloud_schema_omit */
static size_t nomitted;

static bool is_omitted(const struct cloud_attr_def *d)
{
    for (size_t i = 0; i < nomitted; i++) {
        if (omitted[i] == d)
            return true;
    }
    return false;
}

static const struct cloud_attr_def *find_def(const struct cloud_attr_def *defs, size_t n,
                                             const char *name, size_t namelen)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(defs[i].name) == namelen && strncasecmp(defs[i].name, name, namelen) == 0)
            return &defs[i];
    }
    return NULL;
}

int cloud_schema_omit(const char *const *paths, char *msg, size_t msglen)
{
    const struct cloud_attr_def *set[CLOUD_SCHEMA_MAX_OMIT];
    size_t n = 0;
    for (const char *const *p = paths; p != NULL && *p != NULL; p++) {
        const char *colon = strrchr(*p, ':');
        const struct cloud_schema_def *s = NULL;
        for (size_t i = 0; colon != NULL && i < NSUB(all_schemas); i++) {
            if (strlen(all_schemas[i]->id) == (size_t)(colon - *p) &&
                strncasecmp(all_schemas[i]->id, *p, (size_t)(colon - *p)) == 0)
                s = all_schemas[i];
        }
        if (s == NULL) {
            snprintf(msg, msglen, "omitted attribute '%s': no such schema", *p);
            return -1;
        }
        const char *name = colon + 1, *dot = strchr(name, '.');
        const struct cloud_attr_def *d =
            find_def(s->attrs, s->nattrs, name, dot != NULL ? (size_t)(dot - name) : strlen(name));
        if (d != NULL && dot != NULL)
            d = find_def(d->subs, d->nsubs, dot + 1, strlen(dot + 1));
        if (d == NULL || d->required || n == CLOUD_SCHEMA_MAX_OMIT) {
            snprintf(msg, msglen, "omitted attribute '%s': %s", *p,
                     d == NULL     ? "no such attribute"
                     : d->required ? "required"
                                   : "too many");
            return -1;
        }
        set[n++] = d;
    }
    memcpy(omitted, set, n * sizeof(set[0]));
    nomitted = n;
    return 0;
}

void cloud_schema_configure(bool enterprise, bool contacts)
{
    enterprise_on = enterprise;
    contacts_on = contacts;
    rtypes[CLOUD_RK_USER].ext = enterprise ? &schema_enterprise : NULL;
}

bool cloud_schema_rtype_served(enum cloud_rkind kind)
{
    return kind != CLOUD_RK_CONTACT || contacts_on;
}

static bool schema_served(const struct cloud_schema_def *s)
{
    return (s != &schema_enterprise || enterprise_on) && (s != &schema_contact || contacts_on);
}

const struct cloud_rtype_def *cloud_schema_rtype(enum cloud_rkind kind)
{
    if ((int)kind < 0 || kind >= CLOUD_RK_MAX)
        return NULL;
    return &rtypes[kind];
}

const struct cloud_rtype_def *cloud_schema_rtype_by_endpoint(const char *segment)
{
    for (size_t i = 0; i < CLOUD_RK_MAX; i++) {
        if (cloud_schema_rtype_served(rtypes[i].kind) &&
            strcmp(rtypes[i].endpoint + 1, segment) == 0)
            return &rtypes[i];
    }
    return NULL;
}

const struct cloud_attr_def *cloud_schema_common(size_t *n)
{
    *n = NSUB(common_attrs);
    return common_attrs;
}

const struct cloud_attr_def *cloud_schema_find(const struct cloud_attr_def *defs, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(defs[i].name, name) == 0)
            return is_omitted(&defs[i]) ? NULL : &defs[i];
    }
    return NULL;
}

const struct cloud_schema_def *cloud_schema_by_id(const char *id)
{
    for (size_t i = 0; i < NSUB(all_schemas); i++) {
        if (schema_served(all_schemas[i]) && strcasecmp(all_schemas[i]->id, id) == 0)
            return all_schemas[i];
    }
    return NULL;
}

json_t *cloud_json_get_ci(const json_t *obj, const char *key, const char **actual_key)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, key) == 0) {
            if (actual_key != NULL)
                *actual_key = k;
            return v;
        }
    }
    return NULL;
}

int cloud_schema_resolve(const struct cloud_rtype_def *rt, const char *uri, const char *attr,
                         const char *sub, struct cloud_attr_ref *ref, struct cloud_scim_err *err)
{
    memset(ref, 0, sizeof(*ref));
    const struct cloud_attr_def *defs = rt->core->attrs;
    size_t n = rt->core->nattrs;
    if (uri != NULL) {
        if (strcasecmp(uri, rt->core->id) == 0) {
            /* core schema: default */
        } else if (rt->ext != NULL && strcasecmp(uri, rt->ext->id) == 0) {
            ref->ext = rt->ext;
            defs = rt->ext->attrs;
            n = rt->ext->nattrs;
        } else {
            return cloud_scim_err_set(err, 400, NULL, "unknown schema '%s' for %s", uri, rt->name);
        }
    }
    const struct cloud_attr_def *a = cloud_schema_find(defs, n, attr);
    if (a == NULL && ref->ext == NULL) {
        size_t nc;
        const struct cloud_attr_def *common = cloud_schema_common(&nc);
        a = cloud_schema_find(common, nc, attr);
    }
    if (a == NULL)
        return cloud_scim_err_set(err, 400, NULL, "unknown attribute '%s' for %s", attr, rt->name);
    ref->attr = a;
    if (sub != NULL) {
        if (a->type != CLOUD_T_COMPLEX)
            return cloud_scim_err_set(err, 400, NULL, "attribute '%s' has no sub-attributes",
                                      a->name);
        ref->sub = cloud_schema_find(a->subs, a->nsubs, sub);
        if (ref->sub == NULL)
            return cloud_scim_err_set(err, 400, NULL, "unknown sub-attribute '%s.%s'", a->name,
                                      sub);
    }
    return 0;
}

/* --- dateTime --------------------------------------------------------------------------- */

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

bool cloud_schema_parse_datetime(const char *s, long long *ms)
{
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
    size_t len = strlen(s);
    if (len < 20)
        return false;
    for (int i = 0; i < 4; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    int mon = two_digits(s + 5), day = two_digits(s + 8), hh = two_digits(s + 11),
        mm = two_digits(s + 14), ss = two_digits(s + 17);
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (day > mdays[mon - 1])
        return false;
    if (mon == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return false;
    const char *p = s + 19;
    long long frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return false;
        for (int i = digits; i < 3; i++)
            frac_ms *= 10;
    }
    long long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = two_digits(p + 1);
        if (oh < 0 || oh > 23 || p[3] != ':')
            return false;
        int om = two_digits(p + 4);
        if (om < 0 || om > 59)
            return false;
        offset_s = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    long long days = days_from_civil(year, (unsigned)mon, (unsigned)day);
    long long secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_s;
    if (ms != NULL)
        *ms = secs * 1000 + frac_ms;
    return true;
}

/* --- validation ------------------------------------------------------------------------- */

static const char *type_name(enum cloud_attr_type t)
{
    static const char *const names[] = {"string",   "boolean", "decimal",   "integer",
                                        "dateTime", "binary",  "reference", "complex"};
    return names[t];
}

static int check_scalar(const struct cloud_attr_def *def, const json_t *v, const char *where,
                        struct cloud_scim_err *err)
{
    switch (def->type) {
    case CLOUD_T_STRING:
    case CLOUD_T_REFERENCE:
        if (!json_is_string(v))
            break;
        return 0;
    case CLOUD_T_BOOLEAN:
        if (!json_is_boolean(v))
            break;
        return 0;
    case CLOUD_T_INTEGER:
        if (!json_is_integer(v))
            break;
        return 0;
    case CLOUD_T_DECIMAL:
        if (!json_is_number(v))
            break;
        return 0;
    case CLOUD_T_DATETIME:
        if (!json_is_string(v))
            break;
        if (!cloud_schema_parse_datetime(json_string_value(v), NULL))
            return cloud_scim_err_set(err, 400, "invalidValue",
                                      "'%s' is not a valid dateTime (RFC 3339)", where);
        return 0;
    case CLOUD_T_BINARY: {
        if (!json_is_string(v))
            break;
        size_t len = json_string_length(v);
        if (len % 4 != 0 || len > 1024 * 1024)
            return cloud_scim_err_set(err, 400, "invalidValue", "'%s' is not valid base64", where);
        unsigned char *buf = malloc(len / 4 * 3 + 1);
        if (buf == NULL)
            return cloud_scim_err_set(err, 500, NULL, "out of memory");
        int n = len == 0
                    ? 0
                    : EVP_DecodeBlock(buf, (const unsigned char *)json_string_value(v), (int)len);
        free(buf);
        if (n < 0)
            return cloud_scim_err_set(err, 400, "invalidValue", "'%s' is not valid base64", where);
        return 0;
    }
    case CLOUD_T_COMPLEX:
        break;
    }
    return cloud_scim_err_set(err, 400, "invalidValue", "'%s' must be of type %s%s", where,
                              type_name(def->type), def->multi ? " (multi-valued)" : "");
}

static int canon_complex(const struct cloud_attr_def *def, const json_t *in, json_t **out,
                         const char *where, struct cloud_scim_err *err);

/* Validate one value (array if multi) and return a canonical copy (NULL for "unassigned"). */
static int canon_value(const struct cloud_attr_def *def, const json_t *v, json_t **out,
                       const char *where, struct cloud_scim_err *err)
{
    *out = NULL;
    if (json_is_null(v))
        return 0;
    if (def->multi) {
        if (!json_is_array(v))
            return cloud_scim_err_set(err, 400, "invalidValue", "'%s' must be an array", where);
        json_t *arr = json_array();
        size_t i;
        json_t *el;
        int primaries = 0;
        json_array_foreach(v, i, el)
        {
            json_t *c = NULL;
            char w[256];
            snprintf(w, sizeof(w), "%s[%zu]", where, i);
            int rc =
                def->type == CLOUD_T_COMPLEX
                    ? canon_complex(def, el, &c, w, err)
                    : (check_scalar(def, el, w, err) == 0 ? ((c = json_deep_copy(el)), 0) : -1);
            if (rc != 0) {
                json_decref(arr);
                return -1;
            }
            if (c == NULL)
                continue;
            if (json_is_true(json_object_get(c, "primary")))
                primaries++;
            json_array_append_new(arr, c);
        }
        if (primaries > 1) {
            json_decref(arr);
            return cloud_scim_err_set(err, 400, "invalidValue",
                                      "'%s' has more than one primary value", where);
        }
        if (json_array_size(arr) == 0) {
            json_decref(arr);
            return 0;
        }
        *out = arr;
        return 0;
    }
    if (def->type == CLOUD_T_COMPLEX)
        return canon_complex(def, v, out, where, err);
    if (check_scalar(def, v, where, err) != 0)
        return -1;
    *out = json_deep_copy(v);
    return 0;
}

static int canon_complex(const struct cloud_attr_def *def, const json_t *in, json_t **out,
                         const char *where, struct cloud_scim_err *err)
{
    *out = NULL;
    if (json_is_null(in))
        return 0;
    if (!json_is_object(in))
        return cloud_scim_err_set(err, 400, "invalidValue", "'%s' must be an object", where);
    json_t *obj = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        const struct cloud_attr_def *sd = cloud_schema_find(def->subs, def->nsubs, k);
        if (sd == NULL) {
            json_decref(obj);
            return cloud_scim_err_set(err, 400, "invalidSyntax", "unknown sub-attribute '%s.%s'",
                                      where, k);
        }
        if (json_object_get(obj, sd->name) != NULL) {
            json_decref(obj);
            return cloud_scim_err_set(err, 400, "invalidSyntax", "duplicate attribute '%s.%s'",
                                      where, sd->name);
        }
        if (sd->mutability == CLOUD_M_READONLY)
            continue;
        char w[256];
        snprintf(w, sizeof(w), "%s.%s", where, sd->name);
        json_t *c = NULL;
        if (canon_value(sd, v, &c, w, err) != 0) {
            json_decref(obj);
            return -1;
        }
        if (c != NULL)
            json_object_set_new(obj, sd->name, c);
    }
    if (json_object_size(obj) == 0) {
        json_decref(obj);
        return 0;
    }
    *out = obj;
    return 0;
}

/* Canonicalise the attributes of one schema from obj into out. */
static int canon_attrs(const struct cloud_schema_def *s, const json_t *obj, json_t *out, bool top,
                       const struct cloud_rtype_def *rt, struct cloud_scim_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (top) {
            if (strcmp(k, "schemas") == 0)
                continue;
            if (rt->ext != NULL && strcasecmp(k, rt->ext->id) == 0)
                continue; /* handled by the caller */
            size_t nc;
            const struct cloud_attr_def *common = cloud_schema_common(&nc);
            const struct cloud_attr_def *cd = cloud_schema_find(common, nc, k);
            if (cd != NULL) {
                if (cd->mutability == CLOUD_M_READONLY)
                    continue;
                if (json_object_get(out, cd->name) != NULL)
                    return cloud_scim_err_set(err, 400, "invalidSyntax", "duplicate attribute '%s'",
                                              cd->name);
                json_t *c = NULL;
                if (canon_value(cd, v, &c, cd->name, err) != 0)
                    return -1;
                if (c != NULL)
                    json_object_set_new(out, cd->name, c);
                continue;
            }
        }
        const struct cloud_attr_def *d = cloud_schema_find(s->attrs, s->nattrs, k);
        if (d == NULL)
            return cloud_scim_err_set(err, 400, "invalidSyntax",
                                      "unknown attribute '%s' for schema %s", k, s->id);
        if (json_object_get(out, d->name) != NULL)
            return cloud_scim_err_set(err, 400, "invalidSyntax", "duplicate attribute '%s'",
                                      d->name);
        if (d->mutability == CLOUD_M_READONLY)
            continue;
        json_t *c = NULL;
        if (canon_value(d, v, &c, d->name, err) != 0)
            return -1;
        if (d->mutability == CLOUD_M_WRITEONLY) {
            json_decref(c); /* validated, never stored */
            continue;
        }
        if (c != NULL)
            json_object_set_new(out, d->name, c);
    }
    for (size_t i = 0; i < s->nattrs; i++) {
        const struct cloud_attr_def *d = &s->attrs[i];
        if (!d->required)
            continue;
        json_t *c = json_object_get(out, d->name);
        if (c == NULL || (json_is_string(c) && json_string_length(c) == 0))
            return cloud_scim_err_set(err, 400, "invalidValue",
                                      "required attribute '%s' is missing or empty", d->name);
    }
    return 0;
}

int cloud_schema_validate(const struct cloud_rtype_def *rt, const json_t *in, json_t **out,
                          struct cloud_scim_err *err)
{
    *out = NULL;
    if (!json_is_object(in))
        return cloud_scim_err_set(err, 400, "invalidSyntax", "the body must be a JSON object");
    const char *schemas_key = NULL;
    json_t *schemas = cloud_json_get_ci(in, "schemas", &schemas_key);
    if (schemas == NULL || strcmp(schemas_key, "schemas") != 0)
        return cloud_scim_err_set(err, 400, "invalidSyntax", "'schemas' is missing");
    if (!json_is_array(schemas) || json_array_size(schemas) == 0)
        return cloud_scim_err_set(err, 400, "invalidSyntax",
                                  "'schemas' must be a non-empty array of URNs");
    bool has_core = false, has_ext = false;
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s)
    {
        if (!json_is_string(s))
            return cloud_scim_err_set(err, 400, "invalidSyntax", "'schemas' must hold strings");
        const char *urn = json_string_value(s);
        if (strcasecmp(urn, rt->core->id) == 0 && !has_core)
            has_core = true;
        else if (rt->ext != NULL && strcasecmp(urn, rt->ext->id) == 0 && !has_ext)
            has_ext = true;
        else
            return cloud_scim_err_set(err, 400, "invalidSyntax",
                                      "schema '%s' is unknown or repeated for %s", urn, rt->name);
    }
    if (!has_core)
        return cloud_scim_err_set(err, 400, "invalidSyntax", "'schemas' must contain %s",
                                  rt->core->id);
    json_t *res = json_object();
    if (canon_attrs(rt->core, in, res, true, rt, err) != 0) {
        json_decref(res);
        return -1;
    }
    json_t *ext_in = NULL;
    if (rt->ext != NULL) {
        const char *k;
        json_t *v;
        int count = 0;
        json_object_foreach((json_t *)in, k, v)
        {
            if (strcasecmp(k, rt->ext->id) == 0) {
                ext_in = v;
                count++;
            }
        }
        if (count > 1) {
            json_decref(res);
            return cloud_scim_err_set(err, 400, "invalidSyntax", "duplicate extension object");
        }
    }
    bool ext_stored = false;
    if (ext_in != NULL && !json_is_null(ext_in)) {
        if (!has_ext) {
            json_decref(res);
            return cloud_scim_err_set(err, 400, "invalidSyntax",
                                      "extension '%s' is used but not listed in 'schemas'",
                                      rt->ext->id);
        }
        if (!json_is_object(ext_in)) {
            json_decref(res);
            return cloud_scim_err_set(err, 400, "invalidValue", "'%s' must be an object",
                                      rt->ext->id);
        }
        json_t *ext_out = json_object();
        if (canon_attrs(rt->ext, ext_in, ext_out, false, rt, err) != 0) {
            json_decref(ext_out);
            json_decref(res);
            return -1;
        }
        if (json_object_size(ext_out) > 0) {
            json_object_set_new(res, rt->ext->id, ext_out);
            ext_stored = true;
        } else {
            json_decref(ext_out);
        }
    }
    json_t *sch = json_array();
    json_array_append_new(sch, json_string(rt->core->id));
    if (ext_stored)
        json_array_append_new(sch, json_string(rt->ext->id));
    json_object_set_new(res, "schemas", sch);
    *out = res;
    return 0;
}

/* --- discovery documents ---------------------------------------------------------------- */

static const char *mutability_name(enum cloud_mutability m)
{
    static const char *const n[] = {"readWrite", "readOnly", "immutable", "writeOnly"};
    return n[m];
}

static const char *returned_name(enum cloud_returned r)
{
    static const char *const n[] = {"default", "always", "never", "request"};
    return n[r];
}

static const char *uniqueness_name(enum cloud_uniqueness u)
{
    static const char *const n[] = {"none", "server", "global"};
    return n[u];
}

static json_t *attr_json(const struct cloud_attr_def *d)
{
    json_t *a = json_pack("{s:s, s:s, s:b, s:s, s:b, s:b, s:s, s:s, s:s}", "name", d->name, "type",
                          type_name(d->type), "multiValued", d->multi, "description",
                          d->description, "required", d->required, "caseExact", d->case_exact,
                          "mutability", mutability_name(d->mutability), "returned",
                          returned_name(d->returned), "uniqueness", uniqueness_name(d->uniqueness));
    if (d->canonical != NULL) {
        json_t *c = json_array();
        for (const char *const *p = d->canonical; *p != NULL; p++)
            json_array_append_new(c, json_string(*p));
        json_object_set_new(a, "canonicalValues", c);
    }
    if (d->ref_types != NULL) {
        json_t *c = json_array();
        for (const char *const *p = d->ref_types; *p != NULL; p++)
            json_array_append_new(c, json_string(*p));
        json_object_set_new(a, "referenceTypes", c);
    }
    if (d->type == CLOUD_T_COMPLEX) {
        json_t *subs = json_array();
        for (size_t i = 0; i < d->nsubs; i++) {
            if (!is_omitted(&d->subs[i]))
                json_array_append_new(subs, attr_json(&d->subs[i]));
        }
        json_object_set_new(a, "subAttributes", subs);
    }
    return a;
}

json_t *cloud_schema_schema_json(const struct cloud_schema_def *s, const char *base)
{
    json_t *attrs = json_array();
    for (size_t i = 0; i < s->nattrs; i++) {
        if (!is_omitted(&s->attrs[i]))
            json_array_append_new(attrs, attr_json(&s->attrs[i]));
    }
    char loc[1024];
    snprintf(loc, sizeof(loc), "%s/Schemas/%s", base, s->id);
    return json_pack("{s:[s], s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "schemas",
                     "urn:ietf:params:scim:schemas:core:2.0:Schema", "id", s->id, "name", s->name,
                     "description", s->description, "attributes", attrs, "meta", "resourceType",
                     "Schema", "location", loc);
}

json_t *cloud_schema_schemas_json(const char *base)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < NSUB(all_schemas); i++) {
        if (schema_served(all_schemas[i]))
            json_array_append_new(arr, cloud_schema_schema_json(all_schemas[i], base));
    }
    size_t n = json_array_size(arr);
    return json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", CLOUD_MSG_LIST, "totalResults",
                     (json_int_t)n, "itemsPerPage", (json_int_t)n, "startIndex", (json_int_t)1,
                     "Resources", arr);
}

json_t *cloud_schema_rtype_json(const struct cloud_rtype_def *rt, const char *base)
{
    char loc[1024];
    snprintf(loc, sizeof(loc), "%s/ResourceTypes/%s", base, rt->name);
    json_t *o =
        json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "schemas",
                  "urn:ietf:params:scim:schemas:core:2.0:ResourceType", "id", rt->name, "name",
                  rt->name, "endpoint", rt->endpoint, "description", rt->description, "schema",
                  rt->core->id, "meta", "resourceType", "ResourceType", "location", loc);
    if (rt->ext != NULL) {
        json_object_set_new(
            o, "schemaExtensions",
            json_pack("[{s:s, s:b}]", "schema", rt->ext->id, "required", rt->ext_required));
    }
    return o;
}

json_t *cloud_schema_rtypes_json(const char *base)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < CLOUD_RK_MAX; i++) {
        if (cloud_schema_rtype_served(rtypes[i].kind))
            json_array_append_new(arr, cloud_schema_rtype_json(&rtypes[i], base));
    }
    json_int_t n = (json_int_t)json_array_size(arr);
    return json_pack("{s:[s], s:I, s:I, s:I, s:o}", "schemas", CLOUD_MSG_LIST, "totalResults", n,
                     "itemsPerPage", n, "startIndex", (json_int_t)1, "Resources", arr);
}
