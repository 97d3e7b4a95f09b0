/* The parent proxy (settings.parent: squid.conf `cache_peer HOST parent PORT ...`, YAML
 * `parent`). After an allow, awf_policy_via_parent() says whether a transaction goes through it
 * (resolve.c:choose_parent). Then only the parent is resolved and dialled (without the
 * private-address check: it is configuration, e.g. AWF's api-proxy sidecar on a private
 * address), and:
 *
 * - plain HTTP is sent in absolute form (forward.c, AWF_HTTP_REQ_ABSOLUTE), on connections
 *   pooled apart from direct ones;
 * - a tunnel (CONNECT, intercepted TLS, a bumped request's TLS) first asks the parent for one
 *   with `CONNECT host:port HTTP/1.1` (state PARENT_WAIT); only after its 2xx does the tunnel go
 *   on as a direct one would (dispatch.c:parent_answer; the ClientHello check included), so
 *   nothing of the client's leaves before both the parent and the check agreed. Anything else
 *   from the parent is a 502 to the client, the parent's status logged as %<Hs.
 *
 * Logged with hierarchy FIRSTUP_PARENT and %<a the parent's address, as Squid does. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"

static int on_answer_head(llhttp_t *p)
{
    struct proxy_conn *c = p->data;
    c->flags |= AWF_CF_RESP_HDONE;
    return HPE_PAUSED; /* what follows the head is the tunnel's */
}

static const llhttp_settings_t answer_settings = {
    .on_headers_complete = on_answer_head,
};

/* The parent did not give us a tunnel: the client gets 502 (Squid's ERR_CONNECT_FAIL for a
 * peer's refusal); an intercepted TLS client is closed (proxy_answer knows). */
static void refused(struct proxy_conn *c, int err, const char *why)
{
    proxy_answer_errno(c, AWF_ANS_PARENT_FAIL, err, why);
}

void proxy_parent_connect(struct proxy_conn *c)
{
    /* c->host is at most AWF_HOST_MAX + 1 bytes: two copies with brackets and a port fit. */
    char hp[300], req[700];
    bool v6 = strchr(c->host, ':') != NULL;
    snprintf(hp, sizeof(hp), v6 ? "[%s]:%u" : "%s:%u", c->host, (unsigned)c->target.port);
    int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hp, hp);
    struct proxy_buf *b = proxy_bufpool_get(&c->px->bufs, (size_t)n);
    if (!b) {
        refused(c, ENOMEM, "out of memory");
        return;
    }
    memcpy(b->data, req, (size_t)n);
    b->len = (size_t)n;
    if (proxy_conn_resp_init(c, &answer_settings) < 0) {
        proxy_bufpool_put(&c->px->bufs, b);
        refused(c, ENOMEM, "out of memory");
        return;
    }
    int rc = proxy_conn_write(c, (uv_stream_t *)&c->up->tcp, b);
    if (rc < 0) {
        refused(c, -rc, "cannot write to the parent proxy");
        return;
    }
    /* timeouts.connect covers the dial and the parent's answer together: the deadline still
     * runs from the dial. */
    uint64_t since = c->state_since;
    proxy_conn_set_state(c, AWF_CS_PARENT_WAIT);
    c->state_since = since;
    proxy_conn_sync_reading(c);
}

struct proxy_buf *proxy_parent_input(struct proxy_conn *c, struct proxy_buf *b)
{
    size_t old = c->rhead ? c->rhead->len : 0, used;
    if (proxy_conn_append(c, &c->rhead, b) < 0) {
        refused(c, ENOMEM, "out of memory");
        return NULL;
    }
    struct proxy_buf *h = c->rhead;
    c->flags &= ~AWF_CF_RESP_HDONE;
    llhttp_errno_t e =
        proxy_conn_parse(c, &c->resp->parser, h->data + h->off + old, h->len - old, &used);
    if (e == HPE_OK) {
        if (h->len > c->set->limits.header_bytes)
            refused(c, 0, "the parent proxy's answer is too large");
        else
            proxy_conn_sync_reading(c);
        return NULL;
    }
    if (e != HPE_PAUSED || !(c->flags & AWF_CF_RESP_HDONE)) {
        refused(c, 0, "invalid answer from the parent proxy");
        return NULL;
    }
    int st = c->resp->parser.status_code;
    c->upstream_status = st;
    if (st < 200 || st > 299) {
        refused(c, 0, "the parent proxy refused the tunnel");
        return NULL;
    }
    c->rhead = NULL;
    h->off += old + used;
    h->len -= old + used;
    return h;
}

void proxy_parent_eof(struct proxy_conn *c, int status)
{
    refused(c, status == UV_EOF ? 0 : -status,
            "the parent proxy closed the connection without an answer");
}
