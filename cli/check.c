/* `check`: validate a policy the way `run` would, without listening, and print it normalized. */
#include <getopt.h>
#include <stdio.h>

#include "cli/options.h"
#include "log/log.h"

/* Log formats are compiled here too, so a bad logformat fails `check` and not only `run`. */
static int check_logformats(const struct awf_settings *s)
{
    for (size_t i = 0; i < s->n_logs; i++) {
        struct awf_logformat *f = NULL;
        char err[256] = "";
        if (awf_logformat_compile(s->logs[i].format, s->awf_version, &f, err, sizeof(err)) != 0) {
            fprintf(stderr, "awf-proxy: log output %s: %s\n", s->logs[i].path, err);
            return -1;
        }
        awf_logformat_free(f);
    }
    return 0;
}

int cli_cmd_check(int argc, char **argv)
{
    static const struct option extra[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct option longopts[64];
    cli_longopts_merge(longopts, 64, extra);
    struct cli_policy_opts o = {0};
    int c, rc = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            printf("Usage: awf-proxy check [OPTIONS]\nValidates the policy and prints it "
                   "normalized. Exit 0 valid, 2 invalid.\n\n%s",
                   cli_policy_help);
            rc = 0;
            goto out;
        }
        int r = cli_policy_opt(&o, c, optarg);
        if (r <= 0)
            goto out;
    }
    if (optind < argc) {
        fprintf(stderr, "awf-proxy: check: unexpected argument \"%s\"\n", argv[optind]);
        goto out;
    }
    struct awf_policy *p = cli_policy_build(&o);
    if (p == NULL)
        goto out;
    if (check_logformats(awf_policy_settings(p)) == 0) {
        awf_policy_print(p, stdout);
        rc = 0;
    }
    awf_policy_unref(p);
out:
    cli_policy_opts_free(&o);
    return rc;
}
