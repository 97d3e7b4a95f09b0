#ifndef AWF_POLICY_POLICY_INT_H
#define AWF_POLICY_POLICY_INT_H

/* What the policy module's files share; nothing outside policy/ includes this. */

#include "common/error.h"
#include "common/host.h"
#include "policy/policy.h"

#include <netinet/in.h>

#include <regex.h>
#include <stdarg.h>
#include <stdatomic.h>

#define AWF_LABEL_MAX 63

/* ---- entries (entry.c) ---- */

enum entry_kind {
    ENTRY_NAME, /* "github.com": the name and every label-aligned subdomain */
    ENTRY_SUB,  /* "*.github.com": proper subdomains only (fast path of a wildcard) */
    ENTRY_WILD, /* one '*' anywhere else: prefix*suffix */
    ENTRY_IP,   /* a literal address */
};

struct parsed_entry {
    enum entry_kind kind;
    enum awf_scope scope;
    char norm[AWF_HOST_MAX + 8]; /* lower-cased name/pattern, or the canonical address */
    size_t norm_len;
    const char *text; /* the trimmed entry inside the caller's input */
    size_t text_len;
    int family; /* ENTRY_IP: AF_INET or AF_INET6 (v4-mapped IPv6 becomes AF_INET) */
    uint8_t ip[16];
};

/* Parses one entry (trimmed here). Returns 0, or -1 with the reason written to why. */
int policy_entry_parse(const char *s, size_t len, bool block, struct parsed_entry *out, char *why,
                       size_t whylen);

enum host_kind { HOST_INVALID, HOST_NAME, HOST_IP };

struct host {
    char name[AWF_HOST_MAX + 1]; /* lower-cased, trailing dot removed, NUL-terminated */
    size_t len;
    int32_t first_odd; /* index of the first char outside [a-z0-9.-] ('*' cannot stand for it),
                          INT32_MAX if none */
    int family;
    uint8_t ip[16];
};

/* Normalizes a request host (any case, one trailing dot, IPv6 with or without brackets). */
enum host_kind policy_host_parse(const char *s, size_t len, struct host *out);

/* Address parsing shared by entries, CIDRs and listen addresses. Both return 0 or -1.
 * policy_ip_parse: strict text (inet_pton), IPv6 with or without brackets. */
int policy_ip_parse(const char *s, size_t len, int *family, uint8_t ip[16]);
/* v4-mapped IPv6 (::ffff:a.b.c.d) folded to AF_INET, so one address has one spelling. */
void policy_ip_fold(int *family, uint8_t ip[16]);

/* Writes s as a double-quoted string with control bytes escaped (for messages and YAML). */
void policy_quote(char *dst, size_t dstlen, const char *s, size_t len);

/* "source:line:col: " + fmt, or "source: " + fmt when line is 0. */
void policy_errf(char *err, size_t errlen, const char *source, unsigned line, unsigned col,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- the builder (builder.c, settings.c, defaults.c, values.c) ---- */

struct bentry {
    char *text; /* owned */
    char *norm; /* owned */
    enum entry_kind kind;
    enum awf_scope scope;
    bool block;
    int family;
    uint8_t ip[16];
    struct awf_origin origin; /* source interned in the builder */
};

struct squid_rules;

struct awf_policy_builder {
    struct squid_rules *squid; /* from a squid.conf, NULL otherwise; owned (one reference) */
    struct bentry *entries;
    size_t n_entries, cap_entries;
    char **sources; /* interned origin names, owned */
    size_t n_sources, cap_sources;
    struct awf_settings s;
    bool listen_default; /* s.listen still holds the default: the first given replaces it */
    bool logs_default;
    /* Set by the first awf_policy_set() of listen / logs: a flag replaces what the file said
     * (flags override the file), later flags append. */
    bool listen_by_set;
    bool logs_by_set;
    /* Where the value being set now was given ("file:line:col" or the flag), written by whoever
     * calls policy_set_item/policy_add_*: settings whose fault shows only once everything is
     * merged (dns.min_ttl above dns.max_ttl, a log format) keep it for their message. */
    char at[192];
    char min_ttl_at[192], max_ttl_at[192], admin_at[192];
};

/* Sets b->at from a source and a 1-based position (line 0: a flag, no position). */
void policy_builder_at(struct awf_policy_builder *b, const char *source, unsigned line,
                       unsigned col);

/* Reads a whole file (NUL-terminated too); err gets "path: cannot ...". Caller frees *out. */
int policy_read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen);

/* Adds one entry; err gets "where: invalid entry ...". */
int policy_builder_add_entry(struct awf_policy_builder *b, bool block, const char *s, size_t len,
                             const char *source, unsigned line, unsigned col, char *err,
                             size_t errlen);

/* Settings by key: one table for YAML and awf_policy_set. */
enum skind {
    K_SECTION, /* a mapping of further keys */
    K_VERSION,
    K_ALLOW,
    K_BLOCK,
    K_DURATION, /* uint64_t ms */
    K_TTL,      /* uint32_t s */
    K_U32,
    K_BOOL,
    K_STRING,
    K_VERSION_STR,
    K_PORTS,
    K_LISTEN,
    K_DNS_SERVERS,
    K_RANGES,
    K_LOGS,
    K_FWD_LISTEN,   /* dns.forwarder.listen: ADDR:PORT items */
    K_RCODE,        /* int: "refused" 5 or "nxdomain" 3 */
    K_PARENT,       /* "HOST:PORT" (IPv6 in brackets) */
    K_ADMIN,        /* the admin listener's ADDR:PORT */
    K_OPAQUE_PORTS, /* tunnels.opaque_ports: port or range items */
    K_OPAQUE_HOSTS, /* tunnels.opaque_hosts: entry items */
    K_SPLICE_HOSTS, /* ssl_bump.splice: entry items */
    K_URLS,         /* allow_urls: URL patterns (policy/bump.c) */
    K_SIZE,         /* uint32_t bytes: "16MB", "512KB", "1048576" */
};

struct skey {
    const char *key;
    enum skind kind;
    size_t off; /* into struct awf_settings */
};

const struct skey *policy_key_find(const char *key, size_t len);
static inline bool policy_key_is_list(const struct skey *k)
{
    switch (k->kind) {
    case K_ALLOW:
    case K_BLOCK:
    case K_PORTS:
    case K_LISTEN:
    case K_DNS_SERVERS:
    case K_RANGES:
    case K_LOGS:
    case K_FWD_LISTEN:
    case K_OPAQUE_PORTS:
    case K_OPAQUE_HOSTS:
    case K_SPLICE_HOSTS:
    case K_URLS:
        return true;
    default:
        return false;
    }
}

/* Sets a scalar setting, or appends one item to a list setting (listen and logs replace their
 * default on first use). Not for K_SECTION, K_ALLOW, K_BLOCK. why gets the bare reason. */
int policy_set_item(struct awf_policy_builder *b, const struct skey *k, const char *v, size_t len,
                    char *why, size_t whylen);
/* A listen item with its intercept port, for YAML's mapping form. */
int policy_add_listen(struct awf_policy_builder *b, const char *v, size_t len,
                      uint16_t intercept_port, char *why, size_t whylen);
/* A log output from its two parts (YAML's mapping form); format NULL means the default. */
int policy_add_log(struct awf_policy_builder *b, const char *format, size_t flen, const char *path,
                   size_t plen, char *why, size_t whylen);

/* settings.c: the settings' lists, appended to with one growth rule (never realloc them
 * directly); each returns 0 or -ENOMEM. Strings are copied (text[0..len)). */
int policy_push_listen(struct awf_settings *s, const char *text, size_t len,
                       const struct sockaddr_storage *ss, uint16_t intercept_port);
int policy_push_fwd_listen(struct awf_dns_forwarder_settings *f, const char *text, size_t len,
                           const struct sockaddr_storage *ss);
/* where: the origin ("file:line:col", "--flag"), "" for the default output. */
int policy_push_log(struct awf_settings *s, const char *f, size_t flen, const char *p, size_t plen,
                    const char *where);
int policy_push_str(char ***arr, size_t *n, const char *v, size_t len);
int policy_push_range(struct awf_settings *s, const struct awf_cidr *c);
int policy_push_ports(struct awf_settings *s, const struct awf_port_range *r);
int policy_push_opaque_port(struct awf_tunnel_settings *t, const struct awf_port_range *r);
void policy_clear_dns_servers(struct awf_settings *s);
void policy_clear_logs(struct awf_settings *s);
/* Frees everything s owns and zeroes it. */
void policy_settings_free(struct awf_settings *s);

/* defaults.c: s as a builder starts (0 or -ENOMEM); dst as a deep copy of src (0 or -ENOMEM,
 * dst then empty). */
int policy_settings_defaults(struct awf_settings *s);
int policy_settings_copy(struct awf_settings *dst, const struct awf_settings *src);

/* values.c: one parser per value type, shared by YAML, flags and squid.conf. Each returns 0, or
 * -1 with the bare reason in why. */
/* A decimal integer 0..max, no sign or leading zeros; -1 (no reason) otherwise. */
int policy_parse_u64(const char *v, size_t len, uint64_t max, uint64_t *out);
int policy_parse_u32(const char *v, size_t len, uint32_t max, uint32_t *out, char *why,
                     size_t whylen);
/* "500ms", "30s", "2m", "8h"; a bare integer is seconds; at most a year. */
int policy_parse_duration(const char *v, size_t len, uint64_t *ms, char *why, size_t whylen);
/* "true" or "false", any case. */
int policy_parse_bool(const char *v, size_t len, bool *out, char *why, size_t whylen);
/* "443" or "9000-9100". */
int policy_parse_port_range(const char *v, size_t len, struct awf_port_range *r, char *why,
                            size_t whylen);
/* "ADDR:PORT" with a literal IPv4 or bracketed IPv6 address; port 0: any free port. */
int policy_parse_listen(const char *v, size_t len, struct sockaddr_storage *ss, char *why,
                        size_t whylen);
/* "10.0.0.0/8", "fd00::/8", or one address; host bits must be clear. */
int policy_parse_cidr(const char *v, size_t len, struct awf_cidr *c, char *why, size_t whylen);
/* "HOST:PORT" into out (its host replaced, malloc'd). */
int policy_parse_parent(const char *v, size_t len, struct awf_parent *out, char *why,
                        size_t whylen);
/* Bytes with an optional KB/MB/GB suffix (powers of 1024), below 4 GB. */
int policy_parse_size(const char *v, size_t len, uint32_t *out, char *why, size_t whylen);
/* A DNS server as c-ares takes it: IP, IP:PORT, [IPv6]:PORT. */
int policy_check_dns_server(const char *v, size_t len, char *why, size_t whylen);
/* awf_version: 1..32 of [A-Za-z0-9._-] (it lands in a JSON string of every audit line). */
int policy_check_version_str(const char *v, size_t len, char *why, size_t whylen);

/* ---- the compiled policy (compile.c, match.c) ---- */

struct node {
    uint64_t hash;
    const char *key; /* into the entry arena */
    uint32_t len;
    int32_t self[2]; /* allow entry matching this name and its subdomains, per traffic (HTTP,TLS) */
    int32_t sub[2];  /* allow entry matching proper subdomains only ("*.key") */
    int32_t bself, bsub;       /* the same for block entries */
    uint32_t sfx_first, sfx_n; /* wildcards whose suffix ends in ".key" */
    uint32_t pfx_first, pfx_n; /* wildcards whose prefix starts with "key." */
};

struct wild {
    const char *pat; /* normalized "prefix*suffix" */
    uint16_t plen, slen;
    int32_t entry;
};

struct ipent {
    int family;
    uint8_t ip[16];
    int32_t entry;
};

struct awf_policy {
    atomic_uint refs;
    struct squid_rules *squid; /* NULL for YAML/flag policies; one reference */
    struct awf_settings settings;
    struct awf_policy_entry *entries; /* allow then block, source order */
    size_t n_entries, n_allow;
    char *arena; /* every entry's text and normalized form, and the source names */
    struct node *nodes;
    size_t n_nodes;
    uint32_t *table; /* open addressing: node index + 1, 0 = empty */
    size_t table_mask;
    struct wild *wilds;
    uint32_t *wlist; /* wild indexes grouped by bucket */
    uint32_t *loose; /* wildcards with no dot to bucket them by */
    size_t n_wilds, n_loose;
    struct ipent *ips; /* sorted by family, address */
    size_t n_ips;
    uint8_t portmap[65536 / 8];
};

/* FNV-1a over a key's bytes from last to first (see compile.c). */
#define FNV_BASIS UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)
uint64_t policy_rhash(const char *s, size_t len);
const struct node *policy_node_find(const struct awf_policy *p, uint64_t hash, const char *key,
                                    size_t len);
/* match.c: awf_policy_decide() for a policy from YAML and flags (p->squid NULL); decide.c is
 * its only caller. */
void policy_match_decide(const struct awf_policy *p, const char *host, size_t host_len,
                         uint16_t port, enum awf_traffic traffic, struct awf_verdict *out);

/* ---- squid.conf ACLs and access rules (acl.c, rules.c, squid*.c) ---- */

enum acl_type {
    ACL_ALL,
    ACL_DSTDOMAIN,
    ACL_DSTDOM_REGEX,
    ACL_DST, /* raw IP targets, and names by the addresses they resolve to (rule_req.addrs) */
    ACL_SRC,
    ACL_PORT,
    ACL_METHOD,
    ACL_URL_REGEX, /* the request URL, percent-decoded as Squid does (url.c) */
    ACL_AT_STEP,   /* ssl-bump's steps: SslBump1/2/3 (policy/bump.c) */
};

/* An ACL's answer for one request: Squid's match / no match / "needs an asynchronous lookup"
 * (a dst ACL for a name whose addresses are not known yet). */
enum acl_result { ACL_NO = 0, ACL_YES = 1, ACL_NEED_ADDRS = -1 };

/* A dstdom_regex of AWF's shapes, compiled to prefix*suffix (one star; any=false: the star
 * stands for [a-z0-9.-]*, true: for .*) or, without a star, to an exact name. */
struct acl_wild {
    char *prefix, *suffix; /* owned */
    size_t plen, slen;
    bool any;
};

struct acl_regex {
    regex_t re; /* the POSIX fallback: REG_EXTENDED|REG_NOSUB[|REG_ICASE], as Squid compiles */
    char *text; /* owned */
    bool icase; /* compiled with REG_ICASE (a list may switch: "-i a +i B") */
};

struct acl {
    char *name; /* owned */
    enum acl_type type;
    bool icase;
    struct awf_origin origin; /* first definition */
    char **exact, **dot;      /* dstdomain: sorted lower-case names; dot: ".x" entries as "x" */
    size_t n_exact, n_dot;    /* (compiled regexes add to both) */
    struct acl_wild *wilds;   /* compiled regex forms */
    size_t n_wilds;
    struct acl_regex *res; /* everything else */
    size_t n_res;
    struct awf_cidr *cidrs; /* dst, src */
    size_t n_cidrs;
    struct awf_port_range *ports; /* port */
    size_t n_ports;
    uint8_t steps;  /* at_step: bit n for SslBumpn */
    char **methods; /* method, as written (Squid compares case-sensitively) */
    size_t n_methods;
};

struct rule_term {
    uint32_t acl;
    bool neg;
};

struct rule {
    struct awf_policy_rule pub; /* pub.text owned */
    uint32_t first, n;          /* terms[first .. first+n) */
};

struct rule_list {
    struct rule *v;
    size_t n;
};

/* Immutable once loaded; shared by the builder and the policies built from it. */
struct squid_rules {
    atomic_uint refs;
    char *source; /* the file name every origin below points to; owned */
    struct acl *acls;
    size_t n_acls;
    struct rule_term *terms;
    size_t n_terms;
    struct rule_list http_access, always_direct, never_direct;
    struct rule_list log_conds; /* access_log conditions; settings.logs[i].cond is index + 1 */
    struct rule_list ssl_bump;  /* splice|bump|terminate rules (peek and stare are implied) */
    uint8_t *bump_actions;      /* enum awf_bump_action of each ssl_bump rule; owned */
    char **notices; /* "FILE:LINE: what is ignored and why", owned (awf_policy_notices) */
    size_t n_notices;
    bool has_url_regex;
};

/* A request as the rules see it. */
struct rule_req {
    const struct host *h;
    enum host_kind kind;
    char ipname[64]; /* kind == HOST_IP: the canonical text regexes and dstdomain see */
    uint16_t port;
    const char *method;
    bool have_client;
    int cfamily;
    uint8_t cip[16];
    const char *url; /* url_regex: percent-decoded, NUL-terminated; NULL: none wanted */
    char *url_heap;  /* url when it did not fit url_small; freed by rules.c */
    char url_small[512];
    const void *addrs; /* as awf_policy_req's */
    size_t addr_size, n_addrs;
    bool addrs_known;
    uint8_t bump_step; /* at_step: the SslBump steps being decided (bit n); 0: none */
};

struct squid_rules *policy_squid_ref(struct squid_rules *r);
void policy_squid_unref(struct squid_rules *r);

/* acl.c: one ACL's values; why gets the bare reason. */
/* sq and line: where dstdomain values that match nothing are reported (sq NULL: not). */
int policy_acl_add_values(struct acl *a, char **vals, size_t n, struct squid_rules *sq,
                          unsigned line, char *why, size_t whylen);
enum acl_result policy_acl_match(const struct acl *a, const struct rule_req *rq);
/* squidnotes.c: why a directive is accepted and not acted on, or NULL if it is not one of
 * those. Adds a notice to sq ("FILE:LINE: " + text); -ENOMEM or 0. */
const char *policy_squid_ignored(const char *directive);
int policy_squid_notice(struct squid_rules *sq, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reading a squid.conf (squidconf.c → squidset.c → squidacl.c, squidnotes.c): one load's state,
 * and one logical line cut into words. */
#define SQUID_MAX_TOKENS 512

struct squid_fmt {
    char *name, *format; /* owned */
};

struct squid_ctx {
    struct awf_policy_builder *b;
    struct squid_rules *sq;
    const char *name; /* the file, for messages */
    unsigned line;
    char *err;
    size_t errlen;
    struct squid_fmt *fmts; /* logformat definitions so far */
    size_t n_fmts;
    bool have_parent;
};

struct squid_line {
    char *tok[SQUID_MAX_TOKENS]; /* into a scratch copy of the line, NUL-terminated */
    size_t n;
    const char *rest1; /* the raw text after the first argument (logformat's format) */
};

/* squidnotes.c: writes "FILE:LINE: " + the message to c->err and returns code; the same for
 * -ENOMEM ("out of memory"). */
int policy_squid_errf(struct squid_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int policy_squid_oom(struct squid_ctx *c);

/* squidset.c: one directive line, whichever it is (an error through policy_squid_errf). */
int policy_squid_directive(struct squid_ctx *c, struct squid_line *l);

/* squidacl.c: Squid's predefined ACLs (all, localhost, to_localhost, ...), added first; the
 * acl, http_access/always_direct/never_direct and ssl_bump directives; a rule of "[!]ACL ..."
 * from l->tok[from..] appended to list (text: how it is shown); whether s may name an ACL or a
 * logformat. */
int policy_squid_builtin_acls(struct squid_ctx *c);
int policy_squid_acl(struct squid_ctx *c, struct squid_line *l);
int policy_squid_access(struct squid_ctx *c, struct squid_line *l);
int policy_squid_ssl_bump(struct squid_ctx *c, struct squid_line *l);
int policy_squid_add_rule(struct squid_ctx *c, struct rule_list *list, bool allow,
                          struct squid_line *l, size_t from, const char *text);
bool policy_squid_name_ok(const char *s);

/* url.c: Squid's rfc1738_unescape() of src[0..len) into dst (at least len + 1 bytes): "%XX"
 * with a value from 1 to 255 becomes that byte, "%%" becomes "%", anything else stays.
 * Returns the decoded length; dst is NUL-terminated. */
size_t policy_url_unescape(char *dst, const char *src, size_t len);
void policy_acl_free(struct acl *a);

/* rules.c */
/* The squid.conf halves of decide.c's questions (awf_policy_decide_req, _log_wanted for output
 * condition cond (1-based, in range), _via_parent with a parent set, _bump_action with ssl_bump
 * rules); the same contracts as theirs in policy.h. Only decide.c calls them. */
void policy_rules_decide(const struct squid_rules *sq, const struct awf_policy_req *rq,
                         struct awf_verdict *out);
bool policy_rules_log_wanted(const struct squid_rules *sq, uint32_t cond,
                             const struct awf_policy_req *rq);
bool policy_rules_via_parent(const struct squid_rules *sq, const struct awf_policy_req *rq);
enum awf_bump_action policy_rules_bump_action(const struct squid_rules *sq,
                                              const struct awf_policy_req *rq);

/* yaml.c: awf_policy_load_file() for YAML text already in memory (the embedded default, the
 * tests); name is used in messages (e.g. "<default>"). */
int policy_load_yaml(struct awf_policy_builder *b, const char *name, const char *yaml, size_t len,
                     char *err, size_t errlen);

/* addr.c: awf_policy_addr_check() for an address from DNS (AWF_ADDR_DNS); the tests call it. */
bool policy_addr_allowed(const struct awf_policy *p, const struct sockaddr *sa, const char **why);

/* Whether s is text that awf_policy_print() can write and libyaml read back: well-formed UTF-8
 * of YAML's printable characters (tab and CR allowed; the printer escapes them). */
bool policy_yaml_printable(const char *s);

/* A NUL-terminated copy of s[0..n), bytes as they are; NULL when out of memory. */
char *policy_strndup(const char *s, size_t n);

/* policy/bump.c: ssl-bump settings. A URL pattern checked and normalized (scheme and authority
 * lower-cased, the default port dropped, "/" for an empty path) into *out (malloc'd), or -1 with
 * why. Copy and free of struct awf_bump_settings. */
int policy_url_pattern(const char *v, size_t len, char **out, char *why, size_t whylen);
int policy_bump_copy(struct awf_bump_settings *d, const struct awf_bump_settings *s);
void policy_bump_free(struct awf_bump_settings *s);
/* policy/opaque.c: whether host matches one of n allow-list entries kept as written (the
 * entries are parsed on each call: for short lists asked once per tunnel). */
bool policy_host_listed(char *const *list, size_t n, const char *host, size_t host_len);
/* policy/squidconf.c: awf_policy_load_squid_conf for text in memory (its tests and fuzz target);
 * name is used in messages. */
int policy_load_squid_text(struct awf_policy_builder *b, const char *name, const char *text,
                           size_t len, char *err, size_t errlen);

#endif
