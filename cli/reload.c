/* See reload.h. Each comparison below names the key as the YAML schema spells it, so the
 * message tells an operator which line of the policy is waiting for a restart. */
#include "cli/reload.h"

#include <stdio.h>
#include <string.h>

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0; /* NULL and "" both mean unset */
}

static bool same_strs(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i], b[i]))
            return false;
    return true;
}

static bool same_listen(const struct awf_listen *a, size_t na, const struct awf_listen *b,
                        size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i].text, b[i].text) || a[i].intercept_port != b[i].intercept_port)
            return false;
    return true;
}

static bool same_logs(const struct awf_settings *a, const struct awf_settings *b)
{
    if (a->n_logs != b->n_logs)
        return false;
    for (size_t i = 0; i < a->n_logs; i++)
        if (!same_str(a->logs[i].format, b->logs[i].format) ||
            !same_str(a->logs[i].path, b->logs[i].path))
            return false;
    return true;
}

struct keys {
    char *out;
    size_t len, cap, n;
};

static void name(struct keys *k, bool same, const char *key)
{
    if (same)
        return;
    int w = snprintf(k->out + k->len, k->cap - k->len, "%s%s", k->n ? ", " : "", key);
    if (w > 0)
        k->len = k->len + (size_t)w < k->cap ? k->len + (size_t)w : k->cap - 1;
    k->n++;
}

size_t cli_reload_restart_keys(const struct awf_settings *a, const struct awf_settings *b,
                               bool bump_running, char *out, size_t outlen)
{
    struct keys k = {out, 0, outlen, 0};
    if (outlen == 0)
        return 0;
    out[0] = '\0';
    name(&k, same_listen(a->listen, a->n_listen, b->listen, b->n_listen), "listen");
    name(&k, same_logs(a, b), "logs");
    name(&k, a->strip_query == b->strip_query, "logs.strip_query");
    name(&k, same_str(a->awf_version, b->awf_version), "logs.awf_version");
    name(&k, a->threads == b->threads, "threads");
    /* Each loop's resolver is created with these. */
    name(&k, same_strs(a->dns.servers, a->dns.n_servers, b->dns.servers, b->dns.n_servers),
         "dns.servers");
    name(&k, a->dns.min_ttl_s == b->dns.min_ttl_s, "dns.min_ttl");
    name(&k, a->dns.max_ttl_s == b->dns.max_ttl_s, "dns.max_ttl");
    name(&k, a->dns.negative_ttl_s == b->dns.negative_ttl_s, "dns.negative_ttl");
    name(&k, a->timeouts.dns_ms == b->timeouts.dns_ms, "timeouts.dns");
    const struct awf_dns_forwarder_settings *fa = &a->dns.forwarder, *fb = &b->dns.forwarder;
    name(&k, same_listen(fa->listen, fa->n_listen, fb->listen, fb->n_listen),
         "dns.forwarder.listen");
    name(&k, fa->deny_rcode == fb->deny_rcode, "dns.forwarder.deny_rcode");
    name(&k, same_str(fa->log, fb->log), "dns.forwarder.log");
    name(&k, fa->idle_ms == fb->idle_ms, "dns.forwarder.idle");
    name(&k, same_str(a->admin.text, b->admin.text), "admin");
    name(&k, same_str(a->pid_file, b->pid_file), "pid_file");
    name(&k, same_str(a->cache_log, b->cache_log), "cache_log");
    const struct awf_bump_settings *ba = &a->ssl_bump, *bb = &b->ssl_bump;
    name(&k, !bb->enabled || bump_running, "ssl_bump.enabled");
    /* The leaf cache was made once at start (cli/run.c), if ssl-bump was on; the CA files are
     * read again by every reload (reload_ca there). */
    bool keep = !bump_running || !bb->enabled;
    name(&k, keep || ba->cert_cache_bytes == bb->cert_cache_bytes, "ssl_bump.cert_cache");
    return k.n;
}
