/* Fuzz target for the DNS forwarder's wire code (dns/wire.c). Every input is tried twice:
 *
 * - as a client query (dns_wire_parse_query); a query that parses is printed as a host and as
 *   log text, and answered with dns_wire_build; the answer must parse back as the answer to
 * that question (dns_wire_parse_answer) and must not parse as a query;
 * - as an upstream answer to the question it carries (read here, uncompressed, from the
 *   question section) and to a fixed question. What parses must keep only a well-formed chain:
 *   every offset inside the pool, CNAMEs linked from the question name on, then records of the
 *   type asked, A and AAAA of their sizes. Encoding those records with dns_wire_build and
 *   parsing the result again must give the same records (names compared case-insensitively:
 *   the encoder compresses names equal but for case); encoding with the 512-byte UDP limit
 *   must either fit or be a valid truncated answer.
 *
 * abort() marks a broken property, so libFuzzer reports it like a crash. */

#include "dns/wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define OUT_MAX 65535

/* A wire name as the parsers promise it: labels of 1..63 bytes ending with the root, nothing
 * after, at most AWF_DNS_WIRE_NAME_MAX bytes. */
static void check_name(const uint8_t *name, size_t len)
{
    CHECK(len >= 1 && len <= AWF_DNS_WIRE_NAME_MAX);
    size_t i = 0;
    while (name[i] != 0) {
        CHECK(name[i] <= 63);
        i += 1 + (size_t)name[i];
        CHECK(i < len);
    }
    CHECK(i == len - 1);
}

static void print_name(const uint8_t *name, size_t len)
{
    char host[AWF_DNS_WIRE_NAME_MAX], text[4 * AWF_DNS_WIRE_NAME_MAX + 2];
    int n = dns_wire_name_host(name, len, host);
    CHECK(n == -1 || (n > 0 && (size_t)n == strlen(host) && n < AWF_DNS_WIRE_NAME_MAX));
    dns_wire_name_text(name, len, text);
    CHECK(strlen(text) > 0);
}

static void try_query(const uint8_t *data, size_t size, uint8_t *out)
{
    struct dns_wire_query q;
    if (dns_wire_parse_query(data, size, &q) != 0)
        return;
    check_name(q.qname, q.qname_len);
    print_name(q.qname, q.qname_len);
    char buf[16];
    CHECK(strlen(dns_wire_type_name(q.qtype, buf)) < 12);
    int rcode = size > 3 ? data[3] & 0x0F : 0;
    CHECK(strlen(dns_wire_rcode_name(rcode, buf)) < 12);

    bool tc;
    size_t len = dns_wire_build(out, AWF_DNS_WIRE_UDP_MAX, AWF_DNS_WIRE_UDP_MAX, &q, rcode, NULL, 0,
                                NULL, 0, &tc);
    CHECK(!tc && len == AWF_DNS_WIRE_HEADER + q.qname_len + 4);
    struct dns_wire_query again;
    CHECK(dns_wire_parse_query(out, len, &again) != 0); /* QR is set */
    if (q.qclass != 1)
        return; /* parse_answer takes class IN only */
    struct dns_wire_answer *a = malloc(sizeof *a);
    if (!a)
        return;
    CHECK(dns_wire_parse_answer(out, len, q.qname, q.qname_len, q.qtype, a) == 0);
    CHECK(a->n == 0 && a->rcode == rcode);
    free(a);
}

/* The answer's invariants; qname/qtype: the question it answers. */
static void check_answer(const struct dns_wire_answer *a, const uint8_t *qname, size_t qlen,
                         uint16_t qtype)
{
    CHECK(a->n <= AWF_DNS_WIRE_MAX_RR && a->pool_len <= AWF_DNS_WIRE_POOL);
    CHECK(a->rcode >= 0 && a->rcode <= 15);
    const uint8_t *cur = qname;
    size_t cur_len = qlen;
    bool in_chain = true;
    for (size_t i = 0; i < a->n; i++) {
        const struct dns_wire_rr *r = &a->rr[i];
        CHECK((size_t)r->owner_off + r->owner_len <= a->pool_len);
        CHECK((size_t)r->rdata_off + r->rdata_len <= a->pool_len);
        const uint8_t *owner = a->pool + r->owner_off, *rdata = a->pool + r->rdata_off;
        check_name(owner, r->owner_len);
        print_name(owner, r->owner_len);
        CHECK(dns_wire_name_equal(owner, r->owner_len, cur, cur_len));
        if (r->type == AWF_DNS_WIRE_CNAME && in_chain) {
            check_name(rdata, r->rdata_len);
            if (qtype == AWF_DNS_WIRE_CNAME) {
                CHECK(a->n == 1);
            } else {
                cur = rdata;
                cur_len = r->rdata_len;
            }
            continue;
        }
        in_chain = false; /* from here on: records of the type asked, owned by the chain's end */
        CHECK(r->type == qtype);
        if (r->type == AWF_DNS_WIRE_A)
            CHECK(r->rdata_len == 4);
        else if (r->type == AWF_DNS_WIRE_AAAA)
            CHECK(r->rdata_len == 16);
        else
            CHECK(r->type == AWF_DNS_WIRE_CNAME); /* qtype CNAME: already checked */
    }
}

/* Encodes a's records as the response to (qname, qtype) and parses them back. */
static void round_trip(const struct dns_wire_answer *a, const uint8_t *qname, size_t qlen,
                       uint16_t qtype, uint8_t *out, struct dns_wire_answer *b)
{
    struct dns_wire_query q = {.id = 0x1234, .rd = true, .qtype = qtype, .qclass = 1};
    memcpy(q.qname, qname, qlen);
    q.qname_len = qlen;
    bool tc;
    size_t len = dns_wire_build(out, OUT_MAX, OUT_MAX, &q, a->rcode, a->rr, a->n, a->pool, 0, &tc);
    CHECK(!tc);
    CHECK(dns_wire_parse_answer(out, len, qname, qlen, qtype, b) == 0);
    CHECK(b->n == a->n && b->rcode == a->rcode);
    for (size_t i = 0; i < a->n; i++) {
        const struct dns_wire_rr *x = &a->rr[i], *y = &b->rr[i];
        CHECK(x->type == y->type && x->ttl == y->ttl);
        CHECK(dns_wire_name_equal(a->pool + x->owner_off, x->owner_len, b->pool + y->owner_off,
                                  y->owner_len));
        if (x->type == AWF_DNS_WIRE_CNAME)
            CHECK(dns_wire_name_equal(a->pool + x->rdata_off, x->rdata_len, b->pool + y->rdata_off,
                                      y->rdata_len));
        else
            CHECK(x->rdata_len == y->rdata_len &&
                  memcmp(a->pool + x->rdata_off, b->pool + y->rdata_off, x->rdata_len) == 0);
    }

    /* Over UDP: fits in 512 bytes, or goes out as the question alone with TC set. */
    len = dns_wire_build(out, OUT_MAX, AWF_DNS_WIRE_UDP_MAX, &q, a->rcode, a->rr, a->n, a->pool, 30,
                         &tc);
    CHECK(dns_wire_parse_answer(out, len, qname, qlen, qtype, b) == 0);
    if (tc) {
        CHECK(len == AWF_DNS_WIRE_HEADER + qlen + 4 && (out[2] & 0x02) && b->n == 0);
    } else {
        CHECK(len <= AWF_DNS_WIRE_UDP_MAX && b->n == a->n);
        for (size_t i = 0; i < a->n; i++)
            CHECK(b->rr[i].ttl == (a->rr[i].ttl > 30 ? a->rr[i].ttl - 30 : 0));
    }
}

/* The question of an upstream message, read here without compression (no real server
 * compresses its question). Returns the name's length, or 0. */
static size_t question(const uint8_t *m, size_t len, uint8_t *qname, uint16_t *qtype)
{
    size_t p = AWF_DNS_WIRE_HEADER, o = 0;
    while (p < len && m[p] != 0) {
        size_t l = m[p];
        if (l > 63 || p + 1 + l >= len || o + 1 + l + 1 > AWF_DNS_WIRE_NAME_MAX)
            return 0;
        memcpy(qname + o, m + p, 1 + l);
        o += 1 + l;
        p += 1 + l;
    }
    if (p + 3 > len)
        return 0;
    qname[o++] = 0;
    *qtype = (uint16_t)(m[p + 1] << 8 | m[p + 2]);
    return o;
}

static void try_answer(const uint8_t *data, size_t size, const uint8_t *qname, size_t qlen,
                       uint16_t qtype, uint8_t *out, struct dns_wire_answer *a,
                       struct dns_wire_answer *b)
{
    if (dns_wire_parse_answer(data, size, qname, qlen, qtype, a) != 0)
        return;
    check_answer(a, qname, qlen, qtype);
    round_trip(a, qname, qlen, qtype, out, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(OUT_MAX);
    struct dns_wire_answer *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (out && a && b) {
        try_query(data, size, out);
        uint8_t qname[AWF_DNS_WIRE_NAME_MAX];
        uint16_t qtype;
        size_t qlen = question(data, size, qname, &qtype);
        if (qlen)
            try_answer(data, size, qname, qlen, qtype, out, a, b);
        static const uint8_t fixed[] = "\7example\3com";
        try_answer(data, size, fixed, sizeof fixed, AWF_DNS_WIRE_A, out, a, b);
    }
    free(out);
    free(a);
    free(b);
    return 0;
}
