/* What an upstream's events mean in the connection's state. upstream.c is the transport: it
 * dials, pools and reads, and reports each event here through px->up_hooks (set to
 * proxy_conn_up_hooks by proxy.c) instead of calling the parent, peek, tunnel, forward and bump
 * code itself, which tied the proxy's files into one call cycle. */

#include <errno.h>
#include <string.h>

#include "proxy/conn.h"

void proxy_conn_up_use(struct proxy_conn *c)
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
 * (parent.c, which goes on with proxy_conn_up_use); else what the upstream is for. */
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
    proxy_conn_up_use(c);
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

void proxy_conn_dial_timeout(struct proxy_conn *c)
{
    c->last_err = -ETIMEDOUT;
    proxy_upstream_release(c, false);
    if (c->next_addr < c->n_addrs) {
        proxy_conn_dial(c);
        return;
    }
    proxy_answer(c, AWF_ANS_TIMEOUT, "connection timed out");
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
