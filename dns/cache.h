#ifndef AWF_DNS_CACHE_H
#define AWF_DNS_CACHE_H

/* Answers by name until they expire: positive (addresses) and negative (AWF_E_DNS_FAIL).
 * Bounded: past max entries the oldest inserted goes first. Pure: the time is passed in (the
 * loop's millisecond clock), so it is tested without a network or a clock.
 *
 * struct dns_answers is that table, single-threaded. struct awf_dns_cache (opaque in dns.h)
 * wraps one with a reference count and, when shared between loops, a mutex: it is what a
 * resolver holds, private or shared. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dns/dns.h"
#include "dns/name.h"
#include "dns/table.h"
#include "dns/ttl.h"

#define AWF_DNS_CACHE_DEFAULT_MAX 10000

struct dns_answers {
    struct dns_ttl table;
};

/* max 0: AWF_DNS_CACHE_DEFAULT_MAX. Returns 0 or -ENOMEM. */
int dns_answers_init(struct dns_answers *c, size_t max);
void dns_answers_free(struct dns_answers *c);

/* On a live entry for key: true, *status (0 or AWF_E_DNS_FAIL) and, when 0, the addresses in
 * out. An entry found expired at now_ms is dropped, and false returned. */
bool dns_answers_get(struct dns_answers *c, const char *key, uint64_t now_ms, int *status,
                     struct awf_dns_addrs *out);

/* Stores (replacing any entry for key) an answer valid until expires_ms: status 0 with n >= 1
 * addresses (copied; at most AWF_DNS_MAX_ADDRS kept), or AWF_E_DNS_FAIL with n 0. Returns 0 or
 * -ENOMEM (the cache is left without an entry for key then). */
int dns_answers_put(struct dns_answers *c, const char *key, int status, const union dns_sa *addrs,
                    size_t n, uint64_t expires_ms);

size_t dns_answers_size(const struct dns_answers *c);

/* ---- the cache a resolver holds (see dns.h for the public half) ---- */

/* A cache of answers that the resolvers of several loops (threads) share (the public way is
 * awf_dns_share_cache; tests also pass one as awf_dns_config.shared_cache): a mutex around each
 * lookup and insert, a reference per resolver. Expiry uses each loop's uv_now(), one monotonic
 * clock for the whole process. max_entries 0: 10000. Returns 0 and *out, or -ENOMEM. */
int dns_cache_create(size_t max_entries, struct awf_dns_cache **out);

/* Drops the creator's reference: resolvers still using the cache keep it until they are freed.
 * Any thread. */
void dns_cache_destroy(struct awf_dns_cache *cache);

/* Entries held now, expired ones not yet dropped included (for tests). Any thread. */
size_t dns_cache_count(struct awf_dns_cache *cache);

/* A cache for one resolver alone: no lock taken. Returns 0 or -ENOMEM. */
int dns_cache_create_private(size_t max, struct awf_dns_cache **out);

/* Another holder (a resolver). Each reference is dropped with dns_cache_unref; the last one
 * frees the cache. Any thread. */
struct awf_dns_cache *dns_cache_ref(struct awf_dns_cache *c);
void dns_cache_unref(struct awf_dns_cache *c);

/* From now on c takes its lock: it is about to be used from another loop's thread. Only before
 * that thread starts using it (thread creation orders this write before its reads). */
void dns_cache_make_shared(struct awf_dns_cache *c);

/* dns_answers_get / _put under the cache's lock when it is shared. */
bool dns_cache_get(struct awf_dns_cache *c, const char *key, uint64_t now_ms, int *status,
                   struct awf_dns_addrs *out);
int dns_cache_put(struct awf_dns_cache *c, const char *key, int status, const union dns_sa *addrs,
                  size_t n, uint64_t expires_ms);

#endif
