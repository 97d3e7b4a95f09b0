/* The proxy object: listeners, the loop's resolver and buffer pool, policy swaps, shutdown.
 * On top of proxy/: creating a proxy sets the hooks through which the files below reach the
 * ones above them (px->up_hooks, phases, tls_io, splice_close, and object_gone, which counts
 * closed objects here; proxy/README: Layers). */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"

static void maybe_done(struct awf_proxy *px)
{
    if (!px->shutting_down || px->live > 0 || px->done_called || px->dns)
        return;
    px->done_called = true;
    void (*done)(void *) = px->done;
    void *arg = px->done_arg;
    proxy_bufpool_cleanup(&px->bufs);
    proxy_splice_pool_cleanup(px);
    awf_policy_unref(px->policy);
    if (atomic_fetch_sub(&px->counts->refs, 1) == 1)
        free(px->counts);
    free(px->listeners);
    free(px->local_addrs);
    free(px->own_ctr);
    free(px);
    if (done)
        done(arg);
}

static void drain_cb(uv_timer_t *t);

static void object_gone(struct awf_proxy *px)
{
    px->live--;
    /* Draining and the last connection is gone: nothing is left to wait for. */
    if (px->draining && !px->conns) {
        px->draining = false;
        uv_timer_stop(&px->drain);
        drain_cb(&px->drain);
        return;
    }
    maybe_done(px);
}

int awf_proxy_create(uv_loop_t *loop, struct awf_policy *policy, struct awf_log *log,
                     struct awf_proxy **out, char *err, size_t errlen)
{
    return awf_proxy_create_counted(loop, policy, log, NULL, out, err, errlen);
}

int awf_proxy_create_counted(uv_loop_t *loop, struct awf_policy *policy, struct awf_log *log,
                             struct awf_proxy_counters *counters, struct awf_proxy **out, char *err,
                             size_t errlen)
{
    struct awf_proxy *px = calloc(1, sizeof(*px));
    if (px)
        px->counts = calloc(1, sizeof(*px->counts));
    if (px && !counters)
        counters = px->own_ctr = calloc(1, sizeof(*px->own_ctr));
    if (!px || !px->counts || !counters) {
        if (px) {
            free(px->counts);
            free(px->own_ctr);
        }
        free(px);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&px->counts->refs, 1);
    struct awf_dns_config cfg;
    awf_dns_config_from_settings(awf_policy_settings(policy), &cfg);
    cfg.stats = &counters->dns;
    px->ctr = counters;
    int rc = awf_dns_create(loop, &cfg, &px->dns);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the resolver: %s", awf_strerror(rc));
        free(px->counts);
        free(px->own_ctr);
        free(px);
        return rc;
    }
    px->loop = loop;
    px->up_hooks = &proxy_conn_up_hooks;
    px->object_gone = object_gone;
    px->phases = proxy_conn_phases;
    px->tls_io = &proxy_bump_tls_io;
    px->splice_close = proxy_splice_close;
    px->policy = awf_policy_ref(policy);
    px->log = log;
    px->debug = getenv("AWF_PROXY_DEBUG") != NULL;
    px->no_splice = getenv("AWF_PROXY_NO_SPLICE") != NULL;
    proxy_bufpool_init(&px->bufs, AWF_BUF_BLOCK, AWF_BUF_MAX_FREE);
    *out = px;
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct proxy_listener *l = h->data;
    object_gone(l->px);
}

static void close_listeners(struct awf_proxy *px)
{
    for (size_t i = 0; i < px->n_listeners; i++) {
        if (px->listeners[i].open) {
            px->listeners[i].open = false;
            uv_close((uv_handle_t *)&px->listeners[i].tcp, listener_closed);
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct proxy_listener *l = server->data;
    if (status < 0 || l->px->shutting_down)
        return;
    proxy_conn_accept(l->px, l);
}

/* This host's addresses, for spotting requests aimed at a wildcard listener and intercepted
 * connections coming from this host (proxy_is_local). Taken once, at listen time. */
static void gather_local_addrs(struct awf_proxy *px)
{
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    if (uv_interface_addresses(&ifs, &n) < 0 || n <= 0)
        return;
    px->local_addrs = calloc((size_t)n, sizeof(*px->local_addrs));
    if (px->local_addrs) {
        for (int i = 0; i < n; i++)
            memcpy(&px->local_addrs[px->n_local_addrs++], &ifs[i].address, sizeof(ifs[i].address));
    }
    uv_free_interface_addresses(ifs, n);
}

/* Binds the settings' listeners, at addrs[i] instead of the configured address when addrs is
 * given. SO_REUSEPORT (reuse) lets several loops (threads), each with its own proxy, bind one
 * address and have the kernel spread connections over them. It is left off with one thread, so
 * that a second proxy started on a port in use fails (EADDRINUSE) instead of sharing it. */
static int listen_on(struct awf_proxy *px, const struct sockaddr_storage *addrs, bool reuse,
                     char *err, size_t errlen)
{
    const struct awf_settings *s = awf_policy_settings(px->policy);
    px->listeners = calloc(s->n_listen ? s->n_listen : 1, sizeof(*px->listeners));
    if (!px->listeners) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n_listen; i++) {
        struct proxy_listener *l = &px->listeners[i];
        const struct sockaddr *sa =
            (const struct sockaddr *)(addrs ? &addrs[i] : &s->listen[i].addr);
        l->px = px;
        l->intercept_port = s->listen[i].intercept_port;
        int rc = uv_tcp_init_ex(px->loop, &l->tcp, sa->sa_family);
        if (rc == 0) {
            l->tcp.data = l;
            l->open = true;
            px->live++;
            px->n_listeners = i + 1;
            uv_os_fd_t fd;
            int on = 1;
            if (uv_fileno((uv_handle_t *)&l->tcp, &fd) < 0)
                rc = UV_EBADF;
            else if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
                rc = -errno;
            /* Accepted sockets inherit both (Linux copies the listener's options): no syscall
             * per connection. Inline urgent data: the relay passes every byte as sent (libuv
             * reads would skip an urgent byte; a TCP splice stops at it, see splice.c). */
            else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ||
                     setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on)) < 0)
                rc = -errno;
        }
        if (rc == 0) /* [::] listens on IPv6 only, so 0.0.0.0 on the same port can be bound too */
            rc = uv_tcp_bind(&l->tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
        if (rc == 0) {
            int len = sizeof(l->addr);
            rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&l->addr, &len);
        }
        if (rc < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", s->listen[i].text, uv_strerror(rc));
            close_listeners(px);
            return rc;
        }
    }
    gather_local_addrs(px);
    return 0;
}

int awf_proxy_listen(struct awf_proxy *px, char *err, size_t errlen)
{
    return listen_on(px, NULL, awf_policy_settings(px->policy)->threads != 1, err, errlen);
}

int awf_proxy_listen_at(struct awf_proxy *px, const struct sockaddr_storage *bound, size_t n,
                        char *err, size_t errlen)
{
    if (n != awf_policy_settings(px->policy)->n_listen) {
        snprintf(err, errlen, "%zu addresses for %zu listeners", n,
                 awf_policy_settings(px->policy)->n_listen);
        return -EINVAL;
    }
    return listen_on(px, bound, true, err, errlen);
}

size_t awf_proxy_bound(const struct awf_proxy *px, struct sockaddr_storage *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < px->n_listeners && n < max; i++)
        if (px->listeners[i].open)
            out[n++] = px->listeners[i].addr;
    return n;
}

void awf_proxy_share_dns_cache(struct awf_proxy *px, struct awf_proxy *with)
{
    awf_dns_share_cache(px->dns, with->dns);
}

void awf_proxy_set_tls(struct awf_proxy *px, struct awf_tls_bump *tls)
{
    px->tls = tls;
}

void awf_proxy_share_tls(struct awf_proxy *px, struct awf_proxy *with)
{
    px->tls = with->tls;
}

void awf_proxy_share_limits(struct awf_proxy *px, struct awf_proxy *with)
{
    if (px->counts == with->counts)
        return;
    atomic_fetch_add(&with->counts->refs, 1);
    if (atomic_fetch_sub(&px->counts->refs, 1) == 1)
        free(px->counts);
    px->counts = with->counts;
}

void awf_proxy_set_policy(struct awf_proxy *px, struct awf_policy *policy)
{
    struct awf_policy *old = px->policy;
    px->policy = awf_policy_ref(policy);
    awf_policy_unref(old);
}

void awf_proxy_set_hosts(struct awf_proxy *px, struct awf_dns_hosts_file *h)
{
    awf_dns_set_hosts(px->dns, h); /* px->dns is NULL once shutting down: nothing to do */
}

static void close_all(struct awf_proxy *px)
{
    struct proxy_conn *c = px->conns;
    while (c) {
        struct proxy_conn *next = c->next;
        if (c->state != AWF_CS_CLOSING) {
            /* Cut off mid-transaction by the shutdown. */
            if (c->state != AWF_CS_HEAD && c->state != AWF_CS_SNIFF)
                c->flags |= AWF_CF_ABORTED;
            proxy_conn_close(c);
        }
        c = next;
    }
    proxy_upstream_pool_drain(px);
    if (px->dns) {
        awf_dns_destroy(px->dns);
        px->dns = NULL;
    }
}

static void drain_closed(uv_handle_t *h)
{
    object_gone(h->data);
}

static void drain_cb(uv_timer_t *t)
{
    struct awf_proxy *px = t->data;
    px->draining = false;
    px->live++; /* hold px while closing everything */
    close_all(px);
    uv_close((uv_handle_t *)&px->drain, drain_closed);
    object_gone(px);
}

void awf_proxy_shutdown(struct awf_proxy *px, uint64_t drain_ms, void (*done)(void *arg), void *arg)
{
    if (px->shutting_down)
        return;
    px->shutting_down = true;
    px->done = done;
    px->done_arg = arg;
    close_listeners(px);
    proxy_upstream_pool_drain(px);
    /* Idle keep-alive clients have nothing to finish. */
    for (struct proxy_conn *c = px->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == AWF_CS_HEAD && !(c->flags & AWF_CF_TXN))
            proxy_conn_close(c);
    }
    if (drain_ms > 0 && px->conns) {
        uv_timer_init(px->loop, &px->drain);
        px->drain.data = px;
        px->live++;
        px->draining = true; /* ends early when the last connection goes (object_gone) */
        uv_timer_start(&px->drain, drain_cb, drain_ms, 0);
        return;
    }
    px->live++; /* hold px while closing everything */
    close_all(px);
    object_gone(px);
}

void awf_proxy_stats(const struct awf_proxy *px, struct awf_proxy_stats *out)
{
    out->accepted = px->accepted;
    out->active = px->active;
    out->tunnels = px->tunnels;
    out->buffers_in_use = px->bufs.in_use;
}
