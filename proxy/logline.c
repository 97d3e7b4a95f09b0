/* A transaction's access-log record, spelled as Squid logs it: the canonical host in %ru,
 * %>rd and the Host it logs (lower case, no trailing dot, numeric IPv4 spellings as a dotted
 * quad, IPv6 as Squid writes it, the default port dropped), the CONNECT target as the Host of a
 * CONNECT, and a connection that ended before any request as Squid's "- -:- 0.0 - 0" row.
 * Checked against Squid 5.7 (tests/integration/squid/test_differential.py). */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proxy/conn.h"

int64_t proxy_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void proxy_conn_policy_req(const struct proxy_conn *c, const char *method,
                           struct awf_policy_req *rq)
{
    *rq = (struct awf_policy_req){0}; /* no URL, addresses not looked up */
    rq->host = c->host ? c->host : "";
    rq->host_len = strlen(rq->host);
    rq->port = c->target.port;
    rq->traffic = (c->flags & AWF_CF_CONNECT) ? AWF_TRAFFIC_TLS : AWF_TRAFFIC_HTTP;
    rq->client = &c->peer.sa;
    rq->method = method ? method : c->log_method;
}

/* The values the header callback hands the renderer: the Host as Squid logs it. */
struct logctx {
    struct proxy_conn *c;
    const char *host; /* NULL: no Host to log ("-") */
    size_t host_len;
};

static const char *req_header(void *ctx, const char *name, size_t *len)
{
    struct logctx *lc = ctx;
    struct proxy_slice v;
    if (strcasecmp(name, "Host") == 0) {
        if (!lc->host)
            return NULL;
        *len = lc->host_len;
        return lc->host;
    }
    if (!proxy_http_head_get(&lc->c->head, name, &v))
        return NULL;
    *len = v.len;
    return v.p;
}

static const char *rep_header(void *ctx, const char *name, size_t *len)
{
    struct proxy_conn *c = ((struct logctx *)ctx)->c;
    if (strcasecmp(name, "Content-Type") != 0 || !c->mime || !c->mime[0])
        return NULL;
    *len = strlen(c->mime);
    return c->mime;
}

static const struct {
    const char *name;
    enum proxy_tag aborted;
} tags[AWF_TAG_COUNT] = {
    [AWF_TAG_UNSET] = {"NONE_NONE", AWF_TAG_NONE_NONE}, /* as Squid logs no request */
#define AWF_X(name, aborted) [AWF_TAG_##name] = {#name, AWF_TAG_##aborted},
    AWF_TAGS(AWF_X)
#undef AWF_X
};

static const char *const hiers[AWF_HIER_COUNT] = {
#define AWF_X(name, squid) [AWF_HIER_##name] = #squid,
    AWF_HIERS(AWF_X)
#undef AWF_X
};

const char *proxy_tag_name(enum proxy_tag t)
{
    return tags[(unsigned)t < AWF_TAG_COUNT ? t : AWF_TAG_UNSET].name;
}

enum proxy_tag proxy_tag_aborted(enum proxy_tag t)
{
    return (unsigned)t < AWF_TAG_COUNT ? tags[t].aborted : AWF_TAG_NONE_NONE;
}

const char *proxy_hier_name(enum proxy_hier h)
{
    return hiers[(unsigned)h < AWF_HIER_COUNT ? h : AWF_HIER_NONE];
}

/* The canonical host and URL of a decided request, as Squid logs them. Squid replaces a Host
 * header by the URL's authority (so a Host naming something else, or spelt otherwise, logs as
 * the target) but logs "-" when the client sent none; an intercepted request's URL is built
 * from its Host header. Returns false when the request has no usable target (a malformed
 * one), which logs as the client sent it. */
static bool canon_request(struct proxy_conn *c, struct logctx *lc, char *auth, size_t auth_cap,
                          char *url, size_t url_cap, char *dom, size_t dom_cap)
{
    struct proxy_slice hh;
    bool has_host = proxy_http_head_get(&c->head, "Host", &hh);
    struct proxy_target t = c->target;
    if (!t.host.len)
        return false;
    if (c->flags & AWF_CF_INTERCEPT) {
        if (!has_host) /* intercepted TLS: the SNI names it, "sni:port" (SPEC §6) */
            has_host = (c->flags & AWF_CF_CONNECT) != 0;
        else if (proxy_http_parse_authority(hh.p, hh.len, 80, &t) < 0)
            return false;
    }
    bool connect = (c->flags & AWF_CF_CONNECT) != 0;
    bool bumped = c->bump && !connect; /* a request decrypted by ssl-bump: https:// */
    size_t n = proxy_http_canon_authority(t.host, t.port,
                                          connect  ? 0
                                          : bumped ? 443
                                                   : 80,
                                          auth, auth_cap);
    if (!n || !proxy_http_canon_host(t.host, dom, dom_cap))
        return false;
    if (has_host) {
        lc->host = auth;
        lc->host_len = n;
    }
    if (connect) {
        if (n + 1 > url_cap)
            return false;
        memcpy(url, auth, n + 1);
        return true;
    }
    /* What follows the authority, as received: path, query and fragment (Squid keeps all
     * three in %ru); an empty path is "/". */
    struct proxy_slice rest;
    if (c->flags & AWF_CF_INTERCEPT || bumped) {
        rest = proxy_http_head_url_slice(&c->head);
    } else {
        struct proxy_slice u = proxy_http_head_url_slice(&c->head);
        const char *end = c->target.authority.p + c->target.authority.len;
        if (end < u.p || end > u.p + u.len) /* the target came from elsewhere */
            end = u.p + u.len;
        rest = (struct proxy_slice){end, (size_t)(u.p + u.len - end)};
    }
    const char *slash = rest.len && rest.p[0] == '/' ? "" : "/";
    int m = snprintf(url, url_cap, "%s://%s%s%.*s", bumped ? "https" : "http", auth, slash,
                     (int)rest.len, rest.p);
    return m > 0 && (size_t)m < url_cap;
}

void proxy_conn_log(struct proxy_conn *c)
{
    if (!(c->flags & AWF_CF_TXN) || (c->flags & AWF_CF_LOGGED))
        return;
    c->flags |= AWF_CF_LOGGED;
    enum proxy_tag tag = !c->tag                       ? AWF_TAG_NONE_NONE
                         : (c->flags & AWF_CF_ABORTED) ? proxy_tag_aborted(c->tag)
                                                       : c->tag;
    if (proxy_metrics_txn(c, tag) || !c->px->log)
        return;
    char url[8192], auth[AWF_HOST_MAX + 16], dom[AWF_HOST_MAX + 8];
    struct logctx lc = {c, NULL, 0};
    struct awf_log_record r = {0};
    r.start_us = c->start_us;
    r.end_us = proxy_now_us();
    r.client = &c->peer.sa;
    /* Intercepted and NAT'd here: %la:%lp is where the client was headed, as in Squid. */
    r.local = (c->flags & AWF_CF_HAS_ORIG_DST) ? &c->orig_dst.sa : &c->local.sa;
    r.server = (c->flags & AWF_CF_HAS_SERVER) ? &c->server.sa : NULL;
    const char *policy_method = c->log_method;
    if (c->tag != AWF_TAG_UNSET) {
        r.tag = proxy_tag_name(tag);
        /* "NONE": no method could be read (a malformed request line); Squid logs "-". */
        r.method = c->log_method && strcmp(c->log_method, "NONE") != 0 ? c->log_method : NULL;
        r.http_major = c->req.http_major ? c->req.http_major : 1;
        r.http_minor = c->req.http_major ? c->req.http_minor : 1;
        if (c->log_url && strncmp(c->log_url, "error:", 6) == 0) {
            r.url = c->log_url; /* a malformed request: Squid logs no Host for it either */
        } else if (canon_request(c, &lc, auth, sizeof(auth), url, sizeof(url), dom, sizeof(dom))) {
            r.url = url; /* intercepted TLS too: its "sni:port", canonical */
            r.domain = dom;
        } else {
            struct proxy_slice u = proxy_http_head_url_slice(&c->head);
            size_t n = u.len < sizeof(url) - 1 ? u.len : sizeof(url) - 1;
            memcpy(url, u.p, n);
            url[n] = '\0';
            r.url = c->log_url ? c->log_url : url;
        }
    } else {
        /* Nothing was decided: the client left (or timed out) before a complete head. Squid
         * 5.7 logs no method, version 0.0, no Host and no listener address (%la) for it. */
        r.tag = proxy_tag_name(AWF_TAG_NONE_NONE);
        r.url = "error:transaction-end-before-headers";
        r.start_us = r.end_us; /* Squid's %tr is 0 for it, however long the client idled */
        policy_method = "NONE";
    }
    r.status = c->status;
    r.upstream_status = c->upstream_status;
    r.hier = proxy_hier_name(c->hier);
    r.bytes_to_client = c->bytes_out;
    r.bytes_from_client = c->bytes_in;
    /* %mt is the media type alone, as Squid keeps it: "text/html;charset=utf-8" logs
     * "text/html" (%{Content-Type}<h has the whole field). */
    char mime[128];
    if (c->mime && c->mime[0]) {
        size_t n = strcspn(c->mime, "; \t");
        n = n < sizeof(mime) - 1 ? n : sizeof(mime) - 1;
        memcpy(mime, c->mime, n);
        mime[n] = '\0';
        r.mime = mime;
    }
    r.req_header = req_header;
    r.rep_header = rep_header;
    r.header_ctx = &lc;
    /* squid.conf `access_log ... [!]ACL...`: outputs whose condition does not match skip the
     * line. Output i is settings.logs[i], the order the command line opened them in. */
    struct awf_policy_req rq;
    proxy_conn_policy_req(c, policy_method ? policy_method : "NONE", &rq);
    if (r.url == url && !(c->flags & AWF_CF_CONNECT)) { /* url_regex sees what Squid's %ru has */
        rq.url = url;
        rq.url_len = strlen(url);
    }
    for (size_t i = 0; i < c->set->n_logs && i < 32; i++)
        if (c->set->logs[i].cond && !awf_policy_log_wanted(c->policy, i, &rq))
            r.skip |= 1u << i;
    awf_log_write(c->px->log, &r);
    if (c->px->debug && c->why)
        fprintf(stderr, "awf-proxy: debug: %s %s %s: %s\n", r.tag, r.method ? r.method : "-",
                r.url ? r.url : "-", c->why);
}
