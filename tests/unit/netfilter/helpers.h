#ifndef AWF_TESTS_UNIT_NETFILTER_HELPERS_H
#define AWF_TESTS_UNIT_NETFILTER_HELPERS_H

/* Shared by the netfilter unit tests: options from a command-line-like list, and the golden
 * lines every ruleset ends with. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netfilter/netfilter-int.h"

/* Options from pairs of name, value (NULL-terminated), checked; fails the test on error. */
static inline void opts_from(struct awf_nf_opts *o, ...)
{
    char err[256] = "";
    va_list ap;
    awf_netfilter_opts_init(o);
    va_start(ap, o);
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (!name)
            break;
        const char *value = va_arg(ap, const char *);
        if (awf_netfilter_opts_set(o, name, value, err, sizeof(err)) != 0)
            fail_msg("--%s %s: %s", name, value, err);
    }
    va_end(ap);
    if (awf_netfilter_opts_check(o, err, sizeof(err)) != 0)
        fail_msg("check: %s", err);
}

#define NF_DANGEROUS "22,23,25,110,143,445,1433,1521,3306,3389,5432,6379,27017,27018,28017"
/* What every LOG rule carries after its match (review finding M3), up to the prefix. */
#define NF_LOG                                                                                     \
    " -m conntrack --ctstate NEW -m limit --limit 1/sec --limit-burst 60 -j LOG --log-prefix "

#endif
