/* `check`: validate a policy the way `run` would, without listening, and print it normalized. */
#include <getopt.h>
#include <stdio.h>

#include "cli/options.h"
#include "common/diag.h"
#include "log/log.h"

/* Log formats are compiled before anything is opened (check and run alike), so a bad one is
 * reported where it was given: "my.yml:7:15: log format: character 5: unterminated '{'". */
int cli_logformats_check(const struct awf_settings *s)
{
    for (size_t i = 0; i < s->n_logs; i++) {
        struct awf_logformat *f = NULL;
        char err[256] = "";
        if (awf_logformat_compile(s->logs[i].format, s->awf_version, &f, err, sizeof(err)) != 0) {
            if (s->logs[i].where && s->logs[i].where[0])
                awf_diag("%s: log format: %s", s->logs[i].where, err);
            else
                awf_diag("log output %s: log format: %s", s->logs[i].path, err);
            return -1;
        }
        awf_logformat_free(f);
    }
    return 0;
}

int cli_cmd_check(int argc, char **argv)
{
    struct cli_policy_opts o = {0};
    int rc = 2, first;
    int r = cli_parse(argc, argv, &o,
                      "Usage: awf-proxy check [OPTIONS]\n"
                      "Validates the policy and prints it normalized. Exit 0 valid, 2 invalid.\n",
                      &first);
    if (r <= 0) {
        rc = r == 0 ? 0 : 2;
        goto out;
    }
    if (first < argc) {
        fprintf(stderr, "awf-proxy: check: unexpected argument \"%s\"\n", argv[first]);
        goto out;
    }
    struct awf_policy *p = cli_policy_build(&o);
    if (p == NULL)
        goto out;
    cli_policy_notices(p);
    if (cli_logformats_check(awf_policy_settings(p)) == 0) {
        awf_policy_print(p, stdout);
        rc = 0;
    }
    awf_policy_unref(p);
out:
    cli_policy_opts_free(&o);
    return rc;
}
