#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "dns/cache.h"

static union dns_sa v4(const char *s)
{
    union dns_sa sa;
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    dns_sa_v4(&sa, &a);
    return sa;
}

static void test_cache_entry_lives_until_expiry(void **state)
{
    (void)state;
    struct dns_answers c;
    assert_int_equal(dns_answers_init(&c, 0), 0);
    union dns_sa sa[2] = {v4("192.0.2.1"), v4("192.0.2.2")};
    assert_int_equal(dns_answers_put(&c, "a.test", 0, sa, 2, 1000), 0);

    int status = -1;
    struct awf_dns_addrs out;
    assert_true(dns_answers_get(&c, "a.test", 999, &status, &out));
    assert_int_equal(status, 0);
    assert_int_equal(out.n, 2);
    struct sockaddr_in *in = (struct sockaddr_in *)&out.addr[1];
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0xc0000202);
    assert_int_equal(in->sin_port, 0);
    assert_false(dns_answers_get(&c, "a.test", 1000, &status, &out));
    assert_int_equal(dns_answers_size(&c), 0); /* dropped when found expired */
    dns_answers_free(&c);
}

static void test_cache_negative_and_replace(void **state)
{
    (void)state;
    struct dns_answers c;
    assert_int_equal(dns_answers_init(&c, 0), 0);
    assert_int_equal(dns_answers_put(&c, "nx.test", AWF_E_DNS_FAIL, NULL, 0, 5000), 0);
    int status = 0;
    struct awf_dns_addrs out;
    assert_true(dns_answers_get(&c, "nx.test", 10, &status, &out));
    assert_int_equal(status, AWF_E_DNS_FAIL);
    union dns_sa sa = v4("192.0.2.9");
    assert_int_equal(dns_answers_put(&c, "nx.test", 0, &sa, 1, 6000), 0);
    assert_int_equal(dns_answers_size(&c), 1);
    assert_true(dns_answers_get(&c, "nx.test", 5500, &status, &out));
    assert_int_equal(status, 0);
    assert_int_equal(out.n, 1);
    dns_answers_free(&c);
}

static void test_cache_bounded_oldest_evicted(void **state)
{
    (void)state;
    struct dns_answers c;
    assert_int_equal(dns_answers_init(&c, 100), 0);
    union dns_sa sa = v4("192.0.2.1");
    char name[32];
    for (int i = 0; i < 250; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        assert_int_equal(dns_answers_put(&c, name, 0, &sa, 1, 1000), 0);
        assert_true(dns_answers_size(&c) <= 100);
    }
    int status;
    struct awf_dns_addrs out;
    assert_false(dns_answers_get(&c, "n0.test", 0, &status, &out));
    assert_false(dns_answers_get(&c, "n149.test", 0, &status, &out));
    assert_true(dns_answers_get(&c, "n150.test", 0, &status, &out));
    assert_true(dns_answers_get(&c, "n249.test", 0, &status, &out));
    dns_answers_free(&c);
}

/* The refcounted cache a resolver holds, shared (locked) or private: the same answers. */
static void test_cache_shared_and_private_alike(void **state)
{
    (void)state;
    struct awf_dns_cache *caches[2];
    assert_int_equal(dns_cache_create(2, &caches[0]), 0);
    assert_int_equal(dns_cache_create_private(2, &caches[1]), 0);
    for (int i = 0; i < 2; i++) {
        struct awf_dns_cache *c = caches[i];
        union dns_sa sa = v4("192.0.2.7");
        assert_int_equal(dns_cache_put(c, "a.test", 0, &sa, 1, 1000), 0);
        assert_int_equal(dns_cache_put(c, "nx.test", AWF_E_DNS_FAIL, NULL, 0, 500), 0);
        int status = -1;
        struct awf_dns_addrs out;
        assert_true(dns_cache_get(c, "a.test", 999, &status, &out));
        assert_int_equal(status, 0);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.addr[0].ss_family, AF_INET);
        assert_true(dns_cache_get(c, "nx.test", 10, &status, &out));
        assert_int_equal(status, AWF_E_DNS_FAIL);
        assert_false(dns_cache_get(c, "nx.test", 500, &status, &out)); /* expired */
        assert_int_equal(dns_cache_count(c), 1);
        assert_int_equal(dns_cache_put(c, "b.test", 0, &sa, 1, 1000), 0);
        assert_int_equal(dns_cache_put(c, "c.test", 0, &sa, 1, 1000), 0); /* a.test out */
        assert_int_equal(dns_cache_count(c), 2);
        assert_false(dns_cache_get(c, "a.test", 0, &status, &out));
        /* A second holder keeps it alive past the first one's release. */
        struct awf_dns_cache *held = dns_cache_ref(c);
        dns_cache_destroy(c);
        assert_true(dns_cache_get(held, "c.test", 0, &status, &out));
        dns_cache_unref(held);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_entry_lives_until_expiry),
        cmocka_unit_test(test_cache_negative_and_replace),
        cmocka_unit_test(test_cache_bounded_oldest_evicted),
        cmocka_unit_test(test_cache_shared_and_private_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
