/* One cache shared by the resolvers of several loops, each loop run by its own thread, against
 * a real dnsmasq on loopback (see servers.h): its query log proves how many queries reached it.
 * Without dnsmasq the tests skip, except under CI=true where they fail. */

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "common/error.h"
#include "dns/cache.h"
#include "dns/dns.h"
#include "tests/unit/dns/fixture.h"

/* ---- one loop, its resolver, and the thread that runs it ---------------------------------- */

struct result {
    int calls;
    int status;
    struct awf_dns_addrs addrs;
};

static void on_result(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    if (status == 0)
        r->addrs = *addrs;
}

struct side {
    uv_loop_t loop;
    struct awf_dns *dns;
    const char *servers[1];
    /* What the thread does: resolve names[0..n) in turn, rounds times. */
    const char *const *names;
    size_t n, rounds;
    int failures; /* answers other than expected: checked by the main thread after join */
    struct result last;
};

static void side_open(struct side *s, struct awf_dns_cache *shared, size_t max_entries)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    s->servers[0] = srv.addr;
    struct awf_dns_config cfg = {
        .servers = s->servers,
        .n_servers = 1,
        .max_ttl_s = 3600,
        .negative_ttl_s = 5,
        .timeout_ms = 5000,
        .max_cache_entries = max_entries,
        .shared_cache = shared,
    };
    assert_int_equal(awf_dns_create(&s->loop, &cfg, &s->dns), 0);
}

static void side_close(struct side *s)
{
    awf_dns_destroy(s->dns);
    s->dns = NULL;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
}

/* What a name answers in servers.h; NULL: NXDOMAIN. */
static const char *expected(const char *name)
{
    if (strcmp(name, "a.test") == 0)
        return "192.0.2.1";
    if (strcmp(name, "join.test") == 0)
        return "192.0.2.3";
    if (strcmp(name, "cancel.test") == 0)
        return "192.0.2.4";
    if (strcmp(name, "orphan.test") == 0)
        return "192.0.2.5";
    if (strcmp(name, "peer.test") == 0)
        return "192.0.2.99";
    if (strcmp(name, "short.test") == 0 || strcmp(name, "long.test") == 0)
        return ""; /* an address, whichever */
    return NULL;
}

static bool answer_ok(const char *name, const struct result *r)
{
    const char *want = expected(name);
    if (r->calls != 1)
        return false;
    if (!want)
        return r->status == AWF_E_DNS_FAIL;
    if (r->status != 0 || r->addrs.n < 1)
        return false;
    if (!want[0])
        return true;
    const struct sockaddr_in *in = (const struct sockaddr_in *)&r->addrs.addr[0];
    char buf[INET_ADDRSTRLEN];
    return in->sin_family == AF_INET && inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) &&
           strcmp(buf, want) == 0;
}

/* On the side's thread: no cmocka asserts here (they longjmp across threads); failures are
 * counted and checked after the join. */
static void side_main(void *arg)
{
    struct side *s = arg;
    for (size_t round = 0; round < s->rounds; round++) {
        for (size_t i = 0; i < s->n; i++) {
            struct result r = {0};
            struct awf_dns_req *req = NULL;
            uv_update_time(&s->loop); /* an idle loop's clock is as old as its last run */
            if (awf_dns_resolve(s->dns, s->names[i], on_result, &r, &req) != 0) {
                s->failures++;
                continue;
            }
            while (r.calls == 0)
                if (uv_run(&s->loop, UV_RUN_ONCE) == 0 && r.calls == 0) {
                    s->failures++; /* nothing left that could call back */
                    break;
                }
            if (!answer_ok(s->names[i], &r))
                s->failures++;
            s->last = r;
        }
    }
}

/* Runs the side's work on a thread of its own, to the end. */
static void side_run(struct side *s, const char *const *names, size_t n, size_t rounds)
{
    s->names = names;
    s->n = n;
    s->rounds = rounds;
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, side_main, s), 0);
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_equal(s->failures, 0);
}

static void side_resolve(struct side *s, const char *name)
{
    const char *names[] = {name};
    side_run(s, names, 1, 1);
}

static struct awf_dns_stats stats(const struct side *s)
{
    struct awf_dns_stats st;
    awf_dns_stats(s->dns, &st);
    return st;
}

/* A fresh name through s: once answered, dnsmasq has logged every query sent before it on the
 * same socket (it answers in order, logging each query as it reads it). */
static void marker(struct side *s)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof(name), "marker-%d.test", ++seq);
    side_resolve(s, name);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_shared_cache_answer_of_one_loop_is_a_hit_on_the_other(void **state)
{
    (void)state;
    require_server();
    struct awf_dns_cache *cache = NULL;
    assert_int_equal(dns_cache_create(0, &cache), 0);
    struct side a, b;
    side_open(&a, cache, 0);
    side_open(&b, cache, 0);
    dns_cache_destroy(cache); /* the resolvers hold their own references */

    side_resolve(&a, "a.test");
    side_resolve(&a, "nx-shared.test");
    side_resolve(&b, "a.test");
    side_resolve(&b, "nx-shared.test"); /* negative answers are shared too */

    assert_int_equal(stats(&a).queries_sent, 2);
    assert_int_equal(stats(&b).queries_sent, 0);
    assert_int_equal(stats(&b).cache_hits, 2);
    marker(&a);
    assert_int_equal(dns_test_logged(&srv, "A", "a.test"), 1);
    assert_int_equal(dns_test_logged(&srv, "AAAA", "a.test"), 1);
    assert_int_equal(dns_test_logged(&srv, "A", "nx-shared.test"), 1);
    side_close(&a);
    side_close(&b);
}

static void test_shared_cache_private_caches_ask_twice(void **state)
{
    (void)state;
    require_server();
    struct side a, b;
    side_open(&a, NULL, 0);
    side_open(&b, NULL, 0);
    side_resolve(&a, "join.test");
    side_resolve(&b, "join.test");
    assert_int_equal(stats(&a).queries_sent, 1);
    assert_int_equal(stats(&b).queries_sent, 1);
    marker(&a);
    assert_int_equal(dns_test_logged(&srv, "A", "join.test"), 2);
    side_close(&a);
    side_close(&b);
}

static void test_shared_cache_shared_after_create(void **state)
{
    (void)state;
    require_server();
    struct side a, b;
    side_open(&a, NULL, 0);
    side_open(&b, NULL, 0);
    awf_dns_share_cache(NULL, a.dns);
    awf_dns_share_cache(b.dns, a.dns); /* twice: harmless */
    awf_dns_share_cache(a.dns, a.dns); /* with itself: harmless */

    side_resolve(&b, "cancel.test");
    side_resolve(&a, "cancel.test");
    assert_int_equal(stats(&b).queries_sent, 1);
    assert_int_equal(stats(&a).queries_sent, 0);
    assert_int_equal(stats(&a).cache_hits, 1);
    marker(&b);
    assert_int_equal(dns_test_logged(&srv, "A", "cancel.test"), 1);
    /* b goes first: a keeps the cache alive. */
    side_close(&b);
    side_resolve(&a, "cancel.test");
    assert_int_equal(stats(&a).cache_hits, 2);
    side_close(&a);
}

static void on_wait(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Lets the process's monotonic clock move on by ms (to outlive a TTL); asserts nothing about
 * time. */
static void wait_ms(uint64_t ms)
{
    uv_loop_t loop;
    uv_timer_t t;
    int fired = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_wait, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(fired, 1);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_shared_cache_expiry_seen_by_every_loop(void **state)
{
    (void)state;
    require_server();
    struct awf_dns_cache *cache = NULL;
    assert_int_equal(dns_cache_create(0, &cache), 0);
    struct side a, b;
    side_open(&a, cache, 0);
    side_open(&b, cache, 0);

    side_resolve(&a, "short.test"); /* TTL 1 */
    side_resolve(&a, "long.test");  /* TTL 3600 */
    wait_ms(1100);
    side_resolve(&b, "short.test"); /* expired: asked again, by b */
    side_resolve(&b, "long.test");  /* still there */
    assert_int_equal(stats(&b).queries_sent, 1);
    assert_int_equal(stats(&b).cache_hits, 1);
    side_resolve(&a, "short.test"); /* b's fresh answer */
    assert_int_equal(stats(&a).queries_sent, 2);
    assert_int_equal(stats(&a).cache_hits, 1);
    marker(&a);
    marker(&b);
    assert_int_equal(dns_test_logged(&srv, "A", "short.test"), 2);
    assert_int_equal(dns_test_logged(&srv, "A", "long.test"), 1);
    side_close(&a);
    side_close(&b);
    dns_cache_destroy(cache); /* last: after the resolvers */
}

static void test_shared_cache_bounded_oldest_evicted(void **state)
{
    (void)state;
    require_server();
    struct awf_dns_cache *cache = NULL;
    assert_int_equal(dns_cache_create(2, &cache), 0);
    struct side a, b;
    side_open(&a, cache, 100); /* max_cache_entries is the private cache's: ignored here */
    side_open(&b, cache, 100);

    side_resolve(&a, "orphan.test");
    side_resolve(&b, "peer.test");
    assert_int_equal(dns_cache_count(cache), 2);
    side_resolve(&a, "evict-1.test"); /* orphan.test, the oldest, goes */
    assert_int_equal(dns_cache_count(cache), 2);
    side_resolve(&b, "peer.test"); /* still there */
    assert_int_equal(stats(&b).cache_hits, 1);
    side_resolve(&b, "orphan.test"); /* gone: asked again */
    assert_int_equal(stats(&b).queries_sent, 2);
    marker(&b);
    assert_int_equal(dns_test_logged(&srv, "A", "orphan.test"), 2);
    assert_int_equal(dns_test_logged(&srv, "A", "peer.test"), 1);
    dns_cache_destroy(cache);
    side_close(&a);
    side_close(&b);
}

/* Both threads at once on one small cache: hits, misses, inserts, evictions and expired entries
 * dropped all race; the sanitizers (and a ThreadSanitizer build) watch. Answers must stay
 * right. */
static void test_shared_cache_concurrent_threads(void **state)
{
    (void)state;
    require_server();
    static const char *const names[] = {
        "a.test",     "join.test", "cancel.test", "orphan.test", "peer.test",
        "short.test", "long.test", "nx-1.test",   "nx-2.test",   "nx-3.test",
    };
    enum { N = sizeof(names) / sizeof(names[0]) };
    for (size_t max = 4; max <= 64; max *= 16) { /* 4: constant eviction; 64: all hits */
        struct awf_dns_cache *cache = NULL;
        assert_int_equal(dns_cache_create(max, &cache), 0);
        struct side s[2];
        side_open(&s[0], cache, 0);
        side_open(&s[1], cache, 0);
        dns_cache_destroy(cache);
        uv_thread_t t[2];
        for (int i = 0; i < 2; i++) {
            s[i].names = names;
            s[i].n = N;
            s[i].rounds = max == 4 ? 40 : 2000;
            assert_int_equal(uv_thread_create(&t[i], side_main, &s[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            assert_int_equal(uv_thread_join(&t[i]), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(s[i].failures, 0);
            struct awf_dns_stats st = stats(&s[i]);
            assert_int_equal(st.cache_hits + st.queries_sent, N * s[i].rounds);
        }
        side_close(&s[0]);
        side_close(&s[1]);
    }
}

static void test_shared_cache_create_rejects_null(void **state)
{
    (void)state;
    assert_int_equal(dns_cache_create(0, NULL), -EINVAL);
    dns_cache_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_cache_answer_of_one_loop_is_a_hit_on_the_other),
        cmocka_unit_test(test_shared_cache_private_caches_ask_twice),
        cmocka_unit_test(test_shared_cache_shared_after_create),
        cmocka_unit_test(test_shared_cache_expiry_seen_by_every_loop),
        cmocka_unit_test(test_shared_cache_bounded_oldest_evicted),
        cmocka_unit_test(test_shared_cache_concurrent_threads),
        cmocka_unit_test(test_shared_cache_create_rejects_null),
    };
    return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
