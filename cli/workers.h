#ifndef AWF_CLI_WORKERS_H
#define AWF_CLI_WORKERS_H

/* Extra event-loop threads: each runs its own proxy on the same listening addresses
 * (SO_REUSEPORT), so the kernel spreads connections over the cores. The main thread keeps the
 * signals, the DNS forwarder and its own proxy; it tells workers about a new policy or a stop
 * through an async handle. */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "log/log.h"
#include "proxy/proxy.h"
#include "policy/policy.h"

struct cli_workers;

/* How many loops the settings ask for: threads, or the cores available when 0. */
unsigned cli_workers_wanted(const struct awf_settings *s);

/* Creates n proxies on loops of their own, worker i counting into ctr[i] (borrowed, must outlive
 * the workers; NULL: counters of their own), sharing main_proxy's connection and tunnel limits,
 * each bound to exactly the addresses in bound (what the main proxy bound), and starts their
 * threads. Everything is created on the calling thread (c-ares's library counter is not
 * thread-safe). Returns 0 and *out (NULL when n is 0), or a negative code with err saying why and
 * nothing left running. */
int cli_workers_start(size_t n, struct awf_proxy *main_proxy, struct awf_policy *policy,
                      struct awf_log *log, struct awf_proxy_counters *ctr,
                      const struct sockaddr_storage *bound, size_t n_bound, uv_async_t *done,
                      struct cli_workers **out, char *err, size_t errlen);

/* How many workers have not finished their shutdown yet. Each one that finishes sends done
 * (an async handle of the main loop) so the main loop knows to look again. */
size_t cli_workers_running(const struct cli_workers *w);

/* Hands each worker its own reference to policy (connections in flight keep theirs) and, unless
 * NULL, to the hosts file its resolver answers from. */
void cli_workers_set_policy(struct cli_workers *w, struct awf_policy *policy,
                            struct awf_dns_hosts_file *hosts);

/* Asks every worker to shut down (drain_ms as awf_proxy_shutdown) without waiting. */
void cli_workers_stop(struct cli_workers *w, uint64_t drain_ms);

/* Waits for every worker thread to end and frees everything. Call after cli_workers_stop. */
void cli_workers_join(struct cli_workers *w);

#endif
