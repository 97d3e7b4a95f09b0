#ifndef AWF_PROXY_SNIFF_H
#define AWF_PROXY_SNIFF_H

/* What the first non-TLS bytes of a CONNECT tunnel are (SPEC §2, README "The ClientHello
 * check"): an HTTP/1.x request, the HTTP/2 prior-knowledge (h2c) preface, an SSLv2-format
 * ClientHello, or opaque bytes. The rule is that whatever a server would take as a request is
 * recognised here first, so recognition is as lenient as the most lenient servers (nginx,
 * Apache, llhttp's lenient flags): leading empty lines and whitespace, any token as a method,
 * runs of spaces and tabs, spaces inside the target, any "NAME/digit" version. Anything a
 * lenient server might read otherwise than we do (a bare CR, a folded Host, HTTP/0.9) is
 * reported as suspect for the caller to deny.
 *
 * Pure: no I/O, no allocation. The caller keeps the bytes received so far and calls again after
 * each read until the answer is not NEED_MORE. */

#include <stdbool.h>
#include <stddef.h>

#include "proxy/http.h"

enum proxy_sniff {
    AWF_SNIFF_OPAQUE,    /* cannot be an HTTP request, h2c or TLS: opaque bytes */
    AWF_SNIFF_NEED_MORE, /* could still be a request line, head or preface: wait */
    AWF_SNIFF_HTTP,      /* a complete HTTP/1.x (or /0.9) request head: out is filled */
    AWF_SNIFF_H2C,       /* the h2c preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" at out->skip */
    AWF_SNIFF_SSL2,      /* an SSLv2-format ClientHello (it cannot carry SNI) */
    AWF_SNIFF_TOO_BIG,   /* could be a request, but its head does not end within max bytes */
};

struct proxy_sniffed {
    size_t skip;               /* whitespace and empty lines before the request line or preface */
    size_t head_len;           /* HTTP: bytes up to the end of the empty line (skip included) */
    struct proxy_slice method; /* HTTP: the first word */
    struct proxy_slice target; /* HTTP: from the second word to the version (may hold spaces) */
    struct proxy_slice host;   /* HTTP: the first Host value, trimmed */
    unsigned n_host;           /* HTTP: how many Host fields (names compared ignoring case and
                                  whitespace before the colon) */
    const char *suspect;       /* HTTP: why a lenient server might read it otherwise, or NULL */
};

/* Classifies p[0..n) (borrowed for the call; out's slices point into it). max bounds the head. */
enum proxy_sniff proxy_sniff_tunnel(const char *p, size_t n, size_t max, struct proxy_sniffed *out);

/* Whether p[0..n) starts like a request line as clients write them: an upper-case method of at
 * most 24 of [A-Z_-], then a space or the end. Where opaque bytes are allowed, only such a start
 * is waited on (a line-less protocol that speaks first, "ping", must not hang on us). */
bool proxy_sniff_strict_start(const char *p, size_t n);

/* "opaque", "need-more", "http", "h2c", "sslv2", "too-big". Static. */
const char *proxy_sniff_name(enum proxy_sniff s);

#endif
