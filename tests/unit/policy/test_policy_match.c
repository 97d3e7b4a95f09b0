/* awf_policy_decide(): every row of SPEC §3's table, the rules below it, and edge cases. */

#include "helpers.h"

static void test_match_plain_label_aligned(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("github.com", NULL);
    EXPECT(p, "github.com", 443, TLS, true, "allowed", "github.com");
    EXPECT(p, "api.github.com", 443, TLS, true, "allowed", "github.com");
    EXPECT(p, "a.b.github.com", 80, HTTP, true, "allowed", "github.com");
    EXPECT(p, "mygithub.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "github.com.evil.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "github.co", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "com", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
}

static void test_match_star_dot_is_subdomains_only(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("*.github.com", NULL);
    EXPECT(p, "api.github.com", 443, TLS, true, "allowed", "*.github.com");
    EXPECT(p, "sub.api.github.com", 443, TLS, true, "allowed", "*.github.com");
    EXPECT(p, "github.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "mygithub.com", 443, TLS, false, "not_allowed", NULL);
    /* '*' stands for [a-zA-Z0-9.-]: an underscore is not covered by it. */
    EXPECT(p, "a_b.github.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "x.a_b.github.com", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
    /* a plain entry matches such names: label-aligned suffix only */
    p = from_lists("github.com", NULL);
    EXPECT(p, "a_b.github.com", 443, TLS, true, "allowed", "github.com");
    awf_policy_unref(p);
}

static void test_match_wildcard_inside_label(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("api-*.example.com", NULL);
    EXPECT(p, "api-v1.example.com", 443, TLS, true, "allowed", "api-*.example.com");
    EXPECT(p, "api-.example.com", 443, TLS, true, "allowed", "api-*.example.com");
    EXPECT(p, "api-a.b.example.com", 443, TLS, true, "allowed", "api-*.example.com");
    EXPECT(p, "api.example.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "x.api-v1.example.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "api-v1.example.org", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "api-a_b.example.com", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
}

static void test_match_wildcard_other_positions(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("*foo.com, github.*, bar*, *.io, a*z", NULL);
    EXPECT(p, "foo.com", 443, TLS, true, "allowed", "*foo.com");
    EXPECT(p, "xfoo.com", 443, TLS, true, "allowed", "*foo.com");
    EXPECT(p, "a.bfoo.com", 443, TLS, true, "allowed", "*foo.com");
    EXPECT(p, "foo.co", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "github.com", 443, TLS, true, "allowed", "github.*");
    EXPECT(p, "github.a.b", 443, TLS, true, "allowed", "github.*");
    EXPECT(p, "api.github.com", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "bar", 443, TLS, true, "allowed", "bar*");
    EXPECT(p, "barn.org", 443, TLS, true, "allowed", "bar*");
    EXPECT(p, "x.io", 443, TLS, true, "allowed", "*.io");
    EXPECT(p, "io", 443, TLS, false, "not_allowed", NULL);
    EXPECT(p, "az", 443, TLS, true, "allowed", "a*z");
    EXPECT(p, "a.b.c.z", 443, TLS, true, "allowed", "a*z");
    EXPECT(p, "za", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
}

static void test_match_ip_entry(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("172.30.0.1, github.com, ::1, [2001:db8::5]", NULL);
    EXPECT(p, "172.30.0.1", 443, TLS, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "172.30.0.2", 443, TLS, false, "raw_ip", NULL);
    EXPECT(p, "140.82.112.3", 443, TLS, false, "raw_ip", NULL);
    /* inet_aton spellings of the same address */
    EXPECT(p, "172.30.1", 80, HTTP, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "0xac.30.0.1", 80, HTTP, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "2887647233", 80, HTTP, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "0254.036.0.01", 80, HTTP, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "172.30.0.1.", 80, HTTP, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "[::ffff:172.30.0.1]", 443, TLS, true, "allowed_ip", "172.30.0.1");
    EXPECT(p, "::1", 443, TLS, true, "allowed_ip", "::1");
    EXPECT(p, "[::1]", 443, TLS, true, "allowed_ip", "::1");
    EXPECT(p, "[0:0::1]", 443, TLS, true, "allowed_ip", "::1");
    EXPECT(p, "2001:DB8::5", 443, TLS, true, "allowed_ip", "[2001:db8::5]");
    EXPECT(p, "[::2]", 443, TLS, false, "raw_ip", NULL);
    EXPECT(p, "127.0.0.1", 443, TLS, false, "raw_ip", NULL);
    EXPECT(p, "2130706433", 443, TLS, false, "raw_ip", NULL);
    EXPECT(p, "0x7f.1", 443, TLS, false, "raw_ip", NULL);
    awf_policy_unref(p);
    /* an IP target is never matched by a name or a wildcard */
    p = from_lists("*.0.1, 0.0.1.example", NULL);
    EXPECT(p, "10.0.0.1", 443, TLS, false, "raw_ip", NULL);
    awf_policy_unref(p);
}

static void test_match_case_and_trailing_dot(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("GitHub.COM., *.Example.Org, HTTPS://Api-*.Test", NULL);
    EXPECT(p, "API.GITHUB.com", 443, TLS, true, "allowed", "GitHub.COM.");
    EXPECT(p, "github.com.", 443, TLS, true, "allowed", "GitHub.COM.");
    EXPECT(p, "WWW.example.ORG.", 443, TLS, true, "allowed", "*.Example.Org");
    EXPECT(p, "API-X.test", 443, TLS, true, "allowed", "HTTPS://Api-*.Test");
    EXPECT(p, "github.com..", 443, TLS, false, "invalid_host", NULL);
    awf_policy_unref(p);
}

static void test_match_block_wins(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("github.com", "gist.github.com, https://*.evil.com");
    EXPECT(p, "gist.github.com", 443, TLS, false, "blocked", "gist.github.com");
    EXPECT(p, "raw.gist.github.com", 80, HTTP, false, "blocked", "gist.github.com");
    EXPECT(p, "api.github.com", 443, TLS, true, "allowed", "github.com");
    /* prefixes on block entries are ignored: blocks plain HTTP too */
    EXPECT(p, "a.evil.com", 80, HTTP, false, "blocked", "https://*.evil.com");
    /* block reported before a bad port */
    EXPECT(p, "gist.github.com", 22, TLS, false, "blocked", "gist.github.com");
    awf_policy_unref(p);

    p = from_lists("github.com", "github.com");
    EXPECT(p, "github.com", 443, TLS, false, "blocked", "github.com");
    awf_policy_unref(p);
    p = from_lists("api.github.com", "*.github.com");
    EXPECT(p, "api.github.com", 443, TLS, false, "blocked", "*.github.com");
    awf_policy_unref(p);
    p = from_lists("a.example.com", "*example.com");
    EXPECT(p, "a.example.com", 443, TLS, false, "blocked", "*example.com");
    awf_policy_unref(p);
    p = from_lists("172.30.0.1", "172.30.0.1");
    EXPECT(p, "172.30.0.1", 443, TLS, false, "blocked", "172.30.0.1");
    awf_policy_unref(p);
}

static void test_match_scopes(void **state)
{
    (void)state;
    struct awf_policy *p =
        from_lists("http://plain.test, https://secure.test/, both.test, http://x.test, "
                   "https://x.test, https://172.30.0.5",
                   NULL);
    EXPECT(p, "plain.test", 80, HTTP, true, "allowed", "http://plain.test");
    EXPECT(p, "plain.test", 443, TLS, false, "wrong_scope", "http://plain.test");
    EXPECT(p, "a.secure.test", 443, TLS, true, "allowed", "https://secure.test/");
    EXPECT(p, "a.secure.test", 80, HTTP, false, "wrong_scope", "https://secure.test/");
    EXPECT(p, "both.test", 80, HTTP, true, "allowed", "both.test");
    EXPECT(p, "both.test", 443, TLS, true, "allowed", "both.test");
    EXPECT(p, "x.test", 80, HTTP, true, "allowed", "http://x.test");
    EXPECT(p, "x.test", 443, TLS, true, "allowed", "https://x.test");
    EXPECT(p, "172.30.0.5", 443, TLS, true, "allowed_ip", "https://172.30.0.5");
    EXPECT(p, "172.30.0.5", 80, HTTP, false, "wrong_scope", "https://172.30.0.5");
    awf_policy_unref(p);
    /* a right-scope entry further up wins over a wrong-scope one closer */
    p = from_lists("https://api.site.test, site.test", NULL);
    EXPECT(p, "api.site.test", 80, HTTP, true, "allowed", "site.test");
    awf_policy_unref(p);
}

static void test_match_most_specific_entry_reported(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("github.com, api.github.com, github.com", NULL);
    EXPECT(p, "x.api.github.com", 443, TLS, true, "allowed", "api.github.com");
    EXPECT(p, "x.github.com", 443, TLS, true, "allowed", "github.com");
    awf_policy_unref(p);
}

static void test_match_ports(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("example.com", NULL);
    EXPECT(p, "example.com", 80, HTTP, true, "allowed", "example.com");
    EXPECT(p, "example.com", 443, TLS, true, "allowed", "example.com");
    EXPECT(p, "example.com", 80, TLS, true, "allowed", "example.com"); /* CONNECT to 80 */
    EXPECT(p, "example.com", 8080, HTTP, false, "port", NULL);
    EXPECT(p, "example.com", 0, TLS, false, "port", NULL);
    EXPECT(p, "example.com", 65535, TLS, false, "port", NULL);
    EXPECT(p, "other.com", 22, TLS, false, "port", NULL); /* port before not_allowed */
    awf_policy_unref(p);
    p = from_yaml("version: 1\nallow: [example.com]\nports: [8080, \"9000-9100\", 65535]\n");
    EXPECT(p, "example.com", 8080, HTTP, true, "allowed", "example.com");
    EXPECT(p, "example.com", 8081, HTTP, false, "port", NULL);
    EXPECT(p, "example.com", 8999, TLS, false, "port", NULL);
    EXPECT(p, "example.com", 9000, TLS, true, "allowed", "example.com");
    EXPECT(p, "example.com", 9100, TLS, true, "allowed", "example.com");
    EXPECT(p, "example.com", 9101, TLS, false, "port", NULL);
    EXPECT(p, "example.com", 65535, TLS, true, "allowed", "example.com");
    EXPECT(p, "example.com", 443, TLS, true, "allowed", "example.com");
    awf_policy_unref(p);
}

static void test_match_empty_allow(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists(NULL, "evil.com");
    EXPECT(p, "github.com", 443, TLS, false, "empty_allow", NULL);
    EXPECT(p, "1.2.3.4", 443, TLS, false, "empty_allow", NULL);
    EXPECT(p, "evil.com", 443, TLS, false, "blocked", "evil.com");
    EXPECT(p, "github.com", 8080, TLS, false, "port", NULL);
    awf_policy_unref(p);
    p = from_lists("", NULL);
    EXPECT(p, "github.com", 443, TLS, false, "empty_allow", NULL);
    awf_policy_unref(p);
}

static void test_match_invalid_hosts(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("example.com", NULL);
    const char *bad[] = {"",
                         ".",
                         "..",
                         "a..example.com",
                         ".example.com",
                         "exa mple.com",
                         "a/b.example.com",
                         "a:b.example.com",
                         "[1.2.3.4]",
                         "[::1",
                         "::g",
                         "[]",
                         "a\tb",
                         "ex\"ample.com",
                         "b\xc3\xbc"
                         "cher.example.com",
                         "*.example.com",
                         "a*b.example.com",
                         "a%2e.example.com",
                         "[example.com]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(p, bad[i], 443, TLS, false, "invalid_host", NULL);
    /* IDN in its ASCII form is an ordinary name */
    EXPECT(p, "xn--bcher-kva.example.com", 443, TLS, true, "allowed", "example.com");
    awf_policy_unref(p);
    p = from_lists("xn--bcher-kva.example, *.xn--p1ai", NULL);
    EXPECT(p, "XN--BCHER-KVA.example", 443, TLS, true, "allowed", "xn--bcher-kva.example");
    EXPECT(p, "xn--80ak6aa92e.xn--p1ai", 443, TLS, true, "allowed", "*.xn--p1ai");
    EXPECT(p, "xn--bcher-kva.example.org", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
}

static void test_match_host_length_limits(void **state)
{
    (void)state;
    char label63[64], label64[65], name[300];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'b', 64);
    label64[64] = '\0';
    struct awf_policy *p = from_lists("example.com", NULL);
    snprintf(name, sizeof name, "%s.example.com", label63);
    EXPECT(p, name, 443, TLS, true, "allowed", "example.com");
    snprintf(name, sizeof name, "%s.example.com", label64);
    EXPECT(p, name, 443, TLS, false, "invalid_host", NULL);
    /* 253 characters: 3 labels of 63 and their dots (192) + 49 + ".example.com" (12) */
    snprintf(name, sizeof name, "%s.%s.%s.%.*s.example.com", label63, label63, label63, 49,
             label63);
    assert_int_equal(strlen(name), 253);
    EXPECT(p, name, 443, TLS, true, "allowed", "example.com");
    strcat(name, "."); /* the trailing dot does not count */
    EXPECT(p, name, 443, TLS, true, "allowed", "example.com");
    snprintf(name, sizeof name, "%s.%s.%s.%.*s.example.com", label63, label63, label63, 50,
             label63);
    assert_int_equal(strlen(name), 254);
    EXPECT(p, name, 443, TLS, false, "invalid_host", NULL);
    /* many one-char labels */
    char many[254];
    for (int i = 0; i < 120; i++) {
        many[2 * i] = 'a';
        many[2 * i + 1] = '.';
    }
    strcpy(many + 240, "example.com");
    EXPECT(p, many, 443, TLS, true, "allowed", "example.com");
    awf_policy_unref(p);
}

static void test_match_host_not_nul_terminated(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("github.com", NULL);
    struct awf_verdict v;
    awf_policy_decide(p, "github.comXYZ", 10, 443, TLS, &v);
    assert_true(v.allow);
    awf_policy_decide(p, "api.github.com.evil", 15, 443, TLS, &v); /* "api.github.com." */
    assert_true(v.allow);
    awf_policy_unref(p);
}

/* 10,000 entries of each kind: every lookup stays correct (speed is bench/'s job). */
static void test_match_ten_thousand_entries(void **state)
{
    (void)state;
    enum { N = 10000 };
    size_t cap = (size_t)N * 64;
    char *allow = malloc(cap), *block = malloc(cap);
    assert_non_null(allow);
    assert_non_null(block);
    size_t a = 0, b = 0;
    for (int i = 0; i < N; i++) {
        a += (size_t)snprintf(allow + a, cap - a, "site%d.test,*.wild%d.test,api-*.pat%d.test,", i,
                              i, i);
        b += (size_t)snprintf(block + b, cap - b, "bad%d.site%d.test,", i, i);
    }
    struct awf_policy *p = from_lists(allow, block);
    const struct awf_policy_entry *entries;
    assert_int_equal(awf_policy_entries(p, &entries), 4 * N);
    char host[128], want[64];
    for (int i = 0; i < N; i += 97) {
        snprintf(host, sizeof host, "www.site%d.test", i);
        snprintf(want, sizeof want, "site%d.test", i);
        EXPECT(p, host, 443, TLS, true, "allowed", want);
        snprintf(host, sizeof host, "a.b.wild%d.test", i);
        snprintf(want, sizeof want, "*.wild%d.test", i);
        EXPECT(p, host, 443, TLS, true, "allowed", want);
        snprintf(host, sizeof host, "wild%d.test", i);
        EXPECT(p, host, 443, TLS, false, "not_allowed", NULL);
        snprintf(host, sizeof host, "api-v%d.pat%d.test", i, i);
        snprintf(want, sizeof want, "api-*.pat%d.test", i);
        EXPECT(p, host, 443, TLS, true, "allowed", want);
        snprintf(host, sizeof host, "x.bad%d.site%d.test", i, i);
        snprintf(want, sizeof want, "bad%d.site%d.test", i, i);
        EXPECT(p, host, 443, TLS, false, "blocked", want);
        snprintf(host, sizeof host, "site%d.test.evil", i);
        EXPECT(p, host, 443, TLS, false, "not_allowed", NULL);
    }
    EXPECT(p, "site10000.test", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
    free(allow);
    free(block);
}

static void test_match_reason_names(void **state)
{
    (void)state;
    const char *want[] = {"allowed",     "allowed_ip", "blocked", "not_allowed", "wrong_scope",
                          "empty_allow", "raw_ip",     "port",    "invalid_host"};
    for (int r = AWF_REASON_ALLOWED; r <= AWF_REASON_INVALID_HOST; r++)
        assert_string_equal(awf_policy_reason_name((enum awf_reason)r), want[r]);
}

static void test_match_refcount(void **state)
{
    (void)state;
    struct awf_policy *p = from_lists("github.com", NULL);
    assert_ptr_equal(awf_policy_ref(p), p);
    awf_policy_unref(p);
    EXPECT(p, "github.com", 443, TLS, true, "allowed", "github.com");
    awf_policy_unref(p);
    awf_policy_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_plain_label_aligned),
        cmocka_unit_test(test_match_star_dot_is_subdomains_only),
        cmocka_unit_test(test_match_wildcard_inside_label),
        cmocka_unit_test(test_match_wildcard_other_positions),
        cmocka_unit_test(test_match_ip_entry),
        cmocka_unit_test(test_match_case_and_trailing_dot),
        cmocka_unit_test(test_match_block_wins),
        cmocka_unit_test(test_match_scopes),
        cmocka_unit_test(test_match_most_specific_entry_reported),
        cmocka_unit_test(test_match_ports),
        cmocka_unit_test(test_match_empty_allow),
        cmocka_unit_test(test_match_invalid_hosts),
        cmocka_unit_test(test_match_host_length_limits),
        cmocka_unit_test(test_match_host_not_nul_terminated),
        cmocka_unit_test(test_match_ten_thousand_entries),
        cmocka_unit_test(test_match_reason_names),
        cmocka_unit_test(test_match_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
