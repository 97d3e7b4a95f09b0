/* Peeking at a TLS ClientHello before any client byte reaches an upstream: the SNI inside
 * CONNECT tunnels (it must be allowed and name the CONNECT host, SPEC §2) and intercepted TLS
 * (the SNI is the target). The client's bytes are held in c->hello until the decision; on allow
 * they go upstream first, unchanged.
 *
 * A CONNECT tunnel is dialled before its 200 (so a refused port still gets 503 as in Squid
 * without peeking), then the client's first bytes are held: a denied tunnel has had a TCP
 * connection to the upstream but not one byte. Bytes the server sends first (SMTP-like
 * protocols) go to the client meanwhile. */

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"
#include "proxy/clienthello.h"

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

void awf_peek_deny(struct awf_conn *c)
{
    c->tag = "TCP_DENIED";
    c->status = 403;
    c->hier = "HIER_NONE";
    c->has_server = false;
    c->flags &= ~AWF_CF_ABORTED;
    if (c->set->tls.alert_on_deny) {
        /* A fatal unrecognized_name alert, so TLS clients report a clear error. The record
         * version is TLS 1.0's, which every client accepts before a ServerHello. */
        static const char alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x70};
        struct awf_buf *b = awf_bufpool_get(&c->px->bufs, sizeof(alert));
        if (b) {
            memcpy(b->data, alert, sizeof(alert));
            b->len = sizeof(alert);
            c->bytes_out += b->len;
            if (awf_conn_write(c, (uv_stream_t *)&c->client, b) == 0) {
                awf_conn_log(c);
                awf_conn_flush_close(c);
                return;
            }
        }
    }
    awf_conn_close(c);
}

/* The log line says why through its tag (TCP_DENIED) and URL; no reason field exists in
 * Squid's formats, and nothing more can reach a TLS client than the alert. */
static void deny(struct awf_conn *c, const char *why)
{
    (void)why;
    awf_peek_deny(c);
}

void awf_peek_start_connect(struct awf_conn *c)
{
    struct awf_buf *b = awf_bufpool_get(&c->px->bufs, sizeof(established) - 1);
    if (!b) {
        awf_conn_close(c);
        return;
    }
    memcpy(b->data, established, sizeof(established) - 1);
    b->len = sizeof(established) - 1;
    c->flags |= AWF_CF_ESTABLISHED | AWF_CF_NO_ANSWER;
    c->status = 200;
    c->bytes_out += b->len;
    if (awf_conn_write(c, (uv_stream_t *)&c->client, b) < 0) {
        c->flags |= AWF_CF_ABORTED;
        awf_conn_close(c);
        return;
    }
    awf_conn_set_state(c, AWF_CS_PEEK);
    if (c->pend) {
        struct awf_buf *p = c->pend;
        c->pend = NULL;
        awf_peek_input(c, p);
        return;
    }
    awf_conn_sync_reading(c);
}

void awf_peek_start_intercept(struct awf_conn *c, struct awf_buf *b)
{
    c->flags |= AWF_CF_INTERCEPT | AWF_CF_NO_ANSWER;
    c->log_method = "CONNECT";
    awf_conn_set_state(c, AWF_CS_PEEK);
    awf_peek_input(c, b);
}

/* The ClientHello of an intercepted connection names the target. */
static void decide_intercept(struct awf_conn *c, const struct awf_hello *h)
{
    struct awf_verdict v;
    uint16_t port = awf_conn_intercept_port(c, 443); /* also logged when denied: %la:%lp */
    if (!h->sni || h->sni_len >= sizeof(c->host)) {
        /* Nothing names a target, and the original destination IP is never dialled. */
        c->log_url = "error:no-sni";
        deny(c, "ClientHello without SNI");
        return;
    }
    memcpy(c->host, h->sni, h->sni_len);
    c->host[h->sni_len] = '\0';
    c->target.host = (struct awf_slice){c->host, h->sni_len};
    c->target.port = port;
    int n = snprintf(c->sni_hp, sizeof(c->sni_hp), "%s:%u", c->host, (unsigned)c->target.port);
    c->target.authority = (struct awf_slice){c->sni_hp, n > 0 ? (size_t)n : 0};
    c->log_url = c->sni_hp;
    c->tag = "TCP_TUNNEL";
    c->hier = "HIER_NONE";
    c->flags |= AWF_CF_CONNECT; /* from here on a tunnel like any other */
    if (awf_intercept_is_loop(c)) {
        deny(c, "the target is this proxy");
        return;
    }
    awf_policy_decide(c->policy, c->host, h->sni_len, c->target.port, AWF_TRAFFIC_TLS, &v);
    if (!v.allow) {
        deny(c, awf_reason_name(v.reason));
        return;
    }
    if (h->ech_offered && c->set->tls.deny_ech) {
        deny(c, "encrypted client hello");
        return;
    }
    if ((c->flags & AWF_CF_OVERLOAD) ||
        (c->set->limits.max_tunnels && c->px->tunnels >= c->set->limits.max_tunnels)) {
        c->tag = "NONE_NONE";
        c->status = 503;
        awf_conn_close(c);
        return;
    }
    c->pend = c->hello; /* sent first once the tunnel is up */
    c->hello = NULL;
    awf_conn_set_state(c, AWF_CS_RESOLVING);
    awf_request_resolve(c);
}

/* Whether the CONNECT target is an IP address (any spelling the policy treats as one). */
static bool target_is_ip(const struct awf_conn *c)
{
    struct in_addr a4;
    struct in6_addr a6;
    return inet_aton(c->host, &a4) || inet_pton(AF_INET6, c->host, &a6) == 1;
}

/* The ClientHello inside a CONNECT tunnel must name the CONNECT host and be allowed itself.
 * Returns NULL when the tunnel may go on, else why not. */
static const char *check_connect(struct awf_conn *c, enum awf_hello_result rc,
                                 const struct awf_hello *h)
{
    struct awf_verdict v;
    if (rc != AWF_HELLO_OK)
        return NULL; /* not TLS: non-TLS tunnels pass through */
    if (!h->sni)     /* clients send no SNI for an IP address; a name needs one */
        return target_is_ip(c) ? NULL : "ClientHello without SNI";
    if (!awf_http_same_host((struct awf_slice){h->sni, h->sni_len}, c->target.host))
        return "SNI names another host than CONNECT";
    awf_policy_decide(c->policy, h->sni, h->sni_len, c->target.port, AWF_TRAFFIC_TLS, &v);
    if (!v.allow)
        return awf_reason_name(v.reason);
    if (h->ech_offered && c->set->tls.deny_ech)
        return "encrypted client hello";
    return NULL;
}

static void decide_connect(struct awf_conn *c, enum awf_hello_result rc, const struct awf_hello *h)
{
    const char *why = check_connect(c, rc, h);
    if (why) {
        deny(c, why);
        return;
    }
    c->pend = c->hello; /* the held bytes go first */
    c->hello = NULL;
    awf_tunnel_start(c);
}

void awf_peek_input(struct awf_conn *c, struct awf_buf *b)
{
    if (!c->hello) {
        /* The ClientHello starts: it must be complete within client_hello from here. */
        c->state_since = uv_now(c->px->loop);
        c->hello = b;
        awf_conn_arm_timer(c);
    } else if (awf_conn_append(c, &c->hello, b) < 0) {
        awf_conn_close(c);
        return;
    }
    uint8_t scratch[AWF_HELLO_MAX]; /* the reassembled message; h points into it */
    struct awf_hello h;
    enum awf_hello_result rc = awf_hello_parse((const uint8_t *)c->hello->data + c->hello->off,
                                               c->hello->len, scratch, &h);
    if (rc == AWF_HELLO_NEED_MORE) {
        awf_conn_sync_reading(c);
        return;
    }
    c->flags |= AWF_CF_PEEKED;
    if (c->flags & AWF_CF_INTERCEPT && !(c->flags & AWF_CF_ESTABLISHED)) {
        if (rc != AWF_HELLO_OK) {
            c->tag = "NONE_NONE";
            c->log_url = "error:invalid-request";
            c->flags |= AWF_CF_ABORTED;
            awf_conn_close(c);
            return;
        }
        decide_intercept(c, &h);
        return;
    }
    if (rc == AWF_HELLO_MALFORMED || rc == AWF_HELLO_TOO_BIG) {
        deny(c, h.error);
        return;
    }
    decide_connect(c, rc, &h); /* OK, or NOT_TLS: passes through */
}
