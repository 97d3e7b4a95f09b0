/* The tunnel classifier (proxy/sniff.c): what servers would take as a request is HTTP (and
 * checked), the h2c preface and SSLv2 ClientHellos are told apart, the rest is opaque. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/sniff.h"

static struct proxy_sniffed sn;

static enum proxy_sniff sniff(const char *s)
{
    return proxy_sniff_tunnel(s, strlen(s), 4096, &sn);
}

static void assert_slice(struct proxy_slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_sniff_plain_requests(void **state)
{
    (void)state;
    assert_int_equal(sniff("GET / HTTP/1.1\r\nhost:  a.test:80 \r\nX: y\r\n\r\nbody"),
                     AWF_SNIFF_HTTP);
    assert_int_equal(sn.n_host, 1);
    assert_slice(sn.host, "a.test:80");
    assert_slice(sn.method, "GET");
    assert_slice(sn.target, "/");
    assert_int_equal(sn.head_len, strlen("GET / HTTP/1.1\r\nhost:  a.test:80 \r\nX: y\r\n\r\n"));
    assert_null(sn.suspect);
    assert_int_equal(sniff("GET http://b.test/ HTTP/1.0\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sn.n_host, 0);
    assert_slice(sn.target, "http://b.test/");
    assert_int_equal(sniff("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sn.n_host, 2);
    assert_int_equal(sniff("GET / HTTP/1.1\n\n"), AWF_SNIFF_HTTP); /* bare LF ends lines too */
}

/* The evasions of issue #13: each is a request to nginx or a lenient llhttp. */
static void test_sniff_lenient_forms_are_http(void **state)
{
    (void)state;
    assert_int_equal(sniff("\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_slice(sn.host, "evil.test");
    assert_int_equal(sn.skip, 2);
    assert_int_equal(sniff("\n\n\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sniff("GET  / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_slice(sn.target, "/");
    assert_int_equal(sniff("GET /  HTTP/1.1\r\nHost: evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sniff("GET\t/\tHTTP/1.1\r\nHost: evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sniff("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\nHost: e\r\n\r\n"),
                     AWF_SNIFF_HTTP);
    assert_slice(sn.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF");
    assert_int_equal(sniff("get / http/1.1\r\nHost: e\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sniff("M!#$%&'*+-.^_`|~ / HTTP/1.1\r\n\r\n"), AWF_SNIFF_HTTP);
    /* Spaces inside the target (nginx keeps them): the target runs to the version. */
    assert_int_equal(sniff("GET http://evil.test/ x HTTP/1.1\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_slice(sn.target, "http://evil.test/ x");
    assert_int_equal(sniff("GET / RTSP/1.0\r\nHost: e\r\n\r\n"), AWF_SNIFF_HTTP);
    /* Whitespace before the colon still names Host. */
    assert_int_equal(sniff("GET / HTTP/1.1\r\nHost : evil.test\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_int_equal(sn.n_host, 1);
    assert_slice(sn.host, "evil.test");
}

static void test_sniff_suspect_heads(void **state)
{
    (void)state;
    assert_int_equal(sniff("GET http://evil.test/\r\n"), AWF_SNIFF_HTTP); /* HTTP/0.9 */
    assert_non_null(sn.suspect);
    assert_slice(sn.target, "http://evil.test/");
    assert_int_equal(sniff("GET / HTTP/1.1\r\nHost: a\r\n evil\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_non_null(sn.suspect);
    assert_int_equal(sniff("GET / HTTP/1.1\rHost: evil\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_non_null(sn.suspect);
    assert_int_equal(sniff("GET / HTTP/1.1\r\nX: 1\rHost: evil\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_non_null(sn.suspect);
    assert_int_equal(sniff("GET / HTTP/1.1\r\nX: 1\r\n  \r\nHost: evil\r\n\r\n"), AWF_SNIFF_HTTP);
    assert_non_null(sn.suspect);
}

static void test_sniff_waits_for_a_whole_head(void **state)
{
    (void)state;
    assert_int_equal(sniff(""), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("\r\n\r\n"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GE"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GET /x"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GET /x HTTP/"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GET /x HTTP/1.1\r\nHost: a\r\n"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GET /x HTTP/1.1\r\nHost: a\r\n\r"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("GET\r"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("PRI * HTTP/2.0\r\n"), AWF_SNIFF_NEED_MORE);
    assert_int_equal(sniff("\x80"), AWF_SNIFF_NEED_MORE);
    /* No end within max. */
    assert_int_equal(proxy_sniff_tunnel("GET / HTTP/1.1\r\nA: b\r\n", 22, 22, &sn),
                     AWF_SNIFF_TOO_BIG);
    assert_int_equal(proxy_sniff_tunnel("\r\n\r\n", 4, 4, &sn), AWF_SNIFF_TOO_BIG);
    assert_int_equal(proxy_sniff_tunnel("ABCDEFGH", 8, 8, &sn), AWF_SNIFF_TOO_BIG);
}

static void test_sniff_h2c_and_sslv2(void **state)
{
    (void)state;
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04";
    assert_int_equal(proxy_sniff_tunnel(pre, sizeof(pre) - 1, 4096, &sn), AWF_SNIFF_H2C);
    assert_int_equal(sn.skip, 0);
    assert_int_equal(proxy_sniff_tunnel("\r\n"
                                        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                                        26, 4096, &sn),
                     AWF_SNIFF_H2C);
    assert_int_equal(sn.skip, 2);
    /* An SSLv2 CLIENT-HELLO: 2-byte length with the top bit, msg type 1, version 3.1. */
    static const char v2[] = "\x80\x2e\x01\x03\x01\x00\x15";
    assert_int_equal(proxy_sniff_tunnel(v2, sizeof(v2) - 1, 4096, &sn), AWF_SNIFF_SSL2);
    assert_int_equal(proxy_sniff_tunnel("\x80\x2e\x02", 3, 4096, &sn), AWF_SNIFF_OPAQUE);
}

static void test_sniff_opaque(void **state)
{
    (void)state;
    assert_int_equal(sniff("HELO\r\nnot http"), AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("PING\r\n"), AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("SSH-2.0-OpenSSH_9.2\r\n"), AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("SET a b\r\n"), AWF_SNIFF_OPAQUE); /* no version, not GET */
    assert_int_equal(sniff("a001 CAPABILITY\r\n"), AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("*1\r\n$4\r\nPING\r\n"), AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("GET\r\n"), AWF_SNIFF_OPAQUE);
    assert_int_equal(proxy_sniff_tunnel("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8, 4096, &sn),
                     AWF_SNIFF_OPAQUE);
    assert_int_equal(sniff("{\"a\":1}"), AWF_SNIFF_OPAQUE);
    assert_string_equal(proxy_sniff_name(AWF_SNIFF_OPAQUE), "opaque");
}

/* Where opaque bytes may pass, only a client-style request start is waited on. */
static void test_sniff_strict_start(void **state)
{
    (void)state;
    assert_true(proxy_sniff_strict_start("GE", 2));
    assert_true(proxy_sniff_strict_start("GET /x", 6));
    assert_true(proxy_sniff_strict_start("M-SEARCH ", 9));
    assert_false(proxy_sniff_strict_start("ping", 4));
    assert_false(proxy_sniff_strict_start("hello there", 11));
    assert_false(proxy_sniff_strict_start("", 0));
    assert_false(proxy_sniff_strict_start("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_plain_requests),
        cmocka_unit_test(test_sniff_lenient_forms_are_http),
        cmocka_unit_test(test_sniff_suspect_heads),
        cmocka_unit_test(test_sniff_waits_for_a_whole_head),
        cmocka_unit_test(test_sniff_h2c_and_sslv2),
        cmocka_unit_test(test_sniff_opaque),
        cmocka_unit_test(test_sniff_strict_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
