/* ssl-bump settings and allow_urls patterns: syntax, normalization, matching, refusals; the
 * splice list. */

#include "helpers.h"

static const char *base = "version: 1\nallow: [github.com]\nssl_bump: {enabled: true, ca_cert: "
                          "/c.pem, ca_key: /k.pem}\n";

static struct awf_policy *with_urls(const char *urls)
{
    char y[1024];
    snprintf(y, sizeof(y), "%sallow_urls: [%s]\n", base, urls);
    return from_yaml(y);
}

#define ALLOWED(p, url) awf_policy_url_allowed((p), (url), strlen(url), NULL)

static void test_policy_urls_anchored_star(void **state)
{
    (void)state;
    struct awf_policy *p = with_urls("\"https://github.com/myorg/*\"");
    assert_true(ALLOWED(p, "https://github.com/myorg/"));
    assert_true(ALLOWED(p, "https://github.com/myorg/repo/pulls?q=1"));
    assert_false(ALLOWED(p, "https://github.com/myorg")); /* no trailing slash: another path */
    assert_false(ALLOWED(p, "https://github.com/myorg-evil/x"));
    assert_false(ALLOWED(p, "https://github.com/other/myorg/"));
    assert_false(ALLOWED(p, "https://api.github.com/myorg/"));
    assert_false(ALLOWED(p, "https://github.com:8443/myorg/"));
    assert_false(ALLOWED(p, "http://github.com/myorg/"));
    /* Path case matters; host case does not. */
    assert_false(ALLOWED(p, "https://github.com/MyOrg/"));
    assert_true(ALLOWED(p, "https://GitHub.com/myorg/x"));
    /* Dot segments and encoded separators never match. */
    assert_false(ALLOWED(p, "https://github.com/myorg/../other"));
    assert_false(ALLOWED(p, "https://github.com/myorg/%2e%2E/other"));
    assert_false(ALLOWED(p, "https://github.com/myorg/..%2fother"));
    assert_false(ALLOWED(p, "https://github.com/myorg/.."));
    assert_false(ALLOWED(p, "https://github.com/myorg/a\\..\\b"));
    assert_true(ALLOWED(p, "https://github.com/myorg/a..b/.x/?q=/../"));
    awf_policy_unref(p);
}

static void test_policy_urls_literal_dot_and_question(void **state)
{
    (void)state;
    struct awf_policy *p = with_urls("\"https://github.com/a.b?c\", \"https://*.github.com/x/*\"");
    assert_true(ALLOWED(p, "https://github.com/a.b?c"));
    assert_false(ALLOWED(p, "https://github.com/aXb?c"));
    assert_false(ALLOWED(p, "https://github.com/a.bXc"));
    assert_false(ALLOWED(p, "https://github.com/a.b?cd"));
    /* A star in the host stays in the host. */
    assert_true(ALLOWED(p, "https://api.github.com/x/y"));
    assert_false(ALLOWED(p, "https://evil.test/.github.com/x/y"));
    assert_false(ALLOWED(p, "https://github.com/x/y"));
    awf_policy_unref(p);
}

static void test_policy_urls_normalized(void **state)
{
    (void)state;
    struct awf_policy *p = with_urls("\"HTTPS://GitHub.COM:443\", \"https://h.test:8443/p\"");
    const struct awf_settings *s = awf_policy_settings(p);
    assert_int_equal(s->ssl_bump.n_allow_urls, 2);
    assert_string_equal(s->ssl_bump.allow_urls[0], "https://github.com/");
    assert_string_equal(s->ssl_bump.allow_urls[1], "https://h.test:8443/p");
    assert_true(ALLOWED(p, "https://github.com/"));
    assert_false(ALLOWED(p, "https://github.com/x"));
    assert_true(ALLOWED(p, "https://h.test:8443/p"));
    awf_policy_unref(p);
    /* No allow_urls: every URL of an allowed host. */
    p = from_yaml(base);
    assert_true(ALLOWED(p, "https://github.com/anything"));
    assert_int_equal(awf_policy_settings(p)->ssl_bump.cert_cache_bytes, 16u << 20);
    awf_policy_unref(p);
}

static void test_policy_urls_refused(void **state)
{
    (void)state;
    char y[512];
    snprintf(y, sizeof(y), "%sallow_urls: [\"github.com/x\"]\n", base);
    yaml_fails(y, AWF_E_POLICY_INVALID,
               "t.yml:4:14: allow_urls: a URL pattern starts with https:// (or http://)");
    snprintf(y, sizeof(y), "%sallow_urls: [\"https://a b/\"]\n", base);
    yaml_fails(y, AWF_E_POLICY_INVALID,
               "t.yml:4:14: allow_urls: invalid character in a URL pattern at offset 9");
    snprintf(y, sizeof(y), "%sallow_urls: [\"https:///x\"]\n", base);
    yaml_fails(y, AWF_E_POLICY_INVALID,
               "t.yml:4:14: allow_urls: a URL pattern needs a host (and no user@)");
    /* allow_urls without ssl-bump, ssl-bump without a CA: refused at build. */
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(
        awf_policy_set(b, "allow_urls", "https://github.com/x/*", "--allow-urls", err, sizeof(err)),
        0);
    assert_null(awf_policy_build(b, err, sizeof(err)));
    assert_non_null(strstr(err, "allow_urls: needs ssl-bump"));
    assert_int_equal(awf_policy_set(b, "ssl_bump.enabled", "true", "--ssl-bump", err, sizeof(err)),
                     0);
    assert_null(awf_policy_build(b, err, sizeof(err)));
    assert_non_null(strstr(err, "ssl_bump: needs a CA"));
    assert_int_equal(awf_policy_set(b, "ssl_bump.cert_cache", "3MB", NULL, err, sizeof(err)), 0);
    assert_int_equal(awf_policy_set(b, "ssl_bump.cert_cache", "12XB", NULL, err, sizeof(err)),
                     AWF_E_POLICY_INVALID);
    awf_policy_builder_destroy(b);
}

static enum awf_bump_action action(const struct awf_policy *p, const char *host)
{
    struct awf_policy_req rq = {
        .host = host, .host_len = strlen(host), .port = 443, .traffic = AWF_TRAFFIC_TLS};
    return awf_policy_bump_action(p, &rq);
}

static void test_policy_urls_splice_list(void **state)
{
    (void)state;
    char y[512];
    snprintf(y, sizeof(y), "%s", base);
    char *at = strstr(y, "ca_key: /k.pem}");
    snprintf(at, sizeof(y) - (size_t)(at - y),
             "ca_key: /k.pem, splice: [pinned.test, \"*.cli.test\", \"10.0.0.1\"]}\n");
    struct awf_policy *p = from_yaml(y);
    assert_int_equal(awf_policy_settings(p)->ssl_bump.n_splice, 3);
    assert_int_equal(action(p, "pinned.test"), AWF_BUMP_SPLICE);
    assert_int_equal(action(p, "api.pinned.test"), AWF_BUMP_SPLICE); /* as allow entries */
    assert_int_equal(action(p, "PINNED.test."), AWF_BUMP_SPLICE);
    assert_int_equal(action(p, "x.cli.test"), AWF_BUMP_SPLICE);
    assert_int_equal(action(p, "cli.test"), AWF_BUMP_BUMP); /* "*." means below it only */
    assert_int_equal(action(p, "10.0.0.1"), AWF_BUMP_SPLICE);
    assert_int_equal(action(p, "github.com"), AWF_BUMP_BUMP);
    assert_int_equal(action(p, "notpinned.test"), AWF_BUMP_BUMP);
    awf_policy_unref(p);
    /* A bad entry names where; the list without ssl-bump is refused at build. */
    struct awf_policy_builder *b = awf_policy_builder_create();
    char err[AWF_POLICY_ERRLEN];
    assert_int_not_equal(
        awf_policy_set(b, "ssl_bump.splice", "a b", "--ssl-bump-splice", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--ssl-bump-splice"));
    assert_int_equal(
        awf_policy_set(b, "ssl_bump.splice", "x.test", "--ssl-bump-splice", err, sizeof(err)), 0);
    assert_null(awf_policy_build(b, err, sizeof(err)));
    assert_non_null(strstr(err, "ssl_bump.splice: needs ssl-bump"));
    awf_policy_builder_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_urls_anchored_star),
        cmocka_unit_test(test_policy_urls_literal_dot_and_question),
        cmocka_unit_test(test_policy_urls_normalized),
        cmocka_unit_test(test_policy_urls_refused),
        cmocka_unit_test(test_policy_urls_splice_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
