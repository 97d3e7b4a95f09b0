/* Policy lookups per second: 10 / 1,000 / 10,000 entries; plain names, "*.x" wildcards and
 * infix wildcards ("api-*.x"); hits and misses. Prints a markdown table.
 *
 *   awf-policy-bench [LOOKUPS]    (default 2,000,000 per cell)
 *
 * Hosts are picked from a pre-built array in a fixed pseudo-random order, so the figure
 * includes cache misses on large policies, not one hot entry. */

#include "policy/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HOSTS = 4096 };

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *const kinds[] = {"plain", "*.x", "api-*.x"};

static void entry(char *buf, size_t len, int kind, int i)
{
    if (kind == 0)
        snprintf(buf, len, "site%d.bench%d.test", i, i % 97);
    else if (kind == 1)
        snprintf(buf, len, "*.sub%d.bench%d.test", i, i % 97);
    else
        snprintf(buf, len, "api-*.svc%d.bench%d.test", i, i % 97);
}

/* A host four or five labels long, like real API names. */
static void host(char *buf, size_t len, int kind, int i, bool hit)
{
    if (kind == 0)
        snprintf(buf, len, "www.api.%s%d.bench%d.test", hit ? "site" : "elsewhere", i, i % 97);
    else if (kind == 1)
        snprintf(buf, len, "www.api.%s%d.bench%d.test", hit ? "sub" : "other", i, i % 97);
    else
        snprintf(buf, len, "%s-v2.svc%d.bench%d.test", hit ? "api" : "web", i, i % 97);
}

static struct awf_policy *build(int kind, int n)
{
    char err[AWF_POLICY_ERRLEN], e[128];
    struct awf_policy_builder *b = awf_policy_builder_create();
    size_t cap = (size_t)n * 48 + 1, at = 0;
    char *list = malloc(cap);
    if (!b || !list)
        exit(1);
    list[0] = '\0';
    for (int i = 0; i < n; i++) {
        entry(e, sizeof e, kind, i);
        at += (size_t)snprintf(list + at, cap - at, "%s,", e);
    }
    struct awf_policy *p = NULL;
    if (awf_policy_add_list(b, false, list, "--allow-domains", err, sizeof err) != 0 ||
        !(p = awf_policy_build(b, err, sizeof err))) {
        fprintf(stderr, "awf-policy-bench: %s\n", err);
        exit(1);
    }
    free(list);
    awf_policy_builder_destroy(b);
    return p;
}

static double run(const struct awf_policy *p, char (*hosts)[96], const size_t *lens, long lookups,
                  bool want)
{
    struct awf_verdict v;
    unsigned idx = 1, wrong = 0;
    double t0 = now_ns();
    for (long i = 0; i < lookups; i++) {
        idx = idx * 1103515245u + 12345u; /* fixed LCG order over the host array */
        unsigned h = (idx >> 8) % HOSTS;
        awf_policy_decide(p, hosts[h], lens[h], 443, AWF_TRAFFIC_TLS, &v);
        wrong += v.allow != want;
    }
    double ns = (now_ns() - t0) / (double)lookups;
    if (wrong) {
        fprintf(stderr, "awf-policy-bench: %u wrong verdicts\n", wrong);
        exit(1);
    }
    return ns;
}

int main(int argc, char **argv)
{
    long lookups = argc > 1 ? atol(argv[1]) : 2000000;
    static const int sizes[] = {10, 1000, 10000};
    static char hits[HOSTS][96], misses[HOSTS][96];
    static size_t hit_len[HOSTS], miss_len[HOSTS];
    if (lookups <= 0) {
        fprintf(stderr, "usage: awf-policy-bench [LOOKUPS]\n");
        return 2;
    }
    printf(
        "| entries | kind | hit ns/lookup | hit lookups/s | miss ns/lookup | miss lookups/s |\n");
    printf("|---:|---|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int kind = 0; kind < 3; kind++) {
            int n = sizes[s];
            struct awf_policy *p = build(kind, n);
            for (int i = 0; i < HOSTS; i++) {
                host(hits[i], sizeof hits[i], kind, (int)((unsigned)i * 2654435761u % (unsigned)n),
                     true);
                host(misses[i], sizeof misses[i], kind, i, false);
                hit_len[i] = strlen(hits[i]);
                miss_len[i] = strlen(misses[i]);
            }
            run(p, hits, hit_len, lookups / 10, true); /* warm up */
            double hit = run(p, hits, hit_len, lookups, true);
            double miss = run(p, misses, miss_len, lookups, false);
            printf("| %d | `%s` | %.0f | %.2fM | %.0f | %.2fM |\n", n, kinds[kind], hit, 1e3 / hit,
                   miss, 1e3 / miss);
            awf_policy_unref(p);
        }
    return 0;
}
