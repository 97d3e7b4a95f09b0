/* Forwarding one HTTP request and its response. The request head is rewritten (http.c); body
 * bytes in both directions pass as they came, llhttp only finding where each message ends. */

#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "proxy/conn.h"

/* ---- response parsing: only to find message boundaries and a few facts to log ---- */

static int on_resp_field(llhttp_t *p, const char *at, size_t n)
{
    struct awf_conn *c = p->data;
    size_t room = sizeof(c->hname) - c->hname_len;
    size_t k = n < room ? n : room;
    memcpy(c->hname + c->hname_len, at, k);
    c->hname_len = (uint8_t)(c->hname_len + k);
    return 0;
}

static int on_resp_field_complete(llhttp_t *p)
{
    struct awf_conn *c = p->data;
    c->hname_ct = p->status_code >= 200 && c->hname_len == 12 &&
                  strncasecmp(c->hname, "content-type", 12) == 0;
    c->hname_len = 0;
    return 0;
}

static int on_resp_value(llhttp_t *p, const char *at, size_t n)
{
    struct awf_conn *c = p->data;
    if (c->hname_ct) {
        size_t have = strlen(c->mime), room = sizeof(c->mime) - 1 - have;
        size_t k = n < room ? n : room;
        memcpy(c->mime + have, at, k);
        c->mime[have + k] = '\0';
    }
    return 0;
}

static int on_resp_headers_complete(llhttp_t *p)
{
    struct awf_conn *c = p->data;
    int st = p->status_code;
    if (st >= 200 || st == 101) {
        c->upstream_status = st;
        c->status = st;
    }
    if ((c->flags & AWF_CF_HEAD_REQ) && st >= 200)
        return 1; /* a response to HEAD has no body whatever its headers say */
    return 0;
}

static int on_resp_message_complete(llhttp_t *p)
{
    struct awf_conn *c = p->data;
    if (p->status_code >= 200 || p->status_code == 101) {
        c->flags |= AWF_CF_MSG_END;
        return HPE_PAUSED;
    }
    return 0; /* 1xx interim (100 Continue): the final response follows */
}

static const llhttp_settings_t resp_settings = {
    .on_header_field = on_resp_field,
    .on_header_field_complete = on_resp_field_complete,
    .on_header_value = on_resp_value,
    .on_headers_complete = on_resp_headers_complete,
    .on_message_complete = on_resp_message_complete,
};

/* ---- request ---- */

static void up_failed(struct awf_conn *c, int status);

void awf_forward_start(struct awf_conn *c)
{
    struct awf_proxy *px = c->px;
    llhttp_t *p = &c->req;
    bool ws = (c->flags & AWF_CF_WEBSOCKET) != 0;
    size_t need = awf_http_rewrite_head(&c->head, c->log_method, p->http_major, p->http_minor,
                                        &c->target, ws, NULL, 0);
    struct awf_buf *b = awf_bufpool_get(&px->bufs, need);
    awf_conn_set_state(c, AWF_CS_FORWARD);
    llhttp_init(&c->resp, HTTP_RESPONSE, &resp_settings);
    c->resp.data = c;
    c->mime[0] = '\0';
    c->hname_len = 0;
    c->flags &= ~(AWF_CF_MSG_END | AWF_CF_RESP_DONE | AWF_CF_RESP_STARTED | AWF_CF_UP_EOF |
                  AWF_CF_UP_NOREUSE);
    if (!b) {
        up_failed(c, -ENOMEM);
        return;
    }
    b->len = awf_http_rewrite_head(&c->head, c->log_method, p->http_major, p->http_minor,
                                   &c->target, ws, b->data, b->cap);
    int rc = awf_conn_write(c, (uv_stream_t *)&c->up->tcp, b);
    if (rc < 0) {
        up_failed(c, rc);
        return;
    }
    if (!(c->flags & AWF_CF_REQ_BODY)) {
        c->flags |= AWF_CF_REQ_DONE;
    } else if (!(c->flags & AWF_CF_REQ_DONE)) {
        llhttp_resume(p);
        if (c->pend) {
            struct awf_buf *pb = c->pend;
            c->pend = NULL;
            awf_forward_client_input(c, pb);
            return;
        }
    }
    awf_conn_sync_reading(c);
}

void awf_forward_client_input(struct awf_conn *c, struct awf_buf *b)
{
    struct awf_proxy *px = c->px;
    if (c->flags & AWF_CF_REQ_DONE) {
        /* A pipelined request (or the first bytes of a WebSocket stream): held until the
         * response is done; reading stops meanwhile. */
        if (awf_conn_append(c, &c->pend, b) < 0) {
            awf_conn_close(c);
            return;
        }
        awf_conn_sync_reading(c);
        return;
    }
    size_t used;
    c->flags &= ~AWF_CF_MSG_END;
    llhttp_errno_t e = awf_conn_parse(c, &c->req, b->data + b->off, b->len, &used);
    if (e != HPE_OK && !(e == HPE_PAUSED && (c->flags & AWF_CF_MSG_END))) {
        awf_bufpool_put(&px->bufs, b);
        if (!(c->flags & AWF_CF_RESP_STARTED)) {
            /* Logged like a malformed head: the request as a whole was refused. */
            c->log_method = "NONE";
            c->log_url = "error:invalid-request";
            c->hier = "HIER_NONE";
            c->has_server = false;
            awf_answer(c, 400, "ERR_INVALID_REQ", 0, "NONE_NONE", "malformed request body", false);
        } else {
            c->flags |= AWF_CF_ABORTED;
            awf_conn_close(c);
        }
        return;
    }
    if (c->flags & AWF_CF_MSG_END) {
        c->flags |= AWF_CF_REQ_DONE;
        if (used < b->len) {
            /* Bytes past the body: the next request. Copied so the block being written
             * upstream has one owner. */
            struct awf_buf *rest = awf_bufpool_get(&px->bufs, b->len - used);
            if (rest) {
                memcpy(rest->data, b->data + b->off + used, b->len - used);
                rest->len = b->len - used;
                c->pend = rest;
            }
            b->len = used;
        }
    }
    c->bytes_in += b->len;
    if (b->len == 0) {
        awf_bufpool_put(&px->bufs, b);
    } else {
        int rc = awf_conn_write(c, (uv_stream_t *)&c->up->tcp, b);
        if (rc < 0) {
            up_failed(c, rc);
            return;
        }
    }
    awf_conn_sync_reading(c);
}

void awf_forward_client_eof(struct awf_conn *c, int status)
{
    /* A client that half-closes after a complete request (nc, socat, some scripts) still gets
     * its response, and the connection closes after it. A client that leaves mid-request, or
     * with an error, aborts the transaction. */
    if (status == UV_EOF && (c->flags & AWF_CF_REQ_DONE)) {
        awf_conn_sync_reading(c);
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    awf_conn_close(c);
}

/* ---- response ---- */

static void response_done(struct awf_conn *c)
{
    c->flags |= AWF_CF_RESP_DONE;
    bool ka = llhttp_should_keep_alive(&c->resp) && (c->flags & AWF_CF_REQ_DONE);
    bool up_ka = ka && !(c->flags & (AWF_CF_UP_NOREUSE | AWF_CF_UP_EOF));
    bool client_ka = ka && (c->flags & AWF_CF_KEEPALIVE) && !(c->flags & AWF_CF_CLIENT_EOF);
    awf_upstream_release(c, up_ka);
    awf_conn_log(c);
    if (client_ka)
        awf_conn_next_request(c);
    else
        awf_conn_flush_close(c);
}

static void to_client(struct awf_conn *c, struct awf_buf *b)
{
    c->flags |= AWF_CF_RESP_STARTED;
    c->bytes_out += b->len;
    if (awf_conn_write(c, (uv_stream_t *)&c->client, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
    }
}

void awf_forward_up_input(struct awf_conn *c, struct awf_buf *b)
{
    size_t used;
    c->flags &= ~AWF_CF_MSG_END;
    llhttp_errno_t e = awf_conn_parse(c, &c->resp, b->data + b->off, b->len, &used);
    if (e == HPE_OK) {
        to_client(c, b);
        if (c->state == AWF_CS_FORWARD)
            awf_conn_sync_reading(c);
        return;
    }
    if ((e == HPE_PAUSED && (c->flags & AWF_CF_MSG_END)) || e == HPE_PAUSED_UPGRADE) {
        if (c->resp.status_code == 101) {
            if (!(c->flags & AWF_CF_WEBSOCKET)) { /* an upgrade we did not forward */
                awf_bufpool_put(&c->px->bufs, b);
                c->flags |= AWF_CF_ABORTED;
                awf_conn_close(c);
                return;
            }
            /* The rest of the block is already WebSocket data from the server. */
            to_client(c, b);
            if (c->state == AWF_CS_FORWARD)
                awf_tunnel_start(c);
            return;
        }
        if (used < b->len) /* bytes after a complete response: the server is confused */
            c->flags |= AWF_CF_UP_NOREUSE;
        b->len = used;
        if (b->len)
            to_client(c, b);
        else
            awf_bufpool_put(&c->px->bufs, b);
        if (c->state == AWF_CS_FORWARD)
            response_done(c);
        return;
    }
    awf_bufpool_put(&c->px->bufs, b);
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        awf_answer(c, 502, "ERR_INVALID_RESP", 0, "TCP_MISS", "invalid response from upstream",
                   false);
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    awf_conn_close(c);
}

/* The upstream failed (status < 0) or ended (UV_EOF) before the response was complete. */
static void up_failed(struct awf_conn *c, int status)
{
    if (!(c->flags & AWF_CF_RESP_STARTED) && (c->flags & AWF_CF_REUSED) &&
        !(c->flags & AWF_CF_REQ_BODY)) {
        /* A pooled connection the server had closed meanwhile: the request can be sent
         * again on a fresh connection, nothing of it was answered. */
        awf_upstream_release(c, false);
        c->flags |= AWF_CF_NOPOOL;
        c->flags &= ~(AWF_CF_REUSED | AWF_CF_UP_EOF);
        c->next_addr = 0;
        awf_upstream_dial(c);
        return;
    }
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        awf_answer(c, 502, status == UV_EOF ? "ERR_ZERO_SIZE_OBJECT" : "ERR_READ_ERROR",
                   status == UV_EOF ? 0 : -status, "TCP_MISS",
                   "the upstream closed the connection without an answer", false);
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    awf_conn_close(c);
}

void awf_forward_up_eof(struct awf_conn *c, int status)
{
    c->flags |= AWF_CF_UP_EOF;
    if (status == UV_EOF && !(c->flags & AWF_CF_RESP_DONE)) {
        /* A body delimited by the close ends here. */
        c->flags &= ~AWF_CF_MSG_END;
        llhttp_finish(&c->resp);
        if (c->flags & AWF_CF_MSG_END) {
            response_done(c);
            return;
        }
    }
    up_failed(c, status);
}

void awf_forward_timeout(struct awf_conn *c)
{
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        awf_answer(c, 504, "ERR_READ_TIMEOUT", 0, "TCP_MISS_ABORTED", "the upstream did not answer",
                   false);
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    awf_conn_close(c);
}
