/* DNS messages for the forwarder (RFC 1035 §4). Reads are bounds-checked against the message
 * length before every access; compression pointers must point strictly backward, which bounds
 * the work and forbids loops; every name is at most 255 bytes once expanded. */

#include "dns/wire.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Reads the name at *pos into out (uncompressed, at most AWF_DNS_WIRE_NAME_MAX bytes) and moves
 * *pos past it as it sits at *pos (a pointer counts two bytes). Pointers are refused unless
 * allow_ptr; they must land past the header and before themselves. Returns the length or -1. */
static int read_name(const uint8_t *msg, size_t len, size_t *pos, bool allow_ptr, uint8_t *out)
{
    size_t p = *pos, o = 0, end = 0;
    bool jumped = false;
    for (;;) {
        if (p >= len)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            if (!allow_ptr || p + 1 >= len)
                return -1;
            size_t target = (size_t)(l & 0x3F) << 8 | msg[p + 1];
            if (target < AWF_DNS_WIRE_HEADER || target >= p)
                return -1;
            if (!jumped)
                end = p + 2;
            jumped = true;
            p = target;
            continue;
        }
        if (l & 0xC0) /* 0x40 and 0x80: extended label types, obsolete */
            return -1;
        if (l == 0) {
            out[o++] = 0;
            if (!jumped)
                end = p + 1;
            break;
        }
        /* Room for this label and the root byte after it. */
        if (p + 1 + l > len || o + 1 + l + 1 > AWF_DNS_WIRE_NAME_MAX)
            return -1;
        memcpy(out + o, msg + p, 1 + (size_t)l);
        o += 1 + (size_t)l;
        p += 1 + (size_t)l;
    }
    *pos = end;
    return (int)o;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

bool dns_wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return false;
    /* Length bytes are below 64, never letters: folding them is harmless. */
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

int dns_wire_parse_query(const uint8_t *msg, size_t len, struct dns_wire_query *q)
{
    if (len < AWF_DNS_WIRE_HEADER || len > 65535)
        return AWF_E_BAD_REQUEST;
    uint8_t f1 = msg[2];
    if ((f1 & 0x80) || ((f1 >> 3) & 0x0F) != 0) /* a response, or not a standard query */
        return AWF_E_BAD_REQUEST;
    if (get16(msg + 4) != 1 || get16(msg + 6) != 0 || get16(msg + 8) != 0 || get16(msg + 10) > 1)
        return AWF_E_BAD_REQUEST;
    memset(q, 0, sizeof(*q));
    q->id = get16(msg);
    q->rd = (f1 & 0x01) != 0;
    size_t pos = AWF_DNS_WIRE_HEADER;
    int n = read_name(msg, len, &pos, false, q->qname);
    if (n < 0 || pos + 4 > len)
        return AWF_E_BAD_REQUEST;
    q->qname_len = (size_t)n;
    q->qtype = get16(msg + pos);
    q->qclass = get16(msg + pos + 2);
    pos += 4;
    if (get16(msg + 10) == 1) {
        /* The additional record (EDNS OPT, in practice): checked for bounds, then ignored, so
         * the answer is a plain DNS one of at most 512 bytes over UDP. */
        uint8_t scratch[AWF_DNS_WIRE_NAME_MAX];
        if (read_name(msg, len, &pos, true, scratch) < 0 || pos + 10 > len)
            return AWF_E_BAD_REQUEST;
        size_t rdlen = get16(msg + pos + 8);
        pos += 10;
        if (rdlen > len - pos)
            return AWF_E_BAD_REQUEST;
        pos += rdlen;
    }
    return pos == len ? 0 : AWF_E_BAD_REQUEST;
}

static bool host_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int dns_wire_name_host(const uint8_t *name, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len && name[i] != 0) {
        size_t l = name[i++];
        if (l > len - i)
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t k = 0; k < l; k++) {
            if (!host_byte(name[i + k]))
                return -1;
            out[o++] = (char)lower(name[i + k]);
        }
        i += l;
    }
    if (o == 0)
        return -1;
    out[o] = '\0';
    return (int)o;
}

void dns_wire_name_text(const uint8_t *name, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len && name[i] != 0) {
        size_t l = name[i++];
        if (l > len - i)
            break;
        if (o)
            out[o++] = '.';
        for (size_t k = 0; k < l; k++) {
            uint8_t c = name[i + k];
            if (host_byte(c))
                out[o++] = (char)c;
            else if (c == '.')
                out[o++] = '\\', out[o++] = '.';
            else
                o += (size_t)sprintf(out + o, "\\%03u", c);
        }
        i += l;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
}

const char *dns_wire_type_name(uint16_t type, char *buf)
{
    switch (type) {
    case AWF_DNS_WIRE_A:
        return "A";
    case AWF_DNS_WIRE_NS:
        return "NS";
    case AWF_DNS_WIRE_CNAME:
        return "CNAME";
    case AWF_DNS_WIRE_SOA:
        return "SOA";
    case AWF_DNS_WIRE_PTR:
        return "PTR";
    case AWF_DNS_WIRE_MX:
        return "MX";
    case AWF_DNS_WIRE_TXT:
        return "TXT";
    case AWF_DNS_WIRE_AAAA:
        return "AAAA";
    case AWF_DNS_WIRE_SRV:
        return "SRV";
    case AWF_DNS_WIRE_SVCB:
        return "SVCB";
    case AWF_DNS_WIRE_HTTPS:
        return "HTTPS";
    case AWF_DNS_WIRE_ANY:
        return "ANY";
    default:
        sprintf(buf, "TYPE%u", type);
        return buf;
    }
}

const char *dns_wire_rcode_name(int rcode, char *buf)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])))
        return names[rcode];
    sprintf(buf, "RCODE%d", rcode & 0xFFFF);
    return buf;
}

/* ---- answers --------------------------------------------------------------------------------- */

static bool add_rr(struct dns_wire_answer *a, uint16_t type, uint32_t ttl, const uint8_t *owner,
                   size_t olen, const uint8_t *rdata, size_t rlen)
{
    if (a->n >= AWF_DNS_WIRE_MAX_RR || olen + rlen > sizeof(a->pool) - a->pool_len)
        return false;
    struct dns_wire_rr *r = &a->rr[a->n++];
    r->type = type;
    r->ttl = ttl;
    r->owner_off = (uint16_t)a->pool_len;
    r->owner_len = (uint16_t)olen;
    memcpy(a->pool + a->pool_len, owner, olen);
    a->pool_len += olen;
    r->rdata_off = (uint16_t)a->pool_len;
    r->rdata_len = (uint16_t)rlen;
    memcpy(a->pool + a->pool_len, rdata, rlen);
    a->pool_len += rlen;
    return true;
}

static bool owned_by(const struct dns_wire_answer *a, const struct dns_wire_rr *r,
                     const uint8_t *name, size_t len)
{
    return dns_wire_name_equal(a->pool + r->owner_off, r->owner_len, name, len);
}

/* Keeps from all (every candidate record) the chain that answers (qname, qtype). */
static void select_chain(const struct dns_wire_answer *all, const uint8_t *qname, size_t qname_len,
                         uint16_t qtype, struct dns_wire_answer *out)
{
    const uint8_t *cur = qname;
    size_t cur_len = qname_len;
    for (int hop = 0; hop < 16; hop++) {
        const struct dns_wire_rr *c = NULL;
        for (size_t i = 0; i < all->n && !c; i++)
            if (all->rr[i].type == AWF_DNS_WIRE_CNAME && owned_by(all, &all->rr[i], cur, cur_len))
                c = &all->rr[i];
        if (!c)
            break;
        if (!add_rr(out, c->type, c->ttl, all->pool + c->owner_off, c->owner_len,
                    all->pool + c->rdata_off, c->rdata_len) ||
            qtype == AWF_DNS_WIRE_CNAME)
            return;
        cur = all->pool + c->rdata_off;
        cur_len = c->rdata_len;
    }
    if (qtype == AWF_DNS_WIRE_CNAME)
        return;
    for (size_t i = 0; i < all->n; i++) {
        const struct dns_wire_rr *r = &all->rr[i];
        if (r->type == qtype && owned_by(all, r, cur, cur_len))
            (void)add_rr(out, r->type, r->ttl, all->pool + r->owner_off, r->owner_len,
                         all->pool + r->rdata_off, r->rdata_len);
    }
}

int dns_wire_parse_answer(const uint8_t *msg, size_t len, const uint8_t *qname, size_t qname_len,
                          uint16_t qtype, struct dns_wire_answer *out)
{
    if (len < AWF_DNS_WIRE_HEADER || !(msg[2] & 0x80) || ((msg[2] >> 3) & 0x0F) != 0 ||
        get16(msg + 4) != 1)
        return AWF_E_BAD_REQUEST;
    uint8_t name[AWF_DNS_WIRE_NAME_MAX], target[AWF_DNS_WIRE_NAME_MAX];
    size_t pos = AWF_DNS_WIRE_HEADER;
    int n = read_name(msg, len, &pos, true, name);
    if (n < 0 || pos + 4 > len || !dns_wire_name_equal(name, (size_t)n, qname, qname_len) ||
        get16(msg + pos) != qtype || get16(msg + pos + 2) != 1)
        return AWF_E_BAD_REQUEST;
    pos += 4;

    struct dns_wire_answer all; /* every candidate record; 17 KB of stack */
    all.n = 0;
    all.pool_len = 0;
    size_t an = get16(msg + 6);
    size_t total = an + get16(msg + 8) + get16(msg + 10);
    for (size_t i = 0; i < total; i++) {
        int olen = read_name(msg, len, &pos, true, name);
        if (olen < 0 || pos + 10 > len)
            return AWF_E_BAD_REQUEST;
        uint16_t type = get16(msg + pos), cls = get16(msg + pos + 2);
        uint32_t ttl = get32(msg + pos + 4);
        size_t rdlen = get16(msg + pos + 8);
        pos += 10;
        if (rdlen > len - pos)
            return AWF_E_BAD_REQUEST;
        size_t rd = pos;
        pos += rdlen;
        if (i >= an || cls != 1)
            continue;
        if (ttl & 0x80000000u) /* RFC 2181 §8: a TTL with the top bit set means 0 */
            ttl = 0;
        if (type == AWF_DNS_WIRE_CNAME) {
            size_t p = rd;
            /* The target may point anywhere before it; it must end where the rdata ends. */
            int tlen = read_name(msg, pos, &p, true, target);
            if (tlen < 0 || p != pos)
                return AWF_E_BAD_REQUEST;
            (void)add_rr(&all, type, ttl, name, (size_t)olen, target, (size_t)tlen);
        } else if (type == AWF_DNS_WIRE_A || type == AWF_DNS_WIRE_AAAA) {
            if (rdlen != (type == AWF_DNS_WIRE_A ? 4u : 16u))
                return AWF_E_BAD_REQUEST;
            (void)add_rr(&all, type, ttl, name, (size_t)olen, msg + rd, rdlen);
        }
    }
    if (pos != len)
        return AWF_E_BAD_REQUEST;
    out->rcode = msg[3] & 0x0F;
    out->n = 0;
    out->pool_len = 0;
    select_chain(&all, qname, qname_len, qtype, out);
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------- */

struct writer {
    uint8_t *out;
    size_t cap, pos;
    bool full;
    size_t n_names;
    struct { /* every name and suffix written in full so far, for compression */
        size_t off;
        const uint8_t *name;
        size_t len;
    } names[128];
};

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->full || n > w->cap - w->pos) {
        w->full = true;
        return;
    }
    memcpy(w->out + w->pos, p, n);
    w->pos += n;
}

/* Writes a (valid, uncompressed) name: its labels until the rest equals a name or suffix
 * written before, then a pointer to that (RFC 1035 §4.1.4). */
static void put_name(struct writer *w, const uint8_t *name, size_t len)
{
    size_t i = 0;
    while (i < len && name[i] != 0) {
        for (size_t k = 0; k < w->n_names; k++)
            if (dns_wire_name_equal(w->names[k].name, w->names[k].len, name + i, len - i)) {
                uint8_t ptr[2] = {(uint8_t)(0xC0 | w->names[k].off >> 8), (uint8_t)w->names[k].off};
                put(w, ptr, 2);
                return;
            }
        if (!w->full && w->pos < 0x4000 && w->n_names < sizeof(w->names) / sizeof(w->names[0])) {
            w->names[w->n_names].off = w->pos;
            w->names[w->n_names].name = name + i;
            w->names[w->n_names].len = len - i;
            w->n_names++;
        }
        put(w, name + i, 1 + (size_t)name[i]);
        i += 1 + (size_t)name[i];
    }
    put(w, "", 1);
}

static size_t build(uint8_t *out, size_t cap, const struct dns_wire_query *q, int rcode,
                    const struct dns_wire_rr *rr, size_t n, const uint8_t *pool, uint32_t age_s,
                    bool tc, bool *full)
{
    struct writer w = {.out = out, .cap = cap};
    uint8_t h[AWF_DNS_WIRE_HEADER];
    put16(h, q->id);
    h[2] = (uint8_t)(0x80 | (tc ? 0x02 : 0) | (q->rd ? 0x01 : 0));
    h[3] = (uint8_t)(0x80 | (rcode & 0x0F)); /* RA: we recurse for the client */
    put16(h + 4, 1);
    put16(h + 6, (uint16_t)n);
    put16(h + 8, 0);
    put16(h + 10, 0);
    put(&w, h, sizeof(h));
    put_name(&w, q->qname, q->qname_len);
    uint8_t f[10];
    put16(f, q->qtype);
    put16(f + 2, q->qclass);
    put(&w, f, 4);
    for (size_t i = 0; i < n; i++) {
        const struct dns_wire_rr *r = &rr[i];
        put_name(&w, pool + r->owner_off, r->owner_len);
        put16(f, r->type);
        put16(f + 2, 1);
        put32(f + 4, r->ttl > age_s ? r->ttl - age_s : 0);
        size_t rdlen_at = w.pos + 8;
        put(&w, f, 10);
        size_t start = w.pos;
        if (r->type == AWF_DNS_WIRE_CNAME)
            put_name(&w, pool + r->rdata_off, r->rdata_len);
        else
            put(&w, pool + r->rdata_off, r->rdata_len);
        if (!w.full)
            put16(out + rdlen_at, (uint16_t)(w.pos - start));
    }
    *full = w.full;
    return w.pos;
}

size_t dns_wire_build(uint8_t *out, size_t cap, size_t limit, const struct dns_wire_query *q,
                      int rcode, const struct dns_wire_rr *rr, size_t n, const uint8_t *pool,
                      uint32_t age_s, bool *truncated)
{
    bool full;
    size_t len = build(out, cap < limit ? cap : limit, q, rcode, rr, n, pool, age_s, false, &full);
    *truncated = full;
    if (!full)
        return len;
    return build(out, cap, q, rcode, NULL, 0, NULL, 0, true, &full);
}
