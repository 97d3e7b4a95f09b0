/* Rendering one access-log line from a compiled format. Runs on the proxy's event loops for
 * every transaction, so it allocates nothing and touches each value once (twice when a width
 * needs the escaped length first). */

#include "log/log.h"
#include "log/logformat-int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* snprintf-like sink: writes what fits, counts everything. */
struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_fill(struct out *o, char c, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (o->len < o->cap)
            o->buf[o->len] = c;
        o->len++;
    }
}

static const char hex[] = "0123456789ABCDEF";

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if s[0] does not start one; *cp
 * is its code point. Rejects overlongs, surrogates and code points past U+10FFFF, as JSON
 * parsers do. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp_out)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_out = cp;
    return len;
}

/* Code points past ASCII that never stay raw in a line: C1 controls (U+0085 NEL among them),
 * LINE and PARAGRAPH SEPARATOR (readers that split on Unicode line boundaries, Python's
 * splitlines and JavaScript among them, would cut the record there), and the bidirectional
 * embedding, override and isolate controls (they reorder what a reader sees of the line). */
static bool cp_unsafe(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* Writes the escaped form of s[0..n) in mode esc into o (o may be a counting-only sink with
 * cap 0). Runs of bytes that need nothing are copied in one go. Past ASCII, every mode keeps
 * only valid UTF-8 that is not cp_unsafe: the modes that keep UTF-8 (quoted, %', JSON) escape
 * invalid bytes and unsafe characters byte by byte (JSON: as one \uXXXX), so a line is
 * always valid UTF-8 with no line break but its last byte. */
static void put_escaped(struct out *o, enum lf_esc esc, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0; /* start of the pending safe run */
    for (size_t k = 0; k < n; k++) {
        unsigned char c = s[k];
        char tmp[16];
        size_t tl = 0, used = 1; /* bytes of s that tmp stands for */
        if (c >= 0x80 && (esc == LF_ESC_QUOTED || esc == LF_ESC_RAW || esc == LF_ESC_JSON)) {
            uint32_t cp = 0;
            size_t sl = utf8_seq(s + k, n - k, &cp);
            if (sl && !cp_unsafe(cp)) {
                k += sl - 1; /* valid UTF-8 stays as it is, part of the run */
                continue;
            }
            used = sl ? sl : 1;
            if (esc == LF_ESC_JSON && sl) {
                memcpy(tmp, "\\u", 2);
                for (int d = 0; d < 4; d++)
                    tmp[2 + d] = hex[(cp >> (12 - 4 * d)) & 15];
                tl = 6;
            } else {
                for (size_t b = 0; b < used; b++) {
                    unsigned char x = s[k + b];
                    if (esc == LF_ESC_QUOTED)
                        tmp[tl++] = '\\', tmp[tl++] = 'x';
                    else if (esc == LF_ESC_JSON)
                        memcpy(tmp + tl, "\\u00", 4), tl += 4;
                    else
                        tmp[tl++] = '%';
                    tmp[tl++] = hex[x >> 4], tmp[tl++] = hex[x & 15];
                }
            }
        } else {
            switch (esc) {
            case LF_ESC_URL:
                if (c <= 0x20 || c >= 0x7f || c == '"')
                    tmp[0] = '%', tmp[1] = hex[c >> 4], tmp[2] = hex[c & 15], tl = 3;
                break;
            case LF_ESC_UNSAFE:
                if (c <= 0x20 || c >= 0x7f || (c && strchr("\"<>#{}|\\^~[]`'", c)))
                    tmp[0] = '%', tmp[1] = hex[c >> 4], tmp[2] = hex[c & 15], tl = 3;
                break;
            case LF_ESC_BRACKET:
                if (c <= 0x20 || c >= 0x7f || c == '%' || c == '[' || c == ']' || c == '\\' ||
                    c == '"')
                    tmp[0] = '%', tmp[1] = hex[c >> 4], tmp[2] = hex[c & 15], tl = 3;
                break;
            case LF_ESC_RAW:
                if (c < 0x20 || c == 0x7f)
                    tmp[0] = '%', tmp[1] = hex[c >> 4], tmp[2] = hex[c & 15], tl = 3;
                break;
            case LF_ESC_QUOTED:
                /* `"` as %22, not Squid's \": log readers split quoted fields with "[^"]*",
                 * and a client must not be able to end its User-Agent field early and hide a
                 * line. */
                if (c == '"')
                    tmp[0] = '%', tmp[1] = '2', tmp[2] = '2', tl = 3;
                else if (c == '\\')
                    tmp[0] = '\\', tmp[1] = (char)c, tl = 2;
                else if (c == '\r')
                    tmp[0] = '\\', tmp[1] = 'r', tl = 2;
                else if (c == '\n')
                    tmp[0] = '\\', tmp[1] = 'n', tl = 2;
                else if (c == '\t')
                    tmp[0] = '\\', tmp[1] = 't', tl = 2;
                else if (c < 0x20 || c == 0x7f)
                    tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15], tl = 4;
                break;
            case LF_ESC_JSON:
                if (c == '"' || c == '\\') {
                    tmp[0] = '\\', tmp[1] = (char)c, tl = 2;
                } else if (c == '\n') {
                    tmp[0] = '\\', tmp[1] = 'n', tl = 2;
                } else if (c == '\r') {
                    tmp[0] = '\\', tmp[1] = 'r', tl = 2;
                } else if (c == '\t') {
                    tmp[0] = '\\', tmp[1] = 't', tl = 2;
                } else if (c < 0x20 || c == 0x7f) {
                    memcpy(tmp, "\\u00", 4), tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tl = 6;
                }
                break;
            }
        }
        if (tl) {
            put(o, str + run, k - run);
            put(o, tmp, tl);
            k += used - 1;
            run = k + 1;
        }
    }
    put(o, str + run, n - run);
}

static size_t escaped_len(enum lf_esc esc, const char *s, size_t n)
{
    struct out count = {NULL, 0, 0};
    put_escaped(&count, esc, s, n);
    return count.len;
}

/* A value: a string that came from outside (escaped), or one we formatted (trusted: only JSON
 * escaping applies, so a strftime format cannot break a JSON line either). */
static void emit(struct out *o, const struct lf_op *op, const char *s, size_t n, bool trusted,
                 bool numeric)
{
    if (!s || n == 0) {
        s = "-";
        n = 1;
        trusted = true;
        numeric = false;
    }
    if (op->width_max && !numeric && n > op->width_max)
        n = op->width_max;
    enum lf_esc esc = op->esc;
    bool raw = trusted && esc != LF_ESC_JSON;
    if (op->width_min == 0) {
        if (raw)
            put(o, s, n);
        else
            put_escaped(o, esc, s, n);
        return;
    }
    size_t len = raw ? n : escaped_len(esc, s, n);
    size_t pad = len < op->width_min ? op->width_min - len : 0;
    if (!op->left)
        put_fill(o, op->zero ? '0' : ' ', pad);
    if (raw)
        put(o, s, n);
    else
        put_escaped(o, esc, s, n);
    if (op->left)
        put_fill(o, ' ', pad);
}

/* Decimal digits of v at the end of tmp[24]; returns where they start. Several numbers per
 * line: snprintf was most of a line's cost. */
static char *utoa(uint64_t v, char *tmp)
{
    char *p = tmp + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static void emit_num(struct out *o, const struct lf_op *op, uint64_t v)
{
    char tmp[24];
    char *p = utoa(v, tmp);
    emit(o, op, p, (size_t)(tmp + 24 - p), true, true);
}

static void emit_str(struct out *o, const struct lf_op *op, const char *s)
{
    emit(o, op, s, s ? strlen(s) : 0, false, false);
}

/* Dotted quad of 4 bytes into tmp (>= 16 bytes); returns its length. glibc's inet_ntop goes
 * through sprintf, a large share of a line's cost. */
static size_t ipv4_str(const uint8_t *b, char *tmp)
{
    size_t n = 0;
    for (int k = 0; k < 4; k++) {
        char d[24];
        char *p = utoa(b[k], d);
        size_t l = (size_t)(d + 24 - p);
        memcpy(tmp + n, p, l);
        n += l;
        tmp[n++] = '.';
    }
    tmp[--n] = '\0';
    return n;
}

/* Squid prints addresses bare ("::1", no brackets) and IPv4-mapped IPv6 as the IPv4. */
static void emit_addr(struct out *o, const struct lf_op *op, const struct sockaddr *sa)
{
    char tmp[INET6_ADDRSTRLEN];
    size_t n = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        n = ipv4_str((const uint8_t *)&in->sin_addr, tmp);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            n = ipv4_str(&in6->sin6_addr.s6_addr[12], tmp);
        else if (inet_ntop(AF_INET6, &in6->sin6_addr, tmp, sizeof(tmp)))
            n = strlen(tmp);
    }
    emit(o, op, tmp, n, true, false);
}

static void emit_port(struct out *o, const struct lf_op *op, const struct sockaddr *sa)
{
    if (sa && sa->sa_family == AF_INET)
        emit_num(o, op, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else if (sa && sa->sa_family == AF_INET6)
        emit_num(o, op, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else
        emit(o, op, NULL, 0, true, false);
}

static void emit_time(struct out *o, const struct lf_op *op, const char *pool, int64_t us,
                      bool local)
{
    /* Squid's defaults: %tl carries the zone, %tg does not (checked against Squid 5.7). */
    const char *fmt = op->has_arg ? pool + op->arg
                      : local     ? "%d/%b/%Y:%H:%M:%S %z"
                                  : "%d/%b/%Y:%H:%M:%S";
    time_t t = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
    struct tm tm;
    char tmp[256];
    size_t n = 0;
    if (local ? localtime_r(&t, &tm) : gmtime_r(&t, &tm)) {
        /* The format is the operator's {argument}: strftime reads no varargs, so a
         * non-literal format is safe here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        n = strftime(tmp, sizeof(tmp), fmt, &tm);
#pragma GCC diagnostic pop
    }
    emit(o, op, tmp, n, true, false);
}

/* A connection that ended before any request (method NULL or "NONE"): Squid 5.7 logs it with
 * no method, version 0.0, no Host and no %la/%lp (its "- -:- 0.0 - 0" row, log/README.md). */
static bool no_request(const struct awf_log_record *r)
{
    return !r->method || strcmp(r->method, "NONE") == 0;
}

static void emit_header(struct out *o, const struct lf_op *op, const char *pool,
                        const struct awf_log_record *r, bool request)
{
    const char *(*fn)(void *, const char *, size_t *) = request ? r->req_header : r->rep_header;
    size_t len = 0;
    const char *v = fn ? fn(r->header_ctx, pool + op->arg, &len) : NULL;
    emit(o, op, v, v ? len : 0, false, false);
}

size_t log_format_render(const struct awf_log_format *f, const struct awf_log_record *r,
                         bool strip_query, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    for (size_t k = 0; k < f->nops; k++) {
        const struct lf_op *op = &f->ops[k];
        switch (op->code) {
        case LF_LITERAL:
            put(&o, f->pool + op->arg, op->arg_len);
            break;
        case LF_TS:
            emit_num(&o, op, r->end_us > 0 ? (uint64_t)r->end_us / 1000000 : 0);
            break;
        case LF_TU:
            emit_num(&o, op, r->end_us > 0 ? ((uint64_t)r->end_us / 1000) % 1000 : 0);
            break;
        case LF_TR:
            emit_num(&o, op,
                     r->start_us > 0 && r->end_us > r->start_us
                         ? (uint64_t)(r->end_us - r->start_us) / 1000
                         : 0);
            break;
        case LF_TL:
        case LF_TG:
            emit_time(&o, op, f->pool, r->end_us, op->code == LF_TL);
            break;
        case LF_CLIENT_ADDR:
            emit_addr(&o, op, r->client);
            break;
        case LF_CLIENT_PORT:
            emit_port(&o, op, r->client);
            break;
        case LF_SERVER_ADDR:
            emit_addr(&o, op, r->server);
            break;
        case LF_SERVER_PORT:
            emit_port(&o, op, r->server);
            break;
        case LF_LOCAL_ADDR:
        case LF_CLI_LOCAL_ADDR:
            emit_addr(&o, op, op->code == LF_LOCAL_ADDR && no_request(r) ? NULL : r->local);
            break;
        case LF_LOCAL_PORT:
        case LF_CLI_LOCAL_PORT:
            emit_port(&o, op, op->code == LF_LOCAL_PORT && no_request(r) ? NULL : r->local);
            break;
        case LF_REQ_HEADER:
        case LF_REP_HEADER:
            emit_header(&o, op, f->pool, r, op->code == LF_REQ_HEADER);
            break;
        case LF_CLI_VERSION:
            if (no_request(r)) {
                emit(&o, op, NULL, 0, true, false);
                break;
            }
            /* fall through */
        case LF_VERSION: {
            char tmp[8] = {0}, d1[24], d2[24];
            char *a = utoa(r->http_major, d1), *b = utoa(r->http_minor, d2);
            size_t na = (size_t)(d1 + 24 - a), nb = (size_t)(d2 + 24 - b);
            memcpy(tmp, a, na);
            tmp[na] = '.';
            memcpy(tmp + na + 1, b, nb);
            emit(&o, op, tmp, na + 1 + nb, true, false);
            break;
        }
        case LF_METHOD:
            emit_str(&o, op, r->method);
            break;
        case LF_URL: {
            size_t n = r->url ? strlen(r->url) : 0;
            /* strip_query_terms: "http://h/p?tok=x" logs as "http://h/p?" */
            const char *q = strip_query && n ? memchr(r->url, '?', n) : NULL;
            emit(&o, op, r->url, q ? (size_t)(q - r->url) + 1 : n, false, false);
            break;
        }
        case LF_DOMAIN:
            emit_str(&o, op, r->domain);
            break;
        case LF_STATUS:
            emit_num(&o, op, r->status > 0 ? (uint64_t)r->status : 0);
            break;
        case LF_UP_STATUS:
            if (r->upstream_status > 0)
                emit_num(&o, op, (uint64_t)r->upstream_status);
            else
                emit(&o, op, NULL, 0, true, false);
            break;
        case LF_TAG:
            emit_str(&o, op, r->tag);
            break;
        case LF_HIER:
            emit_str(&o, op, r->hier);
            break;
        case LF_BYTES_TO_CLI:
            emit_num(&o, op, r->bytes_to_client);
            break;
        case LF_BYTES_FROM_CLI:
            emit_num(&o, op, r->bytes_from_client);
            break;
        case LF_USER:
            emit_str(&o, op, r->user);
            break;
        case LF_MIME:
            emit_str(&o, op, r->mime);
            break;
        }
    }
    put(&o, "\n", 1);
    /* NUL-terminate like snprintf: after the line if it fit, else over its last byte. */
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}
