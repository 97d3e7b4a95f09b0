/* The resolver's configuration as the policy's settings give it: the one place where dns.*
 * and timeouts.dns become a struct awf_dns_config, for the proxy's loops, the DNS forwarder's
 * own resolver and `explain`, so that all three resolve alike. */

#include "dns/dns.h"

#include <string.h>

#include "policy/policy.h"

void awf_dns_config_from_settings(const struct awf_settings *s, struct awf_dns_config *out)
{
    memset(out, 0, sizeof(*out));
    out->servers = (const char *const *)s->dns.servers;
    out->n_servers = s->dns.n_servers;
    out->hosts_file = s->dns.hosts_file;
    out->min_ttl_s = s->dns.min_ttl_s;
    out->max_ttl_s = s->dns.max_ttl_s;
    out->negative_ttl_s = s->dns.negative_ttl_s;
    out->timeout_ms = s->timeouts.dns_ms;
}
