/* The YAML policy: schema, positions in errors, merging, the example file, the default policy,
 * and awf_policy_print() reading back to the same policy. */

#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static char *example_path(void)
{
    const char *src = getenv("AWF_SOURCE_DIR");
    static char path[1024];
    snprintf(path, sizeof path, "%s/policy/examples/policy.yml", src ? src : ".");
    return path;
}

static struct awf_policy *load_example(void)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    if (awf_policy_load_file(b, example_path(), err, sizeof err) != 0)
        fail_msg("%s", err);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    awf_policy_builder_destroy(b);
    return p;
}

static void test_yaml_example_file(void **state)
{
    (void)state;
    struct awf_policy *p = load_example();
    const struct awf_settings *s = awf_policy_settings(p);
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 8);
    assert_string_equal(e[0].text, "github.com");
    assert_int_equal(e[0].origin.line, 9);
    assert_int_equal(e[0].origin.col, 5);
    assert_string_equal(e[7].text, "gist.github.com");
    assert_true(e[7].block);
    EXPECT(p, "api.github.com", 443, TLS, true, "allowed", "github.com");
    EXPECT(p, "gist.github.com", 443, TLS, false, "blocked", "gist.github.com");
    EXPECT(p, "api.example.com", 80, HTTP, false, "wrong_scope", "https://api.example.com");
    EXPECT(p, "x.githubassets.com", 9050, TLS, true, "allowed", "*.githubassets.com");
    EXPECT(p, "172.30.0.1", 8443, TLS, true, "allowed_ip", "172.30.0.1");
    assert_int_equal(s->n_ports, 2);
    assert_int_equal(s->ports[1].lo, 9000);
    assert_int_equal(s->ports[1].hi, 9100);
    assert_int_equal(s->n_listen, 3);
    assert_string_equal(s->listen[1].text, "[::1]:3128");
    assert_int_equal(s->listen[1].addr.ss_family, AF_INET6);
    assert_int_equal(s->listen[2].intercept_port, 8443);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&s->listen[2].addr)->sin_port), 3129);
    assert_int_equal(s->dns.n_servers, 2);
    assert_string_equal(s->dns.servers[1], "[::1]:5353");
    assert_int_equal(s->dns.max_ttl_s, 3600);
    assert_int_equal(s->n_allow_ranges, 3);
    assert_int_equal(s->allow_ranges[0].prefix, 24);
    assert_int_equal(s->allow_ranges[2].family, AF_INET6);
    assert_int_equal(s->n_logs, 4);
    assert_string_equal(s->logs[2].format, "%ts.%03tu %>a %Ss/%03>Hs %ru");
    assert_string_equal(s->logs[2].path, "-");
    assert_string_equal(s->logs[3].format, "squid");
    assert_string_equal(s->logs[3].path, "/var/log/awf/squid.log");
    assert_int_equal(s->timeouts.read_idle_ms, 30 * 60000);
    assert_int_equal(s->timeouts.lifetime_ms, 8 * 3600000ull);
    assert_int_equal(s->limits.header_bytes, 65536);
    assert_true(s->tls.sni_in_connect);
    awf_policy_unref(p);
}

static void test_yaml_defaults(void **state)
{
    (void)state;
    struct awf_policy *p = from_yaml("version: 1\n");
    const struct awf_settings *s = awf_policy_settings(p);
    assert_int_equal(s->n_listen, 1);
    assert_string_equal(s->listen[0].text, "127.0.0.1:3128");
    assert_int_equal(s->n_logs, 1);
    assert_string_equal(s->logs[0].format, "firewall_detailed");
    assert_string_equal(s->logs[0].path, "-");
    assert_true(s->strip_query);
    assert_string_equal(s->awf_version, "1");
    assert_int_equal(s->threads, 0);
    assert_string_equal(s->dns.hosts_file, "/etc/hosts");
    assert_int_equal(s->dns.n_servers, 0);
    assert_int_equal(s->dns.min_ttl_s, 0);
    assert_int_equal(s->dns.max_ttl_s, 3600);
    assert_int_equal(s->dns.negative_ttl_s, 5);
    assert_true(s->tls.sni_in_connect);
    assert_false(s->tls.deny_ech);
    assert_false(s->tls.alert_on_deny);
    assert_int_equal(s->timeouts.connect_ms, 30000);
    assert_int_equal(s->timeouts.read_idle_ms, 1800000);
    assert_int_equal(s->timeouts.request_headers_ms, 120000);
    assert_int_equal(s->timeouts.client_idle_ms, 120000);
    assert_int_equal(s->timeouts.upstream_idle_ms, 120000);
    assert_int_equal(s->timeouts.lifetime_ms, 28800000);
    assert_int_equal(s->timeouts.client_hello_ms, 10000);
    assert_int_equal(s->timeouts.shutdown_drain_ms, 0);
    assert_int_equal(s->timeouts.dns_ms, 5000);
    assert_int_equal(s->limits.header_bytes, 65536);
    assert_int_equal(s->limits.header_count, 100);
    assert_int_equal(s->limits.max_connections, 0);
    assert_int_equal(s->limits.max_tunnels, 0);
    EXPECT(p, "github.com", 443, TLS, false, "empty_allow", NULL);
    awf_policy_unref(p);
}

static void test_yaml_embedded_default(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(awf_policy_load_default(b, err, sizeof err), 0);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    assert_non_null(p);
    awf_policy_builder_destroy(b);
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 4);
    const char *want[] = {"github.com", "githubusercontent.com", "githubassets.com", "ghcr.io"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(e[i].text, want[i]);
        assert_string_equal(e[i].origin.source, "<default>");
    }
    assert_int_equal(awf_policy_settings(p)->n_listen, 1);
    assert_string_equal(awf_policy_settings(p)->listen[0].text, "127.0.0.1:3128");
    EXPECT(p, "objects.githubusercontent.com", 443, TLS, true, "allowed", "githubusercontent.com");
    EXPECT(p, "example.com", 443, TLS, false, "not_allowed", NULL);
    awf_policy_unref(p);
}

static void test_yaml_errors_with_positions(void **state)
{
    (void)state;
    yaml_fails("version: 1\nalow: [a.com]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:1: unknown key \"alow\"");
    yaml_fails("version: 1\ndns:\n  server: [1.1.1.1]\n", AWF_E_POLICY_INVALID,
               "t.yml:3:3: unknown key \"server\" in dns");
    yaml_fails("version: 1\nawf_version: x\n", AWF_E_POLICY_INVALID,
               "t.yml:2:1: unknown key \"awf_version\"");
    yaml_fails("version: 1\nallow: [a.com]\nallow: [b.com]\n", AWF_E_POLICY_INVALID,
               "t.yml:3:1: duplicate key \"allow\"");
    yaml_fails("allow: [a.com]\n", AWF_E_POLICY_INVALID, "t.yml:1:1: missing \"version: 1\"");
    yaml_fails("version: 2\n", AWF_E_POLICY_INVALID,
               "t.yml:1:10: version: unsupported policy version (only 1)");
    yaml_fails("", AWF_E_POLICY_INVALID, "t.yml:1:1: empty policy: want at least \"version: 1\"");
    yaml_fails("# nothing\n", AWF_E_POLICY_INVALID,
               "t.yml:1:1: empty policy: want at least \"version: 1\"");
    yaml_fails("- a.com\n", AWF_E_POLICY_INVALID, "t.yml:1:1: expected a mapping of keys");
    yaml_fails("version: 1\ntimeouts: 5\n", AWF_E_POLICY_INVALID,
               "t.yml:2:11: timeouts: expected a mapping of keys");
    yaml_fails("version: 1\ntimeouts:\n  connect: 3x\n", AWF_E_POLICY_INVALID,
               "t.yml:3:12: timeouts.connect: invalid duration \"3x\": want an integer with ms, "
               "s, m or h (e.g. 500ms, 30s, 2m, 8h), at most a year");
    yaml_fails("version: 1\nthreads: [1]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:10: threads: expected a single value");
    yaml_fails("version: 1\nports: [80, 0]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:13: ports: invalid port \"0\": want 1..65535 or a range a-b, no leading "
               "zeros or spaces");
    yaml_fails("version: 1\nports: [\" 80\"]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:9: ports: invalid port \" 80\": want 1..65535 or a range a-b, no leading "
               "zeros or spaces");
    yaml_fails("version: 1\nlisten:\n  - {address: \"127.0.0.1:1\", port: 2}\n",
               AWF_E_POLICY_INVALID, "t.yml:3:30: unknown key \"port\" in listen");
    yaml_fails("version: 1\nlisten:\n  - {intercept_port: 2}\n", AWF_E_POLICY_INVALID,
               "t.yml:3:5: listen: a mapping needs \"address\"");
    yaml_fails("version: 1\nlogs:\n  outputs:\n    - {format: squid}\n", AWF_E_POLICY_INVALID,
               "t.yml:4:7: logs.outputs: a mapping needs \"path\"");
    yaml_fails("version: 1\nlogs:\n  outputs:\n    - {format: \"\", path: x}\n",
               AWF_E_POLICY_INVALID, "t.yml:4:7: logs.outputs: empty log format");
    /* allow/block take a list; a number is no domain (YAML's 1 would be 0.0.0.1) */
    yaml_fails("version: 1\nallow: github.com\n", AWF_E_POLICY_INVALID,
               "t.yml:2:8: allow: expected a list, e.g. allow: [github.com]");
    yaml_fails("version: 1\nblock: a.com, b.com\n", AWF_E_POLICY_INVALID,
               "t.yml:2:8: block: expected a list, e.g. block: [a.com, b.com]");
    yaml_fails("version: 1\nallow: [1]\n", AWF_E_POLICY_INVALID,
               "t.yml:2:9: allow: 1 is a number, not a domain or address");
    /* a misspelt format name, a custom format without a code */
    yaml_fails("version: 1\nlogs:\n  outputs:\n    - {format: squidd, path: x}\n",
               AWF_E_POLICY_INVALID,
               "t.yml:4:7: logs.outputs: unknown log format \"squidd\": want firewall_detailed, "
               "audit_jsonl, squid, or a Squid logformat string with % codes (logformat=...)");
    yaml_fails("version: 1\nlogs:\n  outputs: [\"audit_json:-\"]\n", AWF_E_POLICY_INVALID,
               "t.yml:3:13: logs.outputs: unknown log format \"audit_json\": want "
               "firewall_detailed, audit_jsonl, squid, or a Squid logformat string with % codes "
               "(logformat=...)");
    yaml_fails("version: 1\n---\nversion: 1\n", AWF_E_POLICY_SYNTAX,
               "t.yml:2:1: more than one YAML document in a policy");
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    const char *y = "version: 1\nallow: [a.com\n";
    assert_int_equal(policy_load_yaml(b, "t.yml", y, strlen(y), err, sizeof err),
                     AWF_E_POLICY_SYNTAX);
    assert_memory_equal(err, "t.yml:3:1: YAML syntax error: ", 30);
    /* an unquoted wildcard is a YAML alias: the message says to quote it */
    y = "version: 1\nallow:\n  - *.github.com\n";
    assert_int_equal(policy_load_yaml(b, "t.yml", y, strlen(y), err, sizeof err),
                     AWF_E_POLICY_SYNTAX);
    assert_memory_equal(err, "t.yml:3:", 8);
    assert_non_null(strstr(err, "quote entries that start with '*'"));
    y = "version: 1\n\tallow: []\n";
    assert_int_equal(policy_load_yaml(b, "t.yml", y, strlen(y), err, sizeof err),
                     AWF_E_POLICY_SYNTAX);
    awf_policy_builder_destroy(b);
}

static void test_yaml_forms(void **state)
{
    (void)state;
    /* null and scalar list values, listen/log mapping and string forms, quoted booleans */
    struct awf_policy *p =
        from_yaml("version: \"1\"\nallow: [a.test]\nblock:\nports: 8080\nlisten: \"[::]:0\"\n"
                  "logs:\n  strip_query: \"FALSE\"\n  outputs:\n"
                  "    - \"logformat=%ts %>a:%>p:/tmp/x.log\"\n    - /tmp/plain.log\n"
                  "    - {path: \"-\"}\n    - {format: \"logformat=%ts\", path: /tmp/y}\n"
                  "dns: {servers: 1.1.1.1, hosts_file: \"\", min_ttl: 30, max_ttl: 2m}\n"
                  "timeouts: {connect: 500ms, shutdown_drain: 2}\n");
    const struct awf_settings *s = awf_policy_settings(p);
    EXPECT(p, "a.test", 8080, TLS, true, "allowed", "a.test");
    assert_int_equal(s->n_listen, 1);
    assert_int_equal(s->listen[0].addr.ss_family, AF_INET6);
    assert_false(s->strip_query);
    assert_int_equal(s->n_logs, 4);
    assert_string_equal(s->logs[0].format, "%ts %>a:%>p");
    assert_string_equal(s->logs[0].path, "/tmp/x.log");
    assert_string_equal(s->logs[1].format, "firewall_detailed");
    assert_string_equal(s->logs[1].path, "/tmp/plain.log");
    assert_string_equal(s->logs[2].format, "firewall_detailed");
    assert_string_equal(s->logs[3].format, "%ts");
    assert_int_equal(s->dns.n_servers, 1);
    assert_string_equal(s->dns.hosts_file, "");
    assert_int_equal(s->dns.min_ttl_s, 30);
    assert_int_equal(s->dns.max_ttl_s, 120);
    assert_int_equal(s->timeouts.connect_ms, 500);
    assert_int_equal(s->timeouts.shutdown_drain_ms, 2000);
    awf_policy_unref(p);
}

static void test_yaml_merge_and_flags_override(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    const char *y1 = "version: 1\nallow: [a.test]\nlisten: [\"127.0.0.1:1\"]\n"
                     "dns: {servers: [1.1.1.1, 8.8.8.8]}\ntimeouts: {connect: 10s}\n";
    const char *y2 = "version: 1\nallow: [b.test]\nlisten: [\"127.0.0.1:2\"]\n"
                     "dns: {servers: [9.9.9.9]}\n";
    assert_int_equal(policy_load_yaml(b, "one.yml", y1, strlen(y1), err, sizeof err), 0);
    assert_int_equal(policy_load_yaml(b, "two.yml", y2, strlen(y2), err, sizeof err), 0);
    assert_int_equal(
        awf_policy_set(b, "timeouts.connect", "5s", "--connect-timeout", err, sizeof err), 0);
    assert_int_equal(awf_policy_add_list(b, false, "c.test", NULL, err, sizeof err), 0);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    assert_non_null(p);
    awf_policy_builder_destroy(b);
    const struct awf_settings *s = awf_policy_settings(p);
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(p, &e), 3);
    assert_string_equal(e[0].origin.source, "one.yml");
    assert_string_equal(e[1].origin.source, "two.yml");
    assert_int_equal(s->n_listen, 2); /* the first replaced the default, then appended */
    assert_int_equal(s->dns.n_servers, 1);
    assert_string_equal(s->dns.servers[0], "9.9.9.9");
    assert_int_equal(s->timeouts.connect_ms, 5000);
    awf_policy_unref(p);
}

static char *print_policy(const struct awf_policy *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    awf_policy_print(p, f);
    fclose(f);
    return buf;
}

static void test_yaml_print_round_trip(void **state)
{
    (void)state;
    struct awf_policy *p1 = load_example();
    char *y1 = print_policy(p1);
    struct awf_policy *p2 = from_yaml(y1);
    char *y2 = print_policy(p2);
    struct awf_policy *p3 = from_yaml(y2);
    char *y3 = print_policy(p3);
    assert_string_equal(y2, y3);
    /* same entries and settings as the file it came from */
    const struct awf_policy_entry *e1, *e2;
    size_t n = awf_policy_entries(p1, &e1);
    assert_int_equal(awf_policy_entries(p2, &e2), n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(e1[i].text, e2[i].text);
        assert_string_equal(e1[i].normalized, e2[i].normalized);
        assert_int_equal(e1[i].scope, e2[i].scope);
        assert_int_equal(e1[i].block, e2[i].block);
    }
    const struct awf_settings *s1 = awf_policy_settings(p1), *s2 = awf_policy_settings(p2);
    assert_memory_equal(&s1->timeouts, &s2->timeouts, sizeof s1->timeouts);
    assert_memory_equal(&s1->limits, &s2->limits, sizeof s1->limits);
    assert_memory_equal(&s1->tls, &s2->tls, sizeof s1->tls);
    assert_int_equal(s1->n_listen, s2->n_listen);
    for (size_t i = 0; i < s1->n_listen; i++) {
        assert_string_equal(s1->listen[i].text, s2->listen[i].text);
        assert_memory_equal(&s1->listen[i].addr, &s2->listen[i].addr, sizeof s1->listen[i].addr);
        assert_int_equal(s1->listen[i].intercept_port, s2->listen[i].intercept_port);
    }
    assert_int_equal(s1->n_logs, s2->n_logs);
    for (size_t i = 0; i < s1->n_logs; i++) {
        assert_string_equal(s1->logs[i].format, s2->logs[i].format);
        assert_string_equal(s1->logs[i].path, s2->logs[i].path);
    }
    assert_int_equal(s1->n_ports, s2->n_ports);
    assert_memory_equal(s1->ports, s2->ports, s1->n_ports * sizeof *s1->ports);
    assert_int_equal(s1->n_allow_ranges, s2->n_allow_ranges);
    assert_memory_equal(s1->allow_ranges, s2->allow_ranges,
                        s1->n_allow_ranges * sizeof *s1->allow_ranges);
    assert_int_equal(s1->dns.n_servers, s2->dns.n_servers);
    assert_string_equal(s1->dns.hosts_file, s2->dns.hosts_file);
    assert_int_equal(s1->dns.max_ttl_s, s2->dns.max_ttl_s);
    assert_string_equal(s1->awf_version, s2->awf_version);
    assert_int_equal(s1->strip_query, s2->strip_query);
    /* origins are kept as comments */
    assert_non_null(strstr(y1, "- \"github.com\"  # "));
    assert_non_null(strstr(y1, "policy.yml:9:5\n"));
    free(y1);
    free(y2);
    free(y3);
    awf_policy_unref(p1);
    awf_policy_unref(p2);
    awf_policy_unref(p3);

    /* an empty, all-default policy too; escapes in a format survive */
    p1 = from_yaml("version: 1\nlogs: {outputs: [{format: \"%a\\\"b\\\\c\\td\", path: \"-\"}]}\n");
    y1 = print_policy(p1);
    p2 = from_yaml(y1);
    y2 = print_policy(p2);
    assert_string_equal(y1, y2);
    assert_string_equal(awf_policy_settings(p2)->logs[0].format, "%a\"b\\c\td");
    free(y1);
    free(y2);
    awf_policy_unref(p1);
    awf_policy_unref(p2);
}

static void test_yaml_build_checks(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    const char *y = "version: 1\ndns: {min_ttl: 2h}\n";
    assert_int_equal(policy_load_yaml(b, "t.yml", y, strlen(y), err, sizeof err), 0);
    assert_null(awf_policy_build(b, err, sizeof err));
    assert_string_equal(err, "t.yml:2:16: dns.min_ttl (7200s) is above dns.max_ttl (3600s)");
    awf_policy_builder_destroy(b);
    b = awf_policy_builder_create();
    y = "version: 1\nlisten: [\"127.0.0.1:3128\", \"127.0.0.1:3128\"]\n";
    /* A second listener on one address is refused where it is given. */
    assert_int_equal(policy_load_yaml(b, "t.yml", y, strlen(y), err, sizeof err),
                     AWF_E_POLICY_INVALID);
    assert_string_equal(err, "t.yml:2:28: listen: 127.0.0.1:3128 given twice");
    awf_policy_builder_destroy(b);
}

static void test_yaml_file_missing(void **state)
{
    (void)state;
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_true(awf_policy_load_file(b, "/nonexistent/p.yml", err, sizeof err) < 0);
    assert_string_equal(err, "/nonexistent/p.yml: cannot open: No such file or directory");
    awf_policy_builder_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_example_file),
        cmocka_unit_test(test_yaml_defaults),
        cmocka_unit_test(test_yaml_embedded_default),
        cmocka_unit_test(test_yaml_errors_with_positions),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_yaml_forms),
        cmocka_unit_test(test_yaml_merge_and_flags_override),
        cmocka_unit_test(test_yaml_print_round_trip),
        cmocka_unit_test(test_yaml_build_checks),
        cmocka_unit_test(test_yaml_file_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
