/* squid.conf import: the subset AWF generates (SPEC §9, policy/squidconf.md). One pass over
 * the file, as Squid reads it: ACLs and log formats must be defined before a rule or an
 * access_log line names them. This file reads lines (continuations, tokens, comments) and hands
 * each to policy_squid_directive (squidset.c); ACLs and rules (squidacl.c) go into a struct
 * squid_rules the built policy shares. */

#include "policy/policy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool line_printable(const struct squid_line *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!policy_yaml_printable(l->tok[i]))
            return false;
    return !l->rest1 || policy_yaml_printable(l->rest1);
}

/* Splits one logical line (continuations joined) into tokens; '#' at a token's start begins
 * a comment to the end of the line, as in Squid. */
static void tokenize(char *s, struct squid_line *l, char *raw)
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
        if (l->n < SQUID_MAX_TOKENS)
            l->tok[l->n++] = s + i;
        while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            i++;
        if (s[i])
            s[i++] = '\0';
    }
}

static int parse_text(struct squid_ctx *c, const char *text, size_t len)
{
    char *buf = malloc(len + 1), *raw = malloc(len + 1);
    struct squid_line *l = malloc(sizeof *l);
    int rc = (buf && raw && l) ? 0 : policy_squid_oom(c);
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
            rc = policy_squid_errf(c, AWF_E_POLICY_SYNTAX, "NUL byte in the line");
            break;
        }
        memcpy(raw, buf, o + 1);
        tokenize(buf, l, raw);
        if (l->n == 0)
            continue;
        if (l->n >= SQUID_MAX_TOKENS) {
            rc = policy_squid_errf(c, AWF_E_POLICY_INVALID, "more than %d words on one line",
                                   SQUID_MAX_TOKENS - 1);
            break;
        }
        if (l->rest1) { /* logformat: the raw rest of the line, trailing blanks trimmed */
            char *r = (char *)l->rest1, *z = r + strlen(r);
            while (z > r && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
                *--z = '\0';
        }
        if (!line_printable(l)) { /* every value may end up in YAML: it must be text */
            rc = policy_squid_errf(c, AWF_E_POLICY_SYNTAX,
                                   "control byte or invalid UTF-8 in the line");
            break;
        }
        rc = policy_squid_directive(c, l);
    }
    free(buf);
    free(raw);
    free(l);
    return rc;
}

/* Addresses a `dst` ACL of an allow rule names are meant to be reached: they re-open the
 * private-address check (the AWF api-proxy sidecar's `acl allow_api_proxy_ip dst ...`). */
static int open_dst_ranges(struct squid_ctx *c)
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
                    return policy_squid_oom(c);
        }
    }
    return 0;
}

int policy_load_squid_text(struct awf_policy_builder *b, const char *name, const char *text,
                           size_t len, char *err, size_t errlen)
{
    struct squid_ctx c = {.b = b, .name = name, .err = err, .errlen = errlen};
    if (b->squid) {
        snprintf(err, errlen, "%s: only one squid.conf can be loaded", name);
        return AWF_E_USAGE;
    }
    if (!(c.sq = calloc(1, sizeof *c.sq)))
        return policy_squid_oom(&c);
    atomic_init(&c.sq->refs, 1);
    /* The rules outlive the builder: they keep their own copy of the name. */
    int rc = (c.sq->source = strdup(name)) ? policy_squid_builtin_acls(&c) : policy_squid_oom(&c);
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
    rc = policy_load_squid_text(b, path, buf, len, err, errlen);
    free(buf);
    return rc;
}
