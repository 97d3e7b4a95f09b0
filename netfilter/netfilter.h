#ifndef AWF_NETFILTER_NETFILTER_H
#define AWF_NETFILTER_NETFILTER_H

/* The agent's firewall (SPEC §8): iptables/ip6tables rulesets built in memory from options and
 * loaded with one `iptables-restore --noflush` per table and family.
 *
 * Two halves kept apart on purpose:
 *  - building is pure: options in, iptables-restore text out (opts.c, rules.c). The text
 *    is written in the canonical form iptables-save prints, so what `print` shows is byte for byte
 *    what the kernel reports back after `apply`.
 *  - applying runs iptables-save / iptables-restore with fork+exec, text on stdin, no shell
 *    (apply.c), saves each table first and restores it when a later table fails.
 *
 * Everything lives in chains of our own (AWF_OUTPUT, AWF_NAT on the agent side, FW_WRAPPER on the
 * host side) reached by one jump each, so apply is idempotent and remove deletes only what apply
 * added. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum awf_nf_side {
    AWF_NF_AGENT, /* inside the agent's namespace: OUTPUT -> AWF_OUTPUT (filter), AWF_NAT (nat) */
    AWF_NF_HOST,  /* on the host: DOCKER-USER (or FORWARD) -i BRIDGE -> FW_WRAPPER (filter) */
};

enum awf_nf_family { AWF_NF_V4 = 0, AWF_NF_V6 = 1 };
enum awf_nf_table { AWF_NF_FILTER = 0, AWF_NF_NAT = 1 };

enum awf_nf_ipv6 {
    AWF_NF_IPV6_AUTO, /* ip6tables rules when ip6tables works, else IPv6 disabled by sysctl */
    AWF_NF_IPV6_ON,   /* ip6tables rules; failing to use ip6tables is an error */
    AWF_NF_IPV6_OFF,  /* no ip6tables rules; IPv6 disabled by sysctl */
};

struct awf_nf_addr {
    enum awf_nf_family family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

struct awf_nf_endpoint {
    struct awf_nf_addr addr;
    uint16_t port;
};

/* tcp PORT is DNAT'd to the proxy's address at port LISTENER (0: the proxy's own port). */
struct awf_nf_redirect {
    uint16_t port;
    uint16_t listener;
};

#define AWF_NF_MAX_ADDRS 32
#define AWF_NF_MAX_PORTS 64
#define AWF_NF_IFNAMSIZ  16

struct awf_nf_addr_list {
    struct awf_nf_addr a[AWF_NF_MAX_ADDRS];
    size_t n;
};

/* tcp ports lo..hi (lo == hi: one port), as --dport takes them. */
struct awf_nf_port_range {
    uint16_t lo, hi;
};

/* Plain data, no allocation: copy it, embed it, throw it away. Fill with awf_netfilter_opts_init,
 * awf_netfilter_opts_set, then awf_netfilter_opts_check. */
struct awf_nf_opts {
    enum awf_nf_side side;
    enum awf_nf_ipv6 ipv6;
    struct awf_nf_endpoint proxy[2]; /* by family */
    bool have_proxy[2];
    struct awf_nf_endpoint dns_fwd[2]; /* awf-proxy's DNS forwarder, by family */
    bool have_dns_fwd[2];
    struct awf_nf_addr_list agent, dns, sidecars;
    /* The host gateway (AWF's host access): never redirected, and only tcp 80, 443 and the
     * host_ports let through to it, as AWF's setup-iptables.sh does. */
    struct awf_nf_addr_list host_gw;
    struct awf_nf_port_range host_ports[AWF_NF_MAX_PORTS];
    size_t n_host_ports;
    struct awf_nf_redirect redirects[AWF_NF_MAX_PORTS];
    size_t n_redirects;
    uint16_t dangerous[AWF_NF_MAX_PORTS];
    size_t n_dangerous;
    char bridge[AWF_NF_IFNAMSIZ];
    bool dangerous_set; /* --dangerous-ports given (replaces the default list) */
};

/* Defaults: agent side, IPv6 auto, the SPEC's dangerous ports, tcp 80 and 443 redirected to the
 * proxy, bridge "fw-bridge". No proxy yet: opts_check falls back to AWF's 172.30.0.10:3128. */
void awf_netfilter_opts_init(struct awf_nf_opts *o);

/* Sets one option by its command-line name without the dashes: side, proxy, proxy-ports,
 * redirect, agent-ip, dns, dns-forwarder, sidecar, host-gateway, host-ports, dangerous-ports,
 * ipv6, bridge. Lists are
 * comma-separated and accumulate over repeated calls (dangerous-ports replaces the default on its
 * first use). Returns 0, or AWF_E_USAGE with a sentence in err (errlen bytes) naming the value. */
int awf_netfilter_opts_set(struct awf_nf_opts *o, const char *name, const char *value, char *err,
                           size_t errlen);

/* Checks what single options cannot: a redirected port that is a dangerous port, --dns with
 * --dns-forwarder, a redirect listener without a proxy, etc. Fills in the default proxy.
 * Returns 0 or AWF_E_USAGE with err filled. */
int awf_netfilter_opts_check(struct awf_nf_opts *o, char *err, size_t errlen);

/* A growable text buffer. Zero-initialised it owns nothing; awf_netfilter_text_free releases it. */
struct awf_nf_text {
    char *p; /* NUL-terminated when len > 0 */
    size_t len, cap;
};
void awf_netfilter_text_free(struct awf_nf_text *t);

/* ---- applying (apply.c): runs the tools; needs root. ---- */

enum awf_nf_action { AWF_NF_PRINT, AWF_NF_APPLY, AWF_NF_REMOVE };

/* Everything an action will do, decided before anything changes. */
struct awf_nf_plan {
    enum awf_nf_action action;
    struct awf_nf_text load[2][2];  /* [family][table]: restore input; empty = leave alone */
    struct awf_nf_text saved[2][2]; /* iptables-save -t before, for rollback */
    bool saved_ok[2][2];
    bool v6_rules;      /* ip6tables is part of the plan */
    bool v6_sysctl;     /* apply disables IPv6 by sysctl instead */
    bool state_unknown; /* the current rules could not be read (print as non-root) */
    char v6_reason[160];
    char sysctl_scope[AWF_NF_IFNAMSIZ + 8]; /* "all"+"default" (agent) or the bridge (host) */
};

/* Reads the current tables and builds the plan. For AWF_NF_PRINT a failure to read the tables is
 * not an error: the plan is then for a namespace without our rules (state_unknown). Returns 0,
 * or a negative code with err filled (apply/remove cannot read the tables, ip6tables required
 * but unusable, out of memory). */
int awf_netfilter_plan(const struct awf_nf_opts *o, enum awf_nf_action action,
                       struct awf_nf_plan *plan, char *err, size_t errlen);

/* The plan as text: a "# ..." header line before each table's input, and the sysctl note. This
 * is what print shows and what --audit-file records. Returns 0 or -ENOMEM. */
int awf_netfilter_plan_text(const struct awf_nf_plan *plan, struct awf_nf_text *out);

/* Loads the plan: each table with iptables-restore --noflush (IPv4 filter, nat, then IPv6), then
 * the sysctl. When a load fails, every table loaded before it is restored from its saved copy and
 * AWF_E_NETFILTER is returned with the tool's message in err (and whether the rollback worked). */
int awf_netfilter_commit(const struct awf_nf_plan *plan, char *err, size_t errlen);

void awf_netfilter_plan_free(struct awf_nf_plan *plan);

#endif
