#ifndef AWF_TESTS_UNIT_DNS_SERVERS_H
#define AWF_TESTS_UNIT_DNS_SERVERS_H

/* DNS servers the resolver's tests run against, on loopback only. */

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

/* dnsmasq answering, under .test (everything else is REFUSED: it has no upstream):
 *   a.test 192.0.2.1 | nx.test and unknown names NXDOMAIN | dual.test 192.0.2.2 + 2001:db8::2 |
 *   v6.test 2001:db8::6 (A is NODATA) | join.test .3, cancel.test .4, orphan.test .5,
 *   peer.test .99 | short.test TTL 1 | long.test TTL 3600 | every other record TTL 300 |
 *   alias.test CNAME mid.test (TTL 600) CNAME chain.test (900), chain.test 192.0.2.20 +
 *   2001:db8::20 (TTL 120) | big.test 192.0.2.101 ... 192.0.2.140.
 * Every query is logged to log. */
struct dns_test_server {
    char dir[64];
    char log[96];
    char hosts[96]; /* a free path in dir for a hosts file */
    char addr[32];  /* "127.0.0.1:PORT" */
    pid_t pid;
    bool available;
};

/* Starts dnsmasq ($AWF_DNSMASQ or /usr/sbin/dnsmasq) and waits until it answers. Returns 0 with
 * available set; 0 with available false if dnsmasq is not installed (tests then skip); -1 if it
 * cannot start, or is missing while CI=true. The child dies with this process (PDEATHSIG). */
int dns_test_dnsmasq_start(struct dns_test_server *srv);
/* Stops it and removes its directory. */
void dns_test_dnsmasq_stop(struct dns_test_server *srv);
/* How many "query[TYPE] NAME" lines it logged, or -1. */
int dns_test_logged(const struct dns_test_server *srv, const char *type, const char *name);

/* A UDP server on 127.0.0.1 that reads every query and answers none, or with answer_a set,
 * answers A queries with 192.0.2.77 (TTL 60) and drops the rest. Close udp when done. */
struct dns_test_silent {
    uv_udp_t udp;
    int received;
    bool answer_a;
    char addr[32]; /* "127.0.0.1:PORT" */
    char buf[1500];
};
int dns_test_silent_start(uv_loop_t *loop, struct dns_test_silent *s);

#endif
