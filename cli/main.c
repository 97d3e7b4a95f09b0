/* awf-proxy: the command line. Subcommands share the policy options (options.c). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/options.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: awf-proxy [run] [OPTIONS]            run the proxy\n"
            "       awf-proxy check [OPTIONS]            validate and print the normalized policy\n"
            "       awf-proxy explain [OPTIONS] TARGET   say whether TARGET is allowed, and why\n"
            "       awf-proxy netfilter print|apply|remove [OPTIONS]  the agent's iptables rules\n"
            "       awf-proxy squid-conf FILE --to-policy  YAML policy from a squid.conf\n"
            "       awf-proxy ca new --out DIR [--days N]  a CA for ssl-bump (ca --help)\n"
            "       awf-proxy --help | --version\n"
            "\n"
            "awf-proxy is an HTTP/HTTPS egress proxy that lets out only what its policy allows\n"
            "and logs every decision in Squid's formats.\n"
            "\n"
            "TARGET (explain): http://host[:port]/path   a plain HTTP request (port 80)\n"
            "                  https://host[:port]/path  a TLS request (port 443)\n"
            "                  host:port                 a CONNECT tunnel\n"
            "\n"
            "%s"
            "\n"
            "Signals (run): SIGTERM/SIGINT stop accepting, flush logs and exit; SIGHUP reloads\n"
            "the policy (a bad one is refused and the old one kept); SIGUSR1 reopens log files.\n"
            "\n"
            "Exit codes:\n"
            "  0  success; explain: allowed\n"
            "  1  a failure at run time (address in use, netfilter apply rolled back, ...);\n"
            "     explain: denied\n"
            "  2  bad input: invalid policy, options or usage, or a path given that cannot be\n"
            "     used (missing log directory, unreadable hosts file, ...)\n",
            cli_policy_help);
}

/* getopt_long names argv[0] in its messages: make it "awf-proxy check", not "check". */
static char **subcommand_argv(char **argv, const char *name)
{
    argv[1] = (char *)name;
    return argv + 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        const char *cmd = argv[1];
        if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 ||
            strcmp(cmd, "version") == 0) {
            printf("awf-proxy %s\n", AWF_VERSION_STRING);
            return 0;
        }
        if (strcmp(cmd, "run") == 0)
            return cli_cmd_run(argc - 1, subcommand_argv(argv, "awf-proxy run"));
        if (strcmp(cmd, "check") == 0)
            return cli_cmd_check(argc - 1, subcommand_argv(argv, "awf-proxy check"));
        if (strcmp(cmd, "explain") == 0)
            return cli_cmd_explain(argc - 1, subcommand_argv(argv, "awf-proxy explain"));
        if (strcmp(cmd, "netfilter") == 0)
            return cli_cmd_netfilter(argc - 1, subcommand_argv(argv, "awf-proxy netfilter"));
        if (strcmp(cmd, "squid-conf") == 0)
            return cli_cmd_squid_conf(argc - 1, subcommand_argv(argv, "awf-proxy squid-conf"));
        if (strcmp(cmd, "ca") == 0)
            return cli_cmd_ca(argc - 1, subcommand_argv(argv, "awf-proxy ca"));
        if (cmd[0] != '-') {
            fprintf(stderr, "awf-proxy: unknown command \"%s\" (see awf-proxy --help)\n", cmd);
            return 2;
        }
    }
    argv[0] = (char *)"awf-proxy";
    return cli_cmd_run(argc, argv);
}
