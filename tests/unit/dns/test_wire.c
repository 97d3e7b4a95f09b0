/* dns/wire.c, the forwarder's DNS message code, over hand-built bytes: strict queries, answers
 * with compression (and hostile pointers), the chain kept, the response encoded. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "dns/wire.h"

/* "\3foo\7example\0" for "foo.example". */
static size_t wname(uint8_t *p, const char *name)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (uint8_t)l;
        memcpy(p + o, name, l);
        o += l;
        name += l + (dot ? 1 : 0);
    }
    p[o++] = 0;
    return o;
}

static size_t header(uint8_t *p, uint16_t id, uint8_t f1, uint8_t f2, int qd, int an, int ns,
                     int ar)
{
    p[0] = (uint8_t)(id >> 8), p[1] = (uint8_t)id, p[2] = f1, p[3] = f2;
    p[4] = 0, p[5] = (uint8_t)qd, p[6] = 0, p[7] = (uint8_t)an;
    p[8] = 0, p[9] = (uint8_t)ns, p[10] = 0, p[11] = (uint8_t)ar;
    return 12;
}

static size_t u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
    return 2;
}

static size_t u32(uint8_t *p, uint32_t v)
{
    u16(p, (uint16_t)(v >> 16));
    u16(p + 2, (uint16_t)v);
    return 4;
}

static size_t question(uint8_t *p, const char *name, uint16_t type)
{
    size_t o = wname(p, name);
    o += u16(p + o, type);
    return o + u16(p + o, 1);
}

/* A record header after its owner: type, class IN, ttl, rdlength. */
static size_t rrhead(uint8_t *p, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    size_t o = u16(p, type);
    o += u16(p + o, 1);
    o += u32(p + o, ttl);
    return o + u16(p + o, rdlen);
}

static void test_wire_query_strict(void **state)
{
    (void)state;
    uint8_t m[600];
    struct dns_wire_query q;
    size_t n = header(m, 0xBEEF, 0x01, 0, 1, 0, 0, 0);
    n += question(m + n, "Foo.Example", AWF_DNS_WIRE_AAAA);
    assert_int_equal(dns_wire_parse_query(m, n, &q), 0);
    assert_int_equal(q.id, 0xBEEF);
    assert_true(q.rd);
    assert_int_equal(q.qtype, AWF_DNS_WIRE_AAAA);
    assert_int_equal(q.qname_len, 13);
    char host[AWF_DNS_WIRE_NAME_MAX];
    assert_int_equal(dns_wire_name_host(q.qname, q.qname_len, host), 11);
    assert_string_equal(host, "foo.example");

    /* EDNS OPT: accepted and ignored; its rdata must fit. */
    m[11] = 1;
    size_t o = n;
    m[o++] = 0;
    o += rrhead(m + o, AWF_DNS_WIRE_OPT, 0, 4);
    memset(m + o, 0, 4);
    assert_int_equal(dns_wire_parse_query(m, o + 4, &q), 0);
    assert_int_equal(dns_wire_parse_query(m, o + 3, &q), AWF_E_BAD_REQUEST);
    m[11] = 2;
    assert_int_equal(dns_wire_parse_query(m, o + 4, &q), AWF_E_BAD_REQUEST);
    m[11] = 0;
    assert_int_equal(dns_wire_parse_query(m, n, &q), 0);

    m[7] = 1; /* an answer in a query */
    assert_int_equal(dns_wire_parse_query(m, n, &q), AWF_E_BAD_REQUEST);
    m[7] = 0;
    for (size_t cut = 0; cut < n; cut++) /* every truncation */
        assert_int_equal(dns_wire_parse_query(m, cut, &q), AWF_E_BAD_REQUEST);

    /* A pointer in the question, a 0x40 label type, a name over 255 bytes. */
    n = header(m, 1, 0, 0, 1, 0, 0, 0);
    m[n++] = 0xC0, m[n++] = 12;
    n += u16(m + n, 1) + u16(m + n + 2, 1);
    assert_int_equal(dns_wire_parse_query(m, n, &q), AWF_E_BAD_REQUEST);
    m[12] = 0x41;
    assert_int_equal(dns_wire_parse_query(m, n, &q), AWF_E_BAD_REQUEST);
    n = header(m, 1, 0, 0, 1, 0, 0, 0);
    for (int i = 0; i < 4; i++) { /* 4 x 64 = 256 bytes before the root */
        m[n++] = 63;
        memset(m + n, 'a', 63);
        n += 63;
    }
    m[n++] = 0;
    n += u16(m + n, 1) + u16(m + n + 2, 1);
    assert_int_equal(dns_wire_parse_query(m, n, &q), AWF_E_BAD_REQUEST);
}

static void test_wire_names_for_policy_and_log(void **state)
{
    (void)state;
    uint8_t n[64];
    char host[AWF_DNS_WIRE_NAME_MAX], text[4 * AWF_DNS_WIRE_NAME_MAX + 2];
    static const uint8_t dotted[] = {3, 'a', '.', 'b', 3, 'c', 'o', 'm', 0};
    assert_int_equal(dns_wire_name_host(dotted, sizeof(dotted), host), -1);
    dns_wire_name_text(dotted, sizeof(dotted), text);
    assert_string_equal(text, "a\\.b.com");
    static const uint8_t ctl[] = {2, 'a', '\n', 0};
    assert_int_equal(dns_wire_name_host(ctl, sizeof(ctl), host), -1);
    dns_wire_name_text(ctl, sizeof(ctl), text);
    assert_string_equal(text, "a\\010");
    /* Unicode line breakers (U+2028, NEL, a lone C1 byte) and DEL stay out of the DNS log. */
    static const uint8_t uni[] = {8, 'a', 0xe2, 0x80, 0xa8, 0xc2, 0x85, 0x85, 0x7f, 0};
    dns_wire_name_text(uni, sizeof(uni), text);
    assert_string_equal(text, "a\\226\\128\\168\\194\\133\\133\\127");
    static const uint8_t root[] = {0};
    assert_int_equal(dns_wire_name_host(root, 1, host), -1);
    dns_wire_name_text(root, 1, text);
    assert_string_equal(text, ".");
    size_t l = wname(n, "_Acme-Challenge.X9.org");
    assert_int_equal(dns_wire_name_host(n, l, host), 22);
    assert_string_equal(host, "_acme-challenge.x9.org");
    char b[16];
    assert_string_equal(dns_wire_type_name(65, b), "HTTPS");
    assert_string_equal(dns_wire_type_name(99, b), "TYPE99");
    assert_string_equal(dns_wire_rcode_name(5, b), "REFUSED");
    assert_string_equal(dns_wire_rcode_name(9, b), "RCODE9");
}

/* An answer as servers write it: owners compressed to the question, records out of order,
 * an unrelated record, authority and additional records. */
static size_t sample_answer(uint8_t *m)
{
    size_t n = header(m, 7, 0x81, 0x80, 1, 4, 1, 1);
    n += question(m + n, "www.x.test", AWF_DNS_WIRE_A); /* name at 12 */
    size_t edge = n + 12;                               /* where "edge.x.test" will be written */
    /* CNAME www -> edge.x.test ("\4edge" + pointer to "x.test" at 16) */
    m[n++] = 0xC0, m[n++] = 12;
    n += rrhead(m + n, AWF_DNS_WIRE_CNAME, 300, 7);
    m[n++] = 4, memcpy(m + n, "edge", 4), n += 4, m[n++] = 0xC0, m[n++] = 16;
    /* A for edge (owner by pointer to the CNAME's target), TTL with the top bit set. */
    m[n++] = (uint8_t)(0xC0 | edge >> 8), m[n++] = (uint8_t)edge;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 0x80000001u, 4);
    m[n++] = 192, m[n++] = 0, m[n++] = 2, m[n++] = 1;
    /* A for another name: dropped. */
    n += wname(m + n, "other.test");
    n += rrhead(m + n, AWF_DNS_WIRE_A, 60, 4);
    m[n++] = 10, m[n++] = 0, m[n++] = 0, m[n++] = 1;
    /* A second A for edge. */
    m[n++] = (uint8_t)(0xC0 | edge >> 8), m[n++] = (uint8_t)edge;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 50, 4);
    m[n++] = 192, m[n++] = 0, m[n++] = 2, m[n++] = 2;
    /* Authority: an NS; additional: an OPT. */
    m[n++] = 0xC0, m[n++] = 16;
    n += rrhead(m + n, AWF_DNS_WIRE_NS, 60, 2);
    m[n++] = 0xC0, m[n++] = 16;
    m[n++] = 0;
    n += rrhead(m + n, AWF_DNS_WIRE_OPT, 0, 0);
    return n;
}

static void test_wire_answer_chain(void **state)
{
    (void)state;
    uint8_t m[600], qn[64];
    size_t ql = wname(qn, "WWW.x.test");
    size_t n = sample_answer(m);
    static struct dns_wire_answer a;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), 0);
    assert_int_equal(a.rcode, 0);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.rr[0].type, AWF_DNS_WIRE_CNAME);
    assert_int_equal(a.rr[0].ttl, 300);
    uint8_t edge[32];
    size_t el = wname(edge, "edge.x.test");
    assert_true(dns_wire_name_equal(a.pool + a.rr[0].rdata_off, a.rr[0].rdata_len, edge, el));
    assert_int_equal(a.rr[1].ttl, 0); /* top bit set: 0 */
    assert_int_equal(a.rr[2].ttl, 50);
    assert_int_equal(a.pool[a.rr[2].rdata_off + 3], 2);

    /* Every truncation fails cleanly; so do a wrong question and a wrong type. */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(dns_wire_parse_answer(m, cut, qn, ql, AWF_DNS_WIRE_A, &a),
                         AWF_E_BAD_REQUEST);
    assert_int_equal(dns_wire_parse_answer(m, n, edge, el, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_AAAA, &a), AWF_E_BAD_REQUEST);

    /* Encoded again under the client's question: names compressed, the age taken off. */
    struct dns_wire_query q = {.id = 0x1234, .rd = true, .qtype = AWF_DNS_WIRE_A, .qclass = 1};
    memcpy(q.qname, qn, ql);
    q.qname_len = ql;
    uint8_t out[600];
    bool tc;
    size_t len = dns_wire_build(out, sizeof(out), 512, &q, 0, a.rr, a.n, a.pool, 100, &tc);
    assert_false(tc);
    /* header, question (16), CNAME: ptr + 10 + "\4edge" ptr (7), 2 A: ptr + 10 + 4 */
    assert_int_equal(len, 12 + 16 + (2 + 10 + 7) + 2 * (2 + 10 + 4));
    assert_int_equal(out[0], 0x12);
    assert_int_equal(out[2], 0x81);
    assert_int_equal(out[3], 0x80);
    assert_memory_equal(out + 12, qn, ql);        /* the client's case */
    assert_int_equal(out[28], 0xC0);              /* the CNAME owner points at the question */
    assert_int_equal(out[28 + 2 + 7], 200);       /* 300 - 100 */
    assert_int_equal(out[28 + 2 + 10 + 5], 0xC0); /* "\4edge" then a pointer */
    size_t a1 = 28 + 19;
    assert_int_equal(out[a1] & 0xC0, 0xC0);
    assert_int_equal(out[a1 + 2 + 7], 0); /* 50 - 100: never below 0 */

    /* Too big for the limit: the question only, TC set. */
    len = dns_wire_build(out, sizeof(out), 40, &q, 0, a.rr, a.n, a.pool, 0, &tc);
    assert_true(tc);
    assert_int_equal(len, 28);
    assert_int_equal(out[2], 0x83);
    assert_int_equal(out[7], 0);
}

static void test_wire_answer_hostile(void **state)
{
    (void)state;
    uint8_t m[600], qn[64];
    size_t ql = wname(qn, "www.x.test");
    static struct dns_wire_answer a;
    size_t base = header(m, 7, 0x81, 0x80, 1, 1, 0, 0);
    base += question(m + base, "www.x.test", AWF_DNS_WIRE_A);

    size_t n = base; /* a pointer to itself */
    m[n] = 0xC0, m[n + 1] = (uint8_t)n, n += 2;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 1, 4) + 4;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);
    n = base; /* a pointer forward */
    m[n] = 0xC0, m[n + 1] = (uint8_t)(n + 2), n += 2;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 1, 4) + 4;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);
    n = base; /* into the header */
    m[n] = 0xC0, m[n + 1] = 2, n += 2;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 1, 4) + 4;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);
    n = base; /* an A of 5 bytes */
    m[n++] = 0xC0, m[n++] = 12;
    n += rrhead(m + n, AWF_DNS_WIRE_A, 1, 5) + 5;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);
    n = base; /* a CNAME whose name runs past its rdlength */
    m[n++] = 0xC0, m[n++] = 12;
    n += rrhead(m + n, AWF_DNS_WIRE_CNAME, 1, 3);
    n += wname(m + n, "abc.test");
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), AWF_E_BAD_REQUEST);

    /* A CNAME loop www -> www: followed at most 16 hops, no address, no hang. */
    n = base;
    m[n++] = 0xC0, m[n++] = 12;
    n += rrhead(m + n, AWF_DNS_WIRE_CNAME, 5, 2);
    m[n++] = 0xC0, m[n++] = 12;
    assert_int_equal(dns_wire_parse_answer(m, n, qn, ql, AWF_DNS_WIRE_A, &a), 0);
    assert_int_equal(a.n, 16);
    for (size_t i = 0; i < a.n; i++)
        assert_int_equal(a.rr[i].type, AWF_DNS_WIRE_CNAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_query_strict),
        cmocka_unit_test(test_wire_names_for_policy_and_log),
        cmocka_unit_test(test_wire_answer_chain),
        cmocka_unit_test(test_wire_answer_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
