/* The DNS forwarder for agents: the decision, the cache, the upstream query, the answer. The
 * sockets and TCP framing are fwd_net.c's.
 *
 * A query is parsed strictly (wire.c) and decided against the policy before anything else: a
 * name the policy would not let through the proxy gets the deny rcode and never leaves. An
 * allowed A, AAAA or CNAME query is answered from the cache or asked upstream through the
 * resolver's c-ares channel; the upstream response is parsed and only the chain that answers
 * the question is re-encoded under the client's ID and question. Other types get an empty
 * NOERROR.
 *
 * Lifetimes. The forwarder counts what must finish before it is freed: each listener's two
 * handles, each TCP connection, a log write in flight. A query waiting on upstream sits in a
 * list (the forwarder's for UDP, its connection's for TCP) so that closing cancels it; its
 * callback never runs after that. A TCP connection is freed in the close callback of the last
 * of its two handles. */

#include "dns/fwd_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "dns/name.h"

/* ---- lifetime -------------------------------------------------------------------------------- */

static void fwd_free(struct awf_dns_fwd *f)
{
    if (f->cache_ok)
        dns_fwd_cache_free(&f->cache);
    if (f->policy)
        awf_policy_unref(f->policy);
    free(f->listeners);
    free(f);
}

static void fwd_release(struct awf_dns_fwd *f)
{
    if (--f->refs == 0 && f->closing)
        fwd_free(f);
}

static void on_log_closed(void *arg)
{
    fwd_release(arg);
}

/* ---- the decision ---------------------------------------------------------------------------- */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0 && (len == n || s[len - n - 1] == '.');
}

/* Would the proxy let a connection to host through, by name? Class IN only; IP literals and
 * reverse names never (an allow entry for an address is for connections to it, not for PTR
 * queries that would carry data out). */
static bool name_allowed(const struct awf_dns_fwd *f, const struct dns_wire_query *q,
                         const char *host, int hlen)
{
    if (q->qclass != 1 || hlen <= 0 || q->qtype == AWF_DNS_WIRE_PTR)
        return false;
    union dns_sa lit;
    if (dns_name_literal(host, &lit) || ends_with(host, (size_t)hlen, "in-addr.arpa") ||
        ends_with(host, (size_t)hlen, "ip6.arpa"))
        return false;
    struct awf_verdict v;
    awf_policy_decide(f->policy, host, (size_t)hlen, 443, AWF_TRAFFIC_TLS, &v);
    if (v.allow && v.reason == AWF_REASON_ALLOWED)
        return true;
    awf_policy_decide(f->policy, host, (size_t)hlen, 80, AWF_TRAFFIC_HTTP, &v);
    return v.allow && v.reason == AWF_REASON_ALLOWED;
}

/* ---- upstream -------------------------------------------------------------------------------- */

static void pending_free(struct fwd_pending *p)
{
    dns_list_unlink(&p->link);
    if (p->conn)
        p->conn->n_pending--;
    free(p);
}

static void drop_pending(struct dns_link *list)
{
    while (!dns_list_empty(list)) {
        struct fwd_pending *p = AWF_DNS_CONTAINER_OF(list->next, struct fwd_pending, link);
        dns_raw_cancel(p->raw);
        pending_free(p);
    }
}

static uint32_t cache_ttl(const struct awf_dns_fwd *f, const struct dns_wire_answer *a)
{
    if (a->n == 0)
        return f->negative_ttl_s;
    uint32_t ttl = UINT32_MAX;
    for (size_t i = 0; i < a->n; i++)
        if (a->rr[i].ttl < ttl)
            ttl = a->rr[i].ttl;
    if (ttl < f->min_ttl_s)
        ttl = f->min_ttl_s;
    if (ttl > f->max_ttl_s)
        ttl = f->max_ttl_s;
    return ttl;
}

static void on_upstream(void *arg, int status, const unsigned char *msg, size_t len)
{
    struct fwd_pending *p = arg;
    struct awf_dns_fwd *f = p->fwd;
    struct dns_wire_answer *a = malloc(sizeof(*a)); /* 17 KB: not for the stack */
    int rcode = AWF_DNS_WIRE_SERVFAIL;
    size_t n = 0;
    if (a && status == 0 &&
        dns_wire_parse_answer(msg, len, p->q.qname, p->q.qname_len, p->q.qtype, a) == 0 &&
        (a->rcode == AWF_DNS_WIRE_NOERROR || a->rcode == AWF_DNS_WIRE_NXDOMAIN)) {
        rcode = a->rcode;
        if (rcode == AWF_DNS_WIRE_NXDOMAIN)
            a->n = 0;
        /* A failed put leaves the name uncached, which is only slower. */
        (void)dns_fwd_cache_put(&f->cache, p->host, p->q.qtype, a, cache_ttl(f, a),
                                uv_now(f->loop));
        n = dns_fwd_respond(f, p->l, p->conn, &p->peer, &p->q, rcode, a->rr, a->n, a->pool, 0);
    } else {
        f->stats.servfail++;
        dns_fwd_respond(f, p->l, p->conn, &p->peer, &p->q, rcode, NULL, 0, NULL, 0);
    }
    free(a);
    dns_fwd_log_query(&f->log, &p->peer, &p->q, "allowed", rcode, n);
    struct fwd_conn *c = p->conn;
    pending_free(p);
    if (c)
        dns_fwd_conn_answered(c);
}

/* ---- one query ------------------------------------------------------------------------------- */

static int on_packet(struct awf_dns_fwd *f, struct fwd_listener *l, struct fwd_conn *c,
                     const struct sockaddr_storage *peer, const uint8_t *msg, size_t len)
{
    struct dns_wire_query q;
    if (dns_wire_parse_query(msg, len, &q) < 0) {
        f->stats.malformed++;
        dns_fwd_log_query(&f->log, peer, NULL, "malformed", 0, 0);
        return AWF_E_BAD_REQUEST;
    }
    f->stats.queries++;
    char host[AWF_DNS_WIRE_NAME_MAX];
    int hlen = dns_wire_name_host(q.qname, q.qname_len, host);
    if (!name_allowed(f, &q, host, hlen)) {
        f->stats.denied++;
        dns_fwd_respond(f, l, c, peer, &q, f->deny_rcode, NULL, 0, NULL, 0);
        dns_fwd_log_query(&f->log, peer, &q, "denied", f->deny_rcode, 0);
        return 0;
    }
    f->stats.allowed++;
    if (q.qtype != AWF_DNS_WIRE_A && q.qtype != AWF_DNS_WIRE_AAAA &&
        q.qtype != AWF_DNS_WIRE_CNAME) {
        dns_fwd_respond(f, l, c, peer, &q, AWF_DNS_WIRE_NOERROR, NULL, 0, NULL, 0);
        dns_fwd_log_query(&f->log, peer, &q, "allowed", AWF_DNS_WIRE_NOERROR, 0);
        return 0;
    }
    struct dns_fwd_hit hit;
    if (dns_fwd_cache_get(&f->cache, host, q.qtype, uv_now(f->loop), &hit)) {
        f->stats.cache_hits++;
        size_t n =
            dns_fwd_respond(f, l, c, peer, &q, hit.rcode, hit.rr, hit.n, hit.pool, hit.age_s);
        dns_fwd_log_query(&f->log, peer, &q, "allowed", hit.rcode, n);
        return 0;
    }

    struct fwd_pending *p = calloc(1, sizeof(*p)); /* freed by pending_free */
    if (!p) {
        dns_fwd_respond(f, l, c, peer, &q, AWF_DNS_WIRE_SERVFAIL, NULL, 0, NULL, 0);
        dns_fwd_log_query(&f->log, peer, &q, "allowed", AWF_DNS_WIRE_SERVFAIL, 0);
        return 0;
    }
    p->fwd = f;
    p->conn = c;
    p->l = l;
    p->peer = *peer;
    p->q = q;
    memcpy(p->host, host, (size_t)hlen + 1);
    if (c) {
        dns_list_append(&c->pending, &p->link);
        c->n_pending++;
    } else {
        dns_list_append(&f->udp_pending, &p->link);
    }
    f->stats.upstream++;
    /* on_upstream may run (and free p) before this returns: p is not touched after. */
    if (dns_query_raw(f->dns, p->host, q.qtype, on_upstream, p, &p->raw) < 0)
        on_upstream(p, AWF_E_DNS_FAIL, NULL, 0);
    return 0;
}

/* ---- API ------------------------------------------------------------------------------------- */

static int own_resolver(struct awf_dns_fwd *f, const struct awf_settings *s, char *err,
                        size_t errlen)
{
    struct awf_dns_config cfg;
    awf_dns_config_from_settings(s, &cfg);
    cfg.hosts_file = NULL; /* the forwarder asks servers for records, never a hosts file */
    int rc = awf_dns_create(f->loop, &cfg, &f->dns);
    if (rc < 0)
        snprintf(err, errlen, "dns forwarder: cannot start a resolver: %s", awf_strerror(rc));
    else
        f->own_dns = true;
    return rc;
}

static const struct fwd_up up = {on_packet, drop_pending, fwd_release};

int awf_dns_fwd_create(uv_loop_t *loop, struct awf_policy *policy, struct awf_dns *dns,
                       struct awf_dns_fwd **out, char *err, size_t errlen)
{
    if (!loop || !policy || !out)
        return -EINVAL;
    *out = NULL;
    const struct awf_settings *s = awf_policy_settings(policy);
    const struct awf_dns_forwarder_settings *fs = &s->dns.forwarder;
    if (fs->n_listen == 0)
        return 0;
    struct awf_dns_fwd *f = calloc(1, sizeof(*f)); /* freed by fwd_free once refs reach 0 */
    if (!f)
        return -ENOMEM;
    f->loop = loop;
    f->up = &up;
    f->policy = awf_policy_ref(policy);
    f->dns = dns;
    f->deny_rcode = fs->deny_rcode;
    f->idle_ms = fs->idle_ms ? fs->idle_ms : 10000;
    f->min_ttl_s = s->dns.min_ttl_s;
    f->max_ttl_s = s->dns.max_ttl_s;
    f->negative_ttl_s = s->dns.negative_ttl_s;
    dns_list_init(&f->udp_pending);
    dns_list_init(&f->conns);
    f->refs = 1; /* the forwarder's own, dropped by destroy */

    int rc = dns_fwd_cache_init(&f->cache, 0);
    if (rc < 0) {
        snprintf(err, errlen, "dns forwarder: %s", awf_strerror(rc));
    } else {
        f->cache_ok = true;
        rc = dns_fwd_log_open(&f->log, loop, fs->log, err, errlen);
    }
    if (rc == 0) {
        f->log_ok = true;
        if (!dns)
            rc = own_resolver(f, s, err, errlen);
    }
    if (rc == 0 && !(f->listeners = calloc(fs->n_listen, sizeof(*f->listeners)))) {
        snprintf(err, errlen, "dns forwarder: %s", awf_strerror(-ENOMEM));
        rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < fs->n_listen; i++) {
        f->listeners[i].fwd = f;
        f->n_listeners++;
        rc = dns_fwd_listen(f, &f->listeners[i], &fs->listen[i], err, errlen);
    }
    if (rc != 0) {
        awf_dns_fwd_destroy(f);
        return rc < 0 ? rc : -EINVAL;
    }
    *out = f;
    return 0;
}

void awf_dns_fwd_destroy(struct awf_dns_fwd *f)
{
    if (!f || f->closing)
        return;
    f->closing = true;
    drop_pending(&f->udp_pending);
    while (!dns_list_empty(&f->conns))
        dns_fwd_conn_close(AWF_DNS_CONTAINER_OF(f->conns.next, struct fwd_conn, link));
    for (size_t i = 0; i < f->n_listeners; i++)
        dns_fwd_unlisten(&f->listeners[i]);
    if (f->own_dns)
        awf_dns_destroy(f->dns);
    f->dns = NULL;
    if (f->log_ok) {
        f->stats.log_dropped = f->log.dropped;
        if (dns_fwd_log_close(&f->log, on_log_closed, f))
            f->refs++;
    }
    fwd_release(f);
}

void awf_dns_fwd_set_policy(struct awf_dns_fwd *f, struct awf_policy *policy)
{
    if (!f || !policy)
        return;
    struct awf_policy *old = f->policy;
    f->policy = awf_policy_ref(policy);
    awf_policy_unref(old);
}

void awf_dns_fwd_reopen_log(struct awf_dns_fwd *f)
{
    if (f && !f->closing)
        dns_fwd_log_reopen(&f->log);
}

size_t awf_dns_fwd_bound(const struct awf_dns_fwd *f, struct sockaddr_storage *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->n_listeners && n < max; i++)
        out[n++] = f->listeners[i].bound;
    return n;
}

void dns_fwd_stats(const struct awf_dns_fwd *f, struct dns_fwd_stats *out)
{
    *out = f->stats;
    if (f->log_ok && !f->closing)
        out->log_dropped = f->log.dropped;
}
