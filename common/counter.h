#ifndef AWF_COMMON_COUNTER_H
#define AWF_COMMON_COUNTER_H

/* Counters with one writer (the event loop that owns them) and any number of readers (the
 * admin listener on another thread). The writer does a relaxed load and a relaxed store: on
 * x86-64 and arm64 that is a plain load and store, no locked instruction and no cache line
 * shared with another loop, so the hot path costs what a plain `x++` does. Readers sum the
 * loops' copies with relaxed loads; a sum may be a few increments behind, never torn. */

#include <stdint.h>

static inline void awf_counter_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void awf_counter_inc(uint64_t *c)
{
    awf_counter_add(c, 1);
}

static inline uint64_t awf_counter_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

#endif
