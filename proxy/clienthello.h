#ifndef AWF_PROXY_CLIENTHELLO_H
#define AWF_PROXY_CLIENTHELLO_H

/* A TLS ClientHello parser for intercepted TLS and for the TLS inside CONNECT tunnels (SPEC §2).
 *
 * Pure: no I/O, no allocation, no libuv, no OpenSSL, no state between calls. The caller keeps
 * the bytes a connection has sent so far and calls proxy_hello_parse() on all of them after each
 * read, HAProxy style: NEED_MORE until a whole ClientHello is there, then one final answer.
 * A call costs O(len) and never reads more than AWF_HELLO_MAX_WIRE bytes of buf.
 * What is accepted and rejected, check by check, is in proxy/clienthello.md. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello handshake message accepted (4-byte handshake header included), and the
 * size of the scratch buffer proxy_hello_parse() needs. */
#define AWF_HELLO_MAX 16384

/* Largest run of TLS records (5-byte headers included) that may carry one ClientHello. A
 * ClientHello cut into tiny records costs 5 bytes of header per record, so this is larger than
 * AWF_HELLO_MAX; past it the answer is TOO_BIG. NEED_MORE is only ever returned for
 * len < AWF_HELLO_MAX_WIRE, so a caller's buffer of this size always reaches an answer. */
#define AWF_HELLO_MAX_WIRE (2 * AWF_HELLO_MAX)

enum proxy_hello_result {
    AWF_HELLO_OK = 0,        /* a whole, valid ClientHello: *out is filled */
    AWF_HELLO_NEED_MORE = 1, /* valid so far; call again with more bytes */
    AWF_HELLO_NOT_TLS = 2,   /* does not start with 0x16 0x03: try another protocol (HTTP) */
    AWF_HELLO_MALFORMED = 3, /* a TLS handshake record, but broken: close the connection */
    AWF_HELLO_TOO_BIG = 4,   /* past AWF_HELLO_MAX or AWF_HELLO_MAX_WIRE: close */
};

/* What a ClientHello says. Slices (sni, alpn) point into the caller's scratch buffer and stay
 * valid until scratch is written again (the next proxy_hello_parse() call with it); they are not
 * NUL-terminated. The SNI keeps the client's case: lower-casing is the caller's job. */
struct proxy_hello {
    const char *sni;         /* server_name host_name; NULL when the extension is absent */
    size_t sni_len;          /* 1..254 bytes of [A-Za-z0-9_.-] (a trailing dot is kept) */
    const char *alpn;        /* first ALPN protocol offered; NULL when ALPN is absent */
    size_t alpn_len;         /* 1..255; may hold any byte (ALPN names are opaque) */
    size_t consumed;         /* bytes of buf taken by the records that carry the ClientHello; what
                                follows (e.g. TLS 1.3 early data) belongs to the connection */
    size_t hello_len;        /* length of the handshake message, 4-byte header included */
    const char *error;       /* set unless OK/NEED_MORE: the check that failed (static) */
    uint16_t record_version; /* of the first record: 0x0300..0x0304 */
    uint16_t legacy_version; /* ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3) */
    uint16_t n_extensions;   /* number of extensions */
    uint8_t n_records;       /* records the ClientHello spans, saturating at 255 */
    bool has_sni;            /* sni != NULL */
    bool has_alpn;           /* alpn != NULL */
    bool alpn_h2;            /* "h2" is among the ALPN protocols */
    bool alpn_http11;        /* "http/1.1" is among the ALPN protocols */
    bool ech_offered;        /* encrypted_client_hello (0xfe0d) present, GREASE ECH included:
                                then sni is the outer (public) name */
    bool tls13_offered;      /* supported_versions lists TLS 1.3 (0x0304) */
};

/* Parses the first bytes a client sent on a connection, buf[0..len) (borrowed for the call).
 * scratch must hold AWF_HELLO_MAX bytes; the ClientHello is reassembled there from its
 * records, and *out's slices point into it. *out is always reset; on OK it describes the
 * ClientHello, on NOT_TLS/MALFORMED/TOO_BIG out->error names the reason.
 * Bytes after the record that completes the ClientHello are not looked at. */
enum proxy_hello_result proxy_hello_parse(const uint8_t *buf, size_t len, uint8_t *scratch,
                                          struct proxy_hello *out);

/* "ok", "need-more", "not-tls", "malformed", "too-big"; "unknown" otherwise. Static. */
const char *proxy_hello_result_name(enum proxy_hello_result r);

#endif
