#ifndef AWF_POLICY_POLICY_H
#define AWF_POLICY_POLICY_H

/* The policy: what may leave, and every setting the proxy runs with.
 *
 * Built in two phases. A builder collects sources (YAML files, AWF's command-line forms, single
 * settings by key) and reports every bad input with where it came from. awf_policy_build() then
 * compiles an immutable, reference-counted policy that any number of threads may read; a reload
 * builds a new one and swaps the pointer, and connections keep the one they took a reference to.
 *
 * Pure: no I/O beyond reading the files it is given, no libuv. SPEC.md §3 is the semantics. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct awf_policy;
struct awf_policy_builder;

/* Error messages are written as "WHERE: reason" into a caller buffer, WHERE being
 * "file:line:col" for files or the flag ("--allow-domains") for command-line input. */
#define AWF_POLICY_ERRLEN 512

/* What an allow entry applies to: `http://` entries to plain HTTP, `https://` entries to CONNECT
 * and TLS, unprefixed entries to both. */
enum awf_scope {
    AWF_SCOPE_HTTP = 1,
    AWF_SCOPE_TLS = 2,
    AWF_SCOPE_BOTH = 3,
};

/* What kind of request is being decided. */
enum awf_traffic {
    AWF_TRAFFIC_HTTP = 1, /* plain HTTP, explicit forward or intercepted */
    AWF_TRAFFIC_TLS = 2,  /* CONNECT, intercepted TLS, SNI inside a tunnel */
};

/* Where an entry or setting came from, for messages and `explain`. */
struct awf_origin {
    const char *source; /* file path, or flag name such as "--allow-domains"; owned by policy */
    unsigned line;      /* 1-based; 0 for flags */
    unsigned col;       /* 1-based; 0 for flags */
};

struct awf_policy_entry {
    const char *text;       /* as written, trimmed */
    const char *normalized; /* lower-cased, prefix and trailing dot/slash removed */
    enum awf_scope scope;   /* always BOTH for block entries */
    bool block;
    struct awf_origin origin;
};

struct awf_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; first 4 bytes for AF_INET */
    uint8_t prefix;   /* 0..32 or 0..128 */
};

struct awf_port_range {
    uint16_t lo, hi;
};

struct awf_listen {
    char *text;                   /* "127.0.0.1:3128", "[::]:3128" */
    struct sockaddr_storage addr; /* parsed */
    uint16_t intercept_port;      /* 0: any traffic; else intercepts standing for this port */
};

struct awf_log_output {
    char *format;  /* "firewall_detailed", "audit_jsonl", "squid", or a Squid logformat string */
    char *path;    /* file path, or "-" for stdout */
    uint32_t cond; /* 0: every transaction; else a squid.conf access_log ACL condition, tested
                      with awf_policy_log_wanted() */
    char *where;   /* where it was given ("my.yml:7:15", "--access-log", "squid.conf:12"), for
                      messages about the format; "" for the default output */
};

/* A parent proxy (squid.conf `cache_peer HOST parent PORT ...`, YAML `parent`): requests for
 * which awf_policy_via_parent() is true go through it (CONNECT to it for tunnels, absolute-form
 * for plain HTTP). The parent is configuration, not a destination: the proxy dials it without
 * the private-address check. */
struct awf_parent {
    char *host;    /* NULL: no parent; a name or a literal address */
    uint16_t port; /* 1..65535 */
};

/* All durations in milliseconds. Defaults are SPEC.md §7. */
struct awf_timeouts {
    uint64_t connect_ms;         /* 30 s */
    uint64_t read_idle_ms;       /* 30 min */
    uint64_t request_headers_ms; /* 2 min */
    uint64_t client_idle_ms;     /* 2 min, keep-alive client between requests */
    uint64_t upstream_idle_ms;   /* 2 min, pooled upstream connection */
    uint64_t lifetime_ms;        /* 8 h */
    uint64_t client_hello_ms;    /* 10 s */
    uint64_t shutdown_drain_ms;  /* 0: exit at once on SIGTERM */
    uint64_t dns_ms;             /* 5 s, one lookup */
};

struct awf_limits {
    uint32_t max_connections; /* 0: unlimited (bounded by the open-file limit) */
    uint32_t max_tunnels;     /* 0: unlimited */
    uint32_t header_bytes;    /* 65536 */
    uint32_t header_count;    /* 100 */
};

/* The DNS forwarder for agents (dns/forwarder.h): off while listen is empty. */
struct awf_dns_forwarder_settings {
    struct awf_listen *listen; /* UDP and TCP on each; intercept_port unused; default none */
    size_t n_listen;
    int deny_rcode;   /* for names the policy denies: 5 REFUSED (default) or 3 NXDOMAIN */
    char *log;        /* one line per query: path, "-" stdout, "stderr" (default) */
    uint64_t idle_ms; /* TCP connection without a query: 10 s */
};

struct awf_dns_settings {
    char **servers; /* "1.1.1.1", "[::1]:5353", "127.0.0.1:5353"; none: the system's */
    size_t n_servers;
    char *hosts_file;        /* default "/etc/hosts"; "" for none */
    uint32_t min_ttl_s;      /* 0 */
    uint32_t max_ttl_s;      /* 3600 */
    uint32_t negative_ttl_s; /* 5 */
    struct awf_dns_forwarder_settings forwarder;
};

/* What a CONNECT tunnel may carry besides a TLS ClientHello, an HTTP/1.x request or an h2c
 * preface (tunnel bytes are checked with tls.sni_in_connect): nothing, unless the tunnel's port
 * or CONNECT host is listed here. */
struct awf_tunnel_settings {
    struct awf_port_range *opaque_ports; /* "5432", "9000-9100" */
    size_t n_opaque_ports;
    char **opaque_hosts; /* entries as in allow lists ("db.example.com", "*.internal.test") */
    size_t n_opaque_hosts;
};

struct awf_tls_settings {
    bool sni_in_connect; /* true: check the ClientHello inside CONNECT tunnels */
    bool deny_ech;       /* false */
    bool alert_on_deny;  /* false: close silently */
};

/* ssl-bump (HTTPS inspection, README "HTTPS inspection"): TLS to allowed names is terminated
 * with a leaf minted from the CA, the upstream is verified, and each decrypted request is
 * decided by its URL. */
struct awf_bump_settings {
    bool enabled;              /* ssl_bump.enabled, --ssl-bump; false */
    char *ca_cert, *ca_key;    /* PEM files; both required when enabled */
    char *upstream_ca_file;    /* extra CAs trusted for upstreams (--ca-file); NULL: none */
    uint32_t cert_cache_bytes; /* the minted-leaf LRU's bound; 16 MB */
    char **allow_urls;         /* normalized patterns (allow_urls, --allow-urls); none: any */
    size_t n_allow_urls;
    char **splice; /* hosts never bumped (ssl_bump.splice, --ssl-bump-splice): allow-list
                    * entries ("api.example.com", "*.pinned.test"), as written */
    size_t n_splice;
};

/* Everything but the domain lists. Visible so the proxy reads it without accessors; owned by
 * the policy (or builder) it came from, never modified after awf_policy_build(). */
struct awf_settings {
    struct awf_listen *listen; /* default 127.0.0.1:3128 */
    size_t n_listen;
    struct awf_port_range *ports; /* extra ports beyond 80 and 443 */
    size_t n_ports;
    struct awf_cidr *allow_ranges; /* allowed past the private-address check */
    size_t n_allow_ranges;
    struct awf_log_output *logs; /* default: firewall_detailed to stdout */
    size_t n_logs;
    bool strip_query;  /* true: query strings are logged as "?" */
    char *awf_version; /* for audit_jsonl's "_schema"; default "1" */
    unsigned threads;  /* event-loop threads; 0 = number of cores */
    struct awf_dns_settings dns;
    struct awf_tls_settings tls;
    struct awf_tunnel_settings tunnels;
    struct awf_timeouts timeouts;
    struct awf_limits limits;
    char *pid_file;  /* NULL: none; the runner writes its pid there (squid.conf pid_filename) */
    char *cache_log; /* NULL: diagnostics to stderr; else appended to this file (cache_log) */
    struct awf_parent parent;
    /* The admin listener (/metrics, /healthz, /status); text NULL: none (the default). Never
     * one of the proxy's or the DNS forwarder's addresses (awf_policy_build refuses that). */
    struct awf_listen admin;
    struct awf_bump_settings ssl_bump;
};

/* ---- building ---- */

struct awf_policy_builder *awf_policy_builder_create(void);
void awf_policy_builder_destroy(struct awf_policy_builder *b);

/* Reads a version-1 YAML policy file and merges it into the builder (policy/README.md is the
 * schema). Unknown keys and invalid entries are errors (err gets "file:line:col: reason").
 * Returns 0, AWF_E_POLICY_SYNTAX (not YAML), AWF_E_POLICY_INVALID, or -errno (unreadable file).
 * On error the builder may hold part of the input: destroy it rather than build it. */
int awf_policy_load_file(struct awf_policy_builder *b, const char *path, char *err, size_t errlen);

/* The embedded default policy (SPEC: GitHub's own domains, listen 127.0.0.1:3128). */
int awf_policy_load_default(struct awf_policy_builder *b, char *err, size_t errlen);

/* AWF's list forms. list: entries separated by commas; each is trimmed, empty ones are skipped
 * (as AWF does), whitespace inside one is an error. origin names the flag for messages and
 * `explain` (NULL: "--allow-domains" or "--block-domains"). block selects the block list. */
int awf_policy_add_list(struct awf_policy_builder *b, bool block, const char *list,
                        const char *origin, char *err, size_t errlen);
/* A file of entries: one per line or comma separated, `#` starts a comment to the end of the
 * line. Errors and origins are "path:line:col". */
int awf_policy_add_list_file(struct awf_policy_builder *b, bool block, const char *path, char *err,
                             size_t errlen);

/* Sets one setting by its YAML key path, the value as a string as a flag would give it. Used by
 * the command line so flags and files share one parser per type. Keys (all of the YAML schema's
 * scalar and list settings): "ports" ("8080,9000-9100", appends), "listen" (comma list, appends;
 * the first call replaces the default), "dns.servers" (comma list, replaces), "dns.hosts_file",
 * "addresses.allow" (CIDR list, appends), "logs" or "logs.outputs" ("[FORMAT:]PATH", one output,
 * appends; the first call replaces the default), "logs.strip_query", "timeouts.<name>" ("30s",
 * "2m", "500ms", "8h"; a bare number is seconds), "limits.<name>", "threads", "tls.<name>"
 * ("true"/"false"), "awf_version" or "logs.awf_version", "dns.min_ttl|max_ttl|negative_ttl",
 * "allow"/"block" (comma lists, as awf_policy_add_list), "version" ("1"),
 * "dns.forwarder.listen" (comma list, appends), "dns.forwarder.deny_rcode" ("refused" or
 * "nxdomain"), "dns.forwarder.log" (path, "-" or "stderr"), "dns.forwarder.idle" (duration),
 * "admin" (ADDR:PORT). origin names the flag in messages (NULL: "--set KEY"); err gets "origin:
 * reason". Returns 0, or AWF_E_USAGE for an unknown key, AWF_E_POLICY_INVALID for a bad value. */
int awf_policy_set(struct awf_policy_builder *b, const char *key, const char *value,
                   const char *origin, char *err, size_t errlen);

/* Compiles what the builder holds. The builder stays usable and must still be destroyed; the
 * policy owns copies of everything (entries, origins, settings). Returns NULL on error (err
 * says why: dns.min_ttl above dns.max_ttl, a listen address twice, out of memory). The result
 * has one reference. */
struct awf_policy *awf_policy_build(struct awf_policy_builder *b, char *err, size_t errlen);

/* ---- using ---- */

/* Reference counting is atomic: take a reference per connection, release when it ends. */
struct awf_policy *awf_policy_ref(struct awf_policy *p);
void awf_policy_unref(struct awf_policy *p);

const struct awf_settings *awf_policy_settings(const struct awf_policy *p);

enum awf_reason {
    AWF_REASON_ALLOWED = 0,  /* an allow entry matched */
    AWF_REASON_ALLOWED_IP,   /* raw IP target listed in the allow list */
    AWF_REASON_BLOCKED,      /* a block entry matched */
    AWF_REASON_NOT_ALLOWED,  /* no allow entry matched */
    AWF_REASON_WRONG_SCOPE,  /* an entry matched the name but is for the other protocol */
    AWF_REASON_EMPTY_ALLOW,  /* the allow list is empty */
    AWF_REASON_RAW_IP,       /* raw IP target not allowlisted */
    AWF_REASON_PORT,         /* destination port not allowed */
    AWF_REASON_INVALID_HOST, /* the host is not a valid name */
};
/* squid.conf policies reuse these reasons, with verdict.rule naming the rule: allowed (an
 * `http_access allow` rule matched, or none did and the last one denies), blocked (a deny rule
 * matched), not_allowed (no rule matched and the last one allows, or there are no rules),
 * raw_ip, invalid_host. */
/* "allowed", "blocked", "not_allowed", ... stable tokens for logs and tests. */
const char *awf_policy_reason_name(enum awf_reason r);

/* One squid.conf access rule (`http_access allow CONNECT allowed_https_only`). */
struct awf_policy_rule {
    const char *text; /* "allow CONNECT allowed_https_only", as written after the directive */
    bool allow;
    struct awf_origin origin; /* file and line; col 1 */
};

struct awf_verdict {
    bool allow;
    /* squid.conf: the rules reached a `dst` ACL for a host name before any rule decided, so
     * the answer depends on the addresses the name resolves to (as in Squid, which looks the
     * name up at that point). allow is false; resolve the name and decide again with
     * awf_policy_req.addrs. Never set when addrs_known is true, nor for YAML policies. */
    bool need_addrs;
    enum awf_reason reason;
    const struct awf_policy_entry *entry; /* the deciding entry, NULL if none; policy-owned */
    const struct awf_policy_rule *rule;   /* squid.conf: the deciding rule (for implicit
                                             reasons the last rule), else NULL; policy-owned */
};

/* Decides host:port for the given traffic (for squid.conf policies: no client, no URL path, no
 * resolution, so dst ACLs match raw IP targets only). host need not be NUL-terminated, may have any
 * case and one trailing dot, and may be an IP (IPv6 with or without brackets). Lock-free, no
 * allocation; O(labels in host), not O(entries).
 * Reasons are checked in this order: invalid_host, blocked, port, empty_allow, then allowed /
 * allowed_ip, wrong_scope, not_allowed / raw_ip. When several entries match, the most specific
 * is reported (entries keyed by a longer suffix of the host first, then source order). */
void awf_policy_decide(const struct awf_policy *p, const char *host, size_t host_len, uint16_t port,
                       enum awf_traffic traffic, struct awf_verdict *out);

/* What the proxy knows about a request, for awf_policy_decide_req() and friends. */
struct awf_policy_req {
    const char *host; /* as awf_policy_decide() takes it */
    size_t host_len;
    uint16_t port;
    enum awf_traffic traffic;
    const struct sockaddr *client; /* the client's address; NULL: unknown (see below) */
    const char *method; /* "GET", "CONNECT", ...; NULL: CONNECT for TLS traffic, GET for HTTP */
    /* url_regex ACLs: the request URL as awf_policy_request_url() writes it, not yet
     * percent-decoded (the policy decodes it as Squid does before matching): "host:port" for
     * CONNECT and TLS, "http://host[:port]/path?query" for plain HTTP, "https://host/path" for
     * a request decrypted inside a tunnel. NULL: built from host and port, with path "/" for
     * HTTP. Borrowed for the call. */
    const char *url;
    size_t url_len;
    /* dst ACLs on a host name: the addresses the name resolved to (ports ignored), n_addrs of
     * them addr_size bytes apart (struct sockaddr_storage[], or any array of socket address
     * unions). addrs_known false: not looked up, so a rule reaching a dst ACL for a name gives
     * need_addrs; true with n_addrs 0: the lookup failed and dst ACLs do not match the name. */
    const void *addrs;
    size_t addr_size, n_addrs;
    bool addrs_known;
};

/* Decides a request. For policies from YAML and flags it is exactly awf_policy_decide() (client
 * and method are not used). For squid.conf policies it runs the http_access rules in order:
 * the first rule whose ACLs all match decides; no match gives the opposite of the last rule;
 * no rules deny. An unknown client (NULL) is taken to match every `src` ACL, so `explain` and
 * the DNS forwarder answer "allowed for a client the config trusts". Stricter than Squid: a raw
 * IP target is allowed only by a rule with a positive dst/dstdomain/dstdom_regex ACL that
 * matched it (else reason raw_ip). Lock-free, no allocation. */
void awf_policy_decide_req(const struct awf_policy *p, const struct awf_policy_req *rq,
                           struct awf_verdict *out);

/* Writes the URL of a request as Squid has it for url_regex ACLs (and %ru): scheme NULL gives
 * CONNECT's "host:port"; scheme "http"/"https" gives "scheme://host[:port]PATH" with the host
 * lower-cased, one trailing dot dropped, an IPv4 address in dotted form and IPv6 in brackets,
 * the scheme's default port left out, and PATH "/" when empty. host as awf_policy_decide()
 * takes it. Returns the length written (NUL-terminated), or -ENOSPC when cap is too small, or
 * AWF_E_BAD_REQUEST when host is not a valid host. */
int awf_policy_request_url(char *buf, size_t cap, const char *scheme, const char *host,
                           size_t host_len, uint16_t port, const char *path, size_t path_len);

/* Whether the policy has url_regex ACLs (callers build rq.url only then). */
bool awf_policy_wants_url(const struct awf_policy *p);

/* Notices from loading: one line per squid.conf directive or value that awf-proxy accepts but
 * does not act on ("squid.conf:14: cache_mem ignored: awf-proxy keeps no cache"), in file
 * order. The runner prints them once at start. Returns how many; *out borrows the policy's. */
size_t awf_policy_notices(const struct awf_policy *p, const char *const **out);

/* Whether log output number `output` (index into settings.logs) wants this transaction: true
 * for unconditional outputs; for squid.conf `access_log ... ACL...` lines, whether all the ACLs
 * match. false for an index out of range. */
bool awf_policy_log_wanted(const struct awf_policy *p, size_t output,
                           const struct awf_policy_req *rq);

/* Whether the request goes through settings.parent. false without a parent. YAML: always with
 * a parent. squid.conf: `always_direct` allowing it means direct, else `never_direct` allowing
 * it means the parent, else Squid's defaults: plain HTTP through the parent (prefer_direct off),
 * CONNECT/TLS direct (nonhierarchical_direct on). */
bool awf_policy_via_parent(const struct awf_policy *p, const struct awf_policy_req *rq);

/* What to do with TLS traffic the policy allows (CONNECT tunnels, intercepted TLS), at the
 * ClientHello: splice (pass it through untouched, today's tunnel), bump (terminate it with a
 * minted certificate and decide each request inside by URL) or terminate (close it with a TLS
 * alert). YAML and flags: bump when ssl_bump.enabled, else splice; a host that matches an entry
 * of ssl_bump.splice is spliced either way (also with squid.conf ssl_bump rules). */
enum awf_bump_action {
    AWF_BUMP_SPLICE = 0,
    AWF_BUMP_BUMP,
    AWF_BUMP_TERMINATE,
};
enum awf_bump_action awf_policy_bump_action(const struct awf_policy *p,
                                            const struct awf_policy_req *rq);

/* Whether a decrypted request may go, by its full URL ("https://host[:port]/path?query", the
 * port only when not the scheme's default, the host lower-case). With no allow_urls every URL of
 * an allowed host may; else one pattern must match (policy/README.md, "allow_urls"). On a match
 * *rule (if not NULL) is the pattern. Lock-free, no allocation. */
bool awf_policy_url_allowed(const struct awf_policy *p, const char *url, size_t len,
                            const char **rule);

/* Reads the subset of squid.conf that AWF generates (policy/squidconf.md) into the builder:
 * ACLs and http_access/always_direct/never_direct rules, listen, logs, DNS, timeouts, parent,
 * pid and cache log. Errors are "FILE:LINE: reason". Returns 0, AWF_E_POLICY_SYNTAX (unknown
 * directive, bad syntax), AWF_E_POLICY_INVALID (bad value, unknown ACL), or -errno. Flags given
 * after it override its settings; allow/block entries cannot be combined with it (build fails).
 * At most one squid.conf per builder. */
int awf_policy_load_squid_conf(struct awf_policy_builder *b, const char *path, char *err,
                               size_t errlen);

/* True if the policy came from a squid.conf (decisions run its rules). */
bool awf_policy_is_squid(const struct awf_policy *p);

/* `squid-conf FILE --to-policy`: writes the YAML policy closest to p. For YAML policies this
 * is awf_policy_print(). For squid.conf policies the rules of AWF's shape are turned into
 * allow/block entries and ports; every rule or ACL that YAML cannot express is named on warn
 * (one "FILE:LINE: ..." line each) and left out. Returns the number of warnings, or -ENOMEM. */
int awf_policy_to_yaml(const struct awf_policy *p, FILE *out, FILE *warn);

/* Where a resolved address came from, for awf_policy_addr_check(). */
enum awf_addr_origin {
    AWF_ADDR_DNS = 0, /* a DNS answer (or a literal): the agent may steer it */
    AWF_ADDR_HOSTS,   /* the proxy's own hosts file, written by the operator or the runtime */
};

/* Checks a resolved address against the denied ranges of SPEC §3 and IANA's special-purpose
 * registries (policy/README.md) less the policy's allowed ranges. IPv4-mapped IPv6 is checked
 * as the IPv4 it maps; an IPv6 address that carries an IPv4 one (IPv4-compatible, SIIT, NAT64,
 * 6to4, Teredo) is denied while that IPv4 address is, even in an allowed IPv6 range. Returns true
 * if it may be dialled; else false and *why (if not NULL) names the range, e.g. "10.0.0.0/8
 * private" (a static string). p may be NULL: no allowed ranges.
 * An address the proxy's own hosts file gives (AWF_ADDR_HOSTS) for a name the policy allowed
 * may be in a private-use range (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): Docker's
 * host.docker.internal, sibling containers. Every other denied range (link-local and cloud
 * metadata, loopback, ...) stays denied for it too unless the policy's allowed ranges (or a
 * squid.conf dst ACL) re-open it. */
bool awf_policy_addr_check(const struct awf_policy *p, const struct sockaddr *sa,
                           enum awf_addr_origin origin, const char **why);

/* Whether a CONNECT tunnel to host:port may carry opaque bytes (neither a TLS ClientHello, nor
 * an HTTP/1.x request, nor an h2c preface): its port is in tunnels.opaque_ports or host matches
 * an entry of tunnels.opaque_hosts (matched as allow entries are, scheme prefixes ignored).
 * Linear in the two lists: asked once per tunnel, only when its first bytes are opaque. */
bool awf_policy_opaque_allowed(const struct awf_policy *p, const char *host, size_t host_len,
                               uint16_t port);

/* Writes the normalized policy as YAML a later load would accept, for `check`. */
void awf_policy_print(const struct awf_policy *p, FILE *out);

/* Every entry, allow then block, in source order; for `check` and tests. */
size_t awf_policy_entries(const struct awf_policy *p, const struct awf_policy_entry **out);

#endif
