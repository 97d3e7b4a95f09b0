/* ssl-bump: TLS terminated on both sides, HTTP/1.1 decided per request by URL in between.
 *
 * After the ClientHello check (peek.c) the policy says bump: the client's TLS is answered with a
 * leaf minted for the SNI (or the CONNECT host) by tls/ (state BUMP_CLIENT), then the connection
 * reads plain request heads as any keep-alive client (HEAD). Each request is decided here by the
 * host (the TLS name; a Host header naming another host is denied) and its full https:// URL
 * (allow_urls), resolved and dialled as plain HTTP would be, and the upstream gets TLS of its own
 * (state BUMP_UP), verified against the system store plus the extra CA file and the name, before
 * forward.c relays the request. Verified upstreams are pooled per address and TLS name.
 *
 * OpenSSL never touches a socket: each SSL has two memory BIOs. Ciphertext read by libuv is
 * written into the read BIO and whatever plain text it completes is handed to the state's usual
 * handler in one buffer, exactly as a raw read would be; plain text written with awf_conn_write
 * is encrypted and what the write BIO holds goes out through awf_conn_write_raw. Nothing blocks. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/error.h"
#include "proxy/conn.h"
#include "tls/tls.h"

struct awf_bump {
    SSL *ssl; /* towards the client; owned */
    enum awf_tls_name kind;
    uint16_t port;
    bool hs_done, notified;
    char name[AWF_HOST_MAX + 1];
    char authority[AWF_HOST_MAX + 10]; /* the Host the upstream gets */
    char url[8192];                    /* the current request's URL, for the log */
};

static SSL *ssl_of(struct awf_conn *c, uv_stream_t *s)
{
    if (s == (uv_stream_t *)&c->client)
        return c->bump && c->bump->hs_done ? c->bump->ssl : NULL;
    return c->up && c->up->ssl && c->up->tls_done ? c->up->ssl : NULL;
}

/* Moves what the write BIO holds onto the socket. Returns 0 or a negative code. */
static int flush(struct awf_conn *c, SSL *ssl, uv_stream_t *dst)
{
    BIO *w = SSL_get_wbio(ssl);
    size_t pend;
    while ((pend = BIO_ctrl_pending(w)) > 0) {
        struct awf_buf *o = awf_bufpool_get(&c->px->bufs, 0);
        if (!o)
            return -ENOMEM;
        int n = BIO_read(w, o->data, (int)(pend < o->cap ? pend : o->cap));
        if (n <= 0) {
            awf_bufpool_put(&c->px->bufs, o);
            return -EIO;
        }
        o->off = 0;
        o->len = (size_t)n;
        int rc = awf_conn_write_raw(c, dst, o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int awf_bump_write(struct awf_conn *c, uv_stream_t *dst, struct awf_buf *b)
{
    SSL *ssl = ssl_of(c, dst);
    size_t done = 0;
    while (done < b->len) {
        int n = SSL_write(ssl, b->data + b->off + done, (int)(b->len - done));
        if (n <= 0) { /* memory BIOs never want more room: the session is broken */
            ERR_clear_error();
            awf_bufpool_put(&c->px->bufs, b);
            return -EPROTO;
        }
        done += (size_t)n;
    }
    awf_bufpool_put(&c->px->bufs, b);
    return flush(c, ssl, dst);
}

bool awf_bump_is_tls(struct awf_conn *c, uv_stream_t *s)
{
    return ssl_of(c, s) != NULL;
}

void awf_bump_close_notify(struct awf_conn *c, uv_stream_t *s)
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

const char *awf_conn_tls_name(const struct awf_conn *c)
{
    /* name[:port]: through a parent the pooled connection's address is the parent's, so the
     * origin's port must be part of the key too. */
    return c->bump && !(c->flags & AWF_CF_CONNECT) ? c->bump->authority : NULL;
}

void awf_bump_free(struct awf_conn *c)
{
    if (c->bump) {
        SSL_free(c->bump->ssl);
        free(c->bump);
        c->bump = NULL;
    }
}

/* Reads every plain byte the SSL can give now into one buffer (NULL: none). *eof: the peer sent
 * close_notify; *err: the session failed (a negative code). */
static struct awf_buf *drain(struct awf_conn *c, SSL *ssl, bool *eof, int *err)
{
    struct awf_buf *out = NULL;
    *eof = false;
    *err = 0;
    for (;;) {
        if (out && out->off + out->len == out->cap) {
            struct awf_buf *g = awf_bufpool_get(&c->px->bufs, out->cap * 2);
            if (!g) {
                *err = -ENOMEM;
                return out;
            }
            memcpy(g->data, out->data + out->off, out->len);
            g->off = 0;
            g->len = out->len;
            awf_bufpool_put(&c->px->bufs, out);
            out = g;
        }
        if (!out) {
            out = awf_bufpool_get(&c->px->bufs, 0);
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
        awf_bufpool_put(&c->px->bufs, out);
        out = NULL;
    }
    return out;
}

/* ---- the client side ---- */

static enum awf_bump_action action(struct awf_conn *c)
{
    if (!c->px->tls)
        return AWF_BUMP_SPLICE;
    struct awf_policy_req rq;
    awf_conn_policy_req(c, "CONNECT", &rq);
    return awf_policy_bump_action(c->policy, &rq);
}

bool awf_bump_wanted(struct awf_conn *c)
{
    return action(c) != AWF_BUMP_SPLICE;
}

void awf_bump_take(struct awf_conn *c)
{
    if (action(c) == AWF_BUMP_BUMP) {
        awf_bump_start(c);
        return;
    }
    /* ssl_bump terminate: a fatal alert (access_denied) so the client reports a clear error,
     * whatever tls.alert_on_deny says, as Squid's terminate does; logged TCP_DENIED. */
    static const char alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x31};
    c->why = "ssl_bump terminate";
    c->tag = AWF_TAG_TCP_DENIED;
    c->status = 403;
    c->hier = AWF_HIER_NONE;
    c->flags &= ~AWF_CF_HAS_SERVER;
    if (c->up)
        awf_upstream_release(c, false);
    struct awf_buf *b = awf_bufpool_get(&c->px->bufs, sizeof(alert));
    if (b) {
        memcpy(b->data, alert, sizeof(alert));
        b->off = 0;
        b->len = sizeof(alert);
        c->bytes_out += b->len;
        if (awf_conn_write_raw(c, (uv_stream_t *)&c->client, b) == 0) {
            awf_conn_log(c);
            awf_conn_flush_close(c);
            return;
        }
    }
    awf_conn_close(c);
}

static void client_hs_done(struct awf_conn *c)
{
    struct awf_bump *bp = c->bump;
    bp->hs_done = true;
    /* The CONNECT (or the intercepted ClientHello) is one transaction of its own, logged now;
     * every request inside gets its own line. */
    if (!c->status)
        c->status = 200;
    c->tag = AWF_TAG_TCP_TUNNEL;
    c->hier = AWF_HIER_NONE;
    c->flags &= ~AWF_CF_HAS_SERVER;
    awf_conn_log(c);
    awf_conn_next_request(c);
}

/* One step of the client handshake; may close c. */
static void client_handshake(struct awf_conn *c)
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
        awf_conn_sync_reading(c);
        return;
    }
    unsigned long why = ERR_peek_error();
    c->why = why ? ERR_reason_error_string(why) : "TLS handshake with the client failed";
    ERR_clear_error();
    c->flags |= AWF_CF_ABORTED;
    if (frc == 0 && c->client_writes)
        awf_conn_flush_close(c);
    else
        awf_conn_close(c);
}

void awf_bump_start(struct awf_conn *c)
{
    struct awf_bump *bp = calloc(1, sizeof(*bp)); /* owned by c, freed with it */
    if (!bp) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    c->bump = bp;
    bp->port = c->target.port;
    if (c->up) /* dialled for the tunnel before the decision: requests dial their own */
        awf_upstream_release(c, false);
    int kind = awf_tls_name_canon(c->host, strlen(c->host), bp->name, sizeof(bp->name));
    bool minted = false;
    if (kind < 0) {
        c->why = "the TLS name cannot be put in a certificate";
        awf_peek_deny(c);
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
        awf_conn_close(c);
        return;
    }
    awf_conn_set_state(c, AWF_CS_BUMP_CLIENT);
    if (c->hello) { /* the ClientHello peek.c held */
        BIO_write(SSL_get_rbio(bp->ssl), c->hello->data + c->hello->off, (int)c->hello->len);
        awf_bufpool_put(&c->px->bufs, c->hello);
        c->hello = NULL;
    }
    client_handshake(c);
}

void awf_bump_client_read(struct awf_conn *c, struct awf_buf *b)
{
    struct awf_bump *bp = c->bump;
    BIO_write(SSL_get_rbio(bp->ssl), b->data + b->off, (int)b->len);
    awf_bufpool_put(&c->px->bufs, b);
    if (c->state == AWF_CS_BUMP_CLIENT) {
        client_handshake(c);
        if (c->state == AWF_CS_BUMP_CLIENT || c->state == AWF_CS_CLOSING ||
            c->state == AWF_CS_FLUSH)
            return;
    }
    bool eof;
    int err;
    struct awf_buf *plain = drain(c, bp->ssl, &eof, &err);
    if (flush(c, bp->ssl, (uv_stream_t *)&c->client) < 0 && !err)
        err = -EIO;
    if (plain)
        awf_conn_client_input(c, plain);
    if (c->state == AWF_CS_CLOSING)
        return;
    if (err < 0)
        awf_conn_client_eof(c, UV_ECONNRESET);
    else if (eof)
        awf_conn_client_eof(c, UV_EOF);
}

/* ---- each request ---- */

static void deny(struct awf_conn *c, const char *why)
{
    awf_answer(c, AWF_ANS_DENIED, why);
}

void awf_bump_decide(struct awf_conn *c)
{
    struct awf_bump *bp = c->bump;
    llhttp_t *p = &c->req;
    c->tag = AWF_TAG_TCP_MISS;
    bool ws = awf_http_is_websocket(&c->head);
    if (ws)
        awf_http_head_compact(&c->head); /* before anything points into the head */
    struct awf_slice url = awf_http_head_url_slice(&c->head);
    struct awf_slice path = awf_http_strip_fragment(url);
    c->target.host = (struct awf_slice){bp->name, strlen(bp->name)};
    c->target.port = bp->port;
    c->target.authority = (struct awf_slice){bp->authority, strlen(bp->authority)};
    c->target.path = path;
    int n =
        snprintf(bp->url, sizeof(bp->url), "https://%s%.*s", bp->authority, (int)path.len, path.p);
    c->log_url = bp->url;
    if (awf_conn_set_host(c, bp->name, strlen(bp->name)) < 0) {
        awf_answer(c, AWF_ANS_NOMEM, "out of memory");
        return;
    }
    if (p->method == HTTP_CONNECT || path.len == 0 || path.p[0] != '/' ||
        n >= (int)sizeof(bp->url)) {
        /* Inside bumped TLS only origin-form requests make sense (RFC 9112 3.2.1). */
        c->log_method = "NONE";
        c->log_url = "error:invalid-request";
        awf_answer(c, AWF_ANS_INVALID_REQ, "malformed request");
        return;
    }
    struct awf_slice hh;
    struct awf_target ht;
    if (awf_http_head_get(&c->head, "Host", &hh)) {
        if (awf_http_parse_authority(hh.p, hh.len, bp->port, &ht) < 0) {
            c->log_method = "NONE";
            c->log_url = "error:invalid-request";
            awf_answer(c, AWF_ANS_INVALID_REQ, "malformed request");
            return;
        }
        /* The policy decided the TLS name; a Host naming another site on a shared server
         * (domain fronting inside the decrypted stream) is not what it allowed. */
        if (!awf_http_same_host(ht.host, c->target.host)) {
            deny(c, "the Host header names another host than the TLS name");
            return;
        }
    }
    awf_request_set_flags(c, ws);
    if (c->flags & AWF_CF_OVERLOAD) {
        awf_answer(c, AWF_ANS_OVERLOAD, "too many connections");
        return;
    }
    struct awf_policy_req rq;
    struct awf_verdict v;
    awf_conn_policy_req(c, NULL, &rq);
    rq.traffic = AWF_TRAFFIC_TLS;
    rq.url = bp->url; /* squid.conf url_regex (AWF's allowed_url_N, DLP) sees the full URL */
    rq.url_len = (size_t)n;
    awf_policy_decide_req(c->policy, &rq, &v);
    if (v.need_addrs) {
        /* A dst ACL on the name: not looked up inside bumped TLS (yet); refusing is the side
         * that never lets out what the rules deny. */
        deny(c, "a dst ACL decides this request: not supported inside ssl-bump");
        return;
    }
    if (!v.allow) {
        deny(c, awf_reason_name(v.reason));
        return;
    }
    if (!awf_policy_url_allowed(c->policy, bp->url, (size_t)n, NULL)) {
        deny(c, "the URL matches no allow_urls pattern");
        return;
    }
    /* The parent choice sees the request as decided: TLS traffic with its https:// URL. */
    if (!awf_request_admit(c, &rq))
        return;
    awf_conn_set_state(c, AWF_CS_RESOLVING);
    awf_request_resolve(c);
}

/* ---- the upstream side ---- */

static void up_failed(struct awf_conn *c, const char *why)
{
    awf_answer(c, AWF_ANS_TLS_FAIL, why);
}

void awf_bump_up_eof(struct awf_conn *c, int status)
{
    (void)status;
    awf_answer(c, AWF_ANS_TLS_FAIL, "the upstream closed during the TLS handshake");
}

void awf_bump_up_timeout(struct awf_conn *c)
{
    awf_answer(c, AWF_ANS_TIMEOUT, "TLS handshake with the upstream timed out");
}

static void up_handshake(struct awf_conn *c)
{
    struct awf_upstream *up = c->up;
    int rc = SSL_do_handshake(up->ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(up->ssl, rc);
    int frc = flush(c, up->ssl, (uv_stream_t *)&up->tcp);
    if (rc == 1 && frc == 0) {
        up->tls_done = true;
        awf_conn_up_use(c);
        return;
    }
    if (e == SSL_ERROR_WANT_READ && frc == 0) {
        awf_conn_sync_reading(c);
        return;
    }
    long vr = SSL_get_verify_result(up->ssl);
    ERR_clear_error();
    /* Static strings: c->why outlives this call (the log's debug line). */
    up_failed(c, vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                                 : "TLS handshake with the upstream failed");
}

void awf_bump_up_start(struct awf_conn *c)
{
    struct awf_upstream *up = c->up;
    struct awf_bump *bp = c->bump;
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
    awf_conn_set_state(c, AWF_CS_BUMP_UP);
    up_handshake(c);
}

void awf_bump_up_read(struct awf_conn *c, struct awf_buf *b)
{
    struct awf_upstream *up = c->up;
    BIO_write(SSL_get_rbio(up->ssl), b->data + b->off, (int)b->len);
    awf_bufpool_put(&c->px->bufs, b);
    if (c->state == AWF_CS_BUMP_UP) {
        up_handshake(c);
        return;
    }
    bool eof;
    int err;
    struct awf_buf *plain = drain(c, up->ssl, &eof, &err);
    if (flush(c, up->ssl, (uv_stream_t *)&up->tcp) < 0 && !err)
        err = -EIO;
    if (plain)
        awf_conn_up_input(c, plain);
    if (c->state == AWF_CS_CLOSING || c->up != up)
        return;
    if (err < 0)
        awf_conn_up_eof(c, UV_ECONNRESET);
    else if (eof)
        awf_conn_up_eof(c, UV_EOF);
}
