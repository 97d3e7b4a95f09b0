/* squid.conf's ACLs and rules as the reader meets them: `acl` lines (the values go to acl.c),
 * Squid's predefined ACLs, and the ordered rule lists of http_access, always_direct,
 * never_direct, ssl_bump and access_log conditions, each term an ACL defined above it. */

#include "policy/policy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct acl *acl_find(struct squid_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->sq->n_acls; i++)
        if (strcmp(c->sq->acls[i].name, name) == 0)
            return &c->sq->acls[i];
    return NULL;
}

static struct acl *acl_new(struct squid_ctx *c, const char *name, enum acl_type type)
{
    struct acl *g = realloc(c->sq->acls, (c->sq->n_acls + 1) * sizeof *g);
    if (!g)
        return NULL;
    c->sq->acls = g;
    struct acl *a = &g[c->sq->n_acls];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name)))
        return NULL;
    a->type = type;
    a->origin = (struct awf_origin){c->sq->source, c->line, 1};
    c->sq->n_acls++;
    return a;
}

/* Squid's predefined ACLs. `manager` (cache manager URLs) can never match here. */
int policy_squid_builtin_acls(struct squid_ctx *c)
{
    static const struct {
        const char *name;
        enum acl_type type;
        const char *vals[4];
    } b[] = {
        {"all", ACL_ALL, {NULL}},
        {"localhost", ACL_SRC, {"127.0.0.1/32", "::1", NULL}},
        {"to_localhost", ACL_DST, {"127.0.0.0/8", "0.0.0.0/32", "::1", "::/128"}},
        {"to_linklocal", ACL_DST, {"169.254.0.0/16", "fe80::/10", NULL}},
        {"manager", ACL_METHOD, {NULL}},
    };
    char why[160];
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        struct acl *a = acl_new(c, b[i].name, b[i].type);
        if (!a)
            return policy_squid_oom(c);
        a->origin.line = 0;
        size_t n = 0;
        while (n < 4 && b[i].vals[n])
            n++;
        if (policy_acl_add_values(a, (char **)b[i].vals, n, NULL, 0, why, sizeof why) < 0)
            return policy_squid_oom(c);
    }
    return 0;
}

static const struct {
    const char *name;
    enum acl_type type;
} acl_types[] = {
    {"dstdomain", ACL_DSTDOMAIN},
    {"dstdom_regex", ACL_DSTDOM_REGEX},
    {"dst", ACL_DST},
    {"src", ACL_SRC},
    {"port", ACL_PORT},
    {"method", ACL_METHOD},
    {"url_regex", ACL_URL_REGEX},
    {"at_step", ACL_AT_STEP},
};

bool policy_squid_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

int policy_squid_acl(struct squid_ctx *c, struct squid_line *l)
{
    if (l->n < 3)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "acl: want acl NAME TYPE VALUE...");
    const char *name = l->tok[1], *tname = l->tok[2];
    if (!policy_squid_name_ok(name))
        return policy_squid_errf(c, AWF_E_POLICY_INVALID, "acl: invalid ACL name \"%s\"", name);
    int type = -1;
    for (size_t i = 0; i < sizeof acl_types / sizeof acl_types[0]; i++)
        if (strcmp(acl_types[i].name, tname) == 0)
            type = (int)acl_types[i].type;
    if (type < 0)
        return policy_squid_errf(
            c, AWF_E_POLICY_INVALID,
            "acl %s: type \"%s\" is not supported (dstdomain, dstdom_regex, dst, src, "
            "port, method, url_regex, at_step)",
            name, tname);
    size_t i = 3;
    bool icase = false;
    for (; i < l->n && (l->tok[i][0] == '-' || strcmp(l->tok[i], "+i") == 0) && l->tok[i][1]; i++) {
        bool re = type == ACL_DSTDOM_REGEX || type == ACL_URL_REGEX;
        if (strcmp(l->tok[i], "-i") == 0 && re)
            icase = true;
        else if (strcmp(l->tok[i], "+i") == 0 && re)
            icase = false;
        else if (strcmp(l->tok[i], "-n") == 0 && (type == ACL_DSTDOMAIN || type == ACL_DST))
            continue; /* no reverse lookups: awf-proxy never does them */
        else if (strcmp(l->tok[i], "--") == 0) {
            i++;
            break;
        } else
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "acl %s: flag \"%s\" is not supported for %s", name, l->tok[i],
                                     tname);
    }
    if (i >= l->n)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "acl %s: no values", name);
    for (size_t j = i; j < l->n; j++)
        if (l->tok[j][0] == '"')
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "acl %s: values from a file (%s) are not supported", name,
                                     l->tok[j]);
    struct acl *a = acl_find(c, name);
    if (a && a->type != (enum acl_type)type)
        return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                 "acl %s: already defined with another type%s", name,
                                 a->origin.line ? "" : " (built in)");
    if (!a && !(a = acl_new(c, name, (enum acl_type)type)))
        return policy_squid_oom(c);
    /* A regex list may switch case between its patterns, as Squid 5.7 reads it: "-i a +i B"
     * makes a case-insensitive and B case-sensitive. Each run of values is added with its own. */
    bool re = type == ACL_DSTDOM_REGEX || type == ACL_URL_REGEX;
    while (i < l->n) {
        size_t end = i;
        while (end < l->n &&
               !(re && (strcmp(l->tok[end], "-i") == 0 || strcmp(l->tok[end], "+i") == 0)))
            end++;
        a->icase = icase;
        char why[AWF_POLICY_ERRLEN];
        int rc =
            end > i ? policy_acl_add_values(a, l->tok + i, end - i, c->sq, c->line, why, sizeof why)
                    : 0;
        if (rc < 0)
            return rc == -ENOMEM
                       ? policy_squid_oom(c)
                       : policy_squid_errf(c, AWF_E_POLICY_INVALID, "acl %s: %s", name, why);
        if (end < l->n)
            icase = l->tok[end][0] == '-';
        i = end + 1;
    }
    if (type == ACL_URL_REGEX)
        c->sq->has_url_regex = true;
    return 0;
}

/* ---- rules ---- */

/* Parses "[!]ACL ..." from tok[from..] into a new rule appended to list. */
int policy_squid_add_rule(struct squid_ctx *c, struct rule_list *list, bool allow,
                          struct squid_line *l, size_t from, const char *text)
{
    if (from >= l->n)
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "%s: no ACL named", l->tok[0]);
    struct squid_rules *sq = c->sq;
    uint32_t first = (uint32_t)sq->n_terms;
    for (size_t i = from; i < l->n; i++) {
        const char *t = l->tok[i];
        bool neg = false;
        if (t[0] == '!') {
            neg = true;
            if (!*++t) {
                if (++i >= l->n)
                    return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "%s: \"!\" without an ACL",
                                             l->tok[0]);
                t = l->tok[i];
            }
        }
        const struct acl *a = acl_find(c, t);
        if (!a)
            return policy_squid_errf(c, AWF_E_POLICY_INVALID,
                                     "%s: unknown ACL \"%s\" (define it above)", l->tok[0], t);
        struct rule_term *g = realloc(sq->terms, (sq->n_terms + 1) * sizeof *g);
        if (!g)
            return policy_squid_oom(c);
        sq->terms = g;
        g[sq->n_terms++] = (struct rule_term){(uint32_t)(a - sq->acls), neg};
    }
    struct rule *g = realloc(list->v, (list->n + 1) * sizeof *g);
    if (!g)
        return policy_squid_oom(c);
    list->v = g;
    struct rule *r = &g[list->n];
    *r = (struct rule){.first = first, .n = (uint32_t)(sq->n_terms - first)};
    r->pub.allow = allow;
    r->pub.origin = (struct awf_origin){c->sq->source, c->line, 1};
    if (!(r->pub.text = strdup(text)))
        return policy_squid_oom(c);
    list->n++;
    return 0;
}

/* ssl_bump ACTION [!]ACL...: splice, bump and terminate are kept in order; peek and stare
 * are what awf-proxy always does before deciding (the ClientHello is read, the server is
 * verified when bumping), so their rules need no action. */
int policy_squid_ssl_bump(struct squid_ctx *c, struct squid_line *l)
{
    static const char *const actions[] = {"splice", "bump", "terminate"};
    static const uint8_t codes[] = {AWF_BUMP_SPLICE, AWF_BUMP_BUMP, AWF_BUMP_TERMINATE};
    if (l->n < 3)
        return policy_squid_errf(
            c, AWF_E_POLICY_SYNTAX,
            "ssl_bump: want ssl_bump peek|stare|splice|bump|terminate [!]ACL...");
    const char *a = l->tok[1];
    if (strcmp(a, "peek") == 0 || strcmp(a, "stare") == 0) {
        for (size_t i = 2; i < l->n; i++) /* the ACLs must still exist */
            if (!acl_find(c, l->tok[i][0] == '!' ? l->tok[i] + 1 : l->tok[i]))
                return policy_squid_errf(c, AWF_E_POLICY_INVALID, "ssl_bump: unknown ACL \"%s\"",
                                         l->tok[i]);
        return 0;
    }
    size_t k = 0;
    while (k < 3 && strcmp(a, actions[k]) != 0)
        k++;
    if (k == 3)
        return policy_squid_errf(
            c, AWF_E_POLICY_INVALID,
            "ssl_bump: action \"%s\" is not supported (peek, stare, splice, bump, "
            "terminate)",
            a);
    uint8_t *g = realloc(c->sq->bump_actions, c->sq->ssl_bump.n + 1);
    if (!g)
        return policy_squid_oom(c);
    c->sq->bump_actions = g;
    g[c->sq->ssl_bump.n] = codes[k];
    char text[1024];
    size_t o = 0;
    for (size_t i = 1; i < l->n && o + 2 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i > 1 ? " " : "", l->tok[i]);
    return policy_squid_add_rule(c, &c->sq->ssl_bump, codes[k] != AWF_BUMP_TERMINATE, l, 2, text);
}

int policy_squid_access(struct squid_ctx *c, struct squid_line *l)
{
    struct rule_list *list = strcmp(l->tok[0], "http_access") == 0     ? &c->sq->http_access
                             : strcmp(l->tok[0], "always_direct") == 0 ? &c->sq->always_direct
                                                                       : &c->sq->never_direct;
    if (l->n < 2 || (strcmp(l->tok[1], "allow") != 0 && strcmp(l->tok[1], "deny") != 0))
        return policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "%s: want allow|deny [!]ACL...",
                                 l->tok[0]);
    /* The rule's text as written after the directive, single-spaced. */
    char text[1024];
    size_t o = 0;
    for (size_t i = 1; i < l->n && o + 2 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i > 1 ? " " : "", l->tok[i]);
    return policy_squid_add_rule(c, list, strcmp(l->tok[1], "allow") == 0, l, 2, text);
}
