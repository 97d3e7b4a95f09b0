/* awf_policy_addr_allowed(): where a resolved name may not lead (SPEC §3), less what the
 * policy's addresses.allow opens up again. Checked on every address before it is dialled. */

#include "policy/policy_int.h"

#include <netinet/in.h>
#include <string.h>

struct range {
    int family;
    uint8_t addr[16];
    uint8_t prefix;
    const char *why;
};

#define V4(a, b, c, d)                                                                             \
    {                                                                                              \
        a, b, c, d                                                                                 \
    }
static const struct range denied[] = {
    {AF_INET, V4(0, 0, 0, 0), 8, "0.0.0.0/8 this network"},
    {AF_INET, V4(10, 0, 0, 0), 8, "10.0.0.0/8 private"},
    {AF_INET, V4(100, 64, 0, 0), 10, "100.64.0.0/10 shared address space (CGNAT)"},
    {AF_INET, V4(127, 0, 0, 0), 8, "127.0.0.0/8 loopback"},
    {AF_INET, V4(169, 254, 0, 0), 16, "169.254.0.0/16 link-local (cloud metadata)"},
    {AF_INET, V4(172, 16, 0, 0), 12, "172.16.0.0/12 private"},
    {AF_INET, V4(192, 0, 0, 0), 24, "192.0.0.0/24 IETF protocol assignments"},
    {AF_INET, V4(192, 168, 0, 0), 16, "192.168.0.0/16 private"},
    {AF_INET, V4(198, 18, 0, 0), 15, "198.18.0.0/15 benchmarking"},
    {AF_INET, V4(224, 0, 0, 0), 4, "224.0.0.0/4 multicast"},
    {AF_INET, V4(240, 0, 0, 0), 4, "240.0.0.0/4 reserved and broadcast"},
    {AF_INET6, {0}, 128, "::/128 unspecified"},
    {AF_INET6, {[15] = 1}, 128, "::1/128 loopback"},
    {AF_INET6, {0, 0x64, 0xff, 0x9b}, 96, "64:ff9b::/96 NAT64"},
    {AF_INET6, {0x20, 0x01, 0, 0}, 32, "2001::/32 Teredo"},
    {AF_INET6, {0x20, 0x02}, 16, "2002::/16 6to4"},
    {AF_INET6, {0xfc}, 7, "fc00::/7 unique local"},
    {AF_INET6, {0xfe, 0x80}, 10, "fe80::/10 link-local"},
    {AF_INET6, {0xff}, 8, "ff00::/8 multicast"},
};

static bool in_prefix(const uint8_t *addr, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(addr, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (addr[full] & mask) == (net[full] & mask);
}

bool awf_policy_addr_allowed(const struct awf_policy *p, const struct sockaddr *sa,
                             const char **why)
{
    int family;
    uint8_t ip[16] = {0};
    if (why)
        *why = NULL;
    if (sa && sa->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        family = AF_INET6;
        memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        policy_ip_fold(&family, ip); /* ::ffff:a.b.c.d is checked as a.b.c.d */
    } else {
        if (why)
            *why = "not an IPv4 or IPv6 address";
        return false;
    }
    if (p) {
        const struct awf_settings *s = &p->settings;
        for (size_t i = 0; i < s->n_allow_ranges; i++)
            if (s->allow_ranges[i].family == family &&
                in_prefix(ip, s->allow_ranges[i].addr, s->allow_ranges[i].prefix))
                return true;
    }
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        if (denied[i].family == family && in_prefix(ip, denied[i].addr, denied[i].prefix)) {
            if (why)
                *why = denied[i].why;
            return false;
        }
    return true;
}
