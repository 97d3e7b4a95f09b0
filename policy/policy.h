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
    char *format; /* "firewall_detailed", "audit_jsonl", "squid", or a Squid logformat string */
    char *path;   /* file path, or "-" for stdout */
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

struct awf_tls_settings {
    bool sni_in_connect; /* true: check the ClientHello inside CONNECT tunnels */
    bool deny_ech;       /* false */
    bool alert_on_deny;  /* false: close silently */
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
    struct awf_timeouts timeouts;
    struct awf_limits limits;
};

/* ---- building ---- */

struct awf_policy_builder *awf_policy_builder_create(void);
void awf_policy_builder_destroy(struct awf_policy_builder *b);

/* Reads a version-1 YAML policy file and merges it into the builder (policy/README.md is the
 * schema). Unknown keys and invalid entries are errors (err gets "file:line:col: reason").
 * Returns 0, AWF_E_POLICY_SYNTAX (not YAML), AWF_E_POLICY_INVALID, or -errno (unreadable file).
 * On error the builder may hold part of the input: destroy it rather than build it. */
int awf_policy_load_file(struct awf_policy_builder *b, const char *path, char *err, size_t errlen);

/* Same for YAML text already in memory; name is used in messages (e.g. "<default>"). */
int awf_policy_load_yaml(struct awf_policy_builder *b, const char *name, const char *yaml,
                         size_t len, char *err, size_t errlen);

/* The embedded default policy (SPEC: GitHub's own domains, listen 127.0.0.1:3128). */
int awf_policy_load_default(struct awf_policy_builder *b, char *err, size_t errlen);
extern const char awf_policy_default_yaml[];

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
 * "nxdomain"), "dns.forwarder.log" (path, "-" or "stderr"), "dns.forwarder.idle" (duration).
 * origin names the flag in messages (NULL: "--set KEY"); err gets "origin: reason".
 * Returns 0, or AWF_E_USAGE for an unknown key, AWF_E_POLICY_INVALID for a bad value. */
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
/* "allowed", "blocked", "not_allowed", ... stable tokens for logs and tests. */
const char *awf_reason_name(enum awf_reason r);

struct awf_verdict {
    bool allow;
    enum awf_reason reason;
    const struct awf_policy_entry *entry; /* the deciding entry, NULL if none; policy-owned */
};

/* Decides host:port for the given traffic. host need not be NUL-terminated, may have any case
 * and one trailing dot, and may be an IP (IPv6 with or without brackets). Lock-free, no
 * allocation; O(labels in host), not O(entries).
 * Reasons are checked in this order: invalid_host, blocked, port, empty_allow, then allowed /
 * allowed_ip, wrong_scope, not_allowed / raw_ip. When several entries match, the most specific
 * is reported (entries keyed by a longer suffix of the host first, then source order). */
void awf_policy_decide(const struct awf_policy *p, const char *host, size_t host_len, uint16_t port,
                       enum awf_traffic traffic, struct awf_verdict *out);

/* Checks a resolved address against the denied ranges of SPEC §3 less the policy's allowed
 * ranges (IPv4-mapped IPv6 is checked as the IPv4 it maps). Returns true if it may be dialled;
 * else false and *why (if not NULL) names the range, e.g. "10.0.0.0/8 private" (a static
 * string). p may be NULL: no allowed ranges. */
bool awf_policy_addr_allowed(const struct awf_policy *p, const struct sockaddr *sa,
                             const char **why);

/* Writes the normalized policy as YAML a later load would accept, for `check`. */
void awf_policy_print(const struct awf_policy *p, FILE *out);

/* Every entry, allow then block, in source order; for `check` and tests. */
size_t awf_policy_entries(const struct awf_policy *p, const struct awf_policy_entry **out);

#endif
