/* Tunnels: bytes both ways between the client and the upstream (CONNECT, WebSocket after 101).
 * A block read from one side is written to the other and returned to the pool when written;
 * a side is not read while the other's write queue is over the watermark. A FIN from one side
 * is passed on as a shutdown of the other; the tunnel closes when both directions are done. */

#include "proxy/conn.h"

void awf_tunnel_start(struct awf_conn *c)
{
    /* Every path reserves at its decision; this only counts one that did not (no limit). */
    if (!(c->flags & AWF_CF_TUNNEL_CNT) && !awf_conn_tunnel_reserve(c)) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    if ((c->flags & AWF_CF_CONNECT) && !(c->flags & AWF_CF_INTERCEPT) &&
        awf_conn_send_established(c) < 0) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    if (!c->status) /* intercepted TLS: logged as a spliced tunnel, as Squid does */
        c->status = 200;
    awf_conn_set_state(c, AWF_CS_TUNNEL);
    if (c->pend) {
        /* Bytes the client sent right after its request (a ClientHello, WebSocket frames). */
        struct awf_buf *b = c->pend;
        c->pend = NULL;
        awf_tunnel_input(c, true, b);
        if (c->state != AWF_CS_TUNNEL)
            return;
    }
    if (c->flags & AWF_CF_CLIENT_EOF) { /* the client's FIN came with its first bytes */
        c->flags &= ~AWF_CF_CLIENT_EOF;
        awf_tunnel_eof(c, true, UV_EOF);
        return;
    }
    awf_conn_sync_reading(c);
}

void awf_tunnel_input(struct awf_conn *c, bool from_client, struct awf_buf *b)
{
    uv_stream_t *dst;
    if (from_client) {
        c->bytes_in += b->len;
        dst = (uv_stream_t *)&c->up->tcp;
    } else {
        c->bytes_out += b->len;
        dst = (uv_stream_t *)&c->client;
    }
    if (awf_conn_write(c, dst, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    awf_conn_sync_reading(c);
}

void awf_tunnel_eof(struct awf_conn *c, bool from_client, int status)
{
    if (status != UV_EOF) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    uv_stream_t *dst;
    uv_shutdown_t *req;
    uint32_t sent;
    if (from_client) {
        c->flags |= AWF_CF_CLIENT_EOF;
        dst = (uv_stream_t *)&c->up->tcp;
        req = &c->up_shut;
        sent = AWF_CF_UP_SHUT;
    } else {
        c->flags |= AWF_CF_UP_EOF;
        dst = (uv_stream_t *)&c->client;
        req = &c->client_shut;
        sent = AWF_CF_CLIENT_SHUT;
    }
    if (!(c->flags & sent)) {
        /* The shutdown goes out after the writes already queued on dst. */
        c->flags |= sent;
        if (uv_shutdown(req, dst, awf_conn_shutdown_cb) < 0) {
            awf_conn_close(c);
            return;
        }
    }
    awf_conn_sync_reading(c);
}
