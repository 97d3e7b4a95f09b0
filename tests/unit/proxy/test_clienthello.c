/* The ClientHello parser (proxy/clienthello.c) on real ClientHellos captured from openssl
 * s_client, curl and Python (tests/data/clienthello/, made by capture.sh there), and on
 * synthetic ones: split, re-framed, truncated, oversized, record-layer errors, garbage, text.
 * Extension and body checks are in test_clienthello_ext.c. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hello_test.h"

/* ---- captures ---- */

struct capture {
    const char *file, *sni, *alpn;
    bool h2, h11, tls13;
};

#define LONG_SNI                                                                                   \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."                             \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."                             \
    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."                             \
    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddd.test"

static const struct capture captures[] = {
    {"openssl_tls13_sni", "www.example.test", NULL, false, false, true},
    {"openssl_tls13_alpn", "api.example.test", "h2", true, true, true},
    {"openssl_tls13_nosni", NULL, NULL, false, false, true},
    {"openssl_tls13_long_sni", LONG_SNI, NULL, false, false, true},
    {"openssl_tls12_sni", "www.example.test", NULL, false, false, false},
    {"openssl_tls12_alpn", "api.example.test", "http/1.1", false, true, false},
    {"openssl_tls12_nosni", NULL, NULL, false, false, false},
    {"curl_http11", "curl.example.test", "http/1.1", false, true, true},
    {"curl_http2", "curl.example.test", "h2", true, true, true},
    {"curl_tls12", "curl.example.test", "h2", true, true, false},
    {"python_ssl", "py.example.test", "http/1.1", false, true, true},
};
#define NCAPTURES (sizeof(captures) / sizeof(captures[0]))

static void check_capture(const struct capture *c, const struct proxy_hello *h)
{
    assert_sni(h, c->sni);
    if (c->alpn) {
        assert_true(h->has_alpn);
        assert_int_equal(h->alpn_len, strlen(c->alpn));
        assert_memory_equal(h->alpn, c->alpn, h->alpn_len);
    } else {
        assert_false(h->has_alpn);
        assert_null(h->alpn);
    }
    assert_int_equal(h->alpn_h2, c->h2);
    assert_int_equal(h->alpn_http11, c->h11);
    assert_int_equal(h->tls13_offered, c->tls13);
    assert_false(h->ech_offered);
    assert_int_equal(h->legacy_version, 0x0303);
    assert_true(h->n_extensions > 0);
    assert_null(h->error);
}

static void test_clienthello_captures_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCAPTURES; i++) {
        struct bld *w = load(captures[i].file);
        struct proxy_hello h;
        enum proxy_hello_result r = parse_b(w, &h);
        if (r != AWF_HELLO_OK)
            fail_msg("%s: %s (%s)", captures[i].file, proxy_hello_result_name(r), h.error);
        check_capture(&captures[i], &h);
        assert_int_equal(h.consumed, w->n);
        assert_int_equal(h.n_records, 1);
        assert_int_equal(h.hello_len, w->n - 5);
        /* TLS 1.3 early data or a change_cipher_spec after it: not part of the ClientHello. */
        static const uint8_t more[] = {20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 2, 'h', 'i'};
        put(w, more, sizeof(more));
        assert_int_equal(parse_b(w, &h), AWF_HELLO_OK);
        assert_int_equal(h.consumed, w->n - sizeof(more));
        check_capture(&captures[i], &h);
        free(w);
    }
}

/* Every prefix of a capture is NEED_MORE (as when it arrives one byte per TCP segment). */
static void test_clienthello_captures_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCAPTURES; i++) {
        struct bld *w = load(captures[i].file);
        struct proxy_hello h;
        for (size_t n = 0; n < w->n; n++) {
            enum proxy_hello_result r = parse(w->b, n, &h);
            if (r != AWF_HELLO_NEED_MORE)
                fail_msg("%s: prefix %zu: %s", captures[i].file, n, proxy_hello_result_name(r));
            assert_null(h.error);
        }
        assert_int_equal(parse_b(w, &h), AWF_HELLO_OK);
        check_capture(&captures[i], &h);
        free(w);
    }
}

/* The handshake re-framed into records of 1..N bytes: still OK, same answer. */
static void test_clienthello_captures_reframed(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCAPTURES; i++) {
        struct bld *w = load(captures[i].file), *hs = bld_new();
        unframe(hs, w->b, w->n);
        for (size_t rs = 1; rs <= hs->n; rs++) {
            struct bld *re = bld_new();
            put_records(re, hs->b, hs->n, rs, i % 2 ? 0x0301 : 0x0303);
            struct proxy_hello h;
            enum proxy_hello_result r = parse_b(re, &h);
            if (r != AWF_HELLO_OK)
                fail_msg("%s: records of %zu: %s (%s)", captures[i].file, rs,
                         proxy_hello_result_name(r), h.error);
            check_capture(&captures[i], &h);
            assert_int_equal(h.consumed, re->n);
            assert_int_equal(h.hello_len, hs->n);
            size_t nrec = (hs->n + rs - 1) / rs;
            assert_int_equal(h.n_records, nrec > 255 ? 255 : nrec);
            /* Split over records and over segments at once. */
            if (rs == 3 || rs == 100)
                for (size_t n = 0; n < re->n; n++)
                    assert_int_equal(parse(re->b, n, &h), AWF_HELLO_NEED_MORE);
            free(re);
        }
        free(hs);
        free(w);
    }
}

/* A capture whose body is cut short (lengths kept consistent): MALFORMED at every length,
 * except right after the compression methods, where it is a valid extension-less hello. */
static void test_clienthello_truncated_body(void **state)
{
    (void)state;
    struct bld *w = load("curl_http2"), *hs = bld_new();
    unframe(hs, w->b, w->n);
    size_t sid = hs->b[4 + 34];
    size_t suites = (size_t)hs->b[4 + 35 + sid] << 8 | hs->b[4 + 36 + sid];
    size_t comp = hs->b[4 + 37 + sid + suites];
    size_t no_exts = 35 + sid + 2 + suites + 1 + comp;
    for (size_t body = 0; body < hs->n - 4; body++) {
        struct bld *t = bld_new(), *re = bld_new();
        put8(t, 1);
        put24(t, (unsigned)body);
        put(t, hs->b + 4, body);
        put_records(re, t->b, t->n, 16384, 0x0301);
        struct proxy_hello h;
        enum proxy_hello_result r = parse_b(re, &h);
        if (body == no_exts) {
            assert_int_equal(r, AWF_HELLO_OK);
            assert_sni(&h, NULL);
            assert_int_equal(h.n_extensions, 0);
        } else if (r != AWF_HELLO_MALFORMED) {
            fail_msg("body of %zu: %s", body, proxy_hello_result_name(r));
        } else {
            assert_non_null(h.error);
        }
        free(t);
        free(re);
    }
    free(hs);
    free(w);
}

/* A record that ends before its announced length, followed by something else. */
static void test_clienthello_truncated_records(void **state)
{
    (void)state;
    struct bld *w = load("openssl_tls13_sni");
    struct proxy_hello h;
    /* Announced longer than sent: waits (a read deadline, not the parser, ends this). */
    w->b[4] = (uint8_t)(w->b[4] + 1);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_NEED_MORE);
    /* The handshake message announces more than its records carry, then an alert comes. */
    w->b[4] = (uint8_t)(w->b[4] - 1);
    w->b[8] = (uint8_t)(w->b[8] + 1);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_NEED_MORE);
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    put(w, alert, sizeof(alert));
    assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "non-handshake record inside the ClientHello");
    /* The handshake message announces less than its record carries. */
    w->n -= sizeof(alert);
    w->b[8] = (uint8_t)(w->b[8] - 2);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "bytes after the ClientHello in its record");
    free(w);
}

/* ---- size limits ---- */

/* A hello of exactly total bytes (handshake header included), made big by a padding extension. */
static struct bld *hello_of_size(size_t total)
{
    struct bld *hs = bld_new(), *exts = bld_new();
    put_sni(exts, "big.example.test");
    put_hello(hs, exts); /* measure the fixed part, then pad to the size asked for */
    size_t pad = total - hs->n - 4;
    hs->n = 0;
    uint8_t *zeros = calloc(1, pad ? pad : 1);
    assert_non_null(zeros);
    put_ext(exts, 21, zeros, pad);
    free(zeros);
    put_hello(hs, exts);
    assert_int_equal(hs->n, total);
    free(exts);
    return hs;
}

static void test_clienthello_oversized(void **state)
{
    (void)state;
    struct proxy_hello h;
    /* Exactly AWF_HELLO_MAX: accepted, in one full record or in two. */
    struct bld *hs = hello_of_size(AWF_HELLO_MAX), *w = bld_new();
    for (size_t rs = 10000; rs <= 16384; rs += 6384) {
        w->n = 0;
        put_records(w, hs->b, hs->n, rs, 0x0303);
        assert_int_equal(parse_b(w, &h), AWF_HELLO_OK);
        assert_sni(&h, "big.example.test");
        assert_int_equal(h.n_records, rs == 16384 ? 1 : 2);
        assert_int_equal(h.hello_len, AWF_HELLO_MAX);
    }
    free(hs);
    free(w);

    /* One byte more: TOO_BIG, known from the first record's first bytes. */
    hs = hello_of_size(AWF_HELLO_MAX + 1);
    w = bld_new();
    put_records(w, hs->b, hs->n, 16384, 0x0303);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_TOO_BIG);
    assert_non_null(h.error);
    assert_int_equal(parse(w->b, 9, &h), AWF_HELLO_TOO_BIG);
    assert_int_equal(parse(w->b, 8, &h), AWF_HELLO_NEED_MORE);
    free(w);

    /* The largest length a handshake header can announce. */
    w = bld_new();
    static const uint8_t huge[] = {22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff};
    put(w, huge, sizeof(huge));
    assert_int_equal(parse_b(w, &h), AWF_HELLO_TOO_BIG);
    free(w);
    free(hs);

    /* Tiny records: 6 bytes of wire per byte of a 6000-byte hello is past AWF_HELLO_MAX_WIRE,
     * and NEED_MORE never comes with a buffer of AWF_HELLO_MAX_WIRE bytes. */
    hs = hello_of_size(6000);
    w = bld_new();
    put_records(w, hs->b, hs->n, 1, 0x0303);
    assert_true(w->n > AWF_HELLO_MAX_WIRE);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_TOO_BIG);
    for (size_t n = AWF_HELLO_MAX_WIRE - 20; n <= AWF_HELLO_MAX_WIRE + 20; n++) {
        enum proxy_hello_result r = parse(w->b, n, &h);
        assert_true(r == AWF_HELLO_TOO_BIG || (r == AWF_HELLO_NEED_MORE && n < AWF_HELLO_MAX_WIRE));
    }
    free(w);
    free(hs);

    /* A 16000-byte hello in records of 5 bytes is 32000 bytes of wire: fine; of 4 bytes,
     * 36000: too big, wherever a record crosses the limit. */
    hs = hello_of_size(16000);
    for (size_t rs = 1; rs <= 5; rs++) {
        w = bld_new();
        put_records(w, hs->b, hs->n, rs, 0x0303);
        assert_int_equal(parse_b(w, &h), rs == 5 ? AWF_HELLO_OK : AWF_HELLO_TOO_BIG);
        free(w);
    }
    free(hs);
}

/* A record longer than 2^14 is refused even when the handshake would fit. */
static void test_clienthello_record_overflow(void **state)
{
    (void)state;
    struct bld *hs = hello_of_size(16385), *w = bld_new();
    put_records(w, hs->b, hs->n, 16385, 0x0303);
    struct proxy_hello h;
    assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED); /* the record is checked first */
    assert_string_equal(h.error, "record longer than 2^14");
    free(hs);
    hs = hello_of_size(16000);
    w->n = 0;
    put_records(w, hs->b, hs->n, 16384, 0x0303);
    w->b[3] = 0x40;
    w->b[4] = 0x01; /* announces 16385 */
    assert_int_equal(parse(w->b, 5, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "record longer than 2^14");
    free(hs);
    free(w);
}
/* ---- the record layer ---- */

static void test_clienthello_record_rules(void **state)
{
    (void)state;
    struct proxy_hello h;
    struct bld *e = bld_new(), *hs = bld_new(), *w = bld_new();
    put_sni(e, "rec.example.test");
    put_hello(hs, e);
    /* Record versions 0x0300..0x0304 are fine; 0x0305 is not. */
    for (unsigned v = 0x0300; v <= 0x0305; v++) {
        w->n = 0;
        put_records(w, hs->b, hs->n, 16384, v);
        assert_int_equal(parse_b(w, &h), v <= 0x0304 ? AWF_HELLO_OK : AWF_HELLO_MALFORMED);
        if (v <= 0x0304)
            assert_int_equal(h.record_version, v);
        else
            assert_int_equal(parse(w->b, 3, &h), AWF_HELLO_MALFORMED); /* known early */
    }
    /* The version changes between two records. */
    w->n = 0;
    put_records(w, hs->b, 10, 10, 0x0301);
    put_records(w, hs->b + 10, hs->n - 10, 16384, 0x0303);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "record version changed between records");
    /* A change_cipher_spec or an alert between two fragments. */
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 1, 0};
    static const uint8_t appdata[] = {23, 3, 3, 0, 1, 'x'};
    const uint8_t *between[] = {ccs, alert, appdata};
    const size_t blen[] = {sizeof(ccs), sizeof(alert), sizeof(appdata)};
    for (size_t i = 0; i < 3; i++) {
        w->n = 0;
        put_records(w, hs->b, 10, 10, 0x0303);
        put(w, between[i], blen[i]);
        put_records(w, hs->b + 10, hs->n - 10, 16384, 0x0303);
        assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
        assert_int_equal(parse(w->b, 16, &h), AWF_HELLO_MALFORMED); /* from its first byte */
    }
    /* A zero-length record. */
    w->n = 0;
    put_records(w, hs->b, 10, 10, 0x0303);
    static const uint8_t empty[] = {22, 3, 3, 0, 0};
    put(w, empty, sizeof(empty));
    put_records(w, hs->b + 10, hs->n - 10, 16384, 0x0303);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "empty handshake record");
    /* Another handshake type: refused from its first byte. */
    hs->b[0] = 2;
    w->n = 0;
    put_records(w, hs->b, hs->n, 16384, 0x0303);
    assert_int_equal(parse(w->b, 6, &h), AWF_HELLO_MALFORMED);
    assert_string_equal(h.error, "handshake message is not a ClientHello");
    /* A handshake header split across 1-byte records still is one header. */
    hs->b[0] = 1;
    w->n = 0;
    put_records(w, hs->b, 4, 1, 0x0303);
    put_records(w, hs->b + 4, hs->n - 4, 16384, 0x0303);
    assert_int_equal(parse_b(w, &h), AWF_HELLO_OK);
    assert_sni(&h, "rec.example.test");
    assert_int_equal(h.n_records, 5);
    free(e);
    free(hs);
    free(w);
}

/* ---- not TLS at all, and garbage ---- */

static void test_clienthello_not_tls(void **state)
{
    (void)state;
    struct proxy_hello h;
    static const char *text[] = {
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
    };
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        assert_int_equal(parse((const uint8_t *)text[i], strlen(text[i]), &h), AWF_HELLO_NOT_TLS);
        assert_non_null(h.error);
        assert_int_equal(parse((const uint8_t *)text[i], 1, &h), AWF_HELLO_NOT_TLS);
    }
    /* An SSLv2-compatible ClientHello (2-byte header with the high bit, type 1): not a TLS
     * handshake record, so NOT_TLS; whatever the caller tries next refuses it. */
    static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00};
    assert_int_equal(parse(sslv2, sizeof(sslv2), &h), AWF_HELLO_NOT_TLS);
    static const uint8_t v2major[] = {22, 2, 0, 0, 5};
    assert_int_equal(parse(v2major, sizeof(v2major), &h), AWF_HELLO_NOT_TLS);
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    assert_int_equal(parse(alert, sizeof(alert), &h), AWF_HELLO_NOT_TLS);
    /* Too little to tell. */
    assert_int_equal(parse(NULL, 0, &h), AWF_HELLO_NEED_MORE);
    assert_int_equal(parse(v2major, 1, &h), AWF_HELLO_NEED_MORE);
}

/* xorshift: a fixed sequence, so a failure reproduces. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_clienthello_garbage(void **state)
{
    (void)state;
    uint32_t seed = 0x2545f491;
    struct bld *w = bld_new(), *base = load("curl_http2");
    struct proxy_hello h;
    for (int round = 0; round < 20000; round++) {
        w->n = 0;
        if (round % 2) { /* random bytes behind a plausible record header */
            size_t n = rnd(&seed) % 600;
            static const uint8_t hdr[] = {22, 3, 1};
            put(w, hdr, sizeof(hdr));
            for (size_t i = 0; i < n; i++)
                put8(w, rnd(&seed));
        } else { /* a real hello with a few bytes flipped */
            put(w, base->b, base->n);
            for (int k = rnd(&seed) % 4 + 1; k > 0; k--)
                w->b[rnd(&seed) % w->n] ^= (uint8_t)(1u << rnd(&seed) % 8);
        }
        enum proxy_hello_result r = parse_b(w, &h);
        switch (r) {
        case AWF_HELLO_OK:
            assert_true(h.consumed <= w->n);
            assert_true(h.hello_len <= AWF_HELLO_MAX);
            assert_null(h.error);
            break;
        case AWF_HELLO_NEED_MORE:
            assert_true(w->n < AWF_HELLO_MAX_WIRE);
            assert_null(h.error);
            break;
        case AWF_HELLO_MALFORMED:
        case AWF_HELLO_TOO_BIG:
        case AWF_HELLO_NOT_TLS:
            assert_non_null(h.error);
            assert_false(h.has_sni);
            break;
        default:
            fail_msg("result %d", (int)r);
        }
    }
    free(w);
    free(base);
}

static void test_clienthello_result_names(void **state)
{
    (void)state;
    assert_string_equal(proxy_hello_result_name(AWF_HELLO_OK), "ok");
    assert_string_equal(proxy_hello_result_name(AWF_HELLO_NEED_MORE), "need-more");
    assert_string_equal(proxy_hello_result_name(AWF_HELLO_NOT_TLS), "not-tls");
    assert_string_equal(proxy_hello_result_name(AWF_HELLO_MALFORMED), "malformed");
    assert_string_equal(proxy_hello_result_name(AWF_HELLO_TOO_BIG), "too-big");
    assert_string_equal(proxy_hello_result_name((enum proxy_hello_result)42), "unknown");
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clienthello_captures_whole),
        cmocka_unit_test(test_clienthello_captures_every_prefix),
        cmocka_unit_test(test_clienthello_captures_reframed),
        cmocka_unit_test(test_clienthello_truncated_body),
        cmocka_unit_test(test_clienthello_truncated_records),
        cmocka_unit_test(test_clienthello_oversized),
        cmocka_unit_test(test_clienthello_record_overflow),
        cmocka_unit_test(test_clienthello_record_rules),
        cmocka_unit_test(test_clienthello_not_tls),
        cmocka_unit_test(test_clienthello_garbage),
        cmocka_unit_test(test_clienthello_result_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
