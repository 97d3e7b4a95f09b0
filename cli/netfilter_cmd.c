/* `netfilter`: placeholder until the netfilter module lands. */
#include <stdio.h>

#include "cli/options.h"

int cli_cmd_netfilter(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "awf-proxy: netfilter: not built yet\n");
    return 2;
}
