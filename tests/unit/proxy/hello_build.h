#ifndef AWF_TESTS_UNIT_PROXY_HELLO_BUILD_H
#define AWF_TESTS_UNIT_PROXY_HELLO_BUILD_H

/* Builds ClientHellos byte by byte for the parser's tests: synthetic ones with chosen
 * extensions, and real captures re-framed into records of another size. Header-only (static
 * functions) so the unit test and nothing else uses it. Buffers are fixed-size; an overflow
 * aborts, as it is a bug in a test. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLD_CAP (1u << 17)

struct bld {
    uint8_t b[BLD_CAP];
    size_t n;
};

static inline void bld_room(const struct bld *b, size_t n)
{
    if (n > BLD_CAP - b->n) {
        fprintf(stderr, "hello_build: buffer overflow\n");
        abort();
    }
}

static inline void put(struct bld *b, const void *p, size_t n)
{
    bld_room(b, n);
    if (n)
        memcpy(b->b + b->n, p, n);
    b->n += n;
}

static inline void put8(struct bld *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    put(b, &x, 1);
}

static inline void put16(struct bld *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}

static inline void put24(struct bld *b, unsigned v)
{
    put8(b, v >> 16);
    put16(b, v & 0xffff);
}

/* One extension: type, 2-byte length, data. */
static inline void put_ext(struct bld *b, unsigned type, const void *data, size_t n)
{
    put16(b, type);
    put16(b, (unsigned)n);
    put(b, data, n);
}

/* A server_name extension with one host_name entry. */
static inline void put_sni(struct bld *b, const char *name)
{
    size_t n = strlen(name);
    put16(b, 0);
    put16(b, (unsigned)n + 5);
    put16(b, (unsigned)n + 3);
    put8(b, 0);
    put16(b, (unsigned)n);
    put(b, name, n);
}

/* A ClientHello handshake message (4-byte header included) whose extensions block is exts;
 * with exts NULL the block is left out entirely (legal before TLS 1.3). */
static inline void put_hello(struct bld *hs, const struct bld *exts)
{
    static const uint8_t suites[] = {0x13, 0x01, 0xc0, 0x2f};
    size_t body = 2 + 32 + 1 + 2 + sizeof(suites) + 2 + (exts ? 2 + exts->n : 0);
    put8(hs, 1);
    put24(hs, (unsigned)body);
    put16(hs, 0x0303);
    for (int i = 0; i < 32; i++)
        put8(hs, (unsigned)i);
    put8(hs, 0); /* empty session id */
    put16(hs, sizeof(suites));
    put(hs, suites, sizeof(suites));
    put8(hs, 1);
    put8(hs, 0); /* null compression */
    if (exts) {
        put16(hs, (unsigned)exts->n);
        put(hs, exts->b, exts->n);
    }
}

/* Frames a handshake message into records of at most recsize bytes of record version ver. */
static inline void put_records(struct bld *out, const uint8_t *hs, size_t n, size_t recsize,
                               unsigned ver)
{
    for (size_t i = 0; i < n; i += recsize) {
        size_t k = n - i < recsize ? n - i : recsize;
        put8(out, 22);
        put16(out, ver);
        put16(out, (unsigned)k);
        put(out, hs + i, k);
    }
}

/* The handshake bytes carried by a run of well-formed handshake records (test input only). */
static inline void unframe(struct bld *hs, const uint8_t *wire, size_t n)
{
    for (size_t i = 0; i + 5 <= n;) {
        size_t k = (size_t)wire[i + 3] << 8 | wire[i + 4];
        put(hs, wire + i + 5, k);
        i += 5 + k;
    }
}

#endif
