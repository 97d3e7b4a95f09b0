#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "dns/name.h"

static void test_name_lowercases_and_drops_one_trailing_dot(void **state)
{
    (void)state;
    char key[AWF_HOST_MAX + 1];
    assert_int_equal(dns_name_normalize("Api.GitHub.COM.", key), 14);
    assert_string_equal(key, "api.github.com");
    assert_int_equal(dns_name_normalize("[::1]", key), 3);
    assert_string_equal(key, "::1");
}

static void test_name_rejects_what_no_server_answers(void **state)
{
    (void)state;
    char key[AWF_HOST_MAX + 1];
    char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    memset(long_name, 'a', 254);
    long_name[254] = '\0';
    const char *bad[] = {"",    ".",    "a..",  "..a",      "a..b",   ".a",
                         "a b", "a\\b", "a\tb", long_label, long_name};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dns_name_normalize(bad[i], key), AWF_E_DNS_FAIL);
    long_label[63] = '\0';
    assert_int_equal(dns_name_normalize(long_label, key), 63);
}

static void test_name_literals_as_the_policy_reads_them(void **state)
{
    (void)state;
    union dns_sa sa;
    assert_true(dns_name_literal("127.0.0.1", &sa));
    assert_int_equal(sa.sa.sa_family, AF_INET);
    assert_int_equal(ntohl(sa.in.sin_addr.s_addr), 0x7f000001);
    assert_int_equal(sa.in.sin_port, 0);
    assert_true(dns_name_literal("127.1", &sa)); /* inet_aton spelling */
    assert_int_equal(ntohl(sa.in.sin_addr.s_addr), 0x7f000001);
    assert_true(dns_name_literal("0x7f000001", &sa));
    assert_int_equal(ntohl(sa.in.sin_addr.s_addr), 0x7f000001);
    assert_true(dns_name_literal("2001:db8::1", &sa));
    assert_int_equal(sa.sa.sa_family, AF_INET6);
    assert_false(dns_name_literal("example.com", &sa));
    assert_false(dns_name_literal("1.2.3.4.example", &sa));
    assert_false(dns_name_literal("::zz", &sa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_lowercases_and_drops_one_trailing_dot),
        cmocka_unit_test(test_name_rejects_what_no_server_answers),
        cmocka_unit_test(test_name_literals_as_the_policy_reads_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
