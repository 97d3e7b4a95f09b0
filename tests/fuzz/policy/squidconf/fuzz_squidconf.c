/* Fuzz target for the squid.conf reader (policy/squidconf.c) and what runs on its result: the
 * ACL matchers and access rules (acl.c, rules.c) and the YAML translation (squidyaml.c).
 *
 * Whatever loads must build; every built policy decides a fixed set of requests, answers the
 * log and parent questions, and prints. Checked properties (abort() on failure, so libFuzzer
 * reports them like a crash):
 *   - a verdict is one of the reasons squid.conf policies give, and an allow names its rule;
 *   - an error leaves a terminated message; a second squid.conf on one builder is refused;
 *   - awf_policy_print() (`check`) writes YAML that loads;
 *   - awf_policy_to_yaml() succeeds and what it writes loads and builds as a YAML policy. */

#include "common/error.h"
#include "policy/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Requests in the shapes AWF's rules tell apart: subdomains, regex wildcards, exact hosts, raw
 * IPv4 and IPv6 targets, odd but valid names, and invalid ones. */
static const struct {
    const char *host;
    uint16_t port;
    enum awf_traffic traffic;
    const char *method;
} reqs[] = {
    {"allowed.test", 443, AWF_TRAFFIC_TLS, NULL},
    {"API.Allowed.Test.", 80, AWF_TRAFFIC_HTTP, "GET"},
    {"evil.allowed.test", 443, AWF_TRAFFIC_TLS, "CONNECT"},
    {"api-v1.pattern.test", 8080, AWF_TRAFFIC_HTTP, "POST"},
    {"x.secure.test", 443, AWF_TRAFFIC_TLS, NULL},
    {"github.com", 22, AWF_TRAFFIC_TLS, NULL},
    {"a_b-c.example.com", 80, AWF_TRAFFIC_HTTP, "get"},
    {"127.0.0.2", 80, AWF_TRAFFIC_HTTP, NULL},
    {"10.1.2.3", 443, AWF_TRAFFIC_TLS, NULL},
    {"[2001:db8::1]", 443, AWF_TRAFFIC_TLS, NULL},
    {"::ffff:192.168.1.1", 80, AWF_TRAFFIC_HTTP, NULL},
    {"bad..name", 80, AWF_TRAFFIC_HTTP, NULL},
    {"", 443, AWF_TRAFFIC_TLS, NULL},
};

struct client {
    struct sockaddr_storage ss;
    const struct sockaddr *sa; /* NULL: unknown client */
};

/* c[0] unknown, then 127.0.0.1, 10.0.0.5 and ::ffff:192.168.1.1. */
static void clients(struct client c[4])
{
    memset(c, 0, 4 * sizeof *c);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&c[1].ss;
    v4->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &v4->sin_addr);
    struct sockaddr_in *v4b = (struct sockaddr_in *)&c[2].ss;
    v4b->sin_family = AF_INET;
    inet_pton(AF_INET, "10.0.0.5", &v4b->sin_addr);
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c[3].ss;
    v6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.168.1.1", &v6->sin6_addr);
    c[0].sa = NULL;
    for (int i = 1; i < 4; i++)
        c[i].sa = (const struct sockaddr *)&c[i].ss;
}

static void check_verdict(const struct awf_verdict *v)
{
    switch (v->reason) {
    case AWF_REASON_ALLOWED:
        if (!v->allow || !v->rule)
            abort();
        break;
    case AWF_REASON_BLOCKED:
        if (v->allow || !v->rule || v->rule->allow)
            abort();
        break;
    case AWF_REASON_NOT_ALLOWED:
    case AWF_REASON_RAW_IP:
    case AWF_REASON_INVALID_HOST:
        if (v->allow)
            abort();
        break;
    default:
        abort(); /* not a reason squid.conf policies give */
    }
    if (v->entry)
        abort(); /* squid.conf policies have no entries */
}

static void decide(const struct awf_policy *p, const struct awf_policy_req *rq)
{
    struct awf_verdict v;
    awf_policy_decide_req(p, rq, &v);
    check_verdict(&v);
    const struct awf_settings *s = awf_policy_settings(p);
    for (size_t i = 0; i <= s->n_logs; i++) /* one past the end too: false, no crash */
        if (!awf_policy_log_wanted(p, i, rq) && i < s->n_logs && s->logs[i].cond == 0)
            abort(); /* an unconditional output wants everything */
    if (awf_policy_via_parent(p, rq) && !s->parent.host)
        abort();
}

static void decide_all(const struct awf_policy *p, const uint8_t *data, size_t size)
{
    struct client c[4];
    clients(c);
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct awf_policy_req rq = {.host = reqs[i].host,
                                    .host_len = strlen(reqs[i].host),
                                    .port = reqs[i].port,
                                    .traffic = reqs[i].traffic,
                                    .client = c[i % 4].sa,
                                    .method = reqs[i].method};
        decide(p, &rq);
    }
    /* The input's last line (up to 80 bytes) as a host too: it reaches hosts the ACLs name. */
    size_t start = size;
    while (start > 0 && data[start - 1] != '\n' && size - start < 80)
        start--;
    struct awf_policy_req rq = {.host = (const char *)data + start,
                                .host_len = size - start,
                                .port = 443,
                                .traffic = AWF_TRAFFIC_TLS,
                                .client = c[1].sa};
    decide(p, &rq);
    rq.traffic = AWF_TRAFFIC_HTTP;
    rq.client = NULL;
    decide(p, &rq);
}

/* Loads YAML text as a policy; aborts, naming what, when it does not load and build. */
static void must_load(const char *what, const char *yaml, size_t len)
{
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    if (!b)
        return;
    if (policy_load_yaml(b, what, yaml, len, err, sizeof err) != 0) {
        fprintf(stderr, "%s does not load: %s\n%.*s", what, err, (int)len, yaml);
        abort();
    }
    struct awf_policy *q = awf_policy_build(b, err, sizeof err);
    if (!q) {
        fprintf(stderr, "%s does not build: %s\n%.*s", what, err, (int)len, yaml);
        abort();
    }
    awf_policy_unref(q);
    awf_policy_builder_destroy(b);
}

/* awf_policy_print() (`check`): YAML a later load accepts, the rules as comments. */
static void print(const struct awf_policy *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    awf_policy_print(p, f);
    fclose(f);
    must_load("<check>", buf, len);
    free(buf);
}

/* awf_policy_to_yaml() (`--to-policy`): a policy that loads back. */
static void to_yaml(const struct awf_policy *p)
{
    char *yaml = NULL, *warn = NULL;
    size_t ylen = 0, wlen = 0;
    FILE *out = open_memstream(&yaml, &ylen), *w = open_memstream(&warn, &wlen);
    int rc = out && w ? awf_policy_to_yaml(p, out, w) : -ENOMEM;
    if (out)
        fclose(out);
    if (w)
        fclose(w);
    if (rc < 0 && rc != -ENOMEM) {
        fprintf(stderr, "awf_policy_to_yaml: %d\n%s", rc, warn ? warn : "");
        abort();
    }
    if (rc >= 0)
        must_load("<to-policy>", yaml, ylen);
    free(yaml);
    free(warn);
}

/* glibc's regcomp() expands a repetition by copying its operand, so stacked repetitions take
 * memory exponential in their depth ("a+++++", "((a+)+)+", "(a{99}){99}"); Squid compiles
 * dstdom_regex the same way. squid.conf is trusted configuration, so this is a known limit
 * (tests/fuzz/policy/squidconf/README.md), not a finding to report again: such inputs are skipped.
 */
static bool regex_bomb(const uint8_t *d, size_t n)
{
    unsigned stacked = 0, intervals = 0;
    for (size_t i = 1; i < n; i++) {
        bool dup = d[i] == '+' || d[i] == '*' || d[i] == '?' || d[i] == '{';
        bool after = d[i - 1] == ')' || d[i - 1] == '+' || d[i - 1] == '*' || d[i - 1] == '?' ||
                     d[i - 1] == '}';
        intervals += d[i] == '{';
        if (dup && after && (d[i] == '{' || ++stacked > 4))
            return true;
    }
    return intervals > 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (regex_bomb(data, size))
        return 0;
    char err[AWF_POLICY_ERRLEN];
    struct awf_policy_builder *b = awf_policy_builder_create();
    if (!b)
        return 0;
    memset(err, 'x', sizeof err); /* so the check below sees whether a message was written */
    int rc = policy_load_squid_text(b, "<fuzz>", (const char *)data, size, err, sizeof err);
    if (rc == 0) {
        if (policy_load_squid_text(b, "<again>", "", 0, err, sizeof err) != AWF_E_USAGE)
            abort(); /* at most one squid.conf per builder */
        struct awf_policy *p = awf_policy_build(b, err, sizeof err);
        if (p) {
            if (!awf_policy_is_squid(p))
                abort();
            decide_all(p, data, size);
            print(p);
            to_yaml(p);
            awf_policy_unref(p);
        }
    } else if (memchr(err, '\0', sizeof err) == NULL) {
        abort(); /* the message must be terminated */
    }
    awf_policy_builder_destroy(b);
    return 0;
}
