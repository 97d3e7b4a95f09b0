#ifndef AWF_TESTS_UNIT_DNS_FIXTURE_H
#define AWF_TESTS_UNIT_DNS_FIXTURE_H

/* The dnsmasq a test file shares (servers.h): srv, started and stopped as cmocka's group setup
 * and teardown (cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq)); a test that needs
 * it calls require_server() first and is skipped when dnsmasq is not installed. For test files
 * only: each one including this gets its own server. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/dns/servers.h"

static struct dns_test_server srv;

static inline int start_dnsmasq(void **state)
{
    (void)state;
    return dns_test_dnsmasq_start(&srv);
}

static inline int stop_dnsmasq(void **state)
{
    (void)state;
    dns_test_dnsmasq_stop(&srv);
    return 0;
}

static inline void require_server(void)
{
    if (!srv.available)
        skip();
}

#endif
