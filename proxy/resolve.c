/* Deciding and resolving a request once its target is known (request.c for HTTP heads and
 * requests inside bumped TLS, peek.c for intercepted TLS): the policy's view of it, what follows
 * an allow (the parent choice, a tunnel's slot), and resolution up to the checked addresses,
 * which are dialled (conn.c:proxy_conn_dial). A decision that waited for the addresses is made
 * again here with them; intercepted TLS allowed then may still be bumped (bump.c). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"

static void dns_cb(void *arg, int status, const struct awf_dns_addrs *addrs);
static int fill_req(struct proxy_conn *c, const char *method, const struct awf_dns_addrs *addrs,
                    bool addrs_known, struct awf_policy_req *rq_out, char **url_out);

static void deny(struct proxy_conn *c, const char *why)
{
    proxy_answer(c, AWF_ANS_DENIED, why);
}

int proxy_conn_set_host(struct proxy_conn *c, const char *p, size_t n)
{
    if (n > AWF_HOST_MAX + 1) /* a name and its trailing dot: no valid host is longer */
        return AWF_E_BAD_REQUEST;
    if (c->host_cap < n + 1) {
        /* Owned by c and kept across keep-alive requests (most name the same host): a request
         * allocates only when its name is longer than any before. */
        size_t cap = n + 1 < 32 ? 32 : n + 1;
        char *h = malloc(cap);
        if (!h)
            return -ENOMEM;
        free(c->host);
        c->host = h;
        c->host_cap = (uint16_t)cap;
    }
    memcpy(c->host, p, n);
    c->host[n] = '\0';
    return 0;
}

/* Whether the allowed transaction goes through the parent proxy (parent.c): AWF_CF_VIA_PARENT. */
static void choose_parent(struct proxy_conn *c, const struct awf_policy_req *rq)
{
    c->flags &= ~AWF_CF_VIA_PARENT;
    if (c->set->parent.host && awf_policy_via_parent(c->policy, rq))
        c->flags |= AWF_CF_VIA_PARENT;
}

bool proxy_request_admit(struct proxy_conn *c, const struct awf_policy_req *rq)
{
    choose_parent(c, rq);
    /* The tunnel's slot is taken now, not once it is up: requests deciding meanwhile must not
     * all pass the check. A WebSocket upgrade becomes a tunnel too. */
    if ((c->flags & (AWF_CF_CONNECT | AWF_CF_WEBSOCKET)) && !proxy_conn_tunnel_reserve(c)) {
        proxy_answer(c, AWF_ANS_OVERLOAD, "too many tunnels");
        return false;
    }
    return true;
}

bool proxy_request_allowed(struct proxy_conn *c, const struct awf_dns_addrs *addrs)
{
    struct awf_policy_req rq;
    char *url = NULL;
    /* known, or not needed by any rule so far */
    if (fill_req(c, NULL, addrs, true, &rq, &url) < 0) {
        proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
        return false;
    }
    bool ok = proxy_request_admit(c, &rq);
    free(url);
    return ok;
}

bool proxy_request_admit_hello(struct proxy_conn *c, const struct awf_policy_req *rq)
{
    choose_parent(c, rq);
    if ((c->flags & AWF_CF_OVERLOAD) || !proxy_conn_tunnel_reserve(c)) {
        c->tag = AWF_TAG_NONE_NONE;
        c->status = 503;
        proxy_conn_close(c);
        return false;
    }
    c->pend = c->hello; /* sent first once the tunnel is up */
    c->hello = NULL;
    return true;
}

/* c's request for the policy, with the URL url_regex ACLs match when the policy has any (*url
 * then owns it: the caller frees it after deciding) and the addresses if known. Returns 0 or
 * -ENOMEM. */
static int fill_req(struct proxy_conn *c, const char *method, const struct awf_dns_addrs *addrs,
                    bool addrs_known, struct awf_policy_req *rq_out, char **url_out)
{
    struct awf_policy_req rq;
    proxy_conn_policy_req(c, method, &rq);
    char *url = NULL;
    *url_out = NULL;
    if (rq.traffic == AWF_TRAFFIC_HTTP && awf_policy_wants_url(c->policy)) {
        struct proxy_slice path = proxy_http_strip_fragment(c->target.path);
        size_t cap = rq.host_len + path.len + 32;
        int n = (url = malloc(cap)) ? awf_policy_request_url(url, cap, "http", rq.host, rq.host_len,
                                                             rq.port, path.p, path.len)
                                    : -ENOMEM;
        if (n == -ENOMEM) {
            return -ENOMEM;
        }
        if (n > 0) { /* an invalid host fails the decision on its own */
            rq.url = url;
            rq.url_len = (size_t)n;
        }
    }
    if (addrs_known) {
        rq.addrs_known = true;
        if (addrs) {
            rq.addrs = addrs->addr;
            rq.addr_size = sizeof addrs->addr[0];
            rq.n_addrs = addrs->n;
        }
    }
    *rq_out = rq;
    *url_out = url;
    return 0;
}

int proxy_request_decide(struct proxy_conn *c, const char *method,
                         const struct awf_dns_addrs *addrs, bool addrs_known, struct awf_verdict *v)
{
    struct awf_policy_req rq;
    char *url; /* owned here, only while deciding */
    if (fill_req(c, method, addrs, addrs_known, &rq, &url) < 0)
        return -ENOMEM;
    awf_policy_decide_req(c->policy, &rq, v);
    free(url);
    return 0;
}

void proxy_request_timeout(struct proxy_conn *c)
{
    proxy_answer(c, AWF_ANS_DNS_FAIL, "name lookup timed out");
}

void proxy_request_resolve(struct proxy_conn *c)
{
    proxy_conn_sync_reading(c);
    struct awf_dns_req *req = NULL;
    /* Through a parent, only the parent's address is ever dialled: the target's name is its
     * business (Squid does not resolve it either). */
    const char *name = (c->flags & AWF_CF_VIA_PARENT) && !(c->flags & AWF_CF_DECIDE_ADDRS)
                           ? c->set->parent.host
                           : c->host;
    int rc = awf_dns_resolve(c->px->dns, name, dns_cb, c, &req);
    if (rc < 0) {
        proxy_answer(c, AWF_ANS_DNS_FAIL, "name does not resolve");
        return;
    }
    if (c->state == AWF_CS_RESOLVING)
        c->dns_req = req; /* NULL when the answer came at once (cache, literal) */
}

static void set_port(union awf_sockaddr *a, uint16_t port)
{
    if (a->sa.sa_family == AF_INET)
        a->in.sin_port = htons(port);
    else if (a->sa.sa_family == AF_INET6)
        a->in6.sin6_port = htons(port);
}

/* The target's addresses arrived for a decision that waited on them (a squid.conf dst ACL):
 * decide again with them, as Squid does after its lookup. Returns true when the request goes
 * on direct with these same addresses (the ones the rules saw are the ones dialled), false when
 * c was answered or now resolves its parent. */
static bool decide_with_addrs(struct proxy_conn *c, const struct awf_dns_addrs *addrs)
{
    struct awf_verdict v;
    /* intercepted TLS: its ClientHello waits in c->hello to be sent once the tunnel is up */
    bool tls_intercept =
        (c->flags & (AWF_CF_INTERCEPT | AWF_CF_CONNECT)) == (AWF_CF_INTERCEPT | AWF_CF_CONNECT);
    c->flags &= ~AWF_CF_DECIDE_ADDRS;
    if (proxy_request_decide(c, tls_intercept ? "CONNECT" : NULL, addrs, true, &v) < 0) {
        proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
        return false;
    }
    if (!v.allow) {
        deny(c, awf_policy_reason_name(v.reason));
        return false;
    }
    if (tls_intercept) {
        struct awf_policy_req rq;
        proxy_conn_policy_req(c, "CONNECT", &rq);
        rq.addrs = addrs ? addrs->addr : NULL;
        rq.addr_size = sizeof addrs->addr[0];
        rq.n_addrs = addrs ? addrs->n : 0;
        rq.addrs_known = true;
        if (!proxy_request_admit_hello(c, &rq))
            return false;
        if (proxy_bump_wanted(c)) { /* ssl-bump: the held ClientHello is answered here */
            c->hello = c->pend;
            c->pend = NULL;
            proxy_bump_take(c);
            return false;
        }
    } else if (!proxy_request_allowed(c, addrs)) {
        return false;
    }
    if (c->flags & AWF_CF_VIA_PARENT) {
        proxy_request_resolve(c);
        return false;
    }
    return true;
}

static void dns_cb(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct proxy_conn *c = arg;
    c->dns_req = NULL;
    if (c->state != AWF_CS_RESOLVING)
        return;
    if ((c->flags & AWF_CF_DECIDE_ADDRS) && !decide_with_addrs(c, status == 0 ? addrs : NULL))
        return;
    if (status < 0 || !addrs || addrs->n == 0) {
        proxy_answer(c, AWF_ANS_DNS_FAIL,
                     status == AWF_E_DNS_TIMEOUT ? "name lookup timed out"
                                                 : "name does not resolve");
        return;
    }
    c->n_addrs = c->next_addr = 0;
    if (addrs->n > c->cap_addrs) { /* kept across requests: keep-alive clients reuse it */
        union awf_sockaddr *a = realloc(c->addrs, addrs->n * sizeof(*a));
        if (!a) {
            proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
            return;
        }
        c->addrs = a;
        c->cap_addrs = addrs->n;
    }
    const char *why = NULL;
    for (size_t i = 0; i < addrs->n; i++) {
        union awf_sockaddr sa;
        const char *w = NULL;
        awf_sockaddr_copy(&sa, (const struct sockaddr *)&addrs->addr[i]);
        set_port(&sa, (c->flags & AWF_CF_VIA_PARENT) ? c->set->parent.port : c->target.port);
        if (proxy_is_self(c->px, &sa.sa)) {
            why = "the target is this proxy";
            continue;
        }
        /* The parent is configuration, not a destination: it is typically on a private
         * address (AWF's api-proxy sidecar), and the private-address check is for targets. */
        enum awf_addr_origin origin = addrs->from_hosts ? AWF_ADDR_HOSTS : AWF_ADDR_DNS;
        if (!(c->flags & AWF_CF_VIA_PARENT) &&
            !awf_policy_addr_check(c->policy, &sa.sa, origin, &w)) {
            why = w ? w : "address denied";
            continue;
        }
        c->addrs[c->n_addrs++] = sa;
    }
    if (c->n_addrs == 0) {
        deny(c, why);
        return;
    }
    proxy_conn_dial(c);
}
