#ifndef AWF_CLI_OPTIONS_H
#define AWF_CLI_OPTIONS_H

/* The policy options every subcommand shares. They are recorded in order, not applied at once, so
 * that a reload (SIGHUP) can rebuild the policy from the same file and flags. */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

enum cli_item_kind {
    CLI_ITEM_LIST,      /* --allow-domains / --block-domains */
    CLI_ITEM_LIST_FILE, /* --allow-domains-file / --block-domains-file */
    CLI_ITEM_SET,       /* any flag that maps onto a policy key */
};

struct cli_item {
    enum cli_item_kind kind;
    bool block;
    const char *flag;  /* "--allow-domains", for messages; static */
    const char *key;   /* policy key for CLI_ITEM_SET; static or argv-owned */
    const char *value; /* argv-owned, or heap-owned when owned is set */
    char *owned;       /* --set KEY=VALUE: the copy key and value point into */
};

struct cli_policy_opts {
    const char *policy_file; /* argv-owned */
    const char *squid_conf;  /* --squid-conf FILE, argv-owned */
    struct cli_item *items;  /* owned */
    size_t n_items, cap_items;
    bool have_lists; /* any allow/block flag: the embedded default is then not used */
};

/* getopt values of the policy options start here; a subcommand's own options (struct cli_extra
 * below) take values under it. */
#define CLI_POLICY_OPT_BASE 1000

/* Builds a policy from the recorded options; on error prints "awf-proxy: WHERE: reason" to
 * stderr and returns NULL. */
struct awf_policy *cli_policy_build(const struct cli_policy_opts *o);
/* The same, silent: on error err gets "WHERE: reason" (for check --json). */
struct awf_policy *cli_policy_build_err(const struct cli_policy_opts *o, char *err, size_t errlen);
/* Prints the policy's load notices (squid.conf directives accepted but not acted on, values
 * that match nothing) on stderr, one "awf-proxy: FILE:LINE: ..." line each. */
void cli_policy_notices(const struct awf_policy *p);

/* Compiles every log output's format; on the first bad one prints "WHERE: log format: reason"
 * (WHERE the file:line:col or flag that gave it) and returns -1. */
int cli_logformats_check(const struct awf_settings *s);

void cli_policy_opts_free(struct cli_policy_opts *o);

/* A subcommand's own options beside the policy options: `opts` ends with a zeroed entry, and
 * `take` is called with each one's val and argument. */
struct cli_extra {
    const struct option *opts;
    void (*take)(void *ctx, int val, const char *arg);
    void *ctx;
};

/* Reads a subcommand's arguments: the policy options, `extra`'s (NULL for none) and --help
 * (which prints usage followed by the policy options' help). Returns 1 with *first_arg the
 * index of the first non-option argument, 0 when --help was printed, -1 on a bad option
 * (message printed). */
int cli_parse(int argc, char **argv, struct cli_policy_opts *o, const char *usage,
              const struct cli_extra *extra, int *first_arg);

/* The text shared by every subcommand's --help. */
extern const char cli_policy_help[];

int cli_cmd_run(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_explain(int argc, char **argv);
int cli_cmd_netfilter(int argc, char **argv);
int cli_cmd_squid_conf(int argc, char **argv);
int cli_cmd_ca(int argc, char **argv);

#endif
