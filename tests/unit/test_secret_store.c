/*
 * Unit tests for connector/core/secret_store.c: round trip, fresh nonces, modes,
 * tampered, truncated and wrong-key files, a failed write that leaves the
 * old file in place, and one-line secret files (secret_file_read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/secret_store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char dir[256];
    char file[300];
    char key[300];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/dirconn-secret-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->file, sizeof(f->file), "%s/state/secrets.enc", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/state/secret.key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    return buf;
}

static bool contains(const unsigned char *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) == 0)
            return true;
    }
    return false;
}

static void spit(const char *path, const unsigned char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* Write a store holding a=1, b=2. */
static void write_store(struct fixture *f)
{
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_CREATE, &s, &err), DIRCONN_OK);
    assert_int_equal(secret_store_put(s, "ldap-bind-password", "p@ss w0rd", &err), DIRCONN_OK);
    assert_int_equal(secret_store_put(s, "cloud-token", "tok-123", &err), DIRCONN_OK);
    assert_int_equal(secret_store_save(s, &err), DIRCONN_OK);
    secret_store_close(s);
}

static void expect_open_error(struct fixture *f, const char *needle)
{
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_CREATE, &s, &err),
                     DIRCONN_ESECRET);
    assert_null(s);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("'%s' not in '%s'", needle, err.msg);
    /* Messages never carry values. */
    assert_null(strstr(err.msg, "p@ss"));
    assert_null(strstr(err.msg, "tok-123"));
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &s, &err), DIRCONN_OK);
    assert_int_equal(secret_store_count(s), 2);
    assert_string_equal(secret_store_name_at(s, 0), "cloud-token");
    char *v = NULL;
    assert_int_equal(secret_store_lookup(s, "ldap-bind-password", &v, &err), DIRCONN_OK);
    assert_string_equal(v, "p@ss w0rd");
    secret_store_free_value(v);
    assert_int_equal(secret_store_lookup(s, "proxy-password", &v, &err), DIRCONN_OK);
    assert_null(v);
    assert_true(secret_store_remove(s, "cloud-token"));
    assert_false(secret_store_remove(s, "cloud-token"));
    assert_int_equal(secret_store_save(s, &err), DIRCONN_OK);
    secret_store_close(s);
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &s, &err), DIRCONN_OK);
    assert_int_equal(secret_store_count(s), 1);
    secret_store_close(s);
    /* The plaintext is not in the file. */
    size_t len;
    unsigned char *buf = slurp(f->file, &len);
    assert_false(contains(buf, len, "p@ss"));
    assert_false(contains(buf, len, "ldap-bind"));
    assert_memory_equal(buf, "DCSECRET", 8);
    free(buf);
}

static void test_modes_and_nonce(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, SECRET_STORE_KEY_LEN);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/state", f->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    /* Saving the same content again uses a new nonce: the files differ. */
    size_t l1, l2;
    unsigned char *a = slurp(f->file, &l1);
    write_store(f);
    unsigned char *b = slurp(f->file, &l2);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(a + 20, b + 20, 12);
    free(a);
    free(b);
}

static void test_tampered(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    size_t len;
    unsigned char *buf = slurp(f->file, &len);
    unsigned char *orig = malloc(len);
    memcpy(orig, buf, len);
    /* One bit in the ciphertext, the tag, the nonce, and a reserved header byte. */
    size_t spots[] = {40, len - 1, 25, 10};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        memcpy(buf, orig, len);
        buf[spots[i]] ^= 0x01;
        spit(f->file, buf, len);
        expect_open_error(f, "failed authentication");
        /* Nothing changed on disk. */
        size_t l2;
        unsigned char *now = slurp(f->file, &l2);
        assert_int_equal(l2, len);
        assert_memory_equal(now, buf, len);
        free(now);
    }
    buf[0] = 'X';
    spit(f->file, buf, len);
    expect_open_error(f, "not a dirconn secret store");
    free(buf);
    free(orig);
}

static void test_truncated(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    size_t len;
    unsigned char *buf = slurp(f->file, &len);
    spit(f->file, buf, len - 5);
    expect_open_error(f, "truncated");
    spit(f->file, buf, 30);
    expect_open_error(f, "truncated");
    spit(f->file, buf, 0);
    expect_open_error(f, "truncated");
    free(buf);
}

static void test_wrong_key(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    unsigned char other[SECRET_STORE_KEY_LEN];
    memset(other, 0x5a, sizeof(other));
    unlink(f->key);
    int fd = open(f->key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, other, sizeof(other)), (ssize_t)sizeof(other));
    close(fd);
    expect_open_error(f, "written with another key");
    /* A key readable by others is refused. */
    chmod(f->key, 0644);
    expect_open_error(f, "chmod 600");
    /* A missing key is not silently replaced. */
    unlink(f->key);
    expect_open_error(f, "does not exist");
    struct stat st;
    assert_int_not_equal(stat(f->key, &st), 0);
    /* A key of the wrong size. */
    fd = open(f->key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_int_equal(write(fd, other, 16), 16);
    close(fd);
    expect_open_error(f, "holds 16 bytes");
}

static void test_failed_write_keeps_old(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    size_t len;
    unsigned char *before = slurp(f->file, &len);
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &s, &err), DIRCONN_OK);
    char big[SECRET_STORE_VALUE_MAX + 1];
    memset(big, 'x', SECRET_STORE_VALUE_MAX);
    big[SECRET_STORE_VALUE_MAX] = '\0';
    assert_int_equal(secret_store_put(s, "proxy-password", big, &err), DIRCONN_OK);
    /* Limit the file size so that the write of the temporary file fails (EFBIG). */
    struct rlimit old, small = {.rlim_cur = 512, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    enum dirconn_err e = secret_store_save(s, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_equal(e, DIRCONN_EIO);
    assert_non_null(strstr(err.msg, "the old file is unchanged"));
    secret_store_close(s);
    size_t l2;
    unsigned char *after = slurp(f->file, &l2);
    assert_int_equal(l2, len);
    assert_memory_equal(before, after, len);
    free(before);
    free(after);
    /* No temporary file is left behind. */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "ls %s/state | grep -q tmp", f->dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_names_and_values(void **state)
{
    struct fixture *f = *state;
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_CREATE, &s, &err), DIRCONN_OK);
    assert_int_equal(secret_store_put(s, "Bad Name", "x", &err), DIRCONN_EUSAGE);
    assert_int_equal(secret_store_put(s, "ok-name", "", &err), DIRCONN_EUSAGE);
    assert_int_equal(secret_store_put(s, "ok-name", "a\nb", &err), DIRCONN_EUSAGE);
    assert_null(strstr(err.msg, "a\nb"));
    secret_store_close(s);
    /* Read-only open without a key: empty, and saving is refused. */
    unlink(f->key);
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &s, &err), DIRCONN_OK);
    assert_int_equal(secret_store_count(s), 0);
    assert_int_equal(secret_store_save(s, &err), DIRCONN_ESECRET);
    secret_store_close(s);
}

static void test_get_from_config(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    struct config cfg = {0};
    char sd[300];
    snprintf(sd, sizeof(sd), "%s/state", f->dir);
    cfg.state_dir = sd;
    cfg.path = "test.conf";
    char *v = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_get(&cfg, SECRET_CLOUD_TOKEN, &v, &err), DIRCONN_OK);
    assert_string_equal(v, "tok-123");
    secret_store_free_value(v);
    assert_int_equal(secret_store_get(&cfg, SECRET_CONNECTOR_ID, &v, &err), DIRCONN_ESECRET);
    assert_non_null(strstr(err.msg, "dirconnctl register"));
    assert_int_equal(secret_store_get(&cfg, SECRET_PROXY_PASSWORD, &v, &err), DIRCONN_ESECRET);
    assert_non_null(strstr(err.msg, "dirconnctl secret set proxy-password"));
}

/* An open store holds the write lock on <file>.lock until it is closed. */
static void test_lock_held_while_open(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    struct secret_store *s = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &s, &err), DIRCONN_OK);
    char lock[320];
    snprintf(lock, sizeof(lock), "%s.lock", f->file);
    struct stat st;
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* Another process sees the lock (record locks are per process). */
        int fd = open(lock, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        char held = (fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) ? 'y' : 'n';
        if (write(fds[1], &held, 1) != 1)
            _exit(2);
        _exit(0);
    }
    char held = 0;
    assert_int_equal(read(fds[0], &held, 1), 1);
    waitpid(pid, NULL, 0);
    assert_int_equal(held, 'y');
    secret_store_close(s);
    close(fds[0]);
    close(fds[1]);
}

/* A read-only open takes no lock (so a process may read while it holds the store for
 * update) and cannot save. */
static void test_read_only(void **state)
{
    struct fixture *f = *state;
    write_store(f);
    struct secret_store *w = NULL, *r = NULL;
    struct dirconn_error err = {0};
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_UPDATE, &w, &err), DIRCONN_OK);
    assert_int_equal(secret_store_open(f->file, f->key, SECRET_STORE_READ, &r, &err), DIRCONN_OK);
    char *v = NULL;
    assert_int_equal(secret_store_lookup(r, "cloud-token", &v, &err), DIRCONN_OK);
    assert_string_equal(v, "tok-123");
    secret_store_free_value(v);
    assert_int_equal(secret_store_save(r, &err), DIRCONN_ESECRET);
    assert_non_null(strstr(err.msg, "read-only"));
    secret_store_close(r);
    /* The writer still saves. */
    assert_int_equal(secret_store_put(w, "proxy-password", "pp", &err), DIRCONN_OK);
    assert_int_equal(secret_store_save(w, &err), DIRCONN_OK);
    secret_store_close(w);
}

/* secret_file_read: one line without its newline; empty, two-line, too long and missing files
 * are configuration errors that name the key and the path. */
static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void test_secret_file(void **state)
{
    struct fixture *f = *state;
    char path[320];
    snprintf(path, sizeof(path), "%s/token", f->dir);
    struct dirconn_error err = {0};
    char *s = NULL;

    write_file(path, "s3cr3t\r\n", 8);
    assert_int_equal(secret_file_read(path, "[cloud] token_file", &s, &err), DIRCONN_OK);
    assert_string_equal(s, "s3cr3t");
    secret_free(s);

    write_file(path, "", 0);
    assert_int_equal(secret_file_read(path, "[cloud] token_file", &s, &err), DIRCONN_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "[cloud] token_file"));
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "the file is empty"));

    write_file(path, "one\ntwo\n", 8);
    assert_int_equal(secret_file_read(path, "k", &s, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "not a one-line secret"));

    write_file(path, "a\0b\n", 4);
    assert_int_equal(secret_file_read(path, "k", &s, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "not a one-line secret"));

    char *big = malloc(SECRET_FILE_MAX + 1);
    memset(big, 'x', SECRET_FILE_MAX);
    write_file(path, big, SECRET_FILE_MAX - 1); /* the longest accepted */
    assert_int_equal(secret_file_read(path, "k", &s, &err), DIRCONN_OK);
    assert_int_equal(strlen(s), SECRET_FILE_MAX - 1);
    secret_free(s);
    write_file(path, big, SECRET_FILE_MAX); /* one byte more */
    assert_int_equal(secret_file_read(path, "k", &s, &err), DIRCONN_ECONFIG);
    assert_null(s);
    free(big);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(secret_file_read(path, "--admin-token-file", &s, &err), DIRCONN_ECONFIG);
    assert_non_null(strstr(err.msg, "--admin-token-file"));
    assert_non_null(strstr(err.msg, "cannot open"));
    secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_and_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_from_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_held_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
