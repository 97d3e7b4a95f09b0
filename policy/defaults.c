/* The settings as a whole: the defaults a builder starts from, and the deep copy a built
 * policy keeps (it owns every string and list; policy_settings_free in settings.c frees it). */

#include "policy/policy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int policy_settings_defaults(struct awf_settings *s)
{
    struct sockaddr_storage ss;
    char why[8];
    memset(s, 0, sizeof *s);
    s->strip_query = true;
    s->threads = 0; /* one loop per core */
    s->dns.min_ttl_s = 0;
    s->dns.max_ttl_s = 3600;
    s->dns.negative_ttl_s = 5;
    s->tls.sni_in_connect = true;
    s->ssl_bump.cert_cache_bytes = 16u << 20;
    s->dns.forwarder.deny_rcode = 5; /* REFUSED */
    s->dns.forwarder.idle_ms = 10000;
    s->timeouts = (struct awf_timeouts){
        .connect_ms = 30000,
        .read_idle_ms = 30 * 60000,
        .request_headers_ms = 2 * 60000,
        .client_idle_ms = 2 * 60000,
        .upstream_idle_ms = 2 * 60000,
        .lifetime_ms = 8 * 3600000ull,
        .client_hello_ms = 10000,
        .shutdown_drain_ms = 0,
        .dns_ms = 5000,
    };
    s->limits = (struct awf_limits){.header_bytes = 65536, .header_count = 100};
    if (!(s->awf_version = policy_strndup("1", 1)) ||
        !(s->dns.hosts_file = policy_strndup("/etc/hosts", 10)) ||
        !(s->dns.forwarder.log = policy_strndup("stderr", 6)) ||
        policy_parse_listen("127.0.0.1:3128", 14, &ss, why, sizeof why) < 0 ||
        policy_push_listen(s, "127.0.0.1:3128", 14, &ss, 0) < 0 ||
        policy_push_log(s, "firewall_detailed", 17, "-", 1, "") < 0) {
        policy_settings_free(s);
        return -ENOMEM;
    }
    return 0;
}

int policy_settings_copy(struct awf_settings *d, const struct awf_settings *s)
{
    *d = *s;
    d->listen = NULL, d->n_listen = 0;
    d->logs = NULL, d->n_logs = 0;
    d->dns.servers = NULL, d->dns.n_servers = 0;
    d->ports = NULL, d->allow_ranges = NULL;
    d->tunnels = (struct awf_tunnel_settings){0};
    d->awf_version = NULL, d->dns.hosts_file = NULL;
    d->dns.forwarder.listen = NULL, d->dns.forwarder.n_listen = 0, d->dns.forwarder.log = NULL;
    d->pid_file = d->cache_log = d->parent.host = d->admin.text = NULL;
    int rc = policy_bump_copy(&d->ssl_bump, &s->ssl_bump);
    if ((s->admin.text &&
         !(d->admin.text = policy_strndup(s->admin.text, strlen(s->admin.text)))) ||
        (s->pid_file && !(d->pid_file = policy_strndup(s->pid_file, strlen(s->pid_file)))) ||
        (s->cache_log && !(d->cache_log = policy_strndup(s->cache_log, strlen(s->cache_log)))) ||
        (s->parent.host &&
         !(d->parent.host = policy_strndup(s->parent.host, strlen(s->parent.host)))))
        rc = -ENOMEM;
    const struct awf_dns_forwarder_settings *sf = &s->dns.forwarder;
    for (size_t i = 0; i < sf->n_listen && !rc; i++)
        rc = policy_push_fwd_listen(&d->dns.forwarder, sf->listen[i].text,
                                    strlen(sf->listen[i].text), &sf->listen[i].addr);
    if (!rc && !(d->dns.forwarder.log = policy_strndup(sf->log, strlen(sf->log))))
        rc = -ENOMEM;
    for (size_t i = 0; i < s->n_listen && !rc; i++)
        rc = policy_push_listen(d, s->listen[i].text, strlen(s->listen[i].text), &s->listen[i].addr,
                                s->listen[i].intercept_port);
    for (size_t i = 0; i < s->n_logs && !rc; i++)
        if (!(rc = policy_push_log(d, s->logs[i].format, strlen(s->logs[i].format), s->logs[i].path,
                                   strlen(s->logs[i].path), s->logs[i].where)))
            d->logs[i].cond = s->logs[i].cond;
    for (size_t i = 0; i < s->dns.n_servers && !rc; i++)
        rc = policy_push_str(&d->dns.servers, &d->dns.n_servers, s->dns.servers[i],
                             strlen(s->dns.servers[i]));
    const struct awf_tunnel_settings *st = &s->tunnels;
    for (size_t i = 0; i < st->n_opaque_hosts && !rc; i++)
        rc = policy_push_str(&d->tunnels.opaque_hosts, &d->tunnels.n_opaque_hosts,
                             st->opaque_hosts[i], strlen(st->opaque_hosts[i]));
    for (size_t i = 0; i < st->n_opaque_ports && !rc; i++)
        rc = policy_push_opaque_port(&d->tunnels, &st->opaque_ports[i]);
    if (!rc && s->n_ports && !(d->ports = malloc(s->n_ports * sizeof *s->ports)))
        rc = -ENOMEM;
    if (!rc && s->n_allow_ranges &&
        !(d->allow_ranges = malloc(s->n_allow_ranges * sizeof *s->allow_ranges)))
        rc = -ENOMEM;
    if (!rc &&
        (!(d->awf_version = policy_strndup(s->awf_version, strlen(s->awf_version))) ||
         !(d->dns.hosts_file = policy_strndup(s->dns.hosts_file, strlen(s->dns.hosts_file)))))
        rc = -ENOMEM;
    if (rc) {
        policy_settings_free(d);
        return rc;
    }
    if (s->n_ports)
        memcpy(d->ports, s->ports, s->n_ports * sizeof *s->ports);
    if (s->n_allow_ranges)
        memcpy(d->allow_ranges, s->allow_ranges, s->n_allow_ranges * sizeof *s->allow_ranges);
    return 0;
}
