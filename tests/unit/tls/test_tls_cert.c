/* Names, the CA and minted leaves, checked with OpenSSL's own verifier against the CA. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "common/error.h"
#include "tls/tls-int.h"

static void test_tls_name_canon_forms(void **state)
{
    (void)state;
    char out[AWF_HOST_MAX + 1];
    assert_int_equal(awf_tls_name_canon("API.GitHub.com.", 15, out, sizeof(out)), AWF_TLS_NAME_DNS);
    assert_string_equal(out, "api.github.com");
    assert_int_equal(awf_tls_name_canon("127.0.0.1", 9, out, sizeof(out)), AWF_TLS_NAME_IPV4);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(awf_tls_name_canon("[::1]", 5, out, sizeof(out)), AWF_TLS_NAME_IPV6);
    assert_string_equal(out, "::1");
    assert_int_equal(awf_tls_name_canon("2001:DB8:0::1", 13, out, sizeof(out)), AWF_TLS_NAME_IPV6);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(awf_tls_name_canon("_dmarc.x-y.test", 15, out, sizeof(out)), AWF_TLS_NAME_DNS);
}

static void test_tls_name_canon_rejects(void **state)
{
    (void)state;
    char out[AWF_HOST_MAX + 1];
    static const char *bad[] = {
        "",          ".",       "a..b",    "-a.com",       "a-.com",  "a.com-",
        "*.a.com",   "a b.com", "a/b.com", "a,b",          "[a.com]", "1.2.3",
        "[1.2.3.4]", "a.123",   "a.com..", "\xc3\xa9.com", "a:b",     "a\n.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(awf_tls_name_canon(bad[i], strlen(bad[i]), out, sizeof(out)),
                         AWF_E_BAD_REQUEST);
    char label[80];
    memset(label, 'a', 64);
    memcpy(label + 64, ".com", 5);
    assert_int_equal(awf_tls_name_canon(label, strlen(label), out, sizeof(out)), AWF_E_BAD_REQUEST);
    assert_int_equal(awf_tls_name_canon("a\0b.com", 7, out, sizeof(out)), AWF_E_BAD_REQUEST);
    char longname[300];
    for (int i = 0; i < 300; i++)
        longname[i] = (i % 10 == 9) ? '.' : 'a';
    assert_int_equal(awf_tls_name_canon(longname, 260, out, sizeof(out)), AWF_E_BAD_REQUEST);
    /* Every length around the limit (253 characters, one trailing dot more): the longest are
     * taken, one over is refused, and none is copied past the function's own buffer. */
    for (size_t len = 250; len <= 260; len++) {
        longname[len - 1] = 'a'; /* never ends in '.' unless set below */
        int want = len <= 253 ? AWF_TLS_NAME_DNS : AWF_E_BAD_REQUEST;
        assert_int_equal(awf_tls_name_canon(longname, len, out, sizeof(out)), want);
        longname[len - 1] = '.';
        want = len <= 254 && longname[len - 2] != '.' ? AWF_TLS_NAME_DNS : AWF_E_BAD_REQUEST;
        assert_int_equal(awf_tls_name_canon(longname, len, out, sizeof(out)), want);
        longname[len - 1] = (len - 1) % 10 == 9 ? '.' : 'a';
    }
}

/* Verifies leaf against ca as a TLS client would, for name (DNS or IP). */
static int verify(X509 *ca, X509 *leaf, const char *name, bool ip)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
    if (ip)
        X509_VERIFY_PARAM_set1_ip_asc(vp, name);
    else
        X509_VERIFY_PARAM_set1_host(vp, name, 0);
    int ok = X509_verify_cert(ctx);
    int err = ok == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return err;
}

static void test_tls_mint_verifies_against_ca(void **state)
{
    (void)state;
    char err[256];
    struct awf_tls_ca *ca;
    assert_int_equal(awf_tls_ca_new(1, NULL, &ca, err, sizeof(err)), 0);
    EVP_PKEY *key = awf_tls_key_new(AWF_TLS_KEY_P256);
    assert_non_null(key);
    X509 *leaf, *leaf2, *ipleaf;
    assert_int_equal(awf_tls_mint(ca, key, "api.github.com", AWF_TLS_NAME_DNS, &leaf), 0);
    assert_int_equal(verify(tls_ca_cert(ca), leaf, "api.github.com", false), 0);
    /* The SAN names exactly that host. */
    assert_int_equal(verify(tls_ca_cert(ca), leaf, "github.com", false),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify(tls_ca_cert(ca), leaf, "evil.api.github.com", false),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    /* Serials are random: two mints of one name differ. */
    assert_int_equal(awf_tls_mint(ca, key, "api.github.com", AWF_TLS_NAME_DNS, &leaf2), 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(leaf2)), 0);
    /* Within the CA's validity: the CA lasts one day, the leaf would last 30. */
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(tls_ca_cert(ca))) <=
                0);
    assert_true(
        ASN1_TIME_compare(X509_get0_notBefore(leaf), X509_get0_notBefore(tls_ca_cert(ca))) >= 0);
    assert_int_equal(X509_check_ca(leaf), 0);
    /* An address gets an IP SAN. */
    assert_int_equal(awf_tls_mint(ca, key, "127.0.0.1", AWF_TLS_NAME_IPV4, &ipleaf), 0);
    assert_int_equal(verify(tls_ca_cert(ca), ipleaf, "127.0.0.1", true), 0);
    assert_int_equal(verify(tls_ca_cert(ca), ipleaf, "127.0.0.2", true),
                     X509_V_ERR_IP_ADDRESS_MISMATCH);
    /* Another CA's leaf does not verify. */
    struct awf_tls_ca *other;
    assert_int_equal(awf_tls_ca_new(1, "other", &other, err, sizeof(err)), 0);
    assert_int_not_equal(verify(tls_ca_cert(other), leaf, "api.github.com", false), 0);
    X509_free(leaf);
    X509_free(leaf2);
    X509_free(ipleaf);
    EVP_PKEY_free(key);
    awf_tls_ca_free(ca);
    awf_tls_ca_free(other);
}

static void test_tls_mint_rsa_leaf(void **state)
{
    (void)state;
    char err[256];
    struct awf_tls_ca *ca;
    assert_int_equal(awf_tls_ca_new(2, "rsa test", &ca, err, sizeof(err)), 0);
    EVP_PKEY *key = awf_tls_key_new(AWF_TLS_KEY_RSA2048);
    X509 *leaf;
    assert_int_equal(awf_tls_mint(ca, key, "x.test", AWF_TLS_NAME_DNS, &leaf), 0);
    assert_int_equal(verify(tls_ca_cert(ca), leaf, "x.test", false), 0);
    X509_free(leaf);
    EVP_PKEY_free(key);
    awf_tls_ca_free(ca);
}

static void test_tls_ca_write_and_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/awf-tls-test-XXXXXX", err[512], cert[600], key[600];
    assert_non_null(mkdtemp(dir));
    struct awf_tls_ca *ca, *loaded;
    assert_int_equal(awf_tls_ca_new(1, NULL, &ca, err, sizeof(err)), 0);
    mode_t old = umask(0); /* even with a permissive umask the key is 0600 */
    assert_int_equal(awf_tls_ca_write(ca, dir, err, sizeof(err)), 0);
    umask(old);
    snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
    snprintf(key, sizeof(key), "%s/ca-key.pem", dir);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cert, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* A second write never replaces the key. */
    assert_int_equal(awf_tls_ca_write(ca, dir, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "ca-key.pem"));
    assert_int_equal(tls_ca_load(cert, key, &loaded, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(tls_ca_cert(ca), tls_ca_cert(loaded)), 0);
    awf_tls_ca_free(loaded);
    /* A key of another CA is refused with both names. */
    struct awf_tls_ca *other;
    char dir2[] = "/tmp/awf-tls-test-XXXXXX", key2[600];
    assert_non_null(mkdtemp(dir2));
    assert_int_equal(awf_tls_ca_new(1, NULL, &other, err, sizeof(err)), 0);
    assert_int_equal(awf_tls_ca_write(other, dir2, err, sizeof(err)), 0);
    snprintf(key2, sizeof(key2), "%s/ca-key.pem", dir2);
    assert_int_equal(tls_ca_load(cert, key2, &loaded, err, sizeof(err)), AWF_E_USAGE);
    assert_non_null(strstr(err, "does not belong"));
    /* Missing files name the file. */
    assert_int_equal(tls_ca_load("/nonexistent/ca.pem", key, &loaded, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    assert_int_equal(tls_ca_load(key, key, &loaded, err, sizeof(err)), AWF_E_USAGE);
    assert_non_null(strstr(err, "not a PEM certificate"));
    char cmd[1300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, dir2);
    assert_int_equal(system(cmd), 0);
    awf_tls_ca_free(ca);
    awf_tls_ca_free(other);
}

static void test_tls_bump_ssl_objects(void **state)
{
    (void)state;
    char dir[] = "/tmp/awf-tls-test-XXXXXX", err[512], cert[600], key[600];
    assert_non_null(mkdtemp(dir));
    struct awf_tls_ca *ca;
    assert_int_equal(awf_tls_ca_new(1, NULL, &ca, err, sizeof(err)), 0);
    assert_int_equal(awf_tls_ca_write(ca, dir, err, sizeof(err)), 0);
    snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
    snprintf(key, sizeof(key), "%s/ca-key.pem", dir);
    struct awf_tls_bump *b;
    struct awf_tls_bump_opts o = {.ca_cert = cert, .ca_key = key, .upstream_ca_file = cert};
    assert_int_equal(awf_tls_bump_create(&o, &b, err, sizeof(err)), 0);
    SSL *s1, *s2, *up;
    bool minted;
    assert_int_equal(awf_tls_bump_client_ssl(b, "a.test", AWF_TLS_NAME_DNS, &s1, &minted), 0);
    assert_true(minted);
    assert_int_equal(awf_tls_bump_client_ssl(b, "a.test", AWF_TLS_NAME_DNS, &s2, &minted), 0);
    assert_false(minted); /* the second visit is a cache hit */
    assert_int_equal(X509_cmp(SSL_get_certificate(s1), SSL_get_certificate(s2)), 0);
    assert_int_equal(verify(tls_ca_cert(ca), SSL_get_certificate(s1), "a.test", false), 0);
    assert_int_equal(awf_tls_bump_upstream_ssl(b, "a.test", AWF_TLS_NAME_DNS, &up), 0);
    assert_string_equal(SSL_get_servername(up, TLSEXT_NAMETYPE_host_name), "a.test");
    SSL_free(s1);
    SSL_free(s2);
    SSL_free(up);
    awf_tls_bump_destroy(b);
    /* A bad extra CA file is named. */
    o.upstream_ca_file = "/nonexistent/extra.pem";
    assert_int_not_equal(awf_tls_bump_create(&o, &b, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/extra.pem"));
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    awf_tls_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_name_canon_forms),
        cmocka_unit_test(test_tls_name_canon_rejects),
        cmocka_unit_test(test_tls_mint_verifies_against_ca),
        cmocka_unit_test(test_tls_mint_rsa_leaf),
        cmocka_unit_test(test_tls_ca_write_and_load),
        cmocka_unit_test(test_tls_bump_ssl_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
