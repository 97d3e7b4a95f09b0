/* The ClientHello parser (proxy/clienthello.c) on synthetic ClientHellos: the fixed fields of
 * the body and the extensions (server_name, ALPN, supported_versions, ECH, zero-length ones,
 * duplicates, pre_shared_key placement). Record layer and captures: test_clienthello.c. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hello_test.h"

/* ---- extensions ---- */

static void test_clienthello_zero_length_extensions(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new();
    put_ext(e, 0x0a0a, NULL, 0); /* GREASE */
    put_ext(e, 23, NULL, 0);     /* extended_master_secret */
    put_sni(e, "zero.example.test");
    put_ext(e, 49, NULL, 0); /* post_handshake_auth */
    put_ext(e, 0xfafa, NULL, 0);
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    assert_sni(&h, "zero.example.test");
    assert_int_equal(h.n_extensions, 5);

    /* An empty extensions block, and none at all. */
    e->n = 0;
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    assert_int_equal(h.n_extensions, 0);
    assert_int_equal(parse_exts(NULL, &h), AWF_HELLO_OK);
    assert_sni(&h, NULL);

    /* Empty where content is required: server_name (empty only in a ServerHello), ALPN,
     * supported_versions, encrypted_client_hello. */
    static const struct {
        unsigned type;
        const char *error;
    } need[] = {
        {0, "server_name: bad list length"},
        {16, "alpn: bad list length"},
        {43, "supported_versions: bad list length"},
        {0xfe0d, "encrypted_client_hello: empty"},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        e->n = 0;
        put_ext(e, 23, NULL, 0);
        put_ext(e, need[i].type, NULL, 0);
        assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
        assert_string_equal(h.error, need[i].error);
        assert_null(h.sni);
        assert_false(h.has_sni);
    }
    free(e);
}

static enum proxy_hello_result parse_sni_ext(const void *data, size_t n, struct proxy_hello *h)
{
    struct bld *e = bld_new();
    put_ext(e, 0, data, n);
    enum proxy_hello_result r = parse_exts(e, h);
    free(e);
    return r;
}

static enum proxy_hello_result parse_name(const char *name, size_t n, struct proxy_hello *h)
{
    struct bld *d = bld_new();
    put16(d, (unsigned)n + 3);
    put8(d, 0);
    put16(d, (unsigned)n);
    put(d, name, n);
    enum proxy_hello_result r = parse_sni_ext(d->b, d->n, h);
    free(d);
    return r;
}

static void test_clienthello_sni_names(void **state)
{
    (void)state;
    struct proxy_hello h;
    static const char *good[] = {
        "a",       "Example.COM", "xn--bcher-kva.example", "_acme.example.test", "example.com.",
        "1.2.3.4", "a-b.c-d",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(parse_name(good[i], strlen(good[i]), &h), AWF_HELLO_OK);
        assert_sni(&h, good[i]); /* case and trailing dot are kept for the caller */
    }
    static const char *bad[] = {
        "",      ".",    "..",     "a..b",          ".a",           "a.b..",        "a b",
        "a\tb",  "a/b",  "a:443",  "*.example.com", "[::1]",        "caf\xc3\xa9",  "a\x7f",
        "a%2eb", "a\\b", "a\r\nb", "host\x01",      "exa mple.com", "evil.com\x20",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_name(bad[i], strlen(bad[i]), &h) != AWF_HELLO_MALFORMED)
            fail_msg("accepted host name %zu \"%s\"", i, bad[i]);
        assert_false(h.has_sni);
    }
    /* An embedded NUL, as in the old "good.com\0.evil.com" certificate trick. */
    static const char nul[] = "good.example\0.evil.test";
    assert_int_equal(parse_name(nul, sizeof(nul) - 1, &h), AWF_HELLO_MALFORMED);

    /* Lengths: labels up to 63, names up to 253 (+ a trailing dot). */
    char name[300];
    memset(name, 'a', 63);
    assert_int_equal(parse_name(name, 63, &h), AWF_HELLO_OK);
    memset(name, 'a', 64);
    assert_int_equal(parse_name(name, 64, &h), AWF_HELLO_MALFORMED);
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < sizeof(name); i += 64)
        name[i] = '.';
    assert_int_equal(parse_name(name, 253, &h), AWF_HELLO_OK);
    assert_int_equal(h.sni_len, 253);
    assert_int_equal(parse_name(name, 254, &h), AWF_HELLO_MALFORMED);
    name[253] = '.';
    assert_int_equal(parse_name(name, 254, &h), AWF_HELLO_OK);
    assert_int_equal(parse_name(name, 255, &h), AWF_HELLO_MALFORMED);
}

static void test_clienthello_sni_list(void **state)
{
    (void)state;
    struct proxy_hello h;
    /* Two host names: which one the server uses is up to it, so refuse. */
    static const uint8_t two[] = {0, 12, 0, 0, 3, 'a', '.', 'b', 0, 0, 3, 'c', '.', 'd'};
    assert_int_equal(parse_sni_ext(two, sizeof(two), &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "server_name: more than one name");
    static const uint8_t type1[] = {0, 6, 1, 0, 3, 'a', '.', 'b'};
    assert_int_equal(parse_sni_ext(type1, sizeof(type1), &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "server_name: name type is not host_name");
    static const uint8_t empty_list[] = {0, 0};
    assert_int_equal(parse_sni_ext(empty_list, sizeof(empty_list), &h), AWF_HELLO_MALFORMED);
    static const uint8_t list_long[] = {0, 7, 0, 0, 3, 'a', '.', 'b'};
    assert_int_equal(parse_sni_ext(list_long, sizeof(list_long), &h), AWF_HELLO_MALFORMED);
    static const uint8_t list_short[] = {0, 5, 0, 0, 3, 'a', '.', 'b'};
    assert_int_equal(parse_sni_ext(list_short, sizeof(list_short), &h), AWF_HELLO_MALFORMED);
    static const uint8_t name_long[] = {0, 6, 0, 0, 4, 'a', '.', 'b'};
    assert_int_equal(parse_sni_ext(name_long, sizeof(name_long), &h), AWF_HELLO_MALFORMED);
    static const uint8_t name_empty[] = {0, 3, 0, 0, 0};
    assert_int_equal(parse_sni_ext(name_empty, sizeof(name_empty), &h), AWF_HELLO_MALFORMED);
    static const uint8_t ok[] = {0, 6, 0, 0, 3, 'a', '.', 'b'};
    assert_int_equal(parse_sni_ext(ok, sizeof(ok), &h), AWF_HELLO_OK);
    assert_sni(&h, "a.b");
}

static void test_clienthello_alpn(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new();
    static const uint8_t list[] = {0, 16,  6,   's', 'p', 'd', 'y', '/', '3',
                                   8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    put_ext(e, 16, list, sizeof(list));
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    assert_true(h.has_alpn);
    assert_int_equal(h.alpn_len, 6);
    assert_memory_equal(h.alpn, "spdy/3", 6);
    assert_false(h.alpn_h2);
    assert_true(h.alpn_http11);

    static const uint8_t empty_name[] = {0, 3, 2, 'h', '2', 0};
    static const uint8_t empty_name2[] = {0, 4, 0, 2, 'h', '2'};
    static const uint8_t past[] = {0, 3, 3, 'h', '2'};
    static const uint8_t extra[] = {0, 4, 2, 'h', '2'};
    static const uint8_t empty_list[] = {0, 0};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{empty_name, sizeof(empty_name)},
               {empty_name2, sizeof(empty_name2)},
               {past, sizeof(past)},
               {extra, sizeof(extra)},
               {empty_list, sizeof(empty_list)}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e->n = 0;
        put_ext(e, 16, bad[i].p, bad[i].n);
        if (parse_exts(e, &h) != AWF_HELLO_MALFORMED)
            fail_msg("alpn case %zu accepted", i);
        assert_false(h.has_alpn);
    }
    free(e);
}

static void test_clienthello_ech(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new();
    static const uint8_t ech[] = {0, 0, 1, 0, 1, 7, 0, 0, 0, 2, 0xaa, 0xbb};
    put_sni(e, "public.example.test");
    put_ext(e, 0xfe0d, ech, sizeof(ech));
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    assert_true(h.ech_offered);
    assert_sni(&h, "public.example.test"); /* the outer name: what the policy checks */
    free(e);
}

static void test_clienthello_extension_rules(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new();
    /* Duplicates, empty or not. */
    put_ext(e, 23, NULL, 0);
    put_ext(e, 23, NULL, 0);
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "duplicate extension");
    e->n = 0;
    put_sni(e, "one.example.test");
    put_sni(e, "two.example.test");
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
    assert_false(h.has_sni);

    /* pre_shared_key must come last. */
    static const uint8_t psk[] = {0, 1, 2, 3};
    e->n = 0;
    put_sni(e, "psk.example.test");
    put_ext(e, 41, psk, sizeof(psk));
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    put_ext(e, 23, NULL, 0);
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "pre_shared_key is not the last extension");

    /* An extension running past the block, and a block shorter or longer than the message. */
    e->n = 0;
    put_ext(e, 23, NULL, 0);
    put16(e, 0x1234);
    put16(e, 5);
    put8(e, 1);
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "extension runs past the extensions block");
    e->n = 0;
    put_ext(e, 23, NULL, 0);
    put8(e, 0); /* a stray byte: the block's length no longer splits into extensions */
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);

    struct bld *hs = bld_new(), *w = bld_new();
    e->n = 0;
    put_sni(e, "len.example.test");
    put_hello(hs, e);
    size_t at = hs->n - e->n - 2; /* the extensions block's length */
    for (int d = -1; d <= 1; d += 2) {
        hs->b[at + 1] = (uint8_t)(hs->b[at + 1] + d);
        w->n = 0;
        put_records(w, hs->b, hs->n, 16384, 0x0303);
        assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
        hs->b[at + 1] = (uint8_t)(hs->b[at + 1] - d);
    }
    /* supported_versions: odd list, and TLS 1.3 noticed among GREASE. */
    static const uint8_t odd[] = {3, 3, 4, 3};
    e->n = 0;
    put_ext(e, 43, odd, sizeof(odd));
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_MALFORMED);
    static const uint8_t vers[] = {6, 0x7a, 0x7a, 3, 4, 3, 3};
    e->n = 0;
    put_ext(e, 43, vers, sizeof(vers));
    assert_int_equal(parse_exts(e, &h), AWF_HELLO_OK);
    assert_true(h.tls13_offered);
    free(hs);
    free(w);
    free(e);
}

/* ---- the fixed part of the body ---- */

static void test_clienthello_body_fields(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new(), *hs = bld_new(), *w = bld_new();
    put_sni(e, "body.example.test");
    put_hello(hs, e);
    /* Offsets in the handshake message (header included), from put_hello(). */
    enum { VER = 4, SID = 38, SUITES = 39, COMP = 45 };
    struct {
        size_t at;
        uint8_t v;
    } bad[] = {
        {VER, 2},        /* legacy_version 0x0203 */
        {SID, 33},       /* session id longer than 32 */
        {SUITES + 1, 0}, /* no cipher suites */
        {SUITES + 1, 3}, /* odd cipher suites length */
        {COMP, 0},       /* no compression methods */
        {COMP + 1, 1},   /* no null compression */
        {COMP, 2},       /* compression methods run into the extensions */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t keep = hs->b[bad[i].at];
        hs->b[bad[i].at] = bad[i].v;
        w->n = 0;
        put_records(w, hs->b, hs->n, 16384, 0x0303);
        if (parse_b(w, &h) != AWF_HELLO_MALFORMED)
            fail_msg("body case %zu accepted", i);
        assert_non_null(h.error);
        assert_false(h.has_sni);
        hs->b[bad[i].at] = keep;
    }
    /* SSL 3.0's version is still major 3: reported, the caller decides. */
    hs->b[VER + 1] = 0;
    w->n = 0;
    put_records(w, hs->b, hs->n, 16384, 0x0300);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_OK);
    assert_int_equal(h.legacy_version, 0x0300);
    assert_int_equal(h.record_version, 0x0300);
    free(e);
    free(hs);
    free(w);
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clienthello_zero_length_extensions),
        cmocka_unit_test(test_clienthello_sni_names),
        cmocka_unit_test(test_clienthello_sni_list),
        cmocka_unit_test(test_clienthello_alpn),
        cmocka_unit_test(test_clienthello_ech),
        cmocka_unit_test(test_clienthello_extension_rules),
        cmocka_unit_test(test_clienthello_body_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
