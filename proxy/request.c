/* Request heads: read with llhttp and proxy/http.c's head callbacks (the ones the fuzz target
 * drives; the parser itself is parse.c's), answered as Squid does when malformed, and decided:
 * the target (absolute form, CONNECT, the Host of intercepted HTTP: target.c, which the fuzz
 * target drives too; the TLS name of a bumped connection), the Host check, the policy, the
 * limits. What follows is resolve.c's, or peek.c's for TLS: this file calls down into both,
 * and nothing calls it but the phase table. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"

/* ---- request heads ---- */

static void bad_request(struct proxy_conn *c)
{
    c->log_method = "NONE";
    c->log_url = "error:invalid-request";
    proxy_answer(c, AWF_ANS_INVALID_REQ, "malformed request");
}

/* Squid 5.7's reading of a request line (Http1::RequestParser, relaxed): the method is the run
 * of token characters (RFC 9110 tchar) at the line's start, at most 32, after any empty lines;
 * a line with no method or no target after it is not HTTP (its ERR_PROTOCOL_UNKNOWN), any other
 * it cannot take is an invalid request (ERR_INVALID_REQ). Writes the method, NUL-terminated,
 * into method (33 bytes; "" for none); returns whether the line is not HTTP. */
static bool squid_line_not_http(const char *p, size_t n, char *method)
{
    static const char tchar_punct[] = "!#$%&'*+-.^_`|~";
    size_t i = 0, m = 0;
    while (i < n && (p[i] == '\r' || p[i] == '\n'))
        i++;
    for (; i < n && m < 32; i++, m++) {
        unsigned char ch = (unsigned char)p[i];
        if (!(ch >= '0' && ch <= '9') && !((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') &&
            !(ch && strchr(tchar_punct, ch)))
            break;
        method[m] = p[i];
    }
    method[m] = '\0';
    if (m == 0 || i >= n || (p[i] != ' ' && p[i] != '\t'))
        return true; /* no method, or no delimiter after it: no target was read */
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i >= n || p[i] == '\r' || p[i] == '\n')
        return true; /* an empty target */
    /* A line without an HTTP/ version last is HTTP/0.9 to Squid, which has only GET. */
    const char *eol = memchr(p + i, '\n', n - i);
    size_t end = eol ? (size_t)(eol - p) : n, last = i;
    for (size_t k = i; k < end; k++)
        if (p[k] == ' ' || p[k] == '\t')
            last = k + 1;
    return !(end - last >= 5 && memcmp(p + last, "HTTP/", 5) == 0) && strcmp(method, "GET") != 0;
}

/* 400 for a request line, with Squid's error page and the method as Squid read it ("": none). */
static void line_refused(struct proxy_conn *c, const char *method, bool not_http)
{
    c->log_method = method[0] ? method : "NONE"; /* read while the answer logs, below */
    c->log_url = "error:invalid-request";
    proxy_answer(c, not_http ? AWF_ANS_PROTOCOL_UNKNOWN : AWF_ANS_INVALID_REQ,
                 not_http ? "not an HTTP request" : "malformed request line");
    c->log_method = "NONE"; /* method may end with the caller; the line is written */
}

/* A request line llhttp refused, answered and logged as Squid 5.7 answers it (measured:
 * tests/integration/squid/test_differential.py): garbage (HELLO, binary bytes, a method over 32
 * bytes) is 400 ERR_PROTOCOL_UNKNOWN with its first word as the method; a method llhttp does
 * not know followed by a target, or a bad target, is 400 ERR_INVALID_REQ with the method; a
 * version llhttp does not read is 505. Errors past the line (fields) stay bad_request().
 * d[0, n) is the read that failed; more: the head began in an earlier read (its line start is
 * gone; a line sent in pieces is rare, and logs method "-"). */
static void unsupported_version(struct proxy_conn *c);
static void refused_line(struct proxy_conn *c, llhttp_errno_t e, const char *d, size_t n,
                         size_t used, bool more)
{
    llhttp_t *p = &c->req;
    char method[33] = "";
    bool not_http;
    if (e == HPE_INVALID_METHOD) {
        not_http = more || squid_line_not_http(d, n, method);
    } else if (e == HPE_INVALID_VERSION && p->http_major &&
               !(p->http_major == 1 && p->http_minor <= 1)) {
        unsupported_version(c); /* HTTP/9.9, 1.2: the digits were read */
        return;
    } else if (e == HPE_INVALID_URL || e == HPE_INVALID_CONSTANT || e == HPE_INVALID_VERSION) {
        snprintf(method, sizeof(method), "%s", llhttp_method_name((llhttp_method_t)p->method));
        /* "GET \r\n": the method and nothing after it */
        not_http = proxy_http_head_url_slice(&c->head).len == 0 && used < n &&
                   (d[used] == '\r' || d[used] == '\n');
    } else {
        bad_request(c);
        return;
    }
    line_refused(c, method, not_http);
}

/* A version llhttp does not read (HTTP/9.9, HTTP/1.2) or the proxy does not speak (HTTP/2.0):
 * 505, logged as Squid 5.7 logs it (measured): the method and the URL as received, version
 * 1.1, no Host or User-Agent (Squid read no field of it), and then a second row for the
 * connection, the one of a connection that ends before any request ("- -:- 0.0 - 0 ...
 * error:transaction-end-before-headers"). */
static void unsupported_version(struct proxy_conn *c)
{
    c->log_method = llhttp_method_name((llhttp_method_t)c->req.method);
    c->log_url = NULL; /* the URL as received (no target was parsed) */
    c->req.http_major = c->req.http_minor = 1;
    c->head.n_fields = 0;
    proxy_answer(c, AWF_ANS_UNSUP_VERSION, "HTTP version not supported");
    /* The second row: an empty transaction, logged when the connection closes (now, if the
     * answer already closed it). */
    c->flags &= ~AWF_CF_LOGGED;
    c->tag = AWF_TAG_UNSET;
    c->status = 0;
    c->bytes_in = c->bytes_out = 0;
    c->log_method = c->log_url = NULL;
    if (c->state == AWF_CS_CLOSING)
        proxy_conn_log(c);
}

static void decide(struct proxy_conn *c);

static void txn_begin(struct proxy_conn *c)
{
    c->flags |= AWF_CF_TXN;
    c->start_us = proxy_now_us();
    c->requests++;
    c->state_since = uv_now(c->px->loop); /* the header deadline runs from the first byte */
    proxy_conn_arm_timer(c);
}

void proxy_request_input(struct proxy_conn *c, struct proxy_buf *b)
{
    struct proxy_bufpool *bp = &c->px->bufs;
    if (c->state == AWF_CS_SNIFF && b->len && (uint8_t)b->data[b->off] == 0x16) {
        /* A TLS handshake record: intercepted TLS, decided on the ClientHello's SNI. */
        proxy_peek_start_intercept(c, b);
        return;
    }
    if (c->state == AWF_CS_SNIFF) /* HTTP: absolute form, CONNECT, or origin form */
        proxy_conn_set_state(c, AWF_CS_HEAD);
    if (!(c->flags & AWF_CF_TXN))
        txn_begin(c);
    size_t used;
    bool more = c->head_bytes != 0;
    llhttp_errno_t e = proxy_http_read_head(&c->rd, &c->req, b->data + b->off, b->len, more, &used);
    c->head_bytes += used;
    c->bytes_in += used;
    if (c->rd.err == AWF_E_TOO_BIG || c->head_bytes > c->set->limits.header_bytes) {
        proxy_bufpool_put(bp, b);
        c->log_method = "NONE";
        c->log_url = "error:request-too-large";
        proxy_answer(c, AWF_ANS_TOO_BIG, "request headers too large");
        return;
    }
    if (e == HPE_OK) {
        proxy_bufpool_put(bp, b);
        if (c->flags & AWF_CF_CLIENT_EOF) {
            /* A partial head from a client that already half-closed: nothing can complete
             * it (a pipelined rest read before the FIN). */
            proxy_conn_close(c);
            return;
        }
        proxy_conn_sync_reading(c);
        return;
    }
    if (e == HPE_PAUSED) {
        b->off += used;
        b->len -= used;
        if (b->len)
            c->pend = b;
        else
            proxy_bufpool_put(bp, b);
        decide(c);
        return;
    }
    refused_line(c, e, b->data + b->off, b->len, used, more);
    proxy_bufpool_put(bp, b);
}

/* ---- deciding ---- */

static void deny(struct proxy_conn *c, const char *why)
{
    proxy_answer(c, AWF_ANS_DENIED, why);
}

/* What a forwarded request's head says for later (HEAD, a body, a WebSocket upgrade when ws,
 * keep-alive), into c->flags: plain HTTP and requests inside bumped TLS alike. */
static void set_flags(struct proxy_conn *c, bool ws)
{
    llhttp_t *p = &c->req;
    if (p->method == HTTP_HEAD)
        c->flags |= AWF_CF_HEAD_REQ;
    if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0))
        c->flags |= AWF_CF_REQ_BODY;
    if (ws)
        c->flags |= AWF_CF_WEBSOCKET;
    if (llhttp_should_keep_alive(p))
        c->flags |= AWF_CF_KEEPALIVE;
}

/* A request read inside bumped TLS: decided by the host (the TLS name; a Host header naming
 * another host is denied) and its full https:// URL (allow_urls), then resolved and dialled as
 * plain HTTP would be (bump.c gives the upstream TLS of its own before forward.c relays). */
static void decide_bumped(struct proxy_conn *c)
{
    struct proxy_bump *bp = c->bump;
    llhttp_t *p = &c->req;
    c->tag = AWF_TAG_TCP_MISS;
    bool ws = proxy_http_is_websocket(&c->head);
    if (ws)
        proxy_http_head_compact(&c->head); /* before anything points into the head */
    struct proxy_slice url = proxy_http_head_url_slice(&c->head);
    struct proxy_slice path = proxy_http_strip_fragment(url);
    c->target.host = (struct proxy_slice){bp->name, strlen(bp->name)};
    c->target.port = bp->port;
    c->target.authority = (struct proxy_slice){bp->authority, strlen(bp->authority)};
    c->target.path = path;
    int n =
        snprintf(bp->url, sizeof(bp->url), "https://%s%.*s", bp->authority, (int)path.len, path.p);
    c->log_url = bp->url;
    if (proxy_conn_set_host(c, bp->name, strlen(bp->name)) < 0) {
        proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
        return;
    }
    if (p->method == HTTP_CONNECT || path.len == 0 || path.p[0] != '/' ||
        n >= (int)sizeof(bp->url)) {
        /* Inside bumped TLS only origin-form requests make sense (RFC 9112 3.2.1). */
        c->log_method = "NONE";
        c->log_url = "error:invalid-request";
        proxy_answer(c, AWF_ANS_INVALID_REQ, "malformed request");
        return;
    }
    struct proxy_slice hh;
    struct proxy_target ht;
    if (proxy_http_head_get(&c->head, "Host", &hh)) {
        if (proxy_http_parse_authority(hh.p, hh.len, bp->port, &ht) < 0) {
            c->log_method = "NONE";
            c->log_url = "error:invalid-request";
            proxy_answer(c, AWF_ANS_INVALID_REQ, "malformed request");
            return;
        }
        /* The policy decided the TLS name; a Host naming another site on a shared server
         * (domain fronting inside the decrypted stream) is not what it allowed. */
        if (!proxy_http_same_host(ht.host, c->target.host)) {
            deny(c, "the Host header names another host than the TLS name");
            return;
        }
    }
    set_flags(c, ws);
    if (c->flags & AWF_CF_OVERLOAD) {
        proxy_answer(c, AWF_ANS_OVERLOAD, "too many connections");
        return;
    }
    struct awf_policy_req rq;
    struct awf_verdict v;
    proxy_conn_policy_req(c, NULL, &rq);
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
        deny(c, awf_policy_reason_name(v.reason));
        return;
    }
    if (!awf_policy_url_allowed(c->policy, bp->url, (size_t)n, NULL)) {
        deny(c, "the URL matches no allow_urls pattern");
        return;
    }
    /* The parent choice sees the request as decided: TLS traffic with its https:// URL. */
    if (!proxy_request_admit(c, &rq))
        return;
    proxy_conn_set_state(c, AWF_CS_RESOLVING);
    proxy_request_resolve(c);
}

static void decide(struct proxy_conn *c)
{
    llhttp_t *p = &c->req;
    struct awf_verdict v;
    c->log_method = llhttp_method_name((llhttp_method_t)p->method);
    c->hier = AWF_HIER_NONE;
    switch (proxy_http_request_check(p, &c->head)) { /* target.c: what the fuzz target checks */
    case AWF_HTTP_OK:
        break;
    case AWF_HTTP_VERSION_2: /* HTTP/2.0 in an HTTP/1 request line: Squid's 505 */
        unsupported_version(c);
        return;
    case AWF_HTTP_NO_VERSION: /* HTTP/0.9, which Squid takes only for GET */
        line_refused(c, c->log_method, strcmp(c->log_method, "GET") != 0);
        return;
    default:
        bad_request(c);
        return;
    }
    if (c->bump) { /* a request inside bumped TLS */
        decide_bumped(c);
        return;
    }
    /* A tunnel (CONNECT, or a WebSocket upgrade once answered) keeps its head for the log line
     * as long as it lasts: only what the head holds is kept. The memory moves, so this comes
     * before anything points into it (c->target). */
    enum proxy_http_form form = proxy_http_request_form(p, &c->head);
    bool ws = form != AWF_HTTP_FORM_AUTHORITY && proxy_http_is_websocket(&c->head);
    if (form == AWF_HTTP_FORM_AUTHORITY || ws)
        proxy_http_head_compact(&c->head);
    enum proxy_http_verdict r = proxy_http_request_target(p, &c->head, &c->target);
    if (form == AWF_HTTP_FORM_AUTHORITY) {
        c->flags |= AWF_CF_CONNECT;
        c->tag = AWF_TAG_TCP_TUNNEL;
    } else {
        c->tag = AWF_TAG_TCP_MISS;
    }
    if (r == AWF_HTTP_BAD) { /* no target */
        bad_request(c);
        return;
    }
    if (form == AWF_HTTP_FORM_ORIGIN) {
        /* What an iptables DNAT delivers: the Host field names the target, the port is the
         * original destination's, else the listener's intercept_port, else the Host field's,
         * else 80. The name is resolved and that address dialled, never the client's original
         * destination address. */
        c->target.port = proxy_conn_intercept_port(c, c->target.port);
        c->flags |= AWF_CF_INTERCEPT;
    }
    if (form != AWF_HTTP_FORM_AUTHORITY)
        set_flags(c, ws);
    int rc = proxy_conn_set_host(c, c->target.host.p, c->target.host.len);
    if (rc == -ENOMEM) {
        proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
        return;
    }
    if (rc < 0 || r == AWF_HTTP_BAD_HOST) {
        bad_request(c);
        return;
    }
    if ((c->flags & AWF_CF_INTERCEPT) && proxy_intercept_is_loop(c)) {
        deny(c, "the target is this proxy");
        return;
    }
    if (r == AWF_HTTP_OTHER_HOST) {
        /* A Host field naming another host than the URI could steer a later hop (or a
         * virtual host) elsewhere than the policy decided: deny rather than pick one. */
        deny(c, "the Host header names another host");
        return;
    }
    if (c->flags & AWF_CF_OVERLOAD) {
        proxy_answer(c, AWF_ANS_OVERLOAD, "too many connections");
        return;
    }
    if (proxy_request_decide(c, NULL, NULL, false, &v) < 0) {
        proxy_answer(c, AWF_ANS_NOMEM, "out of memory");
        return;
    }
    if (v.need_addrs) { /* a squid.conf dst ACL asks for the name's addresses first */
        c->flags |= AWF_CF_DECIDE_ADDRS;
        proxy_conn_set_state(c, AWF_CS_RESOLVING);
        proxy_request_resolve(c);
        return;
    }
    if (!v.allow) {
        deny(c, awf_policy_reason_name(v.reason));
        return;
    }
    if (!proxy_request_allowed(c, NULL))
        return;
    if ((c->flags & AWF_CF_CONNECT) && c->px->tls && c->set->ssl_bump.enabled) {
        /* ssl-bump: the ClientHello says whether to bump or splice before anything is
         * dialled (Squid's peek at step 1); peek.c resolves and dials for a splice. */
        proxy_peek_start_connect(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_RESOLVING);
    proxy_request_resolve(c);
}
