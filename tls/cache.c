/* The leaf certificate cache: one LRU per process behind a mutex. Lookups are a hash probe and
 * a list move, microseconds against the ~0.2 ms a mint costs (tls/README.md); a mint happens
 * outside the lock (two loops minting the same name at once both mint, and the second put replaces
 * the first). */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls-int.h"

#define BUCKETS 4096 /* power of two; chains stay short up to tens of thousands of names */

struct entry {
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* LRU, most recently used first */
    X509 *cert;                /* one reference owned by the entry */
    size_t bytes;
    uint32_t hash;
    char name[]; /* canonical, NUL-terminated */
};

struct tls_cache {
    pthread_mutex_t mu;
    struct entry *buckets[BUCKETS];
    struct entry *head, *tail;
    size_t max_bytes;
    struct tls_cache_stats st;
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h ^ (h >> 16);
}

struct tls_cache *tls_cache_create(size_t max_bytes)
{
    struct tls_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

void tls_cache_destroy(struct tls_cache *c)
{
    if (!c)
        return;
    for (struct entry *e = c->head, *n; e; e = n) {
        n = e->next;
        X509_free(e->cert);
        free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void lru_unlink(struct tls_cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct tls_cache *c, struct entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    else
        c->tail = e;
    c->head = e;
}

static struct entry **find(struct tls_cache *c, const char *name, uint32_t h)
{
    struct entry **pp = &c->buckets[h & (BUCKETS - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->name, name) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void drop(struct tls_cache *c, struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->st.entries--;
    c->st.bytes -= e->bytes;
    X509_free(e->cert);
    free(e);
}

void tls_cache_clear(struct tls_cache *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->head) {
        struct entry *e = c->head;
        drop(c, find(c, e->name, e->hash));
    }
    pthread_mutex_unlock(&c->mu);
}

X509 *tls_cache_get(struct tls_cache *c, const char *name)
{
    uint32_t h = hash_name(name);
    X509 *x = NULL;
    pthread_mutex_lock(&c->mu);
    struct entry *e = *find(c, name, h);
    if (e) {
        lru_unlink(c, e);
        lru_front(c, e);
        X509_up_ref(e->cert);
        x = e->cert;
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return x;
}

int tls_cache_put(struct tls_cache *c, const char *name, X509 *cert)
{
    size_t nlen = strlen(name);
    int der = i2d_X509(cert, NULL);
    /* A parsed X509 holds its DER plus decoded fields: about three times the DER, measured
     * with malloc statistics on P-256 leaves (~0.5 KB DER, ~1.5 KB in memory). */
    size_t bytes = (der > 0 ? (size_t)der * 3 : 2048) + sizeof(struct entry) + nlen + 1;
    if (bytes > c->max_bytes)
        return 0;
    struct entry *e = malloc(sizeof(*e) + nlen + 1); /* owned by the cache until evicted */
    if (!e)
        return -ENOMEM;
    memcpy(e->name, name, nlen + 1);
    e->hash = hash_name(name);
    e->bytes = bytes;
    X509_up_ref(cert);
    e->cert = cert;
    pthread_mutex_lock(&c->mu);
    struct entry **pp = find(c, name, e->hash);
    if (*pp)
        drop(c, pp);
    e->hnext = NULL;
    *pp = e;
    lru_front(c, e);
    c->st.entries++;
    c->st.bytes += bytes;
    while (c->st.bytes > c->max_bytes && c->tail != e) {
        struct entry *old = c->tail;
        drop(c, find(c, old->name, old->hash));
        c->st.evictions++;
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void tls_cache_stats(struct tls_cache *c, struct tls_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
