/*
 * Unit tests for connector/core/digest.c: the FIPS 180-4 test vectors of SHA-256 as hex text,
 * one-shot and incremental, with a fetched algorithm, and the failure results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "connector/core/digest.h"

#include <string.h>

/* FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc" and the 448-bit message. */
static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char long_msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char long_hex[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char empty_hex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void test_one_shot(void **state)
{
    (void)state;
    char hex[DIGEST_SHA256_HEX_LEN];
    assert_true(digest_sha256_hex(NULL, "abc", 3, hex));
    assert_string_equal(hex, abc_hex);
    assert_true(digest_sha256_hex(NULL, long_msg, strlen(long_msg), hex));
    assert_string_equal(hex, long_hex);
    assert_true(digest_sha256_hex(NULL, "", 0, hex));
    assert_string_equal(hex, empty_hex);

    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    assert_non_null(md);
    assert_true(digest_sha256_hex(md, "abc", 3, hex));
    assert_string_equal(hex, abc_hex);
    EVP_MD_free(md);
}

static void test_incremental(void **state)
{
    (void)state;
    char hex[DIGEST_SHA256_HEX_LEN] = "x";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, "a", 1), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, "bc", 2), 1);
    assert_true(digest_final_hex(ctx, hex));
    assert_string_equal(hex, abc_hex);

    /* Not SHA-256: 20 bytes are refused, and the result is empty. */
    assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha1(), NULL), 1);
    assert_false(digest_final_hex(ctx, hex));
    assert_string_equal(hex, "");
    EVP_MD_CTX_free(ctx);

    strcpy(hex, "x");
    assert_false(digest_final_hex(NULL, hex));
    assert_string_equal(hex, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_shot),
        cmocka_unit_test(test_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
