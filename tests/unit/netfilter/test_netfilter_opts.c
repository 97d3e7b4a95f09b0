/* Option parsing and checking: every bad input is an error naming the value, and nothing is
 * half-set in a way that a later apply could use. */
#include <string.h>

#include "helpers.h"
#include "common/error.h"

static void test_netfilter_opts_parse_addr(void **state)
{
    (void)state;
    struct awf_nf_addr a;
    assert_int_equal(netfilter_parse_addr("172.30.0.10", &a), 0);
    assert_int_equal(a.family, AWF_NF_V4);
    assert_int_equal(netfilter_parse_addr("fd00::10", &a), 0);
    assert_int_equal(a.family, AWF_NF_V6);
    const char *bad[] = {"",         "172.30.0", "172.30.0.256", "172.30.0.10/24", "example.com",
                         " 1.2.3.4", "1.2.3.4 ", "fd00::10::1",  "[fd00::10]",     "::g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(netfilter_parse_addr(bad[i], &a), AWF_E_USAGE);
}

static void test_netfilter_opts_parse_port(void **state)
{
    (void)state;
    uint16_t p;
    assert_int_equal(netfilter_parse_port("1", &p), 0);
    assert_int_equal(p, 1);
    assert_int_equal(netfilter_parse_port("65535", &p), 0);
    assert_int_equal(p, 65535);
    const char *bad[] = {"", "0", "65536", "99999", "123456", "-1", "+80", "8o", "80 ", "0x50"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(netfilter_parse_port(bad[i], &p), AWF_E_USAGE);
}

static void test_netfilter_opts_parse_endpoint(void **state)
{
    (void)state;
    struct awf_nf_endpoint e;
    assert_int_equal(netfilter_parse_endpoint("172.30.0.10:3128", &e), 0);
    assert_int_equal(e.addr.family, AWF_NF_V4);
    assert_int_equal(e.port, 3128);
    assert_int_equal(netfilter_parse_endpoint("[fd00::10]:53", &e), 0);
    assert_int_equal(e.addr.family, AWF_NF_V6);
    assert_int_equal(e.port, 53);
    const char *bad[] = {"172.30.0.10",   "172.30.0.10:",   ":3128",        "172.30.0.10:0",
                         "1.2.3.4:65536", "fd00::10:3128",  "[fd00::10]",   "[fd00::10]3128",
                         "[1.2.3.4]:80",  "host.test:3128", "[fd00::10:80", "1.2.3.4:80:81"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(netfilter_parse_endpoint(bad[i], &e), AWF_E_USAGE);
}

/* One bad value per option: rejected, with the offending text in the message. */
static void test_netfilter_opts_set_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value, *in_msg;
    } bad[] = {
        {"side", "both", "\"both\""},
        {"ipv6", "yes", "\"yes\""},
        {"bridge", "", "\"\""},
        {"bridge", "a-very-long-bridge-name", "\"a-very-long-bridge-name\""},
        {"bridge", "br;rm", "\"br;rm\""},
        {"proxy", "172.30.0.10", "\"172.30.0.10\""},
        {"proxy", "172.30.0.10:70000", "\"172.30.0.10:70000\""},
        {"dns-forwarder", "300.1.1.1:53", "\"300.1.1.1:53\""},
        {"agent-ip", "172.30.0.20,bogus", "\"bogus\""},
        {"dns", "8.8.8.8,,8.8.4.4", "empty item"},
        {"sidecar", "10.0.0.0/8", "\"10.0.0.0/8\""},
        {"proxy-ports", "8080,0", "\"0\""},
        {"proxy-ports", "65536", "\"65536\""},
        {"redirect", "8443", "\"8443\""},
        {"redirect", "8443=99999", "\"8443=99999\""},
        {"redirect", "=3129", "\"=3129\""},
        {"dangerous-ports", "22,ssh", "\"ssh\""},
        {"host-gateway", "host.docker.internal", "\"host.docker.internal\""},
        {"host-ports", "3000,0", "\"0\""},
        {"host-ports", "8010-8000", "\"8010-8000\""},
        {"host-ports", "8000-", "\"8000-\""},
        {"host-ports", "-8000", "\"-8000\""},
        {"host-ports", "8000:8010", "\"8000:8010\""},
        {"host-ports", "1-2-3", "\"1-2-3\""},
        {"host-ports", "123456-123457", "\"123456-123457\""},
        {"no-such-option", "x", "unknown option"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct awf_nf_opts o;
        char err[256] = "";
        awf_netfilter_opts_init(&o);
        assert_int_equal(awf_netfilter_opts_set(&o, bad[i].name, bad[i].value, err, sizeof(err)),
                         AWF_E_USAGE);
        if (!strstr(err, bad[i].in_msg))
            fail_msg("--%s %s: message \"%s\" lacks %s", bad[i].name, bad[i].value, err,
                     bad[i].in_msg);
    }
}

static int set(struct awf_nf_opts *o, const char *name, const char *value)
{
    char err[256];
    return awf_netfilter_opts_set(o, name, value, err, sizeof(err));
}

static void test_netfilter_opts_set_values(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    awf_netfilter_opts_init(&o);
    assert_int_equal(o.n_dangerous, 15);
    assert_int_equal(o.n_redirects, 2);
    assert_int_equal(set(&o, "proxy", "10.0.0.1:3128"), 0);
    assert_int_equal(set(&o, "proxy", "[fd00::1]:3128"), 0);
    assert_int_equal(set(&o, "proxy", "10.0.0.2:3128"), AWF_E_USAGE); /* one per family */
    assert_int_equal(set(&o, "dns", "8.8.8.8,8.8.4.4"), 0);
    assert_int_equal(set(&o, "dns", "8.8.8.8"), 0); /* repeats add nothing */
    assert_int_equal(o.dns.n, 2);
    assert_int_equal(set(&o, "proxy-ports", "8080,8080"), 0);
    assert_int_equal(o.n_redirects, 3);
    assert_int_equal(set(&o, "redirect", "8080=3129"), AWF_E_USAGE); /* already to 3128 */
    assert_int_equal(set(&o, "dangerous-ports", "22"), 0);
    assert_int_equal(set(&o, "dangerous-ports", "2222"), 0);
    assert_int_equal(o.n_dangerous, 2); /* the first use replaced the default list */
    assert_int_equal(set(&o, "side", "host"), 0);
    assert_int_equal(o.side, AWF_NF_HOST);
    assert_int_equal(set(&o, "ipv6", "off"), 0);
    assert_int_equal(o.ipv6, AWF_NF_IPV6_OFF);
}

static void test_netfilter_opts_check(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    char err[256] = "";

    /* no proxy given: AWF's 172.30.0.10:3128 */
    awf_netfilter_opts_init(&o);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), 0);
    assert_true(o.have_proxy[AWF_NF_V4]);
    assert_int_equal(o.proxy[AWF_NF_V4].port, 3128);

    /* a dangerous port asked for, by each of the ways to ask */
    const char *asks[][2] = {{"proxy-ports", "22"}, {"redirect", "3306=3129"}};
    for (size_t i = 0; i < 2; i++) {
        awf_netfilter_opts_init(&o);
        assert_int_equal(set(&o, asks[i][0], asks[i][1]), 0);
        assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);
        assert_non_null(strstr(err, "dangerous"));
    }
    /* ... and a redirect made dangerous by --dangerous-ports */
    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "dangerous-ports", "443"), 0);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);
    assert_non_null(strstr(err, "443"));

    /* the forwarder leaves no other resolver */
    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "dns", "8.8.8.8"), 0);
    assert_int_equal(set(&o, "dns-forwarder", "172.30.0.10:53"), 0);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);
    assert_non_null(strstr(err, "--dns-forwarder"));

    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "side", "host"), 0);
    assert_int_equal(set(&o, "agent-ip", "172.30.0.20"), 0);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);

    /* host ports are for the host gateway only: without one they would mean nothing */
    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "host-ports", "3000"), 0);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);
    assert_non_null(strstr(err, "--host-gateway"));
    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "side", "host"), 0);
    assert_int_equal(set(&o, "host-gateway", "172.17.0.1"), 0);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), AWF_E_USAGE);
    /* a dangerous port may be named for the gateway (AWF's host service ports): not redirected */
    awf_netfilter_opts_init(&o);
    assert_int_equal(set(&o, "host-gateway", "172.17.0.1"), 0);
    assert_int_equal(set(&o, "host-ports", "5432,5432,8000-8010"), 0);
    assert_int_equal(o.n_host_ports, 2);
    assert_int_equal(awf_netfilter_opts_check(&o, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netfilter_opts_parse_addr),
        cmocka_unit_test(test_netfilter_opts_parse_port),
        cmocka_unit_test(test_netfilter_opts_parse_endpoint),
        cmocka_unit_test(test_netfilter_opts_set_rejects),
        cmocka_unit_test(test_netfilter_opts_set_values),
        cmocka_unit_test(test_netfilter_opts_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
