#ifndef AWF_CLI_ADMIN_H
#define AWF_CLI_ADMIN_H

/* The admin listener (`--admin ADDR:PORT`, YAML `admin:`; off by default): a small HTTP/1.1
 * server on the main loop answering GET /metrics (Prometheus text format), /healthz and
 * /status (JSON), one request per connection. It shares nothing with the proxy's listeners:
 * the policy refuses an admin address that overlaps one (policy/compile.c), and a request for
 * /metrics that reaches a proxy listener is ordinary proxy traffic. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "log/log.h"
#include "policy/policy.h"
#include "proxy/proxy.h"

/* What the admin reports. Owned by the runner, which updates it on the main loop (the admin's
 * loop), so the admin reads it without locks; the counters are the loops' (proxy.h). */
struct cli_admin_state {
    struct awf_proxy_counters *ctr; /* one per loop */
    size_t n_ctr;
    struct awf_log *log;
    const struct awf_policy *policy; /* the current one */
    const char *policy_source;       /* the file, "<default>" or "flags" */
    char policy_sha256[65];          /* of the normalized policy (`awf-proxy check` output) */
    int64_t policy_loaded_us;
    int64_t started_us;
    uint64_t reloads, reload_failures;
    bool draining; /* SIGTERM received: /healthz says 503 */
    struct sockaddr_storage listeners[32];
    size_t n_listeners;
};

struct cli_admin;

/* Listens at `at` on loop. Returns 0 and *out, or a negative code with err naming the address. */
int cli_admin_start(uv_loop_t *loop, const struct awf_listen *at, struct cli_admin_state *st,
                    struct cli_admin **out, char *err, size_t errlen);

/* The address bound (port 0 becomes the kernel's choice), for the readiness line. */
void cli_admin_bound(const struct cli_admin *a, struct sockaddr_storage *out);

/* Closes the listener and every admin connection; memory goes in the close callbacks, so run
 * the loop afterwards. NULL is fine. */
void cli_admin_close(struct cli_admin *a);

/* Fills st->policy_sha256 from the policy's normalized form. */
void cli_admin_hash_policy(struct cli_admin_state *st, const struct awf_policy *p);

/* "127.0.0.1:3128" or "[::1]:3128", for messages and /status. */
void cli_format_addr(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
