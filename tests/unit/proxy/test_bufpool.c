/* The per-loop block pool (proxy/bufpool.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/bufpool.h"

static void test_bufpool_reuses_blocks(void **state)
{
    (void)state;
    struct proxy_bufpool bp;
    proxy_bufpool_init(&bp, 1024, 4);
    struct proxy_buf *a = proxy_bufpool_get(&bp, 0);
    assert_non_null(a);
    assert_int_equal(a->cap, 1024);
    assert_int_equal(bp.in_use, 1);
    proxy_bufpool_put(&bp, a);
    assert_int_equal(bp.in_use, 0);
    assert_int_equal(bp.n_free, 1);
    struct proxy_buf *b = proxy_bufpool_get(&bp, 10);
    assert_ptr_equal(a, b);
    assert_int_equal(b->off, 0);
    assert_int_equal(b->len, 0);
    proxy_bufpool_put(&bp, b);
    proxy_bufpool_cleanup(&bp);
    assert_int_equal(bp.n_free, 0);
}

static void test_bufpool_large_blocks_are_one_off(void **state)
{
    (void)state;
    struct proxy_bufpool bp;
    proxy_bufpool_init(&bp, 1024, 4);
    struct proxy_buf *big = proxy_bufpool_get(&bp, 5000);
    assert_non_null(big);
    assert_true(big->cap >= 5000);
    memset(big->data, 'x', 5000);
    proxy_bufpool_put(&bp, big);
    assert_int_equal(bp.n_free, 0); /* freed, not kept */
    assert_int_equal(bp.in_use, 0);
    proxy_bufpool_cleanup(&bp);
}

static void test_bufpool_keeps_at_most_max_free(void **state)
{
    (void)state;
    struct proxy_bufpool bp;
    struct proxy_buf *b[6];
    proxy_bufpool_init(&bp, 256, 2);
    for (int i = 0; i < 6; i++)
        b[i] = proxy_bufpool_get(&bp, 0);
    assert_int_equal(bp.in_use, 6);
    for (int i = 0; i < 6; i++)
        proxy_bufpool_put(&bp, b[i]);
    assert_int_equal(bp.n_free, 2);
    assert_int_equal(bp.in_use, 0);
    proxy_bufpool_put(&bp, NULL);
    proxy_bufpool_cleanup(&bp);
}

static void test_bufpool_buf_of_data(void **state)
{
    (void)state;
    struct proxy_bufpool bp;
    proxy_bufpool_init(&bp, 256, 2);
    struct proxy_buf *b = proxy_bufpool_get(&bp, 0);
    assert_ptr_equal(proxy_buf_of(b->data), b);
    proxy_bufpool_put(&bp, b);
    proxy_bufpool_cleanup(&bp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bufpool_reuses_blocks),
        cmocka_unit_test(test_bufpool_large_blocks_are_one_off),
        cmocka_unit_test(test_bufpool_keeps_at_most_max_free),
        cmocka_unit_test(test_bufpool_buf_of_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
