/* The generated iptables-restore text, byte for byte, for AWF's topology (SPEC §8, §9), the IPv6
 * mirror, the DNS forwarder and the host side. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Builds one table into a fresh string the test frees. */
static char *build(const struct awf_nf_opts *o, enum awf_nf_family f, enum awf_nf_table t,
                   const struct awf_nf_table_state *st)
{
    struct awf_nf_text out = {0};
    struct awf_nf_table_state none = {0};
    assert_int_equal(netfilter_build(o, f, t, st ? st : &none, &out), 0);
    return out.p ? out.p : strdup("");
}

#define ASSERT_TEXT(o, f, t, st, golden)                                                           \
    do {                                                                                           \
        char *got_ = build(o, f, t, st);                                                           \
        assert_string_equal(got_, golden);                                                         \
        free(got_);                                                                                \
    } while (0)

/* The goldens are kept as iptables-save would print them, one rule a line. */
// clang-format off

/* The blocking tail of the agent's filter chain; icmp is "icmp" or "ipv6-icmp". */
#define AGENT_TAIL(icmp)                                                                          \
    "-A AWF_OUTPUT -p tcp -m multiport --dports " NF_DANGEROUS NF_LOG "\"[FW_BLOCKED_DANGEROUS_PORT] \"\n" \
    "-A AWF_OUTPUT -p tcp -m multiport --dports " NF_DANGEROUS " -j DROP\n"                      \
    "-A AWF_OUTPUT -p " icmp NF_LOG "\"[FW_BLOCKED_ICMP] \"\n"                                    \
    "-A AWF_OUTPUT -p " icmp " -j DROP\n"                                                         \
    "-A AWF_OUTPUT -p tcp" NF_LOG "\"[FW_BLOCKED_TCP] \"\n"                                       \
    "-A AWF_OUTPUT -p tcp -j DROP\n"                                                              \
    "-A AWF_OUTPUT -p udp" NF_LOG "\"[FW_BLOCKED_UDP] \"\n"                                       \
    "-A AWF_OUTPUT -p udp -j DROP\n"                                                              \
    "-A AWF_OUTPUT" NF_LOG "\"[FW_BLOCKED_OTHER] \"\n"                                            \
    "-A AWF_OUTPUT -j DROP\n"                                                                     \
    "COMMIT\n"
#define AGENT_TAIL_V4 AGENT_TAIL("icmp")

/* The blocking tail of the host's chain; unreach is the family's ICMP port-unreachable. */
#define HOST_TAIL(icmp, unreach)                                                                  \
    "-A FW_WRAPPER -p tcp -m multiport --dports " NF_DANGEROUS NF_LOG "\"[FW_BLOCKED_DANGEROUS_PORT] \"\n" \
    "-A FW_WRAPPER -p tcp -m multiport --dports " NF_DANGEROUS " -j REJECT --reject-with tcp-reset\n" \
    "-A FW_WRAPPER -p " icmp NF_LOG "\"[FW_BLOCKED_ICMP] \"\n"                                    \
    "-A FW_WRAPPER -p " icmp " -j REJECT --reject-with " unreach "\n"                             \
    "-A FW_WRAPPER -p tcp" NF_LOG "\"[FW_BLOCKED_TCP] \"\n"                                       \
    "-A FW_WRAPPER -p tcp -j REJECT --reject-with tcp-reset\n"                                    \
    "-A FW_WRAPPER -p udp" NF_LOG "\"[FW_BLOCKED_UDP] \"\n"                                       \
    "-A FW_WRAPPER -p udp -j REJECT --reject-with " unreach "\n"                                  \
    "-A FW_WRAPPER" NF_LOG "\"[FW_BLOCKED_OTHER] \"\n"                                            \
    "-A FW_WRAPPER -j REJECT --reject-with " unreach "\n"                                         \
    "COMMIT\n"
// clang-format on

static void awf_opts(struct awf_nf_opts *o)
{
    opts_from(o, "agent-ip", "172.30.0.20", "dns", "8.8.8.8,8.8.4.4", NULL);
}

static void test_netfilter_rules_awf_agent_filter(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    awf_opts(&o);
    ASSERT_TEXT(
        &o, AWF_NF_V4, AWF_NF_FILTER, NULL,
        "*filter\n"
        ":AWF_OUTPUT - [0:0]\n"
        "-I OUTPUT 1 -j AWF_OUTPUT\n"
        "-A AWF_OUTPUT -o lo -j ACCEPT\n"
        "-A AWF_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A AWF_OUTPUT -d 8.8.8.8/32 -p udp -m udp --dport 53 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 8.8.8.8/32 -p tcp -m tcp --dport 53 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 8.8.4.4/32 -p udp -m udp --dport 53 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 8.8.4.4/32 -p tcp -m tcp --dport 53 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.10/32 -p tcp -m tcp --dport 3128 -j ACCEPT\n" AGENT_TAIL_V4);
}

static void test_netfilter_rules_awf_agent_nat(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    awf_opts(&o);
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d 127.0.0.0/8 -j RETURN\n"
                "-A AWF_NAT -d 172.30.0.20/32 -j RETURN\n"
                "-A AWF_NAT -d 172.30.0.10/32 -j RETURN\n"
                "-A AWF_NAT -d 8.8.8.8/32 -p udp -m udp --dport 53 -j RETURN\n"
                "-A AWF_NAT -d 8.8.8.8/32 -p tcp -m tcp --dport 53 -j RETURN\n"
                "-A AWF_NAT -d 8.8.4.4/32 -p udp -m udp --dport 53 -j RETURN\n"
                "-A AWF_NAT -d 8.8.4.4/32 -p tcp -m tcp --dport 53 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "-A AWF_NAT -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.30.0.10:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.30.0.10:3128\n"
                "COMMIT\n");
}

/* Extra ports, a listener mapping and sidecars: each redirect goes to its listener, the
 * proxy's listener ports are all let through, sidecars are neither redirected nor dropped. */
static void test_netfilter_rules_redirects_and_sidecars(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "proxy", "10.200.0.2:3128", "proxy-ports", "8080", "redirect", "8443=3129",
              "sidecar", "10.200.0.3", "ipv6", "off", NULL);
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d 127.0.0.0/8 -j RETURN\n"
                "-A AWF_NAT -d 10.200.0.2/32 -j RETURN\n"
                "-A AWF_NAT -d 10.200.0.3/32 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "-A AWF_NAT -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.200.0.2:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.200.0.2:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.200.0.2:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 8443 -j DNAT --to-destination 10.200.0.2:3129\n"
                "COMMIT\n");
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_FILTER, NULL,
                "*filter\n"
                ":AWF_OUTPUT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_OUTPUT\n"
                "-A AWF_OUTPUT -o lo -j ACCEPT\n"
                "-A AWF_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                "-A AWF_OUTPUT -d 10.200.0.2/32 -p tcp -m tcp --dport 3128 -j ACCEPT\n"
                "-A AWF_OUTPUT -d 10.200.0.2/32 -p tcp -m tcp --dport 3129 -j ACCEPT\n"
                "-A AWF_OUTPUT -d 10.200.0.3/32 -p tcp -j ACCEPT\n" AGENT_TAIL_V4);
}

/* Host access (AWF's --enable-host-access): the gateway is never redirected, but only tcp 80,
 * 443 and the named ports (single, range, a dangerous one restricted to the gateway) are let
 * through to it, ahead of the dangerous-port drop; every other port to it is dropped. */
static void test_netfilter_rules_host_gateway_ports(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "proxy", "172.30.0.10:3128", "host-gateway", "172.17.0.1,172.30.0.1",
              "host-ports", "3000,8000-8010,5432,443", "ipv6", "off", NULL);
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d 127.0.0.0/8 -j RETURN\n"
                "-A AWF_NAT -d 172.30.0.10/32 -j RETURN\n"
                "-A AWF_NAT -d 172.17.0.1/32 -j RETURN\n"
                "-A AWF_NAT -d 172.30.0.1/32 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "-A AWF_NAT -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.30.0.10:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.30.0.10:3128\n"
                "COMMIT\n");
    ASSERT_TEXT(
        &o, AWF_NF_V4, AWF_NF_FILTER, NULL,
        "*filter\n"
        ":AWF_OUTPUT - [0:0]\n"
        "-I OUTPUT 1 -j AWF_OUTPUT\n"
        "-A AWF_OUTPUT -o lo -j ACCEPT\n"
        "-A AWF_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.10/32 -p tcp -m tcp --dport 3128 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 443 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 3000 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 8000:8010 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport 5432 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 443 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 3000 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 8000:8010 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 5432 -j ACCEPT\n" AGENT_TAIL_V4);
}

/* IPv6 mirrors IPv4 with the addresses of its own family; ICMPv6 keeps only what IPv6 needs. */
static void test_netfilter_rules_ipv6_mirror(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "proxy", "172.30.0.10:3128", "proxy", "[fd00::10]:3128", "agent-ip",
              "172.30.0.20,fd00::20", "dns", "8.8.8.8,2001:4860:4860::8888", "sidecar", "fd00::30",
              NULL);
    ASSERT_TEXT(&o, AWF_NF_V6, AWF_NF_FILTER, NULL,
                "*filter\n"
                ":AWF_OUTPUT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_OUTPUT\n"
                "-A AWF_OUTPUT -o lo -j ACCEPT\n"
                "-A AWF_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                "-A AWF_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j ACCEPT\n"
                "-A AWF_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT\n"
                "-A AWF_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT\n"
                "-A AWF_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 143 -j ACCEPT\n"
                "-A AWF_OUTPUT -d 2001:4860:4860::8888/128 -p udp -m udp --dport 53 -j ACCEPT\n"
                "-A AWF_OUTPUT -d 2001:4860:4860::8888/128 -p tcp -m tcp --dport 53 -j ACCEPT\n"
                "-A AWF_OUTPUT -d fd00::10/128 -p tcp -m tcp --dport 3128 -j ACCEPT\n"
                "-A AWF_OUTPUT -d fd00::30/128 -p tcp -j ACCEPT\n" AGENT_TAIL("ipv6-icmp"));
    ASSERT_TEXT(&o, AWF_NF_V6, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d ::1/128 -j RETURN\n"
                "-A AWF_NAT -d fd00::20/128 -j RETURN\n"
                "-A AWF_NAT -d fd00::10/128 -j RETURN\n"
                "-A AWF_NAT -d fd00::30/128 -j RETURN\n"
                "-A AWF_NAT -d 2001:4860:4860::8888/128 -p udp -m udp --dport 53 -j RETURN\n"
                "-A AWF_NAT -d 2001:4860:4860::8888/128 -p tcp -m tcp --dport 53 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "-A AWF_NAT -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::10]:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 443 -j DNAT --to-destination [fd00::10]:3128\n"
                "COMMIT\n");
}

/* Without an IPv6 proxy nothing can be redirected over IPv6: no DNAT, and the filter drops. */
static void test_netfilter_rules_ipv6_without_v6_proxy(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, NULL);
    ASSERT_TEXT(&o, AWF_NF_V6, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d ::1/128 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "COMMIT\n");
    char *f = build(&o, AWF_NF_V6, AWF_NF_FILTER, NULL);
    assert_null(strstr(f, "--dport 3128"));
    assert_non_null(strstr(f, "-A AWF_OUTPUT -p tcp -j DROP\n"));
    free(f);
}

/* With the forwarder every query is DNAT'd first, whatever resolver it names, and the filter
 * lets through the forwarder only (M-finding on DNS exfiltration). */
static void test_netfilter_rules_dns_forwarder(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "dns-forwarder", "172.30.0.10:5353", "ipv6", "off", NULL);
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_NAT, NULL,
                "*nat\n"
                ":AWF_NAT - [0:0]\n"
                "-I OUTPUT 1 -j AWF_NAT\n"
                "-A AWF_NAT -p udp -m udp --dport 53 -j DNAT --to-destination 172.30.0.10:5353\n"
                "-A AWF_NAT -p tcp -m tcp --dport 53 -j DNAT --to-destination 172.30.0.10:5353\n"
                "-A AWF_NAT -o lo -j RETURN\n"
                "-A AWF_NAT -d 127.0.0.0/8 -j RETURN\n"
                "-A AWF_NAT -d 172.30.0.10/32 -j RETURN\n"
                "-A AWF_NAT -p tcp -m multiport --dports " NF_DANGEROUS " -j RETURN\n"
                "-A AWF_NAT -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.30.0.10:3128\n"
                "-A AWF_NAT -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.30.0.10:3128\n"
                "COMMIT\n");
    ASSERT_TEXT(
        &o, AWF_NF_V4, AWF_NF_FILTER, NULL,
        "*filter\n"
        ":AWF_OUTPUT - [0:0]\n"
        "-I OUTPUT 1 -j AWF_OUTPUT\n"
        "-A AWF_OUTPUT -o lo -j ACCEPT\n"
        "-A AWF_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.10/32 -p udp -m udp --dport 5353 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.10/32 -p tcp -m tcp --dport 5353 -j ACCEPT\n"
        "-A AWF_OUTPUT -d 172.30.0.10/32 -p tcp -m tcp --dport 3128 -j ACCEPT\n" AGENT_TAIL_V4);
}

/* A second apply finds the jump in place and does not add another one. */
static void test_netfilter_rules_jump_present(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, NULL);
    struct awf_nf_table_state st = {.chain_present = true, .jump_present = true};
    char *f = build(&o, AWF_NF_V4, AWF_NF_FILTER, &st);
    assert_true(strncmp(f, "*filter\n:AWF_OUTPUT - [0:0]\n-A AWF_OUTPUT -o lo -j ACCEPT\n", 56) ==
                0);
    assert_null(strstr(f, "-I OUTPUT"));
    free(f);
}

/* multiport takes 15 ports: a longer list is split over several rules. */
static void test_netfilter_rules_many_dangerous_ports(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "dangerous-ports", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "ipv6", "off",
              NULL);
    char *n = build(&o, AWF_NF_V4, AWF_NF_NAT, NULL);
    assert_non_null(strstr(n, "-A AWF_NAT -p tcp -m multiport --dports "
                              "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j RETURN\n"
                              "-A AWF_NAT -p tcp -m multiport --dports 16,17 -j RETURN\n"));
    free(n);
}

static void test_netfilter_rules_host_docker_user(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "side", "host", "dns", "8.8.8.8", "sidecar", "172.30.0.30", NULL);
    struct awf_nf_table_state st = {.docker_user_present = true};
    ASSERT_TEXT(
        &o, AWF_NF_V4, AWF_NF_FILTER, &st,
        "*filter\n"
        ":FW_WRAPPER - [0:0]\n"
        "-I DOCKER-USER 1 -i fw-bridge -j FW_WRAPPER\n"
        "-A FW_WRAPPER -s 172.30.0.10/32 -j ACCEPT\n"
        "-A FW_WRAPPER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A FW_WRAPPER -d 8.8.8.8/32 -p udp -m udp --dport 53 -j ACCEPT\n"
        "-A FW_WRAPPER -d 8.8.8.8/32 -p tcp -m tcp --dport 53 -j ACCEPT\n"
        "-A FW_WRAPPER -d 172.30.0.10/32 -p tcp -m tcp --dport 3128 -j ACCEPT\n"
        "-A FW_WRAPPER -d 172.30.0.30/32 -p tcp -j ACCEPT\n"
        "-A FW_WRAPPER -m addrtype --dst-type MULTICAST -j REJECT --reject-with "
        "icmp-port-unreachable\n"
        "-A FW_WRAPPER -d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable\n"
        "-A FW_WRAPPER -d 224.0.0.0/4 -j REJECT --reject-with icmp-port-unreachable\n" HOST_TAIL(
            "icmp", "icmp-port-unreachable"));
    /* the host side has no nat rules: nothing at all for that table */
    ASSERT_TEXT(&o, AWF_NF_V4, AWF_NF_NAT, &st, "");
}

/* IPv6 on the host: a chain that is actually jumped to, from FORWARD when Docker has no IPv6
 * DOCKER-USER; link-local and multicast refused. */
static void test_netfilter_rules_host_ipv6_forward(void **state)
{
    (void)state;
    struct awf_nf_opts o;
    opts_from(&o, "side", "host", "bridge", "br-awf", "proxy", "[fd00::10]:3128", NULL);
    ASSERT_TEXT(
        &o, AWF_NF_V6, AWF_NF_FILTER, NULL,
        "*filter\n"
        ":FW_WRAPPER - [0:0]\n"
        "-I FORWARD 1 -i br-awf -j FW_WRAPPER\n"
        "-A FW_WRAPPER -s fd00::10/128 -j ACCEPT\n"
        "-A FW_WRAPPER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A FW_WRAPPER -d fd00::10/128 -p tcp -m tcp --dport 3128 -j ACCEPT\n"
        "-A FW_WRAPPER -m addrtype --dst-type MULTICAST -j REJECT --reject-with "
        "icmp6-port-unreachable\n"
        "-A FW_WRAPPER -d fe80::/10 -j REJECT --reject-with icmp6-port-unreachable\n"
        "-A FW_WRAPPER -d ff00::/8 -j REJECT --reject-with icmp6-port-unreachable\n" HOST_TAIL(
            "ipv6-icmp", "icmp6-port-unreachable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netfilter_rules_awf_agent_filter),
        cmocka_unit_test(test_netfilter_rules_awf_agent_nat),
        cmocka_unit_test(test_netfilter_rules_redirects_and_sidecars),
        cmocka_unit_test(test_netfilter_rules_host_gateway_ports),
        cmocka_unit_test(test_netfilter_rules_ipv6_mirror),
        cmocka_unit_test(test_netfilter_rules_ipv6_without_v6_proxy),
        cmocka_unit_test(test_netfilter_rules_dns_forwarder),
        cmocka_unit_test(test_netfilter_rules_jump_present),
        cmocka_unit_test(test_netfilter_rules_many_dangerous_ports),
        cmocka_unit_test(test_netfilter_rules_host_docker_user),
        cmocka_unit_test(test_netfilter_rules_host_ipv6_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
