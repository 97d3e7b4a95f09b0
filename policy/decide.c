/* The one entry to decisions: every per-request question the proxy, the DNS forwarder and
 * `explain` ask of a policy comes through here, and here alone knows there are two engines.
 * A policy from YAML and flags is decided by the allow/block list matcher (match.c); one from
 * a squid.conf by its access rules (rules.c over acl.c). Neither engine calls the other or
 * this file, so the policy/ call graph stays one-way (callcycles_policy checks it).
 *
 * Checks that do not depend on the engine stay next to their data and are asked directly:
 * awf_policy_addr_check() (addr.c, the private ranges) and awf_policy_url_allowed() (bump.c,
 * allow_urls inside a bumped tunnel). */

#include "policy/policy_int.h"

const char *awf_policy_reason_name(enum awf_reason r)
{
    switch (r) {
    case AWF_REASON_ALLOWED:
        return "allowed";
    case AWF_REASON_ALLOWED_IP:
        return "allowed_ip";
    case AWF_REASON_BLOCKED:
        return "blocked";
    case AWF_REASON_NOT_ALLOWED:
        return "not_allowed";
    case AWF_REASON_WRONG_SCOPE:
        return "wrong_scope";
    case AWF_REASON_EMPTY_ALLOW:
        return "empty_allow";
    case AWF_REASON_RAW_IP:
        return "raw_ip";
    case AWF_REASON_PORT:
        return "port";
    case AWF_REASON_INVALID_HOST:
        return "invalid_host";
    }
    return "unknown";
}

void awf_policy_decide(const struct awf_policy *p, const char *host, size_t host_len, uint16_t port,
                       enum awf_traffic traffic, struct awf_verdict *out)
{
    if (!p->squid) {
        policy_match_decide(p, host, host_len, port, traffic, out);
        return;
    }
    /* The rules decide; the client is unknown here, and no name is resolved: dst ACLs match
     * raw IP targets only (the DNS forwarder asks before anything is resolved). */
    struct awf_policy_req rq = {
        .host = host, .host_len = host_len, .port = port, .traffic = traffic, .addrs_known = true};
    policy_rules_decide(p->squid, &rq, out);
}

void awf_policy_decide_req(const struct awf_policy *p, const struct awf_policy_req *rq,
                           struct awf_verdict *out)
{
    if (p->squid)
        policy_rules_decide(p->squid, rq, out);
    else
        policy_match_decide(p, rq->host, rq->host_len, rq->port, rq->traffic, out);
}

enum awf_bump_action awf_policy_bump_action(const struct awf_policy *p,
                                            const struct awf_policy_req *rq)
{
    const struct awf_bump_settings *b = &p->settings.ssl_bump;
    /* The splice list first: pinned clients and hosts the operator keeps untouched must never
     * see a minted certificate, whatever the squid.conf rules say. */
    if (!b->enabled || policy_host_listed(b->splice, b->n_splice, rq->host, rq->host_len))
        return AWF_BUMP_SPLICE;
    if (!p->squid || p->squid->ssl_bump.n == 0)
        return AWF_BUMP_BUMP;
    return policy_rules_bump_action(p->squid, rq);
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
    return policy_rules_log_wanted(p->squid, c, rq);
}

bool awf_policy_via_parent(const struct awf_policy *p, const struct awf_policy_req *rq)
{
    if (!p->settings.parent.host)
        return false;
    if (!p->squid)
        return true;
    return policy_rules_via_parent(p->squid, rq);
}

bool awf_policy_is_squid(const struct awf_policy *p)
{
    return p->squid != NULL;
}
