/*
 * digest.h - SHA-256 digests as hex text: the one place that turns an OpenSSL EVP digest
 * (FIPS 180-4 SHA-256) into the 64 lower-case hex digits the state, the plan and the
 * fingerprints store.
 */
#ifndef DIRCONN_CORE_DIGEST_H
#define DIRCONN_CORE_DIGEST_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* Length of a SHA-256 as hex text, terminating NUL included. */
#define DIGEST_SHA256_HEX_LEN 65

/*
 * digest_sha256_hex - the SHA-256 of len bytes at data into hex (64 lower-case hex digits and a
 * NUL).
 *   md: the algorithm, fetched once by a caller that digests in a loop
 *       (EVP_MD_fetch(NULL, "SHA256", NULL): EVP_sha256() looks the algorithm up on every call),
 *       or NULL for EVP_sha256(). It must be SHA-256.
 * Returns true; false when OpenSSL fails, and hex is then "".
 */
bool digest_sha256_hex(const EVP_MD *md, const void *data, size_t len,
                       char hex[DIGEST_SHA256_HEX_LEN]);

/*
 * digest_final_hex - finish ctx, a SHA-256 started with EVP_DigestInit_ex and fed with
 * EVP_DigestUpdate, into hex. ctx stays the caller's (EVP_MD_CTX_free); it may be NULL (an
 * allocation that failed), and then the result is false.
 * Returns true; false when OpenSSL fails or the digest is not 32 bytes, and hex is then "".
 */
bool digest_final_hex(EVP_MD_CTX *ctx, char hex[DIGEST_SHA256_HEX_LEN]);

#endif
