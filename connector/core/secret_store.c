/* secret_store.c - AES-256-GCM encrypted secret file with an atomically created key. */
#include "connector/core/secret_store.h"

#include "connector/core/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC              "DCSECRET"
#define MAGIC_LEN          8
#define VERSION            1
#define CIPHER_AES_256_GCM 1
#define KEY_ID_LEN         8
#define NONCE_LEN          12
#define TAG_LEN            16
#define HEADER_LEN         (MAGIC_LEN + 4 + KEY_ID_LEN + NONCE_LEN + 4) /* 36 */
#define MAX_SECRETS        64
#define MAX_PLAINTEXT      (1024 * 1024)

struct secret_entry {
    char *name;
    char *value; /* wiped before free */
};

struct secret_store {
    char file[PATH_MAX];
    char key_file[PATH_MAX];
    unsigned char *key; /* SECRET_STORE_KEY_LEN bytes from platform_secure_alloc, or NULL */
    unsigned char key_id[KEY_ID_LEN];
    struct secret_entry entries[MAX_SECRETS];
    size_t n;
    int lock_fd;   /* <file>.lock with a write lock held from open to close, or -1 */
    bool writable; /* opened for update */
};

/* ---- paths --------------------------------------------------------------- */

bool secret_store_path(const struct config *cfg, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", cfg->state_dir, SECRET_STORE_FILE);
    return n > 0 && (size_t)n < len;
}

bool secret_store_key_path(const struct config *cfg, char *buf, size_t len)
{
    int n = cfg->key_file != NULL
                ? snprintf(buf, len, "%s", cfg->key_file)
                : snprintf(buf, len, "%s/%s", cfg->state_dir, SECRET_STORE_KEY_FILE);
    return n > 0 && (size_t)n < len;
}

/* The directory part of path, in buf. */
static void dir_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        snprintf(buf, len, ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
}

static enum dirconn_err fsync_dir(const char *path, struct dirconn_error *err)
{
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof(dir));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: cannot open the directory: %s", dir,
                                 strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return dirconn_error_set(err, DIRCONN_EIO, "%s: fsync of the directory: %s", dir,
                                 strerror(saved));
    return DIRCONN_OK;
}

static bool write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* A temporary file next to path: "<path>.tmp.XXXXXX", mode 0600. */
static int make_temp(const char *path, char *tmp, size_t len)
{
    int n = snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    mode_t old = umask(077);
    int fd = mkstemp(tmp);
    umask(old);
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return fd;
}

/* ---- the key ------------------------------------------------------------- */

static void compute_key_id(const unsigned char *key, unsigned char *id)
{
    static const char label[] = "dirconn secret store key id";
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
        EVP_DigestUpdate(ctx, key, SECRET_STORE_KEY_LEN) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
        memcpy(id, md, KEY_ID_LEN);
    else
        memset(id, 0, KEY_ID_LEN);
    EVP_MD_CTX_free(ctx);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Read the key file into s->key. Returns DIRCONN_ESECRET with *missing = true when it does not
 * exist. */
static enum dirconn_err load_key(struct secret_store *s, bool *missing, struct dirconn_error *err)
{
    *missing = false;
    int fd = open(s->key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return dirconn_error_set(err, DIRCONN_ESECRET, "key file %s does not exist",
                                     s->key_file);
        }
        return dirconn_error_set(err, DIRCONN_EIO, "key file %s: cannot open: %s", s->key_file,
                                 strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return dirconn_error_set(err, DIRCONN_EIO, "key file %s: %s", s->key_file, strerror(saved));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_size != SECRET_STORE_KEY_LEN) {
        close(fd);
        if (!S_ISREG(st.st_mode))
            return dirconn_error_set(err, DIRCONN_ESECRET, "key file %s is not a regular file",
                                     s->key_file);
        if ((st.st_mode & 077) != 0)
            return dirconn_error_set(err, DIRCONN_ESECRET,
                                     "key file %s has mode %04o; it must be accessible by its "
                                     "owner only (chmod 600)",
                                     s->key_file, (unsigned)(st.st_mode & 07777));
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "key file %s holds %lld bytes; a key is %d random bytes",
                                 s->key_file, (long long)st.st_size, SECRET_STORE_KEY_LEN);
    }
    unsigned char *key = platform_secure_alloc(SECRET_STORE_KEY_LEN);
    if (key == NULL) {
        close(fd);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < SECRET_STORE_KEY_LEN) {
        ssize_t r = read(fd, key + got, SECRET_STORE_KEY_LEN - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != SECRET_STORE_KEY_LEN) {
        platform_secure_free(key, SECRET_STORE_KEY_LEN);
        return dirconn_error_set(err, DIRCONN_EIO, "key file %s: short read", s->key_file);
    }
    s->key = key;
    compute_key_id(key, s->key_id);
    return DIRCONN_OK;
}

/* Create a new key file without ever replacing one: temp file, fsync, link(2), fsync dir. */
static enum dirconn_err create_key(struct secret_store *s, struct dirconn_error *err)
{
    unsigned char *key = platform_secure_alloc(SECRET_STORE_KEY_LEN);
    if (key == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    if (RAND_bytes(key, SECRET_STORE_KEY_LEN) != 1) {
        platform_secure_free(key, SECRET_STORE_KEY_LEN);
        return dirconn_error_set(err, DIRCONN_ESECRET, "RAND_bytes failed: no randomness");
    }
    char tmp[PATH_MAX + 16];
    int fd = make_temp(s->key_file, tmp, sizeof(tmp));
    if (fd < 0) {
        platform_secure_free(key, SECRET_STORE_KEY_LEN);
        return dirconn_error_set(err, DIRCONN_EIO, "key file %s: cannot create: %s", s->key_file,
                                 strerror(errno));
    }
    bool ok = write_all(fd, key, SECRET_STORE_KEY_LEN) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (ok && link(tmp, s->key_file) != 0) {
        saved = errno;
        ok = false;
    }
    unlink(tmp);
    if (!ok) {
        platform_secure_free(key, SECRET_STORE_KEY_LEN);
        if (saved == EEXIST)
            return dirconn_error_set(err, DIRCONN_ESECRET,
                                     "key file %s appeared while it was being created; try again",
                                     s->key_file);
        return dirconn_error_set(err, DIRCONN_EIO, "key file %s: cannot write: %s", s->key_file,
                                 strerror(saved));
    }
    enum dirconn_err e = fsync_dir(s->key_file, err);
    if (e != DIRCONN_OK) {
        platform_secure_free(key, SECRET_STORE_KEY_LEN);
        return e;
    }
    s->key = key;
    compute_key_id(key, s->key_id);
    return DIRCONN_OK;
}

/* ---- entries ------------------------------------------------------------- */

bool secret_store_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    }
    return true;
}

void secret_store_free_value(char *v)
{
    if (v == NULL)
        return;
    OPENSSL_cleanse(v, strlen(v));
    free(v);
}

static void entry_clear(struct secret_entry *e)
{
    free(e->name);
    secret_store_free_value(e->value);
    e->name = NULL;
    e->value = NULL;
}

static struct secret_entry *find(const struct secret_store *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->entries[i].name, name) == 0)
            return (struct secret_entry *)&s->entries[i];
    }
    return NULL;
}

static bool value_valid(const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n > SECRET_STORE_VALUE_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

enum dirconn_err secret_store_put(struct secret_store *s, const char *name, const char *value,
                                  struct dirconn_error *err)
{
    if (!secret_store_name_valid(name))
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "'%s' is not a secret name (1-64 of a-z, 0-9, '-')", name);
    if (!value_valid(value))
        return dirconn_error_set(err, DIRCONN_EUSAGE,
                                 "the value of %s must be 1-%d bytes without control characters",
                                 name, SECRET_STORE_VALUE_MAX);
    char *copy = strdup(value);
    if (copy == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    struct secret_entry *e = find(s, name);
    if (e != NULL) {
        secret_store_free_value(e->value);
        e->value = copy;
        return DIRCONN_OK;
    }
    if (s->n == MAX_SECRETS) {
        secret_store_free_value(copy);
        return dirconn_error_set(err, DIRCONN_ESECRET, "the secret store holds at most %d secrets",
                                 MAX_SECRETS);
    }
    char *ncopy = strdup(name);
    if (ncopy == NULL) {
        secret_store_free_value(copy);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    /* Keep the entries sorted by name: the file's JSON is then stable. */
    size_t at = 0;
    while (at < s->n && strcmp(s->entries[at].name, name) < 0)
        at++;
    memmove(&s->entries[at + 1], &s->entries[at], (s->n - at) * sizeof(s->entries[0]));
    s->entries[at].name = ncopy;
    s->entries[at].value = copy;
    s->n++;
    return DIRCONN_OK;
}

bool secret_store_remove(struct secret_store *s, const char *name)
{
    struct secret_entry *e = find(s, name);
    if (e == NULL)
        return false;
    size_t at = (size_t)(e - s->entries);
    entry_clear(e);
    memmove(&s->entries[at], &s->entries[at + 1], (s->n - at - 1) * sizeof(s->entries[0]));
    s->n--;
    return true;
}

enum dirconn_err secret_store_lookup(const struct secret_store *s, const char *name, char **value,
                                     struct dirconn_error *err)
{
    *value = NULL;
    const struct secret_entry *e = find(s, name);
    if (e == NULL)
        return DIRCONN_OK;
    *value = strdup(e->value);
    return *value != NULL ? DIRCONN_OK : dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
}

size_t secret_store_count(const struct secret_store *s)
{
    return s->n;
}

const char *secret_store_name_at(const struct secret_store *s, size_t i)
{
    return i < s->n ? s->entries[i].name : NULL;
}

/* ---- encryption ---------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* AES-256-GCM over in[0..len) with header as AAD; out receives len bytes. Returns true on success
 * (for decryption: the tag verified). */
static bool gcm(bool encrypt, const unsigned char *key, const unsigned char *header,
                const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    const unsigned char *nonce = header + MAGIC_LEN + 4 + KEY_ID_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    bool ok = ctx != NULL &&
              EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt ? 1 : 0) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, -1) == 1 &&
              EVP_CipherUpdate(ctx, NULL, &outl, header, HEADER_LEN) == 1 &&
              (len == 0 || EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1) &&
              (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
              EVP_CipherFinal_ex(ctx, out + (len == 0 ? 0 : outl), &finl) == 1 &&
              (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* Wipe the string values of a jansson object before it is freed. */
static void json_wipe_decref(json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (json_is_string(v))
            OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(obj);
}

/* Read the whole store file. Returns DIRCONN_OK with *data NULL when it does not exist. */
static enum dirconn_err read_file(const char *path, unsigned char **data, size_t *len,
                                  struct dirconn_error *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return DIRCONN_OK;
        return dirconn_error_set(err, DIRCONN_EIO, "secret store %s: cannot open: %s", path,
                                 strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (off_t)(HEADER_LEN + MAX_PLAINTEXT + TAG_LEN)) {
        close(fd);
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s is not a regular file of a plausible size", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (buf == NULL) {
        close(fd);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            free(buf);
            return dirconn_error_set(err, DIRCONN_EIO, "secret store %s: read: %s", path,
                                     strerror(saved));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return DIRCONN_OK;
}

static enum dirconn_err decrypt_file(struct secret_store *s, const unsigned char *data, size_t len,
                                     struct dirconn_error *err)
{
    const char *f = s->file;
    if (len < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0)
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 len < MAGIC_LEN ? "secret store %s is truncated (%zu bytes)"
                                                 : "%s is not a dirconn secret store (bad magic)",
                                 f, len);
    if (len < HEADER_LEN + TAG_LEN)
        return dirconn_error_set(err, DIRCONN_ESECRET, "secret store %s is truncated (%zu bytes)",
                                 f, len);
    if (data[MAGIC_LEN] != VERSION || data[MAGIC_LEN + 1] != CIPHER_AES_256_GCM)
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s has version %u, cipher %u; this dirconn reads "
                                 "version %d, cipher %d (AES-256-GCM)",
                                 f, data[MAGIC_LEN], data[MAGIC_LEN + 1], VERSION,
                                 CIPHER_AES_256_GCM);
    uint32_t ctlen = get_u32(data + HEADER_LEN - 4);
    if ((size_t)ctlen + HEADER_LEN + TAG_LEN != len)
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s is truncated or damaged: its header announces "
                                 "%zu bytes, the file has %zu",
                                 f, (size_t)ctlen + HEADER_LEN + TAG_LEN, len);
    if (ctlen > MAX_PLAINTEXT)
        return dirconn_error_set(err, DIRCONN_ESECRET, "secret store %s is too large", f);
    if (CRYPTO_memcmp(data + MAGIC_LEN + 4, s->key_id, KEY_ID_LEN) != 0) {
        char want[2 * KEY_ID_LEN + 1], have[2 * KEY_ID_LEN + 1];
        hex(data + MAGIC_LEN + 4, KEY_ID_LEN, want);
        hex(s->key_id, KEY_ID_LEN, have);
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s was written with another key (key id %s) than "
                                 "the one in %s (key id %s)",
                                 f, want, s->key_file, have);
    }
    unsigned char *plain = platform_secure_alloc((size_t)ctlen + 1);
    if (plain == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    unsigned char tag[TAG_LEN];
    memcpy(tag, data + HEADER_LEN + ctlen, TAG_LEN);
    if (!gcm(false, s->key, data, data + HEADER_LEN, ctlen, plain, tag)) {
        platform_secure_free(plain, (size_t)ctlen + 1);
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s failed authentication: it was changed or "
                                 "damaged (AES-256-GCM tag mismatch)",
                                 f);
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)plain, ctlen, JSON_REJECT_DUPLICATES, &jerr);
    platform_secure_free(plain, (size_t)ctlen + 1);
    enum dirconn_err e = DIRCONN_OK;
    if (!json_is_object(doc)) {
        e = dirconn_error_set(err, DIRCONN_ESECRET,
                              "secret store %s: the decrypted content is not a JSON object", f);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(doc, k, v)
        {
            if (e != DIRCONN_OK)
                break;
            if (!json_is_string(v) || !secret_store_name_valid(k))
                e = dirconn_error_set(err, DIRCONN_ESECRET,
                                      "secret store %s: entry '%s' is malformed", f, k);
            else
                e = secret_store_put(s, k, json_string_value(v), err);
        }
    }
    if (doc != NULL)
        json_wipe_decref(doc);
    return e;
}

/*
 * Serialise the read-modify-write cycles of concurrent commands: a POSIX
 * record lock on <file>.lock (mode 0600), held until secret_store_close. When
 * the lock file cannot be created (a read-only state directory, or none yet)
 * the store is opened without it: such an open cannot save anyway.
 */
static enum dirconn_err take_lock(struct secret_store *s, struct dirconn_error *err)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s.lock", s->file);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return DIRCONN_OK;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    while (fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR)
            continue;
        int saved = errno;
        close(fd);
        return dirconn_error_set(err, DIRCONN_EIO, "secret store %s: cannot lock %s: %s", s->file,
                                 path, strerror(saved));
    }
    s->lock_fd = fd;
    return DIRCONN_OK;
}

enum dirconn_err secret_store_open(const char *file, const char *key_file,
                                   enum secret_store_mode mode, struct secret_store **out,
                                   struct dirconn_error *err)
{
    bool create = mode == SECRET_STORE_CREATE;
    *out = NULL;
    struct secret_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    s->lock_fd = -1;
    if ((size_t)snprintf(s->file, sizeof(s->file), "%s", file) >= sizeof(s->file) ||
        (size_t)snprintf(s->key_file, sizeof(s->key_file), "%s", key_file) >= sizeof(s->key_file)) {
        free(s);
        return dirconn_error_set(err, DIRCONN_ESECRET, "secret store path too long");
    }
    if (create) {
        char dir[PATH_MAX];
        dir_of(file, dir, sizeof(dir));
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            free(s);
            return dirconn_error_set(err, DIRCONN_EIO, "%s: cannot create the directory: %s", dir,
                                     strerror(errno));
        }
    }
    unsigned char *data = NULL;
    size_t len = 0;
    s->writable = mode != SECRET_STORE_READ;
    enum dirconn_err e = s->writable ? take_lock(s, err) : DIRCONN_OK;
    if (e != DIRCONN_OK) {
        secret_store_close(s);
        return e;
    }
    e = read_file(file, &data, &len, err);
    bool missing = false;
    if (e == DIRCONN_OK)
        e = load_key(s, &missing, err);
    if (e != DIRCONN_OK && missing) {
        if (data != NULL) {
            e = dirconn_error_set(err, DIRCONN_ESECRET,
                                  "key file %s does not exist: the secret store %s cannot be "
                                  "decrypted without it",
                                  key_file, file);
        } else if (create) {
            dirconn_error_clear(err);
            e = create_key(s, err);
        } else {
            dirconn_error_clear(err);
            e = DIRCONN_OK; /* no key, no store: empty and read-only */
        }
    }
    if (e == DIRCONN_OK && data != NULL)
        e = decrypt_file(s, data, len, err);
    free(data);
    if (e != DIRCONN_OK) {
        secret_store_close(s);
        return e;
    }
    *out = s;
    return DIRCONN_OK;
}

enum dirconn_err secret_store_open_config(const struct config *cfg, enum secret_store_mode mode,
                                          struct secret_store **out, struct dirconn_error *err)
{
    char file[PATH_MAX], key[PATH_MAX];
    *out = NULL;
    if (!secret_store_path(cfg, file, sizeof(file)) ||
        !secret_store_key_path(cfg, key, sizeof(key)))
        return dirconn_error_set(err, DIRCONN_ECONFIG,
                                 "%s: [connector] state_dir or key_file too long", cfg->path);
    return secret_store_open(file, key, mode, out, err);
}

void secret_store_close(struct secret_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_clear(&s->entries[i]);
    platform_secure_free(s->key, SECRET_STORE_KEY_LEN);
    OPENSSL_cleanse(s->key_id, sizeof(s->key_id));
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the lock */
    free(s);
}

/* The plaintext: a JSON object name -> value, in a secure buffer of *cap bytes. */
static enum dirconn_err serialize(const struct secret_store *s, unsigned char **plain, size_t *len,
                                  size_t *cap, struct dirconn_error *err)
{
    json_t *obj = json_object();
    bool ok = obj != NULL;
    for (size_t i = 0; ok && i < s->n; i++)
        ok = json_object_set_new(obj, s->entries[i].name, json_string(s->entries[i].value)) == 0;
    size_t need = ok ? json_dumpb(obj, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS) : 0;
    unsigned char *buf = ok ? platform_secure_alloc(need + 1) : NULL;
    if (buf == NULL || json_dumpb(obj, (char *)buf, need, JSON_COMPACT | JSON_SORT_KEYS) != need) {
        platform_secure_free(buf, need + 1);
        if (obj != NULL)
            json_wipe_decref(obj);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    json_wipe_decref(obj);
    *plain = buf;
    *len = need;
    *cap = need + 1;
    return DIRCONN_OK;
}

enum dirconn_err secret_store_save(struct secret_store *s, struct dirconn_error *err)
{
    if (!s->writable)
        return dirconn_error_set(err, DIRCONN_ESECRET, "secret store %s was opened read-only",
                                 s->file);
    if (s->key == NULL)
        return dirconn_error_set(err, DIRCONN_ESECRET,
                                 "secret store %s: no key file %s; nothing can be saved", s->file,
                                 s->key_file);
    unsigned char *plain = NULL;
    size_t plen = 0, pcap = 0;
    enum dirconn_err e = serialize(s, &plain, &plen, &pcap, err);
    if (e != DIRCONN_OK)
        return e;
    size_t total = HEADER_LEN + plen + TAG_LEN;
    unsigned char *out = malloc(total);
    if (out == NULL) {
        platform_secure_free(plain, pcap);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    memcpy(out, MAGIC, MAGIC_LEN);
    out[MAGIC_LEN] = VERSION;
    out[MAGIC_LEN + 1] = CIPHER_AES_256_GCM;
    out[MAGIC_LEN + 2] = 0;
    out[MAGIC_LEN + 3] = 0;
    memcpy(out + MAGIC_LEN + 4, s->key_id, KEY_ID_LEN);
    put_u32(out + HEADER_LEN - 4, (uint32_t)plen);
    bool ok = RAND_bytes(out + MAGIC_LEN + 4 + KEY_ID_LEN, NONCE_LEN) == 1 &&
              gcm(true, s->key, out, plain, plen, out + HEADER_LEN, out + HEADER_LEN + plen);
    platform_secure_free(plain, pcap);
    if (!ok) {
        free(out);
        return dirconn_error_set(err, DIRCONN_ESECRET, "secret store %s: encryption failed",
                                 s->file);
    }
    char tmp[PATH_MAX + 16];
    int fd = make_temp(s->file, tmp, sizeof(tmp));
    if (fd < 0) {
        free(out);
        return dirconn_error_set(err, DIRCONN_EIO,
                                 "secret store %s: cannot create a temporary "
                                 "file: %s",
                                 s->file, strerror(errno));
    }
    const char *step = "write";
    ok = write_all(fd, out, total);
    if (ok) {
        step = "fsync";
        ok = fsync(fd) == 0;
    }
    int saved = errno;
    if (close(fd) != 0 && ok) {
        saved = errno;
        step = "close";
        ok = false;
    }
    if (ok && rename(tmp, s->file) != 0) {
        saved = errno;
        step = "rename";
        ok = false;
    }
    free(out);
    if (!ok) {
        unlink(tmp);
        return dirconn_error_set(err, DIRCONN_EIO,
                                 "secret store %s: %s of the new file failed: %s; the old file "
                                 "is unchanged",
                                 s->file, step, strerror(saved));
    }
    return fsync_dir(s->file, err);
}

enum dirconn_err secret_store_get(const struct config *cfg, const char *name, char **value,
                                  struct dirconn_error *err)
{
    *value = NULL;
    struct secret_store *s = NULL;
    enum dirconn_err e = secret_store_open_config(cfg, SECRET_STORE_READ, &s, err);
    if (e != DIRCONN_OK)
        return e;
    e = secret_store_lookup(s, name, value, err);
    if (e == DIRCONN_OK && *value == NULL) {
        bool registration =
            strcmp(name, SECRET_CONNECTOR_ID) == 0 || strcmp(name, SECRET_CONNECTOR_SECRET) == 0;
        e = dirconn_error_set(err, DIRCONN_ESECRET,
                              "secret %s is not in the secret store %s; %s%s%s", name, s->file,
                              registration ? "register this connector with 'dirconnctl register'"
                                           : "store it with 'dirconnctl secret set ",
                              registration ? "" : name, registration ? "" : "'");
    }
    secret_store_close(s);
    return e;
}

/* ---- one-line secret files ------------------------------------------------------------------ */

void secret_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

enum dirconn_err secret_file_read(const char *path, const char *key, char **secret,
                                  struct dirconn_error *err)
{
    *secret = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s %s: cannot open: %s", key, path,
                                 strerror(errno));
    char *buf = malloc(SECRET_FILE_MAX);
    if (buf == NULL) {
        fclose(fp);
        return dirconn_error_set(err, DIRCONN_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, SECRET_FILE_MAX - 1, fp);
    bool too_long = n == SECRET_FILE_MAX - 1 && fgetc(fp) != EOF;
    fclose(fp);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (too_long || n == 0 || strlen(buf) != n || strchr(buf, '\n') != NULL) {
        OPENSSL_cleanse(buf, SECRET_FILE_MAX);
        free(buf);
        return dirconn_error_set(err, DIRCONN_ECONFIG, "%s %s: %s", key, path,
                                 n == 0 ? "the file is empty" : "not a one-line secret");
    }
    *secret = buf;
    return DIRCONN_OK;
}
