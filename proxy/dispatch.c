/* What each event means in the connection's state, on top of every other file of proxy/ but
 * proxy.c: the phase table (AWF_STATES' handlers, proxy_conn_phases, which conn.c's client reads,
 * EOF and timer reach through px->phases) with its generic handlers, and the upstream's events.
 * upstream.c is the transport: it dials, pools and reads, and reports each event here through
 * px->up_hooks (set to proxy_conn_up_hooks by proxy.c). What runs once an upstream is usable is
 * chosen here as well (up_use), at once or after the parent proxy granted a tunnel
 * (parent_answer): so the files below call only downwards, and none names the phase that
 * follows it. */

#include <errno.h>
#include <string.h>

#include "proxy/conn.h"

/* ---- the generic handlers of AWF_STATES ---- */

/* Bytes that come while the state cannot take them (resolving, connecting, a handshake) wait in
 * c->pend; reading stops until they are handled. */
static void hold(struct proxy_conn *c, struct proxy_buf *b)
{
    if (proxy_conn_append(c, &c->pend, b) < 0) {
        proxy_conn_close(c);
        return;
    }
    proxy_conn_sync_reading(c);
}

/* Bytes nobody waits for: after an answer, or from an upstream not in use yet. */
static void drop(struct proxy_conn *c, struct proxy_buf *b)
{
    proxy_bufpool_put(&c->px->bufs, b);
}

static void ignore_eof(struct proxy_conn *c, int status)
{
    (void)c;
    (void)status;
}

static void ignore_timeout(struct proxy_conn *c)
{
    (void)c;
}

/* An EOF that ends the connection: a transaction already decided is cut short. */
static void eof_abort(struct proxy_conn *c, int status)
{
    (void)status;
    if (c->tag != AWF_TAG_UNSET)
        c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

/* The upstream ended before it was used. */
static void eof_close(struct proxy_conn *c, int status)
{
    (void)status;
    proxy_conn_close(c);
}

/* Resolving or connecting: a client that half-closes after its request (nc, socat, scripts; or
 * CONNECT, bytes and FIN at once) still gets its answer: the FIN is passed on once the tunnel is
 * up, or the connection closes after the response. Whether a request body was cut short is known
 * once it is parsed (forward.c). A read error aborts. */
static void eof_wait(struct proxy_conn *c, int status)
{
    if (status == UV_EOF)
        return;
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

/* Our answer is queued: the client's FIN (after ours) or an error ends it. */
static void eof_flush(struct proxy_conn *c, int status)
{
    if (c->flags & AWF_CF_CLIENT_SHUT_DONE || status != UV_EOF)
        proxy_conn_close(c);
}

static void timeout_abort(struct proxy_conn *c)
{
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

static void timeout_close(struct proxy_conn *c)
{
    proxy_conn_close(c);
}

/* ---- the upstream's events ---- */

/* Starts what the upstream is for once it is usable: TLS to it for a bumped request (bump.c goes
 * on with forwarding), the ClientHello check, a tunnel, or forwarding. */
static void up_use(struct proxy_conn *c)
{
    if (c->bump && !(c->flags & AWF_CF_CONNECT) && !(c->up->ssl && c->up->tls_done)) {
        proxy_bump_up_start(c); /* a request inside bumped TLS: TLS to the upstream first */
        return;
    }
    if ((c->flags & (AWF_CF_CONNECT | AWF_CF_INTERCEPT | AWF_CF_PEEKED)) == AWF_CF_CONNECT &&
        c->set->tls.sni_in_connect)
        proxy_peek_start_connect(c);
    else if (c->flags & AWF_CF_CONNECT)
        proxy_tunnel_start(c);
    else
        proxy_forward_start(c);
}

/* Connected, or taken from the pool: through a parent, a tunnel first asks it for one
 * (parent.c; parent_answer goes on); else what the upstream is for. */
static void connected(struct proxy_conn *c)
{
    struct proxy_upstream *up = c->up;
    c->server = up->addr;
    c->flags |= AWF_CF_HAS_SERVER;
    if (c->flags & AWF_CF_VIA_PARENT) {
        /* Squid's hierarchy code for the first parent tried; %<a is the parent's address. */
        c->hier = AWF_HIER_PARENT;
        /* CONNECT and intercepted TLS, and a bumped request whose upstream has no TLS yet: a
         * tunnel to the origin first, then (bump.c) TLS to the origin through it. */
        if ((c->flags & AWF_CF_CONNECT) || (c->bump && !(up->ssl && up->tls_done))) {
            proxy_parent_connect(c);
            return;
        }
    } else {
        c->hier = (c->flags & AWF_CF_INTERCEPT) ? AWF_HIER_ORIGINAL_DST : AWF_HIER_DIRECT;
    }
    up_use(c);
}

/* Every address failed (err: positive errno): 503. */
static void dial_failed(struct proxy_conn *c, int err)
{
    enum proxy_ans a = AWF_ANS_CONNECT_FAIL;
    if (c->next_addr > 0 && !(c->flags & AWF_CF_VIA_PARENT) && !(c->flags & AWF_CF_INTERCEPT)) {
        /* As Squid 5.7 logs a failed dial (measured): the last address tried, HIER_DIRECT,
         * and a CONNECT that got no tunnel as NONE_NONE. */
        c->server = c->addrs[c->next_addr - 1];
        c->flags |= AWF_CF_HAS_SERVER;
        c->hier = AWF_HIER_DIRECT;
        if (c->flags & AWF_CF_CONNECT)
            a = AWF_ANS_CONNECT_NO_TUNNEL;
    }
    proxy_answer_errno(c, a, err, strerror(err));
}

/* A dial timed out (CONNECTING, PARENT_WAIT): the next address, else 504. */
static void dial_timeout(struct proxy_conn *c)
{
    c->last_err = -ETIMEDOUT;
    proxy_upstream_release(c, false);
    if (c->next_addr < c->n_addrs) {
        proxy_conn_dial(c);
        return;
    }
    proxy_answer(c, AWF_ANS_TIMEOUT, "connection timed out");
}

/* The parent's answer to our CONNECT (PARENT_WAIT): once it granted the tunnel, what the
 * upstream is for, as if connected directly; bytes after its head are the server's, speaking
 * first, and follow our own "200 Connection established" (sent by up_use) to the client. */
static void parent_answer(struct proxy_conn *c, struct proxy_buf *b)
{
    struct proxy_buf *rest = proxy_parent_input(c, b);
    if (!rest)
        return;
    up_use(c);
    if (rest->len && (c->state == AWF_CS_PEEK || proxy_conn_in_tunnel(c)))
        proxy_conn_up_input(c, rest);
    else
        proxy_bufpool_put(&c->px->bufs, rest);
}

/* What an upstream's event means: data and EOF go to the state's handlers (AWF_STATES). */
static void up_event(struct proxy_conn *c, enum proxy_up_event ev, int status, struct proxy_buf *b)
{
    switch (ev) {
    case AWF_UP_DIALLING:
        proxy_conn_set_state(c, AWF_CS_CONNECTING);
        return;
    case AWF_UP_CONNECTED:
        connected(c);
        return;
    case AWF_UP_DIAL_FAILED:
        dial_failed(c, status);
        return;
    case AWF_UP_DATA:
        proxy_conn_touch(c);
        if (c->up->ssl)
            proxy_bump_up_read(c, b); /* TLS records: bump.c hands the plain text on */
        else
            proxy_conn_up_input(c, b);
        return;
    case AWF_UP_EOF:
        proxy_conn_up_eof(c, status);
        return;
    case AWF_UP_WRITTEN:
        proxy_conn_touch(c);
        proxy_conn_sync_reading(c);
        return;
    case AWF_UP_WRITE_FAILED:
        if (proxy_conn_phase(c)->reads & AWF_RD_WFAIL)
            proxy_conn_up_eof(c, status);
        return;
    case AWF_UP_CLOSED:
        proxy_conn_handle_closed(c);
        return;
    }
}

static void up_gone(struct awf_proxy *px)
{
    px->object_gone(px);
}

const struct proxy_upstream_hooks proxy_conn_up_hooks = {
    .event = up_event,
    .gone = up_gone,
};

const struct proxy_phase proxy_conn_phases[AWF_CS_COUNT] = {
#define AWF_X(st, name, cd, ce, ud, ue, tmo, rd, dl, to)                                           \
    [AWF_CS_##st] = {cd, ce, ud, ue, tmo, rd, dl},
    AWF_STATES(AWF_X)
#undef AWF_X
};
