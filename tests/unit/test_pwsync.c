/*
 * test_pwsync.c - password synchronisation, the connector's side (connector/pwsync.h): the
 * seed's password rules, the change request, and pwsync_apply's checks and PATCH, through a
 * scripted transport port, a real state database and provider documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connector/pwsync.h"
#include "connector/pwsync_ldif.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- rules -------------------------------------------------------------------------------- */

static bool ok(const char *pw)
{
    char why[256];
    bool r = pwsync_password_ok(pw, strlen(pw), why, sizeof(why));
    if (!r && pw[0] != '\0')
        assert_null(strstr(why, pw)); /* the reason never holds the password */
    return r;
}

static void rules(void **state)
{
    (void)state;
    assert_true(ok("Abcdefg1"));    /* 8, lower upper digit */
    assert_true(ok("abcdefg1!"));   /* lower digit other */
    assert_true(ok("ABCDEFG 1"));   /* upper other digit */
    assert_true(ok("Abcdefgh!"));   /* lower upper other */
    assert_false(ok("Abcdef1"));    /* 7 characters */
    assert_false(ok("abcdefgh1"));  /* 2 classes */
    assert_false(ok("ABCDEFGHIJ")); /* 1 class */
    assert_false(ok(""));
    assert_true(ok("p\xc3\xa4ssw\xc3\xb6rd1")); /* 10 characters: lower, digit, non-ASCII */
    /* 7 characters in 9 bytes: short, whatever the byte count */
    assert_false(ok("\xc3\xa4\xc3\xa4"
                    "Ab1!x"));
    char why[256];
    assert_false(pwsync_password_ok("short1A", 7, why, sizeof(why)));
    assert_non_null(strstr(why, "at least 8"));
    assert_false(pwsync_password_ok("alllowercase", 12, why, sizeof(why)));
    assert_non_null(strstr(why, "1 of the 4"));
}

/* --- the change request ------------------------------------------------------------------- */

static void parse(void **state)
{
    (void)state;
    struct pwsync_change c;
    struct dirconn_error err = {0};
    const char *good = "{\"objectGUID\":\"0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9\","
                       "\"dn\":\"CN=Ann,CN=Users,DC=example,DC=test\",\"password\":\"S3cret-pw\"}";
    assert_int_equal(pwsync_change_parse(good, strlen(good), &c, &err), DIRCONN_OK);
    assert_string_equal(c.guid, "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9");
    assert_string_equal(c.dn, "CN=Ann,CN=Users,DC=example,DC=test");
    assert_int_equal(c.len, 9);
    assert_memory_equal(c.password, "S3cret-pw", 10);
    pwsync_change_clear(&c);
    assert_null(c.password);
#define NUL_IN_PASSWORD                                                                            \
    "dn: CN=D,DC=x\nobjectGUID: 7c5b0e59-0b2c-4a11-9d7e-2f2d4c0b9a04\n"                            \
    "virtualClearTextUTF8:: QUIAQ0Q=\n"
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"objectGUID\":\"nope\",\"password\":\"S3cret-pw\"}",
        "{\"objectGUID\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\"}",
        "{\"objectGUID\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\",\"password\":\"\"}",
        "{\"objectGUID\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\",\"password\":\"a\\u0000b\"}",
        "{\"objectGUID\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\",\"password\":\"S3cret-pw\","
        "\"x\":1}",
        "{\"objectGUID\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\",\"password\":\"S3cret-pw\","
        "\"dn\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(pwsync_change_parse(bad[i], strlen(bad[i]), &c, &err), DIRCONN_OK);
        assert_null(c.password);
        assert_null(strstr(err.msg, "S3cret-pw"));
    }
}

/* --- the syncpasswords LDIF --------------------------------------------------------------- */

static enum dirconn_err read_text(const char *text, struct pwsync_ldif *l,
                                  struct dirconn_error *err)
{
    FILE *fp = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(fp);
    enum dirconn_err e = pwsync_ldif_read(fp, l, err);
    fclose(fp);
    return e;
}

static void ldif(void **state)
{
    (void)state;
    struct pwsync_ldif l;
    struct dirconn_error err = {0};
    /* as samba-tool writes it: the GUID as a string, the cleartext base64 ("Pa$$w0rd-\xc3\xa4") */
    const char *rec = "# a comment\n"
                      "dn: CN=Ann Lee,CN=Users,DC=samdom,DC=example,DC=com\n"
                      "objectGUID: 7C5B0E59-0B2C-4A11-9D7E-2F2D4C0B9A01\n"
                      "virtualClearTextUTF8:: UGEkJHcwcmQtw6Q=\n"
                      "pwdLastSet: 133780000000000000\n"
                      "userAccountControl: 512\n"
                      "\n";
    assert_int_equal(read_text(rec, &l, &err), DIRCONN_OK);
    assert_string_equal(l.dn, "CN=Ann Lee,CN=Users,DC=samdom,DC=example,DC=com");
    assert_string_equal(l.guid, "7c5b0e59-0b2c-4a11-9d7e-2f2d4c0b9a01");
    assert_int_equal(l.len, 11);
    assert_string_equal(l.password, "Pa$$w0rd-\xc3\xa4");
    assert_true(l.pwd_last_set == 133780000000000000LL);
    assert_int_equal(l.uac, 512);
    pwsync_ldif_clear(&l);
    assert_null(l.password);
    /* a plain value, a folded line; no password at all (a userAccountControl change) */
    assert_int_equal(read_text("dn: CN=B,DC=x\nobjectGUID: 7c5b0e59-0b2c-4a11-9d7e-2f2d4c0b9a02\n"
                               "virtualClearTextUTF8: Plain-pass\n word1\n",
                               &l, &err),
                     DIRCONN_OK);
    assert_string_equal(l.password, "Plain-password1");
    pwsync_ldif_clear(&l);
    assert_int_equal(read_text("dn: CN=C,DC=x\nobjectGUID: 7c5b0e59-0b2c-4a11-9d7e-2f2d4c0b9a03\n"
                               "userAccountControl: 514\n",
                               &l, &err),
                     DIRCONN_OK);
    assert_null(l.password);
    assert_int_equal(l.uac, 514);
    assert_int_equal(l.pwd_last_set, -1);
    pwsync_ldif_clear(&l);
    /* refused: nothing, no GUID, a bad GUID, a change record, a NUL in the password, garbage */
    static const char *const bad[] = {
        "",
        "dn: CN=D,DC=x\nuserAccountControl: 512\n",
        "dn: CN=D,DC=x\nobjectGUID: not-a-guid\n",
        "dn: CN=D,DC=x\nchangetype: delete\n",
        NUL_IN_PASSWORD,
        "this is not ldif\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(read_text(bad[i], &l, &err), DIRCONN_OK);
        assert_null(l.password);
        assert_null(l.dn);
    }
}

/* --- apply -------------------------------------------------------------------------------- */

struct fake {
    int calls;
    long status; /* the answer */
    char method[16], path[256];
    char *body; /* the request body as sent */
};

struct pending {
    scim_done_fn done;
    void *arg;
};

static struct pending queued;

static enum dirconn_err fake_submit(void *impl, const char *method, const char *path,
                                    const json_t *body, const char *if_match, unsigned flags,
                                    scim_done_fn done, void *arg, struct dirconn_error *err)
{
    (void)if_match, (void)flags, (void)err;
    struct fake *f = impl;
    f->calls++;
    snprintf(f->method, sizeof(f->method), "%s", method);
    snprintf(f->path, sizeof(f->path), "%s", path);
    free(f->body);
    f->body = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    queued = (struct pending){done, arg};
    return DIRCONN_OK;
}

static enum dirconn_err fake_run(void *impl, struct dirconn_error *err)
{
    (void)err;
    struct fake *f = impl;
    struct scim_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.status = f->status;
    resp.code = f->status >= 200 && f->status < 300 ? DIRCONN_OK : DIRCONN_ECLOUD;
    if (resp.code != DIRCONN_OK)
        snprintf(resp.error, sizeof(resp.error), "PATCH %s: HTTP %ld", f->path, f->status);
    if (queued.done != NULL)
        queued.done(queued.arg, &resp);
    queued.done = NULL;
    return DIRCONN_OK;
}

static const struct scim_port_ops fake_ops = {fake_submit, fake_run, NULL};

static const char spc[] = "{\"patch\":{\"supported\":true},\"bulk\":{\"supported\":false},"
                          "\"filter\":{\"supported\":true},\"etag\":{\"supported\":true}}";
static const char rts[] = "{\"Resources\":[{\"name\":\"User\",\"endpoint\":\"/Users\",\"schema\":"
                          "\"urn:ietf:params:scim:schemas:core:2.0:User\"}]}";
static const char schemas_pw[] =
    "{\"Resources\":[{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attributes\":["
    "{\"name\":\"userName\"},{\"name\":\"password\",\"mutability\":\"writeOnly\","
    "\"returned\":\"never\"}]}]}";
static const char schemas_ro[] =
    "{\"Resources\":[{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attributes\":["
    "{\"name\":\"userName\"},{\"name\":\"password\",\"mutability\":\"readOnly\"}]}]}";
static const char schemas_none[] =
    "{\"Resources\":[{\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\",\"attributes\":["
    "{\"name\":\"userName\"}]}]}";

static struct provider *make_provider(const char *schemas)
{
    json_t *s = json_loads(spc, 0, NULL), *r = json_loads(rts, 0, NULL),
           *sc = json_loads(schemas, 0, NULL);
    struct provider_settings set = {0};
    struct provider *p = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(provider_from_documents(s, r, sc, &set, NULL, &p, &err), DIRCONN_OK);
    json_decref(s);
    json_decref(r);
    json_decref(sc);
    return p;
}

#define GUID_ANN   "11111111-2222-3333-4444-555555555555"
#define GUID_NEW   "11111111-2222-3333-4444-666666666666"
#define GUID_GROUP "11111111-2222-3333-4444-777777777777"
#define GUID_NONE  "11111111-2222-3333-4444-888888888888"

struct world {
    char dir[64];
    struct state *st;
    struct log_sink log;
    struct fake f;
    struct scim_port port;
};

static void put(struct state *st, const char *guid, int kind, const char *dn, const char *cloud_id)
{
    struct state_object o = {.external_id = (char *)guid,
                             .kind = kind,
                             .dn = (char *)dn,
                             .cloud_id = (char *)cloud_id,
                             .name = (char *)"x"};
    struct dirconn_error err = {0};
    assert_int_equal(state_object_put(st, &o, &err), DIRCONN_OK);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    snprintf(w->dir, sizeof(w->dir), "/tmp/test_pwsync.XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    struct dirconn_error err = {0};
    assert_int_equal(state_open(w->dir, &w->st, &err), DIRCONN_OK);
    put(w->st, GUID_ANN, 0, "CN=Ann,CN=Users,DC=example,DC=test", "cloud-ann");
    put(w->st, GUID_NEW, 0, "CN=New,CN=Users,DC=example,DC=test", NULL);
    put(w->st, GUID_GROUP, 1, "CN=Staff,CN=Users,DC=example,DC=test", "cloud-grp");
    log_sink_init(&w->log, "test_pwsync", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
    w->f.status = 200;
    w->port = (struct scim_port){&fake_ops, &w->f};
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    state_close(w->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w->f.body);
    free(w);
    return 0;
}

static enum pwsync_outcome run(struct world *w, const char *schemas, const char *guid,
                               const char *pw, char *detail, size_t dlen)
{
    struct provider *p = make_provider(schemas);
    struct pwsync_change ch = {.len = strlen(pw)};
    snprintf(ch.guid, sizeof(ch.guid), "%s", guid);
    ch.password = strdup(pw);
    enum pwsync_outcome o = pwsync_apply(&w->port, w->st, p, &w->log, &ch, detail, dlen);
    pwsync_change_clear(&ch);
    provider_free(p);
    return o;
}

static void applied(void **state)
{
    struct world *w = *state;
    char detail[512];
    assert_int_equal(run(w, schemas_pw, GUID_ANN, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_APPLIED);
    assert_int_equal(w->f.calls, 1);
    assert_string_equal(w->f.method, "PATCH");
    assert_string_equal(w->f.path, "/Users/cloud-ann");
    assert_string_equal(w->f.body,
                        "{\"Operations\":[{\"op\":\"replace\",\"path\":\"password\",\"value\":"
                        "\"Winter-2026\"}],\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:"
                        "PatchOp\"]}");
    assert_non_null(strstr(detail, "CN=Ann"));
    assert_null(strstr(detail, "Winter-2026"));
}

static void refused(void **state)
{
    struct world *w = *state;
    char detail[512];
    /* weak: not sent, the DN is named */
    assert_int_equal(run(w, schemas_pw, GUID_ANN, "weakpass", detail, sizeof(detail)), PWSYNC_WEAK);
    assert_non_null(strstr(detail, "3"));
    assert_int_equal(run(w, schemas_pw, GUID_NONE, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_NOT_IN_SCOPE);
    assert_int_equal(run(w, schemas_pw, GUID_GROUP, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_NOT_IN_SCOPE);
    assert_int_equal(run(w, schemas_pw, GUID_NEW, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_NOT_IN_CLOUD);
    assert_int_equal(run(w, schemas_ro, GUID_ANN, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_NOT_WRITABLE);
    assert_non_null(strstr(detail, "read-only"));
    assert_int_equal(run(w, schemas_none, GUID_ANN, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_NOT_WRITABLE);
    assert_non_null(strstr(detail, "has no"));
    assert_int_equal(w->f.calls, 0); /* nothing was sent */
    assert_true(pwsync_outcome_final(PWSYNC_WEAK));
    assert_false(pwsync_outcome_final(PWSYNC_FAILED));
}

static void cloud_fails(void **state)
{
    struct world *w = *state;
    char detail[512];
    w->f.status = 503;
    assert_int_equal(run(w, schemas_pw, GUID_ANN, "Winter-2026", detail, sizeof(detail)),
                     PWSYNC_FAILED);
    assert_int_equal(w->f.calls, 1);
    assert_non_null(strstr(detail, "503"));
    assert_string_equal(pwsync_outcome_name(PWSYNC_FAILED), "failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules),
        cmocka_unit_test(parse),
        cmocka_unit_test(ldif),
        cmocka_unit_test_setup_teardown(applied, setup, teardown),
        cmocka_unit_test_setup_teardown(refused, setup, teardown),
        cmocka_unit_test_setup_teardown(cloud_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
