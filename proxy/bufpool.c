/* The per-loop pool of I/O blocks (bufpool.h says why): a free list of fixed-size blocks, and a
 * one-off block for a request larger than the block size. Calls nothing else in proxy/. */

#include "proxy/bufpool.h"

#include <stdlib.h>

void proxy_bufpool_init(struct proxy_bufpool *bp, size_t block, size_t max_free)
{
    bp->free = NULL;
    bp->n_free = 0;
    bp->max_free = max_free;
    bp->block = block;
    bp->in_use = 0;
}

struct proxy_buf *proxy_bufpool_get(struct proxy_bufpool *bp, size_t min_cap)
{
    struct proxy_buf *b;
    if (min_cap <= bp->block && bp->free) {
        b = bp->free;
        bp->free = b->next;
        bp->n_free--;
    } else {
        size_t cap = min_cap <= bp->block ? bp->block : min_cap;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
    }
    b->next = NULL;
    b->dst = NULL;
    b->off = 0;
    b->len = 0;
    bp->in_use++;
    return b;
}

void proxy_bufpool_put(struct proxy_bufpool *bp, struct proxy_buf *b)
{
    if (!b)
        return;
    bp->in_use--;
    /* One-off large blocks and blocks beyond the cap go back to malloc: the pool only keeps
     * what a busy loop will ask for again. */
    if (b->cap != bp->block || bp->n_free >= bp->max_free) {
        free(b);
        return;
    }
    b->next = bp->free;
    bp->free = b;
    bp->n_free++;
}

void proxy_bufpool_cleanup(struct proxy_bufpool *bp)
{
    while (bp->free) {
        struct proxy_buf *b = bp->free;
        bp->free = b->next;
        free(b);
    }
    bp->n_free = 0;
}
