/* awf_policy_set(): every key of the schema by its YAML path, the value parsers shared with
 * the YAML loader, and their error messages. */

#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

struct fixture {
    struct awf_policy_builder *b;
    struct awf_policy *p;
    char err[AWF_POLICY_ERRLEN];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->b = awf_policy_builder_create();
    *state = f;
    return f->b ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->p)
        awf_policy_unref(f->p);
    awf_policy_builder_destroy(f->b);
    free(f);
    return 0;
}

static int set(struct fixture *f, const char *key, const char *value)
{
    f->err[0] = '\0';
    return awf_policy_set(f->b, key, value, NULL, f->err, sizeof f->err);
}

#define SET_OK(f, k, v)                                                                            \
    do {                                                                                           \
        if (set((f), (k), (v)) != 0)                                                               \
            fail_msg("set %s=%s: %s", (k), (v), (f)->err);                                         \
    } while (0)
#define SET_BAD(f, k, v)                                                                           \
    do {                                                                                           \
        if (set((f), (k), (v)) != AWF_E_POLICY_INVALID)                                            \
            fail_msg("set %s=%s was accepted", (k), (v));                                          \
    } while (0)

static const struct awf_settings *built(struct fixture *f)
{
    if (f->p)
        awf_policy_unref(f->p);
    f->p = awf_policy_build(f->b, f->err, sizeof f->err);
    if (!f->p)
        fail_msg("build: %s", f->err);
    return awf_policy_settings(f->p);
}

static void test_settings_every_scalar_key(void **state)
{
    struct fixture *f = *state;
    SET_OK(f, "version", "1");
    SET_OK(f, "threads", "4");
    SET_OK(f, "awf_version", "2");
    SET_OK(f, "logs.strip_query", "false");
    SET_OK(f, "dns.hosts_file", "/tmp/hosts");
    SET_OK(f, "dns.min_ttl", "10s");
    SET_OK(f, "dns.max_ttl", "1h");
    SET_OK(f, "dns.negative_ttl", "1m");
    SET_OK(f, "timeouts.connect", "1s");
    SET_OK(f, "timeouts.read_idle", "2s");
    SET_OK(f, "timeouts.request_headers", "3s");
    SET_OK(f, "timeouts.client_idle", "4s");
    SET_OK(f, "timeouts.upstream_idle", "5s");
    SET_OK(f, "timeouts.lifetime", "6s");
    SET_OK(f, "timeouts.client_hello", "7s");
    SET_OK(f, "timeouts.shutdown_drain", "8s");
    SET_OK(f, "timeouts.dns", "9s");
    SET_OK(f, "limits.max_connections", "1000");
    SET_OK(f, "limits.max_tunnels", "500");
    SET_OK(f, "limits.header_bytes", "32768");
    SET_OK(f, "limits.header_count", "50");
    SET_OK(f, "tls.sni_in_connect", "false");
    SET_OK(f, "tls.deny_ech", "TRUE");
    SET_OK(f, "tls.alert_on_deny", "True");
    const struct awf_settings *s = built(f);
    assert_int_equal(s->threads, 4);
    assert_string_equal(s->awf_version, "2");
    assert_false(s->strip_query);
    assert_string_equal(s->dns.hosts_file, "/tmp/hosts");
    assert_int_equal(s->dns.min_ttl_s, 10);
    assert_int_equal(s->dns.max_ttl_s, 3600);
    assert_int_equal(s->dns.negative_ttl_s, 60);
    const uint64_t *t = &s->timeouts.connect_ms;
    for (int i = 0; i < 9; i++) /* the nine timeouts in struct order, 1s..9s */
        assert_int_equal(t[i], (uint64_t)(i + 1) * 1000);
    assert_int_equal(s->limits.max_connections, 1000);
    assert_int_equal(s->limits.max_tunnels, 500);
    assert_int_equal(s->limits.header_bytes, 32768);
    assert_int_equal(s->limits.header_count, 50);
    assert_false(s->tls.sni_in_connect);
    assert_true(s->tls.deny_ech);
    assert_true(s->tls.alert_on_deny);
    SET_OK(f, "logs.awf_version", "3");
    assert_string_equal(built(f)->awf_version, "3");
}

static void test_settings_lists(void **state)
{
    struct fixture *f = *state;
    SET_OK(f, "ports", "8080,9000-9100");
    SET_OK(f, "ports", "1");
    SET_OK(f, "listen", "127.0.0.1:0");
    SET_OK(f, "listen", "[::1]:3128");
    SET_OK(f, "dns.servers", "8.8.8.8");
    SET_OK(f, "dns.servers", "1.1.1.1:53, [::1]:5353,::1,[::2]");
    SET_OK(f, "addresses.allow", "172.30.0.0/24,127.0.0.1");
    SET_OK(f, "addresses.allow", "::ffff:10.0.0.0/104");
    SET_OK(f, "logs", "audit_jsonl:/tmp/a.jsonl");
    SET_OK(f, "logs", "/var/log/x:y.log");
    SET_OK(f, "logs.outputs", "logformat=%ts %>a:%>p, %rm:-");
    SET_OK(f, "allow", "a.test,b.test");
    SET_OK(f, "block", "c.test");
    const struct awf_settings *s = built(f);
    assert_int_equal(s->n_ports, 3);
    assert_int_equal(s->ports[0].lo, 8080);
    assert_int_equal(s->ports[0].hi, 8080);
    assert_int_equal(s->ports[1].lo, 9000);
    assert_int_equal(s->ports[1].hi, 9100);
    assert_int_equal(s->ports[2].lo, 1);
    assert_int_equal(s->n_listen, 2); /* the default was replaced */
    assert_int_equal(s->listen[0].addr.ss_family, AF_INET);
    assert_int_equal(((const struct sockaddr_in *)&s->listen[0].addr)->sin_port, 0);
    assert_int_equal(s->listen[1].addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&s->listen[1].addr)->sin6_port), 3128);
    assert_int_equal(s->dns.n_servers, 4); /* replaced, not appended */
    assert_string_equal(s->dns.servers[0], "1.1.1.1:53");
    assert_string_equal(s->dns.servers[3], "[::2]");
    assert_int_equal(s->n_allow_ranges, 3);
    assert_int_equal(s->allow_ranges[1].prefix, 32);
    assert_int_equal(s->allow_ranges[2].family, AF_INET); /* v4-mapped range folded */
    assert_int_equal(s->allow_ranges[2].prefix, 8);
    assert_int_equal(s->allow_ranges[2].addr[0], 10);
    assert_int_equal(s->n_logs, 3);
    assert_string_equal(s->logs[0].format, "audit_jsonl");
    assert_string_equal(s->logs[0].path, "/tmp/a.jsonl");
    assert_string_equal(s->logs[1].format, "firewall_detailed");
    assert_string_equal(s->logs[1].path, "/var/log/x:y.log");
    assert_string_equal(s->logs[2].format, "%ts %>a:%>p, %rm");
    assert_string_equal(s->logs[2].path, "-");
    const struct awf_policy_entry *e;
    assert_int_equal(awf_policy_entries(f->p, &e), 3);
    assert_string_equal(e[0].origin.source, "--set allow");
}

static void test_settings_durations(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *v;
        uint64_t ms;
    } ok[] = {{"0", 0},       {"0s", 0},      {"45", 45000},    {"500ms", 500},
              {"30s", 30000}, {"2m", 120000}, {"8h", 28800000}, {"8760h", 31536000000ull}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        SET_OK(f, "timeouts.connect", ok[i].v);
        assert_int_equal(built(f)->timeouts.connect_ms, ok[i].ms);
    }
    const char *bad[] = {"",    "s",   "1.5s", "-1s", "+1s",   "1d",
                         "1 s", "01s", "1S",   "1hh", "8761h", "99999999999999999999",
                         "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        SET_BAD(f, "timeouts.connect", bad[i]);
    assert_int_equal(set(f, "timeouts.connect", "1d"), AWF_E_POLICY_INVALID);
    assert_string_equal(f->err, "--set timeouts.connect: invalid duration \"1d\": want an integer "
                                "with ms, s, m or h (e.g. 500ms, 30s, 2m, 8h), at most a year");
    SET_OK(f, "dns.max_ttl", "2m");
    assert_int_equal(built(f)->dns.max_ttl_s, 120);
    SET_BAD(f, "dns.max_ttl", "1500ms");
    assert_string_equal(f->err, "--set dns.max_ttl: a DNS TTL is whole seconds");
}

/* Flags override the file: the first --listen replaces the file's listeners, later ones add. */
static void test_settings_listen_flag_replaces_file(void **state)
{
    struct fixture *f = *state;
    static const char y[] = "version: 1\nlisten: [\"127.0.0.1:3128\", \"[::1]:3128\"]\n";
    assert_int_equal(policy_load_yaml(f->b, "p.yml", y, sizeof y - 1, f->err, sizeof f->err), 0);
    SET_OK(f, "listen", "127.0.0.1:0");
    SET_OK(f, "listen", "127.0.0.2:0");
    const struct awf_settings *s = built(f);
    assert_int_equal(s->n_listen, 2);
    assert_string_equal(s->listen[0].text, "127.0.0.1:0");
    assert_string_equal(s->listen[1].text, "127.0.0.2:0");
}

static void test_settings_ports(void **state)
{
    struct fixture *f = *state;
    SET_OK(f, "ports", "65535,1-65535,7-7");
    const char *bad[] = {"0",     "65536", "08",  "5-4", "-5",      "5-",  "a",
                         "1-2-3", "1 -2",  "80a", "0-5", "1-65536", " 80", "80 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        SET_BAD(f, "ports", bad[i]);
    /* Values check prints must load back: no control bytes, no invalid UTF-8. */
    SET_BAD(f, "logs", "squid:/tmp/\xeb.log");
    SET_BAD(f, "dns.hosts_file", "/etc/ho\x01sts");
    assert_int_equal(awf_policy_set(f->b, "ports", "5-4", "--allow-ports", f->err, sizeof f->err),
                     AWF_E_POLICY_INVALID);
    assert_string_equal(f->err, "--allow-ports: invalid port range \"5-4\": start above end");
}

static void test_settings_addresses(void **state)
{
    struct fixture *f = *state;
    const char *listen_bad[] = {
        "::1:3128",   "[127.0.0.1]:1", "localhost:3128", "127.0.0.1", "127.0.0.1:65536",
        "127.0.0.1:", ":3128",         "[::1]",          "1.2.3:80"};
    for (size_t i = 0; i < sizeof listen_bad / sizeof listen_bad[0]; i++)
        SET_BAD(f, "listen", listen_bad[i]);
    const char *dns_bad[] = {
        "1.1.1.1:0", "dns.google", "[::1]:", "1.1.1.1:x", "[1.1.1.1]:53", "::1]:53"};
    for (size_t i = 0; i < sizeof dns_bad / sizeof dns_bad[0]; i++)
        SET_BAD(f, "dns.servers", dns_bad[i]);
    const char *cidr_bad[] = {"10.0.0.1/8",  "10.0.0.0/33", "10.0.0.0/", "x/8",
                              "10.0.0.0/08", "fd00::1/8",   "::/129",    "10/8"};
    for (size_t i = 0; i < sizeof cidr_bad / sizeof cidr_bad[0]; i++)
        SET_BAD(f, "addresses.allow", cidr_bad[i]);
    SET_BAD(f, "addresses.allow", "10.0.0.1/8");
    assert_string_equal(f->err, "--set addresses.allow: invalid address range \"10.0.0.1/8\": "
                                "address has bits set beyond the /8 prefix");
    SET_OK(f, "addresses.allow", "0.0.0.0/0,::/0,fd00::/8");
}

static void test_settings_numbers_and_booleans(void **state)
{
    struct fixture *f = *state;
    SET_OK(f, "limits.max_connections", "4294967295");
    SET_BAD(f, "limits.max_connections", "4294967296");
    SET_BAD(f, "limits.max_connections", "-1");
    SET_BAD(f, "limits.header_bytes", "0");
    SET_BAD(f, "limits.header_count", "0");
    SET_OK(f, "threads", "1024");
    SET_BAD(f, "threads", "1025");
    SET_BAD(f, "tls.deny_ech", "yes");
    SET_BAD(f, "tls.deny_ech", "1");
    SET_BAD(f, "version", "2");
    SET_BAD(f, "awf_version", "");
    SET_BAD(f, "awf_version", "a\"b");
    SET_BAD(f, "awf_version", "a b");
    SET_OK(f, "awf_version", "1.0-beta_x");
    assert_int_equal(built(f)->limits.max_connections, 4294967295u);
}

static void test_settings_logs(void **state)
{
    struct fixture *f = *state;
    SET_BAD(f, "logs", ":/tmp/x");
    assert_string_equal(f->err, "--set logs: empty log format");
    SET_BAD(f, "logs", "squid:");
    assert_string_equal(f->err, "--set logs: empty log path (use - for stdout)");
    SET_BAD(f, "logs", "");
    SET_BAD(f, "logs", "logformat=%ts");
    SET_BAD(f, "logs", "logformat=:x");
    /* nothing valid was given: the default output is still there */
    const struct awf_settings *s = built(f);
    assert_int_equal(s->n_logs, 1);
    assert_string_equal(s->logs[0].format, "firewall_detailed");
    SET_OK(f, "logs", "-");
    SET_OK(f, "logs", "squid:/tmp/squid.log");
    s = built(f);
    assert_int_equal(s->n_logs, 2);
    assert_string_equal(s->logs[0].path, "-");
    assert_string_equal(s->logs[1].format, "squid");
}

/* dns.forwarder: off by default; listen appends; the deny answer and the log by flag or YAML. */
static void test_settings_dns_forwarder(void **state)
{
    struct fixture *f = *state;
    const struct awf_settings *s = built(f);
    assert_int_equal(s->dns.forwarder.n_listen, 0);
    assert_int_equal(s->dns.forwarder.deny_rcode, 5);
    assert_string_equal(s->dns.forwarder.log, "stderr");
    assert_int_equal(s->dns.forwarder.idle_ms, 10000);

    SET_OK(f, "dns.forwarder.listen", "127.0.0.1:53, [::1]:5353");
    SET_OK(f, "dns.forwarder.listen", "127.0.0.2:0");
    SET_OK(f, "dns.forwarder.deny_rcode", "NXDOMAIN");
    SET_OK(f, "dns.forwarder.log", "/tmp/dns.log");
    SET_OK(f, "dns.forwarder.idle", "3s");
    s = built(f);
    assert_int_equal(s->dns.forwarder.n_listen, 3);
    assert_string_equal(s->dns.forwarder.listen[1].text, "[::1]:5353");
    assert_int_equal(s->dns.forwarder.listen[1].addr.ss_family, AF_INET6);
    assert_int_equal(
        ntohs(((const struct sockaddr_in *)&s->dns.forwarder.listen[0].addr)->sin_port), 53);
    assert_int_equal(s->dns.forwarder.deny_rcode, 3);
    assert_string_equal(s->dns.forwarder.log, "/tmp/dns.log");
    assert_int_equal(s->dns.forwarder.idle_ms, 3000);
    assert_int_equal(s->n_listen, 1); /* the proxy's own listen list is untouched */

    SET_BAD(f, "dns.forwarder.deny_rcode", "servfail");
    assert_string_equal(f->err,
                        "--set dns.forwarder.deny_rcode: invalid answer \"servfail\": want refused "
                        "or nxdomain");
    SET_BAD(f, "dns.forwarder.listen", "localhost:53");
    SET_BAD(f, "dns.forwarder.listen", "::1:53");
    SET_BAD(f, "dns.forwarder.log", "");
    SET_OK(f, "dns.forwarder.deny_rcode", "refused");
    assert_int_equal(built(f)->dns.forwarder.deny_rcode, 5);

    SET_BAD(f, "dns.forwarder.listen", "127.0.0.1:53");
    assert_string_equal(f->err, "--set dns.forwarder.listen: 127.0.0.1:53 given twice");

    static const char yaml[] = "version: 1\n"
                               "dns:\n"
                               "  forwarder:\n"
                               "    listen: \"[::1]:53\"\n"
                               "    deny_rcode: nxdomain\n"
                               "    log: \"-\"\n";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_int_equal(policy_load_yaml(b, "t.yml", yaml, sizeof yaml - 1, f->err, sizeof f->err), 0);
    struct awf_policy *p = awf_policy_build(b, f->err, sizeof f->err);
    assert_non_null(p);
    s = awf_policy_settings(p);
    assert_int_equal(s->dns.forwarder.n_listen, 1);
    assert_int_equal(s->dns.forwarder.deny_rcode, 3);
    assert_string_equal(s->dns.forwarder.log, "-");
    awf_policy_unref(p);
    static const char bad[] = "version: 1\ndns:\n  forwarder:\n    port: 53\n";
    assert_int_equal(policy_load_yaml(b, "t.yml", bad, sizeof bad - 1, f->err, sizeof f->err),
                     AWF_E_POLICY_INVALID);
    assert_string_equal(f->err, "t.yml:4:5: unknown key \"port\" in dns.forwarder");
    awf_policy_builder_destroy(b);
}

static void test_settings_unknown_keys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(set(f, "timeouts.conect", "1s"), AWF_E_USAGE);
    assert_string_equal(f->err, "--set timeouts.conect: unknown setting \"timeouts.conect\"");
    assert_int_equal(set(f, "dns", "x"), AWF_E_USAGE);
    assert_string_equal(f->err, "--set dns: \"dns\" is a section: set one of its keys");
    assert_int_equal(awf_policy_set(f->b, "nope", "1", "--nope", f->err, sizeof f->err),
                     AWF_E_USAGE);
    assert_string_equal(f->err, "--nope: unknown setting \"nope\"");
    assert_int_equal(set(f, "", "1"), AWF_E_USAGE);
}

/* tunnels.opaque_ports / opaque_hosts: parsed as ports and allow entries, asked by host and
 * port (awf_policy_opaque_allowed), copied into the built policy. */
static void test_settings_tunnels_opaque(void **state)
{
    struct fixture *f = *state;
    built(f);
    assert_false(awf_policy_opaque_allowed(f->p, "db.test", 7, 5432)); /* nothing by default */
    SET_OK(f, "tunnels.opaque_ports", "5432,9000-9100");
    SET_OK(f, "tunnels.opaque_hosts", "ssh.example.com, *.internal.test,api-*.x.test");
    SET_OK(f, "tunnels.opaque_hosts", "10.0.0.1");
    SET_BAD(f, "tunnels.opaque_ports", "0");
    SET_BAD(f, "tunnels.opaque_ports", " 22");
    SET_BAD(f, "tunnels.opaque_hosts", "*.*.com");
    const struct awf_settings *s = built(f);
    assert_int_equal(s->tunnels.n_opaque_ports, 2);
    assert_int_equal(s->tunnels.n_opaque_hosts, 4);
    assert_true(awf_policy_opaque_allowed(f->p, "any.test", 8, 5432));
    assert_true(awf_policy_opaque_allowed(f->p, "any.test", 8, 9050));
    assert_false(awf_policy_opaque_allowed(f->p, "any.test", 8, 443));
    assert_true(awf_policy_opaque_allowed(f->p, "SSH.example.com.", 16, 443));
    assert_true(awf_policy_opaque_allowed(f->p, "a.ssh.example.com", 17, 443));
    assert_false(awf_policy_opaque_allowed(f->p, "xssh.example.com", 16, 443));
    assert_true(awf_policy_opaque_allowed(f->p, "db.internal.test", 16, 443));
    assert_false(awf_policy_opaque_allowed(f->p, "internal.test", 13, 443));
    assert_true(awf_policy_opaque_allowed(f->p, "api-v1.x.test", 13, 443));
    assert_false(awf_policy_opaque_allowed(f->p, "api.x.test", 10, 443));
    assert_true(awf_policy_opaque_allowed(f->p, "10.0.0.1", 8, 443));
    assert_false(awf_policy_opaque_allowed(f->p, "10.0.0.2", 8, 443));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_settings_every_scalar_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_listen_flag_replaces_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_numbers_and_booleans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_dns_forwarder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_tunnels_opaque, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
