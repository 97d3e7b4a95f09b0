/* What an upstream's events mean in the connection's state. upstream.c is the transport: it
 * dials, pools and reads, and reports each event here through px->up_hooks (set to
 * awf_conn_up_hooks by proxy.c) instead of calling the parent, peek, tunnel, forward and bump
 * code itself, which tied the proxy's files into one call cycle. */

#include <errno.h>
#include <string.h>

#include "proxy/conn.h"

void awf_conn_dial(struct awf_conn *c)
{
    awf_upstream_dial(c, awf_conn_tls_name(c));
}

void awf_conn_up_use(struct awf_conn *c)
{
    if (c->bump && !(c->flags & AWF_CF_CONNECT) && !(c->up->ssl && c->up->tls_done)) {
        awf_bump_up_start(c); /* a request inside bumped TLS: TLS to the upstream first */
        return;
    }
    if ((c->flags & (AWF_CF_CONNECT | AWF_CF_INTERCEPT | AWF_CF_PEEKED)) == AWF_CF_CONNECT &&
        c->set->tls.sni_in_connect)
        awf_peek_start_connect(c);
    else if (c->flags & AWF_CF_CONNECT)
        awf_tunnel_start(c);
    else
        awf_forward_start(c);
}

/* Connected, or taken from the pool: through a parent, a tunnel first asks it for one
 * (parent.c, which goes on with awf_conn_up_use); else what the upstream is for. */
static void connected(struct awf_conn *c)
{
    struct awf_upstream *up = c->up;
    c->server = up->addr;
    c->flags |= AWF_CF_HAS_SERVER;
    if (c->flags & AWF_CF_VIA_PARENT) {
        /* Squid's hierarchy code for the first parent tried; %<a is the parent's address. */
        c->hier = AWF_HIER_PARENT;
        /* CONNECT and intercepted TLS, and a bumped request whose upstream has no TLS yet: a
         * tunnel to the origin first, then (bump.c) TLS to the origin through it. */
        if ((c->flags & AWF_CF_CONNECT) || (c->bump && !(up->ssl && up->tls_done))) {
            awf_parent_connect(c);
            return;
        }
    } else {
        c->hier = (c->flags & AWF_CF_INTERCEPT) ? AWF_HIER_ORIGINAL_DST : AWF_HIER_DIRECT;
    }
    awf_conn_up_use(c);
}

/* Every address failed (err: positive errno): 503. */
static void dial_failed(struct awf_conn *c, int err)
{
    enum awf_ans a = AWF_ANS_CONNECT_FAIL;
    if (c->next_addr > 0 && !(c->flags & AWF_CF_VIA_PARENT) && !(c->flags & AWF_CF_INTERCEPT)) {
        /* As Squid 5.7 logs a failed dial (measured): the last address tried, HIER_DIRECT,
         * and a CONNECT that got no tunnel as NONE_NONE. */
        c->server = c->addrs[c->next_addr - 1];
        c->flags |= AWF_CF_HAS_SERVER;
        c->hier = AWF_HIER_DIRECT;
        if (c->flags & AWF_CF_CONNECT)
            a = AWF_ANS_CONNECT_NO_TUNNEL;
    }
    awf_answer_errno(c, a, err, strerror(err));
}

void awf_conn_dial_timeout(struct awf_conn *c)
{
    c->last_err = -ETIMEDOUT;
    awf_upstream_release(c, false);
    if (c->next_addr < c->n_addrs) {
        awf_conn_dial(c);
        return;
    }
    awf_answer(c, AWF_ANS_TIMEOUT, "connection timed out");
}

/* What an upstream's event means: data and EOF go to the state's handlers (AWF_STATES). */
static void up_event(struct awf_conn *c, enum awf_up_event ev, int status, struct awf_buf *b)
{
    switch (ev) {
    case AWF_UP_DIALLING:
        awf_conn_set_state(c, AWF_CS_CONNECTING);
        return;
    case AWF_UP_CONNECTED:
        connected(c);
        return;
    case AWF_UP_DIAL_FAILED:
        dial_failed(c, status);
        return;
    case AWF_UP_DATA:
        awf_conn_touch(c);
        if (c->up->ssl)
            awf_bump_up_read(c, b); /* TLS records: bump.c hands the plain text on */
        else
            awf_conn_up_input(c, b);
        return;
    case AWF_UP_EOF:
        awf_conn_up_eof(c, status);
        return;
    case AWF_UP_WRITTEN:
        awf_conn_touch(c);
        awf_conn_sync_reading(c);
        return;
    case AWF_UP_WRITE_FAILED:
        if (awf_conn_phase(c)->reads & AWF_RD_WFAIL)
            awf_conn_up_eof(c, status);
        return;
    case AWF_UP_CLOSED:
        awf_conn_handle_closed(c);
        return;
    }
}

const struct awf_upstream_hooks awf_conn_up_hooks = {
    .event = up_event,
    .gone = awf_proxy_object_gone,
};
