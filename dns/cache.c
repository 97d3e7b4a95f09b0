#include "dns/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    struct awf_dns_node node; /* key = name, stored after addr[] */
    struct awf_dns_link fifo;
    uint64_t expires_ms;
    int status;
    size_t n;
    union awf_dns_sa addr[];
};

int awf_dns_cache_init(struct awf_dns_cache *c, size_t max)
{
    c->max = max ? max : AWF_DNS_CACHE_DEFAULT_MAX;
    awf_dns_list_init(&c->fifo);
    /* Buckets for a quarter of the bound: most caches never fill, and the table grows. */
    return awf_dns_table_init(&c->names, c->max / 4);
}

static void drop(struct awf_dns_cache *c, struct cache_entry *e)
{
    awf_dns_table_remove(&c->names, &e->node);
    awf_dns_list_unlink(&e->fifo);
    free(e);
}

void awf_dns_cache_free(struct awf_dns_cache *c)
{
    while (!awf_dns_list_empty(&c->fifo))
        drop(c, AWF_DNS_CONTAINER_OF(c->fifo.next, struct cache_entry, fifo));
    awf_dns_table_free(&c->names);
}

bool awf_dns_cache_get(struct awf_dns_cache *c, const char *key, uint64_t now_ms, int *status,
                       struct awf_dns_addrs *out)
{
    struct awf_dns_node *n = awf_dns_table_find(&c->names, key);
    if (!n)
        return false;
    struct cache_entry *e = AWF_DNS_CONTAINER_OF(n, struct cache_entry, node);
    if (now_ms >= e->expires_ms) {
        drop(c, e);
        return false;
    }
    *status = e->status;
    out->n = 0;
    for (size_t i = 0; i < e->n; i++)
        awf_dns_sa_store(&e->addr[i], &out->addr[out->n++]);
    return true;
}

int awf_dns_cache_put(struct awf_dns_cache *c, const char *key, int status,
                      const union awf_dns_sa *addrs, size_t n, uint64_t expires_ms)
{
    struct awf_dns_node *old = awf_dns_table_find(&c->names, key);
    if (old)
        drop(c, AWF_DNS_CONTAINER_OF(old, struct cache_entry, node));
    if (n > AWF_DNS_MAX_ADDRS)
        n = AWF_DNS_MAX_ADDRS;
    while (c->names.n >= c->max && !awf_dns_list_empty(&c->fifo))
        drop(c, AWF_DNS_CONTAINER_OF(c->fifo.next, struct cache_entry, fifo));

    size_t klen = strlen(key);
    /* One allocation: the entry, its addresses, then its name. Owned by the cache. */
    struct cache_entry *e = malloc(sizeof(*e) + n * sizeof(e->addr[0]) + klen + 1);
    if (!e)
        return -ENOMEM;
    char *name = (char *)&e->addr[n];
    memcpy(name, key, klen + 1);
    e->node.key = name;
    e->expires_ms = expires_ms;
    e->status = status;
    e->n = n;
    if (n)
        memcpy(e->addr, addrs, n * sizeof(e->addr[0]));
    awf_dns_table_insert(&c->names, &e->node);
    awf_dns_list_append(&c->fifo, &e->fifo);
    return 0;
}

size_t awf_dns_cache_size(const struct awf_dns_cache *c)
{
    return c->names.n;
}
