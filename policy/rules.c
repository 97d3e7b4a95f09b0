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
    free(r->source);
    free(r);
}

void policy_rule_req(const struct awf_policy_req *in, struct host *h, struct rule_req *out)
{
    memset(out, 0, sizeof *out);
    out->h = h;
    out->kind = policy_host_parse(in->host, in->host_len, h);
    if (out->kind == HOST_IP && !inet_ntop(h->family, h->ip, out->ipname, sizeof out->ipname))
        out->ipname[0] = '\0';
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

static bool names_target(enum acl_type t)
{
    return t == ACL_DST || t == ACL_DSTDOMAIN || t == ACL_DSTDOM_REGEX;
}

static bool rule_matches(const struct squid_rules *sq, const struct rule *r,
                         const struct rule_req *rq, bool *addr)
{
    bool named = false;
    for (uint32_t i = 0; i < r->n; i++) {
        const struct rule_term *t = &sq->terms[r->first + i];
        const struct acl *a = &sq->acls[t->acl];
        if (policy_acl_match(a, rq) == t->neg)
            return false;
        if (!t->neg && names_target(a->type))
            named = true;
    }
    if (addr)
        *addr = named;
    return true;
}

const struct rule *policy_rules_first(const struct squid_rules *sq, const struct rule_list *l,
                                      const struct rule_req *rq, bool *matched_addr)
{
    for (size_t i = 0; i < l->n; i++)
        if (rule_matches(sq, &l->v[i], rq, matched_addr))
            return &l->v[i];
    return NULL;
}

bool policy_rules_allow(const struct squid_rules *sq, const struct rule_list *l,
                        const struct rule_req *rq, bool none)
{
    if (l->n == 0)
        return none;
    const struct rule *r = policy_rules_first(sq, l, rq, NULL);
    return r ? r->pub.allow : !l->v[l->n - 1].pub.allow;
}

void awf_policy_decide_req(const struct awf_policy *p, const struct awf_policy_req *rq,
                           struct awf_verdict *out)
{
    if (!p->squid) {
        awf_policy_decide(p, rq->host, rq->host_len, rq->port, rq->traffic, out);
        return;
    }
    const struct squid_rules *sq = p->squid;
    struct host h;
    struct rule_req r;
    policy_rule_req(rq, &h, &r);
    out->allow = false;
    out->entry = NULL;
    out->rule = NULL;
    if (r.kind == HOST_INVALID) {
        out->reason = AWF_REASON_INVALID_HOST;
        return;
    }
    bool addr = false;
    const struct rule *m = policy_rules_first(sq, &sq->http_access, &r, &addr);
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

bool awf_policy_log_wanted(const struct awf_policy *p, size_t output,
                           const struct awf_policy_req *rq)
{
    const struct awf_settings *s = &p->settings;
    if (output >= s->n_logs)
        return false;
    uint32_t c = s->logs[output].cond;
    if (c == 0 || !p->squid || c > p->squid->log_conds.n)
        return true;
    struct host h;
    struct rule_req r;
    policy_rule_req(rq, &h, &r);
    return rule_matches(p->squid, &p->squid->log_conds.v[c - 1], &r, NULL);
}

bool awf_policy_via_parent(const struct awf_policy *p, const struct awf_policy_req *rq)
{
    if (!p->settings.parent.host)
        return false;
    if (!p->squid)
        return true;
    const struct squid_rules *sq = p->squid;
    struct host h;
    struct rule_req r;
    policy_rule_req(rq, &h, &r);
    if (r.kind == HOST_INVALID)
        return false;
    if (policy_rules_allow(sq, &sq->always_direct, &r, false))
        return false;
    if (policy_rules_allow(sq, &sq->never_direct, &r, false))
        return true;
    /* Squid's defaults: prefer_direct off sends hierarchical requests (plain GETs) to the
     * parent; nonhierarchical_direct on sends CONNECT direct. */
    return rq->traffic == AWF_TRAFFIC_HTTP;
}

bool awf_policy_is_squid(const struct awf_policy *p)
{
    return p->squid != NULL;
}
