#include "dns/cache.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    struct dns_ttl_entry ttl; /* first: the table frees the entry; key stored after addr[] */
    int status;
    size_t n;
    union dns_sa addr[];
};

int dns_answers_init(struct dns_answers *c, size_t max)
{
    return dns_ttl_init(&c->table, max, AWF_DNS_CACHE_DEFAULT_MAX);
}

void dns_answers_free(struct dns_answers *c)
{
    dns_ttl_free(&c->table);
}

/* dns_answers_get for a caller holding a lock: hash is dns_table_hash(key), and the addresses
 * are copied in their compact form to sa (AWF_DNS_MAX_ADDRS of room), *n of them. */
static bool answers_copy(struct dns_answers *c, const char *key, uint32_t hash, uint64_t now_ms,
                         int *status, union dns_sa *sa, size_t *n)
{
    struct dns_ttl_entry *t = dns_ttl_find(&c->table, key, hash, now_ms);
    if (!t)
        return false;
    struct cache_entry *e = AWF_DNS_CONTAINER_OF(t, struct cache_entry, ttl);
    *status = e->status;
    *n = e->n;
    if (e->n)
        memcpy(sa, e->addr, e->n * sizeof(e->addr[0]));
    return true;
}

static void expand(const union dns_sa *sa, size_t n, struct awf_dns_addrs *out)
{
    out->n = n;
    out->from_hosts = false;
    for (size_t i = 0; i < n; i++)
        dns_sa_store(&sa[i], &out->addr[i]);
}

bool dns_answers_get(struct dns_answers *c, const char *key, uint64_t now_ms, int *status,
                     struct awf_dns_addrs *out)
{
    union dns_sa sa[AWF_DNS_MAX_ADDRS];
    size_t n;
    if (!answers_copy(c, key, dns_table_hash(key), now_ms, status, sa, &n))
        return false;
    expand(sa, n, out);
    return true;
}

int dns_answers_put(struct dns_answers *c, const char *key, int status, const union dns_sa *addrs,
                    size_t n, uint64_t expires_ms)
{
    dns_ttl_make_room(&c->table, key);
    if (n > AWF_DNS_MAX_ADDRS)
        n = AWF_DNS_MAX_ADDRS;
    size_t klen = strlen(key);
    /* One allocation: the entry, its addresses, then its name. Owned by the table. */
    struct cache_entry *e = malloc(sizeof(*e) + n * sizeof(e->addr[0]) + klen + 1);
    if (!e)
        return -ENOMEM;
    char *name = (char *)&e->addr[n];
    memcpy(name, key, klen + 1);
    e->status = status;
    e->n = n;
    if (n)
        memcpy(e->addr, addrs, n * sizeof(e->addr[0]));
    dns_ttl_insert(&c->table, &e->ttl, name, expires_ms);
    return 0;
}

size_t dns_answers_size(const struct dns_answers *c)
{
    return dns_ttl_size(&c->table);
}

/* ---- the cache a resolver holds -------------------------------------------------------------- */

struct awf_dns_cache {
    uv_mutex_t mu;
    atomic_size_t refs;
    /* Written once, before any other thread sees the cache (dns_cache_make_shared). A private
     * cache skips the lock: its loop is the only user, and a hit stays as cheap as before. */
    bool shared;
    struct dns_answers answers; /* under mu when shared */
};

static int cache_new(size_t max, bool shared, struct awf_dns_cache **out)
{
    struct awf_dns_cache *c = calloc(1, sizeof(*c)); /* freed by the last dns_cache_unref */
    if (!c)
        return -ENOMEM;
    atomic_init(&c->refs, 1);
    int rc = dns_answers_init(&c->answers, max);
    if (rc < 0) {
        free(c);
        return rc;
    }
    /* The mutex is made even for a private cache, so that it can be shared later. */
    if (uv_mutex_init(&c->mu) != 0) {
        dns_answers_free(&c->answers);
        free(c);
        return -ENOMEM;
    }
    c->shared = shared;
    *out = c;
    return 0;
}

int dns_cache_create(size_t max_entries, struct awf_dns_cache **out)
{
    if (!out)
        return -EINVAL;
    return cache_new(max_entries, true, out);
}

int dns_cache_create_private(size_t max, struct awf_dns_cache **out)
{
    return cache_new(max, false, out);
}

struct awf_dns_cache *dns_cache_ref(struct awf_dns_cache *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void dns_cache_unref(struct awf_dns_cache *c)
{
    if (!c)
        return;
    /* Release so that every use of the cache by this holder happens before the free below. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    dns_answers_free(&c->answers);
    uv_mutex_destroy(&c->mu);
    free(c);
}

void dns_cache_destroy(struct awf_dns_cache *cache)
{
    dns_cache_unref(cache);
}

void dns_cache_make_shared(struct awf_dns_cache *c)
{
    c->shared = true;
}

static void lock(struct awf_dns_cache *c)
{
    if (c->shared)
        uv_mutex_lock(&c->mu);
}

static void unlock(struct awf_dns_cache *c)
{
    if (c->shared)
        uv_mutex_unlock(&c->mu);
}

bool dns_cache_get(struct awf_dns_cache *c, const char *key, uint64_t now_ms, int *status,
                   struct awf_dns_addrs *out)
{
    /* Only the table walk and a copy of the compact addresses under the lock: hashing the key
     * and widening the addresses to sockaddr_storage (128 bytes each) happen outside. */
    uint32_t hash = dns_table_hash(key);
    union dns_sa sa[AWF_DNS_MAX_ADDRS];
    size_t n = 0;
    lock(c);
    bool hit = answers_copy(&c->answers, key, hash, now_ms, status, sa, &n);
    unlock(c);
    if (hit)
        expand(sa, n, out);
    return hit;
}

int dns_cache_put(struct awf_dns_cache *c, const char *key, int status, const union dns_sa *addrs,
                  size_t n, uint64_t expires_ms)
{
    lock(c);
    int rc = dns_answers_put(&c->answers, key, status, addrs, n, expires_ms);
    unlock(c);
    return rc;
}

size_t dns_cache_count(struct awf_dns_cache *cache)
{
    lock(cache);
    size_t n = dns_answers_size(&cache->answers);
    unlock(cache);
    return n;
}
