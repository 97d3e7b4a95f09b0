/* Fuzzes the HTTP request head path (the connection's request parser as proxy/parse.c sets it
 * up, proxy/http.c's head callbacks and proxy_http_read_head, as proxy/request.c reads a head;
 * then proxy/target.c's checks and target, which request.c's decide() answers), and the
 * response head rewrite.
 *
 * Input: the first bytes of a connection. Starting "HTTP/" it is a response head; otherwise a
 * request. The last byte chooses how the bytes are cut into reads (pieces of 1..64 bytes).
 * Checked beyond "no crash, no sanitizer report":
 *   - the head collected from one read and from many is the same (URL, every field), and the
 *     parser stops (or fails) alike: a request cannot depend on how TCP segmented it;
 *   - a head the proxy would forward (proxy_http_request_check and proxy_http_request_target
 *     say OK) has a target whose host holds no byte a name or address cannot hold, and (but
 *     CONNECT's) rewrites within proxy_http_rewrite_bound(), snprintf-like for smaller buffers;
 *   - the rewritten head is one complete request for llhttp (strict), ending exactly where it
 *     ends, with the same method and version, the path as URL, one Host naming the target, no
 *     hop-by-hop field, and every other field one the client sent (same name, same value), with
 *     as many Content-Length and Transfer-Encoding fields as it sent: the upstream reads the
 *     request the proxy decided on, and frames its body the same;
 *   - a response head rewrites within n + 32 bytes to one response head with the same status,
 *     no hop-by-hop field and the Connection field the flags ask for. */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "common/error.h"
#include "proxy/conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define HEAD_MAX   (64 * 1024)
#define FIELDS_MAX 100

/* One parse, on a connection's request parser as parse.c sets it up for each request
 * (proxy_conn_req_parser_init). The connection is zeroed but for its head: up to the head's
 * end (where the parser pauses) the parser's callbacks touch nothing else of it. */
struct parse {
    struct proxy_conn *c;
    llhttp_t *p;                  /* &c->req */
    struct proxy_http_head *head; /* &c->head */
    bool done;                    /* the head is complete */
};

/* Parses d[0, n) in pieces of step bytes (0: at once), as proxy_request_input reads a head.
 * Returns the bytes the head took when it completed, else 0 (incomplete or refused: s->done
 * tells). parse_free() frees s. */
static size_t parse_head(struct parse *s, const char *d, size_t n, size_t step)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));
    CHECK(c);
    *s = (struct parse){.c = c, .p = &c->req, .head = &c->head};
    proxy_http_head_init(&c->head, HEAD_MAX, FIELDS_MAX);
    proxy_conn_req_parser_init(c);
    for (size_t off = 0; off < n;) {
        size_t k = step && n - off > step ? step : n - off, used;
        llhttp_errno_t e = proxy_http_read_head(&c->rd, &c->req, d + off, k, off != 0, &used);
        if (e == HPE_PAUSED) { /* the head's end: nothing pauses before it */
            s->done = true;
            return off + used;
        }
        if (e != HPE_OK)
            return 0;
        off += k;
    }
    return 0;
}

static void parse_free(struct parse *s)
{
    proxy_http_head_free(s->head);
    free(s->c);
}

static bool slice_eq(struct proxy_slice a, struct proxy_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool same_head(const struct proxy_http_head *a, const struct proxy_http_head *b)
{
    if (!slice_eq(proxy_http_head_url_slice(a), proxy_http_head_url_slice(b)) ||
        a->n_fields != b->n_fields)
        return false;
    for (size_t i = 0; i < a->n_fields; i++)
        if (!slice_eq(proxy_http_field_name(a, i), proxy_http_field_name(b, i)) ||
            !slice_eq(proxy_http_field_value(a, i), proxy_http_field_value(b, i)))
            return false;
    return true;
}

static bool is(struct proxy_slice s, const char *name)
{
    return s.len == strlen(name) && strncasecmp(s.p, name, s.len) == 0;
}

static bool hop_by_hop(struct proxy_slice name)
{
    static const char *const hop[] = {"Proxy-Connection", "Keep-Alive",          "TE",
                                      "Trailer",          "Proxy-Authorization", "X-Forwarded-For"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (is(name, hop[i]))
            return true;
    return false;
}

static void check_target(const struct proxy_target *t)
{
    CHECK(t->port > 0 && t->host.len > 0 && t->host.len <= AWF_HOST_MAX + 1);
    for (size_t i = 0; i < t->host.len; i++) {
        unsigned char c = (unsigned char)t->host.p[i];
        CHECK(c > 0x20 && c < 0x7f && !strchr("/?#@\\\"<>[] ", c));
    }
    for (size_t i = 0; i < t->authority.len; i++) {
        unsigned char c = (unsigned char)t->authority.p[i];
        CHECK(c > 0x20 && c < 0x7f && c != '/' && c != '@');
    }
}

static size_t count(const struct proxy_http_head *h, const char *name)
{
    return proxy_http_head_count(h, name);
}

static void check_rewrite(const struct parse *s, const struct proxy_target *t, bool ws)
{
    const char *method = llhttp_method_name((llhttp_method_t)s->p->method);
    size_t bound = proxy_http_rewrite_bound(s->head, method, t);
    char *out = malloc(bound);
    CHECK(out);
    unsigned how = ws ? AWF_HTTP_REQ_WEBSOCKET : 0;
    size_t n = proxy_http_rewrite_head(s->head, method, s->p->http_major, s->p->http_minor, t, how,
                                       out, bound);
    CHECK(n <= bound);
    char *small = malloc(n / 2 + 1); /* snprintf-like: same length, nothing past cap */
    CHECK(small);
    CHECK(proxy_http_rewrite_head(s->head, method, s->p->http_major, s->p->http_minor, t, how,
                                  small, n / 2) == n);
    free(small);

    struct parse r;
    size_t used = parse_head(&r, out, n, 0);
    CHECK(r.done && used == n); /* one request, ending where the rewrite ends */
    CHECK(r.p->method == s->p->method && r.p->http_major == s->p->http_major &&
          r.p->http_minor == s->p->http_minor);
    struct proxy_slice url = proxy_http_head_url_slice(r.head), host;
    CHECK(url.len >= 1 && url.p[0] == '/');
    CHECK(url.len == t->path.len + (t->path.len && t->path.p[0] == '/' ? 0 : 1));
    CHECK(count(r.head, "Host") == 1 && proxy_http_head_get(r.head, "Host", &host));
    char canon[320]; /* the Host goes on canonical (Squid's spelling), else as written */
    size_t cn = proxy_http_canon_authority(t->host, t->port, 80, canon, sizeof(canon));
    CHECK(cn ? slice_eq(host, (struct proxy_slice){canon, cn}) : slice_eq(host, t->authority));
    CHECK(count(r.head, "Content-Length") == count(s->head, "Content-Length"));
    CHECK(count(r.head, "Transfer-Encoding") == count(s->head, "Transfer-Encoding"));
    CHECK((r.p->flags & (F_CHUNKED | F_CONTENT_LENGTH)) ==
          (s->p->flags & (F_CHUNKED | F_CONTENT_LENGTH)));
    CHECK(!(s->p->flags & F_CONTENT_LENGTH) || r.p->content_length == s->p->content_length);
    for (size_t i = 0; i < r.head->n_fields; i++) {
        struct proxy_slice name = proxy_http_field_name(r.head, i);
        struct proxy_slice value = proxy_http_field_value(r.head, i);
        CHECK(!hop_by_hop(name));
        if (is(name, "Host"))
            continue;
        if (is(name, "Authorization") && t->userinfo.len && !count(s->head, "Authorization"))
            continue; /* from the URL's userinfo */
        if (is(name, "Connection")) {
            CHECK(ws && is(value, "Upgrade"));
            continue;
        }
        bool sent = false;
        for (size_t j = 0; j < s->head->n_fields && !sent; j++)
            sent = slice_eq(name, proxy_http_field_name(s->head, j)) &&
                   slice_eq(value, proxy_http_field_value(s->head, j));
        CHECK(sent);
    }
    parse_free(&r);
    free(out);
}

static void fuzz_request(const char *d, size_t n, size_t step)
{
    struct parse whole, cut;
    size_t used = parse_head(&whole, d, n, 0);
    size_t used_cut = parse_head(&cut, d, n, step);
    CHECK(whole.done == cut.done);
    if (whole.done) {
        CHECK(used == used_cut && used <= n);
        CHECK(same_head(whole.head, cut.head));
        struct proxy_target t;
        if (proxy_http_request_check(whole.p, whole.head) == AWF_HTTP_OK &&
            proxy_http_request_target(whole.p, whole.head, &t) == AWF_HTTP_OK) {
            check_target(&t);
            if (whole.p->method != HTTP_CONNECT) /* a tunnel: no head goes on */
                check_rewrite(&whole, &t, proxy_http_is_websocket(whole.head));
        }
    }
    parse_free(&whole);
    parse_free(&cut);
}

/* ---- responses ---- */

/* Only where a response head ends: forward.c's response settings are its own (static, and their
 * callbacks keep what the log and the body's framing need in a live connection), so the parser
 * here is a plain one that pauses at the head's end as forward.c's does. */

static int on_resp_headers_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static const llhttp_settings_t resp_settings = {.on_headers_complete = on_resp_headers_complete};

/* The length of the response head at d (up to its empty line), 0 if it is not one. */
static size_t response_head(const char *d, size_t n, llhttp_t *p)
{
    llhttp_init(p, HTTP_RESPONSE, &resp_settings);
    if (llhttp_execute(p, d, n) != HPE_PAUSED)
        return 0;
    return (size_t)(llhttp_get_error_pos(p) - d);
}

/* The fields of a response head as (name, value) by line; calls f on each. */
static void each_field(const char *d, size_t n,
                       void (*f)(struct proxy_slice, struct proxy_slice, void *), void *arg)
{
    size_t i = 0;
    while (i < n && d[i] != '\n') /* the status line */
        i++;
    for (i++; i < n;) {
        size_t j = i;
        while (j < n && d[j] != '\n')
            j++;
        size_t end = j > i && d[j - 1] == '\r' ? j - 1 : j;
        const char *colon = memchr(d + i, ':', end - i);
        if (colon) {
            struct proxy_slice name = {d + i, (size_t)(colon - (d + i))};
            const char *v = colon + 1, *ve = d + end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            f(name, (struct proxy_slice){v, (size_t)(ve - v)}, arg);
        }
        i = j + 1;
    }
}

struct resp_check {
    unsigned connection;
};

static void check_resp_field(struct proxy_slice name, struct proxy_slice value, void *arg)
{
    struct resp_check *rc_ = arg;
    CHECK(!is(name, "Keep-Alive") && !is(name, "Proxy-Connection") && !is(name, "TE") &&
          !is(name, "Trailer") && !is(name, "Upgrade"));
    if (is(name, "Connection")) {
        CHECK(is(value, "close") || is(value, "keep-alive"));
        rc_->connection++;
    }
}

static void fuzz_response(const char *d, size_t size)
{
    llhttp_t p;
    size_t n = response_head(d, size, &p);
    if (!n || p.status_code == 101)
        return;
    if (proxy_http_bare_cr(d, n, 0, true)) /* refused by forward.c */
        return;
    int status = p.status_code;
    char *out = malloc(n + 32);
    CHECK(out);
    for (unsigned flags = 0; flags < 3; flags++) {
        size_t m = proxy_http_rewrite_response(d, n, flags, out, n + 32);
        CHECK(m <= n + 32);
        llhttp_t q;
        CHECK(response_head(out, m, &q) == m && q.status_code == status);
        struct resp_check rc_ = {0};
        each_field(out, m, check_resp_field, &rc_);
        CHECK(rc_.connection == (flags ? 1u : 0u));
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    if (size >= 5 && memcmp(d, "HTTP/", 5) == 0) {
        fuzz_response(d, size);
        return 0;
    }
    size_t step = size ? 1 + data[size - 1] % 64 : 1;
    fuzz_request(d, size, step);
    return 0;
}
