#ifndef AWF_DNS_NAME_H
#define AWF_DNS_NAME_H

/* Names and addresses as dns/ stores them: the key every table uses (lower case, no trailing
 * dot) and the compact address kept in the cache and the hosts table. Pure functions. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/host.h"

/* One address, port 0. 28 bytes instead of sockaddr_storage's 128: the cache holds thousands. */
union dns_sa {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

/* Writes the table key of name into out (at least AWF_HOST_MAX + 1 bytes): lower-cased, one
 * trailing dot removed, brackets around an IPv6 literal removed. Returns its length, or
 * AWF_E_DNS_FAIL for what no server could answer: empty, too long, an empty label, a label
 * over 63 bytes, control characters, space or backslash (c-ares would read it as an escape). */
int dns_name_normalize(const char *name, char *out);

/* If key (a normalized name) is an IP literal, fills *out and returns true. IPv4 accepts every
 * spelling inet_aton() does ("127.1", "0x7f000001"), as the policy does when it decides a target
 * is a raw IP: the resolver must never send such a target to DNS as a name. */
bool dns_name_literal(const char *key, union dns_sa *out);

void dns_sa_v4(union dns_sa *out, const struct in_addr *a);
void dns_sa_v6(union dns_sa *out, const struct in6_addr *a, uint32_t scope_id);
/* Copies a into a zeroed sockaddr_storage, the form callers receive. */
void dns_sa_store(const union dns_sa *a, struct sockaddr_storage *out);

#endif
