/* `explain`: what the proxy would do with one request, and why. It decides as `run` does: the
 * policy on the name (client, method and URL included), then, unless --no-resolve, the name
 * resolved as the proxy resolves it (hosts file, then DNS), a squid.conf decision that waits on
 * the addresses (dst ACLs), and the private-address check on every address. Also how tests
 * drive the matcher. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/json.h"
#include "cli/options.h"
#include "common/error.h"
#include "dns/dns.h"

struct target {
    const char *host;
    size_t host_len;
    uint16_t port;
    enum awf_traffic traffic;
    const char *path; /* http:// and https:// targets: from the first '/' or '?' (may be "") */
    size_t path_len;
    bool url; /* given as a URL (else host:port, a CONNECT) */
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
    t->url = url;
    if (url) {
        t->path = a + n;
        t->path_len = a[n] == '#' ? 0 : strcspn(a + n, "#");
    }
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

/* ---- resolving as the proxy does ---- */

struct lookup {
    bool done;
    int status;
    struct awf_dns_addrs addrs;
};

static void on_resolved(void *arg, int status, const struct awf_dns_addrs *addrs)
{
    struct lookup *l = arg;
    l->done = true;
    l->status = status;
    if (addrs)
        l->addrs = *addrs;
}

/* The proxy's resolver on a loop of its own, with the policy's DNS settings: the hosts file
 * first, then the servers. A blocking wait is fine in a one-shot command. */
static int resolve(const struct awf_settings *s, const char *name, struct lookup *l)
{
    uv_loop_t loop;
    struct awf_dns *dns = NULL;
    struct awf_dns_req *req = NULL;
    struct awf_dns_config cfg;
    awf_dns_config_from_settings(s, &cfg);
    int rc = uv_loop_init(&loop);
    if (rc < 0)
        return rc;
    rc = awf_dns_create(&loop, &cfg, &dns);
    if (rc == 0)
        rc = awf_dns_resolve(dns, name, on_resolved, l, &req);
    while (rc == 0 && !l->done)
        uv_run(&loop, UV_RUN_ONCE);
    if (dns)
        awf_dns_destroy(dns);
    uv_run(&loop, UV_RUN_DEFAULT); /* the resolver's handles close */
    uv_loop_close(&loop);
    return rc;
}

static const char *addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
    return buf;
}

static int parse_client(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

/* ---- printing ---- */

static void print_rule(const struct awf_verdict *v)
{
    if (v->rule != NULL) /* squid.conf: the deciding http_access rule (or the last one) */
        printf("rule: http_access %s (%s:%u)\n", v->rule->text, v->rule->origin.source,
               v->rule->origin.line);
    else if (v->entry == NULL)
        printf("rule: none\n");
    else if (v->entry->origin.line > 0)
        printf("rule: %s (%s:%u:%u)\n", v->entry->text, v->entry->origin.source,
               v->entry->origin.line, v->entry->origin.col);
    else
        printf("rule: %s (%s)\n", v->entry->text, v->entry->origin.source);
}

static const char *why_text(const struct awf_policy *p, const struct awf_verdict *v,
                            enum awf_traffic traffic)
{
    if (awf_policy_is_squid(p) && v->reason != AWF_REASON_RAW_IP &&
        v->reason != AWF_REASON_INVALID_HOST)
        return v->rule == NULL ? "the squid.conf has no http_access rules"
               : (v->reason == AWF_REASON_ALLOWED) == v->rule->allow
                   ? "the first http_access rule whose ACLs all match decides"
                   : "no rule matches: the opposite of the last rule applies";
    return why(v, traffic);
}

/* What explain found, printed as text or as JSON. */
struct report {
    const char *decision, *reason, *why;
    const struct awf_verdict *v;
    char via[300];              /* the parent proxy, "" when not through one */
    const struct lookup *addrs; /* NULL: none to show */
    const char *addrs_note;     /* "not resolved (--no-resolve)"...; NULL */
    const char *stricter[4];
    size_t n_stricter;
};

static const char usage[] =
    "Usage: awf-proxy explain [OPTIONS] TARGET\n"
    "TARGET: http://host[:port]/path, https://host[:port]/path or host:port (a CONNECT).\n"
    "Prints what the proxy would do: allow or deny, the reason, the deciding rule and why; then\n"
    "the addresses the name resolves to (the hosts file, then DNS, as the proxy resolves) and\n"
    "whether each may be dialled, and where awf-proxy is stricter than Squid.\n"
    "      --client ADDR   the client's address, for squid.conf src ACLs (default: any client\n"
    "                      the config trusts)\n"
    "      --method M      the request method, for squid.conf method ACLs (default: GET for\n"
    "                      http:// targets, CONNECT otherwise)\n"
    "      --no-resolve    decide on the name only: no lookup, no address check (dst ACLs\n"
    "                      then match raw IP targets only)\n"
    "      --json          print one JSON object instead (README \"JSON output\"): decision,\n"
    "                      reason, rule with file/line/col or flag, why, addresses, notes\n"
    "Exit 0 allowed, 1 denied (by the policy, an address, or a failed lookup), 2 error.\n";

enum { OPT_CLIENT = 900, OPT_METHOD, OPT_NO_RESOLVE, OPT_JSON };

struct xopts {
    const char *client, *method;
    bool no_resolve, json;
};

static void take_xopt(void *ctx, int val, const char *arg)
{
    struct xopts *x = ctx;
    switch (val) {
    case OPT_CLIENT:
        x->client = arg;
        break;
    case OPT_METHOD:
        x->method = arg;
        break;
    case OPT_NO_RESOLVE:
        x->no_resolve = true;
        break;
    case OPT_JSON:
        x->json = true;
        break;
    }
}

static const struct option xopts_long[] = {
    {"client", required_argument, NULL, OPT_CLIENT},
    {"method", required_argument, NULL, OPT_METHOD},
    {"no-resolve", no_argument, NULL, OPT_NO_RESOLVE},
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0},
};

static bool is_tls(const struct target *t)
{
    return t->traffic == AWF_TRAFFIC_TLS;
}

/* After the policy allowed: whether at least one address may be dialled, as the proxy checks
 * them before dialling; *deny_why names a denied range, *metadata says one was link-local or
 * loopback. */
static bool addrs_ok(const struct awf_policy *p, const struct lookup *l, const char **deny_why,
                     bool *metadata)
{
    bool any = false;
    enum awf_addr_origin o = l->addrs.from_hosts ? AWF_ADDR_HOSTS : AWF_ADDR_DNS;
    for (size_t i = 0; i < l->addrs.n; i++) {
        const char *w = NULL;
        if (awf_policy_addr_check(p, (const struct sockaddr *)&l->addrs.addr[i], o, &w)) {
            any = true;
        } else {
            *deny_why = w;
            if (w && (strstr(w, "link-local") || strstr(w, "loopback")))
                *metadata = true;
        }
    }
    return any;
}

/* One address: whether it may be dialled, the range that denies it, and a note when a range
 * the proxy treats as special is dialled anyway. */
struct addr_view {
    char text[INET6_ADDRSTRLEN];
    bool ok;
    const char *denied, *note;
};

static void view_addr(const struct awf_policy *p, const struct lookup *l, size_t i,
                      struct addr_view *a)
{
    enum awf_addr_origin o = l->addrs.from_hosts ? AWF_ADDR_HOSTS : AWF_ADDR_DNS;
    const struct sockaddr *sa = (const struct sockaddr *)&l->addrs.addr[i];
    const char *w = NULL;
    addr_text(&l->addrs.addr[i], a->text, sizeof a->text);
    a->ok = awf_policy_addr_check(p, sa, o, &w);
    bool special = !awf_policy_addr_check(NULL, sa, AWF_ADDR_DNS, NULL);
    a->denied = a->ok ? NULL : (w ? w : "address denied");
    a->note = !a->ok || !special ? NULL
              : l->addrs.from_hosts && awf_policy_addr_check(NULL, sa, AWF_ADDR_HOSTS, NULL)
                  ? "a private-use range the proxy's own hosts file gives"
                  : "a range the policy opens";
}

/* The lines tests and scripts read first: verdict, reason, rule, why; then the addresses. */
static void print_text(const struct awf_policy *p, const struct report *r)
{
    printf("%s\nreason: %s\n", r->decision, r->reason);
    print_rule(r->v);
    printf("why: %s\n", r->why);
    if (r->via[0])
        printf("via: the parent proxy %s (it resolves the name; no address check here)\n", r->via);
    for (size_t i = 0; r->addrs != NULL && i < r->addrs->addrs.n; i++) {
        struct addr_view a;
        view_addr(p, r->addrs, i, &a);
        printf("address: %s (%s): %s%s%s%s%s\n", a.text,
               r->addrs->addrs.from_hosts ? "hosts file" : "DNS",
               a.ok ? "may be dialled" : "denied: ", a.ok ? "" : a.denied, a.note ? " (" : "",
               a.note ? a.note : "", a.note ? ")" : "");
    }
    if (r->addrs_note)
        printf("addresses: %s\n", r->addrs_note);
    for (size_t i = 0; i < r->n_stricter; i++)
        printf("stricter than Squid: %s\n", r->stricter[i]);
}

static void json_origin(const char *text, const struct awf_origin *o, bool col)
{
    fputs("{\"text\": ", stdout);
    cli_json_str(stdout, text);
    fputs(", \"file\": ", stdout);
    cli_json_str(stdout, o->line ? o->source : NULL);
    if (o->line)
        printf(", \"line\": %u, \"col\": ", o->line);
    else
        fputs(", \"line\": null, \"col\": ", stdout);
    if (col && o->line && o->col)
        printf("%u", o->col);
    else
        fputs("null", stdout);
    fputs(", \"flag\": ", stdout);
    cli_json_str(stdout, o->line ? NULL : o->source);
    fputc('}', stdout);
}

static void print_json(const struct awf_policy *p, const struct report *r, const char *target,
                       const char *host, const struct target *t)
{
    fputs("{\"target\": ", stdout);
    cli_json_str(stdout, target);
    fputs(", \"host\": ", stdout);
    cli_json_str(stdout, host);
    printf(", \"port\": %u, \"traffic\": \"%s\", \"connect\": %s, \"decision\": \"%s\", "
           "\"reason\": \"%s\", \"rule\": ",
           (unsigned)t->port, is_tls(t) ? "tls" : "http", t->url ? "false" : "true", r->decision,
           r->reason);
    if (r->v->rule != NULL) {
        char text[AWF_POLICY_ERRLEN];
        snprintf(text, sizeof text, "http_access %s", r->v->rule->text);
        json_origin(text, &r->v->rule->origin, false);
    } else if (r->v->entry != NULL) {
        json_origin(r->v->entry->text, &r->v->entry->origin, true);
    } else {
        fputs("null", stdout);
    }
    fputs(", \"why\": ", stdout);
    cli_json_str(stdout, r->why);
    fputs(", \"via_parent\": ", stdout);
    cli_json_str(stdout, r->via[0] ? r->via : NULL);
    printf(", \"resolved\": %s, \"addresses\": [", r->addrs ? "true" : "false");
    for (size_t i = 0; r->addrs != NULL && i < r->addrs->addrs.n; i++) {
        struct addr_view a;
        view_addr(p, r->addrs, i, &a);
        printf(
            "%s{\"address\": \"%s\", \"from\": \"%s\", \"dial\": %s, \"denied\": ", i ? ", " : "",
            a.text, r->addrs->addrs.from_hosts ? "hosts_file" : "dns", a.ok ? "true" : "false");
        cli_json_str(stdout, a.denied);
        fputs(", \"note\": ", stdout);
        cli_json_str(stdout, a.note);
        fputc('}', stdout);
    }
    fputs("], \"addresses_note\": ", stdout);
    cli_json_str(stdout, r->addrs_note);
    fputs(", \"stricter_than_squid\": [", stdout);
    for (size_t i = 0; i < r->n_stricter; i++) {
        fputs(i ? ", " : "", stdout);
        cli_json_str(stdout, r->stricter[i]);
    }
    fputs("]}\n", stdout);
}

int cli_cmd_explain(int argc, char **argv)
{
    struct cli_policy_opts o = {0};
    struct xopts x = {0};
    int rc = 2, first;
    int r =
        cli_parse(argc, argv, &o, usage, &(struct cli_extra){xopts_long, take_xopt, &x}, &first);
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
    struct sockaddr_storage client;
    if (x.client && parse_client(x.client, &client) != 0) {
        fprintf(stderr, "awf-proxy: explain: --client \"%s\": not an IPv4 or IPv6 address\n",
                x.client);
        goto out;
    }
    if (x.method &&
        (!*x.method || strspn(x.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != strlen(x.method))) {
        fprintf(stderr, "awf-proxy: explain: --method \"%s\": want an upper-case method\n",
                x.method);
        goto out;
    }
    struct awf_policy *p = cli_policy_build(&o);
    if (p == NULL)
        goto out;
    const struct awf_settings *s = awf_policy_settings(p);
    char host[AWF_POLICY_ERRLEN];
    snprintf(host, sizeof host, "%.*s", (int)t.host_len, t.host);
    struct awf_policy_req rq = {.host = t.host,
                                .host_len = t.host_len,
                                .port = t.port,
                                .traffic = t.traffic,
                                .client = x.client ? (const struct sockaddr *)&client : NULL,
                                .method = x.method};
    char *url = NULL; /* owned here */
    if (t.url && awf_policy_wants_url(p)) {
        size_t cap = t.host_len + t.path_len + 32;
        int n = (url = malloc(cap))
                    ? awf_policy_request_url(url, cap, is_tls(&t) ? "https" : "http", t.host,
                                             t.host_len, t.port, t.path, t.path_len)
                    : -1;
        /* https:// targets are CONNECTs (host:port) until a bumped request is decided */
        if (n > 0 && !is_tls(&t)) {
            rq.url = url;
            rq.url_len = (size_t)n;
        }
    }
    rq.addrs_known = x.no_resolve; /* --no-resolve: dst ACLs match raw IP targets only */
    struct awf_verdict v;
    awf_policy_decide_req(p, &rq, &v);
    struct lookup l = {0};
    bool resolved = false;
    if (v.need_addrs || (v.allow && !x.no_resolve)) {
        /* Through the parent the proxy resolves only for a decision that needs it. */
        int e = resolve(s, host, &l);
        if (e < 0) {
            fprintf(stderr, "awf-proxy: explain: cannot resolve: %s\n", awf_strerror(e));
            awf_policy_unref(p);
            free(url);
            goto out;
        }
        resolved = true;
        if (v.need_addrs) {
            rq.addrs = l.addrs.addr;
            rq.addr_size = sizeof l.addrs.addr[0];
            rq.n_addrs = l.status == 0 ? l.addrs.n : 0;
            rq.addrs_known = true;
            awf_policy_decide_req(p, &rq, &v);
        }
    }
    bool via_parent = v.allow && awf_policy_via_parent(p, &rq);
    const char *deny_why = NULL;
    bool dns_failed = resolved && l.status != 0 && v.allow && !via_parent;
    bool metadata = false, addr_ok = true;
    struct report rp = {.v = &v};
    if (dns_failed) {
        rp.decision = "deny";
        rp.reason = "dns_fail";
        rp.why = "the policy allows it, but the name does not resolve (the proxy answers 503 "
                 "ERR_DNS_FAIL)";
    } else if (v.allow && resolved && !via_parent &&
               !(addr_ok = addrs_ok(p, &l, &deny_why, &metadata))) {
        rp.decision = "deny";
        rp.reason = "address";
        rp.why = "the policy allows the name, but no address it resolves to may be dialled "
                 "(the proxy answers 403)";
    } else {
        rp.decision = v.allow ? "allow" : "deny";
        rp.reason = awf_policy_reason_name(v.reason);
        rp.why = why_text(p, &v, t.traffic);
    }
    if (via_parent)
        snprintf(rp.via, sizeof rp.via, "%s:%u", s->parent.host, (unsigned)s->parent.port);
    else if (resolved && l.status == 0)
        rp.addrs = &l;
    else if (!resolved && !x.no_resolve)
        rp.addrs_note = "not resolved (decided on the name)";
    else if (x.no_resolve)
        rp.addrs_note = "not resolved (--no-resolve)";
    /* Where awf-proxy is deliberately stricter than Squid. */
    if (metadata)
        rp.stricter[rp.n_stricter++] =
            "link-local (cloud metadata) and loopback addresses are never dialled unless "
            "addresses.allow or a squid.conf dst ACL names them";
    else if (!addr_ok)
        rp.stricter[rp.n_stricter++] =
            "private addresses are dialled only when the proxy's own hosts file gives them, "
            "addresses.allow opens them, or a squid.conf dst ACL names them";
    if (v.reason == AWF_REASON_RAW_IP && awf_policy_is_squid(p))
        rp.stricter[rp.n_stricter++] = "a raw IP target is allowed only by a rule whose dst, "
                                       "dstdomain or dstdom_regex ACL names it";
    if (v.allow && addr_ok && !dns_failed && is_tls(&t) && s->tls.sni_in_connect)
        rp.stricter[rp.n_stricter++] = "inside the tunnel the TLS ClientHello's SNI must name "
                                       "this host and be allowed too";
    if (x.json)
        print_json(p, &rp, argv[first], host, &t);
    else
        print_text(p, &rp);
    rc = v.allow && addr_ok && !dns_failed ? 0 : 1;
    free(url);
    awf_policy_unref(p);
out:
    cli_policy_opts_free(&o);
    return rc;
}
