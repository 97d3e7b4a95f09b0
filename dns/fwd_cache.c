/* The forwarder's cache: one allocation per entry holding the records, their pool of names and
 * addresses, and the key "TYPE/name". */

#include "dns/fwd_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX 10000
#define KEY_MAX     (6 + AWF_DNSW_NAME_MAX + 1) /* "65535/" + name + NUL */

struct fwd_entry {
    struct awf_dns_node node; /* key stored after the pool */
    struct awf_dns_link fifo;
    uint64_t stored_ms, expires_ms;
    int rcode;
    size_t n;
    uint8_t *pool; /* after rr[] */
    struct awf_dnsw_rr rr[];
};

static void make_key(char *key, const char *host, uint16_t type)
{
    snprintf(key, KEY_MAX, "%u/%s", type, host);
}

int awf_fwd_cache_init(struct awf_fwd_cache *c, size_t max)
{
    c->max = max ? max : DEFAULT_MAX;
    awf_dns_list_init(&c->fifo);
    return awf_dns_table_init(&c->keys, c->max / 4);
}

static void drop(struct awf_fwd_cache *c, struct fwd_entry *e)
{
    awf_dns_table_remove(&c->keys, &e->node);
    awf_dns_list_unlink(&e->fifo);
    free(e);
}

void awf_fwd_cache_free(struct awf_fwd_cache *c)
{
    while (!awf_dns_list_empty(&c->fifo))
        drop(c, AWF_DNS_CONTAINER_OF(c->fifo.next, struct fwd_entry, fifo));
    awf_dns_table_free(&c->keys);
}

bool awf_fwd_cache_get(struct awf_fwd_cache *c, const char *host, uint16_t type, uint64_t now_ms,
                       struct awf_fwd_hit *hit)
{
    char key[KEY_MAX];
    make_key(key, host, type);
    struct awf_dns_node *node = awf_dns_table_find(&c->keys, key);
    if (!node)
        return false;
    struct fwd_entry *e = AWF_DNS_CONTAINER_OF(node, struct fwd_entry, node);
    if (now_ms >= e->expires_ms) {
        drop(c, e);
        return false;
    }
    hit->rcode = e->rcode;
    hit->n = e->n;
    hit->rr = e->rr;
    hit->pool = e->pool;
    hit->age_s = (uint32_t)((now_ms - e->stored_ms) / 1000);
    return true;
}

int awf_fwd_cache_put(struct awf_fwd_cache *c, const char *host, uint16_t type,
                      const struct awf_dnsw_answer *a, uint32_t ttl_s, uint64_t now_ms)
{
    char key[KEY_MAX];
    make_key(key, host, type);
    struct awf_dns_node *old = awf_dns_table_find(&c->keys, key);
    if (old)
        drop(c, AWF_DNS_CONTAINER_OF(old, struct fwd_entry, node));
    if (ttl_s == 0)
        return 0;
    while (c->keys.n >= c->max && !awf_dns_list_empty(&c->fifo))
        drop(c, AWF_DNS_CONTAINER_OF(c->fifo.next, struct fwd_entry, fifo));

    size_t klen = strlen(key);
    /* One allocation, owned by the cache: the entry, its records, the pool, the key. */
    struct fwd_entry *e = malloc(sizeof(*e) + a->n * sizeof(e->rr[0]) + a->pool_len + klen + 1);
    if (!e)
        return -ENOMEM;
    e->pool = (uint8_t *)&e->rr[a->n];
    char *k = (char *)e->pool + a->pool_len;
    memcpy(k, key, klen + 1);
    if (a->n)
        memcpy(e->rr, a->rr, a->n * sizeof(e->rr[0]));
    if (a->pool_len)
        memcpy(e->pool, a->pool, a->pool_len);
    e->n = a->n;
    e->rcode = a->rcode;
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + (uint64_t)ttl_s * 1000;
    e->node.key = k;
    awf_dns_table_insert(&c->keys, &e->node);
    awf_dns_list_append(&c->fifo, &e->fifo);
    return 0;
}

size_t awf_fwd_cache_size(const struct awf_fwd_cache *c)
{
    return c->keys.n;
}
