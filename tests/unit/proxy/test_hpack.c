/* The HPACK decoder (proxy/hpack.c) against RFC 7541 Appendix C, written out here, and the h2c
 * first-request reader (proxy/h2c.c) built on it. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "proxy/h2c.h"
#include "proxy/hpack.h"

/* The fields decoded, as "name: value\n" lines. */
static char got[1024];

static int collect(void *arg, const char *n, size_t nl, const char *v, size_t vl)
{
    (void)arg;
    size_t l = strlen(got);
    snprintf(got + l, sizeof got - l, "%.*s: %.*s\n", (int)nl, n, (int)vl, v);
    return 0;
}

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned b;
        sscanf(p, "%2x", &b);
        out[n++] = (uint8_t)b;
        p += 2;
    }
    return n;
}

static int decode(struct proxy_hpack *h, const char *hex)
{
    uint8_t b[512];
    size_t n = unhex(hex, b);
    got[0] = '\0';
    return proxy_hpack_decode(h, b, n, collect, NULL);
}

static void test_hpack_c2_single_fields(void **state)
{
    (void)state;
    struct proxy_hpack h;
    proxy_hpack_init(&h, 4096);
    assert_int_equal(decode(&h, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
                     0);
    assert_string_equal(got, "custom-key: custom-header\n");
    assert_int_equal(h.size, 55);
    assert_int_equal(decode(&h, "040c 2f73 616d 706c 652f 7061 7468"), 0);
    assert_string_equal(got, ":path: /sample/path\n");
    assert_int_equal(decode(&h, "1008 7061 7373 776f 7264 0673 6563 7265 74"), 0);
    assert_string_equal(got, "password: secret\n");
    assert_int_equal(decode(&h, "82"), 0);
    assert_string_equal(got, ":method: GET\n");
    assert_int_equal(h.n, 1); /* only the first was indexed */
    proxy_hpack_free(&h);
}

static void test_hpack_c3_requests_without_huffman(void **state)
{
    (void)state;
    struct proxy_hpack h;
    proxy_hpack_init(&h, 4096);
    assert_int_equal(decode(&h, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), 0);
    assert_string_equal(got,
                        ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\n");
    assert_int_equal(h.size, 57);
    assert_int_equal(decode(&h, "8286 84be 5808 6e6f 2d63 6163 6865"), 0);
    assert_string_equal(got, ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\n"
                             "cache-control: no-cache\n");
    assert_int_equal(h.size, 110);
    assert_int_equal(decode(&h, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 "
                                "6c75 65"),
                     0);
    assert_string_equal(got, ":method: GET\n:scheme: https\n:path: /index.html\n"
                             ":authority: www.example.com\ncustom-key: custom-value\n");
    assert_int_equal(h.size, 164);
    proxy_hpack_free(&h);
}

static void test_hpack_c4_requests_with_huffman(void **state)
{
    (void)state;
    struct proxy_hpack h;
    proxy_hpack_init(&h, 4096);
    assert_int_equal(decode(&h, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 0);
    assert_string_equal(got,
                        ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\n");
    assert_int_equal(decode(&h, "8286 84be 5886 a8eb 1064 9cbf"), 0);
    assert_string_equal(got, ":method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\n"
                             "cache-control: no-cache\n");
    assert_int_equal(decode(&h, "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), 0);
    assert_string_equal(got, ":method: GET\n:scheme: https\n:path: /index.html\n"
                             ":authority: www.example.com\ncustom-key: custom-value\n");
    assert_int_equal(h.size, 164);
    proxy_hpack_free(&h);
}

static void test_hpack_eviction_and_errors(void **state)
{
    (void)state;
    struct proxy_hpack h;
    proxy_hpack_init(&h, 4096);
    /* Size update to 64 (5-bit prefix: 31 + 33), then two 55-byte entries: one stays. */
    assert_int_equal(decode(&h, "3f21 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 "
                                "6572 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 "
                                "6572"),
                     0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.size, 55);
    assert_int_equal(decode(&h, "bf"), AWF_E_BAD_REQUEST);        /* index 63: evicted */
    assert_int_equal(decode(&h, "80"), AWF_E_BAD_REQUEST);        /* index 0 */
    assert_int_equal(decode(&h, "3fe1 ff07"), AWF_E_BAD_REQUEST); /* size update over the limit */
    assert_int_equal(decode(&h, "410f 7777"), AWF_E_BAD_REQUEST); /* truncated string */
    assert_int_equal(decode(&h, "4182 ff00"), AWF_E_BAD_REQUEST); /* Huffman padding not ones */
    /* An indexed name from the dynamic table, inserted again while the table is full: the
     * entry it names is evicted by its own insert. */
    assert_int_equal(decode(&h, "7e0d 6375 7374 6f6d 2d68 6561 6465 72"), 0);
    assert_string_equal(got, "custom-key: custom-header\n");
    assert_int_equal(h.n, 1);
    proxy_hpack_free(&h);
}

static void test_hpack_huffman(void **state)
{
    (void)state;
    uint8_t b[32];
    char out[64];
    size_t n = unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff", b);
    long l = proxy_hpack_huffman(b, n, out);
    assert_int_equal(l, 15);
    assert_memory_equal(out, "www.example.com", 15);
    n = unhex("ffff ffff", b); /* 30 ones: EOS */
    assert_int_equal(proxy_hpack_huffman(b, n, out), -1);
}

static size_t frame(uint8_t *o, uint8_t type, uint8_t flags, uint32_t stream, const uint8_t *pl,
                    size_t n)
{
    o[0] = (uint8_t)(n >> 16), o[1] = (uint8_t)(n >> 8), o[2] = (uint8_t)n;
    o[3] = type, o[4] = flags;
    o[5] = (uint8_t)(stream >> 24), o[6] = (uint8_t)(stream >> 16), o[7] = (uint8_t)(stream >> 8);
    o[8] = (uint8_t)stream;
    if (n)
        memcpy(o + 9, pl, n);
    return 9 + n;
}

static void test_h2c_first_request(void **state)
{
    (void)state;
    uint8_t buf[256], block[64];
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    size_t n = 24;
    n += frame(buf + n, 4, 0, 0, NULL, 0); /* SETTINGS */
    size_t bl = unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", block);
    /* HEADERS without END_HEADERS, then a CONTINUATION with it. */
    size_t h1 = n;
    n += frame(buf + n, 1, 0x01, 1, block, 5);
    size_t c1 = n;
    n += frame(buf + n, 9, 0x04, 1, block + 5, bl - 5);
    struct proxy_h2c_req rq;
    assert_int_equal(proxy_h2c_first_request(buf, n, 4096, &rq), AWF_H2C_OK);
    assert_string_equal(rq.authority, "www.example.com");
    assert_int_equal(rq.n_authority, 1);
    assert_int_equal(rq.n_host, 0);
    assert_int_equal(rq.end, n);
    assert_int_equal(proxy_h2c_first_request(buf, c1 + 3, 4096, &rq), AWF_H2C_NEED_MORE);
    assert_int_equal(proxy_h2c_first_request(buf, n, 40, &rq), AWF_H2C_TOO_BIG);
    /* Another frame between HEADERS and CONTINUATION. */
    uint8_t bad[256];
    memcpy(bad, buf, c1);
    size_t m = c1 + frame(bad + c1, 4, 0, 0, NULL, 0);
    assert_int_equal(proxy_h2c_first_request(bad, m, 4096, &rq), AWF_H2C_BAD);
    /* DATA before any HEADERS; HEADERS on an even stream. */
    memcpy(bad, buf, h1);
    m = h1 + frame(bad + h1, 0, 0, 1, block, 2);
    assert_int_equal(proxy_h2c_first_request(bad, m, 4096, &rq), AWF_H2C_BAD);
    m = h1 + frame(bad + h1, 1, 0x04, 2, block, bl);
    assert_int_equal(proxy_h2c_first_request(bad, m, 4096, &rq), AWF_H2C_BAD);
    /* Padded and with priority: pad length 2, 5 priority bytes, the block, 2 pad bytes. */
    uint8_t pp[64] = {2, 0, 0, 0, 0, 16};
    memcpy(pp + 6, block, bl);
    memset(pp + 6 + bl, 0, 2);
    m = h1 + frame(bad + h1, 1, 0x04 | 0x08 | 0x20, 3, pp, 6 + bl + 2);
    assert_int_equal(proxy_h2c_first_request(bad, m, 4096, &rq), AWF_H2C_OK);
    assert_string_equal(rq.authority, "www.example.com");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hpack_c2_single_fields),
        cmocka_unit_test(test_hpack_c3_requests_without_huffman),
        cmocka_unit_test(test_hpack_c4_requests_with_huffman),
        cmocka_unit_test(test_hpack_eviction_and_errors),
        cmocka_unit_test(test_hpack_huffman),
        cmocka_unit_test(test_h2c_first_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
