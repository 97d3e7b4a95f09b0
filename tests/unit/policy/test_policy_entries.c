/* Entry validation and normalization (SPEC §3): what is accepted, how it is normalized, and
 * every rejected form with its message. */

#include "helpers.h"

/* Adds list with --allow-domains and expects exactly the message want. */
static void list_fails(const char *list, const char *want)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    int rc = awf_policy_add_list(b, false, list, "--allow-domains", err, sizeof err);
    if (rc != AWF_E_POLICY_INVALID || strcmp(err, want) != 0)
        fail_msg("list \"%s\"\n  got  %d %s\n  want %s", list, rc, err, want);
    awf_policy_builder_destroy(b);
}

static void test_entries_rejected_forms(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *reason;
    } cases[] = {
        {"a b", "whitespace inside"},
        {"a\tb.com", "whitespace inside"},
        {"a\nb.com", "line break inside"},
        {"a\rb.com", "line break inside"},
        {"a\"b.com", "forbidden character '\"'"},
        {"a'b.com", "forbidden character '''"},
        {"a`b.com", "forbidden character '`'"},
        {"a;b.com", "forbidden character ';'"},
        {"a#b.com", "forbidden character '#'"},
        {"a\\b.com", "forbidden character '\\'"},
        {"a..com", "empty label (\"..\")"},
        {"..", "empty label (\"..\")"},
        {"...com", "empty label (\"..\")"},
        {".", "a lone dot"},
        {"*", "only wildcards and dots (would match everything)"},
        {"*.*", "only wildcards and dots (would match everything)"},
        {"*.", "only wildcards and dots (would match everything)"},
        {".*", "only wildcards and dots (would match everything)"},
        {"**", "only wildcards and dots (would match everything)"},
        {"*.*.*", "only wildcards and dots (would match everything)"},
        {"https://*", "only wildcards and dots (would match everything)"},
        {"*.*.com", "more than one wildcard"},
        {"a*b*.com", "more than one wildcard"},
        {"api-**.example.com", "more than one wildcard"},
        {"github.com:443", "a port in a domain entry"},
        {"https://github.com:8443/", "a port in a domain entry"},
        {"1.2.3.4:80", "a port in a domain entry"},
        {"[::1]:443", "a port in an IPv6 entry"},
        {"github.com/path", "a path in a domain entry"},
        {"https://github.com/org/repo", "a path in a domain entry"},
        {"github.com//", "a path in a domain entry"},
        {"ftp://github.com", "unsupported scheme (only http:// and https://)"},
        {"https://", "empty entry"},
        {"http:///", "empty entry"},
        {"gith\xc3\xbc"
         "b.com",
         "non-ASCII character (write internationalized names in their "
         "xn-- form)"},
        {"a@b.com", "invalid character '@'"},
        {"a?b=1", "invalid character '?'"},
        {"[github.com]", "brackets around something that is not an IPv6 address"},
        {"1:2:3", "invalid IPv6 address"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[128], want[AWF_POLICY_ERRLEN];
        /* the message quotes the entry with control and non-ASCII bytes escaped */
        size_t o = 0;
        for (const char *s = cases[i].entry; *s; s++) {
            if ((unsigned char)*s >= 0x7f)
                o += (size_t)snprintf(q + o, sizeof q - o, "\\x%02x", (unsigned char)*s);
            else if (*s == '\n')
                o += (size_t)snprintf(q + o, sizeof q - o, "\\x0a");
            else if (*s == '\r')
                o += (size_t)snprintf(q + o, sizeof q - o, "\\x0d");
            else if (*s == '\t')
                o += (size_t)snprintf(q + o, sizeof q - o, "\\x09");
            else if (*s == '"' || *s == '\\')
                o += (size_t)snprintf(q + o, sizeof q - o, "\\%c", *s);
            else
                q[o++] = *s;
        }
        q[o] = '\0';
        snprintf(want, sizeof want, "--allow-domains: invalid entry \"%s\": %s", q,
                 cases[i].reason);
        list_fails(cases[i].entry, want);
    }
}

static void test_entries_rejected_in_yaml(void **state)
{
    (void)state;
    yaml_fails("version: 1\nallow: [\"\"]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:9: invalid entry \"\": empty entry");
    yaml_fails("version: 1\nallow: [\"   \"]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:9: invalid entry \"\": empty entry");
    yaml_fails("version: 1\nallow:\n  - ok.com\n  - \"a\\0b.com\"\n", AWF_E_POLICY_INVALID,
               "t.yml:4:5: invalid entry \"a\\x00b.com\": NUL byte inside");
    yaml_fails("version: 1\nallow:\n  - \"a\\nb.com\"\n", AWF_E_POLICY_INVALID,
               "t.yml:3:5: invalid entry \"a\\x0ab.com\": line break inside");
    yaml_fails("version: 1\nblock:\n  - github.com\n  - \"*.*.com\"\n", AWF_E_POLICY_INVALID,
               "t.yml:4:5: invalid entry \"*.*.com\": more than one wildcard");
    yaml_fails("version: 1\nallow: [[a.com]]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:9: allow: each entry must be a single name or address");
}

static void test_entries_length_limits(void **state)
{
    (void)state;
    char label[70], name[300], want[AWF_POLICY_ERRLEN];
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(name, sizeof name, "%s.com", label);
    snprintf(want, sizeof want,
             "--allow-domains: invalid entry \"%s\": label longer than 63 "
             "characters",
             name);
    list_fails(name, want);
    snprintf(name, sizeof name, "%.63s.%.63s.%.63s.%.63s.com", label, label, label, label);
    struct awf_policy_builder *b = awf_policy_builder_create();
    char err[AWF_POLICY_ERRLEN];
    assert_int_equal(awf_policy_add_list(b, false, name, NULL, err, sizeof err),
                     AWF_E_POLICY_INVALID);
    assert_non_null(strstr(err, "name longer than 253 characters"));
    /* 63-char labels and 253 chars are fine */
    snprintf(name, sizeof name, "%.63s.%.63s.%.63s.%.57s.com", label, label, label, label);
    assert_int_equal(strlen(name), 253);
    assert_int_equal(awf_policy_add_list(b, false, name, NULL, err, sizeof err), 0);
    awf_policy_builder_destroy(b);
}

static void test_entries_normalized(void **state)
{
    (void)state;
    static const struct {
        const char *text, *norm;
        enum awf_scope scope;
    } want[] = {
        {"GitHub.COM", "github.com", AWF_SCOPE_BOTH},
        {"github.com.", "github.com", AWF_SCOPE_BOTH},
        {"https://API.github.com/", "api.github.com", AWF_SCOPE_TLS},
        {"HTTP://plain.test", "plain.test", AWF_SCOPE_HTTP},
        {".squid-style.org", "squid-style.org", AWF_SCOPE_BOTH},
        {"*.Example.com", "*.example.com", AWF_SCOPE_BOTH},
        {"api-*.example.com.", "api-*.example.com", AWF_SCOPE_BOTH},
        {"0x7f.1", "127.0.0.1", AWF_SCOPE_BOTH},
        {"[::FFFF:10.0.0.1]", "10.0.0.1", AWF_SCOPE_BOTH},
        {"https://[2001:DB8::1]/", "2001:db8::1", AWF_SCOPE_TLS},
        {"xn--bcher-kva.example", "xn--bcher-kva.example", AWF_SCOPE_BOTH},
        {"_dmarc.example.com", "_dmarc.example.com", AWF_SCOPE_BOTH},
    };
    char list[1024] = "";
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        strcat(list, "  ");
        strcat(list, want[i].text);
        strcat(list, " ,");
    }
    struct awf_policy *p = from_lists(list, "https://blocked.test");
    const struct awf_policy_entry *e;
    size_t n = awf_policy_entries(p, &e);
    assert_int_equal(n, sizeof want / sizeof want[0] + 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(e[i].text, want[i].text);
        assert_string_equal(e[i].normalized, want[i].norm);
        assert_int_equal(e[i].scope, want[i].scope);
        assert_false(e[i].block);
        assert_string_equal(e[i].origin.source, "--allow-domains");
        assert_int_equal(e[i].origin.line, 0);
    }
    /* block entries: the prefix is ignored, the scope is BOTH */
    assert_true(e[n - 1].block);
    assert_string_equal(e[n - 1].normalized, "blocked.test");
    assert_int_equal(e[n - 1].scope, AWF_SCOPE_BOTH);
    assert_string_equal(e[n - 1].origin.source, "--block-domains");
    awf_policy_unref(p);
}

static void test_entries_allow_then_block_in_source_order(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_add_list(b, true, "b1.test", NULL, err, sizeof err), 0);
    assert_int_equal(awf_policy_add_list(b, false, "a1.test,a2.test", NULL, err, sizeof err), 0);
    assert_int_equal(awf_policy_add_list(b, true, "b2.test", NULL, err, sizeof err), 0);
    assert_int_equal(awf_policy_add_list(b, false, "a3.test", NULL, err, sizeof err), 0);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    assert_non_null(p);
    awf_policy_builder_destroy(b); /* the policy owns its strings */
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 5);
    const char *order[] = {"a1.test", "a2.test", "a3.test", "b1.test", "b2.test"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(e[i].text, order[i]);
    assert_string_equal(e[3].origin.source, "--block-domains");
    awf_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_rejected_forms),
        cmocka_unit_test(test_entries_rejected_in_yaml),
        cmocka_unit_test(test_entries_length_limits),
        cmocka_unit_test(test_entries_normalized),
        cmocka_unit_test(test_entries_allow_then_block_in_source_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
