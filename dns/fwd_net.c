/* The forwarder's sockets: UDP and TCP listeners, TCP's two-byte framing with its buffer and
 * backpressure (stop reading while too many queries are upstream or answers are unread), idle
 * timers, and sending answers. Every packet goes up to forwarder.c (f->up->packet) to be decided.
 *
 * A TCP connection is freed in the close callback of the last of its two handles; its queries
 * waiting on upstream sit in its own list, so closing cancels them. */

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "dns/fwd_int.h"

#define TCP_FRAME_MAX   (2 + 65535)
#define TCP_PENDING_MAX 16  /* queries in flight per connection before it stops reading */
#define TCP_CONNS_MAX   512 /* connections beyond are closed at accept */
#define BIND_TRIES      16  /* port 0: a free UDP port whose TCP twin is taken is retried */
#define TCP_WRITE_HIGH  (256 * 1024) /* answers queued to a client that does not read */
#define UDP_QUEUE_MAX   1024         /* answers waiting for the socket: past it, dropped */

static void on_listener_close(uv_handle_t *h)
{
    struct awf_dns_fwd *f = ((struct fwd_listener *)h->data)->fwd;
    f->up->release(f);
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
    struct fwd_conn *conn; /* alive until this callback: its close callback comes after */
    uint8_t buf[TCP_FRAME_MAX];
};

static void conn_resume(struct fwd_conn *c);

static void on_tcp_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as an error on the next read */
    struct tcp_write *w = req->data;
    struct fwd_conn *c = w->conn;
    free(w);
    conn_resume(c); /* reading may have stopped on a full write queue */
}

size_t dns_fwd_respond(struct awf_dns_fwd *f, struct fwd_listener *l, struct fwd_conn *c,
                       const struct sockaddr_storage *peer, const struct dns_wire_query *q,
                       int rcode, const struct dns_wire_rr *rr, size_t n, const uint8_t *pool,
                       uint32_t age_s)
{
    bool tc;
    if (!c) {
        if (l->udp.send_queue_count >= UDP_QUEUE_MAX)
            return 0;                            /* the client retries */
        struct udp_send *s = malloc(sizeof(*s)); /* freed in on_udp_sent */
        if (!s)
            return 0;
        size_t len = dns_wire_build(s->buf, sizeof(s->buf), AWF_DNS_WIRE_UDP_MAX, q, rcode, rr, n,
                                    pool, age_s, &tc);
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
    size_t len =
        dns_wire_build(w->buf + 2, sizeof(w->buf) - 2, 65535, q, rcode, rr, n, pool, age_s, &tc);
    w->buf[0] = (uint8_t)(len >> 8);
    w->buf[1] = (uint8_t)len;
    w->req.data = w;
    w->conn = c;
    uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)(len + 2));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written) != 0)
        free(w);
    return tc ? 0 : n;
}

/* ---- UDP ------------------------------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct fwd_listener *l = h->data;
    /* One buffer for every listener: a datagram is handled before the next read. */
    *buf = uv_buf_init((char *)l->fwd->udp_buf, sizeof(l->fwd->udp_buf));
}

static void on_udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct fwd_listener *l = u->data;
    if (nread <= 0 || !from || l->fwd->closing)
        return; /* nothing more to read, or a socket error: UDP keeps serving */
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof(peer));
    memcpy(&peer, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (flags & UV_UDP_PARTIAL) { /* over 64 KiB: not a DNS message */
        l->fwd->stats.malformed++;
        dns_fwd_log_query(&l->fwd->log, &peer, NULL, "malformed", 0, 0);
        return;
    }
    (void)l->fwd->up->packet(l->fwd, l, NULL, &peer, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- TCP ------------------------------------------------------------------------------------- */

static void on_conn_close(uv_handle_t *h)
{
    struct fwd_conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct awf_dns_fwd *f = c->fwd;
    free(c->buf);
    free(c);
    f->up->release(f);
}

void dns_fwd_conn_close(struct fwd_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->fwd->up->drop_pending(&c->pending);
    dns_list_unlink(&c->link);
    c->fwd->n_conns--;
    uv_close((uv_handle_t *)&c->idle, on_conn_close);
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct fwd_conn *c = req->data;
    free(req);
    dns_fwd_conn_close(c);
}

/* The client is done and every answer is queued: close once they are written. */
static void conn_finish(struct fwd_conn *c)
{
    uv_shutdown_t *req = malloc(sizeof(*req)); /* freed in on_shutdown */
    if (req) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
            return;
        free(req);
    }
    dns_fwd_conn_close(c);
}

static void on_idle(uv_timer_t *t)
{
    struct fwd_conn *c = t->data;
    if (c->n_pending > 0) /* waiting on upstream is not idleness */
        uv_timer_start(&c->idle, on_idle, c->fwd->idle_ms, 0);
    else
        dns_fwd_conn_close(c);
}

static void on_tcp_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct fwd_conn *c = h->data;
    if (!c->buf && !(c->buf = malloc(TCP_FRAME_MAX))) { /* freed when emptied, or at close */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(TCP_FRAME_MAX - c->len));
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Backpressure: too many queries upstream, or answers the client does not read. */
static bool conn_busy(const struct fwd_conn *c)
{
    return c->n_pending >= TCP_PENDING_MAX || c->tcp.write_queue_size >= TCP_WRITE_HIGH;
}

/* Handles every whole frame in the buffer while the connection is not busy.
 * Returns false when the connection was closed (a malformed frame). */
static bool take_frames(struct fwd_conn *c)
{
    struct awf_dns_fwd *f = c->fwd;
    size_t off = 0;
    c->taking = true;
    while (c->len - off >= 2 && !conn_busy(c)) {
        size_t flen = (size_t)c->buf[off] << 8 | c->buf[off + 1];
        if (c->len - off - 2 < flen)
            break;
        uv_timer_start(&c->idle, on_idle, f->idle_ms, 0);
        if (f->up->packet(f, NULL, c, &c->peer, c->buf + off + 2, flen) < 0) {
            c->taking = false;
            dns_fwd_conn_close(c);
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
static void conn_resume(struct fwd_conn *c)
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
    struct fwd_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->reading = false;
        if (nread != UV_EOF || c->len > 0) { /* an error, or a frame cut short */
            if (c->len > 0) {
                c->fwd->stats.malformed++;
                dns_fwd_log_query(&c->fwd->log, &c->peer, NULL, "malformed", 0, 0);
            }
            dns_fwd_conn_close(c);
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
    struct fwd_listener *l = server->data;
    struct awf_dns_fwd *f = l->fwd;
    if (status < 0 || f->closing)
        return;
    struct fwd_conn *c = calloc(1, sizeof(*c)); /* freed in on_conn_close */
    if (!c)
        return;
    c->fwd = f;
    dns_list_init(&c->pending);
    uv_tcp_init(f->loop, &c->tcp);
    uv_timer_init(f->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles = 2;
    f->refs++;
    f->n_conns++;
    f->stats.tcp_conns++;
    dns_list_append(&f->conns, &c->link);
    int len = sizeof(c->peer);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || f->n_conns > TCP_CONNS_MAX ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0) {
        dns_fwd_conn_close(c);
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

int dns_fwd_listen(struct awf_dns_fwd *f, struct fwd_listener *l, const struct awf_listen *cfg,
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

void dns_fwd_conn_answered(struct fwd_conn *c)
{
    if (c->eof && c->n_pending == 0)
        conn_finish(c);
    else
        conn_resume(c);
}

void dns_fwd_unlisten(struct fwd_listener *l)
{
    if (l->udp_init)
        uv_close((uv_handle_t *)&l->udp, on_listener_close);
    if (l->tcp_init)
        uv_close((uv_handle_t *)&l->tcp, on_listener_close);
}
