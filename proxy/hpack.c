/* HPACK decoding (RFC 7541). The Huffman code is canonical (codes of one length are
 * consecutive, lengths ascending), so a symbol is found from the first code and the count of
 * each length: O(bits) per symbol, no tree. The tables are RFC 7541 Appendix A and B. */

#include "proxy/hpack.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static const struct {
    const char *name, *value;
} static_table[61] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};

/* Appendix B, by code length L (5..30): first code, how many, where in huff_sym. */
static const uint32_t huff_first[31] = {
    0,        0,        0,        0,         0,         0,       20,         92,
    248,      0,        1016,     2042,      4090,      8184,    16380,      32764,
    0,        0,        0,        524272,    1048550,   2097116, 4194258,    8388568,
    16777194, 33554412, 67108832, 134217694, 268435426, 0,       1073741820,
};
static const uint16_t huff_count[31] = {
    0, 0, 0, 0, 0, 10, 26, 32, 6,  0, 5,  3,  2,  6, 2, 3,
    0, 0, 0, 3, 8, 13, 26, 29, 12, 4, 15, 19, 29, 0, 4,
};
static const uint16_t huff_off[31] = {
    0, 0, 0, 0,  0,  0,   10,  36,  68,  0,   74,  79,  82,  84, 90,  92,
    0, 0, 0, 95, 98, 106, 119, 145, 174, 186, 190, 205, 224, 0,  253,
};
static const uint16_t huff_sym[257] = {
    48,  49,  50,  97,  99,  101, 105, 111, 115, 116, 32,  37,  45,  46,  47,  51,  52,  53,  54,
    55,  56,  57,  61,  65,  95,  98,  100, 102, 103, 104, 108, 109, 110, 112, 114, 117, 58,  66,
    67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,  79,  80,  81,  82,  83,  84,  85,
    86,  87,  89,  106, 107, 113, 118, 119, 120, 121, 122, 38,  42,  44,  59,  88,  90,  33,  34,
    40,  41,  63,  39,  43,  124, 35,  62,  0,   36,  64,  91,  93,  126, 94,  125, 60,  96,  123,
    92,  195, 208, 128, 130, 131, 162, 184, 194, 224, 226, 153, 161, 167, 172, 176, 177, 179, 209,
    216, 217, 227, 229, 230, 129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173,
    178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233, 1,   135, 137, 138, 139, 140, 141,
    143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191,
    197, 231, 239, 9,   142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237, 199, 207, 234, 235,
    192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255, 203, 204, 211, 212,
    214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254, 2,   3,   4,   5,
    6,   7,   8,   11,  12,  14,  15,  16,  17,  18,  19,  20,  21,  23,  24,  25,  26,  27,  28,
    29,  30,  31,  127, 220, 249, 10,  13,  22,  256,
};

long proxy_hpack_huffman(const uint8_t *p, size_t n, char *out)
{
    long len = 0;
    uint32_t code = 0;
    unsigned bits = 0; /* bits in code so far: a symbol is being read */
    bool ones = true;  /* those bits are all 1 (a valid padding so far) */
    for (size_t i = 0; i < n; i++) {
        for (int b = 7; b >= 0; b--) {
            unsigned bit = (p[i] >> b) & 1u;
            code = (code << 1) | bit;
            bits++;
            ones = ones && bit;
            if (bits > 30)
                return -1;
            if (huff_count[bits] && code >= huff_first[bits] &&
                code - huff_first[bits] < huff_count[bits]) {
                unsigned sym = huff_sym[huff_off[bits] + code - huff_first[bits]];
                if (sym == 256) /* EOS inside a string is an error (5.2) */
                    return -1;
                out[len++] = (char)sym;
                code = 0;
                bits = 0;
                ones = true;
            }
        }
    }
    /* Padding: fewer than 8 bits, all ones (the most significant bits of EOS). */
    return (bits < 8 && ones) ? len : -1;
}

/* An integer with an N-bit prefix (5.1); bounded far below overflow. */
static int read_int(const uint8_t **pp, const uint8_t *end, unsigned prefix, size_t *out)
{
    const uint8_t *p = *pp;
    unsigned max = (1u << prefix) - 1;
    size_t v = *p++ & max;
    if (v == max) {
        unsigned shift = 0;
        uint8_t b;
        do {
            if (p == end || shift > 21)
                return -1;
            b = *p++;
            v += (size_t)(b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
    }
    *pp = p;
    *out = v;
    return 0;
}

/* A string literal (5.2) into buf (owned by the caller, n * 8 / 5 + 1 bytes at least). */
static int read_str(const uint8_t **pp, const uint8_t *end, char *buf, const char **s, size_t *len)
{
    if (*pp == end)
        return -1;
    bool huff = (**pp & 0x80) != 0;
    size_t n;
    if (read_int(pp, end, 7, &n) < 0 || n > (size_t)(end - *pp))
        return -1;
    if (huff) {
        long l = proxy_hpack_huffman(*pp, n, buf);
        if (l < 0)
            return -1;
        *s = buf;
        *len = (size_t)l;
    } else {
        *s = (const char *)*pp;
        *len = n;
    }
    *pp += n;
    return 0;
}

static void evict_to(struct proxy_hpack *h, size_t max)
{
    while (h->n && h->size > max) {
        struct proxy_hpack_entry *e = &h->ents[--h->n];
        h->size -= e->name_len + e->value_len + 32;
        free(e->name);
    }
}

static int insert(struct proxy_hpack *h, const char *name, size_t nl, const char *value, size_t vl)
{
    size_t sz = nl + vl + 32;
    if (sz > h->max_size) { /* 4.4: an entry larger than the table empties it */
        evict_to(h, 0);
        return 0;
    }
    /* Copied before evicting: name may be an entry that makes room for this one (4.4). */
    char *m = malloc(nl + vl + 1); /* owned by the entry */
    if (!m)
        return -ENOMEM;
    memcpy(m, name, nl);
    memcpy(m + nl, value, vl);
    evict_to(h, h->max_size - sz);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct proxy_hpack_entry *g = realloc(h->ents, cap * sizeof *g);
        if (!g) {
            free(m);
            return -ENOMEM;
        }
        h->ents = g;
        h->cap = cap;
    }
    memmove(h->ents + 1, h->ents, h->n * sizeof *h->ents);
    h->ents[0] = (struct proxy_hpack_entry){m, m + nl, nl, vl};
    h->n++;
    h->size += sz;
    return 0;
}

/* Index i (1-based, 2.3.3): static 1..61, then the dynamic table newest first. */
static int lookup(const struct proxy_hpack *h, size_t i, const char **name, size_t *nl,
                  const char **value, size_t *vl)
{
    if (i >= 1 && i <= 61) {
        *name = static_table[i - 1].name;
        *nl = strlen(*name);
        *value = static_table[i - 1].value;
        *vl = strlen(*value);
        return 0;
    }
    if (i < 62 || i - 62 >= h->n)
        return -1;
    const struct proxy_hpack_entry *e = &h->ents[i - 62];
    *name = e->name, *nl = e->name_len, *value = e->value, *vl = e->value_len;
    return 0;
}

void proxy_hpack_init(struct proxy_hpack *h, size_t limit)
{
    memset(h, 0, sizeof *h);
    h->max_size = limit < 4096 ? limit : 4096; /* SETTINGS_HEADER_TABLE_SIZE's default */
    h->limit = limit;
}

void proxy_hpack_free(struct proxy_hpack *h)
{
    evict_to(h, 0);
    free(h->ents);
    memset(h, 0, sizeof *h);
}

int proxy_hpack_decode(struct proxy_hpack *h, const uint8_t *p, size_t n, proxy_hpack_field_cb cb,
                       void *arg)
{
    const uint8_t *end = p + n;
    char *buf = malloc(2 * (n * 8 / 5 + 1)); /* Huffman-decoded name and value; freed below */
    if (!buf)
        return -ENOMEM;
    char *nbuf = buf, *vbuf = buf + n * 8 / 5 + 1;
    int rc = 0;
    while (p < end && rc == 0) {
        uint8_t b = *p;
        size_t idx;
        const char *name, *value;
        size_t nl, vl;
        if (b & 0x80) { /* 6.1 indexed field */
            if (read_int(&p, end, 7, &idx) < 0 || lookup(h, idx, &name, &nl, &value, &vl) < 0)
                rc = AWF_E_BAD_REQUEST;
            else
                rc = cb(arg, name, nl, value, vl);
            continue;
        }
        if ((b & 0xe0) == 0x20) { /* 6.3 dynamic table size update */
            if (read_int(&p, end, 5, &idx) < 0 || idx > h->limit) {
                rc = AWF_E_BAD_REQUEST;
                continue;
            }
            h->max_size = idx;
            evict_to(h, idx);
            continue;
        }
        bool index = (b & 0xc0) == 0x40; /* 6.2.1 with incremental indexing */
        if (read_int(&p, end, index ? 6 : 4, &idx) < 0) {
            rc = AWF_E_BAD_REQUEST;
            continue;
        }
        const char *dummy;
        size_t dl;
        if (idx ? lookup(h, idx, &name, &nl, &dummy, &dl) < 0
                : read_str(&p, end, nbuf, &name, &nl) < 0) {
            rc = AWF_E_BAD_REQUEST;
            continue;
        }
        if (read_str(&p, end, vbuf, &value, &vl) < 0) {
            rc = AWF_E_BAD_REQUEST;
            continue;
        }
        rc = cb(arg, name, nl, value, vl);
        /* The callback saw the strings first: an insert may evict the entry name points to. */
        if (rc == 0 && index)
            rc = insert(h, name, nl, value, vl);
    }
    free(buf);
    return rc;
}
