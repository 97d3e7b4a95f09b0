#ifndef AWF_DNS_DNS_H
#define AWF_DNS_DNS_H

/* Asynchronous name resolution for one event loop: c-ares driven by libuv poll handles, a hosts
 * file answered first, a TTL cache (clamped) with short negative caching, and one query in flight
 * per name however many callers wait for it. Not thread-safe: one awf_dns per loop. The cache
 * alone may be shared by the resolvers of several loops (awf_dns_share_cache below); lookups in
 * flight are not: each loop sends at most one query per name at a time, its own. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct awf_dns;
struct awf_dns_req;
struct awf_dns_cache;
struct awf_settings; /* policy/policy.h */

#define AWF_DNS_MAX_ADDRS 16

/* Counters for tests, bench and /metrics. */
struct awf_dns_stats {
    uint64_t queries_sent; /* lookups that went to c-ares (cache misses) */
    uint64_t cache_hits;
    uint64_t joined; /* requests that waited on a lookup already in flight */
    uint64_t hosts_hits;
    uint64_t raw_sent; /* dns_query_raw calls (raw.h) that went to c-ares */
    uint64_t failures; /* lookups that ended without an address (NXDOMAIN, timeout, ...) */
};

struct awf_dns_config {
    const char *const *servers; /* "1.1.1.1", "127.0.0.1:5353", "[::1]:53"; NULL/0: resolv.conf */
    size_t n_servers;
    const char *hosts_file; /* NULL or "": none */
    uint32_t min_ttl_s, max_ttl_s, negative_ttl_s;
    uint64_t timeout_ms;      /* whole lookup, both families; 0: 5000 */
    size_t max_cache_entries; /* 0: 10000; the oldest entry goes first past it */
    /* NULL: a cache of the resolver's own (max_cache_entries). Else this cache (made by
     * cache.h's dns_cache_create, inside dns/ and its tests), shared with whoever else uses it
     * (max_cache_entries ignored); the resolver takes its own reference. */
    struct awf_dns_cache *shared_cache;
    /* NULL: counters of the resolver's own. Else where to count (owned by the caller, must
     * outlive the resolver), written as common/counter.h says so another thread may read them. */
    struct awf_dns_stats *stats;
};

/* The configuration the policy's settings give (dns.servers, dns.hosts_file, the dns TTLs,
 * timeouts.dns); the rest zero, for the caller to set. out borrows s's strings: s must outlive
 * the awf_dns_create call (the resolver copies what it keeps). */
void awf_dns_config_from_settings(const struct awf_settings *s, struct awf_dns_config *out);

/* Makes dns use with's cache from now on, sharing it (whatever dns had cached is dropped).
 * For resolvers created with private caches, e.g. one per loop by awf_proxy_create: call from
 * the thread that created both, before either's loop runs on another thread (the way
 * awf_proxy_share_limits is called). Sharing with itself, or twice, is harmless. */
void awf_dns_share_cache(struct awf_dns *dns, struct awf_dns *with);

/* Addresses in the order to try them (A before AAAA unless the name has only AAAA).
 * Ports are 0. Borrowed for the callback only. */
struct awf_dns_addrs {
    size_t n;
    struct sockaddr_storage addr[AWF_DNS_MAX_ADDRS];
    bool from_hosts; /* the hosts file answered (configuration, not DNS: policy/README.md) */
};

/* status: 0, AWF_E_DNS_FAIL (NXDOMAIN, no address, server failure) or AWF_E_DNS_TIMEOUT.
 * addrs is NULL unless status is 0. */
typedef void (*awf_dns_cb)(void *arg, int status, const struct awf_dns_addrs *addrs);

/* Creates a resolver on loop. Returns 0 and *out, or a negative code. */
int awf_dns_create(uv_loop_t *loop, const struct awf_dns_config *cfg, struct awf_dns **out);

/* Reads a hosts file as awf_dns_create would, and drops it: 0 (a missing file is no error, as
 * for the default /etc/hosts), or -errno (-EISDIR, -EACCES, -EFBIG...). For `check` and for
 * refusing a reload before anything changes. */
int awf_dns_hosts_check(const char *path);

/* A hosts file read once and shared, read-only, by the resolvers of every loop: what a reload
 * (SIGHUP) hands them. References are atomic; any thread may drop the last one. */
struct awf_dns_hosts_file;

/* What was read, for the reload message and /status. */
struct awf_dns_hosts_info {
    bool missing;        /* no such file: an empty table (as glibc treats a missing /etc/hosts) */
    size_t names, addrs; /* distinct names; addresses summed over names */
    size_t bytes;
    char sha256[65]; /* hex, of the bytes read; "" when there was no file to read */
};

/* Reads path (NULL or "": no hosts file, an empty table) as awf_dns_create would. Returns 0 with
 * *out (one reference, the caller's) and *info (may be NULL), or -errno (-EISDIR, -EACCES,
 * -EFBIG, -ENOMEM) with nothing allocated. */
int awf_dns_hosts_open(const char *path, struct awf_dns_hosts_file **out,
                       struct awf_dns_hosts_info *info);

/* Takes one more reference (returns h) / drops one; NULL is fine for release. */
struct awf_dns_hosts_file *awf_dns_hosts_ref(struct awf_dns_hosts_file *h);
void awf_dns_hosts_release(struct awf_dns_hosts_file *h);

/* From now on dns answers from h (it takes its own reference and drops the table it had).
 * Lookups already sent to DNS are not affected. Call on dns's loop thread. */
void awf_dns_set_hosts(struct awf_dns *dns, struct awf_dns_hosts_file *h);

/* Stops every lookup (their callbacks are not called) and frees the resolver once its handles
 * have closed; the loop must run for that. */
void awf_dns_destroy(struct awf_dns *dns);

/* Resolves name (an IP literal is answered as itself). If the answer is at hand (hosts file,
 * cache, literal) cb runs before this returns and *req is set to NULL; else *req is a handle
 * for awf_dns_cancel, valid until cb runs. Returns 0, or a negative code (cb not called).
 * *req is written before cb runs and never after, so cb may free what holds it. A malformed name
 * gets AWF_E_DNS_FAIL through cb. cb may resolve, cancel other requests or destroy dns. */
int awf_dns_resolve(struct awf_dns *dns, const char *name, awf_dns_cb cb, void *arg,
                    struct awf_dns_req **req);

/* cb will not be called for req. */
void awf_dns_cancel(struct awf_dns_req *req);

void awf_dns_stats(const struct awf_dns *dns, struct awf_dns_stats *out);

#endif
