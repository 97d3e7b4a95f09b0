/* `check`: validate a policy the way `run` would, without listening, and print it normalized. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "cli/json.h"
#include "cli/options.h"
#include "common/diag.h"
#include "log/log.h"

/* Log formats are compiled before anything is opened (check and run alike), so a bad one is
 * reported where it was given: "my.yml:7:15: log format: character 5: unterminated '{'". */
int cli_logformats_check(const struct awf_settings *s)
{
    for (size_t i = 0; i < s->n_logs; i++) {
        struct awf_log_format *f = NULL;
        char err[256] = "";
        if (awf_log_format_compile(s->logs[i].format, s->awf_version, &f, err, sizeof(err)) != 0) {
            if (s->logs[i].where && s->logs[i].where[0])
                awf_diag("%s: log format: %s", s->logs[i].where, err);
            else
                awf_diag("log output %s: log format: %s", s->logs[i].path, err);
            return -1;
        }
        awf_log_format_free(f);
    }
    return 0;
}

static const char usage[] =
    "Usage: awf-proxy check [OPTIONS] [--json]\n"
    "Validates the policy and prints it normalized. Exit 0 valid, 2 invalid.\n"
    "      --json          print one JSON object instead (README \"JSON output\"): ok, errors\n"
    "                      and warnings with file/line/col or flag, and a summary of the policy\n";

enum { OPT_JSON = 900 };

static void take_json(void *ctx, int val, const char *arg)
{
    (void)val;
    (void)arg;
    *(bool *)ctx = true;
}

static void json_strs(FILE *f, char *const *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        cli_json_str(f, v[i]);
    }
    fputc(']', f);
}

/* What scripts most often want to know without parsing YAML. */
static void json_summary(FILE *f, const struct awf_policy *p, const char *source)
{
    const struct awf_settings *s = awf_policy_settings(p);
    const struct awf_policy_entry *e;
    size_t n = awf_policy_entries(p, &e), n_allow = 0, n_block = 0;
    for (size_t i = 0; i < n; i++)
        e[i].block ? n_block++ : n_allow++;
    char *text = NULL;
    size_t len = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65] = "";
    FILE *m = open_memstream(&text, &len);
    if (m != NULL) {
        awf_policy_print(p, m);
        if (fclose(m) == 0 && EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) == 1)
            for (unsigned i = 0; i < mdlen && i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    fputs("{\"source\": ", f);
    cli_json_str(f, source);
    fprintf(f, ", \"squid_conf\": %s, \"sha256\": ", awf_policy_is_squid(p) ? "true" : "false");
    cli_json_str(f, hex);
    fprintf(f, ", \"allow\": %zu, \"block\": %zu, \"ports\": [80, 443", n_allow, n_block);
    for (size_t i = 0; i < s->n_ports; i++)
        if (s->ports[i].lo == s->ports[i].hi)
            fprintf(f, ", %u", (unsigned)s->ports[i].lo);
        else
            fprintf(f, ", \"%u-%u\"", (unsigned)s->ports[i].lo, (unsigned)s->ports[i].hi);
    fputs("], \"listen\": [", f);
    for (size_t i = 0; i < s->n_listen; i++) {
        fputs(i ? ", " : "", f);
        cli_json_str(f, s->listen[i].text);
    }
    fputs("], \"logs\": [", f);
    for (size_t i = 0; i < s->n_logs; i++) {
        fputs(i ? ", {\"format\": " : "{\"format\": ", f);
        cli_json_str(f, s->logs[i].format);
        fputs(", \"path\": ", f);
        cli_json_str(f, s->logs[i].path);
        fputc('}', f);
    }
    fputs("], \"dns_servers\": ", f);
    json_strs(f, s->dns.servers, s->dns.n_servers);
    fputs(", \"hosts_file\": ", f);
    cli_json_str(f, s->dns.hosts_file && s->dns.hosts_file[0] ? s->dns.hosts_file : NULL);
    fprintf(f, ", \"threads\": %u, \"admin\": ", s->threads);
    cli_json_str(f, s->admin.text);
    fprintf(f, ", \"ssl_bump\": %s, \"normalized\": ", s->ssl_bump.enabled ? "true" : "false");
    cli_json_str(f, text);
    fputc('}', f);
    free(text);
}

/* One object on stdout whatever happened (exit 0 or 2 still says which). */
static int check_json(const struct cli_policy_opts *o)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy *p = cli_policy_build_err(o, err, sizeof(err));
    if (p != NULL) {
        const struct awf_settings *s = awf_policy_settings(p);
        for (size_t i = 0; i < s->n_logs && !err[0]; i++) {
            struct awf_log_format *f = NULL;
            char why[256] = "";
            if (awf_log_format_compile(s->logs[i].format, s->awf_version, &f, why, sizeof(why)) !=
                0)
                snprintf(err, sizeof(err), "%s: log format: %s",
                         s->logs[i].where && s->logs[i].where[0] ? s->logs[i].where : "policy",
                         why);
            awf_log_format_free(f);
        }
    }
    bool ok = p != NULL && !err[0];
    printf("{\"ok\": %s, \"errors\": [", ok ? "true" : "false");
    if (!ok)
        cli_json_diag(stdout, err);
    fputs("], \"warnings\": [", stdout);
    const char *const *notes = NULL;
    size_t n = p ? awf_policy_notices(p, &notes) : 0;
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", stdout);
        cli_json_diag(stdout, notes[i]);
    }
    fputs("], \"policy\": ", stdout);
    if (ok)
        json_summary(stdout, p,
                     o->squid_conf    ? o->squid_conf
                     : o->policy_file ? o->policy_file
                     : o->have_lists  ? "flags"
                                      : "<default>");
    else
        fputs("null", stdout);
    fputs("}\n", stdout);
    awf_policy_unref(p);
    return ok ? 0 : 2;
}

int cli_cmd_check(int argc, char **argv)
{
    struct cli_policy_opts o = {0};
    bool json = false;
    int rc = 2, first;
    static const struct option json_opt[] = {{"json", no_argument, NULL, OPT_JSON},
                                             {NULL, 0, NULL, 0}};
    int r =
        cli_parse(argc, argv, &o, usage, &(struct cli_extra){json_opt, take_json, &json}, &first);
    if (r <= 0) {
        rc = r == 0 ? 0 : 2;
        goto out;
    }
    if (first < argc) {
        fprintf(stderr, "awf-proxy: check: unexpected argument \"%s\"\n", argv[first]);
        goto out;
    }
    if (json) {
        rc = check_json(&o);
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
