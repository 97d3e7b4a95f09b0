/* The logformat compiler: a Squid `logformat` specification becomes an array of ops once, at
 * configuration time. Syntax of one code (Squid's):
 *
 *     % [encoding] [-] [0] [width_min] [.width_max] [{arg}] code
 *
 * encoding is one of " [ # ' / (see logformat-int.h for what each does here). */

#include "log/log.h"
#include "log/logformat-int.h"

#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AWF_VERSION_STRING
#define AWF_VERSION_STRING "0"
#endif

/* A width above this is a typo, and would let one line grow without bound. */
#define LF_WIDTH_LIMIT 4096

enum lf_argpolicy { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

struct lf_codedef {
    const char *name;
    enum lf_code code;
    enum lf_argpolicy arg;
};

/* Longest names first: matching takes the first entry that is a prefix of the input, so ">Hs"
 * must be tried before ">h" could ever be, and ">la" before ">a" is irrelevant but harmless. */
static const struct lf_codedef codes[] = {
    {">Hs", LF_STATUS, ARG_NONE},
    {"<Hs", LF_UP_STATUS, ARG_NONE},
    {">rd", LF_DOMAIN, ARG_NONE},
    {">rm", LF_METHOD, ARG_NONE},
    {">ru", LF_URL, ARG_NONE},
    {">rv", LF_CLI_VERSION, ARG_NONE},
    {">la", LF_CLI_LOCAL_ADDR, ARG_NONE},
    {">lp", LF_CLI_LOCAL_PORT, ARG_NONE},
    {"<st", LF_BYTES_TO_CLI, ARG_NONE},
    {">st", LF_BYTES_FROM_CLI, ARG_NONE},
    {"ts", LF_TS, ARG_NONE},
    {"tu", LF_TU, ARG_NONE},
    {"tr", LF_TR, ARG_NONE},
    {"tl", LF_TL, ARG_OPTIONAL},
    {"tg", LF_TG, ARG_OPTIONAL},
    {">a", LF_CLIENT_ADDR, ARG_NONE},
    {">p", LF_CLIENT_PORT, ARG_NONE},
    {"<a", LF_SERVER_ADDR, ARG_NONE},
    {"<p", LF_SERVER_PORT, ARG_NONE},
    {"la", LF_LOCAL_ADDR, ARG_NONE},
    {"lp", LF_LOCAL_PORT, ARG_NONE},
    {">h", LF_REQ_HEADER, ARG_REQUIRED},
    {"<h", LF_REP_HEADER, ARG_REQUIRED},
    {"rv", LF_VERSION, ARG_NONE},
    {"rm", LF_METHOD, ARG_NONE},
    {"ru", LF_URL, ARG_NONE},
    {"Ss", LF_TAG, ARG_NONE},
    {"Sh", LF_HIER, ARG_NONE},
    {"un", LF_USER, ARG_NONE},
    {"mt", LF_MIME, ARG_NONE},
};

struct builtin {
    const char *name;
    const char *fmt;
};

/* SPEC §6, byte for byte. */
static const struct builtin builtins[] = {
    {"firewall_detailed", "%ts.%03tu %>a:%>p %{Host}>h %<a:%<p %rv %rm %>Hs %Ss:%Sh %ru "
                          "\"%{User-Agent}>h\""},
    {"audit_jsonl",
     "{\"_schema\":\"audit/v${AWF_VERSION}\",\"timestamp\":\"%{%Y-%m-%dT%H:%M:%S}tg.%03tuZ\","
     "\"event\":\"http_access\",\"client\":\"%>a\",\"host\":\"%{Host}>h\",\"dest\":\"%<a:%<p\","
     "\"method\":\"%rm\",\"status\":%>Hs,\"decision\":\"%Ss\",\"url\":\"%ru\"}"},
    {"squid", "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt"},
};

static const char version_var[] = "${AWF_VERSION}";

struct compiler {
    struct awf_log_format *f;
    size_t ops_cap;
    size_t pool_cap;
    bool in_literal; /* the last op is a literal still being extended */
    char *err;
    size_t errlen;
};

static int fail(struct compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct compiler *c, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return AWF_E_LOGFORMAT;
}

static int pool_reserve(struct compiler *c, size_t n)
{
    struct awf_log_format *f = c->f;
    if (f->pool_len + n <= c->pool_cap)
        return 0;
    size_t cap = c->pool_cap ? c->pool_cap : 64;
    while (cap < f->pool_len + n)
        cap *= 2;
    char *p = realloc(f->pool, cap);
    if (!p)
        return -ENOMEM;
    f->pool = p;
    c->pool_cap = cap;
    return 0;
}

static struct lf_op *new_op(struct compiler *c)
{
    struct awf_log_format *f = c->f;
    if (f->nops == c->ops_cap) {
        size_t cap = c->ops_cap ? c->ops_cap * 2 : 16;
        struct lf_op *ops = realloc(f->ops, cap * sizeof(*ops));
        if (!ops)
            return NULL;
        f->ops = ops;
        c->ops_cap = cap;
    }
    struct lf_op *op = &f->ops[f->nops++];
    memset(op, 0, sizeof(*op));
    return op;
}

/* Appends bytes to the current literal op, opening one if needed. The pool keeps a NUL after
 * the run, rewritten as the run grows. */
static int add_literal(struct compiler *c, const char *s, size_t n)
{
    struct awf_log_format *f = c->f;
    if (n == 0)
        return 0;
    if (pool_reserve(c, n + 1) < 0)
        return -ENOMEM;
    if (!c->in_literal) {
        struct lf_op *op = new_op(c);
        if (!op)
            return -ENOMEM;
        op->code = LF_LITERAL;
        op->arg = f->pool_len;
        op->has_arg = true;
        c->in_literal = true;
    } else {
        f->pool_len--; /* overwrite the run's NUL */
    }
    memcpy(f->pool + f->pool_len, s, n);
    f->pool_len += n;
    f->pool[f->pool_len++] = '\0';
    f->ops[f->nops - 1].arg_len += n;
    return 0;
}

/* The version goes into a literal; in a JSON format it is escaped like any value would be. */
static int add_version(struct compiler *c, const char *v)
{
    for (; *v; v++) {
        char tmp[8];
        unsigned char ch = (unsigned char)*v;
        int rc;
        if (c->f->json && (ch == '"' || ch == '\\' || ch < 0x20)) {
            int n = snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
            rc = add_literal(c, tmp, (size_t)n);
        } else if (ch < 0x20 || ch == 0x7f) {
            continue; /* never a line break from configuration either */
        } else {
            rc = add_literal(c, v, 1);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool parse_uint(const char *fmt, size_t *i, uint32_t *out)
{
    uint64_t v = 0;
    bool any = false;
    while (isdigit((unsigned char)fmt[*i])) {
        v = v * 10 + (uint64_t)(fmt[*i] - '0');
        if (v > LF_WIDTH_LIMIT)
            v = LF_WIDTH_LIMIT + 1; /* saturate; reported by the caller */
        (*i)++;
        any = true;
    }
    *out = (uint32_t)v;
    return any;
}

/* Parses one code starting at fmt[*i] == '%'. */
static int parse_code(struct compiler *c, const char *fmt, size_t *i)
{
    size_t start = *i;
    size_t p = start + 1;
    enum lf_esc esc = LF_ESC_URL;
    bool explicit_esc = true;
    bool left = false, zero = false;
    uint32_t wmin = 0, wmax = 0;
    size_t arg_at = 0, arg_len = 0;
    bool has_arg = false;

    switch (fmt[p]) {
    case '"':
    case '/':
        esc = LF_ESC_QUOTED;
        p++;
        break;
    case '[':
        esc = LF_ESC_BRACKET;
        p++;
        break;
    case '#':
        esc = LF_ESC_URL;
        p++;
        break;
    case '\'':
        esc = LF_ESC_RAW;
        p++;
        break;
    default:
        explicit_esc = false;
        break;
    }
    if (fmt[p] == '-') {
        left = true;
        p++;
    }
    if (fmt[p] == '0') {
        zero = true;
        p++;
    }
    parse_uint(fmt, &p, &wmin);
    if (fmt[p] == '.') {
        p++;
        if (!parse_uint(fmt, &p, &wmax) || wmax == 0)
            return fail(c, "character %zu: '.' must be followed by a maximum width", start + 1);
    }
    if (wmin > LF_WIDTH_LIMIT || wmax > LF_WIDTH_LIMIT)
        return fail(c, "character %zu: width over %d", start + 1, LF_WIDTH_LIMIT);
    if (fmt[p] == '{') {
        const char *end = strchr(fmt + p + 1, '}');
        if (!end)
            return fail(c, "character %zu: unterminated '{'", start + 1);
        arg_at = p + 1;
        arg_len = (size_t)(end - (fmt + p + 1));
        has_arg = true;
        p = (size_t)(end - fmt) + 1;
    }

    const struct lf_codedef *def = NULL;
    for (size_t k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
        size_t n = strlen(codes[k].name);
        if (strncmp(fmt + p, codes[k].name, n) == 0) {
            def = &codes[k];
            break;
        }
    }
    if (!def) {
        /* Name what follows the modifiers: up to 3 printable bytes, enough to see the typo. */
        size_t n = 0;
        while (n < 3 && fmt[p + n] && isgraph((unsigned char)fmt[p + n]) && fmt[p + n] != '%')
            n++;
        return fail(c, "character %zu: unknown code \"%%%.*s\"", start + 1, (int)n, fmt + p);
    }
    if (def->arg == ARG_REQUIRED && (!has_arg || arg_len == 0))
        return fail(c, "character %zu: code \"%s\" needs a {name}", start + 1, def->name);
    if (def->arg == ARG_NONE && has_arg)
        return fail(c, "character %zu: code \"%s\" takes no {argument}", start + 1, def->name);
    p += strlen(def->name);

    struct lf_op *op = new_op(c);
    if (!op)
        return -ENOMEM;
    c->in_literal = false;
    op->code = def->code;
    op->left = left;
    op->zero = zero;
    op->width_min = wmin;
    op->width_max = wmax;
    /* Quoting is decided here, once: JSON formats escape for JSON; otherwise an explicit
     * encoding wins, else a code written between double quotes gets quoted-string escaping
     * (so "%{User-Agent}>h" stays one field), else %XX escaping keeps it one token. */
    if (c->f->json)
        op->esc = LF_ESC_JSON;
    else if (explicit_esc)
        op->esc = esc;
    else if (start > 0 && fmt[start - 1] == '"' && fmt[p] == '"')
        op->esc = LF_ESC_QUOTED;
    else if (def->code == LF_REQ_HEADER || def->code == LF_REP_HEADER || def->code == LF_DOMAIN ||
             strcmp(def->name, ">ru") == 0)
        op->esc = LF_ESC_UNSAFE; /* Squid escapes these (not %ru): "[::1]" logs "%5B::1%5D" */
    else
        op->esc = LF_ESC_URL;
    if (has_arg && arg_len > 0) {
        if (pool_reserve(c, arg_len + 1) < 0)
            return -ENOMEM;
        op = &c->f->ops[c->f->nops - 1];
        op->arg = c->f->pool_len;
        op->arg_len = arg_len;
        op->has_arg = true;
        memcpy(c->f->pool + c->f->pool_len, fmt + arg_at, arg_len);
        c->f->pool_len += arg_len;
        c->f->pool[c->f->pool_len++] = '\0';
    }
    *i = p;
    return 0;
}

static int compile(struct compiler *c, const char *fmt, const char *version)
{
    size_t i = 0;
    while (fmt[i]) {
        int rc;
        if (fmt[i] == '%' && fmt[i + 1] == '%') {
            rc = add_literal(c, "%", 1);
            i += 2;
        } else if (fmt[i] == '%') {
            rc = parse_code(c, fmt, &i);
        } else if (strncmp(fmt + i, version_var, sizeof(version_var) - 1) == 0) {
            rc = add_version(c, version);
            i += sizeof(version_var) - 1;
        } else {
            size_t n = 1;
            while (fmt[i + n] && fmt[i + n] != '%' && fmt[i + n] != '$')
                n++;
            rc = add_literal(c, fmt + i, n);
            i += n;
        }
        if (rc == -ENOMEM)
            return fail(c, "out of memory"), -ENOMEM;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int awf_log_format_compile(const char *fmt, const char *awf_version, struct awf_log_format **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!fmt)
        fmt = "";
    for (size_t k = 0; k < sizeof(builtins) / sizeof(builtins[0]); k++) {
        if (strcmp(fmt, builtins[k].name) == 0) {
            fmt = builtins[k].fmt;
            break;
        }
    }

    struct awf_log_format *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    struct compiler c = {.f = f, .err = err, .errlen = errlen};
    const char *s = fmt;
    while (*s == ' ' || *s == '\t')
        s++;
    f->json = *s == '{';
    int rc = compile(&c, fmt, awf_version ? awf_version : AWF_VERSION_STRING);
    if (rc < 0) {
        awf_log_format_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void awf_log_format_free(struct awf_log_format *f)
{
    if (!f)
        return;
    free(f->ops);
    free(f->pool);
    free(f);
}
