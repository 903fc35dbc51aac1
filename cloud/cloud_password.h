/*
 * cloud_password.h - dirconn-cloud's store of User passwords: a salted hash only.
 *
 * RFC 7643 4.1.1: "password" is writeOnly and returned "never". The cloud keeps
 * PBKDF2-HMAC-SHA256 (RFC 8018 5.2) of the UTF-8 password with a random 16-byte salt and
 * CLOUD_PASSWORD_ITERATIONS iterations, one row per User (table user_passwords). The
 * cleartext is never stored or logged; the callers wipe it (OPENSSL_cleanse) after use.
 * docs/cloud-api.md 4.11.
 */
#ifndef DIRCONN_CLOUD_PASSWORD_H
#define DIRCONN_CLOUD_PASSWORD_H

#include <stddef.h>

#include "cloud/cloud_store.h"

#define CLOUD_PASSWORD_ITERATIONS 100000
#define CLOUD_PASSWORD_SALT_LEN   16
#define CLOUD_PASSWORD_HASH_LEN   32

/*
 * cloud_password_set - hash pw (len bytes, not necessarily NUL-terminated) with a fresh salt
 * and store it for User id of org, replacing the previous one; counts the change. Runs in the
 * caller's transaction. Returns 0, or -1 on a randomness, KDF or SQLite error (the SQLite
 * message through cloud_store_errmsg). pw is borrowed and not modified.
 */
int cloud_password_set(struct cloud_store *st, const char *org, const char *id, const char *pw,
                       size_t len);

/* What cloud_password_check found. */
struct cloud_password_info {
    int set;           /* 1: a password is stored for the user, 0: none */
    int match;         /* 1: the candidate matches the stored hash */
    long long set_ms;  /* when it was last set, ms since the epoch (set only) */
    long long changes; /* how many times it was set */
};

/*
 * cloud_password_check - compare pw (len bytes) with the stored hash of User id of org
 * (constant-time comparison, CRYPTO_memcmp). Fills info. Returns 0, -1 on a KDF or SQLite error.
 */
int cloud_password_check(struct cloud_store *st, const char *org, const char *id, const char *pw,
                         size_t len, struct cloud_password_info *info);

/* cloud_password_delete - forget the password of User id (the User is deleted). 0 or -1. */
int cloud_password_delete(struct cloud_store *st, const char *org, const char *id);

#endif
