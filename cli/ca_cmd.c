/* `ca new --days N --out DIR [--cn NAME]`: a CA for one firewall run, as AWF makes one for each
 * run with --ssl-bump. The key is written 0600 from the start and never over an existing one. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/options.h"
#include "tls/tls.h"

static const char ca_usage[] =
    "Usage: awf-proxy ca new --out DIR [--days N] [--cn NAME]\n"
    "Makes a CA for ssl-bump: DIR/ca.pem (the certificate clients must trust, mode 0644) and\n"
    "DIR/ca-key.pem (its P-256 key, mode 0600; an existing one is never overwritten).\n"
    "  --out DIR   where to write (created with mode 0700 if missing)\n"
    "  --days N    validity in days, 1-3650 (default 1: one firewall run)\n"
    "  --cn NAME   the CA's common name (default \"awf-proxy per-run CA\" and a random id)\n"
    "Exit codes: 0 written, 1 could not write, 2 usage.\n";

int cli_cmd_ca(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"days", required_argument, NULL, 'd'},
        {"cn", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(ca_usage, stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "new") != 0) {
        fprintf(stderr, "awf-proxy: ca: usage: awf-proxy ca new --out DIR [--days N]\n");
        return 2;
    }
    const char *out = NULL, *cn = NULL;
    unsigned long days = 1;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'c':
            cn = optarg;
            if (!*cn || strlen(cn) > 64) {
                fprintf(stderr, "awf-proxy: ca new: --cn: 1 to 64 characters\n");
                return 2;
            }
            break;
        case 'd':
            errno = 0;
            days = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || days < 1 || days > 3650 || optarg[0] == '-') {
                fprintf(stderr, "awf-proxy: ca new: --days \"%s\": want 1-3650\n", optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(ca_usage, stdout);
            return 0;
        default:
            return 2;
        }
    }
    if (!out || optind != argc) {
        fprintf(stderr, "awf-proxy: ca new: --out DIR is required (see awf-proxy ca --help)\n");
        return 2;
    }
    if (mkdir(out, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "awf-proxy: ca new: %s: %s\n", out, strerror(errno));
        return 1;
    }
    char err[600];
    struct awf_tls_ca *ca;
    if (awf_tls_ca_new((unsigned)days, cn, &ca, err, sizeof(err)) < 0) {
        fprintf(stderr, "awf-proxy: ca new: %s\n", err);
        return 1;
    }
    int rc = awf_tls_ca_write(ca, out, err, sizeof(err));
    awf_tls_ca_free(ca);
    if (rc < 0) {
        fprintf(stderr, "awf-proxy: ca new: %s\n", err);
        return 1;
    }
    printf("%s/ca.pem\n%s/ca-key.pem\n", out, out);
    return 0;
}
