/* awf_policy_print(): the normalized policy as YAML that policy_load_yaml() reads back to
 * the same policy (tested as a round trip). Every setting is written, defaults included, so
 * `awf-proxy check` shows exactly what will run; a squid.conf policy's rules and ACLs follow as
 * comments (the lists above them are not used then). */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>

/* Whether s is text the YAML printer can write and libyaml read back (`check`, --to-policy):
 * well-formed UTF-8 of YAML's printable characters (YAML 1.1 §5.1: no C0 or C1 controls, no
 * surrogates, no U+FEFF, U+FFFE, U+FFFF). Tab and CR separate tokens, so only a logformat's
 * format holds them, and the printer escapes them there. */
bool policy_yaml_printable(const char *str)
{
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000}; /* shorter forms are overlong */
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t c = *s;
        size_t n = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : 4;
        if (n == 4)
            return false;
        c &= 0x7Fu >> n;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) /* the NUL too */
                return false;
            c = c << 6 | (s[i] & 0x3Fu);
        }
        if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) ||
            (c < 0x20 && c != '\t' && c != '\r') || (c >= 0x7F && c <= 0x9F) || c == 0xFEFF ||
            c == 0xFFFE || c == 0xFFFF)
            return false;
        s += 1 + n;
    }
    return true;
}

/* A YAML double-quoted scalar: '"' and '\' escaped, control bytes as \xNN. */
static void ystr(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void duration(FILE *out, uint64_t ms)
{
    if (ms == 0)
        fputs("0s", out);
    else if (ms % 3600000 == 0)
        fprintf(out, "%" PRIu64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        fprintf(out, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        fprintf(out, "%" PRIu64 "s", ms / 1000);
    else
        fprintf(out, "%" PRIu64 "ms", ms);
}

static void origin(FILE *out, const struct awf_origin *o)
{
    fputs("  # ", out);
    for (const char *s = o->source; *s; s++)
        fputc((unsigned char)*s < 0x20 ? '?' : *s, out);
    if (o->line)
        fprintf(out, ":%u:%u", o->line, o->col);
    fputc('\n', out);
}

static void entries(FILE *out, const struct awf_policy *p, bool block)
{
    bool any = false;
    fputs(block ? "block:" : "allow:", out);
    for (size_t i = 0; i < p->n_entries; i++) {
        const struct awf_policy_entry *e = &p->entries[i];
        if (e->block != block)
            continue;
        fputs(any ? "  - " : "\n  - ", out);
        any = true;
        ystr(out, e->text);
        origin(out, &e->origin);
    }
    if (!any)
        fputs(" []\n", out);
}

static void cidr(FILE *out, const struct awf_cidr *c)
{
    char buf[64];
    if (!inet_ntop(c->family, c->addr, buf, sizeof buf))
        strcpy(buf, "?");
    fprintf(out, "\"%s/%u\"", buf, c->prefix);
}

static const char *const type_names[] = {
    [ACL_ALL] = "all",
    [ACL_DSTDOMAIN] = "dstdomain",
    [ACL_DSTDOM_REGEX] = "dstdom_regex",
    [ACL_DST] = "dst",
    [ACL_SRC] = "src",
    [ACL_PORT] = "port",
    [ACL_METHOD] = "method",
    [ACL_URL_REGEX] = "url_regex",
    [ACL_AT_STEP] = "at_step",
};

static void print_cidr(FILE *out, const struct awf_cidr *c)
{
    char buf[64];
    if (!inet_ntop(c->family, c->addr, buf, sizeof buf))
        strcpy(buf, "?");
    fprintf(out, " %s/%u", buf, c->prefix);
}

static void print_list(FILE *out, const char *directive, const struct rule_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, "#   %s %s  (%s:%u)\n", directive, l->v[i].pub.text, l->v[i].pub.origin.source,
                l->v[i].pub.origin.line);
}

/* The rules and ACLs as YAML comments, for `check` of a squid.conf policy. */
static void print_squid_rules(const struct awf_policy *p, FILE *out)
{
    const struct squid_rules *sq = p->squid;
    fputs("# From a squid.conf: these rules decide, in order (first match wins; no match: the\n"
          "# opposite of the last rule). The allow/block lists above are not used.\n",
          out);
    print_list(out, "http_access", &sq->http_access);
    print_list(out, "always_direct", &sq->always_direct);
    print_list(out, "never_direct", &sq->never_direct);
    for (size_t i = 0; i < p->settings.n_logs; i++)
        if (p->settings.logs[i].cond && p->settings.logs[i].cond <= sq->log_conds.n) {
            const struct rule *r = &sq->log_conds.v[p->settings.logs[i].cond - 1];
            fprintf(out, "#   access_log %s only when:", p->settings.logs[i].path);
            for (uint32_t t = 0; t < r->n; t++)
                fprintf(out, " %s%s", sq->terms[r->first + t].neg ? "!" : "",
                        sq->acls[sq->terms[r->first + t].acl].name);
            fputc('\n', out);
        }
    fputs("# ACLs:\n", out);
    for (size_t i = 0; i < sq->n_acls; i++) {
        const struct acl *a = &sq->acls[i];
        fprintf(out, "#   acl %s %s%s", a->name, type_names[a->type], a->icase ? " -i" : "");
        for (size_t k = 0; k < a->n_dot; k++)
            fprintf(out, " .%s", a->dot[k]);
        for (size_t k = 0; k < a->n_exact; k++)
            fprintf(out, " %s", a->exact[k]);
        for (size_t k = 0; k < a->n_wilds; k++)
            fprintf(out, " %s%s%s", a->wilds[k].prefix, a->wilds[k].any ? "(.*)" : "*",
                    a->wilds[k].suffix);
        for (size_t k = 0; k < a->n_res; k++)
            fprintf(out, " %sregex:%s",
                    a->res[k].icase == a->icase ? ""
                    : a->res[k].icase           ? "-i "
                                                : "+i ",
                    a->res[k].text);
        for (size_t k = 0; k < a->n_cidrs; k++)
            print_cidr(out, &a->cidrs[k]);
        for (size_t k = 0; k < a->n_ports; k++)
            fprintf(out, a->ports[k].lo == a->ports[k].hi ? " %u" : " %u-%u", a->ports[k].lo,
                    a->ports[k].hi);
        for (size_t k = 0; k < a->n_methods; k++)
            fprintf(out, " %s", a->methods[k]);
        if (a->origin.line)
            fprintf(out, "  (%s:%u)", a->origin.source, a->origin.line);
        else
            fputs("  (built in)", out);
        fputc('\n', out);
    }
}

void awf_policy_print(const struct awf_policy *p, FILE *out)
{
    const struct awf_settings *s = &p->settings;
    fputs("version: 1\n", out);
    entries(out, p, false);
    entries(out, p, true);

    fputs("ports: [", out);
    for (size_t i = 0; i < s->n_ports; i++) {
        if (s->ports[i].lo == s->ports[i].hi)
            fprintf(out, "%s%u", i ? ", " : "", s->ports[i].lo);
        else
            fprintf(out, "%s\"%u-%u\"", i ? ", " : "", s->ports[i].lo, s->ports[i].hi);
    }
    fputs("]\nlisten:\n", out);
    for (size_t i = 0; i < s->n_listen; i++) {
        fputs("  - ", out);
        if (s->listen[i].intercept_port) {
            fputs("{address: ", out);
            ystr(out, s->listen[i].text);
            fprintf(out, ", intercept_port: %u}\n", s->listen[i].intercept_port);
        } else {
            ystr(out, s->listen[i].text);
            fputc('\n', out);
        }
    }
    fprintf(out, "threads: %u\n", s->threads);

    fputs("dns:\n  servers: [", out);
    for (size_t i = 0; i < s->dns.n_servers; i++) {
        fputs(i ? ", " : "", out);
        ystr(out, s->dns.servers[i]);
    }
    fputs("]\n  hosts_file: ", out);
    ystr(out, s->dns.hosts_file);
    fputs("\n  min_ttl: ", out);
    duration(out, (uint64_t)s->dns.min_ttl_s * 1000);
    fputs("\n  max_ttl: ", out);
    duration(out, (uint64_t)s->dns.max_ttl_s * 1000);
    fputs("\n  negative_ttl: ", out);
    duration(out, (uint64_t)s->dns.negative_ttl_s * 1000);
    fputs("\n  forwarder:\n    listen: [", out);
    for (size_t i = 0; i < s->dns.forwarder.n_listen; i++) {
        fputs(i ? ", " : "", out);
        ystr(out, s->dns.forwarder.listen[i].text);
    }
    fprintf(out, "]\n    deny_rcode: %s\n    log: ",
            s->dns.forwarder.deny_rcode == 3 ? "nxdomain" : "refused");
    ystr(out, s->dns.forwarder.log);
    fputs("\n    idle: ", out);
    duration(out, s->dns.forwarder.idle_ms);

    fputs("\naddresses:\n  allow: [", out);
    for (size_t i = 0; i < s->n_allow_ranges; i++) {
        fputs(i ? ", " : "", out);
        cidr(out, &s->allow_ranges[i]);
    }
    fprintf(out, "]\nlogs:\n  strip_query: %s\n  awf_version: ", s->strip_query ? "true" : "false");
    ystr(out, s->awf_version);
    fputs("\n  outputs:\n", out);
    for (size_t i = 0; i < s->n_logs; i++) {
        fputs("    - {format: ", out);
        ystr(out, s->logs[i].format);
        fputs(", path: ", out);
        ystr(out, s->logs[i].path);
        fputs("}\n", out);
    }

    const struct awf_timeouts *t = &s->timeouts;
    const struct {
        const char *name;
        uint64_t ms;
    } touts[] = {
        {"connect", t->connect_ms},
        {"read_idle", t->read_idle_ms},
        {"request_headers", t->request_headers_ms},
        {"client_idle", t->client_idle_ms},
        {"upstream_idle", t->upstream_idle_ms},
        {"lifetime", t->lifetime_ms},
        {"client_hello", t->client_hello_ms},
        {"dns", t->dns_ms},
        {"shutdown_drain", t->shutdown_drain_ms},
    };
    fputs("timeouts:\n", out);
    for (size_t i = 0; i < sizeof touts / sizeof touts[0]; i++) {
        fprintf(out, "  %s: ", touts[i].name);
        duration(out, touts[i].ms);
        fputc('\n', out);
    }
    fprintf(out,
            "limits:\n  max_connections: %u\n  max_tunnels: %u\n  header_bytes: %u\n"
            "  header_count: %u\n",
            s->limits.max_connections, s->limits.max_tunnels, s->limits.header_bytes,
            s->limits.header_count);
    fprintf(out, "tls:\n  sni_in_connect: %s\n  deny_ech: %s\n  alert_on_deny: %s\n",
            s->tls.sni_in_connect ? "true" : "false", s->tls.deny_ech ? "true" : "false",
            s->tls.alert_on_deny ? "true" : "false");
    fputs("tunnels:\n  opaque_ports: [", out);
    for (size_t i = 0; i < s->tunnels.n_opaque_ports; i++) {
        const struct awf_port_range *r = &s->tunnels.opaque_ports[i];
        if (r->lo == r->hi)
            fprintf(out, "%s%u", i ? ", " : "", r->lo);
        else
            fprintf(out, "%s\"%u-%u\"", i ? ", " : "", r->lo, r->hi);
    }
    fputs("]\n  opaque_hosts: [", out);
    for (size_t i = 0; i < s->tunnels.n_opaque_hosts; i++) {
        fputs(i ? ", " : "", out);
        ystr(out, s->tunnels.opaque_hosts[i]);
    }
    fputs("]\n", out);
    if (s->pid_file) {
        fputs("pid_file: ", out);
        ystr(out, s->pid_file);
        fputc('\n', out);
    }
    if (s->cache_log) {
        fputs("cache_log: ", out);
        ystr(out, s->cache_log);
        fputc('\n', out);
    }
    if (s->parent.host) {
        bool v6 = strchr(s->parent.host, ':') != NULL;
        fprintf(out, "parent: \"%s%s%s:%u\"\n", v6 ? "[" : "", s->parent.host, v6 ? "]" : "",
                s->parent.port);
    }
    if (s->admin.text) {
        fputs("admin: ", out);
        ystr(out, s->admin.text);
        fputc('\n', out);
    }
    const struct awf_bump_settings *b = &s->ssl_bump;
    fprintf(out, "ssl_bump:\n  enabled: %s\n  cert_cache: %u\n", b->enabled ? "true" : "false",
            b->cert_cache_bytes);
    const char *const files[][2] = {
        {"ca_cert", b->ca_cert}, {"ca_key", b->ca_key}, {"upstream_ca_file", b->upstream_ca_file}};
    for (size_t i = 0; i < 3; i++) {
        if (files[i][1]) {
            fprintf(out, "  %s: ", files[i][0]);
            ystr(out, files[i][1]);
            fputc('\n', out);
        }
    }
    if (b->n_splice) {
        fputs("  splice:\n", out);
        for (size_t i = 0; i < b->n_splice; i++) {
            fputs("    - ", out);
            ystr(out, b->splice[i]);
            fputc('\n', out);
        }
    }
    if (b->n_allow_urls) {
        fputs("allow_urls:\n", out);
        for (size_t i = 0; i < b->n_allow_urls; i++) {
            fputs("  - ", out);
            ystr(out, b->allow_urls[i]);
            fputc('\n', out);
        }
    }
    if (p->squid)
        print_squid_rules(p, out);
}
