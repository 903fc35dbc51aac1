/* digest.c - SHA-256 digests as hex text (digest.h). */
#include "connector/core/digest.h"

static void to_hex(const unsigned char *md, char hex[DIGEST_SHA256_HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

bool digest_sha256_hex(const EVP_MD *md, const void *data, size_t len,
                       char hex[DIGEST_SHA256_HEX_LEN])
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    hex[0] = '\0';
    if (EVP_Digest(data, len, out, &n, md != NULL ? md : EVP_sha256(), NULL) != 1 || n != 32)
        return false;
    to_hex(out, hex);
    return true;
}

bool digest_final_hex(EVP_MD_CTX *ctx, char hex[DIGEST_SHA256_HEX_LEN])
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    hex[0] = '\0';
    if (ctx == NULL || EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != 32)
        return false;
    to_hex(out, hex);
    return true;
}
