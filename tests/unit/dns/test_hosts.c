#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "dns/hosts.h"

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)len);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)len);
}

static void assert_addrs(const struct awf_dns_addrs *a, const char *const *want, size_t n)
{
    char buf[INET6_ADDRSTRLEN];
    assert_int_equal(a->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(addr_str(&a->addr[i], buf, sizeof(buf)), want[i]);
}

static void test_hosts_names_aliases_comments(void **state)
{
    (void)state;
    struct dns_hosts h;
    assert_int_equal(dns_hosts_init(&h), 0);
    const char *text = "# AWF topology\n"
                       "172.30.0.10\tsquid-proxy awf-squid # the proxy\n"
                       "  ::1 localhost ip6-localhost\n"
                       "127.0.0.1 localhost\r\n"
                       "not-an-ip bogus.test\n"
                       "10.0.0.1 Mixed.Case.Test.\n"
                       "10.0.0.2"; /* no name, no newline */
    assert_int_equal(dns_hosts_parse(&h, text, strlen(text)), 0);

    struct awf_dns_addrs a;
    assert_int_equal(dns_hosts_find(&h, "squid-proxy", &a), 0);
    assert_addrs(&a, (const char *[]){"172.30.0.10"}, 1);
    assert_int_equal(dns_hosts_find(&h, "awf-squid", &a), 0);
    assert_addrs(&a, (const char *[]){"172.30.0.10"}, 1);
    /* Both families, IPv4 first whatever the file order. */
    assert_int_equal(dns_hosts_find(&h, "localhost", &a), 0);
    assert_addrs(&a, (const char *[]){"127.0.0.1", "::1"}, 2);
    assert_int_equal(dns_hosts_find(&h, "mixed.case.test", &a), 0);
    assert_int_equal(dns_hosts_find(&h, "bogus.test", &a), AWF_E_DNS_FAIL);
    assert_int_equal(dns_hosts_find(&h, "the", &a), AWF_E_DNS_FAIL);
    assert_int_equal(dns_hosts_find(&h, "proxy", &a), AWF_E_DNS_FAIL);
    dns_hosts_free(&h);
}

static void test_hosts_repeated_address_kept_once(void **state)
{
    (void)state;
    struct dns_hosts h;
    assert_int_equal(dns_hosts_init(&h), 0);
    const char *text = "192.0.2.1 a.test\n192.0.2.1 a.test\n192.0.2.2 a.test\n";
    assert_int_equal(dns_hosts_parse(&h, text, strlen(text)), 0);
    struct awf_dns_addrs a;
    assert_int_equal(dns_hosts_find(&h, "a.test", &a), 0);
    assert_addrs(&a, (const char *[]){"192.0.2.1", "192.0.2.2"}, 2);
    dns_hosts_free(&h);
}

static void test_hosts_load_file_missing_and_directory(void **state)
{
    (void)state;
    char dir[] = "/tmp/awf-hosts-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/hosts", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("198.51.100.7 file.test\n", f);
    fclose(f);

    struct dns_hosts h;
    struct awf_dns_addrs a;
    assert_int_equal(dns_hosts_init(&h), 0);
    assert_int_equal(dns_hosts_load(&h, path), 0);
    assert_int_equal(dns_hosts_find(&h, "file.test", &a), 0);
    assert_int_equal(dns_hosts_load(&h, "/nonexistent/awf/hosts"), 0);
    assert_int_equal(dns_hosts_load(&h, dir), -EISDIR);
    dns_hosts_free(&h);
    unlink(path);
    rmdir(dir);
}

/* What a reload reports: counts of distinct names and addresses, and the file's SHA-256 as
 * sha256sum prints it; a missing file is an empty table, a directory an error. */
static void test_hosts_open_counts_and_hash(void **state)
{
    (void)state;
    char dir[] = "/tmp/awf-hosts-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/hosts", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("abc", f); /* sha256("abc") is the FIPS 180-2 example */
    fclose(f);
    struct awf_dns_hosts_file *h = NULL;
    struct awf_dns_hosts_info info;
    assert_int_equal(awf_dns_hosts_open(path, &h, &info), 0);
    assert_string_equal(info.sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(info.names, 0);
    assert_int_equal(info.bytes, 3);
    awf_dns_hosts_release(h);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("192.0.2.1 a.test b.test\n192.0.2.1 a.test\n::1 a.test\nbad c.test\n", f);
    fclose(f);
    assert_int_equal(awf_dns_hosts_open(path, &h, &info), 0);
    assert_false(info.missing);
    assert_int_equal(info.names, 2);
    assert_int_equal(info.addrs, 3); /* a.test: 192.0.2.1 and ::1; b.test: 192.0.2.1 */
    struct awf_dns_addrs a;
    assert_int_equal(dns_hosts_find(&awf_dns_hosts_ref(h)->table, "b.test", &a), 0);
    awf_dns_hosts_release(h);
    awf_dns_hosts_release(h);

    assert_int_equal(awf_dns_hosts_open("/nonexistent/awf/hosts", &h, &info), 0);
    assert_true(info.missing);
    assert_string_equal(info.sha256, "");
    awf_dns_hosts_release(h);
    assert_int_equal(awf_dns_hosts_open("", &h, &info), 0);
    assert_false(info.missing);
    awf_dns_hosts_release(h);
    h = NULL;
    assert_int_equal(awf_dns_hosts_open(dir, &h, &info), -EISDIR);
    assert_null(h);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts_names_aliases_comments),
        cmocka_unit_test(test_hosts_repeated_address_kept_once),
        cmocka_unit_test(test_hosts_load_file_missing_and_directory),
        cmocka_unit_test(test_hosts_open_counts_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
