/* awf_policy_addr_allowed(): the first and last address of every denied range of SPEC §3 and
 * their neighbours outside it, v4-mapped IPv6, and the policy's allowed ranges. */

#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

/* SPEC §3's list, written out again here so the test does not trust the code's table. */
static const struct {
    const char *cidr, *why;
} denied[] = {
    {"0.0.0.0/8", "0.0.0.0/8 this network"},
    {"10.0.0.0/8", "10.0.0.0/8 private"},
    {"100.64.0.0/10", "100.64.0.0/10 shared address space (CGNAT)"},
    {"127.0.0.0/8", "127.0.0.0/8 loopback"},
    {"169.254.0.0/16", "169.254.0.0/16 link-local (cloud metadata)"},
    {"172.16.0.0/12", "172.16.0.0/12 private"},
    {"192.0.0.0/24", "192.0.0.0/24 IETF protocol assignments"},
    {"192.168.0.0/16", "192.168.0.0/16 private"},
    {"198.18.0.0/15", "198.18.0.0/15 benchmarking"},
    {"224.0.0.0/4", "224.0.0.0/4 multicast"},
    {"240.0.0.0/4", "240.0.0.0/4 reserved and broadcast"},
    {"::/128", "::/128 unspecified"},
    {"::1/128", "::1/128 loopback"},
    {"64:ff9b::/96", "64:ff9b::/96 NAT64"},
    {"2001::/32", "2001::/32 Teredo"},
    {"2002::/16", "2002::/16 6to4"},
    {"fc00::/7", "fc00::/7 unique local"},
    {"fe80::/10", "fe80::/10 link-local"},
    {"ff00::/8", "ff00::/8 multicast"},
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
    return awf_policy_addr_allowed(p, (const struct sockaddr *)&ss, why);
}

static bool check_text(const struct awf_policy *p, const char *text, const char **why)
{
    struct addr a = {.family = strchr(text, ':') ? AF_INET6 : AF_INET};
    assert_int_equal(inet_pton(a.family, text, a.b), 1);
    return check(p, &a, why);
}

static bool in_any_denied(const struct addr *a)
{
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        struct addr net;
        unsigned prefix = parse_cidr(denied[i].cidr, &net);
        if (net.family != a->family)
            continue;
        struct addr lo = net, hi = net;
        set_host_bits(&hi, prefix);
        int n = a->family == AF_INET ? 4 : 16;
        if (memcmp(a->b, lo.b, (size_t)n) >= 0 && memcmp(a->b, hi.b, (size_t)n) <= 0)
            return true;
    }
    /* ::ffff:0:0/96 is checked as the IPv4 address it maps */
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (a->family == AF_INET6 && memcmp(a->b, mapped, 12) == 0) {
        struct addr v4 = {.family = AF_INET};
        memcpy(v4.b, a->b + 12, 4);
        return in_any_denied(&v4);
    }
    return false;
}

static void test_addr_every_range_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        struct addr first, last, out;
        unsigned prefix = parse_cidr(denied[i].cidr, &first);
        last = first;
        set_host_bits(&last, prefix);
        const char *why = NULL;
        if (check(NULL, &first, &why) || !why || strcmp(why, denied[i].why) != 0)
            fail_msg("first address of %s: got %s", denied[i].cidr, why ? why : "allowed");
        why = NULL;
        if (check(NULL, &last, &why) || !why || strcmp(why, denied[i].why) != 0)
            fail_msg("last address of %s: got %s", denied[i].cidr, why ? why : "allowed");
        out = first;
        if (step(&out, -1) && check(NULL, &out, &why) == in_any_denied(&out))
            fail_msg("address before %s", denied[i].cidr);
        out = last;
        if (step(&out, +1) && check(NULL, &out, &why) == in_any_denied(&out))
            fail_msg("address after %s", denied[i].cidr);
    }
}

static void test_addr_public_allowed(void **state)
{
    (void)state;
    const char *why = "x";
    const char *ok[] = {"1.1.1.1",        "8.8.8.8",         "140.82.112.3",    "9.255.255.255",
                        "11.0.0.0",       "100.63.255.255",  "100.128.0.0",     "172.15.255.255",
                        "172.32.0.0",     "192.0.1.0",       "192.167.255.255", "198.17.255.255",
                        "198.20.0.0",     "223.255.255.255", "2606:4700::1111", "::2",
                        "64:ff9b::1:0:0", "2001:1::1",       "2003::1",         "fbff::1",
                        "fec0::1",        "::ffff:8.8.8.8",  "feff::1"};
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
    assert_false(awf_policy_addr_allowed(NULL, &sa, &why));
    assert_non_null(why);
    assert_false(awf_policy_addr_allowed(NULL, NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_every_range_edges),
        cmocka_unit_test(test_addr_public_allowed),
        cmocka_unit_test(test_addr_v4_mapped),
        cmocka_unit_test(test_addr_policy_allowed_ranges),
        cmocka_unit_test(test_addr_other_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
