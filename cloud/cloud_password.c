/* cloud_password.c - salted PBKDF2 hashes of User passwords (cloud_password.h). */
#include "cloud/cloud_password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "cloud/cloud.h"

static int derive(const char *pw, size_t len, const unsigned char *salt,
                  unsigned char out[CLOUD_PASSWORD_HASH_LEN])
{
    if (len > (size_t)0x7fffffff)
        return -1;
    return PKCS5_PBKDF2_HMAC(pw, (int)len, salt, CLOUD_PASSWORD_SALT_LEN, CLOUD_PASSWORD_ITERATIONS,
                             EVP_sha256(), CLOUD_PASSWORD_HASH_LEN, out) == 1
               ? 0
               : -1;
}

int cloud_password_set(struct cloud_store *st, const char *org, const char *id, const char *pw,
                       size_t len)
{
    unsigned char salt[CLOUD_PASSWORD_SALT_LEN], hash[CLOUD_PASSWORD_HASH_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1 || derive(pw, len, salt, hash) != 0)
        return -1;
    sqlite3_stmt *q = cloud_store_stmt(st, CLOUD_STMT_PASSWORD_SET);
    sqlite3_bind_text(q, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, salt, sizeof(salt), SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 4, hash, sizeof(hash), SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 5, CLOUD_PASSWORD_ITERATIONS);
    sqlite3_bind_int64(q, 6, cloud_now_ms());
    OPENSSL_cleanse(hash, sizeof(hash));
    return cloud_store_exec(st, q) == SQLITE_DONE ? 0 : -1;
}

int cloud_password_check(struct cloud_store *st, const char *org, const char *id, const char *pw,
                         size_t len, struct cloud_password_info *info)
{
    memset(info, 0, sizeof(*info));
    sqlite3_stmt *q = cloud_store_stmt(st, CLOUD_STMT_PASSWORD_GET);
    sqlite3_bind_text(q, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return -1;
    }
    unsigned char salt[CLOUD_PASSWORD_SALT_LEN], stored[CLOUD_PASSWORD_HASH_LEN],
        cand[CLOUD_PASSWORD_HASH_LEN];
    int ok = sqlite3_column_bytes(q, 0) == (int)sizeof(salt) &&
             sqlite3_column_bytes(q, 1) == (int)sizeof(stored) &&
             sqlite3_column_int(q, 2) == CLOUD_PASSWORD_ITERATIONS;
    if (ok) {
        memcpy(salt, sqlite3_column_blob(q, 0), sizeof(salt));
        memcpy(stored, sqlite3_column_blob(q, 1), sizeof(stored));
        info->set_ms = sqlite3_column_int64(q, 3);
        info->changes = sqlite3_column_int64(q, 4);
    }
    sqlite3_reset(q);
    if (!ok || derive(pw, len, salt, cand) != 0)
        return -1;
    info->set = 1;
    info->match = CRYPTO_memcmp(stored, cand, sizeof(cand)) == 0;
    OPENSSL_cleanse(cand, sizeof(cand));
    return 0;
}

int cloud_password_delete(struct cloud_store *st, const char *org, const char *id)
{
    sqlite3_stmt *q = cloud_store_stmt(st, CLOUD_STMT_PASSWORD_DELETE);
    sqlite3_bind_text(q, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    return cloud_store_exec(st, q) == SQLITE_DONE ? 0 : -1;
}
