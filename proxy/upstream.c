/* Upstream connections: dialling checked addresses in order, a small per-loop pool of idle
 * keep-alive connections hashed by address and port, and an index of connected upstreams by
 * local port for loop detection. Everything here belongs to one proxy (one loop).
 *
 * This is the transport below the connection's state machine: what happens on an upstream
 * (dialling, connected, data, end of stream, a write done or failed, closed) is reported
 * through px->up_hooks (dispatch.c decides what it means in the connection's state), and
 * nothing here calls a file above it (proxy/README: Layers; tests/tools: callcycles_proxy). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "proxy/conn.h"

static void report(struct proxy_conn *c, enum proxy_up_event ev, int status, struct proxy_buf *b)
{
    c->px->up_hooks->event(c, ev, status, b);
}

static void up_unref(struct proxy_upstream *up)
{
    if (--up->handles == 0) {
        struct awf_proxy *px = up->px;
        SSL_free(up->ssl);
        free(up->tls_name);
        free(up);
        px->up_hooks->gone(px);
    }
}

static void up_tcp_closed(uv_handle_t *h)
{
    struct proxy_upstream *up = h->data;
    struct proxy_conn *c = up->notify;
    up->notify = NULL;
    if (c)
        report(c, AWF_UP_CLOSED, 0, NULL);
    up_unref(up);
}

static void up_timer_closed(uv_handle_t *h)
{
    up_unref(h->data);
}

static struct proxy_upstream *upstream_new(struct awf_proxy *px)
{
    struct proxy_upstream *up = calloc(1, sizeof(*up));
    if (!up)
        return NULL;
    up->px = px;
    uv_tcp_init(px->loop, &up->tcp);
    uv_timer_init(px->loop, &up->idle);
    up->tcp.data = up;
    up->idle.data = up;
    up->handles = 2;
    px->live++;
    return up;
}

static uint32_t addr_hash(const union awf_sockaddr *a)
{
    /* FNV-1a over the address and port bytes: cheap, and good enough for a few hundred. */
    const uint8_t *p = NULL;
    size_t n = 0;
    uint16_t port = 0;
    if (a->sa.sa_family == AF_INET) {
        p = (const uint8_t *)&a->in.sin_addr;
        n = sizeof(a->in.sin_addr);
        port = a->in.sin_port;
    } else if (a->sa.sa_family == AF_INET6) {
        p = (const uint8_t *)&a->in6.sin6_addr;
        n = sizeof(a->in6.sin6_addr);
        port = a->in6.sin6_port;
    }
    uint32_t h = 2166136261u ^ port;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h ^ (h >> 16);
}

static struct proxy_upstream **idle_bucket(struct awf_proxy *px, const union awf_sockaddr *a)
{
    return &px->idle_bucket[addr_hash(a) & (AWF_POOL_BUCKETS - 1)];
}

static struct proxy_upstream **local_bucket(struct awf_proxy *px, const union awf_sockaddr *a)
{
    return &px->by_local[awf_sockaddr_port(a) & (AWF_LOCAL_BUCKETS - 1)];
}

/* Takes a connected upstream into (or out of) the local-port index proxy_upstream_is_ours uses. */
static void upstream_index(struct proxy_upstream *up)
{
    struct proxy_upstream **head = local_bucket(up->px, &up->local);
    if (up->indexed) { /* out */
        if (up->lprev)
            up->lprev->lnext = up->lnext;
        else
            *head = up->lnext;
        if (up->lnext)
            up->lnext->lprev = up->lprev;
        up->lprev = up->lnext = NULL;
        up->indexed = false;
        return;
    }
    if (!up->has_local)
        return;
    up->lprev = NULL;
    up->lnext = *head;
    if (*head)
        (*head)->lprev = up;
    *head = up;
    up->indexed = true;
}

static void pool_unlink(struct proxy_upstream *up)
{
    struct awf_proxy *px = up->px;
    if (up->bprev)
        up->bprev->bnext = up->bnext;
    else
        *idle_bucket(px, &up->addr) = up->bnext;
    if (up->bnext)
        up->bnext->bprev = up->bprev;
    up->bprev = up->bnext = NULL;
    if (up->prev)
        up->prev->next = up->next;
    else
        px->idle_head = up->next;
    if (up->next)
        up->next->prev = up->prev;
    else
        px->idle_tail = up->prev;
    up->prev = up->next = NULL;
    up->pooled = false;
    px->n_idle--;
}

static void upstream_close(struct proxy_upstream *up)
{
    if (up->closing)
        return;
    up->closing = true;
    if (up->pooled)
        pool_unlink(up);
    if (up->indexed)
        upstream_index(up);
    uv_close((uv_handle_t *)&up->tcp, up_tcp_closed);
    uv_close((uv_handle_t *)&up->idle, up_timer_closed);
}

static void idle_cb(uv_timer_t *t)
{
    upstream_close(t->data);
}

void proxy_upstream_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct proxy_upstream *up = h->data;
    struct proxy_buf *b = proxy_bufpool_get(&up->px->bufs, 0);
    *buf = b ? uv_buf_init(b->data, (unsigned)b->cap) : uv_buf_init(NULL, 0);
}

static void pool_put(struct proxy_upstream *up, uint64_t idle_ms)
{
    struct awf_proxy *px = up->px;
    up->pooled = true;
    up->prev = NULL;
    up->next = px->idle_head;
    if (px->idle_head)
        px->idle_head->prev = up;
    else
        px->idle_tail = up;
    px->idle_head = up;
    struct proxy_upstream **bucket = idle_bucket(px, &up->addr);
    up->bprev = NULL;
    up->bnext = *bucket;
    if (*bucket)
        (*bucket)->bprev = up;
    *bucket = up;
    px->n_idle++;
    /* Keep reading while idle: a byte or a FIN from an idle server means it is not reusable,
     * and no buffer is taken until something arrives. */
    if (!up->reading && uv_read_start((uv_stream_t *)&up->tcp, proxy_upstream_alloc_cb,
                                      proxy_upstream_read_cb) == 0)
        up->reading = true;
    uv_timer_start(&up->idle, idle_cb, idle_ms ? idle_ms : 1, 0);
    if (px->n_idle > AWF_POOL_MAX_IDLE)
        upstream_close(px->idle_tail);
}

static bool same_addr(const union awf_sockaddr *a, const union awf_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    if (a->sa.sa_family == AF_INET6)
        return a->in6.sin6_port == b->in6.sin6_port &&
               memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr)) == 0;
    return false;
}

/* A pooled TLS upstream was verified for its tls_name: it serves that name only, and a plain
 * request never gets a TLS one. */
static bool same_tls(const struct proxy_upstream *up, const char *tls_name)
{
    if (!up->tls_name || !tls_name)
        return !up->tls_name && !tls_name;
    return up->tls_done && strcmp(up->tls_name, tls_name) == 0;
}

/* An idle upstream to sa, to the parent proxy (parent) or direct (!parent); NULL if none.
 * tls_name: a TLS upstream verified for that name[:port] (ssl-bump), NULL: a plain one. */
static struct proxy_upstream *pool_take(struct awf_proxy *px, const union awf_sockaddr *sa,
                                        bool parent, const char *tls_name)
{
    /* The first match is the most recently pooled one: least likely stale. A parent proxy's
     * address may also be dialled direct (it may serve pages too): its connections are kept
     * apart, as a parent gets absolute-form requests. */
    for (struct proxy_upstream *up = *idle_bucket(px, sa); up; up = up->bnext) {
        if (same_addr(&up->addr, sa) && up->parent == parent && same_tls(up, tls_name)) {
            pool_unlink(up);
            uv_timer_stop(&up->idle);
            return up;
        }
    }
    return NULL;
}

void proxy_upstream_pool_drain(struct awf_proxy *px)
{
    while (px->idle_head)
        upstream_close(px->idle_head);
}

void proxy_upstream_release(struct proxy_conn *c, bool reuse)
{
    struct proxy_upstream *up = c->up;
    if (!up)
        return;
    c->up = NULL;
    up->conn = NULL;
    if (reuse && !c->px->shutting_down && up->writes == 0 && !up->closing) {
        pool_put(up, c->set->timeouts.upstream_idle_ms);
        return;
    }
    if (!up->closing) {
        /* The connection waits for this close: write callbacks still queued on the upstream
         * point at it until then. */
        up->notify = c;
        c->closes++;
    }
    upstream_close(up);
}

static void dial_next(struct proxy_conn *c);

static void connect_cb(uv_connect_t *req, int status)
{
    struct proxy_upstream *up = req->data;
    struct proxy_conn *c = up->conn;
    free(req);
    if (!c || up->closing || c->up != up || c->state != AWF_CS_CONNECTING)
        return;
    if (status < 0) {
        c->last_err = status;
        proxy_upstream_release(c, false);
        dial_next(c);
        return;
    }
    uv_tcp_nodelay(&up->tcp, 1);
    uv_os_fd_t fd;
    int on = 1; /* urgent bytes inline, as client sockets have them (proxy.c) */
    if (uv_fileno((uv_handle_t *)&up->tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
    int len = sizeof(up->local);
    up->has_local = uv_tcp_getsockname(&up->tcp, &up->local.sa, &len) == 0;
    awf_sockaddr_unmap(&up->local); /* as proxy_upstream_is_ours compares */
    upstream_index(up);
    report(c, AWF_UP_CONNECTED, 0, NULL);
}

bool proxy_upstream_is_ours(const struct awf_proxy *px, const union awf_sockaddr *sa)
{
    /* Our end may be ::ffff:a.b.c.d (dialled from an IPv6 socket) and come back to an IPv4
     * listener as a.b.c.d, or the other way round: both sides are compared unmapped. */
    union awf_sockaddr peer = *sa;
    awf_sockaddr_unmap(&peer);
    for (const struct proxy_upstream *up =
             px->by_local[awf_sockaddr_port(&peer) & (AWF_LOCAL_BUCKETS - 1)];
         up; up = up->lnext)
        if (same_addr(&up->local, &peer))
            return true;
    return false;
}

/* Dials c's next address (none left: AWF_UP_DIAL_FAILED). */
static void dial_next(struct proxy_conn *c)
{
    struct awf_proxy *px = c->px;
    while (c->next_addr < c->n_addrs) {
        const union awf_sockaddr *sa = &c->addrs[c->next_addr++];
        struct proxy_upstream *up = upstream_new(px);
        if (!up) {
            c->last_err = -ENOMEM;
            break;
        }
        up->addr = *sa;
        up->parent = (c->flags & AWF_CF_VIA_PARENT);
        up->conn = c;
        c->up = up;
        c->flags &= ~AWF_CF_REUSED;
        report(c, AWF_UP_DIALLING, 0, NULL);
        /* Owned by the dial: freed in connect_cb, which libuv always runs (UV_ECANCELED when
         * the upstream closes first, before its close callbacks). */
        uv_connect_t *req = malloc(sizeof(*req));
        int rc = -ENOMEM;
        if (req) {
            req->data = up;
            rc = uv_tcp_connect(req, &up->tcp, &sa->sa, connect_cb);
        }
        if (rc == 0)
            return;
        free(req);
        c->last_err = rc;
        proxy_upstream_release(c, false);
    }
    report(c, AWF_UP_DIAL_FAILED, c->last_err < 0 ? -c->last_err : ECONNREFUSED, NULL);
}

void proxy_upstream_dial(struct proxy_conn *c, const char *tls_name)
{
    struct awf_proxy *px = c->px;
    if (!(c->flags & (AWF_CF_CONNECT | AWF_CF_NOPOOL)) && c->next_addr == 0) {
        for (size_t i = 0; i < c->n_addrs; i++) {
            struct proxy_upstream *up =
                pool_take(px, &c->addrs[i], (c->flags & AWF_CF_VIA_PARENT), tls_name);
            if (up) {
                up->conn = c;
                c->up = up;
                c->flags |= AWF_CF_REUSED;
                report(c, AWF_UP_DIALLING, 0, NULL);
                report(c, AWF_UP_CONNECTED, 0, NULL);
                return;
            }
        }
    }
    dial_next(c);
}

void proxy_upstream_write_cb(uv_write_t *req, int status)
{
    struct proxy_buf *b = (struct proxy_buf *)(void *)req;
    struct proxy_upstream *up = req->data;
    struct proxy_conn *c = up->conn;
    up->writes--;
    proxy_bufpool_put(&up->px->bufs, b);
    if (!c || c->state == AWF_CS_CLOSING)
        return;
    report(c, status < 0 ? AWF_UP_WRITE_FAILED : AWF_UP_WRITTEN, status, NULL);
}

void proxy_upstream_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *ub)
{
    struct proxy_upstream *up = s->data;
    struct proxy_buf *b = ub->base ? proxy_buf_of(ub->base) : NULL;
    struct proxy_conn *c = up->conn;
    if (nread == 0 || up->closing) {
        proxy_bufpool_put(&up->px->bufs, b);
        return;
    }
    if (!c) {
        /* Idle in the pool: a byte or a FIN means the server moved on; not reusable. */
        proxy_bufpool_put(&up->px->bufs, b);
        upstream_close(up);
        return;
    }
    if (nread < 0) {
        proxy_bufpool_put(&up->px->bufs, b);
        up->reading = false;
        uv_read_stop(s);
        report(c, AWF_UP_EOF, (int)nread, NULL);
        return;
    }
    b->off = 0;
    b->len = (size_t)nread;
    report(c, AWF_UP_DATA, 0, b);
}
