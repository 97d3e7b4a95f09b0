/* A request head's target, decided as request.c decides it, without a connection or an answer:
 * request.c answers what these find, and the fuzz target (tests/fuzz/proxy/http) forwards what
 * they pass, so the two cannot drift apart. Pure: calls only http.c. */

#include "common/host.h"
#include "proxy/http.h"

enum proxy_http_form proxy_http_request_form(const llhttp_t *p, const struct proxy_http_head *h)
{
    if (p->method == HTTP_CONNECT)
        return AWF_HTTP_FORM_AUTHORITY;
    struct proxy_slice url = proxy_http_head_url_slice(h);
    return url.len && url.p[0] == '/' ? AWF_HTTP_FORM_ORIGIN : AWF_HTTP_FORM_ABSOLUTE;
}

/* Framing llhttp cannot check for a request it is paused on at its head: a Transfer-Encoding
 * that does not end in chunked leaves the body's length unknown (RFC 9112 6.3), and HTTP/1.0
 * has no Transfer-Encoding at all; a front end and a back end could each find another end. */
static bool bad_framing(const llhttp_t *p)
{
    if (!(p->flags & F_TRANSFER_ENCODING))
        return false;
    return !(p->flags & F_CHUNKED) || (p->http_major == 1 && p->http_minor == 0);
}

enum proxy_http_verdict proxy_http_request_check(const llhttp_t *p, const struct proxy_http_head *h)
{
    /* llhttp 8 passes 2.0, and takes a request line without a version as HTTP/0.9 and still
     * reads fields after it; neither is what the head rewrite sends on. */
    if (p->http_major == 2)
        return AWF_HTTP_VERSION_2;
    if (p->http_major == 0)
        return AWF_HTTP_NO_VERSION;
    /* Two Host fields: which one a later hop believes is anyone's guess. */
    if (bad_framing(p) || proxy_http_head_count(h, "Host") > 1 || p->http_major != 1)
        return AWF_HTTP_BAD;
    return AWF_HTTP_OK;
}

enum proxy_http_verdict proxy_http_request_target(const llhttp_t *p,
                                                  const struct proxy_http_head *h,
                                                  struct proxy_target *t)
{
    struct proxy_slice url = proxy_http_head_url_slice(h), hh;
    bool has_host = proxy_http_head_get(h, "Host", &hh);
    enum proxy_http_form form = proxy_http_request_form(p, h);
    if (form == AWF_HTTP_FORM_AUTHORITY) {
        if (proxy_http_parse_authority(url.p, url.len, 0, t) < 0)
            return AWF_HTTP_BAD;
    } else if (form == AWF_HTTP_FORM_ORIGIN) {
        if (!has_host || proxy_http_parse_authority(hh.p, hh.len, 80, t) < 0)
            return AWF_HTTP_BAD;
        t->path = proxy_http_strip_fragment(url);
    } else if (proxy_http_parse_absolute(url.p, url.len, t) < 0) {
        return AWF_HTTP_BAD;
    }
    if (t->host.len > AWF_HOST_MAX + 1) /* a name and its trailing dot: none is longer */
        return AWF_HTTP_BAD_HOST;
    if (form == AWF_HTTP_FORM_ABSOLUTE && has_host) {
        /* A Host field naming another host than the URI could steer a later hop (or a virtual
         * host) elsewhere than the policy decided. */
        struct proxy_target ht;
        if (proxy_http_parse_authority(hh.p, hh.len, 80, &ht) < 0)
            return AWF_HTTP_BAD_HOST; /* not a host at all: malformed, not a policy matter */
        if (!proxy_http_same_host(ht.host, t->host))
            return AWF_HTTP_OTHER_HOST;
    }
    return AWF_HTTP_OK;
}
