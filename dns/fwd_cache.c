/* The forwarder's cache: one allocation per entry holding the records, their pool of names and
 * addresses, and the key "TYPE/name". */

#include "dns/fwd_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX 10000
#define KEY_MAX     (6 + AWF_DNS_WIRE_NAME_MAX + 1) /* "65535/" + name + NUL */

struct fwd_entry {
    struct dns_ttl_entry ttl; /* first: the table frees the entry; key stored after the pool */
    uint64_t stored_ms;
    int rcode;
    size_t n;
    uint8_t *pool; /* after rr[] */
    struct dns_wire_rr rr[];
};

static void make_key(char *key, const char *host, uint16_t type)
{
    snprintf(key, KEY_MAX, "%u/%s", type, host);
}

int dns_fwd_cache_init(struct dns_fwd_cache *c, size_t max)
{
    return dns_ttl_init(&c->table, max, DEFAULT_MAX);
}

void dns_fwd_cache_free(struct dns_fwd_cache *c)
{
    dns_ttl_free(&c->table);
}

bool dns_fwd_cache_get(struct dns_fwd_cache *c, const char *host, uint16_t type, uint64_t now_ms,
                       struct dns_fwd_hit *hit)
{
    char key[KEY_MAX];
    make_key(key, host, type);
    struct dns_ttl_entry *t = dns_ttl_find(&c->table, key, dns_table_hash(key), now_ms);
    if (!t)
        return false;
    struct fwd_entry *e = AWF_DNS_CONTAINER_OF(t, struct fwd_entry, ttl);
    hit->rcode = e->rcode;
    hit->n = e->n;
    hit->rr = e->rr;
    hit->pool = e->pool;
    hit->age_s = (uint32_t)((now_ms - e->stored_ms) / 1000);
    return true;
}

int dns_fwd_cache_put(struct dns_fwd_cache *c, const char *host, uint16_t type,
                      const struct dns_wire_answer *a, uint32_t ttl_s, uint64_t now_ms)
{
    char key[KEY_MAX];
    make_key(key, host, type);
    dns_ttl_make_room(&c->table, key);
    if (ttl_s == 0)
        return 0;
    size_t klen = strlen(key);
    /* One allocation, owned by the table: the entry, its records, the pool, the key. */
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
    dns_ttl_insert(&c->table, &e->ttl, k, now_ms + (uint64_t)ttl_s * 1000);
    return 0;
}
