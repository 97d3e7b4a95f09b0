/* awf_policy_addr_check(): where a resolved name may not lead (SPEC §3, extended with the
 * IANA special-purpose registries), less what the policy's addresses.allow opens up again.
 * Checked on every address before it is dialled. */

#include "policy/policy_int.h"

#include <netinet/in.h>
#include <string.h>

/* Where an IPv6 range carries an IPv4 address that the traffic really goes to (through a
 * translator or a tunnel relay): that address must pass the IPv4 check too, even when
 * addresses.allow opens the IPv6 range, so 64:ff9b::169.254.169.254 never reaches the metadata
 * service behind a NAT64. */
enum embed {
    EMBED_NONE,
    EMBED_LOW32,  /* the last 32 bits: ::a.b.c.d, ::ffff:0:a.b.c.d, 64:ff9b::a.b.c.d */
    EMBED_6TO4,   /* bits 16..47: 2002:AABB:CCDD:: */
    EMBED_TEREDO, /* the client's address, bits 96..127 inverted (RFC 4380) */
};

struct range {
    int family;
    uint8_t addr[16];
    uint8_t prefix;
    bool allow;       /* a globally reachable block inside a denied one */
    enum embed embed; /* v6 only */
    const char *why;  /* denied: the range and what it is */
    const char *why4; /* embed: the embedded IPv4 address is denied */
};

#define V4(a, b, c, d)                                                                             \
    {                                                                                              \
        a, b, c, d                                                                                 \
    }
#define DENY(f, a, p, w)                                                                           \
    {                                                                                              \
        f, a, p, false, EMBED_NONE, w, NULL                                                        \
    }
#define EMBED(a, p, e, w)                                                                          \
    {                                                                                              \
        AF_INET6, a, p, false, e, w, w " embedding a denied IPv4 address"                          \
    }
#define GLOBAL(a, p)                                                                               \
    {                                                                                              \
        AF_INET6, a, p, true, EMBED_NONE, NULL, NULL                                               \
    }
#define A6(...)                                                                                    \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* First match wins, so a range inside another comes first. IPv4-mapped IPv6 (::ffff:0:0/96)
 * never reaches this table: it is checked as the IPv4 it maps. IPv6 outside 2000::/3 (global
 * unicast, RFC 4291) is denied as a whole after the named ranges: nothing else is routed on
 * the Internet, so the named ones there are only for a clearer reason. */
static const struct range ranges[] = {
    DENY(AF_INET, V4(0, 0, 0, 0), 8, "0.0.0.0/8 this network"),
    DENY(AF_INET, V4(10, 0, 0, 0), 8, "10.0.0.0/8 private"),
    DENY(AF_INET, V4(100, 64, 0, 0), 10, "100.64.0.0/10 shared address space (CGNAT)"),
    DENY(AF_INET, V4(127, 0, 0, 0), 8, "127.0.0.0/8 loopback"),
    DENY(AF_INET, V4(169, 254, 0, 0), 16, "169.254.0.0/16 link-local (cloud metadata)"),
    DENY(AF_INET, V4(172, 16, 0, 0), 12, "172.16.0.0/12 private"),
    DENY(AF_INET, V4(192, 0, 0, 0), 24, "192.0.0.0/24 IETF protocol assignments"),
    DENY(AF_INET, V4(192, 0, 2, 0), 24, "192.0.2.0/24 documentation (TEST-NET-1)"),
    DENY(AF_INET, V4(192, 168, 0, 0), 16, "192.168.0.0/16 private"),
    DENY(AF_INET, V4(198, 18, 0, 0), 15, "198.18.0.0/15 benchmarking"),
    DENY(AF_INET, V4(198, 51, 100, 0), 24, "198.51.100.0/24 documentation (TEST-NET-2)"),
    DENY(AF_INET, V4(203, 0, 113, 0), 24, "203.0.113.0/24 documentation (TEST-NET-3)"),
    DENY(AF_INET, V4(224, 0, 0, 0), 4, "224.0.0.0/4 multicast"),
    DENY(AF_INET, V4(240, 0, 0, 0), 4, "240.0.0.0/4 reserved and broadcast"),

    DENY(AF_INET6, A6(0), 128, "::/128 unspecified"),
    DENY(AF_INET6, A6([15] = 1), 128, "::1/128 loopback"),
    EMBED(A6(0), 96, EMBED_LOW32, "::/96 IPv4-compatible (deprecated)"),
    EMBED(A6([8] = 0xff, [9] = 0xff), 96, EMBED_LOW32, "::ffff:0:0:0/96 SIIT IPv4-translated"),
    EMBED(A6(0, 0x64, 0xff, 0x9b), 96, EMBED_LOW32, "64:ff9b::/96 NAT64"),
    DENY(AF_INET6, A6(0, 0x64, 0xff, 0x9b, 0, 1), 48, "64:ff9b:1::/48 local-use NAT64"),
    DENY(AF_INET6, A6(0x01, 0), 64, "100::/64 discard-only"),
    DENY(AF_INET6, A6(0x01, 0, 0, 0, 0, 0, 0, 1), 64, "100:0:0:1::/64 dummy prefix"),
    DENY(AF_INET6, A6(0xfc), 7, "fc00::/7 unique local"),
    DENY(AF_INET6, A6(0xfe, 0x80), 10, "fe80::/10 link-local"),
    DENY(AF_INET6, A6(0xfe, 0xc0), 10, "fec0::/10 site-local (deprecated)"),
    DENY(AF_INET6, A6(0xff), 8, "ff00::/8 multicast"),
    /* Inside 2000::/3. 2001::/23 is the IETF's; the blocks IANA marks globally reachable in it
     * stay open (PCP, TURN and DNS-SD SRP anycast, AMT, AS112, ORCHIDv2, drone DETs). */
    EMBED(A6(0x20, 0x01, 0, 0), 32, EMBED_TEREDO, "2001::/32 Teredo"),
    GLOBAL(A6(0x20, 0x01, 0, 0x01, [15] = 1), 128),
    GLOBAL(A6(0x20, 0x01, 0, 0x01, [15] = 2), 128),
    GLOBAL(A6(0x20, 0x01, 0, 0x01, [15] = 3), 128),
    GLOBAL(A6(0x20, 0x01, 0, 0x03), 32),
    GLOBAL(A6(0x20, 0x01, 0, 0x04, 0x01, 0x12), 48),
    GLOBAL(A6(0x20, 0x01, 0, 0x20), 28),
    GLOBAL(A6(0x20, 0x01, 0, 0x30), 28),
    DENY(AF_INET6, A6(0x20, 0x01, 0, 0x02, 0, 0), 48, "2001:2::/48 benchmarking"),
    DENY(AF_INET6, A6(0x20, 0x01, 0, 0x10), 28, "2001:10::/28 ORCHID (deprecated)"),
    DENY(AF_INET6, A6(0x20, 0x01, 0, 0), 23, "2001::/23 IETF protocol assignments"),
    DENY(AF_INET6, A6(0x20, 0x01, 0x0d, 0xb8), 32, "2001:db8::/32 documentation"),
    EMBED(A6(0x20, 0x02), 16, EMBED_6TO4, "2002::/16 6to4"),
    DENY(AF_INET6, A6(0x3f, 0xff, 0x00), 20, "3fff::/20 documentation"),
    DENY(AF_INET6, A6(0x5f, 0x00), 16, "5f00::/16 SRv6 SIDs"),
    GLOBAL(A6(0x20), 3),
    DENY(AF_INET6, A6(0), 0, "outside 2000::/3 (IPv6 global unicast)"),
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

static bool opened(const struct awf_policy *p, int family, const uint8_t *ip)
{
    if (!p)
        return false;
    const struct awf_settings *s = &p->settings;
    for (size_t i = 0; i < s->n_allow_ranges; i++)
        if (s->allow_ranges[i].family == family &&
            in_prefix(ip, s->allow_ranges[i].addr, s->allow_ranges[i].prefix))
            return true;
    return false;
}

/* The first range of the table that holds ip; NULL: none (an ordinary IPv4 address). */
static const struct range *lookup(int family, const uint8_t *ip)
{
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].family == family && in_prefix(ip, ranges[i].addr, ranges[i].prefix))
            return &ranges[i];
    return NULL;
}

/* The IPv4 address range r embeds in ip, into v4[16] (zero-padded). */
static void embedded_v4(const struct range *r, const uint8_t *ip, uint8_t v4[16])
{
    memset(v4, 0, 16);
    switch (r->embed) {
    case EMBED_LOW32:
        memcpy(v4, ip + 12, 4);
        break;
    case EMBED_6TO4:
        memcpy(v4, ip + 2, 4);
        break;
    case EMBED_TEREDO:
        for (int k = 0; k < 4; k++)
            v4[k] = (uint8_t)~ip[12 + k];
        break;
    case EMBED_NONE:
        break;
    }
}

static bool v4_allowed(const struct awf_policy *p, const uint8_t *v4)
{
    if (opened(p, AF_INET, v4))
        return true;
    const struct range *r = lookup(AF_INET, v4);
    return !r || r->allow;
}

bool policy_addr_allowed(const struct awf_policy *p, const struct sockaddr *sa, const char **why)
{
    return awf_policy_addr_check(p, sa, AWF_ADDR_DNS, why);
}

/* The ranges networks are built from (Docker's bridges, a compose project's network, a VPC):
 * a name the proxy's own hosts file maps there may be reached, because that file is
 * configuration the agent cannot write. Link-local stays out (169.254.169.254 is the cloud
 * metadata service), as do loopback (the proxy's own container) and the special-purpose
 * ranges nothing legitimate lives on. */
static bool private_use(int family, const uint8_t *ip)
{
    static const struct {
        int family;
        uint8_t addr[4];
        uint8_t prefix;
    } nets[] = {
        {AF_INET, {10, 0, 0, 0}, 8},    {AF_INET, {100, 64, 0, 0}, 10},
        {AF_INET, {172, 16, 0, 0}, 12}, {AF_INET, {192, 168, 0, 0}, 16},
        {AF_INET6, {0xfc, 0, 0, 0}, 7},
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if (nets[i].family == family && in_prefix(ip, nets[i].addr, nets[i].prefix))
            return true;
    return false;
}

bool awf_policy_addr_check(const struct awf_policy *p, const struct sockaddr *sa,
                           enum awf_addr_origin origin, const char **why)
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
    const struct range *r = lookup(family, ip);
    if (r && r->embed != EMBED_NONE) {
        uint8_t v4[16];
        embedded_v4(r, ip, v4);
        if (!v4_allowed(p, v4)) {
            if (why)
                *why = r->why4;
            return false;
        }
    }
    if (!r || r->allow || opened(p, family, ip))
        return true;
    if (origin == AWF_ADDR_HOSTS && private_use(family, ip))
        return true;
    if (why)
        *why = r->why;
    return false;
}
