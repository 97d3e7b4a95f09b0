/* Settings: one table of keys shared by YAML, awf_policy_set() and squid.conf, storing one value
 * by its key (read by values.c's parser for its type, so a value means the same from a file and
 * from a flag), and the settings' lists. Defaults and copies: defaults.c. */

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

void policy_clear_logs(struct awf_settings *s)
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
    policy_clear_logs(s);
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

int policy_push_listen(struct awf_settings *s, const char *text, size_t len,
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
int policy_push_fwd_listen(struct awf_dns_forwarder_settings *f, const char *text, size_t len,
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

int policy_push_log(struct awf_settings *s, const char *f, size_t flen, const char *p, size_t plen,
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

int policy_push_str(char ***arr, size_t *n, const char *v, size_t len)
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

int policy_push_opaque_port(struct awf_tunnel_settings *t, const struct awf_port_range *r)
{
    PUSH(t->opaque_ports, t->n_opaque_ports, *r);
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
    if (policy_parse_listen(v, len, &ss, why, whylen) < 0)
        return AWF_E_POLICY_INVALID;
    if (b->listen_default) {
        free_listen(&b->s);
        b->listen_default = false;
    }
    if (listen_taken(b->s.listen, b->s.n_listen, &ss)) {
        snprintf(why, whylen, "%.*s given twice", (int)len, v);
        return AWF_E_POLICY_INVALID;
    }
    return policy_push_listen(&b->s, v, len, &ss, intercept_port);
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
        policy_clear_logs(&b->s);
        b->logs_default = false;
    }
    return policy_push_log(&b->s, format, flen, path, plen, b->at);
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
        if (policy_parse_duration(v, len, &ms, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        memcpy(base + k->off, &ms, sizeof ms);
        return 0;
    case K_TTL:
        if (policy_parse_duration(v, len, &ms, why, whylen) < 0)
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
        if (policy_parse_bool(v, len, &flag, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        memcpy(base + k->off, &flag, sizeof flag);
        return 0;
    case K_VERSION_STR:
        if (policy_check_version_str(v, len, why, whylen) < 0)
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
        return policy_push_str(&s->tunnels.opaque_hosts, &s->tunnels.n_opaque_hosts, e.text,
                               e.text_len);
    }
    case K_SPLICE_HOSTS: {
        struct parsed_entry e; /* checked here, matched from the text (policy_host_listed) */
        if (policy_entry_parse(v, len, false, &e, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        return policy_push_str(&s->ssl_bump.splice, &s->ssl_bump.n_splice, e.text, e.text_len);
    }
    case K_LISTEN: { /* "ADDR:PORT=N": traffic DNAT'd to this listener stood for port N */
        const char *eq = memchr(v, '=', len);
        uint64_t ip = 0;
        if (eq &&
            (policy_parse_u64(eq + 1, len - (size_t)(eq - v) - 1, 65535, &ip) < 0 || ip == 0)) {
            snprintf(why, whylen, "invalid intercept port after '=': want 1..65535");
            return AWF_E_POLICY_INVALID;
        }
        return policy_add_listen(b, v, eq ? (size_t)(eq - v) : len, (uint16_t)ip, why, whylen);
    }
    case K_FWD_LISTEN: {
        struct sockaddr_storage ss;
        if (policy_parse_listen(v, len, &ss, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        if (listen_taken(s->dns.forwarder.listen, s->dns.forwarder.n_listen, &ss)) {
            snprintf(why, whylen, "%.*s given twice", (int)len, v);
            return AWF_E_POLICY_INVALID;
        }
        return policy_push_fwd_listen(&s->dns.forwarder, v, len, &ss);
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
        if (policy_parse_listen(v, len, &ss, why, whylen) < 0)
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
        return policy_parse_parent(v, len, &s->parent, why, whylen) < 0 ? AWF_E_POLICY_INVALID : 0;
    case K_DNS_SERVERS:
        if (policy_check_dns_server(v, len, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        return policy_push_str(&s->dns.servers, &s->dns.n_servers, v, len);
    case K_RANGES: {
        struct awf_cidr c;
        if (policy_parse_cidr(v, len, &c, why, whylen) < 0)
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
    case K_SIZE:
        if (policy_parse_size(v, len, &u, why, whylen) < 0)
            return AWF_E_POLICY_INVALID;
        memcpy(base + k->off, &u, sizeof u);
        return 0;
    case K_SECTION:
    case K_ALLOW:
    case K_BLOCK:
        break;
    }
    snprintf(why, whylen, "not a single value");
    return AWF_E_USAGE;
}
