/* squid.conf import: the subset AWF generates (SPEC §9, policy/squidconf.md). One pass over
 * the file, as Squid reads it: ACLs and log formats must be defined before a rule or an
 * access_log line names them. Settings go into the builder through the same per-type parsers
 * as YAML and flags; ACLs and rules go into a struct squid_rules the built policy shares. */

#include "policy/policy_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 512

struct fmt {
    char *name, *format; /* owned */
};

struct ctx {
    struct awf_policy_builder *b;
    struct squid_rules *sq;
    const char *name; /* the file, for messages */
    unsigned line;
    char *err;
    size_t errlen;
    struct fmt *fmts;
    size_t n_fmts;
    bool have_parent;
};

struct line {
    char *tok[MAX_TOKENS]; /* into a scratch copy of the line, NUL-terminated */
    size_t n;
    const char *rest1; /* the raw text after the first argument (logformat's format) */
};

static int errf(struct ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(struct ctx *c, int code, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "%s:%u: ", c->name, c->line);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int oom(struct ctx *c)
{
    errf(c, -ENOMEM, "out of memory");
    return -ENOMEM;
}

/* Sets a builder setting by key with a value from this line; messages name the line. */
static int set_key(struct ctx *c, const char *key, const char *v, size_t len)
{
    char why[AWF_POLICY_ERRLEN];
    const struct skey *k = policy_key_find(key, strlen(key));
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_set_item(c->b, k, v, len, why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? oom(c) : errf(c, AWF_E_POLICY_INVALID, "%s", why);
    return 0;
}

/* ---- values ---- */

/* Squid's time_t values: "N [unit]" with N possibly fractional; the unit defaults to seconds.
 * Uses up to two tokens from t; returns the count or -1. */
static int parse_time(char **t, size_t n, uint64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {
        {"millisecond", 1}, {"milliseconds", 1}, {"msec", 1},     {"msecs", 1},
        {"second", 1e3},    {"seconds", 1e3},    {"sec", 1e3},    {"secs", 1e3},
        {"minute", 6e4},    {"minutes", 6e4},    {"min", 6e4},    {"mins", 6e4},
        {"hour", 3.6e6},    {"hours", 3.6e6},    {"day", 8.64e7}, {"days", 8.64e7},
        {"week", 6.048e8},  {"weeks", 6.048e8},
    };
    if (n == 0)
        return -1;
    /* Digits with at most one decimal point: strtod alone would also take "0x1p4", "inf" and
     * "1e3", which Squid's parser does not. */
    size_t digits = strspn(t[0], "0123456789"), dots = t[0][digits] == '.';
    if (digits == 0 || t[0][digits + dots + strspn(t[0] + digits + dots, "0123456789")] != '\0')
        return -1;
    char *end;
    errno = 0;
    double x = strtod(t[0], &end);
    if (end == t[0] || *end || errno || !isfinite(x))
        return -1;
    double mult = 1e3;
    int used = 1;
    if (n >= 2) {
        mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(units[i].unit, t[1]) == 0)
                mult = units[i].ms;
        if (mult == 0)
            return -1;
        used = 2;
    }
    double v = x * mult;
    if (v > 31536000000.0) /* a year, as the policy's own durations */
        return -1;
    *ms = (uint64_t)(v + 0.5);
    return used;
}

/* "N [bytes|KB|MB]", default unit bytes as Squid's request_header_max_size. */
static int parse_size(char **t, size_t n, uint64_t *bytes)
{
    char *end;
    if (n == 0 || !(t[0][0] >= '0' && t[0][0] <= '9'))
        return -1;
    errno = 0;
    unsigned long long x = strtoull(t[0], &end, 10);
    if (*end || errno)
        return -1;
    uint64_t mult = 1;
    if (n >= 2) {
        if (strcmp(t[1], "KB") == 0)
            mult = 1024;
        else if (strcmp(t[1], "MB") == 0)
            mult = 1024 * 1024;
        else if (strcmp(t[1], "bytes") != 0)
            return -1;
    }
    if (x > UINT32_MAX / mult)
        return -1;
    *bytes = x * mult;
    return n >= 2 ? 2 : 1;
}

static bool is_on(const char *v)
{
    return strcmp(v, "on") == 0;
}

static bool on_off(const char *v)
{
    return strcmp(v, "on") == 0 || strcmp(v, "off") == 0;
}

/* ---- ACLs ---- */

static struct acl *acl_find(struct ctx *c, const char *name)
{
    for (size_t i = 0; i < c->sq->n_acls; i++)
        if (strcmp(c->sq->acls[i].name, name) == 0)
            return &c->sq->acls[i];
    return NULL;
}

static struct acl *acl_new(struct ctx *c, const char *name, enum acl_type type)
{
    struct acl *g = realloc(c->sq->acls, (c->sq->n_acls + 1) * sizeof *g);
    if (!g)
        return NULL;
    c->sq->acls = g;
    struct acl *a = &g[c->sq->n_acls];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name)))
        return NULL;
    a->type = type;
    a->origin = (struct awf_origin){c->sq->source, c->line, 1};
    c->sq->n_acls++;
    return a;
}

/* Squid's predefined ACLs. `manager` (cache manager URLs) can never match here. */
static int builtin_acls(struct ctx *c)
{
    static const struct {
        const char *name;
        enum acl_type type;
        const char *vals[4];
    } b[] = {
        {"all", ACL_ALL, {NULL}},
        {"localhost", ACL_SRC, {"127.0.0.1/32", "::1", NULL}},
        {"to_localhost", ACL_DST, {"127.0.0.0/8", "0.0.0.0/32", "::1", "::/128"}},
        {"to_linklocal", ACL_DST, {"169.254.0.0/16", "fe80::/10", NULL}},
        {"manager", ACL_METHOD, {NULL}},
    };
    char why[160];
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        struct acl *a = acl_new(c, b[i].name, b[i].type);
        if (!a)
            return oom(c);
        a->origin.line = 0;
        size_t n = 0;
        while (n < 4 && b[i].vals[n])
            n++;
        if (policy_acl_add_values(a, (char **)b[i].vals, n, NULL, 0, why, sizeof why) < 0)
            return oom(c);
    }
    return 0;
}

static const struct {
    const char *name;
    enum acl_type type;
} acl_types[] = {
    {"dstdomain", ACL_DSTDOMAIN},
    {"dstdom_regex", ACL_DSTDOM_REGEX},
    {"dst", ACL_DST},
    {"src", ACL_SRC},
    {"port", ACL_PORT},
    {"method", ACL_METHOD},
    {"url_regex", ACL_URL_REGEX},
    {"at_step", ACL_AT_STEP},
};

static bool acl_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int d_acl(struct ctx *c, struct line *l)
{
    if (l->n < 3)
        return errf(c, AWF_E_POLICY_SYNTAX, "acl: want acl NAME TYPE VALUE...");
    const char *name = l->tok[1], *tname = l->tok[2];
    if (!acl_name_ok(name))
        return errf(c, AWF_E_POLICY_INVALID, "acl: invalid ACL name \"%s\"", name);
    int type = -1;
    for (size_t i = 0; i < sizeof acl_types / sizeof acl_types[0]; i++)
        if (strcmp(acl_types[i].name, tname) == 0)
            type = (int)acl_types[i].type;
    if (type < 0)
        return errf(c, AWF_E_POLICY_INVALID,
                    "acl %s: type \"%s\" is not supported (dstdomain, dstdom_regex, dst, src, "
                    "port, method, url_regex, at_step)",
                    name, tname);
    size_t i = 3;
    bool icase = false;
    for (; i < l->n && (l->tok[i][0] == '-' || strcmp(l->tok[i], "+i") == 0) && l->tok[i][1]; i++) {
        bool re = type == ACL_DSTDOM_REGEX || type == ACL_URL_REGEX;
        if (strcmp(l->tok[i], "-i") == 0 && re)
            icase = true;
        else if (strcmp(l->tok[i], "+i") == 0 && re)
            icase = false;
        else if (strcmp(l->tok[i], "-n") == 0 && (type == ACL_DSTDOMAIN || type == ACL_DST))
            continue; /* no reverse lookups: awf-proxy never does them */
        else if (strcmp(l->tok[i], "--") == 0) {
            i++;
            break;
        } else
            return errf(c, AWF_E_POLICY_INVALID, "acl %s: flag \"%s\" is not supported for %s",
                        name, l->tok[i], tname);
    }
    if (i >= l->n)
        return errf(c, AWF_E_POLICY_SYNTAX, "acl %s: no values", name);
    for (size_t j = i; j < l->n; j++)
        if (l->tok[j][0] == '"')
            return errf(c, AWF_E_POLICY_INVALID,
                        "acl %s: values from a file (%s) are not supported", name, l->tok[j]);
    struct acl *a = acl_find(c, name);
    if (a && a->type != (enum acl_type)type)
        return errf(c, AWF_E_POLICY_INVALID, "acl %s: already defined with another type%s", name,
                    a->origin.line ? "" : " (built in)");
    if (!a && !(a = acl_new(c, name, (enum acl_type)type)))
        return oom(c);
    a->icase = icase; /* per line in Squid; AWF never mixes */
    char why[AWF_POLICY_ERRLEN];
    int rc = policy_acl_add_values(a, l->tok + i, l->n - i, c->sq, c->line, why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? oom(c) : errf(c, AWF_E_POLICY_INVALID, "acl %s: %s", name, why);
    if (type == ACL_URL_REGEX)
        c->sq->has_url_regex = true;
    return 0;
}

/* ---- rules ---- */

/* Parses "[!]ACL ..." from tok[from..] into a new rule appended to list. */
static int add_rule(struct ctx *c, struct rule_list *list, bool allow, struct line *l, size_t from,
                    const char *text)
{
    if (from >= l->n)
        return errf(c, AWF_E_POLICY_SYNTAX, "%s: no ACL named", l->tok[0]);
    struct squid_rules *sq = c->sq;
    uint32_t first = (uint32_t)sq->n_terms;
    for (size_t i = from; i < l->n; i++) {
        const char *t = l->tok[i];
        bool neg = false;
        if (t[0] == '!') {
            neg = true;
            if (!*++t) {
                if (++i >= l->n)
                    return errf(c, AWF_E_POLICY_SYNTAX, "%s: \"!\" without an ACL", l->tok[0]);
                t = l->tok[i];
            }
        }
        const struct acl *a = acl_find(c, t);
        if (!a)
            return errf(c, AWF_E_POLICY_INVALID, "%s: unknown ACL \"%s\" (define it above)",
                        l->tok[0], t);
        struct rule_term *g = realloc(sq->terms, (sq->n_terms + 1) * sizeof *g);
        if (!g)
            return oom(c);
        sq->terms = g;
        g[sq->n_terms++] = (struct rule_term){(uint32_t)(a - sq->acls), neg};
    }
    struct rule *g = realloc(list->v, (list->n + 1) * sizeof *g);
    if (!g)
        return oom(c);
    list->v = g;
    struct rule *r = &g[list->n];
    *r = (struct rule){.first = first, .n = (uint32_t)(sq->n_terms - first)};
    r->pub.allow = allow;
    r->pub.origin = (struct awf_origin){c->sq->source, c->line, 1};
    if (!(r->pub.text = strdup(text)))
        return oom(c);
    list->n++;
    return 0;
}

/* ssl_bump ACTION [!]ACL...: splice, bump and terminate are kept in order; peek and stare
 * are what awf-proxy always does before deciding (the ClientHello is read, the server is
 * verified when bumping), so their rules need no action. */
static int d_ssl_bump(struct ctx *c, struct line *l)
{
    static const char *const actions[] = {"splice", "bump", "terminate"};
    static const uint8_t codes[] = {AWF_BUMP_SPLICE, AWF_BUMP_BUMP, AWF_BUMP_TERMINATE};
    if (l->n < 3)
        return errf(c, AWF_E_POLICY_SYNTAX,
                    "ssl_bump: want ssl_bump peek|stare|splice|bump|terminate [!]ACL...");
    const char *a = l->tok[1];
    if (strcmp(a, "peek") == 0 || strcmp(a, "stare") == 0) {
        for (size_t i = 2; i < l->n; i++) /* the ACLs must still exist */
            if (!acl_find(c, l->tok[i][0] == '!' ? l->tok[i] + 1 : l->tok[i]))
                return errf(c, AWF_E_POLICY_INVALID, "ssl_bump: unknown ACL \"%s\"", l->tok[i]);
        return 0;
    }
    size_t k = 0;
    while (k < 3 && strcmp(a, actions[k]) != 0)
        k++;
    if (k == 3)
        return errf(c, AWF_E_POLICY_INVALID,
                    "ssl_bump: action \"%s\" is not supported (peek, stare, splice, bump, "
                    "terminate)",
                    a);
    uint8_t *g = realloc(c->sq->bump_actions, c->sq->ssl_bump.n + 1);
    if (!g)
        return oom(c);
    c->sq->bump_actions = g;
    g[c->sq->ssl_bump.n] = codes[k];
    char text[1024];
    size_t o = 0;
    for (size_t i = 1; i < l->n && o + 2 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i > 1 ? " " : "", l->tok[i]);
    return add_rule(c, &c->sq->ssl_bump, codes[k] != AWF_BUMP_TERMINATE, l, 2, text);
}

static int d_access(struct ctx *c, struct line *l)
{
    struct rule_list *list = strcmp(l->tok[0], "http_access") == 0     ? &c->sq->http_access
                             : strcmp(l->tok[0], "always_direct") == 0 ? &c->sq->always_direct
                                                                       : &c->sq->never_direct;
    if (l->n < 2 || (strcmp(l->tok[1], "allow") != 0 && strcmp(l->tok[1], "deny") != 0))
        return errf(c, AWF_E_POLICY_SYNTAX, "%s: want allow|deny [!]ACL...", l->tok[0]);
    /* The rule's text as written after the directive, single-spaced. */
    char text[1024];
    size_t o = 0;
    for (size_t i = 1; i < l->n && o + 2 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i > 1 ? " " : "", l->tok[i]);
    return add_rule(c, list, strcmp(l->tok[1], "allow") == 0, l, 2, text);
}

/* ---- logs ---- */

static const char *fmt_find(struct ctx *c, const char *name)
{
    for (size_t i = 0; i < c->n_fmts; i++)
        if (strcmp(c->fmts[i].name, name) == 0)
            return c->fmts[i].format;
    if (strcmp(name, "squid") == 0)
        return "squid"; /* Squid's native format, built into the log module */
    return NULL;
}

static int d_logformat(struct ctx *c, struct line *l)
{
    if (l->n < 3 || !l->rest1 || !*l->rest1)
        return errf(c, AWF_E_POLICY_SYNTAX, "logformat: want logformat NAME FORMAT");
    const char *name = l->tok[1];
    if (!acl_name_ok(name))
        return errf(c, AWF_E_POLICY_INVALID, "logformat: invalid name \"%s\"", name);
    for (size_t i = 0; i < c->n_fmts; i++)
        if (strcmp(c->fmts[i].name, name) == 0)
            return errf(c, AWF_E_POLICY_INVALID, "logformat %s: defined twice", name);
    if (strcmp(name, "squid") == 0 || strcmp(name, "common") == 0 ||
        strcmp(name, "combined") == 0 || strcmp(name, "referrer") == 0 ||
        strcmp(name, "useragent") == 0)
        return errf(c, AWF_E_POLICY_INVALID, "logformat %s: a built-in name", name);
    struct fmt *g = realloc(c->fmts, (c->n_fmts + 1) * sizeof *g);
    if (!g)
        return oom(c);
    c->fmts = g;
    struct fmt f = {strdup(name), strdup(l->rest1)};
    if (!f.name || !f.format) {
        free(f.name);
        free(f.format);
        return oom(c);
    }
    c->fmts[c->n_fmts++] = f;
    return 0;
}

static void clear_logs(struct awf_policy_builder *b)
{
    for (size_t i = 0; i < b->s.n_logs; i++) {
        free(b->s.logs[i].format);
        free(b->s.logs[i].path);
        free(b->s.logs[i].where);
    }
    free(b->s.logs);
    b->s.logs = NULL;
    b->s.n_logs = 0;
    b->logs_default = false;
}

/* access_log [stdio:|daemon:]PATH [option=value...] [FORMAT] [[!]ACL...] | none */
static int d_access_log(struct ctx *c, struct line *l)
{
    if (l->n < 2)
        return errf(c, AWF_E_POLICY_SYNTAX, "access_log: want access_log PATH [FORMAT [ACL...]]");
    const char *path = l->tok[1];
    if (strcmp(path, "none") == 0) {
        if (l->n > 2)
            return errf(c, AWF_E_POLICY_INVALID,
                        "access_log none: conditions on \"none\" are not supported");
        if (c->b->logs_default)
            clear_logs(c->b);
        return 0;
    }
    if (strncmp(path, "stdio:", 6) == 0 || strncmp(path, "daemon:", 7) == 0)
        path = strchr(path, ':') + 1;
    else if (strchr(path, ':'))
        return errf(c, AWF_E_POLICY_INVALID,
                    "access_log: module of \"%s\" is not supported (stdio:, daemon: or a path)",
                    path);
    if (path[0] != '/')
        return errf(c, AWF_E_POLICY_INVALID, "access_log: \"%s\" is not an absolute path", path);
    if (strcmp(path, "/dev/stdout") == 0)
        path = "-";
    const char *format = NULL;
    size_t i = 2;
    for (; i < l->n && strchr(l->tok[i], '='); i++) {
        const char *t = l->tok[i];
        if (strncmp(t, "logformat=", 10) == 0) {
            if (!(format = fmt_find(c, t + 10)))
                return errf(c, AWF_E_POLICY_INVALID, "access_log: unknown logformat \"%s\"",
                            t + 10);
        } else if (strncmp(t, "buffer-size=", 12) != 0 && strncmp(t, "on-error=", 9) != 0 &&
                   strncmp(t, "rotate=", 7) != 0) {
            return errf(c, AWF_E_POLICY_INVALID, "access_log: option \"%s\" is not supported", t);
        }
    }
    /* As Squid: a following word that names a format is the (legacy) format, else an ACL. */
    if (!format && i < l->n && (format = fmt_find(c, l->tok[i])) != NULL)
        i++;
    if (!format)
        format = "squid";
    uint32_t cond = 0;
    if (i < l->n) {
        int rc = add_rule(c, &c->sq->log_conds, true, l, i, "access_log condition");
        if (rc < 0)
            return rc;
        cond = (uint32_t)c->sq->log_conds.n;
    }
    char why[AWF_POLICY_ERRLEN];
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_add_log(c->b, format, strlen(format), path, strlen(path), why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? oom(c) : errf(c, AWF_E_POLICY_INVALID, "access_log: %s", why);
    c->b->s.logs[c->b->s.n_logs - 1].cond = cond;
    return 0;
}

/* ---- listeners, DNS, peers, the rest ---- */

/* One http_port option of AWF's ssl-bump line; returns 0, 1 when not an ssl-bump option, or
 * an error. */
static int ssl_bump_option(struct ctx *c, const char *t)
{
    if (strcmp(t, "ssl-bump") == 0)
        return set_key(c, "ssl_bump.enabled", "true", 4);
    if (strncmp(t, "cert=", 5) == 0 || strncmp(t, "tls-cert=", 9) == 0)
        return set_key(c, "ssl_bump.ca_cert", strchr(t, '=') + 1, strlen(strchr(t, '=') + 1));
    if (strncmp(t, "key=", 4) == 0 || strncmp(t, "tls-key=", 8) == 0)
        return set_key(c, "ssl_bump.ca_key", strchr(t, '=') + 1, strlen(strchr(t, '=') + 1));
    if (strncmp(t, "dynamic_cert_mem_cache_size=", 28) == 0)
        return set_key(c, "ssl_bump.cert_cache", t + 28, strlen(t + 28));
    if (strcmp(t, "generate-host-certificates=on") == 0)
        return 0; /* always: leaves are minted in process */
    if (strncmp(t, "generate-host-certificates=", 27) == 0)
        return errf(c, AWF_E_POLICY_INVALID,
                    "http_port: %s is not supported (awf-proxy always mints host certificates)", t);
    if (strncmp(t, "options=", 8) == 0 || strncmp(t, "tls-options=", 12) == 0)
        /* TLS 1.2 and later only, compression off: NO_SSLv3,NO_TLSv1,NO_TLSv1_1 and more. */
        return policy_squid_notice(c->sq, c->line,
                                   "http_port %s: TLS 1.2 or later is always required", t) < 0
                   ? oom(c)
                   : 0;
    return 1;
}

static int d_http_port(struct ctx *c, struct line *l)
{
    if (l->n < 2)
        return errf(c, AWF_E_POLICY_SYNTAX, "http_port: want http_port [ADDR:]PORT");
    for (size_t i = 2; i < l->n; i++) {
        if (strcmp(l->tok[i], "intercept") == 0 || strcmp(l->tok[i], "transparent") == 0 ||
            strncmp(l->tok[i], "name=", 5) == 0)
            continue;
        int rc = ssl_bump_option(c, l->tok[i]);
        if (rc <= 0) {
            if (rc < 0)
                return rc;
            continue;
        }
        return errf(c, AWF_E_POLICY_INVALID,
                    "http_port: option \"%s\" is not supported (awf-proxy tells intercepted "
                    "traffic apart by itself)",
                    l->tok[i]);
    }
    char addr[128];
    const char *v = l->tok[1];
    if (strchr(v, ':') == NULL)
        snprintf(addr, sizeof addr, "0.0.0.0:%s", v); /* Squid listens on every address */
    else
        snprintf(addr, sizeof addr, "%s", v);
    char why[AWF_POLICY_ERRLEN];
    policy_builder_at(c->b, c->name, c->line, 0);
    int rc = policy_add_listen(c->b, addr, strlen(addr), 0, why, sizeof why);
    if (rc < 0)
        return rc == -ENOMEM ? oom(c) : errf(c, AWF_E_POLICY_INVALID, "http_port: %s", why);
    return 0;
}

static int d_dns_nameservers(struct ctx *c, struct line *l)
{
    if (l->n < 2)
        return errf(c, AWF_E_POLICY_SYNTAX, "dns_nameservers: want one or more addresses");
    policy_clear_dns_servers(&c->b->s);
    for (size_t i = 1; i < l->n; i++) {
        int rc = set_key(c, "dns.servers", l->tok[i], strlen(l->tok[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int d_cache_peer(struct ctx *c, struct line *l)
{
    if (l->n < 5)
        return errf(c, AWF_E_POLICY_SYNTAX, "cache_peer: want cache_peer HOST parent PORT 0 ...");
    if (c->have_parent)
        return errf(c, AWF_E_POLICY_INVALID, "cache_peer: only one parent is supported");
    if (strcmp(l->tok[2], "parent") != 0)
        return errf(c, AWF_E_POLICY_INVALID, "cache_peer: type \"%s\" is not supported (parent)",
                    l->tok[2]);
    for (size_t i = 5; i < l->n; i++) {
        const char *o = l->tok[i];
        if (strcmp(o, "no-query") != 0 && strcmp(o, "default") != 0 &&
            strcmp(o, "no-digest") != 0 && strcmp(o, "proxy-only") != 0 &&
            strcmp(o, "no-netdb-exchange") != 0 && strncmp(o, "name=", 5) != 0 &&
            strncmp(o, "connect-timeout=", 16) != 0)
            return errf(c, AWF_E_POLICY_INVALID, "cache_peer: option \"%s\" is not supported", o);
    }
    char v[300];
    const char *h = l->tok[1];
    bool v6 = strchr(h, ':') != NULL && h[0] != '[';
    snprintf(v, sizeof v, "%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "", l->tok[3]);
    int rc = set_key(c, "parent", v, strlen(v));
    if (rc == 0 && v6) { /* keep the host as written, brackets are only for the parser */
        size_t n = strlen(h);
        memmove(c->b->s.parent.host, h, n + 1);
    }
    c->have_parent = rc == 0;
    return rc;
}

/* Timeouts: the Squid directive and the policy key it sets. */
static const struct {
    const char *directive, *key;
} time_keys[] = {
    {"connect_timeout", "timeouts.connect"},
    {"read_timeout", "timeouts.read_idle"},
    {"request_timeout", "timeouts.request_headers"},
    {"persistent_request_timeout", "timeouts.client_idle"},
    {"pconn_timeout", "timeouts.upstream_idle"},
    {"client_lifetime", "timeouts.lifetime"},
    {"shutdown_lifetime", "timeouts.shutdown_drain"},
    {"dns_timeout", "timeouts.dns"},
    {"negative_dns_ttl", "dns.negative_ttl"},
    {"positive_dns_ttl", "dns.max_ttl"},
};

static int d_time(struct ctx *c, struct line *l, const char *key)
{
    uint64_t ms;
    int used = parse_time(l->tok + 1, l->n - 1, &ms);
    if (used < 0 || (size_t)used != l->n - 1)
        return errf(c, AWF_E_POLICY_INVALID,
                    "%s: invalid time (want N [milliseconds|seconds|minutes|hours|days])",
                    l->tok[0]);
    char v[32];
    if (strncmp(key, "dns.", 4) == 0) /* TTLs are whole seconds: round up */
        snprintf(v, sizeof v, "%llus", (unsigned long long)((ms + 999) / 1000));
    else
        snprintf(v, sizeof v, "%llums", (unsigned long long)ms);
    return set_key(c, key, v, strlen(v));
}

static bool is_one_value(const char *d)
{
    static const char *const one[] = {"hosts_file", "pid_filename",  "cache_log",
                                      "via",        "forwarded_for", "strip_query_terms"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (strcmp(d, one[i]) == 0)
            return true;
    return false;
}

static int directive(struct ctx *c, struct line *l)
{
    const char *d = l->tok[0];
    const char *why = policy_squid_ignored(d);
    if (why)
        return policy_squid_notice(c->sq, c->line, "%s ignored: %s", d, why) < 0 ? oom(c) : 0;
    for (size_t i = 0; i < sizeof time_keys / sizeof time_keys[0]; i++)
        if (strcmp(d, time_keys[i].directive) == 0)
            return d_time(c, l, time_keys[i].key);
    if (strcmp(d, "acl") == 0)
        return d_acl(c, l);
    if (strcmp(d, "http_access") == 0 || strcmp(d, "always_direct") == 0 ||
        strcmp(d, "never_direct") == 0)
        return d_access(c, l);
    if (strcmp(d, "logformat") == 0)
        return d_logformat(c, l);
    if (strcmp(d, "access_log") == 0)
        return d_access_log(c, l);
    if (strcmp(d, "http_port") == 0)
        return d_http_port(c, l);
    if (strcmp(d, "ssl_bump") == 0)
        return d_ssl_bump(c, l);
    if (strcmp(d, "sslcrtd_program") == 0 || strcmp(d, "sslcrtd_children") == 0)
        return policy_squid_notice(c->sq, c->line,
                                   "%s not needed: awf-proxy mints certificates in process", d) < 0
                   ? oom(c)
                   : 0;
    if (strcmp(d, "dns_nameservers") == 0)
        return d_dns_nameservers(c, l);
    if (strcmp(d, "cache_peer") == 0)
        return d_cache_peer(c, l);
    if (l->n != 2)
        return errf(c, AWF_E_POLICY_SYNTAX, "%s: %s", d,
                    is_one_value(d) ? "want exactly one value"
                                    : "unknown or unsupported directive");
    const char *v = l->tok[1];
    if (strcmp(d, "hosts_file") == 0)
        return set_key(c, "dns.hosts_file", strcmp(v, "none") == 0 ? "" : v,
                       strcmp(v, "none") == 0 ? 0 : strlen(v));
    if (strcmp(d, "pid_filename") == 0 || strcmp(d, "cache_log") == 0) {
        const char *key = d[0] == 'p' ? "pid_file" : "cache_log";
        if (strcmp(v, "none") == 0) {
            char **slot = d[0] == 'p' ? &c->b->s.pid_file : &c->b->s.cache_log;
            free(*slot);
            *slot = NULL;
            return 0;
        }
        if (strncmp(v, "stdio:", 6) == 0)
            v += 6;
        return set_key(c, key, v, strlen(v));
    }
    if (strcmp(d, "via") == 0) {
        if (strcmp(v, "off") != 0)
            return errf(c, AWF_E_POLICY_INVALID, "via: only \"off\" (awf-proxy adds no Via)");
        return 0;
    }
    if (strcmp(d, "forwarded_for") == 0) {
        if (strcmp(v, "delete") != 0 && strcmp(v, "off") != 0 && strcmp(v, "transparent") != 0)
            return errf(c, AWF_E_POLICY_INVALID,
                        "forwarded_for: \"%s\" is not supported (delete, off or transparent: "
                        "awf-proxy adds no X-Forwarded-For)",
                        v);
        return 0;
    }
    if (strcmp(d, "strip_query_terms") == 0) {
        if (!on_off(v))
            return errf(c, AWF_E_POLICY_INVALID, "strip_query_terms: want on or off");
        return set_key(c, "logs.strip_query", is_on(v) ? "true" : "false", is_on(v) ? 4 : 5);
    }
    return errf(c, AWF_E_POLICY_SYNTAX, "unknown or unsupported directive \"%s\"", d);
}

/* request_header_max_size takes "N KB": two tokens, so it is read before the one-value
 * directives above. */
static int d_header_size(struct ctx *c, struct line *l)
{
    uint64_t bytes;
    int used = parse_size(l->tok + 1, l->n - 1, &bytes);
    if (used < 0 || (size_t)used != l->n - 1 || bytes == 0)
        return errf(c, AWF_E_POLICY_INVALID,
                    "request_header_max_size: want N [bytes|KB|MB], at least 1 byte");
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    return set_key(c, "limits.header_bytes", v, strlen(v));
}

/* ---- reading lines ---- */

static bool line_printable(const struct line *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!policy_yaml_printable(l->tok[i]))
            return false;
    return !l->rest1 || policy_yaml_printable(l->rest1);
}

/* Splits one logical line (continuations joined) into tokens; '#' at a token's start begins
 * a comment to the end of the line, as in Squid. */
static void tokenize(char *s, struct line *l, char *raw)
{
    l->n = 0;
    l->rest1 = NULL;
    size_t i = 0;
    while (s[i]) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')
            i++;
        if (!s[i] || s[i] == '#')
            break;
        if (l->n == 2 && raw) { /* where the format of a logformat line starts */
            l->rest1 = raw + i;
        }
        if (l->n < MAX_TOKENS)
            l->tok[l->n++] = s + i;
        while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            i++;
        if (s[i])
            s[i++] = '\0';
    }
}

static int parse_text(struct ctx *c, const char *text, size_t len)
{
    char *buf = malloc(len + 1), *raw = malloc(len + 1);
    struct line *l = malloc(sizeof *l);
    int rc = (buf && raw && l) ? 0 : oom(c);
    unsigned lineno = 1;
    size_t i = 0;
    while (rc == 0 && i < len) {
        /* Join "\\\n" continuations into one logical line. */
        size_t o = 0;
        c->line = lineno;
        while (i < len) {
            const char *nl = memchr(text + i, '\n', len - i);
            size_t end = nl ? (size_t)(nl - text) : len;
            size_t e = end;
            if (e > i && text[e - 1] == '\r')
                e--;
            bool cont = e > i && text[e - 1] == '\\';
            memcpy(buf + o, text + i, e - i - cont);
            o += e - i - cont;
            i = end + 1;
            lineno++;
            if (!cont)
                break;
        }
        buf[o] = '\0';
        if (memchr(buf, '\0', o)) {
            rc = errf(c, AWF_E_POLICY_SYNTAX, "NUL byte in the line");
            break;
        }
        memcpy(raw, buf, o + 1);
        tokenize(buf, l, raw);
        if (l->n == 0)
            continue;
        if (l->n >= MAX_TOKENS) {
            rc = errf(c, AWF_E_POLICY_INVALID, "more than %d words on one line", MAX_TOKENS - 1);
            break;
        }
        if (l->rest1) { /* logformat: the raw rest of the line, trailing blanks trimmed */
            char *r = (char *)l->rest1, *z = r + strlen(r);
            while (z > r && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
                *--z = '\0';
        }
        if (!line_printable(l)) { /* every value may end up in YAML: it must be text */
            rc = errf(c, AWF_E_POLICY_SYNTAX, "control byte or invalid UTF-8 in the line");
            break;
        }
        if (strcmp(l->tok[0], "request_header_max_size") == 0)
            rc = d_header_size(c, l);
        else
            rc = directive(c, l);
    }
    free(buf);
    free(raw);
    free(l);
    return rc;
}

/* Addresses a `dst` ACL of an allow rule names are meant to be reached: they re-open the
 * private-address check (the AWF api-proxy sidecar's `acl allow_api_proxy_ip dst ...`). */
static int open_dst_ranges(struct ctx *c)
{
    const struct squid_rules *sq = c->sq;
    for (size_t r = 0; r < sq->http_access.n; r++) {
        const struct rule *ru = &sq->http_access.v[r];
        if (!ru->pub.allow)
            continue;
        for (uint32_t t = 0; t < ru->n; t++) {
            const struct rule_term *term = &sq->terms[ru->first + t];
            const struct acl *a = &sq->acls[term->acl];
            if (term->neg || a->type != ACL_DST || a->origin.line == 0)
                continue;
            for (size_t k = 0; k < a->n_cidrs; k++)
                if (policy_push_range(&c->b->s, &a->cidrs[k]) < 0)
                    return oom(c);
        }
    }
    return 0;
}

int awf_policy_load_squid_text(struct awf_policy_builder *b, const char *name, const char *text,
                               size_t len, char *err, size_t errlen)
{
    struct ctx c = {.b = b, .name = name, .err = err, .errlen = errlen};
    if (b->squid) {
        snprintf(err, errlen, "%s: only one squid.conf can be loaded", name);
        return AWF_E_USAGE;
    }
    if (!(c.sq = calloc(1, sizeof *c.sq)))
        return oom(&c);
    atomic_init(&c.sq->refs, 1);
    /* The rules outlive the builder: they keep their own copy of the name. */
    int rc = (c.sq->source = strdup(name)) ? builtin_acls(&c) : oom(&c);
    if (rc == 0)
        rc = parse_text(&c, text, len);
    if (rc == 0)
        rc = open_dst_ranges(&c);
    for (size_t i = 0; i < c.n_fmts; i++) {
        free(c.fmts[i].name);
        free(c.fmts[i].format);
    }
    free(c.fmts);
    /* The builder keeps the rules even on error: it is to be destroyed, not built. */
    b->squid = c.sq;
    return rc;
}

int awf_policy_load_squid_conf(struct awf_policy_builder *b, const char *path, char *err,
                               size_t errlen)
{
    char *buf;
    size_t len;
    int rc = policy_read_file(path, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    rc = awf_policy_load_squid_text(b, path, buf, len, err, errlen);
    free(buf);
    return rc;
}
