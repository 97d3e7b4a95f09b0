/* Several proxies on one address (proxy/proxy.c): awf_proxy_listen binds the configured
 * listeners, awf_proxy_listen_at binds a second proxy to what the first got (port 0 becomes the
 * kernel's choice) with SO_REUSEPORT, as one proxy per event-loop thread does; limits shared
 * between them (awf_proxy_share_limits). Loopback only. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proxy/conn.h"
#include "proxy/proxy.h"
#include "tests/unit/policy/helpers.h"

static void done_cb(void *arg)
{
    (*(int *)arg)++;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
}

static void test_listen_at_shares_the_port(void **state)
{
    (void)state;
    uv_loop_t loop;
    char err[256] = "";
    struct awf_proxy *a, *b;
    struct sockaddr_storage bound[2], again[2];
    int done = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct awf_policy *p = from_yaml("version: 1\nallow: [\"x.test\"]\nthreads: 2\n"
                                     "listen: [\"127.0.0.1:0\"]\n");
    assert_int_equal(awf_proxy_create(&loop, p, NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_create(&loop, p, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_listen(a, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_bound(a, bound, 2), 1);
    assert_int_not_equal(port_of(&bound[0]), 0);
    /* A count that does not match the listeners is refused, nothing bound. */
    assert_int_equal(awf_proxy_listen_at(b, bound, 2, err, sizeof(err)), -EINVAL);
    assert_int_equal(awf_proxy_listen_at(b, bound, 1, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_bound(b, again, 2), 1);
    assert_int_equal(port_of(&again[0]), port_of(&bound[0]));
    awf_proxy_shutdown(a, 0, done_cb, &done);
    awf_proxy_shutdown(b, 0, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    awf_policy_unref(p);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_one_thread_does_not_share(void **state)
{
    (void)state;
    uv_loop_t loop;
    char err[256] = "";
    struct awf_proxy *a, *b;
    struct sockaddr_storage bound[1];
    int done = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct awf_policy *p = from_yaml("version: 1\nallow: [\"x.test\"]\nthreads: 1\n"
                                     "listen: [\"127.0.0.1:0\"]\n");
    assert_int_equal(awf_proxy_create(&loop, p, NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_listen(a, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_bound(a, bound, 1), 1);
    /* A second proxy configured for that exact port, one thread: the port is in use. */
    char yaml[200];
    snprintf(yaml, sizeof(yaml),
             "version: 1\nallow: [\"x.test\"]\nthreads: 1\n"
             "listen: [\"127.0.0.1:%u\"]\n",
             (unsigned)port_of(&bound[0]));
    struct awf_policy *q = from_yaml(yaml);
    assert_int_equal(awf_proxy_create(&loop, q, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_listen(b, err, sizeof(err)), UV_EADDRINUSE);
    awf_proxy_shutdown(a, 0, done_cb, &done);
    awf_proxy_shutdown(b, 0, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    awf_policy_unref(p);
    awf_policy_unref(q);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_shared_tunnel_limit(void **state)
{
    (void)state;
    uv_loop_t loop;
    char err[256] = "";
    struct awf_proxy *a, *b;
    int done = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct awf_policy *p = from_yaml("version: 1\nallow: [\"x.test\"]\nthreads: 2\n"
                                     "limits: {max_tunnels: 1}\n");
    assert_int_equal(awf_proxy_create(&loop, p, NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(awf_proxy_create(&loop, p, NULL, &b, err, sizeof(err)), 0);
    awf_proxy_share_limits(b, a);
    /* Connections of two loops: a tunnel on one takes the only slot of both. */
    static struct proxy_conn ca, cb;
    ca.px = a;
    cb.px = b;
    ca.set = cb.set = awf_policy_settings(p);
    assert_true(proxy_conn_tunnel_reserve(&ca));
    assert_false(proxy_conn_tunnel_reserve(&cb));
    proxy_conn_tunnel_release(&ca);
    assert_true(proxy_conn_tunnel_reserve(&cb));
    assert_false(proxy_conn_tunnel_reserve(&ca));
    proxy_conn_tunnel_release(&cb);
    struct awf_proxy_stats st;
    awf_proxy_stats(a, &st);
    assert_int_equal(st.tunnels, 0);
    awf_proxy_shutdown(a, 0, done_cb, &done); /* the counts outlive the first proxy */
    awf_proxy_shutdown(b, 0, done_cb, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    awf_policy_unref(p);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_at_shares_the_port),
        cmocka_unit_test(test_one_thread_does_not_share),
        cmocka_unit_test(test_shared_tunnel_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
