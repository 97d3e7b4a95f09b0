/* Where intercepted traffic was headed (proxy/intercept.c): telling a NAT'd connection from one
 * made straight to the listener, the order of the port's sources, and the conntrack lookup on a
 * real loopback connection that was not NAT'd (the netns integration test covers the NAT). */

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/conn.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_intercept_is_nat(void **state)
{
    (void)state;
    struct sockaddr_storage local = v4("10.0.0.1", 3128);
    struct sockaddr_storage same = v4("10.0.0.1", 3128);
    struct sockaddr_storage port = v4("10.0.0.1", 443);
    struct sockaddr_storage addr = v4("93.184.216.34", 3128);
    assert_false(proxy_intercept_is_nat(SA(same), SA(local)));
    assert_true(proxy_intercept_is_nat(SA(port), SA(local)));
    assert_true(proxy_intercept_is_nat(SA(addr), SA(local)));

    struct sockaddr_storage l6 = v6("fd00::1", 3128);
    struct sockaddr_storage s6 = v6("fd00::1", 3128);
    struct sockaddr_storage o6 = v6("2001:db8::1", 443);
    assert_false(proxy_intercept_is_nat(SA(s6), SA(l6)));
    assert_true(proxy_intercept_is_nat(SA(o6), SA(l6)));

    struct sockaddr_storage none;
    memset(&none, 0, sizeof(none));
    assert_false(proxy_intercept_is_nat(SA(none), SA(local)));
}

static void test_intercept_port_order(void **state)
{
    (void)state;
    struct sockaddr_storage o4 = v4("93.184.216.34", 8443);
    struct sockaddr_storage o6 = v6("2001:db8::1", 8080);
    /* The original destination wins: it is what the client asked for. */
    assert_int_equal(proxy_intercept_choose_port(SA(o4), 9443, 443), 8443);
    assert_int_equal(proxy_intercept_choose_port(SA(o6), 0, 80), 8080);
    /* Then the listener's intercept_port, then the fallback (Host's port, 80, 443). */
    assert_int_equal(proxy_intercept_choose_port(NULL, 9443, 443), 9443);
    assert_int_equal(proxy_intercept_choose_port(NULL, 0, 443), 443);
    assert_int_equal(proxy_intercept_choose_port(NULL, 0, 8080), 8080);
}

/* A real loopback connection made straight to a listener: conntrack (if loaded) says its
 * original destination is the listener itself, so it is not intercepted-with-NAT. */
static void test_intercept_lookup_without_nat(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_storage any = v4("127.0.0.1", 0);
    assert_int_equal(bind(ls, SA(any), sizeof(struct sockaddr_in)), 0);
    assert_int_equal(listen(ls, 1), 0);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&bound, &blen), 0);
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(cs, SA(bound), sizeof(struct sockaddr_in)), 0);
    int as = accept(ls, NULL, NULL);
    assert_true(as >= 0);

    struct proxy_listener l;
    memset(&l, 0, sizeof(l));
    struct proxy_conn c;
    memset(&c, 0, sizeof(c));
    c.listener = &l;
    awf_sockaddr_copy(&c.local, (const struct sockaddr *)&bound);
    assert_int_equal(uv_tcp_init(&loop, &c.client), 0);
    assert_int_equal(uv_tcp_open(&c.client, as), 0);

    assert_int_equal(proxy_conn_intercept_port(&c, 443), 443);
    assert_true(c.flags & AWF_CF_ORIG_LOOKED);
    assert_false(c.flags & AWF_CF_HAS_ORIG_DST);
    l.intercept_port = 8443; /* looked up once: the listener's port now stands for it */
    assert_int_equal(proxy_conn_intercept_port(&c, 443), 8443);

    uv_close((uv_handle_t *)&c.client, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(cs);
    close(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intercept_is_nat),
        cmocka_unit_test(test_intercept_port_order),
        cmocka_unit_test(test_intercept_lookup_without_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
