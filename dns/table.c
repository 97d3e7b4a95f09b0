#include "dns/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: keys are short host names; nothing here is exposed to hash flooding beyond what the
 * policy lets through, and chains stay short because the table grows. */
uint32_t dns_table_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

int dns_table_init(struct dns_table *t, size_t expected)
{
    size_t nb = 16;
    while (nb < expected && nb < ((size_t)1 << 30))
        nb <<= 1;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    if (!t->buckets)
        return -ENOMEM;
    t->mask = nb - 1;
    t->n = 0;
    return 0;
}

void dns_table_free(struct dns_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->mask = 0;
    t->n = 0;
}

struct dns_node *dns_table_find(const struct dns_table *t, const char *key)
{
    return dns_table_find_hashed(t, key, dns_table_hash(key));
}

struct dns_node *dns_table_find_hashed(const struct dns_table *t, const char *key, uint32_t h)
{
    for (struct dns_node *n = t->buckets[h & t->mask]; n; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static void grow(struct dns_table *t)
{
    size_t nb = (t->mask + 1) * 2;
    struct dns_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        struct dns_node *n = t->buckets[i];
        while (n) {
            struct dns_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = nb - 1;
}

void dns_table_insert(struct dns_table *t, struct dns_node *node)
{
    if (t->n >= t->mask + 1)
        grow(t);
    node->hash = dns_table_hash(node->key);
    struct dns_node **b = &t->buckets[node->hash & t->mask];
    node->next = *b;
    *b = node;
    t->n++;
}

void dns_table_remove(struct dns_table *t, struct dns_node *node)
{
    for (struct dns_node **p = &t->buckets[node->hash & t->mask]; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            t->n--;
            return;
        }
    }
}
