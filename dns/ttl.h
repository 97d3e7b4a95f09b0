#ifndef AWF_DNS_TTL_H
#define AWF_DNS_TTL_H

/* The one table both DNS caches are made of: entries by key until they expire, bounded, the
 * oldest insertion evicted first. The resolver's answers (cache.c) and the forwarder's record
 * chains (fwd_cache.c) differ only in what an entry carries, so each embeds a struct
 * dns_ttl_entry at the start of its own one-allocation entry and this table does the rest.
 * Pure: the time is passed in (the loop's millisecond clock). Private to dns/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/list.h"
#include "dns/table.h"

struct dns_ttl_entry {
    struct dns_node node; /* node.key points into the embedding allocation */
    struct dns_link fifo;
    uint64_t expires_ms;
};

struct dns_ttl {
    struct dns_table keys;
    struct dns_link fifo; /* oldest insertion first */
    size_t max;
};

/* max 0 means default_max. Returns 0 or -ENOMEM. */
int dns_ttl_init(struct dns_ttl *t, size_t max, size_t default_max);
/* Frees every entry (each was malloc'd with the entry at its start) and the buckets. */
void dns_ttl_free(struct dns_ttl *t);

/* The live entry for key (hash = dns_table_hash(key), computed by the caller so that it can
 * happen outside a lock), or NULL. An entry found expired at now_ms is freed. The entry is
 * borrowed until the next call that changes the table. */
struct dns_ttl_entry *dns_ttl_find(struct dns_ttl *t, const char *key, uint32_t hash,
                                   uint64_t now_ms);

/* Before storing key: drops any entry for it, then the oldest entries until one more fits. */
void dns_ttl_make_room(struct dns_ttl *t, const char *key);

/* Takes ownership of e (malloc'd, the entry at its start); key must point into e's allocation
 * and stay there. Call dns_ttl_make_room(t, key) first. */
void dns_ttl_insert(struct dns_ttl *t, struct dns_ttl_entry *e, const char *key,
                    uint64_t expires_ms);

size_t dns_ttl_size(const struct dns_ttl *t);

#endif
