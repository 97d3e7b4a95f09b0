#ifndef AWF_DNS_FWD_CACHE_H
#define AWF_DNS_FWD_CACHE_H

/* The forwarder's cache: the chain that answered (name, type), as kept by
 * dns_wire_parse_answer, with the rcode, until the lowest TTL in it runs out. TTLs are served
 * minus the time spent in the cache. Bounded; past max entries the oldest inserted goes first.
 * Pure: the time is passed in (the loop's millisecond clock). Private to dns/. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/ttl.h"
#include "dns/wire.h"

struct dns_fwd_cache {
    struct dns_ttl table;
};

/* A hit, borrowed until the next call on the cache. */
struct dns_fwd_hit {
    int rcode;
    size_t n;
    const struct dns_wire_rr *rr;
    const uint8_t *pool;
    uint32_t age_s; /* whole seconds since it was stored: taken off every TTL */
};

/* max 0: 10000. Returns 0 or -ENOMEM. */
int dns_fwd_cache_init(struct dns_fwd_cache *c, size_t max);
void dns_fwd_cache_free(struct dns_fwd_cache *c);

/* host is the lower-cased name (dns_wire_name_host). True and *hit on a live entry; an expired
 * one is dropped. */
bool dns_fwd_cache_get(struct dns_fwd_cache *c, const char *host, uint16_t type, uint64_t now_ms,
                       struct dns_fwd_hit *hit);

/* Stores a copy of a's records and rcode for ttl_s seconds from now_ms (replacing any entry for
 * the key). ttl_s 0 stores nothing. Returns 0 or -ENOMEM (the key is left uncached). */
int dns_fwd_cache_put(struct dns_fwd_cache *c, const char *host, uint16_t type,
                      const struct dns_wire_answer *a, uint32_t ttl_s, uint64_t now_ms);

#endif
