#ifndef AWF_NETFILTER_NETFILTER_INT_H
#define AWF_NETFILTER_NETFILTER_INT_H

/* What the files of netfilter/ share and the tests reach: the value parsers and the text buffer
 * (opts.c), the pure ruleset builder and the iptables-save reader (rules.c), running a tool
 * (apply.c). Not part of the module's API: netfilter/netfilter.h is. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netfilter/netfilter.h"

/* The value parsers behind awf_netfilter_opts_set (opts.c). Return 0 or AWF_E_USAGE. An endpoint is
 * "ADDR:PORT" or "[ADDR6]:PORT"; a port is 1..65535 in decimal. */
int netfilter_parse_addr(const char *s, struct awf_nf_addr *out);
int netfilter_parse_endpoint(const char *s, struct awf_nf_endpoint *out);
int netfilter_parse_port(const char *s, uint16_t *out);

/* Appends to a text buffer (netfilter.h: struct awf_nf_text). Return 0 or -ENOMEM. */
int netfilter_text_append(struct awf_nf_text *t, const char *s, size_t n);
int netfilter_text_printf(struct awf_nf_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- building (rules.c): pure ---- */

/* What a table looks like now, read from `iptables-save -t TABLE` (see netfilter_scan). */
struct awf_nf_table_state {
    bool chain_present;       /* our chain exists */
    bool jump_present;        /* the jump to it from the hook chain exists */
    bool docker_user_present; /* filter: a DOCKER-USER chain exists (host side hook) */
};

/* Our chain in a table for a side ("AWF_OUTPUT", "AWF_NAT", "FW_WRAPPER"), or NULL when the side
 * has nothing in that table (the host side has no nat rules). */
const char *netfilter_chain(enum awf_nf_side side, enum awf_nf_table table);

/* The chain our jump lives in: OUTPUT (agent); DOCKER-USER, or FORWARD when there is no
 * DOCKER-USER in that family (host). */
const char *netfilter_hook(enum awf_nf_side side, const struct awf_nf_table_state *st);

/* Reads iptables-save output of one table (borrowed for the call): is our chain there, is the
 * exact jump build would add there (hook, bridge and chain as o gives them). Pure. */
void netfilter_scan(const char *save, const struct awf_nf_opts *o, enum awf_nf_table table,
                    struct awf_nf_table_state *st);

/* Appends the iptables-restore --noflush input for one family and table to out: "*table", our
 * chain declared (which creates or flushes it), the jump inserted at the top of the hook chain
 * unless st says it is there, the rules, "COMMIT". Appends nothing when the side has no rules in
 * that table. Pure. Returns 0 or -ENOMEM. */
int netfilter_build(const struct awf_nf_opts *o, enum awf_nf_family fam, enum awf_nf_table table,
                    const struct awf_nf_table_state *st, struct awf_nf_text *out);

/* Appends the input that takes out exactly what build put in, given the table's iptables-save
 * output: every jump to our chain deleted (-D with the rule as saved), our chain flushed and
 * deleted. Appends nothing when neither is there. Pure. Returns 0 or -ENOMEM. */
int netfilter_build_remove(const char *save, enum awf_nf_side side, enum awf_nf_table table,
                           struct awf_nf_text *out);

/* ---- running a tool (apply.c) ---- */

/* Runs argv (argv[0] looked up in PATH) with in on stdin (may be NULL), collects stdout into out
 * (may be NULL) and stderr into errout (may be NULL). No shell. Returns the exit status (0..255),
 * or a negative code when it could not be run or was killed. */
int netfilter_exec(const char *const argv[], const char *in, size_t inlen, struct awf_nf_text *out,
                   struct awf_nf_text *errout);

#endif
