/* Options of the netfilter ruleset: parsing and checking. Pure: no I/O. Every rejected value is
 * named in the message, and nothing is applied after a rejection (the CLI stops first). */
#include "netfilter/netfilter-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* SPEC §8: ports whose traffic must never be redirected, only dropped and logged. */
static const uint16_t default_dangerous[] = {22,   23,   25,   110,  143,   445,   1433, 1521,
                                             3306, 3389, 5432, 6379, 27017, 27018, 28017};

/* ------------------------------------------------------------------ text buffer */

static int text_reserve(struct awf_nf_text *t, size_t extra)
{
    if (t->len + extra + 1 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + extra + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p)
        return -ENOMEM;
    t->p = p;
    t->cap = cap;
    return 0;
}

int netfilter_text_append(struct awf_nf_text *t, const char *s, size_t n)
{
    if (text_reserve(t, n) < 0)
        return -ENOMEM;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return 0;
}

int netfilter_text_printf(struct awf_nf_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || text_reserve(t, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
    return 0;
}

void awf_netfilter_text_free(struct awf_nf_text *t)
{
    free(t->p);
    t->p = NULL;
    t->len = t->cap = 0;
}

/* ------------------------------------------------------------------ parsers */

int netfilter_parse_addr(const char *s, struct awf_nf_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, &out->u.v4) == 1) {
        out->family = AWF_NF_V4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &out->u.v6) == 1) {
        out->family = AWF_NF_V6;
        return 0;
    }
    return AWF_E_USAGE;
}

int netfilter_parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 5)
        return AWF_E_USAGE;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return AWF_E_USAGE;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < 1 || v > 65535)
        return AWF_E_USAGE;
    *out = (uint16_t)v;
    return 0;
}

int netfilter_parse_endpoint(const char *s, struct awf_nf_endpoint *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    size_t hl;
    bool bracketed = s[0] == '[';

    if (bracketed) {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return AWF_E_USAGE;
        hl = (size_t)(close - s - 1);
        s++;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        /* a bare IPv6 address has several colons: it needs the brackets */
        if (!colon || strchr(s, ':') != colon)
            return AWF_E_USAGE;
        hl = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hl == 0 || hl >= sizeof(host))
        return AWF_E_USAGE;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (netfilter_parse_addr(host, &out->addr) < 0)
        return AWF_E_USAGE;
    if (bracketed && out->addr.family != AWF_NF_V6)
        return AWF_E_USAGE;
    return netfilter_parse_port(port, &out->port);
}

/* ------------------------------------------------------------------ options */

void awf_netfilter_opts_init(struct awf_nf_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->side = AWF_NF_AGENT;
    o->ipv6 = AWF_NF_IPV6_AUTO;
    memcpy(o->dangerous, default_dangerous, sizeof(default_dangerous));
    o->n_dangerous = sizeof(default_dangerous) / sizeof(default_dangerous[0]);
    o->redirects[0] = (struct awf_nf_redirect){80, 0};
    o->redirects[1] = (struct awf_nf_redirect){443, 0};
    o->n_redirects = 2;
    strcpy(o->bridge, "fw-bridge");
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return AWF_E_USAGE;
}

/* Calls fn on each comma-separated item of value (empty items are errors). */
typedef int (*item_fn)(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                       size_t errlen);

static int each_item(struct awf_nf_opts *o, const char *name, const char *value, item_fn fn,
                     char *err, size_t errlen)
{
    char item[256];
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0)
            return fail(err, errlen, "--%s: empty item in \"%s\"", name, value);
        if (n >= sizeof(item))
            return fail(err, errlen, "--%s: item too long in \"%s\"", name, value);
        memcpy(item, p, n);
        item[n] = '\0';
        int rc = fn(o, name, item, err, errlen);
        if (rc < 0)
            return rc;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static struct awf_nf_addr_list *list_for(struct awf_nf_opts *o, const char *name)
{
    if (strcmp(name, "agent-ip") == 0)
        return &o->agent;
    if (strcmp(name, "dns") == 0)
        return &o->dns;
    if (strcmp(name, "host-gateway") == 0)
        return &o->host_gw;
    return &o->sidecars;
}

static int add_addr(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                    size_t errlen)
{
    struct awf_nf_addr_list *l = list_for(o, name);
    struct awf_nf_addr a;
    if (netfilter_parse_addr(item, &a) < 0)
        return fail(err, errlen, "--%s: \"%s\" is not an IPv4 or IPv6 address", name, item);
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(&l->a[i], &a, sizeof(a)) == 0)
            return 0; /* a repeat adds nothing */
    if (l->n == AWF_NF_MAX_ADDRS)
        return fail(err, errlen, "--%s: more than %d addresses", name, AWF_NF_MAX_ADDRS);
    l->a[l->n++] = a;
    return 0;
}

static int add_redirect(struct awf_nf_opts *o, uint16_t port, uint16_t listener, const char *name,
                        const char *item, char *err, size_t errlen)
{
    for (size_t i = 0; i < o->n_redirects; i++) {
        if (o->redirects[i].port != port)
            continue;
        if (o->redirects[i].listener == listener)
            return 0;
        return fail(err, errlen, "--%s: port %u is already redirected elsewhere (\"%s\")", name,
                    port, item);
    }
    if (o->n_redirects == AWF_NF_MAX_PORTS)
        return fail(err, errlen, "--%s: more than %d redirected ports", name, AWF_NF_MAX_PORTS);
    o->redirects[o->n_redirects++] = (struct awf_nf_redirect){port, listener};
    return 0;
}

static int add_proxy_port(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                          size_t errlen)
{
    uint16_t port;
    if (netfilter_parse_port(item, &port) < 0)
        return fail(err, errlen, "--%s: \"%s\" is not a port (1-65535)", name, item);
    return add_redirect(o, port, 0, name, item, err, errlen);
}

static int add_redirect_map(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                            size_t errlen)
{
    char buf[256];
    uint16_t port, listener;
    const char *eq = strchr(item, '=');
    if (!eq)
        return fail(err, errlen, "--%s: \"%s\" is not PORT=LISTENER_PORT", name, item);
    memcpy(buf, item, (size_t)(eq - item));
    buf[eq - item] = '\0';
    if (netfilter_parse_port(buf, &port) < 0 || netfilter_parse_port(eq + 1, &listener) < 0)
        return fail(err, errlen, "--%s: \"%s\": ports must be 1-65535", name, item);
    return add_redirect(o, port, listener, name, item, err, errlen);
}

static int add_dangerous(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                         size_t errlen)
{
    uint16_t port;
    if (netfilter_parse_port(item, &port) < 0)
        return fail(err, errlen, "--%s: \"%s\" is not a port (1-65535)", name, item);
    for (size_t i = 0; i < o->n_dangerous; i++)
        if (o->dangerous[i] == port)
            return 0;
    if (o->n_dangerous == AWF_NF_MAX_PORTS)
        return fail(err, errlen, "--%s: more than %d ports", name, AWF_NF_MAX_PORTS);
    o->dangerous[o->n_dangerous++] = port;
    return 0;
}

/* "PORT" or "LO-HI" (AWF's spelling of a range in --allow-host-ports). */
static int add_host_port(struct awf_nf_opts *o, const char *name, const char *item, char *err,
                         size_t errlen)
{
    char lo_s[8] = "", hi_s[8] = "";
    const char *dash = strchr(item, '-');
    size_t n = dash ? (size_t)(dash - item) : strlen(item);
    struct awf_nf_port_range r;
    if (n < sizeof(lo_s) && (!dash || strlen(dash + 1) < sizeof(hi_s))) {
        memcpy(lo_s, item, n);
        lo_s[n] = '\0';
        strcpy(hi_s, dash ? dash + 1 : lo_s);
    }
    if (netfilter_parse_port(lo_s, &r.lo) < 0 || netfilter_parse_port(hi_s, &r.hi) < 0 ||
        r.lo > r.hi)
        return fail(err, errlen, "--%s: \"%s\" is not a port or a range LO-HI (1-65535)", name,
                    item);
    for (size_t i = 0; i < o->n_host_ports; i++)
        if (o->host_ports[i].lo == r.lo && o->host_ports[i].hi == r.hi)
            return 0;
    if (o->n_host_ports == AWF_NF_MAX_PORTS)
        return fail(err, errlen, "--%s: more than %d ports or ranges", name, AWF_NF_MAX_PORTS);
    o->host_ports[o->n_host_ports++] = r;
    return 0;
}

static int set_endpoint(struct awf_nf_endpoint *slots, bool *have, const char *name,
                        const char *value, char *err, size_t errlen)
{
    struct awf_nf_endpoint ep;
    if (netfilter_parse_endpoint(value, &ep) < 0)
        return fail(err, errlen, "--%s: \"%s\" is not ADDR:PORT or [ADDR6]:PORT (port 1-65535)",
                    name, value);
    if (have[ep.addr.family])
        return fail(err, errlen, "--%s: a second IPv%c address (\"%s\")", name,
                    ep.addr.family == AWF_NF_V4 ? '4' : '6', value);
    slots[ep.addr.family] = ep;
    have[ep.addr.family] = true;
    return 0;
}

int awf_netfilter_opts_set(struct awf_nf_opts *o, const char *name, const char *value, char *err,
                           size_t errlen)
{
    if (strcmp(name, "side") == 0) {
        if (strcmp(value, "agent") == 0)
            o->side = AWF_NF_AGENT;
        else if (strcmp(value, "host") == 0)
            o->side = AWF_NF_HOST;
        else
            return fail(err, errlen, "--side: \"%s\" is not agent or host", value);
        return 0;
    }
    if (strcmp(name, "ipv6") == 0) {
        if (strcmp(value, "auto") == 0)
            o->ipv6 = AWF_NF_IPV6_AUTO;
        else if (strcmp(value, "on") == 0)
            o->ipv6 = AWF_NF_IPV6_ON;
        else if (strcmp(value, "off") == 0)
            o->ipv6 = AWF_NF_IPV6_OFF;
        else
            return fail(err, errlen, "--ipv6: \"%s\" is not on, off or auto", value);
        return 0;
    }
    if (strcmp(name, "bridge") == 0) {
        size_t n = strlen(value);
        if (n == 0 || n >= AWF_NF_IFNAMSIZ ||
            strspn(value, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789-_.") != n)
            return fail(err, errlen, "--bridge: \"%s\" is not an interface name", value);
        memcpy(o->bridge, value, n + 1);
        return 0;
    }
    if (strcmp(name, "proxy") == 0)
        return set_endpoint(o->proxy, o->have_proxy, name, value, err, errlen);
    if (strcmp(name, "dns-forwarder") == 0)
        return set_endpoint(o->dns_fwd, o->have_dns_fwd, name, value, err, errlen);
    if (strcmp(name, "agent-ip") == 0 || strcmp(name, "dns") == 0 || strcmp(name, "sidecar") == 0 ||
        strcmp(name, "host-gateway") == 0)
        return each_item(o, name, value, add_addr, err, errlen);
    if (strcmp(name, "host-ports") == 0)
        return each_item(o, name, value, add_host_port, err, errlen);
    if (strcmp(name, "proxy-ports") == 0)
        return each_item(o, name, value, add_proxy_port, err, errlen);
    if (strcmp(name, "redirect") == 0)
        return each_item(o, name, value, add_redirect_map, err, errlen);
    if (strcmp(name, "dangerous-ports") == 0) {
        if (!o->dangerous_set) {
            o->n_dangerous = 0;
            o->dangerous_set = true;
        }
        return each_item(o, name, value, add_dangerous, err, errlen);
    }
    return fail(err, errlen, "unknown option --%s", name);
}

int awf_netfilter_opts_check(struct awf_nf_opts *o, char *err, size_t errlen)
{
    if (!o->have_proxy[AWF_NF_V4] && !o->have_proxy[AWF_NF_V6]) {
        /* AWF's topology (SPEC §9): the proxy container at 172.30.0.10:3128 */
        netfilter_parse_endpoint("172.30.0.10:3128", &o->proxy[AWF_NF_V4]);
        o->have_proxy[AWF_NF_V4] = true;
    }
    for (size_t i = 0; i < o->n_redirects; i++)
        for (size_t j = 0; j < o->n_dangerous; j++)
            if (o->redirects[i].port == o->dangerous[j])
                return fail(err, errlen,
                            "port %u is a dangerous port: it is never redirected to the proxy "
                            "(drop it from the redirected ports, or from --dangerous-ports)",
                            o->dangerous[j]);
    if ((o->have_dns_fwd[0] || o->have_dns_fwd[1]) && o->dns.n > 0)
        return fail(err, errlen,
                    "--dns and --dns-forwarder exclude each other: with the forwarder every "
                    "DNS query goes to it and no other resolver is reachable");
    if (o->side == AWF_NF_HOST && o->agent.n > 0)
        return fail(err, errlen, "--agent-ip is for --side agent");
    /* Traffic to the host gateway never crosses the host's FORWARD chain: the option would
     * change nothing there, and saying so beats a rule that looks like a hole. */
    if (o->side == AWF_NF_HOST && o->host_gw.n > 0)
        return fail(err, errlen, "--host-gateway is for --side agent");
    if (o->n_host_ports > 0 && o->host_gw.n == 0)
        return fail(err, errlen,
                    "--host-ports needs --host-gateway (the ports are let through "
                    "to the host gateway only)");
    return 0;
}
