#include "dns/ttl.h"

#include <stdlib.h>

int awf_dns_ttl_init(struct awf_dns_ttl *t, size_t max, size_t default_max)
{
    t->max = max ? max : default_max;
    awf_dns_list_init(&t->fifo);
    /* Buckets for a quarter of the bound: most caches never fill, and the table grows. */
    return awf_dns_table_init(&t->keys, t->max / 4);
}

static void drop(struct awf_dns_ttl *t, struct awf_dns_ttl_entry *e)
{
    awf_dns_table_remove(&t->keys, &e->node);
    awf_dns_list_unlink(&e->fifo);
    free(e);
}

void awf_dns_ttl_free(struct awf_dns_ttl *t)
{
    while (!awf_dns_list_empty(&t->fifo))
        drop(t, AWF_DNS_CONTAINER_OF(t->fifo.next, struct awf_dns_ttl_entry, fifo));
    awf_dns_table_free(&t->keys);
}

struct awf_dns_ttl_entry *awf_dns_ttl_find(struct awf_dns_ttl *t, const char *key, uint32_t hash,
                                           uint64_t now_ms)
{
    struct awf_dns_node *node = awf_dns_table_find_hashed(&t->keys, key, hash);
    if (!node)
        return NULL;
    struct awf_dns_ttl_entry *e = AWF_DNS_CONTAINER_OF(node, struct awf_dns_ttl_entry, node);
    if (now_ms >= e->expires_ms) {
        drop(t, e);
        return NULL;
    }
    return e;
}

void awf_dns_ttl_make_room(struct awf_dns_ttl *t, const char *key)
{
    struct awf_dns_node *old = awf_dns_table_find(&t->keys, key);
    if (old)
        drop(t, AWF_DNS_CONTAINER_OF(old, struct awf_dns_ttl_entry, node));
    while (t->keys.n >= t->max && !awf_dns_list_empty(&t->fifo))
        drop(t, AWF_DNS_CONTAINER_OF(t->fifo.next, struct awf_dns_ttl_entry, fifo));
}

void awf_dns_ttl_insert(struct awf_dns_ttl *t, struct awf_dns_ttl_entry *e, const char *key,
                        uint64_t expires_ms)
{
    e->node.key = key;
    e->expires_ms = expires_ms;
    awf_dns_table_insert(&t->keys, &e->node);
    awf_dns_list_append(&t->fifo, &e->fifo);
}

size_t awf_dns_ttl_size(const struct awf_dns_ttl *t)
{
    return t->keys.n;
}
