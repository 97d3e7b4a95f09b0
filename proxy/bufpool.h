#ifndef AWF_PROXY_BUFPOOL_H
#define AWF_PROXY_BUFPOOL_H

/* Fixed-size I/O blocks from a per-loop free list. A block is taken when a read is about to
 * happen (libuv's alloc callback) and given back once its bytes are written out, so an idle
 * connection holds none. The block carries its own uv_write_t: writing it needs no allocation. */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct proxy_buf {
    uv_write_t req;         /* writes this block; req.data is set by the writer */
    struct proxy_buf *next; /* free list link */
    uv_stream_t *dst;       /* the stream the block was written to */
    size_t cap;             /* bytes at data */
    size_t off, len;        /* unconsumed bytes: data[off, off + len) */
    char data[];
};

struct proxy_bufpool {
    struct proxy_buf *free;
    size_t n_free, max_free; /* blocks kept for reuse beyond that are freed */
    size_t block;            /* bytes per pooled block */
    size_t in_use;           /* blocks handed out and not yet returned */
};

void proxy_bufpool_init(struct proxy_bufpool *bp, size_t block, size_t max_free);

/* A block with at least min_cap bytes (a pooled one when min_cap <= block, else a one-off
 * allocation), off and len zero. NULL when out of memory. */
struct proxy_buf *proxy_bufpool_get(struct proxy_bufpool *bp, size_t min_cap);

/* Gives b back (NULL is ignored). */
void proxy_bufpool_put(struct proxy_bufpool *bp, struct proxy_buf *b);

/* Frees the free list; blocks still in use must be returned first. */
void proxy_bufpool_cleanup(struct proxy_bufpool *bp);

/* The block whose data starts at base (as handed to libuv by the alloc callback). */
static inline struct proxy_buf *proxy_buf_of(char *base)
{
    return (struct proxy_buf *)(void *)(base - offsetof(struct proxy_buf, data));
}

#endif
