/* `netfilter print|apply|remove`: the agent's iptables rules (SPEC §8). Every option is checked
 * before anything is read or changed, so bad input never leaves a half-applied ruleset. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/options.h"
#include "common/error.h"
#include "netfilter/netfilter.h"

static const char usage[] =
    "Usage: awf-proxy netfilter print|apply|remove [OPTIONS]\n"
    "Builds the firewall of SPEC section 8 and loads it with one iptables-restore --noflush per\n"
    "table and family, in chains of its own (AWF_OUTPUT, AWF_NAT; FW_WRAPPER on the host side).\n"
    "  print    show exactly what apply would load (also --dry-run)\n"
    "  apply    load it; twice is the same as once; a failure rolls back\n"
    "  remove   take out exactly what apply put in\n"
    "Exit 0 done, 1 failed (rolled back), 2 bad input (nothing applied).\n"
    "\n"
    "  --side agent|host        agent's namespace (OUTPUT) or host's DOCKER-USER [agent]\n"
    "  --proxy ADDR:PORT        the proxy; once per family, [ADDR6]:PORT [172.30.0.10:3128]\n"
    "  --proxy-ports P,...      more tcp ports DNAT'd to the proxy (80 and 443 always are)\n"
    "  --redirect PORT=LPORT    tcp PORT DNAT'd to the proxy's address at listener port LPORT\n"
    "  --agent-ip ADDR,...      the agent's own addresses (never redirected)\n"
    "  --dns ADDR,...           resolvers the agent may query directly\n"
    "  --dns-forwarder ADDR:PORT  awf-proxy's DNS forwarder: all udp/tcp 53 is DNAT'd there\n"
    "                           and no other resolver is reachable (excludes --dns)\n"
    "  --sidecar ADDR,...       addresses let through for tcp, never redirected\n"
    "  --host-gateway ADDR,...  the host (AWF's host access): never redirected, tcp 80, 443\n"
    "                           and --host-ports let through to it, nothing else\n"
    "  --host-ports P,LO-HI,... more tcp ports let through to the host gateway only\n"
    "  --dangerous-ports P,...  ports never redirected, logged and dropped [SPEC list]\n"
    "  --ipv6 on|off|auto       ip6tables rules; off or unusable: IPv6 disabled by sysctl [auto]\n"
    "  --bridge NAME            host side: the agents' bridge [fw-bridge]\n"
    "  --audit-file PATH        apply/remove: write what was loaded to PATH\n"
    "  --dry-run                same as print\n"
    "  -h, --help               this text\n";

enum { OPT_AUDIT = 1, OPT_DRY_RUN };

/* getopt's long options that map one to one onto awf_netfilter_opts_set names */
static const struct option longopts[] = {
    {"side", required_argument, NULL, 0},
    {"proxy", required_argument, NULL, 0},
    {"proxy-ports", required_argument, NULL, 0},
    {"redirect", required_argument, NULL, 0},
    {"agent-ip", required_argument, NULL, 0},
    {"dns", required_argument, NULL, 0},
    {"dns-forwarder", required_argument, NULL, 0},
    {"sidecar", required_argument, NULL, 0},
    {"host-gateway", required_argument, NULL, 0},
    {"host-ports", required_argument, NULL, 0},
    {"dangerous-ports", required_argument, NULL, 0},
    {"ipv6", required_argument, NULL, 0},
    {"bridge", required_argument, NULL, 0},
    {"audit-file", required_argument, NULL, OPT_AUDIT},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int write_audit(FILE *f, const struct awf_nf_text *text)
{
    size_t n = text->len ? fwrite(text->p, 1, text->len, f) : 0;
    int rc = fclose(f);
    return n == text->len && rc == 0 ? 0 : -1;
}

static void report(const struct awf_nf_plan *plan, enum awf_nf_action action)
{
    static const char *const fam[2] = {"iptables", "ip6tables"};
    static const char *const tbl[2] = {"filter", "nat"};
    int n = 0;
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 2; t++)
            if (plan->load[f][t].len) {
                printf("netfilter: %s %s table %s\n",
                       action == AWF_NF_APPLY ? "applied" : "removed", fam[f], tbl[t]);
                n++;
            }
    if (n == 0)
        printf("netfilter: nothing to %s\n", action == AWF_NF_APPLY ? "apply" : "remove");
    if (action == AWF_NF_APPLY && plan->v6_sysctl)
        printf("netfilter: %s: IPv6 disabled by sysctl (net.ipv6.conf.%s.disable_ipv6=1%s)\n",
               plan->v6_reason, plan->sysctl_scope,
               strcmp(plan->sysctl_scope, "all") == 0 ? ", default too" : "");
}

int cli_cmd_netfilter(int argc, char **argv)
{
    struct awf_nf_opts o;
    char err[512] = "";
    const char *audit = NULL;
    bool dry_run = false;
    int c, idx = 0;

    awf_netfilter_opts_init(&o);
    optind = 1;
    opterr = 0; /* getopt's own messages lack our prefix: say it ourselves */
    while ((c = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
        switch (c) {
        case 0:
            if (awf_netfilter_opts_set(&o, longopts[idx].name, optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "awf-proxy: netfilter: %s\n", err);
                return 2;
            }
            break;
        case OPT_AUDIT:
            audit = optarg;
            break;
        case OPT_DRY_RUN:
            dry_run = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            fprintf(stderr, "awf-proxy: netfilter: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            if (optopt)
                fprintf(stderr, "awf-proxy: netfilter: unknown option -%c\n", optopt);
            else
                fprintf(stderr, "awf-proxy: netfilter: unknown option \"%s\"\n", argv[optind - 1]);
            fprintf(stderr, "awf-proxy: netfilter: see awf-proxy netfilter --help\n");
            return 2;
        }
    }

    enum awf_nf_action action;
    const char *verb = optind < argc ? argv[optind] : (dry_run ? "print" : NULL);
    if (!verb) {
        fprintf(stderr, "awf-proxy: netfilter: say print, apply or remove (see --help)\n");
        return 2;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "awf-proxy: netfilter: unexpected argument \"%s\"\n", argv[optind + 1]);
        return 2;
    }
    if (strcmp(verb, "print") == 0)
        action = AWF_NF_PRINT;
    else if (strcmp(verb, "apply") == 0)
        action = AWF_NF_APPLY;
    else if (strcmp(verb, "remove") == 0)
        action = AWF_NF_REMOVE;
    else {
        fprintf(stderr, "awf-proxy: netfilter: \"%s\" is not print, apply or remove\n", verb);
        return 2;
    }
    if (dry_run)
        action = AWF_NF_PRINT;
    if (awf_netfilter_opts_check(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "awf-proxy: netfilter: %s\n", err);
        return 2;
    }

    struct awf_nf_plan plan;
    struct awf_nf_text text = {0};
    int rc = 1;
    int r = awf_netfilter_plan(&o, action, &plan, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "awf-proxy: netfilter: %s\n", r == AWF_E_NETFILTER ? err : awf_strerror(r));
        goto out;
    }
    if (awf_netfilter_plan_text(&plan, &text) < 0) {
        fprintf(stderr, "awf-proxy: netfilter: %s\n", awf_strerror(-ENOMEM));
        goto out;
    }
    if (action == AWF_NF_PRINT) {
        if (plan.state_unknown)
            fprintf(stderr, "awf-proxy: netfilter: cannot read the current rules (not root?): "
                            "showing the ruleset for a namespace without them\n");
        if (text.len)
            fwrite(text.p, 1, text.len, stdout);
        rc = 0;
        goto out;
    }
    /* opened before anything changes: an audit trail that cannot be written stops the apply */
    FILE *af = audit ? fopen(audit, "w") : NULL;
    if (audit && !af) {
        fprintf(stderr, "awf-proxy: netfilter: --audit-file %s: %s\n", audit, strerror(errno));
        rc = 2;
        goto out;
    }
    if (awf_netfilter_commit(&plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "awf-proxy: netfilter: %s\n", err);
        if (af)
            fclose(af);
        goto out;
    }
    report(&plan, action);
    rc = 0;
    if (af && write_audit(af, &text) < 0) {
        fprintf(stderr, "awf-proxy: netfilter: cannot write --audit-file %s\n", audit);
        rc = 1; /* the rules are in place; only the record of them is missing */
    }
out:
    awf_netfilter_text_free(&text);
    awf_netfilter_plan_free(&plan);
    return rc;
}
