/* `squid-conf FILE --to-policy`: the YAML policy closest to a squid.conf, for operators moving
 * off squid.conf. What YAML cannot express is named on stderr, one line each. */
#include <stdio.h>
#include <string.h>

#include "cli/options.h"

int cli_cmd_squid_conf(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: awf-proxy squid-conf FILE --to-policy\n"
               "Prints the YAML policy closest to FILE; warns on stderr about every rule YAML\n"
               "cannot express. Exit 0 (even with warnings), 2 invalid squid.conf.\n");
        return 0;
    }
    if (argc != 3 || strcmp(argv[2], "--to-policy") != 0) {
        fprintf(stderr, "awf-proxy: squid-conf: usage: awf-proxy squid-conf FILE --to-policy\n");
        return 2;
    }
    struct cli_policy_opts o = {.squid_conf = argv[1]};
    struct awf_policy *p = cli_policy_build(&o);
    if (p == NULL)
        return 2;
    int rc = awf_policy_to_yaml(p, stdout, stderr);
    awf_policy_unref(p);
    return rc < 0 ? 2 : 0;
}
