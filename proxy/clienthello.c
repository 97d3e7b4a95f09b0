/* TLS ClientHello parser: record layer reassembly, then the ClientHello body.
 *
 * Two passes over bounded memory. The record pass walks TLS records from the start of buf and
 * copies their fragments into scratch until one handshake message is complete; it can answer
 * early (NOT_TLS, MALFORMED, TOO_BIG) from headers alone. The body pass reads the ClientHello
 * from scratch with a bounds-checked reader, so no length field is ever trusted before it is
 * checked against what remains. References: RFC 5246 §6.2, §7.4.1.2; RFC 8446 §4.1.2, §5.1;
 * RFC 6066 §3; RFC 7301 §3.1; draft-ietf-tls-esni (ECH, 0xfe0d). */

#include "proxy/clienthello.h"

#include "common/host.h"

#include <string.h>

#define REC_HEADER 5
#define REC_MAX    16384 /* 2^14: largest plaintext record fragment */
#define HS_HEADER  4

#define CT_HANDSHAKE    22
#define HT_CLIENT_HELLO 1

#define EXT_SERVER_NAME        0x0000
#define EXT_ALPN               0x0010
#define EXT_PRE_SHARED_KEY     0x0029
#define EXT_SUPPORTED_VERSIONS 0x002b
#define EXT_ECH                0xfe0d

const char *proxy_hello_result_name(enum proxy_hello_result r)
{
    switch (r) {
    case AWF_HELLO_OK:
        return "ok";
    case AWF_HELLO_NEED_MORE:
        return "need-more";
    case AWF_HELLO_NOT_TLS:
        return "not-tls";
    case AWF_HELLO_MALFORMED:
        return "malformed";
    case AWF_HELLO_TOO_BIG:
        return "too-big";
    }
    return "unknown";
}

static enum proxy_hello_result fail(struct proxy_hello *out, enum proxy_hello_result r,
                                    const char *why)
{
    out->error = why;
    return r;
}

/* A bounds-checked reader over a byte range. Every read either succeeds whole or fails
 * without moving, so callers only test the result. */
struct rd {
    const uint8_t *p;
    size_t left;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
    if (r->left < 1)
        return false;
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
    if (r->left < 2)
        return false;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
    if (r->left < n)
        return false;
    r->p += n;
    r->left -= n;
    return true;
}

/* A vector with a 1- or 2-byte length prefix: sub covers its contents. */
static bool rd_vec(struct rd *r, size_t prefix, struct rd *sub)
{
    struct rd save = *r;
    size_t n;
    if (prefix == 1) {
        uint8_t v;
        if (!rd_u8(r, &v))
            return false;
        n = v;
    } else {
        uint16_t v;
        if (!rd_u16(r, &v))
            return false;
        n = v;
    }
    sub->p = r->p;
    sub->left = n;
    if (!rd_skip(r, n)) {
        *r = save;
        return false;
    }
    return true;
}

/* ---- record layer ---- */

/* Gathers the handshake message, fragment by fragment. need is 0 until its 4-byte header is
 * complete, then the whole message's length (header included), at most AWF_HELLO_MAX. */
struct gather {
    uint8_t *scratch;
    size_t have, need;
};

/* Appends one record fragment (possibly partial: the record is still arriving). Checks the
 * handshake header as soon as its bytes are there, so garbage is refused without waiting. */
static enum proxy_hello_result gather_add(struct gather *g, const uint8_t *p, size_t n,
                                          struct proxy_hello *out)
{
    while (g->have < HS_HEADER && n > 0) {
        g->scratch[g->have++] = *p++;
        n--;
        if (g->have == 1 && g->scratch[0] != HT_CLIENT_HELLO)
            return fail(out, AWF_HELLO_MALFORMED, "handshake message is not a ClientHello");
        if (g->have == HS_HEADER) {
            size_t body = (size_t)g->scratch[1] << 16 | (size_t)g->scratch[2] << 8 | g->scratch[3];
            if (body > AWF_HELLO_MAX - HS_HEADER)
                return fail(out, AWF_HELLO_TOO_BIG, "ClientHello longer than AWF_HELLO_MAX");
            g->need = HS_HEADER + body;
        }
    }
    if (n == 0)
        return AWF_HELLO_OK;
    /* A ClientHello is the client's whole first flight (TLS 1.3 early data and
     * change_cipher_spec come in records of their own), so its last record ends with it. */
    if (n > g->need - g->have)
        return fail(out, AWF_HELLO_MALFORMED, "bytes after the ClientHello in its record");
    memcpy(g->scratch + g->have, p, n);
    g->have += n;
    return AWF_HELLO_OK;
}

static bool record_version_ok(uint8_t major, uint8_t minor)
{
    /* 0x0300 included: RFC 5246 Appendix E lets a client put its lowest version, SSL 3.0, in
     * the record layer of its first flight. */
    return major == 3 && minor <= 4;
}

/* Walks records from buf[0]. OK means the handshake message is whole in g->scratch. */
static enum proxy_hello_result reassemble(const uint8_t *buf, size_t len, struct gather *g,
                                          struct proxy_hello *out)
{
    if (len == 0)
        return AWF_HELLO_NEED_MORE;
    if (buf[0] != CT_HANDSHAKE)
        return fail(out, AWF_HELLO_NOT_TLS, "first byte is not a TLS handshake record");
    if (len >= 2 && buf[1] != 3)
        return fail(out, AWF_HELLO_NOT_TLS, "record version major is not 3");

    size_t pos = 0;
    unsigned records = 0;
    for (;;) {
        /* The next record needs at least a header and one byte. */
        if (pos + REC_HEADER + 1 > AWF_HELLO_MAX_WIRE)
            return fail(out, AWF_HELLO_TOO_BIG, "ClientHello records longer than MAX_WIRE");
        size_t avail = len - pos;
        const uint8_t *h = buf + pos;
        /* Check what there is of a partial header now rather than after the next read. */
        if (avail >= 1 && h[0] != CT_HANDSHAKE)
            return fail(out, AWF_HELLO_MALFORMED, "non-handshake record inside the ClientHello");
        if (avail >= 3 && !record_version_ok(h[1], h[2]))
            return fail(out, AWF_HELLO_MALFORMED, "bad record version");
        if (avail >= 3 && pos > 0 && (h[1] != buf[1] || h[2] != buf[2]))
            return fail(out, AWF_HELLO_MALFORMED, "record version changed between records");
        if (avail < REC_HEADER)
            return AWF_HELLO_NEED_MORE;

        size_t rlen = (size_t)h[3] << 8 | h[4];
        if (rlen == 0) /* RFC 8446 §5.1: no zero-length handshake fragments */
            return fail(out, AWF_HELLO_MALFORMED, "empty handshake record");
        if (rlen > REC_MAX)
            return fail(out, AWF_HELLO_MALFORMED, "record longer than 2^14");
        if (pos + REC_HEADER + rlen > AWF_HELLO_MAX_WIRE)
            return fail(out, AWF_HELLO_TOO_BIG, "ClientHello records longer than MAX_WIRE");
        if (records == 0)
            out->record_version = (uint16_t)(h[1] << 8 | h[2]);
        records++;

        size_t got = avail - REC_HEADER < rlen ? avail - REC_HEADER : rlen;
        enum proxy_hello_result r = gather_add(g, h + REC_HEADER, got, out);
        if (r != AWF_HELLO_OK)
            return r;
        if (got < rlen)
            return AWF_HELLO_NEED_MORE;
        pos += REC_HEADER + rlen;
        if (g->need != 0 && g->have == g->need) {
            out->consumed = pos;
            out->n_records = records > 255 ? 255 : (uint8_t)records;
            return AWF_HELLO_OK;
        }
    }
}

/* ---- ClientHello body ---- */

/* A host name as RFC 6066 §3 wants it: an ASCII DNS name, no IP literal syntax beyond
 * digits and dots, labels of 1..63 bytes of [A-Za-z0-9_-], at most 253 bytes, one trailing
 * dot tolerated (some clients send it; the policy drops it). Underscore is allowed as real
 * hostnames carry it. Anything else (NUL, controls, spaces, %, UTF-8) is refused here. */
static bool host_name_ok(const uint8_t *p, size_t n)
{
    if (n > 0 && p[n - 1] == '.')
        n--;
    if (n == 0 || n > AWF_HOST_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0;
}

/* server_name (RFC 6066 §3). Exactly one entry, of type host_name: the RFC forbids two names
 * of one type, no other type was ever defined, and a second name would let a client show the
 * policy one name and the server another. */
static enum proxy_hello_result ext_server_name(struct rd ext, struct proxy_hello *out)
{
    struct rd list, name;
    uint8_t type;
    if (!rd_vec(&ext, 2, &list) || ext.left != 0)
        return fail(out, AWF_HELLO_MALFORMED, "server_name: bad list length");
    if (!rd_u8(&list, &type))
        return fail(out, AWF_HELLO_MALFORMED, "server_name: empty list");
    if (type != 0)
        return fail(out, AWF_HELLO_MALFORMED, "server_name: name type is not host_name");
    if (!rd_vec(&list, 2, &name))
        return fail(out, AWF_HELLO_MALFORMED, "server_name: bad name length");
    if (list.left != 0)
        return fail(out, AWF_HELLO_MALFORMED, "server_name: more than one name");
    if (!host_name_ok(name.p, name.left))
        return fail(out, AWF_HELLO_MALFORMED, "server_name: not a valid host name");
    out->sni = (const char *)name.p;
    out->sni_len = name.left;
    out->has_sni = true;
    return AWF_HELLO_OK;
}

/* application_layer_protocol_negotiation (RFC 7301 §3.1): a non-empty list of non-empty
 * names. Names are opaque bytes; only h2 and http/1.1 are looked for. */
static enum proxy_hello_result ext_alpn(struct rd ext, struct proxy_hello *out)
{
    struct rd list, name;
    if (!rd_vec(&ext, 2, &list) || ext.left != 0)
        return fail(out, AWF_HELLO_MALFORMED, "alpn: bad list length");
    if (list.left == 0)
        return fail(out, AWF_HELLO_MALFORMED, "alpn: empty list");
    while (list.left > 0) {
        if (!rd_vec(&list, 1, &name) || name.left == 0)
            return fail(out, AWF_HELLO_MALFORMED, "alpn: bad protocol name");
        if (!out->alpn) {
            out->alpn = (const char *)name.p;
            out->alpn_len = name.left;
        }
        if (name.left == 2 && memcmp(name.p, "h2", 2) == 0)
            out->alpn_h2 = true;
        if (name.left == 8 && memcmp(name.p, "http/1.1", 8) == 0)
            out->alpn_http11 = true;
    }
    out->has_alpn = true;
    return AWF_HELLO_OK;
}

/* supported_versions (RFC 8446 §4.2.1), ClientHello form: a list of 1..127 versions. */
static enum proxy_hello_result ext_supported_versions(struct rd ext, struct proxy_hello *out)
{
    struct rd list;
    uint16_t v;
    if (!rd_vec(&ext, 1, &list) || ext.left != 0 || list.left < 2 || list.left % 2 != 0)
        return fail(out, AWF_HELLO_MALFORMED, "supported_versions: bad list length");
    while (rd_u16(&list, &v))
        if (v == 0x0304)
            out->tls13_offered = true;
    return AWF_HELLO_OK;
}

/* Duplicate extension types are refused (RFC 8446 §4.2, RFC 5246 §7.4.1.4): a set of the
 * 65536 possible types, on the stack (8 KiB) to keep the parser free of allocation. */
struct ext_seen {
    uint64_t bits[65536 / 64];
};

static bool seen_add(struct ext_seen *s, uint16_t type)
{
    uint64_t bit = UINT64_C(1) << (type % 64);
    if (s->bits[type / 64] & bit)
        return false;
    s->bits[type / 64] |= bit;
    return true;
}

static enum proxy_hello_result parse_extensions(struct rd exts, struct proxy_hello *out)
{
    struct ext_seen seen;
    memset(&seen, 0, sizeof(seen));
    unsigned n = 0;
    while (exts.left > 0) {
        uint16_t type;
        struct rd data;
        if (!rd_u16(&exts, &type) || !rd_vec(&exts, 2, &data))
            return fail(out, AWF_HELLO_MALFORMED, "extension runs past the extensions block");
        if (!seen_add(&seen, type))
            return fail(out, AWF_HELLO_MALFORMED, "duplicate extension");
        n++;
        enum proxy_hello_result r = AWF_HELLO_OK;
        switch (type) {
        case EXT_SERVER_NAME:
            r = ext_server_name(data, out);
            break;
        case EXT_ALPN:
            r = ext_alpn(data, out);
            break;
        case EXT_SUPPORTED_VERSIONS:
            r = ext_supported_versions(data, out);
            break;
        case EXT_ECH:
            /* ECHClientHello starts with its type byte; the payload is opaque to us. */
            if (data.left == 0)
                return fail(out, AWF_HELLO_MALFORMED, "encrypted_client_hello: empty");
            out->ech_offered = true;
            break;
        case EXT_PRE_SHARED_KEY:
            /* RFC 8446 §4.2.11: it MUST be the last extension (its binders cover the rest). */
            if (exts.left != 0)
                return fail(out, AWF_HELLO_MALFORMED, "pre_shared_key is not the last extension");
            break;
        default:
            break; /* any other extension, empty or not, is opaque */
        }
        if (r != AWF_HELLO_OK)
            return r;
    }
    out->n_extensions = (uint16_t)n; /* at most 16380 / 4 */
    return AWF_HELLO_OK;
}

/* The ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). */
static enum proxy_hello_result parse_body(struct rd r, struct proxy_hello *out)
{
    uint16_t version;
    struct rd sid, suites, comp, exts;
    if (!rd_u16(&r, &version) || !rd_skip(&r, 32))
        return fail(out, AWF_HELLO_MALFORMED, "ClientHello too short for version and random");
    if (version >> 8 != 3)
        return fail(out, AWF_HELLO_MALFORMED, "ClientHello version major is not 3");
    out->legacy_version = version;
    if (!rd_vec(&r, 1, &sid) || sid.left > 32)
        return fail(out, AWF_HELLO_MALFORMED, "bad session id");
    if (!rd_vec(&r, 2, &suites) || suites.left == 0 || suites.left % 2 != 0)
        return fail(out, AWF_HELLO_MALFORMED, "bad cipher suites");
    if (!rd_vec(&r, 1, &comp) || comp.left == 0)
        return fail(out, AWF_HELLO_MALFORMED, "bad compression methods");
    if (!memchr(comp.p, 0, comp.left)) /* RFC 5246: null compression MUST be offered */
        return fail(out, AWF_HELLO_MALFORMED, "null compression not offered");
    if (r.left == 0)
        return AWF_HELLO_OK; /* before TLS 1.3, the extensions block may be absent */
    if (!rd_vec(&r, 2, &exts) || r.left != 0)
        return fail(out, AWF_HELLO_MALFORMED, "extensions length does not match ClientHello");
    return parse_extensions(exts, out);
}

enum proxy_hello_result proxy_hello_parse(const uint8_t *buf, size_t len, uint8_t *scratch,
                                          struct proxy_hello *out)
{
    memset(out, 0, sizeof(*out));
    struct gather g = {.scratch = scratch, .have = 0, .need = 0};
    enum proxy_hello_result r = reassemble(buf, len, &g, out);
    if (r == AWF_HELLO_OK) {
        out->hello_len = g.need;
        struct rd body = {.p = scratch + HS_HEADER, .left = g.need - HS_HEADER};
        r = parse_body(body, out);
    }
    if (r != AWF_HELLO_OK) {
        /* Keep the reason and nothing half-filled: a caller must not act on a partial parse. */
        const char *why = out->error;
        memset(out, 0, sizeof(*out));
        out->error = why;
    }
    return r;
}
