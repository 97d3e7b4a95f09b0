/* squid.conf ACLs: parsing their values and matching one request against one ACL.
 *
 * dstdomain names live in two sorted arrays (exact names, and ".x" entries stored as "x"), so a
 * lookup is one binary search per label-aligned suffix of the host: O(labels * log entries).
 * dstdom_regex patterns of the shapes AWF generates are compiled into the same arrays or into
 * prefix*suffix wildcards matched without backtracking; any other pattern falls back to POSIX
 * regcomp() with the flags Squid itself uses, so its meaning is exactly Squid's. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int push_str(char ***arr, size_t *n, const char *s, size_t len)
{
    char **g = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!g)
        return -ENOMEM;
    *arr = g;
    if (!(g[*n] = policy_strndup(s, len)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int regex_compile(struct acl *a, const char *re, size_t len, bool icase);

static bool cidr_match(const struct awf_cidr *c, int family, const uint8_t *ip)
{
    if (c->family != family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(ip, c->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip[full] & mask) == (c->addr[full] & mask);
}

/* A dstdomain value: ".example.com" (the domain and its subdomains) or "example.com" (that
 * host only). Lower-cased. A value with a trailing dot ("github.com.", ".github.com.") matches
 * nothing in Squid, which compares it with hosts that have lost their trailing dot: it is
 * checked, then left out (returns 1, the caller reports it). */
static int add_domain(struct acl *a, const char *v, size_t len, char *why, size_t whylen)
{
    bool dot = len > 0 && v[0] == '.';
    const char *s = v + dot;
    size_t n = len - dot;
    bool trailing = n > 1 && s[n - 1] == '.';
    if (trailing)
        n--;
    struct host h;
    enum host_kind kind = n ? policy_host_parse(s, n, &h) : HOST_INVALID;
    if (kind == HOST_INVALID) {
        char q[96];
        policy_quote(q, sizeof q, v, len);
        snprintf(why, whylen, "invalid dstdomain %s", q);
        return -1;
    }
    if (trailing)
        return 1;
    char buf[AWF_HOST_MAX + 1];
    if (kind == HOST_IP) {
        /* Requests for IP hosts are matched by their canonical text ("::1", never "[::1]" or
         * "0:0::1"), so an address value is stored that way too. */
        if (!inet_ntop(h.family, h.ip, buf, sizeof buf)) {
            snprintf(why, whylen, "invalid dstdomain address");
            return -1;
        }
        return push_str(&a->exact, &a->n_exact, buf, strlen(buf));
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    return dot ? push_str(&a->dot, &a->n_dot, buf, n) : push_str(&a->exact, &a->n_exact, buf, n);
}

static int add_regex(struct acl *a, const char *v, size_t len, char *why, size_t whylen)
{
    /* url_regex patterns are matched against whole URLs: only dstdom_regex has fast forms. */
    int rc = a->type == ACL_DSTDOM_REGEX ? regex_compile(a, v, len, a->icase) : 0;
    if (rc != 0)
        return rc < 0 ? rc : 0;
    struct acl_regex r = {.text = policy_strndup(v, len), .icase = a->icase};
    if (!r.text)
        return -ENOMEM;
    int e = regcomp(&r.re, r.text, REG_EXTENDED | REG_NOSUB | (a->icase ? REG_ICASE : 0));
    if (e != 0) {
        char msg[128];
        regerror(e, &r.re, msg, sizeof msg);
        snprintf(why, whylen, "invalid regular expression \"%s\": %s", r.text, msg);
        free(r.text);
        return -1;
    }
    struct acl_regex *g = realloc(a->res, (a->n_res + 1) * sizeof *g);
    if (!g) {
        regfree(&r.re);
        free(r.text);
        return -ENOMEM;
    }
    a->res = g;
    a->res[a->n_res++] = r;
    return 0;
}

/* "a" or "a-b", through the policy's one port parser (a scratch builder) so a port means the
 * same in squid.conf as in YAML. */
static int add_port(struct acl *a, const char *v, size_t len, char *why, size_t whylen)
{
    struct awf_port_range r;
    const struct skey k = {"ports", K_PORTS, 0};
    struct awf_policy_builder tmp = {0};
    if (policy_set_item(&tmp, &k, v, len, why, whylen) < 0) {
        free(tmp.s.ports);
        return -1;
    }
    r = tmp.s.ports[0];
    free(tmp.s.ports);
    struct awf_port_range *g = realloc(a->ports, (a->n_ports + 1) * sizeof *g);
    if (!g)
        return -ENOMEM;
    a->ports = g;
    a->ports[a->n_ports++] = r;
    return 0;
}

/* "10.0.0.0/8", "::1", "127.0.0.1/255.0.0.0" is not taken (CIDR only), "all" neither. */
static int add_cidr(struct acl *a, const char *v, size_t len, char *why, size_t whylen)
{
    struct awf_cidr c;
    if (policy_parse_cidr(v, len, &c, why, whylen) < 0)
        return -1;
    struct awf_cidr *g = realloc(a->cidrs, (a->n_cidrs + 1) * sizeof *g);
    if (!g)
        return -ENOMEM;
    a->cidrs = g;
    a->cidrs[a->n_cidrs++] = c;
    return 0;
}

int policy_acl_add_values(struct acl *a, char **vals, size_t n, struct squid_rules *sq,
                          unsigned line, char *why, size_t whylen)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *v = vals[i];
        size_t len = strlen(v);
        switch (a->type) {
        case ACL_DSTDOMAIN:
            rc = add_domain(a, v, len, why, whylen);
            if (rc == 1) {
                rc = sq ? policy_squid_notice(sq, line,
                                              "acl %s: dstdomain \"%s\" ends in a dot and matches "
                                              "nothing (as in Squid: request hosts lose their "
                                              "trailing dot before matching)",
                                              a->name, v)
                        : 0;
            }
            break;
        case ACL_DSTDOM_REGEX:
        case ACL_URL_REGEX:
            rc = add_regex(a, v, len, why, whylen);
            break;
        case ACL_DST:
        case ACL_SRC:
            rc = add_cidr(a, v, len, why, whylen);
            break;
        case ACL_PORT:
            rc = add_port(a, v, len, why, whylen);
            break;
        case ACL_METHOD:
            rc = push_str(&a->methods, &a->n_methods, v, len);
            break;
        case ACL_AT_STEP:
            if (len == 8 && memcmp(v, "SslBump", 7) == 0 && v[7] >= '1' && v[7] <= '3') {
                a->steps |= (uint8_t)(1u << (v[7] - '0'));
                rc = 0;
            } else {
                snprintf(why, whylen, "at_step: want SslBump1, SslBump2 or SslBump3");
                rc = -1;
            }
            break;
        case ACL_ALL:
            snprintf(why, whylen, "ACL \"all\" is built in and takes no values");
            rc = -1;
            break;
        }
    }
    if (rc == -ENOMEM)
        snprintf(why, whylen, "out of memory");
    if (a->n_exact > 1)
        qsort(a->exact, a->n_exact, sizeof *a->exact, str_cmp);
    if (a->n_dot > 1)
        qsort(a->dot, a->n_dot, sizeof *a->dot, str_cmp);
    return rc;
}

void policy_acl_free(struct acl *a)
{
    free(a->name);
    for (size_t i = 0; i < a->n_exact; i++)
        free(a->exact[i]);
    for (size_t i = 0; i < a->n_dot; i++)
        free(a->dot[i]);
    free(a->exact);
    free(a->dot);
    for (size_t i = 0; i < a->n_wilds; i++) {
        free(a->wilds[i].prefix);
        free(a->wilds[i].suffix);
    }
    free(a->wilds);
    for (size_t i = 0; i < a->n_res; i++) {
        regfree(&a->res[i].re);
        free(a->res[i].text);
    }
    free(a->res);
    free(a->cidrs);
    free(a->ports);
    for (size_t i = 0; i < a->n_methods; i++)
        free(a->methods[i]);
    free(a->methods);
    memset(a, 0, sizeof *a);
}

/* ---- compiling AWF's regex shapes ---- */

static const char DOMAIN_CLASS[] = "[a-zA-Z0-9.-]*";
#define DOMAIN_CLASS_LEN (sizeof DOMAIN_CLASS - 1)

/* Reads literal host characters up to a star, '$' or '(' and appends them (lower-cased) to
 * out. Returns the input consumed, or -1 for anything that is not a plain literal. */
static long literal_run(const char *re, size_t len, bool icase, char *out, size_t *olen, size_t cap)
{
    size_t i = 0;
    while (i < len) {
        char c = re[i];
        if (c == '\\') {
            if (i + 1 >= len || re[i + 1] != '.')
                return -1; /* only "\." appears in host patterns; others fall back */
            c = '.';
            i += 2;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            i++;
        } else if (c >= 'A' && c <= 'Z') {
            if (!icase)
                return -1; /* hosts are lower-cased: keep Squid's exact answer via regcomp */
            c = (char)(c + 32);
            i++;
        } else {
            break;
        }
        if (*olen + 1 >= cap)
            return -1;
        out[(*olen)++] = c;
    }
    return (long)i;
}

static int push_wild(struct acl *a, const char *p, size_t pl, const char *s, size_t sl, bool any)
{
    struct acl_wild w = {policy_strndup(p, pl), policy_strndup(s, sl), pl, sl, any};
    struct acl_wild *g =
        (w.prefix && w.suffix) ? realloc(a->wilds, (a->n_wilds + 1) * sizeof *g) : NULL;
    if (!g) {
        free(w.prefix);
        free(w.suffix);
        return -ENOMEM;
    }
    a->wilds = g;
    a->wilds[a->n_wilds++] = w;
    return 0;
}

/* The shapes (AWF's wildcardToRegex and the forms the brief lists):
 *   ^LIT$                          exact host
 *   ^LIT[a-zA-Z0-9.-]*LIT$         one domain-character star
 *   ^LIT.*LIT$                     one any-character star (older AWF)
 *   ^([a-zA-Z0-9.-]*\.)?LIT$       LIT and its subdomains (subdomain part of domain chars)
 * LIT: a-z 0-9 - _ and "\." (A-Z with -i). Returns 1 compiled, 0 not of these shapes. */
static int regex_compile(struct acl *a, const char *re, size_t len, bool icase)
{
    char pre[AWF_HOST_MAX + 2], suf[AWF_HOST_MAX + 2];
    size_t pl = 0, sl = 0;
    if (len < 2 || re[0] != '^' || re[len - 1] != '$' || (len >= 3 && re[len - 2] == '\\'))
        return 0;
    const char *p = re + 1;
    size_t n = len - 2;
    static const char OPT[] = "([a-zA-Z0-9.-]*\\.)?";
    size_t optlen = sizeof OPT - 1;
    if (n > optlen && memcmp(p, OPT, optlen) == 0) {
        long used = literal_run(p + optlen, n - optlen, icase, suf, &sl, sizeof suf);
        if (used < 0 || (size_t)used != n - optlen || sl == 0)
            return 0;
        struct host h;
        if (policy_host_parse(suf, sl, &h) != HOST_NAME || h.len != sl)
            return 0; /* e.g. a trailing dot: leave it to regcomp */
        char dotted[AWF_HOST_MAX + 3];
        dotted[0] = '.';
        memcpy(dotted + 1, suf, sl);
        if (push_str(&a->exact, &a->n_exact, suf, sl) < 0 ||
            push_wild(a, "", 0, dotted, sl + 1, false) < 0)
            return -ENOMEM;
        return 1;
    }
    long used = literal_run(p, n, icase, pre, &pl, sizeof pre);
    if (used < 0)
        return 0;
    p += used;
    n -= (size_t)used;
    if (n == 0) {
        if (pl == 0)
            return 0;
        return push_str(&a->exact, &a->n_exact, pre, pl) < 0 ? -ENOMEM : 1;
    }
    bool any;
    if (n >= DOMAIN_CLASS_LEN && memcmp(p, DOMAIN_CLASS, DOMAIN_CLASS_LEN) == 0) {
        any = false;
        p += DOMAIN_CLASS_LEN;
        n -= DOMAIN_CLASS_LEN;
    } else if (n >= 2 && p[0] == '.' && p[1] == '*') {
        any = true;
        p += 2;
        n -= 2;
    } else {
        return 0;
    }
    used = literal_run(p, n, icase, suf, &sl, sizeof suf);
    if (used < 0 || (size_t)used != n)
        return 0;
    return push_wild(a, pre, pl, suf, sl, any) < 0 ? -ENOMEM : 1;
}

/* ---- matching ---- */

static bool in_sorted(char *const *arr, size_t n, const char *key)
{
    return n && bsearch(&key, arr, n, sizeof *arr, str_cmp) != NULL;
}

static bool wild_match(const struct acl_wild *w, const char *h, size_t n)
{
    if (n < w->plen + w->slen || memcmp(h, w->prefix, w->plen) != 0 ||
        memcmp(h + n - w->slen, w->suffix, w->slen) != 0)
        return false;
    if (w->any)
        return true;
    for (size_t i = w->plen; i < n - w->slen; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool match_domain(const struct acl *a, const char *name, size_t len)
{
    if (in_sorted(a->exact, a->n_exact, name))
        return true;
    if (a->n_dot)
        for (size_t i = 0; i < len; i++)
            if ((i == 0 || name[i - 1] == '.') && in_sorted(a->dot, a->n_dot, name + i))
                return true;
    for (size_t i = 0; i < a->n_wilds; i++)
        if (wild_match(&a->wilds[i], name, len))
            return true;
    for (size_t i = 0; i < a->n_res; i++)
        if (regexec(&a->res[i].re, name, 0, NULL, 0) == 0)
            return true;
    return false;
}

static bool match_cidrs(const struct acl *a, int family, const uint8_t *ip)
{
    for (size_t i = 0; i < a->n_cidrs; i++)
        if (cidr_match(&a->cidrs[i], family, ip))
            return true;
    return false;
}

/* As Squid's dst ACL: a name matches when any address it resolved to is in the list. */
static enum acl_result match_dst_name(const struct acl *a, const struct rule_req *rq)
{
    if (!rq->addrs_known)
        return ACL_NEED_ADDRS;
    const char *base = rq->addrs;
    for (size_t i = 0; i < rq->n_addrs; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)(base + i * rq->addr_size);
        int family = sa->sa_family;
        uint8_t ip[16] = {0};
        if (family == AF_INET)
            memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        else if (family == AF_INET6)
            memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        else
            continue;
        policy_ip_fold(&family, ip);
        if (match_cidrs(a, family, ip))
            return ACL_YES;
    }
    return ACL_NO;
}

static bool match_url(const struct acl *a, const char *url)
{
    for (size_t i = 0; url && i < a->n_res; i++)
        if (regexec(&a->res[i].re, url, 0, NULL, 0) == 0)
            return true;
    return false;
}

enum acl_result policy_acl_match(const struct acl *a, const struct rule_req *rq)
{
    switch (a->type) {
    case ACL_ALL:
        return ACL_YES;
    case ACL_DSTDOMAIN:
    case ACL_DSTDOM_REGEX:
        if (rq->kind == HOST_IP)
            return match_domain(a, rq->ipname, strlen(rq->ipname));
        return match_domain(a, rq->h->name, rq->h->len);
    case ACL_URL_REGEX:
        return match_url(a, rq->url);
    case ACL_DST:
        if (rq->kind != HOST_IP)
            return match_dst_name(a, rq);
        return match_cidrs(a, rq->h->family, rq->h->ip);
    case ACL_SRC:
        if (!rq->have_client)
            return ACL_YES; /* unknown client: see awf_policy_decide_req() */
        for (size_t i = 0; i < a->n_cidrs; i++)
            if (cidr_match(&a->cidrs[i], rq->cfamily, rq->cip))
                return ACL_YES;
        return ACL_NO;
    case ACL_PORT:
        for (size_t i = 0; i < a->n_ports; i++)
            if (rq->port >= a->ports[i].lo && rq->port <= a->ports[i].hi)
                return ACL_YES;
        return ACL_NO;
    case ACL_METHOD:
        for (size_t i = 0; i < a->n_methods; i++)
            if (strcmp(a->methods[i], rq->method) == 0)
                return ACL_YES;
        return ACL_NO;
    case ACL_AT_STEP:
        return (a->steps & rq->bump_step) ? ACL_YES : ACL_NO;
    }
    return ACL_NO;
}
