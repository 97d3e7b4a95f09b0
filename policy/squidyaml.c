/* squid.conf policies seen as YAML: `squid-conf FILE --to-policy` translates the rules of AWF's
 * generated shape into the YAML model (block list, allow list with http:// / https:// scopes,
 * ports, addresses), naming on stderr every rule it cannot express rather than guessing. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- --to-policy ---- */

struct conv {
    const struct squid_rules *sq;
    struct awf_policy_builder *b;
    FILE *warn;
    int warnings;
    int rc;
};

static void warnf(struct conv *c, const struct awf_origin *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warnf(struct conv *c, const struct awf_origin *o, const char *fmt, ...)
{
    c->warnings++;
    if (!c->warn)
        return;
    fprintf(c->warn, "%s:%u: ", o->source, o->line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->warn, fmt, ap);
    va_end(ap);
    fputc('\n', c->warn);
}

static void add(struct conv *c, const struct awf_origin *o, bool block, const char *scope,
                const char *entry)
{
    char text[AWF_HOST_MAX + 16], err[AWF_POLICY_ERRLEN];
    int n = snprintf(text, sizeof text, "%s%s", block ? "" : scope, entry);
    if (n < 0 || (size_t)n >= sizeof text) { /* longer than any valid name: not an entry */
        warnf(c, o, "\"%.64s...\" is too long to be a YAML entry, left out", entry);
        return;
    }
    int rc = policy_builder_add_entry(c->b, block, text, strlen(text), o->source, o->line, 1, err,
                                      sizeof err);
    if (rc == -ENOMEM)
        c->rc = rc;
    else if (rc < 0)
        warnf(c, o, "\"%s\" cannot be a YAML entry, left out", text);
}

static bool is_connect(const struct acl *a)
{
    return a->type == ACL_METHOD && a->n_methods == 1 && strcmp(a->methods[0], "CONNECT") == 0;
}

static bool is_domain(const struct acl *a)
{
    return a->type == ACL_DSTDOMAIN || a->type == ACL_DSTDOM_REGEX;
}

/* The regexes AWF writes to deny raw-IP targets; YAML denies those by default. */
static bool raw_ip_regex(const struct acl *a)
{
    if (a->type != ACL_DSTDOM_REGEX || a->n_res == 0 || a->n_exact || a->n_dot || a->n_wilds)
        return false;
    for (size_t i = 0; i < a->n_res; i++)
        if (strncmp(a->res[i].text, "^[0-9]+", 7) != 0 && !strstr(a->res[i].text, "[0-9a-fA-F:]+"))
            return false;
    return true;
}

static void add_acl(struct conv *c, const struct awf_origin *o, const struct acl *a, bool block,
                    const char *scope)
{
    char buf[2 * AWF_HOST_MAX + 8];
    for (size_t i = 0; i < a->n_dot; i++)
        add(c, o, block, scope, a->dot[i]);
    for (size_t i = 0; i < a->n_exact; i++) {
        const char *x = a->exact[i];
        bool covered = false; /* by ".x" */
        for (size_t k = 0; k < a->n_dot && !covered; k++)
            covered = strcmp(a->dot[k], x) == 0;
        if (covered)
            continue;
        bool opt = false; /* "^([a-zA-Z0-9.-]*\.)?x$": x and its subdomains, YAML's "x" */
        for (size_t k = 0; k < a->n_wilds && !opt; k++)
            opt = a->wilds[k].plen == 0 && !a->wilds[k].any && a->wilds[k].suffix[0] == '.' &&
                  strcmp(a->wilds[k].suffix + 1, x) == 0;
        if (!opt)
            warnf(c, o, "acl %s: exact host %s becomes %s and its subdomains", a->name, x, x);
        add(c, o, block, scope, x);
    }
    for (size_t i = 0; i < a->n_wilds; i++) {
        const struct acl_wild *w = &a->wilds[i];
        bool paired = false; /* "([..]*\.)?x": already written as "x" above */
        for (size_t k = 0; k < a->n_exact && !paired; k++)
            paired = w->plen == 0 && !w->any && w->suffix[0] == '.' &&
                     strcmp(w->suffix + 1, a->exact[k]) == 0;
        if (paired)
            continue;
        snprintf(buf, sizeof buf, "%s*%s", w->prefix, w->suffix);
        if (w->any)
            warnf(c, o, "acl %s: \".*\" becomes \"*\", which does not stand for '_'", a->name);
        add(c, o, block, scope, buf);
    }
    for (size_t i = 0; i < a->n_res; i++)
        warnf(c, o, "acl %s: regex %s has no YAML form, left out", a->name, a->res[i].text);
}

static void add_ports(struct conv *c, const struct awf_origin *o, const struct acl *a)
{
    bool has80 = false, has443 = false;
    for (size_t i = 0; i < a->n_ports; i++) {
        const struct awf_port_range *r = &a->ports[i];
        has80 |= r->lo <= 80 && 80 <= r->hi;
        has443 |= r->lo <= 443 && 443 <= r->hi;
        if (r->lo == r->hi && (r->lo == 80 || r->lo == 443))
            continue;
        if (policy_push_ports(&c->b->s, r) < 0) {
            c->rc = -ENOMEM;
            return;
        }
    }
    if (!has80 || !has443)
        warnf(c, o, "acl %s leaves out port 80 or 443, which YAML policies always allow", a->name);
}

/* One http_access rule. */
static void convert_rule(struct conv *c, const struct rule *r)
{
    const struct squid_rules *sq = c->sq;
    const struct awf_origin *o = &r->pub.origin;
    const struct acl *a[8];
    bool neg[8];
    uint32_t n = r->n < 8 ? r->n : 8;
    for (uint32_t i = 0; i < n; i++) {
        a[i] = &sq->acls[sq->terms[r->first + i].acl];
        neg[i] = sq->terms[r->first + i].neg;
    }
    bool allow = r->pub.allow;
    /* deny !Safe_ports, deny CONNECT !Safe_ports: the extra ports */
    if (!allow && n >= 1 && n <= 2 && a[n - 1]->type == ACL_PORT && neg[n - 1] &&
        (n == 1 || (is_connect(a[0]) && !neg[0]))) {
        if (n == 1)
            add_ports(c, o, a[0]);
        return;
    }
    if (!allow && n == 1 && !neg[0] && a[0]->type == ACL_ALL)
        return; /* "deny all": YAML denies whatever it does not allow */
    if (!allow && n == 1 && !neg[0] && raw_ip_regex(a[0]))
        return; /* YAML denies raw IP targets unless listed */
    if (!allow && n == 1 && !neg[0] && is_domain(a[0])) {
        add_acl(c, o, a[0], true, "");
        return;
    }
    bool all_neg_domains = !allow && n >= 1 && r->n <= 8;
    for (uint32_t i = 0; i < n && all_neg_domains; i++)
        all_neg_domains = neg[i] && is_domain(a[i]);
    if (all_neg_domains) { /* deny !allowed_domains !allowed_domains_regex */
        for (uint32_t i = 0; i < n; i++)
            add_acl(c, o, a[i], false, "");
        return;
    }
    if (allow && n == 1 && !neg[0] && is_domain(a[0])) {
        add_acl(c, o, a[0], false, "");
        return;
    }
    if (allow && n == 2 && is_connect(a[0]) && is_domain(a[1]) && !neg[1]) {
        add_acl(c, o, a[1], false, neg[0] ? "http://" : "https://");
        return;
    }
    if (allow && n == 1 && !neg[0] && a[0]->type == ACL_DST) {
        char buf[64];
        for (size_t i = 0; i < a[0]->n_cidrs; i++) {
            const struct awf_cidr *cd = &a[0]->cidrs[i];
            if (cd->prefix == (cd->family == AF_INET ? 32 : 128) &&
                inet_ntop(cd->family, cd->addr, buf, sizeof buf))
                add(c, o, false, "", buf);
            else
                warnf(c, o, "acl %s: only single addresses become allow entries", a[0]->name);
        }
        return;
    }
    bool src_only = true;
    for (uint32_t i = 0; i < n && src_only; i++)
        src_only = a[i]->type == ACL_SRC;
    if (src_only)
        warnf(c, o,
              "\"http_access %s\": YAML policies do not restrict clients (awf-proxy serves "
              "every client that reaches its listener), left out",
              r->pub.text);
    else
        warnf(c, o, "\"http_access %s\" has no YAML form, left out", r->pub.text);
}

int awf_policy_to_yaml(const struct awf_policy *p, FILE *out, FILE *warn)
{
    if (!p->squid) {
        awf_policy_print(p, out);
        return 0;
    }
    struct conv c = {.sq = p->squid, .warn = warn};
    if (!(c.b = awf_policy_builder_create()))
        return -ENOMEM;
    struct awf_settings *s = &c.b->s;
    policy_settings_free(s);
    if (policy_settings_copy(s, &p->settings) < 0) {
        awf_policy_builder_destroy(c.b);
        return -ENOMEM;
    }
    c.b->listen_default = c.b->logs_default = false;
    free(s->ports);
    s->ports = NULL;
    s->n_ports = 0;
    for (size_t i = 0; i < s->n_logs; i++)
        if (s->logs[i].cond) {
            const struct rule *r = &c.sq->log_conds.v[s->logs[i].cond - 1];
            warnf(&c, &r->pub.origin,
                  "access_log %s: its ACL condition has no YAML form, "
                  "every transaction is logged",
                  s->logs[i].path);
            s->logs[i].cond = 0;
        }
    for (size_t i = 0; i < c.sq->http_access.n && c.rc == 0; i++)
        convert_rule(&c, &c.sq->http_access.v[i]);
    const struct rule_list *lists[] = {&c.sq->always_direct, &c.sq->never_direct};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < lists[k]->n; i++) {
            const struct rule *r = &lists[k]->v[i];
            if (k == 1 && r->n == 1 && r->pub.allow &&
                c.sq->acls[c.sq->terms[r->first].acl].type == ACL_ALL)
                continue; /* never_direct allow all: what YAML's parent means */
            warnf(&c, &r->pub.origin, "\"%s %s\": YAML's parent takes every request, left out",
                  k ? "never_direct" : "always_direct", r->pub.text);
        }
    int rc = c.rc;
    if (rc == 0) {
        char err[AWF_POLICY_ERRLEN];
        struct awf_policy *y = awf_policy_build(c.b, err, sizeof err);
        if (!y) {
            if (warn)
                fprintf(warn, "%s\n", err);
            rc = -EINVAL;
        } else {
            awf_policy_print(y, out);
            awf_policy_unref(y);
        }
    }
    awf_policy_builder_destroy(c.b);
    return rc < 0 ? rc : c.warnings;
}
