/* common/sockaddr.h: the compact address union's helpers. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/sockaddr.h"

static union awf_sockaddr v6(const char *ip, uint16_t port)
{
    union awf_sockaddr a = {.in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)}};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.in6.sin6_addr), 1);
    return a;
}

static void test_unmap(void **state)
{
    (void)state;
    union awf_sockaddr a = v6("::ffff:127.0.0.9", 4321);
    awf_sockaddr_unmap(&a);
    assert_int_equal(a.sa.sa_family, AF_INET);
    assert_int_equal(awf_sockaddr_port(&a), 4321);
    assert_int_equal(ntohl(a.in.sin_addr.s_addr), 0x7f000009);

    union awf_sockaddr b = v6("::1", 80); /* not mapped: unchanged */
    union awf_sockaddr before = b;
    awf_sockaddr_unmap(&b);
    assert_memory_equal(&b, &before, sizeof(b));

    union awf_sockaddr c = {.in = {.sin_family = AF_INET, .sin_port = htons(7)}};
    awf_sockaddr_unmap(&c);
    assert_int_equal(c.sa.sa_family, AF_INET);
    assert_int_equal(awf_sockaddr_port(&c), 7);
}

static void test_copy_and_port(void **state)
{
    (void)state;
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(443);
    union awf_sockaddr a;
    awf_sockaddr_copy(&a, (struct sockaddr *)&ss);
    assert_int_equal(a.sa.sa_family, AF_INET6);
    assert_int_equal(awf_sockaddr_port(&a), 443);
    ss.ss_family = AF_UNIX;
    awf_sockaddr_copy(&a, (struct sockaddr *)&ss);
    assert_int_equal(a.sa.sa_family, AF_UNSPEC);
    assert_int_equal(awf_sockaddr_port(&a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmap),
        cmocka_unit_test(test_copy_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
