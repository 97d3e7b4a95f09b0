/* Forwarding one HTTP request and its response (state FORWARD). The request head is rewritten
 * (http.c); body bytes in both directions pass as they came, llhttp (parse.c) only finding
 * where each message ends; each response is logged when it is complete (response_done). A
 * large response body framed by Content-Length or by the close goes through the kernel relay
 * instead (splice.c, states BODY_SPLICE_WAIT / DUE / SPLICED), unseen by llhttp; splice.c calls
 * body_spliced back once it has passed. Request bodies (uploads) stay on user space. A 101 to a
 * WebSocket upgrade becomes a tunnel (tunnel.c). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "proxy/conn.h"

/* ---- response parsing: only to find message boundaries and a few facts to log ---- */

static int on_resp_field(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_resp *r = ((struct proxy_conn *)p->data)->resp;
    size_t room = sizeof(r->hname) - r->hname_len;
    size_t k = n < room ? n : room;
    memcpy(r->hname + r->hname_len, at, k);
    r->hname_len = (uint8_t)(r->hname_len + k);
    return 0;
}

static int on_resp_field_complete(llhttp_t *p)
{
    struct proxy_resp *r = ((struct proxy_conn *)p->data)->resp;
    r->hname_ct = p->status_code >= 200 && r->hname_len == 12 &&
                  strncasecmp(r->hname, "content-type", 12) == 0;
    r->hname_len = 0;
    return 0;
}

static int on_resp_value(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_resp *r = ((struct proxy_conn *)p->data)->resp;
    if (r->hname_ct) {
        size_t have = strlen(r->mime), room = sizeof(r->mime) - 1 - have;
        size_t k = n < room ? n : room;
        memcpy(r->mime + have, at, k);
        r->mime[have + k] = '\0';
    }
    return 0;
}

static int on_resp_headers_complete(llhttp_t *p)
{
    struct proxy_conn *c = p->data;
    int st = p->status_code;
    if (st >= 200 || st == 101) {
        c->upstream_status = st;
        c->status = st;
    }
    if ((c->flags & AWF_CF_HEAD_REQ) && st >= 200)
        p->flags |= F_SKIPBODY; /* a response to HEAD has no body whatever its headers say */
    c->flags |= AWF_CF_RESP_HDONE;
    return HPE_PAUSED; /* the head is rewritten before it goes on */
}

static int on_resp_message_complete(llhttp_t *p)
{
    struct proxy_conn *c = p->data;
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

static void up_failed(struct proxy_conn *c, int status, bool sent);
static bool parse_body(struct proxy_conn *c, struct proxy_buf *b);
static void send_body(struct proxy_conn *c, struct proxy_buf *b);

/* The request body is malformed (bad chunk framing, trailers over the limit). sent: its head
 * has gone upstream. */
static void bad_body(struct proxy_conn *c, bool sent)
{
    if (!sent) {
        /* Nothing reached the upstream: logged like a malformed head. */
        c->log_method = "NONE";
        c->log_url = "error:invalid-request";
        c->hier = AWF_HIER_NONE;
        c->flags &= ~AWF_CF_HAS_SERVER;
        proxy_answer(c, AWF_ANS_INVALID_REQ, "malformed request body");
        return;
    }
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        /* The upstream has the request's head (its URL, its headers): the line says so, with
         * where it went, as a transaction cut short. */
        proxy_answer(c, AWF_ANS_INVALID_BODY, "malformed request body");
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

void proxy_forward_start(struct proxy_conn *c)
{
    struct awf_proxy *px = c->px;
    llhttp_t *p = &c->req;
    bool ws = (c->flags & AWF_CF_WEBSOCKET) != 0;
    struct proxy_buf *b =
        proxy_bufpool_get(&px->bufs, proxy_http_rewrite_bound(&c->head, c->log_method, &c->target));
    proxy_conn_set_state(c, AWF_CS_FORWARD);
    int rc = proxy_conn_resp_init(c, &resp_settings);
    c->mime = rc == 0 ? c->resp->mime : NULL; /* filled while the response head is read */
    c->flags &= ~(AWF_CF_MSG_END | AWF_CF_RESP_DONE | AWF_CF_RESP_STARTED | AWF_CF_UP_EOF |
                  AWF_CF_UP_NOREUSE | AWF_CF_RESP_BODY | AWF_CF_RESP_HDONE | AWF_CF_CLOSE_AFTER);
    if (!b || rc < 0) {
        proxy_bufpool_put(&px->bufs, b);
        up_failed(c, -ENOMEM, false);
        return;
    }
    unsigned how = (ws ? AWF_HTTP_REQ_WEBSOCKET : 0) |
                   ((c->flags & AWF_CF_VIA_PARENT) && !c->bump ? AWF_HTTP_REQ_ABSOLUTE : 0) |
                   (c->bump ? AWF_HTTP_REQ_TLS : 0);
    b->len = proxy_http_rewrite_head(&c->head, c->log_method, p->http_major, p->http_minor,
                                     &c->target, how, b->data, b->cap);
    /* Body bytes that came with the head (or while dialling) are checked before the head goes
     * out: a body that is bad from its first bytes (a smuggling attempt, usually) never
     * reaches the upstream at all. */
    struct proxy_buf *body = NULL;
    if ((c->flags & AWF_CF_REQ_BODY) && !(c->flags & AWF_CF_REQ_DONE)) {
        proxy_request_body_only(c);
        llhttp_resume(p);
        body = c->pend;
        c->pend = NULL;
        if (body && !parse_body(c, body)) {
            proxy_bufpool_put(&px->bufs, b);
            proxy_bufpool_put(&px->bufs, body);
            bad_body(c, false);
            return;
        }
        if (!proxy_conn_in_forward(c)) {
            proxy_bufpool_put(&px->bufs, b);
            return;
        }
    }
    rc = proxy_conn_write(c, (uv_stream_t *)&c->up->tcp, b);
    if (rc < 0) {
        proxy_bufpool_put(&px->bufs, body);
        up_failed(c, rc, false);
        return;
    }
    if (!(c->flags & AWF_CF_REQ_BODY)) {
        c->flags |= AWF_CF_REQ_DONE;
    } else if (body) {
        send_body(c, body);
        return;
    } else if (!(c->flags & AWF_CF_REQ_DONE) && (c->flags & AWF_CF_CLIENT_EOF)) {
        proxy_forward_client_eof(c, UV_EOF); /* the FIN came before the body */
        return;
    }
    proxy_conn_sync_reading(c);
}

/* Runs the request parser over the body bytes in b; at the message's end, the bytes after it
 * (the next request) move to c->pend and b is cut to the body. Returns false when the body is
 * malformed (b is the caller's); true otherwise, also when out of memory (b freed, c closed:
 * the caller checks proxy_conn_in_forward). */
static bool parse_body(struct proxy_conn *c, struct proxy_buf *b)
{
    struct awf_proxy *px = c->px;
    size_t used;
    c->flags &= ~AWF_CF_MSG_END;
    llhttp_errno_t e = proxy_conn_parse(c, &c->req, b->data + b->off, b->len, &used);
    if (e != HPE_OK && !(e == HPE_PAUSED && (c->flags & AWF_CF_MSG_END)))
        return false;
    if (c->flags & AWF_CF_MSG_END) {
        c->flags |= AWF_CF_REQ_DONE;
        if (used < b->len) {
            /* Bytes past the body: the next request. Copied so the block being written
             * upstream has one owner. */
            struct proxy_buf *rest = proxy_bufpool_get(&px->bufs, b->len - used);
            if (!rest) { /* dropping the next request silently would desynchronise */
                proxy_bufpool_put(&px->bufs, b);
                c->flags |= AWF_CF_ABORTED;
                proxy_conn_close(c);
                return true;
            }
            memcpy(rest->data, b->data + b->off + used, b->len - used);
            rest->len = b->len - used;
            c->pend = rest;
            b->len = used;
        }
    }
    return true;
}

/* Writes parsed body bytes b upstream (takes ownership), then goes on reading the client. */
static void send_body(struct proxy_conn *c, struct proxy_buf *b)
{
    c->bytes_in += b->len;
    if (b->len == 0) {
        proxy_bufpool_put(&c->px->bufs, b);
    } else {
        int rc = proxy_conn_write(c, (uv_stream_t *)&c->up->tcp, b);
        if (rc < 0) {
            up_failed(c, rc, true);
            return;
        }
    }
    if ((c->flags & AWF_CF_CLIENT_EOF) && !(c->flags & AWF_CF_REQ_DONE)) {
        proxy_forward_client_eof(c, UV_EOF); /* half-closed before the body was complete */
        return;
    }
    proxy_conn_sync_reading(c);
}

void proxy_forward_client_input(struct proxy_conn *c, struct proxy_buf *b)
{
    struct awf_proxy *px = c->px;
    if (c->flags & AWF_CF_REQ_DONE) {
        /* A pipelined request (or the first bytes of a WebSocket stream): held until the
         * response is done; reading stops meanwhile. */
        if (proxy_conn_append(c, &c->pend, b) < 0) {
            proxy_conn_close(c);
            return;
        }
        proxy_conn_sync_reading(c);
        return;
    }
    if (!parse_body(c, b)) {
        proxy_bufpool_put(&px->bufs, b);
        bad_body(c, true);
        return;
    }
    if (proxy_conn_in_forward(c))
        send_body(c, b);
}

void proxy_forward_client_eof(struct proxy_conn *c, int status)
{
    /* A client that half-closes after a complete request (nc, socat, some scripts) still gets
     * its response, and the connection closes after it. A client that leaves mid-request, or
     * with an error, aborts the transaction. */
    if (status == UV_EOF && (c->flags & AWF_CF_REQ_DONE)) {
        proxy_conn_sync_reading(c);
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

/* ---- response ---- */

/* The final response is complete; parser_ka: what llhttp_should_keep_alive said of it. */
static void response_done(struct proxy_conn *c, bool parser_ka)
{
    c->flags |= AWF_CF_RESP_DONE;
    bool ka = parser_ka && (c->flags & AWF_CF_REQ_DONE);
    bool up_ka = ka && !(c->flags & (AWF_CF_UP_NOREUSE | AWF_CF_UP_EOF));
    /* Whether the client may go on was said in the response head (CLOSE_AFTER); a FIN or a
     * shutdown since then is handled by proxy_conn_next_request. */
    bool client_ka = ka && !(c->flags & AWF_CF_CLOSE_AFTER);
    proxy_upstream_release(c, up_ka);
    proxy_conn_log(c);
    if (client_ka)
        proxy_conn_next_request(c);
    else
        proxy_conn_flush_close(c);
}

static void to_client(struct proxy_conn *c, struct proxy_buf *b)
{
    c->flags |= AWF_CF_RESP_STARTED;
    c->bytes_out += b->len;
    if (proxy_conn_write(c, (uv_stream_t *)&c->client, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
    }
}

static void bad_response(struct proxy_conn *c)
{
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        proxy_answer(c, AWF_ANS_INVALID_RESP, "invalid response from upstream");
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

/* Whether the client connection closes after this final response: said in its head. */
static bool closes_after(const struct proxy_conn *c)
{
    bool eof_only = (c->flags & AWF_CF_CLIENT_EOF) && !c->pend; /* nothing more to answer */
    return !llhttp_should_keep_alive(&c->resp->parser) || !(c->flags & AWF_CF_KEEPALIVE) ||
           eof_only || c->px->shutting_down;
}

/* The complete response head h[off, off + n) rewritten (SPEC §5: no hop-by-hop fields, the
 * proxy's own Connection), followed by the rest bytes after it in h (body bytes: a small
 * response stays one write). *prefix is the rewritten head's length. Returns NULL when out of
 * memory (c is closed then); h is left to the caller. */
static struct proxy_buf *rewrite_head(struct proxy_conn *c, const struct proxy_buf *h, size_t n,
                                      size_t rest, size_t *prefix)
{
    unsigned flags = 0;
    if (c->resp->parser.status_code >= 200) {
        if (closes_after(c)) {
            c->flags |= AWF_CF_CLOSE_AFTER;
            flags = AWF_HTTP_RESP_CLOSE;
        } else if (c->req.http_major == 1 && c->req.http_minor == 0) {
            flags = AWF_HTTP_RESP_KEEP_ALIVE; /* HTTP/1.0 closes unless told otherwise */
        }
    }
    /* The rewrite needs at most n + 32 bytes (proxy_http_rewrite_response). */
    struct proxy_buf *o = proxy_bufpool_get(&c->px->bufs, n + 64 + rest);
    if (!o) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return NULL;
    }
    o->len = proxy_http_rewrite_response(h->data + h->off, n, flags, o->data, o->cap);
    memcpy(o->data + o->len, h->data + h->off + n, rest);
    *prefix = o->len;
    o->len += rest;
    return o;
}

/* Response head bytes: collected in c->rhead until the head is complete, then rewritten.
 * Returns the bytes to go on with: after a final head, the rewritten head and the body bytes
 * that came with it (*prefix: the head's length, not to be parsed again); after a 1xx (sent at
 * once), the bytes after it. NULL when more are needed or c changed state. */
static struct proxy_buf *head_input(struct proxy_conn *c, struct proxy_buf *b, size_t *prefix)
{
    size_t old = c->rhead ? c->rhead->len : 0, used;
    *prefix = 0;
    if (proxy_conn_append(c, &c->rhead, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return NULL;
    }
    struct proxy_buf *h = c->rhead, *o;
    c->flags &= ~AWF_CF_RESP_HDONE;
    llhttp_errno_t e =
        proxy_conn_parse(c, &c->resp->parser, h->data + h->off + old, h->len - old, &used);
    if (e == HPE_OK) {
        if (h->len > c->set->limits.header_bytes)
            bad_response(c);
        return NULL;
    }
    size_t hlen = old + used;
    if (e != HPE_PAUSED || !(c->flags & AWF_CF_RESP_HDONE) ||
        proxy_http_bare_cr(h->data + h->off, hlen, 0, true)) {
        bad_response(c);
        return NULL;
    }
    c->rhead = NULL;
    llhttp_resume(&c->resp->parser);
    if (c->resp->parser.status_code == 101) {
        if (!(c->flags & AWF_CF_WEBSOCKET)) { /* an upgrade we did not forward */
            proxy_bufpool_put(&c->px->bufs, h);
            c->flags |= AWF_CF_ABORTED;
            proxy_conn_close(c);
            return NULL;
        }
        /* Upgrade and Connection must reach the client; what follows the head is already
         * WebSocket data from the server. */
        to_client(c, h);
        if (proxy_conn_in_forward(c))
            proxy_tunnel_start(c);
        return NULL;
    }
    if (c->resp->parser.status_code >= 200) {
        o = rewrite_head(c, h, hlen, h->len - hlen, prefix);
        proxy_bufpool_put(&c->px->bufs, h);
        if (o)
            c->flags |= AWF_CF_RESP_BODY;
        return o;
    }
    /* 1xx interim (100 Continue): sent now; what follows is the next head. */
    size_t head_len;
    o = rewrite_head(c, h, hlen, 0, &head_len);
    if (o)
        to_client(c, o);
    if (!proxy_conn_in_forward(c)) {
        proxy_bufpool_put(&c->px->bufs, h);
        return NULL;
    }
    h->off += hlen;
    h->len -= hlen;
    return h;
}

/* ---- the kernel relay for large bodies ---- */

/* How many body bytes are still to come from the upstream when the rest of this response may
 * go through the kernel relay (AWF_SPLICE_TO_EOF: up to its FIN), pending: bytes parsed but
 * not yet counted in bytes_out; 0 when it stays on user space: chunked (llhttp must see the
 * framing), no body (HEAD, 1xx, 204, 304), a request still being sent (its body crosses on
 * libuv), or too little left to pay for the switch; and 0 while the hand-over waits
 * (BODY_SPLICE_WAIT: BODY_SPLICE_DUE tries again). */
static uint64_t splice_left(const struct proxy_conn *c, size_t pending)
{
    const llhttp_t *p = &c->resp->parser;
    const uint64_t need = AWF_CF_RESP_BODY | AWF_CF_REQ_DONE;
    if (c->px->no_splice || c->bump ||
        (c->state != AWF_CS_FORWARD && c->state != AWF_CS_BODY_SPLICE_DUE) ||
        (c->flags & need) != need || (c->flags & (AWF_CF_RESP_DONE | AWF_CF_HEAD_REQ)))
        return 0;
    if (p->status_code < 200 || p->status_code == 204 || p->status_code == 304 ||
        (p->flags & (F_SKIPBODY | F_CHUNKED)))
        return 0;
    if (llhttp_message_needs_eof(p)) /* no length: like a tunnel, once bulk is flowing */
        return c->bytes_out + pending >= AWF_SPLICE_AFTER ? AWF_SPLICE_TO_EOF : 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length >= AWF_SPLICE_AFTER)
        return p->content_length; /* what llhttp has not consumed yet */
    return 0;
}

/* The body the kernel relayed has ended (splice.c calls back): fin, the upstream closed (the
 * end of a body delimited by the close, or a short one); else exactly its Content-Length bytes
 * passed. The message ends as if llhttp had parsed them. May close c. */
static void body_spliced(struct proxy_conn *c, bool fin)
{
    if (fin) {
        /* The upstream closed: llhttp ends a body delimited by the close, and finds a body
         * with a Content-Length short, as if it had read every byte. */
        proxy_forward_up_eof(c, UV_EOF);
        return;
    }
    /* Exactly the Content-Length bytes passed: the message is complete. The parser did not
     * see them and still waits for them: it starts over, its verdict on the connection taken
     * first (it holds only while the message's flags are kept). */
    bool ka = llhttp_should_keep_alive(&c->resp->parser);
    llhttp_reset(&c->resp->parser);
    response_done(c, ka);
}

/* Moves the rest of the body to the kernel relay with b (parsed, NULL: none) written first.
 * Returns 0 (b taken; c may be closed) or a negative code (b is still the caller's, the state
 * unchanged): -EAGAIN while writes are in flight. */
static int try_splice(struct proxy_conn *c, struct proxy_buf *b)
{
    size_t n = b ? b->len : 0;
    uint64_t left = splice_left(c, n);
    if (!left)
        return -ENOTSUP;
    /* Counted first: the body may end, and be logged, before proxy_splice_body returns. */
    c->flags |= AWF_CF_RESP_STARTED;
    c->bytes_out += n;
    int rc = proxy_splice_body(c, b, left, body_spliced);
    if (rc < 0)
        c->bytes_out -= n;
    return rc;
}

void proxy_forward_splice_due(struct proxy_conn *c)
{
    int rc = try_splice(c, NULL);
    if (rc == 0)
        return;
    proxy_conn_set_state(c, rc == -EAGAIN ? AWF_CS_BODY_SPLICE_WAIT : AWF_CS_FORWARD);
    proxy_conn_sync_reading(c);
}

/* Body bytes pass as they came; the parser only finds where the response ends. The first
 * prefix bytes of b are the rewritten head, sent along but not parsed. */
static void body_input(struct proxy_conn *c, struct proxy_buf *b, size_t prefix)
{
    size_t used;
    c->flags &= ~AWF_CF_MSG_END;
    llhttp_errno_t e =
        proxy_conn_parse(c, &c->resp->parser, b->data + b->off + prefix, b->len - prefix, &used);
    if (e == HPE_OK) {
        int rc;
        if (!b->len) {
            proxy_bufpool_put(&c->px->bufs, b);
        } else if ((rc = try_splice(c, b)) < 0) {
            /* Writes in flight: the switch waits for them (proxy_conn_sync_reading). */
            if (rc == -EAGAIN)
                proxy_conn_set_state(c, AWF_CS_BODY_SPLICE_WAIT);
            to_client(c, b);
        }
        return;
    }
    if (e == HPE_PAUSED && (c->flags & AWF_CF_MSG_END)) {
        if (prefix + used < b->len) /* bytes after a complete response: the server is confused */
            c->flags |= AWF_CF_UP_NOREUSE;
        b->len = prefix + used;
        if (b->len)
            to_client(c, b);
        else
            proxy_bufpool_put(&c->px->bufs, b);
        if (proxy_conn_in_forward(c))
            response_done(c, llhttp_should_keep_alive(&c->resp->parser));
        return;
    }
    proxy_bufpool_put(&c->px->bufs, b);
    bad_response(c);
}

void proxy_forward_up_input(struct proxy_conn *c, struct proxy_buf *b)
{
    size_t prefix = 0;
    while (b && !(c->flags & AWF_CF_RESP_BODY)) {
        b = head_input(c, b, &prefix);
        if (!proxy_conn_in_forward(c)) {
            proxy_bufpool_put(&c->px->bufs, b);
            return;
        }
    }
    if (b)
        body_input(c, b, prefix);
    if (proxy_conn_in_forward(c))
        proxy_conn_sync_reading(c);
}

/* Only requests that change nothing are sent twice (RFC 9110 9.2.2 allows PUT and DELETE too;
 * being conservative costs a 502 at worst, never a second side effect). */
static bool retry_safe(const struct proxy_conn *c)
{
    unsigned m = c->req.method;
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS;
}

/* The upstream failed (status < 0) or ended (UV_EOF) before the response was complete. sent:
 * the request head had gone upstream; the transaction is then logged _ABORTED (as a read
 * timeout is, SPEC §5), since the upstream may have acted on it. */
static void up_failed(struct proxy_conn *c, int status, bool sent)
{
    if (!(c->flags & AWF_CF_RESP_STARTED) && !c->rhead && (c->flags & AWF_CF_REUSED) &&
        !(c->flags & AWF_CF_REQ_BODY) && retry_safe(c)) {
        /* A pooled connection the server had closed meanwhile: the request can be sent
         * again on a fresh connection, not one byte of it was answered. */
        proxy_upstream_release(c, false);
        c->flags |= AWF_CF_NOPOOL;
        c->flags &= ~(AWF_CF_REUSED | AWF_CF_UP_EOF);
        c->next_addr = 0;
        proxy_conn_dial(c);
        return;
    }
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        /* Before the head went upstream only a failed write can get here (never UV_EOF). */
        enum proxy_ans a = !sent              ? AWF_ANS_UP_WRITE_FAIL
                           : status == UV_EOF ? AWF_ANS_UP_CLOSED
                                              : AWF_ANS_UP_RESET;
        proxy_answer_errno(c, a, -status, "the upstream closed the connection without an answer");
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}

void proxy_forward_up_eof(struct proxy_conn *c, int status)
{
    c->flags |= AWF_CF_UP_EOF;
    if (status == UV_EOF && !(c->flags & AWF_CF_RESP_DONE)) {
        /* A body delimited by the close ends here. */
        c->flags &= ~AWF_CF_MSG_END;
        llhttp_finish(&c->resp->parser);
        if (c->flags & AWF_CF_MSG_END) {
            response_done(c, llhttp_should_keep_alive(&c->resp->parser));
            return;
        }
    }
    up_failed(c, status, true);
}

void proxy_forward_timeout(struct proxy_conn *c)
{
    if (!(c->flags & AWF_CF_RESP_STARTED)) {
        proxy_answer(c, AWF_ANS_TIMEOUT, "the upstream did not answer");
        return;
    }
    c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}
