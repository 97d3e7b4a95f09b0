/* Client connections, below the phases: accepting, reading and writing the client, the state
 * change and its deadline, keep-alive, dialling, closing, and the event entry points
 * (client_read_cb, proxy_conn_client_eof, timer_cb) that hand each event to the current state's
 * handler through px->phases (dispatch.c's table of AWF_STATES; the transitions and the flags'
 * names are state.c's). The phases (request.c, peek.c, forward.c, tunnel.c, ...) act on the same
 * struct proxy_conn and call down into this file; it names none of them, and reaches ssl-bump's
 * TLS through px->tls_io and the kernel relay's handles through px->splice_close. */

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/diag.h"
#include "common/counter.h"
#include "common/error.h"
#include "proxy/conn.h"

/* ---- time ---- */

void proxy_conn_touch(struct proxy_conn *c)
{
    c->last_active = uv_now(c->px->loop);
}

#define LINGER_MS 2000

/* Each state's deadline (AWF_STATES' deadline column) as data, so proxy_conn_deadline stays pure
 * and needs no proxy. */
static const uint8_t deadline_of[AWF_CS_COUNT] = {
#define AWF_X(st, name, cd, ce, ud, ue, tmo, rd, dl, to) [AWF_CS_##st] = dl,
    AWF_STATES(AWF_X)
#undef AWF_X
};

static uint64_t deadline(const struct proxy_conn *c)
{
    const struct awf_timeouts *t = &c->set->timeouts;
    switch ((enum proxy_deadline)deadline_of[c->state]) {
    case AWF_DL_HEAD:
        if (!(c->flags & AWF_CF_TXN))
            return c->state_since + t->client_idle_ms;
        return c->state_since + t->request_headers_ms;
    case AWF_DL_PEEK:
        /* A CONNECT tunnel may wait long for its first byte (browsers open tunnels ahead of
         * use); nothing has gone upstream, so only read_idle applies until a ClientHello
         * starts. From its first byte (peek.c restarts state_since) it must be complete
         * within client_hello. Intercepted TLS enters PEEK with its first bytes. */
        if (!c->hello)
            return c->last_active + t->read_idle_ms;
        return c->state_since + t->client_hello_ms;
    case AWF_DL_DNS:
        return c->state_since + t->dns_ms + 1000;
    case AWF_DL_CONNECT:
        return c->state_since + t->connect_ms;
    case AWF_DL_HELLO:
        return c->state_since + t->client_hello_ms;
    case AWF_DL_FLUSH: {
        if (c->flags & AWF_CF_CLIENT_SHUT_DONE)
            return c->state_since + LINGER_MS;
        /* The last bytes are queued and nothing more is forwarded: a client that does not
         * read them gets as long as it had to send a head, not read_idle (30 min) again and
         * again while a trickle keeps it active. */
        uint64_t idle = c->last_active + t->read_idle_ms;
        uint64_t cap = c->state_since + t->request_headers_ms;
        return idle < cap ? idle : cap;
    }
    case AWF_DL_NOW:
        return c->state_since;
    case AWF_DL_IDLE:
    default:
        return c->last_active + t->read_idle_ms;
    }
}

uint64_t proxy_conn_deadline(const struct proxy_conn *c)
{
    uint64_t d = deadline(c);
    uint64_t life = c->born + c->set->timeouts.lifetime_ms;
    return d < life ? d : life;
}

static void timer_cb(uv_timer_t *t);

void proxy_conn_arm_timer(struct proxy_conn *c)
{
    uint64_t due = proxy_conn_deadline(c);
    if ((c->flags & AWF_CF_TIMER_ARMED) && c->timer_due <= due)
        return; /* fires no later than needed; timer_cb waits for the rest */
    uint64_t now = uv_now(c->px->loop);
    /* A deadline that has passed fires within a millisecond; AWF_DL_NOW in the next loop turn,
     * after the callback that set it has returned. */
    if (due > now)
        c->timer_due = due;
    else
        c->timer_due = deadline_of[c->state] == AWF_DL_NOW ? now : now + 1;
    c->flags |= AWF_CF_TIMER_ARMED;
    uv_timer_start(&c->timer, timer_cb, c->timer_due - now, 0);
}

void proxy_conn_set_state(struct proxy_conn *c, enum proxy_conn_state to)
{
    /* An invalid transition is a bug that would leave handles or the log line inconsistent:
     * stop here in every build rather than run on in an unknown state. The flags say what the
     * connection was doing. */
    if (!proxy_conn_transition_ok(c->state, to)) {
        char flags[700];
        awf_diag("BUG: connection state %s -> %s, flags %s", proxy_conn_state_name(c->state),
                 proxy_conn_state_name(to), proxy_conn_flags_str(c->flags, flags, sizeof(flags)));
        abort();
    }
    c->state = to;
    c->state_since = uv_now(c->px->loop);
    if (to != AWF_CS_CLOSING)
        proxy_conn_arm_timer(c);
}

static void timer_cb(uv_timer_t *t)
{
    struct proxy_conn *c = t->data;
    uint64_t now = uv_now(c->px->loop);
    c->flags &= ~AWF_CF_TIMER_ARMED;
    if (c->state == AWF_CS_CLOSING)
        return;
    if (now < proxy_conn_deadline(c)) { /* activity moved the deadline: wait for the rest */
        proxy_conn_arm_timer(c);
        return;
    }
    if (now >= c->born + c->set->timeouts.lifetime_ms) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_phase(c)->timeout(c);
}

/* ---- reading and writing ---- */

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct proxy_conn *c = h->data;
    struct proxy_buf *b = proxy_bufpool_get(&c->px->bufs, 0);
    *buf = b ? uv_buf_init(b->data, (unsigned)b->cap) : uv_buf_init(NULL, 0);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *ub);

static void client_write_cb(uv_write_t *req, int status)
{
    struct proxy_buf *b = (struct proxy_buf *)(void *)req;
    struct proxy_conn *c = req->data;
    c->client_writes--;
    proxy_bufpool_put(&c->px->bufs, b);
    if (c->state == AWF_CS_CLOSING)
        return;
    if (status < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_touch(c);
    proxy_conn_sync_reading(c);
}

int proxy_conn_write(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b)
{
    const struct proxy_tls_io *tls = c->px->tls_io;
    if ((c->bump || (c->up && c->up->ssl)) && tls->is_tls(c, dst))
        return tls->write(c, dst, b);
    return proxy_conn_write_raw(c, dst, b);
}

int proxy_conn_write_raw(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b)
{
    uv_buf_t ub = uv_buf_init(b->data + b->off, (unsigned)b->len);
    uv_write_cb cb;
    /* Try the socket first: libuv 1.44 re-arms the epoll watcher (one epoll_ctl) for every
     * queued write, even one that completes at once; most writes fit the socket buffer. */
    int n = uv_try_write(dst, &ub, 1);
    if (n >= 0 && (size_t)n == b->len) {
        proxy_bufpool_put(&c->px->bufs, b);
        return 0;
    }
    if (n >= 0) {
        b->off += (size_t)n;
        b->len -= (size_t)n;
        ub = uv_buf_init(b->data + b->off, (unsigned)b->len);
    } else if (n != UV_EAGAIN) {
        proxy_bufpool_put(&c->px->bufs, b);
        return n;
    }
    b->dst = dst;
    if (dst == (uv_stream_t *)&c->client) {
        b->req.data = c;
        c->client_writes++;
        cb = client_write_cb;
    } else {
        b->req.data = c->up;
        c->up->writes++;
        cb = proxy_upstream_write_cb;
    }
    int rc = uv_write(&b->req, dst, &ub, 1, cb);
    if (rc < 0) {
        if (dst != (uv_stream_t *)&c->client)
            c->up->writes--;
        else
            c->client_writes--;
        proxy_bufpool_put(&c->px->bufs, b);
    }
    return rc;
}

int proxy_conn_append(struct proxy_conn *c, struct proxy_buf **dst, struct proxy_buf *b)
{
    struct proxy_buf *d = *dst;
    if (!d) {
        *dst = b;
        return 0;
    }
    if (d->cap - d->off - d->len < b->len) {
        struct proxy_buf *n = proxy_bufpool_get(&c->px->bufs, d->len + b->len);
        if (!n) {
            proxy_bufpool_put(&c->px->bufs, b);
            return -ENOMEM;
        }
        memcpy(n->data, d->data + d->off, d->len);
        n->len = d->len;
        proxy_bufpool_put(&c->px->bufs, d);
        *dst = d = n;
    }
    memcpy(d->data + d->off + d->len, b->data + b->off, b->len);
    d->len += b->len;
    proxy_bufpool_put(&c->px->bufs, b);
    return 0;
}

/* Starts or stops reading a stream so that it matches want, with hysteresis on the write queue
 * of the stream its bytes go to (peer_q): stop above AWF_WQ_HIGH, resume at AWF_WQ_LOW. */
static void sync_one(uv_stream_t *s, bool *reading, bool want, size_t peer_q, uv_alloc_cb alloc,
                     uv_read_cb rd)
{
    if (*reading) {
        if (!want || peer_q > AWF_WQ_HIGH) {
            uv_read_stop(s);
            *reading = false;
        }
    } else if (want && peer_q <= AWF_WQ_LOW) {
        if (uv_read_start(s, alloc, rd) == 0)
            *reading = true;
    }
}

void proxy_conn_sync_reading(struct proxy_conn *c)
{
    bool want = false;
    struct proxy_upstream *up = c->up;
    if ((c->state == AWF_CS_TUNNEL_SPLICE_WAIT || c->state == AWF_CS_BODY_SPLICE_WAIT) && up &&
        !up->writes && !c->client_writes) {
        /* The last write is done, but libuv clears its watcher's POLLOUT only after this
         * callback returns: the switch to splice is due in the next loop turn (the DUE state's
         * timeout), and the DUE state reads neither side meanwhile so no new write starts. */
        proxy_conn_set_state(c, c->state == AWF_CS_TUNNEL_SPLICE_WAIT ? AWF_CS_TUNNEL_SPLICE_DUE
                                                                      : AWF_CS_BODY_SPLICE_DUE);
    }
    /* A spliced state reads nothing either: poll handles own both sockets (splice.c). */
    unsigned reads = proxy_conn_phase(c)->reads;
    /* AWF_RD_HOLD: also reading while resolving, connecting or a handshake with the upstream
     * (bytes that come meanwhile wait in pend): stopping and restarting would cost two
     * epoll_ctl calls per request; and after a request is complete, so a client that goes away
     * is noticed (a pipelined request is held in pend until the response is done).
     * AWF_RD_DROP: after an answer, what the client still sends is read and dropped, so closing
     * does not reset the connection before the answer is read. */
    want = (reads & AWF_RD_CLIENT) && !(c->flags & AWF_CF_CLIENT_EOF) &&
           !((reads & AWF_RD_HOLD) && c->pend);
    size_t q = up && !up->closing ? uv_stream_get_write_queue_size((uv_stream_t *)&up->tcp) : 0;
    bool rd = (c->flags & AWF_CF_CLIENT_RD) != 0;
    sync_one((uv_stream_t *)&c->client, &rd, want, q, client_alloc_cb, client_read_cb);
    c->flags = rd ? c->flags | AWF_CF_CLIENT_RD : c->flags & ~AWF_CF_CLIENT_RD;

    if (!up || up->closing)
        return;
    want = (reads & AWF_RD_UP) && !(c->flags & (AWF_CF_UP_EOF | AWF_CF_RESP_DONE));
    q = uv_stream_get_write_queue_size((uv_stream_t *)&c->client);
    sync_one((uv_stream_t *)&up->tcp, &up->reading, want, q, proxy_upstream_alloc_cb,
             proxy_upstream_read_cb);
}

/* ---- accepting ---- */

static void conn_closed_cb(uv_handle_t *h);

/* Whether connections accepted on l all have l's bound address as their local end (not a
 * wildcard listener, where the local address is whichever the client reached). */
static bool bound_to_one_address(const struct proxy_listener *l)
{
    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&l->addr;
        return a->sin_addr.s_addr != htonl(INADDR_ANY);
    }
    if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)&l->addr;
        return !IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
    }
    return false;
}

void proxy_conn_accept(struct awf_proxy *px, struct proxy_listener *l)
{
    uv_stream_t *server = (uv_stream_t *)&l->tcp;
    struct proxy_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        /* Take the connection off the queue so the listener does not spin on it. */
        uv_tcp_t *tmp = malloc(sizeof(*tmp));
        if (tmp && uv_tcp_init(px->loop, tmp) == 0) {
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        } else {
            free(tmp);
        }
        return;
    }
    c->px = px;
    c->listener = l;
    uv_tcp_init(px->loop, &c->client);
    uv_timer_init(px->loop, &c->timer);
    c->client.data = c;
    c->timer.data = c;
    c->policy = awf_policy_ref(px->policy);
    c->set = awf_policy_settings(c->policy);
    proxy_http_head_init(&c->head, c->set->limits.header_bytes + 1024, c->set->limits.header_count);
    c->next = px->conns;
    if (px->conns)
        px->conns->prev = c;
    px->conns = c;
    px->live++;
    px->active++;
    unsigned long all = atomic_fetch_add(&px->counts->conns, 1) + 1;
    px->accepted++;
    awf_counter_inc(&px->ctr->conns_accepted);
    c->born = c->last_active = c->state_since = uv_now(px->loop);
    c->state = AWF_CS_SNIFF;
    if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
        proxy_conn_close(c);
        return;
    }
    /* TCP_NODELAY and SO_OOBINLINE come from the listener (proxy.c). */
    int len = sizeof(c->peer);
    uv_tcp_getpeername(&c->client, &c->peer.sa, &len);
    if (bound_to_one_address(l)) {
        /* What getsockname would say: one syscall less per connection. */
        awf_sockaddr_copy(&c->local, (const struct sockaddr *)&l->addr);
    } else {
        len = sizeof(c->local);
        uv_tcp_getsockname(&c->client, &c->local.sa, &len);
    }
    /* The first transaction opens with the connection: one that ends before a complete head
     * is logged as Squid does (error:transaction-end-before-headers). */
    c->flags |= AWF_CF_TXN;
    c->start_us = proxy_now_us();
    c->requests = 1;
    proxy_conn_req_parser_init(c);
    if (c->set->limits.max_connections && all > c->set->limits.max_connections)
        c->flags |= AWF_CF_OVERLOAD;
    proxy_conn_arm_timer(c);
    proxy_conn_sync_reading(c);
}

void proxy_conn_client_eof(struct proxy_conn *c, int status)
{
    c->flags |= AWF_CF_CLIENT_EOF;
    c->flags &= ~AWF_CF_CLIENT_RD; /* libuv stops reading at EOF */
    if (status != UV_EOF)
        uv_read_stop((uv_stream_t *)&c->client);
    proxy_conn_phase(c)->client_eof(c, status);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *ub)
{
    struct proxy_conn *c = s->data;
    struct proxy_buf *b = ub->base ? proxy_buf_of(ub->base) : NULL;
    if (nread <= 0 || c->state == AWF_CS_CLOSING || (proxy_conn_phase(c)->reads & AWF_RD_DROP)) {
        proxy_bufpool_put(&c->px->bufs, b);
        if (nread < 0 && c->state != AWF_CS_CLOSING)
            proxy_conn_client_eof(c, (int)nread);
        return;
    }
    b->off = 0;
    b->len = (size_t)nread;
    proxy_conn_touch(c);
    c->flags |= AWF_CF_HEARD;
    if (c->bump) {
        c->px->tls_io->client_read(c, b);
        return;
    }
    proxy_conn_client_input(c, b);
}

/* ---- tunnels ---- */

int proxy_conn_send_established(struct proxy_conn *c)
{
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (c->flags & AWF_CF_ESTABLISHED)
        return 0;
    struct proxy_buf *b = proxy_bufpool_get(&c->px->bufs, sizeof(established) - 1);
    if (!b)
        return -ENOMEM;
    memcpy(b->data, established, sizeof(established) - 1);
    b->len = sizeof(established) - 1;
    c->flags |= AWF_CF_ESTABLISHED;
    c->status = 200;
    c->bytes_out += b->len;
    return proxy_conn_write(c, (uv_stream_t *)&c->client, b);
}

bool proxy_conn_tunnel_reserve(struct proxy_conn *c)
{
    uint32_t max = c->set->limits.max_tunnels;
    if (c->flags & AWF_CF_TUNNEL_CNT)
        return true;
    /* Taken first, given back when over: other loops may be reserving at the same moment. */
    unsigned long n = atomic_fetch_add(&c->px->counts->tunnels, 1) + 1;
    if (max && n > max) {
        atomic_fetch_sub(&c->px->counts->tunnels, 1);
        return false;
    }
    c->px->tunnels++;
    awf_counter_inc(&c->px->ctr->tunnels_opened);
    c->flags |= AWF_CF_TUNNEL_CNT;
    return true;
}

void proxy_conn_tunnel_release(struct proxy_conn *c)
{
    if (c->flags & AWF_CF_TUNNEL_CNT) {
        c->px->tunnels--;
        awf_counter_inc(&c->px->ctr->tunnels_closed);
        atomic_fetch_sub(&c->px->counts->tunnels, 1);
        c->flags &= ~AWF_CF_TUNNEL_CNT;
    }
}

/* ---- upstreams ---- */

/* The TLS name[:port] requests of a bumped connection go to (the pool key), NULL otherwise. */
static const char *tls_name(const struct proxy_conn *c)
{
    /* name[:port]: through a parent the pooled connection's address is the parent's, so the
     * origin's port must be part of the key too. */
    return c->bump && !(c->flags & AWF_CF_CONNECT) ? c->bump->authority : NULL;
}

void proxy_conn_dial(struct proxy_conn *c)
{
    proxy_upstream_dial(c, tls_name(c));
}

/* ---- transactions ---- */

void proxy_conn_next_request(struct proxy_conn *c)
{
    const uint64_t keep = AWF_CF_CLIENT_RD | AWF_CF_CLIENT_EOF;
    proxy_conn_tunnel_release(c); /* a WebSocket upgrade the server refused */
    c->flags &= keep;
    proxy_http_head_reset(&c->head);
    proxy_bufpool_put(&c->px->bufs, c->rhead);
    c->rhead = NULL;
    c->n_addrs = c->next_addr = 0; /* c->addrs is kept for the next request */
    c->why = NULL;
    c->flags &= ~AWF_CF_HAS_SERVER;
    c->head_bytes = c->bytes_in = c->bytes_out = 0;
    c->status = c->upstream_status = 0;
    c->flags &= ~AWF_CF_VIA_PARENT;
    c->tag = AWF_TAG_UNSET;
    c->hier = AWF_HIER_NONE;
    c->log_url = c->log_method = c->mime = NULL;
    memset(&c->target, 0, sizeof(c->target));
    if (c->host)
        c->host[0] = '\0'; /* the buffer stays for the next request */
    proxy_conn_req_parser_init(c);
    if (c->px->shutting_down || ((c->flags & AWF_CF_CLIENT_EOF) && !c->pend)) {
        /* Shutting down, or the client half-closed and every request it sent is answered. */
        proxy_conn_flush_close(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_HEAD);
    if (c->pend) {
        struct proxy_buf *b = c->pend;
        c->pend = NULL;
        proxy_conn_client_input(c, b); /* a pipelined request: HEAD's handler */
        return;
    }
    proxy_conn_sync_reading(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct proxy_conn *c = req->data;
    bool to_client = req->handle == (uv_stream_t *)&c->client;
    free(req);
    if (c->state == AWF_CS_CLOSING)
        return;
    if (status < 0) {
        proxy_conn_close(c);
        return;
    }
    if (to_client) {
        c->flags |= AWF_CF_CLIENT_SHUT_DONE;
        if (c->state == AWF_CS_FLUSH) {
            if (c->flags & AWF_CF_CLIENT_EOF) {
                proxy_conn_close(c);
            } else {
                c->state_since = uv_now(c->px->loop); /* linger for the client's FIN */
                proxy_conn_arm_timer(c);
            }
            return;
        }
    } else {
        c->flags |= AWF_CF_UP_SHUT_DONE;
    }
    const uint64_t all =
        AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF | AWF_CF_CLIENT_SHUT_DONE | AWF_CF_UP_SHUT_DONE;
    if (proxy_conn_in_tunnel(c) && (c->flags & all) == all)
        proxy_conn_close(c);
}

int proxy_conn_shutdown(struct proxy_conn *c, uv_stream_t *s)
{
    c->px->tls_io->close_notify(c, s);
    /* Rare (a FIN passed on, or closing after an answer): not worth 80 bytes in every
     * connection. Freed in shutdown_cb. */
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->data = c;
    int rc = uv_shutdown(req, s, shutdown_cb);
    if (rc < 0)
        free(req);
    return rc;
}

void proxy_conn_flush_close(struct proxy_conn *c)
{
    if (c->up)
        proxy_upstream_release(c, false);
    proxy_bufpool_put(&c->px->bufs, c->pend);
    c->pend = NULL;
    if (c->state != AWF_CS_FLUSH)
        proxy_conn_set_state(c, AWF_CS_FLUSH);
    if (!(c->flags & AWF_CF_CLIENT_SHUT)) {
        c->flags |= AWF_CF_CLIENT_SHUT;
        if (proxy_conn_shutdown(c, (uv_stream_t *)&c->client) < 0) {
            proxy_conn_close(c);
            return;
        }
    }
    proxy_conn_sync_reading(c);
}

/* ---- closing ---- */

static void conn_free(struct proxy_conn *c)
{
    struct awf_proxy *px = c->px;
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    awf_policy_unref(c->policy);
    proxy_http_head_free(&c->head);
    free(c->splice); /* its handles closed before (px->splice_close) */
    px->tls_io->free(c);
    free(c->addrs);
    free(c->resp);
    free(c->host);
    free(c->sni_hp);
    free(c);
    px->active--;
    awf_counter_inc(&px->ctr->conns_closed);
    atomic_fetch_sub(&px->counts->conns, 1);
    px->object_gone(px);
}

void proxy_conn_handle_closed(struct proxy_conn *c)
{
    if (--c->closes == 0 && c->state == AWF_CS_CLOSING)
        conn_free(c);
}

static void conn_closed_cb(uv_handle_t *h)
{
    proxy_conn_handle_closed(h->data);
}

void proxy_conn_close(struct proxy_conn *c)
{
    if (c->state == AWF_CS_CLOSING)
        return;
    proxy_conn_log(c);
    proxy_conn_set_state(c, AWF_CS_CLOSING);
    if (c->dns_req) {
        awf_dns_cancel(c->dns_req);
        c->dns_req = NULL;
    }
    proxy_conn_tunnel_release(c);
    proxy_bufpool_put(&c->px->bufs, c->pend);
    proxy_bufpool_put(&c->px->bufs, c->hello);
    proxy_bufpool_put(&c->px->bufs, c->rhead);
    c->pend = c->hello = c->rhead = NULL;
    c->closes += 2;
    c->px->splice_close(c); /* the kernel relay's poll handles, before the upstream's socket */
    if (c->up)
        proxy_upstream_release(c, false);
    uv_close((uv_handle_t *)&c->client, conn_closed_cb);
    uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
}
