/* One parser per value type, so a value means the same from a YAML file, a flag and a
 * squid.conf: each returns 0 or -1 with the reason in why (settings.c stores what they read). */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static bool all_digits(const char *v, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

int policy_parse_u64(const char *v, size_t len, uint64_t max, uint64_t *out)
{
    if (!all_digits(v, len) || (len > 1 && v[0] == '0'))
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (x > (max - (uint64_t)(v[i] - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

int policy_parse_u32(const char *v, size_t len, uint32_t max, uint32_t *out, char *why,
                     size_t whylen)
{
    uint64_t x;
    char q[96];
    if (policy_parse_u64(v, len, max, &x) < 0) {
        policy_quote(q, sizeof q, v, len);
        FAIL("invalid number %s: want an integer 0..%u without sign or leading zeros", q, max);
    }
    *out = (uint32_t)x;
    return 0;
}

/* "500ms", "30s", "2m", "8h"; a bare integer is seconds. */
int policy_parse_duration(const char *v, size_t len, uint64_t *ms, char *why, size_t whylen)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    size_t n = 0;
    while (n < len && v[n] >= '0' && v[n] <= '9')
        n++;
    uint64_t mult = 1000, x;
    if (n < len) {
        mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].unit) == len - n && memcmp(units[i].unit, v + n, len - n) == 0)
                mult = units[i].ms;
    }
    char q[96];
    policy_quote(q, sizeof q, v, len);
    /* A year is plenty and keeps ms arithmetic far from overflow. */
    if (mult == 0 || policy_parse_u64(v, n, UINT64_C(31536000000) / mult, &x) < 0)
        FAIL("invalid duration %s: want an integer with ms, s, m or h (e.g. 500ms, 30s, 2m, 8h), "
             "at most a year",
             q);
    *ms = x * mult;
    return 0;
}

int policy_parse_bool(const char *v, size_t len, bool *out, char *why, size_t whylen)
{
    if (len == 4 && strncasecmp(v, "true", 4) == 0)
        *out = true;
    else if (len == 5 && strncasecmp(v, "false", 5) == 0)
        *out = false;
    else {
        char q[96];
        policy_quote(q, sizeof q, v, len);
        FAIL("invalid boolean %s: want true or false", q);
    }
    return 0;
}

static int parse_port(const char *v, size_t len, uint16_t *out)
{
    uint64_t x;
    if (policy_parse_u64(v, len, 65535, &x) < 0 || x == 0)
        return -1;
    *out = (uint16_t)x;
    return 0;
}

int policy_parse_port_range(const char *v, size_t len, struct awf_port_range *r, char *why,
                            size_t whylen)
{
    const char *dash = memchr(v, '-', len);
    char q[96];
    policy_quote(q, sizeof q, v, len);
    if (!dash) {
        if (parse_port(v, len, &r->lo) < 0)
            FAIL("invalid port %s: want 1..65535 or a range a-b, no leading zeros or spaces", q);
        r->hi = r->lo;
        return 0;
    }
    if (parse_port(v, (size_t)(dash - v), &r->lo) < 0 ||
        parse_port(dash + 1, len - (size_t)(dash - v) - 1, &r->hi) < 0)
        FAIL("invalid port range %s: want a-b with 1 <= a <= b <= 65535, no leading zeros or "
             "spaces",
             q);
    if (r->lo > r->hi)
        FAIL("invalid port range %s: start above end", q);
    return 0;
}

/* "ADDR:PORT" with a literal IPv4 or bracketed IPv6 address; port 0 means any free port. */
int policy_parse_listen(const char *v, size_t len, struct sockaddr_storage *ss, char *why,
                        size_t whylen)
{
    const char *colon = len ? memrchr(v, ':', len) : NULL;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    int family;
    uint8_t ip[16];
    uint64_t port;
    if (!colon || policy_parse_u64(colon + 1, len - (size_t)(colon - v) - 1, 65535, &port) < 0)
        FAIL("invalid listen address %s: want ADDR:PORT (127.0.0.1:3128, [::]:3128)", q);
    size_t alen = (size_t)(colon - v);
    bool bracketed = alen >= 2 && v[0] == '[' && v[alen - 1] == ']';
    if (policy_ip_parse(v, alen, &family, ip) < 0 || (family == AF_INET6) != bracketed)
        FAIL("invalid listen address %s: want a literal IPv4 address or an IPv6 one in brackets",
             q);
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, ip, 16);
    }
    return 0;
}

/* "1.1.1.1", "1.1.1.1:53", "::1", "[::1]", "[::1]:5353" (what c-ares takes). */
int policy_check_dns_server(const char *v, size_t len, char *why, size_t whylen)
{
    int family;
    uint8_t ip[16];
    uint64_t port;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    if (policy_ip_parse(v, len, &family, ip) == 0)
        return 0;
    const char *colon = len ? memrchr(v, ':', len) : NULL;
    if (colon && policy_parse_u64(colon + 1, len - (size_t)(colon - v) - 1, 65535, &port) == 0 &&
        port > 0) {
        size_t alen = (size_t)(colon - v);
        bool bracketed = alen >= 2 && v[0] == '[';
        if (policy_ip_parse(v, alen, &family, ip) == 0 && (family == AF_INET6) == bracketed)
            return 0;
    }
    FAIL("invalid DNS server %s: want IP or IP:PORT (IPv6 in brackets when a port is given)", q);
}

/* "10.0.0.0/8", "fd00::/8", or one address (/32 or /128). Host bits must be clear. */
int policy_parse_cidr(const char *v, size_t len, struct awf_cidr *c, char *why, size_t whylen)
{
    const char *slash = memchr(v, '/', len);
    size_t alen = slash ? (size_t)(slash - v) : len;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    int family;
    if (policy_ip_parse(v, alen, &family, c->addr) < 0)
        FAIL("invalid address range %s: want ADDR/PREFIX (172.30.0.0/24, fd00::/8) or ADDR", q);
    unsigned max = family == AF_INET ? 32 : 128;
    uint64_t prefix = max;
    if (slash && policy_parse_u64(slash + 1, len - alen - 1, max, &prefix) < 0)
        FAIL("invalid address range %s: prefix length must be 0..%u", q, max);
    if (family == AF_INET6 && prefix >= 96) { /* ::ffff:a.b.c.d/104 is an IPv4 range */
        int f = family;
        policy_ip_fold(&f, c->addr);
        if (f == AF_INET) {
            family = AF_INET;
            prefix -= 96;
        }
    }
    max = family == AF_INET ? 32 : 128;
    for (unsigned bit = (unsigned)prefix; bit < max; bit++)
        if (c->addr[bit / 8] & (0x80 >> (bit % 8)))
            FAIL("invalid address range %s: address has bits set beyond the /%u prefix", q,
                 (unsigned)prefix);
    c->family = family;
    c->prefix = (uint8_t)prefix;
    return 0;
}

/* AWF_VERSION lands inside a JSON string of every audit line: keep it plain. */
int policy_check_version_str(const char *v, size_t len, char *why, size_t whylen)
{
    if (len == 0 || len > 32)
        FAIL("awf_version must be 1 to 32 characters");
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '-' || v[i] == '_'))
            FAIL("awf_version may only hold letters, digits, '.', '-' and '_'");
    return 0;
}

/* "HOST:PORT": a name or literal address (IPv6 in brackets) and a port 1..65535. */
int policy_parse_parent(const char *v, size_t len, struct awf_parent *out, char *why, size_t whylen)
{
    const char *colon = len ? memrchr(v, ':', len) : NULL;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    uint16_t port;
    if (!colon || colon == v || parse_port(colon + 1, len - (size_t)(colon - v) - 1, &port) < 0)
        FAIL("invalid parent %s: want HOST:PORT", q);
    size_t hlen = (size_t)(colon - v);
    struct host h;
    if (memchr(v, '\0', len) || policy_host_parse(v, hlen, &h) == HOST_INVALID)
        FAIL("invalid parent %s: want HOST:PORT", q);
    char *d = malloc(hlen + 1);
    if (!d)
        FAIL("out of memory");
    memcpy(d, v, hlen);
    d[hlen] = '\0';
    free(out->host);
    out->host = d;
    out->port = port;
    return 0;
}

/* A byte count with an optional KB/MB/GB suffix (powers of 1024, as Squid reads them). */
int policy_parse_size(const char *v, size_t len, uint32_t *out, char *why, size_t whylen)
{
    size_t n = len, mul = 1;
    if (n >= 2 && (v[n - 1] == 'B' || v[n - 1] == 'b')) {
        char m = v[n - 2];
        mul = (m == 'K' || m == 'k')   ? 1u << 10
              : (m == 'M' || m == 'm') ? 1u << 20
              : (m == 'G' || m == 'g') ? 1u << 30
                                       : 0;
        n = mul ? n - 2 : n;
        mul = mul ? mul : 1;
    }
    uint64_t num;
    if (policy_parse_u64(v, n, UINT32_MAX, &num) < 0 || num * mul > UINT32_MAX)
        FAIL("invalid size: want bytes, or a number with KB, MB or GB, below 4 GB");
    *out = (uint32_t)(num * mul);
    return 0;
}

#undef FAIL
