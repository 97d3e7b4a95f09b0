/* The rulesets of SPEC §8 as iptables-restore text. Pure: options and the scanned state of a
 * table in, text out.
 *
 * Every rule is written the way iptables-save prints it back (-m tcp after -p tcp, 60/min as
 * 1/sec, /32 on addresses, the default LOG level left out), so the text `print` shows can be
 * compared byte for byte with what the kernel holds after `apply`. */
#include "netfilter/netfilter-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

/* multiport takes at most 15 ports per rule */
#define MULTIPORT_MAX 15

/* Logging of blocked packets (review finding M3): NEW connections only, so the log is one line
 * per attempt and not per packet, at 60/min with a burst of 60 (iptables-save shows 60/min as
 * 1/sec). */
#define LOG_LIMIT "-m conntrack --ctstate NEW -m limit --limit 1/sec --limit-burst 60 -j LOG"

/* Rules are appended with a sticky error so the builders read as the ruleset they write. */
struct out {
    struct awf_nf_text *t;
    const char *chain;
    enum awf_nf_family fam;
    int rc;
};

__attribute__((format(printf, 2, 3))) static void rule(struct out *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (w->rc == 0)
        w->rc = netfilter_text_printf(w->t, "-A %s %s\n", w->chain, line);
}

/* "1.2.3.4/32" or "fd00::1/128": how iptables-save prints a host address. */
static const char *host(const struct awf_nf_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->family == AWF_NF_V4)
        inet_ntop(AF_INET, &a->u.v4, ip, sizeof(ip));
    else
        inet_ntop(AF_INET6, &a->u.v6, ip, sizeof(ip));
    snprintf(buf, len, "%s/%d", ip, a->family == AWF_NF_V4 ? 32 : 128);
    return buf;
}

/* DNAT target: "1.2.3.4:3128" or "[fd00::1]:3128". */
static const char *dnat_to(const struct awf_nf_addr *a, uint16_t port, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->family == AWF_NF_V4) {
        inet_ntop(AF_INET, &a->u.v4, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, port);
    } else {
        inet_ntop(AF_INET6, &a->u.v6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, port);
    }
    return buf;
}

const char *netfilter_chain(enum awf_nf_side side, enum awf_nf_table table)
{
    if (side == AWF_NF_HOST)
        return table == AWF_NF_FILTER ? "FW_WRAPPER" : NULL;
    return table == AWF_NF_FILTER ? "AWF_OUTPUT" : "AWF_NAT";
}

const char *netfilter_hook(enum awf_nf_side side, const struct awf_nf_table_state *st)
{
    if (side == AWF_NF_AGENT)
        return "OUTPUT";
    /* Without Docker's DOCKER-USER (Docker not running, or no ip6tables support in Docker) the
     * wrapper is reached from FORWARD itself, so the chain is never left unjumped-to. */
    return st->docker_user_present ? "DOCKER-USER" : "FORWARD";
}

/* The jump as iptables-save prints it, without the leading "-A ". */
static void jump_spec(const struct awf_nf_opts *o, enum awf_nf_table table,
                      const struct awf_nf_table_state *st, char *buf, size_t len)
{
    const char *hook = netfilter_hook(o->side, st);
    const char *chain = netfilter_chain(o->side, table);
    if (chain == NULL) { /* a table this side does not use: no jump */
        buf[0] = '\0';
        return;
    }
    if (o->side == AWF_NF_HOST)
        snprintf(buf, len, "%s -i %s -j %s", hook, o->bridge, chain);
    else
        snprintf(buf, len, "%s -j %s", hook, chain);
}

/* ------------------------------------------------------------------ pieces shared by sides */

/* The ports the proxy listens on for this family: its own port, then each distinct listener
 * that a redirect names. Returns how many were written to ports. */
static size_t proxy_ports(const struct awf_nf_opts *o, enum awf_nf_family fam,
                          uint16_t ports[AWF_NF_MAX_PORTS + 1])
{
    size_t n = 0;
    ports[n++] = o->proxy[fam].port;
    for (size_t i = 0; i < o->n_redirects; i++) {
        uint16_t l = o->redirects[i].listener;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen = seen || ports[j] == l;
        if (l != 0 && !seen)
            ports[n++] = l;
    }
    return n;
}

static bool have_fwd(const struct awf_nf_opts *o)
{
    return o->have_dns_fwd[AWF_NF_V4] || o->have_dns_fwd[AWF_NF_V6];
}

/* ACCEPT rules for DNS, the proxy and the sidecars: the only ways out. */
static void accept_allowed(struct out *w, const struct awf_nf_opts *o)
{
    char a[64];
    enum awf_nf_family f = w->fam;

    if (have_fwd(o)) {
        /* filter sees the destination after DNAT: the forwarder itself */
        if (o->have_dns_fwd[f]) {
            const struct awf_nf_endpoint *e = &o->dns_fwd[f];
            rule(w, "-d %s -p udp -m udp --dport %u -j ACCEPT", host(&e->addr, a, sizeof(a)),
                 e->port);
            rule(w, "-d %s -p tcp -m tcp --dport %u -j ACCEPT", host(&e->addr, a, sizeof(a)),
                 e->port);
        }
    } else {
        for (size_t i = 0; i < o->dns.n; i++) {
            if (o->dns.a[i].family != f)
                continue;
            rule(w, "-d %s -p udp -m udp --dport 53 -j ACCEPT", host(&o->dns.a[i], a, sizeof(a)));
            rule(w, "-d %s -p tcp -m tcp --dport 53 -j ACCEPT", host(&o->dns.a[i], a, sizeof(a)));
        }
    }
    if (o->have_proxy[f]) {
        uint16_t ports[AWF_NF_MAX_PORTS + 1];
        size_t n = proxy_ports(o, f, ports);
        for (size_t i = 0; i < n; i++)
            rule(w, "-d %s -p tcp -m tcp --dport %u -j ACCEPT", host(&o->proxy[f].addr, a, 64),
                 ports[i]);
    }
    for (size_t i = 0; i < o->sidecars.n; i++)
        if (o->sidecars.a[i].family == f)
            rule(w, "-d %s -p tcp -j ACCEPT", host(&o->sidecars.a[i], a, sizeof(a)));
    /* The host gateway: only the web ports and those the operator named (AWF's
     * --allow-host-ports, --allow-host-service-ports), not every service the host runs. These
     * come before the dangerous-port drop: a named port (a database of a CI service container)
     * is reachable on the gateway only. */
    for (size_t i = 0; i < o->host_gw.n; i++) {
        if (o->host_gw.a[i].family != f)
            continue;
        host(&o->host_gw.a[i], a, sizeof(a));
        rule(w, "-d %s -p tcp -m tcp --dport 80 -j ACCEPT", a);
        rule(w, "-d %s -p tcp -m tcp --dport 443 -j ACCEPT", a);
        for (size_t j = 0; j < o->n_host_ports; j++) {
            const struct awf_nf_port_range *r = &o->host_ports[j];
            if ((r->lo == 80 || r->lo == 443) && r->lo == r->hi)
                continue;
            if (r->lo == r->hi)
                rule(w, "-d %s -p tcp -m tcp --dport %u -j ACCEPT", a, r->lo);
            else
                rule(w, "-d %s -p tcp -m tcp --dport %u:%u -j ACCEPT", a, r->lo, r->hi);
        }
    }
}

/* "-p tcp -m multiport --dports 22,23,..." for ports [from, from+n). */
static void multiport(char *buf, size_t len, const uint16_t *ports, size_t n)
{
    size_t off = (size_t)snprintf(buf, len, "-p tcp -m multiport --dports ");
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%u", i ? "," : "", ports[i]);
}

/* The blocked traffic, each class logged (NEW only, limited) under its own prefix and then
 * stopped by the verdict for that class. Dangerous ports come first so they are logged as such
 * and not as plain tcp. ICMP is named explicitly (review finding L1). */
static void block_rest(struct out *w, const struct awf_nf_opts *o, const char *tcp_verdict,
                       const char *other_verdict)
{
    char mp[512];
    const char *icmp = w->fam == AWF_NF_V4 ? "icmp" : "ipv6-icmp";

    for (size_t i = 0; i < o->n_dangerous; i += MULTIPORT_MAX) {
        size_t n = o->n_dangerous - i < MULTIPORT_MAX ? o->n_dangerous - i : MULTIPORT_MAX;
        multiport(mp, sizeof(mp), o->dangerous + i, n);
        rule(w, "%s " LOG_LIMIT " --log-prefix \"[FW_BLOCKED_DANGEROUS_PORT] \"", mp);
        rule(w, "%s %s", mp, tcp_verdict);
    }
    rule(w, "-p %s " LOG_LIMIT " --log-prefix \"[FW_BLOCKED_ICMP] \"", icmp);
    rule(w, "-p %s %s", icmp, other_verdict);
    rule(w, "-p tcp " LOG_LIMIT " --log-prefix \"[FW_BLOCKED_TCP] \"");
    rule(w, "-p tcp %s", tcp_verdict);
    rule(w, "-p udp " LOG_LIMIT " --log-prefix \"[FW_BLOCKED_UDP] \"");
    rule(w, "-p udp %s", other_verdict);
    /* anything else (sctp, gre, raw ip): the audit trail has no hole for it either */
    rule(w, LOG_LIMIT " --log-prefix \"[FW_BLOCKED_OTHER] \"");
    rule(w, "%s", other_verdict);
}

/* ------------------------------------------------------------------ agent side */

static void agent_filter(struct out *w, const struct awf_nf_opts *o)
{
    rule(w, "-o lo -j ACCEPT");
    rule(w, "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    if (w->fam == AWF_NF_V6) {
        /* what IPv6 itself needs: router solicitation, neighbour solicitation and
         * advertisement, MLDv2 reports. Nothing that carries data (no echo). */
        static const int needed[] = {133, 135, 136, 143};
        for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
            rule(w, "-p ipv6-icmp -m icmp6 --icmpv6-type %d -j ACCEPT", needed[i]);
    }
    accept_allowed(w, o);
    block_rest(w, o, "-j DROP", "-j DROP");
}

static void agent_nat(struct out *w, const struct awf_nf_opts *o)
{
    char a[64], to[80];
    enum awf_nf_family f = w->fam;

    if (o->have_dns_fwd[f]) {
        /* First, before any RETURN: every query, whatever resolver it names (Docker's
         * 127.0.0.11 included), goes to the forwarder, which answers only allowed names. */
        const struct awf_nf_endpoint *e = &o->dns_fwd[f];
        dnat_to(&e->addr, e->port, to, sizeof(to));
        rule(w, "-p udp -m udp --dport 53 -j DNAT --to-destination %s", to);
        rule(w, "-p tcp -m tcp --dport 53 -j DNAT --to-destination %s", to);
    }
    /* Local traffic and traffic to the proxy, the agent itself and the sidecars is never
     * redirected; Docker's own DNAT for 127.0.0.11 in OUTPUT runs after our RETURN. */
    rule(w, "-o lo -j RETURN");
    rule(w, "-d %s -j RETURN", f == AWF_NF_V4 ? "127.0.0.0/8" : "::1/128");
    for (size_t i = 0; i < o->agent.n; i++)
        if (o->agent.a[i].family == f)
            rule(w, "-d %s -j RETURN", host(&o->agent.a[i], a, sizeof(a)));
    if (o->have_proxy[f])
        rule(w, "-d %s -j RETURN", host(&o->proxy[f].addr, a, sizeof(a)));
    for (size_t i = 0; i < o->sidecars.n; i++)
        if (o->sidecars.a[i].family == f)
            rule(w, "-d %s -j RETURN", host(&o->sidecars.a[i], a, sizeof(a)));
    /* the host gateway is reached directly (MCP gateways speak what a proxy cannot relay); the
     * filter decides which of its ports */
    for (size_t i = 0; i < o->host_gw.n; i++)
        if (o->host_gw.a[i].family == f)
            rule(w, "-d %s -j RETURN", host(&o->host_gw.a[i], a, sizeof(a)));
    if (!have_fwd(o)) {
        for (size_t i = 0; i < o->dns.n; i++) {
            if (o->dns.a[i].family != f)
                continue;
            rule(w, "-d %s -p udp -m udp --dport 53 -j RETURN", host(&o->dns.a[i], a, sizeof(a)));
            rule(w, "-d %s -p tcp -m tcp --dport 53 -j RETURN", host(&o->dns.a[i], a, sizeof(a)));
        }
    }
    /* dangerous ports are never redirected: they fall through to the filter's LOG+DROP */
    for (size_t i = 0; i < o->n_dangerous; i += MULTIPORT_MAX) {
        char mp[512];
        size_t n = o->n_dangerous - i < MULTIPORT_MAX ? o->n_dangerous - i : MULTIPORT_MAX;
        multiport(mp, sizeof(mp), o->dangerous + i, n);
        rule(w, "%s -j RETURN", mp);
    }
    if (!o->have_proxy[f])
        return; /* no proxy address in this family: nothing to redirect to, filter drops it */
    for (size_t i = 0; i < o->n_redirects; i++) {
        const struct awf_nf_redirect *r = &o->redirects[i];
        dnat_to(&o->proxy[f].addr, r->listener ? r->listener : o->proxy[f].port, to, sizeof(to));
        rule(w, "-p tcp -m tcp --dport %u -j DNAT --to-destination %s", r->port, to);
    }
}

/* ------------------------------------------------------------------ host side */

static void host_filter(struct out *w, const struct awf_nf_opts *o)
{
    char a[64];
    enum awf_nf_family f = w->fam;
    const char *unreach = f == AWF_NF_V4 ? "icmp-port-unreachable" : "icmp6-port-unreachable";
    char reject[64];
    snprintf(reject, sizeof(reject), "-j REJECT --reject-with %s", unreach);

    /* the proxy is the one container that reaches the outside */
    if (o->have_proxy[f])
        rule(w, "-s %s -j ACCEPT", host(&o->proxy[f].addr, a, sizeof(a)));
    rule(w, "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    accept_allowed(w, o);
    /* no multicast, no link-local (cloud metadata lives at 169.254.169.254) */
    rule(w, "-m addrtype --dst-type MULTICAST %s", reject);
    if (f == AWF_NF_V4) {
        rule(w, "-d 169.254.0.0/16 %s", reject);
        rule(w, "-d 224.0.0.0/4 %s", reject);
    } else {
        rule(w, "-d fe80::/10 %s", reject);
        rule(w, "-d ff00::/8 %s", reject);
    }
    block_rest(w, o, "-j REJECT --reject-with tcp-reset", reject);
}

/* ------------------------------------------------------------------ tables */

int netfilter_build(const struct awf_nf_opts *o, enum awf_nf_family fam, enum awf_nf_table table,
                    const struct awf_nf_table_state *st, struct awf_nf_text *out)
{
    const char *chain = netfilter_chain(o->side, table);
    if (!chain)
        return 0;
    struct out w = {.t = out, .chain = chain, .fam = fam, .rc = 0};
    char jump[128];
    jump_spec(o, table, st, jump, sizeof(jump));

    /* Declaring our chain in --noflush mode creates it, or flushes it when it exists: the
     * rules below replace the previous ones in the same transaction. */
    w.rc = netfilter_text_printf(out, "*%s\n:%s - [0:0]\n",
                                 table == AWF_NF_FILTER ? "filter" : "nat", chain);
    if (w.rc == 0 && !st->jump_present) {
        /* "-I HOOK 1 ..." (saved back as "-A HOOK ..."): ahead of whatever else is there */
        const char *sp = strchr(jump, ' ');
        w.rc = netfilter_text_printf(out, "-I %.*s 1%s\n", (int)(sp - jump), jump, sp);
    }
    if (o->side == AWF_NF_HOST)
        host_filter(&w, o);
    else if (table == AWF_NF_FILTER)
        agent_filter(&w, o);
    else
        agent_nat(&w, o);
    if (w.rc == 0)
        w.rc = netfilter_text_printf(out, "COMMIT\n");
    return w.rc;
}

/* ------------------------------------------------------------------ reading iptables-save */

/* Calls fn on each line of save (without its newline). */
static void each_line(const char *save, void (*fn)(const char *line, size_t n, void *arg),
                      void *arg)
{
    const char *p = save;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fn(p, n, arg);
        p = nl ? nl + 1 : NULL;
    }
}

static bool line_is(const char *line, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(line, s, n) == 0;
}

/* ":NAME POLICY [x:y]": does the line declare chain name? */
static bool declares(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k + 1 && line[0] == ':' && memcmp(line + 1, name, k) == 0 && line[k + 1] == ' ';
}

/* "-A X ... -j NAME": does the rule jump to name? */
static bool jumps_to(const char *line, size_t n, const char *name)
{
    char tail[64];
    int k = snprintf(tail, sizeof(tail), " -j %s", name);
    return n > 3 && memcmp(line, "-A ", 3) == 0 && n >= (size_t)k &&
           memcmp(line + n - (size_t)k, tail, (size_t)k) == 0;
}

struct scan_arg {
    const char *chain;
    const char *jump; /* "-A HOOK ... -j CHAIN" looked for; NULL in the first pass */
    struct awf_nf_table_state *st;
};

static void scan_line(const char *line, size_t n, void *arg)
{
    struct scan_arg *a = arg;
    if (!a->jump) {
        if (declares(line, n, a->chain))
            a->st->chain_present = true;
        if (declares(line, n, "DOCKER-USER"))
            a->st->docker_user_present = true;
    } else if (line_is(line, n, a->jump)) {
        a->st->jump_present = true;
    }
}

void netfilter_scan(const char *save, const struct awf_nf_opts *o, enum awf_nf_table table,
                    struct awf_nf_table_state *st)
{
    memset(st, 0, sizeof(*st));
    struct scan_arg a = {.chain = netfilter_chain(o->side, table), .jump = NULL, .st = st};
    if (!a.chain)
        return;
    each_line(save, scan_line, &a);
    char jump[160], spec[128];
    jump_spec(o, table, st, spec, sizeof(spec));
    snprintf(jump, sizeof(jump), "-A %s", spec);
    a.jump = jump;
    each_line(save, scan_line, &a);
}

struct remove_arg {
    const char *chain;
    struct awf_nf_text *out;
    bool chain_present, any;
    int rc;
};

static void remove_line(const char *line, size_t n, void *arg)
{
    struct remove_arg *a = arg;
    if (declares(line, n, a->chain))
        a->chain_present = true;
    /* a rule inside our own chain goes with the chain; any other jump to it is deleted as
     * saved, whichever hook chain (or bridge name) it was added with */
    size_t k = strlen(a->chain);
    bool own = n > 3 + k && memcmp(line + 3, a->chain, k) == 0 && line[3 + k] == ' ';
    if (jumps_to(line, n, a->chain) && !own && a->rc == 0) {
        a->rc = netfilter_text_printf(a->out, "-D %.*s\n", (int)(n - 3), line + 3);
        a->any = true;
    }
}

int netfilter_build_remove(const char *save, enum awf_nf_side side, enum awf_nf_table table,
                           struct awf_nf_text *out)
{
    const char *chain = netfilter_chain(side, table);
    if (!chain)
        return 0;
    /* the deletions are collected apart so nothing is appended when there is nothing to do */
    struct awf_nf_text body = {0};
    struct remove_arg a = {.chain = chain, .out = &body};
    each_line(save, remove_line, &a);
    int rc = a.rc;
    if (rc == 0 && a.chain_present)
        rc = netfilter_text_printf(&body, "-F %s\n-X %s\n", chain, chain);
    if (rc == 0 && body.len > 0)
        rc = netfilter_text_printf(out, "*%s\n%sCOMMIT\n",
                                   table == AWF_NF_FILTER ? "filter" : "nat", body.p);
    awf_netfilter_text_free(&body);
    return rc;
}
