/* The leaf cache: hits, LRU order, the byte bound, clearing, and sharing between threads. */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "tls/tls-int.h"

static struct awf_tls_ca *ca;
static EVP_PKEY *key;

static X509 *mint(const char *name)
{
    X509 *x = NULL;
    assert_int_equal(awf_tls_mint(ca, key, name, AWF_TLS_NAME_DNS, &x), 0);
    return x;
}

static void test_tls_cache_hit_and_replace(void **state)
{
    (void)state;
    struct tls_cache *c = tls_cache_create(1u << 20);
    assert_null(tls_cache_get(c, "a.test"));
    X509 *a = mint("a.test"), *a2 = mint("a.test");
    assert_int_equal(tls_cache_put(c, "a.test", a), 0);
    X509 *got = tls_cache_get(c, "a.test");
    assert_ptr_equal(got, a);
    X509_free(got);
    assert_int_equal(tls_cache_put(c, "a.test", a2), 0); /* replaces */
    got = tls_cache_get(c, "a.test");
    assert_ptr_equal(got, a2);
    X509_free(got);
    struct tls_cache_stats st;
    tls_cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1);
    X509_free(a);
    X509_free(a2);
    tls_cache_destroy(c);
}

static void test_tls_cache_clear(void **state)
{
    (void)state;
    struct tls_cache *c = tls_cache_create(1u << 20);
    X509 *a = mint("a.test"), *b = mint("b.test");
    assert_int_equal(tls_cache_put(c, "a.test", a), 0);
    assert_int_equal(tls_cache_put(c, "b.test", b), 0);
    tls_cache_clear(c); /* a CA reload: no leaf of the old CA is handed out again */
    assert_null(tls_cache_get(c, "a.test"));
    assert_null(tls_cache_get(c, "b.test"));
    struct tls_cache_stats st;
    tls_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(tls_cache_put(c, "a.test", a), 0); /* usable afterwards */
    X509 *got = tls_cache_get(c, "a.test");
    assert_ptr_equal(got, a);
    X509_free(got);
    X509_free(a);
    X509_free(b);
    tls_cache_destroy(c);
}

static void test_tls_cache_bound_evicts_lru(void **state)
{
    (void)state;
    X509 *x = mint("probe.test");
    struct tls_cache *c = tls_cache_create(1u << 20);
    assert_int_equal(tls_cache_put(c, "probe.test", x), 0);
    struct tls_cache_stats st;
    tls_cache_stats(c, &st);
    size_t one = st.bytes;
    tls_cache_destroy(c);
    /* Room for about four entries. */
    c = tls_cache_create(one * 4 + one / 2);
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        assert_int_equal(tls_cache_put(c, name, x), 0);
    }
    X509 *g = tls_cache_get(c, "n0.test"); /* n0 is now the most recent: n1 goes first */
    X509_free(g);
    assert_int_equal(tls_cache_put(c, "n4.test", x), 0);
    assert_null(tls_cache_get(c, "n1.test"));
    g = tls_cache_get(c, "n0.test");
    assert_non_null(g);
    X509_free(g);
    for (int i = 5; i < 1000; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        assert_int_equal(tls_cache_put(c, name, x), 0);
    }
    tls_cache_stats(c, &st);
    assert_true(st.bytes <= one * 4 + one / 2);
    assert_true(st.entries >= 3 && st.entries <= 4);
    assert_true(st.evictions >= 996);
    tls_cache_destroy(c);
    /* A bound smaller than one entry keeps nothing. */
    c = tls_cache_create(16);
    assert_int_equal(tls_cache_put(c, "a.test", x), 0);
    assert_null(tls_cache_get(c, "a.test"));
    tls_cache_destroy(c);
    X509_free(x);
}

static struct tls_cache *shared;
static X509 *shared_x;

static void *worker(void *arg)
{
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "t%d-%d.test", (int)(size_t)arg, i % 50);
        X509 *g = tls_cache_get(shared, name);
        if (g)
            X509_free(g);
        else if (tls_cache_put(shared, name, shared_x) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_tls_cache_threads(void **state)
{
    (void)state;
    shared_x = mint("t.test");
    shared = tls_cache_create(64u << 10);
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (size_t i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    struct tls_cache_stats st;
    tls_cache_stats(shared, &st);
    assert_true(st.bytes <= 64u << 10);
    assert_int_equal(st.hits + st.misses, 8000);
    tls_cache_destroy(shared);
    X509_free(shared_x);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    key = awf_tls_key_new(AWF_TLS_KEY_P256);
    return awf_tls_ca_new(1, "cache test", &ca, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    awf_tls_ca_free(ca);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_cache_hit_and_replace),
        cmocka_unit_test(test_tls_cache_bound_evicts_lru),
        cmocka_unit_test(test_tls_cache_clear),
        cmocka_unit_test(test_tls_cache_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
