#ifndef AWF_DNS_FORWARDER_H
#define AWF_DNS_FORWARDER_H

/* The DNS forwarder for agents (SPEC §4): UDP and TCP listeners that answer A, AAAA and CNAME
 * queries for the names the policy allows, from the upstream servers' own records (the CNAME
 * chain with its TTLs) and a cache, and REFUSED (or NXDOMAIN) for every other name without
 * asking anyone. Each query is logged as one line. One forwarder per loop; not thread-safe.
 * dns/README.md describes the behaviour and the log format. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "dns/dns.h"
#include "policy/policy.h"

struct awf_dns_fwd;

/* Starts a forwarder on loop for the policy's dns.forwarder settings: binds UDP and TCP on each
 * listen address (port 0: one free port, the same for both), opens the query log. Takes its
 * own reference to policy. dns: the resolver to ask through (borrowed; must outlive the
 * forwarder), or NULL to create one from the policy's dns settings (servers, TTLs,
 * timeouts.dns), owned and destroyed with the forwarder.
 * Returns 0 with *out, or 0 with *out NULL when dns.forwarder.listen is empty (the forwarder is
 * off), or a negative code with err saying why (nothing is left listening; the loop must run
 * to free what was started). */
int awf_dns_fwd_create(uv_loop_t *loop, struct awf_policy *policy, struct awf_dns *dns,
                       struct awf_dns_fwd **out, char *err, size_t errlen);

/* Stops listening, drops queries in flight unanswered, closes client connections, writes out
 * the log. Memory goes once the loop has run the close callbacks. NULL is a no-op. */
void awf_dns_fwd_destroy(struct awf_dns_fwd *fwd);

/* Decides later queries with policy (a new reference is taken, the old one dropped). Listen
 * addresses and the log stay as they were. Cached answers stay: they only hold allowed names
 * and each new query is decided again before the cache is read. */
void awf_dns_fwd_set_policy(struct awf_dns_fwd *fwd, struct awf_policy *policy);

/* Reopens the log file (SIGUSR1, after logrotate). */
void awf_dns_fwd_reopen_log(struct awf_dns_fwd *fwd);

/* The bound addresses, one per listen entry (UDP and TCP share it). Returns how many (up to
 * max written). */
size_t awf_dns_fwd_bound(const struct awf_dns_fwd *fwd, struct sockaddr_storage *out, size_t max);

#endif
