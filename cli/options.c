#include "cli/options.h"

#include <assert.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/diag.h"
#include "common/error.h"
#include "dns/dns.h"

/* Flags that map one-to-one onto a policy key: the policy module parses every value, so a flag
 * and the same setting in a file can never disagree on syntax. */
static const struct {
    const char *flag;
    const char *key;
} set_flags[] = {
    {"allow-ports", "ports"},
    {"dns-servers", "dns.servers"},
    {"listen", "listen"},
    {"hosts-file", "dns.hosts_file"},
    {"allow-ranges", "addresses.allow"},
    {"access-log", "logs"},
    {"connect-timeout", "timeouts.connect"},
    {"read-timeout", "timeouts.read_idle"},
    {"request-timeout", "timeouts.request_headers"},
    {"client-idle-timeout", "timeouts.client_idle"},
    {"upstream-idle-timeout", "timeouts.upstream_idle"},
    {"lifetime", "timeouts.lifetime"},
    {"client-hello-timeout", "timeouts.client_hello"},
    {"dns-timeout", "timeouts.dns"},
    {"shutdown-drain", "timeouts.shutdown_drain"},
    {"max-connections", "limits.max_connections"},
    {"max-tunnels", "limits.max_tunnels"},
    {"threads", "threads"},
    {"dns-listen", "dns.forwarder.listen"},
    {"admin", "admin"},
    {"pid-file", "pid_file"},
    {"ca-cert", "ssl_bump.ca_cert"},
    {"ca-key", "ssl_bump.ca_key"},
    {"allow-urls", "allow_urls"},
    {"ca-file", "ssl_bump.upstream_ca_file"},
    {"ssl-bump-splice", "ssl_bump.splice"},
};
#define N_SET_FLAGS (sizeof(set_flags) / sizeof(set_flags[0]))

enum {
    OPT_ALLOW = CLI_POLICY_OPT_BASE,
    OPT_ALLOW_FILE,
    OPT_BLOCK,
    OPT_BLOCK_FILE,
    OPT_SETKV,
    OPT_SQUID_CONF,
    OPT_SSL_BUMP,
    OPT_SET_FIRST, /* OPT_SET_FIRST + i is set_flags[i] */
};

/* The long options of the shared set, terminated; cli_parse adds --help and a subcommand's. */
static const struct option policy_longopts[] = {
    {"policy", required_argument, NULL, 'p'},
    {"allow-domains", required_argument, NULL, OPT_ALLOW},
    {"allow-domains-file", required_argument, NULL, OPT_ALLOW_FILE},
    {"block-domains", required_argument, NULL, OPT_BLOCK},
    {"block-domains-file", required_argument, NULL, OPT_BLOCK_FILE},
    {"set", required_argument, NULL, OPT_SETKV},
    {"squid-conf", required_argument, NULL, OPT_SQUID_CONF},
    {"allow-ports", required_argument, NULL, OPT_SET_FIRST + 0},
    {"dns-servers", required_argument, NULL, OPT_SET_FIRST + 1},
    {"listen", required_argument, NULL, OPT_SET_FIRST + 2},
    {"hosts-file", required_argument, NULL, OPT_SET_FIRST + 3},
    {"allow-ranges", required_argument, NULL, OPT_SET_FIRST + 4},
    {"access-log", required_argument, NULL, OPT_SET_FIRST + 5},
    {"connect-timeout", required_argument, NULL, OPT_SET_FIRST + 6},
    {"read-timeout", required_argument, NULL, OPT_SET_FIRST + 7},
    {"request-timeout", required_argument, NULL, OPT_SET_FIRST + 8},
    {"client-idle-timeout", required_argument, NULL, OPT_SET_FIRST + 9},
    {"upstream-idle-timeout", required_argument, NULL, OPT_SET_FIRST + 10},
    {"lifetime", required_argument, NULL, OPT_SET_FIRST + 11},
    {"client-hello-timeout", required_argument, NULL, OPT_SET_FIRST + 12},
    {"dns-timeout", required_argument, NULL, OPT_SET_FIRST + 13},
    {"shutdown-drain", required_argument, NULL, OPT_SET_FIRST + 14},
    {"max-connections", required_argument, NULL, OPT_SET_FIRST + 15},
    {"max-tunnels", required_argument, NULL, OPT_SET_FIRST + 16},
    {"threads", required_argument, NULL, OPT_SET_FIRST + 17},
    {"dns-listen", required_argument, NULL, OPT_SET_FIRST + 18},
    {"admin", required_argument, NULL, OPT_SET_FIRST + 19},
    {"pid-file", required_argument, NULL, OPT_SET_FIRST + 20},
    {"ca-cert", required_argument, NULL, OPT_SET_FIRST + 21},
    {"ca-key", required_argument, NULL, OPT_SET_FIRST + 22},
    {"allow-urls", required_argument, NULL, OPT_SET_FIRST + 23},
    {"ca-file", required_argument, NULL, OPT_SET_FIRST + 24},
    {"ssl-bump-splice", required_argument, NULL, OPT_SET_FIRST + 25},
    {"ssl-bump", no_argument, NULL, OPT_SSL_BUMP},
    {NULL, 0, NULL, 0},
};

const char cli_policy_help[] =
    "Policy options (merged into one policy; flags override the file):\n"
    "  -p, --policy FILE             YAML policy, version 1 (see README). Without it,\n"
    "                                --squid-conf and any domain entry from flags\n"
    "                                (--allow-domains*, --block-domains*, --set allow=/block=)\n"
    "                                the embedded default policy is used (GitHub's domains on\n"
    "                                127.0.0.1:3128); --allow-ports, --allow-ranges and the\n"
    "                                other flags add to it\n"
    "      --squid-conf FILE         run from a squid.conf of the subset AWF generates\n"
    "                                (policy/squidconf.md); not with --policy or lists\n"
    "      --allow-domains LIST      allow entries, comma separated (AWF's form)\n"
    "      --allow-domains-file FILE one entry a line or comma separated, # comments\n"
    "      --block-domains LIST      block entries (win over allow entries)\n"
    "      --block-domains-file FILE\n"
    "      --allow-ports LIST        extra destination ports: 8080,9000-9100\n"
    "      --dns-servers LIST        127.0.0.1:5353,[::1]:53 (default: resolv.conf)\n"
    "      --hosts-file FILE         answered before DNS (default /etc/hosts; \"\" for none)\n"
    "      --allow-ranges CIDRS      addresses allowed past the private-range check\n"
    "      --listen ADDR:PORT[=ORIG] repeatable; [::]:3128 for IPv6; port 0 picks one;\n"
    "                                =ORIG: DNAT'd traffic here was for port ORIG\n"
    "      --access-log [FORMAT:]PATH  repeatable; PATH - is stdout; FORMAT is\n"
    "                                firewall_detailed (default), audit_jsonl, squid,\n"
    "                                or logformat=<Squid %codes>\n"
    "      --connect-timeout D  --read-timeout D  --request-timeout D\n"
    "      --client-idle-timeout D  --upstream-idle-timeout D  --lifetime D\n"
    "      --client-hello-timeout D  --dns-timeout D  --shutdown-drain D\n"
    "                                durations such as 500ms, 30s, 2m, 8h\n"
    "      --max-connections N  --max-tunnels N  --threads N\n"
    "      --dns-listen ADDR:PORT    run the filtering DNS forwarder there (repeatable)\n"
    "      --admin ADDR:PORT         serve /metrics, /healthz and /status there (off by\n"
    "                                default; never on a proxy listener's address)\n"
    "      --pid-file FILE           write the pid there once listening (for logrotate's\n"
    "                                kill -USR1), removed at exit\n"
    "      --ssl-bump                inspect HTTPS: bump allowed TLS with a minted certificate\n"
    "                                and decide each request by URL (README: HTTPS inspection)\n"
    "      --ca-cert FILE --ca-key FILE  the CA it mints from (awf-proxy ca new makes one)\n"
    "      --allow-urls LIST         URL patterns, comma separated: https://github.com/org/*\n"
    "      --ca-file FILE            extra CAs trusted for upstreams (besides the system's)\n"
    "      --ssl-bump-splice LIST    hosts never bumped (pinned clients), allow-list syntax\n"
    "      --set KEY=VALUE           any policy setting by its YAML key, e.g.\n"
    "                                --set logs.strip_query=false\n";

static int push(struct cli_policy_opts *o, struct cli_item it)
{
    if (o->n_items == o->cap_items) {
        size_t cap = o->cap_items ? o->cap_items * 2 : 16;
        struct cli_item *n = realloc(o->items, cap * sizeof(*n));
        if (n == NULL) {
            awf_diag("out of memory");
            return -1;
        }
        o->items = n;
        o->cap_items = cap;
    }
    o->items[o->n_items++] = it;
    return 1;
}

/* Handles one getopt_long result if it is a policy option. Returns 1 if handled, 0 if not a
 * policy option, -1 on error (message printed). */
static int policy_opt(struct cli_policy_opts *o, int c, const char *arg)
{
    switch (c) {
    case 'p':
        if (o->policy_file != NULL) {
            awf_diag("--policy: given twice");
            return -1;
        }
        o->policy_file = arg;
        return 1;
    case OPT_SQUID_CONF:
        if (o->squid_conf != NULL) {
            awf_diag("--squid-conf: given twice");
            return -1;
        }
        o->squid_conf = arg;
        return 1;
    case OPT_ALLOW:
    case OPT_BLOCK:
        o->have_lists = true;
        return push(
            o, (struct cli_item){.kind = CLI_ITEM_LIST,
                                 .block = c == OPT_BLOCK,
                                 .flag = c == OPT_BLOCK ? "--block-domains" : "--allow-domains",
                                 .value = arg});
    case OPT_ALLOW_FILE:
    case OPT_BLOCK_FILE:
        o->have_lists = true;
        return push(o, (struct cli_item){.kind = CLI_ITEM_LIST_FILE,
                                         .block = c == OPT_BLOCK_FILE,
                                         .flag = c == OPT_BLOCK_FILE ? "--block-domains-file"
                                                                     : "--allow-domains-file",
                                         .value = arg});
    case OPT_SSL_BUMP:
        return push(o, (struct cli_item){.kind = CLI_ITEM_SET,
                                         .flag = "--ssl-bump",
                                         .key = "ssl_bump.enabled",
                                         .value = "true"});
    case OPT_SETKV: {
        const char *eq = strchr(arg, '=');
        if (eq == NULL || eq == arg) {
            awf_diag("--set: expected KEY=VALUE, got \"%s\"", arg);
            return -1;
        }
        char *copy = strdup(arg); /* owned by the item; freed in cli_policy_opts_free */
        if (copy == NULL)
            return -1;
        copy[eq - arg] = '\0';
        /* Entries from --set merge as --allow-domains/--block-domains do: they replace the
         * embedded default, never add to it. */
        if (strcmp(copy, "allow") == 0 || strcmp(copy, "block") == 0)
            o->have_lists = true;
        return push(o, (struct cli_item){.kind = CLI_ITEM_SET,
                                         .flag = "--set",
                                         .key = copy,
                                         .value = copy + (eq - arg) + 1,
                                         .owned = copy});
    }
    default:
        if (c >= OPT_SET_FIRST && c < OPT_SET_FIRST + (int)N_SET_FLAGS) {
            size_t i = (size_t)(c - OPT_SET_FIRST);
            return push(o, (struct cli_item){.kind = CLI_ITEM_SET,
                                             .flag = set_flags[i].flag,
                                             .key = set_flags[i].key,
                                             .value = arg});
        }
        return 0;
    }
}

struct awf_policy *cli_policy_build(const struct cli_policy_opts *o)
{
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy *p = cli_policy_build_err(o, err, sizeof(err));
    if (p == NULL)
        awf_diag("%s", err);
    return p;
}

struct awf_policy *cli_policy_build_err(const struct cli_policy_opts *o, char *errbuf,
                                        size_t errlen)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy *p = NULL;
    struct awf_policy_builder *b = awf_policy_builder_create();
    if (b == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (o->squid_conf != NULL && o->policy_file != NULL) {
        snprintf(err, sizeof(err), "--squid-conf and --policy: give one of them");
        rc = AWF_E_USAGE;
    } else if (o->squid_conf != NULL)
        rc = awf_policy_load_squid_conf(b, o->squid_conf, err, sizeof(err));
    else if (o->policy_file != NULL)
        rc = awf_policy_load_file(b, o->policy_file, err, sizeof(err));
    else if (!o->have_lists)
        rc = awf_policy_load_default(b, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < o->n_items; i++) {
        const struct cli_item *it = &o->items[i];
        char flag[64];
        switch (it->kind) {
        case CLI_ITEM_LIST:
            rc = awf_policy_add_list(b, it->block, it->value, it->flag, err, sizeof(err));
            break;
        case CLI_ITEM_LIST_FILE:
            rc = awf_policy_add_list_file(b, it->block, it->value, err, sizeof(err));
            break;
        case CLI_ITEM_SET:
            if (it->owned == NULL)
                snprintf(flag, sizeof(flag), "--%s", it->flag);
            else
                snprintf(flag, sizeof(flag), "--set %s", it->key);
            rc = awf_policy_set(b, it->key, it->value, flag, err, sizeof(err));
            break;
        }
    }
    if (rc == 0)
        p = awf_policy_build(b, err, sizeof(err));
    /* The hosts file is read by each loop's resolver at start and on SIGHUP: one that cannot
     * be read fails here, naming it, for check, run and a reload alike. */
    const char *hosts = p ? awf_policy_settings(p)->dns.hosts_file : NULL;
    int hrc = hosts && hosts[0] ? awf_dns_hosts_check(hosts) : 0;
    if (hrc < 0) {
        snprintf(err, sizeof(err), "hosts file %s: %s", hosts, awf_strerror(hrc));
        awf_policy_unref(p);
        p = NULL;
    }
    if (p == NULL)
        snprintf(errbuf, errlen, "%s", err[0] ? err : awf_strerror(rc));
    awf_policy_builder_destroy(b);
    return p;
}

void cli_policy_notices(const struct awf_policy *p)
{
    const char *const *n;
    size_t count = awf_policy_notices(p, &n);
    for (size_t i = 0; i < count; i++)
        awf_diag("%s", n[i]);
}

void cli_policy_opts_free(struct cli_policy_opts *o)
{
    for (size_t i = 0; i < o->n_items; i++)
        free(o->items[i].owned);
    free(o->items);
    o->items = NULL;
    o->n_items = o->cap_items = 0;
}

/* Room for a subcommand's own options beside the policy ones. */
#define CLI_EXTRA_MAX 8

int cli_parse(int argc, char **argv, struct cli_policy_opts *o, const char *usage,
              const struct cli_extra *extra, int *first_arg)
{
    struct option
        longopts[sizeof(policy_longopts) / sizeof(policy_longopts[0]) + CLI_EXTRA_MAX + 1];
    size_t n = 0;
    for (const struct option *s = policy_longopts; s->name; s++)
        longopts[n++] = *s;
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    size_t first_extra = n;
    for (const struct option *s = extra ? extra->opts : NULL; s && s->name; s++) {
        assert(n < first_extra + CLI_EXTRA_MAX);
        longopts[n++] = *s;
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            printf("%s\n%s", usage, cli_policy_help);
            return 0;
        }
        bool taken = false;
        for (size_t i = first_extra; i < n && !taken; i++)
            if (longopts[i].val == c) {
                extra->take(extra->ctx, c, optarg);
                taken = true;
            }
        if (!taken && policy_opt(o, c, optarg) <= 0)
            return -1;
    }
    *first_arg = optind;
    return 1;
}
