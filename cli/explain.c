/* `explain`: one decision, with the rule behind it. Also how tests drive the matcher. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"

struct target {
    const char *host;
    size_t host_len;
    uint16_t port;
    enum awf_traffic traffic;
};

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Splits "host[:port]" or "[v6][:port]"; port_required for the CONNECT form. */
static int parse_authority(const char *a, size_t n, bool port_required, struct target *t)
{
    const char *at = memchr(a, '@', n); /* userinfo is not part of the decision */
    if (at != NULL) {
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    const char *colon;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (close == NULL)
            return -1;
        t->host = a + 1;
        t->host_len = (size_t)(close - a - 1);
        colon = close + 1 < a + n ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return -1;
    } else {
        colon = memchr(a, ':', n);
        t->host = a;
        t->host_len = colon ? (size_t)(colon - a) : n;
    }
    if (t->host_len == 0)
        return -1;
    if (colon == NULL)
        return port_required ? -1 : 0;
    return parse_port(colon + 1, (size_t)(a + n - colon - 1), &t->port);
}

static int parse_target(const char *s, struct target *t)
{
    size_t skip = 0;
    bool url = true;
    if (strncasecmp(s, "http://", 7) == 0) {
        skip = 7;
        t->traffic = AWF_TRAFFIC_HTTP;
        t->port = 80;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        skip = 8;
        t->traffic = AWF_TRAFFIC_TLS;
        t->port = 443;
    } else {
        url = false;
        t->traffic = AWF_TRAFFIC_TLS;
    }
    const char *a = s + skip;
    size_t n = url ? strcspn(a, "/?#") : strlen(a);
    return parse_authority(a, n, !url, t);
}

static const char *why(const struct awf_verdict *v, enum awf_traffic traffic)
{
    switch (v->reason) {
    case AWF_REASON_ALLOWED:
        return "the host matches an allow entry for this kind of traffic";
    case AWF_REASON_ALLOWED_IP:
        return "the target is an IP address that the allow list names";
    case AWF_REASON_BLOCKED:
        return "the host matches a block entry, and the block list wins";
    case AWF_REASON_NOT_ALLOWED:
        return "no allow entry matches the host";
    case AWF_REASON_WRONG_SCOPE:
        return traffic == AWF_TRAFFIC_HTTP
                   ? "an entry matches the host but applies to https:// (CONNECT/TLS) only"
                   : "an entry matches the host but applies to http:// (plain HTTP) only";
    case AWF_REASON_EMPTY_ALLOW:
        return "the allow list is empty, so everything is denied";
    case AWF_REASON_RAW_IP:
        return "the target is a raw IP address that the allow list does not name";
    case AWF_REASON_PORT:
        return "the destination port is not 80, 443 or a port the policy adds";
    case AWF_REASON_INVALID_HOST:
        return "the host is not a valid host name";
    }
    return "";
}

int cli_cmd_explain(int argc, char **argv)
{
    struct cli_policy_opts o = {0};
    int rc = 2, first;
    int r = cli_parse(argc, argv, &o,
                      "Usage: awf-proxy explain [OPTIONS] TARGET\n"
                      "TARGET: http://host[:port]/path, https://host[:port]/path or host:port.\n"
                      "Prints allow or deny, the reason, the deciding rule and why.\n"
                      "Exit 0 allowed, 1 denied, 2 error.\n",
                      &first);
    if (r <= 0) {
        rc = r == 0 ? 0 : 2;
        goto out;
    }
    if (first != argc - 1) {
        fprintf(stderr, "awf-proxy: explain: expected exactly one TARGET (see --help)\n");
        goto out;
    }
    struct target t = {0};
    if (parse_target(argv[first], &t) != 0) {
        fprintf(stderr,
                "awf-proxy: explain: bad TARGET \"%s\": expected http://host[:port]/path, "
                "https://host[:port]/path or host:port\n",
                argv[first]);
        goto out;
    }
    struct awf_policy *p = cli_policy_build(&o);
    if (p == NULL)
        goto out;
    struct awf_verdict v;
    awf_policy_decide(p, t.host, t.host_len, t.port, t.traffic, &v);
    printf("%s\nreason: %s\n", v.allow ? "allow" : "deny", awf_reason_name(v.reason));
    if (v.rule != NULL) /* squid.conf: the deciding http_access rule (or the last one) */
        printf("rule: http_access %s (%s:%u)\n", v.rule->text, v.rule->origin.source,
               v.rule->origin.line);
    else if (v.entry == NULL)
        printf("rule: none\n");
    else if (v.entry->origin.line > 0)
        printf("rule: %s (%s:%u:%u)\n", v.entry->text, v.entry->origin.source, v.entry->origin.line,
               v.entry->origin.col);
    else
        printf("rule: %s (%s)\n", v.entry->text, v.entry->origin.source);
    if (awf_policy_is_squid(p) && v.reason != AWF_REASON_RAW_IP &&
        v.reason != AWF_REASON_INVALID_HOST)
        printf("why: %s\n", v.rule == NULL ? "the squid.conf has no http_access rules"
                            : (v.reason == AWF_REASON_ALLOWED) == v.rule->allow
                                ? "the first http_access rule whose ACLs all match decides"
                                : "no rule matches: the opposite of the last rule applies");
    else
        printf("why: %s\n", why(&v, t.traffic));
    rc = v.allow ? 0 : 1;
    awf_policy_unref(p);
out:
    cli_policy_opts_free(&o);
    return rc;
}
