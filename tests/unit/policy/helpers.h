#ifndef AWF_TESTS_UNIT_POLICY_HELPERS_H
#define AWF_TESTS_UNIT_POLICY_HELPERS_H

/* Shared by the policy tests: build a policy from lists, YAML or squid.conf and check verdicts. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/error.h"
#include "policy/policy_int.h"

/* Builds from comma lists (NULL for none); fails the test on any error. */
static inline struct awf_policy *from_lists(const char *allow, const char *block)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    if (allow && awf_policy_add_list(b, false, allow, "--allow-domains", err, sizeof err) != 0)
        fail_msg("allow list: %s", err);
    if (block && awf_policy_add_list(b, true, block, "--block-domains", err, sizeof err) != 0)
        fail_msg("block list: %s", err);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    if (!p)
        fail_msg("build: %s", err);
    awf_policy_builder_destroy(b);
    return p;
}

/* A policy from text in one of the loaders' formats; fails the test on any error. */
static inline struct awf_policy *from_text(int (*load)(struct awf_policy_builder *, const char *,
                                                       const char *, size_t, char *, size_t),
                                           const char *name, const char *text)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    if (load(b, name, text, strlen(text), err, sizeof err) != 0)
        fail_msg("load: %s", err);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    if (!p)
        fail_msg("build: %s", err);
    awf_policy_builder_destroy(b);
    return p;
}

static inline struct awf_policy *from_yaml(const char *yaml)
{
    return from_text(policy_load_yaml, "t.yml", yaml);
}

static inline struct awf_policy *from_squid(const char *text)
{
    return from_text(policy_load_squid_text, "squid.conf", text);
}

/* An IPv4 or IPv6 address (port 0) from its text; fails the test on a bad one. */
static inline struct sockaddr_storage sockaddr_of(const char *ip)
{
    struct sockaddr_storage ss = {0};
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

/* Loads YAML expected to fail; checks the code and that err equals want exactly. */
static inline void yaml_fails(const char *yaml, int code, const char *want)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    int rc = policy_load_yaml(b, "t.yml", yaml, strlen(yaml), err, sizeof err);
    if (rc != code || strcmp(err, want) != 0)
        fail_msg("yaml %s\n  got  %d %s\n  want %d %s", yaml, rc, err, code, want);
    awf_policy_builder_destroy(b);
}

/* Checks one decision. entry is the deciding entry's text, or NULL for none. */
#define EXPECT(p, host, port, traffic, allow, reason, entry)                                       \
    expect_at(__LINE__, (p), (host), (port), (traffic), (allow), (reason), (entry))

static inline void expect_at(int line, const struct awf_policy *p, const char *host, uint16_t port,
                             enum awf_traffic traffic, bool allow, const char *reason,
                             const char *entry)
{
    struct awf_verdict v;
    awf_policy_decide(p, host, strlen(host), port, traffic, &v);
    const char *got_entry = v.entry ? v.entry->text : "(none)";
    if (v.allow != allow || strcmp(awf_policy_reason_name(v.reason), reason) != 0 ||
        strcmp(got_entry, entry ? entry : "(none)") != 0)
        fail_msg("line %d: %s:%u %s: got %s %s %s, want %s %s %s", line, host, port,
                 traffic == AWF_TRAFFIC_HTTP ? "http" : "tls", v.allow ? "allow" : "deny",
                 awf_policy_reason_name(v.reason), got_entry, allow ? "allow" : "deny", reason,
                 entry ? entry : "(none)");
}

#define HTTP AWF_TRAFFIC_HTTP
#define TLS  AWF_TRAFFIC_TLS

#endif
