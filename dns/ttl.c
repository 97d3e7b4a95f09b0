#include "dns/ttl.h"

#include <stdlib.h>

int dns_ttl_init(struct dns_ttl *t, size_t max, size_t default_max)
{
    t->max = max ? max : default_max;
    dns_list_init(&t->fifo);
    /* Buckets for a quarter of the bound: most caches never fill, and the table grows. */
    return dns_table_init(&t->keys, t->max / 4);
}

static void drop(struct dns_ttl *t, struct dns_ttl_entry *e)
{
    dns_table_remove(&t->keys, &e->node);
    dns_list_unlink(&e->fifo);
    free(e);
}

void dns_ttl_free(struct dns_ttl *t)
{
    while (!dns_list_empty(&t->fifo))
        drop(t, AWF_DNS_CONTAINER_OF(t->fifo.next, struct dns_ttl_entry, fifo));
    dns_table_free(&t->keys);
}

struct dns_ttl_entry *dns_ttl_find(struct dns_ttl *t, const char *key, uint32_t hash,
                                   uint64_t now_ms)
{
    struct dns_node *node = dns_table_find_hashed(&t->keys, key, hash);
    if (!node)
        return NULL;
    struct dns_ttl_entry *e = AWF_DNS_CONTAINER_OF(node, struct dns_ttl_entry, node);
    if (now_ms >= e->expires_ms) {
        drop(t, e);
        return NULL;
    }
    return e;
}

void dns_ttl_make_room(struct dns_ttl *t, const char *key)
{
    struct dns_node *old = dns_table_find(&t->keys, key);
    if (old)
        drop(t, AWF_DNS_CONTAINER_OF(old, struct dns_ttl_entry, node));
    while (t->keys.n >= t->max && !dns_list_empty(&t->fifo))
        drop(t, AWF_DNS_CONTAINER_OF(t->fifo.next, struct dns_ttl_entry, fifo));
}

void dns_ttl_insert(struct dns_ttl *t, struct dns_ttl_entry *e, const char *key,
                    uint64_t expires_ms)
{
    e->node.key = key;
    e->expires_ms = expires_ms;
    dns_table_insert(&t->keys, &e->node);
    dns_list_append(&t->fifo, &e->fifo);
}

size_t dns_ttl_size(const struct dns_ttl *t)
{
    return t->keys.n;
}
