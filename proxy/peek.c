/* Peeking at a TLS ClientHello before any client byte reaches an upstream: the SNI inside
 * CONNECT tunnels (it must be allowed and name the CONNECT host, SPEC §2) and intercepted TLS
 * (the SNI is the target). The client's bytes are held in c->hello until the decision; on allow
 * they go upstream first, unchanged. A tunnel's first bytes that are not TLS are told apart by
 * sniff.c: an HTTP/1.x or h2c request must name the CONNECT host too, opaque bytes pass only
 * where the policy lets them. Denials close through answer.c:proxy_answer_close_denied; what
 * follows an allow is resolve.c's (resolving and dialling when nothing is dialled yet),
 * bump.c's or tunnel.c's.
 *
 * A CONNECT tunnel is dialled before its 200 (so a refused port still gets 503 as in Squid
 * without peeking), then the client's first bytes are held: a denied tunnel has had a TCP
 * connection to the upstream but not one byte. Bytes the server sends first (SMTP-like
 * protocols) go to the client meanwhile. */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "proxy/conn.h"
#include "proxy/clienthello.h"
#include "proxy/h2c.h"
#include "proxy/sniff.h"

/* The log line says that it was denied through its tag (TCP_DENIED) and keeps the URL Squid
 * would show (host:port): Squid's formats have no reason field, and its error: URLs belong to
 * NONE_NONE lines that AWF's tools read as "no request". Why is kept in c->why, printed with
 * AWF_PROXY_DEBUG; nothing more can reach a TLS client than the alert. */
static void deny(struct proxy_conn *c, const char *why)
{
    c->why = why;
    proxy_answer_close_denied(c, AWF_TAG_TCP_DENIED, true);
}

/* A plain-text tunnel (HTTP inside CONNECT) is closed without the TLS alert. */
static void deny_plain(struct proxy_conn *c, const char *why)
{
    c->why = why;
    proxy_answer_close_denied(c, AWF_TAG_TCP_DENIED, false);
}

void proxy_peek_start_connect(struct proxy_conn *c)
{
    c->flags |= AWF_CF_NO_ANSWER;
    if (proxy_conn_send_established(c) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_PEEK);
    if (c->pend) {
        struct proxy_buf *p = c->pend;
        c->pend = NULL;
        proxy_peek_input(c, p);
        return;
    }
    if (c->flags & AWF_CF_CLIENT_EOF) { /* CONNECT and FIN, no byte: nothing to check */
        if (!c->up) { /* ssl-bump peeks before dialling: nothing to pass on either */
            proxy_conn_close(c);
            return;
        }
        proxy_tunnel_start(c);
        return;
    }
    proxy_conn_sync_reading(c);
}

/* The held bytes may go on as a tunnel: through the upstream already dialled, or, when ssl-bump
 * peeked before dialling, once it is resolved and dialled (they go first then). */
static void pass_on(struct proxy_conn *c)
{
    c->pend = c->hello;
    c->hello = NULL;
    if (c->up) {
        proxy_tunnel_start(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_RESOLVING);
    proxy_request_resolve(c);
}

/* The first bytes are incomplete: read on, unless the client already sent its FIN (nothing can
 * complete them, and incomplete bytes are not let through unchecked). */
static void wait_more(struct proxy_conn *c)
{
    if (c->flags & AWF_CF_CLIENT_EOF) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    proxy_conn_sync_reading(c);
}

void proxy_peek_start_intercept(struct proxy_conn *c, struct proxy_buf *b)
{
    c->flags |= AWF_CF_INTERCEPT | AWF_CF_NO_ANSWER;
    c->log_method = "CONNECT";
    proxy_conn_set_state(c, AWF_CS_PEEK);
    proxy_peek_input(c, b);
}

/* The ClientHello of an intercepted connection names the target. */
static void decide_intercept(struct proxy_conn *c, const struct proxy_hello *h)
{
    struct awf_verdict v;
    uint16_t port = proxy_conn_intercept_port(c, 443); /* also logged when denied: %la:%lp */
    if (!h->sni || h->sni_len > AWF_HOST_MAX + 1) {    /* with a trailing dot */
        /* Nothing names a target, and the original destination IP is never dialled. */
        c->log_url = "error:no-sni";
        deny(c, "ClientHello without SNI");
        return;
    }
    size_t hp_cap = h->sni_len + sizeof(":65535");
    free(c->sni_hp);
    c->sni_hp = malloc(hp_cap); /* owned by c, freed with it */
    if (!c->sni_hp || proxy_conn_set_host(c, h->sni, h->sni_len) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    c->target.host = (struct proxy_slice){c->host, h->sni_len};
    c->target.port = port;
    int n = snprintf(c->sni_hp, hp_cap, "%s:%u", c->host, (unsigned)c->target.port);
    c->target.authority = (struct proxy_slice){c->sni_hp, n > 0 ? (size_t)n : 0};
    c->log_url = c->sni_hp;
    c->tag = AWF_TAG_TCP_TUNNEL;
    c->hier = AWF_HIER_NONE;
    c->flags |= AWF_CF_CONNECT; /* from here on a tunnel like any other */
    if (proxy_intercept_is_loop(c)) {
        deny(c, "the target is this proxy");
        return;
    }
    if (proxy_request_decide(c, "CONNECT", NULL, false, &v) < 0) {
        c->flags |= AWF_CF_ABORTED;
        proxy_conn_close(c);
        return;
    }
    if (!v.allow && !v.need_addrs) {
        deny(c, awf_policy_reason_name(v.reason));
        return;
    }
    if (h->ech_offered && c->set->tls.deny_ech) {
        deny(c, "encrypted client hello");
        return;
    }
    if (v.need_addrs) { /* a squid.conf dst ACL: resolve.c decides again with the addresses */
        c->flags |= AWF_CF_DECIDE_ADDRS;
        proxy_conn_set_state(c, AWF_CS_RESOLVING);
        proxy_request_resolve(c);
        return;
    }
    struct awf_policy_req rq;
    proxy_conn_policy_req(c, "CONNECT", &rq);
    rq.addrs_known = true;
    if (!proxy_request_admit_hello(c, &rq))
        return;
    if (proxy_bump_wanted(c)) {
        c->hello = c->pend; /* the ClientHello is answered here, not passed on */
        c->pend = NULL;
        proxy_bump_take(c);
        return;
    }
    proxy_conn_set_state(c, AWF_CS_RESOLVING);
    proxy_request_resolve(c);
}

/* Whether the CONNECT target is an IP address (any spelling the policy treats as one). */
static bool target_is_ip(const struct proxy_conn *c)
{
    struct in_addr a4;
    struct in6_addr a6;
    return inet_aton(c->host, &a4) || inet_pton(AF_INET6, c->host, &a6) == 1;
}

/* The ClientHello inside a CONNECT tunnel must name the CONNECT host and be allowed itself.
 * Returns NULL when the tunnel may go on, else why not. */
static const char *check_connect(struct proxy_conn *c, const struct proxy_hello *h)
{
    struct awf_verdict v;
    if (!h->sni) /* clients send no SNI for an IP address; a name needs one */
        return target_is_ip(c) ? NULL : "ClientHello without SNI";
    if (!proxy_http_same_host((struct proxy_slice){h->sni, h->sni_len}, c->target.host))
        return "SNI names another host than CONNECT";
    struct awf_policy_req rq;
    proxy_conn_policy_req(c, "CONNECT", &rq);
    rq.host = h->sni; /* the same host as CONNECT's, maybe spelt otherwise: decided as sent */
    rq.host_len = h->sni_len;
    awf_policy_decide_req(c->policy, &rq, &v);
    /* need_addrs: the CONNECT's decision waited for this same host's addresses and allowed */
    if (!v.allow && !v.need_addrs)
        return awf_policy_reason_name(v.reason);
    if (h->ech_offered && c->set->tls.deny_ech)
        return "encrypted client hello";
    return NULL;
}

static void decide_connect(struct proxy_conn *c, const struct proxy_hello *h)
{
    const char *why = check_connect(c, h);
    if (why) {
        deny(c, why);
        return;
    }
    if (proxy_bump_wanted(c)) {
        proxy_bump_take(c);
        return;
    }
    pass_on(c); /* the held bytes go first */
}

/* Whether a host named inside the tunnel (Host value or absolute URI authority) is the CONNECT
 * host: case-insensitive, port ignored (the port is the tunnel's anyway). */
static bool names_connect_host(const struct proxy_conn *c, struct proxy_slice s, bool uri)
{
    struct proxy_target t;
    int rc = uri ? proxy_http_parse_absolute(s.p, s.len, &t)
                 : proxy_http_parse_authority(s.p, s.len, 80, &t);
    return rc == 0 && proxy_http_same_host(t.host, c->target.host);
}

/* An HTTP request as a tunnel's first bytes: a server on a shared address (a CDN) picks the
 * site from its Host header or absolute URI, so both must name the CONNECT host, or
 * `CONNECT allowed.test:80` could carry `Host: evil.test`. Returns NULL or why not. Only the
 * first request is looked at; later ones on the same tunnel pass unchecked. */
static const char *check_tunnel_http(const struct proxy_conn *c, const struct proxy_sniffed *sn)
{
    struct proxy_slice t = sn->target;
    if (sn->suspect)
        return sn->suspect;
    if (sn->n_host > 1)
        return "two Host fields inside a tunnel";
    if (sn->n_host == 1 && !names_connect_host(c, sn->host, false))
        return "the Host header inside the tunnel names another host than CONNECT";
    if (t.len && t.p[0] != '/' && !(t.len == 1 && t.p[0] == '*') && !names_connect_host(c, t, true))
        return "the request inside the tunnel names another host than CONNECT";
    return NULL;
}

/* Bytes that are neither TLS, nor HTTP/1.x, nor h2c: what they say cannot be checked, so they
 * pass only where the policy lets opaque bytes through (tunnels.opaque_ports/opaque_hosts);
 * elsewhere the tunnel is closed and logged with its own tag, so that an operator sees at once
 * which setting would let it through. */
static bool opaque_ok(const struct proxy_conn *c)
{
    return awf_policy_opaque_allowed(c->policy, c->target.host.p, c->target.host.len,
                                     c->target.port);
}

static void deny_opaque(struct proxy_conn *c, const char *why)
{
    c->why = why;
    proxy_answer_close_denied(c, AWF_TAG_TCP_DENIED_OPAQUE, false);
}

/* An h2c prior-knowledge connection: its first request's :authority and host must name the
 * CONNECT host, as Host does for HTTP/1.x. Returns true when the tunnel may go on; otherwise
 * the connection is closed or waits for more bytes. Later streams are not decoded. */
static bool decide_h2c(struct proxy_conn *c, const char *p, size_t n)
{
    struct proxy_h2c_req rq;
    enum proxy_h2c_result r =
        proxy_h2c_first_request((const uint8_t *)p, n, c->set->limits.header_bytes, &rq);
    const char *why = NULL;
    if (r == AWF_H2C_NEED_MORE && !(c->flags & AWF_CF_CLIENT_EOF)) {
        c->flags &= ~AWF_CF_PEEKED;
        proxy_conn_sync_reading(c);
        return false;
    }
    if (r != AWF_H2C_OK) {
        /* Nothing a server would act on can be read: opaque bytes, where those may pass. */
        if (opaque_ok(c))
            return true;
        why = r == AWF_H2C_BAD ? rq.error : "an h2c request that does not end in time";
    } else if (rq.n_authority > 1 || rq.n_host > 1) {
        why = "two :authority or host fields in an h2c request";
    } else if (rq.n_authority &&
               !names_connect_host(c, (struct proxy_slice){rq.authority, rq.authority_len},
                                   false)) {
        why = "the h2c :authority names another host than CONNECT";
    } else if (rq.n_host &&
               !names_connect_host(c, (struct proxy_slice){rq.host, rq.host_len}, false)) {
        why = "the h2c host field names another host than CONNECT";
    }
    if (why) {
        deny_plain(c, why);
        return false;
    }
    return true;
}

/* Non-TLS first bytes of a CONNECT tunnel: HTTP is checked, an SSLv2 ClientHello is denied (no
 * SNI), anything else passes only where opaque bytes are allowed. */
static void decide_plain(struct proxy_conn *c)
{
    struct proxy_sniffed sn;
    enum proxy_sniff s = proxy_sniff_tunnel(c->hello->data + c->hello->off, c->hello->len,
                                            c->set->limits.header_bytes, &sn);
    const char *p = c->hello->data + c->hello->off;
    if (s == AWF_SNIFF_NEED_MORE && !(c->flags & AWF_CF_CLIENT_EOF) &&
        (proxy_sniff_strict_start(p, c->hello->len) || !opaque_ok(c))) {
        proxy_conn_sync_reading(c);
        return;
    }
    /* Still undecided: where opaque bytes may pass, only what starts like a client's request
     * line is waited on; bytes that end in the client's FIN can never become a request. */
    c->flags |= AWF_CF_PEEKED;
    const char *why = NULL;
    switch (s) {
    case AWF_SNIFF_SSL2:
        deny(c, "an SSLv2-format ClientHello (it cannot carry SNI)");
        return;
    case AWF_SNIFF_TOO_BIG:
        why = "request head too large inside a tunnel";
        break;
    case AWF_SNIFF_HTTP:
        why = check_tunnel_http(c, &sn);
        break;
    case AWF_SNIFF_H2C:
        if (!decide_h2c(c, p + sn.skip, c->hello->len - sn.skip))
            return;
        break;
    case AWF_SNIFF_OPAQUE:
    case AWF_SNIFF_NEED_MORE:
        if (!opaque_ok(c)) {
            deny_opaque(c, "opaque bytes inside a tunnel (not TLS, HTTP/1.x or h2c)");
            return;
        }
        break;
    }
    if (why) {
        deny_plain(c, why);
        return;
    }
    pass_on(c);
}

void proxy_peek_input(struct proxy_conn *c, struct proxy_buf *b)
{
    if (!c->hello) {
        /* The ClientHello starts: it must be complete within client_hello from here. */
        c->state_since = uv_now(c->px->loop);
        c->hello = b;
        proxy_conn_arm_timer(c);
    } else if (proxy_conn_append(c, &c->hello, b) < 0) {
        proxy_conn_close(c);
        return;
    }
    uint8_t scratch[AWF_HELLO_MAX]; /* the reassembled message; h points into it */
    struct proxy_hello h;
    enum proxy_hello_result rc = proxy_hello_parse((const uint8_t *)c->hello->data + c->hello->off,
                                                   c->hello->len, scratch, &h);
    if (rc == AWF_HELLO_NEED_MORE) {
        wait_more(c);
        return;
    }
    bool intercepted = (c->flags & AWF_CF_INTERCEPT) && !(c->flags & AWF_CF_ESTABLISHED);
    if (rc == AWF_HELLO_NOT_TLS && !intercepted) {
        decide_plain(c);
        return;
    }
    c->flags |= AWF_CF_PEEKED;
    if (intercepted) {
        if (rc != AWF_HELLO_OK) {
            c->tag = AWF_TAG_NONE_NONE;
            c->log_url = "error:invalid-request";
            c->flags |= AWF_CF_ABORTED;
            proxy_conn_close(c);
            return;
        }
        decide_intercept(c, &h);
        return;
    }
    if (rc == AWF_HELLO_MALFORMED || rc == AWF_HELLO_TOO_BIG) {
        deny(c, h.error);
        return;
    }
    if (rc != AWF_HELLO_OK) { /* not reached today; a future result must not pass unchecked */
        deny(c, "not a whole ClientHello");
        return;
    }
    decide_connect(c, &h); /* a whole ClientHello: non-TLS bytes went to decide_plain */
}

void proxy_peek_client_eof(struct proxy_conn *c, int status)
{
    if (status == UV_EOF && !c->hello && (c->flags & AWF_CF_ESTABLISHED)) {
        /* CONNECT, the 200, then FIN before any byte: an empty tunnel, which Squid 5.7 logs
         * TCP_TUNNEL (measured), not an abort. The FIN goes on to the upstream. */
        if (c->up)
            proxy_tunnel_start(c);
        else
            proxy_conn_close(c);
        return;
    }
    if (c->tag != AWF_TAG_UNSET) /* decided: the transaction is cut short */
        c->flags |= AWF_CF_ABORTED;
    proxy_conn_close(c);
}
