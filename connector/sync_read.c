/* sync_read.c - the directory read of a run: search, map, give to the plan. */
#include "connector/sync_read.h"
#include "connector/core/digest.h"

#include "connector/ldap_entry.h"
#include "connector/ldap_source.h"
#include "connector/mapping.h"
#include "connector/plan.h"
#include "connector/provider.h"
#include "connector/scim.h"
#include "connector/sync_cloud.h"
#include "connector/select.h"
#include "connector/state.h"

#include <jansson.h>
#include <ldap.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *record_name(enum object_kind kind, json_t *res)
{
    if (kind == OBJECT_USER)
        return json_string_value(json_object_get(res, "userName"));
    if (kind == OBJECT_CONTACT) /* contacts are matched and checked for conflicts by email only */
        return json_string_value(
            json_object_get(json_array_get(json_object_get(res, "emails"), 0), "value"));
    return json_string_value(json_object_get(res, "displayName"));
}

/* The mapping's attributes plus what classification needs (free the array only). */
const char **sync_read_search_attrs(struct mapping *m)
{
    const char *const *mattrs = mapping_attributes(m);
    size_t n = 0;
    while (mattrs[n] != NULL)
        n++;
    const char **attrs = calloc(n + 5, sizeof(char *));
    if (attrs == NULL)
        return NULL;
    memcpy(attrs, mattrs, n * sizeof(char *));
    attrs[n++] = "uSNChanged"; /* in the raw hash (add_same), where the directory has it */
    attrs[n++] = "objectClass";
    attrs[n++] = "userAccountControl";
    attrs[n++] = "msDS-UserAccountDisabled";
    return attrs;
}

/*
 * A provider that takes one email ([cloud] single_valued = emails) gets the
 * primary only (provider_restrict): the user's other addresses (the aliases
 * of proxyAddresses) are named in a warning of the run's report.
 */
static enum dirconn_err report_single_email(struct sync_ctx *c, const char *dn,
                                            const json_t *resource)
{
    const struct strlist *sv = &c->cfg->cloud_single_valued;
    bool single = false;
    for (size_t i = 0; i < sv->n; i++)
        single = single || strcasecmp(sv->v[i], "emails") == 0;
    const json_t *emails = json_object_get(resource, "emails");
    if (!single || json_array_size(emails) < 2)
        return DIRCONN_OK;
    char list[1024] = "";
    size_t n = 0, i;
    const json_t *el;
    json_array_foreach(emails, i, el)
    {
        const char *v = json_string_value(json_object_get(el, "value"));
        if (v == NULL || json_is_true(json_object_get(el, "primary")))
            continue;
        int w = snprintf(list + n, sizeof(list) - n, "%s%s", n > 0 ? ", " : "", v);
        if (w < 0 || (size_t)w >= sizeof(list) - n) {
            snprintf(list + sizeof(list) - 5, 5, "...");
            break;
        }
        n += (size_t)w;
    }
    if (n == 0)
        return DIRCONN_OK;
    char msg[DIRCONN_ERROR_LEN];
    int w = snprintf(msg, sizeof(msg),
                     "For %s, the email addresses %s are not sent: the cloud takes one emails "
                     "value ([cloud] single_valued), the primary.",
                     dn, list);
    if (w < 0 || (size_t)w >= sizeof(msg)) /* a long DN and list: the message ends in "..." */
        snprintf(msg + sizeof(msg) - 4, 4, "...");
    log_msg(c->log, LOG_LEVEL_WARN, "%s", msg);
    c->entry_warned = true;
    return plan_add_warning(c->plan, dn, msg, c->err);
}

/*
 * The fingerprint each raw hash includes: everything besides the entry that
 * a mapped record depends on and that a run knows before reading. The
 * configuration's every value (config_fingerprint: the mappings, avatar
 * pattern, accepted_domains, required attributes, selection ...), the
 * program's version (its mapping code), the naming context and directory
 * kind, the kinds synchronised, and the provider's part (provider_restrict):
 * for each kind whether it is offered and which mapped targets it takes.
 */
void sync_read_fingerprint(struct sync_ctx *c, const char *partition, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char buf[128];
    hex[0] = '\0';
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return;
    }
#define H(str) EVP_DigestUpdate(md, (str), strlen(str) + 1)
    H("dirconn raw fingerprint 1");
    H(DIRCONN_VERSION);
    config_fingerprint(c->cfg, buf);
    H(buf);
    H(partition != NULL ? partition : "");
    snprintf(buf, sizeof(buf), "directory %d kinds %u",
             c->src != NULL ? (int)ldap_source_rootdse(c->src)->kind : -1, c->kinds);
    H(buf);
    for (int k = 0; k < OBJECT_KINDS; k++) {
        snprintf(buf, sizeof(buf), "kind %d offered %d paths %zu", k,
                 c->prov != NULL && provider_has_kind(c->prov, (enum object_kind)k), c->scope[k].n);
        H(buf);
        for (size_t i = 0; i < c->scope[k].n; i++) {
            const struct record_path *rp = &c->scope[k].paths[i];
            H(rp->attr != NULL ? rp->attr : "");
            H(rp->type != NULL ? rp->type : "\x01");
            H(rp->sub != NULL ? rp->sub : "\x01");
        }
    }
    for (size_t i = 0; i < c->n_unsent; i++)
        H(c->unsent[i]);
#undef H
    digest_final_hex(md, hex);
    EVP_MD_CTX_free(md);
}

/*
 * An entry mapped before whose raw hash (ldap_entry_raw_hash over the DN,
 * identifier and every attribute the search read, with sync_read_fingerprint) is
 * the one the state recorded with the acknowledged record, given to the plan
 * without mapping (plan_add_dir_same). The rule, and why it is safe:
 *   - The mapping is a pure function of the entry and of what the
 *     fingerprint covers (configuration, program version, provider), so an
 *     equal raw hash gives the same mapped resource, name, manager DN and
 *     member DNs as when the record was built. The stable identifier is in
 *     the hash, and the lookup is by it: the state row is this entry's
 *     (an entry whose mapping sets another externalId is never skipped).
 *     Where the directory has uSNChanged, it is one of the attributes read,
 *     so any change of the entry changes the hash too.
 *   - The state row holds the raw hash only with the record it produced
 *     (raw_for = hash, state.h): a record written by anything else voids it.
 *   - What a record depends on beyond its entry is decided in the plan as
 *     for any object, because the plan still gets the object's DN, name,
 *     manager DN and member DNs: manager and member DN -> externalId
 *     resolution (an object renamed, gone, out of scope, skipped or in a
 *     naming conflict resolves differently: the links differ from the
 *     recorded ones and the record is relinked, not skipped), the naming
 *     conflicts on userName / contact email, the cloud-side adoption and
 *     name conflicts (only when the cloud copy is not found by id, and then
 *     the record is planned whole), deletions (the object is present).
 *   - Entries whose mapping gave warnings (invalid values, aliases not
 *     sent) are always mapped, so the run's report keeps their warnings.
 * Only a full run skips; the raw hash is recorded by every run.
 */
static enum dirconn_err add_same(struct sync_ctx *c, enum object_kind kind,
                                 const struct ldap_entry *entry, const char *raw, bool *done)
{
    *done = false;
    const struct ldap_attr *a = kind == OBJECT_GROUP ? ldap_entry_attr(entry, "member") : NULL;
    size_t n = a != NULL ? a->n_values : 0;
    for (size_t i = 0; i < n; i++)
        if (a->values[i].len == 0 || !ldap_value_is_text(&a->values[i]))
            return DIRCONN_OK; /* the mapping warns about these: map it */
    struct state_raw sr;
    bool found = false;
    enum dirconn_err e = state_object_raw_get(c->st, entry->id, raw, &sr, &found, c->err);
    if (e != DIRCONN_OK || !found)
        return e;
    char **members = n > 0 ? calloc(n, sizeof(char *)) : NULL;
    if (n > 0 && members == NULL) {
        state_raw_clear(&sr);
        return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        members[i] = a->values[i].data;
    e = plan_add_dir_same(c->plan, kind, entry->id, entry->dn, sr.name, sr.manager_dn, members, n,
                          raw, c->err);
    free(members);
    if (e == DIRCONN_OK && c->on_added != NULL)
        e = c->on_added(c, kind, entry->id, sr.name);
    state_raw_clear(&sr);
    *done = e == DIRCONN_OK;
    if (*done)
        c->raw_skipped++;
    return e;
}

/* Map one entry of kind and give it to the plan. */
enum dirconn_err sync_read_add_entry(struct sync_ctx *c, enum object_kind kind,
                                     struct ldap_entry *entry)
{
    enum dirconn_err e = DIRCONN_OK;
    if (c->unsent_plan != c->plan) {
        /* The mappings the provider cannot take, in this plan's report. */
        c->unsent_plan = c->plan;
        for (size_t k = 0; k < c->n_unsent && e == DIRCONN_OK; k++)
            e = plan_add_warning(c->plan, "", c->unsent[k], c->err);
        if (e != DIRCONN_OK)
            return e;
    }
    char raw[LDAP_ENTRY_RAW_HASH_LEN] = "";
    if (c->raw_fp[0] != '\0' && !ldap_entry_raw_hash(entry, c->raw_fp, raw))
        raw[0] = '\0';
    if (raw[0] != '\0' && c->raw_skip) {
        bool done = false;
        e = add_same(c, kind, entry, raw, &done);
        if (e != DIRCONN_OK || done)
            return e;
    }
    struct mapping_result mr;
    c->entry_warned = false;
    e = mapping_apply(c->maps[kind], entry, &mr);
    if (e != DIRCONN_OK) {
        dirconn_error_set(c->err, e, "mapping %s failed", entry->dn);
        mapping_result_clear(&mr);
        return e;
    }
    for (size_t k = 0; k < mr.n_issues && e == DIRCONN_OK; k++) {
        log_msg(c->log, LOG_LEVEL_WARN, "%s", mr.issues[k].message);
        e = plan_add_warning(c->plan, entry->dn, mr.issues[k].message, c->err);
        if (c->opts->on_problem != NULL)
            c->opts->on_problem(c->opts->problem_arg, entry->dn, mr.issues[k].message);
    }
    if (e == DIRCONN_OK && !mr.skipped && c->prov != NULL && kind == OBJECT_USER)
        e = report_single_email(c, entry->dn, mr.resource);
    if (e == DIRCONN_OK && !mr.skipped && c->prov != NULL) {
        /* Only what the provider declares is recorded and sent (provider_restrict). */
        const char *why;
        if (provider_restrict(c->prov, (enum object_kind)kind, mr.resource)) {
            free(mr.text);
            mr.text = mapping_canonical(mr.resource, &mr.text_split);
            if (mr.text == NULL)
                e = dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        }
        if (kind == OBJECT_USER && mr.manager_dn != NULL &&
            !provider_check(c->prov, OBJECT_USER, SCIM_SCHEMA_ENTERPRISE ":manager", NULL, "value",
                            &why)) {
            free(mr.manager_dn);
            mr.manager_dn = NULL;
        }
    }
    c->entry_skipped = mr.skipped;
    if (e == DIRCONN_OK) {
        const char *ext = mr.external_id != NULL ? mr.external_id : entry->id;
        if (mr.skipped)
            log_msg(c->log, LOG_LEVEL_WARN, "%s", mr.skip_message);
        const char *name = mr.skipped ? NULL : record_name(kind, mr.resource);
        /* A raw hash only for what add_same can find again and plan without warnings. */
        bool keep_raw =
            raw[0] != '\0' && mr.n_issues == 0 && !c->entry_warned && strcmp(ext, entry->id) == 0;
        e = plan_add_dir_raw(c->plan, kind, ext, entry->dn, name, mr.skipped ? NULL : mr.text,
                             mr.text_split, mr.manager_dn, mr.member_dns, mr.n_members,
                             mr.skipped ? mr.skip_message : NULL, keep_raw ? raw : NULL, c->err);
        if (e == DIRCONN_OK && c->on_added != NULL)
            e = c->on_added(c, kind, ext, name);
    }
    mapping_result_clear(&mr);
    return e;
}

enum dirconn_err sync_read_directory(struct sync_ctx *c, const struct select_plan *sel,
                                     unsigned kinds, long *read)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct select_search *s = &sel->searches[i];
        if (!(kinds & (1u << s->kind)))
            continue;
        const char **attrs = sync_read_search_attrs(c->maps[s->kind]);
        if (attrs == NULL)
            return dirconn_error_set(c->err, DIRCONN_ENOMEM, "out of memory");
        struct ldap_search_spec spec = {s->base, LDAP_SCOPE_SUBTREE, s->filter, attrs, false};
        struct ldap_cursor *cur = NULL;
        enum dirconn_err e = ldap_source_search(c->src, &spec, &cur, c->err);
        while (e == DIRCONN_OK) {
            struct ldap_entry *entry = NULL;
            e = ldap_cursor_next(cur, &entry, c->err);
            if (e != DIRCONN_OK || entry == NULL)
                break;
            if ((int)select_classify(entry) != (int)s->kind || entry->id[0] == '\0') {
                ldap_entry_free(entry);
                continue; /* computers, and objects without a stable identifier */
            }
            e = sync_read_add_entry(c, (enum object_kind)s->kind, entry);
            if (++*read % 100 == 0)
                log_msg(c->log, LOG_LEVEL_DEBUG, "reading: %ld directory objects read", *read);
            if (e == DIRCONN_OK && c->inventory != NULL && *read % SYNC_READ_INVENTORY_STEP == 0)
                e = sync_cloud_inventory_step(c, false); /* the pages answered meanwhile */
            ldap_entry_free(entry);
        }
        ldap_cursor_free(cur);
        free(attrs);
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}
