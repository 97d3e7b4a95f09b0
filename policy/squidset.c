/* squid.conf directives that set settings (values, log formats and outputs, listeners, DNS,
 * the parent, timeouts), and the dispatch of each directive line to its handler (ACLs and
 * rules: squidacl.c). Settings go into the builder through the same per-type parsers as YAML
 * and flags (policy_set_item). */

#include "policy/policy_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sets a builder setting by key with a value from this line; messages name the line. */
static int set_key(struct squid_ctx *c, const char *key, const char *v, size_t len)
{
    char why[AWF_POLICY_ERRLEN];
    const struct skey *k = policy_key_find(key, strlen(key));
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_set_item(c->b, k, v, len, why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? policy_squid_oom(c)
                             : policy_squid_errf(c, AWF_E_POLICY_INVALID, "%s", why);
    return 0;
}

/* ---- values ---- */

/* A time as Squid 5.7 reads one (measured against it: squid -k parse): "N UNIT". N is what
 * strtod takes in full (so "1.5", "0x10" and "1e3" too), UNIT a word starting with one of the
 * units below, in any case ("seconds", "Second"); "sec", "min" or a missing unit are errors,
 * except for 0, which needs none. A unit finer than the directive's precision (a second, a
 * millisecond for dns_timeout) is an error; the value is truncated to that precision and must
 * not become 0. awf-proxy is stricter where Squid takes nonsense: nan and inf are errors, and
 * values above a year (the policy's own limit; Squid's is 292 years). Returns the words used
 * (1 or 2), or -1 with the reason in *why. */
static int parse_time(char **t, size_t n, bool ms_precision, uint64_t *ms, const char **why)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {
        {"nanosecond", 1e-6},    {"microsecond", 1e-3}, {"millisecond", 1},   {"second", 1e3},
        {"minute", 6e4},         {"hour", 3.6e6},       {"day", 8.64e7},      {"week", 6.048e8},
        {"fortnight", 1.2096e9}, {"month", 2.592e9},    {"year", 3.15576e10}, /* 365.25 days */
        {"decade", 3.15576e11},
    };
    *why = "missing time value";
    if (n == 0)
        return -1;
    char *end;
    errno = 0;
    double x = strtod(t[0], &end);
    *why = "not a number";
    if (end == t[0] || *end)
        return -1;
    *why = "not a finite number";
    if (!isfinite(x))
        return -1;
    *why = "time must have a positive value";
    if (x < 0)
        return -1;
    double mult = 0;
    if (n >= 2)
        for (size_t i = 0; i < sizeof units / sizeof units[0] && mult == 0; i++)
            if (strncasecmp(t[1], units[i].unit, strlen(units[i].unit)) == 0)
                mult = units[i].ms;
    if (x == 0) { /* Squid needs no unit for 0 */
        *ms = 0;
        return mult ? 2 : 1;
    }
    *why = n < 2 ? "missing time unit" : "unknown time unit";
    if (mult == 0)
        return -1;
    double precision = ms_precision ? 1 : 1e3;
    *why = ms_precision ? "time unit too small here (the smallest is millisecond)"
                        : "time unit too small here (the smallest is second)";
    if (mult < precision)
        return -1;
    double v = floor(x * mult / precision) * precision;
    *why = "time too large (at most a year)";
    if (v > 31536000000.0)
        return -1;
    *why = ms_precision ? "time too small here (the smallest is 1 millisecond)"
                        : "time too small here (the smallest is 1 second)";
    if (v < precision)
        return -1;
    *ms = (uint64_t)v;
    return 2;
}

/* "N [bytes|KB|MB]", default unit bytes as Squid's request_header_max_size. */
static int parse_size(char **t, size_t n, uint64_t *bytes)
{
    char *end;
    if (n == 0 || !(t[0][0] >= '0' && t[0][0] <= '9'))
        return -1;
    errno = 0;
    unsigned long long x = strtoull(t[0], &end, 10);
    if (*end || errno)
        return -1;
    uint64_t mult = 1;
    if (n >= 2) {
        if (strcmp(t[1], "KB") == 0)
            mult = 1024;
        else if (strcmp(t[1], "MB") == 0)
            mult = 1024 * 1024;
        else if (strcmp(t[1], "bytes") != 0)
            return -1;
    }
    if (x > UINT32_MAX / mult)
        return -1;
    *bytes = x * mult;
    return n >= 2 ? 2 : 1;
}

static bool is_on(const char *v)
{
    return strcmp(v, "on") == 0;
}

static bool on_off(const char *v)
{
    return strcmp(v, "on") == 0 || strcmp(v, "off") == 0;
}

/* ---- logs ---- */

static const char *fmt_find(struct squid_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->n_fmts; i++)
        if (strcmp(c->fmts[i].name, name) == 0)
            return c->fmts[i].format;
    if (strcmp(name, "squid") == 0)
        return "squid"; /* Squid's native format, built into the log module */
    return NULL;
}

static int d_logformat(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 3 || !l->rest1 || !*l->rest1)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "logformat: want logformat NAME FORMAT");
    const char *name = l->tok[1];
    if (!policy_squid_name_ok(name))
        return policy_squid_errf(c, AWF_E_POLICY_INVALID, "logformat: invalid name \"%s\"", name);
    for (size_t i = 0; i < c->n_fmts; i++)
        if (strcmp(c->fmts[i].name, name) == 0)
            return policy_squid_errf(c, AWF_E_POLICY_INVALID, "logformat %s: defined twice", name);
    if (strcmp(name, "squid") == 0 || strcmp(name, "common") == 0 ||
        strcmp(name, "combined") == 0 || strcmp(name, "referrer") == 0 ||
        strcmp(name, "useragent") == 0)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID, "logformat %s: a built-in name", name);
    struct squid_fmt *g = realloc(c->fmts, (c->n_fmts + 1) * sizeof *g);
    if (!g)
        return policy_squid_oom(c);
    c->fmts = g;
    struct squid_fmt f = {strdup(name), strdup(l->rest1)};
    if (!f.name || !f.format) {
        free(f.name);
        free(f.format);
        return policy_squid_oom(c);
    }
    c->fmts[c->n_fmts++] = f;
    return 0;
}

/* access_log [stdio:|daemon:]PATH [option=value...] [FORMAT] [[!]ACL...] | none */
static int d_access_log(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 2)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX,
                                 "access_log: want access_log PATH [FORMAT [ACL...]]");
    const char *path = l->tok[1];
    if (strcmp(path, "none") == 0) {
        if (l->n > 2)
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "access_log none: conditions on \"none\" are not supported");
        if (c->b->logs_default) {
            policy_clear_logs(&c->b->s);
            c->b->logs_default = false;
        }
        return 0;
    }
    if (strncmp(path, "stdio:", 6) == 0 || strncmp(path, "daemon:", 7) == 0)
        path = strchr(path, ':') + 1;
    else if (strchr(path, ':'))
        return policy_squid_errf(
            c, AWF_E_POLICY_INVALID,
            "access_log: module of \"%s\" is not supported (stdio:, daemon: or a path)", path);
    if (path[0] != '/')
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "access_log: \"%s\" is not an absolute path", path);
    if (strcmp(path, "/dev/stdout") == 0)
        path = "-";
    const char *format = NULL;
    size_t i = 2;
    for (; i < l->n && strchr(l->tok[i], '='); i++) {
        const char *t = l->tok[i];
        if (strncmp(t, "logformat=", 10) == 0) {
            if (!(format = fmt_find(c, t + 10)))
                return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                         "access_log: unknown logformat \"%s\"", t + 10);
        } else if (strncmp(t, "buffer-size=", 12) != 0 && strncmp(t, "on-error=", 9) != 0 &&
                   strncmp(t, "rotate=", 7) != 0) {
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "access_log: option \"%s\" is not supported", t);
        }
    }
    /* As Squid: a following word that names a format is the (legacy) format, else an ACL. */
    if (!format && i < l->n && (format = fmt_find(c, l->tok[i])) != NULL)
        i++;
    if (!format)
        format = "squid";
    uint32_t cond = 0;
    if (i < l->n) {
        int rc = policy_squid_add_rule(c, &c->sq->log_conds, true, l, i, "access_log condition");
        if (rc < 0)
            return rc;
        cond = (uint32_t)c->sq->log_conds.n;
    }
    char why[AWF_POLICY_ERRLEN];
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_add_log(c->b, format, strlen(format), path, strlen(path), why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? policy_squid_oom(c)
                             : policy_squid_errf(c, AWF_E_POLICY_INVALID, "access_log: %s", why);
    c->b->s.logs[c->b->s.n_logs - 1].cond = cond;
    return 0;
}

/* ---- listeners, DNS, peers, the rest ---- */

/* One http_port option of AWF's ssl-bump line; returns 0, 1 when not an ssl-bump option, or
 * an error. */
static int ssl_bump_option(struct squid_ctx *c, const char *t)
{
    if (strcmp(t, "ssl-bump") == 0)
        return set_key(c, "ssl_bump.enabled", "true", 4);
    if (strncmp(t, "cert=", 5) == 0 || strncmp(t, "tls-cert=", 9) == 0)
        return set_key(c, "ssl_bump.ca_cert", strchr(t, '=') + 1, strlen(strchr(t, '=') + 1));
    if (strncmp(t, "key=", 4) == 0 || strncmp(t, "tls-key=", 8) == 0)
        return set_key(c, "ssl_bump.ca_key", strchr(t, '=') + 1, strlen(strchr(t, '=') + 1));
    if (strncmp(t, "dynamic_cert_mem_cache_size=", 28) == 0)
        return set_key(c, "ssl_bump.cert_cache", t + 28, strlen(t + 28));
    if (strcmp(t, "generate-host-certificates=on") == 0)
        return 0; /* always: leaves are minted in process */
    if (strncmp(t, "generate-host-certificates=", 27) == 0)
        return policy_squid_errf(
            c, AWF_E_POLICY_INVALID,
            "http_port: %s is not supported (awf-proxy always mints host certificates)", t);
    if (strncmp(t, "options=", 8) == 0 || strncmp(t, "tls-options=", 12) == 0)
        /* TLS 1.2 and later only, compression off: NO_SSLv3,NO_TLSv1,NO_TLSv1_1 and more. */
        return policy_squid_notice(c->sq, c->line,
                                   "http_port %s: TLS 1.2 or later is always required", t) < 0
                   ? policy_squid_oom(c)
                   : 0;
    return 1;
}

static int d_http_port(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 2)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "http_port: want http_port [ADDR:]PORT");
    for (size_t i = 2; i < l->n; i++) {
        if (strcmp(l->tok[i], "intercept") == 0 || strcmp(l->tok[i], "transparent") == 0 ||
            strncmp(l->tok[i], "name=", 5) == 0)
            continue;
        int rc = ssl_bump_option(c, l->tok[i]);
        if (rc <= 0) {
            if (rc < 0)
                return rc;
            continue;
        }
        return policy_squid_errf(
            c, AWF_E_POLICY_INVALID,
            "http_port: option \"%s\" is not supported (awf-proxy tells intercepted "
            "traffic apart by itself)",
            l->tok[i]);
    }
    char addr[128];
    const char *v = l->tok[1];
    if (strchr(v, ':') == NULL)
        snprintf(addr, sizeof addr, "0.0.0.0:%s", v); /* Squid listens on every address */
    else
        snprintf(addr, sizeof addr, "%s", v);
    char why[AWF_POLICY_ERRLEN];
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_add_listen(c->b, addr, strlen(addr), 0, why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? policy_squid_oom(c)
                             : policy_squid_errf(c, AWF_E_POLICY_INVALID, "http_port: %s", why);
    return 0;
}

static int d_dns_nameservers(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 2)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX,
                                 "dns_nameservers: want one or more addresses");
    policy_clear_dns_servers(&c->b->s);
    for (size_t i = 1; i < l->n; i++) {
        int rc = set_key(c, "dns.servers", l->tok[i], strlen(l->tok[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int d_cache_peer(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 5)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX,
                                 "cache_peer: want cache_peer HOST parent PORT 0 ...");
    if (c->have_parent)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "cache_peer: only one parent is supported");
    if (strcmp(l->tok[2], "parent") != 0)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "cache_peer: type \"%s\" is not supported (parent)", l->tok[2]);
    for (size_t i = 5; i < l->n; i++) {
        const char *o = l->tok[i];
        if (strcmp(o, "no-query") != 0 && strcmp(o, "default") != 0 &&
            strcmp(o, "no-digest") != 0 && strcmp(o, "proxy-only") != 0 &&
            strcmp(o, "no-netdb-exchange") != 0 && strncmp(o, "name=", 5) != 0 &&
            strncmp(o, "connect-timeout=", 16) != 0)
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "cache_peer: option \"%s\" is not supported", o);
    }
    char v[300];
    const char *h = l->tok[1];
    bool v6 = strchr(h, ':') != NULL && h[0] != '[';
    snprintf(v, sizeof v, "%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "", l->tok[3]);
    int rc = set_key(c, "parent", v, strlen(v));
    if (rc == 0 && v6) { /* keep the host as written, brackets are only for the parser */
        size_t n = strlen(h);
        memmove(c->b->s.parent.host, h, n + 1);
    }
    c->have_parent = rc == 0;
    return rc;
}

/* Timeouts: the Squid directive, the policy key it sets, and whether Squid reads it to the
 * millisecond (dns_timeout) rather than the second. */
static const struct {
    const char *directive, *key;
    bool ms;
} time_keys[] = {
    {"connect_timeout", "timeouts.connect", false},
    {"read_timeout", "timeouts.read_idle", false},
    {"request_timeout", "timeouts.request_headers", false},
    {"persistent_request_timeout", "timeouts.client_idle", false},
    {"pconn_timeout", "timeouts.upstream_idle", false},
    {"client_lifetime", "timeouts.lifetime", false},
    {"shutdown_lifetime", "timeouts.shutdown_drain", false},
    {"dns_timeout", "timeouts.dns", true},
    {"negative_dns_ttl", "dns.negative_ttl", false},
    {"positive_dns_ttl", "dns.max_ttl", false},
};

static int d_time(struct squid_ctx *c, struct squid_line *l, const char *key, bool ms_precision)
{
    uint64_t ms;
    const char *why;
    int used = parse_time(l->tok + 1, l->n - 1, ms_precision, &ms, &why);
    if (used > 0 && (size_t)used != l->n - 1)
        why = "words after the time";
    if (used < 0 || (size_t)used != l->n - 1)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "%s: invalid time: %s (want N UNIT: N a number, UNIT second(s), "
                                 "minute(s), hour(s), day(s), week(s)%s...)",
                                 l->tok[0], why, ms_precision ? ", millisecond(s)" : "");
    char v[32];
    if (strncmp(key, "dns.", 4) == 0) /* TTLs: whole seconds already (second precision) */
        snprintf(v, sizeof v, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(v, sizeof v, "%llums", (unsigned long long)ms);
    return set_key(c, key, v, strlen(v));
}

/* request_header_max_size takes "N KB": two tokens, so it is read before the one-value
 * directives below. */
static int d_header_size(struct squid_ctx *c, struct squid_line *l)
{
    uint64_t bytes;
    int used = parse_size(l->tok + 1, l->n - 1, &bytes);
    if (used < 0 || (size_t)used != l->n - 1 || bytes == 0)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "request_header_max_size: want N [bytes|KB|MB], at least 1 byte");
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    return set_key(c, "limits.header_bytes", v, strlen(v));
}

static bool is_one_value(const char *d)
{
    static const char *const one[] = {"hosts_file", "pid_filename",  "cache_log",
                                      "via",        "forwarded_for", "strip_query_terms"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (strcmp(d, one[i]) == 0)
            return true;
    return false;
}

int policy_squid_directive(struct squid_ctx *c, struct squid_line *l)
{
    const char *d = l->tok[0];
    if (strcmp(d, "request_header_max_size") == 0)
        return d_header_size(c, l);
    const char *why = policy_squid_ignored(d);
    if (why)
        return policy_squid_notice(c->sq, c->line, "%s ignored: %s", d, why) < 0
                   ? policy_squid_oom(c)
                   : 0;
    for (size_t i = 0; i < sizeof time_keys / sizeof time_keys[0]; i++)
        if (strcmp(d, time_keys[i].directive) == 0)
            return d_time(c, l, time_keys[i].key, time_keys[i].ms);
    if (strcmp(d, "acl") == 0)
        return policy_squid_acl(c, l);
    if (strcmp(d, "http_access") == 0 || strcmp(d, "always_direct") == 0 ||
        strcmp(d, "never_direct") == 0)
        return policy_squid_access(c, l);
    if (strcmp(d, "logformat") == 0)
        return d_logformat(c, l);
    if (strcmp(d, "access_log") == 0)
        return d_access_log(c, l);
    if (strcmp(d, "http_port") == 0)
        return d_http_port(c, l);
    if (strcmp(d, "ssl_bump") == 0)
        return policy_squid_ssl_bump(c, l);
    if (strcmp(d, "sslcrtd_program") == 0 || strcmp(d, "sslcrtd_children") == 0)
        return policy_squid_notice(c->sq, c->line,
                                   "%s not needed: awf-proxy mints certificates in process", d) < 0
                   ? policy_squid_oom(c)
                   : 0;
    if (strcmp(d, "dns_nameservers") == 0)
        return d_dns_nameservers(c, l);
    if (strcmp(d, "cache_peer") == 0)
        return d_cache_peer(c, l);
    if (l->n != 2)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "%s: %s", d,
                                 is_one_value(d) ? "want exactly one value"
                                                 : "unknown or unsupported directive");
    const char *v = l->tok[1];
    if (strcmp(d, "hosts_file") == 0)
        return set_key(c, "dns.hosts_file", strcmp(v, "none") == 0 ? "" : v,
                       strcmp(v, "none") == 0 ? 0 : strlen(v));
    if (strcmp(d, "pid_filename") == 0 || strcmp(d, "cache_log") == 0) {
        const char *key = d[0] == 'p' ? "pid_file" : "cache_log";
        if (strcmp(v, "none") == 0) {
            char **slot = d[0] == 'p' ? &c->b->s.pid_file : &c->b->s.cache_log;
            free(*slot);
            *slot = NULL;
            return 0;
        }
        if (strncmp(v, "stdio:", 6) == 0)
            v += 6;
        return set_key(c, key, v, strlen(v));
    }
    if (strcmp(d, "via") == 0) {
        if (strcmp(v, "off") != 0)
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "via: only \"off\" (awf-proxy adds no Via)");
        return 0;
    }
    if (strcmp(d, "forwarded_for") == 0) {
        if (strcmp(v, "delete") != 0 && strcmp(v, "off") != 0 && strcmp(v, "transparent") != 0)
            return policy_squid_errf(
                c, AWF_E_POLICY_INVALID,
                "forwarded_for: \"%s\" is not supported (delete, off or transparent: "
                "awf-proxy adds no X-Forwarded-For)",
                v);
        return 0;
    }
    if (strcmp(d, "strip_query_terms") == 0) {
        if (!on_off(v))
            return policy_squid_errf(c, AWF_E_POLICY_INVALID, "strip_query_terms: want on or off");
        return set_key(c, "logs.strip_query", is_on(v) ? "true" : "false", is_on(v) ? 4 : 5);
    }
    return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "unknown or unsupported directive \"%s\"", d);
}
