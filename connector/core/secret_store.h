/*
 * secret_store.h - the encrypted secret store: one file in [connector]
 * state_dir holding named secrets (the LDAP bind password, the proxy
 * password, the cloud bearer token, the connector id and secret that
 * `dirconnctl register` obtains).
 *
 * File format (docs/operations.md "Secrets"): a 36-byte header (magic
 * "DCSECRET", version 1, cipher 1 = AES-256-GCM, the key id, a random 96-bit
 * nonce, the ciphertext length), the ciphertext of a JSON object
 * {"name": "value", ...}, and the 128-bit GCM tag (NIST SP 800-38D). The
 * header is the additional authenticated data, so changing any byte of the
 * file makes decryption fail. Every write uses a fresh nonce from RAND_bytes.
 *
 * The key is 32 random bytes in [connector] key_file (default
 * <state_dir>/secret.key), created on first use with mode 0600 and without
 * ever replacing an existing file (written to a temporary file, then
 * link(2)ed into place). A key file readable by group or others is refused.
 * The store is written atomically: temporary file (mode 0600) -> fsync ->
 * rename -> fsync of the directory, so a failed write leaves the old file.
 * A store opened for update holds a POSIX write lock on <file>.lock until it
 * is closed, so that concurrent commands do not lose each other's changes.
 *
 * Values are wiped from memory (OPENSSL_cleanse) when they are freed; the key
 * lives in pages excluded from core dumps (platform_secure_alloc). Error
 * messages name files and secret names, never values.
 */
#ifndef DIRCONN_SECRET_STORE_H
#define DIRCONN_SECRET_STORE_H

#include "connector/core/config.h"
#include "connector/core/error.h"

#include <stdbool.h>
#include <stddef.h>

/* File names in state_dir. */
#define SECRET_STORE_FILE     "secrets.enc"
#define SECRET_STORE_KEY_FILE "secret.key"

/* The names the connector reads. */
#define SECRET_LDAP_BIND_PASSWORD "ldap-bind-password"
#define SECRET_PROXY_PASSWORD     "proxy-password"
#define SECRET_CLOUD_TOKEN        "cloud-token"
#define SECRET_CONNECTOR_ID       "cloud-connector-id"
#define SECRET_CONNECTOR_SECRET   "cloud-connector-secret"
/* The secret a rotation replaces, kept until the new one is confirmed by a token obtained
 * with it (dirconnctl reset-secret, docs/cli.md); never read by the connector. */
#define SECRET_CONNECTOR_SECRET_PREVIOUS "cloud-connector-secret-previous"

/* Longest value, terminating NUL excluded. */
#define SECRET_STORE_VALUE_MAX 4095

/* Size of the buffer secret_file_read reads a secret file into, terminating NUL included. */
#define SECRET_FILE_MAX 4096
/* Key length in bytes (AES-256). */
#define SECRET_STORE_KEY_LEN 32

struct secret_store;

/* How a store is opened. */
enum secret_store_mode {
    SECRET_STORE_READ = 0, /* read only: no lock, no key is created, save is refused */
    SECRET_STORE_UPDATE,   /* read-modify-write: holds the lock; the key must exist when the
                              store does (a missing key leaves the store read-only) */
    SECRET_STORE_CREATE,   /* as UPDATE, and creates the directory and the key when missing */
};

/*
 * secret_store_path / secret_store_key_path - the store file
 * (<state_dir>/secrets.enc) and the key file ([connector] key_file or
 * <state_dir>/secret.key) of cfg, written to buf (len bytes). Returns false
 * when the path does not fit.
 */
bool secret_store_path(const struct config *cfg, char *buf, size_t len);
bool secret_store_key_path(const struct config *cfg, char *buf, size_t len);

/*
 * secret_store_open - open the store file `file` with the key in `key_file`.
 *
 * When the store file exists it is read and decrypted; it must be a whole,
 * unchanged store written with this key. When it does not exist the store is
 * empty. With SECRET_STORE_CREATE a missing key file is created (32 bytes
 * from RAND_bytes, mode 0600; the directory of `file` is created with mode
 * 0700 when missing); otherwise a missing key leaves the store empty and
 * read-only, and secret_store_save() fails. UPDATE and CREATE hold a POSIX
 * record lock on <file>.lock from before the read until secret_store_close,
 * so that concurrent read-modify-write cycles do not lose changes; READ takes
 * no lock (writes replace the file atomically), so a process may read the
 * store while it holds it open for update.
 *
 * On success *out is a store owned by the caller (secret_store_close).
 * Errors, all with nothing changed on disk: DIRCONN_ESECRET (the message
 * says which: truncated, not a secret store, unsupported version, written
 * with another key, failed authentication (tampered or damaged), key file
 * missing, of the wrong size or readable by others), DIRCONN_EIO (a file
 * cannot be read or created; errno text in the message), DIRCONN_ENOMEM.
 */
enum dirconn_err secret_store_open(const char *file, const char *key_file,
                                   enum secret_store_mode mode, struct secret_store **out,
                                   struct dirconn_error *err);

/* secret_store_open_config - secret_store_open with the paths of cfg. */
enum dirconn_err secret_store_open_config(const struct config *cfg, enum secret_store_mode mode,
                                          struct secret_store **out, struct dirconn_error *err);

/* secret_store_close - wipe every value and the key, and free. s may be NULL. */
void secret_store_close(struct secret_store *s);

/*
 * secret_store_name_valid - true for 1-64 characters of a-z, 0-9 and '-'.
 */
bool secret_store_name_valid(const char *name);

/*
 * secret_store_lookup - copy the value of `name` into *value (malloc'd, free
 * with secret_store_free_value), or store NULL when it is not set.
 * Errors: DIRCONN_ENOMEM.
 */
enum dirconn_err secret_store_lookup(const struct secret_store *s, const char *name, char **value,
                                     struct dirconn_error *err);

/*
 * secret_store_put - set `name` to `value` in memory (copied; the caller
 * still wipes its own copy). Call secret_store_save() to write the file.
 * Errors: DIRCONN_EUSAGE (invalid name; empty value, longer than
 * SECRET_STORE_VALUE_MAX, or holding a control character), DIRCONN_ENOMEM.
 */
enum dirconn_err secret_store_put(struct secret_store *s, const char *name, const char *value,
                                  struct dirconn_error *err);

/* secret_store_remove - drop `name` in memory (wiped). Returns true if it was set. */
bool secret_store_remove(struct secret_store *s, const char *name);

/*
 * secret_store_count / secret_store_name_at - enumerate the names (sorted as
 * written); the string is owned by the store.
 */
size_t secret_store_count(const struct secret_store *s);
const char *secret_store_name_at(const struct secret_store *s, size_t i);

/*
 * secret_store_save - encrypt every secret with a new random nonce and
 * replace the file atomically (temporary file in the same directory with
 * mode 0600, write, fsync, rename, fsync of the directory). On failure the
 * temporary file is removed and the old file is left as it was.
 * Errors: DIRCONN_EIO (errno text and the file in the message),
 * DIRCONN_ESECRET (the store was opened read-only or without a key),
 * DIRCONN_ENOMEM.
 */
enum dirconn_err secret_store_save(struct secret_store *s, struct dirconn_error *err);

/*
 * secret_store_get - read one secret of cfg's store: open, look up, close.
 * On success *value is malloc'd (free with secret_store_free_value).
 * Errors: those of secret_store_open, and DIRCONN_ESECRET when the name is
 * not set (the message names the store and 'dirconnctl secret set NAME' or
 * 'dirconnctl register').
 */
enum dirconn_err secret_store_get(const struct config *cfg, const char *name, char **value,
                                  struct dirconn_error *err);

/* secret_store_free_value - wipe and free a value. v may be NULL. */
void secret_store_free_value(char *v);

/*
 * secret_file_read - read a one-line secret file (a token, a client secret or a password that
 * a *_file key or option names) into a new buffer.
 *   path: the file; key: the config key or option that names it, for messages.
 *   *secret: on success the secret without its trailing newline, owned by the caller, who wipes
 *            and frees it with secret_free; NULL on error.
 * Returns DIRCONN_OK; DIRCONN_ECONFIG ("<key> <path>: cannot open: <errno text>", "the file is
 * empty" or "not a one-line secret": longer than SECRET_FILE_MAX - 1 bytes, a NUL or a second
 * line); DIRCONN_ENOMEM.
 */
enum dirconn_err secret_file_read(const char *path, const char *key, char **secret,
                                  struct dirconn_error *err);

/* secret_free - wipe (OPENSSL_cleanse) and free a secret string. s may be NULL. */
void secret_free(char *s);

#endif
