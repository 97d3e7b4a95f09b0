/* policy_addr_allowed(): the first and last address of every range of SPEC §3 and IANA's
 * special-purpose registries and their neighbours outside it, IPv6 forms that carry an IPv4
 * address (issue #13), v4-mapped IPv6, and the policy's allowed ranges. */

#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

/* SPEC §3's list and the IANA special-purpose blocks, written out again here so the test does
 * not trust the code's table. First match wins; allow: a globally reachable block inside a
 * denied one; embed: where the IPv4 address an IPv6 one carries sits ("low32", "6to4",
 * "teredo"), which must pass the IPv4 check too. */
static const struct {
    const char *cidr, *why;
    bool allow;
    const char *embed;
} denied[] = {
    {"0.0.0.0/8", "0.0.0.0/8 this network", false, NULL},
    {"10.0.0.0/8", "10.0.0.0/8 private", false, NULL},
    {"100.64.0.0/10", "100.64.0.0/10 shared address space (CGNAT)", false, NULL},
    {"127.0.0.0/8", "127.0.0.0/8 loopback", false, NULL},
    {"169.254.0.0/16", "169.254.0.0/16 link-local (cloud metadata)", false, NULL},
    {"172.16.0.0/12", "172.16.0.0/12 private", false, NULL},
    {"192.0.0.0/24", "192.0.0.0/24 IETF protocol assignments", false, NULL},
    {"192.0.2.0/24", "192.0.2.0/24 documentation (TEST-NET-1)", false, NULL},
    {"192.168.0.0/16", "192.168.0.0/16 private", false, NULL},
    {"198.18.0.0/15", "198.18.0.0/15 benchmarking", false, NULL},
    {"198.51.100.0/24", "198.51.100.0/24 documentation (TEST-NET-2)", false, NULL},
    {"203.0.113.0/24", "203.0.113.0/24 documentation (TEST-NET-3)", false, NULL},
    {"224.0.0.0/4", "224.0.0.0/4 multicast", false, NULL},
    {"240.0.0.0/4", "240.0.0.0/4 reserved and broadcast", false, NULL},
    {"::/128", "::/128 unspecified", false, NULL},
    {"::1/128", "::1/128 loopback", false, NULL},
    {"::/96", "::/96 IPv4-compatible (deprecated)", false, "low32"},
    {"::ffff:0:0:0/96", "::ffff:0:0:0/96 SIIT IPv4-translated", false, "low32"},
    {"64:ff9b::/96", "64:ff9b::/96 NAT64", false, "low32"},
    {"64:ff9b:1::/48", "64:ff9b:1::/48 local-use NAT64", false, NULL},
    {"100::/64", "100::/64 discard-only", false, NULL},
    {"100:0:0:1::/64", "100:0:0:1::/64 dummy prefix", false, NULL},
    {"fc00::/7", "fc00::/7 unique local", false, NULL},
    {"fe80::/10", "fe80::/10 link-local", false, NULL},
    {"fec0::/10", "fec0::/10 site-local (deprecated)", false, NULL},
    {"ff00::/8", "ff00::/8 multicast", false, NULL},
    {"2001::/32", "2001::/32 Teredo", false, "teredo"},
    {"2001:1::1/128", NULL, true, NULL},
    {"2001:1::2/128", NULL, true, NULL},
    {"2001:1::3/128", NULL, true, NULL},
    {"2001:3::/32", NULL, true, NULL},
    {"2001:4:112::/48", NULL, true, NULL},
    {"2001:20::/28", NULL, true, NULL},
    {"2001:30::/28", NULL, true, NULL},
    {"2001:2::/48", "2001:2::/48 benchmarking", false, NULL},
    {"2001:10::/28", "2001:10::/28 ORCHID (deprecated)", false, NULL},
    {"2001::/23", "2001::/23 IETF protocol assignments", false, NULL},
    {"2001:db8::/32", "2001:db8::/32 documentation", false, NULL},
    {"2002::/16", "2002::/16 6to4", false, "6to4"},
    {"3fff::/20", "3fff::/20 documentation", false, NULL},
    {"5f00::/16", "5f00::/16 SRv6 SIDs", false, NULL},
    {"2000::/3", NULL, true, NULL},
    {"::/0", "outside 2000::/3 (IPv6 global unicast)", false, NULL},
};

struct addr {
    int family;
    uint8_t b[16];
};

static unsigned parse_cidr(const char *cidr, struct addr *a)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", cidr);
    char *slash = strchr(buf, '/');
    *slash = '\0';
    memset(a->b, 0, 16);
    a->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(inet_pton(a->family, buf, a->b), 1);
    return (unsigned)atoi(slash + 1);
}

static void set_host_bits(struct addr *a, unsigned prefix)
{
    unsigned bits = a->family == AF_INET ? 32 : 128;
    for (unsigned i = prefix; i < bits; i++)
        a->b[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

/* Adds delta (+1 or -1) to the address; false if it wraps. */
static bool step(struct addr *a, int delta)
{
    int n = a->family == AF_INET ? 4 : 16;
    for (int i = n - 1; i >= 0; i--) {
        if (delta > 0 && a->b[i]++ != 0xff)
            return true;
        if (delta < 0 && a->b[i]-- != 0x00)
            return true;
    }
    return false;
}

static bool check(const struct awf_policy *p, const struct addr *a, const char **why)
{
    struct sockaddr_storage ss = {0};
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a->b, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a->b, 16);
    }
    return policy_addr_allowed(p, (const struct sockaddr *)&ss, why);
}

static bool check_text(const struct awf_policy *p, const char *text, const char **why)
{
    struct addr a = {.family = strchr(text, ':') ? AF_INET6 : AF_INET};
    assert_int_equal(inet_pton(a.family, text, a.b), 1);
    return check(p, &a, why);
}

static bool in_range(const struct addr *a, const char *cidr)
{
    struct addr net;
    unsigned prefix = parse_cidr(cidr, &net);
    if (net.family != a->family)
        return false;
    struct addr hi = net;
    set_host_bits(&hi, prefix);
    int n = a->family == AF_INET ? 4 : 16;
    return memcmp(a->b, net.b, (size_t)n) >= 0 && memcmp(a->b, hi.b, (size_t)n) <= 0;
}

/* The reference: what the check must say of a (no policy): NULL if allowed, else the reason. */
static const char *expected(const struct addr *a)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (a->family == AF_INET6 && memcmp(a->b, mapped, 12) == 0) {
        struct addr v4 = {.family = AF_INET}; /* checked as the IPv4 address it maps */
        memcpy(v4.b, a->b + 12, 4);
        return expected(&v4);
    }
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        if (!in_range(a, denied[i].cidr))
            continue;
        if (denied[i].embed) {
            struct addr v4 = {.family = AF_INET};
            if (strcmp(denied[i].embed, "6to4") == 0)
                memcpy(v4.b, a->b + 2, 4);
            else if (strcmp(denied[i].embed, "low32") == 0)
                memcpy(v4.b, a->b + 12, 4);
            else
                for (int k = 0; k < 4; k++)
                    v4.b[k] = (uint8_t)~a->b[12 + k];
            if (expected(&v4)) {
                static char buf[128];
                snprintf(buf, sizeof buf, "%s embedding a denied IPv4 address", denied[i].why);
                return buf;
            }
        }
        return denied[i].why;
    }
    return NULL;
}

static void expect_same(const struct addr *a, const char *what, const char *cidr)
{
    const char *why = NULL, *want = expected(a);
    bool ok = check(NULL, a, &why);
    char text[64];
    inet_ntop(a->family, a->b, text, sizeof text);
    if (ok != (want == NULL) || (want && (!why || strcmp(why, want) != 0)))
        fail_msg("%s %s of %s: got %s, want %s", what, text, cidr, ok ? "allowed" : why,
                 want ? want : "allowed");
}

/* The first and last address of every range and their neighbours outside it. */
static void test_addr_every_range_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        struct addr first, last, out;
        unsigned prefix = parse_cidr(denied[i].cidr, &first);
        last = first;
        set_host_bits(&last, prefix);
        expect_same(&first, "first", denied[i].cidr);
        expect_same(&last, "last", denied[i].cidr);
        out = first;
        if (step(&out, -1))
            expect_same(&out, "before", denied[i].cidr);
        out = last;
        if (step(&out, +1))
            expect_same(&out, "after", denied[i].cidr);
    }
}

/* Issue #13: IPv6 spellings of denied IPv4 addresses, each denied with the range that carries
 * it; the same spellings of a public address follow their own range. */
static void test_addr_v6_embeddings(void **state)
{
    (void)state;
    static const struct {
        const char *ip, *why; /* why NULL: allowed */
    } cases[] = {
        {"::a9fe:a9fe", "::/96 IPv4-compatible (deprecated) embedding a denied IPv4 address"},
        {"::169.254.169.254", "::/96 IPv4-compatible (deprecated) embedding a denied IPv4 address"},
        {"::808:808", "::/96 IPv4-compatible (deprecated)"},
        {"::ffff:0:a9fe:a9fe",
         "::ffff:0:0:0/96 SIIT IPv4-translated embedding a denied IPv4 address"},
        {"::ffff:0:808:808", "::ffff:0:0:0/96 SIIT IPv4-translated"},
        {"64:ff9b::a9fe:a9fe", "64:ff9b::/96 NAT64 embedding a denied IPv4 address"},
        {"64:ff9b::10.0.0.1", "64:ff9b::/96 NAT64 embedding a denied IPv4 address"},
        {"64:ff9b::8.8.8.8", "64:ff9b::/96 NAT64"},
        {"64:ff9b:1::a9fe:a9fe", "64:ff9b:1::/48 local-use NAT64"},
        {"64:ff9b:1:ffff::1", "64:ff9b:1::/48 local-use NAT64"},
        {"fec0::1", "fec0::/10 site-local (deprecated)"},
        {"feff:ffff::1", "fec0::/10 site-local (deprecated)"},
        {"2002:a9fe:a9fe::1", "2002::/16 6to4 embedding a denied IPv4 address"},
        {"2002:7f00:1::", "2002::/16 6to4 embedding a denied IPv4 address"},
        {"2002:808:808::1", "2002::/16 6to4"},
        /* Teredo: the client's address inverted in the last 32 bits. */
        {"2001:0:4136:e378:8000:63bf:5601:5601",
         "2001::/32 Teredo embedding a denied IPv4 address"},
        {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2001::/32 Teredo"},
        {"100::1", "100::/64 discard-only"},
        {"2001:db8::1", "2001:db8::/32 documentation"},
        {"3fff:fff::1", "3fff::/20 documentation"},
        {"2001:2::1", "2001:2::/48 benchmarking"},
        {"2001:20::1", NULL},
        {"2001:4:112::1", NULL},
        {"2001:1::1", NULL},
        {"2001:1::4", "2001::/23 IETF protocol assignments"},
        {"2001:200::1", NULL},
        {"1::1", "outside 2000::/3 (IPv6 global unicast)"},
        {"4000::1", "outside 2000::/3 (IPv6 global unicast)"},
        {"3fff:1000::1", NULL},
        {"2606:4700::1111", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        bool ok = check_text(NULL, cases[i].ip, &why);
        if (ok != (cases[i].why == NULL) || (cases[i].why && strcmp(why, cases[i].why) != 0))
            fail_msg("%s: got %s, want %s", cases[i].ip, ok ? "allowed" : why,
                     cases[i].why ? cases[i].why : "allowed");
    }
}

/* Opening an IPv6 range that carries IPv4 addresses does not open the IPv4 ranges behind it:
 * a NAT64 network that allows 64:ff9b::/96 still cannot reach 169.254.169.254 through it. */
static void test_addr_embedding_needs_v4_opened(void **state)
{
    (void)state;
    struct awf_policy *p = from_yaml("version: 1\naddresses:\n  allow: [\"64:ff9b::/96\", "
                                     "\"2002::/16\", \"::/0\", 10.1.0.0/16]\n");
    const char *why = NULL;
    assert_true(check_text(p, "64:ff9b::8.8.8.8", &why));
    assert_false(check_text(p, "64:ff9b::169.254.169.254", &why));
    assert_string_equal(why, "64:ff9b::/96 NAT64 embedding a denied IPv4 address");
    assert_true(check_text(p, "64:ff9b::10.1.2.3", &why)); /* its IPv4 is opened too */
    assert_false(check_text(p, "64:ff9b::10.2.0.1", &why));
    assert_true(check_text(p, "2002:808:808::1", &why));
    assert_false(check_text(p, "2002:a9fe:a9fe::1", &why));
    assert_false(check_text(p, "::a9fe:a9fe", &why)); /* ::/0 opens ::/96, not its IPv4 */
    assert_string_equal(why, "::/96 IPv4-compatible (deprecated) embedding a denied IPv4 address");
    assert_true(check_text(p, "fec0::1", &why));
    awf_policy_unref(p);
}

static void test_addr_public_allowed(void **state)
{
    (void)state;
    const char *why = "x";
    const char *ok[] = {"1.1.1.1",    "8.8.8.8",         "140.82.112.3",    "9.255.255.255",
                        "11.0.0.0",   "100.63.255.255",  "100.128.0.0",     "172.15.255.255",
                        "172.32.0.0", "192.0.1.0",       "192.167.255.255", "198.17.255.255",
                        "198.20.0.0", "223.255.255.255", "2606:4700::1111", "2001:1::1",
                        "2003::1",    "::ffff:8.8.8.8",  "2a00:1450::1",    "3ffe::1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!check_text(NULL, ok[i], &why))
            fail_msg("%s denied: %s", ok[i], why);
    assert_null(why);
}

static void test_addr_v4_mapped(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_false(check_text(NULL, "::ffff:10.1.2.3", &why));
    assert_string_equal(why, "10.0.0.0/8 private");
    assert_false(check_text(NULL, "::ffff:169.254.169.254", &why));
    assert_string_equal(why, "169.254.0.0/16 link-local (cloud metadata)");
    assert_false(check_text(NULL, "::ffff:127.0.0.1", &why));
    assert_true(check_text(NULL, "::ffff:1.1.1.1", &why));
}

static void test_addr_policy_allowed_ranges(void **state)
{
    (void)state;
    struct awf_policy *p = from_yaml("version: 1\naddresses:\n  allow: [127.0.0.1/32, "
                                     "172.30.0.0/24, \"fd00:1::/32\", \"::1\"]\n");
    const char *why = NULL;
    assert_true(check_text(p, "127.0.0.1", &why));
    assert_true(check_text(p, "::ffff:127.0.0.1", &why));
    assert_false(check_text(p, "127.0.0.2", &why));
    assert_string_equal(why, "127.0.0.0/8 loopback");
    assert_true(check_text(p, "172.30.0.0", &why));
    assert_true(check_text(p, "172.30.0.255", &why));
    assert_false(check_text(p, "172.30.1.0", &why));
    assert_string_equal(why, "172.16.0.0/12 private");
    assert_false(check_text(p, "172.29.255.255", &why));
    assert_true(check_text(p, "fd00:1::5", &why));
    assert_true(check_text(p, "fd00:1:ffff:ffff:ffff:ffff:ffff:ffff", &why));
    assert_false(check_text(p, "fd00:2::", &why));
    assert_string_equal(why, "fc00::/7 unique local");
    assert_true(check_text(p, "::1", &why));
    assert_false(check_text(p, "::", &why));
    awf_policy_unref(p);
}

static void test_addr_other_family(void **state)
{
    (void)state;
    struct sockaddr sa = {.sa_family = AF_UNIX};
    const char *why = NULL;
    assert_false(policy_addr_allowed(NULL, &sa, &why));
    assert_non_null(why);
    assert_false(policy_addr_allowed(NULL, NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_every_range_edges),
        cmocka_unit_test(test_addr_public_allowed),
        cmocka_unit_test(test_addr_v6_embeddings),
        cmocka_unit_test(test_addr_embedding_needs_v4_opened),
        cmocka_unit_test(test_addr_v4_mapped),
        cmocka_unit_test(test_addr_policy_allowed_ranges),
        cmocka_unit_test(test_addr_other_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
