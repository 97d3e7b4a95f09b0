/* Fuzzes the TLS ClientHello parser (proxy/clienthello.c).
 *
 * Input: the first bytes of a connection, as a client would send them. Checked beyond "no
 * crash, no sanitizer report":
 *   - the result is one of the five, out->error is set exactly for the refusals, and no field
 *     is left filled after a refusal;
 *   - NEED_MORE only for inputs shorter than AWF_HELLO_MAX_WIRE;
 *   - OK: the slices lie inside scratch, the SNI is [A-Za-z0-9_.-], consumed <= size, and the
 *     bytes up to consumed give the same answer while one byte fewer gives NEED_MORE;
 *   - OK: the same handshake re-framed into records of another size (chosen by the input's last
 *     byte) gives the same answer, so reassembly is exercised on every valid input. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[AWF_HELLO_MAX];
static uint8_t scratch2[AWF_HELLO_MAX];
static uint8_t hs[AWF_HELLO_MAX];
static uint8_t wire[6 * AWF_HELLO_MAX]; /* records of 1 byte: 6 bytes of wire each */

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool inside(const char *p, size_t n, const uint8_t *buf)
{
    const uint8_t *u = (const uint8_t *)p;
    return u >= buf && u + n <= buf + AWF_HELLO_MAX;
}

static bool same(const struct proxy_hello *a, const uint8_t *abuf, const struct proxy_hello *b,
                 const uint8_t *bbuf)
{
    if (a->has_sni != b->has_sni || a->sni_len != b->sni_len || a->has_alpn != b->has_alpn ||
        a->alpn_len != b->alpn_len || a->hello_len != b->hello_len ||
        a->legacy_version != b->legacy_version || a->n_extensions != b->n_extensions ||
        a->alpn_h2 != b->alpn_h2 || a->alpn_http11 != b->alpn_http11 ||
        a->ech_offered != b->ech_offered || a->tls13_offered != b->tls13_offered)
        return false;
    /* Same offsets into their own scratch buffers, same bytes. */
    if (a->has_sni && ((const uint8_t *)a->sni - abuf != (const uint8_t *)b->sni - bbuf ||
                       memcmp(a->sni, b->sni, a->sni_len) != 0))
        return false;
    if (a->has_alpn && ((const uint8_t *)a->alpn - abuf != (const uint8_t *)b->alpn - bbuf ||
                        memcmp(a->alpn, b->alpn, a->alpn_len) != 0))
        return false;
    return true;
}

static void check_ok(const uint8_t *data, size_t size, const struct proxy_hello *h)
{
    CHECK(h->error == NULL);
    CHECK(h->consumed >= 5 + h->hello_len && h->consumed <= size);
    CHECK(h->consumed <= AWF_HELLO_MAX_WIRE);
    CHECK(h->hello_len >= 4 && h->hello_len <= AWF_HELLO_MAX);
    CHECK(h->has_sni == (h->sni != NULL) && h->has_alpn == (h->alpn != NULL));
    if (h->has_sni) {
        CHECK(inside(h->sni, h->sni_len, scratch));
        CHECK(h->sni_len >= 1 && h->sni_len <= 254);
        for (size_t i = 0; i < h->sni_len; i++) {
            char c = h->sni[i];
            CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.');
        }
    }
    if (h->has_alpn)
        CHECK(inside(h->alpn, h->alpn_len, scratch) && h->alpn_len >= 1);

    struct proxy_hello again;
    CHECK(proxy_hello_parse(data, h->consumed, scratch2, &again) == AWF_HELLO_OK);
    CHECK(same(h, scratch, &again, scratch2));
    CHECK(proxy_hello_parse(data, h->consumed - 1, scratch2, &again) == AWF_HELLO_NEED_MORE);

    /* Re-frame: records of 1..256 bytes of the same version. */
    memcpy(hs, scratch, h->hello_len);
    size_t step = 1 + data[size - 1], n = 0;
    for (size_t i = 0; i < h->hello_len; i += step) {
        size_t k = h->hello_len - i < step ? h->hello_len - i : step;
        wire[n++] = 22;
        wire[n++] = (uint8_t)(h->record_version >> 8);
        wire[n++] = (uint8_t)h->record_version;
        wire[n++] = (uint8_t)(k >> 8);
        wire[n++] = (uint8_t)k;
        memcpy(wire + n, hs + i, k);
        n += k;
    }
    enum proxy_hello_result r = proxy_hello_parse(wire, n, scratch2, &again);
    if (n <= AWF_HELLO_MAX_WIRE) {
        CHECK(r == AWF_HELLO_OK);
        CHECK(again.consumed == n);
        CHECK(same(h, scratch, &again, scratch2));
    } else {
        CHECK(r == AWF_HELLO_TOO_BIG);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_hello h;
    enum proxy_hello_result r = proxy_hello_parse(data, size, scratch, &h);
    switch (r) {
    case AWF_HELLO_OK:
        check_ok(data, size, &h);
        break;
    case AWF_HELLO_NEED_MORE:
        CHECK(size < AWF_HELLO_MAX_WIRE);
        CHECK(h.error == NULL);
        break;
    case AWF_HELLO_NOT_TLS:
    case AWF_HELLO_MALFORMED:
    case AWF_HELLO_TOO_BIG:
        CHECK(h.error != NULL);
        CHECK(!h.has_sni && h.sni == NULL && !h.has_alpn && h.consumed == 0);
        break;
    default:
        abort();
    }
    return 0;
}
