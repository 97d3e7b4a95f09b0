/* squid.conf decisions that match Squid 5.7's (each checked against it on loopback): dstdomain
 * values with a trailing dot, url_regex on the URL Squid matches (decoded as Squid decodes it),
 * dst ACLs on names by their resolved addresses, load notices, and the hosts-file rule of the
 * private-address check. */

#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

/* One decision: method (NULL: from traffic), url (NULL: built by the policy). */
static struct awf_verdict decide(const struct awf_policy *p, const char *method, const char *host,
                                 uint16_t port, enum awf_traffic traffic, const char *url)
{
    struct awf_policy_req rq = {.host = host,
                                .host_len = strlen(host),
                                .port = port,
                                .traffic = traffic,
                                .method = method,
                                .url = url,
                                .url_len = url ? strlen(url) : 0};
    struct awf_verdict v;
    awf_policy_decide_req(p, &rq, &v);
    return v;
}

#define ALLOWS(p, m, h, port, t, url) assert_true(decide((p), (m), (h), (port), (t), (url)).allow)
#define DENIES(p, m, h, port, t, url)                                                              \
    do {                                                                                           \
        struct awf_verdict v_ = decide((p), (m), (h), (port), (t), (url));                         \
        assert_false(v_.allow);                                                                    \
        assert_false(v_.need_addrs);                                                               \
    } while (0)

static void test_squidconf_trailing_dot_dstdomain_matches_nothing(void **state)
{
    (void)state;
    /* AWF writes `--allow-domains github.com.` as ".github.com."; Squid 5.7 then denies
     * github.com, its subdomains and "github.com." alike. "plain.test." without the leading
     * dot matches nothing either; request hosts still lose one trailing dot. */
    struct awf_policy *p = from_squid("acl allowed_domains dstdomain .github.com. plain.test.\n"
                                      "acl other dstdomain .other.test\n"
                                      "http_access allow allowed_domains\n"
                                      "http_access allow other\n"
                                      "http_access deny all\n");
    DENIES(p, NULL, "github.com", 443, TLS, NULL);
    DENIES(p, NULL, "api.github.com", 443, TLS, NULL);
    DENIES(p, NULL, "github.com.", 443, TLS, NULL);
    DENIES(p, "GET", "plain.test", 80, HTTP, NULL);
    DENIES(p, "GET", "plain.test.", 80, HTTP, NULL);
    ALLOWS(p, NULL, "other.test.", 443, TLS, NULL);
    ALLOWS(p, NULL, "A.Other.Test", 443, TLS, NULL);
    const char *const *n;
    assert_int_equal(awf_policy_notices(p, &n), 2);
    assert_string_equal(n[0], "squid.conf:1: acl allowed_domains: dstdomain \".github.com.\" ends "
                              "in a dot and matches nothing (as in Squid: request hosts lose "
                              "their trailing dot before matching)");
    assert_non_null(strstr(n[1], "\"plain.test.\" ends in a dot"));
    awf_policy_unref(p);
}

static void test_squidconf_request_url(void **state)
{
    (void)state;
    char b[128];
    assert_int_equal(awf_policy_request_url(b, sizeof b, NULL, "GitHub.COM.", 11, 443, NULL, 0),
                     14);
    assert_string_equal(b, "github.com:443");
    awf_policy_request_url(b, sizeof b, "http", "Example.test", 12, 80, "/a?b=%41", 8);
    assert_string_equal(b, "http://example.test/a?b=%41");
    awf_policy_request_url(b, sizeof b, "http", "example.test", 12, 8080, "", 0);
    assert_string_equal(b, "http://example.test:8080/");
    awf_policy_request_url(b, sizeof b, "https", "example.test", 12, 443, "/x", 2);
    assert_string_equal(b, "https://example.test/x");
    awf_policy_request_url(b, sizeof b, "https", "example.test", 12, 80, "/x", 2);
    assert_string_equal(b, "https://example.test:80/x");
    awf_policy_request_url(b, sizeof b, "http", "2130706433", 10, 80, "/", 1);
    assert_string_equal(b, "http://127.0.0.1/");
    awf_policy_request_url(b, sizeof b, "http", "[::1]", 5, 8080, "/", 1);
    assert_string_equal(b, "http://[::1]:8080/");
    awf_policy_request_url(b, sizeof b, NULL, "::FFFF:10.0.0.1", 15, 443, NULL, 0);
    assert_string_equal(b, "10.0.0.1:443");
    assert_int_equal(awf_policy_request_url(b, 8, NULL, "github.com", 10, 443, NULL, 0), -ENOSPC);
    assert_int_equal(awf_policy_request_url(b, sizeof b, NULL, "a..b", 4, 443, NULL, 0),
                     AWF_E_BAD_REQUEST);
}

/* AWF's --enable-dlp lines (src/dlp.ts), as its generator writes them. */
static const char dlp_conf[] =
    "acl dlp_blocked url_regex -i ghp_[a-zA-Z0-9]{36}\n"
    "acl dlp_blocked url_regex -i AKIA[0-9A-Z]{16}\n"
    "acl dlp_blocked url_regex -i [?&]authorization=[a-zA-Z0-9._-]{20,}\n"
    "acl dlp_blocked url_regex -i PRIVATE(%20|\\+|%2B)KEY\n"
    "acl allowed_domains dstdomain .github.com\n"
    "acl exact url_regex ^http://example\\.test/exact$\n"
    "acl conn url_regex ^example\\.test:8443$\n"
    "acl upper url_regex ^EXAMPLE\n"
    "http_access deny dlp_blocked\n"
    "http_access allow exact\n"
    "http_access allow conn\n"
    "http_access deny upper\n"
    "http_access allow allowed_domains\n"
    "http_access deny all\n";

static void test_squidconf_url_regex(void **state)
{
    (void)state;
    struct awf_policy *p = from_squid(dlp_conf);
    assert_true(awf_policy_wants_url(p));
    const char *tok = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    char url[256];
    snprintf(url, sizeof url, "http://github.com/x?t=%s", tok);
    DENIES(p, "GET", "github.com", 80, HTTP, url);
    ALLOWS(p, "GET", "github.com", 80, HTTP, "http://github.com/x?t=ghp_short");
    /* -i: case-insensitive */
    DENIES(p, "GET", "github.com", 80, HTTP, "http://github.com/akiaABCDEFGHIJKLMNOP");
    /* Squid decodes the URL first: %2B is '+', %20 a space the pattern does not take */
    DENIES(p, "GET", "github.com", 80, HTTP, "http://github.com/PRIVATE+KEY");
    DENIES(p, "GET", "github.com", 80, HTTP, "http://github.com/PRIVATE%2BKEY");
    ALLOWS(p, "GET", "github.com", 80, HTTP, "http://github.com/PRIVATE%20KEY");
    DENIES(p, "GET", "github.com", 80, HTTP,
           "http://github.com/%67hp_abcdefghijklmnopqrstuvwxyz0123456789");
    DENIES(p, "GET", "github.com", 80, HTTP,
           "http://github.com/a?x=1&Authorization=abcdefghij0123456789");
    /* a CONNECT is matched as host:port, lower-cased: a token in it is seen too */
    DENIES(p, NULL, "ghp_abcdefghijklmnopqrstuvwxyz0123456789.github.com", 443, TLS, NULL);
    ALLOWS(p, NULL, "api.github.com", 443, TLS, NULL);
    ALLOWS(p, NULL, "EXAMPLE.test", 8443, TLS, NULL); /* "example.test:8443": conn, not upper */
    DENIES(p, NULL, "example.test", 443, TLS, NULL);
    DENIES(p, "GET", "example.test", 80, HTTP, NULL); /* "http://example.test/" */
    ALLOWS(p, "GET", "example.test", 80, HTTP, "http://example.test/exact");
    DENIES(p, "GET", "example.test", 80, HTTP, "http://example.test/exact?q");
    /* decrypted HTTPS requests (ssl-bump) are matched by their https:// URL the same way */
    snprintf(url, sizeof url, "https://api.github.com/x?t=%s", tok);
    DENIES(p, "GET", "api.github.com", 443, TLS, url);
    /* a URL longer than the request's own buffer is decoded on the heap */
    char big[3000];
    memset(big, 'a', sizeof big);
    memcpy(big, "http://github.com/", 18);
    memcpy(big + 2000, "PRIVATE%2BKEY", 13);
    big[sizeof big - 1] = '\0';
    DENIES(p, "GET", "github.com", 80, HTTP, big);
    big[2007] = 'x';
    ALLOWS(p, "GET", "github.com", 80, HTTP, big);
    awf_policy_unref(p);
    p = from_squid("acl a url_regex +i ^http://A\\.test/\nhttp_access deny a\n"
                   "acl b url_regex ^http://b\\.test:8080/$\nhttp_access deny b\n"
                   "http_access allow all\n");
    ALLOWS(p, "GET", "a.test", 80, HTTP, NULL); /* lower-cased host */
    /* HTTP without a URL given: "http://host[:port]/" */
    DENIES(p, "GET", "B.test.", 8080, HTTP, NULL);
    awf_policy_unref(p);
}

static void test_squidconf_url_unescape_edges(void **state)
{
    (void)state;
    struct awf_policy *p = from_squid("acl pct url_regex %41\nacl nul url_regex %00\n"
                                      "acl pp url_regex /%%$\n"
                                      "http_access deny pct\nhttp_access deny nul\n"
                                      "http_access deny pp\nhttp_access allow all\n");
    /* "%%41" is "%41" after decoding (one pass), which the first ACL matches */
    DENIES(p, "GET", "a.test", 80, HTTP, "http://a.test/%%41");
    ALLOWS(p, "GET", "a.test", 80, HTTP, "http://a.test/%41");  /* "A" */
    DENIES(p, "GET", "a.test", 80, HTTP, "http://a.test/%00");  /* left as it is */
    DENIES(p, "GET", "a.test", 80, HTTP, "http://a.test/%%%%"); /* "%%" */
    ALLOWS(p, "GET", "a.test", 80, HTTP, "http://a.test/%4");   /* incomplete: stays */
    awf_policy_unref(p);
}

static struct awf_verdict decide_addrs(const struct awf_policy *p, const char *host,
                                       const char *const *ips, size_t n, bool known)
{
    struct sockaddr_storage ss[4];
    for (size_t i = 0; i < n; i++)
        ss[i] = sockaddr_of(ips[i]);
    struct awf_policy_req rq = {.host = host,
                                .host_len = strlen(host),
                                .port = 443,
                                .traffic = TLS,
                                .addrs = ss,
                                .addr_size = sizeof ss[0],
                                .n_addrs = n,
                                .addrs_known = known};
    struct awf_verdict v;
    awf_policy_decide_req(p, &rq, &v);
    return v;
}

static void test_squidconf_dst_matches_resolved_names(void **state)
{
    (void)state;
    struct awf_policy *p = from_squid("acl blocked dstdomain .blocked.test\n"
                                      "acl api dst 203.0.113.20 2001:db8::/32\n"
                                      "acl named dstdomain .named.test\n"
                                      "http_access deny blocked\n"
                                      "http_access allow api\n"
                                      "http_access allow named\n"
                                      "http_access deny all\n");
    /* decided before the dst rule: no lookup needed */
    struct awf_verdict v = decide_addrs(p, "x.blocked.test", NULL, 0, false);
    assert_false(v.need_addrs);
    assert_false(v.allow);
    assert_int_equal(v.rule->origin.line, 4);
    /* reaching the dst rule with a name: the addresses decide */
    v = decide_addrs(p, "named.test", NULL, 0, false);
    assert_true(v.need_addrs);
    assert_false(v.allow);
    const char *one[] = {"198.51.100.1", "203.0.113.20"};
    v = decide_addrs(p, "anything.test", one, 2, true);
    assert_true(v.allow);
    assert_int_equal(v.rule->origin.line, 5);
    const char *mapped[] = {"::ffff:203.0.113.20"};
    assert_true(decide_addrs(p, "anything.test", mapped, 1, true).allow);
    const char *v6[] = {"2001:db8::5"};
    assert_true(decide_addrs(p, "anything.test", v6, 1, true).allow);
    const char *other[] = {"198.51.100.1"};
    assert_false(decide_addrs(p, "anything.test", other, 1, true).allow);
    v = decide_addrs(p, "named.test", other, 1, true);
    assert_true(v.allow);
    assert_int_equal(v.rule->origin.line, 6);
    /* a failed lookup: dst does not match, later rules decide (as Squid) */
    assert_true(decide_addrs(p, "named.test", NULL, 0, true).allow);
    assert_false(decide_addrs(p, "anything.test", NULL, 0, true).allow);
    /* raw IP targets never need a lookup */
    v = decide_addrs(p, "203.0.113.20", NULL, 0, false);
    assert_false(v.need_addrs);
    assert_true(v.allow);
    /* the name-only call (DNS forwarder): dst ACLs match raw IPs only */
    EXPECT(p, "anything.test", 443, TLS, false, "blocked", NULL);
    EXPECT(p, "named.test", 443, TLS, true, "allowed", NULL);
    /* a dst ACL after a failed term never needs the addresses: Squid stops at that term */
    awf_policy_unref(p);
    p = from_squid("acl CONNECT method CONNECT\nacl api dst 203.0.113.20\n"
                   "http_access allow !CONNECT api\nhttp_access deny all\n");
    assert_false(decide_addrs(p, "a.test", NULL, 0, false).need_addrs);
    awf_policy_unref(p);
}

static void test_squidconf_directive_notices(void **state)
{
    (void)state;
    struct awf_policy *p = from_squid("pinger_enable off\n"
                                      "cache deny all\n"
                                      "http_access allow all\n"
                                      "error_directory /usr/share/squid/errors/en\n"
                                      "cache_mem 64 MB\n"
                                      "maximum_object_size 0 KB\n"
                                      "half_closed_clients on\n"
                                      "via off\n"
                                      "read_timeout 30 minutes\n");
    const char *const *n;
    assert_int_equal(awf_policy_notices(p, &n), 6);
    assert_string_equal(n[0],
                        "squid.conf:1: pinger_enable ignored: awf-proxy sends no ICMP probes");
    assert_string_equal(n[1], "squid.conf:2: cache ignored: awf-proxy keeps no cache");
    assert_string_equal(n[2], "squid.conf:4: error_directory ignored: awf-proxy writes its own "
                              "short error pages");
    assert_string_equal(n[3], "squid.conf:5: cache_mem ignored: awf-proxy keeps no cache");
    assert_string_equal(n[4],
                        "squid.conf:6: maximum_object_size ignored: awf-proxy keeps no cache");
    assert_non_null(strstr(n[5], "squid.conf:7: half_closed_clients ignored: "));
    awf_policy_unref(p);
    p = from_lists("github.com", NULL);
    assert_int_equal(awf_policy_notices(p, &n), 0);
    awf_policy_unref(p);
}

static bool check(const struct awf_policy *p, const char *ip, enum awf_addr_origin o)
{
    struct sockaddr_storage ss = sockaddr_of(ip);
    const char *why = NULL;
    bool ok = awf_policy_addr_check(p, (struct sockaddr *)&ss, o, &why);
    assert_true(ok == (why == NULL));
    return ok;
}

static void test_policy_hosts_file_addresses(void **state)
{
    (void)state;
    /* the proxy's own hosts file may lead to the networks containers live on */
    const char *ok[] = {"172.17.0.1", "172.30.0.5", "10.1.2.3",         "192.168.1.1",
                        "100.64.0.1", "fd00::1",    "::ffff:172.17.0.1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_false(check(NULL, ok[i], AWF_ADDR_DNS));
        assert_true(check(NULL, ok[i], AWF_ADDR_HOSTS));
    }
    /* never to metadata, link-local, loopback or the special ranges */
    const char *never[] = {"169.254.169.254",
                           "169.254.1.2",
                           "fe80::1",
                           "127.0.0.1",
                           "::1",
                           "0.0.0.0",
                           "224.0.0.1",
                           "255.255.255.255",
                           "::ffff:169.254.169.254"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_false(check(NULL, never[i], AWF_ADDR_HOSTS));
    assert_true(check(NULL, "8.8.8.8", AWF_ADDR_HOSTS));
    /* unless a squid.conf dst ACL names it (the api-proxy shape) */
    struct awf_policy *p = from_squid("acl meta dst 169.254.169.254\nhttp_access allow meta\n");
    assert_true(check(p, "169.254.169.254", AWF_ADDR_HOSTS));
    assert_true(check(p, "169.254.169.254", AWF_ADDR_DNS));
    assert_false(check(p, "169.254.169.253", AWF_ADDR_HOSTS));
    awf_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squidconf_trailing_dot_dstdomain_matches_nothing),
        cmocka_unit_test(test_squidconf_request_url),
        cmocka_unit_test(test_squidconf_url_regex),
        cmocka_unit_test(test_squidconf_url_unescape_edges),
        cmocka_unit_test(test_squidconf_dst_matches_resolved_names),
        cmocka_unit_test(test_squidconf_directive_notices),
        cmocka_unit_test(test_policy_hosts_file_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
