/* The logformat compiler and renderer: built-ins against SPEC §6 byte for byte, every code,
 * widths, and compile errors with their offsets. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/error.h"
#include "log/log.h"
#include "log_test_util.h"

/* SPEC §6 sample 1: an allowed CONNECT tunnel. */
static void test_logformat_firewall_detailed_tunnel(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 39748);
    struct sockaddr_storage srv = test_addr("140.82.114.22", 443);
    struct test_hdr hdrs[] = {{"Host", "api.github.com:443", 0}, {NULL, NULL, 0}};
    struct awf_log_record r = {
        .start_us = test_us(1761074374, 600, 0),
        .end_us = test_us(1761074374, 646, 999),
        .client = (struct sockaddr *)&cli,
        .server = (struct sockaddr *)&srv,
        .method = "CONNECT",
        .url = "api.github.com:443",
        .http_major = 1,
        .http_minor = 1,
        .status = 200,
        .tag = "TCP_TUNNEL",
        .hier = "HIER_DIRECT",
        .req_header = test_hdr_lookup,
        .header_ctx = hdrs,
    };
    assert_string_equal(test_render("firewall_detailed", &r, true),
                        "1761074374.646 172.30.0.20:39748 api.github.com:443 140.82.114.22:443 "
                        "1.1 CONNECT 200 TCP_TUNNEL:HIER_DIRECT api.github.com:443 \"-\"\n");
}

/* SPEC §6 samples 2 and 3: a denied CONNECT (no upstream) and a forwarded GET. */
static void test_logformat_firewall_detailed_denied_and_get(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 36274);
    struct test_hdr hdrs[] = {
        {"Host", "github.com:8443", 0}, {"User-Agent", "curl/7.81.0", 0}, {NULL, NULL, 0}};
    struct awf_log_record r = {
        .end_us = test_us(1760994429, 358, 0),
        .client = (struct sockaddr *)&cli,
        .method = "CONNECT",
        .url = "github.com:8443",
        .http_major = 1,
        .http_minor = 1,
        .status = 403,
        .tag = "TCP_DENIED",
        .hier = "HIER_NONE",
        .req_header = test_hdr_lookup,
        .header_ctx = hdrs,
    };
    assert_string_equal(test_render("firewall_detailed", &r, true),
                        "1760994429.358 172.30.0.20:36274 github.com:8443 -:- 1.1 CONNECT 403 "
                        "TCP_DENIED:HIER_NONE github.com:8443 \"curl/7.81.0\"\n");

    struct sockaddr_storage srv = test_addr("93.184.216.34", 80);
    struct test_hdr hdrs2[] = {
        {"Host", "example.com:80", 0}, {"User-Agent", "Mozilla/5.0", 0}, {NULL, NULL, 0}};
    r.server = (struct sockaddr *)&srv;
    r.method = "GET";
    r.url = "http://example.com/";
    r.status = 200;
    r.tag = "TCP_MISS";
    r.hier = "HIER_DIRECT";
    r.header_ctx = hdrs2;
    assert_string_equal(test_render("firewall_detailed", &r, true),
                        "1760994429.358 172.30.0.20:36274 example.com:80 93.184.216.34:80 1.1 GET "
                        "200 TCP_MISS:HIER_DIRECT http://example.com/ \"Mozilla/5.0\"\n");
}

/* A connection that ended before any request, as Squid 5.7 logs it (measured; AWF's parser
 * reads it): no Host, no method, version 0.0, status 0; %la/%lp "-", %>la/%>lp known. */
static void test_logformat_firewall_detailed_no_request(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 39748);
    struct sockaddr_storage loc = test_addr("172.30.0.10", 3128);
    struct awf_log_record r = {
        .end_us = test_us(1761074374, 646, 0),
        .client = (struct sockaddr *)&cli,
        .local = (struct sockaddr *)&loc,
        .url = "error:transaction-end-before-headers",
        .tag = "NONE_NONE",
        .hier = "HIER_NONE",
    };
    assert_string_equal(test_render("firewall_detailed", &r, true),
                        "1761074374.646 172.30.0.20:39748 - -:- 0.0 - 0 NONE_NONE:HIER_NONE "
                        "error:transaction-end-before-headers \"-\"\n");
    assert_string_equal(test_render("%la:%lp %>la:%>lp %rv %>rv %rm %>rm", &r, true),
                        "-:- 172.30.0.10:3128 0.0 - - -\n");
    assert_string_equal(test_render("squid", &r, true),
                        "1761074374.646      0 172.30.0.20 NONE_NONE/000 0 - "
                        "error:transaction-end-before-headers - HIER_NONE/- -\n");
    /* A request: the listener and its version are known. */
    r.method = "GET";
    r.http_major = r.http_minor = 1;
    assert_string_equal(test_render("%la:%lp %>la:%>lp %rv %>rv", &r, true),
                        "172.30.0.10:3128 172.30.0.10:3128 1.1 1.1\n");
}

/* Squid escapes header values, %>rd and %>ru outside quotes with RFC 1738's unsafe set (so an
 * IPv6 Host logs "%5B::1%5D:443"), and leaves %ru and quoted fields alone (measured, 5.7). */
static const char *host_v6(void *ctx, const char *name, size_t *len)
{
    (void)ctx;
    (void)name;
    *len = strlen("[::1]:443 {|}^~`'<>#%20");
    return "[::1]:443 {|}^~`'<>#%20";
}

static void test_logformat_squid_unsafe_escaping(void **state)
{
    (void)state;
    struct awf_log_record r = {
        .method = "CONNECT", .url = "[::1]:443", .domain = "[::1]", .req_header = host_v6};
    assert_string_equal(test_render("%{Host}>h %>rd %ru %>ru", &r, true),
                        "%5B::1%5D:443%20%7B%7C%7D%5E%7E%60%27%3C%3E%23%20 %5B::1%5D [::1]:443 "
                        "%5B::1%5D:443\n");
    assert_string_equal(test_render("\"%{Host}>h\"", &r, true), "\"[::1]:443 {|}^~`'<>#%20\"\n");
    assert_string_equal(test_render("{\"h\":\"%{Host}>h\"}", &r, true),
                        "{\"h\":\"[::1]:443 {|}^~`'<>#%20\"}\n");
}

static void test_logformat_squid_native(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("127.0.0.1", 50000);
    struct sockaddr_storage srv = test_addr("127.0.0.1", 18443);
    struct awf_log_record r = {
        .start_us = test_us(1795869324, 77, 500),
        .end_us = test_us(1795869324, 83, 0),
        .client = (struct sockaddr *)&cli,
        .server = (struct sockaddr *)&srv,
        .method = "CONNECT",
        .url = "bench.test:18443",
        .status = 200,
        .tag = "TCP_TUNNEL",
        .hier = "HIER_DIRECT",
        .bytes_to_client = 1761,
    };
    assert_string_equal(test_render("squid", &r, true),
                        "1795869324.083      5 127.0.0.1 TCP_TUNNEL/200 1761 CONNECT "
                        "bench.test:18443 - HIER_DIRECT/127.0.0.1 -\n");

    struct awf_log_record d = {
        .start_us = test_us(1795869324, 91, 0),
        .end_us = test_us(1795869324, 91, 400),
        .client = (struct sockaddr *)&cli,
        .method = "GET",
        .url = "http://evil.test:18080/small",
        .status = 403,
        .tag = "TCP_DENIED",
        .hier = "HIER_NONE",
        .bytes_to_client = 3424,
        .mime = "text/html",
    };
    assert_string_equal(test_render("squid", &d, true),
                        "1795869324.091      0 127.0.0.1 TCP_DENIED/403 3424 GET "
                        "http://evil.test:18080/small - HIER_NONE/- text/html\n");
    /* No reply at all: Squid prints NONE_NONE/000. */
    d.status = 0;
    assert_non_null(strstr(test_render("squid", &d, true), " TCP_DENIED/000 "));
}

static void test_logformat_audit_jsonl(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("172.30.0.20", 39748);
    struct sockaddr_storage srv = test_addr("140.82.114.22", 443);
    struct test_hdr hdrs[] = {{"Host", "api.github.com:443", 0}, {NULL, NULL, 0}};
    struct awf_log_record r = {
        .end_us = test_us(1761074374, 646, 0),
        .client = (struct sockaddr *)&cli,
        .server = (struct sockaddr *)&srv,
        .method = "CONNECT",
        .url = "api.github.com:443",
        .status = 200,
        .tag = "TCP_TUNNEL",
        .hier = "HIER_DIRECT",
        .req_header = test_hdr_lookup,
        .header_ctx = hdrs,
    };
    assert_string_equal(test_render("audit_jsonl", &r, true),
                        "{\"_schema\":\"audit/v9.8.7\",\"timestamp\":\"2025-10-21T19:19:34.646Z\","
                        "\"event\":\"http_access\",\"client\":\"172.30.0.20\",\"host\":\"api."
                        "github.com:443\",\"dest\":\"140.82.114.22:443\",\"method\":\"CONNECT\","
                        "\"status\":200,\"decision\":\"TCP_TUNNEL\",\"url\":\"api.github.com:443\"}"
                        "\n");
    /* Status 0 stays a JSON number. */
    r.status = 0;
    assert_non_null(strstr(test_render("audit_jsonl", &r, true), "\"status\":0,"));
}

/* Each code on its own. */
static void test_logformat_every_code(void **state)
{
    (void)state;
    struct sockaddr_storage cli = test_addr("::ffff:10.1.2.3", 40000);
    struct sockaddr_storage loc = test_addr("::1", 3128);
    struct sockaddr_storage srv = test_addr("2001:db8::5", 8443);
    struct test_hdr req[] = {{"Host", "h.test", 0}, {NULL, NULL, 0}};
    struct test_hdr rep[] = {{"Server", "nginx", 0}, {NULL, NULL, 0}};
    struct awf_log_record r = {
        .start_us = test_us(1761074374, 100, 0),
        .end_us = test_us(1761074375, 46, 123),
        .client = (struct sockaddr *)&cli,
        .local = (struct sockaddr *)&loc,
        .server = (struct sockaddr *)&srv,
        .method = "GET",
        .url = "http://h.test/a?b=c",
        .domain = "h.test",
        .http_major = 1,
        .http_minor = 0,
        .status = 204,
        .upstream_status = 200,
        .tag = "TCP_MISS",
        .hier = "HIER_DIRECT",
        .bytes_to_client = 123456,
        .bytes_from_client = 789,
        .mime = "text/plain",
        .user = "alice",
        .req_header = test_hdr_lookup,
        .rep_header = test_hdr_lookup,
        .header_ctx = req,
    };
    static const struct {
        const char *fmt;
        const char *want;
    } cases[] = {
        {"%ts", "1761074375\n"},
        {"%tu", "46\n"},
        {"%03tu", "046\n"},
        {"%tr", "946\n"},
        {"%6tr", "   946\n"},
        {"%tg", "21/Oct/2025:19:19:35\n"},
        {"%{%Y-%m-%d}tg", "2025-10-21\n"},
        {"%>a %>p", "10.1.2.3 40000\n"},
        {"%<a %<p", "2001:db8::5 8443\n"},
        {"%la %lp %>la %>lp", "::1 3128 ::1 3128\n"},
        {"%{Host}>h %{host}>h %{X-None}>h", "h.test h.test -\n"},
        {"%rv %>rv", "1.0 1.0\n"},
        {"%rm %>rm", "GET GET\n"},
        {"%ru", "http://h.test/a?b=c\n"},
        {"%>rd", "h.test\n"},
        {"%>Hs %03>Hs %<Hs", "204 204 200\n"},
        {"%Ss %Sh", "TCP_MISS HIER_DIRECT\n"},
        {"%<st %>st", "123456 789\n"},
        {"%un %[un", "alice alice\n"},
        {"%mt", "text/plain\n"},
        {"100%% %%ts", "100% %ts\n"},
        {"", "\n"},
        {"v=${AWF_VERSION} $x", "v=9.8.7 $x\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(test_render(cases[i].fmt, &r, false), cases[i].want);

    /* Reply headers come from rep_header. */
    struct awf_log_record r2 = r;
    r2.header_ctx = rep;
    assert_string_equal(test_render("%{Server}<h %{Host}<h", &r2, false), "nginx -\n");

    /* Everything absent renders "-" (numbers that always exist render 0). */
    struct awf_log_record empty = {0};
    assert_string_equal(test_render("%>a %>p %<a %<p %la %lp %{Host}<h %rm %ru %>rd %<Hs %Ss %Sh "
                                    "%un %[un %mt",
                                    &empty, false),
                        "- - - - - - - - - - - - - - - -\n");
    assert_string_equal(test_render("%ts.%03tu %tr %>Hs %<st %>st %rv", &empty, false),
                        "0.000 0 0 0 0 0.0\n");
}

static void test_logformat_local_time(void **state)
{
    (void)state;
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    setenv("TZ", "XST-2", 1); /* a POSIX zone two hours east: needs no tzdata */
    tzset();
    struct awf_log_record r = {.end_us = test_us(1761074374, 646, 0)};
    assert_string_equal(test_render("%tl", &r, false), "21/Oct/2025:21:19:34 +0200\n");
    assert_string_equal(test_render("%{%H:%M}tl|%{%H:%M}tg", &r, false), "21:19|19:19\n");
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    free(old);
    tzset();
}

static void test_logformat_widths(void **state)
{
    (void)state;
    struct awf_log_record r = {
        .start_us = test_us(100, 0, 0),
        .end_us = test_us(100, 7, 0),
        .method = "GET",
        .url = "http://example.com/path",
        .status = 5,
    };
    static const struct {
        const char *fmt;
        const char *want;
    } cases[] = {
        {"[%6rm]", "[   GET]\n"},       {"[%-6rm]", "[GET   ]\n"},
        {"[%06>Hs]", "[000005]\n"},     {"[%-06>Hs]", "[5     ]\n"},
        {"[%.10ru]", "[http://exa]\n"}, {"[%12.4ru]", "[        http]\n"},
        {"[%2rm]", "[GET]\n"},          {"[%.2>Hs]", "[5]\n"},
        {"[%05tr]", "[00007]\n"},       {"[%4un]", "[   -]\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(test_render(cases[i].fmt, &r, false), cases[i].want);
}

static void expect_error(const char *fmt, const char *offset_text, const char *code_text)
{
    struct awf_log_format *f = (struct awf_log_format *)1;
    char err[256] = "";
    assert_int_equal(awf_log_format_compile(fmt, NULL, &f, err, sizeof(err)), AWF_E_LOGFORMAT);
    assert_null(f);
    if (!strstr(err, offset_text) || !strstr(err, code_text))
        fail_msg("format \"%s\": error \"%s\" lacks \"%s\" or \"%s\"", fmt, err, offset_text,
                 code_text);
}

static void test_logformat_errors_name_offset_and_code(void **state)
{
    (void)state;
    expect_error("%ts %zz", "character 5", "\"%zz\"");
    expect_error("abc %", "character 5", "unknown code \"%\"");
    expect_error("%ts %{Host", "character 5", "unterminated");
    expect_error("%>h", "character 1", "needs a {name}");
    expect_error("x %{}>h", "character 3", "needs a {name}");
    expect_error("%{a}ts", "character 1", "takes no {argument}");
    expect_error("%.ru", "character 1", "maximum width");
    expect_error("%99999ts", "character 1", "width");
    expect_error("%-0 ts", "character 1", "unknown code");
    expect_error("ok %\"zz", "character 4", "\"%zz\"");
    /* A NULL err buffer is allowed. */
    struct awf_log_format *f = NULL;
    assert_int_equal(awf_log_format_compile("%q", NULL, &f, NULL, 0), AWF_E_LOGFORMAT);
}

/* snprintf semantics: the needed length is returned, the buffer is cut and terminated. */
static void test_logformat_render_cut(void **state)
{
    (void)state;
    struct awf_log_format *f = NULL;
    assert_int_equal(awf_log_format_compile("%rm %ru", NULL, &f, NULL, 0), 0);
    struct awf_log_record r = {.method = "GET", .url = "http://a/b"};
    char buf[8];
    assert_int_equal(log_format_render(f, &r, false, buf, sizeof(buf)), 15);
    assert_string_equal(buf, "GET htt");
    char full[16];
    assert_int_equal(log_format_render(f, &r, false, full, sizeof(full)), 15);
    assert_string_equal(full, "GET http://a/b\n");
    assert_int_equal(log_format_render(f, &r, false, NULL, 0), 15);
    awf_log_format_free(f);
    awf_log_format_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logformat_firewall_detailed_tunnel),
        cmocka_unit_test(test_logformat_firewall_detailed_denied_and_get),
        cmocka_unit_test(test_logformat_firewall_detailed_no_request),
        cmocka_unit_test(test_logformat_squid_unsafe_escaping),
        cmocka_unit_test(test_logformat_squid_native),
        cmocka_unit_test(test_logformat_audit_jsonl),
        cmocka_unit_test(test_logformat_every_code),
        cmocka_unit_test(test_logformat_local_time),
        cmocka_unit_test(test_logformat_widths),
        cmocka_unit_test(test_logformat_errors_name_offset_and_code),
        cmocka_unit_test(test_logformat_render_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
