/* The resolver: c-ares driven from the libuv loop (its sockets watched by uv_poll_t handles,
 * its retransmissions by one timer), a hosts table and a cache answered first, and one lookup
 * (an A and an AAAA query) in flight per name whatever the number of callers waiting on it.
 *
 * Lifetimes. A lookup lives while c-ares owes it an answer (pending > 0); until its deadline it
 * sits in dns->inflight, where later requests for the name join it. Requests hang on a lookup's
 * waiters list; to deliver, the list is moved to a batch on the stack first, so a callback may
 * resolve the same name (it joins nothing stale), cancel any other request (an unlink) or
 * destroy the resolver (the rest of the batch is dropped). c-ares must not be
 * destroyed from inside its own callbacks: destroy marks the resolver closing and the outermost
 * c-ares call finishes the job. Memory goes in the last handle's close callback. */

#include "dns/dns.h"

#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/counter.h"
#include "common/error.h"
#include "dns/cache.h"
#include "dns/hosts.h"
#include "dns/list.h"
#include "dns/name.h"
#include "dns/raw.h"
#include "dns/table.h"

#define DEFAULT_TIMEOUT_MS 5000
#define ARES_TRIES         2

struct sock_poll {
    uv_poll_t poll;
    struct awf_dns *dns;
    ares_socket_t fd;
    struct sock_poll *next;
};

struct family_result {
    bool done;
    int status; /* ARES_*, once done */
    size_t n;
    uint32_t ttl_s; /* lowest TTL among the n addresses */
    union dns_sa addr[AWF_DNS_MAX_ADDRS];
};

struct lookup {
    struct dns_node node; /* in dns->inflight until its deadline; key = name */
    struct awf_dns *dns;
    struct dns_link waiters;  /* awf_dns_req.link */
    struct dns_link deadline; /* in dns->deadlines while it has a deadline to keep */
    struct dns_link all;      /* in dns->lookups */
    uint64_t deadline_ms;
    int pending;   /* c-ares queries not answered yet: 2, 1, 0 */
    bool starting; /* awf_dns_resolve is still sending: it delivers if both fail at once */
    bool in_table; /* new requests join it; false once expired */
    struct family_result v4, v6;
    char name[];
};

struct awf_dns_req {
    struct dns_link link; /* in a lookup's waiters, or in a batch being delivered */
    awf_dns_cb cb;
    void *arg;
};

struct awf_dns {
    uv_loop_t *loop;
    ares_channel channel;
    bool channel_ok;
    bool library_ok;
    uv_timer_t ares_timer;     /* c-ares's own retransmissions and timeouts */
    uv_timer_t deadline_timer; /* our per-lookup deadline, cfg timeout_ms */
    struct sock_poll *polls;
    struct dns_table inflight;
    /* Every deadline is start + timeout_ms with one timeout_ms, so appending keeps it sorted. */
    struct dns_link deadlines;
    struct dns_link lookups;
    struct awf_dns_cache *cache;      /* a reference: private, or shared with other loops */
    struct awf_dns_hosts_file *hosts; /* a reference; never NULL once created */
    uint32_t min_ttl_s, max_ttl_s, negative_ttl_s;
    uint64_t timeout_ms;
    struct awf_dns_stats own_stats, *stats; /* stats: own_stats or the config's */
    int ares_depth;                         /* c-ares calls on the stack */
    int open_handles;                       /* closes still to come before dns is freed */
    bool closing, torn_down;
};

static void teardown(struct awf_dns *dns);
static void on_ares_timer(uv_timer_t *t);
static void on_deadline_timer(uv_timer_t *t);

/* ---- c-ares call nesting ---------------------------------------------------------------- */

static void ares_enter(struct awf_dns *dns)
{
    dns->ares_depth++;
}

/* Returns false if the resolver is closing: the caller returns at once. */
static bool ares_leave(struct awf_dns *dns)
{
    if (--dns->ares_depth == 0 && dns->closing && !dns->torn_down)
        teardown(dns);
    return !dns->closing;
}

static void arm_ares_timer(struct awf_dns *dns)
{
    struct timeval tv;
    struct timeval *tvp = ares_timeout(dns->channel, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&dns->ares_timer);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
    uv_timer_start(&dns->ares_timer, on_ares_timer, ms, 0);
}

static void on_ares_timer(uv_timer_t *t)
{
    struct awf_dns *dns = t->data;
    ares_enter(dns);
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (ares_leave(dns))
        arm_ares_timer(dns);
}

/* ---- sockets ------------------------------------------------------------------------------ */

static void on_handle_close(uv_handle_t *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_poll *sp = p->data;
    struct awf_dns *dns = sp->dns;
    ares_socket_t fd = sp->fd; /* sp may be closed by c-ares below */
    /* On an error let c-ares try both directions: it finds the socket's error and fails over. */
    ares_socket_t rfd = (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (status < 0 || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD;
    ares_enter(dns);
    ares_process_fd(dns->channel, rfd, wfd);
    if (ares_leave(dns))
        arm_ares_timer(dns);
}

static void close_poll(struct sock_poll *sp)
{
    /* Stopped now, while c-ares has not closed the fd yet; the number may be reused at once. */
    uv_poll_stop(&sp->poll);
    uv_close((uv_handle_t *)&sp->poll, on_handle_close);
}

/* c-ares tells which sockets it wants watched; readable and writable both 0: it is closing fd. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct awf_dns *dns = data;
    struct sock_poll **pp = &dns->polls;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct sock_poll *sp = *pp;

    if (!readable && !writable) {
        if (sp) {
            *pp = sp->next;
            close_poll(sp);
        }
        return;
    }
    if (!sp) {
        sp = calloc(1, sizeof(*sp)); /* freed in on_handle_close */
        if (!sp)
            return; /* the query times out; nothing better to do without memory */
        if (uv_poll_init_socket(dns->loop, &sp->poll, fd) != 0) {
            free(sp);
            return;
        }
        sp->poll.data = sp;
        sp->dns = dns;
        sp->fd = fd;
        sp->next = dns->polls;
        dns->polls = sp;
        dns->open_handles++;
    }
    int ev = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(&sp->poll, ev, on_poll);
}

/* ---- lookups ------------------------------------------------------------------------------ */

static void schedule_deadline(struct awf_dns *dns)
{
    if (dns_list_empty(&dns->deadlines)) {
        uv_timer_stop(&dns->deadline_timer);
        return;
    }
    struct lookup *l = AWF_DNS_CONTAINER_OF(dns->deadlines.next, struct lookup, deadline);
    uint64_t now = uv_now(dns->loop);
    uv_timer_start(&dns->deadline_timer, on_deadline_timer,
                   l->deadline_ms > now ? l->deadline_ms - now : 0, 0);
}

static void set_deadline(struct lookup *l)
{
    struct awf_dns *dns = l->dns;
    dns_list_unlink(&l->deadline);
    l->deadline_ms = uv_now(dns->loop) + dns->timeout_ms;
    dns_list_append(&dns->deadlines, &l->deadline);
    if (dns->deadlines.next == &l->deadline)
        schedule_deadline(dns);
}

static void lookup_detach(struct lookup *l)
{
    if (l->in_table)
        dns_table_remove(&l->dns->inflight, &l->node);
    l->in_table = false;
}

static void lookup_free(struct lookup *l)
{
    lookup_detach(l);
    dns_list_unlink(&l->deadline);
    dns_list_unlink(&l->all);
    while (!dns_list_empty(&l->waiters)) {
        struct dns_link *n = l->waiters.next;
        dns_list_unlink(n);
        free(AWF_DNS_CONTAINER_OF(n, struct awf_dns_req, link));
    }
    free(l);
}

/* Calls back every request of batch (a list on the caller's stack), freeing each before its
 * callback: a callback may cancel others (they leave the batch) or destroy the resolver (the
 * rest are dropped uncalled). dns stays valid: it is freed only from a close callback. */
static void deliver(struct awf_dns *dns, struct dns_link *batch, int status,
                    const struct awf_dns_addrs *addrs)
{
    while (!dns_list_empty(batch)) {
        struct dns_link *n = batch->next;
        dns_list_unlink(n);
        struct awf_dns_req *r = AWF_DNS_CONTAINER_OF(n, struct awf_dns_req, link);
        awf_dns_cb cb = r->cb;
        void *arg = r->arg;
        free(r);
        if (!dns->closing)
            cb(arg, status, status == 0 ? addrs : NULL);
    }
}

/* A before AAAA, each in the server's order; the rest dropped past AWF_DNS_MAX_ADDRS. */
static size_t merge(const struct lookup *l, union dns_sa *out)
{
    size_t n = 0;
    for (size_t i = 0; i < l->v4.n && n < AWF_DNS_MAX_ADDRS; i++)
        out[n++] = l->v4.addr[i];
    for (size_t i = 0; i < l->v6.n && n < AWF_DNS_MAX_ADDRS; i++)
        out[n++] = l->v6.addr[i];
    return n;
}

static void to_addrs(const union dns_sa *sa, size_t n, struct awf_dns_addrs *out)
{
    out->n = n;
    out->from_hosts = false;
    for (size_t i = 0; i < n; i++)
        dns_sa_store(&sa[i], &out->addr[i]);
}

/* An answer the name's servers stand by: addresses, "no such name" or "no such record". */
static bool definitive(const struct family_result *fr)
{
    return fr->status == ARES_SUCCESS || fr->status == ARES_ENODATA || fr->status == ARES_ENOTFOUND;
}

static bool timed_out(const struct family_result *fr)
{
    return fr->done && fr->status == ARES_ETIMEOUT;
}

/* Both queries answered: cache what deserves it, then call back whoever waits. */
static void lookup_complete(struct lookup *l)
{
    struct awf_dns *dns = l->dns;
    union dns_sa sa[AWF_DNS_MAX_ADDRS];
    size_t n = merge(l, sa);
    int status = 0;
    uint64_t ttl_ms = 0;

    if (n > 0) {
        uint32_t ttl = UINT32_MAX;
        if (l->v4.n && l->v4.ttl_s < ttl)
            ttl = l->v4.ttl_s;
        if (l->v6.n && l->v6.ttl_s < ttl)
            ttl = l->v6.ttl_s;
        if (ttl < dns->min_ttl_s)
            ttl = dns->min_ttl_s;
        if (ttl > dns->max_ttl_s)
            ttl = dns->max_ttl_s;
        /* One family failed for a passing reason (server failure, timeout): the answer is
         * incomplete, so keep it only as long as a negative answer. */
        if (!(definitive(&l->v4) && definitive(&l->v6)) && ttl > dns->negative_ttl_s)
            ttl = dns->negative_ttl_s;
        ttl_ms = (uint64_t)ttl * 1000;
    } else if (definitive(&l->v4) && definitive(&l->v6)) {
        status = AWF_E_DNS_FAIL;
        ttl_ms = (uint64_t)dns->negative_ttl_s * 1000;
    } else {
        /* Passing failures are not cached: the next request asks again. */
        status = (timed_out(&l->v4) || timed_out(&l->v6)) ? AWF_E_DNS_TIMEOUT : AWF_E_DNS_FAIL;
    }
    if (status != 0)
        awf_counter_inc(&dns->stats->failures);
    if (ttl_ms > 0) /* a failed put leaves the name uncached, which is only slower */
        (void)dns_cache_put(dns->cache, l->name, status, sa, n, uv_now(dns->loop) + ttl_ms);

    struct dns_link batch;
    dns_list_init(&batch);
    dns_list_splice(&batch, &l->waiters);
    lookup_free(l);
    struct awf_dns_addrs addrs;
    to_addrs(sa, n, &addrs);
    deliver(dns, &batch, status, &addrs);
}

/* The deadline passed with c-ares still waiting on one or both families. The waiters get what
 * arrived (the A addresses while AAAA hangs, say) or a timeout. The lookup leaves the table but
 * lives on until c-ares is done with it, so a late answer still fills the cache; a request that
 * comes after the deadline asks again rather than inherit the failure of an older query. */
static void lookup_expire(struct lookup *l)
{
    struct awf_dns *dns = l->dns;
    dns_list_unlink(&l->deadline);
    lookup_detach(l);
    union dns_sa sa[AWF_DNS_MAX_ADDRS];
    size_t n = merge(l, sa);
    struct dns_link batch;
    dns_list_init(&batch);
    dns_list_splice(&batch, &l->waiters);
    struct awf_dns_addrs addrs;
    to_addrs(sa, n, &addrs);
    deliver(dns, &batch, n ? 0 : AWF_E_DNS_TIMEOUT, &addrs); /* l not touched after */
}

static void on_deadline_timer(uv_timer_t *t)
{
    struct awf_dns *dns = t->data;
    uint64_t now = uv_now(dns->loop);
    while (!dns->closing && !dns_list_empty(&dns->deadlines)) {
        struct lookup *l = AWF_DNS_CONTAINER_OF(dns->deadlines.next, struct lookup, deadline);
        if (l->deadline_ms > now)
            break;
        lookup_expire(l);
    }
    if (!dns->closing)
        schedule_deadline(dns);
}

static void parse_answer(struct family_result *fr, int family, int status,
                         const unsigned char *abuf, int alen)
{
    fr->done = true;
    fr->status = status;
    if (status != ARES_SUCCESS)
        return;
    int n = AWF_DNS_MAX_ADDRS;
    if (family == AF_INET) {
        struct ares_addrttl t[AWF_DNS_MAX_ADDRS];
        fr->status = ares_parse_a_reply(abuf, alen, NULL, t, &n);
        for (int i = 0; fr->status == ARES_SUCCESS && i < n; i++) {
            dns_sa_v4(&fr->addr[fr->n++], &t[i].ipaddr);
            uint32_t ttl = t[i].ttl > 0 ? (uint32_t)t[i].ttl : 0;
            if (i == 0 || ttl < fr->ttl_s)
                fr->ttl_s = ttl;
        }
    } else {
        struct ares_addr6ttl t[AWF_DNS_MAX_ADDRS];
        fr->status = ares_parse_aaaa_reply(abuf, alen, NULL, t, &n);
        for (int i = 0; fr->status == ARES_SUCCESS && i < n; i++) {
            struct in6_addr a;
            memcpy(&a, &t[i].ip6addr, sizeof(a));
            dns_sa_v6(&fr->addr[fr->n++], &a, 0);
            uint32_t ttl = t[i].ttl > 0 ? (uint32_t)t[i].ttl : 0;
            if (i == 0 || ttl < fr->ttl_s)
                fr->ttl_s = ttl;
        }
    }
    if (fr->status == ARES_SUCCESS && fr->n == 0)
        fr->status = ARES_ENODATA; /* e.g. only a CNAME came back */
}

static void on_answer(struct lookup *l, int family, int status, unsigned char *abuf, int alen)
{
    struct awf_dns *dns = l->dns;
    l->pending--;
    if (dns->closing) {
        if (l->pending == 0)
            lookup_free(l);
        return;
    }
    parse_answer(family == AF_INET ? &l->v4 : &l->v6, family, status, abuf, alen);
    if (l->pending == 0 && !l->starting)
        lookup_complete(l);
}

static void on_answer_a(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    on_answer(arg, AF_INET, status, abuf, alen);
}

static void on_answer_aaaa(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    on_answer(arg, AF_INET6, status, abuf, alen);
}

/* ---- public API ---------------------------------------------------------------------------- */

static int answer_now(awf_dns_cb cb, void *arg, struct awf_dns_req **req, int status,
                      const struct awf_dns_addrs *addrs)
{
    /* Before the callback: it may free the struct req points into. */
    *req = NULL;
    cb(arg, status, status == 0 ? addrs : NULL);
    return 0;
}

int awf_dns_resolve(struct awf_dns *dns, const char *name, awf_dns_cb cb, void *arg,
                    struct awf_dns_req **req)
{
    if (!dns || !name || !cb || !req)
        return -EINVAL;
    if (dns->closing)
        return AWF_E_CANCELED;

    char key[AWF_HOST_MAX + 1];
    struct awf_dns_addrs addrs;
    union dns_sa lit;
    if (dns_name_normalize(name, key) < 0)
        return answer_now(cb, arg, req, AWF_E_DNS_FAIL, NULL);
    if (dns_name_literal(key, &lit)) {
        if (name[0] == '[' && lit.sa.sa_family != AF_INET6)
            return answer_now(cb, arg, req, AWF_E_DNS_FAIL, NULL);
        to_addrs(&lit, 1, &addrs);
        return answer_now(cb, arg, req, 0, &addrs);
    }
    if (name[0] == '[') /* brackets hold an IPv6 literal, never a name */
        return answer_now(cb, arg, req, AWF_E_DNS_FAIL, NULL);
    if (dns_hosts_find(&dns->hosts->table, key, &addrs) == 0) {
        awf_counter_inc(&dns->stats->hosts_hits);
        return answer_now(cb, arg, req, 0, &addrs);
    }
    int status;
    if (dns_cache_get(dns->cache, key, uv_now(dns->loop), &status, &addrs)) {
        awf_counter_inc(&dns->stats->cache_hits);
        return answer_now(cb, arg, req, status, &addrs);
    }

    struct awf_dns_req *r = calloc(1, sizeof(*r)); /* freed when called back or cancelled */
    if (!r)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;

    struct dns_node *node = dns_table_find(&dns->inflight, key);
    if (node) {
        struct lookup *l = AWF_DNS_CONTAINER_OF(node, struct lookup, node);
        dns_list_append(&l->waiters, &r->link);
        awf_counter_inc(&dns->stats->joined);
        *req = r;
        return 0;
    }

    size_t klen = strlen(key);
    struct lookup *l = calloc(1, sizeof(*l) + klen + 1); /* freed by lookup_free */
    if (!l) {
        free(r);
        return -ENOMEM;
    }
    memcpy(l->name, key, klen + 1);
    l->node.key = l->name;
    l->dns = dns;
    dns_list_init(&l->waiters);
    dns_list_init(&l->deadline);
    dns_list_append(&dns->lookups, &l->all);
    dns_list_append(&l->waiters, &r->link);
    dns_table_insert(&dns->inflight, &l->node);
    l->in_table = true;
    set_deadline(l);
    awf_counter_inc(&dns->stats->queries_sent);

    /* ares_query does not apply the search list, nor read the hosts file: the name is asked
     * exactly as given, as Squid does (dns_defnames off). */
    l->pending = 2;
    l->starting = true;
    ares_enter(dns);
    ares_query(dns->channel, l->name, ns_c_in, ns_t_a, on_answer_a, l);
    ares_query(dns->channel, l->name, ns_c_in, ns_t_aaaa, on_answer_aaaa, l);
    if (!ares_leave(dns)) {
        *req = NULL; /* closing: l and r were freed with the rest */
        return AWF_E_CANCELED;
    }
    l->starting = false;
    arm_ares_timer(dns);
    if (l->pending == 0) {
        /* Both queries failed inside ares_query (no usable server): answer now. */
        *req = NULL;
        lookup_complete(l);
        return 0;
    }
    *req = r;
    return 0;
}

/* ---- raw queries (the forwarder) ------------------------------------------------------------ */

struct dns_raw {
    dns_raw_cb cb; /* NULL once cancelled; the struct lives until c-ares calls back */
    void *arg;
    struct awf_dns *dns;
};

static void on_raw_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_raw *r = arg;
    dns_raw_cb cb = r->cb;
    bool drop = !cb || r->dns->closing || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED;
    if (!drop) {
        /* ares_query turns the rcode into a status but still hands over the message. */
        bool answered =
            abuf && alen >= 12 &&
            (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND);
        if (answered)
            cb(r->arg, 0, abuf, (size_t)alen);
        else
            cb(r->arg, status == ARES_ETIMEOUT ? AWF_E_DNS_TIMEOUT : AWF_E_DNS_FAIL, NULL, 0);
    }
    free(r);
}

int dns_query_raw(struct awf_dns *dns, const char *name, uint16_t type, dns_raw_cb cb, void *arg,
                  struct dns_raw **raw)
{
    if (!dns || !name || !cb || !raw)
        return -EINVAL;
    if (dns->closing)
        return AWF_E_CANCELED;
    struct dns_raw *r = calloc(1, sizeof(*r)); /* freed in on_raw_answer, always called */
    if (!r)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->dns = dns;
    *raw = r;
    awf_counter_inc(&dns->stats->raw_sent);
    ares_enter(dns);
    ares_query(dns->channel, name, ns_c_in, type, on_raw_answer, r);
    /* Destroyed meanwhile (only a callback can do that): r went with the channel. */
    if (ares_leave(dns))
        arm_ares_timer(dns);
    return 0;
}

void dns_raw_cancel(struct dns_raw *raw)
{
    if (raw)
        raw->cb = NULL;
}

void awf_dns_cancel(struct awf_dns_req *req)
{
    if (!req)
        return;
    /* Whichever list holds it (a lookup's waiters or a batch being delivered). A lookup left
     * without waiters keeps going: its answer still fills the cache. */
    dns_list_unlink(&req->link);
    free(req);
}

void awf_dns_share_cache(struct awf_dns *dns, struct awf_dns *with)
{
    if (!dns || !with || dns->cache == with->cache)
        return;
    dns_cache_make_shared(with->cache);
    dns_cache_unref(dns->cache);
    dns->cache = dns_cache_ref(with->cache);
}

void awf_dns_stats(const struct awf_dns *dns, struct awf_dns_stats *out)
{
    const struct awf_dns_stats *s = dns->stats;
    *out = (struct awf_dns_stats){
        .queries_sent = awf_counter_get(&s->queries_sent),
        .cache_hits = awf_counter_get(&s->cache_hits),
        .joined = awf_counter_get(&s->joined),
        .hosts_hits = awf_counter_get(&s->hosts_hits),
        .raw_sent = awf_counter_get(&s->raw_sent),
        .failures = awf_counter_get(&s->failures),
    };
}

/* ---- create / destroy ---------------------------------------------------------------------- */

static void free_resolver(struct awf_dns *dns)
{
    dns_cache_unref(dns->cache);
    awf_dns_hosts_release(dns->hosts);
    dns_table_free(&dns->inflight);
    free(dns);
}

static void on_handle_close(uv_handle_t *h)
{
    struct awf_dns *dns;
    if (h->type == UV_POLL) {
        struct sock_poll *sp = h->data;
        dns = sp->dns;
        free(sp);
    } else {
        dns = h->data;
    }
    if (--dns->open_handles == 0)
        free_resolver(dns);
}

static int ares_to_errno(int rc)
{
    return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
}

static int set_servers(struct awf_dns *dns, const struct awf_dns_config *cfg)
{
    size_t len = 1;
    for (size_t i = 0; i < cfg->n_servers; i++)
        len += strlen(cfg->servers[i]) + 1;
    char *csv = malloc(len);
    if (!csv)
        return -ENOMEM;
    char *p = csv;
    for (size_t i = 0; i < cfg->n_servers; i++) {
        size_t sl = strlen(cfg->servers[i]);
        if (sl == 0 || strchr(cfg->servers[i], ',')) {
            free(csv);
            return -EINVAL;
        }
        if (i)
            *p++ = ',';
        memcpy(p, cfg->servers[i], sl);
        p += sl;
    }
    *p = '\0';
    int rc = ares_set_servers_ports_csv(dns->channel, csv);
    free(csv);
    return rc == ARES_SUCCESS ? 0 : ares_to_errno(rc);
}

static int init_channel(struct awf_dns *dns, const struct awf_dns_config *cfg)
{
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS)
        return ares_to_errno(rc);
    dns->library_ok = true;

    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = dns;
    /* c-ares retries within our deadline: a third of it per try, two tries per server. */
    uint64_t per_try = dns->timeout_ms / 3;
    o.timeout = (int)(per_try < 50 ? 50 : per_try > 60000 ? 60000 : per_try);
    o.tries = ARES_TRIES;
    o.lookups = (char *)"b"; /* never the hosts file: ours answered already */
    int mask = ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_LOOKUPS;
    rc = ares_init_options(&dns->channel, &o, mask);
    if (rc != ARES_SUCCESS)
        return ares_to_errno(rc);
    dns->channel_ok = true;
    if (cfg->servers && cfg->n_servers > 0)
        return set_servers(dns, cfg);
    return 0;
}

static void destroy_unstarted(struct awf_dns *dns)
{
    if (dns->channel_ok)
        ares_destroy(dns->channel);
    if (dns->library_ok)
        ares_library_cleanup();
    free_resolver(dns);
}

int awf_dns_create(uv_loop_t *loop, const struct awf_dns_config *cfg, struct awf_dns **out)
{
    if (!loop || !cfg || !out)
        return -EINVAL;
    struct awf_dns *dns = calloc(1, sizeof(*dns)); /* freed in the last close callback */
    if (!dns)
        return -ENOMEM;
    dns->loop = loop;
    dns->stats = cfg->stats ? cfg->stats : &dns->own_stats;
    dns->min_ttl_s = cfg->min_ttl_s;
    dns->max_ttl_s = cfg->max_ttl_s;
    dns->negative_ttl_s = cfg->negative_ttl_s;
    dns->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    dns_list_init(&dns->deadlines);
    dns_list_init(&dns->lookups);

    int rc = 0;
    if (cfg->shared_cache)
        dns->cache = dns_cache_ref(cfg->shared_cache);
    else
        rc = dns_cache_create_private(cfg->max_cache_entries, &dns->cache);
    if (rc == 0)
        rc = dns_table_init(&dns->inflight, 64);
    if (rc == 0)
        rc = awf_dns_hosts_open(cfg->hosts_file, &dns->hosts, NULL);
    if (rc == 0)
        rc = init_channel(dns, cfg);
    if (rc < 0) {
        destroy_unstarted(dns);
        return rc;
    }
    uv_timer_init(loop, &dns->ares_timer);
    uv_timer_init(loop, &dns->deadline_timer);
    dns->ares_timer.data = dns;
    dns->deadline_timer.data = dns;
    dns->open_handles = 2;
    *out = dns;
    return 0;
}

void awf_dns_set_hosts(struct awf_dns *dns, struct awf_dns_hosts_file *h)
{
    if (!dns || !h || h == dns->hosts)
        return;
    awf_dns_hosts_release(dns->hosts);
    dns->hosts = awf_dns_hosts_ref(h);
}

/* Runs with no c-ares call on the stack. */
static void teardown(struct awf_dns *dns)
{
    dns->torn_down = true;
    uv_timer_stop(&dns->ares_timer);
    uv_timer_stop(&dns->deadline_timer);
    /* Calls back every query with ARES_EDESTRUCTION (each frees its lookup) and reports every
     * socket closed (each closes its poll handle). */
    ares_destroy(dns->channel);
    dns->channel_ok = false;
    ares_library_cleanup();
    while (!dns_list_empty(&dns->lookups))
        lookup_free(AWF_DNS_CONTAINER_OF(dns->lookups.next, struct lookup, all));
    while (dns->polls) {
        struct sock_poll *sp = dns->polls;
        dns->polls = sp->next;
        close_poll(sp);
    }
    uv_close((uv_handle_t *)&dns->ares_timer, on_handle_close);
    uv_close((uv_handle_t *)&dns->deadline_timer, on_handle_close);
}

void awf_dns_destroy(struct awf_dns *dns)
{
    if (!dns || dns->closing)
        return;
    dns->closing = true;
    /* No callback runs from now on: drop every waiting request. */
    for (struct dns_link *n = dns->lookups.next; n != &dns->lookups; n = n->next) {
        struct lookup *l = AWF_DNS_CONTAINER_OF(n, struct lookup, all);
        while (!dns_list_empty(&l->waiters)) {
            struct dns_link *w = l->waiters.next;
            dns_list_unlink(w);
            free(AWF_DNS_CONTAINER_OF(w, struct awf_dns_req, link));
        }
    }
    if (dns->ares_depth == 0)
        teardown(dns);
}
