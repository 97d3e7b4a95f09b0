#include "proxy/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

void awf_http_head_init(struct awf_http_head *h, size_t max_bytes, size_t max_fields)
{
    memset(h, 0, sizeof(*h));
    h->max_bytes = max_bytes;
    h->max_fields = max_fields;
}

void awf_http_head_reset(struct awf_http_head *h)
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

void awf_http_head_free(struct awf_http_head *h)
{
    free(h->buf);
    free(h->fields);
    h->buf = NULL;
    h->fields = NULL;
    h->cap = h->cap_fields = h->len = h->n_fields = 0;
}

static int append(struct awf_http_head *h, const char *p, size_t n)
{
    if (h->len + n > h->max_bytes)
        return AWF_E_TOO_BIG;
    if (h->len + n > h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
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
    memcpy(h->buf + h->len, p, n);
    h->len += n;
    return 0;
}

int awf_http_head_url(struct awf_http_head *h, const char *p, size_t n)
{
    if (h->url_len == 0)
        h->url_off = (uint32_t)h->len;
    int rc = append(h, p, n);
    if (rc == 0)
        h->url_len += (uint32_t)n;
    return rc;
}

int awf_http_head_name(struct awf_http_head *h, const char *p, size_t n)
{
    /* llhttp lets whitespace before the colon through ("Host : x"); RFC 9112 says reject. */
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ' || p[i] == '\t')
            return AWF_E_BAD_REQUEST;
    if (h->in_value || h->n_fields == 0) {
        if (h->n_fields >= h->max_fields)
            return AWF_E_TOO_BIG;
        if (h->n_fields == h->cap_fields) {
            size_t cap = h->cap_fields ? h->cap_fields * 2 : 16;
            struct awf_http_field *nf = realloc(h->fields, cap * sizeof(*nf));
            if (!nf)
                return -ENOMEM;
            h->fields = nf;
            h->cap_fields = cap;
        }
        struct awf_http_field *f = &h->fields[h->n_fields++];
        f->name_off = (uint32_t)h->len;
        f->name_len = 0;
        f->value_off = 0;
        f->value_len = 0;
        h->in_value = false;
    }
    struct awf_http_field *f = &h->fields[h->n_fields - 1];
    int rc = append(h, p, n);
    if (rc == 0) {
        f->name_len += (uint32_t)n;
        f->value_off = (uint32_t)h->len;
    }
    return rc;
}

int awf_http_head_value(struct awf_http_head *h, const char *p, size_t n)
{
    if (h->n_fields == 0)
        return AWF_E_BAD_REQUEST;
    struct awf_http_field *f = &h->fields[h->n_fields - 1];
    if (!h->in_value) {
        h->in_value = true;
        f->value_off = (uint32_t)h->len;
    }
    int rc = append(h, p, n);
    if (rc == 0)
        f->value_len += (uint32_t)n;
    return rc;
}

struct awf_slice awf_http_head_url_slice(const struct awf_http_head *h)
{
    return (struct awf_slice){h->buf ? h->buf + h->url_off : "", h->url_len};
}

struct awf_slice awf_http_field_name(const struct awf_http_head *h, size_t i)
{
    return (struct awf_slice){h->buf + h->fields[i].name_off, h->fields[i].name_len};
}

static struct awf_slice trim(struct awf_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

struct awf_slice awf_http_field_value(const struct awf_http_head *h, size_t i)
{
    struct awf_slice v = {h->buf + h->fields[i].value_off, h->fields[i].value_len};
    return trim(v);
}

static bool slice_ieq(struct awf_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

bool awf_http_head_get(const struct awf_http_head *h, const char *name, struct awf_slice *out)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (slice_ieq(awf_http_field_name(h, i), name)) {
            *out = awf_http_field_value(h, i);
            return true;
        }
    }
    return false;
}

/* Calls fn for each trimmed, non-empty element of a comma-separated list; stops on true. */
static bool list_any(struct awf_slice list, bool (*fn)(struct awf_slice, const void *),
                     const void *arg)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.p[j] != ',')
            j++;
        struct awf_slice el = trim((struct awf_slice){list.p + i, j - i});
        if (el.len && fn(el, arg))
            return true;
        i = j + 1;
    }
    return false;
}

static bool el_is(struct awf_slice el, const void *token)
{
    return slice_ieq(el, token);
}

bool awf_http_has_token(struct awf_slice list, const char *token)
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
static int parse_hostport(const char *s, size_t n, uint16_t default_port, struct awf_target *t)
{
    size_t i = 0;
    t->authority = (struct awf_slice){s, n};
    if (n == 0)
        return AWF_E_BAD_REQUEST;
    if (s[0] == '[') {
        size_t j = 1;
        while (j < n && s[j] != ']') {
            if (!v6_char((unsigned char)s[j]))
                return AWF_E_BAD_REQUEST;
            j++;
        }
        if (j >= n || j == 1)
            return AWF_E_BAD_REQUEST;
        t->host = (struct awf_slice){s + 1, j - 1};
        i = j + 1;
    } else {
        while (i < n && s[i] != ':') {
            if (!host_char((unsigned char)s[i]))
                return AWF_E_BAD_REQUEST;
            i++;
        }
        if (i == 0)
            return AWF_E_BAD_REQUEST;
        t->host = (struct awf_slice){s, i};
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

int awf_http_parse_authority(const char *s, size_t n, uint16_t default_port, struct awf_target *out)
{
    memset(out, 0, sizeof(*out));
    return parse_hostport(s, n, default_port, out);
}

int awf_http_parse_absolute(const char *s, size_t n, struct awf_target *out)
{
    static const char scheme[] = "http://";
    const size_t sl = sizeof(scheme) - 1;
    memset(out, 0, sizeof(*out));
    if (n < sl || strncasecmp(s, scheme, sl) != 0)
        return AWF_E_BAD_REQUEST;
    size_t a = sl, e = sl;
    while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
        e++;
    for (size_t i = a; i < e; i++)
        if (s[i] == '@') /* userinfo: credentials in URLs are refused, as browsers do */
            return AWF_E_BAD_REQUEST;
    int rc = parse_hostport(s + a, e - a, 80, out);
    if (rc < 0)
        return rc;
    out->path = (struct awf_slice){s + e, n - e};
    return 0;
}

static struct awf_slice host_norm(struct awf_slice h)
{
    if (h.len >= 2 && h.p[0] == '[' && h.p[h.len - 1] == ']') {
        h.p++;
        h.len -= 2;
    }
    if (h.len && h.p[h.len - 1] == '.')
        h.len--;
    return h;
}

bool awf_http_same_host(struct awf_slice a, struct awf_slice b)
{
    a = host_norm(a);
    b = host_norm(b);
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

bool awf_http_is_websocket(const struct awf_http_head *h)
{
    struct awf_slice up, conn;
    bool has_conn_upgrade = false;
    if (!awf_http_head_get(h, "Upgrade", &up) || !awf_http_has_token(up, "websocket"))
        return false;
    for (size_t i = 0; i < h->n_fields; i++) {
        if (slice_ieq(awf_http_field_name(h, i), "Connection")) {
            conn = awf_http_field_value(h, i);
            if (awf_http_has_token(conn, "upgrade"))
                has_conn_upgrade = true;
        }
    }
    return has_conn_upgrade;
}

/* Whether a Connection field of h names field name. */
static bool named_by_connection(const struct awf_http_head *h, struct awf_slice name)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (!slice_ieq(awf_http_field_name(h, i), "Connection"))
            continue;
        struct awf_slice v = awf_http_field_value(h, i);
        size_t k = 0;
        while (k <= v.len) {
            size_t j = k;
            while (j < v.len && v.p[j] != ',')
                j++;
            struct awf_slice el = trim((struct awf_slice){v.p + k, j - k});
            if (el.len == name.len && strncasecmp(el.p, name.p, el.len) == 0)
                return true;
            k = j + 1;
        }
    }
    return false;
}

static bool drop_field(const struct awf_http_head *h, struct awf_slice name, bool websocket)
{
    static const char *const hop[] = {"Connection", "Proxy-Connection",    "Keep-Alive", "TE",
                                      "Trailer",    "Proxy-Authorization", "Host"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (slice_ieq(name, hop[i]))
            return true;
    if (slice_ieq(name, "Upgrade"))
        return !websocket;
    if (slice_ieq(name, "Content-Length") || slice_ieq(name, "Transfer-Encoding"))
        return false;
    return named_by_connection(h, name);
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

size_t awf_http_rewrite_head(const struct awf_http_head *h, const char *method, unsigned major,
                             unsigned minor, const struct awf_target *t, bool websocket, char *out,
                             size_t cap)
{
    struct out o = {out, cap, 0};
    char ver[24];
    puts_(&o, method);
    put(&o, " ", 1);
    if (t->path.len == 0 || t->path.p[0] != '/')
        put(&o, "/", 1);
    put(&o, t->path.p, t->path.len);
    int vn = snprintf(ver, sizeof(ver), " HTTP/%u.%u", major % 10, minor % 10);
    put(&o, ver, (size_t)vn);
    puts_(&o, "\r\nHost: ");
    put(&o, t->authority.p, t->authority.len);
    put(&o, "\r\n", 2);
    for (size_t i = 0; i < h->n_fields; i++) {
        struct awf_slice name = awf_http_field_name(h, i);
        if (drop_field(h, name, websocket))
            continue;
        struct awf_slice v = awf_http_field_value(h, i);
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
