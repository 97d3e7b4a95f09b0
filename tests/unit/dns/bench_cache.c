/* What a cache hit costs: private cache (no lock) against a shared one (a mutex), with one
 * thread and with two threads hitting at once. Two levels: the cache alone (dns_cache_get)
 * and the whole awf_dns_resolve() path a connection takes (name normalized, literal and hosts
 * checks, cache, callback), the latter against dnsmasq on loopback to fill the cache.
 * Not a test (no CTest): prints nanoseconds per hit. Build it Release for figures that mean
 * anything: cmake --build DIR --target bench_dns_cache && DIR/tests/unit/dns/bench_dns_cache */

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "dns/cache.h"
#include "dns/dns.h"
#include "tests/unit/dns/servers.h"

#define HITS 2000000

static struct dns_test_server srv;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct job {
    struct awf_dns_cache *cache; /* NULL: a private one, made on the thread */
    bool whole_path;
    double ns_per_hit;
    int errors;
};

static void on_result(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    (void)addrs;
    *(int *)arg = status == 0 ? 1 : -1;
}

static void bench_cache(struct job *j)
{
    struct awf_dns_cache *c = j->cache;
    if (!c && dns_cache_create_private(0, &c) != 0)
        abort();
    union dns_sa sa;
    struct in_addr a = {.s_addr = htonl(0xc0000201)};
    dns_sa_v4(&sa, &a);
    (void)dns_cache_put(c, "a.test", 0, &sa, 1, UINT64_MAX);
    struct awf_dns_addrs out;
    int status;
    uint64_t t0 = now_ns();
    for (int i = 0; i < HITS; i++)
        if (!dns_cache_get(c, "a.test", 1, &status, &out))
            j->errors++;
    j->ns_per_hit = (double)(now_ns() - t0) / HITS;
    if (!j->cache)
        dns_cache_unref(c);
}

static void bench_resolver(struct job *j)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *servers[] = {srv.addr};
    struct awf_dns_config cfg = {.servers = servers,
                                 .n_servers = 1,
                                 .max_ttl_s = 3600,
                                 .negative_ttl_s = 5,
                                 .shared_cache = j->cache};
    struct awf_dns *dns;
    if (awf_dns_create(&loop, &cfg, &dns) != 0)
        abort();
    int done = 0;
    struct awf_dns_req *req;
    awf_dns_resolve(dns, "a.test", on_result, &done, &req);
    while (done == 0)
        uv_run(&loop, UV_RUN_ONCE);
    uint64_t t0 = now_ns();
    for (int i = 0; i < HITS; i++) {
        done = 0;
        awf_dns_resolve(dns, "a.test", on_result, &done, &req);
        if (done != 1)
            j->errors++;
    }
    j->ns_per_hit = (double)(now_ns() - t0) / HITS;
    awf_dns_destroy(dns);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void job_main(void *arg)
{
    struct job *j = arg;
    if (j->whole_path)
        bench_resolver(j);
    else
        bench_cache(j);
}

static void run(const char *label, bool whole_path, bool shared, int threads)
{
    struct awf_dns_cache *c = NULL;
    if (shared && dns_cache_create(0, &c) != 0)
        abort();
    struct job j[2];
    uv_thread_t t[2];
    for (int i = 0; i < threads; i++) {
        j[i] = (struct job){.cache = c, .whole_path = whole_path};
        uv_thread_create(&t[i], job_main, &j[i]);
    }
    printf("%-26s %-8s %d thread%s:", label, shared ? "shared" : "private", threads,
           threads > 1 ? "s" : " ");
    for (int i = 0; i < threads; i++) {
        uv_thread_join(&t[i]);
        printf(" %6.1f ns/hit%s", j[i].ns_per_hit, j[i].errors ? " (ERRORS)" : "");
    }
    printf("\n");
    dns_cache_destroy(c);
}

int main(void)
{
    for (int threads = 1; threads <= 2; threads++) {
        run("dns_cache_get", false, false, threads);
        run("dns_cache_get", false, true, threads);
    }
    if (dns_test_dnsmasq_start(&srv) != 0 || !srv.available) {
        fprintf(stderr, "no dnsmasq: the awf_dns_resolve figures are skipped\n");
        return 0;
    }
    for (int threads = 1; threads <= 2; threads++) {
        run("awf_dns_resolve (hit)", true, false, threads);
        run("awf_dns_resolve (hit)", true, true, threads);
    }
    dns_test_dnsmasq_stop(&srv);
    return 0;
}
