#ifndef AWF_DNS_WIRE_H
#define AWF_DNS_WIRE_H

/* DNS messages on the wire for the forwarder: a strict parser of client queries, a parser of
 * upstream answers that keeps only the CNAME chain and the A/AAAA records of the name asked,
 * and an encoder of responses. Pure functions over bytes, every read bounds-checked; nothing is
 * copied from an input that was not parsed and validated field by field. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_DNS_WIRE_HEADER   12
#define AWF_DNS_WIRE_NAME_MAX 255 /* wire form, length bytes and the root included */
#define AWF_DNS_WIRE_UDP_MAX  512 /* no EDNS: a longer UDP answer is sent truncated (TC) */
#define AWF_DNS_WIRE_MAX_RR   32  /* answer records kept from upstream; the rest dropped */

/* The types the forwarder names; any other prints as TYPEn. */
enum {
    AWF_DNS_WIRE_A = 1,
    AWF_DNS_WIRE_NS = 2,
    AWF_DNS_WIRE_CNAME = 5,
    AWF_DNS_WIRE_SOA = 6,
    AWF_DNS_WIRE_PTR = 12,
    AWF_DNS_WIRE_MX = 15,
    AWF_DNS_WIRE_TXT = 16,
    AWF_DNS_WIRE_AAAA = 28,
    AWF_DNS_WIRE_SRV = 33,
    AWF_DNS_WIRE_OPT = 41,
    AWF_DNS_WIRE_SVCB = 64,
    AWF_DNS_WIRE_HTTPS = 65,
    AWF_DNS_WIRE_ANY = 255,
};

enum {
    AWF_DNS_WIRE_NOERROR = 0,
    AWF_DNS_WIRE_FORMERR = 1,
    AWF_DNS_WIRE_SERVFAIL = 2,
    AWF_DNS_WIRE_NXDOMAIN = 3,
    AWF_DNS_WIRE_NOTIMP = 4,
    AWF_DNS_WIRE_REFUSED = 5,
};

/* One client query. qname keeps the client's bytes (its letter case too: some clients check
 * the echo), without compression. */
struct dns_wire_query {
    uint16_t id;
    bool rd;
    uint16_t qtype, qclass;
    uint8_t qname[AWF_DNS_WIRE_NAME_MAX];
    size_t qname_len;
};

/* Parses a query: header with QR 0, opcode QUERY, one question, no answer or authority
 * records, at most one additional record (EDNS OPT, read for bounds and otherwise ignored), no
 * compression pointer in the question, nothing after the last record. Returns 0 or
 * AWF_E_BAD_REQUEST. */
int dns_wire_parse_query(const uint8_t *msg, size_t len, struct dns_wire_query *q);

/* The host name the policy decides for a wire name: lower-cased, dotted, without the root dot.
 * Returns its length, or -1 when a label holds a byte outside [A-Za-z0-9_-] (a dot inside a
 * label, a space, a control byte ...) or the name is the root: no policy entry could match such
 * a name, so it is denied. out holds at least AWF_DNS_WIRE_NAME_MAX bytes. */
int dns_wire_name_host(const uint8_t *name, size_t len, char *out);

/* The name in presentation form for a log line: bytes outside [A-Za-z0-9_-] as \DDD, a dot in a
 * label as "\.", the root as ".". out holds at least 4 * AWF_DNS_WIRE_NAME_MAX + 2 bytes. */
void dns_wire_name_text(const uint8_t *name, size_t len, char *out);

/* "A", "AAAA", "TXT" ... or "TYPE<n>" written into buf (at least 12 bytes); returns buf or a
 * static string. */
const char *dns_wire_type_name(uint16_t type, char *buf);
/* "NOERROR", "NXDOMAIN" ... or "RCODE<n>" the same way. */
const char *dns_wire_rcode_name(int rcode, char *buf);

/* A record kept from an answer: owner and rdata in the pool, names uncompressed in wire form
 * (CNAME rdata is the target name; A and AAAA rdata the 4 or 16 address bytes). */
struct dns_wire_rr {
    uint16_t type;
    uint32_t ttl;
    uint16_t owner_off, owner_len;
    uint16_t rdata_off, rdata_len;
};

#define AWF_DNS_WIRE_POOL (AWF_DNS_WIRE_MAX_RR * 2 * AWF_DNS_WIRE_NAME_MAX)

struct dns_wire_answer {
    int rcode;
    size_t n;
    struct dns_wire_rr rr[AWF_DNS_WIRE_MAX_RR];
    size_t pool_len;
    uint8_t pool[AWF_DNS_WIRE_POOL];
};

/* Parses an upstream response to the question (qname, qtype) and keeps the chain that answers
 * it: the CNAME records from qname on (at most 16 hops), then the records of type qtype owned
 * by the chain's last name; a CNAME query keeps the CNAME of qname only. Every other record, and
 * the authority and additional sections, are dropped (but parsed: a malformed one fails the
 * whole message). Returns 0 or AWF_E_BAD_REQUEST (malformed, not a response, another
 * question). */
int dns_wire_parse_answer(const uint8_t *msg, size_t len, const uint8_t *qname, size_t qname_len,
                          uint16_t qtype, struct dns_wire_answer *out);

/* Writes the response to q into out (cap bytes): q's ID, RD and question, RA set, rcode, and
 * the n records of rr/pool with age_s taken off each TTL (never below 0). Names equal to one
 * written before are compressed to a pointer. If the message would exceed limit, it is written
 * with the question only and TC set (*truncated true). Returns the length. cap must be at least
 * AWF_DNS_WIRE_HEADER + q's question + 4. */
size_t dns_wire_build(uint8_t *out, size_t cap, size_t limit, const struct dns_wire_query *q,
                      int rcode, const struct dns_wire_rr *rr, size_t n, const uint8_t *pool,
                      uint32_t age_s, bool *truncated);

/* Case-insensitive equality of two wire names (ASCII letters only fold). */
bool dns_wire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
