/* Tunnels: bytes both ways between the client and the upstream (CONNECT, intercepted TLS,
 * WebSocket after 101). A block read from one side is written to the other and returned to the
 * pool when written; a side is not read while the other's write queue is over the watermark. A
 * FIN from one side is passed on as a shutdown of the other; the tunnel closes when both
 * directions are done. Once AWF_SPLICE_AFTER bytes have crossed, the kernel relay takes over
 * (splice.c; states TUNNEL_SPLICE_WAIT / DUE / SPLICED). */

#include <errno.h>
#include <stdlib.h>

#include "proxy/conn.h"

static void tunnel_input(struct proxy_conn *c, bool from_client, struct proxy_buf *b);
static void tunnel_eof(struct proxy_conn *c, bool from_client, int status);

/* Frees what a tunnel no longer needs: the response parser (its bytes are not parsed) and the
 * addresses to dial (nothing is dialled again). */
static void trim(struct proxy_conn *c)
{
    /* c->mime may point into resp: of the responses forward.c reads, only a 101 leads to a
     * tunnel, and a 101's Content-Type is never collected, so nothing logged is lost. */
    c->mime = NULL;
    free(c->resp);
    c->resp = NULL;
    free(c->addrs);
    c->addrs = NULL;
    c->n_addrs = c->next_addr = c->cap_addrs = 0;
}

void proxy_tunnel_start(struct proxy_conn *c)
{
    /* Every path reserves at its decision; this only counts one that did not (no limit). */
    if (!(c->flags & AWF_CF_TUNNEL_CNT) && !proxy_conn_tunnel_reserve(c)) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    if ((c->flags & AWF_CF_CONNECT) && !(c->flags & AWF_CF_INTERCEPT) &&
        proxy_conn_send_established(c) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    if (!c->status) /* intercepted TLS: logged as a spliced tunnel, as Squid does */
        c->status = 200;
    trim(c);
    proxy_conn_set_state(c, AWF_CS_TUNNEL);
    if (c->pend) {
        /* Bytes the client sent right after its request (a ClientHello, WebSocket frames). */
        struct proxy_buf *b = c->pend;
        c->pend = NULL;
        tunnel_input(c, true, b);
        if (!proxy_conn_in_tunnel(c))
            return;
    }
    if (c->flags & AWF_CF_CLIENT_EOF) { /* the client's FIN came with its first bytes */
        c->flags &= ~AWF_CF_CLIENT_EOF;
        tunnel_eof(c, true, UV_EOF);
        return;
    }
    proxy_conn_sync_reading(c);
}

static void tunnel_input(struct proxy_conn *c, bool from_client, struct proxy_buf *b)
{
    uv_stream_t *dst;
    if (from_client) {
        c->bytes_in += b->len;
        dst = (uv_stream_t *)&c->up->tcp;
    } else {
        c->bytes_out += b->len;
        dst = (uv_stream_t *)&c->client;
    }
    /* Bulk is flowing: the kernel relays from here (splice.c), taking b. Not while the
     * hand-over already waits (TUNNEL_SPLICE_WAIT), nor after a refusal (c->splice kept). */
    if (!c->splice && c->bytes_in + c->bytes_out >= AWF_SPLICE_AFTER && c->state == AWF_CS_TUNNEL &&
        !c->px->no_splice && !c->bump) {
        int rc = proxy_splice_start(c, from_client, b);
        if (rc == 0)
            return;
        /* Writes in flight: the switch waits for them (proxy_conn_sync_reading). */
        if (rc == -EAGAIN)
            proxy_conn_set_state(c, AWF_CS_TUNNEL_SPLICE_WAIT);
    }
    if (proxy_conn_write(c, dst, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_sync_reading(c);
}

static void tunnel_eof(struct proxy_conn *c, bool from_client, int status)
{
    if (status != UV_EOF) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    uv_stream_t *dst;
    uint64_t sent;
    if (from_client) {
        c->flags |= AWF_CF_CLIENT_EOF;
        dst = (uv_stream_t *)&c->up->tcp;
        sent = AWF_CF_UP_SHUT;
    } else {
        c->flags |= AWF_CF_UP_EOF;
        dst = (uv_stream_t *)&c->client;
        sent = AWF_CF_CLIENT_SHUT;
    }
    const uint64_t both = AWF_CF_CLIENT_EOF | AWF_CF_UP_EOF;
    if ((c->flags & both) == both && !c->client_writes && !c->up->writes) {
        /* Both sides have sent FIN and every byte is out of libuv: closing sends our FIN on
         * both sockets, so a shutdown here would only cost a syscall and a loop turn. Nothing
         * unread is left either side (each was read to its FIN), so close() does not reset. */
        proxy_conn_close(c);
        return;
    }
    if (!(c->flags & sent)) {
        /* The shutdown goes out after the writes already queued on dst. */
        c->flags |= sent;
        if (proxy_conn_shutdown(c, dst) < 0) {
            proxy_conn_close(c);
            return;
        }
    }
    proxy_conn_sync_reading(c);
}

void proxy_tunnel_client_input(struct proxy_conn *c, struct proxy_buf *b)
{
    tunnel_input(c, true, b);
}

void proxy_tunnel_up_input(struct proxy_conn *c, struct proxy_buf *b)
{
    tunnel_input(c, false, b);
}

void proxy_tunnel_client_eof(struct proxy_conn *c, int status)
{
    tunnel_eof(c, true, status);
}

void proxy_tunnel_up_eof(struct proxy_conn *c, int status)
{
    tunnel_eof(c, false, status);
}

void proxy_tunnel_splice_due(struct proxy_conn *c)
{
    int rc = proxy_splice_start(c, false, NULL);
    if (rc == 0)
        return;
    proxy_conn_set_state(c, rc == -EAGAIN ? AWF_CS_TUNNEL_SPLICE_WAIT : AWF_CS_TUNNEL);
    proxy_conn_sync_reading(c);
}
