/*
 * config_view.c - config_check (the [mapping] and [avatar] compiled at load) and the
 * rendering of the effective configuration (connector/config_view.h).
 */
#include "connector/config_view.h"

#include "connector/mapping.h"
#include "connector/core/secret_store.h"

#include <stdlib.h>
#include <string.h>

enum dirconn_err config_check(const struct config *cfg, struct dirconn_error *err)
{
    static const enum object_kind kinds[] = {OBJECT_USER, OBJECT_GROUP, OBJECT_CONTACT};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct mapping *m = NULL;
        enum dirconn_err e = mapping_compile(cfg, kinds[k], &m, err);
        mapping_free(m);
        if (e != DIRCONN_OK)
            return e;
    }
    return DIRCONN_OK;
}

/* "FILE:LINE" of a key set in the file, or "default". */
static json_t *source_of(const struct config *cfg, int line)
{
    if (line <= 0)
        return json_string("default");
    char buf[4200];
    snprintf(buf, sizeof(buf), "%s:%d", cfg->path != NULL ? cfg->path : "<config>", line);
    return json_string(buf);
}

/* The line where section.key was set, 0 = default or unknown. */
static int line_of(const struct config *cfg, const char *section, const char *key)
{
    size_t i;
    return config_key_find(section, key, &i) ? config_key_line(cfg, i) : 0;
}

/*
 * One secret the connector uses: from the file that section.key names, or (store_entry
 * not NULL) from that entry of the secret store. Never read.
 */
static int add_secret(json_t *secrets, const struct config *cfg, const char *name,
                      const char *section, const char *key, const char *file,
                      const char *store_entry)
{
    json_t *s = json_pack("{s:s, s:s}", "name", name, "value", CONFIG_SECRET_MASK);
    if (s == NULL)
        return -1;
    int rc = 0;
    if (file != NULL) {
        char by[128];
        snprintf(by, sizeof(by), "[%s] %s", section, key);
        rc |= json_object_set_new(s, "source", json_string("file"));
        rc |= json_object_set_new(s, "file", json_string(file));
        rc |= json_object_set_new(s, "set_by", json_string(by));
        rc |= json_object_set_new(s, "set_at", source_of(cfg, line_of(cfg, section, key)));
    } else {
        rc |= json_object_set_new(s, "source", json_string("secret-store"));
        rc |= json_object_set_new(s, "entry", json_string(store_entry));
        rc |= json_object_set_new(s, "set_by", json_null());
    }
    return rc | json_array_append_new(secrets, s);
}

static int render_secrets(const struct config *cfg, json_t *secrets)
{
    int rc = 0;
    char key_path[4200];
    if (secret_store_key_path(cfg, key_path, sizeof(key_path)))
        rc |= add_secret(secrets, cfg, "secret-store-key", "connector", "key_file", key_path, NULL);
    if (cfg->bind_dn != NULL)
        rc |= add_secret(secrets, cfg, SECRET_LDAP_BIND_PASSWORD, "ldap", "bind_password_file",
                         cfg->bind_password_file, SECRET_LDAP_BIND_PASSWORD);
    if (cfg->cloud_url != NULL && cfg->cloud_auth == CLOUD_AUTH_OAUTH2)
        rc |= add_secret(secrets, cfg, SECRET_CONNECTOR_SECRET, "cloud", "client_secret_file",
                         cfg->cloud_client_secret_file, SECRET_CONNECTOR_SECRET);
    if (cfg->cloud_url != NULL && cfg->cloud_auth == CLOUD_AUTH_BEARER)
        rc |= add_secret(secrets, cfg, SECRET_CLOUD_TOKEN, "cloud", "token_file",
                         cfg->cloud_token_file, SECRET_CLOUD_TOKEN);
    if (cfg->proxy_username != NULL)
        rc |= add_secret(secrets, cfg, SECRET_PROXY_PASSWORD, "proxy", "password_file",
                         cfg->proxy_password_file, SECRET_PROXY_PASSWORD);
    if (cfg->ha_etcd_password_file != NULL)
        rc |= add_secret(secrets, cfg, "etcd-password", "ha", "etcd_password_file",
                         cfg->ha_etcd_password_file, NULL);
    if (cfg->web_password_file != NULL)
        rc |= add_secret(secrets, cfg, "web-password", "web", "password_file",
                         cfg->web_password_file, NULL);
    if (cfg->reports_password_file != NULL)
        rc |= add_secret(secrets, cfg, "reports-password", "reports", "password_file",
                         cfg->reports_password_file, NULL);
    return rc;
}

json_t *config_render_json(const struct config *cfg)
{
    json_t *options = json_array(), *mapping = json_array(), *secrets = json_array();
    json_t *view = json_object();
    int rc = options == NULL || mapping == NULL || secrets == NULL || view == NULL ? -1 : 0;
    struct config_key_info ki;
    for (size_t i = 0; rc == 0 && config_key_info(i, &ki); i++) {
        char *value = NULL;
        if (!config_value_text(cfg, i, &value)) {
            rc = -1;
            break;
        }
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:o, s:s, s:b}", "section", ki.section,
                              "key", ki.key, "type", ki.type, "value", value, "default", ki.def,
                              "source", source_of(cfg, config_key_line(cfg, i)), "reload",
                              config_reload_name(ki.reload), "secret_file", ki.secret_file);
        free(value);
        rc = o == NULL ? -1 : json_array_append_new(options, o);
    }
    for (size_t i = 0; rc == 0 && i < cfg->n_mappings; i++) {
        const struct config_mapping *m = &cfg->mappings[i];
        json_t *o =
            json_pack("{s:s, s:s, s:o, s:s}", "key", m->scim_path, "value", m->expression, "source",
                      source_of(cfg, m->line), "reload", config_reload_name(CONFIG_RELOAD_RUN));
        rc = o == NULL ? -1 : json_array_append_new(mapping, o);
    }
    if (rc == 0)
        rc = render_secrets(cfg, secrets);
    if (rc == 0)
        rc = json_object_set_new(view, "file", json_string(cfg->path != NULL ? cfg->path : ""));
    if (rc == 0) {
        rc = json_object_set(view, "options", options) | json_object_set(view, "mapping", mapping) |
             json_object_set(view, "secrets", secrets);
    }
    json_decref(options);
    json_decref(mapping);
    json_decref(secrets);
    if (rc != 0) {
        json_decref(view);
        return NULL;
    }
    return view;
}

static const char *str(const json_t *o, const char *member)
{
    const char *s = json_string_value(json_object_get(o, member));
    return s != NULL ? s : "";
}

int config_render_text(const json_t *view, FILE *out)
{
    size_t i;
    const json_t *o;
    fprintf(out, "# the effective configuration of %s\n", str(view, "file"));
    json_array_foreach(json_object_get(view, "options"), i, o)
    {
        const char *value = json_string_value(json_object_get(o, "value"));
        const char *def = json_string_value(json_object_get(o, "default"));
        fprintf(out, "[%s] %s = %s  (source %s, default %s, reload %s)\n", str(o, "section"),
                str(o, "key"), value != NULL ? value : "(unset)", str(o, "source"),
                def != NULL ? def : "none", str(o, "reload"));
    }
    json_array_foreach(json_object_get(view, "mapping"), i, o)
    {
        fprintf(out, "[mapping] %s = %s  (source %s, reload %s)\n", str(o, "key"), str(o, "value"),
                str(o, "source"), str(o, "reload"));
    }
    json_array_foreach(json_object_get(view, "secrets"), i, o)
    {
        if (strcmp(str(o, "source"), "file") == 0 && strcmp(str(o, "set_at"), "default") == 0)
            fprintf(out, "secret %s = %s  (source file %s, the default of %s)\n", str(o, "name"),
                    str(o, "value"), str(o, "file"), str(o, "set_by"));
        else if (strcmp(str(o, "source"), "file") == 0)
            fprintf(out, "secret %s = %s  (source file %s, named by %s at %s)\n", str(o, "name"),
                    str(o, "value"), str(o, "file"), str(o, "set_by"), str(o, "set_at"));
        else
            fprintf(out, "secret %s = %s  (source secret store entry %s)\n", str(o, "name"),
                    str(o, "value"), str(o, "entry"));
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
