/* What the squid.conf reader says about a line: an error ("FILE:LINE: reason") that stops the
 * load, or a notice for a directive accepted without acting on it (nothing in a squid.conf is
 * ignored silently). */

#include "policy/policy_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int policy_squid_errf(struct squid_ctx *c, int code, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "%s:%u: ", c->name, c->line);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

int policy_squid_oom(struct squid_ctx *c)
{
    policy_squid_errf(c, -ENOMEM, "out of memory");
    return -ENOMEM;
}

/* Accepted and not acted on: each is reported once at start with its line, never silently.
 * They change nothing in awf-proxy; the reason says why. */
static const struct {
    const char *directive, *why;
} ignored[] = {
    {"cache", "awf-proxy keeps no cache"},
    {"cache_mem", "awf-proxy keeps no cache"},
    {"maximum_object_size", "awf-proxy keeps no cache"},
    {"minimum_object_size", "awf-proxy keeps no cache"},
    {"maximum_object_size_in_memory", "awf-proxy keeps no cache"},
    {"cache_dir", "awf-proxy keeps no cache"},
    {"cache_store_log", "awf-proxy keeps no cache"},
    {"refresh_pattern", "awf-proxy keeps no cache"},
    {"negative_ttl", "awf-proxy keeps no cache"},
    {"error_directory", "awf-proxy writes its own short error pages"},
    {"pinger_enable", "awf-proxy sends no ICMP probes"},
    {"coredump_dir", "awf-proxy leaves core files to the system's settings"},
    {"visible_hostname", "awf-proxy's error pages name no host"},
    {"cache_effective_user", "awf-proxy runs as the user it is started as"},
    {"cache_effective_group", "awf-proxy runs as the user it is started as"},
    {"max_filedescriptors", "awf-proxy raises its open-file limit to the hard limit"},
    {"half_closed_clients", "awf-proxy always keeps a half-closed connection open until both "
                            "sides are done"},
    {"dns_retransmit_interval", "c-ares retransmits on its own schedule (dns_timeout bounds a "
                                "lookup)"},
    {"logfile_rotate", "awf-proxy reopens its logs on SIGUSR1 and rotates none itself"},
    {"buffered_logs", "awf-proxy writes each log line as the transaction ends"},
    {"icp_port", "awf-proxy speaks no ICP"},
    {"htcp_port", "awf-proxy speaks no HTCP"},
    {"httpd_suppress_version_string", "awf-proxy's answers carry no version"},
    {"client_db", "awf-proxy keeps no per-client statistics"},
    {"dns_v4_first", "awf-proxy tries IPv4 addresses first already"},
    {"memory_pools", "awf-proxy has no memory pools to tune"},
    {"debug_options", "awf-proxy has no debug sections"},
    {"cache_mgr", "awf-proxy has no cache manager"},
};

const char *policy_squid_ignored(const char *directive)
{
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (strcmp(directive, ignored[i].directive) == 0)
            return ignored[i].why;
    return NULL;
}

int policy_squid_notice(struct squid_rules *sq, unsigned line, const char *fmt, ...)
{
    char msg[AWF_POLICY_ERRLEN];
    int n = snprintf(msg, sizeof msg, "%s:%u: ", sq->source, line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    char **g = realloc(sq->notices, (sq->n_notices + 1) * sizeof *g);
    if (!g)
        return -ENOMEM;
    sq->notices = g;
    if (!(g[sq->n_notices] = strdup(msg)))
        return -ENOMEM;
    sq->n_notices++;
    return 0;
}

size_t awf_policy_notices(const struct awf_policy *p, const char *const **out)
{
    if (!p->squid) {
        *out = NULL;
        return 0;
    }
    *out = (const char *const *)p->squid->notices;
    return p->squid->n_notices;
}
