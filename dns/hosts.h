#ifndef AWF_DNS_HOSTS_H
#define AWF_DNS_HOSTS_H

/* The hosts file, read into a table that answers before any query is sent: when the resolver
 * is created (before the loop serves, so a plain blocking read is fine), and again by the
 * runner on a reload (awf_dns_hosts_open, dns.h), which hands one immutable table to every
 * loop's resolver. */

#include <stdatomic.h>
#include <stddef.h>

#include "dns/dns.h"
#include "dns/table.h"

struct dns_hosts {
    struct dns_table names;
    size_t n_names, n_addrs; /* distinct names; addresses summed over names */
};

/* What awf_dns_hosts_open hands out: a table never modified after it is loaded, so resolvers
 * on several threads read it without a lock; freed with its last reference. */
struct awf_dns_hosts_file {
    struct dns_hosts table;
    atomic_size_t refs;
};

/* Starts an empty table. Returns 0 or -ENOMEM. */
int dns_hosts_init(struct dns_hosts *h);

/* Adds the entries of text (hosts(5) syntax: "ADDR NAME [ALIAS...]", '#' comments). A name on
 * several lines collects every address, IPv4 before IPv6, each family in file order, at most
 * AWF_DNS_MAX_ADDRS. Lines whose address does not parse are skipped, as glibc does. Returns 0 or
 * -ENOMEM. */
int dns_hosts_parse(struct dns_hosts *h, const char *text, size_t len);

/* Reads path and parses it. A missing file is an empty table (as with glibc); other errors
 * (unreadable, a directory, over 64 MiB) return a negative code. */
int dns_hosts_load(struct dns_hosts *h, const char *path);

/* Fills out for key (a normalized name). Returns 0, or AWF_E_DNS_FAIL if the file does not
 * name it (the caller goes on to DNS then). */
int dns_hosts_find(const struct dns_hosts *h, const char *key, struct awf_dns_addrs *out);

void dns_hosts_free(struct dns_hosts *h);

#endif
