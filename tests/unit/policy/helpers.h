#ifndef AWF_TESTS_UNIT_POLICY_HELPERS_H
#define AWF_TESTS_UNIT_POLICY_HELPERS_H

/* Shared by the policy tests: build a policy from lists or YAML and check verdicts. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static inline struct awf_policy *from_yaml(const char *yaml)
{
    char err[AWF_POLICY_ERRLEN] = "";
    struct awf_policy_builder *b = awf_policy_builder_create();
    assert_non_null(b);
    if (policy_load_yaml(b, "t.yml", yaml, strlen(yaml), err, sizeof err) != 0)
        fail_msg("load: %s", err);
    struct awf_policy *p = awf_policy_build(b, err, sizeof err);
    if (!p)
        fail_msg("build: %s", err);
    awf_policy_builder_destroy(b);
    return p;
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
