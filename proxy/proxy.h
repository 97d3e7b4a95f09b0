#ifndef AWF_PROXY_PROXY_H
#define AWF_PROXY_PROXY_H

/* The proxy on one event loop: listeners, connections, HTTP forwarding, CONNECT tunnels. proxy/'s
 * public header. Uses policy/, dns/, log/, tls/ (ssl-bump) and common/; nothing uses proxy/ but
 * the command line (cli/). */

#include <stdint.h>
#include <uv.h>

#include "dns/dns.h"
#include "log/log.h"
#include "policy/policy.h"

struct awf_proxy;

/* What a logged transaction was, for the requests counter. */
enum awf_proxy_decision {
    AWF_DECISION_ALLOWED, /* the policy let it out (whatever came back) */
    AWF_DECISION_DENIED,  /* TCP_DENIED */
    AWF_DECISION_NONE,    /* nothing decided: bad request, client gone before a head, overload */
    AWF_DECISION_N,
};
#define AWF_PROXY_STATUS_SLOTS 601 /* status sent to the client 0..599; 600: anything else */

/* One proxy's (one loop's) counters for /metrics. Only that loop writes them
 * (common/counter.h: no locked instruction, nothing shared with another loop on the hot path);
 * any thread may read them with awf_counter_get and sum the loops. */
struct awf_proxy_counters {
    uint64_t requests[AWF_DECISION_N][AWF_PROXY_STATUS_SLOTS]; /* transactions, when they end */
    uint64_t bytes_from_clients, bytes_to_clients;             /* of ended transactions */
    uint64_t conns_accepted, conns_closed;
    uint64_t tunnels_opened, tunnels_closed; /* CONNECT, intercepted TLS, WebSocket */
    uint64_t health_probes;   /* loopback connections closed before any byte: never logged */
    struct awf_dns_stats dns; /* this loop's resolver */
};

/* Creates a proxy on loop with policy (takes its own reference) and log (borrowed; must outlive
 * the proxy). Creates the loop's resolver from the policy's DNS settings. Returns 0 or a negative
 * code with err saying why. */
int awf_proxy_create(uv_loop_t *loop, struct awf_policy *policy, struct awf_log *log,
                     struct awf_proxy **out, char *err, size_t errlen);
/* The same, counting into counters (borrowed: zeroed by the caller, and must outlive the proxy
 * so that a reader on another thread never sees them freed). NULL: counters of its own. */
int awf_proxy_create_counted(uv_loop_t *loop, struct awf_policy *policy, struct awf_log *log,
                             struct awf_proxy_counters *counters, struct awf_proxy **out, char *err,
                             size_t errlen);

/* Binds and listens on every address of the policy's settings. Returns 0, or a negative code
 * with err naming the address (nothing is left listening then). */
int awf_proxy_listen(struct awf_proxy *px, char *err, size_t errlen);

/* Several loops (threads), each with its own proxy, may bind the same addresses: listeners set
 * SO_REUSEPORT (awf_proxy_listen does when the settings' threads is not 1; this always does)
 * and the kernel spreads new connections over them. With port 0, listen on the
 * first proxy, then pass what awf_proxy_bound() returned to the others' awf_proxy_listen_at():
 * bound[i] stands for the settings' listener i (same order, n equal to their count; intercept
 * ports follow the index). Returns 0, or a negative code with err saying why.
 * Each proxy knows only its own connections: loop detection of intercepted traffic coming back
 * from our own upstream connections sees the connections of its loop only. */
int awf_proxy_listen_at(struct awf_proxy *px, const struct sockaddr_storage *bound, size_t n,
                        char *err, size_t errlen);

/* Makes px count connections and tunnels for limits.max_connections and limits.max_tunnels
 * together with with (and every proxy sharing with it), so that the limits hold for the process,
 * not per loop. Call before px accepts anything (after create, before listen), from the thread
 * that created both. Each proxy's own figures stay in awf_proxy_stats. */
void awf_proxy_share_limits(struct awf_proxy *px, struct awf_proxy *with);

/* Makes px's resolver use with's DNS cache, so a name resolved on one loop is a cache hit on
 * the others. Call before px accepts anything, from the thread that created both. */
void awf_proxy_share_dns_cache(struct awf_proxy *px, struct awf_proxy *with);

struct awf_tls_bump;
/* ssl-bump: px bumps TLS with tls (tls/tls.h; borrowed: must outlive px; NULL: never bumps).
 * One context per process, given to every loop's proxy before it accepts anything. */
void awf_proxy_set_tls(struct awf_proxy *px, struct awf_tls_bump *tls);
/* Makes px bump with with's context (the workers of cli/). */
void awf_proxy_share_tls(struct awf_proxy *px, struct awf_proxy *with);

/* The addresses actually bound (port 0 in the settings becomes the kernel's choice), for the
 * readiness line "awf-proxy: listening on ADDR:PORT" the command line prints. Returns how many. */
size_t awf_proxy_bound(const struct awf_proxy *px, struct sockaddr_storage *out, size_t max);

/* New connections use policy from now on (takes its own reference); connections in flight keep
 * the one they started with. Listen addresses and DNS servers do not change on reload. */
void awf_proxy_set_policy(struct awf_proxy *px, struct awf_policy *policy);

/* The loop's resolver answers from h from now on (a reload's hosts file; the resolver takes its
 * own reference). Call on px's loop thread. */
void awf_proxy_set_hosts(struct awf_proxy *px, struct awf_dns_hosts_file *h);

/* Stops accepting. Open connections are closed after drain_ms (0: now), each logged once; then
 * every handle is closed and px freed, after which done(arg) runs on the loop. */
void awf_proxy_shutdown(struct awf_proxy *px, uint64_t drain_ms, void (*done)(void *arg),
                        void *arg);

struct awf_proxy_stats {
    uint64_t accepted;
    uint64_t active;
    uint64_t tunnels;
    uint64_t buffers_in_use;
};
void awf_proxy_stats(const struct awf_proxy *px, struct awf_proxy_stats *out);

#endif
