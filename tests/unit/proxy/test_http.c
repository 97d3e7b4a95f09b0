/* Request-head collection, target parsing and the head sent upstream (proxy/http.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proxy/http.h"

/* Builds a head from "Name: value" pairs, as llhttp would hand them over. */
static void head_of(struct proxy_http_head *h, const char *url, const char *const *fields)
{
    proxy_http_head_init(h, 65536, 100);
    assert_int_equal(proxy_http_head_url(h, url, strlen(url)), 0);
    for (size_t i = 0; fields[i]; i += 2) {
        assert_int_equal(proxy_http_head_name(h, fields[i], strlen(fields[i])), 0);
        assert_int_equal(proxy_http_head_value(h, fields[i + 1], strlen(fields[i + 1])), 0);
    }
}

static char *rewrite(const struct proxy_http_head *h, const char *method, bool ws, char *out,
                     size_t cap)
{
    struct proxy_target t;
    struct proxy_slice u = proxy_http_head_url_slice(h);
    assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
    size_t n = proxy_http_rewrite_head(h, method, 1, 1, &t, ws, out, cap);
    assert_true(n < cap);
    out[n] = '\0';
    return out;
}

static void test_http_rewrite_origin_form_and_host(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[1024];
    const char *f[] = {"Host", "example.com:8080", "Accept", "*/*", NULL};
    head_of(&h, "http://example.com:8080/a/b?q=1", f);
    assert_string_equal(rewrite(&h, "GET", false, out, sizeof(out)),
                        "GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n");
    proxy_http_head_free(&h);
}

static void test_http_rewrite_empty_path(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[1024];
    const char *f[] = {NULL};
    head_of(&h, "http://example.com", f);
    assert_string_equal(rewrite(&h, "GET", false, out, sizeof(out)),
                        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    proxy_http_head_free(&h);
    head_of(&h, "http://example.com?x=1", f);
    assert_string_equal(rewrite(&h, "GET", false, out, sizeof(out)),
                        "GET /?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    proxy_http_head_free(&h);
}

/* A parent proxy gets the absolute form, written from the decided host and port (":80" left
 * out, IPv6 in brackets), with the same fields as the origin form. */
static void test_http_rewrite_absolute_form_for_a_parent(void **state)
{
    (void)state;
    struct proxy_http_head h;
    struct proxy_target t;
    char out[1024];
    const char *f[] = {"Host", "Example.com:8080", "Proxy-Connection", "keep-alive", NULL};
    const char *urls[] = {"http://Example.com:8080/a?q=1", "http://example.com",
                          "http://[::1]:81/x"};
    const char *want[] = {
        "GET http://Example.com:8080/a?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET http://[::1]:81/x HTTP/1.1\r\nHost: [::1]:81\r\n\r\n",
    };
    for (size_t i = 0; i < 3; i++) {
        head_of(&h, urls[i], i == 0 ? f : f + 4);
        struct proxy_slice u = proxy_http_head_url_slice(&h);
        assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
        size_t n =
            proxy_http_rewrite_head(&h, "GET", 1, 1, &t, AWF_HTTP_REQ_ABSOLUTE, out, sizeof(out));
        assert_true(n < sizeof(out));
        assert_true(n <= proxy_http_rewrite_bound(&h, "GET", &t));
        out[n] = '\0';
        assert_string_equal(out, want[i]);
        proxy_http_head_free(&h);
    }
}

static void test_http_rewrite_drops_hop_by_hop(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[2048];
    const char *f[] = {"Connection",
                       "keep-alive, X-Secret, Content-Length",
                       "Proxy-Connection",
                       "keep-alive",
                       "Keep-Alive",
                       "timeout=5",
                       "TE",
                       "trailers",
                       "Trailer",
                       "X-T",
                       "Proxy-Authorization",
                       "Basic abc",
                       "Upgrade",
                       "h2c",
                       "X-Secret",
                       "1",
                       "Content-Length",
                       "3",
                       "Via",
                       "1.1 other",
                       "X-Keep",
                       " yes ",
                       NULL};
    head_of(&h, "http://h/", f);
    /* Content-Length stays although Connection names it: dropping it would change framing. */
    assert_string_equal(rewrite(&h, "POST", false, out, sizeof(out)),
                        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nVia: 1.1 other\r\n"
                        "X-Keep: yes\r\n\r\n");
    proxy_http_head_free(&h);
}

static void test_http_rewrite_websocket_keeps_upgrade(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[1024];
    const char *f[] = {"Host",    "h",         "Connection",        "Upgrade",
                       "Upgrade", "websocket", "Sec-WebSocket-Key", "k",
                       NULL};
    head_of(&h, "http://h/ws", f);
    assert_true(proxy_http_is_websocket(&h));
    assert_string_equal(rewrite(&h, "GET", true, out, sizeof(out)),
                        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Key: k\r\nConnection: Upgrade\r\n\r\n");
    proxy_http_head_free(&h);
}

static void test_http_websocket_needs_both_headers(void **state)
{
    (void)state;
    struct proxy_http_head h;
    const char *f1[] = {"Upgrade", "websocket", NULL};
    head_of(&h, "http://h/", f1);
    assert_false(proxy_http_is_websocket(&h));
    proxy_http_head_free(&h);
    const char *f2[] = {"Connection", "keep-alive, Upgrade", "Upgrade", "WebSocket", NULL};
    head_of(&h, "http://h/", f2);
    assert_true(proxy_http_is_websocket(&h));
    proxy_http_head_free(&h);
}

static void test_http_rewrite_reports_needed_length(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char small[8];
    const char *f[] = {"A", "b", NULL};
    head_of(&h, "http://h/", f);
    struct proxy_target t;
    struct proxy_slice u = proxy_http_head_url_slice(&h);
    assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
    size_t need = proxy_http_rewrite_head(&h, "GET", 1, 0, &t, false, small, sizeof(small));
    assert_int_equal(need, strlen("GET / HTTP/1.0\r\nHost: h\r\nA: b\r\n\r\n"));
    proxy_http_head_free(&h);
}

static void test_http_head_pieces_join(void **state)
{
    (void)state;
    struct proxy_http_head h;
    struct proxy_slice v;
    proxy_http_head_init(&h, 1024, 10);
    assert_int_equal(proxy_http_head_url(&h, "http://a", 8), 0);
    assert_int_equal(proxy_http_head_url(&h, "/b", 2), 0);
    assert_int_equal(proxy_http_head_name(&h, "Us", 2), 0);
    assert_int_equal(proxy_http_head_name(&h, "er-Agent", 8), 0);
    assert_int_equal(proxy_http_head_value(&h, "cu", 2), 0);
    assert_int_equal(proxy_http_head_value(&h, "rl ", 3), 0);
    assert_int_equal(proxy_http_head_name(&h, "Empty", 5), 0);
    assert_int_equal(proxy_http_head_value(&h, "", 0), 0);
    v = proxy_http_head_url_slice(&h);
    assert_int_equal(v.len, 10);
    assert_memory_equal(v.p, "http://a/b", 10);
    assert_true(proxy_http_head_get(&h, "user-agent", &v));
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.p, "curl", 4);
    assert_true(proxy_http_head_get(&h, "EMPTY", &v));
    assert_int_equal(v.len, 0);
    assert_false(proxy_http_head_get(&h, "Host", &v));
    proxy_http_head_free(&h);
}

static void test_http_head_limits(void **state)
{
    (void)state;
    struct proxy_http_head h;
    proxy_http_head_init(&h, 16, 2);
    assert_int_equal(proxy_http_head_url(&h, "0123456789", 10), 0);
    assert_int_equal(proxy_http_head_url(&h, "0123456789", 10), AWF_E_TOO_BIG);
    proxy_http_head_free(&h);
    proxy_http_head_init(&h, 1024, 2);
    assert_int_equal(proxy_http_head_name(&h, "A", 1), 0);
    assert_int_equal(proxy_http_head_value(&h, "1", 1), 0);
    assert_int_equal(proxy_http_head_name(&h, "B", 1), 0);
    assert_int_equal(proxy_http_head_value(&h, "1", 1), 0);
    assert_int_equal(proxy_http_head_name(&h, "C", 1), AWF_E_TOO_BIG);
    proxy_http_head_free(&h);
}

static void test_http_head_rejects_space_in_name(void **state)
{
    (void)state;
    struct proxy_http_head h;
    proxy_http_head_init(&h, 1024, 10);
    assert_int_equal(proxy_http_head_name(&h, "Host ", 5), AWF_E_BAD_REQUEST);
    assert_int_equal(proxy_http_head_name(&h, "Ho\tst", 5), AWF_E_BAD_REQUEST);
    proxy_http_head_free(&h);
}

static void test_http_head_reset_reuses(void **state)
{
    (void)state;
    struct proxy_http_head h;
    struct proxy_slice v;
    proxy_http_head_init(&h, 1024, 10);
    assert_int_equal(proxy_http_head_name(&h, "A", 1), 0);
    assert_int_equal(proxy_http_head_value(&h, "1", 1), 0);
    proxy_http_head_reset(&h);
    assert_false(proxy_http_head_get(&h, "A", &v));
    assert_int_equal(proxy_http_head_name(&h, "B", 1), 0);
    assert_int_equal(proxy_http_head_value(&h, "2", 1), 0);
    assert_true(proxy_http_head_get(&h, "B", &v));
    assert_memory_equal(v.p, "2", 1);
    proxy_http_head_free(&h);
}

static void test_http_head_compact_keeps_content(void **state)
{
    (void)state;
    struct proxy_http_head h;
    struct proxy_slice v;
    const char *f[] = {"Host", "a.test:443", "User-Agent", "x/1", NULL};
    head_of(&h, "a.test:443", f);
    proxy_http_head_compact(&h);
    assert_int_equal(h.cap, h.len);
    assert_int_equal(h.cap_fields, 2);
    v = proxy_http_head_url_slice(&h);
    assert_int_equal(v.len, 10);
    assert_memory_equal(v.p, "a.test:443", 10);
    assert_true(proxy_http_head_get(&h, "User-Agent", &v));
    assert_memory_equal(v.p, "x/1", 3);
    /* A compacted head grows again: a refused WebSocket upgrade is followed by a request. */
    proxy_http_head_reset(&h);
    const char *big[] = {"Cookie", "c", "A", "1", "B", "2", "C", "3", "D", "4", "E",
                         "5",      "F", "6", "G", "7", "H", "8", "I", "9", NULL};
    for (size_t i = 0; big[i]; i += 2) {
        assert_int_equal(proxy_http_head_name(&h, big[i], strlen(big[i])), 0);
        assert_int_equal(proxy_http_head_value(&h, big[i + 1], strlen(big[i + 1])), 0);
    }
    assert_true(proxy_http_head_get(&h, "I", &v));
    assert_memory_equal(v.p, "9", 1);
    assert_int_equal(proxy_http_head_count(&h, "Cookie"), 1);
    proxy_http_head_free(&h);
    /* An empty head holds no memory once compacted. */
    proxy_http_head_init(&h, 1024, 10);
    proxy_http_head_compact(&h);
    assert_null(h.buf);
    assert_null(h.fields);
    proxy_http_head_free(&h);
}

static void parse_ok(const char *url, const char *host, unsigned port, const char *path)
{
    struct proxy_target t;
    assert_int_equal(proxy_http_parse_absolute(url, strlen(url), &t), 0);
    assert_int_equal(t.host.len, strlen(host));
    assert_memory_equal(t.host.p, host, t.host.len);
    assert_int_equal(t.port, port);
    assert_int_equal(t.path.len, strlen(path));
    assert_memory_equal(t.path.p, path, t.path.len);
}

static void test_http_parse_absolute_ok(void **state)
{
    (void)state;
    parse_ok("http://example.com/", "example.com", 80, "/");
    parse_ok("HTTP://Example.COM:8080/x?y", "Example.COM", 8080, "/x?y");
    parse_ok("http://[::1]:3128/p", "::1", 3128, "/p");
    parse_ok("http://[2001:db8::1]/", "2001:db8::1", 80, "/");
    parse_ok("http://a.b_c-d.example", "a.b_c-d.example", 80, "");
    parse_ok("http://h?q", "h", 80, "?q");
    parse_ok("http://h:65535/", "h", 65535, "/");
}

/* userinfo: taken up to the last '@', left out of the authority; going direct it becomes a
 * Basic Authorization unless the client sent one (Squid 5.7); the Host is canonical. */
static void test_http_userinfo_and_canonical_host(void **state)
{
    (void)state;
    struct proxy_http_head h;
    struct proxy_target t;
    char out[1024];
    const char *f[] = {"Host", "H.Test.", NULL};
    head_of(&h, "http://u:p@x@H.Test./a", f);
    struct proxy_slice u = proxy_http_head_url_slice(&h);
    assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
    assert_int_equal(t.userinfo.len, 5);
    assert_memory_equal(t.userinfo.p, "u:p@x", 5);
    assert_int_equal(t.authority.len, 7);
    assert_memory_equal(t.authority.p, "H.Test.", 7);
    size_t n = proxy_http_rewrite_head(&h, "GET", 1, 1, &t, 0, out, sizeof(out));
    assert_true(n < sizeof(out) && n <= proxy_http_rewrite_bound(&h, "GET", &t));
    out[n] = '\0';
    assert_string_equal(out, "GET /a HTTP/1.1\r\nHost: h.test\r\n"
                             "Authorization: Basic dTpwQHg=\r\n\r\n");
    /* to a parent: no Authorization; over TLS (ssl-bump) :443 is the default port */
    n = proxy_http_rewrite_head(&h, "GET", 1, 1, &t, AWF_HTTP_REQ_ABSOLUTE, out, sizeof(out));
    out[n] = '\0';
    assert_string_equal(out, "GET http://H.Test./a HTTP/1.1\r\nHost: h.test\r\n\r\n");
    t.port = 443;
    n = proxy_http_rewrite_head(&h, "GET", 1, 1, &t, AWF_HTTP_REQ_TLS, out, sizeof(out));
    out[n] = '\0';
    assert_string_equal(out, "GET /a HTTP/1.1\r\nHost: h.test\r\n"
                             "Authorization: Basic dTpwQHg=\r\n\r\n");
    proxy_http_head_free(&h);
    const char *g[] = {"Authorization", "Bearer z", NULL};
    head_of(&h, "http://u@h/", g);
    u = proxy_http_head_url_slice(&h);
    assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
    n = proxy_http_rewrite_head(&h, "GET", 1, 1, &t, 0, out, sizeof(out));
    out[n] = '\0';
    assert_string_equal(out, "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer z\r\n\r\n");
    proxy_http_head_free(&h);
}

static void test_http_parse_absolute_bad(void **state)
{
    (void)state;
    const char *bad[] = {"https://h/",      "ftp://h/",        "http:///x",    "http://:80/",
                         "http://h:0/",     "http://h:65536/", "http://h:8a/", "http://u @h/",
                         "http://u\x01@h/", "http://h h/",     "http://[::1/", "http://[]/",
                         "http://h%2e/",    "/origin",         "http://h:/",   "http://h:123456/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy_target t;
        assert_int_equal(proxy_http_parse_absolute(bad[i], strlen(bad[i]), &t), AWF_E_BAD_REQUEST);
    }
}

static void test_http_parse_authority(void **state)
{
    (void)state;
    struct proxy_target t;
    assert_int_equal(proxy_http_parse_authority("github.com:443", 14, 0, &t), 0);
    assert_int_equal(t.port, 443);
    assert_int_equal(t.host.len, 10);
    assert_int_equal(proxy_http_parse_authority("[::1]:8443", 10, 0, &t), 0);
    assert_int_equal(t.port, 8443);
    assert_memory_equal(t.host.p, "::1", 3);
    assert_int_equal(proxy_http_parse_authority("github.com", 10, 0, &t), AWF_E_BAD_REQUEST);
    assert_int_equal(proxy_http_parse_authority("github.com", 10, 80, &t), 0);
    assert_int_equal(t.port, 80);
    assert_int_equal(proxy_http_parse_authority("a:1:2", 5, 0, &t), AWF_E_BAD_REQUEST);
    assert_int_equal(proxy_http_parse_authority("", 0, 80, &t), AWF_E_BAD_REQUEST);
}

static void test_http_same_host(void **state)
{
    (void)state;
#define S(x) ((struct proxy_slice){x, sizeof(x) - 1})
    assert_true(proxy_http_same_host(S("Example.com"), S("example.COM")));
    assert_true(proxy_http_same_host(S("example.com."), S("example.com")));
    assert_true(proxy_http_same_host(S("[::1]"), S("::1")));
    assert_false(proxy_http_same_host(S("example.com"), S("example.org")));
    assert_false(proxy_http_same_host(S("a.example.com"), S("example.com")));
#undef S
}

/* Squid 5.7's spelling, measured: tests/integration/squid/test_differential.py compares. */
static void test_http_canon_host(void **state)
{
    (void)state;
    char out[64];
#define C(in, want)                                                                                \
    do {                                                                                           \
        assert_int_equal(                                                                          \
            proxy_http_canon_host((struct proxy_slice){in, sizeof(in) - 1}, out, sizeof(out)),     \
            sizeof(want) - 1);                                                                     \
        assert_string_equal(out, want);                                                            \
    } while (0)
    C("GITHUB.COM", "github.com");
    C("github.com.", "github.com");
    C("Api.GitHub.com.", "api.github.com");
    C("2130706433", "127.0.0.1");
    C("0x7f000001", "127.0.0.1");
    C("127.1", "127.0.0.1");
    C("127.0.0.1.", "127.0.0.1");
    C("010.0.0.1", "8.0.0.1"); /* inet_aton's octal, as getaddrinfo reads it for Squid */
    C("1e100.net", "1e100.net");
    C("deadbeef", "deadbeef"); /* hex digits without 0x: a name */
    C("[::1]", "[::1]");
    C("0:0:0::1", "[::1]");
    C("[0000:0000::0001]", "[::1]");
    C("[::ABCD]", "[::abcd]");
    C("[::FFFF:127.0.0.1]", "127.0.0.1");
    C("git_hub.com", "git_hub.com");
#undef C
    assert_int_equal(proxy_http_canon_host((struct proxy_slice){"", 0}, out, sizeof(out)), 0);
    assert_int_equal(proxy_http_canon_host((struct proxy_slice){"github.com", 10}, out, 10), 0);
    struct proxy_slice h = {"GitHub.com.", 11};
    assert_int_equal(proxy_http_canon_authority(h, 80, 80, out, sizeof(out)), 10);
    assert_string_equal(out, "github.com");
    assert_int_equal(proxy_http_canon_authority(h, 8080, 80, out, sizeof(out)), 15);
    assert_string_equal(out, "github.com:8080");
    assert_int_equal(proxy_http_canon_authority(h, 443, 0, out, sizeof(out)), 14);
    assert_string_equal(out, "github.com:443");
    h = (struct proxy_slice){"::1", 3};
    proxy_http_canon_authority(h, 443, 0, out, sizeof(out));
    assert_string_equal(out, "[::1]:443");
    assert_int_equal(proxy_http_canon_authority(h, 443, 0, out, 8), 0);
}

static void test_http_has_token(void **state)
{
    (void)state;
    struct proxy_slice l = {" keep-alive ,Upgrade,, x ", 25};
    assert_true(proxy_http_has_token(l, "upgrade"));
    assert_true(proxy_http_has_token(l, "KEEP-ALIVE"));
    assert_true(proxy_http_has_token(l, "x"));
    assert_false(proxy_http_has_token(l, "close"));
    assert_false(proxy_http_has_token(l, "keep"));
}

static void test_http_rewrite_drops_forwarded_for_keeps_via(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[1024];
    head_of(&h, "http://h/",
            (const char *const[]){"X-Forwarded-For", "10.0.0.1", "Via", "1.1 a", "Connection",
                                  "x-a, X-B", "X-A", "1", "x-b", "2", "X-C", "3", NULL});
    assert_string_equal(rewrite(&h, "GET", false, out, sizeof(out)),
                        "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 a\r\nX-C: 3\r\n\r\n");
    struct proxy_target t;
    struct proxy_slice u = proxy_http_head_url_slice(&h);
    assert_int_equal(proxy_http_parse_absolute(u.p, u.len, &t), 0);
    assert_true(proxy_http_rewrite_bound(&h, "GET", &t) >= strlen(out));
    assert_int_equal(proxy_http_head_count(&h, "via"), 1);
    assert_int_equal(proxy_http_head_count(&h, "host"), 0);
    proxy_http_head_free(&h);
}

static void test_http_rewrite_many_connection_tokens(void **state)
{
    (void)state;
    struct proxy_http_head h;
    char out[2048];
    /* More names than gathered at once: the last one is still dropped. */
    head_of(&h, "http://h/",
            (const char *const[]){"Connection",
                                  "a1,a2,a3,a4,a5,a6,a7,a8,a9,a10,a11,a12,a13,a14,"
                                  "a15,a16,a17,a18,a19,a20",
                                  "A20", "x", "A1", "y", "Keep", "z", NULL});
    assert_string_equal(rewrite(&h, "GET", false, out, sizeof(out)),
                        "GET / HTTP/1.1\r\nHost: h\r\nKeep: z\r\n\r\n");
    proxy_http_head_free(&h);
}

static void test_http_fragment_and_ipv6(void **state)
{
    (void)state;
    struct proxy_target t;
    const char *u = "http://h/p?q#frag";
    assert_int_equal(proxy_http_parse_absolute(u, strlen(u), &t), 0);
    assert_int_equal(t.path.len, 4);
    assert_memory_equal(t.path.p, "/p?q", 4);
    u = "http://h#frag";
    assert_int_equal(proxy_http_parse_absolute(u, strlen(u), &t), 0);
    assert_int_equal(t.path.len, 0);
    struct proxy_slice s = proxy_http_strip_fragment((struct proxy_slice){"/a#b", 4});
    assert_int_equal(s.len, 2);
    assert_int_equal(proxy_http_parse_authority("[cafe]:443", 10, 0, &t), AWF_E_BAD_REQUEST);
    assert_int_equal(proxy_http_parse_authority("[::1:2:3:4:5:6:7:8:9]:1", 23, 0, &t),
                     AWF_E_BAD_REQUEST);
    assert_int_equal(proxy_http_parse_authority("[::cafe]:443", 12, 0, &t), 0);
    assert_int_equal(proxy_http_parse_authority("[::ffff:1.2.3.4]", 16, 80, &t), 0);
    assert_int_equal(t.port, 80);
}

static char *resp(const char *head, unsigned flags, char *out, size_t cap)
{
    size_t n = proxy_http_rewrite_response(head, strlen(head), flags, out, cap);
    assert_true(n < cap && n <= strlen(head) + 32);
    out[n] = '\0';
    return out;
}

static void test_http_rewrite_response(void **state)
{
    (void)state;
    char out[1024];
    const char *h = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop, Content-Length\r\n"
                    "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nProxy-Connection: x\r\n"
                    "Upgrade: h2c\r\nTE: trailers\r\nTrailer: X-T\r\nX-Folded: a\r\n b\r\n"
                    "Content-Length: 2\r\nX-End: kept\r\n\r\n";
    assert_string_equal(resp(h, 0, out, sizeof(out)),
                        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n"
                        "X-End: kept\r\n\r\n");
    assert_string_equal(resp(h, AWF_HTTP_RESP_CLOSE, out, sizeof(out)),
                        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n"
                        "X-End: kept\r\nConnection: close\r\n\r\n");
    assert_string_equal(
        resp("HTTP/1.1 204 No Content\r\n\r\n", AWF_HTTP_RESP_KEEP_ALIVE, out, sizeof(out)),
        "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
    /* A hop-by-hop field's folded continuation goes with it. */
    assert_string_equal(
        resp("HTTP/1.1 200 OK\r\nKeep-Alive: a\r\n\tb\r\nX: 1\r\n\r\n", 0, out, sizeof(out)),
        "HTTP/1.1 200 OK\r\nX: 1\r\n\r\n");
    /* Too small: reports what it needs, writes no more than cap. */
    char small[8];
    assert_int_equal(proxy_http_rewrite_response(h, strlen(h), 0, small, sizeof(small)),
                     strlen("HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n"
                            "X-End: kept\r\n\r\n"));
}

static void test_http_bare_cr(void **state)
{
    (void)state;
#define BARE(s, prev, last) proxy_http_bare_cr(s, sizeof(s) - 1, prev, last)
    assert_false(BARE("GET / HTTP/1.1\r\nA: b\r\n\r\n", 0, true));
    assert_true(BARE("A: \r1\n", 0, false));
    assert_true(BARE("A: b\r\n\rX", 0, true));
    assert_false(BARE("A: b\r", 0, false)); /* its LF may come in the next read */
    assert_true(BARE("A: b\r", 0, true));
    assert_false(BARE("\nB: c", '\r', false));
    assert_true(BARE("B: c", '\r', false));
    assert_false(BARE("", '\r', false));
#undef BARE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_bare_cr),
        cmocka_unit_test(test_http_rewrite_origin_form_and_host),
        cmocka_unit_test(test_http_rewrite_empty_path),
        cmocka_unit_test(test_http_rewrite_drops_hop_by_hop),
        cmocka_unit_test(test_http_rewrite_absolute_form_for_a_parent),
        cmocka_unit_test(test_http_rewrite_websocket_keeps_upgrade),
        cmocka_unit_test(test_http_websocket_needs_both_headers),
        cmocka_unit_test(test_http_rewrite_reports_needed_length),
        cmocka_unit_test(test_http_head_pieces_join),
        cmocka_unit_test(test_http_head_limits),
        cmocka_unit_test(test_http_head_rejects_space_in_name),
        cmocka_unit_test(test_http_head_reset_reuses),
        cmocka_unit_test(test_http_head_compact_keeps_content),
        cmocka_unit_test(test_http_parse_absolute_ok),
        cmocka_unit_test(test_http_parse_absolute_bad),
        cmocka_unit_test(test_http_userinfo_and_canonical_host),
        cmocka_unit_test(test_http_parse_authority),
        cmocka_unit_test(test_http_same_host),
        cmocka_unit_test(test_http_canon_host),
        cmocka_unit_test(test_http_has_token),
        cmocka_unit_test(test_http_rewrite_drops_forwarded_for_keeps_via),
        cmocka_unit_test(test_http_rewrite_many_connection_tokens),
        cmocka_unit_test(test_http_fragment_and_ipv6),
        cmocka_unit_test(test_http_rewrite_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
