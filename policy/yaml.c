/* The YAML policy (version 1), read with libyaml's document API so every node keeps its
 * line and column for messages. The schema is the key table in settings.c; see README.md. */

#include "policy/policy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char default_yaml[] = "# awf-proxy's embedded default policy: GitHub only.\n"
                                   "version: 1\n"
                                   "listen: [\"127.0.0.1:3128\"]\n"
                                   "allow:\n"
                                   "  - github.com\n"
                                   "  - githubusercontent.com\n"
                                   "  - githubassets.com\n"
                                   "  - ghcr.io\n";

struct ctx {
    struct awf_policy_builder *b;
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errlen;
    bool have_version;
};

#define SCALAR(n)     ((const char *)(n)->data.scalar.value)
#define SCALAR_LEN(n) ((n)->data.scalar.length)

static int fail_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[AWF_POLICY_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    policy_errf(c->err, c->errlen, c->name, (unsigned)n->start_mark.line + 1,
                (unsigned)n->start_mark.column + 1, "%s", msg);
    return AWF_E_POLICY_INVALID;
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    size_t l = SCALAR_LEN(n);
    return l == 0 || (l == 1 && SCALAR(n)[0] == '~') ||
           (l == 4 && memcmp(SCALAR(n), "null", 4) == 0);
}

/* Calls fn on each item of a list value; a scalar counts as a one-item list, null as empty. */
typedef int (*item_fn)(struct ctx *c, const struct skey *k, yaml_node_t *item);

static int each_item(struct ctx *c, const struct skey *k, yaml_node_t *v, item_fn fn)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return fn(c, k, v);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        int rc = fn(c, k, yaml_document_get_node(c->doc, *it));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The builder's note of where the value being set is (policy_builder_at). */
static void at(struct ctx *c, const yaml_node_t *n)
{
    policy_builder_at(c->b, c->name, (unsigned)n->start_mark.line + 1,
                      (unsigned)n->start_mark.column + 1);
}

static int set_scalar(struct ctx *c, const struct skey *k, yaml_node_t *v)
{
    char why[AWF_POLICY_ERRLEN];
    if (v->type != YAML_SCALAR_NODE)
        return fail_at(c, v, "%s: expected a single value", k->key);
    at(c, v);
    int rc = policy_set_item(c->b, k, SCALAR(v), SCALAR_LEN(v), why, sizeof why);
    if (rc == -ENOMEM)
        return rc;
    return rc < 0 ? fail_at(c, v, "%s: %s", k->key, why) : 0;
}

static int entry_item(struct ctx *c, const struct skey *k, yaml_node_t *v)
{
    if (v->type != YAML_SCALAR_NODE)
        return fail_at(c, v, "%s: each entry must be a single name or address", k->key);
    /* `allow: [1]` is YAML's integer 1, which inet_aton would take as 0.0.0.1: a number where a
     * name was meant is an error, not an address nobody asked for. */
    size_t n = SCALAR_LEN(v), d = 0;
    while (d < n && SCALAR(v)[d] >= '0' && SCALAR(v)[d] <= '9')
        d++;
    if (n > 0 && d == n && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return fail_at(c, v, "%s: %.*s is a number, not a domain or address", k->key, (int)n,
                       SCALAR(v));
    return policy_builder_add_entry(c->b, k->kind == K_BLOCK, SCALAR(v), SCALAR_LEN(v), c->name,
                                    (unsigned)v->start_mark.line + 1,
                                    (unsigned)v->start_mark.column + 1, c->err, c->errlen);
}

/* Looks up the scalar value of key in a small mapping, rejecting keys not in allowed. */
static int small_map(struct ctx *c, const char *what, yaml_node_t *m, const char *const *allowed,
                     yaml_node_t **vals)
{
    for (size_t i = 0; allowed[i]; i++)
        vals[i] = NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        size_t i = 0;
        if (k->type == YAML_SCALAR_NODE)
            for (; allowed[i]; i++)
                if (strlen(allowed[i]) == SCALAR_LEN(k) &&
                    memcmp(allowed[i], SCALAR(k), SCALAR_LEN(k)) == 0)
                    break;
        if (k->type != YAML_SCALAR_NODE || !allowed[i]) {
            char q[96];
            policy_quote(q, sizeof q, k->type == YAML_SCALAR_NODE ? SCALAR(k) : "?",
                         k->type == YAML_SCALAR_NODE ? SCALAR_LEN(k) : 1);
            return fail_at(c, k, "unknown key %s in %s", q, what);
        }
        if (vals[i])
            return fail_at(c, k, "duplicate key \"%s\" in %s", allowed[i], what);
        if (v->type != YAML_SCALAR_NODE)
            return fail_at(c, v, "%s.%s: expected a single value", what, allowed[i]);
        vals[i] = v;
    }
    return 0;
}

static int listen_item(struct ctx *c, const struct skey *k, yaml_node_t *v)
{
    char why[AWF_POLICY_ERRLEN];
    int rc;
    if (v->type == YAML_MAPPING_NODE) {
        static const char *const allowed[] = {"address", "intercept_port", NULL};
        yaml_node_t *vals[2];
        uint32_t port = 0;
        if ((rc = small_map(c, "listen", v, allowed, vals)) < 0)
            return rc;
        if (!vals[0])
            return fail_at(c, v, "listen: a mapping needs \"address\"");
        if (vals[1] && (policy_parse_u32(SCALAR(vals[1]), SCALAR_LEN(vals[1]), 65535, &port, why,
                                         sizeof why) < 0 ||
                        port == 0))
            return fail_at(c, vals[1], "listen.intercept_port: want a port 1..65535");
        at(c, vals[0]);
        rc = policy_add_listen(c->b, SCALAR(vals[0]), SCALAR_LEN(vals[0]), (uint16_t)port, why,
                               sizeof why);
        return rc == AWF_E_POLICY_INVALID ? fail_at(c, vals[0], "listen: %s", why) : rc;
    }
    return set_scalar(c, k, v);
}

static int log_item(struct ctx *c, const struct skey *k, yaml_node_t *v)
{
    char why[AWF_POLICY_ERRLEN];
    int rc;
    if (v->type == YAML_MAPPING_NODE) {
        static const char *const allowed[] = {"format", "path", NULL};
        yaml_node_t *vals[2];
        if ((rc = small_map(c, "logs.outputs", v, allowed, vals)) < 0)
            return rc;
        if (!vals[1])
            return fail_at(c, v, "logs.outputs: a mapping needs \"path\"");
        at(c, vals[0] ? vals[0] : v);
        rc = policy_add_log(c->b, vals[0] ? SCALAR(vals[0]) : NULL,
                            vals[0] ? SCALAR_LEN(vals[0]) : 0, SCALAR(vals[1]), SCALAR_LEN(vals[1]),
                            why, sizeof why);
        return rc == AWF_E_POLICY_INVALID ? fail_at(c, v, "logs.outputs: %s", why) : rc;
    }
    return set_scalar(c, k, v);
}

static int walk(struct ctx *c, yaml_node_t *m, const char *prefix)
{
    if (m->type != YAML_MAPPING_NODE)
        return fail_at(c, m, "%s%sexpected a mapping of keys", prefix ? prefix : "",
                       prefix ? ": " : "");
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail_at(c, k, "keys must be plain names");
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *kq = yaml_document_get_node(c->doc, q->key);
            if (kq->type == YAML_SCALAR_NODE && SCALAR_LEN(kq) == SCALAR_LEN(k) &&
                memcmp(SCALAR(kq), SCALAR(k), SCALAR_LEN(k)) == 0)
                return fail_at(c, k, "duplicate key \"%s\"", SCALAR(k));
        }
        char full[128];
        int n = snprintf(full, sizeof full, "%s%s%.*s", prefix ? prefix : "", prefix ? "." : "",
                         (int)SCALAR_LEN(k), SCALAR(k));
        const struct skey *sk = NULL;
        if (n > 0 && (size_t)n < sizeof full && strlen(full) == (size_t)n)
            sk = policy_key_find(full, (size_t)n);
        /* awf_version and the one-output "logs" form exist for awf_policy_set only. */
        static const struct skey logs_section = {"logs", K_SECTION, 0};
        if (sk && !prefix && (sk->kind == K_VERSION_STR || sk->kind == K_LOGS))
            sk = strcmp(full, "logs") == 0 ? &logs_section : NULL;
        if (!sk) {
            char q[96];
            policy_quote(q, sizeof q, SCALAR(k), SCALAR_LEN(k));
            return fail_at(c, k, "unknown key %s%s%s", q, prefix ? " in " : "",
                           prefix ? prefix : "");
        }
        int rc;
        switch (sk->kind) {
        case K_SECTION:
            rc = walk(c, v, full);
            break;
        case K_ALLOW:
        case K_BLOCK:
            /* `allow: github.com` reads as if it worked; a list makes clear more may follow,
             * and catches `allow: a.com, b.com` (one scalar holding a comma). */
            if (v->type == YAML_SCALAR_NODE && !is_null(v))
                return fail_at(c, v, "%s: expected a list, e.g. %s: [%.*s]", full, full,
                               (int)SCALAR_LEN(v), SCALAR(v));
            rc = each_item(c, sk, v, entry_item);
            break;
        case K_VERSION:
            c->have_version = true;
            rc = set_scalar(c, sk, v);
            break;
        case K_LISTEN:
            rc = each_item(c, sk, v, listen_item);
            break;
        case K_LOGS:
            rc = each_item(c, sk, v, log_item);
            break;
        case K_DNS_SERVERS:
            policy_clear_dns_servers(&c->b->s); /* a list given replaces, as the flag does */
            /* fallthrough */
        case K_PORTS:
        case K_RANGES:
        case K_FWD_LISTEN:
        case K_OPAQUE_PORTS:
        case K_OPAQUE_HOSTS:
        case K_SPLICE_HOSTS:
        case K_URLS:
            rc = each_item(c, sk, v, set_scalar);
            break;
        default:
            rc = set_scalar(c, sk, v);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* 1-based line and column (in characters: UTF-8 continuation bytes do not count) of a byte
 * offset into text. */
static void offset_position(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            ++*col;
        }
    }
}

int policy_load_yaml(struct awf_policy_builder *b, const char *name, const char *yaml, size_t len,
                     char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct ctx c = {.b = b, .doc = &doc, .name = name, .err = err, .errlen = errlen};
    int rc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (parser.error == YAML_READER_ERROR) {
            /* libyaml leaves problem_mark at 0:0 for a byte it cannot decode (not UTF-8, a
             * control character); the offset says where it is. */
            unsigned line, col;
            offset_position(yaml, len, parser.problem_offset, &line, &col);
            policy_errf(err, errlen, name, line, col, "%s (byte 0x%02x)",
                        parser.problem ? parser.problem : "unreadable input",
                        parser.problem_offset < len ? (unsigned char)yaml[parser.problem_offset]
                                                    : (unsigned)parser.problem_value & 0xffu);
            yaml_parser_delete(&parser);
            return AWF_E_POLICY_SYNTAX;
        }
        const char *problem = parser.problem ? parser.problem : "unreadable YAML";
        bool alias = strstr(problem, "alias") || strstr(problem, "anchor") ||
                     (parser.context && strstr(parser.context, "alias"));
        policy_errf(err, errlen, name, (unsigned)parser.problem_mark.line + 1,
                    (unsigned)parser.problem_mark.column + 1, "YAML syntax error: %s%s%s%s",
                    problem, parser.context ? " " : "", parser.context ? parser.context : "",
                    alias ? " (quote entries that start with '*', e.g. \"*.example.com\")" : "");
        rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : AWF_E_POLICY_SYNTAX;
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        policy_errf(err, errlen, name, 1, 1, "empty policy: want at least \"version: 1\"");
        rc = AWF_E_POLICY_INVALID;
    } else if ((rc = walk(&c, root, NULL)) == 0 && !c.have_version) {
        rc = fail_at(&c, root, "missing \"version: 1\"");
    }
    yaml_document_delete(&doc);
    if (rc == 0) {
        /* A second document would be silently ignored: refuse it instead. */
        if (!yaml_parser_load(&parser, &doc)) {
            policy_errf(err, errlen, name, (unsigned)parser.problem_mark.line + 1,
                        (unsigned)parser.problem_mark.column + 1, "YAML syntax error: %s",
                        parser.problem ? parser.problem : "unreadable YAML");
            rc = AWF_E_POLICY_SYNTAX;
        } else {
            if (yaml_document_get_root_node(&doc)) {
                policy_errf(err, errlen, name, (unsigned)doc.start_mark.line + 1,
                            (unsigned)doc.start_mark.column + 1,
                            "more than one YAML document in a policy");
                rc = AWF_E_POLICY_SYNTAX;
            }
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

int awf_policy_load_file(struct awf_policy_builder *b, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = policy_read_file(path, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    rc = policy_load_yaml(b, path, buf, len, err, errlen);
    free(buf);
    return rc;
}

int awf_policy_load_default(struct awf_policy_builder *b, char *err, size_t errlen)
{
    return policy_load_yaml(b, "<default>", default_yaml, sizeof default_yaml - 1, err, errlen);
}
