/* Settings: defaults, one table of keys shared by YAML and awf_policy_set(), and one parser per
 * value type, so a value means the same from a file and from a flag. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(m) offsetof(struct awf_settings, m)

static const struct skey keys[] = {
    {"version", K_VERSION, 0},
    {"allow", K_ALLOW, 0},
    {"block", K_BLOCK, 0},
    {"ports", K_PORTS, 0},
    {"listen", K_LISTEN, 0},
    {"threads", K_U32, OFF(threads)},
    {"awf_version", K_VERSION_STR, OFF(awf_version)},
    {"dns", K_SECTION, 0},
    {"dns.servers", K_DNS_SERVERS, 0},
    {"dns.hosts_file", K_STRING, OFF(dns.hosts_file)},
    {"dns.min_ttl", K_TTL, OFF(dns.min_ttl_s)},
    {"dns.max_ttl", K_TTL, OFF(dns.max_ttl_s)},
    {"dns.negative_ttl", K_TTL, OFF(dns.negative_ttl_s)},
    {"dns.forwarder", K_SECTION, 0},
    {"dns.forwarder.listen", K_FWD_LISTEN, 0},
    {"dns.forwarder.deny_rcode", K_RCODE, OFF(dns.forwarder.deny_rcode)},
    {"dns.forwarder.log", K_STRING, OFF(dns.forwarder.log)},
    {"dns.forwarder.idle", K_DURATION, OFF(dns.forwarder.idle_ms)},
    {"addresses", K_SECTION, 0},
    {"addresses.allow", K_RANGES, 0},
    {"logs", K_LOGS, 0}, /* a section in YAML, one output "[FORMAT:]PATH" for awf_policy_set */
    {"logs.outputs", K_LOGS, 0},
    {"logs.strip_query", K_BOOL, OFF(strip_query)},
    {"logs.awf_version", K_VERSION_STR, OFF(awf_version)},
    {"timeouts", K_SECTION, 0},
    {"timeouts.connect", K_DURATION, OFF(timeouts.connect_ms)},
    {"timeouts.read_idle", K_DURATION, OFF(timeouts.read_idle_ms)},
    {"timeouts.request_headers", K_DURATION, OFF(timeouts.request_headers_ms)},
    {"timeouts.client_idle", K_DURATION, OFF(timeouts.client_idle_ms)},
    {"timeouts.upstream_idle", K_DURATION, OFF(timeouts.upstream_idle_ms)},
    {"timeouts.lifetime", K_DURATION, OFF(timeouts.lifetime_ms)},
    {"timeouts.client_hello", K_DURATION, OFF(timeouts.client_hello_ms)},
    {"timeouts.shutdown_drain", K_DURATION, OFF(timeouts.shutdown_drain_ms)},
    {"timeouts.dns", K_DURATION, OFF(timeouts.dns_ms)},
    {"limits", K_SECTION, 0},
    {"limits.max_connections", K_U32, OFF(limits.max_connections)},
    {"limits.max_tunnels", K_U32, OFF(limits.max_tunnels)},
    {"limits.header_bytes", K_U32, OFF(limits.header_bytes)},
    {"limits.header_count", K_U32, OFF(limits.header_count)},
    {"tls", K_SECTION, 0},
    {"tls.sni_in_connect", K_BOOL, OFF(tls.sni_in_connect)},
    {"tls.deny_ech", K_BOOL, OFF(tls.deny_ech)},
    {"tls.alert_on_deny", K_BOOL, OFF(tls.alert_on_deny)},
    {"tunnels", K_SECTION, 0},
    {"tunnels.opaque_ports", K_OPAQUE_PORTS, 0},
    {"tunnels.opaque_hosts", K_OPAQUE_HOSTS, 0},
    {"pid_file", K_STRING, OFF(pid_file)},
    {"cache_log", K_STRING, OFF(cache_log)},
    {"parent", K_PARENT, 0},
    {"admin", K_ADMIN, 0},
    {"allow_urls", K_URLS, 0},
    {"ssl_bump", K_SECTION, 0},
    {"ssl_bump.enabled", K_BOOL, OFF(ssl_bump.enabled)},
    {"ssl_bump.ca_cert", K_STRING, OFF(ssl_bump.ca_cert)},
    {"ssl_bump.ca_key", K_STRING, OFF(ssl_bump.ca_key)},
    {"ssl_bump.upstream_ca_file", K_STRING, OFF(ssl_bump.upstream_ca_file)},
    {"ssl_bump.cert_cache", K_SIZE, OFF(ssl_bump.cert_cache_bytes)},
    {"ssl_bump.splice", K_SPLICE_HOSTS, 0},
};

const struct skey *policy_key_find(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0)
            return &keys[i];
    return NULL;
}

/* ---- value parsers: each returns 0 or -1 with the reason in why ---- */

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

static int parse_u64(const char *v, size_t len, uint64_t max, uint64_t *out)
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
    if (parse_u64(v, len, max, &x) < 0) {
        policy_quote(q, sizeof q, v, len);
        FAIL("invalid number %s: want an integer 0..%u without sign or leading zeros", q, max);
    }
    *out = (uint32_t)x;
    return 0;
}

/* "500ms", "30s", "2m", "8h"; a bare integer is seconds. */
static int parse_duration(const char *v, size_t len, uint64_t *ms, char *why, size_t whylen)
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
    if (mult == 0 || parse_u64(v, n, UINT64_C(31536000000) / mult, &x) < 0)
        FAIL("invalid duration %s: want an integer with ms, s, m or h (e.g. 500ms, 30s, 2m, 8h), "
             "at most a year",
             q);
    *ms = x * mult;
    return 0;
}

static int parse_bool(const char *v, size_t len, bool *out, char *why, size_t whylen)
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
    if (parse_u64(v, len, 65535, &x) < 0 || x == 0)
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
static int parse_listen(const char *v, size_t len, struct sockaddr_storage *ss, char *why,
                        size_t whylen)
{
    const char *colon = len ? memrchr(v, ':', len) : NULL;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    int family;
    uint8_t ip[16];
    uint64_t port;
    if (!colon || parse_u64(colon + 1, len - (size_t)(colon - v) - 1, 65535, &port) < 0)
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
static int check_dns_server(const char *v, size_t len, char *why, size_t whylen)
{
    int family;
    uint8_t ip[16];
    uint64_t port;
    char q[96];
    policy_quote(q, sizeof q, v, len);
    if (policy_ip_parse(v, len, &family, ip) == 0)
        return 0;
    const char *colon = len ? memrchr(v, ':', len) : NULL;
    if (colon && parse_u64(colon + 1, len - (size_t)(colon - v) - 1, 65535, &port) == 0 &&
        port > 0) {
        size_t alen = (size_t)(colon - v);
        bool bracketed = alen >= 2 && v[0] == '[';
        if (policy_ip_parse(v, alen, &family, ip) == 0 && (family == AF_INET6) == bracketed)
            return 0;
    }
    FAIL("invalid DNS server %s: want IP or IP:PORT (IPv6 in brackets when a port is given)", q);
}

/* "10.0.0.0/8", "fd00::/8", or one address (/32 or /128). Host bits must be clear. */
static int parse_cidr(const char *v, size_t len, struct awf_cidr *c, char *why, size_t whylen)
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
    if (slash && parse_u64(slash + 1, len - alen - 1, max, &prefix) < 0)
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
static int check_version_str(const char *v, size_t len, char *why, size_t whylen)
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
static int parse_parent(const char *v, size_t len, struct awf_parent *out, char *why, size_t whylen)
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

#undef FAIL

int policy_parse_cidr(const char *v, size_t len, struct awf_cidr *c, char *why, size_t whylen)
{
    return parse_cidr(v, len, c, why, whylen);
}

int policy_parse_listen(const char *v, size_t len, struct sockaddr_storage *ss, char *why,
                        size_t whylen)
{
    return parse_listen(v, len, ss, why, whylen);
}

/* ---- growing the settings' arrays ---- */

static void *grow(void *arr, size_t n, size_t size)
{
    /* Room for 4 first, then doubled whenever n reaches a power of two >= 4. */
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return arr;
    return realloc(arr, (n ? n * 2 : 4) * size);
}

#define PUSH(arr, n, item)                                                                         \
    do {                                                                                           \
        void *g_ = grow((arr), (n), sizeof *(arr));                                                \
        if (!g_)                                                                                   \
            return -ENOMEM;                                                                        \
        (arr) = g_;                                                                                \
        (arr)[(n)++] = (item);                                                                     \
    } while (0)

char *policy_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void free_listen(struct awf_settings *s)
{
    for (size_t i = 0; i < s->n_listen; i++)
        free(s->listen[i].text);
    free(s->listen);
    s->listen = NULL;
    s->n_listen = 0;
}

static void free_fwd_listen(struct awf_dns_forwarder_settings *f)
{
    for (size_t i = 0; i < f->n_listen; i++)
        free(f->listen[i].text);
    free(f->listen);
    f->listen = NULL;
    f->n_listen = 0;
}

static void free_logs(struct awf_settings *s)
{
    for (size_t i = 0; i < s->n_logs; i++) {
        free(s->logs[i].format);
        free(s->logs[i].path);
        free(s->logs[i].where);
    }
    free(s->logs);
    s->logs = NULL;
    s->n_logs = 0;
}

void policy_clear_dns_servers(struct awf_settings *s)
{
    for (size_t i = 0; i < s->dns.n_servers; i++)
        free(s->dns.servers[i]);
    free(s->dns.servers);
    s->dns.servers = NULL;
    s->dns.n_servers = 0;
}

void policy_settings_free(struct awf_settings *s)
{
    free_listen(s);
    free_fwd_listen(&s->dns.forwarder);
    free(s->dns.forwarder.log);
    free_logs(s);
    policy_clear_dns_servers(s);
    free(s->ports);
    free(s->tunnels.opaque_ports);
    for (size_t i = 0; i < s->tunnels.n_opaque_hosts; i++)
        free(s->tunnels.opaque_hosts[i]);
    free(s->tunnels.opaque_hosts);
    free(s->allow_ranges);
    free(s->awf_version);
    free(s->dns.hosts_file);
    free(s->pid_file);
    free(s->cache_log);
    free(s->parent.host);
    free(s->admin.text);
    policy_bump_free(&s->ssl_bump);
    memset(s, 0, sizeof *s);
}

static int push_listen(struct awf_settings *s, const char *text, size_t len,
                       const struct sockaddr_storage *ss, uint16_t intercept_port)
{
    struct awf_listen l = {.addr = *ss, .intercept_port = intercept_port};
    if (!(l.text = policy_strndup(text, len)))
        return -ENOMEM;
    void *g = grow(s->listen, s->n_listen, sizeof *s->listen);
    if (!g) {
        free(l.text);
        return -ENOMEM;
    }
    s->listen = g;
    s->listen[s->n_listen++] = l;
    return 0;
}

/* The forwarder's listen list, the same items as the proxy's. */
static int push_fwd_listen(struct awf_dns_forwarder_settings *f, const char *text, size_t len,
                           const struct sockaddr_storage *ss)
{
    struct awf_listen l = {.addr = *ss};
    if (!(l.text = policy_strndup(text, len)))
        return -ENOMEM;
    void *g = grow(f->listen, f->n_listen, sizeof *f->listen);
    if (!g) {
        free(l.text);
        return -ENOMEM;
    }
    f->listen = g;
    f->listen[f->n_listen++] = l;
    return 0;
}

static int push_log(struct awf_settings *s, const char *f, size_t flen, const char *p, size_t plen,
                    const char *where)
{
    struct awf_log_output o = {policy_strndup(f, flen), policy_strndup(p, plen), 0,
                               policy_strndup(where, strlen(where))};
    void *g = (o.format && o.path && o.where) ? grow(s->logs, s->n_logs, sizeof *s->logs) : NULL;
    if (!g) {
        free(o.format);
        free(o.path);
        free(o.where);
        return -ENOMEM;
    }
    s->logs = g;
    s->logs[s->n_logs++] = o;
    return 0;
}

static int push_str(char ***arr, size_t *n, const char *v, size_t len)
{
    char *d = policy_strndup(v, len);
    void *g = d ? grow(*arr, *n, sizeof **arr) : NULL;
    if (!g) {
        free(d);
        return -ENOMEM;
    }
    *arr = g;
    (*arr)[(*n)++] = d;
    return 0;
}

int policy_settings_defaults(struct awf_settings *s)
{
    struct sockaddr_storage ss;
    char why[8];
    memset(s, 0, sizeof *s);
    s->strip_query = true;
    s->threads = 0; /* one loop per core */
    s->dns.min_ttl_s = 0;
    s->dns.max_ttl_s = 3600;
    s->dns.negative_ttl_s = 5;
    s->tls.sni_in_connect = true;
    s->ssl_bump.cert_cache_bytes = 16u << 20;
    s->dns.forwarder.deny_rcode = 5; /* REFUSED */
    s->dns.forwarder.idle_ms = 10000;
    s->timeouts = (struct awf_timeouts){
        .connect_ms = 30000,
        .read_idle_ms = 30 * 60000,
        .request_headers_ms = 2 * 60000,
        .client_idle_ms = 2 * 60000,
        .upstream_idle_ms = 2 * 60000,
        .lifetime_ms = 8 * 3600000ull,
        .client_hello_ms = 10000,
        .shutdown_drain_ms = 0,
        .dns_ms = 5000,
    };
    s->limits = (struct awf_limits){.header_bytes = 65536, .header_count = 100};
    if (!(s->awf_version = policy_strndup("1", 1)) ||
        !(s->dns.hosts_file = policy_strndup("/etc/hosts", 10)) ||
        !(s->dns.forwarder.log = policy_strndup("stderr", 6)) ||
        parse_listen("127.0.0.1:3128", 14, &ss, why, sizeof why) < 0 ||
        push_listen(s, "127.0.0.1:3128", 14, &ss, 0) < 0 ||
        push_log(s, "firewall_detailed", 17, "-", 1, "") < 0) {
        policy_settings_free(s);
        return -ENOMEM;
    }
    return 0;
}

static int push_opaque_port(struct awf_tunnel_settings *t, const struct awf_port_range *r)
{
    PUSH(t->opaque_ports, t->n_opaque_ports, *r);
    return 0;
}

int policy_settings_copy(struct awf_settings *d, const struct awf_settings *s)
{
    *d = *s;
    d->listen = NULL, d->n_listen = 0;
    d->logs = NULL, d->n_logs = 0;
    d->dns.servers = NULL, d->dns.n_servers = 0;
    d->ports = NULL, d->allow_ranges = NULL;
    d->tunnels = (struct awf_tunnel_settings){0};
    d->awf_version = NULL, d->dns.hosts_file = NULL;
    d->dns.forwarder.listen = NULL, d->dns.forwarder.n_listen = 0, d->dns.forwarder.log = NULL;
    d->pid_file = d->cache_log = d->parent.host = d->admin.text = NULL;
    int rc = policy_bump_copy(&d->ssl_bump, &s->ssl_bump);
    if ((s->admin.text &&
         !(d->admin.text = policy_strndup(s->admin.text, strlen(s->admin.text)))) ||
        (s->pid_file && !(d->pid_file = policy_strndup(s->pid_file, strlen(s->pid_file)))) ||
        (s->cache_log && !(d->cache_log = policy_strndup(s->cache_log, strlen(s->cache_log)))) ||
        (s->parent.host &&
         !(d->parent.host = policy_strndup(s->parent.host, strlen(s->parent.host)))))
        rc = -ENOMEM;
    const struct awf_dns_forwarder_settings *sf = &s->dns.forwarder;
    for (size_t i = 0; i < sf->n_listen && !rc; i++)
        rc = push_fwd_listen(&d->dns.forwarder, sf->listen[i].text, strlen(sf->listen[i].text),
                             &sf->listen[i].addr);
    if (!rc && !(d->dns.forwarder.log = policy_strndup(sf->log, strlen(sf->log))))
        rc = -ENOMEM;
    for (size_t i = 0; i < s->n_listen && !rc; i++)
        rc = push_listen(d, s->listen[i].text, strlen(s->listen[i].text), &s->listen[i].addr,
                         s->listen[i].intercept_port);
    for (size_t i = 0; i < s->n_logs && !rc; i++)
        if (!(rc = push_log(d, s->logs[i].format, strlen(s->logs[i].format), s->logs[i].path,
                            strlen(s->logs[i].path), s->logs[i].where)))
            d->logs[i].cond = s->logs[i].cond;
    for (size_t i = 0; i < s->dns.n_servers && !rc; i++)
        rc = push_str(&d->dns.servers, &d->dns.n_servers, s->dns.servers[i],
                      strlen(s->dns.servers[i]));
    const struct awf_tunnel_settings *st = &s->tunnels;
    for (size_t i = 0; i < st->n_opaque_hosts && !rc; i++)
        rc = push_str(&d->tunnels.opaque_hosts, &d->tunnels.n_opaque_hosts, st->opaque_hosts[i],
                      strlen(st->opaque_hosts[i]));
    for (size_t i = 0; i < st->n_opaque_ports && !rc; i++)
        rc = push_opaque_port(&d->tunnels, &st->opaque_ports[i]);
    if (!rc && s->n_ports && !(d->ports = malloc(s->n_ports * sizeof *s->ports)))
        rc = -ENOMEM;
    if (!rc && s->n_allow_ranges &&
        !(d->allow_ranges = malloc(s->n_allow_ranges * sizeof *s->allow_ranges)))
        rc = -ENOMEM;
    if (!rc &&
        (!(d->awf_version = policy_strndup(s->awf_version, strlen(s->awf_version))) ||
         !(d->dns.hosts_file = policy_strndup(s->dns.hosts_file, strlen(s->dns.hosts_file)))))
        rc = -ENOMEM;
    if (rc) {
        policy_settings_free(d);
        return rc;
    }
    if (s->n_ports)
        memcpy(d->ports, s->ports, s->n_ports * sizeof *s->ports);
    if (s->n_allow_ranges)
        memcpy(d->allow_ranges, s->allow_ranges, s->n_allow_ranges * sizeof *s->allow_ranges);
    return 0;
}

int policy_push_range(struct awf_settings *s, const struct awf_cidr *c)
{
    PUSH(s->allow_ranges, s->n_allow_ranges, *c);
    return 0;
}

int policy_push_ports(struct awf_settings *s, const struct awf_port_range *r)
{
    PUSH(s->ports, s->n_ports, *r);
    return 0;
}

/* ---- setting one value ---- */

/* Port 0 (the kernel's choice) may be given any number of times. */
static bool listen_taken(const struct awf_listen *l, size_t n, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&l[i].addr, ss, sizeof *ss) == 0 &&
            ((const struct sockaddr_in *)ss)->sin_port != 0)
            return true;
    return false;
}

int policy_add_listen(struct awf_policy_builder *b, const char *v, size_t len,
                      uint16_t intercept_port, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    if (parse_listen(v, len, &ss, why, whylen) < 0)
        return AWF_E_POLICY_INVALID;
    if (b->listen_default) {
        free_listen(&b->s);
        b->listen_default = false;
    }
    if (listen_taken(b->s.listen, b->s.n_listen, &ss)) {
        snprintf(why, whylen, "%.*s given twice", (int)len, v);
        return AWF_E_POLICY_INVALID;
    }
    return push_listen(&b->s, v, len, &ss, intercept_port);
}

int policy_add_log(struct awf_policy_builder *b, const char *format, size_t flen, const char *path,
                   size_t plen, char *why, size_t whylen)
{
    if (!format) {
        format = "firewall_detailed";
        flen = strlen(format);
    }
    bool custom = flen >= 10 && memcmp(format, "logformat=", 10) == 0;
    if (custom) {
        format += 10;
        flen -= 10;
    }
    if (flen == 0) {
        snprintf(why, whylen, "empty log format");
        return AWF_E_POLICY_INVALID;
    }
    /* A misspelt name (audit_json, squidd) would otherwise be a custom format without a code,
     * every line of it that one word. The names are log/'s built-ins (log/README.md). */
    static const char *const builtin[] = {"firewall_detailed", "audit_jsonl", "squid"};
    bool known = false;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0] && !custom; i++)
        known = known || (strlen(builtin[i]) == flen && memcmp(builtin[i], format, flen) == 0);
    if (!known && !memchr(format, '%', flen)) {
        char q[96];
        policy_quote(q, sizeof q, format, flen);
        if (custom)
            snprintf(why, whylen, "logformat %s has no %% code (e.g. %%ts %%>a %%ru)", q);
        else
            snprintf(why, whylen,
                     "unknown log format %s: want firewall_detailed, audit_jsonl, squid, or a "
                     "Squid logformat string with %% codes (logformat=...)",
                     q);
        return AWF_E_POLICY_INVALID;
    }
    if (plen == 0) {
        snprintf(why, whylen, "empty log path (use - for stdout)");
        return AWF_E_POLICY_INVALID;
    }
    if (memchr(format, '\0', flen) || memchr(path, '\0', plen)) {
        snprintf(why, whylen, "NUL byte in a log output");
        return AWF_E_POLICY_INVALID;
    }
    if (b->logs_default) {
        free_logs(&b->s);
        b->logs_default = false;
    }
    return push_log(&b->s, format, flen, path, plen, b->at);
}

/* "[FORMAT:]PATH": after "logformat=" the format runs to the last ':' (Squid formats hold
 * colons); otherwise a leading name of [A-Za-z0-9_] before the first ':' is the format. */
static int add_log_spec(struct awf_policy_builder *b, const char *v, size_t len, char *why,
                        size_t whylen)
{
    if (len >= 10 && memcmp(v, "logformat=", 10) == 0) {
        const char *colon = memrchr(v, ':', len);
        if (!colon || colon < v + 10) {
            snprintf(why, whylen, "logformat=FORMAT needs :PATH after it");
            return AWF_E_POLICY_INVALID;
        }
        return policy_add_log(b, v, (size_t)(colon - v), colon + 1, len - (size_t)(colon - v) - 1,
                              why, whylen);
    }
    size_t n = 0;
    while (n < len && ((v[n] >= 'a' && v[n] <= 'z') || (v[n] >= 'A' && v[n] <= 'Z') ||
                       (v[n] >= '0' && v[n] <= '9') || v[n] == '_'))
        n++;
    if (n < len && v[n] == ':')
        return policy_add_log(b, v, n, v + n + 1, len - n - 1, why, whylen);
    return policy_add_log(b, NULL, 0, v, len, why, whylen);
}

int policy_set_item(struct awf_policy_builder *b, const struct skey *k, const char *v, size_t len,
                    char *why, size_t whylen)
{
    struct awf_settings *s = &b->s;
    char *base = (char *)s;
    uint64_t ms;
    uint32_t u;
    bool flag;
    switch (k->kind) {
    case K_VERSION:
        if (len == 1 && v[0] == '1')
            return 0;
        snprintf(why, whylen, "unsupported policy version (only 1)");
        return AWF_E_POLICY_INVALID;
    case K_DURATION:
        if (parse_duration(v, len, &ms, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        memcpy(base + k->off, &ms, sizeof ms);
        return 0;
    case K_TTL:
        if (parse_duration(v, len, &ms, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        if (ms % 1000 || ms / 1000 > UINT32_MAX) {
            snprintf(why, whylen, "a DNS TTL is whole seconds");
            return AWF_E_POLICY_INVALID;
        }
        u = (uint32_t)(ms / 1000);
        memcpy(base + k->off, &u, sizeof u);
        if (k->off == OFF(dns.min_ttl_s) || k->off == OFF(dns.max_ttl_s))
            memcpy(k->off == OFF(dns.min_ttl_s) ? b->min_ttl_at : b->max_ttl_at, b->at,
                   sizeof b->at);
        return 0;
    case K_U32:
        if (policy_parse_u32(v, len, k->off == OFF(threads) ? 1024 : UINT32_MAX, &u, why, whylen) <
            0)
            return AWF_E_POLICY_INVALID;
        if (k->off == OFF(threads)) {
            s->threads = u;
            return 0;
        }
        if (u == 0 && (k->off == OFF(limits.header_bytes) || k->off == OFF(limits.header_count))) {
            snprintf(why, whylen, "must be at least 1");
            return AWF_E_POLICY_INVALID;
        }
        memcpy(base + k->off, &u, sizeof u);
        return 0;
    case K_BOOL:
        if (parse_bool(v, len, &flag, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        memcpy(base + k->off, &flag, sizeof flag);
        return 0;
    case K_VERSION_STR:
        if (check_version_str(v, len, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        /* fallthrough */
    case K_STRING: {
        if (len == 0 && k->off == OFF(dns.forwarder.log)) {
            snprintf(why, whylen, "empty log path (use - for stdout, stderr for stderr)");
            return AWF_E_POLICY_INVALID;
        }
        if (memchr(v, '\0', len)) {
            snprintf(why, whylen, "NUL byte in a value");
            return AWF_E_POLICY_INVALID;
        }
        char *d = policy_strndup(v, len), **slot = (char **)(base + k->off);
        if (!d)
            return -ENOMEM;
        free(*slot);
        *slot = d;
        return 0;
    }
    case K_PORTS: {
        struct awf_port_range r;
        if (policy_parse_port_range(v, len, &r, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        PUSH(s->ports, s->n_ports, r);
        return 0;
    }
    case K_OPAQUE_PORTS: {
        struct awf_port_range r;
        if (policy_parse_port_range(v, len, &r, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        PUSH(s->tunnels.opaque_ports, s->tunnels.n_opaque_ports, r);
        return 0;
    }
    case K_OPAQUE_HOSTS: {
        struct parsed_entry e; /* checked here, matched from the text (awf_policy_opaque_allowed) */
        if (policy_entry_parse(v, len, false, &e, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        return push_str(&s->tunnels.opaque_hosts, &s->tunnels.n_opaque_hosts, e.text, e.text_len);
    }
    case K_SPLICE_HOSTS: {
        struct parsed_entry e; /* checked here, matched from the text (policy_host_listed) */
        if (policy_entry_parse(v, len, false, &e, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        return push_str(&s->ssl_bump.splice, &s->ssl_bump.n_splice, e.text, e.text_len);
    }
    case K_LISTEN: { /* "ADDR:PORT=N": traffic DNAT'd to this listener stood for port N */
        const char *eq = memchr(v, '=', len);
        uint64_t ip = 0;
        if (eq && (parse_u64(eq + 1, len - (size_t)(eq - v) - 1, 65535, &ip) < 0 || ip == 0)) {
            snprintf(why, whylen, "invalid intercept port after '=': want 1..65535");
            return AWF_E_POLICY_INVALID;
        }
        return policy_add_listen(b, v, eq ? (size_t)(eq - v) : len, (uint16_t)ip, why, whylen);
    }
    case K_FWD_LISTEN: {
        struct sockaddr_storage ss;
        if (parse_listen(v, len, &ss, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        if (listen_taken(s->dns.forwarder.listen, s->dns.forwarder.n_listen, &ss)) {
            snprintf(why, whylen, "%.*s given twice", (int)len, v);
            return AWF_E_POLICY_INVALID;
        }
        return push_fwd_listen(&s->dns.forwarder, v, len, &ss);
    }
    case K_RCODE:
        if (len == 7 && strncasecmp(v, "refused", 7) == 0)
            u = 5;
        else if (len == 8 && strncasecmp(v, "nxdomain", 8) == 0)
            u = 3;
        else {
            char q[96];
            policy_quote(q, sizeof q, v, len);
            snprintf(why, whylen, "invalid answer %s: want refused or nxdomain", q);
            return AWF_E_POLICY_INVALID;
        }
        memcpy(base + k->off, &(int){(int)u}, sizeof(int));
        return 0;
    case K_ADMIN: {
        struct sockaddr_storage ss;
        if (parse_listen(v, len, &ss, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        char *d = policy_strndup(v, len);
        if (!d)
            return -ENOMEM;
        free(s->admin.text);
        s->admin = (struct awf_listen){.text = d, .addr = ss};
        memcpy(b->admin_at, b->at, sizeof b->admin_at);
        return 0;
    }
    case K_PARENT:
        return parse_parent(v, len, &s->parent, why, whylen) < 0 ? AWF_E_POLICY_INVALID : 0;
    case K_DNS_SERVERS:
        if (check_dns_server(v, len, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        return push_str(&s->dns.servers, &s->dns.n_servers, v, len);
    case K_RANGES: {
        struct awf_cidr c;
        if (parse_cidr(v, len, &c, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        PUSH(s->allow_ranges, s->n_allow_ranges, c);
        return 0;
    }
    case K_LOGS:
        return add_log_spec(b, v, len, why, whylen);
    case K_URLS: {
        char *pat;
        if (policy_url_pattern(v, len, &pat, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        void *g = grow(s->ssl_bump.allow_urls, s->ssl_bump.n_allow_urls, sizeof(char *));
        if (!g) {
            free(pat);
            return -ENOMEM;
        }
        s->ssl_bump.allow_urls = g;
        s->ssl_bump.allow_urls[s->ssl_bump.n_allow_urls++] = pat;
        return 0;
    }
    case K_SIZE: {
        /* A byte count with an optional KB/MB/GB suffix (powers of 1024, as Squid reads them). */
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
        if (parse_u64(v, n, UINT32_MAX, &num) < 0 || num * mul > UINT32_MAX) {
            snprintf(why, whylen,
                     "invalid size: want bytes, or a number with KB, MB or GB, "
                     "below 4 GB");
            return AWF_E_POLICY_INVALID;
        }
        u = (uint32_t)(num * mul);
        memcpy(base + k->off, &u, sizeof u);
        return 0;
    }
    case K_SECTION:
    case K_ALLOW:
    case K_BLOCK:
        break;
    }
    snprintf(why, whylen, "not a single value");
    return AWF_E_USAGE;
}
