#ifndef AWF_PROXY_H2C_H
#define AWF_PROXY_H2C_H

/* The first request of an h2c prior-knowledge connection inside a CONNECT tunnel: the preface,
 * the frames a client sends before its first HEADERS (SETTINGS, WINDOW_UPDATE, PRIORITY, PING,
 * unknown extension types), then that HEADERS and its CONTINUATIONs, decoded through HPACK for
 * :authority and host. Pure: no I/O; allocations live within the call. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proxy_h2c_result {
    AWF_H2C_NEED_MORE, /* the first header block is not complete yet */
    AWF_H2C_OK,        /* decoded: out is filled */
    AWF_H2C_BAD,       /* not a valid h2c start, or a block HPACK cannot decode: out->error */
    AWF_H2C_TOO_BIG,   /* the first header block does not end within max bytes */
};

#define AWF_H2C_VALUE_MAX 255

struct proxy_h2c_req {
    char authority[AWF_H2C_VALUE_MAX + 1]; /* the first :authority, NUL-terminated */
    char host[AWF_H2C_VALUE_MAX + 1];      /* the first host field */
    size_t authority_len, host_len;
    unsigned n_authority, n_host; /* how many of each the block holds */
    uint32_t stream;              /* the stream of the first HEADERS */
    size_t end;                   /* bytes up to the end of the block's last frame */
    const char *error;            /* AWF_H2C_BAD: why (static) */
};

/* p[0..n) starts with the preface (borrowed for the call). max bounds the bytes read. */
enum proxy_h2c_result proxy_h2c_first_request(const uint8_t *p, size_t n, size_t max,
                                              struct proxy_h2c_req *out);

#endif
