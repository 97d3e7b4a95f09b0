#include "proxy/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

void proxy_http_head_init(struct proxy_http_head *h, size_t max_bytes, size_t max_fields)
{
    memset(h, 0, sizeof(*h));
    h->max_bytes = max_bytes;
    h->max_fields = max_fields;
}

void proxy_http_head_reset(struct proxy_http_head *h)
{
    /* Heads of one connection are alike in size, so the memory is kept; a head that grew large
     * (a one-off big cookie) is released so an idle keep-alive connection stays small. */
    if (h->cap > 8192) {
        free(h->buf);
        h->buf = NULL;
        h->cap = 0;
    }
    if (h->cap_fields > 64) {
        free(h->fields);
        h->fields = NULL;
        h->cap_fields = 0;
    }
    h->len = 0;
    h->n_fields = 0;
    h->url_off = h->url_len = 0;
    h->in_value = false;
}

void proxy_http_head_free(struct proxy_http_head *h)
{
    free(h->buf);
    free(h->fields);
    h->buf = NULL;
    h->fields = NULL;
    h->cap = h->cap_fields = h->len = h->n_fields = 0;
}

void proxy_http_head_compact(struct proxy_http_head *h)
{
    /* A failed shrink leaves the larger block, which is as good. */
    if (h->len == 0) {
        free(h->buf);
        h->buf = NULL;
        h->cap = 0;
    } else if (h->len < h->cap) {
        char *nb = realloc(h->buf, h->len);
        if (nb) {
            h->buf = nb;
            h->cap = h->len;
        }
    }
    if (h->n_fields == 0) {
        free(h->fields);
        h->fields = NULL;
        h->cap_fields = 0;
    } else if (h->n_fields < h->cap_fields) {
        struct proxy_http_field *nf = realloc(h->fields, h->n_fields * sizeof(*nf));
        if (nf) {
            h->fields = nf;
            h->cap_fields = h->n_fields;
        }
    }
}

static int append(struct proxy_http_head *h, const char *p, size_t n)
{
    if (h->len + n > h->max_bytes)
        return AWF_E_TOO_BIG;
    if (h->len + n > h->cap) {
        /* From 1 KiB, also after a compacted head: most heads fit, few reallocs. */
        size_t cap = h->cap > 1024 ? h->cap : 1024;
        while (cap < h->len + n)
            cap *= 2;
        if (cap > h->max_bytes)
            cap = h->max_bytes;
        char *nb = realloc(h->buf, cap);
        if (!nb)
            return -ENOMEM;
        h->buf = nb;
        h->cap = cap;
    }
    if (n) /* llhttp hands over empty pieces (an empty value) while buf may still be NULL */
        memcpy(h->buf + h->len, p, n);
    h->len += n;
    return 0;
}

int proxy_http_head_url(struct proxy_http_head *h, const char *p, size_t n)
{
    if (h->url_len == 0)
        h->url_off = (uint32_t)h->len;
    int rc = append(h, p, n);
    if (rc == 0)
        h->url_len += (uint32_t)n;
    return rc;
}

int proxy_http_head_name(struct proxy_http_head *h, const char *p, size_t n)
{
    /* llhttp lets whitespace before the colon through ("Host : x"); RFC 9112 says reject. */
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ' || p[i] == '\t')
            return AWF_E_BAD_REQUEST;
    if (h->in_value || h->n_fields == 0) {
        if (h->n_fields >= h->max_fields)
            return AWF_E_TOO_BIG;
        if (h->n_fields == h->cap_fields) {
            size_t cap = h->cap_fields >= 16 ? h->cap_fields * 2 : 16;
            struct proxy_http_field *nf = realloc(h->fields, cap * sizeof(*nf));
            if (!nf)
                return -ENOMEM;
            h->fields = nf;
            h->cap_fields = cap;
        }
        struct proxy_http_field *f = &h->fields[h->n_fields++];
        f->name_off = (uint32_t)h->len;
        f->name_len = 0;
        f->value_off = 0;
        f->value_len = 0;
        h->in_value = false;
    }
    struct proxy_http_field *f = &h->fields[h->n_fields - 1];
    int rc = append(h, p, n);
    if (rc == 0) {
        f->name_len += (uint32_t)n;
        f->value_off = (uint32_t)h->len;
    }
    return rc;
}

int proxy_http_head_value(struct proxy_http_head *h, const char *p, size_t n)
{
    if (h->n_fields == 0)
        return AWF_E_BAD_REQUEST;
    struct proxy_http_field *f = &h->fields[h->n_fields - 1];
    if (!h->in_value) {
        h->in_value = true;
        f->value_off = (uint32_t)h->len;
    }
    int rc = append(h, p, n);
    if (rc == 0)
        f->value_len += (uint32_t)n;
    return rc;
}

struct proxy_slice proxy_http_head_url_slice(const struct proxy_http_head *h)
{
    return (struct proxy_slice){h->buf ? h->buf + h->url_off : "", h->url_len};
}

struct proxy_slice proxy_http_field_name(const struct proxy_http_head *h, size_t i)
{
    return (struct proxy_slice){h->buf + h->fields[i].name_off, h->fields[i].name_len};
}

static struct proxy_slice trim(struct proxy_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

struct proxy_slice proxy_http_field_value(const struct proxy_http_head *h, size_t i)
{
    struct proxy_slice v = {h->buf + h->fields[i].value_off, h->fields[i].value_len};
    return trim(v);
}

static bool slice_ieq(struct proxy_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

bool proxy_http_head_get(const struct proxy_http_head *h, const char *name, struct proxy_slice *out)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (slice_ieq(proxy_http_field_name(h, i), name)) {
            *out = proxy_http_field_value(h, i);
            return true;
        }
    }
    return false;
}

size_t proxy_http_head_count(const struct proxy_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_fields; i++)
        n += slice_ieq(proxy_http_field_name(h, i), name);
    return n;
}

/* Calls fn for each trimmed, non-empty element of a comma-separated list; stops on true. */
static bool list_any(struct proxy_slice list, bool (*fn)(struct proxy_slice, const void *),
                     const void *arg)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.p[j] != ',')
            j++;
        struct proxy_slice el = trim((struct proxy_slice){list.p + i, j - i});
        if (el.len && fn(el, arg))
            return true;
        i = j + 1;
    }
    return false;
}

static bool el_is(struct proxy_slice el, const void *token)
{
    return slice_ieq(el, token);
}

bool proxy_http_has_token(struct proxy_slice list, const char *token)
{
    return list_any(list, el_is, token);
}

static bool host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

static bool v6_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || (ch >= '0' && ch <= '9') ||
           ch == ':' || ch == '.';
}

/* Parses "host[:port]" exactly (the whole of s). */
static int parse_hostport(const char *s, size_t n, uint16_t default_port, struct proxy_target *t)
{
    size_t i = 0;
    t->authority = (struct proxy_slice){s, n};
    if (n == 0)
        return AWF_E_BAD_REQUEST;
    if (s[0] == '[') {
        size_t j = 1;
        while (j < n && s[j] != ']') {
            if (!v6_char((unsigned char)s[j]))
                return AWF_E_BAD_REQUEST;
            j++;
        }
        if (j >= n || j == 1 || j - 1 >= INET6_ADDRSTRLEN)
            return AWF_E_BAD_REQUEST;
        /* "[cafe]" passes the character check but is no address: the policy would take it for
         * a name, and the resolver would be asked about it. */
        char a[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        memcpy(a, s + 1, j - 1);
        a[j - 1] = '\0';
        if (inet_pton(AF_INET6, a, &a6) != 1)
            return AWF_E_BAD_REQUEST;
        t->host = (struct proxy_slice){s + 1, j - 1};
        i = j + 1;
    } else {
        while (i < n && s[i] != ':') {
            if (!host_char((unsigned char)s[i]))
                return AWF_E_BAD_REQUEST;
            i++;
        }
        if (i == 0)
            return AWF_E_BAD_REQUEST;
        t->host = (struct proxy_slice){s, i};
    }
    if (i == n) {
        if (default_port == 0)
            return AWF_E_BAD_REQUEST;
        t->port = default_port;
        return 0;
    }
    if (s[i] != ':' || i + 1 == n || n - (i + 1) > 5)
        return AWF_E_BAD_REQUEST;
    unsigned long port = 0;
    for (size_t j = i + 1; j < n; j++) {
        if (s[j] < '0' || s[j] > '9')
            return AWF_E_BAD_REQUEST;
        port = port * 10 + (unsigned long)(s[j] - '0');
    }
    if (port == 0 || port > 65535)
        return AWF_E_BAD_REQUEST;
    t->port = (uint16_t)port;
    return 0;
}

int proxy_http_parse_authority(const char *s, size_t n, uint16_t default_port,
                               struct proxy_target *out)
{
    memset(out, 0, sizeof(*out));
    return parse_hostport(s, n, default_port, out);
}

int proxy_http_parse_absolute(const char *s, size_t n, struct proxy_target *out)
{
    static const char scheme[] = "http://";
    const size_t sl = sizeof(scheme) - 1;
    memset(out, 0, sizeof(*out));
    if (n < sl || strncasecmp(s, scheme, sl) != 0)
        return AWF_E_BAD_REQUEST;
    size_t a = sl, e = sl;
    while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
        e++;
    /* userinfo ("user:pass@"): Squid 5.7 takes it, logs the URL without it and sends it on as
     * Authorization (measured); the host starts after the last '@'. */
    for (size_t i = e; i > a; i--) {
        if (s[i - 1] != '@')
            continue;
        for (size_t j = a; j < i - 1; j++)
            if ((unsigned char)s[j] <= 0x20 || (unsigned char)s[j] >= 0x7f)
                return AWF_E_BAD_REQUEST;
        out->userinfo = (struct proxy_slice){s + a, i - 1 - a};
        a = i;
        break;
    }
    struct proxy_slice ui = out->userinfo;
    int rc = parse_hostport(s + a, e - a, 80, out);
    out->userinfo = ui;
    if (rc < 0)
        return rc;
    out->path = proxy_http_strip_fragment((struct proxy_slice){s + e, n - e});
    return 0;
}

struct proxy_slice proxy_http_strip_fragment(struct proxy_slice target)
{
    const char *hash = target.len ? memchr(target.p, '#', target.len) : NULL;
    if (hash)
        target.len = (size_t)(hash - target.p);
    return target;
}

static struct proxy_slice host_norm(struct proxy_slice h)
{
    if (h.len >= 2 && h.p[0] == '[' && h.p[h.len - 1] == ']') {
        h.p++;
        h.len -= 2;
    }
    if (h.len && h.p[h.len - 1] == '.')
        h.len--;
    return h;
}

/* An IPv4 address as inet_aton reads it: Squid (getaddrinfo with AI_NUMERICHOST) takes every
 * spelling inet_aton does, and logs the dotted quad. Only [0-9a-fA-Fx.] can be one. */
static bool lenient_ipv4(const char *s, size_t n, struct in_addr *a)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf) || s[0] < '0' || s[0] > '9')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
              ch == 'x' || ch == 'X' || ch == '.'))
            return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_aton(buf, a) != 0;
}

size_t proxy_http_canon_host(struct proxy_slice host, char *out, size_t cap)
{
    struct proxy_slice h = host_norm(host);
    char tmp[INET6_ADDRSTRLEN + 2];
    struct in6_addr a6;
    struct in_addr a4;
    size_t n = 0;
    if (h.len && h.len < INET6_ADDRSTRLEN && memchr(h.p, ':', h.len)) {
        memcpy(tmp, h.p, h.len);
        tmp[h.len] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) == 1) {
            if (IN6_IS_ADDR_V4MAPPED(&a6)) {
                inet_ntop(AF_INET, &a6.s6_addr[12], tmp, sizeof(tmp));
                n = strlen(tmp);
            } else {
                tmp[0] = '[';
                inet_ntop(AF_INET6, &a6, tmp + 1, INET6_ADDRSTRLEN);
                n = strlen(tmp);
                tmp[n++] = ']';
                tmp[n] = '\0';
            }
            if (n + 1 > cap)
                return 0;
            memcpy(out, tmp, n + 1);
            return n;
        }
    }
    if (lenient_ipv4(h.p, h.len, &a4)) {
        inet_ntop(AF_INET, &a4, tmp, sizeof(tmp));
        n = strlen(tmp);
        if (n + 1 > cap)
            return 0;
        memcpy(out, tmp, n + 1);
        return n;
    }
    if (h.len + 1 > cap)
        return 0;
    for (size_t i = 0; i < h.len; i++) {
        char ch = h.p[i];
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[h.len] = '\0';
    return h.len;
}

size_t proxy_http_canon_authority(struct proxy_slice host, uint16_t port, uint16_t default_port,
                                  char *out, size_t cap)
{
    size_t n = proxy_http_canon_host(host, out, cap);
    if (n == 0 || port == default_port)
        return n;
    int m = snprintf(out + n, cap - n, ":%u", (unsigned)port);
    if (m < 0 || (size_t)m >= cap - n)
        return 0;
    return n + (size_t)m;
}

bool proxy_http_same_host(struct proxy_slice a, struct proxy_slice b)
{
    a = host_norm(a);
    b = host_norm(b);
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

bool proxy_http_is_websocket(const struct proxy_http_head *h)
{
    struct proxy_slice up, conn;
    bool has_conn_upgrade = false;
    if (!proxy_http_head_get(h, "Upgrade", &up) || !proxy_http_has_token(up, "websocket"))
        return false;
    for (size_t i = 0; i < h->n_fields; i++) {
        if (slice_ieq(proxy_http_field_name(h, i), "Connection")) {
            conn = proxy_http_field_value(h, i);
            if (proxy_http_has_token(conn, "upgrade"))
                has_conn_upgrade = true;
        }
    }
    return has_conn_upgrade;
}

/* The field names the Connection fields name, gathered once per head so that dropping them
 * costs one pass over the fields rather than a list scan per field. More than AWF_CONN_TOKENS
 * names (no real client sends that many) fall back to scanning the lists. */
#define AWF_CONN_TOKENS 16

struct conn_tokens {
    struct proxy_slice tok[AWF_CONN_TOKENS];
    size_t n;
    bool overflow;
};

static bool add_token(struct proxy_slice el, const void *arg)
{
    struct conn_tokens *ct = (struct conn_tokens *)(uintptr_t)arg;
    if (ct->n == AWF_CONN_TOKENS)
        ct->overflow = true;
    else
        ct->tok[ct->n++] = el;
    return false;
}

static bool token_named(const struct conn_tokens *ct, struct proxy_slice name)
{
    for (size_t i = 0; i < ct->n; i++)
        if (ct->tok[i].len == name.len && strncasecmp(ct->tok[i].p, name.p, name.len) == 0)
            return true;
    return false;
}

static bool el_is_slice(struct proxy_slice el, const void *name)
{
    const struct proxy_slice *n = name;
    return el.len == n->len && strncasecmp(el.p, n->p, el.len) == 0;
}

/* Whether name is a hop-by-hop field of a request (extra) or of any message. Host is in the
 * request list because the rewritten head carries its own. X-Forwarded-For is dropped as AWF's
 * `forwarded_for delete` does: it would tell the origin the agent's address. */
static bool hop_by_hop(struct proxy_slice name, bool request, bool keep_upgrade)
{
    static const char *const hop[] = {"Connection", "Proxy-Connection", "Keep-Alive", "TE",
                                      "Trailer"};
    static const char *const req_only[] = {"Proxy-Authorization", "Host", "X-Forwarded-For"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (slice_ieq(name, hop[i]))
            return true;
    if (request)
        for (size_t i = 0; i < sizeof(req_only) / sizeof(req_only[0]); i++)
            if (slice_ieq(name, req_only[i]))
                return true;
    return slice_ieq(name, "Upgrade") && !keep_upgrade;
}

static bool framing(struct proxy_slice name)
{
    return slice_ieq(name, "Content-Length") || slice_ieq(name, "Transfer-Encoding");
}

static void request_tokens(const struct proxy_http_head *h, struct conn_tokens *ct)
{
    ct->n = 0;
    ct->overflow = false;
    for (size_t i = 0; i < h->n_fields; i++)
        if (slice_ieq(proxy_http_field_name(h, i), "Connection"))
            list_any(proxy_http_field_value(h, i), add_token, ct);
}

static bool drop_field(const struct proxy_http_head *h, const struct conn_tokens *ct,
                       struct proxy_slice name, bool websocket)
{
    if (hop_by_hop(name, true, websocket))
        return true;
    /* Never dropped for being named: Connection names Upgrade in every upgrade request, and
     * dropping framing fields would change where the message ends. */
    if (framing(name) || slice_ieq(name, "Upgrade"))
        return false;
    if (token_named(ct, name))
        return true;
    if (!ct->overflow)
        return false;
    for (size_t i = 0; i < h->n_fields; i++)
        if (slice_ieq(proxy_http_field_name(h, i), "Connection") &&
            list_any(proxy_http_field_value(h, i), el_is_slice, &name))
            return true;
    return false;
}

struct out {
    char *p;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;
        memcpy(o->p + o->len, s, k);
    }
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Base64 (RFC 4648, padded) of s[0, n) into o, for a Basic Authorization from a URL's userinfo. */
static void put_base64(struct out *o, const char *s, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        char q[4] = {al[v >> 18 & 63], al[v >> 12 & 63], i + 1 < n ? al[v >> 6 & 63] : '=',
                     i + 2 < n ? al[v & 63] : '='};
        put(o, q, 4);
    }
}

size_t proxy_http_rewrite_bound(const struct proxy_http_head *h, const char *method,
                                const struct proxy_target *t)
{
    /* Every field is written at most once with ": " and CRLF (4 bytes) around its name and
     * value, both already counted in h->len, as the path is (it is part of the URL). */
    /* An absolute-form line (a parent proxy) adds "http://", the host with brackets and ":port";
     * the canonical Host is at most the host as written, brackets and ":port"; the
     * Authorization from a userinfo is its base64 and 25 bytes around it. */
    return h->len + 4 * h->n_fields + strlen(method) + t->authority.len + 2 * t->host.len +
           t->path.len + 4 * (t->userinfo.len / 3 + 1) + 136;
}

size_t proxy_http_rewrite_head(const struct proxy_http_head *h, const char *method, unsigned major,
                               unsigned minor, const struct proxy_target *t, unsigned flags,
                               char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    struct conn_tokens ct;
    char ver[24];
    bool websocket = (flags & AWF_HTTP_REQ_WEBSOCKET) != 0;
    request_tokens(h, &ct);
    puts_(&o, method);
    put(&o, " ", 1);
    if (flags & AWF_HTTP_REQ_ABSOLUTE) {
        /* Written from the decided host and port, as Squid does ("http://host:port/path",
         * ":80" left out), not from what the client wrote: an intercepted request's port may
         * come from the original destination rather than its Host header. */
        bool v6 = memchr(t->host.p, ':', t->host.len) != NULL;
        puts_(&o, v6 ? "http://[" : "http://");
        put(&o, t->host.p, t->host.len);
        if (v6)
            put(&o, "]", 1);
        if (t->port != 80) {
            char port[8];
            int pn = snprintf(port, sizeof(port), ":%u", (unsigned)t->port);
            put(&o, port, (size_t)pn);
        }
    }
    if (t->path.len == 0 || t->path.p[0] != '/')
        put(&o, "/", 1);
    put(&o, t->path.p, t->path.len);
    int vn = snprintf(ver, sizeof(ver), " HTTP/%u.%u", major % 10, minor % 10);
    put(&o, ver, (size_t)vn);
    puts_(&o, "\r\nHost: ");
    /* As Squid sends it (measured, 5.7): "ALLOWED.test.:8080" goes on as "allowed.test:8080" and
     * "h:80" as "h", so a virtual host sees one spelling whatever the client wrote. */
    char auth[320]; /* a longer host (no DNS name is) goes on as written */
    size_t an = proxy_http_canon_authority(t->host, t->port, (flags & AWF_HTTP_REQ_TLS) ? 443 : 80,
                                           auth, sizeof(auth));
    if (an)
        put(&o, auth, an);
    else
        put(&o, t->authority.p, t->authority.len);
    put(&o, "\r\n", 2);
    bool auth_sent = false;
    for (size_t i = 0; i < h->n_fields && !auth_sent; i++)
        auth_sent = slice_ieq(proxy_http_field_name(h, i), "Authorization");
    if (t->userinfo.len && !auth_sent && !(flags & AWF_HTTP_REQ_ABSOLUTE)) {
        puts_(&o, "Authorization: Basic ");
        put_base64(&o, t->userinfo.p, t->userinfo.len);
        put(&o, "\r\n", 2);
    }
    for (size_t i = 0; i < h->n_fields; i++) {
        struct proxy_slice name = proxy_http_field_name(h, i);
        if (drop_field(h, &ct, name, websocket))
            continue;
        struct proxy_slice v = proxy_http_field_value(h, i);
        put(&o, name.p, name.len);
        put(&o, ": ", 2);
        put(&o, v.p, v.len);
        put(&o, "\r\n", 2);
    }
    if (websocket)
        puts_(&o, "Connection: Upgrade\r\n");
    put(&o, "\r\n", 2);
    return o.len;
}

/* ---- response heads ---- */

/* The next line of a head: [*pos, end of line), CRLF or LF excluded; *pos moves past it. */
static struct proxy_slice next_line(const char *head, size_t n, size_t *pos)
{
    size_t i = *pos, j = i;
    while (j < n && head[j] != '\n')
        j++;
    *pos = j < n ? j + 1 : n;
    if (j > i && head[j - 1] == '\r')
        j--;
    return (struct proxy_slice){head + i, j - i};
}

static bool split_field(struct proxy_slice line, struct proxy_slice *name,
                        struct proxy_slice *value)
{
    const char *colon = memchr(line.p, ':', line.len);
    if (!colon)
        return false;
    *name = (struct proxy_slice){line.p, (size_t)(colon - line.p)};
    *value = trim((struct proxy_slice){colon + 1, line.len - name->len - 1});
    return true;
}

size_t proxy_http_rewrite_response(const char *head, size_t n, unsigned flags, char *out,
                                   size_t cap)
{
    struct out o = {out, cap, 0};
    struct conn_tokens ct = {.n = 0};
    struct proxy_slice line, name, value;
    size_t pos = 0;
    next_line(head, n, &pos); /* the status line */
    size_t fields = pos;
    while (pos < n && (line = next_line(head, n, &pos)).len)
        if (line.p[0] != ' ' && line.p[0] != '\t' && split_field(line, &name, &value) &&
            slice_ieq(name, "Connection"))
            list_any(value, add_token, &ct);
    /* A proxy sends its own HTTP version (RFC 9110 §6.2), as Squid does: an HTTP/1.0 server's
     * status line goes out as HTTP/1.1. Only the version changes; the message keeps the
     * framing it came with (a body without length still ends at the close). */
    if (fields >= 8 && memcmp(head, "HTTP/1.0", 8) == 0) {
        puts_(&o, "HTTP/1.1");
        put(&o, head + 8, fields - 8);
    } else {
        put(&o, head, fields);
    }
    pos = fields;
    bool keep = true;
    while (pos < n) {
        size_t start = pos;
        line = next_line(head, n, &pos);
        if (!line.len)
            break;
        if (line.p[0] != ' ' && line.p[0] != '\t') { /* not an obs-fold continuation */
            keep = true;
            if (split_field(line, &name, &value))
                keep =
                    !hop_by_hop(name, false, false) && (framing(name) || !token_named(&ct, name));
            /* Beyond AWF_CONN_TOKENS names, the rest of the fields the server listed pass:
             * a response's extra fields steer nothing upstream. */
        }
        if (keep)
            put(&o, head + start, pos - start);
    }
    if (flags & AWF_HTTP_RESP_CLOSE)
        puts_(&o, "Connection: close\r\n");
    else if (flags & AWF_HTTP_RESP_KEEP_ALIVE)
        puts_(&o, "Connection: keep-alive\r\n");
    put(&o, "\r\n", 2);
    return o.len;
}

bool proxy_http_bare_cr(const char *p, size_t n, char prev, bool last)
{
    if (n && prev == '\r' && p[0] != '\n')
        return true;
    for (const char *cr = memchr(p, '\r', n); cr;
         cr = memchr(cr + 1, '\r', n - (size_t)(cr + 1 - p))) {
        if (cr + 1 == p + n)
            return last;
        if (cr[1] != '\n')
            return true;
    }
    return false;
}

/* ---- a request head read with llhttp ---- */

static int reader_rc(struct proxy_http_reader *r, int rc)
{
    if (rc < 0) {
        r->err = rc;
        return HPE_USER;
    }
    return 0;
}

int proxy_http_on_url(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_reader *r = p->data;
    return reader_rc(r, proxy_http_head_url(r->head, at, n));
}

int proxy_http_on_field(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_reader *r = p->data;
    return reader_rc(r, proxy_http_head_name(r->head, at, n));
}

int proxy_http_on_value(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_reader *r = p->data;
    /* llhttp (8.x, non-lenient) still accepts obs-fold and hands the continuation over as a
     * second value piece that starts right after a line end. A piece that merely continues a
     * value split across reads starts at the buffer start with a value byte before it. */
    char before = at > r->base ? at[-1] : r->prev;
    if (before == '\n')
        return reader_rc(r, AWF_E_BAD_REQUEST);
    return reader_rc(r, proxy_http_head_value(r->head, at, n));
}

int proxy_http_on_head_done(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* decide before any body byte moves */
}

llhttp_errno_t proxy_http_execute(struct proxy_http_reader *r, llhttp_t *p, const char *d, size_t n,
                                  size_t *used)
{
    r->base = d;
    r->err = 0;
    llhttp_errno_t e = llhttp_execute(p, d, n);
    if (e == HPE_OK) {
        *used = n;
    } else {
        const char *pos = llhttp_get_error_pos(p);
        *used = pos && pos >= d && pos <= d + n ? (size_t)(pos - d) : n;
    }
    if (*used)
        r->prev = d[*used - 1];
    return e;
}

llhttp_errno_t proxy_http_read_head(struct proxy_http_reader *r, llhttp_t *p, const char *d,
                                    size_t n, bool more, size_t *used)
{
    char prev = more ? r->prev : 0;
    llhttp_errno_t e = proxy_http_execute(r, p, d, n, used);
    if (proxy_http_bare_cr(d, *used, prev, e == HPE_PAUSED))
        e = HPE_INVALID_HEADER_TOKEN; /* refused like any malformed head */
    return e;
}
