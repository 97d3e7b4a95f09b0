#ifndef AWF_DNS_RAW_H
#define AWF_DNS_RAW_H

/* What resolver.c gives the forwarder (forwarder.c), private to dns/. */

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

/* One query of any type through the resolver's channel (its servers, timeouts and retries),
 * for the DNS forwarder, which answers from the server's own records. No hosts file, no cache,
 * no joining: the caller caches. status: 0 with msg, the server's response whatever its rcode
 * (NOERROR with or without records, NXDOMAIN); AWF_E_DNS_TIMEOUT; or AWF_E_DNS_FAIL (SERVFAIL
 * or REFUSED from every server, unreachable servers, a malformed name) with msg NULL. msg is
 * borrowed for the callback only and has not been validated beyond its header. */
struct dns_raw;
typedef void (*dns_raw_cb)(void *arg, int status, const unsigned char *msg, size_t len);

/* Sends the query (class IN, RD set). *raw is written before cb may run, and cb may run before
 * this returns (no usable server): the caller must not touch what cb may free after calling.
 * Returns 0, or a negative code (cb not called). */
int dns_query_raw(struct awf_dns *dns, const char *name, uint16_t type, dns_raw_cb cb, void *arg,
                  struct dns_raw **raw);

/* cb will not be called for raw. Not for use once cb has run. */
void dns_raw_cancel(struct dns_raw *raw);

#endif
