/* ssl-bump: TLS terminated on both sides, HTTP/1.1 decided per request by URL in between.
 *
 * After the ClientHello check (peek.c) the policy says bump: the client's TLS is answered with a
 * leaf minted for the SNI (or the CONNECT host) by tls/ (state BUMP_CLIENT), then the connection
 * reads plain request heads as any keep-alive client (HEAD). Each request is decided by the host
 * (the TLS name; a Host header naming another host is denied) and its full https:// URL
 * (allow_urls) in request.c, resolved and dialled as plain HTTP would be, and the upstream gets
 * TLS of its own (state BUMP_UP), verified against the system store plus the extra CA file and
 * the name, before forward.c relays the request. Verified upstreams are pooled per address and TLS
 * name.
 *
 * OpenSSL never touches a socket: each SSL has two memory BIOs. Ciphertext read by libuv is
 * written into the read BIO and whatever plain text it completes is handed to the state's usual
 * handler in one buffer, exactly as a raw read would be; plain text written with proxy_conn_write
 * is encrypted and what the write BIO holds goes out through proxy_conn_write_raw. Nothing blocks.
 * conn.c reads, writes and closes through this record layer by px->tls_io (proxy_bump_tls_io, set
 * by proxy.c), so that it names nothing here: the decisions in this file sit above it.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/error.h"
#include "proxy/conn.h"
#include "tls/tls.h"

static SSL *ssl_of(struct proxy_conn *c, uv_stream_t *s)
{
    if (s == (uv_stream_t *)&c->client)
        return c->bump && c->bump->hs_done ? c->bump->ssl : NULL;
    return c->up && c->up->ssl && c->up->tls_done ? c->up->ssl : NULL;
}

/* Moves what the write BIO holds onto the socket. Returns 0 or a negative code. */
static int flush(struct proxy_conn *c, SSL *ssl, uv_stream_t *dst)
{
    BIO *w = SSL_get_wbio(ssl);
    size_t pend;
    while ((pend = BIO_ctrl_pending(w)) > 0) {
        struct proxy_buf *o = proxy_bufpool_get(&c->px->bufs, 0);
        if (!o)
            return -ENOMEM;
        int n = BIO_read(w, o->data, (int)(pend < o->cap ? pend : o->cap));
        if (n <= 0) {
            proxy_bufpool_put(&c->px->bufs, o);
            return -EIO;
        }
        o->off = 0;
        o->len = (size_t)n;
        int rc = proxy_conn_write_raw(c, dst, o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int tls_write(struct proxy_conn *c, uv_stream_t *dst, struct proxy_buf *b)
{
    SSL *ssl = ssl_of(c, dst);
    size_t done = 0;
    while (done < b->len) {
        int n = SSL_write(ssl, b->data + b->off + done, (int)(b->len - done));
        if (n <= 0) { /* memory BIOs never want more room: the session is broken */
            ERR_clear_error();
            proxy_bufpool_put(&c->px->bufs, b);
            return -EPROTO;
        }
        done += (size_t)n;
    }
    proxy_bufpool_put(&c->px->bufs, b);
    return flush(c, ssl, dst);
}

static bool speaks_tls(struct proxy_conn *c, uv_stream_t *s)
{
    return ssl_of(c, s) != NULL;
}

static void tls_close_notify(struct proxy_conn *c, uv_stream_t *s)
{
    SSL *ssl = ssl_of(c, s);
    if (!ssl || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        return;
    SSL_shutdown(ssl);
    ERR_clear_error();
    flush(c, ssl, s);
}

static SSL *new_bio_pair(SSL *ssl)
{
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!r || !w) {
        BIO_free(r);
        BIO_free(w);
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_mem_eof_return(r, -1); /* empty means "wait for more", not end of stream */
    SSL_set_bio(ssl, r, w);
    return ssl;
}

static void tls_free(struct proxy_conn *c)
{
    if (c->bump) {
        SSL_free(c->bump->ssl);
        free(c->bump);
        c->bump = NULL;
    }
}

/* Reads every plain byte the SSL can give now into one buffer (NULL: none). *eof: the peer sent
 * close_notify; *err: the session failed (a negative code). */
static struct proxy_buf *drain(struct proxy_conn *c, SSL *ssl, bool *eof, int *err)
{
    struct proxy_buf *out = NULL;
    *eof = false;
    *err = 0;
    for (;;) {
        if (out && out->off + out->len == out->cap) {
            struct proxy_buf *g = proxy_bufpool_get(&c->px->bufs, out->cap * 2);
            if (!g) {
                *err = -ENOMEM;
                return out;
            }
            memcpy(g->data, out->data + out->off, out->len);
            g->off = 0;
            g->len = out->len;
            proxy_bufpool_put(&c->px->bufs, out);
            out = g;
        }
        if (!out) {
            out = proxy_bufpool_get(&c->px->bufs, 0);
            if (!out) {
                *err = -ENOMEM;
                return NULL;
            }
            out->off = out->len = 0;
        }
        size_t room = out->cap - out->off - out->len;
        int n = SSL_read(ssl, out->data + out->off + out->len,
                         room > INT32_MAX ? INT32_MAX : (int)room);
        if (n > 0) {
            out->len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN)
            *eof = true;
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            *err = -EPROTO;
        break;
    }
    if (out && out->len == 0) {
        proxy_bufpool_put(&c->px->bufs, out);
        out = NULL;
    }
    return out;
}

/* ---- the client side ---- */

static enum awf_bump_action action(struct proxy_conn *c)
{
    if (!c->px->tls)
        return AWF_BUMP_SPLICE;
    struct awf_policy_req rq;
    proxy_conn_policy_req(c, "CONNECT", &rq);
    return awf_policy_bump_action(c->policy, &rq);
}

bool proxy_bump_wanted(struct proxy_conn *c)
{
    return action(c) != AWF_BUMP_SPLICE;
}

static void bump_start(struct proxy_conn *c);

void proxy_bump_take(struct proxy_conn *c)
{
    if (action(c) == AWF_BUMP_BUMP) {
        bump_start(c);
        return;
    }
    /* ssl_bump terminate: a fatal alert (access_denied) so the client reports a clear error,
     * whatever tls.alert_on_deny says, as Squid's terminate does; logged TCP_DENIED. */
    static const char alert[AWF_TLS_ALERT_LEN] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x31};
    c->why = "ssl_bump terminate";
    c->tag = AWF_TAG_TCP_DENIED;
    c->status = 403;
    c->hier = AWF_HIER_NONE;
    c->flags &= ~AWF_CF_HAS_SERVER;
    if (c->up)
        proxy_upstream_release(c, false);
    proxy_answer_close_alert(c, alert);
}

static void client_hs_done(struct proxy_conn *c)
{
    struct proxy_bump *bp = c->bump;
    bp->hs_done = true;
    /* The CONNECT (or the intercepted ClientHello) is one transaction of its own, logged now;
     * every request inside gets its own line. */
    if (!c->status)
        c->status = 200;
    c->tag = AWF_TAG_TCP_TUNNEL;
    c->hier = AWF_HIER_NONE;
    c->flags &= ~AWF_CF_HAS_SERVER;
    proxy_conn_log(c);
    proxy_conn_next_request(c);
}

/* One step of the client handshake; may close c. */
static void client_handshake(struct proxy_conn *c)
{
    SSL *ssl = c->bump->ssl;
    int rc = SSL_do_handshake(ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    /* The alert of a failed handshake goes out too. */
    int frc = flush(c, ssl, (uv_stream_t *)&c->client);
    if (rc == 1 && frc == 0) {
        client_hs_done(c);
        return;
    }
    if (e == SSL_ERROR_WANT_READ && frc == 0) {
        proxy_conn_sync_reading(c);
        return;
    }
    unsigned long why = ERR_peek_error();
    c->why = why ? ERR_reason_error_string(why) : "TLS handshake with the client failed";
    ERR_clear_error();
    c->flags |= AWF_CF_ABORTED;
    if (frc == 0 && c->client_writes)
        proxy_conn_flush_close(c);
    else
        proxy_conn_close(c);
}

/* Answers the client's TLS (its ClientHello in c->hello) with a leaf minted for c->host
 * (state BUMP_CLIENT); then requests are read inside (HEAD). May close c. */
static void bump_start(struct proxy_conn *c)
{
    struct proxy_bump *bp = calloc(1, sizeof(*bp)); /* owned by c, freed with it */
    if (!bp) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    c->bump = bp;
    bp->port = c->target.port;
    if (c->up) /* dialled for the tunnel before the decision: requests dial their own */
        proxy_upstream_release(c, false);
    int kind = awf_tls_name_canon(c->host, strlen(c->host), bp->name, sizeof(bp->name));
    bool minted = false;
    if (kind < 0) {
        c->why = "the TLS name cannot be put in a certificate";
        proxy_answer_close_denied(c, AWF_TAG_TCP_DENIED, true);
        return;
    }
    bp->kind = (enum awf_tls_name)kind;
    int n = snprintf(bp->authority, sizeof(bp->authority),
                     kind == AWF_TLS_NAME_IPV6 ? "[%s]" : "%s", bp->name);
    if (bp->port != 443)
        snprintf(bp->authority + n, sizeof(bp->authority) - (size_t)n, ":%u", (unsigned)bp->port);
    if (awf_tls_bump_client_ssl(c->px->tls, bp->name, bp->kind, &bp->ssl, &minted) < 0 ||
        !new_bio_pair(bp->ssl)) {
        bp->ssl = NULL;
        c->why = "could not make a certificate";
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_BUMP_CLIENT);
    if (c->hello) { /* the ClientHello peek.c held */
        BIO_write(SSL_get_rbio(bp->ssl), c->hello->data + c->hello->off, (int)c->hello->len);
        proxy_bufpool_put(&c->px->bufs, c->hello);
        c->hello = NULL;
    }
    client_handshake(c);
}

static void tls_client_read(struct proxy_conn *c, struct proxy_buf *b)
{
    struct proxy_bump *bp = c->bump;
    BIO_write(SSL_get_rbio(bp->ssl), b->data + b->off, (int)b->len);
    proxy_bufpool_put(&c->px->bufs, b);
    if (c->state == AWF_CS_BUMP_CLIENT) {
        client_handshake(c);
        if (c->state == AWF_CS_BUMP_CLIENT || c->state == AWF_CS_CLOSING ||
            c->state == AWF_CS_FLUSH)
            return;
    }
    bool eof;
    int err;
    struct proxy_buf *plain = drain(c, bp->ssl, &eof, &err);
    if (flush(c, bp->ssl, (uv_stream_t *)&c->client) < 0 && !err)
        err = -EIO;
    if (plain)
        proxy_conn_client_input(c, plain);
    if (c->state == AWF_CS_CLOSING)
        return;
    if (err < 0)
        proxy_conn_client_eof(c, UV_ECONNRESET);
    else if (eof)
        proxy_conn_client_eof(c, UV_EOF);
}

/* ---- the upstream side ---- */

static void up_failed(struct proxy_conn *c, const char *why)
{
    proxy_answer(c, AWF_ANS_TLS_FAIL, why);
}

void proxy_bump_up_eof(struct proxy_conn *c, int status)
{
    (void)status;
    proxy_answer(c, AWF_ANS_TLS_FAIL, "the upstream closed during the TLS handshake");
}

void proxy_bump_up_timeout(struct proxy_conn *c)
{
    proxy_answer(c, AWF_ANS_TIMEOUT, "TLS handshake with the upstream timed out");
}

static void up_handshake(struct proxy_conn *c)
{
    struct proxy_upstream *up = c->up;
    int rc = SSL_do_handshake(up->ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(up->ssl, rc);
    int frc = flush(c, up->ssl, (uv_stream_t *)&up->tcp);
    if (rc == 1 && frc == 0) {
        /* What dispatch.c:up_use would start for a request inside bumped TLS once its upstream
         * speaks TLS: forwarding. */
        up->tls_done = true;
        proxy_forward_start(c);
        return;
    }
    if (e == SSL_ERROR_WANT_READ && frc == 0) {
        proxy_conn_sync_reading(c);
        return;
    }
    long vr = SSL_get_verify_result(up->ssl);
    ERR_clear_error();
    /* Static strings: c->why outlives this call (the log's debug line). */
    up_failed(c, vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                                 : "TLS handshake with the upstream failed");
}

void proxy_bump_up_start(struct proxy_conn *c)
{
    struct proxy_upstream *up = c->up;
    struct proxy_bump *bp = c->bump;
    if (!up->ssl) {
        up->tls_name = strdup(bp->authority); /* owned by up: its pool key */
        if (!up->tls_name ||
            awf_tls_bump_upstream_ssl(c->px->tls, bp->name, bp->kind, &up->ssl) < 0 ||
            !new_bio_pair(up->ssl)) {
            up->ssl = NULL;
            up_failed(c, "out of memory");
            return;
        }
    }
    proxy_conn_set_state(c, AWF_CS_BUMP_UP);
    up_handshake(c);
}

void proxy_bump_up_read(struct proxy_conn *c, struct proxy_buf *b)
{
    struct proxy_upstream *up = c->up;
    BIO_write(SSL_get_rbio(up->ssl), b->data + b->off, (int)b->len);
    proxy_bufpool_put(&c->px->bufs, b);
    if (c->state == AWF_CS_BUMP_UP) {
        up_handshake(c);
        return;
    }
    bool eof;
    int err;
    struct proxy_buf *plain = drain(c, up->ssl, &eof, &err);
    if (flush(c, up->ssl, (uv_stream_t *)&up->tcp) < 0 && !err)
        err = -EIO;
    if (plain)
        proxy_conn_up_input(c, plain);
    if (c->state == AWF_CS_CLOSING || c->up != up)
        return;
    if (err < 0)
        proxy_conn_up_eof(c, UV_ECONNRESET);
    else if (eof)
        proxy_conn_up_eof(c, UV_EOF);
}

const struct proxy_tls_io proxy_bump_tls_io = {
    .client_read = tls_client_read,
    .is_tls = speaks_tls,
    .write = tls_write,
    .close_notify = tls_close_notify,
    .free = tls_free,
};
