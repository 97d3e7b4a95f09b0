#ifndef AWF_PROXY_HTTP_H
#define AWF_PROXY_HTTP_H

/* The pure parts of HTTP handling: collecting a request head as llhttp hands it over (the
 * callbacks proxy/parse.c's request parser and the fuzz target share), parsing request
 * targets, and rewriting the head sent upstream. No I/O, no libuv: unit-tested alone. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

struct proxy_slice {
    const char *p;
    size_t len;
};

struct proxy_http_field {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
};

/* A request head as received: the URL and header fields, stored back to back in buf. Memory is
 * owned by the head; proxy_http_head_reset() keeps it small between requests. */
struct proxy_http_head {
    char *buf;
    size_t len, cap;
    size_t max_bytes; /* over this: AWF_E_TOO_BIG */
    struct proxy_http_field *fields;
    size_t n_fields, cap_fields;
    size_t max_fields; /* over this: AWF_E_TOO_BIG */
    uint32_t url_off, url_len;
    bool in_value; /* the last piece was a value: the next name piece starts a new field */
};

void proxy_http_head_init(struct proxy_http_head *h, size_t max_bytes, size_t max_fields);
void proxy_http_head_reset(struct proxy_http_head *h);
void proxy_http_head_free(struct proxy_http_head *h);
/* Shrinks the memory to what the head holds, for a head kept long (a tunnel's, for its log
 * line); a later piece grows it again. The memory moves: slices into it taken before are
 * invalid. */
void proxy_http_head_compact(struct proxy_http_head *h);

/* Pieces of the request as llhttp delivers them (a piece may be split over several calls).
 * Return 0, AWF_E_TOO_BIG, or AWF_E_BAD_REQUEST (whitespace in a field name, control bytes). */
int proxy_http_head_url(struct proxy_http_head *h, const char *p, size_t n);
int proxy_http_head_name(struct proxy_http_head *h, const char *p, size_t n);
int proxy_http_head_value(struct proxy_http_head *h, const char *p, size_t n);

struct proxy_slice proxy_http_head_url_slice(const struct proxy_http_head *h);
struct proxy_slice proxy_http_field_name(const struct proxy_http_head *h, size_t i);
/* The value with surrounding whitespace trimmed. */
struct proxy_slice proxy_http_field_value(const struct proxy_http_head *h, size_t i);

/* The first field called name (case-insensitive); false if none. */
bool proxy_http_head_get(const struct proxy_http_head *h, const char *name,
                         struct proxy_slice *out);

/* How many fields are called name (case-insensitive). */
size_t proxy_http_head_count(const struct proxy_http_head *h, const char *name);

/* Whether a comma-separated list (Connection, Upgrade) holds token, case-insensitively. */
bool proxy_http_has_token(struct proxy_slice list, const char *token);

/* A request target. Slices point into the parsed text and live as long as it does. */
struct proxy_target {
    struct proxy_slice authority; /* host[:port] as written */
    struct proxy_slice host;      /* without brackets for IPv6 */
    uint16_t port;
    struct proxy_slice path;     /* origin form: from the first '/' or '?'; may be empty */
    struct proxy_slice userinfo; /* "user:pass" of "http://user:pass@host/"; empty if none */
};

/* "http://[userinfo@]host[:port][/path][?query]". Other schemes, empty hosts, bad ports, bytes
 * a host may not hold and control bytes or spaces in userinfo give AWF_E_BAD_REQUEST. The
 * authority excludes the userinfo (up to its last '@'), as Squid's URL does. */
int proxy_http_parse_absolute(const char *s, size_t n, struct proxy_target *out);

/* The target without a fragment ("#..."), which is never sent to a server (RFC 9110 4.2.4). */
struct proxy_slice proxy_http_strip_fragment(struct proxy_slice target);

/* "host:port" or "[v6]:port" (CONNECT). A bracketed host must be an IPv6 address (inet_pton).
 * Without a port: default_port, or AWF_E_BAD_REQUEST when default_port is 0. Host characters are
 * checked as for absolute URLs. */
int proxy_http_parse_authority(const char *s, size_t n, uint16_t default_port,
                               struct proxy_target *out);

/* A host as Squid spells it in logs and URLs (%ru, %>rd, the Host it logs): lower case, one
 * trailing dot dropped, any IPv4 spelling inet_aton takes (2130706433, 0x7f.1, 127.1) as a
 * dotted quad, IPv6 as inet_ntop writes it ("[::1]", brackets kept), IPv4-mapped IPv6 as the
 * IPv4. Writes a NUL-terminated string; returns its length, 0 if cap is too small. */
size_t proxy_http_canon_host(struct proxy_slice host, char *out, size_t cap);

/* The canonical host, then ":port" unless port is default_port (80 for http; 0 for CONNECT,
 * whose authority always carries its port). Same return as proxy_http_canon_host(). */
size_t proxy_http_canon_authority(struct proxy_slice host, uint16_t port, uint16_t default_port,
                                  char *out, size_t cap);

/* Whether two host names are the same: case-insensitive, one trailing dot ignored, brackets
 * around IPv6 ignored. */
bool proxy_http_same_host(struct proxy_slice a, struct proxy_slice b);

/* ---- a request head's target (target.c), as request.c decides it ---- */

/* What proxy_http_request_check() and proxy_http_request_target() find; request.c answers each
 * (and the fuzz target forwards only what is OK). */
enum proxy_http_verdict {
    AWF_HTTP_OK,         /* forwardable so far (target: t is the target) */
    AWF_HTTP_VERSION_2,  /* "HTTP/2.0" in an HTTP/1 request line: Squid's 505 */
    AWF_HTTP_NO_VERSION, /* a request line without a version (llhttp's HTTP/0.9) */
    AWF_HTTP_BAD,        /* malformed: bad framing, two Host fields, no target (t unusable) */
    AWF_HTTP_BAD_HOST,   /* t is the target, but its host is longer than a name can be, or the
                            Host field of an absolute-form request is no host[:port] */
    AWF_HTTP_OTHER_HOST, /* t is the absolute-form target; the Host field names another host */
};

/* The form of the request target (RFC 9112 3.2): origin ("/path", the Host field names the
 * target: what an iptables DNAT delivers), absolute ("http://host/path") or authority
 * (CONNECT's "host:port"). */
enum proxy_http_form { AWF_HTTP_FORM_ORIGIN, AWF_HTTP_FORM_ABSOLUTE, AWF_HTTP_FORM_AUTHORITY };
enum proxy_http_form proxy_http_request_form(const llhttp_t *p, const struct proxy_http_head *h);

/* The checks of a complete request head p paused on (h its head) that come before any target:
 * AWF_HTTP_OK, AWF_HTTP_VERSION_2, AWF_HTTP_NO_VERSION, or AWF_HTTP_BAD for framing llhttp
 * cannot check at the head (a Transfer-Encoding not ending in chunked, or on HTTP/1.0), two
 * Host fields, or a version other than 1.x. */
enum proxy_http_verdict proxy_http_request_check(const llhttp_t *p,
                                                 const struct proxy_http_head *h);

/* The target of a head proxy_http_request_check() passed, into t (slices into h, valid while h
 * is unchanged): CONNECT's authority (a port needed), the Host field of an origin-form request
 * (port 80 by default; the path from the URL, without its fragment), or the absolute URL. Then
 * the host's length (AWF_HOST_MAX and a trailing dot), and for the absolute form the Host field
 * if any, which must name the same host. The port of an intercepted (origin-form) request is
 * the caller's to change. Returns an enum proxy_http_verdict; t is written even when not OK. */
enum proxy_http_verdict proxy_http_request_target(const llhttp_t *p,
                                                  const struct proxy_http_head *h,
                                                  struct proxy_target *t);

/* Whether the request asks for a WebSocket upgrade (Upgrade: websocket, Connection: upgrade). */
bool proxy_http_is_websocket(const struct proxy_http_head *h);

/* An upper bound of what proxy_http_rewrite_head() needs, without writing anything. */
size_t proxy_http_rewrite_bound(const struct proxy_http_head *h, const char *method,
                                const struct proxy_target *t);

/* Flags of proxy_http_rewrite_head(). A bool true passed as flags is AWF_HTTP_REQ_WEBSOCKET. */
enum {
    AWF_HTTP_REQ_WEBSOCKET = 1u << 0, /* a WebSocket upgrade is forwarded: Upgrade is kept */
    AWF_HTTP_REQ_ABSOLUTE = 1u << 1,  /* absolute-form line ("GET http://host:port/p"), for a
                                         parent proxy; the port is left out when it is 80 */
    AWF_HTTP_REQ_TLS = 1u << 2,       /* the request goes over TLS (ssl-bump): 443 is the
                                         default port the Host leaves out */
};

/* Writes the head to send upstream for a forwarded request into out: origin-form request line,
 * Host from the target as Squid 5.7 sends it (proxy_http_canon_authority: lower case, no trailing
 * dot, the default port left out), "Authorization: Basic" from the URL's userinfo when going
 * direct and the client sent none (Squid does the same), every field but the hop-by-hop ones
 * (Connection and what it names, Proxy-Connection, Keep-Alive, TE, Trailer, Proxy-Authorization,
 * Upgrade unless websocket), X-Forwarded-For (AWF's `forwarded_for delete`) and the client's Host
 * (a client's Via is kept: Squid's `via off` only stops adding one); "Connection: Upgrade" when
 * websocket. With AWF_HTTP_REQ_ABSOLUTE the request line is in absolute form (same fields).
 * Content-Length, Transfer-Encoding and Host are never dropped because Connection names them (that
 * would change the framing). Returns the length it needs, like snprintf; out is complete only if
 * that is <= cap. */
size_t proxy_http_rewrite_head(const struct proxy_http_head *h, const char *method, unsigned major,
                               unsigned minor, const struct proxy_target *t, unsigned flags,
                               char *out, size_t cap);

/* A response head as received (status line to the empty line, n bytes) rewritten for the client:
 * hop-by-hop fields removed (Connection and the fields it names, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Upgrade; Content-Length and Transfer-Encoding are kept even when named), then
 * "Connection: close" (AWF_HTTP_RESP_CLOSE: the proxy closes the client connection after this
 * response) or "Connection: keep-alive" (AWF_HTTP_RESP_KEEP_ALIVE: an HTTP/1.0 client that asked
 * for it). An HTTP/1.0 status line becomes HTTP/1.1. Not for 101 Switching Protocols, whose Upgrade
 * and Connection must pass. Needs at most n + 32 bytes; returns the length it needs, like snprintf.
 */
enum { AWF_HTTP_RESP_CLOSE = 1u << 0, AWF_HTTP_RESP_KEEP_ALIVE = 1u << 1 };
size_t proxy_http_rewrite_response(const char *head, size_t n, unsigned flags, char *out,
                                   size_t cap);

/* Whether head bytes p[0, n) hold a CR that is not part of a CRLF; prev is the byte before p
 * (0: none), last: p ends the head (a final CR has no LF to come). llhttp 8 takes "\r" and any
 * byte as a line end in places (an empty header value, the empty line ending a head, a
 * response's status line), where a server and our rewrites split lines on LF: RFC 9112 2.2
 * has a recipient reject such a bare CR, and the proxy does. */
bool proxy_http_bare_cr(const char *p, size_t n, char prev, bool last);

/* ---- a request head read with llhttp ---- */

/* What the request head callbacks below keep between llhttp calls; the parser's data points at
 * it. */
struct proxy_http_reader {
    struct proxy_http_head *head; /* where the URL and fields go (borrowed) */
    const char *base;             /* start of the bytes being parsed (the obs-fold check) */
    char prev;                    /* the byte before them */
    int err;                      /* our error from a callback (AWF_E_*), else 0 */
};

/* llhttp callbacks with the parser's data pointing at a struct proxy_http_reader: URL and field
 * pieces go into its head (proxy_http_head_url/name/value; their error goes to r->err and stops
 * the parser with HPE_USER), an obs-fold continuation is refused (AWF_E_BAD_REQUEST), and the
 * parser pauses (HPE_PAUSED) once the head is complete, before any body byte. For settings:
 *   static const llhttp_settings_t s = {AWF_HTTP_HEAD_CALLBACKS, .on_message_complete = f}; */
int proxy_http_on_url(llhttp_t *p, const char *at, size_t n);
int proxy_http_on_field(llhttp_t *p, const char *at, size_t n);
int proxy_http_on_value(llhttp_t *p, const char *at, size_t n);
int proxy_http_on_head_done(llhttp_t *p);
#define AWF_HTTP_HEAD_CALLBACKS                                                                    \
    .on_url = proxy_http_on_url, .on_header_field = proxy_http_on_field,                           \
    .on_header_value = proxy_http_on_value, .on_headers_complete = proxy_http_on_head_done

/* Runs parser p over d[0, n) with r's position state (any parser: p's data need not be r);
 * *used is how many bytes belong to what was parsed (up to a pause at a head or message end, or
 * the error). Clears r->err first; callbacks may set it. */
llhttp_errno_t proxy_http_execute(struct proxy_http_reader *r, llhttp_t *p, const char *d, size_t n,
                                  size_t *used);

/* proxy_http_execute for request head bytes, which also refuses a bare CR in the bytes the head
 * took (proxy_http_bare_cr) with HPE_INVALID_HEADER_TOKEN. more: d continues head bytes given
 * before (r->prev is the byte before d); false for a head's first bytes. */
llhttp_errno_t proxy_http_read_head(struct proxy_http_reader *r, llhttp_t *p, const char *d,
                                    size_t n, bool more, size_t *used);

#endif
