/* The proxy's own answers, one row of AWF_ANSWERS (conn-t.h) each: a status line, X-Squid-Error
 * for AWF's tooling, and a short HTML body naming the target and the reason; to a client that
 * cannot take one (it speaks TLS to us, or has its 200 already), a denial is the log line, a TLS
 * alert at most, and the close (proxy_answer_close_denied). The connection closes after an
 * answer. */

#include <stdio.h>
#include <string.h>

#include "proxy/conn.h"

static const char *phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version not supported"; /* Squid's spelling */
    default:
        return "Error";
    }
}

/* Copies s into out as HTML text; returns the length written (out holds at least cap bytes). */
static size_t html_escape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 6 < cap; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            break;
        }
        if (rep) {
            size_t k = strlen(rep);
            memcpy(out + o, rep, k);
            o += k;
        } else if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

static const struct proxy_answer_def answers[AWF_ANS_COUNT] = {
#define AWF_X(name, status, page, arg, tag, hdr)                                                   \
    [AWF_ANS_##name] = {status, #page, arg, AWF_TAG_##tag, hdr},
    AWF_ANSWERS(AWF_X)
#undef AWF_X
};

const struct proxy_answer_def *proxy_answer_def(enum proxy_ans a)
{
    return (unsigned)a < AWF_ANS_COUNT ? &answers[a] : NULL;
}

void proxy_answer(struct proxy_conn *c, enum proxy_ans a, const char *why)
{
    proxy_answer_errno(c, a, 0, why);
}

void proxy_answer_errno(struct proxy_conn *c, enum proxy_ans a, int err, const char *why)
{
    const struct proxy_answer_def *d = &answers[a];
    int status = d->status;
    int err_arg = d->arg == AWF_ANS_ERRNO ? err : d->arg;
    struct awf_proxy *px = c->px;
    char target[600], reason[300], body[1400];
    if (why && !c->why)
        c->why = why;
    if (c->dns_req) {
        awf_dns_cancel(c->dns_req);
        c->dns_req = NULL;
    }
    if (c->up)
        proxy_upstream_release(c, false);
    if (c->flags & AWF_CF_NO_ANSWER) {
        /* The client already has its "200 Connection established", or speaks TLS to us: an
         * HTTP answer would be garbage to it. The log says what happened. */
        if (status == 403) { /* e.g. intercepted TLS whose name resolves to denied addresses */
            proxy_answer_close_denied(c, AWF_TAG_TCP_DENIED, true);
            return;
        }
        c->status = status;
        c->tag = d->tag;
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    if (c->target.host.len) {
        char hp[300];
        int k = snprintf(hp, sizeof(hp), "%.*s:%u", (int)c->target.host.len, c->target.host.p,
                         (unsigned)c->target.port);
        html_escape(hp, k > 0 ? (size_t)k : 0, target, sizeof(target));
    } else {
        strcpy(target, "-");
    }
    html_escape(why ? why : "", why ? strlen(why) : 0, reason, sizeof(reason));
    int blen = snprintf(body, sizeof(body),
                        "<html><head><title>%d %s</title></head><body><h1>%d %s</h1>"
                        "<p>awf-proxy: %s: %s</p></body></html>\n",
                        status, phrase(status), status, phrase(status), target, reason);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = (int)strlen(body);

    c->status = status;
    c->tag = d->tag;
    c->mime = "text/html";
    struct proxy_buf *b = proxy_bufpool_get(&px->bufs, 2048);
    if (b) {
        int n = snprintf(b->data, b->cap,
                         "HTTP/1.1 %d %s\r\n"
                         "Server: awf-proxy\r\n"
                         "Content-Type: text/html\r\n"
                         "Content-Length: %d\r\n"
                         "Cache-Control: no-store\r\n"
                         "X-Squid-Error: %s %d\r\n"
                         "%s%s"
                         "Connection: close\r\n\r\n%s",
                         status, phrase(status), blen, d->page, err_arg, d->header ? d->header : "",
                         d->header ? "\r\n" : "", body);
        b->len = n > 0 && (size_t)n < b->cap ? (size_t)n : 0;
        c->bytes_out += b->len;
    }
    proxy_conn_log(c);
    if (b && proxy_conn_write(c, (uv_stream_t *)&c->client, b) < 0) {
        proxy_conn_close(c);
        return;
    }
    proxy_conn_flush_close(c);
}

void proxy_answer_close_denied(struct proxy_conn *c, enum proxy_tag tag, bool alert)
{
    c->tag = tag;
    c->status = 403;
    c->hier = AWF_HIER_NONE;
    c->flags &= ~(AWF_CF_HAS_SERVER | AWF_CF_ABORTED);
    if (alert && c->set->tls.alert_on_deny) {
        /* A fatal unrecognized_name alert, so TLS clients report a clear error. */
        static const char rec[AWF_TLS_ALERT_LEN] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70};
        proxy_answer_close_alert(c, rec);
        return;
    }
    proxy_conn_close(c);
}

void proxy_answer_close_alert(struct proxy_conn *c, const char rec[AWF_TLS_ALERT_LEN])
{
    struct proxy_buf *b = proxy_bufpool_get(&c->px->bufs, AWF_TLS_ALERT_LEN);
    if (b) {
        memcpy(b->data, rec, AWF_TLS_ALERT_LEN);
        b->off = 0;
        b->len = AWF_TLS_ALERT_LEN;
        c->bytes_out += b->len;
        /* Raw: the client's TLS has not started; the record is the whole answer. */
        if (proxy_conn_write_raw(c, (uv_stream_t *)&c->client, b) == 0) {
            proxy_conn_log(c);
            proxy_conn_flush_close(c);
            return;
        }
    }
    proxy_conn_close(c);
}
