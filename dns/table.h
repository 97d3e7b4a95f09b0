#ifndef AWF_DNS_TABLE_H
#define AWF_DNS_TABLE_H

/* A chained hash table keyed by NUL-terminated names, intrusive (the caller embeds a node in its
 * own struct and owns it), private to dns/. Used by the cache, the hosts table and the table of
 * lookups in flight. */

#include <stddef.h>
#include <stdint.h>

struct dns_node {
    struct dns_node *next;
    const char *key; /* borrowed: points into the struct that embeds the node */
    uint32_t hash;
};

struct dns_table {
    struct dns_node **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t n;
};

uint32_t dns_table_hash(const char *key);

/* Returns 0 or -ENOMEM. */
int dns_table_init(struct dns_table *t, size_t expected);
/* Frees the buckets only; the nodes belong to the caller. */
void dns_table_free(struct dns_table *t);

struct dns_node *dns_table_find(const struct dns_table *t, const char *key);
/* The same with hash = dns_table_hash(key) computed beforehand (outside a lock, say). */
struct dns_node *dns_table_find_hashed(const struct dns_table *t, const char *key, uint32_t hash);

/* node->key must be set; hash is computed here. The table grows when it fills; if growing fails
 * the node is still inserted (longer chains, never a failure). */
void dns_table_insert(struct dns_table *t, struct dns_node *node);
void dns_table_remove(struct dns_table *t, struct dns_node *node);

#endif
