/* The first non-TLS bytes of a CONNECT tunnel, told apart (sniff.h). Generous on purpose: a
 * byte sequence some server would parse as a request must come out as HTTP (and be checked);
 * what no server would is opaque, and opaque bytes are denied unless the policy allows them. */

#include "proxy/sniff.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof(preface) - 1)

/* RFC 9110 tchar. */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Separators inside a request line: lenient servers take runs of any of these (a bare CR is
 * turned into a space by RFC 9112 recipients that do not reject it). */
static bool sep(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* "NAME/digit...": HTTP/1.1, http/1.0, HTTP/2.0, RTSP/1.0 (llhttp knows RTSP and ICE). */
static bool version_word(const char *w, size_t n)
{
    size_t i = 0;
    while (i < n && ((w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= 'a' && w[i] <= 'z')))
        i++;
    return i > 0 && i + 1 < n && w[i] == '/' && w[i + 1] >= '0' && w[i + 1] <= '9';
}

static struct proxy_slice trim(const char *p, size_t n)
{
    while (n && (p[0] == ' ' || p[0] == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    return (struct proxy_slice){p, n};
}

/* The request line p[0..n) (its LF and one CR before it removed): method, target and whether
 * it is a request at all (1: HTTP/1.x, 2: HTTP/0.9, 0: no server takes it as a request). */
static int request_line(const char *p, size_t n, struct proxy_sniffed *out)
{
    size_t i = 0, nw = 0, prev_end = 0;
    while (i < n) {
        while (i < n && sep((unsigned char)p[i]))
            i++;
        size_t s = i;
        while (i < n && !sep((unsigned char)p[i]))
            i++;
        if (i == s)
            break;
        if (nw == 0)
            out->method = (struct proxy_slice){p + s, i - s};
        else if (nw == 1)
            out->target = (struct proxy_slice){p + s, i - s};
        else if (version_word(p + s, i - s)) {
            /* HTTP/1.x: the target runs to the version (nginx keeps spaces in it). */
            out->target.len = prev_end - (size_t)(out->target.p - p);
            if (memchr(p, '\r', n))
                out->suspect = "a bare CR in the request line";
            return 1;
        }
        nw++;
        prev_end = i;
    }
    if (nw < 2)
        return 0;
    if (out->method.len == 3 && strncasecmp(out->method.p, "GET", 3) == 0) {
        /* HTTP/0.9 (nginx and Apache take it): no version, no fields, no keep-alive. */
        out->target.len = prev_end - (size_t)(out->target.p - p);
        out->suspect = "an HTTP/0.9 request";
        return 2;
    }
    return 0;
}

/* The fields after the request line, p[0..n) ending with the empty line. */
static void fields(const char *p, size_t n, struct proxy_sniffed *out)
{
    bool last_host = false;
    size_t pos = 0;
    while (pos < n) {
        const char *lf = memchr(p + pos, '\n', n - pos);
        size_t end = lf ? (size_t)(lf - p) : n, len = end - pos;
        const char *l = p + pos;
        pos = end + 1;
        if (len && l[len - 1] == '\r')
            len--;
        if (len == 0)
            return;
        if (memchr(l, '\r', len))
            out->suspect = "a bare CR in the request head";
        if (l[0] == ' ' || l[0] == '\t') { /* obs-fold: some servers join it to the field */
            if (last_host || trim(l, len).len == 0)
                out->suspect = "a folded Host field or a blank line of whitespace";
            continue;
        }
        const char *colon = memchr(l, ':', len);
        last_host = false;
        if (!colon)
            continue;
        struct proxy_slice name = trim(l, (size_t)(colon - l));
        if (name.len == 4 && strncasecmp(name.p, "host", 4) == 0) {
            last_host = true;
            if (out->n_host++ == 0)
                out->host = trim(colon + 1, len - (size_t)(colon - l) - 1);
        }
    }
}

/* Where the head ends: after the first empty line (LF, or CR LF, right after an LF), looking
 * from the LF at p[from]; 0 if not yet. */
static size_t head_end(const char *p, size_t n, size_t from)
{
    for (size_t k = from; k < n; k++) {
        if (p[k] != '\n')
            continue;
        if (k + 1 < n && p[k + 1] == '\n')
            return k + 2;
        if (k + 2 < n && p[k + 1] == '\r' && p[k + 2] == '\n')
            return k + 3;
    }
    return 0;
}

enum proxy_sniff proxy_sniff_tunnel(const char *p, size_t n, size_t max, struct proxy_sniffed *out)
{
    memset(out, 0, sizeof(*out));
    const unsigned char *u = (const unsigned char *)p;
    /* SSLv2 record: 2-byte length with the top bit set, then msg_type 1 (CLIENT-HELLO). */
    if (n && (u[0] & 0x80)) {
        if (n < 3)
            return AWF_SNIFF_NEED_MORE;
        return u[2] == 1 ? AWF_SNIFF_SSL2 : AWF_SNIFF_OPAQUE;
    }
    size_t i = 0;
    while (i < n && (sep(u[i]) || u[i] == '\n'))
        i++;
    out->skip = i;
    if (i == n)
        return n < max ? AWF_SNIFF_NEED_MORE : AWF_SNIFF_TOO_BIG;
    size_t cmp = n - i < PREFACE_LEN ? n - i : PREFACE_LEN;
    if (memcmp(p + i, preface, cmp) == 0)
        return cmp == PREFACE_LEN ? AWF_SNIFF_H2C : AWF_SNIFF_NEED_MORE;
    size_t j = i;
    while (j < n && tchar(u[j]))
        j++;
    if (j == i)
        return AWF_SNIFF_OPAQUE;
    if (j < n && !sep(u[j]))
        return AWF_SNIFF_OPAQUE; /* a lone word on its line, or a byte no method holds */
    if (j + 1 < n && u[j] == '\r' && u[j + 1] == '\n')
        return AWF_SNIFF_OPAQUE;
    const char *lf = memchr(p + j, '\n', n - j);
    if (!lf)
        return n < max ? AWF_SNIFF_NEED_MORE : AWF_SNIFF_TOO_BIG;
    size_t le = (size_t)(lf - p), ll = le - i;
    if (ll && p[le - 1] == '\r')
        ll--;
    int kind = request_line(p + i, ll, out);
    if (kind == 0)
        return AWF_SNIFF_OPAQUE;
    if (kind == 2) {
        out->head_len = le + 1;
        return AWF_SNIFF_HTTP;
    }
    /* The head must be complete, within max, before the decision. */
    size_t end = head_end(p, n, le);
    if (!end || end > max)
        return (!end && n < max) ? AWF_SNIFF_NEED_MORE : AWF_SNIFF_TOO_BIG;
    fields(p + le + 1, end - le - 1, out);
    out->head_len = end;
    return AWF_SNIFF_HTTP;
}

bool proxy_sniff_strict_start(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i <= 24 && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-' || p[i] == '_'))
        i++;
    return i > 0 && i <= 24 && (i == n || p[i] == ' ');
}

const char *proxy_sniff_name(enum proxy_sniff s)
{
    switch (s) {
    case AWF_SNIFF_OPAQUE:
        return "opaque";
    case AWF_SNIFF_NEED_MORE:
        return "need-more";
    case AWF_SNIFF_HTTP:
        return "http";
    case AWF_SNIFF_H2C:
        return "h2c";
    case AWF_SNIFF_SSL2:
        return "sslv2";
    case AWF_SNIFF_TOO_BIG:
        return "too-big";
    }
    return "unknown";
}
