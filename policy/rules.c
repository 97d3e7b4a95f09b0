/* squid.conf access rules: http_access, always_direct/never_direct and access_log conditions,
 * each an ordered list of rules whose ACLs are ANDed, evaluated with Squid's semantics (first
 * match wins, no match gives the opposite of the last rule). Read-only after loading, so any
 * number of threads evaluate them at once. */

#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct squid_rules *policy_squid_ref(struct squid_rules *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

static void free_list(struct rule_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->v[i].pub.text);
    free(l->v);
}

void policy_squid_unref(struct squid_rules *r)
{
    if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < r->n_acls; i++)
        policy_acl_free(&r->acls[i]);
    free(r->acls);
    free(r->terms);
    free_list(&r->http_access);
    free_list(&r->always_direct);
    free_list(&r->never_direct);
    free_list(&r->log_conds);
    free_list(&r->ssl_bump);
    free(r->bump_actions);
    for (size_t i = 0; i < r->n_notices; i++)
        free(r->notices[i]);
    free(r->notices);
    free(r->source);
    free(r);
}

/* The URL url_regex sees: the caller's, or one made from host and port; decoded as Squid does,
 * into the request's own buffer when it fits (most do), else onto the heap. */
static void set_url(const struct awf_policy_req *in, struct rule_req *out)
{
    char made[AWF_HOST_MAX + 64];
    const char *url = in->url;
    size_t len = in->url_len;
    if (!url) {
        bool tls = in->traffic == AWF_TRAFFIC_TLS;
        int n = awf_policy_request_url(made, sizeof made, tls ? NULL : "http", in->host,
                                       in->host_len, in->port, NULL, 0);
        if (n < 0)
            return; /* an invalid host: decided before any ACL is asked */
        url = made;
        len = (size_t)n;
    }
    char *dst = out->url_small;
    if (len >= sizeof out->url_small) {
        if (!(out->url_heap = malloc(len + 1)))
            return; /* out of memory: url_regex ACLs match nothing */
        dst = out->url_heap;
    }
    policy_url_unescape(dst, url, len);
    out->url = dst;
}

/* Fills out from in; with sq having url_regex ACLs also the decoded URL (which may allocate:
 * call rule_req_done after). */
static void fill_rule_req(const struct squid_rules *sq, const struct awf_policy_req *in,
                          struct host *h, struct rule_req *out)
{
    out->url = NULL;
    out->url_heap = NULL;
    out->bump_step = 0;
    out->h = h;
    out->kind = policy_host_parse(in->host, in->host_len, h);
    out->ipname[0] = '\0';
    if (out->kind == HOST_IP && !inet_ntop(h->family, h->ip, out->ipname, sizeof out->ipname))
        out->ipname[0] = '\0';
    out->have_client = false;
    out->addrs = in->addrs;
    out->addr_size = in->addr_size;
    out->n_addrs = in->addrs ? in->n_addrs : 0;
    out->addrs_known = in->addrs_known;
    if (sq && sq->has_url_regex && out->kind != HOST_INVALID)
        set_url(in, out);
    out->port = in->port;
    out->method = in->method ? in->method : in->traffic == AWF_TRAFFIC_TLS ? "CONNECT" : "GET";
    const struct sockaddr *sa = in->client;
    if (sa && sa->sa_family == AF_INET) {
        out->have_client = true;
        out->cfamily = AF_INET;
        memcpy(out->cip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        out->have_client = true;
        out->cfamily = AF_INET6;
        memcpy(out->cip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        policy_ip_fold(&out->cfamily, out->cip); /* ::ffff:127.0.0.1 is 127.0.0.1 to `src` */
    }
}

static void rule_req_done(struct rule_req *r)
{
    free(r->url_heap);
    r->url_heap = NULL;
    r->url = NULL;
}

static bool names_target(enum acl_type t)
{
    return t == ACL_DST || t == ACL_DSTDOMAIN || t == ACL_DSTDOM_REGEX;
}

/* A rule's ACLs are asked left to right and the first that fails ends it, as in Squid; one
 * that needs the name's addresses ends it with ACL_NEED_ADDRS (Squid goes off to resolve
 * there), unless the caller cannot wait (need_ok false), when it counts as no match. */
static enum acl_result rule_matches(const struct squid_rules *sq, const struct rule *r,
                                    const struct rule_req *rq, bool *addr, bool need_ok)
{
    bool named = false;
    for (uint32_t i = 0; i < r->n; i++) {
        const struct rule_term *t = &sq->terms[r->first + i];
        const struct acl *a = &sq->acls[t->acl];
        enum acl_result m = policy_acl_match(a, rq);
        if (m == ACL_NEED_ADDRS) {
            if (need_ok)
                return ACL_NEED_ADDRS;
            m = ACL_NO;
        }
        if ((m == ACL_YES) == t->neg)
            return ACL_NO;
        if (!t->neg && names_target(a->type))
            named = true;
    }
    if (addr)
        *addr = named;
    return ACL_YES;
}

/* The first matching rule, or NULL; *matched_addr: that rule has a positive
 * dst/dstdomain/dstdom_regex term (it matched, as all its terms did). *need (if not NULL): the
 * rules stopped at a dst ACL that needs the name's addresses (NULL returned); with need NULL
 * such an ACL counts as not matching. */
static const struct rule *first_rule(const struct squid_rules *sq, const struct rule_list *l,
                                     const struct rule_req *rq, bool *matched_addr, bool *need)
{
    if (need)
        *need = false;
    for (size_t i = 0; i < l->n; i++) {
        enum acl_result m = rule_matches(sq, &l->v[i], rq, matched_addr, need != NULL);
        if (m == ACL_NEED_ADDRS) {
            *need = true;
            return NULL;
        }
        if (m == ACL_YES)
            return &l->v[i];
    }
    return NULL;
}

/* Squid's answer of an allow/deny list (always_direct, never_direct): the first matching rule's,
 * else the opposite of the last rule's; none for an empty list. */
static bool rules_allow(const struct squid_rules *sq, const struct rule_list *l,
                        const struct rule_req *rq, bool none)
{
    if (l->n == 0)
        return none;
    const struct rule *r = first_rule(sq, l, rq, NULL, NULL);
    return r ? r->pub.allow : !l->v[l->n - 1].pub.allow;
}

void policy_rules_decide(const struct squid_rules *sq, const struct awf_policy_req *rq,
                         struct awf_verdict *out)
{
    struct host h;
    struct rule_req r;
    fill_rule_req(sq, rq, &h, &r);
    out->allow = false;
    out->need_addrs = false;
    out->entry = NULL;
    out->rule = NULL;
    if (r.kind == HOST_INVALID) {
        out->reason = AWF_REASON_INVALID_HOST;
        return;
    }
    bool addr = false, need = false;
    const struct rule *m = first_rule(sq, &sq->http_access, &r, &addr, &need);
    rule_req_done(&r);
    if (need) {
        out->need_addrs = true;
        out->reason = AWF_REASON_NOT_ALLOWED;
        return;
    }
    if (m) {
        out->rule = &m->pub;
        out->allow = m->pub.allow;
        out->reason = m->pub.allow ? AWF_REASON_ALLOWED : AWF_REASON_BLOCKED;
    } else {
        const struct rule *last =
            sq->http_access.n ? &sq->http_access.v[sq->http_access.n - 1] : NULL;
        out->rule = last ? &last->pub : NULL;
        out->allow = last && !last->pub.allow;
        out->reason = out->allow ? AWF_REASON_ALLOWED : AWF_REASON_NOT_ALLOWED;
    }
    /* SPEC §3: a raw IP is reached only when the config names it, not through "allow all" or
     * a client-address rule (Squid would let those through). */
    if (out->allow && r.kind == HOST_IP && (!m || !addr)) {
        out->allow = false;
        out->reason = AWF_REASON_RAW_IP;
    }
}

bool policy_rules_log_wanted(const struct squid_rules *sq, uint32_t cond,
                             const struct awf_policy_req *rq)
{
    struct host h;
    struct rule_req r;
    fill_rule_req(sq, rq, &h, &r);
    bool yes = rule_matches(sq, &sq->log_conds.v[cond - 1], &r, NULL, false) == ACL_YES;
    rule_req_done(&r);
    return yes;
}

bool policy_rules_via_parent(const struct squid_rules *sq, const struct awf_policy_req *rq)
{
    struct host h;
    struct rule_req r;
    fill_rule_req(sq, rq, &h, &r);
    if (r.kind == HOST_INVALID)
        return false;
    bool direct = rules_allow(sq, &sq->always_direct, &r, false);
    bool never = !direct && rules_allow(sq, &sq->never_direct, &r, false);
    rule_req_done(&r);
    if (direct)
        return false;
    if (never)
        return true;
    /* Squid's defaults: prefer_direct off sends hierarchical requests (plain GETs) to the
     * parent; nonhierarchical_direct on sends CONNECT direct. */
    return rq->traffic == AWF_TRAFFIC_HTTP;
}

enum awf_bump_action policy_rules_bump_action(const struct squid_rules *sq,
                                              const struct awf_policy_req *rq)
{
    /* ssl_bump rules, asked once with the ClientHello read: steps 2 and 3 at once (peek at
     * step 1 is implied), the first splice/bump/terminate rule that matches wins. */
    struct host h;
    struct rule_req r;
    bool need = false;
    fill_rule_req(sq, rq, &h, &r);
    r.bump_step = (1u << 2) | (1u << 3);
    const struct rule *m = first_rule(sq, &sq->ssl_bump, &r, NULL, &need);
    rule_req_done(&r);
    if (need)
        return AWF_BUMP_TERMINATE; /* a dst ACL would need a lookup here: never let it pass */
    if (!m)
        return AWF_BUMP_SPLICE; /* Squid's default when no ssl_bump rule matches */
    return (enum awf_bump_action)sq->bump_actions[m - sq->ssl_bump.v];
}
