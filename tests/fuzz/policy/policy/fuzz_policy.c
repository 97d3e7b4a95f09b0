/* Fuzz target for the policy parsers: the input is tried as a YAML policy, as an AWF list, and
 * as a request host. Whatever loads must build, print, and load back from what it printed. */

#include "policy/policy_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decide_all(const struct awf_policy *p, const char *host, size_t len)
{
    struct awf_verdict v;
    awf_policy_decide(p, host, len, 443, AWF_TRAFFIC_TLS, &v);
    awf_policy_decide(p, host, len, 80, AWF_TRAFFIC_HTTP, &v);
    if (v.allow && !v.entry)
        abort(); /* an allow always names its entry */
}

static void round_trip(const struct awf_policy *p)
{
    char *buf = NULL, err[AWF_POLICY_ERRLEN];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    awf_policy_print(p, f);
    fclose(f);
    struct awf_policy_builder *b = awf_policy_builder_create();
    if (!b || policy_load_yaml(b, "<printed>", buf, len, err, sizeof err) != 0) {
        fprintf(stderr, "printed policy does not load: %s\n%s", err, buf);
        abort();
    }
    struct awf_policy *q = awf_policy_build(b, err, sizeof err);
    if (!q) {
        fprintf(stderr, "printed policy does not build: %s\n", err);
        abort();
    }
    const struct awf_policy_entry *e1, *e2;
    if (awf_policy_entries(p, &e1) != awf_policy_entries(q, &e2))
        abort();
    awf_policy_unref(q);
    awf_policy_builder_destroy(b);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AWF_POLICY_ERRLEN];
    const char *text = (const char *)data;

    struct awf_policy_builder *b = awf_policy_builder_create();
    if (!b)
        return 0;
    if (policy_load_yaml(b, "<fuzz>", text, size, err, sizeof err) == 0) {
        struct awf_policy *p = awf_policy_build(b, err, sizeof err);
        if (p) {
            round_trip(p);
            decide_all(p, "api.github.com", 14);
            decide_all(p, text, size < 300 ? size : 300);
            awf_policy_unref(p);
        }
    }
    awf_policy_builder_destroy(b);

    /* The same bytes as a --allow-domains list (up to the first NUL) and as a host. */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    b = awf_policy_builder_create();
    if (b && awf_policy_add_list(b, false, s, NULL, err, sizeof err) == 0) {
        struct awf_policy *p = awf_policy_build(b, err, sizeof err);
        if (p) {
            round_trip(p);
            decide_all(p, s, strlen(s));
            awf_policy_unref(p);
        }
    }
    awf_policy_builder_destroy(b);
    free(s);
    return 0;
}
