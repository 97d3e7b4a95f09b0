#ifndef AWF_PROXY_PROXY_H
#define AWF_PROXY_PROXY_H

/* The proxy on one event loop: listeners, connections, HTTP forwarding, CONNECT tunnels.
 * Uses policy/, dns/ and log/; nothing uses proxy/ but the command line. */

#include <stdint.h>
#include <uv.h>

#include "log/log.h"
#include "policy/policy.h"

struct awf_proxy;

/* Creates a proxy on loop with policy (takes its own reference) and log (borrowed; must outlive
 * the proxy). Creates the loop's resolver from the policy's DNS settings. Returns 0 or a negative
 * code with err saying why. */
int awf_proxy_create(uv_loop_t *loop, struct awf_policy *policy, struct awf_log *log,
                     struct awf_proxy **out, char *err, size_t errlen);

/* Binds and listens on every address of the policy's settings. Returns 0, or a negative code
 * with err naming the address (nothing is left listening then). */
int awf_proxy_listen(struct awf_proxy *px, char *err, size_t errlen);

/* The addresses actually bound (port 0 in the settings becomes the kernel's choice), for the
 * readiness line "awf-proxy: listening on ADDR:PORT" the command line prints. Returns how many. */
size_t awf_proxy_bound(const struct awf_proxy *px, struct sockaddr_storage *out, size_t max);

/* New connections use policy from now on (takes its own reference); connections in flight keep
 * the one they started with. Listen addresses and DNS servers do not change on reload. */
void awf_proxy_set_policy(struct awf_proxy *px, struct awf_policy *policy);

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
