#ifndef AWF_TESTS_UNIT_PROXY_HELLO_TEST_H
#define AWF_TESTS_UNIT_PROXY_HELLO_TEST_H

/* cmocka helpers shared by the ClientHello parser's tests: parse with exact-size inputs, load
 * the captures of tests/data/clienthello/, check an SNI. Include after cmocka.h. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/clienthello.h"

#include "hello_build.h"

static uint8_t scratch[AWF_HELLO_MAX];

static inline struct bld *bld_new(void)
{
    struct bld *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    return b;
}

/* Parses an exact-size heap copy, so ASan sees any read past len. */
static inline enum proxy_hello_result parse(const uint8_t *p, size_t len, struct proxy_hello *h)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, p, len);
    enum proxy_hello_result r = proxy_hello_parse(copy, len, scratch, h);
    free(copy);
    return r;
}

static inline enum proxy_hello_result parse_b(const struct bld *b, struct proxy_hello *h)
{
    return parse(b->b, b->n, h);
}

static inline void assert_sni(const struct proxy_hello *h, const char *want)
{
    if (!want) {
        assert_false(h->has_sni);
        assert_null(h->sni);
        return;
    }
    assert_true(h->has_sni);
    assert_int_equal(h->sni_len, strlen(want));
    assert_memory_equal(h->sni, want, h->sni_len);
    /* Slices point into scratch, never into the (already freed) input copy. */
    assert_true((const uint8_t *)h->sni >= scratch &&
                (const uint8_t *)h->sni + h->sni_len <= scratch + sizeof(scratch));
}

/* A synthetic single-record ClientHello with exts (NULL: no extensions block). */
static inline enum proxy_hello_result parse_exts(const struct bld *exts, struct proxy_hello *h)
{
    struct bld *hs = bld_new(), *w = bld_new();
    put_hello(hs, exts);
    put_records(w, hs->b, hs->n, 16384, 0x0301);
    enum proxy_hello_result r = parse_b(w, h);
    free(hs);
    free(w);
    return r;
}
static inline struct bld *load(const char *name)
{
    const char *src = getenv("AWF_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/data/clienthello/%s.bin", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (is AWF_SOURCE_DIR set?)", path);
    struct bld *b = bld_new();
    b->n = fread(b->b, 1, BLD_CAP, f);
    fclose(f);
    assert_true(b->n > 0);
    return b;
}

#endif
