/* The DNS forwarder for agents: listeners, the decision, the upstream query, the answer.
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

#include "dns/forwarder.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "dns/fwd_cache.h"
#include "dns/fwd_log.h"
#include "dns/list.h"
#include "dns/name.h"
#include "dns/wire.h"

#define TCP_FRAME_MAX   (2 + 65535)
#define TCP_PENDING_MAX 16  /* queries in flight per connection before it stops reading */
#define TCP_CONNS_MAX   512 /* connections beyond are closed at accept */
#define BIND_TRIES      16  /* port 0: a free UDP port whose TCP twin is taken is retried */
#define TCP_WRITE_HIGH  (256 * 1024) /* answers queued to a client that does not read */
#define UDP_QUEUE_MAX   1024         /* answers waiting for the socket: past it, dropped */

struct listener {
    struct awf_dns_fwd *fwd;
    uv_udp_t udp;
    uv_tcp_t tcp;
    struct sockaddr_storage bound;
    bool udp_init, tcp_init;
};

struct tcp_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    struct awf_dns_fwd *fwd;
    struct awf_dns_link link;    /* in fwd->conns */
    struct awf_dns_link pending; /* struct pending.link */
    struct sockaddr_storage peer;
    uint8_t *buf; /* frame assembly; allocated when a read comes, freed when emptied */
    size_t len;
    int n_pending;
    int handles; /* open handles: freed at 0 */
    bool closing, eof, reading;
    bool taking; /* in take_frames: an answer given synchronously must not re-enter it */
};

/* A query waiting on upstream. */
struct pending {
    struct awf_dns_link link; /* fwd->udp_pending, or its connection's pending */
    struct awf_dns_fwd *fwd;
    struct tcp_conn *conn; /* NULL: UDP */
    struct listener *l;    /* UDP: the socket to answer from */
    struct sockaddr_storage peer;
    struct awf_dns_raw *raw;
    struct awf_dns_wire_query q;
    char host[AWF_DNS_WIRE_NAME_MAX];
};

struct awf_dns_fwd {
    uv_loop_t *loop;
    struct awf_policy *policy; /* own reference */
    struct awf_dns *dns;
    bool own_dns;
    struct listener *listeners; /* owned array */
    size_t n_listeners;
    struct awf_dns_fwd_cache cache;
    bool cache_ok;
    struct awf_dns_fwd_log log;
    bool log_ok;
    struct awf_dns_link udp_pending;
    struct awf_dns_link conns;
    size_t n_conns;
    int deny_rcode;
    uint64_t idle_ms;
    uint32_t min_ttl_s, max_ttl_s, negative_ttl_s;
    struct awf_dns_fwd_stats stats;
    int refs; /* what must finish before free: handles, connections, a log write */
    bool closing;
    uint8_t udp_buf[65536];
};

enum origin { FROM_UDP, FROM_TCP };

/* ---- lifetime -------------------------------------------------------------------------------- */

static void fwd_free(struct awf_dns_fwd *f)
{
    if (f->cache_ok)
        awf_dns_fwd_cache_free(&f->cache);
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

static void on_listener_close(uv_handle_t *h)
{
    fwd_release(((struct listener *)h->data)->fwd);
}

static void on_log_closed(void *arg)
{
    fwd_release(arg);
}

/* ---- sending answers ------------------------------------------------------------------------- */

struct udp_send {
    uv_udp_send_t req;
    uint8_t buf[AWF_DNS_WIRE_UDP_MAX];
};

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* a lost datagram is the client's to retry */
    free(req->data);
}

struct tcp_write {
    uv_write_t req;
    struct tcp_conn *conn; /* alive until this callback: its close callback comes after */
    uint8_t buf[TCP_FRAME_MAX];
};

static void conn_finish(struct tcp_conn *c);
static void conn_resume(struct tcp_conn *c);

static void on_tcp_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as an error on the next read */
    struct tcp_write *w = req->data;
    struct tcp_conn *c = w->conn;
    free(w);
    conn_resume(c); /* reading may have stopped on a full write queue */
}

/* Encodes the answer and sends it to the client q came from; returns the records sent. */
static size_t respond(struct awf_dns_fwd *f, struct listener *l, struct tcp_conn *c,
                      const struct sockaddr_storage *peer, const struct awf_dns_wire_query *q,
                      int rcode, const struct awf_dns_wire_rr *rr, size_t n, const uint8_t *pool,
                      uint32_t age_s)
{
    bool tc;
    if (!c) {
        if (l->udp.send_queue_count >= UDP_QUEUE_MAX)
            return 0;                            /* the client retries */
        struct udp_send *s = malloc(sizeof(*s)); /* freed in on_udp_sent */
        if (!s)
            return 0;
        size_t len = awf_dns_wire_build(s->buf, sizeof(s->buf), AWF_DNS_WIRE_UDP_MAX, q, rcode, rr,
                                        n, pool, age_s, &tc);
        if (tc)
            f->stats.truncated++;
        s->req.data = s;
        uv_buf_t b = uv_buf_init((char *)s->buf, (unsigned)len);
        if (uv_udp_send(&s->req, &l->udp, &b, 1, (const struct sockaddr *)peer, on_udp_sent) != 0)
            free(s);
        return tc ? 0 : n;
    }
    if (c->closing)
        return 0;
    struct tcp_write *w = malloc(sizeof(*w)); /* freed in on_tcp_written */
    if (!w)
        return 0;
    size_t len = awf_dns_wire_build(w->buf + 2, sizeof(w->buf) - 2, 65535, q, rcode, rr, n, pool,
                                    age_s, &tc);
    w->buf[0] = (uint8_t)(len >> 8);
    w->buf[1] = (uint8_t)len;
    w->req.data = w;
    w->conn = c;
    uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)(len + 2));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written) != 0)
        free(w);
    return tc ? 0 : n;
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
static bool name_allowed(const struct awf_dns_fwd *f, const struct awf_dns_wire_query *q,
                         const char *host, int hlen)
{
    if (q->qclass != 1 || hlen <= 0 || q->qtype == AWF_DNS_WIRE_PTR)
        return false;
    union awf_dns_sa lit;
    if (awf_dns_name_literal(host, &lit) || ends_with(host, (size_t)hlen, "in-addr.arpa") ||
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

static void pending_free(struct pending *p)
{
    awf_dns_list_unlink(&p->link);
    if (p->conn)
        p->conn->n_pending--;
    free(p);
}

static uint32_t cache_ttl(const struct awf_dns_fwd *f, const struct awf_dns_wire_answer *a)
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
    struct pending *p = arg;
    struct awf_dns_fwd *f = p->fwd;
    struct awf_dns_wire_answer *a = malloc(sizeof(*a)); /* 17 KB: not for the stack */
    int rcode = AWF_DNS_WIRE_SERVFAIL;
    size_t n = 0;
    if (a && status == 0 &&
        awf_dns_wire_parse_answer(msg, len, p->q.qname, p->q.qname_len, p->q.qtype, a) == 0 &&
        (a->rcode == AWF_DNS_WIRE_NOERROR || a->rcode == AWF_DNS_WIRE_NXDOMAIN)) {
        rcode = a->rcode;
        if (rcode == AWF_DNS_WIRE_NXDOMAIN)
            a->n = 0;
        /* A failed put leaves the name uncached, which is only slower. */
        (void)awf_dns_fwd_cache_put(&f->cache, p->host, p->q.qtype, a, cache_ttl(f, a),
                                    uv_now(f->loop));
        n = respond(f, p->l, p->conn, &p->peer, &p->q, rcode, a->rr, a->n, a->pool, 0);
    } else {
        f->stats.servfail++;
        respond(f, p->l, p->conn, &p->peer, &p->q, rcode, NULL, 0, NULL, 0);
    }
    free(a);
    awf_dns_fwd_log_query(&f->log, &p->peer, &p->q, "allowed", rcode, n);
    struct tcp_conn *c = p->conn;
    pending_free(p);
    if (c) {
        if (c->eof && c->n_pending == 0)
            conn_finish(c);
        else
            conn_resume(c);
    }
}

/* ---- one query ------------------------------------------------------------------------------- */

/* Answers or starts answering one packet. Returns 0, or AWF_E_BAD_REQUEST when it was dropped
 * as malformed (a TCP connection is then closed by the caller). */
static int on_packet(struct awf_dns_fwd *f, struct listener *l, struct tcp_conn *c,
                     const struct sockaddr_storage *peer, const uint8_t *msg, size_t len)
{
    struct awf_dns_wire_query q;
    if (awf_dns_wire_parse_query(msg, len, &q) < 0) {
        f->stats.malformed++;
        awf_dns_fwd_log_query(&f->log, peer, NULL, "malformed", 0, 0);
        return AWF_E_BAD_REQUEST;
    }
    f->stats.queries++;
    char host[AWF_DNS_WIRE_NAME_MAX];
    int hlen = awf_dns_wire_name_host(q.qname, q.qname_len, host);
    if (!name_allowed(f, &q, host, hlen)) {
        f->stats.denied++;
        respond(f, l, c, peer, &q, f->deny_rcode, NULL, 0, NULL, 0);
        awf_dns_fwd_log_query(&f->log, peer, &q, "denied", f->deny_rcode, 0);
        return 0;
    }
    f->stats.allowed++;
    if (q.qtype != AWF_DNS_WIRE_A && q.qtype != AWF_DNS_WIRE_AAAA &&
        q.qtype != AWF_DNS_WIRE_CNAME) {
        respond(f, l, c, peer, &q, AWF_DNS_WIRE_NOERROR, NULL, 0, NULL, 0);
        awf_dns_fwd_log_query(&f->log, peer, &q, "allowed", AWF_DNS_WIRE_NOERROR, 0);
        return 0;
    }
    struct awf_dns_fwd_hit hit;
    if (awf_dns_fwd_cache_get(&f->cache, host, q.qtype, uv_now(f->loop), &hit)) {
        f->stats.cache_hits++;
        size_t n = respond(f, l, c, peer, &q, hit.rcode, hit.rr, hit.n, hit.pool, hit.age_s);
        awf_dns_fwd_log_query(&f->log, peer, &q, "allowed", hit.rcode, n);
        return 0;
    }

    struct pending *p = calloc(1, sizeof(*p)); /* freed by pending_free */
    if (!p) {
        respond(f, l, c, peer, &q, AWF_DNS_WIRE_SERVFAIL, NULL, 0, NULL, 0);
        awf_dns_fwd_log_query(&f->log, peer, &q, "allowed", AWF_DNS_WIRE_SERVFAIL, 0);
        return 0;
    }
    p->fwd = f;
    p->conn = c;
    p->l = l;
    p->peer = *peer;
    p->q = q;
    memcpy(p->host, host, (size_t)hlen + 1);
    if (c) {
        awf_dns_list_append(&c->pending, &p->link);
        c->n_pending++;
    } else {
        awf_dns_list_append(&f->udp_pending, &p->link);
    }
    f->stats.upstream++;
    /* on_upstream may run (and free p) before this returns: p is not touched after. */
    if (awf_dns_query_raw(f->dns, p->host, q.qtype, on_upstream, p, &p->raw) < 0)
        on_upstream(p, AWF_E_DNS_FAIL, NULL, 0);
    return 0;
}

/* ---- UDP ------------------------------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct listener *l = h->data;
    /* One buffer for every listener: a datagram is handled before the next read. */
    *buf = uv_buf_init((char *)l->fwd->udp_buf, sizeof(l->fwd->udp_buf));
}

static void on_udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct listener *l = u->data;
    if (nread <= 0 || !from || l->fwd->closing)
        return; /* nothing more to read, or a socket error: UDP keeps serving */
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof(peer));
    memcpy(&peer, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (flags & UV_UDP_PARTIAL) { /* over 64 KiB: not a DNS message */
        l->fwd->stats.malformed++;
        awf_dns_fwd_log_query(&l->fwd->log, &peer, NULL, "malformed", 0, 0);
        return;
    }
    (void)on_packet(l->fwd, l, NULL, &peer, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- TCP ------------------------------------------------------------------------------------- */

static void on_conn_close(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct awf_dns_fwd *f = c->fwd;
    free(c->buf);
    free(c);
    fwd_release(f);
}

/* Closes at once: queries in flight are dropped, answers not yet written may be lost. */
static void conn_close(struct tcp_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    while (!awf_dns_list_empty(&c->pending)) {
        struct pending *p = AWF_DNS_CONTAINER_OF(c->pending.next, struct pending, link);
        awf_dns_raw_cancel(p->raw);
        pending_free(p);
    }
    awf_dns_list_unlink(&c->link);
    c->fwd->n_conns--;
    uv_close((uv_handle_t *)&c->idle, on_conn_close);
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct tcp_conn *c = req->data;
    free(req);
    conn_close(c);
}

/* The client is done and every answer is queued: close once they are written. */
static void conn_finish(struct tcp_conn *c)
{
    uv_shutdown_t *req = malloc(sizeof(*req)); /* freed in on_shutdown */
    if (req) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
            return;
        free(req);
    }
    conn_close(c);
}

static void on_idle(uv_timer_t *t)
{
    struct tcp_conn *c = t->data;
    if (c->n_pending > 0) /* waiting on upstream is not idleness */
        uv_timer_start(&c->idle, on_idle, c->fwd->idle_ms, 0);
    else
        conn_close(c);
}

static void on_tcp_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct tcp_conn *c = h->data;
    if (!c->buf && !(c->buf = malloc(TCP_FRAME_MAX))) { /* freed when emptied, or at close */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(TCP_FRAME_MAX - c->len));
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Backpressure: too many queries upstream, or answers the client does not read. */
static bool conn_busy(const struct tcp_conn *c)
{
    return c->n_pending >= TCP_PENDING_MAX || c->tcp.write_queue_size >= TCP_WRITE_HIGH;
}

/* Handles every whole frame in the buffer while the connection is not busy.
 * Returns false when the connection was closed (a malformed frame). */
static bool take_frames(struct tcp_conn *c)
{
    struct awf_dns_fwd *f = c->fwd;
    size_t off = 0;
    c->taking = true;
    while (c->len - off >= 2 && !conn_busy(c)) {
        size_t flen = (size_t)c->buf[off] << 8 | c->buf[off + 1];
        if (c->len - off - 2 < flen)
            break;
        uv_timer_start(&c->idle, on_idle, f->idle_ms, 0);
        if (on_packet(f, NULL, c, &c->peer, c->buf + off + 2, flen) < 0) {
            c->taking = false;
            conn_close(c);
            return false;
        }
        off += 2 + flen;
    }
    c->taking = false;
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    if (c->len == 0) {
        free(c->buf);
        c->buf = NULL;
    }
    return true;
}

/* Reads again once the connection is no longer busy: frames already buffered first,
 * so the socket is read only when the buffer holds no whole frame. */
static void conn_resume(struct tcp_conn *c)
{
    if (c->closing || c->eof || c->taking || c->reading || conn_busy(c))
        return;
    if (c->len > 0 && !take_frames(c))
        return;
    if (!conn_busy(c) && uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read) == 0)
        c->reading = true;
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct tcp_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->reading = false;
        if (nread != UV_EOF || c->len > 0) { /* an error, or a frame cut short */
            if (c->len > 0) {
                c->fwd->stats.malformed++;
                awf_dns_fwd_log_query(&c->fwd->log, &c->peer, NULL, "malformed", 0, 0);
            }
            conn_close(c);
            return;
        }
        c->eof = true;
        if (c->n_pending == 0)
            conn_finish(c);
        return;
    }
    c->len += (size_t)nread;
    if (!take_frames(c))
        return;
    if (conn_busy(c)) { /* backpressure: the rest waits in the socket */
        uv_read_stop(s);
        c->reading = false;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct awf_dns_fwd *f = l->fwd;
    if (status < 0 || f->closing)
        return;
    struct tcp_conn *c = calloc(1, sizeof(*c)); /* freed in on_conn_close */
    if (!c)
        return;
    c->fwd = f;
    awf_dns_list_init(&c->pending);
    uv_tcp_init(f->loop, &c->tcp);
    uv_timer_init(f->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles = 2;
    f->refs++;
    f->n_conns++;
    f->stats.tcp_conns++;
    awf_dns_list_append(&f->conns, &c->link);
    int len = sizeof(c->peer);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || f->n_conns > TCP_CONNS_MAX ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, on_idle, f->idle_ms, 0);
    conn_resume(c);
}

/* ---- listeners ------------------------------------------------------------------------------- */

static int bound_socket(int family, int type, struct sockaddr_storage *addr)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    socklen_t alen = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)addr, alen) < 0 ||
        getsockname(fd, (struct sockaddr *)addr, &alen) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static uint16_t *port_of(struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? &((struct sockaddr_in6 *)ss)->sin6_port
                                     : &((struct sockaddr_in *)ss)->sin_port;
}

/* Binds UDP then TCP on one address; with port 0, the port UDP got is taken for TCP too. */
static int bind_pair(const struct sockaddr_storage *want, int *ufd, int *tfd,
                     struct sockaddr_storage *bound)
{
    int rc = 0;
    for (int attempt = 0; attempt < BIND_TRIES; attempt++) {
        *bound = *want;
        if ((*ufd = bound_socket(want->ss_family, SOCK_DGRAM, bound)) < 0)
            return *ufd;
        if ((*tfd = bound_socket(want->ss_family, SOCK_STREAM, bound)) >= 0)
            return 0;
        rc = *tfd;
        close(*ufd);
        if (rc != -EADDRINUSE || *port_of((struct sockaddr_storage *)want) != 0)
            break;
    }
    return rc;
}

static int start_listener(struct awf_dns_fwd *f, struct listener *l, const struct awf_listen *cfg,
                          char *err, size_t errlen)
{
    int ufd, tfd, rc = bind_pair(&cfg->addr, &ufd, &tfd, &l->bound);
    if (rc < 0) {
        snprintf(err, errlen, "dns.forwarder.listen %s: cannot bind: %s", cfg->text, strerror(-rc));
        return rc;
    }
    uv_udp_init(f->loop, &l->udp);
    uv_tcp_init(f->loop, &l->tcp);
    l->udp.data = l->tcp.data = l;
    l->udp_init = l->tcp_init = true;
    f->refs += 2;
    if ((rc = uv_udp_open(&l->udp, ufd)) != 0) {
        close(ufd);
        close(tfd);
    } else if ((rc = uv_tcp_open(&l->tcp, tfd)) != 0) {
        close(tfd);
    } else if ((rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection)) == 0) {
        rc = uv_udp_recv_start(&l->udp, on_udp_alloc, on_udp_recv);
    }
    if (rc != 0)
        snprintf(err, errlen, "dns.forwarder.listen %s: %s", cfg->text, uv_strerror(rc));
    return rc;
}

/* ---- API ------------------------------------------------------------------------------------- */

static int own_resolver(struct awf_dns_fwd *f, const struct awf_settings *s, char *err,
                        size_t errlen)
{
    const char *servers[64];
    size_t n = s->dns.n_servers < 64 ? s->dns.n_servers : 64;
    for (size_t i = 0; i < n; i++)
        servers[i] = s->dns.servers[i];
    struct awf_dns_config cfg = {
        .servers = n ? servers : NULL,
        .n_servers = n,
        .hosts_file = NULL, /* the forwarder asks servers for records, never a hosts file */
        .min_ttl_s = s->dns.min_ttl_s,
        .max_ttl_s = s->dns.max_ttl_s,
        .negative_ttl_s = s->dns.negative_ttl_s,
        .timeout_ms = s->timeouts.dns_ms,
    };
    int rc = awf_dns_create(f->loop, &cfg, &f->dns);
    if (rc < 0)
        snprintf(err, errlen, "dns forwarder: cannot start a resolver: %s", awf_strerror(rc));
    else
        f->own_dns = true;
    return rc;
}

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
    f->policy = awf_policy_ref(policy);
    f->dns = dns;
    f->deny_rcode = fs->deny_rcode;
    f->idle_ms = fs->idle_ms ? fs->idle_ms : 10000;
    f->min_ttl_s = s->dns.min_ttl_s;
    f->max_ttl_s = s->dns.max_ttl_s;
    f->negative_ttl_s = s->dns.negative_ttl_s;
    awf_dns_list_init(&f->udp_pending);
    awf_dns_list_init(&f->conns);
    f->refs = 1; /* the forwarder's own, dropped by destroy */

    int rc = awf_dns_fwd_cache_init(&f->cache, 0);
    if (rc < 0) {
        snprintf(err, errlen, "dns forwarder: %s", awf_strerror(rc));
    } else {
        f->cache_ok = true;
        rc = awf_dns_fwd_log_open(&f->log, loop, fs->log, err, errlen);
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
        rc = start_listener(f, &f->listeners[i], &fs->listen[i], err, errlen);
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
    while (!awf_dns_list_empty(&f->udp_pending)) {
        struct pending *p = AWF_DNS_CONTAINER_OF(f->udp_pending.next, struct pending, link);
        awf_dns_raw_cancel(p->raw);
        pending_free(p);
    }
    while (!awf_dns_list_empty(&f->conns))
        conn_close(AWF_DNS_CONTAINER_OF(f->conns.next, struct tcp_conn, link));
    for (size_t i = 0; i < f->n_listeners; i++) {
        struct listener *l = &f->listeners[i];
        if (l->udp_init)
            uv_close((uv_handle_t *)&l->udp, on_listener_close);
        if (l->tcp_init)
            uv_close((uv_handle_t *)&l->tcp, on_listener_close);
    }
    if (f->own_dns)
        awf_dns_destroy(f->dns);
    f->dns = NULL;
    if (f->log_ok) {
        f->stats.log_dropped = f->log.dropped;
        if (awf_dns_fwd_log_close(&f->log, on_log_closed, f))
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
        awf_dns_fwd_log_reopen(&f->log);
}

size_t awf_dns_fwd_bound(const struct awf_dns_fwd *f, struct sockaddr_storage *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->n_listeners && n < max; i++)
        out[n++] = f->listeners[i].bound;
    return n;
}

void awf_dns_fwd_stats(const struct awf_dns_fwd *f, struct awf_dns_fwd_stats *out)
{
    *out = f->stats;
    if (f->log_ok && !f->closing)
        out->log_dropped = f->log.dropped;
}
