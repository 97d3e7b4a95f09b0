#ifndef AWF_DNS_CACHE_H
#define AWF_DNS_CACHE_H

/* Answers by name until they expire: positive (addresses) and negative (AWF_E_DNS_FAIL).
 * Bounded: past max entries the oldest inserted goes first. Pure: the time is passed in (the
 * loop's millisecond clock), so it is tested without a network or a clock. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"
#include "dns/list.h"
#include "dns/name.h"
#include "dns/table.h"

#define AWF_DNS_CACHE_DEFAULT_MAX 10000

struct awf_dns_cache {
    struct awf_dns_table names;
    struct awf_dns_link fifo; /* oldest insertion first */
    size_t max;
};

/* max 0: AWF_DNS_CACHE_DEFAULT_MAX. Returns 0 or -ENOMEM. */
int awf_dns_cache_init(struct awf_dns_cache *c, size_t max);
void awf_dns_cache_free(struct awf_dns_cache *c);

/* On a live entry for key: true, *status (0 or AWF_E_DNS_FAIL) and, when 0, the addresses in
 * out. An entry found expired at now_ms is dropped, and false returned. */
bool awf_dns_cache_get(struct awf_dns_cache *c, const char *key, uint64_t now_ms, int *status,
                       struct awf_dns_addrs *out);

/* Stores (replacing any entry for key) an answer valid until expires_ms: status 0 with n >= 1
 * addresses (copied; at most AWF_DNS_MAX_ADDRS kept), or AWF_E_DNS_FAIL with n 0. Returns 0 or
 * -ENOMEM (the cache is left without an entry for key then). */
int awf_dns_cache_put(struct awf_dns_cache *c, const char *key, int status,
                      const union awf_dns_sa *addrs, size_t n, uint64_t expires_ms);

size_t awf_dns_cache_size(const struct awf_dns_cache *c);

#endif
