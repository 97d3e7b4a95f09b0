/* The resolver against a real DNS server on loopback: dnsmasq from Debian, started by the group
 * setup with a configuration written to a temporary directory and stopped by the group teardown
 * (and by the kernel if this process dies: PR_SET_PDEATHSIG). Its query log proves how many
 * queries reached it. Without dnsmasq the tests skip, except under CI=true where they fail. */

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "common/error.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "tests/unit/dns/fixture.h"

static int logged(const char *type, const char *name)
{
    return dns_test_logged(&srv, type, name);
}

/* ---- the resolver under test -------------------------------------------------------------- */

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
    if (status == 0) {
        assert_non_null(addrs);
        r->addrs = *addrs;
    } else {
        assert_null(addrs);
    }
}

struct fixture {
    uv_loop_t loop;
    struct awf_dns *dns;
    const char *servers[2];
};

static void open_resolver(struct fixture *fx, const struct awf_dns_config *cfg_in)
{
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    struct awf_dns_config cfg = *cfg_in;
    if (!cfg.servers) {
        fx->servers[0] = srv.addr;
        cfg.servers = fx->servers;
        cfg.n_servers = 1;
    }
    assert_int_equal(awf_dns_create(&fx->loop, &cfg, &fx->dns), 0);
}

static struct awf_dns_config default_cfg(void)
{
    return (struct awf_dns_config){
        .min_ttl_s = 0, .max_ttl_s = 3600, .negative_ttl_s = 5, .timeout_ms = 5000};
}

/* Runs the loop until *done reaches want. The CTest timeout bounds a hang. */
static void run_until(struct fixture *fx, const int *done, int want)
{
    while (*done < want) {
        int alive = uv_run(&fx->loop, UV_RUN_ONCE);
        if (*done >= want)
            break;
        assert_int_not_equal(alive, 0); /* nothing left that could ever call back */
    }
}

static void close_resolver(struct fixture *fx)
{
    awf_dns_destroy(fx->dns);
    fx->dns = NULL;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

/* Resolves name to the end. */
static struct result resolve(struct fixture *fx, const char *name)
{
    struct result r = {0};
    struct awf_dns_req *req = NULL;
    assert_int_equal(awf_dns_resolve(fx->dns, name, on_result, &r, &req), 0);
    run_until(fx, &r.calls, 1);
    assert_int_equal(r.calls, 1);
    return r;
}

/* A lookup of a fresh name: once it is answered, the server has logged every query sent on the
 * same socket before it (it answers in order, logging each query as it reads it). */
static void marker(struct fixture *fx)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof(name), "marker-%d.test", ++seq);
    struct result r = resolve(fx, name);
    assert_int_equal(r.status, AWF_E_DNS_FAIL); /* NXDOMAIN: only that it came back matters */
}

static const char *addr_str(const struct sockaddr_storage *ss)
{
    static char buf[INET6_ADDRSTRLEN];
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_ntop(ss->ss_family, a, buf, sizeof(buf));
}

static void on_wait(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Lets the loop's clock move on by ms (to outlive a TTL); asserts nothing about time. */
static void wait_ms(struct fixture *fx, uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&fx->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_wait, ms, 0);
    run_until(fx, &fired, 1);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* t lives on this stack: let its close finish */
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_resolver_a_before_aaaa(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    open_resolver(&fx, &cfg);

    struct result r = resolve(&fx, "Dual.TEST.");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.addrs.n, 2);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "192.0.2.2");
    assert_string_equal(addr_str(&r.addrs.addr[1]), "2001:db8::2");
    assert_int_equal(((struct sockaddr_in *)&r.addrs.addr[0])->sin_port, 0);
    assert_int_equal(((struct sockaddr_in6 *)&r.addrs.addr[1])->sin6_port, 0);

    r = resolve(&fx, "v6.test"); /* AAAA only: A is NODATA */
    assert_int_equal(r.status, 0);
    assert_int_equal(r.addrs.n, 1);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "2001:db8::6");
    close_resolver(&fx);
}

static void test_resolver_one_query_for_many_waiters(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    open_resolver(&fx, &cfg);

    enum { N = 50 };
    struct result r[N];
    memset(r, 0, sizeof(r));
    int done = 0;
    for (int i = 0; i < N; i++) {
        struct awf_dns_req *req = NULL;
        assert_int_equal(
            awf_dns_resolve(fx.dns, i % 2 ? "JOIN.test" : "join.test.", on_result, &r[i], &req), 0);
        assert_non_null(req);
    }
    while (done < N) {
        uv_run(&fx.loop, UV_RUN_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].calls;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].addrs.n, 1);
        assert_string_equal(addr_str(&r[i].addrs.addr[0]), "192.0.2.3");
    }
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.queries_sent, 1);
    assert_int_equal(st.joined, N - 1);

    /* From the cache: answered before awf_dns_resolve returns, nothing sent. */
    struct result again = {0};
    struct awf_dns_req *req = (struct awf_dns_req *)&again;
    assert_int_equal(awf_dns_resolve(fx.dns, "join.test", on_result, &again, &req), 0);
    assert_null(req);
    assert_int_equal(again.calls, 1);
    assert_string_equal(addr_str(&again.addrs.addr[0]), "192.0.2.3");
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.cache_hits, 1);

    marker(&fx);
    assert_int_equal(logged("A", "join.test"), 1);
    assert_int_equal(logged("AAAA", "join.test"), 1);
    close_resolver(&fx);
}

static void test_resolver_hosts_file_first_no_query(void **state)
{
    (void)state;
    require_server();
    FILE *f = fopen(srv.hosts, "w");
    assert_non_null(f);
    /* peer.test is also in DNS (192.0.2.99): the file must win. */
    fputs("# topology\n172.30.0.10 squid-proxy\n::1 peer.test\n192.0.2.50 Peer.Test alias\n", f);
    fclose(f);

    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    cfg.hosts_file = srv.hosts;
    open_resolver(&fx, &cfg);

    struct result r = {0};
    struct awf_dns_req *req = (struct awf_dns_req *)&r;
    assert_int_equal(awf_dns_resolve(fx.dns, "PEER.test.", on_result, &r, &req), 0);
    assert_null(req);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.addrs.n, 2);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "192.0.2.50");
    assert_string_equal(addr_str(&r.addrs.addr[1]), "::1");
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.hosts_hits, 1);
    assert_int_equal(st.queries_sent, 0);

    marker(&fx);
    assert_int_equal(logged("A", "peer.test"), 0);
    assert_int_equal(logged("AAAA", "peer.test"), 0);
    close_resolver(&fx);
}

static void test_resolver_ip_literals_answer_themselves(void **state)
{
    (void)state;
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    const char *none[] = {"127.0.0.1:9"}; /* never asked: nothing may be sent */
    cfg.servers = none;
    cfg.n_servers = 1;
    open_resolver(&fx, &cfg);

    const char *in[] = {"127.0.0.1", "127.1", "[::1]", "::1", "[2001:db8::7]"};
    const char *out[] = {"127.0.0.1", "127.0.0.1", "::1", "::1", "2001:db8::7"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct result r = {0};
        struct awf_dns_req *req = (struct awf_dns_req *)&r;
        assert_int_equal(awf_dns_resolve(fx.dns, in[i], on_result, &r, &req), 0);
        assert_null(req);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.addrs.n, 1);
        assert_string_equal(addr_str(&r.addrs.addr[0]), out[i]);
    }
    /* Brackets hold only an IPv6 literal; malformed names fail without a query. */
    const char *bad[] = {"[a.test]", "[127.0.0.1]", "", "a..test", "a b.test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct result r = {0};
        struct awf_dns_req *req = NULL;
        assert_int_equal(awf_dns_resolve(fx.dns, bad[i], on_result, &r, &req), 0);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.status, AWF_E_DNS_FAIL);
    }
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.queries_sent, 0);
    close_resolver(&fx);
}

static void test_resolver_nxdomain_cached_negative(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    open_resolver(&fx, &cfg);

    struct result r = resolve(&fx, "nx.test");
    assert_int_equal(r.status, AWF_E_DNS_FAIL);
    struct result again = {0};
    struct awf_dns_req *req = (struct awf_dns_req *)&again;
    assert_int_equal(awf_dns_resolve(fx.dns, "nx.test", on_result, &again, &req), 0);
    assert_null(req);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.status, AWF_E_DNS_FAIL);

    /* REFUSED (a name outside what the server answers) is a passing failure: not cached. */
    r = resolve(&fx, "refused.example");
    assert_int_equal(r.status, AWF_E_DNS_FAIL);
    r = resolve(&fx, "refused.example");
    assert_int_equal(r.status, AWF_E_DNS_FAIL);
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.queries_sent, 3);

    marker(&fx);
    assert_int_equal(logged("A", "nx.test"), 1);
    close_resolver(&fx);
}

static void test_resolver_negative_ttl_zero_disables(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    cfg.negative_ttl_s = 0;
    open_resolver(&fx, &cfg);
    assert_int_equal(resolve(&fx, "nx.test").status, AWF_E_DNS_FAIL);
    assert_int_equal(resolve(&fx, "nx.test").status, AWF_E_DNS_FAIL);
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.queries_sent, 2);
    assert_int_equal(st.cache_hits, 0);
    close_resolver(&fx);
}

/* short.test has TTL 1, long.test 3600. Clamped to [0, 1] both expire after a second; clamped
 * to [60, 3600] both are still cached. Waiting is not a timing assertion: once over a second has
 * passed on the loop's clock, each outcome is certain. */
static void test_resolver_ttl_clamped(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    cfg.min_ttl_s = 0;
    cfg.max_ttl_s = 1;
    open_resolver(&fx, &cfg);
    struct awf_dns *low = fx.dns;
    cfg.min_ttl_s = 60;
    cfg.max_ttl_s = 3600;
    fx.servers[0] = srv.addr;
    cfg.servers = fx.servers;
    cfg.n_servers = 1;
    struct awf_dns *high = NULL;
    assert_int_equal(awf_dns_create(&fx.loop, &cfg, &high), 0);

    struct awf_dns *both[2] = {low, high};
    for (int i = 0; i < 2; i++) {
        fx.dns = both[i];
        assert_int_equal(resolve(&fx, "short.test").status, 0);
        assert_int_equal(resolve(&fx, "long.test").status, 0);
    }
    wait_ms(&fx, 1100);

    const char *names[] = {"short.test", "long.test"};
    for (int i = 0; i < 2; i++) {
        for (int n = 0; n < 2; n++) {
            struct result r = {0};
            struct awf_dns_req *req = NULL;
            assert_int_equal(awf_dns_resolve(both[i], names[n], on_result, &r, &req), 0);
            fx.dns = both[i];
            run_until(&fx, &r.calls, 1);
            assert_int_equal(r.status, 0);
        }
    }
    struct awf_dns_stats st;
    awf_dns_stats(low, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.queries_sent, 4);
    awf_dns_stats(high, &st);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.queries_sent, 2);
    awf_dns_destroy(high);
    fx.dns = low;
    close_resolver(&fx);
}

struct retrier {
    struct result res, again;
    struct awf_dns *dns;
    const char *name;
    bool again_pending;
};

static void on_result_retry(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct retrier *r = arg;
    on_result(&r->res, status, addrs);
    struct awf_dns_req *req = NULL;
    assert_int_equal(awf_dns_resolve(r->dns, r->name, on_result, &r->again, &req), 0);
    r->again_pending = req != NULL;
}

static void test_resolver_timeout_silent_server(void **state)
{
    (void)state;
    struct fixture fx;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    struct dns_test_silent s;
    assert_int_equal(dns_test_silent_start(&fx.loop, &s), 0);
    const char *servers[] = {s.addr};
    struct awf_dns_config cfg = default_cfg();
    cfg.servers = servers;
    cfg.n_servers = 1;
    cfg.timeout_ms = 300;
    assert_int_equal(awf_dns_create(&fx.loop, &cfg, &fx.dns), 0);

    /* The first callback asks again for the same name: that request is not cached, and not
     * swept into the timeout being delivered; it waits for a deadline of its own. */
    struct retrier first = {.dns = fx.dns, .name = "hang.test"};
    struct awf_dns_req *req = NULL;
    assert_int_equal(awf_dns_resolve(fx.dns, "hang.test", on_result_retry, &first, &req), 0);
    run_until(&fx, &first.res.calls, 1);
    assert_int_equal(first.res.status, AWF_E_DNS_TIMEOUT);
    assert_true(first.again_pending);
    assert_int_equal(first.again.calls, 0);
    run_until(&fx, &first.again.calls, 1);
    assert_int_equal(first.again.status, AWF_E_DNS_TIMEOUT);
    assert_true(s.received >= 1);

    uv_close((uv_handle_t *)&s.udp, NULL);
    close_resolver(&fx);
}

/* A is answered, AAAA never: at the deadline the waiters get the A addresses, not a timeout. */
static void test_resolver_deadline_delivers_what_arrived(void **state)
{
    (void)state;
    struct fixture fx;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    struct dns_test_silent s;
    assert_int_equal(dns_test_silent_start(&fx.loop, &s), 0);
    s.answer_a = true;
    const char *servers[] = {s.addr};
    struct awf_dns_config cfg = default_cfg();
    cfg.servers = servers;
    cfg.n_servers = 1;
    cfg.timeout_ms = 300;
    assert_int_equal(awf_dns_create(&fx.loop, &cfg, &fx.dns), 0);
    struct result r = resolve(&fx, "half.test");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.addrs.n, 1);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "192.0.2.77");
    uv_close((uv_handle_t *)&s.udp, NULL);
    close_resolver(&fx);
}

/* The first server never answers: c-ares moves on to the second within the deadline. */
static void test_resolver_falls_back_to_next_server(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    struct dns_test_silent s;
    assert_int_equal(dns_test_silent_start(&fx.loop, &s), 0);
    const char *servers[] = {s.addr, srv.addr};
    struct awf_dns_config cfg = default_cfg();
    cfg.servers = servers;
    cfg.n_servers = 2;
    cfg.timeout_ms = 3000;
    assert_int_equal(awf_dns_create(&fx.loop, &cfg, &fx.dns), 0);
    struct result r = resolve(&fx, "dual.test");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.addrs.n, 2);
    assert_true(s.received >= 1);
    uv_close((uv_handle_t *)&s.udp, NULL);
    close_resolver(&fx);
}

struct canceller {
    struct result res;
    struct awf_dns_req **victim;
};

static void on_result_cancel_other(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct canceller *c = arg;
    on_result(&c->res, status, addrs);
    awf_dns_cancel(*c->victim);
    *c->victim = NULL;
}

static void test_resolver_cancel(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    open_resolver(&fx, &cfg);

    /* Four requests share one lookup: the second is cancelled before the answer, the fourth by
     * the first's callback while the answer is being delivered. */
    struct canceller first = {0};
    struct result second = {0}, third = {0}, fourth = {0};
    struct awf_dns_req *q1, *q2, *q3, *q4;
    first.victim = &q4;
    assert_int_equal(awf_dns_resolve(fx.dns, "cancel.test", on_result_cancel_other, &first, &q1),
                     0);
    assert_int_equal(awf_dns_resolve(fx.dns, "cancel.test", on_result, &second, &q2), 0);
    assert_int_equal(awf_dns_resolve(fx.dns, "cancel.test", on_result, &third, &q3), 0);
    assert_int_equal(awf_dns_resolve(fx.dns, "cancel.test", on_result, &fourth, &q4), 0);
    awf_dns_cancel(q2);
    run_until(&fx, &third.calls, 1);
    assert_int_equal(first.res.calls, 1);
    assert_int_equal(second.calls, 0);
    assert_int_equal(third.status, 0);
    assert_int_equal(fourth.calls, 0);
    assert_null(q4);

    /* A lookup whose every waiter left still completes and fills the cache. */
    struct result gone = {0};
    struct awf_dns_req *q;
    assert_int_equal(awf_dns_resolve(fx.dns, "orphan.test", on_result, &gone, &q), 0);
    awf_dns_cancel(q);
    marker(&fx); /* sent after orphan.test's queries on the same socket: answered after them */
    struct result later = {0};
    q = (struct awf_dns_req *)&later;
    assert_int_equal(awf_dns_resolve(fx.dns, "orphan.test", on_result, &later, &q), 0);
    assert_null(q);
    assert_int_equal(later.status, 0);
    assert_int_equal(gone.calls, 0);
    close_resolver(&fx);
}

struct destroyer {
    struct result res;
    struct awf_dns *dns;
};

static void on_result_destroy(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct destroyer *d = arg;
    on_result(&d->res, status, addrs);
    awf_dns_destroy(d->dns);
}

static void test_resolver_destroy_with_lookups_in_flight(void **state)
{
    (void)state;
    require_server();
    struct fixture fx;
    struct awf_dns_config cfg = default_cfg();
    open_resolver(&fx, &cfg);
    struct result r = {0};
    struct awf_dns_req *q;
    assert_int_equal(awf_dns_resolve(fx.dns, "dual.test", on_result, &r, &q), 0);
    assert_int_equal(awf_dns_resolve(fx.dns, "v6.test", on_result, &r, &q), 0);
    close_resolver(&fx); /* runs the loop to the end: no callback, nothing leaked (ASan) */
    assert_int_equal(r.calls, 0);

    /* Destroyed from inside a callback, with other requests of the same lookup still waiting
     * and another lookup in flight. */
    open_resolver(&fx, &cfg);
    struct destroyer d = {.dns = fx.dns};
    struct result other = {0}, same = {0};
    assert_int_equal(awf_dns_resolve(fx.dns, "long.test", on_result_destroy, &d, &q), 0);
    assert_int_equal(awf_dns_resolve(fx.dns, "long.test", on_result, &same, &q), 0);
    assert_int_equal(awf_dns_resolve(fx.dns, "nx.test", on_result, &other, &q), 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(d.res.calls, 1);
    assert_int_equal(same.calls, 0);
    assert_true(other.calls <= 1); /* may have been answered before long.test */
    assert_int_equal(uv_loop_close(&fx.loop), 0);
}

static void test_resolver_bad_server_rejected(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    const char *bad[] = {"not an address"};
    struct awf_dns_config cfg = default_cfg();
    cfg.servers = bad;
    cfg.n_servers = 1;
    struct awf_dns *dns = NULL;
    assert_true(awf_dns_create(&loop, &cfg, &dns) < 0);
    assert_null(dns);
    /* A hosts file that cannot be read stops start-up too. */
    cfg = default_cfg();
    cfg.hosts_file = "/";
    assert_int_equal(awf_dns_create(&loop, &cfg, &dns), -EISDIR);
    assert_null(dns);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* awf_dns_config_from_settings: what the proxy, the forwarder and explain build their resolvers
 * from. Each policy setting reaches the resolver: the server, the hosts file, negative_ttl. */
static void test_resolver_config_from_policy_settings(void **state)
{
    (void)state;
    require_server();
    FILE *f = fopen(srv.hosts, "w");
    assert_non_null(f);
    fputs("192.0.2.51 peer.test\n", f); /* DNS says 192.0.2.99: the file must win */
    fclose(f);
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    char err[256];
    const char *set[][2] = {{"dns.servers", srv.addr}, {"dns.hosts_file", srv.hosts},
                            {"dns.min_ttl", "1"},      {"dns.max_ttl", "60"},
                            {"dns.negative_ttl", "0"}, {"timeouts.dns", "4s"}};
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        assert_int_equal(awf_policy_set(b, set[i][0], set[i][1], NULL, err, sizeof(err)), 0);
    struct awf_policy *p = awf_policy_build(b, err, sizeof(err));
    assert_non_null(p);
    awf_policy_builder_destroy(b);

    struct awf_dns_config cfg;
    memset(&cfg, 0xa5, sizeof(cfg)); /* every field written, the rest zero */
    awf_dns_config_from_settings(awf_policy_settings(p), &cfg);
    assert_int_equal(cfg.n_servers, 1);
    assert_string_equal(cfg.servers[0], srv.addr);
    assert_string_equal(cfg.hosts_file, srv.hosts);
    assert_int_equal(cfg.min_ttl_s, 1);
    assert_int_equal(cfg.max_ttl_s, 60);
    assert_int_equal(cfg.negative_ttl_s, 0);
    assert_int_equal(cfg.timeout_ms, 4000);
    assert_int_equal(cfg.max_cache_entries, 0);
    assert_null(cfg.shared_cache);
    assert_null(cfg.stats);

    struct fixture fx;
    open_resolver(&fx, &cfg);
    struct result r = resolve(&fx, "peer.test");
    assert_int_equal(r.status, 0);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "192.0.2.51");
    r = resolve(&fx, "a.test"); /* from the policy's server */
    assert_int_equal(r.status, 0);
    assert_string_equal(addr_str(&r.addrs.addr[0]), "192.0.2.1");
    assert_int_equal(resolve(&fx, "nx.test").status, AWF_E_DNS_FAIL);
    assert_int_equal(resolve(&fx, "nx.test").status, AWF_E_DNS_FAIL); /* not cached */
    struct awf_dns_stats st;
    awf_dns_stats(fx.dns, &st);
    assert_int_equal(st.hosts_hits, 1);
    assert_int_equal(st.queries_sent, 3);
    close_resolver(&fx);
    awf_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolver_a_before_aaaa),
        cmocka_unit_test(test_resolver_one_query_for_many_waiters),
        cmocka_unit_test(test_resolver_hosts_file_first_no_query),
        cmocka_unit_test(test_resolver_ip_literals_answer_themselves),
        cmocka_unit_test(test_resolver_nxdomain_cached_negative),
        cmocka_unit_test(test_resolver_negative_ttl_zero_disables),
        cmocka_unit_test(test_resolver_ttl_clamped),
        cmocka_unit_test(test_resolver_timeout_silent_server),
        cmocka_unit_test(test_resolver_deadline_delivers_what_arrived),
        cmocka_unit_test(test_resolver_falls_back_to_next_server),
        cmocka_unit_test(test_resolver_cancel),
        cmocka_unit_test(test_resolver_destroy_with_lookups_in_flight),
        cmocka_unit_test(test_resolver_bad_server_rejected),
        cmocka_unit_test(test_resolver_config_from_policy_settings),
    };
    return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
