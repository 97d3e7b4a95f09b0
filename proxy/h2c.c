/* The first h2c request's authority (h2c.h): frames per RFC 9113 section 4 and 6, the header
 * block through proxy/hpack.c. A value too long to hold is an error, not a truncation: a
 * truncated name could look like the CONNECT host. */

#include "proxy/h2c.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/hpack.h"

#define PREFACE_LEN 24
enum {
    DATA = 0,
    HEADERS = 1,
    PRIORITY = 2,
    RST = 3,
    SETTINGS = 4,
    PUSH = 5,
    PING = 6,
    GOAWAY = 7,
    WINDOW = 8,
    CONTINUATION = 9
};
enum { END_HEADERS = 0x4, PADDED = 0x8, PRIO = 0x20 };

static int field(void *arg, const char *name, size_t nl, const char *value, size_t vl)
{
    struct proxy_h2c_req *r = arg;
    char *dst;
    size_t *len;
    if (nl == 10 && memcmp(name, ":authority", 10) == 0) {
        if (r->n_authority++)
            return 0;
        dst = r->authority, len = &r->authority_len;
    } else if (nl == 4 && strncasecmp(name, "host", 4) == 0) {
        if (r->n_host++)
            return 0;
        dst = r->host, len = &r->host_len;
    } else {
        return 0;
    }
    if (vl > AWF_H2C_VALUE_MAX)
        return 1;
    memcpy(dst, value, vl);
    dst[vl] = '\0';
    *len = vl;
    return 0;
}

static enum proxy_h2c_result bad(struct proxy_h2c_req *out, const char *why)
{
    out->error = why;
    return AWF_H2C_BAD;
}

/* Decodes the block made of the fragments of frames [first, last] (all complete). */
static enum proxy_h2c_result decode(const uint8_t *p, size_t first, size_t end,
                                    struct proxy_h2c_req *out)
{
    uint8_t *block = malloc(end - first); /* the fragments joined; freed below */
    if (!block)
        return bad(out, "out of memory");
    size_t bl = 0, pos = first;
    while (pos < end) {
        size_t len = (size_t)p[pos] << 16 | (size_t)p[pos + 1] << 8 | p[pos + 2];
        uint8_t type = p[pos + 3], flags = p[pos + 4];
        const uint8_t *f = p + pos + 9;
        size_t fl = len, skip = 0, pad = 0;
        if (type == HEADERS && (flags & PADDED)) {
            if (fl < 1) {
                free(block);
                return bad(out, "h2c HEADERS too short for its padding");
            }
            pad = f[0];
            skip = 1;
        }
        if (type == HEADERS && (flags & PRIO))
            skip += 5;
        if (skip + pad > fl) {
            free(block);
            return bad(out, "h2c HEADERS padding past the frame");
        }
        memcpy(block + bl, f + skip, fl - skip - pad);
        bl += fl - skip - pad;
        pos += 9 + len;
    }
    struct proxy_hpack h;
    proxy_hpack_init(&h, 65536);
    int rc = proxy_hpack_decode(&h, block, bl, field, out);
    proxy_hpack_free(&h);
    free(block);
    if (rc == 1)
        return bad(out, "an h2c :authority or host too long");
    return rc ? bad(out, "an h2c header block HPACK cannot decode") : AWF_H2C_OK;
}

enum proxy_h2c_result proxy_h2c_first_request(const uint8_t *p, size_t n, size_t max,
                                              struct proxy_h2c_req *out)
{
    memset(out, 0, sizeof(*out));
    size_t pos = PREFACE_LEN, block_start = 0;
    bool in_block = false;
    while (true) {
        if (pos > max)
            return AWF_H2C_TOO_BIG;
        if (n < pos + 9)
            return n < max ? AWF_H2C_NEED_MORE : AWF_H2C_TOO_BIG;
        size_t len = (size_t)p[pos] << 16 | (size_t)p[pos + 1] << 8 | p[pos + 2];
        uint8_t type = p[pos + 3], flags = p[pos + 4];
        uint32_t stream = ((uint32_t)p[pos + 5] << 24 | (uint32_t)p[pos + 6] << 16 |
                           (uint32_t)p[pos + 7] << 8 | p[pos + 8]) &
                          0x7fffffffu;
        if (pos + 9 + len > max)
            return AWF_H2C_TOO_BIG;
        if (n < pos + 9 + len)
            return AWF_H2C_NEED_MORE;
        if (in_block) { /* only CONTINUATIONs of the same stream may follow (6.10) */
            if (type != CONTINUATION || stream != out->stream)
                return bad(out, "an h2c header block interrupted");
        } else if (type == HEADERS) {
            if (stream == 0 || stream % 2 == 0)
                return bad(out, "h2c HEADERS on a stream a client cannot open");
            in_block = true;
            block_start = pos;
            out->stream = stream;
        } else if (type == DATA || type == RST || type == PUSH || type == GOAWAY ||
                   type == CONTINUATION) {
            return bad(out, "an h2c frame before the first HEADERS that has no stream to act on");
        } /* SETTINGS, WINDOW_UPDATE, PRIORITY, PING, extension types: nothing to decide */
        pos += 9 + len;
        if (in_block && (flags & END_HEADERS)) {
            out->end = pos;
            return decode(p, block_start, pos, out);
        }
    }
}
